//! What a heartbeat proves (INTERFACE.md section 3): that its feed was alive when its
//! sender signed it, not when it arrived. A sender names the heartbeat's id and signed
//! time ([`HeartbeatProof`]); [`judge`] decides whether it counts, for the push path and
//! for `pushgate verify` alike, so the two can never disagree.

use chrono::{DateTime, Duration, SubsecRound as _, Utc};

/// The reason code of a heartbeat that proves nothing: no id or time, or too old.
pub const NOT_FRESH: &str = "heartbeat_not_fresh";

/// A heartbeat as its sender named it: the id it is deduplicated on and the time the
/// sender signed or carried. Either is `None` when the push did not carry it (or carried
/// a time that is not a real instant).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatProof {
    pub id: Option<String>,
    pub signed_at: Option<DateTime<Utc>>,
}

impl HeartbeatProof {
    pub fn new(id: impl Into<String>, signed_at: DateTime<Utc>) -> HeartbeatProof {
        HeartbeatProof { id: Some(id.into()), signed_at: Some(signed_at) }
    }
}

/// A heartbeat that counts (once per id): `signed_at` is what `last_heartbeat_at`
/// moves forward to, never later than its arrival.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountedHeartbeat {
    pub id: String,
    pub signed_at: DateTime<Utc>,
}

/// How old a heartbeat may be at its arrival and still count: `interval + grace` when
/// the connection expects heartbeats, no bound otherwise.
pub fn freshness_window(interval_seconds: Option<i64>, grace_seconds: i64) -> Option<Duration> {
    interval_seconds.map(|interval| Duration::seconds(interval.saturating_add(grace_seconds.max(0))))
}

/// Whether `proof`, received at `received_at`, counts. `Err` is the rejection detail of a
/// heartbeat that does not ([`NOT_FRESH`]): it has no id or no time, or its time is older
/// than `window` at its arrival. A time later than the arrival is taken as the arrival:
/// a sender's clock cannot make a heartbeat prove more than it was seen.
pub fn judge(proof: &HeartbeatProof, received_at: DateTime<Utc>, window: Option<Duration>) -> Result<CountedHeartbeat, String> {
    let id = match proof.id.as_deref() {
        Some(id) if !id.is_empty() => id.to_owned(),
        _ => return Err("the heartbeat carries no id to deduplicate it on".to_owned()),
    };
    let Some(signed_at) = proof.signed_at else {
        return Err("the heartbeat carries no signed time (RFC 3339)".to_owned());
    };
    // Microseconds, as every stored time (Pub/Sub writes nanoseconds).
    let signed_at = signed_at.trunc_subsecs(6).min(received_at);
    if let Some(window) = window {
        let age = received_at - signed_at;
        if age > window {
            return Err(format!(
                "the heartbeat was signed at {}, {} s before it arrived; it must be at most {} s (interval + grace) old",
                super::rfc3339(signed_at),
                age.num_seconds(),
                window.num_seconds()
            ));
        }
    }
    Ok(CountedHeartbeat { id, signed_at })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    #[test]
    fn a_heartbeat_counts_at_its_signed_time_capped_at_its_arrival() {
        let window = freshness_window(Some(300), 60);
        assert_eq!(judge(&HeartbeatProof::new("a", at(-30)), at(0), window), Ok(CountedHeartbeat { id: "a".into(), signed_at: at(-30) }));
        assert_eq!(judge(&HeartbeatProof::new("a", at(90)), at(0), window).unwrap().signed_at, at(0), "a future time is capped");
        assert_eq!(judge(&HeartbeatProof::new("a", at(-360)), at(0), window).unwrap().signed_at, at(-360), "exactly interval + grace");
    }

    #[test]
    fn an_old_or_unnamed_heartbeat_does_not_count() {
        let window = freshness_window(Some(300), 60);
        assert!(judge(&HeartbeatProof::new("a", at(-361)), at(0), window).unwrap_err().contains("360 s"));
        assert!(judge(&HeartbeatProof { id: None, signed_at: Some(at(0)) }, at(0), window).is_err());
        assert!(judge(&HeartbeatProof { id: Some(String::new()), signed_at: Some(at(0)) }, at(0), window).is_err());
        assert!(judge(&HeartbeatProof { id: Some("a".into()), signed_at: None }, at(0), None).is_err());
        // Without an interval there is no age bound; the other rules stay.
        assert!(judge(&HeartbeatProof::new("a", at(-86_400 * 30)), at(0), None).is_ok());
        assert_eq!(freshness_window(None, 60), None);
    }
}
