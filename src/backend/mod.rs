//! Backends: one [`Backend`] per configured server, the handle the rest of
//! the gateway holds (status, live connection, discovered lists, calls,
//! reconnect, stop). Its supervisor thread (`backend:<name>`,
//! `supervisor.rs`) connects, performs the MCP handshake and discovery
//! (`handshake.rs`), retries with exponential backoff after a failed
//! attempt or a death, rediscovers on `list_changed`, and stops on request.
//! Everything the rest of the gateway needs is read through snapshots.

pub mod backoff;
pub mod conn;
pub mod error;
pub mod handshake;
pub mod instances;
pub mod local;
mod pipe;
pub mod sse;
pub mod stats;
pub mod stdio;
pub mod streamable;
mod supervisor;
pub mod wire;

use crate::codec::jsonrpc;
use crate::codec::mcp::method;
use crate::codec::ErrorObj;
use crate::config::BackendConfig;
use crate::route::{ClientLink, Hub};
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender};
use parking_lot::{Mutex, RwLock};
use serde::Serialize;
use serde_json::Value;
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

pub use backoff::Policy;
pub use conn::{envelope, Conn, ConnSpec, Outgoing, Reply, Sink};
pub use error::{BackendError, ErrorKind};
pub use stats::Stats;
pub use supervisor::ReconnectReply;
use supervisor::Supervisor;

/// Messages to a backend's supervisor thread.
pub enum SupervisorMsg {
    /// The connection of that generation ended on its own.
    Died { generation: u64, reason: String },
    /// The backend announced a `list_changed` (any kind).
    ListChanged { generation: u64 },
    /// Close and connect again now; the reply says how it went.
    Reconnect(Option<ReconnectReply>),
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
    /// The supervisor thread, and a channel that disconnects as it ends.
    thread: Mutex<Option<(JoinHandle<()>, Receiver<()>)>>,
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
        let (exited, exited_rx) = bounded(0);
        let sup = Supervisor { backend: b.clone(), rx: ctl_rx, events, ring, generation: 0, _exited: exited };
        match crate::thread::spawn(format!("backend:{}", b.name), move || {
            sup.run();
            Ok(())
        }) {
            Ok(h) => *b.thread.lock() = Some((h, exited_rx)),
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
    pub fn reconnect(&self, reply: Option<ReconnectReply>) -> bool {
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
        let protocol = self.config.protocol;
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
        self.instances.with(&self.name, session, max, move || instances::open(&spec, &transport, protocol), ready);
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
        let Some((h, exited)) = self.thread.lock().take() else { return };
        // Nothing is ever sent: the channel disconnects when the supervisor
        // is dropped at the end of its thread, and the join after that
        // returns at once.
        match exited.recv_timeout(wait) {
            Err(RecvTimeoutError::Disconnected) | Ok(()) => {
                let _ = h.join();
            }
            Err(RecvTimeoutError::Timeout) => log::warn!("backend '{}' did not stop within {:?}", self.name, wait),
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

/// Sends a request whose answer nobody waits for (a refusal is logged).
/// Holds (`on`) or lets go of a resource subscription at a backend: a
/// `resources/subscribe` or `unsubscribe` for a session revision, the
/// filter of the gateway's listen for 2026-07-28 (those methods are gone).
pub fn subscribe(conn: &Conn, uri: &str, on: bool) {
    if conn.is_modern() {
        conn.listen_to_resource(uri, on);
    } else {
        let m = if on { method::SUBSCRIBE } else { method::UNSUBSCRIBE };
        fire_and_forget(conn, m, serde_json::json!({ "uri": uri }));
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::EventRing;

    fn backend(entry: &str) -> (Arc<Backend>, Receiver<BackendEvent>) {
        let text = format!(r#"{{"mcpServers": {{"b": {entry}}}}}"#);
        let config = crate::config::parse_with_env(&text, None, &|_| None).unwrap();
        let bc = config.backends[0].clone();
        let (tx, rx) = bounded(16);
        let b = Backend::start(
            bc,
            Policy::of(&config.server),
            tx,
            Arc::new(EventRing::new(16)),
            Arc::new(crate::route::NoHub),
        );
        (b, rx)
    }

    /// `stop` returns as the supervisor ends, not at the next poll.
    #[test]
    fn stop_waits_for_the_supervisor_without_polling() {
        let (b, events) = backend(r#"{"command": "x", "enabled": false}"#);
        assert!(events.recv_timeout(Duration::from_secs(5)).is_ok());
        assert_eq!(b.status().state, State::Disabled);
        let start = Instant::now();
        b.stop(Duration::from_secs(5));
        assert!(start.elapsed() < Duration::from_secs(1), "{:?}", start.elapsed());
        assert!(b.thread.lock().is_none());
        // A second stop has nothing to wait for.
        b.stop(Duration::from_secs(5));
    }

    /// An idle supervisor answers a reconnect with why it cannot, by kind.
    #[test]
    fn an_idle_supervisor_refuses_a_reconnect() {
        let (off, _e1) = backend(r#"{"command": "x", "enabled": false}"#);
        let (bad, _e2) = backend(r#"{"type": "sse"}"#);
        for (b, disabled) in [(&off, true), (&bad, false)] {
            let (tx, rx) = bounded(1);
            assert!(b.reconnect(Some(tx)));
            let e = rx.recv_timeout(Duration::from_secs(5)).unwrap().unwrap_err();
            assert_eq!(matches!(e.kind(), ErrorKind::Disabled), disabled, "{e:?}");
            assert_eq!(matches!(e.kind(), ErrorKind::Invalid(_)), !disabled, "{e:?}");
            let st = b.status();
            assert_eq!(e.to_string(), st.last_error.unwrap_or_else(|| st.state.as_str().to_owned()));
            b.stop(Duration::from_secs(5));
        }
    }
}
