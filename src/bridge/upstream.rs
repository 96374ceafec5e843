//! The bridge's side of the gateway: one Streamable HTTP client session on
//! its `/mcp` endpoint. POSTs (from the `stdio:post<i>` threads and, for
//! `initialize` and `notifications/initialized`, the main thread) and the
//! GET stream (`stdio:get`) share the session state here: the session id,
//! the negotiated version, and the client's `initialize` params, replayed
//! when the gateway answers 404 for the session (it restarted), so the
//! client never sees the new session.
//!
//! Every answer is read incrementally and bounded (per line and per event
//! for SSE, in bytes for JSON), every request has a timeout except the GET
//! stream, which ends when the gateway closes it or goes away (and is then
//! opened again with backoff, a wait the bridge's end cuts short).

use std::io::Read;
use std::time::Duration;

use crossbeam_channel::{bounded, select, Receiver, Sender};
use parking_lot::{Condvar, Mutex};
use serde_json::value::RawValue;

use super::out::Out;
use crate::codec::jsonrpc::{self, get_field, get_str, Raw};
use crate::codec::mcp::{self, method};
use crate::codec::sse::SseDecoder;
use crate::codec::{Id, Message};

/// Largest line of the SSE answers and of stdin, and largest JSON body.
pub const MAX_LINE: usize = 64 * 1024 * 1024;
/// TCP connect timeout to the gateway.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Whole-exchange bound of one POST, SSE answer included: ten times the
/// gateway's default call timeout (`timeout_s`, 60 s), so that its own
/// timeout usually answers first.
pub const POST_TIMEOUT: Duration = Duration::from_secs(600);
/// Bound of the bridge's own exchanges: the replayed `initialize` and
/// `initialized`, the `DELETE` at the end.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait for another thread's re-initialization to finish.
const REINIT_WAIT: Duration = Duration::from_secs(35);
/// The GET stream's backoff between attempts while the gateway is away.
const GET_BACKOFF_MIN: Duration = Duration::from_millis(250);
const GET_BACKOFF_MAX: Duration = Duration::from_secs(5);
/// A GET stream that lasted this long is opened again without a wait.
const GET_STABLE: Duration = Duration::from_secs(1);

/// The session as the gateway knows it.
#[derive(Clone, Default)]
pub struct Session {
    /// `Mcp-Session-Id`, once the gateway gave one.
    pub id: Option<String>,
    /// The version `initialize` negotiated, sent as `MCP-Protocol-Version`.
    pub version: Option<String>,
    /// The client's `initialize` params, replayed on re-initialization;
    /// `None` until the client sent `initialize` (a 2026-07-28 client never does).
    pub init_params: Option<String>,
    /// `notifications/initialized` was sent: the GET stream may open.
    pub initialized: bool,
}

/// Why an exchange failed, as the client's error says it.
#[derive(Debug)]
pub enum PostError {
    /// No HTTP answer: refused, reset, DNS, timeout.
    Unreachable(String),
    /// The gateway answered 404 to a request carrying our session id: it no
    /// longer knows the session (it restarted, or the session expired).
    SessionGone,
    /// Any other non-2xx status.
    Status(u16, String),
    /// The answer could not be read, or ended without the response.
    Answer(String),
}

impl std::fmt::Display for PostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PostError::Unreachable(m) => write!(f, "gateway unreachable: {m}"),
            PostError::SessionGone => write!(f, "the gateway no longer knows the session (HTTP 404)"),
            PostError::Status(401, _) => write!(f, "the gateway refused the token (HTTP 401)"),
            PostError::Status(403, _) => write!(f, "the gateway refused access (HTTP 403)"),
            PostError::Status(s, m) if m.is_empty() => write!(f, "the gateway answered HTTP {s}"),
            PostError::Status(s, m) => write!(f, "the gateway answered HTTP {s}: {m}"),
            PostError::Answer(m) => write!(f, "{m}"),
        }
    }
}

