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
//! Steps 1 to 3 and the times are [`crate::verify::jwt`], shared with Graph's tokens.

use chrono::{DateTime, Utc};
use http::HeaderMap;
use serde_json::{Map, Value};

use super::keys::GoogleKeys;
use crate::sources::Rejected;
use crate::verify::jwt::{quoted, string_claim, Reasons};

pub use crate::verify::jwt::LEEWAY_SECONDS;

/// The issuers of Google ID tokens (Google writes the first).
pub const GOOGLE_ISSUERS: [&str; 2] = ["https://accounts.google.com", "accounts.google.com"];

/// Longest `Authorization` header value read; a Google token is about 1 KiB.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// The reason codes of push token refusals.
const REASONS: Reasons = Reasons {
    signer: "Google",
    tokens: "push tokens",
    malformed: "gcp_token_malformed",
    algorithm: "gcp_token_algorithm",
    unknown_key: "gcp_unknown_key",
    signature: "gcp_token_signature",
    expired: "gcp_token_expired",
    not_yet_valid: "gcp_token_not_yet_valid",
};

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

fn malformed(detail: impl Into<String>) -> Rejected {
    REASONS.malformed(detail)
}

/// Authenticates a push by its token: see the module documentation for the checks.
pub async fn verify_push_token(
    headers: &HeaderMap,
    now: DateTime<Utc>,
    expected: &Expected<'_>,
    keys: &GoogleKeys,
) -> Result<Claims, Rejected> {
    let token = bearer_token(headers)?;
    let kid = REASONS.signing_key_id(token)?;
    let key = keys.key(&kid).await?;
    let claims = REASONS.verified_claims(token, &key, &kid)?;
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
    REASONS.check_shape(token, "bearer token")?;
    Ok(token)
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

    let validity = REASONS.check_times(claims, now)?;
    Ok(Claims {
        issuer: issuer.to_string(),
        audience: audience.to_string(),
        email: email.to_string(),
        subject: claims.get("sub").and_then(Value::as_str).map(str::to_string),
        issued_at: validity.issued_at,
        expires_at: validity.expires_at,
    })
}

#[cfg(test)]
mod tests;
