//! The data plane over raw HTTP, against the real binary and the bundled
//! demo backends: status codes and headers to the letter of the MCP
//! transports, bad input, session isolation, timeouts, cancellation, crashes,
//! list_changed, and remote SSE / Streamable HTTP backends.

#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

mod common;

use common::{demo_backend, http, post_json, ChildGuard, Gateway, Response, SseStream, DEMO_BIN};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const JSON: (&str, &str) = ("Content-Type", "application/json");
const ACCEPT: (&str, &str) = ("Accept", "application/json, text/event-stream");
const T: Duration = Duration::from_secs(10);

fn two_demos() -> Value {
    json!({"mcpServers": {
        "alpha": demo_backend("alpha", &[]),
        "beta": {"command": DEMO_BIN, "args": ["--name", "beta"], "prefix": "beta"},
    }})
}

/// A Streamable HTTP client session.
struct Client {
    url: String,
    sid: String,
    version: String,
    next: i64,
}

impl Client {
    fn init(gw: &Gateway, version: &str) -> Client {
        let r = post_json(
            &gw.url("/mcp"),
            &[ACCEPT],
            &json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
                "protocolVersion": version, "capabilities": {}, "clientInfo": {"name":"t","version":"1"}}}),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        let sid = r.header("Mcp-Session-Id").expect("Mcp-Session-Id on initialize").to_owned();
        assert!(sid.len() >= 16 && sid.bytes().all(|b| (0x21..=0x7e).contains(&b)), "{sid}");
        let negotiated = r.json()["result"]["protocolVersion"].as_str().unwrap().to_owned();
        let c = Client { url: gw.url("/mcp"), sid, version: negotiated, next: 1 };
        let r = c.post(&json!({"jsonrpc":"2.0","method":"notifications/initialized"}));
        assert_eq!(r.status, 202);
        assert!(r.body.is_empty(), "202 must have no body: {:?}", r.text());
        c
    }

    fn headers(&self) -> Vec<(&str, &str)> {
        vec![ACCEPT, ("Mcp-Session-Id", &self.sid), ("MCP-Protocol-Version", &self.version)]
    }

    fn post(&self, body: &Value) -> Response {
        post_json(&self.url, &self.headers(), body)
    }

    /// Sends a request; returns the whole JSON-RPC answer.
    fn rpc(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let r = self.post(&json!({"jsonrpc":"2.0","id":self.next,"method":method,"params":params}));
        assert_eq!(r.status, 200, "{method}: {}", r.text());
        let v = r.json();
        assert_eq!(v["id"], self.next, "{v}");
        v
    }

    fn result(&mut self, method: &str, params: Value) -> Value {
        let v = self.rpc(method, params);
        assert!(v.get("error").is_none(), "{method} failed: {v}");
        v["result"].clone()
    }

    fn call_text(&mut self, tool: &str, args: Value) -> String {
        let r = self.result("tools/call", json!({"name": tool, "arguments": args}));
        r["content"][0]["text"].as_str().unwrap_or_default().to_owned()
    }
}

fn names(list: &Value, key: &str, field: &str) -> Vec<String> {
    list[key].as_array().unwrap().iter().map(|t| t[field].as_str().unwrap().to_owned()).collect()
}

#[test]
fn streamable_http_session_lifecycle() {
    let gw = Gateway::start(&two_demos());
    let mut c = Client::init(&gw, "2025-06-18");
    assert_eq!(c.version, "2025-06-18");
    assert_eq!(c.result("ping", json!({})), json!({}));
    // A version we do not serve is answered with ours.
    let other = Client::init(&gw, "2099-01-01");
    assert_eq!(other.version, "2025-11-25");
    // DELETE ends the session; afterwards the id is unknown (404).
    let r = http("DELETE", &c.url, &[("Mcp-Session-Id", &c.sid)], None);
    assert_eq!(r.status, 200);
    let r = c.post(&json!({"jsonrpc":"2.0","id":9,"method":"ping"}));
    assert_eq!(r.status, 404);
    let r = http("DELETE", &c.url, &[("Mcp-Session-Id", &c.sid)], None);
    assert_eq!(r.status, 404);
}

