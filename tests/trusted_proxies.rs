//! `PUSHGATE_TRUSTED_PROXIES` over real HTTP, on SQLite and PostgreSQL: behind a trusted
//! proxy a refused push's rejection names the sender from `X-Forwarded-For`; without the
//! setting the same header is ignored and the record names the TCP peer.

mod common;

use common::{hmac_hex, hmac_webhook, Backend, TestServer};
use serde_json::Value;

on_both_backends_with!(a_trusted_proxy_names_the_sender_of_a_refused_push, an_untrusted_peer_cannot_choose_its_address);

/// Sends one push to a new webhook connection, signed with the wrong secret and carrying
/// these `X-Forwarded-For` lines; the rejection it left.
async fn refused_push(server: &TestServer, forwarded: &[&str]) -> Value {
    let id = server.create(hmac_webhook("acme", "s3cret")).await["id"].as_str().unwrap().to_owned();
    let body = br#"{"alert": "x"}"#;
    let mut request =
        server.client.post(server.url(&format!("/push/webhook/{id}"))).header("x-signature", hmac_hex("not-the-secret", body));
    for line in forwarded {
        // `header` appends: each is a header line of its own.
        request = request.header("x-forwarded-for", *line);
    }
    let response = request.body(body.to_vec()).send().await.unwrap();
    assert_eq!(response.status(), 401);
    let rejections = server.rejections(&id).await;
    assert_eq!(rejections.len(), 1, "{rejections:?}");
    assert_eq!(rejections[0]["reason"], "bad_signature");
    rejections[0].clone()
}

async fn a_trusted_proxy_names_the_sender_of_a_refused_push(backend: Backend) {
    // The test client connects from 127.0.0.1: here, that is the load balancer.
    let Some(server) =
        TestServer::builder(backend, "trusted_proxy_names_sender").env("PUSHGATE_TRUSTED_PROXIES", "127.0.0.1/32").start().await
    else {
        return;
    };
    let rejection = refused_push(&server, &["203.0.113.7"]).await;
    assert_eq!(rejection["source_addr"], "203.0.113.7");
    // What the sender wrote itself, left of the address the proxy appended, is not believed.
    let rejection = refused_push(&server, &["192.0.2.66, 198.51.100.1", "203.0.113.7"]).await;
    assert_eq!(rejection["source_addr"], "203.0.113.7");
    // A chain: an IPv6 sender, then another trusted hop (127.0.0.1 again), then the peer.
    let rejection = refused_push(&server, &["2001:db8::7, 127.0.0.1"]).await;
    assert_eq!(rejection["source_addr"], "2001:db8::7");
    // No header: the peer is the sender.
    let rejection = refused_push(&server, &[]).await;
    assert_eq!(rejection["source_addr"], "127.0.0.1");
    // An entry that is not an address stops at the proxy that wrote it.
    let rejection = refused_push(&server, &["203.0.113.7, unknown"]).await;
    assert_eq!(rejection["source_addr"], "127.0.0.1");
    server.stop().await;
}

async fn an_untrusted_peer_cannot_choose_its_address(backend: Backend) {
    let Some(server) = TestServer::builder(backend, "untrusted_peer_spoofs").start().await else { return };
    let rejection = refused_push(&server, &["203.0.113.7"]).await;
    assert_eq!(rejection["source_addr"], "127.0.0.1", "without trusted proxies the header is ignored");
    server.stop().await;
    // Trusting some other network changes nothing for this peer.
    let Some(server) =
        TestServer::builder(backend, "untrusted_peer_spoofs_other").env("PUSHGATE_TRUSTED_PROXIES", "10.0.0.0/8, fd00::/8").start().await
    else {
        return;
    };
    let rejection = refused_push(&server, &["203.0.113.7"]).await;
    assert_eq!(rejection["source_addr"], "127.0.0.1");
    server.stop().await;
}
