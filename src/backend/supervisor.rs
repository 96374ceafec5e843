//! The supervisor thread of one backend (`backend:<name>`): connect,
//! handshake and discovery (`handshake.rs`), then, while connected, one
//! `select!` over deaths, list changes, reconnect, stop and the liveness
//! ping; after a failure or a death, a backoff wait that only `Stop` and
//! `Reconnect` end early. It owns the backend's state transitions and
//! pushes the `backend.*` events. It ends on `Stop` (or when its channel
//! closes), dropping `_exited` as it goes, which is what
//! [`Backend::stop`] waits for.

use super::backoff;
use super::conn::{Conn, ConnSpec, Reply, Sink};
use super::error::{BackendError, ErrorKind};
use super::handshake::{handshake, open_transport, Handshake};
use super::{fire_and_forget, Backend, BackendEvent, State, SupervisorMsg};
use crate::codec::mcp::method;
use crate::config::Transport;
use crate::events::{EventRing, Level};
use crossbeam_channel::{bounded, select, Receiver, Sender};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// A connection that stayed up this long was a success: the backoff starts
/// over. One that died sooner counts as a failed attempt, so a backend that
/// crashes right after its handshake is not restarted in a tight loop.
pub(super) const STABLE_AFTER: Duration = Duration::from_secs(10);
/// Longest wait for the answer to a liveness ping (`timeout_s` if shorter):
/// a ping needs no work, so a backend that takes longer is stuck.
const PING_WAIT_MAX: Duration = Duration::from_secs(10);

/// The answer to a reconnect request: how the attempt it caused went.
pub type ReconnectReply = Sender<Result<(), BackendError>>;

pub(super) struct Supervisor {
    pub(super) backend: Arc<Backend>,
    pub(super) rx: Receiver<SupervisorMsg>,
    pub(super) events: Sender<BackendEvent>,
    pub(super) ring: Arc<EventRing>,
    pub(super) generation: u64,
    /// Never sent on: dropped with the supervisor when its thread ends, so
    /// that [`Backend::stop`] waits on the channel instead of polling the
    /// thread.
    pub(super) _exited: Sender<()>,
}

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

    pub(super) fn run(mut self) {
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
        let mut reply: Option<ReconnectReply> = None;
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
                    let text = e.to_string();
                    self.set_state(State::Failed, Some(text.clone()));
                    self.event(Level::Error, "backend.failed", text);
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

    /// An invalid or disabled backend: nothing to connect; a reconnect is
    /// answered at once with why.
    fn idle_until_stop(&self) {
        while let Ok(msg) = self.rx.recv() {
            match msg {
                SupervisorMsg::Stop => return,
                SupervisorMsg::Reconnect(Some(r)) => {
                    let kind = match &self.b().config.transport {
                        Err(e) => ErrorKind::Invalid(e.clone()),
                        Ok(_) => ErrorKind::Disabled,
                    };
                    let _ = r.try_send(Err(BackendError::new(&self.b().name, kind)));
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
                match super::handshake::discover(conn, &self.b().status().caps, self.b().timeout()) {
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

    fn connect(&mut self, transport: &Transport) -> Result<Arc<Conn>, BackendError> {
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
                return Err(BackendError::new(&b.name, ErrorKind::Stopped));
            }
            g.1 = Some(conn.clone());
        }
        let shaken = handshake(&conn, transport, b.config.protocol, b.timeout());
        b.handshaking.lock().1 = None;
        match shaken {
            Ok((Handshake { server_info, caps, version }, discovered)) => {
                // Capabilities and the connection first: whoever sees
                // `connected` (a registry rebuild, a snapshot) finds them.
                *b.discovered.write() = Arc::new(discovered);
                *b.conn.write() = Some(conn.clone());
                {
                    let mut s = b.status.lock();
                    s.state = State::Connected;
                    s.last_error = None;
                    s.pid = conn.pid;
                    s.server_info = Some(server_info);
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
                conn.close(&e.to_string());
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
        if conn.is_modern() {
            // 2026-07-28 has no session to hold a level or subscriptions:
            // the level goes with each request, subscriptions with the
            // gateway's listen, which opens now.
            conn.start_listen(b.hub.subscriptions(&b.name));
            return;
        }
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
        // 2026-07-28 has no ping; `server/discover` is as cheap.
        let m = if conn.is_modern() { method::DISCOVER } else { method::PING };
        match conn.call(m, None, Sink::Chan(tx), self.wait + Duration::from_secs(1)) {
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
    Reconnect(Option<ReconnectReply>),
    /// The connection died on its own: wait (backoff), then connect again.
    Died,
}

/// How a wait between attempts ended.
enum Wake {
    Stop,
    /// Connect now; the reply gets that attempt's outcome.
    Reconnect(Option<ReconnectReply>),
    Elapsed,
}
