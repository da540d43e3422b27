//! The embedded default store: one SQLite file in WAL mode, `synchronous = FULL` so a
//! commit is on disk before pushgate answers 2xx. Group commit keeps that cheap.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::types::Json;
use sqlx::{QueryBuilder, Sqlite};
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

pub struct SqliteStore {
    pool: SqlitePool,
    /// Forwarding's writes (positions, batch plans, leases, retention), with
    /// `synchronous = NORMAL`: committed to the write-ahead log without an fsync of their
    /// own, so they do not compete with ingest for the disk (the next ingest commit's
    /// fsync covers them). A process crash loses none of them; a power loss may lose the
    /// last ones, which at worst resends the batches they were about.
    progress: SqlitePool,
    /// SQLite takes one writer at a time, and a writer that finds the database locked
    /// sleeps and polls (up to 100 ms a try). Writes of this process take turns here
    /// instead, so ingest's commits and forwarding's progress never sleep on each other.
    writer: tokio::sync::Mutex<()>,
    /// Ticks after each commit that stored events (forwarding wakes on it).
    commits: tokio::sync::watch::Sender<u64>,
    /// Ticks after each commit that queued Office 365 content to fetch.
    fetches_queued: tokio::sync::watch::Sender<u64>,
}

impl SqliteStore {
    const MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");

    /// Opens (creating if missing) a database file.
    pub async fn open_file(path: &Path) -> Result<SqliteStore, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true)
            // Checkpoints run in the background (below), not inside a push's commit.
            .pragma("wal_autocheckpoint", "0");
        let pool =
            SqlitePoolOptions::new().max_connections(8).acquire_timeout(Duration::from_secs(5)).connect_with(options.clone()).await?;
        let progress = SqlitePoolOptions::new()
            .max_connections(2)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options.synchronous(SqliteSynchronous::Normal))
            .await?;
        tokio::spawn(checkpoint_periodically(pool.clone()));
        Ok(SqliteStore {
            pool,
            progress,
            writer: tokio::sync::Mutex::new(()),
            commits: tokio::sync::watch::Sender::new(0),
            fetches_queued: tokio::sync::watch::Sender::new(0),
        })
    }

    /// A private in-memory database: one connection that lives as long as the store.
    pub async fn open_memory() -> Result<SqliteStore, StoreError> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")?.foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await?;
        Ok(SqliteStore {
            progress: pool.clone(),
            pool,
            writer: tokio::sync::Mutex::new(()),
            commits: tokio::sync::watch::Sender::new(0),
            fetches_queued: tokio::sync::watch::Sender::new(0),
        })
    }

    /// This process's turn to write.
    async fn write_turn(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        Some(self.writer.lock().await)
    }

    /// One writer at a time: `seq` order is commit order, and `xid` is always 0.
    const XID: &'static str = "0";
    const ORDER: &'static str = "seq";
    /// The highest `seq` committed: a writer still running holds a higher one.
    const HORIZON: &'static str = "SELECT COALESCE(MAX(seq), 0) FROM events";

    fn horizon_at(seq: i64) -> Position {
        Position { xid: 0, seq }
    }

    fn push_after(qb: &mut QueryBuilder<'_, Sqlite>, p: Position) {
        qb.push("seq > ").push_bind(p.seq);
    }

    fn push_upto(qb: &mut QueryBuilder<'_, Sqlite>, p: Position) {
        qb.push("seq <= ").push_bind(p.seq);
    }
}

/// Copies the write-ahead log into the database file once a second, beside the writer,
/// so no push waits for a checkpoint. Ends when the pool is closed or the runtime stops.
async fn checkpoint_periodically(pool: SqlitePool) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if pool.is_closed() {
            return;
        }
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&pool).await {
            tracing::warn!(error = %e, "SQLite checkpoint failed");
        }
    }
}

sql_store!(SqliteStore, Sqlite, "sqlite");
forward_store!(SqliteStore, Sqlite);
jobs_store!(SqliteStore, Sqlite);
fetches_store!(SqliteStore, Sqlite);
catch_up_store!(SqliteStore, Sqlite);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{now, SourceKind, Status, StatusChange};
    use crate::store::Store;

    /// The `connection_health` view (both backends define it the same way; the PostgreSQL
    /// one is read in `tests/monitor.rs`).
    #[tokio::test]
    async fn the_connection_health_view_shows_the_recorded_status() {
        let store = SqliteStore::open_memory().await.unwrap();
        store.migrate().await.unwrap();
        let id = Uuid::new_v4();
        let new = crate::model::NewConnection {
            id,
            tenant_id: "acme".into(),
            name: "feed".into(),
            source: SourceKind::Webhook,
            stream: "webhook_event".into(),
            heartbeat_interval_seconds: Some(60),
            grace_seconds: 0,
            config_public: serde_json::json!({}),
            config_sealed: "sealed".into(),
            created_at: now(),
        };
        store.create_connection(&new).await.unwrap();
        let change =
            StatusChange { at: now(), old_status: None, new_status: Status::Error, message: Some("Subscription is missing".into()) };
        store.record_status(id, &change).await.unwrap();
        let (status, message, tenant): (Option<String>, Option<String>, String) =
            sqlx::query_as("SELECT status, status_message, tenant_id FROM connection_health WHERE id = $1")
                .bind(id.to_string())
                .fetch_one(&store.pool)
                .await
                .unwrap();
        assert_eq!((status.as_deref(), message.as_deref(), tenant.as_str()), (Some("error"), Some("Subscription is missing"), "acme"));
    }
}
