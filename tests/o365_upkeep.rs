//! Office 365 subscription upkeep end to end, on SQLite and PostgreSQL: a real pushgate
//! server keeps the Management Activity API subscriptions of an `o365_activity`
//! connection at a fake API (`common/fake_o365.rs`) that validates each webhook the way
//! Microsoft does, by POSTing a validation to the push URL before it takes a start. What
//! Microsoft may do to a subscription afterwards (disable its webhook, move it elsewhere)
//! is done to the fake, and the statuses that leads to are followed into the status
//! history and to an alert webhook (`common/receiver.rs`).

mod common;
#[path = "common/fake_o365.rs"]
// Not every switch of the fake is used here.
#[allow(dead_code)]
mod fake_o365;

use std::time::Duration;

use common::receiver::Receiver;
use common::{Backend, TestServer};
use fake_o365::FakeO365;
use serde_json::{json, Value};

on_both_backends_with!(
    creating_the_connection_starts_each_content_type,
    a_disabled_webhook_fails_validation_and_is_restarted,
    a_webhook_moved_elsewhere_fails_validation_and_is_moved_back,
    a_refused_secret_is_unable_to_read_the_api_until_patched,
    a_deleted_connection_stops_its_subscriptions,
    an_unavailable_api_changes_no_status,
    admin_changes_reach_microsoft_at_once,
);

const TENANT: &str = "41463f53-8812-40f4-890f-865bf6e35190";
const CLIENT_ID: &str = "1b4f1a70-5e2b-4c3a-9d1e-7a8b9c0d1e2f";
const SECRET: &str = "pushgate-o365-upkeep-secret-5d2e8b";
const WRONG_SECRET: &str = "pushgate-o365-wrong-secret-91c7aa";
const AUTH_ID: &str = "o365-upkeep-auth-id-3f9a";
const CONTENT_TYPES: [&str; 2] = ["Audit.Exchange", "Audit.General"];

/// A pass every 200 ms: polls below wait up to 10 s.
const INTERVAL: Duration = Duration::from_millis(200);
const POLL: Duration = Duration::from_millis(100);
const TRIES: u32 = 100;

/// A server whose upkeep talks to `fake` and whose alerts go to `alerts`. Its monitor makes
/// one pass at start, waited for here, and none within the test: every status recorded
/// later is the upkeep's, and a new connection's first entry has no old status.
async fn start(backend: Backend, test: &str, fake: &FakeO365, alerts: &Receiver) -> Option<TestServer> {
    start_every(backend, test, fake, alerts, INTERVAL).await
}

/// [`start`], with the upkeep's passes `interval` apart.
async fn start_every(backend: Backend, test: &str, fake: &FakeO365, alerts: &Receiver, interval: Duration) -> Option<TestServer> {
    common::logs::capture();
    let server = TestServer::builder(backend, test)
        .envs(fake.env())
        .env("PUSHGATE_ALERT_WEBHOOK_URL", &alerts.url)
        .env("PUSHGATE_ALERT_WEBHOOK_SECRET", "o365-alert-secret")
        .env("PUSHGATE_MONITOR_INTERVAL_MS", "3600000")
        .with_options(|o| o.o365_upkeep_interval = Some(interval))
        .start()
        .await?;
    common::wait_for_passes(&server.monitor, "the monitor's pass at start", 1).await;
    Some(server)
}

fn o365_connection(fake: &FakeO365, secret: &str) -> Value {
    json!({
        "tenant_id": "acme",
        "name": "M365 audit",
        "source": "o365_activity",
        "heartbeat_interval_seconds": null,
        "config": {
            "auth_id": AUTH_ID,
            "subscription": {"tenant_id": TENANT, "client_id": CLIENT_ID, "client_secret": secret,
                "content_types": CONTENT_TYPES, "endpoint": fake.endpoint()},
        },
    })
}

fn status(c: &Value) -> (&str, Option<&str>) {
    (c["status"].as_str().unwrap(), c["status_message"].as_str())
}

