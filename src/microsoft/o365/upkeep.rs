//! The Office 365 subscription upkeep: for every unpaused `o365_activity` connection with a
//! `config.subscription`, keep one Management Activity API subscription per content type
//! (`content_types`) enabled, with a webhook pushing to the connection's push URL with its
//! `auth_id`.
//!
//! Each pass lists the subscriptions of the connection's tenant (`subscriptions/list`)
//! and decides from that answer ([`decide`]): when pushgate has not started them with the
//! connection's current settings (no stored fingerprint, or another one:
//! [`O365Settings::fingerprint`]), every content type is started (`subscriptions/start`,
//! which applies the address and `authId` to a webhook Microsoft already holds, and counts
//! as done when nothing changes), and a content type no longer asked for whose webhook
//! still pushes to this connection is stopped. Otherwise each content type is checked: one
//! missing from the list, disabled, whose webhook is not `enabled` or pushes to another
//! address is a failed validation (`error` / `Subscription validation failed`, recorded
//! and announced at once), and the same pass starts it again, which per Microsoft
//! re-enables a disabled or expired webhook and moves it to the address given.
//!
//! Starting a webhook makes Microsoft POST a validation to the push URL, which pushgate
//! answers 200: that authenticated push confirms the connection. The outcome of each pass
//! is kept on the connection (`subscription.upkeep`); refused credentials make it `error`
//! / `Unable to read API Endpoint` until the next success, and failures that say nothing
//! about the connection (Microsoft unreachable, its 5xx, 429) change no status. The loop,
//! the backoff after failures and the recording are [`crate::microsoft::runner`]'s, as for
//! the Graph upkeep. A deleted connection's subscriptions are stopped in the background,
//! best-effort ([`UpkeepHandle::retire`]).

use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use super::manage::{ContentSubscription, ManageApi, ManageError};
use super::settings::O365Settings;
use crate::microsoft::runner::{self, Base, Failure, Keeper, Signals};
use crate::model::{Connection, SourceKind};

/// How often every connection's subscriptions are listed.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);

/// What one pass does for a connection, decided from Microsoft's list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Content types to start (again).
    pub start: Vec<String>,
    /// Content types no longer asked for whose webhook still pushes here.
    pub stop: Vec<String>,
    /// Why subscriptions pushgate started fail their check: a failed validation.
    pub failed: Vec<String>,
}

/// Whether Microsoft writes a status as enabled.
fn enabled(status: &str) -> bool {
    status.eq_ignore_ascii_case("enabled")
}

/// The plan for a connection asking for `content_types` pushed to `address`, given the
/// subscriptions Microsoft `held` (its list answer); `started`: pushgate started them with
/// the connection's current settings.
pub fn decide(held: &[ContentSubscription], content_types: &[String], address: &str, started: bool) -> Plan {
    let find = |content_type: &str| held.iter().find(|s| s.content_type.eq_ignore_ascii_case(content_type));
    let ours = |s: &ContentSubscription| s.webhook.as_ref().is_some_and(|w| w.address == address);
    let mut plan = Plan::default();
    if !started {
        plan.start = content_types.to_vec();
        plan.stop = held
            .iter()
            .filter(|s| enabled(&s.status) && ours(s) && !content_types.iter().any(|c| c.eq_ignore_ascii_case(&s.content_type)))
            .map(|s| s.content_type.clone())
            .collect();
        return plan;
    }
    for content_type in content_types {
        let why = match find(content_type) {
            None => Some("it is not subscribed".to_owned()),
            Some(s) if !enabled(&s.status) => Some(format!("its subscription is {:?}", s.status)),
            Some(ContentSubscription { webhook: None, .. }) => Some("its subscription has no webhook".to_owned()),
            Some(ContentSubscription { webhook: Some(w), .. }) if !enabled(&w.status) => Some(format!("its webhook is {:?}", w.status)),
            Some(ContentSubscription { webhook: Some(w), .. }) if w.address != address => {
                Some(format!("its webhook address is {:?}, not {address:?}", w.address))
            }
            Some(_) => None,
        };
        if let Some(why) = why {
            plan.failed.push(format!("{content_type}: {why}"));
            plan.start.push(content_type.clone());
        }
    }
    plan
}

/// Starts a pass of the upkeep now, or hands it the subscriptions of a deleted connection
/// to stop, from anywhere (cheap to clone: one `Arc`).
#[derive(Clone, Default)]
pub struct UpkeepHandle {
    shared: Arc<Signals<Retirement>>,
}

/// The subscriptions of a deleted connection, to stop where they still push to it.
#[derive(Debug, Clone)]
pub struct Retirement {
    pub connection_id: Uuid,
    pub settings: O365Settings,
    pub push_url: String,
}

impl UpkeepHandle {
    pub fn new() -> UpkeepHandle {
        UpkeepHandle::default()
    }

