//! The Office 365 Management Activity API calls: an app-only token for the endpoint's
//! `/.default` scope, then `subscriptions/start`, `subscriptions/list`,
//! `subscriptions/stop` and the content blobs that notifications point to
//! ("Office 365 Management Activity API reference").
//!
//! Only the operator's allow-listed Management API origins are ever called
//! (`PUSHGATE_O365_ENDPOINTS`, by default Microsoft's four: Enterprise, GCC, GCC High,
//! DoD), and a content blob only from its connection's own endpoint, under its tenant's
//! `/api/v1.0/{tenant}/activity/feed/audit/` ([`content_uri_allowed`]): a `contentUri` is
//! data from a push, and a forged one must never make pushgate call anyone. Redirects are
//! never followed. Every answer is bounded in time and size, and an answer that is not
//! the JSON expected is an error, never a panic. Error texts carry Microsoft's error
//! code and message, scrubbed of the client secret.
//!
//! One file: each call shares the URL building, the error reading and the answer parsing
//! around it; the inline tests exercise those against the documented answers.

use std::time::Duration;

use chrono::Utc;
use serde_json::{json, Value};

use super::settings::O365Settings;
use crate::config::Secret;
use crate::microsoft::identity::{read_with_headers, retry_after, scrub, short, Tokens};
use crate::model::UpkeepFailure;

/// Longest a subscription call may take (`start` waits for Microsoft's validation of the
/// webhook address).
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// Longest a content blob may take to arrive.
pub const CONTENT_TIMEOUT: Duration = Duration::from_secs(60);

/// The largest subscription answer read.
pub const MAX_ANSWER_BYTES: usize = 256 * 1024;

/// The largest content blob read. Microsoft does not document a maximum; blobs seen in
/// practice hold up to a few thousand records of a few KB each.
pub const MAX_CONTENT_BYTES: usize = 64 * 1024 * 1024;

