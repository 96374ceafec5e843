//! A minimal HTTP/1.1 client on `std::net::TcpStream`, run on whichever
//! load thread owns the connection: one request at a time per connection,
//! keep-alive, `Content-Length` or chunked response bodies, TCP_NODELAY.
//!
//! Every blocking read and write is bounded by a deadline: [`Conn`] sets the
//! socket timeout to the time left before each read and write, so a peer
//! that trickles bytes cannot stretch a wait past it. A wait that runs out is
//! [`Fail::Timeout`], which the load generator counts as *unanswered* (a
//! hang), apart from a connection the peer closed ([`Fail::Closed`]).
//!
//! The response parsers ([`read_head`], [`read_body`], [`read_chunk`]) take
//! any `BufRead`, so they are unit-tested on byte slices.

use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// A status line or header line longer than this is a protocol error.
const MAX_LINE: usize = 64 * 1024;
/// At most this many headers in a response.
const MAX_HEADERS: usize = 200;
/// The largest response body read into memory.
pub const MAX_BODY: usize = 64 << 20;

/// Why an exchange produced no answer. Kinds, not text, because the load
/// generator counts each kind apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fail {
    /// The deadline passed while waiting: no answer in time.
    Timeout(String),
    /// The peer closed or reset the connection.
    Closed(String),
    /// Connecting failed, or another local I/O error.
    Io(String),
    /// The peer sent something that is not the HTTP or MCP we expect.
    Protocol(String),
}

impl Fail {
    /// Classifies an I/O error; `what` says what was being done.
    pub fn from_io(e: &io::Error, what: &str) -> Fail {
        use io::ErrorKind as K;
        let msg = format!("{what}: {e}");
        match e.kind() {
            K::WouldBlock | K::TimedOut => Fail::Timeout(msg),
            K::UnexpectedEof | K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe => Fail::Closed(msg),
            _ => Fail::Io(msg),
        }
    }

    pub fn message(&self) -> &str {
        match self {
            Fail::Timeout(m) | Fail::Closed(m) | Fail::Io(m) | Fail::Protocol(m) => m,
        }
    }
}

impl fmt::Display for Fail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            Fail::Timeout(_) => "timeout",
            Fail::Closed(_) => "closed",
            Fail::Io(_) => "io",
            Fail::Protocol(_) => "protocol",
        };
        write!(f, "{kind}: {}", self.message())
    }
}

fn closed() -> Fail {
    Fail::Closed("connection closed by the server".into())
}

/// A response's status line and the headers the client acts on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub content_length: Option<usize>,
    pub chunked: bool,
    /// `Connection: close`, or HTTP/1.0 without keep-alive.
    pub close: bool,
}

impl Head {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The content type, lower-cased, without parameters.
    pub fn content_type(&self) -> String {
        let v = self.header("content-type").unwrap_or("");
        v.split(';').next().unwrap_or("").trim().to_ascii_lowercase()
    }

    /// Whether a body follows: not for 1xx, 204 and 304.
    fn has_body(&self) -> bool {
        !(self.status < 200 || self.status == 204 || self.status == 304)
    }
}

/// `HTTP/1.1 200 OK` → 200; the version must be HTTP/1.x.
pub fn parse_status_line(line: &str) -> Option<(u16, bool)> {
    let mut parts = line.splitn(3, ' ');
    let version = parts.next()?;
    let http10 = match version {
        "HTTP/1.1" => false,
        "HTTP/1.0" => true,
        _ => return None,
    };
    let code = parts.next()?;
    if code.len() != 3 {
        return None;
    }
    code.parse().ok().filter(|c| (100..600).contains(c)).map(|c| (c, http10))
}

/// `1a;ext=1` → 26.
pub fn parse_chunk_size(line: &str) -> Option<usize> {
    let hex = line.split(';').next()?.trim();
    if hex.is_empty() || hex.len() > 15 {
        return None;
    }
    usize::from_str_radix(hex, 16).ok()
}

