//! pushgate's own calls to Google Cloud Pub/Sub, through the official
//! `google-cloud-pubsub` crate: publishing canary heartbeats, and checking that a push
//! subscription still exists and still points at its connection. Pushes *from* Pub/Sub
//! are received by [`crate::sources`]; this module is the opposite direction, and the
//! only one that uses Google credentials.
//!
//! Credentials are Application Default Credentials; with an endpoint override
//! (`PUSHGATE_PUBSUB_ENDPOINT`, the emulator in tests) none are used.

pub mod check;

use std::collections::HashMap;
use std::sync::Mutex;

use google_cloud_pubsub::client::{Publisher, SubscriptionAdmin};
use google_cloud_pubsub::model::Message;
use tokio::sync::OnceCell;

/// Why a Pub/Sub call failed.
#[derive(Debug, thiserror::Error)]
pub enum GcpError {
    /// No Application Default Credentials (or a client that cannot be built).
    #[error("Pub/Sub client unavailable: {0}")]
    Client(String),
    /// The API answered with an error (permission denied, not found, ...).
    #[error("Pub/Sub refused the call: {0}")]
    Refused(String),
    /// Pub/Sub could not be reached or did not answer in time.
    #[error("Pub/Sub could not be reached: {0}")]
    Unreachable(String),
}

impl From<&google_cloud_pubsub::Error> for GcpError {
    fn from(e: &google_cloud_pubsub::Error) -> GcpError {
        if e.is_timeout() || e.is_io() || e.is_connect() || e.is_transport() {
            GcpError::Unreachable(e.to_string())
        } else if e.is_authentication() {
            GcpError::Client(e.to_string())
        } else {
            GcpError::Refused(e.to_string())
        }
    }
}

impl From<google_cloud_pubsub::error::PublishError> for GcpError {
    fn from(e: google_cloud_pubsub::error::PublishError) -> GcpError {
        match &e {
            google_cloud_pubsub::error::PublishError::Rpc(inner) => GcpError::from(inner.as_ref()),
            _ => GcpError::Unreachable(e.to_string()),
        }
    }
}

/// A push subscription as the check sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscriptionState {
    /// It exists; `push_endpoint` is where it pushes (empty for a pull subscription).
    Exists {
        push_endpoint: String,
    },
    Missing,
}

/// The longest a Publish or GetSubscription may take, retries included.
const CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

pub struct PubSubApi {
    endpoint: Option<String>,
    /// One publisher per topic: each holds a connection pool and a batching task.
    publishers: Mutex<HashMap<String, Publisher>>,
    admin: OnceCell<SubscriptionAdmin>,
}

impl PubSubApi {
    pub fn new(endpoint: Option<String>) -> PubSubApi {
        PubSubApi { endpoint, publishers: Mutex::default(), admin: OnceCell::new() }
    }

    /// Publishes one message and waits for Pub/Sub's message id.
    pub async fn publish(&self, topic: &str, data: Vec<u8>, attributes: &[(&str, &str)]) -> Result<String, GcpError> {
        let publisher = self.publisher(topic).await?;
        let mut message = Message::new().set_data(data);
        message = message.set_attributes(attributes.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        // The client retries for minutes; a canary's outcome must show well before its
        // heartbeat would be missed.
        match tokio::time::timeout(CALL_TIMEOUT, publisher.publish(message)).await {
            Ok(published) => Ok(published?),
            Err(_) => Err(GcpError::Unreachable(format!("no answer within {} s", CALL_TIMEOUT.as_secs()))),
        }
    }

    /// Whether `subscription` (`projects/P/subscriptions/S`) exists, and where it pushes.
    pub async fn subscription(&self, subscription: &str) -> Result<SubscriptionState, GcpError> {
        let admin = self.admin.get_or_try_init(|| self.build_admin()).await?;
        let call = admin.get_subscription().set_subscription(subscription).send();
        let answer = tokio::time::timeout(CALL_TIMEOUT, call)
            .await
            .map_err(|_| GcpError::Unreachable(format!("no answer within {} s", CALL_TIMEOUT.as_secs())))?;
        match answer {
            Ok(found) => Ok(SubscriptionState::Exists { push_endpoint: found.push_config.map(|p| p.push_endpoint).unwrap_or_default() }),
            Err(e) if e.status().is_some_and(|s| s.code == google_cloud_gax::error::rpc::Code::NotFound) => Ok(SubscriptionState::Missing),
            Err(e) => Err(GcpError::from(&e)),
        }
    }

    async fn publisher(&self, topic: &str) -> Result<Publisher, GcpError> {
        if let Some(p) = self.publishers.lock().unwrap_or_else(|p| p.into_inner()).get(topic) {
            return Ok(p.clone());
        }
        let mut builder = Publisher::builder(topic);
        if let Some(endpoint) = &self.endpoint {
            builder = builder.with_endpoint(endpoint).with_credentials(anonymous());
        }
        let publisher = builder.build().await.map_err(|e| GcpError::Client(e.to_string()))?;
        self.publishers.lock().unwrap_or_else(|p| p.into_inner()).insert(topic.to_owned(), publisher.clone());
        Ok(publisher)
    }

    async fn build_admin(&self) -> Result<SubscriptionAdmin, GcpError> {
        let mut builder = SubscriptionAdmin::builder();
        if let Some(endpoint) = &self.endpoint {
            builder = builder.with_endpoint(endpoint).with_credentials(anonymous());
        }
        builder.build().await.map_err(|e| GcpError::Client(e.to_string()))
    }
}

/// The emulator takes no credentials.
fn anonymous() -> google_cloud_auth::credentials::Credentials {
    google_cloud_auth::credentials::anonymous::Builder::new().build()
}
