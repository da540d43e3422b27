use super::*;
use crate::sources::ms_graph::test_rich::{pem, pkcs8_to_pkcs1, TestRichKey};
use serde_json::json;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/ms-graph/encrypted-content");

/// A throwaway RSA-1024 key (`openssl genpkey -algorithm RSA -pkeyopt
/// rsa_keygen_bits:1024`), too short to be accepted.
const RSA_1024: &str = "-----BEGIN PRIVATE KEY-----\nMIICdgIBADANBgkqhkiG9w0BAQEFAASCAmAwggJcAgEAAoGBAN4IgcY6/lr8wMET\nPbTl/dY2PTXVGeQLdde/g+7VeMWl19URoOlBvswAUU/u3DjYzrN6SU627yrtJkwY\nmeGrGbbcxbkwezvmL00R/yNl0ADPVqWoeTmzVUGNxsx+EeJ+ubW2pjkuhf2OJKfb\ntz9y17MJ4iJSlk/nEhYixsK8B1QnAgMBAAECgYALSdtvPKiZ76fNKTFF9TuGnJNY\nHVGHqp1/LpmClw/g3KGwj4ji0xjkPk/kBHzl1wALV/hKLDrUr+H2lHmeY5iW/zXY\nMSr9uvmgoDm0M+QxhZ3ls1xUfZ6r7kP+kB62Byt/2DFCKn7eUCpjMIqsBIcnxFqT\npZhP/oLOwXursqTb4QJBAPmNy0rnDD+h1+FNy9g1REiZrMAqMQmzoH0+vlB8INhp\nufy9RrIfjVgK7TJufYxb3e7RGZt1KViMuJ/VEJh1IJ0CQQDjxLqmVUUDGyoPoVQM\nzkISnV7Xjqk+IfiUYPYytirqumSMCLpDxfQgiLjmTGb+hLjeprNEMZ+7e28BrpvV\nd+KTAkAyfeoAAbeMuGZBg8gWutBSECXPy7mYSOvT63n+Nt8+akXjSTigmZmzkqJj\nbc+hMoU46L3Romb3L6G7VRTChBBRAkEAsYqu52r+MW6iOa7KgnTggfwTark0aU83\nogl2v47KI1AJgjJnZt7N7fJFFpcljW3NYRjWEekQlqafn9MIe7xIawJAU2oXYDkn\nolfTbiqWdzJ8TKQl8wvCTnOAYtH94YoVY/7VdDcDTDl+lVD68ixrmWgU+M/nI6mC\nbf7J6ZhvSb5YKg==\n-----END PRIVATE KEY-----\n";

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{FIXTURES}/{name}")).expect("fixture")
}

/// The Graph SDK test vector: its `encryptedContent` and the key it was encrypted to.
fn vector() -> (Value, DecryptionKeys) {
    let content: Value = serde_json::from_str(&fixture("encryptedContent.json")).unwrap();
    let config = json!({"encryption_keys": [{"id": "custom-id-for-testing", "private_key_pem": fixture("richnotificationsapp.key.pem")}]});
    (content, DecryptionKeys::from_config(&config).unwrap())
}

/// `content` with the base64 field `field` decoded, changed by `change`, re-encoded.
fn tampered(content: &Value, field: &str, change: impl FnOnce(&mut Vec<u8>)) -> Value {
    let mut bytes = STANDARD.decode(content[field].as_str().unwrap()).unwrap();
    change(&mut bytes);
    let mut out = content.clone();
    out[field] = json!(STANDARD.encode(bytes));
    out
}

fn reason(result: Result<Value, RichError>) -> &'static str {
    result.expect_err("refused").reason()
}

#[test]
fn the_graph_sdk_vector_decrypts_to_its_plaintext() {
    let (content, keys) = vector();
    let resource = decrypt(&content, &keys).unwrap();
    let expected: Value = serde_json::from_str(&fixture("expected-plaintext.json")).unwrap();
    assert_eq!(resource, expected);
    assert_eq!(resource["etag"], "1625126194597");
    assert_eq!(resource["body"]["content"], "Hello World");
}

