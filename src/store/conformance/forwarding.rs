//! The forwarding half of the conformance suite ([`crate::store::Forwarding`]), on both
//! backends, and the PostgreSQL case that makes commit order differ from `seq` order.

use super::*;
use crate::model::{
    Backlog, CompletedBatch, CompletedReplay, DestinationKind, DestinationUpdate, EventFilter, Hold, Lease, NewDeadLetter, NewDestination,
    PlannedBatch, Position, PruneOutcome, PruneWindow, StartFrom,
};

conformance!(
    destinations_round_trip,
    events_are_read_in_commit_order_up_to_the_horizon,
    start_from_now_begins_at_the_horizon,
    leases_fence_every_write,
    batches_complete_with_their_dead_letters_once,
    dead_letters_are_replayed,
    backlog_counts_what_is_undelivered,
    retention_deletes_only_what_was_delivered,
    history_follows_retention,
    commits_tick_the_signal,
);

fn new_destination(name: &str, filter: EventFilter, start_from: StartFrom) -> NewDestination {
    NewDestination {
        id: Uuid::new_v4(),
        name: name.into(),
        kind: DestinationKind::Nats,
        filter,
        start_from,
        config_public: json!({"url": "nats://127.0.0.1:4222", "auth": {"type": "token", "token": "***"}}),
        config_sealed: "v1:sealed".into(),
        created_at: now(),
    }
}

/// A connection of `tenant` with `keys` stored, in one commit.
async fn stored(store: &Arc<dyn Store>, tenant: &str, source: SourceKind, keys: &[&str]) -> NewConnection {
    let c = new_connection(tenant, source);
    store.create_connection(&c).await.unwrap();
    store.commit(&[accept(&c, keys)]).await.unwrap();
    c
}

