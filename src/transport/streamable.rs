//! Streamable HTTP (2025-03-26, 2025-06-18, 2025-11-25) at `/mcp`.
//!
//! - `POST`: one message (or, under 2025-03-26 only, a batch). Requests
//!   get `application/json`, or `text/event-stream` when the client asked
//!   for progress; notifications and responses get 202 with no body.
//! - `GET`: the session's stream for unsolicited messages (list_changed),
//!   one per session, written by its own `mcp-get:<id>` thread.
//! - `DELETE`: ends the session.
//!
//! `initialize` creates the session and returns `Mcp-Session-Id`; later
//! requests without it get 400, with an unknown one 404 (the client then
//! re-initializes). `MCP-Protocol-Version` is validated: unsupported → 400,
//! a stateless revision (2026-07-28 or later) → 400 with error -32022.

use super::dispatch::{self, Handled, Mode, PendingCall};
use super::{
    check_origin, empty, header, json_error, json_response, read_json_body, respond_body_error, with_header,
    HttpResponse, SseWriter,
};
use crate::backend::Reply;
use crate::codec::jsonrpc::{self, Parsed};
use crate::codec::mcp::{self, method};
use crate::codec::{code, ErrorObj, Id, Message};
use crate::runtime::Runtime;
use crate::session::{Session, Transport};
use serde_json::json;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tiny_http::{Method, Request};

pub fn handle(rt: &Arc<Runtime>, req: Request) {
    let Some(req) = check_origin(rt, req) else { return };
    match req.method() {
        Method::Post => post(rt, req),
        Method::Get => get(rt, req),
        Method::Delete => delete(rt, req),
        _ => {
            let r = json_error(405, None, ErrorObj::new(code::INVALID_REQUEST, "use POST, GET or DELETE"));
            let _ = req.respond(with_header(r, "Allow", "GET, POST, DELETE"));
        }
    }
}

/// The error a dual-era client recognizes and falls back from.
fn unsupported_version(v: &str) -> HttpResponse {
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
fn version_header(req: &Request) -> Result<Option<String>, HttpResponse> {
    let Some(v) = header(req, "MCP-Protocol-Version") else {
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
            ErrorObj::new(code::INVALID_REQUEST, format!("unsupported MCP-Protocol-Version {v:?}"))
                .with_data(json!({ "supported": mcp::SUPPORTED_VERSIONS })),
        ));
    }
    Ok(Some(v.to_owned()))
}

/// The session named by `Mcp-Session-Id`; `Err` is the response to send
/// (400 when absent, 404 when unknown or expired).
fn session_of(rt: &Runtime, req: &Request, version: Option<&str>) -> Result<Arc<Session>, HttpResponse> {
    let Some(sid) = header(req, "Mcp-Session-Id") else {
        return Err(json_error(
            400,
            None,
            ErrorObj::new(code::INVALID_REQUEST, "Mcp-Session-Id header is required (send initialize first)"),
        ));
    };
    let Some(s) = rt.sessions.get(sid.trim()) else {
        return Err(json_error(404, None, ErrorObj::new(code::INVALID_REQUEST, "unknown or expired session")));
    };
    if s.transport != Transport::Streamable {
        return Err(json_error(404, None, ErrorObj::new(code::INVALID_REQUEST, "unknown or expired session")));
    }
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
    match header(req, "Accept") {
        None => true,
        Some(a) => {
            let a = a.to_ascii_lowercase();
            a.contains(what) || a.contains("*/*")
        }
    }
}

fn post(rt: &Arc<Runtime>, mut req: Request) {
    let version = match version_header(&req) {
        Ok(v) => v,
        Err(r) => {
            let _ = req.respond(r);
            return;
        }
    };
    if !accepts(&req, "application/json") && !accepts(&req, "text/event-stream") {
        let _ = req.respond(json_error(
            406,
            None,
            ErrorObj::new(code::INVALID_REQUEST, "Accept must include application/json and text/event-stream"),
        ));
        return;
    }
    let body = match read_json_body(&mut req, rt.config().server.max_body_bytes) {
        Ok(b) => b,
        Err(e) => return respond_body_error(req, e),
    };
    let parsed = match jsonrpc::parse(&body) {
        Ok(p) => p,
        Err(e) => {
            let _ = req.respond(json_error(400, None, e));
            return;
        }
    };
    match parsed {
        Parsed::Single(Err(e)) => {
            let _ = req.respond(json_error(400, None, e));
        }
        Parsed::Single(Ok(msg)) => single(rt, req, msg, version.as_deref()),
        Parsed::Batch(items) => batch(rt, req, items, version.as_deref()),
    }
}

