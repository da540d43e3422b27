//! Generic signed webhooks (`POST /push/webhook/{id}`).
//!
//! Authentication is one of the shared-secret schemes of [`crate::verify::auth`], checked over the
//! raw body. The body must be JSON; `{"type": "heartbeat"}` is a heartbeat. The dedupe
//! key is the signed `webhook-id` (Standard Webhooks); with `api_key` or `basic`, the
//! delivery id header (`webhook-id`, or the one named by `id_header`); otherwise a
//! SHA-256 of the body. A retried delivery is stored once.
//!
//! With `"format": "ndjson"` each non-empty line is one event ([`ndjson`]); such a body
//! carries events only, never a heartbeat.
//!
//! A verified body that is not UTF-8 or not JSON is undecodable: the whole body is its
//! `raw` event, with the request's `Content-Type`, keyed like any delivery (its delivery
//! id, else its body hash).
//!
//! A heartbeat proves liveness at the time it names (`model::heartbeat`): with Standard
//! Webhooks, the signed `webhook-id` and `webhook-timestamp`; with every other auth type,
//! the body's `id` and `time` (RFC 3339), e.g.
//! `{"type": "heartbeat", "id": "hb-2026-12-01T10:05:00Z", "time": "2026-12-01T10:05:00Z"}`.
//! A heartbeat without them counts nothing (`heartbeat_not_fresh`): with `hmac_sha256`
//! only the body is signed, and with `api_key` or `basic` nothing is, so a header could
//! not prove a time either; a heartbeat that names none could be replayed forever.

pub mod config;
pub mod ndjson;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{header, ConfigSpec, Intake, RawRequest, Rejected, Source, SourceSpec, StoredAnswer, UnauthenticatedAnswer, Verified};
use crate::model::{content_key, EventKind, HeartbeatProof, NewEvent, SourceKind};
use crate::verify::auth::{Allowed, Auth};

pub const SPEC: SourceSpec = SourceSpec {
    kind: SourceKind::Webhook,
    route_segment: "webhook",
    lifecycle_route: false,
    default_stream: "webhook_event",
    secret_fields: super::SHARED_SECRET_FIELDS,
    heartbeat: "a verified push whose JSON body is {\"type\": \"heartbeat\"}, with its `id` and `time` in the body (Standard Webhooks: the signed webhook-id and webhook-timestamp)",
    stored: StoredAnswer::Ok,
    unauthenticated: UnauthenticatedAnswer::Unauthorized,
    config: ConfigSpec::of::<config::Config>(&config::KEYS, config::check),
    build: |_| Box::new(WebhookSender),
};

pub struct WebhookSender;

/// What a webhook push is checked against.
pub struct Settings {
    auth: Auth,
    /// The header whose value is the delivery id with `api_key` or `basic`.
    id_header: String,
    event_kind: EventKind,
    /// `ndjson`: one event per line.
    ndjson: bool,
}

/// Longest delivery id header value used as it is.
const MAX_ID_LEN: usize = 256;

#[async_trait::async_trait]
impl Source for WebhookSender {
    type Settings = Settings;
    /// The delivery id the push's signature covers or its header names, if one counts, and
    /// the time the signature covers (Standard Webhooks).
    type Proof = Delivery;

    const SPEC: &'static SourceSpec = &SPEC;

    fn prepare(&self, config: &Value) -> Result<Settings, Rejected> {
        Ok(Settings {
            auth: super::read_auth(config, Allowed::WithStandardWebhooks)?,
            id_header: config.get("id_header").and_then(Value::as_str).unwrap_or("webhook-id").to_owned(),
            event_kind: match config.get("event_kind").and_then(Value::as_str) {
                Some("telemetry") => EventKind::Telemetry,
                _ => EventKind::Alert,
            },
            ndjson: config.get("format").and_then(Value::as_str) == Some("ndjson"),
        })
    }

    async fn verify<'a>(&self, request: RawRequest<'a>, settings: &Settings) -> Result<Verified<'a, Delivery>, Rejected> {
        let auth = &settings.auth;
        let signed = auth.check(request.headers, request.body, request.now)?;
        let signed_at = signed.as_ref().map(|s| s.at);
        let signed_id = signed.map(|s| s.id);
        // A delivery id outside the signature is trusted only when the signature covers
        // nothing else either (api_key, basic). With an HMAC of the body, whoever replays a
        // captured push could set a future delivery id and so make the real event a
        // "duplicate"; there the body hash is the dedupe key.
        let delivery_id = signed_id.or_else(|| {
            if auth.signs_body() {
                return None;
            }
            header(request.headers, &settings.id_header).filter(|v| !v.is_empty()).map(|v| v.chars().take(MAX_ID_LEN).collect())
        });
        Ok(Verified::new(request, Delivery { id: delivery_id, signed_at }))
    }

    fn normalize(&self, verified: Verified<'_, Delivery>, settings: &Settings) -> Result<Intake, Rejected> {
        let (request, Delivery { id: delivery_id, signed_at }) = verified.into_parts();
        let body = request.body;
        if settings.ndjson {
            return ndjson::intake(body, delivery_id, settings.event_kind);
        }
        let text = std::str::from_utf8(body)
            .map_err(|e| Rejected::undecodable("invalid_utf8", format!("body is not UTF-8: {e}")).keyed(delivery_id.clone()))?;
        let payload: Value = serde_json::from_str(text)
            .map_err(|e| Rejected::undecodable("invalid_json", format!("body is not JSON: {e}")).keyed(delivery_id.clone()))?;
        if payload.get("type").and_then(Value::as_str) == Some("heartbeat") {
            let proof = match (signed_at, delivery_id) {
                // Standard Webhooks: what the signature covers.
                (Some(signed_at), Some(id)) => HeartbeatProof::new(id, signed_at),
                _ => HeartbeatProof {
                    id: payload.get("id").and_then(Value::as_str).map(str::to_owned),
                    signed_at: payload.get("time").and_then(Value::as_str).and_then(rfc3339),
                },
            };
            return Ok(Intake::Heartbeat(proof));
        }
        let dedupe_key = delivery_id.unwrap_or_else(|| content_key(body));
        Ok(Intake::events(vec![NewEvent { dedupe_key, kind: settings.event_kind, occurred_at: occurred_at(&payload), payload }]))
    }
}

/// What verification learned of a delivery.
#[derive(Debug)]
pub struct Delivery {
    /// The delivery id the signature covers or its header names, if one counts.
    id: Option<String>,
    /// The time the signature covers (Standard Webhooks).
    signed_at: Option<DateTime<Utc>>,
}

/// The event time a payload states at its top level, if any.
fn occurred_at(payload: &Value) -> Option<DateTime<Utc>> {
    ["occurred_at", "time", "timestamp"].iter().find_map(|key| rfc3339(payload.get(*key)?.as_str()?))
}

fn rfc3339(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text).ok().map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests;
