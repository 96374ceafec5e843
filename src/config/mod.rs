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
//!
//! The pieces, each in its own file:
//! - this file: the types, their defaults and the entry points callers use;
//! - `lookup.rs`: which file is read (`--config`, `$MCP_SENTINEL_CONFIG`,
//!   `./mcp-sentinel.json`, `./config.json`);
//! - `overrides.rs`: the command-line flags that win over the file;
//! - `parse/`: the JSON walker and the section parsers;
//! - `expand.rs`: `${VAR}` expansion and the registry of expanded values;
//! - `redact.rs`: what operators are shown of endpoints, URLs and errors;
//! - `error.rs`: [`ConfigError`] and the field-level failure it is built from.

mod error;
mod expand;
mod lookup;
mod overrides;
mod parse;
mod redact;
#[cfg(test)]
mod testing;

pub use error::ConfigError;
pub use expand::hide_expanded;
pub use lookup::{locate, CONFIG_ENV, CONFIG_FILE_NAMES};
pub use overrides::Overrides;
pub use parse::{load, parse_str, parse_with_env};
pub use redact::{redact_url, scrub_url};

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// The whole configuration, after validation and defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// The file it came from (None when built in code, e.g. by tests).
    pub path: Option<PathBuf>,
    /// Backends in file order (first configured wins name clashes).
    pub backends: Vec<BackendConfig>,
    pub server: ServerConfig,
    pub manage: ManageConfig,
    /// Named views (`views`): per-client subsets of the catalog, served
    /// at `/mcp/<name>` and `/sse/<name>`, in file order.
    pub views: Vec<ViewConfig>,
}

/// One entry of `views`: which backends and which exposed tools a client
/// of `/mcp/<name>` or `/sse/<name>` sees.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ViewConfig {
    /// 1 to 64 characters of `[A-Za-z0-9_-]`.
    pub name: String,
    /// Backend names (each one configured); `None`: every backend.
    pub backends: Option<Vec<String>>,
    /// Globs over the exposed tool names (after prefixes).
    pub tools: ToolFilter,
    pub description: Option<String>,
}

impl ViewConfig {
    /// Whether the view includes backend `name`.
    pub fn has_backend(&self, name: &str) -> bool {
        self.backends.as_ref().is_none_or(|l| l.iter().any(|b| b == name))
    }
}

/// Whether `name` is a valid view name: 1 to 64 characters of
/// `[A-Za-z0-9_-]` (it is a path segment of `/mcp/<name>`).
pub fn valid_view_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
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
    /// Most concurrent client sessions, default 16 384.
    pub max_sessions: usize,
    /// Allowed `Host` values (names, optionally with a port; "*" allows
    /// all). Empty: on a loopback listener only loopback names.
    pub allowed_hosts: Vec<String>,
    /// Open data-plane connections at most (also capped by the file
    /// descriptor limit), default 16 384.
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
    /// Prefix of this instance's session ids (`instance_id`): ids become
    /// `<instance_id>-<32 hex digits>`, so a load balancer can route a
    /// session to the instance that made it. `None`: bare hex ids.
    pub instance_id: Option<String>,
    /// `auth`: bearer tokens and JWT access tokens required on `/mcp`,
    /// `/sse` and `/messages/`. `None`: no authentication (allowed on a
    /// loopback `listen`, elsewhere only with `allow_unauthenticated_remote`).
    pub auth: Option<DataAuthConfig>,
    /// `allow_unauthenticated_remote`: serve a non-loopback `listen`
    /// without authentication (a warning at start).
    pub allow_unauthenticated_remote: bool,
}

/// `server.auth`: who may use the data plane.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct DataAuthConfig {
    /// Static bearer tokens (same sources as `manage.tokens`).
    pub tokens: Vec<DataTokenConfig>,
    /// JWT access tokens from one issuer.
    pub jwt: Option<JwtConfig>,
    /// The protected resource's identifier (RFC 9728 `resource`), e.g.
    /// `https://gw.example.com/mcp`. `None`: `http://<listen>/mcp`.
    pub resource: Option<String>,
    /// `allow_unauthenticated`: a request without `Authorization` is served
    /// anonymously; a token that is given must still be valid.
    pub allow_unauthenticated: bool,
}

/// One `server.auth.tokens` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct DataTokenConfig {
    pub name: String,
    pub source: TokenSource,
    /// The views this token may use (`None`: not restricted here).
    pub views: Option<Vec<String>>,
}

/// `server.auth.jwt`: the authorization server whose access tokens are
/// accepted.
#[derive(Clone, Debug, PartialEq)]
pub struct JwtConfig {
    /// `iss` must equal this.
    pub issuer: String,
    /// `aud` (a string or an array) must contain this.
    pub audience: String,
    /// The issuer's JSON Web Key Set (https, or http on a loopback host).
    pub jwks_url: String,
    /// The only TLS roots for `jwks_url`; `None`: the built-in roots.
    pub ca_cert: Option<CaCert>,
    /// A claim listing the views the token may use (`views_claim`).
    pub views_claim: Option<String>,
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
    /// Which protocol era the gateway speaks to the backend (`protocol`).
    pub protocol: Protocol,
}

/// `protocol`: the revision the gateway speaks to a backend.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Protocol {
    /// `"auto"`: `initialize` first (the session revisions, which every
    /// server that speaks them handles, push-style requests included); a
    /// backend that answers it as a 2026-07-28-only server is then spoken
    /// to in 2026-07-28.
    #[default]
    Auto,
    /// `"legacy"`: the session revisions only.
    Legacy,
    /// `"2026-07-28"`: stateless only, no `initialize` (a dual-era backend
    /// then passes `input_required` results through to modern clients).
    Modern,
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

// ------------------------------------------------------------------ defaults

/// `server.listen` when the file does not say.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9000";
/// `manage.listen` when the file does not say.
pub const DEFAULT_MANAGE_LISTEN: &str = "127.0.0.1:9001";
/// `server.max_body_bytes` default: 4 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// `server.max_sessions` default. An idle session with its stream costs the
/// gateway about 2 KiB (scripts/bench-streams.sh), so 16 384 of them are
/// ~32 MiB: room for 10 000 idle streams with no configuration, while the
/// bound stays. (It was 256, fewer than the connections: legacy SSE
/// clients got 503 with thousands of connections free.)
pub const DEFAULT_MAX_SESSIONS: usize = 16_384;
/// `server.max_connections` default; the file descriptor limit caps it
/// further at start (`server::start`). Equal to the session bound, since
/// every open stream is a connection.
pub const DEFAULT_MAX_CONNECTIONS: usize = 16_384;
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
            instance_id: None,
            auth: None,
            allow_unauthenticated_remote: false,
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

    /// A configuration with default `server`/`manage` sections and no file.
    pub fn default_with_backends(backends: Vec<BackendConfig>) -> Config {
        Config {
            path: None,
            backends,
            server: ServerConfig::default(),
            manage: ManageConfig::default(),
            views: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::parse_ok;
    use super::*;
    use std::path::Path;

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
}
