//! `"per_session": true` backends: besides the shared connection (which the
//! supervisor keeps for discovery, health and list changes), each client
//! session that calls the backend gets a connection of its own: a process
//! of its own for stdio, its own HTTP session for remote servers. So the
//! backend's requests and logs always reach the right client, and a
//! stateful server (memory, sequential-thinking) keeps clients apart.
//!
//! An instance starts on the session's first call, on a thread of its own
//! (`backend:<name>:inst`, which ends with the handshake): the call waits
//! for it without holding a thread. At most `max_instances` exist at once;
//! an instance ends when its session ends (the admin tick) or when it dies
//! (the session's next call starts a new one). Each is bounded like any
//! connection: its calls time out, and it is never restarted in a loop.

use super::conn::{Conn, ConnSpec};
use super::error::BackendError;
use super::handshake;
use crate::codec::{code, ErrorObj};
use crate::config::{Protocol, Transport};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;

/// What a call waiting for its session's instance is given.
pub type Ready = Box<dyn FnOnce(Result<Arc<Conn>, ErrorObj>) + Send>;

enum Slot {
    Up(Arc<Conn>),
    /// Starting: these calls wait for it.
    Starting(Vec<Ready>),
}

/// The instances of one backend, by client session id.
#[derive(Default)]
pub struct Instances {
    map: Mutex<HashMap<Arc<str>, Slot>>,
}

impl Instances {
    /// Calls `ready` with `session`'s connection: now if it is up, else
    /// once it has started (or failed to). `start` opens and initializes a
    /// new connection; it runs on a thread of its own.
    pub fn with(
        self: &Arc<Self>,
        backend: &str,
        session: &Arc<str>,
        max: usize,
        start: impl FnOnce() -> Result<Arc<Conn>, BackendError> + Send + 'static,
        ready: Ready,
    ) {
        {
            let mut m = self.map.lock();
            match m.get_mut(session) {
                Some(Slot::Up(c)) if c.is_alive() => {
                    let c = c.clone();
                    drop(m);
                    return ready(Ok(c));
                }
                Some(Slot::Starting(waiting)) => return waiting.push(ready),
                // Dead: a new one replaces it.
                Some(Slot::Up(_)) | None => {}
            }
            m.retain(|_, s| !matches!(s, Slot::Up(c) if !c.is_alive()));
            if m.len() >= max {
                drop(m);
                let msg = format!(
                    "backend '{backend}' has its most client sessions ({max}, \"max_instances\"); try again when one ends"
                );
                return ready(Err(ErrorObj::new(code::BACKEND_UNAVAILABLE, msg)));
            }
            m.insert(session.clone(), Slot::Starting(vec![ready]));
        }
        let (me, sid, name) = (self.clone(), session.clone(), backend.to_owned());
        let spawned = crate::thread::spawn(format!("backend:{backend}:inst"), move || {
            let r = start();
            me.started(&name, &sid, r);
            Ok(())
        });
        if let Err(e) = spawned {
            let e = BackendError::open(&backend.into(), format!("cannot start a thread: {e}"));
            self.started(backend, session, Err(e));
        }
    }

    fn started(&self, backend: &str, session: &Arc<str>, r: Result<Arc<Conn>, BackendError>) {
        let waiting = {
            let mut m = self.map.lock();
            let waiting = match m.remove(session) {
                Some(Slot::Starting(w)) => w,
                // Closed meanwhile (the session ended): nobody waits.
                _ => Vec::new(),
            };
            match &r {
                Ok(c) if !waiting.is_empty() => {
                    m.insert(session.clone(), Slot::Up(c.clone()));
                }
                _ => {}
            }
            waiting
        };
        match r {
            Ok(c) if waiting.is_empty() => c.close("its client session ended"),
            Ok(c) => {
                log::info!("backend '{backend}': started an instance for session {session}");
                for w in waiting {
                    w(Ok(c.clone()));
                }
            }
            Err(e) => {
                log::warn!("backend '{backend}': cannot start an instance for session {session}: {e}");
                let err = ErrorObj::new(code::BACKEND_UNAVAILABLE, format!("backend '{backend}' {e}"));
                for w in waiting {
                    w(Err(err.clone()));
                }
            }
        }
    }

    /// Ends the instances of sessions that are gone.
    pub fn prune(&self, live: impl Fn(&str) -> bool) {
        let gone: Vec<Arc<Conn>> = {
            let mut m = self.map.lock();
            let ids: Vec<Arc<str>> = m.keys().filter(|k| !live(k)).cloned().collect();
            ids.iter()
                .filter_map(|k| match m.remove(k) {
                    Some(Slot::Up(c)) => Some(c),
                    // Waiting calls belong to the gone session: dropped
                    // with it (their sinks answer nobody).
                    _ => None,
                })
                .collect()
        };
        for c in gone {
            c.close("its client session ended");
        }
    }

    /// Ends every instance (the backend stops).
    pub fn close_all(&self) {
        self.prune(|_| false);
    }

    /// Live instances.
    pub fn count(&self) -> usize {
        self.map.lock().values().filter(|s| matches!(s, Slot::Up(c) if c.is_alive())).count()
    }
}

/// Opens one instance: connect and the era handshake (no discovery:
/// the shared connection keeps the catalog).
pub fn open(spec: &ConnSpec, transport: &Transport, protocol: Protocol) -> Result<Arc<Conn>, BackendError> {
    let conn = handshake::open_transport(spec, transport)?;
    match handshake::connect(&conn, transport, protocol, spec.timeout) {
        Ok(_) => Ok(conn),
        Err(e) => {
            conn.close(&e.to_string());
            Err(e)
        }
    }
}
