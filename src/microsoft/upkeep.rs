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
//! Graph in the background ([`UpkeepHandle::retire`]).
//!
//! Every action's outcome is kept on the connection (`subscription.upkeep`). A failure
//! changes no subscription fact: the connection keeps being evaluated from what Graph
//! and pushgate last knew, so a subscription left to expire turns `error` /
//! `Subscription is missing` on its own.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::Notify;
use tokio::time::Instant;
use uuid::Uuid;

use super::api::{Credentials, EncryptionCertificate, GraphApi, GraphError, NewSubscription, Subscription};
use crate::config::Secret;
use crate::crypto::MasterKey;
use crate::model::{now, BackgroundTask, Connection, ConnectionFilter, Facts, SourceKind, SubscriptionChange};
use crate::store::Store;

/// How often every subscription is looked at.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);

/// The lifetime asked for when `subscription.expiration_minutes` is not set: just under
/// three days, which Graph accepts for most resources (users, groups, mail, events,
/// contacts, drive items, list items); resources with a shorter maximum (Teams messages
/// with resource data, presence: one hour) need `expiration_minutes`.
pub const DEFAULT_EXPIRATION_MINUTES: i64 = 4230;

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

/// What the upkeep needs of a connection's full configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub credentials: Credentials,
    pub resource: String,
    pub change_type: String,
    pub lifetime: chrono::Duration,
    pub client_state: Secret,
    pub encryption: Option<EncryptionCertificate>,
}

impl Settings {
    /// SHA-256 (hex) of everything a subscription is created with that a later change of
    /// the connection must reach Graph with: resource, change type, client state, the
    /// notification URL, the encryption certificate and its id, tenant and client id. The
    /// lifetime and the client secret are left out: a renewal or the next token applies them.
    pub fn fingerprint(&self, notification_url: &str) -> String {
        let (certificate_id, certificate) = match &self.encryption {
            Some(e) => (e.id.as_str(), e.certificate_base64.as_str()),
            None => ("", ""),
        };
        let mut hash = Sha256::new();
        for part in [
            self.resource.as_str(),
            self.change_type.as_str(),
            self.client_state.expose(),
            notification_url,
            certificate_id,
            certificate,
            self.credentials.tenant_id.as_str(),
            self.credentials.client_id.as_str(),
        ] {
            // Length-prefixed, so that no two different lists hash alike.
            hash.update((part.len() as u64).to_be_bytes());
            hash.update(part.as_bytes());
        }
        hex::encode(hash.finalize())
    }

    /// The settings in an unsealed `ms_graph` config; `Ok(None)` when it has no
    /// `subscription`, an error text when something the upkeep needs is unusable.
    pub fn of(config: &Value) -> Result<Option<Settings>, String> {
        let Some(subscription) = config.get("subscription") else { return Ok(None) };
        let field = |name: &str| {
            subscription
                .get(name)
                .and_then(Value::as_str)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| format!("`subscription.{name}` is missing"))
        };
        let minutes = subscription.get("expiration_minutes").and_then(Value::as_i64).unwrap_or(DEFAULT_EXPIRATION_MINUTES);
        let client_state =
            config.get("client_state").and_then(Value::as_str).filter(|s| !s.is_empty()).ok_or("`client_state` is missing")?;
        Ok(Some(Settings {
            credentials: Credentials {
                tenant_id: field("tenant_id")?,
                client_id: field("client_id")?,
                client_secret: Secret::new(field("client_secret")?),
            },
            resource: field("resource")?,
            change_type: field("change_type")?,
            lifetime: chrono::Duration::minutes(minutes.clamp(1, crate::sources::config_check::MAX_GRAPH_EXPIRATION_MINUTES)),
            client_state: Secret::new(client_state),
            encryption: encryption_certificate(config)?,
        }))
    }
}

