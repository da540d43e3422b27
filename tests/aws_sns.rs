//! The SNS sender end to end: a real server on port 0, messages signed by a test signer
//! whose certificate is pinned or served by a stand-in for `sns.<region>.amazonaws.com`
//! (real TLS, test CA), on SQLite and PostgreSQL.
//!
//! No AWS credentials are configured here (and instance-metadata lookups are off), so a
//! confirmation goes through the SubscribeURL GET; `aws_sns_moto.rs` covers the
//! `ConfirmSubscription` API path.

mod common;
#[path = "common/fake_aws.rs"]
mod fake_aws;

use std::collections::HashMap;

use chrono::{SubsecRound, Utc};
use common::{Backend, TestServer};
use fake_aws::FakeAws;
use pushgate::sources::aws_sns::test_signer::TestSigner;
use serde_json::{json, Value};

const REGION: &str = "us-east-1";
const HOST: &str = "sns.us-east-1.amazonaws.com";
const TOPIC: &str = "arn:aws:sns:us-east-1:111122223333:securityhub-findings";

on_both_backends_with!(
    subscription_is_confirmed_through_the_subscribe_url,
    certificate_is_fetched_once_from_the_aws_host_then_cached,
    findings_are_stored_once_per_finding_and_replays_are_duplicates,
    scheduled_event_is_a_heartbeat,
    heartbeats_count_at_the_sns_timestamp_once_and_while_fresh,
    attacker_topic_is_refused_before_any_fetch,
    tampered_subscribe_url_is_refused_and_nothing_is_fetched,
    cert_url_off_the_sns_host_or_region_is_refused,
    manual_confirmation_waits_for_an_admin,
    unsubscribe_confirmation_marks_the_subscription_missing,
    raw_delivery_and_non_envelopes_are_refused,
    paused_connection_asks_sns_to_retry,
    refused_confirmation_is_kept_without_its_token,
    a_message_that_is_not_json_is_stored_whole_as_a_raw_event,
);

/// A server whose outbound requests reach `fake` and, when `pin` is set, with the
/// signer's certificate pinned.
struct Setup {
    server: TestServer,
    fake: FakeAws,
    signer: TestSigner,
}

impl Setup {
    async fn start(backend: Backend, test: &str, pin: bool) -> Option<Setup> {
        // No credentials reach the SDK in this binary, and no instance-metadata probe leaves the host.
        std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
        let signer = TestSigner::new(REGION);
        let mut files = HashMap::new();
        files.insert(format!("/{}", signer.cert_file_name()), signer.cert_pem().as_bytes().to_vec());
        let fake = FakeAws::start(HOST, files).await;
        let mut server = TestServer::builder(backend, test).with_options(|o| o.outbound_test_transport = Some(fake.transport()));
        if pin {
            server = server.sns_signer(&signer);
        }
        Some(Setup { server: server.start().await?, fake, signer })
    }

    async fn connection(&self, extra_config: Value) -> String {
        let mut config = json!({"topic_arns": [TOPIC]});
        config.as_object_mut().unwrap().extend(extra_config.as_object().unwrap().clone());
        let c = self
            .server
            .create(json!({
                "tenant_id": "acme", "name": "Security Hub (prod)", "source": "aws_sns",
                "heartbeat_interval_seconds": 300, "grace_seconds": 60, "config": config,
            }))
            .await;
        assert_eq!(c["stream"], "cloud_aws_securityhub_alert");
        c["id"].as_str().unwrap().to_owned()
    }

    async fn push(&self, id: &str, body: &str, headers: &[(&str, &str)]) -> (u16, Value) {
        let mut request = self
            .server
            .client
            .post(self.server.url(&format!("/push/aws-sns/{id}")))
            .header("content-type", "text/plain; charset=UTF-8")
            .body(body.to_owned());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let retry_after = response.headers().get("retry-after").is_some();
        let mut json: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap_or(Value::Null);
        if retry_after {
            json["_retry_after"] = json!(true);
        }
        (status, json)
    }

    fn subscribe_url(&self) -> String {
        format!("https://{HOST}/?Action=ConfirmSubscription&TopicArn={TOPIC}&Token=2336412f37fb687f5d51e6e2425929f5")
    }

