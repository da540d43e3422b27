use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, TimeDelta, Utc};
use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderValue};
use serde_json::{json, Value};

use super::*;
use crate::sources::gcp_pubsub::keys::GoogleKeys;
use crate::sources::gcp_pubsub::test_signer::TestOidcSigner;
use crate::sources::RejectClass;

const AUDIENCE: &str = "https://pushgate.example/push/gcp-pubsub/6c1f3f0e-8f4c-4d3a-9a43-2f1c6f0b7d11";
const EMAIL: &str = "push@acme-prod.iam.gserviceaccount.com";

const REAL_AUDIENCE: &str = "https://example.com/path";
const REAL_EMAIL: &str = "integration-tests@chingor-test.iam.gserviceaccount.com";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gcp-pubsub/oidc").join(name)
}

fn vector(name: &str) -> String {
    let path = fixture(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).trim().to_string()
}

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
}

fn now() -> DateTime<Utc> {
    at("2026-03-06T20:00:00Z")
}

fn bearer(token: &str) -> HeaderMap {
    authorization(&format!("Bearer {token}"))
}

fn authorization(value: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
    headers
}

fn real_keys() -> GoogleKeys {
    GoogleKeys::offline(Some(fixture("google-auth-library-java_federated_keys.json")))
}

/// A signer and the keys that publish it.
struct Google {
    signer: TestOidcSigner,
    keys: GoogleKeys,
    _dir: tempfile::TempDir,
}

fn google() -> Google {
    let dir = tempfile::tempdir().unwrap();
    let signer = TestOidcSigner::new();
    let keys = GoogleKeys::offline(Some(signer.write_jwks(dir.path()).unwrap()));
    Google { signer, keys, _dir: dir }
}

async fn check(headers: &HeaderMap, at: DateTime<Utc>, audience: &str, email: &str, keys: &GoogleKeys) -> Result<Claims, Rejected> {
    verify_push_token(headers, at, &Expected { audience, email }, keys).await
}

fn assert_refused(result: Result<Claims, Rejected>, class: RejectClass, reason: &str, case: &str) -> Rejected {
    let e = result.expect_err(case);
    assert_eq!((e.class, e.reason), (class, reason), "{case}: {e}");
    e
}

/// Google's push claims with some replaced (`null` removes one).
fn claims_with(changes: Value) -> Value {
    let mut claims = TestOidcSigner::push_claims(AUDIENCE, EMAIL, now());
    for (name, value) in changes.as_object().unwrap() {
        match value {
            Value::Null => claims.as_object_mut().unwrap().remove(name),
            value => claims.as_object_mut().unwrap().insert(name.clone(), value.clone()),
        };
    }
    claims
}

#[tokio::test]
async fn a_real_google_token_verifies_within_its_validity() {
    let token = vector("google-auth-library-java_FEDERATED_SIGNON_RS256_TOKEN.jwt");
    let keys = real_keys();
    let claims = check(&bearer(&token), at("2020-04-23T07:30:00Z"), REAL_AUDIENCE, REAL_EMAIL, &keys).await.unwrap();
    assert_eq!(
        claims,
        Claims {
            issuer: "https://accounts.google.com".into(),
            audience: REAL_AUDIENCE.into(),
            email: REAL_EMAIL.into(),
            subject: Some("104029292853099978293".into()),
            issued_at: at("2020-04-23T07:18:08Z"),
            expires_at: at("2020-04-23T08:18:08Z"),
        }
    );
    // The service account's email compares without regard to ASCII case.
    let upper = REAL_EMAIL.to_ascii_uppercase();
    assert!(check(&bearer(&token), at("2020-04-23T07:30:00Z"), REAL_AUDIENCE, &upper, &keys).await.is_ok());
    // Leeway at both ends of the validity.
    assert!(check(&bearer(&token), at("2020-04-23T08:19:07Z"), REAL_AUDIENCE, REAL_EMAIL, &keys).await.is_ok());
    assert!(check(&bearer(&token), at("2020-04-23T07:17:08Z"), REAL_AUDIENCE, REAL_EMAIL, &keys).await.is_ok());
}

