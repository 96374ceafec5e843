//! Small helpers with no better home: random ids and seeds, RFC 3339 time,
//! bounded line reads.

use std::fs::File;
use std::io::Read;
use std::time::{SystemTime, UNIX_EPOCH};

/// A cryptographically secure random id of `bytes` bytes, hex-encoded
/// (visible ASCII, as MCP requires of session ids).
pub fn random_hex(bytes: usize) -> std::io::Result<String> {
    let mut buf = vec![0u8; bytes];
    File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(hex(&buf))
}

/// 64 random bits from `/dev/urandom` (seeds the backoff jitter).
pub fn random_u64() -> std::io::Result<u64> {
    let mut buf = [0u8; 8];
    File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(u64::from_le_bytes(buf))
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// RFC 3339 UTC with millisecond precision, e.g. `2026-11-24T11:22:53.120Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, dd) = civil_from_days(days);
    format!("{y:04}-{m:02}-{dd:02}T{:02}:{:02}:{:02}.{:03}Z", rem / 3600, rem % 3600 / 60, rem % 60, d.subsec_millis())
}

/// Days since 1970-01-01 to (year, month, day); Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// The XDG state home: `$XDG_STATE_HOME` if it is absolute (relative
/// values are ignored, as the XDG spec says), else `$HOME/.local/state`.
/// `get` reads an environment variable. The server (its generated token
/// file, the combined mode's log) and the TUI (where it looks for that
/// token) both use this, so they always agree on the place.
pub fn state_home_from(get: impl Fn(&str) -> Option<std::path::PathBuf>) -> Option<std::path::PathBuf> {
    let abs = |k: &str| get(k).filter(|p| p.is_absolute());
    abs("XDG_STATE_HOME").or_else(|| abs("HOME").map(|h| h.join(".local/state")))
}

/// [`state_home_from`] the process environment.
pub fn state_home() -> Option<std::path::PathBuf> {
    state_home_from(|k| std::env::var_os(k).map(std::path::PathBuf::from))
}

/// Text that came from outside (a request path, a header, a backend's
/// line) made safe to put in a log line, an audit record or an event:
/// control characters escaped (so no forged lines and no terminal escape
/// sequences) and at most `max` characters kept, with a note of the cut.
pub fn printable(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max) + 16);
    for (n, c) in s.chars().enumerate() {
        if n == max {
            out.push_str(&format!("…(+{} chars)", s.chars().count() - max));
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Standard base64 with padding.
pub fn base64_encode(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | (u32::from(b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes unpadded base64url (RFC 4648 §5, as in JWTs and JWKs); `None`
/// if it is not, or if it has padding or characters of the standard alphabet.
pub fn base64url_decode(s: &str) -> Option<Vec<u8>> {
    if s.bytes().any(|b| matches!(b, b'+' | b'/' | b'=')) {
        return None;
    }
    base64_decode(&s.replace('-', "+").replace('_', "/"))
}

/// Encodes bytes as unpadded base64url.
pub fn base64url_encode(bytes: &[u8]) -> String {
    base64_encode(bytes).trim_end_matches('=').replace('+', "-").replace('/', "_")
}

/// Decodes standard base64 (with or without padding); `None` if it is not.
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let s = s.trim_end_matches('=').as_bytes();
    if s.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for chunk in s.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= val(c)? << (18 - 6 * i);
        }
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..chunk.len() - 1]);
    }
    Some(out)
}

/// A header value as MCP 2026-07-28 sends it (`Mcp-Name`, `Mcp-Param-*`):
/// as is when it is plain ASCII without surrounding spaces, else
/// `=?base64?…?=`.
pub fn mcp_header_value(v: &str) -> String {
    let plain =
        v.bytes().all(|b| (0x20..0x7f).contains(&b)) && v.trim() == v && !(v.starts_with("=?") && v.ends_with("?="));
    if plain {
        v.to_owned()
    } else {
        format!("=?base64?{}?=", base64_encode(v.as_bytes()))
    }
}

