//! Remote Streamable HTTP backends: every message is a POST to one URL;
//! the answer is 202, one JSON message, or an SSE stream that ends with the
//! response. A small pool of `backend:<n>:post<i>` threads sends POSTs so
//! that one slow call does not hold up the rest; a `backend:<n>:get` thread
//! holds the optional GET stream for the backend's own notifications
//! (list_changed). `Mcp-Session-Id` and `MCP-Protocol-Version` are sent
//! once known; the session is DELETEd on close. Redirects are never
//! followed (a 3xx is an error naming its Location), and an SSE answer is
//! bounded per line and per event.
//!
//! Closing the connection shuts every socket it reads (the GET stream, the
//! POSTs and their SSE answers, a resume's GET) through the agents' own
//! shutdown, so its threads end at once, not when a quiet backend next
//! sends a byte; a resume waiting out the server's `retry:` delay ends too.

use super::conn::{Conn, ConnSpec, Outgoing, StreamGate};
use super::error::BackendError;
use super::sse::{dispatch_data, fail_request, redirect, scrub, Remote, MAX_EVENT};
use super::stdio::MAX_LINE;
use super::wire;
use crate::codec::mcp::method;
use crate::codec::sse::SseDecoder;
use crate::config::redact_url;
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TryRecvError};
use parking_lot::Mutex;
use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

/// Concurrent POSTs per backend.
const POSTERS: usize = 4;
/// Largest JSON response body read from a backend.
const MAX_BODY: u64 = 64 * 1024 * 1024;

struct Poster {
    agent: ureq::Agent,
    request: Option<i64>,
    aborted: bool,
}

struct Target {
    remote: Remote,
    /// The agent of the GET stream, kept to shut its socket when the
    /// connection closes (its reader thread is blocked reading it).
    stream: ureq::Agent,
    /// The agent of resumes, shut for the same reason.
    post: ureq::Agent,
    /// Each POST thread's own agent and the request it is sending: a
    /// POST's SSE answer is a stream that may stay quiet, and shutting one
    /// thread's agent ends that exchange only (how a 2026-07-28 request is
    /// cancelled); a shut agent is replaced before the next POST.
    posters: Vec<Mutex<Poster>>,
    session: Mutex<Option<String>>,
    /// The agent of the current 2026-07-28 listen stream (one per listen,
    /// so that shutting it ends that listen only) and whether it was ended
    /// on purpose, to listen again at once with a new filter.
    listen: Mutex<(Option<ureq::Agent>, bool)>,
    /// Never sent on: disconnects when the connection closes, which ends a
    /// resume's wait for the server's `retry:` delay.
    closed: Receiver<()>,
}

