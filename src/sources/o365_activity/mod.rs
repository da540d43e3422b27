//! Office 365 Management Activity API webhooks (`POST /push/o365-activity/{id}`).
//!
//! A subscription started with a webhook (`/subscriptions/start` with `webhook.authId`)
//! sends every request with the header `Webhook-AuthID` set to that `authId`, the
//! connection's secret `auth_id`, compared in constant time before the body is read. The
//! first request is a validation, `{"validationCode": "..."}`, answered 200. After it,
//! each request lists content blobs that became available:
//! `[{"tenantId", "clientId", "contentType", "contentId", "contentUri", "contentCreated",
//! "contentExpiration"}]`, each deduplicated on its `contentId`, at its `contentCreated`
//! time.
//!
//! - **Without Management API credentials** (no `subscription` in the config) each
//!   notification is stored as one `telemetry` event, and that is all: pushgate never
//!   calls `contentUri`; a consumer with API access fetches the blob.
//! - **With them** each notification is stored as a `lifecycle` event (it says content is
//!   ready; the audit records are the data) and its blob is queued for the background
//!   fetch ([`crate::model::ContentFetch`]) in the same transaction, so the notification
//!   is acknowledged before anything is fetched: Microsoft wants quick answers. The fetch
//!   job (`microsoft::o365::fetch`) requests only URIs of the connection's Management API
//!   endpoint and tenant, and stores each audit record as a `telemetry` event. Nothing in
//!   this module calls anyone, so a forged URI cannot make the push path call out.
//!
//! An authenticated request that is not JSON or not a list of content notifications (or
//! holds one without a required field) is undecodable: the whole body is its `raw` event,
//! with the request's `Content-Type`, keyed by the body's hash (no notification id can be
//! trusted in a body that does not read).

pub mod config;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::model::{ContentFetch, CONTENT_LIFETIME};

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

/// What a push is checked and decoded with, read once from the connection's config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The `auth_id` every request must carry.
    pub auth_id: String,
    /// The connection has Management API credentials (`subscription`): the content each
    /// notification announces is fetched.
    pub fetches: bool,
}

#[async_trait::async_trait]
impl Source for O365ActivitySender {
    type Settings = Settings;
    type Proof = ();

    const SPEC: &'static SourceSpec = &SPEC;

    fn prepare(&self, config: &Value) -> Result<Settings, Rejected> {
        let auth_id = config
            .get("auth_id")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| Rejected::config("the connection has no auth_id"))?;
        Ok(Settings { auth_id, fetches: config.get("subscription").is_some_and(Value::is_object) })
    }

    async fn verify<'a>(&self, request: RawRequest<'a>, settings: &Settings) -> Result<Verified<'a, ()>, Rejected> {
        let expected = &settings.auth_id;
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

    fn normalize(&self, verified: Verified<'_, ()>, settings: &Settings) -> Result<Intake, Rejected> {
        let received_at = verified.request().now;
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
        let events: Vec<NewEvent> = items.into_iter().enumerate().map(|(i, item)| content_event(i, item)).collect::<Result<_, _>>()?;
        if !settings.fetches {
            return Ok(Intake::events(events));
        }
        let fetches = events.iter().map(|e| content_fetch(e, received_at)).collect();
        let events = events.into_iter().map(|e| NewEvent { kind: EventKind::Lifecycle, ..e }).collect();
        Ok(Intake::Content { events, fetches })
    }
}

/// The fetch of the blob notification `event` (checked by [`content_event`]) announces,
/// arrived at `received_at`.
fn content_fetch(event: &NewEvent, received_at: DateTime<Utc>) -> ContentFetch {
    let field = |name: &str| event.payload.get(name).and_then(Value::as_str).unwrap_or_default().to_owned();
    let created = event.occurred_at;
    let expires_at = event.payload.get("contentExpiration").and_then(Value::as_str).and_then(parse_time);
    ContentFetch {
        content_id: field("contentId"),
        content_type: field("contentType"),
        content_uri: field("contentUri"),
        content_created: created,
        expires_at: expires_at.unwrap_or_else(|| created.unwrap_or(received_at) + CONTENT_LIFETIME),
        event_key: event.dedupe_key.clone(),
    }
}

/// An RFC 3339 time, in UTC.
fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text).ok().map(|t| t.with_timezone(&Utc))
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
    let occurred_at = item["contentCreated"].as_str().and_then(parse_time);
    Ok(NewEvent { dedupe_key: content_id, kind: EventKind::Telemetry, occurred_at, payload: item })
}

#[cfg(test)]
mod tests;
