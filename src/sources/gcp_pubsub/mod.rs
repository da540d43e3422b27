//! Google Cloud Pub/Sub push subscriptions (`POST /push/gcp-pubsub/{id}`): Google's OIDC
//! signing keys, and the check of the Google-signed token that authenticates each push.

pub mod keys;
pub mod oidc;
#[doc(hidden)]
pub mod test_signer;
