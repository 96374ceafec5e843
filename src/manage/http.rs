//! The management listener's own small HTTP/1.1 server: a thread per
//! connection (capped), keep-alive, bounded heads and bodies, and TLS with
//! rustls driven directly (tiny_http's `ssl-rustls` pins rustls 0.20). It
//! is separate from the data plane's tiny_http pool so that MCP traffic
//! cannot starve the control plane.
//!
//! Requests are parsed into [`Request`]; the API answers with a [`Reply`],
//! which is either a complete body or the event stream.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Largest request line plus headers.
const MAX_HEAD: u64 = 16 * 1024;
/// Largest request body (the API's bodies are empty or tiny).
pub const MAX_BODY: usize = 64 * 1024;
/// Most concurrent connections; more get a 503 and are closed.
pub const MAX_CONNECTIONS: usize = 64;
/// An idle keep-alive connection is closed after this.
const IDLE: Duration = Duration::from_secs(30);
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Default)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub remote: Option<SocketAddr>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn query_param(&self, key: &str) -> Option<&str> {
        self.query.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k == key).then_some(v)
        })
    }
}

pub enum Body {
    Bytes(Vec<u8>),
    /// `text/event-stream` of ring events with id > `after`.
    Events {
        after: u64,
    },
}

pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Body,
    /// Runs once the reply has been written (shutdown answers first).
    pub after: Option<Box<dyn FnOnce() + Send>>,
}

impl Reply {
    pub fn json(status: u16, body: Vec<u8>) -> Reply {
        Reply {
            status,
            headers: vec![("Content-Type", "application/json".into())],
            body: Body::Bytes(body),
            after: None,
        }
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }
}

/// What the server calls for each request.
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, req: &Request) -> Reply;
    /// Writes the event stream until the client leaves or the server stops.
    fn stream_events(&self, after: u64, write: &mut dyn FnMut(&[u8]) -> std::io::Result<()>);
    /// A reply for errors found before the handler runs (bad request
    /// line, body too large, too many connections).
    fn early_error(&self, status: u16, message: &str) -> Reply;
}

pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        413 => "Payload Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "",
    }
}

enum ReadError {
    /// Connection closed or timed out between requests: just close.
    Closed,
    /// Answer with this status and message, then close.
    Bad(u16, String),
}

/// Reads one request. `Closed` on a clean EOF before any byte.
fn read_request<S: Read + Write>(r: &mut BufReader<S>) -> Result<Request, ReadError> {
    let mut head = Vec::with_capacity(512);
    let mut lines: Vec<String> = Vec::new();
    loop {
        head.clear();
        let budget = MAX_HEAD.saturating_sub(lines.iter().map(|l| l.len() as u64 + 2).sum());
        let n = (&mut *r).take(budget).read_until(b'\n', &mut head).map_err(|_| ReadError::Closed)?;
        if n == 0 {
            return if lines.is_empty() {
                Err(ReadError::Closed)
            } else {
                Err(ReadError::Bad(400, "incomplete request head".into()))
            };
        }
        if !head.ends_with(b"\n") {
            return Err(ReadError::Bad(400, "request head too large".into()));
        }
        let line = String::from_utf8_lossy(&head).trim_end_matches(['\r', '\n']).to_owned();
        if line.is_empty() {
            if lines.is_empty() {
                continue; // tolerate a stray CRLF between requests
            }
            break;
        }
        lines.push(line);
    }
    let mut parts = lines[0].split(' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ReadError::Bad(400, "malformed request line".into()));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(ReadError::Bad(400, format!("unsupported protocol {version}")));
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut req =
        Request { method: method.to_owned(), path: path.to_owned(), query: query.to_owned(), ..Request::default() };
    if version == "HTTP/1.0" {
        req.headers.push(("x-http-1-0".into(), "1".into()));
    }
    for l in &lines[1..] {
        let Some((k, v)) = l.split_once(':') else {
            return Err(ReadError::Bad(400, "malformed header line".into()));
        };
        req.headers.push((k.trim().to_owned(), v.trim().to_owned()));
    }
    if req.header("Transfer-Encoding").is_some_and(|v| !v.eq_ignore_ascii_case("identity")) {
        return Err(ReadError::Bad(400, "chunked request bodies are not supported; send Content-Length".into()));
    }
    let len = match req.header("Content-Length") {
        None => 0,
        Some(v) => v.parse::<usize>().map_err(|_| ReadError::Bad(400, "invalid Content-Length".into()))?,
    };
    if len > MAX_BODY {
        return Err(ReadError::Bad(413, format!("request body exceeds {MAX_BODY} bytes")));
    }
    if len > 0 {
        if req.header("Expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
            let w = r.get_mut();
            w.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").map_err(|_| ReadError::Closed)?;
            w.flush().map_err(|_| ReadError::Closed)?;
        }
        req.body = vec![0; len];
        r.read_exact(&mut req.body).map_err(|_| ReadError::Closed)?;
    }
    Ok(req)
}

fn wants_close(req: &Request) -> bool {
    match req.header("Connection") {
        Some(v) if v.eq_ignore_ascii_case("close") => true,
        Some(v) if v.eq_ignore_ascii_case("keep-alive") => false,
        _ => req.header("x-http-1-0").is_some(),
    }
}

/// Writes a complete reply. `close` adds `Connection: close`.
pub fn write_reply<W: Write>(w: &mut W, reply: &Reply, body: &[u8], close: bool) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {} {}\r\n", reply.status, reason(reply.status));
    for (k, v) in &reply.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\nCache-Control: no-store\r\n", body.len()));
    if close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    w.write_all(&out)?;
    w.flush()
}

