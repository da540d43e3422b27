//! Two pushgate replicas on one PostgreSQL database, as the Kubernetes deployment runs
//! them: the jobs that act on the world outside run on one replica at a time, under a job
//! lease. Exactly one Graph subscription is created, one canary heartbeat is published per
//! interval, each status transition is alerted once, and when the replica holding a job
//! stops, the other takes the job over within the lease's TTL. Also, on both backends, an
//! alert still waiting when the server stops is delivered after it starts again.
//!
//! The replica tests need PostgreSQL (`scripts/test --test replicas`); without it they
//! print SKIPPED.

mod common;
#[path = "common/fake_graph.rs"]
mod fake_graph;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::process::Process;
use common::receiver::{Answer, Receiver};
use common::{eventually, hmac_hex, Backend, TestServer, TestServerBuilder};
use fake_graph::FakeGraph;
use pushgate::jobs::LeaseSettings;
use serde_json::{json, Value};

/// Short leases, so a takeover is quick to see: a stopped holder gives its leases up at
/// once, a dead one is taken over within TTL + one renewal.
const LEASES: LeaseSettings = LeaseSettings { ttl: Duration::from_secs(3), renew_every: Duration::from_millis(250) };
const TAKEOVER: Duration = Duration::from_millis(3_250);
const WAIT: Duration = Duration::from_secs(20);

const TENANT: &str = "6babcaad-604b-40ac-a9d7-9fd97c0b779f";
const CLIENT_ID: &str = "0b5c3b1e-8d2f-4a6e-9c1d-2e3f4a5b6c7d";
const GRAPH_SECRET: &str = "pushgate-upkeep-secret-7f3a9c1e";
const WEBHOOK_SECRET: &str = "replica-webhook-secret";
const ALERT_SECRET: &str = "replica-alert-secret";

fn replica(backend: Backend, test: &str) -> TestServerBuilder {
    TestServer::builder(backend, test).with_options(|o| {
        o.job_leases = Some(LEASES);
        o.graph_upkeep_interval = Some(Duration::from_millis(200));
    })
}

/// Two replicas of `configure` on one fresh PostgreSQL database, or `None` (SKIPPED) when
/// none is configured.
async fn two_replicas(test: &str, configure: impl Fn(TestServerBuilder) -> TestServerBuilder) -> Option<(TestServer, TestServer)> {
    let first = configure(replica(Backend::Postgres, test)).start().await?;
    let second = configure(replica(Backend::Postgres, test).database_url(&first.database_url)).start().await?;
    Some((first, second))
}

/// Whether `server` says (in `/metrics`) that it holds the lease of `job`.
async fn holds(server: &TestServer, job: &str) -> bool {
    let text = server.admin(reqwest::Method::GET, "/metrics").send().await.unwrap().text().await.unwrap();
    text.lines().any(|line| line == format!("pushgate_job_lease_held{{lease=\"{job}\"}} 1"))
}

/// Waits until exactly one of the replicas holds `job`; which one (0 or 1).
async fn holder(replicas: [&TestServer; 2], job: &str) -> usize {
    eventually(&format!("one holder of {job}"), WAIT, async || {
        let held = [holds(replicas[0], job).await, holds(replicas[1], job).await];
        match held {
            [true, false] => Some(0),
            [false, true] => Some(1),
            [true, true] => panic!("both replicas hold {job}"),
            [false, false] => None,
        }
    })
    .await
}

/// Stops the replica holding `job` and waits until the other holds it; how long that took.
async fn stop_holder(replicas: (TestServer, TestServer), job: &str) -> (TestServer, Duration) {
    let (first, second) = replicas;
    let (stopping, other) = match holder([&first, &second], job).await {
        0 => (first, second),
        _ => (second, first),
    };
    let stopped = Instant::now();
    stopping.stop().await;
    eventually(&format!("the other replica to take {job} over"), TAKEOVER * 2, async || holds(&other, job).await.then_some(())).await;
    (other, stopped.elapsed())
}

