//! Remote legacy HTTP+SSE backends (protocol 2024-11-05 style): a GET
//! stream read by `backend:<n>:stream`, whose first `endpoint` event names
//! the URL that `backend:<n>:poster` POSTs every message to. Optionally
//! starts a local server process first (legacy config behaviour) and probes
//! for readiness instead of sleeping.

use super::conn::{Conn, Outgoing};
use super::stats::Stats;
use super::stdio;
use super::SupervisorMsg;
use crate::codec::jsonrpc;
use crate::codec::sse::SseDecoder;
use crate::config::Command;
use crossbeam_channel::{bounded, Receiver, Sender};
use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// An agent for long-lived streams: connect timeout only, no read timeout
/// (a stream may be quiet for hours; death is seen as EOF or an error).
pub fn stream_agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(10)))
        .build()
        .into()
}

/// An agent for request/response POSTs, bounded per call.
pub fn post_agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(10)))
        .timeout_global(Some(timeout + Duration::from_secs(5)))
        .build()
        .into()
}

#[allow(clippy::too_many_arguments)]
pub fn open(
    name: &Arc<str>,
    url: &str,
    headers: &[(String, String)],
    local: Option<&Command>,
    generation: u64,
    supervisor: Sender<SupervisorMsg>,
    stats: Arc<Stats>,
    timeout: Duration,
) -> Result<Arc<Conn>, String> {
    let mut child = match local {
        Some(cmd) => {
            let mut child = stdio::spawn_child(cmd, false)?;
            if let Some(o) = child.stdout.take() {
                stdio::log_stderr(name, o).map_err(|e| e.to_string())?;
            }
            if let Some(e) = child.stderr.take() {
                stdio::log_stderr(name, e).map_err(|e| e.to_string())?;
            }
            Some(child)
        }
        None => None,
    };
    let pid = child.as_ref().map(|c| c.id());
    let agent = stream_agent();
    // A local server needs a moment to bind: retry the connect until the
    // deadline rather than sleeping a fixed time.
    let deadline = Instant::now() + timeout.min(Duration::from_secs(30));
    let resp = loop {
        let mut req = agent.get(url).header("Accept", "text/event-stream");
        for (k, v) in headers {
            req = req.header(k, v);
        }
        match req.call() {
            Ok(r) if r.status() == 200 => break r,
            Ok(r) => {
                let status = r.status();
                if let Some(c) = child.as_mut() {
                    stdio::kill_and_reap(c);
                }
                return Err(format!("GET {url} answered HTTP {status}"));
            }
            Err(e) => {
                let retry = child.is_some() && Instant::now() < deadline;
                if let Some(c) = child.as_mut() {
                    if let Ok(Some(status)) = c.try_wait() {
                        return Err(format!("local server exited before serving ({status})"));
                    }
                }
                if !retry {
                    if let Some(c) = child.as_mut() {
                        stdio::kill_and_reap(c);
                    }
                    return Err(format!("GET {url} failed: {e}"));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    };
    let (conn, out_rx) = Conn::new(name.clone(), generation, pid, supervisor, stats);
    if let Some(c) = child {
        conn.set_closer(stdio::closer(c));
    }
    let (ep_tx, ep_rx) = bounded::<String>(1);
    let base = url.to_owned();
    let c = conn.clone();
    let body = resp.into_body();
    crate::thread::spawn(format!("backend:{name}:stream"), move || {
        read_stream(&c, body.into_reader(), &base, Some(ep_tx));
        Ok(())
    })
    .map_err(|e| e.to_string())?;
    let endpoint = match ep_rx.recv_timeout(timeout.min(Duration::from_secs(30))) {
        Ok(ep) => ep,
        Err(_) => {
            conn.close("no endpoint event");
            return Err(format!("{url} sent no `endpoint` event"));
        }
    };
    let c = conn.clone();
    let headers = headers.to_vec();
    crate::thread::spawn(format!("backend:{name}:poster"), move || {
        post_loop(&c, &endpoint, &headers, &out_rx, timeout);
        Ok(())
    })
    .map_err(|e| e.to_string())?;
    Ok(conn)
}

/// Reads SSE events until the stream ends. `endpoint` receives the first
/// `endpoint` event's URL, resolved against `base`.
fn read_stream(conn: &Conn, mut body: impl Read, base: &str, mut endpoint: Option<Sender<String>>) {
    let mut dec = SseDecoder::new(stdio::MAX_LINE);
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                conn.died(&format!("event stream failed: {e}"));
                return;
            }
        };
        if !conn.is_alive() {
            return;
        }
        dec.push(&buf[..n]);
        loop {
            match dec.next_event() {
                Ok(Some(ev)) if ev.event == "endpoint" => {
                    if let Some(tx) = endpoint.take() {
                        let _ = tx.send(resolve(base, ev.data.trim()));
                    }
                }
                Ok(Some(ev)) if ev.event == "message" => dispatch_data(conn, &ev.data),
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => log::warn!("backend '{}': {e}", conn.backend),
            }
        }
    }
    conn.died("event stream closed");
}

