//! The admin loop: the one thread (the main thread) that mutates the
//! runtime. It selects over admin commands, backend events, signals and a
//! ticker; the tick expires timed-out calls and idle sessions.

use super::{AdminCommand, AdminError, BackendView, Level, ReloadReport, Runtime, ServerState};
use crate::backend::{Backend, BackendEvent, Policy, State as BackendState};
use crossbeam_channel::{bounded, select, tick, Receiver};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often call deadlines are checked (the timeout precision).
const TICK: Duration = Duration::from_millis(100);
/// Idle Streamable HTTP sessions without a stream are dropped after this.
const SESSION_TTL: Duration = Duration::from_secs(30 * 60);
/// How long shutdown waits for each backend to stop.
const STOP_WAIT: Duration = Duration::from_secs(5);
/// Longest a reload or reconnect waits for backends to finish connecting
/// (each backend's own `timeout_s` bounds it first).
const SETTLE_MAX: Duration = Duration::from_secs(30);

/// Stops backends in parallel (each may take a kill grace period) and
/// waits for all of them.
fn stop_all(backends: &[Arc<Backend>]) {
    std::thread::scope(|scope| {
        for b in backends {
            scope.spawn(move || b.stop(STOP_WAIT));
        }
    });
}

pub struct AdminLoop {
    rt: Arc<Runtime>,
    admin_rx: Receiver<AdminCommand>,
    backend_rx: Receiver<BackendEvent>,
}

/// Things the loop stops when the gateway shuts down (listeners).
pub trait Stoppable: Send {
    fn stop(&self);
}

impl AdminLoop {
    pub(super) fn new(
        rt: Arc<Runtime>,
        admin_rx: Receiver<AdminCommand>,
        backend_rx: Receiver<BackendEvent>,
    ) -> AdminLoop {
        AdminLoop { rt, admin_rx, backend_rx }
    }

    /// Runs until shutdown. `listeners` are stopped first, so no new client
    /// arrives while backends are being stopped.
    /// Starts every configured backend (as `pending`, connecting in their
    /// own threads). Called before the listeners open, so the first
    /// `/backends` already lists them all; their events wait in the
    /// channel until [`AdminLoop::run`].
    pub fn start_backends(&self) {
        let rt = &self.rt;
        rt.events.push(
            super::Level::Info,
            "server.starting",
            None,
            format!("starting {} backends", rt.config().backends.len()),
        );
        rt.start_backends();
    }

    /// Stops the backends started by [`AdminLoop::start_backends`] when the
    /// gateway cannot start after all (a listener failed to bind).
    pub fn abort(&self) {
        let backends = self.rt.backends();
        stop_all(&backends);
    }

    pub fn run(self, listeners: Vec<Box<dyn Stoppable>>) {
        let rt = &self.rt;
        // Backends may have connected before the loop started: the registry
        // must hold their capabilities before the state can say ready.
        while self.backend_rx.try_recv().is_ok() {}
        rt.rebuild();
        let ticker = tick(TICK);
        let mut last_expire = Instant::now();
        let reason = loop {
            select! {
                recv(self.backend_rx) -> ev => {
                    if ev.is_err() { break "backend channel closed".to_owned(); }
                    // Coalesce a burst of changes into one rebuild.
                    while self.backend_rx.try_recv().is_ok() {}
                    rt.rebuild();
                }
                recv(self.admin_rx) -> cmd => match cmd {
                    Ok(AdminCommand::Shutdown { reason }) => break reason,
                    Ok(AdminCommand::Reload { reply }) => {
                        let r = self.reload();
                        let _ = reply.try_send(r);
                    }
                    Ok(AdminCommand::Reconnect { name, reply }) => {
                        let r = self.reconnect(&name);
                        let _ = reply.try_send(r);
                    }
                    Err(_) => break "admin channel closed".to_owned(),
                },
                recv(ticker) -> _ => {
                    let now = Instant::now();
                    self.expire_calls(now);
                    if now.duration_since(last_expire) > Duration::from_secs(10) {
                        last_expire = now;
                        let n = rt.sessions.expire(SESSION_TTL);
                        if n > 0 {
                            log::info!("expired {n} idle sessions");
                        }
                    }
                }
            }
        };
        self.shutdown(&reason, listeners);
    }

