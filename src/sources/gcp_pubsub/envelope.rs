//! The message a Pub/Sub push carries, read from the request into one [`PushMessage`].
//!
//! This runs after the push's OIDC token has been verified, so every refusal here is
//! [`Rejected::undecodable`]: the push is stored whole as a `raw` event and acknowledged,
//! and a message that can never be read does not come back for the 7 days Pub/Sub retries
//! it. What failed to read is the envelope itself, so the raw event is the whole body as
//! it came: a wrapped envelope's JSON text (its base64 `data`, attributes and metadata
//! included, nothing re-encoded), or an unwrapped push's data bytes. Its dedupe key is the
//! message id when one can still be read (`message.messageId` or `message.message_id`, if
//! they do not disagree; `x-goog-pubsub-message-id`, if it is given once), else the body
//! hash. An unwrapped push whose metadata headers cannot be read keeps its data only:
//! headers that are not UTF-8 cannot be text.
//!
//! A subscription pushes in one of two forms:
//!
//! - **Wrapped** (the default): a JSON body `{"message": {"data", "attributes",
//!   "messageId", "publishTime", "orderingKey"}, "subscription", "deliveryAttempt"}` with the
//!   data in base64.
//! - **Unwrapped** (`--push-no-wrapper`): the body is the message data itself. With
//!   `--push-no-wrapper-write-metadata` the metadata comes in the headers
//!   `x-goog-pubsub-message-id`, `x-goog-pubsub-subscription-name`,
//!   `x-goog-pubsub-publish-time` and `x-goog-pubsub-ordering-key`, and each attribute in
//!   a header of its own; without it only the data arrives.
//!
//! The body is read as wrapped when it is a JSON object with a `message` member and either
//! a `subscription` member or a `message` object holding `data`, `attributes`, `messageId`
//! or `message_id`; anything else is unwrapped data. A body that is wrapped by this rule is
//! held to the rules below and refused when it breaks one, never reread as data.
//!
//! Wrapped rules (`null` counts as absent everywhere):
//! - Every field may be spelled in camelCase or snake_case (`messageId` / `message_id`,
//!   `publishTime` / `publish_time`, ...): real pushes carry both. Two spellings with
//!   different values: `pubsub_conflicting_fields`.
//! - The message id is required and not empty: `pubsub_missing_message_id`. An empty
//!   subscription or ordering key counts as absent.
//! - `data` is base64 text: the standard alphabet Pub/Sub writes, and also the URL-safe
//!   one, padded or not. No `data` is empty data. Anything else: `pubsub_invalid_data`.
//! - `attributes` is an object of strings: `pubsub_invalid_attributes` otherwise.
//! - `message` must be an object; `messageId`, `subscription`, `orderingKey` and
//!   `publishTime` text; `deliveryAttempt` a whole number: `pubsub_invalid_envelope`
//!   otherwise.
//! - A publish time that is not RFC 3339 is kept as text with no parsed time: a time never
//!   refuses a message.
//!
//! Unwrapped rules:
//! - The data is the body, byte for byte; Pub/Sub writes no delivery attempt.
//! - The id is `x-goog-pubsub-message-id`. Without write-metadata there is no id at all,
//!   so the id is `sha256:` and the lowercase hex SHA-256 of the body: a redelivery keeps
//!   its key, but two messages with the same bytes are stored once, and heartbeats (an
//!   attribute) cannot be recognised.
//! - Attributes are read only when `x-goog-pubsub-message-id` is present (the mark of
//!   write-metadata; without it the other headers are only transport). They are every
//!   header except `x-goog-*`, `x-forwarded-*`, the transport headers in
//!   `TRANSPORT_HEADERS` and names that look like credentials (`CREDENTIAL_NAME_PARTS`:
//!   auth, token, key, secret, ...), so `Authorization` never becomes an attribute (and an attribute
//!   named like one of those, such as `Content-Type`, is not seen). HTTP header names are
//!   case-insensitive, so these attribute names arrive in lower case; a repeated header is
//!   joined with `", "`. A value that is not UTF-8: `pubsub_invalid_attributes`.
//! - A metadata header that is not UTF-8: `pubsub_invalid_envelope`; one repeated with
//!   different values: `pubsub_conflicting_fields`.

