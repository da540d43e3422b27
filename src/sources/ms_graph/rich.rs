//! The decryption of Microsoft Graph rich notifications: the connection's RSA private
//! keys (`config.encryption_keys`), parsed once per connection by [`KeyCache`], and
//! [`decrypt`], which turns one notification's `encryptedContent` into the Graph
//! resource it carries.
//!
//! Graph's scheme: a random 32-byte symmetric key wrapped with RSA-OAEP (SHA-1, MGF1
//! SHA-1) for the certificate named by `encryptionCertificateId`; the resource JSON
//! encrypted with AES-256-CBC, PKCS#7 padding, IV = the first 16 bytes of that key; and
//! an HMAC-SHA256 of the ciphertext under the same key (`dataSignature`). All
//! cryptography is aws-lc-rs. Nothing here panics on any input, and no error or `Debug`
//! output carries key material.
//!
//! One file: key parsing, the key cache and the decryption are one chain whose order is the
//! security argument; its tests are in `rich/tests.rs`.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use aws_lc_rs::cipher::{DecryptionContext, PaddedBlockDecryptingKey, UnboundCipherKey, AES_256};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::iv::FixedLength;
use aws_lc_rs::rsa::{OaepPrivateDecryptingKey, PrivateDecryptingKey, OAEP_SHA1_MGF1SHA1};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::Value;

/// Length of Graph's symmetric key: AES-256, and the HMAC-SHA256 key.
const SYMMETRIC_KEY_LEN: usize = 32;

/// A PEM larger than this is refused before decoding: an 8192-bit PKCS#8 key is about
/// 6.5 KB of PEM, so this leaves room for comments and a chain without letting a config
/// make the service decode megabytes.
const MAX_PEM_LEN: usize = 64 * 1024;

/// At most this many characters of a sender-chosen certificate id go into an error.
const MAX_ID_IN_ERROR: usize = 64;

/// Why a rich notification could not be decrypted, or the keys not loaded. Each variant
/// has a stable [`RichError::reason`]; the Display detail may name a certificate id but
/// never key bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RichError {
    /// A field is missing, not a string, or not base64.
    #[error("encryptedContent is malformed: {0}")]
    Malformed(String),
    /// No configured key has this `encryptionCertificateId` (or none is configured).
    #[error("no encryption key with id {id:?} is configured for this connection")]
    KeyUnknown { id: String },
    /// `dataKey` does not OAEP-decrypt under the key, or not to 32 bytes.
    #[error("dataKey does not decrypt to a 32-byte key under encryption key {id:?}")]
    DataKeyInvalid { id: String },
    /// The HMAC-SHA256 of `data` is not `dataSignature`.
    #[error("dataSignature does not match data (encryption key {id:?})")]
    SignatureInvalid { id: String },
    /// The authenticated ciphertext does not decrypt (its padding is wrong).
    #[error("data does not decrypt to JSON: {0}")]
    DataInvalid(String),
    /// The authenticated ciphertext decrypts, but not to JSON: the plaintext is kept, so
    /// the notification can be stored whole.
    #[error("data does not decrypt to JSON: the plaintext is not JSON ({detail})")]
    PlaintextNotJson { detail: String, plaintext: Plaintext },
    /// `config.encryption_keys` cannot be loaded.
    #[error("encryption_keys is invalid: {0}")]
    KeysInvalid(String),
}

impl RichError {
    /// The stable reason code of a refusal.
    pub fn reason(&self) -> &'static str {
        match self {
            RichError::Malformed(_) => "graph_encrypted_content_malformed",
            RichError::KeyUnknown { .. } => "graph_encryption_key_unknown",
            RichError::DataKeyInvalid { .. } => "graph_data_key_invalid",
            RichError::SignatureInvalid { .. } => "graph_data_signature_invalid",
            RichError::DataInvalid(_) | RichError::PlaintextNotJson { .. } => "graph_data_invalid",
            RichError::KeysInvalid(_) => "graph_encryption_keys_invalid",
        }
    }
}

/// Decrypted resource data. Its `Debug` shows its length only: it is the tenant's data.
#[derive(Clone, PartialEq, Eq)]
pub struct Plaintext(pub Vec<u8>);

impl std::fmt::Debug for Plaintext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Plaintext({} bytes)", self.0.len())
    }
}

/// One connection's decryption keys, by id. Its `Debug` shows ids and sizes only.
pub struct DecryptionKeys {
    keys: Vec<DecryptionKey>,
}

