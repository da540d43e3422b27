//! The `http` destination against a receiver that answers as real collectors do: 429 with
//! `Retry-After`, 503, a dropped connection, 401, a 400 for one poisoned record, and a
//! Splunk HEC naming the bad event. On SQLite and PostgreSQL.

mod common;

use std::time::Duration;

use common::receiver::{Answer, Receiver};
use common::{event_ids as ids, hmac_webhook, Backend, TestServer};
use serde_json::{json, Value};

on_both_backends_with!(
    transient_answers_are_retried_under_the_same_batch_id,
    refused_credentials_make_the_destination_failing_and_alert,
    a_poisoned_record_goes_to_dead_letters_and_replay_retries_it,
    splunk_hec_answers_name_the_refused_event,
);

const WAIT: Duration = Duration::from_secs(30);

async fn start(backend: Backend, test: &str, extra: &[(&str, &str)]) -> Option<TestServer> {
    TestServer::builder(backend, test).envs(extra.iter().copied()).fast_forwarding().start().await
}

/// A webhook connection and `bodies` pushed to it, each acknowledged.
async fn push_all(server: &TestServer, bodies: &[Value]) -> String {
    let id = server.create(hmac_webhook("acme", "s3cret")).await["id"].as_str().unwrap().to_owned();
    for body in bodies {
        assert_eq!(server.push_signed(&id, "s3cret", body.to_string().as_bytes()).await, 200);
    }
    id
}

/// The first `n` alerts about destination `id` (connection transitions share the webhook).
async fn destination_alerts(receiver: &Receiver, id: &str, n: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let posted: Vec<Value> = receiver.records().into_iter().filter(|a| a["destination_id"] == id).collect();
        if posted.len() >= n {
            return posted;
        }
        assert!(tokio::time::Instant::now() < deadline, "{} alerts about {id}, not {n}", posted.len());
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn alerts(n: usize) -> Vec<Value> {
    (0..n).map(|i| json!({"alert": format!("alert {i}"), "n": i})).collect()
}

async fn transient_answers_are_retried_under_the_same_batch_id(backend: Backend) {
    let Some(server) = start(backend, "transient_answers_are_retried_under_the_same_batch_id", &[]).await else { return };
    push_all(&server, &alerts(3)).await;
    let feed = server.wait_for_feed(3, WAIT).await;
    let receiver = Receiver::start().await;
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = seen.clone();
    receiver.answer(move |_| match count.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
        0 => Answer::Status { status: 429, retry_after: Some(1), body: "{\"error\":\"slow down\"}".into(), taken: 0 },
        1 => Answer::status(503),
        2 => Answer::Drop,
        _ => Answer::Ok,
    });
    let d = server.create_destination(json!({"name": "collector", "kind": "http", "config": {"url": receiver.url}})).await;
    let records = receiver.wait_for_records(3, WAIT).await;
    assert_eq!(ids(&records), ids(&feed), "everything arrived, in commit order");
    let requests = receiver.requests();
    assert_eq!(requests.iter().map(|r| r.status).collect::<Vec<_>>(), [429, 503, 0, 200]);
    let batch = requests[0].header("webhook-id").unwrap();
    assert!(
        requests.iter().all(|r| r.header("webhook-id") == Some(batch) && r.header("idempotency-key") == Some(batch)),
        "every retry carries the batch id"
    );
    assert!(requests[1].at - requests[0].at >= Duration::from_secs(1), "Retry-After: 1 was honoured");
    let d = server.wait_for_destination(d["id"].as_str().unwrap(), "delivered", WAIT, |d| d["counters"]["delivered"] == 3).await;
    assert_eq!((d["status"].as_str(), d["counters"]["retries"].as_i64(), d["lag_events"].as_i64()), (Some("ok"), Some(3), Some(0)));
    // The last failure stays visible after the recovery.
    assert!(d["last_error"]["message"].is_string() && d["last_error"]["at"].is_string(), "{d}");
    server.stop().await;
}