/// Creates the connection and waits until the upkeep's first success made it `connected`.
async fn connected(server: &TestServer, fake: &FakeO365) -> (String, Value) {
    let c = server.create(o365_connection(fake, SECRET)).await;
    let id = c["id"].as_str().unwrap().to_owned();
    let c = server
        .wait_for(&id, "the subscriptions", TRIES, POLL, |c| {
            c["status"] == "connected" && !c["subscription"]["upkeep"]["last_success_at"].is_null()
        })
        .await;
    (id, c)
}

type Entry = (Option<String>, String, Option<String>);

fn entry(old: Option<&str>, new: &str, message: Option<&str>) -> Entry {
    (old.map(str::to_owned), new.to_owned(), message.map(str::to_owned))
}

/// Waits until the history ends with `last`; panics after 10 s.
async fn history_ends_with(server: &TestServer, id: &str, last: &[Entry]) -> Vec<Entry> {
    common::eventually(&format!("the history ending with {last:?}"), Duration::from_secs(10), async || {
        let history = server.history(id).await;
        history.ends_with(last).then_some(history)
    })
    .await
}

/// The alerts about connection `id` the receiver got, in order.
fn alerts_of(alerts: &Receiver, id: &str) -> Vec<Value> {
    alerts.requests().iter().filter_map(|r| serde_json::from_slice::<Value>(&r.body).ok()).filter(|a| a["connection_id"] == id).collect()
}

/// Waits until an alert about `id` moving to `new_status` with `message` came.
async fn alerted(alerts: &Receiver, id: &str, new_status: &str, message: Option<&str>) -> Value {
    common::eventually(&format!("the alert {new_status} {message:?}"), Duration::from_secs(10), async || {
        alerts_of(alerts, id).into_iter().find(|a| a["new_status"] == new_status && a["message"].as_str() == message)
    })
    .await
}

async fn creating_the_connection_starts_each_content_type(backend: Backend) {
    let fake = FakeO365::start(CLIENT_ID, SECRET).await;
    let alerts = Receiver::start().await;
    let Some(server) = start(backend, "creating_the_connection_starts_each_content_type", &fake, &alerts).await else { return };
    let (id, c) = connected(&server, &fake).await;
    let push_url = c["push_url"].as_str().unwrap();

    // Each content type started with the push URL and the auth id; the fake took the
    // start only after pushgate answered its validation POST with 200.
    let held = fake.subscriptions(TENANT);
    let types: Vec<&str> = held.iter().map(|s| s["contentType"].as_str().unwrap()).collect();
    assert_eq!(types, CONTENT_TYPES, "{held:?}");
    for s in &held {
        assert_eq!((s["status"].as_str(), s["webhook"]["status"].as_str()), (Some("enabled"), Some("enabled")), "{s}");
        assert_eq!((s["webhook"]["address"].as_str(), s["webhook"]["authId"].as_str()), (Some(push_url), Some(AUTH_ID)), "{s}");
    }
    let starts: Vec<_> = fake.requests().into_iter().filter(|r| r.method == "POST" && r.path.ends_with("/subscriptions/start")).collect();
    assert_eq!(starts.len(), 2, "{starts:?}");
    for (start, content_type) in starts.iter().zip(CONTENT_TYPES) {
        assert_eq!(start.path, format!("/api/v1.0/{TENANT}/activity/feed/subscriptions/start"));
        assert!(start.query.contains(&format!("contentType={content_type}")) && start.query.contains(TENANT), "{start:?}");
    }
    // The validation is the first authenticated push: it confirmed the connection.
    assert!(!c["subscription"]["confirmed_at"].is_null(), "{c}");
    assert_eq!(status(&c), ("connected", None));
    assert!(c["subscription"]["upkeep"]["last_error"].is_null(), "{c}");
    assert!(c["subscription"]["upkeep"]["failing_since"].is_null(), "{c}");
    assert_eq!((c["config"]["auth_id"].as_str(), c["config"]["subscription"]["client_secret"].as_str()), (Some("***"), Some("***")));
    assert_eq!(server.events(&id).await.len(), 0, "a validation is not an event");

    // Later passes only list: nothing more to start, and the token is reused.
    let lists = fake.count("GET", "/subscriptions/list");
    server.o365_upkeep_passes(4).await;
    assert_eq!(fake.count("POST", "/subscriptions/start"), 2, "{:?}", fake.requests());
    assert!(fake.count("GET", "/subscriptions/list") >= lists + 3);
    assert_eq!(fake.count("POST", "/token"), 1);
    assert_eq!(status(&server.connection(&id).await), ("connected", None));
    assert_eq!(server.history(&id).await.last(), Some(&entry(None, "connected", None)));
    server.stop().await;
}

