//! Row types of forwarding as both backends return them, and their conversion into model
//! types.

use chrono::{DateTime, Utc};
use serde_json::value::RawValue;
use serde_json::Value;
use sqlx::types::Json;
use uuid::Uuid;

use super::StoreError;
use crate::model::{
    DeadLetter, Destination, DestinationCounters, DestinationKind, EventFilter, EventKind, EventRecord, LastError, LeaseHolder,
    PlannedBatch, Position, RetentionRow, SourceKind, StartFrom,
};

/// The columns of `destinations`, in the order every SELECT lists them.
pub const DESTINATION_COLUMNS: &str = "id, name, kind, filter, start_from, config_public, config_sealed, paused, \
    created_at, updated_at, position_xid, position_seq, batch_id, batch_end_xid, batch_end_seq, lease_holder, \
    lease_expires_at, failing, last_delivered_at, last_error_at, last_error, delivered_count, dead_letters_count, \
    retries_count, expired_count";

/// The columns of `events` a record is read from, after the backend's `xid` expression.
pub const RECORD_COLUMNS: &str = "seq, id, connection_id, tenant_id, source, stream, kind, dedupe_key, occurred_at, \
    received_at, CAST(payload AS TEXT) AS payload";

pub const DEAD_LETTER_COLUMNS: &str = "id, event_id, at, reason, attempts, record";

#[derive(sqlx::FromRow)]
pub struct DestinationRow {
    id: String,
    name: String,
    kind: String,
    filter: Json<Value>,
    start_from: String,
    config_public: Json<Value>,
    config_sealed: String,
    paused: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    position_xid: i64,
    position_seq: i64,
    batch_id: Option<String>,
    batch_end_xid: Option<i64>,
    batch_end_seq: Option<i64>,
    lease_holder: Option<String>,
    lease_expires_at: Option<DateTime<Utc>>,
    failing: bool,
    last_delivered_at: Option<DateTime<Utc>>,
    last_error_at: Option<DateTime<Utc>>,
    last_error: Option<String>,
    delivered_count: i64,
    dead_letters_count: i64,
    retries_count: i64,
    expired_count: i64,
}

impl TryFrom<DestinationRow> for Destination {
    type Error = StoreError;

    fn try_from(r: DestinationRow) -> Result<Destination, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("destination {}: {what}", r.id));
        let planned = match (&r.batch_id, r.batch_end_xid, r.batch_end_seq) {
            (Some(id), Some(xid), Some(seq)) => {
                Some(PlannedBatch { id: Uuid::parse_str(id).map_err(|_| corrupt("bad batch id"))?, end: Position { xid, seq } })
            }
            (None, _, _) => None,
            _ => return Err(corrupt("a batch without its range")),
        };
        let lease = match (&r.lease_holder, r.lease_expires_at) {
            (Some(holder), Some(expires_at)) => Some(LeaseHolder { holder: holder.clone(), expires_at }),
            _ => None,
        };
        Ok(Destination {
            id: Uuid::parse_str(&r.id).map_err(|_| corrupt("bad id"))?,
            kind: DestinationKind::parse(&r.kind).ok_or_else(|| corrupt("unknown kind"))?,
            filter: serde_json::from_value::<EventFilter>(r.filter.0.clone()).map_err(|_| corrupt("unreadable filter"))?,
            start_from: StartFrom::parse(&r.start_from).ok_or_else(|| corrupt("unknown start_from"))?,
            name: r.name,
            config_public: r.config_public.0,
            config_sealed: r.config_sealed,
            paused: r.paused,
            created_at: r.created_at,
            updated_at: r.updated_at,
            position: Position { xid: r.position_xid, seq: r.position_seq },
            planned,
            lease,
            failing: r.failing,
            last_delivered_at: r.last_delivered_at,
            last_error: match (r.last_error_at, r.last_error) {
                (Some(at), Some(message)) => Some(LastError { at, message }),
                _ => None,
            },
            counters: DestinationCounters {
                delivered: r.delivered_count,
                dead_letters: r.dead_letters_count,
                retries: r.retries_count,
                expired: r.expired_count,
            },
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct RecordRow {
    xid: i64,
    seq: i64,
    id: String,
    connection_id: String,
    tenant_id: String,
    source: String,
    stream: String,
    kind: String,
    dedupe_key: String,
    occurred_at: Option<DateTime<Utc>>,
    received_at: DateTime<Utc>,
    payload: String,
}

impl TryFrom<RecordRow> for EventRecord {
    type Error = StoreError;

    fn try_from(r: RecordRow) -> Result<EventRecord, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("event {}: {what}", r.id));
        Ok(EventRecord {
            position: Position { xid: r.xid, seq: r.seq },
            id: Uuid::parse_str(&r.id).map_err(|_| corrupt("bad id"))?,
            connection_id: Uuid::parse_str(&r.connection_id).map_err(|_| corrupt("bad connection id"))?,
            source: SourceKind::parse(&r.source).ok_or_else(|| corrupt("unknown source"))?,
            kind: EventKind::parse(&r.kind).ok_or_else(|| corrupt("unknown kind"))?,
            payload: RawValue::from_string(r.payload).map_err(|_| corrupt("payload is not JSON"))?,
            tenant_id: r.tenant_id,
            stream: r.stream,
            dedupe_key: r.dedupe_key,
            occurred_at: r.occurred_at,
            received_at: r.received_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct RetentionRowRaw {
    xid: i64,
    seq: i64,
    tenant_id: String,
    source: String,
    stream: String,
    kind: String,
    received_at: DateTime<Utc>,
}

impl From<RetentionRowRaw> for RetentionRow {
    fn from(r: RetentionRowRaw) -> RetentionRow {
        RetentionRow {
            position: Position { xid: r.xid, seq: r.seq },
            tenant_id: r.tenant_id,
            source: r.source,
            stream: r.stream,
            kind: r.kind,
            received_at: r.received_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub struct DeadLetterRow {
    id: i64,
    event_id: String,
    at: DateTime<Utc>,
    reason: String,
    attempts: i64,
    record: String,
}

impl TryFrom<DeadLetterRow> for DeadLetter {
    type Error = StoreError;

    fn try_from(r: DeadLetterRow) -> Result<DeadLetter, StoreError> {
        Ok(DeadLetter {
            event_id: Uuid::parse_str(&r.event_id).map_err(|_| StoreError::Corrupt(format!("dead letter {}: bad event id", r.id)))?,
            id: r.id,
            at: r.at,
            reason: r.reason,
            attempts: r.attempts,
            record: r.record,
        })
    }
}
