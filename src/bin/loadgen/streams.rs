//! `streams`: opens N idle event streams and holds them, for measuring what
//! an idle stream costs the gateway (`scripts/bench-streams.sh`).
//!
//! A legacy stream is `GET /sse` up to its `endpoint` event; a Streamable
//! HTTP one is `POST /mcp` initialize, `notifications/initialized`, then
//! `GET /mcp` with the session id on the same keep-alive connection, up to
//! its response head. A few threads open them one after another; each open
//! stream is then kept as its bare socket (the 64 KiB read buffer of its
//! [`Conn`] is dropped: 10 000 of them would cost this process 640 MB) and
//! nothing is read while holding. The hold ends when `--stop-file` appears
//! or after `--hold-s`, whichever is first; then every socket is checked
//! without blocking (the gateway closed it, or it is still open) and
//! closed. `--ready-file` is written once all are open (or failed), so a
//! script knows when to measure.

use crate::cli::StreamsOpts;
use crate::client::{initialize_params, Transport, PROTOCOL};
use crate::http::{Conn, Fail};
use crate::stats::{ms, percentile};
use mcp_sentinel::codec::jsonrpc::{Id, Message};
use mcp_sentinel::codec::sse::SseDecoder;
use serde_json::{json, Value};
use std::io::{self, Read};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Error samples kept for the summary.
const MAX_SAMPLES: usize = 8;
/// How often the hold looks for the stop file.
const STOP_POLL: Duration = Duration::from_millis(100);

/// Opens one legacy SSE stream, up to its `endpoint` event.
fn open_sse(addr: SocketAddr, deadline: Instant) -> Result<TcpStream, Fail> {
    let mut conn = Conn::connect(addr, deadline)?;
    conn.send("GET", "/sse", &[("Accept", "text/event-stream")], &[])?;
    let head = conn.head()?;
    if head.status != 200 {
        return Err(Fail::Protocol(format!("GET /sse: HTTP {}", head.status)));
    }
    let mut d = SseDecoder::new(1 << 20);
    let mut piece = Vec::with_capacity(512);
    loop {
        match d.next_event() {
            Ok(Some(ev)) if ev.event == "endpoint" => return Ok(conn.into_tcp()),
            Ok(Some(_)) => continue,
            Ok(None) => {}
            Err(e) => return Err(Fail::Protocol(format!("event stream: {e}"))),
        }
        piece.clear();
        if !conn.stream_piece(head.chunked, &mut piece)? {
            return Err(Fail::Closed("the stream ended before the endpoint event".into()));
        }
        d.push(&piece);
    }
}

/// Opens one Streamable HTTP session and its GET stream, on one connection.
fn open_streamable(addr: SocketAddr, deadline: Instant) -> Result<TcpStream, Fail> {
    let mut conn = Conn::connect(addr, deadline)?;
    let json = ("Content-Type", "application/json");
    let accept = ("Accept", "application/json, text/event-stream");
    let init = Message::request(Id::Num(1), "initialize", Some(initialize_params())).to_bytes();
    let (head, _) = conn.exchange("POST", "/mcp", &[json, accept], &init)?;
    if head.status != 200 {
        return Err(Fail::Protocol(format!("initialize: HTTP {}", head.status)));
    }
    let sid = head
        .header("mcp-session-id")
        .ok_or_else(|| Fail::Protocol("initialize answered without Mcp-Session-Id".into()))?
        .to_owned();
    let session = [("Mcp-Session-Id", sid.as_str()), ("MCP-Protocol-Version", PROTOCOL)];
    let note = Message::notification("notifications/initialized", None).to_bytes();
    let (head, _) = conn.exchange("POST", "/mcp", &[json, accept, session[0], session[1]], &note)?;
    if head.status != 202 {
        return Err(Fail::Protocol(format!("notifications/initialized: HTTP {}", head.status)));
    }
    conn.send("GET", "/mcp", &[("Accept", "text/event-stream"), session[0], session[1]], &[])?;
    let head = conn.head()?;
    if head.status != 200 || head.content_type() != "text/event-stream" {
        return Err(Fail::Protocol(format!("GET /mcp: HTTP {} {:?}", head.status, head.content_type())));
    }
    Ok(conn.into_tcp())
}

