//! MCP client sessions over the gateway's two transports, one request at a
//! time, on the calling load thread:
//!
//! - [`Streamable`]: `POST /mcp` on a keep-alive connection (reopened when
//!   the gateway closes it or a wait fails), `Mcp-Session-Id` after
//!   `initialize`, answers as JSON or as an SSE response body, `DELETE /mcp`.
//! - [`Sse`]: `GET /sse` held open on one connection, `POST /messages/` on a
//!   second keep-alive one, answers read from the stream.
//!
//! Every request has a deadline (the session's timeout); waiting past it is
//! [`Fail::Timeout`], which callers count as a hang. The pure part, deciding
//! what an incoming message or response body means for the call waiting on
//! it, is [`classify_incoming`] and [`answer_from_body`], unit-tested below.

use crate::http::{truncate, Conn, Fail, Head};
use mcp_sentinel::codec::jsonrpc::{self, parse_one, Id, Message};
use mcp_sentinel::codec::sse::{SseDecoder, SseEvent};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The revision the load generator asks for (served over both transports).
pub const PROTOCOL: &str = "2025-06-18";
/// Bound on one SSE line (a 100 KB echo answer is one `data:` line).
const MAX_SSE_LINE: usize = 8 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Streamable,
    Sse,
}

impl Transport {
    pub fn name(self) -> &'static str {
        match self {
            Transport::Streamable => "streamable",
            Transport::Sse => "sse",
        }
    }
}

/// How one request ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// A JSON-RPC result (`Null` for an accepted notification or POST).
    Ok(Value),
    /// A JSON-RPC error answer.
    Rpc { code: i64, message: String },
    /// An HTTP status other than the one expected.
    Http { status: u16, body: String },
    /// No answer: timeout, closed connection, I/O or protocol error.
    Fail(Fail),
}

impl Outcome {
    pub fn is_ok(&self) -> bool {
        matches!(self, Outcome::Ok(_))
    }

    /// A failure after which an SSE session's stream cannot be trusted.
    pub fn broke_connection(&self) -> bool {
        matches!(self, Outcome::Fail(_))
    }
}

fn http_error(head: &Head, body: &[u8]) -> Outcome {
    Outcome::Http { status: head.status, body: truncate(&String::from_utf8_lossy(body), 200) }
}

/// What one incoming message means for the call waiting on id `want`.
#[derive(Debug, PartialEq)]
pub enum Seen {
    /// Its answer (result or error).
    Answer(Outcome),
    /// A `notifications/progress` for its progress token.
    Progress,
    /// Something else (another id, other notifications).
    Other,
    /// Not JSON-RPC at all.
    Bad(String),
}

pub fn classify_incoming(bytes: &[u8], want: i64, token: Option<&str>) -> Seen {
    match parse_one(bytes) {
        Ok(Message::Response { id: Id::Num(n), result }) if n == want => {
            Seen::Answer(match serde_json::from_str(result.get()) {
                Ok(v) => Outcome::Ok(v),
                Err(e) => Outcome::Fail(Fail::Protocol(format!("unparsable result: {e}"))),
            })
        }
        Ok(Message::Error { id: Some(Id::Num(n)), error }) if n == want => {
            Seen::Answer(Outcome::Rpc { code: error.code, message: error.message })
        }
        Ok(Message::Notification { method, params }) if method == "notifications/progress" => {
            let got = params.as_deref().and_then(|p| jsonrpc::get_str(p, "progressToken"));
            let got = got.as_deref();
            if token.is_some() && got == token {
                Seen::Progress
            } else {
                Seen::Other
            }
        }
        Ok(_) => Seen::Other,
        Err((_, e)) => Seen::Bad(format!("unparsable message: {e}")),
    }
}

