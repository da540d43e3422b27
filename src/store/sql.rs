//! The SQL both backends share, as a macro that implements [`Store`](super::Store) for a
//! struct with a `pool` field and an associated `MIGRATOR`. Every statement here runs
//! unchanged on SQLite (3.39+) and PostgreSQL: `$N` parameters, `ON CONFLICT DO NOTHING
//! RETURNING`, `IS NOT DISTINCT FROM`, text ids and JSON bound as `Json<_>`.
//!
//! One file: every SQL statement of ingest and the admin API, shared by both backends, so a
//! change to the schema is checked against all of its statements at once.

/// Rows per multi-row INSERT; well under both backends' bind-parameter limits.
pub const INSERT_CHUNK: usize = 500;

pub const REJECTIONS_OF: &str = "SELECT id, at, reason, source_addr, detail, body_prefix FROM rejections \
    WHERE connection_id = $1 ORDER BY id DESC LIMIT $2";
pub const ORPHAN_REJECTIONS: &str = "SELECT id, at, reason, source_addr, detail, body_prefix FROM rejections \
    WHERE connection_id IS NULL ORDER BY id DESC LIMIT $1";

/// Drops a connection's rejection rows beyond the newest `$2`.
pub const PRUNE_REJECTIONS: &str = "DELETE FROM rejections WHERE connection_id = $1 AND id <= \
    (SELECT id FROM rejections WHERE connection_id = $1 ORDER BY id DESC LIMIT 1 OFFSET $2)";
pub const PRUNE_ORPHAN_REJECTIONS: &str = "DELETE FROM rejections WHERE connection_id IS NULL AND id <= \
    (SELECT id FROM rejections WHERE connection_id IS NULL ORDER BY id DESC LIMIT 1 OFFSET $1)";

pub const UPDATE_FACTS: &str = "UPDATE connections SET \
    events_count = events_count + $2, \
    duplicates_count = duplicates_count + $3, \
    heartbeats_count = heartbeats_count + $4, \
    rejections_count = rejections_count + $5, \
    last_heartbeat_at = CASE WHEN $6 IS NOT NULL AND (last_heartbeat_at IS NULL OR last_heartbeat_at < $6) \
        THEN $6 ELSE last_heartbeat_at END, \
    data_last_received_at = CASE WHEN $7 IS NOT NULL AND (data_last_received_at IS NULL OR data_last_received_at < $7) \
        THEN $7 ELSE data_last_received_at END, \
    confirmed_at = COALESCE(confirmed_at, $8), \
    auth_failure_streak = CASE WHEN $9 THEN $10 ELSE auth_failure_streak + $10 END \
    WHERE id = $1";

/// How much later than another event an event may enter the table although it arrived
/// earlier: a push is stored within seconds of its arrival (or refused), so an hour is
/// far more than any replica's commit takes, clock skew between replicas included.
/// [`Store::hourly_arrivals`](super::Store::hourly_arrivals) relies on it to read only
/// the recent end of a connection's events.
pub const ARRIVAL_ORDER_SLACK: chrono::TimeDelta = chrono::TimeDelta::hours(1);

/// One event to insert, with the connection it belongs to and when it arrived.
pub struct EventInsert<'a> {
    pub connection_id: uuid::Uuid,
    pub tenant_id: &'a str,
    pub source: crate::model::SourceKind,
    pub stream: &'a str,
    pub received_at: chrono::DateTime<chrono::Utc>,
    pub event: &'a crate::model::NewEvent,
}

/// Which arrivals [`Store::hourly_arrivals`](super::Store::hourly_arrivals) counts.
#[derive(Clone, Copy)]
pub enum Arrived {
    Events,
    Heartbeats,
}

