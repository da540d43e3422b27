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
    /// Authenticated, but the payload cannot be decoded: stored whole as a `raw` event
    /// (what [`Rejected::kept`] says, else the whole body) and acknowledged.
    Undecodable,
    /// Authenticated, but the subscription handshake it asks for cannot be completed (an
    /// SNS confirmation without its token, or one AWS refused): no data to keep, and a
    /// retry cannot help, so it is recorded as a rejection and acknowledged.
    HandshakeRefused,
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
    /// For an undecodable push: what of it its sender keeps as the `raw` event, when that
    /// is not simply the whole body keyed by its hash.
    pub kept: Option<Box<Kept>>,
}

/// What a sender keeps of an authentic push it could not decode (every field optional:
/// absent, the whole request body, its `Content-Type`, and `sha256:` of the kept bytes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Kept {
    /// The undecodable payload, when it is a part of the body (an SNS `Message`, a Graph
    /// notification without its `clientState`).
    pub body: Option<Vec<u8>>,
    pub content_type: Option<String>,
    /// The id the sender signed for it (a webhook delivery id, a Pub/Sub message id).
    pub dedupe_key: Option<String>,
}

impl Rejected {
    pub fn new(class: RejectClass, reason: &'static str, detail: impl Into<String>) -> Rejected {
        Rejected { class, reason, detail: detail.into(), kept: None }
    }
    pub fn unauthenticated(reason: &'static str, detail: impl Into<String>) -> Rejected {
        Rejected::new(RejectClass::Unauthenticated, reason, detail)
    }
    /// The connection's own config cannot be used (`invalid_connection_config`): every push
    /// is refused as unauthenticated, so the detail (which names config fields) goes to the
    /// rejection record and never back to whoever pushed.
    pub fn config(detail: impl Into<String>) -> Rejected {
        Rejected::unauthenticated("invalid_connection_config", detail)
    }
    pub fn malformed(reason: &'static str, detail: impl Into<String>) -> Rejected {
        Rejected::new(RejectClass::Malformed, reason, detail)
    }
    pub fn undecodable(reason: &'static str, detail: impl Into<String>) -> Rejected {
        Rejected::new(RejectClass::Undecodable, reason, detail)
    }
    pub fn handshake_refused(reason: &'static str, detail: impl Into<String>) -> Rejected {
        Rejected::new(RejectClass::HandshakeRefused, reason, detail)
    }
    /// Unavailable: a key or certificate cannot be fetched right now.
    pub fn unavailable(reason: &'static str, detail: impl Into<String>) -> Rejected {
        Rejected::new(RejectClass::Unavailable, reason, detail)
    }

    /// This undecodable push is kept as `body` (a part of the request), of `content_type`
    /// (`None`: the request's).
    pub fn keeping(mut self, body: Vec<u8>, content_type: Option<&str>) -> Rejected {
        let kept = self.kept.get_or_insert_with(Box::default);
        kept.body = Some(body);
        kept.content_type = content_type.map(str::to_owned);
        self
    }

    /// This undecodable push is deduplicated on `id`, the id its sender signed, if any.
    pub fn keyed(mut self, id: Option<String>) -> Rejected {
        if let Some(id) = id {
            self.kept.get_or_insert_with(Box::default).dedupe_key = Some(id);
        }
        self
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
