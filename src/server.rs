//! The `server` subcommand: loads the configuration, builds the runtime,
//! binds the listeners, routes signals to the admin loop and runs that loop
//! on the calling (main) thread until shutdown. What fails is returned as a
//! [`ServerError`] of a [`Kind`]; `main` prints it and picks the exit code.

use crate::cli::ServerArgs;
use crate::config::{self, Config, ConfigError};
use crate::exit::{Fatal, Kind};
use crate::runtime::admin::Stoppable;
use crate::runtime::{AdminCommand, Runtime};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Why the server did not start, or the combined mode ended in failure.
#[derive(Debug)]
pub enum ServerError {
    /// The configuration file cannot be found, read or parsed.
    Config(ConfigError),
    /// A command-line override the configuration refuses; the error's
    /// field names the flag.
    Flag(ConfigError),
    /// `manage.tls` with the management API on the data-plane listener,
    /// which serves plain HTTP only. `file` is the configuration file.
    SharedTls { file: String, listen: String },
    /// The data-plane listener cannot be bound or started.
    Listener(String),
    /// `server.auth` cannot be loaded (a token source, the key-set thread).
    DataAuth(String),
    /// The management API: its configuration, or its own listener.
    Manage(crate::manage::StartError),
    /// The legacy combined mode without a terminal to attach its TUI to.
    NoTerminal,
    /// The combined mode's log file cannot be placed or opened.
    CombinedLog(String),
    /// The combined mode's in-memory admin token cannot be generated.
    Token(std::io::Error),
    /// The combined mode's admin thread cannot be started.
    Thread(std::io::Error),
    /// The combined mode's TUI failed.
    Tui(crate::tui::TuiError),
}

