//! Office 365 Management Activity webhooks end to end: a real server on port 0, real
//! HTTP, on SQLite and PostgreSQL.

mod common;

use common::TestServer;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

on_both_backends!(
    validation_then_content_notifications_are_stored_once,
    a_wrong_or_missing_auth_id_is_refused_and_recorded,
    a_body_that_is_not_json_is_stored_whole_as_a_raw_event,
);

const AUTH_ID: &str = "o365-auth-id-5d1c";

async fn create(server: &TestServer) -> String {
    let c =
        server.create(json!({"tenant_id": "acme", "name": "M365 audit", "source": "o365_activity", "config": {"auth_id": AUTH_ID}})).await;
    assert_eq!((c["stream"].as_str(), c["config"]["auth_id"].as_str()), (Some("cloud_ms_o365_activity_log"), Some("***")));
    assert_eq!(c["status"], "requires_action");
    c["id"].as_str().unwrap().to_owned()
}

async fn push(server: &TestServer, id: &str, auth: Option<&str>, body: &Value) -> (u16, Value) {
    let mut request = server.client.post(server.url(&format!("/push/o365-activity/{id}"))).json(body);
    if let Some(auth) = auth {
        request = request.header("Webhook-AuthID", auth);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn content(id: &str, created: &str) -> Value {
    json!({
        "tenantId": "41463f53-8812-40f4-890f-865bf6e35190", "clientId": "f2e1c9a5-6bd4-4b6a-9a3b-1c2f0e7d8a9b",
        "contentType": "Audit.Exchange", "contentId": id,
        "contentUri": format!("https://manage.office.com/api/v1.0/41463f53-8812-40f4-890f-865bf6e35190/activity/feed/audit/{id}"),
        "contentCreated": created, "contentExpiration": "2026-11-30T10:00:00.000Z"
    })
}

async fn validation_then_content_notifications_are_stored_once(server: TestServer) {
    let id = create(&server).await;
    let (status, answer) = push(&server, &id, Some(AUTH_ID), &json!({"validationCode": "9c1ab2f0-2c41-4d7f-9f1e-0c3f54a8e7a1"})).await;
    assert_eq!((status, answer), (200, json!({"status": "validated"})));
    let c = server.connection(&id).await;
    assert_eq!(c["status"], "connected", "the authenticated validation confirms the webhook");
    assert!(c["subscription"]["confirmed_at"].is_string());

    let batch = json!([content("20261123100000$a", "2026-11-23T10:00:00.000Z"), content("20261123100500$b", "2026-11-23T10:05:00.000Z")]);
    let (status, answer) = push(&server, &id, Some(AUTH_ID), &batch).await;
    assert_eq!((status, answer), (200, json!({"status": "stored", "stored": 2, "duplicates": 0})));
    // Microsoft retries a notification it saw no 200 to: the same contentId is stored once.
    let (status, answer) = push(&server, &id, Some(AUTH_ID), &json!([content("20261123100000$a", "2026-11-23T10:00:00.000Z")])).await;
    assert_eq!((status, answer), (200, json!({"status": "stored", "stored": 0, "duplicates": 1})));

    let events = server.events(&id).await;
    assert_eq!(events.len(), 2);
    let first = events.iter().find(|e| e["dedupe_key"] == "20261123100000$a").unwrap();
    assert_eq!((first["kind"].as_str(), first["stream"].as_str()), (Some("telemetry"), Some("cloud_ms_o365_activity_log")));
    assert_eq!(first["occurred_at"], "2026-11-23T10:00:00Z");
    assert_eq!(first["payload"], content("20261123100000$a", "2026-11-23T10:00:00.000Z"));
    assert_eq!(server.connection(&id).await["counters"]["duplicates"], 1);

    // Authentic but not content notifications: acknowledged and stored whole as a raw event.
    let malformed = json!([{"contentType": "Audit.Exchange"}]);
    let (status, answer) = push(&server, &id, Some(AUTH_ID), &malformed).await;
    assert_eq!(
        (status, answer),
        (200, json!({"status": "stored_raw", "reason": "o365_notification_malformed", "stored": 1, "duplicates": 0}))
    );
    let (status, answer) = push(&server, &id, Some(AUTH_ID), &malformed).await;
    assert_eq!((status, answer["duplicates"].as_i64()), (200, Some(1)), "a retry is stored once");
    let events = server.events(&id).await;
    assert_eq!(events.len(), 3);
    let text = malformed.to_string();
    assert_eq!(events[0]["kind"], "raw");
    assert_eq!(events[0]["payload"], json!({"raw": text, "content_type": "application/json"}));
    assert_eq!(events[0]["dedupe_key"], format!("sha256:{}", hex::encode(Sha256::digest(text.as_bytes()))));
    assert!(server.rejections(&id).await.is_empty());
    assert_eq!(server.connection(&id).await["counters"]["events"], 3);
    assert_eq!(server.raw_events_metric("o365_activity").await, 2);
}

async fn a_body_that_is_not_json_is_stored_whole_as_a_raw_event(server: TestServer) {
    let id = create(&server).await;
    let response = server
        .client
        .post(server.url(&format!("/push/o365-activity/{id}")))
        .header("Webhook-AuthID", AUTH_ID)
        .header("content-type", "text/plain")
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"status": "stored_raw", "reason": "invalid_json", "stored": 1, "duplicates": 0})
    );
    let events = server.events(&id).await;
    assert_eq!(events[0]["payload"], json!({"raw": "not json", "content_type": "text/plain"}));
    assert_eq!(events[0]["kind"], "raw");
    server.stop().await;
}

async fn a_wrong_or_missing_auth_id_is_refused_and_recorded(server: TestServer) {
    let id = create(&server).await;
    let batch = json!([content("x1", "2026-11-23T10:00:00.000Z")]);
    let (status, answer) = push(&server, &id, None, &batch).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (401, Some("o365_auth_id_missing")));
    let (status, answer) = push(&server, &id, Some("o365-auth-id-5d1d"), &batch).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (401, Some("o365_auth_id_invalid")));
    // A validation without the auth id is refused too: it would otherwise confirm the feed.
    let (status, _) = push(&server, &id, None, &json!({"validationCode": "v"})).await;
    assert_eq!(status, 401);
    assert!(server.events(&id).await.is_empty());
    let reasons: Vec<Value> = server.rejections(&id).await.iter().map(|r| r["reason"].clone()).collect();
    assert_eq!(reasons, [json!("o365_auth_id_missing"), json!("o365_auth_id_invalid"), json!("o365_auth_id_missing")]);
    let c = server.connection(&id).await;
    assert_eq!(c["subscription"]["confirmed_at"], Value::Null);
    assert!(!serde_json::to_string(&server.rejections(&id).await).unwrap().contains(AUTH_ID));
}
