//! MCP 2026-07-28 on `/mcp`, beside the session revisions: chosen per
//! request by `MCP-Protocol-Version: 2026-07-28`. A modern request carries
//! what it needs in `params._meta` (version, client capabilities, log level,
//! trace context) and needs no session: `server/discover`, the merged
//! lists (with `resultType`, `ttlMs`, `cacheScope`), the forwarded calls,
//! and `subscriptions/listen` (a stream of list changes and resource
//! updates). `Mcp-Method` and `Mcp-Name` are checked against the body.
//!
//! A call is a [`ModernCall`]: the call's sink, and, to the backend, its
//! client. A legacy backend's request to the client while serving the call
//! (sampling, elicitation, roots) ends the HTTP request with an
//! `input_required` result; the backend's request waits in [`Held`] until
//! the client retries with `inputResponses` and the gateway's
//! `requestState`, whose answers go to the backend, and the retry's
//! request then carries the call on. Closing the response stream cancels
//! the call.

use super::dispatch::{self, Handled};
use super::{body_error, json_body, json_response, sse_headers, stream_opts};
use crate::backend::Sink;
use crate::codec::jsonrpc::{self, Parsed, Raw};
use crate::codec::mcp::{self, meta, method};
use crate::codec::{code, ErrorObj, Id, Message};
use crate::http::{Request, Responder, Response, Stream, StreamOpts};
use crate::route::{Answer, CallHandle, CallSink, ClientCap, ClientLink};
use crate::runtime::Runtime;
use crate::session::{ClientCaps, CreateError, ListenFilter, Transport};
use parking_lot::Mutex;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// `subscriptions/listen` streams one client address may hold at once.
pub const MAX_LISTENS_PER_CLIENT: usize = 16;
/// Calls waiting for a client's retry with `inputResponses`, at most.
pub const MAX_HELD: usize = 4096;
/// Marks a `requestState` the gateway issued (any other goes to the backend).
const STATE_PREFIX: &str = "sentinel.v1.";

/// The HTTP status of a modern error answer (the revision's table).
fn status_for(code: i64) -> u16 {
    match code {
        code::PARSE_ERROR
        | code::INVALID_REQUEST
        | code::INVALID_PARAMS
        | code::HEADER_MISMATCH
        | code::MISSING_CLIENT_CAPABILITY
        | code::UNSUPPORTED_PROTOCOL_VERSION => 400,
        code::METHOD_NOT_FOUND => 404,
        _ => 200,
    }
}

fn error_response(id: Option<Id>, e: ErrorObj) -> Response {
    json_response(status_for(e.code), Message::error(id, e).to_bytes())
}

fn mismatch(what: impl Into<String>) -> ErrorObj {
    ErrorObj::new(code::HEADER_MISMATCH, what)
}

/// A modern request other than POST: there is no stream to GET and no
/// session to DELETE.
pub fn not_post(res: Responder) {
    let e = ErrorObj::new(code::INVALID_REQUEST, "2026-07-28 requests are POSTs only");
    res.send(error_response(None, e).with_status(405).with_header("Allow", "POST"));
}

