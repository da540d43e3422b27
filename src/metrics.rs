//! pushgate's Prometheus metrics (names and labels as `infra/README.md` lists them, which
//! the alert rules and the Grafana dashboard read).
//!
//! Each server owns its own recorder ([`Metrics`]) instead of installing the process-wide
//! one: several servers in one process (the integration tests) then never share counts,
//! and nothing global has to be set before a server can start. Events happen in two kinds:
//!
//! - what only the process sees (HTTP requests and their latency, refused pushes) is
//!   counted as it happens in the server's recorder;
//! - what the store already holds (each connection's status, last heartbeat and data,
//!   event and duplicate counts) is rendered at scrape time from the connections, in a
//!   recorder built for that scrape, so a deleted connection's series disappear with it
//!   and replicas sharing one database report the same values.

use chrono::{DateTime, Utc};
use metrics::{Key, Label, Metadata, Recorder, SharedString, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

use crate::model::{Backlog, Connection, Destination, Status};

pub const REJECTIONS_TOTAL: &str = "pushgate_rejections_total";
pub const RAW_EVENTS_TOTAL: &str = "pushgate_raw_events_total";
pub const REQUESTS_TOTAL: &str = "pushgate_requests_total";
pub const REQUEST_DURATION_SECONDS: &str = "pushgate_request_duration_seconds";
pub const CONNECTION_STATUS: &str = "pushgate_connection_status";
pub const SECONDS_SINCE_HEARTBEAT: &str = "pushgate_connection_seconds_since_heartbeat";
pub const SECONDS_SINCE_DATA: &str = "pushgate_connection_seconds_since_data";
pub const EVENTS_TOTAL: &str = "pushgate_events_total";
pub const DUPLICATES_TOTAL: &str = "pushgate_duplicates_total";
pub const RETENTION_PASSES_TOTAL: &str = "pushgate_retention_passes_total";
pub const RETENTION_DELETED_TOTAL: &str = "pushgate_retention_deleted_events_total";
pub const RETENTION_EXPIRED_TOTAL: &str = "pushgate_retention_expired_events_total";
pub const JOB_LEASE_HELD: &str = "pushgate_job_lease_held";
pub const ALERTS_DROPPED_TOTAL: &str = "pushgate_alerts_dropped_total";
pub const O365_FETCH_FAILURES_TOTAL: &str = "pushgate_o365_fetch_failures_total";
pub const O365_RECORDS_FETCHED_TOTAL: &str = "pushgate_o365_records_fetched_total";
pub const O365_BLOBS_EXPIRED_TOTAL: &str = "pushgate_o365_blobs_expired_total";
pub const O365_FETCH_BACKLOG: &str = "pushgate_o365_fetch_backlog";
pub const GRAPH_CATCH_UP_ITEMS_TOTAL: &str = "pushgate_graph_catch_up_items_total";
pub const GRAPH_CATCH_UP_ROUNDS_TOTAL: &str = "pushgate_graph_catch_up_rounds_total";
pub const GRAPH_CATCH_UP_THROTTLED_TOTAL: &str = "pushgate_graph_catch_up_throttled_total";

pub const FORWARD_DELIVERED_TOTAL: &str = "pushgate_forward_delivered_total";
pub const FORWARD_DEAD_LETTERS_TOTAL: &str = "pushgate_forward_dead_letters_total";
pub const FORWARD_RETRIES_TOTAL: &str = "pushgate_forward_retries_total";
pub const FORWARD_EXPIRED_TOTAL: &str = "pushgate_forward_expired_total";
pub const FORWARD_LAG_EVENTS: &str = "pushgate_forward_lag_events";
pub const FORWARD_LAG_SECONDS: &str = "pushgate_forward_lag_seconds";
pub const FORWARD_STATUS: &str = "pushgate_forward_destination_status";

/// The `source` label of a refused push that named no known push route.
pub const UNKNOWN_SOURCE: &str = "unknown";

/// Request latency buckets, in seconds: from a cached heartbeat (well under a millisecond)
/// to the request timeout's order of magnitude.
const LATENCY_BUCKETS: [f64; 14] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// The `Metadata` the recorder asks for; the Prometheus recorder ignores it.
static METADATA: Metadata<'static> = Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

/// The metrics one server counts as it runs, and the scrape that renders them.
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(REQUEST_DURATION_SECONDS.to_owned()), &LATENCY_BUCKETS)
            .map(PrometheusBuilder::build_recorder)
            // Only an empty bucket list is refused, and the list above is not empty.
            .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
        recorder.describe_counter(
            REJECTIONS_TOTAL.into(),
            None,
            SharedString::const_str("Pushes refused, by the push route's source and the reason code"),
        );
        recorder.describe_counter(
            RAW_EVENTS_TOTAL.into(),
            None,
            SharedString::const_str("Authentic pushes (or Graph notifications) that could not be decoded, stored whole as raw events, by source; a retry is counted again"),
        );
        recorder.describe_counter(
            REQUESTS_TOTAL.into(),
            None,
            SharedString::const_str("HTTP requests by route template, method and response status code"),
        );
        recorder.describe_histogram(
            REQUEST_DURATION_SECONDS.into(),
            Some(Unit::Seconds),
            SharedString::const_str("HTTP request latency by route template and method"),
        );
        recorder.describe_counter(
            RETENTION_PASSES_TOTAL.into(),
            None,
            SharedString::const_str("Retention passes this process ran (one process at a time runs them)"),
        );
        recorder.describe_counter(RETENTION_DELETED_TOTAL.into(), None, SharedString::const_str("Events retention deleted"));
        recorder.describe_counter(
            RETENTION_EXPIRED_TOTAL.into(),
            None,
            SharedString::const_str("Events retention deleted before a destination that wanted them delivered them"),
        );
        recorder.describe_gauge(
            JOB_LEASE_HELD.into(),
            None,
            SharedString::const_str("1 while this replica holds the lease of the job (and runs it), else 0"),
        );
        recorder.describe_counter(
            ALERTS_DROPPED_TOTAL.into(),
            None,
            SharedString::const_str("Queued alerts dropped undelivered because the alert queue was full"),
        );
        recorder.describe_counter(
            O365_FETCH_FAILURES_TOTAL.into(),
            None,
            SharedString::const_str(
                "Office 365 content fetches that failed (and are tried again) or were refused, by reason (this process)",
            ),
        );
        recorder.describe_counter(
            GRAPH_CATCH_UP_ITEMS_TOTAL.into(),
            None,
            SharedString::const_str("Changes a Graph catch-up read with a delta query, by outcome: stored, or duplicate (stored already)"),
        );
        recorder.describe_counter(
            GRAPH_CATCH_UP_ROUNDS_TOTAL.into(),
            None,
            SharedString::const_str("Graph catch-up rounds, by outcome: caught_up, first_read (the state learned), not_closable"),
        );
        recorder.describe_counter(
            GRAPH_CATCH_UP_THROTTLED_TOTAL.into(),
            None,
            SharedString::const_str("Delta queries Graph answered 429 (the catch-up waits for its Retry-After)"),
        );
        let handle = recorder.handle();
        Metrics { recorder, handle }
    }

    /// Counts one refused push. `source` is the push route's source name, or
    /// [`UNKNOWN_SOURCE`] when the route names none.
    pub fn rejection(&self, source: &str, reason: &str) {
        let key = Key::from_parts(REJECTIONS_TOTAL, vec![label("source", source), label("reason", reason)]);
        self.recorder.register_counter(&key, &METADATA).increment(1);
    }

    /// Counts `count` raw events of a committed push from `source` (duplicates included:
    /// each is a push that could not be decoded).
    pub fn raw_events(&self, source: &str, count: u32) {
        let key = Key::from_parts(RAW_EVENTS_TOTAL, vec![label("source", source)]);
        self.recorder.register_counter(&key, &METADATA).increment(u64::from(count));
    }

    /// Counts one answered HTTP request. `route` is a route template, never a raw path,
    /// so ids in paths cannot multiply the series.
    pub fn request(&self, route: &str, method: &str, code: u16, seconds: f64) {
        let counter =
            Key::from_parts(REQUESTS_TOTAL, vec![label("route", route), label("method", method), label("code", &code.to_string())]);
        self.recorder.register_counter(&counter, &METADATA).increment(1);
        let histogram = Key::from_parts(REQUEST_DURATION_SECONDS, vec![label("route", route), label("method", method)]);
        self.recorder.register_histogram(&histogram, &METADATA).record(seconds);
    }

    /// Counts one retention pass of this process and what it deleted: `expired` of them
    /// before a destination delivered them.
    pub fn retention_pass(&self, deleted: u64, expired: u64) {
        self.recorder.register_counter(&Key::from_name(RETENTION_PASSES_TOTAL), &METADATA).increment(1);
        self.recorder.register_counter(&Key::from_name(RETENTION_DELETED_TOTAL), &METADATA).increment(deleted);
        self.recorder.register_counter(&Key::from_name(RETENTION_EXPIRED_TOTAL), &METADATA).increment(expired);
    }

    /// Whether this replica holds the lease of `job` (and runs it).
    pub fn job_lease_held(&self, job: &str, held: bool) {
        let key = Key::from_parts(JOB_LEASE_HELD, vec![label("lease", job)]);
        self.recorder.register_gauge(&key, &METADATA).set(if held { 1.0 } else { 0.0 });
    }

    /// Counts changes a Graph catch-up read: `stored` and `duplicates`.
    pub fn graph_catch_up_items(&self, stored: u32, duplicates: u32) {
        for (outcome, n) in [("stored", stored), ("duplicate", duplicates)] {
            let key = Key::from_parts(GRAPH_CATCH_UP_ITEMS_TOTAL, vec![label("outcome", outcome)]);
            self.recorder.register_counter(&key, &METADATA).increment(u64::from(n));
        }
    }

    /// Counts one Graph catch-up round ended with `outcome`.
    pub fn graph_catch_up_round(&self, outcome: &str) {
        let key = Key::from_parts(GRAPH_CATCH_UP_ROUNDS_TOTAL, vec![label("outcome", outcome)]);
        self.recorder.register_counter(&key, &METADATA).increment(1);
    }

    /// Counts one delta query Graph answered 429.
    pub fn graph_catch_up_throttled(&self) {
        self.recorder.register_counter(&Key::from_name(GRAPH_CATCH_UP_THROTTLED_TOTAL), &METADATA).increment(1);
    }

    /// Counts queued alerts dropped from a full queue.
    pub fn alerts_dropped(&self, n: u64) {
        self.recorder.register_counter(&Key::from_name(ALERTS_DROPPED_TOTAL), &METADATA).increment(n);
    }

    /// Counts one Office 365 content fetch that failed for `reason` (`token`,
    /// `unreachable`, `throttled`, `refused`, `bad_answer`, `gone`, `settings`,
    /// `endpoint_not_allowed`, `not_allowed`).
    pub fn o365_fetch_failure(&self, reason: &str) {
        let key = Key::from_parts(O365_FETCH_FAILURES_TOTAL, vec![label("reason", reason)]);
        self.recorder.register_counter(&key, &METADATA).increment(1);
    }

    /// Folds recorded latency samples into their buckets. Rendering does it too, but a
    /// server nobody scrapes would otherwise keep every sample.
    pub fn upkeep(&self) {
        self.handle.run_upkeep();
    }

    /// The Prometheus text exposition: the counters of this process, then one set of
    /// series per connection, evaluated at `now`.
    pub fn render(&self, connections: &[Connection], now: DateTime<Utc>) -> String {
        let mut text = self.handle.render();
        text.push_str(&render_connections(connections, now));
        text
    }
}

