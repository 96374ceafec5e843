//! Views (`views` in the config), end to end with the real binary, the demo
//! backends `alpha` (prefix `a`) and `beta` (prefix `b`), and the official
//! Python SDK client (`tests/py/views_client.py`) on both transports: a view
//! lists only its tools, resources and prompts, a call to a tool outside it
//! is -32602 "Unknown tool" exactly as for a name no backend has, a hidden
//! backend's resource and prompt are refused; `/mcp/nope` and `/sse/nope`
//! are 404; 2026-07-28 requests on `/mcp/<view>` carry the view;
//! `/manage/v1/capabilities?view=` shows what the view shows; a reload that
//! removes a view ends its sessions with 404.
//!
//! Needs the Python SDK from `scripts/install-peers.sh` for the SDK tests;
//! without it they are skipped (outside CI). Everything listens on
//! 127.0.0.1; every process is killed by PID with bounded waits.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{demo_backend, http, post_json, py_command, run_bounded, sdk_python, Gateway, Response, SseStream};
use serde_json::{json, Value};

const PY_TIMEOUT: Duration = Duration::from_secs(60);

fn config() -> Value {
    let mut alpha = demo_backend("alpha", &[]);
    alpha["prefix"] = json!("a");
    let mut beta = demo_backend("beta", &[]);
    beta["prefix"] = json!("b");
    json!({
        "mcpServers": {"alpha": alpha, "beta": beta},
        "views": {
            "dev": {
                "backends": ["alpha"],
                "tools": {"allow": ["a__*"], "deny": ["*crash*", "a__freeze"]},
                "description": "alpha without the dangerous tools"
            },
            "echoes": {"tools": {"allow": ["*echo"]}}
        }
    })
}

/// The tools of the view `dev`: alpha's, minus crash and freeze.
fn dev_tools() -> BTreeSet<String> {
    ["echo", "add", "slow", "fail", "cancellations", "add_tool", "ask_client", "note"]
        .iter()
        .map(|t| format!("a__{t}"))
        .collect()
}

fn set(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|x| x.as_str().expect("as the test wrote it").to_owned())
        .collect()
}

/// Runs the SDK client on `path` over `transport` with `args`; its output.
fn sdk(gw: &Gateway, path: &str, transport: &str, args: &[&str]) -> Option<Value> {
    let python = sdk_python()?;
    let mut cmd = py_command(&python, "views_client.py");
    cmd.args(["--url", &gw.url(path), "--transport", transport]).args(args);
    let out = run_bounded("views_client", &mut cmd, PY_TIMEOUT);
    let line = out.stdout.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("").to_owned();
    let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| {
        panic!("views_client printed no JSON ({e}):\n{}\n{}\n{}", out.stdout, out.stderr, gw.log())
    });
    assert_eq!(v["ok"], json!(true), "views_client failed: {v}\n{}\n{}", out.stderr, gw.log());
    Some(v)
}

