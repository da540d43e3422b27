//! Validation of a connection's `config`, so a bad config is refused with a clear message
//! when it is saved rather than when the first push arrives: the rules every config
//! shares, then its sender's own ([`super::ConfigSpec::check`]), then a reading as
//! the typed config the catalog's schema comes from. Also the small rules several
//! senders' checks use.

use serde_json::{Map, Value};

pub use super::catalog::{MAX_CANARY_INTERVAL_SECONDS, MAX_GRAPH_EXPIRATION_MINUTES};
use crate::model::SourceKind;

/// Every problem with `config` for `source`; empty when it is valid.
pub fn validate(source: SourceKind, config: &Value) -> Vec<String> {
    let Some(map) = config.as_object() else {
        return vec!["`config` must be a JSON object".into()];
    };
    let spec = super::spec(source);
    let mut errors = Vec::new();
    if has_nul(config) {
        errors.push("strings in `config` must not contain NUL characters".into());
    }
    if crate::secrets::secret_strings(config).iter().any(|s| s == crate::secrets::MASK) {
        errors.push("a secret field is `***` with no stored value at that place: send the secret itself".into());
    }
    (spec.config.check)(map, &mut errors);
    for key in map.keys() {
        if !spec.config.keys.contains(&key.as_str()) {
            errors.push(format!("`{key}` is not a config field of {} (expected: {})", source.as_str(), spec.config.keys.join(", ")));
        }
    }
    // The schema the catalog serves is generated from the typed config: what it does not
    // read is refused too, even where the rules above found nothing to say.
    if errors.is_empty() {
        if let Err(e) = (spec.config.read)(config) {
            errors.push(format!("the config does not match the {} schema of GET /v1/sources: {e}", source.as_str()));
        }
    }
    errors
}

fn has_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(has_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

/// `key`, when present, is `true` or `false`.
pub(in crate::sources) fn optional_bool(map: &Map<String, Value>, key: &str, errors: &mut Vec<String>) {
    if map.get(key).is_some_and(|v| !v.is_boolean()) {
        errors.push(format!("`{key}` must be true or false"));
    }
}

/// `key`, when present, is a non-empty string.
pub(in crate::sources) fn optional_string(map: &Map<String, Value>, key: &str, errors: &mut Vec<String>) {
    if map.get(key).is_some_and(|v| v.as_str().is_none_or(|s| s.is_empty())) {
        errors.push(format!("`{key}` must be a non-empty string"));
    }
}

/// `key`, when present, is a list whose every item passes `ok` (`what` says what it must be).
pub(in crate::sources) fn optional_list(
    map: &Map<String, Value>,
    key: &str,
    ok: impl Fn(&str) -> bool,
    what: &str,
    errors: &mut Vec<String>,
) {
    let Some(value) = map.get(key) else { return };
    match value.as_array() {
        Some(items) if items.iter().all(|i| i.as_str().is_some_and(&ok)) => {}
        _ => errors.push(format!("`{key}` must be a list, each item {what}")),
    }
}

/// `canary`, when present, is `{target, "interval_seconds"}` with `target` passing `ok`.
pub(in crate::sources) fn canary(map: &Map<String, Value>, target: &str, ok: impl Fn(&str) -> bool, what: &str, errors: &mut Vec<String>) {
    let Some(value) = map.get("canary") else { return };
    let Some(canary) = value.as_object() else {
        errors.push(format!("`canary` must be an object {{\"{target}\", \"interval_seconds\"}}"));
        return;
    };
    if !canary.get(target).and_then(Value::as_str).is_some_and(ok) {
        errors.push(format!("`canary.{target}` is required: {what}"));
    }
    if canary.get("interval_seconds").and_then(Value::as_i64).is_none_or(|n| !(1..=MAX_CANARY_INTERVAL_SECONDS).contains(&n)) {
        errors.push(format!("`canary.interval_seconds` is required: a whole number from 1 to {MAX_CANARY_INTERVAL_SECONDS}"));
    }
    for key in canary.keys() {
        if key != target && key != "interval_seconds" {
            errors.push(format!("`canary.{key}` is not a canary field"));
        }
    }
}

#[cfg(test)]
mod tests;
