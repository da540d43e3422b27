//! The Graph subscription upkeep task: for every unpaused `ms_graph` connection with a
//! `config.subscription`, keep one Graph subscription alive that pushes to the
//! connection's push URL.
//!
//! Each pass decides from the connection's stored facts and the fingerprint of its
//! current settings ([`decide`]): create a subscription when there is none, when Graph
//! removed it or when it expired; replace it (create a new one, then delete the old one)
//! when it was created with other settings ([`Settings::fingerprint`]); reauthorize (then
//! renew) when Graph asked for it; renew when less than half of the lifetime pushgate asks
//! for is left. A renewal or reauthorization Graph answers with 404 means the subscription
//! is gone: a new one is created. Passes run every interval and whenever
//! [`UpkeepHandle::nudge`] is called for a connection (by the push path right after it
//! stores a lifecycle notification, by the admin API after a change), one connection
//! after another. A connection whose last action failed is tried again after one
//! interval, then two, four... up to sixteen ([`backoff_delay`]), unless it was nudged or
//! changed by an admin since. The subscription of a deleted connection is deleted from
//! Graph in the background ([`UpkeepHandle::retire`]). With several replicas, the upkeep
//! runs on the one holding its job lease (`jobs.rs`); nudges on the others wait for the
//! holder's next pass.
//!
//! Graph is the source of truth for what a subscription delivers: a pass with nothing to
//! do reads the subscription (`GET /subscriptions/{id}`), and a renewal's answer is read
//! too. One whose notification URL, resource, change type or client state is no longer
//! the connection's ([`mismatch`]), or that Graph no longer knows (404 on the read), is a
//! failed validation until it is replaced, which the same pass does.
//!
//! Every action's outcome is kept on the connection (`subscription.upkeep`), with what a
//! failure says about the connection ([`GraphError::failure`]): refused credentials make
//! it `error` / `Unable to read API Endpoint`, a failed validation `error` /
//! `Subscription validation failed`, until the next success. The status an outcome leads
//! to is recorded (and announced) at once, as the monitor would at its next pass: a
//! failure mended within the same pass is then in the history too. A failure that says
//! nothing about the connection (Graph unreachable, its 5xx) changes no subscription fact
//! and no status: the connection keeps being evaluated from what Graph and pushgate last
//! knew, so a subscription left to expire turns `error` / `Subscription is missing` on
//! its own.
//!
//! A subscription created again after Graph removed it, after it expired or when Graph no
//! longer knew it leaves a gap: the upkeep then asks the catch-up (`catch_up.rs`) to read
//! the changes in between.
//!
//! One file: a pass, its decision and the recording of each outcome are one sequence whose
//! order matters (store the new subscription, record the outcome, record the status, then
//! delete the old subscription); the pure parts are [`decide`], [`mismatch`] and
//! [`backoff_delay`], tested in `upkeep/tests.rs`.
//!
//! One file: the pass (decide, act, record) is one state machine over a connection's facts;
//! what it reads of a config is in `upkeep/settings.rs`, the check against Graph in
//! `upkeep/check.rs`, its tests in `upkeep/tests.rs`.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tokio::time::Instant;
use uuid::Uuid;

use super::api::{GraphApi, GraphError, NewSubscription, Subscription};
use crate::alerts::AlertSender;
use crate::crypto::MasterKey;
use crate::model::{now, BackgroundTask, Connection, ConnectionFilter, Facts, SourceKind, SubscriptionChange, UpkeepFailure};
use crate::passes::Passes;
use crate::store::Store;

mod check;
mod settings;

pub use check::mismatch;
pub use settings::{Settings, DEFAULT_EXPIRATION_MINUTES};

/// How often every subscription is looked at.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);

/// What one pass does for one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Create a new subscription; the reason is logged.
    Create {
        reason: &'static str,
    },
    /// The subscription was created with other settings: create a new one, store it, then
    /// delete the old one.
    Replace {
        old: String,
    },
    /// Reauthorize the subscription, then renew it.
    Reauthorize {
        id: String,
    },
    /// Move the subscription's expiry later.
    Renew {
        id: String,
    },
    Nothing,
}