#[test]
fn session_header_and_protocol_version_rules() {
    let gw = Gateway::start(&two_demos());
    let c = Client::init(&gw, "2025-11-25");
    let ping = json!({"jsonrpc":"2.0","id":1,"method":"ping"});
    // No session id: 400. Unknown: 404.
    assert_eq!(post_json(&c.url, &[ACCEPT], &ping).status, 400);
    assert_eq!(post_json(&c.url, &[ACCEPT, ("Mcp-Session-Id", "nope")], &ping).status, 404);
    // Missing version header: accepted (assumed 2025-03-26 by the spec).
    assert_eq!(post_json(&c.url, &[ACCEPT, ("Mcp-Session-Id", &c.sid)], &ping).status, 200);
    // Unsupported version: 400.
    let r = post_json(&c.url, &[ACCEPT, ("Mcp-Session-Id", &c.sid), ("MCP-Protocol-Version", "1999-01-01")], &ping);
    assert_eq!(r.status, 400);
    // A 2026-07-28 request is served without a session, but only with
    // its `_meta` envelope: without it, 400 with -32602.
    let r = post_json(&c.url, &[ACCEPT, ("MCP-Protocol-Version", "2026-07-28")], &ping);
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], -32602, "{}", r.text());
    // A 2026-era discovery probe answers with every version we serve.
    let meta =
        json!({"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}});
    let discover = json!({"jsonrpc":"2.0","id":1,"method":"server/discover","params":{"_meta":meta}});
    let r = post_json(
        &c.url,
        &[ACCEPT, ("MCP-Protocol-Version", "2026-07-28"), ("Mcp-Method", "server/discover")],
        &discover,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let supported: Vec<String> = r.json()["result"]["supportedVersions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(supported, vec!["2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"]);
    // The same probe without the version header is a legacy request
    // without a session: 400.
    let r = post_json(&c.url, &[ACCEPT], &discover);
    assert_eq!(r.status, 400);
    // Other methods on /mcp: 405 with Allow.
    let r = http("PUT", &c.url, &[], None);
    assert_eq!(r.status, 405);
    assert!(r.header("Allow").unwrap().contains("POST"));
}

#[test]
fn origin_is_validated() {
    let gw = Gateway::start(&two_demos());
    let init = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}});
    let evil = ("Origin", "https://evil.example");
    assert_eq!(post_json(&gw.url("/mcp"), &[ACCEPT, evil], &init).status, 403);
    match SseStream::open(&gw.url("/sse"), &[evil]) {
        Err(r) => assert_eq!(r.status, 403),
        Ok(_) => panic!("GET /sse with a foreign Origin must be refused"),
    }
    let r = post_json(&gw.url("/mcp"), &[ACCEPT, ("Origin", "http://localhost:6274")], &init);
    assert_eq!(r.status, 200);
}

#[test]
fn batches_only_under_2025_03_26() {
    let gw = Gateway::start(&two_demos());
    let batch = json!([
        {"jsonrpc":"2.0","id":"a","method":"ping"},
        {"jsonrpc":"2.0","id":"b","method":"tools/call","params":{"name":"echo","arguments":{"message":"in a batch"}}},
        {"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":1,"progress":1}}
    ]);
    let old = Client::init(&gw, "2025-03-26");
    let r = old.post(&batch);
    assert_eq!(r.status, 200, "{}", r.text());
    let answers = r.json();
    let answers = answers.as_array().unwrap();
    assert_eq!(answers.len(), 2, "notifications get no answer: {answers:?}");
    assert_eq!(answers[0]["id"], "a");
    assert_eq!(answers[1]["result"]["content"][0]["text"], "in a batch", "{answers:?}");
    let new = Client::init(&gw, "2025-06-18");
    let r = new.post(&batch);
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], -32600);
}

