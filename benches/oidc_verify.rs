//! Token benchmark: [`verify_push_token`] with Google's keys already in memory (loaded
//! once, before measuring), so it measures what every push pays: the `Authorization`
//! header and JOSE header checks, one RSA-2048 PKCS#1 v1.5 SHA-256 verification, and the
//! claim checks. Rows: a token from the test signer, the real Google RS256 token of the
//! fixtures (with the clock fixed inside its validity), and a forged `alg: none` token,
//! which is refused before any key or RSA work. A last row checks a Graph batch's
//! `validationTokens` holding one v2 token ([`verify_validation_tokens`], Microsoft's
//! keys in memory): the cost per token of a rich notification batch.
//!
//! Each row runs `BENCH_SECONDS` (default 5) after a short warm-up, one call at a time
//! on one thread. Run: `cargo bench --bench oidc_verify`.

mod common;

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderValue};
use pushgate::sources::gcp_pubsub::keys::GoogleKeys;
use pushgate::sources::gcp_pubsub::oidc::{verify_push_token, Expected};
use pushgate::sources::gcp_pubsub::test_signer::TestOidcSigner;
use pushgate::sources::ms_graph::keys::MicrosoftKeys;
use pushgate::sources::ms_graph::tokens::{verify_validation_tokens, Expected as GraphExpected};

const AUDIENCE: &str = "https://pushgate.example/push/gcp-pubsub/6c1f3f0e-8f4c-4d3a-9a43-2f1c6f0b7d11";
const EMAIL: &str = "push@acme-prod.iam.gserviceaccount.com";
const GRAPH_APP: &str = "8a4f2c1e-6b3d-4e5f-9a7b-1c2d3e4f5a6b";
const GRAPH_TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gcp-pubsub/oidc").join(name)
}

fn bearer(token: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {token}")).expect("a token is a header value"));
    headers
}

/// One push to check: its headers, the clock, what it must say, and the keys.
struct Push<'a> {
    headers: HeaderMap,
    now: DateTime<Utc>,
    expected: Expected<'a>,
    keys: &'a GoogleKeys,
}

impl Push<'_> {
    async fn verify(&self) -> bool {
        verify_push_token(&self.headers, self.now, &self.expected, self.keys).await.is_ok()
    }
}

fn main() {
    let duration = common::duration(5);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");

    let dir = tempfile::tempdir().expect("a temporary directory");
    let signer = TestOidcSigner::new();
    let signer_keys = GoogleKeys::from_setting(signer.write_jwks(dir.path()).expect("JWKS written").to_str().expect("a UTF-8 path"))
        .expect("a file setting");
    let now = Utc::now();
    let signed = Push {
        headers: bearer(&signer.push_token(AUDIENCE, EMAIL, now)),
        now,
        expected: Expected { audience: AUDIENCE, email: EMAIL },
        keys: &signer_keys,
    };
    let forged = Push {
        headers: bearer(&signer.unsigned(TestOidcSigner::push_claims(AUDIENCE, EMAIL, now))),
        now,
        expected: signed.expected,
        keys: &signer_keys,
    };
    let real_keys = GoogleKeys::offline(Some(fixture("google-auth-library-java_federated_keys.json")));
    let real_token = std::fs::read_to_string(fixture("google-auth-library-java_FEDERATED_SIGNON_RS256_TOKEN.jwt")).expect("fixture token");
    let real = Push {
        headers: bearer(real_token.trim()),
        now: DateTime::parse_from_rfc3339("2020-04-23T07:30:00Z").expect("a time").with_timezone(&Utc),
        expected: Expected { audience: "https://example.com/path", email: "integration-tests@chingor-test.iam.gserviceaccount.com" },
        keys: &real_keys,
    };

    let microsoft_keys = MicrosoftKeys::offline(Some(signer.write_microsoft_jwks(dir.path()).expect("JWKS written")));
    let (app_ids, tenant_ids) = (vec![GRAPH_APP.to_string()], vec![GRAPH_TENANT.to_string()]);
    let graph_expected = GraphExpected { app_ids: &app_ids, tenant_ids: &tenant_ids };
    let graph_tokens = serde_json::json!([signer.graph_token_v2(GRAPH_APP, GRAPH_TENANT, now)]);
    let graph = || async { verify_validation_tokens(&graph_tokens, &microsoft_keys, &graph_expected, now).await.is_ok() };

    let rows = runtime.block_on(async {
        assert!(signed.verify().await && real.verify().await, "both tokens verify (and load the keys)");
        assert!(graph().await, "the Graph token verifies (and loads Microsoft's keys)");
        assert!(!forged.verify().await);
        let mut rows = Vec::new();
        for (name, push, verifies) in [
            ("verify_push_token, test signer (RSA-2048)", &signed, true),
            ("verify_push_token, real Google RS256 token", &real, true),
            ("verify_push_token, forged alg none (refused)", &forged, false),
        ] {
            rows.push(common::measure(name, duration, || async { assert_eq!(push.verify().await, verifies) }).await);
        }
        rows.push(common::measure("verify_validation_tokens, one Graph v2 token", duration, || async { assert!(graph().await) }).await);
        rows
    });

    common::print(&rows);
}
