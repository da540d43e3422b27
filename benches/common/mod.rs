//! Timing for the one-call benchmarks (`sns_verify`, `oidc_verify`): an operation called
//! repeatedly after a warm-up, each call timed, printed as one Markdown table.

use std::time::{Duration, Instant};

const WARM_UP: Duration = Duration::from_millis(300);

pub struct Row {
    name: &'static str,
    latencies: Vec<Duration>,
    elapsed: Duration,
}

impl Row {
    fn percentile_us(&self, p: f64) -> f64 {
        let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[i].as_secs_f64() * 1e6
    }
    fn mean_us(&self) -> f64 {
        self.latencies.iter().sum::<Duration>().as_secs_f64() * 1e6 / self.latencies.len() as f64
    }
    fn per_second(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }
}

/// How long each row runs: `BENCH_SECONDS`, else `default_seconds`.
pub fn duration(default_seconds: u64) -> Duration {
    Duration::from_secs(std::env::var("BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(default_seconds))
}

/// Calls `op` repeatedly for the warm-up, then for `duration`, timing each call.
pub async fn measure<F, Fut>(name: &'static str, duration: Duration, mut op: F) -> Row
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let warm_until = Instant::now() + WARM_UP;
    while Instant::now() < warm_until {
        op().await;
    }
    let mut latencies = Vec::with_capacity(1 << 16);
    let started = Instant::now();
    while started.elapsed() < duration {
        let call = Instant::now();
        op().await;
        latencies.push(call.elapsed());
    }
    let elapsed = started.elapsed();
    latencies.sort();
    Row { name, latencies, elapsed }
}

pub fn print(rows: &[Row]) {
    println!();
    println!("| operation | calls/s | mean µs | p50 µs | p99 µs |");
    println!("|---|---:|---:|---:|---:|");
    for row in rows {
        println!(
            "| {} | {:.0} | {:.1} | {:.1} | {:.1} |",
            row.name,
            row.per_second(),
            row.mean_us(),
            row.percentile_us(0.50),
            row.percentile_us(0.99)
        );
    }
}
