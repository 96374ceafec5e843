//! Latency percentiles and the small random source the load threads use.
//! Pure: no I/O, no threads.

use std::time::Duration;

/// Nearest-rank percentile `p` (0–100) of sorted samples; zero when empty.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Milliseconds with three decimals, for the JSON summaries.
pub fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// Microseconds with one decimal.
pub fn us(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e7).round() / 10.0
}

/// SplitMix64: tiny, fast and good enough to pick payload sizes and pauses.
/// Each load thread owns one, seeded from the run's seed and its index, so
/// a run with `--seed` makes the same choices (timing aside).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..hi` (`lo` when the range is empty).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        lo + self.next_u64() % (hi - lo)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Log-uniform in `lo..=hi`: as many 100 B payloads as 10 KB ones.
    pub fn log_range(&mut self, lo: u64, hi: u64) -> u64 {
        let (l, h) = ((lo.max(1) as f64).ln(), (hi.max(lo).max(1) as f64).ln());
        ((l + self.unit() * (h - l)).exp().round() as u64).clamp(lo, hi.max(lo))
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        if items.is_empty() {
            return None;
        }
        items.get(self.range(0, items.len() as u64) as usize)
    }

    pub fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(self.range(lo, hi))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&v, 50.0), Duration::from_millis(50));
        assert_eq!(percentile(&v, 99.0), Duration::from_millis(99));
        assert_eq!(percentile(&v, 100.0), Duration::from_millis(100));
        assert_eq!(percentile(&v, 0.0), Duration::from_millis(1));
        assert_eq!(percentile(&[], 50.0), Duration::ZERO);
        assert_eq!(percentile(&[Duration::from_millis(7)], 99.0), Duration::from_millis(7));
    }

    #[test]
    fn units() {
        assert_eq!(ms(Duration::from_micros(1500)), 1.5);
        assert_eq!(us(Duration::from_nanos(1250)), 1.3);
    }

    #[test]
    fn rng_is_deterministic_and_in_range() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        for _ in 0..1000 {
            assert_eq!(a.next_u64(), b.next_u64());
            let r = a.range(10, 20);
            assert!((10..20).contains(&r));
            let l = a.log_range(100, 100_000);
            assert!((100..=100_000).contains(&l));
            b.range(10, 20);
            b.log_range(100, 100_000);
        }
        assert_eq!(a.range(5, 5), 5);
        assert_eq!(a.pick::<u8>(&[]), None);
        assert_eq!(a.pick(&[3]), Some(&3));
    }

    #[test]
    fn log_range_spreads_over_decades() {
        let mut r = Rng::new(1);
        let v: Vec<u64> = (0..3000).map(|_| r.log_range(100, 100_000)).collect();
        let small = v.iter().filter(|&&x| x < 1000).count();
        let large = v.iter().filter(|&&x| x >= 10_000).count();
        assert!((800..1200).contains(&small) && (800..1200).contains(&large), "{small} {large}");
    }
}