#[tokio::test]
async fn a_real_google_token_is_refused_out_of_its_validity_or_for_another_endpoint() {
    let token = vector("google-auth-library-java_FEDERATED_SIGNON_RS256_TOKEN.jwt");
    let headers = bearer(&token);
    let keys = real_keys();
    let within = at("2020-04-23T07:30:00Z");

    let e = check(&headers, Utc::now(), REAL_AUDIENCE, REAL_EMAIL, &keys).await;
    let e = assert_refused(e, RejectClass::Unauthenticated, "gcp_token_expired", "now");
    assert!(e.detail.contains("token expired at 2020-04-23T08:18:08Z"), "{e}");
    let e = check(&headers, at("2020-04-23T08:19:08Z"), REAL_AUDIENCE, REAL_EMAIL, &keys).await;
    assert_refused(e, RejectClass::Unauthenticated, "gcp_token_expired", "past the leeway");
    let e = check(&headers, at("2020-04-23T07:17:07Z"), REAL_AUDIENCE, REAL_EMAIL, &keys).await;
    let e = assert_refused(e, RejectClass::Unauthenticated, "gcp_token_not_yet_valid", "before iat");
    assert!(e.detail.contains("61 s after the check at 2020-04-23T07:17:07Z"), "{e}");

    let e = check(&headers, within, AUDIENCE, REAL_EMAIL, &keys).await;
    let e = assert_refused(e, RejectClass::Unauthenticated, "gcp_token_audience", "audience");
    assert_eq!(e.detail, format!("token audience is \"https://example.com/path\", expected \"{AUDIENCE}\""));
    let e = check(&headers, within, "https://example.com/path/", REAL_EMAIL, &keys).await;
    assert_refused(e, RejectClass::Unauthenticated, "gcp_token_audience", "audience with a trailing slash");

    let e = check(&headers, within, REAL_AUDIENCE, EMAIL, &keys).await;
    let e = assert_refused(e, RejectClass::Unauthenticated, "gcp_token_email", "email");
    assert!(e.detail.contains(REAL_EMAIL) && e.detail.contains(EMAIL), "{e}");

    // One changed character of the signature.
    let (signed, signature) = token.rsplit_once('.').unwrap();
    let flipped = if signature.starts_with('A') { "B" } else { "A" };
    let tampered = format!("{signed}.{flipped}{}", &signature[1..]);
    let e = check(&bearer(&tampered), within, REAL_AUDIENCE, REAL_EMAIL, &keys).await;
    let e = assert_refused(e, RejectClass::Unauthenticated, "gcp_token_signature", "tampered signature");
    assert!(e.detail.contains("f9d97b4cae90bcd76aeb20026f6b770cac221783"), "{e}");
}

#[tokio::test]
async fn other_real_google_tokens_are_refused() {
    let keys = real_keys();
    let es256 = vector("google-auth-library-java_ES256_TOKEN.jwt");
    let e = check(
        &bearer(&es256),
        at("2020-03-12T21:15:00Z"),
        "/projects/652562776798/apps/cloud-samples-tests-php-iap",
        "chingor@google.com",
        &keys,
    )
    .await;
    let e = assert_refused(e, RejectClass::Unauthenticated, "gcp_token_algorithm", "ES256");
    assert_eq!(e.detail, "token algorithm is \"ES256\"; Google signs push tokens with RS256 only");

    let service_account = vector("google-auth-library-java_SERVICE_ACCOUNT_RS256_TOKEN.jwt");
    let e = check(
        &bearer(&service_account),
        at("2022-08-19T03:00:00Z"),
        "https://cloudtasks.googleapis.com/v2/projects/gcloud-devel/locations",
        "stim-test@stellar-day-254222.iam.gserviceaccount.com",
        &keys,
    )
    .await;
    let e = assert_refused(e, RejectClass::Unauthenticated, "gcp_unknown_key", "key not published");
    assert!(e.detail.contains("1727b6b49402b9cf95be4e8fd38aa7e7c11644b1"), "{e}");
}

