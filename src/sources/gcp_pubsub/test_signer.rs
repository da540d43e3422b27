//! A stand-in for Google in tests: the [`TestOidcSigner`] of every publisher, with
//! tokens shaped like those Google signs for Pub/Sub pushes.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

pub use crate::testing::oidc_signer::{jwks_of, TestOidcSigner};

/// Google's issuer, as Google writes it in push tokens.
pub const ISSUER: &str = "https://accounts.google.com";

/// The `sub` and `azp` of [`TestOidcSigner::push_token`]: a service account's numeric id.
pub const SUBJECT: &str = "104029292853099978293";

impl TestOidcSigner {
    /// Writes [`TestOidcSigner::jwks_json`] to `dir/google-jwks.json`.
    pub fn write_jwks(&self, dir: &Path) -> std::io::Result<PathBuf> {
        crate::testing::oidc_signer::write_jwks_file(dir, "google-jwks.json", &self.jwks_json())
    }

    /// The claims Google puts in a push token for `email` (the subscription's service
    /// account) and `audience`, issued at `now` and valid for an hour.
    pub fn push_claims(audience: &str, email: &str, now: DateTime<Utc>) -> Value {
        let iat = now.timestamp();
        json!({
            "aud": audience,
            "azp": SUBJECT,
            "email": email,
            "email_verified": true,
            "exp": iat + 3600,
            "iat": iat,
            "iss": ISSUER,
            "sub": SUBJECT,
        })
    }

    /// A valid push token: [`TestOidcSigner::push_claims`] signed by [`TestOidcSigner::token`].
    pub fn push_token(&self, audience: &str, email: &str, now: DateTime<Utc>) -> String {
        self.token(TestOidcSigner::push_claims(audience, email, now))
    }
}
