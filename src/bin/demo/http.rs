//! The two HTTP transports: legacy HTTP+SSE (`GET /sse` + `POST /messages/`)
//! and Streamable HTTP (`/mcp`), on tiny_http with one thread per request.
//!
//! Event streams bypass tiny_http's response writer (it buffers 8 KiB before
//! emitting a chunk): we take the raw writer, send the head ourselves and
//! frame every event as one HTTP chunk, flushed at once. Chunked framing (not
//! a close-delimited body) because tiny_http keeps the connection open for
//! the next request, so the client would never see the body end.

use crate::server::{handle, run_effects, spawn, Server, Session, Sink};
use crossbeam_channel::{unbounded, Receiver, RecvTimeoutError};
use mcp_sentinel::codec::jsonrpc::{code, parse_one, ErrorObj, Id, Message};
use mcp_sentinel::codec::sse::{encode_comment, encode_event};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::Duration;
use tiny_http::{Header, Method, Request, Response};

const KEEP_ALIVE: Duration = Duration::from_secs(15);
const MAX_BODY: u64 = 4 << 20;

/// Legacy sessions: the session state and the queue its `GET /sse` drains.
type SseSessions = Mutex<HashMap<String, (Arc<Session>, crossbeam_channel::Sender<Message>)>>;

fn bind(addr: &str) -> io::Result<tiny_http::Server> {
    let server = tiny_http::Server::http(addr).map_err(io::Error::other)?;
    // Tests bind port 0 and read the real address from this line.
    match server.server_addr().to_ip() {
        Some(a) => eprintln!("listening on http://{a}"),
        None => eprintln!("listening on {addr}"),
    }
    Ok(server)
}

/// Serves legacy HTTP+SSE until the process is killed.
pub fn serve_sse(srv: Arc<Server>, addr: &str, mute: bool) -> io::Result<()> {
    let server = bind(addr)?;
    let sessions: Arc<SseSessions> = Arc::default();
    for rq in server.incoming_requests() {
        let (srv, sessions) = (srv.clone(), sessions.clone());
        spawn(move || sse_route(&srv, &sessions, rq, mute));
    }
    Ok(())
}

fn sse_route(srv: &Server, sessions: &SseSessions, mut rq: Request, mute: bool) {
    let (path, query) = rq.url().split_once('?').unwrap_or((rq.url(), ""));
    let (path, query) = (path.to_owned(), query.to_owned());
    match (rq.method(), path.as_str()) {
        (Method::Get, "/sse") => sse_stream(sessions, rq),
        (Method::Post, "/messages/" | "/messages") => {
            let sid = query.split('&').find_map(|kv| kv.strip_prefix("session_id="));
            let Some(sid) = sid else {
                return reply(rq, 400, "text/plain", "session_id is required");
            };
            let Some((sess, tx)) = sessions.lock().get(sid).cloned() else {
                return reply(rq, 404, "text/plain", "Could not find session");
            };
            let msg = match read_message(&mut rq) {
                Ok(m) => m,
                Err(e) => return reply(rq, 400, "application/json", &e),
            };
            reply(rq, 202, "text/plain", "Accepted");
            if !mute {
                let sink: Sink = Arc::new(move |m| drop(tx.send(m)));
                run_effects(&sess, handle(srv, &sess, msg), &sink);
            }
        }
        _ => reply(rq, 404, "text/plain", "Not Found"),
    }
}

