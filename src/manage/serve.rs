//! Serves the management API on the gateway's HTTP layer (`crate::http`):
//! on its own listener (with optional TLS), or on the data-plane listener
//! when both addresses are equal. Reads are answered on the listener's
//! reactor; reload and reconnect wait for the admin thread, so they run on
//! the `manage-admin` thread; event streams are fed by the event ring.

use super::api::{Api, Body, Reply, KEEP_ALIVE};
use crate::api::Event;
use crate::events::EventSink;
use crate::http::{self, Request, Responder, Response, Stream, StreamOpts};
use crossbeam_channel::{bounded, Sender, TrySendError};
use std::sync::Arc;
use std::time::Duration;

/// Largest request body (the API's bodies are empty or tiny).
pub const MAX_BODY: usize = 64 * 1024;
/// Most concurrent connections on the management listener; at the bound
/// an idle or half-sent one is closed to make room, so a flood of slow
/// connections cannot lock operators out.
pub const MAX_CONNECTIONS: usize = 64;
/// Admin requests waiting for the `manage-admin` thread at most.
const ADMIN_QUEUE: usize = 16;

/// The management listener's bounds.
pub fn limits() -> http::Limits {
    http::Limits {
        max_connections: MAX_CONNECTIONS,
        max_per_ip: MAX_CONNECTIONS,
        head_bytes: 16 * 1024,
        head_timeout: Duration::from_secs(10),
        body_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(30),
        write_timeout: Duration::from_secs(10),
        large_body: MAX_BODY,
    }
}

/// The API as an HTTP handler.
pub struct Handler {
    api: Arc<Api>,
    admin: Sender<(Request, Responder)>,
}

impl Handler {
    /// Starts the `manage-admin` thread that serves blocking requests.
    pub fn new(api: Arc<Api>) -> Result<Handler, String> {
        let (tx, rx) = bounded::<(Request, Responder)>(ADMIN_QUEUE);
        let a = api.clone();
        crate::thread::spawn("manage-admin".into(), move || {
            while let Ok((req, res)) = rx.recv() {
                let reply = a.handle(&req);
                respond(&a, res, reply);
            }
            Ok(())
        })
        .map_err(|e| format!("cannot start the manage-admin thread: {e}"))?;
        Ok(Handler { api, admin: tx })
    }
}

impl http::Handler for Handler {
    fn body_limit(&self, _head: &http::Head) -> usize {
        MAX_BODY
    }

    fn handle(&self, req: Request, res: Responder) {
        if Api::blocks(&req) {
            match self.admin.try_send((req, res)) {
                Ok(()) => {}
                Err(TrySendError::Full((_, res)) | TrySendError::Disconnected((_, res))) => {
                    respond(&self.api, res, self.api.early_error(503, "too many admin requests waiting"));
                }
            }
            return;
        }
        let reply = self.api.handle(&req);
        respond(&self.api, res, reply);
    }

    fn refusal(&self, status: u16, message: &str) -> Response {
        match self.api.early_error(status, message).body {
            Body::Bytes(b) => Response::json(status, b),
            Body::Events { .. } => Response::empty(status),
        }
    }
}

/// Writes a reply: a complete response, or the event stream.
fn respond(api: &Api, res: Responder, mut reply: Reply) {
    let after = reply.after.take();
    match std::mem::replace(&mut reply.body, Body::Bytes(Vec::new())) {
        Body::Bytes(b) => {
            let mut resp = Response { status: reply.status, headers: reply.headers, body: b };
            resp.headers.push(("Cache-Control", "no-store".into()));
            res.send(resp);
        }
        Body::Events { after } => stream_events(api, res, reply.headers, after),
    }
    if let Some(f) = after {
        f();
    }
}

/// One `/events/stream` client: the ring's subscriber.
struct EventStream {
    stream: Stream,
    _slot: super::api::StreamSlot,
}

impl EventSink for EventStream {
    fn deliver(&self, ev: &Event) -> bool {
        let mut buf = Vec::with_capacity(256);
        let data = serde_json::to_string(ev).unwrap_or_default();
        crate::codec::sse::encode_event(&mut buf, Some("event"), Some(&ev.id.to_string()), &data);
        self.stream.send(&buf).is_ok()
    }
}

fn stream_events(api: &Api, res: Responder, mut headers: Vec<(&'static str, String)>, after: u64) {
    headers.push(("Cache-Control", "no-cache".into()));
    headers.push(("X-Accel-Buffering", "no".into()));
    let Some(slot) = api.stream_slot() else {
        let stream = res.stream(200, &headers, StreamOpts::default());
        let _ = stream.send(b": too many event streams\n\n");
        return stream.finish();
    };
    let opts = StreamOpts {
        keepalive: Some(b": keep-alive\n\n"),
        keepalive_every: KEEP_ALIVE,
        max_backlog: 4 << 20,
        cork: None,
    };
    let stream = res.stream(200, &headers, opts);
    stream.on_close(Box::new(slot.releaser()));
    if stream.send(b": events\n\n").is_err() {
        return;
    }
    api.runtime().events.subscribe(after, Arc::new(EventStream { stream, _slot: slot }));
}
