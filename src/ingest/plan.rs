//! The pure part of a push: from what its sender decoded (or why it could not), the
//! connection and the time, to the write the store makes and the answer the sender gets,
//! leaving to ingest only what is not pure: answering a handshake (it may call the cloud)
//! and the rejection records (counted and rate limited). Nothing here awaits, counts or
//! reads the store, so every case is a unit test.
//!
//! A heartbeat counts at the time its sender signed, and only while fresh
//! ([`crate::model::heartbeat::judge`]); one that proves nothing is acknowledged as its
//! sender expects, counts nothing and is kept as a `heartbeat_not_fresh` rejection.

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::cache::LoadedConnection;
use super::PushAccepted;
use crate::model::heartbeat::{self, judge};
use crate::model::{CountedHeartbeat, NewEvent, ReportedChange, SourceKind, SubscriptionChange};
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
    /// Authentic but undecodable: kept as one rejection, and acknowledged.
    pub undecodable: Option<Rejected>,
    /// Items of a batch refused on their own, each kept as a rejection.
    pub refused_items: Vec<Rejected>,
    /// A heartbeat that proves nothing (`heartbeat_not_fresh`): kept as one rejection.
    pub stale_heartbeat: Option<Rejected>,
}

/// The plan for `decoded`, a push to `connection` received at `received_at`. `Err`: the
/// push is refused (decoding failed in a way the sender should hear about).
pub(super) fn plan(
    decoded: Result<Intake, Rejected>,
    connection: &LoadedConnection,
    received_at: chrono::DateTime<chrono::Utc>,
) -> Result<Plan, Rejected> {
    let accepted = Accepted {
        connection_id: connection.id,
        tenant_id: connection.tenant_id.clone(),
        source: connection.source,
        stream: connection.stream.clone(),
        received_at,
        events: Vec::new(),
        heartbeat: None,
        confirms: true,
        authenticated: true,
        kept_rejections: Vec::new(),
        changes: Vec::new(),
    };
    let mut plan = Plan { accepted, answer: None, handshake: None, undecodable: None, refused_items: Vec::new(), stale_heartbeat: None };
    let accepted = &mut plan.accepted;
    match decoded {
        Ok(Intake::Events { events, heartbeat, stream }) => {
            accepted.events = events.into_iter().map(sanitize).collect();
            if let Some(proof) = heartbeat {
                match judge(&proof, received_at, connection.heartbeat_window) {
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
            plan.refused_items = batch.refused;
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
        Ok(Intake::Heartbeat(proof)) => match judge(&proof, received_at, connection.heartbeat_window) {
            Ok(counted) => {
                accepted.heartbeat = Some(sanitize_heartbeat(counted));
                plan.answer = Some(PushAccepted::Heartbeat { duplicate: false });
            }
            Err(detail) => {
                plan.answer = Some(PushAccepted::HeartbeatNotFresh);
                plan.stale_heartbeat = Some(Rejected::undecodable(heartbeat::NOT_FRESH, detail));
            }
        },
        Err(rejected) => return plan.keep_if_undecodable(rejected),
    }
    Ok(plan)
}

impl Plan {
    /// The handshake was answered: what it changed, and the answer.
    pub fn answered(&mut self, change: Option<SubscriptionChange>, answer: PushAccepted) {
        self.accepted.changes = change.into_iter().map(ReportedChange::always).collect();
        self.answer = Some(answer);
    }

    /// Decoding (or answering the handshake) failed: an undecodable push is kept and
    /// acknowledged, anything else refused.
    pub fn keep_if_undecodable(mut self, rejected: Rejected) -> Result<Plan, Rejected> {
        if rejected.class != RejectClass::Undecodable {
            return Err(rejected);
        }
        self.answer = Some(PushAccepted::KeptUndecodable { reason: rejected.reason });
        self.undecodable = Some(rejected);
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

    /// The answer once the write committed with `outcome`'s counts (a heartbeat already
    /// counted is a duplicate).
    pub fn answer_after(answer: Option<PushAccepted>, refused_items: u32, stored: u32, duplicates: u32) -> PushAccepted {
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

/// Makes an event storable in both backends: PostgreSQL's `jsonb` and `text` refuse NUL
/// characters, and a very long sender id is kept as its hash.
fn sanitize(mut event: NewEvent) -> NewEvent {
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
        format!("sha256:{}", hex::encode(Sha256::digest(key.as_bytes())))
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
