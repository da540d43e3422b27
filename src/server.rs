//! One server: [`run_with`] builds everything a replica runs (ingest, the background
//! jobs, forwarding, the HTTP app) from the configuration, then serves until shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::Config;
use crate::http::{AppState, BodyBudget, Limits};
use crate::ingest::Ingest;
use crate::passes::Passes;
use crate::startup::{admin_tokens, master_key, open_store, StartError};
use crate::{alerts, aws, canary, forward, gcp, http, jobs, metrics, microsoft, monitor, outbound, sources};

/// Longest outbound request (SNS certificate fetch, SubscribeURL confirmation).
const OUTBOUND_TIMEOUT: Duration = Duration::from_secs(10);

/// How long in-flight requests may run on after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

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
    /// Tests: run the Office 365 subscription upkeep this often instead of every minute.
    pub o365_upkeep_interval: Option<Duration>,
    /// Tests: forwarding's backoff, polling and lease timings.
    pub forward_settings: Option<forward::Settings>,
    /// Tests: run retention this often instead of every minute.
    pub retention_interval: Option<Duration>,
    /// Tests: counts the health monitor's completed passes.
    pub monitor_passes: Passes,
    /// Tests: counts the Graph subscription upkeep's completed passes.
    pub graph_upkeep_passes: Passes,
    /// Tests: counts the Office 365 subscription upkeep's completed passes.
    pub o365_upkeep_passes: Passes,
    /// Tests: counts the Office 365 content fetch's completed passes.
    pub o365_fetch_passes: Passes,
    /// Tests: the Office 365 content fetch looks at its queue this often instead of every second.
    pub o365_fetch_poll: Option<Duration>,
    /// Tests: run the Graph catch-up this often instead of every minute.
    pub graph_catch_up_interval: Option<Duration>,
    /// Tests: read at most this many delta pages per connection and pass instead of 20.
    pub graph_catch_up_pages_per_pass: Option<u32>,
    /// Tests: counts the Graph catch-up's completed passes.
    pub graph_catch_up_passes: Passes,
    /// Tests: the job leases' TTL and renewal period instead of 20 s and 5 s.
    pub job_leases: Option<jobs::LeaseSettings>,
}

/// Serves on `listener` until `shutdown` completes, then finishes in-flight requests
/// (for at most 30 s) and returns.
pub async fn run(config: Config, listener: TcpListener, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), StartError> {
    run_with(config, listener, shutdown, RunOptions::default()).await
}

/// How long a fetch of Microsoft's signing keys may take (it sits on Graph's push path).
const MICROSOFT_KEYS_FETCH_TIMEOUT: Duration = Duration::from_secs(2);

/// [`run`], with the settings of [`RunOptions`].
#[doc(hidden)]
pub async fn run_with(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    options: RunOptions,
) -> Result<(), StartError> {
    build(config, listener, options).await?.serve(shutdown).await
}

/// A replica, built and with its background jobs running, not yet serving.
pub struct Server {
    listener: TcpListener,
    app: axum::extract::connect_info::IntoMakeServiceWithConnectInfo<axum::Router, SocketAddr>,
    public_url: String,
    backend: &'static str,
    stop_tx: watch::Sender<bool>,
    stop_rx: watch::Receiver<bool>,
}

