//! Client sessions: one per `/sse` stream or per Streamable HTTP
//! `Mcp-Session-Id`. Each has its own id space (client ids are mapped to
//! backend ids per call), at most one event stream that messages for the
//! client are written to (bounded in bytes: a client that stops reading
//! loses its session instead of growing the gateway's memory), and a table
//! of in-flight calls so that a cancel or a disconnect reaches the right
//! backend request.

use crate::backend::Conn;
use crate::codec::Id;
use crate::http::Stream;
use parking_lot::{Mutex, RwLock};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A Streamable HTTP session that made no request after `initialize` is
/// dropped after this (clients that probe and leave without DELETE).
pub const UNUSED_TTL: Duration = Duration::from_secs(60);

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
    /// The stream messages for the client go to (the `/sse` stream, or the
    /// `GET /mcp` stream), with a number telling one attachment from the next.
    stream: Mutex<Option<(u64, Stream)>>,
    stream_gen: AtomicU64,
    pub closed: AtomicBool,
    /// client request id → (backend connection, backend request id)
    inflight: Mutex<HashMap<Id, (Arc<Conn>, i64)>>,
    last_active: Mutex<Instant>,
    /// Requests after `initialize` (0: an unused session).
    requests: AtomicU64,
    /// Most calls in flight at once (one client cannot hold every backend slot).
    max_inflight: usize,
}

thread_local! {
    /// Encoding buffer reused across pushes on each thread.
    static EVENT_BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Why a call could not be tracked.
#[derive(Debug, PartialEq, Eq)]
pub enum TrackError {
    /// The client id is already in flight in this session.
    Duplicate,
    /// The session has as many calls in flight as it may.
    TooMany(usize),
}

impl Session {
    fn new(id: Arc<str>, transport: Transport, version: &str, max_inflight: usize) -> Session {
        Session {
            id,
            transport,
            version: Mutex::new(version.to_owned()),
            initialized: AtomicBool::new(false),
            stream: Mutex::new(None),
            stream_gen: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            inflight: Mutex::new(HashMap::new()),
            last_active: Mutex::new(Instant::now()),
            requests: AtomicU64::new(0),
            max_inflight,
        }
    }

    pub fn version(&self) -> String {
        self.version.lock().clone()
    }

    /// A number for the next stream to attach, known before it is attached
    /// (its close hook needs it: see [`Session::detach`]).
    pub fn next_stream_number(&self) -> u64 {
        self.stream_gen.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Attaches the stream messages go to, replacing (and closing) any
    /// earlier one.
    pub fn attach(&self, n: u64, stream: Stream) {
        let old = self.stream.lock().replace((n, stream));
        drop(old);
    }

    /// Forgets stream `n` if it is still the attached one (its client left).
    pub fn detach(&self, n: u64) {
        let old = {
            let mut g = self.stream.lock();
            if g.as_ref().is_some_and(|(m, _)| *m == n) {
                g.take()
            } else {
                None
            }
        };
        drop(old);
    }

    /// A stream is attached and open.
    pub fn has_stream(&self) -> bool {
        self.stream.lock().as_ref().is_some_and(|(_, s)| s.is_open())
    }

    /// Sends one serialized message to the client's stream as an SSE
    /// `message` event. A client too far behind (its stream's byte bound)
    /// or gone loses the session: its backlog cannot grow and no backend
    /// reader ever waits for it.
    pub fn push(&self, msg: Vec<u8>) -> bool {
        self.push_event(Some("message"), &msg)
    }

    /// Sends one SSE event with this `event` name and data.
    pub fn push_event(&self, event: Option<&str>, data: &[u8]) -> bool {
        if self.closed.load(Ordering::Relaxed) {
            return false;
        }
        let sent = EVENT_BUF.with(|b| {
            let mut buf = b.borrow_mut();
            buf.clear();
            crate::codec::sse::encode_event_bytes(&mut buf, event, None, data);
            let g = self.stream.lock();
            let r = match g.as_ref() {
                Some((_, s)) => s.send(&buf).is_ok(),
                None => return None,
            };
            if buf.capacity() > 64 * 1024 {
                *buf = Vec::new();
            }
            Some(r)
        });
        match sent {
            Some(true) => true,
            None => false,
            Some(false) => {
                log::warn!("session {}: the client is not reading its stream (or left); closing the session", self.id);
                self.close();
                false
            }
        }
    }

    /// Queues an unsolicited message (list_changed): only to an initialized
    /// session with a stream attached.
    pub fn notify(&self, msg: Vec<u8>) {
        if self.initialized.load(Ordering::Relaxed) && self.has_stream() {
            self.push(msg);
        }
    }

    /// Marks activity: resets the idle clock.
    pub fn touch(&self) {
        *self.last_active.lock() = Instant::now();
    }

    /// Counts a request (other than `initialize`): the session is in use.
    pub fn count_request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    pub fn idle_for(&self) -> Duration {
        self.last_active.lock().elapsed()
    }

    /// Whether the session ever made a request after `initialize`.
    pub fn used(&self) -> bool {
        self.requests.load(Ordering::Relaxed) > 0
    }

    /// Records an in-flight call.
    pub fn track_new(&self, client_id: Id, conn: Arc<Conn>, backend_id: i64) -> Result<(), TrackError> {
        use std::collections::hash_map::Entry;
        let mut g = self.inflight.lock();
        if g.len() >= self.max_inflight {
            return Err(TrackError::TooMany(self.max_inflight));
        }
        match g.entry(client_id) {
            Entry::Occupied(_) => Err(TrackError::Duplicate),
            Entry::Vacant(v) => {
                v.insert((conn, backend_id));
                Ok(())
            }
        }
    }

    pub fn untrack(&self, client_id: &Id) -> Option<(Arc<Conn>, i64)> {
        self.inflight.lock().remove(client_id)
    }

    pub fn in_flight(&self) -> usize {
        self.inflight.lock().len()
    }

    /// Marks the session closed, closes its stream and cancels its
    /// in-flight backend calls. Idempotent.
    pub fn close(&self) {
        if self.closed.swap(true, Ordering::Relaxed) {
            return;
        }
        let stream = self.stream.lock().take();
        drop(stream);
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
    max_inflight: usize,
}

/// Why a session could not be created.
#[derive(Debug)]
pub enum CreateError {
    /// The table is full of sessions that are all in use.
    Full(usize),
    /// The operating system's random source failed (no secure id).
    Random(std::io::Error),
}

impl std::fmt::Display for CreateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CreateError::Full(n) => write!(f, "too many sessions ({n} in use)"),
            CreateError::Random(e) => write!(f, "cannot create a session id: the random source failed: {e}"),
        }
    }
}

