//! One live connection to a backend, whatever its transport: the in-flight
//! table (gateway id → where the answer goes, original progress token,
//! deadline), id and progress-token remapping, and routing of what the
//! backend sends: answers and progress to their call's [`Sink`]; requests
//! (sampling, elicitation, roots) and log messages to the client of the
//! call they belong to; the rest to the [`Hub`].
//!
//! Transports own the I/O threads: they drain [`Outgoing`] from the channel
//! made by [`Conn::new`] (or give their own [`Outbox`], as stdio does to
//! write to the pipe from the sending thread) and feed every parsed message to
//! [`Conn::handle_incoming`] on their reader thread. No lock here is held
//! while a message is delivered: entries are taken out (or copied) first.

use super::stats::Stats;
use super::SupervisorMsg;
use crate::codec::jsonrpc::{self, Raw};
use crate::codec::mcp::method;
use crate::codec::{code, ErrorObj, Id, Message};
use crate::route::{Answer, CallHandle, CallSink, ClientCap, ClientLink, Hub};
use crossbeam_channel::{bounded, Receiver, Sender};
use parking_lot::Mutex;
use serde_json::json;
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// URL-mode elicitations remembered per connection for their completion.
const KEPT_ELICITATIONS: usize = 256;
/// Sent by a backend when a URL-mode elicitation finished out of band.
const ELICITATION_COMPLETE: &str = "notifications/elicitation/complete";

/// Messages queued for a backend's writer before senders are refused.
const OUT_CAP: usize = 1024;

/// One serialized message for the backend, with the request id it carries
/// (so an HTTP transport can fail exactly that call on an HTTP error).
pub struct Outgoing {
    pub bytes: Vec<u8>,
    pub request_id: Option<i64>,
    /// For a 2026-07-28 backend over HTTP: the routing headers it needs.
    pub headers: Option<Box<ModernHeaders>>,
}

/// The HTTP headers of a 2026-07-28 request (`Mcp-Method`, `Mcp-Name`,
/// and the client's W3C `traceparent`, passed on unchanged).
#[derive(Debug, Clone, Default)]
pub struct ModernHeaders {
    pub method: String,
    pub name: Option<String>,
    pub traceparent: Option<String>,
}

/// Where a connection's messages for its backend go. `send` never waits:
/// callers include the HTTP reactor.
pub trait Outbox: Send + Sync {
    fn send(&self, msg: Outgoing) -> Result<(), OutboxError>;
}

/// Why a message could not be sent.
pub enum OutboxError {
    /// The backend stopped reading; the text says how much is waiting.
    Full(String),
    Closed,
}

/// The HTTP transports' outbox: a bounded queue their threads drain.
impl Outbox for Sender<Outgoing> {
    fn send(&self, msg: Outgoing) -> Result<(), OutboxError> {
        self.try_send(msg).map_err(|e| match e {
            crossbeam_channel::TrySendError::Full(_) => OutboxError::Full(format!("{OUT_CAP} messages queued")),
            crossbeam_channel::TrySendError::Disconnected(_) => OutboxError::Closed,
        })
    }
}

/// What a waiting caller receives for one call.
#[derive(Debug)]
pub enum Reply {
    /// `notifications/progress` params, token already mapped back.
    Progress(Raw),
    Done(Result<Raw, ErrorObj>),
}

/// Where a call's progress and result go.
#[derive(Clone)]
pub enum Sink {
    /// A thread waits on the channel (the gateway's own calls).
    Chan(Sender<Reply>),
    /// A client's call ([`crate::route`]).
    Route(Arc<dyn CallSink>),
}

impl Sink {
    /// Fails the call before it reached a backend.
    pub fn fail(self, e: ErrorObj) {
        self.deliver(Reply::Done(Err(e)));
    }

    /// Answers the call.
    pub fn succeed(self, result: Raw) {
        self.deliver(Reply::Done(Ok(result)));
    }

    /// Passes on a progress notification's params.
    pub fn progress(self, params: Raw) {
        self.deliver(Reply::Progress(params));
    }

    fn deliver(self, reply: Reply) {
        match self {
            Sink::Chan(tx) => {
                let _ = tx.try_send(reply);
            }
            Sink::Route(r) => match reply {
                Reply::Progress(p) => r.progress(p),
                Reply::Done(d) => r.done(d),
            },
        }
    }

    fn client(&self) -> Option<Arc<dyn ClientLink>> {
        match self {
            Sink::Chan(_) => None,
            Sink::Route(r) => r.client(),
        }
    }
}

struct Pending {
    sink: Sink,
    progress_token: Option<Raw>,
    deadline: Instant,
    started: Instant,
    /// Counted in the backend's call metrics. The supervisor's liveness
    /// `ping` is not: a backend that answers it with -32601 would otherwise
    /// show an error every interval. (Clients' pings never reach a backend:
    /// the gateway answers them itself.)
    counted: bool,
}