/// Parses one SSE `data` payload as JSON-RPC (a message or, from servers
/// that batch, an array of them) and routes it.
pub fn dispatch_data(conn: &Conn, data: &str) {
    match jsonrpc::parse(data.as_bytes()) {
        Ok(jsonrpc::Parsed::Single(Ok(m))) => conn.handle_incoming(m),
        Ok(jsonrpc::Parsed::Batch(items)) => {
            for m in items.into_iter().flatten() {
                conn.handle_incoming(m);
            }
        }
        Ok(jsonrpc::Parsed::Single(Err(e))) | Err(e) => {
            log::warn!("backend '{}' sent an event that is not JSON-RPC: {}", conn.backend, e.message)
        }
    }
}

fn post_loop(conn: &Conn, endpoint: &str, headers: &[(String, String)], rx: &Receiver<Outgoing>, timeout: Duration) {
    let agent = post_agent(timeout);
    while let Ok(msg) = rx.recv() {
        let mut req = agent.post(endpoint).header("Content-Type", "application/json");
        for (k, v) in headers {
            req = req.header(k, v);
        }
        match req.send(&msg.bytes[..]) {
            Ok(r) if (200..300).contains(&r.status().as_u16()) => {}
            Ok(r) if r.status() == 404 => {
                conn.died("the server forgot our session (HTTP 404)");
                return;
            }
            Ok(r) => fail_request(conn, msg.request_id, &format!("POST answered HTTP {}", r.status())),
            Err(e) => {
                conn.died(&format!("POST {endpoint} failed: {e}"));
                return;
            }
        }
    }
}

/// Fails one call whose message the server refused.
pub fn fail_request(conn: &Conn, id: Option<i64>, why: &str) {
    let Some(id) = id else {
        log::warn!("backend '{}': {why}", conn.backend);
        return;
    };
    let err = crate::codec::Message::error(
        Some(crate::codec::Id::Num(id)),
        crate::codec::ErrorObj::new(
            crate::codec::code::BACKEND_UNAVAILABLE,
            format!("backend '{}': {why}", conn.backend),
        ),
    );
    conn.handle_incoming(err);
}

/// Resolves an endpoint (absolute URL, absolute path, or relative path)
/// against the URL of the stream it came from.
pub fn resolve(base: &str, ep: &str) -> String {
    if ep.starts_with("http://") || ep.starts_with("https://") {
        return ep.to_owned();
    }
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let origin_end = base[scheme_end..].find('/').map_or(base.len(), |i| scheme_end + i);
    if ep.starts_with('/') {
        return format!("{}{ep}", &base[..origin_end]);
    }
    let path = &base[origin_end..];
    let path = path.split(['?', '#']).next().unwrap_or("");
    let dir = path.rfind('/').map_or("/", |i| &path[..=i]);
    format!("{}{dir}{ep}", &base[..origin_end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_resolution() {
        let b = "http://127.0.0.1:9101/sse";
        assert_eq!(resolve(b, "/messages/?session_id=1"), "http://127.0.0.1:9101/messages/?session_id=1");
        assert_eq!(resolve(b, "messages?sessionId=1"), "http://127.0.0.1:9101/messages?sessionId=1");
        assert_eq!(resolve("https://h/a/b/sse?x=1", "m?s=2"), "https://h/a/b/m?s=2");
        assert_eq!(resolve(b, "https://other/x"), "https://other/x");
        assert_eq!(resolve("http://h", "/m"), "http://h/m");
    }
}
