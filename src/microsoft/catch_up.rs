//! The Graph catch-up: after Graph lost notifications of an `ms_graph` connection whose
//! subscription pushgate keeps (lifecycle `missed`), or after the upkeep created its
//! subscription again because Graph removed it, it expired or Graph no longer knew it, the
//! changes in between are read with a delta query and stored as events.
//!
//! **State.** Per connection the store keeps the last `@odata.deltaLink` (the last known
//! state of the subscription's resource), the `@odata.nextLink` of a round under way, and
//! whether a catch-up is due (`model::CatchUpState`). The first state is learned once a
//! subscription exists: with `$deltatoken=latest` (users, groups) or `token=latest` (drive
//! items), which answers no items and the link of the next round, or else by reading the
//! whole collection once without storing it (mail folders, contacts, channel messages,
//! tasks). See `catch_up/resources.rs` for the resources and their queries.
//!
//! **Rounds.** A due catch-up reads from the stored deltaLink, follows `@odata.nextLink`
//! page by page, and stores each item as one event shaped like a Graph change
//! notification with its resource data: `subscriptionId` (the current subscription),
//! `changeType` (`deleted` for an item marked `@removed`, else `updated`: a delta does not
//! tell a creation from an update), `resource` (the item's path), `resourceData` (the
//! item as Graph answered it), `tenantId` (the subscription's tenant) and
//! `"_catch_up": true`. The final page's deltaLink is kept for the next round. A pass
//! reads at most `pages_per_pass` pages per connection; the next pass goes on from the
//! stored nextLink, so a long round is spread over passes and survives a restart.
//!
//! **Dedupe.** A catch-up event's dedupe key is `catch-up:` and the hash of its change
//! type, resource and item (a page read twice is stored once). Beside it every Graph
//! change carries a second key, [`crate::model::version_key`]: the item's id and version
//! (`@odata.etag`, `changeKey`, `eTag`) with whether it was deleted, when the event
//! carries both. A notification and a catch-up of the same change share it, and the later
//! of the two is a duplicate. Where either side carries no version (users, groups; drive
//! notifications carry no item at all) nothing matches and both are stored: a duplicate
//! is better than a loss.
//!
//! **What cannot be closed** is said in the connection's status history (and its
//! `subscription.catch_up.last_error`): a resource without a delta query, a gap with no
//! earlier delta state to read from, a delta state Graph no longer knows (410 Gone, or
//! `syncStateNotFound`: directory delta links last seven days). A round read to its end
//! is entered there too, with how many changes it stored, when it read any or answered a
//! `missed` report.
//!
//! **Limits.** Graph's 429 is honoured: the connection is not asked again before its
//! `Retry-After` (60 s without one). Other failures are retried after one interval,
//! doubling up to sixteen. It runs on the replica holding the `graph_catch_up` job lease,
//! every interval and whenever [`CatchUpHandle::nudge`] is called (by the push path after
//! it stored a `missed` report, by the upkeep after it created a subscription).
//!
//! One file: a pass, its rounds and the recording of their outcomes are one sequence over
//! a connection's delta state; the resource mapping is `catch_up/resources.rs`, the
//! events `catch_up/events.rs`, their tests beside them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tokio::time::Instant;
use uuid::Uuid;

use super::api::{DeltaPage, GraphApi, GraphError};
use super::runner::backoff_delay;
use super::upkeep::Settings;
use crate::crypto::MasterKey;
use crate::metrics::Metrics;
use crate::model::{now, BackgroundTask, CatchUpState, Connection, ConnectionFilter, SourceKind, StatusChange};
use crate::passes::Passes;
use crate::store::{Accepted, OpOutcome, Store, WriteOp};

mod events;
pub mod resources;

pub use events::catch_up_event;
pub use resources::{delta_query, DeltaQuery};

/// How often every connection is looked at.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);

/// Pages read per connection in one pass.
pub const DEFAULT_PAGES_PER_PASS: u32 = 20;

/// The wait after a 429 without a `Retry-After`.
const THROTTLED_WAIT: Duration = Duration::from_secs(60);

/// The longest `Retry-After` honoured as it is (a longer one waits this long).
const MAX_THROTTLED_WAIT: Duration = Duration::from_secs(3600);

/// Why a catch-up is asked for, as the history says it.
pub const REASON_MISSED: &str = "Graph reported missed notifications";

/// Starts a pass of the catch-up now (cheap to clone: one `Arc`).
#[derive(Clone, Default)]
pub struct CatchUpHandle {
    shared: Arc<HandleShared>,
}

#[derive(Default)]
struct HandleShared {
    notify: Notify,
    running: AtomicBool,
}

