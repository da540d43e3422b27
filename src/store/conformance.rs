//! One conformance suite for every [`Store`]: each case runs against SQLite and, when
//! `DATABASE_URL` names a server, against a fresh PostgreSQL database.
//!
//! One file: the cases run through one macro against both backends; forwarding's cases are
//! in `conformance/forwarding.rs`, the one-replica jobs' in `conformance/jobs.rs`, Office
//! 365 content fetching's in `conformance/fetches.rs`.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use uuid::Uuid;

use super::*;
use crate::model::{
    now, AlertDelivery, AlertSubject, ConnectionFilter, EventKind, NewConnection, NewEvent, NewRejection, SourceKind, Status, StatusChange,
};

async fn sqlite() -> Arc<dyn Store> {
    let store = SqliteStore::open_memory().await.unwrap();
    store.migrate().await.unwrap();
    Arc::new(store)
}

async fn postgres(test: &str) -> Option<Arc<dyn Store>> {
    let url = crate::testing::fresh_postgres_url(test).await?;
    let store = PostgresStore::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    Some(Arc::new(store))
}

/// Generates `sqlite::case` and `postgres::case` tests for each async fn case(store).
macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod sqlite_backend {
            $(#[tokio::test] async fn $case() { super::$case(super::sqlite().await).await })*
        }
        mod postgres_backend {
            $(#[tokio::test] async fn $case() {
                if let Some(store) = super::postgres(concat!("store::", stringify!($case))).await {
                    super::$case(store).await
                }
            })*
        }
    };
}

conformance!(
    connections_round_trip,
    resuming_a_paused_connection_activates_it,
    list_filters_by_tenant_and_source,
    update_changes_only_named_fields,
    commit_stores_once_and_counts_duplicates,
    events_page_newest_first,
    big_batches_span_several_inserts,
    refusals_count_and_streak,
    deleted_connection_keeps_nothing,
    delete_removes_everything_of_a_connection,
    status_transitions_are_recorded_once,
    admin_tokens_are_kept,
    ready_after_migrate,
    rejections_are_pruned_to_the_newest,
    subscription_changes_apply_with_their_push,
    subscription_changes_by_an_admin,
    graph_subscription_changes,
    task_outcomes_are_kept,
    upkeep_settings_hash_is_kept,
    checks_and_alert_deliveries_are_kept,
    recorded_status_is_read_back,
    upkeep_failure_classes_are_kept_until_a_success,
    a_missed_report_is_entered_in_the_history_once,
    arrivals_are_counted_by_the_hour,
    heartbeat_ids_count_once_and_move_the_time_forward_only,
    heartbeat_ids_are_pruned_by_arrival,
);

/// The default streams of INTERFACE.md section 2, which the filter cases read (the store
/// knows no sender, so it cannot ask them).
fn default_stream(source: SourceKind) -> &'static str {
    match source {
        SourceKind::AwsSns | SourceKind::AwsEventbridge => "cloud_aws_securityhub_alert",
        SourceKind::GcpPubsub => "cloud_gcp_security_finding",
        SourceKind::MsGraph => "cloud_ms_graph_alert",
        SourceKind::O365Activity => "cloud_ms_o365_activity_log",
        SourceKind::Webhook => "webhook_event",
    }
}

fn new_connection(tenant: &str, source: SourceKind) -> NewConnection {
    NewConnection {
        id: Uuid::new_v4(),
        tenant_id: tenant.into(),
        name: format!("{tenant} feed"),
        source,
        stream: default_stream(source).into(),
        heartbeat_interval_seconds: Some(300),
        grace_seconds: 60,
        config_public: json!({"auth": {"type": "api_key", "header": "x", "value": "***"}, "ünï": "çødé"}),
        config_sealed: "v1:sealed".into(),
        created_at: now(),
    }
}

fn event(key: &str) -> NewEvent {
    NewEvent {
        dedupe_key: key.into(),
        kind: EventKind::Alert,
        occurred_at: Some(now() - Duration::minutes(5)),
        payload: json!({"key": key, "nested": {"list": [1, 2.5, "ß", null]}}),
    }
}

fn accept(c: &NewConnection, keys: &[&str]) -> WriteOp {
    WriteOp::Accept(Accepted {
        connection_id: c.id,
        tenant_id: c.tenant_id.clone(),
        source: c.source,
        stream: c.stream.clone(),
        received_at: now(),
        events: keys.iter().map(|k| event(k)).collect(),
        // A heartbeat of its own each time: `heartbeat_ids_count_once` repeats one.
        heartbeat: keys.is_empty().then(|| CountedHeartbeat { id: Uuid::new_v4().to_string(), signed_at: now() - Duration::seconds(2) }),
        confirms: true,
        authenticated: true,
        kept_rejections: Vec::new(),
        changes: Vec::new(),
        fetches: Vec::new(),
    })
}

fn refuse(connection: Option<Uuid>, reason: &str) -> WriteOp {
    WriteOp::Refuse(Refused {
        connection_id: connection,
        unauthenticated: true,
        record: Some(NewRejection {
            connection_id: connection,
            at: now(),
            reason: reason.into(),
            source_addr: Some("192.0.2.1".into()),
            detail: "detail".into(),
            body_prefix: "body".into(),
        }),
    })
}

