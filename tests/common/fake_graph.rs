//! A stand-in for Microsoft Graph's `/subscriptions` and the identity platform's token
//! endpoint on 127.0.0.1 (plain http: pushgate reaches it through
//! `PUSHGATE_GRAPH_ENDPOINT` = `{base}/v1.0` and `PUSHGATE_MICROSOFT_LOGIN_ENDPOINT` =
//! `{base}/login`).
//!
//! Like Graph, a create first POSTs `?validationToken=...` to the notification URL and to
//! the lifecycle notification URL, and refuses the subscription unless each answers 200
//! `text/plain` with the token, exactly. The token holds characters that need URL
//! encoding. `GET /subscriptions/{id}` and a renewal answer the subscription as the fake
//! holds it. Switches make the token endpoint refuse the client secret, make Graph refuse
//! every subscription call (403: no permission), make it unavailable (503), make its
//! validation of the push URLs fail, change what a held subscription delivers, make
//! subscriptions vanish (404), and set the lifetime Graph grants. Every request is
//! recorded (method, path, body) for assertions.
//!
//! Delta queries (`GET {resource}/delta`) read a collection the test fills with
//! [`FakeGraph::change`]: a log of items as a delta answers them (an item, or one marked
//! `@removed`). Like Graph ("Use delta query to track changes in Microsoft Graph data"), a
//! round without a state token reads everything so far; `$deltatoken=latest` (or
//! `token=latest`) answers no items and the link of the next round; a round is read in
//! pages of [`DELTA_PAGE`] items, each page but the last with an `@odata.nextLink`
//! (`$skiptoken`), the last with an `@odata.deltaLink` (`$deltatoken`) that the next round
//! starts from. Answers have the documented shape (`@odata.context`, the link, `value`).
//! [`FakeGraph::throttle`] makes the next delta requests answer 429 with a `Retry-After`.
//!
//! The refusals have the shapes Microsoft documents. Graph's errors ("Microsoft Graph
//! error responses and resource types"): `{"error": {"code": "...", "message": "...",
//! "innerError": {"request-id": "..."}}}`, with `ValidationError` and "Subscription
//! validation request failed..." for a notification URL that did not answer its
//! validation as it must (400, "Receive change notifications through webhooks"), and
//! `serviceNotAvailable` for 503. The identity platform's ("Microsoft identity platform
//! and the OAuth 2.0 client credentials flow", Error response): `{"error":
//! "invalid_client", "error_description": "AADSTS7000215: Invalid client secret
//! provided...", "error_codes": [7000215], ...}` with 401.
//!
//! One file: the routes share one state (issued tokens, held subscriptions, collections,
//! switches) and one request log, which every Graph test reads.

#![allow(dead_code)]

#[path = "fake_login.rs"]
mod fake_login;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::RawQuery;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// The query, percent-decoded (empty without one).
    pub query: String,
    pub body: String,
    pub at: std::time::Instant,
}

/// Items per delta page (the documented examples page by two).
pub const DELTA_PAGE: usize = 2;

/// A subscription the fake holds.
#[derive(Debug, Clone)]
pub struct FakeSubscription {
    pub id: String,
    pub body: Value,
    pub expires_at: DateTime<Utc>,
}

#[derive(Default)]
struct Shared {
    client_id: String,
    client_secret: String,
    fail_tokens: AtomicBool,
    refuse: AtomicBool,
    unavailable: AtomicBool,
    fail_validation: AtomicBool,
    /// Seconds Graph grants at most; 0: whatever was asked.
    max_lifetime_seconds: AtomicU64,
    tokens: Mutex<Vec<String>>,
    subscriptions: Mutex<HashMap<String, FakeSubscription>>,
    requests: Mutex<Vec<Recorded>>,
    /// Per lowercased resource path: the items changed so far, oldest first.
    collections: Mutex<HashMap<String, Vec<Value>>>,
    /// Delta requests still to answer 429, and the `Retry-After` they carry.
    throttled: AtomicU64,
    retry_after_seconds: AtomicU64,
}

pub struct FakeGraph {
    pub base: String,
    shared: Arc<Shared>,
}