/// A request the backend made that went on to a client.
struct Inbound {
    client: Arc<dyn ClientLink>,
    client_id: u64,
}

/// Tears the transport down (kills the child, ends the HTTP session) and
/// describes how it ended, e.g. "exit status: 3".
pub type Closer = Box<dyn FnOnce() -> Option<String> + Send>;

/// What every connection of one backend shares (from its supervisor).
#[derive(Clone)]
pub struct ConnSpec {
    pub backend: Arc<str>,
    pub generation: u64,
    pub supervisor: Sender<SupervisorMsg>,
    pub stats: Arc<Stats>,
    pub hub: Arc<dyn Hub>,
    /// The backend's per-request timeout (also how long a client gets to
    /// answer a request the backend makes).
    pub timeout: Duration,
    /// The one client session this connection serves (`per_session`
    /// backends): what it sends outside any call is that session's.
    pub owner: Option<Weak<dyn ClientLink>>,
}

pub struct Conn {
    pub backend: Arc<str>,
    pub generation: u64,
    pub pid: Option<u32>,
    out: Mutex<Option<Arc<dyn Outbox>>>,
    pending: Mutex<HashMap<i64, Pending>>,
    /// Requests the backend made that a client is answering, by the id the
    /// backend gave them.
    inbound: Mutex<HashMap<Id, Inbound>>,
    /// URL-mode elicitations sent to clients, by `elicitationId`, so that
    /// the backend's later `notifications/elicitation/complete` reaches
    /// the same client (newest last, at most [`KEPT_ELICITATIONS`]).
    elicitations: Mutex<std::collections::VecDeque<(String, Arc<dyn ClientLink>)>>,
    next_id: AtomicI64,
    alive: AtomicBool,
    supervisor: Sender<SupervisorMsg>,
    closer: Mutex<Option<Closer>>,
    stats: Arc<Stats>,
    hub: Arc<dyn Hub>,
    timeout: Duration,
    owner: Option<Weak<dyn ClientLink>>,
    me: Weak<Conn>,
    /// Negotiated revision with this backend (HTTP transports send it).
    pub protocol_version: Mutex<Option<String>>,
    /// The backend is spoken to in 2026-07-28: every request carries the
    /// `_meta` envelope (and, over HTTP, the routing headers).
    modern: AtomicBool,
    /// A transport's separate stream for server messages, opened between
    /// `initialize` and `initialized` ([`Conn::open_stream`]).
    gate: Mutex<Option<StreamGate>>,
    /// The gateway's own `subscriptions/listen` on a 2026-07-28 backend.
    listen: Mutex<Listen>,
    /// How an HTTP transport drops the exchange of one request (see
    /// [`Conn::tell_cancelled`]).
    abort: Mutex<Option<Abort>>,
}

/// What the gateway listens for on a 2026-07-28 backend: every list change,
/// and updates of the resources clients subscribed to (`uris`). A change of
/// `uris` re-opens the listen: the filter is fixed per listen.
#[derive(Default)]
struct Listen {
    uris: Vec<String>,
    /// The stdio listen in flight (a call that lasts as long as the
    /// connection).
    id: Option<i64>,
    /// How an HTTP transport ends its listen stream so that it opens again
    /// with the new filter (its `:get` thread holds the stream).
    kick: Option<Box<dyn Fn() + Send + Sync>>,
}

/// How a transport drops the exchange of one request (by gateway id).
pub type Abort = Box<dyn Fn(i64) + Send + Sync>;

/// A stdio listen lasts as long as its connection; this deadline only keeps
/// the arithmetic finite.
const LISTEN_FOR: Duration = Duration::from_secs(365 * 24 * 3600);
/// Most resource URIs one backend listen names (a bound on the filter).
const MAX_LISTEN_URIS: usize = 4096;

/// How the handshake and a transport's server-message stream (Streamable
/// HTTP's GET) meet: the stream can open only once `initialize` is
/// answered, and must be open before `initialized` is sent, or whatever the
/// backend announces on `initialized` (a tool it registers then, say) is lost.
pub struct StreamGate {
    /// The handshake tells the stream that `initialize` was answered.
    pub answered: Sender<()>,
    /// The stream says it is open (or could not be).
    pub opened: Receiver<()>,
}

/// A call in flight, as its client session holds it: cancels it.
struct Handle {
    conn: Weak<Conn>,
    id: i64,
}

impl CallHandle for Handle {
    fn cancel(&self, reason: &str) {
        if let Some(c) = self.conn.upgrade() {
            c.cancel(self.id, reason);
        }
    }
}