impl SessionTable {
    pub fn new(max: usize, max_inflight: usize) -> SessionTable {
        SessionTable { map: RwLock::new(HashMap::new()), max, max_inflight }
    }

    /// A new session. At the bound, the Streamable HTTP session idle the
    /// longest (no stream, no call in flight) is dropped to make room:
    /// clients that never send DELETE cannot lock new ones out. Legacy SSE
    /// sessions live as long as their stream and are never evicted.
    pub fn create(&self, transport: Transport, version: &str) -> Result<Arc<Session>, CreateError> {
        let id: Arc<str> = crate::util::random_hex(16).map_err(CreateError::Random)?.into();
        let s = Arc::new(Session::new(id.clone(), transport, version, self.max_inflight));
        let evicted = {
            let mut m = self.map.write();
            let mut evicted = None;
            if m.len() >= self.max {
                let victim = m
                    .values()
                    .filter(|s| s.transport == Transport::Streamable && !s.has_stream() && s.in_flight() == 0)
                    .max_by_key(|s| s.idle_for())
                    .map(|s| s.id.clone());
                match victim {
                    Some(v) => evicted = m.remove(&v),
                    None => return Err(CreateError::Full(m.len())),
                }
            }
            m.insert(id, s.clone());
            evicted
        };
        if let Some(v) = evicted {
            log::info!("session table full: dropped session {}, idle for {:.0?}", v.id, v.idle_for());
            v.close();
        }
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

    /// Drops Streamable HTTP sessions with no stream attached and no call in
    /// flight that are idle longer than `ttl`, or longer than
    /// [`UNUSED_TTL`] if they never made a request after `initialize`. (An
    /// SSE session lives exactly as long as its stream.)
    pub fn expire(&self, ttl: Duration) -> usize {
        let stale: Vec<Arc<str>> = self
            .map
            .read()
            .values()
            .filter(|s| {
                let limit = if s.used() { ttl } else { ttl.min(UNUSED_TTL) };
                s.transport == Transport::Streamable && !s.has_stream() && s.in_flight() == 0 && s.idle_for() > limit
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
    fn the_table_evicts_the_longest_idle_streamable_session_when_full() {
        let t = SessionTable::new(2, 8);
        let a = t.create(Transport::Streamable, "2025-06-18").expect("first");
        std::thread::sleep(Duration::from_millis(5));
        let b = t.create(Transport::Streamable, "2025-06-18").expect("second");
        b.touch();
        let c = t.create(Transport::Streamable, "2025-06-18").expect("third evicts the idlest");
        assert!(a.closed.load(Ordering::Relaxed));
        assert!(t.get(&a.id).is_none());
        assert!(t.get(&b.id).is_some() && t.get(&c.id).is_some());
        assert_eq!(t.counts(), (2, 0, 2));
    }

    #[test]
    fn sse_sessions_are_never_evicted() {
        let t = SessionTable::new(1, 8);
        let _a = t.create(Transport::Sse, "2024-11-05").expect("first");
        assert!(matches!(t.create(Transport::Sse, "2024-11-05"), Err(CreateError::Full(1))));
    }

    #[test]
    fn unused_sessions_expire_quickly_and_used_ones_at_the_ttl() {
        let t = SessionTable::new(8, 8);
        let unused = t.create(Transport::Streamable, "2025-06-18").expect("unused");
        let used = t.create(Transport::Streamable, "2025-06-18").expect("used");
        used.count_request();
        *unused.last_active.lock() -= UNUSED_TTL + Duration::from_secs(1);
        *used.last_active.lock() -= UNUSED_TTL + Duration::from_secs(1);
        assert_eq!(t.expire(Duration::from_secs(1800)), 1);
        assert!(t.get(&unused.id).is_none() && t.get(&used.id).is_some());
    }

    #[test]
    fn in_flight_calls_per_session_are_bounded() {
        let s = Session::new("s".into(), Transport::Streamable, "2025-06-18", 2);
        let (stx, _srx) = crossbeam_channel::bounded(1);
        let (conn, _rx) = Conn::new("b".into(), 1, None, stx, Arc::default());
        assert_eq!(s.track_new(Id::Num(1), conn.clone(), 1), Ok(()));
        assert_eq!(s.track_new(Id::Num(1), conn.clone(), 2), Err(TrackError::Duplicate));
        assert_eq!(s.track_new(Id::Num(2), conn.clone(), 3), Ok(()));
        assert_eq!(s.track_new(Id::Num(3), conn, 4), Err(TrackError::TooMany(2)));
    }
}
