use http::{HeaderName, HeaderValue};
use proptest::prelude::*;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::*;
use crate::sources::RejectClass;

const COMPLEX: &str =
    include_str!("../../../../tests/fixtures/gcp-pubsub/push/google-cloudevents_example_MessagePublishedData-complex.json");
const BINARY: &str =
    include_str!("../../../../tests/fixtures/gcp-pubsub/push/google-cloudevents_testdata_v1_MessagePublishedData-binary.json");
const DUPLICATED: &str =
    include_str!("../../../../tests/fixtures/gcp-pubsub/push/google-cloudevents_testdata_v1_MessagePublishedData-duplicatedFields.json");
const TEXT: &str = include_str!("../../../../tests/fixtures/gcp-pubsub/push/google-cloudevents_testdata_v1_MessagePublishedData-text.json");
const STRUCTURED_CLOUDEVENT: &str =
    include_str!("../../../../tests/fixtures/gcp-pubsub/push/google-cloudevents_cloudevent-structured_MessagePublishedData.json");

const VECTOR_PUBLISH_TIME: &str = "2021-02-05T04:06:14.109Z";

fn read(body: &[u8]) -> Result<PushMessage, Rejected> {
    PushMessage::from_request(&HeaderMap::new(), body)
}

fn read_json(body: Value) -> Result<PushMessage, Rejected> {
    read(body.to_string().as_bytes())
}

fn headers(pairs: &[(&str, &[u8])]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_bytes(value).unwrap());
    }
    map
}

fn at(text: &str) -> Option<DateTime<Utc>> {
    Some(DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc))
}

fn sha256_id(body: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(body)))
}

/// The reason of a refusal, checking it is the undecodable kind.
fn refusal(result: Result<PushMessage, Rejected>) -> &'static str {
    let rejected = result.expect_err("expected a refusal");
    assert_eq!(rejected.class, RejectClass::Undecodable, "{rejected}");
    rejected.reason
}