/// Who a backend's request or notification is for.
enum Target {
    One(Arc<dyn ClientLink>),
    /// No client has a call in flight here.
    Nobody,
    /// Several sessions have calls in flight: which one is meant is unknown.
    Several(usize),
}

impl Conn {
    /// A connection plus the receiving end its writer drains.
    pub fn new(spec: &ConnSpec, pid: Option<u32>) -> (Arc<Conn>, Receiver<Outgoing>) {
        let (tx, rx) = bounded(OUT_CAP);
        (Conn::with_outbox(spec, pid, Arc::new(tx)), rx)
    }

    /// A connection whose messages go to `out` (dropped when it closes).
    pub fn with_outbox(spec: &ConnSpec, pid: Option<u32>, out: Arc<dyn Outbox>) -> Arc<Conn> {
        Arc::new_cyclic(|me| Conn {
            backend: spec.backend.clone(),
            generation: spec.generation,
            pid,
            out: Mutex::new(Some(out)),
            pending: Mutex::new(HashMap::new()),
            inbound: Mutex::new(HashMap::new()),
            elicitations: Mutex::new(std::collections::VecDeque::new()),
            next_id: AtomicI64::new(1),
            alive: AtomicBool::new(true),
            supervisor: spec.supervisor.clone(),
            closer: Mutex::new(None),
            stats: spec.stats.clone(),
            hub: spec.hub.clone(),
            timeout: spec.timeout,
            owner: spec.owner.clone(),
            me: me.clone(),
            protocol_version: Mutex::new(None),
            modern: AtomicBool::new(false),
            gate: Mutex::new(None),
            listen: Mutex::new(Listen::default()),
            abort: Mutex::new(None),
        })
    }

    /// Speaks 2026-07-28 to this backend from now on (or not).
    pub fn set_modern(&self, on: bool) {
        self.modern.store(on, Ordering::Relaxed);
        *self.protocol_version.lock() = on.then(|| crate::codec::mcp::MODERN_VERSION.to_owned());
    }

    pub fn is_modern(&self) -> bool {
        self.modern.load(Ordering::Relaxed)
    }

    /// The params of the gateway's `subscriptions/listen` (without the
    /// envelope, which the request gets on its way).
    pub fn listen_params(&self) -> Raw {
        let uris = self.listen.lock().uris.clone();
        let mut filter = json!({"toolsListChanged": true, "promptsListChanged": true, "resourcesListChanged": true});
        if !uris.is_empty() {
            filter["resourceSubscriptions"] = json!(uris);
        }
        jsonrpc::to_raw(&json!({ "notifications": filter }))
    }

    /// Installs how an HTTP transport re-opens its listen stream.
    pub fn set_listen_kick(&self, kick: Box<dyn Fn() + Send + Sync>) {
        self.listen.lock().kick = Some(kick);
    }

    /// (Re)opens the gateway's listen on a 2026-07-28 backend: over HTTP
    /// the transport's stream thread does it; over stdio it is a call that
    /// lasts as long as the connection (the previous one is cancelled).
    pub fn relisten(&self) {
        if !self.is_modern() || !self.is_alive() {
            return;
        }
        let old = {
            let mut g = self.listen.lock();
            if let Some(kick) = &g.kick {
                kick();
                return;
            }
            g.id.take()
        };
        if let Some(id) = old {
            self.cancel(id, "the gateway listens with a new filter");
        }
        // Nobody waits for the listen's end: its notifications are what
        // matters, and they arrive like any other.
        let (tx, _) = bounded(1);
        match self.call(method::LISTEN, Some(self.listen_params()), Sink::Chan(tx), LISTEN_FOR) {
            Ok(id) => self.listen.lock().id = Some(id),
            Err(e) => log::warn!("backend '{}': cannot listen: {}", self.backend, e.message),
        }
    }

    /// Opens the gateway's listen on a new 2026-07-28 connection, naming
    /// the resources clients hold subscriptions to.
    pub fn start_listen(&self, mut uris: Vec<String>) {
        uris.truncate(MAX_LISTEN_URIS);
        let kick = {
            let mut g = self.listen.lock();
            let any = !uris.is_empty();
            g.uris = uris;
            // An HTTP transport listened as soon as the probe succeeded; it
            // listens again only if there is more to ask for.
            g.kick.is_some().then_some(any)
        };
        match kick {
            Some(false) => {}
            _ => self.relisten(),
        }
    }

    /// Holds (or lets go of) a resource subscription at a 2026-07-28
    /// backend: its listen re-opens with the new set. Returns whether the
    /// set changed.
    pub fn listen_to_resource(&self, uri: &str, on: bool) -> bool {
        let changed = {
            let mut g = self.listen.lock();
            let at = g.uris.iter().position(|u| u == uri);
            match (at, on) {
                (None, true) if g.uris.len() < MAX_LISTEN_URIS => {
                    g.uris.push(uri.to_owned());
                    true
                }
                (Some(i), false) => {
                    g.uris.remove(i);
                    true
                }
                _ => false,
            }
        };
        if changed {
            self.relisten();
        }
        changed
    }