async fn connections_round_trip(store: Arc<dyn Store>) {
    let new = new_connection("acme", SourceKind::Webhook);
    let created = store.create_connection(&new).await.unwrap();
    assert_eq!(created.id, new.id);
    assert_eq!(created.tenant_id, "acme");
    assert_eq!(created.source, SourceKind::Webhook);
    assert_eq!(created.config_public, new.config_public);
    assert_eq!(created.config_sealed, "v1:sealed");
    assert_eq!(created.created_at, new.created_at);
    assert_eq!(created.heartbeat_interval_seconds, Some(300));
    assert!(!created.facts.paused);
    assert_eq!(created.counters, Default::default());
    assert_eq!(store.get_connection(new.id).await.unwrap(), Some(created));
    assert_eq!(store.get_connection(Uuid::new_v4()).await.unwrap(), None);

    let paused = store.set_paused(new.id, true, now()).await.unwrap().unwrap();
    assert!(paused.facts.paused);
    let resumed = store.set_paused(new.id, false, now()).await.unwrap().unwrap();
    assert!(!resumed.facts.paused);
    assert!(store.set_paused(Uuid::new_v4(), true, now()).await.unwrap().is_none());
}

async fn resuming_a_paused_connection_activates_it(store: Arc<dyn Store>) {
    let new = new_connection("acme", SourceKind::Webhook);
    let at = |minutes| new.created_at + Duration::minutes(minutes);
    let created = store.create_connection(&new).await.unwrap();
    assert_eq!(created.activated_at, new.created_at, "a new connection is active from its creation");
    for (paused, minute, activated, why) in [
        (true, 1, new.created_at, "pausing is no activation"),
        (true, 2, new.created_at, "nor is pausing again"),
        (false, 3, at(3), "resuming is"),
        (false, 4, at(3), "resuming an active connection is not"),
        (true, 5, at(3), "a pause keeps the last activation"),
        (false, 6, at(6), "and the next resume moves it"),
    ] {
        let c = store.set_paused(new.id, paused, at(minute)).await.unwrap().unwrap();
        assert_eq!((c.facts.paused, c.activated_at, c.updated_at), (paused, activated, at(minute)), "{why}");
        assert_eq!(c.created_at, new.created_at, "{why}: the creation time stays");
    }
    assert_eq!(store.get_connection(new.id).await.unwrap().unwrap().activated_at, at(6));
}

async fn list_filters_by_tenant_and_source(store: Arc<dyn Store>) {
    for (tenant, source) in [("a", SourceKind::Webhook), ("a", SourceKind::AwsSns), ("b", SourceKind::Webhook)] {
        store.create_connection(&new_connection(tenant, source)).await.unwrap();
    }
    let all = store.list_connections(&ConnectionFilter::default()).await.unwrap();
    assert_eq!(all.len(), 3);
    let a = store.list_connections(&ConnectionFilter { tenant_id: Some("a".into()), source: None }).await.unwrap();
    assert_eq!(a.len(), 2);
    assert!(a.iter().all(|c| c.tenant_id == "a"));
    let hooks = store.list_connections(&ConnectionFilter { tenant_id: None, source: Some(SourceKind::Webhook) }).await.unwrap();
    assert_eq!(hooks.iter().map(|c| c.tenant_id.as_str()).collect::<Vec<_>>(), ["a", "b"]);
}

async fn update_changes_only_named_fields(store: Arc<dyn Store>) {
    let new = new_connection("acme", SourceKind::Webhook);
    store.create_connection(&new).await.unwrap();
    let update = ConnectionUpdate {
        name: Some("renamed".into()),
        heartbeat_interval_seconds: Some(None),
        config: Some((json!({"x": 1}), "v1:other".into())),
        ..Default::default()
    };
    let updated = store.update_connection(new.id, &update, now()).await.unwrap().unwrap();
    assert_eq!(updated.name, "renamed");
    assert_eq!(updated.heartbeat_interval_seconds, None);
    assert_eq!(updated.config_public, json!({"x": 1}));
    assert_eq!(updated.config_sealed, "v1:other");
    assert_eq!(updated.stream, new.stream);
    assert_eq!(updated.grace_seconds, 60);
    assert!(store.update_connection(Uuid::new_v4(), &update, now()).await.unwrap().is_none());
}

async fn commit_stores_once_and_counts_duplicates(store: Arc<dyn Store>) {
    let c = new_connection("acme", SourceKind::Webhook);
    store.create_connection(&c).await.unwrap();
    let outcomes = store.commit(&[accept(&c, &["a", "b"]), accept(&c, &["a"]), accept(&c, &[])]).await.unwrap();
    assert_eq!(
        outcomes,
        [
            OpOutcome::Accepted { stored: 2, duplicates: 0 },
            OpOutcome::Accepted { stored: 0, duplicates: 1 },
            OpOutcome::Accepted { stored: 0, duplicates: 0 },
        ]
    );
    // A retry in a later batch is a duplicate too.
    assert_eq!(store.commit(&[accept(&c, &["b", "c"])]).await.unwrap(), [OpOutcome::Accepted { stored: 1, duplicates: 1 }]);

    let after = store.get_connection(c.id).await.unwrap().unwrap();
    assert_eq!((after.counters.events, after.counters.duplicates, after.counters.heartbeats), (3, 2, 1));
    assert!(after.facts.confirmed_at.is_some());
    assert!(after.facts.last_heartbeat_at.is_some());
    assert!(after.facts.data_last_received_at.is_some());
    let events = store.list_events(c.id, 10, None).await.unwrap();
    let keys: Vec<_> = events.iter().map(|e| e.dedupe_key.as_str()).collect();
    assert_eq!(keys, ["c", "b", "a"]);
    let a = &events[2];
    assert_eq!(a.payload, event("a").payload);
    assert_eq!((a.tenant_id.as_str(), a.source, a.kind), ("acme", SourceKind::Webhook, EventKind::Alert));
    assert!(a.occurred_at.unwrap() < a.received_at);
}

