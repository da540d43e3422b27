use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{json, Value};

use super::*;
use crate::sources::ms_graph::keys::MicrosoftKeys;
use crate::sources::ms_graph::test_signer::TestOidcSigner;
use crate::sources::RejectClass;

const APP: &str = "8a4f2c1e-6b3d-4e5f-9a7b-1c2d3e4f5a6b";
const OTHER_APP: &str = "f1e2d3c4-b5a6-4978-8a9b-0c1d2e3f4a5b";
const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const OTHER_TENANT: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";

/// A signer, Microsoft's keys publishing it (from a file), and the connection's ids.
struct Graph {
    signer: TestOidcSigner,
    keys: MicrosoftKeys,
    app_ids: Vec<String>,
    tenant_ids: Vec<String>,
    now: DateTime<Utc>,
    _dir: tempfile::TempDir,
}

impl Graph {
    fn new() -> Graph {
        let dir = tempfile::tempdir().unwrap();
        let signer = TestOidcSigner::new();
        let keys = MicrosoftKeys::offline(Some(signer.write_microsoft_jwks(dir.path()).unwrap()));
        Graph {
            signer,
            keys,
            app_ids: vec![APP.into()],
            tenant_ids: vec![TENANT.into()],
            now: DateTime::parse_from_rfc3339("2026-03-02T10:00:00Z").unwrap().with_timezone(&Utc),
            _dir: dir,
        }
    }

    async fn check(&self, tokens: Value) -> Result<Vec<TokenClaims>, Rejected> {
        let expected = Expected { app_ids: &self.app_ids, tenant_ids: &self.tenant_ids };
        verify_validation_tokens(&tokens, &self.keys, &expected, self.now).await
    }

    /// Refused as `class`/`reason`, with a detail that never shows `tokens`.
    async fn refused(&self, tokens: Value, class: RejectClass, reason: &str) -> Rejected {
        let e = self.check(tokens.clone()).await.expect_err(reason);
        assert_eq!((e.class, e.reason), (class, reason), "{e}");
        for token in tokens.as_array().into_iter().flatten().filter_map(Value::as_str).filter(|t| t.len() > 20) {
            assert!(!e.detail.contains(token), "the detail shows a token: {e}");
        }
        e
    }

    /// One token, refused as unauthenticated for `reason`.
    async fn unauthenticated(&self, token: String, reason: &str) -> Rejected {
        self.refused(json!([token]), RejectClass::Unauthenticated, reason).await
    }

    fn v1(&self) -> Value {
        TestOidcSigner::graph_claims_v1(APP, TENANT, self.now)
    }

    fn v2(&self) -> Value {
        TestOidcSigner::graph_claims_v2(APP, TENANT, self.now)
    }

    /// `claims` with `changes` applied (a null removes the claim), signed.
    fn signed(&self, mut claims: Value, changes: Value) -> String {
        for (name, value) in changes.as_object().unwrap() {
            match value {
                Value::Null => claims.as_object_mut().unwrap().remove(name),
                value => claims.as_object_mut().unwrap().insert(name.clone(), value.clone()),
            };
        }
        self.signer.graph_token(claims)
    }
}

#[tokio::test]
async fn v1_and_v2_tokens_from_graph_verify() {
    let graph = Graph::new();
    let v1 = graph.signer.graph_token_v1(APP, TENANT, graph.now);
    let v2 = graph.signer.graph_token_v2(APP, TENANT, graph.now);
    let claims = graph.check(json!([v1, v2])).await.unwrap();
    assert_eq!(claims.len(), 2);
    assert_eq!(claims[0].version, TokenVersion::V1);
    assert_eq!(claims[0].issuer, format!("https://sts.windows.net/{TENANT}/"));
    assert_eq!(claims[1].version, TokenVersion::V2);
    assert_eq!(claims[1].issuer, format!("https://login.microsoftonline.com/{TENANT}/v2.0"));
    for c in &claims {
        assert_eq!((c.app_id.as_str(), c.tenant_id.as_str()), (APP, TENANT));
        assert_eq!(c.issued_at, graph.now);
        assert_eq!(c.expires_at, graph.now + TimeDelta::hours(1));
    }
}

