//! Client sessions: one per `/sse` stream or per Streamable HTTP
//! `Mcp-Session-Id`. Each has its own id space (client ids are mapped to
//! backend ids per call), its own bounded outbox read by exactly one stream
//! writer, and a table of in-flight calls so that a cancel or a disconnect
//! reaches the right backend request.

use crate::backend::Conn;
use crate::codec::Id;
use crossbeam_channel::{unbounded, Receiver, Sender};
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Messages a session's stream may hold before the client is deemed stuck.
const OUTBOX_CAP: usize = 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Sse,
    Streamable,
}

pub struct Session {
    pub id: Arc<str>,
    pub transport: Transport,
    /// Negotiated revision (set by initialize).
    pub version: Mutex<String>,
    /// `notifications/initialized` seen: only then may we notify it.
    pub initialized: AtomicBool,
    outbox_tx: Sender<Vec<u8>>,
    outbox_rx: Receiver<Vec<u8>>,
    /// A stream writer is attached (always for SSE; the GET stream for
    /// Streamable HTTP). Unsolicited messages are dropped without one.
    pub stream_attached: AtomicBool,
    pub closed: AtomicBool,
    /// client request id → (backend connection, backend request id)
    inflight: Mutex<HashMap<Id, (Arc<Conn>, i64)>>,
    last_active: Mutex<Instant>,
}

impl Session {
    fn new(id: Arc<str>, transport: Transport, version: &str) -> Session {
        // Unbounded in type, bounded by `push`: an array channel of OUTBOX_CAP
        // slots would allocate 32 KiB up front for every session, almost
        // all of it never used; the list channel allocates as it fills.
        let (outbox_tx, outbox_rx) = unbounded();
        Session {
            id,
            transport,
            version: Mutex::new(version.to_owned()),
            initialized: AtomicBool::new(false),
            outbox_tx,
            outbox_rx,
            stream_attached: AtomicBool::new(transport == Transport::Sse),
            closed: AtomicBool::new(false),
            inflight: Mutex::new(HashMap::new()),
            last_active: Mutex::new(Instant::now()),
        }
    }

    pub fn version(&self) -> String {
        self.version.lock().clone()
    }

    /// Queues one serialized message for the session's stream. A full
    /// outbox means the client stopped reading: the session is closed
    /// rather than letting its backlog grow or block a backend reader.
    pub fn push(&self, msg: Vec<u8>) -> bool {
        if self.closed.load(Ordering::Relaxed) {
            return false;
        }
        // Several producers may pass this check at once, so the bound can be
        // overshot by the number of backends: still bounded.
        if self.outbox_tx.len() >= OUTBOX_CAP {
            log::warn!("session {}: client is not reading its stream; closing it", self.id);
            self.close();
            return false;
        }
        self.outbox_tx.send(msg).is_ok()
    }

    /// Queues an unsolicited message (list_changed): only to an initialized
    /// session with a stream attached.
    pub fn notify(&self, msg: Vec<u8>) {
        if self.initialized.load(Ordering::Relaxed) && self.stream_attached.load(Ordering::Relaxed) {
            self.push(msg);
        }
    }

    /// The receiving end, for the one stream writer.
    pub fn outbox(&self) -> &Receiver<Vec<u8>> {
        &self.outbox_rx
    }

    pub fn touch(&self) {
        *self.last_active.lock() = Instant::now();
    }

    pub fn idle_for(&self) -> Duration {
        self.last_active.lock().elapsed()
    }

    /// Records an in-flight call; false if the client id is already in
    /// flight in this session (JSON-RPC ids must not be reused).
    pub fn track_new(&self, client_id: Id, conn: Arc<Conn>, backend_id: i64) -> bool {
        use std::collections::hash_map::Entry;
        match self.inflight.lock().entry(client_id) {
            Entry::Occupied(_) => false,
            Entry::Vacant(v) => {
                v.insert((conn, backend_id));
                true
            }
        }
    }

