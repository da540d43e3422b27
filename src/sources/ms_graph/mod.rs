//! Microsoft Graph change notifications (`POST /push/ms-graph/{id}` and
//! `/push/ms-graph/{id}/lifecycle`): the validation handshake, the per-notification
//! `clientState` and tenant checks, the `validationTokens` that vouch for a batch of rich
//! notifications, the decryption of their `encryptedContent`, lifecycle events, and the
//! sender that joins them.

pub mod config;
pub mod keys;
pub mod notifications;
pub mod rich;
mod sender;
#[cfg(any(test, feature = "test-support"))]
pub mod test_rich;
#[cfg(any(test, feature = "test-support"))]
pub mod test_signer;
pub mod tokens;
pub mod validation;

pub use sender::GraphSender;

use crate::model::SourceKind;
use crate::sources::{ConfigSpec, SourceSpec, StoredAnswer, UnauthenticatedAnswer};

pub const SPEC: SourceSpec = SourceSpec {
    kind: SourceKind::MsGraph,
    route_segment: "ms-graph",
    lifecycle_route: true,
    default_stream: "cloud_ms_graph_alert",
    secret_fields: &["client_state", "encryption_keys[].private_key_pem", "subscription.client_secret"],
    heartbeat: "none: Graph sends no heartbeat; the subscription's confirmation, expiry and lifecycle \
                notifications (removed, reauthorization required, missed) tell its health",
    stored: StoredAnswer::Accepted,
    unauthenticated: UnauthenticatedAnswer::Forbidden,
    config: ConfigSpec::of::<config::Config>(&config::KEYS, config::check),
    build: |deps| Box::new(GraphSender::new(deps.microsoft_keys.clone())),
};