#[test]
fn a_changed_byte_in_any_field_is_refused_with_its_reason() {
    let (content, keys) = vector();
    let flip = |i: usize| move |b: &mut Vec<u8>| b[i] ^= 0x01;
    assert_eq!(reason(decrypt(&tampered(&content, "data", flip(0)), &keys)), "graph_data_signature_invalid");
    let last = |b: &mut Vec<u8>| {
        let n = b.len() - 1;
        b[n] ^= 0x80
    };
    assert_eq!(reason(decrypt(&tampered(&content, "data", last), &keys)), "graph_data_signature_invalid");
    assert_eq!(reason(decrypt(&tampered(&content, "dataKey", flip(10)), &keys)), "graph_data_key_invalid");
    assert_eq!(reason(decrypt(&tampered(&content, "dataSignature", flip(31)), &keys)), "graph_data_signature_invalid");
    assert_eq!(reason(decrypt(&tampered(&content, "dataSignature", |b| b.truncate(16)), &keys)), "graph_data_signature_invalid");
    assert_eq!(reason(decrypt(&tampered(&content, "dataKey", |b| b.push(0)), &keys)), "graph_data_key_invalid");
}

#[test]
fn unknown_ids_and_missing_keys_are_refused() {
    let (mut content, keys) = vector();
    let no_keys = DecryptionKeys::from_config(&json!({})).unwrap();
    assert!(no_keys.is_empty());
    assert_eq!(reason(decrypt(&content, &no_keys)), "graph_encryption_key_unknown");
    content["encryptionCertificateId"] = json!("another-id");
    let error = decrypt(&content, &keys).unwrap_err();
    assert_eq!(error.reason(), "graph_encryption_key_unknown");
    assert!(error.to_string().contains("another-id"), "{error}");
    content["encryptionCertificateId"] = json!("x".repeat(10_000));
    assert!(decrypt(&content, &keys).unwrap_err().to_string().len() < 200, "long ids are cut");
}

#[test]
fn malformed_content_is_refused_as_malformed() {
    let (content, keys) = vector();
    let mut cases = vec![json!(null), json!("text"), json!([]), json!({})];
    for field in ["data", "dataKey", "dataSignature", "encryptionCertificateId"] {
        let mut missing = content.clone();
        missing.as_object_mut().unwrap().remove(field);
        let mut number = content.clone();
        number[field] = json!(1);
        cases.extend([missing, number]);
    }
    for field in ["data", "dataKey", "dataSignature"] {
        let mut bad = content.clone();
        bad[field] = json!("not base64!");
        cases.push(bad);
    }
    for case in cases {
        let error = decrypt(&case, &keys).unwrap_err();
        assert_eq!(error.reason(), "graph_encrypted_content_malformed", "{case}");
    }
}

#[test]
fn a_data_key_of_the_wrong_length_is_refused() {
    let key = TestRichKey::generate("k");
    let keys = DecryptionKeys::from_config(&json!({"encryption_keys": [key.config_entry()]})).unwrap();
    for len in [0, 16, 31, 33, 64] {
        let content = key.encrypt_with(&vec![7u8; len], b"{}");
        assert_eq!(reason(decrypt(&content, &keys)), "graph_data_key_invalid", "{len}-byte key");
    }
}

#[test]
fn authenticated_data_that_is_not_json_or_badly_padded_is_data_invalid() {
    let key = TestRichKey::generate("k");
    let keys = DecryptionKeys::from_config(&json!({"encryption_keys": [key.config_entry()]})).unwrap();
    assert_eq!(reason(decrypt(&key.encrypt(b"not json"), &keys)), "graph_data_invalid");
    // The authentic plaintext is kept (to be stored whole), and never shown by `Debug`.
    let Err(not_json @ RichError::PlaintextNotJson { .. }) = decrypt(&key.encrypt(b"secret text"), &keys) else { panic!("not JSON") };
    assert!(matches!(&not_json, RichError::PlaintextNotJson { plaintext, .. } if plaintext.0 == b"secret text"));
    assert!(!format!("{not_json:?}").contains("secret text"));
    assert_eq!(reason(decrypt(&key.encrypt(b""), &keys)), "graph_data_invalid");
    // A valid HMAC over a ciphertext that is not a whole number of blocks, or is empty.
    let symmetric = [9u8; 32];
    for data in [vec![1u8; 17], Vec::new()] {
        let mut content = key.encrypt_with(&symmetric, b"{}");
        let mac = aws_lc_rs::hmac::sign(&aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &symmetric), &data);
        content["data"] = json!(STANDARD.encode(&data));
        content["dataSignature"] = json!(STANDARD.encode(mac.as_ref()));
        assert_eq!(reason(decrypt(&content, &keys)), "graph_data_invalid");
    }
}

