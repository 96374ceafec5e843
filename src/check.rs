//! `mcp-sentinel check [--config PATH]`: validates a configuration file and
//! prints what it resolves to, for an operator before a start or a reload:
//! the file, both listeners, the management tokens by name only, and each
//! backend with its transport and endpoint as the API would show it
//! (secrets redacted). Warnings (unknown keys) go to stderr. Exit 0 when
//! every part is valid, 78 otherwise (a server would start with an invalid
//! backend, marked failed; `check` is stricter on purpose).

use std::fmt::Write as _;
use std::path::PathBuf;

use crate::cli::CheckArgs;
use crate::config::{self, Config, ConfigError, TokenSource, Transport};
use crate::exit::{Fatal, Kind};

/// Why a check failed: the file itself, or entries in it.
#[derive(Debug)]
pub enum CheckError {
    Config(ConfigError),
    /// The file loaded, but this many backends are invalid (the report
    /// names each).
    Invalid(usize),
}

impl std::fmt::Display for CheckError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CheckError::Config(e) => write!(f, "{e}"),
            CheckError::Invalid(1) => write!(f, "1 backend is invalid"),
            CheckError::Invalid(n) => write!(f, "{n} backends are invalid"),
        }
    }
}

impl std::error::Error for CheckError {}

impl Fatal for CheckError {
    fn kind(&self) -> Kind {
        Kind::Config
    }
}

/// Runs the check: the report on stdout, then the verdict.
pub fn run(args: &CheckArgs) -> Result<(), CheckError> {
    let path: PathBuf = config::locate(args.config.as_deref()).map_err(CheckError::Config)?;
    let cfg = config::load(&path).map_err(CheckError::Config)?;
    let (text, invalid) = report(&cfg);
    print!("{text}");
    match invalid {
        0 => Ok(()),
        n => Err(CheckError::Invalid(n)),
    }
}

