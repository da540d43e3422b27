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
