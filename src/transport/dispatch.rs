//! The gateway's MCP server logic, shared by both transports: answers what
//! the gateway owns (initialize, ping, the merged lists) and forwards the
//! rest to the owning backend with ids mapped per session.

use crate::backend::{Conn, Reply, Sink};
use crate::codec::mcp::{self, method};
use crate::codec::{code, ErrorObj, Id, Message};
use crate::runtime::Runtime;
use crate::session::Session;
use crossbeam_channel::{bounded, Receiver};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// How a forwarded call's answer travels back.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The HTTP handler waits on a channel (Streamable HTTP).
    Wait,
    /// The answer goes to the session's outbox (legacy SSE).
    Outbox,
}

pub enum Handled {
    /// Answer now.
    Now(Message),
    /// Forwarded (Mode::Wait): wait on `rx` until `Reply::Done`.
    Call(PendingCall),
    /// Forwarded (Mode::Outbox): the answer arrives on the session stream.
    Queued,
    /// A notification or response: nothing to answer.
    Nothing,
}

pub struct PendingCall {
    pub client_id: Id,
    pub rx: Receiver<Reply>,
    pub conn: Arc<Conn>,
    pub backend_id: i64,
    pub timeout: Duration,
    /// The client asked for progress: answer with an SSE stream.
    pub wants_progress: bool,
}

fn err(id: Id, code: i64, msg: impl Into<String>) -> Handled {
    Handled::Now(Message::error(Some(id), ErrorObj::new(code, msg)))
}

/// The gateway's initialize result for a negotiated revision.
pub fn initialize_result(rt: &Runtime, version: &str) -> Value {
    json!({
        "protocolVersion": version,
        "capabilities": {
            "tools": {"listChanged": true},
            "resources": {"listChanged": true},
            "prompts": {"listChanged": true},
            "logging": {},
            "completions": {},
        },
        "serverInfo": {
            "name": rt.config().server.name,
            "version": env!("CARGO_PKG_VERSION"),
        },
        "instructions": "MCP Sentinel: tools, resources and prompts of several MCP servers behind one endpoint.",
    })
}

pub fn handle(rt: &Runtime, session: &Arc<Session>, msg: Message, mode: Mode) -> Handled {
    match msg {
        Message::Request { id, method, params } => request(rt, session, id, &method, params, mode),
        Message::Notification { method, params } => {
            notification(session, &method, params);
            Handled::Nothing
        }
        // The gateway sends clients no requests, so answers are unexpected.
        Message::Response { .. } | Message::Error { .. } => Handled::Nothing,
    }
}

fn notification(session: &Session, m: &str, params: Option<Value>) {
    match m {
        method::INITIALIZED => session.initialized.store(true, Ordering::Relaxed),
        method::CANCELLED => {
            let Some(p) = params else { return };
            let Some(id) = p.get("requestId").and_then(id_of) else {
                return;
            };
            let reason = p.get("reason").and_then(Value::as_str).unwrap_or("cancelled by the client");
            if let Some((conn, bid)) = session.untrack(&id) {
                conn.cancel(bid, reason);
            }
        }
        _ => {}
    }
}

fn id_of(v: &Value) -> Option<Id> {
    match v {
        Value::Number(n) => n.as_i64().map(Id::Num),
        Value::String(s) => Some(Id::Str(s.as_str().into())),
        _ => None,
    }
}

