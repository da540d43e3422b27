//! The store's half of forwarding (INTERFACE.md section 7): destinations, reading events
//! in commit order, fenced progress, dead letters, leases and retention. Every
//! [`Store`](super::Store) implements it; the SQL is in `forward_sql.rs`.
//!
//! **Commit order.** Rows are read only up to the [`Forwarding::horizon`], a position
//! below which no row can still appear: on PostgreSQL every row carries the id of the
//! transaction that inserted it, and the horizon lies below the oldest transaction still
//! running, so a row that commits after a row with a higher `seq` is read after it, never
//! skipped. On SQLite there is one writer at a time, so `seq` order is commit order and
//! the horizon is the highest `seq`; `seq` is AUTOINCREMENT, so no deletion can make a new
//! row take a number behind a destination's position.
//!
//! **Fencing.** Every write of a destination's progress names the [`Lease`] it was made
//! under and changes nothing when that lease is no longer the current one.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::StoreError;
use crate::model::{
    Backlog, CompletedBatch, CompletedReplay, DeadLetter, Destination, DestinationUpdate, EventFilter, EventRecord, Lease, NewDestination,
    Position, PruneOutcome, PruneWindow,
};

/// [`Forwarding::backlog`] counts undelivered events up to this many.
pub const BACKLOG_COUNT_CAP: i64 = 1_000_000;

#[async_trait::async_trait]
pub trait Forwarding: Send + Sync {
    /// Creates a destination; `start_from: now` starts it at the current horizon.
    async fn create_destination(&self, new: &NewDestination) -> Result<Destination, StoreError>;
    async fn get_destination(&self, id: Uuid) -> Result<Option<Destination>, StoreError>;
    /// Every destination, oldest first.
    async fn list_destinations(&self) -> Result<Vec<Destination>, StoreError>;
    async fn update_destination(&self, id: Uuid, update: &DestinationUpdate, at: DateTime<Utc>) -> Result<Option<Destination>, StoreError>;
    async fn set_destination_paused(&self, id: Uuid, paused: bool, at: DateTime<Utc>) -> Result<Option<Destination>, StoreError>;
    /// Deletes the destination with its dead letters and alert deliveries.
    async fn delete_destination(&self, id: Uuid) -> Result<bool, StoreError>;

    /// The position up to which every row that will ever be visible is visible now.
    async fn horizon(&self) -> Result<Position, StoreError>;
    /// Matching events after `after` and at most `upto`, in commit order.
    async fn read_events(&self, after: Position, upto: Position, filter: &EventFilter, limit: u32) -> Result<Vec<EventRecord>, StoreError>;
    /// How many matching committed events lie after `after` (at most
    /// [`BACKLOG_COUNT_CAP`]), and when the first arrived.
    async fn backlog(&self, after: Position, filter: &EventFilter) -> Result<Backlog, StoreError>;

    /// Takes the destination's lease for `holder` until `until`, when it is free, expired
    /// (at `now`) or already `holder`'s, and the destination is not paused. Each take is a
    /// new generation, which fences out every earlier one.
    async fn acquire_destination(
        &self,
        id: Uuid,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Option<Lease>, StoreError>;
    /// Extends a lease still held; false when it was lost.
    async fn renew_destination(&self, lease: &Lease, until: DateTime<Utc>) -> Result<bool, StoreError>;
    async fn release_destination(&self, lease: &Lease) -> Result<(), StoreError>;
    /// Keeps a batch's id and range before it is sent.
    async fn plan_batch(&self, lease: &Lease, id: Uuid, end: Position) -> Result<bool, StoreError>;
    /// Moves the position past a delivered batch, clears its plan, keeps its dead letters.
    async fn complete_batch(&self, lease: &Lease, done: &CompletedBatch) -> Result<bool, StoreError>;
    /// Moves the position forward over events that no batch is planned for (none of them
    /// match the filter). Never moves it back.
    async fn skip_to(&self, lease: &Lease, position: Position) -> Result<bool, StoreError>;
    /// An attempt failed: the destination is failing, the error is kept, a retry counted.
    async fn record_failure(&self, lease: &Lease, at: DateTime<Utc>, message: &str) -> Result<bool, StoreError>;

    /// Dead letters, newest first.
    async fn list_dead_letters(&self, id: Uuid, limit: u32) -> Result<Vec<DeadLetter>, StoreError>;
    /// Marks every dead letter of the destination to be tried again once; how many.
    async fn request_replay(&self, id: Uuid) -> Result<u64, StoreError>;
    /// Dead letters waiting to be tried again, oldest first.
    async fn replays(&self, id: Uuid, limit: u32) -> Result<Vec<DeadLetter>, StoreError>;
    async fn complete_replay(&self, lease: &Lease, replay: &CompletedReplay, at: DateTime<Utc>) -> Result<bool, StoreError>;

    /// The end of the retention window of about `size` events after `after_seq`, or
    /// `None` when no event lies after it.
    async fn retention_window(&self, after_seq: i64, size: u32) -> Result<Option<i64>, StoreError>;
    /// One retention step (see [`PruneWindow`]), in one transaction.
    async fn prune_events(&self, window: &PruneWindow, at: DateTime<Utc>) -> Result<PruneOutcome, StoreError>;
    /// Deletes up to `limit` status-history rows and as many alert deliveries from before
    /// `before`; how many.
    async fn prune_history(&self, before: DateTime<Utc>, limit: u32) -> Result<u64, StoreError>;
    /// Deletes up to `limit` dead letters kept since before `before`; how many.
    async fn prune_dead_letters(&self, before: DateTime<Utc>, limit: u32) -> Result<u64, StoreError>;

    /// Ticks after every commit that stored events, so forwarding can wake at once.
    fn commits(&self) -> tokio::sync::watch::Receiver<u64>;
}
