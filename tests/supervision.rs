//! Backend supervision against the real binary: exponential backoff for
//! backends that fail at once (stdio and HTTP), a remote backend that comes
//! back, liveness pings, local SSE servers that never adopt a listener they
//! did not start and die with their child, immediate errors for malformed
//! answers, -32001 for the tools of a backend that is down, and URL secrets
//! that never reach the API or the log.
//!
//! Timing bounds are generous (the machine may be loaded); each is still far
//! below what the behaviour before the fix produced (thousands of spawns,
//! 30 s waits, a hang until the call's timeout).

#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

mod common;

use common::{demo_backend, get_free_port, http, post_json, spawn_logged, Gateway, TempDir, DEMO_BIN};
use serde_json::{json, Value};
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const ACCEPT: (&str, &str) = ("Accept", "application/json, text/event-stream");

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// The management API of a gateway started without tokens (it generates one).
struct Api {
    base: String,
    token: String,
}

impl Api {
    fn of(gw: &Gateway) -> Api {
        let addr = gw.manage_addr().unwrap_or_else(|| panic!("no management listener in the log:\n{}", gw.log()));
        let path = gw.state_home().join("mcp-sentinel").join(format!("manage-{}.token", addr.port()));
        let token = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Api { base: format!("http://{addr}"), token: token.trim().to_owned() }
    }

    /// GET a management path; the raw body (to search for secrets) and its JSON.
    fn get_raw(&self, path: &str) -> (String, Value) {
        let auth = format!("Bearer {}", self.token);
        let r = http("GET", &format!("{}/manage/v1{path}", self.base), &[("Authorization", &auth)], None);
        assert_eq!(r.status, 200, "GET {path}: {}", r.text());
        (r.text(), r.json())
    }

    fn backend(&self, name: &str) -> Value {
        self.get_raw(&format!("/backends/{name}")).1
    }

    /// Every event still in the ring, oldest first.
    fn events(&self) -> Vec<Value> {
        self.get_raw("/events?limit=1000").1["events"].as_array().unwrap().clone()
    }

    /// Events of `kind` for `backend`, oldest first.
    fn events_of(&self, backend: &str, kind: &str) -> Vec<Value> {
        self.events().into_iter().filter(|e| e["backend"] == backend && e["kind"] == kind).collect()
    }
}

/// Polls `f` every 20 ms until it returns `Some`, at most `timeout`.
fn wait_for<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Milliseconds since the epoch of an event's `time` (`2026-12-01T17:06:58.123Z`).
fn event_ms(e: &Value) -> i64 {
    let t = e["time"].as_str().unwrap();
    let num = |r: std::ops::Range<usize>| t[r].parse::<i64>().unwrap();
    let (y, m, d) = (num(0..4), num(5..7), num(8..10));
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    let secs = days * 86_400 + num(11..13) * 3600 + num(14..16) * 60 + num(17..19);
    secs * 1000 + num(20..23)
}

/// Now, on the same clock as [`event_ms`].
fn now_ms() -> i64 {
    event_ms(&json!({"time": mcp_sentinel::util::rfc3339(std::time::SystemTime::now())}))
}

/// Gaps in milliseconds between consecutive events.
fn gaps(events: &[Value]) -> Vec<i64> {
    events.windows(2).map(|w| event_ms(&w[1]) - event_ms(&w[0])).collect()
}

/// An initialized Streamable HTTP session on the gateway.
struct Client {
    url: String,
    sid: String,
    next: i64,
}

impl Client {
    fn init(gw: &Gateway) -> Client {
        let r = common::mcp_initialize(&gw.url("/mcp"));
        assert_eq!(r.status, 200, "{}", r.text());
        let sid = r.header("Mcp-Session-Id").expect("Mcp-Session-Id").to_owned();
        let c = Client { url: gw.url("/mcp"), sid, next: 1 };
        let r = post_json(&c.url, &c.headers(), &json!({"jsonrpc":"2.0","method":"notifications/initialized"}));
        assert_eq!(r.status, 202);
        c
    }

    fn headers(&self) -> Vec<(&str, &str)> {
        vec![ACCEPT, ("Mcp-Session-Id", &self.sid), ("MCP-Protocol-Version", "2025-06-18")]
    }

