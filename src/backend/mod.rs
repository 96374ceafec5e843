//! Backends: one [`Backend`] per configured server, owned by its supervisor
//! thread (`backend:<name>`), which connects, performs the MCP handshake,
//! discovers capabilities (following `nextCursor`), retries with
//! exponential backoff after a failed attempt or a death, rediscovers on
//! `list_changed`, and stops on request. Everything the rest of the gateway
//! needs is read through snapshots.

pub mod backoff;
pub mod conn;
pub mod instances;
pub mod local;
pub mod sse;
pub mod stats;
pub mod stdio;
pub mod streamable;
pub mod wire;

use crate::codec::jsonrpc;
use crate::codec::mcp::{self, method};
use crate::codec::ErrorObj;
use crate::config::{BackendConfig, Transport};
use crate::route::{ClientLink, Hub};
use crossbeam_channel::{bounded, select, Receiver, Sender};
use parking_lot::{Mutex, RwLock};
use serde::Serialize;
use serde_json::{json, Value};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

pub use backoff::Policy;
pub use conn::{Conn, ConnSpec, Outgoing, Reply, Sink};
pub use stats::Stats;

/// A connection that stayed up this long was a success: the backoff starts
/// over. One that died sooner counts as a failed attempt, so a backend that
/// crashes right after its handshake is not restarted in a tight loop.
const STABLE_AFTER: Duration = Duration::from_secs(10);
/// Longest wait for the answer to a liveness ping (`timeout_s` if shorter):
/// a ping needs no work, so a backend that takes longer is stuck.
const PING_WAIT_MAX: Duration = Duration::from_secs(10);
/// Longest wait for a backend's server-message stream to open during the
/// handshake (a server without one answers at once).
const STREAM_OPEN_WAIT: Duration = Duration::from_secs(5);
/// Most pages followed for one list during discovery (a loop guard).
const MAX_PAGES: usize = 1000;

/// Messages to a backend's supervisor thread.
pub enum SupervisorMsg {
    /// The connection of that generation ended on its own.
    Died { generation: u64, reason: String },
    /// The backend announced a `list_changed` (any kind).
    ListChanged { generation: u64 },
    /// Close and connect again now; the reply says how it went.
    Reconnect(Option<Sender<Result<(), String>>>),
    /// Close and end the thread.
    Stop,
}

/// What the supervisor tells the runtime (the admin thread).
pub enum BackendEvent {
    /// State or capabilities changed: rebuild the registry, recompute state.
    Changed { backend: Arc<str> },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Pending,
    Connecting,
    Connected,
    Failed,
    Disconnected,
    Disabled,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Connecting => "connecting",
            State::Connected => "connected",
            State::Failed => "failed",
            State::Disconnected => "disconnected",
            State::Disabled => "disabled",
        }
    }
}

/// A copy of a backend's status, safe to serialize or hold.
#[derive(Clone, Debug)]
pub struct Status {
    pub state: State,
    pub last_error: Option<String>,
    pub pid: Option<u32>,
    pub server_info: Option<Value>,
    pub protocol_version: Option<String>,
    pub connected_since: Option<SystemTime>,
    pub restarts: u64,
    /// The capabilities object the backend answered initialize with.
    pub caps: Value,
}

