//! Secrets at rest: the master key that seals connection secrets, and admin token
//! generation and hashing.
//!
//! Sealing is AES-256-GCM (aws-lc-rs) with a random 96-bit nonce per seal and the
//! connection id as associated data, so a sealed blob copied onto another row fails to open.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use sha2::{Digest, Sha256};

const SEALED_PREFIX: &str = "v1:";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    #[error("the master key must be base64 of exactly 32 bytes")]
    BadKey,
    #[error("sealed data is malformed")]
    Malformed,
    #[error("sealed data does not open with this master key (wrong key or tampered data)")]
    OpenFailed,
}

/// Why a sealed config did not open: connections, destinations and the ingest cache
/// open theirs with [`MasterKey::open_config`] and say the same.
#[derive(Debug, thiserror::Error)]
pub enum SealedConfigError {
    #[error("the stored config cannot be opened: {0}")]
    Open(#[from] CryptoError),
    #[error("the stored config is not JSON")]
    NotJson,
}

/// The 32-byte key that encrypts connection secrets. Its `Debug` never shows the key.
pub struct MasterKey {
    key: LessSafeKey,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(***)")
    }
}

impl MasterKey {
    pub fn from_bytes(bytes: &[u8]) -> Result<MasterKey, CryptoError> {
        if bytes.len() != 32 {
            return Err(CryptoError::BadKey);
        }
        let unbound = UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| CryptoError::BadKey)?;
        Ok(MasterKey { key: LessSafeKey::new(unbound) })
    }

    pub fn from_base64(text: &str) -> Result<MasterKey, CryptoError> {
        let bytes = STANDARD.decode(text.trim()).map_err(|_| CryptoError::BadKey)?;
        MasterKey::from_bytes(&bytes)
    }

    /// A fresh random key, as base64 text (what the key file holds).
    pub fn generate_base64() -> String {
        STANDARD.encode(random_bytes::<32>())
    }

    /// Encrypts `plaintext`, binding it to `context` (the connection id).
    pub fn seal(&self, context: &str, plaintext: &[u8]) -> String {
        let nonce_bytes = random_bytes::<NONCE_LEN>();
        let mut buf = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce_bytes), Aad::from(context.as_bytes()), &mut buf)
            .expect("AES-GCM sealing of an in-memory buffer cannot fail");
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&buf);
        format!("{SEALED_PREFIX}{}", STANDARD.encode(out))
    }

    /// A sealed JSON config, opened and parsed.
    pub fn open_config(&self, context: &str, sealed: &str) -> Result<serde_json::Value, SealedConfigError> {
        let plain = self.open(context, sealed)?;
        serde_json::from_slice(&plain).map_err(|_| SealedConfigError::NotJson)
    }

    pub fn open(&self, context: &str, sealed: &str) -> Result<Vec<u8>, CryptoError> {
        let encoded = sealed.strip_prefix(SEALED_PREFIX).ok_or(CryptoError::Malformed)?;
        let raw = STANDARD.decode(encoded).map_err(|_| CryptoError::Malformed)?;
        if raw.len() < NONCE_LEN {
            return Err(CryptoError::Malformed);
        }
        let (nonce, ciphertext) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::Malformed)?;
        let mut buf = ciphertext.to_vec();
        let plain = self.key.open_in_place(nonce, Aad::from(context.as_bytes()), &mut buf).map_err(|_| CryptoError::OpenFailed)?;
        Ok(plain.to_vec())
    }
}

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    aws_lc_rs::rand::fill(&mut out).expect("the system random generator failed");
    out
}

/// A new admin token: 32 random bytes, URL-safe, prefixed so it is recognisable in a leak scan.
pub fn generate_admin_token() -> String {
    format!("pga_{}", URL_SAFE_NO_PAD.encode(random_bytes::<32>()))
}

/// SHA-256 of a token, hex: what the database keeps instead of the token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> MasterKey {
        MasterKey::from_base64(&MasterKey::generate_base64()).unwrap()
    }

    #[test]
    fn seal_then_open_returns_plaintext() {
        let k = key();
        let sealed = k.seal("conn-1", b"{\"secret\":\"s\"}");
        assert!(sealed.starts_with("v1:"));
        assert!(!sealed.contains("secret"));
        assert_eq!(k.open("conn-1", &sealed).unwrap(), b"{\"secret\":\"s\"}");
    }

    #[test]
    fn sealed_data_is_bound_to_its_context_and_key() {
        let k = key();
        let sealed = k.seal("conn-1", b"x");
        assert_eq!(k.open("conn-2", &sealed), Err(CryptoError::OpenFailed));
        assert_eq!(key().open("conn-1", &sealed), Err(CryptoError::OpenFailed));
        assert_eq!(k.open("conn-1", "v1:AAAA"), Err(CryptoError::Malformed));
        assert_eq!(k.open("conn-1", "plain"), Err(CryptoError::Malformed));
    }

    #[test]
    fn two_seals_of_one_plaintext_differ() {
        let k = key();
        assert_ne!(k.seal("c", b"same"), k.seal("c", b"same"));
    }

    #[test]
    fn bad_master_keys_are_refused() {
        assert!(MasterKey::from_base64("not base64!").is_err());
        assert!(MasterKey::from_base64(&STANDARD.encode([0u8; 16])).is_err());
        assert!(format!("{:?}", key()).contains("***"));
    }

    #[test]
    fn tokens_are_random_and_hash_stably() {
        let a = generate_admin_token();
        assert!(a.starts_with("pga_") && a.len() > 40);
        assert_ne!(a, generate_admin_token());
        assert_eq!(token_hash("abc"), token_hash("abc"));
        assert_eq!(token_hash("abc").len(), 64);
    }
}
