//! Creating and changing connections: request shapes, validation that lists every
//! problem at once, and sealing of secrets before anything reaches the store.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use uuid::Uuid;

use crate::crypto::MasterKey;
use crate::model::{Connection, ConnectionUpdate, NewConnection, SourceKind};
use crate::secrets::{masked, restore_masked};
use crate::sources::config_check;

pub const DEFAULT_GRACE_SECONDS: i64 = 60;
const MAX_INTERVAL_SECONDS: i64 = 366 * 24 * 3600;

/// Body of `POST /v1/connections`. Its `Debug` masks the config's secrets.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    pub tenant_id: String,
    pub name: String,
    pub source: String,
    #[serde(default)]
    pub stream: Option<String>,
    #[serde(default)]
    pub heartbeat_interval_seconds: Option<i64>,
    #[serde(default)]
    pub grace_seconds: Option<i64>,
    #[serde(default = "empty_object")]
    pub config: Value,
}

/// Body of `PATCH /v1/connections/{id}`: absent fields stay as they are.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchRequest {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub stream: Option<String>,
    /// `null` means "no heartbeat expected", absent means "unchanged".
    #[serde(default, deserialize_with = "present")]
    pub heartbeat_interval_seconds: Option<Option<i64>>,
    #[serde(default)]
    pub grace_seconds: Option<i64>,
    #[serde(default)]
    pub config: Option<Value>,
}

impl std::fmt::Debug for CreateRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateRequest")
            .field("tenant_id", &self.tenant_id)
            .field("name", &self.name)
            .field("source", &self.source)
            .field("stream", &self.stream)
            .field("config", &masked(&self.config))
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for PatchRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PatchRequest")
            .field("name", &self.name)
            .field("stream", &self.stream)
            .field("heartbeat_interval_seconds", &self.heartbeat_interval_seconds)
            .field("grace_seconds", &self.grace_seconds)
            .field("config", &self.config.as_ref().map(masked))
            .finish()
    }
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<i64>>, D::Error> {
    Option::<i64>::deserialize(d).map(Some)
}

/// Validates a create request and seals its config; `Err` lists every problem.
pub fn prepare_new(req: CreateRequest, key: &MasterKey, now: DateTime<Utc>) -> Result<NewConnection, Vec<String>> {
    let mut errors = Vec::new();
    check_text("tenant_id", &req.tenant_id, 128, &mut errors);
    check_text("name", &req.name, 200, &mut errors);
    let source = SourceKind::parse(&req.source);
    if source.is_none() {
        let all: Vec<_> = SourceKind::ALL.iter().map(|s| s.as_str()).collect();
        errors.push(format!("`source` `{}` is not one of {}", req.source, all.join(", ")));
    }
    if let Some(stream) = &req.stream {
        check_stream(stream, &mut errors);
    }
    check_interval(req.heartbeat_interval_seconds, &mut errors);
    let grace_seconds = req.grace_seconds.unwrap_or(DEFAULT_GRACE_SECONDS);
    check_grace(grace_seconds, &mut errors);
    if let Some(source) = source {
        errors.extend(config_check::validate(source, &req.config).into_iter().map(|e| format!("config: {e}")));
    }
    let Some(source) = source.filter(|_| errors.is_empty()) else { return Err(errors) };
    let id = Uuid::new_v4();
    Ok(NewConnection {
        id,
        tenant_id: req.tenant_id,
        name: req.name,
        stream: req.stream.unwrap_or_else(|| crate::sources::spec(source).default_stream.to_owned()),
        source,
        heartbeat_interval_seconds: req.heartbeat_interval_seconds,
        grace_seconds,
        config_public: masked(&req.config),
        config_sealed: seal_config(key, id, &req.config),
        created_at: now,
    })
}

