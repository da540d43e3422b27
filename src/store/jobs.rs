//! The store's half of the jobs that run on one replica at a time: job leases and the
//! durable alert queue. Every [`Store`](super::Store) implements [`Jobs`] with the SQL of
//! `jobs_store!`, written to run unchanged on both backends.
//!
//! **Leases.** A job's lease is one row of `leases`: whoever holds an unexpired row runs
//! the job. Each take is a new generation, and a released lease keeps its row (expired),
//! so generations only grow: a write fenced with a lease changes nothing once the lease
//! was taken again, by anyone.
//!
//! **The alert queue.** Alerts wait in `alert_queue`, oldest first, at most a cap of
//! them (the oldest are dropped beyond it, so a dead webhook cannot fill the disk). The
//! holder of the `alerts` lease records each attempt's outcome fenced with its lease; a
//! finished alert leaves the queue for `alert_deliveries` in one transaction.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::StoreError;
use crate::model::{Alert, AlertDelivery, JobLease, QueuedAlert, StatusChange};

#[async_trait::async_trait]
pub trait Jobs: Send + Sync {
    /// Takes the lease on `job` for `holder` until `until`, when it is free or expired
    /// (at `now`) or already `holder`'s; each take is a new generation.
    async fn acquire_job(&self, job: &str, holder: &str, now: DateTime<Utc>, until: DateTime<Utc>) -> Result<Option<JobLease>, StoreError>;
    /// Extends a lease still held (no take since); false when it was lost.
    async fn renew_job(&self, lease: &JobLease, until: DateTime<Utc>) -> Result<bool, StoreError>;
    /// Gives the lease up (it stays expired, so the next take is a new generation).
    async fn release_job(&self, lease: &JobLease) -> Result<(), StoreError>;

    /// Queues an alert, then drops the oldest beyond `cap` waiting ones; how many dropped.
    async fn enqueue_alert(&self, alert: &Alert, at: DateTime<Utc>, cap: u32) -> Result<u64, StoreError>;
    /// [`Store::record_status`](super::Store::record_status) and, when it records the
    /// transition, [`Jobs::enqueue_alert`] in the same transaction: a transition is
    /// recorded with its alert or not at all. `None` when nothing was recorded, else how
    /// many alerts were dropped.
    async fn record_status_alerting(
        &self,
        connection: Uuid,
        change: &StatusChange,
        alert: &Alert,
        cap: u32,
    ) -> Result<Option<u64>, StoreError>;
    /// [`Store::record_missed`](super::Store::record_missed) with its alert, likewise.
    async fn record_missed_alerting(
        &self,
        connection: Uuid,
        entry: &StatusChange,
        alert: &Alert,
        cap: u32,
    ) -> Result<Option<u64>, StoreError>;
    /// The oldest alert waiting.
    async fn next_alert(&self) -> Result<Option<QueuedAlert>, StoreError>;
    /// How many alerts wait.
    async fn pending_alerts(&self) -> Result<i64, StoreError>;
    /// An attempt failed: keep the count, the error and when to try again, if `lease` is
    /// still the `alerts` job's current one and the alert still waits.
    async fn retry_alert(&self, lease: &JobLease, queued: &QueuedAlert) -> Result<bool, StoreError>;
    /// The alert was delivered or given up on: it leaves the queue and `delivery` is kept,
    /// in one transaction, if `lease` is still current and the alert still waits.
    async fn finish_alert(&self, lease: &JobLease, id: i64, delivery: &AlertDelivery) -> Result<bool, StoreError>;
}

/// The condition a fenced write carries: the lease ($L job, holder, generation) is still
/// the current take of its job.
macro_rules! job_fence {
    ($job:literal, $holder:literal, $generation:literal) => {
        concat!("EXISTS (SELECT 1 FROM leases WHERE name = ", $job, " AND holder = ", $holder, " AND generation = ", $generation, ")")
    };
}

