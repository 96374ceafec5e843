//! The audit trail: one JSON line per auth failure and per admin action,
//! appended to `manage.audit_log` (if set) and mirrored as a ring event.
//! The token itself is never recorded, only the name of the token used.
//! Opened once at start (main thread) through [`crate::secfile::open_append`];
//! lines are written by the manage listener's workers.

use crate::events::{EventRing, Level};
use parking_lot::Mutex;
use serde::Serialize;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Serialize)]
pub struct Line<'a> {
    pub time: String,
    /// `auth_failed`, `admin_action`, or `data_auth_failed` (a data-plane
    /// request refused for its credentials).
    pub event: &'a str,
    pub token_name: Option<&'a str>,
    pub remote_addr: Option<String>,
    pub method: &'a str,
    pub path: &'a str,
    pub status: u16,
}

pub struct Audit {
    path: Option<PathBuf>,
    file: Mutex<Option<File>>,
    ring: Arc<EventRing>,
    /// Failed-auth events in the current window (a flood of bad tokens
    /// must not push every other event out of the ring).
    fails: Mutex<FailWindow>,
}

/// Longest request path kept in an audit line or event (characters).
const MAX_PATH: usize = 512;
/// At most this many `manage.auth_failed` events per window; the audit
/// file still gets every line.
const FAIL_EVENTS: u32 = 20;
const FAIL_WINDOW: std::time::Duration = std::time::Duration::from_secs(10);

struct FailWindow {
    start: std::time::Instant,
    shown: u32,
    suppressed: u64,
}

impl Audit {
    /// Opens the audit file for appending (`O_APPEND`, `O_NOFOLLOW`), creating
    /// it with mode 0600 and its missing directories with mode 0700. A link,
    /// another user's file, or a file or directory others can write is
    /// refused. Errors name the setting and the file.
    pub fn open(path: Option<&Path>, ring: Arc<EventRing>) -> Result<Audit, String> {
        let file = match path {
            None => None,
            Some(p) => {
                let (f, notes) = crate::secfile::open_append(p, crate::secfile::Readers::Keep)
                    .map_err(|e| format!("manage.audit_log: {e}"))?;
                notes.iter().for_each(|n| log::info!("manage.audit_log: {n}"));
                Some(f)
            }
        };
        let fails = FailWindow { start: std::time::Instant::now(), shown: 0, suppressed: 0 };
        Ok(Audit { path: path.map(Path::to_path_buf), file: Mutex::new(file), ring, fails: Mutex::new(fails) })
    }

    /// A refused data-plane request: a line in the file only (the data
    /// plane pushes its own bounded `data.auth_failed` events).
    pub fn record_data(&self, line: Line<'_>) {
        let path = crate::util::printable(line.path, MAX_PATH);
        let who = line.token_name.map(|n| crate::util::printable(n, 128));
        self.append(&Line { path: &path, token_name: who.as_deref(), ..line });
    }

    pub fn record(&self, line: Line<'_>) {
        // The path comes from an unauthenticated client: no control
        // characters (no forged lines, no terminal escapes), bounded length.
        let path = crate::util::printable(line.path, MAX_PATH);
        let line = Line { path: &path, ..line };
        let (kind, level) = match line.event {
            "auth_failed" => ("manage.auth_failed", Level::Warn),
            _ => ("manage.admin_action", Level::Info),
        };
        let who = line.token_name.map_or_else(|| "no valid token".to_owned(), |n| format!("token '{n}'"));
        let from = line.remote_addr.as_deref().unwrap_or("?");
        let (show, summary) = if line.event == "auth_failed" { self.fail_window() } else { (true, None) };
        if let Some(n) = summary {
            self.ring.push(
                Level::Warn,
                "manage.auth_failed",
                None,
                format!(
                    "{n} more authentication failures in {}s were not recorded as events (the audit log has each)",
                    FAIL_WINDOW.as_secs()
                ),
            );
        }
        if show {
            self.ring.push(
                level,
                kind,
                None,
                format!("{} {} -> {} ({who}, from {from})", line.method, line.path, line.status),
            );
        }
        self.append(&line);
    }

    fn append(&self, line: &Line<'_>) {
        let Ok(mut text) = serde_json::to_vec(line) else { return };
        text.push(b'\n');
        let mut g = self.file.lock();
        if let Some(f) = g.as_mut() {
            // One write per line, so concurrent appenders never interleave.
            if let Err(e) = f.write_all(&text) {
                let shown = self.path.as_deref().map(|p| p.display().to_string()).unwrap_or_default();
                log::error!("cannot append to the audit log {shown}: {e}");
            }
        }
    }
}

impl Audit {
    /// Whether this failed-auth event goes to the ring, and the number
    /// suppressed in the window that just ended, to report once.
    fn fail_window(&self) -> (bool, Option<u64>) {
        let mut w = self.fails.lock();
        let mut summary = None;
        if w.start.elapsed() >= FAIL_WINDOW {
            if w.suppressed > 0 {
                summary = Some(w.suppressed);
            }
            *w = FailWindow { start: std::time::Instant::now(), shown: 0, suppressed: 0 };
        }
        if w.shown < FAIL_EVENTS {
            w.shown += 1;
            (true, summary)
        } else {
            w.suppressed += 1;
            (false, summary)
        }
    }
}