#[tokio::test]
async fn a_push_token_from_the_test_signer_verifies() {
    let google = google();
    let token = google.signer.push_token(AUDIENCE, EMAIL, now());
    let claims = check(&bearer(&token), now(), AUDIENCE, EMAIL, &google.keys).await.unwrap();
    assert_eq!((claims.audience.as_str(), claims.email.as_str()), (AUDIENCE, EMAIL));
    assert_eq!((claims.issued_at, claims.expires_at), (now(), now() + TimeDelta::hours(1)));

    let legacy_issuer = google.signer.token(claims_with(json!({"iss": "accounts.google.com"})));
    assert!(check(&bearer(&legacy_issuer), now(), AUDIENCE, EMAIL, &google.keys).await.is_ok());
    let no_subject = google.signer.token(claims_with(json!({"sub": null})));
    let claims = check(&bearer(&no_subject), now(), AUDIENCE, EMAIL, &google.keys).await.unwrap();
    assert_eq!(claims.subject, None);
}

#[tokio::test]
async fn wrong_claims_are_refused_each_with_its_reason() {
    let google = google();
    let signer = &google.signer;
    let t = now().timestamp();
    for (case, claims, reason) in [
        ("another issuer", claims_with(json!({"iss": "https://cloud.google.com/iap"})), "gcp_token_issuer"),
        ("issuer without scheme variant", claims_with(json!({"iss": "http://accounts.google.com"})), "gcp_token_issuer"),
        ("no issuer", claims_with(json!({"iss": null})), "gcp_token_issuer"),
        ("another audience", claims_with(json!({"aud": "https://pushgate.example/push/gcp-pubsub/other"})), "gcp_token_audience"),
        ("audience list", claims_with(json!({"aud": [AUDIENCE]})), "gcp_token_audience"),
        ("no audience", claims_with(json!({"aud": null})), "gcp_token_audience"),
        ("another email", claims_with(json!({"email": "attacker@evil-project.iam.gserviceaccount.com"})), "gcp_token_email"),
        ("email as a list", claims_with(json!({"email": [EMAIL]})), "gcp_token_email"),
        ("no email", claims_with(json!({"email": null})), "gcp_token_email"),
        ("email_verified false", claims_with(json!({"email_verified": false})), "gcp_token_email_unverified"),
        ("email_verified \"true\"", claims_with(json!({"email_verified": "true"})), "gcp_token_email_unverified"),
        ("no email_verified", claims_with(json!({"email_verified": null})), "gcp_token_email_unverified"),
        ("expired", claims_with(json!({"iat": t - 3700, "exp": t - 100})), "gcp_token_expired"),
        ("expired just past the leeway", claims_with(json!({"iat": t - 3660, "exp": t - 60})), "gcp_token_expired"),
        ("no exp", claims_with(json!({"exp": null})), "gcp_token_expired"),
        ("exp as text", claims_with(json!({"exp": (t + 3600).to_string()})), "gcp_token_expired"),
        ("exp with a fraction", claims_with(json!({"exp": t as f64 + 0.5})), "gcp_token_expired"),
        ("issued in the future", claims_with(json!({"iat": t + 61, "exp": t + 3661})), "gcp_token_not_yet_valid"),
        ("no iat", claims_with(json!({"iat": null})), "gcp_token_not_yet_valid"),
        ("not before the future", claims_with(json!({"nbf": t + 120})), "gcp_token_not_yet_valid"),
        ("nbf as text", claims_with(json!({"nbf": "soon"})), "gcp_token_not_yet_valid"),
    ] {
        let e = check(&bearer(&signer.token(claims)), now(), AUDIENCE, EMAIL, &google.keys).await;
        assert_refused(e, RejectClass::Unauthenticated, reason, case);
    }
    for (case, claims) in [
        ("expired within the leeway", claims_with(json!({"iat": t - 3659, "exp": t - 59}))),
        ("issued within the leeway", claims_with(json!({"iat": t + 60, "exp": t + 3660}))),
        ("nbf within the leeway", claims_with(json!({"nbf": t + 60}))),
        ("extra claims", claims_with(json!({"google": {"compute_engine": {}}, "hd": "acme.example"}))),
    ] {
        let result = check(&bearer(&signer.token(claims)), now(), AUDIENCE, EMAIL, &google.keys).await;
        assert!(result.is_ok(), "{case}: {result:?}");
    }
}

