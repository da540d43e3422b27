//! The key cache, exercised as Google's (the first publisher it served): settings,
//! files, fetches, max-age, the reload limit, failed reloads.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::net::TcpListener;

use super::*;
use crate::sources::gcp_pubsub::keys::{GoogleKeys, DEFAULT_JWKS_URL, GOOGLE};
use crate::sources::gcp_pubsub::test_signer::{jwks_of, TestOidcSigner};
use crate::sources::RejectClass;
use crate::testing::tls_server::{Reply, TlsServer};

const HOST: &str = "www.googleapis.com";
const REAL_KID: &str = "f9d97b4cae90bcd76aeb20026f6b770cac221783";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gcp-pubsub/oidc").join(name)
}

fn fetching(server: &TlsServer) -> GoogleKeys {
    GoogleKeys::from_setting(DEFAULT_JWKS_URL).unwrap().with_test_transport((HOST, server.addr), server.root_der.clone()).unwrap()
}

fn assert_reason(result: Result<Arc<DecodingKey>, Rejected>, class: RejectClass, reason: &str) -> Rejected {
    let e = result.expect_err(reason);
    assert_eq!((e.class, e.reason), (class, reason), "{e}");
    e
}

#[test]
fn settings_name_an_https_url_or_a_file() {
    assert!(matches!(*GoogleKeys::from_setting(DEFAULT_JWKS_URL).unwrap().source, Source::Url { .. }));
    assert!(matches!(*GoogleKeys::from_setting("HTTPS://keys.example/certs").unwrap().source, Source::Url { .. }));
    let keys = GoogleKeys::from_setting("/etc/pushgate/google.json").unwrap();
    assert!(matches!(keys.source.as_ref(), Source::File(path) if path == Path::new("/etc/pushgate/google.json")));
    assert!(matches!(*GoogleKeys::from_setting("google.json").unwrap().source, Source::File(_)));
    for (setting, says) in [
        ("", "is empty"),
        ("http://www.googleapis.com/oauth2/v3/certs", "only fetched over https"),
        ("ftp://keys.example/certs", "only fetched over https"),
        ("https://", "not a URL"),
        ("https://keys example/certs", "not a URL"),
    ] {
        let e = GoogleKeys::from_setting(setting).expect_err(setting).to_string();
        assert!(e.starts_with("PUSHGATE_GOOGLE_JWKS: ") && e.contains(says), "{setting}: {e}");
    }
}

#[tokio::test]
async fn offline_keys_come_from_a_file_or_nowhere() {
    let keys = GoogleKeys::offline(Some(fixture("google-auth-library-java_federated_keys.json")));
    assert!(keys.key(REAL_KID).await.is_ok());
    let keys = GoogleKeys::offline_from_setting(fixture("google-auth-library-java_federated_keys.json").to_str().unwrap());
    assert!(keys.key(REAL_KID).await.is_ok());

    for keys in [GoogleKeys::offline(None), GoogleKeys::offline_from_setting(DEFAULT_JWKS_URL)] {
        let e = assert_reason(keys.key(REAL_KID).await, RejectClass::Unavailable, "gcp_keys_unavailable_offline");
        assert!(e.detail.contains("PUSHGATE_GOOGLE_JWKS"), "{e}");
    }
}

#[tokio::test]
async fn real_google_keys_load_from_a_file() {
    let keys = GoogleKeys::from_setting(fixture("google-auth-library-java_federated_keys.json").to_str().unwrap()).unwrap();
    assert!(keys.key(REAL_KID).await.is_ok());
    assert!(keys.key("28b741e8de984a47159f19e6d7783e9d4fa810db").await.is_ok());
    let e = assert_reason(keys.key("1727b6b49402b9cf95be4e8fd38aa7e7c11644b1").await, RejectClass::Unauthenticated, "gcp_unknown_key");
    assert!(e.detail.contains("1727b6b49402b9cf95be4e8fd38aa7e7c11644b1"), "{e}");
}

#[tokio::test]
async fn files_that_hold_no_rsa_jwks_give_no_keys() {
    for (file, says) in [
        ("google-auth-library-java_iap_keys.json", "is not an RSA key"),
        ("google-auth-library-java_legacy_federated_keys.json", "is not a JWKS"),
        ("google-auth-library-java_service_account_keys.json", "is not a JWKS"),
        ("no-such-file.json", "cannot be read"),
    ] {
        let keys = GoogleKeys::from_setting(fixture(file).to_str().unwrap()).unwrap();
        let e = assert_reason(keys.key("2nMJtw").await, RejectClass::Unavailable, "gcp_keys_unavailable");
        assert!(e.detail.contains(says) && e.detail.contains(file), "{file}: {e}");
    }
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.json");
    std::fs::write(&big, vec![b' '; MAX_JWKS_BYTES + 1]).unwrap();
    let keys = GoogleKeys::from_setting(big.to_str().unwrap()).unwrap();
    let e = assert_reason(keys.key("k").await, RejectClass::Unavailable, "gcp_keys_unavailable");
    assert!(e.detail.contains("larger than"), "{e}");
}