/// Serves one connection until it closes, errs or asks to close.
fn serve_conn<S: Read + Write>(stream: S, remote: Option<SocketAddr>, handler: &dyn Handler, stop: &AtomicBool) {
    let mut r = BufReader::with_capacity(4096, stream);
    loop {
        let req = match read_request(&mut r) {
            Ok(mut req) => {
                req.remote = remote;
                req
            }
            Err(ReadError::Closed) => return,
            Err(ReadError::Bad(status, msg)) => {
                let reply = handler.early_error(status, &msg);
                if let Body::Bytes(b) = &reply.body {
                    let _ = write_reply(r.get_mut(), &reply, b, true);
                }
                return;
            }
        };
        let close = wants_close(&req) || stop.load(Ordering::Relaxed);
        let mut reply = handler.handle(&req);
        match std::mem::replace(&mut reply.body, Body::Bytes(Vec::new())) {
            Body::Bytes(b) => {
                let ok = write_reply(r.get_mut(), &reply, &b, close).is_ok();
                if let Some(after) = reply.after.take() {
                    after();
                }
                if !ok || close {
                    return;
                }
            }
            Body::Events { after } => {
                // Close-delimited: the stream ends when either side closes.
                let mut head = format!("HTTP/1.1 {} {}\r\n", reply.status, reason(reply.status));
                for (k, v) in &reply.headers {
                    head.push_str(&format!("{k}: {v}\r\n"));
                }
                head.push_str("Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\nConnection: close\r\n\r\n");
                let w = r.get_mut();
                if w.write_all(head.as_bytes()).and_then(|_| w.flush()).is_err() {
                    return;
                }
                handler.stream_events(after, &mut |bytes| {
                    w.write_all(bytes)?;
                    w.flush()
                });
                return;
            }
        }
    }
}

/// A bound listener, not yet accepting (the port is known before the
/// handler is built: the default token file is named after it).
pub struct Bound {
    listener: TcpListener,
    pub addr: SocketAddr,
}

pub fn bind(listen: &str) -> Result<Bound, String> {
    let listener = TcpListener::bind(listen).map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let addr = listener.local_addr().map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    Ok(Bound { listener, addr })
}