/// The action for a connection with these facts at `now`, when pushgate asks Graph for
/// subscriptions of `lifetime` with settings whose fingerprint is `settings_hash`.
///
/// A live subscription whose stored fingerprint differs is replaced; one without a stored
/// fingerprint (created before fingerprints were kept) counts as created with the current
/// settings. The renewal rule: renew once less than half of `lifetime` is left. A
/// subscription then gets many passes to be renewed before it expires (half of the default
/// lifetime is about 35 hours), and is renewed about once per half lifetime.
pub fn decide(facts: &Facts, lifetime: chrono::Duration, settings_hash: &str, now: DateTime<Utc>) -> Action {
    let Some(id) = facts.external_id.clone() else {
        return Action::Create { reason: "no subscription yet" };
    };
    // The same rule health uses: a loss counts unless a confirmation came after it.
    if facts.subscription_lost() {
        return Action::Create { reason: "Graph removed the subscription" };
    }
    match facts.expires_at {
        Some(expires) if expires <= now => return Action::Create { reason: "the subscription expired" },
        _ if facts.upkeep_settings_hash.as_deref().is_some_and(|stored| stored != settings_hash) => return Action::Replace { old: id },
        _ if facts.reauthorization_required_at.is_some() => return Action::Reauthorize { id },
        // Known from notifications without an expiry: renewing sets one.
        None => return Action::Renew { id },
        Some(expires) if expires - now < lifetime / 2 => return Action::Renew { id },
        Some(_) => {}
    }
    Action::Nothing
}

/// Starts a pass of the upkeep now, or hands it a subscription to delete, from anywhere
/// (cheap to clone: one `Arc`).
#[derive(Clone, Default)]
pub struct UpkeepHandle {
    shared: Arc<HandleShared>,
}

#[derive(Default)]
struct HandleShared {
    notify: Notify,
    /// An upkeep task runs: without one, nudges and retirements are not kept.
    running: AtomicBool,
    /// Connections nudged since the last pass started.
    nudged: Mutex<HashSet<Uuid>>,
    retirements: Mutex<Vec<Retirement>>,
}

/// The Graph subscription of a deleted connection, to delete.
#[derive(Debug, Clone)]
pub struct Retirement {
    pub connection_id: Uuid,
    pub settings: Settings,
    pub external_id: String,
}

impl UpkeepHandle {
    pub fn new() -> UpkeepHandle {
        UpkeepHandle::default()
    }

    /// Asks for a pass as soon as the current one (if any) is done, in which this
    /// connection is looked at even while it waits after a failure. Nudges while a pass
    /// runs fold into one more pass; without a running upkeep they do nothing.
    pub fn nudge(&self, connection_id: Uuid) {
        if !self.shared.running.load(Ordering::SeqCst) {
            return;
        }
        self.shared.nudged.lock().expect("nudged connections").insert(connection_id);
        self.shared.notify.notify_one();
    }

    /// Asks the upkeep to delete the Graph subscription `external_id` of a deleted
    /// connection, made with `settings`, best-effort and in the background. Without a
    /// running upkeep the subscription is left to expire.
    pub fn retire(&self, connection_id: Uuid, settings: Settings, external_id: String) {
        if !self.shared.running.load(Ordering::SeqCst) {
            tracing::info!(connection = %connection_id, subscription = external_id,
                "no Graph subscription upkeep runs here: the deleted connection's subscription is left to expire");
            return;
        }
        self.shared.retirements.lock().expect("retirements").push(Retirement { connection_id, settings, external_id });
        self.shared.notify.notify_one();
    }

    fn take_nudged(&self) -> HashSet<Uuid> {
        std::mem::take(&mut *self.shared.nudged.lock().expect("nudged connections"))
    }

    fn take_retirements(&self) -> Vec<Retirement> {
        std::mem::take(&mut *self.shared.retirements.lock().expect("retirements"))
    }
}