#[test]
fn only_usable_rsa_signing_keys_are_kept() {
    let good = TestOidcSigner::with_kid("good").jwk();
    let other = TestOidcSigner::with_kid("good").jwk();
    let with = |changes: serde_json::Value| {
        let mut jwk = good.clone();
        for (name, value) in changes.as_object().unwrap() {
            match value {
                serde_json::Value::Null => jwk.as_object_mut().unwrap().remove(name),
                value => jwk.as_object_mut().unwrap().insert(name.clone(), value.clone()),
            };
        }
        jwk
    };
    let short_modulus = URL_SAFE_NO_PAD.encode([0xc5u8; 128]);
    let jwks = json!({"keys": [
        with(json!({"kid": "no-alg", "alg": null, "use": null})),
        with(json!({"kid": null})),
        with(json!({"kid": ""})),
        with(json!({"kid": "rs384", "alg": "RS384"})),
        with(json!({"kid": "encryption", "use": "enc"})),
        with(json!({"kid": "short", "n": short_modulus})),
        with(json!({"kid": "not-base64", "n": "@@@"})),
        with(json!({"kid": "padded", "n": format!("{}==", good["n"].as_str().unwrap())})),
        {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
        {"kty": "EC", "kid": "ec", "crv": "P-256", "x": "9e1x7YRZg53A5zIJ0p2ZQ9yTrgPLGIf4ntOk-4O2R28", "y": "q8iDm7nsnpz1xPdrWBtTZSowzciS3O7bMYtFFJ8saYo"},
        good,
        other,
    ]});
    let keys = parse_jwks(&GOOGLE, jwks.to_string().as_bytes(), "test").unwrap();
    let mut kids: Vec<&str> = keys.keys().map(String::as_str).collect();
    kids.sort();
    assert_eq!(kids, ["good", "no-alg", "padded"]);

    let e = parse_jwks(&GOOGLE, br#"{"keys": []}"#, "test").unwrap_err();
    assert!(e.detail.contains("the key list is empty"), "{e}");
    let e =
        parse_jwks(&GOOGLE, json!({"keys": [with(json!({"kid": "short", "n": short_modulus}))]}).to_string().as_bytes(), "x").unwrap_err();
    assert!(e.detail.contains("1024-bit modulus"), "{e}");
}

#[test]
fn the_first_of_a_repeated_kid_is_kept() {
    let first = TestOidcSigner::with_kid("same");
    let second = TestOidcSigner::with_kid("same");
    let modulus = |key: &DecodingKey| match key.kind() {
        jsonwebtoken::DecodingKeyKind::RsaModulusExponent { n, .. } => n.clone(),
        jsonwebtoken::DecodingKeyKind::SecretOrDer(_) => Vec::new(),
    };
    let both = parse_jwks(&GOOGLE, jwks_of(&[&first, &second]).as_bytes(), "test").unwrap();
    let only_first = parse_jwks(&GOOGLE, first.jwks_json().as_bytes(), "test").unwrap();
    assert_eq!(modulus(&both["same"]), modulus(&only_first["same"]));
    assert!(!modulus(&both["same"]).is_empty());
}

#[test]
fn freshness_is_max_age_less_age() {
    let headers = |pairs: &[(&str, &str)]| {
        let mut map = http::HeaderMap::new();
        for (name, value) in pairs {
            map.append(http::HeaderName::from_bytes(name.as_bytes()).unwrap(), value.parse().unwrap());
        }
        map
    };
    let google = "public, max-age=19845, must-revalidate, no-transform";
    assert_eq!(freshness(&headers(&[("cache-control", google)])), Some(Duration::from_secs(19845)));
    assert_eq!(freshness(&headers(&[("cache-control", google), ("age", "845")])), Some(Duration::from_secs(19000)));
    assert_eq!(freshness(&headers(&[("cache-control", "max-age=10"), ("age", "99")])), Some(Duration::ZERO));
    assert_eq!(freshness(&headers(&[("cache-control", "public"), ("cache-control", "Max-Age=\"7\"")])), Some(Duration::from_secs(7)));
    assert_eq!(freshness(&headers(&[("cache-control", "public, must-revalidate")])), None);
    assert_eq!(freshness(&headers(&[("cache-control", "max-age=soon")])), None);
    assert_eq!(freshness(&headers(&[])), None);
}

#[tokio::test]
async fn fetched_keys_are_served_from_memory() {
    let signer = TestOidcSigner::new();
    let server = TlsServer::start(HOST, Reply::Body(signer.jwks_json(), Duration::ZERO)).await;
    let keys = fetching(&server);
    for _ in 0..3 {
        keys.key(signer.kid()).await.unwrap();
    }
    assert_eq!(server.requests(), 1);
}

#[tokio::test]
async fn concurrent_first_uses_share_one_fetch() {
    let signer = TestOidcSigner::new();
    let server = TlsServer::start(HOST, Reply::Body(signer.jwks_json(), Duration::from_millis(200))).await;
    let keys = Arc::new(fetching(&server));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (keys, kid) = (keys.clone(), signer.kid().to_string());
            tokio::spawn(async move { keys.key(&kid).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(server.requests(), 1);
}

#[tokio::test]
async fn an_unknown_kid_reloads_at_most_once_per_interval() {
    let old = TestOidcSigner::new();
    let new = TestOidcSigner::new();
    let server = TlsServer::start(HOST, Reply::Body(old.jwks_json(), Duration::ZERO)).await;
    let mut keys = fetching(&server);
    keys.key(old.kid()).await.unwrap();

    // Google publishes a new key: the first token naming it reloads and finds it.
    server.set_reply(Reply::Body(jwks_of(&[&old, &new]), Duration::ZERO));
    keys.reload_interval = Duration::ZERO;
    keys.key(new.kid()).await.unwrap();
    assert_eq!(server.requests(), 2);

    // Invented kids: one reload, then none until the interval has passed.
    keys.reload_interval = RELOAD_INTERVAL;
    assert_reason(keys.key("invented-1").await, RejectClass::Unauthenticated, "gcp_unknown_key");
    assert_eq!(server.requests(), 2, "the last load was just now");
    keys.reload_interval = Duration::ZERO;
    assert_reason(keys.key("invented-1").await, RejectClass::Unauthenticated, "gcp_unknown_key");
    assert_eq!(server.requests(), 3);
    keys.reload_interval = RELOAD_INTERVAL;
    for i in 2..20 {
        assert_reason(keys.key(&format!("invented-{i}")).await, RejectClass::Unauthenticated, "gcp_unknown_key");
    }
    assert_eq!(server.requests(), 3);
    keys.key(old.kid()).await.unwrap();
    keys.key(new.kid()).await.unwrap();
    assert_eq!(server.requests(), 3);
}

#[tokio::test]
async fn keys_are_reloaded_after_their_max_age() {
    let signer = TestOidcSigner::new();
    let cached_for = |max_age: &str| Reply::BodyWithHeaders(signer.jwks_json(), vec![format!("Cache-Control: public, max-age={max_age}")]);
    let server = TlsServer::start(HOST, cached_for("3600")).await;
    let mut keys = fetching(&server);
    keys.reload_interval = Duration::ZERO;
    keys.key(signer.kid()).await.unwrap();
    keys.key(signer.kid()).await.unwrap();
    assert_eq!(server.requests(), 1, "fresh for an hour");

    let server = TlsServer::start(HOST, cached_for("0")).await;
    let mut keys = fetching(&server);
    keys.reload_interval = Duration::ZERO;
    keys.key(signer.kid()).await.unwrap();
    keys.key(signer.kid()).await.unwrap();
    assert_eq!(server.requests(), 2, "stale at once");
    keys.reload_interval = RELOAD_INTERVAL;
    keys.key(signer.kid()).await.unwrap();
    assert_eq!(server.requests(), 2, "stale, but the last load was just now");

    let server = TlsServer::start(HOST, Reply::Body(signer.jwks_json(), Duration::ZERO)).await;
    let keys = fetching(&server);
    keys.key(signer.kid()).await.unwrap();
    let max_age = lock(&keys.state).keys.as_ref().unwrap().max_age;
    assert_eq!(max_age, DEFAULT_MAX_AGE);

    let server = TlsServer::start(HOST, cached_for("99999999")).await;
    let keys = fetching(&server);
    keys.key(signer.kid()).await.unwrap();
    assert_eq!(lock(&keys.state).keys.as_ref().unwrap().max_age, MAX_MAX_AGE);
}

#[tokio::test]
async fn without_keys_a_failed_fetch_is_unavailable_and_not_retried_at_once() {
    for (case, reply) in [
        ("503", Reply::Status(503)),
        ("404", Reply::Status(404)),
        ("204", Reply::Status(204)),
        ("302", Reply::Status(302)),
        ("not JSON", Reply::Body("<html>sorry</html>".into(), Duration::ZERO)),
        ("oversized", Reply::Endless(MAX_JWKS_BYTES)),
    ] {
        let server = TlsServer::start(HOST, reply).await;
        let keys = fetching(&server);
        let e = assert_reason(keys.key("k").await, RejectClass::Unavailable, "gcp_keys_unavailable");
        assert!(e.detail.contains(DEFAULT_JWKS_URL), "{case}: {e}");
        let again = assert_reason(keys.key("k").await, RejectClass::Unavailable, "gcp_keys_unavailable");
        assert_eq!(again.detail, e.detail, "{case}: the failure is remembered");
        assert_eq!(server.requests(), 1, "{case}: one fetch per interval, no redirect followed");
    }

    let server = TlsServer::start(HOST, Reply::Silent).await;
    let keys = fetching(&server).with_fetch_timeout(Duration::from_millis(300)).unwrap();
    let started = std::time::Instant::now();
    let e = assert_reason(keys.key("k").await, RejectClass::Unavailable, "gcp_keys_unavailable");
    assert!(e.detail.contains("no answer within 300 ms"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(3));

    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let keys = GoogleKeys::from_setting(DEFAULT_JWKS_URL).unwrap().with_test_transport((HOST, closed), server.root_der.clone()).unwrap();
    assert_reason(keys.key("k").await, RejectClass::Unavailable, "gcp_keys_unavailable");
}

#[tokio::test]
async fn a_server_the_public_roots_do_not_trust_is_not_believed() {
    let signer = TestOidcSigner::new();
    let server = TlsServer::start(HOST, Reply::Body(signer.jwks_json(), Duration::ZERO)).await;
    let stranger = TlsServer::start(HOST, Reply::Status(404)).await;
    let keys =
        GoogleKeys::from_setting(DEFAULT_JWKS_URL).unwrap().with_test_transport((HOST, server.addr), stranger.root_der.clone()).unwrap();
    assert_reason(keys.key(signer.kid()).await, RejectClass::Unavailable, "gcp_keys_unavailable");
    assert_eq!(server.requests(), 0);
}

#[tokio::test]
async fn held_keys_are_served_while_a_reload_fails() {
    let signer = TestOidcSigner::new();
    let server = TlsServer::start(HOST, Reply::BodyWithHeaders(signer.jwks_json(), vec!["Cache-Control: max-age=0".into()])).await;
    let mut keys = fetching(&server);
    keys.key(signer.kid()).await.unwrap();

    server.set_reply(Reply::Status(503));
    keys.reload_interval = Duration::ZERO;
    keys.key(signer.kid()).await.unwrap();
    assert_eq!(server.requests(), 2, "the stale keys were reloaded, in vain");

    // A kid the held keys lack may be a key Google published meanwhile: retry later.
    let e = assert_reason(keys.key("new-google-key").await, RejectClass::Unavailable, "gcp_keys_unavailable");
    assert!(e.detail.contains("new-google-key") && e.detail.contains("503"), "{e}");
    assert_eq!(server.requests(), 3);

    // Once a reload succeeds, an unknown kid is unknown again.
    server.set_reply(Reply::Body(signer.jwks_json(), Duration::ZERO));
    assert_reason(keys.key("new-google-key").await, RejectClass::Unauthenticated, "gcp_unknown_key");
}

#[tokio::test]
async fn a_key_file_is_read_again_for_an_unknown_kid_at_most_once_per_interval() {
    let dir = tempfile::tempdir().unwrap();
    let first = TestOidcSigner::new();
    let path = first.write_jwks(dir.path()).unwrap();
    let mut keys = GoogleKeys::from_setting(path.to_str().unwrap()).unwrap();
    keys.key(first.kid()).await.unwrap();

    let second = TestOidcSigner::new();
    std::fs::write(&path, jwks_of(&[&first, &second])).unwrap();
    assert_reason(keys.key(second.kid()).await, RejectClass::Unauthenticated, "gcp_unknown_key");
    keys.reload_interval = Duration::ZERO;
    keys.key(second.kid()).await.unwrap();

    // A read that fails keeps the keys it was to replace.
    std::fs::remove_file(&path).unwrap();
    let e = assert_reason(keys.key("gone").await, RejectClass::Unavailable, "gcp_keys_unavailable");
    assert!(e.detail.contains("cannot be read"), "{e}");
    keys.key(first.kid()).await.unwrap();
    keys.key(second.kid()).await.unwrap();
}

#[tokio::test]
async fn a_request_dropped_mid_load_does_not_cancel_the_load() {
    let signer = TestOidcSigner::new();
    let server = TlsServer::start(HOST, Reply::Body(signer.jwks_json(), Duration::from_millis(300))).await;
    let keys = fetching(&server);
    // The caller gives up (its connection closed) long before the key set arrives.
    let abandoned = tokio::time::timeout(Duration::from_millis(50), keys.key(signer.kid())).await;
    assert!(abandoned.is_err(), "the caller was dropped mid-load");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(lock(&keys.state).keys.is_some(), "the load finished on its own");
    assert!(keys.key(signer.kid()).await.is_ok());
    assert_eq!(server.requests(), 1);
}
