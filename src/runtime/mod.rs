//! The runtime service: owns the backends, the merged registry, the client
//! sessions, the event ring and the gateway's state machine
//! (`starting → ready | degraded | failed → stopping → stopped`).
//!
//! HTTP handler threads read it through cheap accessors (an `Arc` clone of
//! the registry snapshot, a session lookup). Every mutation runs on the one
//! admin thread ([`admin::AdminLoop`]), fed by channels, so reloads,
//! reconnects, rebuilds and shutdown never interleave. The management API
//! reads it through these accessors, and gets one backend's BACKEND_VIEW
//! from [`Runtime::backend_snapshot`] (which the admin thread also sends
//! back after a reconnect).

pub mod admin;
pub mod hub;
mod reload;
mod state;

pub use state::ServerState;

use crate::api::{BackendView, CapabilityCounts, ReloadReport};
use crate::backend::{Backend, BackendEvent, Policy, State as BackendState};
use crate::config::Config;
use crate::events::{EventRing, Level};
use crate::registry::{Conflict, Registry, Source};
use crate::session::SessionTable;
use crossbeam_channel::{bounded, Sender};
use parking_lot::{Mutex, RwLock};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

/// Commands for the admin thread. Each carries its reply channel when the
/// sender waits for the outcome.
pub enum AdminCommand {
    Shutdown {
        reason: String,
    },
    /// Re-read the config file and apply the difference.
    Reload {
        reply: Sender<Result<ReloadReport, AdminError>>,
    },
    /// Close one backend's connection and connect again.
    Reconnect {
        name: String,
        reply: Sender<Result<BackendView, AdminError>>,
    },
}

/// Why an admin command was refused; the management API maps each to its
/// HTTP status.
#[derive(Clone, Debug, PartialEq)]
pub enum AdminError {
    /// 400: e.g. the config file no longer parses.
    BadRequest(String),
    /// 404: no such backend.
    NotFound(String),
    /// 409: e.g. reconnecting a disabled backend.
    Conflict(String),
    /// 503: the gateway is shutting down.
    Unavailable(String),
}

impl std::fmt::Display for AdminError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AdminError::BadRequest(m)
            | AdminError::NotFound(m)
            | AdminError::Conflict(m)
            | AdminError::Unavailable(m) => f.write_str(m),
        }
    }
}

pub struct Runtime {
    config: RwLock<Arc<Config>>,
    backends: RwLock<Vec<Arc<Backend>>>,
    registry: RwLock<Arc<Registry>>,
    pub sessions: SessionTable,
    pub events: Arc<EventRing>,
    state: Mutex<ServerState>,
    revision: AtomicU64,
    pub started_at: SystemTime,
    started: Instant,
    admin_tx: Sender<AdminCommand>,
    backend_tx: Sender<BackendEvent>,
    first_discovery_done: AtomicBool,
    mcp_addr: Mutex<Option<SocketAddr>>,
    manage_addr: Mutex<Option<String>>,
    /// Command-line overrides, applied again to a reloaded file.
    overrides: Mutex<crate::config::Overrides>,
    /// Each listener's name and whether its thread still runs (health).
    listeners: Mutex<Vec<(&'static str, Arc<AtomicBool>)>>,
    /// Backends' way to the sessions ([`hub::RuntimeHub`]).
    pub hub: Arc<dyn crate::route::Hub>,
    /// Resource subscriptions clients hold.
    pub subscriptions: hub::Subscriptions,
    /// The log level last sent to backends (a rank in `route::LOG_LEVELS`).
    log_level: Mutex<Option<usize>>,
    /// Client requests held until the catalog is complete (start-up
    /// grace); `None` once released.
    parked: Mutex<Option<Vec<Parked>>>,
    /// Work the data plane runs on the admin tick (deadlines of its own).
    tick_hooks: Mutex<Vec<TickHook>>,
    /// `server.auth` as the data plane built it (metrics read its counters).
    data_auth: Mutex<Option<Arc<crate::auth::data::DataAuth>>>,
    /// The data plane's refusal events in the current window: window
    /// start, events shown, events suppressed.
    pub data_auth_fails: Mutex<(Instant, u32, u64)>,
    /// Where the data plane's refused requests are recorded in the audit
    /// log (`manage.audit_log`); installed by the management API, which
    /// owns that file.
    data_audit: Mutex<Option<DataAudit>>,
}

/// Run by the admin thread every tick with the current time.
pub type TickHook = Box<dyn Fn(Instant) + Send + Sync>;

/// A client request held during start-up: runs when released.
pub type Parked = Box<dyn FnOnce() + Send>;

/// Most requests held during start-up; more are answered at once.
const MAX_PARKED: usize = 4096;

/// A data-plane request refused for its credentials, as the audit log
/// records it.
pub struct DataRefusal<'a> {
    /// The token name or JWT `sub`, when the credential said who it was.
    pub identity: Option<&'a str>,
    pub remote_addr: String,
    pub method: &'a str,
    pub path: &'a str,
    pub status: u16,
}

