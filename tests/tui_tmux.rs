//! The TUI in a real terminal (tmux), as a person uses it: two real servers
//! with different backends, two profiles saved with `mcp-sentinel profile
//! add`, `mcp-sentinel tui` watching the first, `p` to switch to the second,
//! `r` `y` to reload it, `q` to quit; then both servers still answer the
//! management API and MCP — the TUI never owns a server's lifetime. And the
//! legacy combined mode, where quitting the TUI does stop its server (and
//! its help says so). And the original MCP Sentinel's functions by their
//! new ways: the command palette, a remembered theme, the classic keys.

#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

mod common;

use common::{demo_backend, get_free_port, http, in_ci, run_bounded, Gateway, TempDir, GATEWAY_BIN};
use serde_json::json;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(20);

/// A private tmux server (its own socket) running one session; killed,
/// with the pane's process, when dropped.
struct Tmux {
    socket: String,
    pane_pid: Option<u32>,
    /// The pane's program once seen (it outlives its shell if it hangs).
    program: std::cell::Cell<Option<u32>>,
}

impl Tmux {
    fn available() -> bool {
        let ok = Command::new("tmux").arg("-V").output().is_ok_and(|o| o.status.success());
        if !ok {
            assert!(!in_ci(), "tmux is required in CI (.ci/run installs it)");
            eprintln!("SKIPPED: tmux is not installed");
        }
        ok
    }

    fn start(tag: &str, command: &str, env: &[(&str, &Path)]) -> Tmux {
        let socket = format!("mcp-sentinel-test-{tag}-{}", std::process::id());
        let mut cmd = Command::new("tmux");
        cmd.args(["-L", &socket, "-f", "/dev/null", "new-session", "-d", "-s", "t", "-x", "120", "-y", "40"]);
        for (k, v) in env {
            cmd.arg("-e").arg(format!("{k}={}", v.display()));
        }
        // Keep the pane after the command ends, to read its last words.
        cmd.arg(format!("{command}; echo EXIT=$?; sleep 600"));
        let out = run_bounded("tmux", &mut cmd, T);
        assert!(out.success(), "tmux new-session failed: {}", out.stderr);
        let mut t = Tmux { socket, pane_pid: None, program: Default::default() };
        let pid = t.tmux(&["display-message", "-p", "-t", "t", "#{pane_pid}"]);
        t.pane_pid = pid.trim().parse().ok();
        t
    }

    fn tmux(&self, args: &[&str]) -> String {
        let out = run_bounded("tmux", Command::new("tmux").args(["-L", &self.socket]).args(args), T);
        assert!(out.success(), "tmux {args:?}: {}", out.stderr);
        out.stdout
    }

    fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-t", "t"])
    }

    fn keys(&self, keys: &[&str]) {
        for k in keys {
            self.tmux(&["send-keys", "-t", "t", k]);
        }
    }

    /// Polls the screen until `pred` holds; panics with the screen if not.
    fn wait(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        self.program_pid();
        let deadline = Instant::now() + T;
        loop {
            let s = self.screen();
            if pred(&s) {
                return s;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}; the screen:\n{s}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The first process whose parent is `parent` (from /proc).
fn child_of(parent: u32) -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
        // "pid (comm) state ppid ...": comm may hold spaces, so split after ')'.
        let ppid: u32 = stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()?;
        (ppid == parent).then_some(pid)
    })
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| s.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next()) != Some("Z"))
}

impl Tmux {
    /// The program the pane's shell runs (the TUI).
    fn program_pid(&self) -> Option<u32> {
        let pid = self.pane_pid.and_then(child_of).or(self.program.get());
        self.program.set(pid);
        pid
    }

