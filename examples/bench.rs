//! Latency benchmark client for MCP Sentinel and other MCP gateways (see
//! `scripts/bench.sh`).
//!
//! ```text
//! bench direct   --backend PATH -n N [--warmup W] [--call echo|list] [--size BYTES] [--pad-tools N]
//! bench gateway  --url http://127.0.0.1:PORT[/PATH] -n N [--transport streamable|sse] [--concurrency C]
//!                [--warmup W] [--call echo|list] [--size BYTES] [--watch-pid PID [--exclude-exe PATH]]
//! bench sessions --url http://127.0.0.1:PORT[/PATH] --count K [--transport streamable|sse]
//! bench ready    --url http://127.0.0.1:PORT[/PATH] [--transport streamable|sse] --timeout SECS
//!                [--since EPOCHREALTIME] [--watch-pid PID [--exclude-exe PATH]]
//! ```
//!
//! The timed call is `tools/call echo` with a message of `--size` bytes
//! (default 11: "hello bench"), or `tools/list` (`--call list`; give the
//! demo `--pad-tools 8` for a ~10 KB list, as real servers have).
//! `direct` spawns the demo backend over stdio and times those round trips
//! on its pipes; `gateway` does the same through a gateway over a
//! persistent keep-alive HTTP/1.1 connection per worker (a minimal client
//! on `std::net::TcpStream`, TCP_NODELAY). Each timed run prints one JSON
//! line: mode, transport, n, concurrency, p50/p90/p99/mean in µs of the
//! successful calls, calls/s (successful calls of all workers together),
//! `errors` (failed calls, counted, not fatal; the first one's text in
//! `first_error`) and, for `direct`, `ready_ms` (spawn to the initialize
//! answer). A session that cannot be opened is fatal.
//!
//! The URL's path is the endpoint (`/mcp`, `/sse`, ...); without one,
//! `/mcp` for Streamable HTTP and `/sse` for legacy SSE. Streamable HTTP
//! answers may be JSON or an event stream, with or without a session id;
//! a legacy SSE `endpoint` event may be relative or absolute.
//!
//! `--watch-pid PID` measures that process and its descendants, except
//! processes running an `--exclude-exe` binary (the backend) or a shell
//! (a wrapper such as `sh -c`): `gateway` adds `cpu_us_per_call`
//! (utime+stime from `/proc/PID/stat`, sampled just before and just after
//! the timed calls, over the calls made), `ready` adds `rss_kb` (VmRSS
//! after the probe session is closed). `ready` polls, until `--timeout`,
//! with a fresh session (initialize, then `tools/call echo`) and prints
//! `ready_ms`, measured from `--since` (bash's `$EPOCHREALTIME` taken just
//! before the gateway was spawned) or from its own start.
//!
//! `sessions` opens K sessions at once and then closes them (for
//! `scripts/bench-memory.sh`); it prints one JSON line.
//!
//! Only `std`, the crate's codec and existing dependencies: no async runtime.

use mcp_sentinel::codec::jsonrpc::{parse_one, Id, Message};
use mcp_sentinel::codec::sse::{SseDecoder, SseEvent};
use std::error::Error;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

type Res<T> = Result<T, Box<dyn Error + Send + Sync>>;

/// Every socket read and write gives up after this long (ms), so a stuck
/// gateway fails the call instead of hanging the run. `ready` lowers it to
/// its own deadline.
static IO_TIMEOUT_MS: AtomicU64 = AtomicU64::new(30_000);
const PROTOCOL: &str = "2025-06-18";
/// Linux reports utime and stime in USER_HZ ticks, 100 per second on
/// every architecture the kernel exposes to user space through /proc.
const TICK_US: u64 = 10_000;
const USAGE: &str =
    "usage: bench direct --backend PATH -n N [--warmup W] [--call echo|list] [--size BYTES] [--pad-tools N]
       bench gateway --url http://127.0.0.1:PORT[/PATH] -n N [--transport streamable|sse] [--concurrency C] [--warmup W]
                     [--call echo|list] [--size BYTES] [--watch-pid PID [--exclude-exe PATH]]
       bench sessions --url http://127.0.0.1:PORT[/PATH] --count K [--transport streamable|sse]
       bench ready --url http://127.0.0.1:PORT[/PATH] [--transport streamable|sse] --timeout SECS
                   [--since EPOCHREALTIME] [--watch-pid PID [--exclude-exe PATH]]";

/// The call every round trip makes (set once from the options).
#[derive(Clone, Debug)]
enum Work {
    /// `tools/call echo` with a message of this many bytes.
    Echo(usize),
    /// `tools/list`.
    List,
}

static WORK: std::sync::OnceLock<(Work, Vec<u8>)> = std::sync::OnceLock::new();

