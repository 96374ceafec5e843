//! `burst`: N connections opened at the same instant, round after round, to
//! find connections the gateway accepts but never serves.
//!
//! Each round starts N scoped threads (small stacks) that meet at a
//! barrier ([`Latch`]), then each opens a fresh connection and sends `GET /sse` (done
//! at the `endpoint` event) or `POST /mcp` initialize (done at its response).
//! An attempt not done within `--timeout-ms` is *unanswered*; the stage it
//! stalled at (no status line, or a head but no `endpoint` event) is kept,
//! since "accepted, never served" shows as no status line at all. The
//! threads then meet at a second barrier, so all connections of a round are
//! open together, and close them (DELETE first for Streamable sessions).

use crate::cli::{BurstKind, BurstOpts};
use crate::client::{answer_from_body, endpoint_path, initialize_params, Outcome};
use crate::http::{Conn, Fail};
use crate::latch::Latch;
use crate::stats::{ms, percentile};
use mcp_sentinel::codec::jsonrpc::{Id, Message};
use mcp_sentinel::codec::sse::SseDecoder;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Error samples kept for the summary.
const MAX_SAMPLES: usize = 8;

/// How one attempt ended.
#[derive(Debug)]
enum Result1 {
    Answered(Duration),
    /// Nothing by the deadline; the stage it was waiting at.
    Unanswered(&'static str),
    /// Refused, closed, or answered with an error.
    Error(String),
}

/// What a thread keeps open until the round ends.
struct Held {
    conn: Option<Conn>,
    sid: Option<String>,
}

fn fail_result(f: Fail, stage: &'static str) -> Result1 {
    match f {
        Fail::Timeout(_) => Result1::Unanswered(stage),
        other => Result1::Error(format!("{stage}: {other}")),
    }
}

fn sse_attempt(addr: SocketAddr, t0: Instant, deadline: Instant) -> (Result1, Held) {
    let mut held = Held { conn: None, sid: None };
    let mut conn = match Conn::connect(addr, deadline) {
        Ok(c) => c,
        Err(f) => return (fail_result(f, "connect"), held),
    };
    if let Err(f) = conn.send("GET", "/sse", &[("Accept", "text/event-stream")], &[]) {
        return (fail_result(f, "send"), held);
    }
    let head = match conn.head() {
        Ok(h) => h,
        Err(f) => return (fail_result(f, "no response head"), held),
    };
    if head.status != 200 {
        return (Result1::Error(format!("GET /sse: HTTP {}", head.status)), held);
    }
    let mut d = SseDecoder::new(1 << 20);
    let mut piece = Vec::with_capacity(4096);
    let r = loop {
        match d.next_event() {
            Ok(Some(ev)) if ev.event == "endpoint" && endpoint_path(&ev.data).contains("session_id=") => {
                break Result1::Answered(t0.elapsed());
            }
            Ok(Some(_)) => continue,
            Ok(None) => {}
            Err(e) => break Result1::Error(format!("event stream: {e}")),
        }
        piece.clear();
        match conn.stream_piece(head.chunked, &mut piece) {
            Ok(true) => d.push(&piece),
            Ok(false) => break Result1::Error("stream ended before the endpoint event".into()),
            Err(f) => break fail_result(f, "head but no endpoint event"),
        }
    };
    held.conn = Some(conn);
    (r, held)
}

fn initialize_attempt(addr: SocketAddr, t0: Instant, deadline: Instant) -> (Result1, Held) {
    let mut held = Held { conn: None, sid: None };
    let mut conn = match Conn::connect(addr, deadline) {
        Ok(c) => c,
        Err(f) => return (fail_result(f, "connect"), held),
    };
    let msg = Message::request(Id::Num(1), "initialize", Some(initialize_params())).to_bytes();
    let headers = [("Content-Type", "application/json"), ("Accept", "application/json, text/event-stream")];
    if let Err(f) = conn.send("POST", "/mcp", &headers, &msg) {
        return (fail_result(f, "send"), held);
    }
    let head = match conn.head() {
        Ok(h) => h,
        Err(f) => return (fail_result(f, "no response head"), held),
    };
    let body = match conn.body(&head) {
        Ok(b) => b,
        Err(f) => return (fail_result(f, "head but no body"), held),
    };
    let r = match answer_from_body(&head, &body, 1, None) {
        (Outcome::Ok(_), _) => match head.header("mcp-session-id") {
            Some(sid) => {
                held.sid = Some(sid.to_owned());
                Result1::Answered(t0.elapsed())
            }
            None => Result1::Error("initialize answered without Mcp-Session-Id".into()),
        },
        (other, _) => Result1::Error(format!("initialize: {other:?}")),
    };
    held.conn = Some(conn);
    (r, held)
}

/// Closes what a thread held; `Some(error)` when the DELETE failed.
fn close(held: Held, addr: SocketAddr, timeout: Duration) -> Option<(bool, String)> {
    let mut out = None;
    if let Some(sid) = held.sid {
        let deadline = Instant::now() + timeout;
        // A real client reuses its keep-alive connection for the DELETE.
        let conn = match held.conn {
            Some(c) => Ok(c),
            None => Conn::connect(addr, deadline),
        };
        let r = conn.and_then(|mut c| {
            c.set_deadline(deadline);
            let r = c.exchange("DELETE", "/mcp", &[("Mcp-Session-Id", &sid)], &[]);
            c.close();
            r
        });
        out = match r {
            Ok((h, _)) if h.status == 200 => None,
            Ok((h, _)) => Some((false, format!("DELETE /mcp: HTTP {}", h.status))),
            Err(f) => Some((matches!(f, Fail::Timeout(_)), format!("DELETE /mcp: {f}"))),
        };
    } else if let Some(c) = held.conn {
        c.close();
    }
    out
}

pub fn run(o: &BurstOpts) -> Result<(Value, bool), String> {
    let n = o.connections;
    let mut latencies = Vec::with_capacity(n * o.rounds);
    let (mut unanswered, mut errors, mut delete_failed, mut delete_unanswered) = (0usize, 0usize, 0usize, 0usize);
    let mut by_round = Vec::with_capacity(o.rounds);
    let mut stages: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut samples: Vec<String> = Vec::new();
    let started = Instant::now();
    for round in 0..o.rounds {
        if round > 0 && !o.pause.is_zero() {
            std::thread::sleep(o.pause);
        }
        let (go, hold) = (Latch::new(n), Latch::new(n));
        let results: Vec<(Result1, Option<(bool, String)>)> = std::thread::scope(|s| {
            let mut handles = Vec::with_capacity(n);
            let mut spawn_error = None;
            for i in 0..n {
                let (go, hold) = (&go, &hold);
                let h = std::thread::Builder::new().stack_size(256 * 1024).spawn_scoped(s, move || {
                    go.wait();
                    let t0 = Instant::now();
                    let deadline = t0 + o.timeout;
                    let (r, held) = match o.kind {
                        BurstKind::Sse => sse_attempt(o.addr, t0, deadline),
                        BurstKind::Initialize => initialize_attempt(o.addr, t0, deadline),
                    };
                    hold.wait();
                    let closed = close(held, o.addr, o.timeout);
                    (r, closed)
                });
                match h {
                    Ok(h) => handles.push(h),
                    Err(e) => {
                        // Release the threads already started, then report.
                        go.cancel(n - i);
                        hold.cancel(n - i);
                        spawn_error = Some(format!("cannot start thread {} of {n}: {e}", i + 1));
                        break;
                    }
                }
            }
            let results = handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| (Result1::Error("attempt thread panicked".into()), None)))
                .collect();
            spawn_error.map_or(Ok(results), Err)
        })?;
        let mut round_unanswered = 0;
        for (r, closed) in results {
            match r {
                Result1::Answered(d) => latencies.push(d),
                Result1::Unanswered(stage) => {
                    round_unanswered += 1;
                    *stages.entry(stage).or_default() += 1;
                }
                Result1::Error(e) => {
                    errors += 1;
                    if samples.len() < MAX_SAMPLES && !samples.contains(&e) {
                        samples.push(e);
                    }
                }
            }
            if let Some((timed_out, e)) = closed {
                delete_failed += 1;
                delete_unanswered += usize::from(timed_out);
                if samples.len() < MAX_SAMPLES && !samples.contains(&e) {
                    samples.push(e);
                }
            }
        }
        unanswered += round_unanswered;
        by_round.push(round_unanswered);
    }
    latencies.sort_unstable();
    let attempts = n * o.rounds;
    let ok = unanswered == 0 && errors == 0 && delete_failed == 0;
    let summary = json!({
        "mode": "burst",
        "kind": o.kind.name(),
        "connections": n,
        "rounds": o.rounds,
        "timeout_ms": o.timeout.as_millis() as u64,
        "attempts": attempts,
        "answered": latencies.len(),
        "unanswered": unanswered,
        "errors": errors,
        "unanswered_by_round": by_round,
        "unanswered_stage": stages,
        "delete_failed": delete_failed,
        "delete_unanswered": delete_unanswered,
        "p50_ms": ms(percentile(&latencies, 50.0)),
        "p99_ms": ms(percentile(&latencies, 99.0)),
        "max_ms": ms(latencies.last().copied().unwrap_or_default()),
        "elapsed_s": (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
        "error_samples": samples,
        "ok": ok,
    });
    Ok((summary, ok))
}
