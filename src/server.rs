//! The `server` subcommand: loads the configuration, builds the runtime,
//! binds the listeners, routes signals to the admin loop and runs that loop
//! on the calling (main) thread until shutdown.

use crate::cli::ServerArgs;
use crate::config::{self, Config};
use crate::runtime::admin::Stoppable;
use crate::runtime::{AdminCommand, Runtime};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Exit code for configuration errors (sysexits EX_CONFIG).
pub const EXIT_CONFIG: u8 = 78;
pub const EXIT_USAGE: u8 = 2;

/// Initializes logging: `--log-level`, else `RUST_LOG`, else info; to
/// stderr, or to `file` (the legacy combined mode, whose TUI owns the
/// terminal).
pub fn init_logging_to(level: Option<&str>, file: Option<std::fs::File>) {
    let mut b = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    if let Some(l) = level {
        b.parse_filters(l);
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
/// Errors are one line and come with their exit code.
pub fn load_config(args: &ServerArgs) -> Result<Config, (u8, String)> {
    let path = config::locate(args.config.as_deref()).map_err(|e| (EXIT_CONFIG, e.to_string()))?;
    let mut cfg = config::load(&path).map_err(|e| (EXIT_CONFIG, e.to_string()))?;
    cfg.apply_overrides(&args.overrides()).map_err(|e| (EXIT_USAGE, e.to_string()))?;
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

pub fn run(args: ServerArgs) -> ExitCode {
    limit_malloc_arenas();
    init_logging(args.log_level.as_deref());
    match start(&args, None) {
        Ok(running) => {
            running.run();
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

/// The legacy combined mode (`mcp-sentinel [--host H] [--port P]`): the
/// server runs in this process and a TUI is attached to it; quitting that
/// TUI stops the server, as the original did. The TUI talks to the server
/// through the management API like any other client, with an admin token
/// that exists only in memory. The server's log goes to a file.
pub fn run_combined(args: ServerArgs) -> ExitCode {
    use std::io::IsTerminal;
    limit_malloc_arenas();
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        eprintln!("mcp-sentinel: the combined mode needs a terminal; use 'mcp-sentinel server' (or --no-tui) to run without one");
        return ExitCode::from(EXIT_USAGE);
    }
    match open_combined_log(crate::util::state_home()) {
        Ok((path, f, notes)) => {
            eprintln!("mcp-sentinel: server log: {}", path.display());
            notes.iter().for_each(|n| eprintln!("mcp-sentinel: {n}"));
            init_logging_to(args.log_level.as_deref(), Some(f));
        }
        Err(e) => {
            eprintln!("mcp-sentinel: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    }
    let token = match crate::util::random_hex(32) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("mcp-sentinel: cannot generate a token: {e}");
            return ExitCode::from(1);
        }
    };
    let running = match start(&args, Some(token.clone())) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let rt = running.rt.clone();
    let scheme = if rt.config().manage.tls.is_some() { "https" } else { "http" };
    let url = format!("{scheme}://{}", rt.manage_addr().unwrap_or_default());
    // The admin loop gets its own thread (default stack: it parses configs).
    let server = match std::thread::Builder::new().name("admin".into()).spawn(move || running.run()) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("mcp-sentinel: cannot start the server thread: {e}");
            return ExitCode::from(1);
        }
    };
    let token = crate::client::TokenSource::InMemory(crate::client::Secret(token));
    let result = crate::tui::run_attached(&url, token);
    let _ = rt.admin().send(AdminCommand::Shutdown { reason: "the combined-mode TUI quit".into() });
    let _ = server.join();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mcp-sentinel: {e}");
            ExitCode::from(e.exit_code())
        }
    }
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
/// Errors have been printed; the value is the exit code.
pub fn start(args: &ServerArgs, extra_admin_token: Option<String>) -> Result<Running, ExitCode> {
    let cfg = match load_config(args) {
        Ok(c) => c,
        Err((code, msg)) => {
            eprintln!("mcp-sentinel: {msg}");
            return Err(ExitCode::from(code));
        }
    };
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
        eprintln!(
            "mcp-sentinel: {}: field \"manage.tls\": TLS needs the management API on its own listener; \
             set manage.listen to an address other than server.listen ({})",
            cfg.path.as_ref().map_or_else(|| "configuration".to_owned(), |p| p.display().to_string()),
            cfg.server.listen
        );
        return Err(ExitCode::from(EXIT_CONFIG));
    }
    let fd_limit = raise_fd_limit();
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
    let fail = |e: String, code: u8| {
        eprintln!("mcp-sentinel: {e}");
        admin.abort();
        Err(ExitCode::from(code))
    };
    let bound = match crate::http::bind(&listen) {
        Ok(b) => b,
        Err(e) => return fail(e, 1),
    };
    let data: Arc<dyn crate::http::Handler> = Arc::new(crate::transport::DataPlane::new(rt.clone()));
    let handler = if shared {
        // A bad token source is a configuration error (78); a port in use is not (1).
        let api = match crate::manage::build_api(&rt, bound.addr.port(), token_file.as_deref(), extra) {
            Ok(a) => a,
            Err(e) => return fail(e, EXIT_CONFIG),
        };
        let manage: Arc<dyn crate::http::Handler> = match crate::manage::serve::Handler::new(api) {
            Ok(h) => Arc::new(h),
            Err(e) => return fail(e, 1),
        };
        Arc::new(crate::http::Router::new(data).route(|p| p.starts_with("/manage/") || p == "/metrics", manage))
    } else {
        data
    };
    let server = match bound.serve("mcp", limits, None, handler) {
        Ok(s) => s,
        Err(e) => return fail(e, 1),
    };
    rt.set_mcp_addr(server.addr);
    rt.add_listener("data plane", server.alive());
    // The exact wording is what scripts and tests read for the bound port.
    log::info!("data plane listening on http://{} (/sse, /mcp)", server.addr);
    if !server.addr.ip().is_loopback() {
        log::warn!(
            "the data plane listens on {}, which is not a loopback address, and has no client authentication: \
             anyone who can reach it can call every tool of every backend",
            server.addr
        );
    }
    let mut listeners: Vec<Box<dyn Stoppable>> = vec![Box::new(DataListener(server))];
    if shared {
        let addr = rt.mcp_addr().map(|a| a.to_string()).unwrap_or_default();
        rt.set_manage_addr(addr.clone());
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
            Err((e, is_config)) => {
                for l in &listeners {
                    l.stop();
                }
                return fail(e, if is_config { EXIT_CONFIG } else { 1 });
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

/// Raises the soft limit on open files to the hard limit (a gateway holds
/// a descriptor per client connection and several per backend), and
/// returns the limit in force.
#[allow(unsafe_code)]
fn raise_fd_limit() -> Option<u64> {
    let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct we own; no other memory.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } != 0 {
        return None;
    }
    if r.rlim_cur < r.rlim_max {
        let want = libc::rlimit { rlim_cur: r.rlim_max, rlim_max: r.rlim_max };
        // SAFETY: setrlimit reads the struct we own.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &want) } == 0 {
            r.rlim_cur = r.rlim_max;
        }
    }
    Some(r.rlim_cur)
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