/// Opens the store, key and tokens, builds the senders, ingest and the HTTP app, and
/// starts the background jobs (monitor, canaries, alerts, forwarding, retention, the
/// Pub/Sub check, the Graph and Office 365 upkeeps, the Graph catch-up, the Office 365
/// content fetch), which stop when the server does. The canaries, alert deliveries, the
/// Pub/Sub check, the upkeeps, the catch-up and the fetch run only while this replica holds
/// their job lease (see `jobs.rs`).
pub async fn build(config: Config, listener: TcpListener, options: RunOptions) -> Result<Server, StartError> {
    // Libraries that use rustls without choosing a provider (the Pub/Sub client) get
    // aws-lc-rs, the one crypto library of pushgate. Already installed: nothing to do.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let store = open_store(&config.database).await?;
    let key = master_key(&config.secrets.master_key, store.as_ref()).await?;
    let tokens = admin_tokens(store.as_ref(), config.secrets.admin_token.as_ref()).await?;
    let bound = listener.local_addr()?;
    let public_url = config.public_url_for(bound);
    let sns_api = Arc::new(aws::SnsApi::new(config.cloud.aws.clone()));
    let test_transport = options.outbound_test_transport.as_ref();
    let outbound = outbound::https_client(OUTBOUND_TIMEOUT, test_transport).map_err(StartError::Config)?;
    let confirmer = Arc::new(aws::Confirmer::new(sns_api.clone(), outbound.clone()));
    let mut sns_certs = sources::aws_sns::certs::CertStore::new(config.keys.sns_certs.pinned_dir.clone(), config.keys.sns_certs.fetch)
        .map_err(|e| StartError::Config(e.to_string()))?;
    if let Some(t) = test_transport {
        sns_certs = sns_certs.with_test_transport((&t.host, t.addr), t.root_der.clone()).map_err(|e| StartError::Config(e.to_string()))?;
    }
    let sns_certs = Arc::new(sns_certs);
    let google_keys = sources::gcp_pubsub::keys::GoogleKeys::from_setting(&config.keys.google_jwks)
        .map_err(|e| StartError::Config(format!("PUSHGATE_GOOGLE_JWKS: {e}")))?;
    // The error names PUSHGATE_MICROSOFT_JWKS already.
    // Graph counts an answer over about 3 s as slow: a key fetch on that path gets 2 s.
    let microsoft_keys = sources::ms_graph::keys::MicrosoftKeys::from_setting(&config.keys.microsoft_jwks)
        .and_then(|keys| keys.with_fetch_timeout(MICROSOFT_KEYS_FETCH_TIMEOUT))
        .map_err(|e| StartError::Config(e.to_string()))?;
    let senders = sources::Senders::new(sns_certs, Arc::new(google_keys), Arc::new(microsoft_keys));
    let metrics = Arc::new(metrics::Metrics::new());
    // Latency samples are folded into buckets every few seconds, so an unscraped server
    // does not keep them all.
    tokio::spawn(every(Duration::from_secs(5), Arc::downgrade(&metrics), metrics::Metrics::upkeep));
    // Built before ingest so a stored Graph lifecycle notification can start a pass (of the
    // upkeep, or of the catch-up).
    let graph_upkeep = microsoft::UpkeepHandle::new();
    let o365_upkeep = microsoft::o365::upkeep::UpkeepHandle::new();
    let catch_up_handle = microsoft::CatchUpHandle::default();
    let ingest = Arc::new(Ingest::new(
        store.clone(),
        key.clone(),
        senders,
        confirmer.clone(),
        metrics.clone(),
        graph_upkeep.clone(),
        catch_up_handle.clone(),
    ));
    tokio::spawn(every(Duration::from_secs(60), Arc::downgrade(&ingest), Ingest::tidy));
    let (stop_tx, stop_rx) = watch::channel(false);
    let holder = forward::holder_name();
    // The jobs below that act on the world outside (Graph subscriptions, canary
    // publishes, subscription checks, alert webhook POSTs) run on one replica at a time.
    let leases = jobs::Leases {
        store: store.clone(),
        holder: holder.clone(),
        settings: options.job_leases.unwrap_or_default(),
        metrics: metrics.clone(),
    };
    let pubsub_api = Arc::new(gcp::PubSubApi::new(config.cloud.pubsub.clone()));
    let publishers = canary::Publishers { sns: sns_api, pubsub: pubsub_api.clone() };
    {
        let (store, stop) = (store.clone(), stop_rx.clone());
        leases.spawn("canaries", stop_rx.clone(), move |_| canary::run(store.clone(), publishers.clone(), stop.clone()));
    }
    // Alerts are queued by every replica and delivered by the holder of their lease.
    let alerts = config.alerts.map(|webhook| (Arc::new(alerts::AlertSender::new(store.clone(), metrics.clone())), webhook));
    if let Some((sender, webhook)) = &alerts {
        let target = alerts::Target::new(webhook.clone()).map_err(StartError::Config)?;
        let (store, queued) = (store.clone(), sender.wakes());
        leases.spawn("alerts", stop_rx.clone(), move |lease| alerts::deliver(store.clone(), target.clone(), lease, queued.clone()));
    }
    let alerts = alerts.map(|(sender, _)| sender);
    tokio::spawn(monitor::run(store.clone(), alerts.clone(), config.monitor_interval, options.monitor_passes.clone(), stop_rx.clone()));
    let forward_settings = options.forward_settings.clone().unwrap_or_default();
    let forwarder =
        forward::Forwarder::start(store.clone(), key.clone(), alerts.clone(), forward_settings, holder.clone(), stop_rx.clone());
    let retention = forward::retention::Retention {
        events: config.retention.events(),
        max_backlog: config.retention.max_backlog(),
        every: options.retention_interval.unwrap_or(Duration::from_secs(60)),
    };
    {
        let (store, metrics, stop) = (store.clone(), metrics.clone(), stop_rx.clone());
        leases
            .spawn("retention", stop_rx.clone(), move |_| forward::retention::run(store.clone(), retention, metrics.clone(), stop.clone()));
    }
    let check_interval = options.subscription_check_interval.unwrap_or(gcp::check::DEFAULT_INTERVAL);
    {
        let (store, url, stop) = (store.clone(), public_url.clone(), stop_rx.clone());
        leases.spawn("pubsub_check", stop_rx.clone(), move |_| {
            gcp::check::run(store.clone(), pubsub_api.clone(), url.clone(), check_interval, stop.clone())
        });
    }
    // One Management API client (and token cache) for the content fetch and the upkeep.
    let manage_api =
        Arc::new(microsoft::o365::ManageApi::new(&config.graph.login_endpoint, &config.graph.o365_endpoints).map_err(StartError::Config)?);
    {
        let fetcher = microsoft::o365::fetch::Fetcher {
            store: store.clone(),
            key: key.clone(),
            api: manage_api.clone(),
            metrics: metrics.clone(),
            alerts: alerts.clone(),
            poll: options.o365_fetch_poll.unwrap_or(microsoft::o365::fetch::DEFAULT_POLL),
            passes: options.o365_fetch_passes.clone(),
        };
        leases.spawn(microsoft::o365::fetch::JOB, stop_rx.clone(), move |lease| fetcher.clone().run(lease));
    }
    if config.graph.upkeep {
        let api = Arc::new(microsoft::GraphApi::new(&config.graph.endpoint, &config.graph.login_endpoint).map_err(StartError::Config)?);
        let catch_up = microsoft::CatchUp {
            store: store.clone(),
            key: key.clone(),
            api: api.clone(),
            interval: options.graph_catch_up_interval.unwrap_or(microsoft::catch_up::DEFAULT_INTERVAL),
            pages_per_pass: options.graph_catch_up_pages_per_pass.unwrap_or(microsoft::catch_up::DEFAULT_PAGES_PER_PASS),
            handle: catch_up_handle.clone(),
            passes: options.graph_catch_up_passes.clone(),
            metrics: metrics.clone(),
        };
        let stop = stop_rx.clone();
        leases.spawn("graph_catch_up", stop_rx.clone(), move |_| catch_up.clone().run(stop.clone()));
        let base = microsoft::runner::Base {
            store: store.clone(),
            key: key.clone(),
            public_url: public_url.clone(),
            interval: options.graph_upkeep_interval.unwrap_or(microsoft::upkeep::DEFAULT_INTERVAL),
            passes: options.graph_upkeep_passes.clone(),
            alerts,
        };
        let upkeep = microsoft::Upkeep { base: base.clone(), api, handle: graph_upkeep.clone(), catch_up: catch_up_handle };
        let stop = stop_rx.clone();
        leases.spawn("graph_upkeep", stop_rx.clone(), move |_| upkeep.clone().run(stop.clone()));
        let base = microsoft::runner::Base {
            interval: options.o365_upkeep_interval.unwrap_or(microsoft::o365::upkeep::DEFAULT_INTERVAL),
            passes: options.o365_upkeep_passes.clone(),
            ..base
        };
        let upkeep = microsoft::o365::upkeep::Upkeep { base, api: manage_api, handle: o365_upkeep.clone() };
        let stop = stop_rx.clone();
        leases.spawn("o365_upkeep", stop_rx.clone(), move |_| upkeep.clone().run(stop.clone()));
    } else {
        tracing::info!("Microsoft subscription upkeep is off on this replica (PUSHGATE_GRAPH_UPKEEP=false): it never takes the Graph or Office 365 upkeep's lease");
    }
    let state = AppState {
        store: store.clone(),
        ingest,
        confirmer,
        key,
        admin_tokens: Arc::new(tokens),
        sessions: Arc::default(),
        public_url: public_url.clone(),
        max_body_bytes: config.http.max_body_bytes,
        trusted_proxies: Arc::new(config.trusted_proxies.clone()),
        body_budget: BodyBudget::new(config.http.max_buffered_body_bytes),
        metrics,
        graph_upkeep,
        o365_upkeep,
        forwarder,
    };
    let limits = Limits { request_timeout: config.http.request_timeout, max_concurrent_requests: config.http.max_concurrent_requests };
    let app = http::router(state, limits).into_make_service_with_connect_info::<SocketAddr>();
    Ok(Server { listener, app, public_url, backend: store.backend(), stop_tx, stop_rx })
}

impl Server {
    /// Serves until `shutdown` completes, then finishes in-flight requests (for at most
    /// 30 s) and returns; the background jobs stop with it.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), StartError> {
        let Server { listener, app, public_url, backend, stop_tx, stop_rx } = self;
        let bound = listener.local_addr()?;
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        });
        tracing::info!(address = %bound, public_url = %public_url, database = backend, "pushgate listening");
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
}

/// Calls `work` on `owner` every `period` while the server that owns it lives (the loop
/// holds it weakly and ends when it is dropped).
async fn every<T: Send + Sync + 'static>(period: Duration, owner: std::sync::Weak<T>, work: fn(&T)) {
    let mut tick = tokio::time::interval(period);
    loop {
        tick.tick().await;
        match owner.upgrade() {
            Some(owner) => work(&owner),
            None => return,
        }
    }
}
