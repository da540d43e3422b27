use super::config::validate_config;
use super::*;
use crate::sources::{Batch, RejectClass};
use crate::sources::{ConnectionConfig, Sender};
use http::HeaderMap;
use serde_json::json;
use sha2::{Digest, Sha256};

fn request<'a>(headers: &'a HeaderMap, body: &'a [u8]) -> RawRequest<'a> {
    RawRequest { headers, query: None, body, push_url: "http://x/push/webhook/1", now: Utc::now() }
}

fn signed(secret: &str, body: &[u8]) -> HeaderMap {
    let mut h = HeaderMap::new();
    let sig = hex::encode(crate::verify::hmac_sha256(secret.as_bytes(), &[body]));
    h.insert("x-sig", sig.parse().unwrap());
    h
}

fn config() -> Value {
    json!({"auth": {"type": "hmac_sha256", "header": "X-Sig", "secret": "s3cret"}})
}

async fn receive(headers: &HeaderMap, body: &[u8], config: &Value) -> Result<Intake, Rejected> {
    let config = &ConnectionConfig::load(&WebhookSender, config.clone());
    WebhookSender.receive(request(headers, body), config).await?
}

#[tokio::test]
async fn a_signed_json_body_is_one_alert_keyed_by_body_hash() {
    let body = br#"{"alert":"x","time":"2026-01-02T03:04:05Z"}"#;
    let Intake::Events { events, .. } = receive(&signed("s3cret", body), body, &config()).await.unwrap() else { panic!("expected events") };
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, EventKind::Alert);
    assert_eq!(events[0].dedupe_key, format!("sha256:{}", hex::encode(Sha256::digest(body))));
    assert_eq!(events[0].occurred_at.unwrap().to_rfc3339(), "2026-01-02T03:04:05+00:00");
    assert_eq!(events[0].payload["alert"], "x");
}

#[tokio::test]
async fn an_unsigned_delivery_id_is_ignored_when_the_body_is_signed() {
    let body = br#"{"a":1}"#;
    let mut headers = signed("s3cret", body);
    headers.insert("webhook-id", "evt_1".parse().unwrap());
    let Intake::Events { events, .. } = receive(&headers, body, &config()).await.unwrap() else { panic!() };
    assert!(events[0].dedupe_key.starts_with("sha256:"));
}

#[tokio::test]
async fn the_delivery_id_header_is_the_dedupe_key_with_an_api_key() {
    let config = json!({"auth": {"type": "api_key", "header": "X-Key", "value": "k"}, "id_header": "X-Delivery"});
    let mut headers = HeaderMap::new();
    headers.insert("x-key", "k".parse().unwrap());
    headers.insert("x-delivery", "d-9".parse().unwrap());
    let Intake::Events { events, .. } = receive(&headers, b"{}", &config).await.unwrap() else { panic!() };
    assert_eq!(events[0].dedupe_key, "d-9");
}

#[tokio::test]
async fn the_auth_is_parsed_once_when_the_connection_is_loaded() {
    let settings = WebhookSender.prepare(&config()).unwrap();
    assert!(matches!(settings.auth, Auth::HmacSha256 { .. }));
    // A config saved before a rule tightened, which no longer reads: every push is refused.
    let broken = ConnectionConfig::load(&WebhookSender, json!({"auth": {"type": "hmac_sha256"}}));
    let body = br#"{"a":1}"#;
    let e = WebhookSender.receive(request(&signed("s3cret", body), body), &broken).await.unwrap_err();
    assert_eq!((e.class, e.reason), (RejectClass::Unauthenticated, "invalid_connection_config"));
    assert!(e.detail.contains("auth.header"), "{}", e.detail);
    // Loaded without preparing (a caller that did not), the JSON is read on the spot.
    let unprepared = ConnectionConfig::unprepared(config());
    assert!(WebhookSender.receive(request(&signed("s3cret", body), body), &unprepared).await.is_ok());
}

