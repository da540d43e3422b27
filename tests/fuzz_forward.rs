//! Property-based fuzzing of what forwarding parses or decides from outside input:
//! destination bodies and filters, change-feed cursors, subject templates, the answers
//! of HTTP collectors and Splunk HEC, `Retry-After`, and the bookkeeping of a batch under
//! any sequence of answers. None may panic, and a delivered batch accounts for every
//! record exactly once, in commit order.

use proptest::prelude::*;
use pushgate::forward::config::{HttpFormat, SinkConfig};
use pushgate::forward::delivery::{Delivery, Next};
use pushgate::forward::sinks::http::{classify, parse_retry_after};
use pushgate::forward::sinks::{Failure, SinkError};
use pushgate::forward::template::Template;
use pushgate::model::{DestinationKind, Position};
use serde_json::{json, Value};

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        ".{0,12}".prop_map(Value::String),
        prop_oneof![
            Just("***"),
            Just("nats://127.0.0.1:4222"),
            Just("https://x/"),
            Just("splunk_hec"),
            Just("ndjson"),
            Just("bearer"),
            Just("standard_webhooks"),
            Just("whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"),
            Just("{stream}.{kind}")
        ]
        .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(4, 40, 6, |inner| {
        let keys = prop_oneof![
            Just("url".to_string()),
            Just("subject".to_string()),
            Just("auth".to_string()),
            Just("type".to_string()),
            Just("token".to_string()),
            Just("secret".to_string()),
            Just("format".to_string()),
            Just("header".to_string()),
            Just("value".to_string()),
            Just("max_batch_events".to_string()),
            Just("tenant_ids".to_string()),
            Just("streams".to_string()),
            Just("kinds".to_string()),
            "[a-z_]{1,8}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(keys, inner, 0..5).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn failure() -> impl Strategy<Value = Failure> {
    prop_oneof![Just(Failure::Transient), Just(Failure::Failing), Just(Failure::RefusedBatch), Just(Failure::RefusedRecord)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Destination configs of any shape are parsed or refused with reasons, never a panic,
    /// and no refusal repeats a secret it was given.
    #[test]
    fn destination_configs_never_panic_nor_echo_secrets(config in any_json(), marker in "[0-9]{6}") {
        let mut config = config;
        let secret = format!("secret-marker-{marker}");
        if let Value::Object(map) = &mut config {
            map.insert("auth".into(), json!({"type": "bearer", "token": secret, "extra": 1}));
        }
        for kind in DestinationKind::ALL {
            if let Err(errors) = SinkConfig::parse(kind, &config) {
                prop_assert!(!errors.is_empty());
                prop_assert!(errors.iter().all(|e| !e.contains("secret-marker-")), "{:?}", errors);
            }
        }
        let shown = pushgate::destinations::masked(&config);
        prop_assert!(!shown.to_string().contains("secret-marker-"));
    }

    /// Create bodies and filters of any shape are validated without panicking.
    #[test]
    fn destination_requests_never_panic(config in any_json(), filter in any_json(), kind in prop_oneof![Just("nats".to_string()), Just("http".to_string()), ".{0,6}"],
        start in proptest::option::of(prop_oneof![Just("now".to_string()), Just("earliest".to_string()), ".{0,6}"])) {
        let body = json!({"name": "n", "kind": kind, "filter": filter, "start_from": start, "config": config});
        if let Ok(request) = serde_json::from_value::<pushgate::destinations::CreateRequest>(body) {
            let key = pushgate::crypto::MasterKey::from_bytes(&[1u8; 32]).unwrap();
            let _ = pushgate::destinations::prepare_new(request, &key, pushgate::model::now());
        }
        let mut errors = Vec::new();
        let _ = pushgate::destinations::parse_filter(Some(&filter), &mut errors);
    }

    /// Cursors: only our own text parses, and it round-trips.
    #[test]
    fn cursors_parse_only_what_they_print(text in ".{0,30}", xid in 0i64..i64::MAX, seq in 0i64..i64::MAX) {
        if let Some(p) = Position::parse_cursor(&text) {
            prop_assert_eq!(Position::parse_cursor(&p.cursor()), Some(p));
        }
        let p = Position { xid, seq };
        prop_assert_eq!(Position::parse_cursor(&p.cursor()), Some(p));
    }

    /// Templates parse or say why; a parsed one always renders.
    #[test]
    fn templates_never_panic(text in "[a-z{}._*> -]{0,40}") {
        if let Ok(t) = Template::parse(&text) {
            let _ = t.render_with("x");
        }
    }

    /// Any answer of any collector is classified; a HEC `invalid-event-number` is the
    /// number of records taken, whatever it says.
    #[test]
    fn answers_are_always_classified(status in 300u16..600, body in prop::collection::vec(any::<u8>(), 0..400), n in any::<u64>(), code in 0i64..30) {
        for format in [HttpFormat::Ndjson, HttpFormat::SplunkHec] {
            let e = classify(format, status, &body, None);
            prop_assert!(!e.message.is_empty());
            let hec = format!("{{\"text\":\"x\",\"code\":{code},\"invalid-event-number\":{n}}}");
            let _ = classify(format, status, hec.as_bytes(), Some("https://elsewhere/"));
        }
        let _ = parse_retry_after(&String::from_utf8_lossy(&body));
    }

    /// Whatever the store answers, once a batch is done every record was delivered or
    /// refused exactly once, the refused in commit order, and parts went out in order.
    #[test]
    fn a_batch_accounts_for_every_record(len in 1usize..120, answers in prop::collection::vec((failure(), 0usize..130, any::<bool>()), 0..60)) {
        let mut d = Delivery::new(uuid::Uuid::from_u128(5), len);
        let mut answers = answers.into_iter();
        let mut last_start = 0;
        let mut steps = 0;
        while let Some((part, _)) = d.next_part() {
            prop_assert!(part.start >= last_start && !part.is_empty() && part.end <= len);
            last_start = part.start;
            let result = match answers.next() {
                Some((_, _, true)) | None => Ok(()),
                Some((failure, accepted, false)) => {
                    let mut e = SinkError::new(failure, "answer");
                    e.accepted = accepted;
                    Err(e)
                }
            };
            if let Next::Retry(e) = d.settle(result) {
                prop_assert!(matches!(e.failure, Failure::Transient | Failure::Failing));
            }
            steps += 1;
            prop_assert!(steps < 10_000);
        }
        let refused: Vec<usize> = d.refused().map(|(i, _, _)| i).collect();
        prop_assert_eq!(d.delivered() + refused.len(), len);
        prop_assert!(refused.windows(2).all(|w| w[0] < w[1]), "{:?}", refused);
    }
}