/// See [`Runtime::set_data_audit`].
pub type DataAudit = Box<dyn Fn(&DataRefusal<'_>) + Send + Sync>;

impl Runtime {
    /// Installs where refused data-plane requests are audited.
    pub fn set_data_audit(&self, audit: DataAudit) {
        *self.data_audit.lock() = Some(audit);
    }

    /// Records a refused data-plane request in the audit log, if one is set.
    pub fn audit_data_refusal(&self, r: &DataRefusal<'_>) {
        if let Some(a) = self.data_audit.lock().as_ref() {
            a(r);
        }
    }

    /// Builds the runtime and the admin loop that must be run (on the main
    /// thread) to drive it.
    pub fn new(config: Config) -> (Arc<Runtime>, admin::AdminLoop) {
        let views = config.views.clone();
        let (admin_tx, admin_rx) = bounded(64);
        let (backend_tx, backend_rx) = bounded(256);
        let rt = Arc::new_cyclic(|me| Runtime {
            sessions: SessionTable::new(config.server.max_sessions, config.server.max_inflight_per_session)
                .with_instance_id(config.server.instance_id.as_deref()),
            events: Arc::new(EventRing::new(config.manage.event_buffer)),
            config: RwLock::new(Arc::new(config)),
            backends: RwLock::new(Vec::new()),
            // Empty lists, but the views already known: `/mcp/<view>` is
            // not 404 before the first discovery.
            registry: RwLock::new(Arc::new(Registry::build_with_views(&[], &[], &views))),
            state: Mutex::new(ServerState::Starting),
            revision: AtomicU64::new(1),
            started_at: SystemTime::now(),
            started: Instant::now(),
            admin_tx,
            backend_tx,
            first_discovery_done: AtomicBool::new(false),
            mcp_addr: Mutex::new(None),
            manage_addr: Mutex::new(None),
            overrides: Mutex::new(crate::config::Overrides::default()),
            listeners: Mutex::new(Vec::new()),
            hub: Arc::new(hub::RuntimeHub(me.clone())),
            subscriptions: hub::Subscriptions::default(),
            log_level: Mutex::new(None),
            parked: Mutex::new(Some(Vec::new())),
            tick_hooks: Mutex::new(Vec::new()),
            data_auth: Mutex::new(None),
            data_auth_fails: Mutex::new((Instant::now(), 0, 0)),
            data_audit: Mutex::new(None),
        });
        let lp = admin::AdminLoop::new(rt.clone(), admin_rx, backend_rx);
        (rt, lp)
    }

    pub fn config(&self) -> Arc<Config> {
        self.config.read().clone()
    }

    pub fn registry(&self) -> Arc<Registry> {
        self.registry.read().clone()
    }

    pub fn backends(&self) -> Vec<Arc<Backend>> {
        self.backends.read().clone()
    }

    pub fn backend(&self, name: &str) -> Option<Arc<Backend>> {
        self.backends.read().iter().find(|b| &*b.name == name).cloned()
    }

    /// Why `backend` cannot take a call now (-32001 naming it and its
    /// state), for a tool or prompt that the registry knows only as one a
    /// backend that is down exposed last. `None` if it can after all.
    pub fn unavailable(&self, backend: &str) -> Option<crate::codec::ErrorObj> {
        self.backend(backend)?.conn_for_call().err()
    }

    pub fn state(&self) -> ServerState {
        *self.state.lock()
    }

    pub fn revision(&self) -> u64 {
        self.revision.load(Ordering::Relaxed)
    }

    pub fn uptime_s(&self) -> u64 {
        self.started.elapsed().as_secs()
    }

    pub fn admin(&self) -> &Sender<AdminCommand> {
        &self.admin_tx
    }

    pub fn set_mcp_addr(&self, a: SocketAddr) {
        *self.mcp_addr.lock() = Some(a);
    }

    /// Records the data plane's authentication (at start).
    pub fn set_data_auth(&self, auth: Arc<crate::auth::data::DataAuth>) {
        *self.data_auth.lock() = Some(auth);
    }

    /// The data plane's authentication, if configured.
    pub fn data_auth(&self) -> Option<Arc<crate::auth::data::DataAuth>> {
        self.data_auth.lock().clone()
    }

    pub fn set_overrides(&self, overrides: crate::config::Overrides) {
        *self.overrides.lock() = overrides;
    }

    pub fn mcp_addr(&self) -> Option<SocketAddr> {
        *self.mcp_addr.lock()
    }

    pub fn set_manage_addr(&self, a: String) {
        *self.manage_addr.lock() = Some(a);
    }

    pub fn manage_addr(&self) -> Option<String> {
        self.manage_addr.lock().clone()
    }

    /// Registers a listener for health reporting.
    pub fn add_listener(&self, name: &'static str, alive: Arc<AtomicBool>) {
        self.listeners.lock().push((name, alive));
    }

    /// The listeners whose thread has ended (they serve nobody any more).
    pub fn listeners_down(&self) -> Vec<&'static str> {
        self.listeners.lock().iter().filter(|(_, a)| !a.load(Ordering::Acquire)).map(|(n, _)| *n).collect()
    }

    /// Kills every backend's process group at once, without waiting (a
    /// second SIGTERM: the operator wants out now, but no orphans).
    pub fn kill_backends_now(&self) {
        for b in self.backends() {
            b.kill_now();
        }
    }

    /// What connected backends offer that the gateway's `initialize`
    /// declares only when some backend has it: (resource subscriptions,
    /// completions).
    /// Only the backends `reg` (a view's registry, or the whole catalog)
    /// draws from count.
    pub fn backend_features(&self, reg: &Registry) -> (bool, bool) {
        let mut subscribe = false;
        let mut completions = false;
        for b in self.backends() {
            if b.status().state == BackendState::Connected && reg.includes_backend(&b.name) {
                let d = b.discovered();
                subscribe |= d.subscribe;
                completions |= d.completions;
            }
        }
        (subscribe, completions)
    }

    /// The cache hints of a merged list for 2026-07-28 clients: the
    /// smallest `ttlMs` of its connected backends' lists and whether every
    /// one is `public`. A backend that gives none (a legacy one) counts as
    /// 0 and private; one with nothing in the list does not count.
    /// Only the backends `reg` draws from count.
    pub fn list_hints(&self, reg: &Registry, method: &str) -> (u64, bool) {
        let mut ttl: Option<u64> = None;
        let mut public = true;
        for b in self.backends() {
            if b.status().state != BackendState::Connected || !reg.includes_backend(&b.name) {
                continue;
            }
            let d = b.discovered();
            // Only backends that contribute to the list count.
            let items = match method {
                crate::codec::mcp::method::TOOLS_LIST => d.tools.len(),
                crate::codec::mcp::method::PROMPTS_LIST => d.prompts.len(),
                crate::codec::mcp::method::RESOURCES_LIST => d.resources.len(),
                crate::codec::mcp::method::RESOURCES_TEMPLATES_LIST => d.resource_templates.len(),
                _ => 1,
            };
            if items == 0 && d.hints(method).is_none() {
                continue;
            }
            let (t, p) = d.hints(method).unwrap_or((0, false));
            ttl = Some(ttl.map_or(t, |x| x.min(t)));
            public &= p;
        }
        (ttl.unwrap_or(0), public && ttl.is_some())
    }

    /// The level backends send log messages at: the most verbose any
    /// session asked for with `logging/setLevel`.
    pub fn log_level(&self) -> Option<&'static str> {
        let min = self.sessions.all().iter().filter_map(|s| s.log_level()).min();
        min.map(|r| crate::route::LOG_LEVELS[r])
    }

    /// Sends the sessions' most verbose level to every backend that logs,
    /// when it changed; without waiting (a refusal is only logged).
    pub fn apply_log_level(&self) {
        let Some(level) = self.log_level() else { return };
        let rank = crate::route::log_rank(level);
        if std::mem::replace(&mut *self.log_level.lock(), rank) == rank {
            return;
        }
        for b in self.backends().iter().filter(|b| b.discovered().logging) {
            // A 2026-07-28 backend gets each session's level with its calls.
            if let Some(c) = b.conn().filter(|c| !c.is_modern()) {
                crate::backend::fire_and_forget(
                    &c,
                    crate::codec::mcp::method::SET_LEVEL,
                    serde_json::json!({"level": level}),
                );
            }
        }
    }

    /// Sends a notification without params to every connected backend.
    pub fn notify_backends(&self, method: &str) {
        for c in self.backends().iter().filter_map(|b| b.conn()) {
            if let Err(e) = c.notify(method, None) {
                log::debug!("backend '{}': cannot send {method}: {e}", c.backend);
            }
        }
    }

    /// Forgets the subscriptions of sessions that ended, unsubscribing at
    /// the backend from URIs nobody holds any more (admin tick).
    pub fn prune_subscriptions(&self) {
        if self.subscriptions.is_empty() {
            return;
        }
        for (uri, backend) in self.subscriptions.prune(|id| self.sessions.get(id).is_some()) {
            if let Some(c) = self.backend(&backend).and_then(|b| b.conn()) {
                crate::backend::subscribe(&c, &uri, false);
            }
        }
    }

    /// Adds work to the admin tick (deadlines the data plane keeps).
    pub fn on_tick(&self, hook: TickHook) {
        self.tick_hooks.lock().push(hook);
    }

    /// Runs the tick hooks (admin thread).
    pub fn run_tick_hooks(&self, now: Instant) {
        for h in self.tick_hooks.lock().iter() {
            h(now);
        }
    }

    /// Holds a client request until every enabled backend has connected or
    /// failed once, or `server.startup_grace_s` has passed, so that the
    /// first clients see the whole catalog. `Err` gives it back: run it now.
    pub fn park(&self, f: Parked) -> Result<(), Parked> {
        let mut g = self.parked.lock();
        match g.as_mut() {
            Some(v) if v.len() < MAX_PARKED => {
                if v.is_empty() {
                    log::info!("holding client requests until the backends have connected");
                }
                v.push(f);
                Ok(())
            }
            _ => Err(f),
        }
    }

    /// Runs the held requests and stops holding (admin thread).
    fn release_parked(&self, why: &str) {
        let Some(held) = self.parked.lock().take() else { return };
        if !held.is_empty() {
            log::info!("answering {} held client requests ({why})", held.len());
        }
        for f in held {
            f();
        }
    }

    /// Releases held requests once the start-up grace has passed (admin tick).
    fn check_grace(&self) {
        if self.parked.lock().is_some() && self.started.elapsed() >= self.config().server.startup_grace {
            self.release_parked("the start-up grace period ended");
        }
    }

    /// Starts every configured backend (admin thread, at start).
    fn start_backends(&self) {
        let cfg = self.config();
        let backoff = Policy::of(&cfg.server);
        let started: Vec<Arc<Backend>> = cfg
            .backends
            .iter()
            .map(|bc| {
                Backend::start(bc.clone(), backoff, self.backend_tx.clone(), self.events.clone(), self.hub.clone())
            })
            .collect();
        *self.backends.write() = started;
    }

    /// Rebuilds the registry from connected backends, in config order (plus
    /// the unlisted names of those that are down), and tells every session
    /// which lists changed. Admin thread only.
    fn rebuild(&self) {
        fn source((b, _, caps): &(Arc<Backend>, BackendState, Arc<crate::backend::Discovered>)) -> Source<'_> {
            Source { backend: b.name.clone(), prefix: b.config.prefix.as_deref(), filter: &b.config.tools, caps }
        }
        let backends = self.backends();
        // Each state is read once, before the lists (a connect stores the
        // lists first): the registry and the gateway state below come from
        // the same reading, so `ready` never shows before the registry
        // holds every connected backend's capabilities.
        let seen: Vec<_> = backends.iter().map(|b| (b.clone(), b.status().state, b.discovered())).collect();
        let (up, down): (Vec<_>, Vec<_>) = seen.iter().partition(|(_, state, _)| *state == BackendState::Connected);
        let sources: Vec<Source<'_>> = up.into_iter().map(source).collect();
        // Backends that are down keep their names in the registry's unlisted
        // lookup, so a call to one names the backend instead of "Unknown tool".
        let offline: Vec<Source<'_>> = down.into_iter().map(source).collect();
        let views = self.config().views.clone();
        let new = Arc::new(Registry::build_with_views(&sources, &offline, &views));
        let old = std::mem::replace(&mut *self.registry.write(), new.clone());
        // Every new clash is reported, whether or not the merged lists
        // changed: a backend whose every tool clashes changes nothing in
        // them, and is exactly the case an operator must hear about.
        let new_conflicts: Vec<&Conflict> = new.conflicts.iter().filter(|c| !old.conflicts.contains(c)).collect();
        for c in new_conflicts {
            let msg = format!("{} {:?} is also offered by '{}', which keeps it", c.kind, c.name, c.kept);
            log::warn!("backend '{}': {msg} (give one of them a \"prefix\")", c.dropped);
            self.events.push(Level::Warn, "capabilities.conflict", Some(&c.dropped), msg);
        }
        let (tools, resources, prompts) = new.changed_kinds(&old);
        let views_changed = new.views().map(|(n, _, _)| n).ne(old.views().map(|(n, _, _)| n))
            || new.views().zip(old.views()).any(|((_, _, a), (_, _, b))| a.changed_kinds(b) != (false, false, false));
        if tools || resources || prompts || views_changed {
            self.events.push(
                Level::Info,
                "capabilities.updated",
                None,
                format!(
                    "{} tools, {} resources, {} resource templates, {} prompts",
                    new.tools.len(),
                    new.resources.len(),
                    new.templates.len(),
                    new.prompts.len()
                ),
            );
            self.sessions.notify_list_changed(&|view| new.view_changed_kinds(&old, view));
        }
        self.update_state(seen.iter().map(|(_, state, _)| *state));
        if self.first_discovery_done.load(Ordering::Relaxed) {
            self.release_parked("every backend has connected or failed");
        }
    }

    /// Recomputes the gateway state from the backends' states
    /// ([`state::verdict`]) and announces a change. Admin thread only: it
    /// is the one writer of the state, so what is read here still holds at
    /// the store below, and no lock is held while the event is delivered
    /// or the line logged.
    fn update_state(&self, states: impl Iterator<Item = BackendState>) {
        let states: Vec<BackendState> = states.collect();
        let v = state::verdict(self.first_discovery_done.load(Ordering::Relaxed), &states);
        if v.settled {
            self.first_discovery_done.store(true, Ordering::Relaxed);
        }
        let current = self.state();
        if matches!(current, ServerState::Stopping | ServerState::Stopped) || current == v.state {
            return;
        }
        // Event, then state, then log line: a reader who sees the new state
        // in /status finds its event in /events, and one who sees the log
        // line finds both. The exact prefix `gateway state: ` is what
        // scripts and tests wait for.
        self.events.push(v.level, &format!("server.{}", v.state.as_str()), None, v.message);
        *self.state.lock() = v.state;
        log::info!("gateway state: {}", v.state.as_str());
    }

    fn set_state(&self, s: ServerState) {
        *self.state.lock() = s;
        log::info!("gateway state: {}", s.as_str());
    }

    /// One backend as the management API shows it (BACKEND_VIEW).
    pub fn backend_snapshot(&self, b: &Backend, reg: &Registry) -> BackendView {
        let st = b.status();
        let live = st.state == BackendState::Connected;
        let mine = |owner: &Arc<str>| live && *owner == b.name;
        BackendView {
            name: b.name.to_string(),
            kind: b.config.transport.as_ref().map_or("invalid", |t| t.kind()).to_owned(),
            state: st.state.as_str().to_owned(),
            endpoint: b.config.endpoint(),
            pid: st.pid,
            server_info: st.server_info.clone().unwrap_or_default(),
            protocol_version: st.protocol_version.clone(),
            connected_since: st.connected_since.map(crate::util::rfc3339),
            last_error: st.last_error.clone(),
            restarts: st.restarts,
            capabilities: CapabilityCounts {
                tools: reg.tools.iter().filter(|t| mine(&t.backend)).count(),
                resources: reg.resources.iter().filter(|t| mine(&t.backend)).count(),
                resource_templates: reg.templates.iter().filter(|t| mine(&t.backend)).count(),
                prompts: reg.prompts.iter().filter(|t| mine(&t.backend)).count(),
            },
        }
    }
}