struct DecryptionKey {
    id: String,
    key: OaepPrivateDecryptingKey,
}

impl std::fmt::Debug for DecryptionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.keys.iter().map(|k| format!("{} (RSA-{})", k.id, k.key.key_size_bits()))).finish()
    }
}

impl DecryptionKeys {
    /// Parses `config["encryption_keys"]`, a list of `{"id", "private_key_pem"}` (other
    /// fields, such as `certificate_pem`, are for validation and are ignored here). An
    /// absent list is an empty set: every rich notification is then refused as
    /// [`RichError::KeyUnknown`].
    pub fn from_config(config: &Value) -> Result<DecryptionKeys, RichError> {
        let Some(list) = config.get("encryption_keys") else { return Ok(DecryptionKeys { keys: Vec::new() }) };
        let items = list.as_array().ok_or_else(|| RichError::KeysInvalid("must be a list".into()))?;
        let mut keys: Vec<DecryptionKey> = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let id = item.get("id").and_then(Value::as_str).filter(|s| !s.is_empty());
            let Some(id) = id else {
                return Err(RichError::KeysInvalid(format!("item {i} has no `id`")));
            };
            if keys.iter().any(|k| k.id == id) {
                return Err(RichError::KeysInvalid(format!("id {:?} appears twice", shorten(id))));
            }
            let Some(pem) = item.get("private_key_pem").and_then(Value::as_str) else {
                return Err(RichError::KeysInvalid(format!("key {:?} has no `private_key_pem`", shorten(id))));
            };
            let key = parse_private_key_pem(pem).map_err(|e| RichError::KeysInvalid(format!("key {:?}: {e}", shorten(id))))?;
            // Infallible in aws-lc-rs today; mapped rather than unwrapped all the same.
            let key = OaepPrivateDecryptingKey::new(key)
                .map_err(|_| RichError::KeysInvalid(format!("key {:?} cannot be used for RSA-OAEP", shorten(id))))?;
            keys.push(DecryptionKey { id: id.to_string(), key });
        }
        Ok(DecryptionKeys { keys })
    }

    /// How many keys are loaded.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key ids, in config order.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|k| k.id.as_str())
    }

    fn get(&self, id: &str) -> Option<&OaepPrivateDecryptingKey> {
        self.keys.iter().find(|k| k.id == id).map(|k| &k.key)
    }
}

/// Parsed [`DecryptionKeys`] by connection config, so the push path parses an RSA key
/// (0.6 ms for 4096 bits, 0.16 ms for 2048: aws-lc-rs checks the key as it loads it;
/// see BENCHMARKS.md) once per config rather than once per push.
///
/// Entries are keyed by the SHA-256 of the canonical JSON of `encryption_keys`, so a
/// config change (a rotated key) is a new entry and needs no invalidation; the oldest
/// entry goes when the cache is full. Failures are not cached: a config that fails here
/// was refused when saved, so this is rare, and caching it would hide a fix.
pub struct KeyCache {
    capacity: usize,
    entries: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    by_digest: HashMap<[u8; 32], Arc<DecryptionKeys>>,
    /// Insertion order, oldest first, for eviction.
    order: VecDeque<[u8; 32]>,
}

/// Entries kept by [`KeyCache::default`]: more connections with rich notifications than
/// one instance is expected to serve, at a few KB each.
pub const KEY_CACHE_CAPACITY: usize = 256;

impl Default for KeyCache {
    fn default() -> KeyCache {
        KeyCache::with_capacity(KEY_CACHE_CAPACITY)
    }
}

impl std::fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyCache").field("capacity", &self.capacity).field("len", &self.len()).finish()
    }
}

impl KeyCache {
    /// A cache of at most `capacity` configs (at least one).
    pub fn with_capacity(capacity: usize) -> KeyCache {
        KeyCache { capacity: capacity.max(1), entries: Mutex::new(Entries::default()) }
    }

