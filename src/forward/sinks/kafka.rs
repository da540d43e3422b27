//! The `kafka` sink: one record per event, produced by librdkafka's idempotent producer
//! with `acks=all`, header `pushgate-event-id` = the event id, key from the key template
//! and value = the event object. A batch is produced pipelined (every record handed to
//! librdkafka, then every acknowledgement awaited); `Ok` only once all are acknowledged.
//!
//! Ordering: the idempotent producer keeps each partition in the order records were
//! produced, even across its own retries. The key template picks the partition, so with
//! the default key (`{tenant_id}`) one tenant's events stay in commit order.
//!
//! librdkafka never gives up on a record (`message.timeout.ms=0`): a record handed to it
//! stays queued until a broker takes it. So this module keeps its own deadline on a
//! batch's acknowledgements (the destination turns failing meanwhile, with the last error
//! the client reported, e.g. "all brokers down"), and remembers the records still in
//! flight by event id: when the core retries them it awaits those same deliveries rather
//! than producing again, so an outage adds neither loss nor duplicates. After a fatal
//! producer error (the idempotent producer's state is lost) the producer is built anew.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::ClientContext;
use uuid::Uuid;

use super::{Failure, Limits, Record, Sink, SinkError};
use crate::forward::config::{KafkaConfig, KafkaTls, SinkConfig};

/// Events per pipelined batch, and its bytes.
const MAX_EVENTS: usize = 1000;
const MAX_BYTES: usize = 8 * 1_048_576;
/// The largest record librdkafka takes (its default, and Kafka brokers' default too).
const MAX_MESSAGE_BYTES: usize = 1_000_000;
/// How long a batch's acknowledgements may take before the send reports failure (the
/// records stay queued in librdkafka and are awaited again on the retry).
const ACK_DEADLINE: Duration = Duration::from_secs(15);
/// An error the client reported this recently explains acknowledgements that never came.
const CLIENT_ERROR_MEMORY: Duration = Duration::from_secs(60);
/// The header that carries the event id.
pub const EVENT_ID_HEADER: &str = "pushgate-event-id";

/// What the client last reported through its error callback, and when.
type LastError = Arc<Mutex<Option<(Instant, RDKafkaErrorCode, String)>>>;

/// Records librdkafka's global errors (brokers down, authentication failures), which
/// never reach a delivery while `message.timeout.ms=0`.
struct Context {
    last_error: LastError,
    secrets: Vec<String>,
}

impl ClientContext for Context {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        let message = super::scrub(message, &self.secrets);
        match level {
            RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical | RDKafkaLogLevel::Error => {
                tracing::warn!(facility, %message, "librdkafka")
            }
            _ => tracing::debug!(facility, %message, "librdkafka"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let code = error.rdkafka_error_code().unwrap_or(RDKafkaErrorCode::Unknown);
        let text = super::scrub(&format!("{error}: {reason}"), &self.secrets);
        tracing::debug!(%text, "kafka client error");
        if let Ok(mut last) = self.last_error.lock() {
            *last = Some((Instant::now(), code, text));
        }
    }
}

type Client = FutureProducer<Context>;

/// Where one record of the batch stands.
enum Slot {
    /// Handed to librdkafka; its acknowledgement is awaited.
    InFlight(DeliveryFuture),
    /// Acknowledged by the brokers.
    Delivered,
}

pub struct KafkaSink {
    config: KafkaConfig,
    client_config: ClientConfig,
    producer: Mutex<Option<Client>>,
    /// Records handed to librdkafka by an earlier send that did not finish, by event id.
    in_flight: Mutex<HashMap<Uuid, Slot>>,
    last_error: LastError,
    secrets: Vec<String>,
}

impl std::fmt::Debug for KafkaSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSink").field("brokers", &self.config.brokers).finish_non_exhaustive()
    }
}

/// librdkafka's settings for `config`.
fn client_config(config: &KafkaConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", config.brokers.join(","))
        .set("client.id", "pushgate")
        .set("acks", "all")
        .set("enable.idempotence", "true")
        // Never expire a record: pushgate decides how long to wait, and retries forever.
        .set("message.timeout.ms", "0")
        .set("message.max.bytes", MAX_MESSAGE_BYTES.to_string())
        .set("compression.codec", config.compression.as_str())
        .set("linger.ms", "5")
        .set("reconnect.backoff.ms", "100")
        .set("reconnect.backoff.max.ms", "2000")
        .set("socket.connection.setup.timeout.ms", "10000");
    let tls = config.tls.is_some();
    let protocol = match (&config.sasl, tls) {
        (Some(_), true) => "SASL_SSL",
        (Some(_), false) => "SASL_PLAINTEXT",
        (None, true) => "SSL",
        (None, false) => "PLAINTEXT",
    };
    c.set("security.protocol", protocol);
    if let Some(sasl) = &config.sasl {
        c.set("sasl.mechanism", sasl.mechanism.as_str()).set("sasl.username", &sasl.username).set("sasl.password", sasl.password.expose());
    }
    match &config.tls {
        Some(KafkaTls::SystemRoots) => {
            c.set("ssl.ca.location", "probe");
        }
        Some(KafkaTls::CaPem(pem)) => {
            c.set("ssl.ca.pem", pem);
        }
        None => {}
    }
    c
}

