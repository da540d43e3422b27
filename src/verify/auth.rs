//! Shared-secret authentication of generic pushes (webhook and EventBridge API
//! destinations): API key header, HTTP basic, HMAC-SHA256 of the raw body, and
//! Standard Webhooks signatures. Every comparison is constant-time; several secrets may be
//! configured at once so a sender can rotate without downtime.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Utc};
use http::HeaderMap;
use serde_json::Value;

use super::{header, Rejected};
use crate::verify::{constant_time_eq, hmac_sha256, hmac_sha256_matches};

/// Standard Webhooks' default: a signed timestamp may be this far from our clock.
pub const DEFAULT_TOLERANCE_SECONDS: i64 = 300;

/// A `webhook-signature` header longer than this is refused unread (a few signatures
/// during key rotation need far less).
const MAX_SIGNATURE_HEADER: usize = 2048;

// The `auth` object as a console fills it in: the source catalog's JSON Schema is
// generated from these types (INTERFACE.md section 8), and their doc comments become its
// descriptions. `Auth::parse` reads the same object and names every problem in words; the
// catalog tests keep the two equal.

/// How each push proves it comes from the sender: a shared secret, checked in constant time.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum AuthConfig {
    /// A shared key in a request header.
    ApiKey {
        #[schemars(regex(pattern = HEADER_NAME_PATTERN))]
        header: String,
        value: SecretList,
    },
    /// HTTP basic authentication.
    Basic {
        #[schemars(length(min = 1))]
        username: String,
        #[schemars(length(min = 1))]
        password: String,
    },
    /// HMAC-SHA256 of the raw body, hex or base64, in a request header.
    HmacSha256 {
        #[schemars(regex(pattern = HEADER_NAME_PATTERN))]
        header: String,
        secret: SecretList,
    },
    /// Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`).
    StandardWebhooks {
        secret: WhsecList,
        #[schemars(range(min = 1, max = 86_400))]
        #[serde(default, deserialize_with = "crate::model::present")]
        tolerance_seconds: Option<i64>,
    },
}

// The three variants below repeat those of `AuthConfig` on purpose: the schema must list
// exactly the types a source accepts, and serde cannot share variants between two
// internally tagged enums (newtype variants would lose `additionalProperties: false`).
/// How each push proves it comes from the EventBridge API destination: its connection's
/// authorization (Standard Webhooks is not among them).
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum BasicAuthConfig {
    /// A shared key in a request header (the connection's `API_KEY` authorization).
    ApiKey {
        #[schemars(regex(pattern = HEADER_NAME_PATTERN))]
        header: String,
        value: SecretList,
    },
    /// HTTP basic authentication (the connection's `BASIC` authorization).
    Basic {
        #[schemars(length(min = 1))]
        username: String,
        #[schemars(length(min = 1))]
        password: String,
    },
    /// HMAC-SHA256 of the raw body in a request header.
    HmacSha256 {
        #[schemars(regex(pattern = HEADER_NAME_PATTERN))]
        header: String,
        secret: SecretList,
    },
}

/// An HTTP header name (an RFC 9110 token).
pub const HEADER_NAME_PATTERN: &str = "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$";

/// One secret, or several while one is being rotated out.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum SecretList {
    One(#[schemars(length(min = 1))] String),
    Several(#[schemars(length(min = 1), inner(length(min = 1)))] Vec<String>),
}

/// One Standard Webhooks secret (`whsec_` and base64), or several during rotation.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum WhsecList {
    One(#[schemars(regex(pattern = WHSEC_PATTERN))] String),
    Several(#[schemars(length(min = 1), inner(regex(pattern = WHSEC_PATTERN)))] Vec<String>),
}

/// `whsec_` followed by non-empty standard base64.
pub const WHSEC_PATTERN: &str = "^whsec_(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{4}|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{2}==)$";

/// A parsed `auth` object of a connection's config.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    ApiKey { header: String, values: Vec<String> },
    Basic { username: String, password: String },
    HmacSha256 { header: String, secrets: Vec<String> },
    StandardWebhooks { keys: Vec<Vec<u8>>, tolerance_seconds: i64 },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self {
            Auth::ApiKey { .. } => "api_key",
            Auth::Basic { .. } => "basic",
            Auth::HmacSha256 { .. } => "hmac_sha256",
            Auth::StandardWebhooks { .. } => "standard_webhooks",
        };
        write!(f, "Auth({kind}, secrets ***)")
    }
}

/// Which auth types a source accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allowed {
    /// `api_key`, `basic`, `hmac_sha256` (EventBridge API destinations).
    Basic,
    /// All of those plus `standard_webhooks`.
    WithStandardWebhooks,
}

