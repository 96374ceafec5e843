//! Configuration: both file shapes of CONTRACT §3 (current `mcpServers` and
//! the legacy flat object), the lookup chain, and validation whose errors name
//! the file, the backend and the field. Runs on the main thread (start) and
//! the admin thread (reload); no I/O besides reading the file and the PEM
//! files that backends name in `ca_cert`.
//!
//! Validation policy (ORIGIN-LESSONS 16, 17):
//! - A file that is not JSON, not an object, or whose `server`/`manage`
//!   sections are wrong fails as a whole with a [`ConfigError`] naming the
//!   dotted field (`manage.tokens[0].scopes`).
//! - One bad backend never fails the file: it keeps its name and carries a
//!   one-line reason in `transport: Err(..)`, so it is listed as `failed`.
//! - Unknown keys are *warned about* (`log::warn!` naming file and field),
//!   not rejected: a Claude Desktop file carries keys of its own, and a
//!   newer config must still load on an older gateway. A *known* key that
//!   the backend's type would ignore (`url` on stdio, `command` on
//!   streamable-http) is an error instead, because a silently inert knob is
//!   worse than a failed backend.
//! - `${VAR}` in `command`, `args`, `env` values, `cwd`, `url` and header
//!   values is expanded from the environment; an unset variable fails that
//!   backend, it is never left as literal text. Only `${NAME}` with NAME
//!   `[A-Za-z_][A-Za-z0-9_]*` is special (`$$`, `$NAME` stay as written).
//!   Expansion is not recursive.
//! - JSON `null` counts as "absent" for every optional field.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value};

/// The whole configuration, after validation and defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// The file it came from (None when built in code, e.g. by tests).
    pub path: Option<PathBuf>,
    /// Backends in file order (first configured wins name clashes).
    pub backends: Vec<BackendConfig>,
    pub server: ServerConfig,
    pub manage: ManageConfig,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ServerConfig {
    /// `host:port`, default "127.0.0.1:9000".
    pub listen: String,
    /// serverInfo.name, default "mcp-sentinel".
    pub name: String,
    /// Allowed `Origin` values on the data plane. Empty: only loopback
    /// origins (http(s)://localhost, 127.0.0.1, `[::1]`, any port) are allowed.
    pub allowed_origins: Vec<String>,
    /// Largest accepted request body, default 4 MiB.
    pub max_body_bytes: usize,
    /// Most concurrent client sessions, default 256.
    pub max_sessions: usize,
    /// Allowed `Host` values (names, optionally with a port; "*" allows
    /// all). Empty: on a loopback listener only loopback names.
    pub allowed_hosts: Vec<String>,
    /// Open data-plane connections at most (also capped by the file
    /// descriptor limit), default 4096.
    pub max_connections: usize,
    /// Open connections from one non-loopback address, default 256.
    pub max_connections_per_ip: usize,
    /// Bytes a client may fall behind on its event stream before its
    /// session is closed, default 8 MiB.
    pub max_outbox_bytes: usize,
    /// Calls one session may have in flight at once, default 64.
    pub max_inflight_per_session: usize,
    /// First wait before retrying a backend that failed, default 1 s
    /// (`backoff_initial_ms`); doubled after each failure up to
    /// `backoff_max`, with ±20 % jitter.
    pub backoff_initial: Duration,
    /// Longest wait between attempts, default 30 s (`backoff_max_ms`).
    pub backoff_max: Duration,
    /// How long after start list requests and `initialize` wait for every
    /// enabled backend to connect or fail once, so that the first clients
    /// see the whole catalog (`startup_grace_s`, default 10; 0: no wait).
    pub startup_grace: Duration,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ManageConfig {
    /// default "127.0.0.1:9001"
    pub listen: String,
    pub tokens: Vec<TokenConfig>,
    pub tls: Option<TlsConfig>,
    pub public_health: bool,
    pub allow_shutdown: bool,
    pub allow_insecure_remote: bool,
    pub audit_log: Option<PathBuf>,
    /// Event ring size, default 1000.
    pub event_buffer: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TokenConfig {
    pub name: String,
    /// ["read"] or ["read","admin"] (admin implies read).
    pub admin: bool,
    pub source: TokenSource,
}

#[derive(Clone, Debug, PartialEq)]
pub enum TokenSource {
    Env(String),
    File(PathBuf),
    Sha256(String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// One backend entry. An invalid entry keeps its name and carries the
/// reason in `transport: Err(..)`, so it is listed as `failed` while the
/// others run.
#[derive(Clone, Debug, PartialEq)]
pub struct BackendConfig {
    pub name: String,
    pub enabled: bool,
    /// Per-request timeout, default 60 s.
    pub timeout: Duration,
    /// How often a connected backend is pinged (`ping_interval_s`, default
    /// 30 s); `None` (`0` in the file) turns liveness checks off.
    pub ping_interval: Option<Duration>,
    pub prefix: Option<String>,
    pub tools: ToolFilter,
    /// Err holds a one-line message naming the field, e.g.
    /// `backend "git": field "command": required for a stdio backend`.
    pub transport: Result<Transport, String>,
    /// The endpoint as operators see it, decided on the unexpanded text:
    /// a `${VAR}` stays a reference, and secret-looking parts are `***`.
    pub shown: String,
    /// `per_session`: each client session gets its own connection (a
    /// process of its own for stdio), made at its first call and ended
    /// with the session, so that server-to-client requests are routed
    /// exactly and stateful servers keep clients apart. `None`: shared.
    pub per_session: Option<usize>,
}

/// `max_instances` default: connections a `per_session` backend has at
/// most (one per client session using it).
pub const DEFAULT_MAX_INSTANCES: usize = 16;

#[derive(Clone, PartialEq)]
pub enum Transport {
    Stdio(Command),
    Sse {
        url: String,
        headers: Vec<(String, String)>,
        /// Legacy behaviour: start this process first, then connect.
        local: Option<Command>,
        /// The only TLS roots for this backend (`ca_cert`); `None`: the
        /// built-in roots.
        ca_cert: Option<CaCert>,
    },
    StreamableHttp {
        url: String,
        headers: Vec<(String, String)>,
        ca_cert: Option<CaCert>,
    },
}

/// Header values and `env` values are secrets: `Debug` shows names only,
/// so a `{:?}` in a log or a panic message cannot leak them.
impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names = |h: &[(String, String)]| h.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
        match self {
            Transport::Stdio(c) => f.debug_tuple("Stdio").field(c).finish(),
            // The URL may carry an expanded `${VAR}` in its path: not shown.
            Transport::Sse { headers, local, .. } => {
                f.debug_struct("Sse").field("headers", &names(headers)).field("local", local).finish()
            }
            Transport::StreamableHttp { headers, .. } => {
                f.debug_struct("StreamableHttp").field("headers", &names(headers)).finish()
            }
        }
    }
}

/// A backend's `ca_cert`: the certificates of a PEM bundle, read when the
/// configuration is loaded (at start and on each reload), so a reload that
/// finds the file changed restarts the backend, and a connection attempt
/// never fails on a file that went away.
#[derive(Clone, PartialEq)]
pub struct CaCert {
    pub path: PathBuf,
    pub certs: Vec<rustls_pki_types::CertificateDer<'static>>,
}

impl fmt::Debug for CaCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CaCert({}, {} certificates)", self.path.display(), self.certs.len())
    }
}

impl Transport {
    /// "stdio" | "sse" | "streamable-http"
    pub fn kind(&self) -> &'static str {
        match self {
            Transport::Stdio(_) => "stdio",
            Transport::Sse { .. } => "sse",
            Transport::StreamableHttp { .. } => "streamable-http",
        }
    }
}

#[derive(Clone, PartialEq)]
pub struct Command {
    pub command: String,
    pub args: Vec<String>,
    /// Added to (and overriding) the gateway's own environment.
    pub env: BTreeMap<String, String>,
    pub cwd: Option<PathBuf>,
    /// Variables of the gateway's environment that hold its own secrets
    /// (the management tokens' `token_env`): not passed to the child unless
    /// `env` names them explicitly.
    pub withheld_env: Vec<String>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Arguments may carry expanded `${VAR}` values: only their number.
        f.debug_struct("Command")
            .field("command", &self.command)
            .field("args", &self.args.len())
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .field("cwd", &self.cwd)
            .field("withheld_env", &self.withheld_env)
            .finish()
    }
}

/// Which of a backend's tools are exposed, matched on the original name.
/// Globs support `*` and `?`. Empty `allow` means all; `deny` wins.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ToolFilter {
    pub allow: Vec<String>,
    pub deny: Vec<String>,
}

impl ToolFilter {
    pub fn allows(&self, name: &str) -> bool {
        (self.allow.is_empty() || self.allow.iter().any(|g| glob_match(g, name)))
            && !self.deny.iter().any(|g| glob_match(g, name))
    }
}

/// `*` matches any run (including empty), `?` one character.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// A configuration error: the file could not be read, is not JSON, or has
/// the wrong shape. Exit code 78 at start; HTTP 400 on reload.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigError {
    pub path: Option<PathBuf>,
    /// Dotted field path, e.g. `server.listen`, empty for the whole file.
    pub field: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = &self.path {
            write!(f, "{}: ", p.display())?;
        }
        if !self.field.is_empty() {
            write!(f, "field \"{}\": ", self.field)?;
        }
        write!(f, "{}", self.message)
    }
}

impl std::error::Error for ConfigError {}

// ------------------------------------------------------------------ defaults

/// `server.listen` when the file does not say.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9000";
/// `manage.listen` when the file does not say.
pub const DEFAULT_MANAGE_LISTEN: &str = "127.0.0.1:9001";
/// `server.max_body_bytes` default: 4 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// `server.max_sessions` default.
pub const DEFAULT_MAX_SESSIONS: usize = 256;
/// `server.max_connections` default.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;
/// `server.max_connections_per_ip` default.
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 256;
/// `server.max_outbox_bytes` default: 8 MiB.
pub const DEFAULT_MAX_OUTBOX_BYTES: usize = 8 * 1024 * 1024;
/// `server.max_inflight_per_session` default.
pub const DEFAULT_MAX_INFLIGHT_PER_SESSION: usize = 64;
/// `manage.event_buffer` default (CONTRACT §5: the last 1000 events).
pub const DEFAULT_EVENT_BUFFER: usize = 1000;
/// Per-request backend timeout when `timeout_s` is absent.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Liveness ping interval when `ping_interval_s` is absent.
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(30);
/// `server.backoff_initial_ms` default.
pub const DEFAULT_BACKOFF_INITIAL: Duration = Duration::from_millis(1000);
/// `server.backoff_max_ms` default.
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_millis(30_000);
/// `server.startup_grace_s` default.
pub const DEFAULT_STARTUP_GRACE: Duration = Duration::from_secs(10);
/// Longest `startup_grace_s`: clients would time out long before.
const MAX_STARTUP_GRACE_S: f64 = 600.0;
/// Environment variable naming the config file (second in the lookup chain).
pub const CONFIG_ENV: &str = "MCP_SENTINEL_CONFIG";
/// File names tried in the working directory, in order; `config.json` is
/// the original project's name.
pub const CONFIG_FILE_NAMES: [&str; 2] = ["mcp-sentinel.json", "config.json"];

/// Largest accepted `timeout_s`: a day. Longer is almost surely a unit
/// mistake (milliseconds), and it keeps `Duration` arithmetic far from
/// overflow.
const MAX_TIMEOUT_S: f64 = 86_400.0;
const EVENT_BUFFER_RANGE: std::ops::RangeInclusive<u64> = 10..=100_000;
/// Accepted backoff values in milliseconds: below 10 ms a failing backend
/// would be retried in a near-tight loop; above a day is a unit mistake.
const BACKOFF_MS_RANGE: std::ops::RangeInclusive<u64> = 10..=86_400_000;

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: DEFAULT_LISTEN.to_string(),
            name: "mcp-sentinel".to_string(),
            allowed_origins: Vec::new(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_sessions: DEFAULT_MAX_SESSIONS,
            allowed_hosts: Vec::new(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_ip: DEFAULT_MAX_CONNECTIONS_PER_IP,
            max_outbox_bytes: DEFAULT_MAX_OUTBOX_BYTES,
            max_inflight_per_session: DEFAULT_MAX_INFLIGHT_PER_SESSION,
            backoff_initial: DEFAULT_BACKOFF_INITIAL,
            backoff_max: DEFAULT_BACKOFF_MAX,
            startup_grace: DEFAULT_STARTUP_GRACE,
        }
    }
}