    /// The keys of `config` (a connection's full, unsealed config), parsed at the first
    /// call for these `encryption_keys` and shared afterwards.
    pub fn keys_for(&self, config: &Value) -> Result<Arc<DecryptionKeys>, RichError> {
        let digest = config_digest(config.get("encryption_keys").unwrap_or(&Value::Null));
        if let Some(keys) = self.lock().by_digest.get(&digest) {
            return Ok(keys.clone());
        }
        // Parsed outside the lock so one slow parse does not hold up other connections;
        // two pushes racing on a new config both parse and the second insert is a no-op.
        let keys = Arc::new(DecryptionKeys::from_config(config)?);
        let mut entries = self.lock();
        if let Some(existing) = entries.by_digest.get(&digest) {
            return Ok(existing.clone());
        }
        while entries.order.len() >= self.capacity {
            match entries.order.pop_front() {
                Some(oldest) => {
                    entries.by_digest.remove(&oldest);
                }
                None => break,
            }
        }
        entries.order.push_back(digest);
        entries.by_digest.insert(digest, keys.clone());
        Ok(keys)
    }

    /// How many configs are cached.
    pub fn len(&self) -> usize {
        self.lock().order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        // A panic while holding the lock cannot leave the maps inconsistent in a way
        // that matters (at worst an entry is missing from one), so keep serving.
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// SHA-256 of `value` serialized with object keys sorted, so two configs that differ
/// only in key order (as stored by different writers) share an entry.
fn config_digest(value: &Value) -> [u8; 32] {
    let mut text = String::new();
    canonical_json(value, &mut text);
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

fn canonical_json(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                canonical_json(&map[key.as_str()], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_json(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// Decrypts one notification's `encryptedContent` to the Graph resource it carries.
///
/// The HMAC is checked before any AES work, so a forged or corrupted ciphertext never
/// reaches the padding check (no padding oracle).
pub fn decrypt(encrypted_content: &Value, keys: &DecryptionKeys) -> Result<Value, RichError> {
    let content = Content::parse(encrypted_content)?;
    let symmetric = content.unwrap_key(keys)?;
    content.open(&symmetric)
}

/// The first half of [`decrypt`]: the RSA-OAEP unwrap of `dataKey`. Public for the
/// benchmark, which times the halves apart.
#[doc(hidden)]
pub fn unwrap_key(encrypted_content: &Value, keys: &DecryptionKeys) -> Result<SymmetricKey, RichError> {
    Content::parse(encrypted_content)?.unwrap_key(keys)
}

/// The second half of [`decrypt`]: the HMAC check and AES-256-CBC decryption under an
/// unwrapped key. Public for the benchmark.
#[doc(hidden)]
pub fn open(encrypted_content: &Value, symmetric: &SymmetricKey) -> Result<Value, RichError> {
    Content::parse(encrypted_content)?.open(symmetric)
}

/// An unwrapped 32-byte data key. Its `Debug` hides it; it is zeroed when dropped.
#[doc(hidden)]
pub struct SymmetricKey([u8; SYMMETRIC_KEY_LEN]);

impl std::fmt::Debug for SymmetricKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SymmetricKey(..)")
    }
}

impl Drop for SymmetricKey {
    fn drop(&mut self) {
        // Best effort: `black_box` keeps the compiler from dropping the dead store.
        self.0.fill(0);
        std::hint::black_box(&self.0);
    }
}

/// The fields of `encryptedContent`, base64-decoded.
struct Content<'a> {
    data: Vec<u8>,
    data_key: Vec<u8>,
    data_signature: Vec<u8>,
    certificate_id: &'a str,
}

impl<'a> Content<'a> {
    fn parse(value: &'a Value) -> Result<Content<'a>, RichError> {
        if !value.is_object() {
            return Err(RichError::Malformed(format!("it is {}, not an object", super::super::json_kind(value))));
        }
        let text = |field: &str| -> Result<&'a str, RichError> {
            match value.get(field) {
                Some(Value::String(s)) => Ok(s.as_str()),
                Some(other) => Err(RichError::Malformed(format!("`{field}` is {}, not a string", super::super::json_kind(other)))),
                None => Err(RichError::Malformed(format!("`{field}` is missing"))),
            }
        };
        let bytes = |field: &str| -> Result<Vec<u8>, RichError> {
            STANDARD.decode(text(field)?).map_err(|_| RichError::Malformed(format!("`{field}` is not base64")))
        };
        let certificate_id = text("encryptionCertificateId")?;
        Ok(Content { data: bytes("data")?, data_key: bytes("dataKey")?, data_signature: bytes("dataSignature")?, certificate_id })
    }

    fn unwrap_key(&self, keys: &DecryptionKeys) -> Result<SymmetricKey, RichError> {
        let id = self.certificate_id;
        let key = keys.get(id).ok_or_else(|| RichError::KeyUnknown { id: shorten(id) })?;
        unwrap_data_key(key, &self.data_key).map(SymmetricKey).ok_or_else(|| RichError::DataKeyInvalid { id: shorten(id) })
    }

    fn open(self, symmetric: &SymmetricKey) -> Result<Value, RichError> {
        let Content { mut data, data_signature, certificate_id, .. } = self;
        let plaintext = open_data(&symmetric.0, &mut data, &data_signature).map_err(|e| match e {
            OpenError::Signature => RichError::SignatureInvalid { id: shorten(certificate_id) },
            OpenError::Cipher => RichError::DataInvalid("AES-256-CBC decryption or its padding failed".into()),
        })?;
        serde_json::from_slice(plaintext)
            .map_err(|e| RichError::PlaintextNotJson { detail: json_error_kind(&e).to_owned(), plaintext: Plaintext(plaintext.to_vec()) })
    }
}

/// What kind of JSON error, for the detail (never the plaintext: it is the resource).
fn json_error_kind(error: &serde_json::Error) -> &'static str {
    match error.classify() {
        serde_json::error::Category::Io => "read error",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "data error",
        serde_json::error::Category::Eof => "truncated",
    }
}

/// The symmetric key wrapped in `data_key`, if it OAEP-decrypts to exactly 32 bytes.
fn unwrap_data_key(key: &OaepPrivateDecryptingKey, data_key: &[u8]) -> Option<[u8; SYMMETRIC_KEY_LEN]> {
    // OAEP needs the ciphertext to be exactly the modulus length; refusing others here
    // keeps odd lengths out of the RSA code entirely.
    if data_key.len() != key.key_size_bytes() {
        return None;
    }
    let mut buffer = vec![0u8; key.min_output_size()];
    let symmetric = match key.decrypt(&OAEP_SHA1_MGF1SHA1, data_key, &mut buffer, None) {
        Ok(plain) => <[u8; SYMMETRIC_KEY_LEN]>::try_from(&*plain).ok(),
        Err(_) => None,
    };
    buffer.fill(0);
    symmetric
}

enum OpenError {
    Signature,
    Cipher,
}

/// Checks `data`'s HMAC against `data_signature`, then decrypts `data` in place.
fn open_data<'d>(symmetric: &[u8; SYMMETRIC_KEY_LEN], data: &'d mut [u8], data_signature: &[u8]) -> Result<&'d mut [u8], OpenError> {
    let mac_key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, symmetric);
    // Constant-time comparison, and a tag of another length simply fails.
    aws_lc_rs::hmac::verify(&mac_key, data, data_signature).map_err(|_| OpenError::Signature)?;
    let cipher_key = UnboundCipherKey::new(&AES_256, symmetric).map_err(|_| OpenError::Cipher)?;
    let cipher = PaddedBlockDecryptingKey::cbc_pkcs7(cipher_key).map_err(|_| OpenError::Cipher)?;
    let mut iv = [0u8; 16];
    iv.copy_from_slice(&symmetric[..16]);
    let context = DecryptionContext::Iv128(FixedLength::from(iv));
    cipher.decrypt(data, context).map_err(|_| OpenError::Cipher)
}

