//! Legacy HTTP+SSE transport (2024-11-05): `GET /sse` opens a session's
//! event stream, whose first event names `/messages/?session_id=<id>`;
//! clients POST each message there and every answer arrives on the stream.
//! The stream is written by its own `sse:<id>` thread; POST handlers never
//! wait for a backend.

use super::dispatch::{self, Handled, Mode};
use super::{check_origin, json_error, read_json_body, respond_body_error, SseWriter};
use crate::codec::jsonrpc::{self, Parsed};
use crate::codec::{code, ErrorObj, Message};
use crate::runtime::Runtime;
use crate::session::{Session, Transport};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tiny_http::{Method, Request};

/// A comment line this often keeps proxies and clients from timing out.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

pub fn get_stream(rt: &Arc<Runtime>, req: Request) {
    let Some(req) = check_origin(rt, req) else { return };
    if *req.method() != Method::Get {
        // Never 200 to POST /sse: clients probe it to pick a transport.
        let r = super::with_header(
            json_error(405, None, ErrorObj::new(code::INVALID_REQUEST, "use GET /sse")),
            "Allow",
            "GET",
        );
        let _ = req.respond(r);
        return;
    }
    let session = match rt.sessions.create(Transport::Sse, "2024-11-05") {
        Ok(s) => s,
        Err(_) => {
            let _ = req.respond(json_error(503, None, ErrorObj::new(code::INTERNAL_ERROR, "too many sessions")));
            return;
        }
    };
    let id = session.id.clone();
    let rt2 = rt.clone();
    let spawned = crate::thread::spawn(format!("sse:{}", &id[..8]), move || {
        stream(&session, req);
        rt2.sessions.remove(&session.id);
        Ok(())
    });
    if spawned.is_err() {
        log::error!("cannot start a stream thread; dropping session {id}");
        rt.sessions.remove(&id);
    }
}

fn stream(session: &Arc<Session>, req: Request) {
    let mut w = match SseWriter::start(req, &[]) {
        Ok(w) => w,
        Err(_) => return,
    };
    let endpoint = format!("/messages/?session_id={}", session.id);
    if w.event(Some("endpoint"), None, endpoint.as_bytes()).is_err() {
        return;
    }
    log::debug!("sse session {} opened", session.id);
    pump(session, &mut w);
    log::debug!("sse session {} closed", session.id);
}

/// Copies the session's outbox to the stream until the client goes away
/// or the session closes; comments keep the connection alive.
pub fn pump(session: &Session, w: &mut SseWriter) {
    let mut last_write = Instant::now();
    loop {
        if session.closed.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        match session.outbox().recv_timeout(Duration::from_secs(1)) {
            Ok(msg) => {
                if w.event(Some("message"), None, &msg).is_err() {
                    return;
                }
                last_write = Instant::now();
            }
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                if last_write.elapsed() >= KEEP_ALIVE {
                    if w.comment("keep-alive").is_err() {
                        return;
                    }
                    last_write = Instant::now();
                }
            }
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return,
        }
    }
}

pub fn post_message(rt: &Arc<Runtime>, req: Request) {
    let Some(mut req) = check_origin(rt, req) else { return };
    if *req.method() != Method::Post {
        let r = super::with_header(
            json_error(405, None, ErrorObj::new(code::INVALID_REQUEST, "use POST")),
            "Allow",
            "POST",
        );
        let _ = req.respond(r);
        return;
    }
    let sid = super::query_param(req.url(), "session_id")
        .or_else(|| super::query_param(req.url(), "sessionId"))
        .unwrap_or("")
        .to_owned();
    let Some(session) = rt.sessions.get(&sid) else {
        let _ = req.respond(json_error(404, None, ErrorObj::new(code::INVALID_REQUEST, "unknown or expired session")));
        return;
    };
    let body = match read_json_body(&mut req, rt.config().server.max_body_bytes) {
        Ok(b) => b,
        Err(e) => return respond_body_error(req, e),
    };
    let parsed = match jsonrpc::parse(&body) {
        Ok(p) => p,
        Err(e) => {
            // 400 to the POST, and the JSON-RPC error on the stream too.
            session.push(Message::error(None, e.clone()).to_bytes());
            let _ = req.respond(json_error(400, None, e));
            return;
        }
    };
    let _ = req.respond(super::with_header(
        tiny_http::Response::from_data(b"Accepted".to_vec()).with_status_code(202),
        "Content-Type",
        "text/plain",
    ));
    session.touch();
    match parsed {
        Parsed::Single(Ok(msg)) => one(rt, &session, msg),
        Parsed::Single(Err(e)) => {
            session.push(Message::error(None, e).to_bytes());
        }
        Parsed::Batch(items) => {
            // The legacy transport predates batches, but a batch is valid
            // JSON-RPC: each answer goes on the stream on its own.
            for item in items {
                match item {
                    Ok(msg) => one(rt, &session, msg),
                    Err((id, e)) => {
                        session.push(Message::error(id, e).to_bytes());
                    }
                }
            }
        }
    }
}

fn one(rt: &Runtime, session: &Arc<Session>, msg: Message) {
    if let Handled::Now(answer) = dispatch::handle(rt, session, msg, Mode::Outbox) {
        session.push(answer.to_bytes());
    }
}