impl Default for ManageConfig {
    fn default() -> Self {
        ManageConfig {
            listen: DEFAULT_MANAGE_LISTEN.to_string(),
            tokens: Vec::new(),
            tls: None,
            public_health: false,
            allow_shutdown: false,
            allow_insecure_remote: false,
            audit_log: None,
            event_buffer: DEFAULT_EVENT_BUFFER,
        }
    }
}

impl Config {
    /// A configuration with default `server`/`manage` sections and no file.
    /// The variables of the gateway's environment that hold its own
    /// secrets (the management tokens' `token_env`).
    pub fn secret_env_vars(&self) -> Vec<String> {
        self.manage
            .tokens
            .iter()
            .filter_map(|t| match &t.source {
                TokenSource::Env(v) => Some(v.clone()),
                _ => None,
            })
            .collect()
    }

    /// Marks the gateway's own secret variables as withheld from every
    /// process a backend starts (a backend's `env` may still pass one on).
    pub fn withhold_secret_env(&mut self) {
        let vars = self.secret_env_vars();
        for b in &mut self.backends {
            match &mut b.transport {
                Ok(Transport::Stdio(c)) | Ok(Transport::Sse { local: Some(c), .. }) => c.withheld_env = vars.clone(),
                _ => {}
            }
        }
    }

    pub fn default_with_backends(backends: Vec<BackendConfig>) -> Config {
        Config { path: None, backends, server: ServerConfig::default(), manage: ManageConfig::default() }
    }

    /// Applies the command-line overrides (CLI flags win over the file).
    /// Values are validated like the file's; the error's field names the
    /// flag, e.g. `--listen`.
    pub fn apply_overrides(&mut self, args: &crate::cli::ServerArgs) -> Result<(), ConfigError> {
        let flag_err = |flag: &str, message: String| ConfigError { path: None, field: flag.to_string(), message };
        if let Some(listen) = &args.listen {
            self.server.listen = check_listen(listen).map_err(|m| flag_err("--listen", m))?;
        }
        if let Some(listen) = &args.manage_listen {
            self.manage.listen = check_listen(listen).map_err(|m| flag_err("--manage-listen", m))?;
            check_exposure(&self.manage).map_err(|m| flag_err("--manage-listen", m))?;
        }
        Ok(())
    }
}

impl BackendConfig {
    /// The command line or URL shown to operators (`BACKEND_VIEW.endpoint`),
    /// with secrets redacted: env and header values are never shown, URL
    /// credentials and secret-looking query values become `***`, and so do
    /// values of secret-looking command-line flags (`--token X`,
    /// `--api-key=X`) and header arguments (`--header "Authorization: X"`).
    /// Empty for an invalid backend.
    pub fn endpoint(&self) -> String {
        if self.transport.is_err() {
            return String::new();
        }
        self.shown.clone()
    }
}

impl Command {
    /// `command args...` joined with spaces, secrets redacted (see
    /// [`BackendConfig::endpoint`]).
    pub fn redacted_line(&self) -> String {
        let mut parts = vec![self.command.clone()];
        // What the previous argument says about this one.
        let mut next_is_secret = false;
        let mut next_is_header = false;
        for arg in &self.args {
            let shown = if next_is_secret {
                "***".to_string()
            } else if next_is_header {
                redact_header_arg(arg)
            } else if let Some(v) = arg.strip_prefix("--header=") {
                format!("--header={}", redact_header_arg(v))
            } else if let Some(v) = arg.strip_prefix("-H").filter(|v| !v.is_empty()) {
                // `-HName: value`, the short flag with its value attached.
                format!("-H{}", redact_header_arg(v))
            } else if arg.starts_with("http://") || arg.starts_with("https://") {
                redact_url(arg)
            } else if let Some((name, _)) = arg.split_once('=') {
                // `--token=X`, `-e API_KEY=X`, `API_KEY=X` (as given to `env`).
                if is_secret_key(name.trim_start_matches('-')) {
                    format!("{name}=***")
                } else {
                    arg.clone()
                }
            } else if looks_like_secret_header(arg) {
                redact_header_arg(arg)
            } else {
                arg.clone()
            };
            // A bare flag (`--token`, `-H`), not one with its value attached.
            let is_flag = arg.starts_with('-') && !arg.contains(['=', ':', ' ']);
            next_is_header = is_flag && (arg == "--header" || arg == "-H");
            next_is_secret = is_flag && !next_is_header && is_secret_key(arg);
            parts.push(shown);
        }
        parts.join(" ")
    }
}

/// `Name: value` → `Name: ***`; anything else is hidden whole.
fn redact_header_arg(arg: &str) -> String {
    match arg.split_once(':') {
        Some((name, _)) => format!("{name}: ***"),
        None => "***".to_string(),
    }
}

/// `Authorization: …`, `X-Api-Key: …`, `Cookie: …` given as a bare
/// argument (a header a tool takes positionally).
fn looks_like_secret_header(arg: &str) -> bool {
    match arg.split_once(':') {
        Some((name, value)) => {
            let header_name = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
            header_name
                && value.starts_with(' ')
                && (is_secret_key(name)
                    || name.eq_ignore_ascii_case("cookie")
                    || name.to_ascii_lowercase().contains("api"))
        }
        None => false,
    }
}

/// Whether a query key or flag name probably carries a secret.
fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k == "sig" || ["token", "key", "secret", "password", "passwd", "auth", "signature"].iter().any(|s| k.contains(s))
}

/// Replaces URL credentials and secret-looking query (and fragment) values
/// with `***`. A user name alone is hidden too: `https://TOKEN@host` is a
/// common way to pass a token.
pub fn redact_url(url: &str) -> String {
    let url = &hide_expanded(url);
    let Some(i) = url.find("://") else {
        return url.to_string();
    };
    let (scheme, rest) = url.split_at(i + 3);
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let authority = match authority.rfind('@') {
        Some(at) => {
            let (user, host) = (&authority[..at], &authority[at + 1..]);
            match user.split_once(':') {
                Some((name, _)) => format!("{name}:***@{host}"),
                None => format!("***@{host}"),
            }
        }
        None => authority.to_string(),
    };
    let (before_frag, frag) = match tail.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (tail, None),
    };
    let (path, query) = match before_frag.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (before_frag, None),
    };
    let mut out = format!("{scheme}{authority}{path}");
    if let Some(q) = query {
        out.push('?');
        out.push_str(&redact_pairs(q));
    }
    if let Some(f) = frag {
        out.push('#');
        out.push_str(&redact_pairs(f));
    }
    out
}

/// `text` (say, an error message of the HTTP client) with every copy of
/// `url` replaced by its redacted form, and every secret the URL carries
/// (password or lone user name, values of secret-looking query or fragment
/// keys) replaced by `***` wherever it appears: the client may print the URL
/// normalized, or only its path and query.
pub fn scrub_url(text: &str, url: &str) -> String {
    let mut out = hide_expanded(&text.replace(url, &redact_url(url)));
    for secret in url_secrets(url) {
        // A secret of one to three characters would garble the message more
        // than it hides; such a value is no secret anyway.
        if secret.len() >= 4 {
            out = out.replace(secret, "***");
        }
    }
    out
}

/// The parts of `url` that [`redact_url`] hides.
fn url_secrets(url: &str) -> Vec<&str> {
    let Some(i) = url.find("://") else {
        return Vec::new();
    };
    let rest = &url[i + 3..];
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let mut out = Vec::new();
    if let Some(at) = authority.rfind('@') {
        let user = &authority[..at];
        out.push(user.split_once(':').map_or(user, |(_, password)| password));
    }
    let (before_frag, frag) = tail.split_once('#').map_or((tail, None), |(b, f)| (b, Some(f)));
    let query = before_frag.split_once('?').map(|(_, q)| q);
    for part in [query, frag].into_iter().flatten() {
        for pair in part.split('&') {
            if let Some((k, v)) = pair.split_once('=') {
                if is_secret_key(k) && !v.is_empty() {
                    out.push(v);
                }
            }
        }
    }
    out
}

fn redact_pairs(s: &str) -> String {
    s.split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if is_secret_key(k) => format!("{k}=***"),
            _ => pair.to_string(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

// -------------------------------------------------------------------- lookup

/// Finds the config file: `--config` (`cli`), else `$MCP_SENTINEL_CONFIG`,
/// else `./mcp-sentinel.json`, else `./config.json`. A path given explicitly
/// (flag or variable) must exist; when nothing is found the error lists what
/// was tried.
pub fn locate(cli: Option<&Path>) -> Result<PathBuf, ConfigError> {
    let env = std::env::var_os(CONFIG_ENV);
    locate_in(cli, env.as_deref().map(Path::new), Path::new("."))
}

/// [`locate`] with the variable's value and the working directory passed
/// in, so tests need not touch the process environment.
fn locate_in(cli: Option<&Path>, env: Option<&Path>, base: &Path) -> Result<PathBuf, ConfigError> {
    let explicit = |p: &Path, by: &str| {
        if p.exists() {
            Ok(p.to_path_buf())
        } else {
            Err(ConfigError {
                path: Some(p.to_path_buf()),
                field: String::new(),
                message: format!("no such file (given by {by})"),
            })
        }
    };
    if let Some(p) = cli {
        return explicit(p, "--config");
    }
    // An empty variable counts as unset, as shells make that easy by mistake.
    if let Some(p) = env.filter(|p| !p.as_os_str().is_empty()) {
        return explicit(p, &format!("${CONFIG_ENV}"));
    }
    let candidates: Vec<PathBuf> = CONFIG_FILE_NAMES.iter().map(|n| base.join(n)).collect();
    if let Some(found) = candidates.iter().find(|p| p.is_file()) {
        return Ok(found.clone());
    }
    let tried: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
    Err(ConfigError {
        path: None,
        field: String::new(),
        message: format!(
            "no configuration file found (tried {}); pass --config PATH or set ${CONFIG_ENV}",
            tried.join(", ")
        ),
    })
}

// ------------------------------------------------------------------- parsing

/// Reads and parses a config file.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        path: Some(path.to_path_buf()),
        field: String::new(),
        message: format!("cannot read the file: {e}"),
    })?;
    parse_str(&text, Some(path))
}

/// Parses config text; `path` is only used in messages and `Config::path`.
/// `${VAR}` references are expanded from the process environment.
pub fn parse_str(text: &str, path: Option<&Path>) -> Result<Config, ConfigError> {
    parse_with_env(text, path, &|name| std::env::var(name).ok())
}

/// [`parse_str`] with the environment lookup passed in (for tests and for
/// callers that resolve variables elsewhere).
pub fn parse_with_env(
    text: &str,
    path: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let err = |bad: Bad| ConfigError { path: path.map(Path::to_path_buf), field: bad.field, message: bad.message };
    let root: Value = serde_json::from_str(text).map_err(|e| err(Bad::new("", format!("not valid JSON: {e}"))))?;
    let root = match root {
        Value::Object(map) => map,
        other => {
            return Err(err(Bad::new(
                "",
                format!("expected a JSON object at the top level, found {}", describe(&other)),
            )))
        }
    };
    let file = path.map_or_else(|| "<config>".to_string(), |p| p.display().to_string());
    let mut config = Config::default_with_backends(Vec::new());
    config.path = path.map(Path::to_path_buf);

    // The current shape is recognised by any of its three keys; anything
    // else is the legacy flat `{NAME: BACKEND}` object.
    const TOP_KEYS: [&str; 3] = ["mcpServers", "server", "manage"];
    let current = TOP_KEYS.iter().any(|k| root.contains_key(*k));
    let (backends, backend_prefix) = if current {
        let top = Obj::new(&root, "");
        top.warn_unknown(&TOP_KEYS, &file);
        config.server = parse_server(top.obj("server").map_err(err)?, &file).map_err(err)?;
        config.manage = parse_manage(top.obj("manage").map_err(err)?, &file).map_err(err)?;
        let backends = match top.get("mcpServers") {
            None => None,
            Some(Value::Object(m)) => Some(m),
            Some(other) => {
                return Err(err(Bad::new(
                    "mcpServers",
                    format!("expected an object of backends, found {}", describe(other)),
                )))
            }
        };
        (backends, "mcpServers.")
    } else {
        (Some(&root), "")
    };
    if let Some(map) = backends {
        config.backends = map
            .iter()
            .map(|(name, v)| parse_backend(name, v, env, &file, &format!("{backend_prefix}{name}")))
            .collect();
    }
    config.withhold_secret_env();
    Ok(config)
}

/// A validation failure before it gets its file (or backend) attached.
#[derive(Debug)]
struct Bad {
    field: String,
    message: String,
}

impl Bad {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Bad {
        Bad { field: field.into(), message: message.into() }
    }
}

/// "a string", "an array", ... for messages.
fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A JSON object plus the dotted path it sits at, so every accessor can
/// name the field it complains about.
struct Obj<'a> {
    map: &'a Map<String, Value>,
    prefix: String,
}

