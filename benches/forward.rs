//! Forwarding benchmark (INTERFACE.md section 7), every party in its own process:
//! pushgate (the release binary), nats-server with JetStream, an HTTP NDJSON receiver and
//! the push load generator (this binary, started again in those roles).
//!
//! For each backend (SQLite; PostgreSQL when `DATABASE_URL` names a server):
//!
//! 1. **Drain**: a backlog of `BENCH_BACKLOG` stored events (default 1,000,000; ~1 KiB
//!    each, written straight into the store) is forwarded to a NATS destination, then to
//!    an HTTP NDJSON destination, each timed from its creation until the last event
//!    arrived. In the same run, the ceilings: reading the backlog from the store in
//!    pages (what the forwarder reads), publishing the same records to JetStream from one
//!    pipelined client, and POSTing them in batches of 500 to the same receiver.
//! 2. **Ingest with and without a destination**: the load generator pushes distinct
//!    HMAC-signed webhooks at concurrency 64 for `BENCH_SECONDS` (default 15) against
//!    pushgate with no destination, then with one NATS destination, alternating for
//!    `BENCH_ROUNDS` rounds (default 3); medians.
//! 3. **Lag**: pushes at half the peak rate with the NATS destination on; a subscriber
//!    of the subject measures, per event, arrival minus `received_at` (when pushgate
//!    received the push, a little before it acknowledged it).
//!
//! Run: `scripts/bench-forward` (release build, throwaway PostgreSQL and nats-server).

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use serde_json::{json, Value};

const TOKEN: &str = "benchmark-admin-token-0123456789";
const SECRET: &str = "benchmark-hmac-secret";
const ROLE: &str = "PUSHGATE_BENCH_ROLE";

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn alert(i: usize, run: &str) -> Vec<u8> {
    json!({
        "id": format!("{run}-{i}"),
        "type": "alert.created",
        "time": "2026-11-23T10:00:00Z",
        "severity": "high",
        "title": "Impossible travel activity",
        "description": "Sign-ins from two countries within 5 minutes for the same account; the second from an anonymising proxy.",
        "user": {"upn": format!("user{}@example.com", i % 500), "department": "Finance"},
        "source_ips": ["198.51.100.23", "203.0.113.77"],
        "locations": [{"country": "GB", "city": "London"}, {"country": "BR", "city": "Sao Paulo"}],
        "tags": ["identity", "travel", "mfa-bypassed"],
        "evidence": {"sessions": 2, "risk_score": 87, "detector": "ueba", "padding": "x".repeat(300)}
    })
    .to_string()
    .into_bytes()
}

fn main() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    match std::env::var(ROLE).as_deref() {
        Ok("receiver") => runtime.block_on(receiver()),
        Ok("load") => runtime.block_on(load()),
        _ => {
            if std::env::args().any(|a| a == "--list") {
                return; // `cargo bench -- --list`: nothing to enumerate.
            }
            runtime.block_on(orchestrate());
        }
    }
}

// ------------------------------------------------------------------ the receiver role

/// An NDJSON receiver: counts the lines it took, answers 200 at once.
async fn receiver() {
    use axum::routing::{get, post};
    let count = Arc::new(AtomicU64::new(0));
    let (c1, c2, c3) = (count.clone(), count.clone(), count.clone());
    let app = axum::Router::new()
        .route(
            "/ingest",
            post(move |body: Bytes| async move {
                c1.fetch_add(body.iter().filter(|b| **b == b'\n').count() as u64, Ordering::Relaxed);
                "{\"status\":\"ok\"}"
            }),
        )
        .route("/count", get(move || async move { c2.load(Ordering::Relaxed).to_string() }))
        .route(
            "/reset",
            post(move || async move {
                c3.store(0, Ordering::Relaxed);
                "0"
            }),
        )
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024 * 1024));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!("LISTEN {}", listener.local_addr().unwrap());
    std::io::stdout().flush().unwrap();
    axum::serve(listener, app).await.unwrap();
}

