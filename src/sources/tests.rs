//! The registry and the contract every sender's `prepare` keeps.

use std::sync::Arc;

use chrono::Utc;
use http::HeaderMap;
use serde_json::{json, Value};

use super::*;

fn senders() -> Senders {
    Senders::new(
        Arc::new(aws_sns::certs::CertStore::offline(None)),
        Arc::new(gcp_pubsub::keys::GoogleKeys::offline(None)),
        Arc::new(ms_graph::keys::MicrosoftKeys::offline(None)),
    )
}

async fn receive(source: SourceKind, config: Value, query: Option<&str>, body: &[u8]) -> Result<Decoded, Rejected> {
    let senders = senders();
    let sender = senders.get(source);
    let config = ConnectionConfig::load(sender, config);
    let headers = HeaderMap::new();
    let request = RawRequest { headers: &headers, query, body, push_url: "http://x/push/x/1", now: Utc::now() };
    sender.receive(request, &config).await
}

#[test]
fn every_sender_is_built_from_its_own_spec() {
    let senders = senders();
    for source in SourceKind::ALL {
        assert_eq!(senders.get(source).spec().kind, source);
        assert_eq!(spec(source).kind, source);
        assert_eq!(from_route_segment(spec(source).route_segment), Some(source));
    }
    assert_eq!(push_url(SourceKind::AwsSns, "https://pg.example/", "id-1"), "https://pg.example/push/aws-sns/id-1");
}

#[tokio::test]
async fn a_config_that_no_longer_reads_refuses_every_push_as_unauthenticated() {
    // Saved before a rule existed, or written by hand: the refusal names the field in the
    // rejection record and tells the sender nothing (unauthenticated answers carry no detail).
    for (source, config) in [
        (SourceKind::GcpPubsub, json!({"audience": "a"})),
        (SourceKind::O365Activity, json!({})),
        (SourceKind::Webhook, json!({"auth": {"type": "hmac_sha256"}})),
        (SourceKind::AwsEventbridge, json!({})),
        (SourceKind::MsGraph, json!({"tenant_ids": ["t"]})),
    ] {
        let refused = receive(source, config, None, br#"{"value": [{}]}"#).await.unwrap_err();
        assert_eq!((refused.class, refused.reason), (RejectClass::Unauthenticated, "invalid_connection_config"), "{source:?}");
    }
}

#[tokio::test]
async fn a_graph_validation_is_answered_even_without_a_client_state() {
    let decoded = receive(SourceKind::MsGraph, json!({}), Some("validationToken=abc"), b"").await.unwrap().unwrap();
    assert_eq!(decoded, Intake::Handshake(Handshake::GraphValidation { token: b"abc".to_vec() }));
}