/// What a Kubernetes Service is to the replicas: one address (their shared
/// `PUSHGATE_PUBLIC_URL`) that passes each TCP connection on to the first replica that
/// takes it.
#[derive(Clone)]
struct Balancer {
    url: String,
    backends: Arc<Mutex<Vec<String>>>,
}

impl Balancer {
    async fn start() -> Balancer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let backends: Arc<Mutex<Vec<String>>> = Arc::default();
        let known = backends.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let candidates = known.lock().unwrap().clone();
                tokio::spawn(async move {
                    for backend in candidates {
                        if let Ok(mut server) = tokio::net::TcpStream::connect(&backend).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                            return;
                        }
                    }
                });
            }
        });
        Balancer { url, backends }
    }

    fn add(&self, server: &TestServer) {
        self.backends.lock().unwrap().push(server.base.trim_start_matches("http://").to_owned());
    }
}

// (a) and (d): the Graph upkeep.

fn graph_connection() -> Value {
    json!({
        "tenant_id": "acme",
        "name": "Graph security alerts",
        "source": "ms_graph",
        "heartbeat_interval_seconds": null,
        "config": {
            "client_state": "replica-client-state",
            "tenant_ids": [TENANT],
            "subscription": {"resource": "users", "change_type": "updated,deleted", "tenant_id": TENANT,
                "client_id": CLIENT_ID, "client_secret": GRAPH_SECRET},
        },
    })
}

#[tokio::test]
async fn two_replicas_keep_one_graph_subscription_and_hand_the_upkeep_over() {
    let fake = FakeGraph::start(CLIENT_ID, GRAPH_SECRET).await;
    // Short-lived subscriptions: every pass renews, so the renewals show who keeps it.
    fake.grant_at_most(120);
    // Both replicas push-validate at one public URL, as behind a Service.
    let balancer = Balancer::start().await;
    let configure = |b: TestServerBuilder| b.envs(fake.env()).env("PUSHGATE_PUBLIC_URL", &balancer.url);
    let Some((first, second)) = two_replicas("replicas_graph", configure).await else { return };
    balancer.add(&first);
    balancer.add(&second);
    let c = first.create(graph_connection()).await;
    let id = c["id"].as_str().unwrap().to_owned();
    let c = first.wait_for(&id, "a subscription", 200, Duration::from_millis(100), |c| !c["subscription"]["external_id"].is_null()).await;
    let subscription = c["subscription"]["external_id"].as_str().unwrap().to_owned();
    let upkeeper = holder([&first, &second], "graph_upkeep").await;
    let (running, idle) = if upkeeper == 0 { (&first, &second) } else { (&second, &first) };
    // Many passes later, still one subscription: the other replica runs no upkeep.
    let idle_passes = idle.graph_upkeep.count();
    running.upkeep_passes(10).await;
    assert_eq!(fake.count("POST", "/subscriptions"), 1, "one replica created one subscription");
    assert_eq!(fake.subscriptions().len(), 1);
    assert_eq!(idle.graph_upkeep.count(), idle_passes, "the replica without the lease runs no pass");

    let renewals = fake.count("PATCH", &format!("/subscriptions/{subscription}"));
    let (other, took) = stop_holder((first, second), "graph_upkeep").await;
    assert!(took <= TAKEOVER, "taken over in {took:?}");
    // The new holder keeps the same subscription: it renews it, and creates none.
    other.upkeep_passes(5).await;
    assert!(
        fake.count("PATCH", &format!("/subscriptions/{subscription}")) > renewals,
        "the new holder renews the subscription: {:?}",
        fake.requests().iter().map(|r| (r.method.clone(), r.path.clone())).collect::<Vec<_>>()
    );
    assert_eq!(fake.count("POST", "/subscriptions"), 1, "still one subscription after the takeover");
    let c = other.connection(&id).await;
    assert_eq!(c["subscription"]["external_id"], subscription.as_str());
    other.stop().await;
}