    /// Installs the transport's [`StreamGate`].
    pub fn set_gate(&self, gate: StreamGate) {
        *self.gate.lock() = Some(gate);
    }

    /// Between `initialize` and `initialized`: lets the transport open its
    /// server-message stream and waits for it, at most `max`.
    pub fn open_stream(&self, max: Duration) {
        let Some(gate) = self.gate.lock().take() else { return };
        if gate.answered.send(()).is_ok() && gate.opened.recv_timeout(max).is_err() {
            log::debug!("backend '{}': its server stream did not open within {max:?}", self.backend);
        }
    }

    pub fn set_closer(&self, closer: Closer) {
        *self.closer.lock() = Some(closer);
    }

    pub fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Relaxed)
    }

    fn unavailable(&self, why: &str) -> ErrorObj {
        ErrorObj::new(code::BACKEND_UNAVAILABLE, format!("backend '{}' {why}", self.backend))
    }

    /// Queues a message for the backend's writer. Never waits: callers
    /// include the HTTP reactor, which must not block, so a full queue (a
    /// backend that stopped reading) fails the message at once.
    fn send(&self, bytes: Vec<u8>, request_id: Option<i64>) -> Result<(), ErrorObj> {
        self.send_with(bytes, request_id, None)
    }

    fn send_with(
        &self,
        bytes: Vec<u8>,
        request_id: Option<i64>,
        headers: Option<Box<ModernHeaders>>,
    ) -> Result<(), ErrorObj> {
        let Some(out) = self.out.lock().clone() else {
            return Err(self.unavailable("is disconnected"));
        };
        out.send(Outgoing { bytes, request_id, headers }).map_err(|e| match e {
            OutboxError::Full(queued) => self.unavailable(&format!("is not reading its input ({queued})")),
            OutboxError::Closed => self.unavailable("is disconnected"),
        })
    }

    /// Reserves a gateway request id, so a caller can record it (e.g. in
    /// its session's in-flight table) before the request can be answered.
    pub fn alloc_id(&self) -> i64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// What a client session keeps to cancel call `id`.
    pub fn handle(&self, id: i64) -> Arc<dyn CallHandle> {
        Arc::new(Handle { conn: self.me.clone(), id })
    }

    /// Sends a request whose progress and result go to `sink`. Returns the
    /// gateway id.
    pub fn call(&self, method: &str, params: Option<Raw>, sink: Sink, timeout: Duration) -> Result<i64, ErrorObj> {
        let id = self.alloc_id();
        self.call_with_id(id, method, params, sink, timeout)?;
        Ok(id)
    }

    /// Sends request `id` (from [`Conn::alloc_id`]). Rewrites
    /// `_meta.progressToken` to the gateway id so that two clients' equal
    /// tokens never collide on this shared connection; the rest of the
    /// params goes as it came.
    pub fn call_with_id(
        &self,
        id: i64,
        method: &str,
        params: Option<Raw>,
        sink: Sink,
        timeout: Duration,
    ) -> Result<(), ErrorObj> {
        if !self.is_alive() {
            return Err(self.unavailable("is disconnected"));
        }
        let modern = self.is_modern();
        let params = if modern { envelope(params, None) } else { params };
        let headers = modern.then(|| Box::new(modern_headers(method, params.as_deref())));
        let (params, progress_token) = match params {
            Some(p) => {
                let (p, t) = replace_progress_token(p, id);
                (Some(p), t)
            }
            None => (None, None),
        };
        let now = Instant::now();
        // The gateway's own liveness checks and long-lived listens are not
        // calls anyone made.
        let counted = !matches!(method, method::PING | method::DISCOVER | method::LISTEN);
        self.pending
            .lock()
            .insert(id, Pending { sink, progress_token, deadline: now + timeout, started: now, counted });
        if counted {
            self.stats.call_started();
        }
        let bytes = Message::Request { id: Id::Num(id), method: method.to_owned(), params }.to_bytes();
        if let Err(e) = self.send_with(bytes, Some(id), headers) {
            if let Some(p) = self.pending.lock().remove(&id) {
                self.finished(&p, false);
            }
            return Err(e);
        }
        // The connection may have died between the check and the insert;
        // then fail_all ran before our insert and nobody would answer.
        if !self.is_alive() {
            if let Some(p) = self.pending.lock().remove(&id) {
                p.sink.deliver(Reply::Done(Err(self.unavailable("is disconnected"))));
            }
        }
        Ok(())
    }

    /// A blocking call for the gateway's own use (handshake, discovery):
    /// waits for the result or the deadline.
    pub fn request(&self, method: &str, params: Option<Raw>, timeout: Duration) -> Result<Raw, ErrorObj> {
        let (tx, rx) = bounded(16);
        let id = self.call(method, params, Sink::Chan(tx), timeout)?;
        let deadline = Instant::now() + timeout;
        loop {
            match rx.recv_deadline(deadline) {
                Ok(Reply::Progress(_)) => continue,
                Ok(Reply::Done(r)) => return r,
                Err(_) => {
                    self.expire_one(id);
                    return Err(self.timeout_error(method, timeout));
                }
            }
        }
    }

    fn timeout_error(&self, method: &str, timeout: Duration) -> ErrorObj {
        ErrorObj::new(
            code::REQUEST_TIMEOUT,
            format!("backend '{}' did not answer {method} within {:.1}s", self.backend, timeout.as_secs_f64()),
        )
    }

    pub fn notify(&self, method: &str, params: Option<Raw>) -> Result<(), ErrorObj> {
        let bytes = Message::Notification { method: method.to_owned(), params }.to_bytes();
        self.send(bytes, None)
    }

    /// The client gave up on call `id`: forget it (a late answer is dropped)
    /// and tell the backend. A waiting POST or thread still gets an answer.
    pub fn cancel(&self, id: i64, reason: &str) {
        let Some(p) = self.pending.lock().remove(&id) else {
            return;
        };
        self.finished(&p, false);
        p.sink
            .deliver(Reply::Done(Err(ErrorObj::new(code::REQUEST_CANCELLED, format!("request cancelled: {reason}")))));
        self.tell_cancelled(id, reason);
    }

    /// Fails calls past their deadline with a timeout error and cancels them
    /// at the backend. Called from the admin tick.
    pub fn expire(&self, now: Instant) {
        let expired: Vec<i64> =
            self.pending.lock().iter().filter(|(_, p)| p.deadline <= now).map(|(id, _)| *id).collect();
        for id in expired {
            self.expire_one(id);
        }
    }

    fn expire_one(&self, id: i64) {
        let Some(p) = self.pending.lock().remove(&id) else {
            return;
        };
        let waited = p.started.elapsed();
        self.finished(&p, false);
        let err = ErrorObj::new(
            code::REQUEST_TIMEOUT,
            format!("backend '{}' timed out after {:.1}s", self.backend, waited.as_secs_f64()),
        );
        p.sink.deliver(Reply::Done(Err(err)));
        self.tell_cancelled(id, "timed out at the gateway");
    }

    /// Tells the backend that the gateway gave up on request `id`:
    /// `notifications/cancelled`, except for a 2026-07-28 backend over
    /// HTTP, where closing the request's response stream is the
    /// cancellation (the transport's abort hook does it).
    fn tell_cancelled(&self, id: i64, reason: &str) {
        if self.is_modern() {
            if let Some(abort) = self.abort.lock().as_ref() {
                return abort(id);
            }
        }
        let _ = self.notify(method::CANCELLED, Some(jsonrpc::to_raw(&json!({"requestId": id, "reason": reason}))));
    }

    /// Installs how the transport drops one request's exchange.
    pub fn set_abort(&self, abort: Abort) {
        *self.abort.lock() = Some(abort);
    }

    /// Routes one message read from the backend. Runs on the transport's
    /// reader thread, so it never blocks on a client.
    pub fn handle_incoming(&self, msg: Message) {
        self.handle_incoming_for(msg, None)
    }

    /// Like [`Conn::handle_incoming`], for a message that arrived as part
    /// of the answer to call `via` (a Streamable HTTP backend's response
    /// stream), so that it belongs to that call's client for sure.
    pub fn handle_incoming_for(&self, msg: Message, via: Option<i64>) {
        match msg {
            Message::Response { id, result } => self.finish(&id, Ok(result)),
            Message::Error { id: Some(id), error } => self.finish(&id, Err(error)),
            Message::Error { id: None, error } => {
                log::warn!("backend '{}' sent an error without an id: {error}", self.backend)
            }
            Message::Request { id, method, params } => self.backend_request(id, &method, params, via),
            Message::Notification { method, params } => self.backend_notification(&method, params, via),
        }
    }

    fn finish(&self, id: &Id, result: Result<Raw, ErrorObj>) {
        let Some(n) = as_gateway_id(id) else {
            log::debug!("backend '{}' answered unknown id {id}", self.backend);
            return;
        };
        let Some(p) = self.pending.lock().remove(&n) else {
            // Cancelled or timed out already: the late answer is dropped.
            log::debug!("backend '{}' answered finished request {n}", self.backend);
            return;
        };
        self.finished(&p, result.is_ok());
        p.sink.deliver(Reply::Done(result));
    }

    /// The client a backend's message is for: the one whose call it came
    /// with, else the only session with calls in flight here.
    fn target(&self, via: Option<i64>) -> Target {
        let g = self.pending.lock();
        if let Some(v) = via {
            if let Some(c) = g.get(&v).and_then(|p| p.sink.client()) {
                return Target::One(c);
            }
        }
        let mut found: Option<Arc<dyn ClientLink>> = None;
        let mut sessions: Vec<String> = Vec::new();
        for p in g.values() {
            if let Some(c) = p.sink.client() {
                if !sessions.iter().any(|s| s == c.session_id()) {
                    sessions.push(c.session_id().to_owned());
                    found = Some(c);
                }
            }
        }
        match (sessions.len(), found) {
            (1, Some(c)) => Target::One(c),
            (0, _) | (_, None) => match self.owner.as_ref().and_then(Weak::upgrade) {
                Some(owner) => Target::One(owner),
                None => Target::Nobody,
            },
            (n, _) => Target::Several(n),
        }
    }

    /// A request from the backend: `ping` is answered here; sampling,
    /// elicitation and roots go to the client whose call the backend is
    /// serving, if it declared the capability; anything else is refused.
    fn backend_request(&self, id: Id, m: &str, params: Option<Raw>, via: Option<i64>) {
        if m == method::PING {
            return self.answer(id, Ok(jsonrpc::to_raw(&json!({}))));
        }
        let Some(cap) = ClientCap::of_request(m, params.as_deref()) else {
            return self.answer(id, Err(ErrorObj::new(code::METHOD_NOT_FOUND, format!("Method not found: {m}"))));
        };
        match self.target(via) {
            Target::One(client) => {
                if !client.supports(cap) {
                    let msg = format!(
                        "the client session of this call does not support {m} (it declared no '{}' capability)",
                        cap.name()
                    );
                    return self.answer(id, Err(ErrorObj::new(code::METHOD_NOT_FOUND, msg)));
                }
                if cap == ClientCap::ElicitationUrl {
                    self.remember_elicitation(params.as_deref(), &client);
                }
                let answer = self.answer_later(id.clone());
                if let Some(client_id) = client.request(m, params, self.timeout, answer) {
                    self.inbound.lock().insert(id, Inbound { client, client_id });
                }
            }
            Target::Nobody => {
                let answer = self.answer_later(id);
                self.hub.request(&self.backend, m, params, self.timeout, answer);
            }
            Target::Several(n) => {
                let msg = format!(
                    "{n} client sessions have calls in flight on backend '{}', so it cannot be told which one {m} is \
                     for; give the backend \"per_session\": true to give each session its own connection",
                    self.backend
                );
                self.answer(id, Err(ErrorObj::new(code::INTERNAL_ERROR, msg)));
            }
        }
    }

    fn remember_elicitation(&self, params: Option<&RawValue>, client: &Arc<dyn ClientLink>) {
        let Some(eid) = params.and_then(|p| jsonrpc::get_str(p, "elicitationId")) else { return };
        let mut g = self.elicitations.lock();
        if g.len() >= KEPT_ELICITATIONS {
            g.pop_front();
        }
        g.push_back((eid, client.clone()));
    }

    /// Sends the answer to a request the backend made.
    fn answer(&self, id: Id, r: Result<Raw, ErrorObj>) {
        let msg = match r {
            Ok(result) => Message::Response { id, result },
            Err(error) => Message::Error { id: Some(id), error },
        };
        if let Err(e) = self.send(msg.to_bytes(), None) {
            log::debug!("backend '{}': cannot send an answer: {e}", self.backend);
        }
    }

    /// An [`Answer`] that sends the client's answer back to the backend.
    fn answer_later(&self, id: Id) -> Answer {
        let conn = self.me.clone();
        Box::new(move |r| {
            if let Some(c) = conn.upgrade() {
                c.inbound.lock().remove(&id);
                c.answer(id, r);
            }
        })
    }

    fn backend_notification(&self, m: &str, params: Option<Raw>, via: Option<i64>) {
        match m {
            method::PROGRESS => self.progress(params),
            method::TOOLS_CHANGED | method::RESOURCES_CHANGED | method::PROMPTS_CHANGED => {
                // Coalesced by the supervisor; a full queue already holds one.
                let _ = self.supervisor.try_send(SupervisorMsg::ListChanged { generation: self.generation });
            }
            method::MESSAGE => {
                let msg = Message::Notification { method: m.to_owned(), params };
                let level = msg.params_value().and_then(|p| p.get("level").and_then(|l| l.as_str().map(str::to_owned)));
                let level = level.unwrap_or_else(|| "info".to_owned());
                match self.target(via) {
                    Target::One(c) => {
                        if c.admits_log(&level) {
                            c.notify(&msg);
                        }
                    }
                    // No call in flight: the backend's own news, for
                    // every session that wants it.
                    Target::Nobody => self.hub.notification(&self.backend, &msg),
                    // It may belong to any of several sessions' calls:
                    // sending it to all would show one client another's
                    // data, so it goes to the gateway's log only (as a
                    // request in this case is refused).
                    Target::Several(n) => log::debug!(
                        "backend '{}': a log message while {n} sessions have calls in flight; not forwarded: {}",
                        self.backend,
                        crate::backend::wire::snippet(&msg.to_bytes())
                    ),
                }
            }
            ELICITATION_COMPLETE => {
                let eid = params.as_deref().and_then(|p| jsonrpc::get_str(p, "elicitationId"));
                let client = eid.and_then(|eid| {
                    let mut g = self.elicitations.lock();
                    let at = g.iter().position(|(e, _)| *e == eid)?;
                    g.remove(at).map(|(_, c)| c)
                });
                let msg = Message::Notification { method: m.to_owned(), params };
                match client {
                    Some(c) => c.notify(&msg),
                    None => self.hub.notification(&self.backend, &msg),
                }
            }
            method::CANCELLED => {
                // The backend gave up on a request it made to a client.
                let p = params.as_deref().map(jsonrpc::value_of);
                let id = p.as_ref().and_then(|p| p.get("requestId")).and_then(crate::codec::Id::from_value);
                let reason = p
                    .as_ref()
                    .and_then(|p| p.get("reason"))
                    .and_then(|r| r.as_str())
                    .unwrap_or("cancelled by the server");
                if let Some(i) = id.and_then(|id| self.inbound.lock().remove(&id)) {
                    i.client.cancel_request(i.client_id, reason);
                }
            }
            // The gateway's own listen was acknowledged: nobody else's news.
            method::SUBSCRIPTIONS_ACKNOWLEDGED => {}
            _ => {
                // A 2026-07-28 backend tags what its listen carries with the
                // gateway's listen id: meaningless to clients (a modern
                // client's stream stamps its own).
                let params = params.map(without_subscription_id);
                let msg = Message::Notification { method: m.to_owned(), params };
                // A per-session connection's updates are its session's.
                match self.owner.as_ref().and_then(Weak::upgrade) {
                    Some(owner) => owner.notify(&msg),
                    None => self.hub.notification(&self.backend, &msg),
                }
            }
        }
    }

    fn progress(&self, params: Option<Raw>) {
        let Some(params) = params else { return };
        let Some(n) = jsonrpc::get_field(&params, "progressToken").and_then(token_as_id) else {
            return;
        };
        // Copy what is needed and let go of the table before delivering:
        // delivery may close a session, which cancels calls on this table.
        let (sink, orig) = {
            let g = self.pending.lock();
            let Some(p) = g.get(&n) else { return };
            let Some(orig) = p.progress_token.clone() else {
                return;
            };
            (p.sink.clone(), orig)
        };
        let Some(params) = jsonrpc::set_fields(&params, &[("progressToken", &orig)]) else { return };
        match sink {
            // A full channel means the waiter is behind: progress is
            // advisory, so dropping one is harmless.
            Sink::Chan(tx) => {
                let _ = tx.try_send(Reply::Progress(params));
            }
            Sink::Route(r) => r.progress(params),
        }
    }

    /// The transport ended (EOF, write error, HTTP session gone). Fails all
    /// in-flight calls with an error naming the backend and tells the
    /// supervisor. Idempotent.
    pub fn died(&self, why: &str) {
        if !self.is_alive() {
            return;
        }
        let ended = self.shutdown();
        let reason = match ended {
            Some(status) => format!("{why} ({status})"),
            None => why.to_owned(),
        };
        self.fail_all(&format!("disconnected: {reason}"));
        let _ = self
            .supervisor
            .send_timeout(SupervisorMsg::Died { generation: self.generation, reason }, Duration::from_secs(5));
    }

    /// Closes on purpose (stop, reconnect, failed handshake). Idempotent.
    pub fn close(&self, why: &str) {
        if !self.is_alive() {
            return;
        }
        self.shutdown();
        self.fail_all(why);
    }

    fn shutdown(&self) -> Option<String> {
        self.alive.store(false, Ordering::Relaxed);
        // Dropping the outbox ends the writer thread (a child's stdin
        // closes with it); dropping the gate ends a stream thread still
        // waiting for the handshake.
        self.out.lock().take();
        self.gate.lock().take();
        let closer = self.closer.lock().take();
        closer.and_then(|c| c())
    }

    fn fail_all(&self, why: &str) {
        let all: Vec<Pending> = self.pending.lock().drain().map(|(_, p)| p).collect();
        for p in all {
            self.finished(&p, false);
            let err = self.unavailable(why);
            p.sink.deliver(Reply::Done(Err(err)));
        }
        // Requests it made of clients: nobody is left to take the answers.
        let inbound: Vec<Inbound> = self.inbound.lock().drain().map(|(_, i)| i).collect();
        for i in inbound {
            i.client.cancel_request(i.client_id, "the server went away");
        }
    }

    fn finished(&self, p: &Pending, ok: bool) {
        if p.counted {
            self.stats.call_finished(p.started.elapsed(), ok);
        }
    }

    /// The backend's per-request timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    pub fn in_flight(&self) -> usize {
        self.pending.lock().len()
    }
}

