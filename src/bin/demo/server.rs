//! The transport-independent MCP server: state, the request handler and the
//! background jobs (`slow`, `ask_client`).
//!
//! [`handle`] is a near-pure function from one incoming message to a list of
//! [`Effect`]s, so the protocol logic is unit-tested without any I/O; the
//! transports run the effects with [`run_effects`] and a [`Sink`] that writes
//! to their own stream.

use crossbeam_channel::{bounded, Sender};
use mcp_sentinel::codec::jsonrpc::{self, code, ErrorObj, Id, Message};
use parking_lot::Mutex;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Where outgoing messages go (stdout, an SSE stream, one HTTP response).
pub type Sink = Arc<dyn Fn(Message) + Send + Sync>;

const VERSIONS: &[&str] = &["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];
const FALLBACK_VERSION: &str = "2025-06-18";
const LEVELS: &[&str] = &["debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"];
const NAMES: &[&str] = &["alice", "bob", "carol"];
const ASK_TIMEOUT: Duration = Duration::from_secs(5);

/// State shared by every session of one process.
pub struct Server {
    pub name: String,
    /// 0 disables pagination.
    pub page_size: usize,
    /// Extra inert tools with ~1 KB descriptions (`--pad-tools`), for
    /// benchmarks that need a realistic, ~10 KB `tools/list`.
    pub pad_tools: usize,
    /// More resource templates (`--template`), listed after the items
    /// template, for the gateway's routing tests. Any URI the demo does not
    /// serve otherwise is read as if one of them matched it: the demo does
    /// not match URIs, the gateway routed the read here.
    pub templates: Vec<String>,
    /// How many `extra_<n>` tools `add_tool` has registered.
    extra_tools: Mutex<u32>,
    /// What `note` was given, in order.
    notes: Mutex<Vec<String>>,
    /// Set by `freeze`: from then on the process answers nothing at all,
    /// like a server that hangs while its pipes stay open.
    frozen: AtomicBool,
    chaos: Chaos,
    /// SplitMix64 state for the chaos rolls.
    rng: Mutex<u64>,
}

/// Failure injection for soak tests (`--chaos-crash P`, `--chaos-hang P`):
/// each `tools/call` first rolls once; below `crash` the process exits with
/// code 3, below `crash + hang` the call is never answered.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Chaos {
    pub crash: f64,
    pub hang: f64,
}

/// What a chaos roll decided for one call.
#[derive(Debug, PartialEq)]
enum Fate {
    Serve,
    Crash,
    Hang,
}

impl Chaos {
    /// `roll` is uniform in [0, 1).
    fn fate(&self, roll: f64) -> Fate {
        if roll < self.crash {
            Fate::Crash
        } else if roll < self.crash + self.hang {
            Fate::Hang
        } else {
            Fate::Serve
        }
    }
}

/// One SplitMix64 step: a uniform value in [0, 1) from the state.
fn next_unit(state: &mut u64) -> f64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// State of one client connection (stdio, one SSE session, one HTTP session).
#[derive(Default)]
pub struct Session {
    /// Request ids named by `notifications/cancelled`, in arrival order.
    cancelled: Mutex<Vec<Value>>,
    /// Cancellation flags of the running `slow` calls.
    inflight: Mutex<HashMap<Id, Arc<AtomicBool>>>,
    /// Server→client requests waiting for their reply, by our string id.
    pending: Mutex<HashMap<String, Sender<Result<Value, ErrorObj>>>>,
    next_out_id: Mutex<u64>,
    pub log_level: Mutex<Option<String>>,
}

/// What the transport must do after [`handle`].
#[derive(Debug)]
pub enum Effect {
    Send(Message),
    /// Run the `slow` tool on its own thread so other requests proceed.
    Slow {
        id: Id,
        token: Option<Value>,
        steps: u64,
        interval: Duration,
        cancel: Arc<AtomicBool>,
    },
    /// Send a request to the client and answer `id` with its reply.
    Ask {
        id: Id,
        method: String,
        params: Option<Value>,
    },
    Exit(i32),
}

impl Server {
    pub fn new(name: &str, page_size: usize) -> Server {
        Server {
            name: name.to_owned(),
            page_size,
            pad_tools: 0,
            templates: Vec::new(),
            extra_tools: Mutex::new(0),
            notes: Mutex::new(Vec::new()),
            frozen: AtomicBool::new(false),
            chaos: Chaos::default(),
            rng: Mutex::new(0),
        }
    }

    /// True once `freeze` was called: every later message goes unanswered.
    pub fn frozen(&self) -> bool {
        self.frozen.load(Ordering::SeqCst)
    }

