//! The Graph catch-up's state of one connection, as the store keeps it: where the last
//! round of delta queries left off and whether another one is due.

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// The delta state of one connection (see `microsoft::catch_up`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CatchUpState {
    pub connection_id: Uuid,
    /// The subscription resource the links below read; links of another resource are
    /// not used.
    pub resource: Option<String>,
    /// The `@odata.deltaLink` of the last round read to its end: the last known state.
    pub delta_link: Option<String>,
    /// The `@odata.nextLink` of a round under way: the next pass goes on from it.
    pub next_link: Option<String>,
    /// Whether the round under way stores what it reads (a catch-up) or only learns the
    /// state (a first read).
    pub round_stores: bool,
    pub round_started_at: Option<DateTime<Utc>>,
    /// Changes the round under way stored so far, and found stored already.
    pub round_items: i64,
    pub round_duplicates: i64,
    /// A catch-up is due since then, for this reason (the first one asked for).
    pub due_since: Option<DateTime<Utc>>,
    pub due_reason: Option<String>,
    /// When a catch-up was last asked for: a round that began before it does not settle it.
    pub due_asked_at: Option<DateTime<Utc>>,
    /// The Graph `missed` report last taken up.
    pub missed_seen_at: Option<DateTime<Utc>>,
}

/// The second dedupe key of a stored Graph change, shared by a change notification and a
/// catch-up of the same change: `graph-item:` and the SHA-256 (hex) of whether the item
/// was deleted, its id and its version. `None` (the event is stored whatever else is)
/// unless the event is an `ms_graph` change (a `changeType`, no `lifecycleEvent`) whose
/// `resourceData` carries a non-empty `id` and a non-empty version: its `@odata.etag`,
/// else its `changeKey` (Outlook items), else its `eTag` (drive items), written the same
/// with or without the weak prefix `W/` and the quotes (Outlook's etag is `W/"` + its
/// change key + `"`).
///
/// The rule never drops a genuinely new change: an item changes its version with every
/// change, so two events with one key carry the same state of the same item. A creation
/// and an update at the same version are the same state (Graph's delta does not tell
/// them apart); a deletion is a change of its own even when it carries the last version.
pub fn version_key(source: super::SourceKind, payload: &serde_json::Value) -> Option<String> {
    use sha2::Digest;
    if source != super::SourceKind::MsGraph || payload.get("lifecycleEvent").is_some() {
        return None;
    }
    let change_type = payload.get("changeType")?.as_str()?;
    let data = payload.get("resourceData")?;
    let id = data.get("id")?.as_str().filter(|id| !id.is_empty())?;
    let version = ["@odata.etag", "changeKey", "eTag"].iter().find_map(|field| {
        let raw = data.get(*field)?.as_str()?.trim();
        let bare = raw.strip_prefix("W/").unwrap_or(raw).trim_matches('"');
        (!bare.is_empty()).then_some(bare)
    })?;
    let deleted = change_type.trim().eq_ignore_ascii_case("deleted");
    let mut hash = sha2::Sha256::new();
    for part in [if deleted { "deleted" } else { "present" }, id, version] {
        // Length-prefixed, so that no two different triples hash alike.
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part.as_bytes());
    }
    Some(format!("graph-item:{}", hex::encode(hash.finalize())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SourceKind;
    use serde_json::json;

    fn change(change_type: &str, data: serde_json::Value) -> serde_json::Value {
        json!({"subscriptionId": "s", "changeType": change_type, "resource": "r", "resourceData": data})
    }

    #[test]
    fn the_same_item_at_the_same_version_shares_a_key() {
        // A basic Outlook notification and the same message read by a delta query.
        let notified = change(
            "created",
            json!({"@odata.type": "#Microsoft.Graph.Message", "@odata.id": "Users/u/Messages/m1", "@odata.etag": "W/\"CQAAABYAAAAR\"", "id": "m1"}),
        );
        let read = change("updated", json!({"@odata.etag": "W/\"CQAAABYAAAAR\"", "subject": "Hi", "id": "m1"}));
        let key = version_key(SourceKind::MsGraph, &notified).expect("id and etag");
        assert_eq!(version_key(SourceKind::MsGraph, &read), Some(key.clone()));
        // The change key alone names the same version.
        assert_eq!(
            version_key(SourceKind::MsGraph, &change("updated", json!({"changeKey": "CQAAABYAAAAR", "id": "m1"}))),
            Some(key.clone())
        );
        assert!(key.starts_with("graph-item:") && key.len() < 100);
    }

    #[test]
    fn a_new_version_or_a_deletion_is_a_new_change() {
        let at = |etag: &str| change("updated", json!({"@odata.etag": etag, "id": "m1"}));
        let first = version_key(SourceKind::MsGraph, &at("W/\"v1\"")).unwrap();
        assert_ne!(version_key(SourceKind::MsGraph, &at("W/\"v2\"")).unwrap(), first, "another version");
        let deleted = change("deleted", json!({"@odata.etag": "W/\"v1\"", "id": "m1"}));
        assert_ne!(version_key(SourceKind::MsGraph, &deleted).unwrap(), first, "a deletion at the last version");
        let other = change("updated", json!({"@odata.etag": "W/\"v1\"", "id": "m2"}));
        assert_ne!(version_key(SourceKind::MsGraph, &other).unwrap(), first, "another item");
        // Drive items: eTag.
        assert!(version_key(SourceKind::MsGraph, &change("updated", json!({"eTag": "\"{A1},2\"", "id": "d1"}))).is_some());
    }

    #[test]
    fn without_an_id_and_a_version_nothing_matches() {
        let none = |payload: serde_json::Value| assert_eq!(version_key(SourceKind::MsGraph, &payload), None, "{payload}");
        // Users and groups: no version in a notification or a delta item.
        none(change("updated", json!({"@odata.type": "#Microsoft.Graph.User", "id": "u1"})));
        none(change("updated", json!({"@odata.etag": "", "id": "m1"})));
        none(change("updated", json!({"@odata.etag": "W/\"\"", "id": "m1"})));
        none(change("updated", json!({"@odata.etag": "W/\"v1\"", "id": ""})));
        none(change("updated", json!({"@odata.etag": 7, "id": "m1"})));
        // Drive notifications carry no resource data.
        none(json!({"subscriptionId": "s", "changeType": "updated", "resource": "drives/d/root"}));
        none(json!({"lifecycleEvent": "missed", "changeType": "updated", "resourceData": {"id": "s", "@odata.etag": "x"}}));
        none(json!({"resourceData": {"id": "m1", "@odata.etag": "x"}}));
        let sns = change("updated", json!({"@odata.etag": "v1", "id": "m1"}));
        assert_eq!(version_key(SourceKind::Webhook, &sns), None, "only Graph changes");
    }
}
