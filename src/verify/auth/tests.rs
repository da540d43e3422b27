use super::*;
use crate::verify::RejectClass;
use serde_json::json;

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
    }
    h
}

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_614_265_330, 0).unwrap()
}

fn parse(auth: Value) -> Auth {
    Auth::parse(&json!({ "auth": auth }), Allowed::WithStandardWebhooks).unwrap()
}

// The example of the Standard Webhooks specification (standard-webhooks/standard-webhooks,
// spec/standard-webhooks.md): secret, id, timestamp, body and signature as published.
const SPEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const SPEC_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const SPEC_BODY: &[u8] = br#"{"test": 2432232314}"#;
const SPEC_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

fn spec_headers(signature: &str, timestamp: &str) -> HeaderMap {
    headers(&[("webhook-id", SPEC_ID), ("webhook-timestamp", timestamp), ("webhook-signature", signature)])
}

#[test]
fn standard_webhooks_accepts_the_specification_example() {
    let auth = parse(json!({"type": "standard_webhooks", "secret": SPEC_SECRET}));
    let signed = auth.check(&spec_headers(SPEC_SIG, "1614265330"), SPEC_BODY, now()).unwrap().unwrap();
    assert_eq!(signed.id, SPEC_ID);
    assert_eq!(signed.at, DateTime::from_timestamp(1_614_265_330, 0).unwrap(), "the signed webhook-timestamp");
    // Several signatures in the header: one good one is enough.
    let both = format!("v1,AAAA {SPEC_SIG} v1a,ignored");
    assert!(auth.check(&spec_headers(&both, "1614265330"), SPEC_BODY, now()).is_ok());
}

#[test]
fn standard_webhooks_refuses_tampering_and_stale_timestamps() {
    let auth = parse(json!({"type": "standard_webhooks", "secret": SPEC_SECRET}));
    let reserialized = br#"{"test":2432232314}"#;
    let e = auth.check(&spec_headers(SPEC_SIG, "1614265330"), reserialized, now()).unwrap_err();
    assert_eq!((e.class, e.reason), (RejectClass::Unauthenticated, "bad_signature"));

    let late = now() + chrono::Duration::seconds(301);
    let e = auth.check(&spec_headers(SPEC_SIG, "1614265330"), SPEC_BODY, late).unwrap_err();
    assert_eq!(e.reason, "timestamp_out_of_tolerance");
    let early = now() - chrono::Duration::seconds(301);
    assert_eq!(auth.check(&spec_headers(SPEC_SIG, "1614265330"), SPEC_BODY, early).unwrap_err().reason, "timestamp_out_of_tolerance");

    let e = auth.check(&spec_headers("v1,!!!", "1614265330"), SPEC_BODY, now()).unwrap_err();
    assert_eq!((e.class, e.reason), (RejectClass::Malformed, "malformed_signature"));
    let e = auth.check(&spec_headers(SPEC_SIG, "yesterday"), SPEC_BODY, now()).unwrap_err();
    assert_eq!((e.class, e.reason), (RejectClass::Malformed, "malformed_timestamp"));
    let e = auth.check(&headers(&[("webhook-id", SPEC_ID)]), SPEC_BODY, now()).unwrap_err();
    assert_eq!((e.class, e.reason), (RejectClass::Unauthenticated, "missing_signature"));
}

#[test]
fn standard_webhooks_tolerance_is_configurable() {
    let auth = parse(json!({"type": "standard_webhooks", "secret": SPEC_SECRET, "tolerance_seconds": 3600}));
    let later = now() + chrono::Duration::seconds(3000);
    assert!(auth.check(&spec_headers(SPEC_SIG, "1614265330"), SPEC_BODY, later).is_ok());
}

