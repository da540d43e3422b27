//! The HTML health dashboard end to end: the login form, bearer and cookie access,
//! escaping of user-chosen text, login and logout, the page of one connection (its status
//! and why, timeline, arrival chart, rejections), on SQLite and PostgreSQL; and renderings
//! in headless Chromium (skipped, loudly, when Chromium is not installed).
//!
//! One file: the list and the connection pages share the login, the fixtures and the
//! Chromium set-up (its cookie-adding proxy).

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{hmac_hex, hmac_webhook, Backend, TestServer, ADMIN_TOKEN};
use serde_json::{json, Value};

on_both_backends!(
    without_auth_the_login_form_shows_no_connections,
    user_chosen_text_is_escaped,
    login_sets_a_session_cookie_and_logout_clears_it,
    destinations_are_listed_beside_the_connections,
    the_connection_page_needs_the_token,
    the_connection_page_says_what_the_status_means_and_where_to_look,
    refused_pushes_are_listed_on_the_connection_page,
    the_arrival_chart_counts_signed_pushes,
    the_connection_page_escapes_user_chosen_text_and_hides_secrets,
    unknown_and_malformed_connection_ids,
);

const SCRIPT: &str = "<script>alert(1)</script>";

fn id_of(connection: &Value) -> String {
    connection["id"].as_str().unwrap().to_owned()
}

/// A client that shows redirects instead of following them.
fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

async fn page(request: reqwest::RequestBuilder) -> (u16, String) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// One connected webhook (a signed heartbeat arrived) for `acme`, one awaiting its first
/// push for `globex`, and one paused for `globex`.
async fn two_tenants(server: &TestServer) {
    let mut hook = hmac_webhook("acme", "s3cret");
    hook["name"] = json!("acme alerts");
    let hook = id_of(&server.create(hook).await);
    let body = common::heartbeat_body();
    let response = server
        .client
        .post(server.url(&format!("/push/webhook/{hook}")))
        .header("x-signature", hmac_hex("s3cret", &body))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let mut waiting = hmac_webhook("globex", "other");
    waiting["name"] = json!("globex intake");
    server.create(waiting).await;
    let mut paused = hmac_webhook("globex", "third");
    paused["name"] = json!("globex archive");
    let paused = id_of(&server.create(paused).await);
    let response = server.admin(reqwest::Method::POST, &format!("/v1/connections/{paused}/pause")).send().await.unwrap();
    assert_eq!(response.status(), 200);
}

