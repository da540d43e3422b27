//! The checks every RS256 JWT a key publisher signs goes through, whichever token it
//! is: Pub/Sub push tokens (`sources::gcp_pubsub::oidc`) and Graph validation
//! tokens (`sources::ms_graph::tokens`). Each caller names its own reason codes
//! in a [`Reasons`]; the claims that identify the sender stay with the caller.
//!
//! Nothing a token says is believed before its signature verifies, except which key to
//! verify it with: the shape (three base64url parts), then the JOSE header (`alg` RS256
//! exactly, so neither `none`, nor HMAC keyed with a public key, nor any other
//! algorithm; a `kid`), then the signature, then the times against the clock of the
//! check with [`LEEWAY_SECONDS`]. Keys a token carries or points at (`jwk`, `jku`, `x5u`,
//! `x5c`) are ignored. A refusal's detail names what was wrong, never the token.

use std::sync::LazyLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use super::Rejected;

/// Clock difference allowed between the signer and pushgate, for `exp`, `iat` and `nbf`.
pub const LEEWAY_SECONDS: i64 = 60;

/// Longest `kid` looked up; Google's are 40 hex digits, Microsoft's 27 characters.
const MAX_KID_LEN: usize = 256;

/// Longest value from a token quoted in a refusal's detail.
const MAX_QUOTED_LEN: usize = 200;

/// The reason codes of one kind of token, and how its details name the signer.
#[derive(Debug)]
pub struct Reasons {
    /// The signer, possessive-ready: "Google".
    pub signer: &'static str,
    /// The tokens checked, for details: "push tokens".
    pub tokens: &'static str,
    /// Not a JWT at all ([`super::RejectClass::Malformed`]).
    pub malformed: &'static str,
    pub algorithm: &'static str,
    pub unknown_key: &'static str,
    pub signature: &'static str,
    pub expired: &'static str,
    pub not_yet_valid: &'static str,
}

/// When a verified token was issued and when it expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
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

impl Reasons {
    pub fn malformed(&self, detail: impl Into<String>) -> Rejected {
        Rejected::malformed(self.malformed, detail)
    }

    /// Refuses `token` (called `what` in details) unless it is a compact JWT: three
    /// dot-separated base64url parts, the first two not empty.
    pub fn check_shape(&self, token: &str, what: &str) -> Result<(), Rejected> {
        let parts: Vec<&str> = token.split('.').collect();
        if parts.len() != 3 {
            return Err(self.malformed(format!("{what} is not a JWT: it has {} dot-separated parts, not 3", parts.len())));
        }
        let base64url = |part: &str| part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if parts[0].is_empty() || parts[1].is_empty() || !parts.iter().all(|part| base64url(part)) {
            return Err(self.malformed(format!("{what} is not a JWT: its parts are not all base64url")));
        }
        Ok(())
    }

    /// The `kid` of a token whose header names RS256.
    pub fn signing_key_id(&self, token: &str) -> Result<String, Rejected> {
        let encoded = token.split('.').next().unwrap_or_default();
        let header = URL_SAFE_NO_PAD
            .decode(encoded)
            .ok()
            .and_then(|json| serde_json::from_slice::<Map<String, Value>>(&json).ok())
            .ok_or_else(|| self.malformed("token header is not a base64url JSON object"))?;
        match header.get("alg") {
            Some(Value::String(alg)) if alg == "RS256" => {}
            Some(Value::String(alg)) => {
                return Err(Rejected::unauthenticated(
                    self.algorithm,
                    format!("token algorithm is {}; {} signs {} with RS256 only", quoted(alg), self.signer, self.tokens),
                ))
            }
            _ => return Err(Rejected::unauthenticated(self.algorithm, "token header names no algorithm (alg)")),
        }
        match header.get("kid") {
            Some(Value::String(kid)) if !kid.is_empty() && kid.len() <= MAX_KID_LEN => Ok(kid.clone()),
            Some(Value::String(kid)) if !kid.is_empty() => Err(Rejected::unauthenticated(
                self.unknown_key,
                format!("token key id (kid) is {} characters long; {}'s are short", kid.chars().count(), self.signer),
            )),
            _ => Err(Rejected::unauthenticated(self.unknown_key, "token header names no key id (kid)")),
        }
    }

