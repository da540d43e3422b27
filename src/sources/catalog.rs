//! The source catalog (`GET /v1/sources`, INTERFACE.md section 8): for each source its
//! push URL template, default stream, the JSON Schema of its config, its secret fields
//! and what counts as its heartbeat, so a console renders each source's form from the
//! server and never drifts from it.
//!
//! Each entry is its sender's [`SourceSpec`]; each schema is generated (schemars, draft
//! 2020-12) from the sender's own typed `Config`. `POST /v1/connections` checks a config
//! with [`super::config_check`], which
//! words every problem for a person, and also reads it as that typed `Config`, so a
//! config the schema refuses is refused by the API too. A few rules no schema states
//! stay with the API: a PEM key must parse, key ids must be unique, an SNS canary topic
//! must be one of `topic_arns`, and no secret may be the mask `***`.

use schemars::generate::SchemaSettings;
use serde_json::{json, Value};

use super::{SourceSpec, SOURCES};

/// The longest canary interval: a day (a canary exists to be noticed within two heartbeats).
pub const MAX_CANARY_INTERVAL_SECONDS: i64 = 86_400;

/// The longest Graph subscription lifetime pushgate asks for: 30 days, the most any Graph
/// resource allows (most allow far less; Graph refuses a request over its resource's limit).
pub const MAX_GRAPH_EXPIRATION_MINUTES: i64 = 43_200;

/// The object `GET /v1/sources` answers for `spec`'s source.
pub fn to_json(spec: &SourceSpec) -> Value {
    json!({
        "source": spec.kind.as_str(),
        "push_url_template": push_url_template(spec),
        "default_stream": spec.default_stream,
        "config_schema": (spec.config.schema)(),
        "secret_fields": spec.secret_fields,
        "heartbeat": spec.heartbeat,
    })
}

/// The push URL with `{id}` for the connection id, under the server's public URL.
pub fn push_url_template(spec: &SourceSpec) -> String {
    format!("/push/{}/{{id}}", spec.route_segment)
}

/// `{"sources": [...]}`, as `GET /v1/sources` answers it; built once.
pub fn catalog_json() -> &'static Value {
    static CATALOG: std::sync::LazyLock<Value> =
        std::sync::LazyLock::new(|| json!({"sources": SOURCES.iter().map(|spec| to_json(spec)).collect::<Vec<_>>()}));
    &CATALOG
}

/// The draft 2020-12 schema of `T`. A field left out is absent, never `null`: the API
/// refuses a `null` where a value is expected, so the schema does too.
pub fn schema_of<T: schemars::JsonSchema>() -> Value {
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

#[cfg(test)]
mod tests;
