//! The text of every setting, layered: defaults, then the TOML file, then `PUSHGATE_*`
//! variables. Each subsystem reads its typed values from here, and every problem found on
//! the way is collected, so an operator fixes them all in one round.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// Keys in the order `check-config` documents them, with their defaults.
pub(super) const DEFAULTS: [(&str, Option<&str>); 27] = [
    ("listen", Some("127.0.0.1:8080")),
    ("database_url", Some("sqlite://pushgate.db")),
    ("public_url", None),
    ("admin_token", None),
    ("master_key", None),
    ("monitor_interval_ms", Some("15000")),
    ("sns_cert_dir", None),
    ("sns_cert_fetch", Some("true")),
    ("google_jwks", Some("https://www.googleapis.com/oauth2/v3/certs")),
    ("microsoft_jwks", Some("https://login.microsoftonline.com/common/discovery/v2.0/keys")),
    ("max_body_bytes", Some("1048576")),
    ("aws_endpoint_url", None),
    ("pubsub_endpoint", None),
    ("graph_endpoint", Some("https://graph.microsoft.com/v1.0")),
    ("microsoft_login_endpoint", Some("https://login.microsoftonline.com")),
    ("o365_endpoints", Some(DEFAULT_O365_ENDPOINTS)),
    ("graph_upkeep", Some("true")),
    ("alert_webhook_url", None),
    ("alert_webhook_secret", None),
    ("log", Some("info")),
    ("log_format", Some("text")),
    ("request_timeout_ms", Some("30000")),
    ("max_concurrent_requests", Some("1024")),
    ("max_buffered_body_bytes", Some("268435456")),
    ("trusted_proxies", Some("")),
    ("event_retention_hours", Some("720")),
    ("forward_max_backlog_hours", Some("168")),
];

/// Keys whose value is a list: comma-separated in a variable, a TOML list (or the same
/// comma-separated string) in the file.
const LISTS: [&str; 2] = ["trusted_proxies", "o365_endpoints"];

/// The Office 365 Management API hosts Microsoft documents ("Activity API operations"):
/// Enterprise, GCC, GCC High and DoD.
pub(super) const DEFAULT_O365_ENDPOINTS: &str =
    "https://manage.office.com,https://manage-gcc.office.com,https://manage.office365.us,https://manage.protection.apps.mil";

/// The layered text of every key, and the problems found so far.
pub(super) struct Layers {
    values: BTreeMap<&'static str, String>,
    pub(super) errors: Vec<String>,
}

impl Layers {
    /// Defaults, then `file` (or `PUSHGATE_CONFIG`), then `PUSHGATE_*` entries of `env`.
    pub(super) fn read(file: Option<&Path>, env: &HashMap<String, String>) -> Layers {
        let mut errors = Vec::new();
        let mut raw: BTreeMap<&'static str, String> = DEFAULTS.iter().filter_map(|(k, v)| v.map(|v| (*k, v.to_owned()))).collect();
        let file = file.map(Path::to_path_buf).or_else(|| env.get("PUSHGATE_CONFIG").map(PathBuf::from));
        if let Some(path) = file {
            match read_toml(&path) {
                Ok(table) => {
                    for (key, value) in table {
                        match DEFAULTS.iter().find(|(k, _)| *k == key) {
                            Some((k, _)) => {
                                raw.insert(k, value);
                            }
                            None => errors.push(format!("{}: unknown key `{key}`", path.display())),
                        }
                    }
                }
                Err(e) => errors.push(e),
            }
        }
        for (key, _) in DEFAULTS {
            if let Some(value) = env.get(&var_name(key)) {
                raw.insert(key, value.clone());
            }
        }
        Layers { values: raw, errors }
    }

    pub(super) fn error(&mut self, message: impl Into<String>) {
        self.errors.push(message.into());
    }

    /// The value of `key` exactly as written, empty or not.
    pub(super) fn raw(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// The value of `key`; an empty one counts as unset.
    pub(super) fn text(&self, key: &str) -> Option<String> {
        self.values.get(key).cloned().filter(|v| !v.is_empty())
    }

    /// A whole number; one that does not parse is reported and counts as 0, so the
    /// bounds after it are checked (and reported) as well.
    pub(super) fn number(&mut self, key: &str) -> u64 {
        let v = self.raw(key).unwrap_or("0");
        match v.parse() {
            Ok(n) => n,
            Err(_) => {
                let message = format!("{}: `{v}` is not a whole number", var_name(key));
                self.error(message);
                0
            }
        }
    }

    /// A number of hours from 0 to 1000000, fractions allowed.
    pub(super) fn hours(&mut self, key: &str) -> f64 {
        let v = self.raw(key).unwrap_or("0");
        match v.parse::<f64>() {
            Ok(h) if h.is_finite() && (0.0..=1_000_000.0).contains(&h) => h,
            _ => {
                let message = format!("{}: `{v}` is not a number of hours from 0 to 1000000", var_name(key));
                self.error(message);
                0.0
            }
        }
    }

    /// `true` or `false`; unset is `true`, and so is a wrong value once reported.
    pub(super) fn flag(&mut self, key: &str) -> bool {
        match self.raw(key) {
            Some("true") | None => true,
            Some("false") => false,
            Some(other) => {
                let message = format!("{}: `{other}` is neither `true` nor `false`", var_name(key));
                self.error(message);
                true
            }
        }
    }

    /// An optional `http://` or `https://` URL.
    pub(super) fn http_url(&mut self, key: &str) -> Option<String> {
        let value = self.text(key)?;
        self.require_http_url(key, &value);
        Some(value)
    }

    /// Reports `value` of `key` unless it starts `http://` or `https://` (a prefix check:
    /// the clients it goes to parse it themselves).
    pub(super) fn require_http_url(&mut self, key: &str, value: &str) {
        if !(value.starts_with("http://") || value.starts_with("https://")) {
            self.error(format!("{}: `{value}` is not an http(s) URL", var_name(key)));
        }
    }
}

pub(super) fn var_name(key: &str) -> String {
    format!("PUSHGATE_{}", key.to_uppercase())
}

fn read_toml(path: &Path) -> Result<Vec<(String, String)>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    let table: toml::Table = text.parse().map_err(|e| format!("{}: not valid TOML: {e}", path.display()))?;
    let mut out = Vec::new();
    for (key, value) in table {
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            // Held as the text a variable would give; no entry of a list holds a comma.
            toml::Value::Array(items) if LISTS.contains(&key.as_str()) => {
                let mut entries = Vec::with_capacity(items.len());
                for item in items {
                    match item {
                        toml::Value::String(s) => entries.push(s),
                        other => return Err(format!("{}: `{key}` must be a list of strings, not of {}", path.display(), other.type_str())),
                    }
                }
                entries.join(",")
            }
            other => return Err(format!("{}: `{key}` must be a string or number, not {}", path.display(), other.type_str())),
        };
        out.push((key, text));
    }
    Ok(out)
}
