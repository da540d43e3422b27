//! Alerts on status transitions: each transition the monitor records is POSTed as JSON
//! (`connection_id`, `tenant_id`, `name`, `old_status`, `new_status`, `message`, `at`) to
//! `PUSHGATE_ALERT_WEBHOOK_URL`, with `X-Pushgate-Signature: sha256=<hex HMAC-SHA256 of the
//! body>` under `PUSHGATE_ALERT_WEBHOOK_SECRET`.
//!
//! Sending never blocks the monitor (let alone ingestion): alerts wait in a bounded queue
//! and one task delivers them in order, retrying a failed delivery with exponential
//! backoff. Every delivery's outcome (attempts, delivered or the last error) is stored.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::mpsc;

use chrono::{DateTime, Utc};

use crate::config::AlertWebhook;
use crate::model::{now, rfc3339, AlertDelivery, AlertSubject, Connection, StatusChange};
use crate::store::Store;
use uuid::Uuid;

/// Alerts waiting at most; beyond, new ones are dropped (and logged).
const QUEUE: usize = 1024;
/// Attempts per alert, the first after `FIRST_RETRY`, each later one twice as late.
const ATTEMPTS: u32 = 5;
const FIRST_RETRY: Duration = Duration::from_secs(1);
const TIMEOUT: Duration = Duration::from_secs(10);

/// One transition to announce: of a connection's health, or of a destination's delivery.
#[derive(Debug, Clone)]
pub struct Alert {
    pub subject: AlertSubject,
    /// The connection's tenant; destinations belong to no tenant.
    pub tenant_id: Option<String>,
    pub name: String,
    pub at: DateTime<Utc>,
    pub old_status: Option<String>,
    pub new_status: String,
    pub message: Option<String>,
}

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

pub struct AlertSender {
    queue: mpsc::Sender<Alert>,
}

impl AlertSender {
    /// Starts the delivery task to `webhook`; it ends when `stop` turns true.
    pub fn start(webhook: AlertWebhook, store: Arc<dyn Store>, stop: tokio::sync::watch::Receiver<bool>) -> Result<AlertSender, String> {
        let client = crate::outbound::operator_client(TIMEOUT)?;
        let (queue, alerts) = mpsc::channel(QUEUE);
        tokio::spawn(deliver_all(alerts, Target { client, webhook }, store, stop));
        Ok(AlertSender { queue })
    }

    /// Queues an alert; never waits. A full queue drops it, with a warning.
    pub fn send(&self, alert: Alert) {
        if let Err(e) = self.queue.try_send(alert) {
            tracing::warn!(error = %e, "alert queue full or closed; an alert was dropped");
        }
    }
}

struct Target {
    client: reqwest::Client,
    webhook: AlertWebhook,
}

async fn deliver_all(
    mut alerts: mpsc::Receiver<Alert>,
    target: Target,
    store: Arc<dyn Store>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let alert = tokio::select! {
            next = alerts.recv() => match next { Some(a) => a, None => return },
            _ = stop.wait_for(|s| *s) => return,
        };
        let delivery = deliver(&target, &alert).await;
        if let Err(e) = store.record_alert_delivery(&delivery).await {
            tracing::warn!(subject = ?alert.subject, error = %e, "alert delivery outcome not recorded");
        }
    }
}

/// Delivers one alert, retrying with backoff; the outcome says how it went.
async fn deliver(target: &Target, alert: &Alert) -> AlertDelivery {
    let body = alert.body().to_string();
    let signature = signature(target.webhook.secret.expose(), body.as_bytes());
    let mut last_error = None;
    let mut attempts = 0;
    let mut wait = FIRST_RETRY;
    while attempts < ATTEMPTS {
        if attempts > 0 {
            tokio::time::sleep(wait).await;
            wait *= 2;
        }
        attempts += 1;
        let sent = target
            .client
            .post(&target.webhook.url)
            .header("content-type", "application/json")
            .header("x-pushgate-signature", &signature)
            .body(body.clone())
            .send()
            .await;
        match sent {
            Ok(answer) if answer.status().is_success() => {
                last_error = None;
                break;
            }
            Ok(answer) => last_error = Some(format!("the alert webhook answered {}", answer.status())),
            // Without the URL: it may hold a credential in its path.
            Err(e) => last_error = Some(format!("the alert webhook could not be reached: {}", e.without_url())),
        }
    }
    if let Some(e) = &last_error {
        tracing::warn!(subject = ?alert.subject, attempts, error = %e, "alert not delivered");
    }
    AlertDelivery {
        subject: alert.subject,
        at: alert.at,
        old_status: alert.old_status.clone(),
        new_status: alert.new_status.clone(),
        message: alert.message.clone(),
        attempts: i64::from(attempts),
        delivered: last_error.is_none(),
        last_error,
        finished_at: now(),
    }
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
}
