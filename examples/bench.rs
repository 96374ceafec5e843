//! Latency benchmark client for MCP Sentinel (see `scripts/bench.sh`).
//!
//! ```text
//! bench direct   --backend PATH -n N [--warmup W] [--call echo|list] [--size BYTES] [--pad-tools N]
//! bench gateway  --url http://127.0.0.1:PORT -n N [--transport streamable|sse] [--concurrency C] [--warmup W]
//!                [--call echo|list] [--size BYTES]
//! bench sessions --url http://127.0.0.1:PORT --count K [--transport streamable|sse]
//! ```
//!
//! The timed call is `tools/call echo` with a message of `--size` bytes
//! (default 11: "hello bench"), or `tools/list` (`--call list`; give the
//! demo `--pad-tools 8` for a ~10 KB list, as real servers have).
//! `direct` spawns the demo backend over stdio and times those round trips
//! on its pipes; `gateway` does the same through the gateway
//! over a persistent keep-alive HTTP/1.1 connection per worker (a minimal
//! client on `std::net::TcpStream`, TCP_NODELAY). Each timed run prints one
//! JSON line: mode, transport, n, concurrency, p50/p90/p99/mean in µs and
//! calls/s (all workers together). `sessions` opens K sessions at once and
//! then closes them (for `scripts/bench-memory.sh`); it prints one JSON line.
//!
//! Only `std`, the crate's codec and existing dependencies: no async runtime.

use mcp_sentinel::codec::jsonrpc::{parse_one, Id, Message};
use mcp_sentinel::codec::sse::SseDecoder;
use std::error::Error;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Barrier;
use std::time::{Duration, Instant};

type Res<T> = Result<T, Box<dyn Error + Send + Sync>>;

/// Every socket read and write gives up after this long, so a stuck
/// gateway fails the run instead of hanging it.
const IO_TIMEOUT: Duration = Duration::from_secs(30);
const PROTOCOL: &str = "2025-06-18";
const USAGE: &str =
    "usage: bench direct --backend PATH -n N [--warmup W] [--call echo|list] [--size BYTES] [--pad-tools N]
       bench gateway --url http://127.0.0.1:PORT -n N [--transport streamable|sse] [--concurrency C] [--warmup W]
                     [--call echo|list] [--size BYTES]
       bench sessions --url http://127.0.0.1:PORT --count K [--transport streamable|sse]";

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
    let _ = WORK.set((opts.work.clone(), request_tail(&opts.work)));
    let r = match opts.mode.as_str() {
        "direct" => run_direct(&opts),
        "gateway" => run_gateway(&opts),
        "sessions" => run_sessions(&opts),
        _ => {
            eprintln!("bench: expected a mode: direct, gateway or sessions\n{USAGE}");
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

fn report(mode: &str, transport: &str, n: usize, concurrency: usize, samples: Vec<u64>, wall: Duration) {
    let total = samples.len();
    let s = stats(samples);
    let round = |x: f64| (x * 10.0).round() / 10.0;
    let line = serde_json::json!({
        "mode": mode,
        "transport": transport,
        "call": WORK.get().map(|(w, _)| w.label()).unwrap_or_default(),
        "n": n,
        "concurrency": concurrency,
        "p50_us": round(s.p50),
        "p90_us": round(s.p90),
        "p99_us": round(s.p99),
        "mean_us": round(s.mean),
        "calls_per_s": round(total as f64 / wall.as_secs_f64()),
    });
    println!("{line}");
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
    let mut peer = StdioPeer::spawn(path, o.pad_tools)?;
    peer.send(&mut initialize_request(0))?;
    peer.wait(0)?;
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
    report("direct", "stdio", o.n, 1, samples, wall);
    Ok(())
}

// ---------------------------------------------------------------------------
// A minimal HTTP/1.1 client: one keep-alive connection, Content-Length or
// chunked bodies, one write per request.

struct Http {
    r: BufReader<TcpStream>,
    host: String,
    out: Vec<u8>,
    line: String,
}

struct Response {
    status: u16,
    session_id: Option<String>,
    content_type: String,
}

impl Http {
    fn connect(authority: &str) -> Res<Http> {
        let s = TcpStream::connect(authority).map_err(|e| format!("cannot connect to {authority}: {e}"))?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(IO_TIMEOUT))?;
        s.set_write_timeout(Some(IO_TIMEOUT))?;
        Ok(Http {
            r: BufReader::with_capacity(16 * 1024, s),
            host: authority.to_owned(),
            out: Vec::with_capacity(1024),
            line: String::with_capacity(256),
        })
    }

    fn send(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Res<()> {
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
        self.r.get_mut().write_all(&self.out)?;
        Ok(())
    }

    fn read_line(&mut self) -> Res<&str> {
        self.line.clear();
        if self.r.read_line(&mut self.line)? == 0 {
            return Err("connection closed by the gateway".into());
        }
        Ok(self.line.trim_end_matches(['\r', '\n']))
    }

    /// Reads a status line and headers. `Ok((resp, len, chunked))`.
    fn head(&mut self) -> Res<(Response, Option<usize>, bool)> {
        let status_line = self.read_line()?;
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line {status_line:?}"))?;
        let mut resp = Response { status, session_id: None, content_type: String::new() };
        let (mut len, mut chunked) = (None, false);
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
            }
        }
        Ok((resp, len, chunked))
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
        let (resp, len, chunked) = self.head()?;
        body.clear();
        if chunked {
            while self.chunk(body)? {}
        } else if let Some(n) = len {
            body.resize(n, 0);
            self.r.read_exact(body)?;
        }
        Ok(resp)
    }
}

