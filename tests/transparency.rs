//! The gateway changes nothing a client can see but the number of backends:
//! per-session backends keep clients' state apart, the first client after a
//! start sees the whole catalog, name clashes are reported whenever they
//! happen. (The official SDK and conformance checks are in
//! `sdk_transparency.rs` and `conformance.rs`.)

mod common;

use common::{demo_backend, http, post_json, Gateway, Response, DEMO_BIN};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const ACCEPT: (&str, &str) = ("Accept", "application/json, text/event-stream");
const T: Duration = Duration::from_secs(20);

/// A Streamable HTTP client session (2025-06-18: answers come as JSON).
struct Client {
    url: String,
    sid: String,
    next: i64,
}

impl Client {
    fn init(gw: &Gateway) -> Client {
        let r = post_json(
            &gw.url("/mcp"),
            &[ACCEPT],
            &json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
                "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name":"t","version":"1"}}}),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        let sid = r.header("Mcp-Session-Id").expect("session id").to_owned();
        let c = Client { url: gw.url("/mcp"), sid, next: 0 };
        assert_eq!(c.post(&json!({"jsonrpc":"2.0","method":"notifications/initialized"})).status, 202);
        c
    }

    fn post(&self, body: &Value) -> Response {
        post_json(&self.url, &[ACCEPT, ("Mcp-Session-Id", &self.sid), ("MCP-Protocol-Version", "2025-06-18")], body)
    }

    fn rpc(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let r = self.post(&json!({"jsonrpc":"2.0","id":self.next,"method":method,"params":params}));
        assert_eq!(r.status, 200, "{method}: {}", r.text());
        r.json()
    }

    fn call_text(&mut self, tool: &str, args: Value) -> String {
        let v = self.rpc("tools/call", json!({"name": tool, "arguments": args}));
        v["result"]["content"][0]["text"].as_str().unwrap_or_else(|| panic!("{tool}: {v}")).to_owned()
    }

    fn close(&self) {
        assert_eq!(http("DELETE", &self.url, &[("Mcp-Session-Id", &self.sid)], None).status, 200);
    }
}

/// The gateway's child processes (every thread's children).
fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return out };
    for t in tasks.flatten() {
        if let Ok(text) = std::fs::read_to_string(t.path().join("children")) {
            out.extend(text.split_whitespace().filter_map(|p| p.parse::<u32>().ok()));
        }
    }
    out
}

#[test]
fn per_session_backends_keep_each_clients_state_apart() {
    let mut memo = demo_backend("memo", &[]);
    memo["per_session"] = json!(true);
    memo["max_instances"] = json!(2);
    let shared = json!({"command": DEMO_BIN, "args": ["--name", "shared"], "prefix": "shared"});
    let gw = Gateway::start(&json!({"mcpServers": {"memo": memo, "shared": shared}}));
    let base = children(gw.pid()).len();
    let (mut a, mut b) = (Client::init(&gw), Client::init(&gw));
    assert_eq!(a.call_text("note", json!({"text": "a1"})), "a1");
    assert_eq!(b.call_text("note", json!({"text": "b1"})), "b1", "b has a server of its own");
    assert_eq!(a.call_text("note", json!({"text": "a2"})), "a1\na2", "a's server kept a's state");
    assert_eq!(children(gw.pid()).len(), base + 2, "one process per session");
    // The shared backend is what it was: one process, state mixed.
    assert_eq!(a.call_text("shared__note", json!({"text": "a"})), "a");
    assert_eq!(b.call_text("shared__note", json!({"text": "b"})), "a\nb");
    // Bounded: a third session is refused clearly, not queued forever.
    let mut c = Client::init(&gw);
    let v = c.rpc("tools/call", json!({"name": "note", "arguments": {"text": "c"}}));
    let msg = v["error"]["message"].as_str().unwrap_or_else(|| panic!("{v}"));
    assert!(msg.contains("max_instances") && msg.contains("'memo'"), "{msg}");
    // A session's end ends its process; the freed place serves another.
    a.close();
    assert!(
        common::wait_until(T, || children(gw.pid()).len() == base + 1),
        "a's process outlived its session: {:?}",
        children(gw.pid())
    );
    assert_eq!(c.call_text("note", json!({"text": "c"})), "c");
}

#[test]
fn a_client_arriving_during_start_up_sees_the_whole_catalog() {
    // beta takes 1.5 s to start; the first client must not get alpha's
    // tools alone.
    let slow = json!({"command": DEMO_BIN, "args": ["--name", "beta", "--startup-delay-ms", "1500"], "prefix": "beta"});
    let gw = Gateway::start_listening(&json!({"mcpServers": {"alpha": demo_backend("alpha", &[]), "beta": slow}}));
    let started = Instant::now();
    let mut c = Client::init(&gw);
    let v = c.rpc("tools/list", json!({}));
    let tools: Vec<&str> =
        v["result"]["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert!(tools.contains(&"echo") && tools.contains(&"beta__echo"), "partial catalog: {tools:?}");
    assert!(started.elapsed() < Duration::from_secs(10), "held past the grace period");
}

#[test]
fn the_start_up_grace_is_bounded_and_configurable() {
    // A backend that never answers initialize: requests wait the grace
    // (1 s here), then are served with what is there.
    let mute = json!({"command": DEMO_BIN, "args": ["--name", "mute", "--mute"], "timeout_s": 30, "prefix": "mute"});
    let cfg =
        json!({"server": {"startup_grace_s": 1}, "mcpServers": {"alpha": demo_backend("alpha", &[]), "mute": mute}});
    let gw = Gateway::start_listening(&cfg);
    let started = Instant::now();
    let mut c = Client::init(&gw);
    assert_eq!(c.call_text("echo", json!({"message": "served"})), "served");
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(5), "waited {waited:?} with a 1 s grace");
    assert!(gw.log().contains("start-up grace period ended"), "{}", gw.log());
}

#[test]
fn a_name_clash_is_reported_even_when_the_lists_do_not_change() {
    // Two copies of one server without prefixes: every capability of the
    // second clashes, so the merged lists stay the same when it connects.
    let first = demo_backend("twin", &[]);
    let second = json!({"command": DEMO_BIN, "args": ["--name", "twin", "--startup-delay-ms", "300"]});
    let gw = Gateway::start(&json!({"mcpServers": {"first": first, "second": second}}));
    let status = gw.manage_get("/status").json();
    let conflicts = status["capabilities"]["conflicts"].as_u64().unwrap_or_else(|| panic!("{status}"));
    let tools = status["capabilities"]["tools"].as_u64().unwrap();
    assert!(conflicts >= tools, "every tool of 'second' clashes: {status}");
    let events = gw.manage_get("/events?limit=1000").json();
    let clashes = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "capabilities.conflict" && e["backend"] == "second")
        .count();
    assert_eq!(clashes as u64, conflicts, "one event per clash: {events}");
    assert!(gw.log().contains("WARN") && gw.log().contains("which keeps it"), "{}", gw.log());
}
