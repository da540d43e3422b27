//! The source catalog, `GET /v1/sources` (INTERFACE.md section 8), over real HTTP on
//! SQLite and PostgreSQL: what it lists, and that its schemas and `POST /v1/connections`
//! agree: every connection example of the README validates against the served schema and
//! is accepted by the API, and each config of a set of wrong ones is refused by both.

mod common;

use common::TestServer;
use reqwest::Method;
use serde_json::{json, Value};

on_both_backends!(
    the_catalog_lists_every_source_for_the_admin_only,
    every_readme_example_validates_against_its_schema_and_is_accepted,
    schema_and_api_agree_on_configs_both_accept,
    schema_and_api_agree_on_configs_both_refuse,
);

const SOURCES: [&str; 6] = ["aws_sns", "aws_eventbridge", "gcp_pubsub", "ms_graph", "o365_activity", "webhook"];

async fn catalog(server: &TestServer) -> Vec<Value> {
    let response = server.admin(Method::GET, "/v1/sources").send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["sources"].as_array().expect("`sources` is a list").clone()
}

/// The served schema of `source`, compiled.
async fn validator(server: &TestServer, source: &str) -> jsonschema::Validator {
    let entry = catalog(server).await.into_iter().find(|e| e["source"] == source).unwrap_or_else(|| panic!("{source} is listed"));
    jsonschema::draft202012::new(&entry["config_schema"]).unwrap_or_else(|e| panic!("the {source} schema compiles: {e}"))
}

