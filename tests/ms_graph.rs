//! Microsoft Graph change notifications end to end: a real server on port 0, real HTTP,
//! on SQLite and PostgreSQL. Validation handshakes on both URLs, per-item client states
//! and tenants, replays, lifecycle events and the documented samples.

mod common;

use common::TestServer;
use serde_json::{json, Value};

on_both_backends!(
    the_handshake_echoes_the_token_on_both_urls,
    a_batch_mixing_two_connections_client_states,
    retries_and_replays_are_stored_once,
    lifecycle_events_change_the_connection,
    tenants_outside_the_allow_list_are_refused,
    a_subscription_past_its_expiry_is_missing,
    authentic_notifications_that_do_not_decode_are_raw_events_of_their_own,
);

const CLIENT_STATE: &str = "cs-acme-0f3a9c";
const TENANT: &str = "84bd8158-6d4d-4958-8b9f-9d6445542f95";

async fn create(server: &TestServer, client_state: &str, extra: Value) -> String {
    let mut config = json!({"client_state": client_state});
    config.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    let c = server.create(json!({"tenant_id": "acme", "name": "Graph", "source": "ms_graph", "config": config})).await;
    assert_eq!((c["stream"].as_str(), c["config"]["client_state"].as_str()), (Some("cloud_ms_graph_alert"), Some("***")));
    c["id"].as_str().unwrap().to_owned()
}

