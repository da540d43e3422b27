//! The config of an `aws_eventbridge` connection: its typed form (the catalog's schema) and the
//! rules `POST /v1/connections` words for a person.

use serde_json::{Map, Value};

use crate::verify::auth::{Allowed, Auth};

/// The config of an `aws_eventbridge` connection, as the source catalog describes it.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The API destination connection's authorization: its API key header, basic
    /// credentials, or an HMAC of the body added by the connection's header parameters.
    pub auth: crate::verify::auth::BasicAuthConfig,
}

/// Keys an `aws_eventbridge` config may have.
pub const KEYS: [&str; 1] = ["auth"];

/// Adds every problem with an `aws_eventbridge` config to `errors`.
pub fn check(map: &Map<String, Value>, errors: &mut Vec<String>) {
    errors.extend(Auth::parse(&Value::Object(map.clone()), Allowed::Basic).err().unwrap_or_default());
}