pub struct Server {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl Server {
    /// Starts the accept thread on a bound listener.
    pub fn start(
        bound: Bound,
        tls: Option<Arc<rustls::ServerConfig>>,
        handler: Arc<dyn Handler>,
    ) -> Result<Server, String> {
        let Bound { listener, addr } = bound;
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        crate::thread::spawn("manage-accept".into(), move || {
            accept_loop(listener, tls, handler, stop2);
            Ok(())
        })
        .map_err(|e| format!("cannot start the management listener thread: {e}"))?;
        Ok(Server { addr, stop })
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the blocking accept().
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

fn accept_loop(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    handler: Arc<dyn Handler>,
    stop: Arc<AtomicBool>,
) {
    let active = Arc::new(AtomicUsize::new(0));
    for conn in listener.incoming() {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let stream = match conn {
            Ok(s) => s,
            Err(e) => {
                log::warn!("management listener: accept failed: {e}");
                // Back off briefly on e.g. EMFILE rather than spin.
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let remote = stream.peer_addr().ok();
        let _ = stream.set_read_timeout(Some(IDLE));
        let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
        let _ = stream.set_nodelay(true);
        if active.fetch_add(1, Ordering::AcqRel) >= MAX_CONNECTIONS {
            active.fetch_sub(1, Ordering::AcqRel);
            refuse(stream, tls.as_ref(), handler.as_ref());
            continue;
        }
        let (h, stop, active2, tls) = (handler.clone(), stop.clone(), active.clone(), tls.clone());
        let spawned = crate::thread::spawn("manage-conn".into(), move || {
            match tls {
                Some(cfg) => match rustls::ServerConnection::new(cfg) {
                    Ok(conn) => serve_conn(rustls::StreamOwned::new(conn, stream), remote, h.as_ref(), &stop),
                    Err(e) => log::warn!("management listener: TLS setup failed: {e}"),
                },
                None => serve_conn(stream, remote, h.as_ref(), &stop),
            }
            active2.fetch_sub(1, Ordering::AcqRel);
            Ok(())
        });
        if let Err(e) = spawned {
            active.fetch_sub(1, Ordering::AcqRel);
            log::warn!("management listener: cannot start a connection thread: {e}");
        }
    }
}

/// Over the connection cap: a 503 on plain HTTP; a TLS client would need a
/// handshake first, so it is just closed.
fn refuse(mut stream: TcpStream, tls: Option<&Arc<rustls::ServerConfig>>, handler: &dyn Handler) {
    if tls.is_none() {
        let reply = handler.early_error(503, "too many management connections");
        if let Body::Bytes(b) = &reply.body {
            let _ = write_reply(&mut stream, &reply, b, true);
        }
    }
}

/// Builds the rustls server config from PEM files (certificate chain and
/// PKCS#8, PKCS#1 or SEC1 key). Errors name the file.
pub fn load_tls(cert: &std::path::Path, key: &std::path::Path) -> Result<Arc<rustls::ServerConfig>, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("manage.tls.cert {}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("manage.tls.cert {}: no certificate found", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("manage.tls.key {}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("manage.tls: certificate and key do not work together: {e}"))?;
    Ok(Arc::new(cfg))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// An in-memory duplex: reads from `input`, collects writes.
    struct Duplex {
        input: Cursor<Vec<u8>>,
        output: Vec<u8>,
    }
    impl Read for Duplex {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.input.read(buf)
        }
    }
    impl Write for Duplex {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.output.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn reader(text: &[u8]) -> BufReader<Duplex> {
        BufReader::new(Duplex { input: Cursor::new(text.to_vec()), output: Vec::new() })
    }

    #[test]
    fn parses_requests_back_to_back() {
        let mut r = reader(
            b"GET /manage/v1/events?after=3&limit=2 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\n\r\n\
              POST /manage/v1/reload HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}",
        );
        let a = read_request(&mut r).ok().expect("first");
        assert_eq!((a.method.as_str(), a.path.as_str()), ("GET", "/manage/v1/events"));
        assert_eq!(a.query_param("after"), Some("3"));
        assert_eq!(a.query_param("limit"), Some("2"));
        assert_eq!(a.header("authorization"), Some("Bearer t"));
        assert!(!wants_close(&a));
        let b = read_request(&mut r).ok().expect("second");
        assert_eq!(b.body, b"{}");
        assert!(matches!(read_request(&mut r), Err(ReadError::Closed)));
    }

    #[test]
    fn refuses_what_it_cannot_bound() {
        let big = format!("POST /x HTTP/1.1\r\nContent-Length: {}\r\n\r\n", MAX_BODY + 1);
        assert!(matches!(read_request(&mut reader(big.as_bytes())), Err(ReadError::Bad(413, _))));
        let chunked = b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert!(matches!(read_request(&mut reader(chunked)), Err(ReadError::Bad(400, _))));
        let long_head = format!("GET /x HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(MAX_HEAD as usize));
        assert!(matches!(read_request(&mut reader(long_head.as_bytes())), Err(ReadError::Bad(400, _))));
        assert!(matches!(read_request(&mut reader(b"GARBAGE\r\n\r\n")), Err(ReadError::Bad(400, _))));
        assert!(matches!(read_request(&mut reader(b"GET /x SPDY/3\r\n\r\n")), Err(ReadError::Bad(400, _))));
        assert!(matches!(read_request(&mut reader(b"GET /x HTTP/1.1\r\nHost")), Err(ReadError::Bad(400, _))));
    }

    #[test]
    fn expect_continue_is_answered_before_the_body() {
        let mut r = reader(b"POST /x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nz");
        let req = read_request(&mut r).ok().expect("request");
        assert_eq!(req.body, b"z");
        assert_eq!(r.get_ref().output, b"HTTP/1.1 100 Continue\r\n\r\n");
    }

    #[test]
    fn replies_carry_length_and_close() {
        let mut out = Vec::new();
        let reply = Reply::json(404, Vec::new()).with_header("X-A", "b");
        write_reply(&mut out, &reply, b"{}", true).expect("write");
        let text = String::from_utf8(out).expect("utf8");
        assert!(text.starts_with("HTTP/1.1 404 Not Found\r\n"), "{text}");
        assert!(text.contains("Content-Length: 2\r\n") && text.contains("Connection: close\r\n"));
        assert!(text.contains("X-A: b\r\n") && text.ends_with("\r\n\r\n{}"));
    }
}