/// Reads one line (without its CRLF or LF) into `line`, at most `MAX_LINE`.
fn read_line<R: BufRead>(r: &mut R, line: &mut Vec<u8>, what: &str) -> Result<(), Fail> {
    line.clear();
    let n = r.take(MAX_LINE as u64 + 1).read_until(b'\n', line).map_err(|e| Fail::from_io(&e, what))?;
    if n == 0 {
        return Err(closed());
    }
    if line.last() != Some(&b'\n') {
        if line.len() > MAX_LINE {
            return Err(Fail::Protocol(format!("{what}: line longer than {MAX_LINE} bytes")));
        }
        return Err(Fail::Closed(format!("{what}: connection closed mid-line")));
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(())
}

/// Reads a status line and headers.
pub fn read_head<R: BufRead>(r: &mut R) -> Result<Head, Fail> {
    let mut line = Vec::with_capacity(128);
    read_line(r, &mut line, "reading the status line")?;
    let text = String::from_utf8_lossy(&line);
    let (status, http10) =
        parse_status_line(&text).ok_or_else(|| Fail::Protocol(format!("bad status line {:?}", truncate(&text, 80))))?;
    let mut head = Head { status, close: http10, ..Head::default() };
    loop {
        read_line(r, &mut line, "reading headers")?;
        if line.is_empty() {
            break;
        }
        if head.headers.len() >= MAX_HEADERS {
            return Err(Fail::Protocol(format!("more than {MAX_HEADERS} headers")));
        }
        let text = String::from_utf8_lossy(&line);
        let (k, v) =
            text.split_once(':').ok_or_else(|| Fail::Protocol(format!("bad header line {:?}", truncate(&text, 80))))?;
        let (k, v) = (k.trim().to_owned(), v.trim().to_owned());
        if k.eq_ignore_ascii_case("content-length") {
            let n = v.parse().map_err(|_| Fail::Protocol(format!("bad Content-Length {v:?}")))?;
            head.content_length = Some(n);
        } else if k.eq_ignore_ascii_case("transfer-encoding") {
            head.chunked = v.to_ascii_lowercase().split(',').any(|t| t.trim() == "chunked");
        } else if k.eq_ignore_ascii_case("connection") {
            let v = v.to_ascii_lowercase();
            if v.contains("close") {
                head.close = true;
            } else if v.contains("keep-alive") {
                head.close = false;
            }
        }
        head.headers.push((k, v));
    }
    Ok(head)
}

/// Appends one chunk of a chunked body to `out`; `false` after the last
/// (zero-size) chunk and its trailers.
pub fn read_chunk<R: BufRead>(r: &mut R, out: &mut Vec<u8>) -> Result<bool, Fail> {
    let mut line = Vec::with_capacity(32);
    read_line(r, &mut line, "reading a chunk size")?;
    let text = String::from_utf8_lossy(&line);
    let size =
        parse_chunk_size(&text).ok_or_else(|| Fail::Protocol(format!("bad chunk size {:?}", truncate(&text, 40))))?;
    if size == 0 {
        loop {
            read_line(r, &mut line, "reading trailers")?;
            if line.is_empty() {
                return Ok(false);
            }
        }
    }
    if out.len() + size > MAX_BODY {
        return Err(Fail::Protocol(format!("body over {MAX_BODY} bytes")));
    }
    let start = out.len();
    out.resize(start + size, 0);
    r.read_exact(&mut out[start..]).map_err(|e| Fail::from_io(&e, "reading a chunk"))?;
    read_line(r, &mut line, "reading a chunk end")?;
    if !line.is_empty() {
        return Err(Fail::Protocol("chunk not followed by CRLF".into()));
    }
    Ok(true)
}

/// Reads the whole body `head` announces. A body with neither length nor
/// chunking runs to the end of the connection.
pub fn read_body<R: BufRead>(r: &mut R, head: &Head) -> Result<Vec<u8>, Fail> {
    let mut body = Vec::new();
    if !head.has_body() {
        return Ok(body);
    }
    if head.chunked {
        while read_chunk(r, &mut body)? {}
    } else if let Some(n) = head.content_length {
        if n > MAX_BODY {
            return Err(Fail::Protocol(format!("Content-Length {n} over {MAX_BODY}")));
        }
        body.resize(n, 0);
        r.read_exact(&mut body).map_err(|e| Fail::from_io(&e, "reading the body"))?;
    } else {
        r.take(MAX_BODY as u64).read_to_end(&mut body).map_err(|e| Fail::from_io(&e, "reading the body"))?;
    }
    Ok(body)
}

pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

/// A `TcpStream` whose every read waits at most until `deadline`.
struct Timed {
    s: TcpStream,
    deadline: Instant,
}

impl Timed {
    fn left(&self) -> io::Result<Duration> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "deadline passed"));
        }
        Ok(left)
    }
}