fn label(name: &'static str, value: &str) -> Label {
    Label::new(name, value.to_owned())
}

/// The per-connection series, rendered through a recorder that lives for this scrape only.
fn render_connections(connections: &[Connection], now: DateTime<Utc>) -> String {
    let recorder = PrometheusBuilder::new().build_recorder();
    describe_connection_metrics(&recorder);
    for c in connections {
        let identity = || {
            vec![
                label("id", &c.id.to_string()),
                label("tenant", &c.tenant_id),
                label("source", c.source.as_str()),
                label("stream", &c.stream),
            ]
        };
        let (current, _message) = crate::health::status_of(c, now);
        for status in Status::ALL {
            let mut labels = identity();
            labels.push(label("status", status.as_str()));
            let value = if status == current { 1.0 } else { 0.0 };
            recorder.register_gauge(&Key::from_parts(CONNECTION_STATUS, labels), &METADATA).set(value);
        }
        if let Some(at) = c.facts.last_heartbeat_at {
            let key = Key::from_parts(SECONDS_SINCE_HEARTBEAT, identity());
            recorder.register_gauge(&key, &METADATA).set(seconds_between(at, now));
        }
        if let Some(at) = c.facts.data_last_received_at {
            let key = Key::from_parts(SECONDS_SINCE_DATA, identity());
            recorder.register_gauge(&key, &METADATA).set(seconds_between(at, now));
        }
        // Stored counters never go below zero; a negative value would be corrupt data.
        let events = u64::try_from(c.counters.events).unwrap_or(0);
        recorder.register_counter(&Key::from_parts(EVENTS_TOTAL, identity()), &METADATA).absolute(events);
        let duplicates = u64::try_from(c.counters.duplicates).unwrap_or(0);
        recorder.register_counter(&Key::from_parts(DUPLICATES_TOTAL, identity()), &METADATA).absolute(duplicates);
        if c.source == crate::model::SourceKind::O365Activity {
            let fetch = &c.fetch;
            let records = u64::try_from(fetch.records).unwrap_or(0);
            recorder.register_counter(&Key::from_parts(O365_RECORDS_FETCHED_TOTAL, identity()), &METADATA).absolute(records);
            let expired = u64::try_from(fetch.expired).unwrap_or(0);
            recorder.register_counter(&Key::from_parts(O365_BLOBS_EXPIRED_TOTAL, identity()), &METADATA).absolute(expired);
            recorder.register_gauge(&Key::from_parts(O365_FETCH_BACKLOG, identity()), &METADATA).set(fetch.backlog as f64);
        }
    }
    recorder.handle().render()
}