#[tokio::test]
async fn ids_compare_case_insensitively_and_any_tenant_is_accepted_without_tenant_ids() {
    let mut graph = Graph::new();
    graph.app_ids = vec![OTHER_APP.into(), APP.to_uppercase()];
    graph.tenant_ids = vec![TENANT.to_uppercase()];
    graph.check(json!([graph.signer.graph_token_v2(APP, TENANT, graph.now)])).await.unwrap();

    graph.tenant_ids = Vec::new();
    let claims = graph.check(json!([graph.signer.graph_token_v1(APP, OTHER_TENANT, graph.now)])).await.unwrap();
    assert_eq!(claims[0].tenant_id, OTHER_TENANT);
}

#[tokio::test]
async fn the_audience_must_be_one_of_the_app_ids() {
    let mut graph = Graph::new();
    let e = graph.unauthenticated(graph.signer.graph_token_v1(OTHER_APP, TENANT, graph.now), "graph_token_audience").await;
    assert!(e.detail.contains(OTHER_APP) && e.detail.contains(APP) && e.detail.starts_with("validation token 1 of 1: "), "{e}");
    graph.unauthenticated(graph.signed(graph.v2(), json!({"aud": [APP]})), "graph_token_audience").await;
    graph.unauthenticated(graph.signed(graph.v2(), json!({"aud": null})), "graph_token_audience").await;

    graph.app_ids = Vec::new();
    let e = graph.unauthenticated(graph.signer.graph_token_v2(APP, TENANT, graph.now), "graph_token_audience").await;
    assert!(e.detail.contains("no app_ids"), "{e}");
}

#[tokio::test]
async fn the_issuer_must_be_an_allowed_tenant_and_match_tid() {
    let graph = Graph::new();
    let e = graph.unauthenticated(graph.signer.graph_token_v1(APP, OTHER_TENANT, graph.now), "graph_token_issuer").await;
    assert!(e.detail.contains(OTHER_TENANT) && e.detail.contains(TENANT), "{e}");
    graph.unauthenticated(graph.signer.graph_token_v2(APP, OTHER_TENANT, graph.now), "graph_token_issuer").await;

    let e = graph.unauthenticated(graph.signed(graph.v2(), json!({"tid": OTHER_TENANT})), "graph_token_issuer").await;
    assert!(e.detail.contains("tid"), "{e}");
    graph.unauthenticated(graph.signed(graph.v1(), json!({"tid": 7})), "graph_token_issuer").await;
    // Without tid, the issuer's tenant is what counts.
    graph.check(json!([graph.signed(graph.v1(), json!({"tid": null}))])).await.unwrap();

    for issuer in [
        "https://accounts.google.com".to_string(),
        format!("https://sts.windows.net/{TENANT}"),
        format!("https://login.microsoftonline.com/{TENANT}/"),
        format!("https://login.microsoftonline.com/{TENANT}/oauth2/v2.0"),
        format!("https://evil.example/https://sts.windows.net/{TENANT}/"),
        "https://sts.windows.net//".to_string(),
    ] {
        let e = graph.unauthenticated(graph.signed(graph.v1(), json!({"iss": issuer})), "graph_token_issuer").await;
        assert!(e.detail.contains("expected https://sts.windows.net/{tenant}/"), "{issuer}: {e}");
    }
    graph.unauthenticated(graph.signed(graph.v1(), json!({"iss": null})), "graph_token_issuer").await;
}

