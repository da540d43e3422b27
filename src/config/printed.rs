//! The one view of a configuration anything prints (`check-config`, `Debug`): flat, keyed
//! as in the file, in the order of [`DEFAULTS`](super::layers::DEFAULTS), with no secret
//! and no credential inside a URL.

use std::path::Path;

use serde::{Serialize, Serializer};

use super::alerts::origin_only;
use super::database::redact_password;
use super::{Config, LogFormat, MasterKeySource, Secret, TrustedProxies};

/// Shown for a secret that is set.
const MASKED: &str = "***";

#[derive(Serialize)]
pub(super) struct Printed<'a> {
    listen: &'a str,
    /// May hold a password (`postgres://user:password@host/db`): printed without it.
    #[serde(serialize_with = "without_password")]
    database_url: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    public_url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    admin_token: Option<&'a Secret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    master_key: Option<&'static str>,
    monitor_interval_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    sns_cert_dir: Option<&'a Path>,
    sns_cert_fetch: bool,
    google_jwks: &'a str,
    microsoft_jwks: &'a str,
    max_body_bytes: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    aws_endpoint_url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pubsub_endpoint: Option<&'a str>,
    graph_endpoint: &'a str,
    microsoft_login_endpoint: &'a str,
    o365_endpoints: &'a [String],
    graph_upkeep: bool,
    /// Often a bearer URL (the path is the credential): printed as scheme and host only.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "scheme_and_host")]
    alert_webhook_url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    alert_webhook_secret: Option<&'static str>,
    log: &'a str,
    log_format: LogFormat,
    request_timeout_ms: u64,
    max_concurrent_requests: usize,
    max_buffered_body_bytes: usize,
    trusted_proxies: &'a TrustedProxies,
    event_retention_hours: f64,
    forward_max_backlog_hours: f64,
}

impl<'a> Printed<'a> {
    pub(super) fn of(config: &'a Config) -> Printed<'a> {
        // Every field named, so a new setting cannot be left out of what is printed.
        let Config {
            listen: _,
            public_url,
            http,
            trusted_proxies,
            database: _,
            secrets,
            keys,
            cloud,
            graph,
            alerts,
            monitor_interval,
            retention,
            log,
            written,
        } = config;
        Printed {
            listen: &written.listen,
            database_url: &written.database_url,
            public_url: public_url.as_deref(),
            admin_token: secrets.admin_token.as_ref(),
            master_key: matches!(secrets.master_key, MasterKeySource::Configured(_)).then_some(MASKED),
            monitor_interval_ms: whole_millis(*monitor_interval),
            sns_cert_dir: keys.sns_certs.pinned_dir.as_deref(),
            sns_cert_fetch: keys.sns_certs.fetch,
            google_jwks: &keys.google_jwks,
            microsoft_jwks: &keys.microsoft_jwks,
            max_body_bytes: http.max_body_bytes,
            aws_endpoint_url: cloud.aws.as_deref(),
            pubsub_endpoint: cloud.pubsub.as_deref(),
            graph_endpoint: &graph.endpoint,
            microsoft_login_endpoint: &graph.login_endpoint,
            o365_endpoints: &graph.o365_endpoints,
            graph_upkeep: graph.upkeep,
            alert_webhook_url: alerts.as_ref().map(|a| a.url.as_str()),
            // A secret set without its URL is unused, but shown as set all the same.
            alert_webhook_secret: (alerts.is_some() || written.lone_alert_secret).then_some(MASKED),
            log: &log.filter,
            log_format: log.format,
            request_timeout_ms: whole_millis(http.request_timeout),
            max_concurrent_requests: http.max_concurrent_requests,
            max_buffered_body_bytes: http.max_buffered_body_bytes,
            trusted_proxies,
            event_retention_hours: retention.event_hours,
            forward_max_backlog_hours: retention.max_backlog_hours,
        }
    }
}

/// Durations are configured in whole milliseconds of a `u64`, so this is exact.
fn whole_millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn without_password<S: Serializer>(url: &&str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&redact_password(url))
}

fn scheme_and_host<S: Serializer>(url: &Option<&str>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&origin_only(url.unwrap_or_default()))
}
