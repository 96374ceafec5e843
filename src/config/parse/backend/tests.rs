//! One backend at a time: transports, type inference, `ca_cert`, the common
//! fields, and the pinned messages of invalid entries.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::testing::{backend, backend_err, parse_ok, stdio};
use crate::config::{Transport, DEFAULT_TIMEOUT};

// ---- inference and transports

#[test]
fn type_inference() {
    assert_eq!(backend(r#"{"command": "x"}"#).transport.unwrap().kind(), "stdio");
    assert_eq!(backend(r#"{"url": "https://h/mcp"}"#).transport.unwrap().kind(), "streamable-http");
    assert_eq!(backend(r#"{"type": "http", "url": "https://h/mcp"}"#).transport.unwrap().kind(), "streamable-http");
}

/// The original trimmed `command` and `url`: a pasted space or newline
/// around them is not an error.
#[test]
fn command_and_url_are_trimmed() {
    let Ok(Transport::Stdio(cmd)) = backend(r#"{"command": " npx\n", "args": [" a "]}"#).transport else { panic!() };
    assert_eq!(cmd.command, "npx");
    assert_eq!(cmd.args, [" a "]);
    let b = backend(r#"{"url": " http://127.0.0.1:1/sse\n"}"#);
    let Ok(Transport::Sse { url, .. }) = b.transport else { panic!("{:?}", b.transport) };
    assert_eq!(url, "http://127.0.0.1:1/sse");
    assert_eq!(b.shown, "http://127.0.0.1:1/sse");
    assert!(backend_err(r#"{"url": "http://h/a b"}"#).contains("expected an http:// or https:// URL with a host"));
    assert!(backend_err(r#"{"command": "  "}"#).contains("must not be empty"));
}

#[test]
fn stdio_full() {
    let b = backend(
        r#"{"command": "uvx", "args": ["a", "${HOME}/x"], "env": {"K": "${TOKEN}", "E": ""}, "cwd": "${HOME}"}"#,
    );
    let Ok(Transport::Stdio(cmd)) = b.transport else { panic!("{:?}", b.transport) };
    assert_eq!(cmd.command, "uvx");
    assert_eq!(cmd.args, ["a", "/home/me/x"]);
    assert_eq!(cmd.env.get("K").map(String::as_str), Some("s3cret"));
    assert_eq!(cmd.env.get("E").map(String::as_str), Some(""));
    assert_eq!(cmd.cwd, Some(PathBuf::from("/home/me")));
}

#[test]
fn sse_with_local_process_and_headers() {
    let b = backend(
        r#"{"type": "sse", "url": "http://127.0.0.1:1/sse", "headers": {"Authorization": "Bearer ${TOKEN}", "X-A": "1"},
            "command": "node", "args": ["srv.js"]}"#,
    );
    assert_eq!(
        b.transport,
        Ok(Transport::Sse {
            url: "http://127.0.0.1:1/sse".into(),
            headers: vec![("Authorization".into(), "Bearer s3cret".into()), ("X-A".into(), "1".into())],
            local: Some(stdio("node", &["srv.js"])),
            ca_cert: None,
        })
    );
}

#[test]
fn streamable_http_with_headers() {
    let b = backend(r#"{"type": "streamable-http", "url": "https://h/mcp?x=${TOKEN}", "headers": {"X": "y"}}"#);
    assert_eq!(
        b.transport,
        Ok(Transport::StreamableHttp {
            url: "https://h/mcp?x=s3cret".into(),
            headers: vec![("X".into(), "y".into())],
            ca_cert: None,
        })
    );
}

/// `ca_cert` of the TLS fixtures, read into the config.
#[test]
fn ca_cert_is_read_and_checked() {
    let fixture = format!("{}/tests/fixtures/tls/ca.pem", env!("CARGO_MANIFEST_DIR"));
    let b = backend(&format!(r#"{{"url": "https://127.0.0.1:1/mcp", "ca_cert": "{fixture}"}}"#));
    let Ok(Transport::StreamableHttp { ca_cert: Some(ca), .. }) = b.transport else { panic!("{:?}", b.transport) };
    assert_eq!(ca.path, PathBuf::from(&fixture));
    assert_eq!(ca.certs.len(), 1);
    let b = backend(&format!(r#"{{"type": "sse", "url": "HTTPS://h/sse", "ca_cert": "{fixture}"}}"#));
    assert!(matches!(b.transport, Ok(Transport::Sse { ca_cert: Some(_), .. })), "{:?}", b.transport);

    let dir = std::env::temp_dir().join(format!("mcp-sentinel-config-ca-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let key = format!("{}/tests/fixtures/tls/key.pem", env!("CARGO_MANIFEST_DIR"));
    let bad_pem = file("bad.pem", "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n");
    let not_der = file("notder.pem", "-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n");
    let https = |ca: &str| format!(r#"{{"url": "https://h/mcp", "ca_cert": "{ca}"}}"#);
    let cases: Vec<(String, String)> = vec![
        (
            https("${HOME}/ca.pem"),
            r#"backend "b": field "ca_cert": cannot read /home/me/ca.pem: No such file or directory (os error 2)"#
                .into(),
        ),
        (https("${NOPE}"), r#"backend "b": field "ca_cert": environment variable ${NOPE} is not set"#.into()),
        (https(""), r#"backend "b": field "ca_cert": must not be empty (omit it to use the built-in roots)"#.into()),
        (
            format!(r#"{{"url": "http://h/mcp", "ca_cert": "{fixture}"}}"#),
            r#"backend "b": field "ca_cert": only used with an https:// url"#.into(),
        ),
        (
            format!(r#"{{"type": "stdio", "command": "x", "ca_cert": "{fixture}"}}"#),
            r#"backend "b": field "ca_cert": not used by a stdio backend"#.into(),
        ),
        (
            r#"{"url": "https://h/mcp", "ca_cert": 1}"#.into(),
            r#"backend "b": field "ca_cert": expected a string, found a number"#.into(),
        ),
        (
            https(&key),
            format!(r#"backend "b": field "ca_cert": {key}: no PEM certificate found (expected BEGIN CERTIFICATE)"#),
        ),
        (https(&bad_pem), format!(r#"backend "b": field "ca_cert": {bad_pem}: not a valid PEM file: "#)),
        (https(&not_der), format!(r#"backend "b": field "ca_cert": {not_der}: certificate 1 cannot be a root: "#)),
    ];
    for (json, want) in cases {
        let got = backend_err(&json);
        assert!(got.starts_with(&want), "for {json}:\n got: {got}\nwant: {want}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn common_fields() {
    let b = backend(
        r#"{"command": "x", "enabled": false, "timeout_s": 2.5, "ping_interval_s": 0.5, "prefix": "gh_1-a",
            "tools": {"allow": ["get_*"], "deny": ["get_secret"]}}"#,
    );
    assert!(!b.enabled);
    assert_eq!(b.timeout, Duration::from_millis(2500));
    assert_eq!(b.ping_interval, Some(Duration::from_millis(500)));
    assert_eq!(b.prefix.as_deref(), Some("gh_1-a"));
    assert_eq!(backend(r#"{"command": "x", "ping_interval_s": 0}"#).ping_interval, None, "0 turns pings off");
    assert_eq!(b.tools.allow, ["get_*"]);
    assert_eq!(b.tools.deny, ["get_secret"]);
    assert!(b.transport.is_ok());
}

// ---- invalid backends: message text pinned

#[test]
fn invalid_backend_messages() {
    let cases: &[(&str, &str)] = &[
        (r#"{"type": "stdio", "args": ["x"]}"#, r#"backend "b": field "command": required for a stdio backend"#),
        (
            r#"{"args": ["x"]}"#,
            r#"backend "b": field "command": a backend needs "command" (stdio) or "url" (sse, streamable-http)"#,
        ),
        (r#"{"type": "sse"}"#, r#"backend "b": field "url": required for an sse backend"#),
        (r#"{"type": "http"}"#, r#"backend "b": field "url": required for a streamable-http backend"#),
        (
            r#"{"type": "grpc", "url": "http://h"}"#,
            r#"backend "b": field "type": unknown type "grpc" (expected "stdio", "sse" or "streamable-http")"#,
        ),
        (r#"{"type": 3}"#, r#"backend "b": field "type": expected a string, found a number"#),
        (r#"{"command": ""}"#, r#"backend "b": field "command": must not be empty"#),
        (r#"{"command": "x", "args": ["a", 1]}"#, r#"backend "b": field "args[1]": expected a string, found a number"#),
        (
            r#"{"command": "x", "args": "a b"}"#,
            r#"backend "b": field "args": expected an array of strings, found a string"#,
        ),
        (r#"{"command": "x", "env": {"A": 1}}"#, r#"backend "b": field "env.A": expected a string, found a number"#),
        (r#"{"command": "x", "cwd": ""}"#, r#"backend "b": field "cwd": must not be empty"#),
        (
            r#"{"command": "x", "url": "http://h"}"#,
            r#"backend "b": field "command": not used by a streamable-http backend (set "type": "sse" to start a local server first)"#,
        ),
        (
            r#"{"type": "stdio", "command": "x", "headers": {}}"#,
            r#"backend "b": field "headers": not used by a stdio backend"#,
        ),
        (
            r#"{"type": "sse", "url": "http://h", "args": ["x"]}"#,
            r#"backend "b": field "command": required when "args" is set"#,
        ),
        (r#"{"url": "ftp://h/x"}"#, r#"backend "b": field "url": expected an http:// or https:// URL with a host"#),
        (r#"{"url": "https:///x"}"#, r#"backend "b": field "url": expected an http:// or https:// URL with a host"#),
        (
            r#"{"url": "http://h", "headers": {"Bad Name": "v"}}"#,
            r#"backend "b": field "headers.Bad Name": not a valid HTTP header name"#,
        ),
        (
            r#"{"url": "http://h", "headers": {"X": "a\r\nY: b"}}"#,
            r#"backend "b": field "headers.X": the value must not contain CR, LF or NUL"#,
        ),
        (
            r#"{"command": "x", "enabled": "yes"}"#,
            r#"backend "b": field "enabled": expected true or false, found a string"#,
        ),
        (
            r#"{"command": "x", "timeout_s": 0}"#,
            r#"backend "b": field "timeout_s": expected a positive number of seconds up to 86400, found 0"#,
        ),
        (
            r#"{"command": "x", "timeout_s": "60"}"#,
            r#"backend "b": field "timeout_s": expected a positive number of seconds up to 86400, found "60""#,
        ),
        (
            r#"{"command": "x", "ping_interval_s": -1}"#,
            r#"backend "b": field "ping_interval_s": expected a number of seconds from 0 (off) to 86400, found -1"#,
        ),
        (
            r#"{"command": "x", "ping_interval_s": 86401}"#,
            r#"backend "b": field "ping_interval_s": expected a number of seconds from 0 (off) to 86400, found 86401"#,
        ),
        (
            r#"{"command": "x", "ping_interval_s": true}"#,
            r#"backend "b": field "ping_interval_s": expected a number of seconds from 0 (off) to 86400, found true"#,
        ),
        (
            r#"{"command": "x", "prefix": "a b"}"#,
            r#"backend "b": field "prefix": must be 1 to 64 characters from A-Z, a-z, 0-9, '_', '-'"#,
        ),
        (
            r#"{"command": "x", "prefix": "a.b"}"#,
            r#"backend "b": field "prefix": must be 1 to 64 characters from A-Z, a-z, 0-9, '_', '-'"#,
        ),
        (
            r#"{"command": "x", "tools": {"allow": "x"}}"#,
            r#"backend "b": field "tools.allow": expected an array of strings, found a string"#,
        ),
        (r#"{"command": "x", "tools": []}"#, r#"backend "b": field "tools": expected an object, found an array"#),
        (r#"{"command": "${NOPE}"}"#, r#"backend "b": field "command": environment variable ${NOPE} is not set"#),
        (
            r#"{"command": "x", "args": ["${NOPE}"]}"#,
            r#"backend "b": field "args[0]": environment variable ${NOPE} is not set"#,
        ),
        (
            r#"{"command": "x", "env": {"K": "${NOPE}"}}"#,
            r#"backend "b": field "env.K": environment variable ${NOPE} is not set"#,
        ),
        (
            r#"{"command": "x", "cwd": "${NOPE}/x"}"#,
            r#"backend "b": field "cwd": environment variable ${NOPE} is not set"#,
        ),
        (r#"{"url": "https://h/${NOPE}"}"#, r#"backend "b": field "url": environment variable ${NOPE} is not set"#),
        (
            r#"{"url": "https://h", "headers": {"Authorization": "Bearer ${NOPE}"}}"#,
            r#"backend "b": field "headers.Authorization": environment variable ${NOPE} is not set"#,
        ),
        ("[1]", r#"backend "b": expected an object, found an array"#),
        ("\"npx\"", r#"backend "b": expected an object, found a string"#),
    ];
    for (json, want) in cases {
        assert_eq!(&backend_err(json), want, "for {json}");
    }
}

#[test]
fn invalid_backend_keeps_readable_fields() {
    let b = backend(r#"{"type": "stdio", "enabled": false, "timeout_s": 5, "prefix": "p"}"#);
    assert_eq!(b.name, "b");
    assert!(!b.enabled);
    assert_eq!(b.timeout, Duration::from_secs(5));
    assert_eq!(b.prefix.as_deref(), Some("p"));
    assert!(b.transport.is_err());
    // A bad common field still fails the backend, after a good transport.
    let b = backend(r#"{"command": "x", "timeout_s": -1, "prefix": "ok"}"#);
    assert_eq!(b.prefix.as_deref(), Some("ok"));
    assert_eq!(b.timeout, DEFAULT_TIMEOUT);
    assert!(b.transport.unwrap_err().contains("timeout_s"));
}

#[test]
fn invalid_backend_names() {
    let c =
        parse_ok(r#"{"mcpServers": {"": {"command": "x"}, "a b": {"command": "x"}, "ok.name-1_2": {"command": "x"}}}"#);
    assert_eq!(
        c.backends[0].transport,
        Err(r#"backend "": the name must be 1 to 64 characters from A-Z, a-z, 0-9, '_', '.', '-'"#.into())
    );
    assert!(c.backends[1].transport.is_err());
    assert!(c.backends[2].transport.is_ok());
    let long = "n".repeat(65);
    let c = parse_ok(&format!(r#"{{"{long}": {{"command": "x"}}}}"#));
    assert!(c.backends[0].transport.is_err());
}

#[test]
fn one_bad_backend_does_not_fail_the_others() {
    let c = parse_ok(r#"{"mcpServers": {"bad": {"type": "stdio"}, "good": {"command": "x"}, "worse": 7}}"#);
    assert_eq!(c.backends.len(), 3);
    assert!(c.backends[0].transport.is_err());
    assert!(c.backends[1].transport.is_ok());
    assert_eq!(c.backends[2].transport, Err(r#"backend "worse": expected an object, found a number"#.into()));
}
