use std::collections::BTreeMap;

use http::HeaderMap;
use serde_json::json;

use super::*;

const SCC: [(&str, &str); 6] = [
    ("audit_logging_disabled", include_str!("../../../../tests/fixtures/gcp-pubsub/scc/sra_audit_logging_disabled.json")),
    ("bad_ip_scc", include_str!("../../../../tests/fixtures/gcp-pubsub/scc/sra_bad_ip_scc.json")),
    ("non_org_iam_member", include_str!("../../../../tests/fixtures/gcp-pubsub/scc/sra_non_org_iam_member.json")),
    ("open_firewall-remediated", include_str!("../../../../tests/fixtures/gcp-pubsub/scc/sra_open_firewall-remediated.json")),
    ("public_bucket_acl", include_str!("../../../../tests/fixtures/gcp-pubsub/scc/sra_public_bucket_acl.json")),
    ("public_dataset", include_str!("../../../../tests/fixtures/gcp-pubsub/scc/sra_public_dataset.json")),
];
const WORKSPACE_ALERT: &str = include_str!("../../../../tests/fixtures/gcp-pubsub/workspace/derived_alertcenter_suspicious-login.json");
const TEXT_PUSH: &str =
    include_str!("../../../../tests/fixtures/gcp-pubsub/push/google-cloudevents_testdata_v1_MessagePublishedData-text.json");
const BINARY_PUSH: &str =
    include_str!("../../../../tests/fixtures/gcp-pubsub/push/google-cloudevents_testdata_v1_MessagePublishedData-binary.json");
const COMPLEX_PUSH: &str =
    include_str!("../../../../tests/fixtures/gcp-pubsub/push/google-cloudevents_example_MessagePublishedData-complex.json");
const STRUCTURED_CLOUDEVENT: &str =
    include_str!("../../../../tests/fixtures/gcp-pubsub/push/google-cloudevents_cloudevent-structured_MessagePublishedData.json");

const PUBLISH_TIME: &str = "2024-05-06T07:08:09.123456789Z";

/// A wrapped push body as Pub/Sub sends it, holding `data` in base64.
fn push_body(data: &[u8], attributes: Value) -> Vec<u8> {
    json!({
        "message": {
            "attributes": attributes,
            "data": STANDARD.encode(data),
            "messageId": "11223344556677",
            "message_id": "11223344556677",
            "publishTime": PUBLISH_TIME,
            "publish_time": PUBLISH_TIME,
        },
        "subscription": "projects/sec-project/subscriptions/findings-push",
        "deliveryAttempt": 2,
    })
    .to_string()
    .into_bytes()
}

fn message_of(body: &[u8]) -> PushMessage {
    PushMessage::from_request(&HeaderMap::new(), body).unwrap()
}

fn decode_data(data: &[u8], attributes: Value) -> DecodedMessage {
    decode(&message_of(&push_body(data, attributes)))
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

fn at(text: &str) -> Option<DateTime<Utc>> {
    Some(DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc))
}

/// The `_pubsub` member `push_body` makes.
fn pushed_metadata(attributes: Value) -> Value {
    json!({
        "message_id": "11223344556677",
        "publish_time": PUBLISH_TIME,
        "attributes": attributes,
        "ordering_key": null,
        "delivery_attempt": 2,
        "subscription": "projects/sec-project/subscriptions/findings-push",
    })
}

#[test]
fn each_scc_notification_is_an_alert_at_its_finding_event_time() {
    for (name, text) in SCC {
        let notification = parse(text);
        let decoded = decode_data(text.as_bytes(), json!({}));
        assert_eq!(decoded.stream_hint, Some(SCC_STREAM), "{name}");
        let event = &decoded.event;
        assert_eq!((event.kind, event.dedupe_key.as_str()), (EventKind::Alert, "11223344556677"), "{name}");
        let event_time = notification["finding"]["eventTime"].as_str().unwrap();
        assert_eq!(event.occurred_at, at(event_time), "{name}");
        // The payload is the notification as Google wrote it, plus the Pub/Sub metadata.
        let mut expected = notification.clone();
        expected["_pubsub"] = pushed_metadata(json!({}));
        assert_eq!(event.payload, expected, "{name}");
        assert_eq!(event.payload["finding"], notification["finding"], "{name}");
        assert_eq!(event.payload.get("notificationConfigName"), notification.get("notificationConfigName"), "{name}");
        // Never the transport's base64.
        assert!(!event.payload.to_string().contains(&STANDARD.encode(text.as_bytes())), "{name}");
    }
}

