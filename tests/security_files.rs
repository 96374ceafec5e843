//! Files that hold secrets, against the real binary (the security issue's
//! findings 5 and 9 and its low findings): the generated admin token is
//! never trusted from disk and is new at every start, so a token captured
//! while the gateway was down is dead once it starts, and the TUI's client
//! follows the new one; token files, the audit log, the TLS key, the
//! configuration and profiles files are refused (exit 78, one line) or
//! warned about when other users could change or read them.
//!
//! Tests that need "another user" hand a file to uid 65534 (nobody), which
//! only root can do; elsewhere they print a SKIPPED line.

#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

mod common;

use common::{demo_backend, get_free_port, http, run_bounded, Gateway, Output, TempDir};
use mcp_sentinel::client::{Client, Target, TokenSource};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{symlink, DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const T: Duration = Duration::from_secs(15);
const EXIT_CONFIG: i32 = 78;

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

fn write(p: &Path, text: &str, m: u32) {
    std::fs::write(p, text).unwrap();
    chmod(p, m);
}

fn private_dir(p: &Path) -> PathBuf {
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(p).unwrap();
    p.to_path_buf()
}

/// Only root can give a file to another user; others skip, saying so.
fn is_root(test: &str) -> bool {
    if mcp_sentinel::secfile::euid() == 0 {
        return true;
    }
    let _ = writeln!(std::io::stderr(), "SKIPPED: {test}: needs root to give a file to uid 65534");
    false
}

/// Runs `mcp-sentinel server` on `config` (no backends needed) in `dir`,
/// with the XDG directories under it, expecting it to refuse to start. A
/// gateway that starts instead runs until the timeout and fails the test.
fn refused_start(dir: &TempDir, config: &Value, extra: &[&str]) -> Output {
    let path = dir.path.join("config.json");
    write(&path, &config.to_string(), 0o600);
    let out = run_bounded(
        "gateway",
        Command::new(common::gateway_bin())
            .args(["server", "--config", path.to_str().unwrap(), "--listen", "127.0.0.1:0"])
            .args(["--manage-listen", "127.0.0.1:0"])
            .args(extra)
            .env("XDG_STATE_HOME", dir.path.join("state"))
            .env("XDG_CONFIG_HOME", dir.path.join("config"))
            .env_remove("RUST_LOG"),
        T,
    );
    assert!(!out.timed_out, "the gateway started instead of refusing:\n{}", out.stderr);
    assert_eq!(out.status.and_then(|s| s.code()), Some(EXIT_CONFIG), "{}", out.stderr);
    let errors: Vec<&str> = out.stderr.lines().filter(|l| l.starts_with("mcp-sentinel: ")).collect();
    assert_eq!(errors.len(), 1, "one error line: {}", out.stderr);
    out
}

/// The one error line of a refused start.
fn error_line(out: &Output) -> String {
    out.stderr.lines().find(|l| l.starts_with("mcp-sentinel: ")).unwrap_or_default().to_owned()
}

fn post(addr: std::net::SocketAddr, path: &str, token: &str) -> u16 {
    let auth = format!("Bearer {token}");
    http("POST", &format!("http://{addr}/manage/v1{path}"), &[("Authorization", &auth)], Some(b"")).status
}

fn one_demo() -> Value {
    json!({"mcpServers": {"alpha": demo_backend("alpha", &[])}})
}

fn no_backends() -> Value {
    json!({"mcpServers": {}})
}

// ---------------------------------------------------------------------------
// Finding 5: the generated admin token file
// ---------------------------------------------------------------------------

/// A 0644 token planted in a world-writable state directory used to become
/// a working admin token (POST /reload answered 200). Now the directory is
/// refused before anything is read or written.
#[test]
fn planted_token_in_a_world_writable_state_dir_is_refused() {
    let dir = TempDir::new("planted");
    let state = dir.path.join("state/mcp-sentinel");
    private_dir(&state);
    chmod(&state, 0o777);
    let port = get_free_port();
    let token_file = state.join(format!("manage-{port}.token"));
    write(&token_file, "planted-admin-token\n", 0o644);
    let out = refused_start(&dir, &no_backends(), &["--manage-listen", &format!("127.0.0.1:{port}")]);
    let line = error_line(&out);
    assert!(line.contains(&token_file.display().to_string()), "names the file: {line}");
    assert!(
        line.contains(&format!("directory {} can be written by other users (mode 0777)", state.display())),
        "{line}"
    );
    assert!(line.contains("chmod go-w"), "says what to fix: {line}");
    assert_eq!(std::fs::read_to_string(&token_file).unwrap(), "planted-admin-token\n");
}

/// A token already in the file (planted, or left by an earlier run) is
/// never trusted: the gateway writes its own and the old one gets 401.
#[test]
fn a_token_already_in_the_file_is_never_trusted() {
    let dir = TempDir::new("preexisting");
    let file = private_dir(&dir.path.join("tokens")).join("admin.token");
    write(&file, "old-or-planted-token\n", 0o644);
    let gw = Gateway::start_args(&one_demo(), &["--manage-token-file", file.to_str().unwrap()]);
    let addr = gw.manage_addr().unwrap();
    assert_eq!(post(addr, "/reload", "old-or-planted-token"), 401);
    let token = std::fs::read_to_string(&file).unwrap();
    assert_eq!(token.trim().len(), 64);
    assert_eq!(mode(&file), 0o600);
    assert_eq!(post(addr, "/reload", token.trim()), 200);
}

#[test]
fn a_link_or_another_users_file_at_the_token_path_is_refused() {
    let dir = TempDir::new("token-link");
    let tokens = private_dir(&dir.path.join("tokens"));
    let victim = dir.path.join("victim");
    write(&victim, "keep", 0o600);
    let link = tokens.join("admin.token");
    symlink(&victim, &link).unwrap();
    let out = refused_start(&dir, &no_backends(), &["--manage-token-file", link.to_str().unwrap()]);
    let line = error_line(&out);
    assert!(line.contains("management token file") && line.contains("is a symbolic link"), "{line}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep", "the link's target is untouched");
    if !is_root("a_link_or_another_users_file_at_the_token_path_is_refused (other user)") {
        return;
    }
    std::fs::remove_file(&link).unwrap();
    write(&link, "theirs\n", 0o600);
    std::os::unix::fs::chown(&link, Some(65534), Some(65534)).unwrap();
    let out = refused_start(&dir, &no_backends(), &["--manage-token-file", link.to_str().unwrap()]);
    let line = error_line(&out);
    assert!(line.contains("belongs to uid 65534, not to this user") && line.contains("remove it"), "{line}");
}

// ---------------------------------------------------------------------------
// Finding 9: rotation, and the TUI's client following it
// ---------------------------------------------------------------------------

/// Accepts one connection on `listener`, returns the `Authorization`
/// header it carried, and answers 200 `{}` like a management API would.
fn impostor_capture(listener: std::net::TcpListener) -> Option<String> {
    let (mut conn, _) = listener.accept().ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut reader = BufReader::new(conn.try_clone().ok()?);
    let mut auth = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("authorization") {
                auth = Some(v.trim().to_owned());
            }
        }
    }
    let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}");
    auth
}

