//! The arithmetic of one group commit, kept apart from SQL so it is tested on its own:
//! which events and heartbeats of a batch were new or duplicates, and how each
//! connection's facts and counters change.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{OpOutcome, WriteOp};
use crate::model::{ContentFetch, CountedHeartbeat, NewEvent, NewRejection, SubscriptionChange};

/// The change a batch makes to one connection row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConnectionDelta {
    pub events: i64,
    pub duplicates: i64,
    pub heartbeats: i64,
    pub rejections: i64,
    pub last_heartbeat_at: Option<DateTime<Utc>>,
    pub data_last_received_at: Option<DateTime<Utc>>,
    pub confirmed_at: Option<DateTime<Utc>>,
    /// A verified push happened: the failure streak restarts from `streak`.
    pub reset_streak: bool,
    /// Unauthenticated pushes (after the last verified one, when `reset_streak`).
    pub streak: i64,
}

/// Every event of the batch with the op it belongs to, in order.
pub fn events(ops: &[WriteOp]) -> Vec<(usize, Uuid, &NewEvent)> {
    ops.iter()
        .enumerate()
        .filter_map(|(i, op)| match op {
            WriteOp::Accept(a) => Some(a.events.iter().map(move |e| (i, a.connection_id, e))),
            WriteOp::Refuse(_) => None,
        })
        .flatten()
        .collect()
}

/// Every heartbeat of the batch with the op it belongs to, in order.
pub fn heartbeats(ops: &[WriteOp]) -> Vec<(usize, Uuid, &CountedHeartbeat)> {
    ops.iter()
        .enumerate()
        .filter_map(|(i, op)| match op {
            WriteOp::Accept(a) => a.heartbeat.as_ref().map(|h| (i, a.connection_id, h)),
            WriteOp::Refuse(_) => None,
        })
        .collect()
}

/// Every rejection row the batch keeps.
pub fn rejections(ops: &[WriteOp]) -> Vec<&NewRejection> {
    ops.iter()
        .flat_map(|op| match op {
            WriteOp::Accept(a) => a.kept_rejections.iter().collect::<Vec<_>>(),
            WriteOp::Refuse(r) => r.record.iter().collect(),
        })
        .collect()
}

/// Outcomes per op and deltas per connection, given the `(connection id, dedupe key)`
/// pairs the events insert reported as new, and the `(connection id, heartbeat id)` pairs
/// the heartbeats insert did. Within a batch the first op with a key (or heartbeat id)
/// claims it; a heartbeat counted before is a duplicate and changes nothing else.
pub fn settle(
    ops: &[WriteOp],
    inserted: &HashSet<(String, String)>,
    new_heartbeats: &HashSet<(String, String)>,
) -> (Vec<OpOutcome>, BTreeMap<Uuid, ConnectionDelta>) {
    let mut claimed: HashSet<(String, &str)> = HashSet::new();
    let mut claimed_heartbeats: HashSet<(String, &str)> = HashSet::new();
    let mut deltas: BTreeMap<Uuid, ConnectionDelta> = BTreeMap::new();
    let mut outcomes = Vec::with_capacity(ops.len());
    for op in ops {
        match op {
            WriteOp::Accept(a) => {
                let id = a.connection_id.to_string();
                let (mut stored, mut duplicates) = (0u32, 0u32);
                for e in &a.events {
                    let key = (id.clone(), e.dedupe_key.clone());
                    if inserted.contains(&key) && claimed.insert((id.clone(), e.dedupe_key.as_str())) {
                        stored += 1;
                    } else {
                        duplicates += 1;
                    }
                }
                let d = deltas.entry(a.connection_id).or_default();
                if let Some(heartbeat) = &a.heartbeat {
                    let key = (id.clone(), heartbeat.id.clone());
                    if new_heartbeats.contains(&key) && claimed_heartbeats.insert((id.clone(), heartbeat.id.as_str())) {
                        d.heartbeats += 1;
                        d.last_heartbeat_at = latest(d.last_heartbeat_at, heartbeat.signed_at);
                    } else {
                        duplicates += 1;
                    }
                }
                d.events += i64::from(stored);
                d.duplicates += i64::from(duplicates);
                if !a.events.is_empty() {
                    d.data_last_received_at = latest(d.data_last_received_at, a.received_at);
                }
                if a.confirms {
                    d.confirmed_at = Some(d.confirmed_at.map_or(a.received_at, |t| t.min(a.received_at)));
                }
                d.rejections += a.kept_rejections.len() as i64;
                if a.authenticated {
                    d.reset_streak = true;
                    d.streak = 0;
                }
                outcomes.push(OpOutcome::Accepted { stored, duplicates });
            }
            WriteOp::Refuse(r) => {
                if let Some(id) = r.connection_id {
                    let d = deltas.entry(id).or_default();
                    d.rejections += 1;
                    if r.unauthenticated {
                        d.streak += 1;
                    } else {
                        // "The last 5 pushes were all unauthenticated": another refusal
                        // (paused, too large, ...) breaks the run.
                        d.reset_streak = true;
                        d.streak = 0;
                    }
                }
                outcomes.push(OpOutcome::Refused);
            }
        }
    }
    (outcomes, deltas)
}

