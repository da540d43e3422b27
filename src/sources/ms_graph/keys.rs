//! Microsoft's identity platform signing keys, which sign the `validationTokens` of
//! Graph rich notifications, and where pushgate gets them: `PUSHGATE_MICROSOFT_JWKS`, an
//! `https://` URL (by default Microsoft's [`DEFAULT_JWKS_URL`]) or the path of a local
//! JWKS file.
//!
//! Microsoft's entries read `{"kty": "RSA", "use": "sig", "kid", "x5t", "n", "e",
//! "x5c": [...]}`, sometimes with an `issuer`, usually without `alg`: RSA keys with a
//! `kid` and a 2048 to 8192-bit modulus are kept, others skipped. The certificate chain
//! (`x5c`) is not used: the key is `n` and `e`, as the JWKS is fetched over https from
//! Microsoft. The cache itself (max-age, reload limit, a failed reload keeping the keys
//! held) is [`crate::verify::jwks`].

use crate::verify::jwks::{KeySet, Published, Publisher};

pub use crate::verify::jwks::KeysError;

/// Where Microsoft publishes the keys of its common (multi-tenant) endpoint, which sign
/// Graph's validation tokens.
pub const DEFAULT_JWKS_URL: &str = "https://login.microsoftonline.com/common/discovery/v2.0/keys";

/// Microsoft as a key publisher.
pub const MICROSOFT: Publisher = Publisher {
    name: "Microsoft",
    setting: "PUSHGATE_MICROSOFT_JWKS",
    default_url: DEFAULT_JWKS_URL,
    unavailable: "graph_keys_unavailable",
    unavailable_offline: "graph_keys_unavailable_offline",
    unknown_key: "graph_unknown_key",
    modulus_bits: 2048..=8192,
};

/// The marker of Microsoft's key set.
#[derive(Debug)]
pub struct Microsoft;

impl Published for Microsoft {
    const PUBLISHER: &'static Publisher = &MICROSOFT;
}

/// Microsoft's signing keys by `kid`: cached, loaded from a URL or a file.
pub type MicrosoftKeys = KeySet<Microsoft>;

#[cfg(test)]
mod tests;
