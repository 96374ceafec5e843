//! End-to-end: the official Python MCP SDK (`tests/py/sdk_client.py`) talks to
//! the gateway over both transports, with the demo backends `alpha` and
//! `beta` (prefix `beta`) and the official server-everything (prefix `ev`)
//! behind it. One test per (scenario, transport) so a failure names both.
//!
//! Needs the peers from `scripts/install-peers.sh`; without them a test is
//! skipped with a message, except under CI=true, where it fails.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::{demo_backend, everything_backend, py_script, python, run_bounded, Gateway};
use serde_json::{json, Value};

/// The serverInfo name the gateway is configured to announce.
const SERVER_NAME: &str = "sentinel-under-test";
const PY_TIMEOUT: Duration = Duration::from_secs(60);

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

/// The peers a test needs, or `None` to skip (outside CI only).
struct Peers {
    python: PathBuf,
    everything: Option<Value>,
}

fn peers() -> Option<Peers> {
    let python = python()?;
    // In CI a missing server-everything panics inside everything_backend().
    let everything = everything_backend();
    Some(Peers { python, everything })
}

fn with(mut backend: Value, key: &str, value: Value) -> Value {
    backend.as_object_mut().expect("backend is an object").insert(key.to_string(), value);
    backend
}

/// alpha (no prefix), beta (prefix `beta`), and server-everything (prefix `ev`).
fn config(everything: Option<&Value>) -> Value {
    let mut servers = serde_json::Map::new();
    servers.insert("alpha".into(), demo_backend("alpha", &[]));
    servers.insert("beta".into(), with(demo_backend("beta", &[]), "prefix", json!("beta")));
    if let Some(ev) = everything {
        servers.insert("everything".into(), with(ev.clone(), "prefix", json!("ev")));
    }
    json!({
        "mcpServers": servers,
        "server": { "name": SERVER_NAME },
    })
}

/// Runs one scenario against a fresh gateway and returns the client's JSON,
/// after checking what every scenario must show.
fn run_scenario(scenario: &str, transport: Transport) -> Option<Value> {
    let peers = peers()?;
    let gw = Gateway::start(&config(peers.everything.as_ref()));
    let url = gw.url(transport.path());
    let script = py_script("sdk_client.py");
    let mut cmd = Command::new(&peers.python);
    cmd.arg(&script)
        .args(["--url", &url])
        .args(["--transport", transport.arg()])
        .args(["--scenario", scenario])
        .env("PYTHONUNBUFFERED", "1")
        .env_remove("HTTP_PROXY")
        .env_remove("HTTPS_PROXY")
        .env_remove("http_proxy")
        .env_remove("https_proxy")
        .env("NO_PROXY", "127.0.0.1,localhost");
    if peers.everything.is_some() {
        cmd.arg("--with-everything");
    }
    let out = run_bounded(&format!("py:{scenario}:{}", transport.arg()), &mut cmd, PY_TIMEOUT);
    assert!(
        !out.timed_out,
        "sdk_client.py {scenario} over {} ran past {PY_TIMEOUT:?}\nstderr:\n{}\ngateway log:\n{}",
        transport.arg(),
        out.stderr,
        gw.log()
    );
    let line = out.stdout.lines().rev().find(|l| l.starts_with('{'));
    let value: Option<Value> = line.and_then(|l| serde_json::from_str(l).ok());
    assert!(
        out.success() && value.as_ref().is_some_and(|v| v["ok"] == json!(true)),
        "sdk_client.py {scenario} over {} failed ({:?})\nstdout:\n{}\nstderr:\n{}\ngateway log:\n{}",
        transport.arg(),
        out.status,
        out.stdout,
        out.stderr,
        gw.log()
    );
    let value = value.expect("checked above");
    eprintln!("sdk_client.py {scenario} over {}: {value}", transport.arg());
    assert_eq!(
        value["server_info"]["name"],
        json!(SERVER_NAME),
        "the gateway must announce its own serverInfo, not a backend's: {value}"
    );
    let version = value["protocol_version"].as_str().unwrap_or_default();
    assert!(
        ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"].contains(&version),
        "negotiated an unexpected protocol version {version:?}"
    );
    let mut value = value;
    value["__with_everything"] = json!(peers.everything.is_some());
    Some(value)
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().filter_map(|x| x.as_str().map(String::from)).collect()).unwrap_or_default()
}

fn with_everything(v: &Value) -> bool {
    v["__with_everything"] == json!(true)
}

// --- what each scenario must show -------------------------------------------

fn check_list(v: &Value, r: &Value) {
    let tools = strings(&r["tools"]);
    for want in ["echo", "add", "slow", "beta__echo", "beta__add", "beta__slow"] {
        assert!(tools.contains(&want.to_string()), "tools/list lacks {want}: {tools:?}");
    }
    assert!(!tools.iter().any(|t| t == "beta__beta__echo"), "a prefix was applied twice: {tools:?}");
    let resources = strings(&r["resources"]);
    for want in ["demo://alpha/readme", "demo://beta/readme"] {
        assert!(resources.contains(&want.to_string()), "resources/list lacks {want}: {resources:?}");
    }
    let templates = strings(&r["resource_templates"]);
    assert!(
        templates.iter().any(|t| t.starts_with("demo://alpha/items/"))
            && templates.iter().any(|t| t.starts_with("demo://beta/items/")),
        "resources/templates/list lacks the demo item templates: {templates:?}"
    );
    let prompts = strings(&r["prompts"]);
    for want in ["greet", "beta__greet"] {
        assert!(prompts.contains(&want.to_string()), "prompts/list lacks {want}: {prompts:?}");
    }
    if with_everything(v) {
        for want in ["ev__echo", "ev__get-sum", "ev__trigger-long-running-operation"] {
            assert!(tools.contains(&want.to_string()), "tools/list lacks {want}: {tools:?}");
        }
        assert!(
            !tools.iter().any(|t| t == "get-sum"),
            "server-everything's tools must carry the ev__ prefix: {tools:?}"
        );
        assert!(
            resources.iter().any(|u| u.starts_with("demo://resource/static/")),
            "resources/list lacks server-everything's resources: {resources:?}"
        );
        assert!(
            prompts.contains(&"ev__simple-prompt".to_string()),
            "prompts/list lacks ev__simple-prompt: {prompts:?}"
        );
    }
}