use std::collections::BTreeMap;

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use chrono::{DateTime, Utc};
use http::HeaderMap;
use serde_json::{Map, Value};

use crate::sources::{json_kind, Rejected};

/// The attribute that marks a pushgate heartbeat, and its value (INTERFACE.md section 3).
const KIND_ATTRIBUTE: &str = "pushgate_kind";
const HEARTBEAT: &str = "heartbeat";

/// Members of a Pub/Sub message that mark a `message` object as one without `subscription`.
const MESSAGE_MEMBERS: [&str; 4] = ["data", "attributes", "messageId", "message_id"];

const MESSAGE_ID_HEADER: &str = "x-goog-pubsub-message-id";
const SUBSCRIPTION_HEADER: &str = "x-goog-pubsub-subscription-name";
const PUBLISH_TIME_HEADER: &str = "x-goog-pubsub-publish-time";
const ORDERING_KEY_HEADER: &str = "x-goog-pubsub-ordering-key";

/// Headers that Pub/Sub, HTTP or a proxy in front of pushgate set on an unwrapped push,
/// never read as attributes. Pub/Sub also refuses attribute names starting with `goog`, so
/// every `x-goog-` header is left out too, and every `x-forwarded-` one.
const TRANSPORT_HEADERS: [&str; 26] = [
    "accept",
    "accept-encoding",
    "authorization",
    "cache-control",
    "connection",
    "content-encoding",
    "content-length",
    "content-type",
    "cookie",
    "expect",
    "forwarded",
    "from",
    "host",
    "keep-alive",
    "proxy-authorization",
    "te",
    "traceparent",
    "tracestate",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "via",
    "x-cloud-trace-context",
    "x-real-ip",
    "x-request-id",
];

/// Base64 as Pub/Sub writes it (standard alphabet), padding optional.
const STANDARD_BASE64: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, ANY_PADDING);
/// The URL-safe alphabet, padding optional, for senders that write it.
const URL_SAFE_BASE64: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, ANY_PADDING);
const ANY_PADDING: GeneralPurposeConfig = GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);

/// One Pub/Sub message as a push delivered it, wrapped or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushMessage {
    /// The message id Pub/Sub assigned, or `sha256:<hex>` of an unwrapped body without
    /// metadata (module doc).
    pub message_id: String,
    /// `projects/P/subscriptions/S`, when the push names it.
    pub subscription: Option<String>,
    /// The publish time, when it is RFC 3339.
    pub publish_time: Option<DateTime<Utc>>,
    /// The publish time as Pub/Sub wrote it (nanoseconds included), parsed or not.
    pub publish_time_text: Option<String>,
    pub ordering_key: Option<String>,
    /// How many times Pub/Sub has tried this message (only with a dead-letter policy).
    pub delivery_attempt: Option<i64>,
    pub attributes: BTreeMap<String, String>,
    /// The message data, decoded from base64 when the push was wrapped.
    pub data: Vec<u8>,
}

impl PushMessage {
    /// Reads the message of a verified push from its headers and exact body bytes.
    /// A refusal names the message id when one can still be read (module doc).
    pub fn from_request(headers: &HeaderMap, body: &[u8]) -> Result<PushMessage, Rejected> {
        match wrapped_envelope(body) {
            Some(envelope) => {
                let id = readable_wrapped_id(&envelope);
                from_wrapped(envelope).map_err(|e| e.keyed(id))
            }
            None => from_unwrapped(headers, body).map_err(|e| e.keyed(readable_header_id(headers))),
        }
    }

    /// Whether this message is a pushgate heartbeat: attribute `pushgate_kind` =
    /// `heartbeat`.
    pub fn is_heartbeat(&self) -> bool {
        self.attributes.get(KIND_ATTRIBUTE).is_some_and(|kind| kind == HEARTBEAT)
    }
}

