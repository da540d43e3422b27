//! Office 365 audit content fetched and stored, end to end on SQLite and PostgreSQL: a real
//! pushgate server on port 0 whose `o365_activity` connection has Management API
//! credentials, a fake Management API (`common/fake_o365.rs`) that serves the blobs and
//! POSTs their content notifications as Microsoft does, and the fetch job's pass counter to
//! wait on. Covers: each record stored once, a `contentUri` elsewhere refused and never
//! requested, `Retry-After` honoured, and content that cannot be fetched before it expires
//! counted, entered in the history and alerted.

mod common;
#[path = "common/fake_o365.rs"]
#[allow(dead_code)]
mod fake_o365;

use std::time::Duration;

use common::receiver::Receiver;
use common::{Backend, TestServer};
use fake_o365::FakeO365;
use pushgate::passes::Passes;
use serde_json::{json, Value};

on_both_backends_with!(
    audit_records_are_fetched_and_stored_once,
    a_content_uri_elsewhere_is_refused_and_never_requested,
    retry_after_is_honoured_for_every_fetch_of_the_connection,
    content_that_cannot_be_fetched_before_it_expires_is_counted_and_alerted,
);

const TENANT: &str = "41463f53-8812-40f4-890f-865bf6e35190";
const CLIENT_ID: &str = "f2e1c9a5-6bd4-4b6a-9a3b-1c2f0e7d8a9b";
const SECRET: &str = "o365-fetch-secret-4c1d";
const AUTH_ID: &str = "o365-fetch-auth-id-9e2b";
const ALERT_SECRET: &str = "o365-fetch-alert-secret";
const MSG_EXPIRED: &str = "Audit content expired before it could be fetched";

struct Setup {
    server: TestServer,
    fake: FakeO365,
    passes: Passes,
    id: String,
    push_url: String,
}

async fn start(backend: Backend, test: &str, alerts: Option<&Receiver>) -> Option<Setup> {
    let fake = FakeO365::start(CLIENT_ID, SECRET).await;
    let passes = Passes::default();
    let mut builder = TestServer::builder(backend, test).envs(fake.env()).with_options(|o| {
        o.o365_fetch_passes = passes.clone();
        o.o365_fetch_poll = Some(Duration::from_millis(100));
    });
    if let Some(hook) = alerts {
        builder = builder.env("PUSHGATE_ALERT_WEBHOOK_URL", &hook.url).env("PUSHGATE_ALERT_WEBHOOK_SECRET", ALERT_SECRET);
    }
    let server = builder.start().await?;
    let c = server
        .create(json!({
            "tenant_id": "acme", "name": "M365 audit", "source": "o365_activity",
            "config": {"auth_id": AUTH_ID, "subscription": {"tenant_id": TENANT, "client_id": CLIENT_ID, "client_secret": SECRET,
                "content_types": ["Audit.AzureActiveDirectory", "Audit.Exchange"], "endpoint": fake.endpoint()}},
        }))
        .await;
    let (id, push_url) = (c["id"].as_str().unwrap().to_owned(), c["push_url"].as_str().unwrap().to_owned());
    assert_eq!(c["data_last_fetched_at"], Value::Null);
    assert_eq!(c["fetch"], json!({"backlog": 0, "records": 0, "expired": 0, "last_error": null, "last_error_at": null}));
    Some(Setup { server, fake, passes, id, push_url })
}

impl Setup {
    /// Waits for two more passes of the fetch job: the second began after this call, so
    /// it saw everything committed before it.
    async fn passes(&self) {
        common::wait_for_passes(&self.passes, "the Office 365 content fetch", self.passes.count() + 2).await;
    }

    async fn notify(&self, notifications: &[Value]) {
        assert_eq!(self.fake.notify(&self.push_url, AUTH_ID, notifications).await, 200);
    }

