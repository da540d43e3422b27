use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use http::HeaderMap;
use serde_json::{json, Value};
use tokio::net::TcpListener;

use super::*;
use crate::sources::aws_sns::certs::SigningCert;
use crate::sources::aws_sns::envelope::MessageType;
use crate::sources::aws_sns::test_signer::{sns_time, TestSigner};
use crate::sources::RejectClass;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/aws-sns")
}

fn json_files(dir: &str) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(fixtures().join(dir))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "json") && !path.ends_with("CASES.json"))
        .map(|path| (path.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&path).unwrap()))
        .collect();
    files.sort();
    files
}

fn fields(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap()
}

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
}

/// The clock of a test: one minute after the message was sent.
fn clock_for(body: &[u8]) -> DateTime<Utc> {
    at(fields(body)["Timestamp"].as_str().unwrap()) + TimeDelta::minutes(1)
}

fn topic_of(body: &[u8]) -> Vec<String> {
    fields(body)["TopicArn"].as_str().map(str::to_string).into_iter().collect()
}

fn pinned_vectors() -> CertStore {
    CertStore::offline(Some(fixtures().join("certs")))
}

async fn check(body: &[u8], certs: &CertStore) -> Result<Envelope, Rejected> {
    authenticate(body, &HeaderMap::new(), clock_for(body), &topic_of(body), certs).await
}

#[tokio::test]
async fn every_real_sns_message_verifies() {
    let certs = pinned_vectors();
    let messages = json_files("messages");
    assert_eq!(messages.len(), 11);
    for (name, body) in &messages {
        let envelope = check(body, &certs).await.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(envelope.message_id(), fields(body)["MessageId"].as_str().unwrap(), "{name}");
        let mut headers = HeaderMap::new();
        headers.insert("x-amz-sns-message-type", envelope.message_type().as_str().parse().unwrap());
        authenticate(body, &headers, clock_for(body), &topic_of(body), &certs)
            .await
            .unwrap_or_else(|e| panic!("{name} with its type header: {e}"));
    }
}

/// Each negative vector, what its manifest expects, and the reason code that means.
const NEGATIVE_CASES: &[(&str, &str, &str)] = &[
    ("bad-certurl-amazonaws-non-sns.json", "reject: certificate located on invalid domain", "sns_cert_url_invalid"),
    ("bad-certurl-example-com.json", "reject: SigningCertURL doesn't match required format", "sns_cert_url_invalid"),
    ("bad-certurl-foreign-host.json", "reject: cert URL not hosted by AWS", "sns_cert_url_invalid"),
    ("bad-certurl-http.json", "reject: cert URL must be https", "sns_cert_url_invalid"),
    ("bad-certurl-missing.json", "reject: missing SigningCertURL", "sns_cert_url_invalid"),
    ("bad-certurl-non-string.json", "reject: SigningCertURL not a string", "sns_cert_url_invalid"),
    ("bad-certurl-not-pem.json", "reject: cert URL not a .pem file", "sns_cert_url_invalid"),
    ("bad-certurl-s3-bucket.json", "reject: SigningCertURL doesn't match required format", "sns_cert_url_invalid"),
    (
        "bad-certurl-wrong-region-host.json",
        "reject only under strict host==regional-endpoint policy (Java v2 message manager configured for us-west-2); regex-based validators accept",
        "sns_cert_url_invalid",
    ),
    ("bad-signature-literal-bad-v2.json", "reject: signature cannot be verified", "sns_signature_invalid"),
    ("bad-signature-literal-bad.json", "reject: signature cannot be verified", "sns_signature_invalid"),
    ("bad-signatureversion-3.json", "reject: invalid SignatureVersion", "sns_signature_version_unsupported"),
    ("sigversion-swapped-1-to-2.json", "reject: SHA256 verify of a SHA1 signature fails", "sns_signature_invalid"),
    ("sigversion-swapped-2-to-1.json", "reject: SHA1 verify of a SHA256 signature fails", "sns_signature_invalid"),
    ("tampered-message-body.json", "reject: signature mismatch", "sns_signature_invalid"),
    ("tampered-subject-added.json", "reject: signature mismatch (Subject becomes part of string-to-sign)", "sns_signature_invalid"),
    ("tampered-subject-removed.json", "reject: signature mismatch", "sns_signature_invalid"),
    ("tampered-subscribeurl.json", "reject: signature mismatch", "sns_signature_invalid"),
    ("tampered-token.json", "reject: signature mismatch", "sns_signature_invalid"),
    ("tampered-topicarn.json", "reject: signature mismatch", "sns_signature_invalid"),
    ("type-swapped-unsub-to-sub.json", "reject: Type is signed", "sns_signature_invalid"),
];

