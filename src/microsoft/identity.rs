//! What every pushgate call to a Microsoft API shares: the app registration it acts as
//! ([`Credentials`]), app-only tokens from the identity platform's client credentials
//! grant ([`Tokens`]), bounded answers ([`read`]) and error texts that never hold the
//! client secret ([`scrub`], [`short`]).
//!
//! Tokens are cached per (tenant, client id, SHA-256 of the client secret, scope) until
//! five minutes before they expire: a rotated or wrong secret never gets a cached token,
//! and a Graph token is never sent to the Management API or the other way round. The
//! client secret is only ever written into the token request's form body.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use crate::config::Secret;

/// Longest a token request may take.
pub const TOKEN_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest token answer read.
const MAX_TOKEN_ANSWER_BYTES: usize = 64 * 1024;

/// A token is used until this long before it expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(5 * 60);

/// The longest `Retry-After` honoured as given; a longer one is cut to this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(15 * 60);

/// Error texts from the other side are cut to this many characters (identity platform
/// descriptions carry trace ids and timestamps over several lines).
pub const MAX_DETAIL_CHARS: usize = 300;

/// The app registration pushgate acts as: its tenant, id and secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: Secret,
}

impl Credentials {
    /// The `tenant_id`, `client_id` and `client_secret` of a connection's unsealed
    /// `subscription` config (Graph's and Office 365's alike), or what is missing.
    pub fn of_subscription(subscription: &Value) -> Result<Credentials, String> {
        let field = |name: &str| subscription_text(subscription, name);
        Ok(Credentials {
            tenant_id: field("tenant_id")?,
            client_id: field("client_id")?,
            client_secret: Secret::new(field("client_secret")?),
        })
    }
}

/// The non-empty string field `name` of a `subscription` config, or what is missing.
pub fn subscription_text(subscription: &Value, name: &str) -> Result<String, String> {
    subscription
        .get(name)
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| format!("`subscription.{name}` is missing"))
}

/// Why no token was issued. `status` and `code` are the identity platform's answer's
/// (`None` when it did not answer, or not with an OAuth error); the texts are scrubbed of
/// the client secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRefusal {
    pub status: Option<u16>,
    pub code: Option<String>,
    pub detail: String,
}

impl TokenRefusal {
    /// The identity platform refused the app itself: `invalid_client` (a wrong or expired
    /// secret) or `unauthorized_client` (an app id the tenant does not know or has
    /// disabled), with HTTP 400 or 401 ("Error response" in Microsoft's client credentials
    /// flow documentation). Anything else says nothing about the credentials.
    pub fn credentials_refused(&self) -> bool {
        refuses_credentials(self.status, self.code.as_deref())
    }
}

/// Whether a token answer with this status and OAuth error code refuses the app itself
/// (see [`TokenRefusal::credentials_refused`]).
pub fn refuses_credentials(status: Option<u16>, code: Option<&str>) -> bool {
    matches!(status, Some(400 | 401)) && matches!(code, Some("invalid_client" | "unauthorized_client"))
}

struct CachedToken {
    token: Secret,
    valid_until: Instant,
}

/// The identity platform's token endpoint and the token cache.
pub struct Tokens {
    client: reqwest::Client,
    login: String,
    /// Keyed by tenant, client id, the SHA-256 (hex) of the client secret and the scope.
    cache: Mutex<HashMap<(String, String, String, String), CachedToken>>,
}

impl Tokens {
    /// `login`: the identity platform (`https://login.microsoftonline.com`), without a
    /// trailing slash.
    pub fn new(client: reqwest::Client, login: &str) -> Tokens {
        Tokens { client, login: login.trim_end_matches('/').to_owned(), cache: Mutex::default() }
    }

