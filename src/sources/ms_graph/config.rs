//! The config of an `ms_graph` connection: its typed form (the catalog's schema) and the
//! rules `POST /v1/connections` words for a person.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::rich;
use crate::sources::config_check::optional_list;

use crate::sources::catalog::MAX_GRAPH_EXPIRATION_MINUTES;

/// Microsoft Graph change notifications: the `clientState` every notification must
/// carry, which tenants and applications may send, the keys rich notifications are
/// encrypted to, and optionally the subscription pushgate keeps itself.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("if" = {"required": ["encryption_keys"], "properties": {"encryption_keys": {"minItems": 1}}},
                  "then" = {"required": ["app_ids"], "properties": {"app_ids": {"minItems": 1}}}))]
pub struct Config {
    /// The secret given as the subscription's `clientState`.
    #[schemars(length(min = 1, max = 128))]
    pub client_state: String,
    /// The tenants whose notifications are accepted (`tenantId`); left out, any.
    #[schemars(inner(length(min = 1)))]
    #[serde(default, deserialize_with = "crate::model::present")]
    pub tenant_ids: Option<Vec<String>>,
    /// The applications the validation tokens of rich notifications must name as their
    /// audience; required with `encryption_keys`.
    #[schemars(inner(length(min = 1)))]
    #[serde(default, deserialize_with = "crate::model::present")]
    pub app_ids: Option<Vec<String>>,
    /// The RSA keys rich notifications are encrypted to, by `encryptionCertificateId`.
    #[serde(default, deserialize_with = "crate::model::present")]
    pub encryption_keys: Option<Vec<EncryptionKey>>,
    /// The subscription pushgate creates and renews itself.
    #[serde(default, deserialize_with = "crate::model::present")]
    pub subscription: Option<Subscription>,
}

/// One key of `encryption_keys`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EncryptionKey {
    /// The subscription's `encryptionCertificateId`.
    #[schemars(length(min = 1, max = 256))]
    pub id: String,
    /// A PEM RSA private key (PRIVATE KEY or RSA PRIVATE KEY), 2048 to 4096 bits.
    pub private_key_pem: String,
    /// The PEM X.509 certificate of this key (checked against it when given).
    #[serde(default, deserialize_with = "crate::model::present")]
    pub certificate_pem: Option<String>,
}

/// A Graph subscription pushgate keeps: created, renewed and re-created by the upkeep.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Subscription {
    #[schemars(length(min = 1))]
    pub resource: String,
    #[schemars(length(min = 1))]
    pub change_type: String,
    #[schemars(length(min = 1))]
    pub tenant_id: String,
    #[schemars(length(min = 1))]
    pub client_id: String,
    #[schemars(length(min = 1))]
    pub client_secret: String,
    /// The lifetime asked for, in minutes (capped by the resource's limit).
    #[schemars(range(min = 1, max = MAX_GRAPH_EXPIRATION_MINUTES))]
    #[serde(default, deserialize_with = "crate::model::present")]
    pub expiration_minutes: Option<i64>,
}

/// Keys an `ms_graph` config may have.
pub const KEYS: [&str; 5] = ["client_state", "tenant_ids", "app_ids", "encryption_keys", "subscription"];

/// Adds every problem with an `ms_graph` config to `errors`.
pub fn check(map: &Map<String, Value>, errors: &mut Vec<String>) {
    match map.get("client_state").and_then(Value::as_str) {
        Some(s) if !s.is_empty() && s.chars().count() <= 128 => {}
        _ => errors.push("`client_state` is required: a string of 1 to 128 characters".into()),
    }
    optional_list(map, "tenant_ids", |s| !s.is_empty(), "a tenant id", errors);
    optional_list(map, "app_ids", |s| !s.is_empty(), "an application id", errors);
    encryption_keys(map, errors);
    // Rich notifications come with validation tokens whose audience is the app.
    let has_keys = map.get("encryption_keys").and_then(Value::as_array).is_some_and(|k| !k.is_empty());
    let has_apps = map.get("app_ids").and_then(Value::as_array).is_some_and(|a| !a.is_empty());
    if has_keys && !has_apps {
        errors.push("`app_ids` is required with `encryption_keys`: the validation tokens of rich notifications name the application as their audience".into());
    }
    graph_subscription(map, errors);
}

