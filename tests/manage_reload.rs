//! The management API's mutations and the runtime state machine, against the
//! real binary and the bundled demo backends (issue #3): the reload diff by
//! backend name, a broken file on reload, the gateway states
//! (`starting ready degraded failed stopping stopped`), reconnect and its
//! errors and scopes, and reloads and reconnects racing MCP clients.

#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

mod common;

use common::{demo_backend, http, post_json, Gateway, Response, SseStream};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(10);
const ACCEPT: (&str, &str) = ("Accept", "application/json, text/event-stream");

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Calls `f` every 50 ms until it returns `Ok`, at most `timeout`; panics
/// with `what` and the last `Err` otherwise.
fn poll<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match f() {
            Ok(v) => return v,
            Err(last) if Instant::now() >= deadline => panic!("{what}: not within {timeout:?}; last seen: {last}"),
            Err(_) => thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// The management API of one gateway, called with one bearer token.
#[derive(Clone)]
struct Manage {
    base: String,
    auth: String,
}

impl Manage {
    /// With the admin token the gateway generated (no tokens configured).
    fn admin(gw: &Gateway) -> Manage {
        let addr = gw.manage_addr().expect("the management API logs its address");
        let file = gw.state_home().join("mcp-sentinel").join(format!("manage-{}.token", addr.port()));
        let token = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        Manage::with_token(gw, token.trim())
    }

    fn with_token(gw: &Gateway, token: &str) -> Manage {
        let addr = gw.manage_addr().expect("the management API logs its address");
        Manage { base: format!("http://{addr}/manage/v1"), auth: format!("Bearer {token}") }
    }

    fn get(&self, path: &str) -> Response {
        http("GET", &format!("{}{path}", self.base), &[("Authorization", &self.auth)], None)
    }

    fn post(&self, path: &str) -> Response {
        post_json(&format!("{}{path}", self.base), &[("Authorization", &self.auth)], &json!({}))
    }

    fn get_ok(&self, path: &str) -> Value {
        let r = self.get(path);
        assert_eq!(r.status, 200, "GET {path}: {}", r.text());
        r.json()
    }

    fn status(&self) -> Value {
        self.get_ok("/status")
    }

    fn backends(&self) -> Vec<Value> {
        self.get_ok("/backends")["backends"].as_array().unwrap().clone()
    }

    fn backend(&self, name: &str) -> Value {
        self.get_ok(&format!("/backends/{name}"))
    }

    fn pid(&self, name: &str) -> u64 {
        let b = self.backend(name);
        b["pid"].as_u64().unwrap_or_else(|| panic!("backend {name} has no pid: {b}"))
    }

    /// Every event in the ring (the tests stay well below its size).
    fn events(&self) -> Vec<Value> {
        self.get_ok("/events?after=0&limit=1000")["events"].as_array().unwrap().clone()
    }

    /// The kinds of all events, once every one of `want` is among them
    /// (polled: a state change is visible a moment before its event).
    fn wait_events(&self, want: &[&str]) -> Vec<String> {
        poll(&format!("events {want:?}"), T, || {
            let kinds: Vec<String> = self.events().iter().map(|e| e["kind"].as_str().unwrap().to_owned()).collect();
            if want.iter().all(|w| kinds.iter().any(|k| k == w)) {
                Ok(kinds)
            } else {
                Err(format!("{kinds:?}"))
            }
        })
    }

    /// Polls `/status` until `server.state` is `state`.
    fn wait_state(&self, state: &str, timeout: Duration) -> Value {
        poll(&format!("gateway state {state}"), timeout, || {
            let s = self.status();
            if s["server"]["state"] == state {
                Ok(s)
            } else {
                Err(s.to_string())
            }
        })
    }

    /// Polls `/backends/{name}` until its state is `state`. A 404 counts as
    /// "not yet": the API answers a moment before the backends are created.
    fn wait_backend(&self, name: &str, state: &str, timeout: Duration) -> Value {
        poll(&format!("backend {name} {state}"), timeout, || {
            let r = self.get(&format!("/backends/{name}"));
            match r.status {
                200 if r.json()["state"] == state => Ok(r.json()),
                200 | 404 => Err(r.text()),
                _ => panic!("GET /backends/{name}: {}", r.text()),
            }
        })
    }
}

/// Asserts the uniform error body with `code`; returns the message.
fn assert_error(r: &Response, status: u16, code: &str) -> String {
    assert_eq!(r.status, status, "{}", r.text());
    let v = r.json();
    assert_eq!(v["error"]["code"], code, "{v}");
    let msg = v["error"]["message"].as_str().unwrap_or_default().to_owned();
    assert!(!msg.is_empty(), "an error names what went wrong: {v}");
    msg
}

/// Asserts that the first `a` comes before the first `b` in `kinds`.
fn assert_before(kinds: &[String], a: &str, b: &str) {
    let pos = |k: &str| kinds.iter().position(|x| x == k).unwrap_or_else(|| panic!("no {k} in {kinds:?}"));
    assert!(pos(a) < pos(b), "{a} before {b}: {kinds:?}");
}

fn names(list: &[Value]) -> Vec<&str> {
    list.iter().map(|b| b["name"].as_str().unwrap()).collect()
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array().unwrap_or_else(|| panic!("not an array: {v}")).iter().map(|s| s.as_str().unwrap()).collect()
}

/// A demo backend whose tools are exposed as `<prefix>__<tool>`.
fn demo(name: &str, extra_args: &[&str]) -> Value {
    let mut b = demo_backend(name, extra_args);
    b["prefix"] = json!(name);
    b
}

/// Replaces the config file in one step (write a sibling, rename), so a
/// concurrent reload reads either the old file or the new one.
fn write_config(path: &Path, config: &Value, tag: &str) {
    let tmp = path.with_extension(format!("tmp-{tag}"));
    std::fs::write(&tmp, serde_json::to_vec_pretty(config).unwrap()).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// True while `/proc/PID` exists (a zombie counts: nobody reaped it yet).
fn process_exists(pid: u64) -> bool {
    PathBuf::from(format!("/proc/{pid}")).exists()
}

fn wait_process_gone(pid: u64, what: &str) {
    poll(&format!("{what} (pid {pid}) gone"), T, || if process_exists(pid) { Err(pid.to_string()) } else { Ok(()) });
}

/// The PID of the gateway's child running the demo backend `name` (found
/// through /proc: while a backend connects, the API shows no pid yet).
fn demo_child(gateway_pid: u32, name: &str) -> Option<u64> {
    let needle = format!("\0--name\0{name}\0");
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u64 = e.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
        let ppid: u32 = stat.rsplit_once(") ")?.1.split_whitespace().nth(1)?.parse().ok()?;
        let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
        (ppid == gateway_pid && String::from_utf8_lossy(&cmdline).contains(&needle)).then_some(pid)
    })
}

