//! The `nats` sink: one JetStream publish per event, acknowledged by the server, with
//! `Nats-Msg-Id` = the event id, so JetStream drops a resent event within its duplicate
//! window. A batch is published pipelined (every message sent, then every ack awaited in
//! order), which is what makes a backlog drain fast. The stream that holds the subject
//! is the operator's; publishing to a subject no stream holds makes the destination
//! failing until one does.
//!
//! Pipelining has one cost: when the ack of one event fails (a timeout) while later ones
//! were stored, the retry stores the failed one after them (the later ones are dropped
//! as duplicates), so after such a failure the stream may hold a few events out of commit
//! order. Consumers that need strict order sort by the event's `received_at` within a
//! subject, or read the change feed.
//!
//! The connection is made at the first send and kept; the client reconnects by itself
//! (at most 4 s apart), and sends fail fast meanwhile, so the core's backoff decides
//! when to try again.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::context::{Context, PublishErrorKind};
use async_nats::jetstream::message::PublishMessage;
use async_nats::{ConnectErrorKind, ConnectOptions, Event, ServerError};
use tokio::sync::OnceCell;
use uuid::Uuid;

use super::{Failure, Limits, Record, Sink, SinkError};
use crate::forward::config::{NatsAuth, NatsConfig};

/// Events per pipelined batch, and its bytes.
const MAX_EVENTS: usize = 1000;
const MAX_BYTES: usize = 8 * 1_048_576;
/// How long an ack may take.
const ACK_TIMEOUT: Duration = Duration::from_secs(10);
/// A permissions violation the server reported this recently explains an ack that never came.
const VIOLATION_MEMORY: Duration = Duration::from_secs(60);

pub struct NatsSink {
    config: NatsConfig,
    connection: OnceCell<Context>,
    /// The last permissions violation the server reported, and when.
    violation: Arc<Mutex<Option<(Instant, String)>>>,
    secrets: Vec<String>,
}

impl NatsSink {
    pub fn new(config: NatsConfig) -> NatsSink {
        let secrets = crate::forward::config::SinkConfig::Nats(config.clone()).secrets();
        NatsSink { config, connection: OnceCell::new(), violation: Arc::default(), secrets }
    }

    async fn context(&self) -> Result<&Context, SinkError> {
        self.connection.get_or_try_init(|| self.connect()).await
    }

    async fn connect(&self) -> Result<Context, SinkError> {
        let violation = self.violation.clone();
        let mut options = ConnectOptions::new().name("pushgate").connection_timeout(Duration::from_secs(5)).event_callback(move |event| {
            let violation = violation.clone();
            async move {
                if let Event::ServerError(ServerError::Other(text)) = &event {
                    if text.to_ascii_lowercase().contains("permissions violation") {
                        if let Ok(mut seen) = violation.lock() {
                            *seen = Some((Instant::now(), text.clone()));
                        }
                    }
                }
                tracing::debug!(%event, "NATS connection event");
            }
        });
        options = match &self.config.auth {
            Some(NatsAuth::Token(token)) => options.token(token.expose().to_owned()),
            Some(NatsAuth::UserPassword { username, password }) => {
                options.user_and_password(username.clone(), password.expose().to_owned())
            }
            None => options,
        };
        let client = options.connect(self.config.url.as_str()).await.map_err(|e| {
            let message = format!("cannot connect to {}: {e}", self.config.url);
            match e.kind() {
                ConnectErrorKind::AuthorizationViolation | ConnectErrorKind::Authentication => SinkError::failing(self.scrub(&message)),
                _ => SinkError::transient(self.scrub(&message)),
            }
        })?;
        Ok(async_nats::jetstream::ContextBuilder::new().timeout(ACK_TIMEOUT).build(client))
    }

    fn scrub(&self, text: &str) -> String {
        super::scrub(text, &self.secrets)
    }

    /// A recent permissions violation, which explains acks that time out.
    fn recent_violation(&self) -> Option<String> {
        let seen = self.violation.lock().ok()?;
        seen.as_ref().filter(|(at, _)| at.elapsed() < VIOLATION_MEMORY).map(|(_, text)| text.clone())
    }

    fn publish_error(&self, subject: &str, error: &async_nats::jetstream::context::PublishError) -> SinkError {
        match error.kind() {
            PublishErrorKind::StreamNotFound => SinkError::failing(format!("no JetStream stream holds subject `{subject}`")),
            PublishErrorKind::MaxPayloadExceeded => SinkError::new(Failure::RefusedRecord, format!("refused by the NATS server: {error}")),
            PublishErrorKind::TimedOut => match self.recent_violation() {
                Some(violation) => SinkError::failing(format!("not allowed to publish to `{subject}`: {violation}")),
                None => SinkError::transient(format!("no acknowledgement for `{subject}` within {} s", ACK_TIMEOUT.as_secs())),
            },
            _ => {
                let text = error.to_string();
                let lower = text.to_ascii_lowercase();
                let failure = if lower.contains("message size exceeds") || lower.contains("maximum payload") {
                    Failure::RefusedRecord
                } else if lower.contains("maximum messages") || lower.contains("maximum bytes") || lower.contains("resource limits") {
                    // The stream is full and discards new messages: an operator must act.
                    Failure::Failing
                } else {
                    Failure::Transient
                };
                SinkError::new(failure, format!("publish to `{subject}` failed: {}", self.scrub(&text)))
            }
        }
    }
}

#[async_trait::async_trait]
impl Sink for NatsSink {
    fn limits(&self) -> Limits {
        Limits { max_events: MAX_EVENTS, max_bytes: MAX_BYTES, linger: Duration::ZERO, overhead_per_record: 0 }
    }

    async fn send(&self, _batch_id: Uuid, records: &[Record]) -> Result<(), SinkError> {
        let context = self.context().await?;
        let mut pending = Vec::with_capacity(records.len());
        // Publish everything first (each publish waits only for the client's buffer), then
        // collect the acks in order: the first failure says how many went through.
        for (i, record) in records.iter().enumerate() {
            let subject = self.config.subject.render(&record.event);
            let message = PublishMessage::build().message_id(record.event.id.to_string()).payload(record.json.clone());
            match context.send_publish(subject.clone(), message).await {
                Ok(ack) => pending.push((subject, ack)),
                Err(e) => {
                    let mut error = self.publish_error(&subject, &e);
                    // Acks of those sent before it are still awaited below.
                    for (j, (subject, ack)) in pending.into_iter().enumerate() {
                        if let Err(e) = ack.await {
                            let mut earlier = self.publish_error(&subject, &e);
                            earlier.accepted = j;
                            return Err(earlier);
                        }
                    }
                    error.accepted = i;
                    return Err(error);
                }
            }
        }
        for (i, (subject, ack)) in pending.into_iter().enumerate() {
            if let Err(e) = ack.await {
                let mut error = self.publish_error(&subject, &e);
                error.accepted = i;
                return Err(error);
            }
        }
        Ok(())
    }
}
