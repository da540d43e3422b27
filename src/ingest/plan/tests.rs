use chrono::{SubsecRound, Utc};
use serde_json::json;
use uuid::Uuid;

use super::*;
use crate::model::{EventKind, HeartbeatProof};
use crate::sources::{Batch, ConnectionConfig};

fn connection(source: SourceKind, stream: &str) -> LoadedConnection {
    LoadedConnection {
        id: Uuid::new_v4(),
        tenant_id: "t".into(),
        source,
        stream: stream.into(),
        paused: false,
        heartbeat_window: None,
        config: ConnectionConfig::unprepared(Value::Null),
    }
}

fn event(key: &str) -> NewEvent {
    NewEvent { dedupe_key: key.into(), kind: EventKind::Alert, occurred_at: None, payload: json!({"k": key}) }
}

fn planned(decoded: Result<Intake, Rejected>, source: SourceKind, stream: &str) -> Result<Plan, Rejected> {
    plan(decoded, &connection(source, stream), Utc::now())
}

#[test]
fn events_are_written_and_a_stream_hint_applies_only_to_the_default_stream() {
    let beat = HeartbeatProof::new("hb", Utc::now());
    let hinted = || Ok(Intake::Events { events: vec![event("a")], heartbeat: Some(beat.clone()), stream: Some("cloud_workspace_alert") });
    let p = planned(hinted(), SourceKind::GcpPubsub, "cloud_gcp_security_finding").unwrap();
    assert_eq!(p.accepted.stream, "cloud_workspace_alert");
    assert!(p.accepted.heartbeat.is_some() && p.accepted.confirms && p.accepted.authenticated);
    assert_eq!(p.accepted.events.len(), 1);
    assert_eq!(p.answer, None, "answered with the commit's counts");
    // The admin chose a stream: the hint does not override it.
    let p = planned(hinted(), SourceKind::GcpPubsub, "my_stream").unwrap();
    assert_eq!(p.accepted.stream, "my_stream");
}

#[test]
fn a_heartbeat_is_answered_as_one_and_stores_nothing() {
    let signed_at = Utc::now().trunc_subsecs(6) - chrono::Duration::seconds(5);
    let p = planned(Ok(Intake::Heartbeat(HeartbeatProof::new("hb-1", signed_at))), SourceKind::Webhook, "webhook_event").unwrap();
    assert_eq!(p.accepted.heartbeat, Some(CountedHeartbeat { id: "hb-1".into(), signed_at }), "counted at its signed time");
    assert!(p.accepted.events.is_empty() && p.stale_heartbeat.is_none());
    assert_eq!(p.answer, Some(PushAccepted::Heartbeat { duplicate: false }));
    assert_eq!(Plan::answer_after(p.answer, 0, 0, 1), PushAccepted::Heartbeat { duplicate: true }, "an id counted before");
}

/// A connection expecting a heartbeat every 300 s, with 60 s of grace.
fn every_five_minutes() -> LoadedConnection {
    LoadedConnection { heartbeat_window: crate::model::heartbeat::freshness_window(Some(300), 60), ..connection(SourceKind::AwsSns, "s") }
}

#[test]
fn a_heartbeat_counts_at_its_signed_time_never_after_its_receipt() {
    // Received as ingest stamps it: to the microsecond.
    let received_at = Utc::now().trunc_subsecs(6);
    let plan_at = |proof| plan(Ok(Intake::Heartbeat(proof)), &every_five_minutes(), received_at).unwrap();
    let late = plan_at(HeartbeatProof::new("a", received_at - chrono::Duration::seconds(360)));
    assert_eq!(late.accepted.heartbeat.map(|h| h.signed_at), Some(received_at - chrono::Duration::seconds(360)), "interval + grace old");
    let ahead = plan_at(HeartbeatProof::new("b", received_at + chrono::Duration::seconds(30)));
    assert_eq!(ahead.accepted.heartbeat.map(|h| h.signed_at), Some(received_at), "a sender's clock ahead is capped at receipt");
    let nanos = plan_at(HeartbeatProof::new("c", received_at - chrono::Duration::nanoseconds(1_500)));
    assert_eq!(nanos.accepted.heartbeat.map(|h| h.signed_at), Some(received_at - chrono::Duration::microseconds(2)), "to the microsecond");
    let long = plan_at(HeartbeatProof::new("k".repeat(600), received_at));
    assert!(long.accepted.heartbeat.unwrap().id.starts_with("sha256:"), "a long id is kept as its hash, like a dedupe key");
}

