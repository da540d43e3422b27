//! Fetching Office 365 audit content: the job that works the queue of content
//! notifications (`o365_fetches`) of `o365_activity` connections with Management API
//! credentials, and stores each audit record as one `telemetry` event.
//!
//! The push path only stores a notification and queues its blob, in one transaction
//! (`sources::o365_activity`), so Microsoft's webhook is answered at once. This job runs
//! on one replica at a time, the holder of the `o365_fetch` job lease (`jobs.rs`), and
//! every write it makes is fenced with that lease. It wakes after every commit that
//! queued a fetch (a new notification; other pushes' commits leave it asleep) and at the
//! next due fetch, at least every `poll` (which is how fetches queued on another replica
//! are seen).
//!
//! - **What is fetched.** Only a `contentUri` that [`ManageApi::fetch_content`] allows:
//!   the connection's Management API endpoint (scheme, host and port, itself on the
//!   operator's allow-list) and a path under `/api/v1.0/{tenant_id}/activity/feed/audit/`.
//!   Anything else is never requested: the fetch is refused and kept as a rejection on
//!   the connection (`o365_content_uri_not_allowed`), so a notification cannot make
//!   pushgate call another host.
//! - **Stored once.** The records of one blob are inserted with the queue row marked done
//!   in one transaction. A replica that dies mid-way leaves the row pending and the next
//!   holder fetches the blob again; each record's dedupe key is its `Id`, so the second
//!   fetch stores nothing new. `occurred_at` is the record's `CreationTime` (Microsoft
//!   writes it without a zone: UTC); the payload is the record as Microsoft sent it.
//! - **Retries.** A failed fetch is tried again after 2 s, then twice as long each time, up
//!   to 5 minutes ([`backoff`]), never later than the blob's expiry ([`next_attempt`]). A
//!   429 or 503 with `Retry-After` is honoured to the second, and puts off that
//!   connection's other fetches too. At most [`CONCURRENCY`] fetches run at once.
//! - **Expiry.** A blob still unfetched when it expires (`contentExpiration`, 7 days after
//!   it was created) is marked expired, counted on the connection, entered in its status
//!   history ("Audit content expired before it could be fetched", its status unchanged,
//!   as a Graph `missed` report is) and alerted, in one transaction: never dropped
//!   unseen. One entry per connection and pass, however many blobs expired in it.
//!
//! One file: a pass (expire, set aside, fetch, record each outcome) is one sequence over
//! the queue, and its pure rules ([`next_attempt`], [`backoff`], [`expired`],
//! [`creation_time`], [`record_event`]) sit beside it; their tests are in `fetch/tests.rs`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::Value;
use tokio::task::JoinSet;
use uuid::Uuid;

use super::manage::{content_uri_allowed, ManageApi, ManageError};
use super::settings::O365Settings;
use crate::alerts::{Alert, AlertSender, QUEUE_CAP};
use crate::crypto::MasterKey;
use crate::metrics::Metrics;
use crate::model::{content_key, now, Connection, EventKind, JobLease, NewEvent, NewRejection, QueuedFetch, StatusChange};
use crate::passes::Passes;
use crate::store::{Store, StoreError};

/// The job lease the fetch runs under.
pub const JOB: &str = crate::store::FETCH_JOB;
/// Fetches under way at once.
pub const CONCURRENCY: usize = 4;
/// How often the queue is looked at when nothing woke the job: fetches queued on another
/// replica are seen within it.
pub const DEFAULT_POLL: Duration = Duration::from_secs(1);
/// Due fetches read per pass.
const BATCH: u32 = 32;
const FIRST_RETRY: Duration = Duration::from_secs(2);
const LONGEST_RETRY: Duration = Duration::from_secs(300);
/// How long a connection that cannot be fetched for now (paused) is left alone.
const SET_ASIDE: Duration = Duration::from_secs(60);
/// Finished fetches are kept this long past their content's expiry (a repeated
/// notification is not queued again meanwhile), then pruned.
const FINISHED_KEPT: chrono::TimeDelta = chrono::TimeDelta::days(1);
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// The history entry and alert message of content that expired unfetched.
pub const MSG_CONTENT_EXPIRED: &str = "Audit content expired before it could be fetched";
/// The rejection reason of a `contentUri` pushgate does not request.
pub const NOT_ALLOWED: &str = "o365_content_uri_not_allowed";

