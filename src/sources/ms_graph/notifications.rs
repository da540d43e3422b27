//! A batch of Graph change notifications, `{"value": [...], "validationTokens": [...]}`,
//! read item by item.
//!
//! Graph batches notifications of every subscription that shares a URL, so each item is
//! checked on its own: its `clientState` (the connection's shared secret, compared in
//! constant time) and, when the connection lists `tenant_ids`, its `tenantId` (lifecycle
//! notifications carry `organizationId` instead). An item that passes becomes an event;
//! one that fails is refused with its reason while the others are kept (INTERFACE.md
//! section 4: 202 when anything verified, 403 when nothing did).
//!
//! What is stored is the notification without its `clientState`; a rich notification's
//! `encryptedContent` is replaced by the resource it decrypts to, as `resourceData`. An
//! authenticated notification that cannot be decoded (no `subscriptionId`, no
//! `changeType` or `resource`, encrypted content that is malformed or not JSON once
//! decrypted) is stored whole as a `raw` event of its own: the notification without its
//! `clientState`, as JSON text (`content_type` `application/json`); content that decrypted
//! but not to JSON is replaced by its plaintext (`decryptedContent`, or
//! `decryptedContent_base64` when it is not UTF-8), other rich content kept as it came.
//! The batch's other items are stored as usual.
//!
//! Dedupe keys stay the same across Graph's retries (for up to 4 hours, possibly after the
//! subscription was renewed): subscription id, change type, resource and a hash of the
//! stored notification without `subscriptionExpirationDateTime`. A lifecycle event's key
//! keeps the expiry, so the next `reauthorizationRequired` after a renewal is new.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, SubsecRound, Utc};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::model::{EventKind, NewEvent, ReportedChange, SubscriptionChange};
use crate::sources::{json_kind, Batch, RejectClass, Rejected};
use crate::verify::constant_time_eq;

/// Most notifications read from one batch (Graph sends far fewer).
pub const MAX_ITEMS: usize = 1000;

/// The lifecycle events Graph sends, and what each does to the connection.
pub const REAUTHORIZATION_REQUIRED: &str = "reauthorizationRequired";
pub const SUBSCRIPTION_REMOVED: &str = "subscriptionRemoved";
pub const MISSED: &str = "missed";

/// A batch as it arrived: its items, not yet checked, and its validation tokens.
#[derive(Debug)]
pub struct Body {
    pub items: Vec<Value>,
    pub validation_tokens: Option<Value>,
}

impl Body {
    /// Whether any item is a rich notification (its resource encrypted in the body).
    pub fn has_encrypted_content(&self) -> bool {
        self.items.iter().any(|i| i.get("encryptedContent").is_some_and(|c| !c.is_null()))
    }
}

/// What the connection expects of each item.
#[derive(Debug)]
pub struct Expected<'a> {
    pub client_state: &'a str,
    /// Allowed tenants; empty allows any.
    pub tenant_ids: Vec<&'a str>,
    /// pushgate's upkeep manages the subscription (`config.subscription`): its id and
    /// expiry come from Graph's answers to the upkeep, not from notifications.
    pub upkeep: bool,
}

/// The strings of a list in `config` (missing or not a list: none).
pub fn strings<'a>(config: &'a Value, key: &str) -> Vec<&'a str> {
    config.get(key).and_then(Value::as_array).map(|l| l.iter().filter_map(Value::as_str).collect()).unwrap_or_default()
}

/// Reads the body: a JSON object with a non-empty `value` list. A single notification
/// object (as some of Graph's documentation prints them) is read as a batch of one.
pub fn parse(body: &[u8]) -> Result<Body, Rejected> {
    let malformed = |detail: String| Rejected::malformed("graph_body_malformed", detail);
    let value: Value = serde_json::from_slice(body).map_err(|e| malformed(format!("the body is not JSON: {e}")))?;
    let Value::Object(mut map) = value else {
        return Err(malformed(format!("expected a JSON object, got {}", json_kind(&value))));
    };
    let validation_tokens = map.remove("validationTokens");
    let items = match map.remove("value") {
        Some(Value::Array(items)) => items,
        Some(other) => return Err(malformed(format!("`value` must be a list, got {}", json_kind(&other)))),
        None if map.contains_key("subscriptionId") => vec![Value::Object(map)],
        None => return Err(malformed("no `value` list of notifications".into())),
    };
    if items.is_empty() || items.len() > MAX_ITEMS {
        return Err(malformed(format!("expected 1 to {MAX_ITEMS} notifications, got {}", items.len())));
    }
    Ok(Body { items, validation_tokens })
}

