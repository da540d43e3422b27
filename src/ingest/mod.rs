//! The ingest pipeline, the only place where senders and the store meet:
//! connection lookup (cached), verification over the raw bytes, normalization, then one
//! group-committed transaction. A push is acknowledged only after that commit.
//!
//! An authentic push that cannot be decoded is no refusal: it is stored whole as a `raw`
//! event (see `plan`) and counted in `pushgate_raw_events_total`.
//!
//! Every refused push is recorded as a rejection (rate-limited per connection, so a flood
//! cannot fill the disk) and counted, in the store and in `pushgate_rejections_total`.
//!
//! One file: a push's path from lookup to answer reads top to bottom here, with its
//! refusal records beside it; what is pure is in `plan`, the write queue in `group_commit`.

mod cache;
mod group_commit;
mod plan;

use std::num::NonZeroU32;
use std::sync::Arc;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use uuid::Uuid;

pub use cache::LoadedConnection;
pub use group_commit::{CommitError, GroupCommit};
pub use plan::{raw_event, sanitize};

use crate::aws::{ConfirmError, Confirmer};
use crate::crypto::MasterKey;
use crate::metrics::Metrics;
use crate::microsoft::{CatchUpHandle, UpkeepHandle};
use crate::model::{body_prefix, now, NewRejection, SourceKind, SubscriptionChange};
use crate::sources::{Handshake, RawRequest, RejectClass, Rejected, Senders};
use crate::store::{OpOutcome, Refused, Store, WriteOp};

/// Rejection rows kept per connection: a burst, then a steady trickle.
const REJECTIONS_PER_SECOND: u32 = 5;
const REJECTION_BURST: u32 = 50;

/// What a verified push became.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushAccepted {
    Stored {
        stored: u32,
        duplicates: u32,
    },
    /// A heartbeat that counted; `duplicate`: its id had counted before, so it changed
    /// nothing.
    Heartbeat {
        duplicate: bool,
    },
    /// A heartbeat that proves nothing (no id or signed time, or older than interval +
    /// grace): acknowledged, counted nothing, kept as a `heartbeat_not_fresh` rejection.
    HeartbeatNotFresh,
    /// Authenticated but undecodable: stored whole as a `raw` event (`stored` 0 and
    /// `duplicates` 1 for a retry), `reason` saying why it could not be decoded.
    StoredRaw {
        reason: &'static str,
        stored: u32,
        duplicates: u32,
    },
    /// Authenticated, but its subscription handshake could not be completed: recorded as
    /// a rejection and acknowledged (a retry cannot help).
    HandshakeRefused {
        reason: &'static str,
    },
    /// A subscription handshake was answered: the subscription is confirmed.
    Confirmed {
        subscription_arn: Option<String>,
    },
    /// A subscription confirmation is kept for an admin to confirm (`auto_confirm: false`).
    AwaitingConfirmation,
    /// A subscription lifecycle message was stored and applied.
    Lifecycle,
    /// A batch was stored in part: `refused` of its items failed their own checks and
    /// were kept as rejections.
    StoredPartly {
        stored: u32,
        duplicates: u32,
        refused: u32,
    },
    /// A validation request was answered; `echo` is what the sender expects back (the
    /// Graph `validationToken`), if anything.
    Validated {
        echo: Option<Vec<u8>>,
    },
}

/// Why a push was not acknowledged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    #[error("no connection has this id")]
    UnknownConnection,
    #[error("the connection is paused")]
    Paused,
    #[error("{0}")]
    Rejected(Rejected),
    #[error("the store is unavailable")]
    StoreUnavailable,
    #[error("too many pushes are waiting to be stored")]
    Overloaded,
}

/// Where a push came from, for the rejection record.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub source_addr: Option<String>,
}

pub struct Ingest {
    store: Arc<dyn Store>,
    senders: Senders,
    confirmer: Arc<Confirmer>,
    key: Arc<MasterKey>,
    connections: cache::ConnectionCache,
    writer: GroupCommit,
    rejection_limit: DefaultKeyedRateLimiter<Option<Uuid>>,
    metrics: Arc<Metrics>,
    /// Started when Graph reports a subscription needing pushgate's upkeep.
    graph_upkeep: UpkeepHandle,
    /// Started when Graph reports lost notifications (`missed`).
    graph_catch_up: CatchUpHandle,
}

