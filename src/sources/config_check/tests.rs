use super::*;
use crate::sources::ms_graph::test_rich::TestRichKey;
use serde_json::json;

#[test]
fn every_source_has_a_valid_example() {
    let examples = [
        (
            SourceKind::AwsSns,
            json!({"topic_arns": ["arn:aws:sns:eu-west-1:123456789012:findings", "arn:aws:sns:eu-west-1:123456789012:canary"], "auto_confirm": false,
            "canary": {"topic_arn": "arn:aws:sns:eu-west-1:123456789012:canary", "interval_seconds": 60}}),
        ),
        (SourceKind::AwsEventbridge, json!({"auth": {"type": "api_key", "header": "X-Api-Key", "value": "v"}})),
        (
            SourceKind::GcpPubsub,
            json!({"service_account_email": "push@p.iam.gserviceaccount.com",
            "subscriptions": ["projects/p/subscriptions/s"], "canary": {"topic": "projects/p/topics/t", "interval_seconds": 1}}),
        ),
        (
            SourceKind::MsGraph,
            json!({"client_state": "cs", "tenant_ids": ["t"], "app_ids": ["a"], "encryption_keys": [TestRichKey::generate("k").config_entry()]}),
        ),
        (SourceKind::O365Activity, json!({"auth_id": "a"})),
        (SourceKind::Webhook, json!({"auth": {"type": "standard_webhooks", "secret": "whsec_c2VjcmV0"}})),
    ];
    for (source, config) in examples {
        assert_eq!(validate(source, &config), Vec::<String>::new(), "{source:?}");
    }
}

#[test]
fn missing_and_wrong_fields_are_named() {
    let e = validate(SourceKind::AwsSns, &json!({}));
    assert!(e[0].contains("topic_arns"));
    let e = validate(SourceKind::AwsSns, &json!({"topic_arns": ["arn:aws:s3:::bucket"], "topic_arn": "x"}));
    assert_eq!(e.len(), 2, "{e:?}");
    let e = validate(SourceKind::GcpPubsub, &json!({"canary": {"topic": "t", "interval_seconds": 0}}));
    assert_eq!(e.len(), 3, "{e:?}");
    let sns = |canary: Value| json!({"topic_arns": ["arn:aws:sns:eu-west-1:123456789012:findings"], "canary": canary});
    let e = validate(SourceKind::AwsSns, &sns(json!({"topic_arn": "arn:aws:sns:eu-west-1:123456789012:other", "interval_seconds": 60})));
    assert!(e.len() == 1 && e[0].contains("must also be in `topic_arns`"), "{e:?}");
    let e = validate(
        SourceKind::AwsSns,
        &sns(json!({"topic_arn": "arn:aws:sns:eu-west-1:123456789012:findings", "interval_seconds": i64::MAX})),
    );
    assert!(e.len() == 1 && e[0].contains("86400"), "{e:?}");
    let e = validate(SourceKind::MsGraph, &json!({"client_state": "x".repeat(129)}));
    assert!(e[0].contains("128"));
    let e = validate(SourceKind::AwsEventbridge, &json!({"auth": {"type": "standard_webhooks", "secret": "whsec_eA=="}}));
    assert!(e[0].contains("not one of"));
    assert!(!validate(SourceKind::O365Activity, &json!([])).is_empty());
    let e = validate(SourceKind::O365Activity, &json!({"auth_id": "***"}));
    assert!(e[0].contains("***"), "{e:?}");
    let graph = |subscription: Value| json!({"client_state": "cs", "subscription": subscription});
    let full = json!({"resource": "users", "change_type": "created", "tenant_id": "t", "client_id": "c", "client_secret": "s"});
    assert_eq!(validate(SourceKind::MsGraph, &graph(full.clone())), Vec::<String>::new());
    let mut with_minutes = full.clone();
    with_minutes["expiration_minutes"] = json!(4230);
    assert_eq!(validate(SourceKind::MsGraph, &graph(with_minutes.clone())), Vec::<String>::new());
    for bad in [json!(0), json!(43_201), json!(1.5), json!("60")] {
        with_minutes["expiration_minutes"] = bad.clone();
        let e = validate(SourceKind::MsGraph, &graph(with_minutes.clone()));
        assert!(e.len() == 1 && e[0].contains("expiration_minutes"), "{bad}: {e:?}");
    }
    let e = validate(SourceKind::MsGraph, &graph(json!({"resource": "r"})));
    assert!(e.len() == 1 && e[0].contains("client_secret"), "{e:?}");
    let e = validate(SourceKind::MsGraph, &json!({"client_state": "cs", "tenant_ids": ["a\u{0}"]}));
    assert!(e[0].contains("NUL"), "{e:?}");
}

const GRAPH_FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/ms-graph/encrypted-content");

fn graph_fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{GRAPH_FIXTURES}/{name}")).expect("fixture")
}

fn graph(keys: Value) -> Vec<String> {
    validate(SourceKind::MsGraph, &json!({"client_state": "cs", "app_ids": ["a"], "encryption_keys": keys}))
}

#[test]
fn graph_keys_with_their_certificates_are_accepted() {
    let key = graph_fixture("richnotificationsapp.key.pem");
    let certificate = graph_fixture("richnotificationsapp.cert.pem");
    let rotation = TestRichKey::generate("next");
    let keys = json!([
        {"id": "custom-id-for-testing", "private_key_pem": key, "certificate_pem": certificate},
        {"id": "next", "private_key_pem": rotation.private_key_pkcs1_pem()},
    ]);
    assert_eq!(graph(keys), Vec::<String>::new());
}

#[test]
fn bad_graph_keys_are_named_by_id_without_their_contents() {
    let key = TestRichKey::generate("k");
    let pem = key.private_key_pem();
    let secret_line = pem.lines().nth(2).unwrap().to_string();
    let certificate = graph_fixture("richnotificationsapp.cert.pem");
    let cases: [(Value, &str); 9] = [
        (json!("x"), "must be a list"),
        (json!(["x"]), "`encryption_keys[0]` must be an object"),
        (json!([{"private_key_pem": pem}]), "`encryption_keys[0].id` is required"),
        (json!([{"id": "k"}]), "key \"k\": `private_key_pem` is required"),
        (
            json!([{"id": "k", "private_key_pem": "-----BEGIN PRIVATE KEY-----"}]),
            "key \"k\": `private_key_pem` must be a PEM RSA private key",
        ),
        (json!([{"id": "k", "private_key_pem": pem.replace(&secret_line, &secret_line[..10])}]), "key \"k\": `private_key_pem`"),
        (json!([key.config_entry(), key.config_entry()]), "used twice"),
        (json!([{"id": "k", "private_key_pem": pem, "certificate_pem": certificate}]), "does not match the private key"),
        (json!([{"id": "k", "private_key_pem": pem, "certificate": "x"}]), "`certificate` is not a field"),
    ];
    for (keys, expected) in cases {
        let errors = graph(keys.clone());
        assert!(errors.len() == 1 && errors[0].contains(expected), "{keys}: {errors:?}");
        assert!(!errors[0].contains(&secret_line[..20]), "{errors:?}");
    }
    let errors = graph(
        json!([{"id": "k", "private_key_pem": pem, "certificate_pem": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"}]),
    );
    assert!(errors.len() == 1 && errors[0].contains("not an X.509 certificate"), "{errors:?}");
    let errors = graph(json!([{"id": "k", "private_key_pem": "***"}]));
    assert!(errors.len() == 1 && errors[0].contains("***"), "one error for a leftover mask: {errors:?}");
}
