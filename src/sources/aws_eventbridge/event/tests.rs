use serde_json::json;

use super::*;

const CIS_1_3: &str = include_str!("../../../../tests/fixtures/aws-eventbridge/securityhub/asr_CIS-1.3.json");
const CIS_1_4: &str = include_str!("../../../../tests/fixtures/aws-eventbridge/securityhub/asr_CIS-1.4.json");
const CIS_BAD: &str = include_str!("../../../../tests/fixtures/aws-eventbridge/securityhub/asr_CIS-bad.json");
const AFSBP_EC2_7: &str = include_str!("../../../../tests/fixtures/aws-eventbridge/securityhub/asr_afsbp-ec2.7.json");
const CUSTOM_ACTION: &str = include_str!("../../../../tests/fixtures/aws-eventbridge/securityhub/asr_CIS_1-6.json");
const GUARDDUTY: &str = include_str!(
    "../../../../tests/fixtures/aws-eventbridge/guardduty/security_monkey_guardduty-finding-event_PortProbeUnprotectedPort_2018.json"
);
const SCHEDULED: &str = include_str!("../../../../tests/fixtures/aws-eventbridge/scheduled/awsdocs_eventbridge_scheduled-event.json");

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

fn stored(decoded: Decoded) -> Vec<NewEvent> {
    match decoded {
        Decoded::Events(events) => events,
        Decoded::Heartbeat { .. } => panic!("expected events, got a heartbeat"),
    }
}

fn at(text: &str) -> Option<DateTime<Utc>> {
    Some(DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc))
}

#[test]
fn each_imported_findings_vector_is_one_alert_at_its_finding_update() {
    for (name, text, updated_at) in [
        ("CIS-1.3", CIS_1_3, "2020-05-27T03:37:35.834Z"),
        ("CIS-1.4", CIS_1_4, "2020-05-27T03:38:28.102Z"),
        ("afsbp-ec2.7", AFSBP_EC2_7, "2021-02-17T14:56:09.063Z"),
        // Valid EventBridge: only a downstream remediation tool needs its GeneratorId.
        ("CIS-bad", CIS_BAD, "2020-05-27T03:37:35.834Z"),
    ] {
        let original = parse(text);
        let events = stored(decode(original.clone(), "msg-1"));
        assert_eq!(events.len(), 1, "{name}");
        let e = &events[0];
        assert_eq!((e.kind, e.dedupe_key.as_str(), e.occurred_at), (EventKind::Alert, "msg-1", at(updated_at)), "{name}");
        // One finding: the payload is the event as it came.
        assert_eq!(e.payload, original, "{name}");
        assert_eq!(e.payload["account"], "111111111111", "{name}");
        assert_eq!(e.payload["region"], "us-east-1", "{name}");
    }
}

#[test]
fn several_findings_are_one_alert_each_keyed_by_index() {
    let mut event = parse(CIS_1_3);
    let findings: Vec<Value> = [CIS_1_3, CIS_1_4, AFSBP_EC2_7].iter().map(|t| parse(t)["detail"]["findings"][0].clone()).collect();
    event["detail"]["findings"] = Value::Array(findings.clone());
    let events = stored(decode(event.clone(), "msg-7"));
    assert_eq!(events.len(), 3);
    let updates = ["2020-05-27T03:37:35.834Z", "2020-05-27T03:38:28.102Z", "2021-02-17T14:56:09.063Z"];
    for (index, e) in events.iter().enumerate() {
        assert_eq!(e.dedupe_key, format!("msg-7/{index}"));
        assert_eq!(e.kind, EventKind::Alert);
        assert_eq!(e.occurred_at, at(updates[index]));
        assert_eq!(e.payload["detail"]["findings"], json!([findings[index]]));
        // Everything around the findings is kept, keys in their order.
        let mut expected = event.clone();
        expected["detail"]["findings"] = json!([findings[index]]);
        assert_eq!(e.payload, expected);
        let keys: Vec<&String> = e.payload.as_object().unwrap().keys().collect();
        let original_keys: Vec<&String> = event.as_object().unwrap().keys().collect();
        assert_eq!(keys, original_keys);
    }
}

