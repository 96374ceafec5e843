//! `/manage/v1` routing: authentication and scopes, the read endpoints,
//! and the admin endpoints, which send a command to the admin thread and
//! wait for its reply (so mutations never interleave and each call returns
//! when its operation is done).

use super::audit::{Audit, Line};
use super::auth::{Auth, Denied, Scope};
use super::{metrics, views};
use crate::api::{BackendList, ErrorBody, EventList, ReconnectResult, ReloadResult, ShutdownResult};
use crate::http::Request;
use crate::runtime::{AdminCommand, AdminError, Runtime, ServerState};
use crossbeam_channel::bounded;
use serde::Serialize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub const PREFIX: &str = "/manage/v1";
/// Events per page: default and most.
const EVENTS_DEFAULT: usize = 100;
const EVENTS_MAX: usize = 1000;
/// Open `/events/stream` connections at most.
const MAX_STREAMS: usize = 32;
/// A comment after this much quiet keeps an event stream open.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Longest an admin call waits for the admin thread (a reload may wait
/// for backends to connect, each bounded by its own timeout, at most 30 s).
const ADMIN_WAIT: Duration = Duration::from_secs(120);

/// What the API answers: a complete body or the event stream. Pure data,
/// so handlers can be tested without sockets (`serve` writes it out).
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Body,
    /// Runs once the reply has been written (shutdown answers first).
    pub after: Option<Box<dyn FnOnce() + Send>>,
}

pub enum Body {
    Bytes(Vec<u8>),
    /// `text/event-stream` of ring events with id > `after`.
    Events {
        after: u64,
    },
}

impl Reply {
    pub fn json(status: u16, body: Vec<u8>) -> Reply {
        Reply {
            status,
            headers: vec![("Content-Type", "application/json".into())],
            body: Body::Bytes(body),
            after: None,
        }
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }
}

pub struct Api {
    rt: Arc<Runtime>,
    auth: Auth,
    audit: Arc<Audit>,
    public_health: bool,
    allow_shutdown: bool,
    streams: Arc<AtomicUsize>,
    max_streams: usize,
}

/// One route: its path pattern, allowed methods and scope.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Route {
    Health,
    Status,
    Backends,
    Backend,
    Reconnect,
    Capabilities,
    Events,
    EventStream,
    Reload,
    Shutdown,
    Metrics,
}

impl Route {
    fn method(self) -> &'static str {
        match self {
            Route::Reconnect | Route::Reload | Route::Shutdown => "POST",
            _ => "GET",
        }
    }
}

