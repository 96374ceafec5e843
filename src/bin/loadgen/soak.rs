//! `soak`: a mix of client kinds against one gateway for `--duration-s`,
//! each kind on its own scoped threads (`soak:<kind>:<i>`), every call
//! bounded by `--deadline-s`:
//!
//! | kind | threads | does |
//! |---|---|---|
//! | `streamable` | 2 × clients | initialize, initialized, tools/list, resources/list, then echo (100 B–100 KB), slow with a progress token, resources/read, tools/list, ping; DELETE |
//! | `sse` | 2 × clients | the same over `GET /sse` + `POST /messages/` |
//! | `no_delete` | clients | Streamable sessions dropped without DELETE |
//! | `stalled_reader` | clients | SSE sessions that make calls, then POST large calls and stop reading their stream for 5–20 s before closing |
//! | `slowloris` | clients | request heads dripped one header line a second, on `/mcp` and `/sse` |
//! | `garbage` | 1 | malformed requests, each to be answered or closed |
//! | `chaos` | clients | calls to the chaos backends' tools (both transports) |
//!
//! A call that gets no answer by its deadline is *hung*; the run fails on
//! any hung call, any answer that does not match its call, a panicked
//! thread, or well-behaved clients that got no call through at all. Each
//! thread keeps its own [`Tally`]; they are merged once the threads end.

use crate::calls::{echoes, payload};
use crate::cli::SoakOpts;
use crate::client::{Outcome, Session, Streamable, Transport};
use crate::garbage::garbage_cases;
use crate::http::{truncate, Conn, Fail};
use crate::stats::Rng;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::io::Read;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Distinct error messages kept per kind.
const MAX_SAMPLES: usize = 6;
/// A slowloris connection the gateway still holds is given up after this.
const DRIP_HOLD: Duration = Duration::from_secs(30);
/// A garbage request must be answered or closed within this.
const GARBAGE_DEADLINE: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Streamable,
    Sse,
    NoDelete,
    StalledReader,
    Slowloris,
    Garbage,
    Chaos,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Streamable => "streamable",
            Kind::Sse => "sse",
            Kind::NoDelete => "no_delete",
            Kind::StalledReader => "stalled_reader",
            Kind::Slowloris => "slowloris",
            Kind::Garbage => "garbage",
            Kind::Chaos => "chaos",
        }
    }
}

/// The merged tool list sorted by what the soak does with each tool.
#[derive(Debug, Default, PartialEq)]
pub struct Catalog {
    /// Echo tools of ordinary backends (`echo`, `<prefix>__echo`).
    pub echo: Vec<String>,
    /// `slow` tools of ordinary backends.
    pub slow: Vec<String>,
    /// Echo tools of the chaos backends (names containing `--chaos-match`).
    pub chaos_echo: Vec<String>,
}

impl Catalog {
    pub fn from_list(list: &Value, chaos: &str) -> Catalog {
        let mut c = Catalog::default();
        let tools = list.get("tools").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        for name in tools.iter().filter_map(|t| t.get("name")?.as_str()) {
            let is = |tool: &str| name == tool || name.ends_with(&format!("__{tool}"));
            if name.contains(chaos) {
                if is("echo") {
                    c.chaos_echo.push(name.to_owned());
                }
            } else if is("echo") {
                c.echo.push(name.to_owned());
            } else if is("slow") {
                c.slow.push(name.to_owned());
            }
        }
        c
    }
}

/// The `uri`s of a `resources/list` result.
pub fn resource_uris(list: &Value) -> Vec<String> {
    let items = list.get("resources").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    items.iter().filter_map(|r| Some(r.get("uri")?.as_str()?.to_owned())).collect()
}

