//! Configuration: defaults, then an optional TOML file, then `PUSHGATE_*` variables
//! (INTERFACE.md section 1). Parsed once at start; `validate` reports every error at once.
//!
//! Secrets are held in [`Secret`], whose `Debug` and `Serialize` print `***`, so a config
//! can be logged or printed by `check-config` without leaking anything.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Serialize, Serializer};

/// A secret string. Shown as `***` everywhere except through [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"***\"")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("***")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Serialize)]
pub struct Config {
    pub listen: String,
    /// May hold a password (`postgres://user:password@host/db`): printed without it.
    #[serde(serialize_with = "serialize_redacted_url")]
    pub database_url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_token: Option<Secret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub master_key: Option<Secret>,
    pub monitor_interval_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sns_cert_dir: Option<PathBuf>,
    /// Whether SNS signing certificates that are not pinned may be fetched from AWS.
    pub sns_cert_fetch: bool,
    pub google_jwks: String,
    pub microsoft_jwks: String,
    pub max_body_bytes: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aws_endpoint_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pubsub_endpoint: Option<String>,
    /// Base URL of the Microsoft Graph API the subscription upkeep calls.
    pub graph_endpoint: String,
    /// Base URL of the Microsoft identity platform the upkeep gets its tokens from.
    pub microsoft_login_endpoint: String,
    /// Whether this replica creates and renews Graph subscriptions. Replicas sharing a
    /// database would each create one per connection, so only one of them should.
    pub graph_upkeep: bool,
    /// Often a bearer URL (the path is the credential): printed as scheme and host only.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "serialize_origin_only")]
    pub alert_webhook_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert_webhook_secret: Option<Secret>,
    pub log: String,
    pub log_format: LogFormat,
    /// Longest a request may take before it is answered 503 with `Retry-After`.
    pub request_timeout_ms: u64,
    /// Requests served at once; beyond it, requests are shed with 503.
    pub max_concurrent_requests: usize,
    /// Push-body bytes buffered at once across all requests; beyond it, pushes are shed.
    pub max_buffered_body_bytes: usize,
    /// Events older than this many hours are deleted once delivered (0: kept forever).
    pub event_retention_hours: f64,
    /// How many hours longer a paused or failing destination may hold events back.
    pub forward_max_backlog_hours: f64,
}

/// The same redacted view `check-config` prints: no secret, no password in a URL.
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match serde_json::to_string(self) {
            Ok(text) => write!(f, "Config {text}"),
            Err(_) => f.write_str("Config { .. }"),
        }
    }
}

/// Every problem found in a configuration, one line each.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
pub struct ConfigErrors(pub Vec<String>);

/// Keys in the order `check-config` documents them, with their defaults.
const DEFAULTS: [(&str, Option<&str>); 25] = [
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
    ("graph_upkeep", Some("true")),
    ("alert_webhook_url", None),
    ("alert_webhook_secret", None),
    ("log", Some("info")),
    ("log_format", Some("text")),
    ("request_timeout_ms", Some("30000")),
    ("max_concurrent_requests", Some("1024")),
    ("max_buffered_body_bytes", Some("268435456")),
    ("event_retention_hours", Some("720")),
    ("forward_max_backlog_hours", Some("168")),
];

impl Config {
    /// Loads from the process environment and, when named there or given, a TOML file.
    pub fn from_env(file: Option<&Path>) -> Result<Config, ConfigErrors> {
        let env: HashMap<String, String> = std::env::vars().collect();
        Config::load(file, &env)
    }