    /// Re-reads the config file and applies the difference by backend name:
    /// new names start, missing ones stop, changed ones restart, identical
    /// ones are left alone (same process, same sessions). Listen addresses,
    /// the management section and `max_sessions` need a restart; a change
    /// to them is reported in `notes` and the running values are kept.
    fn reload(&self) -> Result<ReloadReport, AdminError> {
        let rt = &self.rt;
        let cur = rt.config();
        let Some(path) = cur.path.clone() else {
            return Err(AdminError::BadRequest("the gateway was started without a config file".into()));
        };
        let overrides = rt.overrides.lock().clone();
        let loaded = crate::config::load(&path).and_then(|mut c| c.apply_overrides(&overrides).map(|()| c));
        let mut next = match loaded {
            Ok(c) => c,
            Err(e) => {
                let msg = e.to_string();
                rt.events.push(Level::Error, "config.reload_failed", None, msg.clone());
                return Err(AdminError::BadRequest(msg));
            }
        };
        let mut notes = Vec::new();
        if next.server.listen != cur.server.listen {
            notes.push(format!("server.listen changed to {}; restart to apply", next.server.listen));
        }
        for (changed, key) in [
            (next.server.max_sessions != cur.server.max_sessions, "max_sessions"),
            (next.server.max_connections != cur.server.max_connections, "max_connections"),
            (next.server.max_connections_per_ip != cur.server.max_connections_per_ip, "max_connections_per_ip"),
            (next.server.max_inflight_per_session != cur.server.max_inflight_per_session, "max_inflight_per_session"),
        ] {
            if changed {
                notes.push(format!("server.{key} changed; restart to apply"));
            }
        }
        if next.manage != cur.manage {
            notes.push("the manage section changed; restart to apply".to_owned());
        }
        next.server.listen = cur.server.listen.clone();
        next.server.max_sessions = cur.server.max_sessions;
        next.server.max_connections = cur.server.max_connections;
        next.server.max_connections_per_ip = cur.server.max_connections_per_ip;
        next.server.max_inflight_per_session = cur.server.max_inflight_per_session;
        next.manage = cur.manage.clone();

        let old = rt.backends();
        let mut report = ReloadReport { notes, ..ReloadReport::default() };
        // Each new entry with the running backend of the same name, if any.
        let pairs: Vec<_> = next.backends.iter().map(|bc| (bc, old.iter().find(|b| *b.name == *bc.name))).collect();
        let mut to_stop: Vec<Arc<Backend>> = Vec::new();
        for (bc, prev) in &pairs {
            match prev {
                Some(b) if b.config == **bc => report.unchanged.push(bc.name.clone()),
                Some(b) => {
                    report.restarted.push(bc.name.clone());
                    to_stop.push((*b).clone());
                }
                None => report.added.push(bc.name.clone()),
            }
        }
        for b in &old {
            if !next.backends.iter().any(|bc| *bc.name == *b.name) {
                report.removed.push(b.name.to_string());
                to_stop.push(b.clone());
            }
        }
        // Stop first, so a restarted stdio backend's old child is gone
        // before the new one starts (a local SSE server keeps its port).
        stop_all(&to_stop);
        let backoff = Policy::of(&next.server);
        let mut list: Vec<Arc<Backend>> = Vec::with_capacity(pairs.len());
        let mut started: Vec<Arc<Backend>> = Vec::new();
        for (bc, prev) in pairs {
            let b = match prev {
                Some(b) if b.config == *bc => {
                    // Same connection; new retry timing from its next wait on.
                    b.set_backoff(backoff);
                    list.push(b.clone());
                    continue;
                }
                Some(prev) => {
                    Backend::restart_from(prev, bc.clone(), backoff, rt.backend_tx.clone(), rt.events.clone())
                }
                None => Backend::start(bc.clone(), backoff, rt.backend_tx.clone(), rt.events.clone(), rt.hub.clone()),
            };
            started.push(b.clone());
            list.push(b);
        }
        *rt.config.write() = Arc::new(next);
        *rt.backends.write() = list;
        report.revision = rt.revision.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        rt.events.push(
            Level::Info,
            "config.reloaded",
            None,
            format!(
                "revision {}: {} added, {} removed, {} restarted, {} unchanged",
                report.revision,
                report.added.len(),
                report.removed.len(),
                report.restarted.len(),
                report.unchanged.len()
            ),
        );
        rt.rebuild();
        self.settle(&started);
        Ok(report)
    }

