//! The security issue's findings about what reaches logs, events and
//! backends: request text escaped and bounded, failed-auth events rate
//! limited, secrets never shown (whatever form the config gives them),
//! and the gateway's own token variables withheld from backends.

mod common;

use common::*;
use serde_json::json;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

fn raw(addr: std::net::SocketAddr, request: &[u8]) -> String {
    let mut c = TcpStream::connect(addr).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    c.write_all(request).expect("write");
    let mut out = Vec::new();
    let _ = c.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Finding 6: unauthenticated log injection and flooding.
#[test]
fn request_text_cannot_forge_log_lines_bloat_audit_lines_or_flush_the_event_ring() {
    let dir = TempDir::new("inject");
    let audit = dir.path.join("audit.log");
    let gw = Gateway::start(&json!({"mcpServers": {"alpha": demo_backend("alpha", &[])},
        "manage": {"audit_log": audit}}));
    let manage = gw.manage_addr().expect("manage address");
    // Control characters in the request line are refused before anything is logged.
    for evil in [
        &b"GET /manage/v1/x\rFAKE LOG LINE HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        b"GET /manage/v1/\x1b[31mred HTTP/1.1\r\nHost: x\r\n\r\n",
    ] {
        assert!(raw(manage, evil).starts_with("HTTP/1.1 400"));
    }
    // A long path gets its 401, and an audit line of bounded size.
    let long = format!("GET /manage/v1/{} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "a".repeat(12_000));
    assert!(raw(manage, long.as_bytes()).starts_with("HTTP/1.1 401"));
    // 1,000 bad tokens do not push everything else out of the ring.
    let first = gw.manage_get("/events?limit=1").json()["events"][0]["id"].as_u64().expect("an event");
    for _ in 0..1000 {
        let r = http("GET", &format!("http://{manage}/manage/v1/status"), &[("Authorization", "Bearer nope")], None);
        assert_eq!(r.status, 401);
    }
    let events = gw.manage_get("/events?after=0&limit=1000").json();
    let list = events["events"].as_array().expect("events");
    assert_eq!(list[0]["id"].as_u64(), Some(first), "the oldest events are still there");
    let fails = list.iter().filter(|e| e["kind"] == "manage.auth_failed").count();
    assert!(fails <= 25, "{fails} auth-failure events for 1,000 failures");
    // The audit file has every failure, each line short and clean.
    let text = std::fs::read_to_string(&audit).expect("audit log");
    assert!(text.lines().count() >= 1001, "{} audit lines", text.lines().count());
    assert!(text.lines().all(|l| l.len() < 1200), "an audit line is too long");
    let log = gw.log();
    assert!(!log.contains("FAKE LOG LINE") && !log.contains('\u{1b}'), "the log carries injected text");
}

/// Finding 7: secrets shown despite redaction (expanded into a URL path, or
/// given as `--header=…` / `-H…` arguments).
#[test]
fn secrets_never_show_whatever_form_the_config_gives_them() {
    let port = get_free_port();
    let cfg = json!({"mcpServers": {
        "url": {"url": format!("http://127.0.0.1:{port}/${{SENT_PATH_SECRET}}/mcp"), "timeout_s": 2},
        "args": {"command": DEMO_BIN, "args": ["--name", "args", "--header=Authorization: Bearer HDRSECRET1",
                 "-HX-Api-Key: HDRSECRET2", "--api-key=HDRSECRET3"]},
    }});
    // The demo refuses unknown flags and exits: a failing stdio backend
    // whose command line is shown in errors and events.
    let gw = Gateway::start_env(&cfg, &[], &[("SENT_PATH_SECRET", "pathsecret-0042")]);
    let backends = gw.manage_get("/backends").text();
    assert!(wait_until(Duration::from_secs(5), || gw.log().contains("backend.failed")));
    let events = gw.manage_get("/events?limit=1000").text();
    for text in [&backends, &events, &gw.log()] {
        for secret in ["pathsecret-0042", "HDRSECRET1", "HDRSECRET2", "HDRSECRET3"] {
            assert!(!text.contains(secret), "{secret} shown in:\n{text}");
        }
    }
    assert!(backends.contains("${SENT_PATH_SECRET}"), "the reference is shown instead: {backends}");
}

/// Finding 8: stdio backends inherited the variables that hold the
/// gateway's own management tokens.
#[test]
fn backends_do_not_get_the_gateways_token_variables_unless_given_explicitly() {
    let dir = TempDir::new("envleak");
    let plain = dir.path.join("plain.env");
    let given = dir.path.join("given.env");
    let sh = |out: &std::path::Path, name: &str| json!({"command": "sh", "args": ["-c", format!("env > '{}'; exec {DEMO_BIN} --name {name}", out.display())]});
    let mut given_backend = sh(&given, "given");
    given_backend["env"] = json!({"SENT_OPS_TOKEN": "${SENT_OPS_TOKEN}"});
    let cfg = json!({"mcpServers": {"plain": sh(&plain, "plain"), "given": given_backend},
        "manage": {"tokens": [{"name": "ops", "scopes": ["read", "admin"], "token_env": "SENT_OPS_TOKEN"}]}});
    let _gw = Gateway::start_env(&cfg, &[], &[("SENT_OPS_TOKEN", "ops-token-value-7"), ("SENT_OTHER", "kept")]);
    let read = |p: &std::path::Path| std::fs::read_to_string(p).unwrap_or_default();
    assert!(wait_until(Duration::from_secs(5), || read(&plain).contains("SENT_OTHER")
        && read(&given).contains("SENT_OTHER")));
    assert!(!read(&plain).contains("SENT_OPS_TOKEN"), "the token variable reached the backend");
    assert!(read(&given).contains("SENT_OPS_TOKEN=ops-token-value-7"), "an explicit env entry passes it on");
}