/// The upkeep task and what it needs.
#[derive(Clone)]
pub struct Upkeep {
    pub store: Arc<dyn Store>,
    pub key: Arc<MasterKey>,
    pub api: Arc<GraphApi>,
    /// Base URL of push routes, without a trailing slash.
    pub public_url: String,
    pub interval: Duration,
    pub handle: UpkeepHandle,
    /// Counts every completed pass (retirements, then the connections).
    pub passes: Passes,
    /// Where the status transitions the upkeep's outcomes cause are announced.
    pub alerts: Option<Arc<AlertSender>>,
    /// Told when a subscription was created again after a gap (`catch_up.rs`).
    pub catch_up: super::CatchUpHandle,
}

/// The reasons to create a subscription that leave a gap the catch-up reads: the old one
/// stopped delivering before the new one began.
const GAP_REASONS: [&str; 3] = ["Graph removed the subscription", "the subscription expired", "Graph no longer knows the subscription"];

/// Marks the handle's upkeep as running for as long as it lives.
struct Running<'a>(&'a UpkeepHandle);

impl<'a> Running<'a> {
    fn mark(handle: &'a UpkeepHandle) -> Running<'a> {
        handle.shared.running.store(true, Ordering::SeqCst);
        Running(handle)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.shared.running.store(false, Ordering::SeqCst);
    }
}

impl Upkeep {
    /// Runs a pass at once, then every `interval` and on every nudge, until `stop` turns true.
    pub async fn run(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut backoff = Backoff::default();
        // Cleared however the run ends, an abort included (the replica lost the upkeep's
        // job lease): nudges and retirements are then not kept here.
        let _running = Running::mark(&self.handle);
        loop {
            if *stop.borrow() {
                break;
            }
            self.retire_deleted().await;
            // Nudges from now on count for the next pass.
            let nudged = self.handle.take_nudged();
            self.pass(&mut backoff, &nudged).await;
            self.passes.completed();
            tokio::select! {
                _ = tokio::time::sleep(self.interval) => {}
                _ = self.handle.shared.notify.notified() => {}
                _ = stop.wait_for(|s| *s) => break,
            };
        }
    }

    /// Deletes the subscriptions of deleted connections, best-effort: a failure is logged
    /// and the subscription left to expire.
    async fn retire_deleted(&self) {
        for Retirement { connection_id, settings, external_id } in self.handle.take_retirements() {
            self.delete_subscription(connection_id, &settings, &external_id, "its connection was deleted").await;
        }
    }

    async fn delete_subscription(&self, connection_id: Uuid, settings: &Settings, external_id: &str, reason: &str) {
        match self.api.delete(&settings.credentials, external_id).await {
            Ok(()) => tracing::info!(connection = %connection_id, subscription = external_id, reason, "Graph subscription deleted"),
            Err(e) => tracing::warn!(connection = %connection_id, subscription = external_id, reason, error = %e,
                "Graph subscription not deleted: it is left to expire"),
        }
    }

    /// Looks at every unpaused `ms_graph` connection with a subscription once, skipping
    /// those still waiting after a failure unless `nudged` names them (a lifecycle
    /// notification or an admin change is news worth acting on at once).
    async fn pass(&self, backoff: &mut Backoff, nudged: &HashSet<Uuid>) {
        let filter = ConnectionFilter { source: Some(SourceKind::MsGraph), ..Default::default() };
        let connections = match self.store.list_connections(&filter).await {
            Ok(list) => list,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list connections for the Graph subscription upkeep");
                return;
            }
        };
        backoff.0.retain(|id, _| connections.iter().any(|c| c.id == *id));
        // pushgate no longer keeps their subscription: the upkeep's failures say nothing
        // about them any more.
        for connection in connections.iter().filter(|c| c.facts.upkeep_failure.is_some() && c.config_public.get("subscription").is_none()) {
            match self.store.clear_upkeep_failure(connection.id).await {
                Ok(()) => self.announce(connection.id).await,
                Err(e) => tracing::warn!(connection = %connection.id, error = %e, "Graph subscription upkeep failure not cleared"),
            }
        }
        for connection in connections.iter().filter(|c| !c.facts.paused && c.config_public.get("subscription").is_some()) {
            if backoff.skips(connection, nudged, Instant::now()) {
                continue;
            }
            match self.keep(connection).await {
                Some(true) => backoff.succeeded(connection.id),
                Some(false) => backoff.failed(connection, self.interval, Instant::now()),
                None => {}
            }
        }
    }

