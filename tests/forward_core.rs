//! The forwarding core over HTTP, on SQLite and PostgreSQL: filters and `start_from`,
//! retention that never deletes what a destination still wants, the change feed, the
//! destinations API's validation and secrecy, the metrics; and on PostgreSQL, a
//! transaction that commits late behind a later one is neither skipped by the feed nor
//! by a destination.

mod common;

use std::time::Duration;

use common::receiver::{Answer, Receiver};
use common::{Backend, TestServer};
use serde_json::{json, Value};

on_both_backends_with!(
    filters_and_start_from_now_deliver_exactly_what_they_say,
    retention_deletes_only_what_every_matching_destination_delivered,
    held_events_expire_past_the_backlog_bound,
    the_change_feed_pages_in_commit_order,
    the_destinations_api_validates_and_keeps_secrets,
    metrics_show_every_destination,
);

const WAIT: Duration = Duration::from_secs(30);

async fn start(backend: Backend, test: &str, extra: &[(&str, &str)]) -> Option<TestServer> {
    TestServer::builder(backend, test)
        .envs(extra.iter().copied())
        .fast_forwarding()
        .with_options(|options| options.retention_interval = Some(Duration::from_millis(200)))
        .start()
        .await
}

/// A webhook connection of `tenant` writing to `stream`.
async fn connection(server: &TestServer, tenant: &str, stream: &str) -> String {
    let c = server
        .create(json!({"tenant_id": tenant, "name": "hook", "source": "webhook", "stream": stream,
            "config": {"auth": {"type": "hmac_sha256", "header": "X-Signature", "secret": "s3cret"}}}))
        .await;
    c["id"].as_str().unwrap().to_owned()
}

async fn push(server: &TestServer, id: &str, body: Value) {
    assert_eq!(server.push_signed(id, "s3cret", body.to_string().as_bytes()).await, 200);
}

fn marks(records: &[Value]) -> Vec<String> {
    records.iter().map(|r| r["payload"]["mark"].as_str().unwrap().to_owned()).collect()
}

async fn http_destination(server: &TestServer, receiver: &Receiver, extra: Value) -> String {
    let mut body = json!({"name": "collector", "kind": "http", "config": {"url": receiver.url}});
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    server.create_destination(body).await["id"].as_str().unwrap().to_owned()
}

async fn filters_and_start_from_now_deliver_exactly_what_they_say(backend: Backend) {
    let Some(server) = start(backend, "filters_and_start_from_now_deliver_exactly_what_they_say", &[]).await else { return };
    let acme_cloud = connection(&server, "acme", "cloud_custom_alert").await;
    let acme_hook = connection(&server, "acme", "webhook_event").await;
    let globex_cloud = connection(&server, "globex", "cloud_custom_alert").await;
    let o365 =
        server.create(json!({"tenant_id": "acme", "name": "O365", "source": "o365_activity", "config": {"auth_id": "o365-a"}})).await;
    let filtered = Receiver::start().await;
    let telemetry = Receiver::start().await;
    let later = Receiver::start().await;
    http_destination(
        &server,
        &filtered,
        json!({"filter": {"tenant_ids": ["acme"], "streams": ["cloud_*"], "kinds": ["alert"], "sources": ["webhook"]}}),
    )
    .await;
    http_destination(&server, &telemetry, json!({"filter": {"kinds": ["telemetry"]}})).await;

    push(&server, &acme_cloud, json!({"mark": "acme-cloud-1"})).await;
    push(&server, &acme_hook, json!({"mark": "acme-hook"})).await;
    push(&server, &globex_cloud, json!({"mark": "globex-cloud"})).await;
    let content = json!([{"contentType": "Audit.General", "contentId": "c-9", "contentCreated": "2026-11-30T10:00:00.000Z",
        "contentUri": "https://manage.office.com/api/v1.0/t/activity/feed/audit/c-9"}]);
    let answer = server
        .client
        .post(server.url(&format!("/push/o365-activity/{}", o365["id"].as_str().unwrap())))
        .header("webhook-authid", "o365-a")
        .json(&content)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    // `now` starts after what is committed when it is created (waited for through the feed).
    server.wait_for_feed(4, WAIT).await;
    let now_id = http_destination(&server, &later, json!({"start_from": "now"})).await;
    push(&server, &acme_cloud, json!({"mark": "acme-cloud-2"})).await;

    server.wait_for_feed(5, WAIT).await;
    assert_eq!(marks(&filtered.wait_for_records(2, WAIT).await), ["acme-cloud-1", "acme-cloud-2"]);
    let o365_events = telemetry.wait_for_records(1, WAIT).await;
    assert_eq!((o365_events[0]["source"].as_str(), o365_events[0]["kind"].as_str()), (Some("o365_activity"), Some("telemetry")));
    assert_eq!(marks(&later.wait_for_records(1, WAIT).await), ["acme-cloud-2"]);
    let d = server.wait_for_destination(&now_id, "caught up", WAIT, |d| d["counters"]["delivered"] == 1).await;
    assert_eq!(d["start_from"], "now");
    // Nothing else arrives once every destination caught up.
    let all: Vec<Value> = server.get_json("/v1/destinations").await["destinations"].as_array().unwrap().clone();
    for d in &all {
        server.wait_for_destination(d["id"].as_str().unwrap(), "no lag", WAIT, |d| d["lag_events"] == 0).await;
    }
    assert_eq!(filtered.records().len(), 2);
    assert_eq!(telemetry.records().len(), 1);
    assert_eq!(later.records().len(), 1);
    server.stop().await;
}