/// Whether the gateway still holds this stream open: reads (without
/// blocking) whatever it sent, keep-alive comments included, until the
/// socket is empty (open) or ends (closed).
fn still_open(s: &TcpStream, scratch: &mut [u8]) -> bool {
    if s.set_nonblocking(true).is_err() {
        return false;
    }
    loop {
        match (&*s).read(scratch) {
            Ok(0) => return false,
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return false,
        }
    }
}

/// What one opener thread got.
#[derive(Default)]
struct Part {
    held: Vec<TcpStream>,
    times: Vec<Duration>,
    errors: usize,
    samples: Vec<String>,
}

pub fn run(o: &StreamsOpts) -> Result<(Value, bool), String> {
    if let Some(limit) = mcp_sentinel::util::raise_fd_limit() {
        let need = o.count as u64 + 64;
        if limit < need {
            return Err(format!("{} streams need about {need} open files; the limit is {limit}", o.count));
        }
    }
    let threads = o.threads.min(o.count);
    let started = Instant::now();
    let parts: Vec<Part> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                // Thread t opens streams t, t + threads, ...
                let mine = (o.count - t).div_ceil(threads);
                std::thread::Builder::new().stack_size(256 * 1024).spawn_scoped(s, move || {
                    let mut p = Part::default();
                    for _ in 0..mine {
                        let t0 = Instant::now();
                        let deadline = t0 + o.timeout;
                        let r = match o.transport {
                            Transport::Sse => open_sse(o.addr, deadline),
                            Transport::Streamable => open_streamable(o.addr, deadline),
                        };
                        match r {
                            Ok(sock) => {
                                p.times.push(t0.elapsed());
                                p.held.push(sock);
                            }
                            Err(f) => {
                                p.errors += 1;
                                if p.samples.len() < MAX_SAMPLES {
                                    p.samples.push(f.to_string());
                                }
                            }
                        }
                    }
                    p
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| match h {
                Ok(h) => h.join().unwrap_or_else(|_| Part {
                    errors: 1,
                    samples: vec!["an opener thread panicked".into()],
                    ..Part::default()
                }),
                Err(e) => Part { errors: 1, samples: vec![format!("cannot start a thread: {e}")], ..Part::default() },
            })
            .collect()
    });
    let open_time = started.elapsed();
    let mut held = Vec::with_capacity(o.count);
    let mut times = Vec::with_capacity(o.count);
    let (mut errors, mut samples) = (0, Vec::new());
    for p in parts {
        held.extend(p.held);
        times.extend(p.times);
        errors += p.errors;
        samples.extend(p.samples.into_iter().take(MAX_SAMPLES.saturating_sub(samples.len())));
    }
    times.sort_unstable();
    let opened = held.len();
    if let Some(path) = &o.ready_file {
        let line = format!("{}\n", json!({"opened": opened, "errors": errors}));
        std::fs::write(path, line).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    let hold_until = Instant::now() + o.hold;
    loop {
        if o.stop_file.as_ref().is_some_and(|p| p.exists()) {
            break;
        }
        let left = hold_until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        std::thread::sleep(left.min(STOP_POLL));
    }
    let held_for = started.elapsed() - open_time;
    let mut scratch = vec![0u8; 16 * 1024];
    let open_at_end = held.iter().filter(|s| still_open(s, &mut scratch)).count();
    drop(held);
    let summary = json!({
        "command": "streams",
        "transport": o.transport.name(),
        "requested": o.count,
        "opened": opened,
        "errors": errors,
        "open_at_end": open_at_end,
        "closed_by_gateway": opened - open_at_end,
        "open_s": (open_time.as_secs_f64() * 10.0).round() / 10.0,
        "held_s": (held_for.as_secs_f64() * 10.0).round() / 10.0,
        "open_p50_ms": ms(percentile(&times, 50.0)),
        "open_p99_ms": ms(percentile(&times, 99.0)),
        "error_samples": samples,
    });
    Ok((summary, errors == 0 && open_at_end == opened))
}