#[test]
fn bad_input_gets_clear_errors() {
    let mut cfg = two_demos();
    cfg["server"] = json!({"max_body_bytes": 2048});
    let gw = Gateway::start(&cfg);
    let mut c = Client::init(&gw, "2025-06-18");
    let h = c.headers();
    let raw = |body: &[u8], ctype: &str| {
        let mut hs = h.clone();
        hs.push(("Content-Type", ctype));
        http("POST", &c.url, &hs, Some(body))
    };
    let r = raw(b"{not json", "application/json");
    assert_eq!((r.status, r.json()["error"]["code"].clone()), (400, json!(-32700)));
    let r = raw(b"42", "application/json");
    assert_eq!((r.status, r.json()["error"]["code"].clone()), (400, json!(-32600)));
    let r = raw(br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#, "text/plain");
    assert_eq!(r.status, 415);
    let big = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"echo","arguments":{{"message":"{}"}}}}}}"#,
        "x".repeat(4096)
    );
    assert_eq!(raw(big.as_bytes(), "application/json").status, 413);
    let v = c.rpc("no/such/method", json!({}));
    assert_eq!(v["error"]["code"], -32601);
    let v = c.rpc("tools/call", json!({"name": "no_such_tool", "arguments": {}}));
    assert_eq!(v["error"]["code"], -32602);
    let v = c.rpc("prompts/get", json!({"name": "no_such_prompt"}));
    assert_eq!(v["error"]["code"], -32602);
    let v = c.rpc("resources/read", json!({"uri": "nope://x"}));
    assert_eq!(v["error"]["code"], -32602);
    let v = c.rpc("tools/list", json!({"cursor": "forged"}));
    assert_eq!(v["error"]["code"], -32602);
    // None of that disturbed the session.
    assert_eq!(c.call_text("echo", json!({"message": "still fine"})), "still fine");
}

#[test]
fn merged_lists_routing_prefixes_and_completion() {
    let gw = Gateway::start(&two_demos());
    let mut c = Client::init(&gw, "2025-11-25");
    let tools = names(&c.result("tools/list", json!({})), "tools", "name");
    for t in ["echo", "add", "slow", "crash", "beta__echo", "beta__add", "beta__crash"] {
        assert!(tools.contains(&t.to_owned()), "{t} missing from {tools:?}");
    }
    let res = names(&c.result("resources/list", json!({})), "resources", "uri");
    assert!(
        res.contains(&"demo://alpha/readme".to_owned()) && res.contains(&"demo://beta/readme".to_owned()),
        "{res:?}"
    );
    let tpl = names(&c.result("resources/templates/list", json!({})), "resourceTemplates", "uriTemplate");
    assert_eq!(tpl, vec!["demo://alpha/items/{id}", "demo://beta/items/{id}"]);
    let prompts = names(&c.result("prompts/list", json!({})), "prompts", "name");
    assert_eq!(prompts, vec!["greet", "beta__greet"]);
    assert_eq!(c.call_text("beta__echo", json!({"message": "b"})), "b");
    let sum = c.result("tools/call", json!({"name": "add", "arguments": {"a": 2, "b": 3}}));
    assert_eq!(sum["structuredContent"]["sum"], 5.0, "{sum}");
    let fail = c.result("tools/call", json!({"name": "fail", "arguments": {}}));
    assert_eq!(fail["isError"], true, "isError must survive the gateway: {fail}");
    let r = c.result("resources/read", json!({"uri": "demo://beta/items/42"}));
    assert_eq!(r["contents"][0]["text"], "item 42 from beta");
    let p = c.result("prompts/get", json!({"name": "beta__greet", "arguments": {"name": "Ada"}}));
    assert_eq!(p["messages"][0]["content"]["text"], "Hello, Ada! (from beta)");
    let comp = c.result(
        "completion/complete",
        json!({"ref": {"type": "ref/prompt", "name": "beta__greet"}, "argument": {"name": "name", "value": "a"}}),
    );
    assert_eq!(comp["completion"]["values"], json!(["alice"]));
    let comp = c.result(
        "completion/complete",
        json!({"ref": {"type": "ref/resource", "uri": "demo://alpha/items/{id}"}, "argument": {"name": "id", "value": "2"}}),
    );
    assert_eq!(comp["completion"]["values"], json!(["2"]));
    assert_eq!(c.result("logging/setLevel", json!({"level": "debug"})), json!({}));
}

