//! The management API against the real binary: the auth × scope matrix over
//! every endpoint, uniform errors, the events cursor and stream, /metrics
//! by the text format's rules, the audit log, TLS, the listener binding
//! rules, and a client process that comes and goes while the server stays.

#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

mod common;

use common::{
    default_port_setup, demo_backend, http, post_json, run_bounded, Gateway, PrivateNet, Response, SseStream, TempDir,
    GATEWAY_BIN,
};
use serde_json::{json, Value};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const READ: &str = "read-token-5f0c1d2e3b4a";
const ADMIN: &str = "admin-token-9a8b7c6d5e4f";
const T: Duration = Duration::from_secs(10);

fn sha256_hex(s: &str) -> String {
    mcp_sentinel::util::hex(&mcp_sentinel::manage::auth::sha256(s.as_bytes()))
}

/// A config with a read token (by hash) and an admin token (from a file).
fn with_tokens(dir: &TempDir, mut config: Value, manage_extra: Value) -> Value {
    let admin_file = dir.path.join("admin.token");
    std::fs::write(&admin_file, format!("{ADMIN}\n")).unwrap();
    let mut manage = json!({
        "tokens": [
            {"name": "ro", "scopes": ["read"], "sha256": sha256_hex(READ)},
            {"name": "ops", "scopes": ["read", "admin"], "token_file": admin_file},
        ],
        "audit_log": dir.path.join("audit.jsonl"),
    });
    for (k, v) in manage_extra.as_object().unwrap() {
        manage[k] = v.clone();
    }
    config["manage"] = manage;
    config
}

fn one_demo() -> Value {
    json!({"mcpServers": {"alpha": demo_backend("alpha", &[])}})
}

fn base(gw: &Gateway) -> String {
    let addr = gw.manage_addr().unwrap_or_else(|| panic!("no management listener in the log:\n{}", gw.log()));
    format!("http://{addr}")
}

fn auth(token: &str) -> String {
    format!("Bearer {token}")
}

fn get(url: &str, token: Option<&str>) -> Response {
    let h = token.map(auth);
    let headers: Vec<(&str, &str)> = h.iter().map(|v| ("Authorization", v.as_str())).collect();
    http("GET", url, &headers, None)
}

fn post(url: &str, token: Option<&str>) -> Response {
    let h = token.map(auth);
    let headers: Vec<(&str, &str)> = h.iter().map(|v| ("Authorization", v.as_str())).collect();
    http("POST", url, &headers, Some(b""))
}