#[test]
fn own_encryption_round_trips_and_keys_rotate() {
    let old = TestRichKey::generate("old");
    let new = TestRichKey::generate("new");
    let config = json!({"encryption_keys": [old.config_entry(), new.config_entry()]});
    let keys = DecryptionKeys::from_config(&config).unwrap();
    assert_eq!(keys.ids().collect::<Vec<_>>(), ["old", "new"]);
    let resource = json!({"id": "1", "body": {"content": "é ✓"}});
    for key in [&old, &new] {
        let content = key.encrypt(resource.to_string().as_bytes());
        assert_eq!(content["encryptionCertificateId"], key.id());
        assert_eq!(decrypt(&content, &keys).unwrap(), resource);
    }
    // A notification naming one key but wrapped to the other does not unwrap.
    let mut crossed = new.encrypt(b"{}");
    crossed["encryptionCertificateId"] = json!("old");
    assert_eq!(reason(decrypt(&crossed, &keys)), "graph_data_key_invalid");
}

#[test]
fn pkcs1_pem_keys_are_accepted() {
    let pkcs8_pem = fixture("richnotificationsapp.key.pem");
    let (_, pkcs8) = pem_block(&pkcs8_pem).unwrap();
    let pkcs1_pem = pem("RSA PRIVATE KEY", &pkcs8_to_pkcs1(&pkcs8).unwrap());
    let (content, _) = vector();
    let keys =
        DecryptionKeys::from_config(&json!({"encryption_keys": [{"id": "custom-id-for-testing", "private_key_pem": pkcs1_pem}]})).unwrap();
    assert_eq!(decrypt(&content, &keys).unwrap()["etag"], "1625126194597");

    let own = TestRichKey::generate("k");
    let keys =
        DecryptionKeys::from_config(&json!({"encryption_keys": [{"id": "k", "private_key_pem": own.private_key_pkcs1_pem()}]})).unwrap();
    assert_eq!(decrypt(&own.encrypt(b"[1]"), &keys).unwrap(), json!([1]));
}

#[test]
fn bad_key_configs_are_refused_without_showing_the_key() {
    let key = TestRichKey::generate("k");
    let pem_text = key.private_key_pem();
    let body_line = pem_text.lines().nth(1).unwrap().to_string();
    let cases = [
        json!({"encryption_keys": "x"}),
        json!({"encryption_keys": [{"private_key_pem": pem_text}]}),
        json!({"encryption_keys": [{"id": "k"}]}),
        json!({"encryption_keys": [key.config_entry(), key.config_entry()]}),
        json!({"encryption_keys": [{"id": "k", "private_key_pem": "-----BEGIN PRIVATE KEY-----"}]}),
        json!({"encryption_keys": [{"id": "k", "private_key_pem": pem_text.replace("PRIVATE KEY", "CERTIFICATE")}]}),
        json!({"encryption_keys": [{"id": "k", "private_key_pem": pem_text.replace(&body_line, &body_line[..40])}]}),
        json!({"encryption_keys": [{"id": "k", "private_key_pem": pem_text.replace("PRIVATE KEY", "ENCRYPTED PRIVATE KEY")}]}),
    ];
    for config in cases {
        let error = DecryptionKeys::from_config(&config).unwrap_err();
        assert_eq!(error.reason(), "graph_encryption_keys_invalid", "{config}");
        assert!(!error.to_string().contains(&body_line[..20]), "{error}");
    }
}