/// Reads one JSON-RPC message per `event: message` until the response with `id`.
fn read_until_response(s: &mut SseStream, id: &Value) -> (Vec<Value>, Value) {
    let mut notes = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let Some(data) = s.next_named("message", Duration::from_secs(10)) else { break };
        let v: Value = serde_json::from_str(&data).unwrap();
        if v.get("id") == Some(id) && v.get("method").is_none() {
            return (notes, v);
        }
        notes.push(v);
    }
    panic!("no response with id {id} on the stream; got {notes:?}");
}

#[test]
fn progress_tokens_are_isolated_between_sessions() {
    let gw = Gateway::start(&two_demos());
    let a = Client::init(&gw, "2025-06-18");
    let b = Client::init(&gw, "2025-06-18");
    // Both sessions use the same request id and the same progress token.
    let body = json!({"jsonrpc":"2.0","id":7,"method":"tools/call","params":{
        "name":"slow","arguments":{"steps":4,"interval_ms":30},"_meta":{"progressToken":"same"}}});
    let bytes = serde_json::to_vec(&body).unwrap();
    let mut ha = a.headers();
    ha.push(JSON);
    let mut hb = b.headers();
    hb.push(JSON);
    let mut sa = SseStream::request("POST", &a.url, &ha, Some(&bytes)).expect("SSE answer for a call with progress");
    let mut sb = SseStream::request("POST", &b.url, &hb, Some(&bytes)).expect("SSE answer for a call with progress");
    for s in [&mut sa, &mut sb] {
        let (notes, resp) = read_until_response(s, &json!(7));
        let progress: Vec<f64> = notes.iter().map(|n| n["params"]["progress"].as_f64().unwrap()).collect();
        assert_eq!(progress, vec![1.0, 2.0, 3.0, 4.0], "each session sees only its own progress");
        assert!(notes.iter().all(|n| n["params"]["progressToken"] == "same"));
        assert_eq!(resp["result"]["content"][0]["text"], "done after 4 steps");
    }
}

#[test]
fn legacy_sse_transport() {
    let gw = Gateway::start(&two_demos());
    let mut s = SseStream::open(&gw.url("/sse"), &[]).expect("GET /sse");
    assert_eq!(s.header("X-Accel-Buffering"), Some("no"));
    let (ev, endpoint) = s.next_event(T).expect("first event");
    assert_eq!(ev, "endpoint");
    assert!(endpoint.starts_with("/messages/?session_id="), "{endpoint}");
    let post = |body: &[u8]| http("POST", &gw.url(&endpoint), &[JSON], Some(body));
    let r = post(br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2024-11-05","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#);
    assert_eq!(r.status, 202);
    let (_, init) = read_until_response(&mut s, &json!(1));
    assert_eq!(init["result"]["protocolVersion"], "2024-11-05");
    assert_eq!(post(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).status, 202);
    assert_eq!(post(br#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"message":"over sse"}}}"#).status, 202);
    let (_, r) = read_until_response(&mut s, &json!(2));
    assert_eq!(r["result"]["content"][0]["text"], "over sse");
    // Malformed JSON: 400 to the POST and a parse error on the stream.
    assert_eq!(post(b"{oops").status, 400);
    let (_, e) = read_until_response(&mut s, &Value::Null);
    assert_eq!(e["error"]["code"], -32700);
    // Unknown session: 404. POST /sse: 405.
    let r = http("POST", &gw.url("/messages/?session_id=deadbeef"), &[JSON], Some(b"{}"));
    assert_eq!(r.status, 404);
    assert_eq!(http("POST", &gw.url("/sse"), &[JSON], Some(b"{}")).status, 405);
}

#[test]
fn an_oversized_request_is_answered_with_its_id_on_the_stream_too() {
    let mut cfg = two_demos();
    cfg["server"] = json!({"max_body_bytes": 1024});
    let gw = Gateway::start(&cfg);
    let mut s = SseStream::open(&gw.url("/sse"), &[]).expect("GET /sse");
    let (_, endpoint) = s.next_event(T).expect("endpoint");
    // The id last, as the Python SDK writes it, after 4 KB of arguments.
    let big = "x".repeat(4096);
    let body = format!(
        r#"{{"method":"tools/call","params":{{"name":"echo","arguments":{{"message":"{big}"}}}},"jsonrpc":"2.0","id":"call-9"}}"#
    );
    let r = http("POST", &gw.url(&endpoint), &[JSON], Some(body.as_bytes()));
    assert_eq!(r.status, 413);
    assert_eq!(r.json()["id"], "call-9", "{}", r.text());
    // The client waits on its stream for that id: the error is there too.
    let (_, e) = read_until_response(&mut s, &json!("call-9"));
    assert_eq!(e["error"]["code"], -32600, "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("max_body_bytes"), "{e}");
    // The same over Streamable HTTP: the id is in the refusal.
    let c = Client::init(&gw, "2025-06-18");
    let body = format!(r#"{{"jsonrpc":"2.0","method":"tools/call","params":{{"message":"{big}"}},"id":77}}"#);
    let r = http("POST", &c.url, &c.headers(), Some(body.as_bytes()));
    assert_eq!(r.status, 413);
    assert_eq!(r.json()["id"], 77, "{}", r.text());
}

#[test]
fn sse_sessions_are_isolated() {
    let gw = Gateway::start(&two_demos());
    let mut streams = Vec::new();
    for who in ["one", "two"] {
        let mut s = SseStream::open(&gw.url("/sse"), &[]).expect("GET /sse");
        let (_, ep) = s.next_event(T).unwrap();
        streams.push((who, s, ep));
    }
    // Same request id from both clients, different payloads, sent interleaved.
    for (who, _, ep) in &streams {
        let body = json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"slow","arguments":{"steps":2,"interval_ms":20}}});
        assert_eq!(http("POST", &gw.url(ep), &[JSON], Some(&serde_json::to_vec(&body).unwrap())).status, 202);
        let body =
            json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"message":who}}});
        assert_eq!(http("POST", &gw.url(ep), &[JSON], Some(&serde_json::to_vec(&body).unwrap())).status, 202);
    }
    for (who, s, _) in &mut streams {
        let mut got = Vec::new();
        while got.len() < 2 {
            let data = s.next_named("message", T).expect("answers on the stream");
            got.push(serde_json::from_str::<Value>(&data).unwrap());
        }
        let echo = got.iter().find(|v| v["id"] == 2).expect("echo answer");
        assert_eq!(echo["result"]["content"][0]["text"], *who, "{got:?}");
        assert!(got.iter().any(|v| v["id"] == 1 && v["result"]["content"][0]["text"] == "done after 2 steps"));
        // Nothing else arrives for this session.
        assert!(s.next_named("message", Duration::from_millis(300)).is_none());
    }
}

