//! Tests of the HTTP layer over real loopback sockets: the request cycle,
//! the bounds, streams, and answers from other threads.

use super::*;
use parking_lot::Mutex;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Echoes the request (method, path, body length) unless the path says
/// otherwise: `/later` answers from another thread after 50 ms, `/drop`
/// drops its responder, `/stream` opens a stream kept in `streams`.
struct Echo {
    streams: Mutex<Vec<Stream>>,
    closed: Arc<AtomicUsize>,
    seen: AtomicUsize,
}

impl Handler for Echo {
    fn body_limit(&self, _: &Head) -> usize {
        1024
    }

    fn handle(&self, req: Request, res: Responder) {
        self.seen.fetch_add(1, Ordering::Relaxed);
        let text = format!("{} {} {}", req.method(), req.path(), req.body.len());
        match req.path() {
            "/later" => {
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(50));
                    res.send(Response::new(200, "text/plain", text.into_bytes()));
                });
            }
            "/drop" => drop(res),
            "/stream" => {
                let opts = StreamOpts { keepalive: None, max_backlog: 64 * 1024, ..StreamOpts::default() };
                let s = res.stream(200, &[("Content-Type", "text/event-stream".into())], opts);
                let closed = self.closed.clone();
                s.on_close(Box::new(move || {
                    closed.fetch_add(1, Ordering::Relaxed);
                }));
                let _ = s.send(b"data: hello\n\n");
                self.streams.lock().push(s);
            }
            _ => res.send(Response::new(200, "text/plain", text.into_bytes())),
        }
    }
}

fn start(limits: Limits) -> (Server, Arc<Echo>) {
    let h = Arc::new(Echo { streams: Mutex::new(Vec::new()), closed: Arc::default(), seen: AtomicUsize::new(0) });
    let server = bind("127.0.0.1:0").expect("bind").serve("test", limits, None, h.clone()).expect("serve");
    (server, h)
}

fn connect(s: &Server) -> TcpStream {
    let c = TcpStream::connect(s.addr).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    c
}

/// Reads one response with a Content-Length body; returns (status line, body).
fn read_response(c: &mut TcpStream) -> (String, String) {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match c.read(&mut byte) {
            Ok(1) => buf.push(byte[0]),
            other => panic!("connection ended in a head ({other:?}): {:?}", String::from_utf8_lossy(&buf)),
        }
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let len: usize =
        head.lines().find_map(|l| l.strip_prefix("Content-Length: ")).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
    let mut body = vec![0u8; len];
    c.read_exact(&mut body).expect("body");
    (head.lines().next().unwrap_or("").to_owned(), String::from_utf8_lossy(&body).into_owned())
}

fn closed(c: &mut TcpStream) -> bool {
    let mut b = [0u8; 64];
    matches!(c.read(&mut b), Ok(0) | Err(_))
}

