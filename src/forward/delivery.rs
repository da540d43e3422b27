//! Delivering one planned batch: the pure bookkeeping of which records still have to go,
//! which the store took and which it refused, kept apart from time and I/O so every
//! rule is a unit test.
//!
//! The batch is a queue of parts (ranges of its records), at first one part: the whole
//! batch, sent under the batch's own id. A part the store accepted leaves the queue; one
//! it refused as a whole is split in two until a refused part is a single record, which
//! becomes a dead letter with the store's answer; a record the store named (Splunk's
//! `invalid-event-number`) is dead-lettered at once and the records after it go on as
//! the next part. A part that failed for a reason a retry can fix stays first in the
//! queue, minus the records the store said it took. Parts keep commit order. A part other
//! than the whole batch is sent under an id derived from the batch id and its range, so a
//! retry of that part, even after a restart that splits the batch the same way, carries
//! the same id.

use std::collections::VecDeque;
use std::ops::Range;

use uuid::Uuid;

use super::sinks::{Failure, SinkError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    batch_id: Uuid,
    len: usize,
    parts: VecDeque<Range<usize>>,
    /// Sends that carried each record.
    sends: Vec<u32>,
    delivered: usize,
    /// Refused records: index and the store's answer.
    refused: Vec<(usize, String)>,
}

/// What to do after a send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Send the next part now (or finish, when none is left).
    Continue,
    /// Wait, then send the first part again.
    Retry(SinkError),
}

impl Delivery {
    pub fn new(batch_id: Uuid, len: usize) -> Delivery {
        let mut parts = VecDeque::new();
        if len > 0 {
            parts.push_back(0..len);
        }
        Delivery { batch_id, len, parts, sends: vec![0; len], delivered: 0, refused: Vec::new() }
    }

    /// The part to send next and the id to send it under; `None` when the batch is done.
    pub fn next_part(&self) -> Option<(Range<usize>, Uuid)> {
        let part = self.parts.front()?.clone();
        let id = if part == (0..self.len) { self.batch_id } else { part_id(self.batch_id, &part) };
        Some((part, id))
    }

    /// Settles the send of the first part.
    pub fn settle(&mut self, result: Result<(), SinkError>) -> Next {
        let Some(part) = self.parts.pop_front() else { return Next::Continue };
        for i in part.clone() {
            self.sends[i] += 1;
        }
        let error = match result {
            Ok(()) => {
                self.delivered += part.len();
                return Next::Continue;
            }
            Err(e) => e,
        };
        let accepted = error.accepted.min(part.len());
        self.delivered += accepted;
        let rest = part.start + accepted..part.end;
        match error.failure {
            Failure::Transient | Failure::Failing => {
                if !rest.is_empty() {
                    self.parts.push_front(rest);
                }
                if accepted > 0 && self.parts.is_empty() {
                    return Next::Continue;
                }
                Next::Retry(error)
            }
            Failure::RefusedRecord if !rest.is_empty() => {
                self.refused.push((rest.start, error.message));
                if rest.len() > 1 {
                    self.parts.push_front(rest.start + 1..rest.end);
                }
                Next::Continue
            }
            Failure::RefusedRecord => Next::Continue,
            Failure::RefusedBatch if rest.len() <= 1 => {
                if let Some(i) = rest.clone().next() {
                    self.refused.push((i, error.message));
                }
                Next::Continue
            }
            Failure::RefusedBatch => {
                let middle = rest.start + rest.len() / 2;
                self.parts.push_front(middle..rest.end);
                self.parts.push_front(rest.start..middle);
                Next::Continue
            }
        }
    }

    pub fn is_done(&self) -> bool {
        self.parts.is_empty()
    }

    /// Records the store acknowledged.
    pub fn delivered(&self) -> usize {
        self.delivered
    }

    /// Refused records: index, the store's answer, and how many sends carried it.
    pub fn refused(&self) -> impl Iterator<Item = (usize, &str, u32)> + '_ {
        self.refused.iter().map(|(i, reason)| (*i, reason.as_str(), self.sends[*i]))
    }
}

