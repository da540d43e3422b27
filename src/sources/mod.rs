//! The senders. Each one turns a raw push (headers + the exact body bytes) into a
//! [`Verified`] proof, then into an [`Intake`] the ingest pipeline stores.
//!
//! A sender depends on `model` and `verify` only; it never touches the store or HTTP
//! types beyond the `http` crate's header map. A new sender is one module here plus one
//! line in [`Senders::get`].

pub mod aws_eventbridge;
pub mod aws_sns;
pub mod catalog;
pub mod config_check;
pub mod eventbridge;
pub mod gcp_pubsub;
pub mod ms_graph;
pub mod o365_activity;
pub mod webhook;

use chrono::{DateTime, Utc};
use http::HeaderMap;
use serde_json::Value;

use crate::model::{NewEvent, ReportedChange, SourceKind, SubscriptionChange};
pub(crate) use crate::verify::header;
pub use crate::verify::{RejectClass, Rejected};

/// One push as it arrived: nothing is parsed before verification. Its `Debug` shows
/// header names and the body length only: values and body may carry credentials.
#[derive(Clone, Copy)]
pub struct RawRequest<'a> {
    pub headers: &'a HeaderMap,
    pub query: Option<&'a str>,
    pub body: &'a [u8],
    /// The URL the sender pushed to (audiences are checked against it).
    pub push_url: &'a str,
    /// The clock of this check (fixed by `verify --at`).
    pub now: DateTime<Utc>,
}

impl std::fmt::Debug for RawRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawRequest")
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("body_len", &self.body.len())
            .field("push_url", &self.push_url)
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

/// Proof that a push passed its sender's authentication. Only this module's senders
/// can make one, so nothing unverified reaches `normalize`.
#[derive(Debug)]
pub struct Verified<'a> {
    request: RawRequest<'a>,
    /// A delivery id the sender signed or supplied, usable as a dedupe key.
    pub delivery_id: Option<String>,
    /// What the push decoded to, when verifying it meant decoding it already (a Graph
    /// batch is checked item by item, and a rich notification is authenticated by
    /// decrypting it).
    decoded: Option<Intake>,
}

impl<'a> Verified<'a> {
    pub(in crate::sources) fn new(request: RawRequest<'a>, delivery_id: Option<String>) -> Verified<'a> {
        Verified { request, delivery_id, decoded: None }
    }
    pub(in crate::sources) fn decoded(request: RawRequest<'a>, intake: Intake) -> Verified<'a> {
        Verified { request, delivery_id: None, decoded: Some(intake) }
    }
    /// The intake decoded during verification, if any.
    pub(in crate::sources) fn decoded_intake(&self) -> Option<&Intake> {
        self.decoded.as_ref()
    }
    pub fn request(&self) -> &RawRequest<'a> {
        &self.request
    }
}

/// What a verified push asks the store to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Intake {
    /// Events to store, each deduplicated on its key; `heartbeat` when the same push also
    /// carried a heartbeat (an EventBridge batch may hold both). `stream` names the event
    /// table the payload belongs to when the sender can tell (a Workspace alert arriving
    /// over Pub/Sub); it applies to connections that kept their source's default stream.
    Events { events: Vec<NewEvent>, heartbeat: bool, stream: Option<&'static str> },
    /// A heartbeat: updates `last_heartbeat_at`, is not stored as an event.
    Heartbeat,
    /// A subscription handshake the ingest answers before acknowledging.
    Handshake(Handshake),
    /// A change of the subscription itself, also stored as a `lifecycle` event.
    Lifecycle { event: NewEvent, change: SubscriptionChange },
    /// A batch whose items were checked one by one (Graph): the events of the items that
    /// verified, the subscription changes they report, and each item that failed.
    Batch(Batch),
}

/// The verified part of a batch, and why each other item was refused.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub events: Vec<NewEvent>,
    pub changes: Vec<ReportedChange>,
    pub refused: Vec<Rejected>,
}

impl Intake {
    /// Events only, no heartbeat.
    pub fn events(events: Vec<NewEvent>) -> Intake {
        Intake::Events { events, heartbeat: false, stream: None }
    }

    /// The `kind` of a `pushgate verify` report.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Intake::Events { .. } => "events",
            Intake::Heartbeat => "heartbeat",
            Intake::Handshake(_) => "handshake",
            Intake::Lifecycle { .. } => "lifecycle",
            // A batch of lifecycle notifications only is a lifecycle push.
            Intake::Batch(b) if !b.events.is_empty() && b.events.iter().all(|e| e.kind == crate::model::EventKind::Lifecycle) => {
                "lifecycle"
            }
            Intake::Batch(_) => "events",
        }
    }
}

