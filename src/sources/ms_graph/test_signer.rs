//! A stand-in for Microsoft's identity platform in tests: the [`TestOidcSigner`] of every
//! publisher, publishing its key as Microsoft does (no `alg`, with `x5t` and `x5c`), and
//! signing `validationTokens` shaped like those Graph puts in rich notifications, in v1
//! and v2 form.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::tokens::GRAPH_CHANGE_TRACKING_APP_ID;
use crate::testing::oidc_signer::write_jwks_file;
pub use crate::testing::oidc_signer::TestOidcSigner;

/// The `oid` and `sub` of the test tokens: Graph change tracking's service principal in
/// the tenant.
pub const SERVICE_PRINCIPAL: &str = "e7b4f6e1-2a4d-4d5b-9e61-8a3c7b2f0d44";

impl TestOidcSigner {
    /// The public key as Microsoft publishes it: `use` sig, no `alg`, the `kid` again as
    /// `x5t`, and a certificate chain pushgate does not read (here the key's DER, which
    /// no verifier may mistake for a certificate).
    pub fn microsoft_jwk(&self) -> Value {
        let mut jwk = self.jwk();
        let fields = jwk.as_object_mut().expect("a JWK is an object");
        fields.remove("alg");
        fields.insert("x5t".into(), json!(self.kid()));
        fields.insert("x5c".into(), json!([base64::Engine::encode(&base64::engine::general_purpose::STANDARD, self.public_key_der())]));
        fields.insert("issuer".into(), json!("https://login.microsoftonline.com/{tenantid}/v2.0"));
        jwk
    }

    /// A JWKS holding the keys of `signers` in Microsoft's form.
    pub fn microsoft_jwks_of(signers: &[&TestOidcSigner]) -> String {
        json!({"keys": signers.iter().map(|s| s.microsoft_jwk()).collect::<Vec<_>>()}).to_string()
    }

    /// Writes this signer's key, in Microsoft's form, to `dir/microsoft-jwks.json`.
    pub fn write_microsoft_jwks(&self, dir: &Path) -> std::io::Result<PathBuf> {
        write_jwks_file(dir, "microsoft-jwks.json", &TestOidcSigner::microsoft_jwks_of(&[self]))
    }

    /// The claims of a v1 validation token (issuer `sts.windows.net`, caller in
    /// `appid`) for the application `app_id` in `tenant_id`, issued at `now`, valid for
    /// an hour.
    pub fn graph_claims_v1(app_id: &str, tenant_id: &str, now: DateTime<Utc>) -> Value {
        let issuer = format!("https://sts.windows.net/{tenant_id}/");
        let mut claims = graph_claims(app_id, tenant_id, &issuer, now);
        claims["appid"] = json!(GRAPH_CHANGE_TRACKING_APP_ID);
        claims["appidacr"] = json!("2");
        claims["idp"] = json!(issuer);
        claims["ver"] = json!("1.0");
        claims
    }

    /// The claims of a v2 validation token (issuer `login.microsoftonline.com/…/v2.0`,
    /// caller in `azp`).
    pub fn graph_claims_v2(app_id: &str, tenant_id: &str, now: DateTime<Utc>) -> Value {
        let issuer = format!("https://login.microsoftonline.com/{tenant_id}/v2.0");
        let mut claims = graph_claims(app_id, tenant_id, &issuer, now);
        claims["azp"] = json!(GRAPH_CHANGE_TRACKING_APP_ID);
        claims["azpacr"] = json!("2");
        claims["ver"] = json!("2.0");
        claims
    }

    /// `claims` signed as Microsoft signs: RS256, with `x5t` and `kid` in the header.
    pub fn graph_token(&self, claims: Value) -> String {
        self.token_with_header(json!({"typ": "JWT", "alg": "RS256", "x5t": self.kid(), "kid": self.kid()}), claims)
    }

    /// A valid v1 validation token: [`TestOidcSigner::graph_claims_v1`], signed.
    pub fn graph_token_v1(&self, app_id: &str, tenant_id: &str, now: DateTime<Utc>) -> String {
        self.graph_token(TestOidcSigner::graph_claims_v1(app_id, tenant_id, now))
    }

    /// A valid v2 validation token: [`TestOidcSigner::graph_claims_v2`], signed.
    pub fn graph_token_v2(&self, app_id: &str, tenant_id: &str, now: DateTime<Utc>) -> String {
        self.graph_token(TestOidcSigner::graph_claims_v2(app_id, tenant_id, now))
    }
}

/// The claims both versions share.
fn graph_claims(app_id: &str, tenant_id: &str, issuer: &str, now: DateTime<Utc>) -> Value {
    let iat = now.timestamp();
    json!({
        "aud": app_id,
        "iss": issuer,
        "iat": iat,
        "nbf": iat,
        "exp": iat + 3600,
        "aio": "E2RgYJg0Z7n5kL3tW9uXgK8AAA==",
        "oid": SERVICE_PRINCIPAL,
        "rh": "0.AXEAtest.",
        "sub": SERVICE_PRINCIPAL,
        "tid": tenant_id,
        "uti": "f3k9Qd2x1E2mN8pLr0aBAA",
    })
}
