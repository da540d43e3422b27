//! A real pushgate server on 127.0.0.1 port 0, with SQLite or a fresh PostgreSQL
//! database, started by [`TestServer::builder`], and small helpers to talk to it over
//! HTTP and to wait for its background jobs.
#![allow(dead_code)]

pub mod kafka;
pub mod logs;
pub mod nats;
pub mod process;
pub mod receiver;

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine;
use pushgate::config::Config;
use pushgate::passes::Passes;
use pushgate::sources::aws_sns::test_signer::TestSigner;
use pushgate::testing::oidc_signer::TestOidcSigner;
use serde_json::{json, Value};
use tokio::sync::oneshot;

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

pub struct TestServer {
    pub base: String,
    /// The database the server runs on.
    pub database_url: String,
    pub client: reqwest::Client,
    /// The passes of the health monitor.
    pub monitor: Passes,
    /// The passes of the Graph subscription upkeep (none when it is off).
    pub graph_upkeep: Passes,
    /// The passes of the Office 365 subscription upkeep (none when it is off).
    pub o365_upkeep: Passes,
    pub graph_catch_up: Passes,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), pushgate::StartError>>>,
    _dir: tempfile::TempDir,
}

#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// How a [`TestServer`] is started: `TestServer::builder(backend, test)`, then any of the
/// settings below, then [`TestServerBuilder::start`]. The server's temporary directory
/// (its SQLite database, the key files written for it) exists from the start, so the
/// settings that write files write them there.
pub struct TestServerBuilder {
    backend: Backend,
    test: String,
    env: HashMap<String, String>,
    database_url: Option<String>,
    options: pushgate::RunOptions,
    dir: tempfile::TempDir,
}

impl TestServerBuilder {
    /// Sets a configuration variable (`PUSHGATE_...`), over the defaults.
    pub fn env(mut self, name: &str, value: &str) -> TestServerBuilder {
        self.env.insert(name.to_owned(), value.to_owned());
        self
    }

    /// Sets every configuration variable of `vars`.
    pub fn envs<K: AsRef<str>, V: AsRef<str>>(mut self, vars: impl IntoIterator<Item = (K, V)>) -> TestServerBuilder {
        for (name, value) in vars {
            self = self.env(name.as_ref(), value.as_ref());
        }
        self
    }

    /// Runs on the database at `url` (another server's, say) instead of a fresh one.
    pub fn database_url(mut self, url: &str) -> TestServerBuilder {
        self.database_url = Some(url.to_owned());
        self
    }

    /// Starts with these [`pushgate::RunOptions`] instead of the defaults.
    pub fn options(mut self, options: pushgate::RunOptions) -> TestServerBuilder {
        self.options = options;
        self
    }

    /// Changes the [`pushgate::RunOptions`] set so far.
    pub fn with_options(mut self, change: impl FnOnce(&mut pushgate::RunOptions)) -> TestServerBuilder {
        change(&mut self.options);
        self
    }

    /// Forwarding that retries within a second, for tests that make destinations fail.
    pub fn fast_forwarding(self) -> TestServerBuilder {
        self.with_options(|options| {
            options.forward_settings = Some(pushgate::forward::Settings {
                backoff: pushgate::forward::backoff::Backoff { base: Duration::from_millis(50), cap: Duration::from_millis(800) },
                supervise_every: Duration::from_millis(500),
                ..Default::default()
            })
        })
    }

    /// Trusts `signer` as Google: its JWKS is written to the server's directory and named
    /// by `PUSHGATE_GOOGLE_JWKS`.
    pub fn google_signer(self, signer: &TestOidcSigner) -> TestServerBuilder {
        let jwks = signer.write_jwks(self.dir.path()).expect("the Google JWKS is written");
        let jwks = jwks.to_str().expect("a UTF-8 temporary path").to_owned();
        self.env("PUSHGATE_GOOGLE_JWKS", &jwks)
    }

    /// Trusts `signer` as Microsoft's identity platform: its JWKS, in Microsoft's form, is
    /// written to the server's directory and named by `PUSHGATE_MICROSOFT_JWKS`.
    pub fn microsoft_signer(self, signer: &TestOidcSigner) -> TestServerBuilder {
        let jwks = signer.write_microsoft_jwks(self.dir.path()).expect("the Microsoft JWKS is written");
        let jwks = jwks.to_str().expect("a UTF-8 temporary path").to_owned();
        self.env("PUSHGATE_MICROSOFT_JWKS", &jwks)
    }