// ------------------------------------------------------------------ the load role

/// Pushes distinct signed webhooks for a while; prints one JSON line with the outcome.
async fn load() {
    let url = std::env::var("BENCH_URL").unwrap();
    let run = std::env::var("BENCH_RUN").unwrap();
    let concurrency = env_or("BENCH_LOAD_CONCURRENCY", 64) as usize;
    let seconds = env_or("BENCH_LOAD_SECONDS", 15);
    let rate = env_or("BENCH_LOAD_RATE", 0) as f64;
    let client = reqwest::Client::builder().pool_max_idle_per_host(concurrency).build().unwrap();
    let next = Arc::new(AtomicUsize::new(0));
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let errors = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let end = start + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, url, run, next, latencies, errors) =
            (client.clone(), url.clone(), run.clone(), next.clone(), latencies.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if rate > 0.0 {
                    let slot = start + Duration::from_secs_f64(i as f64 / rate);
                    if slot > end {
                        break;
                    }
                    tokio::time::sleep_until(slot.into()).await;
                } else if Instant::now() >= end {
                    break;
                }
                let body = alert(i, &run);
                let signature = hex::encode(pushgate::verify::hmac_sha256(SECRET.as_bytes(), &[&body]));
                let sent = Instant::now();
                match client.post(&url).header("x-signature", signature).body(body).send().await {
                    Ok(r) if r.status() == 200 => mine.push(sent.elapsed()),
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            latencies.lock().unwrap().extend(mine);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = start.elapsed().as_secs_f64();
    let mut l = latencies.lock().unwrap().clone();
    l.sort();
    let pct = |p: f64| l.get(((l.len().max(1) - 1) as f64 * p) as usize).map_or(0.0, |d| d.as_secs_f64() * 1000.0);
    println!(
        "{}",
        json!({"acked": l.len(), "errors": errors.load(Ordering::Relaxed), "seconds": elapsed,
        "per_second": l.len() as f64 / elapsed, "p50_ms": pct(0.5), "p99_ms": pct(0.99)})
    );
}

// ------------------------------------------------------------------ helpers

fn spawn_self(role: &str, env: &[(&str, String)]) -> Child {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command.env(ROLE, role).stdout(Stdio::piped()).stderr(Stdio::inherit());
    for (k, v) in env {
        command.env(k, v);
    }
    command.spawn().unwrap()
}

struct Pushgate {
    child: Child,
    base: String,
    client: reqwest::Client,
}

impl Pushgate {
    fn start(database: &str) -> Pushgate {
        let key = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [7u8; 32]);
        let mut child = Command::new(env!("CARGO_BIN_EXE_pushgate"))
            .arg("serve")
            .env("PUSHGATE_DATABASE_URL", database)
            .env("PUSHGATE_ADMIN_TOKEN", TOKEN)
            .env("PUSHGATE_MASTER_KEY", key)
            .env("PUSHGATE_LISTEN", "127.0.0.1:0")
            .env("PUSHGATE_LOG_FORMAT", "json")
            .env("PUSHGATE_LOG", "warn,pushgate=info")
            .env("PUSHGATE_EVENT_RETENTION_HOURS", "0")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the release pushgate binary");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let base = loop {
            let line = lines.next().expect("pushgate exited").unwrap();
            let Ok(v) = serde_json::from_str::<Value>(&line) else { continue };
            if v["fields"]["message"] == "pushgate listening" {
                break format!("http://{}", v["fields"]["address"].as_str().unwrap());
            }
        };
        std::thread::spawn(move || for _ in lines {});
        Pushgate { child, base, client: reqwest::Client::new() }
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let r = self.client.post(format!("{}{path}", self.base)).bearer_auth(TOKEN).json(&body).send().await.unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json().await.unwrap()
    }

    async fn delete(&self, path: &str) {
        self.client.delete(format!("{}{path}", self.base)).bearer_auth(TOKEN).send().await.unwrap();
    }

    fn stop(mut self) {
        let _ = Command::new("kill").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
    }
}

