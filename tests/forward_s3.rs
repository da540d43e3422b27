//! The `s3` destination against moto standing in for S3 (`PUSHGATE_TEST_MOTO_URL`, started
//! by `scripts/test`): batches land as gzip NDJSON objects under
//! `{prefix}/tenant_id=…/stream=…/date=…/{destination id}-{batch id}.ndjson.gz`, one tenant
//! and stream each, every event exactly once; a missing bucket makes the destination
//! failing until it exists. On SQLite and PostgreSQL. Skipped, loudly, without moto.

mod common;

use std::collections::BTreeSet;
use std::io::Read;
use std::time::Duration;

use common::{hmac_webhook, Backend, TestServer};
use serde_json::{json, Value};

on_both_backends_with!(batches_land_as_partitioned_objects_once_each, a_missing_bucket_is_failing_until_it_exists);

const REGION: &str = "us-east-1";
const WAIT: Duration = Duration::from_secs(60);

/// The AWS SDK (pushgate's and the test's) reads credentials from the environment: moto
/// accepts any.
fn aws_environment() {
    std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
}

async fn s3_client(moto: &str) -> aws_sdk_s3::Client {
    let config =
        aws_config::defaults(aws_config::BehaviorVersion::latest()).endpoint_url(moto).region(aws_config::Region::new(REGION)).load().await;
    aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&config).force_path_style(true).build())
}