fn check_dev_view(gw: &Gateway, path: &str, transport: &str) {
    let args = [
        "--call",
        "a__echo",
        "--hidden-tool",
        "b__echo",
        "--hidden-tool",
        "a__crash",
        "--hidden-tool",
        "no_such_tool",
        "--read",
        "demo://alpha/readme",
        "--hidden-uri",
        "demo://beta/readme",
        "--hidden-uri",
        "demo://beta/items/42",
        "--hidden-prompt",
        "b__greet",
    ];
    let Some(v) = sdk(gw, path, transport, &args) else { return };
    let what = format!("{path} over {transport}");
    assert_eq!(set(&v["tools"]), dev_tools(), "{what}: tools/list");
    assert_eq!(set(&v["resources"]), set(&json!(["demo://alpha/readme", "demo://alpha/config.json"])), "{what}");
    assert!(
        v["resource_templates"]
            .as_array()
            .expect("as the test wrote it")
            .iter()
            .all(|t| t.as_str().expect("as the test wrote it").starts_with("demo://alpha/")),
        "{what}: templates of beta listed: {}",
        v["resource_templates"]
    );
    assert_eq!(v["prompts"], json!(["a__greet"]), "{what}: prompts/list");
    assert_eq!(v["calls"]["a__echo"], json!("hi"), "{what}");
    // Outside the view is exactly as unknown as a name nobody has.
    for name in ["b__echo", "a__crash", "no_such_tool"] {
        assert_eq!(
            v["calls"][name],
            json!({"code": -32602, "message": format!("Unknown tool: {name}")}),
            "{what}: tools/call {name}"
        );
    }
    assert!(
        v["reads"]["demo://alpha/readme"].as_str().expect("as the test wrote it").contains("alpha"),
        "{what}: {}",
        v["reads"]
    );
    for uri in ["demo://beta/readme", "demo://beta/items/42"] {
        assert_eq!(
            v["reads"][uri],
            json!({"code": -32602, "message": format!("Unknown resource: {uri}")}),
            "{what}: resources/read {uri}"
        );
    }
    assert_eq!(v["prompt_gets"]["b__greet"], json!({"code": -32602, "message": "Unknown prompt: b__greet"}), "{what}");
}

#[test]
fn a_view_hides_and_refuses_what_is_outside_it_over_streamable_http() {
    let gw = Gateway::start(&config());
    check_dev_view(&gw, "/mcp/dev", "streamable-http");
}

#[test]
fn a_view_hides_and_refuses_what_is_outside_it_over_sse() {
    let gw = Gateway::start(&config());
    check_dev_view(&gw, "/sse/dev", "sse");
}

#[test]
fn views_by_tool_glob_and_the_whole_catalog_beside_them() {
    let gw = Gateway::start(&config());
    for (path, transport) in [("/mcp/echoes", "streamable-http"), ("/sse/echoes", "sse")] {
        let Some(v) = sdk(&gw, path, transport, &["--call", "b__echo", "--hidden-tool", "a__add"]) else { return };
        assert_eq!(set(&v["tools"]), set(&json!(["a__echo", "b__echo"])), "{path}");
        // Prompts and resources: every backend of the view.
        assert_eq!(set(&v["prompts"]), set(&json!(["a__greet", "b__greet"])), "{path}");
        assert_eq!(v["calls"]["a__add"]["code"], json!(-32602), "{path}");
    }
    // The default endpoints still serve everything.
    let Some(v) = sdk(&gw, "/mcp", "streamable-http", &["--call", "b__echo"]) else { return };
    assert!(set(&v["tools"]).contains("b__crash"), "{}", v["tools"]);
}

// ---------------------------------------------------------------------------
// Raw HTTP
// ---------------------------------------------------------------------------

const ACCEPT: (&str, &str) = ("Accept", "application/json, text/event-stream");

fn rpc(id: u64, method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

/// initialize on `path`; the session id.
fn init(gw: &Gateway, path: &str) -> String {
    let params =
        json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "views", "version": "1"}});
    let r = post_json(&gw.url(path), &[ACCEPT], &rpc(1, "initialize", params));
    assert_eq!(r.status, 200, "initialize on {path}: {}", r.text());
    let sid = r.header("Mcp-Session-Id").expect("Mcp-Session-Id").to_owned();
    let r = post_json(
        &gw.url(path),
        &[ACCEPT, ("Mcp-Session-Id", &sid)],
        &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    );
    assert_eq!(r.status, 202, "initialized: {}", r.text());
    sid
}

fn tools_on(gw: &Gateway, path: &str, sid: &str) -> Response {
    post_json(&gw.url(path), &[ACCEPT, ("Mcp-Session-Id", sid)], &rpc(2, "tools/list", json!({})))
}

