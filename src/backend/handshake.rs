//! The gateway's own conversation with a new connection: open the
//! transport, `initialize` → `initialized`, then discovery (every list the
//! backend advertises, followed to its last page). Runs on the thread that
//! connects: the supervisor (`backend:<name>`) for the shared connection,
//! `backend:<name>:inst` for a per-session one. Every wait is a request
//! with the backend's `timeout_s`.
//!
//! Failures are [`BackendError`]s: the kind decides (a backend without
//! resource templates answers "method not found"), the text is what
//! operators see.

use super::conn::{Conn, ConnSpec};
use super::error::{BackendError, ErrorKind, Step};
use super::{sse, stdio, streamable, Discovered};
use crate::codec::jsonrpc;
use crate::codec::mcp::{self, method};
use crate::config::{Protocol, Transport};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

/// Longest wait for a backend's server-message stream to open during the
/// handshake (a server without one answers at once).
const STREAM_OPEN_WAIT: Duration = Duration::from_secs(5);
/// Most pages followed for one list during discovery (a loop guard).
pub(super) const MAX_PAGES: usize = 1000;

/// What the handshake learnt of a backend.
pub struct Handshake {
    pub server_info: Value,
    pub caps: Value,
    pub version: String,
}

/// What the gateway declares to backends as a client: everything it can
/// route to a client (the client of the call decides at run time).
fn client_capabilities() -> Value {
    json!({
        "roots": {"listChanged": true},
        "sampling": {},
        "elicitation": {"form": {}, "url": {}},
    })
}

/// Opens a connection over the backend's transport (no handshake yet).
pub fn open_transport(spec: &ConnSpec, transport: &Transport) -> Result<Arc<Conn>, BackendError> {
    match transport {
        Transport::Stdio(cmd) => stdio::open(spec, cmd),
        Transport::Sse { url, headers, local, ca_cert } => {
            let remote = sse::Remote::new(url, headers, ca_cert.as_ref());
            sse::open(spec, &remote, local.as_ref())
        }
        Transport::StreamableHttp { url, headers, ca_cert } => {
            let remote = sse::Remote::new(url, headers, ca_cert.as_ref());
            streamable::open(spec, &remote)
        }
    }
}

/// Longest wait for the answer to the era probe (`server/discover`) of a
/// backend whose `protocol` is `auto`: a legacy server may stay silent on
/// a method it does not know before `initialize`. The Python SDK's
/// dual-era client waits as long.
const PROBE_WAIT: Duration = Duration::from_secs(10);

/// The era handshake (see [`connect`]), then discovery.
pub fn handshake(
    conn: &Conn,
    transport: &Transport,
    protocol: Protocol,
    timeout: Duration,
) -> Result<(Handshake, Discovered), BackendError> {
    let h = connect(conn, transport, protocol, timeout)?;
    let discovered = discover(conn, &h.caps, timeout)?;
    Ok((h, discovered))
}

/// Decides the backend's era, once per connection, as a dual-era client
/// does (2026-07-28 `basic/versioning`): `server/discover` first; a
/// discover result naming 2026-07-28 (or a -32022 naming it) makes the
/// connection modern, with no `initialize`; any other error, or silence
/// for 10 s (at most `timeout`), means a legacy server, which gets `initialize`.
/// `protocol` pins either era; a legacy SSE backend is never probed (that
/// transport does not exist in 2026-07-28).
pub fn connect(
    conn: &Conn,
    transport: &Transport,
    protocol: Protocol,
    timeout: Duration,
) -> Result<Handshake, BackendError> {
    let can_be_modern = !matches!(transport, Transport::Sse { .. });
    match protocol {
        Protocol::Legacy => initialize(conn, timeout),
        Protocol::Modern if can_be_modern => match probe(conn, timeout)? {
            Some(h) => Ok(h),
            None => Err(BackendError::protocol(
                &conn.backend,
                "\"protocol\": \"2026-07-28\" is set, but the backend does not serve 2026-07-28 \
                 (its server/discover names other versions or failed)"
                    .to_owned(),
            )),
        },
        Protocol::Modern => Err(BackendError::protocol(
            &conn.backend,
            "\"protocol\": \"2026-07-28\" needs a stdio or streamable-http backend".to_owned(),
        )),
        Protocol::Auto if can_be_modern => match probe(conn, timeout.min(PROBE_WAIT))? {
            Some(h) => Ok(h),
            // A modern server that was slow to start answers the probe
            // after we gave up on it, and then refuses initialize with
            // -32022 naming 2026-07-28: probe once more, as the SDKs do.
            None => match try_initialize(conn, timeout) {
                Err((e, true)) => probe(conn, timeout)?.ok_or(e),
                r => r.map_err(|(e, _)| e),
            },
        },
        Protocol::Auto => initialize(conn, timeout),
    }
}

