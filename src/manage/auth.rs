//! Bearer tokens for the management API: where they come from
//! (`token_env`, `token_file`, `sha256`, or a generated admin token written
//! to a 0600 file), and the check itself. Only SHA-256 digests are kept in
//! memory; a presented token is hashed and compared against every digest
//! in constant time, so neither the match position nor a prefix leaks.

use crate::config::{ManageConfig, TokenSource};
use std::io::Write;
use std::path::{Path, PathBuf};

pub type Digest = [u8; 32];

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

pub fn sha256(data: &[u8]) -> Digest {
    let d = ring::digest::digest(&ring::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Equal without data-dependent branches or early exit.
fn ct_eq(a: &Digest, b: &Digest) -> bool {
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b.iter()) {
        diff |= x ^ y;
    }
    // black_box keeps the optimizer from turning the fold into a memcmp.
    std::hint::black_box(diff) == 0
}

fn parse_hex(s: &str) -> Option<Digest> {
    let s = s.trim();
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, chunk) in s.as_bytes().chunks(2).enumerate() {
        let hex = std::str::from_utf8(chunk).ok()?;
        out[i] = u8::from_str_radix(hex, 16).ok()?;
    }
    Some(out)
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
            let digest = match &t.source {
                TokenSource::Sha256(hex) => {
                    parse_hex(hex).ok_or_else(|| format!("{what}: sha256 must be 64 hexadecimal digits"))?
                }
                TokenSource::Env(var) => {
                    let v = std::env::var(var).map_err(|_| format!("{what}: environment variable {var} is not set"))?;
                    secret_digest(&v).ok_or_else(|| format!("{what}: environment variable {var} is empty"))?
                }
                TokenSource::File(path) => {
                    let v = std::fs::read_to_string(path)
                        .map_err(|e| format!("{what}: cannot read token file {}: {e}", path.display()))?;
                    secret_digest(&v).ok_or_else(|| format!("{what}: token file {} is empty", path.display()))?
                }
            };
            tokens.push(Token { name: t.name.clone(), admin: t.admin, digest });
        }
        Ok(Auth { tokens })
    }

    /// With no tokens configured: reuses the token in `path` if there is
    /// one, else writes a new random one there (0600, directory 0700).
    /// Returns the auth and whether the file was created.
    pub fn generated(path: &Path) -> Result<(Auth, bool), String> {
        let shown = path.display();
        if let Ok(text) = std::fs::read_to_string(path) {
            if let Some(digest) = secret_digest(&text) {
                return Ok((Auth::new(vec![Token { name: "generated".into(), admin: true, digest }]), false));
            }
        }
        let token = crate::util::random_hex(32).map_err(|e| format!("cannot generate a token: {e}"))?;
        write_secret(path, &token).map_err(|e| format!("cannot write the token file {shown}: {e}"))?;
        let digest = sha256(token.as_bytes());
        Ok((Auth::new(vec![Token { name: "generated".into(), admin: true, digest }]), true))
    }

    /// Checks an `Authorization` header value for `scope`.
    pub fn check(&self, authorization: Option<&str>, scope: Scope) -> Result<&Token, Denied> {
        let presented = authorization
            .and_then(|h| {
                let (kind, rest) = h.trim().split_once(' ')?;
                kind.eq_ignore_ascii_case("bearer").then(|| rest.trim())
            })
            .filter(|t| !t.is_empty())
            .ok_or(Denied::Missing)?;
        let digest = sha256(presented.as_bytes());
        // Compare against every token, no early exit.
        let mut found = None;
        for t in &self.tokens {
            if ct_eq(&t.digest, &digest) && found.is_none() {
                found = Some(t);
            }
        }
        let t = found.ok_or(Denied::Invalid)?;
        match scope {
            Scope::Admin if !t.admin => Err(Denied::Forbidden(t.name.clone())),
            _ => Ok(t),
        }
    }
}

fn secret_digest(text: &str) -> Option<Digest> {
    let t = text.trim();
    (!t.is_empty()).then(|| sha256(t.as_bytes()))
}

/// Writes `secret` to `path` with mode 0600 from the first byte (the file
/// is created with that mode, never widened later), directory 0700.
fn write_secret(path: &Path, secret: &str) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    }
    let tmp = path.with_extension("token.tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
    f.write_all(secret.as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
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
    fn generated_token_file_is_private_and_reused() {
        let dir = std::env::temp_dir().join(format!("mcp-sentinel-auth-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("state/manage-9001.token");
        let (a, created) = Auth::generated(&path).expect("generated");
        assert!(created);
        let mode = std::fs::metadata(&path).expect("file").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dmode = std::fs::metadata(path.parent().expect("dir")).expect("dir").permissions().mode() & 0o777;
        assert_eq!(dmode, 0o700);
        let token = std::fs::read_to_string(&path).expect("read");
        assert_eq!(token.trim().len(), 64);
        assert!(a.check(Some(&format!("Bearer {}", token.trim())), Scope::Admin).is_ok());
        let (b, created) = Auth::generated(&path).expect("reused");
        assert!(!created);
        assert!(b.check(Some(&format!("Bearer {}", token.trim())), Scope::Admin).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
