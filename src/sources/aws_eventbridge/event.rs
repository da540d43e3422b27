//! Decoding of one EventBridge event into stored events, shared by the two AWS senders:
//! SNS (the event is the notification's `Message`) and EventBridge API destinations (the
//! event is the request body).
//!
//! - A `Scheduled Event` from `aws.events` is a heartbeat, with the event's `time` (the
//!   caller pairs it with the id it signed: the EventBridge `id`, or the SNS envelope's
//!   `MessageId` and `Timestamp` instead, since SNS signs those).
//! - A Security Hub findings event (`Security Hub Findings - Imported`, `Security Hub
//!   Findings - Custom Action`, `Findings Imported V2`) becomes one event per entry of
//!   `detail.findings`. Each payload is the whole EventBridge event with `detail.findings`
//!   holding that one finding, so a consumer keeps the account, region and time around it
//!   (and, for a custom action, which action an analyst chose). Its time is the finding's
//!   last update: `UpdatedAt` (ASFF), or `finding_info.modified_time_dt`,
//!   `finding_info.modified_time`, `time_dt`, `time` (OCSF), else the event's `time`. With
//!   one finding the dedupe key is the sender-signed id itself; with several it is
//!   `{id}/{index}`, counted from 0, so a retried delivery yields the same keys. A findings
//!   event with no findings is stored whole, as one event.
//! - Any other event is stored whole, as one event keyed by the sender-signed id, at the
//!   event's `time`; a finding of another AWS service takes its `detail.updatedAt`.
//!
//! Kinds follow the event's `source` and `detail-type` only, never its content: an event
//! whose `detail-type` names a finding (contains `Finding`) from a service that reports
//! security findings (`aws.securityhub`, `aws.guardduty`, `aws.inspector2`, `aws.macie`,
//! `aws.access-analyzer`, `aws.detective`) is an `alert`; anything else (scans, insight
//! results, state changes, other services) is `telemetry`.
//!
//! A bad or missing time never refuses an event: `occurred_at` is then `None`.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::model::{EventKind, NewEvent};

/// Sources whose finding events are alerts.
const FINDING_SOURCES: [&str; 6] =
    ["aws.securityhub", "aws.guardduty", "aws.inspector2", "aws.macie", "aws.access-analyzer", "aws.detective"];

/// Security Hub detail-types whose `detail.findings` is split into one event per finding.
const SECURITY_HUB_FINDINGS: [&str; 3] =
    ["Security Hub Findings - Imported", "Security Hub Findings - Custom Action", "Findings Imported V2"];

/// Where a finding states its last update, most specific first: ASFF, then OCSF.
const FINDING_TIMES: [(&[&str], TimeFormat); 5] = [
    (&["UpdatedAt"], TimeFormat::Rfc3339),
    (&["finding_info", "modified_time_dt"], TimeFormat::Rfc3339),
    (&["finding_info", "modified_time"], TimeFormat::EpochMillis),
    (&["time_dt"], TimeFormat::Rfc3339),
    (&["time"], TimeFormat::EpochMillis),
];

/// How a time field is written.
#[derive(Debug, Clone, Copy)]
enum TimeFormat {
    /// RFC 3339 text: every AWS time, and OCSF's `*_dt` fields.
    Rfc3339,
    /// A whole number of milliseconds since the epoch: OCSF's `time` and `modified_time`.
    EpochMillis,
}

/// What one EventBridge event asks the store to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    /// A heartbeat: not stored as an event. `time` is the event's `time`, when it is a
    /// real instant.
    Heartbeat { time: Option<DateTime<Utc>> },
    /// Events to store (never empty).
    Events(Vec<NewEvent>),
}

/// Whether `event` is what an EventBridge schedule rule delivers.
pub fn is_heartbeat(event: &Value) -> bool {
    text(event, "source") == Some("aws.events") && text(event, "detail-type") == Some("Scheduled Event")
}