    /// Turns on failure injection. The rolls are seeded from the process id,
    /// so two chaos backends (or two runs) fail at different calls.
    pub fn with_chaos(mut self, chaos: Chaos) -> Server {
        self.chaos = chaos;
        *self.rng.get_mut() = u64::from(std::process::id()).wrapping_mul(0x2545_F491_4F6C_DD1D);
        self
    }

    fn chaos_fate(&self) -> Fate {
        if self.chaos == Chaos::default() {
            return Fate::Serve;
        }
        self.chaos.fate(next_unit(&mut self.rng.lock()))
    }

    fn tools(&self) -> Vec<Value> {
        let obj =
            |props: Value, required: &[&str]| json!({"type": "object", "properties": props, "required": required});
        let mut tools = vec![
            json!({"name": "echo", "description": "Returns the message it is given.",
                "inputSchema": obj(json!({"message": {"type": "string", "description": "Text to echo"}}), &["message"])}),
            json!({"name": "add", "description": "Adds two numbers.",
                "inputSchema": obj(json!({"a": {"type": "number"}, "b": {"type": "number"}}), &["a", "b"]),
                "outputSchema": obj(json!({"sum": {"type": "number"}}), &["sum"])}),
            json!({"name": "slow", "description": "Sleeps for a number of steps, reporting progress after each.",
                "inputSchema": obj(json!({
                    "steps": {"type": "integer", "minimum": 0, "default": 5},
                    "interval_ms": {"type": "integer", "minimum": 0, "default": 100}}), &[])}),
            json!({"name": "fail", "description": "Always returns a tool error (isError).", "inputSchema": obj(json!({}), &[])}),
            json!({"name": "crash", "description": "Makes the server process exit with code 3.", "inputSchema": obj(json!({}), &[])}),
            json!({"name": "cancellations", "description": "Lists the request ids the client has cancelled.",
                "inputSchema": obj(json!({}), &[]),
                "outputSchema": obj(json!({"cancelled": {"type": "array"}}), &["cancelled"])}),
            json!({"name": "add_tool", "description": "Registers a new echo tool and announces tools/list_changed.",
                "inputSchema": obj(json!({}), &[])}),
            json!({"name": "ask_client", "description": "Sends a request to the client and reports its reply.",
                "inputSchema": obj(json!({
                    "method": {"type": "string", "description": "e.g. ping, roots/list, sampling/createMessage, elicitation/create"},
                    "params": {"type": "object", "description": "Optional params overriding the built-in ones"}}), &["method"])}),
            json!({"name": "freeze", "description": "Answers this call, then ignores every message (pings included) until the process is restarted.",
                "inputSchema": obj(json!({}), &[])}),
            json!({"name": "note", "description": "Adds a note to this process's memory and returns every note it holds (state, like a memory server).",
                "inputSchema": obj(json!({"text": {"type": "string"}}), &["text"])}),
        ];
        for n in 1..=self.pad_tools {
            let words = "Looks up records in the archive and returns the matching entries with their metadata. ";
            tools.push(json!({"name": format!("pad_{n}"), "description": words.repeat(11),
                "inputSchema": obj(json!({"query": {"type": "string", "description": "What to look for"},
                    "limit": {"type": "integer", "minimum": 1, "maximum": 100}}), &["query"])}));
        }
        for n in 1..=*self.extra_tools.lock() {
            tools.push(json!({"name": format!("extra_{n}"), "description": "Added at run time by add_tool; echoes.",
                "inputSchema": obj(json!({"message": {"type": "string"}}), &["message"])}));
        }
        tools
    }

    fn resources(&self) -> Vec<Value> {
        let n = &self.name;
        vec![
            json!({"uri": format!("demo://{n}/readme"), "name": "readme", "mimeType": "text/plain",
                "description": format!("A greeting from {n}")}),
            json!({"uri": format!("demo://{n}/config.json"), "name": "config", "mimeType": "application/json",
                "description": format!("Configuration of {n}")}),
        ]
    }

    fn templates(&self) -> Vec<Value> {
        let mut all = vec![json!({"uriTemplate": format!("demo://{}/items/{{id}}", self.name), "name": "item",
            "description": "One item by id", "mimeType": "text/plain"})];
        for (i, t) in self.templates.iter().enumerate() {
            all.push(json!({"uriTemplate": t, "name": format!("template_{}", i + 1), "mimeType": "text/plain"}));
        }
        all
    }

    fn prompts(&self) -> Vec<Value> {
        vec![json!({"name": "greet", "description": "Greets someone by name",
            "arguments": [{"name": "name", "description": "Who to greet", "required": true}]})]
    }

