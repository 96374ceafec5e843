//! Transparent proxying, end to end, as a user would check it: the official
//! Python MCP SDK (`tests/py/transparency_client.py`) and raw HTTP talk to the
//! gateway over both transports, with the official server-everything behind
//! it (stdio, or Streamable HTTP where noted), and with a tiny raw-bytes
//! backend (`tests/py/raw_backend.py`) for byte-exactness.
//!
//! What a user must see:
//! - a backend's sampling, elicitation (form and URL) and roots requests reach
//!   the client whose call caused them, and the client's answers show in the
//!   tool results;
//! - a client that did not declare a capability gets a fast error naming it;
//! - two sessions get only their own requests, logs and resource updates;
//!   a stdio backend's request that could be either session's is refused
//!   (and says `"per_session": true`);
//! - `GET /mcp` can be reopened at once, and a dropped stream resumes with
//!   `Last-Event-ID`;
//! - a remote Streamable HTTP backend lists the same tools through the gateway
//!   as directly;
//! - JSON travels byte for byte both ways.
//!
//! Needs the peers from `scripts/install-peers.sh` (the Python SDK venv and
//! server-everything); without them a test is skipped with a message, except
//! under CI=true, where it fails. Every process is killed by PID, every wait is
//! bounded, and all traffic goes to 127.0.0.1.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{
    demo_backend, everything_backend, http, py_script, run_bounded, EverythingServer, Gateway, Response, SseStream,
};
use serde_json::{json, Value};

const PY_TIMEOUT: Duration = Duration::from_secs(60);
/// A refusal must come at once, not after a backend's or client's timeout.
const FAST: f64 = 5.0;

#[derive(Clone, Copy, Debug)]
enum Transport {
    Sse,
    Streamable,
}

impl Transport {
    fn path(self) -> &'static str {
        match self {
            Transport::Sse => "/sse",
            Transport::Streamable => "/mcp",
        }
    }

    fn arg(self) -> &'static str {
        match self {
            Transport::Sse => "sse",
            Transport::Streamable => "streamable-http",
        }
    }
}

// ---------------------------------------------------------------------------
// Peers, gateways, the Python client
// ---------------------------------------------------------------------------

/// The Python SDK and server-everything, or `None` to skip.
fn peers() -> Option<(PathBuf, Value)> {
    common::sdk_peers()
}

/// server-everything over stdio (no prefix, so its tool names are the
/// ones its documentation gives), and the demo backend with prefix `demo`
/// (its `demo__add_tool` makes the gateway send `tools/list_changed` to every
/// session with a stream: how a test knows a session's stream is open).
fn stdio_config(everything: &Value) -> Value {
    let mut demo = demo_backend("demo", &[]);
    demo["prefix"] = json!("demo");
    json!({ "mcpServers": { "everything": everything, "demo": demo } })
}

/// A gateway whose only backend is a remote Streamable HTTP server-everything.
fn remote_config(server: &EverythingServer) -> Value {
    json!({ "mcpServers": { "everything": { "type": "streamable-http", "url": server.url("/mcp") } } })
}

/// Runs `transparency_client.py` against `url` and returns what it saw.
fn client(python: &Path, url: &str, transport: &str, scenario: &str, extra: &[&str], gw: Option<&Gateway>) -> Value {
    let mut cmd = common::py_command(python, "transparency_client.py");
    cmd.args(["--url", url, "--transport", transport, "--scenario", scenario]).args(extra);
    let out = run_bounded(&format!("py:{scenario}:{transport}"), &mut cmd, PY_TIMEOUT);
    let gw_log = || gw.map(Gateway::log).unwrap_or_default();
    assert!(
        !out.timed_out,
        "transparency_client.py {scenario} over {transport} ran past {PY_TIMEOUT:?}\nstderr:\n{}\ngateway log:\n{}",
        out.stderr,
        gw_log()
    );
    let value: Option<Value> =
        out.stdout.lines().rev().find(|l| l.starts_with('{')).and_then(|l| serde_json::from_str(l).ok());
    assert!(
        out.success() && value.as_ref().is_some_and(|v| v["ok"] == json!(true)),
        "transparency_client.py {scenario} over {transport} failed ({:?})\nstdout:\n{}\nstderr:\n{}\ngateway log:\n{}",
        out.status,
        out.stdout,
        out.stderr,
        gw_log()
    );
    let value = value.expect("checked above");
    eprintln!("transparency_client.py {scenario} over {transport}: {value}");
    value
}

