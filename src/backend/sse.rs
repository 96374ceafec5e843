//! Remote legacy HTTP+SSE backends (protocol 2024-11-05 style): a GET
//! stream read by `backend:<n>:stream`, whose first `endpoint` event names
//! the URL that `backend:<n>:poster` POSTs every message to. Optionally
//! starts a local server process first (legacy config behaviour, see
//! `local.rs`) and probes for readiness instead of sleeping.
//!
//! Also what both remote transports share ([`Remote`]): the HTTP agents
//! (no redirects, the backend's own TLS roots), the bounds of what a
//! backend may send, and the checks that keep a hostile backend from
//! steering the gateway's credentials elsewhere: the `endpoint` must be on
//! the stream's own origin, a 3xx is an error, never followed. See
//! docs/security.md, "Hostile backends".

use super::conn::{Conn, ConnSpec, Outgoing};
use super::error::BackendError;
use super::local::{self, LocalServer};
use super::stdio;
use super::wire;
use crate::codec::sse::SseDecoder;
use crate::config::{redact_url, scrub_url, CaCert, Command};
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender};
use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Most data one SSE event from a backend may carry (all its `data:` lines
/// together). A larger event is dropped, with a warning, and memory never
/// grows past this: a stream of `data:` lines that never ends its event
/// would otherwise grow without bound. Same as the JSON body bound of a
/// Streamable HTTP answer.
pub const MAX_EVENT: usize = 64 * 1024 * 1024;

/// How to reach one remote backend: its URL, the headers sent with every
/// request, and the TLS roots (`ca_cert`) its agents verify against.
#[derive(Clone)]
pub struct Remote {
    pub url: String,
    pub headers: Vec<(String, String)>,
    /// `ca_cert`: the only roots for this backend; `None`: the built-in
    /// (webpki) roots.
    tls: Option<ureq::tls::TlsConfig>,
}

impl Remote {
    pub fn new(url: &str, headers: &[(String, String)], ca_cert: Option<&CaCert>) -> Remote {
        let tls = ca_cert.map(|ca| {
            let roots = ca.certs.iter().map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned()).collect();
            ureq::tls::TlsConfig::builder().root_certs(ureq::tls::RootCerts::Specific(Arc::new(roots))).build()
        });
        Remote { url: url.to_owned(), headers: headers.to_vec(), tls }
    }

    /// An agent for long-lived streams: connect timeout only, no read
    /// timeout (a stream may be quiet for hours; death is seen as EOF or an
    /// error).
    pub fn stream_agent(&self) -> ureq::Agent {
        self.agent(None)
    }

    /// An agent for request/response POSTs, bounded per call.
    pub fn post_agent(&self, timeout: Duration) -> ureq::Agent {
        self.agent(Some(timeout + Duration::from_secs(5)))
    }

    fn agent(&self, global: Option<Duration>) -> ureq::Agent {
        let mut cfg = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_global(global)
            // Never follow a backend elsewhere: ureq would carry every
            // configured header except Authorization and Cookie (an
            // X-Api-Key, say) to wherever a 3xx points. A 3xx is an error
            // naming its Location (see [`redirect`]).
            .max_redirects(0);
        if let Some(tls) = &self.tls {
            cfg = cfg.tls_config(tls.clone());
        }
        cfg.build().into()
    }

    /// The warning for credentials sent in clear text (see
    /// [`plain_http_warning`]), logged once when the backend starts: the
    /// first attempt of a backend made at start or by a reload.
    pub fn warn_if_plain(&self, name: &str, generation: u64) {
        if generation == 1 {
            if let Some(w) = plain_http_warning(name, &self.url, &self.headers) {
                log::warn!("{w}");
            }
        }
    }
}

