//! Alerts on status transitions: each transition the monitor records is POSTed as JSON
//! (`connection_id`, `tenant_id`, `name`, `old_status`, `new_status`, `message`, `at`) to
//! `PUSHGATE_ALERT_WEBHOOK_URL`, with `X-Pushgate-Signature: sha256=<hex HMAC-SHA256 of the
//! body>` under `PUSHGATE_ALERT_WEBHOOK_SECRET`.
//!
//! Alerts are durable: the monitor, the Graph upkeep and forwarding queue each one in the
//! store ([`AlertSender::send`], never waiting on the webhook), and the one replica that
//! holds the `alerts` job lease delivers them oldest first ([`deliver`]), retrying a
//! failed delivery with exponential backoff (1 s, then twice as long each time, five
//! attempts). Each attempt is recorded with the queued alert, so a restart (or another
//! replica taking the lease over) carries on where the last holder stopped; every
//! delivery's outcome (attempts, delivered or the last error) is stored. At most
//! [`QUEUE_CAP`] alerts wait: beyond, the oldest are dropped (logged and counted in
//! `pushgate_alerts_dropped_total`), so a dead webhook cannot fill the disk.
//!
//! An alert may be POSTed twice (a holder that loses its lease in the middle of an
//! attempt, on a clock that is off by more than the lease's margin): receivers can tell
//! a repeat by its `connection_id` or `destination_id`, `new_status` and `at`.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::config::AlertWebhook;
use crate::metrics::Metrics;
use crate::model::{now, rfc3339, AlertDelivery, AlertSubject, Connection, JobLease, QueuedAlert, StatusChange};
use crate::store::{Store, StoreError};

pub use crate::model::Alert;

/// Alerts waiting at most; beyond, the oldest are dropped (and logged).
pub const QUEUE_CAP: u32 = 10_000;
/// Attempts per alert, the first after `FIRST_RETRY`, each later one twice as late.
const ATTEMPTS: i64 = 5;
const FIRST_RETRY: Duration = Duration::from_secs(1);
const TIMEOUT: Duration = Duration::from_secs(10);
/// How often the queue is looked at when nothing woke the deliverer: alerts queued by
/// another replica are seen within it.
const POLL: Duration = Duration::from_secs(1);

impl Alert {
    pub fn connection(connection: &Connection, change: StatusChange) -> Alert {
        Alert {
            subject: AlertSubject::Connection(connection.id),
            tenant_id: Some(connection.tenant_id.clone()),
            name: connection.name.clone(),
            at: change.at,
            old_status: change.old_status.map(|s| s.as_str().to_owned()),
            new_status: change.new_status.as_str().to_owned(),
            message: change.message,
        }
    }

    /// A destination turned `failing` or recovered (`new_status` `ok`).
    pub fn destination(id: Uuid, name: &str, old_status: &str, new_status: &str, message: Option<String>, at: DateTime<Utc>) -> Alert {
        Alert {
            subject: AlertSubject::Destination(id),
            tenant_id: None,
            name: name.to_owned(),
            at,
            old_status: Some(old_status.to_owned()),
            new_status: new_status.to_owned(),
            message,
        }
    }

    /// The JSON body (INTERFACE.md section 1, `PUSHGATE_ALERT_WEBHOOK_URL`; section 7 for
    /// destinations: `destination_id` and `name` instead of `connection_id` and `tenant_id`).
    pub fn body(&self) -> Value {
        let mut body = json!({
            "name": self.name,
            "old_status": self.old_status,
            "new_status": self.new_status,
            "message": self.message,
            "at": rfc3339(self.at),
        });
        match self.subject {
            AlertSubject::Connection(id) => {
                body["connection_id"] = json!(id);
                body["tenant_id"] = json!(self.tenant_id);
            }
            AlertSubject::Destination(id) => body["destination_id"] = json!(id),
        }
        body
    }
}

/// The signature header's value for `body`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    format!("sha256={}", hex::encode(crate::verify::hmac_sha256(secret.as_bytes(), &[body])))
}

/// Where alerts are queued; shared by everything on a replica that announces transitions.
pub struct AlertSender {
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    /// Wakes this replica's deliverer (when it holds the lease) at once.
    queued: Arc<Notify>,
}

impl AlertSender {
    pub fn new(store: Arc<dyn Store>, metrics: Arc<Metrics>) -> AlertSender {
        AlertSender { store, metrics, queued: Arc::default() }
    }

    /// Queues an alert in the store; never waits for the webhook. A store that cannot
    /// take it loses it, with a warning.
    pub async fn send(&self, alert: Alert) {
        match self.store.enqueue_alert(&alert, now(), QUEUE_CAP).await {
            Ok(dropped) => self.queued(dropped),
            Err(e) => tracing::warn!(subject = ?alert.subject, error = %e, "alert not queued; it is lost"),
        }
    }

    /// Records a connection's status transition together with its alert (one
    /// transaction, so a crash loses neither without the other); whether it was recorded
    /// (not by another monitor first).
    pub async fn record_status(&self, connection: &Connection, change: &StatusChange) -> Result<bool, StoreError> {
        let alert = Alert::connection(connection, change.clone());
        let recorded = self.store.record_status_alerting(connection.id, change, &alert, QUEUE_CAP).await?;
        Ok(recorded.map(|dropped| self.queued(dropped)).is_some())
    }