impl Read for Timed {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.left()?;
        self.s.set_read_timeout(Some(left))?;
        self.s.read(buf)
    }
}

/// One client connection. Not `Clone`: one owner thread at a time.
pub struct Conn {
    r: BufReader<Timed>,
    host: String,
    out: Vec<u8>,
    /// Requests sent on this connection so far (for keep-alive reuse stats).
    pub requests: u64,
}

impl Conn {
    /// Connects, waiting at most until `deadline`.
    pub fn connect(addr: SocketAddr, deadline: Instant) -> Result<Conn, Fail> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Fail::Timeout(format!("connect to {addr}: deadline passed")));
        }
        let s =
            TcpStream::connect_timeout(&addr, left).map_err(|e| Fail::from_io(&e, &format!("connect to {addr}")))?;
        s.set_nodelay(true).map_err(|e| Fail::from_io(&e, "TCP_NODELAY"))?;
        Ok(Conn {
            r: BufReader::with_capacity(64 * 1024, Timed { s, deadline }),
            host: addr.to_string(),
            out: Vec::with_capacity(1024),
            requests: 0,
        })
    }

    /// Every later read and write gives up at `deadline`.
    pub fn set_deadline(&mut self, deadline: Instant) {
        self.r.get_mut().deadline = deadline;
    }

    pub fn tcp(&self) -> &TcpStream {
        &self.r.get_ref().s
    }

    /// Writes raw bytes, each write bounded by the deadline.
    pub fn write_raw(&mut self, bytes: &[u8]) -> Result<(), Fail> {
        let mut rest = bytes;
        while !rest.is_empty() {
            let t = self.r.get_mut();
            let left = t.left().map_err(|e| Fail::from_io(&e, "writing the request"))?;
            t.s.set_write_timeout(Some(left)).map_err(|e| Fail::from_io(&e, "setting a write timeout"))?;
            match t.s.write(rest) {
                Ok(0) => return Err(closed()),
                Ok(n) => rest = &rest[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Fail::from_io(&e, "writing the request")),
            }
        }
        Ok(())
    }

    /// Sends one request in one write. POSTs always carry `Content-Length`.
    pub fn send(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Result<(), Fail> {
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        out.extend_from_slice(format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.host).as_bytes());
        for (k, v) in headers {
            out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
        }
        if !body.is_empty() || method == "POST" {
            out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(body);
        let r = self.write_raw(&out);
        self.out = out;
        self.requests += 1;
        r
    }

    pub fn head(&mut self) -> Result<Head, Fail> {
        read_head(&mut self.r)
    }

    pub fn body(&mut self, head: &Head) -> Result<Vec<u8>, Fail> {
        read_body(&mut self.r, head)
    }

    /// One piece of a streamed body: a chunk if `chunked`, else whatever
    /// bytes arrive. `false` at the end of the body.
    pub fn stream_piece(&mut self, chunked: bool, out: &mut Vec<u8>) -> Result<bool, Fail> {
        if chunked {
            return read_chunk(&mut self.r, out);
        }
        let buf = self.r.fill_buf().map_err(|e| Fail::from_io(&e, "reading the stream"))?;
        if buf.is_empty() {
            return Ok(false);
        }
        let n = buf.len();
        out.extend_from_slice(buf);
        self.r.consume(n);
        Ok(true)
    }

    /// A request and its whole response.
    pub fn exchange(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<(Head, Vec<u8>), Fail> {
        self.send(method, path, headers, body)?;
        let head = self.head()?;
        let body = self.body(&head)?;
        Ok((head, body))
    }

    /// The bare socket, for holding an open stream cheaply: the read
    /// buffer (and anything already in it) is dropped.
    pub fn into_tcp(self) -> TcpStream {
        self.r.into_inner().s
    }

    /// Ends the connection at once (both directions).
    pub fn close(self) {
        let _ = self.tcp().shutdown(Shutdown::Both);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        assert_eq!(parse_status_line("HTTP/1.1 200 OK"), Some((200, false)));
        assert_eq!(parse_status_line("HTTP/1.0 404 Not Found"), Some((404, true)));
        assert_eq!(parse_status_line("HTTP/1.1 202"), Some((202, false)));
        assert_eq!(parse_status_line("HTTP/2 200 OK"), None);
        assert_eq!(parse_status_line("HTTP/1.1 20 OK"), None);
        assert_eq!(parse_status_line("HTTP/1.1 abc OK"), None);
        assert_eq!(parse_status_line("garbage"), None);
    }

    #[test]
    fn chunk_sizes() {
        assert_eq!(parse_chunk_size("1a"), Some(26));
        assert_eq!(parse_chunk_size("0"), Some(0));
        assert_eq!(parse_chunk_size("A;name=value"), Some(10));
        assert_eq!(parse_chunk_size(""), None);
        assert_eq!(parse_chunk_size("zz"), None);
        assert_eq!(parse_chunk_size("ffffffffffffffffff"), None);
    }

    #[test]
    fn content_length_response() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\nMcp-Session-Id: abc\r\nContent-Length: 2\r\n\r\n{}next";
        let mut r = &raw[..];
        let head = read_head(&mut r).unwrap();
        assert_eq!(head.status, 200);
        assert_eq!(head.content_length, Some(2));
        assert_eq!(head.content_type(), "application/json");
        assert_eq!(head.header("mcp-session-id"), Some("abc"));
        assert!(!head.close && !head.chunked);
        assert_eq!(read_body(&mut r, &head).unwrap(), b"{}");
        assert_eq!(r, b"next");
    }

    #[test]
    fn chunked_response_with_extensions_and_trailers() {
        let raw = b"HTTP/1.1 200 OK\nTransfer-Encoding: chunked\nConnection: close\n\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: 1\r\n\r\n";
        let mut r = &raw[..];
        let head = read_head(&mut r).unwrap();
        assert!(head.chunked && head.close);
        assert_eq!(read_body(&mut r, &head).unwrap(), b"abcde");
        assert!(r.is_empty());
    }

    #[test]
    fn body_to_end_without_length_and_none_for_204() {
        let raw = b"HTTP/1.0 400 Bad Request\r\n\r\nnope";
        let mut r = &raw[..];
        let head = read_head(&mut r).unwrap();
        assert!(head.close);
        assert_eq!(read_body(&mut r, &head).unwrap(), b"nope");
        let raw = b"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK";
        let mut r = &raw[..];
        let head = read_head(&mut r).unwrap();
        assert!(read_body(&mut r, &head).unwrap().is_empty());
    }

    #[test]
    fn truncated_responses_are_closed_not_timeouts() {
        for raw in [&b""[..], b"HTTP/1.1 200 OK\r\nContent-", b"HTTP/1.1 200 OK\r\n"] {
            let mut r = raw;
            assert!(matches!(read_head(&mut r), Err(Fail::Closed(_))), "{raw:?}");
        }
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort";
        let mut r = &raw[..];
        let head = read_head(&mut r).unwrap();
        assert!(matches!(read_body(&mut r, &head), Err(Fail::Closed(_))));
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab";
        let mut r = &raw[..];
        let head = read_head(&mut r).unwrap();
        assert!(matches!(read_body(&mut r, &head), Err(Fail::Closed(_))));
    }

    #[test]
    fn malformed_responses_are_protocol_errors() {
        let cases: [&[u8]; 4] = [
            b"SSH-2.0-OpenSSH\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        ];
        for raw in cases {
            let mut r = raw;
            let got = read_head(&mut r).and_then(|h| read_body(&mut r, &h));
            assert!(matches!(got, Err(Fail::Protocol(_))), "{:?}: {got:?}", String::from_utf8_lossy(raw));
        }
    }

    #[test]
    fn io_errors_by_kind() {
        let e = io::Error::new(io::ErrorKind::WouldBlock, "x");
        assert!(matches!(Fail::from_io(&e, "r"), Fail::Timeout(_)));
        let e = io::Error::new(io::ErrorKind::ConnectionReset, "x");
        assert!(matches!(Fail::from_io(&e, "r"), Fail::Closed(_)));
        let e = io::Error::new(io::ErrorKind::ConnectionRefused, "x");
        assert!(matches!(Fail::from_io(&e, "r"), Fail::Io(_)));
    }

    #[test]
    fn stream_split_at_every_offset() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwxyz\r\n0\r\n\r\n";
        for cut in 1..raw.len() {
            // A reader of capacity `cut` hands the parser `cut` bytes at a time.
            let mut r = BufReader::with_capacity(cut, &raw[..]);
            let head = read_head(&mut r).unwrap();
            assert_eq!(read_body(&mut r, &head).unwrap(), b"wxyz", "cut {cut}");
        }
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate("abc", 5), "abc");
        assert_eq!(truncate("ééé", 3), "é...");
    }
}
