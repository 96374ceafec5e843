//! MCP 2026-07-28 ("modern", stateless) beside the session revisions, end to
//! end: the official Python SDK 2.3.0 as client (`mcp.client.Client`,
//! `tests/py/era_client.py`, in modes `2026-07-28`, `legacy` and `auto`) and
//! as a modern backend (`tests/py/modern_server.py`, an `MCPServer`, dual-era,
//! or modern-only over HTTP), server-everything (legacy, npm) and the demo
//! backend (legacy) behind the gateway, and raw HTTP for the wire details.
//!
//! What a user must see:
//! - `/mcp` serves 2026-07-28 per request (`MCP-Protocol-Version`), with no
//!   session and no `initialize`: `server/discover`, lists with `resultType`
//!   and merged cache hints, calls, prompts, reads and completions with
//!   `resultType`; routing headers checked (400/-32020), removed methods
//!   404/-32601, GET and DELETE 405;
//! - `subscriptions/listen`: acknowledged first, then the backends' list
//!   changes and resource updates, tagged with the subscription id;
//! - a modern client's cancellation (closing its stream) reaches the backend;
//! - per-request log levels: a call's logs reach that call only;
//! - the bridge: MRTR (`input_required`) between a modern backend and legacy
//!   clients (pushed elicitation, sampling, roots), and a legacy backend's
//!   server-to-client requests to modern clients (as `input_required`); a
//!   client that never answers fails or frees the call within the backend's
//!   timeout;
//! - backends spoken to in 2026-07-28 (a modern-only HTTP backend included),
//!   and the era of each in `/manage/v1/backends`;
//! - `traceparent` and friends reach the backend unchanged.
//!
//! Each test names its scenario and the client era/transport (and the modern
//! backend's transport where it is not stdio). The Python pieces were checked
//! directly against `modern_server.py` (no gateway): the modern-client
//! scenarios pass there as they must through the gateway.
//!
//! Needs the peers from `scripts/install-peers.sh` (the Python SDK venv and
//! server-everything); without them a test is skipped with a message, except
//! under CI=true, where it fails. Every process is killed by PID, every wait
//! is bounded, and all traffic goes to 127.0.0.1.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{
    demo_backend, parse_listen_addr, post_json, py_script, run_bounded, spawn_logged, Gateway, LoggedChild, Response,
    SseStream, TempDir,
};
use serde_json::{json, Value};

const MODERN: &str = "2026-07-28";
const GATEWAY_NAME: &str = "eras-gateway";
const PY_TIMEOUT: Duration = Duration::from_secs(60);
/// A refusal must come at once, not after a backend's or client's timeout.
const FAST: f64 = 5.0;
const MODERN_READY: &str = "modern server: listening on http://";
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

// ---------------------------------------------------------------------------
// Peers and backends
// ---------------------------------------------------------------------------

/// The Python SDK and server-everything, or `None` to skip.
fn peers() -> Option<(PathBuf, Value)> {
    common::sdk_peers()
}

/// `modern_server.py --stdio` as a stdio backend with prefix `m`.
fn modern_stdio(python: &Path, extra: &[&str]) -> Value {
    let mut args = vec![py_script("modern_server.py").to_string_lossy().into_owned(), "--stdio".to_owned()];
    args.extend(extra.iter().map(|s| s.to_string()));
    json!({ "command": python, "args": args, "prefix": "m", "env": { "PYTHONUNBUFFERED": "1" } })
}

/// The demo backend with prefix `demo` (legacy; `slow`, `cancellations`, `ask_client`).
fn demo() -> Value {
    let mut d = demo_backend("demo", &[]);
    d["prefix"] = json!("demo");
    d
}

/// `modern_server.py --http 0 [ARGS]` on a free loopback port; killed by PID when dropped.
struct ModernHttp {
    url: String,
    child: LoggedChild,
    _state: TempDir,
}

impl ModernHttp {
    fn start(python: &Path, args: &[&str]) -> ModernHttp {
        let state = TempDir::new("modern-http");
        let mut child = spawn_logged(
            Command::new(python)
                .arg(py_script("modern_server.py"))
                .args(["--http", "0"])
                .args(args)
                .env("PYTHONUNBUFFERED", "1"),
            &state.path,
        );
        let log = child.wait_for(MODERN_READY, Duration::from_secs(60));
        let addr = parse_listen_addr(&log, MODERN_READY)
            .unwrap_or_else(|| panic!("modern_server.py --http 0 {args:?} printed no {MODERN_READY:?} line:\n{log}"));
        ModernHttp { url: format!("http://{addr}/mcp"), child, _state: state }
    }

    /// A streamable-http backend entry for it, with `prefix`.
    fn backend(&self, prefix: &str) -> Value {
        json!({ "type": "streamable-http", "url": self.url, "prefix": prefix })
    }

    fn log(&mut self) -> String {
        self.child.wait_for("", Duration::from_millis(1))
    }
}

/// The usual gateway: the modern backend over stdio (prefix `m`),
/// server-everything over stdio (no prefix) and the demo (prefix `demo`).
fn std_config(python: &Path, everything: &Value) -> Value {
    json!({
        "server": { "name": GATEWAY_NAME },
        "mcpServers": { "modern": modern_stdio(python, &[]), "everything": everything, "demo": demo() }
    })
}

/// The modern backend over Streamable HTTP (prefix `m`), server-everything and the demo.
fn http_config(modern: &ModernHttp, everything: &Value) -> Value {
    json!({
        "server": { "name": GATEWAY_NAME },
        "mcpServers": { "modern": modern.backend("m"), "everything": everything, "demo": demo() }
    })
}

/// Starts the gateway and waits (bounded) until every backend is connected:
/// these tests are about the eras, not about start-up, and a Python backend
/// can take longer to start than the gateway's start-up grace on a loaded
/// machine.
fn start_connected(config: &Value) -> Gateway {
    let gw = Gateway::start(config);
    let all = || {
        gw.manage_get("/backends").json()["backends"]
            .as_array()
            .is_some_and(|b| b.iter().all(|x| x["state"] == json!("connected")))
    };
    assert!(common::wait_until(Duration::from_secs(90), all), "not every backend connected:\n{}", gw.log());
    gw
}