/// Why a Management API call failed. The texts never hold the client secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManageError {
    /// The identity platform refused the client credentials or could not be reached.
    #[error("token request for tenant {tenant_id}, client {client_id} failed: {detail}")]
    Token { tenant_id: String, client_id: String, status: Option<u16>, code: Option<String>, detail: String },
    /// The Management API could not be reached or did not answer in time.
    #[error("{call}: the Management API could not be reached: {detail}")]
    Unreachable { call: &'static str, detail: String },
    /// The Management API answered with an error status; `retry_after` is its
    /// `Retry-After` (429, 503).
    #[error("{call}: the Management API answered {status} {code}: {message}")]
    Refused { call: &'static str, status: u16, code: String, message: String, retry_after: Option<Duration> },
    /// The Management API answered 2xx with something that is not what the call returns.
    #[error("{call}: the Management API's answer is not readable: {detail}")]
    BadAnswer { call: &'static str, detail: String },
    /// The call was not made: its URL is not one pushgate may call.
    #[error("not fetched: {detail}")]
    NotAllowed { detail: String },
}

impl ManageError {
    /// What this failure says about the connection, if anything:
    /// - [`UpkeepFailure::Credentials`]: the identity platform refused the app, or the API
    ///   answered 401 or 403, or refused the permissions (`AF10001`: the token lacks
    ///   `ActivityFeed.Read`) or the tenant (`AF20010`..`AF20013`: not the token's, not
    ///   known, not configured, not a GUID);
    /// - [`UpkeepFailure::Validation`]: the webhook address could not be validated
    ///   (`AF20021`), or an administrator disabled the subscription (`AF20023`);
    /// - an endpoint not in the operator's allow-list is the connection's to fix too: as
    ///   if the API could not be read ([`UpkeepFailure::Credentials`]).
    ///
    /// Anything else (unreachable, 5xx, 429, an answer that cannot be read) says nothing
    /// about the connection.
    pub fn failure(&self) -> Option<UpkeepFailure> {
        match self {
            ManageError::Token { status, code, .. } if crate::microsoft::identity::refuses_credentials(*status, code.as_deref()) => {
                Some(UpkeepFailure::Credentials)
            }
            ManageError::Refused { status: 401 | 403, .. } => Some(UpkeepFailure::Credentials),
            ManageError::Refused { code, .. } if matches!(code.as_str(), "AF10001" | "AF20010" | "AF20011" | "AF20012" | "AF20013") => {
                Some(UpkeepFailure::Credentials)
            }
            ManageError::Refused { code, .. } if matches!(code.as_str(), "AF20021" | "AF20023") => Some(UpkeepFailure::Validation),
            ManageError::NotAllowed { .. } => Some(UpkeepFailure::Credentials),
            _ => None,
        }
    }

    /// How long the API asked to be left alone (`Retry-After` of a 429 or 503), at most
    /// [`crate::microsoft::identity::MAX_RETRY_AFTER`].
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ManageError::Refused { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The content will never be served: it expired (`AF20051`, older than 7 days) or does
    /// not exist (`AF20050`, 404). Trying again is pointless.
    pub fn is_gone(&self) -> bool {
        matches!(self, ManageError::Refused { status: 404, .. })
            || matches!(self, ManageError::Refused { code, .. } if matches!(code.as_str(), "AF20050" | "AF20051"))
    }

    /// The subscription is enabled already with the same properties (`AF20024`): a
    /// `start` that changes nothing.
    fn is_already_enabled(&self) -> bool {
        matches!(self, ManageError::Refused { code, .. } if code == "AF20024")
    }
}

/// A content type's subscription as the API answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentSubscription {
    pub content_type: String,
    /// `enabled` or `disabled`.
    pub status: String,
    pub webhook: Option<Webhook>,
}

/// Where a subscription pushes its notifications.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    /// `enabled`, `disabled` (after too many failed notifications) or `expired`.
    pub status: String,
    pub address: String,
    pub expiration: Option<String>,
}

/// The Management API client: the allowed origins, an HTTP client and the token cache.
pub struct ManageApi {
    client: reqwest::Client,
    tokens: Tokens,
    allowed: Vec<String>,
}

impl ManageApi {
    /// `login`: the identity platform, without a trailing slash; `allowed`: the origins
    /// the operator allows (`GraphSettings::o365_endpoints`).
    pub fn new(login: &str, allowed: &[String]) -> Result<ManageApi, String> {
        // The endpoints are the operator's (tests point them at a local fake over http).
        let client = crate::outbound::operator_client(CONTENT_TIMEOUT)?;
        Ok(ManageApi { tokens: Tokens::new(client.clone(), login), client, allowed: allowed.to_vec() })
    }

    /// Starts (or updates, or re-enables) the subscription of `content_type` with a
    /// webhook to `webhook_address` carrying the connection's auth id. Microsoft validates
    /// the address before it answers. Starting one that is enabled with the same webhook
    /// already (`AF20024`) is a success: its state is then read from the list.
    pub async fn start(&self, s: &O365Settings, content_type: &str, webhook_address: &str) -> Result<ContentSubscription, ManageError> {
        const CALL: &str = "start subscription";
        let url = self.feed_url(s, &["subscriptions", "start"], &[("contentType", content_type)], CALL)?;
        let token = self.token(s).await?;
        let body = json!({"webhook": {"address": webhook_address, "authId": s.auth_id.expose(), "expiration": ""}});
        let request = self.client.post(url).bearer_auth(token.expose()).header("content-type", "application/json");
        match self.send(CALL, request.body(body.to_string()), TIMEOUT, MAX_ANSWER_BYTES, s).await {
            Ok(answer) => {
                let value: Value = serde_json::from_slice(&answer).map_err(|_| bad(CALL, "the answer is not JSON"))?;
                subscription_of(CALL, &value)
            }
            Err(e) if e.is_already_enabled() => self
                .list(s)
                .await?
                .into_iter()
                .find(|held| held.content_type.eq_ignore_ascii_case(content_type))
                .ok_or_else(|| bad(CALL, "the subscription is enabled, but the list does not show it")),
            Err(e) => Err(e),
        }
    }

    /// The subscriptions of the connection's tenant, as the API holds them.
    pub async fn list(&self, s: &O365Settings) -> Result<Vec<ContentSubscription>, ManageError> {
        const CALL: &str = "list subscriptions";
        let url = self.feed_url(s, &["subscriptions", "list"], &[], CALL)?;
        let token = self.token(s).await?;
        let answer = self.send(CALL, self.client.get(url).bearer_auth(token.expose()), TIMEOUT, MAX_ANSWER_BYTES, s).await?;
        let value: Value = serde_json::from_slice(&answer).map_err(|_| bad(CALL, "the answer is not JSON"))?;
        let items = value.as_array().ok_or_else(|| bad(CALL, "the answer is not a list"))?;
        items.iter().map(|item| subscription_of(CALL, item)).collect()
    }

    /// Stops the subscription of `content_type`; one not found (`AF20022`) counts as stopped.
    pub async fn stop(&self, s: &O365Settings, content_type: &str) -> Result<(), ManageError> {
        const CALL: &str = "stop subscription";
        let url = self.feed_url(s, &["subscriptions", "stop"], &[("contentType", content_type)], CALL)?;
        let token = self.token(s).await?;
        let request = self.client.post(url).bearer_auth(token.expose()).header("content-type", "application/json");
        match self.send(CALL, request.body("{}"), TIMEOUT, MAX_ANSWER_BYTES, s).await {
            Err(ManageError::Refused { code, .. }) if code == "AF20022" => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// The audit records of the content blob at `content_uri` (a JSON list of records).
    /// A URI that [`content_uri_allowed`] refuses is never requested.
    pub async fn fetch_content(&self, s: &O365Settings, content_uri: &str) -> Result<Vec<Value>, ManageError> {
        const CALL: &str = "fetch content";
        self.allow(s)?;
        let mut url = content_uri_allowed(s, content_uri).map_err(|detail| ManageError::NotAllowed { detail })?;
        if !url.query_pairs().any(|(k, _)| k.eq_ignore_ascii_case("PublisherIdentifier")) {
            url.query_pairs_mut().append_pair("PublisherIdentifier", &s.credentials.tenant_id);
        }
        let token = self.token(s).await?;
        let answer = self.send(CALL, self.client.get(url).bearer_auth(token.expose()), CONTENT_TIMEOUT, MAX_CONTENT_BYTES, s).await?;
        match serde_json::from_slice::<Value>(&answer) {
            Ok(Value::Array(records)) => Ok(records),
            Ok(_) => Err(bad(CALL, "the answer is not a list of records")),
            Err(_) => Err(bad(CALL, "the answer is not JSON")),
        }
    }

    async fn token(&self, s: &O365Settings) -> Result<Secret, ManageError> {
        let credentials = &s.credentials;
        self.tokens.token(credentials, &s.scope()).await.map_err(|refusal| ManageError::Token {
            tenant_id: credentials.tenant_id.clone(),
            client_id: credentials.client_id.clone(),
            status: refusal.status,
            code: refusal.code,
            detail: refusal.detail,
        })
    }

    /// The connection's endpoint is one the operator allows.
    fn allow(&self, s: &O365Settings) -> Result<(), ManageError> {
        if self.allowed.iter().any(|origin| origin == &s.endpoint) {
            return Ok(());
        }
        Err(ManageError::NotAllowed {
            detail: format!("the endpoint {} is not one of PUSHGATE_O365_ENDPOINTS ({})", s.endpoint, self.allowed.join(", ")),
        })
    }

    /// `{endpoint}/api/v1.0/{tenant}/activity/feed/{segments...}?{query}&PublisherIdentifier={tenant}`,
    /// each segment percent-encoded.
    fn feed_url(&self, s: &O365Settings, segments: &[&str], query: &[(&str, &str)], call: &'static str) -> Result<url::Url, ManageError> {
        self.allow(s)?;
        let mut url = feed_base(s).map_err(|detail| ManageError::Unreachable { call, detail })?;
        url.path_segments_mut()
            .map_err(|_| ManageError::Unreachable { call, detail: "the endpoint cannot take a path".into() })?
            .extend(segments);
        {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in query {
                pairs.append_pair(k, v);
            }
            // Microsoft counts throttling per publisher: the tenant's own id.
            pairs.append_pair("PublisherIdentifier", &s.credentials.tenant_id);
        }
        Ok(url)
    }

    /// Sends a request; a 2xx answer's body, or the API's error.
    async fn send(
        &self,
        call: &'static str,
        request: reqwest::RequestBuilder,
        timeout: Duration,
        max_bytes: usize,
        s: &O365Settings,
    ) -> Result<Vec<u8>, ManageError> {
        let request = request.timeout(timeout);
        let (status, headers, body) =
            read_with_headers(request, timeout, max_bytes).await.map_err(|detail| ManageError::Unreachable { call, detail })?;
        if status.is_success() {
            return Ok(body);
        }
        // {"error": {"code": "AF20022", "message": "No subscription found for the specified content type"}}
        let error = serde_json::from_slice::<Value>(&body).ok().and_then(|v| v.get("error").cloned());
        let field = |name: &str| error.as_ref().and_then(|e| e.get(name)).and_then(Value::as_str).map(str::to_owned);
        let retry_after = headers.get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| retry_after(v, Utc::now()));
        Err(ManageError::Refused {
            call,
            status: status.as_u16(),
            code: scrub(&field("code").unwrap_or_else(|| "no error code".into()), &s.credentials),
            message: scrub(&short(&field("message").unwrap_or_default()), &s.credentials),
            retry_after,
        })
    }
}

fn bad(call: &'static str, detail: &str) -> ManageError {
    ManageError::BadAnswer { call, detail: detail.to_owned() }
}

/// `{endpoint}/api/v1.0/{tenant}/activity/feed` for the connection.
fn feed_base(s: &O365Settings) -> Result<url::Url, String> {
    let mut url = url::Url::parse(&s.endpoint).map_err(|e| format!("the endpoint is not a URL: {e}"))?;
    url.path_segments_mut().map_err(|_| "the endpoint cannot take a path".to_owned())?.pop_if_empty().extend([
        "api",
        "v1.0",
        s.credentials.tenant_id.as_str(),
        "activity",
        "feed",
    ]);
    Ok(url)
}

/// The `contentUri` of a notification as a URL pushgate may fetch: on the connection's
/// own endpoint (same scheme, host and port; that endpoint is `https` unless the
/// operator allow-listed a plain one), under `/api/v1.0/{tenant}/activity/feed/audit/`
/// of the connection's tenant, with no user info and no `..` segment; or why not.
pub fn content_uri_allowed(s: &O365Settings, content_uri: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(content_uri).map_err(|_| "the contentUri is not a URL".to_owned())?;
    if url.origin().ascii_serialization() != s.endpoint {
        return Err(format!("the contentUri is not on the connection's Management API endpoint {}", s.endpoint));
    }
    if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
        return Err("the contentUri carries user info or a fragment".into());
    }
    let tenant = s.credentials.tenant_id.to_ascii_lowercase();
    let segments: Vec<String> = url.path_segments().map(|s| s.map(|seg| seg.to_ascii_lowercase()).collect()).unwrap_or_default();
    // url::Url resolves `..` when it parses; an encoded one (`%2e%2e`) is kept as text and refused here.
    let expected = ["api", "v1.0", tenant.as_str(), "activity", "feed", "audit"];
    let under = segments.len() > expected.len() && segments.iter().zip(expected).all(|(seg, want)| seg == want);
    if !under || segments.iter().any(|seg| seg.is_empty() || seg.contains("%2e") || seg.contains("%2f")) {
        return Err(format!("the contentUri is not under /api/v1.0/{}/activity/feed/audit/", s.credentials.tenant_id));
    }
    Ok(url)
}

/// A subscription in an answer: `{"contentType", "status", "webhook": {"status", "address", "expiration"}}`.
fn subscription_of(call: &'static str, value: &Value) -> Result<ContentSubscription, ManageError> {
    let text = |v: &Value, name: &str| v.get(name).and_then(Value::as_str).map(str::to_owned);
    let content_type = text(value, "contentType").ok_or_else(|| bad(call, "a subscription without `contentType`"))?;
    let status = text(value, "status").ok_or_else(|| bad(call, "a subscription without `status`"))?;
    let webhook = match value.get("webhook") {
        None | Some(Value::Null) => None,
        Some(w) => Some(Webhook {
            status: text(w, "status").unwrap_or_default(),
            address: text(w, "address").unwrap_or_default(),
            expiration: text(w, "expiration").filter(|e| !e.is_empty()),
        }),
    };
    Ok(ContentSubscription { content_type, status, webhook })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::microsoft::identity::Credentials;

    fn settings(endpoint: &str) -> O365Settings {
        O365Settings {
            credentials: Credentials {
                tenant_id: "41463f53-8812-40f4-890f-865bf6e35190".into(),
                client_id: "c".into(),
                client_secret: Secret::new("s3cr3t"),
            },
            content_types: vec!["Audit.SharePoint".into()],
            endpoint: endpoint.into(),
            auth_id: Secret::new("auth"),
        }
    }

    #[test]
    fn only_the_connections_own_audit_feed_is_fetched() {
        let s = settings("https://manage.office.com");
        // The example notification of Microsoft's reference ("Receiving notifications").
        let good = "https://manage.office.com/api/v1.0/41463f53-8812-40f4-890f-865bf6e35190/activity/feed/audit/492638008028$492638008028$f28ab78ad40140608012736e373933ebspo2015043022$4a81a7c326fc4aed89c62e6039ab833b$04";
        assert!(content_uri_allowed(&s, good).is_ok());
        assert!(content_uri_allowed(&s, &good.to_uppercase().replace("HTTPS://MANAGE.OFFICE.COM", "https://manage.office.com")).is_ok());
        for forged in [
            "http://manage.office.com/api/v1.0/41463f53-8812-40f4-890f-865bf6e35190/activity/feed/audit/x",
            "https://manage.office.com.evil.example/api/v1.0/41463f53-8812-40f4-890f-865bf6e35190/activity/feed/audit/x",
            "https://manage.office.com:8443/api/v1.0/41463f53-8812-40f4-890f-865bf6e35190/activity/feed/audit/x",
            "https://u@manage.office.com/api/v1.0/41463f53-8812-40f4-890f-865bf6e35190/activity/feed/audit/x",
            "https://manage.office.com/api/v1.0/another-tenant/activity/feed/audit/x",
            "https://manage.office.com/api/v1.0/41463f53-8812-40f4-890f-865bf6e35190/activity/feed/subscriptions/list",
            "https://manage.office.com/api/v1.0/41463f53-8812-40f4-890f-865bf6e35190/activity/feed/audit/",
            "https://manage.office.com/api/v1.0/41463f53-8812-40f4-890f-865bf6e35190/activity/feed/audit/%2e%2e/x",
            "https://manage.office.com/api/v1.0/41463f53-8812-40f4-890f-865bf6e35190/activity/feed/audit/..%2fsubscriptions",
            "https://169.254.169.254/latest/meta-data/",
            "file:///etc/passwd",
            "not a url",
        ] {
            assert!(content_uri_allowed(&s, forged).is_err(), "{forged}");
        }
        // `..` is resolved when parsed, and then leaves the audit feed.
        assert!(content_uri_allowed(
            &s,
            "https://manage.office.com/api/v1.0/41463f53-8812-40f4-890f-865bf6e35190/activity/feed/audit/../../x"
        )
        .is_err());
    }

    #[tokio::test]
    async fn an_endpoint_the_operator_does_not_allow_is_never_called() {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let api = ManageApi::new("http://127.0.0.1:9/login", &["https://manage.office.com".to_owned()]).unwrap();
        let s = settings("http://127.0.0.1:9");
        let e = api
            .fetch_content(&s, "http://127.0.0.1:9/api/v1.0/41463f53-8812-40f4-890f-865bf6e35190/activity/feed/audit/x")
            .await
            .unwrap_err();
        assert!(matches!(&e, ManageError::NotAllowed { detail } if detail.contains("PUSHGATE_O365_ENDPOINTS")), "{e}");
        assert!(matches!(api.list(&s).await, Err(ManageError::NotAllowed { .. })));
        assert_eq!(e.failure(), Some(UpkeepFailure::Credentials));
    }

    #[test]
    fn refusals_are_sorted_by_what_they_say_about_the_connection() {
        let refused = |status: u16, code: &str| ManageError::Refused {
            call: "start subscription",
            status,
            code: code.into(),
            message: "m".into(),
            retry_after: None,
        };
        let credentials = Some(UpkeepFailure::Credentials);
        let validation = Some(UpkeepFailure::Validation);
        assert_eq!(refused(401, "no error code").failure(), credentials);
        assert_eq!(refused(403, "AF10001").failure(), credentials, "the token lacks ActivityFeed.Read");
        assert_eq!(refused(400, "AF20010").failure(), credentials, "another tenant's token");
        assert_eq!(refused(400, "AF20021").failure(), validation, "the webhook could not be validated");
        assert_eq!(refused(400, "AF20023").failure(), validation, "disabled by an administrator");
        assert_eq!(refused(429, "AF429").failure(), None);
        assert_eq!(refused(500, "AF50000").failure(), None);
        assert!(refused(400, "AF20051").is_gone() && refused(404, "x").is_gone() && !refused(500, "AF50000").is_gone());
        let token = ManageError::Token {
            tenant_id: "t".into(),
            client_id: "c".into(),
            status: Some(401),
            code: Some("invalid_client".into()),
            detail: "d".into(),
        };
        assert_eq!(token.failure(), credentials);
    }

    #[test]
    fn subscriptions_are_read_as_documented() {
        // The example answer of "Start a subscription" in Microsoft's reference.
        let answer: Value = serde_json::from_str(
            r#"{"contentType": "Audit.SharePoint", "status": "enabled",
                "webhook": {"status": "enabled", "address": "https://webhook.myapp.com/o365/", "authId": "o365activityapinotification", "expiration": null}}"#,
        )
        .unwrap();
        let s = subscription_of("c", &answer).unwrap();
        assert_eq!((s.content_type.as_str(), s.status.as_str()), ("Audit.SharePoint", "enabled"));
        let webhook = s.webhook.unwrap();
        assert_eq!(
            (webhook.status.as_str(), webhook.address.as_str(), webhook.expiration),
            ("enabled", "https://webhook.myapp.com/o365/", None)
        );
        let bare = subscription_of("c", &serde_json::json!({"contentType": "DLP.All", "status": "disabled", "webhook": null})).unwrap();
        assert_eq!(bare.webhook, None);
        assert!(subscription_of("c", &serde_json::json!({"status": "enabled"})).is_err());
    }

    #[test]
    fn feed_urls_name_the_tenant_and_the_publisher() {
        let s = settings("https://manage.office.com");
        let api = ManageApi {
            client: reqwest::Client::new(),
            tokens: Tokens::new(reqwest::Client::new(), "x"),
            allowed: vec![s.endpoint.clone()],
        };
        let url = api.feed_url(&s, &["subscriptions", "start"], &[("contentType", "Audit.SharePoint")], "c").unwrap();
        assert_eq!(
            url.as_str(),
            "https://manage.office.com/api/v1.0/41463f53-8812-40f4-890f-865bf6e35190/activity/feed/subscriptions/start?contentType=Audit.SharePoint&PublisherIdentifier=41463f53-8812-40f4-890f-865bf6e35190"
        );
    }
}