impl Auth {
    /// Parses `config.auth`, or lists what is wrong with it.
    pub fn parse(config: &Value, allowed: Allowed) -> Result<Auth, Vec<String>> {
        let Some(auth) = config.get("auth").and_then(Value::as_object) else {
            return Err(vec!["`auth` is required: an object with a `type`".into()]);
        };
        let mut errors = Vec::new();
        let text = |key: &str, errors: &mut Vec<String>| -> String {
            match auth.get(key).and_then(Value::as_str) {
                Some(s) if !s.is_empty() => s.to_owned(),
                _ => {
                    errors.push(format!("`auth.{key}` is required and must be a non-empty string"));
                    String::new()
                }
            }
        };
        let kind = auth.get("type").and_then(Value::as_str).unwrap_or_default();
        let (known, parsed): (&[&str], Auth) = match kind {
            "api_key" => (
                &["type", "header", "value"],
                Auth::ApiKey {
                    header: header_name(text("header", &mut errors), &mut errors),
                    values: secrets(auth.get("value"), "value", &mut errors),
                },
            ),
            "basic" => (
                &["type", "username", "password"],
                Auth::Basic { username: text("username", &mut errors), password: text("password", &mut errors) },
            ),
            "hmac_sha256" => (
                &["type", "header", "secret"],
                Auth::HmacSha256 {
                    header: header_name(text("header", &mut errors), &mut errors),
                    secrets: secrets(auth.get("secret"), "secret", &mut errors),
                },
            ),
            "standard_webhooks" if allowed == Allowed::WithStandardWebhooks => {
                let keys = secrets(auth.get("secret"), "secret", &mut errors)
                    .iter()
                    .filter_map(|s| match whsec_key(s) {
                        Some(k) => Some(k),
                        None => {
                            errors.push("`auth.secret` must be `whsec_` followed by base64".into());
                            None
                        }
                    })
                    .collect();
                let tolerance_seconds = match auth.get("tolerance_seconds") {
                    None => DEFAULT_TOLERANCE_SECONDS,
                    Some(v) => match v.as_i64() {
                        Some(n) if (1..=86_400).contains(&n) => n,
                        _ => {
                            errors.push("`auth.tolerance_seconds` must be a whole number from 1 to 86400".into());
                            DEFAULT_TOLERANCE_SECONDS
                        }
                    },
                };
                (&["type", "secret", "tolerance_seconds"], Auth::StandardWebhooks { keys, tolerance_seconds })
            }
            other => {
                let choices = match allowed {
                    Allowed::Basic => "api_key, basic, hmac_sha256",
                    Allowed::WithStandardWebhooks => "api_key, basic, hmac_sha256, standard_webhooks",
                };
                return Err(vec![format!("`auth.type` `{other}` is not one of {choices}")]);
            }
        };
        for key in auth.keys() {
            if !known.contains(&key.as_str()) {
                errors.push(format!("`auth.{key}` is not a field of auth type {kind}"));
            }
        }
        if errors.is_empty() {
            Ok(parsed)
        } else {
            Err(errors)
        }
    }

    /// Whether the credential covers the body bytes (so a header the signature does not
    /// cover may still be changed by whoever replays a captured push).
    pub fn signs_body(&self) -> bool {
        matches!(self, Auth::HmacSha256 { .. } | Auth::StandardWebhooks { .. })
    }

    /// Checks a push's headers and raw body; returns the signed delivery id and time when
    /// the credential covers them (Standard Webhooks).
    pub fn check(&self, headers: &HeaderMap, body: &[u8], now: DateTime<Utc>) -> Result<Option<SignedDelivery>, Rejected> {
        match self {
            Auth::ApiKey { header: name, values } => {
                let got = header(headers, name).ok_or_else(|| missing(name))?;
                // Every configured key is compared, so timing does not tell which matched.
                let ok = values.iter().fold(false, |ok, v| ok | constant_time_eq(got.as_bytes(), v.as_bytes()));
                ok.then_some(None).ok_or_else(|| Rejected::unauthenticated("bad_credentials", format!("{name} does not match")))
            }
            Auth::Basic { username, password } => {
                let got = header(headers, "authorization").ok_or_else(|| missing("Authorization"))?;
                let encoded = got
                    .strip_prefix("Basic ")
                    .or_else(|| got.strip_prefix("basic "))
                    .ok_or_else(|| Rejected::unauthenticated("bad_credentials", "Authorization is not HTTP basic"))?;
                let decoded = STANDARD
                    .decode(encoded.trim())
                    .map_err(|_| Rejected::malformed("malformed_credentials", "Authorization basic credentials are not base64"))?;
                let expected = format!("{username}:{password}");
                constant_time_eq(&decoded, expected.as_bytes())
                    .then_some(None)
                    .ok_or_else(|| Rejected::unauthenticated("bad_credentials", "username or password does not match"))
            }
            Auth::HmacSha256 { header: name, secrets } => {
                let got = header(headers, name)
                    .ok_or_else(|| Rejected::unauthenticated("missing_signature", format!("header {name} is missing")))?;
                let hex_sig = got.trim();
                let hex_sig = hex_sig.strip_prefix("sha256=").unwrap_or(hex_sig);
                let tag = hex::decode(hex_sig).map_err(|_| Rejected::malformed("malformed_signature", format!("{name} is not hex")))?;
                let ok = secrets.iter().fold(false, |ok, s| ok | hmac_sha256_matches(s.as_bytes(), &[body], &tag));
                ok.then_some(None)
                    .ok_or_else(|| Rejected::unauthenticated("bad_signature", format!("{name} is not the HMAC-SHA256 of the body")))
            }
            Auth::StandardWebhooks { keys, tolerance_seconds } => standard_webhooks(keys, *tolerance_seconds, headers, body, now).map(Some),
        }
    }
}

