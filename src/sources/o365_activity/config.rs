//! The config of an `o365_activity` connection: its typed form (the catalog's schema) and the
//! rules `POST /v1/connections` words for a person.

use serde_json::{Map, Value};

/// The content types of the Office 365 Management Activity API ("Activity API
/// operations" in Microsoft's reference).
pub const CONTENT_TYPES: [&str; 5] = ["Audit.AzureActiveDirectory", "Audit.Exchange", "Audit.SharePoint", "Audit.General", "DLP.All"];

/// The Management API of Microsoft's commercial cloud, the default `subscription.endpoint`.
pub const DEFAULT_ENDPOINT: &str = "https://manage.office.com";

/// The config of an `o365_activity` connection, as the source catalog describes it.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The `authId` the subscription was started with: every notification carries it as
    /// `Webhook-AuthID`.
    #[schemars(length(min = 1))]
    pub auth_id: String,
    /// The app registration pushgate keeps the subscriptions with and fetches the audit
    /// content with (application permissions `ActivityFeed.Read`, and
    /// `ActivityFeed.ReadDlp` for `DLP.All`, on the Office 365 Management APIs).
    #[serde(default, deserialize_with = "crate::model::present")]
    pub subscription: Option<Subscription>,
}

/// The Management Activity API subscriptions pushgate starts and checks, and whose content
/// it fetches.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Subscription {
    #[schemars(length(min = 1))]
    pub tenant_id: String,
    #[schemars(length(min = 1))]
    pub client_id: String,
    #[schemars(length(min = 1))]
    pub client_secret: String,
    /// Any of `Audit.AzureActiveDirectory`, `Audit.Exchange`, `Audit.SharePoint`,
    /// `Audit.General`, `DLP.All`.
    #[schemars(length(min = 1))]
    pub content_types: Vec<ContentType>,
    /// The Management API host: `https://manage.office.com` (default),
    /// `https://manage-gcc.office.com` (GCC), `https://manage.office365.us` (GCC High),
    /// `https://manage.protection.apps.mil` (DoD).
    #[serde(default, deserialize_with = "crate::model::present")]
    pub endpoint: Option<String>,
}

/// One content type (the schema's enum).
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
pub enum ContentType {
    #[serde(rename = "Audit.AzureActiveDirectory")]
    AzureActiveDirectory,
    #[serde(rename = "Audit.Exchange")]
    Exchange,
    #[serde(rename = "Audit.SharePoint")]
    SharePoint,
    #[serde(rename = "Audit.General")]
    General,
    #[serde(rename = "DLP.All")]
    Dlp,
}

/// Keys an `o365_activity` config may have.
pub const KEYS: [&str; 2] = ["auth_id", "subscription"];

/// Fields of `subscription`.
const SUBSCRIPTION_FIELDS: [&str; 5] = ["tenant_id", "client_id", "client_secret", "content_types", "endpoint"];

/// Adds every problem with an `o365_activity` config to `errors`.
pub fn check(map: &Map<String, Value>, errors: &mut Vec<String>) {
    match map.get("auth_id").and_then(Value::as_str) {
        Some(s) if !s.is_empty() => {}
        _ => errors.push("`auth_id` is required: the Webhook-AuthID the subscription sends".into()),
    }
    let Some(value) = map.get("subscription") else { return };
    let Some(subscription) = value.as_object() else {
        errors.push(format!("`subscription` must be an object with the fields {}", SUBSCRIPTION_FIELDS.join(", ")));
        return;
    };
    for field in ["tenant_id", "client_id", "client_secret"] {
        if subscription.get(field).and_then(Value::as_str).is_none_or(str::is_empty) {
            errors.push(format!("`subscription.{field}` is required: a non-empty string"));
        }
    }
    match subscription.get("content_types").and_then(Value::as_array) {
        Some(types) if !types.is_empty() => {
            for (i, t) in types.iter().enumerate() {
                if !t.as_str().is_some_and(|t| CONTENT_TYPES.contains(&t)) {
                    errors.push(format!("`subscription.content_types[{i}]` must be one of {}", CONTENT_TYPES.join(", ")));
                }
            }
            let mut names: Vec<&str> = types.iter().filter_map(Value::as_str).collect();
            names.sort_unstable();
            if names.windows(2).any(|w| w[0] == w[1]) {
                errors.push("`subscription.content_types` names a content type twice".into());
            }
        }
        _ => errors.push(format!("`subscription.content_types` is required: a list of any of {}", CONTENT_TYPES.join(", "))),
    }
    if let Some(endpoint) = subscription.get("endpoint") {
        match endpoint.as_str().map(crate::config::origin) {
            Some(Ok(_)) => {}
            Some(Err(e)) => errors.push(format!("`subscription.endpoint` {e}")),
            None => errors.push("`subscription.endpoint` must be a string: the Management API host, e.g. https://manage.office.com".into()),
        }
    }
    for field in subscription.keys() {
        if !SUBSCRIPTION_FIELDS.contains(&field.as_str()) {
            errors.push(format!(
                "`subscription.{field}` is not a field of an O365 subscription (expected: {})",
                SUBSCRIPTION_FIELDS.join(", ")
            ));
        }
    }
}
