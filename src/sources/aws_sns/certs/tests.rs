use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::net::TcpListener;

use super::*;
use crate::sources::aws_sns::cert_url::SigningCertUrl;
use crate::sources::RejectClass;
use crate::testing::tls_server::{Reply, TlsServer};

const HOST: &str = "sns.us-east-1.amazonaws.com";
const CERT_2026: &str = "SimpleNotificationService-7506a1e35b36ef5a444dd1a8e7cc3ed8.pem";

fn fixture(path: &str) -> Vec<u8> {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/aws-sns").join(path);
    std::fs::read(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
}

/// A time inside the 2026 certificate's validity (2025-11-10 to 2026-10-14).
fn in_2026() -> DateTime<Utc> {
    at("2026-03-06T20:00:00Z")
}

fn url(file_name: &str) -> SigningCertUrl {
    SigningCertUrl::check(&format!("https://{HOST}/{file_name}"), "us-east-1").unwrap()
}

#[test]
fn real_sns_certificates_load() {
    for (file, not_before, not_after) in [
        (CERT_2026, "2025-11-10T00:00:00Z", "2026-10-14T23:59:59Z"),
        ("SimpleNotificationService-7ff5318490ec183fbaddaa2a969abfda.pem", "2021-09-07T00:00:00Z", "2022-08-17T23:59:59Z"),
        ("SimpleNotificationService-bb750dd426d95ee9390147a5624348ee.pem", "2015-08-07T00:00:00Z", "2016-08-21T23:59:59Z"),
        ("wrong-cert_aws-sdk-java-v2_sns-public-cert-2016.pem", "2016-07-27T00:00:00Z", "2017-08-22T23:59:59Z"),
    ] {
        let cert = SigningCert::from_pem(&fixture(&format!("certs/{file}"))).unwrap();
        assert_eq!((cert.not_before(), cert.not_after()), (at(not_before), at(not_after)), "{file}");
        assert!(cert.valid_at(at(not_before)) && cert.valid_at(at(not_after)));
        assert!(!cert.valid_at(at(not_after) + chrono::TimeDelta::seconds(1)));
        // PKCS#1 RSAPublicKey of a 2048-bit key: SEQUENCE { INTEGER n, INTEGER e }.
        assert_eq!(cert.public_key_der()[0], 0x30);
        assert!(cert.public_key_der().len() > 256);
    }
}

#[test]
fn a_certificate_with_an_empty_validity_is_refused() {
    let e = SigningCert::from_pem(&fixture("certs/expired-selfsigned_aws-sdk-java-v2_expired-cert.pem")).unwrap_err();
    assert_eq!((e.class, e.reason), (RejectClass::Unauthenticated, "sns_cert_invalid"));
    assert!(e.detail.contains("validity is empty"), "{e}");
}

#[test]
fn anything_but_one_pem_rsa_certificate_is_refused() {
    let pem = String::from_utf8(fixture(&format!("certs/{CERT_2026}"))).unwrap();
    let ecdsa = {
        let key = rcgen::KeyPair::generate().unwrap();
        rcgen::CertificateParams::new(vec![HOST.to_string()]).unwrap().self_signed(&key).unwrap().pem()
    };
    for (case, body) in [
        ("xml-wrapped PEM", format!("<xml><value>\n{pem}\n<value></xml>")),
        ("two blocks", format!("{pem}{pem}")),
        ("trailing text", format!("{pem}trailer\n")),
        ("a key, not a certificate", pem.replace("CERTIFICATE", "PUBLIC KEY")),
        ("broken base64", pem.replacen("MII", "M*I", 1)),
        ("truncated", pem[..pem.len() / 2].to_string()),
        ("empty", String::new()),
        ("an ECDSA certificate", ecdsa),
    ] {
        let e = SigningCert::from_pem(body.as_bytes()).expect_err(case);
        assert_eq!((e.class, e.reason), (RejectClass::Unauthenticated, "sns_cert_invalid"), "{case}: {e}");
    }
    assert!(SigningCert::from_pem(b"\xff\xfe").is_err());
    assert!(SigningCert::from_pem(format!("\n  {pem}\n\n").as_bytes()).is_ok());
    assert!(SigningCert::from_pem(pem.replace('\n', "\r\n").as_bytes()).is_ok());
}

#[tokio::test]
async fn pinned_certificates_are_found_by_file_name() {
    let store = CertStore::offline(Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/aws-sns/certs")));
    let cert = store.get(&url(CERT_2026), in_2026()).await.unwrap();
    assert_eq!(cert.not_after(), at("2026-10-14T23:59:59Z"));

    let e = store.get(&url("SimpleNotificationService-0000.pem"), in_2026()).await.unwrap_err();
    assert_eq!((e.class, e.reason), (RejectClass::Unauthenticated, "sns_cert_not_pinned"));
    assert!(e.detail.contains("SimpleNotificationService-0000.pem"), "{e}");

    let e = CertStore::offline(None).get(&url(CERT_2026), in_2026()).await.unwrap_err();
    assert_eq!(e.reason, "sns_cert_not_pinned");
    assert!(e.detail.contains("PUSHGATE_SNS_CERT_DIR"), "{e}");
}

#[tokio::test]
async fn a_bad_pinned_file_is_refused_not_fetched_around() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("SimpleNotificationService-bad.pem"), "not a certificate").unwrap();
    std::fs::write(dir.path().join("SimpleNotificationService-big.pem"), vec![b'A'; MAX_CERT_BYTES + 1]).unwrap();
    let store = CertStore::new(Some(dir.path().to_path_buf()), true).unwrap();
    for file in ["SimpleNotificationService-bad.pem", "SimpleNotificationService-big.pem"] {
        let e = store.get(&url(file), in_2026()).await.unwrap_err();
        assert_eq!((e.class, e.reason), (RejectClass::Unauthenticated, "sns_cert_invalid"), "{file}: {e}");
    }
}

