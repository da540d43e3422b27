//! The Graph sender: joins the validation handshake, the batch-wide `validationTokens`
//! check and the per-item checks into one verified batch.
//!
//! Order, nothing slow on the way (Graph counts an answer over about 3 s as slow and
//! drops notifications for endpoints that are slow too often): a `validationToken` in the
//! query is answered without parsing the body (it is read, under the body limit, like any
//! push's); otherwise the body is parsed, its
//! `validationTokens` (required when any item is a rich notification) must all verify,
//! or the batch is not trusted; then each item is checked and, when rich, decrypted.
//! Everything is decided here, so `normalize` hands over what `verify` found.

use std::sync::Arc;

use super::keys::MicrosoftKeys;
use super::notifications::{self, Expected};
use super::rich::{self, KeyCache};

use super::{tokens, validation};
use serde_json::Value;

use crate::sources::{Batch, Handshake, Intake, RawRequest, Rejected, Source, SourceSpec, Verified};

/// A decryption failure as a refusal. The notification's `clientState` already matched:
/// content that fails its HMAC or names no key of ours is forged (unauthenticated), while
/// content that passed the HMAC but is not JSON, or is not shaped as `encryptedContent`,
/// is authentic but undecodable (stored whole as a `raw` event and acknowledged).
fn refusal(error: rich::RichError) -> Rejected {
    if let rich::RichError::PlaintextNotJson { plaintext, .. } = &error {
        // The resource itself: the notification is stored whole with it (`notifications`).
        let kept = plaintext.0.clone();
        return Rejected::undecodable(error.reason(), error.to_string()).keeping(kept, None);
    }
    match error.reason() {
        "graph_data_invalid" | "graph_encrypted_content_malformed" => Rejected::undecodable(error.reason(), error.to_string()),
        reason => Rejected::unauthenticated(reason, error.to_string()),
    }
}

pub struct GraphSender {
    microsoft_keys: Arc<MicrosoftKeys>,
    decryption_keys: KeyCache,
}

impl GraphSender {
    pub fn new(microsoft_keys: Arc<MicrosoftKeys>) -> GraphSender {
        GraphSender { microsoft_keys, decryption_keys: KeyCache::default() }
    }
}

/// What a Graph push is checked against.
pub struct Settings {
    /// Every notification's `clientState` (validated when saved; a config without one
    /// refuses every batch, though a validation request is still answered).
    client_state: Option<String>,
    /// Allowed tenants; empty allows any.
    tenant_ids: Vec<String>,
    /// The audiences a validation token may name.
    app_ids: Vec<String>,
    /// pushgate's upkeep keeps the subscription.
    upkeep: bool,
    /// The `encryption_keys` as written: the key cache parses them once per distinct list.
    encryption_keys: Value,
}

/// What a Graph push proved: a validation request to answer, or a checked batch.
#[derive(Debug)]
pub enum Checked {
    Validation { token: Vec<u8> },
    Batch(Batch),
}

#[async_trait::async_trait]
impl Source for GraphSender {
    type Settings = Settings;
    type Proof = Checked;

    const SPEC: &'static SourceSpec = &super::SPEC;

    fn prepare(&self, config: &Value) -> Result<Settings, Rejected> {
        let strings = |key: &str| notifications::strings(config, key).into_iter().map(str::to_owned).collect::<Vec<_>>();
        Ok(Settings {
            client_state: config.get("client_state").and_then(Value::as_str).map(str::to_owned),
            tenant_ids: strings("tenant_ids"),
            app_ids: strings("app_ids"),
            upkeep: config.get("subscription").is_some(),
            encryption_keys: config.get("encryption_keys").map_or(Value::Null, |keys| serde_json::json!({"encryption_keys": keys})),
        })
    }

    async fn verify<'a>(&self, request: RawRequest<'a>, settings: &Settings) -> Result<Verified<'a, Checked>, Rejected> {
        if let Some(token) = validation::token(request.query)? {
            return Ok(Verified::new(request, Checked::Validation { token }));
        }
        let Some(client_state) = settings.client_state.as_deref() else {
            return Err(Rejected::config("the connection has no client_state"));
        };
        let body = notifications::parse(request.body)?;
        match &body.validation_tokens {
            Some(list) => {
                let wanted = tokens::Expected { app_ids: &settings.app_ids, tenant_ids: &settings.tenant_ids };
                tokens::verify_validation_tokens(list, &self.microsoft_keys, &wanted, request.now).await?;
            }
            // Graph signs every batch that carries resource data; one without tokens is forged.
            None if body.has_encrypted_content() => {
                return Err(Rejected::unauthenticated("graph_token_missing", "rich notifications arrived without validationTokens"));
            }
            None => {}
        }
        // Keys are parsed once per connection configuration, and only for rich batches.
        let rich = body.has_encrypted_content();
        let keys = rich.then(|| {
            self.decryption_keys.keys_for(&settings.encryption_keys).map_err(|e| Rejected::unauthenticated(e.reason(), e.to_string()))
        });
        let (client_state, tenant_ids, upkeep) = (client_state.to_owned(), settings.tenant_ids.clone(), settings.upkeep);
        let (items, now) = (body.items, request.now);
        let check_all = move || {
            let expected = Expected { client_state: &client_state, tenant_ids: tenant_ids.iter().map(String::as_str).collect(), upkeep };
            items
                .iter()
                .map(|item| {
                    notifications::check(item, &expected, now, |content| match &keys {
                        Some(Ok(keys)) => rich::decrypt(content, keys).map_err(refusal),
                        Some(Err(refused)) => Err(refused.clone()),
                        None => Err(Rejected::unauthenticated("graph_encryption_key_unknown", "no decryption keys are loaded")),
                    })
                })
                .collect::<Vec<_>>()
        };
        // An RSA unwrap takes 0.3 to 1.5 ms per notification: a rich batch is decrypted off
        // the async workers, so it never stalls other pushes.
        let results = if rich {
            tokio::task::spawn_blocking(check_all)
                .await
                .map_err(|e| Rejected::unavailable("graph_decryption_failed", format!("the decryption task ended early: {e}")))?
        } else {
            check_all()
        };
        let batch = notifications::assemble(results)?;
        Ok(Verified::new(request, Checked::Batch(batch)))
    }

    /// Everything was decided by `verify`: the proof is handed over as it is.
    fn normalize(&self, verified: Verified<'_, Checked>, _settings: &Settings) -> Result<Intake, Rejected> {
        Ok(match verified.into_parts().1 {
            Checked::Validation { token } => Intake::Handshake(Handshake::GraphValidation { token }),
            Checked::Batch(batch) => Intake::Batch(batch),
        })
    }
}
