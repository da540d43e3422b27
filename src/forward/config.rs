//! A destination's `config`, typed (INTERFACE.md section 7). [`SinkConfig::parse`] checks
//! everything at once and lists every problem, so the admin API can answer 400 with all
//! of them; the forwarder parses the unsealed config the same way, once per change.
//! Secrets sit in [`Secret`], whose `Debug` prints `***`.
//!
//! One file: every destination kind's config is read by the same error-collecting reader,
//! so all of it is checked in one place; its inline tests are the examples of each rule.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{Map, Value};

use super::template::Template;
use crate::config::Secret;
use crate::model::DestinationKind;

/// Default NATS subject.
pub const DEFAULT_SUBJECT: &str = "pushgate.{tenant_id}.{stream}";
pub const DEFAULT_HTTP_BATCH_EVENTS: usize = 500;
pub const DEFAULT_HTTP_BATCH_BYTES: usize = 1_048_576;
const MAX_HTTP_BATCH_EVENTS: i64 = 10_000;
const MAX_HTTP_BATCH_BYTES: i64 = 16 * 1_048_576;
/// Default Kafka topic and record key.
pub const DEFAULT_TOPIC: &str = "pushgate.{stream}";
pub const DEFAULT_KEY: &str = "{tenant_id}";
const MAX_BROKERS: usize = 32;
/// Default S3 key prefix and batch limits.
pub const DEFAULT_PREFIX: &str = "pushgate";
pub const DEFAULT_S3_BATCH_EVENTS: usize = 10_000;
pub const DEFAULT_S3_BATCH_BYTES: usize = 16 * 1_048_576;
pub const DEFAULT_S3_BATCH_SECONDS: u64 = 60;
const MAX_S3_BATCH_EVENTS: i64 = 100_000;
/// A batch is held in memory while it is gathered and compressed.
const MAX_S3_BATCH_BYTES: i64 = 64 * 1_048_576;
const MAX_S3_BATCH_SECONDS: i64 = 3600;

#[derive(Debug, Clone)]
pub enum SinkConfig {
    Nats(NatsConfig),
    Http(HttpConfig),
    Kafka(KafkaConfig),
    S3(S3Config),
}

#[derive(Debug, Clone)]
pub struct NatsConfig {
    pub url: String,
    pub subject: Template,
    pub auth: Option<NatsAuth>,
}

#[derive(Debug, Clone)]
pub enum NatsAuth {
    Token(Secret),
    UserPassword { username: String, password: Secret },
}

#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub url: url::Url,
    pub format: HttpFormat,
    pub auth: Option<HttpAuth>,
    pub max_batch_events: usize,
    pub max_batch_bytes: usize,
    pub gzip: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpFormat {
    Ndjson,
    SplunkHec,
}

#[derive(Debug, Clone)]
pub enum HttpAuth {
    /// The Standard Webhooks signing key (the bytes after `whsec_`).
    StandardWebhooks {
        key: SecretBytes,
    },
    Bearer(Secret),
    Basic {
        username: String,
        password: Secret,
    },
    Header {
        name: http::HeaderName,
        value: Secret,
    },
    Splunk(Secret),
}

#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// `host:port` of the bootstrap brokers.
    pub brokers: Vec<String>,
    pub topic: Template,
    pub key: Template,
    pub compression: KafkaCompression,
    pub sasl: Option<KafkaSasl>,
    pub tls: Option<KafkaTls>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KafkaCompression {
    None,
    Lz4,
    Zstd,
}

impl KafkaCompression {
    /// The name librdkafka's `compression.codec` takes.
    pub fn as_str(self) -> &'static str {
        match self {
            KafkaCompression::None => "none",
            KafkaCompression::Lz4 => "lz4",
            KafkaCompression::Zstd => "zstd",
        }
    }
}

#[derive(Debug, Clone)]
pub struct KafkaSasl {
    pub mechanism: SaslMechanism,
    pub username: String,
    pub password: Secret,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslMechanism {
    Plain,
    ScramSha256,
    ScramSha512,
}

impl SaslMechanism {
    const ALL: [SaslMechanism; 3] = [SaslMechanism::Plain, SaslMechanism::ScramSha256, SaslMechanism::ScramSha512];