/// A Streamable HTTP MCP client session.
struct Mcp {
    url: String,
    sid: String,
    next: i64,
}

impl Mcp {
    fn init(gw: &Gateway) -> Mcp {
        let url = gw.url("/mcp");
        let r = post_json(
            &url,
            &[ACCEPT],
            &json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
                "protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"reload-test","version":"1"}}}),
        );
        assert_eq!(r.status, 200, "initialize: {}", r.text());
        let sid = r.header("Mcp-Session-Id").expect("Mcp-Session-Id").to_owned();
        let c = Mcp { url, sid, next: 0 };
        assert_eq!(c.send(&json!({"jsonrpc":"2.0","method":"notifications/initialized"})).status, 202);
        c
    }

    fn headers(&self) -> Vec<(&str, &str)> {
        vec![ACCEPT, ("Mcp-Session-Id", &self.sid), ("MCP-Protocol-Version", "2025-06-18")]
    }

    fn send(&self, body: &Value) -> Response {
        post_json(&self.url, &self.headers(), body)
    }

    /// `tools/call`; returns the whole JSON-RPC answer (result or error).
    fn call(&mut self, tool: &str, args: Value) -> Value {
        self.next += 1;
        let r = self.send(&json!({"jsonrpc":"2.0","id":self.next,"method":"tools/call",
            "params":{"name":tool,"arguments":args}}));
        assert_eq!(r.status, 200, "tools/call {tool}: {}", r.text());
        let v = r.json();
        assert_eq!(v["id"], self.next, "{v}");
        v
    }

