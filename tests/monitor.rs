//! The health monitor end to end, on SQLite and PostgreSQL: connections with a one-second
//! heartbeat go red and green as heartbeats stop and resume, observed over HTTP with the
//! monitor running every 200 ms; each transition is in the history once (also with two
//! servers on one PostgreSQL), and the alert webhook receives each one, signed.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::HeaderMap;
use common::{hmac_hex, Backend, TestServer};
use serde_json::{json, Value};

on_both_backends_with!(
    feeds_go_red_and_green_and_each_transition_is_recorded_once,
    transitions_are_posted_signed_to_the_alert_webhook,
    heartbeats_that_prove_nothing_keep_no_feed_green,
);

#[tokio::test]
async fn two_servers_on_one_postgresql_record_each_transition_once() {
    let Some(url) = pushgate::testing::fresh_postgres_url("two_servers_on_one_postgresql").await else { return };
    let server = |test| TestServer::builder(Backend::Postgres, test).database_url(&url).env("PUSHGATE_MONITOR_INTERVAL_MS", "100").start();
    let Some(a) = server("monitor_a").await else { return };
    let Some(b) = server("monitor_b").await else { return };
    let id = webhook(&a, 1).await;
    recorded(&b, &id, "requires_action", 1).await;
    heartbeat(&b, &id).await;
    recorded(&a, &id, "connected", 1).await;
    recorded(&a, &id, "error", 1).await;
    heartbeat(&a, &id).await;
    recorded(&b, &id, "connected", 2).await;
    // Both go on watching, and record nothing twice.
    tokio::join!(a.monitor_passes(4), b.monitor_passes(4));
    // The SQL view dashboards read shows what the monitor recorded.
    use sqlx::Connection;
    let mut db = sqlx::PgConnection::connect(&url).await.unwrap();
    let (status, checked): (Option<String>, Option<chrono::DateTime<chrono::Utc>>) =
        sqlx::query_as("SELECT status, status_last_checked_at FROM connection_health WHERE id = $1")
            .bind(&id)
            .fetch_one(&mut db)
            .await
            .unwrap();
    assert_eq!(status.as_deref(), Some("connected"));
    assert!(checked.is_some());
    let history = history(&b, &id).await;
    assert_eq!(
        history,
        [
            (None, "requires_action".to_owned()),
            (Some("requires_action".to_owned()), "connected".to_owned()),
            (Some("connected".to_owned()), "error".to_owned()),
            (Some("error".to_owned()), "connected".to_owned()),
        ],
        "each transition once, though both servers watch it"
    );
    a.stop().await;
    b.stop().await;
}

const SECRET: &str = "monitor-test-secret";

async fn webhook(server: &TestServer, interval: i64) -> String {
    let c = server
        .create(json!({"tenant_id": "acme", "name": "1 s feed", "source": "webhook", "heartbeat_interval_seconds": interval,
            "grace_seconds": 0, "config": {"auth": {"type": "hmac_sha256", "header": "X-Signature", "secret": SECRET}}}))
        .await;
    c["id"].as_str().unwrap().to_owned()
}