/// Opens the stream (starting the local server first, if any), waits for
/// its `endpoint` and starts the poster. Every failure is an
/// [`ErrorKind::Open`](super::ErrorKind::Open).
pub fn open(spec: &ConnSpec, remote: &Remote, local: Option<&Command>) -> Result<Arc<Conn>, BackendError> {
    connect(spec, remote, local).map_err(|e| BackendError::open(&spec.backend, e))
}

fn connect(spec: &ConnSpec, remote: &Remote, local: Option<&Command>) -> Result<Arc<Conn>, String> {
    let (name, timeout) = (&spec.backend, spec.timeout);
    remote.warn_if_plain(name, spec.generation);
    let url = remote.url.as_str();
    let server = local.map(|cmd| LocalServer::start(name, cmd, url)).transpose()?;
    let agent = remote.stream_agent();
    let resp = match get_stream(name, remote, &agent, server.as_ref(), timeout) {
        Ok(r) => r,
        Err(e) => {
            if let Some(s) = &server {
                s.stop();
            }
            return Err(e);
        }
    };
    let (conn, out_rx) = Conn::new(spec, server.as_ref().map(|s| s.pid));
    let exited = server.as_ref().map(LocalServer::exited);
    // Attach before anything can fail: from here the process's exit ends
    // the connection, and closing the connection stops the process.
    let (attached, stop_server) = match server {
        Some(s) => (s.attach(&conn), Some(s.closer())),
        None => (Ok(()), None),
    };
    // Closing also shuts the stream's socket: the reader thread is blocked
    // reading it, and a backend that keeps a dropped stream open and quiet
    // would otherwise hold that thread and socket for as long as it likes,
    // one more with each attempt. The same for a POST the backend is slow
    // to answer.
    let post = remote.post_agent(timeout);
    let post_c = post.clone();
    conn.set_closer(Box::new(move || {
        agent.shutdown();
        post_c.shutdown();
        stop_server.and_then(|stop| stop())
    }));
    if let Err(e) = attached {
        conn.close(&e);
        return Err(e);
    }
    let (ep_tx, ep_rx) = bounded::<String>(1);
    let base = url.to_owned();
    let c = conn.clone();
    let body = resp.into_body();
    crate::thread::spawn(format!("backend:{name}:stream"), move || {
        read_stream(&c, body.into_reader(), &base, Some(ep_tx), exited.as_ref());
        Ok(())
    })
    .map_err(|e| cannot_start(&conn, &e))?;
    let endpoint = match ep_rx.recv_timeout(timeout.min(Duration::from_secs(30))) {
        Ok(ep) => ep,
        Err(_) => {
            conn.close("no endpoint event");
            return Err(format!("{} sent no `endpoint` event", redact_url(url)));
        }
    };
    // Checked before anything is sent: the POSTs carry every configured
    // header, and the messages themselves.
    if let Err(e) = check_endpoint(name, url, &endpoint) {
        conn.close(&e);
        return Err(e);
    }
    let c = conn.clone();
    let remote = remote.clone();
    crate::thread::spawn(format!("backend:{name}:poster"), move || {
        post_loop(&c, &endpoint, &remote, &post, &out_rx);
        Ok(())
    })
    .map_err(|e| cannot_start(&conn, &e))?;
    Ok(conn)
}

/// A thread of the connection could not start: close it (stopping a local
/// server) and say why.
fn cannot_start(conn: &Conn, e: &std::io::Error) -> String {
    let why = format!("cannot start I/O threads: {e}");
    conn.close(&why);
    why
}

