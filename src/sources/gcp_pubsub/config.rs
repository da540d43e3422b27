//! The config of a `gcp_pubsub` connection, as the source catalog describes it.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::sources::catalog::MAX_CANARY_INTERVAL_SECONDS;

/// Google Cloud Pub/Sub push subscriptions: the service account whose OIDC token signs
/// each push, the audience it names, which subscriptions may push, and an optional canary.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The email of the push subscription's service account (the token's `email`).
    #[schemars(regex(pattern = r"^[^@].*@.*[^@]$"))]
    pub service_account_email: String,
    /// The token audience the subscription was given (default: the push URL).
    #[schemars(length(min = 1))]
    #[serde(default, deserialize_with = "crate::model::present")]
    pub audience: Option<String>,
    /// The subscriptions allowed to push (`projects/P/subscriptions/S`); left out, any.
    #[schemars(length(min = 1), inner(regex(pattern = "^projects/[^/]+/subscriptions/[^/]+$")))]
    #[serde(default, deserialize_with = "crate::model::present")]
    pub subscriptions: Option<Vec<String>>,
    /// pushgate publishes a heartbeat to this topic every `interval_seconds`.
    #[serde(default, deserialize_with = "crate::model::present")]
    pub canary: Option<Canary>,
}

/// A canary heartbeat published to a Pub/Sub topic.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Canary {
    #[schemars(regex(pattern = "^projects/[^/]+/topics/[^/]+$"))]
    pub topic: String,
    #[schemars(range(min = 1, max = MAX_CANARY_INTERVAL_SECONDS))]
    pub interval_seconds: i64,
}