/// The fetch job and what it needs.
#[derive(Clone)]
pub struct Fetcher {
    pub store: Arc<dyn Store>,
    pub key: Arc<MasterKey>,
    pub api: Arc<ManageApi>,
    pub metrics: Arc<Metrics>,
    /// Where expired content is announced.
    pub alerts: Option<Arc<AlertSender>>,
    pub poll: Duration,
    /// Counts every completed pass.
    pub passes: Passes,
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pass {
    /// Due fetches read (at most a batch: more may be due when it is full).
    pub due: usize,
    /// Of them, those of connections deleted meanwhile (their rows go with them).
    pub skipped: usize,
    pub fetched: usize,
    pub records: u64,
    pub failed: usize,
    pub refused: usize,
    pub expired: u64,
}

/// Until when the Management API asked each connection to wait (its `Retry-After`), as
/// this holder of the lease last heard; the store keeps the same times on the queued rows.
pub type Throttled = Arc<Mutex<HashMap<Uuid, DateTime<Utc>>>>;

/// A connection as one pass fetches for it: what it is, and its credentials.
struct Loaded {
    connection: Connection,
    settings: Result<O365Settings, String>,
}

/// When to try a fetch again after its `attempts`-th failure at `now`: at the
/// `Retry-After` Microsoft gave, else after [`backoff`], and never after the content
/// expires (at its expiry it is found expired).
pub fn next_attempt(attempts: i64, now: DateTime<Utc>, expires_at: DateTime<Utc>, retry_after: Option<Duration>) -> DateTime<Utc> {
    let wait = retry_after.unwrap_or_else(|| backoff(attempts));
    (now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX)).min(expires_at)
}

/// The wait after `attempts` failed attempts: 2 s, twice as long each time, at most 5 min.
pub fn backoff(attempts: i64) -> Duration {
    let doublings = u32::try_from(attempts.saturating_sub(1)).unwrap_or(u32::MAX).min(16);
    (FIRST_RETRY * 2u32.pow(doublings)).min(LONGEST_RETRY)
}

/// Whether `fetch` can no longer be fetched at `now`: its content expired.
pub fn expired(fetch: &QueuedFetch, now: DateTime<Utc>) -> bool {
    fetch.expires_at <= now
}

/// A record's `CreationTime`: RFC 3339, or (as Microsoft writes it) without a zone, in UTC.
pub fn creation_time(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").ok().map(|t| t.and_utc())
}

/// One audit record as the event it is stored as: keyed by its `Id` (by its content's
/// hash when it has none), at its `CreationTime`, the record itself as the payload.
pub fn record_event(record: Value) -> NewEvent {
    let id = record.get("Id").and_then(Value::as_str).filter(|id| !id.is_empty()).map(str::to_owned);
    let dedupe_key = id.unwrap_or_else(|| content_key(record.to_string().as_bytes()));
    let occurred_at = record.get("CreationTime").and_then(Value::as_str).and_then(creation_time);
    crate::ingest::sanitize(NewEvent { dedupe_key, kind: EventKind::Telemetry, occurred_at, payload: record })
}

/// The `reason` label of a failed fetch in `pushgate_o365_fetch_failures_total`.
pub fn failure_reason(error: &ManageError) -> &'static str {
    match error {
        ManageError::Token { .. } => "token",
        ManageError::Unreachable { .. } => "unreachable",
        ManageError::Refused { .. } if error.retry_after().is_some() => "throttled",
        ManageError::Refused { .. } => "refused",
        ManageError::BadAnswer { .. } => "bad_answer",
        // The connection's endpoint is not in the operator's allow-list.
        ManageError::NotAllowed { .. } => "endpoint_not_allowed",
    }
}

