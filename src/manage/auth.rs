//! Bearer tokens for the management API (sources, digests and the
//! comparison are shared with the data plane in [`crate::auth`]): where they come from
//! (`token_env`, `token_file`, `sha256`, or a generated admin token written
//! to a 0600 file, a new one at each start), and the check itself. Only
//! SHA-256 digests are kept in memory; a presented token is hashed and
//! compared against every digest in constant time, so neither the match
//! position nor a prefix leaks. Runs on the main thread at start-up
//! (loading) and on the manage listener's workers (checking).
//!
//! Token files go through [`crate::secfile`]: a `token_file` is refused
//! when others can change it, and the generated file is written atomically
//! with `O_EXCL`/`O_NOFOLLOW` in a checked directory.

use crate::config::ManageConfig;
#[cfg(test)]
use crate::config::TokenSource;
use std::path::{Path, PathBuf};

pub use crate::auth::sha256;
pub use crate::auth::Digest;

#[derive(Clone, Debug, PartialEq)]
pub struct Token {
    pub name: String,
    pub admin: bool,
    digest: Digest,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Scope {
    Read,
    Admin,
}

/// Why a request was refused.
#[derive(Debug, PartialEq)]
pub enum Denied {
    /// No `Authorization: Bearer` header (401).
    Missing,
    /// A token that matches none (401).
    Invalid,
    /// A valid token without the scope (403); carries its name.
    Forbidden(String),
}

pub struct Auth {
    tokens: Vec<Token>,
}

/// The default generated-token path: `<state home>/mcp-sentinel/manage-<port>.token`
/// (see [`crate::util::state_home`]).
pub fn default_token_file(port: u16) -> Option<PathBuf> {
    Some(crate::util::state_home()?.join("mcp-sentinel").join(format!("manage-{port}.token")))
}

impl Token {
    pub fn new(name: &str, admin: bool, secret: &str) -> Token {
        Token { name: name.to_owned(), admin, digest: sha256(secret.as_bytes()) }
    }
}

impl Auth {
    pub fn new(tokens: Vec<Token>) -> Auth {
        Auth { tokens }
    }

    pub fn add(&mut self, t: Token) {
        self.tokens.push(t);
    }

    /// Loads the configured tokens. Each error names the token entry and
    /// its source (never a token value).
    pub fn from_config(cfg: &ManageConfig) -> Result<Auth, String> {
        let mut tokens = Vec::with_capacity(cfg.tokens.len());
        for (i, t) in cfg.tokens.iter().enumerate() {
            let what = format!("manage.tokens[{i}] ({})", t.name);
            let digest = crate::auth::load_digest(&t.source, &what)?;
            tokens.push(Token { name: t.name.clone(), admin: t.admin, digest });
        }
        Ok(Auth { tokens })
    }

    /// With no tokens configured: writes a new random admin token to
    /// `path` and trusts only that one. What the file held before is never
    /// read: a token captured or planted while the gateway was down is dead
    /// once it starts. The write is atomic (a reader sees the old token or
    /// the new one), mode 0600, missing directories 0700; an unsafe
    /// directory, a link or another user's file at `path` is refused.
    pub fn generated(path: &Path) -> Result<Auth, String> {
        let token = crate::util::random_hex(32).map_err(|e| format!("cannot generate a token: {e}"))?;
        // Not synced to disk: the token is worthless after a crash (the next
        // start draws another), and the wait for the disk delayed readiness.
        crate::secfile::write_atomic_volatile(path, format!("{token}\n").as_bytes())
            .map_err(|e| format!("management token file {e}"))?;
        let digest = sha256(token.as_bytes());
        Ok(Auth::new(vec![Token { name: "generated".into(), admin: true, digest }]))
    }

