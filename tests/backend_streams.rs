//! A remote backend's streams end with their connection: after a
//! reconnect, the reader threads of the old connection are gone at once,
//! not when a quiet backend next sends a byte. Against the real binary and
//! a fake remote backend written with std sockets, which keeps every
//! stream open and silent:
//!
//! - a legacy SSE event stream (`backend:<n>:stream`);
//! - a Streamable HTTP GET stream (`backend:<n>:get`);
//! - a Streamable HTTP POST answered with an SSE stream that never ends,
//!   and one whose stream ended without the answer, where the gateway
//!   waits out the server's `retry:` delay before resuming (the
//!   `backend:<n>:post<i>` threads).
//!
//! Threads are counted by name in `/proc/<pid>/task/*/comm` (15 bytes of
//! the name). `MCP_SENTINEL_TEST_GATEWAY=/work/baseline/mcp-sentinel` runs
//! it against an older build to see it fail.

#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

mod common;

use common::{post_json, read_request, wait_until, Gateway};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

const ACCEPT: (&str, &str) = ("Accept", "application/json, text/event-stream");

/// Which of the fake's quiet streams the gateway closed.
#[derive(Default)]
struct Closed {
    sse: AtomicUsize,
    get: AtomicUsize,
    post: AtomicUsize,
}

/// A remote backend speaking legacy SSE on `/sse` + `/messages/` and
/// Streamable HTTP on `/mcp`, with two tools: `hang` (a POST answered with
/// an SSE stream that stays open and silent) and `drop` (an SSE answer that
/// ends without the response, asking for a 5 s `retry:`). Every response
/// closes its connection, so nothing is pooled.
struct Fake {
    port: u16,
    closed: Arc<Closed>,
    /// The name of each `tools/call` once its answer stream is in place.
    called: mpsc::Receiver<String>,
}