impl Ingest {
    pub fn new(
        store: Arc<dyn Store>,
        key: Arc<MasterKey>,
        senders: Senders,
        confirmer: Arc<Confirmer>,
        metrics: Arc<Metrics>,
        graph_upkeep: UpkeepHandle,
        graph_catch_up: CatchUpHandle,
    ) -> Ingest {
        // SQLite serializes writers, so one batch at a time; PostgreSQL overlaps a few.
        let writers = if store.backend() == "postgres" { 4 } else { 1 };
        let quota = Quota::per_second(NonZeroU32::new(REJECTIONS_PER_SECOND).expect("non-zero"))
            .allow_burst(NonZeroU32::new(REJECTION_BURST).expect("non-zero"));
        Ingest {
            writer: GroupCommit::start(store.clone(), writers, 256, 8192),
            connections: cache::ConnectionCache::new(),
            rejection_limit: RateLimiter::keyed(quota),
            senders,
            confirmer,
            store,
            key,
            metrics,
            graph_upkeep,
            graph_catch_up,
        }
    }

    /// Forgets a cached connection after an admin changed or deleted it.
    pub fn invalidate(&self, id: Uuid) {
        self.connections.invalidate(id);
    }

    /// Verifies, decodes and stores one push to `/push/{route}/{id}`.
    pub async fn push(&self, route: SourceKind, id: Uuid, request: RawRequest<'_>, origin: &Origin) -> Result<PushAccepted, PushError> {
        let connection = match self.connection(id).await? {
            Some(c) if c.source == route => c,
            found => {
                // A real connection pushed to the wrong route is recorded on it; else on none.
                let on = found.map(|c| c.id);
                let detail = "no connection with this id for this route";
                self.refuse(Refusal::of(route, on, "unknown_connection", detail, request.body, origin)).await;
                return Err(PushError::UnknownConnection);
            }
        };
        if connection.paused {
            self.refuse(Refusal::of(route, Some(id), "paused", "the connection is paused", request.body, origin)).await;
            return Err(PushError::Paused);
        }
        let sender = self.senders.get(connection.source);
        let decoded = match sender.receive(request, &connection.config).await {
            Ok(decoded) => decoded,
            Err(rejected) => {
                let refusal = Refusal::of(route, Some(id), rejected.reason, &rejected.detail, request.body, origin);
                let unauthenticated = matches!(rejected.class, RejectClass::Unauthenticated | RejectClass::Malformed);
                self.refuse(Refusal { unauthenticated, ..refusal }).await;
                return Err(PushError::Rejected(rejected));
            }
        };
        let content_type = request.headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
        let arrived = plan::Arrived { received_at: request.now, body: request.body, content_type };
        let mut plan = match plan::plan(decoded, &connection, &arrived) {
            Ok(plan) => plan,
            Err(rejected) => return Err(self.refuse_decoded(route, id, rejected, request.body, origin).await),
        };
        // A handshake is answered before the write (it may call the cloud).
        if let Some(handshake) = plan.handshake.take() {
            match self.answer_handshake(handshake).await {
                Ok((change, answer)) => plan.answered(change, answer),
                Err(rejected) => match plan.keep_if_authentic(rejected, &arrived) {
                    Ok(kept) => plan = kept,
                    Err(rejected) => return Err(self.refuse_decoded(route, id, rejected, request.body, origin).await),
                },
            }
        }
        if let Some(rejected) = &plan.refused_handshake {
            plan.accepted.kept_rejections = vec![self.acknowledged_refusal(route, id, rejected, request.body, origin)];
        }
        let refused_items = plan.refused_items.len() as u32;
        if refused_items > 0 {
            // One body prefix for every refused item of the push: masking re-reads the body.
            let prefix = record_prefix(request.body);
            plan.accepted.kept_rejections =
                plan.refused_items.iter().filter_map(|r| self.refused_item(route, id, r, &prefix, origin)).collect();
        }
        // A heartbeat that proves nothing is kept beside whatever the push stored.
        if let Some(rejected) = &plan.stale_heartbeat {
            plan.accepted.kept_rejections.push(self.acknowledged_refusal(route, id, rejected, request.body, origin));
        }
        // A reauthorization request or a removal is for the upkeep to answer, now rather
        // than at its next pass (it works in the background, off this push's path).
        let for_upkeep = plan.for_upkeep();
        let for_catch_up = plan.for_catch_up();
        let outcome = self.writer.submit(WriteOp::Accept(plan.accepted)).await;
        if for_upkeep && outcome.as_ref().is_ok_and(plan::stored_any) {
            self.graph_upkeep.nudge(id);
        }
        if for_catch_up && outcome.as_ref().is_ok_and(plan::stored_any) {
            self.graph_catch_up.nudge();
        }
        match outcome {
            Ok(OpOutcome::Accepted { stored, duplicates }) => {
                if plan.raw_events > 0 {
                    tracing::info!(connection = %id, raw_events = plan.raw_events, "authentic but undecodable: stored whole as raw events");
                    self.metrics.raw_events(route.as_str(), plan.raw_events);
                }
                Ok(plan::Plan::answer_after(plan.answer, refused_items, stored, duplicates))
            }
            Ok(OpOutcome::ConnectionGone) => Err(PushError::UnknownConnection),
            Ok(OpOutcome::Refused) => Err(PushError::StoreUnavailable),
            Err(CommitError::Overloaded) => Err(PushError::Overloaded),
            Err(CommitError::Failed(_) | CommitError::Closed) => Err(PushError::StoreUnavailable),
        }
    }

