use chrono::Utc;
use http::HeaderMap;
use serde_json::json;

use super::*;
use crate::model::EventKind;
use crate::sources::{ConnectionConfig, RejectClass, Sender};

const FINDING: &str = include_str!("../../../tests/fixtures/aws-eventbridge/securityhub/asr_CIS-1.4.json");
const GUARDDUTY: &str = include_str!(
    "../../../tests/fixtures/aws-eventbridge/guardduty/security_monkey_guardduty-finding-event_PortProbeUnprotectedPort_2018.json"
);
const SCHEDULED: &str = include_str!("../../../tests/fixtures/aws-eventbridge/scheduled/awsdocs_eventbridge_scheduled-event.json");

fn api_key_config() -> Value {
    json!({"auth": {"type": "api_key", "header": "X-Api-Key", "value": "k-123"}})
}

fn with_key(value: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("x-api-key", value.parse().unwrap());
    headers
}

async fn receive(headers: &HeaderMap, body: &[u8], config: &Value) -> Result<Intake, Rejected> {
    let request = RawRequest { headers, query: None, body, push_url: "http://x/push/aws-eventbridge/1", now: Utc::now() };
    let config = &ConnectionConfig::load(&EventBridgeSender, config.clone());
    EventBridgeSender.receive(request, config).await?
}

/// The intake of `body` pushed with the right API key.
async fn intake(body: &[u8]) -> Result<Intake, Rejected> {
    receive(&with_key("k-123"), body, &api_key_config()).await
}

fn class(result: Result<Intake, Rejected>) -> RejectClass {
    result.unwrap_err().class
}

#[tokio::test]
async fn api_key_auth() {
    assert!(intake(FINDING.as_bytes()).await.is_ok());
    let wrong = receive(&with_key("k-124"), FINDING.as_bytes(), &api_key_config()).await;
    assert_eq!(class(wrong), RejectClass::Unauthenticated);
    let missing = receive(&HeaderMap::new(), FINDING.as_bytes(), &api_key_config()).await;
    assert_eq!(class(missing), RejectClass::Unauthenticated);
}

#[tokio::test]
async fn basic_auth() {
    let config = json!({"auth": {"type": "basic", "username": "eventbridge", "password": "pa55"}});
    let basic = |user_pass: &str| {
        let mut headers = HeaderMap::new();
        let encoded = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, user_pass);
        headers.insert("authorization", format!("Basic {encoded}").parse().unwrap());
        headers
    };
    assert!(receive(&basic("eventbridge:pa55"), FINDING.as_bytes(), &config).await.is_ok());
    let wrong = receive(&basic("eventbridge:pa56"), FINDING.as_bytes(), &config).await;
    assert_eq!(class(wrong), RejectClass::Unauthenticated);
}

#[tokio::test]
async fn hmac_sha256_auth() {
    let config = json!({"auth": {"type": "hmac_sha256", "header": "X-Signature", "secret": "s3cret"}});
    let signed = |secret: &str, prefix: &str, body: &[u8]| {
        let mut headers = HeaderMap::new();
        let tag = hex::encode(crate::verify::hmac_sha256(secret.as_bytes(), &[body]));
        headers.insert("x-signature", format!("{prefix}{tag}").parse().unwrap());
        headers
    };
    let body = FINDING.as_bytes();
    assert!(receive(&signed("s3cret", "", body), body, &config).await.is_ok());
    assert!(receive(&signed("s3cret", "sha256=", body), body, &config).await.is_ok());
    let wrong = receive(&signed("other", "", body), body, &config).await;
    assert_eq!(class(wrong), RejectClass::Unauthenticated);
    // A signature over other bytes does not cover this body.
    let replayed = receive(&signed("s3cret", "", b"{}"), body, &config).await;
    assert_eq!(class(replayed), RejectClass::Unauthenticated);
}

#[tokio::test]
async fn a_broken_config_refuses_everything() {
    let config = json!({"auth": {"type": "standard_webhooks", "secret": "whsec_eA=="}});
    let e = receive(&with_key("k-123"), FINDING.as_bytes(), &config).await.unwrap_err();
    assert_eq!((e.class, e.reason), (RejectClass::Unauthenticated, "invalid_connection_config"));
}

#[tokio::test]
async fn a_wrong_secret_is_refused_before_the_body_is_read() {
    let e = receive(&with_key("nope"), b"not json", &api_key_config()).await.unwrap_err();
    assert_eq!((e.class, e.reason), (RejectClass::Unauthenticated, "bad_credentials"));
}

