//! The two HTTP transports: legacy HTTP+SSE (`GET /sse` + `POST /messages/`)
//! and Streamable HTTP (`/mcp`), on the gateway's own HTTP layer
//! (`mcp_sentinel::http`), with one thread per request: the demo may block
//! while it works (slow tools, requests to the client), which the
//! listener's reactor must not.

use crate::server::{handle, run_effects, spawn, Server, Session, Sink};
use crossbeam_channel::{unbounded, Receiver, RecvTimeoutError};
use mcp_sentinel::codec::jsonrpc::{self, code, parse_one, ErrorObj, Id, Message};
use mcp_sentinel::codec::sse::{encode_comment, encode_event};
use mcp_sentinel::http::{self as web, Request, Responder, Response, StreamOpts};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::time::Duration;

const KEEP_ALIVE: Duration = Duration::from_secs(15);
const MAX_BODY: usize = 4 << 20;

/// Legacy sessions: the session state and the queue its `GET /sse` drains.
type SseSessions = Mutex<HashMap<String, (Arc<Session>, crossbeam_channel::Sender<Message>)>>;

/// Runs `route` on a thread of its own for every request.
struct Threaded<F>(Arc<F>);

impl<F: Fn(Request, Responder) + Send + Sync + 'static> web::Handler for Threaded<F> {
    fn body_limit(&self, _: &web::Head) -> usize {
        MAX_BODY
    }

    fn handle(&self, req: Request, res: Responder) {
        let f = self.0.clone();
        spawn(move || f(req, res));
    }
}

fn serve(addr: &str, route: impl Fn(Request, Responder) + Send + Sync + 'static) -> io::Result<()> {
    let bound = web::bind(addr).map_err(io::Error::other)?;
    // Tests bind port 0 and read the real address from this line.
    eprintln!("listening on http://{}", bound.addr);
    let limits = web::Limits { idle_timeout: Duration::from_secs(300), ..web::Limits::default() };
    let _server = bound.serve("demo", limits, None, Arc::new(Threaded(Arc::new(route)))).map_err(io::Error::other)?;
    // Serve until the process is killed.
    loop {
        std::thread::park();
    }
}

/// Serves legacy HTTP+SSE until the process is killed.
pub fn serve_sse(srv: Arc<Server>, addr: &str, mute: bool) -> io::Result<()> {
    let sessions: Arc<SseSessions> = Arc::default();
    serve(addr, move |rq, res| sse_route(&srv, &sessions, rq, res, mute))
}

fn sse_route(srv: &Server, sessions: &SseSessions, rq: Request, res: Responder, mute: bool) {
    match (rq.method(), rq.path()) {
        ("GET", "/sse") => sse_stream(sessions, res),
        ("POST", "/messages/" | "/messages") => {
            let Some(sid) = rq.query_param("session_id") else {
                return reply(res, 400, "text/plain", "session_id is required");
            };
            let Some((sess, tx)) = sessions.lock().get(sid).cloned() else {
                return reply(res, 404, "text/plain", "Could not find session");
            };
            let msg = match read_message(&rq) {
                Ok(m) => m,
                Err(e) => return reply(res, 400, "application/json", &e),
            };
            reply(res, 202, "text/plain", "Accepted");
            if !mute {
                let sink: Sink = Arc::new(move |m| drop(tx.send(m)));
                run_effects(&sess, handle(srv, &sess, msg), &sink);
            }
        }
        _ => reply(res, 404, "text/plain", "Not Found"),
    }
}

/// Holds one legacy session open: the endpoint event, then its messages,
/// with a keep-alive comment whenever it has been idle for 15 s.
fn sse_stream(sessions: &SseSessions, res: Responder) {
    let sid = random_hex();
    let (tx, rx) = unbounded();
    sessions.lock().insert(sid.clone(), (Arc::new(Session::default()), tx));
    let stream = res.stream(200, &sse_head(None), StreamOpts::default());
    let mut buf = Vec::new();
    encode_event(&mut buf, Some("endpoint"), None, &format!("/messages/?session_id={sid}"));
    let mut ok = stream.send(&buf).is_ok();
    while ok {
        buf.clear();
        match rx.recv_timeout(KEEP_ALIVE) {
            Ok(m) => encode_event(&mut buf, Some("message"), None, &String::from_utf8_lossy(&m.to_bytes())),
            Err(RecvTimeoutError::Timeout) => encode_comment(&mut buf, "keep-alive"),
            Err(RecvTimeoutError::Disconnected) => break,
        }
        // A failed write means the client went away: forget the session.
        ok = stream.send(&buf).is_ok();
    }
    sessions.lock().remove(&sid);
    stream.finish();
}

