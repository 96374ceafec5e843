//! `calls`: K concurrent sessions, each making N `tools/call` calls with a
//! message padded to `--size` bytes, one scoped thread per session; reports
//! calls/s and latency percentiles. Every answer is checked to echo back
//! its own message, so a mixed-up answer counts as wrong, not as a success.

use crate::cli::CallsOpts;
use crate::client::{Outcome, Session, Streamable, Transport};
use crate::http::Fail;
use crate::latch::Latch;
use crate::stats::{percentile, us};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const MAX_SAMPLES: usize = 8;

/// The exposed name of tool `want`: itself if listed, else the first
/// `<prefix>__<want>` (the gateway prefixes tools of prefixed backends).
pub fn resolve_tool(list: &Value, want: &str) -> Option<String> {
    let names: Vec<&str> =
        list.get("tools").and_then(Value::as_array)?.iter().filter_map(|t| t.get("name")?.as_str()).collect();
    if names.contains(&want) {
        return Some(want.to_owned());
    }
    let suffix = format!("__{want}");
    names.into_iter().find(|n| n.ends_with(&suffix)).map(str::to_owned)
}

/// A message of exactly `size` bytes (at least the tag) that starts with a
/// tag unique to the call, so its echo can be told from another call's.
pub fn payload(tag: &str, size: usize) -> String {
    let mut s = String::with_capacity(size.max(tag.len()));
    s.push_str(tag);
    while s.len() < size {
        s.push(char::from(b'a' + (s.len() % 26) as u8));
    }
    s
}

/// Whether a `tools/call` result echoes `message` (the demo returns it as
/// is, server-everything as `Echo: <message>`).
pub fn echoes(result: &Value, message: &str) -> bool {
    result.pointer("/content/0/text").and_then(Value::as_str).is_some_and(|t| t.ends_with(message))
}

/// Opens one session and finds the tool's exposed name.
fn discover(o: &CallsOpts) -> Result<String, String> {
    let mut s = Streamable::new(o.addr, o.timeout);
    let init = s.request("initialize", Some(crate::client::initialize_params()), false).0;
    if !init.is_ok() {
        return Err(format!("initialize: {init:?}"));
    }
    let (list, _) = s.request("tools/list", None, false);
    let _ = s.delete();
    s.abandon();
    match list {
        Outcome::Ok(v) => {
            resolve_tool(&v, &o.tool).ok_or_else(|| format!("no tool named {:?} or *__{}", o.tool, o.tool))
        }
        other => Err(format!("tools/list: {other:?}")),
    }
}

#[derive(Default)]
struct Worker {
    samples: Vec<Duration>,
    errors: usize,
    hung: usize,
    wrong: usize,
    messages: Vec<String>,
}

impl Worker {
    fn error(&mut self, what: String) {
        self.errors += 1;
        if self.messages.len() < MAX_SAMPLES {
            self.messages.push(what);
        }
    }
}

/// Opens and initializes a session; the error says whether it was a hang
/// (no answer in time) and what failed.
fn open(o: &CallsOpts) -> Result<Session, (bool, String)> {
    let failed =
        |what: &str, out: Outcome| (matches!(out, Outcome::Fail(Fail::Timeout(_))), format!("{what}: {out:?}"));
    let mut s = Session::open(o.transport, o.addr, o.timeout).map_err(|e| failed("open", e))?;
    let init = s.initialize();
    if !init.is_ok() {
        return Err(failed("initialize", init));
    }
    let note = s.notify("notifications/initialized", None);
    if !note.is_ok() {
        return Err(failed("notifications/initialized", note));
    }
    Ok(s)
}

fn session(o: &CallsOpts, tool: &str, index: usize, go: &Latch) -> Worker {
    let mut w = Worker::default();
    // A failed open still reaches the barrier so nobody waits for it.
    let opened = open(o);
    go.wait();
    let mut s = match opened {
        Ok(s) => s,
        Err((hung, e)) => {
            w.hung += usize::from(hung);
            w.error(e);
            return w;
        }
    };
    w.samples.reserve(o.calls);
    for i in 0..o.calls {
        let msg = payload(&format!("s{index}c{i}-"), o.size);
        let t = Instant::now();
        let (r, _) = s.request("tools/call", Some(json!({"name": tool, "arguments": {"message": msg}})), false);
        let took = t.elapsed();
        match r {
            Outcome::Ok(v) if echoes(&v, &msg) => w.samples.push(took),
            Outcome::Ok(v) => {
                w.wrong += 1;
                w.error(format!(
                    "call {i}: answer does not echo the message: {}",
                    crate::http::truncate(&v.to_string(), 200)
                ));
            }
            Outcome::Fail(Fail::Timeout(m)) => {
                w.hung += 1;
                w.error(format!("call {i}: no answer within {:?}: {m}", o.timeout));
                break;
            }
            other => {
                let broken = other.broke_connection();
                w.error(format!("call {i}: {other:?}"));
                if broken && o.transport == Transport::Sse {
                    break;
                }
            }
        }
    }
    if let Some(o) = s.close(true) {
        if !o.is_ok() {
            w.error(format!("DELETE: {o:?}"));
        }
    }
    w
}

