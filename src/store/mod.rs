//! Durable state behind one trait, [`Store`], with two implementations on sqlx:
//! SQLite (the embedded default, WAL) and PostgreSQL. All SQL lives in this module.
//!
//! Both implementations share their SQL through the [`sql_store!`] macro (the statements
//! are written to run unchanged on both), and one conformance suite (`conformance.rs`)
//! runs against both backends.
//!
//! Writes from pushes arrive as batches of [`WriteOp`]s: [`Store::commit`] applies a whole
//! batch in one transaction (group commit), and the caller answers each push only after it.

#[macro_use]
mod sql;
#[macro_use]
mod forward_sql;
#[macro_use]
mod jobs;
#[macro_use]
mod fetches;
#[macro_use]
mod catch_up;
mod batch;
mod forward_rows;
mod forwarding;
mod postgres;
mod rows;
mod sqlite;

#[cfg(test)]
mod conformance;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::model::{
    AlertDelivery, AlertSubject, BackgroundTask, Connection, ConnectionFilter, ConnectionUpdate, ContentFetch, CountedHeartbeat,
    HourlyArrivals, NewConnection, NewEvent, NewRejection, ReportedChange, SourceKind, StatusChange, StoredEvent, StoredRejection,
    SubscriptionChange, UpkeepFailure,
};

pub use catch_up::CatchUps;
pub use fetches::{Fetches, FETCH_JOB};
pub use forwarding::Forwarding;
pub use jobs::Jobs;
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// Rejection rows kept per connection (and for pushes that named no connection); older
/// ones are dropped in the commit that adds new ones. Counters keep counting.
pub const MAX_REJECTIONS_PER_CONNECTION: i64 = 1000;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the database is unavailable: {0}")]
    Unavailable(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is not readable: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// The database refused this data (a constraint or a value it cannot store), as
    /// opposed to being unreachable: retrying the same write alone may then succeed
    /// for the other writes of a batch.
    pub fn is_refused_data(&self) -> bool {
        matches!(self, StoreError::Unavailable(sqlx::Error::Database(_)))
    }
}

/// One push's effect on the store, applied with others in one transaction.
#[derive(Debug, Clone)]
pub enum WriteOp {
    /// A verified push: events to insert (duplicates skipped) and facts to update.
    Accept(Accepted),
    /// A refused push: counters to bump and, unless rate-limited, a rejection row.
    Refuse(Refused),
}

#[derive(Debug, Clone)]
pub struct Accepted {
    pub connection_id: Uuid,
    pub tenant_id: String,
    pub source: SourceKind,
    pub stream: String,
    pub received_at: DateTime<Utc>,
    pub events: Vec<NewEvent>,
    /// A heartbeat that is fresh: counted, and moves `last_heartbeat_at` forward to its
    /// signed time, unless its id was counted before (a duplicate then).
    pub heartbeat: Option<CountedHeartbeat>,
    /// This push confirms the subscription (first authenticated push for most senders).
    pub confirms: bool,
    /// The push was authenticated (everything but a Graph validation request): it ends a
    /// run of refused pushes.
    pub authenticated: bool,
    /// Rejections kept with an acknowledged push: a subscription handshake that could not
    /// be completed, or the items of a Graph batch that failed their own checks (an
    /// authentic but undecodable payload is no rejection: it is a `raw` event).
    pub kept_rejections: Vec<NewRejection>,
    /// Changes of the subscription this push reported or caused (SNS confirmation,
    /// unsubscribe, Graph lifecycle events), applied in the same transaction as its events.
    pub changes: Vec<ReportedChange>,
    /// Office 365 content to fetch in the background, queued in the same transaction as
    /// the notifications that announced it (each only when its notification is new).
    pub fetches: Vec<ContentFetch>,
}

#[derive(Debug, Clone)]
pub struct Refused {
    pub connection_id: Option<Uuid>,
    /// Counts towards "Signature verification failing".
    pub unauthenticated: bool,
    /// The row to keep; `None` when rejection recording is rate-limited.
    pub record: Option<NewRejection>,
}

/// What happened to one [`WriteOp`] of a committed batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpOutcome {
    Accepted {
        stored: u32,
        duplicates: u32,
    },
    Refused,
    /// The connection was deleted before the batch committed; nothing was kept.
    ConnectionGone,
}