/// Params with the 2026-07-28 `_meta` envelope: kept if the caller sent
/// one (a modern client's own, passed on), else the gateway's, declaring
/// `caps` (the client capabilities of the call's client; none if `None`).
pub fn envelope(params: Option<Raw>, caps: Option<&RawValue>) -> Option<Raw> {
    use crate::codec::mcp::meta;
    let params = params.unwrap_or_else(|| jsonrpc::to_raw(&json!({})));
    let old_meta = jsonrpc::get_field(&params, "_meta");
    if old_meta.is_some_and(|m| jsonrpc::get_field(m, meta::PROTOCOL_VERSION).is_some()) {
        return Some(params);
    }
    let version = jsonrpc::to_raw(&json!(crate::codec::mcp::MODERN_VERSION));
    let none = jsonrpc::to_raw(&json!({}));
    let info = jsonrpc::to_raw(&json!({"name": "mcp-sentinel", "version": env!("CARGO_PKG_VERSION")}));
    let fields = [
        (meta::PROTOCOL_VERSION, &*version),
        (meta::CLIENT_CAPABILITIES, caps.unwrap_or(&none)),
        (meta::CLIENT_INFO, &*info),
    ];
    let base = old_meta.map(|m| m.to_owned()).unwrap_or_else(|| none.clone());
    let new_meta = jsonrpc::set_fields(&base, &fields)?;
    jsonrpc::set_fields(&params, &[("_meta", &new_meta)]).or(Some(params))
}

