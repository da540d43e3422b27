//! Every sender's events reach the event store: pushes through all six senders, signed
//! as each cloud signs them, arrive at a real NATS JetStream and at an HTTP receiver
//! exactly as INTERFACE.md section 5 shapes them, in commit order, on SQLite and
//! PostgreSQL. The change feed serves the same events in the same order.

mod common;

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::Utc;
use common::receiver::Receiver;
use common::{hmac_hex, hmac_webhook, nats, Backend, TestServer};
use pushgate::sources::aws_sns::test_signer::TestSigner;
use pushgate::sources::gcp_pubsub::test_signer::TestOidcSigner;
use serde_json::{json, Value};

on_both_backends_with!(every_sender_arrives_at_nats_and_http_as_stored, a_raw_event_is_forwarded_and_filtered_by_its_kind);

const TOPIC: &str = "arn:aws:sns:us-east-1:111122223333:securityhub-findings";
const EMAIL: &str = "scc-push@acme-prod.iam.gserviceaccount.com";
const CLIENT_STATE: &str = "cs-forward-1";
const GRAPH_TENANT: &str = "84bd8158-6d4d-4958-8b9f-9d6445542f95";
const WAIT: Duration = Duration::from_secs(30);

async fn post(server: &TestServer, path: &str, body: Vec<u8>, headers: &[(&str, String)]) -> u16 {
    let mut request = server.client.post(server.url(path)).body(body);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    request.send().await.unwrap().status().as_u16()
}

fn id(c: &Value) -> String {
    c["id"].as_str().unwrap().to_owned()
}

