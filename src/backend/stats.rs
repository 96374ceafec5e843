//! Per-backend call counters and a latency histogram, lock-free, kept
//! across reconnects (the management API's `/metrics` reads them).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds (Prometheus `le`).
pub const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0];

#[derive(Default)]
pub struct Stats {
    pub calls: AtomicU64,
    pub errors: AtomicU64,
    /// Count per bucket (not cumulative), plus +Inf at the end.
    pub buckets: [AtomicU64; BUCKETS.len() + 1],
    pub latency_micros_sum: AtomicU64,
    pub finished: AtomicU64,
}

impl Stats {
    pub fn call_started(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
    }

    pub fn call_finished(&self, took: Duration, ok: bool) {
        if !ok {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        let secs = took.as_secs_f64();
        let i = BUCKETS.iter().position(|b| secs <= *b).unwrap_or(BUCKETS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.latency_micros_sum.fetch_add(took.as_micros() as u64, Ordering::Relaxed);
        self.finished.fetch_add(1, Ordering::Relaxed);
    }
}