// ---------------------------------------------------------------------------
// The Python client
// ---------------------------------------------------------------------------

/// Runs `era_client.py` and returns what it saw; panics (with its error,
/// e.g. `MCP error -32022: ...`, and the gateway's log) unless it says ok.
fn client(python: &Path, gw: &Gateway, path: &str, mode: &str, scenario: &str, extra: &[&str]) -> Value {
    let transport = if path == "/sse" { "sse" } else { "streamable-http" };
    let mut cmd = common::py_command(python, "era_client.py");
    cmd.args(["--url", &gw.url(path), "--transport", transport, "--mode", mode, "--scenario", scenario]).args(extra);
    let what = format!("era_client.py {scenario} ({mode} over {path})");
    let out = run_bounded(&format!("py:{scenario}:{mode}"), &mut cmd, PY_TIMEOUT);
    assert!(!out.timed_out, "{what} ran past {PY_TIMEOUT:?}\nstderr:\n{}\ngateway log:\n{}", out.stderr, gw.log());
    let value: Option<Value> =
        out.stdout.lines().rev().find(|l| l.starts_with('{')).and_then(|l| serde_json::from_str(l).ok());
    let ok = out.success() && value.as_ref().is_some_and(|v| v["ok"] == json!(true));
    if !ok {
        let why = value.as_ref().and_then(|v| v["error"].as_str().map(String::from)).unwrap_or_default();
        panic!("{what} failed: {why}\nstdout:\n{}\nstderr:\n{}\ngateway log:\n{}", out.stdout, out.stderr, gw.log());
    }
    let value = value.expect("checked above");
    eprintln!("{what}: {value}");
    value
}

fn text(call: &Value) -> &str {
    call["text"].as_str().unwrap_or_default()
}

/// A tool call that succeeded and whose text shows every `want`.
fn assert_ok_showing(call: &Value, what: &str, want: &[&str]) {
    assert_eq!(call["is_error"], json!(false), "{what} failed: {call}");
    for w in want {
        assert!(text(call).contains(w), "{what}: the result does not show {w:?}: {}", text(call));
    }
}

/// A tool call that failed fast with an error whose text mentions `want`.
fn assert_fast_error(call: &Value, what: &str, want: &str) {
    assert_eq!(call["is_error"], json!(true), "{what} must fail: {call}");
    assert!(text(call).to_ascii_lowercase().contains(want), "{what}: the error does not name {want:?}: {}", text(call));
    let took = call["elapsed_s"].as_f64().unwrap_or(f64::MAX);
    assert!(took < FAST, "{what}: the error took {took} s (a refusal must come at once)");
}

fn list(v: &Value) -> Vec<Value> {
    v.as_array().cloned().unwrap_or_default()
}

fn strings(v: &Value) -> Vec<String> {
    list(v).iter().filter_map(|x| x.as_str().map(String::from)).collect()
}

// ---------------------------------------------------------------------------
// Raw 2026-07-28 requests
// ---------------------------------------------------------------------------

/// The per-request envelope (`params._meta`) a modern client sends.
fn envelope() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": { "elicitation": { "form": {} } },
        "io.modelcontextprotocol/clientInfo": { "name": "eras-raw", "version": "1" },
    })
}

/// A modern JSON-RPC request: `params` plus the envelope in `_meta`.
fn modern_request(id: Value, method: &str, params: Value) -> Value {
    let mut params = if params.is_object() { params } else { json!({}) };
    let mut meta = envelope();
    if let Some(extra) = params.get("_meta").and_then(Value::as_object) {
        for (k, v) in extra {
            meta[k] = v.clone();
        }
    }
    params["_meta"] = meta;
    json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params })
}

/// What `Mcp-Name` must say for `method` (None: no such header).
fn routing_name(method: &str, params: &Value) -> Option<String> {
    match method {
        "tools/call" | "prompts/get" => params["name"].as_str().map(String::from),
        "resources/read" => params["uri"].as_str().map(String::from),
        _ => None,
    }
}

/// POST /mcp with the standard 2026-07-28 headers (`Mcp-Name` computed from
/// the body), plus `extra` headers; the answer (JSON, or the response in an
/// event stream).
fn modern_post(gw: &Gateway, id: Value, method: &str, params: Value) -> Response {
    let name = routing_name(method, &params);
    let mut h = vec![
        ("Accept", "application/json, text/event-stream"),
        ("MCP-Protocol-Version", MODERN),
        ("Mcp-Method", method),
    ];
    if let Some(n) = name.as_deref() {
        h.push(("Mcp-Name", n));
    }
    post_json(&gw.url("/mcp"), &h, &modern_request(id, method, params))
}

/// A 200 with a JSON-RPC result; the result.
fn result_of(r: &Response, what: &str, gw: &Gateway) -> Value {
    assert_eq!(r.status, 200, "{what}: HTTP {} {}\n{}", r.status, r.text(), gw.log());
    let v = r.json();
    assert!(v.get("result").is_some(), "{what}: no result: {v}\n{}", gw.log());
    v["result"].clone()
}

/// `result.resultType == "complete"`.
fn assert_complete(result: &Value, what: &str) {
    assert_eq!(result["resultType"], json!("complete"), "{what}: resultType must be \"complete\": {result}");
}

/// The gateway's Prometheus figure `name{backend="<backend>"}`.
fn metric(gw: &Gateway, name: &str, backend: &str) -> u64 {
    let text = gw.manage_raw("/metrics").text();
    let needle = format!("{name}{{backend=\"{backend}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&needle))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {needle:?} in /metrics:\n{text}"))
}