// (b) and (d): canaries, published to a fake SNS that counts Publish calls.

const REGION: &str = "us-east-1";
const TOPIC: &str = "arn:aws:sns:us-east-1:111122223333:pushgate-canary";

/// A fake SNS API: answers every Publish as SNS does; each request is kept.
async fn fake_sns() -> Receiver {
    // The AWS SDK reads credentials from the environment; the fake takes any.
    std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
    std::env::set_var("AWS_REGION", REGION);
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    let sns = Receiver::start().await;
    sns.answer(|_| Answer::Status {
        status: 200,
        retry_after: None,
        body: "<PublishResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><PublishResult><MessageId>m-1</MessageId>\
               </PublishResult><ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata></PublishResponse>"
            .into(),
        taken: 0,
    });
    sns
}

/// The arrival times of the Publish calls the fake SNS received.
fn publishes(sns: &Receiver) -> Vec<Instant> {
    sns.requests().into_iter().filter(|r| String::from_utf8_lossy(&r.body).contains("Action=Publish")).map(|r| r.at).collect()
}

/// Waits for `n` more publishes than `after`, and asserts they came one per second (the
/// canary's interval), not once per replica.
async fn published_once_per_interval(sns: &Receiver, after: usize, n: usize) {
    let seen = eventually(&format!("{n} canary publishes"), WAIT, async || {
        let seen = publishes(sns);
        (seen.len() >= after + n).then_some(seen)
    })
    .await;
    let new = &seen[after..after + n];
    let span = new[n - 1] - new[0];
    // Publishes one per second: n of them span n - 1 seconds (a little less, as a tick
    // may come early). Two replicas would publish them in about half of that.
    assert!(span >= Duration::from_millis(900 * (n as u64 - 1)), "{n} publishes within {span:?}: more than one per second");
}

#[tokio::test]
async fn two_replicas_publish_each_canary_once_per_interval() {
    let sns = fake_sns().await;
    let endpoint = sns.url.trim_end_matches("/ingest").to_owned();
    let Some((first, second)) = two_replicas("replicas_canary", |b| b.env("PUSHGATE_AWS_ENDPOINT_URL", &endpoint)).await else { return };
    first
        .create(json!({"tenant_id": "acme", "name": "canary", "source": "aws_sns", "heartbeat_interval_seconds": 60,
            "config": {"topic_arns": [TOPIC], "canary": {"topic_arn": TOPIC, "interval_seconds": 1}}}))
        .await;
    published_once_per_interval(&sns, 0, 5).await;
    let (other, took) = stop_holder((first, second), "canaries").await;
    assert!(took <= TAKEOVER, "taken over in {took:?}");
    let after = publishes(&sns).len();
    published_once_per_interval(&sns, after, 4).await;
    other.stop().await;
}

/// Whether the process `server` says (in `/metrics`) that it holds the lease of `job`.
async fn process_holds(server: &Process, job: &str) -> bool {
    let metrics = reqwest::Client::new().get(server.url("/metrics")).bearer_auth(common::ADMIN_TOKEN).send().await.unwrap();
    let text = metrics.text().await.unwrap();
    text.lines().any(|line| line == format!("pushgate_job_lease_held{{lease=\"{job}\"}} 1"))
}

