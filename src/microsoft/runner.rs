//! What the two subscription upkeeps (Graph's, [`super::upkeep`], and Office 365's,
//! [`super::o365::upkeep`]) share: the loop that runs a pass every interval and on every
//! nudge, the pass over a source's connections with a per-connection backoff after
//! failures, the queue of subscriptions of deleted connections to end, and the recording
//! of an outcome (its text and what it says about the connection) followed at once by the
//! status it leads to.
//!
//! An upkeep is a [`Keeper`]: what it does for one connection ([`Keeper::keep`]) and for
//! one deleted connection ([`Keeper::retire`]); this module does the rest, the same way
//! for both.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tokio::time::Instant;
use uuid::Uuid;

use crate::alerts::AlertSender;
use crate::crypto::MasterKey;
use crate::model::{now, BackgroundTask, Connection, ConnectionFilter, SourceKind, UpkeepFailure};
use crate::passes::Passes;
use crate::store::Store;

/// What every subscription upkeep runs with.
#[derive(Clone)]
pub struct Base {
    pub store: Arc<dyn Store>,
    /// Opens the connections' sealed configs (the client secrets).
    pub key: Arc<MasterKey>,
    /// Base URL of push routes, without a trailing slash.
    pub public_url: String,
    /// How often every connection is looked at.
    pub interval: Duration,
    /// Counts every completed pass (retirements, then the connections).
    pub passes: Passes,
    /// Where the status transitions the upkeep's outcomes cause are announced.
    pub alerts: Option<Arc<AlertSender>>,
}

impl Base {
    /// The connection's full config, secrets included, or `None` (logged) when it cannot be
    /// opened.
    pub fn open_config(&self, connection: &Connection, name: &str) -> Option<serde_json::Value> {
        match crate::connections::open_config(&self.key, connection) {
            Ok(config) => Some(config),
            Err(e) => {
                tracing::warn!(connection = %connection.id, error = %e, "{name} cannot read the connection's secrets");
                None
            }
        }
    }

    /// Where the connection's vendor pushes.
    pub fn push_url(&self, connection: &Connection) -> String {
        crate::sources::connection_push_url(connection, &self.public_url)
    }
}

/// What one subscription upkeep does; [`run`] runs it.
#[async_trait::async_trait]
pub trait Keeper: Send + Sync {
    /// A subscription of a deleted connection, to end.
    type Retirement: Send;
    /// The source whose connections it keeps (those with a `subscription` in their config).
    const SOURCE: SourceKind;
    /// The upkeep's name in logs ("Graph subscription upkeep").
    const NAME: &'static str;

    fn base(&self) -> &Base;
    /// Decides and acts for one connection, and records the outcome of anything it
    /// asked the vendor: whether that succeeded, or `None` when nothing was asked.
    async fn keep(&self, connection: &Connection) -> Option<bool>;
    /// Ends the subscription of a deleted connection, best-effort: a failure is logged.
    async fn retire(&self, retirement: Self::Retirement);
}

/// Nudges and retirements for a running upkeep, from anywhere (the admin API, ingest).
pub struct Signals<R> {
    notify: Notify,
    /// An upkeep runs: without one, nudges and retirements are not kept.
    running: AtomicBool,
    /// Connections nudged since the last pass started.
    nudged: Mutex<HashSet<Uuid>>,
    retirements: Mutex<Vec<R>>,
}

impl<R> Default for Signals<R> {
    fn default() -> Signals<R> {
        Signals { notify: Notify::new(), running: AtomicBool::new(false), nudged: Mutex::default(), retirements: Mutex::default() }
    }
}

impl<R> Signals<R> {
    /// Asks for a pass as soon as the current one (if any) is done, in which this
    /// connection is looked at even while it waits after a failure. Nudges while a pass
    /// runs fold into one more pass; without a running upkeep they do nothing.
    pub fn nudge(&self, connection_id: Uuid) {
        if !self.running.load(Ordering::SeqCst) {
            return;
        }
        self.nudged.lock().expect("nudged connections").insert(connection_id);
        self.notify.notify_one();
    }

