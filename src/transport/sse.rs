//! Legacy HTTP+SSE transport (2024-11-05): `GET /sse` opens a session's
//! event stream, whose first event names `/messages/?session_id=<id>`;
//! clients POST each message there and every answer arrives on the stream.
//! The session lives exactly as long as its stream: the reactor sees the
//! client leave and the session ends at once, cancelling its calls.

use super::dispatch::{self, Handled};
use super::{body_error, json_body, json_error, sse_headers, stream_opts};
use crate::backend::Sink;
use crate::codec::jsonrpc::Raw;
use crate::codec::jsonrpc::{self, Parsed};
use crate::codec::mcp::method;
use crate::codec::{code, ErrorObj, Message};
use crate::http::{Request, Responder, Response};
use crate::route::{CallSink, ClientLink};
use crate::runtime::Runtime;
use crate::session::{CreateError, Session, Transport};
use std::sync::Arc;

/// `GET /sse` or `GET /sse/<view>`: the session is the view's for its life.
pub fn get_stream(rt: &Arc<Runtime>, req: Request, res: Responder, view: Option<&str>) {
    if req.method() != "GET" {
        // Never 200 to POST /sse: clients probe it to pick a transport.
        let r = json_error(405, None, ErrorObj::new(code::INVALID_REQUEST, "use GET /sse"));
        return res.send(r.with_header("Allow", "GET"));
    }
    let session = match rt.sessions.create_in(Transport::Sse, "2024-11-05", view) {
        Ok(s) => s,
        Err(e) => return res.send(create_error(&e)),
    };
    session.set_owner(req.identity.clone());
    let stream = res.stream(200, &sse_headers(), stream_opts(rt));
    // The session ends with its stream: the client left, or fell too far
    // behind, or the gateway closed it.
    let weak = Arc::downgrade(rt);
    let id = session.id.clone();
    stream.on_close(Box::new(move || {
        if let Some(rt) = weak.upgrade() {
            if rt.sessions.remove(&id).is_some() {
                log::debug!("sse session {id} closed");
            }
        }
    }));
    session.attach(stream, None);
    // The same messages URL for every view: the session carries its view.
    let endpoint = format!("/messages/?session_id={}", session.id);
    if session.push_event(Some("endpoint"), endpoint.as_bytes()) {
        match session.owner_label() {
            Some(who) => log::debug!("sse session {} opened by {who}", session.id),
            None => log::debug!("sse session {} opened", session.id),
        }
    } else {
        rt.sessions.remove(&session.id);
    }
}

/// The answer when a session cannot be created.
pub fn create_error(e: &CreateError) -> Response {
    match e {
        CreateError::Full(_) => {
            json_error(503, None, ErrorObj::new(code::INTERNAL_ERROR, e.to_string())).with_header("Retry-After", "1")
        }
        CreateError::Random(_) => {
            log::error!("{e}");
            json_error(500, None, ErrorObj::new(code::INTERNAL_ERROR, e.to_string()))
        }
    }
}

pub fn post_message(rt: &Arc<Runtime>, req: Request, res: Responder) {
    if req.method() != "POST" {
        let r = json_error(405, None, ErrorObj::new(code::INVALID_REQUEST, "use POST"));
        return res.send(r.with_header("Allow", "POST"));
    }
    let sid = req.query_param("session_id").or_else(|| req.query_param("sessionId")).unwrap_or("");
    // A session is bound to the identity that opened its stream: another
    // identity's post is answered as for an unknown session.
    let Some(session) =
        rt.sessions.get(sid).filter(|s| s.transport == Transport::Sse && s.owned_by(req.identity.as_deref()))
    else {
        return res.send(json_error(404, None, ErrorObj::new(code::INVALID_REQUEST, "unknown or expired session")));
    };
    let view = session.view.as_deref();
    if !super::admitted(req.identity.as_deref(), view) {
        return res.send(super::view_refused(view));
    }
    if rt.registry().view(view).is_none() {
        // A reload removed its view: the session ends (its stream closes).
        rt.sessions.remove(&session.id);
        return res.send(super::unknown_view(view.unwrap_or("")));
    }
    let body = match json_body(&req) {
        Ok(b) => b,
        Err(e) => return res.send(body_error(e)),
    };
    let parsed = match jsonrpc::parse(body) {
        Ok(p) => p,
        Err(e) => {
            // 400 to the POST, and the JSON-RPC error on the stream too.
            session.push(Message::error(None, e.clone()).to_bytes());
            return res.send(json_error(400, None, e));
        }
    };
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
    // The 202 goes after what this round of the reactor hands to the
    // backend (deferred work runs in order, thread::batch), so the backend
    // starts on the call first. Answers on the stream may come before it;
    // they are on another connection, whose order was never the POST's.
    let accepted = move || res.send(Response::new(202, "text/plain", b"Accepted".to_vec()));
    if let Err(now) = crate::thread::defer(Box::new(accepted)) {
        now();
    }
}

fn one(rt: &Runtime, session: &Arc<Session>, msg: Message) {
    match dispatch::handle(rt, session, msg) {
        Handled::Now(answer) => {
            session.push(answer.to_bytes());
        }
        Handled::Forward(f) => {
            let sink = Sink::Route(Arc::new(SseCall { session: session.clone(), client_id: f.client_id.clone() }));
            if let Err(answer) = f.send(session, sink) {
                session.push(answer.to_bytes());
            }
        }
        Handled::Nothing => {}
    }
}

/// A call forwarded for a legacy SSE session: its progress and answer go
/// on the session's stream, and so do the requests and log messages the
/// backend sends while serving it (the session is the call's client).
struct SseCall {
    session: Arc<Session>,
    client_id: crate::codec::Id,
}

impl CallSink for SseCall {
    fn progress(&self, params: Raw) {
        let m = Message::Notification { method: method::PROGRESS.to_owned(), params: Some(params) };
        self.session.push(m.to_bytes());
    }

    fn done(&self, result: Result<Raw, ErrorObj>) {
        self.session.untrack(&self.client_id);
        let id = self.client_id.clone();
        let m = match result {
            Ok(result) => Message::Response { id, result },
            Err(error) => Message::Error { id: Some(id), error },
        };
        self.session.push(m.to_bytes());
    }

    fn client(&self) -> Option<Arc<dyn ClientLink>> {
        Some(self.session.clone())
    }
}
