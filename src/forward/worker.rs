//! One destination's delivery loop, run by the process holding its lease.
//!
//! It reads the matching events after the destination's position, up to the store's
//! horizon (so nothing committed later can fall behind it), plans the batch durably
//! (its id and range), sends it through the sink, and only then moves the position past
//! it, in one transaction with its dead letters. After a crash the planned batch is read
//! back and sent again whole, under the same id. A failed send is retried with backoff
//! for as long as it takes; the destination shows `failing` meanwhile, and turning
//! failing or recovering goes to the alert webhook.
//!
//! Every write names the lease; a keeper task renews it, and a worker whose lease was
//! taken over stops at once (its writes would change nothing anyway).
//!
//! One file: a destination's loop (wait, read, plan, send, record, back off) is one state
//! machine; its pieces with their own rules live in `delivery.rs` and `backoff.rs`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{watch, Notify};
use uuid::Uuid;

use super::config::SinkConfig;
use super::delivery::{Delivery, Next};
use super::sinks::{self, Record, Sink, SinkError};
use super::Settings;
use crate::alerts::{Alert, AlertSender};
use crate::crypto::MasterKey;
use crate::model::{now, CompletedBatch, CompletedReplay, Destination, EventRecord, Lease, NewDeadLetter, PlannedBatch, Position};
use crate::store::{Store, StoreError};

/// Events read per query while a batch is gathered, so a batch of large events stops
/// near its byte limit without holding many more in memory.
const PAGE: usize = 200;
/// How often the destination's settings are read again (pause, changes, deletion).
const REFRESH: Duration = Duration::from_secs(2);
/// How often a scan past events the filter does not take is written down.
const SKIP_EVERY: Duration = Duration::from_secs(5);
/// How often dead letters waiting for a replay are looked for (an admin's replay on
/// another replica, or one that arrived during a send).
const REPLAY_CHECK: Duration = Duration::from_secs(10);

/// Why the loop ended.
enum Stop {
    /// Shutdown, pause, deletion or a lost lease.
    Done,
    Store(StoreError),
}

impl From<StoreError> for Stop {
    fn from(e: StoreError) -> Stop {
        Stop::Store(e)
    }
}

pub(super) struct Worker {
    pub store: Arc<dyn Store>,
    pub key: Arc<MasterKey>,
    pub lease: Lease,
    pub settings: Settings,
    pub alerts: Option<Arc<AlertSender>>,
    /// Admin changes to this destination (patch, pause, replay) wake it.
    pub nudge: Arc<Notify>,
    pub stop: watch::Receiver<bool>,
}

/// The destination as the worker runs it: its settings and the sink they describe.
struct Loaded {
    destination: Destination,
    sink: Box<dyn Sink>,
}

fn load(destination: Destination, key: &MasterKey) -> Result<Loaded, String> {
    let config = crate::destinations::open_config(key, &destination)?;
    let parsed = SinkConfig::parse(destination.kind, &config).map_err(|e| format!("the stored config is not valid: {}", e.join("; ")))?;
    Ok(Loaded { sink: sinks::build(parsed, destination.id)?, destination })
}

/// A batch read from the store.
struct Batch {
    id: Uuid,
    /// The position the destination moves to once the batch is delivered.
    end: Position,
    records: Vec<Record>,
    /// Planned just now (else read back from a plan made before).
    new: bool,
    /// As many events or bytes as the sink takes at once.
    full: bool,
}

impl Worker {
    pub async fn run(self) {
        let id = self.lease.destination;
        let (lost_tx, lost) = watch::channel(false);
        let keeper = tokio::spawn(keep_lease(self.store.clone(), self.lease.clone(), self.settings.clone(), lost_tx));
        let mut run =
            Run { worker: &self, lost, failures: 0, failing: false, last_skip: Instant::now(), filter_changed: None, sending_since: None };
        match run.deliver().await {
            Ok(()) | Err(Stop::Done) => {}
            Err(Stop::Store(e)) => tracing::warn!(destination = %id, error = %e, "forwarding stopped: the store failed; retrying shortly"),
        }
        keeper.abort();
        if !*run.lost.borrow() {
            if let Err(e) = self.store.release_destination(&self.lease).await {
                tracing::debug!(destination = %id, error = %e, "lease not released; it expires on its own");
            }
        }
    }
}

