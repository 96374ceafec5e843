//! [`Latch`]: a single-use barrier for scoped load threads that start
//! together, which unlike `std::sync::Barrier` can be released when some
//! parties will never arrive (a thread that failed to start).

use parking_lot::{Condvar, Mutex};

/// A barrier that can be told some parties will never come (a thread that
/// failed to start), so the others are not left waiting forever, as they
/// would be at a `std::sync::Barrier`.
pub struct Latch {
    remaining: Mutex<usize>,
    cv: Condvar,
}

impl Latch {
    pub fn new(n: usize) -> Latch {
        Latch { remaining: Mutex::new(n), cv: Condvar::new() }
    }

    /// Arrives and waits until every party has arrived or been cancelled.
    pub fn wait(&self) {
        let mut r = self.remaining.lock();
        *r = r.saturating_sub(1);
        if *r == 0 {
            self.cv.notify_all();
        }
        while *r > 0 {
            self.cv.wait(&mut r);
        }
    }

    /// `k` parties will never arrive.
    pub fn cancel(&self, k: usize) {
        let mut r = self.remaining.lock();
        *r = r.saturating_sub(k);
        if *r == 0 {
            self.cv.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn latch_releases_when_all_arrive_or_are_cancelled() {
        let l = Latch::new(3);
        std::thread::scope(|s| {
            let a = s.spawn(|| l.wait());
            let b = s.spawn(|| l.wait());
            // The third party never comes: cancelling it lets the two go.
            std::thread::sleep(Duration::from_millis(20));
            l.cancel(1);
            a.join().unwrap();
            b.join().unwrap();
        });
        let l = Latch::new(1);
        l.wait();
    }
}