impl CatchUpHandle {
    /// Asks for a pass as soon as the current one is done; without a running catch-up
    /// here it does nothing (the holder's next pass finds the request in the store).
    pub fn nudge(&self) {
        if self.shared.running.load(Ordering::SeqCst) {
            self.shared.notify.notify_one();
        }
    }
}

/// The catch-up task and what it needs.
#[derive(Clone)]
pub struct CatchUp {
    pub store: Arc<dyn Store>,
    pub key: Arc<MasterKey>,
    pub api: Arc<GraphApi>,
    pub interval: Duration,
    pub pages_per_pass: u32,
    pub handle: CatchUpHandle,
    /// Counts every completed pass.
    pub passes: Passes,
    pub metrics: Arc<Metrics>,
}

/// Marks the handle's catch-up as running for as long as it lives.
struct Running<'a>(&'a CatchUpHandle);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.shared.running.store(false, Ordering::SeqCst);
    }
}

/// When each connection may be asked again: after a 429, its `Retry-After`; after other
/// failures, the backoff. In memory: a restart asks at once.
#[derive(Default)]
struct Waits(HashMap<Uuid, Wait>);

struct Wait {
    failures: u32,
    not_before: Instant,
}

/// How a connection's turn in a pass ended.
enum Turn {
    Done,
    Throttled(Option<Duration>),
    Failed,
}

