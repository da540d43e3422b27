//! Google's OIDC signing keys, which sign the token of every Pub/Sub push, and where
//! pushgate gets them: `PUSHGATE_GOOGLE_JWKS`, an `https://` URL (by default Google's
//! [`DEFAULT_JWKS_URL`]) or the path of a local JWKS file.
//!
//! The cache itself (max-age, reload limit, a failed reload keeping the keys held) is
//! [`crate::verify::jwks`]; this module only describes Google as its publisher.

use crate::verify::jwks::{KeySet, Published, Publisher};

pub use crate::verify::jwks::KeysError;

/// Where Google publishes the keys that sign its OIDC ID tokens.
pub const DEFAULT_JWKS_URL: &str = "https://www.googleapis.com/oauth2/v3/certs";

/// Google as a key publisher: the reason codes of its refusals, and its keys (RSA-2048
/// today; up to 8192 bits accepted).
pub const GOOGLE: Publisher = Publisher {
    name: "Google",
    setting: "PUSHGATE_GOOGLE_JWKS",
    default_url: DEFAULT_JWKS_URL,
    unavailable: "gcp_keys_unavailable",
    unavailable_offline: "gcp_keys_unavailable_offline",
    unknown_key: "gcp_unknown_key",
    modulus_bits: 2048..=8192,
};

/// The marker of Google's key set.
#[derive(Debug)]
pub struct Google;

impl Published for Google {
    const PUBLISHER: &'static Publisher = &GOOGLE;
}

/// Google's signing keys by `kid`: cached, loaded from a URL or a file.
pub type GoogleKeys = KeySet<Google>;
