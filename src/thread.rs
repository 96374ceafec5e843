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