#[tokio::test]
async fn the_caller_must_be_graph_change_tracking_in_the_claim_of_its_version() {
    let graph = Graph::new();
    let e = graph.unauthenticated(graph.signed(graph.v1(), json!({"appid": OTHER_APP})), "graph_token_caller").await;
    assert!(e.detail.contains(OTHER_APP) && e.detail.contains(GRAPH_CHANGE_TRACKING_APP_ID), "{e}");
    graph.unauthenticated(graph.signed(graph.v2(), json!({"azp": OTHER_APP})), "graph_token_caller").await;

    // A v1 token names its caller in appid, a v2 token in azp: the other claim does not count.
    let v1_with_azp_only = graph.signed(graph.v1(), json!({"appid": null, "azp": GRAPH_CHANGE_TRACKING_APP_ID}));
    let e = graph.unauthenticated(v1_with_azp_only, "graph_token_caller").await;
    assert!(e.detail.contains("no appid claim"), "{e}");
    let v2_with_appid_only = graph.signed(graph.v2(), json!({"azp": null, "appid": GRAPH_CHANGE_TRACKING_APP_ID}));
    let e = graph.unauthenticated(v2_with_appid_only, "graph_token_caller").await;
    assert!(e.detail.contains("no azp claim"), "{e}");

    for ver in [json!("3.0"), json!(null), json!(1.0)] {
        graph.unauthenticated(graph.signed(graph.v2(), json!({"ver": ver})), "graph_token_caller").await;
    }
}

#[tokio::test]
async fn times_are_checked_against_the_clock_with_leeway() {
    let mut graph = Graph::new();
    let issued = graph.now;
    let token = graph.signer.graph_token_v2(APP, TENANT, issued);

    graph.now = issued + TimeDelta::hours(1) + TimeDelta::seconds(59);
    graph.check(json!([token])).await.unwrap();
    graph.now = issued + TimeDelta::hours(1) + TimeDelta::seconds(60);
    let e = graph.unauthenticated(token.clone(), "graph_token_expired").await;
    assert!(e.detail.contains("token expired at 2026-03-02T11:00:00Z"), "{e}");

    graph.now = issued - TimeDelta::seconds(60);
    graph.check(json!([token])).await.unwrap();
    graph.now = issued - TimeDelta::seconds(61);
    graph.unauthenticated(token, "graph_token_not_yet_valid").await;

    graph.now = issued;
    let later = (issued + TimeDelta::minutes(5)).timestamp();
    let e = graph.unauthenticated(graph.signed(graph.v1(), json!({"nbf": later})), "graph_token_not_yet_valid").await;
    assert!(e.detail.contains("valid from"), "{e}");
    graph.unauthenticated(graph.signed(graph.v1(), json!({"exp": null})), "graph_token_expired").await;
}

#[tokio::test]
async fn forgeries_are_refused() {
    let graph = Graph::new();
    let forger = TestOidcSigner::with_kid(graph.signer.kid());
    let e = graph.unauthenticated(forger.graph_token_v1(APP, TENANT, graph.now), "graph_token_signature").await;
    assert!(e.detail.contains(graph.signer.kid()), "{e}");

    let unsigned = graph.signer.unsigned(graph.v1());
    let e = graph.refused(json!([unsigned]), RejectClass::Unauthenticated, "graph_token_algorithm").await;
    assert!(e.detail.contains("\"none\""), "{e}");
    let hs256 = graph.signer.hs256_with(graph.signer.public_key_pem().as_bytes(), graph.v1());
    graph.refused(json!([hs256]), RejectClass::Unauthenticated, "graph_token_algorithm").await;
    let es256 = graph.signer.token_with_header(json!({"alg": "ES256", "kid": graph.signer.kid()}), graph.v1());
    graph.refused(json!([es256]), RejectClass::Unauthenticated, "graph_token_algorithm").await;
    let no_kid = graph.signer.token_with_header(json!({"alg": "RS256"}), graph.v1());
    graph.refused(json!([no_kid]), RejectClass::Unauthenticated, "graph_unknown_key").await;
    let other_kid = TestOidcSigner::new().graph_token_v1(APP, TENANT, graph.now);
    graph.refused(json!([other_kid]), RejectClass::Unauthenticated, "graph_unknown_key").await;

    // A token whose claims were changed after signing.
    let good = graph.signer.graph_token_v1(APP, TENANT, graph.now);
    let mut parts: Vec<String> = good.split('.').map(str::to_string).collect();
    parts[1] = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        TestOidcSigner::graph_claims_v1(APP, OTHER_TENANT, graph.now).to_string(),
    );
    graph.refused(json!([parts.join(".")]), RejectClass::Unauthenticated, "graph_token_signature").await;
}