/// Maps a path to its route and the `{name}` segment if any.
fn route(path: &str) -> Option<(Route, Option<String>)> {
    if path == "/metrics" {
        return Some((Route::Metrics, None));
    }
    let rest = path.strip_prefix(PREFIX)?;
    let r = match rest {
        "/health" => Route::Health,
        "/status" => Route::Status,
        "/backends" => Route::Backends,
        "/capabilities" => Route::Capabilities,
        "/events" => Route::Events,
        "/events/stream" => Route::EventStream,
        "/reload" => Route::Reload,
        "/shutdown" => Route::Shutdown,
        _ => {
            let name = rest.strip_prefix("/backends/")?;
            return match name.split_once('/') {
                None if !name.is_empty() => Some((Route::Backend, Some(percent_decode(name)))),
                Some((n, "reconnect")) if !n.is_empty() => Some((Route::Reconnect, Some(percent_decode(n)))),
                _ => None,
            };
        }
    };
    Some((r, None))
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The uniform error body.
pub fn error(status: u16, message: &str) -> Reply {
    let code = match status {
        400 => "bad_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        409 => "conflict",
        413 => "payload_too_large",
        503 => "unavailable",
        s if (400..500).contains(&s) => "bad_request",
        _ => "internal",
    };
    Reply::json(status, body(&ErrorBody::new(code, message)))
}

/// A body of [`crate::api`], followed by a newline.
fn body(v: &impl Serialize) -> Vec<u8> {
    let mut b = serde_json::to_vec(v).unwrap_or_else(|_| b"{}".to_vec());
    b.push(b'\n');
    b
}

fn ok(v: &impl Serialize) -> Reply {
    Reply::json(200, body(v))
}

impl Api {
    pub fn new(rt: Arc<Runtime>, auth: Auth, audit: Arc<Audit>) -> Api {
        let cfg = rt.config();
        Api {
            public_health: cfg.manage.public_health,
            allow_shutdown: cfg.manage.allow_shutdown,
            rt,
            auth,
            audit,
            streams: Arc::new(AtomicUsize::new(0)),
            max_streams: MAX_STREAMS,
        }
    }

    fn audit(&self, req: &Request, event: &str, token: Option<&str>, status: u16) {
        self.audit.record(Line {
            time: crate::util::rfc3339(std::time::SystemTime::now()),
            event,
            token_name: token,
            remote_addr: Some(req.remote.to_string()),
            method: req.method(),
            path: req.path(),
            status,
        });
    }

    fn denied(&self, req: &Request, d: Denied) -> Reply {
        let (reply, token) = match d {
            Denied::Missing => (
                error(401, "missing bearer token").with_header("WWW-Authenticate", "Bearer realm=\"mcp-sentinel\""),
                None,
            ),
            Denied::Invalid => (
                error(401, "invalid token")
                    .with_header("WWW-Authenticate", "Bearer realm=\"mcp-sentinel\", error=\"invalid_token\""),
                None,
            ),
            Denied::Forbidden(name) => (error(403, "this token lacks the admin scope"), Some(name)),
        };
        self.audit(req, "auth_failed", token.as_deref(), reply.status);
        reply
    }

    /// Sends an admin command and waits for its reply.
    fn admin<T>(
        &self,
        make: impl FnOnce(crossbeam_channel::Sender<Result<T, AdminError>>) -> AdminCommand,
    ) -> Result<T, Reply> {
        if matches!(self.rt.state(), ServerState::Stopping | ServerState::Stopped) {
            return Err(error(503, "the gateway is shutting down"));
        }
        let (tx, rx) = bounded(1);
        if self.rt.admin().send_timeout(make(tx), Duration::from_secs(5)).is_err() {
            return Err(error(503, "the admin thread is not accepting commands"));
        }
        match rx.recv_timeout(ADMIN_WAIT) {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(match e {
                AdminError::BadRequest(m) => error(400, &m),
                AdminError::NotFound(m) => error(404, &m),
                AdminError::Conflict(m) => error(409, &m),
                AdminError::Unavailable(m) => error(503, &m),
            }),
            // The loop ended (shutdown) before it got to the command.
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => Err(error(503, "the gateway is shutting down")),
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                Err(error(503, "the admin operation did not finish in time"))
            }
        }
    }

    fn events_page(&self, req: &Request) -> Reply {
        let after = match req.query_param("after").map(str::parse::<u64>) {
            None => 0,
            Some(Ok(v)) => v,
            Some(Err(_)) => return error(400, "after must be a non-negative integer"),
        };
        let limit = match req.query_param("limit").map(str::parse::<usize>) {
            None => EVENTS_DEFAULT,
            Some(Ok(0)) | Some(Err(_)) => return error(400, "limit must be an integer from 1 to 1000"),
            Some(Ok(v)) => v.min(EVENTS_MAX),
        };
        let events = self.rt.events.since(after, limit);
        ok(&EventList { events, last_id: Some(self.rt.events.last_id()) })
    }

    fn event_stream(&self, req: &Request) -> Reply {
        let from_header = req.header("Last-Event-ID").map(|v| v.trim().parse::<u64>());
        let after = match (from_header, req.query_param("after").map(str::parse::<u64>)) {
            (Some(Ok(v)), _) | (None, Some(Ok(v))) => v,
            (Some(Err(_)), _) => return error(400, "Last-Event-ID must be an event id"),
            (None, Some(Err(_))) => return error(400, "after must be a non-negative integer"),
            (None, None) => self.rt.events.last_id(),
        };
        Reply {
            status: 200,
            headers: vec![("Content-Type", "text/event-stream".into())],
            body: Body::Events { after },
            after: None,
        }
    }

    fn dispatch(&self, req: &Request, route: Route, name: Option<String>, token: Option<&str>) -> Reply {
        let rt = &self.rt;
        match route {
            Route::Health => {
                let down = rt.listeners_down();
                if down.is_empty() {
                    ok(&views::health(rt))
                } else {
                    // A listener whose thread ended serves nobody: not healthy.
                    error(503, &format!("listener down: {}", down.join(", ")))
                }
            }
            Route::Status => ok(&views::status(rt)),
            Route::Backends => {
                let reg = rt.registry();
                ok(&BackendList { backends: rt.backends().iter().map(|b| rt.backend_snapshot(b, &reg)).collect() })
            }
            Route::Backend => {
                let name = name.unwrap_or_default();
                match rt.backend(&name) {
                    Some(b) => ok(&rt.backend_snapshot(&b, &rt.registry())),
                    None => error(404, &format!("no backend named '{name}'")),
                }
            }
            Route::Capabilities => {
                let backend = req.query_param("backend").map(percent_decode);
                if let Some(b) = &backend {
                    if rt.backend(b).is_none() {
                        return error(404, &format!("no backend named '{b}'"));
                    }
                }
                // `?view=NAME`: the catalog as that view's clients see it.
                let view = req.query_param("view").map(percent_decode);
                let all = rt.registry();
                let Some(reg) = all.view(view.as_deref()) else {
                    return error(404, &format!("no view named '{}'", printable(view.as_deref().unwrap_or(""))));
                };
                ok(&views::capabilities(reg, backend.as_deref()))
            }
            Route::Events => self.events_page(req),
            Route::EventStream => self.event_stream(req),
            Route::Metrics => Reply {
                status: 200,
                headers: vec![("Content-Type", "text/plain; version=0.0.4; charset=utf-8".into())],
                body: Body::Bytes(metrics::render(rt).into_bytes()),
                after: None,
            },
            Route::Reload => {
                let reply = match self.admin(|reply| AdminCommand::Reload { reply }) {
                    Ok(report) => ok(&ReloadResult::ok(report)),
                    Err(e) => e,
                };
                self.audit(req, "admin_action", token, reply.status);
                reply
            }
            Route::Reconnect => {
                let name = name.unwrap_or_default();
                let reply = match self.admin(|reply| AdminCommand::Reconnect { name, reply }) {
                    Ok(view) => ok(&ReconnectResult::ok(view)),
                    Err(e) => e,
                };
                self.audit(req, "admin_action", token, reply.status);
                reply
            }
            Route::Shutdown => {
                let reply = if !self.allow_shutdown {
                    error(404, "shutdown is disabled; set manage.allow_shutdown to true to enable it")
                } else if matches!(rt.state(), ServerState::Stopping | ServerState::Stopped) {
                    error(503, "the gateway is already shutting down")
                } else {
                    let tx = rt.admin().clone();
                    let who = token.unwrap_or("?").to_owned();
                    let mut r = Reply::json(202, body(&ShutdownResult::shutting_down()));
                    // Answer first, then stop: the reply must reach the caller.
                    r.after = Some(Box::new(move || {
                        let _ = tx.send(AdminCommand::Shutdown {
                            reason: format!("shutdown requested through the management API (token '{who}')"),
                        });
                    }));
                    r
                };
                self.audit(req, "admin_action", token, reply.status);
                reply
            }
        }
    }
}

