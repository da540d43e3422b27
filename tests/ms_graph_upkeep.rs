//! Graph subscription upkeep end to end, on SQLite and PostgreSQL: a real pushgate server
//! keeps subscriptions alive at a fake Graph (`common/fake_graph.rs`) that validates the
//! push URLs the way Graph does, by POSTing a `validationToken` to them before it creates
//! a subscription. Lifecycle notifications are POSTed to the connection's
//! `/lifecycle` URL as Graph would send them.

mod common;
#[path = "common/fake_graph.rs"]
mod fake_graph;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use common::{Backend, TestServer};
use fake_graph::FakeGraph;
use serde_json::{json, Value};

on_both_backends_with!(
    upkeep_creates_a_validated_subscription,
    short_lived_subscriptions_are_renewed,
    reauthorization_required_is_answered_by_the_upkeep,
    a_removed_subscription_is_created_again,
    a_vanished_subscription_is_created_again,
    refused_renewals_let_the_subscription_expire,
    token_failures_are_shown_without_the_secret,
    a_certificate_asks_for_rich_notifications,
    the_upkeep_acts_at_once_on_a_new_connection_and_a_lifecycle_notification,
    changed_settings_replace_the_subscription,
    a_deleted_connection_deletes_its_subscription,
);

const TENANT: &str = "6babcaad-604b-40ac-a9d7-9fd97c0b779f";
const CLIENT_ID: &str = "0b5c3b1e-8d2f-4a6e-9c1d-2e3f4a5b6c7d";
const SECRET: &str = "pushgate-upkeep-secret-7f3a9c1e";
const CLIENT_STATE: &str = "upkeep-client-state-42";
const RESOURCE: &str = "users";

/// A pass every 200 ms: polls below wait up to 10 s.
const INTERVAL: Duration = Duration::from_millis(200);
const POLL: Duration = Duration::from_millis(100);
const TRIES: u32 = 100;

async fn start(backend: Backend, test: &str, fake: &FakeGraph) -> Option<TestServer> {
    capture_logs();
    TestServer::builder(backend, test).envs(fake.env()).with_options(|o| o.graph_upkeep_interval = Some(INTERVAL)).start().await
}

fn graph_connection() -> Value {
    json!({
        "tenant_id": "acme",
        "name": "Graph security alerts",
        "source": "ms_graph",
        "heartbeat_interval_seconds": null,
        "config": {
            "client_state": CLIENT_STATE,
            "tenant_ids": [TENANT],
            "subscription": {"resource": RESOURCE, "change_type": "updated,deleted", "tenant_id": TENANT,
                "client_id": CLIENT_ID, "client_secret": SECRET},
        },
    })
}

fn time(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().unwrap_or_else(|| panic!("not a time: {v}"))).unwrap().with_timezone(&Utc)
}

/// Creates the connection and waits for the upkeep's first subscription.
async fn created(server: &TestServer) -> (String, Value) {
    let c = server.create(graph_connection()).await;
    let id = c["id"].as_str().unwrap().to_owned();
    // The outcome is recorded just after the subscription: wait for both.
    let c = server
        .wait_for(&id, "a subscription", TRIES, POLL, |c| {
            !c["subscription"]["external_id"].is_null() && !c["subscription"]["upkeep"]["last_success_at"].is_null()
        })
        .await;
    (id, c)
}

/// POSTs a Graph lifecycle notification to the connection's lifecycle URL.
async fn lifecycle(server: &TestServer, connection: &Value, event: &str) {
    let subscription = connection["subscription"]["external_id"].as_str().unwrap();
    let body = json!({"value": [{
        "subscriptionId": subscription,
        "subscriptionExpirationDateTime": connection["subscription"]["expires_at"],
        "tenantId": TENANT,
        "clientState": CLIENT_STATE,
        "lifecycleEvent": event,
        "resource": RESOURCE,
        "resourceData": {"@odata.type": "#Microsoft.Graph.subscription", "id": subscription},
    }]});
    let url = format!("{}/lifecycle", connection["push_url"].as_str().unwrap());
    let answer = server.client.post(url).json(&body).send().await.unwrap();
    let status = answer.status();
    assert_eq!(status, 202, "lifecycle {event}: {}", answer.text().await.unwrap_or_default());
}

fn status(c: &Value) -> (&str, Option<&str>) {
    (c["status"].as_str().unwrap(), c["status_message"].as_str())
}

