//! What the upkeep needs of an `ms_graph` connection's configuration, and the fingerprint
//! of what a subscription is created with.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::config::Secret;
use crate::microsoft::api::{Credentials, EncryptionCertificate};

/// The lifetime asked for when `subscription.expiration_minutes` is not set: just under
/// three days, which Graph accepts for most resources (users, groups, mail, events,
/// contacts, drive items, list items); resources with a shorter maximum (Teams messages
/// with resource data, presence: one hour) need `expiration_minutes`.
pub const DEFAULT_EXPIRATION_MINUTES: i64 = 4230;

/// What the upkeep needs of a connection's full configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub credentials: Credentials,
    pub resource: String,
    pub change_type: String,
    pub lifetime: chrono::Duration,
    pub client_state: Secret,
    pub encryption: Option<EncryptionCertificate>,
}

impl Settings {
    /// SHA-256 (hex) of everything a subscription is created with that a later change of
    /// the connection must reach Graph with: resource, change type, client state, the
    /// notification URL, the encryption certificate and its id, tenant and client id. The
    /// lifetime and the client secret are left out: a renewal or the next token applies them.
    pub fn fingerprint(&self, notification_url: &str) -> String {
        let (certificate_id, certificate) = match &self.encryption {
            Some(e) => (e.id.as_str(), e.certificate_base64.as_str()),
            None => ("", ""),
        };
        let mut hash = Sha256::new();
        for part in [
            self.resource.as_str(),
            self.change_type.as_str(),
            self.client_state.expose(),
            notification_url,
            certificate_id,
            certificate,
            self.credentials.tenant_id.as_str(),
            self.credentials.client_id.as_str(),
        ] {
            // Length-prefixed, so that no two different lists hash alike.
            hash.update((part.len() as u64).to_be_bytes());
            hash.update(part.as_bytes());
        }
        hex::encode(hash.finalize())
    }

    /// The settings in an unsealed `ms_graph` config; `Ok(None)` when it has no
    /// `subscription`, an error text when something the upkeep needs is unusable.
    pub fn of(config: &Value) -> Result<Option<Settings>, String> {
        let Some(subscription) = config.get("subscription") else { return Ok(None) };
        let field = |name: &str| crate::microsoft::identity::subscription_text(subscription, name);
        let minutes = subscription.get("expiration_minutes").and_then(Value::as_i64).unwrap_or(DEFAULT_EXPIRATION_MINUTES);
        let client_state =
            config.get("client_state").and_then(Value::as_str).filter(|s| !s.is_empty()).ok_or("`client_state` is missing")?;
        Ok(Some(Settings {
            credentials: Credentials::of_subscription(subscription)?,
            resource: field("resource")?,
            change_type: field("change_type")?,
            lifetime: chrono::Duration::minutes(minutes.clamp(1, crate::sources::config_check::MAX_GRAPH_EXPIRATION_MINUTES)),
            client_state: Secret::new(client_state),
            encryption: encryption_certificate(config)?,
        }))
    }
}

/// The first encryption key with a `certificate_pem`: Graph then sends rich
/// notifications encrypted with that certificate.
fn encryption_certificate(config: &Value) -> Result<Option<EncryptionCertificate>, String> {
    use base64::Engine;
    let keys = config.get("encryption_keys").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    for key in keys {
        let Some(pem) = key.get("certificate_pem").and_then(Value::as_str) else { continue };
        let id = key.get("id").and_then(Value::as_str).unwrap_or_default().to_owned();
        let der = match x509_parser::pem::parse_x509_pem(pem.trim().as_bytes()) {
            Ok((_, block)) if block.label == "CERTIFICATE" && block.parse_x509().is_ok() => block.contents,
            _ => return Err(format!("encryption key `{id}`: `certificate_pem` is not a PEM X.509 certificate")),
        };
        let certificate_base64 = base64::engine::general_purpose::STANDARD.encode(der);
        return Ok(Some(EncryptionCertificate { id, certificate_base64 }));
    }
    Ok(None)
}