    /// The name Kafka (and librdkafka's `sasl.mechanism`) uses.
    pub fn as_str(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KafkaTls {
    /// Verify the brokers against the system's roots.
    SystemRoots,
    /// Verify the brokers against this CA (PEM).
    CaPem(String),
}

#[derive(Debug, Clone)]
pub struct S3Config {
    pub bucket: String,
    /// Without a trailing `/`; may be empty (objects then start at `tenant_id=`).
    pub prefix: String,
    pub region: Option<String>,
    pub endpoint_url: Option<url::Url>,
    pub force_path_style: bool,
    pub max_batch_events: usize,
    pub max_batch_bytes: usize,
    pub max_batch_seconds: u64,
}

/// Key bytes that never show in `Debug`.
#[derive(Clone)]
pub struct SecretBytes(pub Vec<u8>);

impl std::fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"***\"")
    }
}

impl SinkConfig {
    /// The typed config of a `kind`, or every problem with it.
    pub fn parse(kind: DestinationKind, config: &Value) -> Result<SinkConfig, Vec<String>> {
        let mut errors = Vec::new();
        let Some(map) = config.as_object() else {
            return Err(vec!["`config` must be an object".into()]);
        };
        let mut fields = Fields { map, errors: &mut errors, path: String::new(), used: Vec::new() };
        let parsed = match kind {
            DestinationKind::Nats => nats(&mut fields).map(SinkConfig::Nats),
            DestinationKind::Http => http(&mut fields).map(SinkConfig::Http),
            DestinationKind::Kafka => kafka(&mut fields).map(SinkConfig::Kafka),
            DestinationKind::S3 => s3(&mut fields).map(SinkConfig::S3),
        };
        fields.finish();
        match parsed {
            Some(config) if errors.is_empty() => Ok(config),
            _ => Err(errors),
        }
    }

    /// Every secret string of the config, so an error text can be scrubbed of them.
    pub fn secrets(&self) -> Vec<String> {
        match self {
            SinkConfig::Nats(n) => match &n.auth {
                Some(NatsAuth::Token(t)) => vec![t.expose().to_owned()],
                Some(NatsAuth::UserPassword { password, .. }) => vec![password.expose().to_owned()],
                None => vec![],
            },
            SinkConfig::Http(h) => match &h.auth {
                Some(HttpAuth::Bearer(t) | HttpAuth::Splunk(t)) => vec![t.expose().to_owned()],
                // A receiver may echo the header: the encoded form is a secret too.
                Some(HttpAuth::Basic { username, password }) => {
                    vec![password.expose().to_owned(), STANDARD.encode(format!("{username}:{}", password.expose()))]
                }
                Some(HttpAuth::Header { value, .. }) => vec![value.expose().to_owned()],
                Some(HttpAuth::StandardWebhooks { .. }) | None => vec![],
            },
            SinkConfig::Kafka(k) => k.sasl.iter().map(|s| s.password.expose().to_owned()).collect(),
            // Credentials come from the AWS chain, never from the config.
            SinkConfig::S3(_) => vec![],
        }
    }
}

fn nats(f: &mut Fields<'_>) -> Option<NatsConfig> {
    let url = f.string("url", true).and_then(|u| nats_url(&u).map_err(|e| f.error("url", &e)).ok());
    let subject_text = f.string("subject", false).unwrap_or_else(|| DEFAULT_SUBJECT.to_owned());
    let subject = match Template::parse(&subject_text).and_then(|t| nats_subject(&t).map(|_| t)) {
        Ok(t) => Some(t),
        Err(e) => {
            f.error("subject", &e);
            None
        }
    };
    let auth = match f.object("auth") {
        None => None,
        Some(mut a) => {
            let auth = match a.string("type", true).as_deref() {
                Some("token") => a.secret("token").map(NatsAuth::Token),
                Some("user_password") => {
                    let username = a.string("username", true);
                    let password = a.secret("password");
                    Some(NatsAuth::UserPassword { username: username?, password: password? })
                }
                Some(other) => {
                    a.error("type", &format!("`{other}` is not `token` or `user_password`"));
                    None
                }
                None => None,
            };
            a.finish();
            auth
        }
    };
    Some(NatsConfig { url: url?, subject: subject?, auth })
}