/// The first encryption key with a `certificate_pem`: Graph then sends rich
/// notifications encrypted with that certificate.
fn encryption_certificate(config: &Value) -> Result<Option<EncryptionCertificate>, String> {
    use base64::Engine;
    let keys = config.get("encryption_keys").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    for key in keys {
        let Some(pem) = key.get("certificate_pem").and_then(Value::as_str) else { continue };
        let id = key.get("id").and_then(Value::as_str).unwrap_or_default().to_owned();
        let der = match x509_parser::pem::parse_x509_pem(pem.trim().as_bytes()) {
            Ok((_, block)) if block.label == "CERTIFICATE" && block.parse_x509().is_ok() => block.contents,
            _ => return Err(format!("encryption key `{id}`: `certificate_pem` is not a PEM X.509 certificate")),
        };
        let certificate_base64 = base64::engine::general_purpose::STANDARD.encode(der);
        return Ok(Some(EncryptionCertificate { id, certificate_base64 }));
    }
    Ok(None)
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
pub struct Upkeep {
    pub store: Arc<dyn Store>,
    pub key: Arc<MasterKey>,
    pub api: Arc<GraphApi>,
    /// Base URL of push routes, without a trailing slash.
    pub public_url: String,
    pub interval: Duration,
    pub handle: UpkeepHandle,
}

impl Upkeep {
    /// Runs a pass at once, then every `interval` and on every nudge, until `stop` turns true.
    pub async fn run(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut backoff = Backoff::default();
        self.handle.shared.running.store(true, Ordering::SeqCst);
        loop {
            if *stop.borrow() {
                break;
            }
            self.retire_deleted().await;
            // Nudges from now on count for the next pass.
            let nudged = self.handle.take_nudged();
            self.pass(&mut backoff, &nudged).await;
            tokio::select! {
                _ = tokio::time::sleep(self.interval) => {}
                _ = self.handle.shared.notify.notified() => {}
                _ = stop.wait_for(|s| *s) => break,
            };
        }
        self.handle.shared.running.store(false, Ordering::SeqCst);
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

    /// Decides and acts for one connection, and records the outcome of any action:
    /// whether it succeeded, or `None` when nothing was done.
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
            Err(e) => return Some(self.record(connection, Err(format!("the subscription settings are unusable: {e}")), "").await),
        };
        let fingerprint = settings.fingerprint(&crate::sources::connection_push_url(connection, &self.public_url));
        let action = decide(&connection.facts, settings.lifetime, &fingerprint, now());
        if action == Action::Nothing {
            return None;
        }
        let outcome = self.act(connection, &settings, &action).await;
        let created = match &outcome {
            Ok(acted) if acted.created => acted.changes.iter().find_map(|c| match c {
                SubscriptionChange::Renewed { external_id, .. } => Some(external_id.clone()),
                _ => None,
            }),
            _ => None,
        };
        let succeeded = self.record(connection, outcome, &fingerprint).await;
        match (&created, succeeded, &action) {
            (Some(_), true, Action::Replace { old }) => {
                self.delete_subscription(connection.id, &settings, old, "replaced by one with the connection's new settings").await;
            }
            // Not recorded (the store failed, or the connection was deleted meanwhile): no
            // pass would ever renew or delete it, and the next one creates another.
            (Some(new), false, _) => self.delete_subscription(connection.id, &settings, new, "created but not recorded").await,
            _ => {}
        }
        Some(succeeded)
    }

    /// Carries out `action`; the subscription facts to store, or what failed.
    async fn act(&self, connection: &Connection, settings: &Settings, action: &Action) -> Result<Acted, String> {
        let credentials = &settings.credentials;
        let expiration = now() + settings.lifetime;
        let renewed = match action {
            Action::Nothing => return Ok(Acted { changes: Vec::new(), created: false }),
            Action::Create { reason } => return self.create(connection, settings, reason).await,
            Action::Replace { .. } => return self.create(connection, settings, "the connection's subscription settings changed").await,
            Action::Reauthorize { id } => match self.api.reauthorize(credentials, id).await {
                Ok(()) => self.api.renew(credentials, id, expiration).await,
                Err(e) => Err(e),
            },
            Action::Renew { id } => self.api.renew(credentials, id, expiration).await,
        };
        match renewed {
            Ok(Subscription { id, expires_at }) => {
                tracing::info!(connection = %connection.id, subscription = id, %expires_at, "Graph subscription renewed");
                Ok(Acted { changes: vec![SubscriptionChange::Renewed { external_id: id, expires_at }], created: false })
            }
            Err(e) if e.is_not_found() => self.create(connection, settings, "Graph no longer knows the subscription").await,
            Err(e) => Err(e.to_string()),
        }
    }

    async fn create(&self, connection: &Connection, settings: &Settings, reason: &str) -> Result<Acted, String> {
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
        let Subscription { id, expires_at } = self.api.create(&settings.credentials, &new).await.map_err(|e: GraphError| e.to_string())?;
        tracing::info!(connection = %connection.id, subscription = id, %expires_at, "Graph subscription created");
        let changes = vec![
            SubscriptionChange::Renewed { external_id: id.clone(), expires_at },
            // Graph creates a subscription only after the push URL answered its validation
            // request: that is the confirmation, and it supersedes an earlier removal.
            SubscriptionChange::Confirmed { external_id: Some(id) },
        ];
        Ok(Acted { changes, created: true })
    }

    /// Stores the changes and the outcome of one action, and after a create the
    /// fingerprint of the settings it was made with; whether it succeeded.
    async fn record(&self, connection: &Connection, outcome: Result<Acted, String>, fingerprint: &str) -> bool {
        let error = match outcome {
            Ok(Acted { changes, created }) => {
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
                failed
            }
            Err(e) => Some(e),
        };
        if let Some(e) = &error {
            tracing::warn!(connection = %connection.id, error = %e, "Graph subscription upkeep failed");
        }
        if let Err(e) = self.store.record_task(connection.id, BackgroundTask::Upkeep, now(), error.as_deref()).await {
            tracing::warn!(connection = %connection.id, error = %e, "Graph subscription upkeep outcome not recorded");
        }
        error.is_none()
    }
}

