//! The status timeline of the connection page: the status history cut into segments of
//! one status over a window (the last 7 days), and their place in an inline SVG.
//!
//! A segment runs from one transition to the next; what held before the first
//! transition inside the window is the status the last earlier transition set. Graph
//! `missed` reports are in the history too but change no status: they are marks on the
//! timeline, not segment edges.

use chrono::{DateTime, DurationRound, TimeDelta, Utc};

use crate::health::MSG_NOTIFICATIONS_MISSED;
use crate::http::views::rfc3339;
use crate::model::{Status, StatusChange};

/// How far back the timeline reaches.
pub const WINDOW: TimeDelta = TimeDelta::days(7);

/// The SVG's user units: the window is this wide.
const WIDTH: f64 = 1000.0;
/// Half a day label's width, in user units.
const TICK_ROOM: f64 = 30.0;

/// One stretch of time with one status (`None`: before the monitor's first evaluation).
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub status: Option<Status>,
    pub message: Option<String>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

fn is_missed_report(h: &StatusChange) -> bool {
    h.old_status == Some(h.new_status) && h.message.as_deref() == Some(MSG_NOTIFICATIONS_MISSED)
}

/// The segments of `history` (oldest first) between `from` and `to`, for a connection
/// created at `created_at` (nothing is shown before it). Empty segments are left out.
pub fn segments(history: &[StatusChange], created_at: DateTime<Utc>, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Segment> {
    let start = from.max(created_at);
    if start >= to {
        return Vec::new();
    }
    let mut transitions: Vec<&StatusChange> = history.iter().filter(|h| !is_missed_report(h)).collect();
    // Replicas write with their own clocks: order by time, keeping the written order on ties.
    transitions.sort_by_key(|h| h.at);
    let (before, inside): (Vec<&StatusChange>, Vec<&StatusChange>) = transitions.into_iter().partition(|h| h.at <= start);
    let (mut status, mut message) = match (before.last(), inside.first()) {
        (Some(last), _) => (Some(last.new_status), last.message.clone()),
        // Nothing earlier: the first transition says what it left (not its message).
        (None, Some(first)) => (first.old_status, None),
        (None, None) => (None, None),
    };
    let mut out = Vec::new();
    let mut since = start;
    for h in inside.into_iter().take_while(|h| h.at < to) {
        if h.at > since {
            out.push(Segment { status, message: message.clone(), from: since, to: h.at });
        }
        (status, message, since) = (Some(h.new_status), h.message.clone(), h.at);
    }
    out.push(Segment { status, message, from: since, to });
    out
}

/// The colour a status has everywhere on the dashboard (`style.html` uses the same).
pub fn colour(status: Option<Status>) -> &'static str {
    match status {
        Some(Status::Connected) => "#1f8a3b",
        Some(Status::RequiresAction) => "#f2a900",
        Some(Status::Paused) => "#8a9099",
        Some(Status::Error) => "#c62828",
        None => "#d0d4da",
    }
}

/// What a segment is called in titles and the legend.
pub fn label(status: Option<Status>) -> &'static str {
    status.map_or("not yet checked", Status::as_str)
}

/// A segment as the SVG draws it.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub x: String,
    pub width: String,
    pub colour: &'static str,
    /// The SVG `<title>`: status, message, from–to in UTC.
    pub title: String,
}

/// A mark on the time axis.
#[derive(Debug, Clone, PartialEq)]
pub struct Tick {
    pub x: String,
    pub label: String,
}

/// A Graph `missed` report inside the window.
#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    pub x: String,
    pub title: String,
}

/// A legend entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    pub label: &'static str,
    pub colour: &'static str,
}

/// Everything the template needs to draw the timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    pub bars: Vec<Bar>,
    /// The connection's creation, when it falls inside the window (nothing is drawn before it).
    pub created: Option<Mark>,
    pub ticks: Vec<Tick>,
    pub marks: Vec<Mark>,
    pub legend: Vec<Key>,
    /// A sentence for the SVG's `<desc>`: what the picture shows, for those who cannot see it.
    pub summary: String,
}

fn x_of(t: DateTime<Utc>, from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    let span = (to - from).num_milliseconds().max(1) as f64;
    ((t - from).num_milliseconds() as f64 / span * WIDTH).clamp(0.0, WIDTH)
}

