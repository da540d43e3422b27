//! Google Cloud Pub/Sub push subscriptions (`POST /push/gcp-pubsub/{id}`): Google's OIDC
//! signing keys and the check of the Google-signed token that authenticates each push,
//! reading what a push carries, turning its message into a stored event, and the sender
//! that joins them.

pub mod config;
pub mod decode;
pub mod envelope;
pub mod keys;
pub mod oidc;
mod sender;
#[cfg(any(test, feature = "test-support"))]
pub mod test_signer;

pub use sender::PubSubSender;

use crate::model::SourceKind;
use crate::sources::{ConfigSpec, SourceSpec, StoredAnswer, UnauthenticatedAnswer};

pub const SPEC: SourceSpec = SourceSpec {
    kind: SourceKind::GcpPubsub,
    route_segment: "gcp-pubsub",
    lifecycle_route: false,
    default_stream: "cloud_gcp_security_finding",
    secret_fields: &[],
    heartbeat: "a verified Pub/Sub push whose message has the attribute pushgate_kind = heartbeat, \
                such as the canary's or a Cloud Scheduler job's; its id and time are the messageId and publishTime",
    stored: StoredAnswer::NoContent,
    unauthenticated: UnauthenticatedAnswer::Forbidden,
    config: ConfigSpec::of::<config::Config>(&config::KEYS, config::check),
    build: |deps| Box::new(PubSubSender::new(deps.google_keys.clone())),
};
