//! The admin loop: the one thread (the main thread) that mutates the
//! runtime. It selects over admin commands, backend events, signals and a
//! ticker; the tick expires timed-out calls, requests to clients and idle
//! sessions. Its own waits (a reload stopping and settling backends, a
//! reconnect's attempt, shutdown's stops) are `select!`s that keep doing
//! the tick's work, so no deadline waits for them.

use super::reload::{self, Action};
use super::{AdminCommand, AdminError, BackendView, Level, ReloadReport, Runtime, ServerState};
use crate::api::Names;
use crate::backend::{Backend, BackendEvent, Policy, State as BackendState};
use crate::config::BackendConfig;
use crossbeam_channel::{bounded, never, select, tick, Receiver};
use std::cell::Cell;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often call deadlines are checked (the timeout precision).
const TICK: Duration = Duration::from_millis(100);
/// How often idle sessions are looked for.
const SESSION_CHECK: Duration = Duration::from_secs(10);
/// Idle Streamable HTTP sessions without a stream are dropped after this.
const SESSION_TTL: Duration = Duration::from_secs(30 * 60);
/// How long shutdown waits for each backend to stop.
const STOP_WAIT: Duration = Duration::from_secs(5);
/// Longest a reload or reconnect waits for backends to finish connecting
/// (each backend's own `timeout_s` bounds it first).
const SETTLE_MAX: Duration = Duration::from_secs(30);

/// Whether a wait of the admin thread follows the backends' events
/// (rebuilding the registry) while it waits.
#[derive(Clone, Copy)]
enum Follow {
    /// Leave them queued (stopping: the registry changes once the new
    /// backend list is in place).
    No,
    /// One rebuild per event, so clients see each step (a reconnect).
    EachEvent,
    /// One rebuild per burst (settling after a reload).
    Bursts,
}