/// The per-destination series (INTERFACE.md section 7), from the store's counters and each
/// destination's backlog, rendered through a recorder that lives for this scrape only.
pub fn render_destinations(destinations: &[(Destination, Backlog)], now: DateTime<Utc>) -> String {
    let recorder = PrometheusBuilder::new().build_recorder();
    let describe = |name: &'static str, help: &'static str| recorder.describe_counter(name.into(), None, SharedString::const_str(help));
    describe(FORWARD_DELIVERED_TOTAL, "Events the destination acknowledged");
    describe(FORWARD_DEAD_LETTERS_TOTAL, "Events the destination refused, kept as dead letters");
    describe(FORWARD_RETRIES_TOTAL, "Failed delivery attempts that were retried");
    describe(FORWARD_EXPIRED_TOTAL, "Events retention deleted before the destination delivered them");
    recorder.describe_gauge(FORWARD_LAG_EVENTS.into(), None, SharedString::const_str("Matching events not yet delivered"));
    recorder.describe_gauge(
        FORWARD_LAG_SECONDS.into(),
        Some(Unit::Seconds),
        SharedString::const_str("Age of the oldest undelivered event (0 with none)"),
    );
    recorder.describe_gauge(
        FORWARD_STATUS.into(),
        None,
        SharedString::const_str("1 for the destination's current status (ok, lagging, failing, paused), 0 for the others"),
    );
    for (d, backlog) in destinations {
        let identity = || vec![label("destination", &d.id.to_string()), label("name", &d.name)];
        let counter = |name: &'static str, value: i64| {
            recorder.register_counter(&Key::from_parts(name, identity()), &METADATA).absolute(u64::try_from(value).unwrap_or(0));
        };
        counter(FORWARD_DELIVERED_TOTAL, d.counters.delivered);
        counter(FORWARD_DEAD_LETTERS_TOTAL, d.counters.dead_letters);
        counter(FORWARD_RETRIES_TOTAL, d.counters.retries);
        counter(FORWARD_EXPIRED_TOTAL, d.counters.expired);
        recorder.register_gauge(&Key::from_parts(FORWARD_LAG_EVENTS, identity()), &METADATA).set(backlog.events as f64);
        let lag = crate::forward::status::lag_seconds(backlog, now);
        recorder.register_gauge(&Key::from_parts(FORWARD_LAG_SECONDS, identity()), &METADATA).set(lag);
        let current = crate::forward::status::evaluate(d, backlog, now);
        for status in crate::forward::DestinationStatus::ALL {
            let mut labels = identity();
            labels.push(label("status", status.as_str()));
            let value = if status == current { 1.0 } else { 0.0 };
            recorder.register_gauge(&Key::from_parts(FORWARD_STATUS, labels), &METADATA).set(value);
        }
    }
    recorder.handle().render()
}