/// What an action did: the subscription facts to store, and whether it created a
/// subscription (whose settings fingerprint is then stored too).
struct Acted {
    changes: Vec<SubscriptionChange>,
    created: bool,
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
mod tests {
    use super::*;
    use chrono::Duration as D;
    use serde_json::json;

    fn at(minutes: i64) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2030-01-01T00:00:00Z").unwrap().with_timezone(&Utc) + D::minutes(minutes)
    }

    fn live(expires_in_minutes: i64) -> Facts {
        Facts {
            confirmed_at: Some(at(-10)),
            external_id: Some("sub-1".into()),
            expires_at: Some(at(expires_in_minutes)),
            upkeep_settings_hash: Some(HASH.into()),
            ..Default::default()
        }
    }

    const LIFETIME: D = D::minutes(4230);
    const HASH: &str = "5e77";

    #[test]
    fn a_connection_without_a_subscription_gets_one() {
        assert_eq!(decide(&Facts::default(), LIFETIME, HASH, at(0)), Action::Create { reason: "no subscription yet" });
    }

    #[test]
    fn a_removed_subscription_is_created_again_unless_confirmed_since() {
        let mut facts = live(3000);
        facts.subscription_lost_at = Some(at(-1));
        assert!(matches!(decide(&facts, LIFETIME, HASH, at(0)), Action::Create { .. }));
        facts.subscription_lost_at = Some(at(-20));
        assert_eq!(decide(&facts, LIFETIME, HASH, at(0)), Action::Nothing, "confirmed after the loss");
    }

    #[test]
    fn an_expired_subscription_is_created_again_even_when_reauthorization_was_asked() {
        let mut facts = live(-1);
        facts.reauthorization_required_at = Some(at(-30));
        assert_eq!(decide(&facts, LIFETIME, HASH, at(0)), Action::Create { reason: "the subscription expired" });
        assert!(matches!(decide(&live(0), LIFETIME, HASH, at(0)), Action::Create { .. }), "expiring now is expired");
    }