/// The report and the number of invalid backends. Pure.
pub fn report(cfg: &Config) -> (String, usize) {
    let mut out = String::new();
    let file = cfg.path.as_ref().map_or_else(|| "<config>".to_owned(), |p| p.display().to_string());
    let _ = writeln!(out, "config: {file}");
    let _ = writeln!(out, "data plane: http://{}  (name {:?})", cfg.server.listen, cfg.server.name);
    let from = |s: &TokenSource| match s {
        TokenSource::Env(v) => format!("from ${v}"),
        TokenSource::File(p) => format!("from {}", p.display()),
        TokenSource::Sha256(_) => "sha256 digest".to_owned(),
    };
    match &cfg.server.auth {
        Some(a) => {
            for t in &a.tokens {
                let _ = writeln!(out, "  client token {:?} ({})", t.name, from(&t.source));
            }
            if let Some(j) = &a.jwt {
                let keys = config::redact_url(&j.jwks_url);
                let _ = writeln!(out, "  JWT from {:?} for audience {:?} (keys {keys})", j.issuer, j.audience);
            }
            if a.allow_unauthenticated {
                let _ = writeln!(out, "  clients without a token are served anonymously");
            }
        }
        None if cfg.server.allow_unauthenticated_remote => {
            let _ = writeln!(out, "  no client authentication (allow_unauthenticated_remote)");
        }
        None => {}
    }
    let scheme = if cfg.manage.tls.is_some() { "https" } else { "http" };
    let _ = writeln!(out, "management API: {scheme}://{}/manage/v1", cfg.manage.listen);
    if cfg.manage.tokens.is_empty() {
        let _ = writeln!(out, "  tokens: none configured; an admin token is generated at each start");
    }
    for t in &cfg.manage.tokens {
        let scope = if t.admin { "read, admin" } else { "read" };
        let _ = writeln!(out, "  token {:?}: {scope} ({})", t.name, from(&t.source));
    }
    let _ = writeln!(out, "backends: {}", cfg.backends.len());
    let mut invalid = 0;
    for b in &cfg.backends {
        match &b.transport {
            Err(e) => {
                invalid += 1;
                let _ = writeln!(out, "  {:<20} INVALID: {e}", b.name);
            }
            Ok(t) => {
                let mut notes = Vec::new();
                if !b.enabled {
                    notes.push("disabled".to_owned());
                }
                if let Some(p) = &b.prefix {
                    notes.push(format!("prefix {p}__"));
                }
                if let Transport::Sse { local: Some(_), .. } = t {
                    notes.push("starts a local server".to_owned());
                }
                if b.per_session.is_some() {
                    notes.push("per session".to_owned());
                }
                let notes = if notes.is_empty() { String::new() } else { format!("  [{}]", notes.join(", ")) };
                let _ = writeln!(out, "  {:<20} {:<16} {}{notes}", b.name, t.kind(), b.endpoint());
            }
        }
    }
    for v in &cfg.views {
        let backends = v.backends.as_ref().map_or_else(|| "every backend".to_owned(), |l| l.join(", "));
        let mut globs = Vec::new();
        if !v.tools.allow.is_empty() {
            globs.push(format!("allow {}", v.tools.allow.join(" ")));
        }
        if !v.tools.deny.is_empty() {
            globs.push(format!("deny {}", v.tools.deny.join(" ")));
        }
        let globs = if globs.is_empty() { String::new() } else { format!("; tools: {}", globs.join("; ")) };
        let _ = writeln!(out, "view {}: /mcp/{0}, /sse/{0} ({backends}{globs})", v.name);
    }
    let valid = cfg.backends.len() - invalid;
    let _ = writeln!(out, "result: {valid} valid, {invalid} invalid");
    (out, invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_names_client_tokens_and_the_issuer() {
        let text = r#"{"server": {"auth": {"tokens": [{"name": "alice", "token_env": "ALICE"}],
            "jwt": {"issuer": "https://idp", "audience": "mcp", "jwks_url": "https://idp/jwks"}}}}"#;
        let cfg = crate::config::parse_with_env(text, None, &|_| None).expect("valid");
        let (out, _) = report(&cfg);
        assert!(out.contains("  client token \"alice\" (from $ALICE)"), "{out}");
        assert!(out.contains("JWT from \"https://idp\" for audience \"mcp\""), "{out}");
    }

    #[test]
    fn report_names_every_backend_and_no_secret() {
        let text = r#"{"manage": {"tokens": [{"name": "ops", "scopes": ["read", "admin"], "token_env": "OPS_TOKEN"}]},
            "mcpServers": {
              "fs": {"command": "npx", "args": ["-y", "fs", "--api-key", "s3cret"], "prefix": "fs"},
              "remote": {"url": "https://example.com/mcp", "headers": {"Authorization": "Bearer s3cret"}},
              "off": {"command": "x", "disabled": true},
              "bad": {"type": "carrier-pigeon"}}}"#;
        let cfg = crate::config::parse_with_env(text, None, &|_| None).unwrap();
        let (out, invalid) = report(&cfg);
        assert_eq!(invalid, 1, "{out}");
        assert!(!out.contains("s3cret"), "{out}");
        assert!(out.contains("token \"ops\": read, admin (from $OPS_TOKEN)"), "{out}");
        assert!(out.contains("fs                   stdio"), "{out}");
        assert!(out.contains("[prefix fs__]"), "{out}");
        assert!(out.contains("remote               streamable-http  https://example.com/mcp"), "{out}");
        assert!(out.contains("[disabled]"), "{out}");
        assert!(out.contains("bad                  INVALID: backend \"bad\": field \"type\""), "{out}");
        assert!(out.ends_with("result: 3 valid, 1 invalid\n"), "{out}");
        let text = r#"{"mcpServers": {"fs": {"command": "x"}},
            "views": {"dev": {"backends": ["fs"], "tools": {"allow": ["fs__*"], "deny": ["*rm*"]}}, "all": {}}}"#;
        let (out, _) = report(&crate::config::parse_with_env(text, None, &|_| None).unwrap());
        assert!(out.contains("view dev: /mcp/dev, /sse/dev (fs; tools: allow fs__*; deny *rm*)\n"), "{out}");
        assert!(out.contains("view all: /mcp/all, /sse/all (every backend)\n"), "{out}");
    }
}