fn describe_connection_metrics(recorder: &PrometheusRecorder) {
    recorder.describe_gauge(
        CONNECTION_STATUS.into(),
        None,
        SharedString::const_str("1 for the connection's current status, 0 for the other statuses"),
    );
    recorder.describe_gauge(
        SECONDS_SINCE_HEARTBEAT.into(),
        Some(Unit::Seconds),
        SharedString::const_str("Seconds since the connection's last heartbeat; absent while none has arrived"),
    );
    recorder.describe_gauge(
        SECONDS_SINCE_DATA.into(),
        Some(Unit::Seconds),
        SharedString::const_str("Seconds since the connection's last stored event; absent while none has arrived"),
    );
    recorder.describe_counter(EVENTS_TOTAL.into(), None, SharedString::const_str("Events stored for the connection, duplicates excluded"));
    recorder.describe_counter(
        DUPLICATES_TOTAL.into(),
        None,
        SharedString::const_str("Pushes to the connection acknowledged as duplicates"),
    );
    recorder.describe_counter(
        O365_RECORDS_FETCHED_TOTAL.into(),
        None,
        SharedString::const_str("Office 365 audit records fetched and stored for the connection, repeats excluded"),
    );
    recorder.describe_counter(
        O365_BLOBS_EXPIRED_TOTAL.into(),
        None,
        SharedString::const_str("Office 365 content blobs that expired before they could be fetched"),
    );
    recorder.describe_gauge(O365_FETCH_BACKLOG.into(), None, SharedString::const_str("Office 365 content blobs waiting to be fetched"));
}