    #[test]
    fn a_reauthorization_request_is_answered_whatever_the_expiry() {
        let mut facts = live(4000);
        facts.reauthorization_required_at = Some(at(-1));
        assert_eq!(decide(&facts, LIFETIME, HASH, at(0)), Action::Reauthorize { id: "sub-1".into() });
    }

    #[test]
    fn renewal_starts_when_less_than_half_the_lifetime_is_left() {
        assert_eq!(decide(&live(2116), LIFETIME, HASH, at(0)), Action::Nothing);
        assert_eq!(decide(&live(2114), LIFETIME, HASH, at(0)), Action::Renew { id: "sub-1".into() });
        assert_eq!(decide(&live(29), D::minutes(60), HASH, at(0)), Action::Renew { id: "sub-1".into() });
        assert_eq!(decide(&live(31), D::minutes(60), HASH, at(0)), Action::Nothing);
        let mut unknown_expiry = live(0);
        unknown_expiry.expires_at = None;
        assert_eq!(decide(&unknown_expiry, LIFETIME, HASH, at(0)), Action::Renew { id: "sub-1".into() });
    }

    #[test]
    fn a_subscription_created_with_other_settings_is_replaced() {
        let mut facts = live(4000);
        facts.reauthorization_required_at = Some(at(-1));
        assert_eq!(decide(&facts, LIFETIME, "other", at(0)), Action::Replace { old: "sub-1".into() }, "before reauthorizing it");
        assert_eq!(decide(&live(4000), LIFETIME, "other", at(0)), Action::Replace { old: "sub-1".into() });
        let mut unknown = live(4000);
        unknown.upkeep_settings_hash = None;
        assert_eq!(decide(&unknown, LIFETIME, "other", at(0)), Action::Nothing, "no stored fingerprint counts as the same");
        assert!(matches!(decide(&live(-1), LIFETIME, "other", at(0)), Action::Create { .. }), "an expired one is just created");
    }

    #[test]
    fn the_fingerprint_covers_what_a_subscription_is_created_with() {
        let base = Settings::of(&config()).unwrap().unwrap();
        let url = "https://p.example/push/ms-graph/1";
        let fingerprint = base.fingerprint(url);
        assert_eq!(fingerprint.len(), 64);
        let mut changed = Vec::new();
        for (path, value) in [
            ("/client_state", json!("cs2")),
            ("/subscription/resource", json!("groups")),
            ("/subscription/change_type", json!("updated")),
            ("/subscription/tenant_id", json!("t2")),
            ("/subscription/client_id", json!("c2")),
        ] {
            let mut c = config();
            *c.pointer_mut(path).unwrap() = value;
            changed.push(Settings::of(&c).unwrap().unwrap().fingerprint(url));
        }
        let mut with_certificate = base.clone();
        with_certificate.encryption = Some(EncryptionCertificate { id: "k1".into(), certificate_base64: "MIIB".into() });
        changed.push(with_certificate.fingerprint(url));
        with_certificate.encryption = Some(EncryptionCertificate { id: "k2".into(), certificate_base64: "MIIB".into() });
        changed.push(with_certificate.fingerprint(url));
        changed.push(base.fingerprint("https://q.example/push/ms-graph/1"));
        for (i, other) in changed.iter().enumerate() {
            assert_ne!(other, &fingerprint, "change {i}");
        }
        let mut same = config();
        same["subscription"]["client_secret"] = json!("rotated");
        same["subscription"]["expiration_minutes"] = json!(60);
        assert_eq!(Settings::of(&same).unwrap().unwrap().fingerprint(url), fingerprint, "renewals and tokens apply these");
    }

    fn connection(id: Uuid) -> Connection {
        let facts = Facts::default();
        let at = at(0);
        Connection {
            id,
            tenant_id: "acme".into(),
            name: "g".into(),
            source: SourceKind::MsGraph,
            stream: "s".into(),
            heartbeat_interval_seconds: None,
            grace_seconds: 0,
            config_public: json!({}),
            config_sealed: String::new(),
            created_at: at,
            updated_at: at,
            facts,
            counters: Default::default(),
            canary: Default::default(),
            upkeep: Default::default(),
        }
    }