/// What happened to the requests of one kind of client.
#[derive(Debug, Default)]
pub struct Tally {
    sessions: u64,
    sent: u64,
    ok: u64,
    rpc_error: u64,
    http_error: u64,
    io_error: u64,
    hung: u64,
    wrong_answer: u64,
    /// Outcome counts by code: `rpc -32001`, `http 503`, `closed`, ...
    codes: BTreeMap<String, u64>,
    errors: Vec<String>,
    hung_calls: Vec<String>,
    /// Kind-specific counters; keys starting with `max_` merge by maximum.
    extra: BTreeMap<&'static str, u64>,
}

fn sample(list: &mut Vec<String>, s: String) {
    if list.len() < MAX_SAMPLES && !list.contains(&s) {
        list.push(s);
    }
}

impl Tally {
    /// Counts one request and how it ended.
    pub fn record(&mut self, what: &str, o: &Outcome, took: Duration) {
        self.sent += 1;
        match o {
            Outcome::Ok(_) => self.ok += 1,
            Outcome::Rpc { code, message } => {
                self.rpc_error += 1;
                *self.codes.entry(format!("rpc {code}")).or_default() += 1;
                sample(&mut self.errors, format!("{what}: {code} {}", truncate(message, 160)));
            }
            Outcome::Http { status, body } => {
                self.http_error += 1;
                *self.codes.entry(format!("http {status}")).or_default() += 1;
                sample(&mut self.errors, format!("{what}: HTTP {status} {}", truncate(body, 160)));
            }
            Outcome::Fail(Fail::Timeout(m)) => {
                self.hung += 1;
                *self.codes.entry("timeout".into()).or_default() += 1;
                sample(&mut self.hung_calls, format!("{what}: no answer after {:.1}s ({m})", took.as_secs_f64()));
            }
            Outcome::Fail(f) => {
                self.io_error += 1;
                let key = match f {
                    Fail::Closed(_) => "closed",
                    Fail::Io(_) => "io",
                    _ => "protocol",
                };
                *self.codes.entry(key.into()).or_default() += 1;
                sample(&mut self.errors, format!("{what}: {}", truncate(&f.to_string(), 200)));
            }
        }
    }

    /// Like [`Tally::record`], but an answer that does not echo `message`
    /// is a wrong answer, not a success.
    fn record_echo(&mut self, what: &str, o: &Outcome, message: &str, took: Duration) {
        match o {
            Outcome::Ok(v) if !echoes(v, message) => {
                self.sent += 1;
                self.wrong_answer += 1;
                let got = truncate(&v.to_string(), 160);
                sample(
                    &mut self.errors,
                    format!("{what}: answer does not echo the {}-byte message: {got}", message.len()),
                );
            }
            _ => self.record(what, o, took),
        }
    }

    fn add(&mut self, key: &'static str, n: u64) {
        *self.extra.entry(key).or_default() += n;
    }

    fn max(&mut self, key: &'static str, n: u64) {
        let e = self.extra.entry(key).or_default();
        *e = (*e).max(n);
    }

    fn merge(&mut self, o: Tally) {
        self.sessions += o.sessions;
        self.sent += o.sent;
        self.ok += o.ok;
        self.rpc_error += o.rpc_error;
        self.http_error += o.http_error;
        self.io_error += o.io_error;
        self.hung += o.hung;
        self.wrong_answer += o.wrong_answer;
        for (k, v) in o.codes {
            *self.codes.entry(k).or_default() += v;
        }
        for e in o.errors {
            sample(&mut self.errors, e);
        }
        for e in o.hung_calls {
            sample(&mut self.hung_calls, e);
        }
        for (k, v) in o.extra {
            if k.starts_with("max_") {
                self.max(k, v);
            } else {
                self.add(k, v);
            }
        }
    }

    fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("sessions".into(), self.sessions.into());
        m.insert("sent".into(), self.sent.into());
        m.insert("ok".into(), self.ok.into());
        m.insert("rpc_error".into(), self.rpc_error.into());
        m.insert("http_error".into(), self.http_error.into());
        m.insert("io_error".into(), self.io_error.into());
        m.insert("hung".into(), self.hung.into());
        m.insert("wrong_answer".into(), self.wrong_answer.into());
        m.insert("codes".into(), json!(self.codes));
        for (k, v) in &self.extra {
            m.insert((*k).into(), (*v).into());
        }
        m.insert("errors".into(), json!(self.errors));
        m.insert("hung_calls".into(), json!(self.hung_calls));
        Value::Object(m)
    }
}