macro_rules! jobs_store {
    ($store:ident, $db:ty) => {
        impl $store {
            /// Queues `alert` in `tx` and drops the oldest beyond `cap`; how many dropped.
            async fn enqueue_in(
                tx: &mut sqlx::Transaction<'_, $db>,
                alert: &crate::model::Alert,
                at: DateTime<Utc>,
                cap: u32,
            ) -> Result<u64, StoreError> {
                let (connection, destination) = match alert.subject {
                    crate::model::AlertSubject::Connection(id) => (Some(id.to_string()), None),
                    crate::model::AlertSubject::Destination(id) => (None, Some(id.to_string())),
                };
                sqlx::query(
                    "INSERT INTO alert_queue (connection_id, destination_id, tenant_id, name, at, old_status, new_status, message, \
                     enqueued_at, attempts, next_attempt_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, $9)",
                )
                .bind(connection)
                .bind(destination)
                .bind(alert.tenant_id.as_deref())
                .bind(alert.name.as_str())
                .bind(alert.at)
                .bind(alert.old_status.as_deref())
                .bind(alert.new_status.as_str())
                .bind(alert.message.as_deref())
                .bind(at)
                .execute(&mut **tx)
                .await?;
                let dropped =
                    sqlx::query("DELETE FROM alert_queue WHERE id <= (SELECT id FROM alert_queue ORDER BY id DESC LIMIT 1 OFFSET $1)")
                        .bind(i64::from(cap))
                        .execute(&mut **tx)
                        .await?
                        .rows_affected();
                Ok(dropped)
            }
        }

        #[async_trait::async_trait]
        impl super::jobs::Jobs for $store {
            async fn acquire_job(
                &self,
                job: &str,
                holder: &str,
                now: DateTime<Utc>,
                until: DateTime<Utc>,
            ) -> Result<Option<crate::model::JobLease>, StoreError> {
                // One writer at a time on SQLite, taken in this process (see `write_turn`).
                let _turn = self.write_turn().await;
                let generation: Option<i64> = sqlx::query_scalar(
                    "INSERT INTO leases (name, holder, generation, expires_at, acquired_at) VALUES ($1, $2, 1, $3, $4) \
                     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at, \
                     acquired_at = excluded.acquired_at, generation = leases.generation + 1 \
                     WHERE leases.holder = excluded.holder OR leases.expires_at < $4 \
                     RETURNING generation",
                )
                .bind(job)
                .bind(holder)
                .bind(until)
                .bind(now)
                .fetch_optional(&self.progress)
                .await?;
                Ok(generation.map(|generation| crate::model::JobLease { job: job.to_owned(), holder: holder.to_owned(), generation }))
            }

            async fn renew_job(&self, lease: &crate::model::JobLease, until: DateTime<Utc>) -> Result<bool, StoreError> {
                let _turn = self.write_turn().await;
                let done = sqlx::query("UPDATE leases SET expires_at = $4 WHERE name = $1 AND holder = $2 AND generation = $3")
                    .bind(lease.job.as_str())
                    .bind(lease.holder.as_str())
                    .bind(lease.generation)
                    .bind(until)
                    .execute(&self.progress)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn release_job(&self, lease: &crate::model::JobLease) -> Result<(), StoreError> {
                let _turn = self.write_turn().await;
                sqlx::query("UPDATE leases SET expires_at = $4 WHERE name = $1 AND holder = $2 AND generation = $3")
                    .bind(lease.job.as_str())
                    .bind(lease.holder.as_str())
                    .bind(lease.generation)
                    .bind(DateTime::<Utc>::UNIX_EPOCH)
                    .execute(&self.progress)
                    .await?;
                Ok(())
            }

            async fn enqueue_alert(&self, alert: &crate::model::Alert, at: DateTime<Utc>, cap: u32) -> Result<u64, StoreError> {
                let _turn = self.write_turn().await;
                let mut tx = self.pool.begin().await?;
                let dropped = Self::enqueue_in(&mut tx, alert, at, cap).await?;
                tx.commit().await?;
                Ok(dropped)
            }

            async fn record_status_alerting(
                &self,
                connection: Uuid,
                change: &crate::model::StatusChange,
                alert: &crate::model::Alert,
                cap: u32,
            ) -> Result<Option<u64>, StoreError> {
                let _turn = self.write_turn().await;
                let mut tx = self.pool.begin().await?;
                let dropped = match Self::status_in(&mut tx, connection, change).await? {
                    true => Some(Self::enqueue_in(&mut tx, alert, crate::model::now(), cap).await?),
                    false => None,
                };
                tx.commit().await?;
                Ok(dropped)
            }

            async fn record_missed_alerting(
                &self,
                connection: Uuid,
                entry: &crate::model::StatusChange,
                alert: &crate::model::Alert,
                cap: u32,
            ) -> Result<Option<u64>, StoreError> {
                let _turn = self.write_turn().await;
                let mut tx = self.pool.begin().await?;
                let dropped = match Self::missed_in(&mut tx, connection, entry).await? {
                    true => Some(Self::enqueue_in(&mut tx, alert, crate::model::now(), cap).await?),
                    false => None,
                };
                tx.commit().await?;
                Ok(dropped)
            }

            async fn next_alert(&self) -> Result<Option<crate::model::QueuedAlert>, StoreError> {
                type Row = (
                    i64,
                    Option<String>,
                    Option<String>,
                    Option<String>,
                    String,
                    DateTime<Utc>,
                    Option<String>,
                    String,
                    Option<String>,
                    i64,
                    DateTime<Utc>,
                    Option<String>,
                );
                let row: Option<Row> = sqlx::query_as(
                    "SELECT id, connection_id, destination_id, tenant_id, name, at, old_status, new_status, message, \
                     CAST(attempts AS BIGINT), next_attempt_at, last_error FROM alert_queue ORDER BY id LIMIT 1",
                )
                .fetch_optional(&self.pool)
                .await?;
                let Some((id, connection, destination, tenant_id, name, at, old_status, new_status, message, attempts, next, error)) = row
                else {
                    return Ok(None);
                };
                let parse =
                    |text: &str| Uuid::parse_str(text).map_err(|e| StoreError::Corrupt(format!("queued alert {id}: subject id: {e}")));
                let subject = match (connection, destination) {
                    (Some(c), _) => crate::model::AlertSubject::Connection(parse(&c)?),
                    (None, Some(d)) => crate::model::AlertSubject::Destination(parse(&d)?),
                    (None, None) => return Err(StoreError::Corrupt(format!("queued alert {id} names no subject"))),
                };
                let alert = crate::model::Alert { subject, tenant_id, name, at, old_status, new_status, message };
                Ok(Some(crate::model::QueuedAlert { id, alert, attempts, next_attempt_at: next, last_error: error }))
            }

            async fn pending_alerts(&self) -> Result<i64, StoreError> {
                Ok(sqlx::query_scalar("SELECT COUNT(*) FROM alert_queue").fetch_one(&self.pool).await?)
            }

            async fn retry_alert(&self, lease: &crate::model::JobLease, queued: &crate::model::QueuedAlert) -> Result<bool, StoreError> {
                let _turn = self.write_turn().await;
                let done = sqlx::query(concat!(
                    "UPDATE alert_queue SET attempts = $5, next_attempt_at = $6, last_error = $7 WHERE id = $4 AND ",
                    job_fence!("$1", "$2", "$3")
                ))
                .bind(lease.job.as_str())
                .bind(lease.holder.as_str())
                .bind(lease.generation)
                .bind(queued.id)
                .bind(i32::try_from(queued.attempts).unwrap_or(i32::MAX))
                .bind(queued.next_attempt_at)
                .bind(queued.last_error.as_deref().map(bounded))
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn finish_alert(
                &self,
                lease: &crate::model::JobLease,
                id: i64,
                delivery: &crate::model::AlertDelivery,
            ) -> Result<bool, StoreError> {
                let _turn = self.write_turn().await;
                let mut tx = self.pool.begin().await?;
                let left = sqlx::query(concat!("DELETE FROM alert_queue WHERE id = $4 AND ", job_fence!("$1", "$2", "$3")))
                    .bind(lease.job.as_str())
                    .bind(lease.holder.as_str())
                    .bind(lease.generation)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                    > 0;
                if left {
                    Self::alert_delivery_insert(delivery).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(left)
            }
        }
    };
}
