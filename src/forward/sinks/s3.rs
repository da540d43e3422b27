//! The `s3` sink: each batch becomes gzip-compressed NDJSON objects (one event object of
//! INTERFACE.md section 5 per line), one object per tenant, stream and day of
//! `received_at` (UTC) in the batch, at
//! `{prefix}/tenant_id={tenant}/stream={stream}/date={YYYY-MM-DD}/{destination id}-{id}.ndjson.gz`.
//! `id` is the batch id when the batch is one such group, else an id derived from the
//! batch id and the group, so a retried batch writes the same keys.
//!
//! Every object is written with `If-None-Match: *`: a 412 means an earlier attempt wrote
//! it and counts as delivered. A failure part-way reports nothing accepted, so the whole
//! batch is sent again under its id: the groups already written answer 412 and nothing is
//! stored twice.
//!
//! Credentials come from the standard AWS chain (environment, profile, SSO, web identity,
//! container and instance roles), loaded on the first send; the region from the config,
//! else from the chain. Answers are read as INTERFACE.md section 7 says: a missing
//! bucket, refused credentials, 403, 404 and a wrong region (301) make the destination
//! failing; timeouts, 429, 5xx and `SlowDown` are retried; a refusal of the object itself
//! (`EntityTooLarge`, `InvalidArgument`, 413) refuses the batch.
//!
//! One file over 400 lines: most of it is the tests of the key layout, the grouping and
//! the classification of S3's answers, next to what they test.

use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::ProvideCredentials;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use chrono::NaiveDate;
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;
use uuid::Uuid;

use super::{Failure, Limits, Record, Sink, SinkError};
use crate::forward::config::S3Config;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// One PUT of up to the largest batch (64 MiB before compression) over a slow link.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(300);
/// The object metadata (`x-amz-meta-pushgate-events`) holding the number of events.
pub const EVENTS_METADATA: &str = "pushgate-events";

pub struct S3Sink {
    config: S3Config,
    destination_id: Uuid,
    sdk: OnceCell<SdkConfig>,
    client: OnceCell<aws_sdk_s3::Client>,
}

impl S3Sink {
    pub fn new(config: S3Config, destination_id: Uuid) -> Result<S3Sink, String> {
        Ok(S3Sink { config, destination_id, sdk: OnceCell::new(), client: OnceCell::new() })
    }

    async fn sdk(&self) -> &SdkConfig {
        self.sdk
            .get_or_init(|| async {
                let timeouts = TimeoutConfig::builder().connect_timeout(CONNECT_TIMEOUT).operation_timeout(OPERATION_TIMEOUT).build();
                // The forwarding core retries with backoff and shows the destination
                // failing meanwhile; retries inside the SDK would only hide that.
                aws_config::defaults(BehaviorVersion::latest()).timeout_config(timeouts).retry_config(RetryConfig::disabled()).load().await
            })
            .await
    }

    /// The client, built on the first send; an error while no region is known.
    async fn client(&self) -> Result<&aws_sdk_s3::Client, SinkError> {
        self.client
            .get_or_try_init(|| async {
                let sdk = self.sdk().await;
                let region = match (&self.config.region, sdk.region()) {
                    (Some(region), _) => Region::new(region.clone()),
                    (None, Some(region)) => region.clone(),
                    (None, None) => {
                        return Err(SinkError::failing(
                            "no AWS region: set `region` in the destination's config or AWS_REGION for pushgate",
                        ))
                    }
                };
                let mut builder = aws_sdk_s3::config::Builder::from(sdk).region(region).force_path_style(self.config.force_path_style);
                if let Some(url) = &self.config.endpoint_url {
                    // S3-compatible stores do not all take the checksums the SDK adds by
                    // default; sent only where the operation requires one.
                    builder = builder
                        .endpoint_url(url.as_str().trim_end_matches('/'))
                        .request_checksum_calculation(aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired);
                }
                Ok(aws_sdk_s3::Client::from_conf(builder.build()))
            })
            .await
    }

    /// Writes one group's object; `Ok` also when it is already there.
    async fn put(&self, client: &aws_sdk_s3::Client, key: &str, group: &Group<'_>) -> Result<(), SinkError> {
        let body = gzip_ndjson(&group.records).map_err(|e| SinkError::transient(format!("cannot compress the batch: {e}")))?;
        let sent = client
            .put_object()
            .bucket(&self.config.bucket)
            .key(key)
            .if_none_match("*")
            .content_type("application/x-ndjson")
            .content_encoding("gzip")
            .metadata(EVENTS_METADATA, group.records.len().to_string())
            .body(ByteStream::from(body))
            .send()
            .await;
        match sent {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(service)) => {
                let status = service.raw().status().as_u16();
                let e = service.err();
                match classify(status, e.code()) {
                    None => Ok(()),
                    Some(failure) => Err(SinkError::new(
                        failure,
                        format!(
                            "S3 answered {status} {} for s3://{}/{key}: {}",
                            e.code().unwrap_or("(no code)"),
                            self.config.bucket,
                            e.message().unwrap_or("no message")
                        ),
                    )),
                }
            }
            Err(e @ SdkError::DispatchFailure(_)) => Err(self.not_sent(format!("S3 could not be reached: {}", DisplayErrorContext(&e))).await),
            Err(SdkError::TimeoutError(_)) => Err(SinkError::transient(format!("S3 did not answer within {}s", OPERATION_TIMEOUT.as_secs()))),
            Err(e) => Err(SinkError::transient(format!("S3 could not be reached: {}", DisplayErrorContext(&e)))),
        }
    }

    /// A request that got no answer: missing credentials (the SDK does not send without) are
    /// the operator's to fix; anything else is an outage.
    async fn not_sent(&self, unreachable: String) -> SinkError {
        let credentials = match self.sdk().await.credentials_provider() {
            None => Err(None),
            Some(provider) => provider.provide_credentials().await.map(|_| ()).map_err(Some),
        };
        match credentials {
            Err(None | Some(CredentialsError::CredentialsNotLoaded(_))) => {
                SinkError::failing("no AWS credentials: none found in the standard AWS chain (environment, profile, roles)")
            }
            Err(Some(e)) => SinkError::transient(format!("AWS credentials could not be loaded: {}", DisplayErrorContext(&e))),
            Ok(()) => SinkError::transient(unreachable),
        }
    }
}

