//! Pub/Sub end to end through the real Pub/Sub emulator, on SQLite and PostgreSQL.
//!
//! The emulator pushes without an OIDC token, as an unauthenticated push subscription
//! would: pushgate must refuse those pushes, and the emulator keeps retrying them. A small
//! relay in front of pushgate (its `PUSHGATE_PUBLIC_URL`, as a reverse proxy would be)
//! then adds a token signed by the test key, as Google does, and every published message
//! must be stored exactly once, the canary heartbeat (published by pushgate with
//! `google-cloud-pubsub`) included. Deleting the subscription turns the connection to
//! `Subscription is missing` through the subscription check.
//!
//! Skipped, loudly, without the emulator (`scripts/test` starts it when it is installed).

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use common::{Backend, TestServer};
use google_cloud_pubsub::client::{Publisher, SubscriptionAdmin, TopicAdmin};
use google_cloud_pubsub::model::{Message, PushConfig};
use pushgate::sources::gcp_pubsub::test_signer::TestOidcSigner;
use serde_json::{json, Value};

on_both_backends_with!(emulator_pushes_are_refused_until_signed_then_stored_once);

const PROJECT: &str = "pushgate-test";
const EMAIL: &str = "pubsub-push@pushgate-test.iam.gserviceaccount.com";

fn anonymous() -> google_cloud_auth::credentials::Credentials {
    google_cloud_auth::credentials::anonymous::Builder::new().build()
}

/// Forwards every request to pushgate; once `signing` is on, with the token Google adds.
struct Relay {
    base: String,
    target: Arc<OnceLock<String>>,
    signing: Arc<AtomicBool>,
}

impl Relay {
    async fn start(signer: Arc<TestOidcSigner>) -> Relay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let target: Arc<OnceLock<String>> = Arc::default();
        let signing: Arc<AtomicBool> = Arc::default();
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let client = reqwest::Client::new();
        let (relay_base, relay_target, relay_signing) = (base.clone(), target.clone(), signing.clone());
        let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
            let (client, signer, base, target, signing) =
                (client.clone(), signer.clone(), relay_base.clone(), relay_target.clone(), relay_signing.clone());
            async move {
                let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
                let mut request = client.post(format!("{}{path}", target.get().unwrap())).body(body);
                if let Some(ct) = headers.get("content-type") {
                    request = request.header("content-type", ct);
                }
                if signing.load(Ordering::SeqCst) {
                    // The audience Google uses by default: the push endpoint's URL.
                    let token = signer.push_token(&format!("{base}{}", uri.path()), EMAIL, chrono::Utc::now());
                    request = request.bearer_auth(token);
                }
                match request.send().await {
                    Ok(answer) => StatusCode::from_u16(answer.status().as_u16()).unwrap(),
                    Err(_) => StatusCode::BAD_GATEWAY,
                }
            }
        });
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Relay { base, target, signing }
    }
}