    /// The claims of `token`, once its RS256 signature verifies with `key`.
    pub fn verified_claims(&self, token: &str, key: &DecodingKey, kid: &str) -> Result<Map<String, Value>, Rejected> {
        match jsonwebtoken::decode::<Map<String, Value>>(token, key, &SIGNATURE_ONLY) {
            Ok(data) => Ok(data.claims),
            Err(e) => Err(match e.kind() {
                ErrorKind::InvalidSignature => Rejected::unauthenticated(
                    self.signature,
                    format!("token signature does not verify with {}'s key {}", self.signer, quoted(kid)),
                ),
                ErrorKind::Base64(_) | ErrorKind::Utf8(_) => self.malformed("token is not a JWT: a part is not valid base64url"),
                ErrorKind::Json(_) => self.malformed(format!("token header or claims cannot be read: {e}")),
                _ => Rejected::unauthenticated(self.signature, format!("token cannot be verified: {e}")),
            }),
        }
    }

    /// `exp` and `iat` (required) and `nbf` (when present) against the clock `now`,
    /// each with [`LEEWAY_SECONDS`].
    pub fn check_times(&self, claims: &Map<String, Value>, now: DateTime<Utc>) -> Result<Validity, Rejected> {
        let now_seconds = now.timestamp();
        let expires = seconds_claim(claims, "exp", self.expired)?;
        if expires <= now_seconds.saturating_sub(LEEWAY_SECONDS) {
            return Err(Rejected::unauthenticated(
                self.expired,
                format!(
                    "token expired at {} ({} s before the check at {})",
                    shown_time(expires),
                    now_seconds.saturating_sub(expires),
                    shown_time(now_seconds)
                ),
            ));
        }
        let not_yet_valid = |since: &str, at: i64| {
            Rejected::unauthenticated(
                self.not_yet_valid,
                format!(
                    "token {since} {}, {} s after the check at {}",
                    shown_time(at),
                    at.saturating_sub(now_seconds),
                    shown_time(now_seconds)
                ),
            )
        };
        let issued = seconds_claim(claims, "iat", self.not_yet_valid)?;
        if issued > now_seconds.saturating_add(LEEWAY_SECONDS) {
            return Err(not_yet_valid("is issued at", issued));
        }
        if claims.contains_key("nbf") {
            let not_before = seconds_claim(claims, "nbf", self.not_yet_valid)?;
            if not_before > now_seconds.saturating_add(LEEWAY_SECONDS) {
                return Err(not_yet_valid("is valid from", not_before));
            }
        }
        let time = |seconds: i64, reason: &'static str, name: &str| {
            DateTime::from_timestamp(seconds, 0)
                .ok_or_else(|| Rejected::unauthenticated(reason, format!("token {name} {seconds} is not a representable time")))
        };
        Ok(Validity { issued_at: time(issued, self.not_yet_valid, "iat")?, expires_at: time(expires, self.expired, "exp")? })
    }
}

/// A string claim, or `reason` when it is missing or not a string.
pub fn string_claim<'c>(claims: &'c Map<String, Value>, name: &str, reason: &'static str) -> Result<&'c str, Rejected> {
    match claims.get(name) {
        Some(Value::String(value)) => Ok(value),
        None => Err(Rejected::unauthenticated(reason, format!("token has no {name} claim"))),
        Some(_) => Err(Rejected::unauthenticated(reason, format!("token {name} claim is not a string"))),
    }
}

/// A NumericDate claim: whole seconds since the epoch.
fn seconds_claim(claims: &Map<String, Value>, name: &str, reason: &'static str) -> Result<i64, Rejected> {
    match claims.get(name) {
        Some(value) => {
            value.as_i64().ok_or_else(|| Rejected::unauthenticated(reason, format!("token {name} claim is not whole seconds since 1970")))
        }
        None => Err(Rejected::unauthenticated(reason, format!("token has no {name} claim"))),
    }
}

/// Seconds since the epoch as RFC 3339 (or as the number, when out of range).
fn shown_time(seconds: i64) -> String {
    DateTime::from_timestamp(seconds, 0).map_or_else(|| seconds.to_string(), |t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
}

/// A value from a token, quoted and escaped, cut at [`MAX_QUOTED_LEN`] characters.
pub fn quoted(text: &str) -> String {
    let cut: String = text.chars().take(MAX_QUOTED_LEN).collect();
    if cut.len() < text.len() {
        format!("{cut:?}...")
    } else {
        format!("{cut:?}")
    }
}