/// Holds one legacy session open: the endpoint event, then its messages,
/// with a keep-alive comment whenever it has been idle for 15 s.
fn sse_stream(sessions: &SseSessions, rq: Request) {
    let sid = random_hex();
    let (tx, rx) = unbounded();
    sessions.lock().insert(sid.clone(), (Arc::new(Session::default()), tx));
    let mut w = rq.into_writer();
    let mut buf = Vec::new();
    encode_event(&mut buf, Some("endpoint"), None, &format!("/messages/?session_id={sid}"));
    let mut ok = write_head(&mut w, None).and_then(|()| chunk(&mut w, &buf)).is_ok();
    while ok {
        buf.clear();
        match rx.recv_timeout(KEEP_ALIVE) {
            Ok(m) => encode_event(&mut buf, Some("message"), None, &String::from_utf8_lossy(&m.to_bytes())),
            Err(RecvTimeoutError::Timeout) => encode_comment(&mut buf, "keep-alive"),
            Err(RecvTimeoutError::Disconnected) => break,
        }
        // A failed write means the client went away: forget the session.
        ok = chunk(&mut w, &buf).is_ok();
    }
    sessions.lock().remove(&sid);
    let _ = w.write_all(b"0\r\n\r\n").and_then(|()| w.flush());
}

/// Serves Streamable HTTP at `/mcp` until the process is killed.
pub fn serve_http(srv: Arc<Server>, addr: &str, mute: bool) -> io::Result<()> {
    let server = bind(addr)?;
    let sessions: Arc<Mutex<HashMap<String, Arc<Session>>>> = Arc::default();
    for rq in server.incoming_requests() {
        let (srv, sessions) = (srv.clone(), sessions.clone());
        spawn(move || http_route(&srv, &sessions, rq, mute));
    }
    Ok(())
}

fn http_route(srv: &Server, sessions: &Mutex<HashMap<String, Arc<Session>>>, mut rq: Request, mute: bool) {
    if rq.url().split('?').next() != Some("/mcp") {
        return reply(rq, 404, "text/plain", "Not Found");
    }
    let sid = rq.headers().iter().find(|h| h.field.equiv("Mcp-Session-Id")).map(|h| h.value.to_string());
    let method = rq.method().clone();
    if method == Method::Get {
        // No standalone stream: every server message rides on a POST response.
        let resp = with(Response::empty(405), "Allow", "POST, DELETE");
        return drop(rq.respond(resp));
    }
    if method != Method::Post && method != Method::Delete {
        return reply(rq, 405, "text/plain", "Method Not Allowed");
    }
    let msg = if method == Method::Post {
        match read_message(&mut rq) {
            Ok(m) => Some(m),
            Err(e) => return reply(rq, 400, "application/json", &e),
        }
    } else {
        None
    };
    if mute {
        // Hold the request forever: a backend that never answers.
        loop {
            std::thread::park();
        }
    }
    let is_init = matches!(&msg, Some(Message::Request { method, .. }) if method == "initialize");
    let (sid, sess) = if is_init {
        let sid = random_hex();
        let sess = Arc::new(Session::default());
        sessions.lock().insert(sid.clone(), sess.clone());
        (sid, sess)
    } else {
        let Some(sid) = sid else {
            let e = ErrorObj::new(code::INVALID_REQUEST, "Bad Request: Mcp-Session-Id header is required");
            return reply(rq, 400, "application/json", &body(&Message::error(None, e)));
        };
        let Some(sess) = sessions.lock().get(&sid).cloned() else {
            let e = ErrorObj::new(-32001, "Session not found");
            return reply(rq, 404, "application/json", &body(&Message::error(None, e)));
        };
        (sid, sess)
    };
    let Some(msg) = msg else {
        sessions.lock().remove(&sid);
        return reply(rq, 200, "text/plain", "");
    };
    let Message::Request { id, method, params } = msg else {
        // Notifications and the client's replies to our requests: no body.
        run_effects(&sess, handle(srv, &sess, msg), &(Arc::new(|_| {}) as Sink));
        return drop(rq.respond(Response::empty(202)));
    };
    // Stream when there is something besides the response to deliver:
    // progress, our own request to the client, or a list_changed.
    let tool = params.as_ref().and_then(|p| p.get("name")).and_then(|n| n.as_str());
    let streaming = method == "tools/call"
        && (params.as_ref().and_then(|p| p.pointer("/_meta/progressToken")).is_some()
            || matches!(tool, Some("ask_client" | "add_tool")));
    let (tx, rx) = unbounded();
    let sink: Sink = Arc::new(move |m| drop(tx.send(m)));
    let effects = handle(srv, &sess, Message::Request { id: id.clone(), method, params });
    run_effects(&sess, effects, &sink);
    // Background jobs hold their own clones; the channel disconnects when
    // they finish, which ends a cancelled call that never answers.
    drop(sink);
    if streaming {
        stream_response(rq, &sid, &id, &rx);
        return;
    }
    let answer = rx.iter().find(|m| is_response_to(m, &id));
    match answer {
        Some(m) => {
            let resp = with(Response::from_string(body(&m)), "Content-Type", "application/json");
            let resp = with(resp, "Mcp-Session-Id", &sid);
            let _ = rq.respond(resp);
        }
        None => drop(rq.respond(Response::empty(202))),
    }
}