/// The routing headers a 2026-07-28 request carries.
fn modern_headers(m: &str, params: Option<&RawValue>) -> ModernHeaders {
    let field = match m {
        method::TOOLS_CALL | method::PROMPTS_GET => Some("name"),
        method::RESOURCES_READ => Some("uri"),
        _ => None,
    };
    let meta = params.and_then(|p| jsonrpc::get_field(p, "_meta"));
    ModernHeaders {
        method: m.to_owned(),
        name: field.and_then(|f| params.and_then(|p| jsonrpc::get_str(p, f))),
        traceparent: meta.and_then(|mt| jsonrpc::get_str(mt, "traceparent")),
    }
}

/// Replaces `_meta.progressToken` in params with the gateway id; returns
/// the new params and the client's token. Params without a token are
/// returned as they came.
fn replace_progress_token(params: Raw, id: i64) -> (Raw, Option<Raw>) {
    let Some(meta) = jsonrpc::get_field(&params, "_meta") else {
        return (params, None);
    };
    let Some(token) = jsonrpc::get_field(meta, "progressToken").map(|t| t.to_owned()) else {
        return (params, None);
    };
    let gid = jsonrpc::to_raw(&json!(id));
    let Some(meta) = jsonrpc::set_fields(meta, &[("progressToken", &gid)]) else {
        return (params, None);
    };
    match jsonrpc::set_fields(&params, &[("_meta", &meta)]) {
        Some(p) => (p, Some(token)),
        None => (params, None),
    }
}

