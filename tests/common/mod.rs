//! Integration-test harness shared by the files in `tests/`: starts the real
//! `mcp-sentinel` binary on ephemeral ports, speaks minimal HTTP/1.1 and SSE
//! to it over std sockets, and locates the third-party peers that
//! `scripts/install-peers.sh` installs into `.peers/`.
//!
//! Rules it enforces for every test: traffic goes to 127.0.0.1 only, every
//! wait is bounded, and every process it starts is killed by PID when its
//! guard drops. Only std, serde_json, libc and the crate itself are used.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use mcp_sentinel::codec::sse::SseDecoder;
use serde_json::{json, Value};

pub mod schema;

/// Path of the gateway binary cargo built for this test run.
pub const GATEWAY_BIN: &str = env!("CARGO_BIN_EXE_mcp-sentinel");
/// The gateway binary a test starts: `GATEWAY_BIN`, unless
/// `MCP_SENTINEL_TEST_GATEWAY` names another (to run a test against an
/// older build and see it fail, for before/after figures).
pub fn gateway_bin() -> String {
    std::env::var("MCP_SENTINEL_TEST_GATEWAY").unwrap_or_else(|_| GATEWAY_BIN.to_owned())
}

/// Path of the demo backend binary cargo built for this test run.
pub const DEMO_BIN: &str = env!("CARGO_BIN_EXE_mcp-sentinel-demo");

const LISTEN_NEEDLE: &str = "data plane listening on http://";
const STATE_NEEDLE: &str = "gateway state: ";
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------
// Captured output
// ---------------------------------------------------------------------------

/// Lines a child wrote, shared between its reader threads and the test.
#[derive(Clone, Default)]
pub struct LogBuffer {
    inner: Arc<(Mutex<String>, Condvar)>,
}

impl LogBuffer {
    fn push_line(&self, line: &str) {
        let (lock, cvar) = &*self.inner;
        let mut s = lock.lock().unwrap_or_else(|e| e.into_inner());
        s.push_str(line);
        s.push('\n');
        cvar.notify_all();
    }

    /// Everything captured so far.
    pub fn text(&self) -> String {
        self.inner.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Waits (bounded) until `pred` holds for the captured text or `stop()`
    /// says waiting is pointless. Returns the text when `pred` held.
    pub fn wait_until(
        &self,
        timeout: Duration,
        mut pred: impl FnMut(&str) -> bool,
        mut stop: impl FnMut() -> bool,
    ) -> Option<String> {
        let deadline = Instant::now() + timeout;
        let (lock, cvar) = &*self.inner;
        let mut s = lock.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if pred(&s) {
                return Some(s.clone());
            }
            let now = Instant::now();
            if now >= deadline || stop() {
                return None;
            }
            // Wake at least every 100 ms to notice a child that exited.
            let wait = (deadline - now).min(Duration::from_millis(100));
            s = cvar.wait_timeout(s, wait).unwrap_or_else(|e| e.into_inner()).0;
        }
    }
}

/// Copies `reader` line by line into `buf`, echoing each line to the test's
/// stderr (shown by the test runner when the test fails).
pub fn capture(name: String, reader: impl Read + Send + 'static, buf: LogBuffer) {
    capture_joinable(name, reader, buf);
}

/// [`capture`], returning the thread so a caller can wait for the end.
fn capture_joinable(name: String, reader: impl Read + Send + 'static, buf: LogBuffer) -> thread::JoinHandle<()> {
    let spawned = thread::Builder::new().name(format!("capture:{name}")).spawn(move || {
        let mut reader = BufReader::new(reader);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let text = String::from_utf8_lossy(&line);
                    let text = text.trim_end_matches(['\n', '\r']);
                    eprintln!("[{name}] {text}");
                    buf.push_line(text);
                }
            }
        }
    });
    spawned.expect("spawn output capture thread")
}

// ---------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------

/// Sends `sig` to one process by PID.
#[allow(unsafe_code)]
fn signal(pid: u32, sig: libc::c_int) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    unsafe {
        libc::kill(pid, sig);
    }
}

/// Polls `child` until it exits or `timeout` passes.
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
            _ => return None,
        }
    }
}

/// SIGTERM, up to `grace` for a clean exit, then SIGKILL; always reaps.
pub fn terminate(child: &mut Child, grace: Duration) -> Option<ExitStatus> {
    if let Ok(Some(status)) = child.try_wait() {
        return Some(status);
    }
    signal(child.id(), libc::SIGTERM);
    if let Some(status) = wait_timeout(child, grace) {
        return Some(status);
    }
    eprintln!("harness: pid {} ignored SIGTERM for {grace:?}; sending SIGKILL", child.id());
    let _ = child.kill();
    child.wait().ok()
}

/// Owns a child process; kills it by PID when dropped.
pub struct ChildGuard {
    pub child: Child,
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        terminate(&mut self.child, Duration::from_secs(5));
    }
}

/// What a bounded command run produced.
#[derive(Debug)]
pub struct Output {
    /// `None` when the process was killed for running past its time.
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
}

impl Output {
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }
}