/// The body as a wrapped push envelope, when it is one by the rule of the module doc.
fn wrapped_envelope(body: &[u8]) -> Option<Map<String, Value>> {
    let Ok(Value::Object(envelope)) = serde_json::from_slice::<Value>(body) else {
        return None;
    };
    let message = envelope.get("message")?;
    let holds_a_message = message.as_object().is_some_and(|message| MESSAGE_MEMBERS.iter().any(|member| message.contains_key(*member)));
    (envelope.contains_key("subscription") || holds_a_message).then_some(envelope)
}

/// The message id of a wrapped envelope that may break the rules: either spelling, unless
/// both are given and disagree.
fn readable_wrapped_id(envelope: &Map<String, Value>) -> Option<String> {
    let message = envelope.get("message")?;
    let spelled = |name: &str| message.get(name).and_then(Value::as_str).filter(|id| !id.is_empty());
    match (spelled("messageId"), spelled("message_id")) {
        (Some(a), Some(b)) if a != b => None,
        (a, b) => a.or(b).map(str::to_owned),
    }
}

/// `x-goog-pubsub-message-id` when it is given once, as non-empty UTF-8.
fn readable_header_id(headers: &HeaderMap) -> Option<String> {
    let mut values = headers.get_all(MESSAGE_ID_HEADER).iter();
    let (Some(only), None) = (values.next(), values.next()) else { return None };
    std::str::from_utf8(only.as_bytes()).ok().map(str::trim).filter(|id| !id.is_empty()).map(str::to_owned)
}

fn from_wrapped(mut envelope: Map<String, Value>) -> Result<PushMessage, Rejected> {
    let Some(Value::Object(message)) = envelope.remove("message") else {
        return Err(invalid_envelope("`message` is not an object"));
    };
    let message_id = field(&message, &["messageId", "message_id"], Value::as_str)?
        .filter(|id| !id.is_empty())
        .ok_or_else(|| Rejected::undecodable("pubsub_missing_message_id", "the pushed message has no `messageId`"))?;
    let publish_time_text = field(&message, &["publishTime", "publish_time"], Value::as_str)?;
    let ordering_key = field(&message, &["orderingKey", "ordering_key"], Value::as_str)?.filter(|key| !key.is_empty());
    let subscription = field(&envelope, &["subscription"], Value::as_str)?.filter(|name| !name.is_empty());
    let delivery_attempt = field(&envelope, &["deliveryAttempt", "delivery_attempt"], Value::as_i64)?;
    Ok(PushMessage {
        message_id: message_id.to_owned(),
        subscription: subscription.map(str::to_owned),
        publish_time: publish_time_text.and_then(parse_time),
        publish_time_text: publish_time_text.map(str::to_owned),
        ordering_key: ordering_key.map(str::to_owned),
        delivery_attempt,
        attributes: json_attributes(message.get("attributes"))?,
        data: json_data(message.get("data"))?,
    })
}

/// A field that may be spelled several ways (`names`): its value read by `read`, `None`
/// when absent or null; refused when `read` cannot read it or two spellings disagree.
fn field<'m, T: PartialEq>(
    object: &'m Map<String, Value>,
    names: &[&str],
    read: impl Fn(&'m Value) -> Option<T>,
) -> Result<Option<T>, Rejected> {
    let mut found: Option<(&str, T)> = None;
    for &name in names {
        let value = match object.get(name) {
            None | Some(Value::Null) => continue,
            Some(value) => value,
        };
        let value = read(value).ok_or_else(|| invalid_envelope(format!("`{name}` has the wrong type: {}", json_kind(value))))?;
        match &found {
            Some((first, earlier)) if *earlier != value => {
                return Err(Rejected::undecodable("pubsub_conflicting_fields", format!("`{first}` and `{name}` name different values")));
            }
            Some(_) => {}
            None => found = Some((name, value)),
        }
    }
    Ok(found.map(|(_, value)| value))
}

fn json_attributes(attributes: Option<&Value>) -> Result<BTreeMap<String, String>, Rejected> {
    let attributes = match attributes {
        None | Some(Value::Null) => return Ok(BTreeMap::new()),
        Some(Value::Object(attributes)) => attributes,
        Some(other) => return Err(invalid_attributes(format!("`attributes` is {}, not an object", json_kind(other)))),
    };
    attributes
        .iter()
        .map(|(name, value)| match value {
            Value::String(text) => Ok((name.clone(), text.clone())),
            other => Err(invalid_attributes(format!("attribute `{name}` is {}, not a string", json_kind(other)))),
        })
        .collect()
}

