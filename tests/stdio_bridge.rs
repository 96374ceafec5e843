//! `mcp-sentinel stdio` end to end (issue 13, part 3): the official Python
//! SDK's stdio client launches the bridge, as Claude Desktop would, in front
//! of the real gateway with the demo backend; it lists and calls tools,
//! answers the gateway's elicitation and sampling requests through the
//! bridge, and goes on through the same bridge process after the gateway
//! restarts on the same port (the bridge re-initializes unseen; the new
//! session's GET stream brings `list_changed`). A 2026-07-28 client goes
//! through without a session, its cancellation closing the POST. A small
//! fake HTTP server shows the bearer token is sent, from an environment
//! variable or a file; a missing token is a one-line error, exit 78.
//!
//! The SDK tests need the peers from `scripts/install-peers.sh`; without
//! them they are skipped with a message, except under CI=true.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use common::{
    capture, demo_backend, py_command, run_bounded, sdk_python, wait_timeout, ChildGuard, Gateway, LogBuffer, TempDir,
    GATEWAY_BIN,
};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(60);

fn config() -> Value {
    json!({ "mcpServers": { "alpha": demo_backend("alpha", &[]) } })
}

/// The last JSON line of `text` whose "phase" is `phase`.
fn phase(text: &str, phase: &str) -> Option<Value> {
    text.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()).rev().find(|v| v["phase"] == phase)
}

/// A Python client of the bridge, its stdout and stderr captured.
struct PyClient {
    guard: ChildGuard,
    out: LogBuffer,
    err: LogBuffer,
}

impl PyClient {
    fn start(python: &std::path::Path, url: &str, extra: &[&str]) -> PyClient {
        let mut cmd = py_command(python, "stdio_bridge_client.py");
        cmd.args(["--bin", GATEWAY_BIN, "--url", url])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start the Python client");
        let (out, err) = (LogBuffer::default(), LogBuffer::default());
        let pid = child.id();
        capture(format!("py:{pid}"), child.stdout.take().expect("stdout"), out.clone());
        capture(format!("py:{pid}:err"), child.stderr.take().expect("stderr"), err.clone());
        PyClient { guard: ChildGuard { child }, out, err }
    }

    /// Waits (bounded) for a line containing `needle` on its stdout.
    fn wait_out(&mut self, needle: &str) -> String {
        let child = &mut self.guard.child;
        let text = self.out.wait_until(WAIT, |s| s.contains(needle), || child.try_wait().ok().flatten().is_some());
        text.unwrap_or_else(|| {
            panic!("no {needle:?} from the client; stdout:\n{}\nstderr:\n{}", self.out.text(), self.err.text())
        })
    }

    fn child(&mut self) -> &mut Child {
        &mut self.guard.child
    }
}