/// Runs `cmd` to completion with stdin closed, killing it (by PID) after
/// `timeout`. Output is captured; stderr is also echoed with `name` as prefix.
pub fn run_bounded(name: &str, cmd: &mut Command, timeout: Duration) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{name}: cannot start {cmd:?}: {e}"));
    let mut guard = ChildGuard { child };
    let out = LogBuffer::default();
    let err = LogBuffer::default();
    let stdout = guard.child.stdout.take().expect("piped stdout");
    let stderr = guard.child.stderr.take().expect("piped stderr");
    let out_thread = {
        let out = out.clone();
        thread::spawn(move || {
            let mut s = String::new();
            let _ = BufReader::new(stdout).read_to_string(&mut s);
            out.push_line(&s);
        })
    };
    let err_thread = capture_joinable(name.to_string(), stderr, err.clone());
    let status = wait_timeout(&mut guard.child, timeout);
    let timed_out = status.is_none();
    if timed_out {
        eprintln!("harness: {name} ran past {timeout:?}; killing pid {}", guard.child.id());
        terminate(&mut guard.child, Duration::from_secs(2));
    }
    // The pipes close when the process exits (grandchildren aside): bounded
    // joins, so both outputs are complete when they are read.
    let deadline = Instant::now() + Duration::from_secs(5);
    for t in [out_thread, err_thread] {
        while !t.is_finished() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
        if t.is_finished() {
            let _ = t.join();
        }
    }
    Output { status, stdout: out.text(), stderr: err.text(), timed_out }
}

static NEXT_ID: AtomicUsize = AtomicUsize::new(0);

/// A fresh, private temporary directory, removed by [`TempDir`]'s Drop.
pub struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "mcp-sentinel-test-{tag}-{}-{}-{nanos}",
            std::process::id(),
            NEXT_ID.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir { path }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

// ---------------------------------------------------------------------------
// The gateway under test
// ---------------------------------------------------------------------------

/// A running `mcp-sentinel server`, killed when dropped.
pub struct Gateway {
    pub mcp_addr: SocketAddr,
    /// The config file the gateway was started with.
    pub config_path: PathBuf,
    child: Option<Child>,
    log: LogBuffer,
    /// Holds the config and the state dir (`XDG_STATE_HOME`), where the
    /// generated management token file lands.
    dir: TempDir,
}

impl Gateway {
    /// Starts the gateway on `config` and waits until its first discovery is done.
    pub fn start(config: &Value) -> Gateway {
        Gateway::start_args(config, &[])
    }

    /// Like [`Gateway::start`], with extra command-line arguments.
    pub fn start_args(config: &Value, extra: &[&str]) -> Gateway {
        Gateway::launch(config, extra, &[], true)
    }

    /// Like [`Gateway::start_args`], with extra environment variables.
    pub fn start_env(config: &Value, extra: &[&str], envs: &[(&str, &str)]) -> Gateway {
        Gateway::launch(config, extra, envs, true)
    }

    /// Starts the gateway and waits only for its listeners, not for the
    /// first discovery (the gateway may still be in state `starting`).
    pub fn start_listening(config: &Value) -> Gateway {
        Gateway::launch(config, &[], &[], false)
    }

    /// Starts the gateway with its open-file limit (soft and hard) set to
    /// `nofile`, through the shell's `ulimit`.
    pub fn start_with_fd_limit(config: &Value, nofile: u32) -> Gateway {
        Gateway::launch_with(config, &[], &[], true, Some(nofile))
    }

    fn launch(config: &Value, extra: &[&str], envs: &[(&str, &str)], wait_state: bool) -> Gateway {
        Gateway::launch_with(config, extra, envs, wait_state, None)
    }

    fn launch_with(
        config: &Value,
        extra: &[&str],
        envs: &[(&str, &str)],
        wait_state: bool,
        nofile: Option<u32>,
    ) -> Gateway {
        let dir = TempDir::new("gw");
        let config_path = dir.path.join("config.json");
        let text = serde_json::to_string_pretty(config).expect("serialize config");
        std::fs::write(&config_path, text).expect("write config");
        let state_home = dir.path.join("state");
        let config_home = dir.path.join("config");
        let mut cmd = match nofile {
            None => Command::new(gateway_bin()),
            Some(n) => {
                let mut c = Command::new("sh");
                c.args(["-c", &format!("ulimit -n {n} && exec \"$0\" \"$@\""), &gateway_bin()]);
                c
            }
        };
        cmd.arg("server")
            .arg("--config")
            .arg(&config_path)
            .args(["--listen", "127.0.0.1:0"])
            .args(["--manage-listen", "127.0.0.1:0"])
            .args(["--log-level", "debug"])
            .args(extra)
            // Keep generated token files and profiles out of the user's home.
            .env("XDG_STATE_HOME", &state_home)
            .env("XDG_CONFIG_HOME", &config_home)
            .env_remove("MCP_SENTINEL_CONFIG")
            .env_remove("RUST_LOG")
            .envs(envs.iter().copied())
            .current_dir(&dir.path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {}: {e}", gateway_bin()));
        let log = LogBuffer::default();
        let pid = child.id();
        capture(format!("gw:{pid}:out"), child.stdout.take().expect("piped stdout"), log.clone());
        capture(format!("gw:{pid}"), child.stderr.take().expect("piped stderr"), log.clone());
        // Built before the waits, so a failed wait still kills the child.
        let mut gw =
            Gateway { mcp_addr: SocketAddr::from(([127, 0, 0, 1], 0)), config_path, child: Some(child), log, dir };
        let text = gw.wait_or_die(LISTEN_NEEDLE, Duration::from_secs(30));
        gw.mcp_addr = parse_listen_addr(&text, LISTEN_NEEDLE)
            .unwrap_or_else(|| panic!("cannot parse the address after {LISTEN_NEEDLE:?} in:\n{text}"));
        if wait_state {
            gw.wait_or_die(STATE_NEEDLE, Duration::from_secs(60));
        } else {
            gw.wait_or_die("management API listening on", Duration::from_secs(30));
        }
        gw
    }

    /// Waits for `needle`; panics with the log if it never comes or the gateway exits.
    fn wait_or_die(&mut self, needle: &str, timeout: Duration) -> String {
        let child = self.child.as_mut().expect("gateway child");
        let mut exited = None;
        let found = self.log.wait_until(
            timeout,
            |s| s.contains(needle),
            || {
                exited = child.try_wait().ok().flatten();
                exited.is_some()
            },
        );
        match found {
            Some(text) => text,
            None => {
                // Let the capture threads drain what the child wrote last.
                let _ = self.log.wait_until(Duration::from_millis(300), |_| false, || false);
                let why = match exited {
                    Some(status) => format!("the gateway exited ({status})"),
                    None => format!("no {needle:?} within {timeout:?}"),
                };
                panic!("{why}; its output:\n{}", self.log.text());
            }
        }
    }

    /// `http://ADDR{path}` on the data plane.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.mcp_addr, path)
    }