/// `http://127.0.0.1:PORT[/...]` → `127.0.0.1:PORT`.
fn authority(url: &str) -> Res<String> {
    let rest = url.strip_prefix("http://").ok_or("--url must start with http://")?;
    Ok(rest.split('/').next().unwrap_or(rest).to_owned())
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
    sid: String,
    body: Vec<u8>,
    req: Vec<u8>,
}

const JSON_HEADERS: [(&str, &str); 2] =
    [("Content-Type", "application/json"), ("Accept", "application/json, text/event-stream")];

impl StreamableClient {
    fn open(auth: &str) -> Res<StreamableClient> {
        let mut http = Http::connect(auth)?;
        let mut body = Vec::with_capacity(4096);
        let resp = http.exchange("POST", "/mcp", &JSON_HEADERS, &initialize_request(0), &mut body)?;
        find_answer(&resp, &body, 0)?;
        let sid = resp.session_id.clone().ok_or("initialize returned no Mcp-Session-Id")?;
        let mut c = StreamableClient { http, sid, body, req: Vec::with_capacity(256) };
        let resp = c.post(&initialized_notification())?;
        if resp.status != 202 {
            return Err(format!("notifications/initialized got HTTP {}", resp.status).into());
        }
        Ok(c)
    }

    fn post(&mut self, msg: &[u8]) -> Res<Response> {
        let headers = [
            JSON_HEADERS[0],
            JSON_HEADERS[1],
            ("Mcp-Session-Id", self.sid.as_str()),
            ("MCP-Protocol-Version", PROTOCOL),
        ];
        self.http.exchange("POST", "/mcp", &headers, msg, &mut self.body)
    }

    fn call(&mut self, id: i64) -> Res<()> {
        let mut req = std::mem::take(&mut self.req);
        echo_request(&mut req, id);
        let resp = self.post(&req);
        self.req = req;
        find_answer(&resp?, &self.body, id)
    }

