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