/// Seconds from `then` to `now`, never negative: a clock step back reads as "just now".
fn seconds_between(then: DateTime<Utc>, now: DateTime<Utc>) -> f64 {
    let elapsed = now.signed_duration_since(then);
    (elapsed.num_milliseconds() as f64 / 1000.0).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_rejections_render_with_their_labels() {
        let metrics = Metrics::new();
        metrics.rejection("webhook", "bad_signature");
        metrics.rejection("webhook", "bad_signature");
        metrics.request("/push/{source}/{id}", "POST", 200, 0.003);
        let text = metrics.render(&[], Utc::now());
        assert!(text.contains("# TYPE pushgate_rejections_total counter"), "{text}");
        assert!(text.contains(r#"pushgate_rejections_total{source="webhook",reason="bad_signature"} 2"#), "{text}");
        assert!(text.contains(r#"pushgate_requests_total{route="/push/{source}/{id}",method="POST",code="200"} 1"#), "{text}");
        assert!(text.contains("# TYPE pushgate_request_duration_seconds histogram"), "{text}");
        assert!(
            text.contains(r#"pushgate_request_duration_seconds_bucket{route="/push/{source}/{id}",method="POST",le="0.005"} 1"#),
            "{text}"
        );
        assert!(text.contains("# HELP pushgate_requests_total "), "{text}");
    }

    #[test]
    fn each_server_counts_on_its_own() {
        let first = Metrics::new();
        let second = Metrics::new();
        first.rejection("aws_sns", "bad_signature");
        assert!(!second.render(&[], Utc::now()).contains("pushgate_rejections_total{"));
    }

    #[test]
    fn elapsed_seconds_are_never_negative() {
        let now = Utc::now();
        assert_eq!(seconds_between(now + chrono::Duration::seconds(5), now), 0.0);
        assert_eq!(seconds_between(now - chrono::Duration::milliseconds(1500), now), 1.5);
    }
}
