//! Background jobs that run on one replica at a time, each under a job lease in the store
//! (the Graph and Office 365 subscription upkeeps, the Graph catch-up, the Office 365 content fetch, the canaries, the Pub/Sub subscription check, alert
//! deliveries, retention): [`Leases::spawn`] keeps trying to take the job's lease, runs the job
//! while it holds it, and renews it every [`LeaseSettings::renew_every`].
//!
//! A holder that cannot renew stops the job before its lease runs out: the job's task is
//! aborted once the time of the last successful renewal plus the TTL, less a margin for
//! the clocks of the replicas, has passed, whether the store answered "lost" or did not
//! answer at all. Another replica can take the lease only after it expired, so two
//! replicas never run a job at once (as long as the clocks agree within the margin).
//! A replica that stops gives its leases up at once; one that dies is taken over once
//! its leases expire (within the TTL plus one renewal period). Writes a job makes in the
//! store under its lease (the alert queue's) are fenced with the lease's generation too.
//!
//! Whether this replica holds each job's lease is the gauge `pushgate_job_lease_held{lease}`
//! (the label is not `job`, which Prometheus gives every series of a scrape target);
//! taking and losing a lease are logged at info.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::metrics::Metrics;
use crate::model::{now, JobLease};
use crate::store::Store;

/// How long a lease lasts and how often its holder renews it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseSettings {
    pub ttl: Duration,
    pub renew_every: Duration,
}

impl Default for LeaseSettings {
    /// 20 s, renewed every 5 s: a dead holder's jobs are taken over within 25 s.
    fn default() -> LeaseSettings {
        LeaseSettings { ttl: Duration::from_secs(20), renew_every: Duration::from_secs(5) }
    }
}

impl LeaseSettings {
    /// How long before the lease expires in the store its holder stops the job: a tenth
    /// of the TTL, for clocks that disagree and a renewal still in flight.
    fn margin(&self) -> Duration {
        self.ttl / 10
    }

    fn chrono_ttl(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.ttl).unwrap_or(chrono::Duration::MAX)
    }
}

/// Takes and keeps job leases for one replica (`holder`).
#[derive(Clone)]
pub struct Leases {
    pub store: Arc<dyn Store>,
    pub holder: String,
    pub settings: LeaseSettings,
    pub metrics: Arc<Metrics>,
}

/// Why a held lease ended.
enum Ended {
    /// The server is stopping.
    Stopping,
    /// The lease was taken over, or could not be renewed in time.
    Lost,
    /// The job returned on its own.
    Returned,
}

impl Leases {
    /// Runs `work` (started anew on each take of the lease, with the lease) while this
    /// replica holds the lease of `job`, until `stop` turns true.
    pub fn spawn<F, Fut>(&self, job: &'static str, stop: watch::Receiver<bool>, work: F)
    where
        F: Fn(JobLease) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let leases = self.clone();
        leases.metrics.job_lease_held(job, false);
        tokio::spawn(async move { leases.run(job, stop, work).await });
    }

    async fn run<F, Fut>(self, job: &'static str, mut stop: watch::Receiver<bool>, work: F)
    where
        F: Fn(JobLease) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        loop {
            if *stop.borrow() {
                return;
            }
            let asked = Instant::now();
            let at = now();
            match self.store.acquire_job(job, &self.holder, at, at + self.settings.chrono_ttl()).await {
                Ok(Some(lease)) => {
                    tracing::info!(job, holder = %self.holder, generation = lease.generation, "job lease acquired: running the job here");
                    self.metrics.job_lease_held(job, true);
                    let ended = self.hold(&lease, asked, &mut stop, tokio::spawn(work(lease.clone()))).await;
                    self.metrics.job_lease_held(job, false);
                    match ended {
                        Ended::Lost => tracing::info!(job, generation = lease.generation, "job lease lost: the job stopped here"),
                        Ended::Stopping | Ended::Returned => {
                            if let Err(e) = self.store.release_job(&lease).await {
                                tracing::warn!(job, error = %e, "job lease not released; it expires on its own");
                            } else {
                                tracing::info!(job, generation = lease.generation, "job lease released");
                            }
                        }
                    }
                    if matches!(ended, Ended::Stopping) {
                        return;
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(job, error = %e, "cannot ask for the job lease; trying again shortly"),
            }
            tokio::select! {
                _ = tokio::time::sleep(self.settings.renew_every) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }

    /// Renews `lease` (taken at `taken`) while `task` runs; aborts the task when the lease
    /// ends.
    async fn hold(
        &self,
        lease: &JobLease,
        taken: Instant,
        stop: &mut watch::Receiver<bool>,
        mut task: tokio::task::JoinHandle<()>,
    ) -> Ended {
        let lasts = self.settings.ttl.saturating_sub(self.settings.margin());
        let mut deadline = taken + lasts;
        let ended = loop {
            let wake = (Instant::now() + self.settings.renew_every).min(deadline);
            tokio::select! {
                _ = tokio::time::sleep_until(wake) => {}
                _ = stop.wait_for(|s| *s) => break Ended::Stopping,
                _ = &mut task => return Ended::Returned,
            }
            if Instant::now() >= deadline {
                break Ended::Lost;
            }
            let asked = Instant::now();
            let at = now();
            let renewal = self.store.renew_job(lease, at + self.settings.chrono_ttl());
            match tokio::time::timeout_at(deadline, renewal).await {
                Ok(Ok(true)) => deadline = asked + lasts,
                Ok(Ok(false)) => break Ended::Lost,
                Ok(Err(e)) => tracing::warn!(job = lease.job, error = %e, "job lease not renewed; trying again"),
                Err(_) => break Ended::Lost,
            }
        };
        task.abort();
        // Wait for the abort, so nothing of the job runs once the lease is given up.
        let _ = task.await;
        ended
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_holder_stops_before_its_lease_expires() {
        let settings = LeaseSettings::default();
        assert!(settings.renew_every * 3 < settings.ttl - settings.margin(), "several renewals may fail before the job stops");
        assert!(settings.ttl + settings.renew_every <= Duration::from_secs(30), "a dead holder is taken over within 30 s");
    }
}
