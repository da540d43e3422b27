//! `pushgate verify`: runs a captured push through the same verification and decoding as
//! the push route, with no database and no network, and prints one JSON report.
//! Exit 0 verified and decoded (an undecodable push is reported as the `raw` event it is
//! stored as), 1 refused, 2 usage error.
//!
//! A heartbeat is judged as the push route judges it (`model::heartbeat`), with the
//! connection file's `heartbeat_interval_seconds` and `grace_seconds` and the `--at`
//! clock: the report's `heartbeat` shows its id and signed time, and one that would not
//! count is reported with reason `heartbeat_not_fresh` (exit 1).

use std::process::ExitCode;

use chrono::{DateTime, Utc};
use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{json, Value};

use super::VerifyArgs;
use crate::config::OfflineSettings;
use crate::model::heartbeat;
use crate::model::{HeartbeatProof, NewEvent, SourceKind};
use crate::sources::aws_sns::certs::CertStore;
use crate::sources::gcp_pubsub::keys::GoogleKeys;
use crate::sources::ms_graph::keys::MicrosoftKeys;
use crate::sources::{config_check, ConnectionConfig, Intake, RawRequest, RejectClass, Senders};

pub async fn run(args: &VerifyArgs, config_file: Option<&std::path::Path>) -> ExitCode {
    match check(args, config_file).await {
        Ok((report, accepted)) => {
            println!("{report}");
            if accepted {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(usage) => {
            eprintln!("pushgate verify: {usage}");
            ExitCode::from(2)
        }
    }
}

/// The report and whether the push would be accepted; `Err` is a usage error.
pub async fn check(args: &VerifyArgs, config_file: Option<&std::path::Path>) -> Result<(Value, bool), String> {
    let connection_text =
        std::fs::read(&args.connection).map_err(|e| format!("cannot read the connection file {}: {e}", args.connection.display()))?;
    let connection: Value = serde_json::from_slice(&connection_text).map_err(|e| format!("the connection file is not JSON: {e}"))?;
    let source_name = args
        .source
        .clone()
        .or_else(|| connection.get("source").and_then(Value::as_str).map(str::to_owned))
        .ok_or("the connection has no `source`; pass --source")?;
    let source = SourceKind::parse(&source_name).ok_or_else(|| format!("unknown source `{source_name}`"))?;
    let config = connection.get("config").cloned().unwrap_or_else(|| json!({}));
    let problems = config_check::validate(source, &config);
    if !problems.is_empty() {
        return Err(format!("the connection's config is not valid: {}", problems.join("; ")));
    }
    let settings = OfflineSettings::from_env(config_file).map_err(|e| e.to_string())?;
    // No network: SNS certificates only from the pinned directory, Google's and
    // Microsoft's keys only from a file.
    let google_keys = GoogleKeys::offline_from_setting(&settings.keys.google_jwks);
    let microsoft_keys = MicrosoftKeys::offline_from_setting(&settings.keys.microsoft_jwks);
    let senders = Senders::new(
        std::sync::Arc::new(CertStore::offline(settings.keys.sns_certs.pinned_dir.clone())),
        std::sync::Arc::new(google_keys),
        std::sync::Arc::new(microsoft_keys),
    );
    let sender = senders.get(source);
    let body = std::fs::read(&args.file).map_err(|e| format!("cannot read {}: {e}", args.file.display()))?;
    let now = match &args.at {
        None => Utc::now(),
        Some(text) => DateTime::parse_from_rfc3339(text).map_err(|e| format!("--at `{text}` is not RFC 3339: {e}"))?.with_timezone(&Utc),
    };
    let headers = parse_headers(&args.headers)?;
    let url = args.url.clone().unwrap_or_else(|| default_url(source, &connection, settings.public_url.as_deref()));
    let request = RawRequest { headers: &headers, query: args.query.as_deref(), body: &body, push_url: &url, now };

    let refused = |reason: &str, detail: &str, verified: bool| json!({"verified": verified, "reason": reason, "detail": detail, "kind": null, "events": []});
    let content_type = headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let raw = |r: &crate::sources::Rejected| crate::ingest::raw_event(r, &body, content_type);
    // Read once, as the server reads a connection when it loads it.
    let config = ConnectionConfig::load(sender, config);
    let decoded = match sender.receive(request, &config).await {
        Ok(decoded) => decoded,
        Err(r) => return Ok((refused(r.reason, &r.detail, false), false)),
    };
    let report = match decoded {
        Ok(intake) => {
            let events: Vec<Value> = match &intake {
                Intake::Events { events, stream: hint, .. } => events.iter().map(|e| event(e, source, &connection, *hint)).collect(),
                Intake::Lifecycle { event: e, .. } => vec![event(e, source, &connection, None)],
                Intake::Content { events, .. } => events.iter().map(|e| event(e, source, &connection, None)).collect(),
                // An undecodable item is stored beside the others, as a raw event.
                Intake::Batch(batch) => batch
                    .events
                    .iter()
                    .cloned()
                    .chain(batch.refused.iter().filter(|r| r.class == RejectClass::Undecodable).map(&raw))
                    .map(|e| event(&e, source, &connection, None))
                    .collect(),
                Intake::Heartbeat(_) | Intake::Handshake(_) => Vec::new(),
            };
            let mut report = json!({"verified": true, "reason": null, "kind": intake.kind_name(), "events": events});
            let proof = match &intake {
                Intake::Heartbeat(proof) => Some(proof),
                Intake::Events { heartbeat, .. } => heartbeat.as_ref(),
                _ => None,
            };
            if let Some(proof) = proof {
                let (heartbeat, fresh) = judged_heartbeat(proof, &connection, now);
                report["heartbeat"] = heartbeat;
                if let Err(detail) = fresh {
                    report["reason"] = heartbeat::NOT_FRESH.into();
                    report["detail"] = detail.into();
                    // Only a heartbeat alone is refused; events beside it are stored.
                    if matches!(intake, Intake::Heartbeat(_)) {
                        return Ok((report, false));
                    }
                }
            }
            // A Graph batch is stored in part: the items refused on their own are listed.
            if let Intake::Batch(batch) = &intake {
                let refused: Vec<_> = batch.refused.iter().filter(|r| r.class != RejectClass::Undecodable).collect();
                if !refused.is_empty() {
                    report["refused"] = refused.iter().map(|r| json!({"reason": r.reason, "detail": r.detail})).collect::<Vec<_>>().into();
                }
            }
            report
        }
        // Authentic, but the payload cannot be decoded: pushgate stores it whole, as a raw event.
        Err(r) if r.class == RejectClass::Undecodable => {
            json!({"verified": true, "reason": r.reason, "detail": r.detail, "kind": "raw", "events": [event(&raw(&r), source, &connection, None)]})
        }
        // Authentic, but a handshake that cannot be completed: kept as a rejection.
        Err(r) => return Ok((refused(r.reason, &r.detail, true), false)),
    };
    Ok((report, true))
}

/// A heartbeat's id and signed time as its sender named them, whether it would count, and
/// why not.
fn judged_heartbeat(proof: &HeartbeatProof, connection: &Value, now: DateTime<Utc>) -> (Value, Result<(), String>) {
    let interval = connection.get("heartbeat_interval_seconds").and_then(Value::as_i64);
    let grace = connection.get("grace_seconds").and_then(Value::as_i64).unwrap_or(crate::connections::DEFAULT_GRACE_SECONDS);
    let judged = heartbeat::judge(proof, now, heartbeat::freshness_window(interval, grace));
    let report = json!({
        "id": proof.id,
        "signed_at": proof.signed_at.map(time),
        "counts_at": judged.as_ref().ok().map(|c| time(c.signed_at)),
        "fresh": judged.is_ok(),
    });
    (report, judged.map(|_| ()))
}

fn parse_headers(lines: &[String]) -> Result<HeaderMap, String> {
    let mut headers = HeaderMap::new();
    for line in lines {
        let (name, value) = line.split_once(':').ok_or_else(|| format!("--header `{line}` is not `Name: value`"))?;
        let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| format!("`{}` is not a header name", name.trim()))?;
        let value = HeaderValue::from_str(value.trim()).map_err(|_| format!("the value of {name} is not a valid header value"))?;
        headers.append(name, value);
    }
    Ok(headers)
}

/// The push URL from the configured public URL, as the server builds it (with the
/// default listen address when none is configured).
fn default_url(source: SourceKind, connection: &Value, public_url: Option<&str>) -> String {
    let base = public_url.unwrap_or("http://127.0.0.1:8080");
    let id = connection.get("id").and_then(Value::as_str).unwrap_or("00000000-0000-0000-0000-000000000000");
    crate::sources::push_url(source, base, id)
}

/// An event as the server would store it; the sender's stream `hint` applies, as there,
/// while the connection keeps its source's default stream.
fn event(e: &NewEvent, source: SourceKind, connection: &Value, hint: Option<&str>) -> Value {
    let stream = connection.get("stream").and_then(Value::as_str).unwrap_or(crate::sources::spec(source).default_stream);
    let stream = hint.filter(|_| stream == crate::sources::spec(source).default_stream).unwrap_or(stream);
    json!({
        "id": null,
        "connection_id": connection.get("id"),
        "tenant_id": connection.get("tenant_id"),
        "source": source.as_str(),
        "stream": stream,
        "kind": e.kind.as_str(),
        "dedupe_key": e.dedupe_key,
        "occurred_at": e.occurred_at.map(time),
        "received_at": null,
        "payload": e.payload,
    })
}

/// A time as the API writes it.
fn time(t: DateTime<Utc>) -> Value {
    Value::String(crate::model::rfc3339(t))
}
