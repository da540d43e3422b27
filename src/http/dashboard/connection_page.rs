//! What the page of one connection (`GET /connections/{id}`) shows: its status now and
//! why, a 7-day status timeline, the last day's arrivals, its subscription and upkeep,
//! counters, times, settings (the public configuration: secrets stay `***`) and its last
//! rejections. The template is `templates/connection.html`; askama escapes every value.

use askama::Template;
use chrono::{DateTime, DurationRound, TimeDelta, Utc};

use super::arrivals::{self, Chart};
use super::guidance::{explain, spans, Span};
use super::timeline::{self, Timeline};
use super::when::Stamp;
use crate::health::status_of;
use crate::http::views::rfc3339;
use crate::model::{Connection, Counters, HourlyArrivals, SourceKind, StatusChange, StoredRejection};

/// Rejections the page lists, newest first.
pub const REJECTIONS_SHOWN: u32 = 20;

/// Seconds between automatic reloads, as on the list but slower: this page reads more.
pub const REFRESH_SECONDS: u32 = 60;

#[derive(Template)]
#[template(path = "connection.html")]
pub struct ConnectionPage<'a> {
    pub refresh_seconds: u32,
    pub name: &'a str,
    pub tenant: &'a str,
    pub source: &'static str,
    pub stream: &'a str,
    pub push_url: String,
    pub status: &'static str,
    pub message: Option<&'static str>,
    /// What the status means, one paragraph per README row.
    pub meaning: Vec<Vec<Span>>,
    /// Where to look at the sender's cloud: the README column heading and its rows.
    pub look_at: Option<(String, Vec<Vec<Span>>)>,
    pub checked_at: String,
    pub timeline: Timeline,
    pub timeline_from: String,
    /// The history entries inside the timeline's window, newest first.
    pub transitions: Vec<TransitionRow>,
    pub arrivals: Chart,
    pub arrivals_width: String,
    pub arrivals_baseline: String,
    pub subscription: Vec<Fact>,
    /// The subscription upkeep's outcome; empty unless pushgate keeps the subscription.
    pub upkeep: Vec<Fact>,
    /// The upkeep's heading: whose subscriptions it keeps.
    pub upkeep_heading: &'static str,
    /// The canary's outcome; empty without a canary.
    pub canary: Vec<Fact>,
    /// Office 365 audit content fetching; empty for other sources.
    pub fetch: Vec<Fact>,
    pub counters: Counters,
    pub times: Vec<Fact>,
    pub settings: Vec<Fact>,
    /// The public configuration (secrets as `***`), pretty-printed.
    pub config: String,
    pub rejections: Vec<RejectionRow>,
    pub rejections_shown: u32,
}

/// One labelled value: a time (shown relative, exact in its title) or text.
pub struct Fact {
    pub label: &'static str,
    pub text: String,
    pub stamp: Option<Stamp>,
}

impl Fact {
    fn text(label: &'static str, text: impl Into<String>) -> Fact {
        Fact { label, text: text.into(), stamp: None }
    }

    fn time(label: &'static str, t: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Fact {
        Fact { label, text: String::new(), stamp: Some(Stamp::maybe(t, now)) }
    }
}

pub struct TransitionRow {
    pub at: Stamp,
    pub old_status: &'static str,
    pub new_status: &'static str,
    pub message: String,
}

pub struct RejectionRow {
    pub at: Stamp,
    pub reason: String,
    pub detail: String,
    pub source_addr: String,
}

/// What the page needs from the store, read by the handler.
pub struct Inputs<'a> {
    pub connection: &'a Connection,
    /// The whole status history, oldest first.
    pub history: &'a [StatusChange],
    /// The newest rejections, newest first.
    pub rejections: &'a [StoredRejection],
    pub arrivals: &'a HourlyArrivals,
}

/// Where the arrival chart starts at `now`: whole UTC hours, the current one last.
pub fn arrivals_from(now: DateTime<Utc>) -> DateTime<Utc> {
    let hour = now.duration_trunc(TimeDelta::hours(1)).unwrap_or(now);
    hour - TimeDelta::hours(i64::from(arrivals::HOURS) - 1)
}