/// Capabilities as the backend listed them (original names, raw objects).
#[derive(Clone, Debug, Default)]
pub struct Discovered {
    pub tools: Vec<Value>,
    pub resources: Vec<Value>,
    pub resource_templates: Vec<Value>,
    pub prompts: Vec<Value>,
    /// The backend advertised `logging` (logging/setLevel is fanned out to it).
    pub logging: bool,
    /// The backend advertised `completions` (or we could not tell).
    pub completions: bool,
    /// The backend advertised `resources.subscribe`.
    pub subscribe: bool,
    /// 2026-07-28 cache hints of its lists, by list method: (`ttlMs`,
    /// `cacheScope` is `public`). None from a legacy backend.
    pub hints: Vec<(&'static str, u64, bool)>,
}

impl Discovered {
    /// The cache hints the backend gave for list `method`.
    pub fn hints(&self, method: &str) -> Option<(u64, bool)> {
        self.hints.iter().find(|(m, _, _)| *m == method).map(|(_, t, p)| (*t, *p))
    }
}

/// What a backend restarted by a reload takes over from the one it replaces.
#[derive(Default)]
struct Carried {
    restarts: u64,
    stats: Arc<Stats>,
    discovered: Arc<Discovered>,
}

pub struct Backend {
    pub name: Arc<str>,
    pub config: BackendConfig,
    status: Mutex<Status>,
    conn: RwLock<Option<Arc<Conn>>>,
    /// The connection during its handshake (not yet in `conn`), and whether
    /// a stop was requested: [`Backend::stop`] closes it, so a backend that
    /// never answers `initialize` stops now, not at its timeout.
    handshaking: Mutex<(bool, Option<Arc<Conn>>)>,
    discovered: RwLock<Arc<Discovered>>,
    pub stats: Arc<Stats>,
    /// Retry timing from the `server` section; replaced on reload, read by
    /// the supervisor before each wait.
    backoff: Mutex<Policy>,
    ctl: Sender<SupervisorMsg>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Where what the backend sends outside any call goes (the runtime).
    hub: Arc<dyn Hub>,
    /// Per-session connections (`"per_session": true`).
    instances: Arc<instances::Instances>,
}

impl Backend {
    /// Creates the backend and starts its supervisor thread.
    pub fn start(
        config: BackendConfig,
        backoff: Policy,
        events: Sender<BackendEvent>,
        ring: Arc<crate::events::EventRing>,
        hub: Arc<dyn Hub>,
    ) -> Arc<Backend> {
        Backend::start_with(config, backoff, events, ring, hub, Carried::default())
    }

    /// Starts a backend that replaces `old` (same name, changed config, on
    /// reload): its counters and restart count carry over, so metrics stay
    /// monotonic, and so do its last discovered lists, so that until it is
    /// connected a call to one of its tools names it as unavailable.
    pub fn restart_from(
        old: &Backend,
        config: BackendConfig,
        backoff: Policy,
        events: Sender<BackendEvent>,
        ring: Arc<crate::events::EventRing>,
    ) -> Arc<Backend> {
        let carried =
            Carried { restarts: old.status().restarts + 1, stats: old.stats.clone(), discovered: old.discovered() };
        Backend::start_with(config, backoff, events, ring, old.hub.clone(), carried)
    }

    fn start_with(
        config: BackendConfig,
        backoff: Policy,
        events: Sender<BackendEvent>,
        ring: Arc<crate::events::EventRing>,
        hub: Arc<dyn Hub>,
        carried: Carried,
    ) -> Arc<Backend> {
        let Carried { restarts, stats, discovered } = carried;
        let (ctl, ctl_rx) = bounded(64);
        let b = Arc::new(Backend {
            name: config.name.as_str().into(),
            status: Mutex::new(Status {
                state: State::Pending,
                last_error: None,
                pid: None,
                server_info: None,
                protocol_version: None,
                connected_since: None,
                restarts,
                caps: Value::Null,
            }),
            config,
            conn: RwLock::new(None),
            handshaking: Mutex::new((false, None)),
            discovered: RwLock::new(discovered),
            stats,
            backoff: Mutex::new(backoff),
            ctl,
            thread: Mutex::new(None),
            hub,
            instances: Arc::default(),
        });
        let sup = Supervisor { backend: b.clone(), rx: ctl_rx, events, ring, generation: 0 };
        match crate::thread::spawn(format!("backend:{}", b.name), move || {
            sup.run();
            Ok(())
        }) {
            Ok(h) => *b.thread.lock() = Some(h),
            Err(e) => b.set_failed(format!("cannot start its thread: {e}")),
        }
        b
    }