/// Notification params without `_meta`'s subscription id (and without a
/// `_meta` that held only that).
fn without_subscription_id(params: Raw) -> Raw {
    use crate::codec::mcp::meta::SUBSCRIPTION_ID;
    let has = jsonrpc::get_field(&params, "_meta").is_some_and(|m| jsonrpc::get_field(m, SUBSCRIPTION_ID).is_some());
    if !has {
        return params;
    }
    let mut v = jsonrpc::value_of(&params);
    if let Some(meta) = v.get_mut("_meta").and_then(serde_json::Value::as_object_mut) {
        meta.remove(SUBSCRIPTION_ID);
        if meta.is_empty() {
            v.as_object_mut().map(|o| o.remove("_meta"));
        }
    }
    jsonrpc::to_raw(&v)
}

fn as_gateway_id(id: &Id) -> Option<i64> {
    match id {
        Id::Num(n) => Some(*n),
        Id::Str(s) => s.parse().ok(),
    }
}

/// A progress token the gateway issued: an integer, or a string holding one.
fn token_as_id(v: &RawValue) -> Option<i64> {
    let t = v.get().trim();
    t.parse().ok().or_else(|| serde_json::from_str::<String>(t).ok().and_then(|s| s.parse().ok()))
}

#[cfg(test)]
mod tests;