fn assert_error(r: &Response, status: u16, code: &str) {
    assert_eq!(r.status, status, "{}", r.text());
    let v = r.json();
    assert_eq!(v["error"]["code"], code, "{v}");
    assert!(v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    assert_eq!(v.as_object().map(|o| o.len()), Some(1), "only `error`: {v}");
}

/// The generated admin token of a gateway started with no tokens configured.
fn generated_token(gw: &Gateway) -> String {
    let port = gw.manage_addr().unwrap().port();
    let path = gw.state_home().join("mcp-sentinel").join(format!("manage-{port}.token"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).trim().to_owned()
}

#[test]
fn auth_and_scope_matrix_over_every_endpoint() {
    let dir = TempDir::new("matrix");
    let gw = Gateway::start(&with_tokens(&dir, one_demo(), json!({})));
    let b = base(&gw);
    // (method, path, needs admin, status for an admin token)
    let endpoints: [(&str, &str, bool, u16); 13] = [
        ("GET", "/manage/v1/health", false, 200),
        ("GET", "/manage/v1/status", false, 200),
        ("GET", "/manage/v1/backends", false, 200),
        ("GET", "/manage/v1/backends/alpha", false, 200),
        ("GET", "/manage/v1/capabilities", false, 200),
        ("GET", "/manage/v1/capabilities?backend=alpha", false, 200),
        ("GET", "/manage/v1/events", false, 200),
        ("GET", "/manage/v1/events/stream", false, 200),
        ("GET", "/metrics", false, 200),
        ("POST", "/manage/v1/reload", true, 200),
        ("POST", "/manage/v1/backends/alpha/reconnect", true, 200),
        // 404 unless manage.allow_shutdown: the endpoint does not exist.
        ("POST", "/manage/v1/shutdown", true, 404),
        ("GET", "/manage/v1/no-such-endpoint", false, 404),
    ];
    for (method, path, admin_only, admin_status) in endpoints {
        let url = format!("{b}{path}");
        let call = |token: Option<&str>| -> Response {
            if path.ends_with("/stream") {
                let h = token.map(auth);
                let headers: Vec<(&str, &str)> = h.iter().map(|v| ("Authorization", v.as_str())).collect();
                match SseStream::open(&url, &headers) {
                    Ok(s) => Response { status: s.status, headers: s.headers.clone(), body: Vec::new() },
                    Err(r) => r,
                }
            } else if method == "POST" {
                post(&url, token)
            } else {
                get(&url, token)
            }
        };
        for (token, label) in [(None, "no token"), (Some("wrong-token"), "wrong token")] {
            let r = call(token);
            assert_error(&r, 401, "unauthorized");
            let www = r.header("WWW-Authenticate").unwrap_or_else(|| panic!("{method} {path} {label}: no challenge"));
            assert!(www.starts_with("Bearer"), "{www}");
        }
        let r = call(Some(READ));
        if admin_only {
            assert_error(&r, 403, "forbidden");
            assert!(r.header("WWW-Authenticate").is_none(), "403 is not a challenge");
        } else {
            assert_eq!(r.status, admin_status, "{method} {path} with the read token: {}", r.text());
        }
        let r = call(Some(ADMIN));
        assert_eq!(r.status, admin_status, "{method} {path} with the admin token: {}", r.text());
    }

    // Every refusal and admin action is audited, without the token itself.
    let audit_path = dir.path.join("audit.jsonl");
    let text = std::fs::read_to_string(&audit_path).unwrap();
    assert!(!text.contains(READ) && !text.contains(ADMIN) && !text.contains("wrong-token"), "{text}");
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    for l in &lines {
        let keys: Vec<&str> = l.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["time", "event", "token_name", "remote_addr", "method", "path", "status"], "{l}");
        assert!(l["remote_addr"].as_str().unwrap().starts_with("127.0.0.1:"), "{l}");
    }
    let failed = lines.iter().filter(|l| l["event"] == "auth_failed").count();
    // 13 endpoints × 2 (no/wrong token) + 3 admin endpoints refused to the read token.
    assert_eq!(failed, 13 * 2 + 3, "{text}");
    let forbidden = lines.iter().find(|l| l["status"] == 403).unwrap();
    assert_eq!(forbidden["token_name"], "ro");
    let actions: Vec<(String, u64)> = lines
        .iter()
        .filter(|l| l["event"] == "admin_action")
        .map(|l| (l["path"].as_str().unwrap().to_owned(), l["status"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        actions,
        [
            ("/manage/v1/reload".to_owned(), 200),
            ("/manage/v1/backends/alpha/reconnect".to_owned(), 200),
            ("/manage/v1/shutdown".to_owned(), 404)
        ]
    );
    assert!(lines.iter().filter(|l| l["event"] == "admin_action").all(|l| l["token_name"] == "ops"));
    // …and mirrored in the event ring.
    let events = get(&format!("{b}/manage/v1/events?limit=1000"), Some(READ)).json();
    let kinds: Vec<&str> = events["events"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"manage.auth_failed") && kinds.contains(&"manage.admin_action"), "{kinds:?}");
}

#[test]
fn read_endpoints_answer_the_contract_shapes() {
    let dir = TempDir::new("shapes");
    let config = json!({"mcpServers": {
        "alpha": demo_backend("alpha", &[]),
        "beta": {"command": common::DEMO_BIN, "args": ["--name", "beta"], "prefix": "beta", "env": {"API_KEY": "s3cret"}},
        "off": {"command": common::DEMO_BIN, "enabled": false},
    }});
    let gw = Gateway::start(&with_tokens(&dir, config, json!({})));
    let b = base(&gw);

    let h = get(&format!("{b}/manage/v1/health"), Some(READ)).json();
    assert_eq!(h["status"], "ok");
    assert_eq!(h["version"], env!("CARGO_PKG_VERSION"));

    let s = get(&format!("{b}/manage/v1/status"), Some(READ)).json();
    assert_eq!(s["api_version"], "v1");
    assert_eq!(s["server"]["state"], "ready");
    assert_eq!(s["server"]["pid"], gw.pid());
    assert_eq!(s["server"]["revision"], 1);
    assert_eq!(s["server"]["config_path"], gw.config_path.display().to_string());
    assert_eq!(s["listen"]["mcp"], gw.mcp_addr.to_string());
    assert_eq!(s["listen"]["manage"], b.trim_start_matches("http://"));
    assert_eq!(s["backends"], json!({"total": 3, "connected": 2, "connecting": 0, "failed": 0, "disabled": 1}));
    assert_eq!(s["capabilities"]["prompts"], 2);
    assert_eq!(s["sessions"], json!({"active": 0, "sse": 0, "streamable_http": 0}));
    assert!(s["events"]["last_id"].as_u64().unwrap() > 0);

    let list = get(&format!("{b}/manage/v1/backends"), Some(READ)).json();
    let names: Vec<&str> = list["backends"].as_array().unwrap().iter().map(|v| v["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["alpha", "beta", "off"]);
    let beta = get(&format!("{b}/manage/v1/backends/beta"), Some(READ)).json();
    assert_eq!(beta["type"], "stdio");
    assert_eq!(beta["state"], "connected");
    assert!(beta["pid"].as_u64().is_some());
    assert_eq!(beta["server_info"]["name"], "mcp-sentinel-demo-beta");
    assert!(!beta["endpoint"].as_str().unwrap().contains("s3cret"), "{beta}");
    assert_eq!(beta["capabilities"]["tools"], list["backends"][0]["capabilities"]["tools"]);
    let off = &list["backends"][2];
    assert_eq!((off["state"].as_str(), off["pid"].as_u64()), (Some("disabled"), None));

    let caps = get(&format!("{b}/manage/v1/capabilities"), Some(READ)).json();
    let tool = caps["tools"].as_array().unwrap().iter().find(|t| t["name"] == "beta__echo").unwrap();
    assert_eq!(tool["backend"], "beta");
    assert_eq!(tool["original_name"], "echo");
    assert_eq!(tool["input_schema"]["type"], "object");
    let res = caps["resources"].as_array().unwrap().iter().find(|r| r["uri"] == "demo://alpha/readme").unwrap();
    assert_eq!((res["backend"].as_str(), res["mime_type"].as_str()), (Some("alpha"), Some("text/plain")));
    assert!(caps["resource_templates"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["uri_template"] == "demo://beta/items/{id}"));
    let greet = caps["prompts"].as_array().unwrap().iter().find(|p| p["name"] == "greet").unwrap();
    assert_eq!(greet["arguments"], json!([{"name": "name", "description": "Who to greet", "required": true}]));
    assert!(caps["conflicts"].is_array());
    let only = get(&format!("{b}/manage/v1/capabilities?backend=beta"), Some(READ)).json();
    assert!(only["tools"].as_array().unwrap().iter().all(|t| t["backend"] == "beta"));
    assert!(!only["tools"].as_array().unwrap().is_empty());
    assert!(only["prompts"].as_array().unwrap().iter().all(|p| p["backend"] == "beta"));
}

#[test]
fn errors_are_uniform_and_bounded() {
    let dir = TempDir::new("errors");
    let config =
        json!({"mcpServers": {"alpha": demo_backend("alpha", &[]), "off": {"command": "x", "enabled": false}}});
    let gw = Gateway::start(&with_tokens(&dir, config, json!({})));
    let b = base(&gw);
    assert_error(&get(&format!("{b}/manage/v1/nope"), Some(READ)), 404, "not_found");
    assert_error(&get(&format!("{b}/manage/v2/status"), Some(READ)), 404, "not_found");
    assert_error(&get(&format!("{b}/manage/v1/backends/ghost"), Some(READ)), 404, "not_found");
    assert_error(&get(&format!("{b}/manage/v1/capabilities?backend=ghost"), Some(READ)), 404, "not_found");
    assert_error(&post(&format!("{b}/manage/v1/backends/ghost/reconnect"), Some(ADMIN)), 404, "not_found");
    assert_error(&post(&format!("{b}/manage/v1/backends/off/reconnect"), Some(ADMIN)), 409, "conflict");
    let r = post(&format!("{b}/manage/v1/status"), Some(ADMIN));
    assert_error(&r, 405, "method_not_allowed");
    assert_eq!(r.header("Allow"), Some("GET"));
    let r = get(&format!("{b}/manage/v1/reload"), Some(ADMIN));
    assert_error(&r, 405, "method_not_allowed");
    assert_eq!(r.header("Allow"), Some("POST"));
    let r = http("DELETE", &format!("{b}/manage/v1/backends/alpha"), &[("Authorization", &auth(ADMIN))], None);
    assert_error(&r, 405, "method_not_allowed");
    for q in ["limit=abc", "limit=0", "after=-1", "after=x"] {
        assert_error(&get(&format!("{b}/manage/v1/events?{q}"), Some(READ)), 400, "bad_request");
    }
    let big = vec![b'x'; 100 * 1024];
    let r = http("POST", &format!("{b}/manage/v1/reload"), &[("Authorization", &auth(ADMIN))], Some(&big));
    assert_error(&r, 413, "payload_too_large");
    // A garbage request line gets a JSON 400 and the listener carries on.
    let mut s = std::net::TcpStream::connect(gw.manage_addr().unwrap()).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    std::io::Write::write_all(&mut s, b"NONSENSE\r\n\r\n").unwrap();
    let mut out = String::new();
    let _ = std::io::Read::read_to_string(&mut s, &mut out);
    assert!(out.starts_with("HTTP/1.1 400") && out.contains("\"bad_request\""), "{out}");
    assert_eq!(get(&format!("{b}/manage/v1/health"), Some(READ)).status, 200);
}

#[test]
fn events_page_by_cursor_without_gaps_and_stream_resumes() {
    let gw = Gateway::start(&one_demo());
    let token = generated_token(&gw);
    let b = base(&gw);
    // Make some events: each reconnect adds several.
    for _ in 0..3 {
        assert_eq!(post(&format!("{b}/manage/v1/backends/alpha/reconnect"), Some(&token)).status, 200);
    }
    let all = get(&format!("{b}/manage/v1/events?limit=1000"), Some(&token)).json();
    let ids: Vec<u64> = all["events"].as_array().unwrap().iter().map(|e| e["id"].as_u64().unwrap()).collect();
    assert!(ids.len() >= 6, "{all}");
    assert!(ids.windows(2).all(|w| w[1] == w[0] + 1), "ids increase by one: {ids:?}");
    assert_eq!(all["last_id"].as_u64(), ids.last().copied());
    for e in all["events"].as_array().unwrap() {
        assert!(["debug", "info", "warn", "error"].contains(&e["level"].as_str().unwrap()), "{e}");
        assert!(e["time"].as_str().unwrap().ends_with('Z'), "{e}");
    }
    // Paging by two with the last id seen as the cursor: the same ids, once each.
    let mut seen = Vec::new();
    let mut after = 0;
    loop {
        let page = get(&format!("{b}/manage/v1/events?after={after}&limit=2"), Some(&token)).json();
        let evs = page["events"].as_array().unwrap();
        assert!(evs.len() <= 2);
        let Some(last) = evs.last() else { break };
        after = last["id"].as_u64().unwrap();
        seen.extend(evs.iter().map(|e| e["id"].as_u64().unwrap()));
        if after >= *ids.last().unwrap() {
            break;
        }
    }
    assert_eq!(&seen[..ids.len()], &ids[..]);
    let clamp = get(&format!("{b}/manage/v1/events?limit=5000"), Some(&token));
    assert_eq!(clamp.status, 200);

    // The stream resumes after Last-Event-ID, then delivers new events live.
    let resume_from = ids[2];
    let h = auth(&token);
    let mut s = SseStream::open(
        &format!("{b}/manage/v1/events/stream"),
        &[("Authorization", &h), ("Last-Event-ID", &resume_from.to_string())],
    )
    .unwrap_or_else(|r| panic!("stream refused: {} {}", r.status, r.text()));
    assert_eq!(s.header("Content-Type"), Some("text/event-stream"));
    let first = s.next_event_full(T).expect("a replayed event");
    assert_eq!(first.event, "event");
    assert_eq!(first.id.as_deref(), Some(ids[3].to_string().as_str()));
    let ev: Value = serde_json::from_str(&first.data).unwrap();
    assert_eq!(ev["id"].as_u64(), Some(ids[3]));
    // Drain the replay, then cause a new event and see it arrive.
    let mut last = ids[3];
    while last < *ids.last().unwrap() {
        last = s.next_event_full(T).expect("replay").id.unwrap().parse().unwrap();
    }
    assert_eq!(post(&format!("{b}/manage/v1/reload"), Some(&token)).status, 200);
    let deadline = Instant::now() + T;
    let mut kinds = Vec::new();
    while Instant::now() < deadline && !kinds.contains(&"config.reloaded".to_owned()) {
        let e = s.next_event_full(T).expect("a live event");
        let id: u64 = e.id.unwrap().parse().unwrap();
        assert_eq!(id, last + 1, "no gap, no duplicate");
        last = id;
        kinds.push(serde_json::from_str::<Value>(&e.data).unwrap()["kind"].as_str().unwrap().to_owned());
    }
    assert!(kinds.contains(&"config.reloaded".to_owned()), "{kinds:?}");
}

/// One sample: metric name, labels, value.
type Sample = (String, Vec<(String, String)>, f64);

/// Checks Prometheus text format 0.0.4 rules that a scraper relies on.
fn check_prometheus_text(text: &str) -> Vec<Sample> {
    let mut typed: std::collections::HashMap<String, String> = Default::default();
    let mut samples = Vec::new();
    let name_ok = |n: &str| {
        let mut c = n.chars();
        c.next().is_some_and(|f| f.is_ascii_alphabetic() || f == '_' || f == ':')
            && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == ':')
    };
    assert!(text.ends_with('\n'), "ends with a newline");
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind), "{line}");
            assert!(typed.insert(name.to_owned(), kind.to_owned()).is_none(), "one TYPE per family: {line}");
            continue;
        }
        if line.starts_with("# HELP ") || line.is_empty() {
            continue;
        }
        assert!(!line.starts_with('#'), "unknown comment {line}");
        let (series, value) = line.rsplit_once(' ').unwrap();
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value in {line}")),
        };
        let (name, labels) = match series.split_once('{') {
            None => (series.to_owned(), Vec::new()),
            Some((n, rest)) => {
                let body = rest.strip_suffix('}').unwrap_or_else(|| panic!("unclosed labels: {line}"));
                let labels = body
                    .split("\",")
                    .map(|kv| {
                        let (k, v) = kv.split_once("=\"").unwrap_or_else(|| panic!("bad label {kv} in {line}"));
                        assert!(name_ok(k), "label name {k}");
                        (k.to_owned(), v.trim_end_matches('"').to_owned())
                    })
                    .collect();
                (n.to_owned(), labels)
            }
        };
        assert!(name_ok(&name), "metric name {name}");
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| typed.get(*f).is_some_and(|k| k == "histogram")))
            .unwrap_or(&name)
            .to_owned();
        assert!(typed.contains_key(&family), "sample before its TYPE line: {line}");
        if typed[&family] == "counter" {
            assert!(name.ends_with("_total") && value >= 0.0, "{line}");
        }
        samples.push((name, labels, value));
    }
    samples
}