/// `server/discover` in 2026-07-28: `Some` with the backend's capabilities
/// when it serves that revision (the connection stays modern), `None` when
/// it answers like a legacy server (the connection goes back to legacy).
/// Only a closed connection is an error.
fn probe(conn: &Conn, wait: Duration) -> Result<Option<Handshake>, BackendError> {
    let name = &conn.backend;
    conn.set_modern(true);
    let modern = |v: &Value| v.as_array().is_some_and(|a| a.iter().any(|x| x.as_str() == Some(mcp::MODERN_VERSION)));
    match conn.request(method::DISCOVER, None, wait) {
        Ok(raw) => {
            let r: Value = serde_json::from_str(raw.get())
                .map_err(|e| BackendError::protocol(name, format!("server/discover result: {e}")))?;
            if modern(&r["supportedVersions"]) {
                let server_info =
                    r.get("_meta").and_then(|m| m.get(mcp::meta::SERVER_INFO)).cloned().unwrap_or(Value::Null);
                let caps = r.get("capabilities").cloned().unwrap_or_else(|| json!({}));
                // A Streamable HTTP backend's listen stream opens now, so
                // that no list change during discovery is lost.
                conn.open_stream(wait.min(STREAM_OPEN_WAIT));
                return Ok(Some(Handshake { server_info, caps, version: mcp::MODERN_VERSION.to_owned() }));
            }
            log::info!("backend '{name}': server/discover names no 2026-07-28; speaking a session revision");
        }
        Err(e)
            if e.code == jsonrpc::code::UNSUPPORTED_PROTOCOL_VERSION
                && e.data
                    .as_ref()
                    .is_some_and(|d| serde_json::from_str::<Value>(d.get()).is_ok_and(|d| modern(&d["supported"]))) =>
        {
            // It serves 2026-07-28 but refused our envelope: nothing to
            // fall back to.
            return Err(BackendError::request(name, Step::Discover, e));
        }
        Err(e) if !conn.is_alive() => return Err(BackendError::request(name, Step::Discover, e)),
        Err(e) => log::debug!("backend '{name}': era probe: {} (a legacy server)", e.message),
    }
    conn.set_modern(false);
    Ok(None)
}

/// initialize → initialized.
pub fn initialize(conn: &Conn, timeout: Duration) -> Result<Handshake, BackendError> {
    try_initialize(conn, timeout).map_err(|(e, _)| e)
}

