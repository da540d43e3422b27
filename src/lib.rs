//! pushgate receives the security data that clouds push, proves each push authentic,
//! stores it durably and exactly once, and watches every feed's heartbeat.
//!
//! A map of the crate, in the order a push travels:
//!
//! - [`http`]: axum router and layers; push routes, admin API, probes. Only it imports axum.
//! - [`ingest`]: connection lookup, verification, normalization and group commit: the only
//!   module that joins [`sources`] and [`store`].
//! - [`sources`]: one module per sender (`webhook`, ...): `verify` over raw bytes, then
//!   `normalize` into events or a heartbeat. Depends only on [`model`] and [`verify`].
//! - [`verify`]: constant-time comparison and HMAC.
//! - [`aws`], [`gcp`], [`microsoft`]: pushgate's own calls to the clouds (confirming SNS
//!   subscriptions, publishing, checking Pub/Sub subscriptions, keeping Graph
//!   subscriptions alive); [`canary`]: the canary heartbeat task;
//!   [`outbound`]: the https client behind every allow-listed fetch.
//! - [`store`]: the [`store::Store`] trait with SQLite and PostgreSQL implementations.
//! - [`forward`]: ships every stored event onward to the configured destinations (NATS
//!   JetStream, HTTP NDJSON, Splunk HEC), at least once and in commit order, and applies
//!   retention; [`destinations`]: admin-side validation and sealing of destinations.
//! - [`health`]: the pure `evaluate(facts, policy, now)` behind every status;
//!   [`monitor`]: evaluates every connection periodically and records transitions;
//!   [`alerts`]: posts each transition to the alert webhook.
//! - [`connections`], [`secrets`], [`crypto`]: admin-side validation, secret masking and
//!   sealing at rest with the master key.
//! - [`config`], [`cli`]: configuration and the command line.
//! - [`model`]: the plain data types everything above shares.

pub mod alerts;
pub mod aws;
pub mod canary;
pub mod cli;
pub mod config;
pub mod connections;
pub mod crypto;
pub mod destinations;
pub mod forward;
pub mod gcp;
pub mod health;
pub mod http;
pub mod ingest;
pub mod metrics;
pub mod microsoft;
pub mod model;
pub mod monitor;
pub mod outbound;
pub mod secrets;
pub mod sources;
pub mod store;
#[doc(hidden)]
pub mod testing;
pub mod verify;

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::{Config, Database};
use crate::crypto::{generate_admin_token, token_hash, MasterKey};
use crate::http::{AdminTokens, AppState, BodyBudget, Limits};
use crate::ingest::Ingest;
use crate::store::{Store, StoreError};

/// Name of the key file created beside a SQLite database when no master key is configured.
pub const KEY_FILE_NAME: &str = "pushgate.key";

/// Longest outbound request (SNS certificate fetch, SubscribeURL confirmation).
const OUTBOUND_TIMEOUT: Duration = Duration::from_secs(10);

/// How long in-flight requests may run on after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("master key file {path}: {source}")]
    KeyFile { path: String, source: std::io::Error },
    #[error("master key file {0} does not hold base64 of 32 bytes")]
    BadKeyFile(String),
    #[error("master key file {0} is missing, but the database holds connections sealed with a key: restore the file from its backup (or set PUSHGATE_MASTER_KEY to that key)")]
    KeyFileMissing(String),
    #[error("the master key does not open the secrets of connection {0}: it is not the key they were sealed with")]
    WrongKey(String),
    #[error("cannot serve: {0}")]
    Serve(#[from] std::io::Error),
}

/// Connects to the configured database and applies migrations.
pub async fn open_store(config: &Config) -> Result<Arc<dyn Store>, StartError> {
    let database = config.database().ok_or_else(|| StartError::Config("PUSHGATE_DATABASE_URL is not valid".into()))?;
    let store = store::connect(&database).await?;
    store.migrate().await?;
    Ok(store)
}

