//! One helper to spawn named threads with small stacks (electrs style).
//! Names give role and instance, e.g. `backend:github:reader`, `sse:3f2a`.

use std::io;
use std::thread::{Builder, JoinHandle};

/// Stack size for I/O threads: they hold a parsed message at most, and
/// serde_json's recursion limit (128) keeps parsing within this.
pub const SMALL_STACK: usize = 256 * 1024;

/// Spawns a named thread. A thread body returning `Err` is logged with the
/// thread's name, so failures are never silent.
pub fn spawn<F>(name: String, f: F) -> io::Result<JoinHandle<()>>
where
    F: FnOnce() -> Result<(), String> + Send + 'static,
{
    let label = name.clone();
    Builder::new().name(name).stack_size(SMALL_STACK).spawn(move || {
        if let Err(e) = f() {
            log::error!("{label} thread failed: {e}");
        }
    })
}

/// Work put off to the end of the current batch (see [`batch`]).
type Deferred = Box<dyn FnOnce()>;

std::thread_local! {
    static BATCH: std::cell::RefCell<Option<Vec<Deferred>>> = const { std::cell::RefCell::new(None) };
}

/// Runs `f` as one batch: whatever it [`defer`]s runs right after it, on
/// this thread, in order. A reactor wraps each round of events in one, so
/// that messages for one backend written while serving many requests
/// leave in one write.
pub fn batch<R>(f: impl FnOnce() -> R) -> R {
    let outer = BATCH.with(|b| b.borrow_mut().replace(Vec::new()));
    let r = f();
    loop {
        let Some(work) = BATCH.with(|b| b.borrow_mut().as_mut().map(std::mem::take)) else { break };
        if work.is_empty() {
            break;
        }
        for w in work {
            w();
        }
    }
    BATCH.with(|b| *b.borrow_mut() = outer);
    r
}

/// Puts `f` off to the end of the current batch; `Err(f)` outside one
/// (the caller does the work now).
pub fn defer(f: Deferred) -> Result<(), Deferred> {
    BATCH.with(|b| match b.borrow_mut().as_mut() {
        Some(list) => {
            list.push(f);
            Ok(())
        }
        None => Err(f),
    })
}

/// Whether this thread is inside a [`batch`].
pub fn in_batch() -> bool {
    BATCH.with(|b| b.borrow().is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;

    #[test]
    fn deferred_work_runs_at_the_end_of_the_batch_in_order() {
        let log = Rc::new(RefCell::new(Vec::new()));
        assert!(defer(Box::new(|| {})).is_err(), "outside a batch");
        let l = log.clone();
        batch(|| {
            let (a, b) = (l.clone(), l.clone());
            assert!(defer(Box::new(move || a.borrow_mut().push("first"))).is_ok());
            assert!(defer(Box::new(move || {
                b.borrow_mut().push("second");
                // Deferred from deferred work: still in this batch.
                let c = b.clone();
                assert!(defer(Box::new(move || c.borrow_mut().push("third"))).is_ok());
            }))
            .is_ok());
            l.borrow_mut().push("body");
        });
        assert_eq!(*log.borrow(), vec!["body", "first", "second", "third"]);
        assert!(!in_batch());
    }
}