    fn kill_server(&self) {
        let _ =
            Command::new("tmux").args(["-L", &self.socket, "kill-server"]).stderr(std::process::Stdio::null()).status();
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        // The program first (by PID), then its shell, then tmux.
        if let Some(pid) = self.program_pid().filter(|p| alive(*p)) {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
        if let Some(pid) = self.pane_pid {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
        let _ =
            Command::new("tmux").args(["-L", &self.socket, "kill-server"]).stderr(std::process::Stdio::null()).status();
    }
}

fn token_file(gw: &Gateway) -> std::path::PathBuf {
    let port = gw.manage_addr().unwrap().port();
    gw.state_home().join("mcp-sentinel").join(format!("manage-{port}.token"))
}

fn profile(config_home: &Path, args: &[&str]) {
    let out = run_bounded(
        "profile",
        Command::new(GATEWAY_BIN).arg("profile").args(args).env("XDG_CONFIG_HOME", config_home),
        T,
    );
    assert!(out.success(), "profile {args:?}: {}{}", out.stdout, out.stderr);
}

fn still_serving(gw: &Gateway) {
    let token = std::fs::read_to_string(token_file(gw)).unwrap();
    let r = http(
        "GET",
        &format!("http://{}/manage/v1/health", gw.manage_addr().unwrap()),
        &[("Authorization", &format!("Bearer {}", token.trim()))],
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = common::mcp_initialize(&gw.url("/mcp"));
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn tui_watches_two_servers_switches_reloads_and_leaves_them_running() {
    if !Tmux::available() {
        return;
    }
    let one = Gateway::start(&json!({"mcpServers": {"alpha-one": demo_backend("alpha-one", &[])}}));
    let two = Gateway::start(&json!({"mcpServers": {
        "beta-two": demo_backend("beta-two", &[]),
        "gamma-two": demo_backend("gamma-two", &[]),
    }}));
    let home = TempDir::new("tui-home");
    let config_home = home.path.join("config");
    let url = |gw: &Gateway| format!("http://{}", gw.manage_addr().unwrap());
    let (t1, t2) = (token_file(&one), token_file(&two));
    profile(&config_home, &["add", "one", "--url", &url(&one), "--token-file", t1.to_str().unwrap()]);
    profile(&config_home, &["add", "two", "--url", &url(&two), "--token-file", t2.to_str().unwrap()]);
    profile(&config_home, &["use", "one"]);

    let tui = Tmux::start(
        "tui",
        &format!("{GATEWAY_BIN} tui --interval 0.5"),
        &[("XDG_CONFIG_HOME", &config_home), ("XDG_STATE_HOME", &home.path.join("state"))],
    );
    let s = tui.wait("the first server's backends", |s| s.contains("alpha-one") && s.contains("connected"));
    assert!(s.contains(&url(&one)), "the active URL is shown:\n{s}");
    assert!(!s.contains("beta-two"), "{s}");

    // Switch to the second profile with the selector.
    tui.keys(&["p"]);
    tui.wait("the profile selector", |s| s.contains("two") && s.contains(&url(&two)));
    tui.keys(&["Down", "Enter"]);
    let s = tui.wait("the second server's backends", |s| s.contains("beta-two") && s.contains("gamma-two"));
    assert!(s.contains(&url(&two)), "the new URL is shown:\n{s}");
    assert!(!s.contains("alpha-one"), "panels were cleared on switch:\n{s}");

    // Reload the second server, with confirmation, and see the result.
    tui.keys(&["r"]);
    tui.wait("the reload confirmation", |s| s.to_lowercase().contains("reload"));
    tui.keys(&["y"]);
    let s = tui.wait("the reload result", |s| s.contains("reload ok") && s.contains("revision 2"));
    assert!(s.contains("unchanged"), "{s}");

    tui.keys(&["q"]);
    tui.wait("the TUI to exit", |s| s.contains("EXIT=0"));
    still_serving(&one);
    still_serving(&two);
}

#[test]
fn legacy_combined_mode_stops_its_server_when_the_tui_quits() {
    if !Tmux::available() {
        return;
    }
    let dir = TempDir::new("combined");
    let cfg = dir.path.join("config.json");
    let (port, manage) = (get_free_port(), get_free_port());
    // A free management port too (the default 9001 may be taken).
    std::fs::write(
        &cfg,
        json!({"mcpServers": {"solo": demo_backend("solo", &[])}, "manage": {"listen": format!("127.0.0.1:{manage}")}})
            .to_string(),
    )
    .unwrap();
    let cmd =
        format!("{GATEWAY_BIN} --config {} --port {port} 2>{}", cfg.display(), dir.path.join("stderr.txt").display());
    let tui = Tmux::start("combined", &cmd, &[("XDG_STATE_HOME", &dir.path.join("state"))]);
    tui.wait("the attached TUI with the backend", |s| s.contains("solo") && s.contains("connected"));
    // The server is up while the TUI runs.
    let r = common::mcp_initialize(&format!("http://127.0.0.1:{port}/mcp"));
    assert_eq!(r.status, 200);
    // Its help says the truth: quitting here stops the server.
    tui.keys(&["?"]);
    let s = tui.wait("the help", |s| s.contains("Keys, default map"));
    assert!(s.contains("quit: STOPS the server") && !s.contains("keeps running"), "{s}");
    tui.keys(&["Escape"]);
    tui.wait("the help to close", |s| !s.contains("Keys, default map"));
    tui.keys(&["q"]);
    tui.wait("the process to exit", |s| s.contains("EXIT=0"));
    // Quitting that TUI stopped that server.
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "the data plane should be closed");
    let stderr = std::fs::read_to_string(dir.path.join("stderr.txt")).unwrap();
    assert_eq!(stderr.matches("deprecated").count(), 1, "one deprecation line: {stderr}");
    assert!(stderr.contains("server log: "), "{stderr}");
}

/// The original's functions, by their new ways: the command palette
/// (Ctrl-P, type, Enter), a theme (`n`) remembered in `tui.json` across
/// runs, and the classic key map (`--keys classic`: `r` is resources).
#[test]
fn palette_theme_and_classic_keys() {
    if !Tmux::available() {
        return;
    }
    let gw = Gateway::start(&json!({"mcpServers": {"pal": demo_backend("pal", &[])}}));
    let home = TempDir::new("palette");
    let config_home = home.path.join("config");
    let cmd = format!(
        "{GATEWAY_BIN} tui --interval 0.5 --url http://{} --token-file {}",
        gw.manage_addr().unwrap(),
        token_file(&gw).display()
    );
    let env = [("XDG_CONFIG_HOME", config_home.as_path())];
    let tui = Tmux::start("palette", &cmd, &env);
    tui.wait("the backend", |s| s.contains("pal") && s.contains("connected"));
    tui.keys(&["C-p"]);
    tui.wait("the palette", |s| s.contains("Command palette") && s.contains("view: backends"));
    tui.keys(&["tools"]);
    tui.wait("the palette filtered", |s| s.contains("> tools") && s.contains("▶ view: tools"));
    tui.keys(&["Enter"]);
    tui.wait("the tools view", |s| s.contains("Tools (") && !s.contains("Command palette"));
    // The next theme, remembered.
    tui.keys(&["n"]);
    tui.wait("the theme notice", |s| s.contains("theme light"));
    tui.keys(&["q"]);
    tui.wait("the TUI to exit", |s| s.contains("EXIT=0"));
    drop(tui);
    let saved = std::fs::read_to_string(config_home.join("mcp-sentinel").join("tui.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&saved).unwrap();
    assert_eq!(v["theme"], "light", "{saved}");

    // Again, with the original's keys: the theme is the one left, and r
    // opens the resources view instead of asking to reload.
    let tui = Tmux::start("palette2", &format!("{cmd} --keys classic"), &env);
    tui.wait("the backend", |s| s.contains("pal") && s.contains("connected"));
    tui.keys(&["T"]);
    tui.wait("the theme picker on the remembered theme", |s| s.contains("▶ * light"));
    tui.keys(&["Escape"]);
    tui.wait("the picker to close", |s| !s.contains("Theme (Enter"));
    tui.keys(&["r"]);
    let s = tui.wait("the resources view", |s| s.contains("Resources ("));
    assert!(!s.contains("Confirm"), "{s}");
    tui.keys(&["?"]);
    tui.wait("the classic help", |s| s.contains("Keys, classic map") && s.contains("R  reload"));
    tui.keys(&["Escape"]);
    tui.wait("the help to close", |s| !s.contains("Keys, classic map"));
    tui.keys(&["q"]);
    tui.wait("the TUI to exit", |s| s.contains("EXIT=0"));
    still_serving(&gw);
}

#[test]
fn legacy_no_tui_flags_map_to_the_server() {
    let dir = TempDir::new("no-tui");
    let cfg = dir.path.join("config.json");
    let port = get_free_port();
    let manage = get_free_port();
    std::fs::write(
        &cfg,
        json!({"mcpServers": {"solo": demo_backend("solo", &[])}, "manage": {"listen": format!("127.0.0.1:{manage}")}})
            .to_string(),
    )
    .unwrap();
    for args in [
        vec!["--no-tui", "--host", "127.0.0.1", "--port", &port.to_string()],
        vec!["--no-tui", "--port", &port.to_string()],
        vec!["--no-tui", "--host", "localhost", "--port", &port.to_string(), "--log-level", "debug"],
    ] {
        let mut child = common::spawn_logged(
            Command::new(GATEWAY_BIN).args(&args).args(["--config", cfg.to_str().unwrap()]),
            &dir.path.join("state"),
        );
        let needle = format!("data plane listening on http://127.0.0.1:{port} ");
        let log = child.wait_for(&needle, T);
        assert!(log.contains(&needle), "{args:?}:\n{log}");
        assert_eq!(log.matches("deprecated").count(), 1, "{args:?}: one deprecation line:\n{log}");
        assert_eq!(log.contains("DEBUG"), args.contains(&"debug"), "{args:?}: --log-level maps:\n{log}");
        child.stop();
    }
}

/// With no profiles file, `mcp-sentinel tui` uses the built-in `local`
/// profile: the default management address and the token file a server
/// started with defaults writes.
#[test]
fn local_profile_works_with_no_setup() {
    if !Tmux::available() {
        return;
    }
    let dir = TempDir::new("local");
    let cfg = dir.path.join("config.json");
    std::fs::write(&cfg, json!({"mcpServers": {"only-local": demo_backend("only-local", &[])}}).to_string()).unwrap();
    let state = dir.path.join("state");
    // Defaults everywhere except the data-plane port (9000 may be taken);
    // the server and the TUI share a private network namespace, so this
    // machine's own 127.0.0.1:9001 is neither needed nor disturbed.
    let net = match common::default_port_setup(9001) {
        Ok(n) => n,
        Err(why) => return eprintln!("SKIPPED: {why}"),
    };
    let args = ["server", "--config", cfg.to_str().unwrap(), "--listen", "127.0.0.1:0"];
    let mut cmd = match &net {
        Some(n) => n.command(GATEWAY_BIN),
        None => Command::new(GATEWAY_BIN),
    };
    let mut server = common::spawn_logged(cmd.args(args), &state);
    let log = server.wait_for("gateway state: ready", T);
    assert!(log.contains("management API listening on http://127.0.0.1:9001/manage/v1"), "{log}");
    let enter = match (&net, server.pid()) {
        (Some(n), Some(pid)) => format!("{} ", n.enter(pid)),
        _ => String::new(),
    };
    let tui = Tmux::start(
        "local",
        &format!("{enter}{GATEWAY_BIN} tui"),
        &[("XDG_CONFIG_HOME", &dir.path.join("empty-config")), ("XDG_STATE_HOME", &state)],
    );
    let s = tui.wait("the local server's backend", |s| s.contains("only-local") && s.contains("connected"));
    assert!(s.contains("local") && s.contains("http://127.0.0.1:9001"), "{s}");
    tui.keys(&["q"]);
    tui.wait("the TUI to exit", |s| s.contains("EXIT=0"));
    assert!(server.wait_for("no such needle", Duration::from_millis(10)).contains("only-local"));
    server.stop();
}

/// Closing the terminal (the tmux server goes away: SIGHUP, the pty is
/// gone) ends the TUI promptly instead of leaving it spinning.
#[test]
fn tui_exits_when_its_terminal_goes_away() {
    if !Tmux::available() {
        return;
    }
    let gw = Gateway::start(&json!({"mcpServers": {"hup": demo_backend("hup", &[])}}));
    let home = TempDir::new("hup");
    let tui = Tmux::start(
        "hup",
        &format!(
            "{GATEWAY_BIN} tui --url http://{} --token-file {}",
            gw.manage_addr().unwrap(),
            token_file(&gw).display()
        ),
        &[("XDG_CONFIG_HOME", &home.path.join("config"))],
    );
    tui.wait("the backend", |s| s.contains("hup") && s.contains("connected"));
    let pid = tui.program_pid().expect("the TUI process");
    tui.kill_server();
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!alive(pid), "the TUI (pid {pid}) is still running after its terminal closed");
    still_serving(&gw);
}