fn attributes(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// The dedupe key a refusal names for its raw event, if any.
fn kept_key(result: Result<PushMessage, Rejected>) -> Option<String> {
    result.expect_err("expected a refusal").kept.and_then(|kept| kept.dedupe_key)
}

#[test]
fn a_refused_envelope_names_its_message_id_when_one_still_reads() {
    let bad_data = json!({"message": {"data": "%%%", "messageId": "m-1"}, "subscription": "s"});
    assert_eq!(kept_key(read_json(bad_data)), Some("m-1".into()));
    let snake = json!({"message": {"attributes": [1], "message_id": "m-2"}, "subscription": "s"});
    assert_eq!(kept_key(read_json(snake)), Some("m-2".into()));
    let agreeing = json!({"message": {"data": 7, "messageId": "m-3", "message_id": "m-3"}});
    assert_eq!(kept_key(read_json(agreeing)), Some("m-3".into()));
    // Two ids that disagree, or none: the raw event is keyed by the body's hash.
    assert_eq!(kept_key(read_json(json!({"message": {"data": "e30=", "messageId": "a", "message_id": "b"}}))), None);
    assert_eq!(kept_key(read_json(json!({"message": {"data": "e30="}, "subscription": "s"}))), None);
    // Unwrapped: the message id header, when it is given once.
    let conflicting_time: &[(&str, &[u8])] =
        &[("x-goog-pubsub-message-id", b"u-1"), ("x-goog-pubsub-publish-time", b"a"), ("x-goog-pubsub-publish-time", b"b")];
    assert_eq!(kept_key(PushMessage::from_request(&headers(conflicting_time), b"data")), Some("u-1".into()));
    let twice: &[(&str, &[u8])] = &[("x-goog-pubsub-message-id", b"u-1"), ("x-goog-pubsub-message-id", b"u-2")];
    assert_eq!(kept_key(PushMessage::from_request(&headers(twice), b"data")), None);
}

#[test]
fn the_push_vectors_read_as_wrapped_messages() {
    let text_data = b"test message 3".to_vec();
    let cases = [
        (
            "complex",
            COMPLEX,
            "projects/test-project/subscriptions/my-subscription",
            Some("ordering-key"),
            attributes(&[("attr1", "attr1-value")]),
            text_data.clone(),
        ),
        ("binary", BINARY, "projects/my-project/subscriptions/my-subscription", None, attributes(&[]), vec![1, 2, 3, 4]),
        ("duplicated", DUPLICATED, "projects/my-project/subscriptions/my-subscription", None, attributes(&[]), vec![1, 2, 3, 4]),
        ("text", TEXT, "projects/my-project/subscriptions/my-subscription", None, attributes(&[("attr1", "attr1-value")]), text_data),
    ];
    for (name, body, subscription, ordering_key, expected_attributes, data) in cases {
        let message = read(body.as_bytes()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            message,
            PushMessage {
                message_id: "message-id".into(),
                subscription: Some(subscription.into()),
                publish_time: at(VECTOR_PUBLISH_TIME),
                publish_time_text: Some(VECTOR_PUBLISH_TIME.into()),
                ordering_key: ordering_key.map(Into::into),
                delivery_attempt: None,
                attributes: expected_attributes,
                data,
            },
            "{name}"
        );
        assert!(!message.is_heartbeat(), "{name}");
    }
}

#[test]
fn a_structured_cloudevent_is_not_a_push_envelope_but_unwrapped_data() {
    // Eventarc's form nests the envelope under `data`: no top-level `message`, so it is
    // what an unwrapped subscription would deliver, kept whole.
    let message = read(STRUCTURED_CLOUDEVENT.as_bytes()).unwrap();
    assert_eq!(message.data, STRUCTURED_CLOUDEVENT.as_bytes());
    assert_eq!(message.message_id, sha256_id(STRUCTURED_CLOUDEVENT.as_bytes()));
    assert_eq!((message.subscription, message.publish_time, message.ordering_key), (None, None, None));
    assert!(message.attributes.is_empty());
}

#[test]
fn either_spelling_names_the_id_and_publish_time() {
    let snake = json!({"subscription": "projects/p/subscriptions/s",
        "message": {"data": "aGk=", "message_id": "42", "publish_time": "2024-01-02T03:04:05.123456789Z"}});
    let message = read_json(snake).unwrap();
    assert_eq!(message.message_id, "42");
    assert_eq!(message.publish_time, at("2024-01-02T03:04:05.123456789Z"));
    assert_eq!(message.publish_time_text.as_deref(), Some("2024-01-02T03:04:05.123456789Z"));
    assert_eq!(message.data, b"hi");

    let camel_only = json!({"subscription": "s", "message": {"messageId": "7", "orderingKey": "k"}, "deliveryAttempt": 3});
    let message = read_json(camel_only).unwrap();
    assert_eq!((message.message_id.as_str(), message.ordering_key.as_deref(), message.delivery_attempt), ("7", Some("k"), Some(3)));
    assert!(message.data.is_empty(), "no data is empty data");
}

#[test]
fn spellings_that_disagree_are_refused() {
    for message in [
        json!({"messageId": "1", "message_id": "2"}),
        json!({"messageId": "1", "publishTime": "2021-02-05T04:06:14.109Z", "publish_time": "2021-02-05T04:06:15Z"}),
        json!({"messageId": "1", "orderingKey": "a", "ordering_key": "b"}),
    ] {
        let body = json!({"subscription": "projects/p/subscriptions/s", "message": message});
        assert_eq!(refusal(read_json(body.clone())), "pubsub_conflicting_fields", "{body}");
    }
    // Agreeing spellings, or one of them null, are fine.
    let body = json!({"subscription": "s", "message": {"messageId": "1", "message_id": "1", "publish_time": null}});
    assert_eq!(read_json(body).unwrap().message_id, "1");
}

#[test]
fn a_wrapped_message_needs_an_id() {
    for message in [json!({"data": "aGk="}), json!({"data": "aGk=", "messageId": ""}), json!({"messageId": null, "attributes": {}})] {
        let body = json!({"subscription": "projects/p/subscriptions/s", "message": message});
        assert_eq!(refusal(read_json(body.clone())), "pubsub_missing_message_id", "{body}");
    }
}

#[test]
fn data_must_be_base64_text() {
    let with_data = |data: Value| json!({"subscription": "s", "message": {"messageId": "1", "data": data}});
    for bad in [json!("not base64!"), json!("AQID*"), json!(12), json!({"base64": "AQID"}), json!(["AQID"])] {
        assert_eq!(refusal(read_json(with_data(bad.clone()))), "pubsub_invalid_data", "{bad}");
    }
    // Standard base64 as Pub/Sub writes it, and the URL-safe alphabet, padded or not.
    for (text, bytes) in
        [("+/8=", vec![0xfb, 0xff]), ("+/8", vec![0xfb, 0xff]), ("-_8=", vec![0xfb, 0xff]), ("-_8", vec![0xfb, 0xff]), ("", vec![])]
    {
        assert_eq!(read_json(with_data(json!(text))).unwrap().data, bytes, "{text}");
    }
}

#[test]
fn attributes_must_be_an_object_of_strings() {
    let with_attributes = |attributes: Value| json!({"subscription": "s", "message": {"messageId": "1", "attributes": attributes}});
    for bad in [
        json!({"n": 1}),
        json!({"ok": "yes", "flag": true}),
        json!({"nested": {"a": "b"}}),
        json!({"gone": null}),
        json!(["a"]),
        json!("a=b"),
    ] {
        assert_eq!(refusal(read_json(with_attributes(bad.clone()))), "pubsub_invalid_attributes", "{bad}");
    }
    let message = read_json(with_attributes(json!({"b": "2", "a": ""}))).unwrap();
    assert_eq!(message.attributes, attributes(&[("a", ""), ("b", "2")]));
}

#[test]
fn a_wrapped_body_that_is_not_a_message_is_refused() {
    for body in [
        json!({"subscription": "projects/p/subscriptions/s", "message": "hello"}),
        json!({"subscription": "projects/p/subscriptions/s", "message": ["a"]}),
        json!({"subscription": "projects/p/subscriptions/s", "message": null}),
    ] {
        assert_eq!(refusal(read_json(body.clone())), "pubsub_invalid_envelope", "{body}");
    }
}

#[test]
fn fields_of_the_wrong_type_are_refused() {
    for body in [
        json!({"subscription": 5, "message": {"messageId": "1"}}),
        json!({"subscription": "s", "message": {"messageId": 1}}),
        json!({"subscription": "s", "message": {"messageId": "1", "publishTime": 1_612_497_974}}),
        json!({"subscription": "s", "message": {"messageId": "1", "orderingKey": ["k"]}}),
        json!({"subscription": "s", "message": {"messageId": "1"}, "deliveryAttempt": "3"}),
        json!({"subscription": "s", "message": {"messageId": "1"}, "deliveryAttempt": 1.5}),
    ] {
        assert_eq!(refusal(read_json(body.clone())), "pubsub_invalid_envelope", "{body}");
    }
}

#[test]
fn an_unreadable_publish_time_is_kept_as_text() {
    let body = json!({"subscription": "s", "message": {"messageId": "1", "publishTime": "yesterday"}});
    let message = read_json(body).unwrap();
    assert_eq!((message.publish_time, message.publish_time_text.as_deref()), (None, Some("yesterday")));
}

#[test]
fn wrapped_or_unwrapped_follows_the_shape_of_the_body() {
    // A `message` object that holds a Pub/Sub message member is wrapped even without
    // `subscription` (what hand-made test pushes often send).
    let no_subscription = json!({"message": {"messageId": "9", "data": "aGk="}});
    let message = read_json(no_subscription).unwrap();
    assert_eq!((message.message_id.as_str(), message.subscription.as_deref(), message.data.as_slice()), ("9", None, &b"hi"[..]));
    // Everything else is data, kept byte for byte.
    for body in [
        json!({"message": "a log line"}),
        json!({"message": {"text": "hello"}}),
        json!({"subscription": "mine", "data": "aGk="}),
        json!(["message", "subscription"]),
        json!("message"),
    ] {
        let bytes = body.to_string().into_bytes();
        let message = read(&bytes).unwrap();
        assert_eq!((&message.data, &message.message_id), (&bytes, &sha256_id(&bytes)), "{body}");
    }
    for bytes in [&b""[..], b"plain text", b"{\"message\": ", &[0xff, 0xfe, 0x00]] {
        assert_eq!(read(bytes).unwrap().data, bytes);
    }
}

#[test]
fn an_unwrapped_push_with_metadata_takes_it_from_the_headers() {
    let body = br#"{"status": "Hello there"}"#;
    let request_headers = headers(&[
        ("authorization", b"Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln"),
        ("content-type", b"application/json"),
        ("content-length", b"25"),
        ("user-agent", b"APIs-Google; (+https://developers.google.com/webmasters/APIs-Google.html)"),
        ("from", b"noreply@google.com"),
        ("x-forwarded-for", b"203.0.113.9"),
        ("x-cloud-trace-context", b"105445aa7843bc8bf206b120001000/1;o=1"),
        ("x-goog-pubsub-message-id", b"2070443601311540"),
        ("x-goog-pubsub-subscription-name", b"projects/my-project/subscriptions/my-subscription"),
        ("x-goog-pubsub-publish-time", b"2021-02-26T19:13:55.749Z"),
        ("x-goog-pubsub-ordering-key", b"some-key"),
        ("pushgate_kind", b"heartbeat"),
        ("Region", b"eu"),
        ("team", b"blue"),
        ("team", b"red"),
    ]);
    let message = PushMessage::from_request(&request_headers, body).unwrap();
    assert_eq!(
        message,
        PushMessage {
            message_id: "2070443601311540".into(),
            subscription: Some("projects/my-project/subscriptions/my-subscription".into()),
            publish_time: at("2021-02-26T19:13:55.749Z"),
            publish_time_text: Some("2021-02-26T19:13:55.749Z".into()),
            ordering_key: Some("some-key".into()),
            delivery_attempt: None,
            // Transport headers and the token are not attributes; names come lower case.
            attributes: attributes(&[("pushgate_kind", "heartbeat"), ("region", "eu"), ("team", "blue, red")]),
            data: body.to_vec(),
        }
    );
    assert!(message.is_heartbeat());
}

#[test]
fn an_unwrapped_push_without_metadata_is_keyed_by_its_body() {
    let body = b"raw bytes \x00\x01";
    // Without write-metadata the other headers are transport only: no attributes.
    let request_headers = headers(&[("authorization", b"Bearer t"), ("pushgate_kind", b"heartbeat"), ("x-custom", b"1")]);
    let message = PushMessage::from_request(&request_headers, body).unwrap();
    assert_eq!(message.message_id, sha256_id(body));
    assert!(message.message_id.starts_with("sha256:") && message.message_id.len() == 7 + 64);
    assert!(message.attributes.is_empty());
    assert!(!message.is_heartbeat());
    assert_eq!((message.subscription, message.publish_time_text), (None, None));
    // A redelivery keeps its key; other bytes get another.
    assert_eq!(read(body).unwrap().message_id, message.message_id);
    assert_ne!(read(b"raw bytes").unwrap().message_id, message.message_id);
    // The other metadata headers alone do not make an id.
    let partial = headers(&[("x-goog-pubsub-subscription-name", b"projects/p/subscriptions/s")]);
    let message = PushMessage::from_request(&partial, body).unwrap();
    assert_eq!((message.message_id, message.subscription.as_deref()), (sha256_id(body), Some("projects/p/subscriptions/s")));
}

#[test]
fn unwrapped_headers_that_cannot_be_read_are_refused() {
    let id: (&str, &[u8]) = ("x-goog-pubsub-message-id", b"1");
    assert_eq!(refusal(PushMessage::from_request(&headers(&[id, ("color", b"r\xe9d")]), b"x")), "pubsub_invalid_attributes");
    assert_eq!(refusal(PushMessage::from_request(&headers(&[("x-goog-pubsub-message-id", b"\xff1")]), b"x")), "pubsub_invalid_envelope");
    let twice = headers(&[id, ("x-goog-pubsub-message-id", b"2")]);
    assert_eq!(refusal(PushMessage::from_request(&twice, b"x")), "pubsub_conflicting_fields");
    // A transport header that is not UTF-8 is not read at all.
    let message = PushMessage::from_request(&headers(&[id, ("user-agent", b"\xff")]), b"x").unwrap();
    assert!(message.attributes.is_empty());
}

#[test]
fn only_the_heartbeat_attribute_makes_a_heartbeat() {
    let with_attributes = |attributes: Value| json!({"subscription": "s", "message": {"messageId": "1", "attributes": attributes}});
    assert!(read_json(with_attributes(json!({"pushgate_kind": "heartbeat", "other": "x"}))).unwrap().is_heartbeat());
    for not_one in [json!({}), json!({"pushgate_kind": "Heartbeat"}), json!({"pushgate_kind": "event"}), json!({"kind": "heartbeat"})] {
        assert!(!read_json(with_attributes(not_one.clone())).unwrap().is_heartbeat(), "{not_one}");
    }
}

proptest! {
    #[test]
    fn any_body_reads_or_is_refused_as_undecodable(body in prop::collection::vec(any::<u8>(), 0..256)) {
        match read(&body) {
            Ok(message) => prop_assert!(!message.message_id.is_empty()),
            Err(rejected) => prop_assert_eq!(rejected.class, RejectClass::Undecodable),
        }
    }

    #[test]
    fn any_wrapped_data_text_reads_or_is_refused(data in ".{0,40}", id in "[0-9a-z]{0,4}") {
        let body = json!({"subscription": "s", "message": {"messageId": id, "data": data}});
        match read_json(body) {
            Ok(message) => prop_assert_eq!(message.message_id, id),
            Err(rejected) => prop_assert!(["pubsub_invalid_data", "pubsub_missing_message_id"].contains(&rejected.reason)),
        }
    }
}