/// Validates a patch against the stored connection; masked secrets keep their values.
pub fn prepare_update(existing: &Connection, req: PatchRequest, key: &MasterKey) -> Result<ConnectionUpdate, Vec<String>> {
    let mut errors = Vec::new();
    if let Some(name) = &req.name {
        check_text("name", name, 200, &mut errors);
    }
    if let Some(stream) = &req.stream {
        check_stream(stream, &mut errors);
    }
    if let Some(interval) = req.heartbeat_interval_seconds {
        check_interval(interval, &mut errors);
    }
    if let Some(grace) = req.grace_seconds {
        check_grace(grace, &mut errors);
    }
    let config = match req.config {
        None => None,
        Some(mut config) => match open_config(key, existing) {
            Ok(stored) => {
                restore_masked(&mut config, &stored);
                errors.extend(config_check::validate(existing.source, &config).into_iter().map(|e| format!("config: {e}")));
                Some((masked(&config), seal_config(key, existing.id, &config)))
            }
            Err(e) => {
                errors.push(e);
                None
            }
        },
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(ConnectionUpdate {
        name: req.name,
        stream: req.stream,
        heartbeat_interval_seconds: req.heartbeat_interval_seconds,
        grace_seconds: req.grace_seconds,
        config,
    })
}

/// The full config of a stored connection, secrets included.
pub fn open_config(key: &MasterKey, c: &Connection) -> Result<Value, String> {
    key.open_config(&c.id.to_string(), &c.config_sealed).map_err(|e| e.to_string())
}

fn seal_config(key: &MasterKey, id: Uuid, config: &Value) -> String {
    key.seal(&id.to_string(), config.to_string().as_bytes())
}

fn check_text(field: &str, value: &str, max: usize, errors: &mut Vec<String>) {
    if value.trim().is_empty() || value.chars().count() > max || value.chars().any(char::is_control) {
        errors.push(format!("`{field}` must be 1 to {max} printable characters"));
    }
}

fn check_stream(stream: &str, errors: &mut Vec<String>) {
    let ok = (1..=64).contains(&stream.len())
        && stream.starts_with(|c: char| c.is_ascii_lowercase())
        && stream.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !ok {
        errors.push("`stream` must be 1 to 64 characters of a-z, 0-9 and _, starting with a letter".into());
    }
}

fn check_interval(interval: Option<i64>, errors: &mut Vec<String>) {
    if interval.is_some_and(|n| !(1..=MAX_INTERVAL_SECONDS).contains(&n)) {
        errors.push(format!("`heartbeat_interval_seconds` must be null or 1 to {MAX_INTERVAL_SECONDS}"));
    }
}

fn check_grace(grace: i64, errors: &mut Vec<String>) {
    if !(0..=MAX_INTERVAL_SECONDS).contains(&grace) {
        errors.push(format!("`grace_seconds` must be 0 to {MAX_INTERVAL_SECONDS}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key() -> MasterKey {
        MasterKey::from_base64(&MasterKey::generate_base64()).unwrap()
    }

    fn request(body: Value) -> CreateRequest {
        serde_json::from_value(body).unwrap()
    }

    #[test]
    fn create_seals_secrets_and_fills_defaults() {
        let key = key();
        let new = prepare_new(
            request(json!({"tenant_id": "acme", "name": "hook", "source": "webhook",
                "config": {"auth": {"type": "api_key", "header": "X-Key", "value": "k-secret"}}})),
            &key,
            crate::model::now(),
        )
        .unwrap();
        assert_eq!(new.stream, "webhook_event");
        assert_eq!(new.grace_seconds, 60);
        assert_eq!(new.heartbeat_interval_seconds, None);
        assert_eq!(new.config_public["auth"]["value"], "***");
        assert!(!new.config_sealed.contains("k-secret"));
        let opened = key.open(&new.id.to_string(), &new.config_sealed).unwrap();
        assert!(String::from_utf8(opened).unwrap().contains("k-secret"));
    }

    #[test]
    fn create_lists_every_problem() {
        let errors = prepare_new(
            request(json!({"tenant_id": "", "name": "n", "source": "aws_sns", "stream": "Bad-Name",
                "heartbeat_interval_seconds": 0, "grace_seconds": -1, "config": {}})),
            &key(),
            crate::model::now(),
        )
        .unwrap_err();
        assert_eq!(errors.len(), 5, "{errors:?}");
        assert!(errors.iter().any(|e| e.contains("topic_arns")));
        let errors = prepare_new(request(json!({"tenant_id": "t", "name": "n", "source": "carrier_pigeon"})), &key(), crate::model::now())
            .unwrap_err();
        assert!(errors[0].contains("carrier_pigeon"));
    }

    #[test]
    fn debug_output_masks_secrets() {
        let r = request(json!({"tenant_id": "t", "name": "n", "source": "webhook",
            "config": {"auth": {"type": "api_key", "header": "X", "value": "hidden-value"}}}));
        assert!(!format!("{r:?}").contains("hidden-value"));
        let p: PatchRequest = serde_json::from_value(json!({"config": {"client_state": "hidden-state"}})).unwrap();
        assert!(!format!("{p:?}").contains("hidden-state"));
    }

    #[test]
    fn patch_distinguishes_null_from_absent() {
        let p: PatchRequest = serde_json::from_value(json!({"heartbeat_interval_seconds": null})).unwrap();
        assert_eq!(p.heartbeat_interval_seconds, Some(None));
        let p: PatchRequest = serde_json::from_value(json!({})).unwrap();
        assert_eq!(p.heartbeat_interval_seconds, None);
        assert!(serde_json::from_value::<PatchRequest>(json!({"source": "webhook"})).is_err());
    }
}
