use super::*;
use serde_json::json;

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
}

fn queued(expires_at: DateTime<Utc>) -> QueuedFetch {
    QueuedFetch {
        id: 1,
        connection_id: Uuid::nil(),
        content_id: "c".into(),
        content_type: "Audit.Exchange".into(),
        content_uri: "https://manage.office.com/api/v1.0/t/activity/feed/audit/c".into(),
        expires_at,
        attempts: 0,
        next_attempt_at: expires_at,
        last_error: None,
    }
}

#[test]
fn failed_fetches_wait_twice_as_long_each_time_up_to_five_minutes() {
    let waits: Vec<u64> = (1..=10).map(|n| backoff(n).as_secs()).collect();
    assert_eq!(waits, [2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
    assert_eq!(backoff(i64::MAX), LONGEST_RETRY, "no overflow however many attempts");
}

#[test]
fn the_next_attempt_honours_retry_after_and_never_passes_the_expiry() {
    let now = at("2026-12-02T10:00:00Z");
    let expires = at("2026-12-02T10:01:00Z");
    assert_eq!(next_attempt(1, now, expires, None), at("2026-12-02T10:00:02Z"));
    assert_eq!(next_attempt(3, now, expires, None), at("2026-12-02T10:00:08Z"));
    // Microsoft's Retry-After wins over the backoff, shorter or longer.
    assert_eq!(next_attempt(5, now, expires, Some(Duration::from_secs(1))), at("2026-12-02T10:00:01Z"));
    assert_eq!(next_attempt(1, now, expires, Some(Duration::from_secs(45))), at("2026-12-02T10:00:45Z"));
    // Past the expiry, the next look is at the expiry, which finds the content expired.
    assert_eq!(next_attempt(9, now, expires, None), expires);
    assert_eq!(next_attempt(1, now, expires, Some(Duration::from_secs(3600))), expires);
}

#[test]
fn content_expires_at_its_expiry() {
    let expires = at("2026-12-02T10:01:00Z");
    assert!(!expired(&queued(expires), at("2026-12-02T10:00:59Z")));
    assert!(expired(&queued(expires), expires));
    assert!(expired(&queued(expires), at("2026-12-09T00:00:00Z")));
}

#[test]
fn creation_times_without_a_zone_are_utc() {
    // As Microsoft's schema reference writes them.
    assert_eq!(creation_time("2015-06-29T20:03:19"), Some(at("2015-06-29T20:03:19Z")));
    assert_eq!(creation_time("2015-06-29T20:03:19.123"), Some(at("2015-06-29T20:03:19.123Z")));
    assert_eq!(creation_time("2015-06-29T20:03:19Z"), Some(at("2015-06-29T20:03:19Z")));
    assert_eq!(creation_time("2015-06-29T22:03:19+02:00"), Some(at("2015-06-29T20:03:19Z")));
    assert_eq!(creation_time("29/06/2015"), None);
    assert_eq!(creation_time(""), None);
}

#[test]
fn a_record_is_keyed_by_its_id_at_its_creation_time_and_kept_as_it_is() {
    let record = json!({
        "CreationTime": "2015-06-29T20:03:19", "Id": "80c76bd2-9d81-4c57-a97a-accfc3443dca", "Operation": "PasswordLogonInitialAuthUsingPassword",
        "OrganizationId": "41463f53-8812-40f4-890f-865bf6e35190", "RecordType": 9, "ResultStatus": "Succeeded", "UserKey": "1153977025279851686@contoso.onmicrosoft.com",
        "UserType": 0, "Workload": "AzureActiveDirectory", "ClientIP": "134.170.188.221", "UserId": "admin@contoso.onmicrosoft.com"
    });
    let event = record_event(record.clone());
    assert_eq!((event.dedupe_key.as_str(), event.kind), ("80c76bd2-9d81-4c57-a97a-accfc3443dca", EventKind::Telemetry));
    assert_eq!(event.occurred_at, Some(at("2015-06-29T20:03:19Z")));
    assert_eq!(event.payload, record);

    // No Id: its content's hash, so a re-fetch is still a duplicate; no readable time: none.
    let anonymous = json!({"CreationTime": "yesterday", "Operation": "x\u{0}y"});
    let event = record_event(anonymous.clone());
    assert!(event.dedupe_key.starts_with("sha256:"));
    assert_eq!(event.dedupe_key, record_event(anonymous).dedupe_key);
    assert_eq!(event.occurred_at, None);
    assert_eq!(event.payload["Operation"], "x\u{fffd}y", "storable in both backends");
}
