//! Streamable HTTP (2025-03-26, 2025-06-18, 2025-11-25) at `/mcp`.
//!
//! - `POST`: one message (or, under 2025-03-26 only, a batch). Requests
//!   get `application/json`, or `text/event-stream` once the backend sends
//!   progress the client asked for; notifications and responses get 202
//!   with no body. A forwarded call holds no thread while the backend
//!   works: its `HttpCall` is the call's sink, and whoever learns the
//!   outcome writes the response.
//! - `GET`: the session's stream for unsolicited messages (list_changed),
//!   one per session.
//! - `DELETE`: ends the session.
//!
//! `initialize` creates the session and returns `Mcp-Session-Id`; later
//! requests without it get 400, with an unknown one 404 (the client then
//! re-initializes). `MCP-Protocol-Version` is validated: unsupported → 400,
//! a stateless revision (2026-07-28 or later) → 400 with error -32022.

use super::dispatch::{self, Handled};
use super::sse::create_error;
use super::{body_error, json_body, json_error, json_response, sse_headers, stream_opts};
use crate::backend::{ReplyTo, Sink};
use crate::codec::jsonrpc::{self, Parsed};
use crate::codec::mcp::{self, method};
use crate::codec::{code, ErrorObj, Id, Message};
use crate::http::{Request, Responder, Response, Stream, StreamOpts};
use crate::runtime::Runtime;
use crate::session::{Session, Transport};
use parking_lot::Mutex;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

pub fn handle(rt: &Arc<Runtime>, req: Request, res: Responder) {
    match req.method() {
        "POST" => post(rt, req, res),
        "GET" => get(rt, req, res),
        "DELETE" => delete(rt, req, res),
        _ => {
            let r = json_error(405, None, ErrorObj::new(code::INVALID_REQUEST, "use POST, GET or DELETE"));
            res.send(r.with_header("Allow", "GET, POST, DELETE"));
        }
    }
}

/// The error a dual-era client recognizes and falls back from.
fn unsupported_version(v: &str) -> Response {
    json_error(
        400,
        None,
        ErrorObj::new(
            code::UNSUPPORTED_PROTOCOL_VERSION,
            format!("protocol version {v} is not supported; this server speaks the session-based revisions"),
        )
        .with_data(json!({ "supported": mcp::SUPPORTED_VERSIONS, "requested": v })),
    )
}

/// Validates `MCP-Protocol-Version`; `Err` is the response to send.
fn version_header(req: &Request) -> Result<Option<String>, Response> {
    let Some(v) = req.header("MCP-Protocol-Version") else {
        return Ok(None);
    };
    let v = v.trim();
    if mcp::is_stateless(v) {
        return Err(unsupported_version(v));
    }
    if !mcp::is_supported(v) {
        return Err(json_error(
            400,
            None,
            ErrorObj::new(
                code::INVALID_REQUEST,
                format!("unsupported MCP-Protocol-Version {:?}", crate::util::printable(v, 40)),
            )
            .with_data(json!({ "supported": mcp::SUPPORTED_VERSIONS })),
        ));
    }
    Ok(Some(v.to_owned()))
}

/// The session named by `Mcp-Session-Id`; `Err` is the response to send
/// (400 when absent, 404 when unknown or expired).
fn session_of(rt: &Runtime, req: &Request, version: Option<&str>) -> Result<Arc<Session>, Response> {
    let Some(sid) = req.header("Mcp-Session-Id") else {
        return Err(json_error(
            400,
            None,
            ErrorObj::new(code::INVALID_REQUEST, "Mcp-Session-Id header is required (send initialize first)"),
        ));
    };
    let Some(s) = rt.sessions.get(sid.trim()).filter(|s| s.transport == Transport::Streamable) else {
        return Err(json_error(404, None, ErrorObj::new(code::INVALID_REQUEST, "unknown or expired session")));
    };
    if let Some(v) = version {
        let negotiated = s.version();
        if v != negotiated {
            return Err(json_error(
                400,
                None,
                ErrorObj::new(
                    code::INVALID_REQUEST,
                    format!("MCP-Protocol-Version {v} does not match the negotiated {negotiated}"),
                ),
            ));
        }
    }
    s.touch();
    Ok(s)
}

fn accepts(req: &Request, what: &str) -> bool {
    match req.header("Accept") {
        None => true,
        Some(a) => {
            let a = a.to_ascii_lowercase();
            a.contains(what) || a.contains("*/*")
        }
    }
}

fn post(rt: &Arc<Runtime>, req: Request, res: Responder) {
    let version = match version_header(&req) {
        Ok(v) => v,
        Err(r) => return res.send(r),
    };
    if !accepts(&req, "application/json") && !accepts(&req, "text/event-stream") {
        return res.send(json_error(
            406,
            None,
            ErrorObj::new(code::INVALID_REQUEST, "Accept must include application/json and text/event-stream"),
        ));
    }
    let body = match json_body(&req) {
        Ok(b) => b,
        Err(e) => return res.send(body_error(e)),
    };
    match jsonrpc::parse(body) {
        Err(e) | Ok(Parsed::Single(Err(e))) => res.send(json_error(400, None, e)),
        Ok(Parsed::Single(Ok(msg))) => single(rt, &req, res, msg, version.as_deref()),
        Ok(Parsed::Batch(items)) => batch(rt, &req, res, items, version.as_deref()),
    }
}