#[test]
fn a_custom_action_is_split_per_finding_and_keeps_the_action() {
    let mut event = parse(CUSTOM_ACTION);
    let finding = event["detail"]["findings"][0].clone();
    let events = stored(decode(event.clone(), "ca-1"));
    assert_eq!(events.len(), 1);
    assert_eq!((events[0].kind, events[0].occurred_at), (EventKind::Alert, at("2020-06-02T15:36:24.745Z")));
    assert_eq!(events[0].payload["detail"]["actionName"], "CIS 1.5 - 1.11 RR");

    event["detail"]["findings"] = json!([finding.clone(), finding]);
    let events = stored(decode(event, "ca-2"));
    let keys: Vec<&str> = events.iter().map(|e| e.dedupe_key.as_str()).collect();
    assert_eq!(keys, ["ca-2/0", "ca-2/1"]);
    assert!(events.iter().all(|e| e.payload["detail"]["actionName"] == "CIS 1.5 - 1.11 RR"));
}

#[test]
fn a_guardduty_finding_is_one_alert_at_its_update() {
    let original = parse(GUARDDUTY);
    let events = stored(decode(original.clone(), "gd-1"));
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!((e.kind, e.dedupe_key.as_str()), (EventKind::Alert, "gd-1"));
    // The event's own time is the epoch in this vector; the finding's update is what counts.
    assert_eq!(e.occurred_at, at("2018-01-08T00:52:34.750Z"));
    assert_eq!(e.payload, original);
}

#[test]
fn a_scheduled_event_is_a_heartbeat() {
    let scheduled = parse(SCHEDULED);
    assert!(is_heartbeat(&scheduled));
    assert_eq!(decode(scheduled, "hb"), Decoded::Heartbeat { time: Some("2015-10-08T16:53:06Z".parse().unwrap()) });
    // Only EventBridge's own schedule counts: the same detail-type from elsewhere is data.
    let lookalike = json!({"source": "acme.jobs", "detail-type": "Scheduled Event", "detail": {}});
    assert!(!is_heartbeat(&lookalike));
    assert_eq!(stored(decode(lookalike, "x"))[0].kind, EventKind::Telemetry);
    assert!(!is_heartbeat(&json!({"source": "aws.events", "detail-type": "Other"})));
    assert!(!is_heartbeat(&json!("Scheduled Event")));
}

#[test]
fn a_findings_event_without_findings_is_stored_whole() {
    for findings in [json!([]), Value::Null, json!({"not": "a list"})] {
        let event = json!({"id": "e", "source": "aws.securityhub", "detail-type": "Security Hub Findings - Imported",
            "time": "2024-01-02T03:04:05Z", "detail": {"findings": findings}});
        let events = stored(decode(event.clone(), "e"));
        assert_eq!(events.len(), 1);
        assert_eq!((events[0].kind, events[0].occurred_at), (EventKind::Alert, at("2024-01-02T03:04:05Z")));
        assert_eq!(events[0].payload, event);
    }
    let no_detail = json!({"source": "aws.securityhub", "detail-type": "Findings Imported V2", "detail": "text"});
    assert_eq!(stored(decode(no_detail.clone(), "e"))[0].payload, no_detail);
}

#[test]
fn ocsf_findings_take_their_modified_time() {
    let event = |finding: Value| {
        json!({"id": "v2", "source": "aws.securityhub", "detail-type": "Findings Imported V2",
            "time": "2025-06-01T00:00:00Z", "detail": {"findings": [finding]}})
    };
    let cases = [
        (
            json!({"finding_info": {"modified_time_dt": "2025-05-01T10:00:00.123Z", "modified_time": 1}, "time": 2}),
            "2025-05-01T10:00:00.123Z",
        ),
        (json!({"finding_info": {"modified_time": 1_746_093_600_000_i64}, "time_dt": "2020-01-01T00:00:00Z"}), "2025-05-01T10:00:00Z"),
        (json!({"time_dt": "2025-05-02T00:00:00+02:00", "time": 1}), "2025-05-01T22:00:00Z"),
        (json!({"time": 1_746_093_600_000_i64}), "2025-05-01T10:00:00Z"),
        (json!({"finding_info": {"modified_time_dt": "yesterday"}}), "2025-06-01T00:00:00Z"),
    ];
    for (finding, expected) in cases {
        let events = stored(decode(event(finding.clone()), "v2"));
        assert_eq!((events[0].kind, events[0].occurred_at), (EventKind::Alert, at(expected)), "{finding}");
    }
}