/// The answer to call `want` in a `POST /mcp` response (JSON, or an event
/// stream of progress then the answer), and how many progress events came.
pub fn answer_from_body(head: &Head, body: &[u8], want: i64, token: Option<&str>) -> (Outcome, u32) {
    if head.status != 200 {
        return (http_error(head, body), 0);
    }
    let mut progress = 0;
    if head.content_type() == "text/event-stream" {
        let mut d = SseDecoder::new(MAX_SSE_LINE);
        d.push(body);
        loop {
            match d.next_event() {
                Ok(Some(ev)) if ev.event == "message" => match classify_incoming(ev.data.as_bytes(), want, token) {
                    Seen::Answer(o) => return (o, progress),
                    Seen::Progress => progress += 1,
                    Seen::Other => {}
                    Seen::Bad(m) => return (Outcome::Fail(Fail::Protocol(m)), progress),
                },
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => return (Outcome::Fail(Fail::Protocol(e.to_string())), progress),
            }
        }
        return (Outcome::Fail(Fail::Protocol(format!("no answer to {want} in the event stream"))), progress);
    }
    match classify_incoming(body, want, token) {
        Seen::Answer(o) => (o, 0),
        Seen::Bad(m) => (Outcome::Fail(Fail::Protocol(m)), 0),
        _ => (Outcome::Fail(Fail::Protocol(format!("response is not the answer to {want}"))), 0),
    }
}

/// `params` with `_meta.progressToken` set when `token` is given.
fn with_token(params: Option<Value>, token: Option<&str>) -> Option<Value> {
    let Some(t) = token else { return params };
    let mut p = params.unwrap_or_else(|| json!({}));
    if let Some(obj) = p.as_object_mut() {
        obj.insert("_meta".into(), json!({"progressToken": t}));
    }
    Some(p)
}

pub fn initialize_params() -> Value {
    json!({
        "protocolVersion": PROTOCOL,
        "capabilities": {},
        "clientInfo": {"name": "mcp-sentinel-loadgen", "version": env!("CARGO_PKG_VERSION")}
    })
}

/// `http://host:port/path?q` or `/path?q` → `/path?q`.
pub fn endpoint_path(endpoint: &str) -> String {
    match endpoint.strip_prefix("http://").or_else(|| endpoint.strip_prefix("https://")) {
        Some(rest) => rest.find('/').map_or_else(|| "/".to_owned(), |i| rest[i..].to_owned()),
        None => endpoint.to_owned(),
    }
}

const JSON: (&str, &str) = ("Content-Type", "application/json");
const ACCEPT: (&str, &str) = ("Accept", "application/json, text/event-stream");

/// A Streamable HTTP session.
pub struct Streamable {
    addr: SocketAddr,
    conn: Option<Conn>,
    sid: Option<String>,
    timeout: Duration,
    next_id: i64,
}

impl Streamable {
    pub fn new(addr: SocketAddr, timeout: Duration) -> Streamable {
        Streamable { addr, conn: None, sid: None, timeout, next_id: 1 }
    }

    /// One exchange on the kept-alive connection, or a new one. A failed
    /// exchange drops the connection: a late answer must not be read as
    /// the answer to the next request.
    fn exchange(&mut self, method: &str, body: &[u8], deadline: Instant) -> Result<(Head, Vec<u8>), Fail> {
        let mut conn = match self.conn.take() {
            Some(c) => c,
            None => Conn::connect(self.addr, deadline)?,
        };
        conn.set_deadline(deadline);
        let mut headers = vec![JSON, ACCEPT];
        if let Some(sid) = &self.sid {
            headers.push(("Mcp-Session-Id", sid));
            headers.push(("MCP-Protocol-Version", PROTOCOL));
        }
        let (head, body) = conn.exchange(method, "/mcp", &headers, body)?;
        if !head.close {
            self.conn = Some(conn);
        }
        Ok((head, body))
    }