async fn events_page_newest_first(store: Arc<dyn Store>) {
    let c = new_connection("acme", SourceKind::Webhook);
    store.create_connection(&c).await.unwrap();
    for i in 0..5 {
        store.commit(&[accept(&c, &[&format!("k{i}")])]).await.unwrap();
    }
    let first = store.list_events(c.id, 2, None).await.unwrap();
    assert_eq!(first.iter().map(|e| e.dedupe_key.as_str()).collect::<Vec<_>>(), ["k4", "k3"]);
    let second = store.list_events(c.id, 2, Some(first[1].seq)).await.unwrap();
    assert_eq!(second.iter().map(|e| e.dedupe_key.as_str()).collect::<Vec<_>>(), ["k2", "k1"]);
    let last = store.list_events(c.id, 2, Some(second[1].seq)).await.unwrap();
    assert_eq!(last.len(), 1);
    assert!(store.list_events(Uuid::new_v4(), 2, None).await.unwrap().is_empty());
}

async fn big_batches_span_several_inserts(store: Arc<dyn Store>) {
    let c = new_connection("acme", SourceKind::Webhook);
    store.create_connection(&c).await.unwrap();
    let keys: Vec<String> = (0..1200).map(|i| format!("e{i}")).collect();
    let ops: Vec<WriteOp> = keys.chunks(3).map(|k| accept(&c, &k.iter().map(String::as_str).collect::<Vec<_>>())).collect();
    let outcomes = store.commit(&ops).await.unwrap();
    assert!(outcomes.iter().all(|o| *o == OpOutcome::Accepted { stored: 3, duplicates: 0 }));
    assert_eq!(store.get_connection(c.id).await.unwrap().unwrap().counters.events, 1200);
}

async fn refusals_count_and_streak(store: Arc<dyn Store>) {
    let c = new_connection("acme", SourceKind::Webhook);
    store.create_connection(&c).await.unwrap();
    store.commit(&[refuse(Some(c.id), "bad_signature"), refuse(Some(c.id), "bad_signature")]).await.unwrap();
    store.commit(&[refuse(Some(c.id), "missing_signature"), refuse(None, "unknown_connection")]).await.unwrap();
    let after = store.get_connection(c.id).await.unwrap().unwrap();
    assert_eq!((after.facts.auth_failure_streak, after.counters.rejections), (3, 3));
    let rows = store.list_rejections(Some(c.id), 10).await.unwrap();
    assert_eq!(rows.iter().map(|r| r.reason.as_str()).collect::<Vec<_>>(), ["missing_signature", "bad_signature", "bad_signature"]);
    assert_eq!(rows[0].source_addr.as_deref(), Some("192.0.2.1"));
    assert_eq!(rows[0].body_prefix, "body");
    assert_eq!(store.list_rejections(Some(c.id), 1).await.unwrap().len(), 1);
    let orphans = store.list_rejections(None, 10).await.unwrap();
    assert_eq!(orphans.len(), 1);
    assert_eq!(orphans[0].reason, "unknown_connection");

    store.commit(&[accept(&c, &["ok"])]).await.unwrap();
    assert_eq!(store.get_connection(c.id).await.unwrap().unwrap().facts.auth_failure_streak, 0);
}

async fn deleted_connection_keeps_nothing(store: Arc<dyn Store>) {
    let live = new_connection("acme", SourceKind::Webhook);
    let gone = new_connection("acme", SourceKind::Webhook);
    store.create_connection(&live).await.unwrap();
    let outcomes = store.commit(&[accept(&gone, &["x"]), accept(&live, &["x"]), refuse(Some(gone.id), "bad_signature")]).await.unwrap();
    assert_eq!(outcomes, [OpOutcome::ConnectionGone, OpOutcome::Accepted { stored: 1, duplicates: 0 }, OpOutcome::ConnectionGone]);
    assert!(store.list_events(gone.id, 10, None).await.unwrap().is_empty());
    assert!(store.list_rejections(Some(gone.id), 10).await.unwrap().is_empty());
    assert_eq!(store.list_events(live.id, 10, None).await.unwrap().len(), 1);
}

async fn delete_removes_everything_of_a_connection(store: Arc<dyn Store>) {
    let c = new_connection("acme", SourceKind::Webhook);
    store.create_connection(&c).await.unwrap();
    store.commit(&[accept(&c, &["x"]), refuse(Some(c.id), "bad_signature")]).await.unwrap();
    let change = StatusChange { at: now(), old_status: None, new_status: Status::Connected, message: None };
    store.record_status(c.id, &change).await.unwrap();
    assert!(store.delete_connection(c.id).await.unwrap());
    assert!(!store.delete_connection(c.id).await.unwrap());
    assert!(store.get_connection(c.id).await.unwrap().is_none());
    assert!(store.list_events(c.id, 10, None).await.unwrap().is_empty());
    assert!(store.list_rejections(Some(c.id), 10).await.unwrap().is_empty());
    assert!(store.list_history(c.id).await.unwrap().is_empty());
}

