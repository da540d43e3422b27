//! The nouns of pushgate: sources, connections, events, rejections, statuses.
//!
//! Plain data with no I/O. Every other layer speaks in these types; the store maps them
//! to rows and the HTTP layer to JSON.
//!
//! One file: these are the types every layer shares, read together; forwarding's nouns are
//! in `model/forwarding.rs`, those of the jobs that run on one replica in `model/jobs.rs`,
//! Office 365 content fetching's in `model/fetches.rs`.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

mod catch_up;
mod fetches;
mod forwarding;
pub mod heartbeat;
mod jobs;

pub use catch_up::*;
pub use fetches::*;
pub use forwarding::*;
pub use heartbeat::{CountedHeartbeat, HeartbeatProof};
pub use jobs::*;

/// The kinds of sender pushgate can receive from (INTERFACE.md section 2): the name that
/// is stored. Everything else about a source (its route, default stream, config) is its
/// sender's, in `sources::SOURCES`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    AwsSns,
    AwsEventbridge,
    GcpPubsub,
    MsGraph,
    O365Activity,
    Webhook,
}

impl SourceKind {
    pub const ALL: [SourceKind; 6] = [
        SourceKind::AwsSns,
        SourceKind::AwsEventbridge,
        SourceKind::GcpPubsub,
        SourceKind::MsGraph,
        SourceKind::O365Activity,
        SourceKind::Webhook,
    ];

    /// The name used in the API, the database and the `verify --source` flag.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::AwsSns => "aws_sns",
            SourceKind::AwsEventbridge => "aws_eventbridge",
            SourceKind::GcpPubsub => "gcp_pubsub",
            SourceKind::MsGraph => "ms_graph",
            SourceKind::O365Activity => "o365_activity",
            SourceKind::Webhook => "webhook",
        }
    }

    pub fn parse(name: &str) -> Option<SourceKind> {
        SourceKind::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// What a stored event is, for consumers that route by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Alert,
    Telemetry,
    Lifecycle,
    /// An authentic body pushgate could not decode, kept whole (INTERFACE.md section 5).
    Raw,
}

impl EventKind {
    pub const ALL: [EventKind; 4] = [EventKind::Alert, EventKind::Telemetry, EventKind::Lifecycle, EventKind::Raw];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Alert => "alert",
            EventKind::Telemetry => "telemetry",
            EventKind::Lifecycle => "lifecycle",
            EventKind::Raw => "raw",
        }
    }

    pub fn parse(name: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// Health of a connection (INTERFACE.md section 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    RequiresAction,
    Connected,
    Paused,
    Error,
}

impl Status {
    pub const ALL: [Status; 4] = [Status::Connected, Status::RequiresAction, Status::Paused, Status::Error];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::RequiresAction => "requires_action",
            Status::Connected => "connected",
            Status::Paused => "paused",
            Status::Error => "error",
        }
    }

    pub fn parse(name: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// A connection as the store keeps it: settings, sealed secrets and the health facts.
#[derive(Debug, Clone, PartialEq)]
pub struct Connection {
    pub id: Uuid,
    pub tenant_id: String,
    pub name: String,
    pub source: SourceKind,
    pub stream: String,
    pub heartbeat_interval_seconds: Option<i64>,
    pub grace_seconds: i64,
    /// The configuration with every secret replaced by `"***"`: safe to show.
    pub config_public: Value,
    /// The full configuration, encrypted with the master key (see `crypto`).
    pub config_sealed: String,
    pub created_at: DateTime<Utc>,
    /// When it last became active: its creation, or the last resume after a pause. The
    /// time a new connection has to be confirmed counts from here.
    pub activated_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub facts: Facts,
    pub counters: Counters,
    pub canary: TaskOutcome,
    /// Subscription upkeep (Graph and Office 365 connections with `config.subscription`).
    pub upkeep: TaskOutcome,
    /// Office 365 audit content fetched after its notifications (`o365_activity`).
    pub fetch: FetchOutcome,
    /// Graph catch-up rounds (delta queries after lost notifications).
    pub catch_up: TaskOutcome,
}

impl Connection {
    /// pushgate keeps this connection's subscription itself: a Graph or Office 365
    /// connection with a `subscription` in its config (INTERFACE.md section 3, rows 2 and 3).
    pub fn subscription_upkept(&self) -> bool {
        matches!(self.source, SourceKind::MsGraph | SourceKind::O365Activity) && self.config_public.get("subscription").is_some()
    }
}

/// The outcome of a background task's runs for one connection: the canary heartbeat
/// publishes (connections with a `canary`) and the Graph and Office 365 subscription upkeeps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskOutcome {
    pub last_success_at: Option<DateTime<Utc>>,
    /// The last failure, kept after later successes so an intermittent fault stays visible.
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
}

