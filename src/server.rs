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

/// Initializes logging: `--log-level`, else `RUST_LOG`, else info.
pub fn init_logging(level: Option<&str>) {
    let mut b = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    if let Some(l) = level {
        b.parse_filters(l);
    }
    // A second init (tests, legacy combined mode) is harmless.
    let _ = b.try_init();
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
