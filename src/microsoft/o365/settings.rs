//! What pushgate's calls to the Management Activity API need of an `o365_activity`
//! connection's full (unsealed) config, and the fingerprint of what its subscriptions are
//! started with.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::config::Secret;
use crate::microsoft::identity::Credentials;
use crate::sources::o365_activity::config::DEFAULT_ENDPOINT;

/// An `o365_activity` connection's `subscription`, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct O365Settings {
    pub credentials: Credentials,
    /// As configured, in order, each once.
    pub content_types: Vec<String>,
    /// The Management API origin (`https://manage.office.com`), no trailing slash.
    pub endpoint: String,
    /// The connection's `auth_id`: the subscriptions' `webhook.authId`.
    pub auth_id: Secret,
}

impl O365Settings {
    /// The settings in an unsealed `o365_activity` config; `Ok(None)` when it has no
    /// `subscription`, an error text when something the calls need is unusable.
    pub fn of(config: &Value) -> Result<Option<O365Settings>, String> {
        let Some(subscription) = config.get("subscription") else { return Ok(None) };
        let mut content_types: Vec<String> = Vec::new();
        for t in subscription.get("content_types").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default() {
            let t = t.as_str().ok_or("`subscription.content_types` holds something that is not a string")?;
            if !content_types.iter().any(|known| known == t) {
                content_types.push(t.to_owned());
            }
        }
        if content_types.is_empty() {
            return Err("`subscription.content_types` is empty".into());
        }
        let endpoint = match subscription.get("endpoint").and_then(Value::as_str) {
            Some(endpoint) => crate::config::origin(endpoint).map_err(|e| format!("`subscription.endpoint` {e}"))?,
            None => DEFAULT_ENDPOINT.to_owned(),
        };
        let auth_id = config.get("auth_id").and_then(Value::as_str).filter(|s| !s.is_empty()).ok_or("`auth_id` is missing")?;
        Ok(Some(O365Settings {
            credentials: Credentials::of_subscription(subscription)?,
            content_types,
            endpoint,
            auth_id: Secret::new(auth_id),
        }))
    }

    /// The token scope for the endpoint: `https://manage.office.com/.default`.
    pub fn scope(&self) -> String {
        format!("{}/.default", self.endpoint)
    }

    /// SHA-256 (hex) of everything the subscriptions are started with that a later change
    /// of the connection must reach Microsoft with: the webhook address, the auth id, the
    /// content types, the endpoint, tenant and client id. The client secret is left out:
    /// the next token applies it.
    pub fn fingerprint(&self, webhook_address: &str) -> String {
        let mut hash = Sha256::new();
        let types = self.content_types.join(",");
        for part in [
            webhook_address,
            self.auth_id.expose(),
            types.as_str(),
            self.endpoint.as_str(),
            self.credentials.tenant_id.as_str(),
            self.credentials.client_id.as_str(),
        ] {
            // Length-prefixed, so that no two different lists hash alike.
            hash.update((part.len() as u64).to_be_bytes());
            hash.update(part.as_bytes());
        }
        hex::encode(hash.finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config() -> Value {
        json!({"auth_id": "a", "subscription": {"tenant_id": "t", "client_id": "c", "client_secret": "s",
            "content_types": ["Audit.Exchange", "Audit.General", "Audit.Exchange"]}})
    }

    #[test]
    fn settings_are_read_with_the_commercial_endpoint_by_default() {
        let s = O365Settings::of(&config()).unwrap().unwrap();
        assert_eq!(s.content_types, ["Audit.Exchange", "Audit.General"], "each once, in order");
        assert_eq!((s.endpoint.as_str(), s.scope()), ("https://manage.office.com", "https://manage.office.com/.default".to_owned()));
        assert_eq!(s.auth_id.expose(), "a");
        let mut gcc_high = config();
        gcc_high["subscription"]["endpoint"] = json!("https://manage.office365.us/");
        assert_eq!(O365Settings::of(&gcc_high).unwrap().unwrap().endpoint, "https://manage.office365.us");
        assert_eq!(O365Settings::of(&json!({"auth_id": "a"})).unwrap(), None);
        let mut bad = config();
        bad["subscription"]["endpoint"] = json!("https://manage.office.com/api");
        assert!(O365Settings::of(&bad).is_err());
    }

    #[test]
    fn the_fingerprint_changes_with_what_microsoft_is_told() {
        let s = O365Settings::of(&config()).unwrap().unwrap();
        let base = s.fingerprint("https://p.example/push/o365-activity/1");
        assert_ne!(base, s.fingerprint("https://p.example/push/o365-activity/2"));
        let rotated = O365Settings { credentials: Credentials { client_secret: Secret::new("new"), ..s.credentials.clone() }, ..s.clone() };
        assert_eq!(base, rotated.fingerprint("https://p.example/push/o365-activity/1"), "a new secret needs no restart");
        let other_auth = O365Settings { auth_id: Secret::new("b"), ..s };
        assert_ne!(base, other_auth.fingerprint("https://p.example/push/o365-activity/1"));
    }
}
