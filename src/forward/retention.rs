//! Retention (INTERFACE.md section 7): events older than `PUSHGATE_EVENT_RETENTION_HOURS`
//! are deleted once every destination whose filter takes them has delivered or
//! dead-lettered them. A destination that is paused or failing holds events back for at
//! most `PUSHGATE_FORWARD_MAX_BACKLOG_HOURS` more; past that they are deleted anyway,
//! counted as expired on it, and its `last_error` says so. A destination that is running
//! holds its events however old they are. Status history and alert deliveries older than
//! the retention go too, and dead letters once they are older than the retention plus the
//! backlog bound (as long as an undelivered event may wait). Heartbeat ids go after
//! [`HEARTBEAT_MEMORY`] (or the connection's interval + grace, when longer), whatever the
//! event retention.
//!
//! A pass runs every minute on one replica at a time (the job lease `retention`, kept by
//! [`crate::jobs::Leases`] like every other such job), off the push path,
//! in windows of [`WINDOW`] events, each its own short transaction, so ingest never waits
//! long behind it. Deleting cannot make a destination skip anything: positions are
//! places in commit order, not offsets, and no deleted `seq` is ever reused.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use crate::metrics::Metrics;
use crate::model::{now, Hold, PruneWindow};
use crate::store::{Store, StoreError};

/// Events per retention step.
pub const WINDOW: u32 = 1000;
/// How long a heartbeat id is remembered at least. Past its connection's interval + grace a
/// replayed heartbeat is refused as not fresh anyway (its signed time is no later than its
/// first arrival), so its id may go once both have passed. Seven days also outlasts the
/// longest retry of any sender (Pub/Sub retries a message for up to 7 days), which matters
/// for a connection without an interval, where age alone refuses nothing, and keeps the
/// last day's arrivals for the dashboard's chart.
pub const HEARTBEAT_MEMORY: chrono::Duration = chrono::Duration::days(7);

#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// Events older than this go (`None`: kept forever).
    pub events: Option<Duration>,
    /// How much longer a destination may hold them back.
    pub max_backlog: Duration,
    /// How often a pass runs.
    pub every: Duration,
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pass {
    pub deleted: u64,
    pub expired: u64,
    pub history: u64,
    pub dead_letters: u64,
    pub heartbeats: u64,
}

/// Runs a pass every `retention.every` until `stop`, counting each in `metrics`. Run it
/// under the job lease: the lease's holder aborts it when the lease is lost.
pub async fn run(store: Arc<dyn Store>, retention: Retention, metrics: Arc<Metrics>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(retention.every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        match pass(store.as_ref(), &retention, now(), &stop).await {
            Ok(done) => {
                if done != Pass::default() {
                    tracing::info!(
                        deleted = done.deleted,
                        expired = done.expired,
                        history = done.history,
                        dead_letters = done.dead_letters,
                        heartbeats = done.heartbeats,
                        "retention pass"
                    );
                }
                metrics.retention_pass(done.deleted, done.expired);
            }
            Err(e) => tracing::warn!(error = %e, "retention pass failed; trying at the next pass"),
        }
    }
}

/// Forgets heartbeat ids past each connection's memory ([`HEARTBEAT_MEMORY`], or its
/// interval + grace when longer); how many.
pub async fn prune_heartbeats(store: &dyn Store, at: DateTime<Utc>) -> Result<u64, StoreError> {
    store.prune_heartbeats(at, HEARTBEAT_MEMORY).await
}