async fn emulator_pushes_are_refused_until_signed_then_stored_once(backend: Backend) {
    let Some(emulator) = pushgate::testing::pubsub_emulator_url("emulator_pushes_are_refused_until_signed_then_stored_once") else {
        return;
    };
    let signer = Arc::new(TestOidcSigner::new());
    let relay = Relay::start(signer.clone()).await;
    let Some(server) = TestServer::builder(backend, "pubsub_emulator")
        .google_signer(&signer)
        .env("PUSHGATE_PUBSUB_ENDPOINT", &emulator)
        .env("PUSHGATE_PUBLIC_URL", &relay.base)
        .with_options(|o| o.subscription_check_interval = Some(Duration::from_millis(500)))
        .start()
        .await
    else {
        return;
    };
    relay.target.set(server.base.clone()).unwrap();

    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let topic = format!("projects/{PROJECT}/topics/findings-{suffix}");
    let subscription = format!("projects/{PROJECT}/subscriptions/pushgate-{suffix}");
    let c = server
        .create(json!({
            "tenant_id": "acme", "name": "SCC findings", "source": "gcp_pubsub", "heartbeat_interval_seconds": 60,
            "config": {"service_account_email": EMAIL, "subscriptions": [subscription], "canary": {"topic": topic, "interval_seconds": 1}},
        }))
        .await;
    let id = c["id"].as_str().unwrap().to_owned();
    let push_url = c["push_url"].as_str().unwrap().to_owned();
    assert!(push_url.starts_with(&relay.base), "{push_url}");

    let topics = TopicAdmin::builder().with_endpoint(&emulator).with_credentials(anonymous()).build().await.unwrap();
    topics.create_topic().set_name(&topic).send().await.unwrap();
    let subscriptions = SubscriptionAdmin::builder().with_endpoint(&emulator).with_credentials(anonymous()).build().await.unwrap();
    subscriptions
        .create_subscription()
        .set_name(&subscription)
        .set_topic(&topic)
        .set_push_config(PushConfig::new().set_push_endpoint(&push_url))
        .send()
        .await
        .unwrap();

    // 1. No token: refused and recorded, and the emulator keeps retrying.
    let publisher = Publisher::builder(&topic).with_endpoint(&emulator).with_credentials(anonymous()).build().await.unwrap();
    let scc = include_str!("fixtures/gcp-pubsub/scc/sra_bad_ip_scc.json");
    publisher.publish(Message::new().set_data(scc.as_bytes().to_vec())).await.unwrap();
    let refused = server
        .wait_for(&id, "refused pushes", 300, Duration::from_millis(100), |c| c["counters"]["rejections"].as_i64().unwrap_or(0) >= 3)
        .await;
    assert_eq!(refused["counters"]["events"], 0);
    assert!(refused["last_heartbeat_at"].is_null(), "no unauthenticated heartbeat counts");
    let rejections = server.rejections(&id).await;
    assert!(rejections.iter().all(|r| r["reason"] == "gcp_token_missing"), "{rejections:?}");

    // 2. Signed by the relay as Google would: everything is stored exactly once.
    relay.signing.store(true, Ordering::SeqCst);
    for n in 0..4 {
        let data = json!({"alert": n, "severity": "HIGH"}).to_string();
        publisher.publish(Message::new().set_data(data.into_bytes()).set_attributes([("n", n.to_string())])).await.unwrap();
    }
    let c = server
        .wait_for(&id, "five events and a heartbeat", 300, Duration::from_millis(100), |c| {
            c["counters"]["events"].as_i64() == Some(5) && c["last_heartbeat_at"].is_string()
        })
        .await;
    assert_eq!(c["status"], "connected", "{c}");
    // The canary started before the test created the topic: a failure first, then successes.
    let time = |v: &Value| v.as_str().map(|t| chrono::DateTime::parse_from_rfc3339(t).unwrap());
    let (published, failed) = (time(&c["canary"]["last_published_at"]), time(&c["canary"]["last_error_at"]));
    assert!(published.is_some() && failed.is_none_or(|f| Some(f) < published), "{c}");
    // Two seconds of redeliveries and canary heartbeats (one a second), none of which may
    // become an event: nothing marks the end of what did not happen.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let events = server.events(&id).await;
    assert_eq!(events.len(), 5, "each message once, the canary heartbeats not as events");
    let mut keys: Vec<&str> = events.iter().map(|e| e["dedupe_key"].as_str().unwrap()).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 5);
    let finding = events.iter().find(|e| e["payload"].get("finding").is_some()).expect("the SCC finding");
    assert_eq!(finding["kind"], "alert");
    assert_eq!(finding["stream"], "cloud_gcp_security_finding");
    assert!(finding["occurred_at"].is_string());

    // 3. The subscription is deleted: the check notices.
    subscriptions.delete_subscription().set_subscription(&subscription).send().await.unwrap();
    let c = server
        .wait_for(&id, "the missing subscription", 300, Duration::from_millis(100), |c| c["status_message"] == "Subscription is missing")
        .await;
    assert_eq!(c["status"], "error");
    server.stop().await;
}