    pub fn request(&mut self, method: &str, params: Option<Value>, progress: bool) -> (Outcome, u32) {
        let id = self.next_id;
        self.next_id += 1;
        let token = progress.then(|| format!("lg-{id}"));
        let msg = Message::request(Id::Num(id), method, with_token(params, token.as_deref())).to_bytes();
        match self.exchange("POST", &msg, Instant::now() + self.timeout) {
            Err(f) => (Outcome::Fail(f), 0),
            Ok((head, body)) => {
                if method == "initialize" && head.status == 200 {
                    self.sid = head.header("mcp-session-id").map(str::to_owned);
                    if self.sid.is_none() {
                        return (Outcome::Fail(Fail::Protocol("initialize returned no Mcp-Session-Id".into())), 0);
                    }
                }
                answer_from_body(&head, &body, id, token.as_deref())
            }
        }
    }

    /// A notification: 202 with no body is success.
    pub fn notify(&mut self, method: &str, params: Option<Value>) -> Outcome {
        let msg = Message::notification(method, params).to_bytes();
        match self.exchange("POST", &msg, Instant::now() + self.timeout) {
            Err(f) => Outcome::Fail(f),
            Ok((head, _)) if head.status == 202 => Outcome::Ok(Value::Null),
            Ok((head, body)) => http_error(&head, &body),
        }
    }

    /// `DELETE /mcp`: 200 is success. Forgets the session either way.
    pub fn delete(&mut self) -> Outcome {
        if self.sid.is_none() {
            return Outcome::Ok(Value::Null);
        }
        let r = self.exchange("DELETE", &[], Instant::now() + self.timeout);
        self.sid = None;
        match r {
            Err(f) => Outcome::Fail(f),
            Ok((head, _)) if head.status == 200 => Outcome::Ok(Value::Null),
            Ok((head, body)) => http_error(&head, &body),
        }
    }

    pub fn session_id(&self) -> Option<&str> {
        self.sid.as_deref()
    }

    /// Drops the connection without a DELETE.
    pub fn abandon(mut self) {
        if let Some(c) = self.conn.take() {
            c.close();
        }
    }
}

/// A legacy HTTP+SSE session.
pub struct Sse {
    addr: SocketAddr,
    stream: Conn,
    chunked: bool,
    post: Option<Conn>,
    endpoint: String,
    decoder: SseDecoder,
    piece: Vec<u8>,
    timeout: Duration,
    next_id: i64,
}

impl Sse {
    /// `GET /sse`, then waits for the `endpoint` event.
    pub fn open(addr: SocketAddr, timeout: Duration) -> Result<Sse, Outcome> {
        let deadline = Instant::now() + timeout;
        let mut stream = Conn::connect(addr, deadline).map_err(Outcome::Fail)?;
        stream.send("GET", "/sse", &[("Accept", "text/event-stream")], &[]).map_err(Outcome::Fail)?;
        let head = stream.head().map_err(Outcome::Fail)?;
        if head.status != 200 {
            let body = stream.body(&head).unwrap_or_default();
            return Err(http_error(&head, &body));
        }
        if head.content_type() != "text/event-stream" {
            return Err(Outcome::Fail(Fail::Protocol(format!("GET /sse answered {:?}", head.content_type()))));
        }
        let mut s = Sse {
            addr,
            stream,
            chunked: head.chunked,
            post: None,
            endpoint: String::new(),
            decoder: SseDecoder::new(MAX_SSE_LINE),
            piece: Vec::with_capacity(16 * 1024),
            timeout,
            next_id: 1,
        };
        loop {
            let ev = s.next_event(deadline).map_err(Outcome::Fail)?;
            if ev.event == "endpoint" {
                s.endpoint = endpoint_path(&ev.data);
                return Ok(s);
            }
        }
    }

    fn next_event(&mut self, deadline: Instant) -> Result<SseEvent, Fail> {
        loop {
            if let Some(ev) = self.decoder.next_event().map_err(|e| Fail::Protocol(e.to_string()))? {
                return Ok(ev);
            }
            self.stream.set_deadline(deadline);
            self.piece.clear();
            if !self.stream.stream_piece(self.chunked, &mut self.piece)? {
                return Err(Fail::Closed("the gateway ended the SSE stream".into()));
            }
            self.decoder.push(&self.piece);
        }
    }

