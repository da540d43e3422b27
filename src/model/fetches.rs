//! Office 365 audit content fetched after its notification was stored: what a content
//! notification asks to fetch ([`ContentFetch`]), a queued fetch as the fetch job reads it
//! ([`QueuedFetch`]), and what fetching did for a connection ([`FetchOutcome`]).

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Microsoft keeps a content blob this long after `contentCreated` when a notification
/// names no `contentExpiration`.
pub const CONTENT_LIFETIME: chrono::TimeDelta = chrono::TimeDelta::days(7);

/// A content blob a stored notification announced, to fetch in the background. It is
/// queued in the transaction that stores the notification, and only when that
/// notification is new (its event's dedupe key `event_key`): a repeated notification
/// queues nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentFetch {
    pub content_id: String,
    pub content_type: String,
    pub content_uri: String,
    pub content_created: Option<DateTime<Utc>>,
    /// `contentExpiration`, else [`CONTENT_LIFETIME`] after `contentCreated` (or after the
    /// notification arrived, when that is unreadable too).
    pub expires_at: DateTime<Utc>,
    pub event_key: String,
}

/// A pending fetch of the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedFetch {
    pub id: i64,
    pub connection_id: Uuid,
    pub content_id: String,
    pub content_type: String,
    pub content_uri: String,
    pub expires_at: DateTime<Utc>,
    /// Failed attempts so far.
    pub attempts: i64,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
}

/// What fetching audit content did for one connection (its `fetch` in the API).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchOutcome {
    /// When audit records were last fetched and stored.
    pub last_fetched_at: Option<DateTime<Utc>>,
    /// Audit records stored from fetched content (repeats excluded).
    pub records: i64,
    /// Content blobs waiting to be fetched.
    pub backlog: i64,
    /// Content blobs that expired before they could be fetched.
    pub expired: i64,
    /// The last failure, kept after later successes so an intermittent fault stays visible.
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
}