/// Decodes one EventBridge event. `dedupe_base` is the id the sender signed: the SNS
/// `MessageId`, or the EventBridge event `id`.
pub fn decode(event: Value, dedupe_base: &str) -> Decoded {
    if is_heartbeat(&event) {
        return Decoded::Heartbeat { time: text(&event, "time").and_then(parse_time) };
    }
    let kind = kind_of(&event);
    let event_time = text(&event, "time").and_then(parse_time);
    let Value::Object(mut event) = event else {
        return Decoded::Events(vec![NewEvent { dedupe_key: dedupe_base.to_owned(), kind, occurred_at: None, payload: event }]);
    };
    let source = event.get("source").and_then(Value::as_str);
    let detail_type = event.get("detail-type").and_then(Value::as_str);
    if source == Some("aws.securityhub") && detail_type.is_some_and(|d| SECURITY_HUB_FINDINGS.contains(&d)) {
        if let Some(findings) = take_findings(&mut event) {
            return Decoded::Events(split_findings(event, findings, kind, event_time, dedupe_base));
        }
    }
    let occurred_at = match kind {
        EventKind::Alert => {
            let updated_at = event.get("detail").and_then(|d| d.get("updatedAt"));
            updated_at.and_then(|t| read_time(t, TimeFormat::Rfc3339)).or(event_time)
        }
        _ => event_time,
    };
    Decoded::Events(vec![NewEvent { dedupe_key: dedupe_base.to_owned(), kind, occurred_at, payload: Value::Object(event) }])
}

/// Decodes an SNS notification's `Message`: an EventBridge event when it is a JSON object;
/// otherwise one `telemetry` event holding the JSON value. `Err`: the message is not JSON
/// (its sender keeps it as a `raw` event).
pub fn decode_message(message: &str, dedupe_base: &str) -> Result<Decoded, serde_json::Error> {
    let payload = match serde_json::from_str::<Value>(message)? {
        event @ Value::Object(_) => return Ok(decode(event, dedupe_base)),
        other => other,
    };
    Ok(Decoded::Events(vec![NewEvent { dedupe_key: dedupe_base.to_owned(), kind: EventKind::Telemetry, occurred_at: None, payload }]))
}

/// The kind an event is stored as, from its `source` and `detail-type` (module doc).
fn kind_of(event: &Value) -> EventKind {
    let from_finding_service = text(event, "source").is_some_and(|s| FINDING_SOURCES.contains(&s));
    let names_a_finding = text(event, "detail-type").is_some_and(|d| d.contains("Finding"));
    if from_finding_service && names_a_finding {
        EventKind::Alert
    } else {
        EventKind::Telemetry
    }
}

/// Takes a non-empty `detail.findings` out of the event, leaving an empty list that each
/// split event fills with its own finding; leaves the event untouched otherwise.
fn take_findings(event: &mut Map<String, Value>) -> Option<Vec<Value>> {
    let slot = event.get_mut("detail")?.get_mut("findings")?;
    match slot {
        Value::Array(findings) if !findings.is_empty() => Some(std::mem::take(findings)),
        _ => None,
    }
}

/// One event per finding; `event` has had its findings taken out (see [`take_findings`]).
fn split_findings(
    event: Map<String, Value>,
    findings: Vec<Value>,
    kind: EventKind,
    event_time: Option<DateTime<Utc>>,
    dedupe_base: &str,
) -> Vec<NewEvent> {
    let single = findings.len() == 1;
    findings
        .into_iter()
        .enumerate()
        .map(|(index, finding)| {
            let occurred_at =
                FINDING_TIMES.iter().find_map(|(path, format)| nested(&finding, path).and_then(|t| read_time(t, *format))).or(event_time);
            let mut payload = event.clone();
            if let Some(slot) = payload.get_mut("detail").and_then(|d| d.get_mut("findings")) {
                *slot = Value::Array(vec![finding]);
            }
            let dedupe_key = if single { dedupe_base.to_owned() } else { format!("{dedupe_base}/{index}") };
            NewEvent { dedupe_key, kind, occurred_at, payload: Value::Object(payload) }
        })
        .collect()
}

fn text<'v>(value: &'v Value, key: &str) -> Option<&'v str> {
    value.get(key).and_then(Value::as_str)
}

/// The value at a path of object keys.
fn nested<'v>(value: &'v Value, path: &[&str]) -> Option<&'v Value> {
    path.iter().try_fold(value, |v, key| v.get(*key))
}

/// A time field's value, when it is written as `format` says and names a real instant.
fn read_time(value: &Value, format: TimeFormat) -> Option<DateTime<Utc>> {
    match format {
        TimeFormat::Rfc3339 => parse_time(value.as_str()?),
        TimeFormat::EpochMillis => DateTime::from_timestamp_millis(value.as_i64()?),
    }
}

/// RFC 3339 with or without fractional seconds (`2020-01-01T00:00:00Z`,
/// `2020-01-01T00:00:00.000Z`, any offset); `None` for anything else.
fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text.trim()).ok().map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests;