/// A local user who binds the management port while the gateway is down
/// captures the token the TUI sends; that token is dead once the gateway
/// starts again, and the same client (no restart) uses the new one.
#[test]
fn the_generated_token_rotates_at_each_start_and_the_tui_client_follows() {
    let dir = TempDir::new("rotate");
    let file = private_dir(&dir.path.join("tokens")).join("admin.token");
    let port = get_free_port();
    let listen = format!("127.0.0.1:{port}");
    let args = ["--manage-listen", listen.as_str(), "--manage-token-file", file.to_str().unwrap()];
    let target = Target {
        name: "local".into(),
        url: format!("http://{listen}"),
        token: TokenSource::File(file.clone()),
        ca_cert: None,
    };
    let client = Client::new(&target).unwrap();

    let mut first = Gateway::start_args(&one_demo(), &args);
    let token1 = std::fs::read_to_string(&file).unwrap().trim().to_owned();
    assert!(client.status().is_ok());
    first.stop();

    // The gateway is down; an impostor takes its port and the client, still
    // polling, hands it the token from the file.
    let impostor = std::net::TcpListener::bind(&listen).unwrap();
    let capture = std::thread::spawn(move || impostor_capture(impostor));
    let _ = client.status();
    let captured = capture.join().unwrap().expect("the client sent a token");
    assert_eq!(captured, format!("Bearer {token1}"));

    let second = Gateway::start_args(&one_demo(), &args);
    let addr = second.manage_addr().unwrap();
    assert_eq!(addr.port(), port);
    let token2 = std::fs::read_to_string(&file).unwrap().trim().to_owned();
    assert_ne!(token1, token2, "a new token at each start");
    assert_eq!(token2.len(), 64);
    assert_eq!(mode(&file), 0o600);
    assert_eq!(post(addr, "/reload", &token1), 401, "the captured token is dead");
    assert_eq!(post(addr, "/reload", &token2), 200);
    // The client built before the restart reads the new token by itself.
    let status = client.status().unwrap();
    assert_eq!(status.server.pid, second.pid());
    assert_eq!(client.reload().unwrap().result, "ok");
}

