//! The arrival chart of the connection page: events and heartbeats per hour over the
//! last 24 hours, as two series of bars in an inline SVG.

use chrono::TimeDelta;

use crate::model::HourlyArrivals;

/// Hours the chart covers, the current (unfinished) hour last.
pub const HOURS: u32 = 24;

/// One hour's column is this many user units wide; its bars share it.
const COLUMN: f64 = 40.0;
/// The tallest bar.
pub const PLOT_HEIGHT: f64 = 100.0;
/// Where the bars stand (the top margin holds the scale).
pub const BASELINE: f64 = 112.0;

pub const EVENTS_COLOUR: &str = "#2f6fb3";
pub const HEARTBEATS_COLOUR: &str = "#8e5bb5";

#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub x: String,
    pub y: String,
    pub width: String,
    pub height: String,
    pub colour: &'static str,
    /// The SVG `<title>`: the hour in UTC and the count.
    pub title: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HourLabel {
    pub x: String,
    pub label: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    pub bars: Vec<Bar>,
    pub labels: Vec<HourLabel>,
    /// The count the tallest bar stands for (at least 1).
    pub scale: i64,
    pub events: i64,
    pub heartbeats: i64,
    /// A sentence for the SVG's `<desc>`.
    pub summary: String,
}

fn count(n: i64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Lays out the counts: per hour an events bar and a heartbeats bar side by side, both
/// scaled to the largest count of either; a label every 3 hours.
pub fn layout(arrivals: &HourlyArrivals) -> Chart {
    let scale = arrivals.events.iter().chain(&arrivals.heartbeats).copied().max().unwrap_or(0).max(1);
    let mut bars = Vec::new();
    let mut labels = Vec::new();
    for (hour, (&events, &heartbeats)) in arrivals.events.iter().zip(&arrivals.heartbeats).enumerate() {
        let start = arrivals.from + TimeDelta::hours(hour as i64);
        let span = format!("{}–{} UTC", start.format("%H:%M"), (start + TimeDelta::hours(1)).format("%H:%M"));
        let left = hour as f64 * COLUMN;
        for (offset, n, colour, what) in [
            (4.0, events, EVENTS_COLOUR, count(events, "event", "events")),
            (21.0, heartbeats, HEARTBEATS_COLOUR, count(heartbeats, "heartbeat", "heartbeats")),
        ] {
            let height = n as f64 / scale as f64 * PLOT_HEIGHT;
            bars.push(Bar {
                x: format!("{:.2}", left + offset),
                y: format!("{:.2}", BASELINE - height),
                width: "15".to_owned(),
                height: format!("{height:.2}"),
                colour,
                title: format!("{span}: {what}"),
            });
        }
        if hour % 3 == 0 {
            labels.push(HourLabel { x: format!("{left:.2}"), label: start.format("%H:%M").to_string() });
        }
    }
    let (events, heartbeats) = (arrivals.events.iter().sum(), arrivals.heartbeats.iter().sum());
    let summary = format!(
        "{} and {} arrived in the last {} hours (from {} UTC); at most {} in one hour.",
        count(events, "event", "events"),
        count(heartbeats, "heartbeat", "heartbeats"),
        arrivals.events.len(),
        arrivals.from.format("%Y-%m-%d %H:%M"),
        scale
    );
    Chart { bars, labels, scale, events, heartbeats, summary }
}

/// The chart's width in user units.
pub fn width() -> String {
    format!("{:.0}", COLUMN * f64::from(HOURS))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};

    #[test]
    fn two_bars_per_hour_scaled_to_the_busiest_hour() {
        let from = DateTime::parse_from_rfc3339("2026-12-01T13:00:00Z").unwrap().with_timezone(&Utc);
        let mut events = vec![0; 24];
        let mut heartbeats = vec![0; 24];
        events[0] = 4;
        events[23] = 1;
        heartbeats[0] = 2;
        let chart = layout(&HourlyArrivals { from, events, heartbeats });
        assert_eq!(chart.bars.len(), 48);
        assert_eq!((chart.scale, chart.events, chart.heartbeats), (4, 5, 2));
        let (tallest, half) = (&chart.bars[0], &chart.bars[1]);
        assert_eq!((tallest.x.as_str(), tallest.y.as_str(), tallest.height.as_str()), ("4.00", "12.00", "100.00"));
        assert_eq!(tallest.title, "13:00–14:00 UTC: 4 events");
        assert_eq!((half.x.as_str(), half.height.as_str(), half.colour), ("21.00", "50.00", HEARTBEATS_COLOUR));
        assert_eq!(half.title, "13:00–14:00 UTC: 2 heartbeats");
        assert_eq!(chart.bars[46].title, "12:00–13:00 UTC: 1 event");
        assert_eq!(chart.bars[47].height, "0.00");
        assert_eq!(chart.labels.len(), 8);
        assert_eq!((chart.labels[1].x.as_str(), chart.labels[1].label.as_str()), ("120.00", "16:00"));
        assert_eq!(
            chart.summary,
            "5 events and 2 heartbeats arrived in the last 24 hours (from 2026-12-01 13:00 UTC); at most 4 in one hour."
        );
    }

    #[test]
    fn an_empty_day_still_has_a_scale() {
        let from = DateTime::parse_from_rfc3339("2026-12-01T13:00:00Z").unwrap().with_timezone(&Utc);
        let chart = layout(&HourlyArrivals { from, events: vec![0; 24], heartbeats: vec![0; 24] });
        assert_eq!(chart.scale, 1);
        assert!(chart.bars.iter().all(|b| b.height == "0.00"));
        assert!(chart.summary.starts_with("0 events and 0 heartbeats"));
    }
}
