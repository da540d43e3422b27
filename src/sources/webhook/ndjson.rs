//! `"format": "ndjson"` webhook bodies: one JSON value per line, each stored as one event.
//!
//! - Lines are split on `\n`; a trailing `\r` is dropped, and a line holding only
//!   whitespace is skipped (it still counts in the numbering).
//! - Line `n` (counted from 1 over the whole body, skipped lines included) is keyed
//!   `{base}:{n}`, where `base` is the delivery's key as for a JSON body: its delivery id,
//!   else `sha256:` and the hex SHA-256 of the whole body. A retried delivery therefore
//!   yields the same keys and is stored once; `occurred_at` is read from each line as from
//!   a JSON body.
//! - Lines that are not UTF-8 JSON are kept together as ONE `raw` event, keyed
//!   `{base}:raw`: the broken lines, each whole and in order, joined by `\n`, with the
//!   request's `Content-Type`. The good lines are already events, so re-processing the raw
//!   event's lines (after fixing them) adds exactly what was missing; which lines they
//!   were is in the push's answer and the log (`ndjson_line_invalid`).
//! - A body with no good line at all is undecodable as a whole: one `raw` event of the
//!   whole body, keyed like a JSON delivery (`base`), as for a JSON body that is not JSON.
//!
//! An ndjson body carries events only: a `{"type": "heartbeat"}` line is an event.

use serde_json::Value;

use crate::model::{EventKind, NewEvent};
use crate::sources::{Batch, Intake, Rejected};

/// A body read line by line.
#[derive(Debug, Default, PartialEq)]
pub struct Lines<'a> {
    /// The lines that are JSON, with their line numbers (from 1), in order.
    pub good: Vec<(usize, Value)>,
    /// The other non-empty lines, with their numbers, in order, without their `\r\n`.
    pub broken: Vec<(usize, &'a [u8])>,
}

/// Splits `body` into its JSON lines and its broken ones (module doc).
pub fn split(body: &[u8]) -> Lines<'_> {
    let mut lines = Lines::default();
    for (index, line) in body.split(|b| *b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<Value>(line) {
            Ok(value) => lines.good.push((index + 1, value)),
            Err(_) => lines.broken.push((index + 1, line)),
        }
    }
    lines
}

/// What an ndjson delivery asks the store to do. `delivery_id` is the id its signature
/// (or header) gave, if any.
pub fn intake(body: &[u8], delivery_id: Option<String>, kind: EventKind) -> Result<Intake, Rejected> {
    let lines = split(body);
    if lines.good.is_empty() {
        let detail = if lines.broken.is_empty() { "the body has no line".to_owned() } else { "no line of the body is JSON".to_owned() };
        return Err(Rejected::undecodable("ndjson_no_event", detail).keyed(delivery_id));
    }
    let base = delivery_id.unwrap_or_else(|| crate::model::content_key(body));
    let events = lines
        .good
        .into_iter()
        .map(|(line, payload)| NewEvent { dedupe_key: format!("{base}:{line}"), kind, occurred_at: super::occurred_at(&payload), payload })
        .collect();
    let mut refused = Vec::new();
    if !lines.broken.is_empty() {
        let numbers = lines.broken.iter().map(|(n, _)| n.to_string()).collect::<Vec<_>>().join(", ");
        let kept = lines.broken.iter().map(|(_, line)| *line).collect::<Vec<_>>().join(&b'\n');
        refused.push(
            Rejected::undecodable("ndjson_line_invalid", format!("lines {numbers} are not JSON"))
                .keeping(kept, None)
                .keyed(Some(format!("{base}:raw"))),
        );
    }
    Ok(Intake::Batch(Batch { events, changes: Vec::new(), refused }))
}
