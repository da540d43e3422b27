//! The event of one item a catch-up read: shaped like the Graph change notification that
//! would have brought it, with the item as its resource data.

use serde_json::{json, Map, Value};

use crate::model::{content_key, EventKind, NewEvent};
use crate::sources::ms_graph::notifications::{canonical, rfc3339};

/// The event of a delta item of the current subscription `subscription_id` in tenant
/// `tenant_id` (each left out when not known); `item_base` is the resource path of the
/// collection's items. `None` for an item that is not a JSON object (nothing Graph
/// documents).
pub fn catch_up_event(subscription_id: Option<&str>, tenant_id: Option<&str>, item_base: &str, item: &Value) -> Option<NewEvent> {
    let fields = item.as_object()?;
    let change_type = if fields.contains_key("@removed") { "deleted" } else { "updated" };
    let resource = match fields.get("id").and_then(Value::as_str).filter(|id| !id.is_empty()) {
        Some(id) => format!("{item_base}/{id}"),
        None => item_base.to_owned(),
    };
    let mut payload = Map::new();
    if let Some(subscription) = subscription_id {
        payload.insert("subscriptionId".into(), json!(subscription));
    }
    payload.insert("changeType".into(), json!(change_type));
    payload.insert("resource".into(), json!(resource));
    payload.insert("resourceData".into(), item.clone());
    if let Some(tenant) = tenant_id {
        payload.insert("tenantId".into(), json!(tenant));
    }
    payload.insert("_catch_up".into(), Value::Bool(true));
    // The same change read twice (a page read again after a failure) is one event,
    // whichever subscription was current.
    let keyed = json!({"changeType": change_type, "resource": resource, "resourceData": canonical(item)});
    let dedupe_key = format!("catch-up:{}", content_key(&serde_json::to_vec(&keyed).unwrap_or_default()));
    let occurred_at =
        ["lastModifiedDateTime", "createdDateTime"].iter().find_map(|f| fields.get(*f).and_then(Value::as_str).and_then(rfc3339));
    Some(NewEvent { dedupe_key, kind: EventKind::Telemetry, occurred_at, payload: Value::Object(payload) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{version_key, SourceKind};

    #[test]
    fn an_item_becomes_a_notification_with_its_resource_data() {
        // "Get incremental changes to messages in a folder": the next round's answer.
        let updated = json!({"@odata.type": "#microsoft.graph.message", "@odata.etag": "W/\"CQAAABYAAAARn2vdzPFjSbaPPxzjlzOTAAASsKZz\"",
            "subject": "Holiday hours update", "isRead": "true", "id": "AAMkADNkNAAASq35xAAA="});
        let event = catch_up_event(Some("sub-1"), Some("t-1"), "users/u/mailFolders/f/messages", &updated).unwrap();
        assert_eq!(event.payload["subscriptionId"], "sub-1");
        assert_eq!(event.payload["changeType"], "updated");
        assert_eq!(event.payload["resource"], "users/u/mailFolders/f/messages/AAMkADNkNAAASq35xAAA=");
        assert_eq!(event.payload["resourceData"], updated);
        assert_eq!((event.payload["tenantId"].as_str(), event.payload["_catch_up"].as_bool()), (Some("t-1"), Some(true)));
        assert!(event.dedupe_key.starts_with("catch-up:sha256:"));
        assert_eq!(event.kind, EventKind::Telemetry);

        // The notification Graph would have sent for it shares its second key.
        let notified = json!({"subscriptionId": "sub-0", "changeType": "updated", "resource": "Users/u/Messages/AAMkADNkNAAASq35xAAA=",
            "resourceData": {"@odata.type": "#Microsoft.Graph.Message", "@odata.etag": "W/\"CQAAABYAAAARn2vdzPFjSbaPPxzjlzOTAAASsKZz\"", "id": "AAMkADNkNAAASq35xAAA="}});
        assert_eq!(version_key(SourceKind::MsGraph, &event.payload), version_key(SourceKind::MsGraph, &notified));
        assert!(version_key(SourceKind::MsGraph, &notified).is_some());
    }

    #[test]
    fn a_removed_item_is_a_deletion() {
        let removed = json!({"@odata.type": "#microsoft.graph.message", "id": "AAMkADk0MGFk", "@removed": {"reason": "deleted"}});
        let event = catch_up_event(None, None, "users/u/mailFolders/f/messages", &removed).unwrap();
        assert_eq!(event.payload["changeType"], "deleted");
        assert!(event.payload.get("subscriptionId").is_none() && event.payload.get("tenantId").is_none());
        assert_eq!(version_key(SourceKind::MsGraph, &event.payload), None, "no version: stored whatever else is");
    }

    #[test]
    fn the_same_item_read_twice_is_one_event_and_key_order_does_not_matter() {
        let a: Value = serde_json::from_str(r#"{"id":"u1","displayName":"A","jobTitle":"B"}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"jobTitle":"B","displayName":"A","id":"u1"}"#).unwrap();
        let key = |v: &Value, s: &str| catch_up_event(Some(s), None, "users", v).unwrap().dedupe_key;
        assert_eq!(key(&a, "s1"), key(&b, "s2"));
        let changed = json!({"id": "u1", "displayName": "A", "jobTitle": "C"});
        assert_ne!(key(&changed, "s1"), key(&a, "s1"));
        assert!(catch_up_event(None, None, "users", &json!("not an object")).is_none());
    }
}