#[test]
fn metrics_follow_the_prometheus_text_format() {
    let dir = TempDir::new("metrics");
    let gw = Gateway::start(&with_tokens(&dir, one_demo(), json!({})));
    let b = base(&gw);
    // A few calls through a Streamable HTTP session, one of them an error.
    let init = common::mcp_initialize(&gw.url("/mcp"));
    let sid = init.header("Mcp-Session-Id").unwrap().to_owned();
    let hs = [
        ("Accept", "application/json, text/event-stream"),
        ("Mcp-Session-Id", sid.as_str()),
        ("MCP-Protocol-Version", "2025-06-18"),
    ];
    assert_eq!(
        post_json(&gw.url("/mcp"), &hs, &json!({"jsonrpc":"2.0","method":"notifications/initialized"})).status,
        202
    );
    for i in 1..=5 {
        let r = post_json(
            &gw.url("/mcp"),
            &hs,
            &json!({"jsonrpc":"2.0","id":i,"method":"tools/call","params":{"name":"echo","arguments":{"message":"m"}}}),
        );
        assert_eq!(r.status, 200);
    }
    let r = post_json(
        &gw.url("/mcp"),
        &hs,
        &json!({"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"add","arguments":{"a":"x"}}}),
    );
    assert_eq!(r.status, 200);

    let r = get(&format!("{b}/metrics"), Some(READ));
    assert_eq!(r.status, 200);
    assert!(r.header("Content-Type").unwrap().starts_with("text/plain; version=0.0.4"), "{:?}", r.headers);
    let text = r.text();
    let samples = check_prometheus_text(&text);
    let value = |name: &str, label: (&str, &str)| -> f64 {
        samples
            .iter()
            .find(|(n, l, _)| n == name && l.iter().any(|(k, v)| k == label.0 && v == label.1))
            .unwrap_or_else(|| panic!("no {name}{{{}={}}} in\n{text}", label.0, label.1))
            .2
    };
    assert!(value("mcp_sentinel_backend_calls_total", ("backend", "alpha")) >= 6.0);
    assert!(value("mcp_sentinel_backend_errors_total", ("backend", "alpha")) >= 1.0);
    assert_eq!(value("mcp_sentinel_backend_up", ("backend", "alpha")), 1.0);
    assert_eq!(value("mcp_sentinel_sessions_active", ("transport", "streamable_http")), 1.0);
    assert_eq!(value("mcp_sentinel_sessions_active", ("transport", "sse")), 0.0);
    assert_eq!(value("mcp_sentinel_backend_restarts_total", ("backend", "alpha")), 0.0);
    // Histogram: cumulative buckets, +Inf equals _count.
    let buckets: Vec<(f64, f64)> = samples
        .iter()
        .filter(|(n, l, _)| {
            n == "mcp_sentinel_backend_call_duration_seconds_bucket" && l.iter().any(|(_, v)| v == "alpha")
        })
        .map(|(_, l, v)| {
            let le = l.iter().find(|(k, _)| k == "le").unwrap().1.as_str();
            (if le == "+Inf" { f64::INFINITY } else { le.parse().unwrap() }, *v)
        })
        .collect();
    assert!(buckets.len() >= 2 && buckets.last().unwrap().0.is_infinite(), "{buckets:?}");
    assert!(buckets.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1), "{buckets:?}");
    let count = value("mcp_sentinel_backend_call_duration_seconds_count", ("backend", "alpha"));
    assert_eq!(buckets.last().unwrap().1, count);
    assert!(count >= 6.0);
}

#[test]
fn health_can_be_public_and_nothing_else_is() {
    let dir = TempDir::new("public");
    let gw = Gateway::start(&with_tokens(&dir, one_demo(), json!({"public_health": true})));
    let b = base(&gw);
    let r = get(&format!("{b}/manage/v1/health"), None);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["status"], "ok");
    assert_error(&get(&format!("{b}/manage/v1/status"), None), 401, "unauthorized");
    assert_error(&get(&format!("{b}/metrics"), None), 401, "unauthorized");
}

