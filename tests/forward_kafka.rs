//! The `kafka` destination against a real Kafka-protocol broker (tansu): records land one
//! per event with the event id header, the tenant as key and the event object as value;
//! a broker that becomes unreachable mid-stream makes the destination failing and loses
//! nothing (each record produced once); a topic nobody created is created by the broker;
//! a record too large for the producer goes to the dead letters while the rest is
//! delivered; and pushgate killed during a batch resends it under the same event ids.
//! On SQLite and PostgreSQL.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::kafka::{self, Broker};
use common::process::Process;
use common::{event_ids as ids, hmac_hex, hmac_webhook, push_alert as push, Backend, TestServer, ADMIN_TOKEN};
use serde_json::{json, Value};

on_both_backends_with!(
    records_land_one_per_event_keyed_by_tenant,
    an_unreachable_broker_is_failing_and_loses_nothing,
    a_topic_nobody_created_is_created_by_the_broker,
    a_record_too_large_goes_to_dead_letters_and_the_rest_is_delivered,
);

const WAIT: Duration = Duration::from_secs(60);

fn topic_prefix() -> String {
    format!("t{}", uuid::Uuid::new_v4().simple())
}

async fn records_land_one_per_event_keyed_by_tenant(backend: Backend) {
    let test = "records_land_one_per_event_keyed_by_tenant";
    let Some(brokers) = kafka::brokers(test) else { return };
    let Some(server) = TestServer::builder(backend, test).fast_forwarding().start().await else { return };
    let prefix = topic_prefix();
    let topic = format!("{prefix}.webhook_event");
    kafka::create_topic(&brokers, &topic, 3).await;
    let d = server
        .create_destination(
            json!({"name": "SOC kafka", "kind": "kafka", "config": {"brokers": [brokers], "topic": format!("{prefix}.{{stream}}")}}),
        )
        .await;
    let id = d["id"].as_str().unwrap().to_owned();
    let acme = server.create(hmac_webhook("acme", "s3cret")).await["id"].as_str().unwrap().to_owned();
    let globex = server.create(hmac_webhook("globex", "s3cret")).await["id"].as_str().unwrap().to_owned();
    for n in 0..20 {
        push(&server, if n % 2 == 0 { &acme } else { &globex }, n).await;
    }
    let feed = server.wait_for_feed(20, WAIT).await;
    let records = kafka::wait_for_records(&brokers, &topic, 20, WAIT).await;
    assert_eq!(records.len(), 20, "one record per event");
    let mut by_id: Vec<(String, Value)> = records.iter().map(|r| (r.event_id.clone().unwrap(), r.value.clone())).collect();
    by_id.sort_by(|a, b| a.0.cmp(&b.0));
    let mut expected: Vec<(String, Value)> = feed.iter().map(|e| (e["id"].as_str().unwrap().to_owned(), e.clone())).collect();
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(by_id, expected, "header pushgate-event-id = the event id, value = the event object");
    for r in &records {
        assert_eq!(r.key.as_deref(), r.value["tenant_id"].as_str(), "the key is the tenant");
    }
    // One tenant's events sit in one partition, in commit order.
    for tenant in ["acme", "globex"] {
        let mine: Vec<&kafka::KafkaRecord> = records.iter().filter(|r| r.key.as_deref() == Some(tenant)).collect();
        assert!(mine.iter().all(|r| r.partition == mine[0].partition));
        let in_feed: Vec<String> = feed.iter().filter(|e| e["tenant_id"] == tenant).map(|e| e["id"].as_str().unwrap().to_owned()).collect();
        assert_eq!(mine.iter().map(|r| r.event_id.clone().unwrap()).collect::<Vec<_>>(), in_feed);
    }
    let ok = server.wait_for_destination(&id, "delivered", WAIT, |d| d["status"] == "ok" && d["counters"]["delivered"] == 20).await;
    assert_eq!(ok["last_error"], Value::Null, "{ok}");
    server.stop().await;
}

