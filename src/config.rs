//! Configuration: defaults, then an optional TOML file, then `PUSHGATE_*` variables
//! (INTERFACE.md section 1), read once at start into one typed value per subsystem.
//! [`Config::load`] parses and checks everything in one pass and reports every problem
//! at once; a `Config` only exists when all of it is valid, so what it holds needs no
//! further checks (a parsed address, a database, a master key or its file, an alert
//! webhook with its secret).
//!
//! Secrets are held in [`Secret`], whose `Debug` and `Serialize` print `***`, so a config
//! can be logged or printed by `check-config` without leaking anything.

mod alerts;
mod cloud;
mod database;
mod graph;
mod http;
mod keys;
mod layers;
mod logging;
mod printed;
mod proxies;
mod retention;
mod server_secrets;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::{Serialize, Serializer};

pub use alerts::AlertWebhook;
pub use cloud::CloudEndpoints;
pub use database::{redact_password, Database};
pub use graph::{origin, GraphSettings};
pub use http::HttpLimits;
pub use keys::{KeySources, SnsCertificates};
pub use logging::{LogFormat, Logging};
pub use proxies::{Cidr, TrustedProxies};
pub use retention::Retention;
pub use server_secrets::{MasterKeySource, ServerSecrets, KEY_FILE_NAME};

use layers::Layers;

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

/// A valid configuration, by subsystem.
#[derive(Clone)]
pub struct Config {
    /// The address to bind (`:PORT` in the settings: every interface).
    pub listen: SocketAddr,
    /// The base URL of push routes, without a trailing slash; `None`: derived from the
    /// bound address (see [`Config::public_url_for`]).
    pub public_url: Option<String>,
    pub http: HttpLimits,
    /// Proxies whose `X-Forwarded-For` names the client (empty: none).
    pub trusted_proxies: TrustedProxies,
    pub database: Database,
    pub secrets: ServerSecrets,
    pub keys: KeySources,
    pub cloud: CloudEndpoints,
    pub graph: GraphSettings,
    /// `None`: no alerts are sent.
    pub alerts: Option<AlertWebhook>,
    /// How often the health monitor evaluates every connection.
    pub monitor_interval: Duration,
    pub retention: Retention,
    pub log: Logging,
    /// Private, so a `Config` comes only from [`Config::load`].
    written: AsWritten,
}

/// What `check-config` prints as the operator wrote it, where the parsed value would
/// print differently.
#[derive(Clone)]
struct AsWritten {
    /// `:8080` stays `:8080`.
    listen: String,
    /// The URL, query and all; [`Database`] keeps only what the store needs.
    database_url: String,
    /// A secret without its URL is unused, so not in [`Config::alerts`].
    lone_alert_secret: bool,
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

/// Printed flat, keyed as in the file (see [`printed`]).
impl Serialize for Config {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        printed::Printed::of(self).serialize(s)
    }
}

/// Every problem found in a configuration, one line each.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
pub struct ConfigErrors(pub Vec<String>);

impl Config {
    /// Loads from the process environment and, when named there or given, a TOML file.
    pub fn from_env(file: Option<&Path>) -> Result<Config, ConfigErrors> {
        let env: HashMap<String, String> = std::env::vars().collect();
        Config::load(file, &env)
    }

    /// Defaults, then `file` (or `PUSHGATE_CONFIG`), then `PUSHGATE_*` entries of `env`.
    pub fn load(file: Option<&Path>, env: &HashMap<String, String>) -> Result<Config, ConfigErrors> {
        let mut layers = Layers::read(file, env);
        let written = AsWritten {
            listen: layers.text("listen").unwrap_or_default(),
            database_url: layers.text("database_url").unwrap_or_default(),
            lone_alert_secret: layers.text("alert_webhook_url").is_none() && layers.text("alert_webhook_secret").is_some(),
        };
        let listen = http::listen(&mut layers);
        let database = Database::read(&mut layers);
        let secrets = ServerSecrets::read(&mut layers, database.as_ref());
        let public_url = http::public_url(&mut layers);
        let limits = HttpLimits::read(&mut layers);
        let trusted_proxies = TrustedProxies::read(&mut layers);
        let keys = KeySources::read(&mut layers);
        let cloud = CloudEndpoints::read(&mut layers);
        let graph = GraphSettings::read(&mut layers);
        let alerts = AlertWebhook::read(&mut layers);
        let monitor_interval_ms = layers.number("monitor_interval_ms");
        if monitor_interval_ms < 100 {
            layers.error("PUSHGATE_MONITOR_INTERVAL_MS: must be at least 100");
        }
        let retention = Retention::read(&mut layers);
        let log = Logging::read(&mut layers);
        // Each `None` above comes with its error, so an empty list means all are there.
        match (listen, database, secrets) {
            (Some(listen), Some(database), Some(secrets)) if layers.errors.is_empty() => Ok(Config {
                listen,
                public_url,
                http: limits,
                trusted_proxies,
                database,
                secrets,
                keys,
                cloud,
                graph,
                alerts,
                monitor_interval: Duration::from_millis(monitor_interval_ms),
                retention,
                log,
                written,
            }),
            _ => Err(ConfigErrors(layers.errors)),
        }
    }

    /// Base URL of push routes: the configured one, else derived from the bound address.
    pub fn public_url_for(&self, bound: SocketAddr) -> String {
        self.public_url.clone().unwrap_or_else(|| format!("http://{bound}"))
    }
}

/// The settings `pushgate verify` reads, from the same layers as [`Config::load`]. It
/// opens no database and binds nothing, so only these settings (and the file) must be
/// valid: the rest of a configuration may be one no server could run with.
#[derive(Debug, Clone)]
pub struct OfflineSettings {
    /// As [`Config::public_url`].
    pub public_url: Option<String>,
    pub keys: KeySources,
}

impl OfflineSettings {
    /// Loads from the process environment and, when named there or given, a TOML file.
    pub fn from_env(file: Option<&Path>) -> Result<OfflineSettings, ConfigErrors> {
        let env: HashMap<String, String> = std::env::vars().collect();
        OfflineSettings::load(file, &env)
    }

    /// The layers of [`Config::load`], read for these settings only.
    pub fn load(file: Option<&Path>, env: &HashMap<String, String>) -> Result<OfflineSettings, ConfigErrors> {
        let mut layers = Layers::read(file, env);
        let settings = OfflineSettings { public_url: http::public_url(&mut layers), keys: KeySources::read(&mut layers) };
        if layers.errors.is_empty() {
            Ok(settings)
        } else {
            Err(ConfigErrors(layers.errors))
        }
    }
}

#[cfg(test)]
mod tests;