macro_rules! sql_store {
    ($store:ident, $db:ty, $backend:literal) => {
        impl $store {
            /// The statement entering `change` in connection `id`'s status history.
            fn history_insert<'q>(
                id: &'q str,
                change: &'q StatusChange,
            ) -> sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments<'q>> {
                sqlx::query("INSERT INTO status_history (connection_id, at, old_status, new_status, message) VALUES ($1, $2, $3, $4, $5)")
                    .bind(id)
                    .bind(change.at)
                    .bind(change.old_status.map(|s| s.as_str()))
                    .bind(change.new_status.as_str())
                    .bind(change.message.as_deref())
            }

            /// How many rows of `what` connection `id` has with a `received_at` in each of
            /// the `hours` hours from `from` on. One statement whose `CASE` names the hour
            /// of each row, so both backends count alike and exactly at the hour's edges.
            async fn hourly_counts(
                &self,
                what: $crate::store::sql::Arrived,
                id: &str,
                from: DateTime<Utc>,
                hours: u32,
            ) -> Result<Vec<i64>, StoreError> {
                let mut counts = vec![0; hours as usize];
                let Some(last) = hours.checked_sub(1) else { return Ok(counts) };
                let edge = |hour: u32| from + chrono::TimeDelta::hours(i64::from(hour));
                let table = match what {
                    $crate::store::sql::Arrived::Events => "events",
                    $crate::store::sql::Arrived::Heartbeats => "heartbeats",
                };
                let mut qb = QueryBuilder::<$db>::new("SELECT hour, COUNT(*) FROM (SELECT CASE");
                for hour in 1..hours {
                    qb.push(" WHEN received_at < ").push_bind(edge(hour)).push(format!(" THEN {}", hour - 1));
                }
                qb.push(format!(" ELSE {last} END AS hour FROM {table} WHERE connection_id = ")).push_bind(id.to_owned());
                qb.push(" AND received_at >= ").push_bind(from).push(" AND received_at < ").push_bind(edge(hours));
                if let $crate::store::sql::Arrived::Events = what {
                    // Events have no index on `received_at`, but `seq` follows it (within
                    // ARRIVAL_ORDER_SLACK): walking the connection's index back from its
                    // newest event to the first that arrived well before `from` reads only
                    // the window, not the whole retention.
                    qb.push(" AND seq > COALESCE((SELECT seq FROM events WHERE connection_id = ")
                        .push_bind(id.to_owned())
                        .push(" AND received_at < ")
                        .push_bind(from - $crate::store::sql::ARRIVAL_ORDER_SLACK)
                        .push(" ORDER BY seq DESC LIMIT 1), 0)");
                }
                qb.push(") AS arrived GROUP BY hour");
                let rows: Vec<(i32, i64)> = qb.build_query_as().fetch_all(&self.pool).await?;
                for (hour, count) in rows {
                    let slot = usize::try_from(hour).ok().and_then(|h| counts.get_mut(h));
                    let slot = slot.ok_or_else(|| StoreError::Corrupt(format!("hour {hour} outside the {hours} counted")))?;
                    *slot = count;
                }
                Ok(counts)
            }

            /// Inserts `rows` into `events` in `tx`, skipping those whose dedupe key the
            /// connection has already; the `(connection id, dedupe key)` pairs that were new.
            async fn insert_events_in(
                tx: &mut sqlx::Transaction<'_, $db>,
                rows: &[$crate::store::sql::EventInsert<'_>],
            ) -> Result<std::collections::HashSet<(String, String)>, StoreError> {
                let mut inserted = std::collections::HashSet::new();
                for chunk in rows.chunks($crate::store::sql::INSERT_CHUNK) {
                    let mut qb = QueryBuilder::<$db>::new(
                        "INSERT INTO events (id, connection_id, tenant_id, source, stream, kind, dedupe_key, \
                         occurred_at, received_at, payload, version_key) ",
                    );
                    qb.push_values(chunk, |mut b, row| {
                        b.push_bind(Uuid::now_v7().to_string())
                            .push_bind(row.connection_id.to_string())
                            .push_bind(row.tenant_id)
                            .push_bind(row.source.as_str())
                            .push_bind(row.stream)
                            .push_bind(row.event.kind.as_str())
                            .push_bind(row.event.dedupe_key.as_str())
                            .push_bind(row.event.occurred_at)
                            .push_bind(row.received_at)
                            .push_bind(Json(&row.event.payload))
                            .push_bind($crate::model::version_key(row.source, &row.event.payload));
                    });
                    // Either key taken (the dedupe key, or a changed item's id and version)
                    // makes the event a duplicate.
                    qb.push(" ON CONFLICT DO NOTHING RETURNING connection_id, dedupe_key");
                    let rows: Vec<(String, String)> = qb.build_query_as().fetch_all(&mut **tx).await?;
                    inserted.extend(rows);
                }
                Ok(inserted)
            }

            /// [`Store::record_status`](crate::store::Store::record_status) in `tx`: a
            /// compare-and-set on the stored status, so concurrent monitors record a
            /// transition once.
            async fn status_in(tx: &mut sqlx::Transaction<'_, $db>, connection: Uuid, change: &StatusChange) -> Result<bool, StoreError> {
                let id = connection.to_string();
                // Conditional on the status the caller saw, so two monitors record one change once.
                let changed = sqlx::query(
                    "UPDATE connections SET last_status = $2, last_status_message = $3, status_last_checked_at = $4 \
                     WHERE id = $1 AND last_status IS NOT DISTINCT FROM $5 \
                     AND (last_status IS DISTINCT FROM $2 OR last_status_message IS DISTINCT FROM $3)",
                )
                .bind(&id)
                .bind(change.new_status.as_str())
                .bind(change.message.as_deref())
                .bind(change.at)
                .bind(change.old_status.map(|s| s.as_str()))
                .execute(&mut **tx)
                .await?
                .rows_affected()
                    > 0;
                if changed {
                    Self::history_insert(&id, change).execute(&mut **tx).await?;
                } else {
                    sqlx::query("UPDATE connections SET status_last_checked_at = $2 WHERE id = $1")
                        .bind(&id)
                        .bind(change.at)
                        .execute(&mut **tx)
                        .await?;
                }
                Ok(changed)
            }

            /// [`Store::record_missed`](crate::store::Store::record_missed) in `tx`.
            async fn missed_in(tx: &mut sqlx::Transaction<'_, $db>, connection: Uuid, entry: &StatusChange) -> Result<bool, StoreError> {
                let id = connection.to_string();
                let entered =
                    sqlx::query("UPDATE connections SET missed_recorded_at = $2 WHERE id = $1 AND missed_recorded_at IS DISTINCT FROM $2")
                        .bind(&id)
                        .bind(entry.at)
                        .execute(&mut **tx)
                        .await?
                        .rows_affected()
                        > 0;
                if entered {
                    Self::history_insert(&id, entry).execute(&mut **tx).await?;
                }
                Ok(entered)
            }

            /// The statement keeping one alert delivery's outcome.
            fn alert_delivery_insert<'q>(d: &'q AlertDelivery) -> sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments<'q>> {
                let (connection, destination) = match d.subject {
                    AlertSubject::Connection(id) => (Some(id.to_string()), None),
                    AlertSubject::Destination(id) => (None, Some(id.to_string())),
                };
                sqlx::query(
                    "INSERT INTO alert_deliveries (connection_id, destination_id, at, old_status, new_status, message, attempts, \
                     delivered, last_error, finished_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(connection)
                .bind(destination)
                .bind(d.at)
                .bind(d.old_status.as_deref())
                .bind(d.new_status.as_str())
                .bind(d.message.as_deref())
                .bind(i32::try_from(d.attempts).unwrap_or(i32::MAX))
                .bind(d.delivered)
                .bind(d.last_error.as_deref())
                .bind(d.finished_at)
            }

            /// The statement applying a subscription change made at `at` (a loss carries the
            /// vendor's time instead).
            fn subscription_query<'q>(
                id: String,
                change: &'q SubscriptionChange,
                at: DateTime<Utc>,
            ) -> sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments<'q>> {
                match change {
                    // A later confirmation supersedes a loss (health compares the two times).
                    SubscriptionChange::Confirmed { external_id } => sqlx::query(
                        "UPDATE connections SET confirmed_at = $2, external_id = COALESCE($3, external_id), \
                         confirmation_url = NULL WHERE id = $1",
                    )
                    .bind(id)
                    .bind(at)
                    .bind(external_id.as_deref()),
                    SubscriptionChange::Pending { confirmation_url } => {
                        sqlx::query("UPDATE connections SET confirmation_url = $2 WHERE id = $1").bind(id).bind(confirmation_url.as_str())
                    }
                    SubscriptionChange::Lost { at: lost_at } => {
                        sqlx::query("UPDATE connections SET subscription_lost_at = $2 WHERE id = $1").bind(id).bind(*lost_at)
                    }
                    // Only a later expiry replaces what is known: see `SubscriptionChange::Observed`.
                    SubscriptionChange::Observed { external_id, expires_at } => sqlx::query(
                        "UPDATE connections SET external_id = $2, expires_at = COALESCE($3, expires_at), \
                         reauthorization_required_at = CASE WHEN expires_at < $3 OR external_id <> $2 THEN NULL \
                             ELSE reauthorization_required_at END, \
                         confirmed_at = CASE WHEN external_id IS NULL OR external_id <> $2 THEN $4 ELSE confirmed_at END \
                         WHERE id = $1 AND (external_id IS NULL OR ($3 IS NOT NULL AND (expires_at IS NULL OR expires_at < $3)) \
                             OR (external_id <> $2 AND subscription_lost_at IS NOT NULL \
                                 AND (confirmed_at IS NULL OR subscription_lost_at >= confirmed_at)))",
                    )
                    .bind(id)
                    .bind(external_id.as_str())
                    .bind(*expires_at)
                    .bind(at),
                    // The first request counts: a repeat of it does not move the time.
                    SubscriptionChange::ReauthorizationRequired { at: asked_at, subscription_id } => sqlx::query(
                        "UPDATE connections SET reauthorization_required_at = COALESCE(reauthorization_required_at, $2), \
                         external_id = COALESCE(external_id, $3) WHERE id = $1 AND (external_id IS NULL OR external_id = $3)",
                    )
                    .bind(id)
                    .bind(*asked_at)
                    .bind(subscription_id.as_str()),
                    SubscriptionChange::Removed { at: removed_at, subscription_id } => sqlx::query(
                        "UPDATE connections SET subscription_lost_at = $2, external_id = COALESCE(external_id, $3) \
                         WHERE id = $1 AND (external_id IS NULL OR external_id = $3)",
                    )
                    .bind(id)
                    .bind(*removed_at)
                    .bind(subscription_id.as_str()),
                    SubscriptionChange::Validated => {
                        sqlx::query("UPDATE connections SET confirmed_at = COALESCE(confirmed_at, $2) WHERE id = $1").bind(id).bind(at)
                    }
                    SubscriptionChange::Renewed { external_id, expires_at } => sqlx::query(
                        "UPDATE connections SET external_id = $2, expires_at = $3, reauthorization_required_at = NULL \
                         WHERE id = $1",
                    )
                    .bind(id)
                    .bind(external_id.as_str())
                    .bind(*expires_at),
                    SubscriptionChange::Missed { at: missed_at } => {
                        sqlx::query("UPDATE connections SET missed_at = $2 WHERE id = $1").bind(id).bind(*missed_at)
                    }
                }
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::Store for $store {
            fn backend(&self) -> &'static str {
                $backend
            }

            async fn migrate(&self) -> Result<(), StoreError> {
                Self::MIGRATOR.run(&self.pool).await?;
                Ok(())
            }

            async fn ready(&self) -> Result<bool, StoreError> {
                let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success").fetch_one(&self.pool).await?;
                Ok(applied as usize >= Self::MIGRATOR.iter().count())
            }

            async fn create_connection(&self, c: &NewConnection) -> Result<Connection, StoreError> {
                sqlx::query(
                    "INSERT INTO connections (id, tenant_id, name, source, stream, heartbeat_interval_seconds, \
                     grace_seconds, config_public, config_sealed, paused, created_at, activated_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $11)",
                )
                .bind(c.id.to_string())
                .bind(&c.tenant_id)
                .bind(&c.name)
                .bind(c.source.as_str())
                .bind(&c.stream)
                .bind(c.heartbeat_interval_seconds)
                .bind(c.grace_seconds)
                .bind(Json(&c.config_public))
                .bind(&c.config_sealed)
                .bind(false)
                .bind(c.created_at)
                .execute(&self.pool)
                .await?;
                self.get_connection(c.id).await?.ok_or_else(|| StoreError::Corrupt("a created connection could not be read back".into()))
            }

            async fn get_connection(&self, id: Uuid) -> Result<Option<Connection>, StoreError> {
                let sql = format!("SELECT {CONNECTION_COLUMNS} FROM connections WHERE id = $1");
                let row: Option<ConnectionRow> = sqlx::query_as(&sql).bind(id.to_string()).fetch_optional(&self.pool).await?;
                row.map(Connection::try_from).transpose()
            }

            async fn list_connections(&self, filter: &ConnectionFilter) -> Result<Vec<Connection>, StoreError> {
                let mut qb = QueryBuilder::<$db>::new(format!("SELECT {CONNECTION_COLUMNS} FROM connections WHERE 1 = 1"));
                if let Some(tenant) = &filter.tenant_id {
                    qb.push(" AND tenant_id = ").push_bind(tenant.as_str());
                }
                if let Some(source) = filter.source {
                    qb.push(" AND source = ").push_bind(source.as_str());
                }
                qb.push(" ORDER BY tenant_id, created_at, id");
                let rows: Vec<ConnectionRow> = qb.build_query_as().fetch_all(&self.pool).await?;
                rows.into_iter().map(Connection::try_from).collect()
            }

            async fn update_connection(&self, id: Uuid, u: &ConnectionUpdate, at: DateTime<Utc>) -> Result<Option<Connection>, StoreError> {
                let mut qb = QueryBuilder::<$db>::new("UPDATE connections SET updated_at = ");
                qb.push_bind(at);
                if let Some(name) = &u.name {
                    qb.push(", name = ").push_bind(name.as_str());
                }
                if let Some(stream) = &u.stream {
                    qb.push(", stream = ").push_bind(stream.as_str());
                }
                if let Some(interval) = u.heartbeat_interval_seconds {
                    qb.push(", heartbeat_interval_seconds = ").push_bind(interval);
                }
                if let Some(grace) = u.grace_seconds {
                    qb.push(", grace_seconds = ").push_bind(grace);
                }
                if let Some((public, sealed)) = &u.config {
                    qb.push(", config_public = ").push_bind(Json(public));
                    qb.push(", config_sealed = ").push_bind(sealed.as_str());
                }
                qb.push(" WHERE id = ").push_bind(id.to_string());
                if qb.build().execute(&self.pool).await?.rows_affected() == 0 {
                    return Ok(None);
                }
                self.get_connection(id).await
            }

            async fn set_paused(&self, id: Uuid, paused: bool, at: DateTime<Utc>) -> Result<Option<Connection>, StoreError> {
                // Resuming a paused connection activates it again; pausing, or resuming
                // one that is not paused, leaves the time it became active as it was.
                // (SET reads the row as it was before the update.)
                let done = sqlx::query(
                    "UPDATE connections SET activated_at = CASE WHEN paused AND NOT $1 THEN $2 ELSE activated_at END, \
                     paused = $1, updated_at = $2 WHERE id = $3",
                )
                .bind(paused)
                .bind(at)
                .bind(id.to_string())
                .execute(&self.pool)
                .await?;
                if done.rows_affected() == 0 {
                    return Ok(None);
                }
                self.get_connection(id).await
            }

            async fn delete_connection(&self, id: Uuid) -> Result<bool, StoreError> {
                let id = id.to_string();
                let mut tx = self.pool.begin().await?;
                // The connection row first: that waits for a group commit holding its lock,
                // so the child rows deleted next include what that commit wrote.
                let done = sqlx::query("DELETE FROM connections WHERE id = $1").bind(&id).execute(&mut *tx).await?;
                for table in ["events", "heartbeats", "rejections", "status_history", "alert_deliveries", "o365_fetches", "graph_catch_up"]
                {
                    sqlx::query(&format!("DELETE FROM {table} WHERE connection_id = $1")).bind(&id).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(done.rows_affected() > 0)
            }

            async fn prune_heartbeats(&self, at: DateTime<Utc>, memory: chrono::Duration) -> Result<u64, StoreError> {
                // One writer at a time on SQLite, taken in this process (see `write_turn`).
                let _turn = self.write_turn().await;
                // One statement for every connection whose interval + grace is within the
                // memory (all but a few), whatever their number; then each of the others.
                const LONGER: &str = "SELECT id, heartbeat_interval_seconds, grace_seconds FROM connections \
                                      WHERE heartbeat_interval_seconds + grace_seconds > $1";
                let mut pruned = sqlx::query(&format!(
                    "DELETE FROM heartbeats WHERE received_at < $2 AND connection_id NOT IN (SELECT id FROM ({LONGER}) AS longer)"
                ))
                .bind(memory.num_seconds())
                .bind(at - memory)
                .execute(&self.pool)
                .await?
                .rows_affected();
                let longer: Vec<(String, i64, i64)> = sqlx::query_as(LONGER).bind(memory.num_seconds()).fetch_all(&self.pool).await?;
                for (id, interval, grace) in longer {
                    let window = crate::model::heartbeat::freshness_window(Some(interval), grace).unwrap_or(memory);
                    pruned += sqlx::query("DELETE FROM heartbeats WHERE connection_id = $1 AND received_at < $2")
                        .bind(id)
                        .bind(at - window)
                        .execute(&self.pool)
                        .await?
                        .rows_affected();
                }
                Ok(pruned)
            }

            async fn commit(&self, ops: &[WriteOp]) -> Result<Vec<OpOutcome>, StoreError> {
                // One writer at a time on SQLite, taken in this process (see `write_turn`).
                let _turn = self.write_turn().await;
                let mut tx = self.pool.begin().await?;
                let events: Vec<_> = batch::events(ops)
                    .into_iter()
                    .map(|(i, connection_id, event)| {
                        let WriteOp::Accept(a) = &ops[i] else { unreachable!("events come from Accept ops") };
                        $crate::store::sql::EventInsert {
                            connection_id,
                            tenant_id: &a.tenant_id,
                            source: a.source,
                            stream: &a.stream,
                            received_at: a.received_at,
                            event,
                        }
                    })
                    .collect();
                let inserted = Self::insert_events_in(&mut tx, &events).await?;
                // A heartbeat id is kept once: a replay or a retry of it is a duplicate.
                let heartbeats = batch::heartbeats(ops);
                let mut new_heartbeats = std::collections::HashSet::new();
                for chunk in heartbeats.chunks($crate::store::sql::INSERT_CHUNK) {
                    let mut qb = QueryBuilder::<$db>::new("INSERT INTO heartbeats (connection_id, heartbeat_id, signed_at, received_at) ");
                    qb.push_values(chunk, |mut b, (i, connection_id, h)| {
                        let WriteOp::Accept(a) = &ops[*i] else { unreachable!("heartbeats come from Accept ops") };
                        b.push_bind(connection_id.to_string()).push_bind(h.id.as_str()).push_bind(h.signed_at).push_bind(a.received_at);
                    });
                    qb.push(" ON CONFLICT (connection_id, heartbeat_id) DO NOTHING RETURNING connection_id, heartbeat_id");
                    let rows: Vec<(String, String)> = qb.build_query_as().fetch_all(&mut *tx).await?;
                    new_heartbeats.extend(rows);
                }
                let (mut outcomes, deltas) = batch::settle(ops, &inserted, &new_heartbeats);
                let mut gone = std::collections::HashSet::new();
                for (id, d) in &deltas {
                    let done = sqlx::query($crate::store::sql::UPDATE_FACTS)
                        .bind(id.to_string())
                        .bind(d.events)
                        .bind(d.duplicates)
                        .bind(d.heartbeats)
                        .bind(d.rejections)
                        .bind(d.last_heartbeat_at)
                        .bind(d.data_last_received_at)
                        .bind(d.confirmed_at)
                        .bind(d.reset_streak)
                        .bind(d.streak)
                        .execute(&mut *tx)
                        .await?;
                    if done.rows_affected() == 0 {
                        // Deleted since the push was verified: keep nothing for it.
                        for table in ["events", "heartbeats"] {
                            sqlx::query(&format!("DELETE FROM {table} WHERE connection_id = $1"))
                                .bind(id.to_string())
                                .execute(&mut *tx)
                                .await?;
                        }
                        gone.insert(*id);
                    }
                }
                for (id, change, at) in batch::changes(ops, &inserted, &gone) {
                    Self::subscription_query(id.to_string(), change, at).execute(&mut *tx).await?;
                }
                // Office 365 content to fetch, queued with the notification that announced it.
                let fetches = batch::fetches(ops, &inserted, &gone);
                Self::queue_fetches_in(&mut tx, &fetches).await?;
                let rejections: Vec<_> =
                    batch::rejections(ops).into_iter().filter(|r| r.connection_id.is_none_or(|id| !gone.contains(&id))).collect();
                for chunk in rejections.chunks($crate::store::sql::INSERT_CHUNK) {
                    let mut qb =
                        QueryBuilder::<$db>::new("INSERT INTO rejections (connection_id, at, reason, source_addr, detail, body_prefix) ");
                    qb.push_values(chunk, |mut b, r| {
                        b.push_bind(r.connection_id.map(|id| id.to_string()))
                            .push_bind(r.at)
                            .push_bind(r.reason.as_str())
                            .push_bind(r.source_addr.as_deref())
                            .push_bind(r.detail.as_str())
                            .push_bind(r.body_prefix.as_str());
                    });
                    qb.build().execute(&mut *tx).await?;
                }
                // Keep only the newest rows per connection, so refusals cannot fill the disk.
                let keep = $crate::store::MAX_REJECTIONS_PER_CONNECTION;
                let pruned: std::collections::BTreeSet<Option<Uuid>> = rejections.iter().map(|r| r.connection_id).collect();
                for connection in pruned {
                    match connection {
                        Some(id) => sqlx::query($crate::store::sql::PRUNE_REJECTIONS).bind(id.to_string()).bind(keep),
                        None => sqlx::query($crate::store::sql::PRUNE_ORPHAN_REJECTIONS).bind(keep),
                    }
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                if !inserted.is_empty() {
                    self.commits.send_modify(|n| *n = n.wrapping_add(1));
                }
                if !fetches.is_empty() {
                    self.fetches_queued.send_modify(|n| *n = n.wrapping_add(1));
                }
                for (op, outcome) in ops.iter().zip(outcomes.iter_mut()) {
                    let connection = match op {
                        WriteOp::Accept(a) => Some(a.connection_id),
                        WriteOp::Refuse(r) => r.connection_id,
                    };
                    if connection.is_some_and(|id| gone.contains(&id)) {
                        *outcome = OpOutcome::ConnectionGone;
                    }
                }
                Ok(outcomes)
            }

            async fn list_events(&self, connection: Uuid, limit: u32, before: Option<i64>) -> Result<Vec<StoredEvent>, StoreError> {
                let sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE connection_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3");
                let rows: Vec<EventRow> = sqlx::query_as(&sql)
                    .bind(connection.to_string())
                    .bind(before.unwrap_or(i64::MAX))
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?;
                rows.into_iter().map(StoredEvent::try_from).collect()
            }

            async fn list_rejections(&self, connection: Option<Uuid>, limit: u32) -> Result<Vec<StoredRejection>, StoreError> {
                // `=` for one connection, so the index serves it; IS NULL for pushes that named none.
                let query = match connection {
                    Some(id) => sqlx::query_as($crate::store::sql::REJECTIONS_OF).bind(id.to_string()).bind(i64::from(limit)),
                    None => sqlx::query_as($crate::store::sql::ORPHAN_REJECTIONS).bind(i64::from(limit)),
                };
                let rows: Vec<RejectionRow> = query.fetch_all(&self.pool).await?;
                Ok(rows.into_iter().map(StoredRejection::from).collect())
            }

            async fn list_history(&self, connection: Uuid) -> Result<Vec<StatusChange>, StoreError> {
                let rows: Vec<HistoryRow> =
                    sqlx::query_as("SELECT at, old_status, new_status, message FROM status_history WHERE connection_id = $1 ORDER BY id")
                        .bind(connection.to_string())
                        .fetch_all(&self.pool)
                        .await?;
                rows.into_iter().map(StatusChange::try_from).collect()
            }

            async fn hourly_arrivals(
                &self,
                connection: Uuid,
                from: DateTime<Utc>,
                hours: u32,
            ) -> Result<$crate::model::HourlyArrivals, StoreError> {
                let id = connection.to_string();
                Ok($crate::model::HourlyArrivals {
                    from,
                    events: self.hourly_counts($crate::store::sql::Arrived::Events, &id, from, hours).await?,
                    heartbeats: self.hourly_counts($crate::store::sql::Arrived::Heartbeats, &id, from, hours).await?,
                })
            }

            async fn record_status(&self, connection: Uuid, change: &StatusChange) -> Result<bool, StoreError> {
                let mut tx = self.pool.begin().await?;
                let changed = Self::status_in(&mut tx, connection, change).await?;
                tx.commit().await?;
                Ok(changed)
            }

            async fn change_subscription(
                &self,
                id: Uuid,
                change: &SubscriptionChange,
                at: DateTime<Utc>,
            ) -> Result<Option<Connection>, StoreError> {
                let done = Self::subscription_query(id.to_string(), change, at).execute(&self.pool).await?;
                if done.rows_affected() == 0 {
                    return Ok(None);
                }
                self.get_connection(id).await
            }

            async fn record_task(&self, id: Uuid, task: BackgroundTask, at: DateTime<Utc>, error: Option<&str>) -> Result<(), StoreError> {
                let (success, failure) = match task {
                    BackgroundTask::Canary => (
                        "UPDATE connections SET canary_last_published_at = $2 WHERE id = $1",
                        "UPDATE connections SET canary_last_error_at = $2, canary_last_error = $3 WHERE id = $1",
                    ),
                    // A success is news the failure class waits for (health rows 2 and 3).
                    BackgroundTask::Upkeep => (
                        "UPDATE connections SET upkeep_last_success_at = $2, upkeep_failure = NULL, upkeep_failing_since = NULL \
                         WHERE id = $1",
                        "UPDATE connections SET upkeep_last_error_at = $2, upkeep_last_error = $3 WHERE id = $1",
                    ),
                    BackgroundTask::CatchUp => (
                        "UPDATE connections SET catch_up_last_success_at = $2 WHERE id = $1",
                        "UPDATE connections SET catch_up_last_error_at = $2, catch_up_last_error = $3 WHERE id = $1",
                    ),
                };
                let query = match error {
                    None => sqlx::query(success).bind(id.to_string()).bind(at),
                    Some(error) => sqlx::query(failure).bind(id.to_string()).bind(at).bind(error),
                };
                query.execute(&self.pool).await?;
                Ok(())
            }

            async fn clear_upkeep_failure(&self, id: Uuid) -> Result<(), StoreError> {
                sqlx::query("UPDATE connections SET upkeep_failure = NULL, upkeep_failing_since = NULL WHERE id = $1")
                    .bind(id.to_string())
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn record_upkeep_failure(
                &self,
                id: Uuid,
                failure: $crate::model::UpkeepFailure,
                at: DateTime<Utc>,
                error: &str,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "UPDATE connections SET upkeep_failing_since = CASE WHEN upkeep_failure IS NOT DISTINCT FROM $2 \
                         THEN COALESCE(upkeep_failing_since, $3) ELSE $3 END, \
                     upkeep_failure = $2, upkeep_last_error_at = $3, upkeep_last_error = $4 WHERE id = $1",
                )
                .bind(id.to_string())
                .bind(failure.as_str())
                .bind(at)
                .bind(error)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn record_missed(&self, connection: Uuid, entry: &StatusChange) -> Result<bool, StoreError> {
                let mut tx = self.pool.begin().await?;
                let entered = Self::missed_in(&mut tx, connection, entry).await?;
                tx.commit().await?;
                Ok(entered)
            }

            async fn record_upkeep_settings(&self, id: Uuid, hash: &str) -> Result<(), StoreError> {
                sqlx::query("UPDATE connections SET upkeep_settings_hash = $2 WHERE id = $1")
                    .bind(id.to_string())
                    .bind(hash)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn mark_checked(&self, ids: &[Uuid], at: DateTime<Utc>) -> Result<(), StoreError> {
                for chunk in ids.chunks($crate::store::sql::INSERT_CHUNK) {
                    let mut qb = QueryBuilder::<$db>::new("UPDATE connections SET status_last_checked_at = ");
                    qb.push_bind(at).push(" WHERE id IN (");
                    let mut list = qb.separated(", ");
                    for id in chunk {
                        list.push_bind(id.to_string());
                    }
                    qb.push(")");
                    qb.build().execute(&self.pool).await?;
                }
                Ok(())
            }

            async fn record_alert_delivery(&self, d: &AlertDelivery) -> Result<(), StoreError> {
                Self::alert_delivery_insert(d).execute(&self.pool).await?;
                Ok(())
            }

            async fn list_alert_deliveries(&self, subject: AlertSubject, limit: u32) -> Result<Vec<AlertDelivery>, StoreError> {
                let (column, id) = match subject {
                    AlertSubject::Connection(id) => ("connection_id", id),
                    AlertSubject::Destination(id) => ("destination_id", id),
                };
                let sql = format!(
                    "SELECT connection_id, destination_id, at, old_status, new_status, message, attempts, delivered, last_error, \
                     finished_at FROM alert_deliveries WHERE {column} = $1 ORDER BY id DESC LIMIT $2"
                );
                let rows: Vec<AlertDeliveryRow> =
                    sqlx::query_as(&sql).bind(id.to_string()).bind(i64::from(limit)).fetch_all(&self.pool).await?;
                rows.into_iter().map(AlertDelivery::try_from).collect()
            }

            async fn add_admin_token(&self, sha256_hex: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
                sqlx::query("INSERT INTO admin_tokens (token_sha256, created_at) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                    .bind(sha256_hex)
                    .bind(at)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn admin_token_hashes(&self) -> Result<Vec<String>, StoreError> {
                Ok(sqlx::query_scalar("SELECT token_sha256 FROM admin_tokens").fetch_all(&self.pool).await?)
            }
        }
    };
}