    /// The whole JSON-RPC answer to `method`.
    fn rpc(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let r = post_json(
            &self.url,
            &self.headers(),
            &json!({"jsonrpc":"2.0","id":self.next,"method":method,"params":params}),
        );
        assert_eq!(r.status, 200, "{method}: {}", r.text());
        r.json()
    }

    fn call(&mut self, tool: &str, args: Value) -> Value {
        self.rpc("tools/call", json!({"name": tool, "arguments": args}))
    }
}

/// A `server` section with small backoff settings.
fn fast_backoff(initial_ms: u64, max_ms: u64) -> Value {
    json!({"backoff_initial_ms": initial_ms, "backoff_max_ms": max_ms})
}

/// A loopback port nothing listens on (bound, read, released).
fn closed_port() -> u16 {
    get_free_port()
}

/// `/proc/<pid>/stat`'s state letter, `None` when there is no such process.
fn proc_state(pid: u64) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The state follows the parenthesized command name.
    stat.rsplit_once(')').and_then(|(_, rest)| rest.trim_start().chars().next())
}

// ---------------------------------------------------------------------------
// A fake Streamable HTTP backend
// ---------------------------------------------------------------------------

/// A tiny Streamable HTTP MCP server on a std listener: answers initialize,
/// tools/list (one tool, `broken`) and ping properly, and `tools/call` with
/// 200 and a body that is not JSON. One request per connection. Stopped
/// (listener closed, thread joined) when dropped.
struct FakeHttp {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeHttp {
    fn start() -> FakeHttp {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(s) = conn {
                    std::thread::spawn(move || FakeHttp::serve(s));
                }
            }
        });
        FakeHttp { port, stop, thread: Some(thread) }
    }

    fn url(&self, query: &str) -> String {
        format!("http://127.0.0.1:{}/mcp{query}", self.port)
    }

    fn serve(mut s: TcpStream) {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let Some((head, body)) = common::read_request(&mut s) else { return };
        let (status, ctype, body) = if head.starts_with("POST ") {
            let msg: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let id = msg["id"].clone();
            let result = |r: Value| json!({"jsonrpc": "2.0", "id": id, "result": r}).to_string();
            match msg["method"].as_str() {
                Some("initialize") => (
                    200,
                    "application/json",
                    result(json!({"protocolVersion": "2025-06-18", "capabilities": {"tools": {}},
                        "serverInfo": {"name": "fake", "version": "1"}})),
                ),
                Some("tools/list") => (
                    200,
                    "application/json",
                    result(json!({"tools": [{"name": "broken", "inputSchema": {"type": "object"}}]})),
                ),
                Some("ping") => (200, "application/json", result(json!({}))),
                Some("tools/call") => (200, "application/json", "<html>this is not JSON-RPC</html>".to_owned()),
                _ if id.is_null() => (202, "text/plain", String::new()),
                _ => (200, "application/json", result(json!({}))),
            }
        } else {
            (405, "text/plain", String::new())
        };
        let resp = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = s.write_all(resp.as_bytes());
    }
}

