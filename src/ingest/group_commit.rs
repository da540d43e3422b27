//! Group commit: concurrent pushes share one transaction.
//!
//! Each push sends its [`WriteOp`] down a bounded queue and waits. A dispatcher takes the
//! first waiting op, waits for a free writer, then takes every op that queued up in the
//! meantime (up to `max_batch`) and commits them together; each push is answered only
//! after that commit. Under light load a batch is one op and nothing waits; under heavy
//! load batches grow while the previous commit is on disk, so one fsync covers many
//! pushes (BENCHMARKS.md has the measured effect).

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::store::{OpOutcome, Store, WriteOp};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommitError {
    #[error("the write queue is full")]
    Overloaded,
    #[error("the commit failed: {0}")]
    Failed(String),
    #[error("pushgate is shutting down")]
    Closed,
}

struct Job {
    op: WriteOp,
    reply: oneshot::Sender<Result<OpOutcome, CommitError>>,
}

/// Handle to the group-commit writer; cheap to clone.
#[derive(Clone)]
pub struct GroupCommit {
    queue: mpsc::Sender<Job>,
}

impl GroupCommit {
    /// Starts the dispatcher. `writers` batches may commit at once (1 for SQLite, whose
    /// writes serialize anyway; a few for PostgreSQL).
    pub fn start(store: Arc<dyn Store>, writers: usize, max_batch: usize, queue_len: usize) -> GroupCommit {
        let (queue, rx) = mpsc::channel(queue_len);
        tokio::spawn(dispatch(store, rx, writers.max(1), max_batch.max(1)));
        GroupCommit { queue }
    }

    /// Commits `op` with whatever else is waiting; returns once it is durable.
    pub async fn submit(&self, op: WriteOp) -> Result<OpOutcome, CommitError> {
        let (reply, answer) = oneshot::channel();
        self.queue.try_send(Job { op, reply }).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => CommitError::Overloaded,
            mpsc::error::TrySendError::Closed(_) => CommitError::Closed,
        })?;
        answer.await.map_err(|_| CommitError::Closed)?
    }
}

async fn dispatch(store: Arc<dyn Store>, mut rx: mpsc::Receiver<Job>, writers: usize, max_batch: usize) {
    let free_writers = Arc::new(Semaphore::new(writers));
    while let Some(first) = rx.recv().await {
        let Ok(permit) = free_writers.clone().acquire_owned().await else { break };
        let mut jobs = vec![first];
        while jobs.len() < max_batch {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let store = store.clone();
        tokio::spawn(async move {
            commit_batch(store.as_ref(), jobs).await;
            drop(permit);
        });
    }
    // Wait for batches in flight, so a shutdown flushes them.
    let _ = free_writers.acquire_many(writers as u32).await;
}

async fn commit_batch(store: &dyn Store, jobs: Vec<Job>) {
    // A push whose caller already gave up (timed out, disconnected) is not written: the
    // sender was not acknowledged and will retry.
    let (ops, replies): (Vec<WriteOp>, Vec<_>) = jobs.into_iter().filter(|j| !j.reply.is_closed()).map(|j| (j.op, j.reply)).unzip();
    if ops.is_empty() {
        return;
    }
    let started = std::time::Instant::now();
    let committed = store.commit(&ops).await;
    tracing::debug!(ops = ops.len(), micros = started.elapsed().as_micros() as u64, ok = committed.is_ok(), "group commit");
    match committed {
        Ok(outcomes) => {
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                let _ = reply.send(Ok(outcome));
            }
        }
        Err(e) if ops.len() > 1 && e.is_refused_data() => {
            // The database refused one op's data: commit each alone, so it fails alone.
            tracing::warn!(error = %e, ops = ops.len(), "batch refused by the database; committing its ops one by one");
            for (op, reply) in ops.into_iter().zip(replies) {
                let answer = match store.commit(std::slice::from_ref(&op)).await {
                    Ok(mut outcomes) => outcomes.pop().ok_or_else(|| CommitError::Failed("no outcome".into())),
                    Err(e) => {
                        tracing::error!(error = %e, "commit failed");
                        Err(CommitError::Failed(e.to_string()))
                    }
                };
                let _ = reply.send(answer);
            }
        }
        Err(e) => {
            // Unreachable or failing database: every push of the batch is refused at once
            // (503), and its sender retries.
            tracing::error!(error = %e, ops = ops.len(), "commit failed");
            for reply in replies {
                let _ = reply.send(Err(CommitError::Failed(e.to_string())));
            }
        }
    }
}
