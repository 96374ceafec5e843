//! The local server process of a legacy SSE backend that has a `command`.
//!
//! Two rules make its supervision truthful:
//! - The gateway connects only to a server it started: if the URL's host and
//!   port already accept connections before the process is spawned, the
//!   attempt fails instead of adopting whatever listens there.
//! - The connection lives only as long as the process: a waiter thread
//!   (`backend:<name>:wait`) owns the `Child` and blocks in `wait()`, so an
//!   exit is seen the moment it happens and reaped at once (the pid shown is
//!   never a zombie's); it then kills the rest of the process group (what the
//!   server started may hold the port, and nobody else would stop it if the
//!   server exited before serving) and the connection.
//!
//! The waiter signals the exit by dropping a channel sender: every clone of
//! the receiver sees the disconnection, which `select!` and `recv_timeout`
//! can wait on (the readiness probe, the closer, the stream reader).

use super::conn::{Closer, Conn};
use super::stdio;
use crate::config::Command;
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, TryRecvError};
use parking_lot::Mutex;
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// How the death of a local server is reported (the closer adds the exit
/// status, e.g. "local server exited (signal: 9 (SIGKILL))").
pub const EXITED: &str = "local server exited";

/// How long the listener check waits for one address to accept.
const PROBE_CONNECT: Duration = Duration::from_millis(500);

/// A started local server, watched by its waiter thread.
pub struct LocalServer {
    pub pid: u32,
    watch: Arc<Mutex<Watch>>,
    /// Never sent on; disconnected once the process has exited and been reaped.
    exited: Receiver<()>,
}

/// What the waiter and the connection share, under one lock so that a
/// connection is either attached before the exit (and killed by it) or
/// refused because the exit came first.
struct Watch {
    status: Option<String>,
    conn: Option<Weak<Conn>>,
}

impl LocalServer {
    /// Checks that nothing listens on `url`'s host and port, then starts
    /// `cmd` (stdin from /dev/null, stdout and stderr to the log) and its
    /// waiter thread.
    pub fn start(name: &Arc<str>, cmd: &Command, url: &str) -> Result<LocalServer, String> {
        if let Some(addr) = listen_addr(url) {
            if has_listener(&addr) {
                return Err(format!("{addr} already has a listener (a leftover server?); not starting another"));
            }
        }
        let mut child = stdio::spawn_child(cmd, false)?;
        let pid = child.id();
        let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
        let logged = (|| -> std::io::Result<()> {
            if let Some(o) = stdout {
                stdio::log_stderr(name, o)?;
            }
            if let Some(e) = stderr {
                stdio::log_stderr(name, e)?;
            }
            Ok(())
        })();
        if let Err(e) = logged {
            stdio::kill_and_reap(&mut child);
            return Err(format!("cannot start the local server's log thread: {e}"));
        }
        let (gone, exited) = bounded::<()>(0);
        let watch = Arc::new(Mutex::new(Watch { status: None, conn: None }));
        let w = watch.clone();
        let spawned = crate::thread::spawn(format!("backend:{name}:wait"), move || {
            let status = match child.wait() {
                Ok(s) => s.to_string(),
                Err(e) => format!("wait failed: {e}"),
            };
            // Its children live on in its group after it exits (a shell
            // that started the real server, a server that forked): kill
            // them now. The group outlives its leader while it has members,
            // so the pid cannot have been reused for another group; with no
            // members left the signal finds nobody.
            stdio::signal_group(pid, libc::SIGKILL);
            let conn = {
                let mut g = w.lock();
                g.status = Some(status);
                g.conn.take()
            };
            // First announce the exit (the closer that `died` runs waits for it) …
            drop(gone);
            // … then end the connection, if one is attached.
            if let Some(c) = conn.and_then(|c| c.upgrade()) {
                c.died(EXITED);
            }
            Ok(())
        });
        if let Err(e) = spawned {
            // The Child went down with the closure: kill by pid (it stays a
            // zombie until the gateway exits, the price of a failed spawn).
            stdio::signal_group(pid, libc::SIGKILL);
            return Err(format!("cannot start the local server's waiter thread: {e}"));
        }
        Ok(LocalServer { pid, watch, exited })
    }

    /// The exit status, once the process has exited.
    pub fn exit_status(&self) -> Option<String> {
        self.watch.lock().status.clone()
    }

    pub fn has_exited(&self) -> bool {
        matches!(self.exited.try_recv(), Err(TryRecvError::Disconnected))
    }

    /// Waits at most `d` for the process to exit; true if it has.
    pub fn wait_exit(&self, d: Duration) -> bool {
        matches!(self.exited.recv_timeout(d), Err(RecvTimeoutError::Disconnected))
    }

    /// A receiver that disconnects when the process exits.
    pub fn exited(&self) -> Receiver<()> {
        self.exited.clone()
    }

    /// Ties `conn` to the process: its exit kills the connection at once.
    /// Fails if the process has exited already.
    pub fn attach(&self, conn: &Arc<Conn>) -> Result<(), String> {
        let mut w = self.watch.lock();
        if let Some(status) = &w.status {
            return Err(format!("{EXITED} before serving ({status})"));
        }
        w.conn = Some(Arc::downgrade(conn));
        Ok(())
    }