    #[test]
    fn a_nudge_ends_the_wait_of_that_connection_only() {
        let (a, b) = (connection(Uuid::new_v4()), connection(Uuid::new_v4()));
        let mut backoff = Backoff::default();
        let start = Instant::now();
        backoff.failed(&a, Duration::from_secs(60), start);
        backoff.failed(&b, Duration::from_secs(60), start);
        let nudged = HashSet::from([a.id]);
        assert!(!backoff.skips(&a, &nudged, start), "nudged");
        assert!(backoff.skips(&b, &nudged, start), "still waiting");
        assert!(!backoff.skips(&b, &nudged, start + Duration::from_secs(61)), "waited long enough");
    }

    #[test]
    fn a_running_upkeep_collects_nudged_connections_until_its_next_pass() {
        let handle = UpkeepHandle::new();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        handle.nudge(a);
        assert!(handle.take_nudged().is_empty(), "no upkeep runs: nothing kept");
        handle.shared.running.store(true, Ordering::SeqCst);
        let clone = handle.clone();
        clone.nudge(a);
        handle.nudge(b);
        handle.nudge(a);
        assert_eq!(handle.take_nudged(), HashSet::from([a, b]));
        assert!(handle.take_nudged().is_empty(), "taken by one pass");
        let settings = Settings::of(&config()).unwrap().unwrap();
        clone.retire(a, settings, "sub-1".into());
        let retired = handle.take_retirements();
        assert_eq!((retired.len(), retired[0].external_id.as_str()), (1, "sub-1"));
    }

    #[test]
    fn failures_back_off_doubling_up_to_sixteen_intervals() {
        let minute = Duration::from_secs(60);
        let waits: Vec<u64> = (1..=7).map(|n| backoff_delay(minute, n).as_secs() / 60).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 16, 16]);
        assert_eq!(backoff_delay(minute, u32::MAX), minute * 16);
        assert_eq!(backoff_delay(Duration::MAX, 3), Duration::MAX, "no overflow");
    }

    fn config() -> Value {
        json!({
            "client_state": "cs",
            "subscription": {"resource": "users", "change_type": "created", "tenant_id": "t", "client_id": "c", "client_secret": "s"},
        })
    }

    #[test]
    fn settings_are_read_from_the_full_config() {
        let s = Settings::of(&config()).unwrap().unwrap();
        assert_eq!((s.resource.as_str(), s.credentials.client_secret.expose()), ("users", "s"));
        assert_eq!(s.lifetime, D::minutes(DEFAULT_EXPIRATION_MINUTES));
        assert_eq!(s.encryption, None);
        let mut c = config();
        c["subscription"]["expiration_minutes"] = json!(60);
        assert_eq!(Settings::of(&c).unwrap().unwrap().lifetime, D::minutes(60));
        assert_eq!(Settings::of(&json!({"client_state": "cs"})), Ok(None));
        c["subscription"]["client_secret"] = json!("");
        assert!(Settings::of(&c).unwrap_err().contains("client_secret"));
        assert!(!format!("{:?}", Settings::of(&config())).contains("\"s\""), "Debug hides the secret");
    }

    #[test]
    fn a_key_with_a_certificate_asks_for_rich_notifications() {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["pushgate".into()]).unwrap().self_signed(&key).unwrap();
        let mut c = config();
        c["encryption_keys"] = json!([
            {"id": "plain", "private_key_pem": "-----BEGIN PRIVATE KEY-----"},
            {"id": "k2", "private_key_pem": "-----BEGIN PRIVATE KEY-----", "certificate_pem": cert.pem()},
        ]);
        let e = Settings::of(&c).unwrap().unwrap().encryption.unwrap();
        use base64::Engine;
        assert_eq!(e.id, "k2");
        assert_eq!(base64::engine::general_purpose::STANDARD.decode(&e.certificate_base64).unwrap(), cert.der().to_vec());
        c["encryption_keys"][1]["certificate_pem"] = json!("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----");
        assert!(Settings::of(&c).unwrap_err().contains("k2"));
    }
}
