//! The gateway's own HTTP/1.1 server, used by both listeners (the MCP data
//! plane and the management API), replacing tiny_http.
//!
//! One reactor thread per listener (`<name>-io`) owns every connection of
//! that listener on non-blocking sockets (mio, edge-triggered epoll): it
//! accepts, reads and parses requests, enforces the bounds (connections per
//! listener and per client address, head size and time, body size and time,
//! idle keep-alive, write stalls) and calls the [`Handler`] with each
//! complete request and a [`Responder`]. A handler must not block: it
//! answers at once, or moves the `Responder` to whoever will answer later
//! (a backend's reader thread, say), which then writes the response to the
//! socket itself, in one write where the socket takes it. Only what the
//! socket does not take at once is buffered, and the reactor sends it when
//! the socket drains. Long-lived responses (SSE) are [`Stream`]s: any thread
//! may send on them; the reactor adds keep-alive comments and notices a
//! client that went away at once.
//!
//! No thread per connection and none per request: an idle connection costs
//! its socket and a few hundred bytes. Requests with large bodies are handed
//! to a small worker pool (`<name>-work:<i>`) so that parsing them cannot
//! stall the reactor.
//!
//! Why not tiny_http: its thread pool can leave an accepted connection
//! unserved under a burst, its accept thread dies on EMFILE, it has no
//! header timeout or size cap, and it writes a response's head and body in
//! two writes on a socket without TCP_NODELAY (a 40 ms delayed-ACK stall on
//! every answer over ~1 KB). See docs/architecture.md.

mod conn;
pub mod parse;
mod reactor;
mod shared;
pub mod tls;

pub use conn::{Responder, Stream, StreamClosed, StreamOpts};
pub use parse::Head;
pub use reactor::{bind, Bound, Server};

use std::net::SocketAddr;
use std::time::Duration;

/// The bounds a listener enforces. Defaults suit the data plane; see
/// docs/operations.md for what each means.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Open connections at most; at the bound an idle or half-sent
    /// connection is closed to make room, else the new one gets 503.
    pub max_connections: usize,
    /// Open connections from one non-loopback address at most (loopback
    /// peers share one address, so they are bounded by `max_connections`).
    pub max_per_ip: usize,
    /// Request line plus headers, in bytes.
    pub head_bytes: usize,
    /// From a request's first byte to the end of its head.
    pub head_timeout: Duration,
    /// From the end of the head to the end of the body.
    pub body_timeout: Duration,
    /// A keep-alive connection with no request in progress is closed after this.
    pub idle_timeout: Duration,
    /// Bytes waiting for a client that reads nothing for this long: closed.
    pub write_timeout: Duration,
    /// Requests with a body larger than this are handled on a worker thread.
    pub large_body: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: 16_384,
            max_per_ip: 1024,
            head_bytes: 32 * 1024,
            head_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(30),
            large_body: 256 * 1024,
        }
    }
}

/// One complete request.
#[derive(Debug)]
pub struct Request {
    pub head: Head,
    pub body: Vec<u8>,
    pub remote: SocketAddr,
    pub local: SocketAddr,
    /// Who made the request, once the handler has authenticated it
    /// (`None`: not authenticated, or no authentication configured).
    pub identity: Option<std::sync::Arc<crate::auth::data::Identity>>,
}

impl Request {
    pub fn method(&self) -> &str {
        self.head.method()
    }

    pub fn path(&self) -> &str {
        self.head.path()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.header(name)
    }

    /// A query parameter's raw (still percent-encoded) value.
    pub fn query_param(&self, key: &str) -> Option<&str> {
        query_param(self.head.query(), key)
    }
}

/// A parameter of a query string (`a=1&b=2`), undecoded.
pub fn query_param<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == key).then_some(v)
    })
}

/// A complete response: status, headers and body, written with a
/// `Content-Length` in one buffer.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16, content_type: &str, body: Vec<u8>) -> Response {
        Response { status, headers: vec![("Content-Type", content_type.to_owned())], body }
    }

    pub fn json(status: u16, body: Vec<u8>) -> Response {
        Response::new(status, "application/json", body)
    }

    pub fn empty(status: u16) -> Response {
        Response { status, headers: Vec::new(), body: Vec::new() }
    }

    /// The same response with another status.
    pub fn with_status(mut self, status: u16) -> Response {
        self.status = status;
        self
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.headers.push((name, value.into()));
        self
    }
}

/// What a listener calls for each request, on its reactor thread (or a
/// worker for large bodies). It must not block: answer now or hand the
/// `Responder` on.
pub trait Handler: Send + Sync + 'static {
    /// The largest body accepted for this request (413 beyond it).
    fn body_limit(&self, head: &Head) -> usize;
    fn handle(&self, req: Request, res: Responder);
    /// The response for a request refused before it reached `handle`
    /// (malformed, too large, too slow, too many connections).
    fn refusal(&self, status: u16, message: &str) -> Response {
        let body = serde_json::json!({"error": {"code": status, "message": message}});
        Response::json(status, serde_json::to_vec(&body).unwrap_or_default())
    }
    /// The response for a body over [`Handler::body_limit`] that was read
    /// through (up to 64 MiB, then thrown away); `id` is the JSON text of
    /// its top-level JSON-RPC `id`, if it had one. The connection closes
    /// after it.
    fn too_large(&self, _head: &Head, _id: Option<&[u8]>) -> Response {
        self.refusal(413, "request body too large")
    }
}

/// Sends requests to one of several handlers by path prefix: how the
/// management API shares the data-plane listener when both addresses are
/// equal, without either side knowing of the other.
type PathTest = Box<dyn Fn(&str) -> bool + Send + Sync>;

pub struct Router {
    routes: Vec<(PathTest, std::sync::Arc<dyn Handler>)>,
    fallback: std::sync::Arc<dyn Handler>,
}

impl Router {
    pub fn new(fallback: std::sync::Arc<dyn Handler>) -> Router {
        Router { routes: Vec::new(), fallback }
    }

    /// Requests whose path satisfies `matches` go to `handler`.
    pub fn route(
        mut self,
        matches: impl Fn(&str) -> bool + Send + Sync + 'static,
        handler: std::sync::Arc<dyn Handler>,
    ) -> Router {
        self.routes.push((Box::new(matches), handler));
        self
    }

    fn pick(&self, path: &str) -> &dyn Handler {
        self.routes.iter().find(|(m, _)| m(path)).map_or(self.fallback.as_ref(), |(_, h)| h.as_ref())
    }
}

impl Handler for Router {
    fn body_limit(&self, head: &Head) -> usize {
        self.pick(head.path()).body_limit(head)
    }

    fn handle(&self, req: Request, res: Responder) {
        self.pick(req.path()).handle(req, res)
    }

    fn refusal(&self, status: u16, message: &str) -> Response {
        self.fallback.refusal(status, message)
    }

    fn too_large(&self, head: &Head, id: Option<&[u8]>) -> Response {
        self.pick(head.path()).too_large(head, id)
    }
}

#[cfg(test)]
mod tests;