fn tool_names(r: &Response) -> BTreeSet<String> {
    let v = r.json();
    v["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("no tools: {v}"))
        .iter()
        .map(|t| t["name"].as_str().expect("as the test wrote it").to_owned())
        .collect()
}

fn assert_404(r: &Response, what: &str) {
    assert_eq!(r.status, 404, "{what}: {} {}", r.status, r.text());
}

#[test]
fn unknown_views_are_404_and_sessions_stay_on_their_view() {
    let gw = Gateway::start(&config());
    assert_404(&post_json(&gw.url("/mcp/nope"), &[ACCEPT], &rpc(1, "initialize", json!({}))), "POST /mcp/nope");
    let r = http("GET", &gw.url("/sse/nope"), &[("Accept", "text/event-stream")], None);
    assert_404(&r, "GET /sse/nope");
    assert!(r.text().contains("no view named 'nope'"), "{}", r.text());
    assert_404(&http("GET", &gw.url("/mcp/dev/x"), &[], None), "GET /mcp/dev/x");

    let sid = init(&gw, "/mcp/dev");
    let r = tools_on(&gw, "/mcp/dev", &sid);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(tool_names(&r), dev_tools());
    let r = tools_on(&gw, "/mcp/dev/", &sid);
    assert_eq!(tool_names(&r), dev_tools(), "a trailing slash is the same endpoint");
    // A view's session is not a session of the whole catalog, nor of another view.
    assert_404(&tools_on(&gw, "/mcp", &sid), "the dev session on /mcp");
    assert_404(&tools_on(&gw, "/mcp/echoes", &sid), "the dev session on /mcp/echoes");
    // The default endpoint's session sees everything.
    let all = init(&gw, "/mcp");
    assert!(tool_names(&tools_on(&gw, "/mcp", &all)).contains("b__crash"));

    // Legacy: the endpoint event names /messages/, and the session keeps its view.
    let mut sse = SseStream::open(&gw.url("/sse/dev"), &[]).expect("GET /sse/dev");
    let endpoint = sse.next_named("endpoint", Duration::from_secs(10)).expect("endpoint event");
    assert!(endpoint.starts_with("/messages/?session_id="), "{endpoint}");
    let params =
        json!({"protocolVersion": "2024-11-05", "capabilities": {}, "clientInfo": {"name": "v", "version": "1"}});
    for m in [rpc(1, "initialize", params), rpc(2, "tools/list", json!({}))] {
        let r = post_json(&gw.url(&endpoint), &[], &m);
        assert_eq!(r.status, 202, "{}", r.text());
    }
    let mut listed = None;
    for _ in 0..4 {
        let Some((_, data)) = sse.next_event(Duration::from_secs(10)) else { break };
        let v: Value = serde_json::from_str(&data).unwrap_or(Value::Null);
        if v["id"] == json!(2) {
            listed = Some(v);
            break;
        }
    }
    let listed = listed.expect("the tools/list answer on the stream");
    let names: BTreeSet<String> = listed["result"]["tools"]
        .as_array()
        .expect("as the test wrote it")
        .iter()
        .map(|t| t["name"].as_str().expect("as the test wrote it").to_owned())
        .collect();
    assert_eq!(names, dev_tools());
}

/// The per-request envelope of a 2026-07-28 client.
fn modern(gw: &Gateway, path: &str, method: &str, mut params: Value) -> Response {
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    let name = params.get("name").and_then(Value::as_str).map(str::to_owned);
    let mut h = vec![ACCEPT, ("MCP-Protocol-Version", "2026-07-28"), ("Mcp-Method", method)];
    if let Some(n) = name.as_deref() {
        h.push(("Mcp-Name", n));
    }
    post_json(&gw.url(path), &h, &rpc(7, method, params))
}

#[test]
fn each_2026_request_carries_its_view() {
    let gw = Gateway::start(&config());
    let r = modern(&gw, "/mcp/dev", "tools/list", json!({}));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(tool_names(&r), dev_tools());
    let r = modern(&gw, "/mcp/dev", "tools/call", json!({"name": "b__echo", "arguments": {"message": "x"}}));
    let v = r.json();
    assert_eq!(v["error"]["code"], json!(-32602), "{v}");
    assert_eq!(v["error"]["message"], json!("Unknown tool: b__echo"), "{v}");
    let r = modern(&gw, "/mcp/dev", "tools/call", json!({"name": "a__echo", "arguments": {"message": "x"}}));
    assert_eq!(r.json()["result"]["content"][0]["text"], json!("x"), "{}", r.text());
    let r = modern(&gw, "/mcp/dev", "prompts/list", json!({}));
    assert_eq!(r.json()["result"]["prompts"].as_array().map(Vec::len), Some(1), "{}", r.text());
    assert_404(&modern(&gw, "/mcp/nope", "tools/list", json!({})), "2026-07-28 on /mcp/nope");
    let r = modern(&gw, "/mcp", "tools/list", json!({}));
    assert!(tool_names(&r).contains("b__echo"));
}

// ---------------------------------------------------------------------------
// The management API, and reload
// ---------------------------------------------------------------------------

struct Manage {
    base: String,
    auth: String,
}

impl Manage {
    fn admin(gw: &Gateway) -> Manage {
        let addr = gw.manage_addr().expect("the management API logs its address");
        let file = gw.state_home().join("mcp-sentinel").join(format!("manage-{}.token", addr.port()));
        let token = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        Manage { base: format!("http://{addr}/manage/v1"), auth: format!("Bearer {}", token.trim()) }
    }

    fn get(&self, path: &str) -> Response {
        http("GET", &format!("{}{path}", self.base), &[("Authorization", &self.auth)], None)
    }
}

#[test]
fn capabilities_of_a_view_match_what_its_clients_see() {
    let gw = Gateway::start(&config());
    let m = Manage::admin(&gw);
    let r = m.get("/capabilities?view=dev");
    assert_eq!(r.status, 200, "{}", r.text());
    let caps = r.json();
    let names = |k: &str, f: &str| -> BTreeSet<String> {
        caps[k]
            .as_array()
            .expect("as the test wrote it")
            .iter()
            .map(|x| x[f].as_str().expect("as the test wrote it").to_owned())
            .collect()
    };
    assert_eq!(names("tools", "name"), dev_tools());
    assert_eq!(names("prompts", "name"), ["a__greet".to_owned()].into());
    assert!(
        caps["resources"].as_array().expect("as the test wrote it").iter().all(|r| r["backend"] == json!("alpha")),
        "{caps}"
    );
    // The same as a client of the view lists.
    let sid = init(&gw, "/mcp/dev");
    assert_eq!(tool_names(&tools_on(&gw, "/mcp/dev", &sid)), names("tools", "name"));
    let whole = m.get("/capabilities").json();
    assert!(whole["tools"].as_array().expect("as the test wrote it").iter().any(|t| t["name"] == json!("b__crash")));
    let r = m.get("/capabilities?view=nope");
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], json!("not_found"), "{}", r.text());
    assert!(r.text().contains("no view named 'nope'"), "{}", r.text());
    // /status lists the views.
    let st = m.get("/status").json();
    assert_eq!(st["views"], json!(["dev", "echoes"]), "{st}");
}

