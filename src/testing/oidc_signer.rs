//! A stand-in for a key publisher in tests (Google, Microsoft): its own RSA-2048 key
//! under a `kid`, the JWKS that publishes it, RS256 tokens of any claims, and the
//! forgeries a verifier must refuse (any header, unsigned, HMAC with a chosen secret).
//! The tokens each publisher signs are built by its source's `test_signer`.
//!
//! Tokens are built here by hand (base64url of JSON, RSA PKCS#1 v1.5 SHA-256 or
//! HMAC-SHA256 by aws-lc-rs), independently of the `jsonwebtoken` code that verifies
//! them, so a round trip tests that too. Nothing in this module runs outside tests;
//! failures of key generation panic.

use std::path::{Path, PathBuf};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{KeyPair, RsaKeyPair, RSA_PKCS1_SHA256};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::{json, Value};

/// A key publisher look-alike with one key.
pub struct TestOidcSigner {
    key: RsaKeyPair,
    kid: String,
}

impl Default for TestOidcSigner {
    fn default() -> TestOidcSigner {
        TestOidcSigner::new()
    }
}

impl TestOidcSigner {
    /// A new key under a random `kid` of 40 hex digits, like Google's.
    pub fn new() -> TestOidcSigner {
        let mut id = [0u8; 20];
        aws_lc_rs::rand::fill(&mut id).expect("system randomness");
        TestOidcSigner::with_kid(&hex::encode(id))
    }

    /// A new key under a chosen `kid` (for a forger who copies a real key's id).
    pub fn with_kid(kid: &str) -> TestOidcSigner {
        TestOidcSigner { key: RsaKeyPair::generate(KeySize::Rsa2048).expect("RSA key generation"), kid: kid.to_string() }
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWK, as Google publishes it (with `alg`).
    pub fn jwk(&self) -> Value {
        let components = PublicKeyComponents::<Vec<u8>>::from(self.key.public_key());
        json!({
            "kty": "RSA",
            "alg": "RS256",
            "use": "sig",
            "kid": self.kid,
            "n": URL_SAFE_NO_PAD.encode(&components.n),
            "e": URL_SAFE_NO_PAD.encode(&components.e),
        })
    }

    /// A JWKS holding this signer's key only.
    pub fn jwks_json(&self) -> String {
        jwks_of(&[self])
    }

    /// The public key, PKCS#1 `RSAPublicKey` DER.
    pub fn public_key_der(&self) -> Vec<u8> {
        self.key.public_key().as_ref().to_vec()
    }

    /// The public key as a PEM `PUBLIC KEY` (X.509 SubjectPublicKeyInfo), the form a
    /// forger would find published.
    pub fn public_key_pem(&self) -> String {
        let der = self.key.public_key().as_der().expect("RSA public key as DER");
        let text = STANDARD.encode(der.as_ref());
        let lines: Vec<&str> = text.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap_or_default()).collect();
        format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", lines.join("\n"))
    }

    /// `claims` signed with RS256 under this signer's `kid`.
    pub fn token(&self, claims: Value) -> String {
        self.token_with_header(json!({"alg": "RS256", "kid": self.kid, "typ": "JWT"}), claims)
    }

    /// Any `header` and `claims`, signed with this signer's key by RS256 whatever the
    /// header says.
    pub fn token_with_header(&self, header: Value, claims: Value) -> String {
        let signing_input = signing_input(&header, &claims);
        let mut signature = vec![0; self.key.public_modulus_len()];
        self.key.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), signing_input.as_bytes(), &mut signature).expect("RSA signing");
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    /// `claims` under `{"alg": "none"}` with an empty signature.
    pub fn unsigned(&self, claims: Value) -> String {
        format!("{}.", signing_input(&json!({"alg": "none", "kid": self.kid, "typ": "JWT"}), &claims))
    }

    /// `claims` under HS256 and this signer's `kid`, the HMAC keyed with `secret`: the
    /// forgery that uses a public key as an HMAC secret.
    pub fn hs256_with(&self, secret: &[u8], claims: Value) -> String {
        let signing_input = signing_input(&json!({"alg": "HS256", "kid": self.kid, "typ": "JWT"}), &claims);
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
        let tag = aws_lc_rs::hmac::sign(&key, signing_input.as_bytes());
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }
}

/// Writes `jwks` to `dir/name`, and answers its path.
pub fn write_jwks_file(dir: &Path, name: &str, jwks: &str) -> std::io::Result<PathBuf> {
    let path = dir.join(name);
    std::fs::write(&path, jwks)?;
    Ok(path)
}

/// A JWKS holding the keys of `signers`, in order.
pub fn jwks_of(signers: &[&TestOidcSigner]) -> String {
    json!({"keys": signers.iter().map(|s| s.jwk()).collect::<Vec<_>>()}).to_string()
}

fn signing_input(header: &Value, claims: &Value) -> String {
    format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()))
}
