//! The resource-template matcher under hostile input, against the real
//! binary: near-miss URIs of 10 KB, 40 KB and 1 MB sent to `resources/read`
//! and `completion/complete` are refused at once while the gateway keeps
//! answering others, and a backend template of 5,000 parts is left out of
//! routing (with a warning) instead of overflowing a thread's stack.
//!
//! The finding (High): "Resource-template matching can pin a CPU and crash
//! the whole gateway". The backtracking matcher took 3.9 s for a 40 KB URI
//! against `x://{+a}/{+b}.md` (quadratic: hours at the 4 MiB body limit),
//! on the reactor thread for bodies under 256 KiB, so every client waited;
//! a 5,000-part template and a 6,000-character URI aborted the process.
//! Run these with `MCP_SENTINEL_TEST_GATEWAY=<old binary>` to see them fail.

#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

mod common;

use common::{demo_backend, post_json, Gateway, Response};
use serde_json::{json, Value};
use std::thread;
use std::time::{Duration, Instant};

const ACCEPT: (&str, &str) = ("Accept", "application/json, text/event-stream");
/// How long any one answer may take, however hostile the URI.
const PROMPT: Duration = Duration::from_secs(1);

/// A Streamable HTTP client session; `Clone` so threads can share it.
#[derive(Clone)]
struct Client {
    url: String,
    sid: String,
}

impl Client {
    fn init(gw: &Gateway) -> Client {
        let r = post_json(
            &gw.url("/mcp"),
            &[ACCEPT],
            &json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
                "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name":"t","version":"1"}}}),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        let sid = r.header("Mcp-Session-Id").expect("Mcp-Session-Id on initialize").to_owned();
        let c = Client { url: gw.url("/mcp"), sid };
        assert_eq!(c.post(&json!({"jsonrpc":"2.0","method":"notifications/initialized"})).status, 202);
        c
    }

    fn post(&self, body: &Value) -> Response {
        post_json(&self.url, &[ACCEPT, ("Mcp-Session-Id", &self.sid), ("MCP-Protocol-Version", "2025-11-25")], body)
    }

    /// Sends one request; returns its JSON-RPC answer and how long it took.
    fn rpc(&self, method: &str, params: Value) -> (Value, Duration) {
        let started = Instant::now();
        let r = self.post(&json!({"jsonrpc":"2.0","id":1,"method":method,"params":params}));
        let took = started.elapsed();
        assert_eq!(r.status, 200, "{method}: {}", r.text());
        (r.json(), took)
    }

    fn read(&self, uri: &str) -> (Value, Duration) {
        self.rpc("resources/read", json!({"uri": uri}))
    }

    fn complete(&self, uri: &str) -> (Value, Duration) {
        self.rpc(
            "completion/complete",
            json!({"ref": {"type": "ref/resource", "uri": uri}, "argument": {"name": "a", "value": ""}}),
        )
    }
}

/// Asserts that `answer` is the gateway's own -32602 for an unmatched URI.
fn assert_unknown(what: &str, answer: &Value) {
    assert_eq!(answer["error"]["code"], -32602, "{what}: {}", excerpt(answer));
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("Unknown resource: x://"), "{what}: {}", excerpt(answer));
}

fn excerpt(v: &Value) -> String {
    let s = v.to_string();
    s.chars().take(300).collect()
}

/// `x://` then `len` slashes and the wrong suffix: the old matcher tried
/// every split of the slashes between `{+a}` and `{+b}`.
fn near_miss(len: usize) -> String {
    format!("x://{}.mx", "/".repeat(len))
}

