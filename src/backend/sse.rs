//! Remote legacy HTTP+SSE backends (protocol 2024-11-05 style): a GET
//! stream read by `backend:<n>:stream`, whose first `endpoint` event names
//! the URL that `backend:<n>:poster` POSTs every message to. Optionally
//! starts a local server process first (legacy config behaviour, see
//! `local.rs`) and probes for readiness instead of sleeping.

use super::conn::{Conn, Outgoing};
use super::local::{self, LocalServer};
use super::stats::Stats;
use super::stdio;
use super::wire;
use super::SupervisorMsg;
use crate::codec::sse::SseDecoder;
use crate::config::{redact_url, scrub_url, Command};
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender};
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
    let server = local.map(|cmd| LocalServer::start(name, cmd, url)).transpose()?;
    let resp = match get_stream(url, headers, server.as_ref(), timeout) {
        Ok(r) => r,
        Err(e) => {
            if let Some(s) = &server {
                s.stop();
            }
            return Err(e);
        }
    };
    let (conn, out_rx) = Conn::new(name.clone(), generation, server.as_ref().map(|s| s.pid), supervisor, stats);
    let exited = server.as_ref().map(LocalServer::exited);
    if let Some(s) = server {
        // Attach before anything can fail: from here the process's exit
        // ends the connection, and closing the connection stops the process.
        let attached = s.attach(&conn);
        conn.set_closer(s.closer());
        if let Err(e) = attached {
            conn.close(&e);
            return Err(e);
        }
    }
    let (ep_tx, ep_rx) = bounded::<String>(1);
    let base = url.to_owned();
    let c = conn.clone();
    let body = resp.into_body();
    crate::thread::spawn(format!("backend:{name}:stream"), move || {
        read_stream(&c, body.into_reader(), &base, Some(ep_tx), exited.as_ref());
        Ok(())
    })
    .map_err(|e| cannot_start(&conn, &e))?;
    let endpoint = match ep_rx.recv_timeout(timeout.min(Duration::from_secs(30))) {
        Ok(ep) => ep,
        Err(_) => {
            conn.close("no endpoint event");
            return Err(format!("{} sent no `endpoint` event", redact_url(url)));
        }
    };
    let c = conn.clone();
    let headers = headers.to_vec();
    let url = url.to_owned();
    crate::thread::spawn(format!("backend:{name}:poster"), move || {
        post_loop(&c, &endpoint, &url, &headers, &out_rx, timeout);
        Ok(())
    })
    .map_err(|e| cannot_start(&conn, &e))?;
    Ok(conn)
}

/// A thread of the connection could not start: close it (stopping a local
/// server) and say why.
fn cannot_start(conn: &Conn, e: &std::io::Error) -> String {
    let why = format!("cannot start I/O threads: {e}");
    conn.close(&why);
    why
}

/// Opens the event stream. With a local server, retries the connect every
/// 100 ms (or at once when the server exits) until `min(timeout, 30 s)`:
/// it needs a moment to bind, and sleeping a fixed time would be a guess.
fn get_stream(
    url: &str,
    headers: &[(String, String)],
    server: Option<&LocalServer>,
    timeout: Duration,
) -> Result<ureq::http::Response<ureq::Body>, String> {
    let agent = stream_agent();
    let deadline = Instant::now() + timeout.min(Duration::from_secs(30));
    loop {
        if let Some(s) = server.filter(|s| s.has_exited()) {
            let status = s.exit_status().unwrap_or_default();
            return Err(format!("{} before serving ({status})", local::EXITED));
        }
        let mut req = agent.get(url).header("Accept", "text/event-stream");
        for (k, v) in headers {
            req = req.header(k, v);
        }
        match req.call() {
            Ok(r) if r.status() == 200 => return Ok(r),
            Ok(r) => return Err(format!("GET {} answered HTTP {}", redact_url(url), r.status())),
            Err(e) => match server {
                Some(s) if Instant::now() < deadline => {
                    s.wait_exit(Duration::from_millis(100));
                }
                _ => return Err(format!("GET {} failed: {}", redact_url(url), scrub(&e, url))),
            },
        }
    }
}

/// Reads SSE events until the stream ends. `endpoint` receives the first
/// `endpoint` event's URL, resolved against `base`. `exited` is a local
/// server's exit signal: a stream that ends because its server died is
/// reported as that death.
fn read_stream(
    conn: &Conn,
    mut body: impl Read,
    base: &str,
    mut endpoint: Option<Sender<String>>,
    exited: Option<&Receiver<()>>,
) {
    let mut dec = SseDecoder::new(stdio::MAX_LINE);
    let mut buf = vec![0u8; 16 * 1024];
    let why = loop {
        let n = match body.read(&mut buf) {
            Ok(0) => break "event stream closed".to_owned(),
            Ok(n) => n,
            Err(e) => break format!("event stream failed: {}", scrub(&e, base)),
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
                Ok(Some(ev)) if ev.event == "message" => {
                    dispatch_data(conn, &ev.data, None);
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => log::warn!("backend '{}': {e}", conn.backend),
            }
        }
    };
    // The server's sockets close as it exits, a moment before its waiter
    // can reap it: give the waiter that moment, so the reason is the exit.
    if let Some(rx) = exited.filter(|_| conn.is_alive()) {
        if matches!(rx.recv_timeout(Duration::from_secs(1)), Err(RecvTimeoutError::Disconnected)) {
            conn.died(local::EXITED);
            return;
        }
    }
    conn.died(&why);
}

/// Routes one SSE `data` payload (a message or, from servers that batch,
/// an array of them). Returns whether it answered gateway request `request`.
pub fn dispatch_data(conn: &Conn, data: &str, request: Option<i64>) -> bool {
    wire::route(conn, data.as_bytes(), request).unwrap_or_else(|e| {
        log::warn!(
            "backend '{}' sent an event that is not JSON-RPC ({e}); skipped: {}",
            conn.backend,
            wire::snippet(data.as_bytes())
        );
        false
    })
}

/// POSTs each message to `endpoint`. `url` (the stream's) is there to keep
/// its secrets out of error texts: the endpoint often shares its query.
fn post_loop(
    conn: &Conn,
    endpoint: &str,
    url: &str,
    headers: &[(String, String)],
    rx: &Receiver<Outgoing>,
    timeout: Duration,
) {
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
                let e = scrub_url(&scrub(&e, endpoint), url);
                conn.died(&format!("POST {} failed: {e}", redact_url(endpoint)));
                return;
            }
        }
    }
}

/// An error text of the HTTP client without the secrets of `url` (it may
/// quote the URL): what the backend layer shows goes to `last_error`,
/// events, the log and client errors.
pub fn scrub(e: &impl std::fmt::Display, url: &str) -> String {
    scrub_url(&e.to_string(), url)
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