    /// Reconnects one backend and waits for the outcome.
    fn reconnect(&self, name: &str) -> Result<BackendView, AdminError> {
        let rt = &self.rt;
        let b = rt.backend(name).ok_or_else(|| AdminError::NotFound(format!("no backend named '{name}'")))?;
        if let Err(e) = &b.config.transport {
            return Err(AdminError::Conflict(format!("backend '{name}' has an invalid configuration: {e}")));
        }
        if !b.config.enabled {
            return Err(AdminError::Conflict(format!("backend '{name}' is disabled")));
        }
        let (tx, rx) = bounded(1);
        if !b.reconnect(Some(tx)) {
            return Err(AdminError::Unavailable(format!("backend '{name}' is not responding")));
        }
        let deadline = Instant::now() + b.timeout().min(SETTLE_MAX) + Duration::from_secs(5);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            select! {
                recv(rx) -> _ => break,
                recv(self.backend_rx) -> ev => {
                    if ev.is_err() { break; }
                    rt.rebuild();
                }
                default(left.min(TICK)) => {}
            }
            // Calls keep their deadlines while a reconnect waits.
            self.expire_calls(Instant::now());
        }
        rt.rebuild();
        Ok(rt.backend_snapshot(&b, &rt.registry()))
    }

    /// Waits (bounded) until each of `backends` has left pending and
    /// connecting, rebuilding the registry as their events arrive.
    fn settle(&self, backends: &[Arc<Backend>]) {
        let rt = &self.rt;
        let longest = backends.iter().map(|b| b.timeout()).max().unwrap_or_default();
        let deadline = Instant::now() + longest.min(SETTLE_MAX) + Duration::from_secs(1);
        let settling =
            || backends.iter().any(|b| matches!(b.status().state, BackendState::Pending | BackendState::Connecting));
        while settling() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            select! {
                recv(self.backend_rx) -> ev => {
                    if ev.is_err() { break; }
                    while self.backend_rx.try_recv().is_ok() {}
                    rt.rebuild();
                }
                default(left.min(TICK)) => {}
            }
            // Calls keep their deadlines while a reload waits.
            self.expire_calls(Instant::now());
        }
        rt.rebuild();
    }

    /// Fails calls past their deadline (-32002) on every backend, and
    /// requests to clients (sampling, elicitation, roots) past theirs;
    /// forgets the subscriptions of sessions that ended.
    fn expire_calls(&self, now: Instant) {
        for b in self.rt.backends() {
            b.expire(now);
        }
        self.rt.sessions.expire_requests(now);
        self.rt.prune_subscriptions();
        self.rt.check_grace();
        self.rt.run_tick_hooks(now);
        for b in self.rt.backends() {
            b.prune_instances(|id| self.rt.sessions.get(id).is_some());
        }
    }

    fn shutdown(&self, reason: &str, listeners: Vec<Box<dyn Stoppable>>) {
        let rt = &self.rt;
        rt.set_state(ServerState::Stopping);
        rt.events.push(super::Level::Info, "server.stopping", None, reason.to_owned());
        for l in &listeners {
            l.stop();
        }
        for s in rt.sessions.all() {
            rt.sessions.remove(&s.id);
        }
        // Stop backends in parallel: each may take a kill grace period.
        let backends = rt.backends();
        stop_all(&backends);
        rt.set_state(ServerState::Stopped);
    }
}
