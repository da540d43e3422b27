//! Graceful shutdown: a push already in flight when the stop signal comes is finished,
//! stored and acknowledged; new connections are refused afterwards.

mod common;

use common::{hmac_hex, hmac_webhook, Backend, TestServer};

async fn in_flight_push_survives_shutdown(backend: Backend) {
    let Some(server) = TestServer::builder(backend, "in_flight_push_survives_shutdown").start().await else { return };
    let id = server.create(hmac_webhook("acme", "s3cret")).await["id"].as_str().unwrap().to_owned();
    let body = br#"{"alert": "in flight during shutdown"}"#.to_vec();
    let signature = hmac_hex("s3cret", &body);

    // A request first, so the client's pooled connection is one the server has accepted.
    assert_eq!(server.client.get(server.url("/healthz")).send().await.unwrap().status(), 200);
    // The body arrives in two parts; the second only after the stop signal.
    let (parts, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(2);
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
    parts.send(Ok(body[..10].to_vec())).await.unwrap();
    let request = server
        .client
        .post(server.url(&format!("/push/webhook/{id}")))
        .header("x-signature", signature)
        .body(reqwest::Body::wrap_stream(stream));
    let in_flight = tokio::spawn(request.send());
    // Give the server a moment to read the request head and start reading the body: a
    // request half read shows nowhere a test could look.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;

    let base = server.base.clone();
    let stopping = tokio::spawn(server.stop());
    // The rest of the body must come after the stop signal has reached the server, which
    // nothing announces: a moment of real time.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    parts.send(Ok(body[10..].to_vec())).await.unwrap();
    drop(parts);

    let response = in_flight.await.unwrap().expect("the in-flight push is answered");
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<serde_json::Value>().await.unwrap()["stored"], 1);
    stopping.await.unwrap();
    assert!(reqwest::get(format!("{base}/healthz")).await.is_err(), "a stopped server accepts nothing");
}

#[tokio::test]
async fn in_flight_push_survives_shutdown_sqlite() {
    in_flight_push_survives_shutdown(Backend::Sqlite).await;
}

#[tokio::test]
async fn in_flight_push_survives_shutdown_postgres() {
    in_flight_push_survives_shutdown(Backend::Postgres).await;
}