    fn close(mut self) -> Res<()> {
        let sid = self.sid.clone();
        let resp = self.http.exchange("DELETE", "/mcp", &[("Mcp-Session-Id", &sid)], &[], &mut self.body)?;
        if resp.status != 200 {
            return Err(format!("DELETE /mcp got HTTP {}", resp.status).into());
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Legacy SSE client session: GET /sse on one connection, POSTs on another.

struct SseClient {
    stream: Http,
    post: Http,
    endpoint: String,
    decoder: SseDecoder,
    chunk: Vec<u8>,
    body: Vec<u8>,
    req: Vec<u8>,
}

impl SseClient {
    fn open(auth: &str) -> Res<SseClient> {
        let mut stream = Http::connect(auth)?;
        stream.send("GET", "/sse", &[("Accept", "text/event-stream")], &[])?;
        let (resp, _, chunked) = stream.head()?;
        if resp.status != 200 || !resp.content_type.starts_with("text/event-stream") || !chunked {
            return Err(format!("GET /sse: HTTP {} {:?}", resp.status, resp.content_type).into());
        }
        let mut c = SseClient {
            stream,
            post: Http::connect(auth)?,
            endpoint: String::new(),
            decoder: SseDecoder::new(1 << 20),
            chunk: Vec::with_capacity(4096),
            body: Vec::with_capacity(256),
            req: Vec::with_capacity(256),
        };
        loop {
            let ev = c.next_event()?;
            if ev.event == "endpoint" {
                c.endpoint = ev.data;
                break;
            }
        }
        c.send(&initialize_request(0))?;
        c.wait(0)?;
        c.send(&initialized_notification())?;
        Ok(c)
    }

    fn next_event(&mut self) -> Res<mcp_sentinel::codec::sse::SseEvent> {
        loop {
            if let Some(ev) = self.decoder.next_event().map_err(|e| e.to_string())? {
                return Ok(ev);
            }
            self.chunk.clear();
            if !self.stream.chunk(&mut self.chunk)? {
                return Err("the gateway ended the SSE stream".into());
            }
            self.decoder.push(&self.chunk);
        }
    }

    fn send(&mut self, msg: &[u8]) -> Res<()> {
        let resp = self.post.exchange("POST", &self.endpoint, &JSON_HEADERS[..1], msg, &mut self.body)?;
        if resp.status != 202 {
            return Err(format!("POST {} got HTTP {}", self.endpoint, resp.status).into());
        }
        Ok(())
    }

    fn wait(&mut self, id: i64) -> Res<()> {
        loop {
            let ev = self.next_event()?;
            if ev.event != "message" {
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
// gateway and sessions modes

enum Client {
    Streamable(StreamableClient),
    Sse(Box<SseClient>),
}

impl Client {
    fn open(t: Transport, auth: &str) -> Res<Client> {
        Ok(match t {
            Transport::Streamable => Client::Streamable(StreamableClient::open(auth)?),
            Transport::Sse => Client::Sse(Box::new(SseClient::open(auth)?)),
        })
    }

    fn call(&mut self, id: i64) -> Res<()> {
        match self {
            Client::Streamable(c) => c.call(id),
            Client::Sse(c) => c.call(id),
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

fn run_gateway(o: &Opts) -> Res<()> {
    let auth = authority(o.url.as_deref().ok_or("gateway needs --url")?)?;
    let barrier = Barrier::new(o.concurrency + 1);
    let (samples, wall) = std::thread::scope(|s| -> Res<(Vec<u64>, Duration)> {
        let workers: Vec<_> = (0..o.concurrency)
            .map(|_| {
                let (auth, barrier) = (&auth, &barrier);
                s.spawn(move || -> Res<Vec<u64>> {
                    // Open and warm up, then line up with the others. A
                    // failed open still reaches the barrier so nobody hangs.
                    let opened = Client::open(o.transport, auth).and_then(|mut c| {
                        for id in 1..=o.warmup as i64 {
                            c.call(id)?;
                        }
                        Ok(c)
                    });
                    barrier.wait();
                    let mut c = opened?;
                    let mut samples = Vec::with_capacity(o.n);
                    for i in 0..o.n as i64 {
                        let id = o.warmup as i64 + 1 + i;
                        let t = Instant::now();
                        c.call(id)?;
                        samples.push(t.elapsed().as_nanos() as u64);
                    }
                    c.close()?;
                    Ok(samples)
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let mut all = Vec::with_capacity(o.n * o.concurrency);
        let mut first_err = None;
        for w in workers {
            match w.join() {
                Ok(Ok(v)) => all.extend(v),
                Ok(Err(e)) => first_err = first_err.or(Some(e)),
                Err(_) => first_err = first_err.or(Some("a worker panicked".into())),
            }
        }
        let wall = start.elapsed();
        match first_err {
            Some(e) => Err(e),
            None => Ok((all, wall)),
        }
    })?;
    report("gateway", o.transport.name(), o.n, o.concurrency, samples, wall);
    Ok(())
}

/// Opens `--count` sessions at once (each makes one call), then closes them.
fn run_sessions(o: &Opts) -> Res<()> {
    let auth = authority(o.url.as_deref().ok_or("sessions needs --url")?)?;
    let start = Instant::now();
    let mut clients = Vec::with_capacity(o.count);
    for _ in 0..o.count {
        let mut c = Client::open(o.transport, &auth)?;
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
        "open_ms": (opened.as_secs_f64() * 1e4).round() / 10.0,
        "total_ms": (start.elapsed().as_secs_f64() * 1e4).round() / 10.0,
    });
    println!("{line}");
    Ok(())
}
