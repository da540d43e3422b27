//! The SNS HTTP/S message envelope: parsing the JSON body SNS posts, and the exact
//! string SNS signs.
//!
//! Nothing here is trusted yet: [`Envelope::parse`] only checks shape (every field the
//! message type needs is present and a string, the topic ARN is well formed, the
//! signature version is one pushgate can check). Authenticity is decided in
//! [`super::verify`].

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use super::topic_arn::TopicArn;
use crate::sources::{json_kind, Rejected};

/// The three kinds of message SNS posts to an HTTP/S subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageType {
    SubscriptionConfirmation,
    Notification,
    UnsubscribeConfirmation,
}

impl MessageType {
    /// The `Type` value, as SNS writes it (and as the `x-amz-sns-message-type` header carries it).
    pub fn as_str(self) -> &'static str {
        match self {
            MessageType::SubscriptionConfirmation => "SubscriptionConfirmation",
            MessageType::Notification => "Notification",
            MessageType::UnsubscribeConfirmation => "UnsubscribeConfirmation",
        }
    }

    pub fn parse(text: &str) -> Option<MessageType> {
        [MessageType::SubscriptionConfirmation, MessageType::Notification, MessageType::UnsubscribeConfirmation]
            .into_iter()
            .find(|t| t.as_str() == text)
    }
}

/// How the message was signed: RSA PKCS#1 v1.5 with SHA-1 (`"1"`) or SHA-256 (`"2"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureVersion {
    Sha1,
    Sha256,
}

/// One SNS message as posted, its shape checked, its authenticity not yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    message_type: MessageType,
    message_id: String,
    topic_arn: TopicArn,
    subject: Option<String>,
    message: String,
    timestamp: String,
    sent_at: DateTime<Utc>,
    signature_version: SignatureVersion,
    signature: String,
    signing_cert_url: String,
    subscribe_url: Option<String>,
    token: Option<String>,
    unsubscribe_url: Option<String>,
}

/// The envelope's fields as JSON values, before their types are checked. A JSON `null`
/// reads as an absent field. serde refuses a field given twice (also under both of its
/// spellings), so no field can be read one way here and another way elsewhere.
#[derive(Deserialize)]
struct RawFields {
    #[serde(rename = "Type", default)]
    message_type: Option<Value>,
    #[serde(rename = "MessageId", default)]
    message_id: Option<Value>,
    #[serde(rename = "TopicArn", default)]
    topic_arn: Option<Value>,
    #[serde(rename = "Subject", default)]
    subject: Option<Value>,
    #[serde(rename = "Message", default)]
    message: Option<Value>,
    #[serde(rename = "Timestamp", default)]
    timestamp: Option<Value>,
    #[serde(rename = "SignatureVersion", default)]
    signature_version: Option<Value>,
    #[serde(rename = "Signature", default)]
    signature: Option<Value>,
    // Lambda and some SDKs spell these two with `Url`; SNS itself with `URL`.
    #[serde(rename = "SigningCertURL", alias = "SigningCertUrl", default)]
    signing_cert_url: Option<Value>,
    #[serde(rename = "SubscribeURL", default)]
    subscribe_url: Option<Value>,
    #[serde(rename = "Token", default)]
    token: Option<Value>,
    #[serde(rename = "UnsubscribeURL", alias = "UnsubscribeUrl", default)]
    unsubscribe_url: Option<Value>,
}

/// Longest piece of a refused value quoted back in a rejection detail.
const MAX_QUOTED_LEN: usize = 64;

/// `text` quoted and escaped for a rejection detail, cut short when long.
pub(super) fn quoted(text: &str) -> String {
    let cut: String = text.chars().take(MAX_QUOTED_LEN).collect();
    if cut.len() < text.len() {
        format!("{cut:?}...")
    } else {
        format!("{cut:?}")
    }
}

