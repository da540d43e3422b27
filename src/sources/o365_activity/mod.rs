//! Office 365 Management Activity API webhooks (`POST /push/o365-activity/{id}`).
//!
//! A subscription started with a webhook (`/subscriptions/start` with `webhook.authId`)
//! sends every request with the header `Webhook-AuthID` set to that `authId`, the
//! connection's secret `auth_id`, compared in constant time before the body is read. The
//! first request is a validation, `{"validationCode": "..."}`, answered 200. After it,
//! each request lists content blobs that became available:
//! `[{"tenantId", "clientId", "contentType", "contentId", "contentUri", "contentCreated",
//! "contentExpiration"}]`. Each is stored as one `telemetry` event, deduplicated on its
//! `contentId`, at its `contentCreated` time. pushgate never fetches `contentUri`: the
//! notification is what is stored (a consumer with API access fetches the blob), so a
//! forged URI can never make pushgate call anyone.
//!
//! An authenticated request that is not JSON or not a list of content notifications (or
//! holds one without a required field) is undecodable: the whole body is its `raw` event,
//! with the request's `Content-Type`, keyed by the body's hash (no notification id can be
//! trusted in a body that does not read).

pub mod config;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{ConfigSpec, Handshake, Intake, RawRequest, Rejected, Source, SourceSpec, StoredAnswer, UnauthenticatedAnswer, Verified};
use crate::model::{EventKind, NewEvent, SourceKind};
use crate::verify::constant_time_eq;

pub const SPEC: SourceSpec = SourceSpec {
    kind: SourceKind::O365Activity,
    route_segment: "o365-activity",
    lifecycle_route: false,
    default_stream: "cloud_ms_o365_activity_log",
    secret_fields: &["auth_id", "subscription.client_secret"],
    heartbeat: "none: the Management Activity API sends no heartbeat; each content notification counts as data",
    stored: StoredAnswer::Ok,
    unauthenticated: UnauthenticatedAnswer::Unauthorized,
    config: ConfigSpec::of::<config::Config>(&config::KEYS, config::check),
    build: |_| Box::new(O365ActivitySender),
};

/// The header Microsoft sends the subscription's `authId` in.
pub const AUTH_HEADER: &str = "webhook-authid";

/// Most content notifications read from one request.
pub const MAX_NOTIFICATIONS: usize = 1000;

/// The fields a content notification must have.
const REQUIRED: [&str; 4] = ["contentType", "contentId", "contentUri", "contentCreated"];

pub struct O365ActivitySender;

#[async_trait::async_trait]
impl Source for O365ActivitySender {
    /// The `auth_id` every request must carry.
    type Settings = String;
    type Proof = ();

    const SPEC: &'static SourceSpec = &SPEC;

    fn prepare(&self, config: &Value) -> Result<String, Rejected> {
        config.get("auth_id").and_then(Value::as_str).map(str::to_owned).ok_or_else(|| Rejected::config("the connection has no auth_id"))
    }

    async fn verify<'a>(&self, request: RawRequest<'a>, expected: &String) -> Result<Verified<'a, ()>, Rejected> {
        let given = request
            .headers
            .get(AUTH_HEADER)
            .ok_or_else(|| Rejected::unauthenticated("o365_auth_id_missing", "no Webhook-AuthID header"))?;
        if !constant_time_eq(given.as_bytes(), expected.as_bytes()) {
            return Err(Rejected::unauthenticated(
                "o365_auth_id_invalid",
                "the Webhook-AuthID header does not match the connection's auth_id",
            ));
        }
        Ok(Verified::new(request, ()))
    }

    fn normalize(&self, verified: Verified<'_, ()>, _expected: &String) -> Result<Intake, Rejected> {
        let body: Value = serde_json::from_slice(verified.request().body)
            .map_err(|e| Rejected::undecodable("invalid_json", format!("body is not JSON: {e}")))?;
        if body.get("validationCode").is_some_and(Value::is_string) {
            return Ok(Intake::Handshake(Handshake::O365Validation));
        }
        let items = match body {
            Value::Array(items) => items,
            single @ Value::Object(_) => vec![single],
            other => {
                return Err(Rejected::undecodable(
                    "o365_notification_malformed",
                    format!("expected a list of content notifications, got {}", super::json_kind(&other)),
                ))
            }
        };
        if items.is_empty() || items.len() > MAX_NOTIFICATIONS {
            return Err(Rejected::undecodable(
                "o365_notification_malformed",
                format!("expected 1 to {MAX_NOTIFICATIONS} content notifications, got {}", items.len()),
            ));
        }
        // Every notification is checked before any is kept: a request is stored or kept whole.
        let events = items.into_iter().enumerate().map(|(i, item)| content_event(i, item)).collect::<Result<_, _>>()?;
        Ok(Intake::events(events))
    }
}

/// One content notification as an event.
fn content_event(index: usize, item: Value) -> Result<NewEvent, Rejected> {
    let malformed = |what: String| Rejected::undecodable("o365_notification_malformed", format!("notification {index}: {what}"));
    if !item.is_object() {
        return Err(malformed(format!("expected an object, got {}", super::json_kind(&item))));
    }
    for field in REQUIRED {
        if item.get(field).and_then(Value::as_str).is_none_or(str::is_empty) {
            return Err(malformed(format!("`{field}` must be a non-empty string")));
        }
    }
    let content_id = item["contentId"].as_str().unwrap_or_default().to_owned();
    let occurred_at = item["contentCreated"].as_str().and_then(|t| DateTime::parse_from_rfc3339(t).ok()).map(|t| t.with_timezone(&Utc));
    Ok(NewEvent { dedupe_key: content_id, kind: EventKind::Telemetry, occurred_at, payload: item })
}

#[cfg(test)]
mod tests;
