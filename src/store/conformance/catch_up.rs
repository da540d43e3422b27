//! The Graph catch-up's part of the conformance suite: its delta state, requests and
//! their settling, notes, and the second dedupe key of Graph changes.

use super::*;
use crate::model::CatchUpState;

conformance!(
    catch_up_requests_are_settled_only_by_a_later_round,
    catch_up_state_round_trips_and_leaves_with_its_connection,
    graph_changes_dedupe_on_the_item_version,
);

async fn catch_up_requests_are_settled_only_by_a_later_round(store: Arc<dyn Store>) {
    let c = new_connection("acme", SourceKind::MsGraph);
    store.create_connection(&c).await.unwrap();
    let t0 = now();
    store.request_catch_up(c.id, "first", t0).await.unwrap();
    store.request_catch_up(c.id, "second", t0 + Duration::seconds(5)).await.unwrap();
    let state = store.catch_up_state(c.id).await.unwrap().unwrap();
    assert_eq!((state.due_since, state.due_reason.as_deref()), (Some(t0), Some("first")), "the first request is kept");
    assert_eq!(state.due_asked_at, Some(t0 + Duration::seconds(5)));
    // Progress does not touch the request.
    store.save_catch_up(&CatchUpState { delta_link: Some("d".into()), ..state.clone() }).await.unwrap();
    assert_eq!(store.catch_up_state(c.id).await.unwrap().unwrap().due_since, Some(t0));
    assert!(!store.settle_catch_up(c.id, t0 + Duration::seconds(1)).await.unwrap(), "asked again after the round began");
    assert!(store.settle_catch_up(c.id, t0 + Duration::seconds(5)).await.unwrap());
    let settled = store.catch_up_state(c.id).await.unwrap().unwrap();
    assert_eq!((settled.due_since, settled.due_reason), (None, None));
    assert_eq!(settled.delta_link.as_deref(), Some("d"));
    // A request for a connection that does not exist keeps nothing.
    let ghost = Uuid::new_v4();
    store.request_catch_up(ghost, "r", t0).await.unwrap();
    assert_eq!(store.catch_up_state(ghost).await.unwrap(), None);
}

async fn catch_up_state_round_trips_and_leaves_with_its_connection(store: Arc<dyn Store>) {
    let c = new_connection("acme", SourceKind::MsGraph);
    store.create_connection(&c).await.unwrap();
    assert_eq!(store.catch_up_state(c.id).await.unwrap(), None);
    let state = CatchUpState {
        connection_id: c.id,
        resource: Some("users".into()),
        delta_link: Some("https://graph.microsoft.com/v1.0/users/delta?$deltatoken=a".into()),
        next_link: Some("https://graph.microsoft.com/v1.0/users/delta?$skiptoken=b".into()),
        round_stores: true,
        round_started_at: Some(now()),
        round_items: 3,
        round_duplicates: 1,
        missed_seen_at: Some(now()),
        ..CatchUpState::default()
    };
    store.save_catch_up(&state).await.unwrap();
    assert_eq!(store.catch_up_state(c.id).await.unwrap(), Some(state.clone()));
    let entry =
        StatusChange { at: now(), old_status: Some(Status::Connected), new_status: Status::Connected, message: Some("note".into()) };
    store.record_note(c.id, &entry).await.unwrap();
    store.record_note(c.id, &entry).await.unwrap();
    assert_eq!(store.list_history(c.id).await.unwrap(), vec![entry.clone(), entry], "notes are entered as they come");
    store.record_task(c.id, crate::model::BackgroundTask::CatchUp, now(), Some("the gap cannot be closed")).await.unwrap();
    let shown = store.get_connection(c.id).await.unwrap().unwrap();
    assert_eq!(shown.catch_up.last_error.as_deref(), Some("the gap cannot be closed"));
    assert!(store.delete_connection(c.id).await.unwrap());
    assert_eq!(store.catch_up_state(c.id).await.unwrap(), None);
    store.save_catch_up(&state).await.unwrap();
    assert_eq!(store.catch_up_state(c.id).await.unwrap(), None, "nothing kept for a deleted connection");
}

async fn graph_changes_dedupe_on_the_item_version(store: Arc<dyn Store>) {
    let c = new_connection("acme", SourceKind::MsGraph);
    store.create_connection(&c).await.unwrap();
    let change = |key: &str, change_type: &str, etag: Option<&str>| {
        let mut data = json!({"id": "m1"});
        if let Some(etag) = etag {
            data["@odata.etag"] = json!(etag);
        }
        NewEvent {
            dedupe_key: key.into(),
            kind: EventKind::Telemetry,
            occurred_at: None,
            payload: json!({"subscriptionId": "s", "changeType": change_type, "resource": "r", "resourceData": data}),
        }
    };
    let commit = |events: Vec<NewEvent>| {
        let op = WriteOp::Accept(Accepted {
            connection_id: c.id,
            tenant_id: c.tenant_id.clone(),
            source: c.source,
            stream: c.stream.clone(),
            received_at: now(),
            events,
            heartbeat: None,
            confirms: false,
            authenticated: false,
            kept_rejections: Vec::new(),
            changes: Vec::new(),
            fetches: Vec::new(),
        });
        let store = store.clone();
        async move { store.commit(&[op]).await.unwrap()[0] }
    };
    assert_eq!(commit(vec![change("catch-up:1", "updated", Some("W/\"v1\""))]).await, OpOutcome::Accepted { stored: 1, duplicates: 0 });
    // The notification of the same version (another dedupe key) is a duplicate, in a batch
    // with a new version and a deletion, which are stored.
    let outcome = commit(vec![
        change("n:1", "created", Some("W/\"v1\"")),
        change("n:2", "updated", Some("W/\"v2\"")),
        change("n:3", "deleted", Some("W/\"v2\"")),
        change("n:4", "updated", Some("W/\"v2\"")),
    ])
    .await;
    assert_eq!(outcome, OpOutcome::Accepted { stored: 2, duplicates: 2 }, "v2 twice in one batch is one");
    // Without a version nothing matches.
    let outcome = commit(vec![change("n:5", "updated", None), change("n:6", "updated", None)]).await;
    assert_eq!(outcome, OpOutcome::Accepted { stored: 2, duplicates: 0 });
    assert_eq!(store.list_events(c.id, 100, None).await.unwrap().len(), 5);
}
