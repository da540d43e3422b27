//! Health evaluation: the rows of INTERFACE.md section 3 as one pure function.
//!
//! Time is a parameter, so every read of a connection and every test uses the same rules
//! with an explicit `now`.

use chrono::{DateTime, Duration, Utc};

use crate::model::{Connection, Facts, Status, UpkeepFailure};

pub const MSG_UNABLE_TO_READ_API: &str = "Unable to read API Endpoint";
pub const MSG_VALIDATION_FAILED: &str = "Subscription validation failed";
pub const MSG_SUBSCRIPTION_MISSING: &str = "Subscription is missing";
pub const MSG_SIGNATURE_FAILING: &str = "Signature verification failing";
pub const MSG_REAUTHORIZATION: &str = "Reauthorization required";
pub const MSG_AWAITING: &str = "Awaiting subscription";
pub const MSG_HEARTBEAT_MISSING: &str = "Subscription heartbeat is missing";
pub const MSG_HEARTBEAT_TOO_OLD: &str = "Last heartbeat is too old";

/// Not a status: the message of the status-history entry (and alert) for a Graph
/// lifecycle `missed` report, which keeps the connection's status as it is.
pub const MSG_NOTIFICATIONS_MISSED: &str = "Notifications were missed";

/// Consecutive unauthenticated pushes after which a connection is in error.
pub const AUTH_FAILURE_LIMIT: i64 = 5;

/// How long an unconfirmed connection may wait, on top of its grace.
pub const CONFIRMATION_WINDOW: Duration = Duration::minutes(15);

/// What a connection promises: a heartbeat every `interval` (if any), late by up to `grace`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub heartbeat_interval: Option<Duration>,
    pub grace: Duration,
}

impl Policy {
    pub fn from_seconds(interval: Option<i64>, grace: i64) -> Policy {
        Policy { heartbeat_interval: interval.map(Duration::seconds), grace: Duration::seconds(grace) }
    }
}

/// The status and message of a stored connection at `now`, under its own policy: what
/// the API, the dashboard, the metrics and the monitor all show.
pub fn status_of(c: &Connection, now: DateTime<Utc>) -> (Status, Option<&'static str>) {
    evaluate(&c.facts, c.activated_at, Policy::from_seconds(c.heartbeat_interval_seconds, c.grace_seconds), now)
}