    pub fn status(&self) -> Status {
        self.status.lock().clone()
    }

    pub fn discovered(&self) -> Arc<Discovered> {
        self.discovered.read().clone()
    }

    /// The live connection, if connected.
    pub fn conn(&self) -> Option<Arc<Conn>> {
        self.conn.read().clone().filter(|c| c.is_alive())
    }

    /// The connection to forward a client call on, or an error naming the
    /// backend and why it cannot take calls.
    pub fn conn_for_call(&self) -> Result<Arc<Conn>, ErrorObj> {
        self.conn().ok_or_else(|| {
            let st = self.status();
            let why = match st.last_error {
                Some(e) => format!("{}: {e}", st.state.as_str()),
                None => st.state.as_str().to_owned(),
            };
            ErrorObj::new(
                crate::codec::code::BACKEND_UNAVAILABLE,
                format!("backend '{}' is not available ({why})", self.name),
            )
        })
    }

    pub fn timeout(&self) -> Duration {
        self.config.timeout
    }

    /// New retry timing (reload): applies from the supervisor's next wait.
    pub fn set_backoff(&self, p: Policy) {
        *self.backoff.lock() = p;
    }

    /// Asks the supervisor to reconnect; `reply` gets the outcome.
    pub fn reconnect(&self, reply: Option<Sender<Result<(), String>>>) -> bool {
        // A supervisor stuck in a handshake reads the message only when the
        // handshake ends: end it now, so the reconnect starts at once. This
        // comes before the message, or the supervisor could already be in
        // the handshake of the attempt this reconnect asks for, and that one
        // would be ended instead.
        let stuck = self.handshaking.lock().1.take();
        if let Some(c) = stuck {
            c.close("reconnect requested");
        }
        self.ctl.send_timeout(SupervisorMsg::Reconnect(reply), Duration::from_secs(5)).is_ok()
    }

    /// Gives `ready` the connection a call of `session` goes to: the shared
    /// one, or with `"per_session": true` the session's own (started now if
    /// need be; `ready` is then called from the thread that started it).
    pub fn conn_for_session(&self, session: &Arc<str>, owner: Weak<dyn ClientLink>, ready: instances::Ready) {
        let Some(max) = self.config.per_session else {
            return ready(self.conn_for_call());
        };
        // The shared connection being up says the backend can be reached
        // and its catalog is known.
        if let Err(e) = self.conn_for_call() {
            return ready(Err(e));
        }
        let Ok(transport) = self.config.transport.clone() else {
            return ready(self.conn_for_call());
        };
        let (unused, _) = bounded(1);
        let spec = ConnSpec {
            backend: self.name.clone(),
            generation: 0,
            // An instance's death or list change is nobody's business: the
            // session's next call starts a new one.
            supervisor: unused,
            stats: self.stats.clone(),
            hub: self.hub.clone(),
            timeout: self.timeout(),
            owner: Some(owner),
        };
        self.instances.with(&self.name, session, max, move || instances::open(&spec, &transport), ready);
    }

    /// Ends the per-session connections of sessions that are gone (admin tick).
    pub fn prune_instances(&self, live: impl Fn(&str) -> bool) {
        if self.config.per_session.is_some() {
            self.instances.prune(live);
        }
    }

    /// Per-session connections that are up.
    pub fn instance_count(&self) -> usize {
        self.instances.count()
    }

    /// Stops the supervisor (closing the connection, killing a child) and
    /// waits for it, bounded by `wait`.
    pub fn stop(&self, wait: Duration) {
        self.instances.close_all();
        let _ = self.ctl.send_timeout(SupervisorMsg::Stop, Duration::from_secs(1));
        let handshaking = {
            let mut g = self.handshaking.lock();
            g.0 = true;
            g.1.take()
        };
        if let Some(c) = handshaking {
            c.close("the backend is stopping");
        }
        let Some(h) = self.thread.lock().take() else { return };
        let deadline = Instant::now() + wait;
        while !h.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if h.is_finished() {
            let _ = h.join();
        } else {
            log::warn!("backend '{}' did not stop within {:?}", self.name, wait);
        }
    }