    /// Everything the gateway wrote to stderr and stdout so far.
    pub fn log(&self) -> String {
        self.log.text()
    }

    /// Polls the captured output until it contains `needle` (bounded).
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        self.log.wait_until(timeout, |s| s.contains(needle), || false).is_some()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// The management listener's address, if the gateway logged a line with
    /// "manage" and "listening on http://ADDR".
    pub fn manage_addr(&self) -> Option<SocketAddr> {
        self.log()
            .lines()
            .filter(|l| l.to_ascii_lowercase().contains("manag"))
            .find_map(|l| parse_listen_addr(l, "listening on http://"))
    }

    /// `XDG_STATE_HOME` given to the gateway (the default token file lives under it).
    pub fn state_home(&self) -> PathBuf {
        self.dir.path.join("state")
    }

    /// Waits (bounded) for the gateway to exit on its own; `None` if it is
    /// still running after `timeout` (it is then left for [`Gateway::stop`]).
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let status = wait_timeout(self.child.as_mut()?, timeout)?;
        self.child = None;
        Some(status)
    }

    /// Stops the gateway now (SIGTERM, then SIGKILL after 5 s) and returns its exit status.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        terminate(&mut child, Duration::from_secs(5))
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The `host:port` after `needle` on the first line containing it.
pub fn parse_listen_addr(text: &str, needle: &str) -> Option<SocketAddr> {
    let line = text.lines().find(|l| l.contains(needle))?;
    let rest = &line[line.find(needle)? + needle.len()..];
    let token = rest.split_whitespace().next()?;
    let hostport = token.split('/').next()?;
    hostport.trim_end_matches([',', ';', ')']).parse().ok()
}

// ---------------------------------------------------------------------------
// Backends and peers
// ---------------------------------------------------------------------------

/// A stdio BACKEND entry for the demo backend.
pub fn demo_backend(name: &str, extra_args: &[&str]) -> Value {
    let mut args = vec!["--name".to_string(), name.to_string()];
    args.extend(extra_args.iter().map(|s| s.to_string()));
    json!({ "command": DEMO_BIN, "args": args })
}

/// `<manifest>/.peers`, where `scripts/install-peers.sh` installs the peers.
pub fn peers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(".peers")
}

/// True when running under CI (`CI` set to anything but "" / "0" / "false").
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false" | "FALSE"))
}

/// A missing peer fails the test in CI and skips it (with a clear line) elsewhere.
fn missing_peer(what: &str) {
    let msg = format!("{what} is not installed under {}; run scripts/install-peers.sh", peers_dir().display());
    if in_ci() {
        panic!("CI=true and {msg}");
    }
    // Straight to the process's stderr: the test runner captures eprintln!
    // and would hide this line for a test that "passed" by skipping.
    let _ = writeln!(std::io::stderr(), "SKIPPED: {msg}");
}

/// [`python`], checked once per test binary (the check imports the SDK,
/// which takes seconds); `None` to skip, saying so for each test.
pub fn sdk_python() -> Option<PathBuf> {
    static PYTHON: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    let mut checked_now = false;
    let found = PYTHON
        .get_or_init(|| {
            checked_now = true;
            python()
        })
        .clone();
    if found.is_none() && !checked_now {
        // python() said why the first time; say it for this test too.
        let _ = writeln!(std::io::stderr(), "SKIPPED: the Python MCP SDK (.peers/venv) is not installed");
    }
    found
}

/// The Python SDK and server-everything (stdio entry), or `None` to skip.
pub fn sdk_peers() -> Option<(PathBuf, Value)> {
    let python = sdk_python()?;
    let everything = everything_backend()?;
    Some((python, everything))
}

