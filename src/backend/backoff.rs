//! Retry timing of a backend's supervisor (`backend:<name>` thread):
//! exponential backoff from `server.backoff_initial_ms`, doubling after each
//! failed attempt up to `server.backoff_max_ms`, each wait moved by a random
//! ±20 % so that backends failing together (a shared remote, a reload) do
//! not retry in step. Pure arithmetic plus a tiny xorshift generator seeded
//! from `/dev/urandom`: jitter only has to spread retries, not be secret.

use crate::config::ServerConfig;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The two settings, taken from the `server` section (a reload may change
/// them; a running supervisor reads them again before each wait).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    pub initial: Duration,
    pub max: Duration,
}

impl Policy {
    pub fn of(server: &ServerConfig) -> Policy {
        Policy { initial: server.backoff_initial, max: server.backoff_max }
    }
}

impl Default for Policy {
    fn default() -> Self {
        Policy::of(&ServerConfig::default())
    }
}

/// How many attempts failed since the last stable connection, and the
/// jitter source.
pub struct Backoff {
    failures: u32,
    rng: XorShift,
}

impl Backoff {
    pub fn new(rng: XorShift) -> Backoff {
        Backoff { failures: 0, rng }
    }

    /// Counts one more failure and returns the wait before the next attempt:
    /// `initial × 2^(failures − 1)`, capped at `max`, times a random factor
    /// in [0.8, 1.2), and never more than `max` (an operator's cap is a cap).
    pub fn next(&mut self, p: Policy) -> Duration {
        let base = base_delay(p, self.failures);
        self.failures = self.failures.saturating_add(1);
        base.mul_f64(0.8 + 0.4 * self.rng.next_f64()).min(p.max)
    }

    /// A connection stayed up long enough: the next failure waits `initial` again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// Failed attempts in a row so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

/// The wait after `failures` earlier failures, before jitter.
fn base_delay(p: Policy, failures: u32) -> Duration {
    // 2^30 × 10 ms is past any accepted cap (a day); stop doubling there.
    p.initial.saturating_mul(1 << failures.min(30)).min(p.max)
}

/// xorshift64* (Vigna): small, fast, good enough to spread retries.
pub struct XorShift(u64);

impl XorShift {
    /// Seeded from `/dev/urandom`, or from the clock and pid if that fails.
    pub fn seeded() -> XorShift {
        let seed = crate::util::random_u64().unwrap_or_else(|_| {
            let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
            nanos ^ (u64::from(std::process::id()) << 32)
        });
        XorShift::new(seed)
    }

    pub fn new(seed: u64) -> XorShift {
        // The all-zero state is a fixed point: avoid it.
        XorShift(if seed == 0 { 0x9E37_79B9_7F4A_7C15 } else { seed })
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn waits_double_up_to_the_cap_within_the_jitter() {
        let p = Policy { initial: ms(200), max: ms(1000) };
        let mut b = Backoff::new(XorShift::new(7));
        for base in [200, 400, 800, 1000, 1000, 1000] {
            let d = b.next(p);
            let (lo, hi) = (ms(base).mul_f64(0.8), ms(base).mul_f64(1.2).min(p.max));
            assert!(d >= lo && d <= hi, "{d:?} not in [{lo:?}, {hi:?}] for base {base} ms");
        }
        assert_eq!(b.failures(), 6);
        b.reset();
        let d = b.next(p);
        assert!(d >= ms(160) && d <= ms(240), "after a reset the first wait again: {d:?}");
    }

    #[test]
    fn the_base_never_overflows_and_stays_at_the_cap() {
        let p = Policy { initial: ms(10), max: Duration::from_secs(86_400) };
        assert_eq!(base_delay(p, 0), ms(10));
        assert_eq!(base_delay(p, 3), ms(80));
        assert_eq!(base_delay(p, 40), p.max);
        assert_eq!(base_delay(p, u32::MAX), p.max);
        let mut b = Backoff::new(XorShift::new(1));
        for _ in 0..100 {
            assert!(b.next(p) <= p.max);
        }
    }

    #[test]
    fn jitter_spreads_waits_over_both_sides() {
        let p = Policy { initial: ms(1000), max: ms(30_000) };
        let waits: Vec<Duration> = (0..200)
            .map(|i| {
                let mut b = Backoff::new(XorShift::new(i + 1));
                b.next(p)
            })
            .collect();
        assert!(waits.iter().all(|d| *d >= ms(800) && *d < ms(1200)), "{waits:?}");
        assert!(waits.iter().any(|d| *d < ms(900)) && waits.iter().any(|d| *d > ms(1100)), "{waits:?}");
    }

    #[test]
    fn xorshift_is_uniform_enough_and_never_stuck() {
        let mut r = XorShift::new(0);
        let xs: Vec<f64> = (0..10_000).map(|_| r.next_f64()).collect();
        assert!(xs.iter().all(|x| (0.0..1.0).contains(x)));
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        assert!((0.45..0.55).contains(&mean), "mean {mean}");
        assert_ne!(XorShift::seeded().next_u64(), XorShift::seeded().next_u64());
    }
}
