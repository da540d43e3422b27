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
//! interval, then two, four... up to sixteen ([`super::runner::backoff_delay`]), unless it
//! was nudged or changed by an admin since. The subscription of a deleted connection is deleted from
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
//! delete the old subscription); the pure parts are [`decide`] and [`mismatch`], tested in
//! `upkeep/tests.rs`. The loop, the backoff and the recording it shares with the Office 365
//! upkeep are in [`super::runner`].
//!
//! One file: the pass (decide, act, record) is one state machine over a connection's facts;
//! what it reads of a config is in `upkeep/settings.rs`, the check against Graph in
//! `upkeep/check.rs`, its tests in `upkeep/tests.rs`.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::api::{GraphApi, GraphError, NewSubscription, Subscription};
use super::runner::{self, Base, Failure, Keeper, Signals};
use crate::model::{now, Connection, Facts, SourceKind, SubscriptionChange};

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
    shared: Arc<Signals<Retirement>>,
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
        self.shared.nudge(connection_id);
    }

    /// Asks the upkeep to delete the Graph subscription `external_id` of a deleted
    /// connection, made with `settings`, best-effort and in the background. Without a
    /// running upkeep the subscription is left to expire.
    pub fn retire(&self, connection_id: Uuid, settings: Settings, external_id: String) {
        let subscription = external_id.clone();
        if !self.shared.retire(Retirement { connection_id, settings, external_id }) {
            tracing::info!(connection = %connection_id, subscription,
                "no Graph subscription upkeep runs here: the deleted connection's subscription is left to expire");
        }
    }
}

/// The upkeep task and what it needs.
#[derive(Clone)]
pub struct Upkeep {
    pub base: Base,
    pub api: Arc<GraphApi>,
    pub handle: UpkeepHandle,
    /// Told when a subscription was created again after a gap (`catch_up.rs`).
    pub catch_up: super::CatchUpHandle,
}

/// The reasons to create a subscription that leave a gap the catch-up reads: the old one
/// stopped delivering before the new one began.
const GAP_REASONS: [&str; 3] = ["Graph removed the subscription", "the subscription expired", "Graph no longer knows the subscription"];

#[async_trait::async_trait]
impl Keeper for Upkeep {
    type Retirement = Retirement;
    const SOURCE: SourceKind = SourceKind::MsGraph;
    const NAME: &'static str = "Graph subscription upkeep";

    fn base(&self) -> &Base {
        &self.base
    }

    async fn keep(&self, connection: &Connection) -> Option<bool> {
        self.keep_subscription(connection).await
    }

    /// Deletes the subscription of a deleted connection, best-effort: a failure is logged
    /// and the subscription left to expire.
    async fn retire(&self, Retirement { connection_id, settings, external_id }: Retirement) {
        self.delete_subscription(connection_id, &settings, &external_id, "its connection was deleted").await;
    }
}

impl Upkeep {
    /// Runs a pass at once, then every `interval` and on every nudge, until `stop` turns true.
    pub async fn run(self, stop: tokio::sync::watch::Receiver<bool>) {
        let signals = self.handle.shared.clone();
        runner::run(&self, &signals, stop).await;
    }

    async fn delete_subscription(&self, connection_id: Uuid, settings: &Settings, external_id: &str, reason: &str) {
        match self.api.delete(&settings.credentials, external_id).await {
            Ok(()) => tracing::info!(connection = %connection_id, subscription = external_id, reason, "Graph subscription deleted"),
            Err(e) => tracing::warn!(connection = %connection_id, subscription = external_id, reason, error = %e,
                "Graph subscription not deleted: it is left to expire"),
        }
    }

    /// Decides and acts for one connection, and records the outcome of any action (a read
    /// of the subscription included): whether it succeeded, or `None` when nothing was done.
    async fn keep_subscription(&self, connection: &Connection) -> Option<bool> {
        let config = self.base.open_config(connection, Self::NAME)?;
        let settings = match Settings::of(&config) {
            Ok(Some(settings)) => settings,
            Ok(None) => return None,
            Err(e) => {
                return Some(self.record(connection, Err(Failure::plain(format!("the subscription settings are unusable: {e}"))), "").await)
            }
        };
        let push_url = self.base.push_url(connection);
        let fingerprint = settings.fingerprint(&push_url);
        let mut action = decide(&connection.facts, settings.lifetime, &fingerprint, now());
        // Nothing is due by pushgate's facts (so a subscription is known): Graph's answer
        // says whether that holds.
        if let (Action::Nothing, Some(id)) = (action.clone(), connection.facts.external_id.as_ref()) {
            match self.api.get(&settings.credentials, id).await {
                Ok(held) => match mismatch(&held.delivery, &push_url, &settings) {
                    None => return Some(self.record(connection, Ok(Acted::default()), &fingerprint).await),
                    Some(why) => {
                        runner::flag(self, connection, why).await;
                        action = Action::Replace { old: id.clone() };
                    }
                },
                Err(e) if e.is_not_found() => {
                    runner::flag(self, connection, format!("{e}: Graph no longer knows the subscription")).await;
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
            if let Err(e) = self.base.store.request_catch_up(connection.id, &asked, now()).await {
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
                    runner::flag(self, connection, why).await;
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
        let push_url = self.base.push_url(connection);
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

    /// Stores the changes and the outcome of one action, and after a create the
    /// fingerprint of the settings it was made with, then the status that leads to;
    /// whether it succeeded.
    async fn record(&self, connection: &Connection, outcome: Result<Acted, Failure>, fingerprint: &str) -> bool {
        let failure = match outcome {
            Ok(Acted { changes, created, .. }) => {
                let mut failed = None;
                for change in &changes {
                    match self.base.store.change_subscription(connection.id, change, now()).await {
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
                    if let Err(e) = self.base.store.record_upkeep_settings(connection.id, fingerprint).await {
                        failed = Some(format!("the new subscription's settings could not be recorded: {e}"));
                    }
                }
                failed.map(Failure::plain)
            }
            Err(e) => Some(e),
        };
        match &failure {
            Some(failure) => runner::record_failure(self, connection, failure).await,
            None => runner::record_success(self, connection).await,
        }
        runner::announce(self, connection.id).await;
        failure.is_none()
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

#[cfg(test)]
mod tests;