async fn upkeep_creates_a_validated_subscription(backend: Backend) {
    let fake = FakeGraph::start(CLIENT_ID, SECRET).await;
    let Some(server) = start(backend, "upkeep_creates_a_validated_subscription", &fake).await else { return };
    let (id, c) = created(&server).await;

    let held = fake.subscriptions();
    assert_eq!(held.len(), 1);
    assert_eq!(c["subscription"]["external_id"], held[0].id.as_str());
    assert!(!c["subscription"]["confirmed_at"].is_null(), "validated: {c}");
    // The default lifetime: 4230 minutes.
    let expires = time(&c["subscription"]["expires_at"]);
    assert!(expires > Utc::now() + chrono::Duration::minutes(4200) && expires <= Utc::now() + chrono::Duration::minutes(4230), "{c}");
    assert_eq!(status(&c), ("connected", None), "{c}");
    assert!(!c["subscription"]["upkeep"]["last_success_at"].is_null(), "{c}");
    assert!(c["subscription"]["upkeep"]["last_error"].is_null(), "{c}");
    assert_eq!(c["config"]["subscription"]["client_secret"], "***");

    let body = &held[0].body;
    let push_url = c["push_url"].as_str().unwrap();
    assert_eq!(body["notificationUrl"], push_url);
    assert_eq!(body["lifecycleNotificationUrl"], format!("{push_url}/lifecycle"));
    assert_eq!((body["resource"].as_str(), body["changeType"].as_str()), (Some(RESOURCE), Some("updated,deleted")));
    assert_eq!(body["clientState"], CLIENT_STATE);
    assert!(body.get("includeResourceData").is_none(), "no certificate, no rich notifications: {body}");
    let token = fake.requests().into_iter().find(|r| r.path.ends_with("/oauth2/v2.0/token")).unwrap();
    assert_eq!(token.path, format!("/login/{TENANT}/oauth2/v2.0/token"));
    let form: std::collections::HashMap<String, String> = url::form_urlencoded::parse(token.body.as_bytes()).into_owned().collect();
    assert_eq!(form["grant_type"], "client_credentials");
    assert_eq!(form["scope"], "https://graph.microsoft.com/.default");
    assert_eq!(form["client_id"], CLIENT_ID);

    // Several passes later, nothing more was needed: no second subscription, no renewal,
    // and the token was reused.
    server.upkeep_passes(5).await;
    assert_eq!((fake.count("POST", "/subscriptions"), fake.count("PATCH", "")), (1, 0), "{:?}", fake.requests());
    assert_eq!(fake.count("POST", "/token"), 1);
    assert_eq!(status(&server.connection(&id).await), ("connected", None));
    server.stop().await;
}

async fn short_lived_subscriptions_are_renewed(backend: Backend) {
    let fake = FakeGraph::start(CLIENT_ID, SECRET).await;
    fake.grant_at_most(60);
    let Some(server) = start(backend, "short_lived_subscriptions_are_renewed", &fake).await else { return };
    let (id, c) = created(&server).await;
    let subscription = c["subscription"]["external_id"].as_str().unwrap().to_owned();
    let first = time(&c["subscription"]["expires_at"]);
    assert!(first <= Utc::now() + chrono::Duration::seconds(60), "Graph granted a minute: {c}");

    // A minute is less than half the lifetime asked for: every pass renews.
    let c = server.wait_for(&id, "a later expiry", TRIES, POLL, |c| time(&c["subscription"]["expires_at"]) > first).await;
    assert!(fake.count("PATCH", &format!("/subscriptions/{subscription}")) >= 1, "{:?}", fake.requests());
    let patch = fake.requests().into_iter().find(|r| r.method == "PATCH").unwrap();
    let asked: Value = serde_json::from_str(&patch.body).unwrap();
    assert!(asked["expirationDateTime"].is_string(), "{asked}");
    assert_eq!(c["subscription"]["external_id"], subscription.as_str(), "the same subscription, renewed");
    assert_eq!(fake.count("POST", "/subscriptions"), 1);
    assert_eq!(status(&c), ("connected", None));
    server.stop().await;
}