#[test]
fn sdk_stdio_client_lists_calls_and_survives_a_gateway_restart() {
    let Some(python) = sdk_python() else { return };
    let mut gw = Gateway::start(&config());
    let addr = gw.mcp_addr.to_string();
    let url = gw.url("/mcp");
    let mut py = PyClient::start(&python, &url, &["--token-env", "SENTINEL_TOKEN"]);

    let text = py.wait_out("RESTART");
    let before = phase(&text, "before").expect("the before phase");
    let tools = before["tools"].as_array().expect("tools");
    assert!(tools.contains(&json!("echo")) && tools.contains(&json!("ask_client")), "{before}");
    assert_eq!(before["echo"], "through the bridge");
    // The gateway's requests reached the client through the bridge, and
    // its answers went back to the backend.
    assert!(before["elicitation"].as_str().unwrap_or("").contains(r#""action":"accept""#), "{before}");
    assert!(before["sampling"].as_str().unwrap_or("").contains("sampled-through-the-bridge"), "{before}");
    assert_eq!(before["asked"], json!(["elicitation", "sampling"]));
    let cancel = &before["cancel"];
    assert_eq!(
        cancel,
        &json!({"progress_seen": true, "echo_meanwhile": "meanwhile", "cancelled": true, "backend_saw_cancel": true})
    );

    // A new gateway on the same address: the bridge's session is unknown there.
    gw.stop();
    let gw2 = Gateway::start_args(&config(), &["--listen", &addr]);
    assert_eq!(gw2.mcp_addr.to_string(), addr);
    writeln!(py.child().stdin.as_mut().expect("stdin"), "go").expect("tell the client to go on");

    let text = py.wait_out(r#""phase": "after""#);
    let after = phase(&text, "after").expect("the after phase");
    assert_eq!(after["echo"], "through the bridge", "{after}");
    assert_eq!(after["tools"], before["tools"]);
    // The GET stream follows the new session: list_changed reached the client.
    assert_eq!(after["list_changed"], true, "{after}");
    let status = wait_timeout(py.child(), WAIT).expect("the client exits");
    assert!(status.success(), "client failed: {}\n{}", py.out.text(), py.err.text());
    // The bridge (its stderr is the client's) said what it did, once, and
    // the client saw no error.
    let err = py.err.text();
    assert_eq!(err.matches("initialized a new one").count(), 1, "{err}");
    assert!(!err.contains("warn:"), "{err}");
    assert!(!py.out.text().contains(r#""ok": false"#));
}

#[test]
fn sdk_stdio_client_in_2026_07_28_mode() {
    let Some(python) = sdk_python() else { return };
    let gw = Gateway::start(&config());
    let mut py = PyClient::start(&python, &gw.url("/mcp"), &["--mode", "2026-07-28", "--no-restart"]);
    let text = py.wait_out(r#""phase": "before""#);
    let before = phase(&text, "before").expect("the before phase");
    assert_eq!(before["echo"], "through the bridge");
    // input_required answered by the SDK's retry, through the bridge.
    assert_eq!(before["asked"], json!(["elicitation", "sampling"]), "{before}");
    // Cancelling closed the POST (2026-07-28), and the gateway cancelled the backend's call.
    assert_eq!(
        before["cancel"],
        json!({"progress_seen": true, "echo_meanwhile": "meanwhile", "cancelled": true, "backend_saw_cancel": true})
    );
    let status = wait_timeout(py.child(), WAIT).expect("the client exits");
    assert!(status.success(), "{}", py.err.text());
}

// ---- the token, against a fake gateway

/// A fake gateway that keeps each request's head and answers: `initialize`
/// with a result and a new session (`s-1`, `s-2`, …); other requests of
/// session `s-1` with 404, as after a restart; other requests with an empty
/// result; notifications and responses with 202; anything but POST with 405
/// (so there is no GET stream).
fn fake_gateway() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/mcp", listener.local_addr().expect("addr"));
    let heads = Arc::new(Mutex::new(Vec::new()));
    let seen = heads.clone();
    let sessions = Arc::new(Mutex::new(0u32));
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (seen, sessions) = (seen.clone(), sessions.clone());
            thread::spawn(move || serve_one(stream, &seen, &sessions));
        }
    });
    (url, heads)
}

fn serve_one(stream: TcpStream, seen: &Mutex<Vec<String>>, sessions: &Mutex<u32>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut r = BufReader::new(stream.try_clone().expect("clone"));
    let mut head = String::new();
    let (mut len, mut session) = (0usize, None);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
        if let Some(v) = lower.strip_prefix("mcp-session-id:") {
            session = Some(v.trim().to_owned());
        }
        if line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let mut body = vec![0u8; len];
    let _ = r.read_exact(&mut body);
    let post = head.starts_with("POST ");
    let msg = serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null);
    head.push_str(&format!("body: {msg}\r\n"));
    seen.lock().unwrap_or_else(|e| e.into_inner()).push(head);
    let mut w = stream;
    let (id, method) = (msg["id"].clone(), msg["method"].as_str().unwrap_or(""));
    let (status, extra, answer) = if !post {
        ("405 Method Not Allowed", String::new(), String::new())
    } else if method == "initialize" {
        let n = {
            let mut g = sessions.lock().unwrap_or_else(|e| e.into_inner());
            *g += 1;
            *g
        };
        let result = json!({"protocolVersion": "2025-11-25", "capabilities": {}, "serverInfo": {"name": "fake", "version": "0"}});
        (
            "200 OK",
            format!("Mcp-Session-Id: s-{n}\r\n"),
            json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string(),
        )
    } else if id.is_null() || msg.get("method").is_none() {
        ("202 Accepted", String::new(), String::new())
    } else if session.as_deref() == Some("s-1") {
        ("404 Not Found", String::new(), String::new())
    } else {
        ("200 OK", String::new(), json!({"jsonrpc": "2.0", "id": id, "result": {"tools": []}}).to_string())
    };
    let _ = write!(
        w,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{answer}",
        answer.len()
    );
}

/// The bridge on a fake gateway, its stdin held by the test.
struct Bridge {
    guard: ChildGuard,
    stdin: Option<std::process::ChildStdin>,
    out: LogBuffer,
    err: LogBuffer,
}

impl Bridge {
    fn start(url: &str, token_args: &[&str], envs: &[(&str, &str)]) -> Bridge {
        let mut cmd = Command::new(GATEWAY_BIN);
        cmd.args(["stdio", "--url", url, "--log-level", "trace"])
            .args(token_args)
            .envs(envs.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut guard = ChildGuard { child: cmd.spawn().expect("start the bridge") };
        let (out, err) = (LogBuffer::default(), LogBuffer::default());
        capture("bridge".into(), guard.child.stdout.take().expect("stdout"), out.clone());
        capture("bridge:err".into(), guard.child.stderr.take().expect("stderr"), err.clone());
        let stdin = guard.child.stdin.take();
        Bridge { guard, stdin, out, err }
    }

    fn send(&mut self, line: &str) {
        writeln!(self.stdin.as_mut().expect("stdin open"), "{line}").expect("write to the bridge");
    }

    /// Waits (bounded) until stdout holds a line with `needle`.
    fn wait_out(&self, needle: &str) -> String {
        let text = self.out.wait_until(WAIT, |s| s.contains(needle), || false);
        text.unwrap_or_else(|| panic!("no {needle:?} on stdout:\n{}\nstderr:\n{}", self.out.text(), self.err.text()))
    }

    /// Closes stdin and waits (bounded) for a clean exit.
    fn finish(mut self) {
        drop(self.stdin.take());
        let status = wait_timeout(&mut self.guard.child, WAIT).expect("the bridge exits when stdin closes");
        assert!(status.success(), "{status}");
        // Even at trace level, the token never reaches the log.
        assert!(!self.err.text().contains("tok-"), "{}", self.err.text());
        assert!(self.err.text().lines().all(|l| l.starts_with("mcp-sentinel stdio: ")), "{}", self.err.text());
    }
}

const INIT: &str = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{"elicitation":{}},"clientInfo":{"name":"t","version":"1"}}}"#;