/// What [`read_line_bounded`] read.
#[derive(Debug, PartialEq)]
pub enum LineRead {
    Line,
    Eof,
    /// The line exceeded the limit; it was consumed and discarded.
    TooLong,
}

/// Reads up to and including `\n` into `buf`, never holding more than
/// `max` bytes of one line.
pub fn read_line_bounded(r: &mut impl std::io::BufRead, buf: &mut Vec<u8>, max: usize) -> std::io::Result<LineRead> {
    let mut too_long = false;
    loop {
        let avail = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if avail.is_empty() {
            return Ok(if too_long {
                LineRead::TooLong
            } else if buf.is_empty() {
                LineRead::Eof
            } else {
                LineRead::Line
            });
        }
        let (chunk, done) = match memchr::memchr(b'\n', avail) {
            Some(i) => (&avail[..=i], true),
            None => (avail, false),
        };
        let n = chunk.len();
        if !too_long {
            if buf.len() + n > max {
                too_long = true;
                buf.clear();
            } else {
                buf.extend_from_slice(chunk);
            }
        }
        r.consume(n);
        if done {
            return Ok(if too_long { LineRead::TooLong } else { LineRead::Line });
        }
    }
}

/// Raises this process's soft limit on open files to the hard limit (a
/// gateway holds a descriptor per client connection and several per
/// backend; the load generator one per stream it holds), and returns the
/// limit in force.
#[allow(unsafe_code)]
pub fn raise_fd_limit() -> Option<u64> {
    let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct we own; no other memory.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } != 0 {
        return None;
    }
    if r.rlim_cur < r.rlim_max {
        let want = libc::rlimit { rlim_cur: r.rlim_max, rlim_max: r.rlim_max };
        // SAFETY: setrlimit reads the struct we own.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &want) } == 0 {
            r.rlim_cur = r.rlim_max;
        }
    }
    Some(r.rlim_cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_escapes_controls_and_caps_length() {
        assert_eq!(printable("/a\rb\nc\u{1b}[31m", 100), "/a\\rb\\nc\\u{1b}[31m");
        assert_eq!(printable("abcdef", 3), "abc…(+3 chars)");
        assert_eq!(printable("é✓", 10), "é✓");
    }

    #[test]
    fn state_home_follows_xdg_and_ignores_relative_values() {
        use std::path::PathBuf;
        let env = |xdg: Option<&str>, home: Option<&str>| {
            let (xdg, home) = (xdg.map(PathBuf::from), home.map(PathBuf::from));
            state_home_from(move |k| if k == "XDG_STATE_HOME" { xdg.clone() } else { home.clone() })
        };
        assert_eq!(env(Some("/s"), Some("/h")), Some(PathBuf::from("/s")));
        assert_eq!(env(Some("rel"), Some("/h")), Some(PathBuf::from("/h/.local/state")));
        assert_eq!(env(None, Some("/h")), Some(PathBuf::from("/h/.local/state")));
        assert_eq!(env(None, None), None);
    }
    use std::time::Duration;

    #[test]
    fn rfc3339_known_instants() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_795_519_373_120);
        assert_eq!(rfc3339(t), "2026-11-24T11:22:53.120Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn base64_decodes_with_and_without_padding() {
        assert_eq!(base64_decode("aGVsbG8=").as_deref(), Some(&b"hello"[..]));
        assert_eq!(base64_decode("aGVsbG8").as_deref(), Some(&b"hello"[..]));
        assert_eq!(base64_decode("").as_deref(), Some(&b""[..]));
        assert_eq!(base64_decode("a!=="), None);
        assert_eq!(base64_decode("a"), None);
        for text in ["", "f", "fo", "foo", "élève 😀"] {
            assert_eq!(base64_decode(&base64_encode(text.as_bytes())).as_deref(), Some(text.as_bytes()));
        }
        assert_eq!(base64_encode(b"hello"), "aGVsbG8=");
    }

    #[test]
    fn random_ids_are_hex_and_distinct() {
        let a = random_hex(16).unwrap();
        let b = random_hex(16).unwrap();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