impl Api {
    /// Authenticates, routes and answers one request.
    pub fn handle(&self, req: &Request) -> Reply {
        let Some((route, name)) = route(req.path()) else {
            // Unknown paths still need a token, so probing learns nothing.
            if let Err(d) = self.auth.check(req.header("Authorization"), Scope::Read) {
                return self.denied(req, d);
            }
            return error(404, &format!("no such endpoint: {} {}", req.method(), printable(req.path())));
        };
        let public = route == Route::Health && self.public_health;
        let token = if public {
            None
        } else {
            match self.auth.check(req.header("Authorization"), Scope::Read) {
                Ok(t) => Some(t),
                Err(d) => return self.denied(req, d),
            }
        };
        if req.method() != route.method() {
            return error(405, &format!("{} {} is not allowed; use {}", req.method(), req.path(), route.method()))
                .with_header("Allow", route.method());
        }
        // Admin routes are never public, so their token was checked above;
        // only its scope is left to look at.
        if route.method() == "POST" && !token.is_some_and(|t| t.admin) {
            let name = token.map(|t| t.name.clone()).unwrap_or_default();
            return self.denied(req, Denied::Forbidden(name));
        }
        let token_name = token.map(|t| t.name.clone());
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.dispatch(req, route, name, token_name.as_deref())
        }));
        r.unwrap_or_else(|_| {
            log::error!("management handler for {} {} panicked", req.method(), printable(req.path()));
            error(500, "internal error")
        })
    }

    /// A reply for errors found before the handler runs (bad request
    /// line, body too large, too many connections).
    pub fn early_error(&self, status: u16, message: &str) -> Reply {
        error(status, message)
    }

    /// Takes one of the event-stream slots; `None` when all are in use.
    /// The slot is free again when the guard drops.
    pub fn stream_slot(&self) -> Option<StreamSlot> {
        if self.streams.fetch_add(1, Ordering::AcqRel) >= self.max_streams {
            self.streams.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(StreamSlot { count: self.streams.clone(), released: Arc::new(std::sync::atomic::AtomicBool::new(false)) })
    }

    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.rt
    }

    /// Whether a request may block (it waits for the admin thread): such
    /// requests are served off the listener's reactor.
    pub fn blocks(req: &Request) -> bool {
        req.method() == "POST" && matches!(route(req.path()), Some((Route::Reload | Route::Reconnect, _)))
    }
}