/// Opens the event stream. With a local server, retries the connect every
/// 100 ms (or at once when the server exits) until `min(timeout, 30 s)`:
/// it needs a moment to bind, and sleeping a fixed time would be a guess.
/// This is the one wait in the backends that retries on a clock: nothing
/// tells another process's bind to the gateway, and the exit, the one
/// event there is, ends the wait at once.
fn get_stream(
    name: &str,
    remote: &Remote,
    agent: &ureq::Agent,
    server: Option<&LocalServer>,
    timeout: Duration,
) -> Result<ureq::http::Response<ureq::Body>, String> {
    let url = remote.url.as_str();
    let deadline = Instant::now() + timeout.min(Duration::from_secs(30));
    loop {
        if let Some(s) = server.filter(|s| s.has_exited()) {
            let status = s.exit_status().unwrap_or_default();
            return Err(format!("{} before serving ({status})", local::EXITED));
        }
        let mut req = agent.get(url).header("Accept", "text/event-stream");
        for (k, v) in &remote.headers {
            req = req.header(k, v);
        }
        match req.call() {
            Ok(r) if r.status() == 200 => return Ok(r),
            Ok(r) => {
                let why = redirect(&r, url).unwrap_or_else(|| format!("answered HTTP {}", r.status()));
                return Err(format!("backend '{name}': GET {} {why}", redact_url(url)));
            }
            Err(e) => match server {
                Some(s) if Instant::now() < deadline => {
                    s.wait_exit(Duration::from_millis(100));
                }
                _ => return Err(format!("GET {} failed: {}", redact_url(url), scrub(&e, url))),
            },
        }
    }
}