impl FakeGraph {
    /// Serves on 127.0.0.1 port 0; tokens are issued to `client_id` with `client_secret` only.
    pub async fn start(client_id: &str, client_secret: &str) -> FakeGraph {
        let shared = Arc::new(Shared { client_id: client_id.into(), client_secret: client_secret.into(), ..Default::default() });
        let app = Router::new()
            .route("/login/{tenant}/oauth2/v2.0/token", post(token))
            .route("/v1.0/subscriptions", post(create))
            .route("/v1.0/subscriptions/{id}", get(read).patch(renew).delete(delete))
            .route("/v1.0/subscriptions/{id}/reauthorize", post(reauthorize))
            .route("/v1.0/{*path}", get(delta))
            .layer(axum::middleware::from_fn_with_state(shared.clone(), record))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeGraph { base, shared }
    }

    /// The settings that point pushgate at this fake.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("PUSHGATE_GRAPH_ENDPOINT".into(), format!("{}/v1.0", self.base)),
            ("PUSHGATE_MICROSOFT_LOGIN_ENDPOINT".into(), format!("{}/login", self.base)),
        ]
    }

    /// The token endpoint answers 401 `invalid_client` (with the secret in its text, so a
    /// leak of it anywhere downstream shows).
    pub fn fail_tokens(&self, on: bool) {
        self.shared.fail_tokens.store(on, Ordering::SeqCst);
    }

    /// Every create, renewal and reauthorization is refused with 403.
    pub fn refuse(&self, on: bool) {
        self.shared.refuse.store(on, Ordering::SeqCst);
    }

    /// Every subscription call answers 503 `serviceNotAvailable`: a failure that says
    /// nothing about the connection.
    pub fn unavailable(&self, on: bool) {
        self.shared.unavailable.store(on, Ordering::SeqCst);
    }

    /// The validation of the push URLs fails, as if something between Graph and pushgate
    /// (a proxy, a firewall) altered pushgate's answer: a create answers 400
    /// `ValidationError`.
    pub fn fail_validation(&self, on: bool) {
        self.shared.fail_validation.store(on, Ordering::SeqCst);
    }

    /// Sets `field` (`notificationUrl`, `resource`, `changeType`) of every held
    /// subscription to `value`, as if it had been changed on Graph's side.
    pub fn tamper(&self, field: &str, value: &str) {
        for subscription in self.shared.subscriptions.lock().unwrap().values_mut() {
            subscription.body[field] = json!(value);
        }
    }

    /// Graph grants at most this many seconds (0: what was asked).
    pub fn grant_at_most(&self, seconds: u64) {
        self.shared.max_lifetime_seconds.store(seconds, Ordering::SeqCst);
    }

    /// Every subscription disappears: renewals and reauthorizations answer 404.
    pub fn vanish(&self) {
        self.shared.subscriptions.lock().unwrap().clear();
    }

    /// The items of `resource` (`users`, `users/u/mailFolders/f/messages`) change: each
    /// is appended to its log, as a delta query will answer it.
    pub fn change(&self, resource: &str, items: impl IntoIterator<Item = Value>) {
        let key = resource.trim_matches('/').to_ascii_lowercase();
        self.shared.collections.lock().unwrap().entry(key).or_default().extend(items);
    }

    /// The next `n` delta requests answer 429 with `Retry-After: retry_after_seconds`.
    pub fn throttle(&self, n: u64, retry_after_seconds: u64) {
        self.shared.retry_after_seconds.store(retry_after_seconds, Ordering::SeqCst);
        self.shared.throttled.store(n, Ordering::SeqCst);
    }

    /// Recorded delta requests (GET of a path ending in `/delta`), oldest first.
    pub fn delta_requests(&self) -> Vec<Recorded> {
        self.requests().into_iter().filter(|r| r.method == "GET" && r.path.ends_with("/delta")).collect()
    }

    pub fn subscriptions(&self) -> Vec<FakeSubscription> {
        self.shared.subscriptions.lock().unwrap().values().cloned().collect()
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
    let query =
        parts.uri.query().map(|q| url::form_urlencoded::parse(q.as_bytes()).map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&"));
    shared.requests.lock().unwrap().push(Recorded {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: query.unwrap_or_default(),
        body: String::from_utf8_lossy(&bytes).into_owned(),
        at: std::time::Instant::now(),
    });
    next.run(axum::extract::Request::from_parts(parts, axum::body::Body::from(bytes))).await
}

fn graph_error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({"error": {"code": code, "message": message, "innerError": {"request-id": uuid::Uuid::new_v4()}}}))).into_response()
}