    /// Decides and acts for one connection, and records the outcome of any action (a read
    /// of the subscription included): whether it succeeded, or `None` when nothing was done.
    async fn keep(&self, connection: &Connection) -> Option<bool> {
        let config = match crate::connections::open_config(&self.key, connection) {
            Ok(config) => config,
            Err(e) => {
                tracing::warn!(connection = %connection.id, error = %e, "Graph subscription upkeep cannot read the connection's secrets");
                return None;
            }
        };
        let settings = match Settings::of(&config) {
            Ok(Some(settings)) => settings,
            Ok(None) => return None,
            Err(e) => {
                return Some(self.record(connection, Err(Failure::plain(format!("the subscription settings are unusable: {e}"))), "").await)
            }
        };
        let push_url = crate::sources::connection_push_url(connection, &self.public_url);
        let fingerprint = settings.fingerprint(&push_url);
        let mut action = decide(&connection.facts, settings.lifetime, &fingerprint, now());
        // Nothing is due by pushgate's facts (so a subscription is known): Graph's answer
        // says whether that holds.
        if let (Action::Nothing, Some(id)) = (action.clone(), connection.facts.external_id.as_ref()) {
            match self.api.get(&settings.credentials, id).await {
                Ok(held) => match mismatch(&held.delivery, &push_url, &settings) {
                    None => return Some(self.record(connection, Ok(Acted::default()), &fingerprint).await),
                    Some(why) => {
                        self.flag(connection, why).await;
                        action = Action::Replace { old: id.clone() };
                    }
                },
                Err(e) if e.is_not_found() => {
                    self.flag(connection, format!("{e}: Graph no longer knows the subscription")).await;
                    action = Action::Create { reason: "Graph no longer knows the subscription" };
                }
                Err(e) => return Some(self.record(connection, Err(e.into()), &fingerprint).await),
            }
        }
        if action == Action::Nothing {
            return None;
        }
        let outcome = self.act(connection, &settings, &push_url, &action).await;
        let created = match &outcome {
            Ok(acted) if acted.created => acted.changes.iter().find_map(|c| match c {
                SubscriptionChange::Renewed { external_id, .. } => Some(external_id.clone()),
                _ => None,
            }),
            _ => None,
        };
        let replaced = outcome.as_ref().ok().and_then(|acted| acted.replaced.clone());
        let gap = outcome.as_ref().ok().and_then(|acted| acted.gap);
        let succeeded = self.record(connection, outcome, &fingerprint).await;
        if let (true, Some(reason)) = (succeeded, gap) {
            // The changes between the old subscription's end and the new one's start.
            let asked = format!("the subscription was created again: {reason}");
            if let Err(e) = self.store.request_catch_up(connection.id, &asked, now()).await {
                tracing::warn!(connection = %connection.id, error = %e, "Graph catch-up not asked for");
            }
        }
        if succeeded && created.is_some() {
            // A new subscription: the catch-up learns the resource's state now (so that a
            // later gap has one to be read from), or reads the gap.
            self.catch_up.nudge();
        }
        match (&created, succeeded, replaced) {
            (Some(_), true, Some(old)) => {
                self.delete_subscription(connection.id, &settings, &old, "replaced by one that matches the connection").await;
            }
            // Not recorded (the store failed, or the connection was deleted meanwhile): no
            // pass would ever renew or delete it, and the next one creates another.
            (Some(new), false, _) => self.delete_subscription(connection.id, &settings, new, "created but not recorded").await,
            _ => {}
        }
        Some(succeeded)
    }

