//! Client sessions: one per `/sse` stream or per Streamable HTTP
//! `Mcp-Session-Id`. A session has its own id space (client ids are mapped
//! to backend ids per call), what its client declared it can do, its log
//! level, the requests the gateway sent it on a backend's behalf (waiting
//! for answers, with deadlines), a table of its calls in flight (so a
//! cancel or a disconnect reaches the right backend request), and its event
//! stream: bounded in bytes (a client that stops reading loses its session
//! instead of growing the gateway's memory) and, on Streamable HTTP,
//! numbered and replayable after a reconnect ([`Channel`]).
//!
//! A session is, to backends, a [`ClientLink`] ([`crate::route`]); it knows
//! nothing of backends.

use crate::codec::jsonrpc::{self, Raw};
use crate::codec::{code, ErrorObj, Id, Message};
use crate::http::Stream;
use crate::route::{Answer, CallHandle, ClientCap, ClientLink};
pub use channel::{Channel, REPLAY_BYTES, REPLAY_EVENTS};
use parking_lot::{Mutex, RwLock};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod channel;

/// A Streamable HTTP session that made no request after `initialize` is
/// dropped after this (clients that probe and leave without DELETE).
pub const UNUSED_TTL: Duration = Duration::from_secs(60);
/// Finished response streams a session keeps for a late resume.
pub const KEPT_STREAMS: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Sse,
    Streamable,
    /// A 2026-07-28 `subscriptions/listen` stream: a session only in that
    /// it is a stream notifications go to; it lives as long as the stream.
    Listen,
}

/// What a `subscriptions/listen` stream asked for, and its id (the listen
/// request's JSON-RPC id, stamped on every notification it carries).
#[derive(Clone, Debug)]
pub struct ListenFilter {
    pub subscription_id: Raw,
    pub tools: bool,
    pub prompts: bool,
    pub resources: bool,
}

impl ListenFilter {
    /// Whether this stream carries notifications of `method`.
    pub fn admits(&self, method: &str) -> bool {
        use crate::codec::mcp::method as m;
        match method {
            m::TOOLS_CHANGED => self.tools,
            m::PROMPTS_CHANGED => self.prompts,
            m::RESOURCES_CHANGED => self.resources,
            // Only for the URIs subscribed on this stream (the table says).
            m::RESOURCE_UPDATED => true,
            _ => false,
        }
    }

    /// `msg` with `_meta.subscriptionId` set, as a listen stream carries it.
    pub fn stamp(&self, msg: &Message) -> Option<Message> {
        let Message::Notification { method, params } = msg else { return None };
        if !self.admits(method) {
            return None;
        }
        let key = crate::codec::mcp::meta::SUBSCRIPTION_ID;
        let id = jsonrpc::value_of(&self.subscription_id);
        let params = match params {
            Some(p) => {
                let meta = match jsonrpc::get_field(p, "_meta") {
                    Some(m) => jsonrpc::set_fields(m, &[(key, &self.subscription_id)])?,
                    None => jsonrpc::to_raw(&serde_json::json!({ key: id })),
                };
                jsonrpc::set_fields(p, &[("_meta", &meta)])?
            }
            None => jsonrpc::to_raw(&serde_json::json!({"_meta": { key: id }})),
        };
        Some(Message::Notification { method: method.clone(), params: Some(params) })
    }
}

/// What the client declared at `initialize` (the parts the gateway routes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientCaps {
    pub sampling: bool,
    pub elicitation: bool,
    pub elicitation_url: bool,
    pub roots: bool,
}

impl ClientCaps {
    /// From `initialize` params' `capabilities`.
    pub fn from_params(params: Option<&serde_json::Value>) -> ClientCaps {
        let caps = params.and_then(|p| p.get("capabilities"));
        let has = |k: &str| caps.and_then(|c| c.get(k)).is_some_and(|v| !v.is_null());
        let elic = caps.and_then(|c| c.get("elicitation"));
        // 2025-11-25: `{}` means form only; `url` must be listed.
        let url = elic.and_then(|e| e.get("url")).is_some_and(|v| !v.is_null());
        ClientCaps {
            sampling: has("sampling"),
            elicitation: has("elicitation"),
            elicitation_url: url,
            roots: has("roots"),
        }
    }

