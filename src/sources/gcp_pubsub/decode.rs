//! One Pub/Sub message (already read by `envelope`) turned into the event pushgate stores.
//! Heartbeats are the caller's to recognise first ([`PushMessage::is_heartbeat`]): this
//! module makes an event of every message it is given.
//!
//! The event is keyed by the message id. Its payload is the decoded message data, never its
//! base64, with the Pub/Sub metadata kept beside it under the reserved key `_pubsub`:
//! `{"message_id", "publish_time", "attributes", "ordering_key", "delivery_attempt",
//! "subscription"}` (always all six; `publish_time` as Pub/Sub wrote it; absent ones null).
//!
//! - Data that is a JSON object is the payload itself, with `_pubsub` added to it, so a
//!   consumer reads an SCC notification's `finding` where Google documents it. When the
//!   object already has a `_pubsub` member, nothing of it is overwritten: the payload is
//!   then `{"data": <the object>, "_pubsub": {...}}`, the layout of all other data.
//! - Other data is `{"data": ..., "_pubsub": {...}}`, where `data` is the JSON value when
//!   the data is JSON, else the text when it is UTF-8 with no control characters other than
//!   tab, CR and LF, else `{"base64": "<standard base64>"}`: binary data is kept exact
//!   (the stores refuse NUL in text, and other control bytes read as noise).
//!
//! What a message is, from its data and attributes only:
//!
//! - A Security Command Center notification (data: an object with a `finding` object) is
//!   an `alert` at `finding.eventTime`, else `finding.createTime`; stream hint
//!   `cloud_gcp_security_finding`.
//! - A Google Workspace Alert Center alert (an attribute named `alertcenter_*`, or data: an
//!   object with text `alertId`, `customerId` and `type`) is an `alert` at the data's
//!   `startTime`, else its `createTime`, else the attribute `alertcenter_start_time`, else
//!   `alertcenter_create_time`; stream hint `cloud_google_workspace_alert`.
//! - Any other JSON object is `telemetry` at its top-level `eventTime`, else `time`, else
//!   `timestamp`; no stream hint.
//! - Anything else is `telemetry`; no stream hint.
//!
//! Each falls back to the publish time, which Pub/Sub stamps shortly after the event. Times
//! are RFC 3339; one that is missing or not RFC 3339 is passed over and never refuses a
//! message. The stream hint names the stream such messages belong in; it is only a hint.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use super::envelope::{parse_time, PushMessage};
use crate::model::{EventKind, NewEvent};

/// The stream of Security Command Center findings.
pub const SCC_STREAM: &str = "cloud_gcp_security_finding";
/// The stream of Google Workspace Alert Center alerts.
pub const WORKSPACE_ALERT_STREAM: &str = "cloud_google_workspace_alert";

/// The payload key that holds the Pub/Sub metadata.
const PUBSUB_KEY: &str = "_pubsub";

/// Where an SCC finding states its time, most telling first.
const SCC_TIMES: [&str; 2] = ["eventTime", "createTime"];
/// Where an Alert Center alert states its time, in its data, then in its attributes.
const WORKSPACE_TIMES: [&str; 2] = ["startTime", "createTime"];
const WORKSPACE_ATTRIBUTE_TIMES: [&str; 2] = ["alertcenter_start_time", "alertcenter_create_time"];
/// Where other JSON commonly states its time (Pub/Sub-style, CloudEvents, Cloud Logging).
const OTHER_TIMES: [&str; 3] = ["eventTime", "time", "timestamp"];

/// The event one message becomes, and the stream such messages belong in when known.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedMessage {
    pub event: NewEvent,
    pub stream_hint: Option<&'static str>,
}

/// The message data, read as the module doc says.
enum Data {
    Json(Value),
    Text(String),
    Binary(Vec<u8>),
}

/// Decodes one message into one event (module doc).
pub fn decode(message: &PushMessage) -> DecodedMessage {
    let data = read_data(&message.data);
    let object = match &data {
        Data::Json(Value::Object(object)) => Some(object),
        _ => None,
    };
    let (kind, stated_time, stream_hint) = if let Some(finding) = object.and_then(scc_finding) {
        (EventKind::Alert, first_time(finding, &SCC_TIMES), Some(SCC_STREAM))
    } else if is_workspace_alert(message, object) {
        let stated = object.and_then(|alert| first_time(alert, &WORKSPACE_TIMES));
        let announced = || WORKSPACE_ATTRIBUTE_TIMES.iter().find_map(|name| message.attributes.get(*name).and_then(|t| parse_time(t)));
        (EventKind::Alert, stated.or_else(announced), Some(WORKSPACE_ALERT_STREAM))
    } else {
        (EventKind::Telemetry, object.and_then(|object| first_time(object, &OTHER_TIMES)), None)
    };
    let event = NewEvent {
        dedupe_key: message.message_id.clone(),
        kind,
        occurred_at: stated_time.or(message.publish_time),
        payload: payload(data, metadata(message)),
    };
    DecodedMessage { event, stream_hint }
}

fn read_data(bytes: &[u8]) -> Data {
    if let Ok(value) = serde_json::from_slice(bytes) {
        return Data::Json(value);
    }
    match std::str::from_utf8(bytes) {
        Ok(text) if text.chars().all(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r')) => Data::Text(text.to_owned()),
        _ => Data::Binary(bytes.to_vec()),
    }
}

/// The `finding` of a Security Command Center `NotificationMessage`.
fn scc_finding(data: &Map<String, Value>) -> Option<&Map<String, Value>> {
    data.get("finding").and_then(Value::as_object)
}

/// Alert Center marks its notifications with `alertcenter_*` attributes; its alert JSON
/// alone is recognised too, for a message republished without them.
fn is_workspace_alert(message: &PushMessage, data: Option<&Map<String, Value>>) -> bool {
    let announced = message.attributes.keys().any(|name| name.starts_with("alertcenter_"));
    let shaped =
        data.is_some_and(|alert| ["alertId", "customerId", "type"].iter().all(|key| alert.get(*key).is_some_and(Value::is_string)));
    announced || shaped
}

/// The first of `names` that holds an RFC 3339 time.
fn first_time(object: &Map<String, Value>, names: &[&str]) -> Option<DateTime<Utc>> {
    names.iter().find_map(|name| object.get(*name).and_then(Value::as_str).and_then(parse_time))
}

/// The `_pubsub` member of the payload.
fn metadata(message: &PushMessage) -> Value {
    json!({
        "message_id": message.message_id,
        "publish_time": message.publish_time_text,
        "attributes": message.attributes,
        "ordering_key": message.ordering_key,
        "delivery_attempt": message.delivery_attempt,
        "subscription": message.subscription,
    })
}

fn payload(data: Data, metadata: Value) -> Value {
    let data = match data {
        Data::Json(Value::Object(mut object)) if !object.contains_key(PUBSUB_KEY) => {
            object.insert(PUBSUB_KEY.to_owned(), metadata);
            return Value::Object(object);
        }
        Data::Json(value) => value,
        Data::Text(text) => Value::String(text),
        Data::Binary(bytes) => json!({"base64": STANDARD.encode(bytes)}),
    };
    json!({"data": data, PUBSUB_KEY: metadata})
}

#[cfg(test)]
mod tests;