// ---------------------------------------------------------------------------
// Configured token files, the TLS key, the configuration file
// ---------------------------------------------------------------------------

fn token_file_config(path: &Path) -> Value {
    json!({"mcpServers": {}, "manage": {"tokens": [
        {"name": "ops", "scopes": ["read", "admin"], "token_file": path}
    ]}})
}

#[test]
fn configured_token_files_others_can_change_or_oversized_are_refused() {
    let dir = TempDir::new("token-file");
    let tokens = private_dir(&dir.path.join("tokens"));
    let file = tokens.join("ops.token");
    write(&file, "ops-token-123\n", 0o666);
    let out = refused_start(&dir, &token_file_config(&file), &[]);
    let line = error_line(&out);
    assert!(line.contains("manage.tokens[0] (ops): token file"), "names the entry: {line}");
    assert!(line.contains("can be written by other users (mode 0666)") && line.contains("chmod go-w"), "{line}");
    assert!(!line.contains("ops-token-123"), "never the token: {line}");

    write(&file, &"a".repeat(64 * 1024 + 1), 0o600);
    let line = error_line(&refused_start(&dir, &token_file_config(&file), &[]));
    assert!(line.contains("larger than 64 KiB"), "{line}");

    let fifo = tokens.join("fifo.token");
    let made = Command::new("mkfifo").arg("-m").arg("600").arg(&fifo).status();
    if made.is_ok_and(|s| s.success()) {
        let line = error_line(&refused_start(&dir, &token_file_config(&fifo), &[]));
        assert!(line.contains("not a regular file"), "never blocks on a FIFO: {line}");
    }

    // In a directory others can write.
    write(&file, "ops-token-123\n", 0o600);
    chmod(&tokens, 0o777);
    let line = error_line(&refused_start(&dir, &token_file_config(&file), &[]));
    assert!(line.contains(&format!("directory {} can be written", tokens.display())), "{line}");
}

#[test]
fn a_readable_token_file_a_readable_tls_key_and_a_writable_config_are_warned_about() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls");
    let dir = TempDir::new("warnings");
    let keys = private_dir(&dir.path.join("keys"));
    let key = keys.join("key.pem");
    std::fs::copy(fixtures.join("key.pem"), &key).unwrap();
    chmod(&key, 0o644);
    let token = keys.join("ops.token");
    write(&token, "ops-token-456\n", 0o644);
    let mut config = token_file_config(&token);
    config["mcpServers"] = json!({"alpha": demo_backend("alpha", &[])});
    config["manage"]["tls"] = json!({"cert": fixtures.join("cert.pem"), "key": key});
    // The configuration itself, world-writable.
    let config_path = dir.path.join("config.json");
    write(&config_path, &config.to_string(), 0o666);
    let mut gw = common::spawn_logged(
        Command::new(common::gateway_bin()).args(["server", "--config", config_path.to_str().unwrap()]).args([
            "--listen",
            "127.0.0.1:0",
            "--manage-listen",
            "127.0.0.1:0",
        ]),
        &dir.path.join("state"),
    );
    let log = gw.wait_for("management API listening on https://", T);
    gw.stop();
    assert!(log.contains("management API listening on https://"), "started: {log}");
    let warned = |needle: &str| log.lines().any(|l| l.contains("WARN") && l.contains(needle));
    assert!(
        warned(&format!(
            "manage.tokens[0] (ops): token file {} can be read by other users (mode 0644)",
            token.display()
        )),
        "{log}"
    );
    assert!(warned(&format!("manage.tls.key: {} can be read by other users (mode 0644)", key.display())), "{log}");
    assert!(
        warned(&format!("configuration file {}: can be written by other users (mode 0666)", config_path.display())),
        "{log}"
    );
    assert!(!log.contains("ops-token-456"), "never the token");
}

#[test]
fn a_tls_key_others_can_change_is_refused() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls");
    let dir = TempDir::new("tls-key");
    let keys = private_dir(&dir.path.join("keys"));
    let key = keys.join("key.pem");
    std::fs::copy(fixtures.join("key.pem"), &key).unwrap();
    chmod(&key, 0o664);
    let config = json!({"mcpServers": {}, "manage": {
        "tokens": [{"name": "h", "scopes": ["read"], "sha256": "00".repeat(32)}],
        "tls": {"cert": fixtures.join("cert.pem"), "key": key}}});
    let line = error_line(&refused_start(&dir, &config, &[]));
    assert!(
        line.contains(&format!("manage.tls.key: {}: can be written by other users (mode 0664)", key.display())),
        "{line}"
    );
}