#[tokio::test]
async fn forged_tokens_are_refused_each_with_its_reason() {
    let google = google();
    let signer = &google.signer;
    let claims = TestOidcSigner::push_claims(AUDIENCE, EMAIL, now());
    let kid = signer.kid();
    let impostor = TestOidcSigner::with_kid(kid);
    let valid = signer.push_token(AUDIENCE, EMAIL, now());
    let (header, rest) = valid.split_once('.').unwrap();
    let (_, signature) = rest.split_once('.').unwrap();
    let other_claims = URL_SAFE_NO_PAD.encode(claims_with(json!({"email": "attacker@evil.iam.gserviceaccount.com"})).to_string());

    for (case, token, reason) in [
        ("alg none", signer.unsigned(claims.clone()), "gcp_token_algorithm"),
        ("alg none, RS256 signature kept", format!("{}{}", signer.unsigned(claims.clone()), signature), "gcp_token_algorithm"),
        (
            "HS256 keyed with the public key PEM",
            signer.hs256_with(signer.public_key_pem().as_bytes(), claims.clone()),
            "gcp_token_algorithm",
        ),
        ("HS256 keyed with the public key DER", signer.hs256_with(&signer.public_key_der(), claims.clone()), "gcp_token_algorithm"),
        ("alg rs256 lower case", signer.token_with_header(json!({"alg": "rs256", "kid": kid}), claims.clone()), "gcp_token_algorithm"),
        ("alg RS512", signer.token_with_header(json!({"alg": "RS512", "kid": kid}), claims.clone()), "gcp_token_algorithm"),
        ("alg PS256", signer.token_with_header(json!({"alg": "PS256", "kid": kid}), claims.clone()), "gcp_token_algorithm"),
        ("alg ES256", signer.token_with_header(json!({"alg": "ES256", "kid": kid}), claims.clone()), "gcp_token_algorithm"),
        ("no alg", signer.token_with_header(json!({"kid": kid}), claims.clone()), "gcp_token_algorithm"),
        ("alg not a string", signer.token_with_header(json!({"alg": ["RS256"], "kid": kid}), claims.clone()), "gcp_token_algorithm"),
        ("no kid", signer.token_with_header(json!({"alg": "RS256"}), claims.clone()), "gcp_unknown_key"),
        ("empty kid", signer.token_with_header(json!({"alg": "RS256", "kid": ""}), claims.clone()), "gcp_unknown_key"),
        ("kid not a string", signer.token_with_header(json!({"alg": "RS256", "kid": 7}), claims.clone()), "gcp_unknown_key"),
        ("very long kid", signer.token_with_header(json!({"alg": "RS256", "kid": "k".repeat(300)}), claims.clone()), "gcp_unknown_key"),
        ("unknown kid", signer.token_with_header(json!({"alg": "RS256", "kid": "0123456789abcdef"}), claims.clone()), "gcp_unknown_key"),
        ("another key under Google's kid", impostor.push_token(AUDIENCE, EMAIL, now()), "gcp_token_signature"),
        (
            "another key, embedded in the header",
            impostor.token_with_header(json!({"alg": "RS256", "kid": kid, "jwk": impostor.jwk()}), claims.clone()),
            "gcp_token_signature",
        ),
        ("claims swapped under a valid signature", format!("{header}.{other_claims}.{signature}"), "gcp_token_signature"),
        ("no signature", format!("{header}.{}.", rest.split_once('.').unwrap().0), "gcp_token_signature"),
    ] {
        let e = check(&bearer(&token), now(), AUDIENCE, EMAIL, &google.keys).await;
        let e = assert_refused(e, RejectClass::Unauthenticated, reason, case);
        assert!(!e.detail.contains(&token) && !e.detail.contains(signature), "{case}: the detail shows the token: {e}");
    }
}