/// What Microsoft did to the subscription, the cause `last_error` must name, and the
/// test's name.
async fn fails_validation_and_is_mended(backend: Backend, test: &str, tamper: impl Fn(&FakeO365), cause: &str) {
    let fake = FakeO365::start(CLIENT_ID, SECRET).await;
    let alerts = Receiver::start().await;
    let Some(server) = start(backend, test, &fake, &alerts).await else { return };
    let (id, c) = connected(&server, &fake).await;
    history_ends_with(&server, &id, &[entry(None, "connected", None)]).await;

    tamper(&fake);
    // Found by the next pass's list, and restarted by the same pass.
    let failed = entry(Some("connected"), "error", Some("Subscription validation failed"));
    let recovered = entry(Some("error"), "connected", None);
    history_ends_with(&server, &id, &[failed, recovered]).await;
    let c2 = server.connection(&id).await;
    assert_eq!(status(&c2), ("connected", None), "{c2}");
    let error = c2["subscription"]["upkeep"]["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("Audit.Exchange: ") && error.contains(cause), "the cause is kept: {c2}");
    assert!(!error.contains("Audit.General"), "only what differs: {error}");
    assert!(c2["subscription"]["upkeep"]["failing_since"].is_null(), "restarted, so cleared: {c2}");
    let held = fake.subscriptions(TENANT);
    assert!(
        held.iter().all(|s| s["webhook"]["status"] == "enabled" && s["webhook"]["address"] == c["push_url"]),
        "restarted at the push URL: {held:?}"
    );
    assert_eq!(fake.count("POST", "/subscriptions/start"), 3, "only the one that failed: {:?}", fake.requests());

    let alert = alerted(&alerts, &id, "error", Some("Subscription validation failed")).await;
    assert_eq!((alert["old_status"].as_str(), alert["tenant_id"].as_str()), (Some("connected"), Some("acme")), "{alert}");
    alerted(&alerts, &id, "connected", None).await;

    // Mended: later passes find nothing more.
    server.o365_upkeep_passes(3).await;
    assert_eq!(fake.count("POST", "/subscriptions/start"), 3);
    let history = server.history(&id).await;
    assert_eq!(history.iter().filter(|(_, _, m)| m.as_deref() == Some("Subscription validation failed")).count(), 1, "{history:?}");
    server.stop().await;
}

async fn a_disabled_webhook_fails_validation_and_is_restarted(backend: Backend) {
    let test = "a_disabled_webhook_fails_validation_and_is_restarted";
    fails_validation_and_is_mended(backend, test, |fake| fake.disable(TENANT, "Audit.Exchange"), "its webhook is \"disabled\"").await;
}

async fn a_webhook_moved_elsewhere_fails_validation_and_is_moved_back(backend: Backend) {
    let test = "a_webhook_moved_elsewhere_fails_validation_and_is_moved_back";
    let elsewhere = "https://elsewhere.example/o365-hook";
    let cause = format!("its webhook address is \"{elsewhere}\"");
    fails_validation_and_is_mended(backend, test, |fake| fake.move_webhook(TENANT, "Audit.Exchange", elsewhere), &cause).await;
}

async fn a_refused_secret_is_unable_to_read_the_api_until_patched(backend: Backend) {
    let fake = FakeO365::start(CLIENT_ID, SECRET).await;
    let alerts = Receiver::start().await;
    let Some(server) = start(backend, "a_refused_secret_is_unable_to_read_the_api_until_patched", &fake, &alerts).await else { return };
    let c = server.create(o365_connection(&fake, WRONG_SECRET)).await;
    let id = c["id"].as_str().unwrap().to_owned();
    let c = server.wait_for(&id, "the refusal", TRIES, POLL, |c| c["status"] == "error").await;
    assert_eq!(status(&c), ("error", Some("Unable to read API Endpoint")), "{c}");
    let error = c["subscription"]["upkeep"]["last_error"].as_str().unwrap();
    assert!(error.contains("invalid_client") && error.contains("AADSTS7000215"), "{error}");
    assert!(!c["subscription"]["upkeep"]["failing_since"].is_null(), "{c}");
    assert!(fake.subscriptions(TENANT).is_empty());
    assert_eq!(fake.count("POST", "/subscriptions/start"), 0);
    let alert = alerted(&alerts, &id, "error", Some("Unable to read API Endpoint")).await;
    assert!(alert["old_status"].is_null() && alert["tenant_id"] == "acme", "its first status: {alert}");

    // The admin fixes the secret: the change ends the backoff and nudges the upkeep.
    let mut patch = o365_connection(&fake, SECRET);
    patch["config"]["auth_id"] = json!("***");
    let answer = server
        .admin(reqwest::Method::PATCH, &format!("/v1/connections/{id}"))
        .json(&json!({"config": patch["config"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let c = server.wait_for(&id, "the subscriptions", TRIES, POLL, |c| c["status"] == "connected").await;
    assert!(c["subscription"]["upkeep"]["failing_since"].is_null(), "{c}");
    assert!(c["subscription"]["upkeep"]["last_error"].as_str().is_some_and(|e| e.contains("invalid_client")), "kept visible: {c}");
    assert_eq!(fake.subscriptions(TENANT).len(), 2);
    let history = history_ends_with(
        &server,
        &id,
        &[entry(None, "error", Some("Unable to read API Endpoint")), entry(Some("error"), "connected", None)],
    )
    .await;
    alerted(&alerts, &id, "connected", None).await;

    // Neither secret is shown, alerted or logged.
    let seen = [
        server.connection(&id).await.to_string(),
        server.get_json("/v1/connections").await.to_string(),
        server.get_json("/v1/health").await.to_string(),
        format!("{history:?}"),
        format!("{:?}", alerts_of(&alerts, &id)),
        common::logs::captured(),
    ];
    for text in seen {
        assert!(!text.contains(SECRET) && !text.contains(WRONG_SECRET), "a secret leaked: {text}");
    }
    let logs = common::logs::captured();
    assert!(logs.contains("Office 365 subscription upkeep failed") && logs.contains("AADSTS7000215"), "logs are captured");
    server.stop().await;
}

async fn a_deleted_connection_stops_its_subscriptions(backend: Backend) {
    let fake = FakeO365::start(CLIENT_ID, SECRET).await;
    let alerts = Receiver::start().await;
    let Some(server) = start(backend, "a_deleted_connection_stops_its_subscriptions", &fake, &alerts).await else { return };
    let (id, _) = connected(&server, &fake).await;

    let answer = server.admin(reqwest::Method::DELETE, &format!("/v1/connections/{id}")).send().await.unwrap();
    assert_eq!(answer.status(), 204);
    common::eventually("the subscriptions stopped", Duration::from_secs(10), async || fake.subscriptions(TENANT).is_empty().then_some(()))
        .await;
    let stops: Vec<_> = fake.requests().into_iter().filter(|r| r.path.ends_with("/subscriptions/stop")).collect();
    assert_eq!(stops.len(), 2, "{stops:?}");
    server.o365_upkeep_passes(3).await;
    assert_eq!(fake.count("POST", "/subscriptions/start"), 2, "nothing started for a deleted connection");
    server.stop().await;
}

async fn an_unavailable_api_changes_no_status(backend: Backend) {
    let fake = FakeO365::start(CLIENT_ID, SECRET).await;
    let alerts = Receiver::start().await;
    let Some(server) = start(backend, "an_unavailable_api_changes_no_status", &fake, &alerts).await else { return };
    let (id, _) = connected(&server, &fake).await;

    fake.fail_lists(true);
    let c = server.wait_for(&id, "the failure", TRIES, POLL, |c| !c["subscription"]["upkeep"]["last_error"].is_null()).await;
    let error = c["subscription"]["upkeep"]["last_error"].as_str().unwrap();
    assert!(error.contains("503") && error.contains("AF50000"), "{error}");
    assert_eq!(status(&c), ("connected", None), "says nothing about the connection: {c}");
    assert!(c["subscription"]["upkeep"]["failing_since"].is_null(), "no failure class: {c}");
    server.o365_upkeep_passes(2).await;
    assert_eq!(fake.count("POST", "/subscriptions/start"), 2, "nothing restarted for an outage");

    fake.fail_lists(false);
    let failed_at = c["subscription"]["upkeep"]["last_error_at"].clone();
    let c = server
        .wait_for(&id, "a success", TRIES, POLL, |c| c["subscription"]["upkeep"]["last_success_at"].as_str() > failed_at.as_str())
        .await;
    assert_eq!(status(&c), ("connected", None));
    assert_eq!(server.history(&id).await, [entry(None, "connected", None)], "no transition");
    alerted(&alerts, &id, "connected", None).await;
    assert_eq!(alerts_of(&alerts, &id).len(), 1, "only the first connected: {:?}", alerts_of(&alerts, &id));
    server.stop().await;
}

async fn admin_changes_reach_microsoft_at_once(backend: Backend) {
    let fake = FakeO365::start(CLIENT_ID, SECRET).await;
    let alerts = Receiver::start().await;
    // An hour between passes: whatever happens within the test was started by a nudge.
    let hour = Duration::from_secs(3600);
    let Some(server) = start_every(backend, "admin_changes_reach_microsoft_at_once", &fake, &alerts, hour).await else { return };
    common::wait_for_passes(&server.o365_upkeep, "the pass at start, which finds nothing", 1).await;
    let (id, c) = connected(&server, &fake).await;
    assert_eq!(fake.subscriptions(TENANT).len(), 2);

    // One more content type: started at once, the others asked again (unchanged: AF20024).
    let mut config = c["config"].clone();
    config["subscription"]["content_types"] = json!(["Audit.Exchange", "Audit.General", "Audit.SharePoint"]);
    let answer =
        server.admin(reqwest::Method::PATCH, &format!("/v1/connections/{id}")).json(&json!({"config": config})).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    common::eventually("the new content type started", Duration::from_secs(10), async || {
        (fake.subscriptions(TENANT).len() == 3).then_some(())
    })
    .await;
    // And one less: the one no longer asked for is stopped.
    config["subscription"]["content_types"] = json!(["Audit.Exchange", "Audit.SharePoint"]);
    let answer =
        server.admin(reqwest::Method::PATCH, &format!("/v1/connections/{id}")).json(&json!({"config": config})).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    common::eventually("the content type stopped", Duration::from_secs(10), async || {
        let held = fake.subscriptions(TENANT);
        let types: Vec<&str> = held.iter().filter_map(|s| s["contentType"].as_str()).collect();
        (types == ["Audit.Exchange", "Audit.SharePoint"]).then_some(())
    })
    .await;
    assert_eq!(fake.count("POST", "/subscriptions/stop"), 1, "{:?}", fake.requests());
    assert_eq!(status(&server.connection(&id).await), ("connected", None));
    server.stop().await;
}