impl Fatal for ServerError {
    fn kind(&self) -> Kind {
        match self {
            ServerError::Config(_) | ServerError::SharedTls { .. } | ServerError::CombinedLog(_) => Kind::Config,
            ServerError::DataAuth(_) => Kind::Config,
            ServerError::Manage(crate::manage::StartError::Config(_)) => Kind::Config,
            ServerError::Flag(_) | ServerError::NoTerminal => Kind::Usage,
            ServerError::Listener(_) | ServerError::Token(_) | ServerError::Thread(_) => Kind::Failure,
            ServerError::Manage(crate::manage::StartError::Listener(_)) => Kind::Failure,
            ServerError::Tui(e) => e.kind(),
        }
    }
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerError::Config(e) | ServerError::Flag(e) => write!(f, "{e}"),
            ServerError::SharedTls { file, listen } => write!(
                f,
                "{file}: field \"manage.tls\": TLS needs the management API on its own listener; \
                 set manage.listen to an address other than server.listen ({listen})"
            ),
            ServerError::Listener(m) | ServerError::CombinedLog(m) | ServerError::DataAuth(m) => f.write_str(m),
            ServerError::Manage(e) => write!(f, "{e}"),
            ServerError::NoTerminal => f.write_str(
                "the combined mode needs a terminal; use 'mcp-sentinel server' (or --no-tui) to run without one",
            ),
            ServerError::Token(e) => write!(f, "cannot generate a token: {e}"),
            ServerError::Thread(e) => write!(f, "cannot start the server thread: {e}"),
            ServerError::Tui(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ServerError {}

/// Initializes logging: `--log-level`, else `RUST_LOG`, else info; to
/// stderr, or to `file` (the legacy combined mode, whose TUI owns the
/// terminal).
pub fn init_logging_to(level: Option<&str>, file: Option<std::fs::File>) {
    init_logging_as(level, file, crate::cli::LogFormat::Text);
}

/// [`init_logging_to`] in `format`: `Json` writes one object per line,
/// `{"time","level","target","message"}`, for log shippers.
pub fn init_logging_as(level: Option<&str>, file: Option<std::fs::File>, format: crate::cli::LogFormat) {
    let mut b = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    if let Some(l) = level {
        b.parse_filters(l);
    }
    if format == crate::cli::LogFormat::Json {
        use std::io::Write;
        b.format(|buf, record| {
            let line = serde_json::json!({
                "time": crate::util::rfc3339(std::time::SystemTime::now()),
                "level": record.level().as_str(),
                "target": record.target(),
                "message": record.args().to_string(),
            });
            writeln!(buf, "{line}")
        });
    }
    if let Some(f) = file {
        b.target(env_logger::Target::Pipe(Box::new(f)));
        b.write_style(env_logger::WriteStyle::Never);
    }
    // A second init (tests) is harmless.
    let _ = b.try_init();
}

pub fn init_logging(level: Option<&str>) {
    init_logging_to(level, None);
}

/// Finds, reads and validates the configuration, then applies CLI flags.
pub fn load_config(args: &ServerArgs) -> Result<Config, ServerError> {
    let path = config::locate(args.config.as_deref()).map_err(ServerError::Config)?;
    let mut cfg = config::load(&path).map_err(ServerError::Config)?;
    cfg.apply_overrides(&args.overrides()).map_err(ServerError::Flag)?;
    Ok(cfg)
}

/// glibc gives each thread that allocates its own malloc arena; with a
/// thread per stream that keeps freed memory spread over dozens of arenas.
/// Two arenas are plenty for a gateway whose threads mostly wait on I/O.
#[allow(unsafe_code)]
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only tunes the allocator; called before other threads start.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// `mcp-sentinel server`: runs until shutdown.
pub fn run(args: ServerArgs) -> Result<(), ServerError> {
    limit_malloc_arenas();
    init_logging_as(args.log_level.as_deref(), None, args.log_format);
    start(&args, None)?.run();
    Ok(())
}

/// The legacy combined mode (`mcp-sentinel [--host H] [--port P]`): the
/// server runs in this process and a TUI is attached to it; quitting that
/// TUI stops the server, as the original did. The TUI talks to the server
/// through the management API like any other client, with an admin token
/// that exists only in memory. The server's log goes to a file.
pub fn run_combined(args: ServerArgs) -> Result<(), ServerError> {
    use std::io::IsTerminal;
    limit_malloc_arenas();
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        return Err(ServerError::NoTerminal);
    }
    let (path, f, notes) = open_combined_log(crate::util::state_home()).map_err(ServerError::CombinedLog)?;
    eprintln!("mcp-sentinel: server log: {}", path.display());
    notes.iter().for_each(|n| eprintln!("mcp-sentinel: {n}"));
    init_logging_as(args.log_level.as_deref(), Some(f), args.log_format);
    let token = crate::util::random_hex(32).map_err(ServerError::Token)?;
    let running = start(&args, Some(token.clone()))?;
    let rt = running.rt.clone();
    let scheme = if rt.config().manage.tls.is_some() { "https" } else { "http" };
    let url = format!("{scheme}://{}", rt.manage_addr().unwrap_or_default());
    // The admin loop gets its own thread (default stack: it parses configs).
    let server =
        std::thread::Builder::new().name("admin".into()).spawn(move || running.run()).map_err(ServerError::Thread)?;
    let token = crate::client::TokenSource::InMemory(crate::client::Secret(token));
    let result = crate::tui::run_attached(&url, token);
    let _ = rt.admin().send(AdminCommand::Shutdown { reason: "the combined-mode TUI quit".into() });
    let _ = server.join();
    result.map_err(ServerError::Tui)
}

/// The combined mode's log, `<state home>/mcp-sentinel/combined.log`,
/// opened for appending by the rules for the gateway's own files
/// ([`crate::secfile::open_append`]: 0600, directories 0700, no link, not
/// another user's; an old 0644 file is set to 0600). There is no fallback
/// in a shared directory such as `/tmp`: with no state home, an error.
/// Returns the path, the file and notes to print.
fn open_combined_log(
    state_home: Option<std::path::PathBuf>,
) -> Result<(std::path::PathBuf, std::fs::File, Vec<String>), String> {
    let path = state_home
        .ok_or("cannot place the combined mode's log file: set XDG_STATE_HOME or HOME to an absolute path")?
        .join("mcp-sentinel")
        .join("combined.log");
    let (f, notes) = crate::secfile::open_append(&path, crate::secfile::Readers::Tighten)
        .map_err(|e| format!("combined-mode log file {e}"))?;
    Ok((path, f, notes))
}

/// A started gateway: listeners bound, backends not yet started (the admin
/// loop starts them). [`Running::run`] drives it until shutdown.
pub struct Running {
    pub rt: std::sync::Arc<Runtime>,
    admin: crate::runtime::admin::AdminLoop,
    listeners: Vec<Box<dyn Stoppable>>,
}

impl Running {
    /// Runs the admin loop on the calling thread until shutdown.
    pub fn run(self) {
        self.admin.run(self.listeners);
        log::info!("stopped");
    }
}

/// Loads the config and binds both listeners. `extra_admin_token` adds an
/// in-memory admin token (the legacy combined mode's own TUI uses it).
/// On an error, the backends already started have been stopped.
pub fn start(args: &ServerArgs, extra_admin_token: Option<String>) -> Result<Running, ServerError> {
    let cfg = load_config(args)?;
    if let Some(p) = &cfg.path {
        log::info!("configuration: {} ({} backends)", p.display(), cfg.backends.len());
    }
    for b in &cfg.backends {
        if let Err(e) = &b.transport {
            log::error!("{e}");
        }
    }
    let listen = cfg.server.listen.clone();
    // Equal addresses share one listener; port 0 means "any free port" for
    // each, so two `:0` addresses get two listeners.
    let shared = cfg.manage.listen == cfg.server.listen && !cfg.server.listen.ends_with(":0");
    if shared && cfg.manage.tls.is_some() {
        // The data plane is plain HTTP: sharing it would silently drop TLS.
        return Err(ServerError::SharedTls {
            file: cfg.path.as_ref().map_or_else(|| "configuration".to_owned(), |p| p.display().to_string()),
            listen: cfg.server.listen,
        });
    }
    let fd_limit = crate::util::raise_fd_limit();
    let mut limits = crate::transport::limits(&cfg.server);
    if let Some(n) = fd_limit {
        // Leave descriptors for backends (pipes, sockets), the management
        // listener and files: connections past this get 503, never EMFILE.
        let reserve = (n / 2).min(256);
        let usable = usize::try_from((n - reserve) / 4 * 3).unwrap_or(usize::MAX).max(16);
        if usable < limits.max_connections {
            log::info!(
                "file descriptor limit {n}: serving at most {usable} data-plane connections (server.max_connections is {})",
                limits.max_connections
            );
            limits.max_connections = usable;
        }
    }
    let (rt, admin) = Runtime::new(cfg);
    rt.set_overrides(args.overrides());
    admin.start_backends();
    let token_file = args.manage_token_file.clone();
    let extra = extra_admin_token.as_deref();
    let fail = |e: ServerError| {
        admin.abort();
        Err(e)
    };
    let bound = match crate::http::bind(&listen) {
        Ok(b) => b,
        Err(e) => return fail(ServerError::Listener(e)),
    };
    let data: Arc<dyn crate::http::Handler> = match crate::transport::DataPlane::new(rt.clone(), bound.addr) {
        Ok(d) => Arc::new(d),
        Err(e) => return fail(ServerError::DataAuth(e)),
    };
    let handler = if shared {
        // A bad token source is a configuration error; a port in use is not.
        let api = match crate::manage::build_api(&rt, bound.addr.port(), token_file.as_deref(), extra) {
            Ok(a) => a,
            Err(e) => return fail(ServerError::Manage(crate::manage::StartError::Config(e))),
        };
        let manage: Arc<dyn crate::http::Handler> = match crate::manage::serve::Handler::new(api) {
            Ok(h) => Arc::new(h),
            Err(e) => return fail(ServerError::Manage(crate::manage::StartError::Listener(e))),
        };
        Arc::new(crate::http::Router::new(data).route(|p| p.starts_with("/manage/") || p == "/metrics", manage))
    } else {
        data
    };
    // Recorded before serving, so `/status` never shows them null.
    rt.set_mcp_addr(bound.addr);
    if shared {
        rt.set_manage_addr(bound.addr.to_string());
    }
    let server = match bound.serve("mcp", limits, None, handler) {
        Ok(s) => s,
        Err(e) => return fail(ServerError::Listener(e)),
    };
    rt.add_listener("data plane", server.alive());
    // The exact wording is what scripts and tests read for the bound port.
    log::info!("data plane listening on http://{} (/sse, /mcp)", server.addr);
    let anonymous = rt.config().server.auth.as_ref().is_none_or(|a| a.allow_unauthenticated);
    if !server.addr.ip().is_loopback() && anonymous {
        log::warn!(
            "the data plane listens on {}, which is not a loopback address, and serves clients without \
             authentication (server.allow_unauthenticated_remote): anyone who can reach it can call every tool \
             of every backend",
            server.addr
        );
    }
    let mut listeners: Vec<Box<dyn Stoppable>> = vec![Box::new(DataListener(server))];
    if shared {
        let addr = rt.mcp_addr().map(|a| a.to_string()).unwrap_or_default();
        log::info!(
            "management API listening on http://{addr}{} (shared with the data plane)",
            crate::manage::api::PREFIX
        );
    } else {
        match crate::manage::start(&rt, token_file.as_deref(), extra) {
            Ok(l) => {
                rt.add_listener("management", l.alive());
                listeners.push(Box::new(l));
            }
            Err(e) => {
                for l in &listeners {
                    l.stop();
                }
                return fail(ServerError::Manage(e));
            }
        }
    }
    if let Err(e) = forward_signals(&rt) {
        log::warn!("cannot install signal handlers: {e}");
    }
    Ok(Running { rt, admin, listeners })
}

/// The data-plane listener, stopped by the admin loop at shutdown.
struct DataListener(crate::http::Server);

impl Stoppable for DataListener {
    fn stop(&self) {
        self.0.stop();
    }
}

/// Signals, turned into admin commands: SIGTERM, SIGINT and SIGHUP (the
/// terminal closed) stop the gateway cleanly, children included; a second
/// one exits at once (after killing the backends' process groups);
/// SIGUSR1 reloads the configuration, for service managers.
fn forward_signals(rt: &Arc<Runtime>) -> std::io::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP, SIGUSR1])?;
    let rt = rt.clone();
    crate::thread::spawn("signals".into(), move || {
        let mut stopping = false;
        for sig in signals.forever() {
            let name = match sig {
                SIGINT => "SIGINT",
                SIGHUP => "SIGHUP",
                SIGUSR1 => "SIGUSR1",
                _ => "SIGTERM",
            };
            if sig == SIGUSR1 {
                log::info!("received SIGUSR1: reloading the configuration");
                // The outcome is logged and pushed as an event by the reload.
                let (reply, _) = crossbeam_channel::bounded(1);
                if rt.admin().send_timeout(AdminCommand::Reload { reply }, Duration::from_secs(1)).is_err() {
                    log::warn!("SIGUSR1: the admin thread is busy; reload not queued");
                }
                continue;
            }
            if stopping {
                log::warn!("received {name} again: exiting now");
                rt.kill_backends_now();
                std::process::exit(128 + sig);
            }
            stopping = true;
            let reason = format!("received {name}");
            if rt.admin().send_timeout(AdminCommand::Shutdown { reason }, Duration::from_secs(1)).is_err() {
                log::warn!("the admin thread does not take the shutdown; send {name} again to exit at once");
            }
        }
        Ok(())
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::open_combined_log;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &std::path::Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn combined_log_has_no_shared_fallback_and_is_private() {
        // No state home: an error naming what to set, never a file in /tmp.
        let e = open_combined_log(None).unwrap_err();
        assert!(e.contains("set XDG_STATE_HOME or HOME"), "{e}");
        let n = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let home = std::env::temp_dir().join(format!("mcp-sentinel-combined-{}-{n}", std::process::id()));
        let (path, _f, notes) = open_combined_log(Some(home.clone())).unwrap();
        assert_eq!(path, home.join("mcp-sentinel/combined.log"));
        assert!(notes.is_empty());
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        // A 0644 log left by an earlier version is made private.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let (_, _f, notes) = open_combined_log(Some(home.clone())).unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(notes.len(), 1, "{notes:?}");
        // A link planted in its place is refused, its target untouched.
        std::fs::remove_file(&path).unwrap();
        let victim = home.join("victim");
        std::fs::write(&victim, "keep").unwrap();
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        let e = open_combined_log(Some(home.clone())).unwrap_err();
        assert!(e.starts_with("combined-mode log file ") && e.contains("is a symbolic link"), "{e}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        let _ = std::fs::remove_dir_all(&home);
    }
}