/// Calls sent to `backend` minus calls it finished (the gateway's own
/// discovery included): what is in flight at it now.
fn in_flight(gw: &Gateway, backend: &str) -> i64 {
    let started = metric(gw, "mcp_sentinel_backend_calls_total", backend) as i64;
    let finished = metric(gw, "mcp_sentinel_backend_call_duration_seconds_count", backend) as i64;
    started - finished
}

/// A gateway with only the demo backend (for the wire tests that need no SDK).
fn demo_gateway(timeout_s: Option<f64>) -> Gateway {
    let mut d = demo();
    d["ping_interval_s"] = json!(0);
    if let Some(t) = timeout_s {
        d["timeout_s"] = json!(t);
    }
    start_connected(&json!({ "server": { "name": GATEWAY_NAME }, "mcpServers": { "demo": d } }))
}

// ---------------------------------------------------------------------------
// Wire: discover, headers, removed methods, GET/DELETE
// ---------------------------------------------------------------------------

/// `server/discover` with no session and no `initialize`: `supportedVersions`
/// names 2026-07-28 and the session revisions, with capabilities,
/// `resultType`, cache hints and the gateway's own `serverInfo`; no session
/// is minted.
#[test]
fn discover_without_session_raw_modern() {
    let gw = demo_gateway(None);
    let r = modern_post(&gw, json!("d-1"), "server/discover", json!({}));
    let res = result_of(&r, "server/discover", &gw);
    let versions = strings(&res["supportedVersions"]);
    for v in [MODERN, "2025-11-25", "2025-06-18", "2025-03-26"] {
        assert!(versions.iter().any(|x| x == v), "supportedVersions must name {v}: {versions:?}");
    }
    assert!(res["capabilities"]["tools"].is_object(), "capabilities must declare tools: {res}");
    assert_complete(&res, "server/discover");
    assert!(res["ttlMs"].as_u64().is_some(), "ttlMs must be an integer >= 0: {res}");
    let scope = res["cacheScope"].as_str().unwrap_or_default();
    assert!(scope == "public" || scope == "private", "cacheScope must be public or private: {res}");
    assert_eq!(
        res["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        json!(GATEWAY_NAME),
        "_meta serverInfo must be the gateway's own: {res}"
    );
    assert!(r.header("Mcp-Session-Id").is_none(), "a modern request must not mint a session: {:?}", r.headers);
    assert_eq!(r.json()["id"], json!("d-1"));
}

/// What a header case sends: a label, the headers, the body.
type HeaderCase<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a Value);

/// `Mcp-Method`/`Mcp-Name` must match the body: a wrong or missing one is
/// 400 with -32020 (HeaderMismatch), and the same request with the right
/// headers works.
#[test]
fn routing_headers_checked_raw_modern() {
    let gw = demo_gateway(None);
    let url = gw.url("/mcp");
    let call = modern_request(json!(1), "tools/call", json!({"name": "demo__echo", "arguments": {"message": "hi"}}));
    let list = modern_request(json!(2), "tools/list", json!({}));
    let accept = ("Accept", "application/json, text/event-stream");
    let version = ("MCP-Protocol-Version", MODERN);
    let cases: Vec<HeaderCase<'_>> = vec![
        (
            "Mcp-Name naming another tool",
            vec![accept, version, ("Mcp-Method", "tools/call"), ("Mcp-Name", "demo__add")],
            &call,
        ),
        ("Mcp-Name missing on tools/call", vec![accept, version, ("Mcp-Method", "tools/call")], &call),
        ("Mcp-Method missing", vec![accept, version], &list),
        ("Mcp-Method naming another method", vec![accept, version, ("Mcp-Method", "tools/call")], &list),
        ("Mcp-Method in the wrong case", vec![accept, version, ("Mcp-Method", "TOOLS/LIST")], &list),
    ];
    for (what, headers, body) in cases {
        let r = post_json(&url, &headers, body);
        let v: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
        assert_eq!(r.status, 400, "{what}: must be HTTP 400: {} {}", r.status, r.text());
        assert_eq!(v["error"]["code"], json!(-32020), "{what}: must be -32020 (HeaderMismatch): {}", r.text());
        assert_eq!(v["id"], body["id"], "{what}: the error must carry the request id: {}", r.text());
    }
    let ok = modern_post(&gw, json!(3), "tools/call", json!({"name": "demo__echo", "arguments": {"message": "hi"}}));
    let res = result_of(&ok, "tools/call demo__echo with the right headers", &gw);
    assert!(res.to_string().contains("hi"), "{res}");
}

/// Methods removed in 2026-07-28 (`ping`, `logging/setLevel`,
/// `resources/subscribe`), sent as modern requests: 404 with a JSON-RPC
/// -32601 body carrying the id (what tells it from a path 404).
#[test]
fn removed_methods_are_404_raw_modern() {
    let gw = demo_gateway(None);
    for (i, (method, params)) in [
        ("ping", json!({})),
        ("logging/setLevel", json!({"level": "info"})),
        ("resources/subscribe", json!({"uri": "demo://demo/readme"})),
    ]
    .into_iter()
    .enumerate()
    {
        let r = modern_post(&gw, json!(i + 10), method, params);
        let v: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
        assert_eq!(r.status, 404, "{method} at {MODERN}: must be 404: {} {}", r.status, r.text());
        assert_eq!(v["error"]["code"], json!(-32601), "{method}: must be -32601: {}", r.text());
        assert_eq!(v["id"], json!(i + 10), "{method}: the error must carry the id: {}", r.text());
    }
}

/// GET and DELETE with `MCP-Protocol-Version: 2026-07-28`: 405 (there is no
/// GET stream or session to delete in 2026-07-28).
#[test]
fn get_and_delete_are_405_raw_modern() {
    let gw = demo_gateway(None);
    let url = gw.url("/mcp");
    let get = common::http("GET", &url, &[("Accept", "text/event-stream"), ("MCP-Protocol-Version", MODERN)], None);
    assert_eq!(get.status, 405, "GET /mcp at {MODERN}: {} {}", get.status, get.text());
    let del = common::http("DELETE", &url, &[("MCP-Protocol-Version", MODERN)], None);
    assert_eq!(del.status, 405, "DELETE /mcp at {MODERN}: {} {}", del.status, del.text());
}