    /// SIGTERM to the process group, up to 2 s grace, SIGKILL; the waiter
    /// reaps. Returns the exit status.
    pub fn stop(&self) -> String {
        if !self.has_exited() {
            stdio::signal_group(self.pid, libc::SIGTERM);
            if !self.wait_exit(Duration::from_secs(2)) {
                stdio::signal_group(self.pid, libc::SIGKILL);
                self.wait_exit(Duration::from_secs(5));
            }
        }
        // Whatever else the server started in its group.
        stdio::signal_group(self.pid, libc::SIGKILL);
        self.exit_status().unwrap_or_else(|| "did not exit after SIGKILL".to_owned())
    }

    /// The connection's closer: stops the process.
    pub fn closer(self) -> Closer {
        Box::new(move || Some(self.stop()))
    }
}

/// `host:port` of an http(s) URL (default ports 80 and 443), without
/// credentials; `None` if it cannot be read.
pub fn listen_addr(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if hostport.is_empty() {
        return None;
    }
    // A port is what follows the last ':' outside IPv6 brackets.
    let has_port = hostport.rsplit_once(':').is_some_and(|(_, p)| !p.contains(']') && !p.is_empty());
    if has_port {
        return Some(hostport.to_owned());
    }
    let port = if scheme.eq_ignore_ascii_case("https") { 443 } else { 80 };
    Some(format!("{hostport}:{port}"))
}

/// Whether any address of `addr` accepts a TCP connection now.
fn has_listener(addr: &str) -> bool {
    let Ok(addrs) = addr.to_socket_addrs() else {
        return false;
    };
    addrs.into_iter().any(|a| TcpStream::connect_timeout(&a, PROBE_CONNECT).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn listen_addresses_of_urls() {
        let a = |u: &str| listen_addr(u);
        assert_eq!(a("http://127.0.0.1:9101/sse").as_deref(), Some("127.0.0.1:9101"));
        assert_eq!(a("http://localhost/sse?x=1").as_deref(), Some("localhost:80"));
        assert_eq!(a("https://u:p@h.example").as_deref(), Some("h.example:443"));
        assert_eq!(a("http://[::1]:8080/sse").as_deref(), Some("[::1]:8080"));
        assert_eq!(a("http://[::1]/sse").as_deref(), Some("[::1]:80"));
        assert_eq!(a("not a url"), None);
        assert_eq!(a("http:///x"), None);
    }

    fn sh(script: &str) -> Command {
        Command {
            command: "/bin/sh".into(),
            args: vec!["-c".into(), script.into()],
            env: BTreeMap::new(),
            cwd: None,
            withheld_env: Vec::new(),
        }
    }

    #[test]
    fn refuses_a_port_someone_else_listens_on() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let url = format!("http://127.0.0.1:{port}/sse");
        let err = LocalServer::start(&"t".into(), &sh("exit 0"), &url).err().unwrap();
        assert_eq!(err, format!("127.0.0.1:{port} already has a listener (a leftover server?); not starting another"));
    }

    #[test]
    fn an_exit_is_seen_at_once_and_reaped() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let s = LocalServer::start(&"t".into(), &sh("exit 7"), &format!("http://127.0.0.1:{port}/")).unwrap();
        assert!(s.wait_exit(Duration::from_secs(5)));
        assert_eq!(s.exit_status().as_deref(), Some("exit status: 7"));
        // Reaped: no /proc entry, not even a zombie.
        assert!(!std::path::Path::new(&format!("/proc/{}", s.pid)).exists());
        assert_eq!(s.stop(), "exit status: 7");
    }

    /// `pid` is alive (and not a zombie).
    fn alive(pid: u32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| s.rsplit_once(')').and_then(|(_, rest)| rest.trim_start().chars().next()))
            .is_some_and(|state| state != 'Z')
    }

    /// A server that exits at once, leaving a child of its own behind (in
    /// its group): the child is killed when the exit is seen, without
    /// waiting for anyone to call `stop`.
    #[test]
    fn an_early_exit_kills_what_the_server_left_behind() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = std::env::temp_dir().join(format!("mcp-sentinel-local-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pidfile = dir.join("grandchild");
        let script = format!("sleep 300 & echo $! > {}; exit 1", pidfile.display());
        let s = LocalServer::start(&"t".into(), &sh(&script), &format!("http://127.0.0.1:{port}/")).unwrap();
        assert!(s.wait_exit(Duration::from_secs(5)));
        let grandchild: u32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
        // Ends the moment it exits (`None`: gone already, or no pidfds).
        let _ = stdio::wait_exit(grandchild, Duration::from_secs(5));
        let survived = alive(grandchild);
        if survived {
            // Do not leave it behind when the assertion fails.
            stdio::signal_group(s.pid, libc::SIGKILL);
        }
        let _ = std::fs::remove_dir_all(&dir);
        assert!(!survived, "the server's child {grandchild} outlived it");
        assert_eq!(s.exit_status().as_deref(), Some("exit status: 1"));
    }

    #[test]
    fn stop_terminates_the_group() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let s = LocalServer::start(&"t".into(), &sh("sleep 30"), &format!("http://127.0.0.1:{port}/")).unwrap();
        assert!(!s.has_exited());
        let status = s.stop();
        assert!(status.contains("SIGTERM") || status.contains("signal: 15"), "{status}");
        assert!(s.has_exited());
    }
}
