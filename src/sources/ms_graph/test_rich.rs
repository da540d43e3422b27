//! A stand-in for Microsoft Graph in tests: an RSA-2048 key under a certificate id, its
//! PEM forms for a connection's `encryption_keys`, and `encryptedContent` objects built
//! the way Graph builds them for rich notifications.
//!
//! Encryption is written here from aws-lc-rs primitives, independently of the
//! decryption in [`super::rich`], so a round trip tests that too. Nothing in this
//! module runs outside tests; failures of key generation or encryption panic.

use aws_lc_rs::cipher::{EncryptionContext, PaddedBlockEncryptingKey, UnboundCipherKey, AES_256};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::iv::FixedLength;
use aws_lc_rs::rsa::{KeySize, OaepPublicEncryptingKey, PrivateDecryptingKey, OAEP_SHA1_MGF1SHA1};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};

/// A Graph look-alike encryption certificate's key, under an id.
pub struct TestRichKey {
    id: String,
    key: PrivateDecryptingKey,
}

impl TestRichKey {
    /// A new RSA-2048 key under `id` (the subscription's `encryptionCertificateId`).
    pub fn generate(id: &str) -> TestRichKey {
        TestRichKey { id: id.to_string(), key: PrivateDecryptingKey::generate(KeySize::Rsa2048).expect("RSA key generation") }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The private key, PKCS#8 DER.
    pub fn private_key_der(&self) -> Vec<u8> {
        self.key.as_der().expect("RSA key as PKCS#8").as_ref().to_vec()
    }

    /// The private key as a PEM `PRIVATE KEY` (PKCS#8).
    pub fn private_key_pem(&self) -> String {
        pem("PRIVATE KEY", &self.private_key_der())
    }

    /// The private key as a PEM `RSA PRIVATE KEY` (PKCS#1), as `openssl genrsa` wrote it
    /// before OpenSSL 3.
    pub fn private_key_pkcs1_pem(&self) -> String {
        pem("RSA PRIVATE KEY", &pkcs8_to_pkcs1(&self.private_key_der()).expect("PKCS#8 wraps PKCS#1"))
    }

    /// This key as one item of a connection's `encryption_keys`.
    pub fn config_entry(&self) -> Value {
        json!({"id": self.id, "private_key_pem": self.private_key_pem()})
    }

    /// A valid `encryptedContent` carrying `plaintext`, under this key's id: a random
    /// 32-byte key, AES-256-CBC with PKCS#7 padding and IV = key[..16], HMAC-SHA256 of
    /// the ciphertext under the same key, and the key wrapped with RSA-OAEP SHA-1.
    pub fn encrypt(&self, plaintext: &[u8]) -> Value {
        let mut symmetric = [0u8; 32];
        aws_lc_rs::rand::fill(&mut symmetric).expect("system randomness");
        self.encrypt_with(&symmetric, plaintext)
    }

    /// [`TestRichKey::encrypt`] with a chosen symmetric key of any length (a wrong length
    /// is what a broken sender would wrap). AES and HMAC use the key's first 32 bytes,
    /// zero-padded.
    pub fn encrypt_with(&self, symmetric: &[u8], plaintext: &[u8]) -> Value {
        let mut aes_key = [0u8; 32];
        let n = symmetric.len().min(32);
        aes_key[..n].copy_from_slice(&symmetric[..n]);
        let cipher = PaddedBlockEncryptingKey::cbc_pkcs7(UnboundCipherKey::new(&AES_256, &aes_key).expect("AES key")).expect("AES-CBC key");
        let mut iv = [0u8; 16];
        iv.copy_from_slice(&aes_key[..16]);
        let mut data = plaintext.to_vec();
        cipher.less_safe_encrypt(&mut data, EncryptionContext::Iv128(FixedLength::from(iv))).expect("AES-CBC encryption");
        let mac_key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &aes_key);
        let signature = aws_lc_rs::hmac::sign(&mac_key, &data);
        let public = OaepPublicEncryptingKey::new(self.key.public_key()).expect("OAEP public key");
        let mut wrapped = vec![0u8; public.ciphertext_size()];
        let wrapped = public.encrypt(&OAEP_SHA1_MGF1SHA1, symmetric, &mut wrapped, None).expect("OAEP encryption");
        json!({
            "data": STANDARD.encode(&data),
            "dataKey": STANDARD.encode(wrapped),
            "dataSignature": STANDARD.encode(signature.as_ref()),
            "encryptionCertificateId": self.id,
            "encryptionCertificateThumbprint": "0000000000000000000000000000000000000000",
        })
    }
}

/// `der` as PEM with `label`, in 64-character lines.
pub fn pem(label: &str, der: &[u8]) -> String {
    let text = STANDARD.encode(der);
    let lines: Vec<&str> = text.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap_or_default()).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

/// The PKCS#1 `RSAPrivateKey` inside a PKCS#8 `PrivateKeyInfo` (the contents of its
/// `privateKey` OCTET STRING), for tests of the PKCS#1 PEM form.
pub fn pkcs8_to_pkcs1(pkcs8: &[u8]) -> Option<Vec<u8>> {
    let (info, _) = der_element(pkcs8, 0x30)?;
    let (_, rest) = der_element(info, 0x02)?; // version
    let (_, rest) = der_element(rest, 0x30)?; // algorithm
    let (key, _) = der_element(rest, 0x04)?;
    Some(key.to_vec())
}

/// The contents of the DER element of `tag` at the start of `input`, and what follows.
fn der_element(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&first, rest) = input.split_first()?;
    if first != tag {
        return None;
    }
    let (&len_byte, rest) = rest.split_first()?;
    let (len, rest) = if len_byte < 0x80 {
        (len_byte as usize, rest)
    } else {
        let count = (len_byte & 0x7f) as usize;
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        (rest[..count].iter().fold(0usize, |acc, b| (acc << 8) | *b as usize), &rest[count..])
    };
    (rest.len() >= len).then(|| rest.split_at(len))
}