async fn post(server: &TestServer, path: &str, body: &Value) -> (u16, Value) {
    let response = server.client.post(server.url(path)).json(body).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn notify(server: &TestServer, id: &str, body: &Value) -> (u16, Value) {
    post(server, &format!("/push/ms-graph/{id}"), body).await
}

fn notification(client_state: &str, subscription: &str, resource_id: &str, expiry: &str) -> Value {
    json!({
        "subscriptionId": subscription, "subscriptionExpirationDateTime": expiry, "changeType": "updated",
        "resource": format!("security/alerts_v2/{resource_id}"), "clientState": client_state, "tenantId": TENANT,
        "resourceData": {"@odata.type": "#Microsoft.Graph.security.alert", "id": resource_id}
    })
}

fn lifecycle(client_state: &str, subscription: &str, event: &str) -> Value {
    json!({"value": [{
        "lifecycleEvent": event, "subscriptionId": subscription, "resource": format!("Subscriptions/{subscription}"),
        "clientState": client_state, "organizationId": TENANT, "subscriptionExpirationDateTime": "2030-01-01T00:00:00Z",
        "resourceData": {"@odata.type": "#microsoft.graph.subscription", "id": subscription}
    }]})
}

async fn the_handshake_echoes_the_token_on_both_urls(server: TestServer) {
    let id = create(&server, CLIENT_STATE, json!({})).await;
    assert_eq!(server.connection(&id).await["status"], "requires_action");
    let token = "Validation: Testing client application reachability for subscription Request-Id: 5c1f <script>alert('x')</script> & é";
    let encoded: String = url_encode(token);
    for path in [format!("/push/ms-graph/{id}"), format!("/push/ms-graph/{id}/lifecycle")] {
        for name in ["validationToken", "validationtoken"] {
            let response = server
                .client
                .post(server.url(&format!("{path}?{name}={encoded}")))
                .header("content-type", "text/plain; charset=utf-8")
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "{path}");
            assert_eq!(response.headers()["content-type"], "text/plain");
            assert_eq!(response.headers()["x-content-type-options"], "nosniff");
            assert_eq!(response.bytes().await.unwrap(), token.as_bytes(), "echoed byte for byte, markup untouched");
        }
    }
    let c = server.connection(&id).await;
    assert_eq!(c["status"], "connected", "answering the handshake validates the subscription");
    assert!(c["subscription"]["confirmed_at"].is_string());

    // A body is never read on a handshake, and a token over the limit is refused.
    let long = "a".repeat(2000);
    let response = server.client.post(server.url(&format!("/push/ms-graph/{id}?validationToken={long}"))).send().await.unwrap();
    assert_eq!(response.status(), 400);
    let response =
        server.client.post(server.url(&format!("/push/ms-graph/{id}?validationToken=ok"))).body("{not json").send().await.unwrap();
    assert_eq!(response.status(), 200);
    // Unknown connection, paused connection.
    let other = uuid::Uuid::new_v4();
    let response = server.client.post(server.url(&format!("/push/ms-graph/{other}?validationToken=x"))).send().await.unwrap();
    assert_eq!(response.status(), 404);
    let response = server.client.post(server.url(&format!("/push/webhook/{id}/lifecycle"))).send().await.unwrap();
    assert_eq!(response.status(), 404, "only Graph has a lifecycle URL");
    server.admin(reqwest::Method::POST, &format!("/v1/connections/{id}/pause")).send().await.unwrap();
    let response = server.client.post(server.url(&format!("/push/ms-graph/{id}?validationToken=x"))).send().await.unwrap();
    assert_eq!(response.status(), 503);
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            b' ' => "+".to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

async fn a_batch_mixing_two_connections_client_states(server: TestServer) {
    let a = create(&server, "cs-a", json!({})).await;
    let b = create(&server, "cs-b", json!({})).await;
    let batch = json!({"value": [
        notification("cs-a", "sub-a", "alert-1", "2030-01-01T00:00:00Z"),
        notification("cs-b", "sub-b", "alert-2", "2030-01-01T00:00:00Z"),
        notification("cs-a", "sub-a", "alert-3", "2030-01-01T00:00:00Z"),
    ]});
    // Sent to A: A's two are stored, B's is refused and recorded; Graph is told 202.
    let (status, answer) = notify(&server, &a, &batch).await;
    assert_eq!((status, answer), (202, json!({"status": "stored", "stored": 2, "duplicates": 0, "refused": 1})));
    let events = server.events(&a).await;
    assert_eq!(events.len(), 2);
    assert!(events.iter().all(|e| e["payload"]["subscriptionId"] == "sub-a" && e["payload"].get("clientState").is_none()));
    assert!(events.iter().all(|e| e["kind"] == "alert" && e["source"] == "ms_graph"));
    let rejections = server.rejections(&a).await;
    assert_eq!(rejections.len(), 1);
    assert_eq!(rejections[0]["reason"], "graph_client_state_invalid");
    assert!(rejections[0]["detail"].as_str().unwrap().starts_with("notification 1 of 3"));
    let c = server.connection(&a).await;
    assert_eq!((c["status"].as_str(), c["subscription"]["external_id"].as_str()), (Some("connected"), Some("sub-a")));
    assert_eq!(c["subscription"]["expires_at"], "2030-01-01T00:00:00Z");
    assert_eq!(c["counters"]["rejections"], 1);

    // The same batch to B stores B's one.
    let (status, answer) = notify(&server, &b, &batch).await;
    assert_eq!((status, answer["stored"].clone(), answer["refused"].clone()), (202, json!(1), json!(2)));
    // Nothing of a batch is A's: 403, nothing stored, one rejection for the push.
    let only_b = json!({"value": [notification("cs-b", "sub-b", "alert-9", "2030-01-01T00:00:00Z")]});
    let (status, answer) = notify(&server, &a, &only_b).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (403, Some("graph_client_state_invalid")));
    assert!(!answer.to_string().contains("cs-a"), "the answer never names the expected secret");
    assert_eq!(server.events(&a).await.len(), 2);
    assert_eq!(server.rejections(&a).await.len(), 2);
    let all = serde_json::to_string(&server.rejections(&a).await).unwrap();
    assert!(!all.contains("\"cs-a\""), "the connection's own secret is not in its rejection records");
    // Not a batch at all: 400.
    let (status, answer) = notify(&server, &a, &json!({"nothing": 1})).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (400, Some("graph_body_malformed")));
}

async fn retries_and_replays_are_stored_once(server: TestServer) {
    let id = create(&server, CLIENT_STATE, json!({})).await;
    let batch = json!({"value": [notification(CLIENT_STATE, "sub-1", "a1", "2030-01-01T00:00:00Z")]});
    let (status, answer) = notify(&server, &id, &batch).await;
    assert_eq!((status, answer), (202, json!({"status": "stored", "stored": 1, "duplicates": 0})));
    let (status, answer) = notify(&server, &id, &batch).await;
    assert_eq!((status, answer), (202, json!({"status": "stored", "stored": 0, "duplicates": 1})));
    // Retried after the subscription was renewed: only the expiry differs, still the same one.
    let renewed = json!({"value": [notification(CLIENT_STATE, "sub-1", "a1", "2030-01-03T00:00:00Z")]});
    let (status, answer) = notify(&server, &id, &renewed).await;
    assert_eq!((status, answer["duplicates"].clone()), (202, json!(1)));
    assert_eq!(server.connection(&id).await["subscription"]["expires_at"], "2030-01-03T00:00:00Z", "the later expiry is kept");
    // A late retry of the old expiry does not move it back.
    notify(&server, &id, &batch).await;
    assert_eq!(server.connection(&id).await["subscription"]["expires_at"], "2030-01-03T00:00:00Z");
    let events = server.events(&id).await;
    assert_eq!(events.len(), 1);
    assert!(events[0]["dedupe_key"].as_str().unwrap().starts_with("sub-1:updated:security/alerts_v2/a1:"));
    assert_eq!(server.connection(&id).await["counters"]["duplicates"], 3);
}

