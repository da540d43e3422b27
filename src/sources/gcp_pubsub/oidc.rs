//! The check of the token that authenticates a Pub/Sub push: a push subscription with
//! authentication sends `Authorization: Bearer <JWT>`, an OIDC ID token Google signs for
//! the subscription's service account, naming the push endpoint (or the configured
//! audience) as its audience.
//!
//! [`verify_push_token`] checks, cheapest first, and believes nothing the token says
//! before its signature verifies, except which key to verify it with:
//!
//! 1. the header is exactly `Bearer <JWT>`, a JWT of three base64url parts;
//! 2. the JOSE header names `alg` RS256 exactly (so neither `none`, nor HMAC keyed with
//!    Google's public key, nor any other algorithm) and a `kid`;
//! 3. the RS256 signature verifies with Google's key of that `kid` ([`GoogleKeys`]).
//!    Keys a token carries or points at (`jwk`, `jku`, `x5u`, `x5c`) are ignored;
//! 4. the claims, all required: `iss` Google, `aud` the expected audience, `email` the
//!    expected service account with `email_verified` true, and `exp` and `iat` (and
//!    `nbf`, if present) against the clock of the check with [`LEEWAY_SECONDS`]. The
//!    clock is a parameter, so `pushgate verify --at` checks a captured push as of then.
//!
//! A refusal's detail names what was wrong and what was expected, never the token.

use std::sync::LazyLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};
use http::HeaderMap;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use super::keys::GoogleKeys;
use crate::sources::Rejected;

/// The issuers of Google ID tokens (Google writes the first).
pub const GOOGLE_ISSUERS: [&str; 2] = ["https://accounts.google.com", "accounts.google.com"];

/// Clock difference allowed between Google and pushgate, for `exp`, `iat` and `nbf`.
pub const LEEWAY_SECONDS: i64 = 60;

/// Longest `Authorization` header value read; a Google token is about 1 KiB.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Longest `kid` looked up; Google's are 40 hex digits.
const MAX_KID_LEN: usize = 256;

/// Longest value from a token quoted in a refusal's detail.
const MAX_QUOTED_LEN: usize = 200;

/// What a push token must say, from the connection's configuration.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// The `aud` claim: the connection's `audience`, or its push URL.
    pub audience: &'a str,
    /// The `email` claim: the connection's `service_account_email`.
    pub email: &'a str,
}

/// The claims of a verified push token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub issuer: String,
    pub audience: String,
    /// As the token writes it (compared case-insensitively).
    pub email: String,
    /// The service account's unique numeric id, when the token has one.
    pub subject: Option<String>,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Signature verification only: the claims, times included, are checked here against
/// the clock of the check, not by `jsonwebtoken` against the system clock.
static SIGNATURE_ONLY: LazyLock<Validation> = LazyLock::new(|| {
    let mut validation = Validation::new(Algorithm::RS256);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    validation
});

fn malformed(detail: impl Into<String>) -> Rejected {
    Rejected::malformed("gcp_token_malformed", detail)
}

/// Authenticates a push by its token: see the module documentation for the checks.
pub async fn verify_push_token(
    headers: &HeaderMap,
    now: DateTime<Utc>,
    expected: &Expected<'_>,
    keys: &GoogleKeys,
) -> Result<Claims, Rejected> {
    let token = bearer_token(headers)?;
    let kid = signing_key_id(token)?;
    let key = keys.key(&kid).await?;
    let claims = verified_claims(token, &key, &kid)?;
    check_claims(&claims, now, expected)
}

/// The token of `Authorization: Bearer <token>`, written exactly so.
fn bearer_token(headers: &HeaderMap) -> Result<&str, Rejected> {
    let mut values = headers.get_all(http::header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(Rejected::unauthenticated(
            "gcp_token_missing",
            "Authorization header is missing: the push subscription must have authentication on, with a service account",
        ));
    };
    if values.next().is_some() {
        return Err(malformed("more than one Authorization header"));
    }
    if value.len() > MAX_TOKEN_BYTES {
        return Err(malformed(format!("Authorization header is longer than {MAX_TOKEN_BYTES} bytes")));
    }
    let value = value.to_str().map_err(|_| malformed("Authorization header is not visible ASCII"))?;
    let token = value.strip_prefix("Bearer ").ok_or_else(|| malformed("Authorization header is not `Bearer <token>`"))?;
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 {
        return Err(malformed(format!("bearer token is not a JWT: it has {} dot-separated parts, not 3", parts.len())));
    }
    let base64url = |part: &str| part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if parts[0].is_empty() || parts[1].is_empty() || !parts.iter().all(|part| base64url(part)) {
        return Err(malformed("bearer token is not a JWT: its parts are not all base64url"));
    }
    Ok(token)
}

