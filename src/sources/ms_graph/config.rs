//! The config of an `ms_graph` connection, as the source catalog describes it.

use schemars::JsonSchema;
use serde::Deserialize;

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
