//! The connections admin API over real HTTP, on SQLite and PostgreSQL.

mod common;

use common::{hmac_hex, hmac_webhook, TestServer, ADMIN_TOKEN};
use reqwest::Method;
use serde_json::{json, Value};

on_both_backends!(
    admin_routes_need_the_admin_token,
    every_source_can_be_created_with_its_push_url,
    invalid_connections_are_refused_with_every_problem,
    secrets_are_write_only,
    patch_keeps_masked_secrets_and_replaces_new_ones,
    list_filters,
    events_are_paged_newest_first,
    delete_removes_the_connection,
    bad_ids_limits_and_cursors,
    health_counts_and_probes,
    errors_are_json_everywhere,
);

fn id_of(c: &Value) -> String {
    c["id"].as_str().unwrap().to_owned()
}

async fn send(server: &TestServer, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = server.admin(method, path);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn admin_routes_need_the_admin_token(server: TestServer) {
    for (token, label) in [(None, "no token"), (Some("wrong-token-0123456789"), "wrong token"), (Some(""), "empty token")] {
        let mut request = server.client.get(server.url("/v1/connections"));
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "{label}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unauthorized", "{label}");
    }
    let response = server.client.post(server.url("/v1/connections")).json(&hmac_webhook("t", "s")).send().await.unwrap();
    assert_eq!(response.status(), 401);
    let response =
        server.client.get(server.url("/v1/connections")).header("authorization", format!("Basic {ADMIN_TOKEN}")).send().await.unwrap();
    assert_eq!(response.status(), 401, "only bearer tokens");
    assert_eq!(send(&server, Method::GET, "/v1/connections", None).await.0, 200);
    server.stop().await;
}

async fn every_source_can_be_created_with_its_push_url(server: TestServer) {
    let cases = [
        ("aws_sns", json!({"topic_arns": ["arn:aws:sns:eu-west-1:123456789012:findings"]}), "aws-sns", "cloud_aws_securityhub_alert"),
        (
            "aws_eventbridge",
            json!({"auth": {"type": "api_key", "header": "X-Key", "value": "v"}}),
            "aws-eventbridge",
            "cloud_aws_securityhub_alert",
        ),
        ("gcp_pubsub", json!({"service_account_email": "push@p.iam.gserviceaccount.com"}), "gcp-pubsub", "cloud_gcp_security_finding"),
        ("ms_graph", json!({"client_state": "state"}), "ms-graph", "cloud_ms_graph_alert"),
        ("o365_activity", json!({"auth_id": "auth"}), "o365-activity", "cloud_ms_o365_activity_log"),
        ("webhook", json!({"auth": {"type": "hmac_sha256", "header": "X-Sig", "secret": "s"}}), "webhook", "webhook_event"),
    ];
    for (source, config, segment, stream) in cases {
        let c = server.create(json!({"tenant_id": "acme", "name": source, "source": source, "config": config})).await;
        let id = id_of(&c);
        assert_eq!(c["push_url"], server.url(&format!("/push/{segment}/{id}")), "{source}");
        assert_eq!(c["stream"], stream, "{source}");
        assert_eq!(c["source"], source);
        assert_eq!(c["grace_seconds"], 60);
        assert_eq!(c["heartbeat_interval_seconds"], Value::Null);
        assert!(c["created_at"].is_string());
        assert_eq!(c["activated_at"], c["created_at"], "{source}: active from its creation");
        // `status_last_checked_at` is null until the monitor first evaluates the
        // connection, which may happen before this answer: tests/connection_times.rs
        // pins both cases down.
        for field in ["data_last_received_at", "last_heartbeat_at", "status_message", "status_last_checked_at"] {
            assert!(c.get(field).is_some(), "{field} present");
        }
        let mut subscription = json!({"confirmed_at": null, "external_id": null, "expires_at": null});
        if source == "ms_graph" {
            // Graph adds what its lifecycle notifications report.
            subscription["reauthorization_required_at"] = Value::Null;
            subscription["missed_at"] = Value::Null;
        }
        assert_eq!(c["subscription"], subscription, "{source}");
        assert_eq!(c["counters"], json!({"events": 0, "heartbeats": 0, "duplicates": 0, "rejections": 0}));
    }
    let custom = server
        .create(json!({"tenant_id": "acme", "name": "n", "source": "webhook", "stream": "custom_alerts",
            "heartbeat_interval_seconds": 600, "grace_seconds": 30,
            "config": {"auth": {"type": "api_key", "header": "X", "value": "v"}}}))
        .await;
    assert_eq!(
        (custom["stream"].as_str(), custom["heartbeat_interval_seconds"].as_i64(), custom["grace_seconds"].as_i64()),
        (Some("custom_alerts"), Some(600), Some(30))
    );
    server.stop().await;
}

