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
use crate::backend::Sink;
use crate::codec::jsonrpc::{self, Parsed, Raw};
use crate::codec::mcp::{self, method};
use crate::codec::{code, ErrorObj, Id, Message};
use crate::http::{Request, Responder, Response, Stream, StreamOpts};
use crate::route::{Answer, CallSink, ClientCap, ClientLink};
use crate::runtime::Runtime;
use crate::session::{Channel, Session, Transport};
use parking_lot::Mutex;
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// `/mcp` (`view` `None`) or `/mcp/<view>`: a session made here is the
/// view's, and is found only at its own view's endpoint.
pub fn handle(rt: &Arc<Runtime>, req: Request, res: Responder, view: Option<&str>) {
    match req.method() {
        "POST" => post(rt, req, res, view),
        "GET" => get(rt, req, res, view),
        "DELETE" => delete(rt, req, res, view),
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
        ErrorObj::new(code::UNSUPPORTED_PROTOCOL_VERSION, format!("protocol version {v} is not supported"))
            .with_data(json!({ "supported": mcp::ALL_VERSIONS, "requested": v })),
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
/// (400 when absent, 404 when unknown or expired, made on another view's
/// endpoint, or of a view a reload removed).
fn session_of(
    rt: &Runtime,
    req: &Request,
    version: Option<&str>,
    view: Option<&str>,
) -> Result<Arc<Session>, Response> {
    let Some(sid) = req.header("Mcp-Session-Id") else {
        return Err(json_error(
            400,
            None,
            ErrorObj::new(code::INVALID_REQUEST, "Mcp-Session-Id header is required (send initialize first)"),
        ));
    };
    // Another identity's session is as unknown as one that never was.
    let Some(s) = rt
        .sessions
        .get(sid.trim())
        .filter(|s| s.transport == Transport::Streamable && s.owned_by(req.identity.as_deref()))
    else {
        return Err(json_error(404, None, ErrorObj::new(code::INVALID_REQUEST, "unknown or expired session")));
    };
    if s.view.as_deref() != view {
        return Err(json_error(404, None, ErrorObj::new(code::INVALID_REQUEST, "unknown or expired session")));
    }
    if rt.registry().view(view).is_none() {
        rt.sessions.remove(&s.id);
        return Err(super::unknown_view(view.unwrap_or("")));
    }
    if let Some(v) = version {
        // A supported revision other than the negotiated one is let
        // through: the header is checked for validity, and some clients
        // send their newest revision on every request.
        if !s.version_is(v) {
            log::debug!("session {}: MCP-Protocol-Version {v}, negotiated {}", s.id, s.version());
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

fn post(rt: &Arc<Runtime>, req: Request, res: Responder, view: Option<&str>) {
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
        Ok(Parsed::Single(Ok(msg))) => single(rt, &req, res, msg, version.as_deref(), view),
        Ok(Parsed::Batch(items)) => batch(rt, &req, res, items, version.as_deref(), view),
    }
}

fn single(rt: &Arc<Runtime>, req: &Request, res: Responder, msg: Message, version: Option<&str>, view: Option<&str>) {
    if msg.method() == Some(method::INITIALIZE) {
        return initialize(rt, req, res, msg, view);
    }
    if msg.method() == Some("server/discover") && req.header("Mcp-Session-Id").is_none() {
        // A 2026-era probe: tell it which revisions we serve.
        return res.send(unsupported_version(version.unwrap_or(mcp::FIRST_STATELESS)));
    }
    let session = match session_of(rt, req, version, view) {
        Ok(s) => s,
        Err(r) => return res.send(r),
    };
    match dispatch::handle(rt, &session, msg) {
        Handled::Now(m) => res.send(json_response(200, m.to_bytes())),
        Handled::Nothing => res.send(Response::empty(202)),
        Handled::Forward(f) => {
            let call = HttpCall::new(rt, &session, f.client_id.clone(), f.wants_progress, res);
            if streams_calls(&session, req, f.method()) {
                call.start_stream();
            }
            if let Err(answer) = f.send(&session, Sink::Route(call.clone())) {
                call.finish(&answer);
            }
        }
    }
}

fn initialize(rt: &Arc<Runtime>, req: &Request, res: Responder, msg: Message, view: Option<&str>) {
    let session = match rt.sessions.create_in(Transport::Streamable, mcp::DEFAULT_HTTP_VERSION, view) {
        Ok(s) => s,
        Err(e) => return res.send(create_error(&e)),
    };
    session.set_owner(req.identity.clone());
    if let Some(who) = session.owner_label() {
        log::debug!("streamable session {} opened by {who}", session.id);
    }
    match dispatch::handle(rt, &session, msg) {
        Handled::Now(m) => res.send(json_response(200, m.to_bytes()).with_header("Mcp-Session-Id", &*session.id)),
        _ => {
            // initialize is always answered by the gateway itself.
            rt.sessions.remove(&session.id);
            res.send(json_error(500, None, ErrorObj::new(code::INTERNAL_ERROR, "initialize failed")));
        }
    }
}

fn answer(client_id: Id, r: Result<Raw, ErrorObj>) -> Message {
    match r {
        Ok(result) => Message::Response { id: client_id, result },
        Err(error) => Message::Error { id: Some(client_id), error },
    }
}

/// How long a call's SSE stream holds its head and priming event for the
/// answer (one write instead of four). A longer call gets them when this
/// passes; a connection that drops sooner has no event id to resume from.
const CORK: Duration = Duration::from_millis(20);

/// A forwarded call's HTTP request, waiting for the backend. Answered as
/// JSON, or as an SSE stream once something else must go first: progress
/// the client asked for, or a request or log message the backend sends
/// while serving the call (the spec puts those on the call's own stream).
/// The stream is a session [`Channel`]: numbered events a client can
/// resume with `Last-Event-ID` after its connection drops.
struct HttpCall {
    me: Weak<HttpCall>,
    session: Arc<Session>,
    client_id: Id,
    wants_progress: bool,
    opts: StreamOpts,
    state: Mutex<CallState>,
}

enum CallState {
    Waiting(Responder),
    Streaming(Arc<Mutex<Channel>>),
    Done,
}

impl HttpCall {
    fn new(rt: &Runtime, session: &Arc<Session>, client_id: Id, wants_progress: bool, res: Responder) -> Arc<HttpCall> {
        Arc::new_cyclic(|me| HttpCall {
            me: me.clone(),
            session: session.clone(),
            client_id,
            wants_progress,
            opts: stream_opts(rt),
            state: Mutex::new(CallState::Waiting(res)),
        })
    }

    /// Turns the response into an SSE stream now (see [`streams_calls`]),
    /// corked: head and priming event wait (at most [`CORK`]) for the
    /// answer, so that a quick call is answered in one write.
    fn start_stream(&self) {
        let mut st = self.state.lock();
        if let Some(ch) = self.upgrade(&mut st, Some(CORK)) {
            *st = CallState::Streaming(ch);
        }
    }

    /// The call's SSE stream, opened on the waiting response if need be;
    /// `None` once the call is done. Leaves the state `Done`: the caller
    /// puts the stream back.
    fn upgrade(&self, st: &mut CallState, cork: Option<Duration>) -> Option<Arc<Mutex<Channel>>> {
        Some(match std::mem::replace(st, CallState::Done) {
            CallState::Waiting(res) => {
                let opts = StreamOpts { cork, ..self.opts.clone() };
                let stream = res.stream(200, &sse_headers(), opts);
                let ch = self.session.new_channel();
                watch(&ch, &stream);
                ch.lock().attach(stream, self.session.resumable(), None);
                ch
            }
            CallState::Streaming(ch) => ch,
            CallState::Done => return None,
        })
    }

    /// Sends one message before the answer, turning the response into an
    /// SSE stream first if it is not one yet. False once the call is done.
    fn send_event(&self, m: &Message) -> bool {
        let mut st = self.state.lock();
        let Some(ch) = self.upgrade(&mut st, None) else { return false };
        // A client that went away did not cancel (2025-11-25): the event
        // is kept for a resume, and the call runs on.
        let _ = ch.lock().send(Some("message"), &m.to_bytes());
        *st = CallState::Streaming(ch);
        true
    }

    /// Writes the final message and ends the request.
    fn finish(&self, m: &Message) {
        let state = std::mem::replace(&mut *self.state.lock(), CallState::Done);
        match state {
            CallState::Waiting(res) => res.send(json_response(200, m.to_bytes())),
            CallState::Streaming(ch) => ch.lock().send_last(Some("message"), &m.to_bytes()),
            CallState::Done => {}
        }
    }
}

/// Whether a forwarded call is answered on an SSE stream from the start:
/// a tool call of a client at 2025-11-25 or later that accepts one. Its
/// stream opens with the priming event (an id, no data) and `retry:`, so
/// that a client whose connection drops during a long call can resume it
/// with `Last-Event-ID` (SEP-1699). Other calls are answered as JSON unless
/// something must go before the answer.
fn streams_calls(session: &Session, req: &Request, method: &str) -> bool {
    method == method::TOOLS_CALL
        && session.resumable()
        && req.header("Accept").is_some_and(|a| a.to_ascii_lowercase().contains("text/event-stream"))
}

/// When a channel's connection closes, the channel forgets it (its events
/// stay for a resume).
fn watch(ch: &Arc<Mutex<Channel>>, stream: &Stream) {
    let weak = Arc::downgrade(ch);
    stream.on_close(Box::new(move || {
        if let Some(ch) = weak.upgrade() {
            ch.lock().detach_if_closed();
        }
    }));
}

impl CallSink for HttpCall {
    fn progress(&self, params: Raw) {
        if self.wants_progress {
            self.send_event(&Message::Notification { method: method::PROGRESS.to_owned(), params: Some(params) });
        }
    }

    fn done(&self, r: Result<Raw, ErrorObj>) {
        self.session.untrack(&self.client_id);
        self.finish(&answer(self.client_id.clone(), r));
    }

    fn client(&self) -> Option<Arc<dyn ClientLink>> {
        self.me.upgrade().map(|c| c as Arc<dyn ClientLink>)
    }
}

/// The client of a call, as the backend serving it sees it: requests and
/// notifications go on the call's own stream; answers come back to the
/// session (a POST of a JSON-RPC response).
impl ClientLink for HttpCall {
    fn session_id(&self) -> &str {
        &self.session.id
    }

    fn supports(&self, cap: ClientCap) -> bool {
        self.session.supports(cap)
    }

    fn request(&self, m: &str, params: Option<Raw>, timeout: Duration, answer: Answer) -> Option<u64> {
        if matches!(*self.state.lock(), CallState::Done) {
            // The call was answered already: the session's own stream.
            return self.session.request(m, params, timeout, answer);
        }
        let id = self.session.register_request(m, timeout, answer);
        let msg = Message::Request { id: Id::Num(id as i64), method: m.to_owned(), params };
        if !self.send_event(&msg) {
            self.session.fail_request(id, "the call ended before the request could be sent");
            return None;
        }
        Some(id)
    }

    fn cancel_request(&self, id: u64, reason: &str) {
        if self.session.forget_request(id) {
            let p = json!({"requestId": id, "reason": reason});
            let m = Message::notification(method::CANCELLED, Some(p));
            if !self.send_event(&m) {
                self.session.notify(&m);
            }
        }
    }

    fn notify(&self, m: &Message) {
        if !self.send_event(m) {
            self.session.notify(m);
        }
    }

    fn admits_log(&self, level: &str) -> bool {
        self.session.admits_log(level)
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

impl CallSink for BatchSlot {
    fn progress(&self, _: Raw) {}

    fn done(&self, r: Result<Raw, ErrorObj>) {
        if let Some(s) = self.batch.session.upgrade() {
            s.untrack(&self.client_id);
        }
        self.batch.set(self.index, answer(self.client_id.clone(), r));
    }

    fn client(&self) -> Option<Arc<dyn ClientLink>> {
        self.batch.session.upgrade().map(|s| s as Arc<dyn ClientLink>)
    }
}

fn batch(
    rt: &Arc<Runtime>,
    req: &Request,
    res: Responder,
    items: Vec<Result<Message, (Option<Id>, ErrorObj)>>,
    version: Option<&str>,
    view: Option<&str>,
) {
    let session = match session_of(rt, req, version, view) {
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
                    match f.send(&session, Sink::Route(slot)) {
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

fn get(rt: &Arc<Runtime>, req: Request, res: Responder, view: Option<&str>) {
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
    let session = match session_of(rt, &req, None, view) {
        Ok(s) => s,
        Err(r) => return res.send(r),
    };
    // A resume: the stream the id names, from the event after it.
    let resume = match req.header("Last-Event-ID") {
        None => None,
        Some(raw) => match Channel::parse_id(raw) {
            Some(at) => Some(at),
            None => {
                let msg =
                    format!("Last-Event-ID {:?} is not an event id of this server", crate::util::printable(raw, 60));
                return res.send(json_error(400, None, ErrorObj::new(code::INVALID_REQUEST, msg)));
            }
        },
    };
    match resume {
        Some((number, after)) if number > 0 => {
            let Some(ch) = session.channel(number) else {
                let msg = "that stream is no longer kept (a session keeps its last 16); send the request again";
                return res.send(json_error(404, None, ErrorObj::new(code::INVALID_REQUEST, msg)));
            };
            let stream = res.stream(200, &sse_headers(), stream_opts(rt));
            watch(&ch, &stream);
            ch.lock().attach(stream, false, Some(after));
        }
        // The session's own stream: a new connection replaces an older
        // one (a client that reconnects must not be locked out by its own
        // stale stream).
        resume => {
            let stream = res.stream(200, &sse_headers(), stream_opts(rt));
            session.attach(stream, resume.map(|(_, after)| after));
        }
    }
}

fn delete(rt: &Arc<Runtime>, req: Request, res: Responder, view: Option<&str>) {
    let Some(sid) = req.header("Mcp-Session-Id").map(str::trim) else {
        return res.send(json_error(
            400,
            None,
            ErrorObj::new(code::INVALID_REQUEST, "Mcp-Session-Id header is required"),
        ));
    };
    match rt.sessions.get(sid).filter(|s| {
        s.transport == Transport::Streamable && s.owned_by(req.identity.as_deref()) && s.view.as_deref() == view
    }) {
        Some(_) => {
            rt.sessions.remove(sid);
            res.send(Response::empty(200));
        }
        None => res.send(json_error(404, None, ErrorObj::new(code::INVALID_REQUEST, "unknown or expired session"))),
    }
}