impl Fake {
    fn start() -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let closed = Arc::new(Closed::default());
        let (called_tx, called) = mpsc::channel();
        let sessions: Arc<Mutex<HashMap<String, mpsc::Sender<String>>>> = Arc::default();
        let (gone, next) = (closed.clone(), Arc::new(AtomicUsize::new(0)));
        std::thread::spawn(move || {
            for s in listener.incoming().flatten() {
                let (gone, sessions, called, next) = (gone.clone(), sessions.clone(), called_tx.clone(), next.clone());
                std::thread::spawn(move || serve(s, &gone, &sessions, &called, &next));
            }
        });
        Fake { port, closed, called }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

const SSE_HEAD: &str =
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n";

/// Blocks until the peer closes `s`, then counts it.
fn until_closed(mut s: TcpStream, count: &AtomicUsize) {
    let mut b = [0u8; 64];
    while let Ok(1..) = s.read(&mut b) {}
    count.fetch_add(1, Ordering::SeqCst);
}

fn respond_json(s: &mut TcpStream, body: &Value) {
    let body = body.to_string();
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nMcp-Session-Id: fake-session\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = s.write_all(format!("{head}{body}").as_bytes());
}

fn answer(msg: &Value, version: &str) -> Option<Value> {
    let id = msg.get("id").cloned().filter(|id| !id.is_null())?;
    let result = match msg["method"].as_str().unwrap_or("") {
        "initialize" => json!({"protocolVersion": version, "capabilities": {"tools": {}},
                               "serverInfo": {"name": "fake", "version": "1"}}),
        "tools/list" => json!({"tools": [{"name": "hang", "inputSchema": {"type": "object"}},
                                         {"name": "drop", "inputSchema": {"type": "object"}}]}),
        _ => json!({}),
    };
    Some(json!({"jsonrpc": "2.0", "id": id, "result": result}))
}

fn serve(
    mut s: TcpStream,
    closed: &Closed,
    sessions: &Mutex<HashMap<String, mpsc::Sender<String>>>,
    called: &mpsc::Sender<String>,
    next: &AtomicUsize,
) {
    let Some((head, body)) = read_request(&mut s) else { return };
    let line = head.lines().next().unwrap_or("").to_owned();
    let msg: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if line.starts_with("GET /sse ") {
        let sid = next.fetch_add(1, Ordering::SeqCst).to_string();
        let (tx, rx) = mpsc::channel::<String>();
        sessions.lock().unwrap().insert(sid.clone(), tx);
        let start = format!("{SSE_HEAD}event: endpoint\ndata: /messages/?session_id={sid}\n\n");
        if s.write_all(start.as_bytes()).is_err() {
            return;
        }
        let mut out = s.try_clone().unwrap();
        std::thread::spawn(move || {
            for ev in rx {
                if out.write_all(ev.as_bytes()).is_err() {
                    return;
                }
            }
        });
        until_closed(s, &closed.sse);
    } else if line.starts_with("POST /messages/") {
        let _ = s.write_all(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        let sid = line.split("session_id=").nth(1).and_then(|r| r.split(' ').next()).unwrap_or("");
        if let (Some(a), Some(tx)) = (answer(&msg, "2024-11-05"), sessions.lock().unwrap().get(sid)) {
            let _ = tx.send(format!("event: message\ndata: {a}\n\n"));
        }
    } else if line.starts_with("GET /mcp ") {
        // The server-message stream, or a resume: open and silent.
        if s.write_all(SSE_HEAD.as_bytes()).is_ok() {
            until_closed(s, &closed.get);
        }
    } else if line.starts_with("DELETE /mcp ") {
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    } else if line.starts_with("POST /mcp ") {
        let tool = msg["params"]["name"].as_str().unwrap_or("").to_owned();
        match (msg["method"].as_str(), tool.as_str()) {
            (Some("tools/call"), "hang") => {
                if s.write_all(SSE_HEAD.as_bytes()).is_ok() {
                    let _ = called.send(tool);
                    until_closed(s, &closed.post);
                }
            }
            (Some("tools/call"), "drop") => {
                // A priming event (an id, a retry delay) and the end of the
                // stream, without the answer.
                let _ = s.write_all(format!("{SSE_HEAD}id: e1\nretry: 5000\ndata: \n\n").as_bytes());
                drop(s);
                let _ = called.send(tool);
            }
            _ => match answer(&msg, "2025-06-18") {
                Some(a) => respond_json(&mut s, &a),
                None => {
                    let _ = s.write_all(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                }
            },
        }
    } else {
        let _ = s.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    }
}

/// The gateway's threads whose (15-byte) name starts with `prefix`.
fn threads(pid: u32, prefix: &str) -> usize {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return 0 };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
        .filter(|name| name.trim_end().starts_with(prefix))
        .count()
}

/// (legacy SSE stream readers, GET stream readers, POST threads).
fn counts(gw: &Gateway) -> (usize, usize, usize) {
    let pid = gw.pid();
    (threads(pid, "backend:s:strea"), threads(pid, "backend:h:get"), threads(pid, "backend:h:post"))
}

#[test]
fn after_a_reconnect_the_old_connections_stream_readers_are_gone_at_once() {
    let fake = Fake::start();
    let gw = Gateway::start(&json!({"mcpServers": {
        "s": {"type": "sse", "url": fake.url("/sse"), "prefix": "s", "ping_interval_s": 0},
        "h": {"url": fake.url("/mcp"), "prefix": "h", "ping_interval_s": 0, "timeout_s": 30},
    }}));
    for b in ["s", "h"] {
        let v = gw.manage_get(&format!("/backends/{b}")).json();
        assert_eq!(v["state"], "connected", "{v}");
    }
    assert!(wait_until(Duration::from_secs(5), || counts(&gw) == (1, 1, 4)), "{:?}", counts(&gw));

    // Two calls that leave POST threads reading quiet answers.
    let r = common::mcp_initialize(&gw.url("/mcp"));
    let sid = r.header("Mcp-Session-Id").unwrap().to_owned();
    let url = gw.url("/mcp");
    let headers = [ACCEPT, ("Mcp-Session-Id", sid.as_str()), ("MCP-Protocol-Version", "2025-06-18")];
    assert_eq!(post_json(&url, &headers, &json!({"jsonrpc":"2.0","method":"notifications/initialized"})).status, 202);
    let (answers_tx, answers) = mpsc::channel();
    for (id, tool) in [(1, "hang"), (2, "drop")] {
        let (url, sid, tx) = (url.clone(), sid.clone(), answers_tx.clone());
        std::thread::spawn(move || {
            let headers = [ACCEPT, ("Mcp-Session-Id", sid.as_str()), ("MCP-Protocol-Version", "2025-06-18")];
            let call = json!({"jsonrpc":"2.0","id":id,"method":"tools/call",
                              "params":{"name": format!("h__{tool}"), "arguments": {}}});
            let _ = tx.send((tool, post_json(&url, &headers, &call).json()));
        });
    }
    let mut called: Vec<String> = (0..2).map(|_| fake.called.recv_timeout(Duration::from_secs(10)).unwrap()).collect();
    called.sort();
    assert_eq!(called, ["drop", "hang"]);

    for b in ["s", "h"] {
        let r = gw.manage_post(&format!("/backends/{b}/reconnect"));
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["backend"]["state"], "connected", "{}", r.text());
    }
    // The new connection's threads only: the old ones ended with it, the
    // one waiting out `retry: 5000` included.
    let ok = wait_until(Duration::from_secs(2), || counts(&gw) == (1, 1, 4));
    assert!(ok, "(sse streams, GET streams, POST threads) after the reconnects: {:?}", counts(&gw));
    assert!(fake.closed.sse.load(Ordering::SeqCst) >= 1, "the old SSE stream is closed");
    assert!(fake.closed.get.load(Ordering::SeqCst) >= 1, "the old GET stream is closed");
    assert!(fake.closed.post.load(Ordering::SeqCst) >= 1, "the old POST's SSE answer is closed");
    // The calls in flight fail with the reconnect's reason, not with the
    // sockets being shut under them.
    for _ in 0..2 {
        let (tool, v) = answers.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(v["error"]["code"], -32001, "{tool}: {v}");
        assert_eq!(v["error"]["message"], "backend 'h' reconnect requested", "{tool}: {v}");
    }
}