/// The subscription changes a committed batch applies, in order, each with its
/// connection and the time of its push. A change reported by an event applies once, with
/// the event: a replayed or retried report is a duplicate and changes nothing. The
/// `Observed` changes of one connection (every Graph notification reports one) collapse
/// into the one with the latest expiry, applied last: they only ever keep the latest, so
/// one statement per connection does what one per push would.
pub fn changes<'o>(
    ops: &'o [WriteOp],
    inserted: &HashSet<(String, String)>,
    gone: &HashSet<Uuid>,
) -> Vec<(Uuid, &'o SubscriptionChange, DateTime<Utc>)> {
    let mut ordered = Vec::new();
    let mut observed: BTreeMap<Uuid, (&SubscriptionChange, DateTime<Utc>)> = BTreeMap::new();
    for op in ops {
        let WriteOp::Accept(a) = op else { continue };
        if gone.contains(&a.connection_id) {
            continue;
        }
        for reported in &a.changes {
            let applies = reported.event_key.as_ref().is_none_or(|key| inserted.contains(&(a.connection_id.to_string(), key.clone())));
            if !applies {
                continue;
            }
            if let SubscriptionChange::Observed { expires_at, .. } = &reported.change {
                let later = match observed.get(&a.connection_id) {
                    Some((SubscriptionChange::Observed { expires_at: kept, .. }, _)) => expires_at > kept,
                    _ => true,
                };
                if later {
                    observed.insert(a.connection_id, (&reported.change, a.received_at));
                }
            } else {
                ordered.push((a.connection_id, &reported.change, a.received_at));
            }
        }
    }
    ordered.extend(observed.into_iter().map(|(id, (change, at))| (id, change, at)));
    ordered
}

/// The content fetches a committed batch queues, each with its connection and the time
/// of its push: those whose notification is new (a repeated notification queues nothing
/// again), of connections not deleted meanwhile.
pub fn fetches<'o>(
    ops: &'o [WriteOp],
    inserted: &HashSet<(String, String)>,
    gone: &HashSet<Uuid>,
) -> Vec<(Uuid, &'o ContentFetch, DateTime<Utc>)> {
    ops.iter()
        .filter_map(|op| match op {
            WriteOp::Accept(a) if !gone.contains(&a.connection_id) => Some(a),
            _ => None,
        })
        .flat_map(|a| {
            let id = a.connection_id.to_string();
            a.fetches
                .iter()
                .filter(move |f| inserted.contains(&(id.clone(), f.event_key.clone())))
                .map(move |f| (a.connection_id, f, a.received_at))
        })
        .collect()
}