async fn reauthorization_required_is_answered_by_the_upkeep(backend: Backend) {
    let fake = FakeGraph::start(CLIENT_ID, SECRET).await;
    let Some(server) = start(backend, "reauthorization_required_is_answered_by_the_upkeep", &fake).await else { return };
    let (id, c) = created(&server).await;
    let subscription = c["subscription"]["external_id"].as_str().unwrap().to_owned();

    // While Graph refuses, the request stays visible.
    fake.refuse(true);
    lifecycle(&server, &c, "reauthorizationRequired").await;
    let c =
        server.wait_for(&id, "the reauthorization failure", TRIES, POLL, |c| !c["subscription"]["upkeep"]["last_error"].is_null()).await;
    assert_eq!(status(&c), ("requires_action", Some("Reauthorization required")), "{c}");
    assert!(!c["subscription"]["reauthorization_required_at"].is_null());
    let error = c["subscription"]["upkeep"]["last_error"].as_str().unwrap();
    assert!(error.contains("reauthorize subscription") && error.contains("403") && error.contains("ExtensionError"), "{error}");

    fake.refuse(false);
    let c = server.wait_for(&id, "the reauthorization", TRIES, POLL, |c| c["status"] == "connected").await;
    assert!(c["subscription"]["reauthorization_required_at"].is_null(), "{c}");
    assert_eq!(c["subscription"]["external_id"], subscription.as_str());
    let requests = fake.requests();
    let reauthorized =
        requests.iter().rposition(|r| r.method == "POST" && r.path == format!("/v1.0/subscriptions/{subscription}/reauthorize"));
    let renewed = requests.iter().rposition(|r| r.method == "PATCH" && r.path == format!("/v1.0/subscriptions/{subscription}"));
    assert!(matches!((reauthorized, renewed), (Some(a), Some(r)) if a < r), "reauthorize, then renew: {requests:?}");
    server.stop().await;
}

async fn a_removed_subscription_is_created_again(backend: Backend) {
    let fake = FakeGraph::start(CLIENT_ID, SECRET).await;
    let Some(server) = start(backend, "a_removed_subscription_is_created_again", &fake).await else { return };
    let (id, c) = created(&server).await;
    let first = c["subscription"]["external_id"].as_str().unwrap().to_owned();

    fake.refuse(true);
    fake.vanish();
    lifecycle(&server, &c, "subscriptionRemoved").await;
    let c = server.wait_for(&id, "the loss", TRIES, POLL, |c| c["status"] == "error").await;
    assert_eq!(status(&c), ("error", Some("Subscription is missing")), "{c}");

    fake.refuse(false);
    let c = server
        .wait_for(&id, "a new subscription", TRIES, POLL, |c| c["subscription"]["external_id"].as_str() != Some(first.as_str()))
        .await;
    let c =
        if c["status"] == "connected" { c } else { server.wait_for(&id, "connected", TRIES, POLL, |c| c["status"] == "connected").await };
    assert_eq!(status(&c), ("connected", None), "{c}");
    let held = fake.subscriptions();
    assert_eq!(held.len(), 1);
    assert_eq!(c["subscription"]["external_id"], held[0].id.as_str());
    server.stop().await;
}

async fn a_vanished_subscription_is_created_again(backend: Backend) {
    let fake = FakeGraph::start(CLIENT_ID, SECRET).await;
    fake.grant_at_most(60);
    let Some(server) = start(backend, "a_vanished_subscription_is_created_again", &fake).await else { return };
    let (id, c) = created(&server).await;
    let first = c["subscription"]["external_id"].as_str().unwrap().to_owned();

    // Graph forgot it without a lifecycle notification: the next renewal answers 404.
    fake.vanish();
    let c = server
        .wait_for(&id, "a new subscription", TRIES, POLL, |c| c["subscription"]["external_id"].as_str() != Some(first.as_str()))
        .await;
    assert!(fake.count("PATCH", &format!("/subscriptions/{first}")) >= 1);
    assert!(fake.count("POST", "/subscriptions") >= 2);
    assert_eq!(status(&c), ("connected", None), "{c}");
    assert!(c["subscription"]["upkeep"]["last_error"].is_null(), "a 404 is handled, not a failure: {c}");
    server.stop().await;
}

async fn refused_renewals_let_the_subscription_expire(backend: Backend) {
    let fake = FakeGraph::start(CLIENT_ID, SECRET).await;
    fake.grant_at_most(3);
    let Some(server) = start(backend, "refused_renewals_let_the_subscription_expire", &fake).await else { return };
    let (id, _) = created(&server).await;

    fake.refuse(true);
    let c = server.wait_for(&id, "the expiry", TRIES, POLL, |c| c["status"] == "error").await;
    assert_eq!(status(&c), ("error", Some("Subscription is missing")), "{c}");
    assert!(time(&c["subscription"]["expires_at"]) <= Utc::now());
    let c = server
        .wait_for(&id, "the refused create", TRIES, POLL, |c| {
            c["subscription"]["upkeep"]["last_error"].as_str().is_some_and(|e| e.starts_with("create subscription"))
        })
        .await;
    let error = c["subscription"]["upkeep"]["last_error"].as_str().unwrap();
    assert!(error.contains("403 ExtensionError") && error.contains("Insufficient privileges"), "{error}");
    assert!(!c["subscription"]["upkeep"]["last_error_at"].is_null());
    server.stop().await;
}