    fn set_failed(&self, err: String) {
        let mut s = self.status.lock();
        s.state = State::Failed;
        s.last_error = Some(err);
    }

    /// Kills the backend's process group now, if it has one (SIGKILL, no
    /// grace, no wait): for an immediate exit.
    pub fn kill_now(&self) {
        if let Some(pid) = self.status.lock().pid {
            stdio::signal_group(pid, libc::SIGKILL);
        }
    }

    /// Expires timed-out calls (admin tick).
    pub fn expire(&self, now: Instant) {
        if let Some(c) = self.conn() {
            c.expire(now);
        }
    }
}

struct Supervisor {
    backend: Arc<Backend>,
    rx: Receiver<SupervisorMsg>,
    events: Sender<BackendEvent>,
    ring: Arc<crate::events::EventRing>,
    generation: u64,
}

use crate::events::Level;

impl Supervisor {
    fn b(&self) -> &Backend {
        &self.backend
    }

    fn changed(&self) {
        let _ = self
            .events
            .send_timeout(BackendEvent::Changed { backend: self.backend.name.clone() }, Duration::from_secs(5));
    }

    fn event(&self, level: Level, kind: &str, msg: impl Into<String>) {
        self.ring.push(level, kind, Some(&self.backend.name), msg);
    }

    fn set_state(&self, state: State, err: Option<String>) {
        let mut s = self.b().status.lock();
        s.state = state;
        if err.is_some() || state == State::Connected {
            s.last_error = err;
        }
        if state != State::Connected {
            s.connected_since = None;
            s.pid = None;
        }
    }

    fn run(mut self) {
        let transport = match self.b().config.transport.clone() {
            Err(e) => {
                self.set_state(State::Failed, Some(e.clone()));
                self.event(Level::Error, "backend.failed", e);
                self.changed();
                return self.idle_until_stop();
            }
            Ok(t) => t,
        };
        if !self.b().config.enabled {
            self.set_state(State::Disabled, None);
            self.changed();
            return self.idle_until_stop();
        }
        let mut backoff = backoff::Backoff::new(backoff::XorShift::seeded());
        let mut reply: Option<Sender<Result<(), String>>> = None;
        loop {
            let result = self.connect(&transport);
            let outcome = result.as_ref().map(|_| ()).map_err(Clone::clone);
            if let Some(r) = reply.take() {
                let _ = r.try_send(outcome);
            }
            match result {
                Ok(conn) => {
                    let up = Instant::now();
                    match self.serve(conn) {
                        Next::Stop => return,
                        Next::Reconnect(r) => {
                            reply = r;
                            self.b().status.lock().restarts += 1;
                            continue;
                        }
                        // Only a connection that stayed up counts as a
                        // success; a quick death is one more failure.
                        Next::Died if up.elapsed() >= STABLE_AFTER => backoff.reset(),
                        Next::Died => {}
                    }
                }
                // Stopped during the handshake: not a failure of the backend.
                Err(_) if self.b().handshaking.lock().0 => {
                    self.set_state(State::Disconnected, None);
                    return;
                }
                Err(e) => {
                    self.set_state(State::Failed, Some(e.clone()));
                    self.event(Level::Error, "backend.failed", e);
                    self.changed();
                }
            }
            let policy = *self.b().backoff.lock();
            let wait = backoff.next(policy);
            log::info!(
                "backend '{}': retrying in {:.1}s ({} failed in a row)",
                self.b().name,
                wait.as_secs_f64(),
                backoff.failures()
            );
            match self.wait(wait) {
                Wake::Stop => return,
                Wake::Reconnect(r) => reply = r,
                Wake::Elapsed => {}
            }
            self.b().status.lock().restarts += 1;
        }
    }

