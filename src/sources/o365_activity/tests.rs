use super::*;
use crate::sources::{ConnectionConfig, Sender};
use http::HeaderMap;
use serde_json::json;

fn headers(auth: Option<&str>) -> HeaderMap {
    let mut h = HeaderMap::new();
    if let Some(a) = auth {
        h.insert("Webhook-AuthID", a.parse().unwrap());
    }
    h
}

async fn run(auth: Option<&str>, body: &Value) -> Result<Intake, Rejected> {
    run_with(json!({"auth_id": "o365-secret"}), auth, body).await
}

async fn run_with(config: Value, auth: Option<&str>, body: &Value) -> Result<Intake, Rejected> {
    let config = ConnectionConfig::load(&O365ActivitySender, config);
    let (h, body) = (headers(auth), serde_json::to_vec(body).unwrap());
    let request = RawRequest { headers: &h, query: None, body: &body, push_url: "http://x/push/o365-activity/1", now: Utc::now() };
    O365ActivitySender.receive(request, &config).await?
}

/// The example of Microsoft's Management Activity API reference.
fn notification(id: &str) -> Value {
    json!({
        "tenantId": "{GUID}", "clientId": "{GUID}", "contentType": "Audit.SharePoint",
        "contentId": id,
        "contentUri": format!("https://manage.office.com/api/v1.0/{{GUID}}/activity/feed/audit/{id}"),
        "contentCreated": "2015-05-23T17:35:00.000Z", "contentExpiration": "2015-05-30T17:35:00.000Z"
    })
}

#[tokio::test]
async fn the_auth_id_is_required_and_compared() {
    let body = json!([notification("a")]);
    assert_eq!(run(None, &body).await.unwrap_err().reason, "o365_auth_id_missing");
    assert_eq!(run(Some("o365-secreT"), &body).await.unwrap_err().reason, "o365_auth_id_invalid");
    assert_eq!(run(Some("o365-secret-and-more"), &body).await.unwrap_err().reason, "o365_auth_id_invalid");
    assert!(run(Some("o365-secret"), &body).await.is_ok());
}

#[tokio::test]
async fn a_validation_is_a_handshake() {
    let intake = run(Some("o365-secret"), &json!({"validationCode": "b0a4e2e4-1f67-4b1d-a3a6-a3a1d1b2c3d4"})).await.unwrap();
    assert_eq!(intake, Intake::Handshake(Handshake::O365Validation));
    // Without the auth id, even a validation is refused.
    assert_eq!(run(None, &json!({"validationCode": "x"})).await.unwrap_err().reason, "o365_auth_id_missing");
}

#[tokio::test]
async fn content_notifications_are_events_keyed_by_content_id() {
    let id = "492638008028$492638008028$f28ab78ad40140608012736e373933ebspo2015043022$4a81a7c326fc4aed89c62e6039ab833b$04";
    let Intake::Events { events, heartbeat: None, stream: None } =
        run(Some("o365-secret"), &json!([notification(id), notification("second")])).await.unwrap()
    else {
        panic!("expected events")
    };
    assert_eq!(events.len(), 2);
    assert_eq!((events[0].dedupe_key.as_str(), events[0].kind), (id, EventKind::Telemetry));
    assert_eq!(events[0].occurred_at.unwrap().to_rfc3339(), "2015-05-23T17:35:00+00:00");
    assert_eq!(events[0].payload, notification(id));
    // One notification not in a list is read the same way.
    let Intake::Events { events, .. } = run(Some("o365-secret"), &notification("solo")).await.unwrap() else { panic!() };
    assert_eq!(events[0].dedupe_key, "solo");
}

#[tokio::test]
async fn malformed_content_is_kept_whole_as_undecodable() {
    let mut missing = notification("b");
    missing.as_object_mut().unwrap().remove("contentId");
    for body in [json!([notification("a"), missing]), json!([]), json!("text"), json!([1])] {
        let e = run(Some("o365-secret"), &body).await.unwrap_err();
        assert_eq!((e.class, e.reason), (super::super::RejectClass::Undecodable, "o365_notification_malformed"), "{body}");
    }
    let e = O365ActivitySender
        .normalize(
            Verified::new(RawRequest { headers: &HeaderMap::new(), query: None, body: b"{", push_url: "u", now: Utc::now() }, ()),
            &Settings { auth_id: String::new(), fetches: false },
        )
        .unwrap_err();
    assert_eq!(e.reason, "invalid_json");
}

#[tokio::test]
async fn with_credentials_a_notification_is_a_lifecycle_event_and_its_blob_is_queued() {
    let config = json!({"auth_id": "o365-secret", "subscription": {"tenant_id": "t", "client_id": "c", "client_secret": "s"}});
    let mut undated = notification("undated");
    undated.as_object_mut().unwrap().remove("contentExpiration");
    let Intake::Content { events, fetches } =
        run_with(config, Some("o365-secret"), &json!([notification("a"), undated.clone()])).await.unwrap()
    else {
        panic!("expected content to fetch")
    };
    assert_eq!(
        events.iter().map(|e| (e.dedupe_key.as_str(), e.kind)).collect::<Vec<_>>(),
        [("a", EventKind::Lifecycle), ("undated", EventKind::Lifecycle)]
    );
    assert_eq!((events[1].payload.clone(), events[1].occurred_at), (undated, fetches[1].content_created));
    let a = &fetches[0];
    assert_eq!((a.content_id.as_str(), a.content_type.as_str(), a.event_key.as_str()), ("a", "Audit.SharePoint", "a"));
    assert_eq!(a.content_uri, "https://manage.office.com/api/v1.0/{GUID}/activity/feed/audit/a");
    assert_eq!(a.expires_at.to_rfc3339(), "2015-05-30T17:35:00+00:00", "contentExpiration");
    assert_eq!(fetches[1].expires_at.to_rfc3339(), "2015-05-30T17:35:00+00:00", "7 days after contentCreated without one");
}
