//! The nouns of forwarding (INTERFACE.md section 7): destinations, their filters and
//! positions in commit order, the records they ship, dead letters and leases.
//!
//! One file: these types are the vocabulary of one feature and are read together; the
//! inline tests pin their wire names.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;
use uuid::Uuid;

use super::{rfc3339, EventKind, SourceKind};

/// A place in commit order. PostgreSQL orders rows by the transaction that inserted them,
/// then by `seq` within it; SQLite has one writer, so `seq` alone is commit order and
/// `xid` is always 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    pub xid: i64,
    pub seq: i64,
}

impl Position {
    /// Before every event.
    pub const START: Position = Position { xid: 0, seq: 0 };

    /// The change feed's cursor text.
    pub fn cursor(self) -> String {
        format!("{}-{}", self.xid, self.seq)
    }

    /// Parses [`Position::cursor`] text; `None` for anything else.
    pub fn parse_cursor(text: &str) -> Option<Position> {
        let (xid, seq) = text.split_once('-')?;
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(xid) || !digits(seq) {
            return None;
        }
        Some(Position { xid: xid.parse().ok()?, seq: seq.parse().ok()? })
    }
}

/// The kinds of event store pushgate forwards to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DestinationKind {
    Nats,
    Http,
    Kafka,
    S3,
}

impl DestinationKind {
    pub const ALL: [DestinationKind; 4] = [DestinationKind::Nats, DestinationKind::Http, DestinationKind::Kafka, DestinationKind::S3];

    pub fn as_str(self) -> &'static str {
        match self {
            DestinationKind::Nats => "nats",
            DestinationKind::Http => "http",
            DestinationKind::Kafka => "kafka",
            DestinationKind::S3 => "s3",
        }
    }

    pub fn parse(name: &str) -> Option<DestinationKind> {
        DestinationKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// Where a new destination starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartFrom {
    /// Every retained event, then new ones.
    Earliest,
    /// Only events committed after the destination was created.
    Now,
}

impl StartFrom {
    pub fn as_str(self) -> &'static str {
        match self {
            StartFrom::Earliest => "earliest",
            StartFrom::Now => "now",
        }
    }

    pub fn parse(name: &str) -> Option<StartFrom> {
        match name {
            "earliest" => Some(StartFrom::Earliest),
            "now" => Some(StartFrom::Now),
            _ => None,
        }
    }
}

/// Which events a destination (or a read of the change feed) takes. An absent key takes
/// everything; a `streams` entry ending in `*` takes every stream with that prefix.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventFilter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_ids: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sources: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub streams: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kinds: Option<Vec<String>>,
}

impl EventFilter {
    pub fn matches(&self, tenant_id: &str, source: &str, stream: &str, kind: &str) -> bool {
        let listed = |list: &Option<Vec<String>>, value: &str| list.as_ref().is_none_or(|l| l.iter().any(|v| v == value));
        listed(&self.tenant_ids, tenant_id)
            && listed(&self.sources, source)
            && listed(&self.kinds, kind)
            && self.streams.as_ref().is_none_or(|l| l.iter().any(|p| stream_matches(p, stream)))
    }

    pub fn matches_record(&self, r: &EventRecord) -> bool {
        self.matches(&r.tenant_id, r.source.as_str(), &r.stream, r.kind.as_str())
    }
}

/// `pattern` is a stream name, or a prefix followed by `*`.
pub fn stream_matches(pattern: &str, stream: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => stream.starts_with(prefix),
        None => pattern == stream,
    }
}

/// A configured destination as the store keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct Destination {
    pub id: Uuid,
    pub name: String,
    pub kind: DestinationKind,
    pub filter: EventFilter,
    pub start_from: StartFrom,
    /// The configuration with every secret replaced by `"***"`: safe to show.
    pub config_public: Value,
    /// The full configuration, encrypted with the master key.
    pub config_sealed: String,
    pub paused: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Every matching event at or before it is delivered or dead-lettered.
    pub position: Position,
    /// The batch planned after `position` and not yet acknowledged.
    pub planned: Option<PlannedBatch>,
    pub lease: Option<LeaseHolder>,
    /// The last attempt to deliver failed.
    pub failing: bool,
    pub last_delivered_at: Option<DateTime<Utc>>,
    pub last_error: Option<LastError>,
    pub counters: DestinationCounters,
}