/// The master key: configured, else the key file beside a SQLite database (created
/// with mode 0600 on first start), else a throwaway key for an in-memory database.
/// A key that does not open the stored secrets is refused, and a missing key file is not
/// replaced while connections sealed with the old one exist.
pub async fn master_key(config: &Config, store: &dyn Store) -> Result<MasterKey, StartError> {
    let connections = store.list_connections(&model::ConnectionFilter::default()).await?;
    let destinations = store.list_destinations().await?;
    let sealed_exist = !connections.is_empty() || !destinations.is_empty();
    let key = if let Some(key) = &config.master_key {
        MasterKey::from_base64(key.expose()).map_err(|_| StartError::Config("PUSHGATE_MASTER_KEY must be base64 of 32 bytes".into()))?
    } else {
        match config.database() {
            Some(Database::SqliteFile(db)) => {
                let dir = db.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
                load_or_create_key_file(&dir.join(KEY_FILE_NAME), sealed_exist)?
            }
            Some(Database::SqliteMemory) => {
                MasterKey::from_base64(&MasterKey::generate_base64()).map_err(|_| StartError::Config("key generation failed".into()))?
            }
            _ => return Err(StartError::Config("PUSHGATE_MASTER_KEY is required with PostgreSQL".into())),
        }
    };
    if let Some(sealed) = connections.first() {
        if connections::open_config(&key, sealed).is_err() {
            return Err(StartError::WrongKey(sealed.id.to_string()));
        }
    }
    if let Some(sealed) = destinations.first() {
        if destinations::open_config(&key, sealed).is_err() {
            return Err(StartError::WrongKey(format!("destination {}", sealed.id)));
        }
    }
    Ok(key)
}

fn load_or_create_key_file(path: &Path, secrets_exist: bool) -> Result<MasterKey, StartError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let shown = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => MasterKey::from_base64(&text).map_err(|_| StartError::BadKeyFile(shown)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && secrets_exist => Err(StartError::KeyFileMissing(shown)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let text = MasterKey::generate_base64();
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|source| StartError::KeyFile { path: shown.clone(), source })?;
            file.write_all(format!("{text}\n").as_bytes())
                .and_then(|_| file.sync_all())
                .map_err(|source| StartError::KeyFile { path: shown.clone(), source })?;
            eprintln!("pushgate: created master key file {shown} (mode 0600); back it up: without it stored secrets cannot be read");
            MasterKey::from_base64(&text).map_err(|_| StartError::BadKeyFile(shown))
        }
        Err(source) => Err(StartError::KeyFile { path: shown, source }),
    }
}

/// The accepted admin tokens: the configured one alone when there is one (so configuring
/// a token also revokes a generated one); else those stored, and when none is stored yet
/// a new token is generated, stored hashed, and printed once to stderr.
pub async fn admin_tokens(store: &dyn Store, config: &Config) -> Result<AdminTokens, StartError> {
    if let Some(token) = &config.admin_token {
        return Ok(AdminTokens::new(vec![token_hash(token.expose())]));
    }
    let mut hashes = store.admin_token_hashes().await?;
    if hashes.is_empty() {
        let token = generate_admin_token();
        let hash = token_hash(&token);
        store.add_admin_token(&hash, model::now()).await?;
        eprintln!("pushgate: generated admin token (shown once; it is stored only as a hash):\n\n    {token}\n");
        hashes.push(hash);
    }
    Ok(AdminTokens::new(hashes))
}

/// Settings of [`run_with`] that no configuration file can reach.
#[derive(Clone, Default)]
#[doc(hidden)]
pub struct RunOptions {
    /// Tests: reach an allow-listed AWS host at a local address with a test CA.
    pub outbound_test_transport: Option<outbound::TestTransport>,
    /// Tests: check Pub/Sub subscriptions this often instead of every 5 minutes.
    pub subscription_check_interval: Option<Duration>,
    /// Tests: run the Graph subscription upkeep this often instead of every minute.
    pub graph_upkeep_interval: Option<Duration>,
    /// Tests: forwarding's backoff, polling and lease timings.
    pub forward_settings: Option<forward::Settings>,
    /// Tests: run retention this often instead of every minute.
    pub retention_interval: Option<Duration>,
}