async fn status_transitions_are_recorded_once(store: Arc<dyn Store>) {
    let c = new_connection("acme", SourceKind::Webhook);
    store.create_connection(&c).await.unwrap();
    let first =
        StatusChange { at: now(), old_status: None, new_status: Status::RequiresAction, message: Some("Awaiting subscription".into()) };
    assert!(store.record_status(c.id, &first).await.unwrap());
    // A second monitor that saw the same old status records nothing.
    assert!(!store.record_status(c.id, &first).await.unwrap());
    let second = StatusChange { at: now(), old_status: Some(Status::RequiresAction), new_status: Status::Connected, message: None };
    assert!(store.record_status(c.id, &second).await.unwrap());
    let history = store.list_history(c.id).await.unwrap();
    assert_eq!(history, [first, second.clone()]);
    let checked = store.get_connection(c.id).await.unwrap().unwrap().facts.status_last_checked_at;
    assert_eq!(checked, Some(second.at));
}

async fn admin_tokens_are_kept(store: Arc<dyn Store>) {
    assert!(store.admin_token_hashes().await.unwrap().is_empty());
    store.add_admin_token("abc", now()).await.unwrap();
    store.add_admin_token("abc", now()).await.unwrap();
    store.add_admin_token("def", now()).await.unwrap();
    let mut hashes = store.admin_token_hashes().await.unwrap();
    hashes.sort();
    assert_eq!(hashes, ["abc", "def"]);
}

async fn ready_after_migrate(store: Arc<dyn Store>) {
    assert!(store.ready().await.unwrap());
    // Migrating again is a no-op.
    store.migrate().await.unwrap();
    assert!(store.ready().await.unwrap());
}

async fn rejections_are_pruned_to_the_newest(store: Arc<dyn Store>) {
    let c = new_connection("acme", SourceKind::Webhook);
    store.create_connection(&c).await.unwrap();
    let keep = MAX_REJECTIONS_PER_CONNECTION as usize;
    let mut ops: Vec<WriteOp> = (0..keep + 10).map(|i| refuse(Some(c.id), &format!("r{i}"))).collect();
    ops.extend((0..keep + 3).map(|i| refuse(None, &format!("o{i}"))));
    store.commit(&ops).await.unwrap();
    let kept = store.list_rejections(Some(c.id), 5000).await.unwrap();
    assert_eq!(kept.len(), keep);
    assert_eq!(kept[0].reason, format!("r{}", keep + 9), "the newest stay");
    assert_eq!(kept[keep - 1].reason, "r10");
    let orphans = store.list_rejections(None, 5000).await.unwrap();
    assert_eq!(orphans.len(), keep);
    assert_eq!(store.get_connection(c.id).await.unwrap().unwrap().counters.rejections, (keep + 10) as i64, "counters keep counting");
}

async fn subscription_changes_apply_with_their_push(store: Arc<dyn Store>) {
    let c = new_connection("acme", SourceKind::AwsSns);
    store.create_connection(&c).await.unwrap();
    let with = |change: SubscriptionChange, keys: &[&str]| {
        let WriteOp::Accept(mut a) = accept(&c, keys) else { unreachable!() };
        a.confirms = false;
        a.heartbeat = None;
        a.changes = vec![ReportedChange { change, event_key: keys.first().map(|k| k.to_string()) }];
        WriteOp::Accept(a)
    };
    let url = "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&Token=t".to_string();
    store.commit(&[with(SubscriptionChange::Pending { confirmation_url: url.clone() }, &[])]).await.unwrap();
    let pending = store.get_connection(c.id).await.unwrap().unwrap();
    assert_eq!((pending.facts.confirmation_url.as_deref(), pending.facts.confirmed_at), (Some(url.as_str()), None));

    let arn = "arn:aws:sns:us-east-1:123456789012:t:abc".to_string();
    store.commit(&[with(SubscriptionChange::Confirmed { external_id: Some(arn.clone()) }, &[])]).await.unwrap();
    let confirmed = store.get_connection(c.id).await.unwrap().unwrap();
    assert_eq!(confirmed.facts.external_id.as_deref(), Some(arn.as_str()));
    assert!(confirmed.facts.confirmed_at.is_some() && confirmed.facts.confirmation_url.is_none());

    // An unsubscribe is stored as an event in the same transaction as the loss.
    let reported = now();
    let outcomes = store.commit(&[with(SubscriptionChange::Lost { at: reported }, &["unsubscribe-1"])]).await.unwrap();
    assert_eq!(outcomes, [OpOutcome::Accepted { stored: 1, duplicates: 0 }]);
    let lost = store.get_connection(c.id).await.unwrap().unwrap();
    assert_eq!(lost.facts.subscription_lost_at, Some(reported), "the loss takes the vendor's time");
    assert_eq!(lost.facts.external_id.as_deref(), Some(arn.as_str()), "a confirmation without an id keeps the old one");
    assert_eq!(store.list_events(c.id, 10, None).await.unwrap().len(), 1);

    // After a new confirmation, a replay of the same report is a duplicate and changes nothing.
    store.commit(&[with(SubscriptionChange::Confirmed { external_id: None }, &[])]).await.unwrap();
    let later = now() + Duration::seconds(5);
    let outcomes = store.commit(&[with(SubscriptionChange::Lost { at: later }, &["unsubscribe-1"])]).await.unwrap();
    assert_eq!(outcomes, [OpOutcome::Accepted { stored: 0, duplicates: 1 }]);
    let replayed = store.get_connection(c.id).await.unwrap().unwrap();
    assert_eq!(replayed.facts.subscription_lost_at, Some(reported));
}

