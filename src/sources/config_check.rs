//! Validation of a connection's `config` for every source of INTERFACE.md section 2,
//! including sources whose push route is not built yet, so a bad config is refused with
//! a clear message when it is saved rather than when the first push arrives.

use serde_json::{Map, Value};

pub use super::catalog::{MAX_CANARY_INTERVAL_SECONDS, MAX_GRAPH_EXPIRATION_MINUTES};
use super::ms_graph::rich;
use super::webhook;
use crate::model::SourceKind;
use crate::verify::auth::{Allowed, Auth};

/// Every problem with `config` for `source`; empty when it is valid.
pub fn validate(source: SourceKind, config: &Value) -> Vec<String> {
    let Some(map) = config.as_object() else {
        return vec!["`config` must be a JSON object".into()];
    };
    let mut errors = Vec::new();
    if has_nul(config) {
        errors.push("strings in `config` must not contain NUL characters".into());
    }
    if crate::secrets::secret_strings(config).iter().any(|s| s == crate::secrets::MASK) {
        errors.push("a secret field is `***` with no stored value at that place: send the secret itself".into());
    }
    let known: &[&str] = match source {
        SourceKind::AwsSns => {
            match map.get("topic_arns").and_then(Value::as_array) {
                Some(arns) if !arns.is_empty() => {
                    for arn in arns {
                        if !arn.as_str().is_some_and(is_sns_topic_arn) {
                            errors.push(format!("`topic_arns`: {arn} is not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)"));
                        }
                    }
                }
                _ => errors.push("`topic_arns` is required: a non-empty list of SNS topic ARNs".into()),
            }
            optional_bool(map, "auto_confirm", &mut errors);
            canary(map, "topic_arn", is_sns_topic_arn, "an SNS topic ARN", &mut errors);
            // Its deliveries come back through this connection: a topic it refuses would
            // read as forged pushes ("Signature verification failing").
            let canary_topic = map.get("canary").and_then(|c| c.get("topic_arn")).and_then(Value::as_str);
            let allowed = map.get("topic_arns").and_then(Value::as_array);
            if let (Some(topic), Some(allowed)) = (canary_topic, allowed) {
                if !allowed.iter().any(|a| a.as_str() == Some(topic)) {
                    errors.push(format!("`canary.topic_arn` {topic} must also be in `topic_arns`, or its heartbeats would be refused"));
                }
            }
            &["topic_arns", "auto_confirm", "canary"]
        }
        SourceKind::AwsEventbridge => {
            errors.extend(Auth::parse(config, Allowed::Basic).err().unwrap_or_default());
            &["auth"]
        }
        SourceKind::GcpPubsub => {
            match map.get("service_account_email").and_then(Value::as_str) {
                Some(e) if e.contains('@') && !e.starts_with('@') && !e.ends_with('@') => {}
                _ => errors.push("`service_account_email` is required: the email of the push subscription's service account".into()),
            }
            optional_string(map, "audience", &mut errors);
            optional_list(map, "subscriptions", |s| is_gcp_path(s, "subscriptions"), "projects/P/subscriptions/S", &mut errors);
            // An empty allow-list would refuse every push: leave the field out instead.
            if map.get("subscriptions").and_then(Value::as_array).is_some_and(|list| list.is_empty()) {
                errors.push("`subscriptions` must not be empty (leave it out to allow any subscription)".into());
            }
            canary(map, "topic", |t| is_gcp_path(t, "topics"), "projects/P/topics/T", &mut errors);
            &["service_account_email", "audience", "subscriptions", "canary"]
        }
        SourceKind::MsGraph => {
            match map.get("client_state").and_then(Value::as_str) {
                Some(s) if !s.is_empty() && s.chars().count() <= 128 => {}
                _ => errors.push("`client_state` is required: a string of 1 to 128 characters".into()),
            }
            optional_list(map, "tenant_ids", |s| !s.is_empty(), "a tenant id", &mut errors);
            optional_list(map, "app_ids", |s| !s.is_empty(), "an application id", &mut errors);
            encryption_keys(map, &mut errors);
            // Rich notifications come with validation tokens whose audience is the app.
            let has_keys = map.get("encryption_keys").and_then(Value::as_array).is_some_and(|k| !k.is_empty());
            let has_apps = map.get("app_ids").and_then(Value::as_array).is_some_and(|a| !a.is_empty());
            if has_keys && !has_apps {
                errors.push("`app_ids` is required with `encryption_keys`: the validation tokens of rich notifications name the application as their audience".into());
            }
            graph_subscription(map, &mut errors);
            &["client_state", "tenant_ids", "app_ids", "encryption_keys", "subscription"]
        }
        SourceKind::O365Activity => {
            match map.get("auth_id").and_then(Value::as_str) {
                Some(s) if !s.is_empty() => {}
                _ => errors.push("`auth_id` is required: the Webhook-AuthID the subscription sends".into()),
            }
            &["auth_id"]
        }
        SourceKind::Webhook => {
            errors.extend(webhook::validate_config(config));
            &webhook::CONFIG_KEYS
        }
    };
    for key in map.keys() {
        if !known.contains(&key.as_str()) {
            errors.push(format!("`{key}` is not a config field of {} (expected: {})", source.as_str(), known.join(", ")));
        }
    }
    // The schema the catalog serves is generated from the typed config: what it does not
    // read is refused too, even where the rules above found nothing to say.
    if errors.is_empty() {
        if let Err(e) = super::catalog::read_typed(source, config) {
            errors.push(format!("the config does not match the {} schema of GET /v1/sources: {e}", source.as_str()));
        }
    }
    errors
}