    /// An app-only token for `scope` (e.g. `https://graph.microsoft.com/.default`): cached,
    /// or fetched with the client credentials grant.
    pub async fn token(&self, credentials: &Credentials, scope: &str) -> Result<Secret, TokenRefusal> {
        let secret_sha256 = hex::encode(Sha256::digest(credentials.client_secret.expose().as_bytes()));
        let key = (credentials.tenant_id.clone(), credentials.client_id.clone(), secret_sha256, scope.to_owned());
        if let Some(cached) = self.cache.lock().expect("token cache").get(&key) {
            if cached.valid_until > Instant::now() {
                return Ok(cached.token.clone());
            }
        }
        let refused = |status: Option<u16>, code: Option<&str>, detail: String| TokenRefusal {
            status,
            code: code.map(|c| scrub(c, credentials)),
            detail: scrub(&detail, credentials),
        };
        let failed = |detail: String| refused(None, None, detail);
        let mut url = url::Url::parse(&self.login).map_err(|e| failed(format!("login endpoint is not a URL: {e}")))?;
        url.path_segments_mut().map_err(|_| failed("login endpoint cannot take a path".into()))?.pop_if_empty().extend([
            credentials.tenant_id.as_str(),
            "oauth2",
            "v2.0",
            "token",
        ]);
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("client_id", &credentials.client_id)
            .append_pair("client_secret", credentials.client_secret.expose())
            .append_pair("scope", scope)
            .append_pair("grant_type", "client_credentials")
            .finish();
        let request = self.client.post(url).header("content-type", "application/x-www-form-urlencoded").body(form);
        let started = Instant::now();
        let (status, body) = read(request, TOKEN_TIMEOUT, MAX_TOKEN_ANSWER_BYTES).await.map_err(failed)?;
        let answer: Option<Value> = serde_json::from_slice(&body).ok();
        if !status.is_success() {
            // {"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret ..."}
            let code = answer.as_ref().and_then(|a| a.get("error")).and_then(Value::as_str);
            let description = answer.as_ref().and_then(|a| a.get("error_description")).and_then(Value::as_str).unwrap_or("");
            let detail = format!("HTTP {} {}: {}", status.as_u16(), code.unwrap_or("no error code"), short(description));
            return Err(refused(Some(status.as_u16()), code, detail));
        }
        let answer = answer.ok_or_else(|| failed("the answer is not JSON".into()))?;
        let token = answer
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| failed("the answer has no access_token".into()))?;
        let lifetime = answer
            .get("expires_in")
            .and_then(|v| v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok())))
            .map(Duration::from_secs)
            .unwrap_or_default();
        let token = Secret::new(token);
        // A token that lives less than the margin is used for this call only.
        if let Some(valid_until) = lifetime.checked_sub(TOKEN_MARGIN).and_then(|left| started.checked_add(left)) {
            let mut cache = self.cache.lock().expect("token cache");
            cache.retain(|_, t| t.valid_until > Instant::now());
            cache.insert(key, CachedToken { token: token.clone(), valid_until });
        }
        Ok(token)
    }
}

/// Sends a request and reads at most `max_bytes` of its answer; `timeout` is the
/// request's own, for the error text.
pub async fn read(request: reqwest::RequestBuilder, timeout: Duration, max_bytes: usize) -> Result<(reqwest::StatusCode, Vec<u8>), String> {
    let (status, _, body) = read_with_headers(request, timeout, max_bytes).await?;
    Ok((status, body))
}

