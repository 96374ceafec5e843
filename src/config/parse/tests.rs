//! Whole files: both shapes, whole-file errors, the section values, and the
//! fixtures under `tests/configs`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::load;
use crate::config::testing::{err_line, parse_ok, stdio};
use crate::config::{ManageConfig, ServerConfig, TlsConfig, TokenConfig, TokenSource, Transport};

#[test]
fn current_shape_with_defaults() {
    let c = parse_ok(r#"{"mcpServers": {"a": {"command": "x"}}}"#);
    assert_eq!(c.path.as_deref(), Some(Path::new("c.json")));
    assert_eq!(c.server, ServerConfig::default());
    assert_eq!(c.manage, ManageConfig::default());
    assert_eq!(c.server.listen, "127.0.0.1:9000");
    assert_eq!(c.server.name, "mcp-sentinel");
    assert_eq!(c.server.max_body_bytes, 4_194_304);
    assert_eq!(c.server.max_sessions, 16_384);
    assert_eq!(c.server.backoff_initial, Duration::from_millis(1000));
    assert_eq!(c.server.backoff_max, Duration::from_millis(30_000));
    assert_eq!(c.manage.listen, "127.0.0.1:9001");
    assert_eq!(c.manage.event_buffer, 1000);
    let b = &c.backends[0];
    assert_eq!(b.name, "a");
    assert!(b.enabled);
    assert_eq!(b.timeout, Duration::from_secs(60));
    assert_eq!(b.ping_interval, Some(Duration::from_secs(30)));
    assert_eq!(b.prefix, None);
    assert_eq!(b.transport, Ok(Transport::Stdio(stdio("x", &[]))));
}

#[test]
fn legacy_flat_shape() {
    let c = parse_ok(
        r#"{"fs": {"type": "stdio", "command": "npx", "args": ["-y", "fs"]},
            "w": {"type": "sse", "url": "http://localhost:8080/sse"}}"#,
    );
    assert_eq!(c.backends.len(), 2);
    assert_eq!(c.backends[0].transport, Ok(Transport::Stdio(stdio("npx", &["-y", "fs"]))));
    assert_eq!(
        c.backends[1].transport,
        Ok(Transport::Sse { url: "http://localhost:8080/sse".into(), headers: vec![], local: None, ca_cert: None })
    );
    assert_eq!(c.server, ServerConfig::default());
}

