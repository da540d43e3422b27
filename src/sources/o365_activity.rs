//! Office 365 Management Activity API webhooks (`POST /push/o365-activity/{id}`).
//!
//! A subscription started with a webhook (`/subscriptions/start` with `webhook.authId`)
//! sends every request with the header `Webhook-AuthID` set to that `authId`, the
//! connection's secret `auth_id`, compared in constant time before the body is read. The
//! first request is a validation, `{"validationCode": "..."}`, answered 200. After it,
//! each request lists content blobs that became available:
//! `[{"tenantId", "clientId", "contentType", "contentId", "contentUri", "contentCreated",
//! "contentExpiration"}]`. Each is stored as one `telemetry` event, deduplicated on its
//! `contentId`, at its `contentCreated` time. pushgate never fetches `contentUri`: the
//! notification is what is stored (a consumer with API access fetches the blob), so a
//! forged URI can never make pushgate call anyone.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{ConnectionConfig, Handshake, Intake, RawRequest, Rejected, Sender, Verified};
use crate::model::{EventKind, NewEvent};
use crate::verify::constant_time_eq;

/// The header Microsoft sends the subscription's `authId` in.
pub const AUTH_HEADER: &str = "webhook-authid";

/// Most content notifications read from one request.
pub const MAX_NOTIFICATIONS: usize = 1000;

/// The fields a content notification must have.
const REQUIRED: [&str; 4] = ["contentType", "contentId", "contentUri", "contentCreated"];

pub struct O365ActivitySender;

/// The config of an `o365_activity` connection, as the source catalog describes it.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The `authId` the subscription was started with: every notification carries it as
    /// `Webhook-AuthID`.
    #[schemars(length(min = 1))]
    pub auth_id: String,
}

#[async_trait::async_trait]
impl Sender for O365ActivitySender {
    async fn verify<'a>(&self, request: RawRequest<'a>, config: &ConnectionConfig) -> Result<Verified<'a>, Rejected> {
        let expected = config
            .get("auth_id")
            .and_then(Value::as_str)
            .ok_or_else(|| Rejected::unauthenticated("invalid_connection_config", "the connection has no auth_id"))?;
        let given = request
            .headers
            .get(AUTH_HEADER)
            .ok_or_else(|| Rejected::unauthenticated("o365_auth_id_missing", "no Webhook-AuthID header"))?;
        if !constant_time_eq(given.as_bytes(), expected.as_bytes()) {
            return Err(Rejected::unauthenticated(
                "o365_auth_id_invalid",
                "the Webhook-AuthID header does not match the connection's auth_id",
            ));
        }
        Ok(Verified::new(request, None))
    }

    fn normalize(&self, verified: &Verified<'_>, _config: &ConnectionConfig) -> Result<Intake, Rejected> {
        let body: Value = serde_json::from_slice(verified.request().body)
            .map_err(|e| Rejected::undecodable("invalid_json", format!("body is not JSON: {e}")))?;
        if body.get("validationCode").is_some_and(Value::is_string) {
            return Ok(Intake::Handshake(Handshake::O365Validation));
        }
        let items = match body {
            Value::Array(items) => items,
            single @ Value::Object(_) => vec![single],
            other => {
                return Err(Rejected::undecodable(
                    "o365_notification_malformed",
                    format!("expected a list of content notifications, got {}", super::json_kind(&other)),
                ))
            }
        };
        if items.is_empty() || items.len() > MAX_NOTIFICATIONS {
            return Err(Rejected::undecodable(
                "o365_notification_malformed",
                format!("expected 1 to {MAX_NOTIFICATIONS} content notifications, got {}", items.len()),
            ));
        }
        // Every notification is checked before any is kept: a request is stored or kept whole.
        let events = items.into_iter().enumerate().map(|(i, item)| content_event(i, item)).collect::<Result<_, _>>()?;
        Ok(Intake::events(events))
    }
}

/// One content notification as an event.
fn content_event(index: usize, item: Value) -> Result<NewEvent, Rejected> {
    let malformed = |what: String| Rejected::undecodable("o365_notification_malformed", format!("notification {index}: {what}"));
    if !item.is_object() {
        return Err(malformed(format!("expected an object, got {}", super::json_kind(&item))));
    }
    for field in REQUIRED {
        if item.get(field).and_then(Value::as_str).is_none_or(str::is_empty) {
            return Err(malformed(format!("`{field}` must be a non-empty string")));
        }
    }
    let content_id = item["contentId"].as_str().unwrap_or_default().to_owned();
    let occurred_at = item["contentCreated"].as_str().and_then(|t| DateTime::parse_from_rfc3339(t).ok()).map(|t| t.with_timezone(&Utc));
    Ok(NewEvent { dedupe_key: content_id, kind: EventKind::Telemetry, occurred_at, payload: item })
}

#[cfg(test)]
mod tests {
    use super::*;
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
        let config = ConnectionConfig::load(&O365ActivitySender, json!({"auth_id": "o365-secret"}));
        let (h, body) = (headers(auth), serde_json::to_vec(body).unwrap());
        let request = RawRequest { headers: &h, query: None, body: &body, push_url: "http://x/push/o365-activity/1", now: Utc::now() };
        let verified = O365ActivitySender.verify(request, &config).await?;
        O365ActivitySender.normalize(&verified, &config)
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
        let Intake::Events { events, heartbeat: false, stream: None } =
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
                &Verified::new(RawRequest { headers: &HeaderMap::new(), query: None, body: b"{", push_url: "u", now: Utc::now() }, None),
                &ConnectionConfig::unprepared(json!({})),
            )
            .unwrap_err();
        assert_eq!(e.reason, "invalid_json");
    }
}