/// `POST /v1/connections` of `config` as `source`: the status and the answer.
async fn create(server: &TestServer, source: &str, config: &Value) -> (u16, Value) {
    let body = json!({"tenant_id": "acme", "name": format!("{source} example"), "source": source, "config": config});
    let response = server.admin(Method::POST, "/v1/connections").json(&body).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn the_catalog_lists_every_source_for_the_admin_only(server: TestServer) {
    let anonymous = server.client.get(server.url("/v1/sources")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let wrong = server.client.get(server.url("/v1/sources")).bearer_auth("not-the-token-0123456789").send().await.unwrap();
    assert_eq!(wrong.status(), 401);

    let entries = catalog(&server).await;
    let listed: Vec<&str> = entries.iter().map(|e| e["source"].as_str().unwrap()).collect();
    let mut sorted = listed.clone();
    sorted.sort();
    let mut expected = SOURCES.to_vec();
    expected.sort();
    assert_eq!(sorted, expected, "each source once");
    for entry in &entries {
        let source = entry["source"].as_str().unwrap();
        let schema = &entry["config_schema"];
        assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema", "{source}");
        assert_eq!(schema["type"], "object", "{source}");
        assert_eq!(schema["additionalProperties"], false, "{source}: unknown fields are refused");
        assert!(entry["heartbeat"].as_str().is_some_and(|h| h.len() > 10), "{source}: the heartbeat is said in words");
        assert!(entry["secret_fields"].is_array(), "{source}");
        // The template is the route: a connection's push URL is the template with its id.
        let template = entry["push_url_template"].as_str().unwrap();
        assert!(template.starts_with("/push/") && template.ends_with("/{id}"), "{source}: {template}");
        let example = readme_examples().into_iter().find(|(s, _)| s == source).expect("every source has a README example").1;
        let (status, created) = create(&server, source, &example).await;
        assert_eq!(status, 201, "{source}: {created}");
        let id = created["id"].as_str().unwrap();
        assert!(created["push_url"].as_str().unwrap().ends_with(&template.replace("{id}", id)), "{source}: {created}");
        assert_eq!(created["stream"], entry["default_stream"], "{source}: a connection keeps the default stream");
        // Every secret field the catalog names comes back masked; an example with
        // secrets must show at least one of them, masked.
        let mut masked = 0;
        for field in entry["secret_fields"].as_array().unwrap() {
            let path = field.as_str().unwrap();
            if let Some(shown) = at_path(&created["config"], path) {
                assert!(shown.iter().all(|v| v == "***"), "{source}: {path} is shown as {shown:?}");
                masked += 1;
            }
        }
        let has_secrets = !entry["secret_fields"].as_array().unwrap().is_empty();
        assert_eq!(has_secrets, masked > 0, "{source}: the README example's secrets are shown masked: {created}");
    }
    let secrets = |source: &str| entries.iter().find(|e| e["source"] == source).unwrap()["secret_fields"].as_array().unwrap().clone();
    assert!(secrets("webhook").contains(&json!("auth.secret")));
    assert!(secrets("ms_graph").contains(&json!("client_state")));
    assert!(secrets("o365_activity").contains(&json!("auth_id")));
}

/// The values at a dotted path (`encryption_keys[].private_key_pem`), `None` when absent.
fn at_path(config: &Value, path: &str) -> Option<Vec<Value>> {
    let mut current = vec![config.clone()];
    for part in path.split('.') {
        let (name, each) = match part.strip_suffix("[]") {
            Some(name) => (name, true),
            None => (part, false),
        };
        let mut next = Vec::new();
        for value in current {
            match value.get(name) {
                Some(Value::Array(items)) if each => next.extend(items.iter().cloned()),
                Some(v) if !each => next.push(v.clone()),
                _ => {}
            }
        }
        if next.is_empty() {
            return None;
        }
        current = next;
    }
    Some(current)
}

/// Every `POST /v1/connections` example of the README, as (source, config): the JSON
/// after `-d '` up to the closing `'`, with the shell's splices (`'"$(openssl …)"'`,
/// `'$KEY'`) replaced by a value such a command would print.
fn readme_examples() -> Vec<(String, Value)> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let mut examples = Vec::new();
    let mut rest = readme.as_str();
    while let Some(at) = rest.find("/v1/connections") {
        rest = &rest[at..];
        let line_end = rest.find('\n').unwrap_or(rest.len());
        let is_create = rest[..line_end].contains("-X POST") || readme_line_before(&readme, rest).contains("-X POST");
        let Some(start) = rest.find("-d '{").filter(|s| is_create && *s < 400) else {
            rest = &rest[line_end.min(rest.len())..];
            continue;
        };
        let body_and_more = &rest[start + 4..];
        let (body, end) = shell_single_quoted(body_and_more);
        rest = &body_and_more[end..];
        let request: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("a README example parses as JSON ({e}):\n{body}"));
        if let (Some(source), Some(config)) = (request["source"].as_str(), request.get("config")) {
            examples.push((source.to_owned(), config.clone()));
        }
    }
    assert!(examples.len() >= SOURCES.len(), "the README has an example per source: found {examples:?}");
    examples
}

/// The line of `readme` on which `tail` (a suffix of it) starts.
fn readme_line_before<'r>(readme: &'r str, tail: &str) -> &'r str {
    let at = readme.len() - tail.len();
    let start = readme[..at].rfind('\n').map_or(0, |n| n + 1);
    &readme[start..at]
}

/// The text of a shell single-quoted word starting at `text` (after its opening quote),
/// with `'"$(…)"'` and `'$VAR'` splices replaced; and where the word ends in `text`.
fn shell_single_quoted(text: &str) -> (String, usize) {
    let mut out = String::new();
    let mut i = 0;
    let bytes = text.as_bytes();
    while i < bytes.len() {
        if bytes[i] != b'\'' {
            let c = text[i..].chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
            continue;
        }
        // A quote ends the word unless a splice follows and the word resumes after it.
        let after = &text[i + 1..];
        let splice_end = if after.starts_with("\"$(") {
            after.find(")\"'").map(|e| e + 3)
        } else if let Some(variable) = after.strip_prefix('$') {
            variable.find('\'').map(|e| e + 2)
        } else {
            None
        };
        match splice_end {
            Some(len) => {
                out.push_str("0123456789abcdef0123456789abcdef");
                i += 1 + len;
            }
            None => return (out, i + 1),
        }
    }
    (out, i)
}

