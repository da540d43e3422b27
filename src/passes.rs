//! A count of the passes a background job has completed (the health monitor, the Graph
//! upkeep), so that whoever started it (a test, above all) can wait for "two more
//! passes" instead of sleeping for what it hopes is long enough. A plain primitive: every
//! layer may use it.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::watch;

/// The number of passes a job has completed (cheap to clone: one `Arc`). The job calls
/// [`Passes::completed`] after each pass, whatever its outcome; a server whose test
/// never looks just counts.
#[derive(Clone, Debug)]
pub struct Passes(Arc<watch::Sender<u64>>);

impl Default for Passes {
    fn default() -> Passes {
        Passes(Arc::new(watch::Sender::new(0)))
    }
}

impl Passes {
    /// Counts one more completed pass.
    pub fn completed(&self) {
        self.0.send_modify(|n| *n += 1);
    }

    /// How many passes have completed so far.
    pub fn count(&self) -> u64 {
        *self.0.borrow()
    }

    /// Completes once `target` passes in all have completed.
    pub fn reached(&self, target: u64) -> impl Future<Output = ()> + Send + 'static {
        let mut counted = self.0.subscribe();
        async move {
            // The sender lives as long as `self` and its clones, so waiting cannot fail
            // while anyone could still count.
            let _ = counted.wait_for(|n| *n >= target).await;
        }
    }

    /// Completes once `n` more passes than now have completed. The first of them may have
    /// begun before the call: `n` passes that began after it need `n + 1`.
    pub fn more(&self, n: u64) -> impl Future<Output = ()> + Send + 'static {
        self.reached(self.count().saturating_add(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waiters_see_the_passes_counted_after_they_asked() {
        let passes = Passes::default();
        passes.completed();
        let two_more = tokio::spawn(passes.more(2));
        let counter = passes.clone();
        counter.completed();
        assert!(!two_more.is_finished());
        counter.completed();
        two_more.await.unwrap();
        assert_eq!(passes.count(), 3);
        passes.reached(1).await;
    }
}