    /// Pins the certificate of the SNS `signer` in a directory of the server's
    /// (`PUSHGATE_SNS_CERT_DIR`); whether others are fetched stays as configured.
    pub fn sns_signer(self, signer: &TestSigner) -> TestServerBuilder {
        let pinned = self.dir.path().join("sns-certs");
        std::fs::create_dir_all(&pinned).expect("the pinned certificate directory is made");
        signer.write_pinned(&pinned).expect("the SNS certificate is pinned");
        let pinned = pinned.to_str().expect("a UTF-8 temporary path").to_owned();
        self.env("PUSHGATE_SNS_CERT_DIR", &pinned)
    }

    /// Starts the server, or `None` when the backend is PostgreSQL and none is configured.
    pub async fn start(self) -> Option<TestServer> {
        let TestServerBuilder { backend, test, env: extra, database_url, options, dir } = self;
        let database = match (database_url, backend) {
            (Some(url), _) => url,
            (None, Backend::Sqlite) => format!("sqlite://{}", dir.path().join("pushgate.db").display()),
            (None, Backend::Postgres) => pushgate::testing::fresh_postgres_url(&test).await?,
        };
        let key = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        let mut env: HashMap<String, String> = [
            ("PUSHGATE_DATABASE_URL", database.as_str()),
            ("PUSHGATE_ADMIN_TOKEN", ADMIN_TOKEN),
            ("PUSHGATE_MASTER_KEY", key.as_str()),
            ("PUSHGATE_LISTEN", "127.0.0.1:0"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        env.extend(extra);
        let config = Config::load(None, &env).expect("test config is valid");
        // reqwest is built without a TLS crypto provider of its own (the crate uses
        // aws-lc-rs), and no client can be built before one is installed. Installing
        // again, from the next test, is refused harmlessly.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let monitor = options.monitor_passes.clone();
        let graph_upkeep = options.graph_upkeep_passes.clone();
        let o365_upkeep = options.o365_upkeep_passes.clone();
        let graph_catch_up = options.graph_catch_up_passes.clone();
        let task = tokio::spawn(pushgate::run_with(
            config,
            listener,
            async {
                let _ = stopped.await;
            },
            options,
        ));
        Some(TestServer {
            base,
            database_url: database,
            client: reqwest::Client::new(),
            monitor,
            graph_upkeep,
            o365_upkeep,
            graph_catch_up,
            stop: Some(stop),
            task: Some(task),
            _dir: dir,
        })
    }
}

/// The longest wait for a background job's passes.
const PASSES_WAIT: Duration = Duration::from_secs(30);

/// Waits until `job` has completed `target` passes in all; panics after 30 s.
pub async fn wait_for_passes(job: &Passes, what: &str, target: u64) {
    if tokio::time::timeout(PASSES_WAIT, job.reached(target)).await.is_err() {
        panic!("{what}: {} passes after {PASSES_WAIT:?}, not {target}", job.count());
    }
}

impl TestServer {
    /// A server of `backend` for the test `test` (named when its PostgreSQL leg is
    /// skipped), to configure and [`TestServerBuilder::start`].
    pub fn builder(backend: Backend, test: &str) -> TestServerBuilder {
        TestServerBuilder {
            backend,
            test: test.to_owned(),
            env: HashMap::new(),
            database_url: None,
            options: pushgate::RunOptions::default(),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// Waits until the health monitor has completed `n` more passes than now (the first
    /// may have begun before the call); panics after 30 s.
    pub async fn monitor_passes(&self, n: u64) {
        wait_for_passes(&self.monitor, "the health monitor", self.monitor.count() + n).await;
    }

    /// Waits until the Graph subscription upkeep has completed `n` more passes than now
    /// (the first may have begun before the call); panics after 30 s.
    pub async fn upkeep_passes(&self, n: u64) {
        wait_for_passes(&self.graph_upkeep, "the Graph subscription upkeep", self.graph_upkeep.count() + n).await;
    }

    /// Waits until the Office 365 subscription upkeep has completed `n` more passes than
    /// now (the first may have begun before the call); panics after 30 s.
    pub async fn o365_upkeep_passes(&self, n: u64) {
        wait_for_passes(&self.o365_upkeep, "the Office 365 subscription upkeep", self.o365_upkeep.count() + n).await;
    }

    /// Waits until the Graph catch-up has completed `n` more passes than now (the first
    /// may have begun before the call); panics after 30 s.
    pub async fn catch_up_passes(&self, n: u64) {
        wait_for_passes(&self.graph_catch_up, "the Graph catch-up", self.graph_catch_up.count() + n).await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, self.url(path)).bearer_auth(ADMIN_TOKEN)
    }

    /// Creates a connection; panics unless the answer is 201.
    pub async fn create(&self, body: Value) -> Value {
        let response = self.admin(reqwest::Method::POST, "/v1/connections").json(&body).send().await.unwrap();
        let status = response.status();
        let json: Value = response.json().await.unwrap();
        assert_eq!(status, 201, "create failed: {json}");
        json
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let response = self.admin(reqwest::Method::GET, path).send().await.unwrap();
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.unwrap()
    }

    pub async fn connection(&self, id: &str) -> Value {
        self.get_json(&format!("/v1/connections/{id}")).await
    }

    /// Polls the connection every `every` until `done` holds; panics after `tries` polls.
    pub async fn wait_for(&self, id: &str, what: &str, tries: u32, every: std::time::Duration, done: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..tries {
            let c = self.connection(id).await;
            if done(&c) {
                return c;
            }
            tokio::time::sleep(every).await;
        }
        panic!("timed out waiting for {what}: {}", self.connection(id).await);
    }

    /// The connection's status history, oldest first, as (old status, new status, message).
    pub async fn history(&self, id: &str) -> Vec<(Option<String>, String, Option<String>)> {
        let text = |v: &Value| v.as_str().map(str::to_owned);
        let history = self.get_json(&format!("/v1/connections/{id}/history")).await;
        let entries = history["history"].as_array().cloned().unwrap_or_default();
        entries.iter().map(|h| (text(&h["old_status"]), h["new_status"].as_str().unwrap().to_owned(), text(&h["message"]))).collect()
    }

    pub async fn events(&self, id: &str) -> Vec<Value> {
        self.get_json(&format!("/v1/connections/{id}/events?limit=1000")).await["events"].as_array().unwrap().clone()
    }

    /// `pushgate_raw_events_total{source}` as `GET /metrics` shows it (0 before the first).
    pub async fn raw_events_metric(&self, source: &str) -> u64 {
        let text = self.admin(reqwest::Method::GET, "/metrics").send().await.unwrap().text().await.unwrap();
        let series = format!("pushgate_raw_events_total{{source=\"{source}\"}} ");
        text.lines().find_map(|line| line.strip_prefix(series.as_str())).map_or(0, |n| n.trim().parse().unwrap())
    }

    pub async fn rejections(&self, id: &str) -> Vec<Value> {
        self.get_json(&format!("/v1/connections/{id}/rejections?limit=1000")).await["rejections"].as_array().unwrap().clone()
    }

    /// POSTs `body` to webhook connection `id`, signed with `secret` (HMAC-SHA256, the
    /// `X-Signature` header of [`hmac_webhook`]); the status.
    pub async fn push_signed(&self, id: &str, secret: &str, body: &[u8]) -> u16 {
        let response = self
            .client
            .post(self.url(&format!("/push/webhook/{id}")))
            .header("x-signature", hmac_hex(secret, body))
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        response.status().as_u16()
    }

    /// Creates a destination; panics unless the answer is 201.
    pub async fn create_destination(&self, body: Value) -> Value {
        let response = self.admin(reqwest::Method::POST, "/v1/destinations").json(&body).send().await.unwrap();
        let status = response.status();
        let json: Value = response.json().await.unwrap();
        assert_eq!(status, 201, "create failed: {json}");
        json
    }

    pub async fn destination(&self, id: &str) -> Value {
        self.get_json(&format!("/v1/destinations/{id}")).await
    }

    /// Polls the destination until `done` holds; panics after `within`.
    pub async fn wait_for_destination(&self, id: &str, what: &str, within: Duration, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let d = self.destination(id).await;
            if done(&d) {
                return d;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("timed out waiting for {what}: {d}");
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Every event of the change feed from the start, oldest first.
    pub async fn feed(&self, query: &str) -> Vec<Value> {
        let mut events = Vec::new();
        let mut after = String::new();
        loop {
            let page = self.get_json(&format!("/v1/events?limit=1000&after={after}{query}")).await;
            let got = page["events"].as_array().unwrap().clone();
            after = page["next_after"].as_str().unwrap().to_owned();
            let done = got.len() < 1000;
            events.extend(got);
            if done {
                return events;
            }
        }
    }

    /// Polls the change feed until it holds at least `n` events.
    pub async fn wait_for_feed(&self, n: usize, within: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let events = self.feed("").await;
            if events.len() >= n {
                return events;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("the feed holds {} events, not {n}", events.len());
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }
}

/// Calls `check` every 25 ms until it answers `Some`, and answers that; panics, naming
/// `what`, after `within`.
pub async fn eventually<T>(what: &str, within: Duration, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(done) = check().await {
            return done;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out after {within:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A webhook connection body with HMAC-SHA256 auth.
/// Pushes alert number `n` to the `hmac_webhook` connection `id` (secret `s3cret`) and
/// checks it is acknowledged at once: ingest never waits for forwarding.
pub async fn push_alert(server: &TestServer, id: &str, n: usize) {
    let body = serde_json::json!({"alert": "port scan", "n": n}).to_string().into_bytes();
    let started = std::time::Instant::now();
    assert_eq!(server.push_signed(id, "s3cret", &body).await, 200, "ingest never waits for forwarding");
    assert!(started.elapsed() < Duration::from_secs(2), "push {n} took {:?}", started.elapsed());
}

/// The `id` of each event object, in order.
pub fn event_ids(events: &[Value]) -> Vec<String> {
    events.iter().map(|e| e["id"].as_str().unwrap().to_owned()).collect()
}

pub fn hmac_webhook(tenant: &str, secret: &str) -> Value {
    json!({
        "tenant_id": tenant,
        "name": "generic webhook",
        "source": "webhook",
        "heartbeat_interval_seconds": 300,
        "config": {"auth": {"type": "hmac_sha256", "header": "X-Signature", "secret": secret}}
    })
}

/// A webhook heartbeat body signed now: `{"type": "heartbeat", "id", "time"}` with a new id
/// each call and the current UTC time (milliseconds, so a 1 s interval is not lost to
/// rounding).
pub fn heartbeat_body() -> Vec<u8> {
    heartbeat_body_at(&format!("hb-{}", uuid::Uuid::new_v4()), chrono::Utc::now())
}

/// A webhook heartbeat body with id `id`, signed at `time`.
pub fn heartbeat_body_at(id: &str, time: chrono::DateTime<chrono::Utc>) -> Vec<u8> {
    let time = time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    serde_json::to_vec(&json!({"type": "heartbeat", "id": id, "time": time})).unwrap()
}

/// A time as the admin API writes it (RFC 3339, UTC, microseconds).
pub fn api_time(t: chrono::DateTime<chrono::Utc>) -> String {
    pushgate::model::rfc3339(t)
}

pub fn hmac_hex(secret: &str, body: &[u8]) -> String {
    hex::encode(pushgate::verify::hmac_sha256(secret.as_bytes(), &[body]))
}

/// Generates `sqlite` and `postgres` variants of each `async fn case(server: TestServer)`.
#[macro_export]
macro_rules! on_both_backends {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test] async fn $case() {
                let server = $crate::common::TestServer::builder($crate::common::Backend::Sqlite, stringify!($case)).start().await.unwrap();
                super::$case(server).await
            })*
        }
        mod postgres {
            $(#[tokio::test] async fn $case() {
                if let Some(server) = $crate::common::TestServer::builder($crate::common::Backend::Postgres, stringify!($case)).start().await {
                    super::$case(server).await
                }
            })*
        }
    };
}

/// Like [`on_both_backends!`], for cases that start their own server: each
/// `async fn case(backend: Backend)` runs once per backend (PostgreSQL cases skip
/// themselves when no server is configured, through [`TestServerBuilder::start`]).
#[macro_export]
macro_rules! on_both_backends_with {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test] async fn $case() {
                super::$case($crate::common::Backend::Sqlite).await
            })*
        }
        mod postgres {
            $(#[tokio::test] async fn $case() {
                super::$case($crate::common::Backend::Postgres).await
            })*
        }
    };
}
