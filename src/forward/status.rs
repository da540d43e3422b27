//! A destination's status (INTERFACE.md section 7), a pure function of what the store
//! holds and the time, like connection health: every read and every metric use it.

use chrono::{DateTime, Duration, Utc};

use crate::model::{Backlog, Destination};

/// Undelivered events older than this make a destination `lagging`.
pub const LAGGING_AFTER_SECONDS: i64 = 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DestinationStatus {
    Ok,
    Lagging,
    Failing,
    Paused,
}

impl DestinationStatus {
    pub const ALL: [DestinationStatus; 4] =
        [DestinationStatus::Ok, DestinationStatus::Lagging, DestinationStatus::Failing, DestinationStatus::Paused];

    pub fn as_str(self) -> &'static str {
        match self {
            DestinationStatus::Ok => "ok",
            DestinationStatus::Lagging => "lagging",
            DestinationStatus::Failing => "failing",
            DestinationStatus::Paused => "paused",
        }
    }

    /// What the status asks of an operator, for the dashboard.
    pub fn meaning(self) -> &'static str {
        match self {
            DestinationStatus::Ok => "delivering",
            DestinationStatus::Lagging => "delivering, but the oldest undelivered event is over a minute old",
            DestinationStatus::Failing => "the last attempt failed; pushgate keeps retrying",
            DestinationStatus::Paused => "paused by an admin; events wait for it",
        }
    }
}

/// Paused, else failing (the last attempt failed), else lagging (the oldest undelivered
/// event arrived more than a minute ago), else ok.
pub fn evaluate(d: &Destination, backlog: &Backlog, now: DateTime<Utc>) -> DestinationStatus {
    if d.paused {
        DestinationStatus::Paused
    } else if d.failing {
        DestinationStatus::Failing
    } else if backlog.oldest_received_at.is_some_and(|t| now - t > Duration::seconds(LAGGING_AFTER_SECONDS)) {
        DestinationStatus::Lagging
    } else {
        DestinationStatus::Ok
    }
}

/// Seconds since the oldest undelivered event arrived (0 with none).
pub fn lag_seconds(backlog: &Backlog, now: DateTime<Utc>) -> f64 {
    backlog.oldest_received_at.map_or(0.0, |t| ((now - t).num_milliseconds() as f64 / 1000.0).max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DestinationCounters, DestinationKind, EventFilter, Position, StartFrom};

    fn destination() -> Destination {
        let at = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        Destination {
            id: uuid::Uuid::nil(),
            name: "bus".into(),
            kind: DestinationKind::Nats,
            filter: EventFilter::default(),
            start_from: StartFrom::Earliest,
            config_public: serde_json::json!({}),
            config_sealed: String::new(),
            paused: false,
            created_at: at,
            updated_at: at,
            position: Position::START,
            planned: None,
            lease: None,
            failing: false,
            last_delivered_at: None,
            last_error: None,
            counters: DestinationCounters::default(),
        }
    }

    #[test]
    fn paused_then_failing_then_lagging_then_ok() {
        let now = DateTime::from_timestamp(1_800_000_100, 0).unwrap();
        let fresh = Backlog { events: 3, oldest_received_at: Some(now - Duration::seconds(59)) };
        let old = Backlog { events: 3, oldest_received_at: Some(now - Duration::seconds(61)) };
        let mut d = destination();
        assert_eq!(evaluate(&d, &Backlog::default(), now), DestinationStatus::Ok);
        assert_eq!(evaluate(&d, &fresh, now), DestinationStatus::Ok);
        assert_eq!(evaluate(&d, &old, now), DestinationStatus::Lagging);
        d.failing = true;
        assert_eq!(evaluate(&d, &old, now), DestinationStatus::Failing);
        d.paused = true;
        assert_eq!(evaluate(&d, &old, now), DestinationStatus::Paused);
        assert_eq!(lag_seconds(&old, now), 61.0);
        assert_eq!(lag_seconds(&Backlog::default(), now), 0.0);
    }
}