    /// Polls the connection until `done` holds (each poll after a fetch pass); panics
    /// after 30 s.
    async fn until(&self, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let c = self.server.connection(&self.id).await;
            if done(&c) {
                return c;
            }
            assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}: {c}");
            common::wait_for_passes(&self.passes, "the Office 365 content fetch", self.passes.count() + 1).await;
        }
    }

    /// The blob GETs the fake received for the content of `notification`, in order.
    fn gets(&self, notification: &Value) -> Vec<std::time::Instant> {
        let path = notification["contentUri"].as_str().unwrap().strip_prefix(&self.fake.base).unwrap().to_owned();
        self.fake.requests().iter().filter(|r| r.method == "GET" && r.path == path).map(|r| r.at).collect()
    }

    async fn metric(&self, series: &str) -> Option<f64> {
        let text = self.server.admin(reqwest::Method::GET, "/metrics").send().await.unwrap().text().await.unwrap();
        text.lines().find(|l| l.starts_with(series)).and_then(|l| l.rsplit(' ').next()).map(|v| v.parse().unwrap())
    }
}

/// Microsoft's sample records ("Retrieving content", Office 365 Management Activity API
/// reference).
fn reference_records() -> Vec<Value> {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/o365/activity_api_reference_retrieving_content.json"))
            .unwrap();
    serde_json::from_str(&text).unwrap()
}

fn records(prefix: &str, n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            json!({"CreationTime": format!("2026-12-02T10:00:{:02}", i % 60), "Id": format!("{prefix}-{i:04}"),
                "Operation": "MailItemsAccessed", "OrganizationId": TENANT, "RecordType": 50, "Workload": "Exchange",
                "UserId": format!("user{i}@contoso.onmicrosoft.com")})
        })
        .collect()
}

fn utc(creation_time: &str) -> String {
    format!("{creation_time}Z")
}

async fn audit_records_are_fetched_and_stored_once(backend: Backend) {
    let Some(s) = start(backend, "audit_records_are_fetched_and_stored_once", None).await else { return };
    let sample = reference_records();
    let first = s.fake.publish(TENANT, "Audit.AzureActiveDirectory", sample.clone());
    let second = s.fake.publish(TENANT, "Audit.Exchange", records("ex", 3));
    s.notify(&[first.clone(), second.clone()]).await;
    s.passes().await;

    let c = s.server.connection(&s.id).await;
    let total = sample.len() + 3;
    assert_eq!(c["fetch"]["backlog"], 0, "{c}");
    assert_eq!((c["fetch"]["records"].as_u64(), c["counters"]["events"].as_u64()), (Some(total as u64), Some(total as u64 + 2)));
    assert!(c["data_last_fetched_at"].is_string(), "{c}");
    assert_eq!((s.gets(&first).len(), s.gets(&second).len()), (1, 1));

    let events = s.server.events(&s.id).await;
    let kinds = |kind: &str| events.iter().filter(|e| e["kind"] == kind).count();
    assert_eq!((kinds("lifecycle"), kinds("telemetry")), (2, total), "the notifications are lifecycle events, the records telemetry");
    let notification = events.iter().find(|e| e["dedupe_key"] == first["contentId"]).unwrap();
    assert_eq!((&notification["kind"], &notification["payload"]), (&json!("lifecycle"), &first));
    for record in &sample {
        let stored = events.iter().find(|e| e["dedupe_key"] == record["Id"]).unwrap_or_else(|| panic!("{record} not stored"));
        assert_eq!(stored["payload"], *record, "the record as Microsoft sent it");
        assert_eq!(stored["occurred_at"], utc(record["CreationTime"].as_str().unwrap()), "CreationTime, in UTC");
        assert_eq!((stored["stream"].as_str(), stored["source"].as_str()), (Some("cloud_ms_o365_activity_log"), Some("o365_activity")));
    }

    // What a destination filtering `kinds: ["telemetry"]` reads: the audit records only.
    let feed = s.server.feed("&kind=telemetry").await;
    assert_eq!(feed.len(), total);
    assert!(feed.iter().all(|e| e["kind"] == "telemetry" && e["connection_id"] == s.id.as_str()));

    // Microsoft repeats a notification it saw no 200 to: stored once, fetched once.
    s.notify(&[first.clone(), second.clone()]).await;
    // The same records in another blob (a re-fetch after a crash is the same): nothing new.
    let again = s.fake.publish(TENANT, "Audit.AzureActiveDirectory", sample.clone());
    s.notify(std::slice::from_ref(&again)).await;
    s.passes().await;
    assert_eq!((s.gets(&first).len(), s.gets(&second).len(), s.gets(&again).len()), (1, 1, 1));
    let c = s.server.connection(&s.id).await;
    assert_eq!((c["fetch"]["records"].as_u64(), c["counters"]["events"].as_u64()), (Some(total as u64), Some(total as u64 + 3)));
    assert_eq!((c["counters"]["duplicates"].as_u64(), c["fetch"]["backlog"].as_u64()), (Some(2), Some(0)));
    assert_eq!(s.server.events(&s.id).await.len(), total + 3);
    let series = format!("pushgate_o365_records_fetched_total{{id=\"{}\"", s.id);
    assert_eq!(s.metric(&series).await, Some(total as f64));
    assert_eq!(s.metric(&format!("pushgate_o365_fetch_backlog{{id=\"{}\"", s.id)).await, Some(0.0));

    let page = s.server.admin(reqwest::Method::GET, &format!("/connections/{}", s.id)).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Audit content fetched") && page.contains("<dt>Data last fetched</dt>"), "{page}");
    assert!(!page.contains(SECRET));
    s.server.stop().await;
}