// ---------------------------------------------------------------------------
// Wire: results, lists, listen
// ---------------------------------------------------------------------------

/// Every result carries `resultType`, lists carry `ttlMs` and `cacheScope`
/// (0 and private: server-everything and the demo are legacy), tools come
/// in the same order twice, and calls, prompts, reads and completions are
/// forwarded with their prefixes rewritten, to the modern backend and to
/// the legacy ones.
#[test]
fn results_carry_result_type_raw_modern() {
    let Some((python, everything)) = peers() else { return };
    let gw = start_connected(&std_config(&python, &everything));
    let mut names_first = Vec::new();
    for (i, (method, key)) in [
        ("tools/list", "tools"),
        ("prompts/list", "prompts"),
        ("resources/list", "resources"),
        ("resources/templates/list", "resourceTemplates"),
        ("tools/list", "tools"),
    ]
    .into_iter()
    .enumerate()
    {
        let res = result_of(&modern_post(&gw, json!(i), method, json!({})), method, &gw);
        assert_complete(&res, method);
        assert_eq!(res["ttlMs"], json!(0), "{method}: legacy backends count as ttlMs 0: {res}");
        assert_eq!(res["cacheScope"], json!("private"), "{method}: not every part is public: {res}");
        assert!(!list(&res[key]).is_empty(), "{method}: empty: {res}");
        if method == "tools/list" {
            let names: Vec<String> =
                list(&res["tools"]).iter().filter_map(|t| t["name"].as_str().map(String::from)).collect();
            for want in ["m__echo", "m__deploy", "echo", "trigger-sampling-request", "demo__echo"] {
                assert!(names.iter().any(|n| n == want), "tools/list lacks {want}: {names:?}");
            }
            if names_first.is_empty() {
                names_first = names;
            } else {
                assert_eq!(names, names_first, "tools/list must come in a deterministic order");
            }
        }
    }
    let call = |id: u32, name: &str, args: Value| {
        let res =
            result_of(&modern_post(&gw, json!(id), "tools/call", json!({"name": name, "arguments": args})), name, &gw);
        assert_complete(&res, name);
        res["content"][0]["text"].as_str().unwrap_or_default().to_owned()
    };
    assert_eq!(call(20, "m__echo", json!({"text": "modern echo"})), "modern echo");
    assert!(call(21, "echo", json!({"message": "legacy echo"})).contains("legacy echo"));
    assert!(call(22, "demo__echo", json!({"message": "demo echo"})).contains("demo echo"));

    let got = result_of(
        &modern_post(&gw, json!(23), "prompts/get", json!({"name": "m__greet", "arguments": {"name": "bob"}})),
        "prompts/get m__greet",
        &gw,
    );
    assert_complete(&got, "prompts/get");
    assert!(got.to_string().contains("Hello, bob!"), "{got}");

    let read =
        result_of(&modern_post(&gw, json!(24), "resources/read", json!({"uri": "note://todo"})), "resources/read", &gw);
    assert_complete(&read, "resources/read");
    assert_eq!(read["contents"][0]["text"], json!("buy milk"), "{read}");
    assert!(read["ttlMs"].as_u64().is_some() && read["cacheScope"].is_string(), "resources/read is cacheable: {read}");

    let comp = result_of(
        &modern_post(
            &gw,
            json!(25),
            "completion/complete",
            json!({"ref": {"type": "ref/prompt", "name": "m__greet"}, "argument": {"name": "name", "value": "a"}}),
        ),
        "completion/complete",
        &gw,
    );
    assert_complete(&comp, "completion/complete");
    assert_eq!(comp["completion"]["values"], json!(["alice"]), "{comp}");
}

/// Waits (bounded) for the next event whose JSON-RPC method is `method`;
/// every event seen on the way is appended to `seen`.
fn next_method(s: &mut SseStream, method: &str, seen: &mut Vec<Value>, timeout: Duration) -> Option<Value> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        let (_, data) = s.next_event(left)?;
        let Ok(v) = serde_json::from_str::<Value>(&data) else { continue };
        seen.push(v.clone());
        if v["method"] == json!(method) {
            return Some(v);
        }
    }
}