    fn read(&self, uri: &str) -> Result<Value, ErrorObj> {
        let n = &self.name;
        let (mime, text) = if uri == format!("demo://{n}/readme") {
            ("text/plain", format!("Hello from {n}"))
        } else if uri == format!("demo://{n}/config.json") {
            ("application/json", json!({"server": n, "pageSize": self.page_size}).to_string())
        } else if let Some(id) = uri.strip_prefix(&format!("demo://{n}/items/")).filter(|s| !s.is_empty()) {
            ("text/plain", format!("item {id} from {n}"))
        } else if !self.templates.is_empty() {
            ("text/plain", format!("read by template from {n}"))
        } else {
            return Err(
                ErrorObj::new(code::INVALID_PARAMS, format!("Unknown resource: {uri}")).with_data(json!({"uri": uri}))
            );
        };
        Ok(json!({"contents": [{"uri": uri, "mimeType": mime, "text": text}]}))
    }
}

/// One page of `items` under `key`, with `nextCursor` (the decimal offset)
/// when more remain. Cursors are opaque to clients; we only accept our own.
pub fn paginate(key: &str, items: Vec<Value>, params: &Value, page_size: usize) -> Result<Value, ErrorObj> {
    let start = match params.get("cursor") {
        None | Some(Value::Null) => 0,
        Some(c) => c
            .as_str()
            .and_then(|s| s.parse::<usize>().ok())
            .filter(|&o| o < items.len())
            .ok_or_else(|| ErrorObj::new(code::INVALID_PARAMS, format!("Invalid cursor: {c}")))?,
    };
    let end = if page_size == 0 { items.len() } else { (start + page_size).min(items.len()) };
    let mut out = Map::new();
    out.insert(key.into(), Value::Array(items[start..end].to_vec()));
    if end < items.len() {
        out.insert("nextCursor".into(), end.to_string().into());
    }
    Ok(Value::Object(out))
}

fn text(t: impl Into<String>) -> Value {
    json!({"type": "text", "text": t.into()})
}

fn bad(msg: impl Into<String>) -> ErrorObj {
    ErrorObj::new(code::INVALID_PARAMS, msg)
}

fn id_of(v: &Value) -> Option<Id> {
    match v {
        Value::String(s) => Some(Id::Str(s.as_str().into())),
        v => v.as_i64().map(Id::Num),
    }
}

/// Handles one incoming message for `sess`. Never blocks: long work comes
/// back as an effect for the transport to run on a thread.
pub fn handle(srv: &Server, sess: &Session, msg: Message) -> Vec<Effect> {
    if srv.frozen() {
        return Vec::new();
    }
    match msg {
        Message::Request { id, method, params } => {
            let params = params.as_deref().map(jsonrpc::value_of).unwrap_or_else(|| json!({}));
            match request(srv, sess, &id, &method, &params) {
                Ok(Done::Result(v)) => vec![Effect::Send(Message::result(id, &v))],
                Ok(Done::Effects(e)) => e,
                Err(e) => vec![Effect::Send(Message::error(Some(id), e))],
            }
        }
        Message::Notification { method, params } => {
            if method == "notifications/cancelled" {
                let params = params.as_deref().map(jsonrpc::value_of);
                if let Some(rid) = params.as_ref().and_then(|p| p.get("requestId")) {
                    sess.cancelled.lock().push(rid.clone());
                    if let Some(flag) = id_of(rid).and_then(|i| sess.inflight.lock().get(&i).cloned()) {
                        flag.store(true, Ordering::SeqCst);
                    }
                }
            }
            Vec::new()
        }
        Message::Response { id, result } => {
            let v = serde_json::from_str(result.get()).unwrap_or(Value::Null);
            reply_to_pending(sess, &id, Ok(v));
            Vec::new()
        }
        Message::Error { id: Some(id), error } => {
            reply_to_pending(sess, &id, Err(error));
            Vec::new()
        }
        Message::Error { id: None, error } => {
            eprintln!("demo: client sent an error without id: {error}");
            Vec::new()
        }
    }
}

fn reply_to_pending(sess: &Session, id: &Id, r: Result<Value, ErrorObj>) {
    let Id::Str(s) = id else { return };
    if let Some(tx) = sess.pending.lock().remove(&**s) {
        let _ = tx.send(r);
    }
}

enum Done {
    Result(Value),
    Effects(Vec<Effect>),
}