async fn every_sender_arrives_at_nats_and_http_as_stored(backend: Backend) {
    let test = "every_sender_arrives_at_nats_and_http_as_stored";
    let Some(nats_url) = nats::url(test) else { return };
    let sns = TestSigner::new("us-east-1");
    let oidc = TestOidcSigner::new();
    let server = TestServer::builder(backend, test).sns_signer(&sns).env("PUSHGATE_SNS_CERT_FETCH", "false").google_signer(&oidc);
    let Some(server) = server.start().await else { return };

    // The operator's JetStream stream, and both destinations.
    let prefix = format!("t{}", uuid::Uuid::new_v4().simple());
    nats::create_stream(&nats_url, &prefix, &[&format!("{prefix}.>")]).await;
    let bus = server
        .create_destination(json!({"name": "SOC bus", "kind": "nats",
            "config": {"url": nats_url, "subject": format!("{prefix}.{{tenant_id}}.{{stream}}")}}))
        .await;
    assert_eq!((bus["status"].as_str(), bus["lag_events"].as_i64()), (Some("ok"), Some(0)));
    let receiver = Receiver::start().await;
    let secret = format!("whsec_{}", STANDARD.encode([9u8; 32]));
    let http = server
        .create_destination(json!({"name": "collector", "kind": "http",
            "config": {"url": receiver.url, "auth": {"type": "standard_webhooks", "secret": secret}, "gzip": true}}))
        .await;
    assert_eq!(http["config"]["auth"]["secret"], "***");

    // webhook (HMAC-SHA256)
    let webhook = id(&server.create(hmac_webhook("acme", "s3cret")).await);
    let body = br#"{"alert": "impossible travel", "severity": "high"}"#.to_vec();
    assert_eq!(post(&server, &format!("/push/webhook/{webhook}"), body.clone(), &[("x-signature", hmac_hex("s3cret", &body))]).await, 200);
    // EventBridge API destination (API key)
    let eventbridge = id(&server
        .create(json!({"tenant_id": "acme", "name": "EB", "source": "aws_eventbridge",
            "config": {"auth": {"type": "api_key", "header": "x-api-key", "value": "eb-key"}}}))
        .await);
    let event = json!({"version": "0", "id": "eb-1", "detail-type": "GuardDuty Finding", "source": "aws.guardduty",
        "account": "111122223333", "time": "2026-11-30T10:00:00Z", "region": "us-east-1", "resources": [],
        "detail": {"id": "gd-1", "type": "Recon:EC2/PortProbeUnprotectedPort", "updatedAt": "2026-11-30T10:00:00Z", "severity": 2}});
    assert_eq!(
        post(&server, &format!("/push/aws-eventbridge/{eventbridge}"), event.to_string().into_bytes(), &[("x-api-key", "eb-key".into())])
            .await,
        200
    );
    // SNS (RSA SignatureVersion 2, pinned certificate)
    let topic =
        id(&server.create(json!({"tenant_id": "acme", "name": "SNS", "source": "aws_sns", "config": {"topic_arns": [TOPIC]}})).await);
    let message =
        json!({"version": "0", "id": "sns-eb-1", "detail-type": "Custom Alert", "source": "custom.app", "detail": {"n": 1}}).to_string();
    let signed = sns.notification(TOPIC, "11111111-2222-3333-4444-555555555555", &message, None, Utc::now());
    assert_eq!(post(&server, &format!("/push/aws-sns/{topic}"), signed.into_bytes(), &[]).await, 200);
    // Pub/Sub (Google OIDC token)
    let pubsub = server
        .create(json!({"tenant_id": "globex", "name": "SCC", "source": "gcp_pubsub", "config": {"service_account_email": EMAIL}}))
        .await;
    let data = json!({"finding": {"name": "organizations/1/sources/2/findings/f1", "category": "MALWARE"}}).to_string();
    let envelope = json!({"message": {"data": STANDARD.encode(&data), "messageId": "ps-1", "publishTime": "2026-11-30T10:00:00Z"},
        "subscription": "projects/acme/subscriptions/scc"});
    let token = oidc.push_token(pubsub["push_url"].as_str().unwrap(), EMAIL, Utc::now());
    assert_eq!(
        post(
            &server,
            &format!("/push/gcp-pubsub/{}", id(&pubsub)),
            envelope.to_string().into_bytes(),
            &[("authorization", format!("Bearer {token}"))]
        )
        .await,
        204
    );
    // Microsoft Graph (clientState)
    let graph = id(&server
        .create(json!({"tenant_id": "acme", "name": "Graph", "source": "ms_graph", "config": {"client_state": CLIENT_STATE}}))
        .await);
    let batch = json!({"value": [{"subscriptionId": "sub-1", "subscriptionExpirationDateTime": "2030-01-01T00:00:00Z", "changeType": "updated",
        "resource": "security/alerts_v2/a1", "clientState": CLIENT_STATE, "tenantId": GRAPH_TENANT,
        "resourceData": {"@odata.type": "#Microsoft.Graph.security.alert", "id": "a1"}}]});
    assert_eq!(post(&server, &format!("/push/ms-graph/{graph}"), batch.to_string().into_bytes(), &[]).await, 202);
    // Office 365 Management Activity (Webhook-AuthID)
    let o365 = id(&server
        .create(json!({"tenant_id": "acme", "name": "O365", "source": "o365_activity", "config": {"auth_id": "o365-auth"}}))
        .await);
    let content = json!([{"contentType": "Audit.Exchange", "contentId": "c-1", "contentCreated": "2026-11-30T10:00:00.000Z",
        "contentUri": "https://manage.office.com/api/v1.0/41463f53-8812-40f4-890f-865bf6e35190/activity/feed/audit/c-1"}]);
    assert_eq!(
        post(&server, &format!("/push/o365-activity/{o365}"), content.to_string().into_bytes(), &[("webhook-authid", "o365-auth".into())])
            .await,
        200
    );

    // What each connection stored, and the feed's commit order over all of them.
    let feed = server.wait_for_feed(6, WAIT).await;
    assert_eq!(feed.len(), 6, "one event per push: {feed:#?}");
    let mut stored = Vec::new();
    for c in [&webhook, &eventbridge, &topic, &id(&pubsub), &graph, &o365] {
        let events = server.events(c).await;
        assert_eq!(events.len(), 1, "{c}");
        stored.push(events[0].clone());
    }
    assert_eq!(feed, stored, "the feed serves the stored events, oldest first (the pushes committed one after another)");
    assert!(feed.iter().all(|e| e.as_object().unwrap().len() == 10 && e["payload"].is_object()), "section 5 shape");
    assert!(feed.iter().all(|e| e["payload"].get("clientState").is_none() && !e.to_string().contains(CLIENT_STATE)), "no secret");

    // NATS: one message per event, in commit order, Nats-Msg-Id = event id, the subject from the template.
    let messages = nats::wait_for_messages(&nats_url, &prefix, 6, WAIT).await;
    assert_eq!(messages.iter().map(|m| m.data.clone()).collect::<Vec<_>>(), feed);
    for (m, e) in messages.iter().zip(&feed) {
        assert_eq!(m.msg_id.as_deref(), e["id"].as_str());
        assert_eq!(m.subject, format!("{prefix}.{}.{}", e["tenant_id"].as_str().unwrap(), e["stream"].as_str().unwrap()));
    }
    // HTTP: NDJSON lines, the same objects in the same order, each batch signed.
    let records = receiver.wait_for_records(6, WAIT).await;
    assert_eq!(records, feed);
    for r in receiver.requests() {
        let id = r.header("webhook-id").unwrap().to_owned();
        assert_eq!(r.header("idempotency-key"), Some(id.as_str()));
        assert_eq!(r.header("content-type"), Some("application/x-ndjson"));
        assert_eq!(r.header("content-encoding"), Some("gzip"));
        let ts: i64 = r.header("webhook-timestamp").unwrap().parse().unwrap();
        let expected = pushgate::forward::sinks::http::standard_signature(&[9u8; 32], &id, ts, &r.body);
        assert_eq!(r.header("webhook-signature"), Some(expected.as_str()), "signed over the uncompressed body");
    }

    // Both destinations caught up.
    for d in [id(&bus), id(&http)] {
        let shown = server.wait_for_destination(&d, "delivered", WAIT, |d| d["counters"]["delivered"] == 6 && d["lag_events"] == 0).await;
        assert_eq!(shown["status"], "ok");
        assert!(shown["last_delivered_at"].is_string());
        assert_eq!(shown["last_error"], Value::Null);
    }
    server.stop().await;
}