impl<'a> Obj<'a> {
    fn new(map: &'a Map<String, Value>, prefix: &str) -> Obj<'a> {
        Obj { map, prefix: prefix.to_string() }
    }

    fn field(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.prefix)
        }
    }

    fn bad(&self, key: &str, message: impl Into<String>) -> Bad {
        Bad::new(self.field(key), message)
    }

    fn wrong(&self, key: &str, expected: &str, found: &Value) -> Bad {
        self.bad(key, format!("expected {expected}, found {}", describe(found)))
    }

    /// The value, with `null` treated as absent.
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    fn str(&self, key: &str) -> Result<Option<&'a str>, Bad> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(self.wrong(key, "a string", v)),
        }
    }

    fn bool(&self, key: &str) -> Result<Option<bool>, Bad> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(self.wrong(key, "true or false", v)),
        }
    }

    fn pos_int(&self, key: &str) -> Result<Option<u64>, Bad> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => match v.as_u64() {
                Some(n) if n > 0 => Ok(Some(n)),
                _ => Err(self.bad(key, format!("expected a positive integer, found {v}"))),
            },
        }
    }

    fn obj(&self, key: &str) -> Result<Option<Obj<'a>>, Bad> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Object(m)) => Ok(Some(Obj::new(m, &self.field(key)))),
            Some(v) => Err(self.wrong(key, "an object", v)),
        }
    }

    /// An array of strings; an element of another type is named by index.
    fn str_list(&self, key: &str) -> Result<Option<Vec<&'a str>>, Bad> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::String(s) => Ok(s.as_str()),
                    other => Err(self.wrong(&format!("{key}[{i}]"), "a string", other)),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(v) => Err(self.wrong(key, "an array of strings", v)),
        }
    }

    /// An object of strings, in file order.
    fn str_map(&self, key: &str) -> Result<Option<Vec<(&'a str, &'a str)>>, Bad> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Object(m)) => m
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k.as_str(), s.as_str())),
                    other => Err(self.wrong(&format!("{key}.{k}"), "a string", other)),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(v) => Err(self.wrong(key, "an object of strings", v)),
        }
    }

    /// Warns once per key not in `known` (see the module doc for why this
    /// is a warning, not an error).
    fn warn_unknown(&self, known: &[&str], file: &str) {
        for key in self.map.keys().filter(|k| !known.contains(&k.as_str())) {
            log::warn!("{file}: unknown field \"{}\" ignored", self.field(key));
        }
    }
}

/// `ip:port` as std parses it (`[::1]:9000` for IPv6). Host names are not
/// accepted: what a name resolves to is not something to guess at bind time.
fn check_listen(value: &str) -> Result<String, String> {
    match value.parse::<SocketAddr>() {
        Ok(_) => Ok(value.to_string()),
        Err(_) => Err(format!("expected an IP address and port such as \"127.0.0.1:9000\", found {value:?}")),
    }
}

/// CONTRACT §3: a non-loopback management address is refused unless TLS is
/// set or `allow_insecure_remote` is true. Assumes `listen` was checked.
fn check_exposure(manage: &ManageConfig) -> Result<(), String> {
    let loopback = manage.listen.parse::<SocketAddr>().map(|a| a.ip().is_loopback()).unwrap_or(false);
    if loopback || manage.tls.is_some() || manage.allow_insecure_remote {
        Ok(())
    } else {
        Err(format!(
            "{:?} is not a loopback address; set manage.tls, or manage.allow_insecure_remote \
             to true, to serve the management API remotely",
            manage.listen
        ))
    }
}

fn parse_server(obj: Option<Obj<'_>>, file: &str) -> Result<ServerConfig, Bad> {
    let mut s = ServerConfig::default();
    let Some(o) = obj else { return Ok(s) };
    o.warn_unknown(
        &[
            "listen",
            "name",
            "allowed_origins",
            "allowed_hosts",
            "max_body_bytes",
            "max_sessions",
            "max_connections",
            "max_connections_per_ip",
            "max_outbox_bytes",
            "max_inflight_per_session",
            "backoff_initial_ms",
            "backoff_max_ms",
            "startup_grace_s",
        ],
        file,
    );
    if let Some(v) = o.get("startup_grace_s") {
        s.startup_grace = match v.as_f64() {
            Some(g) if (0.0..=MAX_STARTUP_GRACE_S).contains(&g) => Duration::from_secs_f64(g),
            _ => {
                return Err(o.bad(
                    "startup_grace_s",
                    format!("expected a number of seconds from 0 (no wait) to {MAX_STARTUP_GRACE_S}, found {v}"),
                ))
            }
        };
    }
    if let Some(listen) = o.str("listen")? {
        s.listen = check_listen(listen).map_err(|m| o.bad("listen", m))?;
    }
    if let Some(name) = o.str("name")? {
        if name.trim().is_empty() {
            return Err(o.bad("name", "must not be empty"));
        }
        s.name = name.to_string();
    }
    if let Some(origins) = o.str_list("allowed_origins")? {
        s.allowed_origins = origins
            .iter()
            .enumerate()
            .map(|(i, origin)| check_origin(origin).map_err(|m| o.bad(&format!("allowed_origins[{i}]"), m)))
            .collect::<Result<_, _>>()?;
    }
    if let Some(n) = o.pos_int("max_body_bytes")? {
        s.max_body_bytes = usize::try_from(n).map_err(|_| o.bad("max_body_bytes", "too large"))?;
    }
    if let Some(n) = o.pos_int("max_sessions")? {
        s.max_sessions = usize::try_from(n).map_err(|_| o.bad("max_sessions", "too large"))?;
    }
    if let Some(hosts) = o.str_list("allowed_hosts")? {
        for (i, h) in hosts.iter().enumerate() {
            if h.is_empty() || h.contains(['/', ' ', '@', '?', '#']) {
                return Err(o.bad(
                    &format!("allowed_hosts[{i}]"),
                    format!("expected a host name such as \"gw.example.com\" (optionally with :port), found {h:?}"),
                ));
            }
        }
        s.allowed_hosts = hosts.iter().map(|h| h.to_ascii_lowercase()).collect();
    }
    for (key, field) in [
        ("max_connections", &mut s.max_connections),
        ("max_connections_per_ip", &mut s.max_connections_per_ip),
        ("max_outbox_bytes", &mut s.max_outbox_bytes),
        ("max_inflight_per_session", &mut s.max_inflight_per_session),
    ] {
        if let Some(n) = o.pos_int(key)? {
            *field = usize::try_from(n).map_err(|_| o.bad(key, "too large"))?;
        }
    }
    if let Some(ms) = backoff_ms(&o, "backoff_initial_ms")? {
        s.backoff_initial = ms;
    }
    if let Some(ms) = backoff_ms(&o, "backoff_max_ms")? {
        s.backoff_max = ms;
    }
    if s.backoff_max < s.backoff_initial {
        let field = if o.has("backoff_max_ms") { "backoff_max_ms" } else { "backoff_initial_ms" };
        return Err(o.bad(
            field,
            format!(
                "backoff_max_ms ({}) is less than backoff_initial_ms ({}); the cap must be at least the first wait",
                s.backoff_max.as_millis(),
                s.backoff_initial.as_millis()
            ),
        ));
    }
    Ok(s)
}

/// A backoff setting in whole milliseconds, within [`BACKOFF_MS_RANGE`].
fn backoff_ms(o: &Obj<'_>, key: &str) -> Result<Option<Duration>, Bad> {
    let Some(v) = o.get(key) else { return Ok(None) };
    match v.as_u64() {
        Some(n) if BACKOFF_MS_RANGE.contains(&n) => Ok(Some(Duration::from_millis(n))),
        _ => Err(o.bad(
            key,
            format!(
                "expected an integer number of milliseconds from {} to {}, found {v}",
                BACKOFF_MS_RANGE.start(),
                BACKOFF_MS_RANGE.end()
            ),
        )),
    }
}

/// An `Origin` header value is `scheme://host[:port]` with no path, so an
/// entry with a path or trailing slash could never match: reject it rather
/// than keep an inert entry. Stored lower-case (origins compare
/// case-insensitively).
fn check_origin(origin: &str) -> Result<String, String> {
    let lower = origin.to_ascii_lowercase();
    let rest = lower.strip_prefix("http://").or_else(|| lower.strip_prefix("https://"));
    match rest {
        Some(host) if !host.is_empty() && !host.contains(['/', '?', '#', ' ']) => Ok(lower),
        _ => Err(format!(
            "expected an origin such as \"https://app.example.com\" (scheme, host, optional port, no path), found {origin:?}"
        )),
    }
}

fn parse_manage(obj: Option<Obj<'_>>, file: &str) -> Result<ManageConfig, Bad> {
    let mut m = ManageConfig::default();
    let Some(o) = obj else { return Ok(m) };
    o.warn_unknown(
        &[
            "listen",
            "tokens",
            "tls",
            "public_health",
            "allow_shutdown",
            "allow_insecure_remote",
            "audit_log",
            "event_buffer",
        ],
        file,
    );
    if let Some(listen) = o.str("listen")? {
        m.listen = check_listen(listen).map_err(|e| o.bad("listen", e))?;
    }
    match o.get("tokens") {
        None => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let field = format!("tokens[{i}]");
                let token = match item {
                    Value::Object(t) => parse_token(&Obj::new(t, &o.field(&field)), file)?,
                    other => return Err(o.wrong(&field, "an object", other)),
                };
                if m.tokens.iter().any(|t| t.name == token.name) {
                    return Err(o.bad(&format!("{field}.name"), format!("duplicate token name {:?}", token.name)));
                }
                m.tokens.push(token);
            }
        }
        Some(v) => return Err(o.wrong("tokens", "an array of token objects", v)),
    }
    if let Some(tls) = o.obj("tls")? {
        tls.warn_unknown(&["cert", "key"], file);
        let path = |key: &str| -> Result<PathBuf, Bad> {
            match tls.str(key)? {
                Some(p) if !p.is_empty() => Ok(PathBuf::from(p)),
                Some(_) => Err(tls.bad(key, "must not be empty")),
                None => Err(tls.bad(key, "required when manage.tls is set (path of a PEM file)")),
            }
        };
        m.tls = Some(TlsConfig { cert: path("cert")?, key: path("key")? });
    }
    m.public_health = o.bool("public_health")?.unwrap_or(false);
    m.allow_shutdown = o.bool("allow_shutdown")?.unwrap_or(false);
    m.allow_insecure_remote = o.bool("allow_insecure_remote")?.unwrap_or(false);
    if let Some(p) = o.str("audit_log")? {
        if p.is_empty() {
            return Err(o.bad("audit_log", "must not be empty (omit it to disable the audit log)"));
        }
        m.audit_log = Some(PathBuf::from(p));
    }
    if let Some(v) = o.get("event_buffer") {
        m.event_buffer = match v.as_u64() {
            Some(n) if EVENT_BUFFER_RANGE.contains(&n) => n as usize,
            _ => {
                return Err(o.bad(
                    "event_buffer",
                    format!(
                        "expected an integer from {} to {}, found {v}",
                        EVENT_BUFFER_RANGE.start(),
                        EVENT_BUFFER_RANGE.end()
                    ),
                ))
            }
        };
    }
    check_exposure(&m).map_err(|e| o.bad("listen", e))?;
    Ok(m)
}

fn parse_token(o: &Obj<'_>, file: &str) -> Result<TokenConfig, Bad> {
    const SOURCES: [&str; 3] = ["token_env", "token_file", "sha256"];
    o.warn_unknown(&["name", "scopes", "token_env", "token_file", "sha256"], file);
    let name = match o.str("name")? {
        Some(n) if !n.trim().is_empty() => n.to_string(),
        Some(_) => return Err(o.bad("name", "must not be empty")),
        None => return Err(o.bad("name", "required (it names the token in the audit log)")),
    };
    let scopes =
        o.str_list("scopes")?.ok_or_else(|| o.bad("scopes", "required: [\"read\"] or [\"read\", \"admin\"]"))?;
    let mut set: Vec<&str> = scopes.clone();
    set.sort_unstable();
    set.dedup();
    // ["admin"] alone is accepted: admin implies read.
    let admin = match set.as_slice() {
        ["read"] => false,
        ["admin"] | ["admin", "read"] => true,
        _ => return Err(o.bad("scopes", format!("expected [\"read\"] or [\"read\", \"admin\"], found {scopes:?}"))),
    };
    let given: Vec<&str> = SOURCES.iter().copied().filter(|k| o.has(k)).collect();
    let source = match given.as_slice() {
        ["token_env"] => match o.str("token_env")? {
            Some(v) if is_var_name(v) => TokenSource::Env(v.to_string()),
            _ => return Err(o.bad("token_env", "expected an environment variable name")),
        },
        ["token_file"] => match o.str("token_file")? {
            Some(p) if !p.is_empty() => TokenSource::File(PathBuf::from(p)),
            _ => return Err(o.bad("token_file", "expected a file path")),
        },
        ["sha256"] => match o.str("sha256")? {
            Some(h) if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
                TokenSource::Sha256(h.to_ascii_lowercase())
            }
            _ => return Err(o.bad("sha256", "expected 64 hexadecimal characters (the token's SHA-256)")),
        },
        [] => return Err(Bad::new(o.prefix.clone(), "needs one of token_env, token_file or sha256")),
        many => {
            return Err(Bad::new(
                o.prefix.clone(),
                format!("has {}; give exactly one token source", many.join(" and ")),
            ))
        }
    };
    Ok(TokenConfig { name, admin, source })
}

