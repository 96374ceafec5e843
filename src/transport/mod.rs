//! The data plane: the MCP endpoints on the gateway's own HTTP layer
//! (`crate::http`). Routes `GET /sse` + `POST /messages/` (legacy
//! HTTP+SSE) and `POST/GET/DELETE /mcp` (Streamable HTTP), after the
//! checks every request passes: `Host` (DNS rebinding), `Origin`, content
//! type and body size, and with `server.auth` the bearer credential
//! ([`crate::auth::data`]): 401 with a `WWW-Authenticate` challenge, the
//! protected resource metadata at `/.well-known/oauth-protected-resource`
//! served without one. Handlers run on the listener's reactor thread and
//! never block: a forwarded call's answer is written by whoever learns it
//! (see [`streamable`] and [`sse`]), and a JWT whose key is not cached
//! waits on the `auth:jwks` thread, which goes on with the request.
//!
//! A configured view `v` is served at `/mcp/v` and `/sse/v` (its legacy
//! sessions post to the same `/messages/`: the session carries its view);
//! an unknown view is 404. Whether a client may use a view at all is
//! [`view_allowed`], asked where a request enters (`admitted`).

pub mod dispatch;
pub mod modern;
pub mod mrtr;
pub mod sse;
pub mod streamable;

use crate::auth::data::{DataAuth, Outcome};
use crate::codec::{ErrorObj, Id, Message};
use crate::config::ServerConfig;
use crate::http::{self, Request, Responder, Response, StreamOpts};
use crate::runtime::Runtime;
use crate::session;
use std::sync::Arc;
use std::time::Duration;

/// A comment line this often keeps proxies and clients from timing out,
/// and makes a vanished client show up as a failed write.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The data plane's request handler.
#[derive(Clone)]
pub struct DataPlane {
    rt: Arc<Runtime>,
    /// 2026-07-28 calls waiting for their client's retry.
    held: Arc<modern::Held>,
    /// `server.auth`; `None`: every request is served.
    auth: Option<Arc<DataAuth>>,
}

impl DataPlane {
    /// `local`: the bound address, the default protected resource
    /// (`http://<local>/mcp`). Fails on a token source that cannot be read
    /// or the key-set thread not starting (a configuration error).
    pub fn new(rt: Arc<Runtime>, local: std::net::SocketAddr) -> Result<DataPlane, String> {
        let held: Arc<modern::Held> = Arc::default();
        let h = Arc::downgrade(&held);
        let server = rt.config().server.clone();
        let auth = match &server.auth {
            Some(a) => Some(Arc::new(DataAuth::from_config(a, &format!("http://{local}/mcp"))?)),
            None => None,
        };
        if let Some(a) = &auth {
            rt.set_data_auth(a.clone());
        }
        rt.on_tick(Box::new(move |now| {
            if let Some(h) = h.upgrade() {
                h.sweep(now);
            }
        }));
        Ok(DataPlane { rt, held, auth })
    }

    /// After the Host and Origin checks: the credential, then the request.
    fn authenticate(&self, mut req: Request, res: Responder, may_wait: bool) {
        let Some(auth) = &self.auth else { return self.proceed(req, res) };
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        match auth.check(req.header("Authorization"), now, may_wait) {
            Outcome::Allowed(id) => {
                req.identity = id;
                self.proceed(req, res);
            }
            Outcome::Refused(r) => {
                self.refused(&req, &r);
                res.send(unauthorized(auth, &r));
            }
            Outcome::NeedKeys => {
                let me = self.clone();
                let then: crate::auth::jwks::Waiter = Box::new(move || me.authenticate(req, res, false));
                match auth.jwks() {
                    Some(k) => k.refresh_then(then),
                    None => then(),
                }
            }
        }
    }