fn has_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(has_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

fn is_sns_topic_arn(arn: &str) -> bool {
    crate::sources::aws_sns::topic_arn::TopicArn::parse(arn).is_some()
}

fn is_gcp_path(path: &str, collection: &str) -> bool {
    let parts: Vec<&str> = path.split('/').collect();
    parts.len() == 4 && parts[0] == "projects" && !parts[1].is_empty() && parts[2] == collection && !parts[3].is_empty()
}

fn optional_bool(map: &Map<String, Value>, key: &str, errors: &mut Vec<String>) {
    if map.get(key).is_some_and(|v| !v.is_boolean()) {
        errors.push(format!("`{key}` must be true or false"));
    }
}

fn optional_string(map: &Map<String, Value>, key: &str, errors: &mut Vec<String>) {
    if map.get(key).is_some_and(|v| v.as_str().is_none_or(|s| s.is_empty())) {
        errors.push(format!("`{key}` must be a non-empty string"));
    }
}

fn optional_list(map: &Map<String, Value>, key: &str, ok: impl Fn(&str) -> bool, what: &str, errors: &mut Vec<String>) {
    let Some(value) = map.get(key) else { return };
    match value.as_array() {
        Some(items) if items.iter().all(|i| i.as_str().is_some_and(&ok)) => {}
        _ => errors.push(format!("`{key}` must be a list, each item {what}")),
    }
}

fn canary(map: &Map<String, Value>, target: &str, ok: impl Fn(&str) -> bool, what: &str, errors: &mut Vec<String>) {
    let Some(value) = map.get("canary") else { return };
    let Some(canary) = value.as_object() else {
        errors.push(format!("`canary` must be an object {{\"{target}\", \"interval_seconds\"}}"));
        return;
    };
    if !canary.get(target).and_then(Value::as_str).is_some_and(ok) {
        errors.push(format!("`canary.{target}` is required: {what}"));
    }
    if canary.get("interval_seconds").and_then(Value::as_i64).is_none_or(|n| !(1..=MAX_CANARY_INTERVAL_SECONDS).contains(&n)) {
        errors.push(format!("`canary.interval_seconds` is required: a whole number from 1 to {MAX_CANARY_INTERVAL_SECONDS}"));
    }
    for key in canary.keys() {
        if key != target && key != "interval_seconds" {
            errors.push(format!("`canary.{key}` is not a canary field"));
        }
    }
}

/// Fields of one item of a Graph connection's `encryption_keys`.
const ENCRYPTION_KEY_FIELDS: [&str; 3] = ["id", "private_key_pem", "certificate_pem"];

/// Each key must parse as the RSA private key Graph will encrypt to, so a bad key is
/// refused here rather than as undecryptable notifications later; errors name the key
/// by its id, never by its contents.
fn encryption_keys(map: &Map<String, Value>, errors: &mut Vec<String>) {
    let Some(value) = map.get("encryption_keys") else { return };
    let Some(items) = value.as_array() else {
        errors.push("`encryption_keys` must be a list of {\"id\", \"private_key_pem\", \"certificate_pem\" (optional)}".into());
        return;
    };
    let mut seen: Vec<&str> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let Some(key) = item.as_object() else {
            errors
                .push(format!("`encryption_keys[{i}]` must be an object {{\"id\", \"private_key_pem\", \"certificate_pem\" (optional)}}"));
            continue;
        };
        let name = match key.get("id").and_then(Value::as_str) {
            Some(id) if !id.is_empty() && id.chars().count() <= 256 => {
                if seen.contains(&id) {
                    errors.push(format!("`encryption_keys`: the id {id:?} is used twice (ids must be unique)"));
                }
                seen.push(id);
                format!("`encryption_keys` key {id:?}")
            }
            _ => {
                errors.push(format!(
                    "`encryption_keys[{i}].id` is required: a string of 1 to 256 characters (the subscription's encryptionCertificateId)"
                ));
                format!("`encryption_keys[{i}]`")
            }
        };
        let parsed = match key.get("private_key_pem").and_then(Value::as_str) {
            // A leftover mask is reported once, by the generic check above.
            Some(crate::secrets::MASK) => None,
            Some(pem) => match rich::parse_private_key_pem(pem) {
                Ok(parsed) => Some(parsed),
                Err(problem) => {
                    errors.push(format!("{name}: `private_key_pem` must be a PEM RSA private key of 2048 to 4096 bits: {problem}"));
                    None
                }
            },
            None => {
                errors.push(format!("{name}: `private_key_pem` is required: a PEM RSA private key (PRIVATE KEY or RSA PRIVATE KEY)"));
                None
            }
        };
        match key.get("certificate_pem") {
            None => {}
            Some(Value::String(certificate)) => {
                if let Some(parsed) = &parsed {
                    if let Err(problem) = rich::check_certificate(certificate, parsed) {
                        errors.push(format!("{name}: `certificate_pem` must be the PEM X.509 certificate of this key: {problem}"));
                    }
                }
            }
            Some(_) => errors.push(format!("{name}: `certificate_pem` must be a PEM X.509 certificate")),
        }
        for field in key.keys() {
            if !ENCRYPTION_KEY_FIELDS.contains(&field.as_str()) {
                errors.push(format!(
                    "{name}: `{field}` is not a field of an encryption key (expected: {})",
                    ENCRYPTION_KEY_FIELDS.join(", ")
                ));
            }
        }
    }
}