/// With the default leases (20 s, renewed every 5 s), and the holder killed with SIGKILL
/// (no lease given up): the other replica publishes the canary within 30 s.
#[tokio::test]
async fn a_killed_canary_holder_is_taken_over_within_30_s() {
    let test = "a_killed_canary_holder_is_taken_over_within_30_s";
    let Some(database) = pushgate::testing::fresh_postgres_url(test).await else { return };
    // reqwest needs a TLS provider installed before a client is built (see common/mod.rs).
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let sns = fake_sns().await;
    let endpoint = sns.url.trim_end_matches("/ingest").to_owned();
    let env = [
        ("PUSHGATE_AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", REGION),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ];
    let a = Process::start(&database, &env).await;
    let b = Process::start(&database, &env).await;
    let connection = json!({"tenant_id": "acme", "name": "canary", "source": "aws_sns", "heartbeat_interval_seconds": 60,
        "config": {"topic_arns": [TOPIC], "canary": {"topic_arn": TOPIC, "interval_seconds": 1}}});
    let created =
        reqwest::Client::new().post(a.url("/v1/connections")).bearer_auth(common::ADMIN_TOKEN).json(&connection).send().await.unwrap();
    assert_eq!(created.status(), 201);
    published_once_per_interval(&sns, 0, 3).await;
    let a_holds = eventually("a holder of the canaries", WAIT, async || {
        match (process_holds(&a, "canaries").await, process_holds(&b, "canaries").await) {
            (true, false) => Some(true),
            (false, true) => Some(false),
            (true, true) => panic!("both replicas hold the canaries"),
            (false, false) => None,
        }
    })
    .await;
    let (mut dead, survivor) = if a_holds { (a, b) } else { (b, a) };
    dead.kill().await;
    let killed = Instant::now();
    let before = publishes(&sns).len();
    eventually("a canary published by the survivor", Duration::from_secs(30), async || (publishes(&sns).len() > before).then_some(()))
        .await;
    let took = killed.elapsed();
    assert!(took < Duration::from_secs(30), "taken over after {took:?}");
    assert!(process_holds(&survivor, "canaries").await);
    published_once_per_interval(&sns, before, 3).await;
    println!("canaries taken over {took:?} after the kill");
}

// (c) and (d): alerts.

async fn webhook_connection(server: &TestServer) -> String {
    let c = server
        .create(json!({"tenant_id": "acme", "name": "1 s feed", "source": "webhook", "heartbeat_interval_seconds": 1,
            "grace_seconds": 0, "config": {"auth": {"type": "hmac_sha256", "header": "X-Signature", "secret": WEBHOOK_SECRET}}}))
        .await;
    c["id"].as_str().unwrap().to_owned()
}