/// Reads SSE events until the stream ends. `endpoint` receives the first
/// `endpoint` event's URL, resolved against `base`. `exited` is a local
/// server's exit signal: a stream that ends because its server died is
/// reported as that death.
fn read_stream(
    conn: &Conn,
    mut body: impl Read,
    base: &str,
    mut endpoint: Option<Sender<String>>,
    exited: Option<&Receiver<()>>,
) {
    let mut dec = SseDecoder::with_limits(stdio::MAX_LINE, MAX_EVENT);
    let mut buf = vec![0u8; 16 * 1024];
    let why = loop {
        let n = match body.read(&mut buf) {
            Ok(0) => break "event stream closed".to_owned(),
            Ok(n) => n,
            Err(e) => break format!("event stream failed: {}", scrub(&e, base)),
        };
        if !conn.is_alive() {
            return;
        }
        dec.push(&buf[..n]);
        loop {
            match dec.next_event() {
                Ok(Some(ev)) if ev.event == "endpoint" => {
                    if let Some(tx) = endpoint.take() {
                        let _ = tx.send(resolve(base, ev.data.trim()));
                    }
                }
                Ok(Some(ev)) if ev.event == "message" => {
                    dispatch_data(conn, &ev.data, None);
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                // A line or an event over its bound: dropped, the stream goes on.
                Err(e) => log::warn!("backend '{}': {e}", conn.backend),
            }
        }
    };
    // The server's sockets close as it exits, a moment before its waiter
    // can reap it: give the waiter that moment, so the reason is the exit.
    if let Some(rx) = exited.filter(|_| conn.is_alive()) {
        if matches!(rx.recv_timeout(Duration::from_secs(1)), Err(RecvTimeoutError::Disconnected)) {
            conn.died(local::EXITED);
            return;
        }
    }
    conn.died(&why);
}

/// Routes one SSE `data` payload (a message or, from servers that batch,
/// an array of them). Returns whether it answered gateway request `request`.
pub fn dispatch_data(conn: &Conn, data: &str, request: Option<i64>) -> bool {
    wire::route(conn, data.as_bytes(), request).unwrap_or_else(|e| {
        log::warn!(
            "backend '{}' sent an event that is not JSON-RPC ({e}); skipped: {}",
            conn.backend,
            wire::snippet(data.as_bytes())
        );
        false
    })
}

/// POSTs each message to `endpoint` (checked: on the stream's origin).
/// The stream's URL is there to keep its secrets out of error texts: the
/// endpoint often shares its query.
fn post_loop(conn: &Conn, endpoint: &str, remote: &Remote, agent: &ureq::Agent, rx: &Receiver<Outgoing>) {
    let url = remote.url.as_str();
    while let Ok(msg) = rx.recv() {
        let mut req = agent.post(endpoint).header("Content-Type", "application/json");
        for (k, v) in &remote.headers {
            req = req.header(k, v);
        }
        match req.send(&msg.bytes[..]) {
            Ok(r) if (200..300).contains(&r.status().as_u16()) => {}
            Ok(r) if r.status() == 404 => {
                conn.died("the server forgot our session (HTTP 404)");
                return;
            }
            Ok(r) => {
                let why = redirect(&r, endpoint).map(|w| scrub_url(&w, url));
                let why = why.unwrap_or_else(|| format!("answered HTTP {}", r.status()));
                fail_request(conn, msg.request_id, &format!("POST {why}"));
            }
            Err(e) => {
                let e = scrub_url(&scrub(&e, endpoint), url);
                conn.died(&format!("POST {} failed: {e}", redact_url(endpoint)));
                return;
            }
        }
    }
}

/// An error text of the HTTP client without the secrets of `url` (it may
/// quote the URL): what the backend layer shows goes to `last_error`,
/// events, the log and client errors.
pub fn scrub(e: &impl std::fmt::Display, url: &str) -> String {
    scrub_url(&e.to_string(), url)
}

/// Fails one call whose message the server refused.
pub fn fail_request(conn: &Conn, id: Option<i64>, why: &str) {
    let Some(id) = id else {
        log::warn!("backend '{}': {why}", conn.backend);
        return;
    };
    let err = crate::codec::Message::error(
        Some(crate::codec::Id::Num(id)),
        crate::codec::ErrorObj::new(
            crate::codec::code::BACKEND_UNAVAILABLE,
            format!("backend '{}': {why}", conn.backend),
        ),
    );
    conn.handle_incoming(err);
}

/// Resolves an endpoint (absolute URL, network-path `//host/…`, absolute
/// path, or relative path) against the URL of the stream it came from.
/// Where the result points is checked separately ([`check_endpoint`]).
pub fn resolve(base: &str, ep: &str) -> String {
    if has_scheme(ep) {
        return ep.to_owned();
    }
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    if ep.starts_with("//") {
        return format!("{}{ep}", &base[..scheme_end.saturating_sub(2)]);
    }
    let origin_end = base[scheme_end..].find(['/', '?', '#']).map_or(base.len(), |i| scheme_end + i);
    if ep.starts_with('/') {
        return format!("{}{ep}", &base[..origin_end]);
    }
    let path = &base[origin_end..];
    let path = path.split(['?', '#']).next().unwrap_or("");
    let dir = path.rfind('/').map_or("/", |i| &path[..=i]);
    format!("{}{dir}{ep}", &base[..origin_end])
}

/// Whether `s` starts with a URI scheme (`ALPHA *(ALPHA / DIGIT / + - .) ":"`).
fn has_scheme(s: &str) -> bool {
    let Some((scheme, _)) = s.split_once(':') else { return false };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        && !scheme.contains(['/', '?', '#'])
}

/// Scheme, host and port of a URL, read by the same parser the HTTP client
/// connects with, lower-cased, default port filled in.
#[derive(Debug, PartialEq, Eq)]
pub struct Origin {
    pub scheme: String,
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}

/// The [`Origin`] of an http(s) URL; `None` for anything else.
pub fn origin_of(url: &str) -> Option<Origin> {
    let uri: ureq::http::Uri = url.parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let default = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    let host = uri.host()?.to_ascii_lowercase();
    if host.is_empty() {
        return None;
    }
    Some(Origin { port: uri.port_u16().unwrap_or(default), scheme, host })
}

/// The `endpoint` a legacy SSE stream named must be on the stream's own
/// origin (scheme, host and port): every message, with every configured
/// header, is POSTed there. Anything else (another host or port, a
/// downgrade from https to http, an internal address) is refused, and the
/// error names the backend and the endpoint, redacted.
pub fn check_endpoint(name: &str, url: &str, endpoint: &str) -> Result<(), String> {
    let stream = origin_of(url);
    let target = origin_of(endpoint);
    if stream.is_some() && stream == target {
        return Ok(());
    }
    let expected = stream.map_or_else(|| redact_url(url), |o| o.to_string());
    Err(format!(
        "backend '{name}' named the endpoint {}, which is not on its stream's origin ({expected}); refused, nothing was sent to it",
        shown(endpoint, url)
    ))
}

/// The error text for a 3xx answer to a request for `url`: the status and
/// where it pointed (redacted). `None` if the answer is not a 3xx.
pub fn redirect(resp: &ureq::http::Response<ureq::Body>, url: &str) -> Option<String> {
    let status = resp.status();
    if !status.is_redirection() {
        return None;
    }
    let to = match resp.headers().get("location") {
        Some(v) => shown(&resolve(url, String::from_utf8_lossy(v.as_bytes()).trim()), url),
        None => "nowhere (no Location)".to_owned(),
    };
    Some(format!("answered HTTP {} redirecting to {to}; redirects from backends are not followed", status.as_u16()))
}

/// A URL a backend sent (an endpoint, a Location), fit for an error or a
/// log line: its own secrets and those of the configured `url` hidden,
/// control characters escaped, at most 200 bytes.
fn shown(sent: &str, url: &str) -> String {
    wire::snippet(scrub_url(&redact_url(sent), url).as_bytes())
}

/// A warning when a backend's credentials (headers, URL user info, a
/// secret-looking query value) would cross the network in clear text:
/// an `http://` URL to a host that is not loopback. Names the backend and
/// the kinds of credentials (header names, never values).
pub fn plain_http_warning(name: &str, url: &str, headers: &[(String, String)]) -> Option<String> {
    let origin = origin_of(url)?;
    if origin.scheme != "http" || is_loopback(&origin.host) {
        return None;
    }
    let mut what = Vec::new();
    if !headers.is_empty() {
        let names: Vec<&str> = headers.iter().map(|(k, _)| k.as_str()).collect();
        what.push(format!("headers {}", names.join(", ")));
    }
    let rest = url.split_once("://").map_or("", |(_, r)| r);
    let (authority, tail) = rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()));
    if authority.contains('@') {
        what.push("user info in the URL".to_owned());
    }
    let probe = format!("http://h{tail}");
    if redact_url(&probe) != probe {
        what.push("a secret in the URL's query".to_owned());
    }
    if what.is_empty() {
        return None;
    }
    Some(format!(
        "backend '{name}': {origin} is plain HTTP to a host that is not loopback, and every request to it carries \
         credentials ({}) that anyone on the network path can read; use https:// (with ca_cert for a private CA)",
        what.join("; ")
    ))
}

