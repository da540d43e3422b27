//! The SNS sender (`POST /push/aws-sns/{id}`): authentication by [`super::verify`], then
//! what each message type asks for.
//!
//! - `SubscriptionConfirmation` → a [`Handshake`] the ingest answers by confirming (or, with
//!   `auto_confirm: false`, by keeping the SubscribeURL for an admin).
//! - `UnsubscribeConfirmation` → the subscription is lost; the message is stored as a
//!   `lifecycle` event (without its token and SubscribeURL, which could re-subscribe us).
//! - `Notification` → its `Message` decoded as an EventBridge event ([`crate::sources::aws_eventbridge::event`]):
//!   findings become alerts, a `Scheduled Event` is a heartbeat. Dedupe key: `MessageId`.
//!   A `Message` that is not JSON (a topic someone publishes text to) is undecodable: the
//!   `Message` alone, whole, is the `raw` event (`content_type` `text/plain`), keyed by
//!   the `MessageId`. The envelope around it is SNS transport, already checked.
//! - A confirmation without its `SubscribeURL` or `Token` cannot be answered: a refused
//!   handshake (a rejection, acknowledged), not data. It carries no event, and its token
//!   must not reach the stored events.

use std::sync::Arc;

use serde_json::{json, Value};

use super::certs::CertStore;
use super::envelope::{Envelope, MessageType};
use crate::model::{EventKind, HeartbeatProof, NewEvent, SubscriptionChange};
use crate::sources::aws_eventbridge::event::{self, Decoded};
use crate::sources::{Handshake, Intake, RawRequest, Rejected, Source, SourceSpec, Verified};

pub struct SnsSender {
    certs: Arc<CertStore>,
}

impl SnsSender {
    pub fn new(certs: Arc<CertStore>) -> SnsSender {
        SnsSender { certs }
    }
}

/// What an SNS push is checked against (the config was validated when saved).
pub struct Settings {
    /// The topics whose messages are accepted.
    topics: Vec<String>,
    /// Whether a subscription confirms as soon as its confirmation arrives.
    auto_confirm: bool,
}

#[async_trait::async_trait]
impl Source for SnsSender {
    type Settings = Settings;
    /// The authenticated envelope, parsed once.
    type Proof = Envelope;

    const SPEC: &'static SourceSpec = &super::SPEC;

    fn prepare(&self, config: &Value) -> Result<Settings, Rejected> {
        let topics = config
            .get("topic_arns")
            .and_then(Value::as_array)
            .map(|arns| arns.iter().filter_map(Value::as_str).map(str::to_owned).collect())
            .unwrap_or_default();
        Ok(Settings { topics, auto_confirm: config.get("auto_confirm").and_then(Value::as_bool) != Some(false) })
    }

    async fn verify<'a>(&self, request: RawRequest<'a>, settings: &Settings) -> Result<Verified<'a, Envelope>, Rejected> {
        let envelope = super::verify::authenticate(request.body, request.headers, request.now, &settings.topics, &self.certs).await?;
        Ok(Verified::new(request, envelope))
    }

    fn normalize(&self, verified: Verified<'_, Envelope>, settings: &Settings) -> Result<Intake, Rejected> {
        let (_, envelope) = verified.into_parts();
        match envelope.message_type() {
            MessageType::SubscriptionConfirmation => {
                let (Some(subscribe_url), Some(token)) = (envelope.subscribe_url(), envelope.token()) else {
                    return Err(Rejected::handshake_refused(
                        "sns_confirmation_incomplete",
                        "the confirmation has no SubscribeURL or Token",
                    ));
                };
                Ok(Intake::Handshake(Handshake::SnsSubscription {
                    region: envelope.region().to_owned(),
                    topic_arn: envelope.topic_arn().to_owned(),
                    subscribe_url: subscribe_url.to_owned(),
                    token: token.to_owned(),
                    message_id: envelope.message_id().to_owned(),
                    auto_confirm: settings.auto_confirm,
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
            MessageType::Notification => match event::decode_message(envelope.message(), envelope.message_id()) {
                // SNS signs its envelope, not the event inside: its MessageId and Timestamp
                // are what prove when the heartbeat was sent.
                Ok(Decoded::Heartbeat { .. }) => Ok(Intake::Heartbeat(HeartbeatProof::new(envelope.message_id(), envelope.sent_at()))),
                Ok(Decoded::Events(events)) => Ok(Intake::events(events)),
                Err(e) => Err(Rejected::undecodable("sns_message_not_json", format!("the notification's Message is not JSON: {e}"))
                    .keeping(envelope.message().as_bytes().to_vec(), Some("text/plain"))
                    .keyed(Some(envelope.message_id().to_owned()))),
            },
        }
    }
}