async fn push(server: &TestServer, id: &str, body: &[u8]) -> Value {
    let response = server
        .client
        .post(server.url(&format!("/push/webhook/{id}")))
        .header("x-signature", hmac_hex(SECRET, body))
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// A fresh heartbeat (a new id, signed now).
async fn heartbeat(server: &TestServer, id: &str) {
    let answer = push(server, id, &common::heartbeat_body()).await;
    assert_eq!(answer, json!({"status": "heartbeat", "duplicate": false}));
}

/// Waits until the monitor has recorded a transition to `status` (the read-time status
/// may change before a monitor pass sees it), looking again after each pass of
/// `server`'s monitor; panics after 10 s.
async fn recorded(server: &TestServer, id: &str, status: &str, count: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::time::Instant::now() < deadline {
        let history = history(server, id).await;
        if history.iter().filter(|(_, new)| new == status).count() >= count {
            return;
        }
        server.monitor_passes(1).await;
    }
    panic!("the monitor never recorded {status} (×{count}): {:?}", history(server, id).await);
}

/// The history as (old, new) pairs.
async fn history(server: &TestServer, id: &str) -> Vec<(Option<String>, String)> {
    server.get_json(&format!("/v1/connections/{id}/history")).await["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["old_status"].as_str().map(str::to_owned), h["new_status"].as_str().unwrap().to_owned()))
        .collect()
}

async fn feeds_go_red_and_green_and_each_transition_is_recorded_once(backend: Backend) {
    let Some(server) = TestServer::builder(backend, "monitor_red_green").env("PUSHGATE_MONITOR_INTERVAL_MS", "200").start().await else {
        return;
    };
    let id = webhook(&server, 1).await;
    recorded(&server, &id, "requires_action", 1).await;
    heartbeat(&server, &id).await;
    recorded(&server, &id, "connected", 1).await;
    // Two heartbeats (2 × 1 s + 0 s grace) are lost.
    recorded(&server, &id, "error", 1).await;
    let c = server.connection(&id).await;
    assert_eq!((c["status"].as_str(), c["status_message"].as_str()), (Some("error"), Some("Last heartbeat is too old")));
    heartbeat(&server, &id).await;
    recorded(&server, &id, "connected", 2).await;

    // Confirmed by data, but no heartbeat ever came.
    let quiet = webhook(&server, 1).await;
    push(&server, &quiet, br#"{"alert":"x"}"#).await;
    let c = server
        .wait_for(&quiet, "a missing heartbeat", 100, Duration::from_millis(50), |c| {
            c["status_message"] == "Subscription heartbeat is missing"
        })
        .await;
    assert_eq!(c["status"], "error");

    // Later passes record nothing more for the first feed. Two, not more: its heartbeat
    // turns too old again 2 s after it came.
    server.monitor_passes(2).await;
    let history = server.get_json(&format!("/v1/connections/{id}/history")).await["history"].clone();
    let pairs: Vec<(Value, Value, Value)> =
        history.as_array().unwrap().iter().map(|h| (h["old_status"].clone(), h["new_status"].clone(), h["message"].clone())).collect();
    assert_eq!(
        pairs,
        [
            (Value::Null, json!("requires_action"), json!("Awaiting subscription")),
            (json!("requires_action"), json!("connected"), Value::Null),
            (json!("connected"), json!("error"), json!("Last heartbeat is too old")),
            (json!("error"), json!("connected"), Value::Null),
        ]
    );
    assert!(history[0]["at"].is_string());
    server.stop().await;
}

async fn transitions_are_posted_signed_to_the_alert_webhook(backend: Backend) {
    let received: Arc<Mutex<Vec<(String, Bytes)>>> = Arc::default();
    let seen = received.clone();
    let app = axum::Router::new().route(
        "/alerts/{token}",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let seen = seen.clone();
            async move {
                let signature = headers.get("x-pushgate-signature").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
                seen.lock().unwrap().push((signature, body));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/alerts/path-token", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let env = [
        ("PUSHGATE_MONITOR_INTERVAL_MS", "200"),
        ("PUSHGATE_ALERT_WEBHOOK_URL", url.as_str()),
        ("PUSHGATE_ALERT_WEBHOOK_SECRET", "alert-secret"),
    ];
    let Some(server) = TestServer::builder(backend, "monitor_alerts").envs(env).start().await else { return };
    let id = webhook(&server, 1).await;
    heartbeat(&server, &id).await;
    recorded(&server, &id, "error", 1).await;

    // The webhook is posted to in the background, after the transition is recorded.
    let received = common::eventually("the alert of the error", Duration::from_secs(10), async || {
        let received = received.lock().unwrap().clone();
        let alerted = received.iter().any(|(_, body)| {
            let alert: Value = serde_json::from_slice(body).unwrap_or_default();
            alert["connection_id"] == id.as_str() && alert["new_status"] == "error"
        });
        alerted.then_some(received)
    })
    .await;
    let alerts: Vec<Value> = received
        .iter()
        .map(|(signature, body)| {
            let expected = format!("sha256={}", hex::encode(pushgate::verify::hmac_sha256(b"alert-secret", &[body])));
            assert_eq!(signature, &expected, "signed over the exact body");
            serde_json::from_slice(body).unwrap()
        })
        .filter(|a: &Value| a["connection_id"] == id.as_str())
        .collect();
    let news: Vec<&str> = alerts.iter().map(|a| a["new_status"].as_str().unwrap()).collect();
    assert!(news.ends_with(&["connected", "error"]), "{alerts:?}");
    let last = alerts.last().unwrap();
    assert_eq!((last["old_status"].as_str(), last["message"].as_str()), (Some("connected"), Some("Last heartbeat is too old")));
    assert_eq!((last["tenant_id"].as_str(), last["name"].as_str()), (Some("acme"), Some("1 s feed")));
    assert!(last["at"].is_string());
    server.stop().await;
}

/// With `hmac_sha256` only the body is signed: a heartbeat without `id` and `time` is
/// acknowledged but proves nothing, and neither does a captured heartbeat replayed, so
/// a feed that sends only those turns red on schedule.
async fn heartbeats_that_prove_nothing_keep_no_feed_green(backend: Backend) {
    let Some(server) = TestServer::builder(backend, "monitor_unprovable").env("PUSHGATE_MONITOR_INTERVAL_MS", "200").start().await else {
        return;
    };
    let unprovable = br#"{"type":"heartbeat"}"#;
    // Never a heartbeat that counts: confirmed by the push, then "missing".
    let never = webhook(&server, 1).await;
    let answer = push(&server, &never, unprovable).await;
    assert_eq!(answer, json!({"status": "kept_as_rejection", "reason": "heartbeat_not_fresh"}));
    let rejections = server.rejections(&never).await;
    assert_eq!(rejections.len(), 1);
    assert_eq!(rejections[0]["reason"], "heartbeat_not_fresh");
    assert!(rejections[0]["detail"].as_str().unwrap().contains("no id"), "{}", rejections[0]);
    let c = server.connection(&never).await;
    assert_eq!((c["counters"]["heartbeats"].as_i64(), c["last_heartbeat_at"].clone()), (Some(0), Value::Null));
    // Still sending them each pass does not help.
    let mut passes = 0;
    while history(&server, &never).await.iter().all(|(_, new)| new != "error") {
        push(&server, &never, unprovable).await;
        server.monitor_passes(1).await;
        passes += 1;
        assert!(passes < 50, "never turned red: {:?}", history(&server, &never).await);
    }
    let c = server.connection(&never).await;
    assert_eq!((c["status"].as_str(), c["status_message"].as_str()), (Some("error"), Some("Subscription heartbeat is missing")));
    assert_eq!(c["counters"]["heartbeats"], 0);

    // One real heartbeat, then only its replay and unprovable ones: "too old" on schedule.
    let replayed = webhook(&server, 1).await;
    let captured = common::heartbeat_body();
    assert_eq!(push(&server, &replayed, &captured).await, json!({"status": "heartbeat", "duplicate": false}));
    recorded(&server, &replayed, "connected", 1).await;
    let first = server.connection(&replayed).await["last_heartbeat_at"].clone();
    let mut passes = 0;
    while history(&server, &replayed).await.iter().all(|(_, new)| new != "error") {
        let answer = push(&server, &replayed, &captured).await;
        assert!(answer["duplicate"] == true || answer["reason"] == "heartbeat_not_fresh", "a replay is a duplicate, or too old: {answer}");
        push(&server, &replayed, unprovable).await;
        server.monitor_passes(1).await;
        passes += 1;
        assert!(passes < 50, "never turned red: {:?}", history(&server, &replayed).await);
    }
    let c = server.connection(&replayed).await;
    assert_eq!((c["status"].as_str(), c["status_message"].as_str()), (Some("error"), Some("Last heartbeat is too old")));
    assert_eq!((c["counters"]["heartbeats"].as_i64(), c["last_heartbeat_at"].clone()), (Some(1), first), "the replays moved nothing");
    server.stop().await;
}
