//! Graph rich notifications end to end: `validationTokens` signed by a test key published
//! in a JWKS file (`PUSHGATE_MICROSOFT_JWKS`), `encryptedContent` made with a test RSA key
//! and the Graph SDK's real encrypted vector, over real HTTP on SQLite and PostgreSQL.

mod common;

use chrono::{Duration, Utc};
use common::{Backend, TestServer};
use pushgate::sources::ms_graph::test_rich::TestRichKey;
use pushgate::testing::oidc_signer::TestOidcSigner;
use serde_json::{json, Value};

on_both_backends_with!(
    rich_notifications_are_decrypted_and_stored,
    the_graph_sdk_vector_decrypts_over_http,
    one_bad_validation_token_refuses_the_whole_batch,
    keys_rotate_by_certificate_id,
    authentic_content_that_is_not_json_is_stored_decrypted_as_a_raw_event,
);

const APP_ID: &str = "6a0e3d42-7c55-4f0b-9e54-1d2f3a4b5c6d";
const TENANT: &str = "84bd8158-6d4d-4958-8b9f-9d6445542f95";
const CLIENT_STATE: &str = "cs-rich-4a1b";

struct Rich {
    server: TestServer,
    signer: TestOidcSigner,
    id: String,
}

async fn start(backend: Backend, test: &str, keys: Vec<Value>) -> Option<Rich> {
    let signer = TestOidcSigner::new();
    let server = TestServer::builder(backend, test).microsoft_signer(&signer).start().await?;
    let c = server
        .create(json!({"tenant_id": "acme", "name": "Teams chats", "source": "ms_graph", "config": {
            "client_state": CLIENT_STATE, "tenant_ids": [TENANT], "app_ids": [APP_ID], "encryption_keys": keys}}))
        .await;
    assert!(c["config"]["encryption_keys"].to_string().contains("***") && !c.to_string().contains("PRIVATE KEY"));
    let id = c["id"].as_str().unwrap().to_owned();
    Some(Rich { server, signer, id })
}

fn rich_item(encrypted: Value, message_id: &str) -> Value {
    json!({
        "subscriptionId": "10493aa0-4d29-4df5-bc0c-ef742cc6cd7f", "changeType": "created", "clientState": CLIENT_STATE,
        "subscriptionExpirationDateTime": "2030-01-01T00:00:00Z", "tenantId": TENANT,
        "resource": format!("chats('19:abc@unq.gbl.spaces')/messages('{message_id}')"),
        "resourceData": {"id": message_id, "@odata.type": "#Microsoft.Graph.chatMessage"},
        "encryptedContent": encrypted
    })
}

async fn notify(rich: &Rich, body: &Value) -> (u16, Value) {
    let response = rich.server.client.post(rich.server.url(&format!("/push/ms-graph/{}", rich.id))).json(body).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The base64 text of `field` with one byte of its decoded value flipped.
fn flipped(encrypted: &Value, field: &str) -> Value {
    use base64::Engine;
    let engine = base64::engine::general_purpose::STANDARD;
    let mut bytes = engine.decode(encrypted[field].as_str().unwrap()).unwrap();
    bytes[5] ^= 0x01;
    let mut changed = encrypted.clone();
    changed[field] = json!(engine.encode(bytes));
    changed
}

async fn rich_notifications_are_decrypted_and_stored(backend: Backend) {
    let key = TestRichKey::generate("cert-2026");
    let Some(rich) = start(backend, "rich_decrypted", vec![key.config_entry()]).await else { return };
    let message = json!({"id": "1612289992105", "body": {"content": "<b>hello</b>"}, "createdDateTime": "2021-02-02T18:19:52Z"});
    let sealed = key.encrypt(message.to_string().as_bytes());
    let token = rich.signer.graph_token_v2(APP_ID, TENANT, Utc::now());
    let batch = json!({"value": [
        rich_item(sealed.clone(), "1612289992105"),
        rich_item(flipped(&sealed, "data"), "2"),
        rich_item(flipped(&sealed, "dataKey"), "3"),
        rich_item(flipped(&sealed, "dataSignature"), "4"),
    ], "validationTokens": [token]});
    let (status, answer) = notify(&rich, &batch).await;
    assert_eq!((status, answer), (202, json!({"status": "stored", "stored": 1, "duplicates": 0, "refused": 3})));
    let events = rich.server.events(&rich.id).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["payload"]["resourceData"], message, "the decrypted resource replaces the encrypted blob");
    assert!(events[0]["payload"].get("encryptedContent").is_none() && events[0]["payload"].get("clientState").is_none());
    assert_eq!(events[0]["occurred_at"], "2021-02-02T18:19:52Z");
    let mut reasons: Vec<String> =
        rich.server.rejections(&rich.id).await.iter().map(|r| r["reason"].as_str().unwrap().to_owned()).collect();
    reasons.sort();
    assert_eq!(reasons, ["graph_data_key_invalid", "graph_data_signature_invalid", "graph_data_signature_invalid"]);
    // Replayed: a duplicate, decrypted again to the same key.
    let (status, answer) = notify(&rich, &batch).await;
    assert_eq!((status, answer["duplicates"].clone()), (202, json!(1)));
    // A batch of rich notifications without validation tokens is not Graph's.
    let (status, answer) = notify(&rich, &json!({"value": [rich_item(sealed, "5")]})).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (403, Some("graph_token_missing")));
    rich.server.stop().await;
}