/// What a Standard Webhooks signature covers besides the body: `webhook-id` and
/// `webhook-timestamp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedDelivery {
    pub id: String,
    pub at: DateTime<Utc>,
}

/// The Standard Webhooks scheme: HMAC-SHA256 over `id.timestamp.body`, base64, `v1,` prefixed.
fn standard_webhooks(
    keys: &[Vec<u8>],
    tolerance: i64,
    headers: &HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<SignedDelivery, Rejected> {
    let signatures = header(headers, "webhook-signature")
        .ok_or_else(|| Rejected::unauthenticated("missing_signature", "header webhook-signature is missing"))?;
    let id = header(headers, "webhook-id")
        .filter(|v| !v.is_empty())
        .ok_or_else(|| Rejected::malformed("missing_webhook_id", "header webhook-id is missing"))?;
    let timestamp_text = header(headers, "webhook-timestamp")
        .ok_or_else(|| Rejected::malformed("missing_timestamp", "header webhook-timestamp is missing"))?;
    let timestamp: i64 =
        timestamp_text.trim().parse().map_err(|_| Rejected::malformed("malformed_timestamp", "webhook-timestamp is not unix seconds"))?;
    let skew = now.timestamp().abs_diff(timestamp);
    if skew > tolerance.unsigned_abs() {
        return Err(Rejected::unauthenticated(
            "timestamp_out_of_tolerance",
            format!("webhook-timestamp is {skew} s from now; tolerance is {tolerance} s"),
        ));
    }
    if signatures.len() > MAX_SIGNATURE_HEADER {
        return Err(Rejected::malformed("malformed_signature", "webhook-signature is too long"));
    }
    let mut tags = Vec::new();
    for entry in signatures.split_whitespace() {
        let Some((version, sig)) = entry.split_once(',') else {
            return Err(Rejected::malformed("malformed_signature", "webhook-signature entries are `v1,<base64>`"));
        };
        if version == "v1" {
            let tag = STANDARD.decode(sig).map_err(|_| Rejected::malformed("malformed_signature", "webhook-signature is not base64"))?;
            tags.push(tag);
        }
    }
    if tags.is_empty() {
        return Err(Rejected::unauthenticated("missing_signature", "webhook-signature has no v1 signature"));
    }
    // One MAC per key, compared with every tag: the work does not grow with the header.
    let parts: [&[u8]; 5] = [id.as_bytes(), b".", timestamp_text.as_bytes(), b".", body];
    let ok = keys.iter().fold(false, |ok, k| {
        let expected = hmac_sha256(k, &parts);
        tags.iter().fold(ok, |ok, t| ok | constant_time_eq(&expected, t))
    });
    // Within the tolerance of `now`, so a real instant.
    let at = DateTime::from_timestamp(timestamp, 0)
        .ok_or_else(|| Rejected::malformed("malformed_timestamp", "webhook-timestamp is not a real instant"))?;
    if ok {
        Ok(SignedDelivery { id: id.to_owned(), at })
    } else {
        Err(Rejected::unauthenticated("bad_signature", "no webhook-signature matches the body"))
    }
}

fn missing(name: &str) -> Rejected {
    Rejected::unauthenticated("missing_credentials", format!("header {name} is missing"))
}

/// The key bytes of a `whsec_<base64>` secret.
pub fn whsec_key(secret: &str) -> Option<Vec<u8>> {
    let key = STANDARD.decode(secret.strip_prefix("whsec_")?).ok()?;
    (!key.is_empty()).then_some(key)
}

/// A secret given as one string or as a list of strings (rotation).
fn secrets(value: Option<&Value>, key: &str, errors: &mut Vec<String>) -> Vec<String> {
    let list: Vec<String> = match value {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
        _ => Vec::new(),
    };
    let wrong_item = matches!(value, Some(Value::Array(items)) if items.len() != list.len());
    if list.is_empty() || wrong_item || list.iter().any(String::is_empty) {
        errors.push(format!("`auth.{key}` is required: a non-empty string, or a list of them during rotation"));
    }
    list
}

fn header_name(name: String, errors: &mut Vec<String>) -> String {
    if !name.is_empty() && http::HeaderName::from_bytes(name.as_bytes()).is_err() {
        errors.push(format!("`auth.header` `{name}` is not a valid HTTP header name"));
    }
    name.to_ascii_lowercase()
}

#[cfg(test)]
mod tests;
