//! The EventBridge API destination sender end to end: a real server on port 0, real HTTP,
//! the public EventBridge vectors of `tests/fixtures/aws-eventbridge`, on SQLite and
//! PostgreSQL.

mod common;

use common::{hmac_hex, TestServer};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

on_both_backends!(
    security_hub_findings_are_stored_once_and_read_back,
    several_findings_are_one_event_each,
    a_scheduled_event_is_a_heartbeat,
    heartbeats_count_at_their_event_time_once_and_while_fresh,
    wrong_keys_are_refused_and_recorded,
    undecodable_but_authentic_bodies_are_stored_whole_as_raw_events,
    hmac_signed_batches,
);

const FINDING: &str = include_str!("fixtures/aws-eventbridge/securityhub/asr_CIS-1.4.json");
const FINDING_ID: &str = "b3efc128-c676-4a33-b5e6-99b4227dd5a3";
const OTHER_FINDING: &str = include_str!("fixtures/aws-eventbridge/securityhub/asr_afsbp-ec2.7.json");
const GUARDDUTY: &str =
    include_str!("fixtures/aws-eventbridge/guardduty/security_monkey_guardduty-finding-event_PortProbeUnprotectedPort_2018.json");
const SCHEDULED: &str = include_str!("fixtures/aws-eventbridge/scheduled/awsdocs_eventbridge_scheduled-event.json");

const KEY: &str = "eb-api-key-1";

/// The documented Scheduled Event, with event id `id` and `time` `at`: what a schedule
/// rule delivers.
fn scheduled(id: &str, at: chrono::DateTime<chrono::Utc>) -> String {
    let mut event: Value = serde_json::from_str(SCHEDULED).unwrap();
    event["id"] = json!(id);
    event["time"] = json!(at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    event.to_string()
}

/// Now, to the second (as EventBridge writes `time`).
fn now_s() -> chrono::DateTime<chrono::Utc> {
    chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 0)
}

async fn create(server: &TestServer) -> String {
    let c = server
        .create(json!({
            "tenant_id": "acme",
            "name": "AWS Security Hub (prod)",
            "source": "aws_eventbridge",
            "heartbeat_interval_seconds": 300,
            "config": {"auth": {"type": "api_key", "header": "X-Pushgate-Key", "value": KEY}}
        }))
        .await;
    assert_eq!(c["stream"], "cloud_aws_securityhub_alert");
    assert_eq!(c["config"]["auth"]["value"], "***");
    let id = c["id"].as_str().unwrap().to_owned();
    assert_eq!(c["push_url"], server.url(&format!("/push/aws-eventbridge/{id}")));
    id
}

