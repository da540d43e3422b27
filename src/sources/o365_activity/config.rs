//! The config of an `o365_activity` connection: its typed form (the catalog's schema) and the
//! rules `POST /v1/connections` words for a person.

use serde_json::{Map, Value};

/// The config of an `o365_activity` connection, as the source catalog describes it.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The `authId` the subscription was started with: every notification carries it as
    /// `Webhook-AuthID`.
    #[schemars(length(min = 1))]
    pub auth_id: String,
}

/// Keys an `o365_activity` config may have.
pub const KEYS: [&str; 1] = ["auth_id"];

/// Adds every problem with an `o365_activity` config to `errors`.
pub fn check(map: &Map<String, Value>, errors: &mut Vec<String>) {
    match map.get("auth_id").and_then(Value::as_str) {
        Some(s) if !s.is_empty() => {}
        _ => errors.push("`auth_id` is required: the Webhook-AuthID the subscription sends".into()),
    }
}