async fn token(State(shared): State<Arc<Shared>>, Path(_tenant): Path<String>, body: Bytes) -> Response {
    let registration = fake_login::Registration {
        client_id: &shared.client_id,
        client_secret: &shared.client_secret,
        scope: "https://graph.microsoft.com/.default",
    };
    let (token, answer) = fake_login::answer(&body, &registration, shared.fail_tokens.load(Ordering::SeqCst), "fake-token");
    shared.tokens.lock().unwrap().extend(token);
    answer
}

/// The refusal for a request without a token this fake issued, or while refusing.
fn check(shared: &Shared, headers: &HeaderMap) -> Option<Response> {
    let bearer = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    if !bearer.is_some_and(|t| shared.tokens.lock().unwrap().iter().any(|issued| issued == t)) {
        return Some(graph_error(StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken", "Access token is empty."));
    }
    if shared.refuse.load(Ordering::SeqCst) {
        return Some(graph_error(
            StatusCode::FORBIDDEN,
            "ExtensionError",
            "Operation: Create; Exception: [Status Code: Forbidden; Reason: Insufficient privileges]",
        ));
    }
    if shared.unavailable.load(Ordering::SeqCst) {
        return Some(graph_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "serviceNotAvailable",
            "The service is temporarily unavailable for maintenance or is overloaded. You may repeat the request after a delay.",
        ));
    }
    None
}

fn granted(shared: &Shared, asked: DateTime<Utc>) -> DateTime<Utc> {
    match shared.max_lifetime_seconds.load(Ordering::SeqCst) {
        0 => asked,
        max => asked.min(Utc::now() + chrono::Duration::seconds(max as i64)),
    }
}

fn view(s: &FakeSubscription) -> Value {
    let mut body = s.body.clone();
    body["id"] = json!(s.id);
    // Graph writes seven fractional digits.
    let ticks = s.expires_at.timestamp_subsec_nanos() / 100;
    body["expirationDateTime"] = json!(format!("{}.{ticks:07}Z", s.expires_at.format("%Y-%m-%dT%H:%M:%S")));
    body
}

/// Graph's validation of a notification URL: the token must come back, exactly (with
/// `altered`, the answer is changed on its way back and never matches).
async fn validate(url: &str, altered: bool) -> Result<(), String> {
    let token = format!("Validation: Testing client application reachability for subscription Request-Id: {} <b>&'", uuid::Uuid::new_v4());
    let mut target = url::Url::parse(url).map_err(|e| format!("{url}: {e}"))?;
    target.query_pairs_mut().append_pair("validationToken", &token);
    let answer = reqwest::Client::new()
        .post(target)
        .header("content-type", "text/plain; charset=utf-8")
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let status = answer.status();
    let text_plain = answer.headers().get("content-type").and_then(|v| v.to_str().ok()).is_some_and(|ct| ct.starts_with("text/plain"));
    let mut body = answer.text().await.unwrap_or_default();
    if altered {
        body.push_str(" (altered)");
    }
    if status == 200 && text_plain && body == token {
        Ok(())
    } else {
        Err(format!("{url} answered {status} (text/plain: {text_plain}) with {body:?}"))
    }
}

async fn create(State(shared): State<Arc<Shared>>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    if let Some(refusal) = check(&shared, &headers) {
        return refusal;
    }
    let field = |name: &str| body.get(name).and_then(Value::as_str).map(str::to_owned);
    let (Some(notification), Some(lifecycle), Some(expiration)) =
        (field("notificationUrl"), field("lifecycleNotificationUrl"), field("expirationDateTime"))
    else {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            "notificationUrl, lifecycleNotificationUrl and expirationDateTime are required",
        );
    };
    let Ok(asked) = DateTime::parse_from_rfc3339(&expiration) else {
        return graph_error(StatusCode::BAD_REQUEST, "InvalidRequest", "expirationDateTime is not a date");
    };
    for url in [&notification, &lifecycle] {
        if let Err(why) = validate(url, shared.fail_validation.load(Ordering::SeqCst)).await {
            return graph_error(
                StatusCode::BAD_REQUEST,
                "ValidationError",
                &format!(
                    "Subscription validation request failed. Notification endpoint must respond with 200 OK to validation request. {why}"
                ),
            );
        }
    }
    let subscription = FakeSubscription {
        id: uuid::Uuid::new_v4().to_string(),
        body: body.clone(),
        expires_at: granted(&shared, asked.with_timezone(&Utc)),
    };
    shared.subscriptions.lock().unwrap().insert(subscription.id.clone(), subscription.clone());
    (StatusCode::CREATED, Json(view(&subscription))).into_response()
}

