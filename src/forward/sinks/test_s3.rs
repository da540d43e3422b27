//! The s3 sink's tests: key layout, grouping, ids, gzip, answers, and a batch sent twice against moto.
use super::*;
use crate::model::{EventKind, EventRecord, Position, SourceKind};
use chrono::{TimeZone, Utc};
use serde_json::value::RawValue;
use std::io::Read;

fn record(n: u128, tenant: &str, stream: &str, day: u32) -> Record {
    Record::new(EventRecord {
        position: Position::START,
        id: Uuid::from_u128(n),
        connection_id: Uuid::from_u128(0xabc),
        tenant_id: tenant.into(),
        source: SourceKind::Webhook,
        stream: stream.into(),
        kind: EventKind::Alert,
        dedupe_key: format!("k{n}"),
        occurred_at: None,
        received_at: Utc.with_ymd_and_hms(2026, 3, day, 23, 59, 59).unwrap(),
        payload: RawValue::from_string(format!("{{\"n\":{n}}}")).unwrap(),
    })
}

fn config(prefix: &str) -> S3Config {
    S3Config {
        bucket: "archive".into(),
        prefix: prefix.into(),
        region: Some("eu-west-1".into()),
        endpoint_url: None,
        force_path_style: false,
        max_batch_events: 5,
        max_batch_bytes: 4096,
        max_batch_seconds: 2,
    }
}

fn gunzip(bytes: &[u8]) -> String {
    let mut text = String::new();
    flate2::read::GzDecoder::new(bytes).read_to_string(&mut text).unwrap();
    text
}

#[test]
fn keys_are_partitioned_by_tenant_stream_and_date() {
    let destination = Uuid::from_u128(1);
    let batch = Uuid::from_u128(2);
    let records = [record(1, "acme", "webhook_event", 4)];
    let g = &groups(&records)[0];
    assert_eq!(
        object_key("pushgate", destination, g, batch),
        format!("pushgate/tenant_id=acme/stream=webhook_event/date=2026-03-04/{destination}-{batch}.ndjson.gz")
    );
    assert_eq!(
        object_key("", destination, g, batch),
        format!("tenant_id=acme/stream=webhook_event/date=2026-03-04/{destination}-{batch}.ndjson.gz"),
        "no leading / without a prefix"
    );
    assert_eq!(object_key("a/b", destination, g, batch).split('/').take(3).collect::<Vec<_>>(), ["a", "b", "tenant_id=acme"]);
    let odd = [record(1, "acme/eu west", "cloud=aws?x", 4)];
    let key = object_key("p", destination, &groups(&odd)[0], batch);
    assert!(key.starts_with("p/tenant_id=acme_eu_west/stream=cloud_aws_x/date=2026-03-04/"), "{key}");
    assert_eq!(key_safe("Ab-1_.é"), "Ab-1_._");
    assert_eq!(key_safe(""), "_");
}

#[test]
fn limits_follow_the_config() {
    let sink = S3Sink::new(config("pushgate"), Uuid::nil()).unwrap();
    assert_eq!(sink.limits(), Limits { max_events: 5, max_bytes: 4096, linger: Duration::from_secs(2), overhead_per_record: 1 });
}

#[test]
fn a_batch_is_grouped_by_tenant_stream_and_day_in_commit_order() {
    let records = [
        record(1, "acme", "a", 4),
        record(2, "globex", "a", 4),
        record(3, "acme", "b", 4),
        record(4, "acme", "a", 4),
        record(5, "acme", "a", 5),
        record(6, "globex", "a", 4),
    ];
    let groups = groups(&records);
    let shape: Vec<(&str, &str, u32, Vec<u128>)> = groups
        .iter()
        .map(|g| (g.tenant, g.stream, chrono::Datelike::day(&g.date), g.records.iter().map(|r| r.event.id.as_u128()).collect()))
        .collect();
    assert_eq!(
        shape,
        [("acme", "a", 4, vec![1, 4]), ("globex", "a", 4, vec![2, 6]), ("acme", "b", 4, vec![3]), ("acme", "a", 5, vec![5]),]
    );
}

#[test]
fn derived_object_ids_are_stable_and_distinct() {
    let records = [record(1, "acme", "a", 4), record(2, "acme", "b", 4), record(3, "acme", "a", 5), record(4, "ab", "c", 4)];
    let batch = Uuid::from_u128(9);
    let ids: Vec<Uuid> = groups(&records).iter().map(|g| group_id(batch, g)).collect();
    let again: Vec<Uuid> = groups(&records).iter().map(|g| group_id(batch, g)).collect();
    assert_eq!(ids, again, "a retry writes the same keys");
    let distinct: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(distinct.len(), ids.len());
    assert!(!ids.contains(&batch));
    assert_eq!(ids[0].get_version_num(), 8);
    // The tenant and stream are length-prefixed: ("a", "bc") is not ("ab", "c").
    let shifted = [record(5, "a", "bc", 4)];
    assert_ne!(group_id(batch, &groups(&shifted)[0]), ids[3]);
    assert_ne!(group_id(Uuid::from_u128(10), &groups(&records)[0]), ids[0]);
}

