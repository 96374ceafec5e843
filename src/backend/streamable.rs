//! Remote Streamable HTTP backends: every message is a POST to one URL;
//! the answer is 202, one JSON message, or an SSE stream that ends with the
//! response. A small pool of `backend:<n>:post<i>` threads sends POSTs so
//! that one slow call does not hold up the rest; a `backend:<n>:get` thread
//! holds the optional GET stream for the backend's own notifications
//! (list_changed). `Mcp-Session-Id` and `MCP-Protocol-Version` are sent
//! once known; the session is DELETEd on close. Redirects are never
//! followed (a 3xx is an error naming its Location), and an SSE answer is
//! bounded per line and per event.

use super::conn::{Conn, Outgoing};
use super::sse::{dispatch_data, fail_request, redirect, scrub, Remote, MAX_EVENT};
use super::stats::Stats;
use super::stdio::MAX_LINE;
use super::wire;
use super::SupervisorMsg;
use crate::codec::sse::SseDecoder;
use crate::config::redact_url;
use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;
use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

/// Concurrent POSTs per backend.
const POSTERS: usize = 4;
/// Largest JSON response body read from a backend.
const MAX_BODY: u64 = 64 * 1024 * 1024;

struct Target {
    remote: Remote,
    /// The agent of the GET stream, kept to shut its socket when the
    /// connection closes (its reader thread is blocked reading it).
    stream: ureq::Agent,
    session: Mutex<Option<String>>,
}

impl Target {
    fn apply<B>(&self, mut req: ureq::RequestBuilder<B>, conn: &Conn) -> ureq::RequestBuilder<B> {
        for (k, v) in &self.remote.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        if let Some(s) = self.session.lock().as_deref() {
            req = req.header("Mcp-Session-Id", s);
        }
        if let Some(v) = conn.protocol_version.lock().as_deref() {
            req = req.header("MCP-Protocol-Version", v);
        }
        req
    }
}

pub fn open(
    name: &Arc<str>,
    remote: &Remote,
    generation: u64,
    supervisor: Sender<SupervisorMsg>,
    stats: Arc<Stats>,
    timeout: Duration,
) -> Result<Arc<Conn>, String> {
    remote.warn_if_plain(name, generation);
    let (conn, out_rx) = Conn::new(name.clone(), generation, None, supervisor, stats);
    let target = Arc::new(Target { remote: remote.clone(), stream: remote.stream_agent(), session: Mutex::new(None) });
    let t = target.clone();
    let weak = Arc::downgrade(&conn);
    conn.set_closer(Box::new(move || {
        // End the server-side session; best effort, bounded.
        let session = t.session.lock().take();
        if let Some(s) = session {
            let agent = t.remote.post_agent(Duration::from_secs(2));
            let mut req = agent.delete(&t.remote.url).header("Mcp-Session-Id", &s);
            for (k, v) in &t.remote.headers {
                req = req.header(k.as_str(), v.as_str());
            }
            let _ = req.call();
        }
        t.stream.clone().shutdown();
        drop(weak);
        None
    }));
    for i in 0..POSTERS {
        let (c, t, rx) = (conn.clone(), target.clone(), out_rx.clone());
        crate::thread::spawn(format!("backend:{name}:post{i}"), move || {
            post_loop(&c, &t, &rx, timeout);
            Ok(())
        })
        .map_err(|e| e.to_string())?;
    }
    // The GET stream can only open after initialize: this thread waits for
    // the handshake, then holds the stream.
    let (c, t) = (conn.clone(), target);
    crate::thread::spawn(format!("backend:{name}:get"), move || {
        get_stream(&c, &t);
        Ok(())
    })
    .map_err(|e| e.to_string())?;
    Ok(conn)
}