#[tokio::test]
async fn heartbeat_body_is_a_heartbeat_with_the_id_and_time_it_carries() {
    let body = br#"{"type": "heartbeat", "id": "hb-2026-12-01T10:05:00Z", "time": "2026-12-01T10:05:00Z"}"#;
    let proof = HeartbeatProof::new("hb-2026-12-01T10:05:00Z", "2026-12-01T10:05:00Z".parse().unwrap());
    assert_eq!(receive(&signed("s3cret", body), body, &config()).await.unwrap(), Intake::Heartbeat(proof));
    // Without them (or with a time that is not RFC 3339) it names nothing: ingest refuses it.
    let body = br#"{"type":"heartbeat"}"#;
    let nothing = HeartbeatProof { id: None, signed_at: None };
    assert_eq!(receive(&signed("s3cret", body), body, &config()).await.unwrap(), Intake::Heartbeat(nothing));
    let body = br#"{"type":"heartbeat","id":"a","time":"yesterday"}"#;
    let untimed = HeartbeatProof { id: Some("a".into()), signed_at: None };
    assert_eq!(receive(&signed("s3cret", body), body, &config()).await.unwrap(), Intake::Heartbeat(untimed));
}

#[tokio::test]
async fn a_standard_webhooks_heartbeat_is_the_signed_id_and_timestamp() {
    use base64::Engine;
    let key = b"0123456789abcdef0123456789abcdef";
    let config = json!({"auth": {"type": "standard_webhooks",
        "secret": format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(key))}});
    // The body's own id and time are not what the signature covers: they are ignored.
    let body = br#"{"type":"heartbeat","id":"body-id","time":"2020-01-01T00:00:00Z"}"#;
    let at = Utc::now() - chrono::Duration::seconds(20);
    let timestamp = at.timestamp().to_string();
    let tag = crate::verify::hmac_sha256(key, &[b"msg_1", b".", timestamp.as_bytes(), b".", body]);
    let mut headers = HeaderMap::new();
    headers.insert("webhook-id", "msg_1".parse().unwrap());
    headers.insert("webhook-timestamp", timestamp.parse().unwrap());
    let signature = format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(tag));
    headers.insert("webhook-signature", signature.parse().unwrap());
    let signed_at = DateTime::from_timestamp(at.timestamp(), 0).unwrap();
    assert_eq!(receive(&headers, body, &config).await.unwrap(), Intake::Heartbeat(HeartbeatProof::new("msg_1", signed_at)));
}

#[tokio::test]
async fn verified_but_undecodable_bodies_are_undecodable() {
    for (body, reason) in [(&b"not json"[..], "invalid_json"), (&[0xff, 0xfe, b'{'][..], "invalid_utf8")] {
        let e = receive(&signed("s3cret", body), body, &config()).await.unwrap_err();
        assert_eq!((e.class, e.reason), (RejectClass::Undecodable, reason), "{e}");
        // The whole body is kept, keyed by its hash (no delivery id is signed).
        assert_eq!(e.kept, None);
    }
    // A delivery id that counts keys the raw event, so a retry is stored once.
    let config = json!({"auth": {"type": "api_key", "header": "X-Key", "value": "k"}});
    let mut headers = HeaderMap::new();
    headers.insert("x-key", "k".parse().unwrap());
    headers.insert("webhook-id", "d-7".parse().unwrap());
    let e = receive(&headers, b"not json", &config).await.unwrap_err();
    assert_eq!(e.kept.and_then(|k| k.dedupe_key), Some("d-7".into()));
}

fn ndjson_config() -> Value {
    let mut c = config();
    c["format"] = json!("ndjson");
    c
}

/// The events and raw parts of a signed ndjson body.
async fn ndjson(body: &[u8]) -> Result<Batch, Rejected> {
    match receive(&signed("s3cret", body), body, &ndjson_config()).await? {
        Intake::Batch(batch) => Ok(batch),
        other => panic!("expected a batch, got {other:?}"),
    }
}

