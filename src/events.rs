//! The event ring: the last N runtime events with monotonic ids, read by the
//! management API (`/events`, `/events/stream`). Writers are any thread;
//! readers copy out under the lock and never do I/O while holding it.
//! Live readers subscribe with an [`EventSink`]: each new event is handed
//! to it after the ring's lock is released, in id order, with no gap
//! between the backlog it asked for and the live events. Events are kept
//! in the shape the API sends them ([`Event`], EVENT).

use crate::api::Event;
use parking_lot::{Condvar, Mutex};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// A live reader of events (an `/events/stream` client). `deliver` must
/// not block; returning false unsubscribes it.
pub trait EventSink: Send + Sync {
    fn deliver(&self, ev: &Event) -> bool;
}

struct Subscriber {
    /// The id of the last event delivered; also serializes deliveries.
    cursor: Mutex<u64>,
    sink: Arc<dyn EventSink>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    /// EVENT's `level`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

/// Longest event message kept (characters); the rest is cut with a note.
const MAX_MESSAGE: usize = 1000;

pub struct EventRing {
    inner: Mutex<Inner>,
    cond: Condvar,
    subscribers: Mutex<Vec<Arc<Subscriber>>>,
    /// Held across one push, from numbering to delivery, so subscribers
    /// see events in id order.
    publishing: Mutex<()>,
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
            subscribers: Mutex::new(Vec::new()),
            publishing: Mutex::new(()),
        }
    }

    /// Subscribes `sink` to every event after `after`: the ones the ring
    /// still holds first, then each new one as it is pushed.
    pub fn subscribe(&self, after: u64, sink: Arc<dyn EventSink>) {
        let sub = Arc::new(Subscriber { cursor: Mutex::new(after), sink });
        // Hold the subscriber's cursor while taking the backlog and
        // registering, so a concurrent push waits for the backlog first.
        let mut cursor = sub.cursor.lock();
        let backlog: Vec<Event> = {
            let g = self.inner.lock();
            self.subscribers.lock().push(sub.clone());
            g.buf.iter().filter(|e| e.id > after).cloned().collect()
        };
        for ev in &backlog {
            if !sub.sink.deliver(ev) {
                drop(cursor);
                self.unsubscribe(&sub);
                return;
            }
            *cursor = ev.id;
        }
    }

    fn unsubscribe(&self, sub: &Arc<Subscriber>) {
        self.subscribers.lock().retain(|s| !Arc::ptr_eq(s, sub));
    }

    /// Live subscribers (open event streams).
    pub fn subscriber_count(&self) -> usize {
        self.subscribers.lock().len()
    }

    fn publish(&self, ev: &Event) {
        let subs: Vec<Arc<Subscriber>> = self.subscribers.lock().clone();
        for sub in subs {
            let mut cursor = sub.cursor.lock();
            if ev.id <= *cursor {
                continue;
            }
            if sub.sink.deliver(ev) {
                *cursor = ev.id;
            } else {
                drop(cursor);
                self.unsubscribe(&sub);
            }
        }
    }

    /// Appends an event (and mirrors it to the log). Returns its id.
    pub fn push(&self, level: Level, kind: &str, backend: Option<&str>, message: impl Into<String>) -> u64 {
        // Events are read with a read token and mirrored to the log: no
        // expanded secret, no control character, no unbounded length.
        let message = crate::util::printable(&crate::config::hide_expanded(&message.into()), MAX_MESSAGE);
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
        let _order = self.publishing.lock();
        let mut g = self.inner.lock();
        g.last_id += 1;
        let ev = Event {
            id: g.last_id,
            time: crate::util::rfc3339(SystemTime::now()),
            level: level.as_str().to_owned(),
            kind: kind.to_owned(),
            backend: backend.map(str::to_owned),
            message,
        };
        if g.buf.len() == g.cap {
            g.buf.pop_front();
        }
        g.buf.push_back(ev.clone());
        let id = g.last_id;
        drop(g);
        self.cond.notify_all();
        self.publish(&ev);
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