/// One verified item: its event, and the subscription change it reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Accepted {
    pub event: NewEvent,
    pub change: Option<ReportedChange>,
}

/// Checks one item and builds its event. `decrypt` turns an `encryptedContent` into the
/// resource (the caller holds the keys).
pub fn check(
    item: &Value,
    expected: &Expected<'_>,
    now: DateTime<Utc>,
    decrypt: impl FnOnce(&Value) -> Result<Value, Rejected>,
) -> Result<Accepted, Rejected> {
    let Some(fields) = item.as_object() else {
        return Err(Rejected::malformed("graph_notification_malformed", format!("a notification is {}, not an object", json_kind(item))));
    };
    match fields.get("clientState") {
        Some(Value::String(given)) if constant_time_eq(given.as_bytes(), expected.client_state.as_bytes()) => {}
        Some(Value::String(_)) => {
            return Err(Rejected::unauthenticated("graph_client_state_invalid", "the clientState is not the connection's"))
        }
        _ => return Err(Rejected::unauthenticated("graph_client_state_missing", "the notification has no clientState")),
    }
    if !expected.tenant_ids.is_empty() {
        let tenant = fields.get("tenantId").or_else(|| fields.get("organizationId")).and_then(Value::as_str);
        match tenant {
            Some(t) if expected.tenant_ids.iter().any(|allowed| allowed.eq_ignore_ascii_case(t)) => {}
            Some(t) => {
                return Err(Rejected::unauthenticated(
                    "graph_tenant_not_allowed",
                    format!("tenant `{}` is not in tenant_ids", t.chars().take(64).collect::<String>()),
                ))
            }
            None => return Err(Rejected::unauthenticated("graph_tenant_not_allowed", "the notification names no tenant")),
        }
    }
    // From here on the notification is authenticated: what cannot be read is kept whole and
    // acknowledged (Graph would retry it for hours), not refused as a forgery.
    decode(fields, expected, now, decrypt).map_err(|rejected| keep_whole(rejected, fields))
}

/// An undecodable notification is kept as its `raw` event: the notification as it came,
/// without its `clientState` (a shared secret never reaches stored events), as JSON text.
/// Rich content that decrypted to something other than JSON (the plaintext `decrypt`
/// kept) replaces its `encryptedContent` as `decryptedContent` (text) or
/// `decryptedContent_base64`; other rich content is kept as it came.
fn keep_whole(rejected: Rejected, fields: &Map<String, Value>) -> Rejected {
    if rejected.class != RejectClass::Undecodable {
        return rejected;
    }
    let mut kept = fields.clone();
    kept.remove("clientState");
    if let Some(plaintext) = rejected.kept.as_deref().and_then(|k| k.body.clone()) {
        kept.remove("encryptedContent");
        match String::from_utf8(plaintext) {
            Ok(text) => kept.insert("decryptedContent".into(), Value::String(text)),
            Err(e) => kept.insert("decryptedContent_base64".into(), Value::String(STANDARD.encode(e.into_bytes()))),
        };
    }
    let text = serde_json::to_vec(&Value::Object(kept)).expect("a JSON object always serializes");
    rejected.keeping(text, Some("application/json"))
}

/// The event of an authenticated notification.
fn decode(
    fields: &Map<String, Value>,
    expected: &Expected<'_>,
    now: DateTime<Utc>,
    decrypt: impl FnOnce(&Value) -> Result<Value, Rejected>,
) -> Result<Accepted, Rejected> {
    let text = |name: &str| fields.get(name).and_then(Value::as_str).filter(|s| !s.is_empty());
    let Some(subscription_id) = text("subscriptionId") else {
        return Err(Rejected::undecodable("graph_notification_malformed", "the notification has no subscriptionId"));
    };
    // Microseconds, as the store keeps times, so equal expiries compare equal.
    let expires_at = text("subscriptionExpirationDateTime").and_then(rfc3339).map(|t| t.trunc_subsecs(6));
    let mut payload = fields.clone();
    payload.remove("clientState");

    if let Some(lifecycle) = text("lifecycleEvent") {
        let key = format!("lifecycle:{subscription_id}:{lifecycle}:{}", hash(&payload));
        let change = match lifecycle {
            REAUTHORIZATION_REQUIRED => {
                Some(SubscriptionChange::ReauthorizationRequired { at: now, subscription_id: subscription_id.to_owned() })
            }
            SUBSCRIPTION_REMOVED => Some(SubscriptionChange::Removed { at: now, subscription_id: subscription_id.to_owned() }),
            MISSED => Some(SubscriptionChange::Missed { at: now }),
            // A lifecycle event Graph adds later is kept, and changes nothing.
            _ => None,
        };
        let change = change.map(|change| ReportedChange { change, event_key: Some(key.clone()) });
        let event = NewEvent { dedupe_key: key, kind: EventKind::Lifecycle, occurred_at: None, payload: Value::Object(payload) };
        return Ok(Accepted { event, change });
    }

    let (Some(change_type), Some(resource)) = (text("changeType"), text("resource")) else {
        return Err(Rejected::undecodable("graph_notification_malformed", "the notification has no changeType or resource"));
    };
    let mut occurred_at = None;
    if let Some(content) = payload.remove("encryptedContent").filter(|c| !c.is_null()) {
        let resource_data = decrypt(&content)?;
        occurred_at = ["lastModifiedDateTime", "createdDateTime"]
            .iter()
            .find_map(|f| resource_data.get(*f).and_then(Value::as_str).and_then(rfc3339));
        payload.insert("resourceData".into(), resource_data);
    }
    let mut keyed = payload.clone();
    keyed.remove("subscriptionExpirationDateTime");
    let key = format!("{subscription_id}:{change_type}:{resource}:{}", hash(&keyed));
    let change = (!expected.upkeep)
        .then(|| ReportedChange::always(SubscriptionChange::Observed { external_id: subscription_id.to_owned(), expires_at }));
    let event = NewEvent { dedupe_key: key, kind: kind_of(resource), occurred_at, payload: Value::Object(payload) };
    Ok(Accepted { event, change })
}

