//! Row types as both backends return them, and their conversion into model types.
//! Ids are UUID text and JSON is `Json<Value>`, so one row type serves SQLite and PostgreSQL.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use uuid::Uuid;

use super::StoreError;
use crate::model::{
    AlertDelivery, AlertSubject, Connection, Counters, EventKind, Facts, FetchOutcome, SourceKind, Status, StatusChange, StoredEvent,
    StoredRejection, TaskOutcome, UpkeepFailure,
};

/// The columns of `connections`, in the order every SELECT lists them.
pub const CONNECTION_COLUMNS: &str = "id, tenant_id, name, source, stream, heartbeat_interval_seconds, grace_seconds, \
    config_public, config_sealed, paused, created_at, activated_at, updated_at, confirmed_at, external_id, expires_at, \
    confirmation_url, subscription_lost_at, reauthorization_required_at, data_last_received_at, last_heartbeat_at, \
    status_last_checked_at, auth_failure_streak, events_count, heartbeats_count, duplicates_count, rejections_count, \
    canary_last_published_at, canary_last_error, canary_last_error_at, last_status, last_status_message, missed_at, \
    upkeep_last_success_at, upkeep_last_error, upkeep_last_error_at, upkeep_settings_hash, upkeep_failure, \
    upkeep_failing_since, missed_recorded_at, data_last_fetched_at, records_fetched_count, blobs_expired_count, \
    fetch_last_error, fetch_last_error_at, catch_up_last_success_at, catch_up_last_error, catch_up_last_error_at, \
    (SELECT COUNT(*) FROM o365_fetches f WHERE f.connection_id = connections.id AND f.state = 'pending') AS fetch_backlog";

pub const EVENT_COLUMNS: &str = "seq, id, connection_id, tenant_id, source, stream, kind, dedupe_key, occurred_at, received_at, payload";

#[derive(sqlx::FromRow)]
pub struct ConnectionRow {
    id: String,
    tenant_id: String,
    name: String,
    source: String,
    stream: String,
    heartbeat_interval_seconds: Option<i64>,
    grace_seconds: i64,
    config_public: Json<Value>,
    config_sealed: String,
    paused: bool,
    created_at: DateTime<Utc>,
    /// NULL when a replica of a version before the column created the connection.
    activated_at: Option<DateTime<Utc>>,
    updated_at: DateTime<Utc>,
    confirmed_at: Option<DateTime<Utc>>,
    external_id: Option<String>,
    expires_at: Option<DateTime<Utc>>,
    confirmation_url: Option<String>,
    subscription_lost_at: Option<DateTime<Utc>>,
    reauthorization_required_at: Option<DateTime<Utc>>,
    data_last_received_at: Option<DateTime<Utc>>,
    last_heartbeat_at: Option<DateTime<Utc>>,
    status_last_checked_at: Option<DateTime<Utc>>,
    auth_failure_streak: i64,
    events_count: i64,
    heartbeats_count: i64,
    duplicates_count: i64,
    rejections_count: i64,
    canary_last_published_at: Option<DateTime<Utc>>,
    canary_last_error: Option<String>,
    canary_last_error_at: Option<DateTime<Utc>>,
    last_status: Option<String>,
    last_status_message: Option<String>,
    missed_at: Option<DateTime<Utc>>,
    upkeep_last_success_at: Option<DateTime<Utc>>,
    upkeep_last_error: Option<String>,
    upkeep_last_error_at: Option<DateTime<Utc>>,
    upkeep_settings_hash: Option<String>,
    upkeep_failure: Option<String>,
    upkeep_failing_since: Option<DateTime<Utc>>,
    missed_recorded_at: Option<DateTime<Utc>>,
    data_last_fetched_at: Option<DateTime<Utc>>,
    records_fetched_count: i64,
    blobs_expired_count: i64,
    fetch_last_error: Option<String>,
    fetch_last_error_at: Option<DateTime<Utc>>,
    fetch_backlog: i64,
    catch_up_last_success_at: Option<DateTime<Utc>>,
    catch_up_last_error: Option<String>,
    catch_up_last_error_at: Option<DateTime<Utc>>,
}

impl TryFrom<ConnectionRow> for Connection {
    type Error = StoreError;

