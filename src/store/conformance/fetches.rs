//! Office 365 content fetching's half of the conformance suite ([`crate::store::Fetches`]),
//! on both backends: fetches queued with their notification, once; a blob's records
//! stored with its row done, once; retries, deferrals, refusals and expiry, each fenced
//! with the `o365_fetch` job lease.

use super::*;
use crate::model::{Alert, ContentFetch, JobLease, QueuedFetch};

conformance!(
    a_new_notification_queues_its_fetch_once,
    only_commits_that_queue_a_fetch_tick_its_signal,
    a_fetched_blob_is_stored_once_with_its_row_done,
    failures_are_retried_deferred_and_fenced,
    a_refused_uri_is_kept_as_a_rejection,
    expired_content_is_counted_entered_and_alerted_once,
    finished_fetches_are_pruned_and_deleted_with_their_connection,
);

fn content(id: &str, expires_in: i64) -> ContentFetch {
    ContentFetch {
        content_id: id.into(),
        content_type: "Audit.Exchange".into(),
        content_uri: format!("https://manage.office.com/api/v1.0/t/activity/feed/audit/{id}"),
        content_created: Some(now() - Duration::minutes(1)),
        expires_at: now() + Duration::seconds(expires_in),
        event_key: id.into(),
    }
}

/// A push storing notifications `ids` (as lifecycle events) and queueing their blobs.
fn notify(c: &NewConnection, ids: &[&str]) -> WriteOp {
    let WriteOp::Accept(mut a) = accept(c, ids) else { unreachable!() };
    a.events.iter_mut().for_each(|e| e.kind = EventKind::Lifecycle);
    a.fetches = ids.iter().map(|id| content(id, 3600)).collect();
    WriteOp::Accept(a)
}

async fn o365(store: &Arc<dyn Store>) -> NewConnection {
    let c = new_connection("acme", SourceKind::O365Activity);
    store.create_connection(&c).await.unwrap();
    c
}

async fn lease(store: &Arc<dyn Store>, holder: &str) -> JobLease {
    let at = now();
    store.acquire_job("o365_fetch", holder, at, at + Duration::seconds(20)).await.unwrap().expect("the fetch lease is free")
}

fn record(id: &str) -> NewEvent {
    NewEvent { dedupe_key: id.into(), kind: EventKind::Telemetry, occurred_at: Some(now()), payload: json!({"Id": id}) }
}

async fn due(store: &Arc<dyn Store>) -> Vec<QueuedFetch> {
    store.due_fetches(now() + Duration::seconds(1), 100).await.unwrap()
}

async fn a_new_notification_queues_its_fetch_once(store: Arc<dyn Store>) {
    let c = o365(&store).await;
    store.commit(&[notify(&c, &["a", "b"]), notify(&c, &["a"])]).await.unwrap();
    store.commit(&[notify(&c, &["b", "c"])]).await.unwrap();
    let queued = due(&store).await;
    assert_eq!(queued.iter().map(|f| f.content_id.as_str()).collect::<Vec<_>>(), ["a", "b", "c"], "each content id once, in order");
    let a = &queued[0];
    assert_eq!((a.connection_id, a.attempts, a.last_error.as_deref()), (c.id, 0, None));
    assert_eq!(a.content_uri, "https://manage.office.com/api/v1.0/t/activity/feed/audit/a");
    let connection = store.get_connection(c.id).await.unwrap().unwrap();
    assert_eq!((connection.fetch.backlog, connection.counters.events), (3, 3));
    assert!(store.due_fetches(now() - Duration::minutes(1), 100).await.unwrap().is_empty(), "not due before it was queued");
    assert!(store.next_fetch_due().await.unwrap().is_some_and(|t| t <= now()));
}

async fn only_commits_that_queue_a_fetch_tick_its_signal(store: Arc<dyn Store>) {
    let mut queued = store.fetches_queued();
    queued.borrow_and_update();
    let c = o365(&store).await;
    store.commit(&[accept(&c, &["plain"])]).await.unwrap();
    assert!(!queued.has_changed().unwrap(), "an event without content to fetch leaves the fetch job asleep");
    store.commit(&[notify(&c, &["blob"])]).await.unwrap();
    assert!(queued.has_changed().unwrap(), "a queued fetch wakes it");
    queued.borrow_and_update();
    store.commit(&[notify(&c, &["blob"])]).await.unwrap();
    assert!(!queued.has_changed().unwrap(), "a repeated notification queues nothing");
}