fn request(srv: &Server, sess: &Session, id: &Id, method: &str, p: &Value) -> Result<Done, ErrorObj> {
    let name_arg = || p.get("name").and_then(Value::as_str).ok_or_else(|| bad("Missing name"));
    let v = match method {
        "initialize" => {
            let asked = p.get("protocolVersion").and_then(Value::as_str);
            let version = asked.filter(|v| VERSIONS.contains(v)).unwrap_or(FALLBACK_VERSION);
            json!({"protocolVersion": version,
                "capabilities": {"tools": {"listChanged": true}, "resources": {}, "prompts": {}, "logging": {}, "completions": {}},
                "serverInfo": {"name": format!("mcp-sentinel-demo-{}", srv.name), "version": env!("CARGO_PKG_VERSION")},
                "instructions": "A demo server for MCP Sentinel's tests."})
        }
        "ping" => json!({}),
        "logging/setLevel" => {
            let level = p.get("level").and_then(Value::as_str).filter(|l| LEVELS.contains(l));
            *sess.log_level.lock() = Some(level.ok_or_else(|| bad("Invalid log level"))?.to_owned());
            json!({})
        }
        "tools/list" => paginate("tools", srv.tools(), p, srv.page_size)?,
        "resources/list" => paginate("resources", srv.resources(), p, srv.page_size)?,
        "resources/templates/list" => paginate("resourceTemplates", srv.templates(), p, srv.page_size)?,
        "prompts/list" => paginate("prompts", srv.prompts(), p, srv.page_size)?,
        "resources/read" => srv.read(p.get("uri").and_then(Value::as_str).ok_or_else(|| bad("Missing uri"))?)?,
        "prompts/get" => {
            if name_arg()? != "greet" {
                return Err(bad(format!("Unknown prompt: {}", name_arg()?)));
            }
            let who = p.pointer("/arguments/name").and_then(Value::as_str);
            let who = who.ok_or_else(|| bad("Missing required argument: name"))?;
            json!({"description": "Greets someone by name",
                "messages": [{"role": "user", "content": text(format!("Hello, {who}! (from {})", srv.name))}]})
        }
        "completion/complete" => complete(srv, p),
        "tools/call" => return call_tool(srv, sess, id, name_arg()?, p),
        _ => return Err(ErrorObj::new(code::METHOD_NOT_FOUND, format!("Method not found: {method}"))),
    };
    Ok(Done::Result(v))
}

fn complete(srv: &Server, p: &Value) -> Value {
    let r = p.get("ref").unwrap_or(&Value::Null);
    let arg = p.pointer("/argument/name").and_then(Value::as_str);
    let prefix = p.pointer("/argument/value").and_then(Value::as_str).unwrap_or("");
    let kind = r.get("type").and_then(Value::as_str);
    let candidates: &[&str] = match (kind, arg) {
        (Some("ref/prompt"), Some("name")) if r.get("name").and_then(Value::as_str) == Some("greet") => NAMES,
        (Some("ref/resource"), Some("id"))
            if r.get("uri").and_then(Value::as_str) == Some(&format!("demo://{}/items/{{id}}", srv.name)) =>
        {
            &["1", "2", "3"]
        }
        _ => &[],
    };
    let values: Vec<&str> = candidates.iter().copied().filter(|c| c.starts_with(prefix)).collect();
    json!({"completion": {"values": values, "total": values.len(), "hasMore": false}})
}

