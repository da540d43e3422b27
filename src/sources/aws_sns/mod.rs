//! Amazon SNS over HTTP/S (`POST /push/aws-sns/{id}`): the message envelope, the rules
//! for the URLs it names, signing certificates, authentication of each push, and the
//! sender that turns an authenticated message into events, a heartbeat, a handshake or
//! a lifecycle change.

pub mod cert_url;
pub mod certs;
pub mod config;
pub mod envelope;
mod sender;
#[cfg(any(test, feature = "test-support"))]
pub mod test_signer;
pub mod topic_arn;
pub mod verify;

pub use sender::SnsSender;

use crate::model::SourceKind;
use crate::sources::{ConfigSpec, SourceSpec, StoredAnswer, UnauthenticatedAnswer};

pub const SPEC: SourceSpec = SourceSpec {
    kind: SourceKind::AwsSns,
    route_segment: "aws-sns",
    lifecycle_route: false,
    default_stream: "cloud_aws_securityhub_alert",
    secret_fields: &[],
    heartbeat: "a verified SNS Notification whose Message is an EventBridge Scheduled Event (source aws.events), \
                such as the canary's or an EventBridge schedule's; its id and time are the SNS MessageId and Timestamp",
    stored: StoredAnswer::Ok,
    unauthenticated: UnauthenticatedAnswer::Forbidden,
    config: ConfigSpec::of::<config::Config>(&config::KEYS, config::check),
    build: |deps| Box::new(SnsSender::new(deps.sns_certs.clone())),
};
