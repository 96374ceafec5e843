//! The data plane on tiny_http: a fixed pool of `mcp-http:<i>` worker
//! threads routes `GET /sse` + `POST /messages/` (legacy HTTP+SSE) and
//! `POST/GET/DELETE /mcp` (Streamable HTTP). Long-lived streams get their
//! own small-stack thread (`sse:<session>`), capped by `max_sessions`, so a
//! worker is never pinned by a stream. Shared checks live here: Origin,
//! content type, bounded bodies, JSON error replies.

pub mod dispatch;
pub mod sse;
pub mod streamable;

use crate::codec::mcp::method;
use crate::codec::{ErrorObj, Message};
use crate::runtime::admin::Stoppable;
use crate::runtime::Runtime;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tiny_http::{Header, Request, Response, Server};

/// Worker threads answering ordinary requests. A Streamable HTTP call
/// holds one while its backend works, so this bounds concurrent calls on
/// that transport (legacy SSE calls do not hold a worker).
pub const WORKERS: usize = 32;

pub struct Listener {
    server: Arc<Server>,
    stopping: Arc<AtomicBool>,
    pub addr: SocketAddr,
}

impl Stoppable for Listener {
    fn stop(&self) {
        self.stopping.store(true, Ordering::Relaxed);
        // unblock() releases one waiting recv() per call.
        for _ in 0..WORKERS {
            self.server.unblock();
        }
    }
}

/// Binds the data-plane listener and starts its workers. `manage`, when
/// given, is served on it too (`manage.listen` equal to `server.listen`);
/// it is built once the port is known.
pub fn start(
    rt: Arc<Runtime>,
    listen: &str,
    manage: Option<&dyn Fn(u16) -> Result<Arc<crate::manage::api::Api>, String>>,
) -> Result<Listener, String> {
    let server = Server::http(listen).map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let addr = server.server_addr().to_ip().ok_or_else(|| format!("{listen} is not an IP address"))?;
    let manage = match manage {
        Some(build) => Some(build(addr.port())?),
        None => None,
    };
    let server = Arc::new(server);
    let stopping = Arc::new(AtomicBool::new(false));
    for i in 0..WORKERS {
        let (srv, rt, stop, manage) = (server.clone(), rt.clone(), stopping.clone(), manage.clone());
        crate::thread::spawn(format!("mcp-http:{i}"), move || {
            while !stop.load(Ordering::Relaxed) {
                match srv.recv() {
                    Ok(req) => route(&rt, manage.as_deref(), req),
                    Err(e) => {
                        if !stop.load(Ordering::Relaxed) {
                            log::warn!("accept failed: {e}");
                        }
                        break;
                    }
                }
            }
            Ok(())
        })
        .map_err(|e| format!("cannot start worker threads: {e}"))?;
    }
    rt.set_mcp_addr(addr);
    Ok(Listener { server, stopping, addr })
}

fn route(rt: &Arc<Runtime>, manage: Option<&crate::manage::api::Api>, req: Request) {
    let path = req.url().split('?').next().unwrap_or("").to_owned();
    // Keep one panic (a bug) confined to this request.
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match path.as_str() {
        p if manage.is_some() && (p.starts_with("/manage/") || p == "/metrics") => {
            if let Some(api) = manage {
                crate::manage::tiny::serve(api, req);
            }
        }
        "/sse" => sse::get_stream(rt, req),
        "/messages/" | "/messages" => sse::post_message(rt, req),
        "/mcp" | "/mcp/" => streamable::handle(rt, req),
        _ => {
            let _ = req.respond(json_error(
                404,
                None,
                ErrorObj::new(-32601, format!("no MCP endpoint at {path}; use /sse or /mcp")),
            ));
        }
    }));
    if r.is_err() {
        log::error!("request handler for {path} panicked");
    }
}

/// Tells every initialized session which lists changed.
pub fn notify_list_changed(rt: &Runtime, tools: bool, resources: bool, prompts: bool) {
    let mut msgs = Vec::new();
    for (changed, m) in
        [(tools, method::TOOLS_CHANGED), (resources, method::RESOURCES_CHANGED), (prompts, method::PROMPTS_CHANGED)]
    {
        if changed {
            msgs.push(Message::notification(m, None).to_bytes());
        }
    }
    for s in rt.sessions.all() {
        for m in &msgs {
            s.notify(m.clone());
        }
    }
}

pub fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers().iter().find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name)).map(|h| h.value.as_str())
}

pub fn query_param<'a>(url: &'a str, key: &str) -> Option<&'a str> {
    let q = url.split_once('?')?.1;
    q.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == key).then_some(v)
    })
}

pub type HttpResponse = Response<std::io::Cursor<Vec<u8>>>;

/// Adds a header; a value that is not valid header text is left out (we
/// only produce ASCII names and values, so this never happens in practice).
pub fn with_header(r: HttpResponse, name: &str, value: &str) -> HttpResponse {
    match Header::from_bytes(name.as_bytes(), value.as_bytes()) {
        Ok(h) => r.with_header(h),
        Err(()) => r,
    }
}

pub fn json_response(status: u16, body: Vec<u8>) -> HttpResponse {
    with_header(Response::from_data(body).with_status_code(status), "Content-Type", "application/json")
}

/// An HTTP error whose body is an id-less (or id-bearing) JSON-RPC error.
pub fn json_error(status: u16, id: Option<crate::codec::Id>, err: ErrorObj) -> HttpResponse {
    json_response(status, Message::error(id, err).to_bytes())
}

pub fn empty(status: u16) -> HttpResponse {
    Response::from_data(Vec::new()).with_status_code(status)
}