    /// A refusal as an event (bounded like the management audit: at most
    /// [`FAIL_EVENTS`] per [`FAIL_WINDOW`], outside text escaped and capped);
    /// the token is never shown.
    fn refused(&self, req: &Request, r: &crate::auth::data::Refusal) {
        let path = crate::util::printable(req.path(), 200);
        let who = r.who.as_deref().map(|w| format!(" (jwt:{})", crate::util::printable(w, 128))).unwrap_or_default();
        let msg = format!(
            "401 {} {path} from {}: {}{who}",
            crate::util::printable(req.method(), 16),
            req.remote.ip(),
            r.reason
        );
        log::debug!("data plane: {msg}");
        self.rt.audit_data_refusal(&crate::runtime::DataRefusal {
            identity: r.who.as_deref(),
            remote_addr: req.remote.to_string(),
            method: req.method(),
            path: req.path(),
            status: 401,
        });
        let mut w = self.rt.data_auth_fails.lock();
        let now = std::time::Instant::now();
        if now.duration_since(w.0) >= FAIL_WINDOW {
            if w.2 > 0 {
                let n = w.2;
                self.rt.events.push(
                    crate::events::Level::Warn,
                    "data.auth_failed",
                    None,
                    format!("{n} more refused requests in the last window not shown"),
                );
            }
            *w = (now, 0, 0);
        }
        if w.1 < FAIL_EVENTS {
            w.1 += 1;
            drop(w);
            self.rt.events.push(crate::events::Level::Warn, "data.auth_failed", None, msg);
        } else {
            w.2 += 1;
        }
    }

    /// The identity of a request's head, without waiting for keys; `None`
    /// for anonymous or refused (so a refused client reaches only sessions
    /// opened anonymously).
    fn identity_now(&self, head: &http::Head) -> Option<Arc<crate::auth::data::Identity>> {
        let auth = self.auth.as_ref()?;
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        match auth.check(head.header("Authorization"), now, false) {
            Outcome::Allowed(id) => id,
            _ => None,
        }
    }

    /// Authenticated (or no auth): on to the endpoint.
    fn proceed(&self, req: Request, res: Responder) {
        let rt = &self.rt;
        let path = req.path();
        if req.method() == "POST" && matches!(endpoint(path), Endpoint::Messages | Endpoint::Mcp(_)) {
            // During start-up, held until the catalog is complete.
            let (rt2, held) = (rt.clone(), self.held.clone());
            let run: crate::runtime::Parked = Box::new(move || route(&rt2, &held, req, res));
            if let Err(run) = rt.park(run) {
                run();
            }
            return;
        }
        route(rt, &self.held, req, res);
    }
}

/// At most this many `data.auth_failed` events per window.
const FAIL_EVENTS: u32 = 20;
const FAIL_WINDOW: Duration = Duration::from_secs(10);

/// A 401 with its challenge.
fn unauthorized(auth: &DataAuth, r: &crate::auth::data::Refusal) -> Response {
    let msg = if r.token_given {
        "invalid bearer token"
    } else {
        "authorization required: send Authorization: Bearer <token>"
    };
    json_error(401, None, ErrorObj::new(crate::codec::code::INVALID_REQUEST, msg))
        .with_header("WWW-Authenticate", auth.challenge(r))
}

/// `GET /.well-known/oauth-protected-resource[/<resource path>]`: the
/// RFC 9728 metadata, without authentication.
fn resource_metadata(auth: &DataAuth, req: &Request) -> Option<Response> {
    let p = req.path();
    let rest = p.strip_prefix(crate::auth::data::WELL_KNOWN)?;
    if !(rest.is_empty() || rest.starts_with('/')) {
        return None;
    }
    if req.method() != "GET" {
        let r = json_error(405, None, ErrorObj::new(crate::codec::code::INVALID_REQUEST, "use GET"));
        return Some(r.with_header("Allow", "GET"));
    }
    let body = serde_json::to_vec(&auth.metadata()).unwrap_or_default();
    Some(json_response(200, body).with_header("Cache-Control", "max-age=300"))
}

/// The data-plane listener's bounds from `server` settings.
pub fn limits(cfg: &ServerConfig) -> http::Limits {
    http::Limits {
        max_connections: cfg.max_connections,
        max_per_ip: cfg.max_connections_per_ip,
        ..http::Limits::default()
    }
}

