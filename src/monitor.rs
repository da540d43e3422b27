//! The health monitor: every `PUSHGATE_MONITOR_INTERVAL_MS` it evaluates every connection
//! with [`crate::health::evaluate`] (the same function every read uses) and records each
//! transition (old status, new status, message, time) in the status history.
//!
//! A transition is recorded exactly once, even with several replicas on one database:
//! the store writes it only when the stored status is still the one this monitor saw
//! (a conditional write in one transaction). Connections are evaluated in bounded
//! batches, and only transitions are written one by one; the time of the check is one
//! statement per batch. Each recorded transition is queued for the alert webhook in the
//! same transaction (see `alerts.rs`), so a transition is never recorded without its
//! alert; the webhook never blocks the monitor. The monitor runs on every
//! replica: the conditional write, not a lease, is what makes each transition recorded
//! and alerted once, and a replica whose monitor is slow or stopped is covered by the
//! others at once.
//!
//! A Graph lifecycle `missed` report changes no status (the subscription still works; data
//! was lost upstream), yet an operator must hear of it as of a transition: the monitor
//! enters it in the status history as an entry whose old and new status are the current
//! one, with the message "Notifications were missed", and announces it the same way. The
//! history is where an operator reads what happened to a feed, and the alert webhook's
//! shape already carries a message; a separate list of notices would be one more place to
//! look, for one kind of news. Like a transition, each report is entered once (the store
//! writes it only when that report was not entered yet).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::alerts::AlertSender;
use crate::health::{evaluate, Policy, MSG_NOTIFICATIONS_MISSED};
use crate::model::{now, Connection, ConnectionFilter, StatusChange};
use crate::passes::Passes;
use crate::store::{Store, StoreError};

/// Connections evaluated between two yields to other tasks.
const BATCH: usize = 500;

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pass {
    pub evaluated: usize,
    pub transitions: usize,
}

/// Evaluates every connection once at `at`, recording transitions; alerts go to `alerts`.
pub async fn pass(store: &dyn Store, alerts: Option<&AlertSender>, at: DateTime<Utc>) -> Result<Pass, StoreError> {
    let connections = store.list_connections(&ConnectionFilter::default()).await?;
    let mut done = Pass::default();
    for batch in connections.chunks(BATCH) {
        for connection in batch {
            if record(store, alerts, connection, at).await? {
                done.transitions += 1;
            }
            record_missed(store, alerts, connection, at).await?;
        }
        let ids: Vec<_> = batch.iter().map(|c| c.id).collect();
        store.mark_checked(&ids, at).await?;
        done.evaluated += batch.len();
        tokio::task::yield_now().await;
    }
    Ok(done)
}

/// Evaluates one connection at `at` and records its transition, if any, announcing it:
/// what a pass does for each connection, also called by a job that has just changed a
/// connection's facts (the subscription upkeeps), so that a state lasting less than one monitor
/// interval is in the history too. Whether a transition was recorded.
pub async fn record(
    store: &dyn Store,
    alerts: Option<&AlertSender>,
    connection: &Connection,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let Some(change) = transition(connection, at) else { return Ok(false) };
    let recorded = match alerts {
        Some(alerts) => alerts.record_status(connection, &change).await?,
        None => store.record_status(connection.id, &change).await?,
    };
    if recorded {
        tracing::info!(connection = %connection.id, old = ?change.old_status, new = ?change.new_status,
            message = ?change.message, "connection status changed");
    }
    Ok(recorded)
}

/// Enters a Graph `missed` report not entered yet in the history, and announces it (see
/// the module's comment); its status is the one evaluated at `at`.
async fn record_missed(
    store: &dyn Store,
    alerts: Option<&AlertSender>,
    connection: &Connection,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let Some(entry) = missed_entry(connection, at) else { return Ok(()) };
    let entered = match alerts {
        Some(alerts) => alerts.record_missed(connection, &entry).await?,
        None => store.record_missed(connection.id, &entry).await?,
    };
    if entered {
        tracing::warn!(connection = %connection.id, at = %entry.at, "Graph reported missed notifications");
    }
    Ok(())
}

/// The history entry of a `missed` report on `connection` not entered yet, at the
/// report's time, with the status at `at` as both old and new status.
pub fn missed_entry(connection: &Connection, at: DateTime<Utc>) -> Option<StatusChange> {
    let facts = &connection.facts;
    let reported = facts.missed_at.filter(|m| facts.missed_recorded_at.is_none_or(|entered| *m > entered))?;
    let policy = Policy::from_seconds(connection.heartbeat_interval_seconds, connection.grace_seconds);
    let (status, _) = evaluate(facts, connection.created_at, policy, at);
    Some(StatusChange { at: reported, old_status: Some(status), new_status: status, message: Some(MSG_NOTIFICATIONS_MISSED.to_owned()) })
}