async fn a_fetched_blob_is_stored_once_with_its_row_done(store: Arc<dyn Store>) {
    let c = o365(&store).await;
    store.commit(&[notify(&c, &["blob"])]).await.unwrap();
    let connection = store.get_connection(c.id).await.unwrap().unwrap();
    let fetch = due(&store).await.remove(0);
    let mine = lease(&store, "a").await;
    let records: Vec<_> = (0..700).map(|i| record(&format!("r{i}"))).collect();
    let at = now();
    assert_eq!(store.finish_fetch(&mine, &fetch, &connection, &records, at).await.unwrap(), Some(700), "two inserts, one transaction");
    assert_eq!(store.finish_fetch(&mine, &fetch, &connection, &records, at).await.unwrap(), None, "done once");
    let after = store.get_connection(c.id).await.unwrap().unwrap();
    assert_eq!((after.fetch.records, after.fetch.backlog, after.counters.events), (700, 0, 701));
    assert_eq!(after.fetch.last_fetched_at, Some(at));
    let events = store.list_events(c.id, 1000, None).await.unwrap();
    let fetched = events.iter().find(|e| e.dedupe_key == "r5").unwrap();
    assert_eq!((fetched.kind, fetched.received_at, fetched.stream.as_str()), (EventKind::Telemetry, at, "cloud_ms_o365_activity_log"));
    assert!(due(&store).await.is_empty());

    // A blob fetched again after a crash stores nothing new.
    store.commit(&[notify(&c, &["again"])]).await.unwrap();
    let again = due(&store).await.remove(0);
    assert_eq!(store.finish_fetch(&mine, &again, &connection, &records[..3], now()).await.unwrap(), Some(0));
    let unchanged = store.get_connection(c.id).await.unwrap().unwrap();
    assert_eq!((unchanged.fetch.records, unchanged.fetch.last_fetched_at), (700, Some(at)), "nothing new: the time stays");
}

async fn failures_are_retried_deferred_and_fenced(store: Arc<dyn Store>) {
    let c = o365(&store).await;
    store.commit(&[notify(&c, &["x", "y"])]).await.unwrap();
    let mine = lease(&store, "a").await;
    let mut x = due(&store).await.remove(0);
    x.attempts = 1;
    x.next_attempt_at = now() + Duration::seconds(30);
    x.last_error = Some("the Management API answered 500".into());
    assert!(store.retry_fetch(&mine, &x, now()).await.unwrap());
    let queued = due(&store).await;
    assert_eq!(queued.iter().map(|f| f.content_id.as_str()).collect::<Vec<_>>(), ["y"], "x waits");
    let later = store.due_fetches(now() + Duration::seconds(31), 10).await.unwrap();
    assert_eq!((later[1].content_id.as_str(), later[1].attempts, later[1].last_error.as_deref()), ("x", 1, x.last_error.as_deref()));
    let connection = store.get_connection(c.id).await.unwrap().unwrap();
    assert_eq!(connection.fetch.last_error.as_deref(), Some("the Management API answered 500"));

    // Throttled: every fetch of the connection waits until then (x already waits longer).
    assert_eq!(store.defer_fetches(&mine, c.id, now() + Duration::seconds(10)).await.unwrap(), 1);
    assert!(due(&store).await.is_empty());
    // Never past the content's expiry.
    store.commit(&[notify(&c, &["short"])]).await.unwrap();
    let short = due(&store).await.remove(0);
    assert_eq!(store.defer_fetches(&mine, c.id, short.expires_at + Duration::hours(1)).await.unwrap(), 3);
    let deferred = store.due_fetches(short.expires_at, 10).await.unwrap();
    assert!(deferred.iter().all(|f| f.next_attempt_at <= f.expires_at), "{deferred:?}");

    // A replica that lost the lease changes nothing.
    let at = now() + Duration::seconds(30);
    let theirs = store.acquire_job("o365_fetch", "b", at, at + Duration::seconds(20)).await.unwrap().unwrap();
    assert!(!store.retry_fetch(&mine, &x, now()).await.unwrap());
    assert_eq!(store.defer_fetches(&mine, c.id, now() + Duration::days(30)).await.unwrap(), 0);
    assert_eq!(store.finish_fetch(&mine, &short, &connection, &[record("r")], now()).await.unwrap(), None);
    assert_eq!(store.finish_fetch(&theirs, &short, &connection, &[record("r")], now()).await.unwrap(), Some(1));
}

