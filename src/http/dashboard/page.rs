//! What the dashboard shows: connections grouped by tenant, counts per status, the
//! destinations events are forwarded to (status, lag, last delivery, last error), and the
//! templates of the list, the login form and plain messages (`templates/dashboard.html`,
//! `templates/login.html`, `templates/message.html`); one connection's page is
//! `connection_page`. Askama escapes every `{{ }}` value in `.html` templates, so tenant
//! ids, names, streams and messages reach the page only as text.

use std::collections::BTreeMap;

use askama::Template;
use chrono::{DateTime, Utc};

use crate::health::status_of;
use crate::http::views::rfc3339;
use crate::model::{Backlog, Connection, Destination, Status};

/// Seconds between automatic reloads of the dashboard (a `<meta http-equiv="refresh">`,
/// so it needs no JavaScript).
pub const REFRESH_SECONDS: u32 = 15;

#[derive(Template)]
#[template(path = "dashboard.html")]
pub struct DashboardPage<'a> {
    pub refresh_seconds: u32,
    pub checked_at: String,
    pub total: usize,
    pub counts: Vec<StatusCount>,
    pub tenants: Vec<TenantGroup<'a>>,
    /// Where events are forwarded to, beside the connections they come from.
    pub destinations: Vec<DestinationRow<'a>>,
}

pub struct DestinationRow<'a> {
    pub name: &'a str,
    pub kind: &'static str,
    pub status: &'static str,
    /// What the status means, as a tooltip.
    pub meaning: &'static str,
    pub lag_events: i64,
    pub oldest_undelivered: String,
    pub last_delivered: String,
    /// The last failure, `–` without one.
    pub last_error: String,
    pub delivered: i64,
    pub dead_letters: i64,
}

pub struct StatusCount {
    pub status: &'static str,
    pub count: usize,
}

pub struct TenantGroup<'a> {
    pub tenant: &'a str,
    pub rows: Vec<ConnectionRow<'a>>,
}

pub struct ConnectionRow<'a> {
    /// Links the row to the connection's own page.
    pub id: String,
    pub name: &'a str,
    pub source: &'static str,
    pub stream: &'a str,
    pub status: &'static str,
    pub message: &'static str,
    pub created: String,
    pub data_last_received: String,
    pub last_heartbeat: String,
    pub status_last_checked: String,
}

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage<'a> {
    pub error: Option<&'a str>,
}

/// A page that only says something: a connection that does not exist, an id that is not one.
#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage<'a> {
    pub title: &'a str,
    pub text: &'a str,
}

impl<'a> DashboardPage<'a> {
    /// Evaluates every connection's status at `now`, as the admin API does.
    pub fn new(connections: &'a [Connection], destinations: &'a [(Destination, Backlog)], now: DateTime<Utc>) -> DashboardPage<'a> {
        let mut by_tenant: BTreeMap<&str, Vec<ConnectionRow<'a>>> = BTreeMap::new();
        let mut per_status = [0usize; Status::ALL.len()];
        for c in connections {
            let (status, message) = status_of(c, now);
            if let Some(i) = Status::ALL.iter().position(|s| *s == status) {
                per_status[i] += 1;
            }
            by_tenant.entry(c.tenant_id.as_str()).or_default().push(ConnectionRow {
                id: c.id.to_string(),
                name: &c.name,
                source: c.source.as_str(),
                stream: &c.stream,
                status: status.as_str(),
                message: message.unwrap_or("–"),
                created: rfc3339(c.created_at),
                data_last_received: time_or_never(c.facts.data_last_received_at),
                last_heartbeat: time_or_never(c.facts.last_heartbeat_at),
                // The monitor's last evaluation, as in the API (`views::connection`).
                status_last_checked: time_or_never(c.facts.status_last_checked_at),
            });
        }
        let tenants = by_tenant
            .into_iter()
            .map(|(tenant, mut rows)| {
                rows.sort_by(|a, b| a.name.cmp(b.name).then(a.stream.cmp(b.stream)));
                TenantGroup { tenant, rows }
            })
            .collect();
        DashboardPage {
            refresh_seconds: REFRESH_SECONDS,
            checked_at: rfc3339(now),
            total: connections.len(),
            counts: Status::ALL.iter().zip(per_status).map(|(s, count)| StatusCount { status: s.as_str(), count }).collect(),
            tenants,
            destinations: destinations.iter().map(|(d, backlog)| destination_row(d, backlog, now)).collect(),
        }
    }
}

fn destination_row<'a>(d: &'a Destination, backlog: &Backlog, now: DateTime<Utc>) -> DestinationRow<'a> {
    let status = crate::forward::status::evaluate(d, backlog, now);
    DestinationRow {
        name: &d.name,
        kind: d.kind.as_str(),
        status: status.as_str(),
        meaning: status.meaning(),
        lag_events: backlog.events,
        oldest_undelivered: time_or_never(backlog.oldest_received_at).replace("never", "–"),
        last_delivered: time_or_never(d.last_delivered_at),
        last_error: d.last_error.as_ref().map_or_else(|| "–".to_owned(), |e| format!("{} ({})", e.message, rfc3339(e.at))),
        delivered: d.counters.delivered,
        dead_letters: d.counters.dead_letters,
    }
}

fn time_or_never(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(|| "never".to_owned(), rfc3339)
}