/// A batch whose range and id were stored before it was sent: a retry after a crash
/// resends the same records under the same id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlannedBatch {
    pub id: Uuid,
    /// The batch holds the matching events after the destination's position, up to here.
    pub end: Position,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseHolder {
    pub holder: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastError {
    pub at: DateTime<Utc>,
    pub message: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DestinationCounters {
    pub delivered: i64,
    pub dead_letters: i64,
    pub retries: i64,
    /// Events deleted by retention before this destination delivered them (it was paused
    /// or failing for longer than the backlog bound).
    pub expired: i64,
}

/// A new destination, validated, secrets sealed.
#[derive(Debug, Clone)]
pub struct NewDestination {
    pub id: Uuid,
    pub name: String,
    pub kind: DestinationKind,
    pub filter: EventFilter,
    pub start_from: StartFrom,
    pub config_public: Value,
    pub config_sealed: String,
    pub created_at: DateTime<Utc>,
}

/// Settings an admin may change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct DestinationUpdate {
    pub name: Option<String>,
    pub filter: Option<EventFilter>,
    /// New public and sealed configuration, always together.
    pub config: Option<(Value, String)>,
}

/// The right to deliver one destination, held by one process at a time. Every write of
/// the destination's position carries the generation, so a holder that lost the lease
/// (paused for longer than it lasts, say) can no longer move the position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub destination: Uuid,
    pub holder: String,
    pub generation: i64,
}

/// One stored event as it is forwarded and served by the change feed: the payload stays
/// the JSON text the store holds, so shipping it costs no parse into a tree.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventRecord {
    #[serde(skip)]
    pub position: Position,
    pub id: Uuid,
    pub connection_id: Uuid,
    pub tenant_id: String,
    pub source: SourceKind,
    pub stream: String,
    pub kind: EventKind,
    pub dedupe_key: String,
    #[serde(with = "opt_time")]
    pub occurred_at: Option<DateTime<Utc>>,
    #[serde(with = "time")]
    pub received_at: DateTime<Utc>,
    pub payload: Box<RawValue>,
}

impl EventRecord {
    /// The event object of INTERFACE.md section 5, as JSON bytes.
    pub fn to_json(&self) -> Vec<u8> {
        // Serializing owned strings and a raw payload into a Vec cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// Times as the rest of the API writes them (RFC 3339, `Z`, microseconds when present).
mod time {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::rfc3339(*t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&text).map(|t| t.with_timezone(&Utc)).map_err(serde::de::Error::custom)
    }
}

mod opt_time {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&super::rfc3339(*t)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(text) => DateTime::parse_from_rfc3339(&text).map(|t| Some(t.with_timezone(&Utc))).map_err(serde::de::Error::custom),
        }
    }
}

/// How many matching events a destination has not delivered yet, and the oldest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    pub events: i64,
    pub oldest_received_at: Option<DateTime<Utc>>,
}

/// A record a destination refused, kept with the answer it gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub id: i64,
    pub event_id: Uuid,
    pub at: DateTime<Utc>,
    pub reason: String,
    pub attempts: i64,
    /// The event object as it was sent (JSON text).
    pub record: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDeadLetter {
    pub event_id: Uuid,
    pub reason: String,
    pub attempts: i64,
    pub record: String,
}

/// The outcome of a planned batch, written in one transaction: the position moves to
/// `end`, the refused records are kept as dead letters, and the plan is cleared or
/// replaced by the `next` batch's (so a backlog costs one write per batch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletedBatch {
    pub end: Position,
    pub delivered: i64,
    pub dead_letters: Vec<NewDeadLetter>,
    pub next: Option<PlannedBatch>,
    pub at: DateTime<Utc>,
}

/// The outcome of replaying dead letters: those delivered are removed, those refused
/// again keep the new answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompletedReplay {
    pub delivered: Vec<i64>,
    pub refused: Vec<(i64, String)>,
}

/// One retention step over a window of events (`seq` in `(after, upto]`): events older
/// than `cutoff` are deleted unless a destination still holds them. A paused or failing
/// destination's hold ends for events older than `expire_before` (the backlog bound);
/// those are deleted and counted as expired on it. A running destination holds its
/// events however old: it is delivering them.
#[derive(Debug, Clone)]
pub struct PruneWindow {
    pub after_seq: i64,
    pub upto_seq: i64,
    pub cutoff: DateTime<Utc>,
    pub expire_before: DateTime<Utc>,
    pub holds: Vec<Hold>,
}

/// A destination's claim on events it has not delivered.
#[derive(Debug, Clone)]
pub struct Hold {
    pub destination: Uuid,
    pub position: Position,
    pub filter: EventFilter,
    /// Paused or failing: held at most until the backlog bound.
    pub bounded: bool,
}

/// What retention needs to know of an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionRow {
    pub position: Position,
    pub tenant_id: String,
    pub source: String,
    pub stream: String,
    pub kind: String,
    pub received_at: DateTime<Utc>,
}