async fn token_failures_are_shown_without_the_secret(backend: Backend) {
    let fake = FakeGraph::start(CLIENT_ID, SECRET).await;
    // The fake's refusal quotes the secret it was sent, so a leak anywhere would show.
    fake.fail_tokens(true);
    let Some(server) = start(backend, "token_failures_are_shown_without_the_secret", &fake).await else { return };
    let c = server.create(graph_connection()).await;
    let id = c["id"].as_str().unwrap().to_owned();
    let c = server.wait_for(&id, "the token failure", TRIES, POLL, |c| !c["subscription"]["upkeep"]["last_error"].is_null()).await;
    let error = c["subscription"]["upkeep"]["last_error"].as_str().unwrap();
    assert!(error.contains("invalid_client") && error.contains("AADSTS7000215") && error.contains(TENANT), "{error}");
    assert_eq!(status(&c), ("requires_action", Some("Awaiting subscription")), "{c}");
    assert_eq!(fake.count("POST", "/subscriptions"), 0);

    let views = [
        server.connection(&id).await.to_string(),
        server.get_json("/v1/connections").await.to_string(),
        server.get_json(&format!("/v1/connections/{id}/rejections")).await.to_string(),
        server.get_json("/v1/health").await.to_string(),
    ];
    for view in views {
        assert!(!view.contains(SECRET), "the secret leaked: {view}");
    }
    let logs = captured_logs();
    assert!(logs.contains("Graph subscription upkeep failed") && logs.contains("AADSTS7000215"), "logs are captured");
    assert!(!logs.contains(SECRET), "the secret reached the log");

    fake.fail_tokens(false);
    let c = server.wait_for(&id, "a success", TRIES, POLL, |c| !c["subscription"]["upkeep"]["last_success_at"].is_null()).await;
    assert!(!c["subscription"]["external_id"].is_null());
    assert!(
        c["subscription"]["upkeep"]["last_error"].as_str().is_some_and(|e| e.contains("invalid_client")),
        "the failure stays visible: {c}"
    );
    assert!(!c.to_string().contains(SECRET));
    server.stop().await;
}

async fn a_certificate_asks_for_rich_notifications(backend: Backend) {
    let fake = FakeGraph::start(CLIENT_ID, SECRET).await;
    let Some(server) = start(backend, "a_certificate_asks_for_rich_notifications", &fake).await else { return };
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/ms-graph/encrypted-content");
    let cert = std::fs::read_to_string(format!("{dir}/richnotificationsapp.cert.pem")).unwrap();
    let key = std::fs::read_to_string(format!("{dir}/richnotificationsapp.key.pem")).unwrap();
    let mut body = graph_connection();
    body["config"]["encryption_keys"] = json!([{"id": "rich-key-1", "private_key_pem": key, "certificate_pem": cert}]);
    body["config"]["app_ids"] = json!([CLIENT_ID]);
    let c = server.create(body).await;
    let id = c["id"].as_str().unwrap();
    server.wait_for(id, "a subscription", TRIES, POLL, |c| !c["subscription"]["external_id"].is_null()).await;

    let asked = &fake.subscriptions()[0].body;
    assert_eq!(asked["includeResourceData"], true);
    assert_eq!(asked["encryptionCertificateId"], "rich-key-1");
    // Base64 of the DER: the PEM body without its armour and line breaks.
    let der_base64: String = cert.lines().filter(|l| !l.starts_with("-----")).collect::<Vec<_>>().concat();
    assert_eq!(asked["encryptionCertificate"], der_base64.as_str());
    server.stop().await;
}

/// Every log line of this test binary (pushgate at debug), kept to look for the secret.
fn log_buffer() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(Arc::default)
}

struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        log_buffer().lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("warn,pushgate=debug"))
            .with_writer(|| LogWriter)
            .with_ansi(false)
            .try_init();
    });
}

fn captured_logs() -> String {
    String::from_utf8_lossy(&log_buffer().lock().unwrap()).into_owned()
}