/// Longest RSA key accepted. Every rich notification costs one private-key operation on
/// the push path (1.5 ms at 4096 bits, several times that at 8192), so larger keys would
/// let one batch of a thousand notifications occupy a core for many seconds.
pub const MAX_KEY_BITS: usize = 4096;

/// Parses a PEM RSA private key: `PRIVATE KEY` (PKCS#8) or `RSA PRIVATE KEY` (PKCS#1),
/// 2048 to [`MAX_KEY_BITS`] bits. The error describes the problem, never the key.
pub fn parse_private_key_pem(pem: &str) -> Result<PrivateDecryptingKey, String> {
    let key = parse_rsa_pem(pem)?;
    if key.key_size_bits() > MAX_KEY_BITS {
        return Err(format!("the RSA key is longer than {MAX_KEY_BITS} bits"));
    }
    Ok(key)
}

fn parse_rsa_pem(pem: &str) -> Result<PrivateDecryptingKey, String> {
    if pem.len() > MAX_PEM_LEN {
        return Err(format!("the PEM is longer than {MAX_PEM_LEN} bytes"));
    }
    let (label, der) = pem_block(pem)?;
    let rejected = |e: aws_lc_rs::error::KeyRejected| match e.description_() {
        "TooSmall" => "the RSA key is shorter than 2048 bits".to_string(),
        "TooLarge" => "the RSA key is longer than 8192 bits".to_string(),
        _ => "it is not a valid RSA private key".to_string(),
    };
    match label {
        "PRIVATE KEY" => PrivateDecryptingKey::from_pkcs8(&der).map_err(rejected),
        "RSA PRIVATE KEY" => {
            // aws-lc-rs reads PKCS#1 only as a signing key pair; re-encoding it as PKCS#8
            // gives the same key as a decrypting one, with the same checks.
            let pair = aws_lc_rs::rsa::KeyPair::from_der(&der).map_err(rejected)?;
            let pkcs8 = pair.as_der().map_err(|_| "the RSA key cannot be re-encoded as PKCS#8".to_string())?;
            PrivateDecryptingKey::from_pkcs8(pkcs8.as_ref()).map_err(rejected)
        }
        "ENCRYPTED PRIVATE KEY" => Err("encrypted PEM keys are not supported: export the key unencrypted".into()),
        other => Err(format!("the PEM block is `{}`, not `PRIVATE KEY` or `RSA PRIVATE KEY`", shorten(other))),
    }
}

