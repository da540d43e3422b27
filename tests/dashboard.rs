//! The HTML health dashboard end to end: the login form, bearer and cookie access,
//! escaping of user-chosen text, login and logout, on SQLite and PostgreSQL; and one
//! rendering in headless Chromium (skipped, loudly, when Chromium is not installed).

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
    server.create(hook).await;
    let (status, body) = page(server.admin(reqwest::Method::GET, "/")).await;
    assert_eq!(status, 200);
    assert!(!body.contains("<script"), "unescaped markup in {body}");
    // Askama writes `<` and `>` as numeric character references.
    let escaped = "&#60;script&#62;alert(1)&#60;/script&#62;";
    assert!(body.contains(&format!("<td>{escaped}</td>")), "{body}");
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

/// Renders the dashboard in headless Chromium. A cookie cannot be handed to Chromium on
/// its command line, so the test logs in with reqwest and points Chromium at a small
/// local proxy that adds that session cookie to every request it forwards.
#[tokio::test]
async fn headless_chromium_renders_the_dashboard() {
    if !Path::new(CHROMIUM).exists() {
        assert!(std::env::var("PUSHGATE_REQUIRE_CHROMIUM").as_deref() != Ok("1"), "PUSHGATE_REQUIRE_CHROMIUM=1 but {CHROMIUM} is missing");
        eprintln!("\n*** SKIPPED (headless_chromium_renders_the_dashboard: {CHROMIUM} is not installed; apt-get install chromium) ***\n");
        return;
    }
    let server = TestServer::builder(Backend::Sqlite, "dashboard_chromium").start().await.unwrap();
    two_tenants(&server).await;
    let receiver = common::receiver::Receiver::start().await;
    server.create_destination(json!({"name": "SOC collector", "kind": "http", "config": {"url": receiver.url}})).await;
    let response = no_redirects().post(server.url("/login")).form(&[("token", ADMIN_TOKEN)]).send().await.unwrap();
    assert_eq!(response.status(), 303);
    let set_cookie = response.headers()["set-cookie"].to_str().unwrap();
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let proxy = proxy::start(server.base.clone(), cookie).await;

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
