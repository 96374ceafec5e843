//! `mcp-sentinel stdio`: a bridge for MCP clients that can only launch
//! stdio servers (Claude Desktop). MCP on stdin/stdout (one JSON-RPC
//! message per line), forwarded to a gateway's Streamable HTTP endpoint.
//!
//! Threads: main reads stdin (lines bounded to 64 MiB) and sends
//! `initialize` and `notifications/initialized` itself, in order; every
//! other message goes through a `bounded(64)` queue to [`POSTERS`]
//! `stdio:post<i>` threads, so that a slow tool call does not hold up a
//! ping; `stdio:get` holds the GET stream once the session is initialized
//! (requests and notifications of the gateway outside any call);
//! `stdio:out` writes stdout (`out.rs`). The session, its re-initialization
//! after a gateway restart and the HTTP exchanges are in `upstream.rs`.
//!
//! A client speaking 2026-07-28 sends no `initialize`: its requests go out
//! without a session, with `MCP-Protocol-Version` and the `Mcp-Method` and
//! `Mcp-Name` headers, and its `notifications/cancelled` closes the POST of
//! the request it names (how 2026-07-28 cancels over HTTP); see
//! `docs/stdio-bridge.md` for what is not bridged.

mod out;
mod upstream;

use std::io::BufReader;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver};
use parking_lot::Mutex;

use crate::client::{read_token, TokenSource};
use crate::codec::mcp::method;
use crate::codec::{code, jsonrpc, Id, Message};
use crate::exit::{Fatal, Kind};
use crate::util::{read_line_bounded, LineRead};
use out::Out;
use upstream::{Upstream, MAX_LINE};

/// Concurrent POSTs to the gateway.
pub const POSTERS: usize = 4;
/// Client messages waiting for a POST thread; a full queue stops the
/// reading of stdin until one is free.
const QUEUE: usize = 64;

/// What `mcp-sentinel stdio` was given (`cli` parses it; no I/O there).
#[derive(Clone, Debug, PartialEq)]
pub struct StdioArgs {
    /// The gateway's MCP endpoint, e.g. `http://127.0.0.1:9000/mcp`.
    pub url: String,
    pub token: TokenSource,
    /// A view: `/<view>` is appended to the URL's path.
    pub view: Option<String>,
    pub log_level: Option<String>,
}

/// Why the bridge could not run.
#[derive(Debug)]
pub enum BridgeError {
    /// The token source gives no token (variable unset, file unreadable).
    Token(String),
    /// A thread could not be started.
    Start(String),
}

impl std::fmt::Display for BridgeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BridgeError::Token(m) => write!(f, "stdio: {m}"),
            BridgeError::Start(m) => write!(f, "stdio: {m}"),
        }
    }
}

impl std::error::Error for BridgeError {}

impl Fatal for BridgeError {
    fn kind(&self) -> Kind {
        match self {
            BridgeError::Token(_) => Kind::Config,
            BridgeError::Start(_) => Kind::Failure,
        }
    }
}

/// The URL to POST to: `url`, with `/<view>` appended to its path.
pub fn endpoint(url: &str, view: Option<&str>) -> String {
    let Some(view) = view else { return url.to_owned() };
    let cut = url.find(['?', '#']).unwrap_or(url.len());
    let (path, rest) = url.split_at(cut);
    format!("{}/{view}{rest}", path.trim_end_matches('/'))
}

/// Log lines on stderr, one per message, named so that a client's log of
/// its server's stderr says who wrote them.
fn init_logging(level: Option<&str>) {
    use std::io::Write;
    let mut b = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"));
    if let Some(l) = level {
        b.parse_filters(l);
    }
    // The HTTP and TLS crates dump requests, headers included, at debug
    // and trace: the token must never reach the log.
    for noisy in ["ureq", "ureq_proto", "rustls"] {
        b.filter_module(noisy, log::LevelFilter::Info);
    }
    b.target(env_logger::Target::Stderr)
        .format(|f, r| writeln!(f, "mcp-sentinel stdio: {}: {}", r.level().as_str().to_ascii_lowercase(), r.args()));
    let _ = b.try_init();
}