#[tokio::test]
async fn loaded_certificates_are_served_from_memory_until_their_not_after() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(CERT_2026), fixture(&format!("certs/{CERT_2026}"))).unwrap();
    let store = CertStore::offline(Some(dir.path().to_path_buf()));
    store.get(&url(CERT_2026), in_2026()).await.unwrap();
    std::fs::remove_file(dir.path().join(CERT_2026)).unwrap();
    assert!(store.get(&url(CERT_2026), in_2026()).await.is_ok(), "served from the cache");
    let after_not_after = at("2026-10-15T00:00:00Z");
    assert_eq!(store.get(&url(CERT_2026), after_not_after).await.unwrap_err().reason, "sns_cert_not_pinned");
}

#[tokio::test]
async fn a_certificate_already_past_its_not_after_is_not_cached() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(CERT_2026), fixture(&format!("certs/{CERT_2026}"))).unwrap();
    let store = CertStore::offline(Some(dir.path().to_path_buf()));
    assert!(store.get(&url(CERT_2026), at("2030-01-01T00:00:00Z")).await.is_ok());
    assert!(lock(&store.cache).is_empty());
}

#[test]
fn the_cache_keeps_at_most_its_capacity_dropping_the_oldest() {
    let store = CertStore::offline(None);
    let cert = Arc::new(SigningCert::from_pem(&fixture(&format!("certs/{CERT_2026}"))).unwrap());
    for i in 0..CACHE_CAPACITY + 5 {
        store.remember(&format!("k{i}"), &cert, in_2026());
    }
    let cache = lock(&store.cache);
    assert_eq!(cache.len(), CACHE_CAPACITY);
    assert!(!cache.contains_key("k0") && cache.contains_key(&format!("k{}", CACHE_CAPACITY + 4)));
}

fn fetching_store(server: &TlsServer) -> CertStore {
    CertStore::new(None, true).unwrap().with_test_transport((HOST, server.addr), server.root_der.clone()).unwrap()
}

fn real_pem() -> String {
    String::from_utf8(fixture(&format!("certs/{CERT_2026}"))).unwrap()
}

#[tokio::test]
async fn a_certificate_is_fetched_once_then_served_from_memory() {
    let server = TlsServer::start(HOST, Reply::Body(real_pem(), Duration::ZERO)).await;
    let store = fetching_store(&server);
    let cert = store.get(&url(CERT_2026), in_2026()).await.unwrap();
    assert_eq!(cert.not_after(), at("2026-10-14T23:59:59Z"));
    store.get(&url(CERT_2026), in_2026()).await.unwrap();
    assert_eq!(server.requests(), 1);
}

#[tokio::test]
async fn concurrent_misses_share_one_fetch() {
    let server = TlsServer::start(HOST, Reply::Body(real_pem(), Duration::from_millis(200))).await;
    let store = Arc::new(fetching_store(&server));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.get(&url(CERT_2026), in_2026()).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(server.requests(), 1);
    assert!(lock(&store.loading).is_empty());
}

#[tokio::test]
async fn answers_that_are_not_a_certificate_are_unauthenticated() {
    let xml = format!("<xml><value>\n{}\n<value></xml>", real_pem());
    for (case, reply) in [
        ("404", Reply::Status(404)),
        ("403", Reply::Status(403)),
        ("302", Reply::Status(302)),
        ("204", Reply::Status(204)),
        ("oversized", Reply::Endless(MAX_CERT_BYTES)),
        ("xml-wrapped PEM", Reply::Body(xml, Duration::ZERO)),
    ] {
        let server = TlsServer::start(HOST, reply).await;
        let e = fetching_store(&server).get(&url(CERT_2026), in_2026()).await.expect_err(case);
        assert_eq!((e.class, e.reason), (RejectClass::Unauthenticated, "sns_cert_invalid"), "{case}: {e}");
        assert_eq!(server.requests(), 1, "{case}: a redirect is not followed");
    }
}