/// [`read`], with the answer's headers (for `Retry-After`).
pub async fn read_with_headers(
    request: reqwest::RequestBuilder,
    timeout: Duration,
    max_bytes: usize,
) -> Result<(reqwest::StatusCode, reqwest::header::HeaderMap, Vec<u8>), String> {
    let mut response = request.send().await.map_err(|e| crate::outbound::describe_error(&e, timeout))?;
    let status = response.status();
    let headers = response.headers().clone();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| crate::outbound::describe_error(&e, timeout))? {
        if body.len() + chunk.len() > max_bytes {
            return Err(format!("the answer is larger than {max_bytes} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((status, headers, body))
}

/// A `Retry-After` value (seconds, or an HTTP date) as a wait from `now`, at most
/// [`MAX_RETRY_AFTER`].
pub fn retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let wait = match value.trim().parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => {
            let at = DateTime::parse_from_rfc2822(value.trim()).ok()?.with_timezone(&Utc);
            (at - now).to_std().unwrap_or_default()
        }
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// `text` without the client secret, should the other side ever echo it.
pub fn scrub(text: &str, credentials: &Credentials) -> String {
    let secret = credentials.client_secret.expose();
    if secret.is_empty() {
        text.to_owned()
    } else {
        text.replace(secret, "***")
    }
}

/// The first line of `text`, at most [`MAX_DETAIL_CHARS`] characters.
pub fn short(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default().trim();
    match line.char_indices().nth(MAX_DETAIL_CHARS) {
        Some((end, _)) => format!("{}…", &line[..end]),
        None => line.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credentials() -> Credentials {
        Credentials { tenant_id: "t".into(), client_id: "c".into(), client_secret: Secret::new("s3cr3t-value") }
    }

    #[test]
    fn error_texts_never_hold_the_secret() {
        assert_eq!(scrub("AADSTS7000215: s3cr3t-value is wrong", &credentials()), "AADSTS7000215: *** is wrong");
        let long = "x".repeat(1000) + "\nTrace ID: 1";
        assert_eq!(short(&long).chars().count(), MAX_DETAIL_CHARS + 1);
        assert_eq!(short("one\ntwo"), "one");
    }

    #[test]
    fn retry_after_is_seconds_or_a_date_and_bounded() {
        let now = DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z").unwrap().with_timezone(&Utc);
        assert_eq!(retry_after("30", now), Some(Duration::from_secs(30)));
        assert_eq!(retry_after("Tue, 01 Dec 2026 10:01:00 GMT", now), Some(Duration::from_secs(60)));
        assert_eq!(retry_after("Tue, 01 Dec 2026 09:00:00 GMT", now), Some(Duration::ZERO));
        assert_eq!(retry_after("999999", now), Some(MAX_RETRY_AFTER));
        assert_eq!(retry_after("soon", now), None);
    }

    #[test]
    fn only_refusals_of_the_app_itself_are_about_the_credentials() {
        let refusal = |status: Option<u16>, code: Option<&str>| TokenRefusal { status, code: code.map(str::to_owned), detail: "d".into() };
        assert!(refusal(Some(401), Some("invalid_client")).credentials_refused());
        assert!(refusal(Some(400), Some("unauthorized_client")).credentials_refused(), "AADSTS700016: application not found");
        assert!(!refusal(Some(400), Some("invalid_request")).credentials_refused(), "a malformed request");
        assert!(!refusal(Some(503), Some("temporarily_unavailable")).credentials_refused());
        assert!(!refusal(None, None).credentials_refused(), "unreachable");
    }

    /// A token endpoint on 127.0.0.1 that counts its requests.
    async fn token_endpoint() -> (Tokens, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let requests = std::sync::Arc::new(AtomicUsize::new(0));
        let counted = requests.clone();
        let token = move || {
            counted.fetch_add(1, Ordering::SeqCst);
            async { axum::Json(serde_json::json!({"access_token": "token", "expires_in": 3600})) }
        };
        let app = axum::Router::new().route("/login/{tenant}/oauth2/v2.0/token", axum::routing::post(token));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (Tokens::new(reqwest::Client::new(), &format!("{base}/login")), requests)
    }

    #[tokio::test]
    async fn tokens_are_cached_per_secret_and_scope() {
        use std::sync::atomic::Ordering;
        let (tokens, requests) = token_endpoint().await;
        let graph = "https://graph.microsoft.com/.default";
        tokens.token(&credentials(), graph).await.unwrap();
        tokens.token(&credentials(), graph).await.unwrap();
        assert_eq!(requests.load(Ordering::SeqCst), 1, "cached");
        let rotated = Credentials { client_secret: Secret::new("another-secret"), ..credentials() };
        tokens.token(&rotated, graph).await.unwrap();
        assert_eq!(requests.load(Ordering::SeqCst), 2, "another secret is not served the cached token");
        tokens.token(&credentials(), "https://manage.office.com/.default").await.unwrap();
        assert_eq!(requests.load(Ordering::SeqCst), 3, "another scope is not served the cached token");
        tokens.token(&rotated, graph).await.unwrap();
        tokens.token(&credentials(), graph).await.unwrap();
        assert_eq!(requests.load(Ordering::SeqCst), 3);
    }
}