async fn the_upkeep_acts_at_once_on_a_new_connection_and_a_lifecycle_notification(backend: Backend) {
    let fake = FakeGraph::start(CLIENT_ID, SECRET).await;
    // An hour between passes: whatever happens within the test was started by a nudge.
    let Some(server) = TestServer::builder(backend, "the_upkeep_acts_at_once")
        .envs(fake.env())
        .with_options(|o| o.graph_upkeep_interval = Some(Duration::from_secs(3600)))
        .start()
        .await
    else {
        return;
    };
    common::wait_for_passes(&server.graph_upkeep, "the pass at start, which finds nothing", 1).await;
    let (id, c) = created(&server).await;
    let subscription = c["subscription"]["external_id"].as_str().unwrap().to_owned();
    lifecycle(&server, &c, "reauthorizationRequired").await;
    let c = server.wait_for(&id, "the reauthorization", TRIES, POLL, |c| c["subscription"]["reauthorization_required_at"].is_null()).await;
    assert_eq!(status(&c), ("connected", None));
    assert_eq!(fake.count("POST", &format!("/subscriptions/{subscription}/reauthorize")), 1);
    server.stop().await;
}

/// Polls the fake Graph until `done` holds; panics after [`TRIES`] polls.
async fn wait_for_graph(fake: &FakeGraph, what: &str, done: impl Fn(&FakeGraph) -> bool) {
    for _ in 0..TRIES {
        if done(fake) {
            return;
        }
        tokio::time::sleep(POLL).await;
    }
    panic!("timed out waiting for {what}: {:?}", fake.requests());
}

async fn changed_settings_replace_the_subscription(backend: Backend) {
    let fake = FakeGraph::start(CLIENT_ID, SECRET).await;
    let Some(server) = start(backend, "changed_settings_replace_the_subscription", &fake).await else { return };
    let (id, c) = created(&server).await;
    let first = c["subscription"]["external_id"].as_str().unwrap().to_owned();

    // The admin rotates the client state: notifications of the old subscription would
    // carry the old one and be refused.
    let mut config = graph_connection()["config"].clone();
    config["client_state"] = json!("rotated-client-state-43");
    let answer =
        server.admin(reqwest::Method::PATCH, &format!("/v1/connections/{id}")).json(&json!({"config": config})).send().await.unwrap();
    assert_eq!(answer.status(), 200, "{}", answer.text().await.unwrap_or_default());
    let c = server
        .wait_for(&id, "a new subscription", TRIES, POLL, |c| c["subscription"]["external_id"].as_str() != Some(first.as_str()))
        .await;
    wait_for_graph(&fake, "the old subscription's deletion", |f| f.count("DELETE", &format!("/subscriptions/{first}")) == 1).await;
    let held = fake.subscriptions();
    assert_eq!(held.len(), 1, "the old one is gone: {held:?}");
    assert_eq!(c["subscription"]["external_id"], held[0].id.as_str());
    assert_eq!(held[0].body["clientState"], "rotated-client-state-43");
    assert_eq!(status(&c), ("connected", None), "{c}");

    // The new settings are recorded: later passes leave the new subscription alone.
    server.upkeep_passes(5).await;
    assert_eq!(fake.count("POST", "/subscriptions"), 2, "{:?}", fake.requests());
    assert_eq!(fake.count("DELETE", ""), 1);

    // A new resource is a new subscription too; a rotated secret alone is not.
    let mut config = config.clone();
    config["subscription"]["resource"] = json!("groups");
    let answer =
        server.admin(reqwest::Method::PATCH, &format!("/v1/connections/{id}")).json(&json!({"config": config})).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    wait_for_graph(&fake, "the second replacement", |f| f.count("DELETE", "") == 2 && f.subscriptions().len() == 1).await;
    assert_eq!(fake.subscriptions()[0].body["resource"], "groups");
    server.stop().await;
}

async fn a_deleted_connection_deletes_its_subscription(backend: Backend) {
    let fake = FakeGraph::start(CLIENT_ID, SECRET).await;
    let Some(server) = start(backend, "a_deleted_connection_deletes_its_subscription", &fake).await else { return };
    let (id, c) = created(&server).await;
    let subscription = c["subscription"]["external_id"].as_str().unwrap().to_owned();

    let answer = server.admin(reqwest::Method::DELETE, &format!("/v1/connections/{id}")).send().await.unwrap();
    assert_eq!(answer.status(), 204);
    wait_for_graph(&fake, "the subscription's deletion", |f| f.count("DELETE", &format!("/subscriptions/{subscription}")) == 1).await;
    assert!(fake.subscriptions().is_empty(), "{:?}", fake.subscriptions());
    server.upkeep_passes(3).await;
    assert_eq!(fake.count("POST", "/subscriptions"), 1, "no new subscription for a deleted connection");
    server.stop().await;
}
