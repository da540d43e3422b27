//! Where the senders' signing keys come from: SNS signing certificates, and the JWKS of
//! Google (Pub/Sub push tokens) and Microsoft (Graph validation tokens).

use std::path::PathBuf;

use super::layers::{var_name, Layers};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySources {
    pub sns_certs: SnsCertificates,
    /// `PUSHGATE_GOOGLE_JWKS`: an `https://` URL or the path of a JWKS file.
    pub google_jwks: String,
    /// `PUSHGATE_MICROSOFT_JWKS`: an `https://` URL or the path of a JWKS file.
    pub microsoft_jwks: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnsCertificates {
    /// Pinned certificates, by the last path segment of their `SigningCertURL`.
    pub pinned_dir: Option<PathBuf>,
    /// Whether certificates that are not pinned may be fetched from AWS.
    pub fetch: bool,
}

impl KeySources {
    pub(super) fn read(layers: &mut Layers) -> KeySources {
        let sns_certs =
            SnsCertificates { pinned_dir: layers.text("sns_cert_dir").map(PathBuf::from), fetch: layers.flag("sns_cert_fetch") };
        let mut jwks = |key: &str| {
            let value = layers.text(key).unwrap_or_default();
            // The key sets check the rest when they are built; this one is a policy.
            if value.starts_with("http://") {
                layers.error(format!("{}: keys are only fetched over https", var_name(key)));
            }
            value
        };
        KeySources { sns_certs, google_jwks: jwks("google_jwks"), microsoft_jwks: jwks("microsoft_jwks") }
    }
}