/// A verified request to start a subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handshake {
    /// An SNS `SubscriptionConfirmation` from an allowed topic.
    /// `auto_confirm`: the connection confirms at once; `false` keeps the SubscribeURL for
    /// an admin (the sender reads it from its config).
    SnsSubscription { region: String, topic_arn: String, subscribe_url: String, token: String, message_id: String, auto_confirm: bool },
    /// A Graph validation request: the decoded `validationToken` is echoed back as
    /// `text/plain`, which tells Graph the endpoint is ours.
    GraphValidation { token: Vec<u8> },
    /// An Office 365 Management Activity webhook validation (`{"validationCode": ...}`).
    O365Validation,
}

/// A connection's full (unsealed) config, with what its sender read from it once, when
/// the connection was loaded ([`Sender::prepare`]): a push then checks against the parsed
/// settings instead of parsing the JSON again. Derefs to the JSON for everything else.
pub struct ConnectionConfig {
    json: Value,
    prepared: Option<Box<dyn std::any::Any + Send + Sync>>,
}

impl ConnectionConfig {
    /// `json` as `sender` reads it.
    pub fn load(sender: &dyn Sender, json: Value) -> ConnectionConfig {
        let prepared = sender.prepare(&json);
        ConnectionConfig { json, prepared }
    }

    /// A config with nothing prepared (a sender then reads the JSON itself).
    pub fn unprepared(json: Value) -> ConnectionConfig {
        ConnectionConfig { json, prepared: None }
    }

    /// What the sender prepared, when it prepared a `T`.
    pub fn prepared<T: 'static>(&self) -> Option<&T> {
        self.prepared.as_ref().and_then(|p| p.downcast_ref::<T>())
    }
}

impl std::ops::Deref for ConnectionConfig {
    type Target = Value;
    fn deref(&self) -> &Value {
        &self.json
    }
}

/// A sender: verification over the raw bytes, then decoding.
#[async_trait::async_trait]
pub trait Sender: Send + Sync {
    /// Reads a connection's config once, when the connection is loaded; what it returns is
    /// handed back on every push as [`ConnectionConfig::prepared`]. `None`: nothing to
    /// prepare, or a config that does not read (then `verify` refuses, in its own words).
    fn prepare(&self, _config: &Value) -> Option<Box<dyn std::any::Any + Send + Sync>> {
        None
    }

    /// Checks the push against the connection's full (unsealed) `config`.
    async fn verify<'a>(&self, request: RawRequest<'a>, config: &ConnectionConfig) -> Result<Verified<'a>, Rejected>;

    /// Decodes a verified push; failures here are [`RejectClass::Undecodable`].
    fn normalize(&self, verified: &Verified<'_>, config: &ConnectionConfig) -> Result<Intake, Rejected>;
}

/// Every sender pushgate has, built once with what they need (the SNS certificate store,
/// Google's and Microsoft's signing keys). The push route and `pushgate verify` use the
/// same registry, so they run the same code.
pub struct Senders {
    sns: aws_sns::SnsSender,
    pubsub: gcp_pubsub::PubSubSender,
    graph: ms_graph::GraphSender,
}

impl Senders {
    /// `sns_certs`: where SNS signing certificates come from (pinned, cached, fetched);
    /// `google_keys`: Google's OIDC keys for Pub/Sub push tokens; `microsoft_keys`:
    /// Microsoft's keys for Graph validation tokens.
    pub fn new(
        sns_certs: std::sync::Arc<aws_sns::certs::CertStore>,
        google_keys: std::sync::Arc<gcp_pubsub::keys::GoogleKeys>,
        microsoft_keys: std::sync::Arc<ms_graph::keys::MicrosoftKeys>,
    ) -> Senders {
        Senders {
            sns: aws_sns::SnsSender::new(sns_certs),
            pubsub: gcp_pubsub::PubSubSender::new(google_keys),
            graph: ms_graph::GraphSender::new(microsoft_keys),
        }
    }

    /// The sender of a source.
    pub fn get(&self, source: SourceKind) -> &dyn Sender {
        match source {
            SourceKind::Webhook => &webhook::WebhookSender,
            SourceKind::AwsSns => &self.sns,
            SourceKind::AwsEventbridge => &aws_eventbridge::EventBridgeSender,
            SourceKind::GcpPubsub => &self.pubsub,
            SourceKind::MsGraph => &self.graph,
            SourceKind::O365Activity => &o365_activity::O365ActivitySender,
        }
    }
}

/// A JSON value's type, for refusal details (never the value: it may be long or secret).
pub(crate) fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