#[test]
fn a_stale_or_unnamed_heartbeat_is_acknowledged_counts_nothing_and_is_kept() {
    let received_at = Utc::now();
    let stale = [
        HeartbeatProof::new("old", received_at - chrono::Duration::seconds(361)),
        HeartbeatProof { id: None, signed_at: Some(received_at) },
        HeartbeatProof { id: Some("no-time".into()), signed_at: None },
    ];
    for proof in stale {
        let p = plan(Ok(Intake::Heartbeat(proof.clone())), &every_five_minutes(), received_at).unwrap();
        assert_eq!(p.accepted.heartbeat, None, "{proof:?}");
        assert_eq!(p.answer, Some(PushAccepted::HeartbeatNotFresh), "{proof:?}");
        assert_eq!(p.stale_heartbeat.as_ref().map(|r| r.reason), Some("heartbeat_not_fresh"), "{proof:?}");
        assert!(p.accepted.confirms && p.accepted.authenticated, "the push itself is authentic");
    }
    // Without an interval only the id and time are required.
    let old = HeartbeatProof::new("old", received_at - chrono::Duration::days(3));
    let p = plan(Ok(Intake::Heartbeat(old)), &connection(SourceKind::AwsSns, "s"), received_at).unwrap();
    assert!(p.accepted.heartbeat.is_some() && p.stale_heartbeat.is_none());
    // Events beside a stale heartbeat are stored; the heartbeat alone is kept as refused.
    let beside = Intake::Events {
        events: vec![event("e")],
        heartbeat: Some(HeartbeatProof::new("old", received_at - chrono::Duration::hours(1))),
        stream: None,
    };
    let p = plan(Ok(beside), &every_five_minutes(), received_at).unwrap();
    assert_eq!((p.accepted.events.len(), p.accepted.heartbeat.is_none(), p.answer), (1, true, None));
    assert_eq!(p.stale_heartbeat.map(|r| r.reason), Some("heartbeat_not_fresh"));
}

#[test]
fn a_lifecycle_event_carries_its_change_and_does_not_confirm() {
    let change = SubscriptionChange::Lost { at: Utc::now() };
    let p = planned(Ok(Intake::Lifecycle { event: event("l-1"), change: change.clone() }), SourceKind::AwsSns, "s").unwrap();
    assert!(!p.accepted.confirms);
    assert_eq!(p.accepted.changes, vec![ReportedChange { change, event_key: Some("l-1".into()) }]);
    assert_eq!(p.answer, Some(PushAccepted::Lifecycle));
}

#[test]
fn handshakes_confirm_and_authenticate_as_their_sender_proves() {
    let cases = [
        (Handshake::GraphValidation { token: b"t".to_vec() }, false, false),
        (
            Handshake::SnsSubscription {
                region: "us-east-1".into(),
                topic_arn: "arn:aws:sns:us-east-1:123456789012:t".into(),
                subscribe_url: "https://sns.us-east-1.amazonaws.com/".into(),
                token: "tok".into(),
                message_id: "m".into(),
                auto_confirm: true,
            },
            false,
            true,
        ),
        (Handshake::O365Validation, true, true),
    ];
    for (handshake, confirms, authenticated) in cases {
        let mut p = planned(Ok(Intake::Handshake(handshake.clone())), SourceKind::MsGraph, "s").unwrap();
        assert_eq!((p.accepted.confirms, p.accepted.authenticated), (confirms, authenticated), "{handshake:?}");
        assert_eq!(p.handshake.as_ref(), Some(&handshake));
        p.answered(Some(SubscriptionChange::Validated), PushAccepted::Validated { echo: None });
        assert_eq!(p.accepted.changes, vec![ReportedChange::always(SubscriptionChange::Validated)]);
        assert_eq!(p.answer, Some(PushAccepted::Validated { echo: None }));
    }
}