fn rows(texts: &[&str]) -> Vec<Vec<Span>> {
    texts.iter().map(|t| spans(t)).collect()
}

fn or_dash(text: Option<&str>) -> String {
    text.unwrap_or("–").to_owned()
}

impl<'a> ConnectionPage<'a> {
    pub fn new(inputs: Inputs<'a>, public_url: &str, now: DateTime<Utc>) -> ConnectionPage<'a> {
        let c = inputs.connection;
        let (status, message) = status_of(c, now);
        let why = explain(c, status, message, now);
        let from = now - timeline::WINDOW;
        let transitions = inputs
            .history
            .iter()
            .rev()
            .filter(|h| h.at >= from && h.at <= now)
            .map(|h| TransitionRow {
                at: Stamp::at(h.at, now),
                old_status: timeline::label(h.old_status),
                new_status: h.new_status.as_str(),
                message: or_dash(h.message.as_deref()),
            })
            .collect();
        ConnectionPage {
            refresh_seconds: REFRESH_SECONDS,
            name: &c.name,
            tenant: &c.tenant_id,
            source: c.source.as_str(),
            stream: &c.stream,
            push_url: crate::sources::connection_push_url(c, public_url),
            status: status.as_str(),
            message,
            meaning: rows(&why.meaning),
            look_at: why.look_at.map(|(table, texts)| (table.heading(), rows(&texts))),
            checked_at: rfc3339(now),
            timeline: timeline::layout(inputs.history, c.created_at, from, now),
            timeline_from: rfc3339(from),
            transitions,
            arrivals: arrivals::layout(inputs.arrivals),
            arrivals_width: arrivals::width(),
            arrivals_baseline: format!("{:.0}", arrivals::BASELINE),
            subscription: subscription(c, now),
            upkeep: upkeep(c, now),
            upkeep_heading: if c.source == SourceKind::O365Activity {
                "Office 365 subscription upkeep"
            } else {
                "Graph subscription upkeep"
            },
            canary: canary(c, now),
            fetch: fetch(c, now),
            counters: c.counters,
            times: vec![
                Fact::time("Created", Some(c.created_at), now),
                Fact::time("Active since (created or last resumed)", Some(c.activated_at), now),
                Fact::time("Confirmed", c.facts.confirmed_at, now),
                Fact::time("Last heartbeat", c.facts.last_heartbeat_at, now),
                Fact::time("Data last received", c.facts.data_last_received_at, now),
                Fact::time("Status last checked by the monitor", c.facts.status_last_checked_at, now),
            ],
            settings: settings(c),
            config: serde_json::to_string_pretty(&c.config_public).unwrap_or_default(),
            rejections: inputs
                .rejections
                .iter()
                .map(|r| RejectionRow {
                    at: Stamp::at(r.at, now),
                    reason: r.reason.clone(),
                    detail: r.detail.clone(),
                    source_addr: or_dash(r.source_addr.as_deref()),
                })
                .collect(),
            rejections_shown: REJECTIONS_SHOWN,
        }
    }
}

/// The facts `GET /v1/connections/{id}` shows under `subscription`, less the
/// confirmation URL: it carries the token that confirms the subscription, so the page
/// says only that one waits.
fn subscription(c: &Connection, now: DateTime<Utc>) -> Vec<Fact> {
    let f = &c.facts;
    let mut facts = vec![Fact::text("External id", or_dash(f.external_id.as_deref())), Fact::time("Expires", f.expires_at, now)];
    if f.confirmation_url.is_some() {
        facts.push(Fact::text("Confirmation", format!("waiting for an admin: POST /v1/connections/{}/confirm", c.id)));
    }
    if f.subscription_lost_at.is_some() {
        facts.push(Fact::time("Reported lost", f.subscription_lost_at, now));
    }
    if c.source == SourceKind::MsGraph {
        facts.push(Fact::time("Reauthorization required", f.reauthorization_required_at, now));
        facts.push(Fact::time("Notifications missed", f.missed_at, now));
    }
    facts
}

/// The subscription upkeep, for connections whose subscription pushgate keeps.
fn upkeep(c: &Connection, now: DateTime<Utc>) -> Vec<Fact> {
    if !c.subscription_upkept() {
        return Vec::new();
    }
    vec![
        Fact::time("Last success", c.upkeep.last_success_at, now),
        Fact::text("Last error", or_dash(c.upkeep.last_error.as_deref())),
        Fact::time("Last error at", c.upkeep.last_error_at, now),
        Fact::time("Failing since", c.facts.upkeep_failing_since, now),
    ]
}

/// Office 365 audit content fetched after its notifications.
fn fetch(c: &Connection, now: DateTime<Utc>) -> Vec<Fact> {
    if c.source != SourceKind::O365Activity {
        return Vec::new();
    }
    let f = &c.fetch;
    vec![
        Fact::time("Data last fetched", f.last_fetched_at, now),
        Fact::text("Content blobs waiting to be fetched", f.backlog.to_string()),
        Fact::text("Records fetched", f.records.to_string()),
        Fact::text("Content blobs expired before they could be fetched", f.expired.to_string()),
        Fact::text("Last error", or_dash(f.last_error.as_deref())),
        Fact::time("Last error at", f.last_error_at, now),
    ]
}

fn canary(c: &Connection, now: DateTime<Utc>) -> Vec<Fact> {
    if c.config_public.get("canary").is_none() {
        return Vec::new();
    }
    vec![
        Fact::time("Last published", c.canary.last_success_at, now),
        Fact::text("Last error", or_dash(c.canary.last_error.as_deref())),
        Fact::time("Last error at", c.canary.last_error_at, now),
    ]
}

fn settings(c: &Connection) -> Vec<Fact> {
    vec![
        Fact::text("Heartbeat interval", c.heartbeat_interval_seconds.map_or_else(|| "none expected".to_owned(), |s| format!("{s} s"))),
        Fact::text("Grace", format!("{} s", c.grace_seconds)),
        Fact::text("Connection id", c.id.to_string()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Facts, TaskOutcome};

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    fn connection(source: SourceKind, config_public: serde_json::Value, facts: Facts) -> Connection {
        let created = at("2026-11-01T00:00:00Z");
        Connection {
            id: uuid::Uuid::nil(),
            tenant_id: "acme".into(),
            name: "feed".into(),
            source,
            stream: "s".into(),
            heartbeat_interval_seconds: None,
            grace_seconds: 60,
            config_public,
            config_sealed: "v1:sealed-secret-text".into(),
            created_at: created,
            activated_at: created,
            updated_at: created,
            facts,
            counters: Default::default(),
            canary: Default::default(),
            upkeep: Default::default(),
            fetch: Default::default(),
            catch_up: Default::default(),
        }
    }

    fn render(c: &Connection, now: DateTime<Utc>) -> String {
        let arrivals = HourlyArrivals { from: arrivals_from(now), events: vec![0; 24], heartbeats: vec![0; 24] };
        let inputs = Inputs { connection: c, history: &[], rejections: &[], arrivals: &arrivals };
        ConnectionPage::new(inputs, "https://pushgate.example", now).render().unwrap()
    }

    #[test]
    fn a_waiting_sns_confirmation_is_announced_never_linked() {
        let now = at("2026-12-02T12:00:00Z");
        let url = "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=arn&Token=secret-token";
        let facts = Facts { confirmation_url: Some(url.into()), ..Facts::default() };
        let page = render(&connection(SourceKind::AwsSns, serde_json::json!({"topic_arns": ["arn"]}), facts), now);
        assert!(!page.contains("secret-token") && !page.contains("ConfirmSubscription"), "{page}");
        assert!(page.contains("waiting for an admin: POST /v1/connections/00000000-0000-0000-0000-000000000000/confirm"));
        assert!(!page.contains("sealed-secret-text"));
        // Waiting for an admin is an action to take, however long it has waited.
        assert!(page.contains("<span class=\"status status-requires_action\">requires_action</span>"), "{page}");
        assert!(page.contains("<h3>On AWS, look at</h3>"));
    }

    #[test]
    fn office_365_fetching_shows_when_data_was_last_fetched_and_the_backlog() {
        let now = at("2026-12-02T12:00:00Z");
        let mut c = connection(SourceKind::O365Activity, serde_json::json!({"auth_id": "***"}), Facts::default());
        c.fetch = crate::model::FetchOutcome {
            last_fetched_at: Some(at("2026-12-02T11:58:00Z")),
            records: 1200,
            backlog: 3,
            expired: 1,
            last_error: Some("the Management API answered 429".into()),
            last_error_at: Some(at("2026-12-02T11:59:00Z")),
        };
        let page = render(&c, now);
        assert!(page.contains("<h3>Audit content fetched</h3>"), "{page}");
        assert!(page.contains("<dt>Data last fetched</dt>") && page.contains(r#"<time datetime="2026-12-02T11:58:00Z""#), "{page}");
        assert!(page.contains("<dt>Content blobs waiting to be fetched</dt>\n  <dd>3</dd>"), "{page}");
        assert!(page.contains("<dt>Content blobs expired before they could be fetched</dt>\n  <dd>1</dd>"), "{page}");
        assert!(page.contains("<dd>the Management API answered 429</dd>"));
        let webhook = render(&connection(SourceKind::Webhook, serde_json::json!({}), Facts::default()), now);
        assert!(!webhook.contains("Audit content fetched"), "only Office 365 connections fetch");
    }

    #[test]
    fn graph_upkeep_and_expiry_are_shown_with_relative_times() {
        let now = at("2026-12-02T12:00:00Z");
        let facts = Facts {
            confirmed_at: Some(at("2026-12-01T00:00:00Z")),
            external_id: Some("sub-1".into()),
            expires_at: Some(at("2026-12-02T15:00:00Z")),
            upkeep_failure: Some(crate::model::UpkeepFailure::Credentials),
            upkeep_failing_since: Some(at("2026-12-02T11:00:00Z")),
            ..Facts::default()
        };
        let mut c = connection(SourceKind::MsGraph, serde_json::json!({"subscription": {"client_secret": "***"}}), facts);
        c.upkeep = TaskOutcome {
            last_success_at: Some(at("2026-12-01T00:00:00Z")),
            last_error: Some("invalid_client: AADSTS7000215".into()),
            last_error_at: Some(at("2026-12-02T11:56:00Z")),
        };
        let page = render(&c, now);
        assert!(page.contains(r#"<time datetime="2026-12-02T15:00:00Z" title="2026-12-02T15:00:00Z">in 3 h</time>"#), "{page}");
        assert!(page.contains("<h3>Graph subscription upkeep</h3>"));
        assert!(page.contains("<dd>invalid_client: AADSTS7000215</dd>"));
        assert!(page.contains(r#"title="2026-12-02T11:56:00Z">4 min ago</time>"#));
        assert!(page.contains("<span class=\"message\">Unable to read API Endpoint</span>"));
        assert!(page.contains("<h3>On Microsoft, look at</h3>") && page.contains("<code>subscription.upkeep.last_error</code>"));
        assert!(page.contains("<dd>sub-1</dd>"));
    }

    #[test]
    fn the_office_365_upkeep_is_shown_only_with_a_subscription() {
        let now = at("2026-12-02T12:00:00Z");
        let facts = Facts { upkeep_failure: Some(crate::model::UpkeepFailure::Validation), ..Facts::default() };
        let mut c = connection(SourceKind::O365Activity, serde_json::json!({"auth_id": "***", "subscription": {}}), facts);
        c.upkeep.last_error = Some("Audit.Exchange: its webhook is \"disabled\"".into());
        let page = render(&c, now);
        assert!(page.contains("<h3>Office 365 subscription upkeep</h3>"), "{page}");
        assert!(page.contains("<span class=\"message\">Subscription validation failed</span>"));
        c.config_public = serde_json::json!({"auth_id": "***"});
        assert!(!render(&c, now).contains("subscription upkeep</h3>"), "started by someone else: no upkeep");
    }
}
