//! Which parts of a connection's or a destination's `config` are secret, and how they are
//! hidden.
//!
//! A field is secret by its name, wherever it sits (INTERFACE.md sections 2 and 7). The API
//! shows such fields as `"***"`; a PATCH that sends `"***"` back keeps the stored value, so
//! an admin can edit one field without knowing the others.

use serde_json::Value;

pub const MASK: &str = "***";

/// Field names whose values are write-only and sealed at rest.
pub const SECRET_FIELDS: [&str; 7] = ["value", "password", "secret", "client_state", "client_secret", "private_key_pem", "auth_id"];

/// Field names of a destination's config whose values are write-only and sealed at rest
/// (`value` is the value of a `header` auth).
pub const DESTINATION_SECRET_FIELDS: [&str; 4] = ["token", "password", "secret", "value"];

pub fn is_secret_field(name: &str) -> bool {
    SECRET_FIELDS.contains(&name)
}

/// A copy of a connection's `config` with every secret value (strings, and each string of a
/// list) masked.
pub fn masked(config: &Value) -> Value {
    masked_with(config, &SECRET_FIELDS)
}

/// [`masked`] for the secret field names `fields`.
pub fn masked_with(config: &Value, fields: &[&str]) -> Value {
    match config {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let shown = if fields.contains(&k.as_str()) { mask_all(v) } else { masked_with(v, fields) };
                    (k.clone(), shown)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|v| masked_with(v, fields)).collect()),
        other => other.clone(),
    }
}

fn mask_all(value: &Value) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.iter().map(mask_all).collect()),
        Value::Null => Value::Null,
        _ => Value::String(MASK.to_owned()),
    }
}

/// Replaces every `"***"` under a secret field of `incoming` by the value at the same place
/// in `stored`. A mask with nothing stored at its place is left as it is; validation
/// (`sources::config_check`) then refuses it, so `***` never becomes a secret.
pub fn restore_masked(incoming: &mut Value, stored: &Value) {
    restore(incoming, Some(stored), false, &SECRET_FIELDS);
}

/// [`restore_masked`] for the secret field names `fields`.
pub fn restore_masked_with(incoming: &mut Value, stored: &Value, fields: &[&str]) {
    restore(incoming, Some(stored), false, fields);
}

fn restore(incoming: &mut Value, stored: Option<&Value>, under_secret: bool, fields: &[&str]) {
    match incoming {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                let old = stored.and_then(|s| s.get(k));
                restore(v, old, under_secret || fields.contains(&k.as_str()), fields);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter_mut().enumerate() {
                // Items with an `id` (like encryption keys) are matched by it, so removing
                // or reordering entries never pairs a secret with another entry.
                let old = match v.get("id") {
                    Some(id) => stored.and_then(Value::as_array).and_then(|all| all.iter().find(|o| o.get("id") == Some(id))),
                    None => stored.and_then(|s| s.get(i)),
                };
                restore(v, old, under_secret, fields);
            }
        }
        Value::String(s) if under_secret && s == MASK => {
            if let Some(old) = stored {
                *incoming = old.clone();
            }
        }
        _ => {}
    }
}

/// Every secret string in `config`, so callers can check that none leaks into output.
pub fn secret_strings(config: &Value) -> Vec<String> {
    secret_strings_with(config, &SECRET_FIELDS)
}

/// [`secret_strings`] for the secret field names `fields`.
pub fn secret_strings_with(config: &Value, fields: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    collect(config, false, fields, &mut out);
    out
}

fn collect(value: &Value, under_secret: bool, fields: &[&str], out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                collect(v, under_secret || fields.contains(&k.as_str()), fields, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect(v, under_secret, fields, out)),
        Value::String(s) if under_secret => out.push(s.clone()),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn masks_secret_fields_at_any_depth_and_in_lists() {
        let config = json!({
            "auth": {"type": "hmac_sha256", "header": "X-Sig", "secret": ["a", "b"]},
            "encryption_keys": [{"id": "k1", "private_key_pem": "PEM"}],
            "client_state": "cs",
            "topic_arns": ["arn:aws:sns:eu-west-1:1:t"]
        });
        let shown = masked(&config);
        assert_eq!(shown["auth"]["secret"], json!(["***", "***"]));
        assert_eq!(shown["auth"]["header"], "X-Sig");
        assert_eq!(shown["encryption_keys"][0]["private_key_pem"], "***");
        assert_eq!(shown["encryption_keys"][0]["id"], "k1");
        assert_eq!(shown["client_state"], "***");
        assert_eq!(shown["topic_arns"], config["topic_arns"]);
        let mut secrets = secret_strings(&config);
        secrets.sort();
        assert_eq!(secrets, ["PEM", "a", "b", "cs"]);
    }

    #[test]
    fn restores_masked_values_from_the_stored_config() {
        let stored = json!({"auth": {"type": "api_key", "header": "X-Key", "value": "old"}});
        let mut incoming = json!({"auth": {"type": "api_key", "header": "X-New", "value": "***"}});
        restore_masked(&mut incoming, &stored);
        assert_eq!(incoming, json!({"auth": {"type": "api_key", "header": "X-New", "value": "old"}}));

        let mut replaced = json!({"auth": {"type": "api_key", "header": "X", "value": "new"}});
        restore_masked(&mut replaced, &stored);
        assert_eq!(replaced["auth"]["value"], "new");
    }

    #[test]
    fn list_items_with_an_id_are_matched_by_it() {
        let stored = json!({"encryption_keys": [{"id": "a", "private_key_pem": "PEM-A"}, {"id": "b", "private_key_pem": "PEM-B"}]});
        let mut incoming = json!({"encryption_keys": [{"id": "b", "private_key_pem": "***"}, {"id": "c", "private_key_pem": "***"}]});
        restore_masked(&mut incoming, &stored);
        assert_eq!(incoming["encryption_keys"][0]["private_key_pem"], "PEM-B");
        assert_eq!(incoming["encryption_keys"][1]["private_key_pem"], "***", "no stored key c: stays masked and fails validation");
    }

    #[test]
    fn a_mask_outside_a_secret_field_is_plain_text() {
        let stored = json!({"name": "real"});
        let mut incoming = json!({"name": "***"});
        restore_masked(&mut incoming, &stored);
        assert_eq!(incoming["name"], "***");
    }
}