#[test]
fn an_undecodable_push_is_kept_and_acknowledged_and_anything_else_refused() {
    let p = planned(Err(Rejected::undecodable("invalid_json", "no")), SourceKind::Webhook, "s").unwrap();
    assert_eq!(p.answer, Some(PushAccepted::KeptUndecodable { reason: "invalid_json" }));
    assert_eq!(p.undecodable.map(|r| r.reason), Some("invalid_json"));
    assert!(p.accepted.events.is_empty());
    let refused = planned(Err(Rejected::malformed("sns_not_an_envelope", "no")), SourceKind::AwsSns, "s").unwrap_err();
    assert_eq!(refused.reason, "sns_not_an_envelope");
}

#[test]
fn a_batch_keeps_its_refused_items_and_says_so_in_the_answer() {
    let batch = Batch {
        events: vec![event("a"), event("b")],
        changes: vec![ReportedChange {
            change: SubscriptionChange::Removed { at: Utc::now(), subscription_id: "sub".into() },
            event_key: Some("k".repeat(600)),
        }],
        refused: vec![Rejected::unauthenticated("graph_client_state_mismatch", "x")],
    };
    let p = planned(Ok(Intake::Batch(batch)), SourceKind::MsGraph, "s").unwrap();
    assert_eq!(p.refused_items.len(), 1);
    assert!(p.for_upkeep(), "a removal is for the upkeep to answer at once");
    // A long key is shortened the same way for its event and its change.
    assert!(p.accepted.changes[0].event_key.as_deref().unwrap().starts_with("sha256:"));
    assert_eq!(Plan::answer_after(None, 1, 2, 0), PushAccepted::StoredPartly { stored: 2, duplicates: 0, refused: 1 });
    assert_eq!(Plan::answer_after(None, 0, 2, 1), PushAccepted::Stored { stored: 2, duplicates: 1 });
    assert_eq!(Plan::answer_after(Some(PushAccepted::Lifecycle), 0, 1, 0), PushAccepted::Lifecycle);
}

#[test]
fn only_a_graph_removal_or_reauthorization_calls_the_upkeep() {
    let removed = |source| {
        let change = SubscriptionChange::Removed { at: Utc::now(), subscription_id: "sub".into() };
        planned(Ok(Intake::Lifecycle { event: event("l"), change }), source, "s").unwrap().for_upkeep()
    };
    assert!(removed(SourceKind::MsGraph));
    assert!(!removed(SourceKind::AwsSns));
    assert!(!planned(Ok(Intake::Heartbeat(HeartbeatProof::new("h", Utc::now()))), SourceKind::MsGraph, "s").unwrap().for_upkeep());
}

#[test]
fn sanitize_removes_nul_and_bounds_keys() {
    let e = sanitize(NewEvent {
        dedupe_key: "k".repeat(600),
        kind: EventKind::Alert,
        occurred_at: None,
        payload: json!({"a\u{0}": ["x\u{0}y", {"b": "\u{0}"}]}),
    });
    assert!(e.dedupe_key.starts_with("sha256:") && e.dedupe_key.len() == 71);
    assert_eq!(e.payload, json!({"a\u{fffd}": ["x\u{fffd}y", {"b": "\u{fffd}"}]}));
    let short = sanitize(NewEvent { dedupe_key: "id-1".into(), kind: EventKind::Alert, occurred_at: None, payload: json!(1) });
    assert_eq!(short.dedupe_key, "id-1");
}
