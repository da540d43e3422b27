//! pushgate's own calls to AWS: confirming SNS subscriptions and publishing (canary
//! heartbeats, [`crate::canary`]). Pushes *from* AWS are received by [`crate::sources`];
//! this module is the opposite direction, and the only one that uses AWS credentials.

pub mod api;
pub mod confirm;

pub use api::{AwsError, SnsApi};
pub use confirm::{ConfirmError, Confirmed, Confirmer};