#[test]
fn hmac_accepts_any_secret_during_rotation_with_or_without_prefix() {
    let auth = parse(json!({"type": "hmac_sha256", "header": "X-Signature", "secret": ["old", "new"]}));
    let body = b"{\"a\":1}";
    for secret in ["old", "new"] {
        let sig = hex::encode(crate::verify::hmac_sha256(secret.as_bytes(), &[body]));
        assert!(auth.check(&headers(&[("x-signature", &sig)]), body, now()).is_ok());
        let prefixed = format!("sha256={sig}");
        assert!(auth.check(&headers(&[("x-signature", &prefixed)]), body, now()).is_ok());
    }
    let sig = hex::encode(crate::verify::hmac_sha256(b"other", &[body]));
    assert_eq!(auth.check(&headers(&[("x-signature", &sig)]), body, now()).unwrap_err().reason, "bad_signature");
    let truncated = &hex::encode(crate::verify::hmac_sha256(b"new", &[body]))[..40];
    assert_eq!(auth.check(&headers(&[("x-signature", truncated)]), body, now()).unwrap_err().reason, "bad_signature");
    assert_eq!(auth.check(&headers(&[("x-signature", "zz")]), body, now()).unwrap_err().class, RejectClass::Malformed);
    assert_eq!(auth.check(&headers(&[]), body, now()).unwrap_err().reason, "missing_signature");
}

#[test]
fn api_key_and_basic() {
    let key = parse(json!({"type": "api_key", "header": "X-Api-Key", "value": "k-123"}));
    assert!(key.check(&headers(&[("x-api-key", "k-123")]), b"", now()).is_ok());
    assert_eq!(key.check(&headers(&[("x-api-key", "k-124")]), b"", now()).unwrap_err().reason, "bad_credentials");
    assert_eq!(key.check(&headers(&[]), b"", now()).unwrap_err().reason, "missing_credentials");

    let basic = parse(json!({"type": "basic", "username": "u", "password": "p:w"}));
    let good = format!("Basic {}", STANDARD.encode("u:p:w"));
    assert!(basic.check(&headers(&[("authorization", &good)]), b"", now()).is_ok());
    let bad = format!("Basic {}", STANDARD.encode("u:x"));
    assert_eq!(basic.check(&headers(&[("authorization", &bad)]), b"", now()).unwrap_err().reason, "bad_credentials");
}

#[test]
fn parse_lists_every_problem() {
    let errors = Auth::parse(&json!({"auth": {"type": "hmac_sha256", "extra": 1}}), Allowed::Basic).unwrap_err();
    let all = errors.join("\n");
    assert!(all.contains("auth.header") && all.contains("auth.secret") && all.contains("auth.extra"), "{all}");
    let errors = Auth::parse(&json!({"auth": {"type": "standard_webhooks", "secret": "x"}}), Allowed::Basic).unwrap_err();
    assert!(errors[0].contains("not one of api_key, basic, hmac_sha256"));
    let errors = Auth::parse(&json!({"auth": {"type": "standard_webhooks", "secret": "nope"}}), Allowed::WithStandardWebhooks).unwrap_err();
    assert!(errors[0].contains("whsec_"));
    assert!(Auth::parse(&json!({}), Allowed::Basic).is_err());
}

#[test]
fn debug_hides_secrets() {
    let auth = parse(json!({"type": "api_key", "header": "X", "value": "very-secret"}));
    assert!(!format!("{auth:?}").contains("very-secret"));
}

#[test]
fn many_signatures_cost_one_mac_per_key_and_long_headers_are_refused() {
    let auth = parse(json!({"type": "standard_webhooks", "secret": SPEC_SECRET}));
    let many = format!("{} {SPEC_SIG}", vec!["v1,AAAA"; 300].join(" "));
    let e = auth.check(&spec_headers(&many, "1614265330"), SPEC_BODY, now()).unwrap_err();
    assert_eq!((e.class, e.reason), (RejectClass::Malformed, "malformed_signature"));
    let some = format!("{} {SPEC_SIG}", vec!["v1,AAAA"; 20].join(" "));
    assert!(auth.check(&spec_headers(&some, "1614265330"), SPEC_BODY, now()).is_ok());
}

#[test]
fn extreme_timestamps_are_out_of_tolerance_not_a_panic() {
    let auth = parse(json!({"type": "standard_webhooks", "secret": SPEC_SECRET}));
    for ts in ["-9223372036854775808", "9223372036854775807", "-9223372035154775808"] {
        let e = auth.check(&spec_headers(SPEC_SIG, ts), SPEC_BODY, now()).unwrap_err();
        assert_eq!(e.reason, "timestamp_out_of_tolerance", "{ts}");
    }
}
