//! Forwarding to the event store (INTERFACE.md section 7): pushgate's database is the
//! durable buffer, and every stored event is shipped onward, at least once and in commit
//! order, to each destination whose filter takes it.
//!
//! - [`Forwarder`]: the supervisor. It runs one [`worker`] per destination whose lease this
//!   process holds (several replicas on one PostgreSQL share the destinations; a dead
//!   holder's lease expires after [`Settings::lease_ttl`] and another takes it over).
//! - [`worker`]: one destination's loop: read after its position up to the store's
//!   horizon, plan the batch durably, send it, move the position.
//! - [`delivery`]: the bookkeeping of one batch (splitting refused batches, dead letters).
//! - [`sinks`]: the stores themselves, one module each (`nats`, `http`) behind one trait.
//! - [`config`], [`template`]: a destination's typed settings and subject templates.
//! - [`backoff`], [`status`]: when to retry, and what a destination's status is.
//! - [`retention`]: deletes old events once every destination that wants them has them.
//!
//! Ingest never waits for any of it: a commit only ticks the store's commit signal, which
//! wakes the workers; a worker also looks every [`Settings::poll`] for commits other
//! replicas made. Each worker holds at most one batch in memory.

pub mod backoff;
pub mod config;
pub mod delivery;
pub mod retention;
pub mod sinks;
pub mod status;
pub mod template;
mod worker;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{watch, Notify};
use uuid::Uuid;

use crate::alerts::AlertSender;
use crate::crypto::MasterKey;
use crate::model::now;
use crate::store::Store;

pub use status::DestinationStatus;

/// How forwarding paces itself.
#[derive(Debug, Clone)]
pub struct Settings {
    pub backoff: backoff::Backoff,
    /// How often an idle worker looks for commits made by other replicas.
    pub poll: Duration,
    /// How long a lease lasts without renewal: a dead holder's destinations are taken
    /// over within this plus [`Settings::supervise_every`].
    pub lease_ttl: Duration,
    pub renew_every: Duration,
    /// How often the supervisor looks for destinations nobody delivers.
    pub supervise_every: Duration,
    /// After a batch that was not full, the next is read no sooner than this after it went
    /// out: fewer, larger batches under a steady trickle, so forwarding's one durable write
    /// per batch does not crowd out ingest's (at most this much added lag).
    pub min_cycle: Duration,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            backoff: backoff::Backoff::default(),
            poll: Duration::from_millis(250),
            lease_ttl: Duration::from_secs(15),
            renew_every: Duration::from_secs(5),
            supervise_every: Duration::from_secs(5),
            min_cycle: Duration::from_millis(100),
        }
    }
}

/// Handle to the forwarding of this process; cheap to clone.
#[derive(Clone)]
pub struct Forwarder {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    key: Arc<MasterKey>,
    alerts: Option<Arc<AlertSender>>,
    settings: Settings,
    /// This process's name in leases.
    holder: String,
    /// Destinations this process delivers, with the nudge that wakes each worker.
    running: Mutex<HashMap<Uuid, Arc<Notify>>>,
    /// Wakes the supervisor (a destination was created or resumed).
    supervise: Notify,
}

impl Forwarder {
    /// Starts the supervisor; it and every worker stop when `stop` turns true.
    pub fn start(
        store: Arc<dyn Store>,
        key: Arc<MasterKey>,
        alerts: Option<Arc<AlertSender>>,
        settings: Settings,
        holder: String,
        stop: watch::Receiver<bool>,
    ) -> Forwarder {
        let inner = Arc::new(Inner { store, key, alerts, settings, holder, running: Mutex::default(), supervise: Notify::new() });
        tokio::spawn(supervise(inner.clone(), stop));
        Forwarder { inner }
    }

    /// An admin changed destination `id` (created, patched, paused, resumed, asked for a
    /// replay): its worker looks at once, and the supervisor starts one if none runs.
    pub fn nudge(&self, id: Uuid) {
        if let Some(nudge) = self.inner.running.lock().ok().and_then(|r| r.get(&id).cloned()) {
            nudge.notify_one();
        }
        self.inner.supervise.notify_one();
    }

    /// This process's name in leases.
    pub fn holder(&self) -> &str {
        &self.inner.holder
    }
}

/// A name for this process in leases: host, process id and a random part (a restarted
/// process with the same pid is a new holder).
pub fn holder_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "pushgate".into());
    let random = hex::encode(crate::crypto::random_bytes::<3>());
    format!("{host}:{}:{random}", std::process::id())
}

/// Takes the lease of every destination nobody delivers and runs its worker here.
async fn supervise(inner: Arc<Inner>, mut stop: watch::Receiver<bool>) {
    loop {
        if let Err(e) = claim(&inner, &stop).await {
            tracing::warn!(error = %e, "forwarding supervisor: the store failed; trying again shortly");
        }
        tokio::select! {
            _ = tokio::time::sleep(inner.settings.supervise_every) => {}
            _ = inner.supervise.notified() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

async fn claim(inner: &Arc<Inner>, stop: &watch::Receiver<bool>) -> Result<(), crate::store::StoreError> {
    let destinations = inner.store.list_destinations().await?;
    let at = now();
    for d in destinations {
        let running = inner.running.lock().map(|r| r.contains_key(&d.id)).unwrap_or(true);
        let held_elsewhere = d.lease.as_ref().is_some_and(|l| l.holder != inner.holder && l.expires_at >= at);
        if d.paused || running || held_elsewhere || *stop.borrow() {
            continue;
        }
        let until = at + chrono::Duration::from_std(inner.settings.lease_ttl).unwrap_or_default();
        let Some(lease) = inner.store.acquire_destination(d.id, &inner.holder, at, until).await? else { continue };
        tracing::info!(destination = %d.id, name = %d.name, generation = lease.generation, "delivering this destination");
        let nudge = Arc::new(Notify::new());
        if let Ok(mut running) = inner.running.lock() {
            running.insert(d.id, nudge.clone());
        }
        let worker = worker::Worker {
            store: inner.store.clone(),
            key: inner.key.clone(),
            lease,
            settings: inner.settings.clone(),
            alerts: inner.alerts.clone(),
            nudge,
            stop: stop.clone(),
        };
        let inner = inner.clone();
        tokio::spawn(async move {
            worker.run().await;
            if let Ok(mut running) = inner.running.lock() {
                running.remove(&d.id);
            }
            // Look again soon: a worker that ended on a store failure is restarted.
            inner.supervise.notify_one();
        });
    }
    Ok(())
}