    fn confirmation(&self, message_id: &str) -> String {
        self.signer.subscription_confirmation(TOPIC, message_id, "2336412f37fb687f5d51e6e2425929f5", &self.subscribe_url(), Utc::now())
    }

    fn finding_notification(&self, message_id: &str) -> String {
        let finding = include_str!("fixtures/aws-eventbridge/securityhub/asr_afsbp-ec2.7.json");
        let mut event: Value = serde_json::from_str(finding).unwrap();
        // Two findings in one message: stored as two events keyed MessageId/0 and /1.
        let mut second = event["detail"]["findings"][0].clone();
        second["Id"] = json!("arn:aws:securityhub:us-east-1:111111111111:finding/second");
        event["detail"]["findings"].as_array_mut().unwrap().push(second);
        self.signer.notification(TOPIC, message_id, &event.to_string(), None, Utc::now())
    }
}

fn pem_fetches(fake: &FakeAws) -> usize {
    fake.requests().iter().filter(|r| r.ends_with(".pem")).count()
}

async fn subscription_is_confirmed_through_the_subscribe_url(backend: Backend) {
    let Some(s) = Setup::start(backend, "sns_confirm_url", true).await else { return };
    let id = s.connection(json!({})).await;
    let before = s.server.connection(&id).await;
    assert_eq!((before["status"].as_str(), before["status_message"].as_str()), (Some("requires_action"), Some("Awaiting subscription")));

    let (status, answer) = s.push(&id, &s.confirmation("m-confirm-1"), &[("x-amz-sns-message-type", "SubscriptionConfirmation")]).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["status"], "confirmed");
    let arn = format!("{TOPIC}:0f6c8e2a-7d1b-4c9e-9a53-1b2c3d4e5f60");
    assert_eq!(answer["subscription_arn"], arn.as_str());
    let confirm_gets: Vec<String> = s.fake.requests().into_iter().filter(|r| r.contains("Action=ConfirmSubscription")).collect();
    assert_eq!(confirm_gets.len(), 1, "exactly one GET of the SubscribeURL: {confirm_gets:?}");
    assert_eq!(pem_fetches(&s.fake), 0, "the pinned certificate is used, nothing fetched");

    let c = s.server.connection(&id).await;
    assert_eq!(c["subscription"]["external_id"], arn.as_str());
    assert!(c["subscription"]["confirmed_at"].is_string());
    // Confirmed, heartbeat expected within interval + grace: connected for now.
    assert_eq!(c["status"], "connected", "{c}");
    assert!(s.server.events(&id).await.is_empty(), "a handshake is not an event");
    s.server.stop().await;
}

async fn certificate_is_fetched_once_from_the_aws_host_then_cached(backend: Backend) {
    let Some(s) = Setup::start(backend, "sns_cert_fetch", false).await else { return };
    let id = s.connection(json!({})).await;
    for n in 0..3 {
        let body = s.signer.notification(TOPIC, &format!("m-fetch-{n}"), "{\"hello\": \"world\"}", Some("subject"), Utc::now());
        let (status, answer) = s.push(&id, &body, &[]).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["stored"], 1);
    }
    assert_eq!(pem_fetches(&s.fake), 1, "one fetch, then the cache: {:?}", s.fake.requests());
    s.server.stop().await;
}

async fn findings_are_stored_once_per_finding_and_replays_are_duplicates(backend: Backend) {
    let Some(s) = Setup::start(backend, "sns_findings", true).await else { return };
    let id = s.connection(json!({})).await;
    let body = s.finding_notification("5f0a5b2e-aaaa-bbbb-cccc-000000000001");
    let (status, answer) = s.push(&id, &body, &[("x-amz-sns-message-type", "Notification")]).await;
    assert_eq!((status, answer.clone()), (200, json!({"status": "stored", "stored": 2, "duplicates": 0})));
    // SNS redelivers the same message (same MessageId, same signature): stored once.
    let (status, answer) = s.push(&id, &body, &[]).await;
    assert_eq!((status, answer), (200, json!({"status": "stored", "stored": 0, "duplicates": 2})));

    let events = s.server.events(&id).await;
    assert_eq!(events.len(), 2);
    let mut keys: Vec<&str> = events.iter().map(|e| e["dedupe_key"].as_str().unwrap()).collect();
    keys.sort();
    assert_eq!(keys, ["5f0a5b2e-aaaa-bbbb-cccc-000000000001/0", "5f0a5b2e-aaaa-bbbb-cccc-000000000001/1"]);
    for e in &events {
        assert_eq!((e["kind"].as_str(), e["source"].as_str()), (Some("alert"), Some("aws_sns")));
        assert_eq!(e["payload"]["detail-type"], "Security Hub Findings - Imported");
        assert_eq!(e["payload"]["detail"]["findings"].as_array().unwrap().len(), 1, "one finding per event");
        assert_eq!(e["occurred_at"], "2021-02-17T14:56:09.063Z");
    }
    let c = s.server.connection(&id).await;
    assert_eq!(c["counters"], json!({"events": 2, "heartbeats": 0, "duplicates": 2, "rejections": 0}));
    assert!(c["data_last_received_at"].is_string());
    s.server.stop().await;
}

