//! A real Kafka-protocol broker (tansu, in-memory storage) for the kafka destination tests.
//! `scripts/test` starts one on 127.0.0.1 (random port) and exports
//! `PUSHGATE_TEST_KAFKA_BROKERS`, plus `PUSHGATE_TEST_KAFKA_BROKER_BIN` (the binary) for
//! tests that start a broker of their own behind a [`Proxy`] they can cut; with
//! `PUSHGATE_REQUIRE_KAFKA=1` a missing broker fails the test instead of skipping it.
//! Each test uses its own topics, created with the admin API, and reads them back by
//! partition (no consumer group).
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

const REQUIRE_VAR: &str = "PUSHGATE_REQUIRE_KAFKA";

fn require(test: &str, what: &str) -> Option<()> {
    if std::env::var(REQUIRE_VAR).is_ok_and(|v| v == "1") {
        panic!("{test}: {what} but {REQUIRE_VAR}=1");
    }
    eprintln!("SKIPPED ({test}): {what}; run scripts/test (it installs and starts tansu)");
    None
}

/// The shared broker's `host:port`.
pub fn brokers(test: &str) -> Option<String> {
    match std::env::var("PUSHGATE_TEST_KAFKA_BROKERS") {
        Ok(b) => Some(b),
        Err(_) => require(test, "PUSHGATE_TEST_KAFKA_BROKERS is not set (no Kafka broker)").map(|_| unreachable!()),
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Creates `topic` with `partitions` partitions (what an operator does before pointing
/// pushgate at Kafka).
pub async fn create_topic(brokers: &str, topic: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new().set("bootstrap.servers", brokers).create().unwrap();
    let results = admin
        .create_topics(
            &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await
        .unwrap();
    for r in results {
        r.unwrap_or_else(|(t, e)| panic!("cannot create topic {t}: {e}"));
    }
}

/// One record read back.
#[derive(Debug, Clone)]
pub struct KafkaRecord {
    pub partition: i32,
    pub key: Option<String>,
    pub event_id: Option<String>,
    pub value: Value,
}

fn read_once(brokers: &str, topic: &str, n: usize, within: Duration) -> Result<Vec<KafkaRecord>, String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "pushgate-tests-unused")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)).map_err(|e| e.to_string())?;
    let partitions: Vec<i32> = metadata.topics().iter().flat_map(|t| t.partitions().iter().map(|p| p.id())).collect();
    let mut list = TopicPartitionList::new();
    for p in &partitions {
        list.add_partition_offset(topic, *p, Offset::Beginning).unwrap();
    }
    consumer.assign(&list).unwrap();
    let deadline = std::time::Instant::now() + within;
    let mut out = Vec::new();
    while out.len() < n {
        if std::time::Instant::now() > deadline {
            return Err(format!("topic {topic} gave {} records, not {n}, within {within:?}", out.len()));
        }
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                let event_id = m.headers().and_then(|h| {
                    h.iter().find(|h| h.key == "pushgate-event-id").and_then(|h| h.value.map(|v| String::from_utf8_lossy(v).into_owned()))
                });
                out.push(KafkaRecord {
                    partition: m.partition(),
                    key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                    event_id,
                    value: serde_json::from_slice(m.payload().unwrap_or_default()).unwrap_or(Value::Null),
                });
            }
            Some(Err(e)) => eprintln!("consumer: {e}"),
            None => {}
        }
    }
    Ok(out)
}

/// Every record of `topic` once it holds at least `n` (read by partition from the start);
/// panics after `within`.
pub async fn wait_for_records(brokers: &str, topic: &str, n: usize, within: Duration) -> Vec<KafkaRecord> {
    let (brokers, topic) = (brokers.to_owned(), topic.to_owned());
    tokio::task::spawn_blocking(move || read_once(&brokers, &topic, n, within).unwrap_or_else(|e| panic!("{e}"))).await.unwrap()
}

/// A TCP proxy the test controls: [`Proxy::cut`] closes every connection and refuses new
/// ones; [`Proxy::restore`] listens again on the same port.
pub struct Proxy {
    pub port: u16,
    target: u16,
    accept: Option<JoinHandle<()>>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    pub async fn start(target: u16) -> Proxy {
        let mut proxy = Proxy { port: free_port(), target, accept: None, connections: Arc::default() };
        proxy.restore().await;
        proxy
    }

    pub async fn restore(&mut self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).await.unwrap();
        let (target, connections) = (self.target, self.connections.clone());
        self.accept = Some(tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(("127.0.0.1", target)).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                connections.lock().unwrap().push(task);
            }
        }));
    }

    pub fn cut(&mut self) {
        if let Some(accept) = self.accept.take() {
            accept.abort();
        }
        for task in self.connections.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
    }
}

/// A tansu of one test's own whose advertised listener is a [`Proxy`] port, so the test
/// can make the broker unreachable without restarting it (in-memory tansu would forget
/// its topics and producer ids).
pub struct Broker {
    /// What clients are given (the proxy).
    pub brokers: String,
    /// The broker itself, bypassing the proxy.
    pub direct: String,
    pub proxy: Proxy,
    child: Child,
}

impl Broker {
    pub async fn start(test: &str) -> Option<Broker> {
        let bin = match std::env::var("PUSHGATE_TEST_KAFKA_BROKER_BIN") {
            Ok(b) => PathBuf::from(b),
            Err(_) => return require(test, "PUSHGATE_TEST_KAFKA_BROKER_BIN is not set (no tansu)").map(|_| unreachable!()),
        };
        let port = free_port();
        let proxy = Proxy::start(port).await;
        let mut child = Command::new(bin)
            .args(["broker", "--listener-url", &format!("tcp://127.0.0.1:{port}")])
            .args(["--advertised-listener-url", &format!("tcp://127.0.0.1:{}", proxy.port), "--storage-engine", "memory://tansu/"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tansu starts");
        for _ in 0..200 {
            if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return Some(Broker { brokers: format!("127.0.0.1:{}", proxy.port), direct: format!("127.0.0.1:{port}"), proxy, child });
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("tansu did not start on port {port}");
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
