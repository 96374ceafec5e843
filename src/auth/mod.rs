//! Bearer credentials, for both listeners: what the management API's
//! tokens (`manage/auth.rs`) and the data plane's (`server.auth`, [`data`])
//! share: token sources (`token_env`, `token_file`, `sha256`) loaded into
//! SHA-256 digests (the secret itself is never kept), the `Authorization:
//! Bearer` parse, and the constant-time comparison against every digest.
//! [`jwt`] verifies JWT access tokens against a key set that [`jwks`]
//! fetches. A leaf above `config`, `secfile` and `util`: neither listener's
//! code is used here.

pub mod data;
pub mod jwks;
pub mod jwt;

use crate::config::TokenSource;

pub type Digest = [u8; 32];

pub fn sha256(data: &[u8]) -> Digest {
    let d = ring::digest::digest(&ring::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Equal without data-dependent branches or early exit.
pub fn ct_eq(a: &Digest, b: &Digest) -> bool {
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b.iter()) {
        diff |= x ^ y;
    }
    // black_box keeps the optimizer from turning the fold into a memcmp.
    std::hint::black_box(diff) == 0
}

/// 64 hexadecimal digits as a digest.
pub fn parse_hex(s: &str) -> Option<Digest> {
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

/// The digest of a secret as read from a file or variable (surrounding
/// whitespace trimmed); `None` if empty.
pub fn secret_digest(text: &str) -> Option<Digest> {
    let t = text.trim();
    (!t.is_empty()).then(|| sha256(t.as_bytes()))
}

/// Loads one token source into its digest. `what` names the entry in
/// errors (`manage.tokens[0] (ci)`); no error ever carries a token value.
pub fn load_digest(source: &TokenSource, what: &str) -> Result<Digest, String> {
    match source {
        TokenSource::Sha256(hex) => {
            parse_hex(hex).ok_or_else(|| format!("{what}: sha256 must be 64 hexadecimal digits"))
        }
        TokenSource::Env(var) => {
            let v = std::env::var(var).map_err(|_| format!("{what}: environment variable {var} is not set"))?;
            secret_digest(&v).ok_or_else(|| format!("{what}: environment variable {var} is empty"))
        }
        TokenSource::File(path) => {
            let read = crate::secfile::read_operator_secret(path, crate::secfile::TOKEN_LIMIT)
                .map_err(|e| format!("{what}: token file {e}"))?;
            if let Some(mode) = read.readable_by_others {
                log::warn!(
                    "{what}: token file {} can be read by other users (mode {mode:04o}), and each of them can \
                     use this token; run chmod 600 on it",
                    path.display()
                );
            }
            secret_digest(&read.text).ok_or_else(|| format!("{what}: token file {} is empty", path.display()))
        }
    }
}

/// The credential of an `Authorization: Bearer <token>` header value;
/// `None` for no header, another scheme or an empty token.
pub fn bearer(authorization: Option<&str>) -> Option<&str> {
    authorization
        .and_then(|h| {
            let (kind, rest) = h.trim().split_once(' ')?;
            kind.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        })
        .filter(|t| !t.is_empty())
}

/// The first item whose digest equals the presented token's, comparing
/// against every item in constant time (no early exit), so neither the
/// match position nor a prefix leaks.
pub fn find_token<'a, T>(items: &'a [T], digest: impl Fn(&T) -> &Digest, presented: &str) -> Option<&'a T> {
    let d = sha256(presented.as_bytes());
    let mut found = None;
    for t in items {
        if ct_eq(digest(t), &d) && found.is_none() {
            found = Some(t);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_parse_and_find() {
        assert_eq!(bearer(None), None);
        assert_eq!(bearer(Some("Basic abc")), None);
        assert_eq!(bearer(Some("Bearer ")), None);
        assert_eq!(bearer(Some("bearer  xyz ")), Some("xyz"));
        let items = [("a", sha256(b"one")), ("b", sha256(b"two"))];
        assert_eq!(find_token(&items, |t| &t.1, "two").map(|t| t.0), Some("b"));
        assert_eq!(find_token(&items, |t| &t.1, "three").map(|t| t.0), None);
    }
}