    fn echo(&mut self, tool: &str, message: &str) -> String {
        let v = self.call(tool, json!({"message": message}));
        assert!(v.get("error").is_none(), "{tool} failed: {v}");
        v["result"]["content"][0]["text"].as_str().unwrap().to_owned()
    }

    /// Calls `tool` (the demo's `slow`) with a progress token on a streamed
    /// answer; sends on `started` after the first progress notification, so
    /// the caller knows the call is in flight at the backend. Returns the
    /// progress values and the final answer.
    fn slow_call(&mut self, tool: &str, steps: u64, started: mpsc::Sender<()>) -> (Vec<u64>, Value) {
        self.next += 1;
        let id = self.next;
        let body = json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{
            "name":tool,"arguments":{"steps":steps,"interval_ms":100},"_meta":{"progressToken":"p"}}});
        let mut h = self.headers();
        h.push(("Content-Type", "application/json"));
        let mut s = SseStream::request("POST", &self.url, &h, Some(&serde_json::to_vec(&body).unwrap()))
            .unwrap_or_else(|r| panic!("a call with progress is answered with a stream: {} {}", r.status, r.text()));
        let mut progress = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let data = s.next_named("message", left).expect("the slow call ends within 30 s");
            let v: Value = serde_json::from_str(&data).unwrap();
            if v["method"] == "notifications/progress" {
                if progress.is_empty() {
                    let _ = started.send(());
                }
                progress.push(v["params"]["progress"].as_u64().unwrap());
            } else if v["id"] == id {
                return (progress, v);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// 1. Reload diff
// ---------------------------------------------------------------------------

#[test]
fn reload_applies_the_difference_by_name() {
    let gw = Gateway::start(&json!({"mcpServers": {
        "keep": demo("keep", &[]),
        "drop": demo("drop", &[]),
        "change": demo("change", &[]),
    }}));
    let m = Manage::admin(&gw);
    assert_eq!(m.wait_state("ready", T)["server"]["revision"], 1);
    let keep_pid = m.pid("keep");
    let drop_pid = m.pid("drop");
    let change_pid = m.pid("change");
    let keep_since = m.backend("keep")["connected_since"].clone();

    // An MCP client's long call to the backend that stays, in flight
    // across the reload.
    let mut client = Mcp::init(&gw);
    let (started_tx, started_rx) = mpsc::channel();
    let slow = thread::spawn(move || client.slow_call("keep__slow", 40, started_tx));
    started_rx.recv_timeout(T).expect("the slow call reports progress");

    // One rewrite: add one, remove one, change one, keep one.
    write_config(
        &gw.config_path,
        &json!({"mcpServers": {
            "added": demo("added", &[]),
            "keep": demo("keep", &[]),
            "change": demo("change", &["--page-size", "5"]),
        }}),
        "t",
    );
    let r = m.post("/reload");
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["result"], "ok", "{v}");
    assert_eq!(v["revision"], 2, "{v}");
    assert_eq!(strings(&v["added"]), ["added"], "{v}");
    assert_eq!(strings(&v["removed"]), ["drop"], "{v}");
    assert_eq!(strings(&v["restarted"]), ["change"], "{v}");
    assert_eq!(strings(&v["unchanged"]), ["keep"], "{v}");
    assert!(!slow.is_finished(), "the reload does not wait for calls to unchanged backends");

    // The call to the unchanged backend finishes normally.
    let (progress, answer) = slow.join().unwrap();
    assert_eq!(answer["result"]["content"][0]["text"], "done after 40 steps", "{answer}");
    assert_eq!(progress, (1..=40).collect::<Vec<_>>());

    // Same process for the unchanged one, new for the changed one, none
    // for the removed one.
    let keep = m.backend("keep");
    assert_eq!((keep["state"].as_str(), keep["pid"].as_u64()), (Some("connected"), Some(keep_pid)), "{keep}");
    assert_eq!(keep["connected_since"], keep_since, "the unchanged backend was not reconnected");
    let change = m.backend("change");
    assert_eq!(change["state"], "connected", "{change}");
    assert_ne!(change["pid"].as_u64().unwrap(), change_pid, "{change}");
    assert!(change["endpoint"].as_str().unwrap().ends_with("--page-size 5"), "{change}");
    wait_process_gone(change_pid, "the changed backend's old process");
    wait_process_gone(drop_pid, "the removed backend's process");
    assert_error(&m.get("/backends/drop"), 404, "not_found");
    let added = m.backend("added");
    assert_eq!(added["state"], "connected", "{added}");
    assert!(process_exists(added["pid"].as_u64().unwrap()), "{added}");

    // Exactly the new set, in config order; the gateway is at revision 2.
    assert_eq!(names(&m.backends()), ["added", "keep", "change"]);
    let s = m.status();
    assert_eq!(s["server"]["revision"], 2, "{s}");
    assert_eq!(s["server"]["state"], "ready", "{s}");
    assert_eq!(s["backends"]["total"], 3, "{s}");
    assert_eq!(s["backends"]["connected"], 3, "{s}");
    m.wait_events(&["config.reloaded"]);

    // The data plane serves the new set: the added tools work, the removed ones are gone.
    let mut c = Mcp::init(&gw);
    assert_eq!(c.echo("added__echo", "hi"), "hi");
    assert_eq!(c.echo("change__echo", "hi"), "hi");
    let gone = c.call("drop__echo", json!({"message": "hi"}));
    assert_eq!(gone["error"]["code"], -32602, "{gone}");
}