/// How the destination treats an error code librdkafka or a broker gave.
fn classify(code: RDKafkaErrorCode) -> Failure {
    use RDKafkaErrorCode as C;
    match code {
        C::MessageSizeTooLarge | C::InvalidMessageSize | C::MessageBatchTooLarge | C::InvalidRecord => Failure::RefusedRecord,
        C::UnknownTopicOrPartition
        | C::UnknownTopic
        | C::UnknownTopicId
        | C::TopicAuthorizationFailed
        | C::ClusterAuthorizationFailed
        | C::SaslAuthenticationFailed
        | C::Authentication
        | C::InvalidTopic
        | C::PolicyViolation => Failure::Failing,
        _ => Failure::Transient,
    }
}

impl KafkaSink {
    pub fn new(config: KafkaConfig) -> Result<KafkaSink, String> {
        let secrets = SinkConfig::Kafka(config.clone()).secrets();
        let client_config = client_config(&config);
        let sink = KafkaSink {
            config,
            client_config,
            producer: Mutex::new(None),
            in_flight: Mutex::default(),
            last_error: Arc::default(),
            secrets,
        };
        // Builds it once now, so a setting librdkafka refuses is a config error.
        let _producer = sink.producer().map_err(|e| e.message)?;
        Ok(sink)
    }

    fn scrub(&self, text: &str) -> String {
        super::scrub(text, &self.secrets)
    }

    /// The producer, built anew when the old one hit a fatal error.
    fn producer(&self) -> Result<Client, SinkError> {
        let mut slot = self.producer.lock().map_err(|_| SinkError::transient("the kafka producer lock is poisoned"))?;
        if let Some(p) = slot.as_ref() {
            match p.client().fatal_error() {
                None => return Ok(p.clone()),
                Some((code, text)) => {
                    tracing::warn!(?code, text = %self.scrub(&text), "kafka producer hit a fatal error; building a new one");
                    // Its queued records are gone with it: they are produced again.
                    self.in_flight.lock().map(|mut m| m.clear()).ok();
                }
            }
        }
        let context = Context { last_error: self.last_error.clone(), secrets: self.secrets.clone() };
        let producer: Client = self
            .client_config
            .create_with_context(context)
            .map_err(|e| SinkError::failing(format!("cannot set up the kafka producer: {}", self.scrub(&e.to_string()))))?;
        *slot = Some(producer.clone());
        Ok(producer)
    }

    /// The error the client reported recently, if any.
    fn recent_client_error(&self) -> Option<(RDKafkaErrorCode, String)> {
        let last = self.last_error.lock().ok()?;
        last.as_ref().filter(|(at, _, _)| at.elapsed() < CLIENT_ERROR_MEMORY).map(|(_, code, text)| (*code, text.clone()))
    }

    fn record_error(&self, topic: &str, error: &KafkaError, index: usize) -> SinkError {
        let failure = error.rdkafka_error_code().map(classify).unwrap_or(Failure::Transient);
        let what = match failure {
            Failure::RefusedRecord => "refused the record",
            _ => "did not take the record",
        };
        let mut e = SinkError::new(failure, format!("kafka {what} for topic `{topic}`: {}", self.scrub(&error.to_string())));
        e.accepted = index;
        e
    }

    /// Hands one record to librdkafka, waiting while its queue is full.
    async fn produce(&self, producer: &Client, record: &Record, deadline: tokio::time::Instant) -> Result<DeliveryFuture, KafkaError> {
        let topic = self.config.topic.render(&record.event);
        let key = self.config.key.render(&record.event);
        let id = record.event.id.to_string();
        loop {
            let headers = OwnedHeaders::new().insert(Header { key: EVENT_ID_HEADER, value: Some(id.as_bytes()) });
            let message = FutureRecord::to(&topic).key(key.as_bytes()).payload(record.json.as_ref()).headers(headers);
            match producer.send_result(message) {
                Ok(delivery) => return Ok(delivery),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err((e, _)) => return Err(e),
            }
        }
    }
}