/// A modern request on `/mcp` (`view` `None`) or `/mcp/<view>`: each one
/// carries its view, and sees only what the view holds.
pub fn post(rt: &Arc<Runtime>, held: &Arc<Held>, req: Request, res: Responder, view: Option<&str>) {
    let accept = req.header("Accept").map(str::to_ascii_lowercase);
    if let Some(a) = &accept {
        let both = a.contains("application/json") && a.contains("text/event-stream");
        if !(both || a.contains("*/*")) {
            let e = ErrorObj::new(code::INVALID_REQUEST, "Accept must list application/json and text/event-stream");
            return res.send(error_response(None, e).with_status(406));
        }
    }
    let body = match json_body(&req) {
        Ok(b) => b,
        Err(e) => return res.send(body_error(e)),
    };
    let msg = match jsonrpc::parse(body) {
        Ok(Parsed::Single(Ok(m))) => m,
        Err(e) | Ok(Parsed::Single(Err(e))) => return res.send(error_response(None, e)),
        Ok(Parsed::Batch(_)) => {
            let e = ErrorObj::new(code::INVALID_REQUEST, "JSON-RPC batches are not part of 2026-07-28");
            return res.send(error_response(None, e));
        }
    };
    let Message::Request { id, method: m, params } = msg else {
        // Notifications (a cancel is closing the stream here) and stray
        // responses: nothing to do.
        return res.send(Response::empty(202));
    };
    let envelope = match Envelope::read(&req, &m, params.as_deref()) {
        Ok(e) => e,
        Err(e) => return res.send(error_response(Some(id), e)),
    };
    let all = rt.registry();
    let Some(reg) = all.view(view) else {
        return res.send(super::unknown_view(view.unwrap_or("")));
    };
    match m.as_str() {
        method::DISCOVER => res.send(json_response(200, Message::result(id, &discover(rt, reg)).to_bytes())),
        method::TOOLS_LIST | method::PROMPTS_LIST | method::RESOURCES_LIST | method::RESOURCES_TEMPLATES_LIST => {
            res.send(list(rt, reg, id, &m, params.as_deref()))
        }
        method::TOOLS_CALL | method::PROMPTS_GET | method::RESOURCES_READ | method::COMPLETE => {
            call(rt, held, res, id, &m, params, envelope, view)
        }
        method::LISTEN => listen(rt, reg, res, id, params.as_deref(), view),
        other => {
            let e = ErrorObj::new(code::METHOD_NOT_FOUND, "Method not found").with_data(json!(other));
            res.send(error_response(Some(id), e))
        }
    }
}

/// What a modern request says about its client, from `params._meta`.
struct Envelope {
    caps: ClientCaps,
    log_level: Option<usize>,
}

impl Envelope {
    /// Reads and checks the envelope and the routing headers.
    fn read(req: &Request, m: &str, params: Option<&RawValue>) -> Result<Envelope, ErrorObj> {
        let meta = params.and_then(|p| jsonrpc::get_field(p, "_meta"));
        let version = meta.and_then(|mt| jsonrpc::get_str(mt, meta::PROTOCOL_VERSION));
        let caps = meta.and_then(|mt| jsonrpc::get_field(mt, meta::CLIENT_CAPABILITIES));
        let (Some(version), Some(caps)) = (version, caps.filter(|c| c.get().trim_start().starts_with('{'))) else {
            return Err(ErrorObj::new(
                code::INVALID_PARAMS,
                format!(
                    "params._meta must be an object carrying '{}' and '{}'",
                    meta::PROTOCOL_VERSION,
                    meta::CLIENT_CAPABILITIES
                ),
            ));
        };
        let header = req.header("MCP-Protocol-Version").map(str::trim).unwrap_or("");
        if header != version {
            return Err(mismatch(format!(
                "MCP-Protocol-Version {:?} does not match params._meta's protocolVersion {:?}",
                crate::util::printable(header, 40),
                crate::util::printable(&version, 40)
            )));
        }
        match req.header("Mcp-Method").map(|v| decode_header(v.trim())) {
            Some(Some(h)) if h == m => {}
            _ => return Err(mismatch("Mcp-Method header does not match the request body's method")),
        }
        if let Some(field) = name_field(m) {
            let body = params.and_then(|p| jsonrpc::get_str(p, field));
            let header = req.header("Mcp-Name").and_then(|v| decode_header(v.trim()));
            if body.is_none() || header != body {
                return Err(mismatch(format!("Mcp-Name header does not match the request body's '{field}' parameter")));
            }
        }
        let caps_value = jsonrpc::value_of(caps);
        let caps = ClientCaps::from_params(Some(&json!({ "capabilities": caps_value })));
        let log_level = match meta.and_then(|mt| jsonrpc::get_str(mt, meta::LOG_LEVEL)) {
            None => None,
            Some(l) => match crate::route::log_rank(&l) {
                Some(r) => Some(r),
                None => {
                    return Err(ErrorObj::new(
                        code::INVALID_PARAMS,
                        format!("unknown log level {:?}", crate::util::printable(&l, 40)),
                    ))
                }
            },
        };
        Ok(Envelope { caps, log_level })
    }
}