    /// POSTs one message to the session's endpoint; 202 is success. The
    /// answer, if any, comes on the stream.
    pub fn post(&mut self, msg: &[u8], deadline: Instant) -> Outcome {
        let mut conn = match self.post.take() {
            Some(c) => c,
            None => match Conn::connect(self.addr, deadline) {
                Ok(c) => c,
                Err(f) => return Outcome::Fail(f),
            },
        };
        conn.set_deadline(deadline);
        let endpoint = self.endpoint.clone();
        match conn.exchange("POST", &endpoint, &[JSON], msg) {
            Err(f) => Outcome::Fail(f),
            Ok((head, body)) => {
                if !head.close {
                    self.post = Some(conn);
                }
                if head.status == 202 {
                    Outcome::Ok(Value::Null)
                } else {
                    http_error(&head, &body)
                }
            }
        }
    }

    /// A request message (for callers that will not read the answer).
    pub fn request_bytes(&mut self, method: &str, params: Option<Value>) -> Vec<u8> {
        let id = self.next_id;
        self.next_id += 1;
        Message::request(Id::Num(id), method, params).to_bytes()
    }

    pub fn request(&mut self, method: &str, params: Option<Value>, progress: bool) -> (Outcome, u32) {
        let id = self.next_id;
        self.next_id += 1;
        let token = progress.then(|| format!("lg-{id}"));
        let msg = Message::request(Id::Num(id), method, with_token(params, token.as_deref())).to_bytes();
        let deadline = Instant::now() + self.timeout;
        let posted = self.post(&msg, deadline);
        if !posted.is_ok() {
            return (posted, 0);
        }
        let mut progress = 0;
        loop {
            let ev = match self.next_event(deadline) {
                Ok(ev) => ev,
                Err(f) => return (Outcome::Fail(f), progress),
            };
            if ev.event != "message" {
                continue;
            }
            match classify_incoming(ev.data.as_bytes(), id, token.as_deref()) {
                Seen::Answer(o) => return (o, progress),
                Seen::Progress => progress += 1,
                Seen::Other => {}
                Seen::Bad(m) => return (Outcome::Fail(Fail::Protocol(m)), progress),
            }
        }
    }

    pub fn notify(&mut self, method: &str, params: Option<Value>) -> Outcome {
        let msg = Message::notification(method, params).to_bytes();
        self.post(&msg, Instant::now() + self.timeout)
    }

    /// Closing the stream ends a legacy session.
    pub fn close(self) {
        self.stream.close();
        if let Some(c) = self.post {
            c.close();
        }
    }
}

/// A session on either transport.
pub enum Session {
    Streamable(Streamable),
    Sse(Box<Sse>),
}

impl Session {
    /// Streamable HTTP needs no I/O to open; legacy SSE opens its stream.
    pub fn open(t: Transport, addr: SocketAddr, timeout: Duration) -> Result<Session, Outcome> {
        Ok(match t {
            Transport::Streamable => Session::Streamable(Streamable::new(addr, timeout)),
            Transport::Sse => Session::Sse(Box::new(Sse::open(addr, timeout)?)),
        })
    }

    pub fn request(&mut self, method: &str, params: Option<Value>, progress: bool) -> (Outcome, u32) {
        match self {
            Session::Streamable(s) => s.request(method, params, progress),
            Session::Sse(s) => s.request(method, params, progress),
        }
    }

    pub fn initialize(&mut self) -> Outcome {
        self.request("initialize", Some(initialize_params()), false).0
    }

    pub fn notify(&mut self, method: &str, params: Option<Value>) -> Outcome {
        match self {
            Session::Streamable(s) => s.notify(method, params),
            Session::Sse(s) => s.notify(method, params),
        }
    }