/// Everything the health evaluation reads, all of it stored per connection.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    pub paused: bool,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub external_id: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub confirmation_url: Option<String>,
    pub subscription_lost_at: Option<DateTime<Utc>>,
    pub reauthorization_required_at: Option<DateTime<Utc>>,
    /// Graph reported notifications it could not deliver (lifecycle `missed`): data was
    /// lost upstream. Shown and announced, not part of the status.
    pub missed_at: Option<DateTime<Utc>>,
    /// The `missed_at` the monitor last entered in the status history and announced, so
    /// each report is entered once (`None`: none yet).
    pub missed_recorded_at: Option<DateTime<Utc>>,
    pub data_last_received_at: Option<DateTime<Utc>>,
    pub last_heartbeat_at: Option<DateTime<Utc>>,
    pub status_last_checked_at: Option<DateTime<Utc>>,
    /// The status and message the monitor last recorded (the base of its next transition).
    pub recorded_status: Option<Status>,
    pub recorded_message: Option<String>,
    /// Consecutive pushes rejected as unauthenticated since the last verified one.
    pub auth_failure_streak: i64,
    /// Fingerprint of the settings the subscription upkeep last created (Graph) or started (Office 365) a
    /// subscription with (`None`: created before fingerprints were kept, or never).
    pub upkeep_settings_hash: Option<String>,
    /// Why the subscription upkeep's calls are refused, when that says something
    /// about the connection (refused credentials, a failed validation), with no success
    /// since; and since when it is refused for that reason.
    pub upkeep_failure: Option<UpkeepFailure>,
    pub upkeep_failing_since: Option<DateTime<Utc>>,
}

/// What a refused call of the subscription upkeep says about the connection
/// (INTERFACE.md section 3, rows 2 and 3). Failures that say nothing about it (the vendor
/// unreachable, its 5xx, an answer pushgate cannot read) have no class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UpkeepFailure {
    /// The vendor refused the credentials or they lack a permission: the token request
    /// refused, or 401/403 from the API.
    Credentials,
    /// The vendor refused the subscription because its validation failed (it could not
    /// validate the notification URL), or its subscription no longer matches the
    /// connection (another notification URL, resource, change type or client state, or
    /// gone).
    Validation,
}

impl UpkeepFailure {
    /// The name that is stored.
    pub fn as_str(self) -> &'static str {
        match self {
            UpkeepFailure::Credentials => "credentials",
            UpkeepFailure::Validation => "validation",
        }
    }

    pub fn parse(name: &str) -> Option<UpkeepFailure> {
        [UpkeepFailure::Credentials, UpkeepFailure::Validation].into_iter().find(|f| f.as_str() == name)
    }
}

impl Facts {
    /// The vendor removed the subscription and no confirmation came after that: the rule
    /// health, the Graph upkeep and the Pub/Sub check share.
    pub fn subscription_lost(&self) -> bool {
        self.subscription_lost_at.is_some_and(|lost| self.confirmed_at.is_none_or(|confirmed| lost >= confirmed))
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    pub events: i64,
    pub heartbeats: i64,
    pub duplicates: i64,
    pub rejections: i64,
}

/// The settings of a new connection, validated, secrets already sealed.
#[derive(Debug, Clone)]
pub struct NewConnection {
    pub id: Uuid,
    pub tenant_id: String,
    pub name: String,
    pub source: SourceKind,
    pub stream: String,
    pub heartbeat_interval_seconds: Option<i64>,
    pub grace_seconds: i64,
    pub config_public: Value,
    pub config_sealed: String,
    pub created_at: DateTime<Utc>,
}

/// Settings an admin may change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct ConnectionUpdate {
    pub name: Option<String>,
    pub stream: Option<String>,
    pub heartbeat_interval_seconds: Option<Option<i64>>,
    pub grace_seconds: Option<i64>,
    /// New public and sealed configuration, always together.
    pub config: Option<(Value, String)>,
}

