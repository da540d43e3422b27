//! The Pub/Sub sender end to end over HTTP, on SQLite and PostgreSQL: pushes signed with
//! OIDC tokens of a test key (its JWKS file is `PUSHGATE_GOOGLE_JWKS`), every way a token
//! can be wrong, decoding, dedupe, heartbeats and the answers Pub/Sub reads.

mod common;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{Duration, SubsecRound, Utc};
use common::{Backend, TestServer};
use pushgate::sources::gcp_pubsub::test_signer::TestOidcSigner;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

on_both_backends_with!(
    signed_pushes_are_stored_once_and_answered_204,
    every_wrong_token_is_refused_with_its_reason,
    subscriptions_outside_the_allow_list_are_refused,
    workspace_alerts_go_to_their_stream_and_heartbeats_count,
    heartbeats_count_at_their_publish_time_once_and_while_fresh,
    undecodable_messages_are_acknowledged_and_stored_whole_as_raw_events,
    unwrapped_pushes_are_read_from_their_headers,
);

const EMAIL: &str = "pubsub-push@acme-sec.iam.gserviceaccount.com";
const SUBSCRIPTION: &str = "projects/acme-sec/subscriptions/pushgate-scc";

struct Setup {
    server: TestServer,
    signer: TestOidcSigner,
}

impl Setup {
    async fn start(backend: Backend, test: &str) -> Option<Setup> {
        let signer = TestOidcSigner::new();
        let server = TestServer::builder(backend, test).google_signer(&signer).start().await?;
        Some(Setup { server, signer })
    }

    async fn connection(&self, config: Value) -> (String, String) {
        let mut full = json!({"service_account_email": EMAIL});
        full.as_object_mut().unwrap().extend(config.as_object().unwrap().clone());
        let c = self
            .server
            .create(json!({"tenant_id": "acme", "name": "SCC", "source": "gcp_pubsub", "heartbeat_interval_seconds": 300, "config": full}))
            .await;
        assert_eq!(c["stream"], "cloud_gcp_security_finding");
        (c["id"].as_str().unwrap().to_owned(), c["push_url"].as_str().unwrap().to_owned())
    }

    async fn push(&self, id: &str, token: Option<&str>, body: &[u8], headers: &[(&str, &str)]) -> (u16, Value) {
        let mut request = self.server.client.post(self.server.url(&format!("/push/gcp-pubsub/{id}"))).body(body.to_vec());
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, serde_json::from_str(&response.text().await.unwrap()).unwrap_or(Value::Null))
    }

    fn token(&self, push_url: &str) -> String {
        self.signer.push_token(push_url, EMAIL, Utc::now())
    }
}

/// A wrapped push body, as Pub/Sub sends it (both id spellings, as real pushes carry).
fn envelope(message_id: &str, data: &[u8], attributes: Value) -> Vec<u8> {
    envelope_at(message_id, data, attributes, "2026-11-23T10:00:00.123Z")
}

/// A wrapped push of a message published at `publish_time`.
fn envelope_at(message_id: &str, data: &[u8], attributes: Value, publish_time: &str) -> Vec<u8> {
    json!({
        "message": {"data": STANDARD.encode(data), "attributes": attributes, "messageId": message_id, "message_id": message_id,
                    "publishTime": publish_time, "publish_time": publish_time},
        "subscription": SUBSCRIPTION,
        "deliveryAttempt": 1,
    })
    .to_string()
    .into_bytes()
}

async fn signed_pushes_are_stored_once_and_answered_204(backend: Backend) {
    let Some(s) = Setup::start(backend, "pubsub_stored").await else { return };
    let (id, url) = s.connection(json!({})).await;
    let scc = include_bytes!("fixtures/gcp-pubsub/scc/sra_bad_ip_scc.json");
    let body = envelope("4711", scc, json!({"source": "scc"}));
    let (status, _) = s.push(&id, Some(&s.token(&url)), &body, &[]).await;
    assert_eq!(status, 204);
    // Pub/Sub redelivers (the ack was lost): stored once, still acknowledged.
    let (status, _) = s.push(&id, Some(&s.token(&url)), &body, &[]).await;
    assert_eq!(status, 204);
    let events = s.server.events(&id).await;
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!((e["kind"].as_str(), e["dedupe_key"].as_str(), e["source"].as_str()), (Some("alert"), Some("4711"), Some("gcp_pubsub")));
    assert_eq!(e["stream"], "cloud_gcp_security_finding");
    let finding: Value = serde_json::from_slice(scc).unwrap();
    assert_eq!(e["payload"]["finding"], finding["finding"], "the decoded data, not base64");
    assert_eq!(e["payload"]["_pubsub"]["attributes"], json!({"source": "scc"}));
    assert_eq!(e["payload"]["_pubsub"]["subscription"], SUBSCRIPTION);
    assert!(e["occurred_at"].is_string());
    let c = s.server.connection(&id).await;
    assert_eq!(c["counters"], json!({"events": 1, "heartbeats": 0, "duplicates": 1, "rejections": 0}));
    assert!(c["subscription"]["confirmed_at"].is_string(), "the first authenticated push confirms");
    s.server.stop().await;
}

