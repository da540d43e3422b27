//! The `http` sink: one POST per batch, as NDJSON (one event object per line) or as Splunk
//! HTTP Event Collector events. Every request carries `webhook-id` and `Idempotency-Key`
//! = the batch id, the same on every retry of the batch, so the receiver can drop a
//! batch it already took; with `standard_webhooks` auth it is signed as that spec says
//! (`webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256 of id.timestamp.body>`,
//! over the uncompressed body).
//!
//! Answers are read as INTERFACE.md section 7 says: 2xx delivered; 408, 429, 5xx and no
//! answer retried (honouring `Retry-After`); 401, 403, 404 (and any other 4xx that
//! splitting cannot help, or a redirect, which is never followed) make the destination
//! failing; 400, 413, 422 refuse the batch, which the core then splits. HEC answers are
//! read as Splunk documents them: a 400 whose `invalid-event-number` is `n` means events
//! before `n` were indexed and event `n` was refused; the same number on a 503 ("server
//! is busy") means the events before it were indexed; codes 7 (incorrect index), 10, 11
//! (data channel), 14 (ack disabled) and 16 are settings problems (failing).

use std::io::Write;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use serde::Serialize;
use serde_json::value::RawValue;
use uuid::Uuid;

use super::{Failure, Limits, Record, Sink, SinkError};
use crate::forward::config::{HttpAuth, HttpConfig, HttpFormat, SinkConfig};

const TIMEOUT: Duration = Duration::from_secs(30);
/// Bytes of an error answer kept in the message, and read at most.
const ANSWER_PREFIX: usize = 300;
const ANSWER_READ: usize = 4096;
/// What a HEC event adds to the event object (time, source, sourcetype, fields).
const HEC_OVERHEAD: usize = 256;

pub struct HttpSink {
    config: HttpConfig,
    client: reqwest::Client,
    secrets: Vec<String>,
}

impl HttpSink {
    pub fn new(config: HttpConfig) -> Result<HttpSink, String> {
        let secrets = SinkConfig::Http(config.clone()).secrets();
        Ok(HttpSink { client: crate::outbound::operator_client(TIMEOUT)?, config, secrets })
    }

    fn body(&self, records: &[Record]) -> Vec<u8> {
        let mut body = Vec::with_capacity(records.iter().map(|r| r.json.len() + 1).sum::<usize>() + records.len() * 160);
        for record in records {
            match self.config.format {
                HttpFormat::Ndjson => body.extend_from_slice(&record.json),
                HttpFormat::SplunkHec => body.extend_from_slice(&hec_event(record)),
            }
            body.push(b'\n');
        }
        body
    }
}

#[derive(Serialize)]
struct HecEvent<'a> {
    time: &'a RawValue,
    source: String,
    sourcetype: &'a str,
    event: &'a RawValue,
    fields: HecFields<'a>,
}

#[derive(Serialize)]
struct HecFields<'a> {
    event_id: String,
    tenant_id: &'a str,
    connection_id: String,
    kind: &'a str,
}

/// One HEC event object: `time` is the event's `received_at` in epoch seconds (with
/// milliseconds), `event` the event object of INTERFACE.md section 5.
fn hec_event(record: &Record) -> Vec<u8> {
    let e = &record.event;
    let time = format!("{}.{:03}", e.received_at.timestamp(), e.received_at.timestamp_subsec_millis());
    let (Ok(time), Ok(event)) = (RawValue::from_string(time), serde_json::from_slice::<&RawValue>(&record.json)) else {
        // The record JSON is ours and the time a number: neither fails.
        return Vec::new();
    };
    let hec = HecEvent {
        time: &time,
        source: format!("pushgate:{}", e.source.as_str()),
        sourcetype: &e.stream,
        event,
        fields: HecFields {
            event_id: e.id.to_string(),
            tenant_id: &e.tenant_id,
            connection_id: e.connection_id.to_string(),
            kind: e.kind.as_str(),
        },
    };
    serde_json::to_vec(&hec).unwrap_or_default()
}

fn gzip(body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 4), flate2::Compression::fast());
    encoder.write_all(body)?;
    encoder.finish()
}

