//! The peers themselves, without the gateway: the official Python SDK client
//! (`tests/py/sdk_client.py --target everything`) against the official
//! server-everything over SSE and streamable HTTP. When these pass and
//! `sdk_python.rs` fails, the gateway is at fault, not the client script or
//! the installed peers.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{py_script, python, run_bounded, EverythingServer};
use serde_json::Value;

fn run(mode: &str, path: &str, transport: &str, scenario: &str) {
    let Some(py) = python() else { return };
    let Some(server) = EverythingServer::start(mode) else {
        return;
    };
    let url = server.url(path);
    let out = run_bounded(
        &format!("py:{scenario}:{transport}"),
        Command::new(&py)
            .arg(py_script("sdk_client.py"))
            .args(["--url", &url, "--transport", transport])
            .args(["--scenario", scenario, "--target", "everything"])
            .env("NO_PROXY", "127.0.0.1,localhost"),
        Duration::from_secs(60),
    );
    let value: Option<Value> =
        out.stdout.lines().rev().find(|l| l.starts_with('{')).and_then(|l| serde_json::from_str(l).ok());
    assert!(
        out.success() && value.as_ref().is_some_and(|v| v["ok"] == Value::Bool(true)),
        "sdk_client.py {scenario} against server-everything over {transport} failed ({:?}, timed out: {})\nstdout:\n{}\nstderr:\n{}\nserver log:\n{}",
        out.status,
        out.timed_out,
        out.stdout,
        out.stderr,
        server.log()
    );
    let value = value.expect("checked above");
    assert_eq!(value["server_info"]["name"], "mcp-servers/everything");
}

#[test]
fn python_sdk_against_everything_sse() {
    run("sse", "/sse", "sse", "all");
}

#[test]
fn python_sdk_against_everything_streamable_http() {
    run("streamableHttp", "/mcp", "streamable-http", "all");
}

#[test]
fn python_sdk_cancels_against_everything_streamable_http() {
    run("streamableHttp", "/mcp", "streamable-http", "cancel");
}