async fn every_wrong_token_is_refused_with_its_reason(backend: Backend) {
    let Some(s) = Setup::start(backend, "pubsub_wrong_tokens").await else { return };
    let (id, url) = s.connection(json!({})).await;
    let (other_id, other_url) = s.connection(json!({})).await;
    let body = envelope("m-1", b"{\"a\":1}", json!({}));
    let now = Utc::now();
    let claims = |change: Value| {
        let mut c = TestOidcSigner::push_claims(&url, EMAIL, now);
        c.as_object_mut().unwrap().extend(change.as_object().unwrap().clone());
        c
    };
    let stranger = TestOidcSigner::new();
    let public_pem = s.signer.public_key_pem();
    let cases: Vec<(&str, Option<String>, u16, &str)> = vec![
        ("no token", None, 403, "gcp_token_missing"),
        ("not a JWT", Some("not-a-jwt".into()), 400, "gcp_token_malformed"),
        ("wrong issuer", Some(s.signer.token(claims(json!({"iss": "https://evil.example"})))), 403, "gcp_token_issuer"),
        ("wrong audience", Some(s.signer.token(claims(json!({"aud": "https://elsewhere.example/push"})))), 403, "gcp_token_audience"),
        ("another connection's token", Some(s.signer.push_token(&other_url, EMAIL, now)), 403, "gcp_token_audience"),
        ("wrong email", Some(s.signer.token(claims(json!({"email": "attacker@evil.iam.gserviceaccount.com"})))), 403, "gcp_token_email"),
        ("email not verified", Some(s.signer.token(claims(json!({"email_verified": false})))), 403, "gcp_token_email_unverified"),
        ("expired", Some(s.signer.push_token(&url, EMAIL, now - Duration::hours(2))), 403, "gcp_token_expired"),
        ("alg none", Some(s.signer.unsigned(claims(json!({})))), 403, "gcp_token_algorithm"),
        (
            "HS256 keyed with the public key",
            Some(s.signer.hs256_with(public_pem.as_bytes(), claims(json!({})))),
            403,
            "gcp_token_algorithm",
        ),
        ("unknown key", Some(stranger.token(claims(json!({})))), 403, "gcp_unknown_key"),
    ];
    let count = cases.len();
    for (case, token, status, reason) in cases {
        let (got, answer) = s.push(&id, token.as_deref(), &body, &[]).await;
        assert_eq!((got, answer["error"]["code"].as_str()), (status, Some(reason)), "{case}: {answer}");
    }
    assert!(s.server.events(&id).await.is_empty());
    let rejections = s.server.rejections(&id).await;
    assert_eq!(rejections.len(), count, "every refusal is recorded");
    assert!(rejections.iter().all(|r| !r["detail"].as_str().unwrap().contains("eyJ")), "no token in a record");
    let c = s.server.connection(&id).await;
    assert_eq!((c["status"].as_str(), c["status_message"].as_str()), (Some("error"), Some("Signature verification failing")));
    // The other connection saw nothing.
    assert_eq!(s.server.connection(&other_id).await["counters"]["rejections"], 0);
    s.server.stop().await;
}

async fn subscriptions_outside_the_allow_list_are_refused(backend: Backend) {
    let Some(s) = Setup::start(backend, "pubsub_allow_list").await else { return };
    let (id, url) = s.connection(json!({"subscriptions": ["projects/acme-sec/subscriptions/other"]})).await;
    let (status, answer) = s.push(&id, Some(&s.token(&url)), &envelope("m-2", b"{}", json!({})), &[]).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (403, Some("gcp_subscription_not_allowed")), "{answer}");
    // A body too broken to decode still names its subscription: refused, not kept.
    let broken =
        json!({"message": {"data": "%%%", "messageId": "b-1"}, "subscription": "projects/acme-sec/subscriptions/evil"}).to_string();
    let (status, answer) = s.push(&id, Some(&s.token(&url)), broken.as_bytes(), &[]).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (403, Some("gcp_subscription_not_allowed")), "{answer}");
    // An unwrapped push without metadata names no subscription: refused while a list is set.
    let (status, answer) = s.push(&id, Some(&s.token(&url)), b"raw data", &[]).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (403, Some("gcp_subscription_not_allowed")), "{answer}");
    assert!(!answer["error"]["message"].as_str().unwrap().contains("acme-sec"), "the answer names nothing configured");
    assert!(s.server.connection(&id).await["subscription"]["confirmed_at"].is_null());
    let (allowed, url) = s.connection(json!({"subscriptions": [SUBSCRIPTION]})).await;
    let (status, _) = s.push(&allowed, Some(&s.token(&url)), &envelope("m-2", b"{}", json!({})), &[]).await;
    assert_eq!(status, 204);
    s.server.stop().await;
}