/// `python SCRIPT` for a test script under `tests/py`, unbuffered and
/// with no proxy between it and 127.0.0.1.
pub fn py_command(python: &Path, script: &str) -> Command {
    let mut cmd = Command::new(python);
    cmd.arg(py_script(script))
        .env("PYTHONUNBUFFERED", "1")
        .env_remove("HTTP_PROXY")
        .env_remove("HTTPS_PROXY")
        .env_remove("http_proxy")
        .env_remove("https_proxy")
        .env("NO_PROXY", "127.0.0.1,localhost");
    cmd
}

/// `.peers/venv/bin/python` if it exists and can `import mcp`.
pub fn python() -> Option<PathBuf> {
    let py = peers_dir().join("venv/bin/python");
    let ok = py.exists() && {
        let out = run_bounded("python-check", Command::new(&py).args(["-c", "import mcp"]), Duration::from_secs(60));
        out.success()
    };
    if ok {
        Some(py)
    } else {
        missing_peer("the Python MCP SDK (.peers/venv with `mcp`)");
        None
    }
}

/// Entry point of the pinned @modelcontextprotocol/server-everything.
pub fn everything_script() -> PathBuf {
    peers_dir().join("node/node_modules/@modelcontextprotocol/server-everything/dist/index.js")
}

/// A stdio BACKEND entry running server-everything (`node index.js stdio`).
pub fn everything_backend() -> Option<Value> {
    let script = everything_script();
    let node_ok = script.exists() && {
        let out = run_bounded("node-check", Command::new("node").arg("--version"), Duration::from_secs(30));
        out.success()
    };
    if node_ok {
        Some(json!({ "command": "node", "args": [script.to_string_lossy(), "stdio"] }))
    } else {
        missing_peer("@modelcontextprotocol/server-everything (.peers/node) or node");
        None
    }
}

/// `tests/py/<name>`.
pub fn py_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py").join(name)
}

/// The official conformance suite as `scripts/install-peers.sh` installs it.
pub struct ConformanceSuite {
    /// `.peers/node22/node_modules/node/bin/node`, a node 22 (the suite needs >= 22).
    pub node: PathBuf,
    /// The suite's CLI entry point (`conformance` on npm), run as `node <cli> ...`.
    pub cli: PathBuf,
}

/// The pinned node 22 and `@modelcontextprotocol/conformance`, if installed
/// and the node runs and is a 22.
pub fn conformance_suite() -> Option<ConformanceSuite> {
    let node = peers_dir().join("node22/node_modules/node/bin/node");
    let cli = peers_dir().join("conformance/node_modules/@modelcontextprotocol/conformance/dist/index.js");
    let node_ok = node.exists() && {
        let out = run_bounded("node22-check", Command::new(&node).arg("--version"), Duration::from_secs(30));
        out.success() && out.stdout.trim_start().starts_with("v22.")
    };
    if node_ok && cli.exists() {
        Some(ConformanceSuite { node, cli })
    } else {
        missing_peer("node 22 (.peers/node22) or @modelcontextprotocol/conformance (.peers/conformance)");
        None
    }
}

// ---------------------------------------------------------------------------
// Minimal HTTP/1.1 client
// ---------------------------------------------------------------------------

/// A complete HTTP response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics with the body when it is not. An SSE body
    /// (a Streamable HTTP answer sent as a stream) gives its JSON-RPC
    /// response: the last `message` event that is one.
    pub fn json(&self) -> Value {
        if self.header("Content-Type").is_some_and(|t| t.starts_with("text/event-stream")) {
            return self
                .sse_messages()
                .into_iter()
                .rev()
                .find(|m| m.get("result").is_some() || m.get("error").is_some())
                .unwrap_or_else(|| panic!("HTTP {} SSE body holds no response: {:?}", self.status, self.text()));
        }
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("HTTP {} body is not JSON ({e}): {:?}", self.status, self.text()))
    }

    /// The JSON data of every SSE event in the body (events without data,
    /// such as a priming event, are skipped).
    pub fn sse_messages(&self) -> Vec<Value> {
        let mut dec = mcp_sentinel::codec::sse::SseDecoder::new(1 << 26);
        dec.push(&self.body);
        dec.push(b"\n\n");
        let mut out = Vec::new();
        while let Ok(Some(ev)) = dec.next_event() {
            if let Ok(v) = serde_json::from_str::<Value>(&ev.data) {
                out.push(v);
            }
        }
        out
    }
}

/// `http://host:port/path?query` → (host:port, "/path?query").
fn split_url(url: &str) -> (String, String) {
    let rest = url.strip_prefix("http://").unwrap_or_else(|| panic!("only http:// URLs are supported: {url}"));
    match rest.find('/') {
        Some(i) => (rest[..i].to_string(), rest[i..].to_string()),
        None => (rest.to_string(), "/".to_string()),
    }
}

fn connect(hostport: &str) -> TcpStream {
    let addr = hostport
        .to_socket_addrs()
        .unwrap_or_else(|e| panic!("bad address {hostport}: {e}"))
        .next()
        .unwrap_or_else(|| panic!("no address for {hostport}"));
    assert!(addr.ip().is_loopback(), "tests only talk to loopback, not {addr}");
    let stream = TcpStream::connect_timeout(&addr, HTTP_TIMEOUT).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream.set_read_timeout(Some(HTTP_TIMEOUT)).expect("set read timeout");
    stream.set_write_timeout(Some(HTTP_TIMEOUT)).expect("set write timeout");
    stream
}

