//! The PostgreSQL store, for several stateless replicas on one database: dedupe is the
//! unique index, so any replica can take any retry.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::types::Json;
use sqlx::{Postgres, QueryBuilder};
use uuid::Uuid;

use super::forward_rows::{
    DeadLetterRow, DestinationRow, RecordRow, RetentionRowRaw, DEAD_LETTER_COLUMNS, DESTINATION_COLUMNS, RECORD_COLUMNS,
};
use super::forward_sql::{bounded, FENCE};
use super::rows::{AlertDeliveryRow, ConnectionRow, EventRow, HistoryRow, RejectionRow, CONNECTION_COLUMNS, EVENT_COLUMNS};
use super::{batch, OpOutcome, StoreError, WriteOp};
use crate::model::{
    AlertDelivery, AlertSubject, BackgroundTask, Backlog, CompletedBatch, CompletedReplay, Connection, ConnectionFilter, ConnectionUpdate,
    DeadLetter, Destination, DestinationUpdate, EventFilter, EventRecord, Lease, NewConnection, NewDestination, Position, PruneOutcome,
    PruneWindow, RetentionRow, StartFrom, StatusChange, StoredEvent, StoredRejection, SubscriptionChange,
};

pub struct PostgresStore {
    pool: PgPool,
    /// Forwarding's writes share the pool: PostgreSQL's commits do not serialize on one
    /// writer as SQLite's do.
    progress: PgPool,
    /// Ticks after each commit that stored events (forwarding wakes on it).
    commits: tokio::sync::watch::Sender<u64>,
    /// Ticks after each commit that queued Office 365 content to fetch.
    fetches_queued: tokio::sync::watch::Sender<u64>,
}

impl PostgresStore {
    const MIGRATOR: Migrator = sqlx::migrate!("migrations/postgres");

    pub async fn connect(url: &str) -> Result<PostgresStore, StoreError> {
        let pool = PgPoolOptions::new().max_connections(16).acquire_timeout(Duration::from_secs(5)).connect(url).await?;
        Ok(PostgresStore {
            progress: pool.clone(),
            pool,
            commits: tokio::sync::watch::Sender::new(0),
            fetches_queued: tokio::sync::watch::Sender::new(0),
        })
    }

    /// PostgreSQL writers do not wait on one another (row locks aside): no turns.
    async fn write_turn(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        None
    }

    /// How a row's place in commit order is read: the inserting transaction, then `seq`.
    const XID: &'static str = "xid";
    const ORDER: &'static str = "xid, seq";
    /// The oldest transaction still running, cluster-wide: every transaction with a lower
    /// id has finished, and every transaction that has not yet written gets a higher one.
    const HORIZON: &'static str = "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint";

    /// Every row of a transaction below `xmin` is visible now, whatever its `seq`.
    fn horizon_at(xmin: i64) -> Position {
        Position { xid: xmin - 1, seq: i64::MAX }
    }

    fn push_after(qb: &mut QueryBuilder<'_, Postgres>, p: Position) {
        qb.push("(xid, seq) > (").push_bind(p.xid).push(", ").push_bind(p.seq).push(")");
    }

    fn push_upto(qb: &mut QueryBuilder<'_, Postgres>, p: Position) {
        qb.push("(xid, seq) <= (").push_bind(p.xid).push(", ").push_bind(p.seq).push(")");
    }
}

sql_store!(PostgresStore, Postgres, "postgres");
forward_store!(PostgresStore, Postgres);
jobs_store!(PostgresStore, Postgres);
fetches_store!(PostgresStore, Postgres);
catch_up_store!(PostgresStore, Postgres);
