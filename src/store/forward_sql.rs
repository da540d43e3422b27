//! The forwarding SQL both backends share, as a macro that implements
//! [`Forwarding`](super::Forwarding) for a store struct with a `pool`, a `progress` pool
//! (where forwarding's own writes go: positions, plans, leases, retention) and a `commits`
//! signal. What differs between the backends (how a position is compared, and the
//! horizon) comes from the struct's own `XID`, `ORDER`, `HORIZON`, `horizon_at`,
//! `push_after` and `push_upto`.
//!
//! One file: forwarding's statements depend on one ordering and horizon rule, which is
//! easier to check when every statement using it sits together.

/// The condition every write of a destination's progress carries: the lease it was made
/// under must still be the current one ($1 id, $2 holder, $3 generation).
pub const FENCE: &str = " WHERE id = $1 AND lease_holder = $2 AND lease_generation = $3";

/// Longest text kept from an error or an answer.
pub const MAX_REASON: usize = 1024;

/// `text` cut to [`MAX_REASON`] bytes on a character boundary, without NUL.
pub fn bounded(text: &str) -> String {
    let mut end = text.len().min(MAX_REASON);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].replace('\0', "\u{fffd}")
}

macro_rules! forward_store {
    ($store:ident, $db:ty) => {
        impl $store {
            /// ` AND ...` conditions for each key of `filter`.
            fn push_filter<'a>(qb: &mut QueryBuilder<'a, $db>, filter: &'a EventFilter) {
                for (column, values) in
                    [("tenant_id", &filter.tenant_ids), ("source", &filter.sources), ("kind", &filter.kinds)]
                {
                    if let Some(values) = values {
                        qb.push(format!(" AND {column} IN ("));
                        let mut list = qb.separated(", ");
                        for v in values {
                            list.push_bind(v.as_str());
                        }
                        qb.push(")");
                    }
                }
                if let Some(patterns) = &filter.streams {
                    qb.push(" AND (");
                    for (i, pattern) in patterns.iter().enumerate() {
                        if i > 0 {
                            qb.push(" OR ");
                        }
                        match pattern.strip_suffix('*') {
                            // The length is a number of our own: written into the SQL,
                            // so both backends see an integer literal.
                            Some(prefix) => {
                                qb.push(format!("substr(stream, 1, {}) = ", prefix.chars().count())).push_bind(prefix)
                            }
                            None => qb.push("stream = ").push_bind(pattern.as_str()),
                        };
                    }
                    qb.push(")");
                }
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::Forwarding for $store {
            async fn create_destination(&self, d: &NewDestination) -> Result<Destination, StoreError> {
                let start = match d.start_from {
                    StartFrom::Earliest => Position::START,
                    StartFrom::Now => self.horizon().await?,
                };
                sqlx::query(
                    "INSERT INTO destinations (id, name, kind, filter, start_from, config_public, config_sealed, paused, \
                     created_at, updated_at, position_xid, position_seq) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10, $11)",
                )
                .bind(d.id.to_string())
                .bind(&d.name)
                .bind(d.kind.as_str())
                .bind(Json(&d.filter))
                .bind(d.start_from.as_str())
                .bind(Json(&d.config_public))
                .bind(&d.config_sealed)
                .bind(false)
                .bind(d.created_at)
                .bind(start.xid)
                .bind(start.seq)
                .execute(&self.pool)
                .await?;
                self.get_destination(d.id)
                    .await?
                    .ok_or_else(|| StoreError::Corrupt("a created destination could not be read back".into()))
            }

            async fn get_destination(&self, id: Uuid) -> Result<Option<Destination>, StoreError> {
                let sql = format!("SELECT {DESTINATION_COLUMNS} FROM destinations WHERE id = $1");
                let row: Option<DestinationRow> = sqlx::query_as(&sql).bind(id.to_string()).fetch_optional(&self.pool).await?;
                row.map(Destination::try_from).transpose()
            }

            async fn list_destinations(&self) -> Result<Vec<Destination>, StoreError> {
                let sql = format!("SELECT {DESTINATION_COLUMNS} FROM destinations ORDER BY created_at, id");
                let rows: Vec<DestinationRow> = sqlx::query_as(&sql).fetch_all(&self.pool).await?;
                rows.into_iter().map(Destination::try_from).collect()
            }

            async fn update_destination(&self, id: Uuid, u: &DestinationUpdate, at: DateTime<Utc>)
                -> Result<Option<Destination>, StoreError>
            {
                let mut qb = QueryBuilder::<$db>::new("UPDATE destinations SET updated_at = ");
                qb.push_bind(at);
                if let Some(name) = &u.name {
                    qb.push(", name = ").push_bind(name.as_str());
                }
                if let Some(filter) = &u.filter {
                    qb.push(", filter = ").push_bind(Json(filter));
                }
                if let Some((public, sealed)) = &u.config {
                    qb.push(", config_public = ").push_bind(Json(public));
                    qb.push(", config_sealed = ").push_bind(sealed.as_str());
                }
                qb.push(" WHERE id = ").push_bind(id.to_string());
                if qb.build().execute(&self.pool).await?.rows_affected() == 0 {
                    return Ok(None);
                }
                self.get_destination(id).await
            }

            async fn set_destination_paused(&self, id: Uuid, paused: bool, at: DateTime<Utc>)
                -> Result<Option<Destination>, StoreError>
            {
                let done = sqlx::query("UPDATE destinations SET paused = $1, updated_at = $2 WHERE id = $3")
                    .bind(paused)
                    .bind(at)
                    .bind(id.to_string())
                    .execute(&self.pool)
                    .await?;
                if done.rows_affected() == 0 {
                    return Ok(None);
                }
                self.get_destination(id).await
            }

            async fn delete_destination(&self, id: Uuid) -> Result<bool, StoreError> {
                let id = id.to_string();
                let mut tx = self.pool.begin().await?;
                let done = sqlx::query("DELETE FROM destinations WHERE id = $1").bind(&id).execute(&mut *tx).await?;
                for table in ["dead_letters", "alert_deliveries"] {
                    sqlx::query(&format!("DELETE FROM {table} WHERE destination_id = $1")).bind(&id).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(done.rows_affected() > 0)
            }

            async fn horizon(&self) -> Result<Position, StoreError> {
                let value: i64 = sqlx::query_scalar(Self::HORIZON).fetch_one(&self.pool).await?;
                Ok(Self::horizon_at(value))
            }

            async fn read_events(&self, after: Position, upto: Position, filter: &EventFilter, limit: u32)
                -> Result<Vec<EventRecord>, StoreError>
            {
                let mut qb = QueryBuilder::<$db>::new(format!("SELECT {} AS xid, {RECORD_COLUMNS} FROM events WHERE ", Self::XID));
                Self::push_after(&mut qb, after);
                qb.push(" AND ");
                Self::push_upto(&mut qb, upto);
                Self::push_filter(&mut qb, filter);
                qb.push(format!(" ORDER BY {} LIMIT ", Self::ORDER)).push_bind(i64::from(limit));
                let rows: Vec<RecordRow> = qb.build_query_as().fetch_all(&self.pool).await?;
                rows.into_iter().map(EventRecord::try_from).collect()
            }

            async fn backlog(&self, after: Position, filter: &EventFilter) -> Result<Backlog, StoreError> {
                // Counted up to a cap, so a huge backlog does not make every read slow.
                let mut qb = QueryBuilder::<$db>::new("SELECT COUNT(*) FROM (SELECT 1 FROM events WHERE ");
                Self::push_after(&mut qb, after);
                Self::push_filter(&mut qb, filter);
                qb.push(" LIMIT ").push_bind($crate::store::forwarding::BACKLOG_COUNT_CAP).push(") AS capped");
                let events: i64 = qb.build_query_scalar().fetch_one(&self.pool).await?;
                if events == 0 {
                    return Ok(Backlog::default());
                }
                let mut qb = QueryBuilder::<$db>::new("SELECT received_at FROM events WHERE ");
                Self::push_after(&mut qb, after);
                Self::push_filter(&mut qb, filter);
                qb.push(format!(" ORDER BY {} LIMIT 1", Self::ORDER));
                let oldest: Option<DateTime<Utc>> = qb.build_query_scalar().fetch_optional(&self.pool).await?;
                Ok(Backlog { events, oldest_received_at: oldest })
            }

            async fn acquire_destination(&self, id: Uuid, holder: &str, now: DateTime<Utc>, until: DateTime<Utc>)
                -> Result<Option<Lease>, StoreError>
            {
                // One writer at a time on SQLite, taken in this process (see `write_turn`).
                let _turn = self.write_turn().await;
                let generation: Option<i64> = sqlx::query_scalar(
                    "UPDATE destinations SET lease_holder = $2, lease_generation = lease_generation + 1, lease_expires_at = $3 \
                     WHERE id = $1 AND NOT paused AND (lease_holder IS NULL OR lease_holder = $2 OR lease_expires_at < $4) \
                     RETURNING lease_generation",
                )
                .bind(id.to_string())
                .bind(holder)
                .bind(until)
                .bind(now)
                .fetch_optional(&self.progress)
                .await?;
                Ok(generation.map(|generation| Lease { destination: id, holder: holder.to_owned(), generation }))
            }

            async fn renew_destination(&self, lease: &Lease, until: DateTime<Utc>) -> Result<bool, StoreError> {
                // One writer at a time on SQLite, taken in this process (see `write_turn`).
                let _turn = self.write_turn().await;
                let done = sqlx::query(&format!("UPDATE destinations SET lease_expires_at = $4{FENCE}"))
                    .bind(lease.destination.to_string())
                    .bind(lease.holder.as_str())
                    .bind(lease.generation)
                    .bind(until)
                    .execute(&self.progress)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn release_destination(&self, lease: &Lease) -> Result<(), StoreError> {
                // One writer at a time on SQLite, taken in this process (see `write_turn`).
                let _turn = self.write_turn().await;
                sqlx::query(&format!("UPDATE destinations SET lease_holder = NULL, lease_expires_at = NULL{FENCE}"))
                    .bind(lease.destination.to_string())
                    .bind(lease.holder.as_str())
                    .bind(lease.generation)
                    .execute(&self.progress)
                    .await?;
                Ok(())
            }

            async fn plan_batch(&self, lease: &Lease, id: Uuid, end: Position) -> Result<bool, StoreError> {
                // One writer at a time on SQLite, taken in this process (see `write_turn`).
                let _turn = self.write_turn().await;
                // Durable (on SQLite, through the fsyncing pool): a resend after any crash
                // must find this id. A plan never ends at or before the position.
                let done = sqlx::query(&format!(
                    "UPDATE destinations SET batch_id = $4, batch_end_xid = $5, batch_end_seq = $6{FENCE} \
                     AND (position_xid < $5 OR (position_xid = $5 AND position_seq < $6))"
                ))
                    .bind(lease.destination.to_string())
                    .bind(lease.holder.as_str())
                    .bind(lease.generation)
                    .bind(id.to_string())
                    .bind(end.xid)
                    .bind(end.seq)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn complete_batch(&self, lease: &Lease, done: &CompletedBatch) -> Result<bool, StoreError> {
                // One writer at a time on SQLite, taken in this process (see `write_turn`).
                let _turn = self.write_turn().await;
                // Durable like the plan; and a position never moves back.
                let mut tx = self.pool.begin().await?;
                let moved = sqlx::query(&format!(
                    "UPDATE destinations SET position_xid = $4, position_seq = $5, batch_id = $9, batch_end_xid = $10, \
                     batch_end_seq = $11, delivered_count = delivered_count + $6, failing = $7, \
                     last_delivered_at = CASE WHEN $6 > 0 THEN $8 ELSE last_delivered_at END{FENCE} \
                     AND (position_xid < $4 OR (position_xid = $4 AND position_seq <= $5))"
                ))
                .bind(lease.destination.to_string())
                .bind(lease.holder.as_str())
                .bind(lease.generation)
                .bind(done.end.xid)
                .bind(done.end.seq)
                .bind(done.delivered)
                .bind(false)
                .bind(done.at)
                .bind(done.next.map(|p| p.id.to_string()))
                .bind(done.next.map(|p| p.end.xid))
                .bind(done.next.map(|p| p.end.seq))
                .execute(&mut *tx)
                .await?;
                if moved.rows_affected() == 0 {
                    return Ok(false);
                }
                let mut kept = 0i64;
                for chunk in done.dead_letters.chunks(200) {
                    let mut qb = QueryBuilder::<$db>::new(
                        "INSERT INTO dead_letters (destination_id, event_id, at, reason, attempts, record) ",
                    );
                    qb.push_values(chunk, |mut b, d| {
                        b.push_bind(lease.destination.to_string())
                            .push_bind(d.event_id.to_string())
                            .push_bind(done.at)
                            .push_bind(bounded(&d.reason))
                            .push_bind(d.attempts)
                            .push_bind(d.record.as_str());
                    });
                    // A batch resent after a crash may dead-letter a record again: kept once.
                    qb.push(" ON CONFLICT (destination_id, event_id) DO NOTHING");
                    kept += qb.build().execute(&mut *tx).await?.rows_affected() as i64;
                }
                if kept > 0 {
                    sqlx::query("UPDATE destinations SET dead_letters_count = dead_letters_count + $2 WHERE id = $1")
                        .bind(lease.destination.to_string())
                        .bind(kept)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(true)
            }

            async fn skip_to(&self, lease: &Lease, position: Position) -> Result<bool, StoreError> {
                // One writer at a time on SQLite, taken in this process (see `write_turn`).
                let _turn = self.write_turn().await;
                let mut qb = QueryBuilder::<$db>::new("UPDATE destinations SET position_xid = ");
                qb.push_bind(position.xid).push(", position_seq = ").push_bind(position.seq);
                qb.push(" WHERE id = ").push_bind(lease.destination.to_string());
                qb.push(" AND lease_holder = ").push_bind(lease.holder.as_str());
                qb.push(" AND lease_generation = ").push_bind(lease.generation);
                qb.push(" AND batch_id IS NULL AND (position_xid < ").push_bind(position.xid);
                qb.push(" OR (position_xid = ").push_bind(position.xid).push(" AND position_seq < ").push_bind(position.seq);
                qb.push("))");
                Ok(qb.build().execute(&self.progress).await?.rows_affected() > 0)
            }

            async fn record_failure(&self, lease: &Lease, at: DateTime<Utc>, message: &str) -> Result<bool, StoreError> {
                // One writer at a time on SQLite, taken in this process (see `write_turn`).
                let _turn = self.write_turn().await;
                let done = sqlx::query(&format!(
                    "UPDATE destinations SET failing = $4, last_error_at = $5, last_error = $6, retries_count = retries_count + 1{FENCE}"
                ))
                .bind(lease.destination.to_string())
                .bind(lease.holder.as_str())
                .bind(lease.generation)
                .bind(true)
                .bind(at)
                .bind(bounded(message))
                .execute(&self.progress)
                .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn list_dead_letters(&self, id: Uuid, limit: u32) -> Result<Vec<DeadLetter>, StoreError> {
                let sql = format!("SELECT {DEAD_LETTER_COLUMNS} FROM dead_letters WHERE destination_id = $1 ORDER BY id DESC LIMIT $2");
                let rows: Vec<DeadLetterRow> =
                    sqlx::query_as(&sql).bind(id.to_string()).bind(i64::from(limit)).fetch_all(&self.pool).await?;
                rows.into_iter().map(DeadLetter::try_from).collect()
            }

            async fn request_replay(&self, id: Uuid) -> Result<u64, StoreError> {
                let done = sqlx::query("UPDATE dead_letters SET replay_requested = $2 WHERE destination_id = $1")
                    .bind(id.to_string())
                    .bind(true)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected())
            }

            async fn replays(&self, id: Uuid, limit: u32) -> Result<Vec<DeadLetter>, StoreError> {
                let sql = format!(
                    "SELECT {DEAD_LETTER_COLUMNS} FROM dead_letters WHERE destination_id = $1 AND replay_requested ORDER BY id LIMIT $2"
                );
                let rows: Vec<DeadLetterRow> =
                    sqlx::query_as(&sql).bind(id.to_string()).bind(i64::from(limit)).fetch_all(&self.pool).await?;
                rows.into_iter().map(DeadLetter::try_from).collect()
            }

            async fn complete_replay(&self, lease: &Lease, replay: &CompletedReplay, at: DateTime<Utc>) -> Result<bool, StoreError> {
                // One writer at a time on SQLite, taken in this process (see `write_turn`).
                let _turn = self.write_turn().await;
                let mut tx = self.progress.begin().await?;
                let delivered = replay.delivered.len() as i64;
                let moved = sqlx::query(&format!(
                    "UPDATE destinations SET delivered_count = delivered_count + $4, failing = $5, \
                     last_delivered_at = CASE WHEN $4 > 0 THEN $6 ELSE last_delivered_at END{FENCE}"
                ))
                .bind(lease.destination.to_string())
                .bind(lease.holder.as_str())
                .bind(lease.generation)
                .bind(delivered)
                .bind(false)
                .bind(at)
                .execute(&mut *tx)
                .await?;
                if moved.rows_affected() == 0 {
                    return Ok(false);
                }
                for chunk in replay.delivered.chunks(500) {
                    let mut qb = QueryBuilder::<$db>::new("DELETE FROM dead_letters WHERE destination_id = ");
                    qb.push_bind(lease.destination.to_string()).push(" AND id IN (");
                    let mut list = qb.separated(", ");
                    for id in chunk {
                        list.push_bind(*id);
                    }
                    qb.push(")");
                    qb.build().execute(&mut *tx).await?;
                }
                for (id, reason) in &replay.refused {
                    sqlx::query(
                        "UPDATE dead_letters SET attempts = attempts + 1, reason = $3, at = $4, replay_requested = $5 \
                         WHERE destination_id = $1 AND id = $2",
                    )
                    .bind(lease.destination.to_string())
                    .bind(*id)
                    .bind(bounded(reason))
                    .bind(at)
                    .bind(false)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(true)
            }

            async fn retention_window(&self, after_seq: i64, size: u32) -> Result<Option<i64>, StoreError> {
                let offset = i64::from(size.max(1)) - 1;
                let end: Option<i64> = sqlx::query_scalar("SELECT seq FROM events WHERE seq > $1 ORDER BY seq LIMIT 1 OFFSET $2")
                    .bind(after_seq)
                    .bind(offset)
                    .fetch_optional(&self.pool)
                    .await?;
                if end.is_some() {
                    return Ok(end);
                }
                Ok(sqlx::query_scalar("SELECT MAX(seq) FROM events WHERE seq > $1").bind(after_seq).fetch_one(&self.pool).await?)
            }

            async fn prune_events(&self, w: &PruneWindow, at: DateTime<Utc>) -> Result<PruneOutcome, StoreError> {
                // One writer at a time on SQLite, taken in this process (see `write_turn`).
                let _turn = self.write_turn().await;
                let mut tx = self.progress.begin().await?;
                let sql = format!(
                    "SELECT {} AS xid, seq, tenant_id, source, stream, kind, received_at FROM events \
                     WHERE seq > $1 AND seq <= $2 AND received_at < $3",
                    Self::XID
                );
                let rows: Vec<RetentionRowRaw> =
                    sqlx::query_as(&sql).bind(w.after_seq).bind(w.upto_seq).bind(w.cutoff).fetch_all(&mut *tx).await?;
                let rows: Vec<RetentionRow> = rows.into_iter().map(RetentionRow::from).collect();
                // Which events every destination is done with is decided here, in code, not
                // in one statement: any number of destinations and filter entries fits.
                let (delete, expired) = w.decide(&rows);
                let mut outcome = PruneOutcome { old: rows.len() as u64, deleted: 0, expired };
                for chunk in delete.chunks($crate::store::sql::INSERT_CHUNK) {
                    let mut qb = QueryBuilder::<$db>::new("DELETE FROM events WHERE seq IN (");
                    let mut list = qb.separated(", ");
                    for seq in chunk {
                        list.push_bind(*seq);
                    }
                    qb.push(")");
                    outcome.deleted += qb.build().execute(&mut *tx).await?.rows_affected();
                }
                for (destination, expired) in &outcome.expired {
                    sqlx::query(
                        "UPDATE destinations SET expired_count = expired_count + $2, last_error_at = $3, last_error = $4 WHERE id = $1",
                    )
                    .bind(destination.to_string())
                    .bind(*expired as i64)
                    .bind(at)
                    .bind(format!(
                        "{expired} {} deleted by retention before delivery (held back longer than \
                         PUSHGATE_FORWARD_MAX_BACKLOG_HOURS)",
                        if *expired == 1 { "event was" } else { "events were" }
                    ))
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(outcome)
            }

            async fn prune_history(&self, before: DateTime<Utc>, limit: u32) -> Result<u64, StoreError> {
                // One writer at a time on SQLite, taken in this process (see `write_turn`).
                let _turn = self.write_turn().await;
                let mut deleted = 0;
                for table in ["status_history", "alert_deliveries"] {
                    let sql = format!("DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE at < $1 ORDER BY id LIMIT $2)");
                    deleted += sqlx::query(&sql).bind(before).bind(i64::from(limit)).execute(&self.progress).await?.rows_affected();
                }
                Ok(deleted)
            }

            async fn prune_dead_letters(&self, before: DateTime<Utc>, limit: u32) -> Result<u64, StoreError> {
                let _turn = self.write_turn().await;
                let sql = "DELETE FROM dead_letters WHERE id IN (SELECT id FROM dead_letters WHERE at < $1 ORDER BY id LIMIT $2)";
                Ok(sqlx::query(sql).bind(before).bind(i64::from(limit)).execute(&self.progress).await?.rows_affected())
            }

            fn commits(&self) -> tokio::sync::watch::Receiver<u64> {
                self.commits.subscribe()
            }
        }
    };
}