async fn workspace_alerts_go_to_their_stream_and_heartbeats_count(backend: Backend) {
    let Some(s) = Setup::start(backend, "pubsub_workspace").await else { return };
    let (id, url) = s.connection(json!({})).await;
    let alert = include_bytes!("fixtures/gcp-pubsub/workspace/derived_alertcenter_suspicious-login.json");
    let (status, _) =
        s.push(&id, Some(&s.token(&url)), &envelope("ws-1", alert, json!({"alertcenter_alert_type": "Suspicious login"})), &[]).await;
    assert_eq!(status, 204);
    let events = s.server.events(&id).await;
    assert_eq!((events[0]["stream"].as_str(), events[0]["kind"].as_str()), (Some("cloud_google_workspace_alert"), Some("alert")));

    let published = Utc::now();
    let heartbeat = beat("hb-1", published);
    let (status, _) = s.push(&id, Some(&s.token(&url)), &heartbeat, &[]).await;
    assert_eq!(status, 204);
    let c = s.server.connection(&id).await;
    assert_eq!(c["last_heartbeat_at"], common::api_time(published.trunc_subsecs(6)), "its publishTime, to the microsecond");
    assert_eq!((c["counters"]["heartbeats"].as_i64(), c["counters"]["events"].as_i64()), (Some(1), Some(1)));
    s.server.stop().await;
}

/// A heartbeat message published at `at` (written to the nanosecond, as Pub/Sub does).
fn beat(message_id: &str, at: chrono::DateTime<Utc>) -> Vec<u8> {
    let time = at.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    envelope_at(message_id, b"{\"type\":\"heartbeat\"}", json!({"pushgate_kind": "heartbeat"}), &time)
}

/// A Pub/Sub heartbeat counts at its `publishTime`, once per `messageId`, forward only,
/// and not when older than interval + grace (300 + 60 s) at its arrival; every one of them
/// is acknowledged 204, so Pub/Sub stops redelivering.
async fn heartbeats_count_at_their_publish_time_once_and_while_fresh(backend: Backend) {
    let Some(s) = Setup::start(backend, "pubsub_heartbeat_rules").await else { return };
    let (id, url) = s.connection(json!({})).await;
    let (id, url) = (id.as_str(), url.as_str());
    let push = |body: Vec<u8>| {
        let token = s.token(url);
        let s = &s;
        async move { s.push(id, Some(&token), &body, &[]).await.0 }
    };
    let published = (Utc::now() - Duration::seconds(30)).trunc_subsecs(6);
    assert_eq!(push(beat("hb-1", published)).await, 204);
    assert_eq!(s.server.connection(id).await["last_heartbeat_at"], common::api_time(published), "its publishTime, not its arrival");
    // Redelivered (or replayed) later: a duplicate.
    assert_eq!(push(beat("hb-1", published)).await, 204);
    // A late redelivery of an earlier message: counted, the time stays.
    assert_eq!(push(beat("hb-0", published - Duration::seconds(300))).await, 204);
    let c = s.server.connection(id).await;
    assert_eq!(c["last_heartbeat_at"], common::api_time(published));
    assert_eq!((c["counters"]["heartbeats"].as_i64(), c["counters"]["duplicates"].as_i64()), (Some(2), Some(1)));
    // Published too long ago: acknowledged, counted nothing, kept as refused.
    assert_eq!(push(beat("hb-old", Utc::now() - Duration::seconds(400))).await, 204);
    let c = s.server.connection(id).await;
    assert_eq!((c["counters"]["heartbeats"].as_i64(), c["last_heartbeat_at"].clone()), (Some(2), json!(common::api_time(published))));
    let reasons: Vec<String> = s.server.rejections(id).await.iter().map(|r| r["reason"].as_str().unwrap().to_owned()).collect();
    assert_eq!(reasons, ["heartbeat_not_fresh"]);
    // A fresh one moves it forward to exactly its publishTime.
    let later = Utc::now().trunc_subsecs(6);
    assert_eq!(push(beat("hb-2", later)).await, 204);
    assert_eq!(s.server.connection(id).await["last_heartbeat_at"], common::api_time(later));
    s.server.stop().await;
}