/// The headers one message is sent with, besides the fixed ones.
#[derive(Default)]
pub struct Headers {
    pub session: Option<String>,
    pub version: Option<String>,
    /// 2026-07-28 routing headers: `Mcp-Method`, `Mcp-Name`.
    pub method: Option<String>,
    pub name: Option<String>,
}

/// What a POST's 2xx answer held.
pub struct Posted {
    /// The gateway's `Mcp-Session-Id`, if it sent one.
    pub session: Option<String>,
    /// The response to the request was among the messages.
    pub answered: bool,
}

/// The gateway and the session on it.
pub struct Upstream {
    url: String,
    /// The bearer token, never logged (no `Debug` here).
    token: Option<String>,
    session: Mutex<Session>,
    /// Held while re-initializing, so that one thread does it and the others
    /// wait for its outcome; the count names the replayed requests.
    reinit: Mutex<u64>,
    out: Out,
    /// Never sent on: disconnected when the bridge ends, which cuts the GET
    /// stream's backoff waits short.
    stopped: Receiver<()>,
    /// The agent of the current GET stream, shut when the bridge ends.
    get_agent: Mutex<Option<ureq::Agent>>,
    /// The session the GET stream is open on (`None` while it is not), and
    /// whether the `stdio:get` thread runs at all: a new session waits for
    /// its stream (bounded), so that nothing the gateway sends on it right
    /// after is lost.
    get_open: Mutex<GetState>,
    get_changed: Condvar,
    /// Wakes the GET thread from its backoff wait: a new session exists.
    kick: (Sender<()>, Receiver<()>),
}

#[derive(Default)]
struct GetState {
    running: bool,
    open_on: Option<String>,
}

/// Longest a new session waits for its GET stream to open.
const GET_OPEN_WAIT: Duration = Duration::from_secs(2);