#[test]
fn timeout_answers_the_client_and_cancels_at_the_backend() {
    let cfg =
        json!({"mcpServers": {"slowpoke": {"command": DEMO_BIN, "args": ["--name", "slowpoke"], "timeout_s": 0.5}}});
    let gw = Gateway::start(&cfg);
    let mut c = Client::init(&gw, "2025-06-18");
    let start = Instant::now();
    let v = c.rpc("tools/call", json!({"name": "slow", "arguments": {"steps": 50, "interval_ms": 100}}));
    let took = start.elapsed();
    assert_eq!(v["error"]["code"], -32002, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("slowpoke"), "{v}");
    assert!(took < Duration::from_secs(4), "timeout took {took:?}");
    // The backend was told to stop (its own record of cancellations).
    let deadline = Instant::now() + T;
    loop {
        let r = c.result("tools/call", json!({"name": "cancellations", "arguments": {}}));
        if !r["structuredContent"]["cancelled"].as_array().unwrap().is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "backend never saw notifications/cancelled");
    }
}

#[test]
fn client_cancellation_reaches_the_backend() {
    let gw = Gateway::start(&two_demos());
    let mut c = Client::init(&gw, "2025-06-18");
    let body = json!({"jsonrpc":"2.0","id":"long","method":"tools/call","params":{
        "name":"slow","arguments":{"steps":100,"interval_ms":100},"_meta":{"progressToken":"p"}}});
    let mut h = c.headers();
    h.push(JSON);
    let mut s = SseStream::request("POST", &c.url, &h, Some(&serde_json::to_vec(&body).unwrap())).expect("stream");
    let first = s.next_named("message", T).expect("first progress");
    assert!(first.contains("notifications/progress"), "{first}");
    let r = c.post(
        &json!({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"long","reason":"user"}}),
    );
    assert_eq!(r.status, 202);
    let (_, end) = read_until_response(&mut s, &json!("long"));
    assert_eq!(end["error"]["code"], -32800, "{end}");
    let r = c.result("tools/call", json!({"name": "cancellations", "arguments": {}}));
    assert_eq!(r["structuredContent"]["cancelled"].as_array().unwrap().len(), 1, "{r}");
}

