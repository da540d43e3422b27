//! The store's half of Office 365 content fetching: the durable queue `o365_fetches`.
//! Every [`Store`](super::Store) implements [`Fetches`] with the SQL of `fetches_store!`,
//! written to run unchanged on both backends.
//!
//! A content notification's fetch is queued by [`Store::commit`](super::Store::commit),
//! in the transaction that stores the notification, once per `(connection, contentId)`.
//! The holder of the `o365_fetch` job lease then works the queue: every write it makes
//! is fenced with its lease (a replica that lost the lease changes nothing) and with the
//! row still pending (nothing is finished twice). A fetched blob's records are inserted
//! as events in the transaction that marks its row done, so a crash before that commit
//! leaves the row pending and the blob is fetched again; the records' dedupe keys make
//! that harmless.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::StoreError;
use crate::model::{Alert, Connection, NewEvent, NewRejection, QueuedFetch, StatusChange};

#[async_trait::async_trait]
pub trait Fetches: Send + Sync {
    /// Ticks after each commit that queued content to fetch (on this process): the fetch
    /// job wakes on it, not on every commit of every push.
    fn fetches_queued(&self) -> tokio::sync::watch::Receiver<u64>;
    /// Pending fetches due at `now`, the earliest first, at most `limit`.
    async fn due_fetches(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<QueuedFetch>, StoreError>;
    /// When the earliest pending fetch is due; `None` when none waits.
    async fn next_fetch_due(&self) -> Result<Option<DateTime<Utc>>, StoreError>;
    /// Stores `records` as events of `connection` (received at `at`; those whose dedupe
    /// key the connection has already are skipped) and marks `fetch` done, in one
    /// transaction, if `lease` is still current and the fetch still pending. How many
    /// records were new; `None` when nothing was written.
    async fn finish_fetch(
        &self,
        lease: &crate::model::JobLease,
        fetch: &QueuedFetch,
        connection: &Connection,
        records: &[NewEvent],
        at: DateTime<Utc>,
    ) -> Result<Option<u64>, StoreError>;
    /// A failed attempt: keeps `fetch`'s `attempts`, `last_error` and `next_attempt_at`,
    /// and the error on its connection (at `at`), if `lease` is current and it is pending.
    async fn retry_fetch(&self, lease: &crate::model::JobLease, fetch: &QueuedFetch, at: DateTime<Utc>) -> Result<bool, StoreError>;
    /// Puts every pending fetch of `connection` due before `until` off to `until` (never
    /// past its expiry): the Management API asked that connection to wait. How many.
    async fn defer_fetches(&self, lease: &crate::model::JobLease, connection: Uuid, until: DateTime<Utc>) -> Result<u64, StoreError>;
    /// `fetch` names content pushgate must not request: it is marked refused, with
    /// `rejection` kept (and counted) on its connection, in one transaction.
    async fn refuse_fetch(&self, lease: &crate::model::JobLease, fetch: &QueuedFetch, rejection: &NewRejection)
        -> Result<bool, StoreError>;
    /// The pending fetches `ids` of `connection` expired before they could be fetched:
    /// marks them expired, counts them on the connection, enters `entry` in its status
    /// history and queues `alert` (when alerts are on, dropping the oldest beyond `cap`),
    /// in one transaction. `None` when none of them was still pending under `lease`, else
    /// how many expired and how many alerts were dropped.
    #[allow(clippy::too_many_arguments)]
    async fn expire_fetches(
        &self,
        lease: &crate::model::JobLease,
        connection: Uuid,
        ids: &[i64],
        entry: &StatusChange,
        alert: Option<&Alert>,
        cap: u32,
    ) -> Result<Option<(u64, u64)>, StoreError>;
    /// Forgets the finished fetches whose content expired before `before`; how many.
    async fn prune_fetches(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;
}

/// The condition every write of the fetch job carries: its lease ($1 holder, $2
/// generation) is still the current take of the `o365_fetch` job.
macro_rules! fetch_fence {
    () => {
        "EXISTS (SELECT 1 FROM leases WHERE name = 'o365_fetch' AND holder = $1 AND generation = $2)"
    };
}

/// The name of the job lease [`Fetches`]' writes are fenced with.
pub const FETCH_JOB: &str = "o365_fetch";

macro_rules! fetches_store {
    ($store:ident, $db:ty) => {
        impl $store {
            /// Queues `fetches` in `tx` (a fetch already queued for its connection and
            /// content id is left as it is).
            async fn queue_fetches_in(
                tx: &mut sqlx::Transaction<'_, $db>,
                fetches: &[(Uuid, &crate::model::ContentFetch, DateTime<Utc>)],
            ) -> Result<(), StoreError> {
                for chunk in fetches.chunks($crate::store::sql::INSERT_CHUNK) {
                    let mut qb = QueryBuilder::<$db>::new(
                        "INSERT INTO o365_fetches (connection_id, content_id, content_type, content_uri, content_created, \
                         expires_at, queued_at, next_attempt_at) ",
                    );
                    qb.push_values(chunk, |mut b, (connection, f, at)| {
                        b.push_bind(connection.to_string())
                            .push_bind(f.content_id.as_str())
                            .push_bind(f.content_type.as_str())
                            .push_bind(f.content_uri.as_str())
                            .push_bind(f.content_created)
                            .push_bind(f.expires_at)
                            .push_bind(*at)
                            .push_bind(*at);
                    });
                    qb.push(" ON CONFLICT (connection_id, content_id) DO NOTHING");
                    qb.build().execute(&mut **tx).await?;
                }
                Ok(())
            }
        }

        #[async_trait::async_trait]
        impl super::fetches::Fetches for $store {
            fn fetches_queued(&self) -> tokio::sync::watch::Receiver<u64> {
                self.fetches_queued.subscribe()
            }

            async fn due_fetches(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<crate::model::QueuedFetch>, StoreError> {
                type Row = (i64, String, String, String, String, DateTime<Utc>, i64, DateTime<Utc>, Option<String>);
                let rows: Vec<Row> = sqlx::query_as(
                    "SELECT id, connection_id, content_id, content_type, content_uri, expires_at, CAST(attempts AS BIGINT), \
                     next_attempt_at, last_error FROM o365_fetches WHERE state = 'pending' AND next_attempt_at <= $1 \
                     ORDER BY next_attempt_at, id LIMIT $2",
                )
                .bind(now)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter()
                    .map(|(id, connection, content_id, content_type, content_uri, expires_at, attempts, next_attempt_at, last_error)| {
                        let connection_id = Uuid::parse_str(&connection)
                            .map_err(|e| StoreError::Corrupt(format!("queued fetch {id}: connection id: {e}")))?;
                        Ok(crate::model::QueuedFetch {
                            id,
                            connection_id,
                            content_id,
                            content_type,
                            content_uri,
                            expires_at,
                            attempts,
                            next_attempt_at,
                            last_error,
                        })
                    })
                    .collect()
            }

            async fn next_fetch_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
                Ok(sqlx::query_scalar("SELECT MIN(next_attempt_at) FROM o365_fetches WHERE state = 'pending'")
                    .fetch_one(&self.pool)
                    .await?)
            }

            async fn finish_fetch(
                &self,
                lease: &crate::model::JobLease,
                fetch: &crate::model::QueuedFetch,
                connection: &crate::model::Connection,
                records: &[crate::model::NewEvent],
                at: DateTime<Utc>,
            ) -> Result<Option<u64>, StoreError> {
                let _turn = self.write_turn().await;
                let mut tx = self.pool.begin().await?;
                // The row first: once it is done under this lease, no one else writes it.
                let claimed = sqlx::query(concat!(
                    "UPDATE o365_fetches SET state = 'done', finished_at = $4, records = $5 \
                     WHERE id = $3 AND state = 'pending' AND ",
                    fetch_fence!()
                ))
                .bind(lease.holder.as_str())
                .bind(lease.generation)
                .bind(fetch.id)
                .bind(at)
                .bind(i32::try_from(records.len()).unwrap_or(i32::MAX))
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    > 0;
                if !claimed {
                    return Ok(None);
                }
                let rows: Vec<_> = records
                    .iter()
                    .map(|event| $crate::store::sql::EventInsert {
                        connection_id: connection.id,
                        tenant_id: &connection.tenant_id,
                        source: connection.source,
                        stream: &connection.stream,
                        received_at: at,
                        event,
                    })
                    .collect();
                let inserted = Self::insert_events_in(&mut tx, &rows).await?;
                let stored = inserted.len() as i64;
                let updated = sqlx::query(
                    "UPDATE connections SET events_count = events_count + $2, records_fetched_count = records_fetched_count + $2, \
                     data_last_fetched_at = CASE WHEN $2 > 0 THEN $3 ELSE data_last_fetched_at END WHERE id = $1",
                )
                .bind(connection.id.to_string())
                .bind(stored)
                .bind(at)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if updated == 0 {
                    // Deleted since the fetch began: keep nothing for it.
                    return Ok(None);
                }
                tx.commit().await?;
                if stored > 0 {
                    self.commits.send_modify(|n| *n = n.wrapping_add(1));
                }
                Ok(Some(stored as u64))
            }

            async fn retry_fetch(
                &self,
                lease: &crate::model::JobLease,
                fetch: &crate::model::QueuedFetch,
                at: DateTime<Utc>,
            ) -> Result<bool, StoreError> {
                let _turn = self.write_turn().await;
                let error = fetch.last_error.as_deref().map(bounded);
                let mut tx = self.pool.begin().await?;
                let done = sqlx::query(concat!(
                    "UPDATE o365_fetches SET attempts = $4, next_attempt_at = $5, last_error = $6 \
                     WHERE id = $3 AND state = 'pending' AND ",
                    fetch_fence!()
                ))
                .bind(lease.holder.as_str())
                .bind(lease.generation)
                .bind(fetch.id)
                .bind(i32::try_from(fetch.attempts).unwrap_or(i32::MAX))
                .bind(fetch.next_attempt_at)
                .bind(error.as_deref())
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    > 0;
                if done {
                    sqlx::query("UPDATE connections SET fetch_last_error = $2, fetch_last_error_at = $3 WHERE id = $1")
                        .bind(fetch.connection_id.to_string())
                        .bind(error.as_deref())
                        .bind(at)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(done)
            }

            async fn defer_fetches(
                &self,
                lease: &crate::model::JobLease,
                connection: Uuid,
                until: DateTime<Utc>,
            ) -> Result<u64, StoreError> {
                let _turn = self.write_turn().await;
                let done = sqlx::query(concat!(
                    "UPDATE o365_fetches SET next_attempt_at = CASE WHEN expires_at < $4 THEN expires_at ELSE $4 END \
                     WHERE connection_id = $3 AND state = 'pending' AND next_attempt_at < $4 AND ",
                    fetch_fence!()
                ))
                .bind(lease.holder.as_str())
                .bind(lease.generation)
                .bind(connection.to_string())
                .bind(until)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected())
            }

            async fn refuse_fetch(
                &self,
                lease: &crate::model::JobLease,
                fetch: &crate::model::QueuedFetch,
                rejection: &crate::model::NewRejection,
            ) -> Result<bool, StoreError> {
                let _turn = self.write_turn().await;
                let mut tx = self.pool.begin().await?;
                let done = sqlx::query(concat!(
                    "UPDATE o365_fetches SET state = 'refused', finished_at = $4, last_error = $5 \
                     WHERE id = $3 AND state = 'pending' AND ",
                    fetch_fence!()
                ))
                .bind(lease.holder.as_str())
                .bind(lease.generation)
                .bind(fetch.id)
                .bind(rejection.at)
                .bind(bounded(&rejection.detail))
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    > 0;
                if done {
                    let id = fetch.connection_id.to_string();
                    sqlx::query(
                        "UPDATE connections SET rejections_count = rejections_count + 1, fetch_last_error = $2, \
                         fetch_last_error_at = $3 WHERE id = $1",
                    )
                    .bind(&id)
                    .bind(bounded(&rejection.detail))
                    .bind(rejection.at)
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query(
                        "INSERT INTO rejections (connection_id, at, reason, source_addr, detail, body_prefix) \
                         VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(&id)
                    .bind(rejection.at)
                    .bind(rejection.reason.as_str())
                    .bind(rejection.source_addr.as_deref())
                    .bind(rejection.detail.as_str())
                    .bind(rejection.body_prefix.as_str())
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query($crate::store::sql::PRUNE_REJECTIONS)
                        .bind(&id)
                        .bind($crate::store::MAX_REJECTIONS_PER_CONNECTION)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(done)
            }

            async fn expire_fetches(
                &self,
                lease: &crate::model::JobLease,
                connection: Uuid,
                ids: &[i64],
                entry: &crate::model::StatusChange,
                alert: Option<&crate::model::Alert>,
                cap: u32,
            ) -> Result<Option<(u64, u64)>, StoreError> {
                let _turn = self.write_turn().await;
                let id = connection.to_string();
                let mut tx = self.pool.begin().await?;
                let mut expired = 0;
                for chunk in ids.chunks($crate::store::sql::INSERT_CHUNK) {
                    let mut qb = QueryBuilder::<$db>::new("UPDATE o365_fetches SET state = 'expired', finished_at = ");
                    qb.push_bind(entry.at).push(" WHERE connection_id = ").push_bind(id.as_str());
                    qb.push(" AND state = 'pending' AND id IN (");
                    let mut list = qb.separated(", ");
                    for fetch in chunk {
                        list.push_bind(*fetch);
                    }
                    qb.push(") AND EXISTS (SELECT 1 FROM leases WHERE name = ").push_bind(super::fetches::FETCH_JOB);
                    qb.push(" AND holder = ").push_bind(lease.holder.as_str());
                    qb.push(" AND generation = ").push_bind(lease.generation).push(")");
                    expired += qb.build().execute(&mut *tx).await?.rows_affected();
                }
                if expired == 0 {
                    return Ok(None);
                }
                sqlx::query("UPDATE connections SET blobs_expired_count = blobs_expired_count + $2 WHERE id = $1")
                    .bind(&id)
                    .bind(i64::try_from(expired).unwrap_or(i64::MAX))
                    .execute(&mut *tx)
                    .await?;
                Self::history_insert(&id, entry).execute(&mut *tx).await?;
                let dropped = match alert {
                    Some(alert) => Self::enqueue_in(&mut tx, alert, crate::model::now(), cap).await?,
                    None => 0,
                };
                tx.commit().await?;
                Ok(Some((expired, dropped)))
            }

            async fn prune_fetches(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
                let _turn = self.write_turn().await;
                let done = sqlx::query("DELETE FROM o365_fetches WHERE state <> 'pending' AND expires_at < $1")
                    .bind(before)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected())
            }
        }
    };
}
