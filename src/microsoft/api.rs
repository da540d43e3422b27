//! The Microsoft Graph REST calls of the subscription upkeep and the catch-up: an app-only
//! token from the identity platform (client credentials), then create, get, renew
//! (`PATCH`), reauthorize and delete of `/subscriptions`, and the pages of a delta query. [`GraphError::failure`] sorts a refusal into what it
//! says about the connection (health rows 2 and 3).
//!
//! Every call is bounded by [`TIMEOUT`] (a create by [`CREATE_TIMEOUT`]) and every answer
//! body by [`MAX_ANSWER_BYTES`]; an answer that is not the JSON expected is an error, never
//! a panic. Tokens come from [`crate::microsoft::identity::Tokens`] (cached per secret and
//! scope). Error texts are built from Graph's and the identity platform's error codes and
//! messages, and scrubbed of the secret anyway, because they end up in logs and in the
//! connection's API view.
//!
//! One file: each Graph call and the token request share the error scrubbing and the
//! answer parsing around them; the inline tests exercise those against documented answers.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use serde_json::{json, Value};

pub use super::identity::Credentials;
use super::identity::{read_with_headers, retry_after, scrub, short, Tokens};
use crate::config::Secret;
use crate::model::UpkeepFailure;

/// Longest a single call to Graph or to the identity platform may take.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Longest a create may take: Graph validates both notification URLs before it answers,
/// allowing each up to 10 s.
pub const CREATE_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest answer read: a subscription or a token is well under it.
pub const MAX_ANSWER_BYTES: usize = 256 * 1024;

/// The largest page of a delta query read: pages are asked for with at most
/// [`DELTA_PAGE_SIZE`] items, and a bigger answer is refused rather than read whole.
pub const MAX_DELTA_ANSWER_BYTES: usize = 4 * 1024 * 1024;

/// Items asked for per delta page (`Prefer: odata.maxpagesize`; Outlook honours it, other
/// resources choose their own size).
pub const DELTA_PAGE_SIZE: u32 = 100;

/// The scope of an app-only token for Graph: the application permissions granted to it.
pub const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";

/// Why a Graph call failed. The texts name what failed and the other side's error code
/// and message; they never hold the client secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    /// The identity platform refused the client credentials or could not be reached.
    /// `status` and `code` are its answer's (`None` when it did not answer, or not with
    /// an OAuth error).
    #[error("token request for tenant {tenant_id}, client {client_id} failed: {detail}")]
    Token { tenant_id: String, client_id: String, status: Option<u16>, code: Option<String>, detail: String },
    /// Graph could not be reached or did not answer in time.
    #[error("{call}: Graph could not be reached: {detail}")]
    Unreachable { call: &'static str, detail: String },
    /// Graph answered with an error status.
    #[error("{call}: Graph answered {status} {code}: {message}")]
    Refused { call: &'static str, status: u16, code: String, message: String },
    /// Graph asked for fewer requests (429), to be tried again after `retry_after` when it
    /// said so (`Retry-After`, in seconds).
    #[error("{call}: Graph answered 429 (too many requests), retry after {retry_after:?}")]
    Throttled { call: &'static str, retry_after: Option<Duration> },
    /// Graph answered 2xx with something that is not what the call returns.
    #[error("{call}: Graph's answer is not readable: {detail}")]
    BadAnswer { call: &'static str, detail: String },
}

impl GraphError {
    /// The subscription does not exist (any more): Graph answered 404.
    pub fn is_not_found(&self) -> bool {
        matches!(self, GraphError::Refused { status: 404, .. })
    }

    /// What this failure says about the connection, if anything:
    /// - [`UpkeepFailure::Credentials`]: the identity platform refused the app
    ///   (`invalid_client`: a wrong or expired secret; `unauthorized_client`: an app id
    ///   the tenant does not know or has disabled; both with HTTP 400 or 401, see "Error
    ///   response" in Microsoft's client credentials flow documentation), or Graph
    ///   answered 401 or 403 (no permission, or no admin consent for it);
    /// - [`UpkeepFailure::Validation`]: Graph answered 400 because it could not validate
    ///   the notification URL: code `ValidationError`, or an older answer
    ///   (`InvalidRequest`) whose message says "Subscription validation request failed"
    ///   or "...timeout" (Graph documents only that a failed validation is a 400).
    ///
    /// Anything else (unreachable, 5xx, 429, a 400 about the request itself, an answer
    /// that cannot be read) says nothing about the connection's credentials or URL.
    pub fn failure(&self) -> Option<UpkeepFailure> {
        match self {
            GraphError::Token { status, code, .. } if super::identity::refuses_credentials(*status, code.as_deref()) => {
                Some(UpkeepFailure::Credentials)
            }
            GraphError::Refused { status: 401 | 403, .. } => Some(UpkeepFailure::Credentials),
            GraphError::Refused { status: 400, code, message, .. }
                if code == "ValidationError" || message.contains("Subscription validation request") =>
            {
                Some(UpkeepFailure::Validation)
            }
            _ => None,
        }
    }
}

/// A subscription to create (Graph's `subscription` resource, the fields pushgate sets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSubscription {
    pub change_type: String,
    pub notification_url: String,
    pub lifecycle_notification_url: String,
    pub resource: String,
    pub expiration: DateTime<Utc>,
    /// Compared by pushgate with every notification's `clientState`.
    pub client_state: Secret,
    /// For rich notifications (`includeResourceData`): the certificate Graph encrypts
    /// resource data with.
    pub encryption: Option<EncryptionCertificate>,
}

/// The certificate of one of the connection's `encryption_keys`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptionCertificate {
    /// The key's `id`: Graph sends it back as `encryptionCertificateId`.
    pub id: String,
    /// Base64 of the certificate's DER.
    pub certificate_base64: String,
}

/// A subscription as Graph answered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub id: String,
    pub expires_at: DateTime<Utc>,
    pub delivery: Delivery,
}