async fn a_content_uri_elsewhere_is_refused_and_never_requested(backend: Backend) {
    let Some(s) = start(backend, "a_content_uri_elsewhere_is_refused_and_never_requested", None).await else { return };
    let elsewhere = Receiver::start().await;
    let host = elsewhere.url.strip_suffix("/ingest").unwrap().to_owned();
    let real = s.fake.publish(TENANT, "Audit.Exchange", records("ok", 2));
    let mut other_host = s.fake.publish(TENANT, "Audit.Exchange", records("x", 1));
    other_host["contentUri"] = json!(format!("{host}/api/v1.0/{TENANT}/activity/feed/audit/{}", other_host["contentId"].as_str().unwrap()));
    // On the fake's own host, but another tenant's feed: the fake would serve it.
    let other_tenant = s.fake.publish("0c4c4a59-0000-4000-8000-000000000000", "Audit.Exchange", records("y", 1));
    s.notify(&[other_host.clone(), other_tenant.clone(), real.clone()]).await;
    s.passes().await;

    assert!(elsewhere.requests().is_empty(), "the other host received {:?}", elsewhere.requests());
    assert_eq!((s.gets(&other_tenant).len(), s.gets(&real).len()), (0, 1));
    let reasons: Vec<Value> = s.server.rejections(&s.id).await.iter().map(|r| r["reason"].clone()).collect();
    assert_eq!(reasons, [json!("o365_content_uri_not_allowed"), json!("o365_content_uri_not_allowed")]);
    let details: Vec<String> = s.server.rejections(&s.id).await.iter().map(|r| r["detail"].as_str().unwrap().to_owned()).collect();
    for (refused, why) in [(&other_host, "not on the connection's Management API endpoint"), (&other_tenant, "is not under /api/v1.0/")] {
        let id = refused["contentId"].as_str().unwrap();
        assert!(details.iter().any(|d| d.contains(id) && d.contains(why)), "{id}: {details:?}");
    }
    let c = s.server.connection(&s.id).await;
    assert_eq!(
        (c["fetch"]["backlog"].as_u64(), c["fetch"]["records"].as_u64(), c["counters"]["rejections"].as_u64()),
        (Some(0), Some(2), Some(2))
    );
    assert!(c["fetch"]["last_error"].as_str().unwrap().contains("was not fetched"), "{c}");
    let series = "pushgate_rejections_total{source=\"o365_activity\",reason=\"o365_content_uri_not_allowed\"}";
    assert_eq!(s.metric(series).await, Some(2.0));
    // Refused for good: later passes do not try again.
    s.passes().await;
    assert!(elsewhere.requests().is_empty());
    assert_eq!(s.server.rejections(&s.id).await.len(), 2);
    s.server.stop().await;
}

