//! The gateway's MCP server logic, shared by both transports: answers what
//! the gateway owns (initialize, ping, the merged lists, log levels,
//! subscriptions it already holds) and forwards the rest to the owning
//! backend. Params travel as raw JSON: only the field the gateway rewrites
//! (a prefixed name) is touched, the rest reaches the backend byte for byte.

use crate::backend::{Backend, Conn, Sink};
use crate::codec::jsonrpc::{self, Raw};
use crate::codec::mcp::{self, method};
use crate::codec::{code, ErrorObj, Id, Message};
use crate::registry::Registry;
use crate::runtime::Runtime;
use crate::session::{ClientCaps, Session, TrackError};
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
    backend: Arc<Backend>,
    /// The shared connection (`None` for a `per_session` backend: the
    /// session's own is found when sending).
    conn: Option<Arc<Conn>>,
    method: &'static str,
    params: Option<Raw>,
    timeout: Duration,
    /// The client asked for progress (Streamable HTTP may answer with a stream).
    pub wants_progress: bool,
}

impl Forward {
    /// The method forwarded.
    pub fn method(&self) -> &'static str {
        self.method
    }

    /// Records the call in the session and sends it; its progress and
    /// answer go to `sink`. `Err` is the answer to give the client at once.
    /// For a `per_session` backend whose instance is still starting, the
    /// call is sent once it is up (or fails through `sink`).
    #[allow(clippy::result_large_err)] // an error answer is rare and goes out at once
    pub fn send(self, session: &Arc<Session>, sink: Sink) -> Result<(), Message> {
        let Forward { client_id, backend, conn, method, params, timeout, .. } = self;
        let call = Call { client_id, method, params, timeout };
        if let Some(conn) = conn {
            return call.start(&conn, session, sink);
        }
        let owner: Arc<dyn crate::route::ClientLink> = session.clone();
        let s = session.clone();
        backend.conn_for_session(
            &session.id,
            Arc::downgrade(&owner),
            Box::new(move |r| {
                let id = call.client_id.clone();
                let outcome = r.map_err(|e| Message::error(Some(id), e)).and_then(|c| call.start(&c, &s, sink.clone()));
                if let Err(Message::Error { error, .. }) = outcome {
                    sink.fail(error);
                }
            }),
        );
        Ok(())
    }
}

impl Forward {
    /// Sends the call for a client without a session (2026-07-28): on the
    /// backend's shared connection, tracked by nobody but the caller, who
    /// gets the handle that cancels it.
    #[allow(clippy::result_large_err)]
    pub fn send_stateless(self, sink: Sink) -> Result<Arc<dyn crate::route::CallHandle>, Message> {
        let Forward { client_id, backend, conn, method, params, timeout, .. } = self;
        let conn = match conn.map_or_else(|| backend.conn_for_call(), Ok) {
            Ok(c) => c,
            Err(e) => return Err(Message::error(Some(client_id), e)),
        };
        let bid = conn.alloc_id();
        let handle = conn.handle(bid);
        conn.call_with_id(bid, method, params, sink, timeout).map_err(|e| Message::error(Some(client_id), e))?;
        Ok(handle)
    }
}

/// The parts of a forwarded request that go to the backend.
struct Call {
    client_id: Id,
    method: &'static str,
    params: Option<Raw>,
    timeout: Duration,
}