impl PruneWindow {
    /// The events to delete (their `seq`) and, per destination, how many of them it had
    /// not delivered yet.
    pub fn decide(&self, rows: &[RetentionRow]) -> (Vec<i64>, Vec<(Uuid, u64)>) {
        let mut delete = Vec::new();
        let mut expired: Vec<(Uuid, u64)> = Vec::new();
        for row in rows.iter().filter(|r| r.received_at < self.cutoff) {
            let holders: Vec<&Hold> = self
                .holds
                .iter()
                .filter(|h| row.position > h.position && h.filter.matches(&row.tenant_id, &row.source, &row.stream, &row.kind))
                .collect();
            let kept = holders.iter().any(|h| !h.bounded || row.received_at >= self.expire_before);
            if kept {
                continue;
            }
            delete.push(row.position.seq);
            for h in holders {
                match expired.iter_mut().find(|(d, _)| *d == h.destination) {
                    Some((_, n)) => *n += 1,
                    None => expired.push((h.destination, 1)),
                }
            }
        }
        (delete, expired)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneOutcome {
    /// Events in the window older than the cutoff, held or not.
    pub old: u64,
    pub deleted: u64,
    /// Per destination, the events deleted before it delivered them.
    pub expired: Vec<(Uuid, u64)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_other_text() {
        let p = Position { xid: 812, seq: 40_001 };
        assert_eq!(Position::parse_cursor(&p.cursor()), Some(p));
        for bad in ["", "12", "-1-2", "1--2", "a-1", "1-2-3", "1-", " 1-2", "99999999999999999999-1"] {
            assert_eq!(Position::parse_cursor(bad), None, "{bad}");
        }
        assert!(Position { xid: 1, seq: 0 } > Position { xid: 0, seq: i64::MAX }, "transaction order comes first");
    }

    #[test]
    fn filters_take_what_they_name() {
        let all = EventFilter::default();
        assert!(all.matches("acme", "aws_sns", "cloud_aws", "alert"));
        let f = EventFilter {
            tenant_ids: Some(vec!["acme".into()]),
            sources: None,
            streams: Some(vec!["cloud_*".into(), "webhook_event".into()]),
            kinds: Some(vec!["alert".into()]),
        };
        assert!(f.matches("acme", "aws_sns", "cloud_aws_securityhub_alert", "alert"));
        assert!(f.matches("acme", "webhook", "webhook_event", "alert"));
        assert!(!f.matches("acme", "webhook", "webhook_events", "alert"), "no prefix without *");
        assert!(!f.matches("other", "aws_sns", "cloud_x", "alert"));
        assert!(!f.matches("acme", "aws_sns", "cloud_x", "telemetry"));
    }

    #[test]
    fn retention_keeps_what_a_destination_still_wants() {
        let at = |s: i64| DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap();
        let row = |seq, tenant: &str, t| RetentionRow {
            position: Position { xid: 0, seq },
            tenant_id: tenant.into(),
            source: "webhook".into(),
            stream: "webhook_event".into(),
            kind: "alert".into(),
            received_at: at(t),
        };
        let acme = EventFilter { tenant_ids: Some(vec!["acme".into()]), ..EventFilter::default() };
        let (running, paused) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let window = |bounded| PruneWindow {
            after_seq: 0,
            upto_seq: 10,
            cutoff: at(100),
            expire_before: at(50),
            holds: vec![Hold { destination: running, position: Position { xid: 0, seq: 2 }, filter: acme.clone(), bounded }],
        };
        let rows =
            [row(1, "acme", 10), row(2, "acme", 10), row(3, "acme", 10), row(4, "acme", 60), row(5, "other", 10), row(6, "acme", 200)];
        // Running: it holds seq 3 and 4 (after its position), however old.
        assert_eq!(window(false).decide(&rows), (vec![1, 2, 5], vec![]));
        // Paused or failing: its hold ends at the backlog bound (seq 3 goes, counted; seq 4 is younger).
        assert_eq!(window(true).decide(&rows), (vec![1, 2, 3, 5], vec![(running, 1)]));
        let mut both = window(true);
        both.holds.push(Hold { destination: paused, position: Position::START, filter: EventFilter::default(), bounded: true });
        assert_eq!(both.decide(&rows), (vec![1, 2, 3, 5], vec![(paused, 4), (running, 1)]));
    }

    #[test]
    fn a_record_serializes_as_the_stored_event_shape() {
        let record = EventRecord {
            position: Position { xid: 1, seq: 2 },
            id: Uuid::nil(),
            connection_id: Uuid::nil(),
            tenant_id: "acme".into(),
            source: SourceKind::Webhook,
            stream: "webhook_event".into(),
            kind: EventKind::Alert,
            dedupe_key: "k".into(),
            occurred_at: None,
            received_at: DateTime::from_timestamp(1_800_000_000, 123_000).unwrap(),
            payload: RawValue::from_string(r#"{"a": [1, 2]}"#.into()).unwrap(),
        };
        let text = String::from_utf8(record.to_json()).unwrap();
        assert_eq!(
            text,
            r#"{"id":"00000000-0000-0000-0000-000000000000","connection_id":"00000000-0000-0000-0000-000000000000","tenant_id":"acme","source":"webhook","stream":"webhook_event","kind":"alert","dedupe_key":"k","occurred_at":null,"received_at":"2027-01-15T08:00:00.000123Z","payload":{"a": [1, 2]}}"#
        );
        let back: EventRecord = serde_json::from_str(&text).unwrap();
        assert_eq!(back.received_at, record.received_at);
        assert_eq!(back.payload.get(), record.payload.get());
    }
}