async fn without_auth_the_login_form_shows_no_connections(server: TestServer) {
    two_tenants(&server).await;
    let response = server.client.get(server.url("/")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/html; charset=utf-8");
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body = response.text().await.unwrap();
    assert!(body.contains(r#"<form method="post" action="/login">"#), "{body}");
    assert!(body.contains(r#"type="password""#));
    for secret in ["acme", "globex", "alerts", "intake", "archive"] {
        assert!(!body.contains(secret), "the login form shows {secret}");
    }
    // A wrong bearer token is refused rather than silently ignored.
    let (status, body) = page(server.client.get(server.url("/")).bearer_auth("not-the-token")).await;
    assert_eq!(status, 401);
    assert!(body.contains("not valid") && !body.contains("acme"));
    server.stop().await;
}

/// Cases that start their own server.
mod own_server {
    use super::*;
    on_both_backends_with!(with_a_bearer_token_connections_are_listed_by_tenant);
}

async fn with_a_bearer_token_connections_are_listed_by_tenant(backend: Backend) {
    // A monitor every 100 ms, so the page can show when it last checked each connection.
    let Some(server) = TestServer::builder(backend, "dashboard_by_tenant").env("PUSHGATE_MONITOR_INTERVAL_MS", "100").start().await else {
        return;
    };
    two_tenants(&server).await;
    // Two passes: the first may have begun before the connections existed.
    server.monitor_passes(2).await;
    let (status, body) = page(server.admin(reqwest::Method::GET, "/")).await;
    assert_eq!(status, 200);
    assert!(body.contains(r#"<meta http-equiv="refresh" content="15">"#));
    let acme = body.find("Tenant acme").expect("acme heading");
    let globex = body.find("Tenant globex").expect("globex heading");
    assert!(acme < globex, "tenants in order");
    let (acme_part, globex_part) = body.split_at(globex);
    assert!(acme_part[acme..].contains("acme alerts"));
    assert!(acme_part.contains(r#"<span class="status status-connected">connected</span>"#), "{body}");
    assert!(globex_part.contains("globex intake") && globex_part.contains("globex archive"));
    assert!(globex_part.contains(r#"<span class="status status-requires_action">requires_action</span>"#));
    assert!(globex_part.contains("Awaiting subscription"));
    assert!(globex_part.contains(r#"<span class="status status-paused">paused</span>"#));
    for count in ["connected: 1", "requires_action: 1", "paused: 1", "error: 0"] {
        assert!(body.contains(count), "count {count} in {body}");
    }
    // The webhook got a heartbeat but no data yet; the others got nothing.
    assert!(body.contains("never"));
    let stamps = rfc3339_cells(&body);
    assert_eq!(stamps, 3 + 1 + 3, "created (3), last heartbeat (1) and status last checked (3) times");
    server.stop().await;
}

/// Counts `YYYY-MM-DDTHH:MM:SS…Z` stamps without pulling in a regex crate.
fn rfc3339_cells(body: &str) -> usize {
    body.split("<td class=\"time\">")
        .skip(1)
        .filter(|cell| {
            let b = cell.as_bytes();
            b.len() > 20 && b[4] == b'-' && b[10] == b'T' && cell.split('<').next().is_some_and(|t| t.ends_with('Z'))
        })
        .count()
}

async fn user_chosen_text_is_escaped(server: TestServer) {
    let mut hook = hmac_webhook(SCRIPT, "s3cret");
    hook["name"] = json!(SCRIPT);
    let id = id_of(&server.create(hook).await);
    let (status, body) = page(server.admin(reqwest::Method::GET, "/")).await;
    assert_eq!(status, 200);
    assert!(!body.contains("<script"), "unescaped markup in {body}");
    // Askama writes `<` and `>` as numeric character references. The name links to the
    // connection's page.
    let escaped = "&#60;script&#62;alert(1)&#60;/script&#62;";
    assert!(body.contains(&format!(r#"<td><a href="/connections/{id}">{escaped}</a></td>"#)), "{body}");
    assert!(body.contains(&format!("Tenant {escaped}")));
    server.stop().await;
}

async fn destinations_are_listed_beside_the_connections(server: TestServer) {
    let (_, empty) = page(server.admin(reqwest::Method::GET, "/")).await;
    assert!(empty.contains("No destinations"), "{empty}");
    let ok = common::receiver::Receiver::start().await;
    let refusing = common::receiver::Receiver::start().await;
    refusing.answer(|_| common::receiver::Answer::status(401));
    server.create_destination(json!({"name": "SOC collector", "kind": "http", "config": {"url": ok.url}})).await;
    let bad = server.create_destination(json!({"name": SCRIPT, "kind": "http", "config": {"url": refusing.url}})).await;
    two_tenants(&server).await;
    // An event to forward: the refusing destination fails on it.
    let hook = id_of(&server.create(hmac_webhook("initech", "s4")).await);
    let body = br#"{"alert": "x"}"#;
    let pushed = server
        .client
        .post(server.url(&format!("/push/webhook/{hook}")))
        .header("x-signature", hmac_hex("s4", body))
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(pushed.status(), 200);
    server.wait_for_destination(bad["id"].as_str().unwrap(), "failing", Duration::from_secs(30), |d| d["status"] == "failing").await;
    let (status, body) = page(server.admin(reqwest::Method::GET, "/")).await;
    assert_eq!(status, 200);
    let section = &body[body.find("<h2>Destinations</h2>").expect("a destinations section")..body.find("Tenant acme").unwrap()];
    assert!(section.contains("<td>SOC collector</td>"), "{section}");
    assert!(section.contains(r#"<span class="status status-failing""#), "{section}");
    assert!(section.contains("HTTP 401"), "the last error is shown: {section}");
    assert!(!section.contains("<script"), "names are escaped");
    server.stop().await;
}

async fn login_sets_a_session_cookie_and_logout_clears_it(server: TestServer) {
    two_tenants(&server).await;
    let client = no_redirects();

    let (status, body) = page(client.post(server.url("/login")).form(&[("token", "wrong-token")])).await;
    assert_eq!(status, 401);
    assert!(body.contains("not valid") && body.contains(r#"action="/login""#) && !body.contains("acme"));

    let response = client.post(server.url("/login")).form(&[("token", ADMIN_TOKEN)]).send().await.unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/");
    let set_cookie = response.headers()["set-cookie"].to_str().unwrap().to_owned();
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    assert!(cookie.starts_with("pushgate_session="), "{set_cookie}");
    assert!(!set_cookie.contains(ADMIN_TOKEN), "the cookie holds a session id, not the token");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(set_cookie.split("; ").any(|a| a == attribute), "{attribute} missing from {set_cookie}");
    }
    assert!(!set_cookie.contains("Secure"), "plain-HTTP public URL: no Secure flag");

    let (status, body) = page(client.get(server.url("/")).header("cookie", &cookie)).await;
    assert_eq!(status, 200);
    assert!(body.contains("Tenant acme") && body.contains("acme alerts"), "{body}");

    let response = client.post(server.url("/logout")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(response.status(), 303);
    let cleared = response.headers()["set-cookie"].to_str().unwrap();
    assert!(cleared.starts_with("pushgate_session=;") && cleared.contains("Max-Age=0"), "{cleared}");

    // The old cookie no longer opens the dashboard, even if a browser kept it.
    let (status, body) = page(client.get(server.url("/")).header("cookie", &cookie)).await;
    assert_eq!(status, 200);
    assert!(body.contains(r#"action="/login""#) && !body.contains("acme"));

    let (status, _) = page(client.post(server.url("/login")).header("content-type", "application/json").body("{}")).await;
    assert_eq!(status, 400, "an unreadable login form is answered with the form, not a crash");
    server.stop().await;
}

/// What askama writes for `text` in HTML: the five markup characters as numeric references.
fn escaped(text: &str) -> String {
    text.replace('&', "&#38;").replace('<', "&#60;").replace('>', "&#62;").replace('"', "&#34;").replace('\'', "&#39;")
}

/// A webhook connection of `acme` named `name` with HMAC secret `s3cret`; its id.
async fn acme_hook(server: &TestServer, name: &str) -> String {
    let mut hook = hmac_webhook("acme", "s3cret");
    hook["name"] = json!(name);
    id_of(&server.create(hook).await)
}

/// The connection page as an admin (bearer token) sees it; panics unless it answers 200.
async fn connection_page(server: &TestServer, id: &str) -> String {
    let (status, body) = page(server.admin(reqwest::Method::GET, &format!("/connections/{id}"))).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Logs in with the admin token; the `pushgate_session=...` cookie pair.
async fn session_cookie(server: &TestServer) -> String {
    let response = no_redirects().post(server.url("/login")).form(&[("token", ADMIN_TOKEN)]).send().await.unwrap();
    assert_eq!(response.status(), 303);
    let set_cookie = response.headers()["set-cookie"].to_str().unwrap();
    set_cookie.split(';').next().unwrap().to_owned()
}

/// The sum of the counts the arrival chart's bars of `what` ("event", "heartbeat") say in
/// their titles (`13:00–14:00 UTC: 2 events`).
fn charted(body: &str, what: &str) -> i64 {
    body.split(r#"<rect class="bar""#)
        .skip(1)
        .filter_map(|bar| bar.split("<title>").nth(1)?.split("</title>").next())
        .filter_map(|title| {
            let (count, unit) = title.split_once(" UTC: ")?.1.split_once(' ')?;
            unit.trim_end_matches('s').eq(what).then(|| count.parse::<i64>().unwrap())
        })
        .sum()
}

const UNKNOWN_ID: &str = "00000000-0000-4000-8000-000000000000";

async fn the_connection_page_needs_the_token(server: TestServer) {
    let id = acme_hook(&server, "acme alerts").await;
    let path = format!("/connections/{id}");
    let (_, list) = page(server.admin(reqwest::Method::GET, "/")).await;
    assert!(list.contains(&format!(r#"<a href="{path}">acme alerts</a>"#)), "each row links to its page: {list}");

    // Without a token or session: to the login form, for known and unknown ids alike.
    for asked in [path.clone(), format!("/connections/{UNKNOWN_ID}"), "/connections/not-an-id".to_owned()] {
        let response = no_redirects().get(server.url(&asked)).send().await.unwrap();
        assert_eq!(response.status(), 303, "{asked}");
        assert_eq!(response.headers()["location"], "/");
        assert_eq!(response.headers()["cache-control"], "no-store");
        assert!(!response.text().await.unwrap().contains("acme"));
    }
    let (status, body) = page(server.client.get(server.url(&path)).bearer_auth("not-the-token")).await;
    assert_eq!(status, 401);
    assert!(body.contains("not valid") && body.contains(r#"action="/login""#) && !body.contains("acme alerts"), "{body}");

    // The bearer token and the session cookie both open it.
    let response = server.admin(reqwest::Method::GET, &path).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/html; charset=utf-8");
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert!(response.headers()["content-security-policy"].to_str().unwrap().starts_with("default-src 'none'"));
    assert!(response.text().await.unwrap().contains("<h1>acme alerts</h1>"));
    let cookie = session_cookie(&server).await;
    let (status, body) = page(server.client.get(server.url(&path)).header("cookie", &cookie)).await;
    assert_eq!(status, 200);
    assert!(body.contains("<h1>acme alerts</h1>") && body.contains(r#"<a href="/">All connections</a>"#), "{body}");
    server.stop().await;
}

async fn the_connection_page_says_what_the_status_means_and_where_to_look(server: TestServer) {
    let hook = acme_hook(&server, "acme alerts").await;
    let body = connection_page(&server, &hook).await;
    assert!(
        body.contains(
            r#"<span class="status status-requires_action">requires_action</span> <span class="message">Awaiting subscription</span>"#
        ),
        "{body}"
    );
    // The README's general row, its Markdown code as <code>; a webhook has no cloud table.
    assert!(body.contains("<h3>What it means</h3>"));
    assert!(body.contains(
        "nothing authentic has arrived yet, and the connection was created, or last resumed, less than <code>grace_seconds</code> + 15 min ago"
    ));
    assert!(!body.contains("look at</h3>"), "{body}");

    let sns = server
        .create(json!({"tenant_id": "acme", "name": "findings", "source": "aws_sns",
            "config": {"topic_arns": ["arn:aws:sns:us-east-1:123456789012:findings"]}}))
        .await;
    let body = connection_page(&server, &id_of(&sns)).await;
    assert!(body.contains("<h3>On AWS, look at</h3>"), "{body}");
    assert!(body.contains(
        "SNS: the subscription is pending (or waits for <code>POST …/confirm</code> with <code>auto_confirm: false</code>); API destination: nothing arrived yet"
    ));

    assert_eq!(server.push_signed(&hook, "s3cret", br#"{"alert": 1}"#).await, 200);
    let body = connection_page(&server, &hook).await;
    assert!(body.contains(r#"<p class="now"><span class="status status-connected">connected</span></p>"#), "{body}");
    assert!(body.contains(r#"<p class="why">all is well</p>"#));
    server.stop().await;
}

async fn refused_pushes_are_listed_on_the_connection_page(server: TestServer) {
    let id = acme_hook(&server, "acme alerts").await;
    for n in 0..21 {
        let response = server
            .client
            .post(server.url(&format!("/push/webhook/{id}")))
            .header("x-signature", "00".repeat(32))
            .body(format!(r#"{{"n": {n}}}"#))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
    }
    let kept = server.rejections(&id).await;
    assert_eq!(kept.len(), 21);
    let body = connection_page(&server, &id).await;
    assert_eq!(body.matches(r#"<tr class="rejection">"#).count(), 20, "the newest 20 only: {body}");
    let newest = &kept[0];
    let row = format!(
        r#"<td><code>{}</code></td><td>{}</td><td>{}</td></tr>"#,
        escaped(newest["reason"].as_str().unwrap()),
        escaped(newest["detail"].as_str().unwrap()),
        escaped(newest["source_addr"].as_str().unwrap()),
    );
    assert!(body.contains(&row), "{row} missing from {body}");
    assert!(body.contains(&format!(r#"title="{}""#, newest["at"].as_str().unwrap())), "the exact time is the title");
    assert!(body.contains("just now</time>") || body.contains(" s ago</time>"), "{body}");
    // Five refusals in a row: the status says so, and why.
    assert!(body.contains(r#"<span class="message">Signature verification failing</span>"#), "{body}");
    assert!(body.contains("the last 5 pushes were all refused as unauthenticated or malformed; one verified push clears it"));
    assert!(body.contains("<dt>Rejections</dt><dd>21</dd>"), "{body}");
    server.stop().await;
}

async fn the_arrival_chart_counts_signed_pushes(server: TestServer) {
    let id = acme_hook(&server, "acme alerts").await;
    let body = connection_page(&server, &id).await;
    assert_eq!(charted(&body, "event"), 0);
    assert_eq!(body.matches(r#"<rect class="bar""#).count(), 48, "two bars for each of 24 hours");
    for n in 0..3 {
        assert_eq!(server.push_signed(&id, "s3cret", format!(r#"{{"alert": {n}}}"#).as_bytes()).await, 200);
    }
    // A repeat is a duplicate: no new event.
    assert_eq!(server.push_signed(&id, "s3cret", br#"{"alert": 0}"#).await, 200);
    let body = connection_page(&server, &id).await;
    assert_eq!(charted(&body, "event"), 3, "{body}");
    assert!(body.contains(">3 events and "), "the chart's text alternative: {body}");
    assert!(body.contains("events: 3</li>"));
    assert!(body.contains("<dt>Events</dt><dd>3</dd>") && body.contains("<dt>Duplicates</dt><dd>1</dd>"), "{body}");
    server.stop().await;
}

async fn the_connection_page_escapes_user_chosen_text_and_hides_secrets(server: TestServer) {
    let text = r#"<script>alert("x")</script>'"#;
    let mut hook = hmac_webhook(text, "s3cret-value-42");
    hook["name"] = json!(text);
    let id = id_of(&server.create(hook).await);
    let body = connection_page(&server, &id).await;
    assert!(!body.contains("<script"), "unescaped markup in {body}");
    let safe = escaped(text);
    assert!(body.contains(&format!("<h1>{safe}</h1>")), "{body}");
    assert!(body.contains(&format!("Tenant <strong>{safe}</strong>")));
    assert!(body.contains(&format!(r#"<title id="timeline-title">Status of {safe} over the last 7 days</title>"#)));
    assert!(!body.contains("s3cret-value-42"), "a secret on the page: {body}");
    assert!(body.contains("&#34;secret&#34;: &#34;***&#34;"), "the public configuration: {body}");
    server.stop().await;
}

async fn unknown_and_malformed_connection_ids(server: TestServer) {
    let (status, body) = page(server.admin(reqwest::Method::GET, &format!("/connections/{UNKNOWN_ID}"))).await;
    assert_eq!(status, 404);
    assert!(body.contains("<h1>No such connection</h1>") && body.contains(UNKNOWN_ID), "{body}");
    let (status, body) = page(server.admin(reqwest::Method::GET, "/connections/not-an-id")).await;
    assert_eq!(status, 400);
    assert!(body.contains("not-an-id") && body.contains("is not a connection id"), "{body}");
    let (status, body) = page(server.admin(reqwest::Method::GET, "/connections/%3Cscript%3E")).await;
    assert_eq!(status, 400);
    assert!(!body.contains("<script") && body.contains("&#60;script&#62;"), "{body}");
    server.stop().await;
}

mod own_server_connection_page {
    use super::*;
    on_both_backends_with!(the_timeline_shows_the_transitions_the_monitor_recorded);
}

async fn the_timeline_shows_the_transitions_the_monitor_recorded(backend: Backend) {
    let Some(server) = TestServer::builder(backend, "dashboard_timeline").env("PUSHGATE_MONITOR_INTERVAL_MS", "100").start().await else {
        return;
    };
    let id = acme_hook(&server, "acme alerts").await;
    // Two passes: the first may have begun before the connection existed.
    server.monitor_passes(2).await;
    assert_eq!(server.push_signed(&id, "s3cret", br#"{"alert": 1}"#).await, 200);
    server.monitor_passes(2).await;
    let history = server.get_json(&format!("/v1/connections/{id}/history")).await["history"].as_array().unwrap().clone();
    let statuses: Vec<&str> = history.iter().map(|h| h["new_status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["requires_action", "connected"], "{history:?}");
    let (awaiting, connected) = (history[0]["at"].as_str().unwrap(), history[1]["at"].as_str().unwrap());

    let body = connection_page(&server, &id).await;
    let timeline = &body[body.find(r#"<svg class="timeline""#).expect("a timeline")..];
    let timeline = &timeline[..timeline.find("</svg>").unwrap()];
    assert!(timeline.contains(r#"role="img""#) && timeline.contains("<desc id=\"timeline-desc\">"), "{timeline}");
    let segments: Vec<&str> = timeline.split(r#"<rect class="segment""#).skip(1).collect();
    assert_eq!(segments.len(), 3, "not yet checked, awaiting, connected: {timeline}");
    assert!(
        segments[1].contains(&format!("<title>requires_action: Awaiting subscription, {awaiting} – {connected}</title>")),
        "{timeline}"
    );
    assert!(segments[1].contains(r##"fill="#f2a900""##));
    assert!(segments[2].contains(&format!("<title>connected, {connected} – ")) && segments[2].contains(r##"fill="#1f8a3b""##));
    assert!(body.contains(r#"<ul class="legend">"#) && body.contains("</span>connected</li>"));
    // The same changes as a table, newest first.
    let table = &body[body.find("<caption>Status changes since").expect("a table of the changes")..];
    let (first, second) = (table.find("status-connected").unwrap(), table.find("status-requires_action").unwrap());
    assert!(first < second, "{table}");
    server.stop().await;
}

/// The heartbeat series of the arrival chart, from heartbeats the store keeps by their
/// sender's id (a repeat of an id is not counted twice).
#[tokio::test]
async fn connection_page_charts_heartbeats() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(server) = TestServer::builder(backend, "dashboard_heartbeats").start().await else { continue };
        let id = acme_hook(&server, "acme alerts").await;
        let unique = chrono::Utc::now().timestamp_nanos_opt().unwrap();
        let heartbeat = |n: i64| {
            let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            format!(r#"{{"type":"heartbeat","id":"hb-{unique}-{n}","time":"{time}"}}"#)
        };
        let first = heartbeat(1);
        for body in [first.clone(), heartbeat(2), first] {
            assert_eq!(server.push_signed(&id, "s3cret", body.as_bytes()).await, 200);
        }
        let body = connection_page(&server, &id).await;
        assert_eq!(charted(&body, "heartbeat"), 2, "{body}");
        assert_eq!(charted(&body, "event"), 0);
        assert!(body.contains(">0 events and 2 heartbeats arrived"), "{body}");
        assert!(body.contains("heartbeats: 2</li>"));
        server.stop().await;
    }
}

#[tokio::test]
async fn secure_cookie_when_served_over_https() {
    let server = TestServer::builder(Backend::Sqlite, "dashboard_https")
        .env("PUSHGATE_PUBLIC_URL", "https://pushgate.example")
        .start()
        .await
        .unwrap();
    let response = no_redirects().post(server.url("/login")).form(&[("token", ADMIN_TOKEN)]).send().await.unwrap();
    assert_eq!(response.status(), 303);
    let set_cookie = response.headers()["set-cookie"].to_str().unwrap();
    assert!(set_cookie.ends_with("; Secure"), "{set_cookie}");
    server.stop().await;
}

const CHROMIUM: &str = "/usr/bin/chromium";

/// Whether Chromium is there to run; a missing one is a failure when the test script
/// found it (`PUSHGATE_REQUIRE_CHROMIUM=1`) and a loud skip otherwise.
fn chromium_installed(test: &str) -> bool {
    if Path::new(CHROMIUM).exists() {
        return true;
    }
    assert!(std::env::var("PUSHGATE_REQUIRE_CHROMIUM").as_deref() != Ok("1"), "PUSHGATE_REQUIRE_CHROMIUM=1 but {CHROMIUM} is missing");
    eprintln!("\n*** SKIPPED ({test}: {CHROMIUM} is not installed; apt-get install chromium) ***\n");
    false
}

/// A cookie cannot be handed to Chromium on its command line, so the Chromium tests log
/// in with reqwest and point Chromium at a small local proxy that adds that session
/// cookie to every request it forwards; the proxy's base URL (ending in `/`).
async fn logged_in_proxy(server: &TestServer) -> String {
    proxy::start(server.base.clone(), session_cookie(server).await).await
}

/// Renders the dashboard in headless Chromium, through [`logged_in_proxy`].
#[tokio::test]
async fn headless_chromium_renders_the_dashboard() {
    if !chromium_installed("headless_chromium_renders_the_dashboard") {
        return;
    }
    let server = TestServer::builder(Backend::Sqlite, "dashboard_chromium").start().await.unwrap();
    two_tenants(&server).await;
    let receiver = common::receiver::Receiver::start().await;
    server.create_destination(json!({"name": "SOC collector", "kind": "http", "config": {"url": receiver.url}})).await;
    let proxy = logged_in_proxy(&server).await;

    let dir = tempfile::tempdir().unwrap();
    let screenshot = dir.path().join("dash.png");
    let (ok, _) =
        chromium(dir.path(), "shot", &[format!("--screenshot={}", screenshot.display()), "--window-size=1280,900".into()], &proxy).await;
    assert!(ok, "chromium --screenshot failed");
    let png = std::fs::read(&screenshot).expect("chromium wrote the screenshot");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "a PNG file");
    assert!(png.len() > 5 * 1024, "a non-trivial screenshot: {} bytes", png.len());
    eprintln!("headless chromium: screenshot {} bytes", png.len());

    let (ok, dom) = chromium(dir.path(), "dom", &["--dump-dom".into()], &proxy).await;
    assert!(ok, "chromium --dump-dom failed");
    for expected in [
        "Tenant acme",
        "Tenant globex",
        ">connected<",
        ">requires_action<",
        "acme alerts",
        "Awaiting subscription",
        "Destinations",
        "SOC collector",
    ] {
        assert!(dom.contains(expected), "{expected} missing from the rendered DOM: {dom}");
    }
    assert!(!dom.contains(r#"action="/login""#), "Chromium saw the dashboard, not the login form");
    server.stop().await;
}

/// Renders one connection's page in headless Chromium: the status and why, and both
/// charts drawn as SVG in the DOM the browser built.
#[tokio::test]
async fn headless_chromium_renders_a_connection_page() {
    if !chromium_installed("headless_chromium_renders_a_connection_page") {
        return;
    }
    let server = TestServer::builder(Backend::Sqlite, "dashboard_chromium_connection").start().await.unwrap();
    let id = acme_hook(&server, "acme alerts").await;
    for n in 0..2 {
        assert_eq!(server.push_signed(&id, "s3cret", format!(r#"{{"alert": {n}}}"#).as_bytes()).await, 200);
    }
    let response = server
        .client
        .post(server.url(&format!("/push/webhook/{id}")))
        .header("x-signature", "00".repeat(32))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let page_url = format!("{}connections/{id}", logged_in_proxy(&server).await);

    let dir = tempfile::tempdir().unwrap();
    let screenshot = dir.path().join("connection.png");
    let (ok, _) =
        chromium(dir.path(), "shot", &[format!("--screenshot={}", screenshot.display()), "--window-size=1280,1600".into()], &page_url)
            .await;
    assert!(ok, "chromium --screenshot failed");
    let png = std::fs::read(&screenshot).expect("chromium wrote the screenshot");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "a PNG file");
    assert!(png.len() > 5 * 1024, "a non-trivial screenshot: {} bytes", png.len());
    // PUSHGATE_KEEP_SCREENSHOT=<file.png> keeps the picture, for a person to look at.
    if let Ok(keep) = std::env::var("PUSHGATE_KEEP_SCREENSHOT") {
        std::fs::copy(&screenshot, keep).unwrap();
    }

    let (ok, dom) = chromium(dir.path(), "dom", &["--dump-dom".into()], &page_url).await;
    assert!(ok, "chromium --dump-dom failed");
    for expected in [
        "<h1>acme alerts</h1>",
        "Status now",
        ">connected<",
        "all is well",
        r#"<svg class="timeline""#,
        r#"<rect class="segment""#,
        r#"<svg class="arrivals""#,
        "2 events and ",
        "Last rejections",
        r#"<tr class="rejection">"#,
    ] {
        assert!(dom.contains(expected), "{expected} missing from the rendered DOM: {dom}");
    }
    assert!(!dom.contains(r#"action="/login""#), "Chromium saw the connection page, not the login form");
    server.stop().await;
}

/// Runs headless Chromium on `url` with its own profile under `dir`; returns whether it
/// succeeded and what it printed. Stopped after two minutes, so a hung browser fails the
/// test instead of hanging it.
async fn chromium(dir: &Path, name: &str, extra: &[String], url: &str) -> (bool, String) {
    let profile = dir.join(format!("profile-{name}"));
    let stdout_path = dir.join(format!("{name}.out"));
    let stderr_path = dir.join(format!("{name}.err"));
    let mut args: Vec<String> = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--virtual-time-budget=2000",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    args.push(format!("--user-data-dir={}", profile.display()));
    args.extend(extra.iter().cloned());
    args.push(url.to_owned());
    let (out, err) = (stdout_path.clone(), stderr_path.clone());
    let home: PathBuf = dir.to_path_buf();
    let ok = tokio::task::spawn_blocking(move || {
        // Output goes to files: a pipe nobody reads while we wait could fill and stall it.
        let mut child = std::process::Command::new(CHROMIUM)
            .args(&args)
            .env("HOME", home)
            .stdin(std::process::Stdio::null())
            .stdout(std::fs::File::create(out).unwrap())
            .stderr(std::fs::File::create(err).unwrap())
            .spawn()
            .expect("chromium starts");
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status.success();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    })
    .await
    .unwrap();
    let stdout = std::fs::read_to_string(&stdout_path).unwrap_or_default();
    if !ok {
        eprintln!("chromium stderr:\n{}", std::fs::read_to_string(&stderr_path).unwrap_or_default());
    }
    (ok, stdout)
}

mod proxy {
    //! A one-route HTTP proxy on 127.0.0.1 that forwards GETs to pushgate with a session
    //! cookie added: how the Chromium test gets a logged-in browser without JavaScript.

    use std::sync::Arc;

    use axum::extract::State;
    use axum::http::{header, StatusCode, Uri};
    use axum::response::{IntoResponse, Response};

    struct Target {
        client: reqwest::Client,
        base: String,
        cookie: String,
    }

    /// Starts the proxy in the background; returns its base URL.
    pub async fn start(base: String, cookie: String) -> String {
        let target = Arc::new(Target { client: reqwest::Client::new(), base, cookie });
        let app = axum::Router::new().fallback(forward).with_state(target);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    async fn forward(State(target): State<Arc<Target>>, uri: Uri) -> Response {
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let answer = target.client.get(format!("{}{path}", target.base)).header(header::COOKIE, &target.cookie).send().await;
        let Ok(answer) = answer else {
            return StatusCode::BAD_GATEWAY.into_response();
        };
        let status = StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
        let content_type = answer.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("text/plain").to_owned();
        let body = answer.bytes().await.unwrap_or_default();
        (status, [(header::CONTENT_TYPE, content_type)], body).into_response()
    }
}