#[async_trait::async_trait]
impl Sink for KafkaSink {
    fn limits(&self) -> Limits {
        Limits { max_events: MAX_EVENTS, max_bytes: MAX_BYTES, linger: Duration::ZERO, overhead_per_record: 0 }
    }

    async fn send(&self, _batch_id: Uuid, records: &[Record]) -> Result<(), SinkError> {
        let producer = self.producer()?;
        let deadline = tokio::time::Instant::now() + ACK_DEADLINE;
        // Records still in flight from an earlier attempt are awaited, not produced again;
        // any other remembered record is no longer wanted (delivered or dead-lettered).
        let mut remembered = std::mem::take(&mut *self.in_flight.lock().map_err(|_| SinkError::transient("lock poisoned"))?);
        let mut slots: Vec<Option<Slot>> = records.iter().map(|r| remembered.remove(&r.event.id)).collect();
        drop(remembered);

        // Produce every record not already in flight, in order.
        let mut refused = None;
        for (i, record) in records.iter().enumerate() {
            if slots[i].is_some() {
                continue;
            }
            match self.produce(&producer, record, deadline).await {
                Ok(delivery) => slots[i] = Some(Slot::InFlight(delivery)),
                Err(e) => {
                    refused = Some(self.record_error(&self.config.topic.render(&record.event), &e, i));
                    break;
                }
            }
        }

        // Await every acknowledgement, until the deadline.
        let mut first_error: Option<SinkError> = None;
        let mut timed_out = false;
        for (i, slot) in slots.iter_mut().enumerate() {
            let Some(Slot::InFlight(delivery)) = slot else { continue };
            if timed_out {
                continue;
            }
            match tokio::time::timeout_at(deadline, &mut *delivery).await {
                Err(_) => timed_out = true,
                Ok(Ok(Ok(_))) => *slot = Some(Slot::Delivered),
                Ok(Ok(Err((e, _)))) => {
                    *slot = None;
                    if first_error.is_none() {
                        first_error = Some(self.record_error(&self.config.topic.render(&records[i].event), &e, i));
                    }
                }
                Ok(Err(_canceled)) => {
                    *slot = None;
                    if first_error.is_none() {
                        let mut e = SinkError::transient("the kafka producer went away before the record was acknowledged");
                        e.accepted = i;
                        first_error = Some(e);
                    }
                }
            }
        }

        let all_delivered = slots.iter().all(|s| matches!(s, Some(Slot::Delivered)));
        if all_delivered {
            return Ok(());
        }
        // Keep what is in flight or delivered for the retry of these records.
        let mut keep = self.in_flight.lock().map_err(|_| SinkError::transient("lock poisoned"))?;
        for (record, slot) in records.iter().zip(slots) {
            if let Some(slot) = slot {
                keep.insert(record.event.id, slot);
            }
        }
        drop(keep);

        // The earliest problem decides; `accepted` is the count of leading delivered
        // records only when a record itself was refused (the core then dead-letters it).
        let error = match (first_error, refused) {
            (Some(a), Some(b)) => Some(if a.accepted <= b.accepted { a } else { b }),
            (a, b) => a.or(b),
        };
        match error {
            Some(e) if e.failure == Failure::RefusedRecord => {
                // Records before it must be delivered before the core moves past it.
                if timed_out {
                    return Err(self.deadline_error());
                }
                Err(e)
            }
            Some(e) => {
                // Retried whole: records already delivered are remembered, not resent.
                let mut e = self.explained(e, |text| format!(" ({text})"));
                e.accepted = 0;
                Err(e)
            }
            None => Err(self.deadline_error()),
        }
    }
}

impl KafkaSink {
    /// The error for acknowledgements that did not come in time, saying why if the client told.
    fn deadline_error(&self) -> SinkError {
        let wait =
            format!("no acknowledgement from the kafka brokers ({}) within {} s", self.config.brokers.join(", "), ACK_DEADLINE.as_secs());
        self.explained(SinkError::transient(wait), |text| format!(": {text}"))
    }