fn graph_subscription(map: &Map<String, Value>, errors: &mut Vec<String>) {
    let Some(value) = map.get("subscription") else { return };
    let fields = ["resource", "change_type", "tenant_id", "client_id", "client_secret"];
    let optional = ["expiration_minutes"];
    let valid = value.as_object().is_some_and(|s| {
        fields.iter().all(|f| s.get(*f).and_then(Value::as_str).is_some_and(|v| !v.is_empty()))
            && s.keys().all(|k| fields.contains(&k.as_str()) || optional.contains(&k.as_str()))
    });
    if !valid {
        errors.push(format!(
            "`subscription` must be an object with the string fields {} and optionally `expiration_minutes`",
            fields.join(", ")
        ));
    }
    if let Some(minutes) = value.get("expiration_minutes") {
        if minutes.as_i64().is_none_or(|m| !(1..=MAX_GRAPH_EXPIRATION_MINUTES).contains(&m)) {
            errors.push(format!("`subscription.expiration_minutes` must be a whole number from 1 to {MAX_GRAPH_EXPIRATION_MINUTES}"));
        }
    }
}

#[cfg(test)]
mod tests {
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
        let e =
            validate(SourceKind::AwsSns, &sns(json!({"topic_arn": "arn:aws:sns:eu-west-1:123456789012:other", "interval_seconds": 60})));
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
}