/// An HTTP agent as the bridge uses them: statuses as values, no redirects
/// (one would carry the token elsewhere), a connect timeout, and `global`
/// as the whole-exchange bound (`None` for the GET stream).
pub fn agent(global: Option<Duration>) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .timeout_global(global)
        .max_redirects(0)
        .user_agent(concat!("mcp-sentinel-stdio/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// An agent for POSTs (one per POST thread).
pub fn post_agent() -> ureq::Agent {
    agent(Some(POST_TIMEOUT))
}

impl Upstream {
    pub fn new(url: String, token: Option<String>, out: Out, stopped: Receiver<()>) -> Upstream {
        Upstream {
            url,
            token,
            session: Mutex::new(Session::default()),
            reinit: Mutex::new(0),
            out,
            stopped,
            get_agent: Mutex::new(None),
            get_open: Mutex::new(GetState::default()),
            get_changed: Condvar::new(),
            kick: bounded(1),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn session(&self) -> Session {
        self.session.lock().clone()
    }

    /// The headers of a message of the current session, or, before any
    /// `initialize`, of a 2026-07-28 request (version from its `_meta`).
    pub fn headers_for(&self, msg: &Message) -> Headers {
        let s = self.session();
        if s.init_params.is_some() {
            return Headers { session: s.id, version: s.version, ..Headers::default() };
        }
        let Message::Request { method, params, .. } = msg else {
            return Headers { version: Some(mcp::MODERN_VERSION.to_owned()), ..Headers::default() };
        };
        let version = params
            .as_deref()
            .and_then(|p| get_field(p, "_meta"))
            .and_then(|m| get_str(m, mcp::meta::PROTOCOL_VERSION))
            .filter(|v| mcp::is_modern(v))
            .unwrap_or_else(|| mcp::MODERN_VERSION.to_owned());
        let key = match method.as_str() {
            method::TOOLS_CALL | method::PROMPTS_GET => Some("name"),
            method::RESOURCES_READ => Some("uri"),
            _ => None,
        };
        let name = key.and_then(|k| params.as_deref().and_then(|p| get_str(p, k)));
        Headers { session: None, version: Some(version), method: Some(method.clone()), name }
    }

    /// POSTs one message and hands every message of the answer (JSON or an
    /// SSE stream) to `sink`; reading stops at the response to `expect`.
    pub fn post(
        &self,
        agent: &ureq::Agent,
        body: &[u8],
        h: &Headers,
        expect: Option<&Id>,
        sink: &mut dyn FnMut(&Message, &[u8]),
    ) -> Result<Posted, PostError> {
        let mut req = agent
            .post(&self.url)
            .header("Content-Type", "application/json")
            .header("Accept", "application/json, text/event-stream");
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        if let Some(s) = &h.session {
            req = req.header("Mcp-Session-Id", s.as_str());
        }
        if let Some(v) = &h.version {
            req = req.header("MCP-Protocol-Version", v.as_str());
        }
        if let Some(m) = &h.method {
            req = req.header("Mcp-Method", crate::util::mcp_header_value(m));
        }
        if let Some(n) = &h.name {
            req = req.header("Mcp-Name", crate::util::mcp_header_value(n));
        }
        let resp = req.send(body).map_err(|e| PostError::Unreachable(transport_error(&e)))?;
        let status = resp.status().as_u16();
        let session = resp.headers().get("mcp-session-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let ctype = content_type(&resp);
        if status == 404 && h.session.is_some() {
            return Err(PostError::SessionGone);
        }
        if !(200..300).contains(&status) {
            if let Some(loc) = resp.headers().get("location").and_then(|v| v.to_str().ok()) {
                let why = format!("redirecting to {}; redirects are not followed", crate::util::printable(loc, 200));
                return Err(PostError::Status(status, why));
            }
            // A JSON-RPC error in the body answers the request (a refused
            // version, an unknown method): the client gets it as it is.
            let bytes = resp.into_body().into_with_config().limit(1024 * 1024).read_to_vec().unwrap_or_default();
            if ctype.starts_with("application/json") && expect.is_some() {
                if let Ok(answered) = route_json(&bytes, expect, sink) {
                    if answered {
                        return Ok(Posted { session, answered });
                    }
                }
            }
            return Err(PostError::Status(status, first_line(&bytes)));
        }
        if status == 202 || status == 204 {
            return Ok(Posted { session, answered: false });
        }
        let body = resp.into_body();
        let answered = if ctype.starts_with("text/event-stream") {
            read_events(body.into_reader(), expect, sink).map_err(PostError::Answer)?
        } else {
            let bytes = body
                .into_with_config()
                .limit(MAX_LINE as u64)
                .read_to_vec()
                .map_err(|e| PostError::Answer(format!("reading the gateway's answer failed: {e}")))?;
            if bytes.iter().all(u8::is_ascii_whitespace) {
                false
            } else {
                route_json(&bytes, expect, sink).map_err(PostError::Answer)?
            }
        };
        Ok(Posted { session, answered })
    }

    /// Starts a session: the client's `initialize`, its params remembered
    /// for a replay. The answer goes to the client; the session id and the
    /// negotiated version are kept.
    pub fn initialize(&self, agent: &ureq::Agent, line: &[u8], id: &Id, params: Option<&RawValue>) {
        {
            let mut s = self.session.lock();
            *s = Session {
                init_params: Some(params.map_or_else(|| "{}".to_owned(), |p| p.get().to_owned())),
                ..Session::default()
            };
        }
        let mut version = None;
        let outcome = self.post(agent, line, &Headers::default(), Some(id), &mut |m, bytes| {
            if let Message::Response { id: rid, result } = m {
                if rid == id {
                    version = get_str(result, "protocolVersion");
                }
            }
            self.out.send_json(bytes);
        });
        match outcome {
            Ok(p) => {
                let mut s = self.session.lock();
                s.id = p.session;
                s.version = version;
                if !p.answered {
                    drop(s);
                    self.fail(Some(id.clone()), &PostError::Answer("the gateway did not answer initialize".into()));
                }
            }
            Err(e) => self.fail(Some(id.clone()), &e),
        }
    }

    /// Sends the client's `notifications/initialized`; from then on the GET
    /// stream may open.
    pub fn initialized(&self, agent: &ureq::Agent, line: &[u8]) {
        let h = self.headers_for(&Message::notification(method::INITIALIZED, None));
        match self.post(agent, line, &h, None, &mut |_, bytes| self.out.send_json(bytes)) {
            Ok(_) => self.session.lock().initialized = true,
            Err(e) => log::warn!("sending notifications/initialized: {e}"),
        }
    }

    /// Forwards one client message other than `initialize` and
    /// `initialized`, and the answer's messages back. A 404 for the session
    /// re-initializes it and sends the message again, once; a failure
    /// answers a request with an error, so the client never waits in vain,
    /// unless `cancelled()` says the client cancelled it (then it gets no
    /// answer, as MCP cancellation says).
    pub fn forward(&self, agent: &ureq::Agent, line: &[u8], msg: &Message, cancelled: &dyn Fn() -> bool) {
        let expect = match msg {
            Message::Request { id, .. } => Some(id),
            _ => None,
        };
        // The client's answer to a request of the old session means
        // nothing to a new one: not sent again.
        let retry = !matches!(msg, Message::Response { .. } | Message::Error { .. });
        let mut again = retry;
        loop {
            let h = self.headers_for(msg);
            let stale = h.session.clone();
            match self.post(agent, line, &h, expect, &mut |_, bytes| self.out.send_json(bytes)) {
                Ok(_) | Err(_) if cancelled() => return log::debug!("a request was cancelled by the client"),
                Ok(p) if expect.is_some() && !p.answered => {
                    let e = PostError::Answer("the gateway ended its answer without the response".into());
                    return self.fail(expect.cloned(), &e);
                }
                Ok(_) => return,
                Err(PostError::SessionGone) if again => {
                    again = false;
                    if let Err(e) = self.reinit(stale.as_deref(), false) {
                        return self.fail(expect.cloned(), &e);
                    }
                }
                Err(e) => return self.fail(expect.cloned(), &e),
            }
        }
    }

    /// An exchange failed: one line on stderr, and an error answer to the
    /// request (if it was one) so that the client does not wait for it.
    fn fail(&self, id: Option<Id>, e: &PostError) {
        log::warn!("{e}");
        if let Some(id) = id {
            self.out.error(Some(id), crate::codec::code::BACKEND_UNAVAILABLE, format!("mcp-sentinel stdio: {e}"));
        }
    }

    /// Replays the client's `initialize` and `initialized` for a new
    /// session, unless another thread already replaced session `stale`.
    /// The answers stay here: the client knows its session as it was.
    /// `from_get`: called by the GET thread, which opens its stream itself.
    pub fn reinit(&self, stale: Option<&str>, from_get: bool) -> Result<(), PostError> {
        let Some(mut n) = self.reinit.try_lock_for(REINIT_WAIT) else {
            return Err(PostError::Answer("re-initializing the session took too long".into()));
        };
        let (params, current) = {
            let s = self.session.lock();
            (s.init_params.clone(), s.id.clone())
        };
        if current.as_deref() != stale {
            // Another thread made the new session: its stream, as below.
            drop(n);
            if let (false, Some(sid)) = (from_get, current) {
                self.wait_get_open(&sid);
            }
            return Ok(());
        }
        let Some(params) = params else {
            return Err(PostError::SessionGone);
        };
        *n += 1;
        let id = Id::Str(format!("mcp-sentinel-stdio-reinit-{}", *n).into());
        let raw: Option<Raw> = RawValue::from_string(params).ok();
        let body = Message::Request { id: id.clone(), method: method::INITIALIZE.to_owned(), params: raw }.to_bytes();
        let agent = agent(Some(CONTROL_TIMEOUT));
        let mut answer: Result<Option<String>, String> = Err("no answer".into());
        let posted = self.post(&agent, &body, &Headers::default(), Some(&id), &mut |m, _| match m {
            Message::Response { id: rid, result } if *rid == id => answer = Ok(get_str(result, "protocolVersion")),
            Message::Error { id: Some(rid), error } if *rid == id => answer = Err(error.to_string()),
            _ => {}
        })?;
        let version =
            answer.map_err(|e| PostError::Answer(format!("the gateway refused the replayed initialize: {e}")))?;
        let h = Headers { session: posted.session.clone(), version: version.clone(), ..Headers::default() };
        let note = Message::notification(method::INITIALIZED, None).to_bytes();
        self.post(&agent, &note, &h, None, &mut |_, _| {})?;
        let sid = posted.session.clone();
        {
            let mut s = self.session.lock();
            s.id = posted.session;
            s.version = version;
            s.initialized = true;
        }
        log::info!("the gateway had lost the session (HTTP 404); initialized a new one");
        // Not held while waiting: the GET thread may be about to ask for it.
        drop(n);
        // The GET thread itself re-opens at once after its own replay.
        if !from_get {
            let _ = self.kick.0.try_send(());
            if let Some(sid) = sid {
                self.wait_get_open(&sid);
            }
        }
        Ok(())
    }

    /// Waits (at most 2 s) until the GET stream is open on session `sid`,
    /// if the `stdio:get` thread runs.
    pub fn wait_get_open(&self, sid: &str) {
        let deadline = std::time::Instant::now() + GET_OPEN_WAIT;
        let mut g = self.get_open.lock();
        while g.running && g.open_on.as_deref() != Some(sid) {
            if self.get_changed.wait_until(&mut g, deadline).timed_out() {
                log::debug!("the GET stream did not open within {}s", GET_OPEN_WAIT.as_secs());
                return;
            }
        }
    }

    fn set_get(&self, f: impl FnOnce(&mut GetState)) {
        f(&mut self.get_open.lock());
        self.get_changed.notify_all();
    }

    /// Starts the GET stream's thread (`stdio:get`): requests and
    /// notifications of the gateway outside any call, to the client.
    pub fn start_get(self: &std::sync::Arc<Self>) -> std::io::Result<()> {
        // Marked before the thread runs, so that a wait for the stream
        // that begins now knows there will be one.
        self.set_get(|g| g.running = true);
        let up = self.clone();
        let spawned = crate::thread::spawn("stdio:get".to_owned(), move || {
            up.get_loop();
            up.set_get(|g| *g = GetState::default());
            Ok(())
        });
        if spawned.is_err() {
            self.set_get(|g| *g = GetState::default());
        }
        spawned.map(drop)
    }

    /// The GET stream, opened again while the gateway is away (backoff up
    /// to 5 s, cut short by a new session); a 404 re-initializes the
    /// session; a 405 (no stream offered) ends it for good.
    fn get_loop(&self) {
        let mut backoff = GET_BACKOFF_MIN;
        loop {
            let s = self.session();
            let Some(sid) = s.id.clone() else {
                log::debug!("no session id: no GET stream");
                return;
            };
            let agent = agent(None);
            *self.get_agent.lock() = Some(agent.clone());
            if self.stopping() {
                return;
            }
            let mut req = agent.get(&self.url).header("Accept", "text/event-stream").header("Mcp-Session-Id", &sid);
            if let Some(v) = &s.version {
                req = req.header("MCP-Protocol-Version", v.as_str());
            }
            if let Some(t) = &self.token {
                req = req.header("Authorization", format!("Bearer {t}"));
            }
            match req.call() {
                Ok(r) if r.status() == 200 => {
                    let opened = std::time::Instant::now();
                    self.set_get(|g| g.open_on = Some(sid.clone()));
                    let sink = &mut |_: &Message, bytes: &[u8]| self.out.send_json(bytes);
                    if let Err(e) = read_events(r.into_body().into_reader(), None, sink) {
                        log::debug!("GET stream: {e}");
                    }
                    self.set_get(|g| g.open_on = None);
                    // Ended by the gateway: open it again at once, unless
                    // the gateway is gone (then the next attempt fails and
                    // waits) or ends every stream as soon as it opens.
                    if opened.elapsed() >= GET_STABLE {
                        backoff = GET_BACKOFF_MIN;
                        continue;
                    }
                }
                Ok(r) if r.status() == 404 => {
                    if let Err(e) = self.reinit(Some(&sid), true) {
                        log::warn!("re-initializing after the GET stream's 404: {e}");
                    } else {
                        continue;
                    }
                }
                Ok(r) if r.status() == 405 => {
                    log::debug!("the gateway offers no GET stream (HTTP 405)");
                    return;
                }
                Ok(r) => log::warn!("GET stream: the gateway answered HTTP {}", r.status()),
                Err(e) if self.stopping() => return log::debug!("GET stream ended: {e}"),
                Err(e) => log::debug!("GET stream: {}", transport_error(&e)),
            }
            // Until the backoff passes, the bridge ends, or a new session
            // (made by a POST thread) wants its stream now.
            select! {
                recv(self.stopped) -> _ => return,
                recv(self.kick.1) -> _ => backoff = GET_BACKOFF_MIN,
                default(backoff) => backoff = (backoff * 2).min(GET_BACKOFF_MAX),
            }
        }
    }

    fn stopping(&self) -> bool {
        matches!(self.stopped.try_recv(), Err(crossbeam_channel::TryRecvError::Disconnected))
    }

    /// At the end: shut the GET stream and end the session (best effort, bounded).
    pub fn close(&self) {
        if let Some(a) = self.get_agent.lock().take() {
            a.shutdown();
        }
        let Some(sid) = self.session.lock().id.take() else { return };
        let mut req = agent(Some(Duration::from_secs(2))).delete(&self.url).header("Mcp-Session-Id", &sid);
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let _ = req.call();
    }
}

fn content_type(resp: &ureq::http::Response<ureq::Body>) -> String {
    resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").trim().to_ascii_lowercase()
}

/// A ureq error as one line, its kind first.
fn transport_error(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
        ureq::Error::Timeout(t) => format!("timed out ({t})"),
        other => other.to_string(),
    }
}

/// The start of a body, for an error line.
fn first_line(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    crate::util::printable(text.lines().next().unwrap_or("").trim(), 200)
}

/// A JSON body: one message or a batch of them, each to `sink`. Returns
/// whether the response to `expect` was among them.
fn route_json(bytes: &[u8], expect: Option<&Id>, sink: &mut dyn FnMut(&Message, &[u8])) -> Result<bool, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("the gateway's answer is not UTF-8: {e}"))?;
    let raw: &RawValue = serde_json::from_str(text).map_err(|e| format!("the gateway's answer is not JSON: {e}"))?;
    let items: Vec<&RawValue> = if raw.get().starts_with('[') {
        serde_json::from_str(raw.get()).map_err(|e| format!("the gateway's answer is not JSON: {e}"))?
    } else {
        vec![raw]
    };
    let mut answered = false;
    for item in items {
        answered |= route_one(item.get().as_bytes(), expect, sink);
    }
    Ok(answered)
}

/// One message from the gateway to `sink`; whether it answers `expect`.
fn route_one(bytes: &[u8], expect: Option<&Id>, sink: &mut dyn FnMut(&Message, &[u8])) -> bool {
    match jsonrpc::parse_one(bytes) {
        Ok(m) => {
            let answers = match (&m, expect) {
                (Message::Response { id, .. } | Message::Error { id: Some(id), .. }, Some(want)) => id == want,
                _ => false,
            };
            sink(&m, bytes);
            answers
        }
        Err((_, e)) => {
            log::warn!("the gateway sent something that is not JSON-RPC ({e}); dropped");
            false
        }
    }
}

/// Reads an SSE stream to its end, or to the response to `expect`; every
/// `message` event to `sink`. Returns whether the response came.
fn read_events(
    mut body: impl Read,
    expect: Option<&Id>,
    sink: &mut dyn FnMut(&Message, &[u8]),
) -> Result<bool, String> {
    let mut dec = SseDecoder::with_limits(MAX_LINE, MAX_LINE);
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => return Ok(false),
            Ok(n) => n,
            Err(e) if expect.is_some() => return Err(format!("the gateway's answer broke off: {e}")),
            Err(_) => return Ok(false),
        };
        dec.push(&buf[..n]);
        loop {
            match dec.next_event() {
                Ok(Some(ev)) if ev.event == "message" && !ev.data.trim().is_empty() => {
                    if route_one(ev.data.as_bytes(), expect, sink) {
                        return Ok(true);
                    }
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => log::warn!("the gateway's event stream: {e}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream() -> Upstream {
        let (_tx, rx) = crossbeam_channel::bounded(0);
        Upstream::new("http://127.0.0.1:1/mcp".into(), None, Out::start(std::io::sink()).unwrap(), rx)
    }

    fn parse(line: &str) -> Message {
        jsonrpc::parse_one(line.as_bytes()).unwrap()
    }

    #[test]
    fn modern_headers_before_any_initialize() {
        let up = upstream();
        let m = parse(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{}}}"#);
        let h = up.headers_for(&m);
        assert_eq!(h.version.as_deref(), Some("2026-07-28"));
        assert_eq!(h.method.as_deref(), Some("tools/call"));
        assert_eq!(h.name.as_deref(), Some("echo"));
        assert_eq!(h.session, None);
        let m = parse(r#"{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":"demo://a"}}"#);
        assert_eq!(up.headers_for(&m).name.as_deref(), Some("demo://a"));
        let m = parse(r#"{"jsonrpc":"2.0","id":3,"method":"tools/list"}"#);
        assert_eq!(up.headers_for(&m).name, None);
    }

    #[test]
    fn session_headers_after_initialize() {
        let up = upstream();
        *up.session.lock() = Session {
            id: Some("abc".into()),
            version: Some("2025-11-25".into()),
            init_params: Some("{}".into()),
            initialized: true,
        };
        let h = up.headers_for(&parse(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#));
        assert_eq!((h.session.as_deref(), h.version.as_deref(), h.method), (Some("abc"), Some("2025-11-25"), None));
    }

    #[test]
    fn sse_answer_ends_at_the_response() {
        let stream = "id: 1\ndata: \n\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{}}\n\n\
                      event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":5,\"result\":{}}\n\nevent: message\ndata: {\"late\":1}\n\n";
        let mut seen = Vec::new();
        let got = read_events(stream.as_bytes(), Some(&Id::Num(5)), &mut |_, b| seen.push(b.to_vec())).unwrap();
        assert!(got);
        assert_eq!(seen.len(), 2);
        let got = read_events(&stream.as_bytes()[..60], Some(&Id::Num(5)), &mut |_, _| {}).unwrap();
        assert!(!got);
    }

    #[test]
    fn json_answers_and_batches() {
        let mut n = 0;
        let body = br#"[{"jsonrpc":"2.0","method":"x"},{"jsonrpc":"2.0","id":"a","error":{"code":1,"message":"m"}}]"#;
        assert_eq!(route_json(body, Some(&Id::Str("a".into())), &mut |_, _| n += 1), Ok(true));
        assert_eq!(n, 2);
        assert!(route_json(b"nope", None, &mut |_, _| {}).is_err());
    }
}
