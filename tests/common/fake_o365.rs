//! A stand-in for the Office 365 Management Activity API and the identity platform's token
//! endpoint on 127.0.0.1 (plain http: pushgate is allowed to call it through
//! `PUSHGATE_O365_ENDPOINTS` = its base, and gets tokens from
//! `PUSHGATE_MICROSOFT_LOGIN_ENDPOINT` = `{base}/login`).
//!
//! It follows "Office 365 Management Activity API reference" (learn.microsoft.com; the
//! sample bodies are in tests/fixtures/o365, see PROVENANCE.md):
//! - `POST /api/v1.0/{tenant}/activity/feed/subscriptions/start?contentType=...`, body
//!   `{"webhook": {"address", "authId", "expiration"}}`: like Microsoft, it first POSTs a
//!   validation `{"validationCode": "..."}` with `Webhook-AuthID` to the address and
//!   refuses with 400 `AF20021` ("The webhook endpoint ... could not be validated. The
//!   endpoint did not return HTTP 200.") unless it answers 200; then answers the
//!   subscription `{"contentType", "status": "enabled", "webhook": {"status", "address",
//!   "authId", "expiration"}}`. A start that changes nothing of an enabled subscription
//!   answers 400 `AF20024` ("The subscription is already enabled. No property change.").
//! - `GET .../subscriptions/list`: every subscription of the tenant, as a list.
//! - `POST .../subscriptions/stop?contentType=...`: 204, or 400 `AF20022` ("No
//!   subscription found for the specified content type.").
//! - `GET .../audit/{contentId}`: the blob's records (a JSON list); an unknown one is 400
//!   `AF20050`; while throttling, 429 `AF429` ("Too many requests. Method=GET,
//!   PublisherId=...") with `Retry-After`; while failing, 500 `AF50000` ("An internal error
//!   occurred. Retry the request.").
//!
//! Errors have the reference's shape `{"error": {"code": "AF...", "message": "..."}}`;
//! without a token it issued, the API answers 401. Every request is recorded (method,
//! path, query, body, when) for assertions. Blobs are made with [`FakeO365::publish`], and
//! [`FakeO365::notify`] POSTs their notifications as Microsoft does.

#[path = "fake_login.rs"]
mod fake_login;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{Duration as ChronoDuration, Utc};
use serde_json::{json, Value};

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: String,
    pub body: String,
    pub at: Instant,
}

#[derive(Default)]
struct Shared {
    base: String,
    client_id: String,
    client_secret: String,
    fail_tokens: AtomicBool,
    fail_blobs: AtomicBool,
    /// Blob GETs still to answer 429, and the `Retry-After` they carry.
    throttled: AtomicU64,
    retry_after_seconds: AtomicU64,
    tokens: Mutex<Vec<String>>,
    /// By (tenant, content type): the subscription as the list answers it.
    subscriptions: Mutex<HashMap<(String, String), Value>>,
    /// By content id: the blob's records.
    blobs: Mutex<HashMap<String, Vec<Value>>>,
    requests: Mutex<Vec<Recorded>>,
    /// See [`FakeO365::fail_lists`].
    lists_unavailable: AtomicBool,
}

pub struct FakeO365 {
    pub base: String,
    shared: Arc<Shared>,
    client: reqwest::Client,
}