    /// Waits `wait` before the next attempt. Only `Stop` and `Reconnect` end
    /// it early: a `Died` or `ListChanged` here comes from a connection that
    /// is already gone (the attempt that just failed reports its death too),
    /// and letting it cut the wait short is what used to turn a backend that
    /// exits at once into thousands of spawns a second.
    fn wait(&self, wait: Duration) -> Wake {
        let deadline = crossbeam_channel::at(Instant::now() + wait);
        loop {
            select! {
                recv(self.rx) -> msg => match msg {
                    Ok(SupervisorMsg::Stop) | Err(_) => return Wake::Stop,
                    Ok(SupervisorMsg::Reconnect(r)) => return Wake::Reconnect(r),
                    Ok(SupervisorMsg::Died { .. } | SupervisorMsg::ListChanged { .. }) => {}
                },
                recv(deadline) -> _ => return Wake::Elapsed,
            }
        }
    }

    fn idle_until_stop(&self) {
        while let Ok(msg) = self.rx.recv() {
            match msg {
                SupervisorMsg::Stop => return,
                SupervisorMsg::Reconnect(Some(r)) => {
                    let st = self.b().status();
                    let _ = r.try_send(Err(st.last_error.unwrap_or_else(|| st.state.as_str().to_owned())));
                }
                _ => {}
            }
        }
    }

    /// While connected: handle deaths, list changes, reconnects and stop,
    /// and check liveness with a `ping` every `ping_interval_s`. Every wait
    /// here is one `select!`, so Stop and Reconnect are taken at once even
    /// while a ping is out.
    fn serve(&mut self, conn: Arc<Conn>) -> Next {
        let mut ping = Ping::new(self.b().config.ping_interval, self.b().timeout().min(PING_WAIT_MAX));
        loop {
            select! {
                recv(self.rx) -> msg => {
                    let Ok(msg) = msg else {
                        conn.close("gateway stopping");
                        return Next::Stop;
                    };
                    if let Some(next) = self.on_message(&conn, msg) {
                        return next;
                    }
                }
                recv(ping.answer) -> reply => match reply {
                    Ok(Reply::Progress(_)) => {}
                    // The gateway's own timeout is no answer from the backend.
                    Ok(Reply::Done(Err(e))) if e.code == crate::codec::code::REQUEST_TIMEOUT => {
                        return self.dead(&conn, ping.no_answer());
                    }
                    // A result or any JSON-RPC error (-32601 included) proves
                    // that the backend reads and answers. (A connection that
                    // died fails the ping too; its Died message follows.)
                    Ok(Reply::Done(_)) | Err(_) => ping.answered(),
                },
                recv(ping.timer) -> _ => {
                    if ping.waiting {
                        return self.dead(&conn, ping.no_answer());
                    }
                    ping.send(&conn);
                }
            }
        }
    }

    /// One supervisor message while connected; `Some` ends the connected spell.
    fn on_message(&mut self, conn: &Arc<Conn>, msg: SupervisorMsg) -> Option<Next> {
        match msg {
            SupervisorMsg::Stop => {
                conn.close("gateway stopping");
                *self.b().conn.write() = None;
                self.set_state(State::Disconnected, None);
                Some(Next::Stop)
            }
            SupervisorMsg::Reconnect(r) => {
                conn.close("reconnect requested");
                *self.b().conn.write() = None;
                self.event(Level::Info, "backend.disconnected", "reconnect requested");
                Some(Next::Reconnect(r))
            }
            SupervisorMsg::Died { generation, reason } if generation == conn.generation => {
                Some(self.disconnected(reason))
            }
            SupervisorMsg::ListChanged { generation } if generation == conn.generation => {
                // Coalesce a burst of notifications into one rediscovery.
                while let Ok(m) = self.rx.try_recv() {
                    match m {
                        SupervisorMsg::ListChanged { .. } => {}
                        other => {
                            // Put it back in front of anything newer.
                            let _ = self.backend.ctl.try_send(other);
                            break;
                        }
                    }
                }
                match discover(conn, &self.b().status().caps, self.b().timeout()) {
                    Ok(d) => {
                        *self.b().discovered.write() = Arc::new(d);
                        self.changed();
                    }
                    Err(e) => log::warn!("backend '{}': rediscovery failed: {e}", self.b().name),
                }
                None
            }
            // Died or ListChanged of an earlier connection.
            _ => None,
        }
    }

