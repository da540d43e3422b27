//! The `nats` destination against a real nats-server with JetStream: an outage of 20 s in
//! the middle of a stream of pushes loses nothing, and a subject no stream holds makes
//! the destination failing until the operator creates one. On SQLite and PostgreSQL.

mod common;

use std::time::{Duration, Instant};

use common::nats::{self, NatsServer};
use common::receiver::Receiver;
use common::{event_ids as ids, hmac_webhook, push_alert as push, Backend, TestServer};
use serde_json::{json, Value};

on_both_backends_with!(nats_stopped_for_twenty_seconds_loses_nothing, a_subject_without_a_stream_is_failing_until_one_exists);

const WAIT: Duration = Duration::from_secs(60);

async fn nats_stopped_for_twenty_seconds_loses_nothing(backend: Backend) {
    let test = "nats_stopped_for_twenty_seconds_loses_nothing";
    let Some(mut nats) = NatsServer::start(test).await else { return };
    let alerts = Receiver::start().await;
    let env = [("PUSHGATE_ALERT_WEBHOOK_URL", alerts.url.as_str()), ("PUSHGATE_ALERT_WEBHOOK_SECRET", "alert-secret")];
    let Some(server) = TestServer::builder(backend, test).envs(env).fast_forwarding().start().await else { return };
    nats::create_stream(&nats.url, "SOC", &["soc.>"]).await;
    let d = server
        .create_destination(json!({"name": "SOC bus", "kind": "nats", "config": {"url": nats.url, "subject": "soc.{tenant_id}.{kind}"}}))
        .await;
    let id = d["id"].as_str().unwrap().to_owned();
    let connection = server.create(hmac_webhook("acme", "s3cret")).await["id"].as_str().unwrap().to_owned();
    for n in 0..50 {
        push(&server, &connection, n).await;
    }
    nats::wait_for_messages(&nats.url, "SOC", 50, WAIT).await;

    // NATS goes away mid-stream; pushes go on being acknowledged.
    nats.stop();
    let stopped = Instant::now();
    for n in 50..100 {
        push(&server, &connection, n).await;
    }
    let failing = server.wait_for_destination(&id, "failing", WAIT, |d| d["status"] == "failing").await;
    assert!(failing["last_error"]["message"].is_string(), "{failing}");
    assert!(failing["lag_events"].as_i64().unwrap() > 0);
    let mut n = 100;
    while stopped.elapsed() < Duration::from_secs(20) {
        push(&server, &connection, n).await;
        n += 1;
        // Pushes go on at a steady pace for the whole outage.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    nats.restart().await;

    let feed = server.wait_for_feed(n, WAIT).await;
    let messages = nats::wait_for_messages(&nats.url, "SOC", n as u64, WAIT).await;
    assert_eq!(messages.len(), n, "JetStream dropped any resent event as a duplicate");
    assert_eq!(messages.iter().map(|m| m.data.clone()).collect::<Vec<_>>(), feed, "every acknowledged push, in commit order");
    assert!(messages.iter().all(|m| m.subject == "soc.acme.alert"));
    let ok = server.wait_for_destination(&id, "recovered", WAIT, |d| d["status"] == "ok" && d["lag_events"] == 0).await;
    assert_eq!(ok["counters"]["delivered"].as_i64(), Some(n as i64), "{ok}");
    assert!(ok["counters"]["retries"].as_i64().unwrap() >= 1);
    // The connection's own transitions go to the same webhook; the destination's are these.
    let posted = common::eventually("two alerts about the destination", WAIT, async || {
        let posted: Vec<Value> = alerts.records().into_iter().filter(|a| a["destination_id"] == id.as_str()).collect();
        (posted.len() >= 2).then_some(posted)
    })
    .await;
    let transitions: Vec<_> = posted.iter().map(|a| a["new_status"].as_str().unwrap()).collect();
    assert_eq!(transitions, ["failing", "ok"]);
    server.stop().await;
}

async fn a_subject_without_a_stream_is_failing_until_one_exists(backend: Backend) {
    let test = "a_subject_without_a_stream_is_failing_until_one_exists";
    let Some(url) = nats::url(test) else { return };
    let Some(server) = TestServer::builder(backend, test).fast_forwarding().start().await else { return };
    let prefix = format!("t{}", uuid::Uuid::new_v4().simple());
    let connection = server.create(hmac_webhook("acme", "s3cret")).await["id"].as_str().unwrap().to_owned();
    push(&server, &connection, 1).await;
    let d = server
        .create_destination(json!({"name": "bus", "kind": "nats", "config": {"url": url, "subject": format!("{prefix}.{{stream}}")}}))
        .await;
    let id = d["id"].as_str().unwrap().to_owned();
    let failing = server.wait_for_destination(&id, "failing", WAIT, |d| d["status"] == "failing").await;
    let message = failing["last_error"]["message"].as_str().unwrap();
    assert!(message.contains("no JetStream stream holds subject") && message.contains(&prefix), "{message}");
    // The operator creates the stream, and asks for a retry at once.
    nats::create_stream(&url, &prefix, &[&format!("{prefix}.>")]).await;
    let resumed = server.admin(reqwest::Method::POST, &format!("/v1/destinations/{id}/resume")).send().await.unwrap();
    assert_eq!(resumed.status(), 200);
    let messages = nats::wait_for_messages(&url, &prefix, 1, WAIT).await;
    assert_eq!(messages[0].subject, format!("{prefix}.webhook_event"));
    assert_eq!(ids(&[messages[0].data.clone()]), ids(&server.feed("").await));
    server.wait_for_destination(&id, "ok", WAIT, |d| d["status"] == "ok").await;
    server.stop().await;
}
