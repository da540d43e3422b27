//! The Pub/Sub sender (`POST /push/gcp-pubsub/{id}`): the Google-signed OIDC token
//! ([`super::oidc`]) with the connection's audience (default: the push URL) and service
//! account email, then the subscription allow-list, then the message ([`super::envelope`],
//! [`super::decode`]).
//!
//! The `subscription` a push names is checked against the optional `subscriptions`
//! allow-list after the token (it is not signed, but only a holder of a valid token for
//! this connection can send it); a push that names none while a list is configured is
//! refused, since it cannot be shown to come from an allowed subscription.

use std::sync::Arc;

use serde_json::Value;

use super::decode::decode;
use super::envelope::PushMessage;
use super::keys::GoogleKeys;
use super::oidc::{verify_push_token, Expected};
use crate::model::HeartbeatProof;
use crate::sources::{Intake, RawRequest, Rejected, Source, SourceSpec, Verified};

pub struct PubSubSender {
    keys: Arc<GoogleKeys>,
}

impl PubSubSender {
    pub fn new(keys: Arc<GoogleKeys>) -> PubSubSender {
        PubSubSender { keys }
    }
}

/// The subscription a push names, from the wrapped body's `subscription` or the
/// unwrapped push's metadata header, without decoding anything else.
fn named_subscription(request: &RawRequest<'_>) -> Option<String> {
    if let Some(name) = crate::sources::header(request.headers, "x-goog-pubsub-subscription-name") {
        return Some(name.to_owned());
    }
    let body: Value = serde_json::from_slice(request.body).ok()?;
    body.get("subscription")?.as_str().map(str::to_owned)
}

/// What a Pub/Sub push is checked against.
pub struct Settings {
    /// The token's `email`.
    service_account_email: String,
    /// The token's audience, when not the push URL.
    audience: Option<String>,
    /// The subscriptions allowed to push, when the connection lists them.
    subscriptions: Option<Vec<String>>,
}

#[async_trait::async_trait]
impl Source for PubSubSender {
    type Settings = Settings;
    /// Nothing: the message id is read by `normalize`, which decodes the body once.
    type Proof = ();

    const SPEC: &'static SourceSpec = &super::SPEC;

    fn prepare(&self, config: &Value) -> Result<Settings, Rejected> {
        let text = |key: &str| config.get(key).and_then(Value::as_str).map(str::to_owned);
        let Some(service_account_email) = text("service_account_email") else {
            return Err(Rejected::config("the connection has no service_account_email"));
        };
        let subscriptions = config
            .get("subscriptions")
            .and_then(Value::as_array)
            .map(|list| list.iter().filter_map(Value::as_str).map(str::to_owned).collect());
        Ok(Settings { service_account_email, audience: text("audience"), subscriptions })
    }

    async fn verify<'a>(&self, request: RawRequest<'a>, settings: &Settings) -> Result<Verified<'a, ()>, Rejected> {
        let audience = settings.audience.as_deref().unwrap_or(request.push_url);
        let expected = Expected { audience, email: &settings.service_account_email };
        verify_push_token(request.headers, request.now, &expected, &self.keys).await?;
        if let Some(allowed) = &settings.subscriptions {
            // Read leniently and apart from decoding: a body too broken to decode still
            // names its subscription, and must not slip past the list by being broken.
            match named_subscription(&request) {
                Some(s) if allowed.contains(&s) => {}
                Some(s) => {
                    return Err(Rejected::unauthenticated(
                        "gcp_subscription_not_allowed",
                        format!("subscription {s} is not in the connection's `subscriptions`"),
                    ))
                }
                None => {
                    return Err(Rejected::unauthenticated(
                        "gcp_subscription_not_allowed",
                        "the push names no subscription, and the connection allows only those in `subscriptions`",
                    ))
                }
            }
        }
        Ok(Verified::new(request, ()))
    }

    fn normalize(&self, verified: Verified<'_, ()>, _settings: &Settings) -> Result<Intake, Rejected> {
        let request = verified.request();
        let message = PushMessage::from_request(request.headers, request.body)?;
        if message.is_heartbeat() {
            // Pub/Sub stamps `messageId` and `publishTime` when the message is published.
            return Ok(Intake::Heartbeat(HeartbeatProof { id: Some(message.message_id), signed_at: message.publish_time }));
        }
        let decoded = decode(&message);
        Ok(Intake::Events { events: vec![decoded.event], heartbeat: None, stream: decoded.stream_hint })
    }
}
