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
