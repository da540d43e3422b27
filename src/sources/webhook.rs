//! Generic signed webhooks (`POST /push/webhook/{id}`).
//!
//! Authentication is one of the shared-secret schemes of [`crate::verify::auth`], checked over the
//! raw body. The body must be JSON; `{"type": "heartbeat"}` is a heartbeat. The dedupe
//! key is the signed `webhook-id` (Standard Webhooks); with `api_key` or `basic`, the
//! delivery id header (`webhook-id`, or the one named by `id_header`); otherwise a
//! SHA-256 of the body. A retried delivery is stored once.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{header, ConnectionConfig, Intake, RawRequest, Rejected, Sender, Verified};
use crate::model::{EventKind, NewEvent};
use crate::verify::auth::{Allowed, Auth};

pub struct WebhookSender;

/// The connection's `auth`, as its sender parsed it when the connection was loaded (or
/// parsed now, for a config loaded without it). Configs are validated when saved; one that
/// no longer parses refuses everything.
pub(in crate::sources) fn prepared_auth(config: &ConnectionConfig, allowed: Allowed) -> Result<std::borrow::Cow<'_, Auth>, Rejected> {
    let refused = |e: &Vec<String>| Rejected::unauthenticated("invalid_connection_config", e.join("; "));
    match config.prepared::<Result<Auth, Vec<String>>>() {
        Some(Ok(auth)) => Ok(std::borrow::Cow::Borrowed(auth)),
        Some(Err(e)) => Err(refused(e)),
        None => Auth::parse(config, allowed).map(std::borrow::Cow::Owned).map_err(|e| refused(&e)),
    }
}

/// The config of a `webhook` connection, as the source catalog describes it.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// How each push proves it comes from the sender.
    pub auth: crate::verify::auth::AuthConfig,
    /// The header whose value is the delivery id with `api_key` or `basic` (default `webhook-id`).
    #[schemars(regex(pattern = crate::verify::auth::HEADER_NAME_PATTERN))]
    #[serde(default, deserialize_with = "crate::model::present")]
    pub id_header: Option<String>,
    /// What the stored events are (default `alert`).
    #[serde(default, deserialize_with = "crate::model::present")]
    pub event_kind: Option<WebhookEventKind>,
}

/// The `event_kind` a webhook connection stores its pushes as.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WebhookEventKind {
    Alert,
    Telemetry,
}

/// Longest delivery id header value used as it is.
const MAX_ID_LEN: usize = 256;

/// Keys a `webhook` config may have.
pub const CONFIG_KEYS: [&str; 3] = ["auth", "id_header", "event_kind"];

#[async_trait::async_trait]
impl Sender for WebhookSender {
    fn prepare(&self, config: &Value) -> Option<Box<dyn std::any::Any + Send + Sync>> {
        Some(Box::new(Auth::parse(config, Allowed::WithStandardWebhooks)))
    }

    async fn verify<'a>(&self, request: RawRequest<'a>, config: &ConnectionConfig) -> Result<Verified<'a>, Rejected> {
        let auth = prepared_auth(config, Allowed::WithStandardWebhooks)?;
        let auth = auth.as_ref();
        let signed_id = auth.check(request.headers, request.body, request.now)?;
        // A delivery id outside the signature is trusted only when the signature covers
        // nothing else either (api_key, basic). With an HMAC of the body, whoever replays a
        // captured push could set a future delivery id and so make the real event a
        // "duplicate"; there the body hash is the dedupe key.
        let delivery_id = signed_id.or_else(|| {
            if auth.signs_body() {
                return None;
            }
            let name = config.get("id_header").and_then(Value::as_str).unwrap_or("webhook-id");
            header(request.headers, name).filter(|v| !v.is_empty()).map(|v| v.chars().take(MAX_ID_LEN).collect())
        });
        Ok(Verified::new(request, delivery_id))
    }

    fn normalize(&self, verified: &Verified<'_>, config: &ConnectionConfig) -> Result<Intake, Rejected> {
        let body = verified.request().body;
        let text = std::str::from_utf8(body).map_err(|e| Rejected::undecodable("invalid_utf8", format!("body is not UTF-8: {e}")))?;
        let payload: Value =
            serde_json::from_str(text).map_err(|e| Rejected::undecodable("invalid_json", format!("body is not JSON: {e}")))?;
        if payload.get("type").and_then(Value::as_str) == Some("heartbeat") {
            return Ok(Intake::Heartbeat);
        }
        let kind = match config.get("event_kind").and_then(Value::as_str) {
            Some("telemetry") => EventKind::Telemetry,
            _ => EventKind::Alert,
        };
        let dedupe_key = match &verified.delivery_id {
            Some(id) => id.clone(),
            None => format!("sha256:{}", hex::encode(Sha256::digest(body))),
        };
        Ok(Intake::events(vec![NewEvent { dedupe_key, kind, occurred_at: occurred_at(&payload), payload }]))
    }
}

/// The event time a payload states at its top level, if any.
fn occurred_at(payload: &Value) -> Option<DateTime<Utc>> {
    ["occurred_at", "time", "timestamp"].iter().find_map(|key| {
        let text = payload.get(*key)?.as_str()?;
        DateTime::parse_from_rfc3339(text).ok().map(|t| t.with_timezone(&Utc))
    })
}