/// The horizon once every committed event lies below it. On PostgreSQL the horizon is the
/// oldest running transaction of the whole cluster, so other tests' transactions (in
/// their own databases) may hold it back for a moment.
async fn settled_horizon(store: &Arc<dyn Store>) -> Position {
    let committed = store.backlog(Position::START, &EventFilter::default()).await.unwrap().events as usize;
    for _ in 0..500 {
        let horizon = store.horizon().await.unwrap();
        if store.read_events(Position::START, horizon, &EventFilter::default(), 100_000).await.unwrap().len() >= committed {
            return horizon;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the horizon never passed the committed events");
}

async fn keys_after(store: &Arc<dyn Store>, after: Position, filter: &EventFilter) -> Vec<String> {
    let horizon = settled_horizon(store).await;
    store.read_events(after, horizon, filter, 1000).await.unwrap().into_iter().map(|e| e.dedupe_key).collect()
}

async fn lease(store: &Arc<dyn Store>, id: Uuid, holder: &str) -> Lease {
    let at = now();
    store.acquire_destination(id, holder, at, at + Duration::seconds(15)).await.unwrap().expect("the lease is free")
}

async fn destinations_round_trip(store: Arc<dyn Store>) {
    let filter = EventFilter { streams: Some(vec!["cloud_*".into()]), ..EventFilter::default() };
    let new = new_destination("SOC bus", filter.clone(), StartFrom::Earliest);
    let d = store.create_destination(&new).await.unwrap();
    assert_eq!(
        (d.id, d.name.as_str(), d.kind, &d.filter, d.start_from),
        (new.id, "SOC bus", DestinationKind::Nats, &filter, StartFrom::Earliest)
    );
    assert_eq!((d.position, d.planned, d.lease.is_none(), d.failing, d.paused), (Position::START, None, true, false, false));
    assert_eq!(d.config_public, new.config_public);
    assert_eq!(store.get_destination(d.id).await.unwrap(), Some(d.clone()));
    assert_eq!(store.list_destinations().await.unwrap(), std::slice::from_ref(&d));
    let later = now() + Duration::seconds(1);
    let update = DestinationUpdate {
        name: Some("renamed".into()),
        filter: Some(EventFilter::default()),
        config: Some((json!({"url": "nats://h"}), "v1:new".into())),
    };
    let changed = store.update_destination(d.id, &update, later).await.unwrap().unwrap();
    assert_eq!(
        (changed.name.as_str(), &changed.filter, changed.config_sealed.as_str(), changed.updated_at),
        ("renamed", &EventFilter::default(), "v1:new", later)
    );
    assert!(store.set_destination_paused(d.id, true, now()).await.unwrap().unwrap().paused);
    assert!(
        store.acquire_destination(d.id, "a", now(), now() + Duration::seconds(9)).await.unwrap().is_none(),
        "paused: nobody delivers it"
    );
    assert!(store.update_destination(Uuid::new_v4(), &update, later).await.unwrap().is_none());
    assert!(store.delete_destination(d.id).await.unwrap());
    assert!(!store.delete_destination(d.id).await.unwrap());
    assert_eq!(store.get_destination(d.id).await.unwrap(), None);
}

async fn events_are_read_in_commit_order_up_to_the_horizon(store: Arc<dyn Store>) {
    stored(&store, "acme", SourceKind::AwsSns, &["a1", "a2"]).await;
    stored(&store, "other", SourceKind::Webhook, &["o1"]).await;
    stored(&store, "acme", SourceKind::Webhook, &["a3"]).await;
    let all = EventFilter::default();
    assert_eq!(keys_after(&store, Position::START, &all).await, ["a1", "a2", "o1", "a3"]);
    let horizon = settled_horizon(&store).await;
    let records = store.read_events(Position::START, horizon, &all, 2).await.unwrap();
    assert_eq!(records.len(), 2, "the limit holds");
    assert!(records[0].position < records[1].position);
    assert_eq!(keys_after(&store, records[1].position, &all).await, ["o1", "a3"], "after a position");
    let upto = records[0].position;
    assert_eq!(store.read_events(Position::START, upto, &all, 10).await.unwrap().len(), 1, "never past `upto`");
    let acme = EventFilter { tenant_ids: Some(vec!["acme".into()]), ..EventFilter::default() };
    assert_eq!(keys_after(&store, Position::START, &acme).await, ["a1", "a2", "a3"]);
    let webhook_alerts = EventFilter { sources: Some(vec!["webhook".into()]), kinds: Some(vec!["alert".into()]), ..EventFilter::default() };
    assert_eq!(keys_after(&store, Position::START, &webhook_alerts).await, ["o1", "a3"]);
    let prefix = EventFilter { streams: Some(vec!["cloud_aws_*".into()]), ..EventFilter::default() };
    assert_eq!(keys_after(&store, Position::START, &prefix).await, ["a1", "a2"]);
    let exact = EventFilter { streams: Some(vec!["webhook_event".into(), "nothing".into()]), ..EventFilter::default() };
    assert_eq!(keys_after(&store, Position::START, &exact).await, ["o1", "a3"]);
    let telemetry = EventFilter { kinds: Some(vec!["telemetry".into()]), ..EventFilter::default() };
    assert!(keys_after(&store, Position::START, &telemetry).await.is_empty());
    // A record is the stored event, payload text and all.
    let record = &store.read_events(Position::START, horizon, &acme, 1).await.unwrap()[0];
    assert_eq!((record.tenant_id.as_str(), record.source, record.kind), ("acme", SourceKind::AwsSns, EventKind::Alert));
    let payload: serde_json::Value = serde_json::from_str(record.payload.get()).unwrap();
    assert_eq!(payload, json!({"key": "a1", "nested": {"list": [1, 2.5, "ß", null]}}));
    assert!(horizon >= records[1].position);
}

async fn start_from_now_begins_at_the_horizon(store: Arc<dyn Store>) {
    stored(&store, "acme", SourceKind::Webhook, &["before"]).await;
    // `now` starts at the horizon: wait until the event above lies below it.
    settled_horizon(&store).await;
    let d = store.create_destination(&new_destination("now", EventFilter::default(), StartFrom::Now)).await.unwrap();
    stored(&store, "acme", SourceKind::Webhook, &["after"]).await;
    assert_eq!(keys_after(&store, d.position, &EventFilter::default()).await, ["after"]);
    let earliest = store.create_destination(&new_destination("all", EventFilter::default(), StartFrom::Earliest)).await.unwrap();
    assert_eq!(keys_after(&store, earliest.position, &EventFilter::default()).await, ["before", "after"]);
}

async fn leases_fence_every_write(store: Arc<dyn Store>) {
    let d = store.create_destination(&new_destination("bus", EventFilter::default(), StartFrom::Earliest)).await.unwrap();
    let first = lease(&store, d.id, "replica-a").await;
    let at = now();
    assert!(store.acquire_destination(d.id, "replica-b", at, at + Duration::seconds(15)).await.unwrap().is_none(), "held");
    assert!(store.renew_destination(&first, at + Duration::seconds(15)).await.unwrap());
    let held = store.get_destination(d.id).await.unwrap().unwrap().lease.unwrap();
    assert_eq!(held.holder, "replica-a");
    // The holder stops renewing: once the lease expired, another takes it over.
    let later = at + Duration::seconds(16);
    let second = store.acquire_destination(d.id, "replica-b", later, later + Duration::seconds(15)).await.unwrap().unwrap();
    assert!(second.generation > first.generation);
    let end = Position { xid: 0, seq: 10 };
    assert!(!store.plan_batch(&first, Uuid::new_v4(), end).await.unwrap(), "the old holder is fenced out");
    let done = CompletedBatch { end, delivered: 1, dead_letters: vec![], next: None, at: now() };
    assert!(!store.complete_batch(&first, &done).await.unwrap());
    assert!(!store.record_failure(&first, now(), "x").await.unwrap());
    assert!(!store.skip_to(&first, end).await.unwrap());
    assert!(!store.renew_destination(&first, later).await.unwrap());
    assert_eq!(store.get_destination(d.id).await.unwrap().unwrap().position, Position::START, "nothing moved");
    // The new holder plans, and its plan is what a restart reads back.
    let batch = Uuid::new_v4();
    assert!(store.plan_batch(&second, batch, end).await.unwrap());
    assert_eq!(store.get_destination(d.id).await.unwrap().unwrap().planned.map(|p| (p.id, p.end)), Some((batch, end)));
    assert!(store.record_failure(&second, now(), "connection refused").await.unwrap());
    let failing = store.get_destination(d.id).await.unwrap().unwrap();
    assert!(failing.failing);
    assert_eq!((failing.last_error.unwrap().message.as_str(), failing.counters.retries), ("connection refused", 1));
    assert!(!store.skip_to(&second, Position { xid: 0, seq: 20 }).await.unwrap(), "no skipping over a planned batch");
    assert!(store.complete_batch(&second, &done).await.unwrap());
    let moved = store.get_destination(d.id).await.unwrap().unwrap();
    assert_eq!((moved.position, moved.planned, moved.failing, moved.counters.delivered), (end, None, false, 1));
    assert!(moved.last_delivered_at.is_some());
    // Completing a batch may plan the next one in the same write.
    let next = PlannedBatch { id: Uuid::new_v4(), end: Position { xid: 0, seq: 15 } };
    let chained = CompletedBatch { end: Position { xid: 0, seq: 12 }, delivered: 0, dead_letters: vec![], next: Some(next), at: now() };
    assert!(store.complete_batch(&second, &chained).await.unwrap());
    let planned = store.get_destination(d.id).await.unwrap().unwrap();
    assert_eq!((planned.position, planned.planned), (Position { xid: 0, seq: 12 }, Some(next)));
    assert!(store
        .complete_batch(&second, &CompletedBatch { end: Position { xid: 0, seq: 15 }, next: None, ..chained.clone() })
        .await
        .unwrap());
    assert!(store.skip_to(&second, Position { xid: 0, seq: 20 }).await.unwrap());
    assert!(!store.skip_to(&second, end).await.unwrap(), "never back");
    let back = CompletedBatch { end, delivered: 1, dead_letters: vec![], next: None, at: now() };
    assert!(!store.complete_batch(&second, &back).await.unwrap(), "a completion never moves the position back");
    assert!(!store.plan_batch(&second, Uuid::new_v4(), end).await.unwrap(), "a plan never ends behind the position");
    assert_eq!(store.get_destination(d.id).await.unwrap().unwrap().position, Position { xid: 0, seq: 20 });
    store.release_destination(&second).await.unwrap();
    assert!(store.get_destination(d.id).await.unwrap().unwrap().lease.is_none());
    let third = lease(&store, d.id, "replica-a").await;
    assert!(third.generation > second.generation);
}

fn letter(event: Uuid, reason: &str) -> NewDeadLetter {
    NewDeadLetter { event_id: event, reason: reason.into(), attempts: 4, record: format!("{{\"id\":\"{event}\"}}") }
}

async fn batches_complete_with_their_dead_letters_once(store: Arc<dyn Store>) {
    let d = store.create_destination(&new_destination("bus", EventFilter::default(), StartFrom::Earliest)).await.unwrap();
    let l = lease(&store, d.id, "a").await;
    let (e1, e2) = (Uuid::new_v4(), Uuid::new_v4());
    let done = CompletedBatch {
        end: Position { xid: 0, seq: 5 },
        delivered: 3,
        dead_letters: vec![letter(e1, "HTTP 400: bad"), letter(e2, "HTTP 413: too large")],
        next: None,
        at: now(),
    };
    assert!(store.complete_batch(&l, &done).await.unwrap());
    // The same batch again (resent after a crash): its dead letters are kept once.
    assert!(store.complete_batch(&l, &done).await.unwrap());
    let letters = store.list_dead_letters(d.id, 10).await.unwrap();
    assert_eq!(letters.iter().map(|x| x.event_id).collect::<Vec<_>>(), [e2, e1], "newest first");
    assert_eq!((letters[1].reason.as_str(), letters[1].attempts), ("HTTP 400: bad", 4));
    let counters = store.get_destination(d.id).await.unwrap().unwrap().counters;
    assert_eq!((counters.delivered, counters.dead_letters), (6, 2));
    assert_eq!(store.list_dead_letters(d.id, 1).await.unwrap().len(), 1);
    assert!(store.delete_destination(d.id).await.unwrap());
    assert!(store.list_dead_letters(d.id, 10).await.unwrap().is_empty(), "deleted with the destination");
}

async fn dead_letters_are_replayed(store: Arc<dyn Store>) {
    let d = store.create_destination(&new_destination("bus", EventFilter::default(), StartFrom::Earliest)).await.unwrap();
    let l = lease(&store, d.id, "a").await;
    let (e1, e2) = (Uuid::new_v4(), Uuid::new_v4());
    let done = CompletedBatch {
        end: Position::START,
        delivered: 0,
        dead_letters: vec![letter(e1, "bad"), letter(e2, "bad")],
        next: None,
        at: now(),
    };
    store.complete_batch(&l, &done).await.unwrap();
    assert!(store.replays(d.id, 10).await.unwrap().is_empty(), "none asked for");
    assert_eq!(store.request_replay(d.id).await.unwrap(), 2);
    let waiting = store.replays(d.id, 10).await.unwrap();
    assert_eq!(waiting.iter().map(|x| x.event_id).collect::<Vec<_>>(), [e1, e2], "oldest first");
    assert_eq!(waiting[0].record, format!("{{\"id\":\"{e1}\"}}"));
    let replay = CompletedReplay { delivered: vec![waiting[0].id], refused: vec![(waiting[1].id, "still bad".into())] };
    assert!(store.complete_replay(&l, &replay, now()).await.unwrap());
    let left = store.list_dead_letters(d.id, 10).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!((left[0].event_id, left[0].reason.as_str(), left[0].attempts), (e2, "still bad", 5));
    assert!(store.replays(d.id, 10).await.unwrap().is_empty(), "tried once");
    assert_eq!(store.get_destination(d.id).await.unwrap().unwrap().counters.delivered, 1);
}

async fn backlog_counts_what_is_undelivered(store: Arc<dyn Store>) {
    let acme = EventFilter { tenant_ids: Some(vec!["acme".into()]), ..EventFilter::default() };
    assert_eq!(store.backlog(Position::START, &acme).await.unwrap(), Backlog::default());
    stored(&store, "acme", SourceKind::Webhook, &["a1", "a2"]).await;
    stored(&store, "other", SourceKind::Webhook, &["o1"]).await;
    let backlog = store.backlog(Position::START, &acme).await.unwrap();
    assert_eq!(backlog.events, 2);
    assert!(backlog.oldest_received_at.is_some());
    let first = store.read_events(Position::START, settled_horizon(&store).await, &acme, 1).await.unwrap();
    assert_eq!(store.backlog(first[0].position, &acme).await.unwrap().events, 1);
    assert_eq!(store.backlog(Position::START, &EventFilter::default()).await.unwrap().events, 3);
}

async fn retention_deletes_only_what_was_delivered(store: Arc<dyn Store>) {
    let c = stored(&store, "acme", SourceKind::Webhook, &["e1", "e2", "e3"]).await;
    let other = stored(&store, "other", SourceKind::Webhook, &["o1"]).await;
    let all = store.read_events(Position::START, settled_horizon(&store).await, &EventFilter::default(), 10).await.unwrap();
    let seqs = (all[0].position.seq - 1, all[3].position.seq);
    let acme = EventFilter { tenant_ids: Some(vec!["acme".into()]), ..EventFilter::default() };
    let d = store.create_destination(&new_destination("acme", acme.clone(), StartFrom::Earliest)).await.unwrap();
    // Delivered up to e1; e2 and e3 are held; o1 is not the destination's to hold.
    let hold = Hold { destination: d.id, position: all[0].position, filter: acme.clone(), bounded: true };
    let window = |cutoff, expire_before, holds| PruneWindow { after_seq: seqs.0, upto_seq: seqs.1, cutoff, expire_before, holds };
    let future = now() + Duration::hours(1);
    let past = now() - Duration::hours(1);
    let young = store.prune_events(&window(past, past, vec![hold.clone()]), now()).await.unwrap();
    assert_eq!(young, PruneOutcome::default(), "nothing is old yet");
    let outcome = store.prune_events(&window(future, past, vec![hold.clone()]), now()).await.unwrap();
    assert_eq!((outcome.old, outcome.deleted, outcome.expired.len()), (4, 2, 0));
    assert_eq!(store.list_events(c.id, 10, None).await.unwrap().iter().map(|e| e.dedupe_key.as_str()).collect::<Vec<_>>(), ["e3", "e2"]);
    assert!(store.list_events(other.id, 10, None).await.unwrap().is_empty());
    // A running destination holds them however old they are.
    let running = Hold { bounded: false, ..hold.clone() };
    let outcome = store.prune_events(&window(future, future, vec![running]), now()).await.unwrap();
    assert_eq!((outcome.old, outcome.deleted), (2, 0));
    // Paused or failing, held past the backlog bound: deleted anyway, counted as expired on it.
    let outcome = store.prune_events(&window(future, future, vec![hold]), now()).await.unwrap();
    assert_eq!((outcome.deleted, outcome.expired.clone()), (2, vec![(d.id, 2)]));
    let expired = store.get_destination(d.id).await.unwrap().unwrap();
    assert_eq!(expired.counters.expired, 2);
    assert!(expired.last_error.unwrap().message.contains("2 events were deleted by retention before delivery"));
    assert_eq!(store.retention_window(0, 1000).await.unwrap(), None, "the table is empty");
    // New events after the table was emptied come after every position: never behind one.
    stored(&store, "acme", SourceKind::Webhook, &["new"]).await;
    assert_eq!(keys_after(&store, all[3].position, &EventFilter::default()).await, ["new"]);
    let next = store.read_events(Position::START, settled_horizon(&store).await, &EventFilter::default(), 1).await.unwrap();
    assert!(next[0].position > all[3].position, "a deleted seq is never reused");
    assert_eq!(store.retention_window(0, 1000).await.unwrap(), Some(next[0].position.seq));
}

async fn history_follows_retention(store: Arc<dyn Store>) {
    let c = new_connection("acme", SourceKind::Webhook);
    store.create_connection(&c).await.unwrap();
    let old = now() - Duration::days(40);
    let change = StatusChange { at: old, old_status: None, new_status: Status::RequiresAction, message: None };
    store.record_status(c.id, &change).await.unwrap();
    let recent = StatusChange { at: now(), old_status: Some(Status::RequiresAction), new_status: Status::Connected, message: None };
    store.record_status(c.id, &recent).await.unwrap();
    let delivery = AlertDelivery {
        subject: AlertSubject::Connection(c.id),
        at: old,
        old_status: None,
        new_status: "requires_action".into(),
        message: None,
        attempts: 1,
        delivered: true,
        last_error: None,
        finished_at: old,
    };
    store.record_alert_delivery(&delivery).await.unwrap();
    assert_eq!(store.prune_history(now() - Duration::days(30), 1000).await.unwrap(), 2);
    assert_eq!(store.list_history(c.id).await.unwrap(), [recent]);
    assert!(store.list_alert_deliveries(AlertSubject::Connection(c.id), 10).await.unwrap().is_empty());
}

async fn commits_tick_the_signal(store: Arc<dyn Store>) {
    let mut commits = store.commits();
    let before = *commits.borrow_and_update();
    let c = stored(&store, "acme", SourceKind::Webhook, &["e1"]).await;
    assert!(commits.has_changed().unwrap(), "a commit that stored events ticks");
    assert_ne!(*commits.borrow_and_update(), before);
    store.commit(&[accept(&c, &["e1"])]).await.unwrap();
    assert!(!commits.has_changed().unwrap(), "a duplicate stores nothing: no tick");
}

/// PostgreSQL: a transaction that inserted a row with a lower `seq` and commits after one
/// with a higher `seq` is read in commit order, after it, and never skipped.
#[tokio::test]
async fn postgres_reads_a_late_commit_after_an_earlier_one() {
    use sqlx::{Connection, PgConnection};
    let Some(url) = crate::testing::fresh_postgres_url("store::postgres_reads_a_late_commit_after_an_earlier_one").await else { return };
    let store: Arc<dyn Store> = Arc::new(PostgresStore::connect(&url).await.unwrap());
    store.migrate().await.unwrap();
    let c = new_connection("acme", SourceKind::Webhook);
    store.create_connection(&c).await.unwrap();
    let insert = "INSERT INTO events (id, connection_id, tenant_id, source, stream, kind, dedupe_key, received_at, payload) \
        VALUES ($1, $2, 'acme', 'webhook', 'webhook_event', 'alert', $3, now(), '{}'::jsonb) RETURNING seq";
    let mut slow = PgConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut slow).await.unwrap();
    let slow_seq: i64 =
        sqlx::query_scalar(insert).bind(Uuid::new_v4().to_string()).bind(c.id.to_string()).bind("slow").fetch_one(&mut slow).await.unwrap();
    // A later transaction takes a higher seq and commits first.
    store.commit(&[accept(&c, &["fast"])]).await.unwrap();
    let all = EventFilter::default();
    let horizon = store.horizon().await.unwrap();
    assert!(store.read_events(Position::START, horizon, &all, 10).await.unwrap().is_empty(), "nothing past a running transaction");
    let cursor = horizon;
    sqlx::query("COMMIT").execute(&mut slow).await.unwrap();
    let read = store.read_events(cursor, settled_horizon(&store).await, &all, 10).await.unwrap();
    let keys: Vec<_> = read.iter().map(|e| (e.dedupe_key.as_str(), e.position.seq)).collect();
    assert_eq!(keys[0], ("slow", slow_seq), "read first: its transaction began first");
    assert_eq!(keys.iter().map(|(k, _)| *k).collect::<Vec<_>>(), ["slow", "fast"]);
    assert!(keys[1].1 > slow_seq, "the fast row has the higher seq");
}