pub fn run(o: &CallsOpts) -> Result<(Value, bool), String> {
    let tool = discover(o)?;
    let go = Latch::new(o.sessions + 1);
    let (workers, wall) = std::thread::scope(|s| -> Result<(Vec<Worker>, Duration), String> {
        let mut handles = Vec::with_capacity(o.sessions);
        for i in 0..o.sessions {
            let (tool, go) = (&tool, &go);
            let h = std::thread::Builder::new()
                .name(format!("calls:{i}"))
                .stack_size(512 * 1024)
                .spawn_scoped(s, move || session(o, tool, i, go));
            match h {
                Ok(h) => handles.push(h),
                Err(e) => {
                    // Release the sessions already started, then report.
                    go.cancel(o.sessions + 1);
                    for h in handles {
                        let _ = h.join();
                    }
                    return Err(format!("cannot start session thread {i}: {e}"));
                }
            }
        }
        go.wait();
        let start = Instant::now();
        let workers = handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    let mut w = Worker::default();
                    w.error("a session thread panicked".into());
                    w
                })
            })
            .collect();
        Ok((workers, start.elapsed()))
    })?;
    let mut all = Vec::with_capacity(o.sessions * o.calls);
    let (mut errors, mut hung, mut wrong, mut messages) = (0, 0, 0, Vec::new());
    for w in workers {
        all.extend(w.samples);
        errors += w.errors;
        hung += w.hung;
        wrong += w.wrong;
        messages.extend(w.messages.into_iter().take(MAX_SAMPLES.saturating_sub(messages.len())));
    }
    all.sort_unstable();
    let ok = errors == 0 && all.len() == o.sessions * o.calls;
    let summary = json!({
        "mode": "calls",
        "transport": o.transport.name(),
        "sessions": o.sessions,
        "calls": o.calls,
        "tool": tool,
        "size": o.size,
        "ok_calls": all.len(),
        "errors": errors,
        "hung": hung,
        "wrong_answer": wrong,
        "calls_per_s": (all.len() as f64 / wall.as_secs_f64() * 10.0).round() / 10.0,
        "p50_us": us(percentile(&all, 50.0)),
        "p90_us": us(percentile(&all, 90.0)),
        "p99_us": us(percentile(&all, 99.0)),
        "max_us": us(all.last().copied().unwrap_or_default()),
        "wall_s": (wall.as_secs_f64() * 1000.0).round() / 1000.0,
        "error_samples": messages,
        "ok": ok,
    });
    Ok((summary, ok))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_names_resolve_exact_then_prefixed() {
        let list = json!({"tools": [{"name": "alpha__echo"}, {"name": "echo"}, {"name": "beta__echo"}]});
        assert_eq!(resolve_tool(&list, "echo").as_deref(), Some("echo"));
        let list = json!({"tools": [{"name": "slow"}, {"name": "beta__echo"}, {"name": "gamma__echo"}]});
        assert_eq!(resolve_tool(&list, "echo").as_deref(), Some("beta__echo"));
        assert_eq!(resolve_tool(&list, "add"), None);
        assert_eq!(resolve_tool(&json!({}), "echo"), None);
    }

    #[test]
    fn payload_size_and_tag() {
        let p = payload("s1c2-", 100);
        assert_eq!(p.len(), 100);
        assert!(p.starts_with("s1c2-"));
        assert_eq!(payload("long-tag", 3), "long-tag");
    }

    #[test]
    fn echo_check() {
        assert!(echoes(&json!({"content": [{"type": "text", "text": "abc"}]}), "abc"));
        assert!(echoes(&json!({"content": [{"type": "text", "text": "Echo: abc"}]}), "abc"));
        assert!(!echoes(&json!({"content": [{"type": "text", "text": "abd"}]}), "abc"));
        assert!(!echoes(&json!({"content": []}), "abc"));
    }
}
