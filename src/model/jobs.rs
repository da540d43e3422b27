//! Background jobs that run on one replica at a time: the lease a replica holds on one
//! ([`JobLease`]), and the alerts waiting in the durable queue ([`Alert`],
//! [`QueuedAlert`]) that the holder of the `alerts` lease delivers.

use chrono::{DateTime, Utc};

use super::AlertSubject;

/// A replica's hold on a background job, as the store granted it. Each take is a new
/// `generation`: a write fenced with this lease changes nothing once another take (by
/// anyone) happened since.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobLease {
    pub job: String,
    pub holder: String,
    pub generation: i64,
}

/// One transition to announce: of a connection's health, or of a destination's delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub subject: AlertSubject,
    /// The connection's tenant; destinations belong to no tenant.
    pub tenant_id: Option<String>,
    pub name: String,
    pub at: DateTime<Utc>,
    pub old_status: Option<String>,
    pub new_status: String,
    pub message: Option<String>,
}

/// An alert in the durable queue, with how its delivery went so far.
#[derive(Debug, Clone, PartialEq)]
pub struct QueuedAlert {
    pub id: i64,
    pub alert: Alert,
    pub attempts: i64,
    /// Not to be tried before this (the backoff after a failed attempt).
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
}
