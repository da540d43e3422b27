//! Why a connection has its status, in plain words, and where to look: the rows of the
//! README's health tables ("Health statuses" and the per-cloud "What each status means"
//! tables), kept here as data so the connection page can show the row that applies.
//!
//! The text lives in two places on purpose: the README is for people reading about
//! pushgate, this table is what the running server shows, and neither should parse the
//! other at run time (a README edit must not change what a server says without a
//! build). A unit test reads the README and fails unless its rows and this table are
//! the same, row for row, so the two cannot drift apart.

use chrono::{DateTime, Utc};

use crate::model::{Connection, SourceKind, Status};

/// Which README table a row comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// "Health statuses": what each status means, whatever the source.
    General,
    Aws,
    Gcp,
    Microsoft,
}

impl Table {
    /// The heading of the table's last column in the README.
    pub fn column(self) -> &'static str {
        match self {
            Table::General => "in plain words",
            Table::Aws => "on AWS, look at",
            Table::Gcp => "on GCP, look at",
            Table::Microsoft => "on Microsoft, look at",
        }
    }

    /// The column heading as the page's heading: "On AWS, look at".
    pub fn heading(self) -> String {
        let column = self.column();
        let mut chars = column.chars();
        chars.next().map(|first| first.to_uppercase().chain(chars).collect()).unwrap_or_default()
    }

    /// The per-cloud table for a source; webhooks and Office 365 have the general one only.
    pub fn of(source: SourceKind) -> Option<Table> {
        match source {
            SourceKind::AwsSns | SourceKind::AwsEventbridge => Some(Table::Aws),
            SourceKind::GcpPubsub => Some(Table::Gcp),
            SourceKind::MsGraph => Some(Table::Microsoft),
            SourceKind::O365Activity | SourceKind::Webhook => None,
        }
    }
}

/// When a row applies, beyond its status and message: the general table explains
/// *Subscription is missing* twice, once for a subscription that was lost and once for
/// one that never came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    Always,
    /// The cloud said the subscription is gone, or it ran past its expiry.
    Lost,
    /// Nothing was ever confirmed.
    NeverConfirmed,
}

/// One row of a README health table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Advice {
    pub table: Table,
    pub status: Status,
    /// The status messages the row is about; none for a status without a message.
    pub messages: &'static [&'static str],
    pub when: When,
    /// The row's last column, as the README writes it (Markdown: `code`, [links](#x)).
    pub text: &'static str,
}

const fn row(table: Table, status: Status, messages: &'static [&'static str], text: &'static str) -> Advice {
    Advice { table, status, messages, when: When::Always, text }
}

const fn row_when(table: Table, status: Status, messages: &'static [&'static str], when: When, text: &'static str) -> Advice {
    Advice { table, status, messages, when, text }
}

use Status::{Connected, Error, Paused, RequiresAction};
use Table::{Aws, Gcp, General, Microsoft};