/// Durable state of pushgate; forwarding's part is [`Forwarding`], the one-replica jobs'
/// part [`Jobs`], Office 365 content fetching's [`Fetches`], the Graph catch-up's [`CatchUps`].
#[async_trait::async_trait]
pub trait Store: Forwarding + Jobs + Fetches + CatchUps + Send + Sync + 'static {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
    async fn migrate(&self) -> Result<(), StoreError>;
    /// Ok when the database answers and every migration is applied.
    async fn ready(&self) -> Result<bool, StoreError>;

    async fn create_connection(&self, new: &NewConnection) -> Result<Connection, StoreError>;
    async fn get_connection(&self, id: Uuid) -> Result<Option<Connection>, StoreError>;
    async fn list_connections(&self, filter: &ConnectionFilter) -> Result<Vec<Connection>, StoreError>;
    async fn update_connection(&self, id: Uuid, update: &ConnectionUpdate, at: DateTime<Utc>) -> Result<Option<Connection>, StoreError>;
    async fn set_paused(&self, id: Uuid, paused: bool, at: DateTime<Utc>) -> Result<Option<Connection>, StoreError>;
    /// Deletes the connection with its events, heartbeats, rejections and history.
    async fn delete_connection(&self, id: Uuid) -> Result<bool, StoreError>;
    /// Forgets the heartbeat ids that arrived longer than `memory` before `at`, or, for a
    /// connection whose interval + grace is longer, than that; how many.
    async fn prune_heartbeats(&self, at: DateTime<Utc>, memory: chrono::Duration) -> Result<u64, StoreError>;

    /// Applies a batch in one transaction; one outcome per op, in order.
    async fn commit(&self, ops: &[WriteOp]) -> Result<Vec<OpOutcome>, StoreError>;

    /// Events newest first, those with `seq` below `before` when given.
    async fn list_events(&self, connection: Uuid, limit: u32, before: Option<i64>) -> Result<Vec<StoredEvent>, StoreError>;
    /// Rejections newest first; `connection: None` lists those that named no connection.
    async fn list_rejections(&self, connection: Option<Uuid>, limit: u32) -> Result<Vec<StoredRejection>, StoreError>;
    /// Status changes oldest first.
    async fn list_history(&self, connection: Uuid) -> Result<Vec<StatusChange>, StoreError>;
    /// The events and heartbeats of a connection that arrived in each of the `hours`
    /// hours from `from` on.
    async fn hourly_arrivals(&self, connection: Uuid, from: DateTime<Utc>, hours: u32) -> Result<HourlyArrivals, StoreError>;
    /// Records a status change and the evaluation time, unless the stored status already
    /// equals `change.new_status` (so concurrent monitors record a transition once).
    async fn record_status(&self, connection: Uuid, change: &StatusChange) -> Result<bool, StoreError>;

    /// Applies a subscription change at `at` outside a push (an admin confirming).
    async fn change_subscription(&self, id: Uuid, change: &SubscriptionChange, at: DateTime<Utc>)
        -> Result<Option<Connection>, StoreError>;
    /// Records one run of a background task for a connection: `error: None` is a success.
    /// A success of the subscription upkeep also clears its failure class.
    async fn record_task(&self, id: Uuid, task: BackgroundTask, at: DateTime<Utc>, error: Option<&str>) -> Result<(), StoreError>;
    /// Forgets the class of the subscription upkeep's failures (the connection no longer
    /// has pushgate keep its subscription).
    async fn clear_upkeep_failure(&self, id: Uuid) -> Result<(), StoreError>;
    /// A classified upkeep failure: its text (as [`Store::record_task`] records it) and its
    /// class ([`crate::model::Facts::upkeep_failure`], failing since `at` unless it already
    /// failed for that class) in one write, so no reader sees the status it causes without
    /// its cause, or the cause without its status.
    async fn record_upkeep_failure(&self, id: Uuid, failure: UpkeepFailure, at: DateTime<Utc>, error: &str) -> Result<(), StoreError>;
    /// Enters a Graph `missed` report in the status history: `entry` (at the report's
    /// time, its status unchanged) is written unless a report of that time was entered
    /// already (so concurrent monitors enter it once). Whether it was written.
    async fn record_missed(&self, connection: Uuid, entry: &StatusChange) -> Result<bool, StoreError>;

    /// Keeps the fingerprint of the settings a subscription upkeep just created a
    /// subscription with ([`crate::model::Facts::upkeep_settings_hash`]).
    async fn record_upkeep_settings(&self, id: Uuid, hash: &str) -> Result<(), StoreError>;

    /// Notes that the monitor evaluated these connections at `at`.
    async fn mark_checked(&self, ids: &[Uuid], at: DateTime<Utc>) -> Result<(), StoreError>;
    /// Keeps the outcome of one alert-webhook delivery.
    async fn record_alert_delivery(&self, delivery: &AlertDelivery) -> Result<(), StoreError>;
    /// Alert deliveries about a connection or a destination, newest first.
    async fn list_alert_deliveries(&self, subject: AlertSubject, limit: u32) -> Result<Vec<AlertDelivery>, StoreError>;

    async fn add_admin_token(&self, sha256_hex: &str, at: DateTime<Utc>) -> Result<(), StoreError>;
    async fn admin_token_hashes(&self) -> Result<Vec<String>, StoreError>;
}

/// Connects to the database a URL names (see [`crate::config::Database`]).
pub async fn connect(database: &crate::config::Database) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    use crate::config::Database;
    Ok(match database {
        Database::SqliteFile(path) => std::sync::Arc::new(SqliteStore::open_file(path).await?),
        Database::SqliteMemory => std::sync::Arc::new(SqliteStore::open_memory().await?),
        Database::Postgres(url) => std::sync::Arc::new(PostgresStore::connect(url).await?),
    })
}