/// Origin check (MCP transports: a MUST since 2024-11-05; 403 since
/// 2025-11-25). No Origin (non-browser clients) passes. Loopback origins
/// pass; others only if listed in `server.allowed_origins` ("*" allows all).
pub fn origin_allowed(allowed: &[String], origin: Option<&str>) -> bool {
    let Some(o) = origin else { return true };
    if allowed.iter().any(|a| a == "*" || a.eq_ignore_ascii_case(o)) {
        return true;
    }
    let Some(rest) = o.strip_prefix("http://").or_else(|| o.strip_prefix("https://")) else {
        return false;
    };
    let host = if let Some(v6) = rest.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        rest.split(':').next().unwrap_or("")
    };
    host.eq_ignore_ascii_case("localhost") || host == "::1" || host.starts_with("127.")
}

/// Checks Origin and answers 403 itself when refused.
pub fn check_origin(rt: &Runtime, req: Request) -> Option<Request> {
    let cfg = rt.config();
    if origin_allowed(&cfg.server.allowed_origins, header(&req, "Origin")) {
        return Some(req);
    }
    let origin = header(&req, "Origin").unwrap_or("").to_owned();
    log::warn!("refused request from origin {origin:?}");
    let _ = req.respond(json_error(
        403,
        None,
        ErrorObj::new(crate::codec::code::INVALID_REQUEST, format!("Origin {origin:?} is not allowed")),
    ));
    None
}

/// Why a body could not be read.
pub enum BodyError {
    TooLarge(usize),
    WrongType(String),
    Io(std::io::Error),
}

/// Reads a JSON request body, bounded by `server.max_body_bytes`.
pub fn read_json_body(req: &mut Request, max: usize) -> Result<Vec<u8>, BodyError> {
    let ctype = header(req, "Content-Type").unwrap_or("").to_ascii_lowercase();
    if !ctype.starts_with("application/json") {
        return Err(BodyError::WrongType(ctype));
    }
    if req.body_length().is_some_and(|n| n > max) {
        return Err(BodyError::TooLarge(max));
    }
    let mut body = Vec::with_capacity(req.body_length().unwrap_or(1024).min(max));
    req.as_reader().take(max as u64 + 1).read_to_end(&mut body).map_err(BodyError::Io)?;
    if body.len() > max {
        return Err(BodyError::TooLarge(max));
    }
    Ok(body)
}

/// Answers a body error (415, 413 or 400).
pub fn respond_body_error(req: Request, e: BodyError) {
    let (status, msg) = match e {
        BodyError::TooLarge(max) => (413, format!("request body exceeds {max} bytes")),
        BodyError::WrongType(t) => (415, format!("Content-Type must be application/json, not {t:?}")),
        BodyError::Io(e) => (400, format!("cannot read request body: {e}")),
    };
    let _ = req.respond(json_error(status, None, ErrorObj::new(crate::codec::code::INVALID_REQUEST, msg)));
}

/// A `text/event-stream` response written by hand with chunked framing and
/// a flush per event (tiny_http would buffer it: see PITFALLS 1). Dropping
/// it without `finish` just closes the connection.
pub struct SseWriter {
    w: Box<dyn Write + Send>,
    buf: Vec<u8>,
}

impl SseWriter {
    /// Takes over the connection and writes the status line and headers.
    pub fn start(req: Request, extra_headers: &[(&str, &str)]) -> std::io::Result<SseWriter> {
        let mut w = req.into_writer();
        let mut head = String::from(
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nX-Accel-Buffering: no\r\nTransfer-Encoding: chunked\r\n",
        );
        for (k, v) in extra_headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        w.write_all(head.as_bytes())?;
        w.flush()?;
        Ok(SseWriter { w, buf: Vec::with_capacity(4096) })
    }

    fn chunk(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        write!(self.w, "{:x}\r\n", self.buf.len())?;
        self.w.write_all(&self.buf)?;
        self.w.write_all(b"\r\n")?;
        self.buf.clear();
        self.w.flush()
    }

    pub fn event(&mut self, event: Option<&str>, id: Option<&str>, data: &[u8]) -> std::io::Result<()> {
        let text = String::from_utf8_lossy(data);
        crate::codec::sse::encode_event(&mut self.buf, event, id, &text);
        self.chunk()
    }

    /// Already-encoded SSE text, sent as one chunk.
    pub fn raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.buf.extend_from_slice(bytes);
        self.chunk()
    }

    pub fn comment(&mut self, text: &str) -> std::io::Result<()> {
        crate::codec::sse::encode_comment(&mut self.buf, text);
        self.chunk()
    }

    /// Ends the body cleanly (the connection may be reused).
    pub fn finish(mut self) -> std::io::Result<()> {
        self.w.write_all(b"0\r\n\r\n")?;
        self.w.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        let none: Vec<String> = vec![];
        assert!(origin_allowed(&none, None));
        assert!(origin_allowed(&none, Some("http://localhost:3000")));
        assert!(origin_allowed(&none, Some("http://127.0.0.1")));
        assert!(origin_allowed(&none, Some("https://[::1]:8080")));
        assert!(!origin_allowed(&none, Some("https://evil.example")));
        assert!(!origin_allowed(&none, Some("http://localhost.evil.example")));
        assert!(!origin_allowed(&none, Some("null")));
        let list = vec!["https://app.example".to_owned()];
        assert!(origin_allowed(&list, Some("https://app.example")));
        assert!(!origin_allowed(&list, Some("https://other.example")));
        assert!(origin_allowed(&["*".to_owned()], Some("https://x")));
    }

    #[test]
    fn query_params() {
        assert_eq!(query_param("/messages/?session_id=ab&x=1", "session_id"), Some("ab"));
        assert_eq!(query_param("/messages/?x=1&session_id=cd", "session_id"), Some("cd"));
        assert_eq!(query_param("/messages/", "session_id"), None);
    }
}