fn request(rt: &Runtime, session: &Arc<Session>, id: Id, m: &str, params: Option<Value>, mode: Mode) -> Handled {
    let reg = rt.registry();
    let list = |raw: &Option<Box<serde_json::value::RawValue>>, id: Id, params: &Option<Value>| {
        // We never hand out cursors, so any cursor is one we did not issue.
        if params.as_ref().and_then(|p| p.get("cursor")).is_some_and(|c| !c.is_null()) {
            return err(id, code::INVALID_PARAMS, "Invalid cursor");
        }
        match raw {
            Some(r) => Handled::Now(Message::Response { id, result: r.clone() }),
            None => err(id, code::INTERNAL_ERROR, "list unavailable"),
        }
    };
    match m {
        method::INITIALIZE => {
            let asked = params.as_ref().and_then(|p| p.get("protocolVersion")).and_then(Value::as_str);
            let v = mcp::negotiate(asked);
            *session.version.lock() = v.to_owned();
            Handled::Now(Message::result(id, &initialize_result(rt, v)))
        }
        method::PING => Handled::Now(Message::result(id, &json!({}))),
        method::TOOLS_LIST => list(&reg.tools_json, id, &params),
        method::RESOURCES_LIST => list(&reg.resources_json, id, &params),
        method::RESOURCES_TEMPLATES_LIST => list(&reg.templates_json, id, &params),
        method::PROMPTS_LIST => list(&reg.prompts_json, id, &params),
        method::TOOLS_CALL | method::PROMPTS_GET => {
            let mut params = params.unwrap_or_else(|| json!({}));
            let Some(name) = params.get("name").and_then(Value::as_str) else {
                return err(id, code::INVALID_PARAMS, "params.name must be a string");
            };
            let (backend, original) = if m == method::TOOLS_CALL {
                match reg.tool(name) {
                    Some(t) => (t.backend.clone(), t.original.clone()),
                    None => {
                        // A tool of a backend that is down: say so, naming it.
                        return match reg.offline_tool(name).and_then(|b| rt.unavailable(b)) {
                            Some(e) => Handled::Now(Message::error(Some(id), e)),
                            None => err(id, code::INVALID_PARAMS, format!("Unknown tool: {name}")),
                        };
                    }
                }
            } else {
                match reg.prompt(name) {
                    Some(p) => (p.backend.clone(), p.original.clone()),
                    None => {
                        return match reg.offline_prompt(name).and_then(|b| rt.unavailable(b)) {
                            Some(e) => Handled::Now(Message::error(Some(id), e)),
                            None => err(id, code::INVALID_PARAMS, format!("Unknown prompt: {name}")),
                        };
                    }
                }
            };
            params["name"] = Value::from(original);
            forward(rt, session, id, &backend, m, params, mode)
        }
        method::RESOURCES_READ => {
            let params = params.unwrap_or_else(|| json!({}));
            let Some(uri) = params.get("uri").and_then(Value::as_str) else {
                return err(id, code::INVALID_PARAMS, "params.uri must be a string");
            };
            match reg.resource_owner(uri) {
                Some(b) => {
                    let b = b.clone();
                    forward(rt, session, id, &b, m, params, mode)
                }
                None => err(id, code::INVALID_PARAMS, format!("Unknown resource: {uri}")),
            }
        }
        method::COMPLETE => {
            let mut params = params.unwrap_or_else(|| json!({}));
            let r = params.get("ref").cloned().unwrap_or(Value::Null);
            let backend = match r.get("type").and_then(Value::as_str) {
                Some("ref/prompt") => {
                    let name = r.get("name").and_then(Value::as_str).unwrap_or("");
                    match reg.prompt(name) {
                        Some(p) => {
                            params["ref"]["name"] = Value::from(p.original.clone());
                            p.backend.clone()
                        }
                        None => return err(id, code::INVALID_PARAMS, format!("Unknown prompt: {name}")),
                    }
                }
                Some("ref/resource") => {
                    let uri = r.get("uri").and_then(Value::as_str).unwrap_or("");
                    match reg.resource_ref_owner(uri) {
                        Some(b) => b.clone(),
                        None => return err(id, code::INVALID_PARAMS, format!("Unknown resource: {uri}")),
                    }
                }
                _ => return err(id, code::INVALID_PARAMS, "params.ref must be a ref/prompt or ref/resource"),
            };
            forward(rt, session, id, &backend, m, params, mode)
        }
        method::SET_LEVEL => {
            let Some(level) = params.as_ref().and_then(|p| p.get("level")).and_then(Value::as_str) else {
                return err(id, code::INVALID_PARAMS, "params.level must be a string");
            };
            set_level(rt, level);
            Handled::Now(Message::result(id, &json!({})))
        }
        other => err(id, code::METHOD_NOT_FOUND, format!("Method not found: {other}")),
    }
}

/// Fans `logging/setLevel` out to every connected backend that logs; their
/// answers are awaited in parallel and failures only logged.
fn set_level(rt: &Runtime, level: &str) {
    let conns: Vec<Arc<Conn>> =
        rt.backends().iter().filter(|b| b.discovered().logging).filter_map(|b| b.conn()).collect();
    let waits: Vec<_> = conns
        .iter()
        .filter_map(|c| {
            let (tx, rx) = bounded(4);
            c.call(method::SET_LEVEL, Some(json!({ "level": level })), Sink::Chan(tx), Duration::from_secs(5))
                .ok()
                .map(|_| (c.backend.clone(), rx))
        })
        .collect();
    for (name, rx) in waits {
        match rx.recv_timeout(Duration::from_secs(6)) {
            Ok(Reply::Done(Ok(_))) => {}
            Ok(Reply::Done(Err(e))) => log::warn!("backend '{name}' refused logging/setLevel: {e}"),
            _ => log::warn!("backend '{name}' did not answer logging/setLevel"),
        }
    }
}

fn forward(rt: &Runtime, session: &Arc<Session>, id: Id, backend: &str, m: &str, params: Value, mode: Mode) -> Handled {
    let Some(b) = rt.backend(backend) else {
        return err(id, code::BACKEND_UNAVAILABLE, format!("backend '{backend}' is gone"));
    };
    let conn = match b.conn_for_call() {
        Ok(c) => c,
        Err(e) => return Handled::Now(Message::error(Some(id), e)),
    };
    let wants_progress = params.get("_meta").and_then(|m| m.get("progressToken")).is_some();
    let bid = conn.alloc_id();
    // Track before sending: the answer may come back before call() returns.
    if !session.track_new(id.clone(), conn.clone(), bid) {
        return err(id, code::INVALID_REQUEST, "request id is already in use by an in-flight request");
    }
    let timeout = b.timeout();
    let (sink, rx) = match mode {
        Mode::Outbox => (Sink::Session(session.clone(), id.clone()), None),
        Mode::Wait => {
            let (tx, rx) = bounded(64);
            (Sink::Chan(tx), Some(rx))
        }
    };
    if let Err(e) = conn.call_with_id(bid, m, Some(params), sink, timeout) {
        session.untrack(&id);
        return Handled::Now(Message::error(Some(id), e));
    }
    match rx {
        None => Handled::Queued,
        Some(rx) => Handled::Call(PendingCall { client_id: id, rx, conn, backend_id: bid, timeout, wants_progress }),
    }
}