    fn try_from(r: ConnectionRow) -> Result<Connection, StoreError> {
        let upkeep_failure = match r.upkeep_failure.as_deref() {
            None => None,
            Some(name) => Some(
                UpkeepFailure::parse(name)
                    .ok_or_else(|| StoreError::Corrupt(format!("unknown upkeep failure `{name}` on connection {}", r.id)))?,
            ),
        };
        Ok(Connection {
            id: parse_id(&r.id)?,
            source: SourceKind::parse(&r.source)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown source `{}` on connection {}", r.source, r.id)))?,
            tenant_id: r.tenant_id,
            name: r.name,
            stream: r.stream,
            heartbeat_interval_seconds: r.heartbeat_interval_seconds,
            grace_seconds: r.grace_seconds,
            config_public: r.config_public.0,
            config_sealed: r.config_sealed,
            created_at: r.created_at,
            activated_at: r.activated_at.unwrap_or(r.created_at),
            updated_at: r.updated_at,
            facts: Facts {
                paused: r.paused,
                confirmed_at: r.confirmed_at,
                external_id: r.external_id,
                expires_at: r.expires_at,
                confirmation_url: r.confirmation_url,
                subscription_lost_at: r.subscription_lost_at,
                reauthorization_required_at: r.reauthorization_required_at,
                missed_at: r.missed_at,
                missed_recorded_at: r.missed_recorded_at,
                data_last_received_at: r.data_last_received_at,
                last_heartbeat_at: r.last_heartbeat_at,
                status_last_checked_at: r.status_last_checked_at,
                recorded_status: r.last_status.as_deref().and_then(Status::parse),
                recorded_message: r.last_status_message,
                auth_failure_streak: r.auth_failure_streak,
                upkeep_settings_hash: r.upkeep_settings_hash,
                upkeep_failure,
                upkeep_failing_since: r.upkeep_failing_since,
            },
            counters: Counters {
                events: r.events_count,
                heartbeats: r.heartbeats_count,
                duplicates: r.duplicates_count,
                rejections: r.rejections_count,
            },
            canary: TaskOutcome {
                last_success_at: r.canary_last_published_at,
                last_error: r.canary_last_error,
                last_error_at: r.canary_last_error_at,
            },
            upkeep: TaskOutcome {
                last_success_at: r.upkeep_last_success_at,
                last_error: r.upkeep_last_error,
                last_error_at: r.upkeep_last_error_at,
            },
            fetch: FetchOutcome {
                last_fetched_at: r.data_last_fetched_at,
                records: r.records_fetched_count,
                backlog: r.fetch_backlog,
                expired: r.blobs_expired_count,
                last_error: r.fetch_last_error,
                last_error_at: r.fetch_last_error_at,
            },
            catch_up: TaskOutcome {
                last_success_at: r.catch_up_last_success_at,
                last_error: r.catch_up_last_error,
                last_error_at: r.catch_up_last_error_at,
            },
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct EventRow {
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
    payload: Json<Value>,
}

impl TryFrom<EventRow> for StoredEvent {
    type Error = StoreError;

    fn try_from(r: EventRow) -> Result<StoredEvent, StoreError> {
        Ok(StoredEvent {
            id: parse_id(&r.id)?,
            connection_id: parse_id(&r.connection_id)?,
            source: SourceKind::parse(&r.source)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown source `{}` on event {}", r.source, r.id)))?,
            kind: EventKind::parse(&r.kind).ok_or_else(|| StoreError::Corrupt(format!("unknown kind `{}` on event {}", r.kind, r.id)))?,
            tenant_id: r.tenant_id,
            stream: r.stream,
            dedupe_key: r.dedupe_key,
            occurred_at: r.occurred_at,
            received_at: r.received_at,
            payload: r.payload.0,
            seq: r.seq,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct RejectionRow {
    id: i64,
    at: DateTime<Utc>,
    reason: String,
    source_addr: Option<String>,
    detail: String,
    body_prefix: String,
}

impl From<RejectionRow> for StoredRejection {
    fn from(r: RejectionRow) -> StoredRejection {
        StoredRejection { id: r.id, at: r.at, reason: r.reason, source_addr: r.source_addr, detail: r.detail, body_prefix: r.body_prefix }
    }
}

#[derive(sqlx::FromRow)]
pub struct HistoryRow {
    at: DateTime<Utc>,
    old_status: Option<String>,
    new_status: String,
    message: Option<String>,
}

impl TryFrom<HistoryRow> for StatusChange {
    type Error = StoreError;

    fn try_from(r: HistoryRow) -> Result<StatusChange, StoreError> {
        let parse = |s: &str| Status::parse(s).ok_or_else(|| StoreError::Corrupt(format!("unknown status `{s}`")));
        Ok(StatusChange {
            at: r.at,
            old_status: r.old_status.as_deref().map(parse).transpose()?,
            new_status: parse(&r.new_status)?,
            message: r.message,
        })
    }
}

fn parse_id(text: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(text).map_err(|_| StoreError::Corrupt(format!("`{text}` is not a UUID")))
}

#[derive(sqlx::FromRow)]
pub struct AlertDeliveryRow {
    connection_id: Option<String>,
    destination_id: Option<String>,
    at: DateTime<Utc>,
    old_status: Option<String>,
    new_status: String,
    message: Option<String>,
    attempts: i32,
    delivered: bool,
    last_error: Option<String>,
    finished_at: DateTime<Utc>,
}

impl TryFrom<AlertDeliveryRow> for AlertDelivery {
    type Error = StoreError;

    fn try_from(r: AlertDeliveryRow) -> Result<AlertDelivery, StoreError> {
        let subject = match (&r.connection_id, &r.destination_id) {
            (Some(id), _) => AlertSubject::Connection(parse_id(id)?),
            (None, Some(id)) => AlertSubject::Destination(parse_id(id)?),
            (None, None) => return Err(StoreError::Corrupt("an alert delivery names neither a connection nor a destination".into())),
        };
        Ok(AlertDelivery {
            subject,
            at: r.at,
            old_status: r.old_status,
            new_status: r.new_status,
            message: r.message,
            attempts: i64::from(r.attempts),
            delivered: r.delivered,
            last_error: r.last_error,
            finished_at: r.finished_at,
        })
    }
}
