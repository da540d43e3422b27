//! Graph subscription upkeep end to end, on SQLite and PostgreSQL: a real pushgate server
//! keeps subscriptions alive at a fake Graph (`common/fake_graph.rs`) that validates the
//! push URLs the way Graph does, by POSTing a `validationToken` to them before it creates
//! a subscription. Lifecycle notifications are POSTed to the connection's
//! `/lifecycle` URL as Graph would send them. The statuses the upkeep's refusals lead to
//! (`Unable to read API Endpoint`, `Subscription validation failed`) and Graph's `missed`
//! reports are followed into the status history and to an alert webhook.

mod common;
#[path = "common/fake_graph.rs"]
mod fake_graph;

use std::sync::{Arc, Mutex};
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
    an_unavailable_graph_lets_the_subscription_expire,
    a_refused_client_secret_is_unable_to_read_the_api,
    a_failed_validation_is_reported_until_a_create_succeeds,
    a_subscription_changed_at_graph_fails_validation_until_replaced,
    a_missed_report_is_in_the_history_and_alerted,
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
    common::logs::capture();
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

    // While Graph refuses, the request stays visible. A refusal for want of permission
    // comes first in the status (INTERFACE.md section 3, row 2 before row 6). A pass
    // may read the subscription and be refused before the notification arrives: the
    // reauthorization's own refusal is the one waited for.
    fake.refuse(true);
    lifecycle(&server, &c, "reauthorizationRequired").await;
    let c = server
        .wait_for(&id, "the reauthorization failure", TRIES, POLL, |c| {
            c["subscription"]["upkeep"]["last_error"].as_str().is_some_and(|e| e.starts_with("reauthorize subscription"))
        })
        .await;
    assert_eq!(status(&c), ("error", Some("Unable to read API Endpoint")), "{c}");
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

    // Graph unavailable holds the upkeep off, with a failure that says nothing about the
    // connection (a 403 would: `Unable to read API Endpoint`).
    fake.unavailable(true);
    fake.vanish();
    lifecycle(&server, &c, "subscriptionRemoved").await;
    let c = server.wait_for(&id, "the loss", TRIES, POLL, |c| c["status"] == "error").await;
    assert_eq!(status(&c), ("error", Some("Subscription is missing")), "{c}");

    fake.unavailable(false);
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

    // Refused for want of permission: that is what the status says, before and after the
    // expiry (INTERFACE.md section 3, row 2 before row 4).
    fake.refuse(true);
    let c = server
        .wait_for(&id, "the expiry", TRIES, POLL, |c| c["status"] == "error" && time(&c["subscription"]["expires_at"]) <= Utc::now())
        .await;
    assert_eq!(status(&c), ("error", Some("Unable to read API Endpoint")), "{c}");
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
    assert_eq!(status(&c), ("error", Some("Unable to read API Endpoint")), "{c}");
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
    let logs = common::logs::captured();
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

/// An alert webhook on 127.0.0.1 that keeps every alert it is sent.
struct AlertHook {
    url: String,
    received: Arc<Mutex<Vec<Value>>>,
}

const ALERT_SECRET: &str = "upkeep-alert-secret";