#[test]
fn an_scc_finding_without_an_event_time_takes_its_creation_then_the_publish_time() {
    let mut notification = parse(SCC[1].1);
    notification["finding"]["eventTime"] = json!("not a time");
    let decoded = decode_data(notification.to_string().as_bytes(), json!({}));
    assert_eq!(decoded.event.occurred_at, at("2019-11-22T18:34:36.688Z"));

    notification["finding"].as_object_mut().unwrap().remove("createTime");
    let decoded = decode_data(notification.to_string().as_bytes(), json!({}));
    assert_eq!((decoded.event.kind, decoded.event.occurred_at), (EventKind::Alert, at(PUBLISH_TIME)));
    assert_eq!(decoded.stream_hint, Some(SCC_STREAM));
}

#[test]
fn a_finding_that_is_not_an_object_is_not_an_scc_notification() {
    let decoded = decode_data(br#"{"finding": "none", "time": "2024-01-01T00:00:00Z"}"#, json!({}));
    assert_eq!((decoded.event.kind, decoded.stream_hint), (EventKind::Telemetry, None));
    assert_eq!(decoded.event.occurred_at, at("2024-01-01T00:00:00Z"));
}

#[test]
fn a_workspace_alert_is_an_alert_at_its_start_time() {
    let alert = parse(WORKSPACE_ALERT);
    let announced = json!({
        "alertcenter_resource_type": "ALERT",
        "alertcenter_resource_status": "CREATED",
        "alertcenter_payload_format": "JSON",
        "alertcenter_type": "Suspicious login",
        "alertcenter_source": "Google identity",
        "alertcenter_start_time": "2024-03-04T10:12:07Z",
        "alertcenter_create_time": "2024-03-04T10:15:32.418Z",
    });
    // As Alert Center publishes it, and republished without its attributes.
    for attributes in [announced, json!({})] {
        let decoded = decode_data(WORKSPACE_ALERT.as_bytes(), attributes.clone());
        assert_eq!(decoded.stream_hint, Some(WORKSPACE_ALERT_STREAM), "{attributes}");
        let event = &decoded.event;
        assert_eq!((event.kind, event.occurred_at), (EventKind::Alert, at("2024-03-04T10:12:07.000Z")), "{attributes}");
        let mut expected = alert.clone();
        expected["_pubsub"] = pushed_metadata(attributes.clone());
        assert_eq!(event.payload, expected, "{attributes}");
        assert_eq!(event.payload["data"]["loginDetails"]["ipAddress"], "203.0.113.7");
    }
}

#[test]
fn a_workspace_alert_without_times_falls_back_in_order() {
    let mut alert = parse(WORKSPACE_ALERT);
    alert.as_object_mut().unwrap().remove("startTime");
    let decoded = decode_data(alert.to_string().as_bytes(), json!({}));
    assert_eq!(decoded.event.occurred_at, at("2024-03-04T10:15:32.418Z"));

    alert.as_object_mut().unwrap().remove("createTime");
    let attributes = json!({"alertcenter_start_time": "2024-03-04T09:00:00Z", "alertcenter_create_time": "2024-03-04T09:30:00Z"});
    assert_eq!(decode_data(alert.to_string().as_bytes(), attributes).event.occurred_at, at("2024-03-04T09:00:00Z"));
    let attributes = json!({"alertcenter_create_time": "2024-03-04T09:30:00Z"});
    assert_eq!(decode_data(alert.to_string().as_bytes(), attributes).event.occurred_at, at("2024-03-04T09:30:00Z"));
    assert_eq!(decode_data(alert.to_string().as_bytes(), json!({})).event.occurred_at, at(PUBLISH_TIME));
}

#[test]
fn alert_center_attributes_make_an_alert_of_any_data() {
    let attributes = json!({"alertcenter_resource_type": "ALERT", "alertcenter_start_time": "2024-03-04T09:00:00Z"});
    let decoded = decode_data(b"", attributes.clone());
    assert_eq!((decoded.event.kind, decoded.stream_hint), (EventKind::Alert, Some(WORKSPACE_ALERT_STREAM)));
    assert_eq!(decoded.event.occurred_at, at("2024-03-04T09:00:00Z"));
    assert_eq!(decoded.event.payload, json!({"data": "", "_pubsub": pushed_metadata(attributes)}));
}

#[test]
fn a_partial_alert_shape_is_telemetry() {
    for data in [
        json!({"alertId": "a", "customerId": "c"}),
        json!({"alertId": "a", "customerId": "c", "type": 3}),
        json!({"alertId": "a", "type": "Suspicious login"}),
    ] {
        let decoded = decode_data(data.to_string().as_bytes(), json!({"alert": "center"}));
        assert_eq!((decoded.event.kind, decoded.stream_hint), (EventKind::Telemetry, None), "{data}");
    }
}

#[test]
fn text_and_binary_push_vectors_are_telemetry_at_their_publish_time() {
    let cases = [
        (TEXT_PUSH, json!("test message 3"), json!({"attr1": "attr1-value"}), Value::Null),
        (BINARY_PUSH, json!({"base64": "AQIDBA=="}), json!({}), Value::Null),
        (COMPLEX_PUSH, json!("test message 3"), json!({"attr1": "attr1-value"}), json!("ordering-key")),
    ];
    for (body, data, attributes, ordering_key) in cases {
        let decoded = decode(&message_of(body.as_bytes()));
        assert_eq!(decoded.stream_hint, None);
        let event = decoded.event;
        assert_eq!((event.kind, event.dedupe_key.as_str()), (EventKind::Telemetry, "message-id"));
        assert_eq!(event.occurred_at, at("2021-02-05T04:06:14.109Z"));
        let subscription = parse(body)["subscription"].clone();
        let metadata = json!({"message_id": "message-id", "publish_time": "2021-02-05T04:06:14.109Z", "attributes": attributes,
            "ordering_key": ordering_key, "delivery_attempt": null, "subscription": subscription});
        assert_eq!(event.payload, json!({"data": data, "_pubsub": metadata}));
    }
}

#[test]
fn data_is_json_then_clean_text_then_base64() {
    let cases: [(&[u8], Value); 7] = [
        (b"[1, 2]", json!([1, 2])),
        (b"42", json!(42)),
        (b"\"quoted\"", json!("quoted")),
        (b"line one\n\tline two\r\n", json!("line one\n\tline two\r\n")),
        ("caf\u{e9} \u{1F600}".as_bytes(), json!("caf\u{e9} \u{1F600}")),
        (b"nul \x00 inside", json!({"base64": STANDARD.encode(b"nul \x00 inside")})),
        (&[0xff, 0xd8, 0xff, 0xe0], json!({"base64": "/9j/4A=="})),
    ];
    for (data, expected) in cases {
        let event = decode_data(data, json!({})).event;
        assert_eq!((event.kind, event.occurred_at), (EventKind::Telemetry, at(PUBLISH_TIME)), "{expected}");
        assert_eq!(event.payload, json!({"data": expected, "_pubsub": pushed_metadata(json!({}))}));
    }
}

#[test]
fn other_json_objects_are_telemetry_at_their_own_time() {
    let cases = [
        (json!({"eventTime": "2024-01-01T00:00:01Z", "time": "2024-01-01T00:00:02Z"}), at("2024-01-01T00:00:01Z")),
        (json!({"time": "2024-01-01T00:00:02+02:00", "timestamp": "2024-01-01T00:00:03Z"}), at("2024-01-01T00:00:02+02:00")),
        (json!({"timestamp": "2024-01-01T00:00:03.5Z"}), at("2024-01-01T00:00:03.5Z")),
        (json!({"eventTime": "soon", "timestamp": "2024-01-01T00:00:03Z"}), at("2024-01-01T00:00:03Z")),
        (json!({"time": 1_704_067_200, "nested": {"time": "2024-01-01T00:00:00Z"}}), at(PUBLISH_TIME)),
    ];
    for (data, occurred_at) in cases {
        let decoded = decode_data(data.to_string().as_bytes(), json!({"source": "app"}));
        assert_eq!(
            (decoded.event.kind, decoded.event.occurred_at, decoded.stream_hint),
            (EventKind::Telemetry, occurred_at, None),
            "{data}"
        );
        let mut expected = data.clone();
        expected["_pubsub"] = pushed_metadata(json!({"source": "app"}));
        assert_eq!(decoded.event.payload, expected);
    }
}

#[test]
fn a_data_object_that_already_holds_the_reserved_key_is_nested_whole() {
    let data = json!({"_pubsub": "mine", "finding": {"eventTime": "2024-02-02T00:00:00Z"}});
    let decoded = decode_data(data.to_string().as_bytes(), json!({}));
    assert_eq!(decoded.event.payload, json!({"data": data, "_pubsub": pushed_metadata(json!({}))}));
    // Still recognised by its content.
    assert_eq!((decoded.event.kind, decoded.stream_hint), (EventKind::Alert, Some(SCC_STREAM)));
    assert_eq!(decoded.event.occurred_at, at("2024-02-02T00:00:00Z"));
}

#[test]
fn a_structured_cloudevent_pushed_unwrapped_is_telemetry_at_its_time() {
    let message = message_of(STRUCTURED_CLOUDEVENT.as_bytes());
    let decoded = decode(&message);
    assert_eq!((decoded.event.kind, decoded.stream_hint), (EventKind::Telemetry, None));
    assert_eq!(decoded.event.occurred_at, at("2021-02-05T04:06:14.109Z"));
    assert_eq!(decoded.event.dedupe_key, message.message_id);
    let mut expected = parse(STRUCTURED_CLOUDEVENT);
    expected["_pubsub"] = json!({"message_id": message.message_id, "publish_time": null, "attributes": {},
        "ordering_key": null, "delivery_attempt": null, "subscription": null});
    assert_eq!(decoded.event.payload, expected);
}

#[test]
fn an_unwrapped_scc_notification_with_metadata_headers_decodes_the_same() {
    let (_, text) = SCC[3];
    let mut headers = HeaderMap::new();
    headers.insert("x-goog-pubsub-message-id", "998877".parse().unwrap());
    headers.insert("x-goog-pubsub-subscription-name", "projects/p/subscriptions/s".parse().unwrap());
    headers.insert("x-goog-pubsub-publish-time", "2021-06-01T14:57:40Z".parse().unwrap());
    headers.insert("environment", "prod".parse().unwrap());
    let decoded = decode(&PushMessage::from_request(&headers, text.as_bytes()).unwrap());
    assert_eq!((decoded.event.kind, decoded.stream_hint), (EventKind::Alert, Some(SCC_STREAM)));
    assert_eq!((decoded.event.dedupe_key.as_str(), decoded.event.occurred_at), ("998877", at("2021-06-01T14:57:33.426Z")));
    let attributes: BTreeMap<&str, &str> = [("environment", "prod")].into();
    assert_eq!(decoded.event.payload["_pubsub"]["attributes"], json!(attributes));
    assert_eq!(decoded.event.payload["_pubsub"]["publish_time"], "2021-06-01T14:57:40Z");
    assert_eq!(decoded.event.payload["finding"], parse(text)["finding"]);
}
