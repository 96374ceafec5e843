//! The event ring: the last N runtime events with monotonic ids, read by the
//! management API (`/events`, `/events/stream`). Writers are any thread;
//! readers copy out under the lock and never do I/O while holding it.

use parking_lot::{Condvar, Mutex};
use serde::Serialize;
use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

/// One event, in the shape of CONTRACT §5 EVENT.
#[derive(Clone, Debug, Serialize)]
pub struct Event {
    pub id: u64,
    pub time: String,
    pub level: Level,
    pub kind: String,
    pub backend: Option<String>,
    pub message: String,
}

pub struct EventRing {
    inner: Mutex<Inner>,
    cond: Condvar,
}

struct Inner {
    buf: VecDeque<Event>,
    cap: usize,
    last_id: u64,
}

impl EventRing {
    pub fn new(cap: usize) -> EventRing {
        EventRing {
            inner: Mutex::new(Inner { buf: VecDeque::with_capacity(cap.min(1024)), cap: cap.max(1), last_id: 0 }),
            cond: Condvar::new(),
        }
    }

    /// Appends an event (and mirrors it to the log). Returns its id.
    pub fn push(&self, level: Level, kind: &str, backend: Option<&str>, message: impl Into<String>) -> u64 {
        let message = message.into();
        let lvl = match level {
            Level::Debug => log::Level::Debug,
            Level::Info => log::Level::Info,
            Level::Warn => log::Level::Warn,
            Level::Error => log::Level::Error,
        };
        match backend {
            Some(b) => log::log!(lvl, "[{kind}] backend {b}: {message}"),
            None => log::log!(lvl, "[{kind}] {message}"),
        }
        let mut g = self.inner.lock();
        g.last_id += 1;
        let ev = Event {
            id: g.last_id,
            time: crate::util::rfc3339(SystemTime::now()),
            level,
            kind: kind.to_owned(),
            backend: backend.map(str::to_owned),
            message,
        };
        if g.buf.len() == g.cap {
            g.buf.pop_front();
        }
        g.buf.push_back(ev);
        let id = g.last_id;
        drop(g);
        self.cond.notify_all();
        id
    }

    pub fn last_id(&self) -> u64 {
        self.inner.lock().last_id
    }

    /// Events with id > `after`, at most `limit`, oldest first.
    pub fn since(&self, after: u64, limit: usize) -> Vec<Event> {
        let g = self.inner.lock();
        g.buf.iter().filter(|e| e.id > after).take(limit).cloned().collect()
    }

    /// The oldest id still held (0 when empty): a reader whose cursor is
    /// below it has missed events.
    pub fn first_id(&self) -> u64 {
        self.inner.lock().buf.front().map_or(0, |e| e.id)
    }

    /// Blocks until an event with id > `after` exists or `timeout` passes.
    pub fn wait_after(&self, after: u64, timeout: Duration) -> bool {
        let mut g = self.inner.lock();
        if g.last_id > after {
            return true;
        }
        let _ = self.cond.wait_for(&mut g, timeout);
        g.last_id > after
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_increase_and_ring_drops_oldest() {
        let r = EventRing::new(3);
        for i in 0..5 {
            assert_eq!(r.push(Level::Info, "k", None, format!("m{i}")), i + 1);
        }
        let all = r.since(0, 100);
        assert_eq!(all.iter().map(|e| e.id).collect::<Vec<_>>(), vec![3, 4, 5]);
        assert_eq!(r.first_id(), 3);
        assert_eq!(r.since(4, 100).len(), 1);
        assert_eq!(r.since(0, 2).len(), 2);
        assert!(r.wait_after(4, Duration::from_millis(1)));
        assert!(!r.wait_after(5, Duration::from_millis(1)));
    }
}