// ---------------------------------------------------------------------------
// 2. A broken file on reload
// ---------------------------------------------------------------------------

#[test]
fn broken_config_on_reload_changes_nothing() {
    let config = json!({"mcpServers": {"a": demo("a", &[]), "b": demo("b", &[])}});
    let gw = Gateway::start(&config);
    let m = Manage::admin(&gw);
    m.wait_state("ready", T);
    let before: Vec<(Value, Value)> = m.backends().iter().map(|b| (b["name"].clone(), b["pid"].clone())).collect();

    for (i, broken) in ["{\"mcpServers\": {\"a\": ", "[1, 2, 3]"].into_iter().enumerate() {
        std::fs::write(&gw.config_path, broken).unwrap();
        let msg = assert_error(&m.post("/reload"), 400, "bad_request");
        assert!(msg.contains("config.json"), "the message names the file: {msg}");
        let s = m.status();
        assert_eq!(s["server"]["revision"], 1, "{s}");
        assert_eq!(s["server"]["state"], "ready", "{s}");
        let after: Vec<(Value, Value)> = m.backends().iter().map(|b| (b["name"].clone(), b["pid"].clone())).collect();
        assert_eq!(after, before, "a failed reload leaves the backends alone");
        let failed: Vec<Value> = m.events().into_iter().filter(|e| e["kind"] == "config.reload_failed").collect();
        assert_eq!(failed.len(), i + 1, "{failed:?}");
        assert_eq!(failed[i]["level"], "error", "{failed:?}");
    }
    // The clients never noticed.
    let mut c = Mcp::init(&gw);
    assert_eq!(c.echo("a__echo", "still here"), "still here");

    // Fixed file: the next reload applies (nothing changed but the revision).
    write_config(&gw.config_path, &config, "fixed");
    let r = m.post("/reload");
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["revision"], 2, "{v}");
    assert_eq!(strings(&v["unchanged"]), ["a", "b"], "{v}");
    assert!(strings(&v["added"]).is_empty() && strings(&v["removed"]).is_empty(), "{v}");
    assert!(strings(&v["restarted"]).is_empty(), "{v}");
}

// ---------------------------------------------------------------------------
// 3. Gateway states
// ---------------------------------------------------------------------------

