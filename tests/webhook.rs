//! The webhook sender end to end: a real server on port 0, real HTTP, signatures made
//! with the secrets the test chose, on SQLite and PostgreSQL.

mod common;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::SubsecRound;
use common::{hmac_hex, hmac_webhook, TestServer};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

on_both_backends!(
    signed_push_is_stored_and_read_back,
    retried_delivery_is_stored_once,
    heartbeat_is_recorded_but_not_stored,
    heartbeats_count_at_their_signed_time_once_and_while_fresh,
    standard_webhooks_end_to_end,
    api_key_and_basic_auth,
    unauthenticated_pushes_are_refused_and_recorded,
    undecodable_but_authentic_bodies_are_stored_whole_as_raw_events,
    ndjson_lines_are_events_in_order_and_a_retry_is_duplicates,
    broken_ndjson_lines_are_one_raw_event_beside_the_good_lines,
    the_format_is_json_or_ndjson,
    paused_connections_ask_senders_to_retry,
    unknown_and_malformed_connection_ids,
    five_bad_signatures_in_a_row_are_an_error,
    rejection_records_are_rate_limited_but_counted,
    concurrent_pushes_are_each_stored_exactly_once,
    a_sentinel_playbook_posts_incidents_and_a_recurrence_heartbeat,
);