// ------------------------------------------------------------------ backends

const BACKEND_KEYS: [&str; 15] = [
    "type",
    "command",
    "args",
    "env",
    "cwd",
    "url",
    "headers",
    "ca_cert",
    "enabled",
    "timeout_s",
    "ping_interval_s",
    "prefix",
    "tools",
    "per_session",
    "max_instances",
];
const COMMAND_KEYS: [&str; 4] = ["command", "args", "env", "cwd"];

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Stdio,
    Sse,
    Http,
}

impl Kind {
    /// "a stdio backend", for messages.
    fn article(self) -> &'static str {
        match self {
            Kind::Stdio => "a stdio backend",
            Kind::Sse => "an sse backend",
            Kind::Http => "a streamable-http backend",
        }
    }
}

/// Never fails: problems end up in `transport: Err(..)` (the first one
/// found), and the other fields keep what could be read.
fn parse_backend(
    name: &str,
    value: &Value,
    env: &dyn Fn(&str) -> Option<String>,
    file: &str,
    at: &str,
) -> BackendConfig {
    let mut b = BackendConfig {
        name: name.to_string(),
        enabled: true,
        timeout: DEFAULT_TIMEOUT,
        ping_interval: Some(DEFAULT_PING_INTERVAL),
        prefix: None,
        tools: ToolFilter::default(),
        transport: Err(String::new()),
        shown: String::new(),
        per_session: None,
    };
    let fail = |bad: Bad| format!("backend {name:?}: field {:?}: {}", bad.field, bad.message);
    let name_err = (!matches_charset(name, 64, |c| c.is_ascii_alphanumeric() || "_.-".contains(c)))
        .then(|| format!("backend {name:?}: the name must be 1 to 64 characters from A-Z, a-z, 0-9, '_', '.', '-'"));
    let map = match value {
        Value::Object(map) => map,
        other => {
            let msg = format!("backend {name:?}: expected an object, found {}", describe(other));
            b.transport = Err(name_err.unwrap_or(msg));
            return b;
        }
    };
    let o = Obj::new(map, "");
    // Warnings name the backend's place in the file, not the bare key.
    Obj::new(map, at).warn_unknown(&BACKEND_KEYS, file);

    let transport = parse_transport(&o, env).map_err(fail);
    // First problem among the common fields; reported after name and transport.
    let mut first: Option<String> = None;
    match o.bool("enabled") {
        Ok(v) => b.enabled = v.unwrap_or(true),
        Err(e) => keep_first(&mut first, fail(e)),
    }
    match parse_timeout(&o) {
        Ok(Some(t)) => b.timeout = t,
        Ok(None) => {}
        Err(e) => keep_first(&mut first, fail(e)),
    }
    match parse_ping_interval(&o) {
        Ok(Some(p)) => b.ping_interval = p,
        Ok(None) => {}
        Err(e) => keep_first(&mut first, fail(e)),
    }
    match o.str("prefix") {
        Ok(None) => {}
        Ok(Some(p)) if matches_charset(p, 64, |c| c.is_ascii_alphanumeric() || "_-".contains(c)) => {
            b.prefix = Some(p.to_string())
        }
        Ok(Some(_)) => {
            keep_first(&mut first, fail(o.bad("prefix", "must be 1 to 64 characters from A-Z, a-z, 0-9, '_', '-'")))
        }
        Err(e) => keep_first(&mut first, fail(e)),
    }
    match parse_tools(&o, file, at) {
        Ok(t) => b.tools = t,
        Err(e) => keep_first(&mut first, fail(e)),
    }
    match (o.bool("per_session"), o.pos_int("max_instances")) {
        (Ok(Some(true)), Ok(max)) => {
            b.per_session = Some(max.map_or(DEFAULT_MAX_INSTANCES, |m| usize::try_from(m).unwrap_or(usize::MAX)))
        }
        (Ok(_), Ok(Some(_))) => {
            keep_first(&mut first, fail(o.bad("max_instances", "applies only with \"per_session\": true")))
        }
        (Err(e), _) | (_, Err(e)) => keep_first(&mut first, fail(e)),
        _ => {}
    }
    b.transport = match (name_err, transport, first) {
        (Some(e), _, _) | (None, Err(e), _) | (None, Ok(_), Some(e)) => Err(e),
        (None, Ok(t), None) => Ok(t),
    };
    b.shown = shown_endpoint(&o, &b.transport);
    b
}

fn keep_first(slot: &mut Option<String>, msg: String) {
    slot.get_or_insert(msg);
}

fn matches_charset(s: &str, max: usize, ok: impl Fn(char) -> bool) -> bool {
    !s.is_empty() && s.len() <= max && s.chars().all(ok)
}

fn is_var_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

fn parse_timeout(o: &Obj<'_>) -> Result<Option<Duration>, Bad> {
    let Some(v) = o.get("timeout_s") else {
        return Ok(None);
    };
    match v.as_f64() {
        Some(s) if s > 0.0 && s <= MAX_TIMEOUT_S => {
            Duration::try_from_secs_f64(s).map(Some).map_err(|e| o.bad("timeout_s", e.to_string()))
        }
        _ => Err(o.bad("timeout_s", format!("expected a positive number of seconds up to {MAX_TIMEOUT_S}, found {v}"))),
    }
}

/// `ping_interval_s`: seconds like `timeout_s`, except that 0 is allowed and
/// turns the liveness check off. `Some(None)` means off.
fn parse_ping_interval(o: &Obj<'_>) -> Result<Option<Option<Duration>>, Bad> {
    let Some(v) = o.get("ping_interval_s") else {
        return Ok(None);
    };
    match v.as_f64() {
        Some(0.0) => Ok(Some(None)),
        Some(s) if s > 0.0 && s <= MAX_TIMEOUT_S => {
            Duration::try_from_secs_f64(s).map(|d| Some(Some(d))).map_err(|e| o.bad("ping_interval_s", e.to_string()))
        }
        _ => Err(o.bad(
            "ping_interval_s",
            format!("expected a number of seconds from 0 (off) to {MAX_TIMEOUT_S}, found {v}"),
        )),
    }
}

fn parse_tools(o: &Obj<'_>, file: &str, at: &str) -> Result<ToolFilter, Bad> {
    let Some(tools) = o.obj("tools")? else {
        return Ok(ToolFilter::default());
    };
    if let Some(Value::Object(m)) = o.get("tools") {
        Obj::new(m, &format!("{at}.tools")).warn_unknown(&["allow", "deny"], file);
    }
    let list = |key: &str| -> Result<Vec<String>, Bad> {
        Ok(tools.str_list(key)?.unwrap_or_default().into_iter().map(str::to_string).collect())
    };
    Ok(ToolFilter { allow: list("allow")?, deny: list("deny")? })
}

fn parse_transport(o: &Obj<'_>, env: &dyn Fn(&str) -> Option<String>) -> Result<Transport, Bad> {
    let kind = match o.str("type")? {
        Some("stdio") => Kind::Stdio,
        Some("sse") => Kind::Sse,
        Some("streamable-http") | Some("http") => Kind::Http,
        Some(other) => {
            return Err(
                o.bad("type", format!("unknown type {other:?} (expected \"stdio\", \"sse\" or \"streamable-http\")"))
            )
        }
        None if o.has("url") => Kind::Http,
        None if o.has("command") => Kind::Stdio,
        None => return Err(o.bad("command", "a backend needs \"command\" (stdio) or \"url\" (sse, streamable-http)")),
    };
    match kind {
        Kind::Stdio => {
            reject(o, &["url", "headers", "ca_cert"], kind, "")?;
            match parse_command(o, env, Some(kind))? {
                Some(cmd) => Ok(Transport::Stdio(cmd)),
                None => Err(o.bad("command", format!("required for {}", kind.article()))),
            }
        }
        Kind::Sse => {
            let url = parse_url(o, env, kind)?;
            Ok(Transport::Sse {
                headers: parse_headers(o, env)?,
                local: parse_command(o, env, None)?,
                ca_cert: parse_ca_cert(o, env, &url)?,
                url,
            })
        }
        Kind::Http => {
            reject(o, &COMMAND_KEYS, kind, " (set \"type\": \"sse\" to start a local server first)")?;
            let url = parse_url(o, env, kind)?;
            Ok(Transport::StreamableHttp {
                headers: parse_headers(o, env)?,
                ca_cert: parse_ca_cert(o, env, &url)?,
                url,
            })
        }
    }
}

/// The endpoint shown to operators, from the file's own text before
/// `${VAR}` expansion: a secret expanded into a URL path or an argument
/// shows as its `${VAR}` reference, never as its value; the usual
/// redaction applies on top.
fn shown_endpoint(o: &Obj<'_>, t: &Result<Transport, String>) -> String {
    match t {
        Ok(Transport::Stdio(_)) => {
            let command = o.str("command").ok().flatten().unwrap_or_default().to_owned();
            let args = o.str_list("args").ok().flatten().unwrap_or_default().iter().map(|a| a.to_string()).collect();
            Command { command, args, env: BTreeMap::new(), cwd: None, withheld_env: Vec::new() }.redacted_line()
        }
        Ok(Transport::Sse { .. } | Transport::StreamableHttp { .. }) => {
            redact_url(o.str("url").ok().flatten().unwrap_or_default())
        }
        Err(_) => String::new(),
    }
}

/// A known key the chosen type would ignore is an error (no inert knobs).
fn reject(o: &Obj<'_>, keys: &[&str], kind: Kind, hint: &str) -> Result<(), Bad> {
    match keys.iter().find(|k| o.has(k)) {
        Some(k) => Err(o.bad(k, format!("not used by {}{hint}", kind.article()))),
        None => Ok(()),
    }
}

/// The process part (`command`, `args`, `env`, `cwd`); None when there is no
/// `command` and none of the others either. `required` names the kind that
/// cannot do without one.
fn parse_command(
    o: &Obj<'_>,
    env: &dyn Fn(&str) -> Option<String>,
    required: Option<Kind>,
) -> Result<Option<Command>, Bad> {
    let Some(raw) = o.str("command")? else {
        if let Some(kind) = required {
            return Err(o.bad("command", format!("required for {}", kind.article())));
        }
        return match COMMAND_KEYS[1..].iter().find(|k| o.has(k)) {
            Some(k) => Err(o.bad("command", format!("required when \"{k}\" is set"))),
            None => Ok(None),
        };
    };
    let command = expand(raw, "command", env)?;
    if command.trim().is_empty() {
        return Err(o.bad("command", "must not be empty"));
    }
    let mut args = Vec::new();
    for (i, a) in o.str_list("args")?.unwrap_or_default().iter().enumerate() {
        args.push(expand(a, &format!("args[{i}]"), env)?);
    }
    let mut vars = BTreeMap::new();
    for (k, v) in o.str_map("env")?.unwrap_or_default() {
        if k.is_empty() || k.contains(['=', '\0']) {
            return Err(o.bad(&format!("env.{k}"), "not a valid environment variable name"));
        }
        vars.insert(k.to_string(), expand(v, &format!("env.{k}"), env)?);
    }
    let cwd = match o.str("cwd")? {
        None => None,
        Some(c) => {
            let c = expand(c, "cwd", env)?;
            if c.is_empty() {
                return Err(o.bad("cwd", "must not be empty"));
            }
            Some(PathBuf::from(c))
        }
    };
    Ok(Some(Command { command, args, env: vars, cwd, withheld_env: Vec::new() }))
}

fn parse_url(o: &Obj<'_>, env: &dyn Fn(&str) -> Option<String>, kind: Kind) -> Result<String, Bad> {
    let raw = o.str("url")?.ok_or_else(|| o.bad("url", format!("required for {}", kind.article())))?;
    let url = expand(raw, "url", env)?;
    let lower = url.to_ascii_lowercase();
    let rest = lower.strip_prefix("http://").or_else(|| lower.strip_prefix("https://"));
    match rest {
        Some(r) if !r.is_empty() && !r.starts_with(['/', '?', '#']) && !url.contains(char::is_whitespace) => Ok(url),
        // The value is not echoed: it may hold a credential.
        _ => Err(o.bad("url", "expected an http:// or https:// URL with a host")),
    }
}

