//! Office 365 fetch benchmark: content blobs of `BENCH_RECORDS` audit records each (default
//! 1,000) fetched from a fake Management API (`tests/common/fake_o365.rs`, on 127.0.0.1)
//! and stored by a real pushgate server, against the store's own ceiling for the same
//! writes, measured in the same run:
//!
//! 1. **store ceiling**: `Store::commit` of one blob's records as one multi-row insert
//!    (one transaction per blob, 4 at a time as the fetch job runs them), straight into a
//!    store of the same backend: the most any fetcher could store;
//! 2. **fetch only**: the same number of blobs GET from the fake and parsed, 4 at a time,
//!    nothing stored: what the fetching side allows on this machine;
//! 3. **fetched and stored**: `BENCH_BLOBS` content notifications (default 200) POSTed to the
//!    connection's push URL as Microsoft sends them (100 per request), then timed until
//!    every record of every blob is stored: the push, the queue, the job's GETs (4 at
//!    once), the JSON parse and the store's commit of each blob with its queue row.
//!
//! On SQLite (a file, WAL, synchronous=FULL) and, when `DATABASE_URL` names a server,
//! PostgreSQL. Each row is the median of `BENCH_ROUNDS` rounds (default 3). Run:
//! `cargo bench --bench o365_fetch` (release), or `cargo bench --profile dev --bench
//! o365_fetch` with the test build's profile.

#[path = "../tests/common/fake_o365.rs"]
#[allow(dead_code)]
mod fake_o365;

use std::sync::Arc;
use std::time::{Duration, Instant};

use fake_o365::FakeO365;
use pushgate::model::{now, EventKind, NewConnection, NewEvent, SourceKind};
use pushgate::store::{Accepted, PostgresStore, SqliteStore, Store, WriteOp};
use serde_json::{json, Value};
use uuid::Uuid;

const TOKEN: &str = "benchmark-admin-token-0123456789";
const TENANT: &str = "41463f53-8812-40f4-890f-865bf6e35190";
const CLIENT_ID: &str = "f2e1c9a5-6bd4-4b6a-9a3b-1c2f0e7d8a9b";
const SECRET: &str = "bench-o365-secret";
const AUTH_ID: &str = "bench-o365-auth-id";
/// Fetches (and ceiling commits) at once: the fetch job's concurrency.
const AT_ONCE: usize = pushgate::microsoft::o365::fetch::CONCURRENCY;

