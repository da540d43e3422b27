//! Microsoft's key set: its JWKS shape, its setting and its reason codes. The cache's
//! behaviour (max-age, reload limit, failed loads) is tested once, in `verify::jwks`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::json;

use super::*;
use crate::sources::ms_graph::test_signer::TestOidcSigner;
use crate::sources::{RejectClass, Rejected};
use crate::testing::tls_server::{Reply, TlsServer};

fn reason<T>(result: Result<T, Rejected>) -> (RejectClass, &'static str, String) {
    match result {
        Ok(_) => panic!("expected a refusal"),
        Err(e) => (e.class, e.reason, e.detail),
    }
}

#[test]
fn settings_errors_name_the_microsoft_setting() {
    assert!(MicrosoftKeys::from_setting(DEFAULT_JWKS_URL).is_ok());
    for setting in ["", "http://login.microsoftonline.com/common/discovery/v2.0/keys", "https://"] {
        let e = MicrosoftKeys::from_setting(setting).expect_err(setting).to_string();
        assert!(e.starts_with("PUSHGATE_MICROSOFT_JWKS: "), "{setting}: {e}");
    }
}

#[tokio::test]
async fn microsoft_shaped_keys_load_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let signer = TestOidcSigner::new();
    let jwk = signer.microsoft_jwk();
    assert!(jwk.get("alg").is_none() && jwk["x5c"].is_array() && jwk["x5t"] == json!(signer.kid()));
    let keys = MicrosoftKeys::from_setting(signer.write_microsoft_jwks(dir.path()).unwrap().to_str().unwrap()).unwrap();
    assert!(keys.key(signer.kid()).await.is_ok());

    let (class, code, detail) = reason(keys.key("nOo3ZDrODXEK1jKWhXslHR_KXEg").await);
    assert_eq!((class, code), (RejectClass::Unauthenticated, "graph_unknown_key"));
    assert!(detail.contains("no Microsoft signing key has kid \"nOo3ZDrODXEK1jKWhXslHR_KXEg\""), "{detail}");
}

#[tokio::test]
async fn non_rsa_and_short_keys_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let good = TestOidcSigner::new();
    let mut short = TestOidcSigner::with_kid("short").microsoft_jwk();
    short["n"] = json!(URL_SAFE_NO_PAD.encode([0xc5u8; 128]));
    let jwks = json!({"keys": [
        {"kty": "EC", "use": "sig", "kid": "ec", "crv": "P-256", "x": "9e1x7YRZg53A5zIJ0p2ZQ9yTrgPLGIf4ntOk-4O2R28", "y": "q8iDm7nsnpz1xPdrWBtTZSowzciS3O7bMYtFFJ8saYo"},
        short,
        good.microsoft_jwk(),
    ]});
    let path = dir.path().join("keys.json");
    std::fs::write(&path, jwks.to_string()).unwrap();
    let keys = MicrosoftKeys::from_setting(path.to_str().unwrap()).unwrap();
    assert!(keys.key(good.kid()).await.is_ok());
    assert_eq!(reason(keys.key("short").await).1, "graph_unknown_key");
    assert_eq!(reason(keys.key("ec").await).1, "graph_unknown_key");

    std::fs::write(&path, json!({"keys": [short]}).to_string()).unwrap();
    let keys = MicrosoftKeys::from_setting(path.to_str().unwrap()).unwrap();
    let (class, code, detail) = reason(keys.key("short").await);
    assert_eq!((class, code), (RejectClass::Unavailable, "graph_keys_unavailable"));
    assert!(detail.contains("modulus; 2048 to 8192 bits are accepted"), "{detail}");
}

#[tokio::test]
async fn offline_keys_come_from_a_file_or_nowhere() {
    let dir = tempfile::tempdir().unwrap();
    let signer = TestOidcSigner::new();
    let path = signer.write_microsoft_jwks(dir.path()).unwrap();
    assert!(MicrosoftKeys::offline_from_setting(path.to_str().unwrap()).key(signer.kid()).await.is_ok());
    let (class, code, detail) = reason(MicrosoftKeys::offline_from_setting(DEFAULT_JWKS_URL).key(signer.kid()).await);
    assert_eq!((class, code), (RejectClass::Unavailable, "graph_keys_unavailable_offline"));
    assert!(detail.contains("PUSHGATE_MICROSOFT_JWKS") && detail.contains(DEFAULT_JWKS_URL), "{detail}");
}

#[tokio::test]
async fn keys_are_fetched_from_microsoft_and_a_failed_fetch_is_unavailable() {
    const HOST: &str = "login.microsoftonline.com";
    let signer = TestOidcSigner::new();
    let jwks = TestOidcSigner::microsoft_jwks_of(&[&signer]);
    let reply = Reply::BodyWithHeaders(jwks, vec!["Cache-Control: max-age=86400, private".into()]);
    let server = TlsServer::start(HOST, reply).await;
    let fetching = || {
        MicrosoftKeys::from_setting(DEFAULT_JWKS_URL).unwrap().with_test_transport((HOST, server.addr), server.root_der.clone()).unwrap()
    };
    let keys = fetching();
    keys.key(signer.kid()).await.unwrap();
    keys.key(signer.kid()).await.unwrap();
    assert_eq!(server.requests(), 1);

    server.set_reply(Reply::Status(503));
    let (class, code, detail) = reason(fetching().key(signer.kid()).await);
    assert_eq!((class, code), (RejectClass::Unavailable, "graph_keys_unavailable"));
    assert!(detail.contains(DEFAULT_JWKS_URL) && detail.contains("503"), "{detail}");
    // The keys already held stay in use.
    keys.key(signer.kid()).await.unwrap();
}
