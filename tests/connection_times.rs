//! The times a connection object reports about its own health, over real HTTP on SQLite
//! and PostgreSQL: `status_last_checked_at` is the health monitor's last evaluation (in
//! the API, the SQL view and the dashboard), not the time of the read; `activated_at`
//! moves when a paused connection is resumed.

mod common;

use chrono::{DateTime, Utc};
use common::{hmac_webhook, wait_for_passes, Backend, TestServer};
use reqwest::Method;
use serde_json::Value;

on_both_backends_with!(status_last_checked_at_is_the_monitors_last_evaluation, resuming_a_paused_connection_records_its_activation);

/// A monitor interval no test outlasts: after the pass every server runs as it starts,
/// nothing evaluates the connections again while the test reads them.
const ONE_HOUR_MS: &str = "3600000";

fn time(value: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(value.as_str().unwrap_or_else(|| panic!("not a time: {value}"))).unwrap().to_utc()
}

/// `status_last_checked_at` and `activated_at` as the `connection_health` view has them.
async fn view_times(database_url: &str, id: &str) -> (Option<DateTime<Utc>>, DateTime<Utc>) {
    use sqlx::Connection;
    let sql = "SELECT status_last_checked_at, activated_at FROM connection_health WHERE id = $1";
    if database_url.starts_with("postgres") {
        let mut db = sqlx::PgConnection::connect(database_url).await.unwrap();
        sqlx::query_as(sql).bind(id).fetch_one(&mut db).await.unwrap()
    } else {
        let mut db = sqlx::SqliteConnection::connect(database_url).await.unwrap();
        sqlx::query_as(sql).bind(id).fetch_one(&mut db).await.unwrap()
    }
}

/// The "Status last checked" cell of the dashboard row of the connection named `name`.
async fn dashboard_checked_cell(server: &TestServer, name: &str) -> String {
    let body = server.admin(Method::GET, "/").send().await.unwrap().text().await.unwrap();
    // The name links to the connection's page.
    let row = body.split("<tr>").find(|row| row.contains(&format!("\">{name}</a></td>"))).unwrap_or_else(|| panic!("no row for {name}"));
    let last = row.rsplit("<td class=\"time\">").next().unwrap();
    last.split("</td>").next().unwrap().to_owned()
}

async fn status_last_checked_at_is_the_monitors_last_evaluation(backend: Backend) {
    let Some(first) = TestServer::builder(backend, "checked_first").env("PUSHGATE_MONITOR_INTERVAL_MS", ONE_HOUR_MS).start().await else {
        return;
    };
    // Its pass at start is over before the connection exists.
    wait_for_passes(&first.monitor, "the first server's monitor", 1).await;
    let mut body = hmac_webhook("acme", "s3cret");
    body["name"] = "never checked".into();
    let created = first.create(body).await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["status_last_checked_at"], Value::Null, "the monitor never evaluated it");
    let read = first.connection(&id).await;
    assert_eq!(read["status_last_checked_at"], Value::Null, "a read is not an evaluation");
    assert_eq!(read["status"], "requires_action", "though the read evaluates the status itself");
    assert_eq!(view_times(&first.database_url, &id).await.0, None);
    assert_eq!(dashboard_checked_cell(&first, "never checked").await, "never");

    // A second server on the same database evaluates it in its pass at start, then not
    // for an hour.
    let before = Utc::now();
    let second = TestServer::builder(backend, "checked_second")
        .database_url(&first.database_url)
        .env("PUSHGATE_MONITOR_INTERVAL_MS", ONE_HOUR_MS)
        .start()
        .await
        .unwrap();
    wait_for_passes(&second.monitor, "the second server's monitor", 1).await;
    let passed = Utc::now();
    let read = second.connection(&id).await;
    let checked = time(&read["status_last_checked_at"]);
    assert!(before <= checked && checked <= passed, "{checked} is the time of the pass, between {before} and {passed}");
    // The pass recorded the first transition at the time it evaluated.
    let history = second.get_json(&format!("/v1/connections/{id}/history")).await;
    assert_eq!(history["history"][0]["at"], read["status_last_checked_at"], "{history}");
    // Later reads, through either server, show that time, not their own.
    for server in [&second, &first, &second] {
        assert_eq!(server.connection(&id).await["status_last_checked_at"], read["status_last_checked_at"]);
    }
    assert_eq!(view_times(&first.database_url, &id).await.0, Some(checked));
    assert_eq!(dashboard_checked_cell(&first, "never checked").await, read["status_last_checked_at"].as_str().unwrap());
    second.stop().await;
    first.stop().await;
}

async fn resuming_a_paused_connection_records_its_activation(backend: Backend) {
    let Some(server) = TestServer::builder(backend, "resume_activates").env("PUSHGATE_MONITOR_INTERVAL_MS", ONE_HOUR_MS).start().await
    else {
        return;
    };
    let created = server.create(hmac_webhook("acme", "s3cret")).await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["activated_at"], created["created_at"], "active from its creation");
    let post = |action: &'static str| {
        let request = server.admin(Method::POST, &format!("/v1/connections/{id}/{action}"));
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 200, "{action}");
            response.json::<Value>().await.unwrap()
        }
    };
    let paused = post("pause").await;
    assert_eq!(paused["status"], "paused");
    assert_eq!(paused["activated_at"], created["created_at"], "a pause is no activation");
    let resumed = post("resume").await;
    let activated = time(&resumed["activated_at"]);
    assert!(activated > time(&created["created_at"]), "{resumed}");
    assert_eq!(resumed["created_at"], created["created_at"], "the creation time stays");
    // Never confirmed: it waits for its subscription again, from the resume.
    assert_eq!(resumed["status"], "requires_action");
    assert_eq!(resumed["status_message"], "Awaiting subscription");
    let again = post("resume").await;
    assert_eq!(again["activated_at"], resumed["activated_at"], "resuming an active connection is no activation");
    assert_eq!(server.connection(&id).await["activated_at"], resumed["activated_at"]);
    assert_eq!(view_times(&server.database_url, &id).await.1, activated);
    server.stop().await;
}