async fn a_refused_uri_is_kept_as_a_rejection(store: Arc<dyn Store>) {
    let c = o365(&store).await;
    store.commit(&[notify(&c, &["elsewhere"])]).await.unwrap();
    let mine = lease(&store, "a").await;
    let fetch = due(&store).await.remove(0);
    let rejection = NewRejection {
        connection_id: Some(c.id),
        at: now(),
        reason: "o365_content_uri_not_allowed".into(),
        source_addr: None,
        detail: "not the Management API".into(),
        body_prefix: "https://attacker.example/x".into(),
    };
    assert!(store.refuse_fetch(&mine, &fetch, &rejection).await.unwrap());
    assert!(!store.refuse_fetch(&mine, &fetch, &rejection).await.unwrap(), "refused once");
    assert!(due(&store).await.is_empty(), "never tried again");
    let kept = store.list_rejections(Some(c.id), 10).await.unwrap();
    assert_eq!(
        (kept.len(), kept[0].reason.as_str(), kept[0].body_prefix.as_str()),
        (1, "o365_content_uri_not_allowed", "https://attacker.example/x")
    );
    let connection = store.get_connection(c.id).await.unwrap().unwrap();
    assert_eq!((connection.counters.rejections, connection.fetch.backlog), (1, 0));
}

async fn expired_content_is_counted_entered_and_alerted_once(store: Arc<dyn Store>) {
    let c = o365(&store).await;
    store.commit(&[notify(&c, &["old1", "old2", "fresh"])]).await.unwrap();
    let mine = lease(&store, "a").await;
    let ids: Vec<i64> = due(&store).await.iter().filter(|f| f.content_id.starts_with("old")).map(|f| f.id).collect();
    let entry = StatusChange {
        at: now(),
        old_status: Some(Status::Connected),
        new_status: Status::Connected,
        message: Some("Audit content expired before it could be fetched".into()),
    };
    let connection = store.get_connection(c.id).await.unwrap().unwrap();
    let alert = Alert::connection(&connection, entry.clone());
    assert_eq!(store.expire_fetches(&mine, c.id, &ids, &entry, Some(&alert), 100).await.unwrap(), Some((2, 0)));
    assert_eq!(store.expire_fetches(&mine, c.id, &ids, &entry, Some(&alert), 100).await.unwrap(), None, "expired once");
    let after = store.get_connection(c.id).await.unwrap().unwrap();
    assert_eq!((after.fetch.expired, after.fetch.backlog), (2, 1));
    assert_eq!(store.list_history(c.id).await.unwrap(), [entry]);
    let queued = store.next_alert().await.unwrap().expect("the alert waits");
    assert_eq!((queued.alert.message.as_deref(), store.pending_alerts().await.unwrap()), (alert.message.as_deref(), 1));
}

async fn finished_fetches_are_pruned_and_deleted_with_their_connection(store: Arc<dyn Store>) {
    let c = o365(&store).await;
    store.commit(&[notify(&c, &["done", "waiting"])]).await.unwrap();
    let mine = lease(&store, "a").await;
    let connection = store.get_connection(c.id).await.unwrap().unwrap();
    let done = due(&store).await.remove(0);
    store.finish_fetch(&mine, &done, &connection, &[], now()).await.unwrap();
    assert_eq!(store.prune_fetches(now()).await.unwrap(), 0, "kept until its content expired");
    assert_eq!(store.prune_fetches(now() + Duration::hours(2)).await.unwrap(), 1, "only the finished one");
    assert_eq!(due(&store).await.len(), 1);
    assert!(store.delete_connection(c.id).await.unwrap());
    assert!(due(&store).await.is_empty(), "deleted with its connection");
}