    /// Defaults, then `file` (or `PUSHGATE_CONFIG`), then `PUSHGATE_*` entries of `env`.
    pub fn load(file: Option<&Path>, env: &HashMap<String, String>) -> Result<Config, ConfigErrors> {
        let mut errors = Vec::new();
        let mut raw: BTreeMap<&str, String> = DEFAULTS.iter().filter_map(|(k, v)| v.map(|v| (*k, v.to_owned()))).collect();

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
            let var = format!("PUSHGATE_{}", key.to_uppercase());
            if let Some(value) = env.get(&var) {
                raw.insert(key, value.clone());
            }
        }
        let config = Config::from_raw(&raw, &mut errors);
        errors.extend(config.validate());
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(ConfigErrors(errors))
        }
    }

    fn from_raw(raw: &BTreeMap<&str, String>, errors: &mut Vec<String>) -> Config {
        let text = |k: &str| raw.get(k).cloned().filter(|v| !v.is_empty());
        let mut number = |k: &str| -> u64 {
            let v = raw.get(k).map(String::as_str).unwrap_or("0");
            v.parse().unwrap_or_else(|_| {
                errors.push(format!("{}: `{v}` is not a whole number", var_name(k)));
                0
            })
        };
        let monitor_interval_ms = number("monitor_interval_ms");
        let max_body_bytes = number("max_body_bytes") as usize;
        let request_timeout_ms = number("request_timeout_ms");
        let max_concurrent_requests = number("max_concurrent_requests") as usize;
        let max_buffered_body_bytes = number("max_buffered_body_bytes") as usize;
        let mut hours = |k: &str| -> f64 {
            let v = raw.get(k).map(String::as_str).unwrap_or("0");
            match v.parse::<f64>() {
                Ok(h) if h.is_finite() && (0.0..=1_000_000.0).contains(&h) => h,
                _ => {
                    errors.push(format!("{}: `{v}` is not a number of hours from 0 to 1000000", var_name(k)));
                    0.0
                }
            }
        };
        let event_retention_hours = hours("event_retention_hours");
        let forward_max_backlog_hours = hours("forward_max_backlog_hours");
        let sns_cert_fetch = match raw.get("sns_cert_fetch").map(String::as_str) {
            Some("true") | None => true,
            Some("false") => false,
            Some(other) => {
                errors.push(format!("PUSHGATE_SNS_CERT_FETCH: `{other}` is neither `true` nor `false`"));
                true
            }
        };
        let graph_upkeep = match raw.get("graph_upkeep").map(String::as_str) {
            Some("true") | None => true,
            Some("false") => false,
            Some(other) => {
                errors.push(format!("PUSHGATE_GRAPH_UPKEEP: `{other}` is neither `true` nor `false`"));
                true
            }
        };
        let log_format = match raw.get("log_format").map(String::as_str) {
            Some("json") => LogFormat::Json,
            Some("text") | None => LogFormat::Text,
            Some(other) => {
                errors.push(format!("PUSHGATE_LOG_FORMAT: `{other}` is neither `text` nor `json`"));
                LogFormat::Text
            }
        };
        Config {
            listen: text("listen").unwrap_or_default(),
            database_url: text("database_url").unwrap_or_default(),
            public_url: text("public_url").map(|u| u.trim_end_matches('/').to_owned()),
            admin_token: text("admin_token").map(Secret),
            master_key: text("master_key").map(Secret),
            monitor_interval_ms,
            sns_cert_dir: text("sns_cert_dir").map(PathBuf::from),
            sns_cert_fetch,
            google_jwks: text("google_jwks").unwrap_or_default(),
            microsoft_jwks: text("microsoft_jwks").unwrap_or_default(),
            max_body_bytes,
            aws_endpoint_url: text("aws_endpoint_url"),
            pubsub_endpoint: text("pubsub_endpoint"),
            // No trailing slash, so paths are appended as `{base}/subscriptions`.
            graph_endpoint: text("graph_endpoint").unwrap_or_default().trim_end_matches('/').to_owned(),
            microsoft_login_endpoint: text("microsoft_login_endpoint").unwrap_or_default().trim_end_matches('/').to_owned(),
            graph_upkeep,
            alert_webhook_url: text("alert_webhook_url"),
            alert_webhook_secret: text("alert_webhook_secret").map(Secret),
            log: text("log").unwrap_or_else(|| "info".into()),
            log_format,
            request_timeout_ms,
            max_concurrent_requests,
            max_buffered_body_bytes,
            event_retention_hours,
            forward_max_backlog_hours,
        }
    }

    /// The retention of events: `None` keeps them forever.
    pub fn event_retention(&self) -> Option<std::time::Duration> {
        (self.event_retention_hours > 0.0).then(|| std::time::Duration::from_secs_f64(self.event_retention_hours * 3600.0))
    }

    pub fn forward_max_backlog(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(self.forward_max_backlog_hours * 3600.0)
    }

    /// Every semantic problem, so an operator fixes them all in one round.
    pub fn validate(&self) -> Vec<String> {
        let mut errors = Vec::new();
        if self.listen_addr().is_none() {
            errors.push(format!("PUSHGATE_LISTEN: `{}` is not a socket address like 127.0.0.1:8080", self.listen));
        }
        match self.database() {
            None => errors.push(format!(
                "PUSHGATE_DATABASE_URL: `{}` is not sqlite://PATH, sqlite::memory: or postgres://...",
                redact_password(&self.database_url)
            )),
            Some(Database::Postgres(_)) if self.master_key.is_none() => {
                errors.push("PUSHGATE_MASTER_KEY is required with PostgreSQL (base64 of 32 bytes)".into())
            }
            _ => {}
        }
        if let Some(key) = &self.master_key {
            if crate::crypto::MasterKey::from_base64(key.expose()).is_err() {
                errors.push("PUSHGATE_MASTER_KEY: must be base64 of exactly 32 bytes".into());
            }
        }
        if let Some(token) = &self.admin_token {
            if token.expose().len() < 16 {
                errors.push("PUSHGATE_ADMIN_TOKEN: must be at least 16 characters".into());
            }
        }
        for (key, value) in [
            ("public_url", &self.public_url),
            ("aws_endpoint_url", &self.aws_endpoint_url),
            ("pubsub_endpoint", &self.pubsub_endpoint),
            ("alert_webhook_url", &self.alert_webhook_url),
        ] {
            if let Some(v) = value {
                if !(v.starts_with("http://") || v.starts_with("https://")) {
                    errors.push(format!("{}: `{v}` is not an http(s) URL", var_name(key)));
                }
            }
        }
        for (key, value) in [("graph_endpoint", &self.graph_endpoint), ("microsoft_login_endpoint", &self.microsoft_login_endpoint)] {
            if url::Url::parse(value).ok().is_none_or(|u| !matches!(u.scheme(), "http" | "https") || u.host().is_none()) {
                errors.push(format!("{}: `{value}` is not an http(s) URL", var_name(key)));
            }
        }
        for (key, value) in [("google_jwks", &self.google_jwks), ("microsoft_jwks", &self.microsoft_jwks)] {
            if value.starts_with("http://") {
                errors.push(format!("{}: keys are only fetched over https", var_name(key)));
            }
        }
        if self.alert_webhook_url.is_some() && self.alert_webhook_secret.is_none() {
            errors.push("PUSHGATE_ALERT_WEBHOOK_SECRET is required when PUSHGATE_ALERT_WEBHOOK_URL is set".into());
        }
        if self.monitor_interval_ms < 100 {
            errors.push("PUSHGATE_MONITOR_INTERVAL_MS: must be at least 100".into());
        }
        if self.max_body_bytes < 1024 {
            errors.push("PUSHGATE_MAX_BODY_BYTES: must be at least 1024".into());
        }
        if self.request_timeout_ms < 100 {
            errors.push("PUSHGATE_REQUEST_TIMEOUT_MS: must be at least 100".into());
        }
        if self.max_buffered_body_bytes < self.max_body_bytes {
            errors.push("PUSHGATE_MAX_BUFFERED_BODY_BYTES: must be at least PUSHGATE_MAX_BODY_BYTES".into());
        }
        if self.max_concurrent_requests == 0 {
            errors.push("PUSHGATE_MAX_CONCURRENT_REQUESTS: must be at least 1".into());
        }
        // The filter parser panics on some non-ASCII input, so it only ever sees ASCII.
        if !self.log.is_ascii() {
            errors.push("PUSHGATE_LOG: a tracing filter is ASCII, like `info` or `info,pushgate=debug`".into());
        } else if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log) {
            errors.push(format!("PUSHGATE_LOG: {e}"));
        }
        errors
    }

    /// The address to bind; `:PORT` means every interface.
    pub fn listen_addr(&self) -> Option<SocketAddr> {
        let text = if self.listen.starts_with(':') { format!("0.0.0.0{}", self.listen) } else { self.listen.clone() };
        text.parse().ok()
    }

    pub fn database(&self) -> Option<Database> {
        Database::parse(&self.database_url)
    }

    /// Base URL of push routes: the configured one, else derived from the bound address.
    pub fn public_url_for(&self, bound: SocketAddr) -> String {
        self.public_url.clone().unwrap_or_else(|| format!("http://{bound}"))
    }
}