async fn retry_after_is_honoured_for_every_fetch_of_the_connection(backend: Backend) {
    let Some(s) = start(backend, "retry_after_is_honoured_for_every_fetch_of_the_connection", None).await else { return };
    s.fake.throttle(1, 2);
    let throttled = s.fake.publish(TENANT, "Audit.Exchange", records("t", 2));
    s.notify(std::slice::from_ref(&throttled)).await;
    let c = s.until("the 429", |c| c["fetch"]["last_error"].as_str().is_some_and(|e| e.contains("429"))).await;
    assert_eq!(c["fetch"]["backlog"], 1, "{c}");
    // Notified while the connection waits: it waits too.
    let later = s.fake.publish(TENANT, "Audit.Exchange", records("l", 1));
    s.notify(std::slice::from_ref(&later)).await;
    s.until("both fetched", |c| c["fetch"]["backlog"] == 0 && c["fetch"]["records"] == 3).await;

    let gets = s.gets(&throttled);
    assert_eq!(gets.len(), 2, "one 429, then the fetch");
    let asked_to_wait = Duration::from_secs(2);
    assert!(gets[1] - gets[0] >= asked_to_wait, "fetched again {:?} after the 429", gets[1] - gets[0]);
    let other = s.gets(&later);
    assert_eq!(other.len(), 1);
    assert!(other[0] - gets[0] >= asked_to_wait, "the connection's other content was fetched {:?} after the 429", other[0] - gets[0]);
    assert_eq!(s.metric("pushgate_o365_fetch_failures_total{reason=\"throttled\"}").await, Some(1.0));
    s.server.stop().await;
}

async fn content_that_cannot_be_fetched_before_it_expires_is_counted_and_alerted(backend: Backend) {
    let hook = Receiver::start().await;
    let test = "content_that_cannot_be_fetched_before_it_expires_is_counted_and_alerted";
    let Some(s) = start(backend, test, Some(&hook)).await else { return };
    s.fake.fail_blobs(true);
    let mut doomed = s.fake.publish(TENANT, "Audit.Exchange", records("d", 2));
    let expires = chrono::Utc::now() + chrono::Duration::seconds(3);
    doomed["contentExpiration"] = json!(expires.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    s.notify(&[doomed.clone()]).await;
    let c = s.until("the expiry", |c| c["fetch"]["expired"] == 1).await;
    assert_eq!((c["fetch"]["backlog"].as_u64(), c["fetch"]["records"].as_u64()), (Some(0), Some(0)), "{c}");
    assert!(c["fetch"]["last_error"].as_str().unwrap().contains("500"), "{c}");
    assert!(s.gets(&doomed).len() >= 2, "retried before it expired");
    assert_eq!(s.metric(&format!("pushgate_o365_blobs_expired_total{{id=\"{}\"", s.id)).await, Some(1.0));
    assert_eq!(s.metric("pushgate_o365_fetch_failures_total{reason=\"refused\"}").await.map(|n| n >= 2.0), Some(true));

    let history = s.server.get_json(&format!("/v1/connections/{}/history", s.id)).await;
    let entries: Vec<&Value> = history["history"].as_array().unwrap().iter().filter(|h| h["message"] == MSG_EXPIRED).collect();
    assert_eq!(entries.len(), 1, "{history}");
    assert_eq!(entries[0]["old_status"], entries[0]["new_status"], "the status does not change");
    let alert = common::eventually("the alert", Duration::from_secs(20), async || {
        hook.requests().into_iter().map(|r| serde_json::from_slice::<Value>(&r.body).unwrap()).find(|a| a["message"] == MSG_EXPIRED)
    })
    .await;
    assert_eq!((alert["connection_id"].as_str(), alert["tenant_id"].as_str()), (Some(s.id.as_str()), Some("acme")));
    // Expired once: nothing more is tried, counted or alerted.
    s.fake.fail_blobs(false);
    s.passes().await;
    let c = s.server.connection(&s.id).await;
    assert_eq!((c["fetch"]["expired"].as_u64(), c["fetch"]["records"].as_u64()), (Some(1), Some(0)));
    // A SQL dashboard reads the same from the connection_health view.
    assert_eq!(view_fetch(&s.server.database_url, &s.id).await, (1, 0, 0), "expired, backlog, records");
    s.server.stop().await;
}

/// Blobs expired, blobs waiting and records stored, as the `connection_health` view has them.
async fn view_fetch(database_url: &str, id: &str) -> (i64, i64, i64) {
    use sqlx::Connection;
    let sql = "SELECT blobs_expired_count, fetch_backlog, records_fetched_count FROM connection_health WHERE id = $1";
    if database_url.starts_with("postgres") {
        let mut db = sqlx::PgConnection::connect(database_url).await.unwrap();
        sqlx::query_as(sql).bind(id).fetch_one(&mut db).await.unwrap()
    } else {
        let mut db = sqlx::SqliteConnection::connect(database_url).await.unwrap();
        sqlx::query_as(sql).bind(id).fetch_one(&mut db).await.unwrap()
    }
}
