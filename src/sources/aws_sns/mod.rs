//! Amazon SNS over HTTP/S (`POST /push/aws-sns/{id}`): the message envelope, the rules
//! for the URLs it names, signing certificates, authentication of each push, and the
//! sender that turns an authenticated message into events, a heartbeat, a handshake or
//! a lifecycle change.

pub mod cert_url;
pub mod certs;
pub mod envelope;
#[doc(hidden)]
pub mod test_signer;
pub mod verify;
mod sender;

pub use sender::SnsSender;

use std::borrow::Cow;

/// Envelope fields that are capabilities, not data: whoever holds a `Token` or a
/// `SubscribeURL` can confirm a subscription, an `UnsubscribeURL` can end one.
const CAPABILITY_FIELDS: [&str; 4] = ["Token", "SubscribeURL", "UnsubscribeURL", "UnsubscribeUrl"];

/// A body as it may be kept in a rejection record: SNS capability fields replaced by
/// `"***"`. A body that names one but is not a JSON object is cut before the first.
pub fn redact_capabilities(body: &[u8]) -> Cow<'_, [u8]> {
    let Some(first) = CAPABILITY_FIELDS.iter().filter_map(|field| position_of_key(body, field)).min() else {
        return Cow::Borrowed(body);
    };
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(mut map)) => {
            for field in CAPABILITY_FIELDS {
                if let Some(value) = map.get_mut(field) {
                    *value = serde_json::Value::String(crate::secrets::MASK.into());
                }
            }
            Cow::Owned(serde_json::Value::Object(map).to_string().into_bytes())
        }
        _ => {
            let mut kept = body[..first].to_vec();
            kept.extend_from_slice(b"[cut: an SNS token or subscription URL followed]");
            Cow::Owned(kept)
        }
    }
}

/// Where `"field"` (quoted, as a JSON key is written) first appears in `body`.
fn position_of_key(body: &[u8], field: &str) -> Option<usize> {
    let quoted = format!("\"{field}\"");
    body.windows(quoted.len()).position(|w| w == quoted.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_fields_never_reach_a_rejection_record() {
        let body = br#"{"Type":"SubscriptionConfirmation","Token":"2336412f","SubscribeURL":"https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&Token=2336412f","Message":"m"}"#;
        let kept = redact_capabilities(body);
        let text = std::str::from_utf8(&kept).unwrap();
        assert!(!text.contains("2336412f") && text.contains("\"Message\":\"m\""), "{text}");
        let broken = br#"{"Type":"Notification","UnsubscribeURL":"https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&Sub"#;
        let kept = redact_capabilities(broken);
        assert!(!String::from_utf8_lossy(&kept).contains("Action=Unsubscribe"));
        assert!(matches!(redact_capabilities(br#"{"alert": "x"}"#), Cow::Borrowed(_)));
    }
}
