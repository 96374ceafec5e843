//! End-to-end tests of the bundled demo server (`mcp-sentinel-demo`): the
//! built binary over stdio, and over legacy HTTP+SSE and Streamable HTTP with
//! a raw `TcpStream` client. Every wait is bounded and every child is killed
//! by a drop guard, so a broken server fails a test instead of hanging it.

// Helpers outside `#[test]` fns are not covered by `allow-unwrap-in-tests`;
// in a test a panic is the failure report we want.
#![allow(clippy::unwrap_used)]

use mcp_sentinel::codec::sse::{SseDecoder, SseEvent};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(10);
const BIN: &str = env!("CARGO_BIN_EXE_mcp-sentinel-demo");

/// Kills and reaps the child whatever happens in the test.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A stdio session; stdout lines arrive through a channel so reads time out.
struct Demo {
    guard: Guard,
    stdin: ChildStdin,
    lines: Receiver<String>,
}

impl Demo {
    fn start(args: &[&str]) -> Demo {
        let mut child = Command::new(BIN)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn demo");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Demo { guard: Guard(child), stdin, lines }
    }

    fn send(&mut self, v: Value) {
        let mut line = v.to_string();
        line.push('\n');
        self.stdin.write_all(line.as_bytes()).unwrap();
        self.stdin.flush().unwrap();
    }

    fn line(&self) -> String {
        self.lines.recv_timeout(WAIT).expect("a line from the demo")
    }

    fn msg(&self) -> Value {
        serde_json::from_str(&self.line()).expect("a JSON line")
    }

    /// Sends a request and returns (messages seen before the response, response).
    fn call(&mut self, id: Value, method: &str, params: Value) -> (Vec<Value>, Value) {
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        let mut before = Vec::new();
        loop {
            let m = self.msg();
            if m["id"] == id && m.get("method").is_none() {
                return (before, m);
            }
            before.push(m);
        }
    }

    fn init(&mut self) -> Value {
        let p =
            json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}});
        let (_, r) = self.call(json!(0), "initialize", p);
        self.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        r
    }
}

fn tool(name: &str, args: Value) -> Value {
    json!({"name": name, "arguments": args})
}

#[test]
fn stdio_initialize_paginate_and_echo() {
    let mut d = Demo::start(&["--name", "alpha"]);
    let r = d.init();
    assert_eq!(r["result"]["protocolVersion"], "2025-06-18");
    assert_eq!(r["result"]["serverInfo"]["name"], "mcp-sentinel-demo-alpha");
    let (mut names, mut cursor, mut pages) = (Vec::new(), Value::Null, 0);
    loop {
        let params = if cursor.is_null() { json!({}) } else { json!({"cursor": cursor}) };
        let (_, r) = d.call(json!(pages + 1), "tools/list", params);
        pages += 1;
        for t in r["result"]["tools"].as_array().unwrap() {
            names.push(t["name"].as_str().unwrap().to_owned());
        }
        cursor = r["result"]["nextCursor"].clone();
        if cursor.is_null() {
            break;
        }
    }
    assert_eq!(pages, 5, "page size 2 over 9 tools");
    let want = ["echo", "add", "slow", "fail", "crash", "cancellations", "add_tool", "ask_client", "freeze", "note"];
    assert_eq!(names, want);
    let (_, r) = d.call(json!("e"), "tools/call", tool("echo", json!({"message": "hi"})));
    assert_eq!(r["result"]["content"][0], json!({"type": "text", "text": "hi"}));
    let (_, r) = d.call(json!(9), "tools/list", json!({"cursor": "bogus"}));
    assert_eq!(r["error"]["code"], -32602);
    d.stdin.write_all(b"not json\n").unwrap();
    assert_eq!(d.msg()["error"]["code"], -32700);
}

#[test]
fn stdio_slow_reports_progress_then_result() {
    let mut d = Demo::start(&[]);
    d.init();
    let mut p = tool("slow", json!({"steps": 3, "interval_ms": 20}));
    p["_meta"] = json!({"progressToken": "tok"});
    let (before, r) = d.call(json!(5), "tools/call", p);
    let progress: Vec<_> = before
        .iter()
        .map(|m| (m["method"].clone(), m["params"]["progressToken"].clone(), m["params"]["progress"].clone()))
        .collect();
    let n = |i: i64| (json!("notifications/progress"), json!("tok"), json!(i));
    assert_eq!(progress, [n(1), n(2), n(3)]);
    assert_eq!(before[2]["params"]["total"], 3);
    assert_eq!(r["result"]["content"][0]["text"], "done after 3 steps");
}

