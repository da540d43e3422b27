//! Property-based fuzzing of everything that parses outside input: signature headers,
//! webhook and EventBridge bodies, SNS envelopes, connection configs, admin request
//! bodies, secret masking, configuration and Graph rich notifications' encrypted
//! content. None may panic, and the security properties must hold for any input.

use http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;
use pushgate::model::SourceKind;
use pushgate::sources::aws_eventbridge::event::{self as eventbridge, Decoded};
use pushgate::sources::aws_sns::certs::CertStore;
use pushgate::sources::aws_sns::envelope::Envelope;
use pushgate::sources::ms_graph::rich::{self, DecryptionKeys};
use pushgate::sources::webhook::ndjson;
use pushgate::sources::{config_check, Intake, RawRequest, RejectClass, Senders};
use pushgate::verify::auth::{Allowed, Auth};
use serde_json::{json, Value};

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| json!(f)),
        ".{0,12}".prop_map(Value::String),
        prop_oneof![Just("***"), Just("api_key"), Just("basic"), Just("hmac_sha256"), Just("standard_webhooks"), Just("whsec_c2VjcmV0")]
            .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let keys = prop_oneof![
            Just("auth".to_string()),
            Just("type".to_string()),
            Just("secret".to_string()),
            Just("value".to_string()),
            Just("header".to_string()),
            Just("topic_arns".to_string()),
            Just("client_state".to_string()),
            Just("canary".to_string()),
            Just("password".to_string()),
            "[a-z_]{1,8}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(keys, inner, 0..5).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// JSON objects with SNS envelope keys and plausible or odd values.
fn sns_like_json() -> impl Strategy<Value = Value> {
    let keys = prop_oneof![
        Just("Type"),
        Just("MessageId"),
        Just("TopicArn"),
        Just("Subject"),
        Just("Message"),
        Just("Timestamp"),
        Just("SignatureVersion"),
        Just("Signature"),
        Just("SigningCertURL"),
        Just("SigningCertUrl"),
        Just("SubscribeURL"),
        Just("Token"),
        Just("UnsubscribeURL"),
    ];
    let values = prop_oneof![
        any_json(),
        prop_oneof![Just("Notification"), Just("SubscriptionConfirmation"), Just("UnsubscribeConfirmation"), Just("1"), Just("2")]
            .prop_map(|s| json!(s)),
        Just(json!("arn:aws:sns:us-east-1:123456789012:t")),
        Just(json!("https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc123.pem")),
        Just(json!("2026-11-23T00:00:00.000Z")),
        "[A-Za-z0-9+/=]{0,40}".prop_map(Value::String),
    ];
    prop::collection::btree_map(keys, values, 0..14).prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect()))
}

/// JSON objects with EventBridge keys, sometimes Security Hub or schedule shaped.
fn eventbridge_like_json() -> impl Strategy<Value = Value> {
    let source = prop_oneof![Just("aws.securityhub"), Just("aws.guardduty"), Just("aws.events"), Just("x")];
    let detail_type = prop_oneof![
        Just("Security Hub Findings - Imported"),
        Just("Findings Imported V2"),
        Just("GuardDuty Finding"),
        Just("Scheduled Event"),
        Just("Other"),
    ];
    (source, detail_type, any_json(), prop::collection::vec(any_json(), 0..4), any_json()).prop_map(
        |(source, detail_type, time, findings, extra)| {
            json!({"id": "e", "source": source, "detail-type": detail_type, "time": time,
                   "detail": {"findings": findings, "updatedAt": extra.clone()}, "extra": extra})
        },
    )
}

/// The Graph SDK's `encryptedContent` test vector.
fn graph_vector() -> Value {
    serde_json::from_str(include_str!("fixtures/ms-graph/encrypted-content/encryptedContent.json")).unwrap()
}

/// The vector's key, parsed once for all cases (RSA-4096 parsing is not free).
fn graph_keys() -> &'static DecryptionKeys {
    static KEYS: std::sync::OnceLock<DecryptionKeys> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| {
        let pem = include_str!("fixtures/ms-graph/encrypted-content/richnotificationsapp.key.pem");
        DecryptionKeys::from_config(&json!({"encryption_keys": [{"id": "custom-id-for-testing", "private_key_pem": pem}]})).unwrap()
    })
}

