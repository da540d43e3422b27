//! `GET /metrics` end to end: a real server, real pushes, and the Prometheus text read back
//! with the names and labels the alert rules and the dashboard in `infra/` expect.

mod common;

use common::{hmac_hex, hmac_webhook, TestServer};
use reqwest::Method;

on_both_backends!(metrics_require_the_admin_token, metrics_follow_pushes_and_deletions);

async fn scrape(server: &TestServer) -> String {
    let response = server.admin(Method::GET, "/metrics").send().await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    response.text().await.unwrap()
}

/// The value of the sample whose line starts with `name{` and holds every one of `labels`
/// (as `key="value"`), when exactly one line does.
fn sample(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    let prefix = format!("{name}{{");
    let matching: Vec<&str> = text.lines().filter(|line| line.starts_with(&prefix) && labels.iter().all(|l| line.contains(l))).collect();
    assert!(matching.len() <= 1, "several samples of {name} match {labels:?}: {matching:?}");
    matching.first().map(|line| line.rsplit(' ').next().unwrap().parse().unwrap())
}

/// Runs `promtool check metrics` on the exposition, when promtool is installed.
fn promtool_accepts(text: &str) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let child =
        Command::new("promtool").args(["check", "metrics"]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn();
    let Ok(mut child) = child else {
        eprintln!("promtool is not installed: the exposition was not checked with `promtool check metrics`");
        return;
    };
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success() && said.trim().is_empty(), "promtool check metrics: {said}\n{text}");
}

async fn metrics_require_the_admin_token(server: TestServer) {
    let bare = server.client.get(server.url("/metrics")).send().await.unwrap();
    assert_eq!(bare.status(), 401);
    let body: serde_json::Value = bare.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
    let wrong = server.client.get(server.url("/metrics")).bearer_auth("not-the-token").send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    server.stop().await;
}

async fn metrics_follow_pushes_and_deletions(server: TestServer) {
    let created = server.create(hmac_webhook("acme", "s3cret")).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let push = |body: &'static [u8], secret: &'static str| {
        server.client.post(server.url(&format!("/push/webhook/{id}"))).header("x-signature", hmac_hex(secret, body)).body(body).send()
    };
    let event = br#"{"alert": "impossible travel"}"#;
    assert_eq!(push(event, "s3cret").await.unwrap().status(), 200);
    assert_eq!(push(event, "s3cret").await.unwrap().status(), 200); // a duplicate
    assert_eq!(push(event, "other").await.unwrap().status(), 401); // a bad signature
    let heartbeat: &'static [u8] = common::heartbeat_body().leak();
    assert_eq!(push(heartbeat, "s3cret").await.unwrap().status(), 200);
    // A route naming no source counts as a refusal from `unknown`.
    let nowhere = server.client.post(server.url(&format!("/push/nowhere/{id}"))).body("{}").send().await.unwrap();
    assert_eq!(nowhere.status(), 404);

    let text = scrape(&server).await;
    let this = format!("id=\"{id}\"");
    let identity = [this.as_str(), r#"tenant="acme""#, r#"source="webhook""#, r#"stream="webhook_event""#];
    let with = |extra: &'static str| identity.iter().copied().chain([extra]).collect::<Vec<_>>();
    assert_eq!(sample(&text, "pushgate_connection_status", &with(r#"status="connected""#)), Some(1.0), "{text}");
    for other in [r#"status="requires_action""#, r#"status="paused""#, r#"status="error""#] {
        assert_eq!(sample(&text, "pushgate_connection_status", &with(other)), Some(0.0), "{text}");
    }
    let since_heartbeat = sample(&text, "pushgate_connection_seconds_since_heartbeat", &identity).expect("a heartbeat arrived");
    assert!((0.0..60.0).contains(&since_heartbeat), "{since_heartbeat}");
    assert!(sample(&text, "pushgate_connection_seconds_since_data", &identity).is_some(), "{text}");
    assert_eq!(sample(&text, "pushgate_events_total", &identity), Some(1.0), "{text}");
    assert_eq!(sample(&text, "pushgate_duplicates_total", &identity), Some(1.0), "{text}");
    assert!(text.contains("# TYPE pushgate_events_total counter"), "{text}");
    assert!(text.contains("# TYPE pushgate_duplicates_total counter"), "{text}");
    assert!(text.contains("# TYPE pushgate_connection_status gauge"), "{text}");

    let bad_signatures = sample(&text, "pushgate_rejections_total", &[r#"source="webhook""#, r#"reason="bad_signature""#]);
    assert!(bad_signatures >= Some(1.0), "{text}");
    let unknown = sample(&text, "pushgate_rejections_total", &[r#"source="unknown""#, r#"reason="unknown_route""#]);
    assert!(unknown >= Some(1.0), "{text}");

    let push_route = [r#"route="/push/{source}/{id}""#, r#"method="POST""#];
    let answered = |code: &'static str| push_route.iter().copied().chain([code]).collect::<Vec<_>>();
    assert!(sample(&text, "pushgate_requests_total", &answered(r#"code="200""#)) >= Some(2.0), "{text}");
    assert!(sample(&text, "pushgate_requests_total", &answered(r#"code="401""#)) >= Some(1.0), "{text}");
    let created_route = [r#"route="/v1/connections""#, r#"method="POST""#, r#"code="201""#];
    assert_eq!(sample(&text, "pushgate_requests_total", &created_route), Some(1.0), "{text}");
    // Raw paths never become labels: the connection id appears only on connection series.
    assert!(!text.lines().any(|l| l.starts_with("pushgate_request") && l.contains(&id)), "{text}");
    assert!(text.contains("# TYPE pushgate_request_duration_seconds histogram"), "{text}");
    let buckets = text
        .lines()
        .filter(|l| l.starts_with("pushgate_request_duration_seconds_bucket{") && push_route.iter().all(|p| l.contains(p)))
        .count();
    assert_eq!(buckets, 15, "14 bounds and +Inf: {text}");
    assert!(text.contains("pushgate_request_duration_seconds_count{"), "{text}");
    promtool_accepts(&text);

    let deleted = server.admin(Method::DELETE, &format!("/v1/connections/{id}")).send().await.unwrap();
    assert!(deleted.status().is_success(), "{}", deleted.status());
    let text = scrape(&server).await;
    assert!(!text.contains(&this), "a deleted connection's series remain: {text}");
    // Process counters stay: the scrape before this one is counted by now.
    let scrapes = [r#"route="/metrics""#, r#"method="GET""#, r#"code="200""#];
    assert!(sample(&text, "pushgate_requests_total", &scrapes) >= Some(1.0), "{text}");
    promtool_accepts(&text);
    server.stop().await;
}
