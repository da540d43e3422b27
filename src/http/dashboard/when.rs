//! Times as people read them: "4 min ago", "in 3 h", relative to the server's clock,
//! always with the exact RFC 3339 time beside them (the page puts it in a `title`).

use chrono::{DateTime, Utc};

use crate::http::views::rfc3339;

/// A time for the page: its relative form and the exact one; `exact` is empty for a time
/// that never happened (`relative` then says "never").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    pub relative: String,
    pub exact: String,
}

impl Stamp {
    pub fn at(t: DateTime<Utc>, now: DateTime<Utc>) -> Stamp {
        Stamp { relative: relative(t, now), exact: rfc3339(t) }
    }

    pub fn maybe(t: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Stamp {
        t.map_or_else(|| Stamp { relative: "never".to_owned(), exact: String::new() }, |t| Stamp::at(t, now))
    }
}

/// `t` relative to `now`: "just now" within 5 s, then seconds, minutes, hours (up to two
/// days) and days, always rounded down, "… ago" for the past and "in …" for the future.
pub fn relative(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let seconds = (now - t).num_seconds();
    let (span, future) = (seconds.unsigned_abs(), seconds < 0);
    let amount = match span {
        0..5 => return "just now".to_owned(),
        5..60 => format!("{span} s"),
        60..3_600 => format!("{} min", span / 60),
        3_600..172_800 => format!("{} h", span / 3_600),
        // Two days at least, so always plural.
        _ => format!("{} days", span / 86_400),
    };
    if future {
        format!("in {amount}")
    } else {
        format!("{amount} ago")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    #[test]
    fn past_and_future_in_the_largest_whole_unit() {
        let now = DateTime::parse_from_rfc3339("2026-12-02T12:00:00Z").unwrap().with_timezone(&Utc);
        let ago = |s: i64| relative(now - TimeDelta::seconds(s), now);
        let ahead = |s: i64| relative(now + TimeDelta::seconds(s), now);
        assert_eq!(ago(0), "just now");
        assert_eq!(ago(4), "just now");
        assert_eq!(ahead(4), "just now");
        assert_eq!(ago(5), "5 s ago");
        assert_eq!(ago(59), "59 s ago");
        assert_eq!(ago(60), "1 min ago");
        assert_eq!(ago(4 * 60 + 59), "4 min ago");
        assert_eq!(ago(3_599), "59 min ago");
        assert_eq!(ago(3_600), "1 h ago");
        assert_eq!(ago(47 * 3_600 + 3_599), "47 h ago");
        assert_eq!(ago(48 * 3_600), "2 days ago");
        assert_eq!(ago(30 * 86_400), "30 days ago");
        assert_eq!(ahead(3 * 3_600 + 10), "in 3 h");
        assert_eq!(ahead(90), "in 1 min");
        assert_eq!(ahead(3 * 86_400), "in 3 days");
        // Sub-second parts do not round up.
        assert_eq!(relative(now - TimeDelta::milliseconds(59_999), now), "59 s ago");
    }

    #[test]
    fn stamps_carry_the_exact_time() {
        let now = DateTime::parse_from_rfc3339("2026-12-02T12:00:00Z").unwrap().with_timezone(&Utc);
        let t = now - TimeDelta::minutes(4);
        assert_eq!(Stamp::at(t, now), Stamp { relative: "4 min ago".into(), exact: "2026-12-02T11:56:00Z".into() });
        assert_eq!(Stamp::maybe(None, now), Stamp { relative: "never".into(), exact: String::new() });
    }
}