async fn a_raw_event_is_forwarded_and_filtered_by_its_kind(backend: Backend) {
    let Some(server) = TestServer::builder(backend, "a_raw_event_is_forwarded_and_filtered_by_its_kind").start().await else { return };
    let receiver = Receiver::start().await;
    let raw_only = server
        .create_destination(json!({"name": "raw bin", "kind": "http", "filter": {"kinds": ["raw"]}, "config": {"url": receiver.url}}))
        .await;
    let webhook = id(&server.create(hmac_webhook("acme", "s3cret")).await);
    for body in [&br#"{"alert": "decodes"}"#[..], b"\xffnot text, not json"] {
        assert_eq!(
            post(&server, &format!("/push/webhook/{webhook}"), body.to_vec(), &[("x-signature", hmac_hex("s3cret", body))]).await,
            200
        );
    }
    let records = receiver.wait_for_records(1, WAIT).await;
    let stored = server.events(&webhook).await;
    assert_eq!(records, vec![stored[0].clone()], "only the raw event, exactly as stored");
    assert_eq!(records[0]["kind"], "raw");
    assert_eq!(records[0]["payload"], json!({"raw_base64": STANDARD.encode(b"\xffnot text, not json"), "content_type": null}));
    assert_eq!(server.feed("&kind=raw").await, records, "the change feed filters by kind too");
    let shown =
        server.wait_for_destination(&id(&raw_only), "delivered", WAIT, |d| d["counters"]["delivered"] == 1 && d["lag_events"] == 0).await;
    assert_eq!(shown["status"], "ok");
    server.stop().await;
}
