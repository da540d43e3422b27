//! How long events are kept: once delivered, and at most while a destination holds them back.

use std::time::Duration;

use super::layers::Layers;

/// Kept in hours, as configured (fractions allowed), so `check-config` prints them back
/// exactly.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Retention {
    /// Events older than this many hours are deleted once delivered (0: kept forever).
    pub(super) event_hours: f64,
    /// How many hours longer a paused or failing destination may hold events back.
    pub(super) max_backlog_hours: f64,
}

impl Retention {
    pub(super) fn read(layers: &mut Layers) -> Retention {
        Retention { event_hours: layers.hours("event_retention_hours"), max_backlog_hours: layers.hours("forward_max_backlog_hours") }
    }

    /// The retention of delivered events: `None` keeps them forever.
    pub fn events(&self) -> Option<Duration> {
        (self.event_hours > 0.0).then(|| Duration::from_secs_f64(self.event_hours * 3600.0))
    }

    pub fn max_backlog(&self) -> Duration {
        Duration::from_secs_f64(self.max_backlog_hours * 3600.0)
    }
}