/// The label and decoded contents of the first PEM block of `text`.
fn pem_block(text: &str) -> Result<(&str, Vec<u8>), String> {
    const NOT_PEM: &str = "it is not PEM (-----BEGIN ...----- / -----END ...-----)";
    let start = text.find("-----BEGIN ").ok_or(NOT_PEM)?;
    let after_begin = &text[start + "-----BEGIN ".len()..];
    let label_end = after_begin.find("-----").ok_or(NOT_PEM)?;
    let label = &after_begin[..label_end];
    let body_and_rest = &after_begin[label_end + "-----".len()..];
    let end_marker = format!("-----END {label}-----");
    let body_end = body_and_rest.find(&end_marker).ok_or("its PEM block has no matching END line")?;
    let body: String = body_and_rest[..body_end].chars().filter(|c| !c.is_ascii_whitespace()).collect();
    // Legacy OpenSSL encryption puts `Proc-Type:` headers in the body.
    if body.contains(':') {
        return Err("encrypted PEM keys are not supported: export the key unencrypted".into());
    }
    let der = STANDARD.decode(body).map_err(|_| "its PEM body is not base64".to_string())?;
    Ok((label, der))
}

/// Checks that `certificate_pem` is one X.509 certificate whose public key is that of
/// `key`: Graph encrypts to the certificate given at subscription time, so a mismatch
/// would make every rich notification undecryptable.
pub fn check_certificate(certificate_pem: &str, key: &PrivateDecryptingKey) -> Result<(), String> {
    use x509_parser::prelude::FromDer;
    use x509_parser::public_key::PublicKey;

    if certificate_pem.len() > MAX_PEM_LEN {
        return Err(format!("the PEM is longer than {MAX_PEM_LEN} bytes"));
    }
    let (label, der) = pem_block(certificate_pem)?;
    if label != "CERTIFICATE" {
        return Err(format!("the PEM block is `{}`, not `CERTIFICATE`", shorten(label)));
    }
    let (_, certificate) = x509_parser::parse_x509_certificate(&der).map_err(|_| "it is not an X.509 certificate".to_string())?;
    let Ok(PublicKey::RSA(cert_key)) = certificate.public_key().parsed() else {
        return Err("its public key is not an RSA key".into());
    };
    let own_der = key.public_key().as_der().map_err(|_| "the private key's public half cannot be encoded".to_string())?;
    let (_, own_spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(own_der.as_ref())
        .map_err(|_| "the private key's public half cannot be read back".to_string())?;
    let Ok(PublicKey::RSA(own_key)) = own_spki.parsed() else {
        return Err("the private key's public half is not an RSA key".into());
    };
    // Compared as integers: DER allows a leading zero byte before a high bit.
    let same =
        strip_zeros(cert_key.modulus) == strip_zeros(own_key.modulus) && strip_zeros(cert_key.exponent) == strip_zeros(own_key.exponent);
    if !same {
        return Err("its public key does not match the private key".into());
    }
    Ok(())
}

fn strip_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

/// A sender-chosen string cut to a length fit for an error message.
fn shorten(text: &str) -> String {
    if text.chars().count() <= MAX_ID_IN_ERROR {
        text.to_string()
    } else {
        let mut cut: String = text.chars().take(MAX_ID_IN_ERROR).collect();
        cut.push('…');
        cut
    }
}

#[cfg(test)]
mod tests;