impl http::Handler for DataPlane {
    fn body_limit(&self, _head: &http::Head) -> usize {
        self.rt.config().server.max_body_bytes
    }

    fn refusal(&self, status: u16, message: &str) -> Response {
        json_error(status, None, ErrorObj::new(crate::codec::code::INVALID_REQUEST, message))
    }

    /// A body over `server.max_body_bytes`: the refusal carries the
    /// request's id, and on the legacy transport it also goes on the
    /// session's stream, where the client waits for every answer.
    fn too_large(&self, head: &http::Head, id: Option<&[u8]>) -> Response {
        let id =
            id.and_then(|raw| serde_json::from_slice::<&serde_json::value::RawValue>(raw).ok()).and_then(Id::from_raw);
        let limit = self.rt.config().server.max_body_bytes;
        let err = ErrorObj::new(
            crate::codec::code::INVALID_REQUEST,
            format!("request body too large (server.max_body_bytes is {limit})"),
        );
        let legacy = matches!(head.path(), "/messages/" | "/messages");
        if legacy && id.is_some() && origin_allowed(&self.rt.config().server.allowed_origins, head.header("Origin")) {
            let query = head.query();
            let sid = http::query_param(query, "session_id").or_else(|| http::query_param(query, "sessionId"));
            if let Some(s) = sid
                .and_then(|sid| self.rt.sessions.get(sid))
                .filter(|s| s.transport == session::Transport::Sse && s.owned_by(self.identity_now(head).as_deref()))
            {
                s.push(Message::error(id.clone(), err.clone()).to_bytes());
            }
        }
        json_error(413, id, err)
    }

    fn handle(&self, req: Request, res: Responder) {
        let cfg = self.rt.config();
        if let Err(r) = check_host(&cfg.server, &req) {
            return res.send(r);
        }
        if let Err(r) = check_origin(&cfg.server.allowed_origins, req.header("Origin")) {
            return res.send(r);
        }
        if let Some(r) = self.auth.as_deref().and_then(|a| resource_metadata(a, &req)) {
            return res.send(r);
        }
        self.authenticate(req, res, true);
    }
}

/// The data-plane endpoint a path names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Endpoint<'a> {
    /// `/sse` (`None`) or `/sse/<view>`.
    Sse(Option<&'a str>),
    /// `/messages/`: a legacy session's posts, in the session's view.
    Messages,
    /// `/mcp` (`None`) or `/mcp/<view>`.
    Mcp(Option<&'a str>),
    Other,
}

/// `/mcp`, `/mcp/`, `/mcp/<view>`, `/mcp/<view>/`; the same for `/sse`.
/// A view segment is any one non-empty segment here; whether it names a
/// view is the registry's to say.
fn endpoint(path: &str) -> Endpoint<'_> {
    if matches!(path, "/messages/" | "/messages") {
        return Endpoint::Messages;
    }
    let view_of = |rest: &'static str| -> Option<Option<&str>> {
        let tail = path.strip_prefix(rest)?;
        match tail {
            "" | "/" => Some(None),
            t => {
                let v = t.strip_prefix('/')?;
                let v = v.strip_suffix('/').unwrap_or(v);
                (!v.is_empty() && !v.contains('/')).then_some(Some(v))
            }
        }
    };
    if let Some(v) = view_of("/mcp") {
        return Endpoint::Mcp(v);
    }
    if let Some(v) = view_of("/sse") {
        return Endpoint::Sse(v);
    }
    Endpoint::Other
}

/// Whether a client allowed `allowed_views` may use `view` (`None`: the
/// default endpoint, the whole catalog). `allowed_views` `None` allows
/// every view and the default endpoint; a list allows the views it names,
/// and the default endpoint only if it holds `"*"` (which does not, by
/// itself, allow any view).
pub fn view_allowed(allowed_views: Option<&[String]>, view: Option<&str>) -> bool {
    let Some(list) = allowed_views else { return true };
    match view {
        None => list.iter().any(|v| v == "*"),
        Some(v) => list.iter().any(|a| a == v),
    }
}