#[test]
fn generated_admin_token_is_private_and_never_logged() {
    use std::os::unix::fs::PermissionsExt;
    let gw = Gateway::start(&one_demo());
    let port = gw.manage_addr().unwrap().port();
    let path = gw.state_home().join("mcp-sentinel").join(format!("manage-{port}.token"));
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let token = generated_token(&gw);
    assert_eq!(token.len(), 64);
    assert!(gw.log().contains(&path.display().to_string()), "the path is logged");
    assert!(!gw.log().contains(&token), "the token is not");
    let r = post(&format!("{}/manage/v1/reload", base(&gw)), Some(&token));
    assert_eq!(r.status, 200, "the generated token is an admin token: {}", r.text());
}

#[test]
fn tls_listener_serves_the_api_over_https_only() {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls");
    let dir = TempDir::new("tls");
    let config = with_tokens(
        &dir,
        one_demo(),
        json!({"tls": {"cert": fixtures.join("cert.pem"), "key": fixtures.join("key.pem")}}),
    );
    let gw = Gateway::start(&config);
    let addr = gw
        .log()
        .lines()
        .find_map(|l| common::parse_listen_addr(l, "management API listening on https://"))
        .unwrap_or_else(|| panic!("no https listener line:\n{}", gw.log()));
    let ca = std::fs::read(fixtures.join("ca.pem")).unwrap();
    let cert = ureq::tls::Certificate::from_pem(&ca).unwrap();
    let agent = ureq::Agent::config_builder()
        .tls_config(ureq::tls::TlsConfig::builder().root_certs(ureq::tls::RootCerts::new_with_certs(&[cert])).build())
        .http_status_as_error(false)
        .timeout_global(Some(T))
        .build()
        .new_agent();
    let url = format!("https://localhost:{}/manage/v1/status", addr.port());
    let mut r = agent.get(&url).header("Authorization", &auth(READ)).call().unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let v: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(v["server"]["state"], "ready");
    let r = agent.get(&url).call().unwrap();
    assert_eq!(r.status().as_u16(), 401);
    // The TUI's own client, with the profile's CA certificate.
    let target = mcp_sentinel::client::Target {
        name: "tls".into(),
        url: format!("https://localhost:{}", addr.port()),
        token: mcp_sentinel::client::TokenSource::InMemory(mcp_sentinel::client::Secret(ADMIN.into())),
        ca_cert: Some(fixtures.join("ca.pem")),
    };
    let client = mcp_sentinel::client::Client::new(&target).unwrap();
    let backends = client.backends().unwrap();
    assert_eq!(backends.iter().map(|b| b.name.as_str()).collect::<Vec<_>>(), ["alpha"]);
    assert!(client.reload().is_ok());
    let untrusted = mcp_sentinel::client::Target { ca_cert: None, ..target };
    let err = mcp_sentinel::client::Client::new(&untrusted).unwrap().status().unwrap_err();
    assert!(matches!(err, mcp_sentinel::client::ClientError::Unreachable(_)), "{err:?}");
    // Plain HTTP to the TLS port gets no HTTP answer.
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    std::io::Write::write_all(&mut s, b"GET /manage/v1/health HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut out = Vec::new();
    let _ = std::io::Read::read_to_end(&mut s, &mut out);
    assert!(!out.starts_with(b"HTTP/1.1 200"), "{:?}", String::from_utf8_lossy(&out));
}

/// Runs `mcp-sentinel server` directly with `args` (in a private network
/// namespace when `net` is given) until `needle` shows up in its log, then
/// kills it; returns the log.
fn run_until_in(dir: &TempDir, net: Option<&PrivateNet>, args: &[&str], needle: &str) -> String {
    let log_path = dir.path.join("gw.log");
    let mut cmd = match net {
        Some(n) => n.command(GATEWAY_BIN),
        None => Command::new(GATEWAY_BIN),
    };
    let mut child = cmd
        .args(args)
        .env("XDG_STATE_HOME", dir.path.join("state"))
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut log = String::new();
    while Instant::now() < deadline {
        log = std::fs::read_to_string(&log_path).unwrap_or_default();
        if log.contains(needle) || child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    log
}

#[test]
fn manage_listener_defaults_to_loopback_and_refuses_remote_without_tls() {
    let dir = TempDir::new("bind");
    let cfg = dir.path.join("c.json");
    std::fs::write(&cfg, one_demo().to_string()).unwrap();
    let c = cfg.to_str().unwrap();
    // No manage flag and no manage section: 127.0.0.1:9001 (in a private
    // network namespace, so whatever runs on this machine's 9001 is left alone).
    match default_port_setup(9001) {
        Ok(net) => {
            let args = ["server", "--config", c, "--listen", "127.0.0.1:0"];
            let log = run_until_in(&dir, net.as_ref(), &args, "management API listening on");
            assert!(log.contains("management API listening on http://127.0.0.1:9001/manage/v1"), "{log}");
        }
        Err(why) => eprintln!("SKIPPED (the default-port part): {why}"),
    }

    let remote = dir.path.join("remote.json");
    std::fs::write(&remote, json!({"mcpServers": {}, "manage": {"listen": "0.0.0.0:0"}}).to_string()).unwrap();
    let out = run_bounded(
        "gateway",
        Command::new(GATEWAY_BIN).args(["server", "--config", remote.to_str().unwrap(), "--listen", "127.0.0.1:0"]),
        T,
    );
    assert_eq!(out.status.and_then(|s| s.code()), Some(78), "{}", out.stderr);
    assert!(out.stderr.contains("0.0.0.0:0") && out.stderr.contains("manage.tls"), "{}", out.stderr);
    assert_eq!(out.stderr.trim().lines().count(), 1, "one line: {}", out.stderr);
    let out = run_bounded(
        "gateway",
        Command::new(GATEWAY_BIN).args([
            "server",
            "--config",
            c,
            "--listen",
            "127.0.0.1:0",
            "--manage-listen",
            "0.0.0.0:0",
        ]),
        T,
    );
    assert_ne!(out.status.and_then(|s| s.code()), Some(0), "{}", out.stderr);
    assert!(out.stderr.contains("--manage-listen") && out.stderr.contains("0.0.0.0:0"), "{}", out.stderr);
}

#[test]
fn equal_addresses_share_the_data_plane_listener() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let dir = TempDir::new("shared");
    let gw =
        Gateway::start_args(&with_tokens(&dir, one_demo(), json!({})), &["--listen", &addr, "--manage-listen", &addr]);
    assert_eq!(gw.mcp_addr.port(), port);
    let r = get(&format!("http://{addr}/manage/v1/status"), Some(READ));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["listen"]["manage"], addr);
    assert_error(&get(&format!("http://{addr}/manage/v1/status"), None), 401, "unauthorized");
    assert_eq!(get(&format!("http://{addr}/metrics"), Some(READ)).status, 200);
    let h = auth(READ);
    let mut s = SseStream::open(&format!("http://{addr}/manage/v1/events/stream?after=0"), &[("Authorization", &h)])
        .unwrap_or_else(|r| panic!("{} {}", r.status, r.text()));
    let first = s.next_event_full(T).expect("an event");
    assert_eq!(first.id.as_deref(), Some("1"));
    // The data plane still answers on the same port.
    let r = common::mcp_initialize(&gw.url("/mcp"));
    assert_eq!(r.status, 200);
}