/// A fresh gateway in front of stdio server-everything, and one scenario run through it.
fn through_stdio_everything(scenario: &str, transport: Transport) -> Option<Value> {
    let (python, everything) = peers()?;
    let gw = Gateway::start(&stdio_config(&everything));
    Some(client(&python, &gw.url(transport.path()), transport.arg(), scenario, &[], Some(&gw)))
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

/// A tool call that failed fast with an error whose text shows every `want`.
fn assert_fast_error(call: &Value, what: &str, want: &[&str]) {
    assert_eq!(call["is_error"], json!(true), "{what} must fail: {call}");
    for w in want {
        assert!(text(call).contains(w), "{what}: the error does not mention {w:?}: {}", text(call));
    }
    let took = call["elapsed_s"].as_f64().unwrap_or(f64::MAX);
    assert!(took < FAST, "{what}: the error took {took} s (a refusal must come at once)");
}

fn list(v: &Value) -> Vec<Value> {
    v.as_array().cloned().unwrap_or_default()
}

fn strings(v: &Value) -> Vec<String> {
    list(v).iter().filter_map(|x| x.as_str().map(String::from)).collect()
}

/// The `data` of every log message a client got.
fn log_texts(client: &Value) -> Vec<String> {
    list(&client["logs"])
        .iter()
        .map(|l| l["data"].as_str().map(String::from).unwrap_or(l["data"].to_string()))
        .collect()
}

macro_rules! both_transports {
    ($($sse:ident, $http:ident => $body:ident;)*) => {$(
        #[test]
        fn $sse() {
            $body(Transport::Sse);
        }

        #[test]
        fn $http() {
            $body(Transport::Streamable);
        }
    )*};
}

both_transports! {
    sampling_reaches_the_calling_client_sse, sampling_reaches_the_calling_client_streamable_http => sampling;
    elicitation_form_and_url_sse, elicitation_form_and_url_streamable_http => elicitation;
    roots_come_from_the_client_sse, roots_come_from_the_client_streamable_http => roots;
    missing_capability_is_a_fast_clear_error_sse, missing_capability_is_a_fast_clear_error_streamable_http => missing_capability;
    two_sessions_get_their_own_requests_and_logs_sse, two_sessions_get_their_own_requests_and_logs_streamable_http => two_sessions_take_turns;
    stdio_backend_refuses_an_ambiguous_request_sse, stdio_backend_refuses_an_ambiguous_request_streamable_http => ambiguous_request_on_stdio;
    concurrent_sessions_on_a_streamable_backend_sse, concurrent_sessions_on_a_streamable_backend_streamable_http => concurrent_on_streamable_backend;
    resource_updates_reach_subscribers_only_sse, resource_updates_reach_subscribers_only_streamable_http => subscriptions;
    remote_streamable_backend_lists_the_same_tools_sse, remote_streamable_backend_lists_the_same_tools_streamable_http => same_tools_as_direct;
    json_bytes_pass_unchanged_sse, json_bytes_pass_unchanged_streamable_http => bytes_unchanged;
}

// ---------------------------------------------------------------------------
// 1-4: one client, server-everything over stdio
// ---------------------------------------------------------------------------

/// (1) The client's sampling callback answers server-everything's
/// `sampling/createMessage`, and its answer shows in the tool's result.
fn sampling(t: Transport) {
    let Some(v) = through_stdio_everything("sampling", t) else { return };
    assert_ok_showing(&v["call"], "trigger-sampling-request", &["LLM sampling result", "sampled-by-A", "model-of-A"]);
    let asked = list(&v["A"]["sampling"]);
    assert_eq!(asked.len(), 1, "the sampling callback must run exactly once: {asked:?}");
    assert!(
        asked[0]["text"].as_str().unwrap_or_default().contains("sdk10 sampling prompt"),
        "the callback did not get the prompt the tool was given: {asked:?}"
    );
    assert_eq!(asked[0]["max_tokens"], json!(42), "maxTokens must pass through: {asked:?}");
}

/// (2) Form-mode elicitation (`trigger-elicitation-request`) and URL mode
/// (`trigger-url-elicitation`): the callback sees the request, the tool
/// result shows the answer.
fn elicitation(t: Transport) {
    let Some(v) = through_stdio_everything("elicitation", t) else { return };
    assert_ok_showing(
        &v["form"],
        "trigger-elicitation-request",
        &["User provided the requested information", "- Name: Ada of A", "- Email: ada@example.com"],
    );
    assert_ok_showing(
        &v["url"],
        "trigger-url-elicitation",
        &[
            "User completed the URL elicitation flow",
            "Elicitation ID: sdk10-e1",
            "URL: https://example.com/sdk10-consent",
        ],
    );
    let seen = list(&v["A"]["elicitations"]);
    assert_eq!(seen.len(), 2, "the elicitation callback must run twice (form, then URL): {seen:?}");
    assert_eq!(seen[0]["mode"], json!("form"), "{seen:?}");
    let fields = strings(&seen[0]["fields"]);
    assert!(
        fields.contains(&"name".to_string()) && fields.contains(&"email".to_string()),
        "the form's requestedSchema did not arrive whole: {fields:?}"
    );
    assert_eq!(seen[1]["mode"], json!("url"), "{seen:?}");
    assert_eq!(seen[1]["url"], json!("https://example.com/sdk10-consent"), "{seen:?}");
    assert_eq!(seen[1]["elicitation_id"], json!("sdk10-e1"), "{seen:?}");
    assert_eq!(seen[1]["message"], json!("sdk10 url please"), "{seen:?}");
}

/// (3) `get-roots-list` shows the client's roots (from its list_roots
/// callback); after the client changes them and sends
/// `notifications/roots/list_changed`, it shows the new ones.
fn roots(t: Transport) {
    let Some(v) = through_stdio_everything("roots", t) else { return };
    assert_ok_showing(
        &v["first"],
        "get-roots-list",
        &["(2 total)", "sdk10-first", "file:///sdk10/first-root", "sdk10-second", "file:///sdk10/second-root"],
    );
    assert_ok_showing(&v["after_change"], "get-roots-list after roots/list_changed", &["(1 total)", "sdk10-changed"]);
    assert!(
        !text(&v["after_change"]).contains("sdk10-first"),
        "the old roots are still shown after list_changed: {}",
        text(&v["after_change"])
    );
    assert!(v["asked_after_change"].as_u64().unwrap_or(0) >= 1, "the backend never asked again: {v}");
    let logs = log_texts(&v["A"]);
    assert!(
        logs.iter().any(|l| l.contains("Roots updated: 2 root(s) received from client")),
        "server-everything's log about the roots it got did not reach the client: {logs:?}"
    );
}

/// (4) A client without the capability: the tool's request is refused at once
/// with an error naming the capability (no hang, no other client asked).
fn missing_capability(t: Transport) {
    let Some(v) = through_stdio_everything("nocaps", t) else { return };
    assert_fast_error(&v["sampling"], "trigger-sampling-request without sampling", &["'sampling' capability"]);
    assert_fast_error(
        &v["elicitation"],
        "trigger-elicitation-request without elicitation",
        &["'elicitation' capability"],
    );
    assert_fast_error(&v["url"], "trigger-url-elicitation without elicitation", &["'elicitation.url' capability"]);
    assert_fast_error(
        &v["form_only_url"],
        "trigger-url-elicitation with form-only elicitation",
        &["'elicitation.url' capability"],
    );
    assert!(list(&v["B"]["elicitations"]).is_empty(), "a form-only client was asked for a URL elicitation: {v}");
    // server-everything hides a failed roots/list; the demo backend's ask_client shows the answer it got.
    assert_ok_showing(
        &v["roots"],
        "demo__ask_client roots/list without roots",
        &["error: -32601", "'roots' capability"],
    );
    assert!(text(&v["roots"]).len() < 400, "{}", text(&v["roots"]));
}

// ---------------------------------------------------------------------------
// 5. Two sessions
// ---------------------------------------------------------------------------

/// Two sessions open at once (stdio server-everything), taking turns: each
/// sampling request goes to the session whose call made it, each log
/// message to the session whose request caused it, and a session that set
/// its level to `error` gets no `info`.
fn two_sessions_take_turns(t: Transport) {
    let Some(v) = through_stdio_everything("pair_sequential", t) else { return };
    for (me, other) in [("A", "B"), ("B", "A")] {
        let call = &v[format!("{me}_call")];
        assert_ok_showing(call, &format!("{me}'s trigger-sampling-request"), &[&format!("sampled-by-{me}")]);
        assert!(!text(call).contains(&format!("sampled-by-{other}")), "{me} got {other}'s answer: {}", text(call));
        let asked = list(&v[me]["sampling"]);
        assert_eq!(asked.len(), 1, "{me}'s sampling callback must run once, for its own call: {asked:?}");
        assert!(
            asked[0]["text"].as_str().unwrap_or_default().contains(&format!("asked-by-{me}")),
            "{me} was asked {other}'s sampling request: {asked:?}"
        );
    }
    let (a, b) = (log_texts(&v["A"]), log_texts(&v["B"]));
    assert!(a.iter().any(|l| l.contains("architecture.md")), "A's subscribe log did not reach A: {a:?}");
    assert!(b.iter().any(|l| l.contains("features.md")), "B's subscribe log did not reach B: {b:?}");
    assert!(!a.iter().any(|l| l.contains("features.md")), "B's log reached A: {a:?}");
    assert!(!b.iter().any(|l| l.contains("architecture.md")), "A's log reached B: {b:?}");
    assert!(
        !a.iter().chain(&b).any(|l| l.contains("structure.md")),
        "an info log of A's request arrived although A set its level to error: A {a:?}, B {b:?}"
    );
}

/// Session A has a call in flight on the stdio backend when B's tool asks
/// for sampling: the backend cannot say whose request it is, so it is
/// refused at once, with the advice to use per-session connections; nobody's
/// callback is asked, and A's call completes.
fn ambiguous_request_on_stdio(t: Transport) {
    let Some(v) = through_stdio_everything("pair_overlap", t) else { return };
    assert_ok_showing(&v["A_call"], "A's long-running operation", &["Long running operation completed"]);
    assert_fast_error(
        &v["B_call"],
        "B's sampling while A has a call in flight",
        &["sampling/createMessage", "\"per_session\": true"],
    );
    assert!(list(&v["A"]["sampling"]).is_empty(), "A was asked B's sampling request: {v}");
    assert!(list(&v["B"]["sampling"]).is_empty(), "B was asked although the request was refused: {v}");
}

/// A log message a stdio backend sends while serving B's request, when A
/// also has a call in flight there: on a shared connection the gateway
/// cannot tell whose it is, so it reaches no client (sending it to all
/// would show A B's data; requests in the same case are refused). With
/// `"per_session": true` each session has its own process, and B's log
/// reaches B, and only B.
fn ambiguous_log_on_stdio(t: Transport) {
    let Some(v) = through_stdio_everything("overlap_logs", t) else { return };
    assert_ok_showing(&v["A_call"], "A's long-running operation", &["Long running operation completed"]);
    let a = log_texts(&v["A"]);
    assert!(!a.iter().any(|l| l.contains("features.md")), "B's log reached A: {a:?}");
    let Some((python, mut everything)) = peers() else { return };
    everything["per_session"] = json!(true);
    let gw = Gateway::start(&stdio_config(&everything));
    let v = client(&python, &gw.url(t.path()), t.arg(), "overlap_logs", &[], Some(&gw));
    assert_ok_showing(&v["A_call"], "A's long-running operation", &["Long running operation completed"]);
    let (a, b) = (log_texts(&v["A"]), log_texts(&v["B"]));
    assert!(b.iter().any(|l| l.contains("features.md")), "per_session: B's subscribe log did not reach B: {b:?}");
    assert!(!a.iter().any(|l| l.contains("features.md")), "per_session: B's log reached A: {a:?}");
}

#[test]
fn a_log_of_an_ambiguous_call_reaches_only_its_session_sse() {
    ambiguous_log_on_stdio(Transport::Sse);
}

#[test]
fn a_log_of_an_ambiguous_call_reaches_only_its_session_streamable_http() {
    ambiguous_log_on_stdio(Transport::Streamable);
}

/// With a Streamable HTTP backend, the gateway knows which call a request
/// belongs to: two sessions' sampling requests outstanding at the same time
/// each reach their own client.
fn concurrent_on_streamable_backend(t: Transport) {
    let Some(python) = common::sdk_python() else { return };
    let Some(server) = EverythingServer::start("streamableHttp") else { return };
    let gw = Gateway::start(&remote_config(&server));
    let v = client(&python, &gw.url(t.path()), t.arg(), "pair_concurrent", &[], Some(&gw));
    for (me, other) in [("A", "B"), ("B", "A")] {
        let call = &v[format!("{me}_call")];
        assert_ok_showing(call, &format!("{me}'s trigger-sampling-request"), &[&format!("sampled-by-{me}")]);
        assert!(!text(call).contains(&format!("sampled-by-{other}")), "{me} got {other}'s answer: {}", text(call));
        let asked = list(&v[me]["sampling"]);
        assert_eq!(asked.len(), 1, "{me}'s sampling callback must run once: {asked:?}");
        assert!(
            asked[0]["text"].as_str().unwrap_or_default().contains(&format!("asked-by-{me}")),
            "{me} was asked {other}'s sampling request: {asked:?}"
        );
        assert_eq!(
            v[me]["rendezvous"],
            json!(true),
            "{me}'s callback never saw the other session's request outstanding at the same time: {v}"
        );
    }
}

// ---------------------------------------------------------------------------
// 6. Subscriptions
// ---------------------------------------------------------------------------

/// server-everything's simulated updates (`toggle-subscriber-updates`: one
/// round at once, then every 5 s) reach only the sessions subscribed to a
/// URI; after the last subscriber unsubscribes no update comes for it.
fn subscriptions(t: Transport) {
    let Some(v) = through_stdio_everything("subscribe", t) else { return };
    let x = "demo://resource/static/document/architecture.md".to_string();
    let y = "demo://resource/static/document/features.md".to_string();
    let p = &v["phases"];
    for n in 1..=3 {
        assert!(p[format!("timeout{n}")].is_null(), "phase {n}: an expected update never came: {p}");
    }
    let got = |phase: &str, who: &str| strings(&p[phase][who]);
    assert!(got("p1", "A").contains(&x), "A subscribed to x but got no update: {p}");
    assert!(!got("p1", "A").contains(&y), "A got an update of y, which only B subscribed to: {p}");
    assert!(got("p1", "B").contains(&y), "B subscribed to y but got no update: {p}");
    assert!(!got("p1", "B").contains(&x), "B got an update of x, which only A subscribed to: {p}");
    assert!(got("p2", "A").is_empty(), "A unsubscribed but still got updates: {p}");
    assert!(got("p2", "B").contains(&x) && got("p2", "B").contains(&y), "B holds x and y: {p}");
    assert!(got("p3", "A").is_empty(), "A unsubscribed but still got updates: {p}");
    assert!(got("p3", "B").contains(&y), "B still holds y: {p}");
    assert!(!got("p3", "B").contains(&x), "B unsubscribed from x but still got its updates: {p}");
}

// ---------------------------------------------------------------------------
// 9. A remote Streamable HTTP backend
// ---------------------------------------------------------------------------

/// server-everything over Streamable HTTP registers its capability-dependent
/// tools right after `initialize` and announces them with list_changed: the
/// gateway must list all of them, as a direct client that declares the same
/// capabilities sees them.
fn same_tools_as_direct(t: Transport) {
    let Some(python) = common::sdk_python() else { return };
    let Some(server) = EverythingServer::start("streamableHttp") else { return };
    let gw = Gateway::start(&remote_config(&server));
    let conditional =
        ["get-roots-list", "trigger-elicitation-request", "trigger-sampling-request", "trigger-url-elicitation"];
    let direct_url = server.url("/mcp");
    let mut args = vec!["--direct-url", direct_url.as_str()];
    for c in conditional {
        args.extend(["--wait-for", c]);
    }
    let v = client(&python, &gw.url(t.path()), t.arg(), "list_tools", &args, Some(&gw));
    let direct = strings(&v["direct"]);
    for c in conditional {
        assert!(direct.contains(&c.to_string()), "direct: server-everything did not list {c}: {direct:?}");
    }
    let through = strings(&v["tools"]);
    let missing: Vec<&String> = direct.iter().filter(|n| !through.contains(n)).collect();
    let extra: Vec<&String> = through.iter().filter(|n| !direct.contains(n)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "through the gateway {} tools, directly {}; missing {missing:?}, extra {extra:?}",
        through.len(),
        direct.len()
    );
}

// ---------------------------------------------------------------------------
// Raw Streamable HTTP
// ---------------------------------------------------------------------------

/// A Streamable HTTP session driven by hand.
struct RawSession {
    url: String,
    sid: String,
    version: &'static str,
}

impl RawSession {
    /// `initialize` at `version`, then `notifications/initialized`.
    fn open(gw: &Gateway, version: &'static str) -> RawSession {
        let url = gw.url("/mcp");
        let init = format!(
            r#"{{"jsonrpc":"2.0","id":0,"method":"initialize","params":{{"protocolVersion":"{version}","capabilities":{{}},"clientInfo":{{"name":"raw","version":"1"}}}}}}"#
        );
        let r = http(
            "POST",
            &url,
            &[("Content-Type", "application/json"), ("Accept", "application/json, text/event-stream")],
            Some(init.as_bytes()),
        );
        assert_eq!(r.status, 200, "initialize: {}", r.text());
        let sid = r.header("Mcp-Session-Id").unwrap_or_else(|| panic!("no Mcp-Session-Id: {r:?}")).to_owned();
        let s = RawSession { url, sid, version };
        let r = s.post(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
        assert_eq!(r.status, 202, "notifications/initialized: {}", r.text());
        s
    }

    fn headers(&self) -> Vec<(&str, &str)> {
        vec![
            ("Content-Type", "application/json"),
            ("Accept", "application/json, text/event-stream"),
            ("Mcp-Session-Id", &self.sid),
            ("MCP-Protocol-Version", self.version),
        ]
    }

    fn post(&self, body: &[u8]) -> Response {
        http("POST", &self.url, &self.headers(), Some(body))
    }

    /// A POST whose answer is an event stream.
    fn post_stream(&self, body: &[u8]) -> SseStream {
        SseStream::request("POST", &self.url, &self.headers(), Some(body))
            .unwrap_or_else(|r| panic!("POST was not answered with an event stream: {} {}", r.status, r.text()))
    }

    /// `GET /mcp` on a keep-alive connection (the harness's streams send
    /// `Connection: close`), read up to the end of its first event: the
    /// connection and what was read.
    fn get_keepalive(&self) -> (TcpStream, String) {
        let addr = self.url.trim_start_matches("http://").trim_end_matches("/mcp").to_owned();
        let mut c = TcpStream::connect(&addr).expect("connect");
        c.set_read_timeout(Some(Duration::from_secs(10))).expect("read timeout");
        let req = format!(
            "GET /mcp HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\nMcp-Session-Id: {}\r\n\
             MCP-Protocol-Version: {}\r\n\r\n",
            self.sid, self.version
        );
        c.write_all(req.as_bytes()).expect("write GET");
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        // The head, then the first event (a blank line ends it).
        while got.windows(4).filter(|w| w == b"\r\n\r\n").count() < 1
            || !String::from_utf8_lossy(&got).split("\r\n\r\n").nth(1).is_some_and(|b| b.contains("\n\n"))
        {
            let n = c.read(&mut buf).unwrap_or_else(|e| {
                panic!("GET /mcp sent no complete first event within 10 s ({e}): {}", String::from_utf8_lossy(&got))
            });
            assert!(n > 0, "GET /mcp closed early: {}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&got).into_owned();
        assert!(text.starts_with("HTTP/1.1 200"), "GET /mcp: {text}");
        (c, text)
    }

    /// `GET /mcp`, resuming after `last_event_id` if given.
    fn get(&self, last_event_id: Option<&str>) -> Result<SseStream, Response> {
        let mut h = vec![("Mcp-Session-Id", self.sid.as_str()), ("MCP-Protocol-Version", self.version)];
        if let Some(id) = last_event_id {
            h.push(("Last-Event-ID", id));
        }
        SseStream::open(&self.url, &h)
    }
}

/// Waits (bounded) for an event whose data contains `needle`; returns its data.
fn wait_data(s: &mut SseStream, needle: &str, timeout: Duration) -> Option<String> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        let ev = s.next_event_full(left)?;
        if ev.data.contains(needle) {
            return Some(ev.data);
        }
    }
}

const LIST_CHANGED: &str = "notifications/tools/list_changed";

/// (7) The session's GET stream dropped and reopened at once works, and so
/// does a new GET while the old connection still looks open (a client that
/// lost its network and reconnects): the new stream replaces the stale one,
/// which the gateway closes, and notifications arrive on the new one.
#[test]
fn get_stream_reopened_at_once_gets_the_notifications() {
    let gw = Gateway::start(&json!({ "mcpServers": { "demo": demo_backend("demo", &[]) } }));
    let s = RawSession::open(&gw, "2025-11-25");
    let add_tool = |id: u32| {
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"add_tool","arguments":{{}}}}}}"#
        );
        let mut r = s.post_stream(body.as_bytes());
        let answer = wait_data(&mut r, &format!(r#""id":{id}"#), Duration::from_secs(10));
        assert!(answer.is_some_and(|a| a.contains("extra_")), "add_tool did not answer");
    };
    let first = s.get(None).unwrap_or_else(|r| panic!("GET /mcp: {} {}", r.status, r.text()));
    drop(first);
    let mut second = s.get(None).unwrap_or_else(|r| {
        panic!("GET /mcp reopened right after the first was dropped: {} {}\n{}", r.status, r.text(), gw.log())
    });
    add_tool(1);
    assert!(
        wait_data(&mut second, LIST_CHANGED, Duration::from_secs(10)).is_some(),
        "no tools/list_changed on the reopened GET stream\n{}",
        gw.log()
    );
    // A new GET while the previous connection is still open.
    let mut third = s.get(None).unwrap_or_else(|r| {
        panic!(
            "GET /mcp while a stale stream is still open must replace it, got {} {}\n{}",
            r.status,
            r.text(),
            gw.log()
        )
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while !second.ended() && Instant::now() < deadline {
        let _ = second.next_event(Duration::from_millis(200));
    }
    assert!(second.ended(), "the replaced GET stream was not closed by the gateway");
    add_tool(2);
    assert!(
        wait_data(&mut third, LIST_CHANGED, Duration::from_secs(10)).is_some(),
        "no tools/list_changed on the GET stream that replaced a stale one\n{}",
        gw.log()
    );
}

/// A notification sent while the session's GET stream (2025-11-25, primed
/// with `retry: 1000`, so clients reconnect after a drop) is disconnected is
/// kept: the client that resumes with `Last-Event-ID` gets it.
#[test]
fn get_stream_resumed_with_last_event_id_gets_what_was_sent_meanwhile() {
    let Some(everything) = everything_backend() else { return };
    let gw = Gateway::start(&json!({ "mcpServers": { "everything": everything } }));
    let s = RawSession::open(&gw, "2025-11-25");
    let call = |id: u32, method: &str, params: &str| {
        let body = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}","params":{params}}}"#);
        let mut r = s.post_stream(body.as_bytes());
        let answer = wait_data(&mut r, &format!(r#""id":{id}"#), Duration::from_secs(10));
        assert!(answer.as_deref().is_some_and(|a| a.contains("result")), "{method}: {answer:?}\n{}", gw.log());
    };
    // Like real clients (httpx, undici), a keep-alive connection: the
    // gateway sees it close at once.
    let (first, priming) = s.get_keepalive();
    let last = priming
        .lines()
        .find_map(|l| l.strip_prefix("id: "))
        .unwrap_or_else(|| panic!("the GET stream's priming event has no id: {priming:?}"))
        .to_owned();
    let uri = "demo://resource/static/document/architecture.md";
    call(1, "resources/subscribe", &format!(r#"{{"uri":"{uri}"}}"#));
    drop(first);
    // The gateway's one reactor thread has seen the drop once two requests
    // sent after it were answered one after the other.
    for id in [2, 3] {
        let r = s.post(format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"ping"}}"#).as_bytes());
        assert_eq!(r.status, 200, "ping: {}", r.text());
    }
    // server-everything writes the first update before this call's answer
    // (the next ones come every 5 s): once the call is answered, the gateway
    // has routed the update to this session.
    call(4, "tools/call", r#"{"name":"toggle-subscriber-updates","arguments":{}}"#);
    let mut resumed = s.get(Some(&last)).unwrap_or_else(|r| panic!("resume: {} {}\n{}", r.status, r.text(), gw.log()));
    // At once: not the next round, 5 s later.
    let got = wait_data(&mut resumed, "notifications/resources/updated", Duration::from_secs(2));
    assert!(
        got.is_some_and(|d| d.contains(uri)),
        "the resources/updated sent while the GET stream was down was not replayed after Last-Event-ID {last}\n{}",
        gw.log()
    );
}

/// The progress values and the final answer among `events` (data, id).
fn progress_and_answer(events: &[(String, Option<String>)]) -> (Vec<u64>, Option<Value>) {
    let mut progress = Vec::new();
    let mut answer = None;
    for (data, _) in events {
        let Ok(m) = serde_json::from_str::<Value>(data) else { continue };
        if m["method"] == json!("notifications/progress") {
            assert_eq!(m["params"]["progressToken"], json!("tok-8"), "the client's own token must come back: {m}");
            progress.push(m["params"]["progress"].as_u64().unwrap_or(0));
        } else if m["id"] == json!(8) {
            answer = Some(m);
        }
    }
    (progress, answer)
}

/// Every event until the stream ends (bounded).
fn drain(s: &mut SseStream, timeout: Duration) -> Vec<(String, Option<String>)> {
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match s.next_event_full(left) {
            Some(ev) => out.push((ev.data, ev.id)),
            None => break,
        }
    }
    out
}

/// (8) A tools/call's response stream (2025-11-25, so streamed from the start
/// with a priming event) dropped after two progress events and resumed with
/// `GET` + `Last-Event-ID`: the rest of the progress and the answer arrive.
/// Once the call is done, a resume from an earlier event replays what
/// followed it and ends.
#[test]
fn response_stream_resumes_with_last_event_id() {
    let Some(everything) = everything_backend() else { return };
    let gw = Gateway::start(&json!({ "mcpServers": { "everything": everything } }));
    let s = RawSession::open(&gw, "2025-11-25");
    let call = br#"{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"trigger-long-running-operation","arguments":{"duration":2,"steps":5},"_meta":{"progressToken":"tok-8"}}}"#;
    let mut stream = s.post_stream(call);
    let priming = stream.next_event_full(Duration::from_secs(10)).expect("a priming event");
    let priming_id = priming.id.clone().unwrap_or_default();
    assert!(priming.data.is_empty() && priming_id.ends_with("-0"), "not a priming event: {priming:?}");
    assert_eq!(stream.retry(), Some(1000), "the priming event must carry retry: 1000");
    let stream_no = priming_id.trim_end_matches("-0").to_owned();
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let ev = stream.next_event_full(Duration::from_secs(10)).expect("progress before the drop");
        seen.push((ev.data, ev.id));
    }
    let (before, answer) = progress_and_answer(&seen);
    assert_eq!(before, vec![1, 2], "two progress events before the drop: {seen:?}");
    assert!(answer.is_none());
    let last = seen[1].1.clone().expect("an event id");
    assert_eq!(last, format!("{stream_no}-2"), "event ids are <stream>-<n>: {seen:?}");
    drop(stream);

    let mut resumed = s.get(Some(&last)).unwrap_or_else(|r| panic!("resume: {} {}\n{}", r.status, r.text(), gw.log()));
    let rest = drain(&mut resumed, Duration::from_secs(15));
    let (after, answer) = progress_and_answer(&rest);
    assert_eq!(after, vec![3, 4, 5], "the resumed stream must carry the progress missed and to come: {rest:?}");
    let answer = answer.unwrap_or_else(|| panic!("no answer on the resumed stream: {rest:?}\n{}", gw.log()));
    assert!(
        answer["result"]["content"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .contains("Long running operation completed"),
        "{answer}"
    );
    let ids: Vec<String> = rest.iter().filter_map(|(_, id)| id.clone()).collect();
    assert_eq!(ids.first(), Some(&format!("{stream_no}-3")), "the resume starts right after {last}: {ids:?}");
    assert!(resumed.ended(), "the resumed stream must end after the answer");

    // The call is done: a resume from event 1 replays 2..5 and the answer.
    let mut again = s.get(Some(&format!("{stream_no}-1"))).unwrap_or_else(|r| panic!("{} {}", r.status, r.text()));
    let replay = drain(&mut again, Duration::from_secs(10));
    let (progress, answer) = progress_and_answer(&replay);
    assert_eq!(progress, vec![2, 3, 4, 5], "replay after the end: {replay:?}");
    assert!(answer.is_some(), "the replay must include the answer: {replay:?}");
    assert!(again.ended(), "a replay of a finished stream must end");
}

/// A tools/call's response stream holds its priming event only briefly
/// for the answer: a quick call gets priming event, answer and end
/// together; a call that takes a second gets the priming event long
/// before its answer, so it can still be resumed.
#[test]
fn a_call_stream_sends_its_priming_event_early_and_a_quick_answer_with_it() {
    let gw = Gateway::start(&json!({ "mcpServers": { "alpha": demo_backend("alpha", &[]) } }));
    let s = RawSession::open(&gw, "2025-11-25");

    let mut quick = s.post_stream(
        br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hi"}}}"#,
    );
    let priming = quick.next_event_full(Duration::from_secs(10)).expect("a priming event");
    assert!(priming.data.is_empty() && priming.id.as_deref().is_some_and(|i| i.ends_with("-0")), "{priming:?}");
    let answer = quick.next_event_full(Duration::from_secs(10)).expect("the answer");
    assert!(answer.data.contains(r#""text":"hi""#), "{answer:?}");
    assert!(quick.next_event_full(Duration::from_secs(10)).is_none() && quick.ended(), "the stream must end");

    let started = Instant::now();
    let mut slow = s.post_stream(
        br#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"slow","arguments":{"steps":4,"interval_ms":250}}}"#,
    );
    let priming = slow.next_event_full(Duration::from_secs(10)).expect("a priming event");
    let primed_after = started.elapsed();
    assert!(priming.data.is_empty(), "{priming:?}");
    let answer = slow.next_event_full(Duration::from_secs(10)).expect("the answer");
    let answered_after = started.elapsed();
    assert!(answer.data.contains(r#""id":2"#), "{answer:?}");
    assert!(
        answered_after.saturating_sub(primed_after) >= Duration::from_millis(400),
        "the priming event waited for the answer: primed after {primed_after:?}, answered after {answered_after:?}"
    );
}

// ---------------------------------------------------------------------------
// 10. Bytes
// ---------------------------------------------------------------------------

/// 100 digits.
fn big() -> String {
    format!("1{}", "234567890".repeat(11))
}

/// Every JSON escape (`\" \\ \/ \b \f \n \r \t`, `\u0000`-`\u001f` in lower
/// case and two in upper case), a surrogate pair, and raw non-ASCII
/// characters of 2, 3 and 4 UTF-8 bytes.
fn escapes() -> String {
    let controls: String = (0..0x20).map(|i| format!("\\u{i:04x}")).collect();
    format!(r#"q\" b\\ s\/ \b\f\n\r\t {controls} \u001F\u000A \ud83d\ude00 é€😀"#)
}

/// What the raw backend answers in `structuredContent` (given to it in
/// its environment), with odd spacing that a re-encoder would remove.
fn result_raw() -> String {
    let big = big();
    format!(r#"{{"big":{big},"neg":-{big},"s":"{}","spaced" : [ 1 ,	2 ]}}"#, escapes())
}

/// The arguments the client sends.
fn arguments_raw() -> String {
    let big = big();
    format!(r#"{{ "n" : {big}, "neg":-{big} ,"s":"{}", "nested":{{"e":[ ],"f":-0.0e+0}} }}"#, escapes())
}

fn call_body() -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{{"name":"raw_echo","arguments":{}}}}}"#,
        arguments_raw()
    )
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2).filter_map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()).collect()
}

/// The client got the backend's bytes, and the backend got the client's.
fn check_bytes(what: &str, answer: &str) {
    let want = format!(r#""structuredContent":{}"#, result_raw());
    assert!(
        answer.contains(&want),
        "{what}: the backend's result did not reach the client byte for byte.\nexpected to contain:\n{want}\ngot:\n{answer}"
    );
    let v: Value = serde_json::from_str(answer).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {answer}"));
    let hex = v["result"]["content"][0]["text"].as_str().unwrap_or_else(|| panic!("{what}: no text: {answer}"));
    let received =
        String::from_utf8(unhex(hex)).unwrap_or_else(|e| panic!("{what}: the backend got invalid UTF-8: {e}"));
    let sent = format!(r#""arguments":{}"#, arguments_raw());
    assert!(
        received.contains(&sent),
        "{what}: the client's arguments did not reach the backend byte for byte.\nsent:\n{sent}\nthe backend got:\n{received}"
    );
}

fn bytes_unchanged(t: Transport) {
    let Some(python) = common::sdk_python() else { return };
    let backend = json!({
        "command": python,
        "args": [py_script("raw_backend.py")],
        "env": { "RAW_RESULT": result_raw() },
    });
    let gw = Gateway::start(&json!({ "mcpServers": { "raw": backend } }));
    let body = call_body();
    match t {
        Transport::Streamable => {
            // 2025-06-18: a JSON answer.
            let s = RawSession::open(&gw, "2025-06-18");
            let r = s.post(body.as_bytes());
            assert_eq!(r.status, 200, "{}", r.text());
            check_bytes("POST /mcp (2025-06-18, JSON)", &String::from_utf8(r.body).expect("UTF-8"));
            // 2025-11-25: the call is answered on an event stream.
            let s = RawSession::open(&gw, "2025-11-25");
            let mut stream = s.post_stream(body.as_bytes());
            let data = wait_data(&mut stream, r#""id":7"#, Duration::from_secs(10))
                .unwrap_or_else(|| panic!("no answer on the POST stream\n{}", gw.log()));
            check_bytes("POST /mcp (2025-11-25, event stream)", &data);
        }
        Transport::Sse => {
            let mut stream = SseStream::open(&gw.url("/sse"), &[]).unwrap_or_else(|r| panic!("GET /sse: {}", r.status));
            let endpoint = stream.next_named("endpoint", Duration::from_secs(10)).expect("endpoint event");
            let post_url = gw.url(&endpoint);
            let post = |b: &[u8]| {
                let r = http("POST", &post_url, &[("Content-Type", "application/json")], Some(b));
                assert_eq!(r.status, 202, "POST {post_url}: {}", r.text());
            };
            post(br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2024-11-05","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#);
            wait_data(&mut stream, r#""id":1"#, Duration::from_secs(10)).expect("initialize answer");
            post(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
            post(body.as_bytes());
            let data = wait_data(&mut stream, r#""id":7"#, Duration::from_secs(10))
                .unwrap_or_else(|| panic!("no answer on the /sse stream\n{}", gw.log()));
            check_bytes("/sse", &data);
        }
    }
}