#[test]
fn reload_applies_view_changes_and_ends_sessions_of_removed_views() {
    let gw = Gateway::start(&config());
    let m = Manage::admin(&gw);
    let dev = init(&gw, "/mcp/dev");
    let echoes = init(&gw, "/mcp/echoes");
    let mut next = config();
    next["views"] = json!({"echoes": {"tools": {"allow": ["a__echo"]}}, "fresh": {"backends": ["beta"]}});
    std::fs::write(&gw.config_path, serde_json::to_string_pretty(&next).expect("as the test wrote it"))
        .expect("as the test wrote it");
    let r = post_json(&format!("{}/reload", m.base), &[("Authorization", &m.auth)], &json!({}));
    assert_eq!(r.status, 200, "reload: {}", r.text());
    assert_404(&tools_on(&gw, "/mcp/dev", &dev), "a session of the removed view");
    let r = tools_on(&gw, "/mcp/echoes", &echoes);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(tool_names(&r), ["a__echo".to_owned()].into(), "the changed view, in the same session");
    let fresh = init(&gw, "/mcp/fresh");
    assert!(tool_names(&tools_on(&gw, "/mcp/fresh", &fresh)).iter().all(|t| t.starts_with("b__")));
    assert_404(&post_json(&gw.url("/mcp/dev"), &[ACCEPT], &rpc(1, "initialize", json!({}))), "the removed view");
}