/// `nats://host[:port]` or `tls://host[:port]`, credentials in `auth` rather than the URL.
fn nats_url(text: &str) -> Result<String, String> {
    let url = url::Url::parse(text).map_err(|_| format!("`{text}` is not a URL like nats://host:4222"))?;
    if !matches!(url.scheme(), "nats" | "tls") {
        return Err(format!("`{text}` must start with nats:// (or tls://)"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("`{text}` names no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("credentials go in `auth`, not in the URL".into());
    }
    if url.path().len() > 1 || url.query().is_some() || url.fragment().is_some() {
        return Err(format!("`{text}` must be just nats://host:port"));
    }
    Ok(text.to_owned())
}

/// A subject the template makes must be dot-separated non-empty tokens without spaces or
/// wildcards; placeholders always fill in as such a token's characters.
fn nats_subject(t: &Template) -> Result<(), String> {
    let sample = t.render_with("x");
    for c in t.literal_text().flat_map(str::chars) {
        if c.is_whitespace() || c.is_control() || c == '*' || c == '>' {
            return Err(format!("a subject cannot hold `{}`", c.escape_default()));
        }
    }
    if sample.split('.').any(str::is_empty) {
        return Err(format!("`{sample}` has an empty token (a leading, trailing or doubled `.`)"));
    }
    if sample.len() > 255 {
        return Err("subjects are limited to 255 characters".into());
    }
    Ok(())
}

fn http(f: &mut Fields<'_>) -> Option<HttpConfig> {
    let url = f.string("url", true).and_then(|u| http_url(&u).map_err(|e| f.error("url", &e)).ok());
    let format = match f.string("format", false).as_deref() {
        None | Some("ndjson") => Some(HttpFormat::Ndjson),
        Some("splunk_hec") => Some(HttpFormat::SplunkHec),
        Some(other) => {
            f.error("format", &format!("`{other}` is not `ndjson` or `splunk_hec`"));
            None
        }
    };
    let auth_type = f.map.get("auth").and_then(|a| a.get("type")).and_then(Value::as_str);
    if format == Some(HttpFormat::SplunkHec) && auth_type != Some("splunk") {
        f.error("auth", "splunk_hec needs `{\"type\": \"splunk\", \"token\": \"<HEC token>\"}`");
    }
    let auth = f.object("auth").and_then(|mut a| {
        let auth = http_auth(&mut a);
        a.finish();
        auth
    });
    let max_batch_events = f.integer("max_batch_events", 1, MAX_HTTP_BATCH_EVENTS).map_or(DEFAULT_HTTP_BATCH_EVENTS, |n| n as usize);
    let max_batch_bytes = f.integer("max_batch_bytes", 1024, MAX_HTTP_BATCH_BYTES).map_or(DEFAULT_HTTP_BATCH_BYTES, |n| n as usize);
    let gzip = f.boolean("gzip").unwrap_or(false);
    Some(HttpConfig { url: url?, format: format?, auth, max_batch_events, max_batch_bytes, gzip })
}

fn http_url(text: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(text).map_err(|_| format!("`{text}` is not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("`{text}` is not an http(s) URL"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("`{text}` names no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("credentials go in `auth`, not in the URL".into());
    }
    if url.fragment().is_some() {
        return Err("the URL cannot have a #fragment".into());
    }
    Ok(url)
}

/// Headers pushgate sets itself; a `header` auth cannot replace them.
const RESERVED_HEADERS: [&str; 9] = [
    "content-type",
    "content-length",
    "content-encoding",
    "host",
    "idempotency-key",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "transfer-encoding",
];

fn http_auth(a: &mut Fields<'_>) -> Option<HttpAuth> {
    match a.string("type", true).as_deref() {
        Some("standard_webhooks") => {
            let secret = a.secret("secret")?;
            let encoded = secret.expose().strip_prefix("whsec_").unwrap_or(secret.expose());
            match STANDARD.decode(encoded) {
                Ok(key) if (24..=64).contains(&key.len()) => Some(HttpAuth::StandardWebhooks { key: SecretBytes(key) }),
                _ => {
                    a.error("secret", "must be `whsec_` followed by base64 of 24 to 64 bytes");
                    None
                }
            }
        }
        Some("bearer") => a.secret("token").map(HttpAuth::Bearer),
        Some("splunk") => a.secret("token").map(HttpAuth::Splunk),
        Some("basic") => {
            let username = a.string("username", true);
            if username.as_deref().is_some_and(|u| u.contains(':')) {
                a.error("username", "cannot contain `:`");
            }
            let password = a.secret("password");
            Some(HttpAuth::Basic { username: username?, password: password? })
        }
        Some("header") => {
            let name = a.string("header", true).and_then(|h| match http::HeaderName::from_bytes(h.as_bytes()) {
                Ok(name) if RESERVED_HEADERS.contains(&name.as_str()) => {
                    a.error("header", &format!("`{h}` is set by pushgate itself"));
                    None
                }
                Ok(name) => Some(name),
                Err(_) => {
                    a.error("header", &format!("`{h}` is not a header name"));
                    None
                }
            });
            let value = a.secret("value");
            if value.as_ref().is_some_and(|v| http::HeaderValue::from_str(v.expose()).is_err()) {
                a.error("value", "cannot be sent as a header value");
            }
            Some(HttpAuth::Header { name: name?, value: value? })
        }
        Some(other) => {
            a.error("type", &format!("`{other}` is not one of standard_webhooks, bearer, basic, header, splunk"));
            None
        }
        None => None,
    }
}

fn kafka(f: &mut Fields<'_>) -> Option<KafkaConfig> {
    let brokers = match f.get("brokers") {
        Some(Value::Array(list)) if !list.is_empty() && list.len() <= MAX_BROKERS => {
            let mut brokers = Vec::new();
            for (i, b) in list.iter().enumerate() {
                match b.as_str().ok_or_else(|| "must be a string".to_owned()).and_then(broker) {
                    Ok(b) => brokers.push(b),
                    Err(e) => f.errors.push(format!("config.{}brokers[{i}]: {e}", f.path)),
                }
            }
            (brokers.len() == list.len()).then_some(brokers)
        }
        Some(_) => {
            f.error("brokers", &format!("must be a list of 1 to {MAX_BROKERS} `host:port` strings"));
            None
        }
        None => {
            f.error("brokers", "is required");
            None
        }
    };
    let topic_text = f.string("topic", false).unwrap_or_else(|| DEFAULT_TOPIC.to_owned());
    let topic = match Template::parse(&topic_text).and_then(|t| kafka_topic(&t).map(|_| t)) {
        Ok(t) => Some(t),
        Err(e) => {
            f.error("topic", &e);
            None
        }
    };
    let key_text = f.string("key", false).unwrap_or_else(|| DEFAULT_KEY.to_owned());
    let key = Template::parse(&key_text).map_err(|e| f.error("key", &e)).ok();
    let compression = match f.string("compression", false).as_deref() {
        None | Some("zstd") => Some(KafkaCompression::Zstd),
        Some("lz4") => Some(KafkaCompression::Lz4),
        Some("none") => Some(KafkaCompression::None),
        Some(other) => {
            f.error("compression", &format!("`{other}` is not `none`, `lz4` or `zstd`"));
            None
        }
    };
    let sasl = f.object("sasl").and_then(|mut a| {
        let mechanism = a.string("mechanism", true).and_then(|m| match SaslMechanism::ALL.into_iter().find(|k| k.as_str() == m) {
            Some(k) => Some(k),
            None => {
                a.error("mechanism", &format!("`{m}` is not PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"));
                None
            }
        });
        let username = a.string("username", true);
        let password = a.secret("password");
        a.finish();
        Some(KafkaSasl { mechanism: mechanism?, username: username?, password: password? })
    });
    let tls = match f.get("tls") {
        None | Some(Value::Bool(false)) => None,
        Some(Value::Bool(true)) => Some(KafkaTls::SystemRoots),
        Some(Value::Object(map)) => {
            let pem = map.get("ca_pem").and_then(Value::as_str);
            let unknown: Vec<_> = map.keys().filter(|k| *k != "ca_pem").collect();
            for key in unknown {
                f.errors.push(format!("config.{}tls.{key}: unknown key", f.path));
            }
            match pem {
                Some(pem) if pem.contains("-----BEGIN CERTIFICATE-----") && pem.len() <= 65_536 => Some(KafkaTls::CaPem(pem.to_owned())),
                _ => {
                    f.errors.push(format!("config.{}tls.ca_pem: must be PEM certificates (-----BEGIN CERTIFICATE-----)", f.path));
                    None
                }
            }
        }
        Some(_) => {
            f.error("tls", "must be true, false or {\"ca_pem\": \"-----BEGIN CERTIFICATE-----...\"}");
            None
        }
    };
    Some(KafkaConfig { brokers: brokers?, topic: topic?, key: key?, compression: compression?, sasl, tls })
}

/// `host:port`, as librdkafka's `bootstrap.servers` takes it (no scheme).
fn broker(text: &str) -> Result<String, String> {
    let (host, port) = text.rsplit_once(':').ok_or_else(|| format!("`{text}` is not `host:port`"))?;
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && (host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
            || (host.starts_with('[') && host.ends_with(']') && host[1..host.len() - 1].parse::<std::net::Ipv6Addr>().is_ok()));
    if !host_ok {
        return Err(format!("`{text}` is not `host:port`"));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(text.to_owned()),
        _ => Err(format!("`{text}` has no valid port")),
    }
}

/// A topic the template makes may hold only `A-Z a-z 0-9 . _ -`, at most 249 of them;
/// placeholders always fill in with such characters.
fn kafka_topic(t: &Template) -> Result<(), String> {
    for c in t.literal_text().flat_map(str::chars) {
        if !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')) {
            return Err(format!("a topic cannot hold `{}` (only A-Z a-z 0-9 . _ -)", c.escape_default()));
        }
    }
    let sample = t.render_with("x");
    if sample == "." || sample == ".." {
        return Err(format!("`{sample}` is not a topic name"));
    }
    if sample.len() > 249 {
        return Err("topics are limited to 249 characters".into());
    }
    Ok(())
}

fn s3(f: &mut Fields<'_>) -> Option<S3Config> {
    let bucket = f.string("bucket", true).and_then(|b| bucket_name(&b).map_err(|e| f.error("bucket", &e)).ok());
    let prefix = match f.string("prefix", false) {
        None => Some(DEFAULT_PREFIX.to_owned()),
        Some(p) => {
            let p = p.trim_matches('/').to_owned();
            if p.len() > 512 || p.split('/').any(|part| part.is_empty() || part == "." || part == "..") && !p.is_empty() {
                f.error("prefix", "must be at most 512 characters of `/`-separated names (no empty, `.` or `..` part)");
                None
            } else {
                Some(p)
            }
        }
    };
    let region = f.string("region", false).and_then(|r| {
        if r.len() <= 32 && r.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
            Some(r)
        } else {
            f.error("region", &format!("`{r}` is not an AWS region like eu-west-1"));
            None
        }
    });
    let endpoint_url = f.string("endpoint_url", false).and_then(|u| http_url(&u).map_err(|e| f.error("endpoint_url", &e)).ok());
    let force_path_style = f.boolean("force_path_style").unwrap_or(false);
    let max_batch_events = f.integer("max_batch_events", 1, MAX_S3_BATCH_EVENTS).map_or(DEFAULT_S3_BATCH_EVENTS, |n| n as usize);
    let max_batch_bytes = f.integer("max_batch_bytes", 1024, MAX_S3_BATCH_BYTES).map_or(DEFAULT_S3_BATCH_BYTES, |n| n as usize);
    let max_batch_seconds = f.integer("max_batch_seconds", 0, MAX_S3_BATCH_SECONDS).map_or(DEFAULT_S3_BATCH_SECONDS, |n| n as u64);
    Some(S3Config {
        bucket: bucket?,
        prefix: prefix?,
        region,
        endpoint_url,
        force_path_style,
        max_batch_events,
        max_batch_bytes,
        max_batch_seconds,
    })
}

/// S3's bucket naming rules: 3 to 63 of `a-z 0-9 . -`, starting and ending with a letter
/// or digit, no `..`.
fn bucket_name(name: &str) -> Result<String, String> {
    let edges_ok = name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit());
    if (3..=63).contains(&name.len())
        && edges_ok
        && !name.contains("..")
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
    {
        Ok(name.to_owned())
    } else {
        Err(format!("`{name}` is not an S3 bucket name (3 to 63 of a-z 0-9 . -)"))
    }
}

/// Reads the keys of one JSON object, collecting errors under a path prefix.
struct Fields<'a> {
    map: &'a Map<String, Value>,
    errors: &'a mut Vec<String>,
    path: String,
    used: Vec<&'static str>,
}