async fn refused_credentials_make_the_destination_failing_and_alert(backend: Backend) {
    let alerts_receiver = Receiver::start().await;
    let env = [("PUSHGATE_ALERT_WEBHOOK_URL", alerts_receiver.url.as_str()), ("PUSHGATE_ALERT_WEBHOOK_SECRET", "alert-secret")];
    let Some(server) = start(backend, "refused_credentials_make_the_destination_failing_and_alert", &env).await else { return };
    push_all(&server, &alerts(2)).await;
    let receiver = Receiver::start().await;
    receiver.answer(|r| {
        if r.header("authorization") == Some("Bearer right-token") {
            Answer::Ok
        } else {
            Answer::Status { status: 401, retry_after: None, body: "{\"error\":\"bad token\"}".into(), taken: 0 }
        }
    });
    let d = server
        .create_destination(json!({"name": "collector", "kind": "http",
            "config": {"url": receiver.url, "auth": {"type": "bearer", "token": "wrong-token"}}}))
        .await;
    let id = d["id"].as_str().unwrap().to_owned();
    let failing = server.wait_for_destination(&id, "failing", WAIT, |d| d["status"] == "failing").await;
    let message = failing["last_error"]["message"].as_str().unwrap();
    assert!(message.contains("HTTP 401"), "{message}");
    assert!(!failing.to_string().contains("wrong-token"), "the token is never shown: {failing}");
    assert_eq!(failing["config"]["auth"]["token"], "***");
    // The operator fixes the token: delivery resumes without waiting for the next retry.
    let patched = server
        .admin(reqwest::Method::PATCH, &format!("/v1/destinations/{id}"))
        .json(&json!({"config": {"url": receiver.url, "auth": {"type": "bearer", "token": "right-token"}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);
    receiver.wait_for_records(2, WAIT).await;
    let recovered = server.wait_for_destination(&id, "recovered", WAIT, |d| d["status"] == "ok" && d["counters"]["delivered"] == 2).await;
    assert!(recovered["counters"]["retries"].as_i64().unwrap() >= 1);
    // Turning failing and recovering went to the alert webhook, with the destination's id and name.
    let posted = destination_alerts(&alerts_receiver, &id, 2).await;
    let transitions: Vec<_> = posted.iter().map(|a| (a["old_status"].as_str().unwrap(), a["new_status"].as_str().unwrap())).collect();
    assert_eq!(transitions, [("ok", "failing"), ("failing", "ok")]);
    for a in &posted {
        assert_eq!((a["destination_id"].as_str(), a["name"].as_str()), (Some(id.as_str()), Some("collector")));
        assert!(a.get("connection_id").is_none() && a.get("tenant_id").is_none());
        assert!(!a.to_string().contains("wrong-token"));
    }
    assert!(posted[0]["message"].as_str().unwrap().contains("HTTP 401"));
    let request = alerts_receiver.requests().into_iter().find(|r| r.lines[0]["destination_id"] == id.as_str()).unwrap();
    let expected = pushgate::alerts::signature("alert-secret", &request.body);
    assert_eq!(request.header("x-pushgate-signature"), Some(expected.as_str()));
    server.stop().await;
}

async fn a_poisoned_record_goes_to_dead_letters_and_replay_retries_it(backend: Backend) {
    let Some(server) = start(backend, "a_poisoned_record_goes_to_dead_letters_and_replay_retries_it", &[]).await else { return };
    let mut bodies = alerts(9);
    bodies.insert(4, json!({"alert": "poison pill", "n": 99}));
    push_all(&server, &bodies).await;
    let feed = server.wait_for_feed(10, WAIT).await;
    let poisoned = feed.iter().find(|e| e["payload"]["alert"] == "poison pill").unwrap()["id"].as_str().unwrap().to_owned();
    let receiver = Receiver::start().await;
    receiver.refuse_lines_containing("poison");
    let d = server.create_destination(json!({"name": "collector", "kind": "http", "config": {"url": receiver.url}})).await;
    let id = d["id"].as_str().unwrap().to_owned();
    let d = server
        .wait_for_destination(&id, "dead letter", WAIT, |d| d["counters"]["dead_letters"] == 1 && d["counters"]["delivered"] == 9)
        .await;
    assert_eq!((d["status"].as_str(), d["lag_events"].as_i64()), (Some("ok"), Some(0)), "the rest is delivered: {d}");
    let mut expected = ids(&feed);
    expected.retain(|e| *e != poisoned);
    assert_eq!(ids(&receiver.records()), expected, "the other nine, in commit order, once each");
    let letters = server.get_json(&format!("/v1/destinations/{id}/dead-letters")).await["dead_letters"].as_array().unwrap().clone();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0]["event_id"], poisoned.as_str());
    assert!(letters[0]["reason"].as_str().unwrap().contains("HTTP 400"), "the store's answer: {}", letters[0]);
    assert!(letters[0]["attempts"].as_i64().unwrap() >= 2, "sent whole, then in parts: {}", letters[0]);
    assert!(letters[0]["at"].is_string());

    // The store is fixed; a replay tries the dead letter once more.
    receiver.answer(|_| Answer::Ok);
    let replay = server.admin(reqwest::Method::POST, &format!("/v1/destinations/{id}/dead-letters/replay")).send().await.unwrap();
    assert_eq!(replay.status(), 202);
    assert_eq!(replay.json::<Value>().await.unwrap(), json!({"replay_requested": 1}));
    let records = receiver.wait_for_records(10, WAIT).await;
    assert_eq!(records[9], feed.iter().find(|e| e["id"] == poisoned.as_str()).unwrap().clone(), "the record as stored");
    let d = server.wait_for_destination(&id, "replayed", WAIT, |d| d["counters"]["delivered"] == 10).await;
    assert_eq!(d["counters"]["dead_letters"], 1, "counted once, ever");
    let letters = server.get_json(&format!("/v1/destinations/{id}/dead-letters")).await;
    assert_eq!(letters, json!({"dead_letters": []}));
    server.stop().await;
}

async fn splunk_hec_answers_name_the_refused_event(backend: Backend) {
    let Some(server) = start(backend, "splunk_hec_answers_name_the_refused_event", &[]).await else { return };
    let mut bodies = alerts(5);
    bodies.insert(2, json!({"alert": "poison for splunk"}));
    push_all(&server, &bodies).await;
    let feed = server.wait_for_feed(6, WAIT).await;
    let receiver = Receiver::start().await;
    receiver.hec_refusing("poison");
    let d = server
        .create_destination(json!({"name": "Splunk", "kind": "http",
            "config": {"url": receiver.url, "format": "splunk_hec", "auth": {"type": "splunk", "token": "hec-token-1"}}}))
        .await;
    let id = d["id"].as_str().unwrap().to_owned();
    let d = server
        .wait_for_destination(&id, "delivered", WAIT, |d| d["counters"]["delivered"] == 5 && d["counters"]["dead_letters"] == 1)
        .await;
    assert_eq!(d["status"], "ok");
    let taken = receiver.records();
    assert_eq!(taken.len(), 5, "the two events Splunk indexed before the bad one are not sent again: {taken:#?}");
    let events: Vec<Value> = taken.iter().map(|h| h["event"].clone()).collect();
    let expected: Vec<Value> = feed.iter().filter(|e| e["payload"]["alert"] != "poison for splunk").cloned().collect();
    assert_eq!(events, expected);
    for (hec, event) in taken.iter().zip(&expected) {
        assert_eq!(hec["source"], "pushgate:webhook");
        assert_eq!(hec["sourcetype"], "webhook_event");
        assert_eq!(
            hec["fields"],
            json!({"event_id": event["id"], "tenant_id": "acme", "connection_id": event["connection_id"], "kind": "alert"})
        );
        let received = chrono::DateTime::parse_from_rfc3339(event["received_at"].as_str().unwrap()).unwrap();
        assert!((hec["time"].as_f64().unwrap() - received.timestamp_millis() as f64 / 1000.0).abs() < 0.001);
    }
    let requests = receiver.requests();
    assert!(requests.iter().all(|r| r.header("authorization") == Some("Splunk hec-token-1")));
    let letters = server.get_json(&format!("/v1/destinations/{id}/dead-letters")).await["dead_letters"].as_array().unwrap().clone();
    assert!(letters[0]["reason"].as_str().unwrap().contains("Invalid data format"), "{letters:?}");
    server.stop().await;
}
