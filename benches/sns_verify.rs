//! SNS authentication benchmark: [`authenticate`] on real SNS messages with a warm
//! certificate cache (the pinned certificate is loaded once, before measuring), so it
//! measures what every push pays: envelope parsing, the checks, and one RSA-2048
//! signature verification (SHA-1 for SignatureVersion 1, SHA-256 for 2). A row for
//! parsing alone shows how much of that is not cryptography.
//!
//! Each row runs `BENCH_SECONDS` (default 3) after a short warm-up, one call at a time
//! on one thread. Run: `cargo bench --bench sns_verify`.

mod common;

use std::path::{Path, PathBuf};

use chrono::{DateTime, TimeDelta, Utc};
use http::HeaderMap;
use pushgate::sources::aws_sns::certs::CertStore;
use pushgate::sources::aws_sns::envelope::Envelope;
use pushgate::sources::aws_sns::verify::authenticate;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/aws-sns")
}

struct Message {
    body: Vec<u8>,
    now: DateTime<Utc>,
    topics: Vec<String>,
}

fn message(file: &str) -> Message {
    let body = std::fs::read(fixtures().join("messages").join(file)).expect("fixture message");
    let envelope = Envelope::parse(&body).expect("fixture message parses");
    let now = envelope.sent_at() + TimeDelta::minutes(1);
    let topics = vec![envelope.topic_arn().to_string()];
    Message { body, now, topics }
}

fn main() {
    let duration = common::duration(3);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    let certs = CertStore::offline(Some(fixtures().join("certs")));
    let headers = HeaderMap::new();
    let v1 = message("ruby_notification-v1-2022.json");
    let v2 = message("ruby_notification-v2-2022.json");

    let rows = runtime.block_on(async {
        for m in [&v1, &v2] {
            authenticate(&m.body, &headers, m.now, &m.topics, &certs).await.expect("fixture verifies (loads the cache)");
        }
        let mut rows = Vec::new();
        for (name, m) in [("authenticate, SignatureVersion 1 (SHA-1)", &v1), ("authenticate, SignatureVersion 2 (SHA-256)", &v2)] {
            rows.push(
                common::measure(name, duration, || async {
                    let verified = authenticate(&m.body, &headers, m.now, &m.topics, &certs).await;
                    assert!(verified.is_ok());
                })
                .await,
            );
        }
        rows.push(
            common::measure("Envelope::parse + string_to_sign only", duration, || async {
                let envelope = Envelope::parse(std::hint::black_box(&v2.body)).expect("parses");
                std::hint::black_box(envelope.string_to_sign());
            })
            .await,
        );
        rows
    });

    common::print(&rows);
}