/// `localhost`, 127.0.0.0/8 or ::1.
fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost" || bare.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_resolution() {
        let b = "http://127.0.0.1:9101/sse";
        assert_eq!(resolve(b, "/messages/?session_id=1"), "http://127.0.0.1:9101/messages/?session_id=1");
        assert_eq!(resolve(b, "messages?sessionId=1"), "http://127.0.0.1:9101/messages?sessionId=1");
        assert_eq!(resolve("https://h/a/b/sse?x=1", "m?s=2"), "https://h/a/b/m?s=2");
        assert_eq!(resolve(b, "https://other/x"), "https://other/x");
        assert_eq!(resolve("http://h", "/m"), "http://h/m");
        assert_eq!(resolve("http://h?x=1", "m"), "http://h/m");
        assert_eq!(resolve(b, "HTTP://Other/x"), "HTTP://Other/x");
        assert_eq!(resolve(b, "//other:1/x"), "http://other:1/x");
        assert_eq!(resolve(b, "ftp://other/x"), "ftp://other/x");
        assert_eq!(resolve(b, "m:1"), "m:1");
        assert_eq!(resolve(b, "./m?a:b"), "http://127.0.0.1:9101/./m?a:b");
    }

    #[test]
    fn origins() {
        let o = |u: &str| origin_of(u).map(|o| o.to_string());
        assert_eq!(o("http://127.0.0.1:9101/sse").as_deref(), Some("http://127.0.0.1:9101"));
        assert_eq!(o("HTTPS://Example.COM/x?y").as_deref(), Some("https://example.com:443"));
        assert_eq!(o("http://u:p@h/x").as_deref(), Some("http://h:80"));
        assert_eq!(o("http://127.0.0.1:9101@evil.example/x").as_deref(), Some("http://evil.example:80"));
        assert_eq!(o("http://[::1]:8/x").as_deref(), Some("http://[::1]:8"));
        assert_eq!(o("ftp://h/x"), None);
        assert_eq!(o("/relative"), None);
        assert_eq!(o("http://h\\@127.0.0.1/"), None, "not a URL the client would connect to");
    }

    #[test]
    fn endpoints_must_stay_on_the_streams_origin() {
        let url = "https://h.example:8443/sse?token=SECRET1";
        for ok in
            ["https://h.example:8443/messages?sessionId=1", "HTTPS://H.EXAMPLE:8443/m", "https://u@h.example:8443/"]
        {
            assert_eq!(check_endpoint("b", url, ok), Ok(()), "{ok}");
        }
        assert_eq!(check_endpoint("b", "http://h/sse", "http://h:80/m"), Ok(()), "the default port is the same port");
        let refused = [
            ("http://h.example:8443/m", "http://h.example:8443/m"),
            ("https://h.example/m", "https://h.example/m"),
            ("https://other.example:8443/m", "https://other.example:8443/m"),
            ("https://h.example:8443@other.example/m", "https://h.example:***@other.example/m"),
            ("http://169.254.169.254/latest?token=SECRET1", "http://169.254.169.254/latest?token=***"),
            ("javascript:alert(1)", "javascript:alert(1)"),
            ("https://h.example:8443\u{1b}[2J/x", "https://h.example:8443\\u{1b}[2J/x"),
        ];
        for (ep, shown) in refused {
            let e = check_endpoint("b", url, ep).unwrap_err();
            assert_eq!(
                e,
                format!(
                    "backend 'b' named the endpoint {shown}, which is not on its stream's origin \
                     (https://h.example:8443); refused, nothing was sent to it"
                ),
                "{ep}"
            );
            assert!(!e.contains("SECRET1"));
        }
    }

    #[test]
    fn plain_http_with_credentials_is_warned_about() {
        let h = |k: &str| vec![(k.to_owned(), "SECRET2".to_owned())];
        let w = plain_http_warning("api", "http://10.0.0.5:8080/mcp", &h("X-Api-Key")).unwrap();
        assert_eq!(
            w,
            "backend 'api': http://10.0.0.5:8080 is plain HTTP to a host that is not loopback, and every request \
             to it carries credentials (headers X-Api-Key) that anyone on the network path can read; use https:// \
             (with ca_cert for a private CA)"
        );
        let w = plain_http_warning("u", "http://user:SECRET2@mcp.example/sse?api_key=SECRET2", &[]).unwrap();
        assert!(w.contains("credentials (user info in the URL; a secret in the URL's query)"), "{w}");
        assert!(!w.contains("SECRET2"), "{w}");
        assert!(plain_http_warning("q", "http://mcp.example/sse?token=t", &[]).is_some());
        // Nothing to warn about: TLS, loopback, or no credentials.
        assert_eq!(plain_http_warning("a", "https://10.0.0.5/mcp", &h("Authorization")), None);
        for local in ["http://127.0.0.1:1/mcp", "http://127.8.9.10/x", "http://localhost/x", "http://[::1]:3/x"] {
            assert_eq!(plain_http_warning("a", local, &h("Authorization")), None, "{local}");
        }
        assert_eq!(plain_http_warning("a", "http://mcp.example/mcp?page=2", &[]), None);
    }
}