fn latest(current: Option<DateTime<Utc>>, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    Some(current.map_or(at, |c| c.max(at)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{EventKind, SourceKind};
    use crate::store::{Accepted, Refused};

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    fn accept(conn: Uuid, keys: &[&str], t: i64) -> WriteOp {
        WriteOp::Accept(Accepted {
            connection_id: conn,
            tenant_id: "t".into(),
            source: SourceKind::Webhook,
            stream: "s".into(),
            received_at: at(t),
            events: keys
                .iter()
                .map(|k| NewEvent { dedupe_key: k.to_string(), kind: EventKind::Alert, occurred_at: None, payload: serde_json::json!({}) })
                .collect(),
            heartbeat: keys.is_empty().then(|| CountedHeartbeat { id: format!("hb-{t}"), signed_at: at(t - 1) }),
            confirms: true,
            authenticated: true,
            kept_rejections: Vec::new(),
            changes: Vec::new(),
            fetches: Vec::new(),
        })
    }

    fn refuse(conn: Uuid) -> WriteOp {
        WriteOp::Refuse(Refused { connection_id: Some(conn), unauthenticated: true, record: None })
    }

    #[test]
    fn an_unauthenticated_validation_does_not_end_a_run_of_refusals() {
        let c = Uuid::new_v4();
        let WriteOp::Accept(mut validation) = accept(c, &[], 2) else { unreachable!() };
        validation.authenticated = false;
        let (_, deltas) = settle(&[refuse(c), WriteOp::Accept(validation), refuse(c)], &HashSet::new(), &HashSet::new());
        assert_eq!((deltas[&c].reset_streak, deltas[&c].streak), (false, 2));
    }

    #[test]
    fn graph_observations_collapse_to_the_latest_per_connection() {
        use crate::model::ReportedChange;
        let (c, other) = (Uuid::new_v4(), Uuid::new_v4());
        let observe = |id: &str, t: i64| SubscriptionChange::Observed { external_id: id.into(), expires_at: Some(at(t)) };
        let with = |conn: Uuid, changes: Vec<ReportedChange>| {
            let WriteOp::Accept(mut a) = accept(conn, &["k"], 1) else { unreachable!() };
            a.changes = changes;
            WriteOp::Accept(a)
        };
        let lost = SubscriptionChange::Lost { at: at(5) };
        let ops = [
            with(c, vec![ReportedChange::always(observe("s", 100))]),
            with(c, vec![ReportedChange::always(observe("s", 300)), ReportedChange { change: lost.clone(), event_key: Some("k".into()) }]),
            with(c, vec![ReportedChange::always(observe("s", 200))]),
            with(
                other,
                vec![ReportedChange::always(observe("t", 50)), ReportedChange { change: lost.clone(), event_key: Some("old".into()) }],
            ),
        ];
        let inserted: HashSet<_> = [(c.to_string(), "k".to_string()), (other.to_string(), "k".to_string())].into();
        let applied = changes(&ops, &inserted, &HashSet::new());
        let mut expected = vec![(c, &lost, at(1))];
        let (latest, others) = (observe("s", 300), observe("t", 50));
        let mut tail = vec![(c, &latest, at(1)), (other, &others, at(1))];
        tail.sort_by_key(|(id, _, _)| *id);
        expected.extend(tail);
        assert_eq!(applied, expected, "a duplicate's loss is dropped, one observation per connection");
        assert!(changes(&ops, &inserted, &[c, other].into()).is_empty(), "nothing for deleted connections");
    }

    #[test]
    fn only_new_notifications_of_live_connections_queue_their_fetch() {
        let (c, deleted) = (Uuid::new_v4(), Uuid::new_v4());
        let fetch = |key: &str| ContentFetch {
            content_id: key.into(),
            content_type: "Audit.General".into(),
            content_uri: format!("https://manage.office.com/api/v1.0/t/activity/feed/audit/{key}"),
            content_created: None,
            expires_at: at(600),
            event_key: key.into(),
        };
        let with = |conn: Uuid, keys: &[&str], t: i64| {
            let WriteOp::Accept(mut a) = accept(conn, keys, t) else { unreachable!() };
            a.fetches = keys.iter().map(|k| fetch(k)).collect();
            WriteOp::Accept(a)
        };
        let ops = [with(c, &["new", "seen"], 1), with(deleted, &["new"], 2)];
        let inserted: HashSet<_> = [(c.to_string(), "new".to_string()), (deleted.to_string(), "new".to_string())].into();
        let queued = fetches(&ops, &inserted, &[deleted].into());
        assert_eq!(queued, [(c, &fetch("new"), at(1))], "a repeated notification and a deleted connection queue nothing");
    }

    #[test]
    fn first_op_with_a_key_stores_it_and_later_ones_are_duplicates() {
        let c = Uuid::new_v4();
        let ops = [accept(c, &["a", "b"], 1), accept(c, &["a"], 2), accept(c, &["old"], 3)];
        let inserted: HashSet<_> = [(c.to_string(), "a".into()), (c.to_string(), "b".into())].into();
        let (outcomes, deltas) = settle(&ops, &inserted, &HashSet::new());
        assert_eq!(
            outcomes,
            [
                OpOutcome::Accepted { stored: 2, duplicates: 0 },
                OpOutcome::Accepted { stored: 0, duplicates: 1 },
                OpOutcome::Accepted { stored: 0, duplicates: 1 },
            ]
        );
        let d = &deltas[&c];
        assert_eq!((d.events, d.duplicates, d.heartbeats), (2, 2, 0));
        assert_eq!(d.data_last_received_at, Some(at(3)));
        assert_eq!(d.confirmed_at, Some(at(1)));
    }

    #[test]
    fn a_heartbeat_id_counts_once_and_a_repeat_is_a_duplicate() {
        let c = Uuid::new_v4();
        let beat = |id: &str, signed: i64, received: i64| {
            let WriteOp::Accept(mut a) = accept(c, &[], received) else { unreachable!() };
            a.heartbeat = Some(CountedHeartbeat { id: id.into(), signed_at: at(signed) });
            WriteOp::Accept(a)
        };
        // "same" twice in this batch (the insert reports it new once), "old" counted before.
        let ops = [beat("same", 10, 11), beat("same", 10, 12), beat("old", 50, 60), beat("new", 8, 13)];
        let new: HashSet<_> = [(c.to_string(), "same".to_string()), (c.to_string(), "new".to_string())].into();
        let (outcomes, deltas) = settle(&ops, &HashSet::new(), &new);
        assert_eq!(
            outcomes,
            [
                OpOutcome::Accepted { stored: 0, duplicates: 0 },
                OpOutcome::Accepted { stored: 0, duplicates: 1 },
                OpOutcome::Accepted { stored: 0, duplicates: 1 },
                OpOutcome::Accepted { stored: 0, duplicates: 0 },
            ]
        );
        let d = &deltas[&c];
        assert_eq!((d.heartbeats, d.duplicates), (2, 2));
        assert_eq!(d.last_heartbeat_at, Some(at(10)), "the latest signed time of those counted; the repeat moves nothing");
    }

    #[test]
    fn failure_streak_counts_only_after_the_last_verified_push() {
        let c = Uuid::new_v4();
        let ops = [refuse(c), accept(c, &[], 5), refuse(c), refuse(c)];
        let (outcomes, deltas) = settle(&ops, &HashSet::new(), &[(c.to_string(), "hb-5".to_string())].into());
        assert_eq!(outcomes[0], OpOutcome::Refused);
        let d = &deltas[&c];
        assert!(d.reset_streak);
        assert_eq!((d.streak, d.rejections, d.heartbeats), (2, 3, 1));
        assert_eq!(d.last_heartbeat_at, Some(at(4)), "the heartbeat's signed time, not its arrival");

        let mut too_large = refuse(c);
        if let WriteOp::Refuse(r) = &mut too_large {
            r.unauthenticated = false;
        }
        let (_, broken) = settle(&[refuse(c), refuse(c), too_large, refuse(c)], &HashSet::new(), &HashSet::new());
        assert!(broken[&c].reset_streak);
        assert_eq!(broken[&c].streak, 1);

        let (_, only_failures) = settle(&[refuse(c), refuse(c)], &HashSet::new(), &HashSet::new());
        assert!(!only_failures[&c].reset_streak);
        assert_eq!(only_failures[&c].streak, 2);
    }
}