/// Runs the bridge until stdin ends (0), or fails before it starts.
pub fn run(args: &StdioArgs) -> Result<(), BridgeError> {
    init_logging(args.log_level.as_deref());
    let token = read_token(&args.token).map_err(BridgeError::Token)?;
    if let Some(t) = &token {
        if !t.bytes().all(|b| (0x21..0x7f).contains(&b)) {
            return Err(BridgeError::Token("the token holds characters an HTTP header cannot carry".into()));
        }
    }
    let url = endpoint(&args.url, args.view.as_deref());
    let out = Out::start(std::io::stdout()).map_err(|e| BridgeError::Start(format!("cannot start a thread: {e}")))?;
    // Never sent on: dropped at the end, which ends the GET stream's waits.
    let (stop, stopped) = bounded::<()>(0);
    let up = Arc::new(Upstream::new(url, token, out.clone(), stopped));
    log::info!("bridging stdio to {}", crate::config::redact_url(up.url()));
    let (queue, jobs) = bounded::<(Vec<u8>, Message)>(QUEUE);
    let posters = Arc::new(Posters::new());
    for i in 0..POSTERS {
        let (up, jobs, posters) = (up.clone(), jobs.clone(), posters.clone());
        crate::thread::spawn(format!("stdio:post{i}"), move || {
            post_loop(&up, &jobs, &posters, i);
            Ok(())
        })
        .map_err(|e| BridgeError::Start(format!("cannot start a thread: {e}")))?;
    }
    let control = upstream::post_agent();
    let mut get_started = false;
    let mut stdin = BufReader::with_capacity(64 * 1024, std::io::stdin().lock());
    let mut line = Vec::new();
    loop {
        line.clear();
        match read_line_bounded(&mut stdin, &mut line, MAX_LINE) {
            Ok(LineRead::Line) => {}
            Ok(LineRead::Eof) => break,
            Ok(LineRead::TooLong) => {
                log::warn!("the client sent a line longer than {MAX_LINE} bytes; dropped");
                out.error(None, code::PARSE_ERROR, "Parse error: line longer than 64 MiB");
                continue;
            }
            Err(e) => {
                log::warn!("reading stdin: {e}");
                break;
            }
        }
        let text = line.trim_ascii();
        if text.is_empty() {
            continue;
        }
        if text.starts_with(b"[") {
            out.error(None, code::INVALID_REQUEST, "Invalid Request: batches are not supported over stdio");
            continue;
        }
        let msg = match jsonrpc::parse_one(text) {
            Ok(m) => m,
            Err((id, e)) => {
                log::warn!("the client sent a message that is not JSON-RPC: {e}");
                out.send(&Message::error(id, e));
                continue;
            }
        };
        match &msg {
            // In order, on this thread: the client waits for the answer to
            // initialize before it sends anything else, and initialized
            // must reach the gateway before the requests that follow it.
            Message::Request { id, method: m, params } if m == method::INITIALIZE => {
                up.initialize(&control, text, id, params.as_deref());
            }
            Message::Notification { method: m, .. } if m == method::INITIALIZED => {
                up.initialized(&control, text);
                if let (false, Some(sid)) = (get_started, up.session().id) {
                    get_started = true;
                    match up.start_get() {
                        // What the gateway sends on the stream right away
                        // (a list change) must not be lost: the client's next
                        // message waits for it, at most 2 s.
                        Ok(_) => up.wait_get_open(&sid),
                        Err(e) => log::warn!("no GET stream: cannot start a thread: {e}"),
                    }
                }
            }
            // 2026-07-28 (no initialize): cancelling is closing the request.
            Message::Notification { method: m, params }
                if m == method::CANCELLED && up.session().init_params.is_none() =>
            {
                match params.as_deref().and_then(|p| jsonrpc::get_field(p, "requestId")).and_then(Id::from_raw) {
                    Some(id) => posters.cancel(&id),
                    None => log::warn!("the client cancelled a request without naming it (no requestId)"),
                }
            }
            _ => {
                if queue.send((text.to_vec(), msg)).is_err() {
                    break;
                }
            }
        }
    }
    // stdin ended: the client is gone or asks the bridge to stop.
    drop(queue);
    drop(stop);
    up.close();
    out.flush(Duration::from_secs(2));
    Ok(())
}

fn post_loop(up: &Upstream, jobs: &Receiver<(Vec<u8>, Message)>, posters: &Posters, i: usize) {
    while let Ok((line, msg)) = jobs.recv() {
        let request = match &msg {
            Message::Request { id, .. } => Some(id.clone()),
            _ => None,
        };
        let agent = posters.begin(i, request);
        up.forward(&agent, &line, &msg, &|| posters.slots[i].lock().aborted);
        posters.slots[i].lock().request = None;
    }
}

/// One POST thread's agent and the client request it is sending. Each
/// thread has its own agent so that shutting it ends that exchange only.
struct Slot {
    agent: ureq::Agent,
    request: Option<Id>,
    /// The request was cancelled: its agent was shut, and is replaced
    /// before the next POST.
    aborted: bool,
}

/// The POST threads' slots, where a cancellation finds its request.
struct Posters {
    slots: Vec<Mutex<Slot>>,
}

impl Posters {
    fn new() -> Posters {
        let slot = || Mutex::new(Slot { agent: upstream::post_agent(), request: None, aborted: false });
        Posters { slots: (0..POSTERS).map(|_| slot()).collect() }
    }

    /// Thread `i` starts sending `request`: the agent to send it with.
    fn begin(&self, i: usize, request: Option<Id>) -> ureq::Agent {
        let mut s = self.slots[i].lock();
        if std::mem::take(&mut s.aborted) {
            s.agent = upstream::post_agent();
        }
        s.request = request;
        s.agent.clone()
    }

    /// Ends the exchange of request `id` if a thread is sending it (one
    /// still queued goes out; the gateway's answer then reaches the client).
    fn cancel(&self, id: &Id) {
        for slot in &self.slots {
            let mut s = slot.lock();
            if s.request.as_ref() == Some(id) {
                s.aborted = true;
                s.agent.clone().shutdown();
                return;
            }
        }
        log::debug!("the client cancelled request {id}, which is not in flight");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn view_is_appended_to_the_path() {
        assert_eq!(endpoint("http://h:9000/mcp", None), "http://h:9000/mcp");
        assert_eq!(endpoint("http://h:9000/mcp", Some("ops")), "http://h:9000/mcp/ops");
        assert_eq!(endpoint("http://h:9000/mcp/", Some("ops")), "http://h:9000/mcp/ops");
        assert_eq!(endpoint("http://h:9000/mcp?x=1", Some("ops")), "http://h:9000/mcp/ops?x=1");
    }
}