/// The Standard Webhooks signature header value.
pub fn standard_signature(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let ts = timestamp.to_string();
    let mac = crate::verify::hmac_sha256(key, &[id.as_bytes(), b".", ts.as_bytes(), b".", body]);
    format!("v1,{}", STANDARD.encode(mac))
}

#[async_trait::async_trait]
impl Sink for HttpSink {
    fn limits(&self) -> Limits {
        let overhead = if self.config.format == HttpFormat::SplunkHec { HEC_OVERHEAD } else { 1 };
        Limits {
            max_events: self.config.max_batch_events,
            max_bytes: self.config.max_batch_bytes,
            linger: Duration::ZERO,
            overhead_per_record: overhead,
        }
    }

    async fn send(&self, batch_id: Uuid, records: &[Record]) -> Result<(), SinkError> {
        let body = self.body(records);
        let id = batch_id.to_string();
        let content_type = match self.config.format {
            HttpFormat::Ndjson => "application/x-ndjson",
            HttpFormat::SplunkHec => "application/json",
        };
        let mut request = self
            .client
            .post(self.config.url.clone())
            .header("content-type", content_type)
            .header("webhook-id", &id)
            .header("idempotency-key", &id);
        match &self.config.auth {
            Some(HttpAuth::StandardWebhooks { key }) => {
                let timestamp = chrono::Utc::now().timestamp();
                request = request
                    .header("webhook-timestamp", timestamp.to_string())
                    .header("webhook-signature", standard_signature(&key.0, &id, timestamp, &body));
            }
            Some(HttpAuth::Bearer(token)) => request = request.bearer_auth(token.expose()),
            Some(HttpAuth::Basic { username, password }) => request = request.basic_auth(username, Some(password.expose())),
            Some(HttpAuth::Header { name, value }) => request = request.header(name.clone(), value.expose()),
            Some(HttpAuth::Splunk(token)) => request = request.header("authorization", format!("Splunk {}", token.expose())),
            None => {}
        }
        let body = if self.config.gzip {
            request = request.header("content-encoding", "gzip");
            Bytes::from(gzip(&body).map_err(|e| SinkError::transient(format!("cannot compress the batch: {e}")))?)
        } else {
            Bytes::from(body)
        };
        let answer =
            request.body(body).send().await.map_err(|e| {
                SinkError::transient(super::scrub(&crate::outbound::describe_error(&e.without_url(), TIMEOUT), &self.secrets))
            })?;
        let status = answer.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(());
        }
        let retry_after = answer.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(parse_retry_after);
        let location = answer.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_owned);
        // At most the first few KiB of an error answer are read (a collector, or a proxy
        // in front of it, may send a lot), and secrets are taken out before anything is cut.
        let mut text = Vec::new();
        let mut answer = answer;
        while text.len() < ANSWER_READ {
            match answer.chunk().await {
                Ok(Some(chunk)) => text.extend_from_slice(&chunk[..chunk.len().min(ANSWER_READ - text.len())]),
                _ => break,
            }
        }
        let text = super::scrub(&String::from_utf8_lossy(&text), &self.secrets);
        let location = location.map(|l| super::scrub(&l, &self.secrets));
        let mut error = classify(self.config.format, status, text.as_bytes(), location.as_deref());
        error.retry_after = retry_after;
        error.accepted = error.accepted.min(records.len());
        Err(error)
    }
}

/// `Retry-After` as seconds or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

#[derive(serde::Deserialize, Default)]
struct HecAnswer {
    #[serde(default)]
    text: String,
    code: Option<i64>,
    #[serde(rename = "invalid-event-number")]
    invalid_event_number: Option<usize>,
}