async fn the_graph_sdk_vector_decrypts_over_http(backend: Backend) {
    let encrypted: Value = serde_json::from_str(include_str!("fixtures/ms-graph/encrypted-content/encryptedContent.json")).unwrap();
    let expected: Value = serde_json::from_str(include_str!("fixtures/ms-graph/encrypted-content/expected-plaintext.json")).unwrap();
    let key = json!({
        "id": encrypted["encryptionCertificateId"],
        "private_key_pem": include_str!("fixtures/ms-graph/encrypted-content/richnotificationsapp.key.pem"),
        "certificate_pem": include_str!("fixtures/ms-graph/encrypted-content/richnotificationsapp.cert.pem"),
    });
    let Some(rich) = start(backend, "rich_vector", vec![key]).await else { return };
    let token = rich.signer.graph_token_v1(APP_ID, TENANT, Utc::now());
    let (status, answer) = notify(&rich, &json!({"value": [rich_item(encrypted, "1625126194597")], "validationTokens": [token]})).await;
    assert_eq!((status, answer["stored"].clone()), (202, json!(1)), "{answer}");
    let events = rich.server.events(&rich.id).await;
    assert_eq!(events[0]["payload"]["resourceData"], expected);
    assert_eq!(events[0]["payload"]["resourceData"]["body"]["content"], "Hello World");
    rich.server.stop().await;
}