#[tokio::test]
async fn each_ndjson_line_is_one_event_keyed_by_the_body_and_its_line_number() {
    let body = b"{\"a\":1,\"time\":\"2026-01-02T03:04:05Z\"}\r\n\n  \n{\"type\":\"heartbeat\"}\n[3]\n";
    let batch = ndjson(body).await.unwrap();
    let base = format!("sha256:{}", hex::encode(Sha256::digest(body)));
    let keys: Vec<_> = batch.events.iter().map(|e| e.dedupe_key.clone()).collect();
    assert_eq!(keys, [format!("{base}:1"), format!("{base}:4"), format!("{base}:5")], "blank lines count but store nothing");
    assert_eq!(batch.events[0].occurred_at.unwrap().to_rfc3339(), "2026-01-02T03:04:05+00:00");
    assert_eq!(batch.events[1].payload, json!({"type": "heartbeat"}), "an ndjson line is never a heartbeat");
    assert_eq!(batch.events[2].payload, json!([3]));
    assert!(batch.events.iter().all(|e| e.kind == EventKind::Alert));
    assert!(batch.refused.is_empty() && batch.changes.is_empty());
}

#[tokio::test]
async fn ndjson_lines_are_keyed_by_the_delivery_id_when_one_counts() {
    let config = json!({"auth": {"type": "api_key", "header": "X-Key", "value": "k"}, "format": "ndjson", "event_kind": "telemetry"});
    let mut headers = HeaderMap::new();
    headers.insert("x-key", "k".parse().unwrap());
    headers.insert("webhook-id", "d-1".parse().unwrap());
    let Intake::Batch(batch) = receive(&headers, b"{}\n{}", &config).await.unwrap() else { panic!() };
    let keys: Vec<_> = batch.events.iter().map(|e| (e.dedupe_key.as_str(), e.kind)).collect();
    assert_eq!(keys, [("d-1:1", EventKind::Telemetry), ("d-1:2", EventKind::Telemetry)]);
}

#[tokio::test]
async fn broken_ndjson_lines_are_kept_together_beside_the_good_ones() {
    let body = b"{\"a\":1}\nnot json\n{\"b\":2}\n\xff{\r\n";
    let batch = ndjson(body).await.unwrap();
    assert_eq!(batch.events.iter().map(|e| e.payload.clone()).collect::<Vec<_>>(), [json!({"a": 1}), json!({"b": 2})]);
    assert_eq!(batch.refused.len(), 1, "one raw event for every broken line");
    let raw = &batch.refused[0];
    assert_eq!((raw.class, raw.reason), (RejectClass::Undecodable, "ndjson_line_invalid"));
    assert!(raw.detail.contains("2, 4"), "{}", raw.detail);
    let kept = raw.kept.as_deref().unwrap();
    assert_eq!(kept.body.as_deref(), Some(&b"not json\n\xff{"[..]));
    assert_eq!(kept.content_type, None, "the request's");
    let base = format!("sha256:{}", hex::encode(Sha256::digest(body)));
    assert_eq!(kept.dedupe_key, Some(format!("{base}:raw")));
}

#[tokio::test]
async fn an_ndjson_body_without_a_good_line_is_undecodable_whole() {
    for body in [&b"nope\nstill no"[..], b"", b"\n \n"] {
        let e = ndjson(body).await.unwrap_err();
        assert_eq!((e.class, e.reason, e.kept), (RejectClass::Undecodable, "ndjson_no_event", None), "{body:?}");
    }
}

#[tokio::test]
async fn unsigned_bodies_are_refused_before_parsing() {
    let e = receive(&HeaderMap::new(), b"not json", &config()).await.unwrap_err();
    assert_eq!(e.class, RejectClass::Unauthenticated);
}

#[test]
fn config_validation() {
    assert!(validate_config(&config()).is_empty());
    assert!(!validate_config(&json!({})).is_empty());
    let mut c = config();
    c["event_kind"] = json!("weird");
    assert_eq!(validate_config(&c).len(), 1);
    for format in ["json", "ndjson"] {
        assert!(validate_config(&json!({"auth": config()["auth"], "format": format})).is_empty(), "{format}");
    }
    for format in [json!("csv"), json!("NDJSON"), json!(null), json!(1)] {
        let e = validate_config(&json!({"auth": config()["auth"], "format": format}));
        assert_eq!(e, ["`format` must be `json` (one JSON value per body) or `ndjson` (one JSON value per line)"], "{format}");
    }
}