async fn subscription_changes_by_an_admin(store: Arc<dyn Store>) {
    let c = new_connection("acme", SourceKind::AwsSns);
    store.create_connection(&c).await.unwrap();
    let at = now();
    let changed = store.change_subscription(c.id, &SubscriptionChange::Confirmed { external_id: None }, at).await.unwrap().unwrap();
    assert_eq!((changed.facts.confirmed_at, changed.facts.external_id), (Some(at), None));
    let missing = store.change_subscription(Uuid::new_v4(), &SubscriptionChange::Lost { at }, at).await.unwrap();
    assert!(missing.is_none());
}

async fn graph_subscription_changes(store: Arc<dyn Store>) {
    let c = new_connection("acme", SourceKind::MsGraph);
    store.create_connection(&c).await.unwrap();
    let at = now();
    let (soon, later) = (at + Duration::hours(1), at + Duration::hours(50));
    let observe = |id: &str, expires: Option<DateTime<Utc>>| SubscriptionChange::Observed { external_id: id.into(), expires_at: expires };
    let facts = |store: Arc<dyn Store>| async move { store.get_connection(c.id).await.unwrap().unwrap().facts };

    store.change_subscription(c.id, &observe("sub-1", Some(soon)), at).await.unwrap();
    let f = facts(store.clone()).await;
    assert_eq!((f.external_id.as_deref(), f.expires_at), (Some("sub-1"), Some(soon)));
    // A renewed subscription's later expiry wins; a late retry of an older one changes nothing.
    store.change_subscription(c.id, &observe("sub-1", Some(later)), at).await.unwrap();
    store.change_subscription(c.id, &observe("sub-old", Some(soon)), at).await.unwrap();
    store.change_subscription(c.id, &observe("sub-old", None), at).await.unwrap();
    let f = facts(store.clone()).await;
    assert_eq!((f.external_id.as_deref(), f.expires_at), (Some("sub-1"), Some(later)));

    let first = at + Duration::seconds(1);
    let reauthorize = |t: DateTime<Utc>, id: &str| SubscriptionChange::ReauthorizationRequired { at: t, subscription_id: id.into() };
    store.change_subscription(c.id, &reauthorize(first, "sub-old"), at).await.unwrap();
    assert_eq!(facts(store.clone()).await.reauthorization_required_at, None, "about another subscription: nothing");
    store.change_subscription(c.id, &reauthorize(first, "sub-1"), at).await.unwrap();
    store.change_subscription(c.id, &reauthorize(first + Duration::seconds(9), "sub-1"), at).await.unwrap();
    assert_eq!(facts(store.clone()).await.reauthorization_required_at, Some(first), "the first request counts");
    store.change_subscription(c.id, &SubscriptionChange::Missed { at: first }, at).await.unwrap();
    let renewed = SubscriptionChange::Renewed { external_id: "sub-2".into(), expires_at: soon };
    store.change_subscription(c.id, &renewed, at).await.unwrap();
    let f = facts(store.clone()).await;
    assert_eq!((f.external_id.as_deref(), f.expires_at, f.reauthorization_required_at), (Some("sub-2"), Some(soon), None));
    assert_eq!(f.missed_at, Some(first), "a report of lost data stays visible");

    // Renewed elsewhere (a notification shows a later expiry): reauthorized too.
    store.change_subscription(c.id, &reauthorize(first, "sub-2"), at).await.unwrap();
    store.change_subscription(c.id, &observe("sub-2", Some(soon)), at).await.unwrap();
    assert_eq!(facts(store.clone()).await.reauthorization_required_at, Some(first), "the same expiry is no renewal");
    store.change_subscription(c.id, &observe("sub-2", Some(later)), at).await.unwrap();
    assert_eq!(facts(store.clone()).await.reauthorization_required_at, None);

    // Removed: only the current subscription; a validation does not undo it, a new
    // subscription's first notification does.
    let removed = |id: &str| SubscriptionChange::Removed { at: at + Duration::seconds(20), subscription_id: id.into() };
    store.change_subscription(c.id, &removed("sub-1"), at).await.unwrap();
    assert_eq!(facts(store.clone()).await.subscription_lost_at, None, "a late removal of a replaced subscription");
    store.change_subscription(c.id, &removed("sub-2"), at).await.unwrap();
    let f = facts(store.clone()).await;
    assert_eq!(f.subscription_lost_at, Some(at + Duration::seconds(20)));
    let confirmed = f.confirmed_at;
    store.change_subscription(c.id, &SubscriptionChange::Validated, at + Duration::seconds(30)).await.unwrap();
    assert_eq!(facts(store.clone()).await.confirmed_at, confirmed, "an unauthenticated validation changes no confirmation");
    // The new subscription may expire before the removed one would have.
    store.change_subscription(c.id, &observe("sub-3", Some(soon)), at + Duration::seconds(40)).await.unwrap();
    let f = facts(store.clone()).await;
    assert_eq!((f.external_id.as_deref(), f.expires_at, f.confirmed_at), (Some("sub-3"), Some(soon), Some(at + Duration::seconds(40))));
    // Once it is in place, a late notification of the removed one changes nothing.
    store.change_subscription(c.id, &observe("sub-2", Some(soon)), at + Duration::seconds(50)).await.unwrap();
    assert_eq!(facts(store.clone()).await.external_id.as_deref(), Some("sub-3"));

    // A validation confirms a connection never confirmed.
    let fresh = new_connection("acme", SourceKind::MsGraph);
    store.create_connection(&fresh).await.unwrap();
    let validated = store.change_subscription(fresh.id, &SubscriptionChange::Validated, at).await.unwrap().unwrap();
    assert_eq!(validated.facts.confirmed_at, Some(at));
}