#[test]
fn backend_crash_fails_in_flight_calls_and_spares_the_others() {
    let gw = Gateway::start(&two_demos());
    let mut c = Client::init(&gw, "2025-06-18");
    let v = c.rpc("tools/call", json!({"name": "beta__crash", "arguments": {}}));
    let msg = v["error"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains("beta"), "error must name the backend: {v}");
    assert_eq!(c.call_text("echo", json!({"message": "alpha lives"})), "alpha lives");
    // The supervisor restarts beta.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let v = c.rpc("tools/call", json!({"name": "beta__echo", "arguments": {"message": "beta is back"}}));
        if v["result"]["content"][0]["text"] == "beta is back" {
            break;
        }
        assert!(Instant::now() < deadline, "beta never came back: {v}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn silent_and_noisy_backends_do_not_hurt_the_others() {
    let cfg = json!({"mcpServers": {
        "alpha": demo_backend("alpha", &["--garbage"]),
        "mute": {"command": DEMO_BIN, "args": ["--name", "mute", "--mute"], "timeout_s": 1, "prefix": "mute"},
        "broken": {"type": "stdio"},
    }});
    let gw = Gateway::start(&cfg);
    assert!(gw.wait_for_log("gateway state: degraded", T), "{}", gw.log());
    assert!(gw.log().contains("initialize failed"), "{}", gw.log());
    assert!(gw.log().contains("not JSON-RPC"), "garbage lines are logged: {}", gw.log());
    let mut c = Client::init(&gw, "2025-06-18");
    assert_eq!(c.call_text("echo", json!({"message": "through garbage"})), "through garbage");
    let tools = names(&c.result("tools/list", json!({})), "tools", "name");
    assert!(!tools.iter().any(|t| t.starts_with("mute__")), "{tools:?}");
}

#[test]
fn list_changed_reaches_other_sessions_after_rediscovery() {
    let gw = Gateway::start(&two_demos());
    let mut a = Client::init(&gw, "2025-06-18");
    let b = Client::init(&gw, "2025-06-18");
    let mut stale = SseStream::open(&b.url, &b.headers()).expect("GET /mcp stream");
    // A client whose stream dropped opens a new one at once: it replaces
    // the old one, which ends.
    let mut stream = SseStream::open(&b.url, &b.headers()).expect("a second GET replaces the first");
    assert_eq!(a.call_text("add_tool", json!({})), "added extra_1");
    let note = stream.next_named("message", T).expect("list_changed on the new GET stream");
    assert!(note.contains("notifications/tools/list_changed"), "{note}");
    assert!(stale.next_named("message", Duration::from_secs(5)).is_none(), "the replaced stream gets nothing");
    assert!(stale.at_eof(), "the replaced stream is closed");
    let tools = names(&a.result("tools/list", json!({})), "tools", "name");
    assert!(tools.contains(&"extra_1".to_owned()), "{tools:?}");
}

#[test]
fn backend_requests_are_answered_fast() {
    let gw = Gateway::start(&two_demos());
    let mut c = Client::init(&gw, "2025-06-18");
    assert_eq!(c.call_text("ask_client", json!({"method": "ping"})), "result: {}");
    let start = Instant::now();
    let t = c.call_text("ask_client", json!({"method": "sampling/createMessage"}));
    assert!(t.starts_with("error: -32601"), "{t}");
    assert!(start.elapsed() < Duration::from_secs(3));
}

/// Starts the demo serving HTTP itself (`--sse` or `--http`) on a free port.
fn demo_server(name: &str, mode: &str) -> (ChildGuard, SocketAddr) {
    let mut child = Command::new(DEMO_BIN)
        .args(["--name", name, mode, "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start demo server");
    let stderr = child.stderr.take().unwrap();
    let guard = ChildGuard { child };
    let mut lines = BufReader::new(stderr).lines();
    let addr = loop {
        let line = lines.next().expect("demo printed its address").unwrap();
        if let Some(a) = common::parse_listen_addr(&line, "listening on http://") {
            break a;
        }
    };
    // Keep draining stderr so the demo never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (guard, addr)
}

#[test]
fn remote_sse_and_streamable_http_backends() {
    let (_sse, sse_addr) = demo_server("remote-sse", "--sse");
    let (http_guard, http_addr) = demo_server("remote-http", "--http");
    let cfg = json!({"mcpServers": {
        "rsse": {"type": "sse", "url": format!("http://{sse_addr}/sse"), "prefix": "rsse"},
        "rhttp": {"type": "streamable-http", "url": format!("http://{http_addr}/mcp"), "prefix": "rhttp"},
    }});
    let gw = Gateway::start(&cfg);
    assert!(gw.wait_for_log("gateway state: ready", T), "{}", gw.log());
    let mut c = Client::init(&gw, "2025-06-18");
    assert_eq!(c.call_text("rsse__echo", json!({"message": "via sse"})), "via sse");
    assert_eq!(c.call_text("rhttp__echo", json!({"message": "via http"})), "via http");
    let r = c.result("resources/read", json!({"uri": "demo://remote-http/items/5"}));
    assert_eq!(r["contents"][0]["text"], "item 5 from remote-http");
    // Progress flows from a Streamable HTTP backend through to the client.
    for tool in ["rhttp__slow", "rsse__slow"] {
        let body = json!({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{
            "name":tool,"arguments":{"steps":3,"interval_ms":20},"_meta":{"progressToken":9}}});
        let mut h = c.headers();
        h.push(JSON);
        let mut s = SseStream::request("POST", &c.url, &h, Some(&serde_json::to_vec(&body).unwrap())).expect("stream");
        let (notes, resp) = read_until_response(&mut s, &json!(3));
        assert_eq!(notes.len(), 3, "{tool}: {notes:?}");
        assert!(notes.iter().all(|n| n["params"]["progressToken"] == 9));
        assert_eq!(resp["result"]["content"][0]["text"], "done after 3 steps");
    }
    // The remote server goes away: its calls fail naming it, the others work.
    drop(http_guard);
    let v = c.rpc("tools/call", json!({"name": "rhttp__echo", "arguments": {"message": "anyone?"}}));
    assert!(v["error"]["message"].as_str().unwrap_or_default().contains("rhttp"), "{v}");
    assert!(gw.wait_for_log("gateway state: degraded", T), "{}", gw.log());
    assert_eq!(c.call_text("rsse__echo", json!({"message": "sse still"})), "sse still");
}

#[test]
fn configuration_errors_exit_78_and_usage_errors_2() {
    let dir = common::TempDir::new("cfg");
    let bad = dir.path.join("bad.json");
    std::fs::write(&bad, "{ not json").unwrap();
    let out =
        common::run_bounded("gateway", Command::new(common::GATEWAY_BIN).args(["server", "--config"]).arg(&bad), T);
    assert_eq!(out.status.and_then(|s| s.code()), Some(78), "{}", out.stderr);
    assert!(out.stderr.contains(&bad.display().to_string()), "the error names the file: {}", out.stderr);
    let out = common::run_bounded("gateway", Command::new(common::GATEWAY_BIN).args(["server", "--lisen", "x"]), T);
    assert_eq!(out.status.and_then(|s| s.code()), Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("--listen"), "suggests the right flag: {}", out.stderr);
}

#[test]
fn sigterm_stops_cleanly_and_kills_backends() {
    let mut gw = Gateway::start(&two_demos());
    let c = Client::init(&gw, "2025-06-18");
    drop(c);
    let pids: Vec<u32> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| s.rsplit(')').next().map(|r| r.split_whitespace().nth(1).map(str::to_owned)))
                .flatten()
                .is_some_and(|ppid| ppid == gw.pid().to_string())
        })
        .collect();
    assert_eq!(pids.len(), 2, "two demo children");
    let status = gw.stop().expect("exit status");
    assert_eq!(status.code(), Some(0));
    for pid in pids {
        let alive = std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "));
        assert!(!alive, "backend {pid} survived the gateway");
    }
}