/// A present field's text; any other JSON type is refused with `reason`.
fn text(value: Option<Value>, field: &str, reason: &'static str) -> Result<Option<String>, Rejected> {
    match value {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(Rejected::malformed(reason, format!("`{field}` must be a string, not {}", json_kind(&other)))),
    }
}

impl Envelope {
    /// Parses the body SNS posts (sent as `text/plain`, read as JSON regardless).
    pub fn parse(body: &[u8]) -> Result<Envelope, Rejected> {
        // A raw-delivery body, or anything else that is not a JSON object, is not an
        // envelope; saying so plainly beats quoting a parser error about a stranger's body.
        if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(Rejected::malformed("sns_not_an_envelope", "body is not a JSON object, so not an SNS message envelope"));
        }
        let raw: RawFields = serde_json::from_slice(body)
            .map_err(|e| Rejected::malformed("sns_not_an_envelope", format!("body is not an SNS message envelope: {e}")))?;

        let Some(type_value) = raw.message_type else {
            return Err(Rejected::malformed("sns_not_an_envelope", "body has no `Type` field, so it is not an SNS message envelope"));
        };
        let type_text = text(Some(type_value), "Type", "sns_envelope_invalid")?.unwrap_or_default();
        let message_type = MessageType::parse(&type_text).ok_or_else(|| {
            Rejected::malformed(
                "sns_envelope_invalid",
                format!("`Type` is {}, not Notification, SubscriptionConfirmation or UnsubscribeConfirmation", quoted(&type_text)),
            )
        })?;

        // The signing certificate URL has its own reason code: a push without one can
        // never be authenticated, which an operator should see as such.
        let signing_cert_url = text(raw.signing_cert_url, "SigningCertURL", "sns_cert_url_invalid")?
            .ok_or_else(|| Rejected::malformed("sns_cert_url_invalid", "`SigningCertURL` is missing"))?;

        let invalid = "sns_envelope_invalid";
        let message_id = text(raw.message_id, "MessageId", invalid)?;
        let topic_arn = text(raw.topic_arn, "TopicArn", invalid)?;
        let subject = text(raw.subject, "Subject", invalid)?;
        let message = text(raw.message, "Message", invalid)?;
        let timestamp = text(raw.timestamp, "Timestamp", invalid)?;
        let signature_version = text(raw.signature_version, "SignatureVersion", invalid)?;
        let signature = text(raw.signature, "Signature", invalid)?;
        let subscribe_url = text(raw.subscribe_url, "SubscribeURL", invalid)?;
        let token = text(raw.token, "Token", invalid)?;
        let unsubscribe_url = text(raw.unsubscribe_url, "UnsubscribeURL", invalid)?;

        let confirmation = message_type != MessageType::Notification;
        let missing: Vec<&str> = [
            ("MessageId", message_id.is_some()),
            ("TopicArn", topic_arn.is_some()),
            ("Message", message.is_some()),
            ("Timestamp", timestamp.is_some()),
            ("SignatureVersion", signature_version.is_some()),
            ("Signature", signature.is_some()),
            ("SubscribeURL", !confirmation || subscribe_url.is_some()),
            ("Token", !confirmation || token.is_some()),
        ]
        .into_iter()
        .filter_map(|(field, present)| (!present).then_some(field))
        .collect();
        if !missing.is_empty() {
            return Err(missing_fields(message_type, &missing));
        }
        // Present, as just checked; the pattern only unwraps them.
        let (Some(message_id), Some(topic_arn), Some(message), Some(timestamp), Some(signature_version), Some(signature)) =
            (message_id, topic_arn, message, timestamp, signature_version, signature)
        else {
            return Err(missing_fields(message_type, &missing));
        };