/// Whether the client of a request may use `view`: the views its token
/// (or its JWT's views claim) lists, else all of them.
fn admitted(who: Option<&crate::auth::data::Identity>, view: Option<&str>) -> bool {
    view_allowed(who.and_then(|i| i.views.as_deref()), view)
}

/// 403 for a view the client may not use.
fn view_refused(view: Option<&str>) -> Response {
    let msg = match view {
        Some(v) => format!("this client may not use view '{}'", crate::util::printable(v, 100)),
        None => "this client may not use the default endpoint; use its view's /mcp/<view>".to_owned(),
    };
    json_error(403, None, ErrorObj::new(crate::codec::code::INVALID_REQUEST, msg))
}

/// 404 for a view that is not configured (or no longer is).
pub fn unknown_view(view: &str) -> Response {
    let msg = format!("no view named '{}' is configured", crate::util::printable(view, 100));
    json_error(404, None, ErrorObj::new(crate::codec::code::INVALID_REQUEST, msg))
}

/// Sends a request to its endpoint: an unknown view is 404, one the client
/// may not use 403.
fn route(rt: &Arc<Runtime>, held: &Arc<modern::Held>, req: Request, res: Responder) {
    let ep = endpoint(req.path());
    if let Endpoint::Sse(view) | Endpoint::Mcp(view) = ep {
        if let Some(v) = view.filter(|v| rt.registry().view(Some(v)).is_none()) {
            return res.send(unknown_view(v));
        }
        if !admitted(req.identity.as_deref(), view) {
            let who = req.identity.as_deref().map(|i| i.label());
            rt.audit_data_refusal(&crate::runtime::DataRefusal {
                identity: who.as_deref(),
                remote_addr: req.remote.to_string(),
                method: req.method(),
                path: req.path(),
                status: 403,
            });
            return res.send(view_refused(view));
        }
    }
    let view = match ep {
        Endpoint::Sse(v) | Endpoint::Mcp(v) => v.map(str::to_owned),
        _ => None,
    };
    let view = view.as_deref();
    match ep {
        Endpoint::Sse(_) => sse::get_stream(rt, req, res, view),
        Endpoint::Messages => sse::post_message(rt, req, res),
        Endpoint::Mcp(_) if modern_request(&req) => match req.method() {
            "POST" => modern::post(rt, held, req, res, view),
            _ => modern::not_post(res),
        },
        Endpoint::Mcp(_) => streamable::handle(rt, req, res, view),
        Endpoint::Other => {
            let p = req.path();
            let msg = format!("no MCP endpoint at {}; use /sse or /mcp", crate::util::printable(p, 100));
            res.send(json_error(404, None, ErrorObj::new(-32601, msg)));
        }
    }
}

/// Whether a request is of the stateless revision (by its header, as
/// dual-era servers route: the body's `_meta` is checked against it).
fn modern_request(req: &Request) -> bool {
    req.header("MCP-Protocol-Version").is_some_and(|v| crate::codec::mcp::is_modern(v.trim()))
}

pub fn json_response(status: u16, body: Vec<u8>) -> Response {
    Response::json(status, body)
}

/// An HTTP error whose body is an id-less (or id-bearing) JSON-RPC error.
pub fn json_error(status: u16, id: Option<crate::codec::Id>, err: ErrorObj) -> Response {
    json_response(status, Message::error(id, err).to_bytes())
}

/// The headers of an SSE response.
pub fn sse_headers() -> Vec<(&'static str, String)> {
    vec![
        ("Content-Type", "text/event-stream".to_owned()),
        ("Cache-Control", "no-cache".to_owned()),
        ("X-Accel-Buffering", "no".to_owned()),
    ]
}

/// How a data-plane event stream behaves: keep-alive comments, and the
/// bytes a client may fall behind by before it loses its session.
pub fn stream_opts(rt: &Runtime) -> StreamOpts {
    StreamOpts {
        keepalive: Some(b": keep-alive\n\n"),
        keepalive_every: KEEP_ALIVE,
        max_backlog: rt.config().server.max_outbox_bytes,
        cork: None,
    }
}

