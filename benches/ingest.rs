//! Ingest benchmark: signed pushes over real HTTP on 127.0.0.1, against
//!
//! 1. a bare axum server that reads the body and answers 200 (the HTTP ceiling),
//! 2. pushgate on SQLite (a file, WAL, synchronous=FULL),
//! 3. pushgate on PostgreSQL, when `DATABASE_URL` names a server,
//!
//! all in one run, at each concurrency of `BENCH_CONCURRENCY` (default `1,16,64`), with
//! `BENCH_REQUESTS` pushes per measurement (default 20000), the median of `BENCH_ROUNDS`
//! rounds (default 3). Every push carries a distinct
//! ~1 KiB alert, so every one is verified, stored and committed before its 200.
//! `BENCH_SENDER` picks the pushes: `webhook` (default; HMAC-SHA256 of the body), `sns`
//! (SNS notifications, SignatureVersion 2, each RSA-verified against a pinned
//! certificate; the signed messages are made once and sent to every target) or `pubsub`
//! (wrapped Pub/Sub pushes with a Google-shaped OIDC token, RS256-verified on every push
//! against a key set file), `graph` (Microsoft Graph batches `{"value": [one change
//! notification]}` with the connection's `clientState`, answered 202) or `graph-rich` (one
//! rich notification per batch: the alert's resource encrypted to an RSA-2048 key as Graph
//! does, decrypted on every push, plus one v2 `validationTokens` entry, RS256-verified; the
//! bodies are encrypted and signed before the measurement).
//! Run: `cargo bench --bench ingest` (add `DATABASE_URL=...` or use scripts/bench).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::routing::post;
use pushgate::sources::aws_sns::test_signer::TestSigner;
use pushgate::sources::gcp_pubsub::test_signer::TestOidcSigner;
use pushgate::sources::ms_graph::test_rich::TestRichKey;
use serde_json::{json, Value};

const SECRET: &str = "benchmark-hmac-secret";
const TOKEN: &str = "benchmark-admin-token-0123456789";

struct Push {
    url: String,
    body: Bytes,
    /// The credential header (webhook HMAC, Pub/Sub bearer token); SNS messages and
    /// Graph batches carry their credentials inside.
    auth: Option<(&'static str, String)>,
}

/// Which sender the pushes imitate.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Sender {
    Webhook,
    Sns,
    PubSub,
    Graph,
    GraphRich,
}

impl Sender {
    fn route(self) -> &'static str {
        match self {
            Sender::Webhook => "webhook",
            Sender::Sns => "aws-sns",
            Sender::PubSub => "gcp-pubsub",
            Sender::Graph | Sender::GraphRich => "ms-graph",
        }
    }
}

const PUSH_EMAIL: &str = "bench-push@bench.iam.gserviceaccount.com";

/// What signs (and, for Graph rich notifications, encrypts) the pushes; `oidc` signs both
/// Google's push tokens and Microsoft's validation tokens.
struct Signers {
    sns: TestSigner,
    oidc: TestOidcSigner,
    rich: TestRichKey,
}

const CLIENT_STATE: &str = "bench-client-state-5d1e";
const GRAPH_TENANT: &str = "84bd8158-6d4d-4958-8b9f-9d6445542f95";
const GRAPH_APP_ID: &str = "6a0e3d42-7c55-4f0b-9e54-1d2f3a4b5c6d";

/// The change notification for alert `id`: a distinct resource, so each one is stored.
fn graph_item(id: &str) -> Value {
    json!({
        "subscriptionId": "10493aa0-4d29-4df5-bc0c-ef742cc6cd7f", "subscriptionExpirationDateTime": "2030-01-01T00:00:00Z",
        "changeType": "created", "resource": format!("security/alerts_v2/{id}"), "clientState": CLIENT_STATE,
        "tenantId": GRAPH_TENANT, "resourceData": {"@odata.type": "#Microsoft.Graph.security.alert", "id": id}
    })
}