    /// Checks an `Authorization` header value for `scope`.
    pub fn check(&self, authorization: Option<&str>, scope: Scope) -> Result<&Token, Denied> {
        let presented = crate::auth::bearer(authorization).ok_or(Denied::Missing)?;
        // Compare against every token, no early exit.
        let found = crate::auth::find_token(&self.tokens, |t| &t.digest, presented);
        let t = found.ok_or(Denied::Invalid)?;
        match scope {
            Scope::Admin if !t.admin => Err(Denied::Forbidden(t.name.clone())),
            _ => Ok(t),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::parse_hex;
    use std::os::unix::fs::PermissionsExt;

    fn auth() -> Auth {
        Auth::new(vec![
            Token { name: "ro".into(), admin: false, digest: sha256(b"read-secret") },
            Token { name: "ops".into(), admin: true, digest: sha256(b"admin-secret") },
        ])
    }

    #[test]
    fn scopes_and_failures() {
        let a = auth();
        assert_eq!(a.check(None, Scope::Read), Err(Denied::Missing));
        assert_eq!(a.check(Some("Basic abc"), Scope::Read), Err(Denied::Missing));
        assert_eq!(a.check(Some("Bearer "), Scope::Read), Err(Denied::Missing));
        assert_eq!(a.check(Some("Bearer nope"), Scope::Read), Err(Denied::Invalid));
        assert_eq!(a.check(Some("Bearer read-secret"), Scope::Read).map(|t| t.name.as_str()), Ok("ro"));
        assert_eq!(a.check(Some("Bearer read-secret"), Scope::Admin), Err(Denied::Forbidden("ro".into())));
        assert_eq!(a.check(Some("bearer admin-secret"), Scope::Admin).map(|t| t.name.as_str()), Ok("ops"));
        assert_eq!(a.check(Some("Bearer admin-secret"), Scope::Read).map(|t| t.name.as_str()), Ok("ops"));
    }

    #[test]
    fn sha256_tokens_and_hex() {
        // sha256("abc")
        let hex = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(parse_hex(hex), Some(sha256(b"abc")));
        assert_eq!(parse_hex("xyz"), None);
        assert_eq!(parse_hex(&"g".repeat(64)), None);
        let cfg = ManageConfig {
            tokens: vec![crate::config::TokenConfig {
                name: "h".into(),
                admin: false,
                source: TokenSource::Sha256(hex.into()),
            }],
            ..ManageConfig::default()
        };
        let a = Auth::from_config(&cfg).expect("valid");
        assert!(a.check(Some("Bearer abc"), Scope::Read).is_ok());
    }

    #[test]
    fn missing_sources_are_named() {
        let cfg = ManageConfig {
            tokens: vec![crate::config::TokenConfig {
                name: "ci".into(),
                admin: true,
                source: TokenSource::File("/nonexistent/mcp-sentinel-token".into()),
            }],
            ..ManageConfig::default()
        };
        let e = Auth::from_config(&cfg).err().expect("error");
        assert!(e.contains("manage.tokens[0] (ci)") && e.contains("/nonexistent/mcp-sentinel-token"), "{e}");
    }

    #[test]
    fn generated_token_file_is_private_and_rotated() {
        let dir = std::env::temp_dir().join(format!("mcp-sentinel-auth-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("state/manage-9001.token");
        let a = Auth::generated(&path).expect("generated");
        let mode = std::fs::metadata(&path).expect("file").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dmode = std::fs::metadata(path.parent().expect("dir")).expect("dir").permissions().mode() & 0o777;
        assert_eq!(dmode, 0o700);
        let token = std::fs::read_to_string(&path).expect("read");
        assert_eq!(token.trim().len(), 64);
        assert!(a.check(Some(&format!("Bearer {}", token.trim())), Scope::Admin).is_ok());
        // A second start never reuses the file's token.
        let b = Auth::generated(&path).expect("rotated");
        let second = std::fs::read_to_string(&path).expect("read");
        assert_ne!(second, token);
        assert_eq!(b.check(Some(&format!("Bearer {}", token.trim())), Scope::Admin), Err(Denied::Invalid));
        assert!(b.check(Some(&format!("Bearer {}", second.trim())), Scope::Admin).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