/// What an S3 error answer means; `None`: the object is already there (delivered).
fn classify(status: u16, code: Option<&str>) -> Option<Failure> {
    match (status, code.unwrap_or("")) {
        (412, _) | (_, "PreconditionFailed") => None,
        // A concurrent write to the same key (an earlier attempt still in flight).
        (409, _) | (_, "ConditionalRequestConflict") => Some(Failure::Transient),
        (
            _,
            "NoSuchBucket" | "AccessDenied" | "InvalidAccessKeyId" | "SignatureDoesNotMatch" | "PermanentRedirect"
            | "AuthorizationHeaderMalformed" | "ExpiredToken" | "InvalidToken" | "TokenRefreshRequired" | "AllAccessDisabled"
            | "AccountProblem" | "InvalidBucketName" | "InvalidBucketState" | "KMS.DisabledException" | "KMS.NotFoundException",
        ) => Some(Failure::Failing),
        (_, "SlowDown" | "RequestTimeout" | "InternalError" | "ServiceUnavailable" | "BadDigest" | "IncompleteBody" | "RequestTimeTooSkewed") => {
            Some(Failure::Transient)
        }
        (_, "EntityTooLarge" | "InvalidArgument") | (413, _) => Some(Failure::RefusedBatch),
        (408 | 429 | 500..=599, _) => Some(Failure::Transient),
        // 301 (another region), 401, 403, 404 and any other answer splitting cannot help.
        _ => Some(Failure::Failing),
    }
}

/// The events of a batch that share a tenant, a stream and a day of `received_at`.
#[derive(Debug)]
struct Group<'a> {
    tenant: &'a str,
    stream: &'a str,
    date: NaiveDate,
    records: Vec<&'a Record>,
}

/// The groups of `records`, in the order their first events come, each in commit order.
fn groups(records: &[Record]) -> Vec<Group<'_>> {
    let mut index: HashMap<(&str, &str, NaiveDate), usize> = HashMap::new();
    let mut groups: Vec<Group<'_>> = Vec::new();
    for record in records {
        let e = &record.event;
        let group = (e.tenant_id.as_str(), e.stream.as_str(), e.received_at.date_naive());
        let i = *index.entry(group).or_insert_with(|| {
            groups.push(Group { tenant: group.0, stream: group.1, date: group.2, records: Vec::new() });
            groups.len() - 1
        });
        groups[i].records.push(record);
    }
    groups
}

/// The id of one group's object when a batch holds several: the batch id and the group,
/// hashed into a UUID (version 8), so every retry of the batch writes the same key.
fn group_id(batch_id: Uuid, group: &Group<'_>) -> Uuid {
    let mut hash = Sha256::new();
    hash.update(b"pushgate s3 object\0");
    hash.update(batch_id.as_bytes());
    for part in [group.tenant, group.stream] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part.as_bytes());
    }
    hash.update(group.date.format("%Y-%m-%d").to_string().as_bytes());
    let digest = hash.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    Uuid::new_v8(bytes)
}

/// `text` as one safe key segment: `A-Z a-z 0-9 - _ .` kept, anything else `_` (never empty).
fn key_safe(text: &str) -> String {
    if text.is_empty() {
        return "_".into();
    }
    text.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' }).collect()
}

/// The object key of a group written under `id`.
fn object_key(prefix: &str, destination_id: Uuid, group: &Group<'_>, id: Uuid) -> String {
    let path = format!(
        "tenant_id={}/stream={}/date={}/{destination_id}-{id}.ndjson.gz",
        key_safe(group.tenant),
        key_safe(group.stream),
        group.date.format("%Y-%m-%d")
    );
    if prefix.is_empty() {
        path
    } else {
        format!("{prefix}/{path}")
    }
}

fn gzip_ndjson(records: &[&Record]) -> std::io::Result<Vec<u8>> {
    let size: usize = records.iter().map(|r| r.json.len() + 1).sum();
    let mut encoder = flate2::write::GzEncoder::new(Vec::with_capacity(size / 4), flate2::Compression::default());
    for record in records {
        encoder.write_all(&record.json)?;
        encoder.write_all(b"\n")?;
    }
    encoder.finish()
}

#[async_trait::async_trait]
impl Sink for S3Sink {
    fn limits(&self) -> Limits {
        Limits {
            max_events: self.config.max_batch_events,
            max_bytes: self.config.max_batch_bytes,
            linger: Duration::from_secs(self.config.max_batch_seconds),
            overhead_per_record: 1,
        }
    }

    async fn send(&self, batch_id: Uuid, records: &[Record]) -> Result<(), SinkError> {
        let client = self.client().await?;
        let groups = groups(records);
        let single = groups.len() == 1;
        for group in &groups {
            let id = if single { batch_id } else { group_id(batch_id, group) };
            let key = object_key(&self.config.prefix, self.destination_id, group, id);
            // Nothing counts as accepted until every object is written: the retry of the
            // whole batch finds the written ones already there.
            self.put(client, &key, group).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
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
            .map(|g| {
                (g.tenant, g.stream, chrono::Datelike::day(&g.date), g.records.iter().map(|r| r.event.id.as_u128()).collect())
            })
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
}