const TOPIC: &str = "arn:aws:sns:us-east-1:111122223333:bench";

struct Measurement {
    requests: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Measurement {
    fn per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
    fn percentile(&self, p: f64) -> Duration {
        let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[i]
    }
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

/// Signed bodies (and webhook signatures), independent of the target.
fn bodies(sender: Sender, signers: &Signers, run: &str, n: usize) -> Vec<(Bytes, Option<String>)> {
    use base64::Engine;
    // Graph vouches for a rich batch with tokens valid for an hour; one serves the set.
    let token = (sender == Sender::GraphRich).then(|| signers.oidc.graph_token_v2(GRAPH_APP_ID, GRAPH_TENANT, chrono::Utc::now()));
    (0..n)
        .map(|i| match sender {
            Sender::Webhook => {
                let body = alert(i, run);
                let signature = hex::encode(pushgate::verify::hmac_sha256(SECRET.as_bytes(), &[&body]));
                (Bytes::from(body), Some(signature))
            }
            Sender::Sns => {
                let message = String::from_utf8(alert(i, run)).unwrap();
                let body = signers.sns.notification(TOPIC, &format!("{run}-{i}"), &message, None, chrono::Utc::now());
                (Bytes::from(body), None)
            }
            Sender::PubSub => {
                let data = base64::engine::general_purpose::STANDARD.encode(alert(i, run));
                let body = json!({"message": {"data": data, "messageId": format!("{run}-{i}"), "publishTime": "2026-11-23T10:00:00Z"},
                    "subscription": "projects/bench/subscriptions/pushgate"});
                (Bytes::from(body.to_string()), None)
            }
            Sender::Graph | Sender::GraphRich => {
                let id = format!("{run}-{i}");
                let mut batch = json!({"value": [graph_item(&id)]});
                if let Some(token) = &token {
                    let resource = json!({"id": id, "title": "Impossible travel activity", "severity": "high", "status": "new"});
                    batch["value"][0]["encryptedContent"] = signers.rich.encrypt(resource.to_string().as_bytes());
                    batch["validationTokens"] = json!([token]);
                }
                (Bytes::from(batch.to_string()), None)
            }
        })
        .collect()
}

fn pushes(sender: Sender, signers: &Signers, base: &str, connection: &str, bodies: &[(Bytes, Option<String>)]) -> Vec<Push> {
    let url = format!("{base}/push/{}/{connection}", sender.route());
    // A push token is per audience (the push URL) and lives an hour, as Google's do.
    let token = (sender == Sender::PubSub).then(|| format!("Bearer {}", signers.oidc.push_token(&url, PUSH_EMAIL, chrono::Utc::now())));
    bodies
        .iter()
        .map(|(body, signature)| {
            let auth = match (&token, signature) {
                (Some(token), _) => Some(("authorization", token.clone())),
                (None, Some(signature)) => Some(("x-signature", signature.clone())),
                (None, None) => None,
            };
            Push { url: url.clone(), body: body.clone(), auth }
        })
        .collect()
}

async fn drive(client: &reqwest::Client, pushes: Vec<Push>, concurrency: usize) -> Measurement {
    let pushes = Arc::new(pushes);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (client, pushes, next) = (client.clone(), pushes.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(p) = pushes.get(i) else { break };
                let t = Instant::now();
                let mut request = client.post(&p.url).header("content-type", "application/json").body(p.body.clone());
                if let Some((name, value)) = &p.auth {
                    request = request.header(*name, value);
                }
                let response = request.send().await.expect("request failed");
                let status = response.status();
                let _ = response.bytes().await;
                assert!(status.is_success(), "push {i} was not acknowledged: {status}");
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for w in workers {
        latencies.extend(w.await.unwrap());
    }
    let elapsed = started.elapsed();
    latencies.sort();
    Measurement { requests: latencies.len(), elapsed, latencies }
}

/// The ceiling: axum with nothing behind the route but reading the body.
async fn bare_server() -> String {
    let app = axum::Router::new()
        .route("/push/{source}/{id}", post(|body: Bytes| async move { axum::Json(json!({"status": "stored", "bytes": body.len()})) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

/// `keys`: the settings naming the pinned SNS certificate and the Google and Microsoft key sets.
async fn pushgate_server(database_url: &str, keys: &[(&str, String)]) -> String {
    use base64::Engine;
    let key = base64::engine::general_purpose::STANDARD.encode([9u8; 32]);
    let env = [
        ("PUSHGATE_DATABASE_URL", database_url),
        ("PUSHGATE_ADMIN_TOKEN", TOKEN),
        ("PUSHGATE_MASTER_KEY", key.as_str()),
        ("PUSHGATE_LISTEN", "127.0.0.1:0"),
        ("PUSHGATE_MAX_CONCURRENT_REQUESTS", "4096"),
        ("PUSHGATE_SNS_CERT_FETCH", "false"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .chain(keys.iter().map(|(k, v)| (k.to_string(), v.clone())))
    .collect();
    let config = pushgate::config::Config::load(None, &env).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { pushgate::run(config, listener, std::future::pending()).await.unwrap() });
    base
}

async fn create_connection(client: &reqwest::Client, base: &str, sender: Sender, signers: &Signers) -> String {
    let body = match sender {
        Sender::Webhook => json!({"tenant_id": "bench", "name": "bench", "source": "webhook",
            "config": {"auth": {"type": "hmac_sha256", "header": "X-Signature", "secret": SECRET}}}),
        Sender::Sns => json!({"tenant_id": "bench", "name": "bench", "source": "aws_sns", "config": {"topic_arns": [TOPIC]}}),
        Sender::PubSub => json!({"tenant_id": "bench", "name": "bench", "source": "gcp_pubsub",
            "config": {"service_account_email": PUSH_EMAIL, "subscriptions": ["projects/bench/subscriptions/pushgate"]}}),
        Sender::Graph | Sender::GraphRich => {
            let mut config = json!({"client_state": CLIENT_STATE, "tenant_ids": [GRAPH_TENANT]});
            if sender == Sender::GraphRich {
                config["app_ids"] = json!([GRAPH_APP_ID]);
                config["encryption_keys"] = json!([signers.rich.config_entry()]);
            }
            json!({"tenant_id": "bench", "name": "bench", "source": "ms_graph", "config": config})
        }
    };
    let created: Value =
        client.post(format!("{base}/v1/connections")).bearer_auth(TOKEN).json(&body).send().await.unwrap().json().await.unwrap();
    created["id"].as_str().expect("connection created").to_owned()
}

async fn stored_events(client: &reqwest::Client, base: &str, id: &str) -> i64 {
    let c: Value = client.get(format!("{base}/v1/connections/{id}")).bearer_auth(TOKEN).send().await.unwrap().json().await.unwrap();
    c["counters"]["events"].as_i64().unwrap()
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let requests: usize = env_or("BENCH_REQUESTS", 20_000);
    let concurrencies: Vec<usize> =
        std::env::var("BENCH_CONCURRENCY").unwrap_or_else(|_| "1,16,64".into()).split(',').filter_map(|c| c.trim().parse().ok()).collect();
    let sender = match std::env::var("BENCH_SENDER").as_deref() {
        Ok("sns") => Sender::Sns,
        Ok("pubsub") => Sender::PubSub,
        Ok("graph") => Sender::Graph,
        Ok("graph-rich") => Sender::GraphRich,
        Ok("webhook") | Err(_) => Sender::Webhook,
        Ok(other) => panic!("BENCH_SENDER `{other}` is not `webhook`, `sns`, `pubsub`, `graph` or `graph-rich`"),
    };
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let client = reqwest::Client::builder().pool_max_idle_per_host(1024).build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let signers = Signers { sns: TestSigner::new("us-east-1"), oidc: TestOidcSigner::new(), rich: TestRichKey::generate("bench-cert") };
    signers.sns.write_pinned(dir.path()).unwrap();
    let keys = [
        ("PUSHGATE_SNS_CERT_DIR", dir.path().display().to_string()),
        ("PUSHGATE_GOOGLE_JWKS", signers.oidc.write_jwks(dir.path()).unwrap().display().to_string()),
        ("PUSHGATE_MICROSOFT_JWKS", signers.oidc.write_microsoft_jwks(dir.path()).unwrap().display().to_string()),
    ];

    let mut targets: Vec<(String, String, Option<String>)> = Vec::new();
    targets.push(("bare HTTP (ceiling)".into(), bare_server().await, None));
    let sqlite = pushgate_server(&format!("sqlite://{}", dir.path().join("bench.db").display()), &keys).await;
    let sqlite_id = create_connection(&client, &sqlite, sender, &signers).await;
    targets.push(("pushgate, SQLite".into(), sqlite, Some(sqlite_id)));
    match pushgate::testing::fresh_postgres_url("bench").await {
        Some(url) => {
            let pg = pushgate_server(&url, &keys).await;
            let pg_id = create_connection(&client, &pg, sender, &signers).await;
            targets.push(("pushgate, PostgreSQL".into(), pg, Some(pg_id)));
        }
        None => eprintln!("PostgreSQL not measured: DATABASE_URL is not set"),
    }

    let rounds: usize = env_or("BENCH_ROUNDS", 3);
    println!(
        "{sender:?} pushes, {requests} per measurement, median of {rounds} rounds, {} byte bodies, {} cores",
        bodies(sender, &signers, "x", 1)[0].0.len(),
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    println!();
    println!("| target | concurrency | pushes/s | p50 ms | p99 ms | vs ceiling |");
    println!("|---|---:|---:|---:|---:|---:|");
    let mut sent = vec![0usize; targets.len()];
    // Targets take turns at each concurrency, so each ratio compares runs made close in time
    // (this machine's speed drifts).
    for &concurrency in &concurrencies {
        let mut ceiling = 0.0;
        // One set of signed messages per round, sent to every target (distinct per round,
        // so each target stores every push).
        let sets: Vec<_> = (0..rounds)
            .map(|round| {
                let run = format!("{concurrency}-{round}");
                (bodies(sender, &signers, &format!("warm-{run}"), 500), bodies(sender, &signers, &run, requests))
            })
            .collect();
        for (t, (name, base, connection)) in targets.iter().enumerate() {
            let id = connection.clone().unwrap_or_else(|| "00000000-0000-0000-0000-000000000000".into());
            let mut results = Vec::new();
            for (warm, measured) in &sets {
                drive(&client, pushes(sender, &signers, base, &id, warm), concurrency).await;
                results.push(drive(&client, pushes(sender, &signers, base, &id, measured), concurrency).await);
                sent[t] += warm.len() + measured.len();
            }
            results.sort_by(|a, b| a.per_second().total_cmp(&b.per_second()));
            let m = &results[results.len() / 2];
            let rate = m.per_second();
            if connection.is_none() {
                ceiling = rate;
            }
            println!(
                "| {name} | {concurrency} | {rate:.0} | {:.2} | {:.2} | {:.2} |",
                m.percentile(0.5).as_secs_f64() * 1e3,
                m.percentile(0.99).as_secs_f64() * 1e3,
                rate / ceiling
            );
        }
    }
    for (t, (name, base, connection)) in targets.iter().enumerate() {
        if let Some(id) = connection {
            let stored = stored_events(&client, base, id).await;
            assert_eq!(stored, sent[t] as i64, "{name}: every acknowledged push is stored exactly once");
        }
    }
}
