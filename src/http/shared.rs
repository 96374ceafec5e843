//! What the reactor shares with the connections it serves and with the
//! threads that answer on them: the listener's limits and the notice list
//! through which any thread asks the reactor to act on a connection (a
//! leaf, so that connections and the reactor do not depend on each other).

use super::Limits;
use mio::{Token, Waker};
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

/// Something another thread asks the reactor to do for a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Notice {
    /// The connection is free again and has input waiting: parse it.
    Resume,
    /// The connection was closed: run its hooks and forget it.
    Close,
}

/// State the reactor shares with responders and the `Server` handle.
pub(crate) struct Shared {
    pub(crate) limits: Limits,
    pub(super) waker: Waker,
    pub(super) notices: Mutex<Vec<(Token, u64, Notice)>>,
    pub(super) stopping: AtomicBool,
    pub(super) open: AtomicUsize,
    /// Accept failures for want of file descriptors (for the log and health).
    pub(crate) fd_refusals: AtomicU64,
    /// The reactor's thread: only it corks streams, as only it knows
    /// when it next wakes.
    pub(super) reactor: std::sync::OnceLock<ThreadId>,
    /// Corked streams by deadline (oldest first: one cork length for all,
    /// pushed in time order by the one reactor thread).
    pub(super) corked: Mutex<VecDeque<(Token, u64, Instant)>>,
}

impl Shared {
    /// Registers a stream to uncork after `d`; false (send at once) off
    /// the reactor's thread.
    pub(crate) fn cork(&self, token: Token, id: u64, d: Duration) -> bool {
        if self.reactor.get() != Some(&std::thread::current().id()) {
            return false;
        }
        self.corked.lock().push_back((token, id, Instant::now() + d));
        true
    }

    pub(crate) fn notify(&self, token: Token, id: u64, n: Notice) {
        self.notices.lock().push((token, id, n));
        let _ = self.waker.wake();
    }
}