fn json_data(data: Option<&Value>) -> Result<Vec<u8>, Rejected> {
    match data {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(text)) => STANDARD_BASE64
            .decode(text)
            .or_else(|_| URL_SAFE_BASE64.decode(text))
            .map_err(|e| Rejected::undecodable("pubsub_invalid_data", format!("`message.data` is not base64: {e}"))),
        Some(other) => Err(Rejected::undecodable("pubsub_invalid_data", format!("`message.data` is {}, not a string", json_kind(other)))),
    }
}

fn from_unwrapped(headers: &HeaderMap, body: &[u8]) -> Result<PushMessage, Rejected> {
    let header_id = metadata_header(headers, MESSAGE_ID_HEADER)?;
    let attributes = if header_id.is_some() { header_attributes(headers)? } else { BTreeMap::new() };
    let message_id = header_id.unwrap_or_else(|| crate::model::content_key(body));
    let publish_time_text = metadata_header(headers, PUBLISH_TIME_HEADER)?;
    Ok(PushMessage {
        message_id,
        subscription: metadata_header(headers, SUBSCRIPTION_HEADER)?,
        publish_time: publish_time_text.as_deref().and_then(parse_time),
        publish_time_text,
        ordering_key: metadata_header(headers, ORDERING_KEY_HEADER)?,
        delivery_attempt: None,
        attributes,
        data: body.to_vec(),
    })
}

/// A write-metadata header's value; `None` when absent or empty.
fn metadata_header(headers: &HeaderMap, name: &str) -> Result<Option<String>, Rejected> {
    let mut found: Option<&str> = None;
    for value in headers.get_all(name) {
        let value = std::str::from_utf8(value.as_bytes()).map_err(|_| invalid_envelope(format!("header `{name}` is not UTF-8")))?.trim();
        match found {
            Some(earlier) if earlier != value => {
                return Err(Rejected::undecodable(
                    "pubsub_conflicting_fields",
                    format!("header `{name}` is repeated with different values"),
                ));
            }
            Some(_) => {}
            None => found = Some(value),
        }
    }
    Ok(found.filter(|value| !value.is_empty()).map(str::to_owned))
}

/// The attributes Pub/Sub wrote as headers (module doc).
/// Parts of header names that proxies in front of pushgate use for credentials
/// (`x-amzn-oidc-accesstoken`, `x-auth-request-access-token`, `x-api-key`, ...): such a
/// header is never kept as an attribute, since stored events are shown to readers.
const CREDENTIAL_NAME_PARTS: [&str; 9] = ["auth", "token", "key", "secret", "cookie", "oidc", "session", "password", "signature"];

fn carries_credentials(name: &str) -> bool {
    CREDENTIAL_NAME_PARTS.iter().any(|part| name.contains(part))
}

fn header_attributes(headers: &HeaderMap) -> Result<BTreeMap<String, String>, Rejected> {
    let mut attributes = BTreeMap::new();
    for name in headers.keys() {
        let name = name.as_str();
        if name.starts_with("x-goog-") || name.starts_with("x-forwarded-") || TRANSPORT_HEADERS.contains(&name) || carries_credentials(name)
        {
            continue;
        }
        let values = headers
            .get_all(name)
            .iter()
            .map(|value| std::str::from_utf8(value.as_bytes()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| invalid_attributes(format!("attribute header `{name}` is not UTF-8")))?;
        attributes.insert(name.to_owned(), values.join(", "));
    }
    Ok(attributes)
}

/// RFC 3339 with or without fractional seconds, any offset; `None` for anything else.
pub(super) fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text.trim()).ok().map(|time| time.with_timezone(&Utc))
}

fn invalid_envelope(detail: impl Into<String>) -> Rejected {
    Rejected::undecodable("pubsub_invalid_envelope", detail)
}

fn invalid_attributes(detail: impl Into<String>) -> Rejected {
    Rejected::undecodable("pubsub_invalid_attributes", detail)
}

#[cfg(test)]
mod tests;