#[test]
fn all_enabled_backends_connected_is_ready_and_disabled_is_shown() {
    let mut off = demo("off", &[]);
    off["enabled"] = json!(false);
    let gw = Gateway::start(&json!({"mcpServers": {"a": demo("a", &[]), "off": off, "b": demo("b", &[])}}));
    let m = Manage::admin(&gw);
    let s = m.wait_state("ready", T);
    assert_eq!(s["backends"], json!({"total": 3, "connected": 2, "connecting": 0, "failed": 0, "disabled": 1}));
    let off = m.backend("off");
    assert_eq!(off["state"], "disabled", "{off}");
    assert!(off["pid"].is_null(), "{off}");
    let kinds = m.wait_events(&["server.starting", "server.ready"]);
    assert_before(&kinds, "server.starting", "server.ready");
    assert!(!kinds.iter().any(|k| k == "server.degraded" || k == "server.failed"), "{kinds:?}");
    // Shutdown is off unless the config allows it.
    assert_error(&m.post("/shutdown"), 404, "not_found");
    assert_eq!(m.status()["server"]["state"], "ready");
}

#[test]
fn one_failing_backend_is_degraded() {
    let gw = Gateway::start(&json!({"mcpServers": {
        "good": demo("good", &[]),
        "missing": {"command": "/nonexistent/mcp-backend-for-tests"},
    }}));
    let m = Manage::admin(&gw);
    let s = m.wait_state("degraded", T);
    assert_eq!(s["backends"]["connected"], 1, "{s}");
    assert_eq!(s["backends"]["total"], 2, "{s}");
    let b = m.backend("missing");
    // It keeps retrying (with backoff), so it may be caught connecting.
    assert!(matches!(b["state"].as_str(), Some("failed" | "connecting")), "{b}");
    let failed: Vec<Value> = m.events().into_iter().filter(|e| e["kind"] == "backend.failed").collect();
    assert!(!failed.is_empty() && failed[0]["backend"] == "missing", "{failed:?}");
    let kinds = m.wait_events(&["server.starting", "server.degraded"]);
    assert_before(&kinds, "server.starting", "server.degraded");
    // The good backend serves calls.
    assert_eq!(Mcp::init(&gw).echo("good__echo", "ok"), "ok");
}

#[test]
fn all_backends_failing_is_failed() {
    let mut mute = demo("mute", &["--mute"]);
    mute["timeout_s"] = json!(1);
    let gw = Gateway::start(&json!({"mcpServers": {
        "missing": {"command": "/nonexistent/mcp-backend-for-tests"},
        "mute": mute,
    }}));
    let m = Manage::admin(&gw);
    let s = m.wait_state("failed", T);
    assert_eq!(s["backends"]["connected"], 0, "{s}");
    let mute = m.wait_backend("mute", "failed", T);
    assert!(mute["last_error"].as_str().is_some_and(|e| !e.is_empty()), "{mute}");
    let kinds = m.wait_events(&["server.starting", "server.failed"]);
    assert_before(&kinds, "server.starting", "server.failed");
}

#[test]
fn a_backend_that_never_answers_keeps_the_gateway_starting_until_its_timeout() {
    let mut mute = demo("mute", &["--mute"]);
    mute["timeout_s"] = json!(8);
    let gw = Gateway::start_listening(&json!({"mcpServers": {"good": demo("good", &[]), "mute": mute}}));
    let m = Manage::admin(&gw);
    // The good one connects; the mute one still waits for its initialize answer.
    let s = poll("good connected while mute connects", T, || {
        let s = m.status();
        if s["backends"]["connected"] == 1 {
            Ok(s)
        } else {
            Err(s.to_string())
        }
    });
    assert_eq!(s["server"]["state"], "starting", "{s}");
    assert_eq!(s["backends"]["connecting"], 1, "{s}");
    let mute = m.backend("mute");
    assert_eq!(mute["state"], "connecting", "{mute}");
    assert!(mute["pid"].is_null(), "{mute}");
    // At its timeout it fails and the first discovery is over.
    let s = m.wait_state("degraded", Duration::from_secs(20));
    assert_eq!(s["backends"]["failed"], 1, "{s}");
    let kinds = m.wait_events(&["server.starting", "server.degraded"]);
    assert_before(&kinds, "server.starting", "server.degraded");
    assert!(!kinds.iter().any(|k| k == "server.ready"), "{kinds:?}");
}