fn call_tool(srv: &Server, sess: &Session, id: &Id, name: &str, p: &Value) -> Result<Done, ErrorObj> {
    match srv.chaos_fate() {
        Fate::Serve => {}
        Fate::Crash => {
            eprintln!("demo: --chaos-crash struck tools/call {name}");
            return Ok(Done::Effects(vec![Effect::Exit(3)]));
        }
        // No effect at all: this call is never answered, like a stuck tool.
        Fate::Hang => {
            eprintln!("demo: --chaos-hang struck tools/call {name}; never answering it");
            return Ok(Done::Effects(Vec::new()));
        }
    }
    let args = p.get("arguments").cloned().unwrap_or_else(|| json!({}));
    let str_arg =
        |k: &str| args.get(k).and_then(Value::as_str).ok_or_else(|| bad(format!("Missing string argument: {k}")));
    let int_arg = |k: &str, d: u64| match args.get(k) {
        None | Some(Value::Null) => Ok(d),
        Some(v) => v.as_u64().ok_or_else(|| bad(format!("{k} must be a non-negative integer"))),
    };
    let ok = |content: Value| Ok(Done::Result(json!({"content": [content]})));
    let extra = name.strip_prefix("extra_").and_then(|n| n.parse::<u32>().ok());
    match name {
        "echo" => ok(text(str_arg("message")?)),
        _ if extra.is_some_and(|n| n >= 1 && n <= *srv.extra_tools.lock()) => ok(text(str_arg("message")?)),
        "add" => {
            let num =
                |k: &str| args.get(k).filter(|v| v.is_number()).ok_or_else(|| bad(format!("{k} must be a number")));
            let (a, b) = (num("a")?, num("b")?);
            // Keep integers integral so "2 + 3" reads "5", not "5.0".
            let sum = match (a.as_i64(), b.as_i64()) {
                (Some(x), Some(y)) if x.checked_add(y).is_some() => json!(x + y),
                _ => json!(a.as_f64().unwrap_or(0.0) + b.as_f64().unwrap_or(0.0)),
            };
            Ok(Done::Result(json!({"content": [text(sum.to_string())], "structuredContent": {"sum": sum}})))
        }
        "slow" => {
            let cancel = Arc::new(AtomicBool::new(false));
            sess.inflight.lock().insert(id.clone(), cancel.clone());
            Ok(Done::Effects(vec![Effect::Slow {
                id: id.clone(),
                token: p.pointer("/_meta/progressToken").cloned(),
                steps: int_arg("steps", 5)?.min(10_000),
                interval: Duration::from_millis(int_arg("interval_ms", 100)?.min(60_000)),
                cancel,
            }]))
        }
        "fail" => Ok(Done::Result(json!({"content": [text("this tool always fails")], "isError": true}))),
        "crash" => Ok(Done::Effects(vec![Effect::Exit(3)])),
        "freeze" => {
            srv.frozen.store(true, Ordering::SeqCst);
            ok(text("frozen: nothing more will be answered until the process restarts"))
        }
        "cancellations" => {
            let list = Value::Array(sess.cancelled.lock().clone());
            Ok(Done::Result(json!({"content": [text(list.to_string())], "structuredContent": {"cancelled": list}})))
        }
        "note" => {
            let note = str_arg("text")?;
            let all = {
                let mut g = srv.notes.lock();
                g.push(note.to_owned());
                g.join("\n")
            };
            Ok(Done::Result(json!({"content": [text(all)]})))
        }
        "add_tool" => {
            let n = {
                let mut g = srv.extra_tools.lock();
                *g += 1;
                *g
            };
            let changed = Message::notification("notifications/tools/list_changed", None);
            let reply = Message::result(id.clone(), &json!({"content": [text(format!("added extra_{n}"))]}));
            Ok(Done::Effects(vec![Effect::Send(changed), Effect::Send(reply)]))
        }
        "ask_client" => {
            let method = str_arg("method")?.to_owned();
            let params = match (args.get("params"), method.as_str()) {
                (Some(v @ Value::Object(_)), _) => Some(v.clone()),
                (_, "sampling/createMessage") => {
                    Some(json!({"messages": [{"role": "user", "content": text("hi")}], "maxTokens": 10}))
                }
                (_, "elicitation/create") => {
                    Some(json!({"message": "?", "requestedSchema": {"type": "object", "properties": {}}}))
                }
                _ => None,
            };
            Ok(Done::Effects(vec![Effect::Ask { id: id.clone(), method, params }]))
        }
        _ => Err(bad(format!("Unknown tool: {name}"))),
    }
}

/// Runs `effects` in order; `slow` and `ask_client` get their own threads,
/// which hold a clone of `sink` until they finish (HTTP transports rely on
/// that to know when a response stream may close).
pub fn run_effects(sess: &Arc<Session>, effects: Vec<Effect>, sink: &Sink) {
    for e in effects {
        match e {
            Effect::Send(m) => sink(m),
            Effect::Exit(code) => {
                eprintln!("demo: exiting with code {code}");
                std::process::exit(code);
            }
            Effect::Slow { id, token, steps, interval, cancel } => {
                let (sess, sink) = (sess.clone(), sink.clone());
                spawn(move || {
                    let stop = || cancel.load(Ordering::SeqCst);
                    let mut i = 0;
                    while i < steps && !stop() {
                        std::thread::sleep(interval);
                        i += 1;
                        if let (Some(t), false) = (&token, stop()) {
                            let p = json!({"progressToken": t, "progress": i, "total": steps, "message": format!("step {i} of {steps}")});
                            sink(Message::notification("notifications/progress", Some(p)));
                        }
                    }
                    sess.inflight.lock().remove(&id);
                    // A cancelled request gets no response at all (MCP cancellation).
                    if !stop() {
                        sink(Message::result(id, &json!({"content": [text(format!("done after {steps} steps"))]})));
                    }
                });
            }
            Effect::Ask { id, method, params } => {
                let (sess, sink) = (sess.clone(), sink.clone());
                spawn(move || {
                    let out_id = {
                        let mut n = sess.next_out_id.lock();
                        *n += 1;
                        format!("demo-{n}")
                    };
                    let (tx, rx) = bounded(1);
                    sess.pending.lock().insert(out_id.clone(), tx);
                    sink(Message::request(Id::Str(out_id.as_str().into()), &method, params));
                    let answer = match rx.recv_timeout(ASK_TIMEOUT) {
                        Ok(Ok(v)) => format!("result: {v}"),
                        Ok(Err(e)) => format!("error: {} {}", e.code, e.message),
                        Err(_) => {
                            sess.pending.lock().remove(&out_id);
                            "timeout".to_owned()
                        }
                    };
                    sink(Message::result(id, &json!({"content": [text(answer)]})));
                });
            }
        }
    }
}

