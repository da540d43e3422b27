//! What of a refused body may be kept in its rejection record.
//!
//! A rejection keeps a bounded prefix of the body so an operator can see what arrived,
//! but some fields of a push are secrets or capabilities, never data: an SNS `Token`,
//! `SubscribeURL` or `UnsubscribeURL` (whoever holds one can confirm or end a
//! subscription), a Graph `clientState` (the connection's shared secret, echoed in every
//! notification) and Graph `validationTokens` (bearer tokens). Those are replaced by
//! `"***"` wherever they sit in a JSON body; a body that names one but is not JSON is cut
//! before the first.

use std::borrow::Cow;

use serde_json::Value;

/// The fields masked in rejection records, at any depth.
const SECRET_FIELDS: [&str; 6] = ["Token", "SubscribeURL", "UnsubscribeURL", "UnsubscribeUrl", "clientState", "validationTokens"];

/// `body` with every secret field masked (see the module doc).
pub fn for_record(body: &[u8]) -> Cow<'_, [u8]> {
    let Some(first) = SECRET_FIELDS.iter().filter_map(|field| position_of_key(body, field)).min() else {
        return Cow::Borrowed(body);
    };
    match serde_json::from_slice::<Value>(body) {
        Ok(mut value) => {
            mask(&mut value);
            Cow::Owned(value.to_string().into_bytes())
        }
        Err(_) => {
            let mut kept = body[..first].to_vec();
            kept.extend_from_slice(b"[cut: a secret field followed]");
            Cow::Owned(kept)
        }
    }
}

fn mask(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if SECRET_FIELDS.contains(&key.as_str()) {
                    *v = Value::String(crate::secrets::MASK.into());
                } else {
                    mask(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask),
        _ => {}
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
    fn sns_capability_fields_never_reach_a_rejection_record() {
        let body = br#"{"Type":"SubscriptionConfirmation","Token":"2336412f","SubscribeURL":"https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&Token=2336412f","Message":"m"}"#;
        let kept = for_record(body);
        let text = std::str::from_utf8(&kept).unwrap();
        assert!(!text.contains("2336412f") && text.contains("\"Message\":\"m\""), "{text}");
        let broken = br#"{"Type":"Notification","UnsubscribeURL":"https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&Sub"#;
        let kept = for_record(broken);
        assert!(!String::from_utf8_lossy(&kept).contains("Action=Unsubscribe"));
        assert!(matches!(for_record(br#"{"alert": "x"}"#), Cow::Borrowed(_)));
    }

    #[test]
    fn graph_client_states_and_tokens_are_masked_in_every_item() {
        let body =
            br#"{"value":[{"clientState":"secret-1","resource":"r"},{"clientState":"secret-2"}],"validationTokens":["eyJ0eXAi.x.y"]}"#;
        let text = String::from_utf8(for_record(body).into_owned()).unwrap();
        assert!(!text.contains("secret-") && !text.contains("eyJ0eXAi"), "{text}");
        assert!(text.contains("\"resource\":\"r\""));
        let cut = for_record(br#"{"value":[{"resource":"r","clientState":"secret-1"#);
        assert!(!String::from_utf8_lossy(&cut).contains("secret-1"));
    }
}