fn single(rt: &Arc<Runtime>, req: Request, msg: Message, version: Option<&str>) {
    if msg.method() == Some(method::INITIALIZE) {
        return initialize(rt, req, msg);
    }
    if msg.method() == Some("server/discover") && header(&req, "Mcp-Session-Id").is_none() {
        // A 2026-era probe: tell it which revisions we serve.
        let _ = req.respond(unsupported_version(version.unwrap_or(mcp::FIRST_STATELESS)));
        return;
    }
    let session = match session_of(rt, &req, version) {
        Ok(s) => s,
        Err(r) => {
            let _ = req.respond(r);
            return;
        }
    };
    match dispatch::handle(rt, &session, msg, Mode::Wait) {
        Handled::Now(m) => {
            let _ = req.respond(json_response(200, m.to_bytes()));
        }
        Handled::Nothing | Handled::Queued => {
            let _ = req.respond(empty(202));
        }
        Handled::Call(pc) => finish_call(&session, req, pc),
    }
}

fn initialize(rt: &Arc<Runtime>, req: Request, msg: Message) {
    let session = match rt.sessions.create(Transport::Streamable, mcp::DEFAULT_HTTP_VERSION) {
        Ok(s) => s,
        Err(_) => {
            let _ = req.respond(json_error(503, None, ErrorObj::new(code::INTERNAL_ERROR, "too many sessions")));
            return;
        }
    };
    match dispatch::handle(rt, &session, msg, Mode::Wait) {
        Handled::Now(m) => {
            let r = json_response(200, m.to_bytes());
            let _ = req.respond(with_header(r, "Mcp-Session-Id", &session.id));
        }
        _ => {
            // initialize is always answered by the gateway itself.
            rt.sessions.remove(&session.id);
            let _ = req.respond(json_error(500, None, ErrorObj::new(code::INTERNAL_ERROR, "initialize failed")));
        }
    }
}

fn answer(client_id: Id, r: Result<Box<serde_json::value::RawValue>, ErrorObj>) -> Message {
    match r {
        Ok(result) => Message::Response { id: client_id, result },
        Err(error) => Message::Error { id: Some(client_id), error },
    }
}

/// Waits for a forwarded call's outcome (the admin tick enforces the
/// deadline; the extra margin here is only a backstop).
fn wait_done(session: &Session, pc: &PendingCall, mut on_progress: impl FnMut(serde_json::Value)) -> Message {
    let backstop = pc.timeout + Duration::from_secs(5);
    loop {
        match pc.rx.recv_timeout(backstop) {
            Ok(Reply::Progress(p)) => on_progress(p),
            Ok(Reply::Done(r)) => {
                session.untrack(&pc.client_id);
                return answer(pc.client_id.clone(), r);
            }
            Err(_) => {
                session.untrack(&pc.client_id);
                pc.conn.cancel(pc.backend_id, "timed out at the gateway");
                return Message::error(
                    Some(pc.client_id.clone()),
                    ErrorObj::new(code::REQUEST_TIMEOUT, format!("backend '{}' timed out", pc.conn.backend)),
                );
            }
        }
    }
}

fn finish_call(session: &Session, req: Request, pc: PendingCall) {
    if !pc.wants_progress {
        let m = wait_done(session, &pc, |_| {});
        let _ = req.respond(json_response(200, m.to_bytes()));
        return;
    }
    // Progress was asked for: stream it, then the answer, then end.
    let mut w = SseWriter::start(req, &[]).ok();
    let m = wait_done(session, &pc, |p| {
        let bytes = Message::notification(method::PROGRESS, Some(p)).to_bytes();
        // A client that went away did not cancel; the call runs on.
        if let Some(sw) = w.as_mut() {
            if sw.event(Some("message"), None, &bytes).is_err() {
                w = None;
            }
        }
    });
    if let Some(mut sw) = w {
        if sw.event(Some("message"), None, &m.to_bytes()).is_ok() {
            let _ = sw.finish();
        }
    }
}