struct Run<'a> {
    worker: &'a Worker,
    lost: watch::Receiver<bool>,
    /// Consecutive failed attempts.
    failures: u32,
    /// The destination is `failing` (as stored); turning and leaving it are alerted.
    failing: bool,
    last_skip: Instant,
    /// The stored position when the filter was found changed, to scan again from.
    filter_changed: Option<Position>,
    /// When the oldest event of the batch being sent arrived (for the alert's old status).
    sending_since: Option<chrono::DateTime<chrono::Utc>>,
}

impl Run<'_> {
    fn stopping(&self) -> bool {
        *self.worker.stop.borrow() || *self.lost.borrow()
    }

    /// Reads the destination again: false when it was deleted or paused. A changed filter
    /// is noted in `filter_changed`: the scan then starts again from the stored position,
    /// so the new filter applies to every event after it.
    async fn refresh(&mut self, current: &mut Option<Loaded>) -> Result<bool, Stop> {
        let Some(d) = self.worker.store.get_destination(self.worker.lease.destination).await? else { return Ok(false) };
        if d.paused {
            return Ok(false);
        }
        if current.as_ref().is_some_and(|l| l.destination.filter != d.filter) {
            self.filter_changed = Some(d.position);
        }
        let changed = current.as_ref().is_none_or(|l| l.destination.updated_at != d.updated_at);
        if changed {
            match load(d.clone(), &self.worker.key) {
                Ok(loaded) => *current = Some(loaded),
                Err(e) => {
                    // Unusable settings (a master key mix-up): shown, retried after a while.
                    self.failed(&d, &SinkError::failing(e)).await?;
                    *current = None;
                }
            }
        } else if let Some(l) = current.as_mut() {
            l.destination = d;
        }
        Ok(true)
    }

    async fn deliver(&mut self) -> Result<(), Stop> {
        let store = self.worker.store.clone();
        let id = self.worker.lease.destination;
        // Where to start comes from the stored row itself, whether or not its settings
        // can be used right now.
        let Some(start) = store.get_destination(id).await? else { return Ok(()) };
        self.failing = start.failing;
        let mut cursor = start.position;
        let mut planned = start.planned;
        let mut loaded: Option<Loaded> = None;
        if !self.refresh(&mut loaded).await? {
            return Ok(());
        }
        let mut commits = store.commits();
        let mut refreshed = Instant::now();
        let mut replay_checked: Option<Instant> = None;
        // A batch read and planned with the completion of the one before.
        let mut pending: Option<Batch> = None;
        loop {
            if self.stopping() {
                return Ok(());
            }
            if refreshed.elapsed() >= REFRESH || loaded.is_none() {
                if !self.refresh(&mut loaded).await? {
                    return Ok(());
                }
                refreshed = Instant::now();
            }
            if let Some(position) = self.filter_changed.take() {
                if pending.is_none() && planned.is_none() {
                    cursor = position;
                }
            }
            let Some(current) = loaded.as_ref() else {
                // Settings that cannot be used: wait for a change.
                self.wait(self.worker.settings.backoff.cap, &mut commits, false).await;
                continue;
            };
            if replay_checked.is_none_or(|at| at.elapsed() >= REPLAY_CHECK) {
                if !self.replay(&mut loaded).await? {
                    return Ok(());
                }
                replay_checked = Some(Instant::now());
                continue;
            }
            let batch = match (pending.take(), planned.take()) {
                (Some(batch), _) => Some(batch),
                (None, Some(plan)) => self.read(current, current.destination.position, plan.end, Some(plan.id)).await?,
                (None, None) => {
                    let horizon = store.horizon().await?;
                    if horizon <= cursor {
                        None
                    } else {
                        match self.read(current, cursor, horizon, None).await? {
                            Some(batch) => Some(batch),
                            None => {
                                // Nothing there matches: move past it, written down now and then.
                                cursor = horizon;
                                if self.last_skip.elapsed() >= SKIP_EVERY {
                                    store.skip_to(&self.worker.lease, cursor).await?;
                                    self.last_skip = Instant::now();
                                }
                                None
                            }
                        }
                    }
                }
            };
            // A batch that is not full may wait for more, when the sink wants that.
            let linger = current.sink.limits().linger;
            if let Some(b) = batch.as_ref().filter(|b| b.new && !b.full && !linger.is_zero()) {
                let age = b.records.first().map_or(chrono::Duration::zero(), |r| now() - r.event.received_at);
                if let Some(left) = chrono::Duration::from_std(linger).ok().and_then(|l| (l - age).to_std().ok()).filter(|d| !d.is_zero()) {
                    if self.wait(left, &mut commits, false).await {
                        // A nudge while the batch lingered: the settings are read first.
                        refreshed = Instant::now().checked_sub(REFRESH).unwrap_or(refreshed);
                        replay_checked = None;
                    }
                    continue;
                }
            }
            let Some(batch) = batch else {
                if self.wait(self.worker.settings.poll, &mut commits, true).await {
                    // A nudge: an admin changed something; look at once.
                    refreshed = Instant::now().checked_sub(REFRESH).unwrap_or(refreshed);
                    replay_checked = None;
                }
                continue;
            };
            if batch.new && !store.plan_batch(&self.worker.lease, batch.id, batch.end).await? {
                return Ok(());
            }
            let last_send = Instant::now();
            self.sending_since = batch.records.first().map(|r| r.event.received_at);
            let Some(outcome) = self.send(&mut loaded, batch.id, &batch.records).await? else { return Ok(()) };
            let Batch { id: _, end, records, full, .. } = batch;
            let dead_letters = outcome
                .refused()
                .map(|(i, reason, sends)| NewDeadLetter {
                    event_id: records[i].event.id,
                    reason: reason.to_owned(),
                    attempts: i64::from(sends),
                    record: String::from_utf8_lossy(&records[i].json).into_owned(),
                })
                .collect::<Vec<_>>();
            let delivered = outcome.delivered() as i64;
            // Only one batch is held at a time: this one goes before the next is read.
            drop(records);
            if !dead_letters.is_empty() {
                tracing::warn!(destination = %id, refused = dead_letters.len(), "records refused by the destination went to dead letters");
            }
            // The next batch is read now and planned in the same transaction that completes
            // this one: one durable write per batch. After a batch that was not full, the
            // next is read no sooner than `min_cycle` after this one went out, so a steady
            // trickle makes fewer, larger batches (and fewer writes beside ingest's).
            if !full {
                let since = last_send.elapsed();
                if since < self.worker.settings.min_cycle {
                    let mut stop = self.worker.stop.clone();
                    tokio::select! {
                        _ = tokio::time::sleep(self.worker.settings.min_cycle - since) => {}
                        _ = stop.wait_for(|s| *s) => {}
                    }
                }
            }
            let mut next = None;
            if !self.stopping() && self.filter_changed.is_none() {
                if let Some(current) = loaded.as_ref() {
                    let horizon = store.horizon().await?;
                    if horizon > end {
                        next = self.read(current, end, horizon, None).await?.filter(|b| current.sink.limits().linger.is_zero() || b.full);
                    }
                }
            }
            let plan = next.as_ref().map(|b| PlannedBatch { id: b.id, end: b.end });
            let done = CompletedBatch { end, delivered, dead_letters, next: plan, at: now() };
            if !store.complete_batch(&self.worker.lease, &done).await? {
                return Ok(());
            }
            cursor = end;
            pending = next.map(|b| Batch { new: false, ..b });
            self.recovered().await;
        }
    }

    /// The matching events after `after` up to `upto`, at most the sink's limits: a new
    /// batch (`id: None`), or the planned batch `id` read back.
    async fn read(&self, current: &Loaded, after: Position, upto: Position, id: Option<Uuid>) -> Result<Option<Batch>, Stop> {
        let limits = current.sink.limits();
        let filter = &current.destination.filter;
        let mut records: Vec<Record> = Vec::new();
        let mut bytes = 0usize;
        let mut from = after;
        let mut exhausted = false;
        let mut cut = false;
        'pages: while records.len() < limits.max_events {
            let ask = PAGE.min(limits.max_events - records.len());
            let page = self.worker.store.read_events(from, upto, filter, ask as u32).await?;
            let got = page.len();
            for event in page {
                from = event.position;
                let record = Record::new(event);
                let size = record.json.len() + limits.overhead_per_record;
                if !records.is_empty() && bytes + size > limits.max_bytes {
                    cut = true;
                    break 'pages;
                }
                bytes += size;
                records.push(record);
            }
            if got < ask {
                exhausted = true;
                break;
            }
        }
        if records.is_empty() && id.is_none() {
            return Ok(None);
        }
        // Read to the end of the range: the batch covers all of it, non-matching events too.
        let end = match records.last() {
            Some(last) if !exhausted => last.event.position,
            _ => upto,
        };
        let full = cut || records.len() >= limits.max_events;
        Ok(Some(Batch { id: id.unwrap_or_else(Uuid::now_v7), end, records, new: id.is_none(), full }))
    }

    /// Sends `records` until every one is delivered or dead-lettered; `None` when the
    /// worker must stop first.
    async fn send(&mut self, loaded: &mut Option<Loaded>, batch_id: Uuid, records: &[Record]) -> Result<Option<Delivery>, Stop> {
        let mut delivery = Delivery::new(batch_id, records.len());
        let mut lost = self.lost.clone();
        let mut stop = self.worker.stop.clone();
        while let Some((part, part_id)) = delivery.next_part() {
            let Some(current) = loaded.as_ref() else {
                if !self.refresh(loaded).await? {
                    return Ok(None);
                }
                let mut commits = self.worker.store.commits();
                self.wait(self.worker.settings.backoff.cap, &mut commits, false).await;
                continue;
            };
            let result = tokio::select! {
                result = current.sink.send(part_id, &records[part]) => result,
                _ = lost.wait_for(|l| *l) => return Ok(None),
                _ = stop.wait_for(|s| *s) => return Ok(None),
            };
            match delivery.settle(result) {
                Next::Continue => self.failures = 0,
                Next::Retry(error) => {
                    self.failures += 1;
                    let destination = current.destination.clone();
                    self.failed(&destination, &error).await?;
                    let capped = error.failure == sinks::Failure::Failing;
                    let wait = self.worker.settings.backoff.next(self.failures, capped, error.retry_after);
                    tracing::info!(destination = %destination.id, failures = self.failures, wait_ms = wait.as_millis() as u64,
                        error = %error.message, "delivery failed; retrying");
                    let mut commits = self.worker.store.commits();
                    if self.wait(wait, &mut commits, false).await {
                        // An admin changed something: it may be the fix. Try again now.
                        if !self.refresh(loaded).await? {
                            return Ok(None);
                        }
                    }
                    if self.stopping() {
                        return Ok(None);
                    }
                }
            }
        }
        Ok(Some(delivery))
    }

    /// Dead letters an admin asked to replay, each tried once more; false when the worker
    /// must stop.
    async fn replay(&mut self, loaded: &mut Option<Loaded>) -> Result<bool, Stop> {
        let store = self.worker.store.clone();
        let Some(current) = loaded.as_ref() else { return Ok(true) };
        let letters = store.replays(current.destination.id, current.sink.limits().max_events as u32).await?;
        if letters.is_empty() {
            return Ok(true);
        }
        let mut replay = CompletedReplay::default();
        let mut records = Vec::new();
        let mut ids = Vec::new();
        for letter in letters {
            match serde_json::from_str::<EventRecord>(&letter.record) {
                Ok(event) => {
                    records.push(Record::new(event));
                    ids.push(letter.id);
                }
                Err(e) => replay.refused.push((letter.id, format!("the kept record cannot be read: {e}"))),
            }
        }
        let Some(outcome) = self.send(loaded, Uuid::now_v7(), &records).await? else { return Ok(false) };
        let refused: std::collections::HashMap<usize, &str> = outcome.refused().map(|(i, reason, _)| (i, reason)).collect();
        for (i, id) in ids.iter().enumerate() {
            match refused.get(&i) {
                Some(reason) => replay.refused.push((*id, (*reason).to_owned())),
                None => replay.delivered.push(*id),
            }
        }
        tracing::info!(destination = %self.worker.lease.destination, delivered = replay.delivered.len(),
            refused = replay.refused.len(), "dead letters replayed");
        if !store.complete_replay(&self.worker.lease, &replay, now()).await? {
            return Ok(false);
        }
        self.recovered().await;
        Ok(true)
    }

    /// Records a failed attempt, and alerts when the destination turns failing.
    async fn failed(&mut self, d: &Destination, error: &SinkError) -> Result<(), Stop> {
        if !self.worker.store.record_failure(&self.worker.lease, now(), &error.message).await? {
            return Err(Stop::Done);
        }
        if !self.failing {
            self.failing = true;
            tracing::warn!(destination = %d.id, name = %d.name, error = %error.message, "destination failing");
            if let Some(alerts) = &self.worker.alerts {
                let was = self.status_without_failure(self.sending_since).as_str();
                alerts.send(Alert::destination(d.id, &d.name, was, "failing", Some(error.message.clone()), now())).await;
            }
        }
        Ok(())
    }

    /// After a delivery: a failing destination recovered.
    async fn recovered(&mut self) {
        self.failures = 0;
        if self.failing {
            self.failing = false;
            if let Ok(Some(d)) = self.worker.store.get_destination(self.worker.lease.destination).await {
                tracing::info!(destination = %d.id, name = %d.name, "destination recovered");
                if let Some(alerts) = &self.worker.alerts {
                    // Recovered with a backlog left is `lagging`, not yet `ok`.
                    let oldest = match self.worker.store.backlog(d.position, &d.filter).await {
                        Ok(backlog) => backlog.oldest_received_at,
                        Err(_) => None,
                    };
                    let now_status = self.status_without_failure(oldest).as_str();
                    alerts.send(Alert::destination(d.id, &d.name, "failing", now_status, None, now())).await;
                }
            }
        }
    }

    /// `ok` or `lagging`, by the age of the oldest undelivered event.
    fn status_without_failure(&self, oldest: Option<chrono::DateTime<chrono::Utc>>) -> super::DestinationStatus {
        let lagging = oldest.is_some_and(|t| now() - t > chrono::Duration::seconds(super::status::LAGGING_AFTER_SECONDS));
        if lagging {
            super::DestinationStatus::Lagging
        } else {
            super::DestinationStatus::Ok
        }
    }

    /// Waits up to `timeout`, or until a commit (when `on_commit`), a nudge, a shutdown or
    /// the lease's loss; true when it was a nudge.
    async fn wait(&self, timeout: Duration, commits: &mut watch::Receiver<u64>, on_commit: bool) -> bool {
        let mut stop = self.worker.stop.clone();
        let mut lost = self.lost.clone();
        // In this order: a nudge that is already waiting (an admin paused the destination,
        // then events were pushed) must win over the commits that came after it, or a
        // batch would go out to a paused destination before the next refresh.
        tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => false,
            _ = lost.wait_for(|l| *l) => false,
            _ = self.worker.nudge.notified() => true,
            _ = commits.changed(), if on_commit => false,
            _ = tokio::time::sleep(timeout) => false,
        }
    }
}

/// Renews the lease until it is lost (taken over, or the store unreachable for longer
/// than the lease lasts), then says so.
async fn keep_lease(store: Arc<dyn Store>, lease: Lease, settings: Settings, lost: watch::Sender<bool>) {
    let mut renewed = Instant::now();
    loop {
        tokio::time::sleep(settings.renew_every).await;
        let until = now() + chrono::Duration::from_std(settings.lease_ttl).unwrap_or_default();
        match store.renew_destination(&lease, until).await {
            Ok(true) => renewed = Instant::now(),
            Ok(false) => {
                tracing::info!(destination = %lease.destination, "lease lost; another replica delivers this destination now");
                let _ = lost.send(true);
                return;
            }
            Err(e) if renewed.elapsed() >= settings.lease_ttl => {
                tracing::warn!(destination = %lease.destination, error = %e, "lease not renewed in time; stopping delivery");
                let _ = lost.send(true);
                return;
            }
            Err(e) => tracing::debug!(destination = %lease.destination, error = %e, "lease renewal failed; trying again"),
        }
    }
}