/// Filters of `GET /v1/connections`; status is applied after evaluation.
#[derive(Debug, Clone, Default)]
pub struct ConnectionFilter {
    pub tenant_id: Option<String>,
    pub source: Option<SourceKind>,
}

/// A change of a connection's subscription facts (INTERFACE.md section 3, "Confirmed").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscriptionChange {
    /// The subscription was confirmed now; `external_id` is the vendor's id for it (an SNS
    /// subscription ARN). A pending confirmation URL is cleared.
    Confirmed { external_id: Option<String> },
    /// A confirmation waits for an admin (SNS with `auto_confirm: false`).
    Pending { confirmation_url: String },
    /// The vendor reported the subscription gone (SNS `UnsubscribeConfirmation`) at `at`,
    /// the vendor's own time: a late retry of that report does not undo a confirmation
    /// made after it.
    Lost { at: DateTime<Utc> },
    /// A verified Graph notification named its subscription and expiry. It replaces the
    /// stored ones only when its expiry is later (a newer or renewed subscription), so a
    /// late retry from an old subscription changes nothing. A later expiry than a known
    /// one means the subscription was renewed, which reauthorizes it too; a later one
    /// under another id, or any other id after the subscription was removed, is a new
    /// subscription, which confirms the connection again.
    Observed { external_id: String, expires_at: Option<DateTime<Utc>> },
    /// Graph asked for subscription `subscription_id` to be reauthorized (lifecycle
    /// `reauthorizationRequired`) at `at`. It applies to the connection's current
    /// subscription only (or when none is known, which it then names): a late report
    /// about a subscription replaced since changes nothing.
    ReauthorizationRequired { at: DateTime<Utc>, subscription_id: String },
    /// Graph removed subscription `subscription_id` (lifecycle `subscriptionRemoved`),
    /// reported at `at` (arrival time: Graph sends no time of its own). Like a loss, for
    /// the current subscription only.
    Removed { at: DateTime<Utc>, subscription_id: String },
    /// A Graph validation request was answered. It carries no credential, so it only
    /// confirms a connection never confirmed before; it cannot undo a loss.
    Validated,
    /// pushgate created, renewed or reauthorized the Graph subscription: its id and expiry
    /// are now these, and no reauthorization is pending.
    Renewed { external_id: String, expires_at: DateTime<Utc> },
    /// Graph reported lost notifications (lifecycle `missed`) at `at`.
    Missed { at: DateTime<Utc> },
}

/// A subscription change and, when an event of the same push reported it, that event's
/// dedupe key: the change then applies only if the event is new (a replayed report
/// changes nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportedChange {
    pub change: SubscriptionChange,
    pub event_key: Option<String>,
}

impl ReportedChange {
    /// A change that applies whatever the push's events were.
    pub fn always(change: SubscriptionChange) -> ReportedChange {
        ReportedChange { change, event_key: None }
    }
}

/// A background task whose outcome is kept per connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackgroundTask {
    /// Canary heartbeat publishes.
    Canary,
    /// Subscription upkeep (Graph: create, renew, reauthorize; Office 365: list, start).
    Upkeep,
    /// Graph catch-up: a round of delta queries read to its end, or why it could not be.
    CatchUp,
}

/// One event as a sender produced it, before it is stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewEvent {
    pub dedupe_key: String,
    pub kind: EventKind,
    pub occurred_at: Option<DateTime<Utc>>,
    pub payload: Value,
}

/// One stored event (INTERFACE.md section 5).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredEvent {
    pub id: Uuid,
    pub connection_id: Uuid,
    pub tenant_id: String,
    pub source: SourceKind,
    pub stream: String,
    pub kind: EventKind,
    pub dedupe_key: String,
    pub occurred_at: Option<DateTime<Utc>>,
    pub received_at: DateTime<Utc>,
    pub payload: Value,
    /// Position in the store, used as the paging cursor; not part of the event shape.
    #[serde(skip)]
    pub seq: i64,
}