/// One POST's SSE response: every message for it, closing after the response.
fn stream_response(rq: Request, sid: &str, id: &Id, rx: &Receiver<Message>) {
    let mut w = rq.into_writer();
    if write_head(&mut w, Some(sid)).is_err() {
        return;
    }
    let mut buf = Vec::new();
    for m in rx.iter() {
        buf.clear();
        encode_event(&mut buf, Some("message"), None, &body(&m));
        if chunk(&mut w, &buf).is_err() || is_response_to(&m, id) {
            break;
        }
    }
    let _ = w.write_all(b"0\r\n\r\n").and_then(|()| w.flush());
}

fn is_response_to(m: &Message, id: &Id) -> bool {
    matches!(m, Message::Response { id: i, .. } | Message::Error { id: Some(i), .. } if i == id)
}

fn write_head(w: &mut dyn Write, sid: Option<&str>) -> io::Result<()> {
    let mut head = String::from(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\
         X-Accel-Buffering: no\r\nTransfer-Encoding: chunked\r\n",
    );
    if let Some(sid) = sid {
        head.push_str(&format!("Mcp-Session-Id: {sid}\r\n"));
    }
    head.push_str("\r\n");
    w.write_all(head.as_bytes())?;
    w.flush()
}

/// Writes `data` as one HTTP/1.1 chunk and flushes it to the socket.
fn chunk(w: &mut dyn Write, data: &[u8]) -> io::Result<()> {
    write!(w, "{:x}\r\n", data.len())?;
    w.write_all(data)?;
    w.write_all(b"\r\n")?;
    w.flush()
}

/// Reads and parses one JSON-RPC message; `Err` is the JSON-RPC error body
/// to answer with.
fn read_message(rq: &mut Request) -> Result<Message, String> {
    let mut b = Vec::new();
    if let Err(e) = rq.as_reader().take(MAX_BODY).read_to_end(&mut b) {
        let e = ErrorObj::new(code::PARSE_ERROR, format!("Could not read body: {e}"));
        return Err(body(&Message::error(None, e)));
    }
    parse_one(&b).map_err(|(id, e)| body(&Message::error(id, e)))
}

fn body(m: &Message) -> String {
    String::from_utf8_lossy(&m.to_bytes()).into_owned()
}

/// Adds a header; ours are ASCII without CR/LF, so none is ever skipped.
fn with<R: Read>(resp: Response<R>, k: &str, v: &str) -> Response<R> {
    match Header::from_bytes(k, v) {
        Ok(h) => resp.with_header(h),
        Err(()) => resp,
    }
}

fn reply(rq: Request, status: u16, ctype: &str, text: &str) {
    let resp = with(Response::from_string(text).with_status_code(status), "Content-Type", ctype);
    let _ = rq.respond(resp);
}

/// 128 random bits as hex, from std's randomly keyed hasher (no rand crate).
fn random_hex() -> String {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut s = String::with_capacity(32);
    for _ in 0..2 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
        s.push_str(&format!("{:016x}", h.finish()));
    }
    s
}