fn single(rt: &Arc<Runtime>, req: &Request, res: Responder, msg: Message, version: Option<&str>) {
    if msg.method() == Some(method::INITIALIZE) {
        return initialize(rt, res, msg);
    }
    if msg.method() == Some("server/discover") && req.header("Mcp-Session-Id").is_none() {
        // A 2026-era probe: tell it which revisions we serve.
        return res.send(unsupported_version(version.unwrap_or(mcp::FIRST_STATELESS)));
    }
    let session = match session_of(rt, req, version) {
        Ok(s) => s,
        Err(r) => return res.send(r),
    };
    match dispatch::handle(rt, &session, msg) {
        Handled::Now(m) => res.send(json_response(200, m.to_bytes())),
        Handled::Nothing => res.send(Response::empty(202)),
        Handled::Forward(f) => {
            let call = Arc::new(HttpCall {
                session: Arc::downgrade(&session),
                client_id: f.client_id.clone(),
                wants_progress: f.wants_progress,
                opts: stream_opts(rt),
                state: Mutex::new(CallState::Waiting(res)),
            });
            if let Err(answer) = f.send(&session, Sink::Reply(call.clone())) {
                call.finish(&answer);
            }
        }
    }
}

fn initialize(rt: &Arc<Runtime>, res: Responder, msg: Message) {
    let session = match rt.sessions.create(Transport::Streamable, mcp::DEFAULT_HTTP_VERSION) {
        Ok(s) => s,
        Err(e) => return res.send(create_error(&e)),
    };
    match dispatch::handle(rt, &session, msg) {
        Handled::Now(m) => res.send(json_response(200, m.to_bytes()).with_header("Mcp-Session-Id", &*session.id)),
        _ => {
            // initialize is always answered by the gateway itself.
            rt.sessions.remove(&session.id);
            res.send(json_error(500, None, ErrorObj::new(code::INTERNAL_ERROR, "initialize failed")));
        }
    }
}

fn answer(client_id: Id, r: Result<Box<RawValue>, ErrorObj>) -> Message {
    match r {
        Ok(result) => Message::Response { id: client_id, result },
        Err(error) => Message::Error { id: Some(client_id), error },
    }
}

fn sse_event(m: &Message) -> Vec<u8> {
    let mut buf = Vec::with_capacity(256);
    crate::codec::sse::encode_event_bytes(&mut buf, Some("message"), None, &m.to_bytes());
    buf
}

/// A forwarded call's HTTP request, waiting for the backend: answered as
/// JSON, or as an SSE stream once progress arrives for a client that asked
/// for it.
struct HttpCall {
    session: Weak<Session>,
    client_id: Id,
    wants_progress: bool,
    opts: StreamOpts,
    state: Mutex<CallState>,
}

enum CallState {
    Waiting(Responder),
    Streaming(Stream),
    Done,
}

impl HttpCall {
    /// Writes the final message and ends the request.
    fn finish(&self, m: &Message) {
        let state = std::mem::replace(&mut *self.state.lock(), CallState::Done);
        match state {
            CallState::Waiting(res) => res.send(json_response(200, m.to_bytes())),
            CallState::Streaming(s) => {
                if s.send(&sse_event(m)).is_ok() {
                    s.finish();
                }
            }
            CallState::Done => {}
        }
    }
}

impl ReplyTo for HttpCall {
    fn progress(&self, params: Value) {
        if !self.wants_progress {
            return;
        }
        let event = sse_event(&Message::notification(method::PROGRESS, Some(params)));
        let mut st = self.state.lock();
        let stream = match std::mem::replace(&mut *st, CallState::Done) {
            CallState::Waiting(res) => {
                let opts = StreamOpts {
                    keepalive: self.opts.keepalive.clone(),
                    keepalive_every: self.opts.keepalive_every,
                    max_backlog: self.opts.max_backlog,
                };
                res.stream(200, &sse_headers(), opts)
            }
            CallState::Streaming(s) => s,
            CallState::Done => return,
        };
        // A client that went away did not cancel (2025-11-25): the call
        // runs on and its answer goes nowhere.
        let _ = stream.send(&event);
        *st = CallState::Streaming(stream);
    }

    fn done(&self, r: Result<Box<RawValue>, ErrorObj>) {
        if let Some(s) = self.session.upgrade() {
            s.untrack(&self.client_id);
        }
        self.finish(&answer(self.client_id.clone(), r));
    }
}

/// The answers of one batch (2025-03-26), sent together once the last
/// forwarded call is done.
struct Batch {
    session: Weak<Session>,
    res: Mutex<Option<Responder>>,
    answers: Mutex<Vec<Option<Message>>>,
    /// Forwarded calls not done yet, plus one while the batch is being sent.
    remaining: AtomicUsize,
}

