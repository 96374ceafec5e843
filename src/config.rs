//! Configuration: both file shapes of CONTRACT §3 (current `mcpServers` and
//! the legacy flat object), the lookup chain, and validation whose errors name
//! the file, the backend and the field. Runs on the main thread (start) and
//! the admin thread (reload); no I/O besides reading the file.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
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
}

#[derive(Clone, Debug, PartialEq)]
pub struct ServerConfig {
    /// `host:port`, default "127.0.0.1:9000".
    pub listen: String,
    /// serverInfo.name, default "mcp-sentinel".
    pub name: String,
    /// Allowed `Origin` values on the data plane. Empty: only loopback
    /// origins (http(s)://localhost, 127.0.0.1, [::1], any port) are allowed.
    pub allowed_origins: Vec<String>,
    /// Largest accepted request body, default 4 MiB.
    pub max_body_bytes: usize,
    /// Most concurrent client sessions, default 256.
    pub max_sessions: usize,
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
    pub prefix: Option<String>,
    pub tools: ToolFilter,
    /// Err holds a one-line message naming the field, e.g.
    /// `backend "git": field "command": required for a stdio backend`.
    pub transport: Result<Transport, String>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Transport {
    Stdio(Command),
    Sse {
        url: String,
        headers: Vec<(String, String)>,
        /// Legacy behaviour: start this process first, then connect.
        local: Option<Command>,
    },
    StreamableHttp {
        url: String,
        headers: Vec<(String, String)>,
    },
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

#[derive(Clone, Debug, PartialEq)]
pub struct Command {
    pub command: String,
    pub args: Vec<String>,
    /// Added to (and overriding) the gateway's own environment.
    pub env: BTreeMap<String, String>,
    pub cwd: Option<PathBuf>,
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