/// The body field `Mcp-Name` mirrors for `method`, if it carries one.
pub fn name_field(m: &str) -> Option<&'static str> {
    match m {
        method::TOOLS_CALL | method::PROMPTS_GET => Some("name"),
        method::RESOURCES_READ => Some("uri"),
        _ => None,
    }
}

/// A header value as sent: plain, or `=?base64?…?=` for values that are
/// not plain ASCII. `None` if the encoding is broken.
fn decode_header(v: &str) -> Option<String> {
    match v.strip_prefix("=?base64?").and_then(|r| r.strip_suffix("?=")) {
        Some(b64) => String::from_utf8(crate::util::base64_decode(b64)?).ok(),
        None => Some(v.to_owned()),
    }
}

/// `server/discover`: the revisions served and what the gateway offers now.
fn discover(rt: &Runtime, reg: &crate::registry::Registry) -> Value {
    json!({
        "supportedVersions": mcp::ALL_VERSIONS,
        "capabilities": dispatch::server_capabilities(rt, reg),
        "instructions": dispatch::INSTRUCTIONS,
        "resultType": "complete",
        // What the gateway serves changes as backends come and go.
        "ttlMs": 0,
        "cacheScope": "private",
        "_meta": {meta::SERVER_INFO: dispatch::server_info(rt)},
    })
}

/// A merged list with the 2026-07-28 fields: `resultType`, and the cache
/// hints of the lists it was merged from (the smallest `ttlMs`; `private`
/// unless every part is `public`; a legacy backend gives none: 0, private).
fn list(rt: &Runtime, reg: &crate::registry::Registry, id: Id, m: &str, params: Option<&RawValue>) -> Response {
    if params.and_then(|p| jsonrpc::get_field(p, "cursor")).is_some_and(|c| c.get().trim() != "null") {
        return error_response(Some(id), ErrorObj::new(code::INVALID_PARAMS, "Invalid cursor"));
    }
    let raw = match m {
        method::TOOLS_LIST => &reg.tools_json,
        method::PROMPTS_LIST => &reg.prompts_json,
        method::RESOURCES_LIST => &reg.resources_json,
        _ => &reg.templates_json,
    };
    let Some(raw) = raw else {
        return error_response(Some(id), ErrorObj::new(code::INTERNAL_ERROR, "list unavailable"));
    };
    let (ttl, public) = rt.list_hints(reg, m);
    let scope = if public { "public" } else { "private" };
    let fields = [
        ("resultType", jsonrpc::to_raw(&json!("complete"))),
        ("ttlMs", jsonrpc::to_raw(&json!(ttl))),
        ("cacheScope", jsonrpc::to_raw(&json!(scope))),
    ];
    let set: Vec<(&str, &RawValue)> = fields.iter().map(|(k, v)| (*k, &**v)).collect();
    match jsonrpc::set_fields(raw, &set) {
        Some(result) => json_response(200, Message::Response { id, result }.to_bytes()),
        None => error_response(Some(id), ErrorObj::new(code::INTERNAL_ERROR, "list unavailable")),
    }
}

#[allow(clippy::too_many_arguments)]
fn call(
    rt: &Arc<Runtime>,
    held: &Arc<Held>,
    res: Responder,
    id: Id,
    m: &str,
    params: Option<Raw>,
    envelope: Envelope,
    view: Option<&str>,
) {
    let state = params.as_deref().and_then(|p| jsonrpc::get_str(p, "requestState"));
    if let Some(token) = state.filter(|s| s.starts_with(STATE_PREFIX)) {
        return retry(held, res, id, &token, params.as_deref());
    }
    let wants_progress = params
        .as_deref()
        .and_then(|p| jsonrpc::get_field(p, "_meta"))
        .and_then(|mt| jsonrpc::get_field(mt, "progressToken"))
        .is_some();
    let Some(m) = method::forwarded(m) else { return };
    let call = ModernCall::new(rt, held, m, envelope, wants_progress);
    call.attach(res, id.clone());
    match dispatch::routed(rt, view, id, m, params) {
        Handled::Now(Message::Error { error, .. }) => call.finish(Err(error)),
        Handled::Now(Message::Response { result, .. }) => call.finish(Ok(result)),
        Handled::Now(_) | Handled::Nothing => call.finish(Err(ErrorObj::new(code::INTERNAL_ERROR, "no answer"))),
        Handled::Forward(f) => match f.send_stateless(Sink::Route(call.clone())) {
            Ok(handle) => call.set_handle(handle),
            Err(Message::Error { error, .. }) => call.finish(Err(error)),
            Err(_) => call.finish(Err(ErrorObj::new(code::INTERNAL_ERROR, "no answer"))),
        },
    }
}