/// The `kid` of a token whose header names RS256.
fn signing_key_id(token: &str) -> Result<String, Rejected> {
    let encoded = token.split('.').next().unwrap_or_default();
    let header = URL_SAFE_NO_PAD
        .decode(encoded)
        .ok()
        .and_then(|json| serde_json::from_slice::<Map<String, Value>>(&json).ok())
        .ok_or_else(|| malformed("token header is not a base64url JSON object"))?;
    match header.get("alg") {
        Some(Value::String(alg)) if alg == "RS256" => {}
        Some(Value::String(alg)) => {
            return Err(Rejected::unauthenticated(
                "gcp_token_algorithm",
                format!("token algorithm is {}; Google signs push tokens with RS256 only", quoted(alg)),
            ))
        }
        _ => return Err(Rejected::unauthenticated("gcp_token_algorithm", "token header names no algorithm (alg)")),
    }
    match header.get("kid") {
        Some(Value::String(kid)) if !kid.is_empty() && kid.len() <= MAX_KID_LEN => Ok(kid.clone()),
        Some(Value::String(kid)) if !kid.is_empty() => Err(Rejected::unauthenticated(
            "gcp_unknown_key",
            format!("token key id (kid) is {} characters long; Google's are short", kid.chars().count()),
        )),
        _ => Err(Rejected::unauthenticated("gcp_unknown_key", "token header names no key id (kid)")),
    }
}

/// The claims of `token`, once its RS256 signature verifies with `key`.
fn verified_claims(token: &str, key: &DecodingKey, kid: &str) -> Result<Map<String, Value>, Rejected> {
    match jsonwebtoken::decode::<Map<String, Value>>(token, key, &SIGNATURE_ONLY) {
        Ok(data) => Ok(data.claims),
        Err(e) => Err(match e.kind() {
            ErrorKind::InvalidSignature => Rejected::unauthenticated(
                "gcp_token_signature",
                format!("token signature does not verify with Google's key {}", quoted(kid)),
            ),
            ErrorKind::Base64(_) | ErrorKind::Utf8(_) => malformed("token is not a JWT: a part is not valid base64url"),
            ErrorKind::Json(_) => malformed(format!("token header or claims cannot be read: {e}")),
            _ => Rejected::unauthenticated("gcp_token_signature", format!("token cannot be verified: {e}")),
        }),
    }
}

