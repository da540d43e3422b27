//! The Pub/Sub subscription check: every few minutes, for each unpaused `gcp_pubsub`
//! connection that lists its `subscriptions`, ask Pub/Sub whether each still exists and
//! still pushes to the connection's push URL.
//!
//! A deleted subscription, or one now pushing elsewhere, is a lost subscription: the
//! connection turns `error` / `Subscription is missing` (INTERFACE.md section 3, "a
//! cloud-side check found it gone") instead of waiting for the heartbeat to go stale.
//! Found again in order after a loss, it is confirmed again. The check is optional:
//! without credentials (or with Pub/Sub unreachable) it changes nothing and says why in
//! the log.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::{PubSubApi, SubscriptionState};
use crate::model::{now, Connection, ConnectionFilter, SourceKind, SubscriptionChange};
use crate::store::Store;

/// How often subscriptions are checked; the first check waits one interval.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5 * 60);

/// Checks every listed subscription each `interval` until `stop` turns true.
pub async fn run(
    store: Arc<dyn Store>,
    api: Arc<PubSubApi>,
    public_url: String,
    interval: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        match store.list_connections(&ConnectionFilter { source: Some(SourceKind::GcpPubsub), ..Default::default() }).await {
            Ok(connections) => {
                for connection in connections.iter().filter(|c| !c.facts.paused) {
                    check(store.as_ref(), &api, &public_url, connection).await;
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot list connections for the subscription check"),
        }
    }
}

/// What the check concluded about one connection's subscriptions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every listed subscription exists and pushes here.
    InPlace,
    /// This subscription is gone or pushes elsewhere (the detail says which).
    Lost { subscription: String, detail: String },
    /// The check could not be made; nothing changes.
    Unknown(String),
}

/// The verdict for one connection; `None` when it lists no subscriptions.
pub async fn verdict(api: &PubSubApi, push_url: &str, connection: &Connection) -> Option<Verdict> {
    let subscriptions: Vec<String> =
        connection.config_public.get("subscriptions")?.as_array()?.iter().filter_map(Value::as_str).map(str::to_owned).collect();
    if subscriptions.is_empty() {
        return None;
    }
    for subscription in subscriptions {
        match api.subscription(&subscription).await {
            Ok(SubscriptionState::Missing) => {
                return Some(Verdict::Lost { detail: format!("{subscription} does not exist"), subscription });
            }
            Ok(SubscriptionState::Exists { push_endpoint }) if !same_url(&push_endpoint, push_url) => {
                let detail = format!("{subscription} pushes to `{push_endpoint}`, not to {push_url}");
                return Some(Verdict::Lost { subscription, detail });
            }
            Ok(SubscriptionState::Exists { .. }) => {}
            Err(e) => return Some(Verdict::Unknown(e.to_string())),
        }
    }
    Some(Verdict::InPlace)
}

/// Whether two URLs name the same endpoint once parsed (host case, a default port, a
/// trailing slash do not matter).
fn same_url(a: &str, b: &str) -> bool {
    let parse = |u: &str| url::Url::parse(u.trim_end_matches('/')).ok();
    match (parse(a), parse(b)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

async fn check(store: &dyn Store, api: &PubSubApi, public_url: &str, connection: &Connection) {
    let push_url = crate::sources::connection_push_url(connection, public_url);
    let lost = connection.facts.subscription_lost();
    let change = match verdict(api, &push_url, connection).await {
        None => return,
        Some(Verdict::Unknown(why)) => {
            tracing::debug!(connection = %connection.id, why, "Pub/Sub subscription check not made");
            return;
        }
        Some(Verdict::Lost { subscription, detail }) if !lost => {
            tracing::warn!(connection = %connection.id, subscription, detail, "Pub/Sub subscription is missing");
            SubscriptionChange::Lost { at: now() }
        }
        Some(Verdict::InPlace) if lost => {
            tracing::info!(connection = %connection.id, "Pub/Sub subscription is back");
            SubscriptionChange::Confirmed { external_id: None }
        }
        Some(_) => return,
    };
    if let Err(e) = store.change_subscription(connection.id, &change, now()).await {
        tracing::warn!(connection = %connection.id, error = %e, "subscription check result not recorded");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_endpoint_written_differently_is_the_same() {
        let push = "https://pushgate.example.com/push/gcp-pubsub/0b1c";
        assert!(same_url("https://PushGate.example.com:443/push/gcp-pubsub/0b1c/", push));
        assert!(!same_url("https://pushgate.example.com/push/gcp-pubsub/other", push));
        assert!(!same_url("", push), "a pull subscription pushes nowhere");
    }
}