/// Which store a database URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// A SQLite file, created if missing.
    SqliteFile(PathBuf),
    SqliteMemory,
    Postgres(String),
}

impl Database {
    pub fn parse(url: &str) -> Option<Database> {
        if url == "sqlite::memory:" || url == "sqlite://:memory:" {
            return Some(Database::SqliteMemory);
        }
        if let Some(rest) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
            let path = rest.split('?').next().unwrap_or_default();
            return (!path.is_empty()).then(|| Database::SqliteFile(PathBuf::from(path)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Some(Database::Postgres(url.to_owned()));
        }
        None
    }
}

/// `scheme://user:password@host/...` with the password replaced by `***`.
pub fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}{tail}")
        }
        None => url.to_owned(),
    }
}

fn serialize_redacted_url<S: Serializer>(url: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&redact_password(url))
}

fn serialize_origin_only<S: Serializer>(url: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    let url = url.as_deref().unwrap_or_default();
    let origin = match url.split_once("://") {
        Some((scheme, rest)) => {
            let host = rest.split('/').next().unwrap_or_default();
            let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
            format!("{scheme}://{host}/***")
        }
        None => "***".to_owned(),
    };
    s.serialize_str(&origin)
}

fn var_name(key: &str) -> String {
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
            other => return Err(format!("{}: `{key}` must be a string or number, not {}", path.display(), other.type_str())),
        };
        out.push((key, text));
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