    /// Hands the upkeep a subscription to end before its next pass; `false` (and nothing
    /// kept) when no upkeep runs here.
    pub fn retire(&self, retirement: R) -> bool {
        if !self.running.load(Ordering::SeqCst) {
            return false;
        }
        self.retirements.lock().expect("retirements").push(retirement);
        self.notify.notify_one();
        true
    }

    fn take_nudged(&self) -> HashSet<Uuid> {
        std::mem::take(&mut *self.nudged.lock().expect("nudged connections"))
    }

    fn take_retirements(&self) -> Vec<R> {
        std::mem::take(&mut *self.retirements.lock().expect("retirements"))
    }
}

/// Marks the signals' upkeep as running for as long as it lives.
struct Running<'a, R>(&'a Signals<R>);

impl<'a, R> Running<'a, R> {
    fn mark(signals: &'a Signals<R>) -> Running<'a, R> {
        signals.running.store(true, Ordering::SeqCst);
        Running(signals)
    }
}

impl<R> Drop for Running<'_, R> {
    fn drop(&mut self) {
        self.0.running.store(false, Ordering::SeqCst);
    }
}

/// Runs `keeper`: a pass at once, then every interval and on every nudge of `signals`,
/// until `stop` turns true; each completed pass (retirements, then the connections) is
/// counted.
pub async fn run<K: Keeper>(keeper: &K, signals: &Signals<K::Retirement>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let Base { interval, passes, .. } = keeper.base();
    let interval = *interval;
    let mut backoff = Backoff::default();
    // Cleared however the run ends, an abort included (the replica lost the upkeep's job
    // lease): nudges and retirements are then not kept here.
    let _running = Running::mark(signals);
    loop {
        if *stop.borrow() {
            break;
        }
        for retirement in signals.take_retirements() {
            keeper.retire(retirement).await;
        }
        // Nudges from now on count for the next pass.
        let nudged = signals.take_nudged();
        pass(keeper, &mut backoff, &nudged, interval).await;
        passes.completed();
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = signals.notify.notified() => {}
            _ = stop.wait_for(|s| *s) => break,
        };
    }
}

/// Looks at every unpaused connection of the keeper's source with a subscription once,
/// skipping those still waiting after a failure unless `nudged` names them (a lifecycle
/// notification or an admin change is news worth acting on at once).
async fn pass<K: Keeper>(keeper: &K, backoff: &mut Backoff, nudged: &HashSet<Uuid>, interval: Duration) {
    let filter = ConnectionFilter { source: Some(K::SOURCE), ..Default::default() };
    let connections = match keeper.base().store.list_connections(&filter).await {
        Ok(list) => list,
        Err(e) => {
            tracing::warn!(error = %e, "cannot list connections for the {}", K::NAME);
            return;
        }
    };
    backoff.0.retain(|id, _| connections.iter().any(|c| c.id == *id));
    // pushgate no longer keeps their subscription: the upkeep's failures say nothing
    // about them any more.
    for connection in connections.iter().filter(|c| c.facts.upkeep_failure.is_some() && !c.subscription_upkept()) {
        match keeper.base().store.clear_upkeep_failure(connection.id).await {
            Ok(()) => announce(keeper, connection.id).await,
            Err(e) => tracing::warn!(connection = %connection.id, error = %e, "{} failure not cleared", K::NAME),
        }
    }
    for connection in connections.iter().filter(|c| !c.facts.paused && c.subscription_upkept()) {
        if backoff.skips(connection, nudged, Instant::now()) {
            continue;
        }
        match keeper.keep(connection).await {
            Some(true) => backoff.succeeded(connection.id),
            Some(false) => backoff.failed(connection, interval, Instant::now()),
            None => {}
        }
    }
}

/// Why an action failed: the text kept in `subscription.upkeep.last_error` (the vendor's
/// error code and message, never a secret), and what it says about the connection.
#[derive(Debug)]
pub struct Failure {
    pub text: String,
    pub class: Option<UpkeepFailure>,
}

impl Failure {
    /// A failure that says nothing about the connection's credentials or URL.
    pub fn plain(text: String) -> Failure {
        Failure { text, class: None }
    }
}