        let signature_version = match signature_version.as_str() {
            "1" => SignatureVersion::Sha1,
            "2" => SignatureVersion::Sha256,
            other => {
                return Err(Rejected::unauthenticated(
                    "sns_signature_version_unsupported",
                    format!("`SignatureVersion` is {}; only \"1\" (SHA-1) and \"2\" (SHA-256) can be checked", quoted(other)),
                ))
            }
        };
        let topic_arn = TopicArn::parse(&topic_arn).ok_or_else(|| {
            let shown = quoted(&topic_arn);
            Rejected::malformed(invalid, format!("`TopicArn` {shown} is not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)"))
        })?;
        let sent_at = DateTime::parse_from_rfc3339(&timestamp)
            .map_err(|_| Rejected::malformed(invalid, format!("`Timestamp` {} is not an RFC 3339 time", quoted(&timestamp))))?
            .with_timezone(&Utc);

        Ok(Envelope {
            message_type,
            message_id,
            topic_arn,
            subject,
            message,
            timestamp,
            sent_at,
            signature_version,
            signature,
            signing_cert_url,
            subscribe_url,
            token,
            unsubscribe_url,
        })
    }

    /// The exact text SNS signed: for each signed field in byte order of its name,
    /// `Name\nvalue\n`. A notification's `Subject` is signed only when present (an empty
    /// subject is present); fields outside the list, such as `MessageAttributes` and
    /// `UnsubscribeURL`, are not signed.
    pub fn string_to_sign(&self) -> String {
        let mut fields: Vec<(&str, &str)> = vec![("Message", &self.message), ("MessageId", &self.message_id)];
        match self.message_type {
            MessageType::Notification => {
                if let Some(subject) = &self.subject {
                    fields.push(("Subject", subject));
                }
            }
            MessageType::SubscriptionConfirmation | MessageType::UnsubscribeConfirmation => {
                fields.push(("SubscribeURL", self.subscribe_url.as_deref().unwrap_or_default()));
            }
        }
        fields.push(("Timestamp", &self.timestamp));
        if self.message_type != MessageType::Notification {
            fields.push(("Token", self.token.as_deref().unwrap_or_default()));
        }
        fields.push(("TopicArn", self.topic_arn.as_str()));
        fields.push(("Type", self.message_type.as_str()));

        let len = fields.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
        let mut out = String::with_capacity(len);
        for (key, value) in fields {
            out.push_str(key);
            out.push('\n');
            out.push_str(value);
            out.push('\n');
        }
        out
    }

    pub fn message_type(&self) -> MessageType {
        self.message_type
    }
    pub fn message_id(&self) -> &str {
        &self.message_id
    }
    pub fn topic_arn(&self) -> &str {
        self.topic_arn.as_str()
    }
    /// The topic's region, from `TopicArn`.
    pub fn region(&self) -> &str {
        self.topic_arn.region()
    }
    pub fn subject(&self) -> Option<&str> {
        self.subject.as_deref()
    }
    pub fn message(&self) -> &str {
        &self.message
    }
    /// `Timestamp` as sent (and signed).
    pub fn timestamp(&self) -> &str {
        &self.timestamp
    }
    /// `Timestamp` as a time.
    pub fn sent_at(&self) -> DateTime<Utc> {
        self.sent_at
    }
    pub fn signature_version(&self) -> SignatureVersion {
        self.signature_version
    }
    /// `Signature`, base64 as sent.
    pub fn signature(&self) -> &str {
        &self.signature
    }
    pub fn signing_cert_url(&self) -> &str {
        &self.signing_cert_url
    }
    /// Present on both confirmation types.
    pub fn subscribe_url(&self) -> Option<&str> {
        self.subscribe_url.as_deref()
    }
    /// Present on both confirmation types.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }
    /// Sent with notifications; not signed.
    pub fn unsubscribe_url(&self) -> Option<&str> {
        self.unsubscribe_url.as_deref()
    }
}

fn missing_fields(message_type: MessageType, missing: &[&str]) -> Rejected {
    let list = missing.iter().map(|f| format!("`{f}`")).collect::<Vec<_>>().join(", ");
    let noun = if missing.len() == 1 { "field" } else { "fields" };
    Rejected::malformed("sns_envelope_invalid", format!("{} is missing the {noun} {list}", message_type.as_str()))
}

#[cfg(test)]
mod tests;