impl Call {
    #[allow(clippy::result_large_err)]
    fn start(self, conn: &Arc<Conn>, session: &Arc<Session>, sink: Sink) -> Result<(), Message> {
        let Call { client_id, method, params, timeout } = self;
        let bid = conn.alloc_id();
        // A 2026-07-28 backend gets the session's capabilities and level
        // with the call, and may answer input_required: the bridge asks
        // the client and sends the next round (see `mrtr.rs`).
        let bridge = conn.is_modern().then(|| {
            let params = super::mrtr::envelope_for(session, params.clone());
            super::mrtr::Bridge::new(conn, session, method, params, timeout, sink.clone())
        });
        let handle: Arc<dyn crate::route::CallHandle> = match &bridge {
            Some(b) => b.clone(),
            None => conn.handle(bid),
        };
        // Track before sending: the answer may come back before call() returns.
        match session.track_new(client_id.clone(), handle) {
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
        let sent = match bridge {
            Some(b) => b.start(bid),
            None => conn.call_with_id(bid, method, params, sink, timeout),
        };
        if let Err(e) = sent {
            session.untrack(&client_id);
            return Err(Message::error(Some(client_id), e));
        }
        Ok(())
    }
}

fn err(id: Id, code: i64, msg: impl Into<String>) -> Handled {
    Handled::Now(Message::error(Some(id), ErrorObj::new(code, msg)))
}

/// What the gateway declares it can serve now, for `initialize` and for
/// 2026-07-28's `server/discover`: `resources.subscribe` only while some
/// connected backend supports subscriptions, `completions` only while some
/// backend offers them (of those `reg`, the client's view, draws from).
pub fn server_capabilities(rt: &Runtime, reg: &Registry) -> Value {
    let (subscribe, completions) = rt.backend_features(reg);
    let mut caps = json!({
        "tools": {"listChanged": true},
        "resources": {"listChanged": true, "subscribe": subscribe},
        "prompts": {"listChanged": true},
        "logging": {},
    });
    if completions {
        caps["completions"] = json!({});
    }
    caps
}

/// The gateway's `serverInfo` (the configured name, this version).
pub fn server_info(rt: &Runtime) -> Value {
    json!({"name": rt.config().server.name, "version": env!("CARGO_PKG_VERSION")})
}

/// What the gateway tells clients it is.
pub const INSTRUCTIONS: &str = "MCP Sentinel: tools, resources and prompts of several MCP servers behind one endpoint.";

/// The gateway's initialize result for a negotiated revision.
pub fn initialize_result(rt: &Runtime, reg: &Registry, version: &str) -> Value {
    json!({
        "protocolVersion": version,
        "capabilities": server_capabilities(rt, reg),
        "serverInfo": server_info(rt),
        "instructions": INSTRUCTIONS,
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
            notification(rt, session, &method, params);
            Handled::Nothing
        }
        // The client's answer to a request a backend made through us.
        Message::Response { id, result } => {
            if !session.answer(&id, Ok(result)) {
                log::debug!("session {}: answer to unknown request {id}", session.id);
            }
            Handled::Nothing
        }
        Message::Error { id: Some(id), error } => {
            if !session.answer(&id, Err(error)) {
                log::debug!("session {}: error answer to unknown request {id}", session.id);
            }
            Handled::Nothing
        }
        Message::Error { id: None, error } => {
            log::debug!("session {}: client sent an error without an id: {error}", session.id);
            Handled::Nothing
        }
    }
}

fn notification(rt: &Runtime, session: &Session, m: &str, params: Option<Raw>) {
    match m {
        method::INITIALIZED => session.initialized.store(true, Ordering::Relaxed),
        method::CANCELLED => {
            let Some(p) = params else { return };
            let Some(id) = jsonrpc::get_field(&p, "requestId").and_then(Id::from_raw) else {
                return;
            };
            let reason = jsonrpc::get_str(&p, "reason");
            if let Some(call) = session.untrack(&id) {
                call.cancel(reason.as_deref().unwrap_or("cancelled by the client"));
            }
        }
        // Backends that asked this client for roots learn they changed.
        method::ROOTS_CHANGED => rt.notify_backends(method::ROOTS_CHANGED),
        _ => {}
    }
}

/// A string field of the params, or the -32602 answer naming it.
fn str_param(params: &Option<Raw>, key: &str, id: &Id) -> Result<String, Handled> {
    params
        .as_deref()
        .and_then(|p| jsonrpc::get_str(p, key))
        .ok_or_else(|| err(id.clone(), code::INVALID_PARAMS, format!("params.{key} must be a string")))
}

/// The answer to a request of a client whose view is gone (a reload
/// removed it); the transports answer 404 before it gets here.
fn view_gone(id: Id, view: Option<&str>) -> Handled {
    let name = crate::util::printable(view.unwrap_or(""), 100);
    err(id, code::INVALID_REQUEST, format!("view '{name}' no longer exists; start a new session"))
}

fn request(rt: &Runtime, session: &Arc<Session>, id: Id, m: &str, params: Option<Raw>) -> Handled {
    let all = rt.registry();
    let view = session.view.as_deref();
    let Some(reg) = all.view(view) else {
        return view_gone(id, view);
    };
    let list = |raw: &Option<Box<serde_json::value::RawValue>>, id: Id, params: &Option<Raw>| {
        // We never hand out cursors, so any cursor is one we did not issue.
        if params.as_deref().and_then(|p| jsonrpc::get_field(p, "cursor")).is_some_and(|c| c.get().trim() != "null") {
            return err(id, code::INVALID_PARAMS, "Invalid cursor");
        }
        match raw {
            Some(r) => Handled::Now(Message::Response { id, result: r.clone() }),
            None => err(id, code::INTERNAL_ERROR, "list unavailable"),
        }
    };
    match m {
        method::INITIALIZE => {
            let p = params.as_deref().map(jsonrpc::value_of);
            let asked = p.as_ref().and_then(|p| p.get("protocolVersion")).and_then(Value::as_str);
            let v = mcp::negotiate(asked);
            *session.version.lock() = v.to_owned();
            session.set_caps(ClientCaps::from_params(p.as_ref()));
            Handled::Now(Message::result(id, &initialize_result(rt, reg, v)))
        }
        method::PING => Handled::Now(Message::result(id, &json!({}))),
        method::TOOLS_LIST => list(&reg.tools_json, id, &params),
        method::RESOURCES_LIST => list(&reg.resources_json, id, &params),
        method::RESOURCES_TEMPLATES_LIST => list(&reg.templates_json, id, &params),
        method::PROMPTS_LIST => list(&reg.prompts_json, id, &params),
        method::TOOLS_CALL | method::PROMPTS_GET | method::RESOURCES_READ => routed_in(rt, reg, id, m, params),
        method::SUBSCRIBE | method::UNSUBSCRIBE => subscription(rt, reg, session, id, m, params),
        method::COMPLETE => routed_in(rt, reg, id, m, params),
        method::SET_LEVEL => {
            let level = match str_param(&params, "level", &id) {
                Ok(l) => l,
                Err(h) => return h,
            };
            if !session.set_log_level(&level) {
                let msg = format!(
                    "unknown log level {:?}; one of {}",
                    crate::util::printable(&level, 40),
                    crate::route::LOG_LEVELS.join(", ")
                );
                return err(id, code::INVALID_PARAMS, msg);
            }
            rt.apply_log_level();
            Handled::Now(Message::result(id, &json!({})))
        }
        other => err(id, code::METHOD_NOT_FOUND, format!("Method not found: {}", crate::util::printable(other, 200))),
    }
}

/// A request the gateway forwards to the backend that owns what it names
/// (`tools/call`, `prompts/get`, `resources/read`, `completion/complete`),
/// with a prefixed name rewritten; both eras route the same way. Only
/// what `view` holds is found: anything else is unknown, as a name no
/// backend has.
pub fn routed(rt: &Runtime, view: Option<&str>, id: Id, m: &str, params: Option<Raw>) -> Handled {
    let all = rt.registry();
    match all.view(view) {
        Some(reg) => routed_in(rt, reg, id, m, params),
        None => view_gone(id, view),
    }
}

fn routed_in(rt: &Runtime, reg: &Registry, id: Id, m: &str, params: Option<Raw>) -> Handled {
    match m {
        method::TOOLS_CALL | method::PROMPTS_GET => {
            let name = match str_param(&params, "name", &id) {
                Ok(n) => n,
                Err(h) => return h,
            };
            let found = if m == method::TOOLS_CALL {
                reg.tool(&name).map(|t| (t.backend.clone(), t.original.clone()))
            } else {
                reg.prompt(&name).map(|p| (p.backend.clone(), p.original.clone()))
            };
            let Some((backend, original)) = found else {
                // One of a backend that is down: say so, naming it.
                let offline = if m == method::TOOLS_CALL { reg.offline_tool(&name) } else { reg.offline_prompt(&name) };
                if let Some(e) = offline.and_then(|b| rt.unavailable(b)) {
                    return Handled::Now(Message::error(Some(id), e));
                }
                let kind = if m == method::TOOLS_CALL { "tool" } else { "prompt" };
                return err(
                    id,
                    code::INVALID_PARAMS,
                    format!("Unknown {kind}: {}", crate::util::printable(&name, 200)),
                );
            };
            let params = match params {
                Some(p) if original != name => {
                    jsonrpc::set_fields(&p, &[("name", &jsonrpc::to_raw(&Value::from(original)))])
                }
                p => p,
            };
            forward(rt, id, &backend, m, params)
        }
        method::RESOURCES_READ => {
            let uri = match str_param(&params, "uri", &id) {
                Ok(u) => u,
                Err(h) => return h,
            };
            match reg.resource_owner(&uri) {
                Some(b) => {
                    let b = b.clone();
                    forward(rt, id, &b, m, params)
                }
                None => unknown_resource(id, &uri),
            }
        }
        method::COMPLETE => complete(rt, reg, id, params),
        other => err(id, code::METHOD_NOT_FOUND, format!("Method not found: {}", crate::util::printable(other, 200))),
    }
}

fn unknown_resource(id: Id, uri: &str) -> Handled {
    err(id, code::INVALID_PARAMS, format!("Unknown resource: {}", crate::util::printable(uri, 200)))
}

/// `resources/subscribe` and `resources/unsubscribe`. The gateway holds one
/// subscription per URI at the owning backend, however many sessions
/// subscribed: the first subscriber's request goes to the backend, later
/// ones are answered here; the last unsubscribe (or the last subscriber's
/// session ending) unsubscribes at the backend.
fn subscription(rt: &Runtime, reg: &Registry, session: &Session, id: Id, m: &str, params: Option<Raw>) -> Handled {
    let uri = match str_param(&params, "uri", &id) {
        Ok(u) => u,
        Err(h) => return h,
    };
    let Some(owner) = reg.resource_ref_owner(&uri).cloned() else {
        return unknown_resource(id, &uri);
    };
    let per_session = rt.backend(&owner).is_some_and(|b| b.config.per_session.is_some());
    if per_session {
        // The session's own connection holds its own subscriptions.
        return forward(rt, id, &owner, m, params);
    }
    // A 2026-07-28 backend has no subscribe method: the gateway's listen
    // names the URIs instead, and the answer is the gateway's.
    let modern = rt.backend(&owner).and_then(|b| b.conn()).filter(|c| c.is_modern());
    if let Some(c) = modern {
        let held = if m == method::UNSUBSCRIBE {
            rt.subscriptions.remove(&uri, &session.id) == Some(true)
        } else if rt.backend(&owner).is_some_and(|b| b.discovered().subscribe) {
            rt.subscriptions.add(&uri, &owner, &session.id)
        } else {
            let msg = format!("backend '{owner}' does not support resource subscriptions");
            return err(id, code::METHOD_NOT_FOUND, msg);
        };
        if held {
            crate::backend::subscribe(&c, &uri, m != method::UNSUBSCRIBE);
        }
        return Handled::Now(Message::result(id, &json!({})));
    }
    if m == method::UNSUBSCRIBE {
        return match rt.subscriptions.remove(&uri, &session.id) {
            Some(true) => forward(rt, id, &owner, m, params),
            _ => Handled::Now(Message::result(id, &json!({}))),
        };
    }
    let supports = rt.backend(&owner).is_some_and(|b| b.discovered().subscribe);
    if !supports {
        let msg = format!("backend '{owner}' does not support resource subscriptions");
        return err(id, code::METHOD_NOT_FOUND, msg);
    }
    if !rt.subscriptions.add(&uri, &owner, &session.id) {
        return Handled::Now(Message::result(id, &json!({})));
    }
    let h = forward(rt, id, &owner, m, params);
    if matches!(h, Handled::Now(_)) {
        // Could not even be sent: nobody holds it at the backend.
        rt.subscriptions.remove(&uri, &session.id);
    }
    h
}

fn complete(rt: &Runtime, reg: &Registry, id: Id, params: Option<Raw>) -> Handled {
    let mut p = params.as_deref().map(jsonrpc::value_of).unwrap_or_else(|| json!({}));
    let r = p.get("ref").cloned().unwrap_or(Value::Null);
    let (backend, params) = match r.get("type").and_then(Value::as_str) {
        Some("ref/prompt") => {
            let name = r.get("name").and_then(Value::as_str).unwrap_or("");
            let Some(prompt) = reg.prompt(name) else {
                return err(id, code::INVALID_PARAMS, format!("Unknown prompt: {}", crate::util::printable(name, 200)));
            };
            if *prompt.original == *name {
                (prompt.backend.clone(), params)
            } else {
                p["ref"]["name"] = Value::from(prompt.original.clone());
                (prompt.backend.clone(), Some(jsonrpc::to_raw(&p)))
            }
        }
        Some("ref/resource") => {
            let uri = r.get("uri").and_then(Value::as_str).unwrap_or("");
            match reg.resource_ref_owner(uri) {
                Some(b) => (b.clone(), params),
                None => return unknown_resource(id, uri),
            }
        }
        _ => return err(id, code::INVALID_PARAMS, "params.ref must be a ref/prompt or ref/resource"),
    };
    forward(rt, id, &backend, method::COMPLETE, params)
}

fn forward(rt: &Runtime, id: Id, backend: &str, m: &str, params: Option<Raw>) -> Handled {
    let Some(b) = rt.backend(backend) else {
        return err(id, code::BACKEND_UNAVAILABLE, format!("backend '{backend}' is gone"));
    };
    let conn = match b.conn_for_call() {
        Ok(c) => c,
        Err(e) => return Handled::Now(Message::error(Some(id), e)),
    };
    let conn = b.config.per_session.is_none().then_some(conn);
    let Some(method) = method::forwarded(m) else {
        return err(id, code::METHOD_NOT_FOUND, format!("Method not found: {m}"));
    };
    let wants_progress = params
        .as_deref()
        .and_then(|p| jsonrpc::get_field(p, "_meta"))
        .and_then(|m| jsonrpc::get_field(m, "progressToken"))
        .is_some();
    let timeout = b.timeout();
    Handled::Forward(Forward { client_id: id, backend: b, conn, method, params, timeout, wants_progress })
}