#[test]
fn objects_are_gzip_ndjson_of_the_event_objects() {
    let records = [record(1, "acme", "a", 4), record(2, "acme", "a", 4)];
    let group = &groups(&records)[0];
    let text = gunzip(&gzip_ndjson(&group.records).unwrap());
    let lines: Vec<&str> = text.split_terminator('\n').collect();
    assert_eq!(lines.len(), 2);
    for (line, record) in lines.iter().zip(&records) {
        assert_eq!(line.as_bytes(), &record.json[..]);
        let event: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(event["id"], record.event.id.to_string());
    }
    assert!(text.ends_with('\n'));
}

#[test]
fn answers_are_classified() {
    assert_eq!(classify(412, Some("PreconditionFailed")), None, "already there: delivered");
    assert_eq!(classify(409, Some("ConditionalRequestConflict")), Some(Failure::Transient));
    for code in ["NoSuchBucket", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "PermanentRedirect"] {
        assert_eq!(classify(403, Some(code)), Some(Failure::Failing), "{code}");
    }
    assert_eq!(classify(301, None), Some(Failure::Failing), "another region");
    assert_eq!(classify(403, None), Some(Failure::Failing));
    assert_eq!(classify(404, Some("NoSuchBucket")), Some(Failure::Failing));
    assert_eq!(classify(400, Some("AuthorizationHeaderMalformed")), Some(Failure::Failing), "a wrong region");
    assert_eq!(classify(400, Some("EntityTooLarge")), Some(Failure::RefusedBatch));
    assert_eq!(classify(400, Some("InvalidArgument")), Some(Failure::RefusedBatch));
    assert_eq!(classify(413, None), Some(Failure::RefusedBatch));
    assert_eq!(classify(503, Some("SlowDown")), Some(Failure::Transient));
    assert_eq!(classify(500, Some("InternalError")), Some(Failure::Transient));
    assert_eq!(classify(429, None), Some(Failure::Transient));
    assert_eq!(classify(502, None), Some(Failure::Transient));
    assert_eq!(classify(400, Some("RequestTimeout")), Some(Failure::Transient));
    assert_eq!(classify(400, Some("SomethingElse")), Some(Failure::Failing), "never dead-lettered for an unknown reason");
}

/// Against moto (`PUSHGATE_TEST_MOTO_URL`, started by scripts/test): the same batch
/// sent twice writes each object once; the second send finds them there (412) and
/// succeeds. Skipped without moto.
#[tokio::test]
async fn a_batch_sent_twice_is_written_once() {
    let Some(moto) = crate::testing::moto_url("a_batch_sent_twice_is_written_once") else { return };
    std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    let bucket = format!("twice-{}", Uuid::new_v4().simple());
    let mut config = config("");
    config.bucket = bucket.clone();
    config.region = Some("us-east-1".into());
    config.endpoint_url = Some(url::Url::parse(&moto).unwrap());
    config.force_path_style = true;
    let sink = S3Sink::new(config, Uuid::from_u128(77)).unwrap();
    let client = sink.client().await.unwrap().clone();
    client.create_bucket().bucket(&bucket).send().await.unwrap();
    let batch = Uuid::new_v4();
    let records = [record(1, "acme", "a", 4), record(2, "globex", "a", 4), record(3, "acme", "a", 4)];

    sink.send(batch, &records).await.unwrap();
    let listed = |client: aws_sdk_s3::Client| {
        let bucket = bucket.clone();
        async move {
            let list = client.list_objects_v2().bucket(bucket).send().await.unwrap();
            let mut keys: Vec<String> = list.contents().iter().filter_map(|o| o.key().map(str::to_owned)).collect();
            keys.sort();
            keys
        }
    };
    let first = listed(client.clone()).await;
    assert_eq!(first.len(), 2, "{first:?}");
    sink.send(batch, &records).await.expect("already there counts as delivered");
    assert_eq!(listed(client.clone()).await, first, "no second object");

    let acme_key = first.iter().find(|k| k.starts_with("tenant_id=acme/")).unwrap();
    let object = client.get_object().bucket(&bucket).key(acme_key).send().await.unwrap();
    assert_eq!(object.content_type(), Some("application/x-ndjson"));
    assert_eq!(object.content_encoding(), Some("gzip"));
    assert_eq!(object.metadata().and_then(|m| m.get(EVENTS_METADATA)).map(String::as_str), Some("2"));
    let body = object.body.collect().await.unwrap().into_bytes();
    let expected: Vec<u8> = [&records[0], &records[2]].iter().flat_map(|r| [&r.json[..], b"\n"].concat()).collect();
    assert_eq!(gunzip(&body).as_bytes(), &expected[..]);

    // A single-group batch is written under the batch id itself.
    let single = Uuid::new_v4();
    sink.send(single, &records[..1]).await.unwrap();
    let keys = listed(client.clone()).await;
    let wanted = format!("tenant_id=acme/stream=a/date=2026-03-04/{}-{single}.ndjson.gz", Uuid::from_u128(77));
    assert!(keys.contains(&wanted), "{keys:?}");

    // A missing bucket is the operator's to fix.
    let mut missing = sink.config.clone();
    missing.bucket = format!("missing-{}", Uuid::new_v4().simple());
    let e = S3Sink::new(missing, Uuid::nil()).unwrap().send(batch, &records).await.unwrap_err();
    assert_eq!(e.failure, Failure::Failing, "{e:?}");
    assert!(e.message.contains("NoSuchBucket"), "{}", e.message);
    assert_eq!(e.accepted, 0);
}