    /// The live connection does not answer: close it (failing its calls in
    /// flight with `reason`, killing a child) and reconnect with backoff.
    fn dead(&self, conn: &Conn, reason: String) -> Next {
        conn.close(&reason);
        self.disconnected(reason)
    }

    /// The connection is gone (it died, or [`Supervisor::dead`] closed it).
    fn disconnected(&self, reason: String) -> Next {
        *self.b().conn.write() = None;
        self.set_state(State::Disconnected, Some(reason.clone()));
        self.event(Level::Warn, "backend.disconnected", reason);
        self.changed();
        Next::Died
    }

    fn connect(&mut self, transport: &Transport) -> Result<Arc<Conn>, String> {
        self.generation += 1;
        self.set_state(State::Connecting, None);
        self.event(Level::Info, "backend.connecting", self.b().config.endpoint());
        self.changed();
        let b = &self.backend;
        let spec = ConnSpec {
            backend: b.name.clone(),
            generation: self.generation,
            supervisor: b.ctl.clone(),
            stats: b.stats.clone(),
            hub: b.hub.clone(),
            timeout: b.timeout(),
            owner: None,
        };
        let conn = open_transport(&spec, transport)?;
        {
            let mut g = b.handshaking.lock();
            if g.0 {
                drop(g);
                conn.close("the backend is stopping");
                return Err("stopped before the handshake".to_owned());
            }
            g.1 = Some(conn.clone());
        }
        let shaken = handshake(&conn, b.timeout());
        b.handshaking.lock().1 = None;
        match shaken {
            Ok((info, caps, version, discovered)) => {
                // Capabilities and the connection first: whoever sees
                // `connected` (a registry rebuild, a snapshot) finds them.
                *b.discovered.write() = Arc::new(discovered);
                *b.conn.write() = Some(conn.clone());
                {
                    let mut s = b.status.lock();
                    s.state = State::Connected;
                    s.last_error = None;
                    s.pid = conn.pid;
                    s.server_info = Some(info);
                    s.protocol_version = Some(version.clone());
                    s.connected_since = Some(SystemTime::now());
                    s.caps = caps;
                }
                self.event(Level::Info, "backend.connected", format!("connected (protocol {version})"));
                self.restore(&conn);
                self.changed();
                Ok(conn)
            }
            Err(e) => {
                conn.close(&e);
                Err(e)
            }
        }
    }
}

impl Supervisor {
    /// A new connection gets what clients asked of the previous one: the
    /// log level and the resource subscriptions they hold.
    fn restore(&self, conn: &Conn) {
        let b = self.b();
        let d = b.discovered();
        if d.logging {
            if let Some(level) = b.hub.log_level() {
                fire_and_forget(conn, method::SET_LEVEL, json!({ "level": level }));
            }
        }
        if d.subscribe {
            for uri in b.hub.subscriptions(&b.name) {
                fire_and_forget(conn, method::SUBSCRIBE, json!({ "uri": uri }));
            }
        }
    }
}

/// The liveness check of one connection: the timer is when the next ping
/// is due or, while `waiting`, when its answer is overdue.
struct Ping {
    every: Option<Duration>,
    /// How long an answer may take: `min(timeout_s, 10 s)`.
    wait: Duration,
    answer: Receiver<Reply>,
    timer: Receiver<Instant>,
    waiting: bool,
}

impl Ping {
    fn new(every: Option<Duration>, wait: Duration) -> Ping {
        let timer = every.map_or_else(crossbeam_channel::never, crossbeam_channel::after);
        Ping { every, wait, answer: crossbeam_channel::never(), timer, waiting: false }
    }