/// Waits until the server has run `n` more retention passes than `after`.
async fn retention_passes(server: &TestServer) -> u64 {
    let text = server.admin(reqwest::Method::GET, "/metrics").send().await.unwrap().text().await.unwrap();
    text.lines().find_map(|l| l.strip_prefix("pushgate_retention_passes_total ")).map_or(0, |v| v.trim().parse::<f64>().unwrap() as u64)
}

async fn wait_for_passes(server: &TestServer, more: u64) {
    let start = retention_passes(server).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while retention_passes(server).await < start + more {
        assert!(tokio::time::Instant::now() < deadline, "retention did not run");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn retention_deletes_only_what_every_matching_destination_delivered(backend: Backend) {
    // Events older than 1.8 s go once delivered; a destination may hold them back an hour.
    let env = [("PUSHGATE_EVENT_RETENTION_HOURS", "0.0005"), ("PUSHGATE_FORWARD_MAX_BACKLOG_HOURS", "1")];
    let Some(server) = start(backend, "retention_deletes_only_what_every_matching_destination_delivered", &env).await else { return };
    let acme = connection(&server, "acme", "webhook_event").await;
    let other = connection(&server, "other", "webhook_event").await;
    let receiver = Receiver::start().await;
    receiver.answer(|_| Answer::status(503));
    let d = http_destination(&server, &receiver, json!({"filter": {"tenant_ids": ["acme"]}})).await;
    for mark in ["a1", "a2", "a3"] {
        push(&server, &acme, json!({"mark": mark})).await;
    }
    push(&server, &other, json!({"mark": "o1"})).await;
    // The event no destination wants goes once it is old; acme's wait for their destination.
    common::eventually("the deletion of the unwanted event", WAIT, async || server.events(&other).await.is_empty().then_some(())).await;
    wait_for_passes(&server, 2).await;
    assert_eq!(server.events(&acme).await.len(), 3, "held by the failing destination");
    assert_eq!(server.destination(&d).await["lag_events"], 3);
    // The destination recovers and takes them; then they go.
    receiver.answer(|_| Answer::Ok);
    receiver.wait_for_records(3, WAIT).await;
    common::eventually("the deletion of the delivered events", WAIT, async || server.events(&acme).await.is_empty().then_some(())).await;
    // New events after the table was emptied are still delivered, after the old ones.
    for mark in ["a4", "a5"] {
        push(&server, &acme, json!({"mark": mark})).await;
    }
    assert_eq!(marks(&receiver.wait_for_records(5, WAIT).await), ["a1", "a2", "a3", "a4", "a5"]);
    let shown = server.destination(&d).await;
    assert_eq!(shown["counters"]["expired"], 0);
    server.stop().await;
}

async fn held_events_expire_past_the_backlog_bound(backend: Backend) {
    let env = [("PUSHGATE_EVENT_RETENTION_HOURS", "0.0003"), ("PUSHGATE_FORWARD_MAX_BACKLOG_HOURS", "0.0003")];
    let Some(server) = start(backend, "held_events_expire_past_the_backlog_bound", &env).await else { return };
    let acme = connection(&server, "acme", "webhook_event").await;
    let receiver = Receiver::start().await;
    let d = http_destination(&server, &receiver, json!({})).await;
    let paused = server.admin(reqwest::Method::POST, &format!("/v1/destinations/{d}/pause")).send().await.unwrap();
    assert_eq!(paused.json::<Value>().await.unwrap()["status"], "paused");
    for mark in ["p1", "p2"] {
        push(&server, &acme, json!({"mark": mark})).await;
    }
    let expired = server.wait_for_destination(&d, "expired", WAIT, |d| d["counters"]["expired"] == 2).await;
    assert!(expired["last_error"]["message"].as_str().unwrap().contains("deleted by retention before delivery"), "{expired}");
    assert_eq!((expired["status"].as_str(), expired["lag_events"].as_i64()), (Some("paused"), Some(0)));
    assert!(server.events(&acme).await.is_empty());
    assert!(receiver.requests().is_empty(), "paused: nothing was sent");
    server.stop().await;
}

async fn the_change_feed_pages_in_commit_order(backend: Backend) {
    let Some(server) = start(backend, "the_change_feed_pages_in_commit_order", &[]).await else { return };
    let a = connection(&server, "acme", "webhook_event").await;
    let b = connection(&server, "globex", "cloud_other").await;
    for i in 0..5 {
        push(&server, &a, json!({"mark": format!("a{i}")})).await;
        push(&server, &b, json!({"mark": format!("b{i}")})).await;
    }
    let all = server.wait_for_feed(10, WAIT).await;
    assert_eq!(marks(&all), ["a0", "b0", "a1", "b1", "a2", "b2", "a3", "b3", "a4", "b4"]);
    let first = server.get_json("/v1/events?limit=4").await;
    assert_eq!(marks(first["events"].as_array().unwrap()), ["a0", "b0", "a1", "b1"]);
    let cursor = first["next_after"].as_str().unwrap();
    let second = server.get_json(&format!("/v1/events?limit=100&after={cursor}")).await;
    assert_eq!(marks(second["events"].as_array().unwrap()), ["a2", "b2", "a3", "b3", "a4", "b4"]);
    // The cursor after the last page returns only what commits later.
    let tail = second["next_after"].as_str().unwrap().to_owned();
    assert!(server.get_json(&format!("/v1/events?after={tail}")).await["events"].as_array().unwrap().is_empty());
    push(&server, &a, json!({"mark": "a5"})).await;
    let later = common::eventually("the event after the cursor", WAIT, async || {
        let page = server.get_json(&format!("/v1/events?after={tail}")).await;
        let events = page["events"].as_array().unwrap().clone();
        (!events.is_empty()).then_some(events)
    })
    .await;
    assert_eq!(marks(&later), ["a5"]);
    assert_eq!(marks(&server.feed("&tenant_id=globex").await), ["b0", "b1", "b2", "b3", "b4"]);
    assert_eq!(server.feed("&stream=cloud_*").await.len(), 5);
    assert_eq!(server.feed("&source=webhook&kind=alert").await.len(), 11);
    assert!(server.feed("&kind=telemetry").await.is_empty());
    for (query, code) in
        [("after=nope", "invalid_cursor"), ("source=pigeon", "invalid_filter"), ("limit=0", "invalid_limit"), ("kind=x", "invalid_filter")]
    {
        let response = server.admin(reqwest::Method::GET, &format!("/v1/events?{query}")).send().await.unwrap();
        assert_eq!(response.status(), 400, "{query}");
        assert_eq!(response.json::<Value>().await.unwrap()["error"]["code"], code, "{query}");
    }
    let anonymous = server.client.get(server.url("/v1/events")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    server.stop().await;
}

async fn the_destinations_api_validates_and_keeps_secrets(backend: Backend) {
    let Some(server) = start(backend, "the_destinations_api_validates_and_keeps_secrets", &[]).await else { return };
    let bad = server
        .admin(reqwest::Method::POST, "/v1/destinations")
        .json(&json!({"name": "x", "kind": "http", "filter": {"kinds": ["nope"]},
            "config": {"url": "ftp://host", "format": "xml", "auth": {"type": "bearer"}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let error = bad.json::<Value>().await.unwrap();
    assert_eq!(error["error"]["code"], "invalid_destination");
    let message = error["error"]["message"].as_str().unwrap();
    for part in ["filter.kinds", "config.url", "config.format", "config.auth.token"] {
        assert!(message.contains(part), "{part} in {message}");
    }
    let subject = server
        .admin(reqwest::Method::POST, "/v1/destinations")
        .json(&json!({"name": "x", "kind": "nats", "config": {"url": "nats://127.0.0.1:4222", "subject": "a.{tenant}"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(subject.status(), 400);
    assert!(subject.json::<Value>().await.unwrap()["error"]["message"].as_str().unwrap().contains("unknown placeholder `{tenant}`"));

    let receiver = Receiver::start().await;
    let created = server
        .create_destination(json!({"name": "collector", "kind": "http",
            "config": {"url": receiver.url, "auth": {"type": "header", "header": "X-Api-Key", "value": "key-secret-1"}}}))
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["config"]["auth"], json!({"type": "header", "header": "X-Api-Key", "value": "***"}));
    for key in [
        "id",
        "name",
        "kind",
        "filter",
        "start_from",
        "config",
        "created_at",
        "status",
        "last_delivered_at",
        "last_error",
        "lag_events",
        "oldest_undelivered_at",
        "counters",
    ] {
        assert!(created.get(key).is_some(), "{key} in {created}");
    }
    assert_eq!(created["counters"], json!({"delivered": 0, "dead_letters": 0, "retries": 0, "expired": 0}));
    // A patch that keeps the mask keeps the secret; it reaches the receiver, never an answer.
    let patched = server
        .admin(reqwest::Method::PATCH, &format!("/v1/destinations/{id}"))
        .json(
            &json!({"name": "renamed", "config": {"url": receiver.url, "auth": {"type": "header", "header": "X-Api-Key", "value": "***"}}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);
    assert_eq!(patched.json::<Value>().await.unwrap()["name"], "renamed");
    let c = connection(&server, "acme", "webhook_event").await;
    push(&server, &c, json!({"mark": "m"})).await;
    receiver.wait_for_records(1, WAIT).await;
    assert_eq!(receiver.requests()[0].header("x-api-key"), Some("key-secret-1"));
    let listed = server.get_json("/v1/destinations").await;
    assert_eq!(listed["destinations"].as_array().unwrap().len(), 1);
    assert!(!listed.to_string().contains("key-secret-1"));
    for (method, path, code) in [
        (reqwest::Method::GET, format!("/v1/destinations/{}", uuid::Uuid::new_v4()), 404),
        (reqwest::Method::GET, "/v1/destinations/not-a-uuid".to_owned(), 400),
        (reqwest::Method::POST, format!("/v1/destinations/{}/pause", uuid::Uuid::new_v4()), 404),
        (reqwest::Method::GET, format!("/v1/destinations/{id}/dead-letters?limit=0"), 400),
    ] {
        assert_eq!(server.admin(method, &path).send().await.unwrap().status(), code, "{path}");
    }
    let resumed = server.admin(reqwest::Method::POST, &format!("/v1/destinations/{id}/resume")).send().await.unwrap();
    assert_eq!(resumed.status(), 200);
    assert_eq!(server.client.get(server.url("/v1/destinations")).send().await.unwrap().status(), 401);
    let deleted = server.admin(reqwest::Method::DELETE, &format!("/v1/destinations/{id}")).send().await.unwrap();
    assert_eq!(deleted.status(), 204);
    assert_eq!(server.admin(reqwest::Method::GET, &format!("/v1/destinations/{id}")).send().await.unwrap().status(), 404);
    server.stop().await;
}

async fn metrics_show_every_destination(backend: Backend) {
    let Some(server) = start(backend, "metrics_show_every_destination", &[]).await else { return };
    let receiver = Receiver::start().await;
    let id = http_destination(&server, &receiver, json!({})).await;
    let c = connection(&server, "acme", "webhook_event").await;
    push(&server, &c, json!({"mark": "m"})).await;
    server.wait_for_destination(&id, "delivered", WAIT, |d| d["counters"]["delivered"] == 1).await;
    let text = server.admin(reqwest::Method::GET, "/metrics").send().await.unwrap().text().await.unwrap();
    let labels = format!("destination=\"{id}\",name=\"collector\"");
    for series in [
        format!("pushgate_forward_delivered_total{{{labels}}} 1"),
        format!("pushgate_forward_dead_letters_total{{{labels}}} 0"),
        format!("pushgate_forward_retries_total{{{labels}}} 0"),
        format!("pushgate_forward_lag_events{{{labels}}} 0"),
        format!("pushgate_forward_lag_seconds{{{labels}}} 0"),
        format!("pushgate_forward_destination_status{{{labels},status=\"ok\"}} 1"),
        format!("pushgate_forward_destination_status{{{labels},status=\"failing\"}} 0"),
    ] {
        assert!(text.contains(&series), "{series} in\n{text}");
    }
    assert!(text.contains("# TYPE pushgate_forward_lag_seconds gauge"));
    server.stop().await;
}

/// PostgreSQL: an ingest transaction that took a lower `seq` and commits after a later
/// one is read after it by the feed and a destination, never skipped.
#[tokio::test]
async fn a_late_commit_is_neither_skipped_by_the_feed_nor_by_a_destination() {
    use sqlx::{Connection, PgConnection};
    let Some(server) = start(Backend::Postgres, "a_late_commit_is_neither_skipped_by_the_feed_nor_by_a_destination", &[]).await else {
        return;
    };
    let receiver = Receiver::start().await;
    http_destination(&server, &receiver, json!({})).await;
    let c = connection(&server, "acme", "webhook_event").await;
    let cursor = server.get_json("/v1/events").await["next_after"].as_str().unwrap().to_owned();
    // A slow ingest transaction: it inserts first (lower seq) and commits last.
    let mut slow = PgConnection::connect(&server.database_url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut slow).await.unwrap();
    sqlx::query(
        "INSERT INTO events (id, connection_id, tenant_id, source, stream, kind, dedupe_key, received_at, payload) \
         VALUES ($1, $2, 'acme', 'webhook', 'webhook_event', 'alert', 'slow', now(), $3::jsonb)",
    )
    .bind(uuid::Uuid::new_v4().to_string())
    .bind(&c)
    .bind(json!({"mark": "slow"}).to_string())
    .execute(&mut slow)
    .await
    .unwrap();
    push(&server, &c, json!({"mark": "fast"})).await;
    let page = server.get_json(&format!("/v1/events?after={cursor}")).await;
    assert!(page["events"].as_array().unwrap().is_empty(), "nothing past the running transaction: {page}");
    let held = page["next_after"].as_str().unwrap().to_owned();
    sqlx::query("COMMIT").execute(&mut slow).await.unwrap();
    let events = common::eventually("the feed to serve both", WAIT, async || {
        let page = server.get_json(&format!("/v1/events?after={held}")).await;
        let events = page["events"].as_array().unwrap().clone();
        (events.len() >= 2).then_some(events)
    })
    .await;
    assert_eq!(marks(&events), ["slow", "fast"], "the cursor taken before the commit still finds the late row");
    assert_eq!(marks(&receiver.wait_for_records(2, WAIT).await), ["slow", "fast"]);
    server.stop().await;
}