/// The host part of a `host[:port]` or `[v6]:port` authority.
fn authority_host(a: &str) -> &str {
    if let Some(v6) = a.strip_prefix('[') {
        return v6.split(']').next().unwrap_or("");
    }
    match a.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|c| c.is_ascii_digit()) => h,
        _ => a,
    }
}

fn is_loopback_name(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost") || host == "127.0.0.1" || host == "::1"
}

/// Origin check (MCP transports: a MUST since 2024-11-05; 403 since
/// 2025-11-25). No Origin (non-browser clients) passes. A loopback origin
/// passes when its host is exactly `localhost`, `127.0.0.1` or `[::1]`
/// (any port, http or https); others only if listed in
/// `server.allowed_origins` ("*" allows all).
pub fn origin_allowed(allowed: &[String], origin: Option<&str>) -> bool {
    let Some(o) = origin else { return true };
    if allowed.iter().any(|a| a == "*" || a.eq_ignore_ascii_case(o)) {
        return true;
    }
    let Some(rest) = o.strip_prefix("http://").or_else(|| o.strip_prefix("https://")) else {
        return false;
    };
    // An origin is scheme://host[:port], nothing after it.
    if rest.contains(['/', '?', '#', '@']) {
        return false;
    }
    is_loopback_name(authority_host(rest))
}

fn check_origin(allowed: &[String], origin: Option<&str>) -> Result<(), Response> {
    if origin_allowed(allowed, origin) {
        return Ok(());
    }
    let shown = crate::util::printable(origin.unwrap_or(""), 200);
    log::warn!("refused a request from origin {shown:?}");
    Err(json_error(
        403,
        None,
        ErrorObj::new(crate::codec::code::INVALID_REQUEST, format!("Origin {shown:?} is not allowed")),
    ))
}

/// Host check against DNS rebinding: on a loopback listener, `Host` must
/// name the loopback (`localhost`, `127.0.0.1`, `[::1]`, any port) or be
/// listed in `server.allowed_hosts`; on other addresses only the list
/// applies, when one is given.
pub fn host_allowed(cfg: &ServerConfig, local_is_loopback: bool, host: Option<&str>) -> bool {
    let Some(h) = host else { return true }; // HTTP/1.0
    let name = authority_host(h.trim());
    if cfg.allowed_hosts.iter().any(|a| a == "*" || a.eq_ignore_ascii_case(name) || a.eq_ignore_ascii_case(h)) {
        return true;
    }
    if local_is_loopback {
        is_loopback_name(name)
    } else {
        cfg.allowed_hosts.is_empty()
    }
}

fn check_host(cfg: &ServerConfig, req: &Request) -> Result<(), Response> {
    if host_allowed(cfg, req.local.ip().is_loopback(), req.header("Host")) {
        return Ok(());
    }
    let shown = crate::util::printable(req.header("Host").unwrap_or(""), 200);
    log::warn!("refused a request for host {shown:?}");
    Err(json_error(
        403,
        None,
        ErrorObj::new(crate::codec::code::INVALID_REQUEST, format!("Host {shown:?} is not allowed")),
    ))
}

/// Why a body could not be taken.
pub enum BodyError {
    WrongType(String),
}

/// Checks that a request body is JSON.
pub fn json_body(req: &Request) -> Result<&[u8], BodyError> {
    let ctype = req.header("Content-Type").unwrap_or("").to_ascii_lowercase();
    if !ctype.starts_with("application/json") {
        return Err(BodyError::WrongType(ctype));
    }
    Ok(&req.body)
}

