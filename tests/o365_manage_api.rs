//! pushgate's Management Activity API client against the fake API (`common/fake_o365.rs`,
//! real HTTP on 127.0.0.1, the reference's shapes): starting, listing and stopping a
//! content subscription (Microsoft validates the webhook first), fetching a content blob
//! (the reference's sample records), throttling with `Retry-After`, and a `contentUri`
//! elsewhere that is never requested.

// Each test binary uses a part of the fake.
#[allow(dead_code)]
#[path = "common/fake_o365.rs"]
mod fake_o365;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fake_o365::FakeO365;
use pushgate::config::Secret;
use pushgate::microsoft::identity::Credentials;
use pushgate::microsoft::o365::{ManageApi, ManageError, O365Settings};
use pushgate::model::UpkeepFailure;
use serde_json::Value;

const TENANT: &str = "41463f53-8812-40f4-890f-865bf6e35190";
const SECRET: &str = "o365-client-s3cret";

/// A local HTTP listener that answers 200 to everything and counts what it got.
async fn listener() -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let app = axum::Router::new().fallback(move || {
        counted.fetch_add(1, Ordering::SeqCst);
        async { "ok" }
    });
    let socket = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", socket.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(socket, app).await.unwrap() });
    (base, hits)
}

fn settings(fake: &FakeO365, secret: &str) -> O365Settings {
    O365Settings {
        credentials: Credentials { tenant_id: TENANT.into(), client_id: "app".into(), client_secret: Secret::new(secret) },
        content_types: vec!["Audit.AzureActiveDirectory".into()],
        endpoint: fake.endpoint(),
        auth_id: Secret::new("auth-id-1"),
    }
}

fn api(fake: &FakeO365) -> ManageApi {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    ManageApi::new(&format!("{}/login", fake.base), &[fake.endpoint()]).unwrap()
}

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/o365/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[tokio::test]
async fn a_subscription_is_started_after_its_webhook_validates_and_listed_and_stopped() {
    let fake = FakeO365::start("app", SECRET).await;
    let (webhook, validations) = listener().await;
    let (api, s) = (api(&fake), settings(&fake, SECRET));
    let started = api.start(&s, "Audit.AzureActiveDirectory", &webhook).await.unwrap();
    assert_eq!((started.status.as_str(), started.webhook.as_ref().unwrap().address.as_str()), ("enabled", webhook.as_str()));
    assert_eq!(validations.load(Ordering::SeqCst), 1, "Microsoft validated the webhook first");
    // Started again with nothing changed: Microsoft's AF20024, a success read from the list.
    let again = api.start(&s, "Audit.AzureActiveDirectory", &webhook).await.unwrap();
    assert_eq!(again, started);
    fake.disable(TENANT, "Audit.AzureActiveDirectory");
    let listed = api.list(&s).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].webhook.as_ref().unwrap().status, "disabled");
    api.stop(&s, "Audit.AzureActiveDirectory").await.unwrap();
    api.stop(&s, "Audit.AzureActiveDirectory").await.expect("one not found counts as stopped");
    assert!(api.list(&s).await.unwrap().is_empty());
    let start = fake.requests().into_iter().find(|r| r.path.ends_with("/subscriptions/start")).unwrap();
    assert!(start.query.contains(&format!("PublisherIdentifier={TENANT}")), "{}", start.query);
}

#[tokio::test]
async fn a_webhook_that_does_not_validate_is_a_failed_validation() {
    let fake = FakeO365::start("app", SECRET).await;
    let (api, s) = (api(&fake), settings(&fake, SECRET));
    // Nothing listens there.
    let e = api.start(&s, "Audit.Exchange", "http://127.0.0.1:9/push/o365-activity/x").await.unwrap_err();
    assert!(matches!(&e, ManageError::Refused { status: 400, code, .. } if code == "AF20021"), "{e}");
    assert_eq!(e.failure(), Some(UpkeepFailure::Validation));
}

#[tokio::test]
async fn a_blob_is_fetched_as_its_records() {
    let fake = FakeO365::start("app", SECRET).await;
    let (api, s) = (api(&fake), settings(&fake, SECRET));
    let records = fixture("activity_api_reference_retrieving_content.json").as_array().unwrap().clone();
    let notification = fake.publish(TENANT, "Audit.AzureActiveDirectory", records.clone());
    let fetched = api.fetch_content(&s, notification["contentUri"].as_str().unwrap()).await.unwrap();
    assert_eq!(fetched, records);
    let get = fake.requests().into_iter().find(|r| r.path.contains("/activity/feed/audit/")).unwrap();
    assert!(get.query.contains(&format!("PublisherIdentifier={TENANT}")));
}

#[tokio::test]
async fn throttling_carries_its_retry_after_and_a_missing_blob_is_gone() {
    let fake = FakeO365::start("app", SECRET).await;
    let (api, s) = (api(&fake), settings(&fake, SECRET));
    let notification = fake.publish(TENANT, "Audit.General", vec![serde_json::json!({"Id": "a", "CreationTime": "2026-12-01T10:00:00"})]);
    let uri = notification["contentUri"].as_str().unwrap();
    fake.throttle(1, 7);
    let e = api.fetch_content(&s, uri).await.unwrap_err();
    assert_eq!((e.retry_after(), e.failure(), e.is_gone()), (Some(Duration::from_secs(7)), None, false), "{e}");
    assert_eq!(api.fetch_content(&s, uri).await.unwrap().len(), 1);
    let missing = uri.rsplit_once('/').unwrap().0.to_owned() + "/no-such-content";
    assert!(api.fetch_content(&s, &missing).await.unwrap_err().is_gone());
}

#[tokio::test]
async fn a_content_uri_elsewhere_is_never_requested() {
    let fake = FakeO365::start("app", SECRET).await;
    let (elsewhere, hits) = listener().await;
    let (api, s) = (api(&fake), settings(&fake, SECRET));
    for forged in [
        format!("{elsewhere}/api/v1.0/{TENANT}/activity/feed/audit/x"),
        format!("{}/api/v1.0/{TENANT}/activity/feed/subscriptions/list", fake.base),
        format!("{}/api/v1.0/another-tenant/activity/feed/audit/x", fake.base),
    ] {
        let e = api.fetch_content(&s, &forged).await.unwrap_err();
        assert!(matches!(e, ManageError::NotAllowed { .. }), "{forged}: {e}");
    }
    assert_eq!(hits.load(Ordering::SeqCst), 0);
    assert_eq!(fake.count("GET", "/subscriptions/list"), 0);
    assert_eq!(fake.requests().len(), 0, "not even a token was asked for");
}

#[tokio::test]
async fn refused_credentials_say_so_without_the_secret() {
    let fake = FakeO365::start("app", SECRET).await;
    let (api, s) = (api(&fake), settings(&fake, "a-wrong-s3cret"));
    let e = api.list(&s).await.unwrap_err();
    assert_eq!(e.failure(), Some(UpkeepFailure::Credentials), "{e}");
    assert!(!e.to_string().contains("a-wrong-s3cret"), "{e}");
    assert!(e.to_string().contains("invalid_client"), "{e}");
}
