//! The SNS sender (`POST /push/aws-sns/{id}`): authentication by [`super::verify`], then
//! what each message type asks for.
//!
//! - `SubscriptionConfirmation` → a [`Handshake`] the ingest answers by confirming (or, with
//!   `auto_confirm: false`, by keeping the SubscribeURL for an admin).
//! - `UnsubscribeConfirmation` → the subscription is lost; the message is stored as a
//!   `lifecycle` event (without its token and SubscribeURL, which could re-subscribe us).
//! - `Notification` → its `Message` decoded as an EventBridge event ([`crate::sources::eventbridge`]):
//!   findings become alerts, a `Scheduled Event` is a heartbeat. Dedupe key: `MessageId`.

use std::sync::Arc;

use serde_json::{json, Value};

use super::certs::CertStore;
use super::envelope::{Envelope, MessageType};
use crate::model::{EventKind, NewEvent, SubscriptionChange};
use crate::sources::eventbridge::{self, Decoded};
use crate::sources::{ConnectionConfig, Handshake, Intake, RawRequest, Rejected, Sender, Verified};

pub struct SnsSender {
    certs: Arc<CertStore>,
}

impl SnsSender {
    pub fn new(certs: Arc<CertStore>) -> SnsSender {
        SnsSender { certs }
    }
}

/// The connection's allowed topics (validated when saved).
fn allowed_topics(config: &Value) -> Vec<String> {
    config
        .get("topic_arns")
        .and_then(Value::as_array)
        .map(|arns| arns.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default()
}

/// The topics of `config`, as prepared when the connection was loaded, else read now.
fn topics_of(config: &ConnectionConfig) -> std::borrow::Cow<'_, [String]> {
    match config.prepared::<Vec<String>>() {
        Some(topics) => std::borrow::Cow::Borrowed(topics.as_slice()),
        None => std::borrow::Cow::Owned(allowed_topics(config)),
    }
}

#[async_trait::async_trait]
impl Sender for SnsSender {
    fn prepare(&self, config: &Value) -> Option<Box<dyn std::any::Any + Send + Sync>> {
        Some(Box::new(allowed_topics(config)))
    }

    async fn verify<'a>(&self, request: RawRequest<'a>, config: &ConnectionConfig) -> Result<Verified<'a>, Rejected> {
        let topics = topics_of(config);
        let envelope = super::verify::authenticate(request.body, request.headers, request.now, &topics, &self.certs).await?;
        Ok(Verified::new(request, Some(envelope.message_id().to_owned())))
    }

    fn normalize(&self, verified: &Verified<'_>, config: &ConnectionConfig) -> Result<Intake, Rejected> {
        // Already parsed once during verification; parsing again keeps `Verified` small.
        let envelope = Envelope::parse(verified.request().body)?;
        match envelope.message_type() {
            MessageType::SubscriptionConfirmation => {
                let (Some(subscribe_url), Some(token)) = (envelope.subscribe_url(), envelope.token()) else {
                    return Err(Rejected::undecodable("sns_confirmation_incomplete", "the confirmation has no SubscribeURL or Token"));
                };
                Ok(Intake::Handshake(Handshake::SnsSubscription {
                    region: envelope.region().to_owned(),
                    topic_arn: envelope.topic_arn().to_owned(),
                    subscribe_url: subscribe_url.to_owned(),
                    token: token.to_owned(),
                    message_id: envelope.message_id().to_owned(),
                    auto_confirm: config.get("auto_confirm").and_then(Value::as_bool) != Some(false),
                }))
            }
            MessageType::UnsubscribeConfirmation => Ok(Intake::Lifecycle {
                event: NewEvent {
                    dedupe_key: envelope.message_id().to_owned(),
                    kind: EventKind::Lifecycle,
                    occurred_at: Some(envelope.sent_at()),
                    payload: json!({
                        "Type": "UnsubscribeConfirmation",
                        "MessageId": envelope.message_id(),
                        "TopicArn": envelope.topic_arn(),
                        "Message": envelope.message(),
                        "Timestamp": envelope.timestamp(),
                    }),
                },
                change: SubscriptionChange::Lost { at: envelope.sent_at() },
            }),
            MessageType::Notification => Ok(match eventbridge::decode_message(envelope.message(), envelope.message_id()) {
                Decoded::Heartbeat => Intake::Heartbeat,
                Decoded::Events(events) => Intake::events(events),
            }),
        }
    }
}