    /// Enters a Graph `missed` report in the history together with its alert, likewise.
    pub async fn record_missed(&self, connection: &Connection, entry: &StatusChange) -> Result<bool, StoreError> {
        let alert = Alert::connection(connection, entry.clone());
        let recorded = self.store.record_missed_alerting(connection.id, entry, &alert, QUEUE_CAP).await?;
        Ok(recorded.map(|dropped| self.queued(dropped)).is_some())
    }

    /// An alert was queued, and `dropped` older ones with it: wakes the deliverer. Also
    /// called by jobs that queue an alert in a store write of their own, together with
    /// what it announces.
    pub fn queued(&self, dropped: u64) {
        if dropped > 0 {
            tracing::warn!(dropped, cap = QUEUE_CAP, "alert queue full: the oldest waiting alerts were dropped");
            self.metrics.alerts_dropped(dropped);
        }
        self.queued.notify_one();
    }

    /// What wakes the deliverer when an alert was queued here.
    pub fn wakes(&self) -> Arc<Notify> {
        self.queued.clone()
    }
}

/// The webhook alerts go to, with the client that posts to it.
#[derive(Clone)]
pub struct Target {
    client: reqwest::Client,
    webhook: AlertWebhook,
}

impl Target {
    pub fn new(webhook: AlertWebhook) -> Result<Target, String> {
        Ok(Target { client: crate::outbound::operator_client(TIMEOUT)?, webhook })
    }
}

/// Delivers queued alerts oldest first, for as long as it runs (the holder of the
/// `alerts` lease runs it; every outcome is written fenced with `lease`).
pub async fn deliver(store: Arc<dyn Store>, target: Target, lease: JobLease, queued: Arc<Notify>) {
    loop {
        let wait = match store.next_alert().await {
            Ok(Some(alert)) => {
                let due = alert.next_attempt_at;
                if due <= now() {
                    attempt(store.as_ref(), &target, &lease, alert).await;
                    continue;
                }
                (due - now()).to_std().unwrap_or_default().min(POLL)
            }
            Ok(None) => POLL,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the alert queue; trying again shortly");
                POLL
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = queued.notified() => {}
        }
    }
}

/// One attempt at the oldest alert, and its outcome recorded.
async fn attempt(store: &dyn Store, target: &Target, lease: &JobLease, mut queued: QueuedAlert) {
    let body = queued.alert.body().to_string();
    let signature = signature(target.webhook.secret.expose(), body.as_bytes());
    let sent = target
        .client
        .post(&target.webhook.url)
        .header("content-type", "application/json")
        .header("x-pushgate-signature", &signature)
        .body(body)
        .send()
        .await;
    queued.attempts += 1;
    let error = match sent {
        Ok(answer) if answer.status().is_success() => None,
        Ok(answer) => Some(format!("the alert webhook answered {}", answer.status())),
        // Without the URL: it may hold a credential in its path.
        Err(e) => Some(format!("the alert webhook could not be reached: {}", e.without_url())),
    };
    let recorded = match error {
        Some(error) if queued.attempts < ATTEMPTS => {
            queued.next_attempt_at = now() + chrono::Duration::from_std(retry_wait(queued.attempts)).unwrap_or(chrono::Duration::MAX);
            queued.last_error = Some(error);
            store.retry_alert(lease, &queued).await
        }
        error => {
            if let Some(e) = &error {
                tracing::warn!(subject = ?queued.alert.subject, attempts = queued.attempts, error = %e, "alert not delivered");
            }
            let alert = &queued.alert;
            let delivery = AlertDelivery {
                subject: alert.subject,
                at: alert.at,
                old_status: alert.old_status.clone(),
                new_status: alert.new_status.clone(),
                message: alert.message.clone(),
                attempts: queued.attempts,
                delivered: error.is_none(),
                last_error: error,
                finished_at: now(),
            };
            store.finish_alert(lease, queued.id, &delivery).await
        }
    };
    match recorded {
        Ok(true) => {}
        // Dropped from a full queue meanwhile, or the lease was taken over.
        Ok(false) => tracing::debug!(alert = queued.id, "alert outcome not recorded: no longer queued under this lease"),
        Err(e) => tracing::warn!(alert = queued.id, error = %e, "alert delivery outcome not recorded; the attempt is repeated"),
    }
}

/// The wait after `attempts` failed attempts: 1 s, then twice as long each time.
fn retry_wait(attempts: i64) -> Duration {
    FIRST_RETRY * 2u32.saturating_pow(u32::try_from(attempts.saturating_sub(1)).unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_an_hmac_of_the_exact_body() {
        let body = br#"{"new_status":"error"}"#;
        let expected = hex::encode(crate::verify::hmac_sha256(b"alert-secret", &[body]));
        assert_eq!(signature("alert-secret", body), format!("sha256={expected}"));
    }

    #[test]
    fn retries_wait_twice_as_long_each_time() {
        let waits: Vec<u64> = (1..ATTEMPTS).map(|n| retry_wait(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8]);
    }
}
