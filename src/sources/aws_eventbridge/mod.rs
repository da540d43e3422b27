//! EventBridge API destinations (`POST /push/aws-eventbridge/{id}`).
//!
//! An API destination authenticates with the connection's shared secret (API key header,
//! HTTP basic, or an HMAC-SHA256 of the raw body; see [`crate::verify::auth`]), checked before the
//! body is read. The body is one EventBridge event, or a JSON array of them; each event
//! must carry its EventBridge `id`, the dedupe key, so a retried delivery is stored once.
//! Each event is decoded by [`event`]: a `Scheduled Event` is a heartbeat,
//! Security Hub findings are one alert each. A batch that holds only heartbeats is a
//! heartbeat; one that mixes both stores the events and records the heartbeat. A
//! heartbeat's id is its event `id` and its time the event's `time`; of several in one
//! batch, the latest counts (the others prove no more than it does).
//!
//! A verified body that is not UTF-8 JSON, not an event or a non-empty array of them, or
//! holds an event without its `id`, is undecodable, and a batch is kept or decoded whole:
//! the whole body is one `raw` event with the request's `Content-Type`, keyed by the
//! body's hash. No event id can key it: a lone event that has its `id` decodes, and the
//! ids of a batch's readable events do not name the batch.

use serde_json::Value;

pub mod config;
pub mod event;

use self::event::Decoded;
use super::{ConfigSpec, Intake, RawRequest, Rejected, Source, SourceSpec, StoredAnswer, UnauthenticatedAnswer, Verified};
use crate::model::{HeartbeatProof, SourceKind};
use crate::verify::auth::{Allowed, Auth};

pub const SPEC: SourceSpec = SourceSpec {
    kind: SourceKind::AwsEventbridge,
    route_segment: "aws-eventbridge",
    lifecycle_route: false,
    default_stream: "cloud_aws_securityhub_alert",
    secret_fields: super::SHARED_SECRET_FIELDS,
    heartbeat: "a verified EventBridge Scheduled Event (source aws.events) sent by a schedule rule to the API destination; its id and time are the event's id and time",
    stored: StoredAnswer::Ok,
    unauthenticated: UnauthenticatedAnswer::Unauthorized,
    config: ConfigSpec::of::<config::Config>(&config::KEYS, config::check),
    build: |_| Box::new(EventBridgeSender),
};

pub struct EventBridgeSender;

#[async_trait::async_trait]
impl Source for EventBridgeSender {
    type Settings = Auth;
    /// Nothing: the dedupe keys are the events' own ids, read from the body by `normalize`.
    type Proof = ();

    const SPEC: &'static SourceSpec = &SPEC;

    fn prepare(&self, config: &Value) -> Result<Auth, Rejected> {
        super::read_auth(config, Allowed::Basic)
    }

    async fn verify<'a>(&self, request: RawRequest<'a>, auth: &Auth) -> Result<Verified<'a, ()>, Rejected> {
        auth.check(request.headers, request.body, request.now)?;
        Ok(Verified::new(request, ()))
    }

    fn normalize(&self, verified: Verified<'_, ()>, _auth: &Auth) -> Result<Intake, Rejected> {
        let text = std::str::from_utf8(verified.request().body)
            .map_err(|e| Rejected::undecodable("invalid_utf8", format!("body is not UTF-8: {e}")))?;
        let body: Value =
            serde_json::from_str(text).map_err(|e| Rejected::undecodable("invalid_json", format!("body is not JSON: {e}")))?;
        let mut events = Vec::new();
        let mut heartbeat: Option<HeartbeatProof> = None;
        // Every event is checked before any is decoded: a batch is kept or refused whole.
        for (event, id) in identified_events(body)? {
            match event::decode(event, &id) {
                Decoded::Heartbeat { time } => {
                    // An unreadable time never beats a readable one.
                    if heartbeat.as_ref().is_none_or(|kept| time.is_some() && kept.signed_at < time) {
                        heartbeat = Some(HeartbeatProof { id: Some(id), signed_at: time });
                    }
                }
                Decoded::Events(decoded) => events.extend(decoded),
            }
        }
        if events.is_empty() {
            // `identified_events` never answers an empty batch, so this was all heartbeats.
            let heartbeat = heartbeat.expect("a batch with no events holds heartbeats");
            return Ok(Intake::Heartbeat(heartbeat));
        }
        Ok(Intake::Events { events, heartbeat, stream: None })
    }
}

/// The events of a body (one event object, or a non-empty array of them), each with its
/// `id`; refuses the body when any event is not an object or has no string `id`.
fn identified_events(body: Value) -> Result<Vec<(Value, String)>, Rejected> {
    let (events, batch) = match body {
        Value::Array(items) if items.is_empty() => {
            return Err(Rejected::undecodable("empty_batch", "the body is an empty array: expected EventBridge events"));
        }
        Value::Array(items) => (items, true),
        event @ Value::Object(_) => (vec![event], false),
        _ => {
            return Err(Rejected::undecodable("not_an_event", "the body is neither an EventBridge event nor an array of them"));
        }
    };
    let which = |index: usize| if batch { format!("event {index} of the batch") } else { "the event".to_owned() };
    events
        .into_iter()
        .enumerate()
        .map(|(index, event)| {
            if !event.is_object() {
                return Err(Rejected::undecodable("not_an_event", format!("{} is not a JSON object", which(index))));
            }
            match event.get("id").and_then(Value::as_str) {
                Some(id) if !id.is_empty() => {
                    let id = id.to_owned();
                    Ok((event, id))
                }
                _ => Err(Rejected::undecodable("missing_event_id", format!("{} has no string `id`", which(index)))),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