/// Runs the bridge on one `initialize` line and returns the answer line
/// and the heads the fake gateway saw.
fn bridge_once(token_args: &[&str], envs: &[(&str, &str)]) -> (String, Vec<String>) {
    let (url, heads) = fake_gateway();
    let mut b = Bridge::start(&url, token_args, envs);
    b.send(INIT);
    let answer = b.wait_out(r#""id":0"#);
    // stdin closes: the bridge ends the session (DELETE) and exits 0.
    b.finish();
    let heads = heads.lock().unwrap_or_else(|e| e.into_inner()).clone();
    (answer, heads)
}

#[test]
fn a_404_for_the_session_replays_initialize_and_retries_once() {
    let (url, heads) = fake_gateway();
    let mut b = Bridge::start(&url, &[], &[]);
    b.send(INIT);
    b.wait_out(r#""id":0"#);
    b.send(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
    b.send(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#);
    let text = b.wait_out(r#""id":1"#);
    // The client saw its two answers, not the replayed initialize's.
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).expect("stdout is JSON only")).collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert_eq!(lines[1], json!({"jsonrpc": "2.0", "id": 1, "result": {"tools": []}}));
    b.finish();
    let heads = heads.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let posts: Vec<String> = heads
        .iter()
        .filter(|h| h.starts_with("POST "))
        .map(|h| {
            let lower = h.to_ascii_lowercase();
            let sid = lower.lines().find_map(|l| l.strip_prefix("mcp-session-id: ")).unwrap_or("-").trim().to_owned();
            let body: Value = h
                .lines()
                .find_map(|l| l.strip_prefix("body: "))
                .and_then(|b| serde_json::from_str(b).ok())
                .unwrap_or_default();
            format!("{} {sid}", body["method"].as_str().unwrap_or("?"))
        })
        .collect();
    assert_eq!(
        posts,
        [
            "initialize -",
            "notifications/initialized s-1",
            "tools/list s-1",
            "initialize -",
            "notifications/initialized s-2",
            "tools/list s-2"
        ],
        "{heads:#?}"
    );
    // The replayed initialize carried the client's own params.
    let replay = heads.iter().filter(|h| h.contains(r#""method":"initialize""#)).nth(1).expect("a replay");
    assert!(
        replay.contains(r#""clientInfo":{"name":"t","version":"1"}"#) && replay.contains("elicitation"),
        "{replay}"
    );
}

#[test]
fn token_from_env_is_sent_and_never_logged() {
    let (answer, heads) = bridge_once(&["--token-env", "BRIDGE_TOKEN"], &[("BRIDGE_TOKEN", "tok-from-env")]);
    assert!(answer.contains(r#""serverInfo":{"name":"fake""#), "{answer}");
    let post = heads.iter().find(|h| h.starts_with("POST ")).expect("a POST");
    assert!(post.to_ascii_lowercase().contains("authorization: bearer tok-from-env"), "{post}");
    // The session was ended with the token too.
    let delete = heads.iter().find(|h| h.starts_with("DELETE ")).expect("a DELETE at the end");
    assert!(delete.contains("s-1") && delete.to_ascii_lowercase().contains("bearer tok-from-env"), "{delete}");
}

#[test]
fn token_from_file_is_sent() {
    let dir = TempDir::new("bridge-token");
    let path = dir.path.join("token");
    std::fs::write(&path, "tok-from-file\n").expect("write token");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    let (_, heads) = bridge_once(&["--token-file", path.to_str().expect("utf-8 path")], &[]);
    let post = heads.iter().find(|h| h.starts_with("POST ")).expect("a POST");
    assert!(post.to_ascii_lowercase().contains("authorization: bearer tok-from-file"), "{post}");
}

#[test]
fn no_token_is_one_line_and_exit_78() {
    let mut cmd = Command::new(GATEWAY_BIN);
    cmd.args(["stdio", "--url", "http://127.0.0.1:9/mcp", "--token-env", "BRIDGE_TOKEN_UNSET"])
        .env_remove("BRIDGE_TOKEN_UNSET");
    let out = run_bounded("bridge", &mut cmd, WAIT);
    assert_eq!(out.status.and_then(|s| s.code()), Some(78), "{}", out.stderr);
    assert_eq!(out.stderr.trim(), "mcp-sentinel: stdio: environment variable BRIDGE_TOKEN_UNSET is not set");
    assert!(out.stdout.trim().is_empty(), "{}", out.stdout);
}

#[test]
fn unreachable_gateway_answers_the_request_with_an_error() {
    // A port nothing listens on: bound, then closed.
    let port = TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let mut b = Bridge::start(&format!("http://127.0.0.1:{port}/mcp"), &[], &[]);
    b.send(r#"{"jsonrpc":"2.0","id":"a","method":"initialize","params":{}}"#);
    b.send("not json");
    let text = b.out.wait_until(WAIT, |s| s.lines().count() >= 2, || false).expect("two answers");
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).expect("stdout is JSON only")).collect();
    assert_eq!(lines[0]["id"], "a");
    assert_eq!(lines[0]["error"]["code"], -32001);
    assert!(lines[0]["error"]["message"].as_str().unwrap_or("").contains("gateway unreachable"), "{text}");
    assert_eq!(lines[1]["error"]["code"], -32700);
    b.finish();
}