impl CatchUp {
    /// Runs a pass at once, then every `interval`, on every nudge and when a throttled
    /// connection may be asked again, until `stop` turns true.
    pub async fn run(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        self.handle.shared.running.store(true, Ordering::SeqCst);
        let _running = Running(&self.handle);
        let mut waits = Waits::default();
        loop {
            if *stop.borrow() {
                break;
            }
            self.pass(&mut waits).await;
            self.passes.completed();
            let now = Instant::now();
            let next = waits.0.values().map(|w| w.not_before).filter(|t| *t > now).min();
            let sleep = next.map_or(self.interval, |t| (t - now).min(self.interval));
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = self.handle.shared.notify.notified() => {}
                _ = stop.wait_for(|s| *s) => break,
            };
        }
    }

    /// Looks at every unpaused `ms_graph` connection with a subscription once.
    async fn pass(&self, waits: &mut Waits) {
        let filter = ConnectionFilter { source: Some(SourceKind::MsGraph), ..Default::default() };
        let connections = match self.store.list_connections(&filter).await {
            Ok(list) => list,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list connections for the Graph catch-up");
                return;
            }
        };
        waits.0.retain(|id, _| connections.iter().any(|c| c.id == *id));
        for connection in connections.iter().filter(|c| !c.facts.paused && c.config_public.get("subscription").is_some()) {
            if waits.0.get(&connection.id).is_some_and(|w| w.not_before > Instant::now()) {
                continue;
            }
            match self.keep(connection).await {
                Turn::Done => {
                    waits.0.remove(&connection.id);
                }
                Turn::Throttled(retry_after) => {
                    let wait = retry_after.unwrap_or(THROTTLED_WAIT).min(MAX_THROTTLED_WAIT);
                    let failures = waits.0.get(&connection.id).map_or(0, |w| w.failures);
                    waits.0.insert(connection.id, Wait { failures, not_before: Instant::now() + wait });
                }
                Turn::Failed => {
                    let failures = waits.0.get(&connection.id).map_or(0, |w| w.failures).saturating_add(1);
                    let not_before = Instant::now() + backoff_delay(self.interval, failures);
                    waits.0.insert(connection.id, Wait { failures, not_before });
                }
            }
        }
    }

    /// One connection's turn: takes up a new `missed` report, starts a round when one is
    /// due, and reads up to `pages_per_pass` pages of the round under way.
    async fn keep(&self, connection: &Connection) -> Turn {
        let settings = match crate::connections::open_config(&self.key, connection).map(|config| Settings::of(&config)) {
            Ok(Ok(Some(settings))) => settings,
            // The upkeep says what is wrong with the settings.
            Ok(_) => return Turn::Done,
            Err(e) => {
                tracing::warn!(connection = %connection.id, error = %e, "Graph catch-up cannot read the connection's secrets");
                return Turn::Done;
            }
        };
        match self.step(connection, &settings).await {
            Ok(turn) => turn,
            Err(e) => {
                tracing::warn!(connection = %connection.id, error = %e, "Graph catch-up state not kept; trying again");
                Turn::Failed
            }
        }
    }

    async fn step(&self, connection: &Connection, settings: &Settings) -> Result<Turn, crate::store::StoreError> {
        let id = connection.id;
        let mut state = self.store.catch_up_state(id).await?.unwrap_or(CatchUpState { connection_id: id, ..CatchUpState::default() });
        if state.resource.as_deref() != Some(settings.resource.as_str()) {
            // Links of another resource say nothing of this one.
            state = CatchUpState {
                connection_id: id,
                resource: Some(settings.resource.clone()),
                missed_seen_at: state.missed_seen_at,
                ..CatchUpState::default()
            };
            self.store.save_catch_up(&state).await?;
        }
        if let Some(missed) = connection.facts.missed_at.filter(|m| state.missed_seen_at.is_none_or(|seen| *m > seen)) {
            self.store.request_catch_up(id, REASON_MISSED, missed).await?;
            state.missed_seen_at = Some(missed);
            self.store.save_catch_up(&state).await?;
        }
        // Reread: a request is written apart from the progress.
        let mut state = self.store.catch_up_state(id).await?.unwrap_or(state);
        let query = match delta_query(&settings.resource) {
            Ok(query) => query,
            Err(why) => {
                if state.due_since.is_some() {
                    self.not_closable(connection, &state, &why).await?;
                    self.store.settle_catch_up(id, now()).await?;
                }
                return Ok(Turn::Done);
            }
        };
        if state.next_link.is_none() {
            let started = now();
            match (&state.delta_link, state.due_since) {
                (Some(link), Some(_)) => {
                    state.next_link = Some(link.clone());
                    state.round_stores = true;
                }
                (None, Some(_)) if connection.facts.external_id.is_some() => {
                    let why = format!("no earlier delta state of resource {} is known; its state is read now", settings.resource);
                    self.not_closable(connection, &state, &why).await?;
                    self.store.settle_catch_up(id, started).await?;
                    state.next_link = Some(self.api.graph_url_of(&query.first_read()));
                    state.round_stores = false;
                }
                (None, None) if connection.facts.external_id.is_some() => {
                    state.next_link = Some(self.api.graph_url_of(&query.first_read()));
                    state.round_stores = false;
                }
                _ => return Ok(Turn::Done),
            }
            state.round_started_at = Some(started);
            state.round_items = 0;
            state.round_duplicates = 0;
            self.store.save_catch_up(&state).await?;
        }
        for _ in 0..self.pages_per_pass.max(1) {
            let Some(url) = state.next_link.clone() else { break };
            let page = match self.api.delta(&settings.credentials, &url).await {
                Ok(page) => page,
                Err(GraphError::Throttled { retry_after, .. }) => {
                    tracing::info!(connection = %id, ?retry_after, "Graph throttled the catch-up's delta query; waiting as it asked");
                    self.metrics.graph_catch_up_throttled();
                    return Ok(Turn::Throttled(retry_after));
                }
                Err(e) if forgot_the_state(&e) => {
                    let why =
                        format!("Graph no longer knows the delta state of resource {} ({e}); its state is read anew", settings.resource);
                    if state.round_stores || state.due_since.is_some() {
                        self.not_closable(connection, &state, &why).await?;
                        self.store.settle_catch_up(id, now()).await?;
                    } else {
                        self.store.record_task(id, BackgroundTask::CatchUp, now(), Some(&why)).await?;
                    }
                    state = CatchUpState {
                        connection_id: id,
                        resource: state.resource,
                        missed_seen_at: state.missed_seen_at,
                        ..CatchUpState::default()
                    };
                    self.store.save_catch_up(&state).await?;
                    return Ok(Turn::Done);
                }
                Err(e) => {
                    tracing::warn!(connection = %id, error = %e, "Graph catch-up's delta query failed");
                    self.store.record_task(id, BackgroundTask::CatchUp, now(), Some(&e.to_string())).await?;
                    return Ok(Turn::Failed);
                }
            };
            if state.round_stores && !self.store_page(connection, settings, &query, &page, &mut state).await? {
                return Ok(Turn::Failed);
            }
            match (page.next_link, page.delta_link) {
                (Some(next), _) => {
                    state.next_link = Some(next);
                    self.store.save_catch_up(&state).await?;
                }
                (None, delta) => {
                    state.delta_link = delta;
                    state.next_link = None;
                    self.store.save_catch_up(&state).await?;
                    self.round_done(connection, settings, &state).await?;
                    break;
                }
            }
        }
        Ok(Turn::Done)
    }

    /// Stores the page's changes; false when they could not be stored (the page is read
    /// again on the next try).
    async fn store_page(
        &self,
        connection: &Connection,
        settings: &Settings,
        query: &DeltaQuery,
        page: &DeltaPage,
        state: &mut CatchUpState,
    ) -> Result<bool, crate::store::StoreError> {
        let subscription = connection.facts.external_id.as_deref();
        let tenant = Some(settings.credentials.tenant_id.as_str());
        let events: Vec<_> = page.items.iter().filter_map(|item| catch_up_event(subscription, tenant, &query.item_base, item)).collect();
        if events.is_empty() {
            return Ok(true);
        }
        let accepted = Accepted {
            connection_id: connection.id,
            tenant_id: connection.tenant_id.clone(),
            source: SourceKind::MsGraph,
            stream: connection.stream.clone(),
            received_at: now(),
            events,
            heartbeat: None,
            confirms: false,
            authenticated: false,
            kept_rejections: Vec::new(),
            changes: Vec::new(),
            fetches: Vec::new(),
        };
        match self.store.commit(&[WriteOp::Accept(accepted)]).await?.first() {
            Some(OpOutcome::Accepted { stored, duplicates }) => {
                state.round_items += i64::from(*stored);
                state.round_duplicates += i64::from(*duplicates);
                self.metrics.graph_catch_up_items(*stored, *duplicates);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// A round read to its end: its outcome in the history and on the connection.
    async fn round_done(&self, connection: &Connection, settings: &Settings, state: &CatchUpState) -> Result<(), crate::store::StoreError> {
        let id = connection.id;
        let at = now();
        if state.round_stores {
            let text = format!(
                "Missed changes caught up: {} changes of {} read with a delta query were stored ({} were stored already)",
                state.round_items, settings.resource, state.round_duplicates
            );
            tracing::info!(connection = %id, stored = state.round_items, duplicates = state.round_duplicates, "Graph catch-up done");
            // News for the history: changes were read, or Graph's report of lost
            // notifications is answered. A subscription created again with nothing changed
            // meanwhile leaves only `catch_up.last_success_at`.
            if state.round_items + state.round_duplicates > 0 || state.due_reason.as_deref() == Some(REASON_MISSED) {
                self.store.record_task(id, BackgroundTask::CatchUp, at, None).await?;
                self.note(connection, at, text).await?;
            }
            self.metrics.graph_catch_up_round("caught_up");
        } else {
            tracing::info!(connection = %id, resource = settings.resource, "Graph catch-up learned the delta state");
            self.metrics.graph_catch_up_round("first_read");
        }
        self.store.record_task(id, BackgroundTask::CatchUp, at, None).await?;
        if let Some(started) = state.round_started_at.filter(|_| state.round_stores) {
            self.store.settle_catch_up(id, started).await?;
        }
        Ok(())
    }

    /// Says that a gap cannot be closed, and why, in the history and on the connection.
    async fn not_closable(&self, connection: &Connection, state: &CatchUpState, why: &str) -> Result<(), crate::store::StoreError> {
        let reason = state.due_reason.as_deref().unwrap_or(REASON_MISSED);
        let text = format!("the gap cannot be closed: {why} ({reason})");
        tracing::warn!(connection = %connection.id, "{text}");
        let at = now();
        // The outcome first: whoever reads the note finds it on the connection too.
        self.store.record_task(connection.id, BackgroundTask::CatchUp, at, Some(&text)).await?;
        self.metrics.graph_catch_up_round("not_closable");
        self.note(connection, at, text).await
    }

    /// Enters `text` in the history with the connection's status unchanged.
    async fn note(&self, connection: &Connection, at: DateTime<Utc>, text: String) -> Result<(), crate::store::StoreError> {
        let (status, _) = crate::health::status_of(connection, at);
        let entry = StatusChange { at, old_status: Some(status), new_status: status, message: Some(text) };
        self.store.record_note(connection.id, &entry).await
    }
}

/// Graph no longer knows the delta state a link names: 410 Gone (Outlook, drives), or 400
/// `syncStateNotFound` / `resyncRequired` (directory objects, whose links last 7 days).
fn forgot_the_state(e: &GraphError) -> bool {
    match e {
        GraphError::Refused { status: 410, .. } => true,
        GraphError::Refused { status: 400, code, message, .. } => {
            let text = format!("{code} {message}").to_ascii_lowercase();
            text.contains("syncstatenotfound") || text.contains("resyncrequired") || text.contains("sync state")
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forgotten_delta_state_is_told_from_other_refusals() {
        let refused = |status: u16, code: &str, message: &str| GraphError::Refused {
            call: "delta query",
            status,
            code: code.into(),
            message: message.into(),
        };
        assert!(forgot_the_state(&refused(410, "resyncRequired", "Resync required")));
        // "Duration of change tracking tokens for identity and education resources".
        assert!(forgot_the_state(&refused(
            400,
            "syncStateNotFound",
            "The sync state generation is not found. The delta token is expired and data must be synchronized again."
        )));
        assert!(!forgot_the_state(&refused(400, "BadRequest", "Unsupported query.")));
        assert!(!forgot_the_state(&refused(403, "Authorization_RequestDenied", "Insufficient privileges")));
        assert!(!forgot_the_state(&GraphError::Throttled { call: "delta query", retry_after: None }));
    }
}
