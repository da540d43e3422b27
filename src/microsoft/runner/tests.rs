use super::*;
use serde_json::json;

fn connection(id: Uuid) -> Connection {
    let at = DateTime::parse_from_rfc3339("2030-01-01T00:00:00Z").unwrap().with_timezone(&Utc);
    Connection {
        id,
        tenant_id: "acme".into(),
        name: "g".into(),
        source: SourceKind::MsGraph,
        stream: "s".into(),
        heartbeat_interval_seconds: None,
        grace_seconds: 0,
        config_public: json!({}),
        config_sealed: String::new(),
        created_at: at,
        activated_at: at,
        updated_at: at,
        facts: Default::default(),
        counters: Default::default(),
        canary: Default::default(),
        upkeep: Default::default(),
        fetch: Default::default(),
        catch_up: Default::default(),
    }
}

#[test]
fn a_nudge_ends_the_wait_of_that_connection_only() {
    let (a, b) = (connection(Uuid::new_v4()), connection(Uuid::new_v4()));
    let mut backoff = Backoff::default();
    let start = Instant::now();
    backoff.failed(&a, Duration::from_secs(60), start);
    backoff.failed(&b, Duration::from_secs(60), start);
    let nudged = HashSet::from([a.id]);
    assert!(!backoff.skips(&a, &nudged, start), "nudged");
    assert!(backoff.skips(&b, &nudged, start), "still waiting");
    assert!(!backoff.skips(&b, &nudged, start + Duration::from_secs(61)), "waited long enough");
}

#[test]
fn an_admin_change_ends_the_wait_and_restarts_the_count() {
    let mut a = connection(Uuid::new_v4());
    let mut backoff = Backoff::default();
    let start = Instant::now();
    backoff.failed(&a, Duration::from_secs(60), start);
    backoff.failed(&a, Duration::from_secs(60), start);
    assert!(backoff.waits(&a, start + Duration::from_secs(119)), "two failures: two intervals");
    a.updated_at += chrono::Duration::seconds(1);
    assert!(!backoff.waits(&a, start), "changed since");
    backoff.failed(&a, Duration::from_secs(60), start);
    assert!(!backoff.waits(&a, start + Duration::from_secs(61)), "counted from one again");
}

#[test]
fn a_running_upkeep_collects_nudged_connections_until_its_next_pass() {
    let signals: Signals<&str> = Signals::default();
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    signals.nudge(a);
    assert!(!signals.retire("sub-0"), "no upkeep runs: not kept");
    assert!(signals.take_nudged().is_empty() && signals.take_retirements().is_empty(), "no upkeep runs: nothing kept");
    let running = Running::mark(&signals);
    signals.nudge(a);
    signals.nudge(b);
    signals.nudge(a);
    assert_eq!(signals.take_nudged(), HashSet::from([a, b]));
    assert!(signals.take_nudged().is_empty(), "taken by one pass");
    assert!(signals.retire("sub-1"));
    assert_eq!(signals.take_retirements(), ["sub-1"]);
    drop(running);
    signals.nudge(a);
    assert!(signals.take_nudged().is_empty(), "the run ended");
}

#[test]
fn failures_back_off_doubling_up_to_sixteen_intervals() {
    let minute = Duration::from_secs(60);
    let waits: Vec<u64> = (1..=7).map(|n| backoff_delay(minute, n).as_secs() / 60).collect();
    assert_eq!(waits, [1, 2, 4, 8, 16, 16, 16]);
    assert_eq!(backoff_delay(minute, u32::MAX), minute * 16);
    assert_eq!(backoff_delay(Duration::MAX, 3), Duration::MAX, "no overflow");
}
