//! Microsoft Graph rich-notification benchmark: [`decrypt`] on the Graph SDK's real
//! `encryptedContent` (a 1.4 KB Teams message encrypted to an RSA-4096 key) with the key
//! already parsed, as on the push path, then the same split in its halves: the RSA-OAEP
//! unwrap of `dataKey`, and the HMAC-SHA256 check with AES-256-CBC decryption and JSON
//! parsing. Rows for an RSA-2048 key (the test key, same plaintext) show what a smaller
//! certificate costs; rows for the key cache show what each push pays to find its keys
//! (a hit) and what parsing them costs once per config (cold).
//!
//! Each row runs `BENCH_SECONDS` (default 3) after a short warm-up, one call at a time
//! on one thread. Run: `cargo bench --bench graph_decrypt`.

mod common;

use std::path::{Path, PathBuf};

use pushgate::sources::ms_graph::rich::{self, decrypt, DecryptionKeys, KeyCache};
use pushgate::sources::ms_graph::test_rich::TestRichKey;
use serde_json::{json, Value};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ms-graph/encrypted-content").join(name)
}

fn main() {
    let duration = common::duration(3);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    let content: Value = serde_json::from_slice(&std::fs::read(fixture("encryptedContent.json")).expect("vector")).expect("JSON");
    let plaintext = std::fs::read(fixture("expected-plaintext.json")).expect("plaintext");
    let pem = std::fs::read_to_string(fixture("richnotificationsapp.key.pem")).expect("key");
    let config = json!({"client_state": "cs", "encryption_keys": [{"id": "custom-id-for-testing", "private_key_pem": pem}]});
    let keys = DecryptionKeys::from_config(&config).expect("vector key parses");
    let symmetric = rich::unwrap_key(&content, &keys).expect("vector key unwraps");
    assert!(decrypt(&content, &keys).is_ok(), "vector decrypts");

    let small = TestRichKey::generate("rsa-2048");
    let small_config = json!({"client_state": "cs", "encryption_keys": [small.config_entry()]});
    let small_keys = DecryptionKeys::from_config(&small_config).expect("test key parses");
    let small_content = small.encrypt(&plaintext);
    assert!(decrypt(&small_content, &small_keys).is_ok(), "test content decrypts");

    let cache = KeyCache::default();
    cache.keys_for(&config).expect("warm cache");

    let rows = runtime.block_on(async {
        vec![
            common::measure("decrypt, real vector (RSA-4096, key parsed)", duration, || async {
                assert!(decrypt(std::hint::black_box(&content), &keys).is_ok());
            })
            .await,
            common::measure("  OAEP-SHA1 unwrap of dataKey only (RSA-4096)", duration, || async {
                assert!(rich::unwrap_key(std::hint::black_box(&content), &keys).is_ok());
            })
            .await,
            common::measure("  HMAC-SHA256 + AES-256-CBC + JSON only", duration, || async {
                assert!(rich::open(std::hint::black_box(&content), &symmetric).is_ok());
            })
            .await,
            common::measure("decrypt, same plaintext to an RSA-2048 key", duration, || async {
                assert!(decrypt(std::hint::black_box(&small_content), &small_keys).is_ok());
            })
            .await,
            common::measure("KeyCache::keys_for, hit (RSA-4096 config)", duration, || async {
                assert!(cache.keys_for(std::hint::black_box(&config)).is_ok());
            })
            .await,
            common::measure("key parse, cold (DecryptionKeys::from_config, RSA-4096)", duration, || async {
                assert!(DecryptionKeys::from_config(std::hint::black_box(&config)).is_ok());
            })
            .await,
            common::measure("key parse, cold (DecryptionKeys::from_config, RSA-2048)", duration, || async {
                assert!(DecryptionKeys::from_config(std::hint::black_box(&small_config)).is_ok());
            })
            .await,
        ]
    });

    common::print(&rows);
}
