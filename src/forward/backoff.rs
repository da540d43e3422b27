//! When to try again after a failed delivery: exponential backoff with full jitter (a
//! random wait between zero and `base * 2^failures`, capped), at least what the
//! destination asked for in `Retry-After` (itself capped at an hour, so a wrong header
//! cannot stall a destination for days). A destination that refuses pushgate's
//! credentials or has no stream for its subject is retried at the capped interval.

use std::time::Duration;

/// The first retry waits up to this long.
pub const BASE: Duration = Duration::from_secs(1);
/// No retry waits longer than this (but for `Retry-After`).
pub const CAP: Duration = Duration::from_secs(300);
/// The longest `Retry-After` honoured.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff { base: BASE, cap: CAP }
    }
}

impl Backoff {
    /// The wait after `failures` consecutive failures (1 for the first), given a random
    /// `fraction` in [0, 1). `capped` failures (credentials, no stream) wait the cap.
    pub fn wait(&self, failures: u32, capped: bool, retry_after: Option<Duration>, fraction: f64) -> Duration {
        let ceiling = if capped {
            self.cap
        } else {
            let exponent = failures.saturating_sub(1).min(30);
            self.base.saturating_mul(1u32 << exponent).min(self.cap)
        };
        // Full jitter; a capped wait keeps at least half of the cap, so "at the capped
        // interval" stays near it.
        let floor = if capped { ceiling / 2 } else { Duration::ZERO };
        let jittered = floor + (ceiling - floor).mul_f64(fraction.clamp(0.0, 1.0));
        jittered.max(retry_after.map_or(Duration::ZERO, |r| r.min(MAX_RETRY_AFTER)))
    }

    /// [`Backoff::wait`] with a fresh random fraction.
    pub fn next(&self, failures: u32, capped: bool, retry_after: Option<Duration>) -> Duration {
        let bytes = crate::crypto::random_bytes::<8>();
        let fraction = (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64;
        self.wait(failures, capped, retry_after, fraction)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_grow_exponentially_up_to_the_cap() {
        let b = Backoff::default();
        assert_eq!(b.wait(1, false, None, 0.999_999), Duration::from_secs(1).mul_f64(0.999_999));
        assert_eq!(b.wait(4, false, None, 0.5), Duration::from_secs(4));
        assert_eq!(b.wait(40, false, None, 0.5), Duration::from_secs(150));
        assert_eq!(b.wait(3, false, None, 0.0), Duration::ZERO, "full jitter can retry at once");
        assert!(b.wait(u32::MAX, false, None, 1.0) <= CAP);
    }

    #[test]
    fn credentials_problems_wait_near_the_cap_and_retry_after_is_honoured() {
        let b = Backoff::default();
        assert_eq!(b.wait(1, true, None, 0.0), Duration::from_secs(150));
        assert_eq!(b.wait(1, true, None, 1.0), CAP);
        assert_eq!(b.wait(1, false, Some(Duration::from_secs(30)), 0.1), Duration::from_secs(30));
        assert_eq!(b.wait(1, false, Some(Duration::from_secs(86_400)), 0.1), MAX_RETRY_AFTER);
        let random = b.next(2, false, None);
        assert!(random <= Duration::from_secs(2));
    }
}