#[test]
fn stdio_cancelled_slow_never_answers_and_is_listed() {
    let mut d = Demo::start(&[]);
    d.init();
    d.send(json!({"jsonrpc": "2.0", "id": 10, "method": "tools/call", "params": tool("slow", json!({"steps": 100, "interval_ms": 20}))}));
    std::thread::sleep(Duration::from_millis(100));
    d.send(
        json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 10, "reason": "test"}}),
    );
    // Other requests are served while `slow` runs.
    let (before, r) = d.call(json!(11), "tools/call", tool("cancellations", json!({})));
    assert!(before.is_empty(), "{before:?}");
    assert_eq!(r["result"]["structuredContent"]["cancelled"], json!([10]));
    assert_eq!(r["result"]["content"][0]["text"], "[10]");
    // 100 steps of 20 ms would end in 2 s; nothing may arrive for id 10.
    let (_, r) = d.call(json!(12), "ping", json!({}));
    assert_eq!(r["result"], json!({}));
    assert!(d.lines.recv_timeout(Duration::from_millis(2500)).is_err());
}

#[test]
fn stdio_ask_client_round_trip_and_add_tool() {
    let mut d = Demo::start(&[]);
    d.init();
    d.send(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": tool("ask_client", json!({"method": "roots/list"}))}));
    let q = d.msg();
    assert_eq!((q["id"].clone(), q["method"].clone()), (json!("demo-1"), json!("roots/list")));
    let (_, r) = d.call(json!(2), "ping", json!({}));
    assert_eq!(r["result"], json!({}), "not blocked while waiting for the client");
    d.send(json!({"jsonrpc": "2.0", "id": "demo-1", "result": {"roots": []}}));
    assert_eq!(d.msg()["result"]["content"][0]["text"], r#"result: {"roots":[]}"#);
    let (before, r) = d.call(json!(3), "tools/call", tool("add_tool", json!({})));
    assert_eq!(before[0]["method"], "notifications/tools/list_changed");
    assert_eq!(r["result"]["content"][0]["text"], "added extra_1");
}

#[test]
fn stdio_garbage_mute_and_crash() {
    let mut d = Demo::start(&["--garbage"]);
    d.send(json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}));
    assert_eq!(d.line(), "this is not json");
    assert_eq!(d.msg()["id"], 1);

    let mut m = Demo::start(&["--mute"]);
    m.init_nowait();
    assert!(m.lines.recv_timeout(Duration::from_millis(500)).is_err());

    let mut c = Demo::start(&[]);
    c.send(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": tool("crash", json!({}))}));
    let start = Instant::now();
    let status = loop {
        if let Some(s) = c.guard.0.try_wait().unwrap() {
            break s;
        }
        assert!(start.elapsed() < WAIT, "crash tool did not exit");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(3));
    assert!(c.lines.recv_timeout(Duration::from_millis(200)).is_err(), "no answer");
}

impl Demo {
    fn init_nowait(&mut self) {
        self.send(
            json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-06-18"}}),
        );
    }
}

/// Starts an HTTP mode on port 0 and reads the bound address from stderr.
fn start_http(mode: &str) -> (Guard, String) {
    let mut child = Command::new(BIN)
        .args([mode, "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn demo");
    let stderr = child.stderr.take().unwrap();
    let guard = Guard(child);
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(a) = line.strip_prefix("listening on http://") {
                let _ = tx.send(a.to_owned());
            }
        }
    });
    (guard, rx.recv_timeout(WAIT).expect("listening line"))
}

fn connect(addr: &str) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s
}

/// Reads a response head; returns the status code and the lower-cased head.
fn read_head(r: &mut BufReader<TcpStream>) -> (u16, String) {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        assert!(r.read_line(&mut line).unwrap() > 0, "eof in head");
        if line == "\r\n" {
            break;
        }
        head.push_str(&line.to_ascii_lowercase());
    }
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap();
    (status, head)
}

/// Sends one request with `Connection: close` and returns (status, head, body).
fn http(addr: &str, method: &str, path: &str, headers: &str, body: &str) -> (u16, String, String) {
    let mut s = connect(addr);
    let req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\n{headers}Content-Length: {}\r\n\r\n{body}", body.len());
    s.write_all(req.as_bytes()).unwrap();
    let mut r = BufReader::new(s);
    let (status, head) = read_head(&mut r);
    let mut rest = Vec::new();
    r.read_to_end(&mut rest).unwrap();
    (status, head, String::from_utf8(rest).unwrap())
}