#[tokio::test]
async fn a_missing_or_malformed_authorization_is_refused() {
    let google = google();
    let valid = google.signer.push_token(AUDIENCE, EMAIL, now());
    let e = check(&HeaderMap::new(), now(), AUDIENCE, EMAIL, &google.keys).await;
    let e = assert_refused(e, RejectClass::Unauthenticated, "gcp_token_missing", "no header");
    assert!(e.detail.contains("authentication"), "{e}");

    let mut two = bearer(&valid);
    two.append(AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {valid}")).unwrap());
    let header_of = |header: Value| URL_SAFE_NO_PAD.encode(header.to_string());
    let payload = valid.split('.').nth(1).unwrap();
    let cases: Vec<(&str, HeaderMap)> = vec![
        ("two Authorization headers", two),
        ("lower-case scheme", authorization(&format!("bearer {valid}"))),
        ("upper-case scheme", authorization(&format!("BEARER {valid}"))),
        ("two spaces", authorization(&format!("Bearer  {valid}"))),
        ("a tab", authorization(&format!("Bearer\t{valid}"))),
        ("trailing space", authorization(&format!("Bearer {valid} "))),
        ("basic credentials", authorization("Basic dXNlcjpwYXNz")),
        ("scheme alone", authorization("Bearer")),
        ("empty token", authorization("Bearer ")),
        ("raw token without scheme", authorization(&valid)),
        ("garbage", authorization("Bearer not-a-token")),
        ("two parts", authorization(&format!("Bearer {}", valid.rsplit_once('.').unwrap().0))),
        ("four parts", authorization(&format!("Bearer {valid}.e30"))),
        ("standard base64", authorization(&format!("Bearer {}", valid.replace('-', "+").replace('_', "/") + "+/="))),
        ("empty header part", authorization(&format!("Bearer .{payload}.sig"))),
        ("empty claims part", authorization(&format!("Bearer {}..sig", header_of(json!({"alg": "RS256"}))))),
        ("header not JSON", authorization(&format!("Bearer {}.{payload}.sig", URL_SAFE_NO_PAD.encode("alg=RS256")))),
        ("header a JSON list", authorization(&format!("Bearer {}.{payload}.sig", header_of(json!(["RS256"]))))),
        ("oversized", authorization(&format!("Bearer {valid}{}", "A".repeat(MAX_TOKEN_BYTES)))),
    ];
    for (case, headers) in cases {
        let e = check(&headers, now(), AUDIENCE, EMAIL, &google.keys).await;
        let e = assert_refused(e, RejectClass::Malformed, "gcp_token_malformed", case);
        assert!(!e.detail.contains(&valid), "{case}: the detail shows the token: {e}");
    }

    let mut not_ascii = HeaderMap::new();
    not_ascii.insert(AUTHORIZATION, HeaderValue::from_bytes(b"Bearer \xff\xfe").unwrap());
    let e = check(&not_ascii, now(), AUDIENCE, EMAIL, &google.keys).await;
    assert_refused(e, RejectClass::Malformed, "gcp_token_malformed", "not ASCII");
}

#[tokio::test]
async fn claims_that_are_not_json_are_malformed_even_when_signed() {
    let google = google();
    let kid = google.signer.kid();
    // Signed by Google's key, so only the claims' shape is wrong.
    let header = URL_SAFE_NO_PAD.encode(json!({"alg": "RS256", "kid": kid}).to_string());
    for claims in [json!("a string"), json!([1, 2])] {
        let token = google.signer.token_with_header(json!({"alg": "RS256", "kid": kid}), claims.clone());
        assert!(token.starts_with(&header));
        let e = check(&bearer(&token), now(), AUDIENCE, EMAIL, &google.keys).await;
        assert_refused(e, RejectClass::Malformed, "gcp_token_malformed", &claims.to_string());
    }
}

#[tokio::test]
async fn details_quote_token_values_escaped_and_bounded() {
    let google = google();
    let long = format!("https://evil.example/{}\n", "x".repeat(500));
    let token = google.signer.token(claims_with(json!({"aud": long})));
    let e = check(&bearer(&token), now(), AUDIENCE, EMAIL, &google.keys).await;
    let e = assert_refused(e, RejectClass::Unauthenticated, "gcp_token_audience", "long audience");
    assert!(e.detail.len() < 400 && !e.detail.contains('\n') && e.detail.contains("..."), "{e}");
}