/// Serves on `listener` until `shutdown` completes, then finishes in-flight requests
/// (for at most 30 s) and returns.
pub async fn run(config: Config, listener: TcpListener, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), StartError> {
    run_with(config, listener, shutdown, RunOptions::default()).await
}

/// How long a fetch of Microsoft's signing keys may take (it sits on Graph's push path).
const MICROSOFT_KEYS_FETCH_TIMEOUT: Duration = Duration::from_secs(2);

#[doc(hidden)]
pub async fn run_with(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    options: RunOptions,
) -> Result<(), StartError> {
    // Libraries that use rustls without choosing a provider (the Pub/Sub client) get
    // aws-lc-rs, the one crypto library of pushgate. Already installed: nothing to do.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let store = open_store(&config).await?;
    let key = Arc::new(master_key(&config, store.as_ref()).await?);
    let tokens = admin_tokens(store.as_ref(), &config).await?;
    let bound = listener.local_addr()?;
    let public_url = config.public_url_for(bound);
    let sns_api = Arc::new(aws::SnsApi::new(config.aws_endpoint_url.clone()));
    let test_transport = options.outbound_test_transport.as_ref();
    let outbound = outbound::https_client(OUTBOUND_TIMEOUT, test_transport).map_err(StartError::Config)?;
    let confirmer = Arc::new(aws::Confirmer::new(sns_api.clone(), outbound.clone()));
    let mut sns_certs = sources::aws_sns::certs::CertStore::new(config.sns_cert_dir.clone(), config.sns_cert_fetch)
        .map_err(|e| StartError::Config(e.to_string()))?;
    if let Some(t) = test_transport {
        sns_certs = sns_certs.with_test_transport((&t.host, t.addr), t.root_der.clone()).map_err(|e| StartError::Config(e.to_string()))?;
    }
    let sns_certs = Arc::new(sns_certs);
    let google_keys = sources::gcp_pubsub::keys::GoogleKeys::from_setting(&config.google_jwks)
        .map_err(|e| StartError::Config(format!("PUSHGATE_GOOGLE_JWKS: {e}")))?;
    // The error names PUSHGATE_MICROSOFT_JWKS already.
    // Graph counts an answer over about 3 s as slow: a key fetch on that path gets 2 s.
    let microsoft_keys = sources::ms_graph::keys::MicrosoftKeys::from_setting(&config.microsoft_jwks)
        .and_then(|keys| keys.with_fetch_timeout(MICROSOFT_KEYS_FETCH_TIMEOUT))
        .map_err(|e| StartError::Config(e.to_string()))?;
    let senders = sources::Senders::new(sns_certs, Arc::new(google_keys), Arc::new(microsoft_keys));
    let metrics = Arc::new(metrics::Metrics::new());
    tokio::spawn(metrics_upkeep_periodically(Arc::downgrade(&metrics)));
    // Built before ingest so a stored Graph lifecycle notification can start a pass.
    let graph_upkeep = microsoft::UpkeepHandle::new();
    let ingest = Arc::new(Ingest::new(store.clone(), key.clone(), senders, confirmer.clone(), metrics.clone(), graph_upkeep.clone()));
    tokio::spawn(tidy_periodically(Arc::downgrade(&ingest)));
    let (stop_tx, stop_rx) = watch::channel(false);
    let pubsub_api = Arc::new(gcp::PubSubApi::new(config.pubsub_endpoint.clone()));
    let publishers = canary::Publishers { sns: sns_api, pubsub: pubsub_api.clone() };
    tokio::spawn(canary::run(store.clone(), publishers, stop_rx.clone()));
    let alerts = match (&config.alert_webhook_url, &config.alert_webhook_secret) {
        (Some(url), Some(secret)) => Some(Arc::new(
            alerts::AlertSender::start(url.clone(), secret.expose().to_owned(), store.clone(), stop_rx.clone())
                .map_err(StartError::Config)?,
        )),
        _ => None,
    };
    let monitor_interval = Duration::from_millis(config.monitor_interval_ms);
    tokio::spawn(monitor::run(store.clone(), alerts.clone(), monitor_interval, stop_rx.clone()));
    let holder = forward::holder_name();
    let forward_settings = options.forward_settings.clone().unwrap_or_default();
    let forwarder = forward::Forwarder::start(store.clone(), key.clone(), alerts, forward_settings, holder.clone(), stop_rx.clone());
    let retention = forward::retention::Retention {
        events: config.event_retention(),
        max_backlog: config.forward_max_backlog(),
        every: options.retention_interval.unwrap_or(Duration::from_secs(60)),
    };
    tokio::spawn(forward::retention::run(store.clone(), retention, holder, metrics.clone(), stop_rx.clone()));
    let check_interval = options.subscription_check_interval.unwrap_or(gcp::check::DEFAULT_INTERVAL);
    tokio::spawn(gcp::check::run(store.clone(), pubsub_api, public_url.clone(), check_interval, stop_rx.clone()));
    if config.graph_upkeep {
        let api = microsoft::GraphApi::new(&config.graph_endpoint, &config.microsoft_login_endpoint).map_err(StartError::Config)?;
        let upkeep = microsoft::Upkeep {
            store: store.clone(),
            key: key.clone(),
            api: Arc::new(api),
            public_url: public_url.clone(),
            interval: options.graph_upkeep_interval.unwrap_or(microsoft::upkeep::DEFAULT_INTERVAL),
            handle: graph_upkeep.clone(),
        };
        tokio::spawn(upkeep.run(stop_rx.clone()));
    } else {
        tracing::info!("Graph subscription upkeep is off on this replica (PUSHGATE_GRAPH_UPKEEP=false)");
    }
    let state = AppState {
        store: store.clone(),
        ingest,
        confirmer,
        key,
        admin_tokens: Arc::new(tokens),
        sessions: Arc::default(),
        public_url: public_url.clone(),
        max_body_bytes: config.max_body_bytes,
        body_budget: BodyBudget::new(config.max_buffered_body_bytes),
        metrics,
        graph_upkeep,
        forwarder,
    };
    let limits = Limits {
        request_timeout: Duration::from_millis(config.request_timeout_ms),
        max_concurrent_requests: config.max_concurrent_requests,
    };
    let app = http::router(state, limits).into_make_service_with_connect_info::<SocketAddr>();

    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    tracing::info!(address = %bound, public_url = %public_url, database = store.backend(), "pushgate listening");
    let mut stopping = stop_rx.clone();
    let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
        let _ = stopping.wait_for(|stop| *stop).await;
    });
    let mut stopped = stop_rx;
    let deadline = async {
        let _ = stopped.wait_for(|stop| *stop).await;
        tracing::info!("shutting down: finishing in-flight requests");
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        result = serve => result?,
        _ = deadline => tracing::warn!("in-flight requests did not finish within the shutdown grace; stopping anyway"),
    }
    tracing::info!("pushgate stopped");
    Ok(())
}

async fn tidy_periodically(ingest: std::sync::Weak<Ingest>) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tick.tick().await;
        match ingest.upgrade() {
            Some(i) => i.tidy(),
            None => return,
        }
    }
}

/// Folds latency samples into buckets every few seconds, so an unscraped server does not
/// keep them all; stops with the server.
async fn metrics_upkeep_periodically(metrics: std::sync::Weak<metrics::Metrics>) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tick.tick().await;
        match metrics.upgrade() {
            Some(m) => m.upkeep(),
            None => return,
        }
    }
}