#[test]
fn a_client_process_comes_and_goes_and_the_server_stays() {
    let gw = Gateway::start(&one_demo());
    let token = generated_token(&gw);
    let url = format!("{}/manage/v1/status", base(&gw));
    // A separate client process (curl-like, via Python's standard library).
    let script = "import sys, urllib.request; r = urllib.request.urlopen(urllib.request.Request(sys.argv[1], \
                  headers={'Authorization': 'Bearer ' + sys.argv[2]}), timeout=10); print(r.read().decode())";
    let python = common::python().map(|p| p.display().to_string()).unwrap_or_else(|| "python3".to_owned());
    let out = run_bounded("api client", Command::new(python).args(["-c", script, &url, &token]), T);
    assert!(out.success(), "{}", out.stderr);
    let v: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(v["server"]["state"], "ready");
    // The client has exited; the server still serves the API and MCP.
    let after = get(&url, Some(&token)).json();
    assert_eq!(after["server"]["pid"], v["server"]["pid"]);
    let r = common::mcp_initialize(&gw.url("/mcp"));
    assert_eq!(r.status, 200);
}

/// Every response of every endpoint (successes and errors) against the
/// schemas in docs/manage-api.openapi.json.
#[test]
fn live_responses_match_the_openapi_schemas() {
    use common::schema;
    let spec = schema::load_spec();
    let dir = TempDir::new("openapi");
    let config = json!({"mcpServers": {
        "alpha": demo_backend("alpha", &[]),
        "beta": {"command": common::DEMO_BIN, "args": ["--name", "beta"], "prefix": "beta"},
        "clash": demo_backend("clash", &[]),
        "off": {"command": common::DEMO_BIN, "enabled": false},
        "broken": {"command": "/nonexistent/mcp-server"},
    }});
    let gw = Gateway::start(&with_tokens(&dir, config, json!({"allow_shutdown": true})));
    let b = base(&gw);
    let mut checked = 0;
    let mut check = |method: &str, path: &str, token: Option<&str>| {
        let url = format!("{b}{path}");
        let r = if method == "POST" { post(&url, token) } else { get(&url, token) };
        let concrete = path.split('?').next().unwrap();
        let template = schema::match_path(&spec, concrete).unwrap_or_else(|| panic!("{concrete} is not in the spec"));
        let errors = if schema::operation(&spec, &template, method).is_ok() {
            schema::validate_response(&spec, &template, method, r.status, &r.json())
        } else {
            // A method the path does not have: the uniform error body.
            assert_eq!(r.status, 405);
            schema::validate_component(&spec, "Error", &r.json())
        };
        assert!(errors.is_empty(), "{method} {path} -> {}: {errors:?}\n{}", r.status, r.text());
        checked += 1;
        r
    };
    for path in [
        "/manage/v1/health",
        "/manage/v1/status",
        "/manage/v1/backends",
        "/manage/v1/backends/alpha",
        "/manage/v1/backends/off",
        "/manage/v1/backends/broken",
        "/manage/v1/backends/ghost",
        "/manage/v1/capabilities",
        "/manage/v1/capabilities?backend=beta",
        "/manage/v1/capabilities?backend=ghost",
        "/manage/v1/events?limit=1000",
        "/manage/v1/events?after=2&limit=3",
        "/manage/v1/events?limit=zero",
    ] {
        check("GET", path, Some(READ));
    }
    let caps = check("GET", "/manage/v1/capabilities", Some(READ)).json();
    assert!(!caps["conflicts"].as_array().unwrap().is_empty(), "alpha and clash share tool names: {caps}");
    check("GET", "/manage/v1/status", None);
    check("GET", "/manage/v1/status", Some("nope"));
    check("POST", "/manage/v1/reload", Some(READ));
    check("POST", "/manage/v1/reload", Some(ADMIN));
    check("POST", "/manage/v1/backends/alpha/reconnect", Some(ADMIN));
    check("POST", "/manage/v1/backends/off/reconnect", Some(ADMIN));
    check("POST", "/manage/v1/backends/ghost/reconnect", Some(ADMIN));
    check("GET", "/manage/v1/reload", Some(ADMIN));
    let r = check("POST", "/manage/v1/shutdown", Some(ADMIN));
    assert_eq!(r.status, 202);
    assert_eq!(checked, 23);
}

#[test]
fn tls_on_a_shared_address_is_refused_rather_than_dropped() {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls");
    let dir = TempDir::new("shared-tls");
    let cfg = dir.path.join("c.json");
    let config = json!({"mcpServers": {}, "server": {"listen": "127.0.0.1:9000"}, "manage": {"listen": "127.0.0.1:9000",
        "tls": {"cert": fixtures.join("cert.pem"), "key": fixtures.join("key.pem")}}});
    std::fs::write(&cfg, config.to_string()).unwrap();
    let out = run_bounded("gateway", Command::new(GATEWAY_BIN).args(["server", "--config", cfg.to_str().unwrap()]), T);
    assert_eq!(out.status.and_then(|s| s.code()), Some(78), "{}", out.stderr);
    assert!(out.stderr.contains("manage.tls") && out.stderr.contains("c.json"), "{}", out.stderr);
}