/// A client's retry of a call the gateway ended with `input_required`:
/// its answers go to the backend's waiting requests, and this request
/// carries the call on (or asks again for what is still missing).
fn retry(held: &Arc<Held>, res: Responder, id: Id, token: &str, params: Option<&RawValue>) {
    let Some(entry) = held.take(token) else {
        let e = ErrorObj::new(code::INVALID_PARAMS, "Invalid or expired requestState")
            .with_data(json!({"reason": "invalid_request_state"}));
        return res.send(error_response(Some(id), e));
    };
    let responses: HashMap<String, Raw> = params
        .and_then(|p| jsonrpc::get_field(p, "inputResponses"))
        .and_then(jsonrpc::entries)
        .map(|e| e.into_iter().map(|(k, v)| (k.into_owned(), v.to_owned())).collect())
        .unwrap_or_default();
    let HeldCall { call, pending, .. } = entry;
    let (answered, missing): (Vec<Pending>, Vec<Pending>) =
        pending.into_iter().partition(|p| responses.contains_key(&p.key));
    call.attach(res, id);
    if !missing.is_empty() {
        // Missing answers are asked again, not an error (the revision says so).
        call.ask(missing);
    }
    for p in answered {
        if let Some(r) = responses.get(&p.key) {
            (p.answer)(Ok(r.clone()));
        }
    }
    call.resume();
}

/// `subscriptions/listen`: a stream of list changes and resource updates,
/// opened by the acknowledgement of what it will carry.
fn listen(
    rt: &Arc<Runtime>,
    reg: &crate::registry::Registry,
    res: Responder,
    id: Id,
    params: Option<&RawValue>,
    view: Option<&str>,
) {
    let filter = params.and_then(|p| jsonrpc::get_field(p, "notifications")).map(jsonrpc::value_of);
    let Some(filter) = filter.filter(Value::is_object) else {
        let e = ErrorObj::new(code::INVALID_PARAMS, "params.notifications must be an object");
        return res.send(error_response(Some(id), e));
    };
    let peer = res.remote().map(|a| a.ip());
    let held_here = rt.sessions.all().iter().filter(|s| s.transport == Transport::Listen && s.peer() == peer).count();
    if held_here >= MAX_LISTENS_PER_CLIENT {
        let e = ErrorObj::new(
            code::INVALID_REQUEST,
            format!("at most {MAX_LISTENS_PER_CLIENT} subscriptions/listen streams per client; close one first"),
        );
        return res.send(error_response(Some(id), e));
    }
    let session = match rt.sessions.create_in(Transport::Listen, mcp::MODERN_VERSION, view) {
        Ok(s) => s,
        Err(e @ CreateError::Full(_)) => {
            let e = ErrorObj::new(code::INTERNAL_ERROR, e.to_string());
            return res.send(error_response(Some(id), e).with_status(503).with_header("Retry-After", "1"));
        }
        Err(e) => return res.send(error_response(Some(id), ErrorObj::new(code::INTERNAL_ERROR, e.to_string()))),
    };
    let flag = |k: &str| filter.get(k).and_then(Value::as_bool).unwrap_or(false);
    let (tools, prompts, resources) =
        (flag("toolsListChanged"), flag("promptsListChanged"), flag("resourcesListChanged"));
    session.set_listen(ListenFilter { subscription_id: id.to_raw(), tools, prompts, resources }, peer);
    // Resource subscriptions: held by the gateway at each owning backend
    // that supports them, for as long as this stream lives.
    let mut honored = Vec::new();
    for uri in filter.get("resourceSubscriptions").and_then(Value::as_array).into_iter().flatten() {
        let Some(uri) = uri.as_str() else { continue };
        let Some(owner) = reg.resource_ref_owner(uri).cloned() else { continue };
        let Some(b) = rt.backend(&owner).filter(|b| b.discovered().subscribe) else { continue };
        if rt.subscriptions.add(uri, &owner, &session.id) {
            if let Some(c) = b.conn() {
                crate::backend::subscribe(&c, uri, true);
            }
        }
        if rt.subscriptions.subscribers(uri).contains(&session.id) {
            honored.push(uri.to_owned());
        }
    }
    let stream = res.stream(200, &sse_headers(), stream_opts(rt));
    let weak = Arc::downgrade(rt);
    let sid = session.id.clone();
    stream.on_close(Box::new(move || {
        if let Some(rt) = weak.upgrade() {
            rt.sessions.remove(&sid);
        }
    }));
    if !session.attach(stream, None) {
        rt.sessions.remove(&session.id);
        return;
    }
    let mut notifications = serde_json::Map::new();
    for (key, on) in [("toolsListChanged", tools), ("promptsListChanged", prompts), ("resourcesListChanged", resources)]
    {
        if on {
            notifications.insert(key.into(), json!(true));
        }
    }
    if filter.get("resourceSubscriptions").is_some() {
        notifications.insert("resourceSubscriptions".into(), json!(honored));
    }
    let ack = Message::notification(
        method::SUBSCRIPTIONS_ACKNOWLEDGED,
        Some(json!({"_meta": {meta::SUBSCRIPTION_ID: id.to_value()}, "notifications": notifications})),
    );
    session.push(ack.to_bytes());
}

