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
            Err(e @ SdkError::DispatchFailure(_)) => {
                Err(self.not_sent(format!("S3 could not be reached: {}", DisplayErrorContext(&e))).await)
            }
            Err(SdkError::TimeoutError(_)) => {
                Err(SinkError::transient(format!("S3 did not answer within {}s", OPERATION_TIMEOUT.as_secs())))
            }
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
            "NoSuchBucket"
            | "AccessDenied"
            | "InvalidAccessKeyId"
            | "SignatureDoesNotMatch"
            | "PermanentRedirect"
            | "AuthorizationHeaderMalformed"
            | "ExpiredToken"
            | "InvalidToken"
            | "TokenRefreshRequired"
            | "AllAccessDisabled"
            | "AccountProblem"
            | "InvalidBucketName"
            | "InvalidBucketState"
            | "KMS.DisabledException"
            | "KMS.NotFoundException",
        ) => Some(Failure::Failing),
        (
            _,
            "SlowDown"
            | "RequestTimeout"
            | "InternalError"
            | "ServiceUnavailable"
            | "BadDigest"
            | "IncompleteBody"
            | "RequestTimeTooSkewed",
        ) => Some(Failure::Transient),
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
    let date = group.date.format("%Y-%m-%d").to_string();
    let (tenant, stream) = (group.tenant.as_bytes(), group.stream.as_bytes());
    super::derived_id(&[
        b"pushgate s3 object\0",
        batch_id.as_bytes(),
        &(tenant.len() as u64).to_be_bytes(),
        tenant,
        &(stream.len() as u64).to_be_bytes(),
        stream,
        date.as_bytes(),
    ])
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
#[path = "test_s3.rs"]
mod tests;