async fn invalid_connections_are_refused_with_every_problem(server: TestServer) {
    let cases = [
        (json!({"tenant_id": "t", "name": "n", "source": "carrier_pigeon"}), vec!["carrier_pigeon"]),
        (json!({"tenant_id": "t", "name": "n", "source": "aws_sns", "config": {}}), vec!["topic_arns"]),
        (json!({"tenant_id": "t", "name": "n", "source": "gcp_pubsub", "config": {}}), vec!["service_account_email"]),
        (json!({"tenant_id": "t", "name": "n", "source": "ms_graph", "config": {}}), vec!["client_state"]),
        (json!({"tenant_id": "t", "name": "n", "source": "o365_activity", "config": {}}), vec!["auth_id"]),
        (
            json!({"tenant_id": "t", "name": "n", "source": "webhook", "config": {"auth": {"type": "hmac_sha256"}}}),
            vec!["auth.header", "auth.secret"],
        ),
        (
            json!({"tenant_id": "", "name": "", "source": "webhook", "heartbeat_interval_seconds": 0,
            "config": {"auth": {"type": "api_key", "header": "X", "value": "v"}, "typo": 1}}),
            vec!["tenant_id", "name", "heartbeat_interval_seconds", "typo"],
        ),
    ];
    for (body, needles) in cases {
        let (status, answer) = send(&server, Method::POST, "/v1/connections", Some(body.clone())).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(answer["error"]["code"], "invalid_connection");
        let message = answer["error"]["message"].as_str().unwrap();
        for needle in needles {
            assert!(message.contains(needle), "`{needle}` missing from `{message}`");
        }
    }
    for (raw, code) in [
        ("{not json", "invalid_request"),
        (r#"{"tenant_id": "t"}"#, "invalid_request"),
        (r#"{"tenant_id": "t", "name": "n", "source": "webhook", "extra": 1}"#, "invalid_request"),
    ] {
        let response =
            server.admin(Method::POST, "/v1/connections").header("content-type", "application/json").body(raw).send().await.unwrap();
        assert_eq!(response.status(), 400, "{raw}");
        assert_eq!(response.json::<Value>().await.unwrap()["error"]["code"], code);
    }
    assert!(server.get_json("/v1/connections").await["connections"].as_array().unwrap().is_empty(), "nothing half-created");
    server.stop().await;
}

async fn secrets_are_write_only(server: TestServer) {
    // The key must parse (config validation checks it); one of its base64 lines stands for it.
    let pem = pushgate::sources::ms_graph::test_rich::TestRichKey::generate("k1").private_key_pem();
    let pem_line = pem.lines().nth(3).unwrap().to_string();
    let secrets = ["hmac-secret-AAAA", pem_line.as_str(), "graph-client-secret-CCCC", "client-state-DDDD"];
    let webhook = server.create(hmac_webhook("acme", secrets[0])).await;
    assert_eq!(webhook["config"]["auth"]["secret"], "***");
    assert_eq!(webhook["config"]["auth"]["header"], "X-Signature");
    let graph = server
        .create(json!({"tenant_id": "acme", "name": "graph", "source": "ms_graph", "config": {
            "client_state": secrets[3], "app_ids": ["00000000-0000-0000-0000-00000000a001"],
            "encryption_keys": [{"id": "k1", "private_key_pem": pem}],
            "subscription": {"resource": "users", "change_type": "updated", "tenant_id": "t", "client_id": "c", "client_secret": secrets[2]}}}))
        .await;
    assert_eq!(graph["config"]["encryption_keys"][0], json!({"id": "k1", "private_key_pem": "***"}));
    let mut everything = String::new();
    for path in [
        "/v1/connections".to_string(),
        format!("/v1/connections/{}", id_of(&webhook)),
        format!("/v1/connections/{}", id_of(&graph)),
        "/v1/health".into(),
    ] {
        everything.push_str(&server.get_json(&path).await.to_string());
    }
    for secret in secrets {
        assert!(!everything.contains(secret), "{secret} leaked");
    }
    server.stop().await;
}

async fn patch_keeps_masked_secrets_and_replaces_new_ones(server: TestServer) {
    let c = server.create(hmac_webhook("acme", "first-secret")).await;
    let id = id_of(&c);
    let path = format!("/v1/connections/{id}");
    let mut config = c["config"].clone();
    config["auth"]["header"] = json!("X-Renamed");
    let (status, patched) =
        send(&server, Method::PATCH, &path, Some(json!({"name": "renamed", "config": config, "heartbeat_interval_seconds": null}))).await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!((patched["name"].as_str(), patched["heartbeat_interval_seconds"].clone()), (Some("renamed"), Value::Null));
    assert_eq!(patched["config"]["auth"], json!({"type": "hmac_sha256", "header": "X-Renamed", "secret": "***"}));
    let push = |secret: &'static str| {
        let server = &server;
        let id = id.clone();
        async move {
            let body = b"{\"a\": 1}";
            server
                .client
                .post(server.url(&format!("/push/webhook/{id}")))
                .header("x-renamed", hmac_hex(secret, body))
                .body(&body[..])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(push("first-secret").await, 200, "the masked secret was kept");

    let (status, _) = send(
        &server,
        Method::PATCH,
        &path,
        Some(json!({"config": {"auth": {"type": "hmac_sha256", "header": "X-Renamed", "secret": ["second-secret"]}}})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(push("first-secret").await, 401);
    assert_eq!(push("second-secret").await, 200, "patches apply to the push path at once");

    // A literal mask with nothing stored behind it never becomes a secret.
    let (status, answer) = send(
        &server,
        Method::PATCH,
        &path,
        Some(json!({"config": {"auth": {"type": "hmac_sha256", "header": "X-Renamed", "secret": ["third", "***"]}}})),
    )
    .await;
    assert_eq!((status, answer["error"]["code"].as_str()), (400, Some("invalid_connection")));
    assert_eq!(push("second-secret").await, 200);
    let (status, _) = send(&server, Method::POST, "/v1/connections", Some(hmac_webhook("acme", "***"))).await;
    assert_eq!(status, 400);

    let (status, answer) = send(&server, Method::PATCH, &path, Some(json!({"source": "aws_sns"}))).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (400, Some("invalid_request")));
    let (status, answer) =
        send(&server, Method::PATCH, &path, Some(json!({"config": {"auth": {"type": "basic"}}, "grace_seconds": -5}))).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (400, Some("invalid_connection")));
    assert!(answer["error"]["message"].as_str().unwrap().contains("grace_seconds"));
    assert_eq!(server.connection(&id).await["name"], "renamed", "a refused patch changes nothing");
    server.stop().await;
}

async fn list_filters(server: TestServer) {
    let a = server.create(hmac_webhook("alpha", "s")).await;
    server.create(hmac_webhook("beta", "s")).await;
    server.create(json!({"tenant_id": "alpha", "name": "o365", "source": "o365_activity", "config": {"auth_id": "x"}})).await;
    let names =
        |v: Value| v["connections"].as_array().unwrap().iter().map(|c| c["tenant_id"].as_str().unwrap().to_owned()).collect::<Vec<_>>();
    assert_eq!(names(server.get_json("/v1/connections").await).len(), 3);
    assert_eq!(names(server.get_json("/v1/connections?tenant_id=alpha").await), ["alpha", "alpha"]);
    assert_eq!(names(server.get_json("/v1/connections?source=webhook").await), ["alpha", "beta"]);
    assert_eq!(names(server.get_json("/v1/connections?tenant_id=alpha&source=webhook").await), ["alpha"]);
    send(&server, Method::POST, &format!("/v1/connections/{}/pause", id_of(&a)), None).await;
    let paused = server.get_json("/v1/connections?status=paused").await;
    assert_eq!(paused["connections"][0]["id"], a["id"]);
    assert_eq!(names(server.get_json("/v1/connections?status=requires_action").await).len(), 2);
    for bad in ["/v1/connections?status=sleepy", "/v1/connections?source=fax"] {
        let (status, answer) = send(&server, Method::GET, bad, None).await;
        assert_eq!((status, answer["error"]["code"].as_str()), (400, Some("invalid_filter")));
    }
    server.stop().await;
}

async fn events_are_paged_newest_first(server: TestServer) {
    let id = id_of(&server.create(hmac_webhook("acme", "s")).await);
    for i in 0..5 {
        let body = format!(r#"{{"n": {i}}}"#);
        let response = server
            .client
            .post(server.url(&format!("/push/webhook/{id}")))
            .header("x-signature", hmac_hex("s", body.as_bytes()))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let mut seen = Vec::new();
    let mut path = format!("/v1/connections/{id}/events?limit=2");
    let mut pages = 0;
    loop {
        let page = server.get_json(&path).await;
        pages += 1;
        seen.extend(page["events"].as_array().unwrap().iter().map(|e| e["payload"]["n"].as_i64().unwrap()));
        match page["next_after"].as_str() {
            Some(cursor) => path = format!("/v1/connections/{id}/events?limit=2&after={cursor}"),
            None => break,
        }
    }
    assert_eq!((seen, pages), (vec![4, 3, 2, 1, 0], 3));
    server.stop().await;
}

async fn delete_removes_the_connection(server: TestServer) {
    let id = id_of(&server.create(hmac_webhook("acme", "s")).await);
    let path = format!("/v1/connections/{id}");
    let response = server.admin(Method::DELETE, &path).send().await.unwrap();
    assert_eq!(response.status(), 204);
    let (status, answer) = send(&server, Method::GET, &path, None).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (404, Some("connection_not_found")));
    assert_eq!(send(&server, Method::DELETE, &path, None).await.0, 404);
    let pushed = server
        .client
        .post(server.url(&format!("/push/webhook/{id}")))
        .header("x-signature", hmac_hex("s", b"{}"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(pushed.status(), 404, "a deleted connection takes no pushes");
    server.stop().await;
}

async fn bad_ids_limits_and_cursors(server: TestServer) {
    let id = id_of(&server.create(hmac_webhook("acme", "s")).await);
    for (path, status, code) in [
        ("/v1/connections/not-a-uuid".to_string(), 400, "invalid_connection_id"),
        (format!("/v1/connections/{}", uuid::Uuid::new_v4()), 404, "connection_not_found"),
        (format!("/v1/connections/{id}/events?limit=0"), 400, "invalid_limit"),
        (format!("/v1/connections/{id}/events?limit=1001"), 400, "invalid_limit"),
        (format!("/v1/connections/{id}/events?after=yesterday"), 400, "invalid_cursor"),
        (format!("/v1/connections/{id}/rejections?limit=-1"), 400, "invalid_limit"),
        ("/v1/nothing-here".to_string(), 404, "not_found"),
    ] {
        let (got, answer) = send(&server, Method::GET, &path, None).await;
        assert_eq!((got, answer["error"]["code"].as_str()), (status, Some(code)), "{path}");
    }
    assert_eq!(server.get_json(&format!("/v1/connections/{id}/events?limit=1000")).await["next_after"], Value::Null);
    let (status, answer) = send(&server, Method::POST, &format!("/v1/connections/{id}/confirm"), None).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (400, Some("not_confirmable")));
    // The monitor may have recorded the first status already (tests/monitor.rs covers it).
    let history = server.get_json(&format!("/v1/connections/{id}/history")).await;
    for entry in history["history"].as_array().unwrap() {
        assert_eq!((entry["old_status"].clone(), entry["new_status"].clone()), (Value::Null, json!("requires_action")));
    }
    server.stop().await;
}

async fn health_counts_and_probes(server: TestServer) {
    let a = server.create(hmac_webhook("alpha", "s")).await;
    server.create(hmac_webhook("beta", "s")).await;
    send(&server, Method::POST, &format!("/v1/connections/{}/pause", id_of(&a)), None).await;
    let health = server.get_json("/v1/health").await;
    assert_eq!(health["counts"], json!({"connected": 0, "requires_action": 1, "paused": 1, "error": 0}));
    assert_eq!(health["by_tenant"]["alpha"]["paused"], 1);
    assert_eq!(health["by_tenant"]["beta"]["requires_action"], 1);
    assert_eq!(health["problems"].as_array().unwrap().len(), 1);
    assert_eq!(health["problems"][0]["status_message"], "Awaiting subscription");
    for probe in ["/healthz", "/readyz"] {
        let response = server.client.get(server.url(probe)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{probe}");
        assert!(response.headers().get("x-request-id").is_some(), "request id on {probe}");
    }
    server.stop().await;
}

async fn errors_are_json_everywhere(server: TestServer) {
    let huge = json!({"tenant_id": "t", "name": "x".repeat(300 * 1024), "source": "webhook"});
    let (status, answer) = send(&server, Method::POST, "/v1/connections", Some(huge)).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (413, Some("body_too_large")));
    let response = server.client.get(server.url(&format!("/push/webhook/{}", uuid::Uuid::new_v4()))).send().await.unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.json::<Value>().await.unwrap()["error"]["code"], "method_not_allowed");
    for (path, code) in [("/v1/connections?tenant_id=a&tenant_id=b", "invalid_query"), ("/v1/connections/%FF", "invalid_path")] {
        let (status, answer) = send(&server, Method::GET, path, None).await;
        assert_eq!((status, answer["error"]["code"].as_str()), (400, Some(code)), "{path}");
    }
    let lifecycle = server.client.post(server.url(&format!("/push/ms-graph/{}/lifecycle", uuid::Uuid::new_v4()))).send().await.unwrap();
    assert_eq!(lifecycle.status(), 404);
    assert_eq!(lifecycle.json::<Value>().await.unwrap()["error"]["code"], "unknown_connection");
    server.stop().await;
}
