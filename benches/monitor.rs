//! Monitor benchmark: one health-monitor pass (evaluate every connection, record the
//! transitions, mark the check) over `BENCH_CONNECTIONS` connections (default 10,000), on
//! SQLite (a file) and, when `DATABASE_URL` names a server, PostgreSQL. The first pass
//! records a transition for every connection (nothing was recorded yet); later passes
//! find nothing changed, which is the steady state. Run: `cargo bench --bench monitor`.

use std::sync::Arc;
use std::time::Instant;

use pushgate::model::{now, NewConnection, SourceKind};
use pushgate::store::{PostgresStore, SqliteStore, Store};
use uuid::Uuid;

async fn fill(store: &dyn Store, n: usize) {
    for i in 0..n {
        let c = NewConnection {
            id: Uuid::new_v4(),
            tenant_id: format!("tenant-{}", i % 50),
            name: format!("feed {i}"),
            source: SourceKind::Webhook,
            stream: "webhook_event".into(),
            heartbeat_interval_seconds: Some(300),
            grace_seconds: 60,
            config_public: serde_json::json!({"auth": {"type": "api_key", "header": "x", "value": "***"}}),
            config_sealed: "sealed".into(),
            created_at: now(),
        };
        store.create_connection(&c).await.expect("connection created");
    }
}

async fn measure(name: &str, store: Arc<dyn Store>, n: usize) {
    fill(store.as_ref(), n).await;
    let started = Instant::now();
    let first = pushgate::monitor::pass(store.as_ref(), None, now()).await.expect("first pass");
    let first_time = started.elapsed();
    assert_eq!(first.transitions, n, "every connection gets its first status");
    let mut steady = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let pass = pushgate::monitor::pass(store.as_ref(), None, now()).await.expect("pass");
        steady.push(started.elapsed());
        assert_eq!(pass.transitions, 0);
    }
    steady.sort();
    let median = steady[steady.len() / 2];
    println!(
        "| {name} | {n} | {:.0} | {:.0} | {:.1} |",
        first_time.as_secs_f64() * 1e3,
        median.as_secs_f64() * 1e3,
        median.as_secs_f64() * 1e6 / n as f64
    );
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("BENCH_CONNECTIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let dir = tempfile::tempdir().unwrap();
    println!("| store | connections | first pass ms (records all) | steady pass ms (median of 5) | µs per connection |");
    println!("|---|---:|---:|---:|---:|");
    let sqlite = SqliteStore::open_file(&dir.path().join("monitor.db")).await.unwrap();
    sqlite.migrate().await.unwrap();
    measure("SQLite", Arc::new(sqlite), n).await;
    match pushgate::testing::fresh_postgres_url("monitor bench").await {
        Some(url) => {
            let pg = PostgresStore::connect(&url).await.unwrap();
            pg.migrate().await.unwrap();
            measure("PostgreSQL", Arc::new(pg), n).await;
        }
        None => eprintln!("PostgreSQL not measured: DATABASE_URL is not set"),
    }
}