/// Joins the checked items: the accepted ones and each refusal. When nothing was stored
/// the push is refused as a whole, unless an item was authentic but undecodable (stored
/// whole as a `raw` event and acknowledged, so Graph stops retrying it): with its first unauthenticated item's
/// reason (403), or, when every item was malformed before any check, the first (400).
pub fn assemble(results: Vec<Result<Accepted, Rejected>>) -> Result<Batch, Rejected> {
    let total = results.len();
    let mut batch = Batch { events: Vec::new(), changes: Vec::new(), refused: Vec::new() };
    for (index, result) in results.into_iter().enumerate() {
        match result {
            Ok(accepted) => {
                batch.events.push(accepted.event);
                batch.changes.extend(accepted.change);
            }
            Err(mut refused) => {
                refused.detail = format!("notification {index} of {total}: {}", refused.detail);
                batch.refused.push(refused);
            }
        }
    }
    let authentic = |r: &Rejected| r.class == RejectClass::Undecodable;
    if batch.events.is_empty() && !batch.refused.iter().any(authentic) {
        let index = batch.refused.iter().position(|r| r.class == RejectClass::Unauthenticated).unwrap_or(0);
        let mut first = batch.refused.swap_remove(index);
        if total > 1 {
            first.detail = format!("no notification verified; {}", first.detail);
        }
        return Err(first);
    }
    batch.changes = latest_observations(batch.changes);
    Ok(batch)
}

/// One observation per subscription (the latest expiry); other changes as they came.
fn latest_observations(changes: Vec<ReportedChange>) -> Vec<ReportedChange> {
    let mut out: Vec<ReportedChange> = Vec::with_capacity(changes.len());
    for change in changes {
        if let SubscriptionChange::Observed { external_id, expires_at } = &change.change {
            let seen = out
                .iter_mut()
                .find(|c| matches!(&c.change, SubscriptionChange::Observed { external_id: other, .. } if other == external_id));
            if let Some(seen) = seen {
                if let SubscriptionChange::Observed { expires_at: kept, .. } = &mut seen.change {
                    *kept = (*kept).max(*expires_at);
                }
                continue;
            }
        }
        out.push(change);
    }
    out
}

/// Security resources are alerts; everything else Graph notifies about is telemetry.
fn kind_of(resource: &str) -> EventKind {
    let r = resource.trim_start_matches('/').to_ascii_lowercase();
    if r.starts_with("security/alerts") || r.starts_with("security/incidents") {
        EventKind::Alert
    } else {
        EventKind::Telemetry
    }
}

/// The first 128 bits of the SHA-256 of a JSON object, in hex (key order is canonical).
fn hash(fields: &Map<String, Value>) -> String {
    let canonical = serde_json::to_vec(&canonical(&Value::Object(fields.clone()))).unwrap_or_default();
    hex::encode(&Sha256::digest(&canonical)[..16])
}

/// `value` with every object's keys sorted, whatever order they arrived in (what a
/// content hash is taken of, here and in the Graph catch-up).
pub fn canonical(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k.clone(), canonical(v))).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

/// An RFC 3339 time, in UTC.
pub fn rfc3339(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text).ok().map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests;