// ---------------------------------------------------------------------------
// The audit log
// ---------------------------------------------------------------------------

#[test]
fn audit_log_directories_are_private_and_unsafe_audit_files_are_refused() {
    let dir = TempDir::new("audit");
    let audit = dir.path.join("logs/audit/audit.jsonl");
    let mut config = one_demo();
    config["manage"] = json!({"audit_log": audit});
    let gw = Gateway::start_args(&config, &["--manage-token-file", dir.path.join("t/admin.token").to_str().unwrap()]);
    assert_eq!(mode(&dir.path.join("logs")), 0o700, "created 0700, not 0755");
    assert_eq!(mode(&dir.path.join("logs/audit")), 0o700);
    assert_eq!(mode(&audit), 0o600);
    assert_eq!(post(gw.manage_addr().unwrap(), "/reload", "wrong"), 401);
    assert!(common::wait_until(Duration::from_secs(5), || std::fs::read_to_string(&audit)
        .is_ok_and(|t| t.contains("auth_failed"))));
    drop(gw);

    let mut config = no_backends();
    // Writable by others.
    chmod(&audit, 0o666);
    config["manage"] = json!({"audit_log": audit});
    let line = error_line(&refused_start(&dir, &config, &[]));
    assert!(
        line.contains("manage.audit_log: ") && line.contains("can be written by other users (mode 0666)"),
        "{line}"
    );
    // A link, e.g. to a file the gateway's user can write.
    let victim = dir.path.join("victim");
    write(&victim, "keep", 0o600);
    let link = dir.path.join("logs/link.jsonl");
    symlink(&victim, &link).unwrap();
    config["manage"] = json!({"audit_log": link});
    let line = error_line(&refused_start(&dir, &config, &[]));
    assert!(line.contains("manage.audit_log: ") && line.contains("is a symbolic link"), "{line}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
    if !is_root("audit_log_directories_are_private_and_unsafe_audit_files_are_refused (other user)") {
        return;
    }
    chmod(&audit, 0o600);
    std::os::unix::fs::chown(&audit, Some(65534), Some(65534)).unwrap();
    config["manage"] = json!({"audit_log": audit});
    let line = error_line(&refused_start(&dir, &config, &[]));
    assert!(line.contains("manage.audit_log: ") && line.contains("belongs to uid 65534"), "{line}");
}

// ---------------------------------------------------------------------------
// profiles.json
// ---------------------------------------------------------------------------

fn profile_cmd(dir: &Path, args: &[&str]) -> Output {
    run_bounded(
        "profile",
        Command::new(common::gateway_bin())
            .args(args)
            .env("XDG_CONFIG_HOME", dir.join("config"))
            .env("XDG_STATE_HOME", dir.join("state"))
            .env("HOME", dir),
        T,
    )
}

#[test]
fn a_profiles_file_others_control_is_refused_and_a_readable_one_warned_about() {
    let dir = TempDir::new("profiles");
    let cfg_dir = private_dir(&dir.path.join("config/mcp-sentinel"));
    let file = cfg_dir.join("profiles.json");
    // A link to a file elsewhere: someone else's choice of where tokens go.
    let elsewhere = dir.path.join("elsewhere.json");
    write(&elsewhere, r#"{"profiles": [{"name": "evil", "url": "http://127.0.0.1:1"}]}"#, 0o600);
    symlink(&elsewhere, &file).unwrap();
    for args in [&["profile", "list"][..], &["tui"][..]] {
        let out = profile_cmd(&dir.path, args);
        assert_eq!(out.status.and_then(|s| s.code()), Some(EXIT_CONFIG), "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains("profiles.json: is a symbolic link"), "{}", out.stderr);
        assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
    }
    std::fs::remove_file(&file).unwrap();
    write(&file, r#"{"profiles": [{"name": "a", "url": "http://127.0.0.1:9101"}]}"#, 0o622);
    let out = profile_cmd(&dir.path, &["profile", "list"]);
    assert_eq!(out.status.and_then(|s| s.code()), Some(EXIT_CONFIG), "{}", out.stderr);
    assert!(out.stderr.contains("can be written by other users (mode 0622)"), "{}", out.stderr);
    chmod(&file, 0o644);
    let out = profile_cmd(&dir.path, &["profile", "list"]);
    assert!(out.success(), "{}", out.stderr);
    assert!(out.stderr.contains("warning:") && out.stderr.contains("can be read by other users (mode 0644)"));
    // Saving makes it private again.
    assert!(profile_cmd(&dir.path, &["profile", "use", "a"]).success());
    assert_eq!(mode(&file), 0o600);
}