async fn push(server: &TestServer, id: &str, body: &[u8], headers: &[(&str, String)]) -> (u16, Value) {
    let mut request = server.client.post(server.url(&format!("/push/webhook/{id}"))).body(body.to_vec());
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn push_hmac(server: &TestServer, id: &str, secret: &str, body: &[u8]) -> (u16, Value) {
    push(server, id, body, &[("x-signature", hmac_hex(secret, body))]).await
}

fn id_of(connection: &Value) -> String {
    connection["id"].as_str().unwrap().to_owned()
}

async fn signed_push_is_stored_and_read_back(server: TestServer) {
    let c = server.create(hmac_webhook("acme", "s3cret")).await;
    let id = id_of(&c);
    assert_eq!(c["status"], "requires_action");
    assert_eq!(c["status_message"], "Awaiting subscription");
    assert_eq!(c["push_url"], server.url(&format!("/push/webhook/{id}")));

    let body = br#"{"alert": "impossible travel", "severity": "high", "time": "2026-11-20T10:00:00Z"}"#;
    let (status, answer) = push_hmac(&server, &id, "s3cret", body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer, json!({"status": "stored", "stored": 1, "duplicates": 0}));

    let events = server.events(&id).await;
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(e["connection_id"], id.as_str());
    assert_eq!(
        (e["tenant_id"].as_str(), e["source"].as_str(), e["stream"].as_str()),
        (Some("acme"), Some("webhook"), Some("webhook_event"))
    );
    assert_eq!(e["kind"], "alert");
    assert_eq!(e["payload"]["alert"], "impossible travel");
    assert_eq!(e["occurred_at"], "2026-11-20T10:00:00Z");
    assert!(e["dedupe_key"].as_str().unwrap().starts_with("sha256:"));
    assert!(e["received_at"].as_str().unwrap().ends_with('Z'));

    let c = server.connection(&id).await;
    assert_eq!(c["status"], "connected");
    assert_eq!(c["counters"], json!({"events": 1, "heartbeats": 0, "duplicates": 0, "rejections": 0}));
    assert!(c["data_last_received_at"].is_string());
    assert!(c["subscription"]["confirmed_at"].is_string());
    assert_eq!(c["last_heartbeat_at"], Value::Null);
    server.stop().await;
}

async fn retried_delivery_is_stored_once(server: TestServer) {
    let id = id_of(&server.create(hmac_webhook("acme", "s3cret")).await);
    let body = br#"{"alert": "x"}"#;
    assert_eq!(push_hmac(&server, &id, "s3cret", body).await.1["stored"], 1);
    let (status, answer) = push_hmac(&server, &id, "s3cret", body).await;
    assert_eq!((status, answer), (200, json!({"status": "stored", "stored": 0, "duplicates": 1})));
    // The signature covers the body, not a delivery id header: a replay of a captured
    // push with a forged id is a duplicate, and cannot claim the id of a later event.
    let forged_id = vec![("x-signature", hmac_hex("s3cret", body)), ("webhook-id", "evt-43".to_string())];
    assert_eq!(push(&server, &id, body, &forged_id).await.1["duplicates"], 1);
    let later = br#"{"alert": "y"}"#;
    let real = vec![("x-signature", hmac_hex("s3cret", later)), ("webhook-id", "evt-43".to_string())];
    assert_eq!(push(&server, &id, later, &real).await.1["stored"], 1);
    assert_eq!(server.events(&id).await.len(), 2);
    assert_eq!(server.connection(&id).await["counters"]["duplicates"], 2);

    // With an API key, the sender's delivery id is the dedupe key.
    let keyed = id_of(
        &server
            .create(json!({"tenant_id": "acme", "name": "k", "source": "webhook",
        "config": {"auth": {"type": "api_key", "header": "X-Key", "value": "k-1"}, "id_header": "X-Delivery"}}))
            .await,
    );
    let headers = |delivery: &str| vec![("x-key", "k-1".to_string()), ("x-delivery", delivery.to_string())];
    assert_eq!(push(&server, &keyed, b"{\"n\":1}", &headers("d-1")).await.1["stored"], 1);
    assert_eq!(push(&server, &keyed, b"{\"n\":2}", &headers("d-1")).await.1["duplicates"], 1);
    assert_eq!(push(&server, &keyed, b"{\"n\":1}", &headers("d-2")).await.1["stored"], 1);
    assert_eq!(server.events(&keyed).await.len(), 2);
    server.stop().await;
}

async fn heartbeat_is_recorded_but_not_stored(server: TestServer) {
    let id = id_of(&server.create(hmac_webhook("acme", "s3cret")).await);
    let body = br#"{"type": "heartbeat", "id": "hb-2026-12-01T10:05:00Z", "time": "2026-12-01T10:05:00Z"}"#.to_vec();
    // The documented example, sent as a fresh beat: its time is now.
    let now = chrono::Utc::now().trunc_subsecs(0);
    let body = String::from_utf8(body).unwrap().replace("2026-12-01T10:05:00Z", &now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    let (status, answer) = push_hmac(&server, &id, "s3cret", body.as_bytes()).await;
    assert_eq!((status, answer), (200, json!({"status": "heartbeat", "duplicate": false})));
    assert!(server.events(&id).await.is_empty());
    let c = server.connection(&id).await;
    assert_eq!(c["last_heartbeat_at"], common::api_time(now));
    assert_eq!(c["counters"]["heartbeats"], 1);
    assert_eq!(c["status"], "connected");
    server.stop().await;
}

/// Signs a heartbeat with id `id` and time `at` the way one auth type carries them.
type HeartbeatSigner = Box<dyn Fn(&str, chrono::DateTime<chrono::Utc>) -> (Vec<u8>, Vec<(&'static str, String)>)>;

/// For each auth type, on a connection expecting a heartbeat every 300 s with 60 s of
/// grace: a fresh heartbeat counts at its signed time; the same push replayed is a
/// duplicate; a late retry signed earlier counts but moves nothing; one signed longer than
/// interval + grace ago is acknowledged and refused as `heartbeat_not_fresh`.
async fn heartbeats_count_at_their_signed_time_once_and_while_fresh(server: TestServer) {
    let whsec = STANDARD.encode(b"a standard webhooks secret key!!");
    let auth_b64 = |u: &str| format!("Basic {}", STANDARD.encode(u));
    let in_body: fn(&str, chrono::DateTime<chrono::Utc>) -> Vec<u8> = |id, at| common::heartbeat_body_at(id, at);
    let cases: Vec<(Value, HeartbeatSigner)> = vec![
        (
            json!({"type": "hmac_sha256", "header": "X-Signature", "secret": "s3cret"}),
            Box::new(move |id, at| {
                let body = in_body(id, at);
                let headers = vec![("x-signature", hmac_hex("s3cret", &body))];
                (body, headers)
            }),
        ),
        (
            json!({"type": "api_key", "header": "X-Key", "value": "k-1"}),
            Box::new(move |id, at| (in_body(id, at), vec![("x-key", "k-1".to_string())])),
        ),
        (
            json!({"type": "basic", "username": "sender", "password": "pa55"}),
            Box::new(move |id, at| (in_body(id, at), vec![("authorization", auth_b64("sender:pa55"))])),
        ),
        (
            // A tolerance longer than interval + grace, so only freshness refuses the old one.
            json!({"type": "standard_webhooks", "secret": format!("whsec_{whsec}"), "tolerance_seconds": 3600}),
            Box::new(move |id, at| {
                // The body names nothing: the signed webhook-id and webhook-timestamp do.
                let body = br#"{"type": "heartbeat"}"#.to_vec();
                let headers = standard_headers(&whsec, id, at.timestamp(), &body);
                (body, headers)
            }),
        ),
    ];
    for (auth, sign) in cases {
        let kind = auth["type"].clone();
        let c = server
            .create(json!({"tenant_id": "acme", "name": "beats", "source": "webhook", "heartbeat_interval_seconds": 300,
                "grace_seconds": 60, "config": {"auth": auth}}))
            .await;
        let id = id_of(&c);
        let signed = chrono::Utc::now().trunc_subsecs(0) - chrono::Duration::seconds(30);
        let (body, headers) = sign("hb-1", signed);
        let (status, answer) = push(&server, &id, &body, &headers).await;
        assert_eq!((status, answer), (200, json!({"status": "heartbeat", "duplicate": false})), "{kind}");
        let c = server.connection(&id).await;
        assert_eq!(c["last_heartbeat_at"], common::api_time(signed), "{kind}: its signed time, not its arrival");
        // The captured push, replayed.
        let (status, answer) = push(&server, &id, &body, &headers).await;
        assert_eq!((status, answer), (200, json!({"status": "heartbeat", "duplicate": true})), "{kind}");
        // A late retry of an earlier beat: counted, but the time only moves forward.
        let (body, headers) = sign("hb-0", signed - chrono::Duration::seconds(200));
        assert_eq!(push(&server, &id, &body, &headers).await.1["duplicate"], false, "{kind}");
        let c = server.connection(&id).await;
        assert_eq!(c["last_heartbeat_at"], common::api_time(signed), "{kind}");
        assert_eq!((c["counters"]["heartbeats"].as_i64(), c["counters"]["duplicates"].as_i64()), (Some(2), Some(1)), "{kind}");
        // Older than interval + grace at its arrival: acknowledged, kept as refused.
        let (body, headers) = sign("hb-old", chrono::Utc::now() - chrono::Duration::seconds(400));
        let (status, answer) = push(&server, &id, &body, &headers).await;
        assert_eq!((status, answer), (200, json!({"status": "kept_as_rejection", "reason": "heartbeat_not_fresh"})), "{kind}");
        let c = server.connection(&id).await;
        assert_eq!((c["counters"]["heartbeats"].as_i64(), c["last_heartbeat_at"].clone()), (Some(2), json!(common::api_time(signed))));
        let rejections = server.rejections(&id).await;
        assert_eq!(rejections.iter().map(|r| r["reason"].as_str().unwrap()).collect::<Vec<_>>(), ["heartbeat_not_fresh"], "{kind}");
        // Without an id and time in the body, only Standard Webhooks proves anything.
        let unnamed = br#"{"type": "heartbeat"}"#;
        let (_, mut headers) = sign("hb-2", chrono::Utc::now());
        if kind == "hmac_sha256" {
            headers = vec![("x-signature", hmac_hex("s3cret", unnamed))];
        } else if kind == "standard_webhooks" {
            headers =
                standard_headers(&STANDARD.encode(b"a standard webhooks secret key!!"), "hb-2", chrono::Utc::now().timestamp(), unnamed);
        }
        let (status, answer) = push(&server, &id, unnamed, &headers).await;
        let expected = if kind == "standard_webhooks" {
            json!({"status": "heartbeat", "duplicate": false})
        } else {
            json!({"status": "kept_as_rejection", "reason": "heartbeat_not_fresh"})
        };
        assert_eq!((status, answer), (200, expected), "{kind}");
    }
    server.stop().await;
}

fn standard_headers(secret_b64: &str, id: &str, timestamp: i64, body: &[u8]) -> Vec<(&'static str, String)> {
    let key = STANDARD.decode(secret_b64).unwrap();
    let ts = timestamp.to_string();
    let sig = pushgate::verify::hmac_sha256(&key, &[id.as_bytes(), b".", ts.as_bytes(), b".", body]);
    vec![("webhook-id", id.to_owned()), ("webhook-timestamp", ts), ("webhook-signature", format!("v1,{}", STANDARD.encode(sig)))]
}

async fn standard_webhooks_end_to_end(server: TestServer) {
    let secret = STANDARD.encode(b"a standard webhooks secret key!!");
    let c = server
        .create(json!({"tenant_id": "acme", "name": "svix", "source": "webhook",
            "config": {"auth": {"type": "standard_webhooks", "secret": format!("whsec_{secret}")}}}))
        .await;
    assert_eq!(c["config"]["auth"]["secret"], "***");
    let id = id_of(&c);
    let now = chrono::Utc::now().timestamp();
    let body = br#"{"type": "alert.created", "data": {"id": 7}}"#;
    let (status, answer) = push(&server, &id, body, &standard_headers(&secret, "msg_1", now, body)).await;
    assert_eq!((status, answer["stored"].clone()), (200, json!(1)));
    // The same delivery again (a retry, or a replay inside the tolerance) is a duplicate.
    let (status, answer) = push(&server, &id, body, &standard_headers(&secret, "msg_1", now, body)).await;
    assert_eq!((status, answer["duplicates"].clone()), (200, json!(1)));
    // Outside the 5-minute tolerance it is refused, whatever the signature.
    let (status, answer) = push(&server, &id, body, &standard_headers(&secret, "msg_2", now - 301, body)).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (401, Some("timestamp_out_of_tolerance")));
    let events = server.events(&id).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["dedupe_key"], "msg_1");
    server.stop().await;
}

async fn api_key_and_basic_auth(server: TestServer) {
    let key = id_of(
        &server
            .create(json!({"tenant_id": "t", "name": "k", "source": "webhook",
        "config": {"auth": {"type": "api_key", "header": "X-Api-Key", "value": ["old-key", "new-key"]}}}))
            .await,
    );
    for good in ["old-key", "new-key"] {
        assert_eq!(push(&server, &key, b"{}", &[("x-api-key", good.into())]).await.0, 200);
    }
    assert_eq!(push(&server, &key, b"{}", &[("x-api-key", "nope".into())]).await.0, 401);

    let basic = id_of(
        &server
            .create(json!({"tenant_id": "t", "name": "b", "source": "webhook",
        "config": {"auth": {"type": "basic", "username": "sender", "password": "pa55"}}}))
            .await,
    );
    let auth = |u: &str| format!("Basic {}", STANDARD.encode(u));
    assert_eq!(push(&server, &basic, b"{}", &[("authorization", auth("sender:pa55"))]).await.0, 200);
    let (status, answer) = push(&server, &basic, b"{}", &[("authorization", auth("sender:guess"))]).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (401, Some("bad_credentials")));
    server.stop().await;
}

async fn unauthenticated_pushes_are_refused_and_recorded(server: TestServer) {
    let id = id_of(&server.create(hmac_webhook("acme", "s3cret")).await);
    let body = br#"{"alert": "x", "n": 1}"#;
    let good = hmac_hex("s3cret", body);
    // (case, headers, body, expected status, expected reason)
    type Case<'a> = (&'a str, Vec<(&'a str, String)>, &'a [u8], u16, &'a str);
    let cases: Vec<Case> = vec![
        ("missing", vec![], body, 401, "missing_signature"),
        ("wrong secret", vec![("x-signature", hmac_hex("other", body))], body, 401, "bad_signature"),
        ("truncated", vec![("x-signature", good[..32].to_string())], body, 401, "bad_signature"),
        ("non-hex", vec![("x-signature", "not-hex!".into())], body, 400, "malformed_signature"),
        ("re-serialized body", vec![("x-signature", good.clone())], br#"{"alert":"x","n":1}"#, 401, "bad_signature"),
    ];
    for (name, headers, sent, want_status, want_code) in &cases {
        let (status, answer) = push(&server, &id, sent, headers).await;
        assert_eq!(status, *want_status, "{name}: {answer}");
        assert_eq!(answer["error"]["code"], *want_code, "{name}");
        assert!(answer["error"]["message"].is_string(), "{name}");
    }
    assert!(server.events(&id).await.is_empty(), "nothing unauthenticated is stored");
    let rejections = server.rejections(&id).await;
    let reasons: Vec<_> = rejections.iter().rev().map(|r| r["reason"].as_str().unwrap()).collect();
    assert_eq!(reasons, cases.iter().map(|c| c.4).collect::<Vec<_>>());
    assert_eq!(rejections[0]["source_addr"], "127.0.0.1");
    assert_eq!(rejections[0]["body_prefix"], r#"{"alert":"x","n":1}"#);
    assert!(rejections[0]["detail"].is_string() && rejections[0]["at"].is_string());
    let c = server.connection(&id).await;
    assert_eq!(c["counters"]["rejections"], 5);
    assert_eq!(c["status"], "error", "five unauthenticated pushes in a row");
    assert_eq!(c["status_message"], "Signature verification failing");
    server.stop().await;
}

async fn undecodable_but_authentic_bodies_are_stored_whole_as_raw_events(server: TestServer) {
    let id = id_of(&server.create(hmac_webhook("acme", "s3cret")).await);
    let not_utf8 = b"\xff\xfe not utf-8".to_vec();
    // Larger than the 4 KiB a rejection record would keep: a raw event is never cut.
    let not_json = format!("{{not json {}", "x".repeat(10_000)).into_bytes();
    let cases = [(&not_utf8, "invalid_utf8", "application/octet-stream"), (&not_json, "invalid_json", "application/json")];
    for (body, reason, content_type) in cases {
        let headers = [("x-signature", hmac_hex("s3cret", body)), ("content-type", content_type.to_owned())];
        let (status, answer) = push(&server, &id, body, &headers).await;
        assert_eq!((status, answer), (200, json!({"status": "stored_raw", "reason": reason, "stored": 1, "duplicates": 0})));
        // The same delivery again is stored once.
        let (status, answer) = push(&server, &id, body, &headers).await;
        assert_eq!((status, answer), (200, json!({"status": "stored_raw", "reason": reason, "stored": 0, "duplicates": 1})));
    }
    let events = server.events(&id).await;
    assert_eq!(events.len(), 2, "{events:?}");
    let (json_event, binary) = (&events[0], &events[1]);
    assert_eq!((json_event["kind"].as_str(), binary["kind"].as_str()), (Some("raw"), Some("raw")));
    assert_eq!(json_event["payload"], json!({"raw": String::from_utf8(not_json.clone()).unwrap(), "content_type": "application/json"}));
    assert_eq!(binary["payload"], json!({"raw_base64": STANDARD.encode(&not_utf8), "content_type": "application/octet-stream"}));
    assert_eq!(binary["dedupe_key"], format!("sha256:{}", hex::encode(Sha256::digest(&not_utf8))));
    assert_eq!((binary["stream"].as_str(), binary["occurred_at"].clone()), (Some("webhook_event"), Value::Null));
    assert!(server.rejections(&id).await.is_empty(), "an authentic push is no refusal");
    let c = server.connection(&id).await;
    // Authentic pushes confirm the feed even when their payload is bad.
    assert!(c["subscription"]["confirmed_at"].is_string());
    assert_eq!((c["counters"]["events"].as_i64(), c["counters"]["duplicates"].as_i64()), (Some(2), Some(2)));
    assert_eq!(c["counters"]["rejections"], 0);
    assert_eq!(server.raw_events_metric("webhook").await, 4, "every raw push is counted, retries included");
    server.stop().await;
}

fn ndjson_webhook() -> Value {
    let mut c = hmac_webhook("acme", "s3cret");
    c["config"]["format"] = json!("ndjson");
    c
}

async fn ndjson_lines_are_events_in_order_and_a_retry_is_duplicates(server: TestServer) {
    let id = id_of(&server.create(ndjson_webhook()).await);
    let body = b"{\"n\": 1, \"time\": \"2026-11-20T10:00:00Z\"}\n{\"n\": 2}\r\n\n{\"n\": 3, \"type\": \"heartbeat\"}\n";
    let (status, answer) = push_hmac(&server, &id, "s3cret", body).await;
    assert_eq!((status, answer), (200, json!({"status": "stored", "stored": 3, "duplicates": 0})));
    let (status, answer) = push_hmac(&server, &id, "s3cret", body).await;
    assert_eq!((status, answer), (200, json!({"status": "stored", "stored": 0, "duplicates": 3})));
    let mut events = server.events(&id).await;
    events.reverse(); // oldest first
    let base = format!("sha256:{}", hex::encode(Sha256::digest(body)));
    let got: Vec<_> = events.iter().map(|e| (e["payload"]["n"].as_i64().unwrap(), e["dedupe_key"].as_str().unwrap().to_owned())).collect();
    assert_eq!(got, [(1, format!("{base}:1")), (2, format!("{base}:2")), (3, format!("{base}:4"))]);
    assert_eq!(events[0]["occurred_at"], "2026-11-20T10:00:00Z");
    assert!(events.iter().all(|e| e["kind"] == "alert"));
    let c = server.connection(&id).await;
    assert!(c["last_heartbeat_at"].is_null(), "an ndjson line is an event, never a heartbeat");
    assert_eq!((c["counters"]["events"].as_i64(), c["counters"]["duplicates"].as_i64()), (Some(3), Some(3)));
    server.stop().await;
}

async fn broken_ndjson_lines_are_one_raw_event_beside_the_good_lines(server: TestServer) {
    let id = id_of(&server.create(ndjson_webhook()).await);
    let body = b"{\"n\": 1}\n{broken\n{\"n\": 2}\nalso broken\n";
    let headers = [("x-signature", hmac_hex("s3cret", body)), ("content-type", "application/x-ndjson".to_owned())];
    let (status, answer) = push(&server, &id, body, &headers).await;
    assert_eq!((status, answer), (200, json!({"status": "stored_raw", "reason": "ndjson_line_invalid", "stored": 3, "duplicates": 0})));
    let (_, answer) = push(&server, &id, body, &headers).await;
    assert_eq!((answer["stored"].as_i64(), answer["duplicates"].as_i64()), (Some(0), Some(3)), "a retry stores nothing again");
    let mut events = server.events(&id).await;
    events.reverse();
    let kinds: Vec<_> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["alert", "alert", "raw"]);
    assert_eq!((events[0]["payload"].clone(), events[1]["payload"].clone()), (json!({"n": 1}), json!({"n": 2})));
    assert_eq!(events[2]["payload"], json!({"raw": "{broken\nalso broken", "content_type": "application/x-ndjson"}));
    assert_eq!(events[2]["dedupe_key"], format!("sha256:{}:raw", hex::encode(Sha256::digest(body))));
    assert!(server.rejections(&id).await.is_empty());
    assert_eq!(server.raw_events_metric("webhook").await, 2);
    server.stop().await;
}

async fn the_format_is_json_or_ndjson(server: TestServer) {
    let mut body = hmac_webhook("acme", "s3cret");
    body["config"]["format"] = json!("csv");
    let response = server.admin(reqwest::Method::POST, "/v1/connections").json(&body).send().await.unwrap();
    assert_eq!(response.status(), 400);
    let answer: Value = response.json().await.unwrap();
    assert!(
        answer.to_string().contains("`format` must be `json` (one JSON value per body) or `ndjson` (one JSON value per line)"),
        "{answer}"
    );
    body["config"]["format"] = json!("json");
    let id = id_of(&server.create(body).await);
    let (status, answer) = push_hmac(&server, &id, "s3cret", b"{\"a\": 1}\n{\"b\": 2}").await;
    assert_eq!((status, answer["status"].as_str(), answer["reason"].as_str()), (200, Some("stored_raw"), Some("invalid_json")));
    server.stop().await;
}

async fn paused_connections_ask_senders_to_retry(server: TestServer) {
    let id = id_of(&server.create(hmac_webhook("acme", "s3cret")).await);
    let paused = server.admin(reqwest::Method::POST, &format!("/v1/connections/{id}/pause")).send().await.unwrap();
    assert_eq!(paused.status(), 200);
    assert_eq!(paused.json::<Value>().await.unwrap()["status"], "paused");
    let body = br#"{"a": 1}"#;
    let response = server
        .client
        .post(server.url(&format!("/push/webhook/{id}")))
        .header("x-signature", hmac_hex("s3cret", body))
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert!(response.headers().get("retry-after").is_some());
    assert_eq!(response.json::<Value>().await.unwrap()["error"]["code"], "paused");
    assert!(server.events(&id).await.is_empty());
    server.admin(reqwest::Method::POST, &format!("/v1/connections/{id}/resume")).send().await.unwrap();
    assert_eq!(push_hmac(&server, &id, "s3cret", body).await.0, 200);
    server.stop().await;
}

async fn unknown_and_malformed_connection_ids(server: TestServer) {
    let unknown = uuid::Uuid::new_v4().to_string();
    let (status, answer) = push_hmac(&server, &unknown, "s", b"{}").await;
    assert_eq!((status, answer["error"]["code"].as_str()), (404, Some("unknown_connection")));
    let (status, answer) = push_hmac(&server, "not-a-uuid", "s", b"{}").await;
    assert_eq!((status, answer["error"]["code"].as_str()), (400, Some("invalid_connection_id")));
    // A real connection of another source is not found on this route.
    let sns = server
        .create(
            json!({"tenant_id": "t", "name": "n", "source": "aws_sns", "config": {"topic_arns": ["arn:aws:sns:eu-west-1:123456789012:t"]}}),
        )
        .await;
    assert_eq!(push_hmac(&server, &id_of(&sns), "s", b"{}").await.0, 404);
    let response = server.client.post(server.url("/push/carrier-pigeon/x")).send().await.unwrap();
    assert_eq!(response.status(), 404);
    server.stop().await;
}

async fn five_bad_signatures_in_a_row_are_an_error(server: TestServer) {
    let id = id_of(&server.create(hmac_webhook("acme", "s3cret")).await);
    assert_eq!(push_hmac(&server, &id, "s3cret", b"{}").await.0, 200);
    for _ in 0..4 {
        push_hmac(&server, &id, "forged", b"{}").await;
    }
    assert_eq!(server.connection(&id).await["status"], "connected");
    push_hmac(&server, &id, "forged", b"{}").await;
    let c = server.connection(&id).await;
    assert_eq!((c["status"].as_str(), c["status_message"].as_str()), (Some("error"), Some("Signature verification failing")));
    // One verified push ends it.
    assert_eq!(push_hmac(&server, &id, "s3cret", &common::heartbeat_body()).await.0, 200);
    assert_eq!(server.connection(&id).await["status"], "connected");
    server.stop().await;
}

async fn rejection_records_are_rate_limited_but_counted(server: TestServer) {
    let id = id_of(&server.create(hmac_webhook("acme", "s3cret")).await);
    let started = std::time::Instant::now();
    for _ in 0..120 {
        assert_eq!(push_hmac(&server, &id, "forged", b"{}").await.0, 401);
    }
    // A burst of 50, then 5 a second for as long as the flood lasted.
    let allowed = 50 + (5.0 * started.elapsed().as_secs_f64()).ceil() as usize;
    let kept = server.rejections(&id).await.len();
    assert!(kept >= 50 && kept <= allowed, "kept {kept} of 120 rejection rows (allowed {allowed})");
    assert_eq!(server.connection(&id).await["counters"]["rejections"], 120);
    server.stop().await;
}

async fn concurrent_pushes_are_each_stored_exactly_once(server: TestServer) {
    let id = id_of(&server.create(hmac_webhook("acme", "s3cret")).await);
    let server = std::sync::Arc::new(server);
    let mut tasks = Vec::new();
    // 300 distinct events and 100 copies of one delivery, all at once.
    for i in 0..400 {
        let (server, id) = (server.clone(), id.clone());
        tasks.push(tokio::spawn(async move {
            let body = if i < 300 { format!(r#"{{"n": {i}}}"#) } else { r#"{"n": "same"}"#.to_owned() };
            push_hmac(&server, &id, "s3cret", body.as_bytes()).await
        }));
    }
    let (mut stored, mut duplicates) = (0, 0);
    for t in tasks {
        let (status, answer) = t.await.unwrap();
        assert_eq!(status, 200, "{answer}");
        stored += answer["stored"].as_i64().unwrap();
        duplicates += answer["duplicates"].as_i64().unwrap();
    }
    assert_eq!((stored, duplicates), (301, 99));
    assert_eq!(server.events(&id).await.len(), 301);
    let c = server.connection(&id).await;
    assert_eq!((c["counters"]["events"].as_i64(), c["counters"]["duplicates"].as_i64()), (Some(301), Some(99)));
}

async fn body_limit(backend: common::Backend) {
    let Some(server) = TestServer::builder(backend, "body_limit").env("PUSHGATE_MAX_BODY_BYTES", "2048").start().await else { return };
    let id = id_of(&server.create(hmac_webhook("acme", "s3cret")).await);
    let at_limit = format!(r#"{{"pad": "{}"}}"#, "x".repeat(2048 - 11));
    assert_eq!(at_limit.len(), 2048);
    assert_eq!(push_hmac(&server, &id, "s3cret", at_limit.as_bytes()).await.0, 200);
    let over = format!(r#"{{"pad": "{}"}}"#, "y".repeat(2048 - 10));
    let (status, answer) = push_hmac(&server, &id, "s3cret", over.as_bytes()).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (413, Some("body_too_large")));
    // Chunked, with no Content-Length to refuse up front.
    let stream = futures_stream(over.into_bytes());
    let response =
        server.client.post(server.url(&format!("/push/webhook/{id}"))).body(reqwest::Body::wrap_stream(stream)).send().await.unwrap();
    assert_eq!(response.status(), 413);
    assert_eq!(server.events(&id).await.len(), 1);
    assert_eq!(server.rejections(&id).await[0]["reason"], "body_too_large");
    server.stop().await;
}

fn futures_stream(bytes: Vec<u8>) -> impl futures_core::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = bytes.chunks(500).map(|c| Ok(c.to_vec())).collect();
    tokio_stream::iter(chunks)
}

#[tokio::test]
async fn body_one_byte_over_the_limit_is_refused_sqlite() {
    body_limit(common::Backend::Sqlite).await;
}

#[tokio::test]
async fn body_one_byte_over_the_limit_is_refused_postgres() {
    body_limit(common::Backend::Postgres).await;
}

async fn slow_senders_time_out(backend: common::Backend) {
    let Some(server) = TestServer::builder(backend, "slow_senders").env("PUSHGATE_REQUEST_TIMEOUT_MS", "1500").start().await else {
        return;
    };
    let id = id_of(&server.create(hmac_webhook("acme", "s3cret")).await);
    // A body that trickles in slower than the request timeout allows.
    let slow = async_stream_of_two_chunks();
    let response =
        server.client.post(server.url(&format!("/push/webhook/{id}"))).body(reqwest::Body::wrap_stream(slow)).send().await.unwrap();
    assert_eq!(response.status(), 503);
    assert!(response.headers().get("retry-after").is_some());
    assert_eq!(response.json::<Value>().await.unwrap()["error"]["code"], "timeout");
    assert!(server.events(&id).await.is_empty());
    server.stop().await;
}

fn async_stream_of_two_chunks() -> impl futures_core::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    use tokio_stream::StreamExt;
    let chunks = tokio_stream::iter(vec![Ok(b"{\"a\":".to_vec()), Ok(b"1}".to_vec())]);
    chunks.throttle(std::time::Duration::from_secs(5))
}

#[tokio::test]
async fn slow_senders_time_out_sqlite() {
    slow_senders_time_out(common::Backend::Sqlite).await;
}

#[tokio::test]
async fn slow_senders_time_out_postgres() {
    slow_senders_time_out(common::Backend::Postgres).await;
}

async fn body_budget(backend: common::Backend) {
    let env = [("PUSHGATE_MAX_BODY_BYTES", "2048"), ("PUSHGATE_MAX_BUFFERED_BODY_BYTES", "4096")];
    let Some(server) = TestServer::builder(backend, "body_budget").envs(env).start().await else { return };
    let id = id_of(&server.create(hmac_webhook("acme", "s3cret")).await);
    let body = br#"{"alert": "slow"}"#;
    // Two streamed bodies with no declared length each hold a full 2 KiB reservation.
    let mut senders = Vec::new();
    let mut in_flight = Vec::new();
    for _ in 0..2 {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(2);
        tx.send(Ok(body[..5].to_vec())).await.unwrap();
        let request = server
            .client
            .post(server.url(&format!("/push/webhook/{id}")))
            .header("x-signature", hmac_hex("s3cret", body))
            .body(reqwest::Body::wrap_stream(tokio_stream::wrappers::ReceiverStream::new(rx)));
        in_flight.push(tokio::spawn(request.send()));
        senders.push(tx);
    }
    // Time for the server to read both heads and reserve for both bodies, which shows
    // nowhere but in the refusal below.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (status, answer) = push_hmac(&server, &id, "s3cret", body).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (503, Some("overloaded")), "the budget is spent");
    for tx in senders {
        tx.send(Ok(body[5..].to_vec())).await.unwrap();
    }
    for request in in_flight {
        assert_eq!(request.await.unwrap().unwrap().status(), 200);
    }
    assert_eq!(push_hmac(&server, &id, "s3cret", br#"{"alert": "later"}"#).await.0, 200, "the budget is back");
    server.stop().await;
}

#[tokio::test]
async fn buffered_body_memory_is_bounded_sqlite() {
    body_budget(common::Backend::Sqlite).await;
}

#[tokio::test]
async fn buffered_body_memory_is_bounded_postgres() {
    body_budget(common::Backend::Postgres).await;
}

/// The path the README gives for Microsoft Defender XDR alerts: a Sentinel automation rule
/// runs a playbook whose HTTP action POSTs the incident with an API key header, into a
/// connection of its own stream; a recurrence workflow POSTs the heartbeat. The incident is
/// the documented sample (tests/fixtures/PROVENANCE.md, ms-sentinel), with the top-level
/// `time` the playbook's `setProperty(..., 'time', lastModifiedTimeUtc)` adds.
async fn a_sentinel_playbook_posts_incidents_and_a_recurrence_heartbeat(server: TestServer) {
    let c = server
        .create(json!({"tenant_id": "acme", "name": "Defender XDR incidents (Sentinel playbook)", "source": "webhook",
            "stream": "cloud_ms_sentinel_incident", "heartbeat_interval_seconds": 300, "grace_seconds": 120,
            "config": {"auth": {"type": "api_key", "header": "X-Pushgate-Key", "value": "key-from-key-vault"}}}))
        .await;
    let id = id_of(&c);
    let key = vec![("x-pushgate-key", "key-from-key-vault".to_string()), ("content-type", "application/json".to_string())];
    let fixture = include_str!("fixtures/ms-sentinel/incident_get-by-id.json");
    let mut incident: Value = serde_json::from_str(fixture).unwrap();
    let modified = incident["properties"]["lastModifiedTimeUtc"].clone();
    incident["time"] = modified;
    let body = serde_json::to_vec(&incident).unwrap();

    let (status, answer) = push(&server, &id, &body, &key).await;
    assert_eq!((status, answer), (200, json!({"status": "stored", "stored": 1, "duplicates": 0})));
    // The HTTP action's retry (after a timeout, 408, 429 or 5xx) sends the same body again.
    let (status, answer) = push(&server, &id, &body, &key).await;
    assert_eq!((status, answer), (200, json!({"status": "stored", "stored": 0, "duplicates": 1})));
    // Without the key nothing is stored, and the refusal is kept.
    let (status, _) = push(&server, &id, &body, &[]).await;
    assert_eq!(status, 401);

    let events = server.events(&id).await;
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!((e["stream"].as_str(), e["kind"].as_str()), (Some("cloud_ms_sentinel_incident"), Some("alert")));
    assert_eq!(e["occurred_at"], "2019-01-01T13:15:30Z");
    assert_eq!(e["payload"], incident, "the incident is stored as the playbook sent it");
    assert_eq!(e["payload"]["properties"]["title"], "My incident");
    assert_eq!(e["dedupe_key"], format!("sha256:{}", hex::encode(Sha256::digest(&body))));

    // The recurrence workflow: {"type":"heartbeat","id":"@{guid()}","time":"@{utcNow()}"}.
    let now = chrono::Utc::now().trunc_subsecs(0);
    let beat = common::heartbeat_body_at("0f8fad5b-d9cb-469f-a165-70867728950e", now);
    let (status, answer) = push(&server, &id, &beat, &key).await;
    assert_eq!((status, answer), (200, json!({"status": "heartbeat", "duplicate": false})));
    let c = server.connection(&id).await;
    assert_eq!(c["last_heartbeat_at"], common::api_time(now));
    assert_eq!((c["status"].as_str(), c["stream"].as_str()), (Some("connected"), Some("cloud_ms_sentinel_incident")));
    assert_eq!(c["counters"], json!({"events": 1, "heartbeats": 1, "duplicates": 1, "rejections": 1}));
    assert_eq!(server.rejections(&id).await.len(), 1);
    server.stop().await;
}