#[tokio::test]
async fn every_negative_vector_is_refused_for_the_reason_its_manifest_gives() {
    let manifest: Value = serde_json::from_slice(&std::fs::read(fixtures().join("negative/CASES.json")).unwrap()).unwrap();
    let expected_by_file: std::collections::HashMap<&str, &str> = manifest["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|case| Some((case["file"].as_str()?, case["expected"].as_str()?)))
        .filter(|(file, _)| !file.starts_with("(cert)"))
        .collect();
    let files = json_files("negative");
    assert_eq!(files.len(), NEGATIVE_CASES.len(), "every negative file has a row");
    assert_eq!(expected_by_file.len(), NEGATIVE_CASES.len(), "every manifest case has a row");

    let certs = pinned_vectors();
    for (name, body) in &files {
        let (_, expected, code) = NEGATIVE_CASES.iter().find(|(file, _, _)| file == name).unwrap_or_else(|| panic!("{name} has no row"));
        assert_eq!(expected_by_file.get(name.as_str()), Some(expected), "{name}: the manifest changed");
        let e = check(body, &certs).await.expect_err(name);
        assert_eq!(e.reason, *code, "{name}: {e}");
    }
}

/// A copy of `cert` pinned under the name of another certificate, in a fresh directory.
fn pinned_as(cert: &str, file_name: &str) -> (tempfile::TempDir, CertStore) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixtures().join("certs").join(cert), dir.path().join(file_name)).unwrap();
    let store = CertStore::offline(Some(dir.path().to_path_buf()));
    (dir, store)
}

#[tokio::test]
async fn a_different_real_certificate_does_not_verify_the_2015_message() {
    let body = std::fs::read(fixtures().join("messages/javav1_notification-v1-2015-msgattrs.json")).unwrap();
    let wrong = "wrong-cert_aws-sdk-java-v2_sns-public-cert-2016.pem";
    let (_dir, store) = pinned_as(wrong, "SimpleNotificationService-bb750dd426d95ee9390147a5624348ee.pem");
    // The 2016 certificate did not yet exist in 2015, which is refused first...
    assert_eq!(check(&body, &store).await.unwrap_err().reason, "sns_cert_expired_at_timestamp");
    // ...and its key does not verify the signature either.
    let envelope = Envelope::parse(&body).unwrap();
    let cert = SigningCert::from_pem(&std::fs::read(fixtures().join("certs").join(wrong)).unwrap()).unwrap();
    let signature = STANDARD.decode(envelope.signature()).unwrap();
    assert!(cert.verifier(envelope.signature_version()).verify_sig(envelope.string_to_sign().as_bytes(), &signature).is_err());
}

#[tokio::test]
async fn the_expired_self_signed_certificate_is_refused() {
    let body = std::fs::read(fixtures().join("messages/javav2-mm_notification-v1-no-subject.json")).unwrap();
    let (_dir, store) =
        pinned_as("expired-selfsigned_aws-sdk-java-v2_expired-cert.pem", "SimpleNotificationService-7506a1e35b36ef5a444dd1a8e7cc3ed8.pem");
    let e = check(&body, &store).await.unwrap_err();
    assert_eq!((e.class, e.reason), (RejectClass::Unauthenticated, "sns_cert_invalid"), "{e}");
}

const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:security-alerts";

fn topics() -> Vec<String> {
    vec![TOPIC.to_string()]
}

fn pinned_signer(signer: &TestSigner) -> (tempfile::TempDir, CertStore) {
    let dir = tempfile::tempdir().unwrap();
    signer.write_pinned(dir.path()).unwrap();
    let store = CertStore::offline(Some(dir.path().to_path_buf()));
    (dir, store)
}

#[tokio::test]
async fn a_message_sent_outside_its_certificates_validity_is_refused() {
    let from = Utc.with_ymd_and_hms(2020, 1, 1, 0, 0, 0).unwrap();
    let until = Utc.with_ymd_and_hms(2020, 12, 31, 0, 0, 0).unwrap();
    let signer = TestSigner::with_validity("us-east-1", from, until);
    let (_dir, store) = pinned_signer(&signer);
    for (sent, verdict) in [
        (Utc.with_ymd_and_hms(2020, 6, 1, 0, 0, 0).unwrap(), None),
        (until + TimeDelta::seconds(1), Some("sns_cert_expired_at_timestamp")),
        (from - TimeDelta::seconds(1), Some("sns_cert_expired_at_timestamp")),
    ] {
        let body = signer.notification(TOPIC, "m-1", "hello", None, sent);
        let result = authenticate(body.as_bytes(), &HeaderMap::new(), sent + TimeDelta::minutes(1), &topics(), &store).await;
        assert_eq!(result.err().map(|e| e.reason), verdict, "sent {sent}");
    }
}