async fn renew(State(shared): State<Arc<Shared>>, Path(id): Path<String>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    if let Some(refusal) = check(&shared, &headers) {
        return refusal;
    }
    let Some(asked) = body.get("expirationDateTime").and_then(Value::as_str).and_then(|t| DateTime::parse_from_rfc3339(t).ok()) else {
        return graph_error(StatusCode::BAD_REQUEST, "InvalidRequest", "expirationDateTime is required");
    };
    let mut subscriptions = shared.subscriptions.lock().unwrap();
    let Some(subscription) = subscriptions.get_mut(&id) else {
        return graph_error(StatusCode::NOT_FOUND, "ResourceNotFound", "The object was not found.");
    };
    subscription.expires_at = granted(&shared, asked.with_timezone(&Utc));
    Json(view(subscription)).into_response()
}

async fn read(State(shared): State<Arc<Shared>>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if let Some(refusal) = check(&shared, &headers) {
        return refusal;
    }
    match shared.subscriptions.lock().unwrap().get(&id) {
        Some(subscription) => Json(view(subscription)).into_response(),
        None => graph_error(StatusCode::NOT_FOUND, "ResourceNotFound", "The object was not found."),
    }
}

async fn reauthorize(State(shared): State<Arc<Shared>>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if let Some(refusal) = check(&shared, &headers) {
        return refusal;
    }
    if !shared.subscriptions.lock().unwrap().contains_key(&id) {
        return graph_error(StatusCode::NOT_FOUND, "ResourceNotFound", "The object was not found.");
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn delete(State(shared): State<Arc<Shared>>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if let Some(refusal) = check(&shared, &headers) {
        return refusal;
    }
    match shared.subscriptions.lock().unwrap().remove(&id) {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => graph_error(StatusCode::NOT_FOUND, "ResourceNotFound", "The object was not found."),
    }
}

/// `GET /v1.0/{resource}/delta`: a page of the resource's changes (see the module's
/// comment). Tokens: `$skiptoken={from}.{to}.{at}` (a round reading the log from `from` to
/// `to`, at `at`), `$deltatoken={to}`.
async fn delta(
    State(shared): State<Arc<Shared>>,
    Path(path): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    let Some(resource) = path.strip_suffix("/delta") else {
        return graph_error(StatusCode::NOT_FOUND, "ResourceNotFound", "Resource not found for the segment.");
    };
    if let Some(refusal) = check(&shared, &headers) {
        return refusal;
    }
    if shared.throttled.load(Ordering::SeqCst) > 0 {
        shared.throttled.fetch_sub(1, Ordering::SeqCst);
        let seconds = shared.retry_after_seconds.load(Ordering::SeqCst).to_string();
        let mut answer = graph_error(StatusCode::TOO_MANY_REQUESTS, "TooManyRequests", "Too many requests.");
        answer.headers_mut().insert("retry-after", seconds.parse().unwrap());
        return answer;
    }
    let params: HashMap<String, String> = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()).into_owned().collect();
    let log = shared.collections.lock().unwrap().get(&resource.to_ascii_lowercase()).cloned().unwrap_or_default();
    let latest = params.get("$deltatoken").or_else(|| params.get("token")).is_some_and(|t| t == "latest");
    let (from, to, at) = if let Some(skip) = params.get("$skiptoken") {
        let parts: Vec<usize> = skip.split('.').filter_map(|p| p.parse().ok()).collect();
        let [from, to, at] = parts[..] else {
            return graph_error(StatusCode::BAD_REQUEST, "BadRequest", "The skip token is not valid.");
        };
        (from, to, at)
    } else if latest {
        (log.len(), log.len(), log.len())
    } else if let Some(token) = params.get("$deltatoken") {
        match token.parse::<usize>() {
            Ok(from) if from <= log.len() => (from, log.len(), from),
            _ => return graph_error(StatusCode::GONE, "resyncRequired", "Resync required."),
        }
    } else {
        (0, log.len(), 0)
    };
    let end = (at + DELTA_PAGE).min(to);
    let here = format!("http://{}{}", headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1"), uri.path());
    let mut answer = json!({
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Collection(item)",
        "value": log[at.min(end)..end],
    });
    if end < to {
        answer["@odata.nextLink"] = json!(format!("{here}?$skiptoken={from}.{to}.{end}"));
    } else {
        answer["@odata.deltaLink"] = json!(format!("{here}?$deltatoken={to}"));
    }
    Json(answer).into_response()
}