/// Values for `encryptedContent` fields: any JSON, base64 of random bytes (some of the
/// RSA-4096 modulus length, so OAEP runs, some of an HMAC's length), the vector's id.
fn graph_field_value() -> impl Strategy<Value = Value> {
    use base64::Engine;
    let b64 = |bytes: Vec<u8>| Value::String(base64::engine::general_purpose::STANDARD.encode(bytes));
    prop_oneof![
        any_json(),
        prop::collection::vec(any::<u8>(), 0..600).prop_map(b64),
        prop::collection::vec(any::<u8>(), 512).prop_map(b64),
        prop::collection::vec(any::<u8>(), 32).prop_map(b64),
        "[A-Za-z0-9+/=]{0,80}".prop_map(Value::String),
        Just(json!("custom-id-for-testing")),
    ]
}

const GRAPH_REASONS: [&str; 5] = [
    "graph_encrypted_content_malformed",
    "graph_encryption_key_unknown",
    "graph_data_key_invalid",
    "graph_data_signature_invalid",
    "graph_data_invalid",
];

/// A Graph notification-like object: the right or a wrong client state, lifecycle
/// events, tenants, and random fields.
fn graph_like_item() -> impl Strategy<Value = Value> {
    (
        prop_oneof![Just(json!("the-client-state")), Just(json!("other")), Just(Value::Null), any_json()],
        prop_oneof![Just(json!("t1")), Just(json!("T1")), Just(json!("t2")), Just(Value::Null)],
        prop_oneof![
            Just(Value::Null),
            Just(json!("reauthorizationRequired")),
            Just(json!("subscriptionRemoved")),
            Just(json!("missed")),
            any_json()
        ],
        any_json(),
        prop_oneof![
            Just(Value::Null),
            any_json(),
            Just(json!({"data": "AAAA", "dataKey": "AAAA", "dataSignature": "AAAA", "encryptionCertificateId": "k"}))
        ],
    )
        .prop_map(|(client_state, tenant, lifecycle, extra, encrypted)| {
            let mut item = json!({"subscriptionId": "s", "changeType": "created", "resource": "users/1",
                "clientState": client_state, "tenantId": tenant, "lifecycleEvent": lifecycle,
                "extra": extra, "encryptedContent": encrypted});
            item.as_object_mut().unwrap().retain(|_, v| !v.is_null());
            item
        })
}

fn no_google_keys() -> std::sync::Arc<pushgate::sources::gcp_pubsub::keys::GoogleKeys> {
    std::sync::Arc::new(pushgate::sources::gcp_pubsub::keys::GoogleKeys::offline(None))
}

fn no_microsoft_keys() -> std::sync::Arc<pushgate::sources::ms_graph::keys::MicrosoftKeys> {
    std::sync::Arc::new(pushgate::sources::ms_graph::keys::MicrosoftKeys::offline(None))
}

fn headers(pairs: &[(String, Vec<u8>)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_bytes(value)) {
            map.append(n, v);
        }
    }
    map
}

fn header_pairs() -> impl Strategy<Value = Vec<(String, Vec<u8>)>> {
    let names = prop_oneof![
        Just("webhook-id".to_string()),
        Just("webhook-timestamp".to_string()),
        Just("webhook-signature".to_string()),
        Just("x-signature".to_string()),
        Just("authorization".to_string()),
        Just("x-api-key".to_string()),
        "[a-z-]{1,10}",
    ];
    let values = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..80),
        "(v1,[A-Za-z0-9+/=]{0,50} ?){0,3}".prop_map(String::into_bytes),
        "(sha256=)?[0-9a-f]{0,70}".prop_map(String::into_bytes),
        "Basic [A-Za-z0-9+/=]{0,30}".prop_map(String::into_bytes),
        "-?[0-9]{0,20}".prop_map(String::into_bytes),
    ];
    prop::collection::vec((names, values), 0..6)
}

