//! The one-replica jobs' half of the conformance suite ([`crate::store::Jobs`]), on both
//! backends: job leases with their generations, the durable alert queue and its fence,
//! and the compare-and-set that records a status transition once between replicas.

use super::*;
use crate::model::{Alert, JobLease};

conformance!(
    a_job_lease_has_one_holder_at_a_time,
    a_job_lease_is_renewed_only_by_its_current_take,
    an_expired_job_lease_is_taken_over_with_a_new_generation,
    a_released_job_lease_is_free_and_its_generation_grows,
    alerts_wait_in_order_until_finished,
    the_alert_queue_drops_the_oldest_beyond_its_cap,
    a_lost_lease_cannot_record_alert_outcomes,
    racing_monitors_record_a_transition_once,
);

fn secs(n: i64) -> Duration {
    Duration::seconds(n)
}

async fn a_job_lease_has_one_holder_at_a_time(store: Arc<dyn Store>) {
    let at = now();
    let a = store.acquire_job("canaries", "a", at, at + secs(20)).await.unwrap().expect("free: taken");
    assert_eq!((a.job.as_str(), a.holder.as_str()), ("canaries", "a"));
    assert!(store.acquire_job("canaries", "b", at, at + secs(20)).await.unwrap().is_none(), "held by a");
    let other = store.acquire_job("alerts", "b", at, at + secs(20)).await.unwrap();
    assert!(other.is_some(), "each job has its own lease");
    assert!(store.acquire_job("retention", "c", at, at + secs(20)).await.unwrap().is_some(), "free: taken");
    assert!(store.acquire_job("canaries", "c", at, at + secs(20)).await.unwrap().is_none(), "still held by a");
}

async fn a_job_lease_is_renewed_only_by_its_current_take(store: Arc<dyn Store>) {
    let at = now();
    let a = store.acquire_job("graph_upkeep", "a", at, at + secs(20)).await.unwrap().unwrap();
    let later = at + secs(15);
    assert!(store.renew_job(&a, later + secs(20)).await.unwrap(), "its holder renews it");
    // Renewed: still held past the first expiry.
    let past_first = at + secs(25);
    assert!(store.acquire_job("graph_upkeep", "b", past_first, past_first + secs(20)).await.unwrap().is_none());
    let stale = JobLease { generation: a.generation - 1, ..a.clone() };
    assert!(!store.renew_job(&stale, later + secs(20)).await.unwrap(), "an earlier take renews nothing");
    let impostor = JobLease { holder: "b".into(), ..a.clone() };
    assert!(!store.renew_job(&impostor, later + secs(20)).await.unwrap(), "another holder renews nothing");
}

async fn an_expired_job_lease_is_taken_over_with_a_new_generation(store: Arc<dyn Store>) {
    let at = now();
    let a = store.acquire_job("pubsub_check", "a", at, at + secs(20)).await.unwrap().unwrap();
    let expired = at + secs(21);
    let b = store.acquire_job("pubsub_check", "b", expired, expired + secs(20)).await.unwrap().expect("expired: taken over");
    assert!(b.generation > a.generation, "a takeover is a new generation: {} then {}", a.generation, b.generation);
    assert!(!store.renew_job(&a, expired + secs(20)).await.unwrap(), "the old holder lost it");
    assert!(store.acquire_job("pubsub_check", "a", expired, expired + secs(20)).await.unwrap().is_none());
    // Taking it again while holding it is a new take too, which fences out the first.
    let again = store.acquire_job("pubsub_check", "b", expired, expired + secs(20)).await.unwrap().unwrap();
    assert!(again.generation > b.generation);
    assert!(!store.renew_job(&b, expired + secs(20)).await.unwrap());
}

async fn a_released_job_lease_is_free_and_its_generation_grows(store: Arc<dyn Store>) {
    let at = now();
    let a = store.acquire_job("alerts", "a", at, at + secs(20)).await.unwrap().unwrap();
    store.release_job(&a).await.unwrap();
    let b = store.acquire_job("alerts", "b", at, at + secs(20)).await.unwrap().expect("released: free at once");
    assert!(b.generation > a.generation, "generations only grow");
    store.release_job(&a).await.unwrap();
    assert!(store.acquire_job("alerts", "c", at, at + secs(20)).await.unwrap().is_none(), "a stale release frees nothing");
    assert!(store.renew_job(&b, at + secs(20)).await.unwrap());
}

fn alert(subject: AlertSubject, new_status: &str) -> Alert {
    Alert {
        subject,
        tenant_id: matches!(subject, AlertSubject::Connection(_)).then(|| "acme".to_owned()),
        name: "feed ünï".into(),
        at: now(),
        old_status: Some("connected".into()),
        new_status: new_status.into(),
        message: Some("Last heartbeat is too old".into()),
    }
}

fn outcome(alert: &Alert, attempts: i64, delivered: bool) -> AlertDelivery {
    AlertDelivery {
        subject: alert.subject,
        at: alert.at,
        old_status: alert.old_status.clone(),
        new_status: alert.new_status.clone(),
        message: alert.message.clone(),
        attempts,
        delivered,
        last_error: (!delivered).then(|| "the alert webhook answered 503".to_owned()),
        finished_at: now(),
    }
}