#[tokio::test]
async fn one_event_is_keyed_by_its_id() {
    let Intake::Events { events, heartbeat, .. } = intake(FINDING.as_bytes()).await.unwrap() else { panic!("expected events") };
    assert!(heartbeat.is_none());
    assert_eq!(events.len(), 1);
    assert_eq!((events[0].kind, events[0].dedupe_key.as_str()), (EventKind::Alert, "b3efc128-c676-4a33-b5e6-99b4227dd5a3"));
}

#[tokio::test]
async fn an_array_is_one_event_per_element() {
    let body = format!("[{FINDING}, {GUARDDUTY}]");
    let Intake::Events { events, heartbeat, .. } = intake(body.as_bytes()).await.unwrap() else { panic!("expected events") };
    assert!(heartbeat.is_none());
    let keys: Vec<&str> = events.iter().map(|e| e.dedupe_key.as_str()).collect();
    assert_eq!(keys, ["b3efc128-c676-4a33-b5e6-99b4227dd5a3", "9fd36791-b982-24d8-738c-d8e2c69a48dd"]);
    assert!(events.iter().all(|e| e.kind == EventKind::Alert));
}

#[tokio::test]
async fn a_batch_with_a_scheduled_event_also_records_a_heartbeat() {
    let body = format!("[{SCHEDULED}, {FINDING}]");
    let Intake::Events { events, heartbeat, .. } = intake(body.as_bytes()).await.unwrap() else { panic!("expected events") };
    assert_eq!(heartbeat, Some(scheduled_proof()));
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].payload["detail-type"], "Security Hub Findings - Imported");
}

#[tokio::test]
async fn only_heartbeats_are_a_heartbeat() {
    assert_eq!(intake(SCHEDULED.as_bytes()).await.unwrap(), Intake::Heartbeat(scheduled_proof()));
    let body = format!("[{SCHEDULED}, {SCHEDULED}]");
    assert_eq!(intake(body.as_bytes()).await.unwrap(), Intake::Heartbeat(scheduled_proof()));
    // Of several, the latest signed counts; a time that is not RFC 3339 proves nothing.
    let later = SCHEDULED.replace("53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa", "later").replace("2015-10-08T16:53:06Z", "2015-10-08T16:58:06Z");
    let untimed = SCHEDULED.replace("53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa", "untimed").replace("2015-10-08T16:53:06Z", "soon");
    let body = format!("[{untimed}, {later}, {SCHEDULED}]");
    let latest = HeartbeatProof::new("later", "2015-10-08T16:58:06Z".parse().unwrap());
    assert_eq!(intake(body.as_bytes()).await.unwrap(), Intake::Heartbeat(latest));
    assert_eq!(
        intake(untimed.as_bytes()).await.unwrap(),
        Intake::Heartbeat(HeartbeatProof { id: Some("untimed".into()), signed_at: None })
    );
}

/// The id and time of the documented Scheduled Event.
fn scheduled_proof() -> HeartbeatProof {
    HeartbeatProof::new("53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa", "2015-10-08T16:53:06Z".parse().unwrap())
}

#[tokio::test]
async fn authentic_but_undecodable_bodies_are_undecodable() {
    let cases: [(&[u8], &str); 9] = [
        (b"not json", "invalid_json"),
        (&[0xff, 0xfe, b'{'], "invalid_utf8"),
        (b"42", "not_an_event"),
        (b"\"event\"", "not_an_event"),
        (b"[]", "empty_batch"),
        (br#"[{"id": "a"}, 7]"#, "not_an_event"),
        (br#"{"source": "aws.securityhub"}"#, "missing_event_id"),
        (br#"{"id": 12}"#, "missing_event_id"),
        (br#"[{"id": "a"}, {"id": ""}]"#, "missing_event_id"),
    ];
    for (body, reason) in cases {
        let e = intake(body).await.unwrap_err();
        assert_eq!((e.class, e.reason), (RejectClass::Undecodable, reason), "{}", String::from_utf8_lossy(body));
    }
}

#[tokio::test]
async fn a_missing_id_names_its_place_in_the_batch() {
    let body = format!("[{FINDING}, {{\"source\": \"aws.guardduty\"}}]");
    let e = intake(body.as_bytes()).await.unwrap_err();
    assert_eq!(e.detail, "event 1 of the batch has no string `id`");
    let e = intake(b"{}").await.unwrap_err();
    assert_eq!(e.detail, "the event has no string `id`");
}