#[test]
fn a_bad_view_is_a_config_error_naming_the_field() {
    let mut cfg = config();
    cfg["views"]["dev"]["backends"] = json!(["alpha", "gamma"]);
    let dir = common::TempDir::new("views");
    let path = dir.path.join("bad.json");
    std::fs::write(&path, cfg.to_string()).expect("as the test wrote it");
    let mut cmd = std::process::Command::new(common::gateway_bin());
    cmd.args(["check", "--config"]).arg(&path);
    let out = run_bounded("check", &mut cmd, Duration::from_secs(30));
    assert_eq!(out.status.and_then(|s| s.code()), Some(78), "{}\n{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("field \"views.dev.backends[1]\": no backend named \"gamma\""), "{}", out.stderr);
}

/// A token bound to views (`server.auth.tokens[].views`) reaches those
/// views only: 403 on the whole catalog and on other views, served on its
/// own; a token without a list reaches everything.
#[test]
fn a_token_bound_to_a_view_uses_only_that_view() {
    let mut c = config();
    c["server"] = json!({"auth": {"tokens": [
        {"name": "dev-team", "token_env": "VIEWS_DEV_TOKEN", "views": ["dev"]},
        {"name": "ops", "token_env": "VIEWS_OPS_TOKEN"}
    ]}});
    let audit_dir = common::TempDir::new("views-audit");
    let audit_log = audit_dir.path.join("audit.log");
    c["manage"] = json!({"audit_log": audit_log});
    let gw = Gateway::start_env(&c, &[], &[("VIEWS_DEV_TOKEN", "dev-secret-1"), ("VIEWS_OPS_TOKEN", "ops-secret-1")]);
    let params =
        json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "views", "version": "1"}});
    let init_as = |token: &str, path: &str| {
        let bearer = format!("Bearer {token}");
        post_json(&gw.url(path), &[ACCEPT, ("Authorization", &bearer)], &rpc(1, "initialize", params.clone())).status
    };
    assert_eq!(init_as("dev-secret-1", "/mcp/dev"), 200);
    assert_eq!(init_as("dev-secret-1", "/mcp"), 403);
    assert_eq!(init_as("dev-secret-1", "/mcp/echoes"), 403);
    assert_eq!(init_as("ops-secret-1", "/mcp"), 200);
    assert_eq!(init_as("ops-secret-1", "/mcp/echoes"), 200);
    let r = http("GET", &gw.url("/sse"), &[("Authorization", "Bearer dev-secret-1")], None);
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(init_as("wrong-secret", "/mcp/dev"), 401);
    // The audit log names who was refused what (never the token).
    let text = std::fs::read_to_string(&audit_log).unwrap_or_default();
    let lines: Vec<Value> = text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let refused = |status: u16, path: &str| {
        lines.iter().find(|l| {
            l["event"] == json!("data_auth_failed") && l["status"] == json!(status) && l["path"] == json!(path)
        })
    };
    let l = refused(403, "/mcp/echoes").unwrap_or_else(|| panic!("no 403 line for /mcp/echoes in:\n{text}"));
    assert_eq!(l["token_name"], json!("token:dev-team"), "{text}");
    assert!(refused(401, "/mcp/dev").is_some(), "{text}");
    assert!(!text.contains("secret-1"), "a token in the audit log:\n{text}");
}