impl Batch {
    fn set(&self, i: usize, m: Message) {
        if let Some(slot) = self.answers.lock().get_mut(i) {
            *slot = Some(m);
        }
        self.release();
    }

    fn release(&self) {
        if self.remaining.fetch_sub(1, Ordering::AcqRel) != 1 {
            return;
        }
        let Some(res) = self.res.lock().take() else { return };
        let answers: Vec<Message> = self.answers.lock().drain(..).flatten().collect();
        if answers.is_empty() {
            return res.send(Response::empty(202));
        }
        let mut body = Vec::with_capacity(256);
        body.push(b'[');
        for (i, m) in answers.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            m.write_json(&mut body);
        }
        body.push(b']');
        res.send(json_response(200, body));
    }
}

struct BatchSlot {
    batch: Arc<Batch>,
    index: usize,
    client_id: Id,
}

impl ReplyTo for BatchSlot {
    fn progress(&self, _: Value) {}

    fn done(&self, r: Result<Box<RawValue>, ErrorObj>) {
        if let Some(s) = self.batch.session.upgrade() {
            s.untrack(&self.client_id);
        }
        self.batch.set(self.index, answer(self.client_id.clone(), r));
    }
}

fn batch(
    rt: &Arc<Runtime>,
    req: &Request,
    res: Responder,
    items: Vec<Result<Message, (Option<Id>, ErrorObj)>>,
    version: Option<&str>,
) {
    let session = match session_of(rt, req, version) {
        Ok(s) => s,
        Err(r) => return res.send(r),
    };
    let negotiated = session.version();
    if !mcp::allows_batch(&negotiated) {
        return res.send(json_error(
            400,
            None,
            ErrorObj::new(
                code::INVALID_REQUEST,
                format!("JSON-RPC batches are not allowed in protocol revision {negotiated}"),
            ),
        ));
    }
    let batch = Arc::new(Batch {
        session: Arc::downgrade(&session),
        res: Mutex::new(Some(res)),
        answers: Mutex::new(Vec::with_capacity(items.len())),
        remaining: AtomicUsize::new(1),
    });
    // Each answer keeps its item's place; calls run concurrently.
    for item in items {
        let i = {
            let mut a = batch.answers.lock();
            a.push(None);
            a.len() - 1
        };
        let now = match item {
            Err((id, e)) => Some(Message::error(id, e)),
            Ok(msg) if msg.method() == Some(method::INITIALIZE) => {
                let id = match msg {
                    Message::Request { id, .. } => Some(id),
                    _ => None,
                };
                Some(Message::error(id, ErrorObj::new(code::INVALID_REQUEST, "initialize must not be part of a batch")))
            }
            Ok(msg) => match dispatch::handle(rt, &session, msg) {
                Handled::Now(m) => Some(m),
                Handled::Nothing => None,
                Handled::Forward(f) => {
                    batch.remaining.fetch_add(1, Ordering::AcqRel);
                    let slot = Arc::new(BatchSlot { batch: batch.clone(), index: i, client_id: f.client_id.clone() });
                    match f.send(&session, Sink::Reply(slot)) {
                        Ok(()) => None,
                        Err(m) => {
                            batch.remaining.fetch_sub(1, Ordering::AcqRel);
                            Some(m)
                        }
                    }
                }
            },
        };
        if let Some(m) = now {
            if let Some(slot) = batch.answers.lock().get_mut(i) {
                *slot = Some(m);
            }
        }
    }
    batch.release();
}

fn get(rt: &Arc<Runtime>, req: Request, res: Responder) {
    if let Err(r) = version_header(&req) {
        return res.send(r);
    }
    if !accepts(&req, "text/event-stream") {
        return res.send(json_error(
            406,
            None,
            ErrorObj::new(code::INVALID_REQUEST, "GET /mcp needs Accept: text/event-stream"),
        ));
    }
    let session = match session_of(rt, &req, None) {
        Ok(s) => s,
        Err(r) => return res.send(r),
    };
    if session.has_stream() {
        return res.send(json_error(
            409,
            None,
            ErrorObj::new(code::INVALID_REQUEST, "this session already has a GET stream"),
        ));
    }
    let stream = res.stream(200, &sse_headers(), stream_opts(rt));
    let n = session.next_stream_number();
    let weak = Arc::downgrade(&session);
    stream.on_close(Box::new(move || {
        if let Some(s) = weak.upgrade() {
            s.detach(n);
            s.touch();
        }
    }));
    session.attach(n, stream);
}

fn delete(rt: &Arc<Runtime>, req: Request, res: Responder) {
    let Some(sid) = req.header("Mcp-Session-Id").map(str::trim) else {
        return res.send(json_error(
            400,
            None,
            ErrorObj::new(code::INVALID_REQUEST, "Mcp-Session-Id header is required"),
        ));
    };
    match rt.sessions.get(sid).filter(|s| s.transport == Transport::Streamable) {
        Some(_) => {
            rt.sessions.remove(sid);
            res.send(Response::empty(200));
        }
        None => res.send(json_error(404, None, ErrorObj::new(code::INVALID_REQUEST, "unknown or expired session"))),
    }
}