async fn lifecycle_events_change_the_connection(server: TestServer) {
    let id = create(&server, CLIENT_STATE, json!({})).await;
    let url = format!("/push/ms-graph/{id}/lifecycle");
    let (status, _) = post(&server, &format!("{url}?validationToken=v"), &json!(null)).await;
    assert_eq!(status, 200);
    assert_eq!(server.connection(&id).await["status"], "connected");

    let (status, answer) = post(&server, &url, &lifecycle(CLIENT_STATE, "sub-1", "reauthorizationRequired")).await;
    assert_eq!((status, answer["stored"].clone()), (202, json!(1)));
    let c = server.connection(&id).await;
    assert_eq!((c["status"].as_str(), c["status_message"].as_str()), (Some("requires_action"), Some("Reauthorization required")));
    assert!(c["subscription"]["reauthorization_required_at"].is_string());

    let (status, _) = post(&server, &url, &lifecycle(CLIENT_STATE, "sub-1", "missed")).await;
    assert_eq!(status, 202);
    let c = server.connection(&id).await;
    assert!(c["subscription"]["missed_at"].is_string(), "lost data upstream is shown: {c}");

    let (status, _) = post(&server, &url, &lifecycle(CLIENT_STATE, "sub-1", "subscriptionRemoved")).await;
    assert_eq!(status, 202);
    let c = server.connection(&id).await;
    assert_eq!((c["status"].as_str(), c["status_message"].as_str()), (Some("error"), Some("Subscription is missing")));
    let kinds: Vec<Value> = server.events(&id).await.iter().map(|e| e["kind"].clone()).collect();
    assert_eq!(kinds, [json!("lifecycle"), json!("lifecycle"), json!("lifecycle")]);
    // A lifecycle notification with a wrong client state changes nothing.
    let (status, _) = post(&server, &url, &lifecycle("forged", "sub-1", "reauthorizationRequired")).await;
    assert_eq!(status, 403);
    // A validation carries no credential: it does not undo the removal.
    let (status, _) = post(&server, &format!("/push/ms-graph/{id}?validationToken=again"), &json!(null)).await;
    assert_eq!(status, 200);
    assert_eq!(server.connection(&id).await["status_message"], "Subscription is missing");
    // The first notification of a new subscription does; a replay of the old removal is a duplicate.
    let (status, _) = notify(&server, &id, &json!({"value": [notification(CLIENT_STATE, "sub-2", "a1", "2030-01-01T00:00:00Z")]})).await;
    assert_eq!(status, 202);
    let (status, answer) = post(&server, &url, &lifecycle(CLIENT_STATE, "sub-1", "subscriptionRemoved")).await;
    assert_eq!((status, answer["duplicates"].clone()), (202, json!(1)));
    let c = server.connection(&id).await;
    assert_eq!((c["status"].as_str(), c["subscription"]["external_id"].as_str()), (Some("connected"), Some("sub-2")), "{c}");
    assert!(c["subscription"]["reauthorization_required_at"].is_null(), "the old subscription's request went with it");
    // Lifecycle events about another subscription are kept, and change nothing.
    let (status, answer) = post(&server, &url, &lifecycle(CLIENT_STATE, "sub-9", "subscriptionRemoved")).await;
    assert_eq!((status, answer["stored"].clone()), (202, json!(1)));
    assert_eq!(server.connection(&id).await["status"], "connected");
}

