//! The config of a `webhook` connection: its typed form (the catalog's schema) and the
//! rules `POST /v1/connections` words for a person.

use serde_json::{Map, Value};

use crate::verify::auth::{Allowed, Auth};

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
    /// How a body holds its events: `json`, one JSON value (default), or `ndjson`, one JSON
    /// value per line, each line one event (such a body carries no heartbeat).
    #[serde(default, deserialize_with = "crate::model::present")]
    pub format: Option<WebhookFormat>,
}

/// The `format` of a webhook connection's bodies.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WebhookFormat {
    Json,
    Ndjson,
}

/// The `event_kind` a webhook connection stores its pushes as.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WebhookEventKind {
    Alert,
    Telemetry,
}

/// Keys a `webhook` config may have.
pub const KEYS: [&str; 4] = ["auth", "id_header", "event_kind", "format"];

/// Adds every problem with a `webhook` config to `errors`.
pub fn check(map: &Map<String, Value>, errors: &mut Vec<String>) {
    errors.extend(validate_config(&Value::Object(map.clone())));
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
    if let Some(v) = config.get("format") {
        if !matches!(v.as_str(), Some("json" | "ndjson")) {
            errors.push("`format` must be `json` (one JSON value per body) or `ndjson` (one JSON value per line)".into());
        }
    }
    errors
}