impl Fetcher {
    /// Works the queue for as long as this replica holds the job's lease.
    pub async fn run(self, lease: JobLease) {
        let mut queued = self.store.fetches_queued();
        let throttled = Throttled::default();
        let mut pruned_at: Option<tokio::time::Instant> = None;
        loop {
            let full = match self.pass(&lease, now(), &throttled).await {
                // A full batch that did something: more may be due at once.
                Ok(pass) => pass.due >= BATCH as usize && pass.skipped < pass.due,
                Err(e) => {
                    tracing::warn!(error = %e, "Office 365 content fetch pass failed; trying again shortly");
                    false
                }
            };
            if pruned_at.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
                match self.store.prune_fetches(now() - FINISHED_KEPT).await {
                    Ok(n) if n > 0 => tracing::debug!(pruned = n, "finished Office 365 content fetches forgotten"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "finished Office 365 content fetches not pruned"),
                }
                pruned_at = Some(tokio::time::Instant::now());
            }
            self.passes.completed();
            if full {
                continue;
            }
            let wait = match self.store.next_fetch_due().await {
                Ok(Some(due)) => (due - now()).to_std().unwrap_or_default().min(self.poll),
                _ => self.poll,
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = queued.changed() => {}
            }
        }
    }

    /// Expires what is due and past its expiry, then fetches the rest, [`CONCURRENCY`] at
    /// a time.
    pub async fn pass(&self, lease: &JobLease, at: DateTime<Utc>, throttled: &Throttled) -> Result<Pass, StoreError> {
        let due = self.store.due_fetches(at, BATCH).await?;
        let mut pass = Pass { due: due.len(), ..Pass::default() };
        let mut loaded: HashMap<Uuid, Option<Arc<Loaded>>> = HashMap::new();
        for fetch in &due {
            if let std::collections::hash_map::Entry::Vacant(slot) = loaded.entry(fetch.connection_id) {
                slot.insert(self.load(fetch.connection_id).await?.map(Arc::new));
            }
        }
        let (gone, due): (Vec<_>, Vec<_>) = due.into_iter().partition(|f| loaded.get(&f.connection_id).is_none_or(Option::is_none));
        pass.skipped = gone.len();
        if !gone.is_empty() {
            tracing::debug!(fetches = gone.len(), "Office 365 content of deleted connections is not fetched");
        }
        let (lapsed, due): (Vec<_>, Vec<_>) = due.into_iter().partition(|f| expired(f, at));
        let mut by_connection: BTreeMap<Uuid, Vec<i64>> = BTreeMap::new();
        for fetch in &lapsed {
            by_connection.entry(fetch.connection_id).or_default().push(fetch.id);
        }
        for (id, ids) in by_connection {
            if let Some(Some(l)) = loaded.get(&id) {
                pass.expired += self.expire(lease, &l.connection, &ids, at).await?;
            }
        }
        // Paused connections wait, and so do throttled ones (also for content notified
        // after the throttling began), their content still expiring on time.
        let waits: HashMap<Uuid, DateTime<Utc>> = {
            let mut held = throttled.lock().expect("throttled");
            held.retain(|_, until| *until > at);
            held.clone()
        };
        let set_aside_until = at + chrono::Duration::from_std(SET_ASIDE).unwrap_or_default();
        let mut set_aside: BTreeMap<Uuid, DateTime<Utc>> = BTreeMap::new();
        let due: Vec<_> = due
            .into_iter()
            .filter(|f| {
                let paused = loaded.get(&f.connection_id).and_then(Option::as_ref).is_some_and(|l| l.connection.facts.paused);
                let until = if paused { Some(set_aside_until) } else { waits.get(&f.connection_id).copied() };
                if let Some(until) = until {
                    set_aside.insert(f.connection_id, until);
                }
                until.is_none()
            })
            .collect();
        for (id, until) in set_aside {
            self.store.defer_fetches(lease, id, until).await?;
        }
        let mut running = JoinSet::new();
        for fetch in due {
            let Some(Some(l)) = loaded.get(&fetch.connection_id).cloned() else { continue };
            while running.len() >= CONCURRENCY {
                if let Some(done) = running.join_next().await {
                    tally(&mut pass, done);
                }
            }
            let (fetcher, lease, throttled) = (self.clone(), lease.clone(), throttled.clone());
            running.spawn(async move { fetcher.fetch(&lease, fetch, &l, &throttled).await });
        }
        while let Some(done) = running.join_next().await {
            tally(&mut pass, done);
        }
        Ok(pass)
    }

    /// The connection `id` with its credentials; `None` when it was deleted.
    async fn load(&self, id: Uuid) -> Result<Option<Loaded>, StoreError> {
        let Some(connection) = self.store.get_connection(id).await? else { return Ok(None) };
        let settings = crate::connections::open_config(&self.key, &connection)
            .and_then(|config| O365Settings::of(&config))
            .and_then(|settings| settings.ok_or_else(|| "the connection has no Management API credentials (`subscription`)".to_owned()));
        Ok(Some(Loaded { connection, settings }))
    }

    /// Fetches one blob and records the outcome.
    async fn fetch(&self, lease: &JobLease, fetch: QueuedFetch, loaded: &Loaded, throttled: &Throttled) -> Result<Outcome, StoreError> {
        let connection = &loaded.connection;
        // Throttled during this pass: its time was put off in the store already.
        if throttled.lock().expect("throttled").get(&connection.id).is_some_and(|until| *until > now()) {
            return Ok(Outcome::Waiting);
        }
        let settings = match &loaded.settings {
            Ok(settings) => settings,
            Err(e) => {
                return self
                    .failed(lease, fetch, connection.id, "settings", None, format!("the subscription settings are unusable: {e}"))
                    .await
            }
        };
        // Checked here as well as by the client: a URI elsewhere is refused for good, while
        // an endpoint the operator has not allowed (yet) is a failure like any other.
        if let Err(detail) = content_uri_allowed(settings, &fetch.content_uri) {
            return self.refuse(lease, &fetch, connection, &detail).await;
        }
        let fetched = self.api.fetch_content(settings, &fetch.content_uri).await;
        let at = now();
        match fetched {
            Ok(records) => {
                let events: Vec<NewEvent> = records.into_iter().map(record_event).collect();
                let stored = self.store.finish_fetch(lease, &fetch, connection, &events, at).await?;
                if let Some(stored) = stored {
                    tracing::debug!(connection = %connection.id, content = %fetch.content_id, records = events.len(), stored,
                        "Office 365 content fetched");
                }
                Ok(Outcome::Fetched(stored.unwrap_or(0)))
            }
            // Microsoft no longer has it (expired early, or never there): trying again
            // cannot help, and it is announced as expired content.
            Err(e) if e.is_gone() => {
                self.metrics.o365_fetch_failure("gone");
                tracing::warn!(connection = %connection.id, content = %fetch.content_id, error = %e, "Office 365 content is gone");
                Ok(Outcome::Expired(self.expire(lease, connection, &[fetch.id], at).await?))
            }
            Err(e) => {
                let retry_after = e.retry_after();
                self.failed(lease, fetch, connection.id, failure_reason(&e), retry_after, e.to_string()).await?;
                if let Some(wait) = retry_after {
                    // Microsoft asked this connection (its tenant's quota) to wait.
                    let until = at + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX);
                    throttled.lock().expect("throttled").insert(connection.id, until);
                    self.store.defer_fetches(lease, connection.id, until).await?;
                }
                Ok(Outcome::Failed)
            }
        }
    }

    /// Keeps a failed attempt at `fetch` and when to try again.
    async fn failed(
        &self,
        lease: &JobLease,
        mut fetch: QueuedFetch,
        connection: Uuid,
        reason: &'static str,
        retry_after: Option<Duration>,
        error: String,
    ) -> Result<Outcome, StoreError> {
        let at = now();
        self.metrics.o365_fetch_failure(reason);
        fetch.attempts += 1;
        fetch.next_attempt_at = next_attempt(fetch.attempts, at, fetch.expires_at, retry_after);
        tracing::info!(connection = %connection, content = %fetch.content_id, attempts = fetch.attempts,
            next = %fetch.next_attempt_at, error = %error, "Office 365 content not fetched; trying again later");
        fetch.last_error = Some(error);
        self.store.retry_fetch(lease, &fetch, at).await?;
        Ok(Outcome::Failed)
    }

    /// `fetch` names content elsewhere than the connection's audit feed: never requested,
    /// kept as a rejection on the connection.
    async fn refuse(&self, lease: &JobLease, fetch: &QueuedFetch, connection: &Connection, detail: &str) -> Result<Outcome, StoreError> {
        tracing::warn!(connection = %connection.id, content = %fetch.content_id, detail,
            "Office 365 content URI refused: it is not requested");
        self.metrics.o365_fetch_failure("not_allowed");
        self.metrics.rejection(connection.source.as_str(), NOT_ALLOWED);
        let rejection = NewRejection {
            connection_id: Some(connection.id),
            at: now(),
            reason: NOT_ALLOWED.to_owned(),
            source_addr: None,
            detail: format!("content {} was not fetched: {detail}", fetch.content_id),
            body_prefix: crate::model::body_prefix(fetch.content_uri.as_bytes()),
        };
        self.store.refuse_fetch(lease, fetch, &rejection).await?;
        Ok(Outcome::Refused)
    }

    /// Marks the fetches `ids` of `connection` expired, with their history entry and
    /// alert; how many expired.
    async fn expire(&self, lease: &JobLease, connection: &Connection, ids: &[i64], at: DateTime<Utc>) -> Result<u64, StoreError> {
        let (status, _) = crate::health::status_of(connection, at);
        let entry = StatusChange { at, old_status: Some(status), new_status: status, message: Some(MSG_CONTENT_EXPIRED.to_owned()) };
        let alert = self.alerts.as_ref().map(|_| Alert::connection(connection, entry.clone()));
        let Some((expired, dropped)) = self.store.expire_fetches(lease, connection.id, ids, &entry, alert.as_ref(), QUEUE_CAP).await?
        else {
            return Ok(0);
        };
        tracing::warn!(connection = %connection.id, blobs = expired, "Office 365 audit content expired before it could be fetched");
        if let Some(alerts) = &self.alerts {
            alerts.queued(dropped);
        }
        Ok(expired)
    }
}

/// How one fetch ended.
enum Outcome {
    /// Its records were stored: how many were new.
    Fetched(u64),
    /// Microsoft no longer has it: marked expired (1, or 0 when it was not pending any more).
    Expired(u64),
    Failed,
    Refused,
    /// Its connection was throttled in this pass: left for later.
    Waiting,
}

fn tally(pass: &mut Pass, done: Result<Result<Outcome, StoreError>, tokio::task::JoinError>) {
    match done {
        Ok(Ok(Outcome::Fetched(records))) => {
            pass.fetched += 1;
            pass.records += records;
        }
        Ok(Ok(Outcome::Expired(n))) => pass.expired += n,
        Ok(Ok(Outcome::Failed)) => pass.failed += 1,
        Ok(Ok(Outcome::Refused)) => pass.refused += 1,
        Ok(Ok(Outcome::Waiting)) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "an Office 365 content fetch's outcome was not recorded; it is fetched again"),
        Err(e) => tracing::warn!(error = %e, "an Office 365 content fetch stopped"),
    }
}

#[cfg(test)]
mod tests;