/// Problems with a `webhook` config.
pub fn validate_config(config: &Value) -> Vec<String> {
    let mut errors = Auth::parse(config, Allowed::WithStandardWebhooks).err().unwrap_or_default();
    if let Some(v) = config.get("id_header") {
        if v.as_str().is_none_or(|s| http::HeaderName::from_bytes(s.as_bytes()).is_err()) {
            errors.push("`id_header` must be an HTTP header name".into());
        }
    }
    if let Some(v) = config.get("event_kind") {
        if !matches!(v.as_str(), Some("alert" | "telemetry")) {
            errors.push("`event_kind` must be `alert` or `telemetry`".into());
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::RejectClass;
    use http::HeaderMap;
    use serde_json::json;

    fn request<'a>(headers: &'a HeaderMap, body: &'a [u8]) -> RawRequest<'a> {
        RawRequest { headers, query: None, body, push_url: "http://x/push/webhook/1", now: Utc::now() }
    }

    fn signed(secret: &str, body: &[u8]) -> HeaderMap {
        let mut h = HeaderMap::new();
        let sig = hex::encode(crate::verify::hmac_sha256(secret.as_bytes(), &[body]));
        h.insert("x-sig", sig.parse().unwrap());
        h
    }

    fn config() -> Value {
        json!({"auth": {"type": "hmac_sha256", "header": "X-Sig", "secret": "s3cret"}})
    }

    async fn receive(headers: &HeaderMap, body: &[u8], config: &Value) -> Result<Intake, Rejected> {
        let config = &ConnectionConfig::load(&WebhookSender, config.clone());
        let verified = WebhookSender.verify(request(headers, body), config).await?;
        WebhookSender.normalize(&verified, config)
    }

    #[tokio::test]
    async fn a_signed_json_body_is_one_alert_keyed_by_body_hash() {
        let body = br#"{"alert":"x","time":"2026-01-02T03:04:05Z"}"#;
        let Intake::Events { events, .. } = receive(&signed("s3cret", body), body, &config()).await.unwrap() else {
            panic!("expected events")
        };
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].kind, EventKind::Alert);
        assert_eq!(events[0].dedupe_key, format!("sha256:{}", hex::encode(Sha256::digest(body))));
        assert_eq!(events[0].occurred_at.unwrap().to_rfc3339(), "2026-01-02T03:04:05+00:00");
        assert_eq!(events[0].payload["alert"], "x");
    }

    #[tokio::test]
    async fn an_unsigned_delivery_id_is_ignored_when_the_body_is_signed() {
        let body = br#"{"a":1}"#;
        let mut headers = signed("s3cret", body);
        headers.insert("webhook-id", "evt_1".parse().unwrap());
        let Intake::Events { events, .. } = receive(&headers, body, &config()).await.unwrap() else { panic!() };
        assert!(events[0].dedupe_key.starts_with("sha256:"));
    }

    #[tokio::test]
    async fn the_delivery_id_header_is_the_dedupe_key_with_an_api_key() {
        let config = json!({"auth": {"type": "api_key", "header": "X-Key", "value": "k"}, "id_header": "X-Delivery"});
        let mut headers = HeaderMap::new();
        headers.insert("x-key", "k".parse().unwrap());
        headers.insert("x-delivery", "d-9".parse().unwrap());
        let Intake::Events { events, .. } = receive(&headers, b"{}", &config).await.unwrap() else { panic!() };
        assert_eq!(events[0].dedupe_key, "d-9");
    }

    #[tokio::test]
    async fn the_auth_is_parsed_once_when_the_connection_is_loaded() {
        let loaded = ConnectionConfig::load(&WebhookSender, config());
        assert!(matches!(loaded.prepared::<Result<Auth, Vec<String>>>(), Some(Ok(Auth::HmacSha256 { .. }))));
        // A config saved before a rule tightened, which no longer reads: every push is refused.
        let broken = ConnectionConfig::load(&WebhookSender, json!({"auth": {"type": "hmac_sha256"}}));
        let body = br#"{"a":1}"#;
        let e = WebhookSender.verify(request(&signed("s3cret", body), body), &broken).await.unwrap_err();
        assert_eq!((e.class, e.reason), (RejectClass::Unauthenticated, "invalid_connection_config"));
        assert!(e.detail.contains("auth.header"), "{}", e.detail);
        // Loaded without preparing (a caller that did not), the JSON is read on the spot.
        let unprepared = ConnectionConfig::unprepared(config());
        assert!(WebhookSender.verify(request(&signed("s3cret", body), body), &unprepared).await.is_ok());
    }

    #[tokio::test]
    async fn heartbeat_body_is_a_heartbeat() {
        let body = br#"{"type":"heartbeat"}"#;
        assert_eq!(receive(&signed("s3cret", body), body, &config()).await.unwrap(), Intake::Heartbeat);
    }

    #[tokio::test]
    async fn verified_but_undecodable_bodies_are_undecodable() {
        for body in [&b"not json"[..], &[0xff, 0xfe, b'{'][..]] {
            let e = receive(&signed("s3cret", body), body, &config()).await.unwrap_err();
            assert_eq!(e.class, RejectClass::Undecodable, "{e}");
        }
    }

    #[tokio::test]
    async fn unsigned_bodies_are_refused_before_parsing() {
        let e = receive(&HeaderMap::new(), b"not json", &config()).await.unwrap_err();
        assert_eq!(e.class, RejectClass::Unauthenticated);
    }

    #[test]
    fn config_validation() {
        assert!(validate_config(&config()).is_empty());
        assert!(!validate_config(&json!({})).is_empty());
        let mut c = config();
        c["event_kind"] = json!("weird");
        assert_eq!(validate_config(&c).len(), 1);
    }
}
