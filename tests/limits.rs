//! Server-wide limits: the concurrency limit counts requests on every route together.

mod common;

use std::time::Duration;

use common::{Backend, TestServer};
use tokio::io::AsyncWriteExt;

#[tokio::test]
async fn the_concurrency_limit_is_one_budget_for_all_routes() {
    let server = TestServer::builder(Backend::Sqlite, "limits").env("PUSHGATE_MAX_CONCURRENT_REQUESTS", "1").start().await.unwrap();
    // One push whose body never finishes holds the only slot.
    let addr = server.base.trim_start_matches("http://").to_owned();
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head =
        format!("POST /push/webhook/00000000-0000-0000-0000-000000000000 HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 100\r\n\r\n{{\"a\":");
    slow.write_all(head.as_bytes()).await.unwrap();
    // Time for the server to take the request into its only slot; any probe for that
    // would be a request itself.
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Another route is refused at once rather than queued.
    let answer = server.client.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(answer.status(), 503, "a request on another route shares the same limit");
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["error"]["code"], "overloaded");
    drop(slow);
    // Time for the server to see the connection close and free the slot; the request
    // below is what shows it.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(server.client.get(server.url("/healthz")).send().await.unwrap().status(), 200, "the slot is free again");
    server.stop().await;
}