fn parse_headers(o: &Obj<'_>, env: &dyn Fn(&str) -> Option<String>) -> Result<Vec<(String, String)>, Bad> {
    let mut headers = Vec::new();
    for (k, v) in o.str_map("headers")?.unwrap_or_default() {
        let field = format!("headers.{k}");
        let token_char = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
        if k.is_empty() || !k.chars().all(token_char) {
            return Err(o.bad(&field, "not a valid HTTP header name"));
        }
        let value = expand(v, &field, env)?;
        // CR/LF would let a value inject headers of its own.
        if value.contains(['\r', '\n', '\0']) {
            return Err(o.bad(&field, "the value must not contain CR, LF or NUL"));
        }
        headers.push((k.to_string(), value));
    }
    Ok(headers)
}

/// Values that `${VAR}` references expanded to (and their names), so that
/// text shown to operators (errors, events, log lines that quote a URL or
/// an argument) can show the reference instead of the value, wherever the
/// value ended up. Bounded by the configuration's size.
static EXPANDED: std::sync::RwLock<Vec<(String, String)>> = std::sync::RwLock::new(Vec::new());

/// Shorter values are left alone: they would garble messages more than they
/// hide (and such a value is no secret anyway).
const MIN_HIDDEN_VALUE: usize = 6;

fn remember_expanded(var: &str, value: &str) {
    if value.len() < MIN_HIDDEN_VALUE {
        return;
    }
    let mut g = EXPANDED.write().unwrap_or_else(std::sync::PoisonError::into_inner);
    if !g.iter().any(|(v, n)| v == value && n == var) {
        g.push((value.to_owned(), var.to_owned()));
        // Longest first, so a value that contains another is replaced whole.
        g.sort_by_key(|e| std::cmp::Reverse(e.0.len()));
    }
}

/// `text` with every value a `${VAR}` of the configuration expanded to
/// replaced by that `${VAR}`.
pub fn hide_expanded(text: &str) -> String {
    let g = EXPANDED.read().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut out = std::borrow::Cow::Borrowed(text);
    for (value, var) in g.iter() {
        if out.contains(value.as_str()) {
            out = std::borrow::Cow::Owned(out.replace(value.as_str(), &format!("${{{var}}}")));
        }
    }
    out.into_owned()
}

/// `ca_cert`: a PEM file whose certificates become the only TLS roots of an
/// https backend. Read and checked here, so that every problem is one line
/// naming the field and the file. Relative paths are relative to the
/// gateway's working directory, like `manage.tls`.
fn parse_ca_cert(o: &Obj<'_>, env: &dyn Fn(&str) -> Option<String>, url: &str) -> Result<Option<CaCert>, Bad> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;
    let Some(raw) = o.str("ca_cert")? else {
        return Ok(None);
    };
    let path = PathBuf::from(expand(raw, "ca_cert", env)?);
    if path.as_os_str().is_empty() {
        return Err(o.bad("ca_cert", "must not be empty (omit it to use the built-in roots)"));
    }
    // An inert knob is an error: plain HTTP has no certificates to check.
    if !url.get(..8).is_some_and(|s| s.eq_ignore_ascii_case("https://")) {
        return Err(o.bad("ca_cert", "only used with an https:// url"));
    }
    let shown = path.display();
    let bytes = std::fs::read(&path).map_err(|e| o.bad("ca_cert", format!("cannot read {shown}: {e}")))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| o.bad("ca_cert", format!("{shown}: not a valid PEM file: {e}")))?;
    if certs.is_empty() {
        return Err(o.bad("ca_cert", format!("{shown}: no PEM certificate found (expected BEGIN CERTIFICATE)")));
    }
    let mut roots = rustls::RootCertStore::empty();
    for (i, cert) in certs.iter().enumerate() {
        roots
            .add(cert.clone())
            .map_err(|e| o.bad("ca_cert", format!("{shown}: certificate {} cannot be a root: {e}", i + 1)))?;
    }
    Ok(Some(CaCert { path, certs }))
}