impl Target {
    /// Whether the connection was closed. Then an I/O error is the closer
    /// shutting the sockets, not the backend: the calls in flight are the
    /// close's to fail, with its reason.
    fn closing(&self) -> bool {
        matches!(self.closed.try_recv(), Err(TryRecvError::Disconnected))
    }

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

pub fn open(spec: &ConnSpec, remote: &Remote) -> Result<Arc<Conn>, BackendError> {
    let (name, timeout) = (&spec.backend, spec.timeout);
    remote.warn_if_plain(name, spec.generation);
    let (conn, out_rx) = Conn::new(spec, None);
    let (closing, closed) = bounded(0);
    let target = Arc::new(Target {
        remote: remote.clone(),
        stream: remote.stream_agent(),
        post: remote.post_agent(timeout),
        posters: (0..POSTERS)
            .map(|_| Mutex::new(Poster { agent: remote.post_agent(timeout), request: None, aborted: false }))
            .collect(),
        session: Mutex::new(None),
        listen: Mutex::new((None, false)),
        closed,
    });
    let t = target.clone();
    conn.set_closer(Box::new(move || {
        // First what the I/O threads wait on, so that they end now even if
        // the DELETE below takes its time.
        drop(closing);
        t.stream.clone().shutdown();
        t.post.clone().shutdown();
        for p in &t.posters {
            p.lock().agent.clone().shutdown();
        }
        if let Some(a) = t.listen.lock().0.take() {
            a.shutdown();
        }
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
        None
    }));
    let me = Arc::downgrade(&target);
    conn.set_abort(Box::new(move |id| {
        let Some(t) = me.upgrade() else { return };
        for p in &t.posters {
            let mut p = p.lock();
            if p.request == Some(id) {
                p.aborted = true;
                p.agent.clone().shutdown();
            }
        }
    }));
    for i in 0..POSTERS {
        let (c, t, rx) = (conn.clone(), target.clone(), out_rx.clone());
        crate::thread::spawn(format!("backend:{name}:post{i}"), move || {
            post_loop(&c, &t, i, &rx);
            Ok(())
        })
        .map_err(|e| BackendError::open(name, e.to_string()))?;
    }
    // The GET stream can only open after initialize: this thread waits for
    // the handshake to say so, then holds the stream.
    let (answered_tx, answered) = bounded(1);
    let (opened, opened_rx) = bounded(1);
    conn.set_gate(StreamGate { answered: answered_tx, opened: opened_rx });
    let (c, t) = (conn.clone(), target);
    // The same thread holds a 2026-07-28 backend's listen stream instead.
    crate::thread::spawn(format!("backend:{name}:get"), move || {
        // Err: the connection closed before initialize was answered.
        if answered.recv().is_ok() {
            if c.is_modern() {
                listen_loop(&c, &t, &opened);
            } else {
                get_stream(&c, &t, &opened);
            }
        }
        Ok(())
    })
    .map_err(|e| BackendError::open(name, e.to_string()))?;
    Ok(conn)
}

fn post_loop(conn: &Conn, t: &Target, i: usize, rx: &Receiver<Outgoing>) {
    while let Ok(msg) = rx.recv() {
        let agent = {
            let mut p = t.posters[i].lock();
            if t.closing() {
                return;
            }
            if std::mem::take(&mut p.aborted) {
                p.agent = t.remote.post_agent(conn.timeout());
            }
            p.request = msg.request_id;
            p.agent.clone()
        };
        let go_on = post_one(conn, t, &agent, msg, || t.posters[i].lock().aborted);
        t.posters[i].lock().request = None;
        if !go_on {
            return;
        }
    }
}

/// Sends one message and handles its answer; `false` when the connection
/// is over. `aborted` says whether the request was cancelled meanwhile (its
/// call is already answered: nothing more to do).
fn post_one(conn: &Conn, t: &Target, agent: &ureq::Agent, msg: Outgoing, aborted: impl Fn() -> bool) -> bool {
    {
        let req = agent
            .post(&t.remote.url)
            .header("Content-Type", "application/json")
            .header("Accept", "application/json, text/event-stream");
        let mut req = t.apply(req, conn);
        if let Some(h) = &msg.headers {
            req = req.header("Mcp-Method", h.method.as_str());
            if let Some(n) = &h.name {
                req = req.header("Mcp-Name", crate::util::mcp_header_value(n));
            }
            if let Some(tp) = h.traceparent.as_deref().filter(|v| v.is_ascii() && !v.contains(['\r', '\n'])) {
                req = req.header("traceparent", tp);
            }
        }
        let resp = match req.send(&msg.bytes[..]) {
            Ok(r) => r,
            Err(_) if t.closing() => return false,
            Err(_) if aborted() => return true,
            // A slow answer fails only its own call (its deadline passed).
            Err(e @ ureq::Error::Timeout(_)) => {
                fail_request(conn, msg.request_id, &format!("POST failed: {}", scrub(&e, &t.remote.url)));
                return true;
            }
            // Anything else (refused, reset, DNS) means the server is gone:
            // the supervisor reconnects with backoff and the state says so.
            // Dead first, then the call fails: a caller that sees the error
            // (the era probe) must also see the connection gone, not take
            // the failure for a legacy server's refusal.
            Err(e) => {
                let e = scrub(&e, &t.remote.url);
                conn.died(&format!("POST {} failed: {e}", redact_url(&t.remote.url)));
                fail_request(conn, msg.request_id, &format!("POST failed: {e}"));
                return false;
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
            return false;
        }
        if !(200..300).contains(&status) {
            let json = resp
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|t| t.to_ascii_lowercase().starts_with("application/json"));
            let why = redirect(&resp, &t.remote.url).unwrap_or_else(|| format!("answered HTTP {status}"));
            // A JSON-RPC error in the body says more than the status (a
            // 2026-07-28 server's -32022, say): it answers the call.
            if json && msg.request_id.is_some() {
                if let Ok(bytes) = resp.into_body().into_with_config().limit(MAX_BODY).read_to_vec() {
                    if matches!(wire::route(conn, &bytes, msg.request_id), Ok(true)) {
                        return true;
                    }
                }
            }
            fail_request(conn, msg.request_id, &format!("POST {why}"));
            return true;
        }
        if status == 202 || status == 204 {
            return true;
        }
        let ctype = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
        let body = resp.into_body();
        let request = msg.request_id;
        if ctype.starts_with("text/event-stream") {
            let mut dec = SseDecoder::with_limits(MAX_LINE, MAX_EVENT);
            let mut answered = read_events(conn, body.into_reader(), request, &mut dec);
            if aborted() {
                return true;
            }
            if let (Some(id), false) = (request, answered) {
                answered = resume(conn, t, id, &mut dec);
            }
            if let (Some(id), false, true) = (request, answered, conn.is_alive() && !t.closing()) {
                let why = format!("backend '{}' ended its SSE response to POST without the answer", conn.backend);
                wire::fail_call(conn, id, why);
            }
            return true;
        }
        match body.into_with_config().limit(MAX_BODY).read_to_vec() {
            Ok(bytes) => answer_body(conn, &bytes, request),
            Err(_) if t.closing() => return false,
            Err(_) if aborted() => return true,
            Err(e) => {
                fail_request(conn, request, &format!("reading the response failed: {}", scrub(&e, &t.remote.url)))
            }
        }
    }
    true
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

/// Most times one call's response stream is resumed after the server
/// closed it without the answer, and the longest `retry:` wait honoured.
const MAX_RESUMES: usize = 8;
const MAX_RETRY_WAIT: Duration = Duration::from_secs(5);

/// The server closed call `id`'s response stream before the answer (it
/// may, from 2025-11-25, to free the connection; SEP-1699): reconnect with
/// `GET` and `Last-Event-ID` after its `retry:` delay and read on, as a
/// direct client would. Returns whether the answer came.
fn resume(conn: &Conn, t: &Target, id: i64, dec: &mut SseDecoder) -> bool {
    for _ in 0..MAX_RESUMES {
        let Some(last) = dec.last_event_id().map(str::to_owned) else {
            return false;
        };
        if !conn.is_alive() {
            return false;
        }
        // The delay the server asked for (the protocol's own pacing, not a
        // poll), cut short when the connection closes.
        let wait = Duration::from_millis(dec.retry().unwrap_or(0)).min(MAX_RETRY_WAIT);
        if let Err(RecvTimeoutError::Disconnected) | Ok(()) = t.closed.recv_timeout(wait) {
            return false;
        }
        let req = t.post.get(&t.remote.url).header("Accept", "text/event-stream").header("Last-Event-ID", &last);
        let resp = match t.apply(req, conn).call() {
            Ok(r) if r.status() == 200 => r,
            Ok(r) => {
                log::warn!("backend '{}': resuming a response stream: HTTP {}", conn.backend, r.status());
                return false;
            }
            Err(e) => {
                log::warn!("backend '{}': resuming a response stream: {}", conn.backend, scrub(&e, &t.remote.url));
                return false;
            }
        };
        if read_events(conn, resp.into_body().into_reader(), Some(id), dec) {
            return true;
        }
    }
    false
}

/// Reads an event stream (a POST's SSE response, or the GET stream) to its
/// end. Returns whether it carried the answer to gateway request `request`.
fn read_events(conn: &Conn, mut body: impl Read, request: Option<i64>, dec: &mut SseDecoder) -> bool {
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
fn get_stream(conn: &Conn, t: &Target, opened: &Sender<()>) {
    let req = t.apply(t.stream.get(&t.remote.url).header("Accept", "text/event-stream"), conn);
    let resp = req.call();
    // Open or not, the handshake may go on now.
    let _ = opened.try_send(());
    match resp {
        Ok(r) if r.status() == 200 => {
            read_events(conn, r.into_body().into_reader(), None, &mut SseDecoder::with_limits(MAX_LINE, MAX_EVENT));
        }
        Ok(r) => match redirect(&r, &t.remote.url) {
            Some(why) => log::warn!("backend '{}': no GET stream: GET {why}", conn.backend),
            None => log::debug!("backend '{}': no GET stream (HTTP {})", conn.backend, r.status()),
        },
        Err(e) => log::debug!("backend '{}': GET stream failed: {}", conn.backend, scrub(&e, &t.remote.url)),
    }
}

/// Pause before listening again after a 2026-07-28 backend ended the
/// gateway's listen on its own (or refused it).
const RELISTEN_PAUSE: Duration = Duration::from_secs(1);

/// Holds the gateway's `subscriptions/listen` on a 2026-07-28 backend (what
/// the GET stream is to a session revision): list changes and resource
/// updates arrive on it. It is opened again when the filter changes (the
/// kick ends the current one) or the backend ends it, until the
/// connection closes.
fn listen_loop(conn: &Conn, t: &Arc<Target>, opened: &Sender<()>) {
    let me = Arc::downgrade(t);
    conn.set_listen_kick(Box::new(move || {
        if let Some(t) = me.upgrade() {
            let mut g = t.listen.lock();
            g.1 = true;
            if let Some(a) = &g.0 {
                a.clone().shutdown();
            }
        }
    }));
    let mut n = 0u64;
    loop {
        let agent = t.remote.stream_agent();
        {
            let mut g = t.listen.lock();
            if t.closing() {
                return;
            }
            *g = (Some(agent.clone()), false);
        }
        n += 1;
        let id = crate::codec::Id::Str(format!("sentinel-listen-{n}").into());
        let params = super::conn::envelope(Some(conn.listen_params()), None);
        let body = crate::codec::Message::Request { id, method: method::LISTEN.to_owned(), params }.to_bytes();
        let req = agent
            .post(&t.remote.url)
            .header("Content-Type", "application/json")
            .header("Accept", "application/json, text/event-stream")
            .header("Mcp-Method", method::LISTEN);
        let resp = t.apply(req, conn).send(&body[..]);
        let _ = opened.try_send(());
        match resp {
            Ok(r) if r.status() == 200 => {
                read_events(conn, r.into_body().into_reader(), None, &mut SseDecoder::with_limits(MAX_LINE, MAX_EVENT));
            }
            Ok(r) => log::warn!("backend '{}': subscriptions/listen answered HTTP {}", conn.backend, r.status()),
            Err(_) if t.closing() => return,
            Err(e) => log::debug!("backend '{}': listen stream: {}", conn.backend, scrub(&e, &t.remote.url)),
        }
        if t.closing() || !conn.is_alive() {
            return;
        }
        let kicked = std::mem::take(&mut t.listen.lock().1);
        if !kicked {
            if let Err(RecvTimeoutError::Disconnected) | Ok(()) = t.closed.recv_timeout(RELISTEN_PAUSE) {
                return;
            }
        }
    }
}