fn units(v: f64) -> String {
    format!("{v:.2}")
}

/// Lays out `history` over `from`..`to`: one bar per segment, a tick at each UTC
/// midnight, a mark per `missed` report, a legend of the four statuses (and "not yet
/// checked" when it appears).
pub fn layout(history: &[StatusChange], created_at: DateTime<Utc>, from: DateTime<Utc>, to: DateTime<Utc>) -> Timeline {
    let segments = segments(history, created_at, from, to);
    let bars = segments
        .iter()
        .map(|s| {
            let (x0, x1) = (x_of(s.from, from, to), x_of(s.to, from, to));
            let message = s.message.as_deref().map(|m| format!(": {m}")).unwrap_or_default();
            Bar {
                x: units(x0),
                // At least a hair wide, so a short state stays visible and hoverable.
                width: units((x1 - x0).max(1.0)),
                colour: colour(s.status),
                title: format!("{}{message}, {} – {}", label(s.status), rfc3339(s.from), rfc3339(s.to)),
            }
        })
        .collect();
    let mut ticks = Vec::new();
    if let Ok(midnight) = from.duration_trunc(TimeDelta::days(1)) {
        let mut day = midnight + TimeDelta::days(1);
        while day < to {
            let x = x_of(day, from, to);
            // A label centred on its tick needs room: none half cut at the left edge or
            // over the "now" at the right.
            if (TICK_ROOM..=WIDTH - 1.5 * TICK_ROOM).contains(&x) {
                ticks.push(Tick { x: units(x), label: day.format("%a %-d %b").to_string() });
            }
            day += TimeDelta::days(1);
        }
    }
    let marks = history
        .iter()
        .filter(|h| is_missed_report(h) && h.at >= from && h.at <= to)
        .map(|h| Mark { x: units(x_of(h.at, from, to)), title: format!("{MSG_NOTIFICATIONS_MISSED}, {}", rfc3339(h.at)) })
        .collect();
    let mut legend: Vec<Key> = Status::ALL.iter().map(|s| Key { label: s.as_str(), colour: colour(Some(*s)) }).collect();
    if segments.iter().any(|s| s.status.is_none()) {
        legend.push(Key { label: label(None), colour: colour(None) });
    }
    let changes = segments.len().saturating_sub(1);
    let summary = match segments.last() {
        None => "The connection did not exist yet.".to_owned(),
        Some(last) => format!(
            "{changes} status change{} from {} to {}; {} now.",
            if changes == 1 { "" } else { "s" },
            rfc3339(from),
            rfc3339(to),
            label(last.status)
        ),
    };
    let created = (created_at > from && created_at < to)
        .then(|| Mark { x: units(x_of(created_at, from, to)), title: format!("Created {}", rfc3339(created_at)) });
    Timeline { bars, created, ticks, marks, legend, summary }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(hours: i64) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-01T00:00:00Z").unwrap().with_timezone(&Utc) + TimeDelta::hours(hours)
    }

    fn change(at: i64, old: Option<Status>, new: Status, message: Option<&str>) -> StatusChange {
        StatusChange { at: t(at), old_status: old, new_status: new, message: message.map(str::to_owned) }
    }

    fn seg(status: Option<Status>, message: Option<&str>, from: i64, to: i64) -> Segment {
        Segment { status, message: message.map(str::to_owned), from: t(from), to: t(to) }
    }

    use Status::{Connected, Error, RequiresAction};

    #[test]
    fn the_status_before_the_window_comes_from_the_last_earlier_transition() {
        let history = [
            change(-300, None, RequiresAction, Some("Awaiting subscription")),
            change(-200, Some(RequiresAction), Connected, None),
            change(10, Some(Connected), Error, Some("Last heartbeat is too old")),
            change(20, Some(Error), Connected, None),
        ];
        assert_eq!(
            segments(&history, t(-400), t(0), t(30)),
            [
                seg(Some(Connected), None, 0, 10),
                seg(Some(Error), Some("Last heartbeat is too old"), 10, 20),
                seg(Some(Connected), None, 20, 30)
            ]
        );
        // Nothing inside the window: one segment of the last status.
        assert_eq!(segments(&history, t(-400), t(40), t(50)), [seg(Some(Connected), None, 40, 50)]);
        // A transition exactly at the window's start holds from the start.
        assert_eq!(segments(&history, t(-400), t(10), t(15)), [seg(Some(Error), Some("Last heartbeat is too old"), 10, 15)]);
        // Transitions after the window's end are not shown.
        assert_eq!(segments(&history, t(-400), t(0), t(5)), [seg(Some(Connected), None, 0, 5)]);
    }

    #[test]
    fn a_young_connection_starts_at_its_creation_unchecked_until_the_first_evaluation() {
        let history = [change(2, None, RequiresAction, Some("Awaiting subscription")), change(5, Some(RequiresAction), Connected, None)];
        assert_eq!(
            segments(&history, t(1), t(-100), t(8)),
            [seg(None, None, 1, 2), seg(Some(RequiresAction), Some("Awaiting subscription"), 2, 5), seg(Some(Connected), None, 5, 8)]
        );
        // No history at all: unknown since creation; created after the window: nothing.
        assert_eq!(segments(&[], t(1), t(0), t(8)), [seg(None, None, 1, 8)]);
        assert_eq!(segments(&[], t(9), t(0), t(8)), []);
        // A pruned history whose oldest entry is inside the window still knows what it left.
        let pruned = [change(4, Some(Error), Connected, None)];
        assert_eq!(segments(&pruned, t(-500), t(0), t(8)), [seg(Some(Error), None, 0, 4), seg(Some(Connected), None, 4, 8)]);
    }

    #[test]
    fn missed_reports_are_marks_not_edges_and_time_order_wins() {
        let history = [
            change(1, None, Connected, None),
            change(6, Some(Connected), Error, Some("Subscription is missing")),
            // Written later by a replica whose clock is behind.
            change(3, Some(Connected), Connected, Some(MSG_NOTIFICATIONS_MISSED)),
            change(4, Some(Connected), Connected, Some("a message change")),
        ];
        assert_eq!(
            segments(&history, t(0), t(0), t(8)),
            [
                seg(None, None, 0, 1),
                seg(Some(Connected), None, 1, 4),
                seg(Some(Connected), Some("a message change"), 4, 6),
                seg(Some(Error), Some("Subscription is missing"), 6, 8)
            ]
        );
        let drawn = layout(&history, t(0), t(0), t(8));
        assert_eq!(drawn.marks, [Mark { x: "375.00".into(), title: "Notifications were missed, 2026-12-01T03:00:00Z".into() }]);
        assert_eq!(drawn.bars.len(), 4);
    }

    #[test]
    fn bars_fill_the_width_with_titles_ticks_at_midnight_and_a_legend() {
        let history = [change(-13, None, Connected, None), change(36, Some(Connected), Error, Some("Last heartbeat is too old"))];
        let (from, to) = (t(-12), t(48));
        let drawn = layout(&history, t(-20), from, to);
        assert_eq!(drawn.bars.len(), 2);
        assert_eq!((drawn.bars[0].x.as_str(), drawn.bars[0].width.as_str()), ("0.00", "800.00"));
        assert_eq!((drawn.bars[1].x.as_str(), drawn.bars[1].width.as_str()), ("800.00", "200.00"));
        assert_eq!(drawn.bars[1].colour, "#c62828");
        assert_eq!(drawn.bars[1].title, "error: Last heartbeat is too old, 2026-12-02T12:00:00Z – 2026-12-03T00:00:00Z");
        assert_eq!(drawn.bars[0].title, "connected, 2026-11-30T12:00:00Z – 2026-12-02T12:00:00Z");
        assert_eq!(
            drawn.ticks,
            [Tick { x: "200.00".into(), label: "Tue 1 Dec".into() }, Tick { x: "600.00".into(), label: "Wed 2 Dec".into() }]
        );
        assert_eq!(drawn.legend.iter().map(|k| k.label).collect::<Vec<_>>(), ["connected", "requires_action", "paused", "error"]);
        assert_eq!(drawn.summary, "1 status change from 2026-11-30T12:00:00Z to 2026-12-03T00:00:00Z; error now.");
        assert_eq!(drawn.created, None, "created before the window");
        let young = layout(&[], t(0), from, to);
        assert_eq!(young.legend.last().unwrap().label, "not yet checked");
        assert_eq!(young.created, Some(Mark { x: "200.00".into(), title: "Created 2026-12-01T00:00:00Z".into() }));
    }
}
