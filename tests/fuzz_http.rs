//! Random requests against the live push and admin routes: every answer is a clean 4xx
//! with a JSON error (never a 5xx, never a hang), and nothing random is stored.

mod common;

use common::{hmac_webhook, TestServer};
use reqwest::Method;
use serde_json::Value;

/// A small deterministic generator (xorshift64*), so a failure can be replayed by its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let len = self.below(max + 1);
        (0..len).map(|_| self.next() as u8).collect()
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

on_both_backends!(random_pushes_get_clean_refusals, random_admin_bodies_get_clean_refusals);

async fn random_pushes_get_clean_refusals(server: TestServer) {
    let id = server.create(hmac_webhook("acme", "s3cret")).await["id"].as_str().unwrap().to_owned();
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let header_names = ["x-signature", "webhook-id", "webhook-timestamp", "webhook-signature", "authorization", "content-type"];
    let values = ["", "sha256=", "v1,AAAA", "Basic Og==", "999999999999999999999", "sha256=zz", "v1,\u{e9}t\u{e9}"];
    for round in 0..300 {
        let path_id = match rng.below(4) {
            0 => uuid::Uuid::new_v4().to_string(),
            1 => String::from_utf8_lossy(&rng.bytes(12)).chars().filter(|c| c.is_ascii_alphanumeric()).collect(),
            _ => id.clone(),
        };
        let mut request = server.client.post(server.url(&format!("/push/webhook/{path_id}"))).body(rng.bytes(600));
        for _ in 0..rng.below(4) {
            // Header values may carry any visible byte, including invalid UTF-8.
            let value = match rng.below(3) {
                0 => reqwest::header::HeaderValue::from_bytes(rng.pick(&values).as_bytes()).unwrap(),
                1 => reqwest::header::HeaderValue::from_str(&hex::encode(rng.bytes(40))).unwrap(),
                _ => {
                    let bytes: Vec<u8> = rng.bytes(30).into_iter().map(|b| b.max(0x20)).filter(|b| *b != 0x7f).collect();
                    reqwest::header::HeaderValue::from_bytes(&bytes).unwrap()
                }
            };
            request = request.header(rng.pick(&header_names), value);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        assert!([400, 401, 404].contains(&status), "round {round}: {status} {text}");
        let body: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("round {round}: not JSON: {text}"));
        assert!(body["error"]["code"].is_string(), "round {round}: {text}");
    }
    assert!(server.events(&id).await.is_empty(), "nothing random was stored");
    server.stop().await;
}

async fn random_admin_bodies_get_clean_refusals(server: TestServer) {
    let mut rng = Rng(0x5eed_0000_0000_0002);
    let fragments = [
        r#"{"tenant_id":"#,
        r#""t","name":"n","source":"#,
        r#""webhook""#,
        r#","config":{"auth":"#,
        "{",
        "}",
        "[",
        "]",
        r#""type":"api_key""#,
        ",",
        "null",
        "1e999",
        r#""\u0000""#,
        r#""heartbeat_interval_seconds":-1"#,
    ];
    for round in 0..200 {
        let body: String = (0..rng.below(12)).map(|_| rng.pick(&fragments)).collect();
        let method = if rng.below(2) == 0 { Method::POST } else { Method::PATCH };
        let path = if method == Method::POST { "/v1/connections".to_string() } else { format!("/v1/connections/{}", uuid::Uuid::new_v4()) };
        let response = server.admin(method, &path).header("content-type", "application/json").body(body.clone()).send().await.unwrap();
        let status = response.status().as_u16();
        assert!([201, 400, 404].contains(&status), "round {round}: {status} for {body}");
        let answer: Value = response.json().await.unwrap_or_else(|_| panic!("round {round}: not JSON for {body}"));
        if status != 201 {
            assert!(answer["error"]["code"].is_string() && answer["error"]["message"].is_string(), "round {round}: {answer}");
        }
    }
    server.stop().await;
}