/// The response to a body error (415).
pub fn body_error(e: BodyError) -> Response {
    let BodyError::WrongType(t) = e;
    let msg = format!("Content-Type must be application/json, not {:?}", crate::util::printable(&t, 100));
    json_error(415, None, ErrorObj::new(crate::codec::code::INVALID_REQUEST, msg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_and_views() {
        assert_eq!(endpoint("/mcp"), Endpoint::Mcp(None));
        assert_eq!(endpoint("/mcp/"), Endpoint::Mcp(None));
        assert_eq!(endpoint("/mcp/dev"), Endpoint::Mcp(Some("dev")));
        assert_eq!(endpoint("/mcp/dev/"), Endpoint::Mcp(Some("dev")));
        assert_eq!(endpoint("/mcp/dev/x"), Endpoint::Other);
        assert_eq!(endpoint("/mcpx"), Endpoint::Other);
        assert_eq!(endpoint("/sse"), Endpoint::Sse(None));
        assert_eq!(endpoint("/sse/ops"), Endpoint::Sse(Some("ops")));
        assert_eq!(endpoint("/sse//"), Endpoint::Other);
        assert_eq!(endpoint("/messages/"), Endpoint::Messages);
        assert_eq!(endpoint("/messages/dev"), Endpoint::Other);
    }

    #[test]
    fn view_binding() {
        let list = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(view_allowed(None, None));
        assert!(view_allowed(None, Some("dev")));
        let dev = list(&["dev"]);
        assert!(view_allowed(Some(&dev), Some("dev")));
        assert!(!view_allowed(Some(&dev), Some("ops")));
        assert!(!view_allowed(Some(&dev), None));
        let star = list(&["*", "ops"]);
        assert!(view_allowed(Some(&star), None));
        assert!(view_allowed(Some(&star), Some("ops")));
        assert!(!view_allowed(Some(&star), Some("dev")), "\"*\" is the default endpoint, not every view");
        assert!(!view_allowed(Some(&[]), None));
        // Anonymous, or a token without a view list: everything.
        assert!(admitted(None, None) && admitted(None, Some("dev")));
        let bound = crate::auth::data::Identity {
            kind: crate::auth::data::Kind::Token,
            name: "alice".into(),
            views: Some(list(&["dev"])),
        };
        assert!(admitted(Some(&bound), Some("dev")) && !admitted(Some(&bound), None));
    }

    #[test]
    fn origins() {
        let none: Vec<String> = vec![];
        assert!(origin_allowed(&none, None));
        assert!(origin_allowed(&none, Some("http://localhost:3000")));
        assert!(origin_allowed(&none, Some("http://127.0.0.1")));
        assert!(origin_allowed(&none, Some("https://[::1]:8080")));
        assert!(!origin_allowed(&none, Some("https://evil.example")));
        assert!(!origin_allowed(&none, Some("http://localhost.evil.example")));
        assert!(!origin_allowed(&none, Some("http://127.0.0.1.evil.com")));
        assert!(!origin_allowed(&none, Some("http://127.0.0.2")));
        assert!(!origin_allowed(&none, Some("http://127.0.0.1@evil.com")));
        assert!(!origin_allowed(&none, Some("http://localhost:80/x")));
        assert!(!origin_allowed(&none, Some("null")));
        let list = vec!["https://app.example".to_owned()];
        assert!(origin_allowed(&list, Some("https://app.example")));
        assert!(!origin_allowed(&list, Some("https://other.example")));
        assert!(origin_allowed(&["*".to_owned()], Some("https://x")));
    }

    #[test]
    fn hosts() {
        let cfg = ServerConfig::default();
        assert!(host_allowed(&cfg, true, None));
        assert!(host_allowed(&cfg, true, Some("127.0.0.1:9000")));
        assert!(host_allowed(&cfg, true, Some("localhost")));
        assert!(host_allowed(&cfg, true, Some("[::1]:9000")));
        assert!(!host_allowed(&cfg, true, Some("evil.com")));
        assert!(!host_allowed(&cfg, true, Some("127.0.0.1.evil.com:9000")));
        assert!(host_allowed(&cfg, false, Some("gw.example.com")));
        let listed = ServerConfig { allowed_hosts: vec!["gw.example.com".into()], ..ServerConfig::default() };
        assert!(host_allowed(&listed, false, Some("gw.example.com:443")));
        assert!(!host_allowed(&listed, false, Some("other.example.com")));
        assert!(host_allowed(&listed, true, Some("gw.example.com")));
    }
}