/// The id of a part of a batch: the batch id and the part's range, hashed into a UUID
/// (version 8), so the same part of the same batch always has the same id.
pub fn part_id(batch_id: Uuid, part: &Range<usize>) -> Uuid {
    super::sinks::derived_id(&[batch_id.as_bytes(), &(part.start as u64).to_be_bytes(), &(part.end as u64).to_be_bytes()])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused_batch() -> Result<(), SinkError> {
        Err(SinkError::new(Failure::RefusedBatch, "HTTP 400: bad record"))
    }

    /// Delivers with a store that refuses every part holding one of `poisoned`.
    fn run(len: usize, poisoned: &[usize]) -> (Delivery, Vec<Range<usize>>) {
        let mut d = Delivery::new(Uuid::from_u128(7), len);
        let mut sent = Vec::new();
        while let Some((part, _)) = d.next_part() {
            sent.push(part.clone());
            let result = if poisoned.iter().any(|p| part.contains(p)) { refused_batch() } else { Ok(()) };
            assert_eq!(d.settle(result), Next::Continue);
        }
        (d, sent)
    }

    #[test]
    fn a_refused_batch_is_split_until_the_refused_records_are_found() {
        let (d, sent) = run(8, &[5]);
        assert!(d.is_done());
        assert_eq!(d.delivered(), 7);
        assert_eq!(d.refused().map(|(i, _, _)| i).collect::<Vec<_>>(), [5]);
        assert_eq!(sent, [0..8, 0..4, 4..8, 4..6, 4..5, 5..6, 6..8], "halves, in commit order");
        let (_, reason, sends) = d.refused().next().unwrap();
        assert_eq!((reason, sends), ("HTTP 400: bad record", 4));
        let (d, _) = run(5, &[0, 4]);
        assert_eq!((d.delivered(), d.refused().count()), (3, 2));
        let (d, _) = run(1, &[0]);
        assert_eq!((d.delivered(), d.refused().count()), (0, 1));
    }

    #[test]
    fn a_named_record_is_dead_lettered_and_the_rest_goes_on() {
        let mut d = Delivery::new(Uuid::from_u128(1), 6);
        let mut hec = SinkError::new(Failure::RefusedRecord, "HTTP 400: Invalid data format");
        hec.accepted = 2;
        assert_eq!(d.settle(Err(hec)), Next::Continue);
        assert_eq!(d.next_part().unwrap().0, 3..6);
        assert_eq!(d.settle(Ok(())), Next::Continue);
        assert!(d.is_done());
        assert_eq!(d.delivered(), 5);
        assert_eq!(d.refused().map(|(i, _, _)| i).collect::<Vec<_>>(), [2]);
    }

    #[test]
    fn transient_failures_retry_what_was_not_taken_under_a_stable_id() {
        let batch = Uuid::from_u128(9);
        let mut d = Delivery::new(batch, 10);
        assert_eq!(d.next_part(), Some((0..10, batch)), "the whole batch goes under the batch id");
        let down = SinkError::transient("connection refused");
        assert_eq!(d.settle(Err(down.clone())), Next::Retry(down.clone()));
        assert_eq!(d.next_part(), Some((0..10, batch)), "retried whole, same id");
        let mut busy = SinkError::transient("HTTP 503: Server is busy");
        busy.accepted = 4;
        assert!(matches!(d.settle(Err(busy)), Next::Retry(_)));
        let (part, id) = d.next_part().unwrap();
        assert_eq!(part, 4..10);
        assert_eq!(id, part_id(batch, &(4..10)));
        assert_ne!(id, batch);
        assert_eq!(d.settle(Ok(())), Next::Continue);
        assert_eq!((d.delivered(), d.is_done()), (10, true));
        let mut all_taken = SinkError::transient("acked all but reported late");
        let mut e = Delivery::new(batch, 2);
        all_taken.accepted = 2;
        assert_eq!(e.settle(Err(all_taken)), Next::Continue, "nothing left to retry");
        assert!(e.is_done());
    }

    #[test]
    fn part_ids_are_stable_and_distinct() {
        let batch = Uuid::from_u128(3);
        assert_eq!(part_id(batch, &(0..4)), part_id(batch, &(0..4)));
        assert_ne!(part_id(batch, &(0..4)), part_id(batch, &(4..8)));
        assert_ne!(part_id(batch, &(0..4)), part_id(Uuid::from_u128(4), &(0..4)));
        assert_eq!(part_id(batch, &(0..4)).get_version_num(), 8);
        assert!(Delivery::new(batch, 0).is_done());
    }
}