async fn push(server: &TestServer, id: &str, body: &[u8], headers: &[(&str, &str)]) -> (u16, Value) {
    let mut request = server.client.post(server.url(&format!("/push/aws-eventbridge/{id}"))).body(body.to_vec());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn push_keyed(server: &TestServer, id: &str, body: &[u8]) -> (u16, Value) {
    push(server, id, body, &[("x-pushgate-key", KEY)]).await
}

async fn security_hub_findings_are_stored_once_and_read_back(server: TestServer) {
    let id = create(&server).await;
    let (status, answer) = push_keyed(&server, &id, FINDING.as_bytes()).await;
    assert_eq!((status, answer), (200, json!({"status": "stored", "stored": 1, "duplicates": 0})));
    // EventBridge retries a delivery it saw no answer to: the same event id is stored once.
    let (status, answer) = push_keyed(&server, &id, FINDING.as_bytes()).await;
    assert_eq!((status, answer), (200, json!({"status": "stored", "stored": 0, "duplicates": 1})));
    let (status, answer) = push_keyed(&server, &id, GUARDDUTY.as_bytes()).await;
    assert_eq!((status, answer["stored"].clone()), (200, json!(1)));

    let events = server.events(&id).await;
    assert_eq!(events.len(), 2);
    // Newest first.
    let (guardduty, finding) = (&events[0], &events[1]);
    assert_eq!(finding["kind"], "alert");
    assert_eq!(finding["dedupe_key"], FINDING_ID);
    assert_eq!(finding["occurred_at"], "2020-05-27T03:38:28.102Z", "the finding's UpdatedAt");
    assert_eq!((finding["source"].as_str(), finding["stream"].as_str()), (Some("aws_eventbridge"), Some("cloud_aws_securityhub_alert")));
    assert_eq!(finding["tenant_id"], "acme");
    assert_eq!(finding["payload"], serde_json::from_str::<Value>(FINDING).unwrap());
    assert_eq!(guardduty["kind"], "alert");
    assert_eq!(guardduty["dedupe_key"], "9fd36791-b982-24d8-738c-d8e2c69a48dd");
    assert_eq!(guardduty["occurred_at"], "2018-01-08T00:52:34.750Z", "the finding's updatedAt");

    let c = server.connection(&id).await;
    assert_eq!(c["counters"], json!({"events": 2, "heartbeats": 0, "duplicates": 1, "rejections": 0}));
    assert!(c["subscription"]["confirmed_at"].is_string(), "the first authenticated push confirms the feed");
    assert!(c["data_last_received_at"].is_string());
    server.stop().await;
}

async fn several_findings_are_one_event_each(server: TestServer) {
    let id = create(&server).await;
    let mut event: Value = serde_json::from_str(FINDING).unwrap();
    let other: Value = serde_json::from_str(OTHER_FINDING).unwrap();
    let findings = json!([event["detail"]["findings"][0].clone(), other["detail"]["findings"][0].clone()]);
    event["detail"]["findings"] = findings.clone();
    let body = serde_json::to_vec(&event).unwrap();
    let (status, answer) = push_keyed(&server, &id, &body).await;
    assert_eq!((status, answer), (200, json!({"status": "stored", "stored": 2, "duplicates": 0})));
    let (status, answer) = push_keyed(&server, &id, &body).await;
    assert_eq!((status, answer), (200, json!({"status": "stored", "stored": 0, "duplicates": 2})));

    let mut events = server.events(&id).await;
    events.sort_by_key(|e| e["dedupe_key"].as_str().unwrap().to_owned());
    let keys: Vec<&str> = events.iter().map(|e| e["dedupe_key"].as_str().unwrap()).collect();
    assert_eq!(keys, [format!("{FINDING_ID}/0"), format!("{FINDING_ID}/1")]);
    let times: Vec<&str> = events.iter().map(|e| e["occurred_at"].as_str().unwrap()).collect();
    assert_eq!(times, ["2020-05-27T03:38:28.102Z", "2021-02-17T14:56:09.063Z"]);
    for (index, e) in events.iter().enumerate() {
        assert_eq!(e["kind"], "alert");
        assert_eq!(e["payload"]["detail"]["findings"], json!([findings[index]]));
        assert_eq!((e["payload"]["account"].as_str(), e["payload"]["region"].as_str()), (Some("111111111111"), Some("us-east-1")));
    }
    server.stop().await;
}

async fn a_scheduled_event_is_a_heartbeat(server: TestServer) {
    let id = create(&server).await;
    let at = now_s();
    let (status, answer) = push_keyed(&server, &id, scheduled("sched-1", at).as_bytes()).await;
    assert_eq!((status, answer), (200, json!({"status": "heartbeat", "duplicate": false})));
    assert!(server.events(&id).await.is_empty(), "a heartbeat is not stored as an event");
    let c = server.connection(&id).await;
    assert_eq!(c["last_heartbeat_at"], common::api_time(at));
    assert_eq!(c["counters"]["heartbeats"], 1);
    assert_eq!(c["status"], "connected");

    // A batch may carry a heartbeat beside findings: both are taken.
    let batch = format!("[{}, {FINDING}]", scheduled("sched-2", now_s()));
    let (status, answer) = push_keyed(&server, &id, batch.as_bytes()).await;
    assert_eq!((status, answer), (200, json!({"status": "stored", "stored": 1, "duplicates": 0})));
    let c = server.connection(&id).await;
    assert_eq!((c["counters"]["heartbeats"].clone(), c["counters"]["events"].clone()), (json!(2), json!(1)));
    server.stop().await;
}

/// On a connection expecting a Scheduled Event every 300 s (default grace, 60 s): the
/// heartbeat counts at its event `time`, once per event `id`, forward only, and one older
/// than interval + grace at its arrival is refused as `heartbeat_not_fresh` (the events
/// beside it are stored all the same).
async fn heartbeats_count_at_their_event_time_once_and_while_fresh(server: TestServer) {
    let id = create(&server).await;
    let signed = now_s() - chrono::Duration::seconds(30);
    let captured = scheduled("sched-1", signed);
    assert_eq!(push_keyed(&server, &id, captured.as_bytes()).await, (200, json!({"status": "heartbeat", "duplicate": false})));
    assert_eq!(server.connection(&id).await["last_heartbeat_at"], common::api_time(signed), "its time, not its arrival");
    // Replayed later: a duplicate that moves nothing.
    assert_eq!(push_keyed(&server, &id, captured.as_bytes()).await, (200, json!({"status": "heartbeat", "duplicate": true})));
    // A late retry of an earlier beat: counted, the time stays.
    let earlier = scheduled("sched-0", signed - chrono::Duration::seconds(300));
    assert_eq!(push_keyed(&server, &id, earlier.as_bytes()).await.1["duplicate"], false);
    let c = server.connection(&id).await;
    assert_eq!(c["last_heartbeat_at"], common::api_time(signed));
    assert_eq!((c["counters"]["heartbeats"].as_i64(), c["counters"]["duplicates"].as_i64()), (Some(2), Some(1)));
    // Older than interval + grace: acknowledged, counted nothing, kept as refused.
    let stale = scheduled("sched-old", now_s() - chrono::Duration::seconds(361));
    let (status, answer) = push_keyed(&server, &id, stale.as_bytes()).await;
    assert_eq!((status, answer), (200, json!({"status": "kept_as_rejection", "reason": "heartbeat_not_fresh"})));
    let beside = format!("[{}, {FINDING}]", scheduled("sched-old-2", now_s() - chrono::Duration::hours(2)));
    assert_eq!(push_keyed(&server, &id, beside.as_bytes()).await, (200, json!({"status": "stored", "stored": 1, "duplicates": 0})));
    let c = server.connection(&id).await;
    assert_eq!((c["counters"]["heartbeats"].as_i64(), c["last_heartbeat_at"].clone()), (Some(2), json!(common::api_time(signed))));
    let reasons: Vec<String> = server.rejections(&id).await.iter().map(|r| r["reason"].as_str().unwrap().to_owned()).collect();
    assert_eq!(reasons, ["heartbeat_not_fresh", "heartbeat_not_fresh"]);
    // A fresh one moves it forward, to exactly its time.
    let later = now_s();
    assert_eq!(push_keyed(&server, &id, scheduled("sched-2", later).as_bytes()).await.0, 200);
    assert_eq!(server.connection(&id).await["last_heartbeat_at"], common::api_time(later));
    server.stop().await;
}

async fn wrong_keys_are_refused_and_recorded(server: TestServer) {
    let id = create(&server).await;
    let (status, answer) = push(&server, &id, FINDING.as_bytes(), &[("x-pushgate-key", "guess")]).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (401, Some("bad_credentials")));
    assert!(answer["error"]["message"].is_string());
    let (status, answer) = push(&server, &id, FINDING.as_bytes(), &[]).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (401, Some("missing_credentials")));

    assert!(server.events(&id).await.is_empty(), "nothing unauthenticated is stored");
    let rejections = server.rejections(&id).await;
    let reasons: Vec<&str> = rejections.iter().map(|r| r["reason"].as_str().unwrap()).collect();
    assert_eq!(reasons, ["missing_credentials", "bad_credentials"]);
    assert_eq!(rejections[1]["source_addr"], "127.0.0.1");
    assert!(rejections[1]["body_prefix"].as_str().unwrap().contains(FINDING_ID));
    let c = server.connection(&id).await;
    assert_eq!(c["counters"]["rejections"], 2);
    assert_eq!(c["status"], "requires_action", "refused pushes do not confirm the feed");
    server.stop().await;
}