#[test]
fn a_backend_stuck_in_its_handshake_is_stopped_at_once() {
    let stuck = |name: &str| {
        let mut b = demo(name, &["--mute"]);
        b["timeout_s"] = json!(60);
        b
    };
    let mut gw = Gateway::start_listening(&json!({
        "mcpServers": {"good": demo("good", &[]), "mute": stuck("mute"), "stuck": stuck("stuck")},
        "manage": {"allow_shutdown": true},
    }));
    let m = Manage::admin(&gw);
    m.wait_backend("mute", "connecting", T);
    m.wait_backend("stuck", "connecting", T);
    let mute_pid = poll("mute's process", T, || demo_child(gw.pid(), "mute").ok_or_else(String::new));
    let stuck_pid = poll("stuck's process", T, || demo_child(gw.pid(), "stuck").ok_or_else(String::new));

    // Removed while waiting for its initialize answer: gone now, not at
    // its 60 s timeout, and the reload does not wait for it.
    write_config(
        &gw.config_path,
        &json!({"mcpServers": {"good": demo("good", &[]), "stuck": stuck("stuck")}, "manage": {"allow_shutdown": true}}),
        "t",
    );
    let t0 = Instant::now();
    let r = m.post("/reload");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(t0.elapsed() < Duration::from_secs(3), "reload took {:?}", t0.elapsed());
    assert_eq!(strings(&r.json()["removed"]), ["mute"]);
    wait_process_gone(mute_pid, "the removed backend's process");
    assert_eq!(names(&m.backends()), ["good", "stuck"]);
    assert_eq!(m.backend("stuck")["state"], "connecting");

    // Shutdown does not wait for the one still connecting either.
    let t0 = Instant::now();
    assert_eq!(m.post("/shutdown").status, 202);
    let status = gw.wait_exit(T).expect("the gateway exits");
    assert_eq!(status.code(), Some(0), "{status}");
    assert!(t0.elapsed() < Duration::from_secs(4), "shutdown took {:?}", t0.elapsed());
    wait_process_gone(stuck_pid, "the connecting backend's process after shutdown");
}

#[test]
fn shutdown_through_the_api_stops_everything() {
    let mut gw = Gateway::start(&json!({
        "mcpServers": {"a": demo("a", &[]), "b": demo("b", &[])},
        "manage": {"allow_shutdown": true},
    }));
    let m = Manage::admin(&gw);
    m.wait_state("ready", T);
    let pids = [m.pid("a"), m.pid("b")];
    let r = m.post("/shutdown");
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.json(), json!({"result": "shutting_down"}));
    let status = gw.wait_exit(Duration::from_secs(15)).expect("the gateway exits within 15 s");
    assert_eq!(status.code(), Some(0), "{status}");
    // The capture threads may still be reading its last lines.
    assert!(gw.wait_for_log("gateway state: stopped", T), "no stopped in:\n{}", gw.log());
    let log = gw.log();
    let stopping = log.find("gateway state: stopping").unwrap_or_else(|| panic!("no stopping in:\n{log}"));
    let stopped = log.find("gateway state: stopped").unwrap_or_else(|| panic!("no stopped in:\n{log}"));
    assert!(stopping < stopped, "{log}");
    for pid in pids {
        wait_process_gone(pid, "a backend child after shutdown");
    }
}