pub struct AdminLoop {
    rt: Arc<Runtime>,
    admin_rx: Receiver<AdminCommand>,
    backend_rx: Receiver<BackendEvent>,
    /// When idle sessions were last looked for.
    sessions_checked: Cell<Instant>,
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
        AdminLoop { rt, admin_rx, backend_rx, sessions_checked: Cell::new(Instant::now()) }
    }

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
        self.stop_all(&backends);
    }

    /// Runs until shutdown. `listeners` are stopped first, so no new client
    /// arrives while backends are being stopped.
    pub fn run(self, listeners: Vec<Box<dyn Stoppable>>) {
        let rt = &self.rt;
        // Backends may have connected before the loop started: the registry
        // must hold their capabilities before the state can say ready.
        while self.backend_rx.try_recv().is_ok() {}
        rt.rebuild();
        let ticker = tick(TICK);
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
                recv(ticker) -> _ => self.on_tick(Instant::now()),
            }
        };
        self.shutdown(&reason, listeners);
    }

    /// Re-reads the config file and applies the difference by backend name
    /// ([`reload::plan`]): new names start, missing ones stop, changed ones
    /// restart, identical ones are left alone (same process, same
    /// sessions). Listen addresses, the management section and the session
    /// and connection bounds need a restart; a change to them is reported
    /// in `notes` and the running values are kept.
    fn reload(&self) -> Result<ReloadReport, AdminError> {
        let rt = &self.rt;
        let cur = rt.config();
        let Some(path) = cur.path.clone() else {
            return Err(AdminError::BadRequest("the gateway was started without a config file".into()));
        };
        let overrides = rt.overrides.lock().clone();
        let loaded = crate::config::load(&path).and_then(|mut c| c.apply_overrides(&overrides).map(|()| c));
        let next = match loaded {
            Ok(c) => c,
            Err(e) => {
                let msg = e.to_string();
                rt.events.push(Level::Error, "config.reload_failed", None, msg.clone());
                return Err(AdminError::BadRequest(msg));
            }
        };
        let old = rt.backends();
        let running: Vec<&BackendConfig> = old.iter().map(|b| &b.config).collect();
        let plan = reload::plan(&cur, &running, next);
        let restarted = plan.names(Action::Restart);
        let running = |name: &str| old.iter().find(|b| *b.name == *name);
        // Stop first, so a restarted stdio backend's old child is gone
        // before the new one starts (a local SSE server keeps its port).
        let to_stop: Vec<Arc<Backend>> =
            restarted.iter().chain(&plan.removed).filter_map(|n| running(n).cloned()).collect();
        let mut report = ReloadReport {
            added: Names::List(plan.names(Action::Add)),
            removed: Names::List(plan.removed.clone()),
            restarted: Names::List(restarted),
            unchanged: Names::List(plan.names(Action::Keep)),
            notes: plan.notes.clone(),
            ..ReloadReport::default()
        };
        self.stop_all(&to_stop);
        let backoff = Policy::of(&plan.config.server);
        let mut list: Vec<Arc<Backend>> = Vec::with_capacity(plan.actions.len());
        let mut started: Vec<Arc<Backend>> = Vec::new();
        for (bc, action) in plan.config.backends.iter().zip(&plan.actions) {
            let b = match (action, running(&bc.name)) {
                (Action::Keep, Some(b)) => {
                    // Same connection; new retry timing from its next wait on.
                    b.set_backoff(backoff);
                    list.push(b.clone());
                    continue;
                }
                (Action::Restart, Some(prev)) => {
                    Backend::restart_from(prev, bc.clone(), backoff, rt.backend_tx.clone(), rt.events.clone())
                }
                _ => Backend::start(bc.clone(), backoff, rt.backend_tx.clone(), rt.events.clone(), rt.hub.clone()),
            };
            started.push(b.clone());
            list.push(b);
        }
        *rt.config.write() = Arc::new(plan.config);
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
        // The outcome itself is in the backend's view (`last_error`).
        let deadline = Instant::now() + b.timeout().min(SETTLE_MAX) + Duration::from_secs(5);
        self.wait(&rx, Some(deadline), Follow::EachEvent, || false);
        rt.rebuild();
        Ok(rt.backend_snapshot(&b, &rt.registry()))
    }

    /// Waits (bounded) until each of `backends` has left pending and
    /// connecting, rebuilding the registry as their events arrive.
    fn settle(&self, backends: &[Arc<Backend>]) {
        let longest = backends.iter().map(|b| b.timeout()).max().unwrap_or_default();
        let deadline = Instant::now() + longest.min(SETTLE_MAX) + Duration::from_secs(1);
        let settled =
            || !backends.iter().any(|b| matches!(b.status().state, BackendState::Pending | BackendState::Connecting));
        self.wait(&never::<()>(), Some(deadline), Follow::Bursts, settled);
        self.rt.rebuild();
    }

    /// Stops backends in parallel (each may take a kill grace period) and
    /// waits for all of them, keeping the tick's work meanwhile.
    fn stop_all(&self, backends: &[Arc<Backend>]) {
        let (done_tx, done) = bounded::<()>(0);
        std::thread::scope(|scope| {
            for b in backends {
                // Dropped when this stop returns: `done` disconnects once
                // every stop has.
                let done_tx = done_tx.clone();
                scope.spawn(move || {
                    b.stop(STOP_WAIT);
                    drop(done_tx);
                });
            }
            drop(done_tx);
            self.wait(&done, None, Follow::No, || false);
        });
    }

    /// The admin thread's one way to wait: until `done` delivers or
    /// disconnects, `settled` holds, or `deadline` passes. Meanwhile it
    /// does the tick's work and, per `follow`, rebuilds the registry on
    /// backend events.
    fn wait<T>(&self, done: &Receiver<T>, deadline: Option<Instant>, follow: Follow, settled: impl Fn() -> bool) {
        let ticker = tick(TICK);
        let timeout = deadline.map_or_else(never, crossbeam_channel::at);
        let events = match follow {
            Follow::No => never(),
            Follow::EachEvent | Follow::Bursts => self.backend_rx.clone(),
        };
        while !settled() {
            select! {
                recv(done) -> _ => break,
                recv(timeout) -> _ => break,
                recv(events) -> ev => {
                    if ev.is_err() { break; }
                    if let Follow::Bursts = follow {
                        while self.backend_rx.try_recv().is_ok() {}
                    }
                    self.rt.rebuild();
                }
                recv(ticker) -> _ => self.on_tick(Instant::now()),
            }
        }
    }

    /// The tick's work: deadlines every tick, idle sessions every
    /// [`SESSION_CHECK`].
    fn on_tick(&self, now: Instant) {
        self.expire_calls(now);
        if now.duration_since(self.sessions_checked.get()) > SESSION_CHECK {
            self.sessions_checked.set(now);
            let n = self.rt.sessions.expire(SESSION_TTL);
            if n > 0 {
                log::info!("expired {n} idle sessions");
            }
        }
    }

    /// Fails calls past their deadline (-32002) on every backend, and
    /// requests to clients (sampling, elicitation, roots) past theirs;
    /// forgets the subscriptions of sessions that ended; releases requests
    /// held past the start-up grace; ends the per-session connections of
    /// sessions that ended.
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
        self.stop_all(&backends);
        rt.set_state(ServerState::Stopped);
    }
}

