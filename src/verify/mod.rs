//! Verification machinery shared by the senders: constant-time comparison and
//! HMAC-SHA256, the shared-secret schemes of generic pushes ([`auth`]), publishers' key
//! sets ([`jwks`]) and the RS256 token checks on them ([`jwt`]), what of a refused body
//! may be kept ([`redact`]), and the refusal every check answers with ([`Rejected`]).
//! Nothing here knows a particular sender.

pub mod auth;
pub mod jwks;
pub mod jwt;
pub mod redact;

use hmac::{Hmac, Mac};
use http::HeaderMap;
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// HMAC-SHA256 of the concatenation of `parts` under `key`.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// True when `tag` is the HMAC-SHA256 of `parts` under `key`; compared in constant time.
pub fn hmac_sha256_matches(key: &[u8], parts: &[&[u8]], tag: &[u8]) -> bool {
    constant_time_eq(&hmac_sha256(key, parts), tag)
}

/// How a refusal reads to the sender's retry rules (the HTTP layer maps it to a status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectClass {
    /// Credentials or signature missing or wrong.
    Unauthenticated,
    /// The request is malformed and was not authenticated.
    Malformed,
    /// Authenticated, but the payload cannot be decoded: kept and acknowledged.
    Undecodable,
    /// A key or certificate cannot be fetched right now: the sender should retry.
    Unavailable,
}

/// A refused push: its class, a stable reason code and a human detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {detail}")]
pub struct Rejected {
    pub class: RejectClass,
    pub reason: &'static str,
    pub detail: String,
}

impl Rejected {
    pub fn unauthenticated(reason: &'static str, detail: impl Into<String>) -> Rejected {
        Rejected { class: RejectClass::Unauthenticated, reason, detail: detail.into() }
    }
    /// The connection's own config cannot be used (`invalid_connection_config`): every push
    /// is refused as unauthenticated, so the detail (which names config fields) goes to the
    /// rejection record and never back to whoever pushed.
    pub fn config(detail: impl Into<String>) -> Rejected {
        Rejected::unauthenticated("invalid_connection_config", detail)
    }
    pub fn malformed(reason: &'static str, detail: impl Into<String>) -> Rejected {
        Rejected { class: RejectClass::Malformed, reason, detail: detail.into() }
    }
    pub fn undecodable(reason: &'static str, detail: impl Into<String>) -> Rejected {
        Rejected { class: RejectClass::Undecodable, reason, detail: detail.into() }
    }
}

/// A header's value as text, if present and visible ASCII.
pub(crate) fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        let tag = hmac_sha256(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(hex::encode(tag), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
        assert!(hmac_sha256_matches(b"Jefe", &[b"what do ya want for nothing?"], &tag));
        assert!(!hmac_sha256_matches(b"jefe", &[b"what do ya want for nothing?"], &tag));
        assert!(!hmac_sha256_matches(b"Jefe", &[b"what do ya want for nothing?"], &tag[..31]));
    }

    #[test]
    fn constant_time_eq_compares_content_and_length() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
