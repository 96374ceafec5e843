//! Stdio backends: a child process in its own process group, speaking
//! newline-delimited JSON-RPC. A message is written to stdin by the
//! thread that sends it (`pipe.rs`); `backend:<n>:writer` writes only what
//! a full pipe left waiting; `backend:<n>:reader` parses stdout lines,
//! `backend:<n>:stderr` copies stderr into the log under the backend's name.
//! Also spawns the local process of a legacy SSE backend (`local.rs`).

use super::conn::{Closer, Conn, ConnSpec};
use super::error::BackendError;
use super::wire;
use crate::config::Command;
use std::io::{BufReader, Read};
use std::os::unix::process::CommandExt;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longest line accepted from a backend (a large resource fits; a runaway
/// process cannot pin unbounded memory).
pub const MAX_LINE: usize = 64 * 1024 * 1024;

/// Starts the child and its I/O threads.
pub fn open(spec: &ConnSpec, cmd: &Command) -> Result<Arc<Conn>, BackendError> {
    let name = &spec.backend;
    let mut child = spawn_child(cmd, true).map_err(|e| BackendError::open(name, e))?;
    let pid = child.id();
    let (stdin, stdout, stderr) = match (child.stdin.take(), child.stdout.take(), child.stderr.take()) {
        (Some(i), Some(o), Some(e)) => (i, o, e),
        _ => {
            kill_and_reap(&mut child);
            return Err(BackendError::open(name, "child pipes were not created".into()));
        }
    };
    let (out, writer) = match super::pipe::open(stdin) {
        Ok(pair) => pair,
        Err(e) => {
            kill_and_reap(&mut child);
            return Err(BackendError::open(name, format!("cannot set up its stdin: {e}")));
        }
    };
    let conn = Conn::with_outbox(spec, Some(pid), Arc::new(out));
    conn.set_closer(closer(child));
    let spawned = (|| -> std::io::Result<()> {
        let c = conn.clone();
        crate::thread::spawn(format!("backend:{name}:writer"), move || {
            writer.run(&c);
            Ok(())
        })?;
        let c = conn.clone();
        crate::thread::spawn(format!("backend:{name}:reader"), move || {
            read_loop(&c, stdout);
            Ok(())
        })?;
        log_stderr(name, stderr)?;
        Ok(())
    })();
    if let Err(e) = spawned {
        conn.close("cannot start I/O threads");
        return Err(BackendError::open(name, format!("cannot start I/O threads: {e}")));
    }
    Ok(conn)
}

/// Spawns `cmd` in its own process group with the gateway's environment
/// minus the variables that hold the gateway's own secrets (unless
/// `cmd.env` passes one on explicitly), plus `cmd.env`. `piped_stdin` is
/// false for a local SSE server.
pub fn spawn_child(cmd: &Command, piped_stdin: bool) -> Result<Child, String> {
    let mut c = std::process::Command::new(&cmd.command);
    for var in cmd.withheld_env.iter().filter(|v| !cmd.env.contains_key(*v)) {
        c.env_remove(var);
    }
    c.args(&cmd.args)
        .envs(&cmd.env)
        .stdin(if piped_stdin { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group, so shutdown can signal the child and anything it
        // spawned (npx → node, uv → python) in one kill.
        .process_group(0);
    if let Some(dir) = &cmd.cwd {
        c.current_dir(dir);
    }
    c.spawn().map_err(|e| {
        let cwd = cmd.cwd.as_ref().map(|d| format!(" in {}", d.display())).unwrap_or_default();
        format!("cannot start {:?}{cwd}: {e}", cmd.command)
    })
}

/// The closer of a child: SIGTERM to its group, up to 2 s grace, SIGKILL,
/// then reap (no zombies across restarts).
pub fn closer(child: Child) -> Closer {
    let mut child = child;
    Box::new(move || Some(kill_and_reap(&mut child)))
}

/// How long a child has after SIGTERM before SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(2);

pub fn kill_and_reap(child: &mut Child) -> String {
    if let Ok(Some(status)) = child.try_wait() {
        signal_group(child.id(), libc::SIGKILL);
        return status.to_string();
    }
    signal_group(child.id(), libc::SIGTERM);
    let exited = match wait_exit(child.id(), KILL_GRACE) {
        Some(exited) => exited,
        None => poll_exit(child, KILL_GRACE),
    };
    if exited {
        if let Ok(Some(status)) = child.try_wait() {
            signal_group(child.id(), libc::SIGKILL);
            return status.to_string();
        }
    }
    signal_group(child.id(), libc::SIGKILL);
    match child.wait() {
        Ok(s) => s.to_string(),
        Err(e) => format!("wait failed: {e}"),
    }
}

/// The fallback of [`wait_exit`] where pidfds are not available (Linux
/// before 5.3, a seccomp filter that refuses the call): `try_wait` every
/// 20 ms. Nothing else can wake a thread on a child's exit without taking
/// SIGCHLD from the whole process.
fn poll_exit(child: &mut Child, max: Duration) -> bool {
    let deadline = Instant::now() + max;
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits at most `max` for process `pid` to exit, on a pidfd: the wait
/// ends the moment it exits. `Some(exited)`, or `None` where pidfds are
/// not available. The process is not reaped. For a child not yet reaped
/// the pid cannot have been reused, so the pidfd is that child's.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
pub fn wait_exit(pid: u32, max: Duration) -> Option<bool> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let pid = libc::pid_t::try_from(pid).ok()?;
    // SAFETY: pidfd_open(2) takes a pid and flags and returns a new
    // descriptor or -1; no memory is passed.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    let fd = std::os::fd::RawFd::try_from(fd).ok().filter(|fd| *fd >= 0)?;
    // SAFETY: `fd` was just returned by pidfd_open and is owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let deadline = Instant::now() + max;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        // Rounded up, so that the wait is never shorter than asked.
        let ms = libc::c_int::try_from(left.as_micros().div_ceil(1000)).unwrap_or(libc::c_int::MAX);
        let mut pfd = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd, and its count.
        match unsafe { libc::poll(&mut pfd, 1, ms) } {
            n if n > 0 => return Some(true),
            0 if left.is_zero() => return Some(false),
            // Woken early (a signal): wait for what is left.
            0 => continue,
            _ if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted => continue,
            _ => return None,
        }
    }
}

#[cfg(not(target_os = "linux"))]
pub fn wait_exit(_pid: u32, _max: Duration) -> Option<bool> {
    None
}

/// Signals the whole process group led by `pid`.
#[allow(unsafe_code)]
pub fn signal_group(pid: u32, sig: libc::c_int) {
    let Ok(pgid) = libc::pid_t::try_from(pid) else { return };
    if pgid <= 1 {
        return;
    }
    // SAFETY: kill(2) has no memory-safety preconditions; a negative pid
    // addresses the group we created with process_group(0).
    unsafe {
        libc::kill(-pgid, sig);
    }
}

fn read_loop(conn: &Conn, stdout: impl Read) {
    let mut r = BufReader::with_capacity(64 * 1024, stdout);
    let mut line = Vec::with_capacity(4096);
    loop {
        line.clear();
        match read_line_bounded(&mut r, &mut line, MAX_LINE) {
            Ok(LineRead::Eof) => break,
            Ok(LineRead::TooLong) => {
                log::warn!("backend '{}' wrote a line longer than {MAX_LINE} bytes; dropped", conn.backend);
                continue;
            }
            Ok(LineRead::Line) => {}
            Err(e) => {
                conn.died(&format!("reading its stdout failed: {e}"));
                return;
            }
        }
        let text = trim_line(&line);
        if text.is_empty() {
            continue;
        }
        // A malformed answer to a call fails that call in `route`; a line
        // that is not JSON at all (a stray print) is only logged.
        if let Err(e) = wire::route(conn, text, None) {
            log::warn!(
                "backend '{}' wrote a line that is not JSON-RPC ({e}); skipped: {}",
                conn.backend,
                wire::snippet(text)
            );
        }
        // A reused buffer, but not one pinned at its largest line forever.
        if line.capacity() > 1024 * 1024 {
            line = Vec::with_capacity(4096);
        }
    }
    conn.died("process closed its stdout");
}

fn trim_line(line: &[u8]) -> &[u8] {
    let mut s = line;
    while let [rest @ .., b'\n' | b'\r'] = s {
        s = rest;
    }
    s
}

pub use crate::util::{read_line_bounded, LineRead};

/// Copies a child's stderr (or a local server's output) into the log.
pub fn log_stderr(name: &str, stream: impl Read + Send + 'static) -> std::io::Result<()> {
    let label = name.to_owned();
    crate::thread::spawn(format!("backend:{name}:stderr"), move || {
        let mut r = BufReader::new(stream);
        let mut line = Vec::new();
        while let Ok(LineRead::Line | LineRead::TooLong) = read_line_bounded(&mut r, &mut line, 64 * 1024) {
            let text = String::from_utf8_lossy(trim_line(&line));
            if !text.is_empty() {
                // A backend's output is not trusted: escaped, so it cannot
                // forge log lines or send escape sequences to a terminal.
                log::info!(target: "backend", "[{label}] {}", crate::util::printable(&text, 8192));
            }
            line.clear();
        }
        Ok(())
    })
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A child's exit ends the wait on it at once; a live child is waited
    /// for as long as asked. (Where pidfds are missing, `wait_exit` says so
    /// and `kill_and_reap` polls instead.)
    #[test]
    fn kill_and_reap_waits_for_the_exit() {
        let cmd = Command {
            command: "sleep".into(),
            args: vec!["30".into()],
            env: Default::default(),
            cwd: None,
            withheld_env: Vec::new(),
        };
        let mut child = spawn_child(&cmd, false).unwrap();
        if let Some(exited) = wait_exit(child.id(), Duration::from_millis(50)) {
            assert!(!exited, "sleep 30 is still running");
        }
        let start = Instant::now();
        let status = kill_and_reap(&mut child);
        assert!(status.contains("SIGTERM") || status.contains("signal: 15"), "{status}");
        assert!(start.elapsed() < KILL_GRACE, "{:?}", start.elapsed());
    }

    #[test]
    fn bounded_lines() {
        let data = b"short\nthis line is far too long\nok\nlast-no-newline";
        let mut r = BufReader::with_capacity(4, &data[..]);
        let mut buf = Vec::new();
        let mut got = Vec::new();
        loop {
            buf.clear();
            match read_line_bounded(&mut r, &mut buf, 10).unwrap() {
                LineRead::Eof => break,
                LineRead::TooLong => got.push("<too long>".to_owned()),
                LineRead::Line => got.push(String::from_utf8(trim_line(&buf).to_vec()).unwrap()),
            }
        }
        assert_eq!(got, vec!["short", "<too long>", "ok", "<too long>"]);
    }
}