fn batch(rt: &Arc<Runtime>, req: Request, items: Vec<Result<Message, (Option<Id>, ErrorObj)>>, version: Option<&str>) {
    let session = match session_of(rt, &req, version) {
        Ok(s) => s,
        Err(r) => {
            let _ = req.respond(r);
            return;
        }
    };
    let negotiated = session.version();
    if !mcp::allows_batch(&negotiated) {
        let _ = req.respond(json_error(
            400,
            None,
            ErrorObj::new(
                code::INVALID_REQUEST,
                format!("JSON-RPC batches are not allowed in protocol revision {negotiated}"),
            ),
        ));
        return;
    }
    // Dispatch everything first so the calls run concurrently, then wait.
    let mut answers = Vec::new();
    let mut calls = Vec::new();
    for item in items {
        match item {
            Err((id, e)) => answers.push(Message::error(id, e)),
            Ok(msg) if msg.method() == Some(method::INITIALIZE) => {
                let id = match msg {
                    Message::Request { id, .. } => Some(id),
                    _ => None,
                };
                answers.push(Message::error(
                    id,
                    ErrorObj::new(code::INVALID_REQUEST, "initialize must not be part of a batch"),
                ));
            }
            Ok(msg) => match dispatch::handle(rt, &session, msg, Mode::Wait) {
                Handled::Now(m) => answers.push(m),
                Handled::Call(pc) => calls.push(pc),
                Handled::Nothing | Handled::Queued => {}
            },
        }
    }
    for pc in calls {
        answers.push(wait_done(&session, &pc, |_| {}));
    }
    if answers.is_empty() {
        let _ = req.respond(empty(202));
        return;
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
    let _ = req.respond(json_response(200, body));
}

fn get(rt: &Arc<Runtime>, req: Request) {
    if let Err(r) = version_header(&req) {
        let _ = req.respond(r);
        return;
    }
    if !accepts(&req, "text/event-stream") {
        let _ = req.respond(json_error(
            406,
            None,
            ErrorObj::new(code::INVALID_REQUEST, "GET /mcp needs Accept: text/event-stream"),
        ));
        return;
    }
    let session = match session_of(rt, &req, None) {
        Ok(s) => s,
        Err(r) => {
            let _ = req.respond(r);
            return;
        }
    };
    if session.stream_attached.swap(true, Ordering::AcqRel) {
        let _ = req.respond(json_error(
            409,
            None,
            ErrorObj::new(code::INVALID_REQUEST, "this session already has a GET stream"),
        ));
        return;
    }
    let s = session.clone();
    let spawned = crate::thread::spawn(format!("mcp-get:{}", &session.id[..8]), move || {
        if let Ok(mut w) = SseWriter::start(req, &[]) {
            super::sse::pump(&s, &mut w);
        }
        s.stream_attached.store(false, Ordering::Release);
        s.touch();
        Ok(())
    });
    if spawned.is_err() {
        session.stream_attached.store(false, Ordering::Release);
        log::error!("cannot start a stream thread for session {}", session.id);
    }
}

fn delete(rt: &Arc<Runtime>, req: Request) {
    let Some(sid) = header(&req, "Mcp-Session-Id").map(str::trim).map(str::to_owned) else {
        let _ = req.respond(json_error(
            400,
            None,
            ErrorObj::new(code::INVALID_REQUEST, "Mcp-Session-Id header is required"),
        ));
        return;
    };
    match rt.sessions.get(&sid).filter(|s| s.transport == Transport::Streamable) {
        Some(_) => {
            rt.sessions.remove(&sid);
            let _ = req.respond(empty(200));
        }
        None => {
            let _ =
                req.respond(json_error(404, None, ErrorObj::new(code::INVALID_REQUEST, "unknown or expired session")));
        }
    }
}