#[test]
fn near_miss_uris_are_refused_at_once_while_others_are_served() {
    let gw = Gateway::start(&json!({"mcpServers": {
        "alpha": demo_backend("alpha", &["--template", "x://{+a}/{+b}.md"]),
    }}));
    let c = Client::init(&gw);

    // Hostile URIs from three clients at once, each sent twice to both methods.
    let hostile: Vec<_> = [10_000, 40_000, 1_000_000]
        .into_iter()
        .map(|len| {
            let c = c.clone();
            thread::spawn(move || {
                let uri = near_miss(len);
                for _ in 0..2 {
                    for (method, (v, took)) in [("read", c.read(&uri)), ("complete", c.complete(&uri))] {
                        let what = format!("{method} of a {len}-byte near miss");
                        assert_unknown(&what, &v);
                        assert!(took < PROMPT, "{what} took {took:?}");
                    }
                }
            })
        })
        .collect();
    // Meanwhile another client is served promptly.
    let other = Client::init(&gw);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut pings = 0;
    while pings < 5 || hostile.iter().any(|t| !t.is_finished()) {
        let (v, took) = other.rpc("ping", json!({}));
        assert_eq!(v["result"], json!({}), "{v}");
        assert!(took < PROMPT, "a ping took {took:?} while near misses were matched");
        pings += 1;
        assert!(Instant::now() < deadline, "the near misses took over 30 s");
        thread::sleep(Duration::from_millis(10));
    }
    for t in hostile {
        t.join().unwrap();
    }
    // Routing as before: a matching URI reaches the backend, up to 8 KiB.
    let (v, _) = other.read("x://p/q.md");
    assert_eq!(v["result"]["contents"][0]["text"], "read by template from alpha", "{v}");
    let longest = format!("x://{}.md", "/".repeat(8 * 1024 - 7));
    assert_eq!(longest.len(), 8 * 1024);
    let (v, took) = other.read(&longest);
    assert_eq!(v["result"]["contents"][0]["text"], "read by template from alpha", "{}", excerpt(&v));
    assert!(took < PROMPT, "an 8 KiB match took {took:?}");
    let (v, _) = other.complete("x://p/q.md");
    assert_eq!(v["result"]["completion"]["values"], json!([]), "routed to the backend: {v}");
    // One byte more and no template matches.
    let (v, _) = other.read(&format!("x://{}.md", "/".repeat(8 * 1024 - 6)));
    assert_unknown("8 KiB + 1", &v);
}

#[test]
fn a_template_of_5000_parts_is_not_routed_and_crashes_nothing() {
    // `x://` and 5,000 × `{a}`: 5,001 parts. The old matcher recursed once
    // per part and overflowed the reactor's 256 KiB stack.
    let big = format!("x://{}", "{a}".repeat(5_000));
    let mut gw = Gateway::start(&json!({"mcpServers": {
        "big": demo_backend("big", &["--template", &big]),
    }}));
    let c = Client::init(&gw);
    // No URI routes by it: here a 6,000-character URI that it matches.
    let uri = format!("x://{}", "a".repeat(6_000));
    for _ in 0..3 {
        let (v, took) = c.read(&uri);
        assert_unknown("6,000-character URI", &v);
        assert!(took < PROMPT, "took {took:?}");
        let (v, took) = c.complete(&uri);
        assert_unknown("6,000-character URI", &v);
        assert!(took < PROMPT, "took {took:?}");
    }
    // A warning names the backend and the template, shortened.
    let needle = "backend 'big': resource template \"x://{a}{a}";
    assert!(
        gw.wait_for_log(needle, Duration::from_secs(5)),
        "no warning naming the backend and the template:\n{}",
        gw.log()
    );
    let log = gw.log();
    let warning = log.lines().find(|l| l.contains(needle)).unwrap();
    assert!(warning.contains("has 5001 parts, more than the 64"), "{warning}");
    assert!(warning.len() < 600, "the template is shortened in the log: {} bytes", warning.len());

    // Still listed as the backend listed it.
    let (v, _) = c.rpc("resources/templates/list", json!({}));
    let listed = v["result"]["resourceTemplates"].as_array().unwrap();
    assert!(listed.iter().any(|t| t["uriTemplate"] == big.as_str()), "not listed");
    // The gateway is still up and the backend's other template still routes.
    let (v, _) = c.read("demo://big/items/7");
    assert_eq!(v["result"]["contents"][0]["text"], "item 7 from big", "{v}");
    assert_eq!(gw.wait_exit(Duration::from_millis(100)), None, "the gateway exited");
}