impl Work {
    fn label(&self) -> String {
        match self {
            Work::Echo(n) => format!("echo {n} B"),
            Work::List => "tools/list".to_owned(),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Transport {
    Streamable,
    Sse,
}

impl Transport {
    fn name(self) -> &'static str {
        match self {
            Transport::Streamable => "streamable",
            Transport::Sse => "sse",
        }
    }
}

struct Opts {
    mode: String,
    backend: Option<String>,
    url: Option<String>,
    n: usize,
    warmup: usize,
    transport: Transport,
    concurrency: usize,
    count: usize,
    work: Work,
    pad_tools: usize,
    timeout: f64,
    since: Option<f64>,
    watch: Vec<u32>,
    exclude: Vec<PathBuf>,
}

fn parse_args() -> Result<Opts, lexopt::Error> {
    use lexopt::prelude::*;
    let mut p = lexopt::Parser::from_env();
    let mut o = Opts {
        mode: String::new(),
        backend: None,
        url: None,
        n: 1000,
        warmup: 50,
        transport: Transport::Streamable,
        concurrency: 1,
        count: 50,
        work: Work::Echo(11),
        pad_tools: 0,
        timeout: 30.0,
        since: None,
        watch: Vec::new(),
        exclude: Vec::new(),
    };
    let mut size = None;
    while let Some(arg) = p.next()? {
        match arg {
            Value(v) if o.mode.is_empty() => o.mode = v.string()?,
            Long("backend") => o.backend = Some(p.value()?.string()?),
            Long("url") => o.url = Some(p.value()?.string()?),
            Short('n') | Long("calls") => o.n = p.value()?.parse()?,
            Long("warmup") => o.warmup = p.value()?.parse()?,
            Short('c') | Long("concurrency") => o.concurrency = p.value()?.parse()?,
            Long("count") => o.count = p.value()?.parse()?,
            Long("size") => size = Some(p.value()?.parse()?),
            Long("pad-tools") => o.pad_tools = p.value()?.parse()?,
            Long("timeout") => o.timeout = p.value()?.parse()?,
            Long("since") => o.since = Some(p.value()?.parse()?),
            Long("watch-pid") => o.watch.push(p.value()?.parse()?),
            Long("exclude-exe") => {
                let v = PathBuf::from(p.value()?);
                o.exclude.push(std::fs::canonicalize(&v).unwrap_or(v));
            }
            Long("call") => {
                o.work = match p.value()?.string()?.as_str() {
                    "echo" => Work::Echo(11),
                    "list" => Work::List,
                    other => return Err(format!("unknown call {other:?} (echo or list)").into()),
                }
            }
            Long("transport") => {
                o.transport = match p.value()?.string()?.as_str() {
                    "streamable" | "http" => Transport::Streamable,
                    "sse" => Transport::Sse,
                    other => return Err(format!("unknown transport {other:?} (streamable or sse)").into()),
                }
            }
            Short('h') | Long("help") => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            _ => return Err(arg.unexpected()),
        }
    }
    if let (Work::Echo(_), Some(n)) = (&o.work, size) {
        o.work = Work::Echo(n);
    }
    if o.concurrency == 0 || o.n == 0 {
        return Err("-n and --concurrency must be at least 1".into());
    }
    if !(o.timeout > 0.0 && o.timeout <= 3600.0) {
        return Err("--timeout must be between 0 and 3600 seconds".into());
    }
    Ok(o)
}

fn main() {
    let opts = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("bench: {e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    let work = if opts.mode == "ready" { Work::Echo(11) } else { opts.work.clone() };
    let _ = WORK.set((work.clone(), request_tail(&work)));
    let r = match opts.mode.as_str() {
        "direct" => run_direct(&opts),
        "gateway" => run_gateway(&opts),
        "sessions" => run_sessions(&opts),
        "ready" => run_ready(&opts),
        _ => {
            eprintln!("bench: expected a mode: direct, gateway, sessions or ready\n{USAGE}");
            std::process::exit(2);
        }
    };
    if let Err(e) = r {
        eprintln!("bench: {e}");
        std::process::exit(1);
    }
}

// ---------------------------------------------------------------------------
// Messages

fn initialize_request(id: i64) -> Vec<u8> {
    let params = serde_json::json!({
        "protocolVersion": PROTOCOL,
        "capabilities": {},
        "clientInfo": { "name": "mcp-sentinel-bench", "version": env!("CARGO_PKG_VERSION") }
    });
    Message::request(Id::Num(id), "initialize", Some(params)).to_bytes()
}

fn initialized_notification() -> Vec<u8> {
    Message::notification("notifications/initialized", None).to_bytes()
}

/// Everything of the timed request after its id, built once.
fn request_tail(w: &Work) -> Vec<u8> {
    match w {
        Work::List => b",\"method\":\"tools/list\"}".to_vec(),
        Work::Echo(n) => {
            let msg: String = "hello bench ".chars().cycle().take(*n).collect();
            let mut v =
                b",\"method\":\"tools/call\",\"params\":{\"name\":\"echo\",\"arguments\":{\"message\":".to_vec();
            serde_json::to_writer(&mut v, &msg).unwrap_or_default();
            v.extend_from_slice(b"}}}");
            v
        }
    }
}

/// The timed request, written from the prebuilt tail so request building
/// stays off the client's own profile as much as possible (the gateway is
/// what we time).
fn echo_request(buf: &mut Vec<u8>, id: i64) {
    buf.clear();
    buf.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
    buf.extend_from_slice(id.to_string().as_bytes());
    if let Some((_, tail)) = WORK.get() {
        buf.extend_from_slice(tail);
    }
}

/// `Some(Ok)` for the answer to `want`, `Some(Err)` for an error answer to
/// it, `None` for anything else (notifications, other ids).
fn answer_to(bytes: &[u8], want: i64) -> Option<Res<()>> {
    match parse_one(bytes) {
        Ok(Message::Response { id: Id::Num(n), result }) if n == want => {
            if result.get().contains("\"isError\":true") {
                Some(Err(format!("call {want} returned a tool error: {}", result.get()).into()))
            } else {
                Some(Ok(()))
            }
        }
        Ok(Message::Error { id: Some(Id::Num(n)), error }) if n == want => {
            Some(Err(format!("call {want} failed: {error}").into()))
        }
        Ok(_) => None,
        Err((_, e)) => Some(Err(format!("unparsable message: {e}").into())),
    }
}

// ---------------------------------------------------------------------------
// Statistics and output

struct Stats {
    p50: f64,
    p90: f64,
    p99: f64,
    mean: f64,
}

/// Nearest-rank percentiles over nanosecond samples, reported in µs.
fn stats(mut ns: Vec<u64>) -> Stats {
    ns.sort_unstable();
    let pct = |p: f64| -> f64 {
        if ns.is_empty() {
            return 0.0;
        }
        let rank = ((p / 100.0) * ns.len() as f64).ceil() as usize;
        ns[rank.clamp(1, ns.len()) - 1] as f64 / 1000.0
    };
    let mean = if ns.is_empty() { 0.0 } else { ns.iter().sum::<u64>() as f64 / ns.len() as f64 / 1000.0 };
    Stats { p50: pct(50.0), p90: pct(90.0), p99: pct(99.0), mean }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// What a timed run adds to its line beyond the latency figures.
#[derive(Default)]
struct Extra {
    errors: usize,
    first_error: Option<String>,
    cpu_us_per_call: Option<f64>,
    ready_ms: Option<f64>,
}

fn report(mode: &str, transport: &str, n: usize, concurrency: usize, samples: Vec<u64>, wall: Duration, x: Extra) {
    let total = samples.len();
    let s = stats(samples);
    let mut line = serde_json::json!({
        "mode": mode,
        "transport": transport,
        "call": WORK.get().map(|(w, _)| w.label()).unwrap_or_default(),
        "n": n,
        "concurrency": concurrency,
        "p50_us": round1(s.p50),
        "p90_us": round1(s.p90),
        "p99_us": round1(s.p99),
        "mean_us": round1(s.mean),
        "calls_per_s": round1(total as f64 / wall.as_secs_f64()),
        "errors": x.errors,
    });
    if let Some(e) = x.first_error {
        line["first_error"] = e.into();
    }
    if let Some(c) = x.cpu_us_per_call {
        line["cpu_us_per_call"] = round1(c).into();
    }
    if let Some(r) = x.ready_ms {
        line["ready_ms"] = round1(r).into();
    }
    println!("{line}");
}

// ---------------------------------------------------------------------------
// CPU time and RSS of a gateway's process tree, from /proc

/// The watched processes: the roots and their descendants, minus backends
/// (`exclude`) and shell wrappers.
struct Watch<'a> {
    roots: &'a [u32],
    exclude: &'a [PathBuf],
}

#[derive(Default, Debug)]
struct TreeSample {
    /// utime + stime, in ticks.
    ticks: u64,
    rss_kb: u64,
}

impl Watch<'_> {
    fn sample(&self) -> TreeSample {
        // pid -> (ppid, utime + stime)
        let mut procs: Vec<(u32, u32, u64)> = Vec::new();
        if let Ok(dir) = std::fs::read_dir("/proc") {
            for e in dir.flatten() {
                let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
                let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
                // The command name is in parentheses and may hold anything.
                let Some(close) = stat.rfind(')') else { continue };
                let f: Vec<&str> = stat[close + 1..].split_whitespace().collect();
                // f[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
                let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
                procs.push((pid, num(1) as u32, num(11) + num(12)));
            }
        }
        let mut tree: Vec<u32> = self.roots.to_vec();
        let mut i = 0;
        while i < tree.len() {
            let parent = tree[i];
            for &(pid, ppid, _) in &procs {
                if ppid == parent && !tree.contains(&pid) {
                    tree.push(pid);
                }
            }
            i += 1;
        }
        let mut out = TreeSample::default();
        for &(pid, _, ticks) in procs.iter().filter(|p| tree.contains(&p.0)) {
            if self.excluded(pid) {
                continue;
            }
            out.ticks += ticks;
            out.rss_kb += std::fs::read_to_string(format!("/proc/{pid}/status"))
                .ok()
                .and_then(|s| {
                    s.lines()
                        .find_map(|l| l.strip_prefix("VmRSS:"))
                        .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
                })
                .unwrap_or(0);
        }
        out
    }

    fn excluded(&self, pid: u32) -> bool {
        let Ok(exe) = std::fs::read_link(format!("/proc/{pid}/exe")) else { return false };
        let name = exe.file_name().and_then(|n| n.to_str()).unwrap_or("");
        matches!(name, "sh" | "dash" | "bash") || self.exclude.contains(&exe)
    }
}

// ---------------------------------------------------------------------------
// direct: the demo backend on stdio

struct StdioPeer {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    line: Vec<u8>,
}

impl StdioPeer {
    fn spawn(path: &str, pad_tools: usize) -> Res<StdioPeer> {
        let mut child = Command::new(path)
            .args(["--name", "direct", "--page-size", "0", "--pad-tools", &pad_tools.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {path}: {e}"))?;
        let stdin = child.stdin.take().ok_or("no stdin pipe")?;
        let stdout = BufReader::new(child.stdout.take().ok_or("no stdout pipe")?);
        Ok(StdioPeer { child, stdin, stdout, line: Vec::with_capacity(512) })
    }

    /// One line out; the trailing newline is added here, in the same write.
    fn send(&mut self, msg: &mut Vec<u8>) -> Res<()> {
        msg.push(b'\n');
        let r = self.stdin.write_all(msg).and_then(|()| self.stdin.flush());
        msg.pop();
        Ok(r?)
    }

    /// Reads lines until the answer to `id`.
    fn wait(&mut self, id: i64) -> Res<()> {
        loop {
            self.line.clear();
            if self.stdout.read_until(b'\n', &mut self.line)? == 0 {
                return Err("backend closed stdout".into());
            }
            if let Some(r) = answer_to(&self.line, id) {
                return r;
            }
        }
    }

    fn call(&mut self, buf: &mut Vec<u8>, id: i64) -> Res<()> {
        echo_request(buf, id);
        self.send(buf)?;
        self.wait(id)
    }
}

impl Drop for StdioPeer {
    fn drop(&mut self) {
        // Closing stdin ends the demo; kill it in case it does not.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run_direct(o: &Opts) -> Res<()> {
    let path = o.backend.as_deref().ok_or("direct needs --backend PATH")?;
    let spawned = Instant::now();
    let mut peer = StdioPeer::spawn(path, o.pad_tools)?;
    peer.send(&mut initialize_request(0))?;
    peer.wait(0)?;
    let ready = spawned.elapsed();
    peer.send(&mut initialized_notification())?;
    let mut buf = Vec::with_capacity(256);
    let mut id = 1;
    for _ in 0..o.warmup {
        peer.call(&mut buf, id)?;
        id += 1;
    }
    let mut samples = Vec::with_capacity(o.n);
    let start = Instant::now();
    for _ in 0..o.n {
        let t = Instant::now();
        peer.call(&mut buf, id)?;
        samples.push(t.elapsed().as_nanos() as u64);
        id += 1;
    }
    let wall = start.elapsed();
    let extra = Extra { ready_ms: Some(ready.as_secs_f64() * 1e3), ..Extra::default() };
    report("direct", "stdio", o.n, 1, samples, wall, extra);
    Ok(())
}

// ---------------------------------------------------------------------------
// A minimal HTTP/1.1 client: one keep-alive connection (reopened when the
// server closes it), Content-Length, chunked or close-delimited bodies, one
// write per request.

struct Http {
    r: BufReader<TcpStream>,
    host: String,
    out: Vec<u8>,
    line: String,
    /// The server closed the connection, or it failed: reconnect before
    /// the next request.
    closed: bool,
}

struct Response {
    status: u16,
    session_id: Option<String>,
    content_type: String,
}

/// How a response body is delimited.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Body {
    Length(usize),
    Chunked,
    /// Until the server closes the connection.
    Close,
}

fn io_timeout() -> Duration {
    Duration::from_millis(IO_TIMEOUT_MS.load(Ordering::Relaxed))
}

fn connect(authority: &str) -> Res<TcpStream> {
    let s = TcpStream::connect(authority).map_err(|e| format!("cannot connect to {authority}: {e}"))?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(io_timeout()))?;
    s.set_write_timeout(Some(io_timeout()))?;
    Ok(s)
}

impl Http {
    fn connect(authority: &str) -> Res<Http> {
        Ok(Http {
            r: BufReader::with_capacity(16 * 1024, connect(authority)?),
            host: authority.to_owned(),
            out: Vec::with_capacity(1024),
            line: String::with_capacity(256),
            closed: false,
        })
    }

    fn send(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Res<()> {
        if self.closed {
            self.r = BufReader::with_capacity(16 * 1024, connect(&self.host)?);
            self.closed = false;
        }
        self.out.clear();
        write!(self.out, "{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.host)?;
        for (k, v) in headers {
            write!(self.out, "{k}: {v}\r\n")?;
        }
        if !body.is_empty() || method == "POST" {
            write!(self.out, "Content-Length: {}\r\n", body.len())?;
        }
        self.out.extend_from_slice(b"\r\n");
        self.out.extend_from_slice(body);
        let r = self.r.get_mut().write_all(&self.out);
        self.closed |= r.is_err();
        Ok(r?)
    }

    fn read_line(&mut self) -> Res<&str> {
        self.line.clear();
        match self.r.read_line(&mut self.line) {
            Ok(0) => {
                self.closed = true;
                Err("connection closed by the server".into())
            }
            Ok(_) => Ok(self.line.trim_end_matches(['\r', '\n'])),
            Err(e) => {
                self.closed = true;
                Err(e.into())
            }
        }
    }

    /// Reads a status line and headers.
    fn head(&mut self) -> Res<(Response, Body)> {
        let status_line = self.read_line()?;
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line {status_line:?}"))?;
        let mut resp = Response { status, session_id: None, content_type: String::new() };
        let (mut len, mut chunked, mut close) = (None, false, false);
        loop {
            let line = self.read_line()?;
            if line.is_empty() {
                break;
            }
            let Some((k, v)) = line.split_once(':') else { continue };
            let v = v.trim();
            if k.eq_ignore_ascii_case("content-length") {
                len = Some(v.parse().map_err(|_| format!("bad Content-Length {v:?}"))?);
            } else if k.eq_ignore_ascii_case("transfer-encoding") {
                chunked = v.eq_ignore_ascii_case("chunked");
            } else if k.eq_ignore_ascii_case("mcp-session-id") {
                resp.session_id = Some(v.to_owned());
            } else if k.eq_ignore_ascii_case("content-type") {
                resp.content_type = v.to_ascii_lowercase();
            } else if k.eq_ignore_ascii_case("connection") {
                close = v.eq_ignore_ascii_case("close");
            }
        }
        // Closed after this response either way.
        self.closed |= close;
        let body = match (chunked, len) {
            (true, _) => Body::Chunked,
            (false, Some(n)) => Body::Length(n),
            // No body without a length: 1xx, 204, 304.
            (false, None) if status < 200 || status == 204 || status == 304 => Body::Length(0),
            (false, None) => Body::Close,
        };
        Ok((resp, body))
    }

    /// The next piece of a body into `out` (appended); `false` at its end.
    fn piece(&mut self, body: Body, out: &mut Vec<u8>) -> Res<bool> {
        let r = match body {
            Body::Chunked => self.chunk(out),
            Body::Length(_) => Err("piece() is for streamed bodies".into()),
            Body::Close => {
                let start = out.len();
                out.resize(start + 16 * 1024, 0);
                let n = self.r.read(&mut out[start..]);
                out.truncate(start + *n.as_ref().unwrap_or(&0));
                match n {
                    Ok(0) => {
                        self.closed = true;
                        Ok(false)
                    }
                    Ok(_) => Ok(true),
                    Err(e) => Err(e.into()),
                }
            }
        };
        if r.is_err() {
            self.closed = true;
        }
        r
    }

    /// One chunk of a chunked body into `out` (appended); `false` at the end.
    fn chunk(&mut self, out: &mut Vec<u8>) -> Res<bool> {
        let size_line = self.read_line()?;
        let hex = size_line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(hex, 16).map_err(|_| format!("bad chunk size {size_line:?}"))?;
        if size == 0 {
            // Trailers, then the blank line.
            while !self.read_line()?.is_empty() {}
            return Ok(false);
        }
        let start = out.len();
        out.resize(start + size, 0);
        self.r.read_exact(&mut out[start..])?;
        let mut crlf = [0u8; 2];
        self.r.read_exact(&mut crlf)?;
        Ok(true)
    }

    /// A whole exchange: request out, full response (body into `body`) in.
    fn exchange(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        req: &[u8],
        body: &mut Vec<u8>,
    ) -> Res<Response> {
        self.send(method, path, headers, req)?;
        let (resp, kind) = self.head()?;
        body.clear();
        match kind {
            Body::Length(n) => {
                body.resize(n, 0);
                if let Err(e) = self.r.read_exact(body) {
                    self.closed = true;
                    return Err(e.into());
                }
            }
            _ => while self.piece(kind, body)? {},
        }
        Ok(resp)
    }
}

/// `http://127.0.0.1:PORT[/PATH]` → (`127.0.0.1:PORT`, `/PATH` or the
/// transport's default path).
fn split_url(url: &str, t: Transport) -> Res<(String, String)> {
    let rest = url.strip_prefix("http://").ok_or("--url must start with http://")?;
    let (auth, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let path = if path.is_empty() || path == "/" {
        match t {
            Transport::Streamable => "/mcp",
            Transport::Sse => "/sse",
        }
    } else {
        path
    };
    Ok((auth.to_owned(), path.to_owned()))
}

/// The path to POST to from a legacy SSE `endpoint` event: absolute URLs
/// lose their origin, relative references are resolved against the
/// stream's path.
fn resolve_endpoint(sse_path: &str, endpoint: &str) -> String {
    let e = endpoint.trim();
    if let Some(rest) = e.strip_prefix("http://").or_else(|| e.strip_prefix("https://")) {
        return rest.find('/').map_or_else(|| "/".to_owned(), |i| rest[i..].to_owned());
    }
    if e.starts_with('/') {
        return e.to_owned();
    }
    let dir = sse_path.rfind('/').map_or("/", |i| &sse_path[..=i]);
    format!("{dir}{e}")
}

/// The text of an answer carried either as JSON or as SSE events.
fn find_answer(resp: &Response, body: &[u8], id: i64) -> Res<()> {
    if resp.status != 200 {
        return Err(format!("HTTP {} for call {id}: {}", resp.status, String::from_utf8_lossy(body)).into());
    }
    if resp.content_type.starts_with("text/event-stream") {
        let mut d = SseDecoder::new(1 << 20);
        d.push(body);
        while let Some(ev) = d.next_event().map_err(|e| e.to_string())? {
            if let Some(r) = answer_to(ev.data.as_bytes(), id) {
                return r;
            }
        }
        return Err(format!("no answer to {id} in the event stream").into());
    }
    answer_to(body, id).unwrap_or_else(|| Err(format!("response is not the answer to {id}").into()))
}

// ---------------------------------------------------------------------------
// Streamable HTTP client session

struct StreamableClient {
    http: Http,
    path: String,
    sid: Option<String>,
    body: Vec<u8>,
    req: Vec<u8>,
}

const JSON_HEADERS: [(&str, &str); 2] =
    [("Content-Type", "application/json"), ("Accept", "application/json, text/event-stream")];

impl StreamableClient {
    fn open(auth: &str, path: &str) -> Res<StreamableClient> {
        let mut http = Http::connect(auth)?;
        let mut body = Vec::with_capacity(4096);
        let resp = http.exchange("POST", path, &JSON_HEADERS, &initialize_request(0), &mut body)?;
        find_answer(&resp, &body, 0)?;
        let sid = resp.session_id.clone();
        let mut c = StreamableClient { http, path: path.to_owned(), sid, body, req: Vec::with_capacity(256) };
        let resp = c.post(&initialized_notification())?;
        if !(200..300).contains(&resp.status) {
            return Err(format!("notifications/initialized got HTTP {}", resp.status).into());
        }
        Ok(c)
    }

    fn post(&mut self, msg: &[u8]) -> Res<Response> {
        let version = ("MCP-Protocol-Version", PROTOCOL);
        let (with_sid, without_sid);
        let headers: &[(&str, &str)] = match self.sid.as_deref() {
            Some(sid) => {
                with_sid = [JSON_HEADERS[0], JSON_HEADERS[1], version, ("Mcp-Session-Id", sid)];
                &with_sid
            }
            None => {
                without_sid = [JSON_HEADERS[0], JSON_HEADERS[1], version];
                &without_sid
            }
        };
        self.http.exchange("POST", &self.path, headers, msg, &mut self.body)
    }

    fn call(&mut self, id: i64) -> Res<()> {
        let mut req = std::mem::take(&mut self.req);
        echo_request(&mut req, id);
        let resp = self.post(&req);
        self.req = req;
        find_answer(&resp?, &self.body, id)
    }

    fn close(mut self) -> Res<()> {
        let Some(sid) = self.sid.clone() else { return Ok(()) };
        let path = self.path.clone();
        let resp = self.http.exchange("DELETE", &path, &[("Mcp-Session-Id", &sid)], &[], &mut self.body)?;
        // 405: the server does not let clients end sessions; that is allowed.
        if !(200..300).contains(&resp.status) && resp.status != 405 {
            return Err(format!("DELETE {path} got HTTP {}", resp.status).into());
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Legacy SSE client session: GET /sse on one connection, POSTs on another.

struct SseClient {
    stream: Http,
    stream_body: Body,
    post: Http,
    endpoint: String,
    decoder: SseDecoder,
    chunk: Vec<u8>,
    body: Vec<u8>,
    req: Vec<u8>,
    /// The event stream ended or failed: this session is gone.
    broken: bool,
}

impl SseClient {
    fn open(auth: &str, path: &str) -> Res<SseClient> {
        let mut stream = Http::connect(auth)?;
        stream.send("GET", path, &[("Accept", "text/event-stream")], &[])?;
        let (resp, stream_body) = stream.head()?;
        if resp.status != 200 || !resp.content_type.starts_with("text/event-stream") {
            return Err(format!("GET {path}: HTTP {} {:?}", resp.status, resp.content_type).into());
        }
        let mut c = SseClient {
            stream,
            stream_body,
            post: Http::connect(auth)?,
            endpoint: String::new(),
            decoder: SseDecoder::new(1 << 20),
            chunk: Vec::with_capacity(4096),
            body: Vec::with_capacity(256),
            req: Vec::with_capacity(256),
            broken: false,
        };
        loop {
            let ev = c.next_event()?;
            if ev.event == "endpoint" {
                c.endpoint = resolve_endpoint(path, &ev.data);
                break;
            }
        }
        c.send(&initialize_request(0))?;
        c.wait(0)?;
        c.send(&initialized_notification())?;
        Ok(c)
    }

    fn next_event(&mut self) -> Res<SseEvent> {
        loop {
            if let Some(ev) = self.decoder.next_event().map_err(|e| e.to_string())? {
                return Ok(ev);
            }
            self.chunk.clear();
            let more = match self.stream_body {
                Body::Length(_) => Err("the SSE stream has a fixed length".into()),
                kind => self.stream.piece(kind, &mut self.chunk),
            };
            match more {
                Ok(true) => self.decoder.push(&self.chunk),
                Ok(false) => {
                    self.broken = true;
                    return Err("the server ended the SSE stream".into());
                }
                Err(e) => {
                    self.broken = true;
                    return Err(e);
                }
            }
        }
    }

    fn send(&mut self, msg: &[u8]) -> Res<()> {
        let resp = self.post.exchange("POST", &self.endpoint, &JSON_HEADERS[..1], msg, &mut self.body)?;
        if !(200..300).contains(&resp.status) {
            return Err(format!(
                "POST {} got HTTP {}: {}",
                self.endpoint,
                resp.status,
                String::from_utf8_lossy(&self.body)
            )
            .into());
        }
        Ok(())
    }

    fn wait(&mut self, id: i64) -> Res<()> {
        loop {
            let ev = self.next_event()?;
            if ev.event != "message" && !ev.event.is_empty() {
                continue;
            }
            if let Some(r) = answer_to(ev.data.as_bytes(), id) {
                return r;
            }
        }
    }

    fn call(&mut self, id: i64) -> Res<()> {
        let mut req = std::mem::take(&mut self.req);
        echo_request(&mut req, id);
        let sent = self.send(&req);
        self.req = req;
        sent?;
        self.wait(id)
    }
}

// ---------------------------------------------------------------------------
// gateway, sessions and ready modes

enum Client {
    Streamable(Box<StreamableClient>),
    Sse(Box<SseClient>),
}

impl Client {
    fn open(t: Transport, auth: &str, path: &str) -> Res<Client> {
        Ok(match t {
            Transport::Streamable => Client::Streamable(Box::new(StreamableClient::open(auth, path)?)),
            Transport::Sse => Client::Sse(Box::new(SseClient::open(auth, path)?)),
        })
    }

    fn call(&mut self, id: i64) -> Res<()> {
        match self {
            Client::Streamable(c) => c.call(id),
            Client::Sse(c) => c.call(id),
        }
    }

    /// The session cannot carry further calls (a Streamable HTTP client
    /// just reconnects; a legacy SSE session dies with its stream).
    fn broken(&self) -> bool {
        match self {
            Client::Streamable(_) => false,
            Client::Sse(c) => c.broken,
        }
    }

    fn close(self) -> Res<()> {
        match self {
            Client::Streamable(c) => c.close(),
            // Dropping both connections ends a legacy session.
            Client::Sse(_) => Ok(()),
        }
    }
}

/// One worker's outcome: latencies of the successful calls, failures.
#[derive(Default)]
struct Tally {
    samples: Vec<u64>,
    errors: usize,
    first_error: Option<String>,
}

impl Tally {
    fn fail(&mut self, e: &(dyn Error + Send + Sync)) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(e.to_string());
        }
    }
}

/// Calls `ids` one after the other on `c`, counting failures. A session
/// broken by a failure is reopened once, as a client would; if that fails
/// too, the calls left are counted as failed.
fn drive(c: &mut Client, o: &Opts, auth: &str, path: &str, ids: std::ops::Range<i64>, t: &mut Tally, timed: bool) {
    let len = ids.end;
    for id in ids {
        let start = Instant::now();
        match c.call(id) {
            Ok(()) if timed => t.samples.push(start.elapsed().as_nanos() as u64),
            Ok(()) => {}
            Err(e) => {
                t.fail(&*e);
                if c.broken() {
                    match Client::open(o.transport, auth, path) {
                        Ok(fresh) => *c = fresh,
                        Err(e) => {
                            t.fail(&*e);
                            t.errors += (len - id - 1).max(0) as usize;
                            return;
                        }
                    }
                }
            }
        }
    }
}

fn run_gateway(o: &Opts) -> Res<()> {
    let (auth, path) = split_url(o.url.as_deref().ok_or("gateway needs --url")?, o.transport)?;
    let watch = Watch { roots: &o.watch, exclude: &o.exclude };
    // Everyone opened and warmed up; the CPU sampled, go; everyone done
    // with the timed calls.
    let barrier = || Barrier::new(o.concurrency + 1);
    let (ready, go, done) = (barrier(), barrier(), barrier());
    let (tallies, wall, cpu) = std::thread::scope(|s| -> Res<(Vec<Tally>, Duration, Option<f64>)> {
        let workers: Vec<_> = (0..o.concurrency)
            .map(|_| {
                let (auth, path, ready, go, done) = (&auth, &path, &ready, &go, &done);
                s.spawn(move || -> Res<Tally> {
                    // A failed open still reaches both barriers so nobody hangs.
                    let mut t = Tally::default();
                    let opened = Client::open(o.transport, auth, path).map(|mut c| {
                        drive(&mut c, o, auth, path, 1..1 + o.warmup as i64, &mut t, false);
                        c
                    });
                    ready.wait();
                    go.wait();
                    let Ok(mut c) = opened else {
                        done.wait();
                        return Err(opened.err().unwrap_or_else(|| "open failed".into()));
                    };
                    t.samples.reserve(o.n);
                    let first = 1 + o.warmup as i64;
                    drive(&mut c, o, auth, path, first..first + o.n as i64, &mut t, true);
                    done.wait();
                    if let Err(e) = c.close() {
                        t.fail(&*e);
                    }
                    Ok(t)
                })
            })
            .collect();
        ready.wait();
        let before = (!o.watch.is_empty()).then(|| watch.sample());
        let start = Instant::now();
        go.wait();
        done.wait();
        let wall = start.elapsed();
        let after = (!o.watch.is_empty()).then(|| watch.sample());
        let mut tallies = Vec::with_capacity(o.concurrency);
        let mut first_err = None;
        for w in workers {
            match w.join() {
                Ok(Ok(t)) => tallies.push(t),
                Ok(Err(e)) => first_err = first_err.or(Some(e)),
                Err(_) => first_err = first_err.or(Some("a worker panicked".into())),
            }
        }
        if let Some(e) = first_err {
            return Err(format!("cannot open a session: {e}").into());
        }
        let calls = (o.n * o.concurrency) as f64;
        let cpu = before.zip(after).map(|(b, a)| a.ticks.saturating_sub(b.ticks) as f64 * TICK_US as f64 / calls);
        Ok((tallies, wall, cpu))
    })?;
    let mut extra = Extra { cpu_us_per_call: cpu, ..Extra::default() };
    let mut samples = Vec::with_capacity(o.n * o.concurrency);
    for t in tallies {
        samples.extend(t.samples);
        extra.errors += t.errors;
        extra.first_error = extra.first_error.or(t.first_error);
    }
    if let Some(e) = &extra.first_error {
        eprintln!("bench: {} failed call(s); first: {e}", extra.errors);
    }
    report("gateway", o.transport.name(), o.n, o.concurrency, samples, wall, extra);
    Ok(())
}

/// Opens `--count` sessions at once (each makes one call), then closes them.
fn run_sessions(o: &Opts) -> Res<()> {
    let (auth, path) = split_url(o.url.as_deref().ok_or("sessions needs --url")?, o.transport)?;
    let start = Instant::now();
    let mut clients = Vec::with_capacity(o.count);
    for _ in 0..o.count {
        let mut c = Client::open(o.transport, &auth, &path)?;
        c.call(1)?;
        clients.push(c);
    }
    let opened = start.elapsed();
    for c in clients {
        c.close()?;
    }
    let line = serde_json::json!({
        "mode": "sessions",
        "transport": o.transport.name(),
        "count": o.count,
        "open_ms": round1(opened.as_secs_f64() * 1e3),
        "total_ms": round1(start.elapsed().as_secs_f64() * 1e3),
    });
    println!("{line}");
    Ok(())
}

/// Polls, each time with a fresh session, until an echo call succeeds or
/// `--timeout` has passed.
fn run_ready(o: &Opts) -> Res<()> {
    let (auth, path) = split_url(o.url.as_deref().ok_or("ready needs --url")?, o.transport)?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs_f64();
    // Elapsed time is kept on the monotonic clock once started.
    let already = o.since.map_or(0.0, |s| (now - s).max(0.0));
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(o.timeout);
    IO_TIMEOUT_MS.store(((o.timeout * 1000.0) as u64).clamp(100, 30_000), Ordering::Relaxed);
    let mut attempts = 0u32;
    let last = loop {
        attempts += 1;
        let r = Client::open(o.transport, &auth, &path).and_then(|mut c| {
            c.call(1)?;
            Ok(c)
        });
        match r {
            Ok(c) => {
                let ready_ms = (already + start.elapsed().as_secs_f64()) * 1e3;
                let _ = c.close();
                let mut line = serde_json::json!({
                    "mode": "ready",
                    "transport": o.transport.name(),
                    "ready_ms": round1(ready_ms),
                    "attempts": attempts,
                });
                if !o.watch.is_empty() {
                    // Let the server finish the probe session's teardown.
                    std::thread::sleep(Duration::from_millis(200));
                    line["rss_kb"] = Watch { roots: &o.watch, exclude: &o.exclude }.sample().rss_kb.into();
                }
                println!("{line}");
                return Ok(());
            }
            Err(_) if Instant::now() + Duration::from_millis(10) < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => break e,
        }
    };
    Err(format!("not ready within {} s ({attempts} attempts); last error: {last}", o.timeout).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_endpoints() {
        let (a, p) = split_url("http://127.0.0.1:9/", Transport::Sse).unwrap();
        assert_eq!((a.as_str(), p.as_str()), ("127.0.0.1:9", "/sse"));
        let (_, p) = split_url("http://127.0.0.1:9", Transport::Streamable).unwrap();
        assert_eq!(p, "/mcp");
        let (_, p) = split_url("http://127.0.0.1:9/x/mcp", Transport::Streamable).unwrap();
        assert_eq!(p, "/x/mcp");
        assert_eq!(resolve_endpoint("/sse", "/message?sessionId=1"), "/message?sessionId=1");
        assert_eq!(resolve_endpoint("/sse", "http://127.0.0.1:9/messages/?session_id=2"), "/messages/?session_id=2");
        assert_eq!(resolve_endpoint("/a/sse", "message?x=1"), "/a/message?x=1");
    }
}
