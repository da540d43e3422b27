//! EventBridge API destinations (`POST /push/aws-eventbridge/{id}`).
//!
//! An API destination authenticates with the connection's shared secret (API key header,
//! HTTP basic, or an HMAC-SHA256 of the raw body; see [`crate::verify::auth`]), checked before the
//! body is read. The body is one EventBridge event, or a JSON array of them; each event
//! must carry its EventBridge `id`, the dedupe key, so a retried delivery is stored once.
//! Each event is decoded by [`super::eventbridge`]: a `Scheduled Event` is a heartbeat,
//! Security Hub findings are one alert each. A batch that holds only heartbeats is a
//! heartbeat; one that mixes both stores the events and records the heartbeat.

use serde_json::Value;

use super::eventbridge::{self, Decoded};
use super::{ConnectionConfig, Intake, RawRequest, Rejected, Sender, Verified};
use crate::verify::auth::{Allowed, Auth};

/// The config of an `aws_eventbridge` connection, as the source catalog describes it.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The API destination connection's authorization: its API key header, basic
    /// credentials, or an HMAC of the body added by the connection's header parameters.
    pub auth: crate::verify::auth::BasicAuthConfig,
}

pub struct EventBridgeSender;

#[async_trait::async_trait]
impl Sender for EventBridgeSender {
    fn prepare(&self, config: &Value) -> Option<Box<dyn std::any::Any + Send + Sync>> {
        Some(Box::new(Auth::parse(config, Allowed::Basic)))
    }

    async fn verify<'a>(&self, request: RawRequest<'a>, config: &ConnectionConfig) -> Result<Verified<'a>, Rejected> {
        let auth = super::webhook::prepared_auth(config, Allowed::Basic)?;
        auth.check(request.headers, request.body, request.now)?;
        // The dedupe keys are the events' own ids, read from the body by `normalize`.
        Ok(Verified::new(request, None))
    }

    fn normalize(&self, verified: &Verified<'_>, _config: &ConnectionConfig) -> Result<Intake, Rejected> {
        let text = std::str::from_utf8(verified.request().body)
            .map_err(|e| Rejected::undecodable("invalid_utf8", format!("body is not UTF-8: {e}")))?;
        let body: Value =
            serde_json::from_str(text).map_err(|e| Rejected::undecodable("invalid_json", format!("body is not JSON: {e}")))?;
        let mut events = Vec::new();
        let mut heartbeat = false;
        // Every event is checked before any is decoded: a batch is kept or refused whole.
        for (event, id) in identified_events(body)? {
            match eventbridge::decode(event, &id) {
                Decoded::Heartbeat => heartbeat = true,
                Decoded::Events(decoded) => events.extend(decoded),
            }
        }
        if events.is_empty() {
            // `identified_events` never answers an empty batch, so this was all heartbeats.
            return Ok(Intake::Heartbeat);
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