/// An Exchange audit record as Microsoft's schema reference shapes one (about 600 bytes).
fn record(run: &str, blob: usize, i: usize) -> Value {
    json!({
        "CreationTime": format!("2026-12-02T10:{:02}:{:02}", blob % 60, i % 60),
        "Id": format!("{run}-{blob:05}-{i:05}-4c57-a97a-accfc3443dca"),
        "Operation": "MailItemsAccessed", "OrganizationId": TENANT, "RecordType": 50, "ResultStatus": "Succeeded",
        "UserKey": format!("1003200{i:09}"), "UserType": 0, "Version": 1, "Workload": "Exchange",
        "ClientIP": "203.0.113.77", "UserId": format!("user{}@contoso.onmicrosoft.com", i % 500),
        "AppId": "00000002-0000-0ff1-ce00-000000000000", "ClientAppId": "", "ClientInfoString": "Client=REST;Client=RESTSystem;;",
        "ExternalAccess": false, "InternalLogonType": 0, "LogonType": 0, "MailboxGuid": "a5b7c3d1-0e2f-4a6b-8c9d-1e2f3a4b5c6d",
        "MailboxOwnerUPN": format!("user{}@contoso.onmicrosoft.com", i % 500), "OperationProperties": [{"Name": "MailAccessType", "Value": "Bind"}],
        "Folders": [{"FolderItems": [{"InternetMessageId": format!("<{run}.{blob}.{i}@contoso.com>")}], "Path": "\\Inbox"}],
    })
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap());
    values[values.len() / 2]
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Blobs per second the store commits, each blob's records one `commit`, `AT_ONCE` at a time.
async fn ceiling(store: Arc<dyn Store>, blobs: usize, per_blob: usize, run: &str) -> f64 {
    let c = NewConnection {
        id: Uuid::new_v4(),
        tenant_id: "bench".into(),
        name: "ceiling".into(),
        source: SourceKind::O365Activity,
        stream: "cloud_ms_o365_activity_log".into(),
        heartbeat_interval_seconds: None,
        grace_seconds: 60,
        config_public: json!({}),
        config_sealed: "sealed".into(),
        created_at: now(),
    };
    store.create_connection(&c).await.unwrap();
    let ops: Vec<WriteOp> = (0..blobs)
        .map(|b| {
            let events = (0..per_blob)
                .map(|i| {
                    let payload = record(run, b, i);
                    NewEvent {
                        dedupe_key: payload["Id"].as_str().unwrap().to_owned(),
                        kind: EventKind::Telemetry,
                        occurred_at: Some(now()),
                        payload,
                    }
                })
                .collect();
            WriteOp::Accept(Accepted {
                connection_id: c.id,
                tenant_id: c.tenant_id.clone(),
                source: c.source,
                stream: c.stream.clone(),
                received_at: now(),
                events,
                heartbeat: None,
                confirms: false,
                authenticated: true,
                kept_rejections: vec![],
                changes: vec![],
                fetches: vec![],
            })
        })
        .collect();
    let queue = Arc::new(std::sync::Mutex::new(ops));
    let started = Instant::now();
    let workers: Vec<_> = (0..AT_ONCE)
        .map(|_| {
            let (store, queue) = (store.clone(), queue.clone());
            tokio::spawn(async move {
                loop {
                    let Some(op) = queue.lock().unwrap().pop() else { return };
                    let outcome = store.commit(std::slice::from_ref(&op)).await.unwrap();
                    assert!(matches!(outcome[0], pushgate::store::OpOutcome::Accepted { stored, .. } if stored as usize == per_blob));
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    blobs as f64 / started.elapsed().as_secs_f64()
}

/// Blobs per second the fake serves and the client parses, `AT_ONCE` at a time, nothing
/// stored: what the fetching side alone allows (the fake shares the machine's cores).
async fn fetch_only(client: &reqwest::Client, fake: &FakeO365, blobs: usize, per_blob: usize, run: &str) -> f64 {
    let token: Value = client
        .post(format!("{}/login/{TENANT}/oauth2/v2.0/token", fake.base))
        .form(&[
            ("client_id", CLIENT_ID),
            ("client_secret", SECRET),
            ("grant_type", "client_credentials"),
            ("scope", &format!("{}/.default", fake.base)),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap().to_owned();
    let uris: Vec<String> = (0..blobs)
        .map(|b| {
            fake.publish(TENANT, "Audit.Exchange", (0..per_blob).map(|i| record(run, b, i)).collect())["contentUri"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let queue = Arc::new(std::sync::Mutex::new(uris));
    let started = Instant::now();
    let workers: Vec<_> = (0..AT_ONCE)
        .map(|_| {
            let (client, queue, token) = (client.clone(), queue.clone(), token.clone());
            tokio::spawn(async move {
                loop {
                    let Some(uri) = queue.lock().unwrap().pop() else { return };
                    let body = client.get(&uri).bearer_auth(&token).send().await.unwrap().bytes().await.unwrap();
                    let records: Vec<Value> = serde_json::from_slice(&body).unwrap();
                    assert_eq!(records.len(), per_blob);
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    blobs as f64 / started.elapsed().as_secs_f64()
}

async fn server(database_url: &str, fake: &FakeO365) -> String {
    use base64::Engine;
    let key = base64::engine::general_purpose::STANDARD.encode([9u8; 32]);
    let mut env: std::collections::HashMap<String, String> = [
        ("PUSHGATE_DATABASE_URL", database_url),
        ("PUSHGATE_ADMIN_TOKEN", TOKEN),
        ("PUSHGATE_MASTER_KEY", key.as_str()),
        ("PUSHGATE_LISTEN", "127.0.0.1:0"),
        ("PUSHGATE_LOG", "warn"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    env.extend(fake.env());
    let config = pushgate::config::Config::load(None, &env).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { pushgate::run(config, listener, std::future::pending()).await.unwrap() });
    base
}

/// Blobs per second fetched and stored through `base`, and the records per second.
async fn fetched(client: &reqwest::Client, base: &str, fake: &FakeO365, blobs: usize, per_blob: usize, run: &str) -> f64 {
    let body = json!({"tenant_id": "bench", "name": run, "source": "o365_activity", "config": {"auth_id": AUTH_ID,
        "subscription": {"tenant_id": TENANT, "client_id": CLIENT_ID, "client_secret": SECRET, "content_types": ["Audit.Exchange"],
            "endpoint": fake.endpoint()}}});
    let created: Value =
        client.post(format!("{base}/v1/connections")).bearer_auth(TOKEN).json(&body).send().await.unwrap().json().await.unwrap();
    let (id, push_url) = (created["id"].as_str().unwrap().to_owned(), created["push_url"].as_str().unwrap().to_owned());
    let notifications: Vec<Value> =
        (0..blobs).map(|b| fake.publish(TENANT, "Audit.Exchange", (0..per_blob).map(|i| record(run, b, i)).collect())).collect();
    let expected = (blobs * per_blob) as i64;
    let started = Instant::now();
    for chunk in notifications.chunks(100) {
        assert_eq!(fake.notify(&push_url, AUTH_ID, chunk).await, 200);
    }
    loop {
        let c: Value = client.get(format!("{base}/v1/connections/{id}")).bearer_auth(TOKEN).send().await.unwrap().json().await.unwrap();
        let records = c["fetch"]["records"].as_i64().unwrap();
        if records >= expected {
            assert_eq!((records, c["fetch"]["backlog"].as_i64()), (expected, Some(0)), "{c}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(600), "not fetched within 10 minutes: {c}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    blobs as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let blobs: usize = env_or("BENCH_BLOBS", 200);
    let per_blob: usize = env_or("BENCH_RECORDS", 1000);
    let rounds: usize = env_or("BENCH_ROUNDS", 3);
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let client = reqwest::Client::new();
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeO365::start(CLIENT_ID, SECRET).await;
    let blob_bytes = serde_json::to_vec(&(0..per_blob).map(|i| record("x", 0, i)).collect::<Vec<_>>()).unwrap().len();
    println!(
        "{blobs} blobs of {per_blob} records ({} KiB of JSON each) per round, median of {rounds} rounds, {} cores, {} build",
        blob_bytes / 1024,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        if cfg!(debug_assertions) { "debug" } else { "release" }
    );
    println!("| store | store ceiling blobs/s | fetch only blobs/s | fetched and stored blobs/s | records/s | ÷ store ceiling |");
    println!("|---|---:|---:|---:|---:|---:|");

    let mut targets: Vec<(&str, Arc<dyn Store>, String)> = Vec::new();
    let ceiling_sqlite: Arc<dyn Store> = Arc::new(SqliteStore::open_file(&dir.path().join("ceiling.db")).await.unwrap());
    ceiling_sqlite.migrate().await.unwrap();
    targets.push(("SQLite", ceiling_sqlite, format!("sqlite://{}", dir.path().join("fetch.db").display())));
    match (
        pushgate::testing::fresh_postgres_url("bench_o365_ceiling").await,
        pushgate::testing::fresh_postgres_url("bench_o365_fetch").await,
    ) {
        (Some(ceiling_url), Some(fetch_url)) => {
            let store: Arc<dyn Store> = Arc::new(PostgresStore::connect(&ceiling_url).await.unwrap());
            store.migrate().await.unwrap();
            targets.push(("PostgreSQL", store, fetch_url));
        }
        _ => eprintln!("PostgreSQL not measured: DATABASE_URL is not set"),
    }
    for (name, store, url) in targets {
        let base = server(&url, &fake).await;
        let (mut ceilings, mut gets, mut fetches) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..rounds {
            ceilings.push(ceiling(store.clone(), blobs, per_blob, &format!("c{round}")).await);
            gets.push(fetch_only(&client, &fake, blobs, per_blob, &format!("g{round}")).await);
            fetches.push(fetched(&client, &base, &fake, blobs, per_blob, &format!("f{round}")).await);
        }
        let (ceiling, gets, fetched) = (median(ceilings), median(gets), median(fetches));
        println!("| {name} | {ceiling:.1} | {gets:.1} | {fetched:.1} | {:.0} | {:.2} |", fetched * per_blob as f64, fetched / ceiling);
    }
}
