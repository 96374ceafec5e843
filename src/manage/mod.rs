//! The control plane: `/manage/v1` (JSON) and `/metrics` (Prometheus text)
//! on their own listener (default 127.0.0.1:9001), or on the data-plane
//! listener when both addresses are equal.
//!
//! - [`serve`]: the API on the gateway's HTTP layer (`crate::http`).
//! - [`auth`]: bearer tokens and scopes.
//! - [`api`]: routing, read endpoints, admin commands.
//! - [`views`]: the JSON shapes. [`metrics`]: the Prometheus text.
//! - [`audit`]: the audit log.

pub mod api;
pub mod audit;
pub mod auth;
pub mod metrics;
pub mod serve;
pub mod views;

use crate::runtime::admin::Stoppable;
use crate::runtime::Runtime;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Builds the API for a listener bound at `port`: loads the configured
/// tokens, or writes a new generated admin token (a new one at every
/// start, never the file's old one). Warns about a configuration file
/// others can change. Errors are configuration errors (exit 78).
pub fn build_api(
    rt: &Arc<Runtime>,
    port: u16,
    token_file: Option<&Path>,
    extra_admin_token: Option<&str>,
) -> Result<Arc<api::Api>, String> {
    let cfg = rt.config();
    if let Some(p) = &cfg.path {
        for w in crate::secfile::config_warnings(p) {
            log::warn!("configuration file {w}");
        }
    }
    let mut auth = if cfg.manage.tokens.is_empty() {
        let path: PathBuf = match token_file {
            Some(p) => p.to_path_buf(),
            None => auth::default_token_file(port).ok_or(
                "cannot place the management token file: set XDG_STATE_HOME or HOME, or pass --manage-token-file",
            )?,
        };
        let a = auth::Auth::generated(&path)?;
        log::info!("management API admin token written to {} (mode 0600, a new one at each start)", path.display());
        a
    } else {
        auth::Auth::from_config(&cfg.manage)?
    };
    if let Some(t) = extra_admin_token {
        auth.add(auth::Token::new("combined-mode-tui", true, t));
    }
    let audit = Arc::new(audit::Audit::open(cfg.manage.audit_log.as_deref(), rt.events.clone())?);
    // The data plane's refusals go to the same file.
    let a = audit.clone();
    rt.set_data_audit(Box::new(move |r: &crate::runtime::DataRefusal<'_>| {
        a.record_data(audit::Line {
            time: crate::util::rfc3339(std::time::SystemTime::now()),
            event: "data_auth_failed",
            token_name: r.identity,
            remote_addr: Some(r.remote_addr.clone()),
            method: r.method,
            path: r.path,
            status: r.status,
        })
    }));
    Ok(Arc::new(api::Api::new(rt.clone(), auth, audit)))
}

/// The management listener when it has its own address.
pub struct Listener {
    server: crate::http::Server,
}

impl Listener {
    pub fn addr(&self) -> SocketAddr {
        self.server.addr
    }

    /// False once the listener's thread has ended.
    pub fn alive(&self) -> Arc<std::sync::atomic::AtomicBool> {
        self.server.alive()
    }
}

impl Stoppable for Listener {
    fn stop(&self) {
        self.server.stop();
    }
}

/// Why the management API did not start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartError {
    /// The TLS files, a token source, the generated token file or the
    /// audit log: something the configuration names is wrong.
    Config(String),
    /// The listener itself: the address cannot be bound (a port in use),
    /// or its threads cannot start.
    Listener(String),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Config(m) | StartError::Listener(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for StartError {}

/// Loads TLS, builds the API and starts the management listener on its
/// own address. The error says whether it is a configuration error (TLS
/// files, token sources, audit file) rather than e.g. a port in use.
pub fn start(
    rt: &Arc<Runtime>,
    token_file: Option<&Path>,
    extra_admin_token: Option<&str>,
) -> Result<Listener, StartError> {
    let cfg = rt.config();
    let tls = match &cfg.manage.tls {
        Some(t) => {
            // Before the key is read: refuse one others can replace. A
            // missing or unreadable key is left for tls::load to report.
            match crate::secfile::check_operator_secret(&t.key) {
                Ok(Some(mode)) => log::warn!(
                    "manage.tls.key: {} can be read by other users (mode {mode:04o}), and each of them can \
                     impersonate this server; run chmod 600 on it",
                    t.key.display()
                ),
                Ok(None) => {}
                Err(e) if e.kind == crate::secfile::ErrorKind::Unsafe => {
                    return Err(StartError::Config(format!("manage.tls.key: {e}")))
                }
                Err(_) => {}
            }
            Some(crate::http::tls::load("manage.tls", &t.cert, &t.key).map_err(StartError::Config)?)
        }
        None => None,
    };
    let bound = crate::http::bind(&cfg.manage.listen).map_err(|e| {
        // Name the listener: two gateways on one host collide here first
        // (the legacy flat flags leave it at 127.0.0.1:9001).
        StartError::Listener(format!(
            "management API: {e} (another mcp-sentinel?); move it with --manage-listen HOST:PORT, \
             \"manage\": {{\"listen\": …}} in the config, or --manage-port PORT with the legacy flags"
        ))
    })?;
    let api = build_api(rt, bound.addr.port(), token_file, extra_admin_token).map_err(StartError::Config)?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let handler = Arc::new(serve::Handler::new(api).map_err(StartError::Listener)?);
    // Recorded before serving, so `/status` never shows it null.
    rt.set_manage_addr(bound.addr.to_string());
    let server = bound.serve("manage", serve::limits(), tls, handler).map_err(StartError::Listener)?;
    // The exact wording is what scripts and tests read for the bound port.
    log::info!("management API listening on {scheme}://{}{}", server.addr, api::PREFIX);
    Ok(Listener { server })
}