fn post_loop(conn: &Conn, t: &Target, rx: &Receiver<Outgoing>, timeout: Duration) {
    let agent = t.remote.post_agent(timeout);
    while let Ok(msg) = rx.recv() {
        let req = agent
            .post(&t.remote.url)
            .header("Content-Type", "application/json")
            .header("Accept", "application/json, text/event-stream");
        let req = t.apply(req, conn);
        let resp = match req.send(&msg.bytes[..]) {
            Ok(r) => r,
            // A slow answer fails only its own call (its deadline passed).
            Err(e @ ureq::Error::Timeout(_)) => {
                fail_request(conn, msg.request_id, &format!("POST failed: {}", scrub(&e, &t.remote.url)));
                continue;
            }
            // Anything else (refused, reset, DNS) means the server is gone:
            // the supervisor reconnects with backoff and the state says so.
            Err(e) => {
                let e = scrub(&e, &t.remote.url);
                fail_request(conn, msg.request_id, &format!("POST failed: {e}"));
                conn.died(&format!("POST {} failed: {e}", redact_url(&t.remote.url)));
                return;
            }
        };
        let status = resp.status().as_u16();
        if let Some(sid) = resp.headers().get("mcp-session-id").and_then(|v| v.to_str().ok()) {
            let mut s = t.session.lock();
            if s.is_none() {
                *s = Some(sid.to_owned());
            }
        }
        if status == 404 && t.session.lock().is_some() {
            conn.died("the server ended our session (HTTP 404)");
            return;
        }
        if !(200..300).contains(&status) {
            let why = redirect(&resp, &t.remote.url).unwrap_or_else(|| format!("answered HTTP {status}"));
            fail_request(conn, msg.request_id, &format!("POST {why}"));
            continue;
        }
        if status == 202 || status == 204 {
            continue;
        }
        let ctype = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
        let body = resp.into_body();
        let request = msg.request_id;
        if ctype.starts_with("text/event-stream") {
            let answered = read_events(conn, body.into_reader(), request);
            if let (Some(id), false, true) = (request, answered, conn.is_alive()) {
                let why = format!("backend '{}' ended its SSE response to POST without the answer", conn.backend);
                wire::fail_call(conn, id, why);
            }
            continue;
        }
        match body.into_with_config().limit(MAX_BODY).read_to_vec() {
            Ok(bytes) => answer_body(conn, &bytes, request),
            Err(e) => {
                fail_request(conn, request, &format!("reading the response failed: {}", scrub(&e, &t.remote.url)))
            }
        }
    }
}

/// A JSON answer to a POST: route it; a request whose answer is not in it
/// fails at once, naming the backend, instead of waiting for its timeout.
fn answer_body(conn: &Conn, bytes: &[u8], request: Option<i64>) {
    let empty = bytes.iter().all(u8::is_ascii_whitespace);
    let problem = match (wire::route(conn, bytes, request), request) {
        (Ok(true), _) => return,
        // Nothing was asked (the POST carried a notification or a response).
        (Ok(false), None) => return,
        (Err(_), None) if empty => return,
        (Ok(false), Some(_)) => "without the response to it".to_owned(),
        (Err(_), _) if empty => "with an empty body".to_owned(),
        (Err(e), _) => format!("with something that is not JSON-RPC: {e}; it starts with: {}", wire::snippet(bytes)),
    };
    let why = format!("backend '{}' answered POST {problem}", conn.backend);
    match request {
        Some(id) => wire::fail_call(conn, id, why),
        None => log::warn!("{why}"),
    }
}

/// Reads an event stream (a POST's SSE response, or the GET stream) to its
/// end. Returns whether it carried the answer to gateway request `request`.
fn read_events(conn: &Conn, mut body: impl Read, request: Option<i64>) -> bool {
    let mut dec = SseDecoder::with_limits(MAX_LINE, MAX_EVENT);
    let mut buf = vec![0u8; 16 * 1024];
    let mut answered = false;
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) | Err(_) => return answered,
            Ok(n) => n,
        };
        dec.push(&buf[..n]);
        loop {
            match dec.next_event() {
                Ok(Some(ev)) if ev.event == "message" && !ev.data.is_empty() => {
                    answered |= dispatch_data(conn, &ev.data, request);
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                // A line or an event over its bound: dropped, the stream goes on.
                Err(e) => log::warn!("backend '{}': {e}", conn.backend),
            }
        }
        if !conn.is_alive() {
            return answered;
        }
    }
}

/// Holds the GET stream for server-initiated messages. A server may answer
/// 405 (no such stream): then nothing is lost but list_changed pushes.
fn get_stream(conn: &Conn, t: &Target) {
    // Wait (bounded by the connection's life) for the handshake, which
    // sets the protocol version and, on stateful servers, the session id.
    loop {
        if !conn.is_alive() {
            return;
        }
        if conn.protocol_version.lock().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let req = t.apply(t.stream.get(&t.remote.url).header("Accept", "text/event-stream"), conn);
    match req.call() {
        Ok(r) if r.status() == 200 => {
            read_events(conn, r.into_body().into_reader(), None);
        }
        Ok(r) => match redirect(&r, &t.remote.url) {
            Some(why) => log::warn!("backend '{}': no GET stream: GET {why}", conn.backend),
            None => log::debug!("backend '{}': no GET stream (HTTP {})", conn.backend, r.status()),
        },
        Err(e) => log::debug!("backend '{}': GET stream failed: {}", conn.backend, scrub(&e, &t.remote.url)),
    }
}
