//! The source catalog (`GET /v1/sources`, INTERFACE.md section 8): for each source its
//! push URL template, default stream, the JSON Schema of its config, its secret fields
//! and what counts as its heartbeat, so a console renders each source's form from the
//! server and never drifts from it.
//!
//! Each schema is generated (schemars, draft 2020-12) from the sender's own typed
//! `Config`. `POST /v1/connections` checks a config with [`super::config_check`], which
//! words every problem for a person, and also reads it as that typed `Config`, so a
//! config the schema refuses is refused by the API too. A few rules no schema states
//! stay with the API: a PEM key must parse, key ids must be unique, an SNS canary topic
//! must be one of `topic_arns`, and no secret may be the mask `***`.

use schemars::generate::SchemaSettings;
use serde_json::{json, Value};

use crate::model::SourceKind;

/// The longest canary interval: a day (a canary exists to be noticed within two heartbeats).
pub const MAX_CANARY_INTERVAL_SECONDS: i64 = 86_400;

/// The longest Graph subscription lifetime pushgate asks for: 30 days, the most any Graph
/// resource allows (most allow far less; Graph refuses a request over its resource's limit).
pub const MAX_GRAPH_EXPIRATION_MINUTES: i64 = 43_200;

/// What the catalog says of one source.
#[derive(Debug, Clone)]
pub struct SourceEntry {
    pub source: SourceKind,
    /// The config's JSON Schema (draft 2020-12).
    pub config_schema: Value,
    /// Where each secret sits in the config (`auth.secret`, `encryption_keys[].private_key_pem`):
    /// write-only, sealed at rest, shown as `***`.
    pub secret_fields: &'static [&'static str],
    /// What counts as this source's heartbeat, in words.
    pub heartbeat: &'static str,
}

impl SourceEntry {
    /// The push URL with `{id}` for the connection id, under the server's public URL.
    pub fn push_url_template(&self) -> String {
        format!("/push/{}/{{id}}", self.source.route_segment())
    }

    /// The object `GET /v1/sources` answers for this source.
    pub fn to_json(&self) -> Value {
        json!({
            "source": self.source.as_str(),
            "push_url_template": self.push_url_template(),
            "default_stream": self.source.default_stream(),
            "config_schema": self.config_schema,
            "secret_fields": self.secret_fields,
            "heartbeat": self.heartbeat,
        })
    }
}

const SHARED_SECRET_FIELDS: &[&str] = &["auth.value", "auth.password", "auth.secret"];

/// The catalog entry of `source`.
pub fn entry(source: SourceKind) -> SourceEntry {
    let (config_schema, secret_fields, heartbeat): (Value, &'static [&'static str], &'static str) = match source {
        SourceKind::Webhook => {
            (schema_of::<super::webhook::Config>(), SHARED_SECRET_FIELDS, "a verified push whose JSON body is {\"type\": \"heartbeat\"}")
        }
        SourceKind::AwsSns => (
            schema_of::<super::aws_sns::config::Config>(),
            &[],
            "a verified SNS Notification whose Message is an EventBridge Scheduled Event (source aws.events), \
             such as the canary's or an EventBridge schedule's",
        ),
        SourceKind::AwsEventbridge => (
            schema_of::<super::aws_eventbridge::Config>(),
            SHARED_SECRET_FIELDS,
            "a verified EventBridge Scheduled Event (source aws.events) sent by a schedule rule to the API destination",
        ),
        SourceKind::GcpPubsub => (
            schema_of::<super::gcp_pubsub::config::Config>(),
            &[],
            "a verified Pub/Sub push whose message has the attribute pushgate_kind = heartbeat, \
             such as the canary's or a Cloud Scheduler job's",
        ),
        SourceKind::MsGraph => (
            schema_of::<super::ms_graph::config::Config>(),
            &["client_state", "encryption_keys[].private_key_pem", "subscription.client_secret"],
            "none: Graph sends no heartbeat; the subscription's confirmation, expiry and lifecycle \
             notifications (removed, reauthorization required, missed) tell its health",
        ),
        SourceKind::O365Activity => (
            schema_of::<super::o365_activity::Config>(),
            &["auth_id"],
            "none: the Management Activity API sends no heartbeat; each content notification counts as data",
        ),
    };
    SourceEntry { source, config_schema, secret_fields, heartbeat }
}

/// Every source, in the order of [`SourceKind::ALL`].
pub fn catalog() -> Vec<SourceEntry> {
    SourceKind::ALL.into_iter().map(entry).collect()
}

/// `{"sources": [...]}`, as `GET /v1/sources` answers it; built once.
pub fn catalog_json() -> &'static Value {
    static CATALOG: std::sync::LazyLock<Value> =
        std::sync::LazyLock::new(|| json!({"sources": catalog().iter().map(SourceEntry::to_json).collect::<Vec<_>>()}));
    &CATALOG
}

/// The draft 2020-12 schema of `T`. A field left out is absent, never `null`: the API
/// refuses a `null` where a value is expected, so the schema does too.
fn schema_of<T: schemars::JsonSchema>() -> Value {
    let mut schema = SchemaSettings::draft2020_12().into_generator().into_root_schema_for::<T>().to_value();
    without_null(&mut schema);
    schema
}

/// Removes the `null` schemars allows for an `Option` field (`"type": ["string", "null"]`,
/// or a `{"type": "null"}` alternative of an `anyOf`).
fn without_null(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            if let Some(Value::Array(types)) = map.get_mut("type") {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    let only = types.remove(0);
                    map.insert("type".into(), only);
                }
            }
            if let Some(Value::Array(choices)) = map.get_mut("anyOf") {
                choices.retain(|c| c != &json!({"type": "null"}));
                if choices.len() == 1 {
                    let only = choices.remove(0);
                    map.remove("anyOf");
                    if let Value::Object(only) = only {
                        map.extend(only);
                    }
                }
            }
            map.values_mut().for_each(without_null);
        }
        Value::Array(items) => items.iter_mut().for_each(without_null),
        _ => {}
    }
}

/// The typed reading of `config` as `source`'s `Config`: the API refuses what it does not
/// read, in the words of the deserializer, when [`super::config_check`] found nothing.
pub fn read_typed(source: SourceKind, config: &Value) -> Result<(), String> {
    fn read<T: serde::de::DeserializeOwned>(config: &Value) -> Result<(), String> {
        T::deserialize(config).map(|_| ()).map_err(|e| e.to_string())
    }
    match source {
        SourceKind::Webhook => read::<super::webhook::Config>(config),
        SourceKind::AwsSns => read::<super::aws_sns::config::Config>(config),
        SourceKind::AwsEventbridge => read::<super::aws_eventbridge::Config>(config),
        SourceKind::GcpPubsub => read::<super::gcp_pubsub::config::Config>(config),
        SourceKind::MsGraph => read::<super::ms_graph::config::Config>(config),
        SourceKind::O365Activity => read::<super::o365_activity::Config>(config),
    }
}

#[cfg(test)]
mod tests;
