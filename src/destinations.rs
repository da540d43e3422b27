//! Creating and changing destinations (INTERFACE.md section 7): request shapes,
//! validation that lists every problem at once, and sealing of secrets (`token`,
//! `password`, `secret`, a header auth's `value`) before anything reaches the store.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use crate::crypto::MasterKey;
use crate::forward::config::SinkConfig;
use crate::model::{Destination, DestinationKind, DestinationUpdate, EventFilter, EventKind, NewDestination, SourceKind, StartFrom};
use crate::secrets::{masked_with, restore_masked_with, DESTINATION_SECRET_FIELDS};

/// Body of `POST /v1/destinations`. Its `Debug` masks the config's secrets.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    pub name: String,
    pub kind: String,
    #[serde(default)]
    pub filter: Option<Value>,
    #[serde(default)]
    pub start_from: Option<String>,
    #[serde(default = "empty_object")]
    pub config: Value,
}

/// Body of `PATCH /v1/destinations/{id}`: absent fields stay as they are.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchRequest {
    #[serde(default)]
    pub name: Option<String>,
    /// `null` (like `{}`) takes every event again; absent leaves the filter as it is.
    #[serde(default, deserialize_with = "present")]
    pub filter: Option<Value>,
    #[serde(default)]
    pub config: Option<Value>,
}

/// A field that is present, `null` included.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

impl std::fmt::Debug for CreateRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateRequest")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("filter", &self.filter)
            .field("start_from", &self.start_from)
            .field("config", &masked(&self.config))
            .finish()
    }
}

impl std::fmt::Debug for PatchRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PatchRequest")
            .field("name", &self.name)
            .field("filter", &self.filter)
            .field("config", &self.config.as_ref().map(masked))
            .finish()
    }
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}

/// A destination config with its secrets shown as `***`.
pub fn masked(config: &Value) -> Value {
    masked_with(config, &DESTINATION_SECRET_FIELDS)
}

/// Validates a create request and seals its config; `Err` lists every problem.
pub fn prepare_new(req: CreateRequest, key: &MasterKey, now: DateTime<Utc>) -> Result<NewDestination, Vec<String>> {
    let mut errors = Vec::new();
    check_name(&req.name, &mut errors);
    let kind = DestinationKind::parse(&req.kind);
    if kind.is_none() {
        let all: Vec<_> = DestinationKind::ALL.iter().map(|k| k.as_str()).collect();
        errors.push(format!("`kind` `{}` is not one of {}", req.kind, all.join(", ")));
    }
    let filter = parse_filter(req.filter.as_ref(), &mut errors);
    let start_from = match req.start_from.as_deref() {
        None => Some(StartFrom::Earliest),
        Some(text) => StartFrom::parse(text).or_else(|| {
            errors.push(format!("`start_from` `{text}` is not `earliest` or `now`"));
            None
        }),
    };
    if let Some(kind) = kind {
        if let Err(e) = SinkConfig::parse(kind, &req.config) {
            errors.extend(e);
        }
    }
    let (Some(kind), Some(start_from), true) = (kind, start_from, errors.is_empty()) else { return Err(errors) };
    let id = Uuid::new_v4();
    Ok(NewDestination {
        id,
        name: req.name,
        kind,
        filter,
        start_from,
        config_public: masked(&req.config),
        config_sealed: seal_config(key, id, &req.config),
        created_at: now,
    })
}

