//! Crashes and replicas, with pushgate as a real process: killed with SIGKILL while it
//! forwards under load, then restarted, every acknowledged push reaches the destination,
//! and the only duplicates are the batch that was in flight, resent under the same id;
//! two replicas on one PostgreSQL deliver each destination from one at a time, and when
//! the holder is killed the other takes over within 30 s, losing nothing.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::process::Process;
use common::receiver::Receiver;
use common::{hmac_hex, nats, ADMIN_TOKEN};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(60);
const BATCH: usize = 50;

async fn admin(client: &reqwest::Client, p: &Process, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
    let mut request = client.request(method, p.url(path)).bearer_auth(ADMIN_TOKEN);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    assert!(response.status().is_success(), "{path}: {}", response.status());
    response.json().await.unwrap_or(Value::Null)
}

/// Pushes marks `from..to` with `parallel` pushes at once; returns the acknowledged marks.
async fn load(client: reqwest::Client, url: String, from: usize, to: usize, parallel: usize) -> Vec<usize> {
    let acked = Arc::new(Mutex::new(Vec::new()));
    let next = Arc::new(Mutex::new(from));
    let mut tasks = Vec::new();
    for _ in 0..parallel {
        let (client, url, acked, next) = (client.clone(), url.clone(), acked.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let mark = {
                    let mut n = next.lock().unwrap();
                    if *n >= to {
                        return;
                    }
                    *n += 1;
                    *n - 1
                };
                let body = json!({"alert": "load", "mark": mark}).to_string().into_bytes();
                let sent = client.post(&url).header("x-signature", hmac_hex("s3cret", &body)).body(body).send().await;
                match sent {
                    Ok(r) if r.status() == 200 => acked.lock().unwrap().push(mark),
                    // The server died mid-request: not acknowledged, so the sender would retry.
                    _ => return,
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let mut acked = acked.lock().unwrap().clone();
    acked.sort();
    acked
}

/// A client (reqwest has no TLS provider of its own here; pushgate's is aws-lc-rs).
fn client() -> reqwest::Client {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    reqwest::Client::new()
}

fn mark(record: &Value) -> usize {
    record["payload"]["mark"].as_u64().unwrap() as usize
}

async fn wait_for_marks(receiver: &Receiver, wanted: &HashSet<usize>) -> Vec<Value> {
    let deadline = Instant::now() + WAIT;
    loop {
        let records = receiver.records();
        let got: HashSet<usize> = records.iter().map(mark).collect();
        if wanted.is_subset(&got) {
            return records;
        }
        assert!(Instant::now() < deadline, "{} acknowledged pushes never arrived", wanted.difference(&got).count());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn killed_while_forwarding_under_load(database: String, test: &str) {
    let Some(nats_url) = nats::url(test) else { return };
    let client = client();
    let mut first = Process::start(&database, &[]).await;
    let receiver = Receiver::start().await;
    // A slow collector, so batches are in flight when the process dies.
    receiver.delay(Duration::from_millis(30));
    let http = admin(
        &client,
        &first,
        reqwest::Method::POST,
        "/v1/destinations",
        Some(json!({"name": "collector", "kind": "http",
        "config": {"url": receiver.url, "max_batch_events": BATCH}})),
    )
    .await;
    let prefix = format!("t{}", uuid::Uuid::new_v4().simple());
    nats::create_stream(&nats_url, &prefix, &[&format!("{prefix}.>")]).await;
    admin(
        &client,
        &first,
        reqwest::Method::POST,
        "/v1/destinations",
        Some(json!({"name": "bus", "kind": "nats",
        "config": {"url": nats_url, "subject": format!("{prefix}.{{stream}}")}})),
    )
    .await;
    let c = admin(&client, &first, reqwest::Method::POST, "/v1/connections", Some(common::hmac_webhook("acme", "s3cret"))).await;
    let push_url = |p: &Process| p.url(&format!("/push/webhook/{}", c["id"].as_str().unwrap()));

    let load_task = tokio::spawn(load(client.clone(), push_url(&first), 0, 100_000, 16));
    // Kill it once forwarding is well under way.
    receiver.wait_for_records(400, WAIT).await;
    first.kill().await;
    let mut acked = load_task.await.unwrap();
    assert!(acked.len() >= 400, "{} pushes acknowledged", acked.len());
    let before_restart = receiver.records().len();

    let second = Process::start(&database, &[]).await;
    acked.extend(load(client.clone(), push_url(&second), 200_000, 200_300, 4).await);
    let wanted: HashSet<usize> = acked.iter().copied().collect();
    let records = wait_for_marks(&receiver, &wanted).await;

    // Duplicates: only events of the batch that was in flight, resent whole under its id.
    let mut copies: HashMap<String, Vec<&Value>> = HashMap::new();
    for r in &records {
        copies.entry(r["id"].as_str().unwrap().to_owned()).or_default().push(r);
    }
    let duplicated: Vec<_> = copies.iter().filter(|(_, v)| v.len() > 1).collect();
    assert!(duplicated.len() <= BATCH, "{} duplicates: more than the one batch in flight", duplicated.len());
    assert!(duplicated.iter().all(|(_, v)| v.len() == 2 && v[0] == v[1]), "a duplicate is the same event object");
    let requests = receiver.requests();
    let batch_of = |event: &str| -> Vec<String> {
        requests
            .iter()
            .filter(|r| r.status == 200 && r.lines.iter().any(|l| l["id"] == event))
            .map(|r| r.header("webhook-id").unwrap().to_owned())
            .collect()
    };
    for (event, _) in &duplicated {
        let ids = batch_of(event);
        assert_eq!(ids.len(), 2);
        assert_eq!(ids[0], ids[1], "the resent batch carries the id it was planned with");
    }
    println!("acknowledged {}, delivered before the kill {before_restart}, duplicates {}", acked.len(), duplicated.len());
    // Commit order: apart from the resent batch, records arrive in the order the feed serves them.
    let mut seen = HashSet::new();
    let firsts: Vec<String> =
        records.iter().filter_map(|r| r["id"].as_str()).filter(|id| seen.insert(id.to_owned())).map(str::to_owned).collect();
    let mut feed_ids = Vec::new();
    let mut after = String::new();
    loop {
        let page = admin(&client, &second, reqwest::Method::GET, &format!("/v1/events?limit=1000&after={after}"), None).await;
        let events = page["events"].as_array().unwrap();
        feed_ids.extend(events.iter().map(|e| e["id"].as_str().unwrap().to_owned()));
        after = page["next_after"].as_str().unwrap().to_owned();
        if events.len() < 1000 {
            break;
        }
    }
    let delivered: HashSet<&String> = firsts.iter().collect();
    let in_order: Vec<&String> = feed_ids.iter().filter(|id| delivered.contains(id)).collect();
    assert_eq!(firsts.iter().collect::<Vec<_>>(), in_order, "in commit order");
    // NATS got every acknowledged push too (JetStream drops resent ones by Nats-Msg-Id).
    let messages = nats::wait_for_messages(&nats_url, &prefix, wanted.len() as u64, WAIT).await;
    let got: HashSet<usize> = messages.iter().map(|m| mark(&m.data)).collect();
    assert!(wanted.is_subset(&got));
    let ids: HashSet<&str> = messages.iter().filter_map(|m| m.msg_id.as_deref()).collect();
    assert_eq!(ids.len(), messages.len(), "each event once");
    let http = admin(&client, &second, reqwest::Method::GET, &format!("/v1/destinations/{}", http["id"].as_str().unwrap()), None).await;
    assert!(http["counters"]["delivered"].as_i64().unwrap() >= wanted.len() as i64);
}

#[tokio::test]
async fn killed_while_forwarding_under_load_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("pushgate.db").display());
    killed_while_forwarding_under_load(database, "killed_while_forwarding_under_load_sqlite").await;
}

#[tokio::test]
async fn killed_while_forwarding_under_load_postgres() {
    let test = "killed_while_forwarding_under_load_postgres";
    let Some(database) = pushgate::testing::fresh_postgres_url(test).await else { return };
    killed_while_forwarding_under_load(database, test).await;
}

/// The pid in a lease holder's name (`host:pid:random`).
fn holder_pid(d: &Value) -> Option<u32> {
    d["lease"]["holder"].as_str()?.split(':').nth(1)?.parse().ok()
}

#[tokio::test]
async fn two_replicas_deliver_each_destination_from_one_and_take_over() {
    let test = "two_replicas_deliver_each_destination_from_one_and_take_over";
    let Some(database) = pushgate::testing::fresh_postgres_url(test).await else { return };
    let client = client();
    let a = Process::start(&database, &[]).await;
    let b = Process::start(&database, &[]).await;
    let receiver = Receiver::start().await;
    let d = admin(
        &client,
        &a,
        reqwest::Method::POST,
        "/v1/destinations",
        Some(json!({"name": "collector", "kind": "http",
        "config": {"url": receiver.url}})),
    )
    .await;
    let path = format!("/v1/destinations/{}", d["id"].as_str().unwrap());
    let c = admin(&client, &a, reqwest::Method::POST, "/v1/connections", Some(common::hmac_webhook("acme", "s3cret"))).await;
    let push_path = format!("/push/webhook/{}", c["id"].as_str().unwrap());
    // Both replicas take pushes.
    let mut acked = load(client.clone(), a.url(&push_path), 0, 100, 4).await;
    acked.extend(load(client.clone(), b.url(&push_path), 100, 200, 4).await);
    assert_eq!(acked.len(), 200);
    let wanted: HashSet<usize> = acked.iter().copied().collect();
    let records = wait_for_marks(&receiver, &wanted).await;
    assert_eq!(records.len(), 200, "one replica delivered, each event once");
    let shown = admin(&client, &b, reqwest::Method::GET, &path, None).await;
    let holder = holder_pid(&shown).expect("a replica holds the lease");
    assert!(holder == a.pid || holder == b.pid);

    // The holder dies; the other replica takes the destination over within 30 s.
    let (mut dead, survivor) = if holder == a.pid { (a, b) } else { (b, a) };
    dead.kill().await;
    let killed = Instant::now();
    let mut more = load(client.clone(), survivor.url(&push_path), 200, 300, 4).await;
    assert_eq!(more.len(), 100);
    acked.append(&mut more);
    let wanted: HashSet<usize> = acked.iter().copied().collect();
    wait_for_marks(&receiver, &wanted).await;
    let took = killed.elapsed();
    assert!(took < Duration::from_secs(30), "taken over after {took:?}");
    let shown = admin(&client, &survivor, reqwest::Method::GET, &path, None).await;
    assert_eq!(holder_pid(&shown), Some(survivor.pid));
    let ids: HashSet<String> = receiver.records().iter().map(|r| r["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids.len(), 300, "nothing lost");
    println!("taken over and caught up {took:?} after the kill");
}