async fn task_outcomes_are_kept(store: Arc<dyn Store>) {
    let c = new_connection("acme", SourceKind::AwsSns);
    store.create_connection(&c).await.unwrap();
    let (first, second) = (now() - Duration::seconds(10), now());
    store.record_task(c.id, BackgroundTask::Canary, first, Some("AWS refused the call: NotFound: Topic does not exist")).await.unwrap();
    store.record_task(c.id, BackgroundTask::Canary, second, None).await.unwrap();
    store.record_task(c.id, BackgroundTask::Upkeep, first, None).await.unwrap();
    store.record_task(c.id, BackgroundTask::Upkeep, second, Some("Graph answered 403")).await.unwrap();
    let stored = store.get_connection(c.id).await.unwrap().unwrap();
    let canary = stored.canary;
    assert_eq!(canary.last_success_at, Some(second));
    assert_eq!(canary.last_error_at, Some(first), "a later success keeps the last failure visible");
    assert!(canary.last_error.unwrap().contains("NotFound"));
    assert_eq!((stored.upkeep.last_success_at, stored.upkeep.last_error_at), (Some(first), Some(second)));
    assert_eq!(stored.upkeep.last_error.as_deref(), Some("Graph answered 403"));
}

async fn upkeep_settings_hash_is_kept(store: Arc<dyn Store>) {
    let c = new_connection("acme", SourceKind::MsGraph);
    store.create_connection(&c).await.unwrap();
    let hash = |store: Arc<dyn Store>| async move { store.get_connection(c.id).await.unwrap().unwrap().facts.upkeep_settings_hash };
    assert_eq!(hash(store.clone()).await, None, "none until a subscription is created");
    store.record_upkeep_settings(c.id, &"a".repeat(64)).await.unwrap();
    assert_eq!(hash(store.clone()).await, Some("a".repeat(64)));
    store.record_upkeep_settings(c.id, &"b".repeat(64)).await.unwrap();
    assert_eq!(hash(store.clone()).await, Some("b".repeat(64)));
    let listed = store.list_connections(&ConnectionFilter::default()).await.unwrap();
    assert_eq!(listed[0].facts.upkeep_settings_hash, Some("b".repeat(64)));
    store.record_upkeep_settings(Uuid::new_v4(), "c").await.unwrap();
}

async fn checks_and_alert_deliveries_are_kept(store: Arc<dyn Store>) {
    let c = new_connection("acme", SourceKind::Webhook);
    store.create_connection(&c).await.unwrap();
    let at = now();
    store.mark_checked(&[c.id, Uuid::new_v4()], at).await.unwrap();
    assert_eq!(store.get_connection(c.id).await.unwrap().unwrap().facts.status_last_checked_at, Some(at));
    let delivery = AlertDelivery {
        subject: AlertSubject::Connection(c.id),
        at,
        old_status: Some("connected".into()),
        new_status: "error".into(),
        message: Some("Last heartbeat is too old".into()),
        attempts: 3,
        delivered: false,
        last_error: Some("answered 500".into()),
        finished_at: at,
    };
    store.record_alert_delivery(&delivery).await.unwrap();
    let destination = AlertDelivery {
        subject: AlertSubject::Destination(Uuid::new_v4()),
        old_status: Some("ok".into()),
        new_status: "failing".into(),
        ..delivery.clone()
    };
    store.record_alert_delivery(&destination).await.unwrap();
    assert_eq!(store.list_alert_deliveries(AlertSubject::Connection(c.id), 10).await.unwrap(), [delivery]);
    assert_eq!(store.list_alert_deliveries(destination.subject, 10).await.unwrap(), [destination]);
    assert!(store.delete_connection(c.id).await.unwrap());
    assert!(store.list_alert_deliveries(AlertSubject::Connection(c.id), 10).await.unwrap().is_empty(), "deleted with the connection");
}

async fn recorded_status_is_read_back(store: Arc<dyn Store>) {
    let c = new_connection("acme", SourceKind::Webhook);
    store.create_connection(&c).await.unwrap();
    let change =
        StatusChange { at: now(), old_status: None, new_status: Status::RequiresAction, message: Some("Awaiting subscription".into()) };
    assert!(store.record_status(c.id, &change).await.unwrap());
    let recorded = store.get_connection(c.id).await.unwrap().unwrap().facts;
    assert_eq!(
        (recorded.recorded_status, recorded.recorded_message.as_deref()),
        (Some(Status::RequiresAction), Some("Awaiting subscription"))
    );
}