    /// Ends the session. With `delete`, a Streamable session sends `DELETE
    /// /mcp` and its outcome is returned; without, it is abandoned.
    pub fn close(self, delete: bool) -> Option<Outcome> {
        match self {
            Session::Streamable(mut s) if delete && s.session_id().is_some() => {
                let o = s.delete();
                s.abandon();
                Some(o)
            }
            Session::Streamable(s) => {
                s.abandon();
                None
            }
            Session::Sse(s) => {
                s.close();
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(status: u16, ct: &str) -> Head {
        Head { status, headers: vec![("Content-Type".into(), ct.into())], ..Head::default() }
    }

    #[test]
    fn incoming_messages() {
        let ok = br#"{"jsonrpc":"2.0","id":7,"result":{"content":[]}}"#;
        assert_eq!(classify_incoming(ok, 7, None), Seen::Answer(Outcome::Ok(json!({"content": []}))));
        assert_eq!(classify_incoming(ok, 8, None), Seen::Other);
        let err = br#"{"jsonrpc":"2.0","id":7,"error":{"code":-32001,"message":"backend down"}}"#;
        assert_eq!(
            classify_incoming(err, 7, None),
            Seen::Answer(Outcome::Rpc { code: -32001, message: "backend down".into() })
        );
        let null_id = br#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"x"}}"#;
        assert_eq!(classify_incoming(null_id, 7, None), Seen::Other);
        let prog =
            br#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"lg-7","progress":1}}"#;
        assert_eq!(classify_incoming(prog, 7, Some("lg-7")), Seen::Progress);
        assert_eq!(classify_incoming(prog, 7, Some("lg-8")), Seen::Other);
        assert_eq!(classify_incoming(prog, 7, None), Seen::Other);
        let changed = br#"{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}"#;
        assert_eq!(classify_incoming(changed, 7, None), Seen::Other);
        assert!(matches!(classify_incoming(b"not json", 7, None), Seen::Bad(_)));
    }

    #[test]
    fn json_body_answer() {
        let body = br#"{"jsonrpc":"2.0","id":3,"result":{}}"#;
        assert_eq!(answer_from_body(&head(200, "application/json"), body, 3, None), (Outcome::Ok(json!({})), 0));
        let (o, _) = answer_from_body(&head(200, "application/json"), body, 4, None);
        assert!(matches!(o, Outcome::Fail(Fail::Protocol(_))), "{o:?}");
        let (o, _) = answer_from_body(&head(404, "application/json"), b"{\"error\":1}", 3, None);
        assert_eq!(o, Outcome::Http { status: 404, body: "{\"error\":1}".into() });
    }

    #[test]
    fn event_stream_body_counts_progress_then_answers() {
        let body = concat!(
            "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progressToken\":\"lg-5\",\"progress\":1}}\n\n",
            ": keep-alive\n\n",
            "event: message\r\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progressToken\":\"lg-5\",\"progress\":2}}\r\n\r\n",
            "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":5,\"result\":{\"done\":true}}\n\n",
        );
        let h = head(200, "text/event-stream");
        assert_eq!(answer_from_body(&h, body.as_bytes(), 5, Some("lg-5")), (Outcome::Ok(json!({"done": true})), 2));
        let (o, n) = answer_from_body(&h, &body.as_bytes()[..body.len() - 60], 5, Some("lg-5"));
        assert!(matches!(o, Outcome::Fail(Fail::Protocol(_))) && n == 2, "{o:?}");
    }

    #[test]
    fn progress_token_goes_into_meta() {
        assert_eq!(with_token(None, None), None);
        assert_eq!(
            with_token(Some(json!({"name": "slow"})), Some("t")),
            Some(json!({"name": "slow", "_meta": {"progressToken": "t"}}))
        );
        assert_eq!(with_token(None, Some("t")), Some(json!({"_meta": {"progressToken": "t"}})));
    }

    #[test]
    fn endpoint_paths() {
        assert_eq!(endpoint_path("/messages/?session_id=ab"), "/messages/?session_id=ab");
        assert_eq!(endpoint_path("http://127.0.0.1:9000/messages/?session_id=ab"), "/messages/?session_id=ab");
        assert_eq!(endpoint_path("http://127.0.0.1:9000"), "/");
    }
}
