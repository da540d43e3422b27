//! The pure part of a push: from what its sender decoded (or why it could not), the
//! connection and the time, to the write the store makes and the answer the sender gets,
//! leaving to ingest only what is not pure: answering a handshake (it may call the cloud)
//! and the rejection records (counted and rate limited). Nothing here awaits, counts or
//! reads the store, so every case is a unit test.
//!
//! An authentic push that cannot be decoded ([`RejectClass::Undecodable`]) is stored
//! whole as one `raw` event (INTERFACE.md section 5), like any event: deduplicated,
//! counted and forwarded. What is kept is what its sender says ([`crate::verify::Kept`]),
//! else the whole body with the request's `Content-Type`. Its payload is
//! `{"raw": <text>, "content_type"}` when the bytes are UTF-8 without NUL (the stores
//! refuse NUL in text, and replacing it would change the body), else
//! `{"raw_base64": <standard base64>, "content_type"}`. Its dedupe key is the id the
//! sender signed, else `sha256:` and the lowercase hex SHA-256 of the kept bytes, so a
//! retried push is stored once. A Graph notification that cannot be decoded is one raw
//! event of its own beside the batch's other events.
//!
//! A heartbeat counts at the time its sender signed, and only while fresh
//! ([`crate::model::heartbeat::judge`]); one that proves nothing is acknowledged as its
//! sender expects, counts nothing and is kept as a `heartbeat_not_fresh` rejection.

use base64::Engine;
use serde_json::{json, Value};

use super::cache::LoadedConnection;
use super::PushAccepted;
use crate::model::heartbeat::{self, judge};
use crate::model::{content_key, ContentFetch, CountedHeartbeat, EventKind, NewEvent, ReportedChange, SourceKind, SubscriptionChange};
use crate::sources::{Handshake, Intake, RejectClass, Rejected};
use crate::store::{Accepted, OpOutcome};

/// Longest dedupe key kept as it is; longer keys are stored as their SHA-256.
const MAX_DEDUPE_KEY: usize = 512;

/// What a verified push asks for.
#[derive(Debug)]
pub(super) struct Plan {
    /// The write, without the rejection rows the caller adds (their records are counted
    /// and rate limited, which is not pure).
    pub accepted: Accepted,
    /// The answer decided before the commit; `None`: "stored", with the commit's counts.
    pub answer: Option<PushAccepted>,
    /// A subscription handshake to answer before the write (it may call the cloud).
    pub handshake: Option<Handshake>,
    /// A handshake that could not be completed: kept as one rejection, and acknowledged.
    pub refused_handshake: Option<Rejected>,
    /// Items of a batch refused on their own, each kept as a rejection.
    pub refused_items: Vec<Rejected>,
    /// How many of the events are `raw` (authentic, undecodable, kept whole).
    pub raw_events: u32,
    /// A heartbeat that proves nothing (`heartbeat_not_fresh`): kept as one rejection.
    pub stale_heartbeat: Option<Rejected>,
}

/// What arrived, as the raw events of an undecodable push keep it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Arrived<'a> {
    pub received_at: chrono::DateTime<chrono::Utc>,
    pub body: &'a [u8],
    /// The request's `Content-Type`, when it had a readable one.
    pub content_type: Option<&'a str>,
}