/// One backend request waiting for the client's answer in a retry.
pub struct Pending {
    key: String,
    method: String,
    params: Option<Raw>,
    answer: Answer,
}

/// A call ended with `input_required`, waiting for the client's retry.
struct HeldCall {
    call: Arc<ModernCall>,
    pending: Vec<Pending>,
    deadline: Instant,
}

/// The calls waiting for clients' retries, by the `requestState` the
/// gateway gave them. Bounded; the admin tick fails what waits too long.
#[derive(Default)]
pub struct Held {
    map: Mutex<HashMap<String, HeldCall>>,
}

impl Held {
    fn take(&self, token: &str) -> Option<HeldCall> {
        self.map.lock().remove(token)
    }

    /// Fails the backend requests whose client never retried.
    pub fn sweep(&self, now: Instant) {
        let late: Vec<HeldCall> = {
            let mut m = self.map.lock();
            let keys: Vec<String> = m.iter().filter(|(_, h)| h.deadline <= now).map(|(k, _)| k.clone()).collect();
            keys.iter().filter_map(|k| m.remove(k)).collect()
        };
        for h in late {
            for p in h.pending {
                let msg = format!("the client did not retry with inputResponses for {} in time", p.method);
                (p.answer)(Err(ErrorObj::new(code::REQUEST_TIMEOUT, msg)));
            }
            h.call.abandon();
        }
    }

