//! `mcp-sentinel profile ...` and the TUI's start-up errors, run as the real
//! binary with its own temporary XDG directories (the test process's
//! environment is never changed).

#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

struct Home(PathBuf);

impl Home {
    fn new(tag: &str) -> Home {
        let dir = std::env::temp_dir().join(format!("mcp-sentinel-profile-cli-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Home(dir)
    }

    fn profiles_file(&self) -> PathBuf {
        self.0.join("config/mcp-sentinel/profiles.json")
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_mcp-sentinel"))
            .args(args)
            .env("XDG_CONFIG_HOME", self.0.join("config"))
            .env("XDG_STATE_HOME", self.0.join("state"))
            .env("HOME", &self.0)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn list_without_a_file_shows_local() {
    let h = Home::new("list");
    let o = h.run(&["profile", "list"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("* local  http://127.0.0.1:9001"), "{out}");
    assert!(out.contains("manage-9001.token (default)"), "{out}");
    assert!(!h.profiles_file().exists());
}

#[test]
fn add_use_remove_round_trip() {
    let h = Home::new("roundtrip");
    let o = h.run(&["profile", "add", "prod", "--url", "https://gw.example.com:9001", "--token-env", "PROD_TOKEN"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(mode(&h.profiles_file()), 0o600);
    assert_eq!(h.run(&["profile", "use", "prod"]).status.code(), Some(0));
    let out = stdout(&h.run(&["profile", "list"]));
    assert!(out.lines().any(|l| l.starts_with("* prod ") && l.contains("env PROD_TOKEN")), "{out}");
    assert!(out.lines().any(|l| l.starts_with("  local ")), "{out}");
    // Duplicates and unknown names are usage errors, one line each.
    let o = h.run(&["profile", "add", "prod", "--url", "http://127.0.0.1:1"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    let o = h.run(&["profile", "use", "nope"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no profile named \"nope\" (profiles: local, prod)"), "{}", stderr(&o));
    assert_eq!(h.run(&["profile", "remove", "nope"]).status.code(), Some(2));
    assert_eq!(h.run(&["profile", "remove", "prod"]).status.code(), Some(0));
    let out = stdout(&h.run(&["profile", "list"]));
    assert!(out.contains("* local") && !out.contains("prod"), "{out}");
}

#[test]
fn corrupt_file_is_a_configuration_error() {
    let h = Home::new("corrupt");
    std::fs::create_dir_all(h.profiles_file().parent().unwrap()).unwrap();
    std::fs::write(h.profiles_file(), r#"{"profiles": [{"name": "a", "url": "ftp://x"}]}"#).unwrap();
    for args in [&["profile", "list"][..], &["tui"][..]] {
        let o = h.run(args);
        assert_eq!(o.status.code(), Some(78), "{args:?}");
        let err = stderr(&o);
        assert!(err.contains("profiles.json: field \"profiles[0].url\""), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}

#[test]
fn tui_errors_before_touching_the_terminal() {
    let h = Home::new("tui");
    let o = h.run(&["tui", "--profile", "nope"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no profile named \"nope\""), "{}", stderr(&o));
    // No terminal (stdin is /dev/null, stdout a pipe): a clear error, not a garbled screen.
    let o = h.run(&["tui"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("needs an interactive terminal"), "{}", stderr(&o));
}