impl Drop for FakeHttp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag and drops the listener.
        let _ = TcpStream::connect_timeout(&([127, 0, 0, 1], self.port).into(), Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// ---------------------------------------------------------------------------
// Backoff
// ---------------------------------------------------------------------------

/// Attempts (backend.connecting events) in the first `window` after the first one.
fn attempts_in(api: &Api, backend: &str, window: Duration) -> Vec<Value> {
    // A measurement window, not a readiness wait: the attempts must be
    // counted over a fixed span of time.
    let first = wait_for(Duration::from_secs(10), "a first attempt", || {
        api.events_of(backend, "backend.connecting").first().cloned()
    });
    let end = event_ms(&first) + window.as_millis() as i64;
    let left = end - now_ms();
    if left > 0 {
        std::thread::sleep(Duration::from_millis(left as u64 + 100));
    }
    api.events_of(backend, "backend.connecting").into_iter().filter(|e| event_ms(e) <= end).collect()
}

#[test]
fn a_backend_that_exits_at_once_is_retried_with_growing_waits() {
    let gw = Gateway::start(&json!({
        "server": fast_backoff(200, 1000),
        "mcpServers": {"f": {"command": "/bin/false"}},
    }));
    let api = Api::of(&gw);
    let attempts = attempts_in(&api, "f", Duration::from_secs(4));
    // 200, 400, 800, 1000, 1000 ms (±20 %): about 6 attempts in 4 s.
    let n = attempts.len();
    assert!((3..=8).contains(&n), "{n} spawn attempts in 4 s: {:?}", gaps(&attempts));
    let g = gaps(&attempts);
    assert!(g[0] >= 150, "the first wait is about 200 ms: {g:?}");
    assert!(*g.last().unwrap() >= 2 * g[0], "waits grow: {g:?}");
    assert!(g.iter().all(|&ms| ms <= 1000 + 400), "no wait past the cap (plus the attempt): {g:?}");
    let failed = api.backend("f");
    assert_eq!(failed["state"], "failed", "{failed}");
    assert!(failed["last_error"].as_str().is_some_and(|e| !e.is_empty()), "{failed}");
    // The gateway itself stays responsive.
    assert_eq!(common::mcp_initialize(&gw.url("/mcp")).status, 200);
}

#[test]
fn an_unreachable_http_backend_is_retried_with_backoff() {
    let port = closed_port();
    let gw = Gateway::start(&json!({
        "server": fast_backoff(200, 1000),
        "mcpServers": {"h": {"url": format!("http://127.0.0.1:{port}/mcp")}},
    }));
    let api = Api::of(&gw);
    let attempts = attempts_in(&api, "h", Duration::from_secs(3));
    let n = attempts.len();
    assert!((2..=7).contains(&n), "{n} connection attempts in 3 s: {:?}", gaps(&attempts));
    let g = gaps(&attempts);
    assert!(g.iter().all(|&ms| ms >= 150), "every wait is at least the initial backoff (-20 %): {g:?}");
    assert_eq!(api.backend("h")["state"], "failed");
}

#[test]
fn a_remote_backend_that_comes_back_is_connected_within_the_max_backoff() {
    let port = closed_port();
    let gw = Gateway::start(&json!({
        "server": fast_backoff(100, 1000),
        "mcpServers": {"r": {"url": format!("http://127.0.0.1:{port}/mcp")}},
    }));
    let api = Api::of(&gw);
    // Let the backoff reach its cap (100, 200, 400, 800, 1000 ms): the
    // server comes back 3 s after the first attempt.
    let first = wait_for(Duration::from_secs(10), "five failed attempts", || {
        let failed = api.events_of("r", "backend.failed");
        (failed.len() >= 5).then(|| failed[0].clone())
    });
    let left = event_ms(&first) + 3000 - now_ms();
    if left > 0 {
        // A fixed span of downtime, not a readiness wait.
        std::thread::sleep(Duration::from_millis(left as u64));
    }
    let dir = TempDir::new("comeback");
    let mut server =
        spawn_logged(std::process::Command::new(DEMO_BIN).args(["--http", &format!("127.0.0.1:{port}")]), &dir.path);
    let out = server.wait_for("listening on", Duration::from_secs(10));
    assert!(out.contains("listening on"), "the demo server did not start:\n{out}");
    let up = Instant::now();
    wait_for(Duration::from_secs(10), "the backend to connect", || {
        (api.backend("r")["state"] == "connected").then_some(())
    });
    let took = up.elapsed();
    // At most one wait at the cap (1 s), plus the handshake and polling.
    assert!(took < Duration::from_millis(2500), "connected {took:?} after the server came back");
}

// ---------------------------------------------------------------------------
// Liveness
// ---------------------------------------------------------------------------

#[test]
fn a_backend_that_stops_answering_is_found_by_ping_and_restarted() {
    let mut d = demo_backend("d", &[]);
    d["ping_interval_s"] = json!(1);
    d["timeout_s"] = json!(2);
    let gw = Gateway::start(&json!({"server": fast_backoff(100, 1000), "mcpServers": {"d": d}}));
    let api = Api::of(&gw);
    let before = api.backend("d");
    assert_eq!(before["state"], "connected", "{before}");
    let mut c = Client::init(&gw);
    let r = c.call("freeze", json!({}));
    assert!(r["result"]["content"][0]["text"].as_str().is_some_and(|t| t.starts_with("frozen")), "{r}");
    let frozen_at = Instant::now();
    // Ping within 1 s, no answer within min(timeout_s, 10 s) = 2 s, a
    // 100 ms backoff, a new process.
    let after = wait_for(Duration::from_secs(10), "a restart after the freeze", || {
        let b = api.backend("d");
        (b["state"] == "connected" && b["restarts"].as_u64() > before["restarts"].as_u64()).then_some(b)
    });
    assert!(frozen_at.elapsed() < Duration::from_secs(6), "restarted only after {:?}", frozen_at.elapsed());
    assert_ne!(after["pid"], before["pid"], "a new process: {after}");
    let why = api.events_of("d", "backend.disconnected");
    assert!(
        why.iter().any(|e| e["message"].as_str().is_some_and(|m| m.contains("did not answer ping within 2.0s"))),
        "{why:?}"
    );
    // The new process answers.
    let r = c.call("echo", json!({"message": "back"}));
    assert_eq!(r["result"]["content"][0]["text"], "back", "{r}");
}

// ---------------------------------------------------------------------------
// Local SSE servers
// ---------------------------------------------------------------------------

fn local_sse(port: u16) -> Value {
    json!({"type": "sse", "url": format!("http://127.0.0.1:{port}/sse"),
           "command": DEMO_BIN, "args": ["--name", "s", "--sse", format!("127.0.0.1:{port}")],
           "timeout_s": 5})
}

#[test]
fn a_local_sse_server_never_adopts_a_foreign_listener() {
    // Someone else holds the port (it accepts connections, it never answers).
    let squatter = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = squatter.local_addr().unwrap().port();
    let gw = Gateway::start(&json!({"server": fast_backoff(200, 1000), "mcpServers": {"s": local_sse(port)}}));
    let api = Api::of(&gw);
    let want = format!("127.0.0.1:{port} already has a listener (a leftover server?); not starting another");
    let b = wait_for(Duration::from_secs(10), "the backend to fail", || {
        let b = api.backend("s");
        (b["state"] == "failed").then_some(b)
    });
    assert!(b["last_error"].as_str().is_some_and(|e| e.contains(&want)), "{b}");
    assert!(b["pid"].is_null(), "{b}");
    // It keeps refusing on later attempts, and never connects.
    wait_for(Duration::from_secs(10), "a second refusal", || {
        (api.events_of("s", "backend.failed").len() >= 2).then_some(())
    });
    assert!(api.events_of("s", "backend.connected").is_empty());
    // The child's output is logged as `backend] [s] …`: there is none.
    assert!(!gw.log().contains("backend] [s] "), "the demo server must not have been started:\n{}", gw.log());
    drop(squatter);
}

#[test]
fn a_killed_local_sse_server_is_seen_at_once_and_restarted() {
    let port = get_free_port();
    let gw = Gateway::start(&json!({"server": fast_backoff(200, 1000), "mcpServers": {"s": local_sse(port)}}));
    let api = Api::of(&gw);
    let before = api.backend("s");
    assert_eq!(before["state"], "connected", "{before}");
    let pid = before["pid"].as_u64().unwrap();
    assert_eq!(proc_state(pid).map(|s| s != 'Z'), Some(true), "pid {pid} is a live process");
    let killed_at = std::time::SystemTime::now();
    let status = std::process::Command::new("kill").args(["-KILL", &pid.to_string()]).status().unwrap();
    assert!(status.success());
    let gone = wait_for(Duration::from_secs(5), "the disconnection", || {
        api.events_of("s", "backend.disconnected").into_iter().next()
    });
    let killed_ms = event_ms(&json!({"time": mcp_sentinel::util::rfc3339(killed_at)}));
    let seen_after = event_ms(&gone) - killed_ms;
    assert!(seen_after < 1000, "seen {seen_after} ms after the kill: {gone}");
    let msg = gone["message"].as_str().unwrap();
    assert!(msg.contains("local server exited") && msg.contains("SIGKILL"), "{gone}");
    let after = wait_for(Duration::from_secs(10), "a restart", || {
        let b = api.backend("s");
        (b["state"] == "connected" && b["pid"].as_u64().is_some_and(|p| p != pid)).then_some(b)
    });
    let new_pid = after["pid"].as_u64().unwrap();
    assert_eq!(proc_state(new_pid).map(|s| s != 'Z'), Some(true), "pid {new_pid} is a live process");
    assert_eq!(proc_state(pid), None, "the killed server was reaped");
}

// ---------------------------------------------------------------------------
// Malformed answers and unavailable backends
// ---------------------------------------------------------------------------

#[test]
fn a_non_json_answer_to_a_post_fails_the_call_at_once() {
    let fake = FakeHttp::start();
    let gw = Gateway::start(&json!({"mcpServers": {"fake": {"url": fake.url(""), "timeout_s": 30}}}));
    let api = Api::of(&gw);
    assert_eq!(api.backend("fake")["state"], "connected");
    let mut c = Client::init(&gw);
    let start = Instant::now();
    let r = c.call("broken", json!({}));
    let took = start.elapsed();
    assert!(took < Duration::from_millis(1500), "answered after {took:?}: {r}");
    let msg = r["error"]["message"].as_str().unwrap_or_else(|| panic!("an error: {r}"));
    assert!(msg.contains("backend 'fake' answered POST with something that is not JSON-RPC"), "{r}");
    assert_eq!(r["error"]["code"], -32603, "{r}");
    // The connection itself is fine.
    assert_eq!(api.backend("fake")["state"], "connected");
}

#[test]
fn tools_of_a_backend_that_is_down_name_it() {
    let mut beta = demo_backend("beta", &[]);
    beta["prefix"] = json!("b");
    let gw = Gateway::start(&json!({
        // A long first wait keeps the crashed backend down while we call it.
        "server": fast_backoff(5000, 5000),
        "mcpServers": {"alpha": demo_backend("alpha", &[]), "beta": beta},
    }));
    let api = Api::of(&gw);
    let mut c = Client::init(&gw);
    let r = c.call("b__crash", json!({}));
    assert!(r.get("error").is_some(), "{r}");
    wait_for(Duration::from_secs(5), "beta to go down", || (api.backend("beta")["state"] != "connected").then_some(()));
    let r = c.call("b__echo", json!({"message": "x"}));
    assert_eq!(r["error"]["code"], -32001, "{r}");
    let msg = r["error"]["message"].as_str().unwrap();
    assert!(msg.starts_with("backend 'beta' is not available (disconnected: "), "{r}");
    let r = c.rpc("prompts/get", json!({"name": "b__greet", "arguments": {"name": "x"}}));
    assert_eq!(r["error"]["code"], -32001, "{r}");
    // Not listed while down (the catalog is rebuilt on the admin thread
    // right after the state changes, so it may take a moment); an unknown
    // name is still unknown.
    let mut names: Vec<String> = Vec::new();
    let gone = common::wait_until(Duration::from_secs(5), || {
        let tools = c.rpc("tools/list", json!({}));
        names = tools["result"]["tools"]
            .as_array()
            .map(|a| a.iter().filter_map(|t| t["name"].as_str().map(String::from)).collect())
            .unwrap_or_default();
        !names.iter().any(|n| n == "b__echo")
    });
    assert!(gone && names.iter().any(|n| n == "echo"), "{names:?}");
    let r = c.call("nope", json!({}));
    assert_eq!(r["error"]["code"], -32602, "{r}");
    assert_eq!(r["error"]["message"], "Unknown tool: nope");
    let r = c.call("echo", json!({"message": "a"}));
    assert_eq!(r["result"]["content"][0]["text"], "a", "alpha still serves: {r}");
}

// ---------------------------------------------------------------------------
// Secrets
// ---------------------------------------------------------------------------

#[test]
fn url_secrets_never_show() {
    let port = closed_port();
    let fake = FakeHttp::start();
    let gw = Gateway::start(&json!({
        "server": fast_backoff(100, 500),
        "mcpServers": {
            "sse": {"type": "sse", "url": format!("http://127.0.0.1:{port}/sse?token=SECRET123")},
            "http": {"url": format!("http://user:SECRET123@127.0.0.1:{port}/mcp?api_key=SECRET123")},
            "dies": {"url": fake.url("?token=SECRET123"), "ping_interval_s": 1},
        },
    }));
    let api = Api::of(&gw);
    assert_eq!(api.backend("dies")["state"], "connected");
    // The remote goes away: the next ping's POST is refused.
    drop(fake);
    wait_for(Duration::from_secs(10), "failures of every backend", || {
        let ok = ["sse", "http", "dies"].iter().all(|b| !api.events_of(b, "backend.failed").is_empty())
            && !api.events_of("dies", "backend.disconnected").is_empty();
        ok.then_some(())
    });
    let (backends, _) = api.get_raw("/backends");
    let (events, _) = api.get_raw("/events?limit=1000");
    for (what, text) in [("/backends", &backends), ("/events", &events), ("the log", &gw.log())] {
        assert!(!text.contains("SECRET123"), "SECRET123 in {what}:\n{text}");
    }
    // What is shown is still useful: the redacted URL.
    assert!(events.contains("token=***"), "{events}");
}