fn write_request(
    stream: &mut TcpStream,
    method: &str,
    hostport: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(b) = body {
        req.push_str(&format!("Content-Length: {}\r\n", b.len()));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    if let Some(b) = body {
        bytes.extend_from_slice(b);
    }
    stream.write_all(&bytes).unwrap_or_else(|e| panic!("{method} {path}: write failed: {e}"));
}

/// Reads the status line and headers; returns them and any body bytes read past them.
fn read_head(stream: &mut TcpStream, what: &str) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i;
        }
        assert!(buf.len() < 64 * 1024, "{what}: response head over 64 KiB");
        let n = stream.read(&mut chunk).unwrap_or_else(|e| panic!("{what}: reading the response head: {e}"));
        assert!(n > 0, "{what}: connection closed before a full response head: {:?}", String::from_utf8_lossy(&buf));
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let rest = buf[end + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{what}: bad status line {status_line:?}"));
    let headers = lines
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.trim().to_string(), v.trim().to_string()))
        })
        .collect();
    (status, headers, rest)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn header_of<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

fn is_chunked(headers: &[(String, String)]) -> bool {
    header_of(headers, "transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
}

/// One request on a fresh connection (`Connection: close`). Every read is
/// bounded by a 10 s timeout and the whole exchange by 30 s; any failure
/// panics with what went wrong. Not for endless streams: use [`SseStream`].
pub fn http(method: &str, url: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Response {
    let what = format!("{method} {url}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let (hostport, path) = split_url(url);
    let mut stream = connect(&hostport);
    write_request(&mut stream, method, &hostport, &path, headers, body);
    let (status, headers, mut rest) = read_head(&mut stream, &what);
    let no_body = method.eq_ignore_ascii_case("HEAD") || status == 204 || status == 304 || (100..200).contains(&status);
    let mut body_out = Vec::new();
    if !no_body {
        let mut chunked = is_chunked(&headers).then(ChunkedDecoder::default);
        let length = if chunked.is_some() {
            None
        } else {
            header_of(&headers, "content-length")
                .map(|v| v.parse::<usize>().unwrap_or_else(|_| panic!("{what}: bad Content-Length {v:?}")))
        };
        let mut chunk = [0u8; 8192];
        loop {
            match &mut chunked {
                Some(dec) => {
                    dec.push(&rest, &mut body_out);
                    rest.clear();
                    if dec.done() {
                        break;
                    }
                }
                None => {
                    body_out.append(&mut rest);
                    if let Some(n) = length {
                        if body_out.len() >= n {
                            body_out.truncate(n);
                            break;
                        }
                    }
                }
            }
            assert!(Instant::now() < deadline, "{what}: response body took over 30 s");
            let n = stream.read(&mut chunk).unwrap_or_else(|e| panic!("{what}: reading the body: {e}"));
            if n == 0 {
                assert!(
                    length.is_none() && chunked.is_none(),
                    "{what}: connection closed mid-body after {} bytes",
                    body_out.len()
                );
                break;
            }
            rest.extend_from_slice(&chunk[..n]);
        }
    }
    Response { status, headers, body: body_out }
}

/// POSTs a JSON value; a shorthand over [`http`].
pub fn post_json(url: &str, headers: &[(&str, &str)], body: &Value) -> Response {
    let mut all = vec![("Content-Type", "application/json")];
    all.extend_from_slice(headers);
    let bytes = serde_json::to_vec(body).expect("serialize body");
    http("POST", url, &all, Some(&bytes))
}

/// Incremental `Transfer-Encoding: chunked` decoder.
#[derive(Default)]
pub struct ChunkedDecoder {
    state: ChunkState,
    line: Vec<u8>,
}

#[derive(Default, PartialEq, Eq)]
enum ChunkState {
    /// Reading a chunk-size line.
    #[default]
    Size,
    /// Inside chunk data, with this many bytes left.
    Data(usize),
    /// Expecting the CRLF after chunk data.
    DataEnd,
    /// After the last chunk: reading trailer lines up to the empty one.
    Trailer,
    Done,
}

impl ChunkedDecoder {
    /// Decodes `input`, appending payload bytes to `out`.
    pub fn push(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let mut i = 0;
        while i < input.len() {
            match self.state {
                ChunkState::Size | ChunkState::Trailer | ChunkState::DataEnd => {
                    let b = input[i];
                    i += 1;
                    if b != b'\n' {
                        self.line.push(b);
                        assert!(self.line.len() < 4096, "chunked: line too long");
                        continue;
                    }
                    let line = String::from_utf8_lossy(&self.line).trim().to_string();
                    self.line.clear();
                    self.state = match self.state {
                        ChunkState::DataEnd => {
                            assert!(line.is_empty(), "chunked: data not followed by CRLF");
                            ChunkState::Size
                        }
                        ChunkState::Trailer if line.is_empty() => ChunkState::Done,
                        ChunkState::Trailer => ChunkState::Trailer,
                        _ => {
                            let hex = line.split(';').next().unwrap_or("").trim();
                            let size = usize::from_str_radix(hex, 16)
                                .unwrap_or_else(|_| panic!("chunked: bad size line {line:?}"));
                            if size == 0 {
                                ChunkState::Trailer
                            } else {
                                ChunkState::Data(size)
                            }
                        }
                    };
                }
                ChunkState::Data(left) => {
                    let take = left.min(input.len() - i);
                    out.extend_from_slice(&input[i..i + take]);
                    i += take;
                    self.state = if take == left { ChunkState::DataEnd } else { ChunkState::Data(left - take) };
                }
                ChunkState::Done => return,
            }
        }
    }

    pub fn done(&self) -> bool {
        self.state == ChunkState::Done
    }
}

// ---------------------------------------------------------------------------
// SSE
// ---------------------------------------------------------------------------

/// An open `text/event-stream` response read incrementally over a raw socket.
pub struct SseStream {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    stream: TcpStream,
    chunked: Option<ChunkedDecoder>,
    /// Raw bytes read but not yet fed to the decoder.
    pending: Vec<u8>,
    decoder: SseDecoder,
    eof: bool,
}

impl SseStream {
    /// `GET url` with `Accept: text/event-stream`. Returns the full response
    /// instead when the server answers anything but 200 `text/event-stream`.
    pub fn open(url: &str, headers: &[(&str, &str)]) -> Result<SseStream, Response> {
        let mut all = vec![("Accept", "text/event-stream")];
        all.extend_from_slice(headers);
        SseStream::request("GET", url, &all, None)
    }

    /// Any request whose answer may be an event stream (e.g. `POST /mcp`).
    pub fn request(
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<SseStream, Response> {
        let what = format!("{method} {url}");
        let (hostport, path) = split_url(url);
        let mut stream = connect(&hostport);
        write_request(&mut stream, method, &hostport, &path, headers, body);
        let (status, headers, rest) = read_head(&mut stream, &what);
        let is_sse = header_of(&headers, "content-type")
            .is_some_and(|v| v.to_ascii_lowercase().starts_with("text/event-stream"));
        let mut sse = SseStream {
            status,
            chunked: is_chunked(&headers).then(ChunkedDecoder::default),
            headers,
            stream,
            pending: rest,
            decoder: SseDecoder::new(1 << 20),
            eof: false,
        };
        if status == 200 && is_sse {
            return Ok(sse);
        }
        // Not a stream: read the rest of the body (bounded) and hand it back.
        let mut body = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        let length = header_of(&sse.headers, "content-length").and_then(|v| v.parse::<usize>().ok());
        loop {
            let raw = std::mem::take(&mut sse.pending);
            match &mut sse.chunked {
                Some(d) => d.push(&raw, &mut body),
                None => body.extend_from_slice(&raw),
            }
            let complete =
                sse.chunked.as_ref().is_some_and(ChunkedDecoder::done) || length.is_some_and(|n| body.len() >= n);
            if complete || sse.eof || Instant::now() >= deadline {
                break;
            }
            sse.fill(deadline);
        }
        Err(Response { status: sse.status, headers: sse.headers, body })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        header_of(&self.headers, name)
    }

    /// Reads more bytes into `pending`, waiting at most until `deadline`.
    /// Returns false on timeout or end of stream.
    fn fill(&mut self, deadline: Instant) -> bool {
        let now = Instant::now();
        if self.eof || now >= deadline {
            return false;
        }
        let wait = (deadline - now).max(Duration::from_millis(1));
        if self.stream.set_read_timeout(Some(wait)).is_err() {
            return false;
        }
        let mut chunk = [0u8; 8192];
        match self.stream.read(&mut chunk) {
            Ok(0) => {
                self.eof = true;
                false
            }
            Ok(n) => {
                self.pending.extend_from_slice(&chunk[..n]);
                true
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => false,
            Err(_) => {
                self.eof = true;
                false
            }
        }
    }

    /// The next event as `(event, data)`; `None` after `timeout` or at the end
    /// of the stream. Comments (keep-alives) are skipped.
    pub fn next_event(&mut self, timeout: Duration) -> Option<(String, String)> {
        self.next_event_full(timeout).map(|e| (e.event, e.data))
    }

    /// Like [`SseStream::next_event`], with the `id`.
    pub fn next_event_full(&mut self, timeout: Duration) -> Option<mcp_sentinel::codec::sse::SseEvent> {
        let deadline = Instant::now() + timeout;
        loop {
            if !self.pending.is_empty() {
                let raw = std::mem::take(&mut self.pending);
                let mut decoded = Vec::new();
                match &mut self.chunked {
                    Some(d) => d.push(&raw, &mut decoded),
                    None => decoded = raw,
                }
                self.decoder.push(&decoded);
            }
            match self.decoder.next_event() {
                Ok(Some(ev)) => return Some(ev),
                Ok(None) => {}
                Err(e) => panic!("SSE decode error: {e}"),
            }
            if self.chunked.as_ref().is_some_and(ChunkedDecoder::done) {
                return None;
            }
            if !self.fill(deadline) {
                return None;
            }
        }
    }

    /// Waits for the next event named `name`, skipping others (bounded by `timeout`).
    pub fn next_named(&mut self, name: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let (event, data) = self.next_event(left)?;
            if event == name {
                return Some(data);
            }
        }
    }

    /// True once the server has closed the stream.
    pub fn at_eof(&self) -> bool {
        self.eof
    }

    /// True once the stream has ended: the server closed the connection,
    /// or ended a chunked response (the connection may carry more).
    pub fn ended(&self) -> bool {
        self.eof || self.chunked.as_ref().is_some_and(ChunkedDecoder::done)
    }

    /// The last `retry:` (reconnection delay, ms) the stream sent so far.
    pub fn retry(&self) -> Option<u64> {
        self.decoder.retry()
    }
}

// ---------------------------------------------------------------------------
// server-everything over HTTP (for remote-backend tests and peer smoke tests)
// ---------------------------------------------------------------------------

/// server-everything running as an HTTP server (`sse` or `streamableHttp`
/// mode) on a free loopback port; killed by PID when dropped.
///
/// It listens on `PORT` (its only knob; it binds every interface), and the
/// tests only ever connect to 127.0.0.1.
pub struct EverythingServer {
    pub port: u16,
    guard: ChildGuard,
    log: LogBuffer,
}

impl EverythingServer {
    /// `mode` is `"sse"` (GET /sse, POST /message) or `"streamableHttp"` (/mcp).
    /// `None` (outside CI) when the peer is not installed.
    pub fn start(mode: &str) -> Option<EverythingServer> {
        everything_backend()?;
        // Ask the OS for a free port, release it, and hand it over.
        let port =
            std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("find a free port").port();
        let mut child = Command::new("node")
            .arg(everything_script())
            .arg(mode)
            .env("PORT", port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start server-everything: {e}"));
        let log = LogBuffer::default();
        let pid = child.id();
        capture(format!("everything:{pid}:out"), child.stdout.take().expect("stdout"), log.clone());
        capture(format!("everything:{pid}"), child.stderr.take().expect("stderr"), log.clone());
        let mut server = EverythingServer { port, guard: ChildGuard { child }, log };
        let child = &mut server.guard.child;
        let mut exited = false;
        let ready = server.log.wait_until(
            Duration::from_secs(30),
            |s| s.contains(&format!("port {port}")) && !s.contains("already in use"),
            || {
                exited = child.try_wait().ok().flatten().is_some();
                exited
            },
        );
        assert!(
            ready.is_some(),
            "server-everything {mode} did not start on port {port} (exited: {exited}):\n{}",
            server.log.text()
        );
        Some(server)
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    pub fn log(&self) -> String {
        self.log.text()
    }

    pub fn pid(&self) -> u32 {
        self.guard.child.id()
    }
}

// ---------------------------------------------------------------------------
// Any child with its output captured
// ---------------------------------------------------------------------------

/// A free loopback port (bound, read, released: a tiny race, fine for tests).
#[allow(dead_code)]
pub fn get_free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

/// A child whose stdout and stderr are captured; killed when dropped.
#[allow(dead_code)]
pub struct LoggedChild {
    child: Option<Child>,
    log: LogBuffer,
}

/// Starts `cmd` with `XDG_STATE_HOME` set to `state_home` (so no token
/// file lands in the user's home) and captures its output.
#[allow(dead_code)]
pub fn spawn_logged(cmd: &mut Command, state_home: &Path) -> LoggedChild {
    let mut child = cmd
        .env("XDG_STATE_HOME", state_home)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let log = LogBuffer::default();
    let pid = child.id();
    capture(format!("{pid}:out"), child.stdout.take().expect("piped stdout"), log.clone());
    capture(format!("{pid}"), child.stderr.take().expect("piped stderr"), log.clone());
    LoggedChild { child: Some(child), log }
}

#[allow(dead_code)]
impl LoggedChild {
    /// Waits (bounded) for `needle` in the output, or for the child to
    /// exit; returns the output so far either way.
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) -> String {
        let child = self.child.as_mut().expect("child");
        let _ = self.log.wait_until(timeout, |s| s.contains(needle), || child.try_wait().ok().flatten().is_some());
        self.log.text()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGTERM, then SIGKILL after 5 s.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        terminate(&mut child, Duration::from_secs(5))
    }
}

impl Drop for LoggedChild {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The server side of a fake backend: reads one request, its head and a
/// `Content-Length` body (no chunked bodies). `None` if the peer closed
/// first or a read failed (a read timeout the caller set included).
pub fn read_request(s: &mut impl Read) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let len = head
        .lines()
        .find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("content-length")))
        .map_or(0, |(_, v)| v.trim().parse::<usize>().expect("a numeric Content-Length"));
    while buf.len() < head_end + len {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    Some((head, buf[head_end..head_end + len].to_vec()))
}

/// A Streamable HTTP `initialize` (2025-06-18) to `mcp_url`: the quickest
/// check that a gateway's data plane answers MCP.
#[allow(dead_code)]
pub fn mcp_initialize(mcp_url: &str) -> Response {
    post_json(
        mcp_url,
        &[("Accept", "application/json, text/event-stream")],
        &json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
            "protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}),
    )
}

// ---------------------------------------------------------------------------
// Keep-alive client, management shortcuts, process figures
// ---------------------------------------------------------------------------

/// One HTTP/1.1 connection kept open across requests, like a real client
/// (httpx, undici): each request waits for its whole response.
pub struct KeepAlive {
    host: String,
    stream: TcpStream,
    buf: Vec<u8>,
}

impl KeepAlive {
    pub fn connect(addr: SocketAddr) -> KeepAlive {
        let stream = connect(&addr.to_string());
        stream.set_nodelay(true).expect("nodelay");
        KeepAlive { host: addr.to_string(), stream, buf: Vec::new() }
    }

    /// Sends one request and reads its complete response (Content-Length
    /// or chunked, which an SSE answer to a POST uses).
    pub fn request(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n", self.host, body.len());
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        let mut bytes = req.into_bytes();
        bytes.extend_from_slice(body);
        self.stream.write_all(&bytes).expect("write request");
        let what = format!("{method} {path}");
        let deadline = Instant::now() + HTTP_TIMEOUT;
        let mut chunk = [0u8; 16384];
        let end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i;
            }
            assert!(Instant::now() < deadline, "{what}: no response head in time");
            let n = self.stream.read(&mut chunk).unwrap_or_else(|e| panic!("{what}: read: {e}"));
            assert!(n > 0, "{what}: connection closed before a response");
            self.buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
        self.buf.drain(..end + 4);
        let mut lines = head.split("\r\n");
        let status = lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|s| s.parse().ok()).unwrap_or(0);
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_string(), v.trim().to_string())))
            .collect();
        let length = header_of(&headers, "content-length").and_then(|v| v.parse::<usize>().ok());
        let mut body_out = Vec::new();
        if is_chunked(&headers) {
            let mut d = ChunkedDecoder::default();
            loop {
                let raw = std::mem::take(&mut self.buf);
                d.push(&raw, &mut body_out);
                if d.done() {
                    break;
                }
                assert!(Instant::now() < deadline, "{what}: chunked body took too long");
                let n = self.stream.read(&mut chunk).unwrap_or_else(|e| panic!("{what}: read: {e}"));
                assert!(n > 0, "{what}: closed mid-body");
                self.buf.extend_from_slice(&chunk[..n]);
            }
        } else {
            let n = length.unwrap_or(0);
            while self.buf.len() < n {
                assert!(Instant::now() < deadline, "{what}: body took too long");
                let r = self.stream.read(&mut chunk).unwrap_or_else(|e| panic!("{what}: read: {e}"));
                assert!(r > 0, "{what}: closed mid-body");
                self.buf.extend_from_slice(&chunk[..r]);
            }
            body_out = self.buf.drain(..n).collect();
        }
        Response { status, headers, body: body_out }
    }
}