/// The status and message at time `now` of a connection that last became active (was
/// created, or resumed after a pause) at `activated_at`. INTERFACE.md's "created ... ago"
/// counts from there: a connection resumed after a long pause waits for its subscription
/// as a new one does, instead of being reported missing at once.
pub fn evaluate(facts: &Facts, activated_at: DateTime<Utc>, policy: Policy, now: DateTime<Utc>) -> (Status, Option<&'static str>) {
    if facts.paused {
        return (Status::Paused, None);
    }
    // Only the subscription upkeep sets a failure class, and its next success clears it:
    // a class means pushgate keeps this subscription and has had no success since.
    match facts.upkeep_failure {
        Some(UpkeepFailure::Credentials) => return (Status::Error, Some(MSG_UNABLE_TO_READ_API)),
        Some(UpkeepFailure::Validation) => return (Status::Error, Some(MSG_VALIDATION_FAILED)),
        None => {}
    }
    let expired = facts.expires_at.is_some_and(|at| at <= now);
    if facts.subscription_lost() || expired {
        return (Status::Error, Some(MSG_SUBSCRIPTION_MISSING));
    }
    if facts.auth_failure_streak >= AUTH_FAILURE_LIMIT {
        return (Status::Error, Some(MSG_SIGNATURE_FAILING));
    }
    if facts.reauthorization_required_at.is_some() {
        return (Status::RequiresAction, Some(MSG_REAUTHORIZATION));
    }
    let Some(confirmed_at) = facts.confirmed_at else {
        // A confirmation waiting for an admin (SNS `auto_confirm: false`) is an action to
        // take, however long it has waited.
        return if facts.confirmation_url.is_some() || now - activated_at <= policy.grace + CONFIRMATION_WINDOW {
            (Status::RequiresAction, Some(MSG_AWAITING))
        } else {
            (Status::Error, Some(MSG_SUBSCRIPTION_MISSING))
        };
    };
    if let Some(interval) = policy.heartbeat_interval {
        match facts.last_heartbeat_at {
            None if now - confirmed_at > interval + policy.grace => {
                return (Status::Error, Some(MSG_HEARTBEAT_MISSING));
            }
            Some(last) if now - last > interval * 2 + policy.grace => {
                return (Status::Error, Some(MSG_HEARTBEAT_TOO_OLD));
            }
            _ => {}
        }
    }
    (Status::Connected, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }

    const POLICY: Policy = Policy { heartbeat_interval: Some(Duration::seconds(300)), grace: Duration::seconds(60) };

    fn confirmed_at(at: i64) -> Facts {
        Facts { confirmed_at: Some(t(at)), ..Facts::default() }
    }

    #[test]
    fn paused_wins_over_everything() {
        let facts = Facts { paused: true, auth_failure_streak: 9, ..Facts::default() };
        assert_eq!(evaluate(&facts, t(0), POLICY, t(99_999)), (Status::Paused, None));
    }

    #[test]
    fn unconfirmed_waits_grace_plus_fifteen_minutes_then_errors() {
        let limit = 60 + 15 * 60;
        let f = Facts::default();
        assert_eq!(evaluate(&f, t(0), POLICY, t(limit)), (Status::RequiresAction, Some(MSG_AWAITING)));
        assert_eq!(evaluate(&f, t(0), POLICY, t(limit + 1)), (Status::Error, Some(MSG_SUBSCRIPTION_MISSING)));
    }

    #[test]
    fn a_resumed_connection_waits_for_its_subscription_again() {
        // Created at 0, paused before anything arrived, resumed a day later.
        let resumed = t(86_400);
        let f = Facts::default();
        assert_eq!(evaluate(&f, resumed, POLICY, t(86_400 + 60 + 15 * 60)), (Status::RequiresAction, Some(MSG_AWAITING)));
        assert_eq!(evaluate(&f, resumed, POLICY, t(86_400 + 60 + 15 * 60 + 1)), (Status::Error, Some(MSG_SUBSCRIPTION_MISSING)));
    }

    #[test]
    fn a_confirmation_waiting_for_an_admin_stays_requires_action() {
        let f =
            Facts { confirmation_url: Some("https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription".into()), ..Facts::default() };
        assert_eq!(evaluate(&f, t(0), POLICY, t(86_400)), (Status::RequiresAction, Some(MSG_AWAITING)));
        assert_eq!(evaluate(&Facts::default(), t(0), POLICY, t(86_400)), (Status::Error, Some(MSG_SUBSCRIPTION_MISSING)));
    }

    #[test]
    fn first_heartbeat_must_come_within_interval_plus_grace_of_confirmation() {
        let f = confirmed_at(100);
        assert_eq!(evaluate(&f, t(0), POLICY, t(100 + 360)), (Status::Connected, None));
        assert_eq!(evaluate(&f, t(0), POLICY, t(100 + 361)), (Status::Error, Some(MSG_HEARTBEAT_MISSING)));
    }

    #[test]
    fn two_lost_heartbeats_make_it_too_old() {
        let f = Facts { last_heartbeat_at: Some(t(1000)), ..confirmed_at(0) };
        assert_eq!(evaluate(&f, t(0), POLICY, t(1000 + 660)), (Status::Connected, None));
        assert_eq!(evaluate(&f, t(0), POLICY, t(1000 + 661)), (Status::Error, Some(MSG_HEARTBEAT_TOO_OLD)));
    }

    #[test]
    fn a_heartbeat_stamped_in_the_future_counts_as_fresh() {
        let f = Facts { last_heartbeat_at: Some(t(5000)), ..confirmed_at(0) };
        assert_eq!(evaluate(&f, t(0), POLICY, t(4000)), (Status::Connected, None));
    }

    #[test]
    fn no_heartbeat_expected_means_connected_once_confirmed() {
        let policy = Policy::from_seconds(None, 60);
        assert_eq!(evaluate(&confirmed_at(0), t(0), policy, t(10_000_000)), (Status::Connected, None));
    }

    #[test]
    fn five_unauthenticated_pushes_in_a_row_are_an_error() {
        let mut f = Facts { last_heartbeat_at: Some(t(10)), ..confirmed_at(0) };
        f.auth_failure_streak = 4;
        assert_eq!(evaluate(&f, t(0), POLICY, t(20)).0, Status::Connected);
        f.auth_failure_streak = 5;
        assert_eq!(evaluate(&f, t(0), POLICY, t(20)), (Status::Error, Some(MSG_SIGNATURE_FAILING)));
    }

    #[test]
    fn lost_subscription_and_expiry_are_missing_until_reconfirmed() {
        let lost = Facts { subscription_lost_at: Some(t(50)), ..confirmed_at(10) };
        assert_eq!(evaluate(&lost, t(0), POLICY, t(60)), (Status::Error, Some(MSG_SUBSCRIPTION_MISSING)));
        let again = Facts { confirmed_at: Some(t(70)), last_heartbeat_at: Some(t(70)), ..lost };
        assert_eq!(evaluate(&again, t(0), POLICY, t(80)), (Status::Connected, None));
        let expired = Facts { expires_at: Some(t(100)), last_heartbeat_at: Some(t(90)), ..confirmed_at(0) };
        assert_eq!(evaluate(&expired, t(0), POLICY, t(99)).0, Status::Connected);
        assert_eq!(evaluate(&expired, t(0), POLICY, t(100)), (Status::Error, Some(MSG_SUBSCRIPTION_MISSING)));
    }

    #[test]
    fn reauthorization_needs_action() {
        let f = Facts { reauthorization_required_at: Some(t(5)), ..confirmed_at(0) };
        assert_eq!(evaluate(&f, t(0), POLICY, t(10)), (Status::RequiresAction, Some(MSG_REAUTHORIZATION)));
    }

    fn failing(failure: UpkeepFailure) -> Facts {
        Facts { upkeep_failure: Some(failure), upkeep_failing_since: Some(t(5)), ..confirmed_at(0) }
    }

    #[test]
    fn refused_credentials_are_unable_to_read_the_api() {
        let f = failing(UpkeepFailure::Credentials);
        assert_eq!(evaluate(&f, t(0), POLICY, t(10)), (Status::Error, Some(MSG_UNABLE_TO_READ_API)));
        // Before every later row: a lost or expired subscription, failing signatures,
        // a reauthorization request, a missing heartbeat.
        let worse = Facts {
            subscription_lost_at: Some(t(6)),
            expires_at: Some(t(7)),
            auth_failure_streak: AUTH_FAILURE_LIMIT,
            reauthorization_required_at: Some(t(8)),
            ..f.clone()
        };
        assert_eq!(evaluate(&worse, t(0), POLICY, t(99_999)), (Status::Error, Some(MSG_UNABLE_TO_READ_API)));
        let unconfirmed = Facts { confirmed_at: None, ..f };
        assert_eq!(evaluate(&unconfirmed, t(0), POLICY, t(10)), (Status::Error, Some(MSG_UNABLE_TO_READ_API)), "not awaiting");
    }

    #[test]
    fn a_failed_validation_is_its_own_error_before_the_later_rows() {
        let f = failing(UpkeepFailure::Validation);
        assert_eq!(evaluate(&f, t(0), POLICY, t(10)), (Status::Error, Some(MSG_VALIDATION_FAILED)));
        let worse = Facts { expires_at: Some(t(7)), reauthorization_required_at: Some(t(8)), ..f };
        assert_eq!(evaluate(&worse, t(0), POLICY, t(99_999)), (Status::Error, Some(MSG_VALIDATION_FAILED)));
    }

    #[test]
    fn pause_wins_over_an_upkeep_failure_and_its_end_restores_the_other_rows() {
        let paused = Facts { paused: true, ..failing(UpkeepFailure::Credentials) };
        assert_eq!(evaluate(&paused, t(0), POLICY, t(10)), (Status::Paused, None));
        // No class (a success cleared it, or the failure said nothing about the
        // connection): the rows below apply as before.
        let cleared =
            Facts { upkeep_failure: None, upkeep_failing_since: None, expires_at: Some(t(7)), ..failing(UpkeepFailure::Validation) };
        assert_eq!(evaluate(&cleared, t(0), POLICY, t(10)), (Status::Error, Some(MSG_SUBSCRIPTION_MISSING)));
        let fine = Facts { last_heartbeat_at: Some(t(9)), ..confirmed_at(0) };
        assert_eq!(evaluate(&fine, t(0), POLICY, t(10)), (Status::Connected, None));
    }

    #[test]
    fn a_heartbeat_after_an_error_recovers() {
        let mut f = confirmed_at(0);
        assert_eq!(evaluate(&f, t(0), POLICY, t(1000)).0, Status::Error);
        f.last_heartbeat_at = Some(t(1000));
        assert_eq!(evaluate(&f, t(0), POLICY, t(1001)), (Status::Connected, None));
    }
}