fn bucket_name(test: &str, backend: Backend) -> String {
    format!(
        "{}-{:?}-{}",
        test.replace('_', "-").chars().take(30).collect::<String>(),
        backend,
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
    .to_ascii_lowercase()
}

/// Every object under `prefix`: its key and its lines, parsed.
async fn objects(client: &aws_sdk_s3::Client, bucket: &str) -> Vec<(String, Vec<Value>)> {
    let listed = client.list_objects_v2().bucket(bucket).send().await.unwrap();
    let mut out = Vec::new();
    for object in listed.contents() {
        let key = object.key().unwrap().to_owned();
        let got = client.get_object().bucket(bucket).key(&key).send().await.unwrap();
        assert_eq!(got.content_type(), Some("application/x-ndjson"), "{key}");
        let body = got.body.collect().await.unwrap().into_bytes();
        let mut text = String::new();
        flate2::read::GzDecoder::new(&body[..]).read_to_string(&mut text).unwrap();
        out.push((key, text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()));
    }
    out
}

async fn push(server: &TestServer, connection: &str, n: usize) {
    let body = json!({"alert": "impossible travel", "n": n}).to_string().into_bytes();
    assert_eq!(server.push_signed(connection, "s3cret", &body).await, 200);
}

fn destination(bucket: &str, moto: &str) -> Value {
    json!({"name": "archive", "kind": "s3", "config": {"bucket": bucket, "prefix": "lake/pushgate", "region": REGION,
        "endpoint_url": moto, "force_path_style": true, "max_batch_events": 5, "max_batch_seconds": 0}})
}

async fn batches_land_as_partitioned_objects_once_each(backend: Backend) {
    let test = "batches_land_as_partitioned_objects_once_each";
    let Some(moto) = pushgate::testing::moto_url(test) else { return };
    aws_environment();
    let client = s3_client(&moto).await;
    let bucket = bucket_name(test, backend);
    client.create_bucket().bucket(&bucket).send().await.unwrap();
    let Some(server) = TestServer::builder(backend, test).fast_forwarding().start().await else { return };
    let acme = server.create(hmac_webhook("acme", "s3cret")).await["id"].as_str().unwrap().to_owned();
    let globex = server.create(hmac_webhook("globex", "s3cret")).await["id"].as_str().unwrap().to_owned();
    for n in 0..12 {
        push(&server, if n % 3 == 0 { &globex } else { &acme }, n).await;
    }
    let d = server.create_destination(destination(&bucket, &moto)).await;
    let id = d["id"].as_str().unwrap().to_owned();
    let done = server.wait_for_destination(&id, "all delivered", WAIT, |d| d["counters"]["delivered"] == 12 && d["lag_events"] == 0).await;
    assert_eq!(done["status"], "ok", "{done}");

    let feed = server.feed("").await;
    assert_eq!(feed.len(), 12);
    let stored = objects(&client, &bucket).await;
    assert!(stored.len() >= 3, "batches of at most 5 events, two tenants: {:?}", stored.iter().map(|o| &o.0).collect::<Vec<_>>());
    let mut seen = Vec::new();
    for (key, lines) in &stored {
        assert!(!lines.is_empty() && lines.len() <= 5, "{key}: {} events", lines.len());
        let first = &lines[0];
        let date = first["received_at"].as_str().unwrap()[..10].to_owned();
        let expected_dir = format!(
            "lake/pushgate/tenant_id={}/stream={}/date={date}/",
            first["tenant_id"].as_str().unwrap(),
            first["stream"].as_str().unwrap()
        );
        assert!(key.starts_with(&expected_dir), "{key} is not under {expected_dir}");
        let name = &key[expected_dir.len()..];
        assert!(name.starts_with(&format!("{id}-")) && name.ends_with(".ndjson.gz"), "{key}");
        for line in lines {
            assert_eq!(
                (&line["tenant_id"], &line["stream"]),
                (&first["tenant_id"], &first["stream"]),
                "one tenant and stream per object: {key}"
            );
            seen.push(line.clone());
        }
    }
    assert_eq!(seen.len(), 12, "every event exactly once");
    let by_id = |events: &[Value]| {
        events.iter().map(|e| (e["id"].as_str().unwrap().to_owned(), e.clone())).collect::<std::collections::BTreeMap<_, _>>()
    };
    assert_eq!(by_id(&seen), by_id(&feed), "each object line is the event object of the change feed");
    // Within one tenant's objects, commit order is kept.
    for tenant in ["acme", "globex"] {
        let mut ordered: Vec<(String, usize)> = Vec::new();
        for (key, lines) in &stored {
            for (i, l) in lines.iter().enumerate() {
                if l["tenant_id"] == tenant {
                    ordered.push((key.clone(), i));
                }
            }
        }
        let feed_ids: Vec<_> = feed.iter().filter(|e| e["tenant_id"] == tenant).map(|e| e["id"].as_str().unwrap().to_owned()).collect();
        let per_object: BTreeSet<_> = stored
            .iter()
            .map(|(_, lines)| {
                lines.iter().filter(|l| l["tenant_id"] == tenant).map(|l| l["id"].as_str().unwrap().to_owned()).collect::<Vec<_>>()
            })
            .filter(|ids| !ids.is_empty())
            .collect();
        for ids in per_object {
            let positions: Vec<_> = ids.iter().map(|i| feed_ids.iter().position(|f| f == i).unwrap()).collect();
            assert!(positions.windows(2).all(|w| w[0] < w[1]), "{tenant}: an object keeps commit order: {positions:?}");
        }
    }
    server.stop().await;
}

async fn a_missing_bucket_is_failing_until_it_exists(backend: Backend) {
    let test = "a_missing_bucket_is_failing_until_it_exists";
    let Some(moto) = pushgate::testing::moto_url(test) else { return };
    aws_environment();
    let client = s3_client(&moto).await;
    let bucket = bucket_name(test, backend);
    let Some(server) = TestServer::builder(backend, test).fast_forwarding().start().await else { return };
    let acme = server.create(hmac_webhook("acme", "s3cret")).await["id"].as_str().unwrap().to_owned();
    for n in 0..3 {
        push(&server, &acme, n).await;
    }
    let d = server.create_destination(destination(&bucket, &moto)).await;
    let id = d["id"].as_str().unwrap().to_owned();
    let failing = server.wait_for_destination(&id, "failing", WAIT, |d| d["status"] == "failing").await;
    let message = failing["last_error"]["message"].as_str().unwrap();
    assert!(message.contains("NoSuchBucket") || message.contains("does not exist"), "{message}");
    assert_eq!(failing["lag_events"], 3, "{failing}");
    assert!(!message.contains("testing"), "no credentials in the error: {message}");

    // The operator creates the bucket and asks for a retry at once.
    client.create_bucket().bucket(&bucket).send().await.unwrap();
    let resumed = server.admin(reqwest::Method::POST, &format!("/v1/destinations/{id}/resume")).send().await.unwrap();
    assert_eq!(resumed.status(), 200);
    let ok = server.wait_for_destination(&id, "ok", WAIT, |d| d["status"] == "ok" && d["lag_events"] == 0).await;
    assert_eq!(ok["counters"]["delivered"], 3, "{ok}");
    let stored = objects(&client, &bucket).await;
    let lines: usize = stored.iter().map(|(_, l)| l.len()).sum();
    assert_eq!(lines, 3, "every event once: {:?}", stored.iter().map(|o| &o.0).collect::<Vec<_>>());
    server.stop().await;
}