#[cfg(test)]
mod tests {
    //! The admin loop's command handling, driven without processes: the
    //! backends here are disabled or invalid, so their supervisors only
    //! idle until stopped.

    use super::*;
    use crate::runtime::AdminError;
    use std::path::PathBuf;

    /// A config file of its own for each test (removed on drop).
    struct File(PathBuf);

    impl File {
        fn new(tag: &str, text: &str) -> File {
            let dir = std::env::temp_dir().join(format!("mcp-sentinel-admin-{}-{tag}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let f = File(dir.join("config.json"));
            f.write(text);
            f
        }

        fn write(&self, text: &str) {
            std::fs::write(&self.0, text).unwrap();
        }
    }

    impl Drop for File {
        fn drop(&mut self) {
            if let Some(dir) = self.0.parent() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }

    fn runtime(file: &File) -> (Arc<Runtime>, AdminLoop) {
        let config = crate::config::load(&file.0).unwrap();
        let (rt, lp) = Runtime::new(config);
        lp.start_backends();
        (rt, lp)
    }

    fn names(rt: &Runtime) -> Vec<String> {
        rt.backends().iter().map(|b| b.name.to_string()).collect()
    }

    #[test]
    fn reconnect_refuses_unknown_invalid_and_disabled_backends() {
        let f = File::new(
            "reconnect",
            r#"{"mcpServers": {"off": {"command": "x", "enabled": false}, "bad": {"type": "sse"}}}"#,
        );
        let (rt, lp) = runtime(&f);
        assert_eq!(lp.reconnect("nope").err(), Some(AdminError::NotFound("no backend named 'nope'".into())));
        assert_eq!(lp.reconnect("off").err(), Some(AdminError::Conflict("backend 'off' is disabled".into())));
        match lp.reconnect("bad") {
            Err(AdminError::Conflict(m)) => {
                assert!(m.starts_with("backend 'bad' has an invalid configuration: "), "{m}")
            }
            other => panic!("{other:?}"),
        }
        lp.abort();
        assert_eq!(names(&rt), ["off", "bad"]);
    }

    #[test]
    fn reload_applies_the_difference_by_name() {
        let f = File::new(
            "reload",
            r#"{"mcpServers": {
                "keep": {"command": "a", "enabled": false},
                "change": {"command": "b", "enabled": false},
                "gone": {"command": "c", "enabled": false}
            }}"#,
        );
        let (rt, lp) = runtime(&f);
        let kept = rt.backend("keep").unwrap();
        let changed = rt.backend("change").unwrap();
        f.write(
            r#"{"mcpServers": {
                "new": {"command": "d", "enabled": false},
                "change": {"command": "b", "args": ["x"], "enabled": false},
                "keep": {"command": "a", "enabled": false}
            },
            "server": {"listen": "127.0.0.1:9999"}}"#,
        );
        let r = lp.reload().unwrap();
        let list = |n: &str| Names::List(vec![n.to_owned()]);
        assert_eq!(
            (r.added, r.removed, r.restarted, r.unchanged),
            (list("new"), list("gone"), list("change"), list("keep"))
        );
        assert_eq!(r.notes, ["server.listen changed to 127.0.0.1:9999; restart to apply"]);
        assert_eq!(r.revision, 2);
        assert_eq!(names(&rt), ["new", "change", "keep"]);
        assert!(Arc::ptr_eq(&kept, &rt.backend("keep").unwrap()), "an unchanged backend is the same one");
        let replaced = rt.backend("change").unwrap();
        assert!(!Arc::ptr_eq(&changed, &replaced));
        assert_eq!(replaced.status().restarts, changed.status().restarts + 1);
        assert_eq!(rt.config().server.listen, "127.0.0.1:9000", "the running listener is kept");
        assert_eq!(replaced.status().state, BackendState::Disabled, "settled before the answer");
        assert_eq!(rt.state(), ServerState::Ready, "no enabled backend: ready");