async fn scheduled_event_is_a_heartbeat(backend: Backend) {
    let Some(s) = Setup::start(backend, "sns_heartbeat", true).await else { return };
    let id = s.connection(json!({})).await;
    let schedule = include_str!("fixtures/aws-eventbridge/scheduled/awsdocs_eventbridge_scheduled-event.json");
    let sent = Utc::now().trunc_subsecs(3);
    let body = s.signer.notification(TOPIC, "m-heartbeat-1", schedule, None, sent);
    let (status, answer) = s.push(&id, &body, &[]).await;
    assert_eq!((status, answer), (200, json!({"status": "heartbeat", "duplicate": false})));
    let c = s.server.connection(&id).await;
    assert_eq!(c["last_heartbeat_at"], common::api_time(sent), "the SNS Timestamp");
    assert_eq!(c["counters"]["heartbeats"], 1);
    assert!(s.server.events(&id).await.is_empty());
    s.server.stop().await;
}

/// An SNS delivery of a Scheduled Event counts at the envelope's signed `Timestamp`, once
/// per `MessageId` (the event inside is the same for every delivery of a rule, so it is
/// not what proves anything), forward only, and not when older than interval + grace.
async fn heartbeats_count_at_the_sns_timestamp_once_and_while_fresh(backend: Backend) {
    let Some(s) = Setup::start(backend, "sns_heartbeat_rules", true).await else { return };
    let id = s.connection(json!({})).await;
    let schedule = include_str!("fixtures/aws-eventbridge/scheduled/awsdocs_eventbridge_scheduled-event.json");
    let beat = |message_id: &str, sent| s.signer.notification(TOPIC, message_id, schedule, None, sent);
    let sent = Utc::now().trunc_subsecs(3) - chrono::Duration::seconds(30);
    let captured = beat("m-hb-1", sent);
    assert_eq!(s.push(&id, &captured, &[]).await, (200, json!({"status": "heartbeat", "duplicate": false})));
    assert_eq!(s.server.connection(&id).await["last_heartbeat_at"], common::api_time(sent), "its Timestamp, not its arrival");
    // The captured delivery, replayed: a duplicate.
    assert_eq!(s.push(&id, &captured, &[]).await, (200, json!({"status": "heartbeat", "duplicate": true})));
    // A late retry of an earlier message: counted, the time stays.
    assert_eq!(s.push(&id, &beat("m-hb-0", sent - chrono::Duration::seconds(300)), &[]).await.1["duplicate"], false);
    let c = s.server.connection(&id).await;
    assert_eq!(c["last_heartbeat_at"], common::api_time(sent));
    assert_eq!((c["counters"]["heartbeats"].as_i64(), c["counters"]["duplicates"].as_i64()), (Some(2), Some(1)));
    // Signed more than 300 + 60 s before it arrived (SNS itself would take it for 7 days).
    let (status, answer) = s.push(&id, &beat("m-hb-old", Utc::now() - chrono::Duration::seconds(400)), &[]).await;
    assert_eq!((status, answer), (200, json!({"status": "kept_as_rejection", "reason": "heartbeat_not_fresh"})));
    let c = s.server.connection(&id).await;
    assert_eq!((c["counters"]["heartbeats"].as_i64(), c["last_heartbeat_at"].clone()), (Some(2), json!(common::api_time(sent))));
    let reasons: Vec<String> = s.server.rejections(&id).await.iter().map(|r| r["reason"].as_str().unwrap().to_owned()).collect();
    assert_eq!(reasons, ["heartbeat_not_fresh"]);
    // A fresh one moves it forward, to exactly its Timestamp.
    let later = Utc::now().trunc_subsecs(3);
    assert_eq!(s.push(&id, &beat("m-hb-2", later), &[]).await.0, 200);
    assert_eq!(s.server.connection(&id).await["last_heartbeat_at"], common::api_time(later));
    s.server.stop().await;
}