#[test]
fn keep_alive_and_pipelined_requests_are_answered_in_order() {
    let (s, _) = start(Limits::default());
    let mut c = connect(&s);
    c.write_all(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n").expect("write");
    assert_eq!(read_response(&mut c), ("HTTP/1.1 200 OK".into(), "GET /a 0".into()));
    // Three at once, the first answered late from another thread.
    c.write_all(b"POST /later HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /b HTTP/1.1\r\nHost: x\r\n\r\nGET /c HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("write");
    assert_eq!(read_response(&mut c).1, "POST /later 3");
    assert_eq!(read_response(&mut c).1, "GET /b 0");
    assert_eq!(read_response(&mut c).1, "GET /c 0");
}

#[test]
fn bodies_chunked_continue_and_limits() {
    let (s, _) = start(Limits::default());
    let mut c = connect(&s);
    c.write_all(b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
        .expect("write");
    assert_eq!(read_response(&mut c).1, "POST /x 5");
    c.write_all(b"POST /x HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n").expect("write");
    let mut cont = [0u8; 25];
    c.read_exact(&mut cont).expect("100 Continue");
    assert_eq!(&cont, b"HTTP/1.1 100 Continue\r\n\r\n");
    c.write_all(b"wxyz").expect("write");
    assert_eq!(read_response(&mut c).1, "POST /x 4");
    // Over the limit: read through and thrown away (for its JSON-RPC id),
    // then refused; the connection closes.
    c.write_all(b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n").expect("write");
    c.write_all(&[b' '; 2000]).expect("write");
    assert!(read_response(&mut c).0.starts_with("HTTP/1.1 413"));
    assert!(closed(&mut c), "a refused request closes the connection");
    // Past 64 MiB it is refused at once, unread.
    let mut c = connect(&s);
    c.write_all(b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 70000000\r\n\r\n").expect("write");
    assert!(read_response(&mut c).0.starts_with("HTTP/1.1 413"));
    let mut c = connect(&s);
    c.write_all(format!("GET / HTTP/1.1\r\nHost: x\r\nX: {}\r\n\r\n", "a".repeat(40_000)).as_bytes()).expect("write");
    assert!(read_response(&mut c).0.starts_with("HTTP/1.1 431"));
    let mut c = connect(&s);
    c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n")
        .expect("write");
    assert!(read_response(&mut c).0.starts_with("HTTP/1.1 400"));
}

#[test]
fn a_dropped_responder_still_answers() {
    let (s, _) = start(Limits::default());
    let mut c = connect(&s);
    c.write_all(b"GET /drop HTTP/1.1\r\nHost: x\r\n\r\n").expect("write");
    assert!(read_response(&mut c).0.starts_with("HTTP/1.1 500"));
    c.write_all(b"GET /after HTTP/1.1\r\nHost: x\r\n\r\n").expect("write");
    assert_eq!(read_response(&mut c).1, "GET /after 0");
}

#[test]
fn slow_heads_and_idle_connections_are_closed() {
    let limits = Limits {
        head_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_millis(600),
        ..Limits::default()
    };
    let (s, _) = start(limits);
    let mut slow = connect(&s);
    slow.write_all(b"GET / HTTP/1.1\r\n").expect("write");
    let mut idle = connect(&s);
    let t = Instant::now();
    assert!(closed(&mut slow));
    assert!(t.elapsed() < Duration::from_secs(3), "closed after {:?}", t.elapsed());
    assert!(closed(&mut idle));
    assert!(t.elapsed() < Duration::from_secs(4));
}

#[test]
fn at_the_bound_idle_connections_make_room_and_busy_ones_are_kept() {
    let (s, h) = start(Limits { max_connections: 2, ..Limits::default() });
    let mut streaming = connect(&s);
    streaming.write_all(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n").expect("write");
    let mut first = [0u8; 16];
    streaming.read_exact(&mut first).expect("stream head");
    let mut idle = connect(&s);
    idle.write_all(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n").expect("write");
    read_response(&mut idle);
    // A third connection: the idle one goes, the stream stays.
    let mut third = connect(&s);
    third.write_all(b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n").expect("write");
    assert_eq!(read_response(&mut third).1, "GET /b 0");
    assert!(closed(&mut idle));
    assert_eq!(h.closed.load(Ordering::Relaxed), 0, "the stream is still open");
    // With only busy connections, a newcomer is refused with 503.
    let mut fourth_stream = connect(&s);
    drop(third);
    fourth_stream.write_all(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n").expect("write");
    fourth_stream.read_exact(&mut first).expect("second stream head");
    let mut refused = connect(&s);
    assert!(read_response(&mut refused).0.starts_with("HTTP/1.1 503"));
}

#[test]
fn a_stream_sees_its_client_leave_at_once() {
    let (s, h) = start(Limits::default());
    let mut c = connect(&s);
    c.write_all(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n").expect("write");
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    while !String::from_utf8_lossy(&got).contains("hello") {
        let n = c.read(&mut buf).expect("read");
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got);
    assert!(text.contains("Transfer-Encoding: chunked") && text.contains("\r\nd\r\ndata: hello\n\n\r\n"), "{text}");
    drop(c);
    let t = Instant::now();
    while h.closed.load(Ordering::Relaxed) == 0 {
        assert!(t.elapsed() < Duration::from_secs(2), "close hook not run");
        std::thread::sleep(Duration::from_millis(5));
    }
    let stream = h.streams.lock().pop().expect("stream");
    assert!(!stream.is_open());
    assert!(stream.send(b"x").is_err());
}

#[test]
fn a_stream_whose_client_stops_reading_is_closed_at_its_bound() {
    let (s, h) = start(Limits::default());
    let mut c = connect(&s);
    c.write_all(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n").expect("write");
    let t = Instant::now();
    while h.streams.lock().is_empty() {
        assert!(t.elapsed() < Duration::from_secs(2));
        std::thread::sleep(Duration::from_millis(5));
    }
    let stream = h.streams.lock().pop().expect("stream");
    let chunk = vec![b'x'; 64 * 1024];
    let mut sent = 0;
    while stream.send(&chunk).is_ok() {
        sent += chunk.len();
        assert!(sent < 64 << 20, "the backlog bound never hit");
    }
    assert!(!stream.is_open());
}

#[test]
fn large_bodies_are_served_off_the_reactor() {
    struct Big;
    impl Handler for Big {
        fn body_limit(&self, _: &Head) -> usize {
            1 << 20
        }
        fn handle(&self, req: Request, res: Responder) {
            let on = std::thread::current().name().unwrap_or("").to_owned();
            res.send(Response::new(200, "text/plain", format!("{} {on}", req.body.len()).into_bytes()));
        }
    }
    let limits = Limits { large_body: 1000, ..Limits::default() };
    let s = bind("127.0.0.1:0").expect("bind").serve("big", limits, None, Arc::new(Big)).expect("serve");
    let mut c = connect(&s);
    c.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789").expect("write");
    assert_eq!(read_response(&mut c).1, "10 big-io");
    let body = vec![b'a'; 5000];
    c.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n").expect("write");
    c.write_all(&body).expect("write");
    assert!(read_response(&mut c).1.starts_with("5000 big-work:"));
}

#[test]
fn tls_connections_are_served() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls");
    let cfg = tls::load("test.tls", &dir.join("cert.pem"), &dir.join("key.pem")).expect("tls");
    let h = Arc::new(Echo { streams: Mutex::new(Vec::new()), closed: Arc::default(), seen: AtomicUsize::new(0) });
    let s = bind("127.0.0.1:0").expect("bind").serve("tls", Limits::default(), Some(cfg), h).expect("serve");
    let ca = std::fs::read_to_string(dir.join("ca.pem")).expect("ca");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::Specific(Arc::new(vec![ureq::tls::Certificate::from_pem(
                    ca.as_bytes(),
                )
                .expect("pem")
                .to_owned()])))
                .build(),
        )
        .build()
        .into();
    for i in 0..3 {
        let mut r = agent.get(&format!("https://localhost:{}/t{i}", s.addr.port())).call().expect("https call");
        assert_eq!(r.body_mut().read_to_string().expect("body"), format!("GET /t{i} 0"));
    }
}