/// One pass at `at`, until `stop`. Each window is its own transaction, so a pass aborted
/// when its lease is lost leaves nothing half done.
pub async fn pass(store: &dyn Store, retention: &Retention, at: DateTime<Utc>, stop: &watch::Receiver<bool>) -> Result<Pass, StoreError> {
    let mut done = Pass { heartbeats: prune_heartbeats(store, at).await?, ..Pass::default() };
    let Some(keep) = retention.events else { return Ok(done) };
    let cutoff = at - chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::MAX);
    let expire_before = cutoff - chrono::Duration::from_std(retention.max_backlog).unwrap_or(chrono::Duration::MAX);
    let mut after = 0i64;
    while !*stop.borrow() {
        let Some(upto) = store.retention_window(after, WINDOW).await? else { break };
        // Read per window: a destination created meanwhile holds what it has not seen.
        let holds = store
            .list_destinations()
            .await?
            .into_iter()
            .map(|d| Hold { destination: d.id, position: d.position, bounded: d.paused || d.failing, filter: d.filter })
            .collect();
        let window = PruneWindow { after_seq: after, upto_seq: upto, cutoff, expire_before, holds };
        let outcome = store.prune_events(&window, at).await?;
        done.deleted += outcome.deleted;
        done.expired += outcome.expired.iter().map(|(_, n)| n).sum::<u64>();
        for (destination, n) in &outcome.expired {
            tracing::warn!(%destination, expired = n, "events deleted by retention before this destination delivered them");
        }
        // Events arrive in about the order they are numbered: a window with nothing old
        // in it means the rest is newer still.
        if outcome.old == 0 {
            break;
        }
        after = upto;
        tokio::task::yield_now().await;
    }
    loop {
        let n = store.prune_history(cutoff, WINDOW).await?;
        done.history += n;
        if n == 0 || *stop.borrow() {
            break;
        }
    }
    // A dead letter keeps a refused event as long as an undelivered one may wait.
    loop {
        let n = store.prune_dead_letters(expire_before, WINDOW).await?;
        done.dead_letters += n;
        if n == 0 || *stop.borrow() {
            break;
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CountedHeartbeat, NewConnection, SourceKind};
    use crate::store::{Accepted, SqliteStore, WriteOp};

    fn connection(interval: Option<i64>) -> NewConnection {
        NewConnection {
            id: uuid::Uuid::new_v4(),
            tenant_id: "acme".into(),
            name: "feed".into(),
            source: SourceKind::Webhook,
            stream: "webhook_event".into(),
            heartbeat_interval_seconds: interval,
            grace_seconds: 60,
            config_public: serde_json::json!({}),
            config_sealed: "v1:sealed".into(),
            created_at: now(),
        }
    }

    fn arrived(c: &NewConnection, id: &str, received_at: DateTime<Utc>) -> WriteOp {
        WriteOp::Accept(Accepted {
            connection_id: c.id,
            tenant_id: c.tenant_id.clone(),
            source: c.source,
            stream: c.stream.clone(),
            received_at,
            events: Vec::new(),
            heartbeat: Some(CountedHeartbeat { id: id.into(), signed_at: received_at }),
            confirms: true,
            authenticated: true,
            kept_rejections: Vec::new(),
            changes: Vec::new(),
            fetches: Vec::new(),
        })
    }

    #[tokio::test]
    async fn heartbeat_ids_are_kept_seven_days_or_interval_plus_grace_when_longer() {
        let store = SqliteStore::open_memory().await.unwrap();
        store.migrate().await.unwrap();
        let at = now();
        let (hourly, weekly_plus) = (connection(Some(3600)), connection(Some(8 * 86_400)));
        let unwatched = connection(None);
        for c in [&hourly, &weekly_plus, &unwatched] {
            store.create_connection(c).await.unwrap();
            let ops = [
                arrived(c, "6d", at - chrono::Duration::days(6)),
                arrived(c, "7d+1h", at - chrono::Duration::days(7) - chrono::Duration::hours(1)),
                arrived(c, "9d", at - chrono::Duration::days(9)),
            ];
            store.commit(&ops).await.unwrap();
        }
        // 7 days for the hourly and the unwatched feed (two ids each); 8 days + 60 s for
        // the other (one id).
        assert_eq!(prune_heartbeats(&store, at).await.unwrap(), 5);
        assert_eq!(prune_heartbeats(&store, at).await.unwrap(), 0);
        // What is kept is still a duplicate.
        let again = store.commit(&[arrived(&weekly_plus, "7d+1h", at), arrived(&hourly, "6d", at)]).await.unwrap();
        assert_eq!(again, [crate::store::OpOutcome::Accepted { stored: 0, duplicates: 1 }; 2]);
    }
}