/// Where and what a subscription delivers, as far as Graph's answer says (a field it
/// leaves out is `None`): what the upkeep checks against the connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivery {
    pub notification_url: Option<String>,
    pub resource: Option<String>,
    pub change_type: Option<String>,
    /// A secret: compared, never shown.
    pub client_state: Option<Secret>,
}

impl NewSubscription {
    /// The JSON body of `POST /subscriptions`.
    pub fn body(&self) -> Value {
        let mut body = json!({
            "changeType": self.change_type,
            "notificationUrl": self.notification_url,
            "lifecycleNotificationUrl": self.lifecycle_notification_url,
            "resource": self.resource,
            "expirationDateTime": graph_time(self.expiration),
            "clientState": self.client_state.expose(),
        });
        if let Some(e) = &self.encryption {
            body["includeResourceData"] = Value::Bool(true);
            body["encryptionCertificate"] = Value::String(e.certificate_base64.clone());
            body["encryptionCertificateId"] = Value::String(e.id.clone());
        }
        body
    }
}

/// The form Graph writes times in: RFC 3339, UTC, with a `Z`.
pub fn graph_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The Graph client: its endpoints, an HTTP client and the token cache.
pub struct GraphApi {
    client: reqwest::Client,
    graph: String,
    tokens: Tokens,
}

impl GraphApi {
    /// `graph`: the API base (`https://graph.microsoft.com/v1.0`); `login`: the identity
    /// platform (`https://login.microsoftonline.com`); both without a trailing slash.
    pub fn new(graph: &str, login: &str) -> Result<GraphApi, String> {
        // The endpoints are the operator's (tests point them at a local fake over http).
        let client = crate::outbound::operator_client(TIMEOUT)?;
        Ok(GraphApi { tokens: Tokens::new(client.clone(), login), client, graph: graph.trim_end_matches('/').to_owned() })
    }

    /// Creates a subscription. Graph validates both notification URLs before it answers.
    pub async fn create(&self, credentials: &Credentials, new: &NewSubscription) -> Result<Subscription, GraphError> {
        const CALL: &str = "create subscription";
        let url = self.graph_url(&["subscriptions"], CALL)?;
        let token = self.token(credentials).await?;
        let request = self.client.post(url).bearer_auth(token.expose()).header("content-type", "application/json");
        let request = request.timeout(CREATE_TIMEOUT).body(new.body().to_string());
        let answer = self.send(CALL, request, CREATE_TIMEOUT, credentials).await?;
        subscription_of(CALL, &answer, None)
    }