// ---------------------------------------------------------------------------
// 5. Reconnect
// ---------------------------------------------------------------------------

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn reconnect_restarts_one_backend_and_checks_names_state_and_scope() {
    const RO: &str = "read-only-token-for-the-reload-tests";
    const OPS: &str = "ops-token-for-the-reload-tests";
    let ro_digest = hex(&mcp_sentinel::manage::auth::sha256(RO.as_bytes()));
    let mut off = demo("off", &[]);
    off["enabled"] = json!(false);
    let config = json!({
        "mcpServers": {"a": demo("a", &[]), "b": demo("b", &[]), "off": off},
        "manage": {"tokens": [
            {"name": "ro", "scopes": ["read"], "sha256": ro_digest},
            {"name": "ops", "scopes": ["read", "admin"], "token_env": "OPS_TOKEN"},
        ]},
    });
    let gw = Gateway::start_env(&config, &[], &[("OPS_TOKEN", OPS)]);
    let ops = Manage::with_token(&gw, OPS);
    let ro = Manage::with_token(&gw, RO);
    ops.wait_state("ready", T);
    let a = ops.backend("a");
    let (a_pid, a_restarts) = (a["pid"].as_u64().unwrap(), a["restarts"].as_u64().unwrap());
    let b_pid = ops.pid("b");

    let r = ops.post("/backends/a/reconnect");
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["result"], "ok", "{v}");
    let view = &v["backend"];
    assert_eq!(view["name"], "a", "{v}");
    assert_eq!(view["state"], "connected", "{v}");
    let new_pid = view["pid"].as_u64().unwrap();
    assert_ne!(new_pid, a_pid, "{v}");
    assert_eq!(view["restarts"].as_u64(), Some(a_restarts + 1), "{v}");
    wait_process_gone(a_pid, "a's old process");
    assert_eq!(ops.pid("a"), new_pid);
    assert_eq!(ops.pid("b"), b_pid, "the other backend is untouched");
    assert_eq!(Mcp::init(&gw).echo("a__echo", "back"), "back");

    assert_error(&ops.post("/backends/nope/reconnect"), 404, "not_found");
    assert_error(&ops.post("/backends/off/reconnect"), 409, "conflict");
    assert_eq!(ops.backend("off")["state"], "disabled");

    // A read-only token reads but may not act.
    assert_eq!(ro.backend("a")["pid"].as_u64(), Some(new_pid));
    assert_error(&ro.post("/backends/a/reconnect"), 403, "forbidden");
    assert_error(&ro.post("/reload"), 403, "forbidden");
    assert_eq!(ro.pid("a"), new_pid, "a refused reconnect does nothing");
    assert_eq!(ro.status()["server"]["revision"], 1);
    let r = Manage::with_token(&gw, "not-a-token").post("/backends/a/reconnect");
    assert_error(&r, 401, "unauthorized");
    assert!(r.header("WWW-Authenticate").is_some_and(|v| v.starts_with("Bearer")), "{r:?}");

    let actions = ops.events().into_iter().filter(|e| e["kind"] == "manage.admin_action").count();
    assert!(actions >= 3, "each admin call is an event");
}

// ---------------------------------------------------------------------------
// 4. Races
// ---------------------------------------------------------------------------

/// Two versions of one file: the second changes `c` and adds `d`.
fn race_config(variant: usize) -> Value {
    let mut servers = serde_json::Map::new();
    servers.insert("a".into(), demo("a", &[]));
    servers.insert("b".into(), demo("b", &[]));
    let page = if variant == 0 { "2" } else { "3" };
    servers.insert("c".into(), demo("c", &["--page-size", page]));
    if variant == 1 {
        servers.insert("d".into(), demo("d", &[]));
    }
    json!({ "mcpServers": servers })
}