fn check_tools(v: &Value, r: &Value) {
    let calls = &r["calls"];
    assert_eq!(calls["echo"], json!("hi"), "echo on alpha: {calls}");
    assert_eq!(calls["beta__echo"], json!("hi"), "echo on beta: {calls}");
    if with_everything(v) {
        assert_eq!(calls["ev__echo"], json!("Echo: hi"), "echo on server-everything: {calls}");
    }
    let unknown = calls["unknown"].as_str().unwrap_or_default();
    assert!(
        unknown == "error -32602" || unknown == "isError",
        "an unknown tool must be -32602 (or a tool error): {unknown}"
    );
}

fn check_resource(v: &Value, r: &Value) {
    let reads = &r["reads"];
    let text = |uri: &str| reads[uri].as_str().unwrap_or_default().to_string();
    assert!(text("demo://alpha/readme").contains("Hello from alpha"), "{reads}");
    assert!(text("demo://beta/items/42").contains("item 42 from beta"), "{reads}");
    if with_everything(v) {
        assert!(text("demo://resource/dynamic/text/7").contains("Resource 7"), "{reads}");
    }
    assert!(
        reads["unknown"].as_str().is_some_and(|s| s.starts_with("error ")),
        "reading an unknown URI must be an error: {reads}"
    );
}

fn check_prompt(v: &Value, r: &Value) {
    let prompts = &r["prompts"];
    let text = |name: &str| prompts[name].as_str().unwrap_or_default().to_string();
    assert!(text("greet").contains("Hello, Ada! (from alpha)"), "{prompts}");
    assert!(text("beta__greet").contains("Hello, Ada! (from beta)"), "{prompts}");
    if with_everything(v) {
        assert!(text("ev__simple-prompt").contains("without arguments"), "{prompts}");
    }
}

fn check_progress(r: &Value) {
    let progress: Vec<f64> =
        r["progress"].as_array().map(|a| a.iter().filter_map(|p| p["progress"].as_f64()).collect()).unwrap_or_default();
    assert_eq!(progress.len(), 4, "expected 4 progress notifications: {r}");
    assert!(progress.windows(2).all(|w| w[0] < w[1]), "progress must increase: {progress:?}");
    assert!(r["result"].as_str().unwrap_or_default().contains("done after 4 steps"), "{r}");
}

fn check_cancel(r: &Value) {
    let received = &r["backend_cancellations"];
    let non_empty = match received {
        Value::Array(a) => !a.is_empty(),
        Value::String(s) => !s.is_empty(),
        Value::Null => false,
        _ => true,
    };
    assert!(non_empty, "the backend never received notifications/cancelled: {r}");
    assert_eq!(r["echo_after_cancel"], json!("hi"), "{r}");
}

fn check_crash(r: &Value) {
    let msg = r["crash"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains("beta"), "the error must name the backend: {msg:?}");
    assert_eq!(r["echo_after_crash"], json!("hi"), "alpha must keep working: {r}");
}

fn scenario(name: &str, transport: Transport) {
    let Some(v) = run_scenario(name, transport) else {
        return;
    };
    let r = &v["results"];
    match name {
        "list" => check_list(&v, r),
        "tools" => check_tools(&v, r),
        "resource" => check_resource(&v, r),
        "prompt" => check_prompt(&v, r),
        "progress" => check_progress(r),
        "cancel" => check_cancel(r),
        "crash" => check_crash(r),
        "all" => {
            check_list(&v, &r["list"]);
            check_tools(&v, &r["tools"]);
            check_resource(&v, &r["resource"]);
            check_prompt(&v, &r["prompt"]);
            check_progress(&r["progress"]);
        }
        other => panic!("unknown scenario {other}"),
    }
}

macro_rules! scenario_tests {
    ($($sse:ident, $http:ident => $name:literal;)*) => {$(
        #[test]
        fn $sse() {
            scenario($name, Transport::Sse);
        }

        #[test]
        fn $http() {
            scenario($name, Transport::Streamable);
        }
    )*};
}

scenario_tests! {
    sdk_list_sse, sdk_list_streamable_http => "list";
    sdk_tools_sse, sdk_tools_streamable_http => "tools";
    sdk_resource_sse, sdk_resource_streamable_http => "resource";
    sdk_prompt_sse, sdk_prompt_streamable_http => "prompt";
    sdk_progress_sse, sdk_progress_streamable_http => "progress";
    sdk_cancel_sse, sdk_cancel_streamable_http => "cancel";
    sdk_crash_sse, sdk_crash_streamable_http => "crash";
    sdk_all_sse, sdk_all_streamable_http => "all";
}