impl AlertHook {
    async fn start() -> AlertHook {
        let received: Arc<Mutex<Vec<Value>>> = Arc::default();
        let kept = received.clone();
        let app = axum::Router::new().route(
            "/alerts",
            axum::routing::post(move |body: axum::body::Bytes| {
                let kept = kept.clone();
                async move {
                    kept.lock().unwrap().push(serde_json::from_slice(&body).unwrap_or_default());
                    "ok"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/alerts", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        AlertHook { url, received }
    }

    /// The alerts about connection `id`, in the order they came.
    fn of(&self, id: &str) -> Vec<Value> {
        self.received.lock().unwrap().iter().filter(|a| a["connection_id"] == id).cloned().collect()
    }

    /// Waits until an alert about `id` with `message` has come; panics after 10 s.
    async fn wait_for(&self, id: &str, message: &str) {
        common::eventually(&format!("the alert {message:?}"), Duration::from_secs(10), async || {
            self.of(id).iter().any(|a| a["message"] == message).then_some(())
        })
        .await
    }

    /// How many alerts about `id` carry `message`.
    fn count(&self, id: &str, message: &str) -> usize {
        self.of(id).iter().filter(|a| a["message"] == message).count()
    }
}

/// A server whose upkeep talks to `fake` and whose alerts go to `hook`, its monitor
/// running every `monitor_ms`.
async fn start_watched(backend: Backend, test: &str, fake: &FakeGraph, hook: &AlertHook, monitor_ms: u64) -> Option<TestServer> {
    common::logs::capture();
    let monitor = monitor_ms.to_string();
    TestServer::builder(backend, test)
        .envs(fake.env())
        .env("PUSHGATE_ALERT_WEBHOOK_URL", &hook.url)
        .env("PUSHGATE_ALERT_WEBHOOK_SECRET", ALERT_SECRET)
        .env("PUSHGATE_MONITOR_INTERVAL_MS", &monitor)
        .with_options(|o| o.graph_upkeep_interval = Some(INTERVAL))
        .start()
        .await
}

/// The monitor of the tests whose statuses the upkeep records itself: a pass at start,
/// then none within the test.
const MONITOR_IDLE_MS: u64 = 3_600_000;

/// The status history as (old, new, message).
async fn history(server: &TestServer, id: &str) -> Vec<(Option<String>, String, Option<String>)> {
    server.history(id).await
}

/// How many history entries carry `message`.
async fn entered(server: &TestServer, id: &str, message: &str) -> usize {
    history(server, id).await.iter().filter(|(_, _, m)| m.as_deref() == Some(message)).count()
}

/// The connection as `/v1/health` and the dashboard show it while it is in error with
/// `message`.
async fn shown_as_a_problem(server: &TestServer, id: &str, message: &str) {
    let health = server.get_json("/v1/health").await;
    let problem = health["problems"].as_array().unwrap().iter().find(|p| p["id"] == id).cloned();
    let problem = problem.unwrap_or_else(|| panic!("not among the problems: {health}"));
    assert_eq!(status(&problem), ("error", Some(message)), "{health}");
    assert!(health["by_tenant"]["acme"]["error"].as_u64() >= Some(1), "{health}");
    let page = server.admin(reqwest::Method::GET, "/").send().await.unwrap().text().await.unwrap();
    assert!(page.contains(message) && page.contains(r#"<span class="status status-error">error</span>"#), "{page}");
}

async fn an_unavailable_graph_lets_the_subscription_expire(backend: Backend) {
    let fake = FakeGraph::start(CLIENT_ID, SECRET).await;
    fake.grant_at_most(3);
    let Some(server) = start(backend, "an_unavailable_graph_lets_the_subscription_expire", &fake).await else { return };
    let (id, _) = created(&server).await;

    // A failure that says nothing about the connection changes no status: the
    // subscription runs out.
    fake.unavailable(true);
    let c = server.wait_for(&id, "the expiry", TRIES, POLL, |c| c["status"] == "error").await;
    assert_eq!(status(&c), ("error", Some("Subscription is missing")), "{c}");
    assert!(time(&c["subscription"]["expires_at"]) <= Utc::now());
    let error = c["subscription"]["upkeep"]["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("503 serviceNotAvailable"), "{c}");
    assert!(c["subscription"]["upkeep"]["failing_since"].is_null(), "no failure class: {c}");

    fake.unavailable(false);
    let c = server.wait_for(&id, "a new subscription", TRIES, POLL, |c| c["status"] == "connected").await;
    assert!(time(&c["subscription"]["expires_at"]) > Utc::now(), "{c}");
    server.stop().await;
}

/// The upkeep failure's class, start and text as the `connection_health` view has them.
async fn view_upkeep_failure(database_url: &str, id: &str) -> (Option<String>, Option<String>, Option<String>) {
    use sqlx::Connection;
    if database_url.starts_with("postgres") {
        let sql = "SELECT upkeep_failure, upkeep_failing_since::text, upkeep_last_error FROM connection_health WHERE id = $1";
        let mut db = sqlx::PgConnection::connect(database_url).await.unwrap();
        sqlx::query_as(sql).bind(id).fetch_one(&mut db).await.unwrap()
    } else {
        let sql = "SELECT upkeep_failure, upkeep_failing_since, upkeep_last_error FROM connection_health WHERE id = $1";
        let mut db = sqlx::SqliteConnection::connect(database_url).await.unwrap();
        sqlx::query_as(sql).bind(id).fetch_one(&mut db).await.unwrap()
    }
}

async fn a_refused_client_secret_is_unable_to_read_the_api(backend: Backend) {
    let fake = FakeGraph::start(CLIENT_ID, SECRET).await;
    let hook = AlertHook::start().await;
    fake.fail_tokens(true);
    let Some(server) = start_watched(backend, "a_refused_client_secret_is_unable_to_read_the_api", &fake, &hook, MONITOR_IDLE_MS).await
    else {
        return;
    };
    let c = server.create(graph_connection()).await;
    let id = c["id"].as_str().unwrap().to_owned();
    let c = server.wait_for(&id, "the refusal", TRIES, POLL, |c| c["status"] == "error").await;
    assert_eq!(status(&c), ("error", Some("Unable to read API Endpoint")), "{c}");
    let upkeep = &c["subscription"]["upkeep"];
    let error = upkeep["last_error"].as_str().unwrap();
    assert!(error.starts_with("token request") && error.contains("401 invalid_client") && error.contains("AADSTS7000215"), "{error}");
    assert!(!upkeep["failing_since"].is_null(), "{c}");
    shown_as_a_problem(&server, &id, "Unable to read API Endpoint").await;
    hook.wait_for(&id, "Unable to read API Endpoint").await;
    let (failure, since, last_error) = view_upkeep_failure(&server.database_url, &id).await;
    assert_eq!(failure.as_deref(), Some("credentials"), "the SQL view names the class");
    assert!(since.is_some(), "and since when");
    assert_eq!(last_error.as_deref(), Some(error), "and Graph's error, as the API has it");

    // Refused again on every retry: still one transition.
    let before = fake.count("POST", "/token");
    common::eventually("two more refused token requests", Duration::from_secs(10), async || {
        (fake.count("POST", "/token") >= before + 2).then_some(())
    })
    .await;
    assert_eq!(entered(&server, &id, "Unable to read API Endpoint").await, 1, "{:?}", history(&server, &id).await);

    // A success clears it: the secret is accepted again.
    fake.fail_tokens(false);
    let c = server.wait_for(&id, "the subscription", TRIES, POLL, |c| c["status"] == "connected").await;
    assert!(!c["subscription"]["external_id"].is_null(), "{c}");
    assert!(c["subscription"]["upkeep"]["failing_since"].is_null(), "{c}");
    assert!(c["subscription"]["upkeep"]["last_error"].as_str().is_some_and(|e| e.contains("invalid_client")), "kept visible: {c}");
    // The transition is recorded just after the success the read above evaluated.
    recovered(&server, &hook, &id).await;
    let history = history(&server, &id).await;
    assert_eq!(history.iter().filter(|(_, _, m)| m.as_deref() == Some("Unable to read API Endpoint")).count(), 1, "{history:?}");
    assert_eq!(hook.count(&id, "Unable to read API Endpoint"), 1, "{:?}", hook.of(&id));
    let alert = hook.of(&id).into_iter().find(|a| a["message"] == "Unable to read API Endpoint").unwrap();
    assert_eq!((alert["new_status"].as_str(), alert["tenant_id"].as_str()), (Some("error"), Some("acme")), "{alert}");
    assert!(!hook.of(&id).iter().any(|a| a.to_string().contains(SECRET)), "the secret reached an alert");
    server.stop().await;
}

/// Waits until the history ends with the recovery `error` → `connected` and its alert has
/// come; panics after 10 s.
async fn recovered(server: &TestServer, hook: &AlertHook, id: &str) {
    let recovery = (Some("error".to_owned()), "connected".to_owned(), None);
    common::eventually("the recovery in the history", Duration::from_secs(10), async || {
        (history(server, id).await.last() == Some(&recovery)).then_some(())
    })
    .await;
    let alerts = hook.received.clone();
    common::eventually("the alert of the recovery", Duration::from_secs(10), async || {
        let recovered = alerts.lock().unwrap().iter().rfind(|a| a["connection_id"] == id).cloned();
        recovered.filter(|a| a["new_status"] == "connected" && a["old_status"] == "error").map(|_| ())
    })
    .await;
}

async fn a_failed_validation_is_reported_until_a_create_succeeds(backend: Backend) {
    let fake = FakeGraph::start(CLIENT_ID, SECRET).await;
    let hook = AlertHook::start().await;
    fake.fail_validation(true);
    let test = "a_failed_validation_is_reported_until_a_create_succeeds";
    let Some(server) = start_watched(backend, test, &fake, &hook, MONITOR_IDLE_MS).await else { return };
    let c = server.create(graph_connection()).await;
    let id = c["id"].as_str().unwrap().to_owned();
    let c = server.wait_for(&id, "the refusal", TRIES, POLL, |c| c["status"] == "error").await;
    assert_eq!(status(&c), ("error", Some("Subscription validation failed")), "{c}");
    let error = c["subscription"]["upkeep"]["last_error"].as_str().unwrap();
    assert!(
        error.starts_with("create subscription: Graph answered 400 ValidationError: Subscription validation request failed"),
        "{error}"
    );
    assert!(!c["subscription"]["upkeep"]["failing_since"].is_null(), "{c}");
    assert!(fake.subscriptions().is_empty());
    shown_as_a_problem(&server, &id, "Subscription validation failed").await;
    hook.wait_for(&id, "Subscription validation failed").await;

    fake.fail_validation(false);
    let c = server.wait_for(&id, "the subscription", TRIES, POLL, |c| c["status"] == "connected").await;
    assert_eq!(c["subscription"]["external_id"], fake.subscriptions()[0].id.as_str());
    recovered(&server, &hook, &id).await;
    assert_eq!(entered(&server, &id, "Subscription validation failed").await, 1, "{:?}", history(&server, &id).await);
    assert_eq!(hook.count(&id, "Subscription validation failed"), 1, "{:?}", hook.of(&id));
    server.stop().await;
}

async fn a_subscription_changed_at_graph_fails_validation_until_replaced(backend: Backend) {
    let fake = FakeGraph::start(CLIENT_ID, SECRET).await;
    let hook = AlertHook::start().await;
    let test = "a_subscription_changed_at_graph_fails_validation_until_replaced";
    let Some(server) = start_watched(backend, test, &fake, &hook, MONITOR_IDLE_MS).await else { return };
    let (id, _) = created(&server).await;

    // Changed on Graph's side (as an Update can change `notificationUrl`), or gone without
    // a lifecycle notification: found by the read of the next pass. Each: what changed,
    // the field set to a value (none: deleted), and the cause `last_error` must name.
    type Tampering<'a> = Option<(&'a str, &'a str)>;
    let changes: [(&str, Tampering, &str); 4] = [
        (
            "another notificationUrl",
            Some(("notificationUrl", "https://elsewhere.example/hook")),
            "notificationUrl is \"https://elsewhere.example/hook\"",
        ),
        ("another resource", Some(("resource", "groups")), "resource is \"groups\""),
        ("another changeType", Some(("changeType", "created")), "changeType is \"created\""),
        ("deleted", None, "get subscription: Graph answered 404 ResourceNotFound"),
    ];
    for (n, (what, tampering, cause)) in changes.into_iter().enumerate() {
        let before = server.connection(&id).await["subscription"]["external_id"].as_str().unwrap().to_owned();
        match tampering {
            Some((field, value)) => fake.tamper(field, value),
            None => fake.vanish(),
        }
        let c = server
            .wait_for(&id, &format!("the replacement of the subscription with {what}"), TRIES, POLL, |c| {
                c["subscription"]["external_id"].as_str() != Some(before.as_str()) && c["status"] == "connected"
            })
            .await;
        let error = c["subscription"]["upkeep"]["last_error"].as_str().unwrap_or_default();
        assert!(error.contains(cause), "{what}: the cause is kept: {c}");
        assert!(c["subscription"]["upkeep"]["failing_since"].is_null(), "{what}: replaced, so cleared: {c}");
        recovered(&server, &hook, &id).await;
        wait_for_graph(&fake, "the old subscription's deletion", |f| f.subscriptions().len() == 1).await;
        let held = fake.subscriptions();
        assert_eq!(c["subscription"]["external_id"], held[0].id.as_str(), "{what}");
        assert_eq!(held[0].body["notificationUrl"], c["push_url"], "{what}: a subscription that matches");
        assert_eq!((held[0].body["resource"].as_str(), held[0].body["changeType"].as_str()), (Some(RESOURCE), Some("updated,deleted")));
        let failed = entered(&server, &id, "Subscription validation failed").await;
        assert_eq!(failed, n + 1, "{what}: once each: {:?}", history(&server, &id).await);
    }

    // In the history and the alerts, each time: failed, then connected again.
    let history = history(&server, &id).await;
    let after_creation: Vec<_> = history.iter().skip_while(|(_, new, _)| new != "connected").skip(1).cloned().collect();
    let failed = (Some("connected".to_owned()), "error".to_owned(), Some("Subscription validation failed".to_owned()));
    let recovery = (Some("error".to_owned()), "connected".to_owned(), None);
    assert_eq!(
        after_creation,
        [failed.clone(), recovery.clone(), failed.clone(), recovery.clone(), failed.clone(), recovery.clone(), failed, recovery],
        "{history:?}"
    );
    assert_eq!(hook.count(&id, "Subscription validation failed"), 4, "{:?}", hook.of(&id));
    server.stop().await;
}

async fn a_missed_report_is_in_the_history_and_alerted(backend: Backend) {
    let fake = FakeGraph::start(CLIENT_ID, SECRET).await;
    let hook = AlertHook::start().await;
    let Some(server) = start_watched(backend, "a_missed_report_is_in_the_history_and_alerted", &fake, &hook, 100).await else { return };
    let (id, c) = created(&server).await;
    common::eventually("connected in the history", Duration::from_secs(10), async || {
        history(&server, &id).await.iter().any(|(_, new, _)| new == "connected").then_some(())
    })
    .await;

    lifecycle(&server, &c, "missed").await;
    hook.wait_for(&id, "Notifications were missed").await;
    let c = server.connection(&id).await;
    assert!(c["subscription"]["missed_at"].is_string(), "still shown on the connection: {c}");
    assert_eq!(status(&c), ("connected", None), "the status is unchanged: {c}");
    let history = history(&server, &id).await;
    let entry = history.iter().find(|(_, _, m)| m.as_deref() == Some("Notifications were missed")).cloned();
    assert_eq!(
        entry,
        Some((Some("connected".to_owned()), "connected".to_owned(), Some("Notifications were missed".to_owned()))),
        "{history:?}"
    );
    let alert = hook.of(&id).into_iter().find(|a| a["message"] == "Notifications were missed").unwrap();
    assert_eq!((alert["old_status"].as_str(), alert["new_status"].as_str()), (Some("connected"), Some("connected")), "{alert}");
    assert!(alert["at"].is_string());

    // Entered once: later passes and a replay of the same report add nothing.
    lifecycle(&server, &c, "missed").await;
    server.monitor_passes(3).await;
    assert_eq!(entered(&server, &id, "Notifications were missed").await, 1, "{:?}", self::history(&server, &id).await);
    assert_eq!(hook.count(&id, "Notifications were missed"), 1, "{:?}", hook.of(&id));
    server.stop().await;
}