#[tokio::test]
async fn one_bad_token_refuses_the_batch() {
    let graph = Graph::new();
    let good = graph.signer.graph_token_v1(APP, TENANT, graph.now);
    let bad = graph.signer.graph_token_v2(OTHER_APP, TENANT, graph.now);
    let e = graph.refused(json!([good, bad]), RejectClass::Unauthenticated, "graph_token_audience").await;
    assert!(e.detail.starts_with("validation token 2 of 2: "), "{e}");
    let e = graph.refused(json!([bad, good]), RejectClass::Unauthenticated, "graph_token_audience").await;
    assert!(e.detail.starts_with("validation token 1 of 2: "), "{e}");
}

#[tokio::test]
async fn lists_out_of_bounds_or_not_of_jwts_are_malformed() {
    let graph = Graph::new();
    let good = graph.signer.graph_token_v1(APP, TENANT, graph.now);
    let too_long = format!("{good}{}", "A".repeat(MAX_TOKEN_BYTES));
    for (case, tokens) in [
        ("not a list", json!(good)),
        ("null", Value::Null),
        ("an object", json!({"token": good})),
        ("empty", json!([])),
        ("too many", json!(vec![good.clone(); MAX_TOKENS + 1])),
        ("a number", json!([good, 7])),
        ("a list", json!([[good]])),
        ("too long", json!([good, too_long])),
        ("two parts", json!(["eyJhbGciOiJSUzI1NiJ9.eyJ9"])),
        ("not base64url", json!(["eyJhbGciOiJSUzI1NiJ9.e+J9.c2ln"])),
        ("empty claims", json!(["eyJhbGciOiJSUzI1NiJ9..c2ln"])),
        ("header not JSON", json!(["bm90IGpzb24.eyJ9.c2ln"])),
    ] {
        let e = graph.check(tokens.clone()).await.expect_err(case);
        assert_eq!((e.class, e.reason), (RejectClass::Malformed, "graph_token_malformed"), "{case}: {e}");
        assert!(!e.detail.contains(&good), "{case}: the detail shows the token: {e}");
    }
    graph.check(json!(vec![good; MAX_TOKENS])).await.unwrap();
}

#[tokio::test]
async fn an_unknown_kid_reloads_the_keys_at_most_once_per_interval() {
    let dir = tempfile::tempdir().unwrap();
    let mut graph = Graph::new();
    let path = graph.signer.write_microsoft_jwks(dir.path()).unwrap();
    graph.keys = MicrosoftKeys::from_setting(path.to_str().unwrap()).unwrap();
    graph.check(json!([graph.signer.graph_token_v1(APP, TENANT, graph.now)])).await.unwrap();

    // Microsoft publishes a new key just after the keys were loaded: within the reload
    // interval, a token signed with it names an unknown key.
    let rolled = TestOidcSigner::new();
    std::fs::write(&path, TestOidcSigner::microsoft_jwks_of(&[&graph.signer, &rolled])).unwrap();
    let e = graph.unauthenticated(rolled.graph_token_v2(APP, TENANT, graph.now), "graph_unknown_key").await;
    assert!(e.detail.contains(rolled.kid()), "{e}");
    for _ in 0..5 {
        graph.unauthenticated(TestOidcSigner::new().graph_token_v2(APP, TENANT, graph.now), "graph_unknown_key").await;
    }
    graph.check(json!([graph.signer.graph_token_v1(APP, TENANT, graph.now)])).await.unwrap();
}

#[tokio::test]
async fn without_keys_the_batch_is_unavailable() {
    let mut graph = Graph::new();
    let token = graph.signer.graph_token_v1(APP, TENANT, graph.now);
    graph.keys = MicrosoftKeys::offline(Some(graph._dir.path().join("missing.json")));
    let e = graph.refused(json!([token]), RejectClass::Unavailable, "graph_keys_unavailable").await;
    assert!(e.detail.contains("cannot be read"), "{e}");
    graph.keys = MicrosoftKeys::offline(None);
    graph.refused(json!([token]), RejectClass::Unavailable, "graph_keys_unavailable_offline").await;
}