    /// A transient failure with the client's recent error added (`how` formats it), and
    /// made `Failing` when that error is the operator's to fix (refused credentials).
    fn explained(&self, e: SinkError, how: impl Fn(&str) -> String) -> SinkError {
        if e.failure != Failure::Transient {
            return e;
        }
        match self.recent_client_error() {
            Some((code, text)) => {
                let failure = if classify(code) == Failure::Failing { Failure::Failing } else { Failure::Transient };
                SinkError { failure, message: format!("{}{}", e.message, how(&text)), ..e }
            }
            None => e,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::model::DestinationKind;

    fn parse(config: serde_json::Value) -> KafkaConfig {
        match SinkConfig::parse(DestinationKind::Kafka, &config).unwrap() {
            SinkConfig::Kafka(k) => k,
            _ => unreachable!(),
        }
    }

    #[test]
    fn the_producer_is_idempotent_acks_all_and_never_expires_a_record() {
        let c = client_config(&parse(json!({"brokers": ["a:9092", "b:9093"], "compression": "lz4"})));
        for (key, value) in [
            ("bootstrap.servers", "a:9092,b:9093"),
            ("acks", "all"),
            ("enable.idempotence", "true"),
            ("message.timeout.ms", "0"),
            ("compression.codec", "lz4"),
            ("linger.ms", "5"),
            ("security.protocol", "PLAINTEXT"),
        ] {
            assert_eq!(c.get(key), Some(value), "{key}");
        }
        assert_eq!(c.get("sasl.password"), None);
        assert_eq!(client_config(&parse(json!({"brokers": ["a:1"]}))).get("compression.codec"), Some("zstd"));
    }

    #[test]
    fn sasl_and_tls_map_to_the_security_protocol() {
        let sasl = json!({"mechanism": "SCRAM-SHA-512", "username": "svc", "password": "hunter2-secret"});
        let c = client_config(&parse(json!({"brokers": ["a:1"], "sasl": sasl})));
        assert_eq!(c.get("security.protocol"), Some("SASL_PLAINTEXT"));
        assert_eq!(
            (c.get("sasl.mechanism"), c.get("sasl.username"), c.get("sasl.password")),
            (Some("SCRAM-SHA-512"), Some("svc"), Some("hunter2-secret"))
        );
        let c = client_config(&parse(json!({"brokers": ["a:1"], "sasl": sasl, "tls": true})));
        assert_eq!((c.get("security.protocol"), c.get("ssl.ca.location")), (Some("SASL_SSL"), Some("probe")));
        let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        let c = client_config(&parse(json!({"brokers": ["a:1"], "tls": {"ca_pem": pem}})));
        assert_eq!((c.get("security.protocol"), c.get("ssl.ca.pem"), c.get("ssl.ca.location")), (Some("SSL"), Some(pem), None));
    }

    #[test]
    fn the_sink_never_shows_its_password() {
        let config =
            parse(json!({"brokers": ["127.0.0.1:1"], "sasl": {"mechanism": "PLAIN", "username": "svc", "password": "hunter2-secret"}}));
        let sink = KafkaSink::new(config).unwrap();
        assert!(!format!("{sink:?}").contains("hunter2"));
        let scrubbed = sink.scrub("SASL authentication error: bad password hunter2-secret");
        assert!(!scrubbed.contains("hunter2"), "{scrubbed}");
    }

    #[test]
    fn errors_are_classified_by_what_the_operator_must_do() {
        use RDKafkaErrorCode as C;
        for code in [C::MessageSizeTooLarge, C::InvalidMessageSize, C::MessageBatchTooLarge] {
            assert_eq!(classify(code), Failure::RefusedRecord, "{code:?}");
        }
        for code in [
            C::UnknownTopicOrPartition,
            C::UnknownTopic,
            C::TopicAuthorizationFailed,
            C::ClusterAuthorizationFailed,
            C::SaslAuthenticationFailed,
            C::Authentication,
            C::InvalidTopic,
        ] {
            assert_eq!(classify(code), Failure::Failing, "{code:?}");
        }
        for code in
            [C::AllBrokersDown, C::MessageTimedOut, C::NotEnoughReplicas, C::BrokerTransportFailure, C::QueueFull, C::LeaderNotAvailable]
        {
            assert_eq!(classify(code), Failure::Transient, "{code:?}");
        }
    }

    #[tokio::test]
    async fn a_record_larger_than_the_producer_takes_is_refused_at_its_index() {
        let sink = KafkaSink::new(parse(json!({"brokers": ["127.0.0.1:1"], "compression": "none"}))).unwrap();
        let error = sink.record_error("t", &KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge), 3);
        assert_eq!((error.failure, error.accepted), (Failure::RefusedRecord, 3));
        let error = sink.record_error("t", &KafkaError::MessageProduction(RDKafkaErrorCode::UnknownTopicOrPartition), 2);
        assert_eq!(error.failure, Failure::Failing);
    }
}