    fn send(&mut self, conn: &Conn) {
        let (tx, rx) = bounded(4);
        // The call's own deadline is a little later than ours, so the
        // admin tick does not expire it first.
        match conn.call(method::PING, None, Sink::Chan(tx), self.wait + Duration::from_secs(1)) {
            Ok(_) => self.answer = rx,
            // Closing (its Died follows) or the queue stayed full for 5 s:
            // either way no answer can come; the timer below decides.
            Err(e) => log::debug!("backend '{}': cannot send ping: {}", conn.backend, e.message),
        }
        self.timer = crossbeam_channel::after(self.wait);
        self.waiting = true;
    }

    fn answered(&mut self) {
        self.answer = crossbeam_channel::never();
        self.timer = self.every.map_or_else(crossbeam_channel::never, crossbeam_channel::after);
        self.waiting = false;
    }

    fn no_answer(&self) -> String {
        format!("did not answer ping within {:.1}s", self.wait.as_secs_f64())
    }
}

/// How a connected spell ended.
enum Next {
    Stop,
    Reconnect(Option<Sender<Result<(), String>>>),
    /// The connection died on its own: wait (backoff), then connect again.
    Died,
}

/// How a wait between attempts ended.
enum Wake {
    Stop,
    /// Connect now; the reply gets that attempt's outcome.
    Reconnect(Option<Sender<Result<(), String>>>),
    Elapsed,
}

/// Sends a request whose answer nobody waits for (a refusal is logged).
pub fn fire_and_forget(conn: &Conn, method: &str, params: Value) {
    struct Logged(Arc<str>, String);
    impl crate::route::CallSink for Logged {
        fn progress(&self, _: jsonrpc::Raw) {}
        fn done(&self, r: Result<jsonrpc::Raw, ErrorObj>) {
            if let Err(e) = r {
                log::warn!("backend '{}' refused {}: {e}", self.0, self.1);
            }
        }
    }
    let sink = Sink::Route(Arc::new(Logged(conn.backend.clone(), method.to_owned())));
    if let Err(e) = conn.call(method, Some(jsonrpc::to_raw(&params)), sink, conn.timeout()) {
        log::warn!("backend '{}': cannot send {method}: {e}", conn.backend);
    }
}

/// What the gateway declares to backends as a client: everything it can
/// route to a client (the client of the call decides at run time).
fn client_capabilities() -> Value {
    json!({
        "roots": {"listChanged": true},
        "sampling": {},
        "elicitation": {"form": {}, "url": {}},
    })
}

/// Opens a connection over the backend's transport (no handshake yet).
fn open_transport(spec: &ConnSpec, transport: &Transport) -> Result<Arc<Conn>, String> {
    match transport {
        Transport::Stdio(cmd) => stdio::open(spec, cmd),
        Transport::Sse { url, headers, local, ca_cert } => {
            let remote = sse::Remote::new(url, headers, ca_cert.as_ref());
            sse::open(spec, &remote, local.as_ref())
        }
        Transport::StreamableHttp { url, headers, ca_cert } => {
            let remote = sse::Remote::new(url, headers, ca_cert.as_ref());
            streamable::open(spec, &remote)
        }
    }
}

/// initialize → initialized → discovery. Returns (serverInfo, capabilities,
/// protocol version, discovered capabilities).
fn handshake(conn: &Conn, timeout: Duration) -> Result<(Value, Value, String, Discovered), String> {
    let (info, caps, version) = initialize(conn, timeout)?;
    let discovered = discover(conn, &caps, timeout)?;
    Ok((info, caps, version, discovered))
}

/// initialize → initialized. Returns (serverInfo, capabilities, protocol
/// version).
fn initialize(conn: &Conn, timeout: Duration) -> Result<(Value, Value, String), String> {
    // The gateway routes sampling, elicitation and roots requests to the
    // client whose call the backend is serving (see `conn.rs`), and refuses
    // them, naming the capability, when that client did not declare it.
    let params = json!({
        "protocolVersion": mcp::CLIENT_VERSION,
        "capabilities": client_capabilities(),
        "clientInfo": {"name": "mcp-sentinel", "version": env!("CARGO_PKG_VERSION")},
    });
    let raw = conn
        .request(method::INITIALIZE, Some(jsonrpc::to_raw(&params)), timeout)
        .map_err(|e| format!("initialize failed: {}", e.message))?;
    let init: Value = serde_json::from_str(raw.get()).map_err(|e| format!("initialize result: {e}"))?;
    let version = init
        .get("protocolVersion")
        .and_then(Value::as_str)
        .ok_or("initialize result has no protocolVersion")?
        .to_owned();
    if !mcp::is_supported(&version) {
        return Err(format!("backend answered protocol version {version:?}, which the gateway does not speak"));
    }
    *conn.protocol_version.lock() = Some(version.clone());
    // A Streamable HTTP backend's GET stream opens now, before
    // `initialized`, so that a list_changed sent on it is not lost.
    conn.open_stream(timeout.min(STREAM_OPEN_WAIT));
    let info = init.get("serverInfo").cloned().unwrap_or(Value::Null);
    let caps = init.get("capabilities").cloned().unwrap_or_else(|| json!({}));
    conn.notify(method::INITIALIZED, None).map_err(|e| format!("sending initialized: {}", e.message))?;
    Ok((info, caps, version))
}

/// Lists every kind the backend advertises, following cursors to the end.
fn discover(conn: &Conn, caps: &Value, timeout: Duration) -> Result<Discovered, String> {
    let has = |k: &str| caps.get(k).is_some_and(|v| !v.is_null());
    let mut d = Discovered {
        logging: has("logging"),
        completions: has("completions") || has("prompts") || has("resources"),
        subscribe: caps.get("resources").and_then(|r| r.get("subscribe")).and_then(Value::as_bool) == Some(true),
        ..Discovered::default()
    };
    if has("tools") {
        d.tools = list_all(conn, method::TOOLS_LIST, "tools", timeout)?;
    }
    if has("resources") {
        d.resources = list_all(conn, method::RESOURCES_LIST, "resources", timeout)?;
        // Older servers may not implement templates: treat "method not
        // found" as none rather than failing the backend.
        d.resource_templates = match list_all(conn, method::RESOURCES_TEMPLATES_LIST, "resourceTemplates", timeout) {
            Ok(t) => t,
            Err(e) if e.contains("-32601") => Vec::new(),
            Err(e) => return Err(e),
        };
    }
    if has("prompts") {
        d.prompts = list_all(conn, method::PROMPTS_LIST, "prompts", timeout)?;
    }
    Ok(d)
}

fn list_all(conn: &Conn, method: &str, key: &str, timeout: Duration) -> Result<Vec<Value>, String> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    let mut seen = std::collections::HashSet::new();
    for _ in 0..MAX_PAGES {
        let params = cursor.as_ref().map(|c| jsonrpc::to_raw(&json!({ "cursor": c })));
        let raw = conn
            .request(method, params, timeout)
            .map_err(|e| format!("{method} failed: {} (code {})", e.message, e.code))?;
        let mut page: Value = serde_json::from_str(raw.get()).map_err(|e| format!("{method} result: {e}"))?;
        match page.get_mut(key).map(Value::take) {
            Some(Value::Array(list)) => items.extend(list.into_iter().filter(Value::is_object)),
            Some(Value::Null) | None => {}
            Some(_) => return Err(format!("{method} result: \"{key}\" is not an array")),
        }
        match page.get("nextCursor").and_then(Value::as_str) {
            Some(next) => {
                if !seen.insert(next.to_owned()) {
                    return Err(format!("{method}: backend repeated cursor {next:?}"));
                }
                cursor = Some(next.to_owned());
            }
            None => return Ok(items),
        }
    }
    Err(format!("{method}: more than {MAX_PAGES} pages"))
}