#[tokio::test]
async fn network_trouble_is_unavailable_so_sns_retries() {
    for (case, reply) in [("503", Reply::Status(503)), ("500", Reply::Status(500)), ("429", Reply::Status(429))] {
        let server = TlsServer::start(HOST, reply).await;
        let e = fetching_store(&server).get(&url(CERT_2026), in_2026()).await.expect_err(case);
        assert_eq!((e.class, e.reason), (RejectClass::Unavailable, "sns_cert_unavailable"), "{case}: {e}");
    }

    let server = TlsServer::start(HOST, Reply::Silent).await;
    let store = fetching_store(&server).with_fetch_timeout(Duration::from_millis(300)).unwrap();
    let started = std::time::Instant::now();
    let e = store.get(&url(CERT_2026), in_2026()).await.unwrap_err();
    assert_eq!((e.class, e.reason), (RejectClass::Unavailable, "sns_cert_unavailable"), "{e}");
    assert!(e.detail.contains("no answer within 300 ms"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(3));

    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap()
    };
    let store = CertStore::new(None, true).unwrap().with_test_transport((HOST, closed), server.root_der.clone()).unwrap();
    let e = store.get(&url(CERT_2026), in_2026()).await.unwrap_err();
    assert_eq!((e.class, e.reason), (RejectClass::Unavailable, "sns_cert_unavailable"), "{e}");
}

#[tokio::test]
async fn a_server_the_public_roots_do_not_trust_is_not_believed() {
    let server = TlsServer::start(HOST, Reply::Body(real_pem(), Duration::ZERO)).await;
    let stranger = TlsServer::start(HOST, Reply::Status(404)).await;
    let store = CertStore::new(None, true).unwrap().with_test_transport((HOST, server.addr), stranger.root_der.clone()).unwrap();
    let e = store.get(&url(CERT_2026), in_2026()).await.unwrap_err();
    assert_eq!(e.class, RejectClass::Unavailable, "{e}");
    assert_eq!(server.requests(), 0);
}

#[tokio::test]
async fn a_pinned_copy_is_preferred_to_fetching() {
    let server = TlsServer::start(HOST, Reply::Status(404)).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(CERT_2026), real_pem()).unwrap();
    let store = CertStore::new(Some(dir.path().to_path_buf()), true)
        .unwrap()
        .with_test_transport((HOST, server.addr), server.root_der.clone())
        .unwrap();
    store.get(&url(CERT_2026), in_2026()).await.unwrap();
    assert_eq!(server.requests(), 0);
}

#[tokio::test]
async fn a_refused_certificate_url_is_not_fetched_again_for_a_while() {
    let server = TlsServer::start(HOST, Reply::Status(404)).await;
    let store = fetching_store(&server);
    for _ in 0..3 {
        let e = store.get(&url(CERT_2026), in_2026()).await.unwrap_err();
        assert_eq!(e.reason, "sns_cert_invalid");
    }
    assert_eq!(server.requests(), 1, "a 404 is remembered");

    // Network trouble is not remembered: the next message tries again.
    let flaky = TlsServer::start(HOST, Reply::Status(503)).await;
    let store = fetching_store(&flaky);
    for _ in 0..2 {
        assert_eq!(store.get(&url(CERT_2026), in_2026()).await.unwrap_err().class, RejectClass::Unavailable);
    }
    assert_eq!(flaky.requests(), 2);
}

#[tokio::test]
async fn invented_certificate_names_cannot_make_unbounded_fetches() {
    let server = TlsServer::start(HOST, Reply::Status(404)).await;
    let store = fetching_store(&server);
    for i in 0..FETCH_BURST {
        let e = store.get(&url(&format!("SimpleNotificationService-invented{i}.pem")), in_2026()).await.unwrap_err();
        assert_eq!(e.reason, "sns_cert_invalid");
    }
    let e = store.get(&url("SimpleNotificationService-onemore.pem"), in_2026()).await.unwrap_err();
    assert_eq!((e.class, e.reason), (RejectClass::Unavailable, "sns_cert_unavailable"), "{e}");
    assert_eq!(server.requests(), FETCH_BURST as usize);
}

#[tokio::test]
async fn a_stale_certificate_is_served_while_its_refresh_cannot_reach_aws() {
    let server = TlsServer::start(HOST, Reply::Status(503)).await;
    let mut store = fetching_store(&server);
    store.ttl = Duration::ZERO;
    let cert = Arc::new(SigningCert::from_pem(real_pem().as_bytes()).unwrap());
    store.remember(url(CERT_2026).as_str(), &cert, in_2026());
    let served = store.get(&url(CERT_2026), in_2026()).await.unwrap();
    assert!(Arc::ptr_eq(&served, &cert));
    assert_eq!(server.requests(), 1, "the refresh was tried");

    // A refusal (not an outage) is believed: the certificate is no longer served.
    let gone = TlsServer::start(HOST, Reply::Status(404)).await;
    let mut store = fetching_store(&gone);
    store.ttl = Duration::ZERO;
    store.remember(url(CERT_2026).as_str(), &cert, in_2026());
    assert_eq!(store.get(&url(CERT_2026), in_2026()).await.unwrap_err().reason, "sns_cert_invalid");
}