    pub fn has(&self, cap: ClientCap) -> bool {
        match cap {
            ClientCap::Sampling => self.sampling,
            ClientCap::Elicitation => self.elicitation,
            ClientCap::ElicitationUrl => self.elicitation_url,
            ClientCap::Roots => self.roots,
        }
    }
}

/// A request sent to the client on a backend's behalf, waiting for its answer.
struct Outstanding {
    answer: Answer,
    deadline: Instant,
    method: String,
}

pub struct Session {
    pub id: Arc<str>,
    pub transport: Transport,
    /// The view it was made on (`/mcp/<view>`, `/sse/<view>`); `None`: the
    /// whole catalog. Fixed for the session's life.
    pub view: Option<Arc<str>>,
    /// Negotiated revision (set by initialize).
    pub version: Mutex<String>,
    /// `notifications/initialized` seen: only then may we notify it.
    pub initialized: AtomicBool,
    caps: Mutex<ClientCaps>,
    /// The least severe log level wanted (`logging/setLevel`), as a rank.
    log_level: Mutex<Option<usize>>,
    /// The session's own stream (the `/sse` stream, or the `GET /mcp` one).
    stream: Mutex<Channel>,
    /// Response streams of Streamable HTTP calls, for a resume.
    channels: Mutex<VecDeque<Arc<Mutex<Channel>>>>,
    next_channel: AtomicU64,
    /// Which attachment of `stream` is current (a close hook of an older
    /// connection must not detach a newer one).
    attachment: AtomicU64,
    pub closed: AtomicBool,
    /// client request id → the call at its backend
    inflight: Mutex<HashMap<Id, Arc<dyn CallHandle>>>,
    /// Requests the gateway sent this client, by the id it gave them.
    outstanding: Mutex<HashMap<u64, Outstanding>>,
    /// Requests waiting for a client answer in every session of the table
    /// (shared with it), so that the admin tick looks for late ones only
    /// when there are any, instead of visiting every session each 100 ms.
    waiting: Arc<AtomicUsize>,
    next_request: AtomicU64,
    last_active: Mutex<Instant>,
    /// Requests after `initialize` (0: an unused session).
    requests: AtomicU64,
    /// Most calls in flight at once (one client cannot hold every backend slot).
    max_inflight: usize,
    /// A listen stream's filter (`Transport::Listen` only).
    listen: Mutex<Option<ListenFilter>>,
    /// The client's address (to bound listen streams per client).
    peer: Mutex<Option<std::net::IpAddr>>,
    /// Who opened the session (`server.auth`): later requests for it must
    /// come from the same identity.
    owner: Mutex<Option<Arc<crate::auth::data::Identity>>>,
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
            view: None,
            version: Mutex::new(version.to_owned()),
            initialized: AtomicBool::new(false),
            caps: Mutex::new(ClientCaps::default()),
            log_level: Mutex::new(None),
            stream: Mutex::new(Channel::new(0, transport == Transport::Streamable)),
            channels: Mutex::new(VecDeque::new()),
            next_channel: AtomicU64::new(1),
            attachment: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            inflight: Mutex::new(HashMap::new()),
            outstanding: Mutex::new(HashMap::new()),
            waiting: Arc::default(),
            next_request: AtomicU64::new(1),
            last_active: Mutex::new(Instant::now()),
            requests: AtomicU64::new(0),
            max_inflight,
            listen: Mutex::new(None),
            peer: Mutex::new(None),
            owner: Mutex::new(None),
        }
    }

    /// Makes this a listen stream with `filter` (ready for notifications).
    pub fn set_listen(&self, filter: ListenFilter, peer: Option<std::net::IpAddr>) {
        *self.listen.lock() = Some(filter);
        *self.peer.lock() = peer;
        self.initialized.store(true, Ordering::Relaxed);
    }

    pub fn peer(&self) -> Option<std::net::IpAddr> {
        *self.peer.lock()
    }

    /// Binds the session to the identity that opened it.
    pub fn set_owner(&self, owner: Option<Arc<crate::auth::data::Identity>>) {
        *self.owner.lock() = owner;
    }

    /// Whether a request by `who` may use this session: the same identity
    /// that opened it (both anonymous counts as the same).
    pub fn owned_by(&self, who: Option<&crate::auth::data::Identity>) -> bool {
        crate::auth::data::same(self.owner.lock().as_deref(), who)
    }

    /// The owner's label (`token:<name>`, `jwt:<sub>`), for logs.
    pub fn owner_label(&self) -> Option<String> {
        self.owner.lock().as_ref().map(|o| o.label())
    }

    /// Sends a notification as this session's stream carries it: a listen
    /// stream stamps its subscription id and drops what it did not ask for.
    fn deliver(&self, msg: &Message) {
        let listen = self.listen.lock().clone();
        match listen {
            Some(f) => {
                if let Some(m) = f.stamp(msg) {
                    self.push(m.to_bytes());
                }
            }
            None => {
                self.push(msg.to_bytes());
            }
        }
    }

    /// `notifications/initialized` seen: the client may get notifications.
    pub fn is_ready(&self) -> bool {
        self.initialized.load(Ordering::Relaxed)
    }

    pub fn version(&self) -> String {
        self.version.lock().clone()
    }

    /// Whether `v` is the negotiated revision (no copy, per request).
    pub fn version_is(&self, v: &str) -> bool {
        *self.version.lock() == v
    }

    /// Whether the client speaks a revision that resumes streams
    /// (2025-11-25 and later: priming event, `retry:`).
    pub fn resumable(&self) -> bool {
        self.transport == Transport::Streamable && self.version.lock().as_str() >= "2025-11-25"
    }

    pub fn set_caps(&self, caps: ClientCaps) {
        *self.caps.lock() = caps;
    }

    pub fn caps(&self) -> ClientCaps {
        *self.caps.lock()
    }

    /// `logging/setLevel`. Returns false for an unknown level.
    pub fn set_log_level(&self, level: &str) -> bool {
        match crate::route::log_rank(level) {
            Some(r) => {
                *self.log_level.lock() = Some(r);
                true
            }
            None => false,
        }
    }

    pub fn log_level(&self) -> Option<usize> {
        *self.log_level.lock()
    }

    /// Attaches the connection the session's own stream goes to, replacing
    /// (and closing) any earlier one, and sends what it must see first (see
    /// [`Channel::attach`]). When the connection closes the session
    /// forgets it. `false` if the connection is already gone.
    pub fn attach(self: &Arc<Self>, stream: Stream, after: Option<u64>) -> bool {
        let n = self.attachment.fetch_add(1, Ordering::Relaxed) + 1;
        let weak = Arc::downgrade(self);
        stream.on_close(Box::new(move || {
            if let Some(s) = weak.upgrade() {
                s.detach(n);
                s.touch();
            }
        }));
        let prime = self.resumable();
        let old = {
            let mut ch = self.stream.lock();
            let old = ch.take_live();
            if !ch.attach(stream, prime, after) {
                return false;
            }
            old
        };
        // Closed outside the lock: its close hook runs now and then.
        drop(old);
        true
    }

    /// Forgets attachment `n` if it is still the current one (its client left).
    fn detach(&self, n: u64) {
        if self.attachment.load(Ordering::Relaxed) == n {
            self.stream.lock().detach();
        }
    }

    /// A connection is attached to the session's own stream and open.
    pub fn has_stream(&self) -> bool {
        self.stream.lock().is_live()
    }

    /// Whether a notification for the session's own stream goes out now or
    /// is kept for the client to get by resuming (`GET` with
    /// `Last-Event-ID`): a connection is attached, or this Streamable HTTP
    /// session's GET stream was open before and its client may come back
    /// (after a drop, or as the `retry:` of the priming event tells it).
    /// Its events are numbered and only the last ones kept
    /// ([`REPLAY_EVENTS`], [`REPLAY_BYTES`]), so this costs bounded memory.
    pub fn takes_notifications(&self) -> bool {
        self.has_stream() || (self.transport == Transport::Streamable && self.attachment.load(Ordering::Relaxed) > 0)
    }

    /// A new response stream for a call (Streamable HTTP), kept for a
    /// resume by `Last-Event-ID`.
    pub fn new_channel(&self) -> Arc<Mutex<Channel>> {
        let n = self.next_channel.fetch_add(1, Ordering::Relaxed);
        let ch = Arc::new(Mutex::new(Channel::new(n, self.transport == Transport::Streamable)));
        let mut g = self.channels.lock();
        g.push_back(ch.clone());
        while g.len() > KEPT_STREAMS {
            g.pop_front();
        }
        ch
    }

    /// The stream an event id belongs to: 0 is the session's own.
    pub fn channel(&self, number: u64) -> Option<Arc<Mutex<Channel>>> {
        self.channels.lock().iter().find(|c| c.lock().number() == number).cloned()
    }

    /// Resumes response stream `number` on a new connection after event `after`.
    pub fn resume_channel(&self, number: u64, stream: Stream, after: u64) -> Result<(), Stream> {
        match self.channel(number) {
            Some(ch) => {
                ch.lock().attach(stream, false, Some(after));
                Ok(())
            }
            None => Err(stream),
        }
    }

    /// Sends one serialized message to the client's stream as an SSE
    /// `message` event. A client too far behind (its stream's byte bound)
    /// loses the session: its backlog cannot grow and no backend reader
    /// ever waits for it.
    pub fn push(&self, msg: Vec<u8>) -> bool {
        self.push_event(Some("message"), &msg)
    }

    /// Sends one SSE event with this `event` name and data.
    pub fn push_event(&self, event: Option<&str>, data: &[u8]) -> bool {
        if self.closed.load(Ordering::Relaxed) {
            return false;
        }
        let r = self.stream.lock().send(event, data);
        match r {
            Ok(()) => true,
            // A Streamable HTTP session outlives its GET stream: the
            // connection is dropped (its events stay for a resume), the
            // session goes on.
            Err(_) if self.transport == Transport::Streamable => {
                log::info!("session {}: its GET stream is gone or not read; dropped it", self.id);
                false
            }
            // A legacy session is its stream.
            Err(_) => {
                log::warn!("session {}: the client is not reading its stream (or left); closing the session", self.id);
                self.close();
                false
            }
        }
    }

    /// Queues an unsolicited message (list_changed): only to an initialized
    /// session with a stream attached, or kept for its resume
    /// ([`Session::takes_notifications`]).
    pub fn notify_all(&self, msg: Vec<u8>) {
        if self.initialized.load(Ordering::Relaxed) && self.takes_notifications() {
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
    pub fn track_new(&self, client_id: Id, call: Arc<dyn CallHandle>) -> Result<(), TrackError> {
        use std::collections::hash_map::Entry;
        let mut g = self.inflight.lock();
        if g.len() >= self.max_inflight {
            return Err(TrackError::TooMany(self.max_inflight));
        }
        match g.entry(client_id) {
            Entry::Occupied(_) => Err(TrackError::Duplicate),
            Entry::Vacant(v) => {
                v.insert(call);
                Ok(())
            }
        }
    }

    pub fn untrack(&self, client_id: &Id) -> Option<Arc<dyn CallHandle>> {
        self.inflight.lock().remove(client_id)
    }

    pub fn in_flight(&self) -> usize {
        self.inflight.lock().len()
    }

    /// Registers a request to the client; returns its id.
    pub fn register_request(&self, method: &str, timeout: Duration, answer: Answer) -> u64 {
        let id = self.next_request.fetch_add(1, Ordering::Relaxed);
        let o = Outstanding { answer, deadline: Instant::now() + timeout, method: method.to_owned() };
        // Counted before it can be answered, so the count never goes below zero.
        self.waiting.fetch_add(1, Ordering::Relaxed);
        if self.outstanding.lock().insert(id, o).is_some() {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
        }
        id
    }

    /// The client answered request `id` (a response or an error).
    /// False if no such request is waiting.
    pub fn answer(&self, id: &Id, r: Result<Raw, ErrorObj>) -> bool {
        let n = match id {
            Id::Num(n) => u64::try_from(*n).ok(),
            Id::Str(s) => s.parse().ok(),
        };
        let Some(o) = n.and_then(|n| self.take_request(n)) else {
            return false;
        };
        (o.answer)(r);
        true
    }

    /// Forgets request `id` without telling anyone; false if it was not waiting.
    pub fn forget_request(&self, id: u64) -> bool {
        self.take_request(id).is_some()
    }

    /// Removes request `id` from those waiting for the client's answer.
    fn take_request(&self, id: u64) -> Option<Outstanding> {
        let o = self.outstanding.lock().remove(&id);
        if o.is_some() {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
        }
        o
    }

    /// Fails request `id` (it could not be sent) with `why`.
    pub fn fail_request(&self, id: u64, why: &str) {
        if let Some(o) = self.take_request(id) {
            (o.answer)(Err(ErrorObj::new(code::INTERNAL_ERROR, why.to_owned())));
        }
    }

    /// Forgets request `id` without an answer, telling the client.
    fn drop_request(&self, id: u64, reason: &str, tell_client: bool) -> Option<Outstanding> {
        let o = self.take_request(id)?;
        if tell_client {
            let p = serde_json::json!({"requestId": id, "reason": reason});
            self.push(Message::notification(crate::codec::mcp::method::CANCELLED, Some(p)).to_bytes());
        }
        Some(o)
    }

    /// Fails requests to the client past their deadline (admin tick).
    pub fn expire_requests(&self, now: Instant) {
        let late: Vec<u64> =
            self.outstanding.lock().iter().filter(|(_, o)| o.deadline <= now).map(|(id, _)| *id).collect();
        for id in late {
            if let Some(o) = self.drop_request(id, "timed out at the gateway", true) {
                let msg = format!("the client did not answer {} in time", o.method);
                (o.answer)(Err(ErrorObj::new(code::REQUEST_TIMEOUT, msg)));
            }
        }
    }

    /// Marks the session closed, closes its stream, cancels its in-flight
    /// backend calls and fails the requests waiting for the client.
    /// Idempotent.
    pub fn close(&self) {
        if self.closed.swap(true, Ordering::Relaxed) {
            return;
        }
        let live = self.stream.lock().take_live();
        drop(live);
        let calls: Vec<_> = self.inflight.lock().drain().collect();
        for (_, call) in calls {
            call.cancel("client session closed");
        }
        let waiting: Vec<Outstanding> = self.outstanding.lock().drain().map(|(_, o)| o).collect();
        self.waiting.fetch_sub(waiting.len(), Ordering::Relaxed);
        for o in waiting {
            (o.answer)(Err(ErrorObj::new(code::INTERNAL_ERROR, "the client session closed before answering")));
        }
    }

    /// Sends a request to the client on its own stream (see [`ClientLink`]).
    fn request_on_stream(&self, method: &str, params: Option<Raw>, timeout: Duration, answer: Answer) -> Option<u64> {
        if self.closed.load(Ordering::Relaxed) || !self.has_stream() {
            answer(Err(ErrorObj::new(
                code::INTERNAL_ERROR,
                format!("the client session has no stream open to send {method} on"),
            )));
            return None;
        }
        let id = self.register_request(method, timeout, answer);
        let msg = Message::Request { id: Id::Num(id as i64), method: method.to_owned(), params };
        if !self.push(msg.to_bytes()) {
            if let Some(o) = self.take_request(id) {
                (o.answer)(Err(ErrorObj::new(code::INTERNAL_ERROR, "the client session's stream is gone")));
            }
            return None;
        }
        Some(id)
    }
}

impl ClientLink for Session {
    fn session_id(&self) -> &str {
        &self.id
    }

    fn supports(&self, cap: ClientCap) -> bool {
        self.caps().has(cap)
    }

    fn request(&self, method: &str, params: Option<Raw>, timeout: Duration, answer: Answer) -> Option<u64> {
        self.request_on_stream(method, params, timeout, answer)
    }

    fn cancel_request(&self, id: u64, reason: &str) {
        self.drop_request(id, reason, true);
    }

    fn notify(&self, msg: &Message) {
        if self.takes_notifications() {
            self.deliver(msg);
        }
    }

    fn admits_log(&self, level: &str) -> bool {
        match (self.log_level(), crate::route::log_rank(level)) {
            (Some(min), Some(rank)) => rank >= min,
            _ => true,
        }
    }
}

/// All live sessions, bounded by `max`.
/// Which lists (tools, resources, prompts) changed for a client of a view
/// (`None`: the whole catalog).
pub type ListsChanged<'a> = dyn Fn(Option<&str>) -> (bool, bool, bool) + 'a;

pub struct SessionTable {
    map: RwLock<HashMap<Arc<str>, Arc<Session>>>,
    /// Requests to clients waiting for an answer, in all sessions.
    waiting: Arc<AtomicUsize>,
    max: usize,
    max_inflight: usize,
    /// Starts every session id: `"<server.instance_id>-"`, or empty.
    id_prefix: String,
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
        SessionTable {
            map: RwLock::new(HashMap::new()),
            waiting: Arc::default(),
            max,
            max_inflight,
            id_prefix: String::new(),
        }
    }

    /// Session ids made by this table start with `<instance_id>-`
    /// (`server.instance_id`), so that a load balancer can send every
    /// request of a session to the instance that made it.
    pub fn with_instance_id(mut self, instance_id: Option<&str>) -> SessionTable {
        self.id_prefix = instance_id.map(|i| format!("{i}-")).unwrap_or_default();
        self
    }

    /// A new session. At the bound, the Streamable HTTP session idle the
    /// longest (no stream, no call in flight) is dropped to make room:
    /// clients that never send DELETE cannot lock new ones out. Legacy SSE
    /// sessions live as long as their stream and are never evicted.
    pub fn create(&self, transport: Transport, version: &str) -> Result<Arc<Session>, CreateError> {
        self.create_in(transport, version, None)
    }

    /// [`SessionTable::create`] for a client of `view` (`None`: the whole
    /// catalog).
    pub fn create_in(
        &self,
        transport: Transport,
        version: &str,
        view: Option<&str>,
    ) -> Result<Arc<Session>, CreateError> {
        let hex = crate::util::random_hex(16).map_err(CreateError::Random)?;
        let id: Arc<str> = format!("{}{hex}", self.id_prefix).into();
        let mut session = Session::new(id.clone(), transport, version, self.max_inflight);
        session.view = view.map(Arc::from);
        session.waiting = self.waiting.clone();
        let s = Arc::new(session);
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
        let http = m.values().filter(|s| s.transport == Transport::Streamable).count();
        (sse + http, sse, http)
    }

    /// Drops Streamable HTTP sessions with no stream attached and no call in
    /// flight that are idle longer than `ttl`, or longer than
    /// [`UNUSED_TTL`] if they never made a request after `initialize`. (An
    /// SSE session lives exactly as long as its stream.) Also fails the
    /// requests to clients that are past their deadline.
    pub fn expire(&self, ttl: Duration) -> usize {
        self.expire_requests(Instant::now());
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

    /// Tells every initialized session with a stream which lists changed
    /// as its view sees them (`changed(view)`: tools, resources, prompts):
    /// one `list_changed` per changed kind.
    pub fn notify_list_changed(&self, changed: &ListsChanged<'_>) {
        use crate::codec::mcp::method;
        for s in self.all() {
            let (tools, resources, prompts) = changed(s.view.as_deref());
            let kinds = [
                (tools, method::TOOLS_CHANGED),
                (resources, method::RESOURCES_CHANGED),
                (prompts, method::PROMPTS_CHANGED),
            ];
            let msgs: Vec<Message> =
                kinds.iter().filter(|(changed, _)| *changed).map(|(_, m)| Message::notification(m, None)).collect();
            let bytes: Vec<Vec<u8>> = msgs.iter().map(Message::to_bytes).collect();
            if s.transport == Transport::Listen {
                for m in &msgs {
                    s.deliver(m);
                }
            } else {
                for b in &bytes {
                    s.notify_all(b.clone());
                }
            }
        }
    }

    /// Fails the requests to clients that are past their deadline. Runs
    /// every admin tick (100 ms): with none waiting anywhere (the usual
    /// case) it costs one atomic read, however many sessions are open.
    pub fn expire_requests(&self, now: Instant) {
        if self.waiting.load(Ordering::Relaxed) == 0 {
            return;
        }
        for s in self.all() {
            s.expire_requests(now);
        }
    }
}

/// The `params` of a message as raw JSON, for callers that build one.
pub fn raw(v: &serde_json::Value) -> Raw {
    jsonrpc::to_raw(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoCall;
    impl CallHandle for NoCall {
        fn cancel(&self, _: &str) {}
    }

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
    fn session_ids_start_with_the_instance_id() {
        let hex = |id: &str| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit());
        let plain = SessionTable::new(4, 8).with_instance_id(None);
        let id = plain.create(Transport::Streamable, "2025-06-18").expect("plain").id.clone();
        assert!(hex(&id), "{id}");
        let t = SessionTable::new(4, 8).with_instance_id(Some("gw_a"));
        let a = t.create(Transport::Streamable, "2025-06-18").expect("streamable");
        let b = t.create(Transport::Sse, "2024-11-05").expect("sse");
        for s in [&a, &b] {
            let rest = s.id.strip_prefix("gw_a-").unwrap_or_else(|| panic!("{} lacks the prefix", s.id));
            assert!(hex(rest), "{}", s.id);
            assert!(t.get(&s.id).is_some());
        }
        assert_ne!(a.id, b.id);
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
        assert_eq!(s.track_new(Id::Num(1), Arc::new(NoCall)), Ok(()));
        assert_eq!(s.track_new(Id::Num(1), Arc::new(NoCall)), Err(TrackError::Duplicate));
        assert_eq!(s.track_new(Id::Num(2), Arc::new(NoCall)), Ok(()));
        assert_eq!(s.track_new(Id::Num(3), Arc::new(NoCall)), Err(TrackError::TooMany(2)));
    }

    #[test]
    fn requests_to_the_client_are_answered_once_or_time_out_or_fail_at_close() {
        let s = Session::new("s".into(), Transport::Sse, "2024-11-05", 8);
        let got: Arc<Mutex<Vec<Result<String, i64>>>> = Arc::default();
        let rec = |got: &Arc<Mutex<Vec<Result<String, i64>>>>| -> Answer {
            let g = got.clone();
            Box::new(move |r| g.lock().push(r.map(|v| v.get().to_owned()).map_err(|e| e.code)))
        };
        let a = s.register_request("roots/list", Duration::from_secs(60), rec(&got));
        assert!(s.answer(&Id::Num(a as i64), Ok(raw(&serde_json::json!({"roots": []})))));
        assert!(!s.answer(&Id::Num(a as i64), Ok(raw(&serde_json::json!({})))), "answered once");
        let _b = s.register_request("sampling/createMessage", Duration::from_secs(0), rec(&got));
        s.expire_requests(Instant::now());
        let _c = s.register_request("elicitation/create", Duration::from_secs(60), rec(&got));
        s.close();
        assert_eq!(
            *got.lock(),
            vec![Ok(r#"{"roots":[]}"#.to_owned()), Err(code::REQUEST_TIMEOUT), Err(code::INTERNAL_ERROR)]
        );
    }

    #[test]
    fn client_capabilities_and_log_levels() {
        let p = serde_json::json!({"capabilities": {"sampling": {}, "elicitation": {"form": {}}, "roots": {"listChanged": true}}});
        let caps = ClientCaps::from_params(Some(&p));
        assert!(caps.sampling && caps.elicitation && caps.roots && !caps.elicitation_url);
        let s = Session::new("s".into(), Transport::Sse, "2024-11-05", 8);
        assert!(s.admits_log("debug"), "no level set: everything");
        assert!(s.set_log_level("warning"));
        assert!(!s.admits_log("info") && s.admits_log("error"));
        assert!(!s.set_log_level("loud"));
    }

    #[test]
    fn notifications_while_a_get_stream_is_away_are_kept_for_its_resume() {
        let note = Message::notification(crate::codec::mcp::method::TOOLS_CHANGED, None);
        let kept = |s: &Session| s.stream.lock().kept_len();
        // A Streamable HTTP session that never opened its GET stream: nothing to resume.
        let never = Session::new("a".into(), Transport::Streamable, "2025-11-25", 8);
        never.initialized.store(true, Ordering::Relaxed);
        never.notify(&note);
        never.notify_all(note.to_bytes());
        assert_eq!(kept(&never), 0);
        // One whose GET stream was attached once and is gone now: kept, numbered.
        let away = Session::new("b".into(), Transport::Streamable, "2025-11-25", 8);
        away.initialized.store(true, Ordering::Relaxed);
        away.attachment.store(1, Ordering::Relaxed);
        assert!(!away.has_stream() && away.takes_notifications());
        away.notify(&note);
        away.notify_all(note.to_bytes());
        assert_eq!(kept(&away), 2);
        assert!(!away.closed.load(Ordering::Relaxed), "keeping events must not cost the session");
        // Legacy SSE: the session is its stream; nothing is numbered or kept.
        let sse = Session::new("c".into(), Transport::Sse, "2024-11-05", 8);
        sse.attachment.store(1, Ordering::Relaxed);
        assert!(!sse.takes_notifications());
    }

    #[test]
    fn event_ids_parse() {
        assert_eq!(Channel::parse_id("s3-17"), Some((3, 17)));
        assert_eq!(Channel::parse_id("3-17"), None);
        assert_eq!(Channel::parse_id("s3"), None);
    }
}