#[test]
fn kinds_follow_source_and_detail_type() {
    let cases = [
        ("aws.inspector2", "Inspector2 Finding", EventKind::Alert),
        ("aws.macie", "Macie Finding", EventKind::Alert),
        ("aws.access-analyzer", "Unused Access Finding for IAM entities", EventKind::Alert),
        ("aws.inspector2", "Inspector2 Scan", EventKind::Telemetry),
        ("aws.securityhub", "Security Hub Insight Results", EventKind::Telemetry),
        ("aws.ec2", "EC2 Instance State-change Notification", EventKind::Telemetry),
        ("acme.scanner", "Acme Finding", EventKind::Telemetry),
    ];
    for (source, detail_type, kind) in cases {
        let event = json!({"id": "1", "source": source, "detail-type": detail_type, "time": "2024-05-06T07:08:09Z",
            "detail": {"updatedAt": "2024-05-01T00:00:00Z"}});
        let events = stored(decode(event, "k"));
        assert_eq!(events[0].kind, kind, "{source} {detail_type}");
        // A finding's own update time wins; other events happen at the event's time.
        let expected = if kind == EventKind::Alert { "2024-05-01T00:00:00Z" } else { "2024-05-06T07:08:09Z" };
        assert_eq!(events[0].occurred_at, at(expected), "{source} {detail_type}");
    }
}

#[test]
fn bad_times_are_none_never_a_refusal() {
    for time in [json!("not a time"), json!(12), json!(null), json!("2024-13-45T00:00:00Z"), json!(u64::MAX)] {
        let event = json!({"source": "aws.guardduty", "detail-type": "GuardDuty Finding", "time": time, "detail": {"updatedAt": time}});
        let events = stored(decode(event, "t"));
        assert_eq!(events[0].occurred_at, None, "{time}");
    }
    assert_eq!(parse_time("2020-01-01T00:00:00Z"), at("2020-01-01T00:00:00Z"));
    assert_eq!(parse_time("2020-01-01T00:00:00.000Z"), at("2020-01-01T00:00:00Z"));
    assert_eq!(parse_time(" 2020-01-01t01:00:00+01:00 "), at("2020-01-01T00:00:00Z"));
    assert_eq!(read_time(&json!(i64::MAX), TimeFormat::EpochMillis), None);
    assert_eq!(read_time(&json!(1.5), TimeFormat::EpochMillis), None);
    assert_eq!(read_time(&json!("2020-01-01T00:00:00Z"), TimeFormat::EpochMillis), None);
    assert_eq!(read_time(&json!(0), TimeFormat::Rfc3339), None);
}

#[test]
fn findings_of_any_shape_never_panic() {
    let event = json!({"source": "aws.securityhub", "detail-type": "Security Hub Findings - Imported",
        "detail": {"findings": [7, "text", null, {"UpdatedAt": 3}]}});
    let events = stored(decode(event, "odd"));
    assert_eq!(events.len(), 4);
    assert_eq!(events[1].payload["detail"]["findings"], json!(["text"]));
    assert!(events.iter().all(|e| e.occurred_at.is_none()));
}

#[test]
fn anything_but_an_object_is_one_telemetry_event() {
    for value in [json!([1, 2]), json!(3), json!("text"), Value::Null] {
        let events = stored(decode(value.clone(), "n"));
        assert_eq!(events, vec![NewEvent { dedupe_key: "n".into(), kind: EventKind::Telemetry, occurred_at: None, payload: value }]);
    }
}

#[test]
fn sns_messages_are_events_or_json_values_and_text_is_not_decoded() {
    assert_eq!(decode_message(SCHEDULED, "m").unwrap(), Decoded::Heartbeat { time: Some("2015-10-08T16:53:06Z".parse().unwrap()) });
    let finding = stored(decode_message(CIS_1_3, "m-1").unwrap());
    assert_eq!((finding.len(), finding[0].kind, finding[0].dedupe_key.as_str()), (1, EventKind::Alert, "m-1"));
    for (message, payload) in [("[1, 2]", json!([1, 2])), ("\"quoted\"", json!("quoted")), ("42", json!(42))] {
        let events = stored(decode_message(message, "m-2").unwrap());
        assert_eq!(events, vec![NewEvent { dedupe_key: "m-2".into(), kind: EventKind::Telemetry, occurred_at: None, payload }]);
    }
    assert!(decode_message("plain text", "m-3").is_err(), "text is kept raw by the SNS sender");
}
