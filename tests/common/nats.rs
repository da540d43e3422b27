//! A real nats-server with JetStream for forwarding tests. `scripts/test` starts one on
//! 127.0.0.1 (random port, throwaway store directory) and exports
//! `PUSHGATE_TEST_NATS_URL`, plus `PUSHGATE_TEST_NATS_SERVER` (the binary) for tests that
//! stop and start a server of their own; with `PUSHGATE_REQUIRE_NATS=1` a missing server
//! fails the test instead of skipping it. Each test uses its own stream and subjects.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use async_nats::jetstream;
use serde_json::Value;

const REQUIRE_VAR: &str = "PUSHGATE_REQUIRE_NATS";

fn require(test: &str, what: &str) -> Option<()> {
    if std::env::var(REQUIRE_VAR).is_ok_and(|v| v == "1") {
        panic!("{test}: {what} but {REQUIRE_VAR}=1");
    }
    eprintln!("SKIPPED ({test}): {what}; run scripts/test where nats-server is installed");
    None
}

/// The shared server's URL.
pub fn url(test: &str) -> Option<String> {
    match std::env::var("PUSHGATE_TEST_NATS_URL") {
        Ok(url) => Some(url),
        Err(_) => require(test, "PUSHGATE_TEST_NATS_URL is not set (no nats-server)").map(|_| unreachable!()),
    }
}

fn binary() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("PUSHGATE_TEST_NATS_SERVER") {
        return Some(PathBuf::from(path));
    }
    ["/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"].iter().map(PathBuf::from).find(|p| p.exists())
}

/// A nats-server of one test's own, which it can stop and start again on the same port
/// and store directory (so its streams survive).
pub struct NatsServer {
    pub url: String,
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl NatsServer {
    pub async fn start(test: &str) -> Option<NatsServer> {
        let Some(_) = binary() else { return require(test, "nats-server is not installed").map(|_| unreachable!()) };
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut server = NatsServer { url: format!("nats://127.0.0.1:{port}"), port, dir: tempfile::tempdir().unwrap(), child: None };
        server.run().await;
        Some(server)
    }

    async fn run(&mut self) {
        let child = Command::new(binary().unwrap())
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string(), "-js", "-sd"])
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts");
        self.child = Some(child);
        for _ in 0..200 {
            if async_nats::connect(&self.url).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("nats-server did not start on {}", self.url);
    }

    /// Kills the server.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again, same port, same streams.
    pub async fn restart(&mut self) {
        self.stop();
        self.run().await;
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Creates stream `name` holding `subjects` (what an operator does before pointing
/// pushgate at NATS).
pub async fn create_stream(url: &str, name: &str, subjects: &[&str]) {
    let js = jetstream::new(async_nats::connect(url).await.unwrap());
    js.create_stream(jetstream::stream::Config {
        name: name.into(),
        subjects: subjects.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    })
    .await
    .unwrap();
}

/// One stored message: its subject, `Nats-Msg-Id` and data.
#[derive(Debug, Clone)]
pub struct Message {
    pub subject: String,
    pub msg_id: Option<String>,
    pub data: Value,
}

/// Every message of `stream` once it holds at least `n`; panics after `within`.
pub async fn wait_for_messages(url: &str, stream: &str, n: u64, within: Duration) -> Vec<Message> {
    let js = jetstream::new(async_nats::connect(url).await.unwrap());
    let mut handle = js.get_stream(stream).await.unwrap();
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let state = handle.info().await.unwrap().state.clone();
        if state.messages >= n {
            let mut out = Vec::new();
            for seq in state.first_sequence..=state.last_sequence {
                let m = handle.get_raw_message(seq).await.unwrap();
                out.push(Message {
                    subject: m.subject.to_string(),
                    msg_id: m.headers.get("Nats-Msg-Id").map(|v| v.to_string()),
                    data: serde_json::from_slice(&m.payload).unwrap(),
                });
            }
            return out;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("stream {stream} holds {} messages, not {n}, after {within:?}", state.messages);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