async fn an_unreachable_broker_is_failing_and_loses_nothing(backend: Backend) {
    let test = "an_unreachable_broker_is_failing_and_loses_nothing";
    let Some(mut broker) = Broker::start(test).await else { return };
    let Some(server) = TestServer::builder(backend, test).fast_forwarding().start().await else { return };
    let topic = "soc.webhook_event";
    kafka::create_topic(&broker.brokers, topic, 1).await;
    let d = server
        .create_destination(json!({"name": "SOC kafka", "kind": "kafka", "config": {"brokers": [broker.brokers], "topic": "soc.{stream}"}}))
        .await;
    let id = d["id"].as_str().unwrap().to_owned();
    let connection = server.create(hmac_webhook("acme", "s3cret")).await["id"].as_str().unwrap().to_owned();
    for n in 0..30 {
        push(&server, &connection, n).await;
    }
    kafka::wait_for_records(&broker.brokers, topic, 30, WAIT).await;

    // The broker becomes unreachable mid-stream; pushes go on being acknowledged.
    broker.proxy.cut();
    let cut = Instant::now();
    let mut n = 30;
    let failing = loop {
        push(&server, &connection, n).await;
        n += 1;
        let d = server.destination(&id).await;
        if d["status"] == "failing" {
            break d;
        }
        assert!(cut.elapsed() < Duration::from_secs(30), "not failing 30 s into the outage: {d}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    println!("failing {:?} after the cut: {}", cut.elapsed(), failing["last_error"]);
    assert!(failing["last_error"]["message"].is_string(), "{failing}");
    for _ in 0..20 {
        push(&server, &connection, n).await;
        n += 1;
    }
    broker.proxy.restore().await;

    let feed = server.wait_for_feed(n, WAIT).await;
    server.wait_for_destination(&id, "recovered", WAIT, |d| d["status"] == "ok" && d["lag_events"] == 0).await;
    let records = kafka::wait_for_records(&broker.brokers, topic, n, WAIT).await;
    let got: HashSet<String> = records.iter().map(|r| r.event_id.clone().unwrap()).collect();
    assert_eq!(got, ids(&feed).into_iter().collect::<HashSet<_>>(), "every event arrived");
    assert_eq!(records.len(), n, "records in flight during the outage were awaited, not produced again");
    let order: Vec<String> = records.iter().map(|r| r.event_id.clone().unwrap()).collect();
    assert_eq!(order, ids(&feed), "one partition, in commit order");
    server.stop().await;
}

/// tansu creates a topic on first use (as Kafka does with `auto.create.topics.enable`), so
/// a topic nobody created receives the events; a broker that refuses it instead answers
/// UnknownTopicOrPartition, which the sink's unit tests show makes the destination failing.
async fn a_topic_nobody_created_is_created_by_the_broker(backend: Backend) {
    let test = "a_topic_nobody_created_is_created_by_the_broker";
    let Some(brokers) = kafka::brokers(test) else { return };
    let Some(server) = TestServer::builder(backend, test).fast_forwarding().start().await else { return };
    let prefix = topic_prefix();
    let connection = server.create(hmac_webhook("acme", "s3cret")).await["id"].as_str().unwrap().to_owned();
    push(&server, &connection, 1).await;
    let d = server
        .create_destination(
            json!({"name": "k", "kind": "kafka", "config": {"brokers": [brokers], "topic": format!("{prefix}.{{stream}}")}}),
        )
        .await;
    let id = d["id"].as_str().unwrap().to_owned();
    server.wait_for_destination(&id, "ok", WAIT, |d| d["status"] == "ok" && d["counters"]["delivered"] == 1).await;
    let records = kafka::wait_for_records(&brokers, &format!("{prefix}.webhook_event"), 1, WAIT).await;
    assert_eq!(records.iter().map(|r| r.event_id.clone().unwrap()).collect::<Vec<_>>(), ids(&server.feed("").await));
    server.stop().await;
}

async fn a_record_too_large_goes_to_dead_letters_and_the_rest_is_delivered(backend: Backend) {
    let test = "a_record_too_large_goes_to_dead_letters_and_the_rest_is_delivered";
    let Some(brokers) = kafka::brokers(test) else { return };
    let env = [("PUSHGATE_MAX_BODY_BYTES", "2000000")];
    let Some(server) = TestServer::builder(backend, test).envs(env).fast_forwarding().start().await else { return };
    let prefix = topic_prefix();
    let topic = format!("{prefix}.webhook_event");
    kafka::create_topic(&brokers, &topic, 1).await;
    let connection = server.create(hmac_webhook("acme", "s3cret")).await["id"].as_str().unwrap().to_owned();
    push(&server, &connection, 0).await;
    // An event object over librdkafka's (and Kafka's default) 1,000,000-byte limit.
    let big = json!({"alert": "huge", "blob": "x".repeat(1_100_000)}).to_string().into_bytes();
    assert_eq!(server.push_signed(&connection, "s3cret", &big).await, 200);
    push(&server, &connection, 2).await;
    let feed = server.wait_for_feed(3, WAIT).await;
    let d = server
        .create_destination(json!({"name": "k", "kind": "kafka", "config": {"brokers": [brokers], "topic": format!("{prefix}.{{stream}}"), "compression": "none"}}))
        .await;
    let id = d["id"].as_str().unwrap().to_owned();
    let done = server
        .wait_for_destination(&id, "delivered", WAIT, |d| d["counters"]["delivered"] == 2 && d["counters"]["dead_letters"] == 1)
        .await;
    assert_eq!(done["status"], "ok", "{done}");
    let records = kafka::wait_for_records(&brokers, &topic, 2, WAIT).await;
    let delivered: Vec<String> = records.iter().map(|r| r.event_id.clone().unwrap()).collect();
    let all = ids(&feed);
    assert_eq!(delivered, [all[0].clone(), all[2].clone()]);
    let dead = server.get_json(&format!("/v1/destinations/{id}/dead-letters")).await;
    let dead = dead["dead_letters"].as_array().unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["event_id"], all[1].as_str());
    println!("dead letter: {}", dead[0]["reason"]);
    server.stop().await;
}

/// pushgate killed while a batch is in flight: after the restart the batch is produced
/// again with the same event ids; every acknowledged push arrives.
async fn killed_during_a_batch(database: String, test: &str) {
    let Some(mut broker) = Broker::start(test).await else { return };
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let client = reqwest::Client::new();
    let topic = "crash.webhook_event";
    kafka::create_topic(&broker.brokers, topic, 1).await;
    let first = Process::start(&database, &[]).await;
    let admin = |p: &Process, path: &str, body: Value| client.post(p.url(path)).bearer_auth(ADMIN_TOKEN).json(&body).send();
    let d: Value = admin(
        &first,
        "/v1/destinations",
        json!({"name": "k", "kind": "kafka", "config": {"brokers": [broker.brokers], "topic": "crash.{stream}"}}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let c: Value = admin(&first, "/v1/connections", hmac_webhook("acme", "s3cret")).await.unwrap().json().await.unwrap();
    let push_path = format!("/push/webhook/{}", c["id"].as_str().unwrap());
    let push = async |p: &Process, mark: usize| {
        let body = json!({"alert": "load", "mark": mark}).to_string().into_bytes();
        let r = client.post(p.url(&push_path)).header("x-signature", hmac_hex("s3cret", &body)).body(body).send().await.unwrap();
        assert_eq!(r.status(), 200);
    };
    for mark in 0..20 {
        push(&first, mark).await;
    }
    kafka::wait_for_records(&broker.brokers, topic, 20, WAIT).await;
    // The broker is cut off, so the next batch is in flight (produced, unacknowledged)
    // when pushgate dies.
    broker.proxy.cut();
    for mark in 20..40 {
        push(&first, mark).await;
    }
    let path = format!("/v1/destinations/{}", d["id"].as_str().unwrap());
    common::eventually("the batch in flight", WAIT, async || {
        let d: Value = client.get(first.url(&path)).bearer_auth(ADMIN_TOKEN).send().await.ok()?.json().await.ok()?;
        (d["lag_events"].as_i64()? > 0).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await; // let the worker hand the batch to librdkafka
    let mut first = first;
    first.kill().await;
    broker.proxy.restore().await;
    let second = Process::start(&database, &[]).await;
    for mark in 40..50 {
        push(&second, mark).await;
    }
    common::eventually("everything delivered", WAIT, async || {
        let d: Value = client.get(second.url(&path)).bearer_auth(ADMIN_TOKEN).send().await.ok()?.json().await.ok()?;
        (d["lag_events"] == 0 && d["status"] == "ok").then_some(())
    })
    .await;
    let records = kafka::wait_for_records(&broker.brokers, topic, 50, WAIT).await;
    let marks: HashSet<u64> = records.iter().map(|r| r.value["payload"]["mark"].as_u64().unwrap()).collect();
    assert_eq!(marks, (0..50).collect::<HashSet<_>>(), "every acknowledged push arrived");
    // A duplicate is the same event, under the same id.
    let mut seen = std::collections::HashMap::new();
    for r in &records {
        let id = r.event_id.clone().unwrap();
        assert_eq!(Some(id.as_str()), r.value["id"].as_str());
        if let Some(earlier) = seen.insert(id, r.value.clone()) {
            assert_eq!(earlier, r.value);
        }
    }
    println!("{} records for 50 events ({} resent after the kill)", records.len(), records.len() - seen.len());
}

#[tokio::test]
async fn killed_during_a_batch_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("pushgate.db").display());
    killed_during_a_batch(database, "killed_during_a_batch_sqlite").await;
}

#[tokio::test]
async fn killed_during_a_batch_postgres() {
    let test = "killed_during_a_batch_postgres";
    let Some(database) = pushgate::testing::fresh_postgres_url(test).await else { return };
    killed_during_a_batch(database, test).await;
}
