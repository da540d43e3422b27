//! The HTTP face of pushgate: the router, its layers (request id, tracing, timeout,
//! concurrency limit with load shedding, panic catcher, body limits, request metrics) and
//! the handlers.
//! This is the only module that imports axum.

mod admin;
pub mod auth;
mod client_addr;
mod dashboard;
mod destinations;
mod error;
mod extract;
mod metrics;
mod probes;
mod push;
pub mod sessions;
pub mod views;

use std::sync::Arc;
use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{BoxError, Router};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

pub use auth::AdminTokens;
pub use error::ApiError;

use crate::crypto::MasterKey;
use crate::ingest::Ingest;
use crate::metrics::Metrics;
use crate::store::Store;

/// What every handler can reach. Cheap to clone: everything is behind an `Arc`.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub ingest: Arc<Ingest>,
    /// Confirms SNS subscriptions an admin approves (`auto_confirm: false`).
    pub confirmer: Arc<crate::aws::Confirmer>,
    pub key: Arc<MasterKey>,
    pub admin_tokens: Arc<AdminTokens>,
    /// Dashboard logins (`POST /login`), in memory only.
    pub sessions: Arc<sessions::Sessions>,
    /// Base URL the clouds reach us at, without a trailing slash.
    pub public_url: String,
    pub max_body_bytes: usize,
    /// Proxies whose `X-Forwarded-For` names the sender of a push.
    pub trusted_proxies: Arc<crate::config::TrustedProxies>,
    /// Bytes of push bodies that may be buffered at once, across all requests.
    pub body_budget: BodyBudget,
    /// This server's Prometheus recorder (requests, rejections), shared with ingest.
    pub metrics: Arc<Metrics>,
    /// Starts a Graph subscription upkeep pass now (after a lifecycle notification).
    pub graph_upkeep: crate::microsoft::UpkeepHandle,
    /// Starts an Office 365 subscription upkeep pass now (after an admin change).
    pub o365_upkeep: crate::microsoft::o365::upkeep::UpkeepHandle,
    /// Wakes a destination's delivery after an admin changed it.
    pub forwarder: crate::forward::Forwarder,
}

/// A budget of buffered push-body memory, in KiB permits.
#[derive(Clone)]
pub struct BodyBudget {
    permits: Arc<tokio::sync::Semaphore>,
}

impl BodyBudget {
    pub fn new(total_bytes: usize) -> BodyBudget {
        BodyBudget { permits: Arc::new(tokio::sync::Semaphore::new(total_bytes.div_ceil(1024))) }
    }

    /// Reserves room for a body: its declared length, else the limit. `None` when the
    /// budget is spent right now.
    pub fn reserve(&self, declared: Option<u64>, limit: usize) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let bytes = declared.map_or(limit, |n| usize::try_from(n).unwrap_or(usize::MAX)).min(limit).max(1);
        let kib = u32::try_from(bytes.div_ceil(1024)).unwrap_or(u32::MAX);
        self.permits.clone().try_acquire_many_owned(kib).ok()
    }
}

/// Limits applied to every request.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub request_timeout: Duration,
    pub max_concurrent_requests: usize,
}

/// Admin request bodies (connection configs) are small.
pub(crate) const ADMIN_BODY_LIMIT: usize = 256 * 1024;

pub fn router(state: AppState, limits: Limits) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    let request_metrics = axum::middleware::from_fn_with_state(state.metrics.clone(), metrics::track_requests);
    let v1 = Router::new()
        .route("/connections", post(admin::create).get(admin::list))
        .route("/connections/{id}", get(admin::get).patch(admin::patch).delete(admin::delete))
        .route("/connections/{id}/pause", post(admin::pause))
        .route("/connections/{id}/resume", post(admin::resume))
        .route("/connections/{id}/confirm", post(admin::confirm))
        .route("/connections/{id}/events", get(admin::events))
        .route("/connections/{id}/rejections", get(admin::rejections))
        .route("/connections/{id}/history", get(admin::history))
        .route("/health", get(admin::health))
        .route("/sources", get(admin::sources))
        .route("/destinations", post(destinations::create).get(destinations::list))
        .route("/destinations/{id}", get(destinations::get).patch(destinations::patch).delete(destinations::delete))
        .route("/destinations/{id}/pause", post(destinations::pause))
        .route("/destinations/{id}/resume", post(destinations::resume))
        .route("/destinations/{id}/dead-letters", get(destinations::dead_letters))
        .route("/destinations/{id}/dead-letters/replay", post(destinations::replay))
        .route("/events", get(destinations::feed))
        .layer(DefaultBodyLimit::max(ADMIN_BODY_LIMIT));
    Router::new()
        .nest("/v1", v1)
        .route("/push/{source}/{id}", post(push::push))
        .route("/push/{source}/{id}/lifecycle", post(push::push))
        .route("/", get(dashboard::show))
        .route("/connections/{id}", get(dashboard::show_connection))
        .route("/login", post(dashboard::login).layer(DefaultBodyLimit::max(dashboard::LOGIN_BODY_LIMIT)))
        .route("/logout", post(dashboard::logout))
        .route("/healthz", get(probes::healthz))
        .route("/readyz", get(probes::readyz))
        .route("/metrics", get(metrics::scrape))
        .fallback(probes::not_found)
        .method_not_allowed_fallback(probes::method_not_allowed)
        .with_state(state)
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
                .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                    let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
                    tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
                }))
                .layer(PropagateRequestIdLayer::new(request_id))
                .layer(CatchPanicLayer::custom(|_| {
                    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error").into_response()
                }))
                .layer(HandleErrorLayer::new(|error: BoxError| async move {
                    if error.is::<tower::timeout::error::Elapsed>() {
                        ApiError::unavailable("timeout", "the request took too long; retry later")
                    } else {
                        ApiError::unavailable("overloaded", "the server is at its request limit; retry later")
                    }
                }))
                .load_shed()
                // Global: `Router::layer` applies this stack to each route, and a plain
                // concurrency limit would count each route on its own.
                .layer(tower::limit::GlobalConcurrencyLimitLayer::new(limits.max_concurrent_requests))
                .timeout(limits.request_timeout),
        )
        // Outermost, so shed, timed-out and panicking requests are counted with their
        // answers; `Router::layer` wraps each route, so the matched route is known here.
        .layer(request_metrics)
}