/// The change to record for `connection` at `at`, if its status is not the recorded one.
pub fn transition(connection: &Connection, at: DateTime<Utc>) -> Option<StatusChange> {
    let policy = Policy::from_seconds(connection.heartbeat_interval_seconds, connection.grace_seconds);
    let (status, message) = evaluate(&connection.facts, connection.activated_at, policy, at);
    let message = message.map(str::to_owned);
    let facts = &connection.facts;
    let unchanged = facts.recorded_status == Some(status) && facts.recorded_message == message;
    (!unchanged).then_some(StatusChange { at, old_status: facts.recorded_status, new_status: status, message })
}

/// Runs a pass every `interval` until `stop` turns true, counting each in `passes`.
pub async fn run(
    store: Arc<dyn Store>,
    alerts: Option<Arc<AlertSender>>,
    interval: Duration,
    passes: Passes,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let started = std::time::Instant::now();
        match pass(store.as_ref(), alerts.as_deref(), now()).await {
            Ok(done) => tracing::debug!(
                evaluated = done.evaluated,
                transitions = done.transitions,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "health monitor pass"
            ),
            Err(e) => tracing::warn!(error = %e, "health monitor pass failed; retrying at the next interval"),
        }
        passes.completed();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Facts, SourceKind, Status};
    use uuid::Uuid;

    fn connection(facts: Facts) -> Connection {
        let created = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        Connection {
            id: Uuid::nil(),
            tenant_id: "t".into(),
            name: "n".into(),
            source: SourceKind::Webhook,
            stream: "s".into(),
            heartbeat_interval_seconds: Some(60),
            grace_seconds: 10,
            config_public: serde_json::json!({}),
            config_sealed: String::new(),
            created_at: created,
            activated_at: created,
            updated_at: created,
            facts,
            counters: Default::default(),
            canary: Default::default(),
            upkeep: Default::default(),
            fetch: Default::default(),
            catch_up: Default::default(),
        }
    }

    #[test]
    fn a_status_is_recorded_when_it_differs_from_the_recorded_one() {
        let c = connection(Facts::default());
        let at = c.created_at;
        let first = transition(&c, at).expect("nothing recorded yet");
        assert_eq!((first.old_status, first.new_status), (None, Status::RequiresAction));
        let recorded = connection(Facts {
            recorded_status: Some(Status::RequiresAction),
            recorded_message: Some("Awaiting subscription".into()),
            ..Facts::default()
        });
        assert_eq!(transition(&recorded, at), None, "unchanged: nothing to record");
        let later = at + chrono::Duration::hours(1);
        let missing = transition(&recorded, later).expect("the grace ran out");
        assert_eq!((missing.new_status, missing.message.as_deref()), (Status::Error, Some("Subscription is missing")));
    }

    #[test]
    fn a_missed_report_is_entered_once_with_the_status_unchanged() {
        let created = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let reported = created + chrono::Duration::seconds(30);
        let quiet = connection(Facts { confirmed_at: Some(created), last_heartbeat_at: Some(reported), ..Facts::default() });
        assert_eq!(missed_entry(&quiet, reported), None, "nothing reported");
        let missed = connection(Facts { missed_at: Some(reported), ..quiet.facts.clone() });
        let entry = missed_entry(&missed, reported).expect("a report not entered yet");
        assert_eq!(entry.at, reported, "at the report's time");
        assert_eq!((entry.old_status, entry.new_status), (Some(Status::Connected), Status::Connected));
        assert_eq!(entry.message.as_deref(), Some("Notifications were missed"));
        let entered = connection(Facts { missed_recorded_at: Some(reported), ..missed.facts.clone() });
        assert_eq!(missed_entry(&entered, reported), None, "entered already");
        let again = connection(Facts { missed_at: Some(reported + chrono::Duration::seconds(1)), ..entered.facts.clone() });
        assert!(missed_entry(&again, reported).is_some(), "a later report is news");
        assert_eq!(
            transition(&connection(Facts { recorded_status: Some(Status::Connected), ..missed.facts }), reported),
            None,
            "no transition: the status is the same"
        );
    }

    #[test]
    fn the_wait_for_a_subscription_counts_from_the_last_resume() {
        let mut c = connection(Facts::default());
        let resumed = c.created_at + chrono::Duration::days(3);
        c.activated_at = resumed;
        let change = transition(&c, resumed + chrono::Duration::minutes(1)).expect("nothing recorded yet");
        assert_eq!((change.new_status, change.message.as_deref()), (Status::RequiresAction, Some("Awaiting subscription")));
        assert_eq!(crate::health::status_of(&c, change.at), (Status::RequiresAction, Some("Awaiting subscription")), "reads agree");
    }
}
