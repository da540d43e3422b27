//! The event stores pushgate ships to, one module each behind [`Sink`]. A sink only sends:
//! batching, retries, splitting refused batches, dead letters and positions are the
//! forwarding core's (`forward::delivery`, `forward::worker`), so a new kind of store is
//! one module here plus one line in [`build`].

pub mod http;
pub mod kafka;
pub mod nats;
pub mod s3;

use std::time::Duration;

use bytes::Bytes;
use uuid::Uuid;

use super::config::SinkConfig;
use crate::model::EventRecord;

/// One event ready to ship: its fields (for subjects, topics and wrappers) and its event
/// object of INTERFACE.md section 5, serialized once.
#[derive(Debug, Clone)]
pub struct Record {
    pub event: EventRecord,
    pub json: Bytes,
}

impl Record {
    pub fn new(event: EventRecord) -> Record {
        let json = Bytes::from(event.to_json());
        Record { event, json }
    }
}

/// How much one send may carry, and how long a batch that is not full may wait for more
/// events (zero: send at once). A store that wants few large objects (an archive) waits;
/// a bus does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_events: usize,
    pub max_bytes: usize,
    pub linger: Duration,
    /// Bytes the sink adds to each record's event object (a wrapper, a separator), so a
    /// batch stays under `max_bytes` as sent.
    pub overhead_per_record: usize,
}

/// Why a send did not deliver everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Unreachable, timed out, overloaded (408, 429, 5xx): retry with backoff.
    Transient,
    /// The store refuses pushgate itself (credentials, permissions, 404, no stream for the
    /// subject): the destination is failing until an operator fixes it; retried at the
    /// capped interval.
    Failing,
    /// The store refused the request as a whole (400, 413, 422) without saying which
    /// record: the batch is split until the refused records are found.
    RefusedBatch,
    /// The store refused the record at index `accepted` (and accepted those before it).
    RefusedRecord,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkError {
    pub failure: Failure,
    /// What the store answered or what went wrong, without secrets.
    pub message: String,
    pub retry_after: Option<Duration>,
    /// How many leading records the store accepted before it failed or refused.
    pub accepted: usize,
}

impl SinkError {
    pub fn new(failure: Failure, message: impl Into<String>) -> SinkError {
        SinkError { failure, message: message.into(), retry_after: None, accepted: 0 }
    }

    pub fn transient(message: impl Into<String>) -> SinkError {
        SinkError::new(Failure::Transient, message)
    }

    pub fn failing(message: impl Into<String>) -> SinkError {
        SinkError::new(Failure::Failing, message)
    }
}

#[async_trait::async_trait]
pub trait Sink: Send + Sync {
    fn limits(&self) -> Limits;

    /// Sends `records` (in commit order) as batch `batch_id`; the same id on every retry of
    /// the same records. `Ok` only once the store acknowledged every one of them.
    async fn send(&self, batch_id: Uuid, records: &[Record]) -> Result<(), SinkError>;
}

/// The sink a destination's typed config describes; `destination_id` names what it writes
/// where the store keeps it (S3 object keys).
pub fn build(config: SinkConfig, destination_id: Uuid) -> Result<Box<dyn Sink>, String> {
    Ok(match config {
        SinkConfig::Nats(c) => Box::new(nats::NatsSink::new(c)),
        SinkConfig::Http(c) => Box::new(http::HttpSink::new(c)?),
        SinkConfig::Kafka(c) => Box::new(kafka::KafkaSink::new(c)?),
        SinkConfig::S3(c) => Box::new(s3::S3Sink::new(c, destination_id)?),
    })
}

/// A UUID (version 8) made from the first 16 bytes of a SHA-256 over `parts`, one after
/// the other: the stable id of something derived from a batch (a part of it, one object
/// of it), the same on every retry. Parts of varying length carry their length first.
pub fn derived_id(parts: &[&[u8]]) -> Uuid {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    for part in parts {
        hash.update(part);
    }
    let digest = hash.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    Uuid::new_v8(bytes)
}

/// `text` with every secret replaced by `***` (an error from a client library may repeat
/// what it was given).
pub fn scrub(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_owned();
    // Longest first, so a secret that contains another is replaced whole.
    let mut secrets: Vec<&String> = secrets.iter().filter(|s| !s.is_empty()).collect();
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for secret in secrets {
        out = out.replace(secret.as_str(), "***");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_takes_out_every_secret() {
        let secrets = vec!["pw".to_owned(), "dXNlcjpwdw==".to_owned(), "x-token-1".to_owned()];
        assert_eq!(scrub("Basic dXNlcjpwdw== and pw, x-token-1!", &secrets), "Basic *** and ***, ***!");
    }
}