/// One open event stream, counted until released (when its connection
/// closes) or dropped, whichever comes first.
pub struct StreamSlot {
    count: Arc<AtomicUsize>,
    released: Arc<std::sync::atomic::AtomicBool>,
}

impl StreamSlot {
    /// A function that frees the slot (once, however often it is called).
    pub fn releaser(&self) -> impl FnOnce() + Send + 'static {
        let (count, released) = (self.count.clone(), self.released.clone());
        move || {
            if !released.swap(true, Ordering::AcqRel) {
                count.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        (self.releaser())();
    }
}

fn printable(s: &str) -> String {
    crate::util::printable(s, 200)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    #[test]
    fn routes() {
        assert_eq!(route("/manage/v1/health"), Some((Route::Health, None)));
        assert_eq!(route("/metrics"), Some((Route::Metrics, None)));
        assert_eq!(route("/manage/v1/backends/alpha"), Some((Route::Backend, Some("alpha".into()))));
        assert_eq!(route("/manage/v1/backends/a%20b/reconnect"), Some((Route::Reconnect, Some("a b".into()))));
        assert_eq!(route("/manage/v1/backends/"), None);
        assert_eq!(route("/manage/v1/backends/x/y"), None);
        assert_eq!(route("/manage/v1/nope"), None);
        assert_eq!(route("/manage/v2/status"), None);
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }

    #[test]
    fn error_bodies_are_uniform() {
        let r = error(405, "no");
        let Body::Bytes(b) = &r.body else { panic!("bytes") };
        let v: Value = serde_json::from_slice(b).expect("json");
        assert_eq!(v, json!({"error": {"code": "method_not_allowed", "message": "no"}}));
    }

    fn request(path: &str, token: &str) -> Request {
        let head = crate::http::Head::new("GET", path, &[("Authorization", &format!("Bearer {token}"))]);
        Request {
            head,
            body: Vec::new(),
            remote: ([127, 0, 0, 1], 1).into(),
            local: ([127, 0, 0, 1], 2).into(),
            identity: None,
        }
    }

    #[test]
    fn health_reports_a_listener_that_is_down() {
        let (rt, _admin) = Runtime::new(crate::config::Config::default_with_backends(Vec::new()));
        let audit = Arc::new(Audit::open(None, rt.events.clone()).expect("audit"));
        let api = Api::new(rt.clone(), Auth::new(vec![super::super::auth::Token::new("t", true, "s3cret")]), audit);
        let alive = Arc::new(std::sync::atomic::AtomicBool::new(true));
        rt.add_listener("data plane", alive.clone());
        let body = |r: &Reply| match &r.body {
            Body::Bytes(b) => serde_json::from_slice::<Value>(b).expect("json"),
            Body::Events { .. } => panic!("bytes"),
        };
        let ok = api.handle(&request("/manage/v1/health", "s3cret"));
        assert_eq!(ok.status, 200);
        alive.store(false, Ordering::Release);
        let down = api.handle(&request("/manage/v1/health", "s3cret"));
        assert_eq!(down.status, 503);
        assert_eq!(body(&down)["error"]["code"], "unavailable");
        assert_eq!(body(&down)["error"]["message"], "listener down: data plane");
    }
}