/// The plan for `decoded`, a push to `connection` that `arrived`. `Err`: the push is
/// refused (decoding failed in a way the sender should hear about).
pub(super) fn plan(decoded: Result<Intake, Rejected>, connection: &LoadedConnection, arrived: &Arrived<'_>) -> Result<Plan, Rejected> {
    let accepted = Accepted {
        connection_id: connection.id,
        tenant_id: connection.tenant_id.clone(),
        source: connection.source,
        stream: connection.stream.clone(),
        received_at: arrived.received_at,
        events: Vec::new(),
        heartbeat: None,
        confirms: true,
        authenticated: true,
        kept_rejections: Vec::new(),
        changes: Vec::new(),
        fetches: Vec::new(),
    };
    let mut plan = Plan {
        accepted,
        answer: None,
        handshake: None,
        refused_handshake: None,
        refused_items: Vec::new(),
        raw_events: 0,
        stale_heartbeat: None,
    };
    let accepted = &mut plan.accepted;
    match decoded {
        Ok(Intake::Events { events, heartbeat, stream }) => {
            accepted.events = events.into_iter().map(sanitize).collect();
            if let Some(proof) = heartbeat {
                match judge(&proof, arrived.received_at, connection.heartbeat_window) {
                    Ok(counted) => accepted.heartbeat = Some(sanitize_heartbeat(counted)),
                    // The events are stored all the same; the heartbeat is kept as refused.
                    Err(detail) => plan.stale_heartbeat = Some(Rejected::undecodable(heartbeat::NOT_FRESH, detail)),
                }
            }
            // A stream the admin chose wins over the sender's hint.
            if let Some(hint) = stream.filter(|_| connection.stream == crate::sources::spec(connection.source).default_stream) {
                accepted.stream = hint.to_owned();
            }
        }
        Ok(Intake::Content { events, fetches }) => {
            accepted.events = events.into_iter().map(sanitize).collect();
            // A key the sanitizer shortened is shortened the same way for its fetch.
            accepted.fetches = fetches.into_iter().map(|f| ContentFetch { event_key: sanitize_key(f.event_key), ..f }).collect();
        }
        Ok(Intake::Lifecycle { event, change }) => {
            let event = sanitize(event);
            accepted.changes = vec![ReportedChange { change, event_key: Some(event.dedupe_key.clone()) }];
            accepted.events = vec![event];
            accepted.confirms = false;
            plan.answer = Some(PushAccepted::Lifecycle);
        }
        Ok(Intake::Batch(batch)) => {
            accepted.events = batch.events.into_iter().map(sanitize).collect();
            // A key the sanitizer shortened is shortened the same way for its change.
            accepted.changes =
                batch.changes.into_iter().map(|c| ReportedChange { event_key: c.event_key.map(sanitize_key), change: c.change }).collect();
            // An authentic item that cannot be decoded is kept whole; the others refused.
            let mut raw_reason = None;
            for refused in batch.refused {
                if refused.class == RejectClass::Undecodable {
                    plan.accepted.events.push(raw_event(&refused, arrived.body, arrived.content_type));
                    plan.raw_events += 1;
                    raw_reason = raw_reason.or(Some(refused.reason));
                } else {
                    plan.refused_items.push(refused);
                }
            }
            // Answered "stored_raw" with the first reason, unless items were refused too
            // (then "stored" with the refused count; the raw events count as stored).
            if let Some(reason) = raw_reason.filter(|_| plan.refused_items.is_empty()) {
                plan.answer = Some(PushAccepted::StoredRaw { reason, stored: 0, duplicates: 0 });
            }
        }
        Ok(Intake::Handshake(handshake)) => {
            // A Graph validation carries no credential: it neither confirms a connection
            // as an authenticated push does (its `Validated` change confirms only one
            // never confirmed) nor breaks a run of refused pushes. An O365 validation
            // is authenticated by its Webhook-AuthID and confirms like any push.
            let o365 = matches!(handshake, Handshake::O365Validation);
            accepted.confirms = o365;
            accepted.authenticated = o365 || matches!(handshake, Handshake::SnsSubscription { .. });
            plan.handshake = Some(handshake);
        }
        Ok(Intake::Heartbeat(proof)) => match judge(&proof, arrived.received_at, connection.heartbeat_window) {
            Ok(counted) => {
                accepted.heartbeat = Some(sanitize_heartbeat(counted));
                plan.answer = Some(PushAccepted::Heartbeat { duplicate: false });
            }
            Err(detail) => {
                plan.answer = Some(PushAccepted::HeartbeatNotFresh);
                plan.stale_heartbeat = Some(Rejected::undecodable(heartbeat::NOT_FRESH, detail));
            }
        },
        Err(rejected) => return plan.keep_if_authentic(rejected, arrived),
    }
    Ok(plan)
}

impl Plan {
    /// The handshake was answered: what it changed, and the answer.
    pub fn answered(&mut self, change: Option<SubscriptionChange>, answer: PushAccepted) {
        self.accepted.changes = change.into_iter().map(ReportedChange::always).collect();
        self.answer = Some(answer);
    }

    /// Decoding (or answering the handshake) failed: an undecodable push is stored whole
    /// as a `raw` event, a refused handshake is kept as a rejection, and both are
    /// acknowledged; anything else is refused.
    pub fn keep_if_authentic(mut self, rejected: Rejected, arrived: &Arrived<'_>) -> Result<Plan, Rejected> {
        match rejected.class {
            RejectClass::Undecodable => {
                self.accepted.events = vec![raw_event(&rejected, arrived.body, arrived.content_type)];
                self.raw_events = 1;
                self.answer = Some(PushAccepted::StoredRaw { reason: rejected.reason, stored: 0, duplicates: 0 });
            }
            RejectClass::HandshakeRefused => {
                self.answer = Some(PushAccepted::HandshakeRefused { reason: rejected.reason });
                self.refused_handshake = Some(rejected);
            }
            _ => return Err(rejected),
        }
        Ok(self)
    }