    /// Records a verified push that is refused all the same (its decoding, or its
    /// handshake, failed in a way the sender should hear), and the error it is answered.
    async fn refuse_decoded(&self, route: SourceKind, id: Uuid, rejected: Rejected, body: &[u8], origin: &Origin) -> PushError {
        self.refuse(Refusal::of(route, Some(id), rejected.reason, &rejected.detail, body, origin)).await;
        PushError::Rejected(rejected)
    }

    /// Confirms a verified subscription request, or keeps it for an admin. A refused
    /// confirmation (expired token, no permission) cannot be helped by a retry: it is kept
    /// as a rejection and acknowledged (it is a handshake, not data: nothing of it is an
    /// event, and its token must not be forwarded); an unreachable AWS asks the sender to
    /// retry.
    ///
    /// A Graph validation is answered by echoing its token: that is what proves the
    /// endpoint to Graph, and the subscription counts as validated once it is committed.
    async fn answer_handshake(&self, handshake: Handshake) -> Result<(Option<SubscriptionChange>, PushAccepted), Rejected> {
        let (region, topic_arn, subscribe_url, token, auto_confirm) = match handshake {
            Handshake::SnsSubscription { region, topic_arn, subscribe_url, token, auto_confirm, .. } => {
                (region, topic_arn, subscribe_url, token, auto_confirm)
            }
            Handshake::GraphValidation { token } => {
                return Ok((Some(SubscriptionChange::Validated), PushAccepted::Validated { echo: Some(token) }));
            }
            // Authenticated by its Webhook-AuthID: it confirms like any first push.
            Handshake::O365Validation => return Ok((None, PushAccepted::Validated { echo: None })),
        };
        if !auto_confirm {
            return Ok((Some(SubscriptionChange::Pending { confirmation_url: subscribe_url }), PushAccepted::AwaitingConfirmation));
        }
        match self.confirmer.confirm(&region, &topic_arn, &token, &subscribe_url).await {
            Ok(confirmed) => {
                tracing::info!(topic_arn, via = confirmed.via, subscription_arn = ?confirmed.subscription_arn, "SNS subscription confirmed");
                Ok((
                    Some(SubscriptionChange::Confirmed { external_id: confirmed.subscription_arn.clone() }),
                    PushAccepted::Confirmed { subscription_arn: confirmed.subscription_arn },
                ))
            }
            Err(ConfirmError::Unreachable(detail)) => Err(Rejected::unavailable("sns_confirmation_unavailable", detail)),
            Err(ConfirmError::Refused(detail)) => Err(Rejected::handshake_refused("sns_confirmation_refused", detail)),
        }
    }

    /// Records a refusal decided before the push was verified (bad id, body too large). It
    /// is kept on the connection only when one has that id, so random ids add no state.
    pub async fn refuse_early(
        &self,
        route: SourceKind,
        connection: Option<Uuid>,
        reason: &'static str,
        detail: &str,
        body: &[u8],
        origin: &Origin,
    ) {
        let known = match connection {
            Some(id) => self.connection(id).await.ok().flatten().map(|c| c.id),
            None => None,
        };
        self.refuse(Refusal::of(route, known, reason, detail, body, origin)).await;
    }

    /// Counts a push to a route that names no source. Nothing is kept: there is no
    /// connection to keep it on, and random paths must not add rows.
    pub fn refuse_unknown_route(&self) {
        self.metrics.rejection(crate::metrics::UNKNOWN_SOURCE, "unknown_route");
    }

    /// The rejection row of an authentic push that is acknowledged but refused all the
    /// same (a handshake that could not be completed, or a heartbeat that proves nothing),
    /// counted as a refusal.
    fn acknowledged_refusal(&self, route: SourceKind, id: Uuid, rejected: &Rejected, body: &[u8], origin: &Origin) -> NewRejection {
        self.metrics.rejection(route.as_str(), rejected.reason);
        Refusal::of(route, Some(id), rejected.reason, &rejected.detail, body, origin).record()
    }