/// Reads SSE events from a chunked response body.
struct Events {
    r: BufReader<TcpStream>,
    dec: SseDecoder,
}

impl Events {
    fn next(&mut self) -> SseEvent {
        loop {
            if let Some(ev) = self.dec.next_event().unwrap() {
                return ev;
            }
            let mut size = String::new();
            self.r.read_line(&mut size).unwrap();
            let n = usize::from_str_radix(size.trim(), 16).expect("chunk size");
            assert!(n > 0, "stream ended");
            let mut data = vec![0; n + 2];
            self.r.read_exact(&mut data).unwrap();
            self.dec.push(&data[..n]);
        }
    }
}

#[test]
fn sse_endpoint_post_and_stream() {
    let (_guard, addr) = start_http("--sse");
    let mut s = connect(&addr);
    s.write_all(format!("GET /sse HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n").as_bytes()).unwrap();
    let mut r = BufReader::new(s);
    let (status, head) = read_head(&mut r);
    assert_eq!(status, 200);
    assert!(head.contains("content-type: text/event-stream"), "{head}");
    assert!(head.contains("transfer-encoding: chunked"), "{head}");
    let mut ev = Events { r, dec: SseDecoder::new(1 << 20) };
    let endpoint = ev.next();
    assert_eq!(endpoint.event, "endpoint");
    assert!(endpoint.data.starts_with("/messages/?session_id="), "{}", endpoint.data);

    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2024-11-05"}});
    let (status, _, body) = http(&addr, "POST", &endpoint.data, "", &init.to_string());
    assert_eq!((status, body.as_str()), (202, "Accepted"));
    let m = ev.next();
    assert_eq!(m.event, "message");
    let v: Value = serde_json::from_str(&m.data).unwrap();
    assert_eq!((v["id"].clone(), v["result"]["protocolVersion"].clone()), (json!(1), json!("2024-11-05")));

    let (status, _, _) = http(&addr, "POST", "/messages/?session_id=nope", "", &init.to_string());
    assert_eq!(status, 404);
}

#[test]
fn streamable_http_sessions_json_and_sse_responses() {
    let (_guard, addr) = start_http("--http");
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18"}});
    let (status, head, body) = http(&addr, "POST", "/mcp", "", &init.to_string());
    assert_eq!(status, 200);
    assert!(head.contains("content-type: application/json"), "{head}");
    let sid = head.lines().find_map(|l| l.strip_prefix("mcp-session-id: ")).unwrap().trim().to_owned();
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["id"], 1);
    let hdr = format!("Mcp-Session-Id: {sid}\r\n");

    let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string();
    assert_eq!(http(&addr, "POST", "/mcp", &hdr, &note).0, 202);
    let ping = json!({"jsonrpc": "2.0", "id": 2, "method": "ping"}).to_string();
    assert_eq!(http(&addr, "POST", "/mcp", "", &ping).0, 400);
    assert_eq!(http(&addr, "POST", "/mcp", "Mcp-Session-Id: nope\r\n", &ping).0, 404);
    assert_eq!(http(&addr, "GET", "/mcp", &hdr, "").0, 405);

    let slow = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
        "params": {"name": "slow", "arguments": {"steps": 2, "interval_ms": 10}, "_meta": {"progressToken": 1}}});
    let mut s = connect(&addr);
    let body = slow.to_string();
    s.write_all(
        format!("POST /mcp HTTP/1.1\r\nHost: {addr}\r\n{hdr}Content-Length: {}\r\n\r\n{body}", body.len()).as_bytes(),
    )
    .unwrap();
    let mut r = BufReader::new(s);
    let (status, head) = read_head(&mut r);
    assert_eq!(status, 200);
    assert!(head.contains("content-type: text/event-stream"), "{head}");
    let mut ev = Events { r, dec: SseDecoder::new(1 << 20) };
    let msgs: Vec<Value> = (0..3).map(|_| serde_json::from_str(&ev.next().data).unwrap()).collect();
    assert_eq!(msgs[0]["params"]["progressToken"], 1);
    assert_eq!(msgs[1]["params"]["progress"], 2);
    assert_eq!(msgs[2]["result"]["content"][0]["text"], "done after 2 steps");

    assert_eq!(http(&addr, "DELETE", "/mcp", &hdr, "").0, 200);
    assert_eq!(http(&addr, "POST", "/mcp", &hdr, &ping).0, 404);
}