impl<'a> Fields<'a> {
    fn name(&self, key: &str) -> String {
        format!("{}{key}", self.path)
    }

    fn error(&mut self, key: &str, message: &str) {
        let name = self.name(key);
        self.errors.push(format!("config.{name}: {message}"));
    }

    fn get(&mut self, key: &'static str) -> Option<&'a Value> {
        self.used.push(key);
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn string(&mut self, key: &'static str, required: bool) -> Option<String> {
        match self.get(key) {
            Some(Value::String(s)) if !s.is_empty() && s.len() <= 4096 && !s.chars().any(char::is_control) => Some(s.clone()),
            Some(_) => {
                self.error(key, "must be a non-empty string of printable characters");
                None
            }
            None if required => {
                self.error(key, "is required");
                None
            }
            None => None,
        }
    }

    /// A secret string; the mask `***` is refused (a patch that kept it found no stored value).
    fn secret(&mut self, key: &'static str) -> Option<Secret> {
        let value = self.string(key, true)?;
        if value == crate::secrets::MASK {
            self.error(key, "is `***`: send the secret itself");
            return None;
        }
        Some(Secret::new(value))
    }

    fn integer(&mut self, key: &'static str, min: i64, max: i64) -> Option<i64> {
        match self.get(key) {
            Some(v) => match v.as_i64().filter(|n| (min..=max).contains(n)) {
                Some(n) => Some(n),
                None => {
                    self.error(key, &format!("must be a whole number from {min} to {max}"));
                    None
                }
            },
            None => None,
        }
    }

    fn boolean(&mut self, key: &'static str) -> Option<bool> {
        match self.get(key) {
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => {
                self.error(key, "must be true or false");
                None
            }
            None => None,
        }
    }

    fn object(&mut self, key: &'static str) -> Option<Fields<'_>> {
        match self.get(key) {
            Some(Value::Object(map)) => {
                let path = format!("{}{key}.", self.path);
                Some(Fields { map, errors: &mut *self.errors, path, used: Vec::new() })
            }
            Some(_) => {
                self.error(key, "must be an object");
                None
            }
            None => None,
        }
    }

    /// Reports keys nobody read.
    fn finish(self) {
        let mut unknown: Vec<_> = self.map.keys().filter(|k| !self.used.contains(&k.as_str())).collect();
        unknown.sort();
        for key in unknown {
            self.errors.push(format!("config.{}{key}: unknown key", self.path));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn errors(kind: DestinationKind, config: Value) -> Vec<String> {
        SinkConfig::parse(kind, &config).unwrap_err()
    }

    #[test]
    fn a_nats_config_with_defaults() {
        let SinkConfig::Nats(n) = SinkConfig::parse(DestinationKind::Nats, &json!({"url": "nats://127.0.0.1:4222"})).unwrap() else {
            panic!()
        };
        assert_eq!(n.subject.render_with("x"), "pushgate.x.x");
        assert!(n.auth.is_none());
        let parsed = SinkConfig::parse(
            DestinationKind::Nats,
            &json!({"url": "tls://nats.example:4222", "subject": "soc.{kind}", "auth": {"type": "user_password", "username": "u", "password": "p-secret"}}),
        )
        .unwrap();
        assert_eq!(parsed.secrets(), ["p-secret"]);
        assert!(!format!("{parsed:?}").contains("p-secret"));
    }

    #[test]
    fn every_nats_problem_is_listed() {
        let e = errors(DestinationKind::Nats, json!({"url": "http://x", "subject": "a.{tenant}", "auth": {"type": "token"}, "extra": 1}));
        assert_eq!(e.len(), 4, "{e:?}");
        assert!(e.iter().any(|m| m.starts_with("config.url:")));
        assert!(e.iter().any(|m| m.contains("unknown placeholder `{tenant}`")));
        assert!(e.iter().any(|m| m == "config.auth.token: is required"));
        assert!(e.iter().any(|m| m == "config.extra: unknown key"));
        assert!(errors(DestinationKind::Nats, json!({})).contains(&"config.url: is required".to_owned()));
        for subject in ["a..b", ".a", "a.*", "a b", "a.>"] {
            assert_eq!(errors(DestinationKind::Nats, json!({"url": "nats://h", "subject": subject})).len(), 1, "{subject}");
        }
        assert_eq!(errors(DestinationKind::Nats, json!({"url": "nats://user:pw@h:4222"})).len(), 1);
    }

    #[test]
    fn http_configs_and_their_problems() {
        let SinkConfig::Http(h) = SinkConfig::parse(
            DestinationKind::Http,
            &json!({"url": "https://hec.example:8088/services/collector/event", "format": "splunk_hec", "auth": {"type": "splunk", "token": "t"}, "gzip": true}),
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!((h.format, h.max_batch_events, h.max_batch_bytes, h.gzip), (HttpFormat::SplunkHec, 500, 1_048_576, true));
        let e = errors(
            DestinationKind::Http,
            json!({"url": "ftp://x", "format": "xml", "max_batch_events": 0, "max_batch_bytes": "big", "gzip": 1}),
        );
        assert_eq!(e.len(), 5, "{e:?}");
        let e = errors(DestinationKind::Http, json!({"url": "https://x", "format": "splunk_hec"}));
        assert!(e[0].contains("splunk_hec needs"), "{e:?}");
        let e = errors(DestinationKind::Http, json!({"url": "https://x", "auth": {"type": "standard_webhooks", "secret": "whsec_short"}}));
        assert!(e[0].contains("base64"), "{e:?}");
        let e =
            errors(DestinationKind::Http, json!({"url": "https://x", "auth": {"type": "header", "header": "Content-Type", "value": "v"}}));
        assert!(e[0].contains("set by pushgate"), "{e:?}");
        let e = errors(DestinationKind::Http, json!({"url": "https://x", "auth": {"type": "bearer", "token": "***"}}));
        assert!(e[0].contains("send the secret itself"), "{e:?}");
        let key = STANDARD.encode([7u8; 32]);
        assert!(SinkConfig::parse(
            DestinationKind::Http,
            &json!({"url": "http://127.0.0.1:9/x", "auth": {"type": "standard_webhooks", "secret": format!("whsec_{key}")}})
        )
        .is_ok());
    }

    #[test]
    fn a_kafka_config_with_defaults_and_every_option() {
        let SinkConfig::Kafka(k) = SinkConfig::parse(DestinationKind::Kafka, &json!({"brokers": ["127.0.0.1:9092"]})).unwrap() else {
            panic!()
        };
        assert_eq!((k.topic.render_with("x"), k.key.render_with("t")), ("pushgate.x".to_owned(), "t".to_owned()));
        assert_eq!((k.compression, k.sasl.is_none(), k.tls.is_none()), (KafkaCompression::Zstd, true, true));
        let parsed = SinkConfig::parse(
            DestinationKind::Kafka,
            &json!({"brokers": ["b-1.kafka.example:9096", "[::1]:9092"], "topic": "soc-{tenant_id}", "key": "{connection_id}",
                "compression": "lz4", "sasl": {"mechanism": "SCRAM-SHA-512", "username": "u", "password": "kafka-secret"},
                "tls": {"ca_pem": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"}}),
        )
        .unwrap();
        assert_eq!(parsed.secrets(), ["kafka-secret"]);
        assert!(!format!("{parsed:?}").contains("kafka-secret"));
        let SinkConfig::Kafka(k) = parsed else { panic!() };
        assert_eq!((k.brokers.len(), k.compression, k.sasl.unwrap().mechanism), (2, KafkaCompression::Lz4, SaslMechanism::ScramSha512));
        assert!(matches!(k.tls, Some(KafkaTls::CaPem(_))));
        let SinkConfig::Kafka(k) = SinkConfig::parse(DestinationKind::Kafka, &json!({"brokers": ["k:9092"], "tls": true})).unwrap() else {
            panic!()
        };
        assert_eq!(k.tls, Some(KafkaTls::SystemRoots));
    }

    #[test]
    fn every_kafka_problem_is_listed() {
        let e = errors(
            DestinationKind::Kafka,
            json!({"brokers": ["kafka://x:9092", "h:0", 7], "topic": "a b", "key": "{tenant", "compression": "gzip",
                "sasl": {"mechanism": "GSSAPI", "username": "u"}, "tls": {"ca_pem": "x", "cert": 1}, "acks": 1}),
        );
        assert_eq!(e.len(), 11, "{e:#?}");
        for wanted in [
            "config.brokers[0]:",
            "config.brokers[1]:",
            "config.brokers[2]:",
            "config.topic:",
            "config.key:",
            "config.compression:",
            "config.sasl.mechanism:",
            "config.sasl.password: is required",
            "config.tls.ca_pem:",
            "config.tls.cert: unknown key",
            "config.acks: unknown key",
        ] {
            assert!(e.iter().any(|m| m.starts_with(wanted)), "{wanted} in {e:#?}");
        }
        assert_eq!(errors(DestinationKind::Kafka, json!({})), ["config.brokers: is required"]);
        assert_eq!(errors(DestinationKind::Kafka, json!({"brokers": []})).len(), 1);
        assert_eq!(errors(DestinationKind::Kafka, json!({"brokers": ["k:1"], "topic": "{stream}/x"})).len(), 1);
    }

    #[test]
    fn s3_configs_and_their_problems() {
        let SinkConfig::S3(s) = SinkConfig::parse(DestinationKind::S3, &json!({"bucket": "soc-archive"})).unwrap() else { panic!() };
        assert_eq!((s.prefix.as_str(), s.region, s.endpoint_url, s.force_path_style), ("pushgate", None, None, false));
        assert_eq!((s.max_batch_events, s.max_batch_bytes, s.max_batch_seconds), (10_000, 16_777_216, 60));
        let SinkConfig::S3(s) = SinkConfig::parse(
            DestinationKind::S3,
            &json!({"bucket": "b.example-1", "prefix": "/lake/pushgate/", "region": "eu-west-1", "endpoint_url": "http://127.0.0.1:5000",
                "force_path_style": true, "max_batch_events": 5, "max_batch_bytes": 2048, "max_batch_seconds": 0}),
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!((s.prefix.as_str(), s.max_batch_seconds, s.force_path_style), ("lake/pushgate", 0, true));
        let e = errors(
            DestinationKind::S3,
            json!({"bucket": "Bad_Bucket", "prefix": "a//b", "region": "EU WEST", "endpoint_url": "ftp://x", "force_path_style": "yes",
                "max_batch_events": 0, "max_batch_bytes": 10, "max_batch_seconds": 99999, "access_key_id": "AKIA"}),
        );
        assert_eq!(e.len(), 9, "{e:#?}");
        assert_eq!(errors(DestinationKind::S3, json!({})), ["config.bucket: is required"]);
        for bad in ["ab", "-ab", "a..b", "ab-", &"a".repeat(64)] {
            assert_eq!(errors(DestinationKind::S3, json!({"bucket": bad})).len(), 1, "{bad}");
        }
    }
}