impl FakeO365 {
    /// Serves on 127.0.0.1 port 0; tokens are issued to `client_id` with `client_secret`
    /// only, for the scope `{base}/.default`.
    pub async fn start(client_id: &str, client_secret: &str) -> FakeO365 {
        // The fake's own HTTP clients (validation POSTs, notifications) need a TLS provider.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let shared =
            Arc::new(Shared { base: base.clone(), client_id: client_id.into(), client_secret: client_secret.into(), ..Default::default() });
        let feed = "/api/v1.0/{tenant}/activity/feed";
        let app = Router::new()
            .route("/login/{tenant}/oauth2/v2.0/token", post(token))
            .route(&format!("{feed}/subscriptions/start"), post(start))
            .route(&format!("{feed}/subscriptions/list"), get(list))
            .route(&format!("{feed}/subscriptions/stop"), post(stop))
            .route(&format!("{feed}/audit/{{content_id}}"), get(blob))
            .layer(axum::middleware::from_fn_with_state(shared.clone(), record))
            .with_state(shared.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeO365 { base, shared, client: reqwest::Client::new() }
    }

    /// The settings that point pushgate at this fake.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("PUSHGATE_O365_ENDPOINTS".into(), self.base.clone()),
            ("PUSHGATE_MICROSOFT_LOGIN_ENDPOINT".into(), format!("{}/login", self.base)),
        ]
    }

    /// The value of a connection's `subscription.endpoint`.
    pub fn endpoint(&self) -> String {
        self.base.clone()
    }

    /// The token endpoint answers 401 `invalid_client` (with the secret in its text, so a
    /// leak of it anywhere downstream shows).
    pub fn fail_tokens(&self, on: bool) {
        self.shared.fail_tokens.store(on, Ordering::SeqCst);
    }

    /// Every blob GET answers 500 `AF50000`.
    pub fn fail_blobs(&self, on: bool) {
        self.shared.fail_blobs.store(on, Ordering::SeqCst);
    }

    /// The next `times` blob GETs answer 429 `AF429` with `Retry-After: retry_after_seconds`.
    pub fn throttle(&self, times: u64, retry_after_seconds: u64) {
        self.shared.retry_after_seconds.store(retry_after_seconds, Ordering::SeqCst);
        self.shared.throttled.store(times, Ordering::SeqCst);
    }

    /// The webhook of `content_type`'s subscription turns `disabled`, as Microsoft does
    /// after too many failed notifications.
    pub fn disable(&self, tenant: &str, content_type: &str) {
        if let Some(s) = self.shared.subscriptions.lock().unwrap().get_mut(&(tenant.to_owned(), content_type.to_owned())) {
            s["webhook"]["status"] = json!("disabled");
        }
    }

    /// The webhook of `content_type`'s subscription pushes to `address` instead, as if
    /// someone changed it on Microsoft's side.
    pub fn move_webhook(&self, tenant: &str, content_type: &str, address: &str) {
        if let Some(s) = self.shared.subscriptions.lock().unwrap().get_mut(&(tenant.to_owned(), content_type.to_owned())) {
            s["webhook"]["address"] = json!(address);
        }
    }

    /// The subscriptions held, as the list answers them.
    pub fn subscriptions(&self, tenant: &str) -> Vec<Value> {
        let held = self.shared.subscriptions.lock().unwrap();
        let mut list: Vec<Value> = held.iter().filter(|((t, _), _)| t == tenant).map(|(_, s)| s.clone()).collect();
        list.sort_by_key(|s| s["contentType"].as_str().unwrap_or_default().to_owned());
        list
    }

    /// Makes a blob of `records` available for `tenant` and returns its content
    /// notification (created now, expiring in 7 days, as Microsoft keeps content).
    pub fn publish(&self, tenant: &str, content_type: &str, records: Vec<Value>) -> Value {
        let now = Utc::now();
        let content_id =
            format!("{}${}${}", now.timestamp_micros(), uuid::Uuid::new_v4().simple(), content_type.replace('.', "_").to_lowercase());
        self.shared.blobs.lock().unwrap().insert(content_id.clone(), records);
        let time = |t: chrono::DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        json!({
            "tenantId": tenant,
            "clientId": self.shared.client_id,
            "contentType": content_type,
            "contentId": content_id,
            "contentUri": format!("{}/api/v1.0/{tenant}/activity/feed/audit/{content_id}", self.base),
            "contentCreated": time(now),
            "contentExpiration": time(now + ChronoDuration::days(7)),
        })
    }

    /// POSTs `notifications` to `push_url` with `Webhook-AuthID: auth_id`, as Microsoft
    /// delivers them; pushgate's answer status.
    pub async fn notify(&self, push_url: &str, auth_id: &str, notifications: &[Value]) -> u16 {
        let answer = self
            .client
            .post(push_url)
            .header("Webhook-AuthID", auth_id)
            .header("content-type", "application/json; charset=utf-8")
            .body(Value::Array(notifications.to_vec()).to_string())
            .send()
            .await
            .unwrap();
        answer.status().as_u16()
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// Recorded requests with this method whose path ends with `suffix`.
    pub fn count(&self, method: &str, suffix: &str) -> usize {
        self.requests().iter().filter(|r| r.method == method && r.path.ends_with(suffix)).count()
    }
}

async fn record(State(shared): State<Arc<Shared>>, request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
    shared.requests.lock().unwrap().push(Recorded {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or_default().to_owned(),
        body: String::from_utf8_lossy(&bytes).into_owned(),
        at: Instant::now(),
    });
    next.run(axum::extract::Request::from_parts(parts, axum::body::Body::from(bytes))).await
}

fn api_error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({"error": {"code": code, "message": message}}))).into_response()
}

async fn token(State(shared): State<Arc<Shared>>, Path(_tenant): Path<String>, body: Bytes) -> Response {
    let registration = fake_login::Registration {
        client_id: &shared.client_id,
        client_secret: &shared.client_secret,
        scope: &format!("{}/.default", shared.base),
    };
    let (token, answer) = fake_login::answer(&body, &registration, shared.fail_tokens.load(Ordering::SeqCst), "fake-o365-token");
    shared.tokens.lock().unwrap().extend(token);
    answer
}

/// The refusal for a request without a token this fake issued.
fn unauthorized(shared: &Shared, headers: &HeaderMap) -> Option<Response> {
    let bearer = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    if bearer.is_some_and(|t| shared.tokens.lock().unwrap().iter().any(|issued| issued == t)) {
        return None;
    }
    Some(api_error(
        StatusCode::UNAUTHORIZED,
        "AF10001",
        "The permission set () sent in the request did not include the expected permission.",
    ))
}