    pub fn len(&self) -> usize {
        self.map.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Where a modern call's answer goes now.
enum Out {
    /// The HTTP request waiting for it, and the JSON-RPC id it used.
    Waiting(Responder, Id),
    Streaming(Stream, Id),
    /// Ended with `input_required`: waiting for the client's retry.
    Held,
    Done,
}

struct Inner {
    out: Out,
    handle: Option<Arc<dyn CallHandle>>,
    /// The outcome, if it came while the call was held.
    parked: Option<Result<Raw, ErrorObj>>,
    /// Requests the backend made while the call was held: asked in the
    /// next round.
    queued: Vec<Pending>,
}

/// A forwarded call of a 2026-07-28 client (no session): its sink, and its
/// client as the backend sees it.
pub struct ModernCall {
    me: Weak<ModernCall>,
    id: Arc<str>,
    held: Arc<Held>,
    method: &'static str,
    caps: ClientCaps,
    log_level: Option<usize>,
    wants_progress: bool,
    opts: StreamOpts,
    /// How long a backend request waits for the client's retry.
    wait: Duration,
    inner: Mutex<Inner>,
}

static NEXT_CALL: AtomicU64 = AtomicU64::new(1);
static NEXT_KEY: AtomicU64 = AtomicU64::new(1);

impl ModernCall {
    fn new(rt: &Runtime, held: &Arc<Held>, m: &'static str, env: Envelope, wants_progress: bool) -> Arc<ModernCall> {
        // Each modern call is a client of its own for routing: the
        // backend's requests during it are its, and several at once on
        // one shared connection are as ambiguous as several sessions.
        let id: Arc<str> = format!("modern-{}", NEXT_CALL.fetch_add(1, Ordering::Relaxed)).into();
        let wait = rt.backends().iter().map(|b| b.timeout()).max().unwrap_or(Duration::from_secs(60));
        Arc::new_cyclic(|me| ModernCall {
            me: me.clone(),
            id,
            held: held.clone(),
            method: m,
            caps: env.caps,
            log_level: env.log_level,
            wants_progress,
            opts: stream_opts(rt),
            wait,
            inner: Mutex::new(Inner { out: Out::Done, handle: None, parked: None, queued: Vec::new() }),
        })
    }

    /// The HTTP request that now waits for this call's answer. Closing it
    /// before the answer cancels the call (2026-07-28: the stream is the
    /// request).
    fn attach(&self, res: Responder, id: Id) {
        let weak = self.me.clone();
        res.on_close(Box::new(move || {
            if let Some(c) = weak.upgrade() {
                c.client_gone();
            }
        }));
        self.inner.lock().out = Out::Waiting(res, id);
    }

    fn set_handle(&self, h: Arc<dyn CallHandle>) {
        let mut g = self.inner.lock();
        if matches!(g.out, Out::Done) && g.parked.is_none() {
            // Closed before the send returned: cancel now.
            drop(g);
            h.cancel("the client closed the request");
            return;
        }
        g.handle = Some(h);
    }

    fn client_gone(&self) {
        let h = {
            let mut g = self.inner.lock();
            if !matches!(g.out, Out::Waiting(..) | Out::Streaming(..)) {
                return;
            }
            g.out = Out::Done;
            g.handle.take()
        };
        if let Some(h) = h {
            h.cancel("the client closed the request");
        }
    }

    /// The client never retried: the call's outcome goes nowhere.
    fn abandon(&self) {
        let h = {
            let mut g = self.inner.lock();
            g.out = Out::Done;
            g.handle.take()
        };
        if let Some(h) = h {
            h.cancel("the client did not retry with inputResponses");
        }
    }

    /// After a retry attached: asks what was queued, or delivers an
    /// outcome that came while the call was held.
    fn resume(&self) {
        let (queued, parked) = {
            let mut g = self.inner.lock();
            if !matches!(g.out, Out::Waiting(..) | Out::Streaming(..)) {
                return;
            }
            (std::mem::take(&mut g.queued), g.parked.take())
        };
        if !queued.is_empty() {
            self.ask(queued);
        }
        if let Some(r) = parked {
            self.finish(r);
        }
    }

    /// Ends the HTTP request with an `input_required` result asking `these`;
    /// the call waits for the retry. If the call is held already, they wait
    /// for the next round.
    fn ask(&self, these: Vec<Pending>) {
        let mut g = self.inner.lock();
        let (out, id) = match std::mem::replace(&mut g.out, Out::Held) {
            Out::Waiting(res, id) => (Some(Ok(res)), id),
            Out::Streaming(s, id) => (Some(Err(s)), id),
            other => {
                g.out = other;
                match g.out {
                    Out::Held => g.queued.extend(these),
                    _ => {
                        drop(g);
                        for p in these {
                            (p.answer)(Err(ErrorObj::new(code::INTERNAL_ERROR, "the call has ended")));
                        }
                    }
                }
                return;
            }
        };
        let mut requests = serde_json::Map::new();
        for p in &these {
            let mut r = json!({ "method": p.method });
            if let Some(params) = &p.params {
                r["params"] = jsonrpc::value_of(params);
            }
            requests.insert(p.key.clone(), r);
        }
        let token = match crate::util::random_hex(16) {
            Ok(h) => format!("{STATE_PREFIX}{h}"),
            Err(e) => {
                g.out = Out::Done;
                drop(g);
                log::error!("cannot make a requestState: {e}");
                for p in these {
                    (p.answer)(Err(ErrorObj::new(code::INTERNAL_ERROR, "the gateway cannot ask the client")));
                }
                return;
            }
        };
        let result = json!({"resultType": "input_required", "inputRequests": requests, "requestState": token});
        let full = {
            let mut m = self.held.map.lock();
            let full = m.len() >= MAX_HELD;
            if !full {
                let call = self.me.upgrade();
                if let Some(call) = call {
                    m.insert(token.clone(), HeldCall { call, pending: these, deadline: Instant::now() + self.wait });
                }
            }
            full
        };
        drop(g);
        let msg = if full {
            Message::error(
                Some(id),
                ErrorObj::new(code::INTERNAL_ERROR, format!("too many calls wait for client input ({MAX_HELD})")),
            )
        } else {
            Message::result(id, &result)
        };
        match out {
            Some(Ok(res)) => res.send(json_response(200, msg.to_bytes())),
            Some(Err(s)) if s.send(&event(&msg)).is_ok() => s.finish(),
            Some(Err(_)) | None => {}
        }
    }

    /// Sends one message before the answer, as an SSE event (the response
    /// becomes a stream at the first). False once the call is not waiting.
    fn send_event(&self, m: &Message) -> bool {
        let mut g = self.inner.lock();
        let stream = match std::mem::replace(&mut g.out, Out::Done) {
            Out::Waiting(res, id) => (res.stream(200, &sse_headers(), self.opts.clone()), id),
            Out::Streaming(s, id) => (s, id),
            other => {
                g.out = other;
                return false;
            }
        };
        let _ = stream.0.send(&event(m));
        g.out = Out::Streaming(stream.0, stream.1);
        true
    }

    /// The call's outcome, in 2026-07-28 form, to whoever waits for it.
    fn finish(&self, r: Result<Raw, ErrorObj>) {
        let r = modernize(self.method, r);
        let mut g = self.inner.lock();
        let out = std::mem::replace(&mut g.out, Out::Done);
        match out {
            Out::Waiting(res, id) => {
                drop(g);
                let status = match &r {
                    Ok(_) => 200,
                    Err(e) => status_for(e.code),
                };
                res.send(json_response(status, answer(id, r).to_bytes()));
            }
            Out::Streaming(s, id) => {
                drop(g);
                if s.send(&event(&answer(id, r))).is_ok() {
                    s.finish();
                }
            }
            Out::Held => {
                g.out = Out::Held;
                g.parked = Some(r);
            }
            Out::Done => {}
        }
    }
}

fn answer(id: Id, r: Result<Raw, ErrorObj>) -> Message {
    match r {
        Ok(result) => Message::Response { id, result },
        Err(error) => Message::Error { id: Some(id), error },
    }
}

fn event(m: &Message) -> Vec<u8> {
    let mut buf = Vec::with_capacity(256);
    crate::codec::sse::encode_event_bytes(&mut buf, Some("message"), None, &m.to_bytes());
    buf
}

/// A backend's answer in 2026-07-28 form: every result has a `resultType`
/// (a legacy backend sends none: `complete`), `resources/read` carries
/// cache hints, and codes the revision retired are mapped (resource not
/// found is -32602; the gateway's -32002 timeout becomes -32001).
fn modernize(m: &str, r: Result<Raw, ErrorObj>) -> Result<Raw, ErrorObj> {
    match r {
        Ok(raw) => {
            let mut set: Vec<(&str, Raw)> = Vec::new();
            if jsonrpc::get_field(&raw, "resultType").is_none() {
                set.push(("resultType", jsonrpc::to_raw(&json!("complete"))));
            }
            if m == method::RESOURCES_READ && jsonrpc::get_field(&raw, "ttlMs").is_none() {
                set.push(("ttlMs", jsonrpc::to_raw(&json!(0))));
                set.push(("cacheScope", jsonrpc::to_raw(&json!("private"))));
            }
            if set.is_empty() {
                return Ok(raw);
            }
            let fields: Vec<(&str, &RawValue)> = set.iter().map(|(k, v)| (*k, &**v)).collect();
            Ok(jsonrpc::set_fields(&raw, &fields).unwrap_or(raw))
        }
        Err(mut e) => {
            if e.code == code::REQUEST_TIMEOUT {
                let ours = e.message.starts_with("backend '");
                e.code =
                    if m == method::RESOURCES_READ && !ours { code::INVALID_PARAMS } else { code::BACKEND_UNAVAILABLE };
            }
            Err(e)
        }
    }
}

impl CallSink for ModernCall {
    fn progress(&self, params: Raw) {
        if self.wants_progress {
            self.send_event(&Message::Notification { method: method::PROGRESS.to_owned(), params: Some(params) });
        }
    }

    fn done(&self, r: Result<Raw, ErrorObj>) {
        self.finish(r);
    }

    fn client(&self) -> Option<Arc<dyn ClientLink>> {
        self.me.upgrade().map(|c| c as Arc<dyn ClientLink>)
    }
}

/// The modern client as a legacy backend sees it: a request the backend
/// makes becomes an `input_required` result (2026-07-28 has no requests
/// from server to client); its answer comes with the client's retry.
impl ClientLink for ModernCall {
    fn session_id(&self) -> &str {
        &self.id
    }

    fn supports(&self, cap: ClientCap) -> bool {
        self.caps.has(cap)
    }

    fn request(&self, m: &str, params: Option<Raw>, _timeout: Duration, answer: Answer) -> Option<u64> {
        let n = NEXT_KEY.fetch_add(1, Ordering::Relaxed);
        let key = format!("r{n}");
        self.ask(vec![Pending { key, method: m.to_owned(), params, answer }]);
        Some(n)
    }

    fn cancel_request(&self, id: u64, _reason: &str) {
        let key = format!("r{id}");
        let mut g = self.inner.lock();
        g.queued.retain(|p| p.key != key);
        drop(g);
        let mut m = self.held.map.lock();
        for h in m.values_mut() {
            if std::ptr::eq(Arc::as_ptr(&h.call), self) {
                h.pending.retain(|p| p.key != key);
            }
        }
    }

    fn notify(&self, msg: &Message) {
        self.send_event(msg);
    }

    fn admits_log(&self, level: &str) -> bool {
        match (self.log_level, crate::route::log_rank(level)) {
            (Some(min), Some(rank)) => rank >= min,
            // No level in the request: no log messages for it.
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_decode() {
        assert_eq!(decode_header("deploy").as_deref(), Some("deploy"));
        assert_eq!(decode_header("=?base64?w6lsw6h2ZQ==?=").as_deref(), Some("élève"));
        assert_eq!(decode_header("=?base64?***?="), None);
    }

    #[test]
    fn results_get_the_revisions_fields() {
        let r = modernize(method::TOOLS_CALL, Ok(jsonrpc::to_raw(&json!({"content": []})))).unwrap();
        assert_eq!(r.get(), r#"{"content":[],"resultType":"complete"}"#);
        let r = modernize(method::RESOURCES_READ, Ok(jsonrpc::to_raw(&json!({"contents": []})))).unwrap();
        assert_eq!(jsonrpc::value_of(&r)["cacheScope"], "private");
        let kept = r#"{"resultType":"input_required","inputRequests":{}}"#;
        let r = modernize(method::TOOLS_CALL, Ok(jsonrpc::raw_from_bytes(kept.as_bytes().to_vec()))).unwrap();
        assert_eq!(r.get(), kept, "a backend's own resultType passes untouched");
        let e = modernize(method::RESOURCES_READ, Err(ErrorObj::new(-32002, "Resource not found"))).unwrap_err();
        assert_eq!(e.code, code::INVALID_PARAMS);
        let e =
            modernize(method::TOOLS_CALL, Err(ErrorObj::new(-32002, "backend 'b' timed out after 1.0s"))).unwrap_err();
        assert_eq!(e.code, code::BACKEND_UNAVAILABLE);
        assert_eq!((status_for(-32020), status_for(-32601), status_for(-32603)), (400, 404, 200));
    }
}