async fn undecodable_messages_are_acknowledged_and_stored_whole_as_raw_events(backend: Backend) {
    let Some(s) = Setup::start(backend, "pubsub_undecodable").await else { return };
    let (id, url) = s.connection(json!({})).await;
    let bad = json!({"message": {"data": "%%% not base64 %%%", "messageId": "bad-1", "attributes": {"team": "blue"}}, "subscription": SUBSCRIPTION})
        .to_string();
    let json_type = [("content-type", "application/json")];
    for _ in 0..2 {
        let (status, _) = s.push(&id, Some(&s.token(&url)), bad.as_bytes(), &json_type).await;
        assert_eq!(status, 204, "acknowledged, so Pub/Sub does not redeliver it for 7 days");
    }
    // An envelope whose message id cannot be read: keyed by the body's hash.
    let conflicting = json!({"message": {"data": "e30=", "messageId": "a", "message_id": "b"}, "subscription": SUBSCRIPTION}).to_string();
    let (status, _) = s.push(&id, Some(&s.token(&url)), conflicting.as_bytes(), &json_type).await;
    assert_eq!(status, 204);
    // An unwrapped push whose metadata does not read keeps its data bytes.
    let headers = [("x-goog-pubsub-message-id", "u-9"), ("x-goog-pubsub-publish-time", "a"), ("x-goog-pubsub-publish-time", "b")];
    let (status, _) = s.push(&id, Some(&s.token(&url)), b"\x00\x01 binary data", &headers).await;
    assert_eq!(status, 204);
    assert!(s.server.rejections(&id).await.is_empty(), "an authentic push is no refusal");
    let events = s.server.events(&id).await;
    assert_eq!(events.len(), 3, "the retry is stored once: {events:?}");
    let (unwrapped, conflicted, invalid) = (&events[0], &events[1], &events[2]);
    assert!(events.iter().all(|e| e["kind"] == "raw" && e["stream"] == "cloud_gcp_security_finding"));
    assert_eq!(
        (invalid["dedupe_key"].as_str(), &invalid["payload"]),
        (Some("bad-1"), &json!({"raw": bad, "content_type": "application/json"}))
    );
    assert_eq!(conflicted["dedupe_key"], format!("sha256:{}", hex::encode(Sha256::digest(conflicting.as_bytes()))));
    assert_eq!(conflicted["payload"]["raw"], conflicting);
    assert_eq!(unwrapped["dedupe_key"], "u-9");
    assert_eq!(unwrapped["payload"], json!({"raw_base64": STANDARD.encode(b"\x00\x01 binary data"), "content_type": null}));
    let c = s.server.connection(&id).await;
    assert_eq!(c["counters"], json!({"events": 3, "heartbeats": 0, "duplicates": 1, "rejections": 0}));
    assert_eq!(s.server.raw_events_metric("gcp_pubsub").await, 4);

    let paused = s.server.admin(reqwest::Method::POST, &format!("/v1/connections/{id}/pause")).send().await.unwrap();
    assert_eq!(paused.status(), 200);
    let (status, _) = s.push(&id, Some(&s.token(&url)), &envelope("p-1", b"{}", json!({})), &[]).await;
    assert_eq!(status, 503, "paused: Pub/Sub redelivers later");
    s.server.stop().await;
}

async fn unwrapped_pushes_are_read_from_their_headers(backend: Backend) {
    let Some(s) = Setup::start(backend, "pubsub_unwrapped").await else { return };
    let (id, url) = s.connection(json!({})).await;
    let data = br#"{"finding": {"name": "organizations/1/sources/2/findings/3", "eventTime": "2026-11-22T09:00:00Z"}}"#;
    let headers = [
        ("x-goog-pubsub-message-id", "u-1"),
        ("x-goog-pubsub-subscription-name", SUBSCRIPTION),
        ("x-goog-pubsub-publish-time", "2026-11-23T10:00:00Z"),
        ("team", "blue"),
        ("x-amzn-oidc-accesstoken", "proxy-credential"),
        ("x-api-key", "proxy-key"),
    ];
    let (status, _) = s.push(&id, Some(&s.token(&url)), data, &headers).await;
    assert_eq!(status, 204);
    let events = s.server.events(&id).await;
    assert_eq!(events[0]["dedupe_key"], "u-1");
    assert_eq!(events[0]["occurred_at"], "2026-11-22T09:00:00Z");
    assert_eq!(events[0]["payload"]["_pubsub"]["attributes"]["team"], "blue");
    let attributes = &events[0]["payload"]["_pubsub"]["attributes"];
    assert!(attributes.get("authorization").is_none() && attributes.get("x-amzn-oidc-accesstoken").is_none());
    assert!(attributes.get("x-api-key").is_none(), "{attributes}");
    s.server.stop().await;
}