/// The claims checked against `expected` and the clock `now`.
fn check_claims(claims: &Map<String, Value>, now: DateTime<Utc>, expected: &Expected<'_>) -> Result<Claims, Rejected> {
    let issuer = string_claim(claims, "iss", "gcp_token_issuer")?;
    if !GOOGLE_ISSUERS.contains(&issuer) {
        return Err(Rejected::unauthenticated(
            "gcp_token_issuer",
            format!("token issuer is {}, expected {}", quoted(issuer), GOOGLE_ISSUERS[0]),
        ));
    }

    if let Some(Value::Array(_)) = claims.get("aud") {
        return Err(Rejected::unauthenticated(
            "gcp_token_audience",
            format!("token audience is a list; a push token names one audience, expected {}", quoted(expected.audience)),
        ));
    }
    let audience = string_claim(claims, "aud", "gcp_token_audience")?;
    if audience != expected.audience {
        return Err(Rejected::unauthenticated(
            "gcp_token_audience",
            format!("token audience is {}, expected {}", quoted(audience), quoted(expected.audience)),
        ));
    }

    let email = string_claim(claims, "email", "gcp_token_email")?;
    if !email.eq_ignore_ascii_case(expected.email) {
        return Err(Rejected::unauthenticated(
            "gcp_token_email",
            format!("token email is {}, expected the service account {}", quoted(email), quoted(expected.email)),
        ));
    }
    match claims.get("email_verified") {
        Some(Value::Bool(true)) => {}
        None => return Err(Rejected::unauthenticated("gcp_token_email_unverified", "token has no email_verified claim")),
        Some(other) => {
            return Err(Rejected::unauthenticated(
                "gcp_token_email_unverified",
                format!("token email_verified is {}, not true", quoted(&other.to_string())),
            ))
        }
    }

    let now_seconds = now.timestamp();
    let expires = seconds_claim(claims, "exp", "gcp_token_expired")?;
    if expires <= now_seconds.saturating_sub(LEEWAY_SECONDS) {
        return Err(Rejected::unauthenticated(
            "gcp_token_expired",
            format!(
                "token expired at {} ({} s before the check at {})",
                shown_time(expires),
                now_seconds.saturating_sub(expires),
                shown_time(now_seconds)
            ),
        ));
    }
    let issued = seconds_claim(claims, "iat", "gcp_token_not_yet_valid")?;
    if issued > now_seconds.saturating_add(LEEWAY_SECONDS) {
        return Err(Rejected::unauthenticated(
            "gcp_token_not_yet_valid",
            format!(
                "token is issued at {}, {} s after the check at {}",
                shown_time(issued),
                issued.saturating_sub(now_seconds),
                shown_time(now_seconds)
            ),
        ));
    }
    if claims.contains_key("nbf") {
        let not_before = seconds_claim(claims, "nbf", "gcp_token_not_yet_valid")?;
        if not_before > now_seconds.saturating_add(LEEWAY_SECONDS) {
            return Err(Rejected::unauthenticated(
                "gcp_token_not_yet_valid",
                format!(
                    "token is valid from {}, {} s after the check at {}",
                    shown_time(not_before),
                    not_before.saturating_sub(now_seconds),
                    shown_time(now_seconds)
                ),
            ));
        }
    }
    let time = |seconds: i64, reason: &'static str, name: &str| {
        DateTime::from_timestamp(seconds, 0)
            .ok_or_else(|| Rejected::unauthenticated(reason, format!("token {name} {seconds} is not a representable time")))
    };
    Ok(Claims {
        issuer: issuer.to_string(),
        audience: audience.to_string(),
        email: email.to_string(),
        subject: claims.get("sub").and_then(Value::as_str).map(str::to_string),
        issued_at: time(issued, "gcp_token_not_yet_valid", "iat")?,
        expires_at: time(expires, "gcp_token_expired", "exp")?,
    })
}

fn string_claim<'c>(claims: &'c Map<String, Value>, name: &str, reason: &'static str) -> Result<&'c str, Rejected> {
    match claims.get(name) {
        Some(Value::String(value)) => Ok(value),
        None => Err(Rejected::unauthenticated(reason, format!("token has no {name} claim"))),
        Some(_) => Err(Rejected::unauthenticated(reason, format!("token {name} claim is not a string"))),
    }
}

/// A NumericDate claim: whole seconds since the epoch.
fn seconds_claim(claims: &Map<String, Value>, name: &str, reason: &'static str) -> Result<i64, Rejected> {
    match claims.get(name) {
        Some(value) => value
            .as_i64()
            .ok_or_else(|| Rejected::unauthenticated(reason, format!("token {name} claim is not whole seconds since 1970"))),
        None => Err(Rejected::unauthenticated(reason, format!("token has no {name} claim"))),
    }
}

/// Seconds since the epoch as RFC 3339 (or as the number, when out of range).
fn shown_time(seconds: i64) -> String {
    DateTime::from_timestamp(seconds, 0).map_or_else(|| seconds.to_string(), |t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
}

/// A value from a token, quoted and escaped, cut at [`MAX_QUOTED_LEN`] characters.
fn quoted(text: &str) -> String {
    let cut: String = text.chars().take(MAX_QUOTED_LEN).collect();
    if cut.len() < text.len() {
        format!("{cut:?}...")
    } else {
        format!("{cut:?}")
    }
}

#[cfg(test)]
mod tests;