fn nats_server(dir: &std::path::Path) -> (Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let binary = ["/usr/sbin/nats-server", "/usr/bin/nats-server"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("nats-server is installed");
    let child = Command::new(binary)
        .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    (child, format!("nats://127.0.0.1:{port}"))
}

async fn stream_messages(js: &async_nats::jetstream::Context, name: &str) -> u64 {
    js.get_stream(name).await.unwrap().info().await.unwrap().state.messages
}

async fn wait_until(mut done: impl AsyncFnMut() -> u64, target: u64, limit: Duration) -> Duration {
    let start = Instant::now();
    while done().await < target {
        assert!(start.elapsed() < limit, "not done within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    start.elapsed()
}

/// Writes `n` events straight into the store, 1000 per commit; returns rows/s.
async fn fill(store: &dyn pushgate::store::Store, connection: uuid::Uuid, n: usize, run: &str) -> f64 {
    use pushgate::model::{EventKind, NewEvent, SourceKind};
    use pushgate::store::{Accepted, WriteOp};
    let start = Instant::now();
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let events = chunk
            .iter()
            .map(|i| NewEvent {
                dedupe_key: format!("{run}-{i}"),
                kind: EventKind::Alert,
                occurred_at: None,
                payload: serde_json::from_slice(&alert(*i, run)).unwrap(),
            })
            .collect();
        let op = WriteOp::Accept(Accepted {
            connection_id: connection,
            tenant_id: "acme".into(),
            source: SourceKind::Webhook,
            stream: "webhook_event".into(),
            received_at: pushgate::model::now(),
            events,
            heartbeat: None,
            confirms: true,
            authenticated: true,
            kept_rejections: vec![],
            changes: vec![],
            fetches: vec![],
        });
        store.commit(&[op]).await.unwrap();
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// Reads the whole backlog as the forwarder does (pages, records serialized); events/s.
async fn read_ceiling(store: &dyn pushgate::store::Store) -> (f64, Vec<Bytes>) {
    use pushgate::model::{EventFilter, Position};
    let start = Instant::now();
    let horizon = store.horizon().await.unwrap();
    let mut after = Position::START;
    let mut sample = Vec::new();
    let mut n = 0usize;
    loop {
        let page = store.read_events(after, horizon, &EventFilter::default(), 1000).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.position;
        n += page.len();
        for e in page {
            let record = pushgate::forward::sinks::Record::new(e);
            if sample.len() < 200_000 {
                sample.push(record.json);
            }
        }
    }
    (n as f64 / start.elapsed().as_secs_f64(), sample)
}

struct Row {
    backend: &'static str,
    what: String,
    per_second: f64,
    note: String,
}

// ------------------------------------------------------------------ the orchestrator

async fn orchestrate() {
    let backlog = env_or("BENCH_BACKLOG", 1_000_000) as usize;
    let seconds = env_or("BENCH_SECONDS", 15);
    let rounds = env_or("BENCH_ROUNDS", 3).max(1) as usize;
    let dir = tempfile::tempdir().unwrap();
    let (mut nats, nats_url) = nats_server(&dir.path().join("nats"));
    let nats_client = loop {
        if let Ok(c) = async_nats::connect(&nats_url).await {
            break c;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let js = async_nats::jetstream::new(nats_client.clone());
    let mut receiver = spawn_self("receiver", &[]);
    let mut first = String::new();
    BufReader::new(receiver.stdout.as_mut().unwrap()).read_line(&mut first).unwrap();
    let receiver_url = format!("http://{}", first.trim().strip_prefix("LISTEN ").unwrap());
    let http = reqwest::Client::new();
    let count = || {
        let (http, url) = (http.clone(), receiver_url.clone());
        async move { http.get(format!("{url}/count")).send().await.unwrap().text().await.unwrap().trim().parse::<u64>().unwrap() }
    };

    let mut backends: Vec<(&'static str, String)> = vec![("SQLite", format!("sqlite://{}", dir.path().join("bench.db").display()))];
    if let Some(url) = pushgate::testing::fresh_postgres_url("bench_forward").await {
        backends.push(("PostgreSQL", url));
    }
    let mut rows = Vec::new();
    for (backend, database) in &backends {
        let backend: &'static str = backend;
        eprintln!("== {backend}: a backlog of {backlog} events");
        let gate = Pushgate::start(database);
        let connection = gate
            .post(
                "/v1/connections",
                json!({"tenant_id": "acme", "name": "bench", "source": "webhook",
            "config": {"auth": {"type": "hmac_sha256", "header": "X-Signature", "secret": SECRET}}}),
            )
            .await;
        let connection_id: uuid::Uuid = connection["id"].as_str().unwrap().parse().unwrap();
        let store = pushgate::store::connect(&pushgate::config::Database::parse(database).unwrap()).await.unwrap();
        let run = format!("b{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let fill_rate = fill(store.as_ref(), connection_id, backlog, &run).await;
        rows.push(Row {
            backend,
            what: "store: write the backlog, 1000 rows per commit (ceiling)".into(),
            per_second: fill_rate,
            note: String::new(),
        });
        let (read_rate, sample) = read_ceiling(store.as_ref()).await;
        rows.push(Row {
            backend,
            what: "store: read the backlog in pages, records serialized (ceiling)".into(),
            per_second: read_rate,
            note: String::new(),
        });

        // NATS: the destination, then one pipelined client publishing the same records.
        let stream = format!("DRAIN_{}", backend.to_uppercase());
        js.create_stream(async_nats::jetstream::stream::Config {
            name: stream.clone(),
            subjects: vec![format!("{}.>", stream.to_lowercase())],
            ..Default::default()
        })
        .await
        .unwrap();
        let d = gate
            .post(
                "/v1/destinations",
                json!({"name": "bus", "kind": "nats",
            "config": {"url": nats_url, "subject": format!("{}.{{tenant_id}}.{{stream}}", stream.to_lowercase())}}),
            )
            .await;
        let took = wait_until(async || stream_messages(&js, &stream).await, backlog as u64, Duration::from_secs(1800)).await;
        let nats_rate = backlog as f64 / took.as_secs_f64();
        rows.push(Row {
            backend,
            what: "pushgate → NATS JetStream, backlog drained".into(),
            per_second: nats_rate,
            note: format!("{:.1} s", took.as_secs_f64()),
        });
        gate.delete(&format!("/v1/destinations/{}", d["id"].as_str().unwrap())).await;
        let ceiling_stream = format!("CEIL_{}", backend.to_uppercase());
        js.create_stream(async_nats::jetstream::stream::Config {
            name: ceiling_stream.clone(),
            subjects: vec![format!("{}.x", ceiling_stream.to_lowercase())],
            ..Default::default()
        })
        .await
        .unwrap();
        let start = Instant::now();
        for (c, chunk) in sample.chunks(1000).enumerate() {
            let mut acks = Vec::new();
            for (i, payload) in chunk.iter().enumerate() {
                let msg = async_nats::jetstream::message::PublishMessage::build().message_id(format!("{c}-{i}")).payload(payload.clone());
                acks.push(js.send_publish(format!("{}.x", ceiling_stream.to_lowercase()), msg).await.unwrap());
            }
            for a in acks {
                a.await.unwrap();
            }
        }
        let ceiling = sample.len() as f64 / start.elapsed().as_secs_f64();
        rows.push(Row {
            backend,
            what: "NATS JetStream: one client, 1000 pipelined publishes per batch (ceiling)".into(),
            per_second: ceiling,
            note: format!("{} records", sample.len()),
        });
        js.delete_stream(&stream).await.unwrap();
        js.delete_stream(&ceiling_stream).await.unwrap();

        // HTTP NDJSON: the destination, then POSTs of the same records in batches of 500.
        http.post(format!("{receiver_url}/reset")).send().await.unwrap();
        let d = gate
            .post("/v1/destinations", json!({"name": "collector", "kind": "http", "config": {"url": format!("{receiver_url}/ingest")}}))
            .await;
        let took = wait_until(count, backlog as u64, Duration::from_secs(1800)).await;
        let http_rate = backlog as f64 / took.as_secs_f64();
        rows.push(Row {
            backend,
            what: "pushgate → HTTP NDJSON (batches of 500), backlog drained".into(),
            per_second: http_rate,
            note: format!("{:.1} s", took.as_secs_f64()),
        });
        gate.delete(&format!("/v1/destinations/{}", d["id"].as_str().unwrap())).await;
        let start = Instant::now();
        for chunk in sample.chunks(500) {
            let mut body = Vec::new();
            for r in chunk {
                body.extend_from_slice(r);
                body.push(b'\n');
            }
            http.post(format!("{receiver_url}/ingest")).body(body).send().await.unwrap();
        }
        let ceiling = sample.len() as f64 / start.elapsed().as_secs_f64();
        rows.push(Row {
            backend,
            what: "HTTP NDJSON: one client, batches of 500, one at a time (ceiling)".into(),
            per_second: ceiling,
            note: format!("{} records", sample.len()),
        });
        drop(sample);
        gate.stop();
        drop(store);

        // Ingest without and with a NATS destination, on a fresh database.
        let ingest_db = match backend {
            "SQLite" => format!("sqlite://{}", dir.path().join("ingest.db").display()),
            _ => pushgate::testing::fresh_postgres_url("bench_forward_ingest").await.unwrap(),
        };
        let gate = Pushgate::start(&ingest_db);
        let connection = gate
            .post(
                "/v1/connections",
                json!({"tenant_id": "acme", "name": "bench", "source": "webhook",
            "config": {"auth": {"type": "hmac_sha256", "header": "X-Signature", "secret": SECRET}}}),
            )
            .await;
        let push_url = format!("{}/push/webhook/{}", gate.base, connection["id"].as_str().unwrap());
        let run_load = |run: String, rate: f64| {
            let push_url = push_url.clone();
            async move {
                let child = spawn_self(
                    "load",
                    &[
                        ("BENCH_URL", push_url),
                        ("BENCH_RUN", run),
                        ("BENCH_LOAD_SECONDS", seconds.to_string()),
                        ("BENCH_LOAD_RATE", format!("{}", rate as u64)),
                    ],
                );
                let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()).await.unwrap();
                serde_json::from_slice::<Value>(&out.stdout).unwrap()
            }
        };
        // Alternating rounds (the machine's disk and CPU vary from minute to minute):
        // no destination, then a NATS destination created for the round (start_from now),
        // deleted again before the next round; the medians are reported.
        let lag_stream = format!("LAG_{}", backend.to_uppercase());
        let subject = format!("{}.events", lag_stream.to_lowercase());
        js.create_stream(async_nats::jetstream::stream::Config {
            name: lag_stream.clone(),
            subjects: vec![subject.clone()],
            ..Default::default()
        })
        .await
        .unwrap();
        let mut nones = Vec::new();
        let mut with = Vec::new();
        for round in 0..rounds {
            eprintln!("== {backend}: ingest round {}, no destination", round + 1);
            nones.push(run_load(format!("{run}-none{round}"), 0.0).await);
            let d = gate
                .post(
                    "/v1/destinations",
                    json!({"name": "bus", "kind": "nats", "start_from": "now", "config": {"url": nats_url, "subject": subject}}),
                )
                .await;
            let destination = d["id"].as_str().unwrap().to_owned();
            eprintln!("== {backend}: ingest round {}, one NATS destination on", round + 1);
            with.push(run_load(format!("{run}-nats{round}"), 0.0).await);
            if round + 1 < rounds {
                gate.delete(&format!("/v1/destinations/{destination}")).await;
            }
        }
        let median = |v: &mut Vec<Value>| {
            v.sort_by(|a, b| a["per_second"].as_f64().unwrap().total_cmp(&b["per_second"].as_f64().unwrap()));
            v[v.len() / 2].clone()
        };
        let (none, with_nats) = (median(&mut nones), median(&mut with));
        let peak = none["per_second"].as_f64().unwrap();
        let all = |v: &Vec<Value>| v.iter().map(|x| format!("{:.0}", x["per_second"].as_f64().unwrap())).collect::<Vec<_>>().join(", ");
        for (label, v, runs) in [
            ("pushgate ingest, no destination (load generator, 64 connections)", &none, all(&nones)),
            ("pushgate ingest, one NATS destination on", &with_nats, all(&with)),
        ] {
            rows.push(Row {
                backend,
                what: label.into(),
                per_second: v["per_second"].as_f64().unwrap(),
                note: format!(
                    "median of [{runs}]; p50 {:.1} ms, p99 {:.1} ms, {} errors",
                    v["p50_ms"].as_f64().unwrap(),
                    v["p99_ms"].as_f64().unwrap(),
                    v["errors"]
                ),
            });
        }
        // Lag at half the peak rate: arrival at a subscriber minus received_at.
        let mut subscription = nats_client.subscribe(subject.clone()).await.unwrap();
        let lags = Arc::new(Mutex::new(Vec::new()));
        let collected = lags.clone();
        let collector = tokio::spawn(async move {
            use futures_util::StreamExt;
            while let Some(m) = subscription.next().await {
                let arrived = chrono::Utc::now();
                let Ok(v) = serde_json::from_slice::<Value>(&m.payload) else { continue };
                let Some(received) = v["received_at"].as_str().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok()) else { continue };
                collected.lock().unwrap().push((arrived - received.with_timezone(&chrono::Utc)).num_microseconds().unwrap_or(0));
            }
        });
        let half = run_load(format!("{run}-half"), peak / 2.0).await;
        tokio::time::sleep(Duration::from_secs(3)).await;
        collector.abort();
        let mut l = lags.lock().unwrap().clone();
        l.sort();
        let pct = |p: f64| l.get(((l.len().max(1) - 1) as f64 * p) as usize).map_or(0.0, |us| *us as f64 / 1000.0);
        rows.push(Row {
            backend,
            what: format!("end-to-end lag at half the peak rate ({:.0} pushes/s offered)", peak / 2.0),
            per_second: half["per_second"].as_f64().unwrap(),
            note: format!("lag p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms over {} events", pct(0.5), pct(0.99), pct(1.0), l.len()),
        });
        js.delete_stream(&lag_stream).await.unwrap();
        gate.stop();
    }
    let _ = receiver.kill();
    let _ = receiver.wait();
    let _ = nats.kill();
    let _ = nats.wait();

    println!("\n| backend | measurement | events/s | notes |\n|---|---|---:|---|");
    for r in &rows {
        println!("| {} | {} | {:.0} | {} |", r.backend, r.what, r.per_second, r.note);
    }
    for backend in backends.iter().map(|(b, _)| *b) {
        let get = |prefix: &str| rows.iter().find(|r| r.backend == backend && r.what.starts_with(prefix)).map_or(0.0, |r| r.per_second);
        println!(
            "{backend}: NATS drain {:.2} of the store read ceiling, {:.2} of the NATS publish ceiling; HTTP drain {:.2} of the HTTP ceiling; ingest with NATS {:.2} of ingest without",
            get("pushgate → NATS") / get("store: read"),
            get("pushgate → NATS") / get("NATS JetStream"),
            get("pushgate → HTTP") / get("HTTP NDJSON"),
            get("pushgate ingest, one NATS") / get("pushgate ingest, no destination"),
        );
    }
}