    /// Asks for a pass as soon as the current one (if any) is done, in which this
    /// connection is looked at even while it waits after a failure.
    pub fn nudge(&self, connection_id: Uuid) {
        self.shared.nudge(connection_id);
    }

    /// Asks the upkeep to stop the subscriptions of a deleted connection made with
    /// `settings` that still push to `push_url`, best-effort and in the background.
    /// Without a running upkeep they are left: Microsoft's deliveries to the deleted push
    /// URL fail, and it disables the webhook on its own.
    pub fn retire(&self, connection_id: Uuid, settings: O365Settings, push_url: String) {
        if !self.shared.retire(Retirement { connection_id, settings, push_url }) {
            tracing::info!(connection = %connection_id,
                "no Office 365 subscription upkeep runs here: the deleted connection's subscriptions are left to Microsoft");
        }
    }
}

/// The upkeep task and what it needs.
#[derive(Clone)]
pub struct Upkeep {
    pub base: Base,
    pub api: Arc<ManageApi>,
    pub handle: UpkeepHandle,
}

impl From<ManageError> for Failure {
    fn from(e: ManageError) -> Failure {
        Failure { class: e.failure(), text: e.to_string() }
    }
}

#[async_trait::async_trait]
impl Keeper for Upkeep {
    type Retirement = Retirement;
    const SOURCE: SourceKind = SourceKind::O365Activity;
    const NAME: &'static str = "Office 365 subscription upkeep";

    fn base(&self) -> &Base {
        &self.base
    }

    async fn keep(&self, connection: &Connection) -> Option<bool> {
        let config = self.base.open_config(connection, Self::NAME)?;
        let outcome = match O365Settings::of(&config) {
            Ok(Some(settings)) => self.keep_subscriptions(connection, &settings).await,
            Ok(None) => return None,
            Err(e) => Err(Failure::plain(format!("the subscription settings are unusable: {e}"))),
        };
        let succeeded = outcome.is_ok();
        match outcome {
            Ok(()) => runner::record_success(self, connection).await,
            Err(failure) => runner::record_failure(self, connection, &failure).await,
        }
        runner::announce(self, connection.id).await;
        Some(succeeded)
    }

    async fn retire(&self, Retirement { connection_id, settings, push_url }: Retirement) {
        let held = match self.api.list(&settings).await {
            Ok(held) => held,
            Err(e) => {
                tracing::warn!(connection = %connection_id, error = %e,
                    "the deleted connection's Office 365 subscriptions cannot be listed: they are left to Microsoft");
                return;
            }
        };
        let pushing_here = held.iter().filter(|s| s.webhook.as_ref().is_some_and(|w| w.address == push_url));
        for subscription in pushing_here {
            self.stop(connection_id, &settings, &subscription.content_type, "its connection was deleted").await;
        }
    }
}

impl Upkeep {
    /// Runs a pass at once, then every `interval` and on every nudge, until `stop` turns true.
    pub async fn run(self, stop: tokio::sync::watch::Receiver<bool>) {
        let signals = self.handle.shared.clone();
        runner::run(&self, &signals, stop).await;
    }

    /// Lists, checks and starts the connection's subscriptions; a failed check is
    /// recorded (and announced) before the starts that mend it.
    async fn keep_subscriptions(&self, connection: &Connection, settings: &O365Settings) -> Result<(), Failure> {
        let push_url = self.base.push_url(connection);
        let fingerprint = settings.fingerprint(&push_url);
        let started = connection.facts.upkeep_settings_hash.as_deref() == Some(fingerprint.as_str());
        let held = self.api.list(settings).await?;
        let plan = decide(&held, &settings.content_types, &push_url, started);
        if !plan.failed.is_empty() {
            let why = format!("the subscriptions at Microsoft no longer match the connection: {}", plan.failed.join("; "));
            runner::flag(self, connection, why).await;
        }
        for content_type in &plan.start {
            tracing::info!(connection = %connection.id, content_type, "starting an Office 365 subscription");
            self.api.start(settings, content_type, &push_url).await?;
        }
        for content_type in &plan.stop {
            self.stop(connection.id, settings, content_type, "the connection no longer asks for it").await;
        }
        if !started {
            self.base
                .store
                .record_upkeep_settings(connection.id, &fingerprint)
                .await
                .map_err(|e| Failure::plain(format!("the started subscriptions' settings could not be recorded: {e}")))?;
        }
        Ok(())
    }

    async fn stop(&self, connection_id: Uuid, settings: &O365Settings, content_type: &str, reason: &str) {
        match self.api.stop(settings, content_type).await {
            Ok(()) => tracing::info!(connection = %connection_id, content_type, reason, "Office 365 subscription stopped"),
            Err(e) => tracing::warn!(connection = %connection_id, content_type, reason, error = %e, "Office 365 subscription not stopped"),
        }
    }
}

#[cfg(test)]
mod tests;