#[tokio::test]
async fn stale_and_future_messages_are_refused_at_the_limits() {
    let body = std::fs::read(fixtures().join("messages/ruby_notification-v2-2022.json")).unwrap();
    let sent = at(fields(&body)["Timestamp"].as_str().unwrap());
    let certs = pinned_vectors();
    for (now, verdict) in [
        (sent + MAX_MESSAGE_AGE, None),
        (sent + MAX_MESSAGE_AGE + TimeDelta::milliseconds(1), Some("sns_message_too_old")),
        (sent - MAX_FUTURE_SKEW, None),
        (sent - MAX_FUTURE_SKEW - TimeDelta::milliseconds(1), Some("sns_message_from_future")),
    ] {
        let result = authenticate(&body, &HeaderMap::new(), now, &topic_of(&body), &certs).await;
        assert_eq!(result.err().map(|e| e.reason), verdict, "now {now}");
    }
}

/// A TCP listener that counts connections and drops each: any fetch reaching it fails.
async fn counting_listener() -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = connections.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    (addr, connections)
}

#[tokio::test]
async fn messages_refused_before_the_certificate_never_cause_a_fetch() {
    let signer = TestSigner::new("us-east-1");
    let (addr, connections) = counting_listener().await;
    let root = x509_parser::pem::parse_x509_pem(signer.cert_pem().as_bytes()).unwrap().1.contents;
    let certs = CertStore::new(None, true).unwrap().with_test_transport(("sns.us-east-1.amazonaws.com", addr), root).unwrap();
    let sent = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
    let good = signer.notification(TOPIC, "m-1", "hello", None, sent);
    let mut wrong_region: Value = serde_json::from_str(&good).unwrap();
    wrong_region["SigningCertURL"] = json!(signer.cert_url().replace("us-east-1", "us-west-2"));

    let other_topic = vec!["arn:aws:sns:us-east-1:123456789012:other".to_string()];
    for (case, body, now, allowed, code) in [
        ("topic not allowed", good.clone(), sent, &other_topic, "topic_not_allowed"),
        ("no topics allowed", good.clone(), sent, &vec![], "topic_not_allowed"),
        ("certificate URL of another region", wrong_region.to_string(), sent, &topics(), "sns_cert_url_invalid"),
        ("replayed a week later", good.clone(), sent + TimeDelta::days(8), &topics(), "sns_message_too_old"),
        ("from the future", good.clone(), sent - TimeDelta::hours(1), &topics(), "sns_message_from_future"),
    ] {
        let e = authenticate(body.as_bytes(), &HeaderMap::new(), now, allowed, &certs).await.expect_err(case);
        assert_eq!(e.reason, code, "{case}: {e}");
        assert_eq!(connections.load(Ordering::SeqCst), 0, "{case}: no fetch");
    }
    // The same message from an allowed topic does reach the fetcher (which fails here).
    let e = authenticate(good.as_bytes(), &HeaderMap::new(), sent, &topics(), &certs).await.unwrap_err();
    assert_eq!((e.class, e.reason), (RejectClass::Unavailable, "sns_cert_unavailable"), "{e}");
    assert_eq!(connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn transport_headers_are_checked() {
    let body = std::fs::read(fixtures().join("messages/ruby_notification-v1-2022.json")).unwrap();
    let certs = pinned_vectors();
    let run = |headers: HeaderMap| {
        let body = body.clone();
        let certs = &certs;
        async move { authenticate(&body, &headers, clock_for(&body), &topic_of(&body), certs).await }
    };
    let mut raw = HeaderMap::new();
    raw.insert("x-amz-sns-rawdelivery", "True".parse().unwrap());
    assert_eq!(run(raw).await.unwrap_err().reason, "sns_raw_delivery");
    let mut not_raw = HeaderMap::new();
    not_raw.insert("x-amz-sns-rawdelivery", "false".parse().unwrap());
    assert!(run(not_raw).await.is_ok());
    for sent in ["SubscriptionConfirmation", "notification", ""] {
        let mut headers = HeaderMap::new();
        headers.insert("x-amz-sns-message-type", sent.parse().unwrap());
        let e = run(headers).await.unwrap_err();
        assert_eq!((e.class, e.reason), (RejectClass::Malformed, "sns_type_mismatch"), "{sent:?}");
    }
    let e = authenticate(b"a raw message", &HeaderMap::new(), Utc::now(), &[], &certs).await.unwrap_err();
    assert_eq!((e.class, e.reason), (RejectClass::Malformed, "sns_not_an_envelope"));
}

#[tokio::test]
async fn the_test_signer_round_trips_every_message_type() {
    let signer = TestSigner::new("us-east-1");
    let (_dir, store) = pinned_signer(&signer);
    let sent = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
    let subscribe_url = "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=x&Token=t-1";
    let bodies = [
        (MessageType::Notification, signer.notification(TOPIC, "m-1", "{\"alert\":1}", None, sent)),
        (MessageType::Notification, signer.notification(TOPIC, "m-2", "line\nbreak", Some("Alert: ünïcode"), sent)),
        (MessageType::Notification, signer.notification(TOPIC, "m-3", "", Some(""), sent)),
        (MessageType::SubscriptionConfirmation, signer.subscription_confirmation(TOPIC, "m-4", "t-1", subscribe_url, sent)),
        (MessageType::UnsubscribeConfirmation, signer.unsubscribe_confirmation(TOPIC, "m-5", "t-1", subscribe_url, sent)),
    ];
    for (kind, body) in &bodies {
        let envelope = authenticate(body.as_bytes(), &HeaderMap::new(), sent, &topics(), &store).await.unwrap();
        assert_eq!(envelope.message_type(), *kind);
        assert_eq!(envelope.signature_version(), SignatureVersion::Sha256);
        assert_eq!(envelope.timestamp(), sns_time(sent));
    }
}

/// Every way of changing one signed field of `body`, keeping the envelope well formed.
fn one_field_changes(body: &str) -> Vec<(String, Value)> {
    let original: Value = serde_json::from_str(body).unwrap();
    let mut changes = Vec::new();
    for field in ["Message", "MessageId", "Subject", "SubscribeURL", "Token", "TopicArn"] {
        if let Some(text) = original[field].as_str() {
            let mut changed = original.clone();
            changed[field] = json!(format!("{text}x"));
            changes.push((format!("{field} changed"), changed));
        }
    }
    let mut later = original.clone();
    later["Timestamp"] = json!(sns_time(at(original["Timestamp"].as_str().unwrap()) + TimeDelta::milliseconds(1)));
    changes.push(("Timestamp changed".into(), later));
    match original["Type"].as_str().unwrap() {
        "Notification" => {
            let mut toggled = original.clone();
            match toggled.as_object_mut().unwrap().remove("Subject") {
                Some(_) => changes.push(("Subject removed".into(), toggled)),
                None => {
                    toggled["Subject"] = json!("");
                    changes.push(("empty Subject added".into(), toggled));
                }
            }
        }
        kind => {
            let mut swapped = original.clone();
            let other = if kind == "SubscriptionConfirmation" { "UnsubscribeConfirmation" } else { "SubscriptionConfirmation" };
            swapped["Type"] = json!(other);
            changes.push(("Type swapped".into(), swapped));
        }
    }
    let mut version = original.clone();
    version["SignatureVersion"] = json!("1");
    changes.push(("SignatureVersion lowered".into(), version));
    changes
}

#[tokio::test]
async fn changing_any_signed_field_breaks_the_signature() {
    let signer = TestSigner::new("us-east-1");
    let (_dir, store) = pinned_signer(&signer);
    let sent = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
    let subscribe_url = "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=x&Token=t-1";
    let allowed = vec![TOPIC.to_string(), format!("{TOPIC}x")];
    for body in [
        signer.notification(TOPIC, "m-1", "hello", None, sent),
        signer.notification(TOPIC, "m-2", "hello", Some("subject"), sent),
        signer.subscription_confirmation(TOPIC, "m-3", "t-1", subscribe_url, sent),
        signer.unsubscribe_confirmation(TOPIC, "m-4", "t-1", subscribe_url, sent),
    ] {
        let changes = one_field_changes(&body);
        assert!(changes.len() >= 6);
        for (case, changed) in changes {
            let e = authenticate(changed.to_string().as_bytes(), &HeaderMap::new(), sent, &allowed, &store).await.expect_err(&case);
            assert_eq!((e.class, e.reason), (RejectClass::Unauthenticated, "sns_signature_invalid"), "{case}: {e}");
        }
        // Fields outside the signature may change freely.
        let mut unsigned: Value = serde_json::from_str(&body).unwrap();
        unsigned["MessageAttributes"] = json!({"k": {"Type": "String", "Value": "v"}});
        unsigned["UnsubscribeURL"] = json!("https://example.com/");
        authenticate(unsigned.to_string().as_bytes(), &HeaderMap::new(), sent, &allowed, &store).await.unwrap();
    }
}
