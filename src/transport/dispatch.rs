//! The gateway's MCP server logic, shared by both transports: answers what
//! the gateway owns (initialize, ping, the merged lists) and forwards the
//! rest to the owning backend with ids mapped per session.

use crate::backend::{Conn, ReplyTo, Sink};
use crate::codec::mcp::{self, method};
use crate::codec::{code, ErrorObj, Id, Message};
use crate::runtime::Runtime;
use crate::session::{Session, TrackError};
use serde_json::value::RawValue;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

pub enum Handled {
    /// Answer now.
    Now(Message),
    /// To be forwarded to a backend: the transport picks where its answer
    /// goes and calls [`Forward::send`].
    Forward(Forward),
    /// A notification or response: nothing to answer.
    Nothing,
}

/// A client request on its way to a backend.
pub struct Forward {
    pub client_id: Id,
    conn: Arc<Conn>,
    method: &'static str,
    params: Value,
    timeout: Duration,
    /// The client asked for progress (Streamable HTTP may answer with a stream).
    pub wants_progress: bool,
}

impl Forward {
    /// Records the call in the session and sends it; its progress and
    /// answer go to `sink`. `Err` is the answer to give the client at once.
    #[allow(clippy::result_large_err)] // an error answer is rare and goes out at once
    pub fn send(self, session: &Session, sink: Sink) -> Result<(), Message> {
        let Forward { client_id, conn, method, params, timeout, .. } = self;
        let bid = conn.alloc_id();
        // Track before sending: the answer may come back before call() returns.
        match session.track_new(client_id.clone(), conn.clone(), bid) {
            Ok(()) => {}
            Err(TrackError::Duplicate) => {
                return Err(Message::error(
                    Some(client_id),
                    ErrorObj::new(code::INVALID_REQUEST, "request id is already in use by an in-flight request"),
                ))
            }
            Err(TrackError::TooMany(n)) => {
                return Err(Message::error(
                    Some(client_id),
                    ErrorObj::new(
                        code::INVALID_REQUEST,
                        format!("too many requests in flight in this session (at most {n}); wait for some to finish"),
                    ),
                ))
            }
        }
        if let Err(e) = conn.call_with_id(bid, method, Some(params), sink, timeout) {
            session.untrack(&client_id);
            return Err(Message::error(Some(client_id), e));
        }
        Ok(())
    }
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

pub fn handle(rt: &Runtime, session: &Arc<Session>, msg: Message) -> Handled {
    match msg {
        Message::Request { id, method, params } => {
            if method != method::INITIALIZE {
                session.count_request();
            }
            request(rt, session, id, &method, params)
        }
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

fn request(rt: &Runtime, session: &Arc<Session>, id: Id, m: &str, params: Option<Value>) -> Handled {
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
                            None => err(
                                id,
                                code::INVALID_PARAMS,
                                format!("Unknown tool: {}", crate::util::printable(name, 200)),
                            ),
                        };
                    }
                }
            } else {
                match reg.prompt(name) {
                    Some(p) => (p.backend.clone(), p.original.clone()),
                    None => {
                        return match reg.offline_prompt(name).and_then(|b| rt.unavailable(b)) {
                            Some(e) => Handled::Now(Message::error(Some(id), e)),
                            None => err(
                                id,
                                code::INVALID_PARAMS,
                                format!("Unknown prompt: {}", crate::util::printable(name, 200)),
                            ),
                        };
                    }
                }
            };
            params["name"] = Value::from(original);
            forward(rt, id, &backend, m, params)
        }
        method::RESOURCES_READ => {
            let params = params.unwrap_or_else(|| json!({}));
            let Some(uri) = params.get("uri").and_then(Value::as_str) else {
                return err(id, code::INVALID_PARAMS, "params.uri must be a string");
            };
            match reg.resource_owner(uri) {
                Some(b) => {
                    let b = b.clone();
                    forward(rt, id, &b, m, params)
                }
                None => {
                    err(id, code::INVALID_PARAMS, format!("Unknown resource: {}", crate::util::printable(uri, 200)))
                }
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
                        None => {
                            return err(
                                id,
                                code::INVALID_PARAMS,
                                format!("Unknown prompt: {}", crate::util::printable(name, 200)),
                            )
                        }
                    }
                }
                Some("ref/resource") => {
                    let uri = r.get("uri").and_then(Value::as_str).unwrap_or("");
                    match reg.resource_ref_owner(uri) {
                        Some(b) => b.clone(),
                        None => {
                            return err(
                                id,
                                code::INVALID_PARAMS,
                                format!("Unknown resource: {}", crate::util::printable(uri, 200)),
                            )
                        }
                    }
                }
                _ => return err(id, code::INVALID_PARAMS, "params.ref must be a ref/prompt or ref/resource"),
            };
            forward(rt, id, &backend, m, params)
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

/// Fans `logging/setLevel` out to every connected backend that logs,
/// without waiting: a refusal is only logged.
fn set_level(rt: &Runtime, level: &str) {
    struct LogRefusal(Arc<str>);
    impl ReplyTo for LogRefusal {
        fn progress(&self, _: Value) {}
        fn done(&self, r: Result<Box<RawValue>, ErrorObj>) {
            if let Err(e) = r {
                log::warn!("backend '{}' refused logging/setLevel: {e}", self.0);
            }
        }
    }
    for c in rt.backends().iter().filter(|b| b.discovered().logging).filter_map(|b| b.conn()) {
        let sink = Sink::Reply(Arc::new(LogRefusal(c.backend.clone())));
        if let Err(e) = c.call(method::SET_LEVEL, Some(json!({ "level": level })), sink, Duration::from_secs(5)) {
            log::warn!("backend '{}': cannot send logging/setLevel: {e}", c.backend);
        }
    }
}

fn forward(rt: &Runtime, id: Id, backend: &str, m: &str, params: Value) -> Handled {
    let Some(b) = rt.backend(backend) else {
        return err(id, code::BACKEND_UNAVAILABLE, format!("backend '{backend}' is gone"));
    };
    let conn = match b.conn_for_call() {
        Ok(c) => c,
        Err(e) => return Handled::Now(Message::error(Some(id), e)),
    };
    let Some(method) = method::forwarded(m) else {
        return err(id, code::METHOD_NOT_FOUND, format!("Method not found: {m}"));
    };
    let wants_progress = params.get("_meta").and_then(|m| m.get("progressToken")).is_some();
    Handled::Forward(Forward { client_id: id, conn, method, params, timeout: b.timeout(), wants_progress })
}