async fn attacker_topic_is_refused_before_any_fetch(backend: Backend) {
    // Fetching allowed, nothing pinned: a refusal with no fetch proves the topic is checked first.
    let Some(s) = Setup::start(backend, "sns_attacker_topic", false).await else { return };
    let id = s.connection(json!({})).await;
    let attacker = "arn:aws:sns:us-east-1:999999999999:attacker-topic";
    let body = s.signer.notification(attacker, "m-attack-1", "{\"forged\": true}", None, Utc::now());
    let (status, answer) = s.push(&id, &body, &[]).await;
    assert_eq!(status, 403, "{answer}");
    assert_eq!(answer["error"]["code"], "topic_not_allowed");
    let subscribe_url = format!("https://{HOST}/?Action=ConfirmSubscription&TopicArn={attacker}&Token=abc");
    let body = s.signer.subscription_confirmation(attacker, "m-attack-2", "abc", &subscribe_url, Utc::now());
    let (status, _) = s.push(&id, &body, &[]).await;
    assert_eq!(status, 403);
    assert!(s.fake.requests().is_empty(), "nothing fetched or confirmed for a foreign topic: {:?}", s.fake.requests());
    assert!(s.server.events(&id).await.is_empty());
    let rejections = s.server.rejections(&id).await;
    assert_eq!(rejections.len(), 2);
    assert!(rejections.iter().all(|r| r["reason"] == "topic_not_allowed"));
    assert!(rejections[0]["body_prefix"].as_str().unwrap().contains("attacker-topic"));
    let c = s.server.connection(&id).await;
    assert!(c["subscription"]["confirmed_at"].is_null());
    s.server.stop().await;
}

async fn tampered_subscribe_url_is_refused_and_nothing_is_fetched(backend: Backend) {
    let Some(s) = Setup::start(backend, "sns_tampered_url", true).await else { return };
    let id = s.connection(json!({})).await;
    let mut body: Value = serde_json::from_str(&s.confirmation("m-tamper-1")).unwrap();
    body["SubscribeURL"] = json!(format!("https://{HOST}/?Action=ConfirmSubscription&TopicArn={TOPIC}&Token=evil"));
    let (status, answer) = s.push(&id, &body.to_string(), &[]).await;
    assert_eq!(status, 403, "{answer}");
    assert_eq!(answer["error"]["code"], "sns_signature_invalid");
    assert!(s.fake.requests().is_empty(), "{:?}", s.fake.requests());
    assert_eq!(s.server.rejections(&id).await[0]["reason"], "sns_signature_invalid");
    assert!(s.server.connection(&id).await["subscription"]["confirmed_at"].is_null());
    s.server.stop().await;
}

async fn cert_url_off_the_sns_host_or_region_is_refused(backend: Backend) {
    let Some(s) = Setup::start(backend, "sns_cert_url", false).await else { return };
    let id = s.connection(json!({})).await;
    let file = s.signer.cert_file_name();
    for url in [
        format!("https://s3.amazonaws.com/{file}"),
        format!("https://sns.eu-west-1.amazonaws.com/{file}"),
        format!("http://{HOST}/{file}"),
        format!("https://{HOST}.evil.example/{file}"),
    ] {
        let mut body: Value = serde_json::from_str(&s.signer.notification(TOPIC, "m-url", "x", None, Utc::now())).unwrap();
        body["SigningCertURL"] = json!(url);
        let (status, answer) = s.push(&id, &body.to_string(), &[]).await;
        assert_eq!(status, 403, "{url}: {answer}");
        assert_eq!(answer["error"]["code"], "sns_cert_url_invalid", "{url}");
    }
    assert!(s.fake.requests().is_empty());
    assert_eq!(s.server.rejections(&id).await.len(), 4);
    s.server.stop().await;
}