/// [`initialize`]; a failure says whether it was a -32022 whose
/// `supported` names 2026-07-28 (a modern server refusing the handshake).
fn try_initialize(conn: &Conn, timeout: Duration) -> Result<Handshake, (BackendError, bool)> {
    let name = &conn.backend;
    let no = |e: BackendError| (e, false);
    // The gateway routes sampling, elicitation and roots requests to the
    // client whose call the backend is serving (see `conn.rs`), and refuses
    // them, naming the capability, when that client did not declare it.
    let params = json!({
        "protocolVersion": mcp::CLIENT_VERSION,
        "capabilities": client_capabilities(),
        "clientInfo": {"name": "mcp-sentinel", "version": env!("CARGO_PKG_VERSION")},
    });
    let raw = conn.request(method::INITIALIZE, Some(jsonrpc::to_raw(&params)), timeout).map_err(|e| {
        let modern = e.code == jsonrpc::code::UNSUPPORTED_PROTOCOL_VERSION
            && e.data.as_deref().is_some_and(|d| d.get().contains(mcp::MODERN_VERSION));
        (BackendError::request(name, Step::Initialize, e), modern)
    })?;
    let init: Value = serde_json::from_str(raw.get())
        .map_err(|e| no(BackendError::protocol(name, format!("initialize result: {e}"))))?;
    let Some(version) = init.get("protocolVersion").and_then(Value::as_str) else {
        return Err(no(BackendError::protocol(name, "initialize result has no protocolVersion".to_owned())));
    };
    let version = version.to_owned();
    if !mcp::is_supported(&version) {
        let text = format!("backend answered protocol version {version:?}, which the gateway does not speak");
        return Err(no(BackendError::protocol(name, text)));
    }
    *conn.protocol_version.lock() = Some(version.clone());
    // A Streamable HTTP backend's GET stream opens now, before
    // `initialized`, so that a list_changed sent on it is not lost.
    conn.open_stream(timeout.min(STREAM_OPEN_WAIT));
    let server_info = init.get("serverInfo").cloned().unwrap_or(Value::Null);
    let caps = init.get("capabilities").cloned().unwrap_or_else(|| json!({}));
    conn.notify(method::INITIALIZED, None).map_err(|e| no(BackendError::request(name, Step::Initialized, e)))?;
    Ok(Handshake { server_info, caps, version })
}

/// Lists every kind the backend advertises, following cursors to the end.
pub fn discover(conn: &Conn, caps: &Value, timeout: Duration) -> Result<Discovered, BackendError> {
    let has = |k: &str| caps.get(k).is_some_and(|v| !v.is_null());
    let mut d = Discovered {
        logging: has("logging"),
        completions: has("completions") || has("prompts") || has("resources"),
        subscribe: caps.get("resources").and_then(|r| r.get("subscribe")).and_then(Value::as_bool) == Some(true),
        ..Discovered::default()
    };
    if has("tools") {
        d.tools = list_with_hints(conn, method::TOOLS_LIST, "tools", timeout, &mut d.hints)?;
    }
    if has("resources") {
        d.resources = list_with_hints(conn, method::RESOURCES_LIST, "resources", timeout, &mut d.hints)?;
        // Older servers may not implement templates: "method not found"
        // means none, not a failed backend.
        let t = method::RESOURCES_TEMPLATES_LIST;
        d.resource_templates = match list_with_hints(conn, t, "resourceTemplates", timeout, &mut d.hints) {
            Ok(t) => t,
            Err(e) if matches!(e.kind(), ErrorKind::MethodNotFound { .. }) => Vec::new(),
            Err(e) => return Err(e),
        };
    }
    if has("prompts") {
        d.prompts = list_with_hints(conn, method::PROMPTS_LIST, "prompts", timeout, &mut d.hints)?;
    }
    Ok(d)
}