async fn alerts_wait_in_order_until_finished(store: Arc<dyn Store>) {
    let connection = AlertSubject::Connection(Uuid::new_v4());
    let destination = AlertSubject::Destination(Uuid::new_v4());
    let first = alert(connection, "error");
    let second = alert(destination, "failing");
    assert_eq!(store.enqueue_alert(&first, now(), 100).await.unwrap(), 0);
    assert_eq!(store.enqueue_alert(&second, now(), 100).await.unwrap(), 0);
    assert_eq!(store.pending_alerts().await.unwrap(), 2);
    let lease = store.acquire_job("alerts", "a", now(), now() + secs(20)).await.unwrap().unwrap();
    let mut head = store.next_alert().await.unwrap().expect("queued");
    assert_eq!(head.alert, first, "oldest first, read back whole");
    assert_eq!((head.attempts, head.last_error.as_deref()), (0, None));
    head.attempts = 1;
    head.next_attempt_at = now() + secs(1);
    head.last_error = Some("the alert webhook answered 503".into());
    assert!(store.retry_alert(&lease, &head).await.unwrap());
    let again = store.next_alert().await.unwrap().unwrap();
    assert_eq!(again, head, "the attempt is kept with the alert (a restart carries on from it)");
    assert!(store.finish_alert(&lease, head.id, &outcome(&first, 2, true)).await.unwrap());
    assert!(!store.finish_alert(&lease, head.id, &outcome(&first, 2, true)).await.unwrap(), "finished once");
    assert_eq!(store.next_alert().await.unwrap().unwrap().alert, second);
    let kept = store.list_alert_deliveries(connection, 10).await.unwrap();
    assert_eq!(kept, [outcome(&first, 2, true)].map(|d| AlertDelivery { finished_at: kept[0].finished_at, ..d }));
    assert_eq!(store.pending_alerts().await.unwrap(), 1);
}

async fn the_alert_queue_drops_the_oldest_beyond_its_cap(store: Arc<dyn Store>) {
    let subject = AlertSubject::Connection(Uuid::new_v4());
    for status in ["a", "b", "c"] {
        assert_eq!(store.enqueue_alert(&alert(subject, status), now(), 3).await.unwrap(), 0);
    }
    assert_eq!(store.enqueue_alert(&alert(subject, "d"), now(), 3).await.unwrap(), 1, "one over the cap");
    assert_eq!(store.pending_alerts().await.unwrap(), 3);
    assert_eq!(store.next_alert().await.unwrap().unwrap().alert.new_status, "b", "the oldest went");
}

async fn a_lost_lease_cannot_record_alert_outcomes(store: Arc<dyn Store>) {
    let queued = alert(AlertSubject::Connection(Uuid::new_v4()), "error");
    store.enqueue_alert(&queued, now(), 100).await.unwrap();
    let at = now();
    let old = store.acquire_job("alerts", "a", at, at + secs(20)).await.unwrap().unwrap();
    let later = at + secs(30);
    let new = store.acquire_job("alerts", "b", later, later + secs(20)).await.unwrap().unwrap();
    let mut head = store.next_alert().await.unwrap().unwrap();
    head.attempts = 1;
    assert!(!store.retry_alert(&old, &head).await.unwrap(), "fenced out");
    assert!(!store.finish_alert(&old, head.id, &outcome(&queued, 1, true)).await.unwrap(), "fenced out");
    assert_eq!(store.next_alert().await.unwrap().unwrap().attempts, 0, "nothing recorded");
    assert!(store.finish_alert(&new, head.id, &outcome(&queued, 1, true)).await.unwrap());
    assert_eq!(store.pending_alerts().await.unwrap(), 0);
}

async fn racing_monitors_record_a_transition_once(store: Arc<dyn Store>) {
    let c = new_connection("acme", SourceKind::Webhook);
    store.create_connection(&c).await.unwrap();
    let change =
        StatusChange { at: now(), old_status: None, new_status: Status::RequiresAction, message: Some("Awaiting subscription".into()) };
    // Two replicas evaluated the same connection and saw the same transition.
    let (one, other) = tokio::join!(store.record_status(c.id, &change), store.record_status(c.id, &change));
    assert_eq!([one.unwrap(), other.unwrap()].iter().filter(|recorded| **recorded).count(), 1, "recorded once");
    assert_eq!(store.list_history(c.id).await.unwrap(), std::slice::from_ref(&change));
    // With its alert: the transition and the alert are one write, made once.
    let next = StatusChange { at: now(), old_status: Some(Status::RequiresAction), new_status: Status::Connected, message: None };
    let announced = alert(AlertSubject::Connection(c.id), "connected");
    let (one, other) = tokio::join!(
        store.record_status_alerting(c.id, &next, &announced, 100),
        store.record_status_alerting(c.id, &next, &announced, 100)
    );
    assert_eq!([one.unwrap(), other.unwrap()].iter().filter(|recorded| recorded.is_some()).count(), 1, "recorded once");
    assert_eq!(store.list_history(c.id).await.unwrap(), [change, next.clone()]);
    assert_eq!(store.pending_alerts().await.unwrap(), 1, "alerted once");
    assert_eq!(store.next_alert().await.unwrap().unwrap().alert, announced);
    // A missed report, likewise.
    let missed = StatusChange { message: Some("Notifications were missed".into()), old_status: Some(Status::Connected), ..next };
    assert_eq!(store.record_missed_alerting(c.id, &missed, &announced, 100).await.unwrap(), Some(0));
    assert_eq!(store.record_missed_alerting(c.id, &missed, &announced, 100).await.unwrap(), None, "entered once");
    assert_eq!(store.pending_alerts().await.unwrap(), 2);
}