/// Validates a patch against the stored destination; masked secrets keep their values.
pub fn prepare_update(existing: &Destination, req: PatchRequest, key: &MasterKey) -> Result<DestinationUpdate, Vec<String>> {
    let mut errors = Vec::new();
    if let Some(name) = &req.name {
        check_name(name, &mut errors);
    }
    let filter = req.filter.as_ref().map(|f| parse_filter(Some(f), &mut errors));
    let config = match req.config {
        None => None,
        Some(mut config) => match open_config(key, existing) {
            Ok(stored) => {
                restore_masked_with(&mut config, &stored, &DESTINATION_SECRET_FIELDS);
                if let Err(e) = SinkConfig::parse(existing.kind, &config) {
                    errors.extend(e);
                }
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
    Ok(DestinationUpdate { name: req.name, filter, config })
}

/// The full config of a stored destination, secrets included.
pub fn open_config(key: &MasterKey, d: &Destination) -> Result<Value, String> {
    key.open_config(&seal_context(d.id), &d.config_sealed).map_err(|e| e.to_string())
}

/// Destinations are sealed under their own context, so a sealed config can never be
/// opened as another row's (a connection's or another destination's).
fn seal_context(id: Uuid) -> String {
    format!("destination:{id}")
}

fn seal_config(key: &MasterKey, id: Uuid, config: &Value) -> String {
    key.seal(&seal_context(id), config.to_string().as_bytes())
}

fn check_name(name: &str, errors: &mut Vec<String>) {
    if name.trim().is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        errors.push("`name` must be 1 to 200 printable characters".into());
    }
}

/// A filter from its JSON; problems go to `errors` (the filter is then unusable).
pub fn parse_filter(value: Option<&Value>, errors: &mut Vec<String>) -> EventFilter {
    let Some(value) = value.filter(|v| !v.is_null()) else { return EventFilter::default() };
    let Some(map) = value.as_object() else {
        errors.push("`filter` must be an object".into());
        return EventFilter::default();
    };
    let mut filter = EventFilter::default();
    for (key, entry) in map {
        let list = match entry.as_array() {
            Some(items) if !items.is_empty() && items.len() <= 1000 => {
                let strings: Option<Vec<String>> = items.iter().map(|i| i.as_str().map(str::to_owned)).collect();
                match strings {
                    Some(s) => s,
                    None => {
                        errors.push(format!("`filter.{key}` must be a list of strings"));
                        continue;
                    }
                }
            }
            _ => {
                errors.push(format!("`filter.{key}` must be a list of 1 to 1000 strings (leave the key out to take all)"));
                continue;
            }
        };
        match key.as_str() {
            "tenant_ids" => {
                for t in list.iter().filter(|t| t.is_empty() || t.chars().count() > 128 || t.chars().any(char::is_control)) {
                    errors.push(format!("`filter.tenant_ids`: `{t}` is not a tenant id"));
                }
                filter.tenant_ids = Some(list);
            }
            "sources" => {
                for s in list.iter().filter(|s| SourceKind::parse(s).is_none()) {
                    errors.push(format!("`filter.sources`: `{s}` is not a source"));
                }
                filter.sources = Some(list);
            }
            "streams" => {
                for s in list.iter().filter(|s| !stream_pattern(s)) {
                    errors.push(format!("`filter.streams`: `{s}` is not a stream name or a prefix ending in `*`"));
                }
                filter.streams = Some(list);
            }
            "kinds" => {
                // `raw` is what an authentic but undecodable body is kept as.
                for k in list.iter().filter(|k| EventKind::parse(k).is_none()) {
                    let known = EventKind::ALL.map(EventKind::as_str);
                    errors.push(format!("`filter.kinds`: `{k}` is not one of {}", known.join(", ")));
                }
                filter.kinds = Some(list);
            }
            other => errors.push(format!("`filter.{other}` is not a filter (tenant_ids, sources, streams, kinds)")),
        }
    }
    filter
}

/// A stream name (a-z, 0-9, _), optionally cut short and ended with `*`.
fn stream_pattern(p: &str) -> bool {
    let name = p.strip_suffix('*').unwrap_or(p);
    name.len() <= 64 && (!name.is_empty() || p == "*") && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
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
            request(json!({"name": "SOC bus", "kind": "nats",
                "config": {"url": "nats://127.0.0.1:4222", "auth": {"type": "token", "token": "nats-secret"}}})),
            &key,
            crate::model::now(),
        )
        .unwrap();
        assert_eq!((new.kind, new.start_from, new.filter.clone()), (DestinationKind::Nats, StartFrom::Earliest, EventFilter::default()));
        assert_eq!(new.config_public["auth"]["token"], "***");
        assert!(!new.config_sealed.contains("nats-secret"));
        let d = Destination {
            id: new.id,
            name: new.name.clone(),
            kind: new.kind,
            filter: new.filter.clone(),
            start_from: new.start_from,
            config_public: new.config_public.clone(),
            config_sealed: new.config_sealed.clone(),
            paused: false,
            created_at: new.created_at,
            updated_at: new.created_at,
            position: crate::model::Position::START,
            planned: None,
            lease: None,
            failing: false,
            last_delivered_at: None,
            last_error: None,
            counters: Default::default(),
        };
        assert_eq!(open_config(&key, &d).unwrap()["auth"]["token"], "nats-secret");
        assert!(!format!("{:?}", request(json!({"name": "n", "kind": "nats", "config": {"auth": {"token": "hidden"}}}))).contains("hidden"));

        // A patch that sends `***` back keeps the secret.
        let update = prepare_update(
            &d,
            serde_json::from_value(json!({"config": {"url": "nats://127.0.0.1:4223", "auth": {"type": "token", "token": "***"}}})).unwrap(),
            &key,
        )
        .unwrap();
        let (public, sealed) = update.config.unwrap();
        assert_eq!(public["url"], "nats://127.0.0.1:4223");
        let reopened = Destination { config_sealed: sealed, ..d };
        assert_eq!(open_config(&key, &reopened).unwrap()["auth"]["token"], "nats-secret");
    }

    #[test]
    fn every_problem_is_listed() {
        let errors = prepare_new(
            request(json!({"name": "", "kind": "http", "start_from": "yesterday",
                "filter": {"sources": ["aws_sns", "carrier_pigeon"], "streams": ["Bad*"], "kinds": ["alert", "x"], "colour": ["red"], "tenant_ids": []},
                "config": {"url": "not a url", "format": "xml"}})),
            &key(),
            crate::model::now(),
        )
        .unwrap_err();
        assert_eq!(errors.len(), 9, "{errors:#?}");
        let e = prepare_new(request(json!({"name": "n", "kind": "kafka"})), &key(), crate::model::now()).unwrap_err();
        assert_eq!(e, ["config.brokers: is required"]);
        let e = prepare_new(request(json!({"name": "n", "kind": "pigeon"})), &key(), crate::model::now()).unwrap_err();
        assert!(e[0].contains("is not one of nats, http, kafka, s3"), "{e:?}");
    }

    #[test]
    fn a_null_filter_in_a_patch_takes_every_event() {
        let p: PatchRequest = serde_json::from_value(json!({"filter": null})).unwrap();
        assert_eq!(p.filter, Some(Value::Null));
        let p: PatchRequest = serde_json::from_value(json!({})).unwrap();
        assert_eq!(p.filter, None);
        let mut errors = Vec::new();
        assert_eq!(parse_filter(Some(&Value::Null), &mut errors), EventFilter::default());
        assert!(errors.is_empty());
    }

    #[test]
    fn stream_patterns() {
        for ok in ["cloud_*", "webhook_event", "*", "a1_"] {
            assert!(stream_pattern(ok), "{ok}");
        }
        for bad in ["Cloud", "a-b", "", "**", "a*b"] {
            assert!(!stream_pattern(bad), "{bad}");
        }
    }
}