impl Gateway {
    /// The generated admin token (a gateway started with no tokens configured).
    pub fn manage_token(&self) -> String {
        let port = self.manage_addr().expect("management address in the log").port();
        let path = self.state_home().join("mcp-sentinel").join(format!("manage-{port}.token"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).trim().to_owned()
    }

    /// GET on the management API with the generated admin token.
    pub fn manage_get(&self, path: &str) -> Response {
        self.manage_raw(&format!("/manage/v1{path}"))
    }

    /// GET of any path on the management listener (e.g. `/metrics`).
    pub fn manage_raw(&self, path: &str) -> Response {
        let addr = self.manage_addr().expect("management address in the log");
        let auth = format!("Bearer {}", self.manage_token());
        http("GET", &format!("http://{addr}{path}"), &[("Authorization", &auth)], None)
    }

    /// POST on the management API with the generated admin token.
    pub fn manage_post(&self, path: &str) -> Response {
        let addr = self.manage_addr().expect("management address in the log");
        let auth = format!("Bearer {}", self.manage_token());
        http("POST", &format!("http://{addr}/manage/v1{path}"), &[("Authorization", &auth)], None)
    }
}

/// A process's resident memory (KiB), threads and open descriptors, from /proc.
pub fn proc_figures(pid: u32) -> (u64, u64, usize) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |k: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(k))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0);
    (field("VmRSS:"), field("Threads:"), fds)
}