    /// Reads a subscription as Graph keeps it: the source of truth the upkeep checks the
    /// connection's subscription against.
    pub async fn get(&self, credentials: &Credentials, id: &str) -> Result<Subscription, GraphError> {
        const CALL: &str = "get subscription";
        let url = self.graph_url(&["subscriptions", id], CALL)?;
        let token = self.token(credentials).await?;
        let answer = self.send(CALL, self.client.get(url).bearer_auth(token.expose()), TIMEOUT, credentials).await?;
        subscription_of(CALL, &answer, None)
    }

    /// Moves a subscription's expiry to `expiration`.
    pub async fn renew(&self, credentials: &Credentials, id: &str, expiration: DateTime<Utc>) -> Result<Subscription, GraphError> {
        const CALL: &str = "renew subscription";
        let url = self.graph_url(&["subscriptions", id], CALL)?;
        let token = self.token(credentials).await?;
        let body = json!({"expirationDateTime": graph_time(expiration)}).to_string();
        let request = self.client.patch(url).bearer_auth(token.expose()).header("content-type", "application/json");
        let answer = self.send(CALL, request.body(body), TIMEOUT, credentials).await?;
        // Graph answers the subscription; should it answer nothing, the asked expiry holds.
        let fallback = Subscription { id: id.to_owned(), expires_at: expiration.trunc_subsecs(6), delivery: Delivery::default() };
        subscription_of(CALL, &answer, Some(fallback))
    }

    /// Reauthorizes a subscription Graph asked about (lifecycle `reauthorizationRequired`).
    pub async fn reauthorize(&self, credentials: &Credentials, id: &str) -> Result<(), GraphError> {
        const CALL: &str = "reauthorize subscription";
        let url = self.graph_url(&["subscriptions", id, "reauthorize"], CALL)?;
        let token = self.token(credentials).await?;
        let request = self.client.post(url).bearer_auth(token.expose()).header("content-type", "application/json");
        self.send(CALL, request.body("{}"), TIMEOUT, credentials).await.map(|_| ())
    }