async fn undecodable_but_authentic_bodies_are_stored_whole_as_raw_events(server: TestServer) {
    let id = create(&server).await;
    let cases: [(&[u8], &str); 5] = [
        (b"{not json", "invalid_json"),
        (b"\xff\xfe{}", "invalid_utf8"),
        (br#"{"source": "aws.securityhub"}"#, "missing_event_id"),
        (b"[]", "empty_batch"),
        (br#"[{"id": "e-1", "source": "aws.guardduty"}, 7]"#, "not_an_event"),
    ];
    for (body, reason) in cases {
        let headers = [("x-pushgate-key", KEY), ("content-type", "application/json")];
        let (status, answer) = push(&server, &id, body, &headers).await;
        assert_eq!((status, answer), (200, json!({"status": "stored_raw", "reason": reason, "stored": 1, "duplicates": 0})));
        let (status, answer) = push(&server, &id, body, &headers).await;
        assert_eq!((status, answer), (200, json!({"status": "stored_raw", "reason": reason, "stored": 0, "duplicates": 1})), "a retry");
    }
    let mut events = server.events(&id).await;
    events.reverse();
    assert_eq!(events.len(), 5);
    for (event, (body, _)) in events.iter().zip(cases) {
        assert_eq!(event["kind"], "raw");
        let expected = match std::str::from_utf8(body) {
            Ok(text) => json!({"raw": text, "content_type": "application/json"}),
            Err(_) => json!({"raw_base64": "//57fQ==", "content_type": "application/json"}),
        };
        assert_eq!(event["payload"], expected, "the whole body, as it came");
        assert_eq!(event["dedupe_key"], format!("sha256:{}", hex::encode(Sha256::digest(body))));
    }
    assert!(server.rejections(&id).await.is_empty(), "no rejection is kept for an authentic push");
    let c = server.connection(&id).await;
    assert!(c["subscription"]["confirmed_at"].is_string(), "authentic pushes confirm the feed even when undecodable");
    assert_eq!((c["counters"]["events"].as_i64(), c["counters"]["rejections"].as_i64()), (Some(5), Some(0)));
    assert_eq!(server.raw_events_metric("aws_eventbridge").await, 10);
    server.stop().await;
}

async fn hmac_signed_batches(server: TestServer) {
    let c = server
        .create(json!({"tenant_id": "acme", "name": "signed", "source": "aws_eventbridge",
            "config": {"auth": {"type": "hmac_sha256", "header": "X-Signature", "secret": "s3cret"}}}))
        .await;
    let id = c["id"].as_str().unwrap();
    let batch = format!("[{FINDING}, {GUARDDUTY}]");
    let signature = format!("sha256={}", hmac_hex("s3cret", batch.as_bytes()));
    let (status, answer) = push(&server, id, batch.as_bytes(), &[("x-signature", &signature)]).await;
    assert_eq!((status, answer), (200, json!({"status": "stored", "stored": 2, "duplicates": 0})));
    let forged = hmac_hex("guess", batch.as_bytes());
    let (status, answer) = push(&server, id, batch.as_bytes(), &[("x-signature", &forged)]).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (401, Some("bad_signature")));
    assert_eq!(server.events(id).await.len(), 2);
    server.stop().await;
}