/// `subscriptions/listen` on the wire: the acknowledgement first (with the
/// listen id as `subscriptionId` and the honoured filter), then
/// `tools/list_changed` when the modern backend's tools change and
/// `resources/updated` for a subscribed URI, each tagged with the
/// subscription id; nothing else (no progress, no logs) on the stream.
#[test]
fn listen_stream_raw_modern() {
    let Some((python, everything)) = peers() else { return };
    let gw = start_connected(&std_config(&python, &everything));
    let sub_id = "eras-sub-1";
    let body = modern_request(
        json!(sub_id),
        "subscriptions/listen",
        json!({"notifications": {"toolsListChanged": true, "resourceSubscriptions": ["note://todo"]}}),
    );
    let bytes = serde_json::to_vec(&body).expect("serialize");
    let headers = [
        ("Content-Type", "application/json"),
        ("Accept", "application/json, text/event-stream"),
        ("MCP-Protocol-Version", MODERN),
        ("Mcp-Method", "subscriptions/listen"),
    ];
    let mut s = SseStream::request("POST", &gw.url("/mcp"), &headers, Some(&bytes)).unwrap_or_else(|r| {
        panic!("subscriptions/listen must answer an event stream: {} {}\n{}", r.status, r.text(), gw.log())
    });
    let mut seen = Vec::new();
    let tag = |v: &Value| v["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"].clone();
    let (_, first) =
        s.next_event(Duration::from_secs(10)).unwrap_or_else(|| panic!("no event on the listen\n{}", gw.log()));
    let ack: Value = serde_json::from_str(&first).unwrap_or(Value::Null);
    assert_eq!(
        ack["method"],
        json!("notifications/subscriptions/acknowledged"),
        "the first event must be the ack: {first}"
    );
    assert_eq!(tag(&ack), json!(sub_id), "the ack must carry the listen id: {ack}");
    assert_eq!(ack["params"]["notifications"]["toolsListChanged"], json!(true), "{ack}");
    assert_eq!(ack["params"]["notifications"]["resourceSubscriptions"], json!(["note://todo"]), "{ack}");

    result_of(
        &modern_post(&gw, json!(1), "tools/call", json!({"name": "m__enable_extra", "arguments": {}})),
        "m__enable_extra",
        &gw,
    );
    let changed = next_method(&mut s, "notifications/tools/list_changed", &mut seen, Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no tools/list_changed on the listen: {seen:?}\n{}", gw.log()));
    assert_eq!(tag(&changed), json!(sub_id), "list_changed must carry the subscription id: {changed}");

    result_of(
        &modern_post(&gw, json!(2), "tools/call", json!({"name": "m__update_note", "arguments": {"text": "raw"}})),
        "m__update_note",
        &gw,
    );
    let updated = next_method(&mut s, "notifications/resources/updated", &mut seen, Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no resources/updated on the listen: {seen:?}\n{}", gw.log()));
    assert_eq!(updated["params"]["uri"], json!("note://todo"), "{updated}");
    assert_eq!(tag(&updated), json!(sub_id), "resources/updated must carry the subscription id: {updated}");
    for v in &seen {
        let m = v["method"].as_str().unwrap_or_default();
        assert!(
            matches!(m, "notifications/tools/list_changed" | "notifications/resources/updated"),
            "the listen carried a message it was not asked for: {v}"
        );
    }
}

// ---------------------------------------------------------------------------
// A modern client that never retries
// ---------------------------------------------------------------------------

/// A legacy backend's request during a modern client's call (the demo's
/// `ask_client` sending `elicitation/create`) comes back as an
/// `input_required` result; the client never retries, and the backend call
/// the gateway holds ends within the backend's `timeout_s` (2 s here),
/// before the demo's own 5 s wait would end it.
#[test]
fn never_retrying_client_frees_the_backend_raw_modern() {
    let gw = demo_gateway(Some(2.0));
    assert_eq!(in_flight(&gw, "demo"), 0, "nothing in flight before the call");
    let start = Instant::now();
    let r = modern_post(
        &gw,
        json!(7),
        "tools/call",
        json!({"name": "demo__ask_client", "arguments": {"method": "elicitation/create"}}),
    );
    let res = result_of(&r, "demo__ask_client", &gw);
    assert_eq!(
        res["resultType"],
        json!("input_required"),
        "the backend's elicitation must come back as input_required: {res}"
    );
    let asks: Vec<Value> = res["inputRequests"].as_object().map(|m| m.values().cloned().collect()).unwrap_or_default();
    assert_eq!(asks.len(), 1, "one input request: {res}");
    assert_eq!(asks[0]["method"], json!("elicitation/create"), "{res}");
    assert!(res["requestState"].is_string(), "the gateway needs requestState to resume the held call: {res}");
    assert_eq!(in_flight(&gw, "demo"), 1, "the gateway must hold the backend call while it waits for the retry");
    let freed = common::wait_until(Duration::from_secs(8), || in_flight(&gw, "demo") == 0);
    let took = start.elapsed().as_secs_f64();
    assert!(freed, "the held backend call never ended\n{}", gw.log());
    assert!(
        (1.0..4.5).contains(&took),
        "the held call must end after the backend's timeout_s (2 s), not at once nor at the demo's own 5 s: {took:.2} s\n{}",
        gw.log()
    );
}

// ---------------------------------------------------------------------------
// The management API
// ---------------------------------------------------------------------------

/// `/manage/v1/backends` shows each backend's era: `2026-07-28` for the
/// modern backend over stdio and the modern-only one over HTTP, a session
/// revision for server-everything.
#[test]
fn manage_api_shows_backend_eras() {
    let Some((python, everything)) = peers() else { return };
    let mut only = ModernHttp::start(&python, &["--modern-only"]);
    let gw = start_connected(&json!({
        "server": { "name": GATEWAY_NAME },
        "mcpServers": { "modern": modern_stdio(&python, &[]), "modern_http": only.backend("mh"), "everything": everything }
    }));
    let ok = common::wait_until(Duration::from_secs(15), || {
        gw.manage_get("/backends").json()["backends"]
            .as_array()
            .is_some_and(|b| b.iter().all(|x| x["state"] == json!("connected")))
    });
    let view = gw.manage_get("/backends").json();
    assert!(ok, "every backend must connect: {view}\nmodern-only backend:\n{}\n{}", only.log(), gw.log());
    let era = |name: &str| {
        list(&view["backends"]).into_iter().find(|b| b["name"] == json!(name)).map(|b| b["protocol_version"].clone())
    };
    assert_eq!(era("modern"), Some(json!(MODERN)), "{view}");
    assert_eq!(era("modern_http"), Some(json!(MODERN)), "{view}");
    let legacy = era("everything").and_then(|v| v.as_str().map(String::from)).unwrap_or_default();
    assert!(
        legacy.starts_with("202") && legacy.as_str() < MODERN,
        "server-everything speaks a session revision: {view}"
    );
}

// ---------------------------------------------------------------------------
// The SDK client: discover and lists
// ---------------------------------------------------------------------------

/// `Client(mode="auto")` probes `server/discover` and stays in 2026-07-28,
/// naming the gateway (not a backend) as the server, and lists every backend's tools.
#[test]
fn discover_auto_client() {
    let Some((python, everything)) = peers() else { return };
    let gw = start_connected(&std_config(&python, &everything));
    let v = client(&python, &gw, "/mcp", "auto", "discover", &[]);
    assert_eq!(v["protocol_version"], json!(MODERN), "an auto client must pick 2026-07-28: {v}");
    assert_eq!(v["server_name"], json!(GATEWAY_NAME), "{v}");
    assert!(v["capabilities"]["tools"].is_object(), "{v}");
    let tools = strings(&v["tools"]);
    for want in ["m__echo", "echo", "demo__echo"] {
        assert!(tools.iter().any(|t| t == want), "{want} missing: {tools:?}");
    }
}

/// Modern lists through the SDK: every kind, with `ttlMs` 0 and `private`
/// (server-everything and the demo are legacy), tools twice in the same order.
#[test]
fn lists_modern() {
    let Some((python, everything)) = peers() else { return };
    let gw = start_connected(&std_config(&python, &everything));
    let v = client(&python, &gw, "/mcp", MODERN, "lists", &[]);
    let wants = [
        ("tools", vec!["m__echo", "m__deploy", "echo", "demo__echo"]),
        ("prompts", vec!["m__greet"]),
        ("resources", vec!["note://todo"]),
        ("templates", vec!["note://items/{id}"]),
    ];
    for (kind, want) in wants {
        let names = strings(&v[kind]["names"]);
        for w in want {
            assert!(names.iter().any(|n| n == w), "{kind}: {w} missing: {names:?}");
        }
        assert_eq!(v[kind]["ttl_ms"], json!(0), "{kind}: a legacy backend counts as ttlMs 0: {v}");
        assert_eq!(v[kind]["cache_scope"], json!("private"), "{kind}: {v}");
    }
    assert_eq!(v["tools_again"], v["tools"]["names"], "tools/list must be in a deterministic order");
}

/// Two modern backends (stdio with tools ttl 60 s, HTTP with 20 s): each
/// merged list takes the smallest `ttlMs` and is `public` only if every part is.
#[test]
fn lists_merge_cache_hints_modern_two_modern_backends() {
    let Some(python) = common::sdk_python() else { return };
    let second = ModernHttp::start(&python, &["--tools-ttl", "20000"]);
    let gw = start_connected(&json!({
        "server": { "name": GATEWAY_NAME },
        "mcpServers": { "modern": modern_stdio(&python, &[]), "modern2": second.backend("m2") }
    }));
    let v = client(&python, &gw, "/mcp", MODERN, "lists", &[]);
    let names = strings(&v["tools"]["names"]);
    assert!(names.iter().any(|n| n == "m__echo") && names.iter().any(|n| n == "m2__echo"), "{names:?}");
    for (kind, ttl, scope) in [
        ("tools", 20000, "public"),
        ("prompts", 30000, "public"),
        ("resources", 45000, "private"),
        ("templates", 50000, "public"),
    ] {
        assert_eq!(v[kind]["ttl_ms"], json!(ttl), "{kind}: the smallest of the backends' ttlMs: {v}");
        assert_eq!(v[kind]["cache_scope"], json!(scope), "{kind}: {v}");
    }
}

/// Calls, prompts, reads and completions from a modern client (prefixes rewritten).
#[test]
fn forward_modern() {
    let Some((python, everything)) = peers() else { return };
    let gw = start_connected(&std_config(&python, &everything));
    let v = client(&python, &gw, "/mcp", MODERN, "forward", &[]);
    assert_ok_showing(&v["echo"], "m__echo", &["hello eras"]);
    assert_eq!(v["prompt"]["text"], json!("Hello, bob!"), "{v}");
    assert_eq!(v["read"]["text"], json!("buy milk"), "{v}");
    assert_eq!(v["complete"]["values"], json!(["alice"]), "{v}");
}

// ---------------------------------------------------------------------------
// The bridge: MRTR
// ---------------------------------------------------------------------------

/// The three MRTR tools completed with the client's answers, each callback
/// asked once with the backend's request, `requestState` back at the backend.
fn assert_mrtr(v: &Value) {
    assert_ok_showing(
        &v["deploy"],
        "m__deploy (elicitation)",
        &["deployed to prod", "accept", r#"{"ok": true}"#, "state: awaiting-confirm"],
    );
    let asked = list(&v["A"]["elicitations"]);
    assert_eq!(asked.len(), 1, "the elicitation callback must run exactly once: {asked:?}");
    assert_eq!(
        asked[0]["message"],
        json!("Deploy to prod?"),
        "the backend's message must reach the callback: {asked:?}"
    );
    assert_eq!(asked[0]["fields"], json!(["ok"]), "the requestedSchema must arrive whole: {asked:?}");

    assert_ok_showing(&v["ask_llm"], "m__ask_llm (sampling)", &["llm said: sampled-by-A", "model-of-A"]);
    let sampled = list(&v["A"]["sampling"]);
    assert_eq!(sampled.len(), 1, "the sampling callback must run exactly once: {sampled:?}");
    assert_eq!(sampled[0]["text"], json!("meaning of eras?"), "{sampled:?}");
    assert_eq!(sampled[0]["max_tokens"], json!(50), "{sampled:?}");

    assert_ok_showing(&v["roots"], "m__list_roots_tool (roots)", &["file:///eras/A-root root-of-A"]);
    assert_eq!(v["A"]["roots_asked"], json!(1), "the roots callback must run exactly once: {v}");
}

/// Modern client, modern backend (stdio): MRTR passes through the gateway;
/// the backend is spoken to in 2026-07-28.
#[test]
fn mrtr_modern() {
    let Some((python, everything)) = peers() else { return };
    let gw = start_connected(&std_config(&python, &everything));
    let v = client(&python, &gw, "/mcp", MODERN, "mrtr", &[]);
    assert_mrtr(&v);
    assert!(
        text(&v["era"]).contains(r#""protocol_version": "2026-07-28""#),
        "the backend must be spoken to in {MODERN}: {}",
        text(&v["era"])
    );
}

/// Modern client, modern backend over Streamable HTTP (dual-era).
#[test]
fn mrtr_modern_http_backend() {
    let Some((python, everything)) = peers() else { return };
    let modern = ModernHttp::start(&python, &[]);
    let gw = start_connected(&http_config(&modern, &everything));
    let v = client(&python, &gw, "/mcp", MODERN, "mrtr", &[]);
    assert_mrtr(&v);
    assert!(text(&v["era"]).contains(r#""protocol_version": "2026-07-28""#), "{}", text(&v["era"]));
}

/// Legacy client on /sse, modern backend: the gateway turns each
/// `input_required` into a pushed request on the session, then retries upstream.
#[test]
fn mrtr_legacy_sse() {
    let Some((python, everything)) = peers() else { return };
    let gw = start_connected(&std_config(&python, &everything));
    assert_mrtr(&client(&python, &gw, "/sse", "legacy", "mrtr", &[]));
}

/// Legacy client on /mcp (2025-11-25 session), modern backend.
#[test]
fn mrtr_legacy_streamable_http() {
    let Some((python, everything)) = peers() else { return };
    let gw = start_connected(&std_config(&python, &everything));
    assert_mrtr(&client(&python, &gw, "/mcp", "legacy", "mrtr", &[]));
}

/// A legacy client that declared no capability: each MRTR tool fails at
/// once with an error naming the capability it lacks.
#[test]
fn nocaps_legacy_streamable_http() {
    let Some((python, everything)) = peers() else { return };
    let gw = start_connected(&std_config(&python, &everything));
    let v = client(&python, &gw, "/mcp", "legacy", "nocaps", &[]);
    assert_fast_error(&v["deploy"], "m__deploy without elicitation", "elicitation");
    assert_fast_error(&v["ask_llm"], "m__ask_llm without sampling", "sampling");
    assert_fast_error(&v["roots"], "m__list_roots_tool without roots", "roots");
}

/// Modern client, legacy backend (server-everything over stdio): its
/// server-to-client requests reach the modern client's callbacks (as
/// `input_required`, which the SDK answers by retrying), and the calls
/// complete showing the answers.
#[test]
fn legacy_backend_requests_modern() {
    let Some((python, everything)) = peers() else { return };
    let gw = start_connected(&std_config(&python, &everything));
    let v = client(&python, &gw, "/mcp", MODERN, "legacy_backend", &[]);
    assert_ok_showing(
        &v["elicitation"],
        "trigger-elicitation-request",
        &["User provided the requested information", "Ada of A", "ada@example.com"],
    );
    let asked = list(&v["A"]["elicitations"]);
    assert_eq!(asked.len(), 1, "the elicitation callback must run exactly once: {asked:?}");
    let fields = strings(&asked[0]["fields"]);
    assert!(fields.iter().any(|f| f == "name") && fields.iter().any(|f| f == "email"), "{asked:?}");

    assert_ok_showing(&v["sampling"], "trigger-sampling-request", &["sampled-by-A", "model-of-A"]);
    let sampled = list(&v["A"]["sampling"]);
    assert_eq!(sampled.len(), 1, "the sampling callback must run exactly once: {sampled:?}");
    assert!(sampled[0]["text"].as_str().unwrap_or_default().contains("eras sampling prompt"), "{sampled:?}");
    assert_eq!(sampled[0]["max_tokens"], json!(42), "{sampled:?}");

    assert_ok_showing(&v["roots"], "get-roots-list", &["(1 total)", "root-of-A", "file:///eras/A-root"]);
    assert!(v["A"]["roots_asked"].as_u64().unwrap_or(0) >= 1, "the roots callback never ran: {v}");
}

/// A legacy client whose elicitation callback never returns: `m__deploy`
/// fails with an error about the unanswered elicitation within the modern
/// backend's `timeout_s` (3 s), not the client's own 15 s bound.
#[test]
fn never_answers_legacy_streamable_http() {
    let Some((python, everything)) = peers() else { return };
    let mut config = std_config(&python, &everything);
    config["mcpServers"]["modern"]["timeout_s"] = json!(3);
    // A 3 s ping wait would make a loaded machine's slow Python backend
    // look dead mid-test; liveness is not what this test is about.
    config["mcpServers"]["modern"]["ping_interval_s"] = json!(0);
    let gw = start_connected(&config);
    let v = client(&python, &gw, "/mcp", "legacy", "never_answers", &["--call-timeout", "15"]);
    let call = &v["deploy"];
    assert_eq!(call["is_error"], json!(true), "the call must fail: {call}");
    assert!(call.get("timed_out").is_none(), "the gateway must end the call, not the client's bound: {call}");
    assert!(text(call).to_ascii_lowercase().contains("elicitation"), "the error must say what went unanswered: {call}");
    let took = call["elapsed_s"].as_f64().unwrap_or(f64::MAX);
    assert!((2.0..8.0).contains(&took), "the call must end around the backend's timeout_s (3 s): {took} s");
    assert_eq!(list(&v["A"]["elicitations"]).len(), 1, "the elicitation must have reached the client: {v}");
}

// ---------------------------------------------------------------------------
// Listen, cancellation, logs, trace
// ---------------------------------------------------------------------------

/// The listen a modern client opened through the SDK (`client.listen`)
/// yields `ToolsListChanged` when another client's call changes the modern
/// backend's tools, and `ResourceUpdated` for the subscribed `note://todo`.
fn assert_listen(v: &Value) {
    assert_eq!(v["honored"]["toolsListChanged"], json!(true), "{v}");
    assert_eq!(v["honored"]["resourceSubscriptions"], json!(["note://todo"]), "{v}");
    let events = strings(&v["events"]);
    assert!(events.iter().any(|e| e == "ToolsListChanged()"), "no ToolsListChanged on the listen: {events:?}");
    assert!(
        events.iter().any(|e| e == "ResourceUpdated(uri='note://todo')"),
        "no ResourceUpdated(note://todo) on the listen: {events:?}"
    );
    assert!(strings(&v["tools_after"]).iter().any(|t| t == "m__extra"), "m__extra not listed after the change: {v}");
    assert_eq!(v["note_after"], json!("buy eggs"), "{v}");
}

#[test]
fn listen_modern() {
    let Some((python, everything)) = peers() else { return };
    let gw = start_connected(&std_config(&python, &everything));
    assert_listen(&client(&python, &gw, "/mcp", MODERN, "listen", &[]));
}

#[test]
fn listen_modern_http_backend() {
    let Some((python, everything)) = peers() else { return };
    let modern = ModernHttp::start(&python, &[]);
    let gw = start_connected(&http_config(&modern, &everything));
    assert_listen(&client(&python, &gw, "/mcp", MODERN, "listen", &[]));
}

/// A legacy client (on /sse, whose stream is open from the start) gets
/// `notifications/tools/list_changed` when the modern backend's tools change.
#[test]
fn listen_legacy_sse() {
    let Some((python, everything)) = peers() else { return };
    let gw = start_connected(&std_config(&python, &everything));
    let v = client(&python, &gw, "/sse", "legacy", "listen", &[]);
    assert!(v["A"]["list_changed"].as_u64().unwrap_or(0) >= 1, "no tools/list_changed reached the legacy client: {v}");
    assert!(strings(&v["tools_after"]).iter().any(|t| t == "m__extra"), "{v}");
}

/// A modern client cancels `slow` at its first progress (by closing its
/// stream); the backend sees the call cancelled.
fn assert_cancelled(v: &Value, slow: &str, report: &str, what: &str) {
    assert_eq!(v[slow]["progress_seen"], json!(true), "{what}: no progress before the cancel: {v}");
    assert_eq!(v[slow]["cancelled"], json!(true), "{what}: the call ended before the cancel: {v}");
    assert_eq!(v[report]["held"], json!(true), "{what}: the backend never saw the cancellation: {}", v[report]);
}

/// Modern backend (stdio: `notifications/cancelled`) and the legacy demo
/// backend (stdio: `notifications/cancelled`, checked with its `cancellations`).
#[test]
fn cancel_modern() {
    let Some((python, everything)) = peers() else { return };
    let gw = start_connected(&std_config(&python, &everything));
    let v = client(&python, &gw, "/mcp", MODERN, "cancel", &["--demo"]);
    assert_cancelled(&v, "slow", "report", "m__slow");
    assert_cancelled(&v, "demo_slow", "demo_report", "demo__slow");
}

/// Modern backend over Streamable HTTP: the gateway closes the upstream POST.
#[test]
fn cancel_modern_http_backend() {
    let Some((python, everything)) = peers() else { return };
    let modern = ModernHttp::start(&python, &[]);
    let gw = start_connected(&http_config(&modern, &everything));
    let v = client(&python, &gw, "/mcp", MODERN, "cancel", &[]);
    assert_cancelled(&v, "slow", "report", "m__slow over HTTP");
}

/// Per-request log levels (`_meta` logLevel): A and B (info) get exactly
/// their own call's logs, C (no level) and D (error) none.
fn assert_logs(v: &Value) {
    for name in ["A", "B", "C", "D"] {
        assert_ok_showing(
            &v[format!("{name}_call")],
            &format!("{name}'s m__chatty"),
            &[&format!("chatty log-{name} done")],
        );
    }
    for name in ["A", "B"] {
        let want: Vec<String> = (1..=4).map(|i| format!("log-{name}-{i}")).collect();
        assert_eq!(strings(&v[name]["logs"]), want, "{name} (logLevel info) must get exactly its own call's logs: {v}");
    }
    assert!(list(&v["C"]["logs"]).is_empty(), "C sent no logLevel and must get no log: {v}");
    assert!(list(&v["D"]["logs"]).is_empty(), "D asked for error and must get no info log: {v}");
}

#[test]
fn logs_modern() {
    let Some((python, everything)) = peers() else { return };
    let gw = start_connected(&std_config(&python, &everything));
    assert_logs(&client(&python, &gw, "/mcp", MODERN, "logs", &[]));
}

/// A and B call at the same time; over Streamable HTTP each call's logs
/// arrive on its own response stream, so each still gets only its own.
#[test]
fn logs_concurrent_modern_http_backend() {
    let Some((python, everything)) = peers() else { return };
    let modern = ModernHttp::start(&python, &[]);
    let gw = start_connected(&http_config(&modern, &everything));
    assert_logs(&client(&python, &gw, "/mcp", MODERN, "logs", &["--concurrent"]));
}

/// `traceparent`, `tracestate` and `baggage` in the request's `_meta` reach
/// the backend unchanged.
#[test]
fn trace_modern() {
    let Some((python, everything)) = peers() else { return };
    let gw = start_connected(&std_config(&python, &everything));
    let v = client(&python, &gw, "/mcp", MODERN, "trace", &[]);
    let got = &v["backend_got"]["meta"];
    assert_eq!(got["traceparent"], json!(TRACEPARENT), "traceparent must reach the backend unchanged: {v}");
    assert_eq!(got["tracestate"], v["sent"]["tracestate"], "{v}");
    assert_eq!(got["baggage"], v["sent"]["baggage"], "{v}");
}

// ---------------------------------------------------------------------------
// A modern-only backend
// ---------------------------------------------------------------------------

/// Lists, a call and MRTR through a modern-only Streamable HTTP backend
/// (which refuses `initialize`).
fn modern_only(mode: &str, path: &str) {
    let Some((python, everything)) = peers() else { return };
    let mut only = ModernHttp::start(&python, &["--modern-only"]);
    let gw = start_connected(&http_config(&only, &everything));
    let v = client(&python, &gw, path, mode, "basics", &[]);
    let tools = strings(&v["lists"]["tools"]["names"]);
    assert!(
        tools.iter().any(|t| t == "m__echo") && tools.iter().any(|t| t == "m__deploy"),
        "the modern-only backend's tools are not listed: {tools:?}\nbackend log:\n{}",
        only.log()
    );
    assert_ok_showing(&v["forward"]["echo"], "m__echo", &["hello eras"]);
    assert_mrtr(&v["mrtr"]);
}

#[test]
fn modern_only_backend_modern() {
    modern_only(MODERN, "/mcp");
}

#[test]
fn modern_only_backend_legacy_sse() {
    modern_only("legacy", "/sse");
}