/// Polls `f` every 20 ms until it returns true or `timeout` passes.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------
// Default ports without depending on them
// ---------------------------------------------------------------------------

/// Runs programs in a private network namespace with its own loopback, so
/// a test of the default addresses (127.0.0.1:9000, :9001) neither needs
/// them free on this machine nor disturbs what listens there.
pub struct PrivateNet;

impl PrivateNet {
    /// `Some` when this machine can make one (`unshare -rn` and `ip`).
    pub fn available() -> Option<PrivateNet> {
        static OK: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        let ok = *OK.get_or_init(|| {
            Command::new("unshare")
                .args(["-rn", "sh", "-c", "ip link set lo up"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
        ok.then_some(PrivateNet)
    }

    /// `program` to be run in a new private network namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("unshare");
        c.args(["-rn", "sh", "-c", "ip link set lo up && exec \"$0\" \"$@\"", program]);
        c
    }

    /// A shell prefix that runs a command in the namespace of process `pid`.
    pub fn enter(&self, pid: u32) -> String {
        format!("nsenter -t {pid} -U -n --preserve-credentials")
    }
}

/// For a test of the default ports: a private network namespace, or, when
/// this machine cannot make one, nothing if `port` is free on loopback;
/// `Err` with the reason to skip when it is taken.
pub fn default_port_setup(port: u16) -> Result<Option<PrivateNet>, String> {
    if let Some(net) = PrivateNet::available() {
        return Ok(Some(net));
    }
    match std::net::TcpListener::bind(("127.0.0.1", port)) {
        Ok(_) => Ok(None),
        Err(e) => Err(format!(
            "127.0.0.1:{port} is in use ({e}) and this machine cannot make a private network namespace \
             (unshare -rn); stop what listens there to run this test"
        )),
    }
}