#[test]
fn concurrent_reloads_and_reconnects_with_clients_calling() {
    const THREADS: usize = 4;
    const OPS: usize = 5;
    const CALL_BOUND: Duration = Duration::from_secs(10);
    let gw = Gateway::start(&race_config(0));
    let m = Manage::admin(&gw);
    m.wait_state("ready", T);
    let a_pid = m.pid("a");

    let stop = Arc::new(AtomicBool::new(false));
    let gw_ref = &gw;
    let (revisions, calls) = thread::scope(|scope| {
        // Clients: one calls only `a` (never reloaded or reconnected), two
        // call the backends that are.
        let clients: Vec<_> = (0..3)
            .map(|i| {
                let stop = stop.clone();
                scope.spawn(move || {
                    let mut c = Mcp::init(gw_ref);
                    let (mut ok, mut errors) = (0usize, 0usize);
                    let tools = if i == 0 { vec!["a__echo"] } else { vec!["b__echo", "c__echo", "d__echo"] };
                    let mut n = 0;
                    while !stop.load(Ordering::Acquire) {
                        let tool = tools[n % tools.len()];
                        n += 1;
                        let t0 = Instant::now();
                        let v = c.call(tool, json!({"message": format!("m{n}")}));
                        assert!(t0.elapsed() < CALL_BOUND, "{tool} took {:?}", t0.elapsed());
                        if let Some(e) = v.get("error") {
                            assert!(e["code"].is_i64() && e["message"].as_str().is_some_and(|s| !s.is_empty()), "{v}");
                            assert_ne!(i, 0, "calls to the untouched backend always succeed: {v}");
                            errors += 1;
                        } else {
                            assert_eq!(v["result"]["content"][0]["text"], format!("m{n}"), "{v}");
                            ok += 1;
                        }
                    }
                    (ok, errors)
                })
            })
            .collect();

        // Operators: each alternates reloads (after rewriting the file to
        // one of two versions) and reconnects of b, c or d.
        let revisions = Arc::new(Mutex::new(Vec::new()));
        let ops: Vec<_> = (0..THREADS)
            .map(|t| {
                let m = m.clone();
                let revisions = revisions.clone();
                let path = gw_ref.config_path.clone();
                scope.spawn(move || {
                    for i in 0..OPS {
                        let t0 = Instant::now();
                        if (t + i) % 2 == 0 {
                            write_config(&path, &race_config((t + i) % 4 / 2), &t.to_string());
                            let r = m.post("/reload");
                            assert_eq!(r.status, 200, "reload: {}", r.text());
                            revisions.lock().unwrap().push(r.json()["revision"].as_u64().unwrap());
                        } else {
                            let name = ["b", "c", "d"][(t + i) % 3];
                            let r = m.post(&format!("/backends/{name}/reconnect"));
                            if r.status == 404 {
                                assert_eq!(name, "d", "only d comes and goes: {}", r.text());
                            } else {
                                assert_eq!(r.status, 200, "reconnect {name}: {}", r.text());
                                assert_eq!(r.json()["backend"]["state"], "connected", "{}", r.text());
                            }
                        }
                        assert!(t0.elapsed() < Duration::from_secs(10), "an admin call took {:?}", t0.elapsed());
                    }
                })
            })
            .collect();
        // Stop the clients even when an operator failed, then report it.
        let outcomes: Vec<_> = ops.into_iter().map(|o| o.join()).collect();
        stop.store(true, Ordering::Release);
        let calls: Vec<(usize, usize)> = clients.into_iter().map(|c| c.join().unwrap()).collect();
        for o in outcomes {
            if let Err(panic) = o {
                std::panic::resume_unwind(panic);
            }
        }
        let revisions = revisions.lock().unwrap().clone();
        (revisions, calls)
    });

    // Reloads were serialized: each got its own revision, and the gateway
    // counted every one of them.
    let mut sorted = revisions.clone();
    sorted.sort_unstable();
    let n = revisions.len() as u64;
    assert_eq!(sorted, (2..=1 + n).collect::<Vec<_>>(), "{revisions:?}");
    let s = m.status();
    assert_eq!(s["server"]["revision"].as_u64(), Some(1 + n), "{s}");
    assert!(calls[0].0 > 0, "{calls:?}");

    // The running set is the file's, all connected; `a` never restarted.
    let file: Value = serde_json::from_slice(&std::fs::read(&gw.config_path).unwrap()).unwrap();
    let want: Vec<&str> = file["mcpServers"].as_object().unwrap().keys().map(String::as_str).collect();
    let list = m.wait_state("ready", T);
    assert_eq!(list["backends"]["connected"].as_u64(), Some(want.len() as u64), "{list}");
    let backends = m.backends();
    assert_eq!(names(&backends), want);
    for b in &backends {
        assert_eq!(b["state"], "connected", "{b}");
        let args = file["mcpServers"][b["name"].as_str().unwrap()]["args"].as_array().unwrap();
        let tail = args.iter().map(|a| a.as_str().unwrap()).collect::<Vec<_>>().join(" ");
        assert!(b["endpoint"].as_str().unwrap().ends_with(&tail), "{b} vs {tail}");
    }
    assert_eq!(m.pid("a"), a_pid);

    // And it still serves.
    let mut c = Mcp::init(&gw);
    for name in want {
        assert_eq!(c.echo(&format!("{name}__echo"), "after"), "after");
    }
}