    /// The rejection row of one refused item of an acknowledged batch, unless this
    /// connection is over its quota; always counted. It does not count towards
    /// "Signature verification failing": the push itself verified.
    fn refused_item(&self, route: SourceKind, id: Uuid, rejected: &Rejected, prefix: &str, origin: &Origin) -> Option<NewRejection> {
        tracing::info!(connection = %id, reason = rejected.reason, source_addr = ?origin.source_addr, "batch item refused");
        self.metrics.rejection(route.as_str(), rejected.reason);
        self.rejection_limit.check_key(&Some(id)).is_ok().then(|| NewRejection {
            connection_id: Some(id),
            at: now(),
            reason: rejected.reason.to_owned(),
            source_addr: origin.source_addr.clone(),
            detail: bounded_detail(&rejected.detail),
            body_prefix: prefix.to_owned(),
        })
    }

    async fn connection(&self, id: Uuid) -> Result<Option<Arc<LoadedConnection>>, PushError> {
        if let Some(hit) = self.connections.get(id) {
            return Ok(Some(hit));
        }
        let generation = self.connections.generation();
        let stored = self.store.get_connection(id).await.map_err(|e| {
            tracing::error!(error = %e, "connection lookup failed");
            PushError::StoreUnavailable
        })?;
        let Some(stored) = stored else { return Ok(None) };
        let loaded = LoadedConnection::unseal(&stored, &self.key, self.senders.get(stored.source)).map_err(|e| {
            tracing::error!(connection = %id, error = %e, "cannot open the connection's sealed config");
            PushError::StoreUnavailable
        })?;
        Ok(Some(self.connections.insert(loaded, generation)))
    }

    /// Counts a refusal and keeps its record unless this connection is over its quota.
    /// Waits for the commit so a reader sees it, but never fails the caller.
    async fn refuse(&self, refusal: Refusal<'_>) {
        let Refusal { route, connection, unauthenticated, reason, .. } = refusal;
        tracing::info!(connection = ?connection, reason, source_addr = ?refusal.origin.source_addr, "push refused");
        // Counted before the rate limit: the metric sees every refusal, kept or not.
        self.metrics.rejection(route.as_str(), reason);
        let record = self.rejection_limit.check_key(&connection).is_ok().then(|| refusal.record());
        if record.is_none() && connection.is_none() {
            return; // Nothing to count and nothing to keep.
        }
        let op = WriteOp::Refuse(Refused { connection_id: connection, unauthenticated, record });
        if let Err(e) = self.writer.submit(op).await {
            tracing::warn!(error = %e, "a rejection could not be recorded");
        }
    }

    /// Drops rate-limiter state of keys that have been quiet, bounding its memory.
    pub fn tidy(&self) {
        self.rejection_limit.retain_recent();
    }
}

/// One refused push: where it came, on which connection (when one has the id), why, and
/// what arrived. Counted in the metrics and kept as a rejection record.
#[derive(Clone, Copy)]
struct Refusal<'a> {
    route: SourceKind,
    connection: Option<Uuid>,
    /// Counts toward the connection's streak of failed authentication.
    unauthenticated: bool,
    reason: &'a str,
    detail: &'a str,
    body: &'a [u8],
    origin: &'a Origin,
}

impl<'a> Refusal<'a> {
    /// A refusal that is not an authentication failure.
    fn of(
        route: SourceKind,
        connection: Option<Uuid>,
        reason: &'a str,
        detail: &'a str,
        body: &'a [u8],
        origin: &'a Origin,
    ) -> Refusal<'a> {
        Refusal { route, connection, unauthenticated: false, reason, detail, body, origin }
    }

    /// Its rejection record, with the body's bounded, masked prefix.
    fn record(&self) -> NewRejection {
        NewRejection {
            connection_id: self.connection,
            at: now(),
            reason: self.reason.to_owned(),
            source_addr: self.origin.source_addr.clone(),
            detail: bounded_detail(self.detail),
            body_prefix: record_prefix(self.body),
        }
    }
}

/// The bounded prefix of a body kept in a rejection record. Any push may carry secrets
/// (an SNS token, a Graph clientState): they are masked first.
fn record_prefix(body: &[u8]) -> String {
    body_prefix(&crate::verify::redact::for_record(body))
}

/// Longest rejection detail kept, in bytes.
const MAX_DETAIL: usize = 512;

/// A detail cut to [`MAX_DETAIL`] bytes (on a character boundary), without NUL.
fn bounded_detail(detail: &str) -> String {
    let mut end = detail.len().min(MAX_DETAIL);
    while !detail.is_char_boundary(end) {
        end -= 1;
    }
    detail[..end].replace('\0', "\u{fffd}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_are_bounded_on_a_character_boundary() {
        let long = "é".repeat(400);
        let cut = bounded_detail(&long);
        assert!(cut.len() <= MAX_DETAIL && cut.chars().all(|c| c == 'é'));
        assert_eq!(bounded_detail("a\0b"), "a\u{fffd}b");
    }
}
