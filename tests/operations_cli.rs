//! Everyday operations, run as an operator would: `mcp-sentinel check` on
//! good and broken files (exit 0 or 78), other MCP clients' config files
//! (VS Code's `servers`, `disabled`, `streamableHttp`), foreign formats named
//! in one line, `--log-format json` read line by line, and two gateways
//! colliding on the management port told what collided and how to move it.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{demo_backend, run_bounded, Gateway, Output, TempDir};
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(30);

fn check(config: &Path) -> Output {
    let mut cmd = Command::new(common::gateway_bin());
    cmd.args(["check", "--config"]).arg(config).env_remove("MCP_SENTINEL_CONFIG");
    run_bounded("check", &mut cmd, T)
}

fn write(dir: &TempDir, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.path.join(name);
    std::fs::write(&p, text).expect("write config");
    p
}

#[test]
fn check_reports_a_good_file_and_exits_0() {
    let dir = TempDir::new("check-good");
    let mut demo = demo_backend("demo", &[]);
    demo["prefix"] = json!("d");
    let config = json!({
        "manage": {"tokens": [{"name": "ops", "scopes": ["read", "admin"], "token_env": "OPS_TOKEN"}]},
        "mcpServers": {
            "demo": demo,
            "remote": {"url": "https://example.com/mcp", "headers": {"Authorization": "Bearer s3cret"}},
            "old": {"url": "http://127.0.0.1:1/sse"},
            "off": {"command": "x", "disabled": true}
        }
    });
    let path = write(&dir, "good.json", &config.to_string());
    let o = check(&path);
    assert_eq!(o.status.and_then(|s| s.code()), Some(0), "{}\n{}", o.stdout, o.stderr);
    let out = &o.stdout;
    for want in [
        "data plane: http://127.0.0.1:9000",
        "management API: http://127.0.0.1:9001/manage/v1",
        "token \"ops\": read, admin (from $OPS_TOKEN)",
        "backends: 4",
        "[prefix d__]",
        "https://example.com/mcp",
        "old                  sse",
        "[disabled]",
        "result: 4 valid, 0 invalid",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    assert!(!out.contains("s3cret") && !o.stderr.contains("s3cret"), "a secret shows:\n{out}\n{}", o.stderr);
}

#[test]
fn check_fails_with_78_on_broken_files_naming_what() {
    let dir = TempDir::new("check-bad");
    let cases = [
        // A broken entry: the file loads, the entry is named.
        (r#"{"mcpServers": {"ok": {"command": "x"}, "bad": {"type": "carrier-pigeon"}}}"#, "bad", "INVALID"),
        // Not JSON at all.
        ("{ nope", "", "not valid JSON"),
        // argus-mcp's format and YAML, named.
        (r#"{"backends": {"a": {"command": "x"}}}"#, "", "argus-mcp"),
        ("backends:\n  a:\n    command: x\n", "", "YAML"),
    ];
    for (i, (text, name, want)) in cases.iter().enumerate() {
        let path = write(&dir, &format!("bad{i}.json"), text);
        let o = check(&path);
        assert_eq!(o.status.and_then(|s| s.code()), Some(78), "{text}: {}\n{}", o.stdout, o.stderr);
        let all = format!("{}{}", o.stdout, o.stderr);
        assert!(all.contains(want) && all.contains(name), "{text}: want {want:?}:\n{all}");
        // One line of error on stderr, starting with the program name.
        let errs: Vec<&str> = o.stderr.lines().filter(|l| l.starts_with("mcp-sentinel:")).collect();
        assert_eq!(errs.len(), 1, "{text}: {}", o.stderr);
    }
}

/// A VS Code `mcp.json` runs as it is: `servers`, `type: "stdio"`, and the
/// backend marked `disabled` stays down.
#[test]
fn a_vscode_file_runs_unchanged() {
    let mut demo = demo_backend("demo", &[]);
    demo["type"] = json!("stdio");
    let mut off = demo_backend("off", &[]);
    off["disabled"] = json!(true);
    let gw = Gateway::start(&json!({ "servers": { "demo": demo, "off": off }, "inputs": [] }));
    let backends = gw.manage_get("/backends").json();
    let state = |n: &str| {
        backends["backends"]
            .as_array()
            .and_then(|a| a.iter().find(|b| b["name"] == json!(n)))
            .map(|b| b["state"].clone())
    };
    assert_eq!(state("demo"), Some(json!("connected")), "{backends}");
    assert_eq!(state("off"), Some(json!("disabled")), "{backends}");
}

/// `--log-format json`: every line the server writes is one JSON object
/// with time, level, target and message.
#[test]
fn json_logs_are_one_object_per_line() {
    let gw =
        Gateway::start_args(&json!({ "mcpServers": { "demo": demo_backend("demo", &[]) } }), &["--log-format", "json"]);
    let log = gw.log();
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() >= 3, "{log}");
    let mut saw_listen = false;
    for line in lines {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        for k in ["time", "level", "target", "message"] {
            assert!(v[k].is_string(), "{k} missing: {line}");
        }
        saw_listen |= v["message"].as_str().is_some_and(|m| m.contains("data plane listening on"));
    }
    assert!(saw_listen, "{log}");
}

/// Two gateways on one management port: the second says it is the
/// management API that collided and how to move it, and exits 1.
#[test]
fn a_management_port_collision_says_what_and_how_to_move_it() {
    let gw = Gateway::start(&json!({ "mcpServers": {} }));
    let taken = gw.manage_addr().expect("manage address").to_string();
    let dir = TempDir::new("collide");
    let path = write(&dir, "c.json", r#"{"mcpServers": {}}"#);
    let mut cmd = Command::new(common::gateway_bin());
    cmd.args(["server", "--listen", "127.0.0.1:0", "--manage-listen", &taken, "--config"])
        .arg(&path)
        .env("XDG_STATE_HOME", dir.path.join("state"));
    let o = run_bounded("second", &mut cmd, T);
    assert_eq!(o.status.and_then(|s| s.code()), Some(1), "{}", o.stderr);
    let line = o.stderr.lines().find(|l| l.starts_with("mcp-sentinel:")).unwrap_or_default();
    assert!(
        line.contains("management API") && line.contains(&taken) && line.contains("--manage-listen"),
        "{}",
        o.stderr
    );
}

/// The ready-made configs under `examples/` are valid as they are (with
/// their variables set).
#[test]
fn every_example_checks() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("examples/") {
        let path = entry.expect("entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        n += 1;
        let mut cmd = Command::new(common::gateway_bin());
        cmd.args(["check", "--config"])
            .arg(&path)
            .env_remove("MCP_SENTINEL_CONFIG")
            .env("TICKETS_TOKEN", "t")
            .env("SEARCH_API_KEY", "k")
            .env("SENTINEL_ADMIN_TOKEN", "a")
            .env("SENTINEL_DEV_TOKEN", "d")
            .env("SENTINEL_SUPPORT_TOKEN", "s")
            .env("SENTINEL_ADMIN_CLIENT_TOKEN", "c")
            .env("HOME", "/home/someone");
        let o = run_bounded("check-example", &mut cmd, T);
        assert_eq!(o.status.and_then(|s| s.code()), Some(0), "{}:\n{}\n{}", path.display(), o.stdout, o.stderr);
    }
    assert!(n >= 3, "examples/ holds {n} configs");
}

/// Bare `mcp-sentinel` says what it runs, not that flags nobody gave are
/// deprecated (here without a terminal, so it stops there, exit 2).
#[test]
fn bare_command_explains_itself() {
    let dir = TempDir::new("bare");
    let mut cmd = Command::new(common::gateway_bin());
    cmd.current_dir(&dir.path).env("XDG_STATE_HOME", dir.path.join("state")).env_remove("MCP_SENTINEL_CONFIG");
    let o = run_bounded("bare", &mut cmd, T);
    assert!(!o.stderr.contains("deprecated"), "{}", o.stderr);
    assert!(o.stderr.contains("no command given: running the server with a TUI attached"), "{}", o.stderr);
    assert!(o.stderr.contains("'mcp-sentinel --help'"), "{}", o.stderr);
    assert_eq!(o.status.and_then(|s| s.code()), Some(2), "{}", o.stderr);
}
