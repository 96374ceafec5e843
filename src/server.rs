//! The `server` subcommand: loads the configuration, builds the runtime,
//! binds the listeners, routes signals to the admin loop and runs that loop
//! on the calling (main) thread until shutdown.

use crate::cli::ServerArgs;
use crate::config::{self, Config};
use crate::runtime::admin::Stoppable;
use crate::runtime::{AdminCommand, Runtime};
use std::process::ExitCode;

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
    cfg.apply_overrides(args).map_err(|e| (EXIT_USAGE, e.to_string()))?;
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
    let log_path = crate::util::state_home()
        .map(|d| d.join("mcp-sentinel").join("combined.log"))
        .unwrap_or_else(|| std::env::temp_dir().join("mcp-sentinel-combined.log"));
    let file = log_path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::OpenOptions::new().create(true).append(true).open(&log_path));
    match file {
        Ok(f) => {
            eprintln!("mcp-sentinel: server log: {}", log_path.display());
            init_logging_to(args.log_level.as_deref(), Some(f));
        }
        Err(e) => {
            eprintln!("mcp-sentinel: cannot open the log file {}: {e}; logging is off", log_path.display());
            init_logging_to(Some("off"), None);
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
    let (rt, admin) = Runtime::new(cfg);
    rt.set_overrides(args.clone());
    admin.start_backends();
    let token_file = args.manage_token_file.clone();
    let extra = extra_admin_token.as_deref();
    // A bad token source is a configuration error (78); a port in use is not (1).
    let config_error = std::cell::Cell::new(false);
    let build = |port: u16| {
        crate::manage::build_api(&rt, port, token_file.as_deref(), extra, true).inspect_err(|_| config_error.set(true))
    };
    let listener = match crate::transport::start(rt.clone(), &listen, if shared { Some(&build) } else { None }) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("mcp-sentinel: {e}");
            admin.abort();
            return Err(ExitCode::from(if config_error.get() { EXIT_CONFIG } else { 1 }));
        }
    };
    // The exact wording is what scripts and tests read for the bound port.
    log::info!("data plane listening on http://{} (/sse, /mcp)", listener.addr);
    let mut listeners: Vec<Box<dyn Stoppable>> = vec![Box::new(listener)];
    if shared {
        let addr = rt.mcp_addr().map(|a| a.to_string()).unwrap_or_default();
        rt.set_manage_addr(addr.clone());
        log::info!(
            "management API listening on http://{addr}{} (shared with the data plane)",
            crate::manage::api::PREFIX
        );
    } else {
        match crate::manage::start(&rt, token_file.as_deref(), extra) {
            Ok(l) => listeners.push(Box::new(l)),
            Err((e, is_config)) => {
                eprintln!("mcp-sentinel: {e}");
                for l in &listeners {
                    l.stop();
                }
                admin.abort();
                return Err(ExitCode::from(if is_config { EXIT_CONFIG } else { 1 }));
            }
        }
    }
    if let Err(e) = forward_signals(&rt) {
        log::warn!("cannot install signal handlers: {e}");
    }
    Ok(Running { rt, admin, listeners })
}

/// SIGTERM and SIGINT become a shutdown command on the admin channel.
fn forward_signals(rt: &std::sync::Arc<Runtime>) -> std::io::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT])?;
    let tx = rt.admin().clone();
    crate::thread::spawn("signals".into(), move || {
        if let Some(sig) = signals.forever().next() {
            let name = if sig == SIGINT { "SIGINT" } else { "SIGTERM" };
            let _ = tx.send(AdminCommand::Shutdown { reason: format!("received {name}") });
        }
        Ok(())
    })?;
    Ok(())
}
