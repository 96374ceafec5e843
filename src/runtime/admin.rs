//! The admin loop: the one thread (the main thread) that mutates the
//! runtime. It selects over admin commands, backend events, signals and a
//! ticker; the tick expires timed-out calls and idle sessions.

use super::{AdminCommand, Runtime, ServerState};
use crate::backend::BackendEvent;
use crossbeam_channel::{select, tick, Receiver};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often call deadlines are checked (the timeout precision).
const TICK: Duration = Duration::from_millis(100);
/// Idle Streamable HTTP sessions without a stream are dropped after this.
const SESSION_TTL: Duration = Duration::from_secs(30 * 60);
/// How long shutdown waits for each backend to stop.
const STOP_WAIT: Duration = Duration::from_secs(5);

pub struct AdminLoop {
    rt: Arc<Runtime>,
    admin_rx: Receiver<AdminCommand>,
    backend_rx: Receiver<BackendEvent>,
}

/// Things the loop stops when the gateway shuts down (listeners).
pub trait Stoppable {
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
    pub fn run(self, listeners: Vec<Box<dyn Stoppable>>) {
        let rt = &self.rt;
        rt.events.push(
            super::Level::Info,
            "server.starting",
            None,
            format!("starting {} backends", rt.config().backends.len()),
        );
        rt.start_backends();
        rt.update_state();
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
                    Err(_) => break "admin channel closed".to_owned(),
                },
                recv(ticker) -> _ => {
                    let now = Instant::now();
                    for b in rt.backends() {
                        b.expire(now);
                    }
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
        std::thread::scope(|scope| {
            for b in &backends {
                scope.spawn(move || b.stop(STOP_WAIT));
            }
        });
        rt.set_state(ServerState::Stopped);
    }
}