#[test]
fn backends_keep_file_order() {
    let c =
        parse_ok(r#"{"mcpServers": {"zeta": {"command": "z"}, "alpha": {"command": "a"}, "mid": {"command": "m"}}}"#);
    let names: Vec<_> = c.backends.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(names, ["zeta", "alpha", "mid"]);
}

#[test]
fn current_shape_without_mcp_servers_has_no_backends() {
    let c = parse_ok(r#"{"server": {"name": "x"}}"#);
    assert!(c.backends.is_empty());
    assert_eq!(c.server.name, "x");
    assert!(parse_ok(r#"{"mcpServers": null}"#).backends.is_empty());
}

#[test]
fn invalid_files() {
    let cases: &[(&str, &str)] = &[
        ("", "c.json: not valid JSON: EOF while parsing a value at line 1 column 0"),
        ("{\"a\": }", "c.json: not valid JSON: expected value at line 1 column 7"),
        ("[]", "c.json: expected a JSON object at the top level, found an array"),
        ("\"x\"", "c.json: expected a JSON object at the top level, found a string"),
        ("null", "c.json: expected a JSON object at the top level, found null"),
        (r#"{"mcpServers": []}"#, r#"c.json: field "mcpServers": expected an object of backends, found an array"#),
        (r#"{"server": 1}"#, r#"c.json: field "server": expected an object, found a number"#),
        (r#"{"manage": "x"}"#, r#"c.json: field "manage": expected an object, found a string"#),
        (
            r#"{"server": {"listen": "9000"}}"#,
            r#"c.json: field "server.listen": expected an IP address and port such as "127.0.0.1:9000", found "9000""#,
        ),
        (
            r#"{"server": {"listen": "localhost:9000"}}"#,
            r#"c.json: field "server.listen": expected an IP address and port such as "127.0.0.1:9000", found "localhost:9000""#,
        ),
        (r#"{"server": {"name": " "}}"#, r#"c.json: field "server.name": must not be empty"#),
        (
            r#"{"server": {"max_body_bytes": 0}}"#,
            r#"c.json: field "server.max_body_bytes": expected a positive integer, found 0"#,
        ),
        (
            r#"{"server": {"max_body_bytes": 1.5}}"#,
            r#"c.json: field "server.max_body_bytes": expected a positive integer, found 1.5"#,
        ),
        (
            r#"{"server": {"max_sessions": -1}}"#,
            r#"c.json: field "server.max_sessions": expected a positive integer, found -1"#,
        ),
        (
            r#"{"server": {"backoff_initial_ms": 9}}"#,
            r#"c.json: field "server.backoff_initial_ms": expected an integer number of milliseconds from 10 to 86400000, found 9"#,
        ),
        (
            r#"{"server": {"backoff_initial_ms": 1.5}}"#,
            r#"c.json: field "server.backoff_initial_ms": expected an integer number of milliseconds from 10 to 86400000, found 1.5"#,
        ),
        (
            r#"{"server": {"backoff_max_ms": "30s"}}"#,
            r#"c.json: field "server.backoff_max_ms": expected an integer number of milliseconds from 10 to 86400000, found "30s""#,
        ),
        (
            r#"{"server": {"backoff_max_ms": 86400001}}"#,
            r#"c.json: field "server.backoff_max_ms": expected an integer number of milliseconds from 10 to 86400000, found 86400001"#,
        ),
        (
            r#"{"server": {"backoff_initial_ms": 2000, "backoff_max_ms": 1000}}"#,
            r#"c.json: field "server.backoff_max_ms": backoff_max_ms (1000) is less than backoff_initial_ms (2000); the cap must be at least the first wait"#,
        ),
        (
            r#"{"server": {"backoff_initial_ms": 60000}}"#,
            r#"c.json: field "server.backoff_initial_ms": backoff_max_ms (30000) is less than backoff_initial_ms (60000); the cap must be at least the first wait"#,
        ),
        (
            r#"{"server": {"allowed_origins": ["https://a.com/"]}}"#,
            r#"c.json: field "server.allowed_origins[0]": expected an origin such as "https://app.example.com" (scheme, host, optional port, no path), found "https://a.com/""#,
        ),
        (
            r#"{"server": {"allowed_origins": "https://a.com"}}"#,
            r#"c.json: field "server.allowed_origins": expected an array of strings, found a string"#,
        ),
        (
            r#"{"manage": {"listen": "x"}}"#,
            r#"c.json: field "manage.listen": expected an IP address and port such as "127.0.0.1:9000", found "x""#,
        ),
        (
            r#"{"manage": {"listen": "0.0.0.0:9001"}}"#,
            r#"c.json: field "manage.listen": "0.0.0.0:9001" is not a loopback address; set manage.tls, or manage.allow_insecure_remote to true, to serve the management API remotely"#,
        ),
        (
            r#"{"manage": {"tokens": {}}}"#,
            r#"c.json: field "manage.tokens": expected an array of token objects, found an object"#,
        ),
        (
            r#"{"manage": {"tokens": ["abc"]}}"#,
            r#"c.json: field "manage.tokens[0]": expected an object, found a string"#,
        ),
        (
            r#"{"manage": {"tokens": [{"scopes": ["read"], "token_env": "T"}]}}"#,
            r#"c.json: field "manage.tokens[0].name": required (it names the token in the audit log)"#,
        ),
        (
            r#"{"manage": {"tokens": [{"name": "a", "token_env": "T"}]}}"#,
            r#"c.json: field "manage.tokens[0].scopes": required: ["read"] or ["read", "admin"]"#,
        ),
        (
            r#"{"manage": {"tokens": [{"name": "a", "scopes": ["write"], "token_env": "T"}]}}"#,
            r#"c.json: field "manage.tokens[0].scopes": expected ["read"] or ["read", "admin"], found ["write"]"#,
        ),
        (
            r#"{"manage": {"tokens": [{"name": "a", "scopes": [], "token_env": "T"}]}}"#,
            r#"c.json: field "manage.tokens[0].scopes": expected ["read"] or ["read", "admin"], found []"#,
        ),
        (
            r#"{"manage": {"tokens": [{"name": "a", "scopes": ["read"]}]}}"#,
            r#"c.json: field "manage.tokens[0]": needs one of token_env, token_file or sha256"#,
        ),
        (
            r#"{"manage": {"tokens": [{"name": "a", "scopes": ["read"], "token_env": "T", "sha256": "x"}]}}"#,
            r#"c.json: field "manage.tokens[0]": has token_env and sha256; give exactly one token source"#,
        ),
        (
            r#"{"manage": {"tokens": [{"name": "a", "scopes": ["read"], "sha256": "abc"}]}}"#,
            r#"c.json: field "manage.tokens[0].sha256": expected 64 hexadecimal characters (the token's SHA-256)"#,
        ),
        (
            r#"{"manage": {"tokens": [{"name": "a", "scopes": ["read"], "token_env": "1X"}]}}"#,
            r#"c.json: field "manage.tokens[0].token_env": expected an environment variable name"#,
        ),
        (
            r#"{"manage": {"tokens": [{"name": "a", "scopes": ["read"], "token_env": "A"}, {"name": "a", "scopes": ["read"], "token_env": "B"}]}}"#,
            r#"c.json: field "manage.tokens[1].name": duplicate token name "a""#,
        ),
        (
            r#"{"manage": {"tls": {"key": "k.pem"}}}"#,
            r#"c.json: field "manage.tls.cert": required when manage.tls is set (path of a PEM file)"#,
        ),
        (
            r#"{"manage": {"tls": {"cert": "c.pem"}}}"#,
            r#"c.json: field "manage.tls.key": required when manage.tls is set (path of a PEM file)"#,
        ),
        (
            r#"{"manage": {"public_health": "yes"}}"#,
            r#"c.json: field "manage.public_health": expected true or false, found a string"#,
        ),
        (
            r#"{"manage": {"audit_log": ""}}"#,
            r#"c.json: field "manage.audit_log": must not be empty (omit it to disable the audit log)"#,
        ),
        (
            r#"{"manage": {"event_buffer": 9}}"#,
            r#"c.json: field "manage.event_buffer": expected an integer from 10 to 100000, found 9"#,
        ),
        (
            r#"{"manage": {"event_buffer": 100001}}"#,
            r#"c.json: field "manage.event_buffer": expected an integer from 10 to 100000, found 100001"#,
        ),
        (
            r#"{"server": {"allowed_hosts": ["gw.example.com/x"]}}"#,
            r#"c.json: field "server.allowed_hosts[0]": expected a host name such as "gw.example.com" (optionally with :port), found "gw.example.com/x""#,
        ),
        (
            r#"{"server": {"max_connections": 0}}"#,
            r#"c.json: field "server.max_connections": expected a positive integer, found 0"#,
        ),
        (
            r#"{"server": {"max_outbox_bytes": "8M"}}"#,
            r#"c.json: field "server.max_outbox_bytes": expected a positive integer, found "8M""#,
        ),
    ];
    for (json, want) in cases {
        assert_eq!(&err_line(json), want, "for {json}");
    }
}

#[test]
fn server_and_manage_values() {
    let c = parse_ok(
        r#"{"server": {"listen": "[::1]:0", "name": "gw", "allowed_origins": ["HTTPS://App.Example.com:8443"], "max_body_bytes": 10, "max_sessions": 3},
            "manage": {"listen": "0.0.0.0:9001", "allow_insecure_remote": true, "allow_shutdown": true, "public_health": true,
                       "audit_log": "/var/log/a.jsonl", "event_buffer": 10,
                       "tokens": [{"name": "a", "scopes": ["admin"], "token_env": "A"},
                                  {"name": "r", "scopes": ["read"], "token_file": "/t"},
                                  {"name": "h", "scopes": ["admin", "read"], "sha256": "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08"}]}}"#,
    );
    assert_eq!(c.server.listen, "[::1]:0");
    assert_eq!(c.server.name, "gw");
    assert_eq!(c.server.allowed_origins, ["https://app.example.com:8443"]);
    assert_eq!((c.server.max_body_bytes, c.server.max_sessions), (10, 3));
    let m = &c.manage;
    assert!(m.allow_insecure_remote && m.allow_shutdown && m.public_health);
    assert_eq!(m.audit_log.as_deref(), Some(Path::new("/var/log/a.jsonl")));
    assert_eq!(m.event_buffer, 10);
    assert_eq!(
        m.tokens,
        [
            TokenConfig { name: "a".into(), admin: true, source: TokenSource::Env("A".into()) },
            TokenConfig { name: "r".into(), admin: false, source: TokenSource::File("/t".into()) },
            TokenConfig {
                name: "h".into(),
                admin: true,
                source: TokenSource::Sha256("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into())
            },
        ]
    );
    let c = parse_ok(r#"{"server": {"backoff_initial_ms": 10, "backoff_max_ms": 10}}"#);
    assert_eq!(
        (c.server.backoff_initial, c.server.backoff_max),
        (Duration::from_millis(10), Duration::from_millis(10))
    );
    let c = parse_ok(r#"{"server": {"backoff_initial_ms": 250, "backoff_max_ms": 86400000}}"#);
    assert_eq!(
        (c.server.backoff_initial, c.server.backoff_max),
        (Duration::from_millis(250), Duration::from_secs(86_400))
    );
    let c = parse_ok(r#"{"manage": {"listen": "0.0.0.0:9001", "tls": {"cert": "c.pem", "key": "k.pem"}}}"#);
    assert_eq!(c.manage.tls, Some(TlsConfig { cert: "c.pem".into(), key: "k.pem".into() }));
}

#[test]
fn unknown_keys_only_warn() {
    let c = parse_ok(
        r#"{"mcpServers": {"a": {"command": "x", "autoApprove": []}}, "globalShortcut": "x",
            "server": {"transport": "sse"}, "manage": {"enabled": true, "tokens": [{"name": "a", "scopes": ["read"], "token_env": "A", "x": 1}]}}"#,
    );
    assert!(c.backends[0].transport.is_ok());
}

#[test]
fn load_reports_unreadable_file() {
    let e = load(Path::new("/nonexistent/mcp-sentinel.json")).unwrap_err();
    assert_eq!(e.path.as_deref(), Some(Path::new("/nonexistent/mcp-sentinel.json")));
    assert!(e.message.starts_with("cannot read the file: "), "{e}");
}

// ---- fixtures under tests/configs

fn fixture_dir(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/configs").join(kind)
}

fn fixtures(kind: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixture_dir(kind))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

#[test]
fn invalid_fixtures_pin_their_error_line() {
    // File name → the error line after "<path>: ".
    let expected: &[(&str, &str)] = &[
        ("array-top-level.json", "expected a JSON object at the top level, found an array"),
        (
            "backoff-max-below-initial.json",
            r#"field "server.backoff_max_ms": backoff_max_ms (2000) is less than backoff_initial_ms (5000); the cap must be at least the first wait"#,
        ),
        ("event-buffer-range.json", r#"field "manage.event_buffer": expected an integer from 10 to 100000, found 5"#),
        (
            "manage-remote-without-tls.json",
            r#"field "manage.listen": "0.0.0.0:9001" is not a loopback address; set manage.tls, or manage.allow_insecure_remote to true, to serve the management API remotely"#,
        ),
        ("max-body-zero.json", r#"field "server.max_body_bytes": expected a positive integer, found 0"#),
        ("mcpservers-not-object.json", r#"field "mcpServers": expected an object of backends, found an array"#),
        ("not-json.json", "not valid JSON: trailing comma at line 3 column 30"),
        (
            "server-listen-bad.json",
            r#"field "server.listen": expected an IP address and port such as "127.0.0.1:9000", found "localhost:9000""#,
        ),
        ("tls-missing-key.json", r#"field "manage.tls.key": required when manage.tls is set (path of a PEM file)"#),
        (
            "token-bad-scopes.json",
            r#"field "manage.tokens[0].scopes": expected ["read"] or ["read", "admin"], found ["write"]"#,
        ),
        (
            "token-two-sources.json",
            r#"field "manage.tokens[0]": has token_env and token_file; give exactly one token source"#,
        ),
    ];
    let files = fixtures("invalid");
    let names: Vec<String> = files.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    let listed: Vec<&str> = expected.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, listed, "every invalid fixture needs a pinned line");
    for (path, (_, want)) in files.iter().zip(expected) {
        let got = load(path).unwrap_err().to_string();
        assert_eq!(got, format!("{}: {want}", path.display()));
    }
}

#[test]
fn valid_fixtures_load() {
    let files = fixtures("valid");
    assert!(files.len() >= 3);
    for path in &files {
        let c = load(path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.path.as_deref(), Some(path.as_path()));
        let name = path.file_name().unwrap().to_string_lossy();
        if name != "bad-backend-others-run.json" {
            for b in &c.backends {
                assert!(b.transport.is_ok(), "{}: {:?}", path.display(), b.transport);
            }
        }
    }
    let c = load(&fixture_dir("valid").join("current-all-types.json")).unwrap();
    let kinds: Vec<_> = c.backends.iter().map(|b| b.transport.as_ref().unwrap().kind()).collect();
    assert_eq!(kinds, ["stdio", "sse", "streamable-http"]);
    assert_eq!(c.backends[0].ping_interval, Some(Duration::from_secs(15)));
    assert_eq!((c.server.backoff_initial, c.server.backoff_max), (Duration::from_millis(500), Duration::from_secs(60)));
    let c = load(&fixture_dir("valid").join("bad-backend-others-run.json")).unwrap();
    assert_eq!(
        c.backends[0].transport,
        Err(r#"backend "broken": field "command": required for a stdio backend"#.into())
    );
    assert!(c.backends[1].transport.is_ok());
}

/// Other clients' files where the meaning is clear: Claude Desktop's and
/// Cursor's `disabled`, VS Code's `servers` with `type` `stdio`/`http`/`sse`
/// (and its `inputs`, warned about), `streamableHttp`, and a URL ending in
/// `/sse` taken as SSE.
#[test]
fn other_clients_shapes() {
    let c = parse_ok(
        r#"{"servers": {
              "fs": {"type": "stdio", "command": "npx", "args": ["-y", "fs"]},
              "remote": {"type": "http", "url": "https://example.com/mcp"},
              "old": {"type": "sse", "url": "https://example.com/events"}},
            "inputs": [{"id": "k", "type": "promptString"}]}"#,
    );
    let kinds: Vec<&str> = c
        .backends
        .iter()
        .map(|b| match b.transport {
            Ok(Transport::Stdio(_)) => "stdio",
            Ok(Transport::StreamableHttp { .. }) => "http",
            Ok(Transport::Sse { .. }) => "sse",
            Err(_) => "err",
        })
        .collect();
    assert_eq!(kinds, ["stdio", "http", "sse"]);
    let c = parse_ok(
        r#"{"mcpServers": {
              "off": {"command": "x", "disabled": true},
              "on": {"command": "x", "disabled": false},
              "cline": {"type": "streamableHttp", "url": "http://127.0.0.1:1/mcp"},
              "bySuffix": {"url": "http://127.0.0.1:1/sse"},
              "bySuffixQuery": {"url": "http://127.0.0.1:1/sse/?k=v"},
              "byDefault": {"url": "http://127.0.0.1:1/mcp"}}}"#,
    );
    let b = |n: &str| c.backends.iter().find(|b| b.name == n).unwrap();
    assert!(!b("off").enabled && b("on").enabled);
    assert!(matches!(b("cline").transport, Ok(Transport::StreamableHttp { .. })));
    assert!(matches!(b("bySuffix").transport, Ok(Transport::Sse { .. })));
    assert!(matches!(b("bySuffixQuery").transport, Ok(Transport::Sse { .. })));
    assert!(matches!(b("byDefault").transport, Ok(Transport::StreamableHttp { .. })));
    let c = parse_ok(r#"{"mcpServers": {"both": {"command": "x", "enabled": true, "disabled": true}}}"#);
    assert_eq!(
        c.backends[0].transport,
        Err("backend \"both\": field \"disabled\": contradicts \"enabled\": true; give only one of the two".into())
    );
}

/// Formats that are not ours get a one-line error naming them.
#[test]
fn foreign_formats_are_named() {
    let e = err_line(r#"{"backends": {"a": {"command": "x"}}}"#);
    assert!(e.contains("argus-mcp") && e.contains("mcpServers"), "{e}");
    let e = err_line("# argus\nbackends:\n  a:\n    command: x\n");
    assert!(e.contains("not valid JSON") && e.contains("YAML"), "{e}");
    let e = err_line("{ broken");
    assert!(!e.contains("YAML"), "{e}");
}

#[test]
fn views_parse_and_refuse_what_they_cannot_mean() {
    let c = parse_ok(
        r#"{"mcpServers": {"fs": {"command": "x"}, "git": {"command": "y"}},
            "views": {"dev": {"backends": ["fs"], "tools": {"allow": ["fs__*"], "deny": ["*delete*"]},
                              "description": "developers"},
                      "all_of-it": {}}}"#,
    );
    assert_eq!(c.views.len(), 2);
    let dev = &c.views[0];
    assert_eq!(dev.name, "dev");
    assert_eq!(dev.backends.as_deref(), Some(&["fs".to_owned()][..]));
    assert_eq!(dev.tools.allow, vec!["fs__*"]);
    assert_eq!(dev.tools.deny, vec!["*delete*"]);
    assert_eq!(dev.description.as_deref(), Some("developers"));
    assert!(dev.has_backend("fs") && !dev.has_backend("git"));
    assert_eq!(c.views[1].backends, None);
    assert!(c.views[1].has_backend("git"));
    // A config with only views is the current shape, not the legacy one.
    assert!(parse_ok(r#"{"views": {}}"#).backends.is_empty());

    let base = r#"{"mcpServers": {"fs": {"command": "x"}}, "views": "#;
    let bad = |views: &str| err_line(&format!("{base}{views}}}"));
    assert_eq!(
        bad(r#"{"dev": {"backends": ["fs", "gti"]}}"#),
        "c.json: field \"views.dev.backends[1]\": no backend named \"gti\" is configured (backends: fs)"
    );
    assert!(bad(r#"{"a b": {}}"#).starts_with("c.json: field \"views.a b\": a view name is 1 to 64"));
    assert!(bad(&format!(r#"{{"{}": {{}}}}"#, "v".repeat(65))).contains("a view name is 1 to 64"));
    assert!(bad(r#"{"dev": []}"#).contains("field \"views.dev\": expected an object"));
    assert!(bad(r#"[]"#).contains("field \"views\": expected an object of views"));
    assert!(bad(r#"{"dev": {"backends": "fs"}}"#).contains("field \"views.dev.backends\""));
    assert!(bad(r#"{"dev": {"tools": {"allow": [1]}}}"#).contains("field \"views.dev.tools.allow[0]\""));
    assert!(bad(r#"{"dev": {"description": 3}}"#).contains("field \"views.dev.description\""));
}