async fn start(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refusal) = unauthorized(&shared, &headers) {
        return refusal;
    }
    let Some(content_type) = query.get("contentType").cloned() else {
        return api_error(StatusCode::BAD_REQUEST, "AF20001", "Missing parameter: contentType.");
    };
    let body: Value = serde_json::from_slice(&body).unwrap_or_default();
    let address = body["webhook"]["address"].as_str().unwrap_or_default().to_owned();
    let auth_id = body["webhook"]["authId"].as_str().unwrap_or_default().to_owned();
    let key = (tenant.clone(), content_type.clone());
    let unchanged = shared.subscriptions.lock().unwrap().get(&key).is_some_and(|held| {
        held["status"] == "enabled"
            && held["webhook"]["status"] == "enabled"
            && held["webhook"]["address"] == json!(address)
            && held["webhook"]["authId"] == json!(auth_id)
    });
    if unchanged {
        return api_error(StatusCode::BAD_REQUEST, "AF20024", "The subscription is already enabled. No property change.");
    }
    // Microsoft validates the webhook before it takes it.
    let validation = reqwest::Client::new()
        .post(&address)
        .header("Webhook-AuthID", &auth_id)
        .header("Webhook-ValidationCode", "fake-validation-code")
        .header("content-type", "application/json")
        .body(json!({"validationCode": uuid::Uuid::new_v4().to_string()}).to_string())
        .timeout(std::time::Duration::from_secs(10))
        .send()
        .await;
    if !validation.is_ok_and(|answer| answer.status() == StatusCode::OK) {
        return api_error(
            StatusCode::BAD_REQUEST,
            "AF20021",
            &format!("The webhook endpoint {{{address}) could not be validated. The endpoint did not return HTTP 200."),
        );
    }
    let subscription = json!({
        "contentType": content_type,
        "status": "enabled",
        "webhook": {"status": "enabled", "address": address, "authId": auth_id, "expiration": null},
    });
    shared.subscriptions.lock().unwrap().insert(key, subscription.clone());
    Json(subscription).into_response()
}

async fn list(State(shared): State<Arc<Shared>>, Path(tenant): Path<String>, headers: HeaderMap) -> Response {
    if let Some(refusal) = unauthorized(&shared, &headers) {
        return refusal;
    }
    if let Some(outage) = list_outage(&shared) {
        return outage;
    }
    let held = shared.subscriptions.lock().unwrap();
    let mut list: Vec<Value> = held.iter().filter(|((t, _), _)| *t == tenant).map(|(_, s)| s.clone()).collect();
    list.sort_by_key(|s| s["contentType"].as_str().unwrap_or_default().to_owned());
    Json(list).into_response()
}

async fn stop(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Some(refusal) = unauthorized(&shared, &headers) {
        return refusal;
    }
    let content_type = query.get("contentType").cloned().unwrap_or_default();
    match shared.subscriptions.lock().unwrap().remove(&(tenant, content_type)) {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => api_error(StatusCode::BAD_REQUEST, "AF20022", "No subscription found for the specified content type."),
    }
}

async fn blob(State(shared): State<Arc<Shared>>, Path((tenant, content_id)): Path<(String, String)>, headers: HeaderMap) -> Response {
    if let Some(refusal) = unauthorized(&shared, &headers) {
        return refusal;
    }
    let throttled = shared.throttled.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
    if throttled {
        let mut answer = api_error(StatusCode::TOO_MANY_REQUESTS, "AF429", &format!("Too many requests. Method=GET, PublisherId={tenant}"));
        let seconds = shared.retry_after_seconds.load(Ordering::SeqCst).to_string();
        answer.headers_mut().insert("retry-after", seconds.parse().unwrap());
        return answer;
    }
    if shared.fail_blobs.load(Ordering::SeqCst) {
        return api_error(StatusCode::INTERNAL_SERVER_ERROR, "AF50000", "An internal error occurred. Retry the request.");
    }
    match shared.blobs.lock().unwrap().get(&content_id) {
        Some(records) => Json(Value::Array(records.clone())).into_response(),
        None => api_error(StatusCode::BAD_REQUEST, "AF20050", &format!("The specified content ({content_id}) does not exist.")),
    }
}

// Switches of the subscription upkeep's tests (tests/o365_upkeep.rs).

impl FakeO365 {
    /// Every `subscriptions/list` answers 503, as during an outage of the service.
    pub fn fail_lists(&self, on: bool) {
        self.shared.lists_unavailable.store(on, Ordering::SeqCst);
    }
}

/// The answer of `subscriptions/list` while [`FakeO365::fail_lists`] is on.
fn list_outage(shared: &Shared) -> Option<Response> {
    shared
        .lists_unavailable
        .load(Ordering::SeqCst)
        .then(|| api_error(StatusCode::SERVICE_UNAVAILABLE, "AF50000", "An internal error occurred. Retry the request."))
}