        // A broken file changes nothing.
        f.write("{");
        match lp.reload() {
            Err(AdminError::BadRequest(m)) => assert!(m.contains("not valid JSON"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(names(&rt), ["new", "change", "keep"]);
        assert_eq!(rt.revision(), 2);
        lp.abort();
    }

    #[test]
    fn reload_without_a_file_is_refused() {
        let (rt, lp) = Runtime::new(crate::config::Config::default_with_backends(Vec::new()));
        assert_eq!(lp.reload(), Err(AdminError::BadRequest("the gateway was started without a config file".into())));
        assert_eq!(rt.revision(), 1);
    }

    /// While the admin thread waits (a reload settling, a reconnect, a
    /// stop), the tick's work goes on: here, requests held for the
    /// start-up grace are released.
    #[test]
    fn a_wait_keeps_doing_the_ticks_work() {
        let f = File::new("tick", r#"{"mcpServers": {}, "server": {"startup_grace_s": 0}}"#);
        let (rt, lp) = runtime(&f);
        let released = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let r = released.clone();
        let parked = rt.park(Box::new(move || r.store(true, std::sync::atomic::Ordering::SeqCst)));
        assert!(parked.is_ok());
        let start = Instant::now();
        let deadline = start + Duration::from_secs(5);
        lp.wait(&never::<()>(), Some(deadline), Follow::No, || released.load(std::sync::atomic::Ordering::SeqCst));
        assert!(released.load(std::sync::atomic::Ordering::SeqCst), "not released within {:?}", start.elapsed());
        assert!(start.elapsed() < Duration::from_secs(1), "{:?}", start.elapsed());
    }

    #[test]
    fn shutdown_stops_backends_and_ends_the_loop() {
        let f = File::new("shutdown", r#"{"mcpServers": {"off": {"command": "x", "enabled": false}}}"#);
        let (rt, lp) = runtime(&f);
        let (done_tx, done) = bounded::<()>(0);
        std::thread::spawn(move || {
            lp.run(Vec::new());
            drop(done_tx);
        });
        rt.admin().send(AdminCommand::Shutdown { reason: "test".into() }).unwrap();
        assert!(done.recv_timeout(Duration::from_secs(5)).is_err_and(|e| e.is_disconnected()));
        assert_eq!(rt.state(), ServerState::Stopped);
        let kinds: Vec<String> = rt.events.since(0, 100).into_iter().map(|e| e.kind).collect();
        assert!(kinds.iter().any(|k| k == "server.stopping"), "{kinds:?}");
    }
}