async fn heartbeat(server: &TestServer, id: &str) {
    // Fresh and unique, so it counts (a bare heartbeat proves nothing with hmac_sha256).
    let body = common::heartbeat_body();
    let response = server
        .client
        .post(server.url(&format!("/push/webhook/{id}")))
        .header("x-signature", hmac_hex(WEBHOOK_SECRET, &body))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

/// The alerts about connection `id` the receiver took, as (old, new) status pairs, each
/// checked for its signature.
fn alerts(receiver: &Receiver, id: &str) -> Vec<(Option<String>, String)> {
    receiver
        .requests()
        .into_iter()
        .filter(|r| r.status == 200)
        .filter_map(|r| {
            let alert: Value = serde_json::from_slice(&r.body).ok()?;
            (alert["connection_id"] == id).then(|| {
                let expected = format!("sha256={}", hmac_hex(ALERT_SECRET, &r.body));
                assert_eq!(r.header("x-pushgate-signature"), Some(expected.as_str()), "signed over the exact body");
                (alert["old_status"].as_str().map(str::to_owned), alert["new_status"].as_str().unwrap().to_owned())
            })
        })
        .collect()
}

/// The connection's recorded history as (old, new) status pairs.
async fn history(server: &TestServer, id: &str) -> Vec<(Option<String>, String)> {
    server.get_json(&format!("/v1/connections/{id}/history")).await["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["old_status"].as_str().map(str::to_owned), h["new_status"].as_str().unwrap().to_owned()))
        .collect()
}

/// Waits until the history holds `entries` or more and ends in `status`, and every entry
/// was alerted; then lets both monitors run more passes and asserts that each entry was
/// alerted exactly once, in order.
async fn alerted_once(replicas: [&TestServer; 2], receiver: &Receiver, id: &str, entries: usize, status: &str) -> usize {
    let recorded = eventually(&format!("{status} recorded and alerted"), WAIT, async || {
        let recorded = history(replicas[0], id).await;
        let done = recorded.len() >= entries
            && recorded.last().is_some_and(|(_, new)| new == status)
            && alerts(receiver, id).len() >= recorded.len();
        done.then_some(recorded)
    })
    .await;
    for server in replicas {
        server.monitor_passes(3).await;
    }
    let recorded_after = history(replicas[0], id).await;
    let alerted = alerts(receiver, id);
    assert_eq!(alerted, recorded_after, "each recorded transition alerted once, in order");
    assert_eq!(recorded_after[..recorded.len()], recorded[..], "the history only grows");
    alerted.len()
}

#[tokio::test]
async fn two_replicas_alert_each_transition_once_and_hand_the_deliveries_over() {
    let receiver = Receiver::start().await;
    let env = [
        ("PUSHGATE_MONITOR_INTERVAL_MS", "100"),
        ("PUSHGATE_ALERT_WEBHOOK_URL", receiver.url.as_str()),
        ("PUSHGATE_ALERT_WEBHOOK_SECRET", ALERT_SECRET),
    ];
    let Some((first, second)) = two_replicas("replicas_alerts", |b| b.envs(env)).await else { return };
    let id = webhook_connection(&first).await;
    heartbeat(&first, &id).await;
    // connected (requires_action first, if a monitor pass came before the heartbeat),
    // then error once the 1 s heartbeat is missed.
    let n = alerted_once([&first, &second], &receiver, &id, 2, "error").await;
    assert!(n >= 2, "{:?}", alerts(&receiver, &id));

    let (other, took) = stop_holder((first, second), "alerts").await;
    assert!(took <= TAKEOVER, "taken over in {took:?}");
    heartbeat(&other, &id).await;
    let m = alerted_once([&other, &other], &receiver, &id, n + 2, "error").await;
    assert!(m >= n + 2, "connected and error again, alerted by the new holder: {:?}", alerts(&receiver, &id));
    other.stop().await;
}

// A restart: on both backends.

on_both_backends_with!(an_alert_waiting_at_a_stop_is_delivered_after_the_restart);

async fn an_alert_waiting_at_a_stop_is_delivered_after_the_restart(backend: Backend) {
    let receiver = Receiver::start().await;
    receiver.answer(|_| Answer::status(503));
    let env = [
        ("PUSHGATE_MONITOR_INTERVAL_MS", "100"),
        ("PUSHGATE_ALERT_WEBHOOK_URL", receiver.url.as_str()),
        ("PUSHGATE_ALERT_WEBHOOK_SECRET", ALERT_SECRET),
    ];
    // The database outlives the first server (a SQLite file in a directory of the test's).
    let dir = tempfile::tempdir().unwrap();
    let database = match backend {
        Backend::Sqlite => format!("sqlite://{}", dir.path().join("pushgate.db").display()),
        Backend::Postgres => match pushgate::testing::fresh_postgres_url("replicas_restart").await {
            Some(url) => url,
            None => return,
        },
    };
    let server = replica(backend, "replicas_restart").envs(env).database_url(&database).start().await.unwrap();
    let id = webhook_connection(&server).await;
    // The first alert (requires_action) is tried and refused: it waits for its retry.
    receiver.wait_for_requests(1, WAIT).await;
    server.stop().await;
    assert!(alerts(&receiver, &id).is_empty(), "nothing delivered before the restart");
    receiver.answer(|_| Answer::Ok);
    let restarted = replica(backend, "replicas_restart").envs(env).database_url(&database).start().await.unwrap();
    let delivered = eventually("the waiting alert delivered after the restart", WAIT, async || {
        let alerted = alerts(&receiver, &id);
        (!alerted.is_empty()).then_some(alerted)
    })
    .await;
    assert_eq!(delivered[0], (None, "requires_action".to_owned()), "the alert that waited, delivered first");
    restarted.stop().await;
}