async fn tenants_outside_the_allow_list_are_refused(server: TestServer) {
    let id = create(&server, CLIENT_STATE, json!({"tenant_ids": [TENANT]})).await;
    let mut foreign = notification(CLIENT_STATE, "sub-1", "a1", "2030-01-01T00:00:00Z");
    foreign["tenantId"] = json!("00000000-0000-0000-0000-000000000001");
    let (status, answer) = notify(&server, &id, &json!({"value": [foreign]})).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (403, Some("graph_tenant_not_allowed")));
    let ours = notification(CLIENT_STATE, "sub-1", "a1", "2030-01-01T00:00:00Z");
    let (status, _) = notify(&server, &id, &json!({"value": [ours]})).await;
    assert_eq!(status, 202);
    // Lifecycle notifications name their tenant as organizationId.
    let (status, _) = post(&server, &format!("/push/ms-graph/{id}/lifecycle"), &lifecycle(CLIENT_STATE, "sub-1", "missed")).await;
    assert_eq!(status, 202);
}

async fn a_subscription_past_its_expiry_is_missing(server: TestServer) {
    let id = create(&server, CLIENT_STATE, json!({})).await;
    let soon = (chrono::Utc::now() + chrono::Duration::seconds(2)).to_rfc3339();
    let (status, _) = notify(&server, &id, &json!({"value": [notification(CLIENT_STATE, "sub-1", "a1", &soon)]})).await;
    assert_eq!(status, 202);
    assert_eq!(server.connection(&id).await["status"], "connected");
    server
        .wait_for(&id, "the expiry to pass", 40, std::time::Duration::from_millis(100), |c| {
            c["status"] == "error" && c["status_message"] == "Subscription is missing"
        })
        .await;
}

async fn authentic_notifications_that_do_not_decode_are_raw_events_of_their_own(server: TestServer) {
    let id = create(&server, CLIENT_STATE, json!({})).await;
    let good = notification(CLIENT_STATE, "sub-1", "alert-1", "2030-01-01T00:00:00Z");
    let mut no_subscription = notification(CLIENT_STATE, "sub-1", "alert-2", "2030-01-01T00:00:00Z");
    no_subscription.as_object_mut().unwrap().remove("subscriptionId");
    let mut no_resource = notification(CLIENT_STATE, "sub-1", "alert-3", "2030-01-01T00:00:00Z");
    no_resource.as_object_mut().unwrap().remove("resource");
    let batch = json!({"value": [good, no_subscription.clone(), no_resource.clone()]});
    let (status, answer) = notify(&server, &id, &batch).await;
    assert_eq!(
        (status, answer),
        (202, json!({"status": "stored_raw", "reason": "graph_notification_malformed", "stored": 3, "duplicates": 0}))
    );
    // Graph retries the batch: each of the three is stored once.
    let (status, answer) = notify(&server, &id, &batch).await;
    assert_eq!((status, answer["stored"].as_i64(), answer["duplicates"].as_i64()), (202, Some(0), Some(3)));
    let mut events = server.events(&id).await;
    events.reverse();
    let kinds: Vec<_> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["alert", "raw", "raw"]);
    for (event, mut item) in events[1..].iter().zip([no_subscription, no_resource]) {
        assert_eq!(event["payload"]["content_type"], "application/json");
        let raw = event["payload"]["raw"].as_str().unwrap();
        assert!(!raw.contains(CLIENT_STATE), "the shared secret never reaches a stored event: {raw}");
        item.as_object_mut().unwrap().remove("clientState");
        assert_eq!(serde_json::from_str::<Value>(raw).unwrap(), item, "the notification whole, but its clientState");
        assert!(event["dedupe_key"].as_str().unwrap().starts_with("sha256:"));
    }
    assert!(server.rejections(&id).await.is_empty(), "authentic notifications are no refusals");
    let c = server.connection(&id).await;
    assert_eq!((c["counters"]["events"].as_i64(), c["counters"]["duplicates"].as_i64()), (Some(3), Some(3)));
    assert_eq!(server.raw_events_metric("ms_graph").await, 4);
    // Only undecodable notifications: still stored, still 202.
    let mut lone = notification(CLIENT_STATE, "sub-1", "alert-4", "2030-01-01T00:00:00Z");
    lone.as_object_mut().unwrap().remove("changeType");
    let (status, answer) = notify(&server, &id, &json!({"value": [lone]})).await;
    assert_eq!((status, answer["status"].as_str(), answer["stored"].as_i64()), (202, Some("stored_raw"), Some(1)));
    server.stop().await;
}