/// Serves Streamable HTTP at `/mcp` until the process is killed.
pub fn serve_http(srv: Arc<Server>, addr: &str, mute: bool) -> io::Result<()> {
    let sessions: Arc<Mutex<HashMap<String, Arc<Session>>>> = Arc::default();
    serve(addr, move |rq, res| http_route(&srv, &sessions, rq, res, mute))
}

fn http_route(srv: &Server, sessions: &Mutex<HashMap<String, Arc<Session>>>, rq: Request, res: Responder, mute: bool) {
    if rq.path() != "/mcp" {
        return reply(res, 404, "text/plain", "Not Found");
    }
    let sid = rq.header("Mcp-Session-Id").map(str::to_owned);
    let method = rq.method().to_owned();
    if method == "GET" {
        // No standalone stream: every server message rides on a POST response.
        return res.send(Response::empty(405).with_header("Allow", "POST, DELETE"));
    }
    if method != "POST" && method != "DELETE" {
        return reply(res, 405, "text/plain", "Method Not Allowed");
    }
    let msg = if method == "POST" {
        match read_message(&rq) {
            Ok(m) => Some(m),
            Err(e) => return reply(res, 400, "application/json", &e),
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
            return reply(res, 400, "application/json", &body(&Message::error(None, e)));
        };
        let Some(sess) = sessions.lock().get(&sid).cloned() else {
            let e = ErrorObj::new(-32001, "Session not found");
            return reply(res, 404, "application/json", &body(&Message::error(None, e)));
        };
        (sid, sess)
    };
    let Some(msg) = msg else {
        sessions.lock().remove(&sid);
        return reply(res, 200, "text/plain", "");
    };
    let Message::Request { id, method, params } = msg else {
        // Notifications and the client's replies to our requests: no body.
        run_effects(&sess, handle(srv, &sess, msg), &(Arc::new(|_| {}) as Sink));
        return res.send(Response::empty(202));
    };
    // Stream when there is something besides the response to deliver:
    // progress, our own request to the client, or a list_changed.
    let pv = params.as_deref().map(jsonrpc::value_of);
    let tool = pv.as_ref().and_then(|p| p.get("name")).and_then(|n| n.as_str());
    let streaming = method == "tools/call"
        && (pv.as_ref().and_then(|p| p.pointer("/_meta/progressToken")).is_some()
            || matches!(tool, Some("ask_client" | "add_tool")));
    let (tx, rx) = unbounded();
    let sink: Sink = Arc::new(move |m| drop(tx.send(m)));
    let effects = handle(srv, &sess, Message::Request { id: id.clone(), method, params });
    run_effects(&sess, effects, &sink);
    // Background jobs hold their own clones; the channel disconnects when
    // they finish, which ends a cancelled call that never answers.
    drop(sink);
    if streaming {
        stream_response(res, &sid, &id, &rx);
        return;
    }
    let answer = rx.iter().find(|m| is_response_to(m, &id));
    match answer {
        Some(m) => res.send(Response::json(200, body(&m).into_bytes()).with_header("Mcp-Session-Id", sid)),
        None => res.send(Response::empty(202)),
    }
}

/// One POST's SSE response: every message for it, closing after the response.
fn stream_response(res: Responder, sid: &str, id: &Id, rx: &Receiver<Message>) {
    let stream = res.stream(200, &sse_head(Some(sid)), StreamOpts::default());
    let mut buf = Vec::new();
    for m in rx.iter() {
        buf.clear();
        encode_event(&mut buf, Some("message"), None, &body(&m));
        if stream.send(&buf).is_err() || is_response_to(&m, id) {
            break;
        }
    }
    stream.finish();
}

fn is_response_to(m: &Message, id: &Id) -> bool {
    matches!(m, Message::Response { id: i, .. } | Message::Error { id: Some(i), .. } if i == id)
}

fn sse_head(sid: Option<&str>) -> Vec<(&'static str, String)> {
    let mut h = vec![
        ("Content-Type", "text/event-stream".to_owned()),
        ("Cache-Control", "no-cache".to_owned()),
        ("X-Accel-Buffering", "no".to_owned()),
    ];
    if let Some(sid) = sid {
        h.push(("Mcp-Session-Id", sid.to_owned()));
    }
    h
}

/// Parses one JSON-RPC message; `Err` is the JSON-RPC error body to answer with.
fn read_message(rq: &Request) -> Result<Message, String> {
    parse_one(&rq.body).map_err(|(id, e)| body(&Message::error(id, e)))
}

fn body(m: &Message) -> String {
    String::from_utf8_lossy(&m.to_bytes()).into_owned()
}

fn reply(res: Responder, status: u16, ctype: &str, text: &str) {
    res.send(Response::new(status, ctype, text.as_bytes().to_vec()));
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