/// A small-stack worker thread; the demo's jobs hold little state.
pub fn spawn(f: impl FnOnce() + Send + 'static) {
    if let Err(e) = std::thread::Builder::new().stack_size(256 * 1024).spawn(f) {
        eprintln!("demo: cannot spawn a thread: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, params: Value) -> Message {
        Message::request(Id::Num(1), method, Some(params))
    }

    /// Runs one request and returns its single result or error as JSON.
    fn call(srv: &Server, sess: &Session, method: &str, params: Value) -> Value {
        let mut fx = handle(srv, sess, req(method, params));
        assert_eq!(fx.len(), 1, "{fx:?}");
        match fx.remove(0) {
            Effect::Send(m) => serde_json::from_slice::<Value>(&m.to_bytes()).unwrap(),
            e => panic!("{e:?}"),
        }
    }

    fn setup() -> (Server, Session) {
        (Server::new("t", 2), Session::default())
    }

    #[test]
    fn initialize_negotiates_version() {
        let (s, x) = setup();
        let r = call(&s, &x, "initialize", json!({"protocolVersion": "2024-11-05"}));
        assert_eq!(r["result"]["protocolVersion"], "2024-11-05");
        assert_eq!(r["result"]["serverInfo"]["name"], "mcp-sentinel-demo-t");
        assert_eq!(r["result"]["capabilities"]["tools"]["listChanged"], true);
        let r = call(&s, &x, "initialize", json!({"protocolVersion": "1999-01-01"}));
        assert_eq!(r["result"]["protocolVersion"], "2025-06-18");
    }

    #[test]
    fn tools_list_pages_through_all_tools() {
        let (s, x) = setup();
        let mut names = Vec::new();
        let mut cursor = Value::Null;
        loop {
            let r = call(&s, &x, "tools/list", json!({"cursor": cursor}));
            let page = r["result"]["tools"].as_array().unwrap();
            assert!(page.len() <= 2);
            for t in page {
                assert_eq!(t["inputSchema"]["type"], "object");
                assert!(t["inputSchema"]["properties"].is_object());
                names.push(t["name"].as_str().unwrap().to_owned());
            }
            cursor = r["result"]["nextCursor"].clone();
            if cursor.is_null() {
                break;
            }
        }
        assert_eq!(
            names,
            ["echo", "add", "slow", "fail", "crash", "cancellations", "add_tool", "ask_client", "freeze", "note"]
        );
    }

    #[test]
    fn bad_cursor_is_invalid_params() {
        let (s, x) = setup();
        for c in [json!("x"), json!("99"), json!(3)] {
            assert_eq!(call(&s, &x, "prompts/list", json!({"cursor": c}))["error"]["code"], -32602);
        }
        let r = call(&s, &x, "resources/list", json!({"cursor": "1"}));
        assert_eq!(r["result"]["resources"][0]["name"], "config");
        assert!(r["result"].get("nextCursor").is_none());
    }

    #[test]
    fn tools_answer() {
        let (s, x) = setup();
        let c = |n: &str, a: Value| call(&s, &x, "tools/call", json!({"name": n, "arguments": a}))["result"].clone();
        assert_eq!(c("echo", json!({"message": "hi"}))["content"][0]["text"], "hi");
        let r = c("add", json!({"a": 2, "b": 3}));
        assert_eq!((r["content"][0]["text"].clone(), r["structuredContent"]["sum"].clone()), (json!("5"), json!(5)));
        assert_eq!(c("add", json!({"a": 1.5, "b": 1}))["structuredContent"]["sum"], 2.5);
        assert_eq!(c("fail", json!({}))["isError"], true);
        assert_eq!(c("note", json!({"text": "a"}))["content"][0]["text"], "a");
        assert_eq!(c("note", json!({"text": "b"}))["content"][0]["text"], "a\nb");
        let e = call(&s, &x, "tools/call", json!({"name": "nope"}));
        assert_eq!(e["error"]["code"], -32602);
        let e = call(&s, &x, "tools/call", json!({"name": "echo", "arguments": {}}));
        assert_eq!(e["error"]["code"], -32602);
    }

    #[test]
    fn add_tool_notifies_then_answers_and_lists() {
        let (s, x) = setup();
        let fx = handle(&s, &x, req("tools/call", json!({"name": "add_tool"})));
        assert!(matches!(&fx[0], Effect::Send(m) if m.method() == Some("notifications/tools/list_changed")));
        assert!(matches!(&fx[1], Effect::Send(Message::Response { .. })));
        let r = call(&s, &x, "tools/list", json!({"cursor": "10"}));
        assert_eq!(r["result"]["tools"][0]["name"], "extra_1");
        let r = call(&s, &x, "tools/call", json!({"name": "extra_1", "arguments": {"message": "m"}}));
        assert_eq!(r["result"]["content"][0]["text"], "m");
        assert_eq!(call(&s, &x, "tools/call", json!({"name": "extra_2"}))["error"]["code"], -32602);
    }

    #[test]
    fn cancellation_is_recorded_and_flags_slow() {
        let (s, x) = setup();
        let fx = handle(&s, &x, Message::request(Id::Str("r".into()), "tools/call", Some(json!({"name": "slow"}))));
        let Effect::Slow { cancel, steps, .. } = &fx[0] else { panic!("{fx:?}") };
        assert_eq!(*steps, 5);
        let note = Message::notification("notifications/cancelled", Some(json!({"requestId": "r"})));
        assert!(handle(&s, &x, note).is_empty());
        assert!(cancel.load(Ordering::SeqCst));
        let r = call(&s, &x, "tools/call", json!({"name": "cancellations"}));
        assert_eq!(r["result"]["structuredContent"]["cancelled"], json!(["r"]));
        assert_eq!(r["result"]["content"][0]["text"], "[\"r\"]");
    }

    #[test]
    fn resources_templates_and_prompts() {
        let (s, x) = setup();
        let r = call(&s, &x, "resources/read", json!({"uri": "demo://t/readme"}));
        assert_eq!(r["result"]["contents"][0]["text"], "Hello from t");
        let r = call(&s, &x, "resources/read", json!({"uri": "demo://t/items/42"}));
        assert_eq!(r["result"]["contents"][0]["text"], "item 42 from t");
        let r = call(&s, &x, "resources/read", json!({"uri": "demo://t/config.json"}));
        assert!(serde_json::from_str::<Value>(r["result"]["contents"][0]["text"].as_str().unwrap()).is_ok());
        let e = call(&s, &x, "resources/read", json!({"uri": "demo://t/nope"}));
        assert_eq!(e["error"]["code"], -32602);
        assert!(e["error"]["message"].as_str().unwrap().contains("demo://t/nope"));
        let r = call(&s, &x, "resources/templates/list", json!({}));
        assert_eq!(r["result"]["resourceTemplates"][0]["uriTemplate"], "demo://t/items/{id}");
        // --template: listed after the items template; any other URI is read.
        let (mut s, x) = setup();
        s.templates = vec!["x://{+a}/{+b}.md".into()];
        let r = call(&s, &x, "resources/templates/list", json!({}));
        assert_eq!(r["result"]["resourceTemplates"][1]["uriTemplate"], "x://{+a}/{+b}.md");
        let r = call(&s, &x, "resources/read", json!({"uri": "x://p/q.md"}));
        assert_eq!(
            r["result"]["contents"][0],
            json!({"uri": "x://p/q.md", "mimeType": "text/plain", "text": "read by template from t"})
        );
        let (s, x) = setup();
        let r = call(&s, &x, "prompts/get", json!({"name": "greet", "arguments": {"name": "Ann"}}));
        assert_eq!(r["result"]["messages"][0]["content"]["text"], "Hello, Ann! (from t)");
        assert_eq!(call(&s, &x, "prompts/get", json!({"name": "greet"}))["error"]["code"], -32602);
        assert_eq!(call(&s, &x, "prompts/get", json!({"name": "x"}))["error"]["code"], -32602);
    }

    #[test]
    fn completion_filters_by_prefix() {
        let (s, x) = setup();
        let r = call(
            &s,
            &x,
            "completion/complete",
            json!({"ref": {"type": "ref/prompt", "name": "greet"}, "argument": {"name": "name", "value": "b"}}),
        );
        assert_eq!(r["result"]["completion"], json!({"values": ["bob"], "total": 1, "hasMore": false}));
        let r = call(
            &s,
            &x,
            "completion/complete",
            json!({"ref": {"type": "ref/resource", "uri": "demo://t/items/{id}"}, "argument": {"name": "id", "value": ""}}),
        );
        assert_eq!(r["result"]["completion"]["values"], json!(["1", "2", "3"]));
        let r = call(
            &s,
            &x,
            "completion/complete",
            json!({"ref": {"type": "ref/prompt", "name": "x"}, "argument": {"name": "name", "value": ""}}),
        );
        assert_eq!(r["result"]["completion"]["values"], json!([]));
    }

    #[test]
    fn freeze_answers_once_then_nothing() {
        let (s, x) = setup();
        let r = call(&s, &x, "tools/call", json!({"name": "freeze"}));
        assert!(r["result"]["content"][0]["text"].as_str().unwrap().starts_with("frozen"));
        assert!(handle(&s, &x, req("ping", json!({}))).is_empty());
        assert!(handle(&s, &x, req("tools/call", json!({"name": "echo", "arguments": {"message": "m"}}))).is_empty());
    }

    #[test]
    fn misc_methods() {
        let (s, x) = setup();
        assert_eq!(call(&s, &x, "ping", json!({}))["result"], json!({}));
        assert_eq!(call(&s, &x, "nope/nope", json!({}))["error"]["code"], -32601);
        assert_eq!(call(&s, &x, "logging/setLevel", json!({"level": "debug"}))["result"], json!({}));
        assert_eq!(x.log_level.lock().as_deref(), Some("debug"));
        assert_eq!(call(&s, &x, "logging/setLevel", json!({"level": "loud"}))["error"]["code"], -32602);
    }

    #[test]
    fn chaos_fate_splits_the_unit_interval() {
        let c = Chaos { crash: 0.25, hang: 0.25 };
        assert_eq!(c.fate(0.0), Fate::Crash);
        assert_eq!(c.fate(0.249), Fate::Crash);
        assert_eq!(c.fate(0.25), Fate::Hang);
        assert_eq!(c.fate(0.499), Fate::Hang);
        assert_eq!(c.fate(0.5), Fate::Serve);
        assert_eq!(Chaos::default().fate(0.0), Fate::Serve);
    }

    #[test]
    fn chaos_rolls_are_uniform_enough() {
        let mut state = 42;
        let rolls: Vec<f64> = (0..10_000).map(|_| next_unit(&mut state)).collect();
        assert!(rolls.iter().all(|r| (0.0..1.0).contains(r)));
        let below = rolls.iter().filter(|&&r| r < 0.25).count();
        assert!((2200..2800).contains(&below), "{below}");
    }

    #[test]
    fn chaos_hang_answers_nothing() {
        let s = Server::new("t", 2).with_chaos(Chaos { crash: 0.0, hang: 1.0 });
        let x = Session::default();
        let fx = handle(&s, &x, req("tools/call", json!({"name": "echo", "arguments": {"message": "m"}})));
        assert!(fx.is_empty(), "{fx:?}");
        // Only tools/call rolls: the handshake and lists still work.
        assert_eq!(call(&s, &x, "ping", json!({}))["result"], json!({}));
        let s = Server::new("t", 2).with_chaos(Chaos { crash: 1.0, hang: 0.0 });
        let fx = handle(&s, &x, req("tools/call", json!({"name": "echo", "arguments": {"message": "m"}})));
        assert!(matches!(fx[..], [Effect::Exit(3)]), "{fx:?}");
    }

    #[test]
    fn ask_client_matches_reply_by_id() {
        let (s, x) = setup();
        let x = Arc::new(x);
        let fx = handle(&s, &x, req("tools/call", json!({"name": "ask_client", "arguments": {"method": "ping"}})));
        let (tx, rx) = crossbeam_channel::unbounded();
        let sink: Sink = Arc::new(move |m| drop(tx.send(m)));
        run_effects(&x, fx, &sink);
        let out = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        let Message::Request { id, method, .. } = out else { panic!("{out:?}") };
        assert_eq!((id.clone(), method.as_str()), (Id::Str("demo-1".into()), "ping"));
        let reply = mcp_sentinel::codec::jsonrpc::parse_one(br#"{"jsonrpc":"2.0","id":"demo-1","result":{}}"#).unwrap();
        assert!(handle(&s, &x, reply).is_empty());
        let r: Value = serde_json::from_slice(&rx.recv_timeout(Duration::from_secs(5)).unwrap().to_bytes()).unwrap();
        assert_eq!(r["result"]["content"][0]["text"], "result: {}");
    }
}