async fn every_readme_example_validates_against_its_schema_and_is_accepted(server: TestServer) {
    for (source, config) in readme_examples() {
        let schema = validator(&server, &source).await;
        let problems: Vec<String> = schema.iter_errors(&config).map(|e| e.to_string()).collect();
        assert!(problems.is_empty(), "README {source} example {config} is refused by its schema: {problems:?}");
        let (status, answer) = create(&server, &source, &config).await;
        assert_eq!(status, 201, "README {source} example {config}: {answer}");
    }
}

/// Configs beyond the README's that both the schema and the API accept.
fn accepted() -> Vec<(&'static str, Value)> {
    let arn = "arn:aws:sns:eu-west-1:123456789012:findings";
    vec![
        (
            "webhook",
            json!({"auth": {"type": "api_key", "header": "X-Key", "value": ["old-key", "new-key"]}, "id_header": "X-Delivery", "event_kind": "telemetry"}),
        ),
        ("webhook", json!({"auth": {"type": "basic", "username": "u", "password": "p"}})),
        ("webhook", json!({"auth": {"type": "basic", "username": "u", "password": "p"}, "format": "ndjson"})),
        ("webhook", json!({"auth": {"type": "basic", "username": "u", "password": "p"}, "format": "json"})),
        (
            "webhook",
            json!({"auth": {"type": "standard_webhooks", "secret": ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_c2VjcmV0"], "tolerance_seconds": 600}}),
        ),
        ("aws_eventbridge", json!({"auth": {"type": "hmac_sha256", "header": "X-Signature", "secret": "s"}})),
        (
            "aws_sns",
            json!({"topic_arns": [arn, "arn:aws-cn:sns:cn-north-1:123456789012:hb.fifo"], "auto_confirm": false, "canary": {"topic_arn": arn, "interval_seconds": 60}}),
        ),
        (
            "gcp_pubsub",
            json!({"service_account_email": "push@p.iam.gserviceaccount.com", "audience": "https://pushgate.example/x", "canary": {"topic": "projects/p/topics/hb", "interval_seconds": 300}}),
        ),
        (
            "ms_graph",
            json!({"client_state": "c", "tenant_ids": [], "app_ids": ["app"],
            "subscription": {"resource": "users", "change_type": "created", "tenant_id": "t", "client_id": "c", "client_secret": "s", "expiration_minutes": 4230}}),
        ),
        ("o365_activity", json!({"auth_id": "a"})),
    ]
}

/// Configs both the schema and the API refuse, each for one reason a schema can state.
fn refused() -> Vec<(&'static str, Value, &'static str)> {
    let arn = "arn:aws:sns:eu-west-1:123456789012:findings";
    vec![
        ("webhook", json!({}), "auth is required"),
        ("webhook", json!({"auth": {"type": "hmac_sha256", "header": "X-Sig", "secret": "s"}, "extra": 1}), "unknown field"),
        ("webhook", json!({"auth": {"type": "bearer", "token": "t"}}), "unknown auth type"),
        ("webhook", json!({"auth": {"type": "hmac_sha256", "header": "X-Sig"}}), "secret missing"),
        ("webhook", json!({"auth": {"type": "hmac_sha256", "header": "X Sig", "secret": "s"}}), "header is not a header name"),
        ("webhook", json!({"auth": {"type": "api_key", "header": "X-Key", "value": ""}}), "empty secret"),
        ("webhook", json!({"auth": {"type": "api_key", "header": "X-Key", "value": []}}), "empty secret list"),
        ("webhook", json!({"auth": {"type": "basic", "username": "u", "password": "p", "realm": "r"}}), "unknown auth field"),
        ("webhook", json!({"auth": {"type": "standard_webhooks", "secret": "not-whsec"}}), "not whsec_"),
        (
            "webhook",
            json!({"auth": {"type": "standard_webhooks", "secret": "whsec_c2VjcmV0", "tolerance_seconds": 0}}),
            "tolerance out of range",
        ),
        ("webhook", json!({"auth": {"type": "basic", "username": "u", "password": "p"}, "event_kind": "lifecycle"}), "event kind"),
        ("webhook", json!({"auth": {"type": "basic", "username": "u", "password": "p"}, "id_header": null}), "null id header"),
        ("webhook", json!({"auth": {"type": "basic", "username": "u", "password": "p"}, "format": "csv"}), "unknown format"),
        ("webhook", json!({"auth": {"type": "basic", "username": "u", "password": "p"}, "format": null}), "null format"),
        (
            "aws_eventbridge",
            json!({"auth": {"type": "standard_webhooks", "secret": "whsec_c2VjcmV0"}}),
            "EventBridge cannot sign Standard Webhooks",
        ),
        ("aws_sns", json!({"topic_arns": []}), "no topics"),
        ("aws_sns", json!({"topic_arns": ["arn:aws:s3:::bucket"]}), "not an SNS ARN"),
        ("aws_sns", json!({"topic_arns": ["arn:aws:sns:eu-west-1:12345:t"]}), "short account"),
        ("aws_sns", json!({"topic_arns": [arn], "auto_confirm": "yes"}), "auto_confirm not a boolean"),
        ("aws_sns", json!({"topic_arns": [arn], "canary": {"topic_arn": arn}}), "canary without interval"),
        ("aws_sns", json!({"topic_arns": [arn], "canary": {"topic_arn": arn, "interval_seconds": 86_401}}), "canary interval too long"),
        ("gcp_pubsub", json!({"service_account_email": "no-at-sign"}), "not an email"),
        ("gcp_pubsub", json!({"service_account_email": "a@b", "subscriptions": []}), "empty allow-list"),
        ("gcp_pubsub", json!({"service_account_email": "a@b", "subscriptions": ["my-sub"]}), "not a subscription path"),
        ("gcp_pubsub", json!({"service_account_email": "a@b", "audience": ""}), "empty audience"),
        ("gcp_pubsub", json!({"service_account_email": "a@b", "canary": {"topic": "hb", "interval_seconds": 60}}), "not a topic path"),
        ("ms_graph", json!({}), "client_state missing"),
        ("ms_graph", json!({"client_state": "x".repeat(129)}), "client_state too long"),
        ("ms_graph", json!({"client_state": "c", "tenant_ids": [""]}), "empty tenant id"),
        ("ms_graph", json!({"client_state": "c", "encryption_keys": [{"id": "k", "private_key_pem": "p"}]}), "keys without app ids"),
        ("ms_graph", json!({"client_state": "c", "subscription": {"resource": "users"}}), "subscription incomplete"),
        (
            "ms_graph",
            json!({"client_state": "c", "subscription": {"resource": "users", "change_type": "created", "tenant_id": "t", "client_id": "c", "client_secret": "s", "expiration_minutes": 43_201}}),
            "lifetime too long",
        ),
        ("o365_activity", json!({"auth_id": ""}), "empty auth id"),
        ("o365_activity", json!({"auth_id": "a", "content_types": ["Audit.General"]}), "unknown field"),
    ]
}

async fn schema_and_api_agree_on_configs_both_accept(server: TestServer) {
    for (source, config) in accepted() {
        let schema = validator(&server, source).await;
        let problems: Vec<String> = schema.iter_errors(&config).map(|e| e.to_string()).collect();
        assert!(problems.is_empty(), "{source} {config}: the schema refuses it: {problems:?}");
        let (status, answer) = create(&server, source, &config).await;
        assert_eq!(status, 201, "{source} {config}: {answer}");
    }
}

async fn schema_and_api_agree_on_configs_both_refuse(server: TestServer) {
    for (source, config, why) in refused() {
        let schema = validator(&server, source).await;
        assert!(!schema.is_valid(&config), "{source} ({why}): the schema accepts {config}");
        let (status, answer) = create(&server, source, &config).await;
        assert_eq!(status, 400, "{source} ({why}): the API accepts {config}: {answer}");
        assert_eq!(answer["error"]["code"], "invalid_connection", "{source} ({why}): {answer}");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("config"), "{source} ({why}): the problem is named: {answer}");
    }
}
