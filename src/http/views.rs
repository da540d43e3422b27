//! JSON shapes of the admin API (INTERFACE.md section 2 and 5). Status is evaluated here,
//! at read time, with the same function the monitor uses.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::health::status_of;
use crate::model::{Connection, SourceKind, Status, StatusChange, StoredEvent, StoredRejection};

/// RFC 3339 in UTC with a `Z`, microseconds when there are any.
pub fn time(t: DateTime<Utc>) -> Value {
    Value::String(rfc3339(t))
}

/// The text form of [`time`], shared with the HTML dashboard.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    crate::model::rfc3339(t)
}

fn opt_time(t: Option<DateTime<Utc>>) -> Value {
    t.map(time).unwrap_or(Value::Null)
}

pub fn connection(c: &Connection, public_url: &str, now: DateTime<Utc>) -> Value {
    let (status, message) = status_of(c, now);
    let mut subscription = json!({
        "confirmed_at": opt_time(c.facts.confirmed_at),
        "external_id": c.facts.external_id,
        "expires_at": opt_time(c.facts.expires_at),
    });
    if let Some(url) = &c.facts.confirmation_url {
        subscription["confirmation_url"] = Value::String(url.clone());
    }
    if c.source == SourceKind::MsGraph {
        subscription["reauthorization_required_at"] = opt_time(c.facts.reauthorization_required_at);
        // Graph reported notifications it could not deliver: data was lost upstream.
        subscription["missed_at"] = opt_time(c.facts.missed_at);
    }
    if c.subscription_upkept() {
        subscription["upkeep"] = json!({
            "last_success_at": opt_time(c.upkeep.last_success_at),
            "last_error": c.upkeep.last_error,
            "last_error_at": opt_time(c.upkeep.last_error_at),
            // Since when its calls are refused for the reason the status names
            // (`Unable to read API Endpoint`, `Subscription validation failed`).
            "failing_since": opt_time(c.facts.upkeep_failing_since),
        });
        if c.source == SourceKind::MsGraph {
            // The delta queries that read what lost notifications would have brought.
            subscription["catch_up"] = json!({
                "last_success_at": opt_time(c.catch_up.last_success_at),
                "last_error": c.catch_up.last_error,
                "last_error_at": opt_time(c.catch_up.last_error_at),
            });
        }
    }
    let mut view = json!({
        "id": c.id,
        "tenant_id": c.tenant_id,
        "name": c.name,
        "source": c.source.as_str(),
        "stream": c.stream,
        "push_url": crate::sources::connection_push_url(c, public_url),
        "status": status.as_str(),
        "status_message": message,
        "created_at": time(c.created_at),
        "activated_at": time(c.activated_at),
        "data_last_received_at": opt_time(c.facts.data_last_received_at),
        "last_heartbeat_at": opt_time(c.facts.last_heartbeat_at),
        // The monitor's last evaluation, null until its first: `status` is evaluated
        // again on every read, but only the monitor records transitions and alerts, so
        // this says how current the history and the alerts are.
        "status_last_checked_at": opt_time(c.facts.status_last_checked_at),
        "heartbeat_interval_seconds": c.heartbeat_interval_seconds,
        "grace_seconds": c.grace_seconds,
        "subscription": subscription,
        "counters": c.counters,
        "config": c.config_public,
    });
    if c.source == SourceKind::O365Activity {
        // Audit records fetched after their notifications (with Management API credentials).
        view["data_last_fetched_at"] = opt_time(c.fetch.last_fetched_at);
        view["fetch"] = json!({
            "backlog": c.fetch.backlog,
            "records": c.fetch.records,
            "expired": c.fetch.expired,
            "last_error": c.fetch.last_error,
            "last_error_at": opt_time(c.fetch.last_error_at),
        });
    }
    if c.config_public.get("canary").is_some() {
        view["canary"] = json!({
            "last_published_at": opt_time(c.canary.last_success_at),
            "last_error": c.canary.last_error,
            "last_error_at": opt_time(c.canary.last_error_at),
        });
    }
    view
}

pub fn event(e: &StoredEvent) -> Value {
    json!({
        "id": e.id,
        "connection_id": e.connection_id,
        "tenant_id": e.tenant_id,
        "source": e.source.as_str(),
        "stream": e.stream,
        "kind": e.kind.as_str(),
        "dedupe_key": e.dedupe_key,
        "occurred_at": opt_time(e.occurred_at),
        "received_at": time(e.received_at),
        "payload": e.payload,
    })
}

pub fn rejection(r: &StoredRejection) -> Value {
    json!({
        "id": r.id,
        "at": time(r.at),
        "reason": r.reason,
        "source_addr": r.source_addr,
        "detail": r.detail,
        "body_prefix": r.body_prefix,
    })
}

pub fn history(h: &StatusChange) -> Value {
    json!({
        "at": time(h.at),
        "old_status": h.old_status.map(Status::as_str),
        "new_status": h.new_status.as_str(),
        "message": h.message,
    })
}