async fn manual_confirmation_waits_for_an_admin(backend: Backend) {
    let Some(s) = Setup::start(backend, "sns_manual_confirm", true).await else { return };
    let id = s.connection(json!({"auto_confirm": false})).await;
    let (status, answer) = s.push(&id, &s.confirmation("m-manual-1"), &[]).await;
    assert_eq!((status, answer), (200, json!({"status": "awaiting_admin_confirmation"})));
    assert!(s.fake.requests().is_empty(), "nothing is confirmed before the admin says so");
    let c = s.server.connection(&id).await;
    assert_eq!((c["status"].as_str(), c["status_message"].as_str()), (Some("requires_action"), Some("Awaiting subscription")));
    assert_eq!(c["subscription"]["confirmation_url"], s.subscribe_url().as_str());

    let response = s.server.admin(reqwest::Method::POST, &format!("/v1/connections/{id}/confirm")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let c: Value = response.json().await.unwrap();
    assert_eq!(c["subscription"]["external_id"], format!("{TOPIC}:0f6c8e2a-7d1b-4c9e-9a53-1b2c3d4e5f60").as_str());
    assert!(c["subscription"].get("confirmation_url").is_none(), "the URL is cleared once used");
    assert_eq!(c["status"], "connected");
    assert_eq!(s.fake.requests().iter().filter(|r| r.contains("Action=ConfirmSubscription")).count(), 1);

    let again = s.server.admin(reqwest::Method::POST, &format!("/v1/connections/{id}/confirm")).send().await.unwrap();
    assert_eq!(again.status(), 409);
    s.server.stop().await;
}

async fn unsubscribe_confirmation_marks_the_subscription_missing(backend: Backend) {
    let Some(s) = Setup::start(backend, "sns_unsubscribe", true).await else { return };
    let id = s.connection(json!({})).await;
    let (status, _) = s.push(&id, &s.confirmation("m-sub-1"), &[]).await;
    assert_eq!(status, 200);
    let resubscribe = format!("https://{HOST}/?Action=ConfirmSubscription&TopicArn={TOPIC}&Token=feedface");
    let body = s.signer.unsubscribe_confirmation(TOPIC, "m-unsub-1", "feedface", &resubscribe, Utc::now());
    let (status, answer) = s.push(&id, &body, &[("x-amz-sns-message-type", "UnsubscribeConfirmation")]).await;
    assert_eq!((status, answer), (200, json!({"status": "lifecycle"})));
    let c = s.server.connection(&id).await;
    assert_eq!((c["status"].as_str(), c["status_message"].as_str()), (Some("error"), Some("Subscription is missing")));
    let events = s.server.events(&id).await;
    assert_eq!(events.len(), 1);
    assert_eq!((events[0]["kind"].as_str(), events[0]["dedupe_key"].as_str()), (Some("lifecycle"), Some("m-unsub-1")));
    assert_eq!(events[0]["payload"]["Type"], "UnsubscribeConfirmation");
    assert!(events[0]["payload"].get("Token").is_none() && events[0]["payload"].get("SubscribeURL").is_none());

    assert!(!s.server.rejections(&id).await.iter().any(|r| r["body_prefix"].as_str().unwrap().contains("feedface")));

    // Subscribing again (a new verified confirmation) brings it back, and a retry of the
    // old unsubscribe (a duplicate, sent before the new confirmation) changes nothing.
    // The confirmation must be recorded at a later time than the loss, not the same one.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let (status, _) = s.push(&id, &s.confirmation("m-sub-2"), &[]).await;
    assert_eq!(status, 200);
    assert_eq!(s.server.connection(&id).await["status"], "connected");
    let (status, answer) = s.push(&id, &body, &[]).await;
    assert_eq!((status, answer), (200, json!({"status": "lifecycle"})));
    assert_eq!(s.server.connection(&id).await["status"], "connected");
    assert_eq!(s.server.connection(&id).await["counters"]["duplicates"], 1);
    s.server.stop().await;
}

async fn raw_delivery_and_non_envelopes_are_refused(backend: Backend) {
    let Some(s) = Setup::start(backend, "sns_raw", true).await else { return };
    let id = s.connection(json!({})).await;
    let body = s.finding_notification("m-raw-1");
    let (status, answer) = s.push(&id, &body, &[("x-amz-sns-rawdelivery", "true")]).await;
    assert_eq!(status, 400, "{answer}");
    let raw_finding = include_str!("fixtures/aws-eventbridge/securityhub/asr_afsbp-ec2.7.json");
    let (status, _) = s.push(&id, raw_finding, &[]).await;
    assert_eq!(status, 400, "a bare EventBridge event carries no signature");
    let (status, _) = s.push(&id, "not json at all", &[]).await;
    assert_eq!(status, 400);
    let (status, answer) = s.push(&id, &body, &[("x-amz-sns-message-type", "SubscriptionConfirmation")]).await;
    assert_eq!(status, 400, "header and body disagree: {answer}");
    assert!(s.server.events(&id).await.is_empty());
    assert_eq!(s.server.rejections(&id).await.len(), 4);
    s.server.stop().await;
}

async fn paused_connection_asks_sns_to_retry(backend: Backend) {
    let Some(s) = Setup::start(backend, "sns_paused", true).await else { return };
    let id = s.connection(json!({})).await;
    let paused = s.server.admin(reqwest::Method::POST, &format!("/v1/connections/{id}/pause")).send().await.unwrap();
    assert_eq!(paused.status(), 200);
    let (status, answer) = s.push(&id, &s.finding_notification("m-paused-1"), &[]).await;
    assert_eq!(status, 503);
    assert_eq!(answer["_retry_after"], true);
    assert!(s.server.events(&id).await.is_empty());
    s.server.stop().await;
}

async fn refused_confirmation_is_kept_without_its_token(backend: Backend) {
    let Some(s) = Setup::start(backend, "sns_refused_confirmation", true).await else { return };
    let id = s.connection(json!({})).await;
    // The stand-in AWS answers 403 for this token, as AWS does for an expired one.
    let url = format!("https://{HOST}/?Action=ConfirmSubscription&TopicArn={TOPIC}&Token=expired");
    let body = s.signer.subscription_confirmation(TOPIC, "m-expired-1", "expired", &url, Utc::now());
    let (status, answer) = s.push(&id, &body, &[]).await;
    assert_eq!(status, 200, "retrying an expired token cannot help: {answer}");
    assert_eq!(answer, json!({"status": "kept_as_rejection", "reason": "sns_confirmation_refused"}));
    let c = s.server.connection(&id).await;
    assert!(c["subscription"]["confirmed_at"].is_null());
    assert_eq!(c["status_message"], "Awaiting subscription");
    let rejections = s.server.rejections(&id).await;
    assert_eq!(rejections[0]["reason"], "sns_confirmation_refused");
    let kept = rejections[0]["body_prefix"].as_str().unwrap();
    assert!(kept.contains("m-expired-1") && !kept.contains("expired\"") && !kept.contains("Token=expired"), "{kept}");
    s.server.stop().await;
}

async fn a_message_that_is_not_json_is_stored_whole_as_a_raw_event(backend: Backend) {
    let Some(s) = Setup::start(backend, "sns_raw_message", true).await else { return };
    let id = s.connection(json!({})).await;
    let text = "ALARM: \"disk full\" on i-0abc\n{ not json";
    let body = s.signer.notification(TOPIC, "m-text-1", text, None, Utc::now());
    let (status, answer) = s.push(&id, &body, &[]).await;
    assert_eq!((status, answer), (200, json!({"status": "stored_raw", "reason": "sns_message_not_json", "stored": 1, "duplicates": 0})));
    // SNS retries the delivery: its MessageId keys the raw event, so it is stored once.
    let (status, answer) = s.push(&id, &body, &[]).await;
    assert_eq!((status, answer["duplicates"].as_i64()), (200, Some(1)));
    let events = s.server.events(&id).await;
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!((e["kind"].as_str(), e["dedupe_key"].as_str()), (Some("raw"), Some("m-text-1")));
    assert_eq!(e["payload"], json!({"raw": text, "content_type": "text/plain"}), "the Message whole, without the SNS envelope");
    assert!(s.server.rejections(&id).await.is_empty());
    let c = s.server.connection(&id).await;
    assert_eq!((c["counters"]["events"].as_i64(), c["counters"]["duplicates"].as_i64()), (Some(1), Some(1)));
    assert!(c["subscription"]["confirmed_at"].is_string(), "an authentic notification confirms");
    assert_eq!(s.server.raw_events_metric("aws_sns").await, 2);
    s.server.stop().await;
}