    /// Whether the Graph upkeep should act now rather than at its next pass: the push
    /// reports a reauthorization request or a removal.
    pub fn for_upkeep(&self) -> bool {
        self.accepted.source == SourceKind::MsGraph
            && self
                .accepted
                .changes
                .iter()
                .any(|c| matches!(c.change, SubscriptionChange::ReauthorizationRequired { .. } | SubscriptionChange::Removed { .. }))
    }

    /// Whether this push reports lost Graph notifications (`missed`), which the catch-up
    /// reads back.
    pub fn for_catch_up(&self) -> bool {
        self.accepted.source == SourceKind::MsGraph
            && self.accepted.changes.iter().any(|c| matches!(c.change, SubscriptionChange::Missed { .. }))
    }

    /// The answer once the write committed with `outcome`'s counts (a heartbeat already
    /// counted is a duplicate).
    pub fn answer_after(answer: Option<PushAccepted>, refused_items: u32, stored: u32, duplicates: u32) -> PushAccepted {
        if let Some(PushAccepted::StoredRaw { reason, .. }) = answer {
            return PushAccepted::StoredRaw { reason, stored, duplicates };
        }
        if let Some(PushAccepted::Heartbeat { .. }) = answer {
            return PushAccepted::Heartbeat { duplicate: duplicates > 0 };
        }
        answer.unwrap_or(if refused_items > 0 {
            PushAccepted::StoredPartly { stored, duplicates, refused: refused_items }
        } else {
            PushAccepted::Stored { stored, duplicates }
        })
    }
}

/// Whether `outcome` stored anything (the upkeep is nudged only for a change that landed).
pub(super) fn stored_any(outcome: &OpOutcome) -> bool {
    matches!(outcome, OpOutcome::Accepted { stored: 1.., .. })
}

/// The `raw` event, ready to store, of an authentic push (or Graph notification) that
/// `rejected` could not decode: `body` and `content_type` are the request's (module doc).
pub fn raw_event(rejected: &Rejected, body: &[u8], content_type: Option<&str>) -> NewEvent {
    let kept = rejected.kept.as_deref();
    let body = kept.and_then(|k| k.body.as_deref()).unwrap_or(body);
    let content_type = kept.and_then(|k| k.content_type.as_deref()).or(content_type);
    let payload = match std::str::from_utf8(body) {
        Ok(text) if !text.contains('\0') => json!({"raw": text, "content_type": content_type}),
        _ => json!({"raw_base64": base64::engine::general_purpose::STANDARD.encode(body), "content_type": content_type}),
    };
    let dedupe_key = match kept.and_then(|k| k.dedupe_key.clone()) {
        Some(id) => id,
        None => content_key(body),
    };
    sanitize(NewEvent { dedupe_key, kind: EventKind::Raw, occurred_at: None, payload })
}

/// Makes an event storable in both backends: PostgreSQL's `jsonb` and `text` refuse NUL
/// characters, and a very long sender id is kept as its hash.
pub fn sanitize(mut event: NewEvent) -> NewEvent {
    event.dedupe_key = sanitize_key(event.dedupe_key);
    strip_nul(&mut event.payload);
    event
}

/// A heartbeat id is kept like a dedupe key.
fn sanitize_heartbeat(counted: CountedHeartbeat) -> CountedHeartbeat {
    CountedHeartbeat { id: sanitize_key(counted.id), ..counted }
}

fn sanitize_key(key: String) -> String {
    if key.len() > MAX_DEDUPE_KEY || key.contains('\0') {
        content_key(key.as_bytes())
    } else {
        key
    }
}

fn strip_nul(value: &mut Value) {
    match value {
        Value::String(s) if s.contains('\0') => *s = s.replace('\0', "\u{fffd}"),
        Value::Array(items) => items.iter_mut().for_each(strip_nul),
        Value::Object(map) => {
            if map.keys().any(|k| k.contains('\0')) {
                let old = std::mem::take(map);
                *map = old.into_iter().map(|(k, v)| (k.replace('\0', "\u{fffd}"), v)).collect();
            }
            map.values_mut().for_each(strip_nul);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests;