/// A refused request, kept so an operator can learn why.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRejection {
    pub connection_id: Option<Uuid>,
    pub at: DateTime<Utc>,
    pub reason: String,
    pub source_addr: Option<String>,
    pub detail: String,
    pub body_prefix: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredRejection {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub reason: String,
    pub source_addr: Option<String>,
    pub detail: String,
    pub body_prefix: String,
}

/// What an alert is about: a connection's health or a destination's delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertSubject {
    Connection(Uuid),
    Destination(Uuid),
}

/// The outcome of POSTing one status transition to the alert webhook.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertDelivery {
    pub subject: AlertSubject,
    /// When the transition happened.
    pub at: DateTime<Utc>,
    pub old_status: Option<String>,
    pub new_status: String,
    pub message: Option<String>,
    pub attempts: i64,
    pub delivered: bool,
    pub last_error: Option<String>,
    pub finished_at: DateTime<Utc>,
}

/// One change of a connection's status.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusChange {
    pub at: DateTime<Utc>,
    pub old_status: Option<Status>,
    pub new_status: Status,
    pub message: Option<String>,
}

/// How many events and how many heartbeats of one connection arrived (by their
/// `received_at`) in each hour of a window: what the dashboard's arrival chart draws.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HourlyArrivals {
    /// The start of the first hour.
    pub from: DateTime<Utc>,
    /// Events stored in each hour, the oldest hour first.
    pub events: Vec<i64>,
    /// Heartbeats counted in each hour, the oldest hour first.
    pub heartbeats: Vec<i64>,
}

/// The current time, at the microsecond precision both stores keep, so a value read
/// back equals the value written.
/// `sha256:` and the lowercase hex SHA-256 of `bytes`: the dedupe key of what its sender
/// gave no id (a webhook body, a raw event, an unwrapped Pub/Sub push), and of an id too
/// long to keep as it is.
pub fn content_key(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

pub fn now() -> DateTime<Utc> {
    use chrono::SubsecRound;
    Utc::now().trunc_subsecs(6)
}

/// RFC 3339 in UTC with a `Z`, microseconds when there are any: how every time in the
/// API, the stored-event shape and the forwarded records is written.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// The most bytes of a refused body that are kept with its rejection.
pub const BODY_PREFIX_LIMIT: usize = 4096;

/// Cuts a body to at most [`BODY_PREFIX_LIMIT`] bytes of text, never inside a character.
pub fn body_prefix(body: &[u8]) -> String {
    let head = &body[..body.len().min(BODY_PREFIX_LIMIT)];
    // NUL is replaced too: PostgreSQL text cannot hold it.
    let text = String::from_utf8_lossy(head).replace('\0', "\u{fffd}");
    if text.len() <= BODY_PREFIX_LIMIT {
        return text;
    }
    // Lossy decoding can grow the text (each bad byte becomes a 3-byte U+FFFD).
    let mut end = BODY_PREFIX_LIMIT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// Reads an optional field that, when present, must hold a value: `null` is refused, as
/// the schema and the API refuse it (serde's `Option` alone would take `null` as absent).
pub fn present<'de, D: serde::Deserializer<'de>, T: serde::Deserialize<'de>>(deserializer: D) -> Result<Option<T>, D::Error> {
    T::deserialize(deserializer).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_names_round_trip() {
        for s in SourceKind::ALL {
            assert_eq!(SourceKind::parse(s.as_str()), Some(s));
        }
        assert_eq!(SourceKind::parse("aws-sns"), None);
    }

    #[test]
    fn body_prefix_is_bounded_even_for_invalid_utf8() {
        let body = vec![0xffu8; 10_000];
        let p = body_prefix(&body);
        assert!(p.len() <= BODY_PREFIX_LIMIT);
        assert!(p.starts_with('\u{fffd}'));
        assert_eq!(body_prefix(b"hello"), "hello");
    }
}