/// Expands `${NAME}` from `env`; an unset variable is an error naming the
/// field. Text that is not a well-formed reference stays as written.
fn expand(s: &str, field: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, Bad> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        match after.find('}') {
            Some(j) if is_var_name(&after[..j]) => {
                let var = &after[..j];
                match env(var) {
                    Some(v) => {
                        remember_expanded(var, &v);
                        out.push_str(&v);
                    }
                    None => return Err(Bad::new(field, format!("environment variable ${{{var}}} is not set"))),
                }
                rest = &after[j + 1..];
            }
            _ => {
                out.push_str("${");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::ServerArgs;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOME" => Some("/home/me".into()),
            "TOKEN" => Some("s3cret".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn parse(text: &str) -> Result<Config, ConfigError> {
        parse_with_env(text, Some(Path::new("c.json")), &env)
    }

    fn parse_ok(text: &str) -> Config {
        parse(text).unwrap()
    }

    fn err_line(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    /// The transport error of the only backend in `{"mcpServers":{"b": BACKEND}}`.
    fn backend_err(backend: &str) -> String {
        let c = parse_ok(&format!(r#"{{"mcpServers": {{"b": {backend}}}}}"#));
        c.backends[0].transport.clone().unwrap_err()
    }

    fn backend(backend: &str) -> BackendConfig {
        let c = parse_ok(&format!(r#"{{"mcpServers": {{"b": {backend}}}}}"#));
        c.backends.into_iter().next().unwrap()
    }

    fn stdio(cmd: &str, args: &[&str]) -> Command {
        Command {
            command: cmd.into(),
            args: args.iter().map(|s| s.to_string()).collect(),
            env: BTreeMap::new(),
            cwd: None,
            withheld_env: Vec::new(),
        }
    }

    // ---- shapes

    #[test]
    fn current_shape_with_defaults() {
        let c = parse_ok(r#"{"mcpServers": {"a": {"command": "x"}}}"#);
        assert_eq!(c.path.as_deref(), Some(Path::new("c.json")));
        assert_eq!(c.server, ServerConfig::default());
        assert_eq!(c.manage, ManageConfig::default());
        assert_eq!(c.server.listen, "127.0.0.1:9000");
        assert_eq!(c.server.name, "mcp-sentinel");
        assert_eq!(c.server.max_body_bytes, 4_194_304);
        assert_eq!(c.server.max_sessions, 256);
        assert_eq!(c.server.backoff_initial, Duration::from_millis(1000));
        assert_eq!(c.server.backoff_max, Duration::from_millis(30_000));
        assert_eq!(c.manage.listen, "127.0.0.1:9001");
        assert_eq!(c.manage.event_buffer, 1000);
        let b = &c.backends[0];
        assert_eq!(b.name, "a");
        assert!(b.enabled);
        assert_eq!(b.timeout, Duration::from_secs(60));
        assert_eq!(b.ping_interval, Some(Duration::from_secs(30)));
        assert_eq!(b.prefix, None);
        assert_eq!(b.transport, Ok(Transport::Stdio(stdio("x", &[]))));
    }

    #[test]
    fn legacy_flat_shape() {
        let c = parse_ok(
            r#"{"fs": {"type": "stdio", "command": "npx", "args": ["-y", "fs"]},
                "w": {"type": "sse", "url": "http://localhost:8080/sse"}}"#,
        );
        assert_eq!(c.backends.len(), 2);
        assert_eq!(c.backends[0].transport, Ok(Transport::Stdio(stdio("npx", &["-y", "fs"]))));
        assert_eq!(
            c.backends[1].transport,
            Ok(Transport::Sse { url: "http://localhost:8080/sse".into(), headers: vec![], local: None, ca_cert: None })
        );
        assert_eq!(c.server, ServerConfig::default());
    }

    #[test]
    fn backends_keep_file_order() {
        let c = parse_ok(
            r#"{"mcpServers": {"zeta": {"command": "z"}, "alpha": {"command": "a"}, "mid": {"command": "m"}}}"#,
        );
        let names: Vec<_> = c.backends.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["zeta", "alpha", "mid"]);
    }

    #[test]
    fn current_shape_without_mcp_servers_has_no_backends() {
        let c = parse_ok(r#"{"server": {"name": "x"}}"#);
        assert!(c.backends.is_empty());
        assert_eq!(c.server.name, "x");
        assert!(parse_ok(r#"{"mcpServers": null}"#).backends.is_empty());
    }

    // ---- inference and transports

    #[test]
    fn type_inference() {
        assert_eq!(backend(r#"{"command": "x"}"#).transport.unwrap().kind(), "stdio");
        assert_eq!(backend(r#"{"url": "https://h/mcp"}"#).transport.unwrap().kind(), "streamable-http");
        assert_eq!(backend(r#"{"type": "http", "url": "https://h/mcp"}"#).transport.unwrap().kind(), "streamable-http");
    }

    #[test]
    fn stdio_full() {
        let b = backend(
            r#"{"command": "uvx", "args": ["a", "${HOME}/x"], "env": {"K": "${TOKEN}", "E": ""}, "cwd": "${HOME}"}"#,
        );
        let Ok(Transport::Stdio(cmd)) = b.transport else { panic!("{:?}", b.transport) };
        assert_eq!(cmd.command, "uvx");
        assert_eq!(cmd.args, ["a", "/home/me/x"]);
        assert_eq!(cmd.env.get("K").map(String::as_str), Some("s3cret"));
        assert_eq!(cmd.env.get("E").map(String::as_str), Some(""));
        assert_eq!(cmd.cwd, Some(PathBuf::from("/home/me")));
    }

    #[test]
    fn sse_with_local_process_and_headers() {
        let b = backend(
            r#"{"type": "sse", "url": "http://127.0.0.1:1/sse", "headers": {"Authorization": "Bearer ${TOKEN}", "X-A": "1"},
                "command": "node", "args": ["srv.js"]}"#,
        );
        assert_eq!(
            b.transport,
            Ok(Transport::Sse {
                url: "http://127.0.0.1:1/sse".into(),
                headers: vec![("Authorization".into(), "Bearer s3cret".into()), ("X-A".into(), "1".into())],
                local: Some(stdio("node", &["srv.js"])),
                ca_cert: None,
            })
        );
    }

    #[test]
    fn streamable_http_with_headers() {
        let b = backend(r#"{"type": "streamable-http", "url": "https://h/mcp?x=${TOKEN}", "headers": {"X": "y"}}"#);
        assert_eq!(
            b.transport,
            Ok(Transport::StreamableHttp {
                url: "https://h/mcp?x=s3cret".into(),
                headers: vec![("X".into(), "y".into())],
                ca_cert: None,
            })
        );
    }

    /// `ca_cert` of the TLS fixtures, read into the config.
    #[test]
    fn ca_cert_is_read_and_checked() {
        let fixture = format!("{}/tests/fixtures/tls/ca.pem", env!("CARGO_MANIFEST_DIR"));
        let b = backend(&format!(r#"{{"url": "https://127.0.0.1:1/mcp", "ca_cert": "{fixture}"}}"#));
        let Ok(Transport::StreamableHttp { ca_cert: Some(ca), .. }) = b.transport else { panic!("{:?}", b.transport) };
        assert_eq!(ca.path, PathBuf::from(&fixture));
        assert_eq!(ca.certs.len(), 1);
        let b = backend(&format!(r#"{{"type": "sse", "url": "HTTPS://h/sse", "ca_cert": "{fixture}"}}"#));
        assert!(matches!(b.transport, Ok(Transport::Sse { ca_cert: Some(_), .. })), "{:?}", b.transport);

        let dir = std::env::temp_dir().join(format!("mcp-sentinel-config-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = |name: &str, text: &str| {
            let p = dir.join(name);
            std::fs::write(&p, text).unwrap();
            p.display().to_string()
        };
        let key = format!("{}/tests/fixtures/tls/key.pem", env!("CARGO_MANIFEST_DIR"));
        let bad_pem = file("bad.pem", "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n");
        let not_der = file("notder.pem", "-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n");
        let https = |ca: &str| format!(r#"{{"url": "https://h/mcp", "ca_cert": "{ca}"}}"#);
        let cases: Vec<(String, String)> = vec![
            (
                https("${HOME}/ca.pem"),
                r#"backend "b": field "ca_cert": cannot read /home/me/ca.pem: No such file or directory (os error 2)"#
                    .into(),
            ),
            (https("${NOPE}"), r#"backend "b": field "ca_cert": environment variable ${NOPE} is not set"#.into()),
            (
                https(""),
                r#"backend "b": field "ca_cert": must not be empty (omit it to use the built-in roots)"#.into(),
            ),
            (
                format!(r#"{{"url": "http://h/mcp", "ca_cert": "{fixture}"}}"#),
                r#"backend "b": field "ca_cert": only used with an https:// url"#.into(),
            ),
            (
                format!(r#"{{"type": "stdio", "command": "x", "ca_cert": "{fixture}"}}"#),
                r#"backend "b": field "ca_cert": not used by a stdio backend"#.into(),
            ),
            (
                r#"{"url": "https://h/mcp", "ca_cert": 1}"#.into(),
                r#"backend "b": field "ca_cert": expected a string, found a number"#.into(),
            ),
            (
                https(&key),
                format!(
                    r#"backend "b": field "ca_cert": {key}: no PEM certificate found (expected BEGIN CERTIFICATE)"#
                ),
            ),
            (https(&bad_pem), format!(r#"backend "b": field "ca_cert": {bad_pem}: not a valid PEM file: "#)),
            (https(&not_der), format!(r#"backend "b": field "ca_cert": {not_der}: certificate 1 cannot be a root: "#)),
        ];
        for (json, want) in cases {
            let got = backend_err(&json);
            assert!(got.starts_with(&want), "for {json}:\n got: {got}\nwant: {want}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn common_fields() {
        let b = backend(
            r#"{"command": "x", "enabled": false, "timeout_s": 2.5, "ping_interval_s": 0.5, "prefix": "gh_1-a",
                "tools": {"allow": ["get_*"], "deny": ["get_secret"]}}"#,
        );
        assert!(!b.enabled);
        assert_eq!(b.timeout, Duration::from_millis(2500));
        assert_eq!(b.ping_interval, Some(Duration::from_millis(500)));
        assert_eq!(b.prefix.as_deref(), Some("gh_1-a"));
        assert_eq!(backend(r#"{"command": "x", "ping_interval_s": 0}"#).ping_interval, None, "0 turns pings off");
        assert_eq!(b.tools.allow, ["get_*"]);
        assert_eq!(b.tools.deny, ["get_secret"]);
        assert!(b.transport.is_ok());
    }

    // ---- invalid backends: message text pinned

    #[test]
    fn invalid_backend_messages() {
        let cases: &[(&str, &str)] = &[
            (r#"{"type": "stdio", "args": ["x"]}"#, r#"backend "b": field "command": required for a stdio backend"#),
            (
                r#"{"args": ["x"]}"#,
                r#"backend "b": field "command": a backend needs "command" (stdio) or "url" (sse, streamable-http)"#,
            ),
            (r#"{"type": "sse"}"#, r#"backend "b": field "url": required for an sse backend"#),
            (r#"{"type": "http"}"#, r#"backend "b": field "url": required for a streamable-http backend"#),
            (
                r#"{"type": "grpc", "url": "http://h"}"#,
                r#"backend "b": field "type": unknown type "grpc" (expected "stdio", "sse" or "streamable-http")"#,
            ),
            (r#"{"type": 3}"#, r#"backend "b": field "type": expected a string, found a number"#),
            (r#"{"command": ""}"#, r#"backend "b": field "command": must not be empty"#),
            (
                r#"{"command": "x", "args": ["a", 1]}"#,
                r#"backend "b": field "args[1]": expected a string, found a number"#,
            ),
            (
                r#"{"command": "x", "args": "a b"}"#,
                r#"backend "b": field "args": expected an array of strings, found a string"#,
            ),
            (
                r#"{"command": "x", "env": {"A": 1}}"#,
                r#"backend "b": field "env.A": expected a string, found a number"#,
            ),
            (r#"{"command": "x", "cwd": ""}"#, r#"backend "b": field "cwd": must not be empty"#),
            (
                r#"{"command": "x", "url": "http://h"}"#,
                r#"backend "b": field "command": not used by a streamable-http backend (set "type": "sse" to start a local server first)"#,
            ),
            (
                r#"{"type": "stdio", "command": "x", "headers": {}}"#,
                r#"backend "b": field "headers": not used by a stdio backend"#,
            ),
            (
                r#"{"type": "sse", "url": "http://h", "args": ["x"]}"#,
                r#"backend "b": field "command": required when "args" is set"#,
            ),
            (r#"{"url": "ftp://h/x"}"#, r#"backend "b": field "url": expected an http:// or https:// URL with a host"#),
            (
                r#"{"url": "https:///x"}"#,
                r#"backend "b": field "url": expected an http:// or https:// URL with a host"#,
            ),
            (
                r#"{"url": "http://h", "headers": {"Bad Name": "v"}}"#,
                r#"backend "b": field "headers.Bad Name": not a valid HTTP header name"#,
            ),
            (
                r#"{"url": "http://h", "headers": {"X": "a\r\nY: b"}}"#,
                r#"backend "b": field "headers.X": the value must not contain CR, LF or NUL"#,
            ),
            (
                r#"{"command": "x", "enabled": "yes"}"#,
                r#"backend "b": field "enabled": expected true or false, found a string"#,
            ),
            (
                r#"{"command": "x", "timeout_s": 0}"#,
                r#"backend "b": field "timeout_s": expected a positive number of seconds up to 86400, found 0"#,
            ),
            (
                r#"{"command": "x", "timeout_s": "60"}"#,
                r#"backend "b": field "timeout_s": expected a positive number of seconds up to 86400, found "60""#,
            ),
            (
                r#"{"command": "x", "ping_interval_s": -1}"#,
                r#"backend "b": field "ping_interval_s": expected a number of seconds from 0 (off) to 86400, found -1"#,
            ),
            (
                r#"{"command": "x", "ping_interval_s": 86401}"#,
                r#"backend "b": field "ping_interval_s": expected a number of seconds from 0 (off) to 86400, found 86401"#,
            ),
            (
                r#"{"command": "x", "ping_interval_s": true}"#,
                r#"backend "b": field "ping_interval_s": expected a number of seconds from 0 (off) to 86400, found true"#,
            ),
            (
                r#"{"command": "x", "prefix": "a b"}"#,
                r#"backend "b": field "prefix": must be 1 to 64 characters from A-Z, a-z, 0-9, '_', '-'"#,
            ),
            (
                r#"{"command": "x", "prefix": "a.b"}"#,
                r#"backend "b": field "prefix": must be 1 to 64 characters from A-Z, a-z, 0-9, '_', '-'"#,
            ),
            (
                r#"{"command": "x", "tools": {"allow": "x"}}"#,
                r#"backend "b": field "tools.allow": expected an array of strings, found a string"#,
            ),
            (r#"{"command": "x", "tools": []}"#, r#"backend "b": field "tools": expected an object, found an array"#),
            (r#"{"command": "${NOPE}"}"#, r#"backend "b": field "command": environment variable ${NOPE} is not set"#),
            (
                r#"{"command": "x", "args": ["${NOPE}"]}"#,
                r#"backend "b": field "args[0]": environment variable ${NOPE} is not set"#,
            ),
            (
                r#"{"command": "x", "env": {"K": "${NOPE}"}}"#,
                r#"backend "b": field "env.K": environment variable ${NOPE} is not set"#,
            ),
            (
                r#"{"command": "x", "cwd": "${NOPE}/x"}"#,
                r#"backend "b": field "cwd": environment variable ${NOPE} is not set"#,
            ),
            (r#"{"url": "https://h/${NOPE}"}"#, r#"backend "b": field "url": environment variable ${NOPE} is not set"#),
            (
                r#"{"url": "https://h", "headers": {"Authorization": "Bearer ${NOPE}"}}"#,
                r#"backend "b": field "headers.Authorization": environment variable ${NOPE} is not set"#,
            ),
            ("[1]", r#"backend "b": expected an object, found an array"#),
            ("\"npx\"", r#"backend "b": expected an object, found a string"#),
        ];
        for (json, want) in cases {
            assert_eq!(&backend_err(json), want, "for {json}");
        }
    }

    #[test]
    fn invalid_backend_keeps_readable_fields() {
        let b = backend(r#"{"type": "stdio", "enabled": false, "timeout_s": 5, "prefix": "p"}"#);
        assert_eq!(b.name, "b");
        assert!(!b.enabled);
        assert_eq!(b.timeout, Duration::from_secs(5));
        assert_eq!(b.prefix.as_deref(), Some("p"));
        assert!(b.transport.is_err());
        // A bad common field still fails the backend, after a good transport.
        let b = backend(r#"{"command": "x", "timeout_s": -1, "prefix": "ok"}"#);
        assert_eq!(b.prefix.as_deref(), Some("ok"));
        assert_eq!(b.timeout, DEFAULT_TIMEOUT);
        assert!(b.transport.unwrap_err().contains("timeout_s"));
    }

    #[test]
    fn invalid_backend_names() {
        let c = parse_ok(
            r#"{"mcpServers": {"": {"command": "x"}, "a b": {"command": "x"}, "ok.name-1_2": {"command": "x"}}}"#,
        );
        assert_eq!(
            c.backends[0].transport,
            Err(r#"backend "": the name must be 1 to 64 characters from A-Z, a-z, 0-9, '_', '.', '-'"#.into())
        );
        assert!(c.backends[1].transport.is_err());
        assert!(c.backends[2].transport.is_ok());
        let long = "n".repeat(65);
        let c = parse_ok(&format!(r#"{{"{long}": {{"command": "x"}}}}"#));
        assert!(c.backends[0].transport.is_err());
    }

    #[test]
    fn one_bad_backend_does_not_fail_the_others() {
        let c = parse_ok(r#"{"mcpServers": {"bad": {"type": "stdio"}, "good": {"command": "x"}, "worse": 7}}"#);
        assert_eq!(c.backends.len(), 3);
        assert!(c.backends[0].transport.is_err());
        assert!(c.backends[1].transport.is_ok());
        assert_eq!(c.backends[2].transport, Err(r#"backend "worse": expected an object, found a number"#.into()));
    }

    // ---- ${VAR}

    #[test]
    fn expansion_rules() {
        let e = |s: &str| expand(s, "f", &env).map_err(|b| b.message);
        assert_eq!(e("${HOME}/a/${TOKEN}"), Ok("/home/me/a/s3cret".into()));
        assert_eq!(e("${EMPTY}x"), Ok("x".into()));
        assert_eq!(e("$$ $HOME ${ ${1A} ${a-b} ${HOME"), Ok("$$ $HOME ${ ${1A} ${a-b} ${HOME".into()));
        assert_eq!(e("$${HOME}"), Ok("$/home/me".into()));
        // Not recursive: a value containing ${..} stays as it came.
        let env2 = |n: &str| (n == "A").then(|| "${B}".to_string());
        assert_eq!(expand("${A}", "f", &env2).map_err(|b| b.message), Ok("${B}".into()));
        assert_eq!(e("a${NOPE}"), Err("environment variable ${NOPE} is not set".into()));
    }

    #[test]
    fn expansion_does_not_touch_other_fields() {
        let b = backend(r#"{"command": "x", "prefix": "p", "tools": {"allow": ["${NOPE}"]}}"#);
        assert_eq!(b.tools.allow, ["${NOPE}"]);
        assert!(b.transport.is_ok());
    }

    // ---- whole-file errors

    #[test]
    fn invalid_files() {
        let cases: &[(&str, &str)] = &[
            ("", "c.json: not valid JSON: EOF while parsing a value at line 1 column 0"),
            ("{\"a\": }", "c.json: not valid JSON: expected value at line 1 column 7"),
            ("[]", "c.json: expected a JSON object at the top level, found an array"),
            ("\"x\"", "c.json: expected a JSON object at the top level, found a string"),
            ("null", "c.json: expected a JSON object at the top level, found null"),
            (r#"{"mcpServers": []}"#, r#"c.json: field "mcpServers": expected an object of backends, found an array"#),
            (r#"{"server": 1}"#, r#"c.json: field "server": expected an object, found a number"#),
            (r#"{"manage": "x"}"#, r#"c.json: field "manage": expected an object, found a string"#),
            (
                r#"{"server": {"listen": "9000"}}"#,
                r#"c.json: field "server.listen": expected an IP address and port such as "127.0.0.1:9000", found "9000""#,
            ),
            (
                r#"{"server": {"listen": "localhost:9000"}}"#,
                r#"c.json: field "server.listen": expected an IP address and port such as "127.0.0.1:9000", found "localhost:9000""#,
            ),
            (r#"{"server": {"name": " "}}"#, r#"c.json: field "server.name": must not be empty"#),
            (
                r#"{"server": {"max_body_bytes": 0}}"#,
                r#"c.json: field "server.max_body_bytes": expected a positive integer, found 0"#,
            ),
            (
                r#"{"server": {"max_body_bytes": 1.5}}"#,
                r#"c.json: field "server.max_body_bytes": expected a positive integer, found 1.5"#,
            ),
            (
                r#"{"server": {"max_sessions": -1}}"#,
                r#"c.json: field "server.max_sessions": expected a positive integer, found -1"#,
            ),
            (
                r#"{"server": {"backoff_initial_ms": 9}}"#,
                r#"c.json: field "server.backoff_initial_ms": expected an integer number of milliseconds from 10 to 86400000, found 9"#,
            ),
            (
                r#"{"server": {"backoff_initial_ms": 1.5}}"#,
                r#"c.json: field "server.backoff_initial_ms": expected an integer number of milliseconds from 10 to 86400000, found 1.5"#,
            ),
            (
                r#"{"server": {"backoff_max_ms": "30s"}}"#,
                r#"c.json: field "server.backoff_max_ms": expected an integer number of milliseconds from 10 to 86400000, found "30s""#,
            ),
            (
                r#"{"server": {"backoff_max_ms": 86400001}}"#,
                r#"c.json: field "server.backoff_max_ms": expected an integer number of milliseconds from 10 to 86400000, found 86400001"#,
            ),
            (
                r#"{"server": {"backoff_initial_ms": 2000, "backoff_max_ms": 1000}}"#,
                r#"c.json: field "server.backoff_max_ms": backoff_max_ms (1000) is less than backoff_initial_ms (2000); the cap must be at least the first wait"#,
            ),
            (
                r#"{"server": {"backoff_initial_ms": 60000}}"#,
                r#"c.json: field "server.backoff_initial_ms": backoff_max_ms (30000) is less than backoff_initial_ms (60000); the cap must be at least the first wait"#,
            ),
            (
                r#"{"server": {"allowed_origins": ["https://a.com/"]}}"#,
                r#"c.json: field "server.allowed_origins[0]": expected an origin such as "https://app.example.com" (scheme, host, optional port, no path), found "https://a.com/""#,
            ),
            (
                r#"{"server": {"allowed_origins": "https://a.com"}}"#,
                r#"c.json: field "server.allowed_origins": expected an array of strings, found a string"#,
            ),
            (
                r#"{"manage": {"listen": "x"}}"#,
                r#"c.json: field "manage.listen": expected an IP address and port such as "127.0.0.1:9000", found "x""#,
            ),
            (
                r#"{"manage": {"listen": "0.0.0.0:9001"}}"#,
                r#"c.json: field "manage.listen": "0.0.0.0:9001" is not a loopback address; set manage.tls, or manage.allow_insecure_remote to true, to serve the management API remotely"#,
            ),
            (
                r#"{"manage": {"tokens": {}}}"#,
                r#"c.json: field "manage.tokens": expected an array of token objects, found an object"#,
            ),
            (
                r#"{"manage": {"tokens": ["abc"]}}"#,
                r#"c.json: field "manage.tokens[0]": expected an object, found a string"#,
            ),
            (
                r#"{"manage": {"tokens": [{"scopes": ["read"], "token_env": "T"}]}}"#,
                r#"c.json: field "manage.tokens[0].name": required (it names the token in the audit log)"#,
            ),
            (
                r#"{"manage": {"tokens": [{"name": "a", "token_env": "T"}]}}"#,
                r#"c.json: field "manage.tokens[0].scopes": required: ["read"] or ["read", "admin"]"#,
            ),
            (
                r#"{"manage": {"tokens": [{"name": "a", "scopes": ["write"], "token_env": "T"}]}}"#,
                r#"c.json: field "manage.tokens[0].scopes": expected ["read"] or ["read", "admin"], found ["write"]"#,
            ),
            (
                r#"{"manage": {"tokens": [{"name": "a", "scopes": [], "token_env": "T"}]}}"#,
                r#"c.json: field "manage.tokens[0].scopes": expected ["read"] or ["read", "admin"], found []"#,
            ),
            (
                r#"{"manage": {"tokens": [{"name": "a", "scopes": ["read"]}]}}"#,
                r#"c.json: field "manage.tokens[0]": needs one of token_env, token_file or sha256"#,
            ),
            (
                r#"{"manage": {"tokens": [{"name": "a", "scopes": ["read"], "token_env": "T", "sha256": "x"}]}}"#,
                r#"c.json: field "manage.tokens[0]": has token_env and sha256; give exactly one token source"#,
            ),
            (
                r#"{"manage": {"tokens": [{"name": "a", "scopes": ["read"], "sha256": "abc"}]}}"#,
                r#"c.json: field "manage.tokens[0].sha256": expected 64 hexadecimal characters (the token's SHA-256)"#,
            ),
            (
                r#"{"manage": {"tokens": [{"name": "a", "scopes": ["read"], "token_env": "1X"}]}}"#,
                r#"c.json: field "manage.tokens[0].token_env": expected an environment variable name"#,
            ),
            (
                r#"{"manage": {"tokens": [{"name": "a", "scopes": ["read"], "token_env": "A"}, {"name": "a", "scopes": ["read"], "token_env": "B"}]}}"#,
                r#"c.json: field "manage.tokens[1].name": duplicate token name "a""#,
            ),
            (
                r#"{"manage": {"tls": {"key": "k.pem"}}}"#,
                r#"c.json: field "manage.tls.cert": required when manage.tls is set (path of a PEM file)"#,
            ),
            (
                r#"{"manage": {"tls": {"cert": "c.pem"}}}"#,
                r#"c.json: field "manage.tls.key": required when manage.tls is set (path of a PEM file)"#,
            ),
            (
                r#"{"manage": {"public_health": "yes"}}"#,
                r#"c.json: field "manage.public_health": expected true or false, found a string"#,
            ),
            (
                r#"{"manage": {"audit_log": ""}}"#,
                r#"c.json: field "manage.audit_log": must not be empty (omit it to disable the audit log)"#,
            ),
            (
                r#"{"manage": {"event_buffer": 9}}"#,
                r#"c.json: field "manage.event_buffer": expected an integer from 10 to 100000, found 9"#,
            ),
            (
                r#"{"manage": {"event_buffer": 100001}}"#,
                r#"c.json: field "manage.event_buffer": expected an integer from 10 to 100000, found 100001"#,
            ),
            (
                r#"{"server": {"allowed_hosts": ["gw.example.com/x"]}}"#,
                r#"c.json: field "server.allowed_hosts[0]": expected a host name such as "gw.example.com" (optionally with :port), found "gw.example.com/x""#,
            ),
            (
                r#"{"server": {"max_connections": 0}}"#,
                r#"c.json: field "server.max_connections": expected a positive integer, found 0"#,
            ),
            (
                r#"{"server": {"max_outbox_bytes": "8M"}}"#,
                r#"c.json: field "server.max_outbox_bytes": expected a positive integer, found "8M""#,
            ),
        ];
        for (json, want) in cases {
            assert_eq!(&err_line(json), want, "for {json}");
        }
    }

    #[test]
    fn server_bounds_and_hosts() {
        let c = parse_ok(
            r#"{"server": {"allowed_hosts": ["GW.example.com:443", "*"], "max_connections": 10,
                "max_connections_per_ip": 2, "max_outbox_bytes": 1024, "max_inflight_per_session": 3}}"#,
        );
        assert_eq!(c.server.allowed_hosts, ["gw.example.com:443", "*"]);
        let s = &c.server;
        assert_eq!(
            (s.max_connections, s.max_connections_per_ip, s.max_outbox_bytes, s.max_inflight_per_session),
            (10, 2, 1024, 3)
        );
        let d = parse_ok("{}").server;
        assert_eq!(
            (d.max_connections, d.max_connections_per_ip, d.max_outbox_bytes, d.max_inflight_per_session),
            (4096, 256, 8 << 20, 64)
        );
    }

    #[test]
    fn server_and_manage_values() {
        let c = parse_ok(
            r#"{"server": {"listen": "[::1]:0", "name": "gw", "allowed_origins": ["HTTPS://App.Example.com:8443"], "max_body_bytes": 10, "max_sessions": 3},
                "manage": {"listen": "0.0.0.0:9001", "allow_insecure_remote": true, "allow_shutdown": true, "public_health": true,
                           "audit_log": "/var/log/a.jsonl", "event_buffer": 10,
                           "tokens": [{"name": "a", "scopes": ["admin"], "token_env": "A"},
                                      {"name": "r", "scopes": ["read"], "token_file": "/t"},
                                      {"name": "h", "scopes": ["admin", "read"], "sha256": "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08"}]}}"#,
        );
        assert_eq!(c.server.listen, "[::1]:0");
        assert_eq!(c.server.name, "gw");
        assert_eq!(c.server.allowed_origins, ["https://app.example.com:8443"]);
        assert_eq!((c.server.max_body_bytes, c.server.max_sessions), (10, 3));
        let m = &c.manage;
        assert!(m.allow_insecure_remote && m.allow_shutdown && m.public_health);
        assert_eq!(m.audit_log.as_deref(), Some(Path::new("/var/log/a.jsonl")));
        assert_eq!(m.event_buffer, 10);
        assert_eq!(
            m.tokens,
            [
                TokenConfig { name: "a".into(), admin: true, source: TokenSource::Env("A".into()) },
                TokenConfig { name: "r".into(), admin: false, source: TokenSource::File("/t".into()) },
                TokenConfig {
                    name: "h".into(),
                    admin: true,
                    source: TokenSource::Sha256(
                        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into()
                    )
                },
            ]
        );
        let c = parse_ok(r#"{"server": {"backoff_initial_ms": 10, "backoff_max_ms": 10}}"#);
        assert_eq!(
            (c.server.backoff_initial, c.server.backoff_max),
            (Duration::from_millis(10), Duration::from_millis(10))
        );
        let c = parse_ok(r#"{"server": {"backoff_initial_ms": 250, "backoff_max_ms": 86400000}}"#);
        assert_eq!(
            (c.server.backoff_initial, c.server.backoff_max),
            (Duration::from_millis(250), Duration::from_secs(86_400))
        );
        let c = parse_ok(r#"{"manage": {"listen": "0.0.0.0:9001", "tls": {"cert": "c.pem", "key": "k.pem"}}}"#);
        assert_eq!(c.manage.tls, Some(TlsConfig { cert: "c.pem".into(), key: "k.pem".into() }));
    }

    #[test]
    fn unknown_keys_only_warn() {
        let c = parse_ok(
            r#"{"mcpServers": {"a": {"command": "x", "autoApprove": []}}, "globalShortcut": "x",
                "server": {"transport": "sse"}, "manage": {"enabled": true, "tokens": [{"name": "a", "scopes": ["read"], "token_env": "A", "x": 1}]}}"#,
        );
        assert!(c.backends[0].transport.is_ok());
    }

    // ---- lookup

    #[test]
    fn lookup_order() {
        let dir = std::env::temp_dir().join(format!("mcp-sentinel-locate-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let new = dir.join("mcp-sentinel.json");
        let old = dir.join("config.json");
        let other = dir.join("other.json");
        for p in [&new, &old, &other] {
            std::fs::write(p, "{}").unwrap();
        }
        // --config wins over everything.
        assert_eq!(locate_in(Some(&other), Some(&new), &dir), Ok(other.clone()));
        // Then the variable.
        assert_eq!(locate_in(None, Some(&other), &dir), Ok(other.clone()));
        // An empty variable counts as unset.
        assert_eq!(locate_in(None, Some(Path::new("")), &dir), Ok(new.clone()));
        // Then ./mcp-sentinel.json, then ./config.json.
        assert_eq!(locate_in(None, None, &dir), Ok(new.clone()));
        std::fs::remove_file(&new).unwrap();
        assert_eq!(locate_in(None, None, &dir), Ok(old.clone()));
        std::fs::remove_file(&old).unwrap();
        let e = locate_in(None, None, &dir).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "no configuration file found (tried {}, {}); pass --config PATH or set $MCP_SENTINEL_CONFIG",
                new.display(),
                old.display()
            )
        );
        // An explicit path must exist.
        let missing = dir.join("missing.json");
        assert_eq!(
            locate_in(Some(&missing), None, &dir).unwrap_err().to_string(),
            format!("{}: no such file (given by --config)", missing.display())
        );
        assert_eq!(
            locate_in(None, Some(&missing), &dir).unwrap_err().to_string(),
            format!("{}: no such file (given by $MCP_SENTINEL_CONFIG)", missing.display())
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn load_reports_unreadable_file() {
        let e = load(Path::new("/nonexistent/mcp-sentinel.json")).unwrap_err();
        assert_eq!(e.path.as_deref(), Some(Path::new("/nonexistent/mcp-sentinel.json")));
        assert!(e.message.starts_with("cannot read the file: "), "{e}");
    }

    // ---- overrides

    #[test]
    fn overrides() {
        let mut c = Config::default_with_backends(vec![]);
        let args = ServerArgs {
            listen: Some("0.0.0.0:8000".into()),
            manage_listen: Some("127.0.0.1:0".into()),
            ..ServerArgs::default()
        };
        c.apply_overrides(&args).unwrap();
        assert_eq!(c.server.listen, "0.0.0.0:8000");
        assert_eq!(c.manage.listen, "127.0.0.1:0");
        // Nothing given: nothing changes.
        let before = c.clone();
        c.apply_overrides(&ServerArgs::default()).unwrap();
        assert_eq!(c, before);
    }

    #[test]
    fn override_errors_name_the_flag() {
        let mut c = Config::default_with_backends(vec![]);
        let args = ServerArgs { listen: Some("nope".into()), ..ServerArgs::default() };
        assert_eq!(
            c.apply_overrides(&args).unwrap_err().to_string(),
            r#"field "--listen": expected an IP address and port such as "127.0.0.1:9000", found "nope""#
        );
        let args = ServerArgs { manage_listen: Some("10.0.0.1:9001".into()), ..ServerArgs::default() };
        let e = c.apply_overrides(&args).unwrap_err();
        assert_eq!(e.field, "--manage-listen");
        assert!(e.message.contains("not a loopback address"), "{e}");
    }

    // ---- tool filters

    #[test]
    fn glob_and_filter() {
        assert!(glob_match("*", ""));
        assert!(glob_match("get_*", "get_issue"));
        assert!(glob_match("get_*", "get_"));
        assert!(!glob_match("get_*", "list_issues"));
        assert!(glob_match("?at", "cat"));
        assert!(!glob_match("?at", "at"));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(!glob_match("a*b*c", "aXXbYY"));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("exact", "exactly"));
        assert!(glob_match("é*", "éa"));

        let all = ToolFilter::default();
        assert!(all.allows("anything"));
        let f = ToolFilter { allow: vec!["get_*".into(), "list_*".into()], deny: vec!["get_secret*".into()] };
        assert!(f.allows("get_issue"));
        assert!(f.allows("list_x"));
        assert!(!f.allows("delete_x"));
        assert!(!f.allows("get_secret_key"));
        let deny_only = ToolFilter { allow: vec![], deny: vec!["rm".into()] };
        assert!(deny_only.allows("ls"));
        assert!(!deny_only.allows("rm"));
    }

    // ---- endpoint redaction

    #[test]
    fn endpoint_redaction() {
        let ep = |json: &str| backend(json).endpoint();
        assert_eq!(
            ep(r#"{"command": "uvx", "args": ["mcp-server-git", "--repository", "."], "env": {"K": "secret"}}"#),
            "uvx mcp-server-git --repository ."
        );
        assert_eq!(ep(r#"{"url": "https://user:pw@host/x"}"#), "https://user:***@host/x");
        assert_eq!(ep(r#"{"url": "https://ghp_abc@host"}"#), "https://***@host");
        assert_eq!(
            ep(r#"{"url": "https://host/mcp?api_key=k&x=1&Token=t&AUTH=a#frag"}"#),
            "https://host/mcp?api_key=***&x=1&Token=***&AUTH=***#frag"
        );
        assert_eq!(
            ep(r#"{"type": "sse", "url": "http://h/sse", "headers": {"Authorization": "Bearer zzz"}}"#),
            "http://h/sse"
        );
        assert_eq!(
            ep(r#"{"url": "http://h:8080/p?password=x&passwordless=1"}"#),
            "http://h:8080/p?password=***&passwordless=***"
        );
        assert_eq!(
            ep(r#"{"command": "npx", "args": ["mcp-remote", "https://u:p@h/mcp?token=t", "--header", "Authorization: Bearer x", "--api-key", "k", "--token=t", "--verbose"]}"#),
            "npx mcp-remote https://u:***@h/mcp?token=*** --header Authorization: *** --api-key *** --token=*** --verbose"
        );
        assert_eq!(ep(r#"{"type": "stdio"}"#), "");
        assert_eq!(redact_url("not a url"), "not a url");
        // Every argument form of a header, and secrets given as NAME=VALUE.
        assert_eq!(
            ep(r#"{"command": "npx", "args": ["--header=Authorization: Bearer x", "-HX-Api-Key: k", "-H", "Cookie: c", "X-Api-Key: k2", "-e", "GITHUB_TOKEN=t", "PLAIN=1"]}"#),
            "npx --header=Authorization: *** -HX-Api-Key: *** -H Cookie: *** X-Api-Key: *** -e GITHUB_TOKEN=*** PLAIN=1"
        );
    }

    #[test]
    fn the_shown_endpoint_keeps_var_references_instead_of_their_values() {
        let env = |k: &str| (k == "SECRET_PATH").then(|| "s3cr3t-v4lue".to_owned());
        let c = parse_with_env(
            r#"{"mcpServers": {
                "u": {"url": "https://api.example.com/${SECRET_PATH}/mcp"},
                "c": {"command": "tool", "args": ["--endpoint", "https://h/${SECRET_PATH}", "${SECRET_PATH}"]}}}"#,
            Some(Path::new("c.json")),
            &env,
        )
        .expect("parses");
        let shown: Vec<String> = c.backends.iter().map(BackendConfig::endpoint).collect();
        assert_eq!(
            shown,
            ["https://api.example.com/${SECRET_PATH}/mcp", "tool --endpoint https://h/${SECRET_PATH} ${SECRET_PATH}"]
        );
        assert!(format!("{:?}", c.backends).find("s3cr3t").is_none(), "Debug shows no secret: {:?}", c.backends);
        // The expanded values are what the backends get.
        match &c.backends[0].transport {
            Ok(Transport::StreamableHttp { url, .. }) => assert_eq!(url, "https://api.example.com/s3cr3t-v4lue/mcp"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn expanded_values_are_shown_as_their_references_in_errors() {
        let env = |k: &str| (k == "PATH_KEY").then(|| "pk-0123456789".to_owned());
        let c =
            parse_with_env(r#"{"mcpServers": {"u": {"url": "https://h/${PATH_KEY}/mcp"}}}"#, None, &env).expect("ok");
        let Ok(Transport::StreamableHttp { url, .. }) = &c.backends[0].transport else { panic!("transport") };
        assert_eq!(redact_url(url), "https://h/${PATH_KEY}/mcp");
        let err = format!("GET {url} failed: connection refused (host h, path /pk-0123456789/mcp)");
        assert_eq!(
            scrub_url(&err, url),
            "GET https://h/${PATH_KEY}/mcp failed: connection refused (host h, path /${PATH_KEY}/mcp)"
        );
    }

    #[test]
    fn debug_output_hides_header_and_env_values() {
        let c = parse_ok(
            r#"{"mcpServers": {"h": {"url": "https://h/mcp", "headers": {"Authorization": "Bearer HDRSECRET"}},
                "s": {"command": "x", "env": {"TOKEN": "ENVSECRET"}}}}"#,
        );
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("HDRSECRET") && !dbg.contains("ENVSECRET"), "{dbg}");
        assert!(dbg.contains("Authorization") && dbg.contains("TOKEN"), "names stay: {dbg}");
    }

    #[test]
    fn backends_do_not_inherit_the_gateways_token_variables() {
        let env = |k: &str| (k == "OPS_TOKEN").then(|| "t0ken".to_owned());
        let c = parse_with_env(
            r#"{"mcpServers": {"a": {"command": "x"}, "b": {"command": "y", "env": {"OPS_TOKEN": "${OPS_TOKEN}"}}},
                "manage": {"tokens": [{"name": "ops", "scopes": ["read"], "token_env": "OPS_TOKEN"}]}}"#,
            Some(Path::new("c.json")),
            &env,
        )
        .expect("parses");
        for b in &c.backends {
            match &b.transport {
                Ok(Transport::Stdio(cmd)) => assert_eq!(cmd.withheld_env, ["OPS_TOKEN"]),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn error_texts_are_scrubbed_of_url_secrets() {
        let url = "https://bob:hunter22@h.example:8443/mcp?api_key=SECRET123&x=1#token=FRAG9";
        let raw = format!("bad uri: {url}");
        assert_eq!(scrub_url(&raw, url), "bad uri: https://bob:***@h.example:8443/mcp?api_key=***&x=1#token=***");
        // Normalized or partial copies lose their secrets too.
        let partial = "GET /mcp?api_key=SECRET123&x=1 failed for bob:hunter22 (fragment token=FRAG9)";
        assert_eq!(scrub_url(partial, url), "GET /mcp?api_key=***&x=1 failed for bob:*** (fragment token=***)");
        let lone = "https://ghp_abcdef@h/x";
        assert_eq!(scrub_url("io: refused by ghp_abcdef@h", lone), "io: refused by ***@h");
        // Nothing secret: the text stays as it is; short values are left alone.
        assert_eq!(scrub_url("io: Connection refused", "http://127.0.0.1:1/mcp?x=1"), "io: Connection refused");
        assert_eq!(scrub_url("key=ab in text", "http://h/?key=ab"), "key=ab in text");
        assert_eq!(scrub_url("not a url here", "not a url"), "not a url here");
    }

    // ---- fixtures under tests/configs

    fn fixture_dir(kind: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/configs").join(kind)
    }

    fn fixtures(kind: &str) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(fixture_dir(kind))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        files
    }

    #[test]
    fn invalid_fixtures_pin_their_error_line() {
        // File name → the error line after "<path>: ".
        let expected: &[(&str, &str)] = &[
            ("array-top-level.json", "expected a JSON object at the top level, found an array"),
            (
                "backoff-max-below-initial.json",
                r#"field "server.backoff_max_ms": backoff_max_ms (2000) is less than backoff_initial_ms (5000); the cap must be at least the first wait"#,
            ),
            (
                "event-buffer-range.json",
                r#"field "manage.event_buffer": expected an integer from 10 to 100000, found 5"#,
            ),
            (
                "manage-remote-without-tls.json",
                r#"field "manage.listen": "0.0.0.0:9001" is not a loopback address; set manage.tls, or manage.allow_insecure_remote to true, to serve the management API remotely"#,
            ),
            ("max-body-zero.json", r#"field "server.max_body_bytes": expected a positive integer, found 0"#),
            ("mcpservers-not-object.json", r#"field "mcpServers": expected an object of backends, found an array"#),
            ("not-json.json", "not valid JSON: trailing comma at line 3 column 30"),
            (
                "server-listen-bad.json",
                r#"field "server.listen": expected an IP address and port such as "127.0.0.1:9000", found "localhost:9000""#,
            ),
            ("tls-missing-key.json", r#"field "manage.tls.key": required when manage.tls is set (path of a PEM file)"#),
            (
                "token-bad-scopes.json",
                r#"field "manage.tokens[0].scopes": expected ["read"] or ["read", "admin"], found ["write"]"#,
            ),
            (
                "token-two-sources.json",
                r#"field "manage.tokens[0]": has token_env and token_file; give exactly one token source"#,
            ),
        ];
        let files = fixtures("invalid");
        let names: Vec<String> = files.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
        let listed: Vec<&str> = expected.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, listed, "every invalid fixture needs a pinned line");
        for (path, (_, want)) in files.iter().zip(expected) {
            let got = load(path).unwrap_err().to_string();
            assert_eq!(got, format!("{}: {want}", path.display()));
        }
    }

    #[test]
    fn valid_fixtures_load() {
        let files = fixtures("valid");
        assert!(files.len() >= 3);
        for path in &files {
            let c = load(path).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(c.path.as_deref(), Some(path.as_path()));
            let name = path.file_name().unwrap().to_string_lossy();
            if name != "bad-backend-others-run.json" {
                for b in &c.backends {
                    assert!(b.transport.is_ok(), "{}: {:?}", path.display(), b.transport);
                }
            }
        }
        let c = load(&fixture_dir("valid").join("current-all-types.json")).unwrap();
        let kinds: Vec<_> = c.backends.iter().map(|b| b.transport.as_ref().unwrap().kind()).collect();
        assert_eq!(kinds, ["stdio", "sse", "streamable-http"]);
        assert_eq!(c.backends[0].ping_interval, Some(Duration::from_secs(15)));
        assert_eq!(
            (c.server.backoff_initial, c.server.backoff_max),
            (Duration::from_millis(500), Duration::from_secs(60))
        );
        let c = load(&fixture_dir("valid").join("bad-backend-others-run.json")).unwrap();
        assert_eq!(
            c.backends[0].transport,
            Err(r#"backend "broken": field "command": required for a stdio backend"#.into())
        );
        assert!(c.backends[1].transport.is_ok());
    }
}