async fn upkeep_failure_classes_are_kept_until_a_success(store: Arc<dyn Store>) {
    use crate::model::UpkeepFailure::{Credentials, Validation};
    let c = new_connection("acme", SourceKind::MsGraph);
    store.create_connection(&c).await.unwrap();
    let facts = |store: Arc<dyn Store>| async move {
        let f = store.get_connection(c.id).await.unwrap().unwrap().facts;
        (f.upkeep_failure, f.upkeep_failing_since)
    };
    assert_eq!(facts(store.clone()).await, (None, None));
    let (first, second, third) = (now() - Duration::seconds(20), now() - Duration::seconds(10), now());
    store.record_upkeep_failure(c.id, Credentials, first, "refused").await.unwrap();
    store.record_upkeep_failure(c.id, Credentials, second, "refused").await.unwrap();
    assert_eq!(facts(store.clone()).await, (Some(Credentials), Some(first)), "failing since the first refusal");
    // A failure without a class says nothing about the connection: the class stays.
    store.record_task(c.id, BackgroundTask::Upkeep, second, Some("Graph could not be reached")).await.unwrap();
    assert_eq!(facts(store.clone()).await, (Some(Credentials), Some(first)));
    store.record_upkeep_failure(c.id, Validation, third, "refused").await.unwrap();
    assert_eq!(facts(store.clone()).await, (Some(Validation), Some(third)), "another reason, since its own first time");
    let listed = store.list_connections(&ConnectionFilter::default()).await.unwrap();
    assert_eq!(listed[0].facts.upkeep_failure, Some(Validation));
    store.record_task(c.id, BackgroundTask::Upkeep, third, None).await.unwrap();
    assert_eq!(facts(store.clone()).await, (None, None), "a success clears it");
    store.record_upkeep_failure(c.id, Credentials, third, "refused").await.unwrap();
    store.clear_upkeep_failure(c.id).await.unwrap();
    assert_eq!(facts(store.clone()).await, (None, None));
    // The canary's success is its own: it clears nothing of the upkeep's.
    store.record_upkeep_failure(c.id, Credentials, third, "refused").await.unwrap();
    store.record_task(c.id, BackgroundTask::Canary, third, None).await.unwrap();
    assert_eq!(facts(store.clone()).await, (Some(Credentials), Some(third)));
    // A classified failure's text and class land in one write, and the class keeps its
    // first time.
    let later = third + Duration::seconds(5);
    store.record_upkeep_failure(c.id, Credentials, later, "token request refused: 401 invalid_client").await.unwrap();
    let stored = store.get_connection(c.id).await.unwrap().unwrap();
    assert_eq!((stored.facts.upkeep_failure, stored.facts.upkeep_failing_since), (Some(Credentials), Some(third)));
    assert_eq!(stored.upkeep.last_error.as_deref(), Some("token request refused: 401 invalid_client"));
    assert_eq!(stored.upkeep.last_error_at, Some(later));
    store.record_upkeep_failure(c.id, Validation, later, "ValidationError").await.unwrap();
    assert_eq!(facts(store.clone()).await, (Some(Validation), Some(later)));
}

async fn a_missed_report_is_entered_in_the_history_once(store: Arc<dyn Store>) {
    let c = new_connection("acme", SourceKind::MsGraph);
    store.create_connection(&c).await.unwrap();
    let transition = StatusChange { at: now(), old_status: None, new_status: Status::Connected, message: None };
    assert!(store.record_status(c.id, &transition).await.unwrap());
    let reported = now();
    store.change_subscription(c.id, &SubscriptionChange::Missed { at: reported }, reported).await.unwrap();
    let f = store.get_connection(c.id).await.unwrap().unwrap().facts;
    assert_eq!((f.missed_at, f.missed_recorded_at), (Some(reported), None));
    let entry = StatusChange {
        at: reported,
        old_status: Some(Status::Connected),
        new_status: Status::Connected,
        message: Some("Notifications were missed".into()),
    };
    assert!(store.record_missed(c.id, &entry).await.unwrap());
    // A second monitor that saw the same report enters nothing.
    assert!(!store.record_missed(c.id, &entry).await.unwrap());
    let f = store.get_connection(c.id).await.unwrap().unwrap().facts;
    assert_eq!(f.missed_recorded_at, Some(reported));
    assert_eq!((f.recorded_status, f.recorded_message), (Some(Status::Connected), None), "the recorded status is the same");
    assert_eq!(store.list_history(c.id).await.unwrap(), [transition, entry.clone()]);
    let later = StatusChange { at: reported + Duration::seconds(5), ..entry };
    assert!(store.record_missed(c.id, &later).await.unwrap(), "a later report is news");
    assert_eq!(store.list_history(c.id).await.unwrap().len(), 3);
}

mod catch_up;
mod fetches;
mod forwarding;
mod jobs;

/// Events and heartbeats per hour of arrival, each kind in its own table, only the
/// connection's own and only inside the window (its first edge in, its last out).
async fn arrivals_are_counted_by_the_hour(store: Arc<dyn Store>) {
    let c = new_connection("acme", SourceKind::Webhook);
    let other = new_connection("acme", SourceKind::Webhook);
    store.create_connection(&c).await.unwrap();
    store.create_connection(&other).await.unwrap();
    let from = DateTime::parse_from_rfc3339("2026-11-30T10:00:00Z").unwrap().with_timezone(&Utc);
    let at = |minutes: i64| from + Duration::minutes(minutes);
    let arrived = |connection: &NewConnection, key: &str, received_at: DateTime<Utc>| {
        let WriteOp::Accept(mut a) = accept(connection, &[key]) else { unreachable!() };
        a.received_at = received_at;
        WriteOp::Accept(a)
    };
    // In order of arrival, as ingest stores them.
    let pushes = [
        arrived(&c, "long before", at(-24 * 60)),
        arrived(&c, "just before", at(-1)),
        arrived(&c, "first edge", at(0)),
        arrived(&c, "hour 0", at(59)),
        arrived(&other, "another connection's", at(61)),
        arrived(&c, "second edge", at(60)),
        arrived(&c, "hour 5", at(5 * 60 + 30)),
        arrived(&c, "hour 5 again", at(5 * 60 + 31)),
        arrived(&c, "last hour", at(24 * 60 - 1)),
        arrived(&c, "after the window", at(24 * 60)),
    ];
    for push in &pushes {
        store.commit(std::slice::from_ref(push)).await.unwrap();
    }
    for (id, minute) in [("before", -1), ("hour 1", 119), ("hour 23", 23 * 60 + 30), ("later", 24 * 60 + 5)] {
        store.commit(&[heartbeat(&c, id, at(minute - 1), at(minute))]).await.unwrap();
    }
    store.commit(&[heartbeat(&other, "other", at(30), at(30))]).await.unwrap();

    let arrivals = store.hourly_arrivals(c.id, from, 24).await.unwrap();
    assert_eq!(arrivals.from, from);
    let mut events = vec![0; 24];
    events[0] = 2;
    events[1] = 1;
    events[5] = 2;
    events[23] = 1;
    assert_eq!(arrivals.events, events);
    let mut heartbeats = vec![0; 24];
    heartbeats[1] = 1;
    heartbeats[23] = 1;
    assert_eq!(arrivals.heartbeats, heartbeats);

    let none = store.hourly_arrivals(Uuid::new_v4(), from, 3).await.unwrap();
    assert_eq!((none.events, none.heartbeats), (vec![0; 3], vec![0; 3]));
    assert!(store.hourly_arrivals(c.id, from, 0).await.unwrap().events.is_empty());
}