/// Every row of the README's health tables, in the README's order.
pub const ADVICE: &[Advice] = &[
    row(General, Paused, &[], "an admin paused it; pushes answer 503 so the sender retries later"),
    row(General, Error, &["Unable to read API Endpoint"], "pushgate keeps this subscription itself (Graph [upkeep](#graph-subscription-upkeep), O365 [upkeep](#office-365-subscription-upkeep)) and its calls are refused for the credentials: the token request refused (`invalid_client`, `unauthorized_client`) or the API answered 401/403 (a permission or its admin consent missing); until a call succeeds"),
    row(General, Error, &["Subscription validation failed"], "the same kind of connection, and the vendor refused the subscription because it could not validate the push URL (Graph 400 `ValidationError`, O365 `AF20021`), or the subscription it holds no longer matches the connection (another notification URL, resource, change type or client state, or gone; an O365 content type not subscribed, disabled or pushing elsewhere); until the upkeep has made or restarted it"),
    row_when(General, Error, &["Subscription is missing"], When::Lost, "the cloud said the subscription is gone (SNS unsubscribe, Graph removal or expiry)"),
    row(General, Error, &["Signature verification failing"], "the last 5 pushes were all refused as unauthenticated or malformed; one verified push clears it"),
    row(General, RequiresAction, &["Reauthorization required"], "Graph asked for reauthorization and it has not been renewed"),
    row(General, RequiresAction, &["Awaiting subscription"], "nothing authentic has arrived yet, and the connection was created, or last resumed, less than `grace_seconds` + 15 min ago"),
    row_when(General, Error, &["Subscription is missing"], When::NeverConfirmed, "still nothing authentic `grace_seconds` + 15 min after its creation or last resume"),
    row(General, Error, &["Subscription heartbeat is missing"], "a heartbeat is expected, none ever came, and the first authentic push is older than interval + grace"),
    row(General, Error, &["Last heartbeat is too old"], "the last heartbeat is older than 2 × interval + grace: two heartbeats in a row were lost"),
    row(General, Connected, &[], "all is well"),
    row(Aws, RequiresAction, &["Awaiting subscription"], "SNS: the subscription is pending (or waits for `POST …/confirm` with `auto_confirm: false`); API destination: nothing arrived yet"),
    row(Aws, Error, &["Subscription is missing"], "SNS: unsubscribed (`UnsubscribeConfirmation`), or never confirmed within `grace_seconds` + 15 min: check the subscription and the topic's `topic_arns` entry"),
    row(Aws, Error, &["Signature verification failing"], "the last 5 pushes were refused: a topic not in `topic_arns`, a wrong API key, raw message delivery turned on"),
    row(Aws, Error, &["Subscription heartbeat is missing"], "the schedule rule (or canary) never delivered: check the rule's target and the topic policy"),
    row(Aws, Error, &["Last heartbeat is too old"], "the schedule rule, the topic or the subscription stopped delivering (two heartbeats lost)"),
    row(Aws, Connected, &[], "findings and heartbeats flow"),
    row(Gcp, RequiresAction, &["Awaiting subscription"], "no authenticated push yet: the subscription, its push endpoint and its push auth"),
    row(Gcp, Error, &["Subscription is missing"], "the check found the subscription deleted or pushing elsewhere, or nothing authentic arrived within `grace_seconds` + 15 min"),
    row(Gcp, Error, &["Signature verification failing"], "the last 5 pushes were refused: the push auth service account, the audience, an unauthenticated subscription"),
    row(Gcp, Error, &["Subscription heartbeat is missing", "Last heartbeat is too old"], "the Cloud Scheduler job (or canary), the topic, the subscription's retries"),
    row(Gcp, Connected, &[], "findings and heartbeats flow"),
    row(Microsoft, Error, &["Unable to read API Endpoint"], "(upkeep only) the app registration: its client secret (expired, rotated), the application permission for the resource and its admin consent; `subscription.upkeep.last_error` has the identity platform's or Graph's code and message"),
    row(Microsoft, Error, &["Subscription validation failed"], "(upkeep only) whether Graph reaches `PUSHGATE_PUBLIC_URL` and gets the validation token back unchanged (a proxy, a firewall, TLS), or who changed or deleted the subscription on Graph's side; `last_error` says which"),
    row(Microsoft, RequiresAction, &["Awaiting subscription"], "no validation yet: create the subscription, or check the app's permission and the push URL"),
    row(Microsoft, RequiresAction, &["Reauthorization required"], "Graph asked for reauthorization: upkeep does it, or PATCH the subscription"),
    row(Microsoft, Error, &["Subscription is missing"], "removed (`subscriptionRemoved`), past `expires_at`, or never validated within `grace_seconds` + 15 min"),
    row(Microsoft, Error, &["Signature verification failing"], "the last 5 pushes were refused: a wrong `client_state`, a tenant outside `tenant_ids`, or `app_ids` missing for rich notifications"),
    row(Microsoft, Connected, &[], "validated, not expired"),
];

/// What the page says about a connection's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// What the status means (the general table).
    pub meaning: Vec<&'static str>,
    /// Where to look on the sender's side (the source's cloud table), with that table.
    pub look_at: Option<(Table, Vec<&'static str>)>,
}

/// The rows that explain `status` / `message` for connection `c` at `now`.
pub fn explain(c: &Connection, status: Status, message: Option<&str>, now: DateTime<Utc>) -> Explanation {
    let lost = c.facts.subscription_lost() || c.facts.expires_at.is_some_and(|at| at <= now);
    let applies = |a: &Advice, table: Table| {
        a.table == table
            && a.status == status
            && match message {
                None => a.messages.is_empty(),
                Some(m) => a.messages.contains(&m),
            }
            && match a.when {
                When::Always => true,
                When::Lost => lost,
                When::NeverConfirmed => !lost && c.facts.confirmed_at.is_none(),
            }
    };
    let texts = |table: Table| ADVICE.iter().filter(|a| applies(a, table)).map(|a| a.text).collect::<Vec<_>>();
    let look_at = Table::of(c.source).map(|table| (table, texts(table))).filter(|(_, rows)| !rows.is_empty());
    Explanation { meaning: texts(General), look_at }
}

/// A piece of a row's text as the page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Span {
    Text(String),
    Code(String),
}

/// The README's inline Markdown as plain pieces: `code` spans become [`Span::Code`], a
/// link keeps only its text (its target is a README anchor, not a page). The page
/// escapes every piece.
pub fn spans(text: &str) -> Vec<Span> {
    let mut out = Vec::new();
    for (i, part) in text.split('`').enumerate() {
        if part.is_empty() {
            continue;
        }
        out.push(if i % 2 == 1 { Span::Code(part.to_owned()) } else { Span::Text(without_links(part)) });
    }
    out
}