    /// Carries out `action` for a subscription pushing to `push_url`; the subscription
    /// facts to store, or what failed.
    async fn act(&self, connection: &Connection, settings: &Settings, push_url: &str, action: &Action) -> Result<Acted, Failure> {
        let credentials = &settings.credentials;
        let expiration = now() + settings.lifetime;
        let (renewed, id) = match action {
            Action::Nothing => return Ok(Acted::default()),
            Action::Create { reason } => return self.create(connection, settings, reason).await,
            Action::Replace { old } => {
                let acted = self.create(connection, settings, "the subscription no longer matches the connection").await?;
                return Ok(Acted { replaced: Some(old.clone()), ..acted });
            }
            Action::Reauthorize { id } => match self.api.reauthorize(credentials, id).await {
                Ok(()) => (self.api.renew(credentials, id, expiration).await, id),
                Err(e) => (Err(e), id),
            },
            Action::Renew { id } => (self.api.renew(credentials, id, expiration).await, id),
        };
        match renewed {
            Ok(Subscription { id, expires_at, delivery }) => {
                tracing::info!(connection = %connection.id, subscription = id, %expires_at, "Graph subscription renewed");
                // Graph answers a renewal with the subscription as it holds it.
                if let Some(why) = mismatch(&delivery, push_url, settings) {
                    self.flag(connection, why).await;
                    let acted = self.create(connection, settings, "the subscription no longer matches the connection").await?;
                    return Ok(Acted { replaced: Some(id), ..acted });
                }
                Ok(Acted { changes: vec![SubscriptionChange::Renewed { external_id: id, expires_at }], ..Acted::default() })
            }
            // Found by the renewal itself, and mended by the same action: nothing to show.
            Err(e) if e.is_not_found() => {
                tracing::info!(connection = %connection.id, subscription = id.as_str(), "Graph no longer knows the subscription");
                self.create(connection, settings, "Graph no longer knows the subscription").await
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn create(&self, connection: &Connection, settings: &Settings, reason: &str) -> Result<Acted, Failure> {
        let push_url = crate::sources::connection_push_url(connection, &self.public_url);
        let new = NewSubscription {
            change_type: settings.change_type.clone(),
            lifecycle_notification_url: format!("{push_url}/lifecycle"),
            notification_url: push_url,
            resource: settings.resource.clone(),
            expiration: now() + settings.lifetime,
            client_state: settings.client_state.clone(),
            encryption: settings.encryption.clone(),
        };
        tracing::info!(connection = %connection.id, resource = settings.resource, reason, "creating a Graph subscription");
        let Subscription { id, expires_at, .. } = self.api.create(&settings.credentials, &new).await?;
        tracing::info!(connection = %connection.id, subscription = id, %expires_at, "Graph subscription created");
        let changes = vec![
            SubscriptionChange::Renewed { external_id: id.clone(), expires_at },
            // Graph creates a subscription only after the push URL answered its validation
            // request: that is the confirmation, and it supersedes an earlier removal.
            SubscriptionChange::Confirmed { external_id: Some(id) },
        ];
        let gap = GAP_REASONS.iter().find(|r| **r == reason).copied();
        Ok(Acted { changes, created: true, replaced: None, gap })
    }

    /// Records that the subscription Graph holds failed its check (`why`), before the
    /// action that replaces it, with the status that leads to: otherwise a replacement
    /// within the same pass would leave no trace in the history or the alerts.
    async fn flag(&self, connection: &Connection, why: String) {
        let failure = Failure { text: why, class: Some(UpkeepFailure::Validation) };
        self.record_failure(connection, &failure).await;
        self.announce(connection.id).await;
    }

    /// Stores a failure: its text, and its class when it has one.
    async fn record_failure(&self, connection: &Connection, failure: &Failure) {
        tracing::warn!(connection = %connection.id, error = %failure.text, "Graph subscription upkeep failed");
        let at = now();
        // A classified failure changes the status: its text and class go in one write, so
        // whoever reads that status (an admin, an alert) finds its cause with it.
        let recorded = match failure.class {
            Some(class) => self.store.record_upkeep_failure(connection.id, class, at, &failure.text).await,
            None => self.store.record_task(connection.id, BackgroundTask::Upkeep, at, Some(&failure.text)).await,
        };
        if let Err(e) = recorded {
            tracing::warn!(connection = %connection.id, error = %e, "Graph subscription upkeep outcome not recorded");
        }
    }

    /// Records the status transition, if any, of the connection as stored now, and
    /// announces it, as a monitor pass would.
    async fn announce(&self, id: Uuid) {
        let recorded = match self.store.get_connection(id).await {
            Ok(Some(connection)) => crate::monitor::record(self.store.as_ref(), self.alerts.as_deref(), &connection, now()).await,
            Ok(None) => return,
            Err(e) => Err(e),
        };
        if let Err(e) = recorded {
            tracing::warn!(connection = %id, error = %e, "the status after a Graph subscription upkeep outcome is left to the monitor");
        }
    }

    /// Stores the changes and the outcome of one action, and after a create the
    /// fingerprint of the settings it was made with, then the status that leads to;
    /// whether it succeeded.
    async fn record(&self, connection: &Connection, outcome: Result<Acted, Failure>, fingerprint: &str) -> bool {
        let failure = match outcome {
            Ok(Acted { changes, created, .. }) => {
                let mut failed = None;
                for change in &changes {
                    match self.store.change_subscription(connection.id, change, now()).await {
                        Ok(Some(_)) => {}
                        Ok(None) => {
                            failed = Some("the connection was deleted while its subscription was kept".to_owned());
                            break;
                        }
                        Err(e) => {
                            failed = Some(format!("the new subscription could not be recorded: {e}"));
                            break;
                        }
                    }
                }
                if failed.is_none() && created {
                    if let Err(e) = self.store.record_upkeep_settings(connection.id, fingerprint).await {
                        failed = Some(format!("the new subscription's settings could not be recorded: {e}"));
                    }
                }
                failed.map(Failure::plain)
            }
            Err(e) => Some(e),
        };
        match &failure {
            Some(failure) => self.record_failure(connection, failure).await,
            None => {
                if let Err(e) = self.store.record_task(connection.id, BackgroundTask::Upkeep, now(), None).await {
                    tracing::warn!(connection = %connection.id, error = %e, "Graph subscription upkeep outcome not recorded");
                }
            }
        }
        self.announce(connection.id).await;
        failure.is_none()
    }
}

/// Why an action failed: the text kept in `subscription.upkeep.last_error` (Graph's
/// error code and message, never a secret), and what it says about the connection.
#[derive(Debug)]
struct Failure {
    text: String,
    class: Option<UpkeepFailure>,
}

impl Failure {
    /// A failure that says nothing about the connection's credentials or URL.
    fn plain(text: String) -> Failure {
        Failure { text, class: None }
    }
}

impl From<GraphError> for Failure {
    fn from(e: GraphError) -> Failure {
        Failure { class: e.failure(), text: e.to_string() }
    }
}

/// What an action did: the subscription facts to store, whether it created a
/// subscription (whose settings fingerprint is then stored too), and the subscription it
/// replaced (deleted once the new one is stored).
#[derive(Default)]
struct Acted {
    changes: Vec<SubscriptionChange>,
    created: bool,
    replaced: Option<String>,
    /// It created a subscription after a gap ([`GAP_REASONS`]): why.
    gap: Option<&'static str>,
}

/// The longest wait after failures, in intervals (16 minutes at the default interval).
const MAX_BACKOFF_INTERVALS: u32 = 16;

/// The wait before trying a connection again after `failures` failed actions in a row:
/// one interval, doubling up to [`MAX_BACKOFF_INTERVALS`]. A connection Graph keeps
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