async fn one_bad_validation_token_refuses_the_whole_batch(backend: Backend) {
    let key = TestRichKey::generate("cert-a");
    let Some(rich) = start(backend, "rich_tokens", vec![key.config_entry()]).await else { return };
    let now = Utc::now();
    let good = rich.signer.graph_token_v2(APP_ID, TENANT, now);
    let mut wrong_caller = TestOidcSigner::graph_claims_v1(APP_ID, TENANT, now);
    wrong_caller["appid"] = json!("11111111-2222-3333-4444-555555555555");
    let expired = TestOidcSigner::graph_claims_v2(APP_ID, TENANT, now - Duration::hours(3));
    let stranger = TestOidcSigner::new();
    let cases = [
        (rich.signer.graph_token_v2("another-app", TENANT, now), "graph_token_audience"),
        (rich.signer.graph_token(wrong_caller), "graph_token_caller"),
        (rich.signer.graph_token_v2(APP_ID, "00000000-0000-0000-0000-0000000000aa", now), "graph_token_issuer"),
        (rich.signer.graph_token(expired), "graph_token_expired"),
        (stranger.graph_token_v2(APP_ID, TENANT, now), "graph_unknown_key"),
        ("not-a-jwt".to_owned(), "graph_token_malformed"),
    ];
    let item = rich_item(key.encrypt(br#"{"id":"m1"}"#), "m1");
    for (bad, reason) in &cases {
        let (status, answer) = notify(&rich, &json!({"value": [item.clone()], "validationTokens": [good.clone(), bad]})).await;
        let expected_status = if *reason == "graph_token_malformed" { 400 } else { 403 };
        assert_eq!((status, answer["error"]["code"].as_str()), (expected_status, Some(*reason)));
        assert!(!answer.to_string().contains(APP_ID), "the answer names only the reason");
    }
    assert!(rich.server.events(&rich.id).await.is_empty(), "nothing of an untrusted batch is stored");
    let records = serde_json::to_string(&rich.server.rejections(&rich.id).await).unwrap();
    assert!(!records.contains(&good[..40]), "tokens are masked in rejection records");
    // v1 and v2 tokens together are fine.
    let v1 = rich.signer.graph_token_v1(APP_ID, TENANT, now);
    let (status, _) = notify(&rich, &json!({"value": [item], "validationTokens": [good, v1]})).await;
    assert_eq!(status, 202);
    rich.server.stop().await;
}

async fn keys_rotate_by_certificate_id(backend: Backend) {
    let (old, new) = (TestRichKey::generate("cert-old"), TestRichKey::generate("cert-new"));
    let Some(rich) = start(backend, "rich_rotation", vec![old.config_entry(), new.config_entry()]).await else { return };
    let token = rich.signer.graph_token_v2(APP_ID, TENANT, Utc::now());
    let batch = json!({"value": [
        rich_item(old.encrypt(br#"{"id":"a"}"#), "a"),
        rich_item(new.encrypt(br#"{"id":"b"}"#), "b"),
    ], "validationTokens": [token.clone()]});
    let (status, answer) = notify(&rich, &batch).await;
    assert_eq!((status, answer["stored"].clone()), (202, json!(2)));
    let unknown = TestRichKey::generate("cert-retired");
    let (status, answer) = notify(&rich, &json!({"value": [rich_item(unknown.encrypt(b"{}"), "c")], "validationTokens": [token]})).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (403, Some("graph_encryption_key_unknown")));
    rich.server.stop().await;
}

async fn authentic_content_that_is_not_json_is_stored_decrypted_as_a_raw_event(backend: Backend) {
    let key = TestRichKey::generate("cert-2026");
    let Some(rich) = start(backend, "rich_not_json", vec![key.config_entry()]).await else { return };
    let token = rich.signer.graph_token_v2(APP_ID, TENANT, Utc::now());
    let batch = json!({"value": [
        rich_item(key.encrypt(b"<p>not JSON, but the tenant's message</p>"), "m-text"),
        rich_item(key.encrypt(&[0xff, 0x00, 0x01]), "m-binary"),
    ], "validationTokens": [token]});
    let (status, answer) = notify(&rich, &batch).await;
    assert_eq!((status, answer), (202, json!({"status": "stored_raw", "reason": "graph_data_invalid", "stored": 2, "duplicates": 0})));
    let (status, answer) = notify(&rich, &batch).await;
    assert_eq!((status, answer["duplicates"].as_i64()), (202, Some(2)), "a retry is stored once");
    let mut events = rich.server.events(&rich.id).await;
    events.reverse();
    let kept: Vec<Value> = events
        .iter()
        .map(|e| {
            assert_eq!((e["kind"].as_str(), e["payload"]["content_type"].as_str()), (Some("raw"), Some("application/json")));
            serde_json::from_str(e["payload"]["raw"].as_str().unwrap()).unwrap()
        })
        .collect();
    for (notification, id) in kept.iter().zip(["m-text", "m-binary"]) {
        assert_eq!(notification["resourceData"]["id"], id, "the notification whole");
        assert!(notification.get("clientState").is_none() && notification.get("encryptedContent").is_none(), "{notification}");
    }
    assert_eq!(kept[0]["decryptedContent"], "<p>not JSON, but the tenant's message</p>", "decrypted, so it can be read again");
    assert_eq!(kept[1]["decryptedContent_base64"], "/wAB");
    assert!(rich.server.rejections(&rich.id).await.is_empty());
    assert_eq!(rich.server.raw_events_metric("ms_graph").await, 4);
    rich.server.stop().await;
}