/// Fields of one item of a Graph connection's `encryption_keys`.
const ENCRYPTION_KEY_FIELDS: [&str; 3] = ["id", "private_key_pem", "certificate_pem"];

/// Each key must parse as the RSA private key Graph will encrypt to, so a bad key is
/// refused here rather than as undecryptable notifications later; errors name the key
/// by its id, never by its contents.
fn encryption_keys(map: &Map<String, Value>, errors: &mut Vec<String>) {
    let Some(value) = map.get("encryption_keys") else { return };
    let Some(items) = value.as_array() else {
        errors.push("`encryption_keys` must be a list of {\"id\", \"private_key_pem\", \"certificate_pem\" (optional)}".into());
        return;
    };
    let mut seen: Vec<&str> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let Some(key) = item.as_object() else {
            errors
                .push(format!("`encryption_keys[{i}]` must be an object {{\"id\", \"private_key_pem\", \"certificate_pem\" (optional)}}"));
            continue;
        };
        let name = match key.get("id").and_then(Value::as_str) {
            Some(id) if !id.is_empty() && id.chars().count() <= 256 => {
                if seen.contains(&id) {
                    errors.push(format!("`encryption_keys`: the id {id:?} is used twice (ids must be unique)"));
                }
                seen.push(id);
                format!("`encryption_keys` key {id:?}")
            }
            _ => {
                errors.push(format!(
                    "`encryption_keys[{i}].id` is required: a string of 1 to 256 characters (the subscription's encryptionCertificateId)"
                ));
                format!("`encryption_keys[{i}]`")
            }
        };
        let parsed = match key.get("private_key_pem").and_then(Value::as_str) {
            // A leftover mask is reported once, by the check every config gets (config_check::validate).
            Some(crate::secrets::MASK) => None,
            Some(pem) => match rich::parse_private_key_pem(pem) {
                Ok(parsed) => Some(parsed),
                Err(problem) => {
                    errors.push(format!("{name}: `private_key_pem` must be a PEM RSA private key of 2048 to 4096 bits: {problem}"));
                    None
                }
            },
            None => {
                errors.push(format!("{name}: `private_key_pem` is required: a PEM RSA private key (PRIVATE KEY or RSA PRIVATE KEY)"));
                None
            }
        };
        match key.get("certificate_pem") {
            None => {}
            Some(Value::String(certificate)) => {
                if let Some(parsed) = &parsed {
                    if let Err(problem) = rich::check_certificate(certificate, parsed) {
                        errors.push(format!("{name}: `certificate_pem` must be the PEM X.509 certificate of this key: {problem}"));
                    }
                }
            }
            Some(_) => errors.push(format!("{name}: `certificate_pem` must be a PEM X.509 certificate")),
        }
        for field in key.keys() {
            if !ENCRYPTION_KEY_FIELDS.contains(&field.as_str()) {
                errors.push(format!(
                    "{name}: `{field}` is not a field of an encryption key (expected: {})",
                    ENCRYPTION_KEY_FIELDS.join(", ")
                ));
            }
        }
    }
}

fn graph_subscription(map: &Map<String, Value>, errors: &mut Vec<String>) {
    let Some(value) = map.get("subscription") else { return };
    let fields = ["resource", "change_type", "tenant_id", "client_id", "client_secret"];
    let optional = ["expiration_minutes"];
    let valid = value.as_object().is_some_and(|s| {
        fields.iter().all(|f| s.get(*f).and_then(Value::as_str).is_some_and(|v| !v.is_empty()))
            && s.keys().all(|k| fields.contains(&k.as_str()) || optional.contains(&k.as_str()))
    });
    if !valid {
        errors.push(format!(
            "`subscription` must be an object with the string fields {} and optionally `expiration_minutes`",
            fields.join(", ")
        ));
    }
    if let Some(minutes) = value.get("expiration_minutes") {
        if minutes.as_i64().is_none_or(|m| !(1..=MAX_GRAPH_EXPIRATION_MINUTES).contains(&m)) {
            errors.push(format!("`subscription.expiration_minutes` must be a whole number from 1 to {MAX_GRAPH_EXPIRATION_MINUTES}"));
        }
    }
}
