//! Google Cloud Pub/Sub push subscriptions: reading what a push carries and turning its
//! message into a stored event.

pub mod decode;
pub mod envelope;