#[test]
fn short_and_non_rsa_keys_are_refused() {
    // A P-256 key in PKCS#8 and an RSA-1024 key: both well-formed, neither acceptable.
    let ec = aws_lc_rs::signature::EcdsaKeyPair::generate(&aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1_SIGNING).unwrap();
    let ec_pem = pem("PRIVATE KEY", ec.to_pkcs8v1().unwrap().as_ref());
    assert!(parse_private_key_pem(&ec_pem).unwrap_err().contains("not a valid RSA"));
    assert!(parse_private_key_pem(RSA_1024).unwrap_err().contains("shorter than 2048"));
    assert!(parse_private_key_pem(&fixture("richnotificationsapp.key.pem")).is_ok(), "the vector's key (4096 bits)");
    assert!(parse_private_key_pem(&"A".repeat(MAX_PEM_LEN + 1)).unwrap_err().contains("longer"));
}

#[test]
fn debug_output_shows_ids_not_keys() {
    let (_, keys) = vector();
    let shown = format!("{keys:?}");
    assert_eq!(shown, r#"["custom-id-for-testing (RSA-4096)"]"#);
    let cache = KeyCache::default();
    assert!(format!("{cache:?}").contains("capacity"));
}

#[test]
fn the_cache_parses_each_config_once_and_stays_bounded() {
    let a = TestRichKey::generate("a");
    let b = TestRichKey::generate("b");
    let cache = KeyCache::with_capacity(2);
    let config_a = json!({"client_state": "x", "encryption_keys": [a.config_entry()]});
    let first = cache.keys_for(&config_a).unwrap();
    // Other fields and key order do not matter; the same parsed keys are shared.
    let reordered = json!({"encryption_keys": [{"private_key_pem": a.private_key_pem(), "id": "a"}], "client_state": "y"});
    assert!(Arc::ptr_eq(&first, &cache.keys_for(&reordered).unwrap()));
    assert_eq!(cache.len(), 1);
    // A rotated config is a new entry; a third evicts the oldest.
    let both = cache.keys_for(&json!({"encryption_keys": [a.config_entry(), b.config_entry()]})).unwrap();
    assert_eq!(both.len(), 2);
    cache.keys_for(&json!({})).unwrap();
    assert_eq!(cache.len(), 2);
    assert!(!Arc::ptr_eq(&first, &cache.keys_for(&config_a).unwrap()), "evicted, parsed again");
    // Failures are returned, not cached.
    let bad = json!({"encryption_keys": [{"id": "z", "private_key_pem": "nope"}]});
    assert_eq!(cache.keys_for(&bad).unwrap_err().reason(), "graph_encryption_keys_invalid");
    assert_eq!(cache.len(), 2);
}

#[test]
fn certificates_are_checked_against_their_key() {
    let vector_key = parse_private_key_pem(&fixture("richnotificationsapp.key.pem")).unwrap();
    let certificate = fixture("richnotificationsapp.cert.pem");
    assert_eq!(check_certificate(&certificate, &vector_key), Ok(()));
    let other = parse_private_key_pem(&TestRichKey::generate("o").private_key_pem()).unwrap();
    assert!(check_certificate(&certificate, &other).unwrap_err().contains("does not match"));
    assert!(check_certificate(&fixture("richnotificationsapp.key.pem"), &vector_key).unwrap_err().contains("not `CERTIFICATE`"));
    assert!(check_certificate("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", &vector_key)
        .unwrap_err()
        .contains("not an X.509"));
}

#[test]
fn reasons_are_stable() {
    let id = || "i".to_string();
    let all = [
        (RichError::Malformed(String::new()), "graph_encrypted_content_malformed"),
        (RichError::KeyUnknown { id: id() }, "graph_encryption_key_unknown"),
        (RichError::DataKeyInvalid { id: id() }, "graph_data_key_invalid"),
        (RichError::SignatureInvalid { id: id() }, "graph_data_signature_invalid"),
        (RichError::DataInvalid(String::new()), "graph_data_invalid"),
        (RichError::PlaintextNotJson { detail: String::new(), plaintext: Plaintext(b"x".to_vec()) }, "graph_data_invalid"),
        (RichError::KeysInvalid(String::new()), "graph_encryption_keys_invalid"),
    ];
    for (error, reason) in all {
        assert_eq!(error.reason(), reason);
    }
}