/// A heartbeat of connection `c` with sender id `id`, signed `signed_ago` before it
/// arrives at `received_at`.
fn heartbeat(c: &NewConnection, id: &str, signed_at: DateTime<Utc>, received_at: DateTime<Utc>) -> WriteOp {
    let WriteOp::Accept(mut a) = accept(c, &[]) else { unreachable!() };
    a.heartbeat = Some(CountedHeartbeat { id: id.into(), signed_at });
    a.received_at = received_at;
    WriteOp::Accept(a)
}

async fn heartbeat_ids_count_once_and_move_the_time_forward_only(store: Arc<dyn Store>) {
    let c = new_connection("acme", SourceKind::AwsSns);
    store.create_connection(&c).await.unwrap();
    let t = now() - Duration::minutes(10);
    let facts = |store: Arc<dyn Store>| async move {
        let got = store.get_connection(c.id).await.unwrap().unwrap();
        (got.counters.heartbeats, got.counters.duplicates, got.facts.last_heartbeat_at.map(|t| t.timestamp_micros()))
    };
    // Twice in one batch: counted once, at its signed time.
    let outcomes = store
        .commit(&[heartbeat(&c, "hb-1", t, t + Duration::seconds(3)), heartbeat(&c, "hb-1", t, t + Duration::seconds(4))])
        .await
        .unwrap();
    assert_eq!(outcomes, [OpOutcome::Accepted { stored: 0, duplicates: 0 }, OpOutcome::Accepted { stored: 0, duplicates: 1 }]);
    assert_eq!(facts(store.clone()).await, (1, 1, Some(t.timestamp_micros())));
    // Replayed later, in a batch of its own: a duplicate that moves nothing.
    let replay = store.commit(&[heartbeat(&c, "hb-1", t + Duration::minutes(5), now())]).await.unwrap();
    assert_eq!(replay, [OpOutcome::Accepted { stored: 0, duplicates: 1 }]);
    assert_eq!(facts(store.clone()).await, (1, 2, Some(t.timestamp_micros())));
    // A new id signed earlier (a late retry): counted, the time stays.
    store.commit(&[heartbeat(&c, "hb-0", t - Duration::minutes(5), now())]).await.unwrap();
    assert_eq!(facts(store.clone()).await, (2, 2, Some(t.timestamp_micros())));
    // A later one moves it forward, to its signed time.
    let later = t + Duration::minutes(5);
    store.commit(&[heartbeat(&c, "hb-2", later, now())]).await.unwrap();
    assert_eq!(facts(store.clone()).await, (3, 2, Some(later.timestamp_micros())));
    // The same id on another connection is another heartbeat.
    let other = new_connection("acme", SourceKind::AwsSns);
    store.create_connection(&other).await.unwrap();
    assert_eq!(store.commit(&[heartbeat(&other, "hb-1", t, now())]).await.unwrap(), [OpOutcome::Accepted { stored: 0, duplicates: 0 }]);
    assert_eq!(store.get_connection(other.id).await.unwrap().unwrap().counters.heartbeats, 1);
}

async fn heartbeat_ids_are_pruned_by_arrival(store: Arc<dyn Store>) {
    let c = new_connection("acme", SourceKind::AwsSns);
    store.create_connection(&c).await.unwrap();
    let at = now();
    let old = at - Duration::days(8);
    store
        .commit(&[heartbeat(&c, "old", old, old), heartbeat(&c, "recent", at - Duration::days(8), at - Duration::hours(1))])
        .await
        .unwrap();
    assert_eq!(store.prune_heartbeats(at, Duration::days(7)).await.unwrap(), 1, "only the one that arrived before");
    assert_eq!(store.prune_heartbeats(at, Duration::days(7)).await.unwrap(), 0);
    // A pruned id is new again (the freshness rule refuses such a replay before the store);
    // a kept one is still a duplicate.
    let again = store.commit(&[heartbeat(&c, "old", old, at), heartbeat(&c, "recent", old, at)]).await.unwrap();
    assert_eq!(again, [OpOutcome::Accepted { stored: 0, duplicates: 0 }, OpOutcome::Accepted { stored: 0, duplicates: 1 }]);
    // Deleting the connection forgets its heartbeats.
    assert!(store.delete_connection(c.id).await.unwrap());
    assert_eq!(store.prune_heartbeats(at + Duration::days(30), Duration::days(7)).await.unwrap(), 0, "nothing of it was left");
}