fn auths() -> Vec<Auth> {
    [
        json!({"auth": {"type": "api_key", "header": "X-Api-Key", "value": ["k1", "k2"]}}),
        json!({"auth": {"type": "basic", "username": "u", "password": "p"}}),
        json!({"auth": {"type": "hmac_sha256", "header": "X-Signature", "secret": "s"}}),
        json!({"auth": {"type": "standard_webhooks", "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}),
    ]
    .iter()
    .map(|c| Auth::parse(c, Allowed::WithStandardWebhooks).unwrap())
    .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Random headers and bodies are refused (never accepted, never a panic).
    #[test]
    fn forged_requests_never_verify(pairs in header_pairs(), body in prop::collection::vec(any::<u8>(), 0..300), ts in 1_600_000_000i64..1_900_000_000) {
        let map = headers(&pairs);
        let now = chrono::DateTime::from_timestamp(ts, 0).unwrap();
        for auth in auths() {
            let result = auth.check(&map, &body, now);
            prop_assert!(result.is_err(), "{auth:?} accepted a random request");
            let class = result.unwrap_err().class;
            prop_assert!(matches!(class, RejectClass::Unauthenticated | RejectClass::Malformed));
        }
    }

    /// Whatever the body, a correctly signed webhook push decodes or is kept as undecodable.
    #[test]
    fn signed_webhook_bodies_decode_or_are_undecodable(body in prop_oneof![
        prop::collection::vec(any::<u8>(), 0..400),
        any_json().prop_map(|v| v.to_string().into_bytes()),
    ]) {
        let config = json!({"auth": {"type": "hmac_sha256", "header": "X-Signature", "secret": "s"}});
        let mut map = HeaderMap::new();
        map.insert("x-signature", hex::encode(pushgate::verify::hmac_sha256(b"s", &[&body])).parse().unwrap());
        let senders = Senders::new(std::sync::Arc::new(CertStore::offline(None)), no_google_keys(), no_microsoft_keys());
        let sender = senders.get(SourceKind::Webhook);
        let config = pushgate::sources::ConnectionConfig::load(sender, config.clone());
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let request = RawRequest { headers: &map, query: None, body: &body, push_url: "http://x", now: chrono::Utc::now() };
        let decoded = runtime.block_on(sender.receive(request, &config)).expect("correctly signed");
        match decoded {
            Ok(_) => prop_assert!(serde_json::from_slice::<Value>(&body).is_ok()),
            Err(e) => prop_assert_eq!(e.class, RejectClass::Undecodable),
        }
    }

    /// Any ndjson body splits into its JSON lines and its broken ones, losing nothing: every
    /// non-blank line is exactly one of them, numbered in order, and a body of JSON lines
    /// (however separated) gives back those values.
    #[test]
    fn ndjson_splitting_keeps_every_line_once(
        body in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..400),
            prop::collection::vec((any_json(), prop_oneof![Just("\n"), Just("\r\n"), Just("\n\n  \n"), Just("\n\u{ff}{\n")]), 0..8)
                .prop_map(|lines| lines.into_iter().flat_map(|(v, sep)| format!("{v}{sep}").into_bytes()).collect()),
        ]
    ) {
        let lines = ndjson::split(&body);
        let mut numbers: Vec<usize> = lines.good.iter().map(|(n, _)| *n).chain(lines.broken.iter().map(|(n, _)| *n)).collect();
        numbers.sort_unstable();
        let expected: Vec<usize> = body
            .split(|b| *b == b'\n')
            .enumerate()
            .filter(|(_, line)| !line.iter().all(u8::is_ascii_whitespace))
            .map(|(i, _)| i + 1)
            .collect();
        prop_assert_eq!(numbers, expected, "each non-blank line once, by its number");
        prop_assert!(lines.good.windows(2).all(|w| w[0].0 < w[1].0) && lines.broken.windows(2).all(|w| w[0].0 < w[1].0));
        let physical: Vec<&[u8]> = body.split(|b| *b == b'\n').collect();
        for (n, line) in &lines.broken {
            let original = physical[n - 1];
            prop_assert_eq!(*line, original.strip_suffix(b"\r").unwrap_or(original), "a broken line is kept whole");
            prop_assert!(serde_json::from_slice::<Value>(line).is_err());
        }
        for (n, value) in &lines.good {
            prop_assert_eq!(&serde_json::from_slice::<Value>(physical[n - 1]).unwrap(), value);
        }
    }

    /// Graph batches of any shape, with any query: never a panic; nothing is stored
    /// unless an item carries the connection's client state; anything refused whole is
    /// refused for a stated class, and a validation is answered only for its parameter.
    #[test]
    fn graph_batches_verify_only_with_the_client_state(
        items in prop::collection::vec(graph_like_item(), 0..6),
        tokens in proptest::option::of(any_json()),
        query in proptest::option::of("[a-zA-Z=&%+0-9]{0,40}"),
    ) {
        let config = json!({"client_state": "the-client-state", "tenant_ids": ["t1"]});
        let mut body = json!({"value": items});
        if let Some(tokens) = tokens {
            body["validationTokens"] = tokens;
        }
        let bytes = body.to_string().into_bytes();
        let senders = Senders::new(std::sync::Arc::new(CertStore::offline(None)), no_google_keys(), no_microsoft_keys());
        let sender = senders.get(SourceKind::MsGraph);
        let config = pushgate::sources::ConnectionConfig::load(sender, config.clone());
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let map = HeaderMap::new();
        let request = RawRequest { headers: &map, query: query.as_deref(), body: &bytes, push_url: "http://x", now: chrono::Utc::now() };
        match runtime.block_on(sender.receive(request, &config)) {
            Ok(decoded) => match decoded.unwrap() {
                Intake::Handshake(_) => prop_assert!(query.unwrap_or_default().to_ascii_lowercase().contains("validationtoken")),
                Intake::Batch(batch) => {
                    prop_assert!(String::from_utf8_lossy(&bytes).contains("the-client-state"));
                    for event in &batch.events {
                        prop_assert!(event.payload.get("clientState").is_none());
                    }
                }
                other => prop_assert!(false, "unexpected intake {other:?}"),
            },
            Err(e) => prop_assert!(matches!(e.class, RejectClass::Malformed | RejectClass::Unauthenticated | RejectClass::Unavailable)),
        }
    }

    /// O365 requests verify only with the auth id, whatever the body; verified bodies
    /// decode or are kept as undecodable.
    #[test]
    fn o365_requests_verify_only_with_the_auth_id(body in any_json(), auth in proptest::option::of(prop_oneof![Just("a1".to_string()), ".{0,4}"])) {
        let config = json!({"auth_id": "a1"});
        let mut map = HeaderMap::new();
        if let Some(value) = auth.as_deref().and_then(|a| HeaderValue::from_str(a).ok()) {
            map.insert("webhook-authid", value);
        }
        let bytes = body.to_string().into_bytes();
        let senders = Senders::new(std::sync::Arc::new(CertStore::offline(None)), no_google_keys(), no_microsoft_keys());
        let sender = senders.get(SourceKind::O365Activity);
        let config = pushgate::sources::ConnectionConfig::load(sender, config.clone());
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let request = RawRequest { headers: &map, query: None, body: &bytes, push_url: "http://x", now: chrono::Utc::now() };
        match runtime.block_on(sender.receive(request, &config)) {
            Ok(decoded) => {
                prop_assert_eq!(auth.as_deref(), Some("a1"));
                if let Err(e) = decoded {
                    prop_assert_eq!(e.class, RejectClass::Undecodable);
                }
            }
            Err(e) => prop_assert_eq!(e.class, RejectClass::Unauthenticated),
        }
    }

    /// Any bytes, or any JSON object with SNS field names, parse as an envelope or are
    /// refused as malformed; a parsed envelope always yields its string to sign.
    #[test]
    fn sns_envelopes_parse_or_are_malformed(body in prop_oneof![
        prop::collection::vec(any::<u8>(), 0..400),
        any_json().prop_map(|v| v.to_string().into_bytes()),
        sns_like_json().prop_map(|v| v.to_string().into_bytes()),
    ]) {
        match Envelope::parse(&body) {
            Ok(envelope) => prop_assert!(!envelope.string_to_sign().is_empty()),
            // A complete envelope of an unknown SignatureVersion is refused as unauthenticated.
            Err(e) if e.reason == "sns_signature_version_unsupported" => prop_assert_eq!(e.class, RejectClass::Unauthenticated),
            Err(e) => prop_assert_eq!(e.class, RejectClass::Malformed),
        }
    }

    /// A real AWS-signed message with any signed field changed never verifies, though
    /// its certificate is pinned, its topic allowed and the clock right.
    #[test]
    fn changed_signed_fields_never_verify(changes in prop::collection::btree_map(
        prop_oneof![Just("Message"), Just("MessageId"), Just("Subject"), Just("Timestamp"), Just("TopicArn"),
            Just("Type"), Just("Signature"), Just("SignatureVersion")],
        prop_oneof![
            ".{0,40}".prop_map(Value::String),
            Just(json!("2026-03-06T20:00:27.893Z")),
            Just(json!("arn:aws:sns:us-west-2:131990247566:other-topic")),
            Just(json!("Notification")), Just(json!("1")), Just(json!("2")),
            "[A-Za-z0-9+/]{340,344}={0,2}".prop_map(Value::String),
        ],
        1..4,
    )) {
        let original: Value = serde_json::from_str(include_str!("fixtures/aws-sns/messages/javav2-mm_notification-v2.json")).unwrap();
        let mut forged = original.clone();
        for (field, value) in &changes {
            forged[*field] = value.clone();
        }
        prop_assume!(forged != original);
        let certs = CertStore::offline(Some(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/aws-sns/certs").into()));
        let senders = Senders::new(std::sync::Arc::new(certs), no_google_keys(), no_microsoft_keys());
        let sender = senders.get(SourceKind::AwsSns);
        let config = json!({"topic_arns": ["arn:aws:sns:us-west-2:131990247566:dongie-standard-topic",
            "arn:aws:sns:us-west-2:131990247566:other-topic"]});
        let config = pushgate::sources::ConnectionConfig::load(sender, config);
        let text = forged.to_string();
        let map = HeaderMap::new();
        let now = chrono::DateTime::parse_from_rfc3339("2026-03-06T20:01:00Z").unwrap().to_utc();
        let request = RawRequest { headers: &map, query: None, body: text.as_bytes(), push_url: "http://x", now };
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let result = runtime.block_on(sender.receive(request, &config));
        prop_assert!(result.is_err(), "a changed message verified: {changes:?}");
    }

    /// Any EventBridge-shaped JSON decodes into a heartbeat or at least one event, each
    /// keyed under the sender's id; any SNS `Message` text likewise.
    #[test]
    fn eventbridge_events_always_decode(event in eventbridge_like_json(), message in ".{0,200}") {
        match eventbridge::decode(event, "base-id") {
            Decoded::Heartbeat { .. } => {}
            Decoded::Events(events) => {
                prop_assert!(!events.is_empty());
                prop_assert!(events.iter().all(|e| e.dedupe_key.starts_with("base-id")));
            }
        }
        match eventbridge::decode_message(&message, "m") {
            Ok(Decoded::Heartbeat { .. }) => {}
            Ok(Decoded::Events(events)) => prop_assert!(!events.is_empty()),
            // Not JSON: the SNS sender keeps it whole as a raw event.
            Err(_) => prop_assert!(serde_json::from_str::<Value>(&message).is_err()),
        }
    }

    /// Config validation never panics, for any source and any JSON.
    #[test]
    fn config_validation_never_panics(config in any_json()) {
        for source in SourceKind::ALL {
            let _ = config_check::validate(source, &config);
        }
    }

    /// A masked config shows no secret, wherever it sits, and restoring the masks gives the original.
    #[test]
    fn masking_hides_every_secret_and_restores_it(mut config in any_json(), marker in "[0-9]{6}") {
        let marker = format!("secret-marker-{marker}");
        if let Value::Object(map) = &mut config {
            map.insert("password".into(), json!(marker));
            map.insert("deep".into(), json!({"list": [{"client_secret": [marker.clone(), {"private_key_pem": marker}]}]}));
        }
        let shown = pushgate::secrets::masked(&config);
        prop_assert!(!shown.to_string().contains("secret-marker-"), "{}", shown);
        let mut restored = shown.clone();
        pushgate::secrets::restore_masked(&mut restored, &config);
        prop_assert_eq!(restored, config);
    }

    /// Admin create bodies of any shape are validated without panicking.
    #[test]
    fn create_requests_never_panic(config in any_json(), source in prop_oneof![Just("webhook".to_string()), Just("aws_sns".to_string()), Just("ms_graph".to_string()), ".{0,8}"],
        tenant in ".{0,140}", interval in proptest::option::of(any::<i64>()), grace in proptest::option::of(any::<i64>())) {
        let body = json!({"tenant_id": tenant, "name": "n", "source": source, "config": config,
            "heartbeat_interval_seconds": interval, "grace_seconds": grace});
        if let Ok(request) = serde_json::from_value::<pushgate::connections::CreateRequest>(body) {
            let key = pushgate::crypto::MasterKey::from_bytes(&[1u8; 32]).unwrap();
            let _ = pushgate::connections::prepare_new(request, &key, pushgate::model::now());
        }
    }

    /// Rejection body prefixes are bounded and storable whatever the bytes.
    #[test]
    fn body_prefixes_are_bounded(body in prop::collection::vec(any::<u8>(), 0..9000)) {
        let prefix = pushgate::model::body_prefix(&body);
        prop_assert!(prefix.len() <= pushgate::model::BODY_PREFIX_LIMIT);
        prop_assert!(!prefix.contains('\0'));
    }

    /// Configuration from any environment values is parsed or refused, never a panic.
    #[test]
    fn configuration_never_panics(values in prop::collection::vec(".{0,20}", 6)) {
        let keys = ["PUSHGATE_LISTEN", "PUSHGATE_DATABASE_URL", "PUSHGATE_MAX_BODY_BYTES", "PUSHGATE_MASTER_KEY",
            "PUSHGATE_LOG", "PUSHGATE_PUBLIC_URL"];
        let env = keys.iter().zip(values).map(|(k, v)| (k.to_string(), v)).collect();
        let _ = pushgate::config::Config::load(None, &env);
    }

    /// `decrypt` never panics, and refuses with one of its reasons, for any JSON, any
    /// object of `encryptedContent` fields, and the real vector with fields replaced.
    #[test]
    fn graph_encrypted_content_never_panics(
        any in any_json(),
        fields in prop::collection::btree_map(
            prop_oneof![Just("data"), Just("dataKey"), Just("dataSignature"), Just("encryptionCertificateId"),
                Just("encryptionCertificateThumbprint"), Just("other")],
            graph_field_value(),
            0..6,
        ),
        replace in prop::collection::btree_map(
            prop_oneof![Just("data"), Just("dataKey"), Just("dataSignature"), Just("encryptionCertificateId")],
            graph_field_value(),
            1..3,
        ),
    ) {
        let keys = graph_keys();
        let object = Value::Object(fields.into_iter().map(|(k, v)| (k.to_string(), v)).collect());
        let original = graph_vector();
        let mut changed = original.clone();
        for (field, value) in &replace {
            changed[*field] = value.clone();
        }
        for content in [&any, &object] {
            let result = rich::decrypt(content, keys);
            if let Err(e) = &result {
                prop_assert!(GRAPH_REASONS.contains(&e.reason()), "{e}");
            }
        }
        prop_assume!(changed != original);
        let error = rich::decrypt(&changed, keys).expect_err("a changed vector never decrypts");
        prop_assert!(GRAPH_REASONS.contains(&error.reason()), "{error}");
    }
}
