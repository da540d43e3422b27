//! The config of a `gcp_pubsub` connection: its typed form (the catalog's schema) and the
//! rules `POST /v1/connections` words for a person.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::sources::config_check::{canary, optional_list, optional_string};

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

/// Keys a `gcp_pubsub` config may have.
pub const KEYS: [&str; 4] = ["service_account_email", "audience", "subscriptions", "canary"];

/// `projects/P/{collection}/NAME`.
fn is_gcp_path(path: &str, collection: &str) -> bool {
    let parts: Vec<&str> = path.split('/').collect();
    parts.len() == 4 && parts[0] == "projects" && !parts[1].is_empty() && parts[2] == collection && !parts[3].is_empty()
}

/// Adds every problem with a `gcp_pubsub` config to `errors`.
pub fn check(map: &Map<String, Value>, errors: &mut Vec<String>) {
    match map.get("service_account_email").and_then(Value::as_str) {
        Some(e) if e.contains('@') && !e.starts_with('@') && !e.ends_with('@') => {}
        _ => errors.push("`service_account_email` is required: the email of the push subscription's service account".into()),
    }
    optional_string(map, "audience", errors);
    optional_list(map, "subscriptions", |s| is_gcp_path(s, "subscriptions"), "projects/P/subscriptions/S", errors);
    // An empty allow-list would refuse every push: leave the field out instead.
    if map.get("subscriptions").and_then(Value::as_array).is_some_and(|list| list.is_empty()) {
        errors.push("`subscriptions` must not be empty (leave it out to allow any subscription)".into());
    }
    canary(map, "topic", |t| is_gcp_path(t, "topics"), "projects/P/topics/T", errors);
}