/// What every load thread shares.
struct Ctx {
    addr: SocketAddr,
    deadline: Duration,
    stop_at: Instant,
    chaos: String,
    /// Set when `--stop-file` appears: the run ends early.
    stop: AtomicBool,
}

impl Ctx {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || Instant::now() >= self.stop_at
    }

    /// Sleeps `d`, or until the end of the run if that comes first
    /// (checking for an early stop every 250 ms).
    fn pause(&self, d: Duration) {
        let until = Instant::now() + d;
        while !self.stopped() {
            let left = until.min(self.stop_at).saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            std::thread::sleep(left.min(Duration::from_millis(250)));
        }
    }

    /// Until the end of the run: sets `stop` once `path` exists. A file,
    /// not a signal, so the summary is still printed (the script running
    /// the soak creates it when the gateway dies).
    fn watch_stop_file(&self, path: &Path) {
        while !self.stopped() {
            if path.exists() {
                self.stop.store(true, Ordering::Relaxed);
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// Runs `f` and how long it took.
fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let t = Instant::now();
    let r = f();
    (r, t.elapsed())
}

/// Opens a session, initializes it and lists its tools, recording each
/// step; `None` when a step failed (the session is closed then).
fn start_session(ctx: &Ctx, tr: Transport, t: &mut Tally) -> Option<(Session, Value)> {
    t.sessions += 1;
    let (opened, took) = timed(|| Session::open(tr, ctx.addr, ctx.deadline));
    let mut s = match opened {
        Ok(s) => s,
        Err(o) => {
            t.record("GET /sse", &o, took);
            return None;
        }
    };
    if tr == Transport::Sse {
        t.record("GET /sse", &Outcome::Ok(Value::Null), took);
    }
    let (o, took) = timed(|| s.initialize());
    t.record("initialize", &o, took);
    if o.is_ok() {
        let (o, took) = timed(|| s.notify("notifications/initialized", None));
        t.record("notifications/initialized", &o, took);
        if o.is_ok() {
            let ((o, _), took) = timed(|| s.request("tools/list", None, false));
            t.record("tools/list", &o, took);
            if let Outcome::Ok(list) = o {
                return Some((s, list));
            }
        }
    }
    close(s, true, t);
    None
}

fn close(s: Session, delete: bool, t: &mut Tally) {
    let (o, took) = timed(|| s.close(delete));
    if let Some(o) = o {
        t.record("DELETE /mcp", &o, took);
    }
}

/// One echo call to `tool` with a `size`-byte message; `true` if the
/// connection broke.
fn echo(s: &mut Session, tool: &str, tag: &str, size: usize, t: &mut Tally) -> bool {
    let msg = payload(tag, size);
    let params = json!({"name": tool, "arguments": {"message": msg}});
    let ((o, _), took) = timed(|| s.request("tools/call", Some(params), false));
    t.record_echo(&format!("tools/call {tool} ({size} B)"), &o, &msg, took);
    o.broke_connection()
}

/// One random action of a well-behaved client; `true` if the connection broke.
fn action(s: &mut Session, cat: &Catalog, uris: &[String], tag: &str, rng: &mut Rng, t: &mut Tally) -> bool {
    let roll = rng.range(0, 100);
    if roll < 50 {
        if let Some(tool) = rng.pick(&cat.echo).cloned() {
            let size = rng.log_range(100, 100_000) as usize;
            return echo(s, &tool, tag, size, t);
        }
    }
    if roll < 70 {
        if let Some(tool) = rng.pick(&cat.slow).cloned() {
            const STEPS: u32 = 3;
            let params = json!({"name": tool, "arguments": {"steps": STEPS, "interval_ms": 50}});
            let ((o, progress), took) = timed(|| s.request("tools/call", Some(params), true));
            t.record(&format!("tools/call {tool} (progress)"), &o, took);
            t.add("progress_events", u64::from(progress));
            if o.is_ok() && progress < STEPS {
                t.add("progress_short", 1);
            }
            return o.broke_connection();
        }
    }
    let (what, params) = if roll < 85 && !uris.is_empty() {
        let uri = rng.pick(uris).cloned().unwrap_or_default();
        ("resources/read", Some(json!({"uri": uri})))
    } else if roll < 95 {
        ("tools/list", None)
    } else {
        ("ping", None)
    };
    let ((o, _), took) = timed(|| s.request(what, params, false));
    t.record(what, &o, took);
    o.broke_connection()
}

/// Kinds `streamable` and `sse`.
fn well_behaved(ctx: &Ctx, tr: Transport, name: &str, rng: &mut Rng, t: &mut Tally) {
    let mut n = 0u64;
    while !ctx.stopped() {
        let Some((mut s, list)) = start_session(ctx, tr, t) else {
            ctx.pause(rng.millis(200, 1000));
            continue;
        };
        let cat = Catalog::from_list(&list, &ctx.chaos);
        let ((o, _), took) = timed(|| s.request("resources/list", None, false));
        t.record("resources/list", &o, took);
        let uris = match &o {
            Outcome::Ok(v) => resource_uris(v),
            _ => Vec::new(),
        };
        for _ in 0..rng.range(5, 20) {
            if ctx.stopped() {
                break;
            }
            n += 1;
            if action(&mut s, &cat, &uris, &format!("{name}-{n}-"), rng, t) && tr == Transport::Sse {
                break;
            }
            ctx.pause(rng.millis(0, 200));
        }
        close(s, true, t);
        ctx.pause(rng.millis(0, 300));
    }
}

/// Kind `no_delete`: Streamable sessions abandoned without DELETE. Paced,
/// since each stays in the gateway until its TTL.
fn no_delete(ctx: &Ctx, name: &str, rng: &mut Rng, t: &mut Tally) {
    let mut n = 0u64;
    while !ctx.stopped() {
        if let Some((mut s, list)) = start_session(ctx, Transport::Streamable, t) {
            let cat = Catalog::from_list(&list, &ctx.chaos);
            for _ in 0..rng.range(1, 4) {
                if let Some(tool) = rng.pick(&cat.echo).cloned() {
                    n += 1;
                    echo(&mut s, &tool, &format!("{name}-{n}-"), rng.range(100, 1000) as usize, t);
                }
            }
            close(s, false, t);
            t.add("sessions_left_open", 1);
        }
        ctx.pause(rng.millis(2000, 4000));
    }
}

/// Kind `stalled_reader`: SSE sessions that stop reading their stream.
fn stalled_reader(ctx: &Ctx, name: &str, rng: &mut Rng, t: &mut Tally) {
    let mut n = 0u64;
    while !ctx.stopped() {
        let Some((mut s, list)) = start_session(ctx, Transport::Sse, t) else {
            ctx.pause(rng.millis(500, 1500));
            continue;
        };
        let cat = Catalog::from_list(&list, &ctx.chaos);
        let mut broken = false;
        for _ in 0..2 {
            if let Some(tool) = rng.pick(&cat.echo).cloned() {
                n += 1;
                broken |= echo(&mut s, &tool, &format!("{name}-{n}-"), rng.range(100, 2000) as usize, t);
            }
        }
        if let (false, Session::Sse(sse), Some(tool)) = (broken, &mut s, rng.pick(&cat.echo).cloned()) {
            // Large answers fill the socket buffers and the session's outbox
            // while nobody reads: the gateway must stay responsive.
            let (mut accepted, k) = (0, rng.range(10, 40));
            for _ in 0..k {
                if ctx.stopped() {
                    break;
                }
                n += 1;
                let msg = payload(&format!("{name}-{n}-"), rng.range(50_000, 100_000) as usize);
                let bytes = sse.request_bytes("tools/call", Some(json!({"name": tool, "arguments": {"message": msg}})));
                let (o, took) = timed(|| sse.post(&bytes, Instant::now() + ctx.deadline));
                t.record("POST /messages/ (answer never read)", &o, took);
                if !o.is_ok() {
                    break;
                }
                accepted += 1;
            }
            t.add("unread_answers", accepted);
            let stall = rng.millis(5000, 20_000);
            let started = Instant::now();
            ctx.pause(stall);
            t.add("stalled_ms", started.elapsed().as_millis() as u64);
        }
        close(s, false, t);
        ctx.pause(rng.millis(500, 1500));
    }
}

/// What the gateway did within one wait on a slowloris connection.
enum Peer {
    Silent,
    Answered,
    Closed,
}

fn wait_for_peer(s: &TcpStream, d: Duration) -> Peer {
    if s.set_read_timeout(Some(d)).is_err() {
        return Peer::Closed;
    }
    let mut buf = [0u8; 512];
    match (&*s).read(&mut buf) {
        Ok(0) => Peer::Closed,
        Ok(_) => Peer::Answered,
        Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => Peer::Silent,
        Err(_) => Peer::Closed,
    }
}

/// Kind `slowloris`: a request head dripped one header line a second.
fn slowloris(ctx: &Ctx, index: usize, rng: &mut Rng, t: &mut Tally) {
    let (method, path) = if index.is_multiple_of(2) { ("POST", "/mcp") } else { ("GET", "/sse") };
    while !ctx.stopped() {
        t.sessions += 1;
        let start = Instant::now();
        let mut conn = match Conn::connect(ctx.addr, start + Duration::from_secs(5)) {
            Ok(c) => c,
            Err(f) => {
                t.record("slowloris connect", &Outcome::Fail(f), start.elapsed());
                ctx.pause(Duration::from_secs(1));
                continue;
            }
        };
        let mut line = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", ctx.addr);
        let mut i = 0u64;
        let verdict = loop {
            conn.set_deadline(Instant::now() + Duration::from_secs(5));
            if conn.write_raw(line.as_bytes()).is_err() {
                break "server_closed";
            }
            if start.elapsed() >= DRIP_HOLD || ctx.stopped() {
                break "held_to_limit";
            }
            match wait_for_peer(conn.tcp(), Duration::from_secs(1)) {
                Peer::Silent => {}
                Peer::Answered => break "server_answered",
                Peer::Closed => break "server_closed",
            }
            i += 1;
            line = format!("X-Drip-{i}: {}\r\n", rng.range(0, 1_000_000));
        };
        t.add(verdict, 1);
        t.max("max_held_ms", start.elapsed().as_millis() as u64);
        conn.close();
    }
}

/// Kind `garbage`.
fn garbage(ctx: &Ctx, skip: &[String], rng: &mut Rng, t: &mut Tally) {
    let binary: Vec<u8> = (0..512).map(|_| rng.next_u64() as u8).collect();
    let mut cases = garbage_cases(&binary);
    cases.retain(|(name, _)| !skip.iter().any(|s| s == name));
    if cases.is_empty() {
        return;
    }
    let mut i = rng.range(0, cases.len() as u64) as usize;
    while !ctx.stopped() {
        let (name, bytes) = &cases[i % cases.len()];
        i += 1;
        t.sessions += 1;
        let (o, took) = timed(|| -> Outcome {
            let deadline = Instant::now() + GARBAGE_DEADLINE;
            let mut c = match Conn::connect(ctx.addr, deadline) {
                Ok(c) => c,
                Err(f) => return Outcome::Fail(f),
            };
            if let Err(f) = c.write_raw(bytes) {
                return Outcome::Fail(f);
            }
            let _ = c.tcp().shutdown(Shutdown::Write);
            let r = c.head();
            c.close();
            match r {
                Ok(h) if h.status < 400 => Outcome::Ok(json!(h.status)),
                Ok(h) => Outcome::Http { status: h.status, body: String::new() },
                Err(f) => Outcome::Fail(f),
            }
        });
        t.record(&format!("garbage {name}"), &o, took);
        // Per case, so the summary shows what each malformed request got.
        let got = match &o {
            Outcome::Ok(s) => format!("{name}: {s}"),
            Outcome::Http { status, .. } => format!("{name}: {status}"),
            Outcome::Fail(Fail::Timeout(_)) => format!("{name}: hung"),
            Outcome::Fail(Fail::Closed(_)) => format!("{name}: closed"),
            Outcome::Fail(_) => format!("{name}: error"),
            Outcome::Rpc { .. } => format!("{name}: rpc"),
        };
        *t.codes.entry(got).or_default() += 1;
        ctx.pause(rng.millis(100, 300));
    }
}

/// Kind `chaos`: calls to tools of backends that crash or hang.
fn chaos(ctx: &Ctx, index: usize, name: &str, rng: &mut Rng, t: &mut Tally) {
    let mut n = index as u64;
    let mut calls = 0u64;
    while !ctx.stopped() {
        let tr = if n.is_multiple_of(2) { Transport::Streamable } else { Transport::Sse };
        n += 1;
        let Some((mut s, list)) = start_session(ctx, tr, t) else {
            ctx.pause(rng.millis(200, 1000));
            continue;
        };
        let cat = Catalog::from_list(&list, &ctx.chaos);
        if cat.chaos_echo.is_empty() {
            t.add("no_chaos_tools", 1);
            close(s, true, t);
            ctx.pause(Duration::from_secs(1));
            continue;
        }
        for _ in 0..rng.range(5, 15) {
            if ctx.stopped() {
                break;
            }
            let Some(tool) = rng.pick(&cat.chaos_echo).cloned() else { break };
            calls += 1;
            if echo(&mut s, &tool, &format!("{name}-{calls}-"), rng.range(100, 1000) as usize, t)
                && tr == Transport::Sse
            {
                break;
            }
            ctx.pause(rng.millis(0, 300));
        }
        close(s, true, t);
    }
}

fn discover(o: &SoakOpts) -> Result<(Catalog, usize), String> {
    let mut s = Streamable::new(o.addr, o.deadline);
    let init = s.request("initialize", Some(crate::client::initialize_params()), false).0;
    if !init.is_ok() {
        return Err(format!("cannot open a session at http://{}: {init:?}", o.addr));
    }
    let (list, _) = s.request("tools/list", None, false);
    let (resources, _) = s.request("resources/list", None, false);
    let _ = s.delete();
    s.abandon();
    let Outcome::Ok(list) = list else { return Err(format!("tools/list: {list:?}")) };
    let uris = match resources {
        Outcome::Ok(v) => resource_uris(&v).len(),
        _ => 0,
    };
    Ok((Catalog::from_list(&list, &o.chaos_match), uris))
}

fn default_seed() -> u64 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    nanos ^ (u64::from(std::process::id()) << 32)
}

pub fn run(o: &SoakOpts) -> Result<(Value, bool), String> {
    let seed = o.seed.unwrap_or_else(default_seed);
    let (catalog, resources) = discover(o)?;
    if catalog.echo.is_empty() {
        return Err("tools/list has no echo tool of an ordinary backend (a name `echo` or `*__echo`)".into());
    }
    let ctx = Ctx {
        addr: o.addr,
        deadline: o.deadline,
        stop_at: Instant::now() + o.duration,
        chaos: o.chaos_match.clone(),
        stop: AtomicBool::new(false),
    };
    let c = o.clients;
    let plan = [
        (Kind::Streamable, 2 * c),
        (Kind::Sse, 2 * c),
        (Kind::NoDelete, c),
        (Kind::StalledReader, c),
        (Kind::Slowloris, c),
        (Kind::Garbage, 1),
        (Kind::Chaos, c),
    ];
    let started = Instant::now();
    let (mut kinds, panics) = std::thread::scope(|s| -> Result<(BTreeMap<Kind, Tally>, usize), String> {
        let mut handles = Vec::new();
        if let Some(path) = &o.stop_file {
            let ctx = &ctx;
            std::thread::Builder::new()
                .name("soak:stop-file".into())
                .stack_size(128 * 1024)
                .spawn_scoped(s, move || ctx.watch_stop_file(path))
                .map_err(|e| format!("cannot start the stop-file watcher: {e}"))?;
        }
        let mut thread_no = 0u64;
        for (kind, count) in plan {
            for i in 0..count {
                thread_no += 1;
                let mut rng = Rng::new(seed ^ thread_no.wrapping_mul(0x9E37_79B9_7F4A_7C15));
                let ctx = &ctx;
                let name = format!("{}{i}", kind.name());
                let h = std::thread::Builder::new()
                    .name(format!("soak:{}:{i}", kind.name()))
                    .stack_size(512 * 1024)
                    .spawn_scoped(s, move || {
                        let mut t = Tally::default();
                        match kind {
                            Kind::Streamable => well_behaved(ctx, Transport::Streamable, &name, &mut rng, &mut t),
                            Kind::Sse => well_behaved(ctx, Transport::Sse, &name, &mut rng, &mut t),
                            Kind::NoDelete => no_delete(ctx, &name, &mut rng, &mut t),
                            Kind::StalledReader => stalled_reader(ctx, &name, &mut rng, &mut t),
                            Kind::Slowloris => slowloris(ctx, i, &mut rng, &mut t),
                            Kind::Garbage => garbage(ctx, &o.skip_garbage, &mut rng, &mut t),
                            Kind::Chaos => chaos(ctx, i, &name, &mut rng, &mut t),
                        }
                        t
                    });
                // Threads already started stop by themselves at the deadline.
                handles.push((kind, h.map_err(|e| format!("cannot start a {} thread: {e}", kind.name()))?));
            }
        }
        let mut kinds: BTreeMap<Kind, Tally> = BTreeMap::new();
        let mut panics = 0;
        for (kind, h) in handles {
            match h.join() {
                Ok(t) => kinds.entry(kind).or_default().merge(t),
                Err(_) => panics += 1,
            }
        }
        Ok((kinds, panics))
    })?;
    let mut total = Tally::default();
    let mut per_kind = Map::new();
    for (kind, _) in plan {
        let t = kinds.remove(&kind).unwrap_or_default();
        per_kind.insert(kind.name().into(), t.to_json());
        total.merge(t);
    }
    let well_ok = |k: &str| per_kind.get(k).and_then(|v| v.get("ok")).and_then(Value::as_u64).unwrap_or(0);
    let mut failures = Vec::new();
    if total.hung > 0 {
        failures.push(format!("{} calls hung (no answer within {}s)", total.hung, o.deadline.as_secs()));
    }
    if total.wrong_answer > 0 {
        failures.push(format!("{} answers did not match their call", total.wrong_answer));
    }
    if panics > 0 {
        failures.push(format!("{panics} load threads panicked"));
    }
    for k in ["streamable", "sse"] {
        if well_ok(k) == 0 {
            failures.push(format!("no call of the well-behaved {k} clients succeeded"));
        }
    }
    let ok = failures.is_empty();
    let summary = json!({
        "mode": "soak",
        "duration_s": o.duration.as_secs(),
        "elapsed_s": (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
        "stopped_early": ctx.stop.load(Ordering::Relaxed),
        "seed": seed,
        "deadline_s": o.deadline.as_secs(),
        "clients": c,
        "skipped_garbage": o.skip_garbage,
        "tools": {"echo": catalog.echo, "slow": catalog.slow, "chaos_echo": catalog.chaos_echo, "resources": resources},
        "totals": {
            "sent": total.sent,
            "ok": total.ok,
            "rpc_error": total.rpc_error,
            "http_error": total.http_error,
            "io_error": total.io_error,
            "hung": total.hung,
            "wrong_answer": total.wrong_answer,
        },
        "kinds": per_kind,
        "failures": failures,
        "ok": ok,
    });
    Ok((summary, ok))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_sorts_tools() {
        let list = json!({"tools": [
            {"name": "d1__echo"}, {"name": "d1__slow"}, {"name": "d1__add"},
            {"name": "echo"}, {"name": "chaos_crash__echo"}, {"name": "chaos_hang__slow"},
            {"name": "ev__echo"}, {"name": "notecho"}, {"name": "d2__slowly"},
        ]});
        let c = Catalog::from_list(&list, "chaos");
        assert_eq!(c.echo, ["d1__echo", "echo", "ev__echo"]);
        assert_eq!(c.slow, ["d1__slow"]);
        assert_eq!(c.chaos_echo, ["chaos_crash__echo"]);
        assert_eq!(Catalog::from_list(&json!({}), "chaos"), Catalog::default());
    }

    #[test]
    fn uris_of_resources() {
        let v = json!({"resources": [{"uri": "demo://a/readme"}, {"name": "x"}, {"uri": "test://1"}]});
        assert_eq!(resource_uris(&v), ["demo://a/readme", "test://1"]);
        assert!(resource_uris(&json!({})).is_empty());
    }

    #[test]
    fn tally_counts_each_outcome_once() {
        let mut t = Tally::default();
        let d = Duration::from_millis(5);
        t.record("a", &Outcome::Ok(json!({})), d);
        t.record("b", &Outcome::Rpc { code: -32001, message: "down".into() }, d);
        t.record("c", &Outcome::Http { status: 503, body: "busy".into() }, d);
        t.record("d", &Outcome::Fail(Fail::Timeout("t".into())), d);
        t.record("e", &Outcome::Fail(Fail::Closed("c".into())), d);
        t.record_echo("f", &Outcome::Ok(json!({"content": [{"text": "other"}]})), "mine", d);
        t.record_echo("g", &Outcome::Ok(json!({"content": [{"text": "mine"}]})), "mine", d);
        assert_eq!(
            (t.sent, t.ok, t.rpc_error, t.http_error, t.hung, t.io_error, t.wrong_answer),
            (7, 2, 1, 1, 1, 1, 1)
        );
        assert_eq!(t.codes["rpc -32001"], 1);
        assert_eq!(t.codes["http 503"], 1);
        assert_eq!(t.hung_calls.len(), 1);
        let mut u = Tally::default();
        u.max("max_held_ms", 10);
        u.add("progress_events", 2);
        t.max("max_held_ms", 30);
        t.add("progress_events", 1);
        t.merge(u);
        assert_eq!((t.extra["max_held_ms"], t.extra["progress_events"]), (30, 3));
        let j = t.to_json();
        assert_eq!((j["sent"].clone(), j["hung"].clone()), (json!(7), json!(1)));
    }

    #[test]
    fn stop_file_ends_the_run_early() {
        let ctx = Ctx {
            addr: SocketAddr::from(([127, 0, 0, 1], 1)),
            deadline: Duration::from_secs(1),
            stop_at: Instant::now() + Duration::from_secs(60),
            chaos: "chaos".into(),
            stop: AtomicBool::new(false),
        };
        assert!(!ctx.stopped());
        let path = std::env::temp_dir().join(format!("loadgen-stop-{}", std::process::id()));
        std::fs::write(&path, b"").unwrap();
        let t = Instant::now();
        ctx.watch_stop_file(&path);
        std::fs::remove_file(&path).unwrap();
        assert!(ctx.stopped());
        // A pause ends at once when the run is over.
        ctx.pause(Duration::from_secs(30));
        assert!(t.elapsed() < Duration::from_secs(5));
    }
}