/// What a non-2xx answer means (without `Retry-After`, which the caller adds).
pub fn classify(format: HttpFormat, status: u16, body: &[u8], location: Option<&str>) -> SinkError {
    let shown = String::from_utf8_lossy(&body[..body.len().min(ANSWER_PREFIX)]).replace(['\n', '\r'], " ");
    let message = format!("HTTP {status}: {}", shown.trim());
    if format == HttpFormat::SplunkHec {
        if let Some(hec) = serde_json::from_slice::<HecAnswer>(body).ok().filter(|h| h.code.is_some()) {
            if let Some(error) = classify_hec(status, &hec, &message) {
                return error;
            }
        }
    }
    let failure = match status {
        300..=399 => {
            let to = location.map(|l| format!(" to {l}")).unwrap_or_default();
            return SinkError::failing(format!("HTTP {status}: redirected{to}; redirects are not followed, set the final URL"));
        }
        400 | 413 | 422 => Failure::RefusedBatch,
        // 409 and 425: an idempotent receiver still working on this batch id, from a try
        // that timed out here; it will answer the retry.
        408 | 409 | 425 | 429 | 500..=599 => Failure::Transient,
        _ => Failure::Failing,
    };
    SinkError::new(failure, message)
}

fn classify_hec(status: u16, hec: &HecAnswer, message: &str) -> Option<SinkError> {
    let code = hec.code?;
    let with = |failure: Failure, accepted: usize| {
        let mut e = SinkError::new(failure, format!("{message} (HEC code {code}: {})", hec.text));
        e.accepted = accepted;
        e
    };
    match (status, code, hec.invalid_event_number) {
        (400, 7 | 10 | 11 | 14 | 16, _) => Some(with(Failure::Failing, 0)),
        (400, _, Some(n)) => Some(with(Failure::RefusedRecord, n)),
        (503, _, Some(n)) => Some(with(Failure::Transient, n)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_mean_what_the_interface_says() {
        let kind = |status| classify(HttpFormat::Ndjson, status, b"nope", None).failure;
        assert_eq!(kind(400), Failure::RefusedBatch);
        assert_eq!(kind(413), Failure::RefusedBatch);
        assert_eq!(kind(422), Failure::RefusedBatch);
        for status in [401, 403, 404, 405, 410] {
            assert_eq!(kind(status), Failure::Failing, "{status}");
        }
        for status in [408, 409, 425, 429, 500, 502, 503, 504] {
            assert_eq!(kind(status), Failure::Transient, "{status}");
        }
        let redirect = classify(HttpFormat::Ndjson, 302, b"", Some("https://elsewhere/"));
        assert_eq!(redirect.failure, Failure::Failing);
        assert!(redirect.message.contains("https://elsewhere/"));
        assert_eq!(classify(HttpFormat::Ndjson, 500, b"line1\nline2", None).message, "HTTP 500: line1 line2");
    }

    #[test]
    fn hec_answers_are_read_as_splunk_documents_them() {
        // The answers Splunk documents for HEC ("Troubleshoot HTTP Event Collector").
        let bad = classify(HttpFormat::SplunkHec, 400, br#"{"text":"Invalid data format","code":6,"invalid-event-number":3}"#, None);
        assert_eq!((bad.failure, bad.accepted), (Failure::RefusedRecord, 3));
        let busy = classify(HttpFormat::SplunkHec, 503, br#"{"text":"Server is busy","code":9,"invalid-event-number":10}"#, None);
        assert_eq!((busy.failure, busy.accepted), (Failure::Transient, 10));
        let index = classify(HttpFormat::SplunkHec, 400, br#"{"text":"Incorrect index","code":7,"invalid-event-number":1}"#, None);
        assert_eq!(index.failure, Failure::Failing);
        let token = classify(HttpFormat::SplunkHec, 403, br#"{"text":"Invalid token","code":4}"#, None);
        assert_eq!(token.failure, Failure::Failing);
        let no_number = classify(HttpFormat::SplunkHec, 400, br#"{"text":"Invalid data format","code":6}"#, None);
        assert_eq!(no_number.failure, Failure::RefusedBatch);
        assert!(bad.message.contains("HEC code 6"));
    }

    #[test]
    fn retry_after_as_seconds_or_a_date() {
        assert_eq!(parse_retry_after(" 120 "), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), Some(Duration::ZERO), "a past date: now");
        let later = (chrono::Utc::now() + chrono::Duration::seconds(90)).to_rfc2822();
        assert!(parse_retry_after(&later).unwrap() > Duration::from_secs(80));
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn the_standard_webhooks_signature_follows_the_spec() {
        // The example of the Standard Webhooks specification (its README, "Signature scheme").
        let key = STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            standard_signature(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }
}