/// `[text](target)` → `text`.
fn without_links(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        let Some((label, tail)) = after.split_once("](") else { break };
        let Some(close) = tail.find(')') else { break };
        out.push_str(&rest[..open]);
        out.push_str(label);
        rest = &tail[close + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health;
    use crate::model::Facts;

    const README: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"));

    /// The rows of the README table whose last column is headed `column`, as
    /// (status, messages, text).
    fn readme_rows(column: &str) -> Vec<(String, Vec<String>, String)> {
        let header = format!("| status | message | {column} |");
        let mut lines = README.lines().skip_while(|l| *l != header);
        assert!(lines.next().is_some(), "the README has no table headed {header}");
        lines
            .skip(1)
            .take_while(|l| l.starts_with('|'))
            .map(|line| {
                let cells: Vec<&str> = line.trim().trim_matches('|').split('|').map(str::trim).collect();
                assert_eq!(cells.len(), 3, "a row of three cells: {line}");
                let messages = if cells[1] == "–" { Vec::new() } else { cells[1].split(" / ").map(str::to_owned).collect() };
                (cells[0].trim_matches('`').to_owned(), messages, cells[2].to_owned())
            })
            .collect()
    }

    #[test]
    fn the_table_is_the_readmes_row_for_row() {
        for table in [General, Aws, Gcp, Microsoft] {
            let ours: Vec<(String, Vec<String>, String)> = ADVICE
                .iter()
                .filter(|a| a.table == table)
                .map(|a| (a.status.as_str().to_owned(), a.messages.iter().map(|m| m.to_string()).collect(), a.text.to_owned()))
                .collect();
            assert_eq!(ours, readme_rows(table.column()), "the README's table \"{}\" and ADVICE differ", table.column());
        }
    }

    #[test]
    fn every_status_and_message_has_a_meaning() {
        let messages = [
            health::MSG_UNABLE_TO_READ_API,
            health::MSG_VALIDATION_FAILED,
            health::MSG_SUBSCRIPTION_MISSING,
            health::MSG_SIGNATURE_FAILING,
            health::MSG_REAUTHORIZATION,
            health::MSG_AWAITING,
            health::MSG_HEARTBEAT_MISSING,
            health::MSG_HEARTBEAT_TOO_OLD,
        ];
        for m in messages {
            assert!(ADVICE.iter().any(|a| a.table == General && a.messages.contains(&m)), "no meaning for {m}");
        }
        for s in [Paused, Connected] {
            assert!(ADVICE.iter().any(|a| a.table == General && a.status == s && a.messages.is_empty()));
        }
    }

    fn connection(source: SourceKind, facts: Facts) -> Connection {
        let at = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        Connection {
            id: uuid::Uuid::nil(),
            tenant_id: "acme".into(),
            name: "feed".into(),
            source,
            stream: "s".into(),
            heartbeat_interval_seconds: Some(300),
            grace_seconds: 60,
            config_public: serde_json::json!({}),
            config_sealed: String::new(),
            created_at: at,
            activated_at: at,
            updated_at: at,
            facts,
            counters: Default::default(),
            canary: Default::default(),
            upkeep: Default::default(),
            fetch: Default::default(),
            catch_up: Default::default(),
        }
    }

    #[test]
    fn the_sources_cloud_says_where_to_look_and_the_general_table_what_it_means() {
        let now = DateTime::from_timestamp(1_900_000_000, 0).unwrap();
        let sns = connection(SourceKind::AwsSns, Facts::default());
        let why = explain(&sns, Error, Some(health::MSG_SUBSCRIPTION_MISSING), now);
        assert_eq!(why.meaning, ["still nothing authentic `grace_seconds` + 15 min after its creation or last resume"]);
        let (table, rows) = why.look_at.unwrap();
        assert_eq!(table, Aws);
        assert!(rows[0].starts_with("SNS: unsubscribed"), "{rows:?}");

        let lost = Facts { confirmed_at: Some(now), subscription_lost_at: Some(now), ..Facts::default() };
        let why = explain(&connection(SourceKind::GcpPubsub, lost), Error, Some(health::MSG_SUBSCRIPTION_MISSING), now);
        assert_eq!(why.meaning, ["the cloud said the subscription is gone (SNS unsubscribe, Graph removal or expiry)"]);
        assert!(why.look_at.unwrap().1[0].starts_with("the check found the subscription deleted"));

        let gcp = connection(SourceKind::GcpPubsub, Facts::default());
        let why = explain(&gcp, Error, Some(health::MSG_HEARTBEAT_TOO_OLD), now);
        assert_eq!(why.look_at.unwrap().1, ["the Cloud Scheduler job (or canary), the topic, the subscription's retries"]);

        // A webhook has no cloud table; a paused connection no cloud row.
        let hook = connection(SourceKind::Webhook, Facts::default());
        assert_eq!(explain(&hook, Connected, None, now), Explanation { meaning: vec!["all is well"], look_at: None });
        let why = explain(&sns, Paused, None, now);
        assert_eq!((why.meaning.len(), why.look_at), (1, None));
    }

    #[test]
    fn markdown_becomes_text_and_code() {
        assert_eq!(
            spans("Graph [upkeep](#graph-subscription-upkeep) and `invalid_client`, then [a](b) c"),
            [Span::Text("Graph upkeep and ".into()), Span::Code("invalid_client".into()), Span::Text(", then a c".into())]
        );
        assert_eq!(spans("no [link here"), [Span::Text("no [link here".into())]);
    }
}
