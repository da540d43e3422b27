//! The store's half of the Graph catch-up: each connection's delta state (one row of
//! `graph_catch_up`) and the notes the catch-up enters in the status history. Every
//! [`Store`](super::Store) implements [`CatchUps`] with the SQL of `catch_up_store!`,
//! written to run unchanged on both backends.
//!
//! Whether a catch-up is due is written apart from the round's progress: a request (from
//! the upkeep, or for a `missed` report) and the round that settles it may run on other
//! replicas, so neither overwrites the other's columns, and a round settles only the
//! requests made before it began.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::StoreError;
use crate::model::{CatchUpState, StatusChange};

#[async_trait::async_trait]
pub trait CatchUps: Send + Sync {
    /// The connection's delta state, if any was kept.
    async fn catch_up_state(&self, connection: Uuid) -> Result<Option<CatchUpState>, StoreError>;
    /// Keeps the round's progress and the `missed` report taken up (not whether a catch-up
    /// is due); nothing for a connection deleted meanwhile.
    async fn save_catch_up(&self, state: &CatchUpState) -> Result<(), StoreError>;
    /// A catch-up is due, asked at `at` for `reason`; an earlier request still due keeps
    /// its time and reason.
    async fn request_catch_up(&self, connection: Uuid, reason: &str, at: DateTime<Utc>) -> Result<(), StoreError>;
    /// A round begun at `round_started_at` read to its end: the catch-up is no longer due,
    /// unless it was asked for again after the round began. Whether it was settled.
    async fn settle_catch_up(&self, connection: Uuid, round_started_at: DateTime<Utc>) -> Result<bool, StoreError>;
    /// Enters `entry` in the status history as it is (the catch-up's notes keep the status).
    async fn record_note(&self, connection: Uuid, entry: &StatusChange) -> Result<(), StoreError>;
}

macro_rules! catch_up_store {
    ($store:ident, $db:ty) => {
        #[derive(sqlx::FromRow)]
        struct CatchUpRow {
            connection_id: String,
            resource: Option<String>,
            delta_link: Option<String>,
            next_link: Option<String>,
            round_stores: bool,
            round_started_at: Option<DateTime<Utc>>,
            round_items: i64,
            round_duplicates: i64,
            due_since: Option<DateTime<Utc>>,
            due_reason: Option<String>,
            due_asked_at: Option<DateTime<Utc>>,
            missed_seen_at: Option<DateTime<Utc>>,
        }

        #[async_trait::async_trait]
        impl super::catch_up::CatchUps for $store {
            async fn catch_up_state(&self, connection: Uuid) -> Result<Option<crate::model::CatchUpState>, StoreError> {
                let row: Option<CatchUpRow> = sqlx::query_as(
                    "SELECT connection_id, resource, delta_link, next_link, round_stores, round_started_at, round_items, \
                     round_duplicates, due_since, due_reason, due_asked_at, missed_seen_at FROM graph_catch_up WHERE connection_id = $1",
                )
                .bind(connection.to_string())
                .fetch_optional(&self.pool)
                .await?;
                let Some(r) = row else { return Ok(None) };
                let connection_id =
                    Uuid::parse_str(&r.connection_id).map_err(|e| StoreError::Corrupt(format!("catch-up row id {}: {e}", r.connection_id)))?;
                Ok(Some(crate::model::CatchUpState {
                    connection_id,
                    resource: r.resource,
                    delta_link: r.delta_link,
                    next_link: r.next_link,
                    round_stores: r.round_stores,
                    round_started_at: r.round_started_at,
                    round_items: r.round_items,
                    round_duplicates: r.round_duplicates,
                    due_since: r.due_since,
                    due_reason: r.due_reason,
                    due_asked_at: r.due_asked_at,
                    missed_seen_at: r.missed_seen_at,
                }))
            }

            async fn save_catch_up(&self, s: &crate::model::CatchUpState) -> Result<(), StoreError> {
                let _turn = self.write_turn().await;
                sqlx::query(
                    "INSERT INTO graph_catch_up (connection_id, resource, delta_link, next_link, round_stores, round_started_at, \
                     round_items, round_duplicates, missed_seen_at) \
                     SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9 WHERE EXISTS (SELECT 1 FROM connections WHERE id = $1) \
                     ON CONFLICT (connection_id) DO UPDATE SET resource = excluded.resource, delta_link = excluded.delta_link, \
                     next_link = excluded.next_link, round_stores = excluded.round_stores, round_started_at = excluded.round_started_at, \
                     round_items = excluded.round_items, round_duplicates = excluded.round_duplicates, \
                     missed_seen_at = excluded.missed_seen_at",
                )
                .bind(s.connection_id.to_string())
                .bind(s.resource.as_deref())
                .bind(s.delta_link.as_deref())
                .bind(s.next_link.as_deref())
                .bind(s.round_stores)
                .bind(s.round_started_at)
                .bind(s.round_items)
                .bind(s.round_duplicates)
                .bind(s.missed_seen_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn request_catch_up(&self, connection: Uuid, reason: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
                let _turn = self.write_turn().await;
                sqlx::query(
                    "INSERT INTO graph_catch_up (connection_id, due_since, due_reason, due_asked_at) \
                     SELECT $1, $2, $3, $2 WHERE EXISTS (SELECT 1 FROM connections WHERE id = $1) \
                     ON CONFLICT (connection_id) DO UPDATE SET \
                     due_reason = CASE WHEN graph_catch_up.due_since IS NULL THEN excluded.due_reason ELSE graph_catch_up.due_reason END, \
                     due_since = COALESCE(graph_catch_up.due_since, excluded.due_since), \
                     due_asked_at = CASE WHEN graph_catch_up.due_asked_at IS NULL OR graph_catch_up.due_asked_at < excluded.due_asked_at \
                         THEN excluded.due_asked_at ELSE graph_catch_up.due_asked_at END",
                )
                .bind(connection.to_string())
                .bind(at)
                .bind(reason)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn settle_catch_up(&self, connection: Uuid, round_started_at: DateTime<Utc>) -> Result<bool, StoreError> {
                let _turn = self.write_turn().await;
                let done = sqlx::query(
                    "UPDATE graph_catch_up SET due_since = NULL, due_reason = NULL \
                     WHERE connection_id = $1 AND due_since IS NOT NULL AND (due_asked_at IS NULL OR due_asked_at <= $2)",
                )
                .bind(connection.to_string())
                .bind(round_started_at)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn record_note(&self, connection: Uuid, entry: &StatusChange) -> Result<(), StoreError> {
                let _turn = self.write_turn().await;
                let id = connection.to_string();
                Self::history_insert(&id, entry).execute(&self.pool).await?;
                Ok(())
            }
        }
    };
}