/// Lists every item of `method`, following cursors to the end, noting a 2026-07-28 backend's cache hints for `method`
/// (the smallest `ttlMs` of its pages, public only if every page is).
fn list_with_hints(
    conn: &Conn,
    method: &'static str,
    key: &str,
    timeout: Duration,
    hints: &mut Vec<(&'static str, u64, bool)>,
) -> Result<Vec<Value>, BackendError> {
    let name = &conn.backend;
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    let mut seen = std::collections::HashSet::new();
    for _ in 0..MAX_PAGES {
        let params = cursor.as_ref().map(|c| jsonrpc::to_raw(&json!({ "cursor": c })));
        let raw =
            conn.request(method, params, timeout).map_err(|e| BackendError::request(name, Step::List(method), e))?;
        let mut page: Value = serde_json::from_str(raw.get())
            .map_err(|e| BackendError::protocol(name, format!("{method} result: {e}")))?;
        if let Some(ttl) = page.get("ttlMs").and_then(Value::as_u64) {
            let public = page.get("cacheScope").and_then(Value::as_str) == Some("public");
            match hints.iter_mut().find(|h| h.0 == method) {
                Some(h) => *h = (method, h.1.min(ttl), h.2 && public),
                None => hints.push((method, ttl, public)),
            }
        }
        match page.get_mut(key).map(Value::take) {
            Some(Value::Array(list)) => items.extend(list.into_iter().filter(Value::is_object)),
            Some(Value::Null) | None => {}
            Some(_) => return Err(BackendError::protocol(name, format!("{method} result: \"{key}\" is not an array"))),
        }
        match page.get("nextCursor").and_then(Value::as_str) {
            Some(next) => {
                if !seen.insert(next.to_owned()) {
                    return Err(BackendError::protocol(name, format!("{method}: backend repeated cursor {next:?}")));
                }
                cursor = Some(next.to_owned());
            }
            None => return Ok(items),
        }
    }
    Err(BackendError::protocol(name, format!("{method}: more than {MAX_PAGES} pages")))
}

#[cfg(test)]
mod tests {
    //! Against a channel-backed connection: a thread plays the backend,
    //! reading what the gateway queued and answering through
    //! `handle_incoming`. No process, no socket.

    use super::*;
    use crate::backend::conn::Outgoing;
    use crate::backend::Stats;
    use crate::codec::jsonrpc::parse_one;
    use crate::route::NoHub;
    use crossbeam_channel::{bounded, Receiver};

    /// A connection whose backend answers each request with `answer(method,
    /// params)`: `Ok(result)`, `Err((code, message))`, or `None` for no
    /// answer at all. Returns the connection and, when the fake ends (the
    /// connection closed), the methods it was sent.
    fn fake(
        answer: impl Fn(&str, &Value) -> Option<Result<Value, (i64, &'static str)>> + Send + 'static,
    ) -> (Arc<Conn>, Receiver<Vec<String>>) {
        let spec = ConnSpec {
            backend: "b".into(),
            generation: 1,
            supervisor: bounded(8).0,
            stats: Arc::new(Stats::default()),
            hub: Arc::new(NoHub),
            timeout: Duration::from_secs(1),
            owner: None,
        };
        let (conn, out): (Arc<Conn>, Receiver<Outgoing>) = Conn::new(&spec, None);
        let (seen_tx, seen) = bounded(1);
        let weak = Arc::downgrade(&conn);
        std::thread::spawn(move || {
            let mut methods = Vec::new();
            while let Ok(m) = out.recv() {
                let v: Value = serde_json::from_slice(&m.bytes).unwrap();
                let method = v["method"].as_str().unwrap_or_default().to_owned();
                methods.push(method.clone());
                let (Some(id), Some(c)) = (v.get("id"), weak.upgrade()) else { continue };
                let reply = match answer(&method, &v["params"]) {
                    None => continue,
                    Some(Ok(result)) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
                    // A -32022 names 2026-07-28 as what the server supports.
                    Some(Err((-32022, message))) => json!({"jsonrpc": "2.0", "id": id, "error": {
                        "code": -32022, "message": message, "data": {"supported": ["2026-07-28"]}}}),
                    Some(Err((code, message))) => {
                        json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
                    }
                };
                c.handle_incoming(parse_one(reply.to_string().as_bytes()).unwrap());
            }
            let _ = seen_tx.send(methods);
        });
        (conn, seen)
    }

    fn init(caps: Value) -> Result<Value, (i64, &'static str)> {
        Ok(json!({"protocolVersion": "2025-06-18", "capabilities": caps, "serverInfo": {"name": "f"}}))
    }

    /// Short, so that the one case without an answer costs little.
    const T: Duration = Duration::from_millis(100);

    fn stdio() -> Transport {
        Transport::Stdio(crate::config::Command {
            command: "x".into(),
            args: Vec::new(),
            env: Default::default(),
            cwd: None,
            withheld_env: Vec::new(),
        })
    }

    /// The legacy handshake (no era probe).
    fn legacy(conn: &Conn) -> Result<(Handshake, Discovered), BackendError> {
        handshake(conn, &stdio(), Protocol::Legacy, T)
    }

    fn modern_discover() -> Result<Value, (i64, &'static str)> {
        Ok(json!({
            "supportedVersions": ["2026-07-28"],
            "capabilities": {"tools": {}},
            "resultType": "complete", "ttlMs": 0, "cacheScope": "private",
            "_meta": {"io.modelcontextprotocol/serverInfo": {"name": "m"}}
        }))
    }

    /// `auto`: a backend that serves 2026-07-28 is spoken to in it, with no
    /// initialize, and its lists' cache hints are kept; one that refuses
    /// the probe (as a legacy server does) gets initialize.
    #[test]
    fn auto_detects_the_era_once_per_connection() {
        let (conn, seen) = fake(|m, p| match m {
            "server/discover" => Some(modern_discover()),
            "tools/list" => {
                assert_eq!(p["_meta"]["io.modelcontextprotocol/protocolVersion"], "2026-07-28");
                Some(Ok(json!({"tools": [{"name": "a"}], "ttlMs": 5000, "cacheScope": "public"})))
            }
            _ => Some(Err((-32601, "Method not found"))),
        });
        let (h, d) = handshake(&conn, &stdio(), Protocol::Auto, T).unwrap();
        assert_eq!((h.version.as_str(), &h.server_info), ("2026-07-28", &json!({"name": "m"})));
        assert!(conn.is_modern());
        assert_eq!(d.hints("tools/list"), Some((5000, true)));
        conn.close("done");
        assert_eq!(seen.recv_timeout(Duration::from_secs(5)).unwrap(), ["server/discover", "tools/list"]);

        // Refused, or not answered (then the gateway gives the probe up).
        let refused = ["server/discover", "initialize", "notifications/initialized"];
        let silent = ["server/discover", "notifications/cancelled", "initialize", "notifications/initialized"];
        for (refusal, want) in [(Some(Err((-32601, "Method not found"))), &refused[..]), (None, &silent[..])] {
            let (conn, seen) = fake(move |m, _| match m {
                "server/discover" => refusal.clone(),
                "initialize" => Some(init(json!({}))),
                _ => Some(Err((-32601, "Method not found"))),
            });
            let (h, _) = handshake(&conn, &stdio(), Protocol::Auto, T).unwrap();
            assert_eq!(h.version, "2025-06-18");
            assert!(!conn.is_modern());
            conn.close("done");
            let methods = seen.recv_timeout(Duration::from_secs(5)).unwrap();
            assert_eq!(methods, want);
        }
        // A modern server slow to answer the probe refuses the initialize
        // that follows with -32022: the gateway probes once more.
        let probes = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let n = probes.clone();
        let (conn, seen) = fake(move |m, _| match m {
            "server/discover" if n.fetch_add(1, std::sync::atomic::Ordering::Relaxed) == 0 => None,
            "server/discover" => Some(modern_discover()),
            "initialize" => Some(Err((-32022, "Unsupported protocol version"))),
            _ => Some(Ok(json!({"tools": []}))),
        });
        let (h, _) = handshake(&conn, &stdio(), Protocol::Auto, T).unwrap();
        assert_eq!(h.version, "2026-07-28");
        conn.close("done");
        let methods = seen.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(
            methods,
            ["server/discover", "notifications/cancelled", "initialize", "server/discover", "tools/list"]
        );
        // Pinned to 2026-07-28, a legacy answer is an error naming the setting.
        let (conn, _) = fake(|_, _| Some(Err((-32601, "Method not found"))));
        let e = handshake(&conn, &stdio(), Protocol::Modern, T).err().unwrap();
        assert!(e.to_string().contains("\"protocol\": \"2026-07-28\""), "{e}");
        conn.close("done");
    }

    #[test]
    fn handshake_then_discovery_following_cursors() {
        let (conn, seen) = fake(|m, p| match m {
            "initialize" => Some(init(json!({"tools": {}, "resources": {"subscribe": true}, "logging": {}}))),
            "tools/list" => Some(Ok(match p["cursor"].as_str() {
                None => json!({"tools": [{"name": "a"}, "not an object"], "nextCursor": "2"}),
                Some("2") => json!({"tools": [{"name": "b"}]}),
                Some(_) => json!({}),
            })),
            "resources/list" => Some(Ok(json!({"resources": [{"uri": "x://1"}]}))),
            // An older server: no templates at all.
            "resources/templates/list" => Some(Err((-32601, "Method not found"))),
            _ => Some(Err((-32603, "unexpected"))),
        });
        let (h, d) = legacy(&conn).unwrap();
        assert_eq!(h.version, "2025-06-18");
        assert_eq!(h.server_info, json!({"name": "f"}));
        assert_eq!(conn.protocol_version.lock().as_deref(), Some("2025-06-18"));
        let names: Vec<&str> = d.tools.iter().filter_map(|t| t["name"].as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(d.resources.len(), 1);
        assert!(d.resource_templates.is_empty());
        assert!(d.prompts.is_empty());
        assert!(d.logging && d.subscribe && d.completions);
        conn.close("done");
        let methods = seen.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(
            methods,
            [
                "initialize",
                "notifications/initialized",
                "tools/list",
                "tools/list",
                "resources/list",
                "resources/templates/list"
            ]
        );
    }

    /// How the fake backend answers one request (see [`fake`]).
    type Answer = Box<dyn Fn(&str, &Value) -> Option<Result<Value, (i64, &'static str)>> + Send>;
    /// Whether an error is of the expected kind.
    type Is = fn(&ErrorKind) -> bool;

    /// Each failure has its kind and the text operators always saw.
    #[test]
    fn failures_by_kind() {
        let only_initialize = |answer: Result<Value, (i64, &'static str)>| -> Answer {
            Box::new(move |m, _| (m == "initialize").then(|| answer.clone()))
        };
        let after_init = |caps: Value, list: Result<Value, (i64, &'static str)>| -> Answer {
            Box::new(move |m, _| Some(if m == "initialize" { init(caps.clone()) } else { list.clone() }))
        };
        let cases: Vec<(Answer, &str, Is)> = vec![
            (only_initialize(Err((-32603, "no thanks"))), "initialize failed: no thanks", |k| {
                matches!(k, ErrorKind::Refused { step: Step::Initialize, code: -32603, .. })
            }),
            (Box::new(|_, _| None), "initialize failed: backend 'b' did not answer initialize within 0.1s", |k| {
                matches!(k, ErrorKind::Timeout { step: Step::Initialize, .. })
            }),
            (
                only_initialize(Ok(json!({"protocolVersion": "1999-01-01"}))),
                "backend answered protocol version \"1999-01-01\", which the gateway does not speak",
                |k| matches!(k, ErrorKind::Protocol(_)),
            ),
            (only_initialize(Ok(json!({}))), "initialize result has no protocolVersion", |k| {
                matches!(k, ErrorKind::Protocol(_))
            }),
            // Only templates may be missing; tools the backend advertised
            // must list.
            (
                after_init(json!({"tools": {}}), Err((-32601, "Method not found"))),
                "tools/list failed: Method not found (code -32601)",
                |k| matches!(k, ErrorKind::MethodNotFound { step: Step::List("tools/list"), .. }),
            ),
            (
                after_init(json!({"prompts": {}}), Ok(json!({"prompts": [], "nextCursor": "same"}))),
                "prompts/list: backend repeated cursor \"same\"",
                |k| matches!(k, ErrorKind::Protocol(_)),
            ),
            (
                Box::new(|m, _| match m {
                    "initialize" => Some(init(json!({"resources": {}}))),
                    "resources/list" => Some(Ok(json!({"resources": []}))),
                    _ => Some(Err((-32603, "templates broke"))),
                }),
                "resources/templates/list failed: templates broke (code -32603)",
                |k| matches!(k, ErrorKind::Refused { step: Step::List("resources/templates/list"), .. }),
            ),
            (
                after_init(json!({"tools": {}}), Ok(json!({"tools": {"a": 1}}))),
                "tools/list result: \"tools\" is not an array",
                |k| matches!(k, ErrorKind::Protocol(_)),
            ),
        ];
        for (answer, text, is) in cases {
            let (conn, _) = fake(answer);
            let e = legacy(&conn).err().unwrap_or_else(|| panic!("{text}: no error"));
            assert_eq!(e.to_string(), text);
            assert!(is(e.kind()), "{text}: {:?}", e.kind());
            assert_eq!(e.backend(), "b");
            conn.close("done");
        }
    }

    #[test]
    fn a_closed_connection_is_disconnected() {
        let (conn, _) = fake(|_, _| None);
        conn.close("gone");
        let e = initialize(&conn, T).err().unwrap();
        assert!(matches!(e.kind(), ErrorKind::Disconnected { step: Step::Initialize, .. }), "{e:?}");
        assert_eq!(e.to_string(), "initialize failed: backend 'b' is disconnected");
    }
}