    /// Deletes a subscription; one already gone counts as deleted.
    pub async fn delete(&self, credentials: &Credentials, id: &str) -> Result<(), GraphError> {
        const CALL: &str = "delete subscription";
        let url = self.graph_url(&["subscriptions", id], CALL)?;
        let token = self.token(credentials).await?;
        match self.send(CALL, self.client.delete(url).bearer_auth(token.expose()), TIMEOUT, credentials).await {
            Err(e) if e.is_not_found() => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// Reads one page of a delta query: `url` is the first request of a round (built from
    /// [`GraphApi::graph_url_of`]) or an `@odata.nextLink` / `@odata.deltaLink` Graph
    /// answered. A link is followed only to the configured Graph endpoint (same scheme,
    /// host and port): the token is never sent anywhere else.
    pub async fn delta(&self, credentials: &Credentials, url: &str) -> Result<DeltaPage, GraphError> {
        const CALL: &str = "delta query";
        let url = self.own_url(url, CALL)?;
        let token = self.token(credentials).await?;
        let request = self.client.get(url).bearer_auth(token.expose()).header("prefer", format!("odata.maxpagesize={DELTA_PAGE_SIZE}"));
        let answer = self.send_bounded(CALL, request, TIMEOUT, credentials, MAX_DELTA_ANSWER_BYTES).await?;
        delta_page_of(CALL, &answer)
    }

    /// `{graph}/{path}` for a path of Graph's (such as `users/delta`), with its query.
    pub fn graph_url_of(&self, path_and_query: &str) -> String {
        format!("{}/{}", self.graph, path_and_query.trim_start_matches('/'))
    }

    /// `url` if it points at the configured Graph endpoint.
    fn own_url(&self, url: &str, call: &'static str) -> Result<url::Url, GraphError> {
        let bad = |detail: String| GraphError::BadAnswer { call, detail };
        let base = url::Url::parse(&self.graph)
            .map_err(|e| GraphError::Unreachable { call, detail: format!("Graph endpoint is not a URL: {e}") })?;
        let target = url::Url::parse(url).map_err(|_| bad("a delta link is not a URL".into()))?;
        let same_origin = target.scheme() == base.scheme()
            && target.host_str() == base.host_str()
            && target.port_or_known_default() == base.port_or_known_default();
        if !same_origin {
            return Err(bad(format!("a delta link leads away from the Graph endpoint (to {:?})", target.host_str().unwrap_or_default())));
        }
        Ok(target)
    }

    /// A token for Graph: cached, or fetched with the client credentials grant.
    pub async fn token(&self, credentials: &Credentials) -> Result<Secret, GraphError> {
        self.tokens.token(credentials, GRAPH_SCOPE).await.map_err(|refusal| GraphError::Token {
            tenant_id: credentials.tenant_id.clone(),
            client_id: credentials.client_id.clone(),
            status: refusal.status,
            code: refusal.code,
            detail: refusal.detail,
        })
    }

    /// `{graph}/{segments...}`, each segment percent-encoded (a subscription id comes
    /// from Graph's answers and is not trusted to be path-safe).
    fn graph_url(&self, segments: &[&str], call: &'static str) -> Result<url::Url, GraphError> {
        let bad = |detail: String| GraphError::Unreachable { call, detail };
        let mut url = url::Url::parse(&self.graph).map_err(|e| bad(format!("Graph endpoint is not a URL: {e}")))?;
        url.path_segments_mut().map_err(|_| bad("Graph endpoint cannot take a path".into()))?.pop_if_empty().extend(segments);
        Ok(url)
    }

    /// Sends a Graph request; a 2xx answer's body, or Graph's error.
    /// `timeout` is the one the request is bounded by (named in the error text).
    async fn send(
        &self,
        call: &'static str,
        request: reqwest::RequestBuilder,
        timeout: Duration,
        credentials: &Credentials,
    ) -> Result<Vec<u8>, GraphError> {
        self.send_bounded(call, request, timeout, credentials, MAX_ANSWER_BYTES).await
    }

    /// [`GraphApi::send`], reading at most `max_bytes` of the answer.
    async fn send_bounded(
        &self,
        call: &'static str,
        request: reqwest::RequestBuilder,
        timeout: Duration,
        credentials: &Credentials,
        max_bytes: usize,
    ) -> Result<Vec<u8>, GraphError> {
        let (status, headers, body) =
            read_with_headers(request, timeout, max_bytes).await.map_err(|detail| GraphError::Unreachable { call, detail })?;
        let retry_after = headers.get(reqwest::header::RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(|v| retry_after(v, Utc::now()));
        if status.is_success() {
            return Ok(body);
        }
        if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(GraphError::Throttled { call, retry_after });
        }
        // {"error": {"code": "ExtensionError", "message": "Subscription validation request failed ..."}}
        let error = serde_json::from_slice::<Value>(&body).ok().and_then(|v| v.get("error").cloned());
        let field = |name: &str| error.as_ref().and_then(|e| e.get(name)).and_then(Value::as_str).map(str::to_owned);
        Err(GraphError::Refused {
            call,
            status: status.as_u16(),
            code: scrub(&field("code").unwrap_or_else(|| "no error code".into()), credentials),
            message: scrub(&short(&field("message").unwrap_or_default()), credentials),
        })
    }
}

/// One page of a delta query: its items, and the link to the next page or, on the last
/// page of a round, the link of the next round.
#[derive(Debug, Clone, PartialEq)]
pub struct DeltaPage {
    pub items: Vec<Value>,
    pub next_link: Option<String>,
    pub delta_link: Option<String>,
}

/// The page in a delta answer: `{"value": [...], "@odata.nextLink" or "@odata.deltaLink"}`;
/// one with neither link (or both) is not a delta answer.
fn delta_page_of(call: &'static str, body: &[u8]) -> Result<DeltaPage, GraphError> {
    let bad = |detail: &str| GraphError::BadAnswer { call, detail: detail.to_owned() };
    let answer: Value = serde_json::from_slice(body).map_err(|_| bad("the answer is not JSON"))?;
    let items = match answer.get("value") {
        Some(Value::Array(items)) => items.clone(),
        _ => return Err(bad("no `value` list")),
    };
    let link = |name: &str| answer.get(name).and_then(Value::as_str).filter(|l| !l.is_empty()).map(str::to_owned);
    let (next_link, delta_link) = (link("@odata.nextLink"), link("@odata.deltaLink"));
    if next_link.is_some() == delta_link.is_some() {
        return Err(bad("the answer has not exactly one of `@odata.nextLink` and `@odata.deltaLink`"));
    }
    Ok(DeltaPage { items, next_link, delta_link })
}

/// The subscription in a Graph answer (`id`, `expirationDateTime`, and what it delivers
/// where the answer says it); `fallback` stands in for an empty answer.
fn subscription_of(call: &'static str, body: &[u8], fallback: Option<Subscription>) -> Result<Subscription, GraphError> {
    let bad = |detail: &str| GraphError::BadAnswer { call, detail: detail.to_owned() };
    if body.iter().all(u8::is_ascii_whitespace) {
        return fallback.ok_or_else(|| bad("the answer is empty"));
    }
    let answer: Value = serde_json::from_slice(body).map_err(|_| bad("the answer is not JSON"))?;
    let id = answer.get("id").and_then(Value::as_str).filter(|s| !s.is_empty()).ok_or_else(|| bad("no subscription `id`"))?;
    let expires = answer.get("expirationDateTime").and_then(Value::as_str).ok_or_else(|| bad("no `expirationDateTime`"))?;
    let expires_at = DateTime::parse_from_rfc3339(expires)
        .map_err(|_| bad("`expirationDateTime` is not an RFC 3339 time"))?
        .with_timezone(&Utc)
        // The store keeps microseconds; Graph writes seven digits.
        .trunc_subsecs(6);
    let text = |name: &str| answer.get(name).and_then(Value::as_str).map(str::to_owned);
    let delivery = Delivery {
        notification_url: text("notificationUrl"),
        resource: text("resource"),
        change_type: text("changeType"),
        client_state: text("clientState").map(Secret::new),
    };
    Ok(Subscription { id: id.to_owned(), expires_at, delivery })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credentials() -> Credentials {
        Credentials { tenant_id: "t".into(), client_id: "c".into(), client_secret: Secret::new("s3cr3t-value") }
    }

    #[test]
    fn a_create_body_asks_for_rich_notifications_only_with_a_certificate() {
        let mut new = NewSubscription {
            change_type: "created,updated".into(),
            notification_url: "https://p.example/push/ms-graph/1".into(),
            lifecycle_notification_url: "https://p.example/push/ms-graph/1/lifecycle".into(),
            resource: "users".into(),
            expiration: DateTime::parse_from_rfc3339("2030-01-02T03:04:05.678901Z").unwrap().with_timezone(&Utc),
            client_state: Secret::new("cs"),
            encryption: None,
        };
        let body = new.body();
        assert_eq!(body["expirationDateTime"], "2030-01-02T03:04:05.678Z");
        assert_eq!(body["clientState"], "cs");
        assert!(body.get("includeResourceData").is_none());
        new.encryption = Some(EncryptionCertificate { id: "k1".into(), certificate_base64: "MIIB".into() });
        let body = new.body();
        assert_eq!((body["includeResourceData"].as_bool(), body["encryptionCertificateId"].as_str()), (Some(true), Some("k1")));
        assert_eq!(body["encryptionCertificate"], "MIIB");
    }

    #[test]
    fn answers_are_read_without_panicking() {
        let ok = subscription_of("c", br#"{"id":"abc","expirationDateTime":"2030-01-02T03:04:05.9356913Z"}"#, None).unwrap();
        assert_eq!(ok.id, "abc");
        assert_eq!(ok.expires_at.timestamp_subsec_micros(), 935_691);
        for bad in [&b"not json"[..], b"[]", b"{}", br#"{"id":7}"#, br#"{"id":"a","expirationDateTime":"tomorrow"}"#, b""] {
            assert!(matches!(subscription_of("c", bad, None), Err(GraphError::BadAnswer { .. })), "{}", String::from_utf8_lossy(bad));
        }
        let fallback = Subscription { id: "f".into(), expires_at: Utc::now(), delivery: Delivery::default() };
        assert_eq!(subscription_of("c", b"", Some(fallback.clone())).unwrap(), fallback);
    }

    #[test]
    fn answers_say_what_the_subscription_delivers() {
        // The example answer of "Get subscription" in Graph's v1.0 reference.
        let body = br#"{"id":"7f105c7d-2dc5-4530-97cd-4e7ae6534c07","resource":"me/messages","applicationId":"string",
            "changeType":"created,updated","clientState":"secretClientValue",
            "notificationUrl":"https://webhook.azurewebsites.net/api/send/myNotifyClient",
            "lifecycleNotificationUrl":"https://webhook.azurewebsites.net/api/send/lifecycleNotifications",
            "expirationDateTime":"2016-11-20T18:23:45.9356913Z","creatorId":"string","latestSupportedTlsVersion":"v1_2",
            "encryptionCertificate":"","encryptionCertificateId":"","includeResourceData":false,"notificationContentType":"application/json"}"#;
        let s = subscription_of("get subscription", body, None).unwrap();
        assert_eq!(s.delivery.notification_url.as_deref(), Some("https://webhook.azurewebsites.net/api/send/myNotifyClient"));
        assert_eq!((s.delivery.resource.as_deref(), s.delivery.change_type.as_deref()), (Some("me/messages"), Some("created,updated")));
        assert_eq!(s.delivery.client_state.as_ref().map(Secret::expose), Some("secretClientValue"));
        let bare = subscription_of("c", br#"{"id":"a","expirationDateTime":"2030-01-01T00:00:00Z","clientState":null}"#, None).unwrap();
        assert_eq!(bare.delivery, Delivery::default(), "left out or null: not known");
    }

    #[test]
    fn refusals_are_sorted_by_what_they_say_about_the_connection() {
        let token = |status: Option<u16>, code: Option<&str>| GraphError::Token {
            tenant_id: "t".into(),
            client_id: "c".into(),
            status,
            code: code.map(str::to_owned),
            detail: "d".into(),
        };
        let graph = |status: u16, code: &str, message: &str| GraphError::Refused {
            call: "create subscription",
            status,
            code: code.into(),
            message: message.into(),
        };
        let credentials = Some(UpkeepFailure::Credentials);
        let validation = Some(UpkeepFailure::Validation);
        // The identity platform's answers: {"error": "invalid_client", "error_description": "AADSTS7000215: ..."}
        assert_eq!(token(Some(401), Some("invalid_client")).failure(), credentials);
        assert_eq!(token(Some(400), Some("unauthorized_client")).failure(), credentials, "AADSTS700016: application not found");
        assert_eq!(token(Some(400), Some("invalid_request")).failure(), None, "a malformed request says nothing of the credentials");
        assert_eq!(token(Some(503), Some("temporarily_unavailable")).failure(), None);
        assert_eq!(token(None, None).failure(), None, "unreachable");
        // Graph's: {"error": {"code": "...", "message": "..."}}
        assert_eq!(graph(401, "InvalidAuthenticationToken", "Access token validation failure.").failure(), credentials);
        assert_eq!(graph(403, "ExtensionError", "Insufficient privileges").failure(), credentials);
        assert_eq!(graph(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.").failure(), credentials);
        let refused = "Subscription validation request failed. Notification endpoint must respond with 200 OK to validation request.";
        assert_eq!(graph(400, "ValidationError", refused).failure(), validation);
        assert_eq!(
            graph(400, "InvalidRequest", "Subscription validation request failed. Must respond with 200 OK to this request.").failure(),
            validation
        );
        assert_eq!(graph(400, "InvalidRequest", "Subscription validation request timeout.").failure(), validation);
        assert_eq!(graph(400, "InvalidRequest", "expirationDateTime is out of range").failure(), None);
        assert_eq!(graph(404, "ResourceNotFound", "The object was not found.").failure(), None, "handled by creating anew");
        assert_eq!(graph(429, "TooManyRequests", "").failure(), None);
        assert_eq!(graph(503, "serviceNotAvailable", "").failure(), None);
        assert_eq!(GraphError::Unreachable { call: "c", detail: "timed out".into() }.failure(), None);
    }

    #[test]
    fn delta_pages_are_read_as_graph_documents_them() {
        // "Get incremental changes to messages in a folder", the sample second response (cut).
        let page = delta_page_of(
            "delta query",
            br##"{"@odata.context":"https://graph.microsoft.com/v1.0/$metadata#Collection(message)",
            "@odata.nextLink":"https://graph.microsoft.com/v1.0/me/mailfolders('AQMkADNkNAAAgEMAAAA')/messages/delta?$skiptoken=GwcBoTmPKILK4jLH7mAd1lLU",
            "value":[{"@odata.type":"#microsoft.graph.message","@odata.etag":"W/\"CQAAABYAAAARn2vdzPFjSbaPPxzjlqfdAAAEfYB+\"","id":"AQMkADNkNAAAgWkAAAA"}]}"##,
        )
        .unwrap();
        assert_eq!(page.items.len(), 1);
        assert!(page.next_link.unwrap().ends_with("$skiptoken=GwcBoTmPKILK4jLH7mAd1lLU"));
        assert_eq!(page.delta_link, None);
        let last = delta_page_of("d", br#"{"value":[],"@odata.deltaLink":"https://g/users/delta?$deltatoken=x"}"#).unwrap();
        assert_eq!(last.delta_link.as_deref(), Some("https://g/users/delta?$deltatoken=x"));
        for bad in [
            &br#"{"value":[]}"#[..],
            br#"{"value":{},"@odata.deltaLink":"x"}"#,
            br#"{"value":[],"@odata.nextLink":"a","@odata.deltaLink":"b"}"#,
            b"no",
        ] {
            assert!(matches!(delta_page_of("d", bad), Err(GraphError::BadAnswer { .. })), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[tokio::test]
    async fn delta_links_are_followed_only_to_the_graph_endpoint() {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let api = GraphApi::new("https://graph.example/v1.0", "https://login.example").unwrap();
        assert!(api.own_url("https://graph.example/v1.0/users/delta?$skiptoken=a", "c").is_ok());
        assert!(api.own_url("https://graph.example:443/v1.0/users/delta", "c").is_ok());
        for away in
            ["https://evil.example/v1.0/users/delta", "http://graph.example/v1.0/users/delta", "https://graph.example:8443/x", "nope"]
        {
            assert!(matches!(api.own_url(away, "c"), Err(GraphError::BadAnswer { .. })), "{away}");
        }
        assert_eq!(api.graph_url_of("users/delta?$deltatoken=latest"), "https://graph.example/v1.0/users/delta?$deltatoken=latest");
    }

    #[test]
    fn a_404_refusal_reads_as_not_found() {
        let e = GraphError::Refused { call: "renew subscription", status: 404, code: "ResourceNotFound".into(), message: "gone".into() };
        assert!(e.is_not_found());
        assert_eq!(e.to_string(), "renew subscription: Graph answered 404 ResourceNotFound: gone");
    }

    /// A stand-in for the token endpoint and `/subscriptions` on 127.0.0.1 that counts
    /// token requests and answers a create or a renewal after `delay`.
    async fn slow_graph(delay: Duration) -> (GraphApi, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use axum::routing::{patch, post};
        use std::sync::atomic::{AtomicUsize, Ordering};
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let tokens = std::sync::Arc::new(AtomicUsize::new(0));
        let counted = tokens.clone();
        let token = move || {
            counted.fetch_add(1, Ordering::SeqCst);
            async { axum::Json(json!({"access_token": "token", "expires_in": 3600})) }
        };
        let subscription = move || async move {
            tokio::time::sleep(delay).await;
            axum::Json(json!({"id": "s1", "expirationDateTime": "2030-01-01T00:00:00Z"}))
        };
        let app = axum::Router::new()
            .route("/login/{tenant}/oauth2/v2.0/token", post(token))
            .route("/v1.0/subscriptions", post(subscription))
            .route("/v1.0/subscriptions/{id}", patch(subscription));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (GraphApi::new(&format!("{base}/v1.0"), &format!("{base}/login")).unwrap(), tokens)
    }

    #[tokio::test]
    async fn a_create_may_take_longer_than_other_calls() {
        // Graph validates two URLs, up to 10 s each, before it answers a create.
        let (api, _) = slow_graph(TIMEOUT + Duration::from_secs(2)).await;
        let new = NewSubscription {
            change_type: "updated".into(),
            notification_url: "https://p.example/push/ms-graph/1".into(),
            lifecycle_notification_url: "https://p.example/push/ms-graph/1/lifecycle".into(),
            resource: "users".into(),
            expiration: Utc::now(),
            client_state: Secret::new("cs"),
            encryption: None,
        };
        let credentials = credentials();
        let (created, renewed) = tokio::join!(api.create(&credentials, &new), api.renew(&credentials, "s1", Utc::now()));
        assert_eq!(created.unwrap().id, "s1");
        let e = renewed.unwrap_err();
        assert!(matches!(&e, GraphError::Unreachable { detail, .. } if detail.contains("10000 ms")), "{e}");
    }

    #[tokio::test]
    async fn urls_are_built_with_encoded_segments() {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let api = GraphApi::new("https://graph.example/v1.0/", "https://login.example").unwrap();
        let url = api.graph_url(&["subscriptions", "a/b?c"], "c").unwrap();
        assert_eq!(url.as_str(), "https://graph.example/v1.0/subscriptions/a%2Fb%3Fc");
    }
}