    pub fn untrack(&self, client_id: &Id) -> Option<(Arc<Conn>, i64)> {
        self.inflight.lock().remove(client_id)
    }

    /// Marks the session closed and cancels its in-flight backend calls.
    pub fn close(&self) {
        if self.closed.swap(true, Ordering::Relaxed) {
            return;
        }
        let calls: Vec<_> = self.inflight.lock().drain().collect();
        for (_, (conn, bid)) in calls {
            conn.cancel(bid, "client session closed");
        }
    }
}

/// All live sessions, bounded by `max`.
pub struct SessionTable {
    map: RwLock<HashMap<Arc<str>, Arc<Session>>>,
    max: usize,
}

#[derive(Debug)]
pub struct TooManySessions;

impl SessionTable {
    pub fn new(max: usize) -> SessionTable {
        SessionTable { map: RwLock::new(HashMap::new()), max }
    }

    pub fn create(&self, transport: Transport, version: &str) -> Result<Arc<Session>, TooManySessions> {
        let id: Arc<str> = match crate::util::random_hex(16) {
            Ok(s) => s.into(),
            Err(e) => {
                log::error!("cannot read /dev/urandom for a session id: {e}");
                return Err(TooManySessions);
            }
        };
        let s = Arc::new(Session::new(id.clone(), transport, version));
        let mut m = self.map.write();
        if m.len() >= self.max {
            return Err(TooManySessions);
        }
        m.insert(id, s.clone());
        Ok(s)
    }

    pub fn get(&self, id: &str) -> Option<Arc<Session>> {
        self.map.read().get(id).cloned()
    }

    pub fn remove(&self, id: &str) -> Option<Arc<Session>> {
        let s = self.map.write().remove(id);
        if let Some(s) = &s {
            s.close();
        }
        s
    }

    pub fn all(&self) -> Vec<Arc<Session>> {
        self.map.read().values().cloned().collect()
    }

    /// (total, sse, streamable)
    pub fn counts(&self) -> (usize, usize, usize) {
        let m = self.map.read();
        let sse = m.values().filter(|s| s.transport == Transport::Sse).count();
        (m.len(), sse, m.len() - sse)
    }

    /// Drops Streamable HTTP sessions idle longer than `ttl` with no stream
    /// attached (an SSE session lives exactly as long as its stream).
    pub fn expire(&self, ttl: Duration) -> usize {
        let stale: Vec<Arc<str>> = self
            .map
            .read()
            .values()
            .filter(|s| {
                s.transport == Transport::Streamable && !s.stream_attached.load(Ordering::Relaxed) && s.idle_for() > ttl
            })
            .map(|s| s.id.clone())
            .collect();
        for id in &stale {
            self.remove(id);
        }
        stale.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_that_stops_reading_gets_its_session_closed_not_a_growing_backlog() {
        let s = Session::new("s1".into(), Transport::Sse, "2024-11-05");
        for i in 0..OUTBOX_CAP {
            assert!(s.push(format!("{i}").into_bytes()), "message {i} should queue");
        }
        assert!(!s.push(b"one too many".to_vec()));
        assert!(s.closed.load(Ordering::Relaxed));
        assert_eq!(s.outbox().len(), OUTBOX_CAP);
        assert!(!s.push(b"after close".to_vec()));
    }

    #[test]
    fn the_table_refuses_sessions_beyond_its_bound_and_frees_a_slot_on_remove() {
        let t = SessionTable::new(2);
        let a = t.create(Transport::Streamable, "2025-06-18").expect("first");
        let _b = t.create(Transport::Sse, "2024-11-05").expect("second");
        assert!(t.create(Transport::Sse, "2024-11-05").is_err());
        assert_eq!(t.counts(), (2, 1, 1));
        assert!(t.remove(&a.id).is_some());
        assert!(a.closed.load(Ordering::Relaxed));
        assert!(t.get(&a.id).is_none());
        assert!(t.create(Transport::Sse, "2024-11-05").is_ok());
    }
}