/// Stores a failure: its text, and its class when it has one.
pub async fn record_failure<K: Keeper>(keeper: &K, connection: &Connection, failure: &Failure) {
    tracing::warn!(connection = %connection.id, error = %failure.text, "{} failed", K::NAME);
    let at = now();
    // A classified failure changes the status: its text and class go in one write, so
    // whoever reads that status (an admin, an alert) finds its cause with it.
    let recorded = match failure.class {
        Some(class) => keeper.base().store.record_upkeep_failure(connection.id, class, at, &failure.text).await,
        None => keeper.base().store.record_task(connection.id, BackgroundTask::Upkeep, at, Some(&failure.text)).await,
    };
    if let Err(e) = recorded {
        tracing::warn!(connection = %connection.id, error = %e, "{} outcome not recorded", K::NAME);
    }
}

/// Stores a success, which clears the failure class.
pub async fn record_success<K: Keeper>(keeper: &K, connection: &Connection) {
    if let Err(e) = keeper.base().store.record_task(connection.id, BackgroundTask::Upkeep, now(), None).await {
        tracing::warn!(connection = %connection.id, error = %e, "{} outcome not recorded", K::NAME);
    }
}

/// Records that what the vendor holds failed its check (`why`), before the action that
/// mends it, with the status that leads to: otherwise a repair within the same pass would
/// leave no trace in the history or the alerts.
pub async fn flag<K: Keeper>(keeper: &K, connection: &Connection, why: String) {
    let failure = Failure { text: why, class: Some(UpkeepFailure::Validation) };
    record_failure(keeper, connection, &failure).await;
    announce(keeper, connection.id).await;
}

/// Records the status transition, if any, of the connection as stored now, and announces
/// it, as a monitor pass would.
pub async fn announce<K: Keeper>(keeper: &K, id: Uuid) {
    let recorded = match keeper.base().store.get_connection(id).await {
        Ok(Some(connection)) => {
            crate::monitor::record(keeper.base().store.as_ref(), keeper.base().alerts.as_deref(), &connection, now()).await
        }
        Ok(None) => return,
        Err(e) => Err(e),
    };
    if let Err(e) = recorded {
        tracing::warn!(connection = %id, error = %e, "the status after a {} outcome is left to the monitor", K::NAME);
    }
}

/// The longest wait after failures, in intervals (16 minutes at the default interval).
const MAX_BACKOFF_INTERVALS: u32 = 16;

/// The wait before trying a connection again after `failures` failed actions in a row:
/// one interval, doubling up to [`MAX_BACKOFF_INTERVALS`]. A connection the vendor keeps
/// refusing (missing permission, failed validation) is then not asked about every minute.
pub fn backoff_delay(interval: Duration, failures: u32) -> Duration {
    let factor = 1u32 << failures.saturating_sub(1).min(MAX_BACKOFF_INTERVALS.trailing_zeros());
    interval.saturating_mul(factor)
}

/// Connections whose last action failed, and when to try them again. Kept in memory: a
/// restart tries every connection at once. An admin change of the connection (a fixed
/// secret, another resource) ends its wait.
#[derive(Default)]
struct Backoff(HashMap<Uuid, Retry>);

struct Retry {
    failures: u32,
    not_before: Instant,
    updated_at: DateTime<Utc>,
}

impl Backoff {
    fn waits(&self, connection: &Connection, now: Instant) -> bool {
        self.0.get(&connection.id).is_some_and(|r| r.updated_at == connection.updated_at && r.not_before > now)
    }

    /// Whether a pass skips this connection: it waits, and was not nudged since the last pass.
    fn skips(&self, connection: &Connection, nudged: &HashSet<Uuid>, now: Instant) -> bool {
        !nudged.contains(&connection.id) && self.waits(connection, now)
    }

    fn failed(&mut self, connection: &Connection, interval: Duration, now: Instant) {
        let before = self.0.get(&connection.id).filter(|r| r.updated_at == connection.updated_at).map_or(0, |r| r.failures);
        let failures = before.saturating_add(1);
        let not_before = now.checked_add(backoff_delay(interval, failures)).unwrap_or(now);
        self.0.insert(connection.id, Retry { failures, not_before, updated_at: connection.updated_at });
    }

    fn succeeded(&mut self, id: Uuid) {
        self.0.remove(&id);
    }
}

#[cfg(test)]
mod tests;
