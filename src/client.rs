//! Client of the management API `/manage/v1` (CONTRACT §5), used by the TUI.
//! Runs on whichever thread calls it (the TUI's poller); every call is
//! blocking and bounded by timeouts, so a slow server costs a late snapshot,
//! never a frozen UI.
//!
//! Answers are read into the server's own structs, [`crate::api`], which
//! are tolerant readers: a field the server adds is ignored and a field it
//! leaves out reads as empty instead of failing the whole poll.

use crate::api::{
    BackendList, BackendView, Capabilities, ErrorBody, EventList, Health, ReconnectResult, ReloadResult, Status,
};
use serde::de::DeserializeOwned;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// TCP connect timeout: a loopback or LAN server answers far sooner; past
/// this the server is as good as unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Whole-call timeout (connect, send, headers and body).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest response body read; a capabilities list with big schemas stays
/// far below it.
const MAX_BODY: u64 = 16 * 1024 * 1024;

/// Where the bearer token comes from. The token itself is read at each call,
/// so a token file the server (re)writes after the TUI started is picked up:
/// a server without configured tokens writes a new one at every start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    None,
    Env(String),
    File(PathBuf),
    /// Held in memory: the legacy combined mode's TUI gets a token from
    /// the server it runs beside, never written anywhere.
    InMemory(Secret),
}

/// A token that `Debug` never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// One server to talk to: a profile, or an ad-hoc `--url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Shown in the header and the profile selector.
    pub name: String,
    /// Base URL such as `http://127.0.0.1:9001`; `/manage/v1` is appended.
    pub url: String,
    pub token: TokenSource,
    /// PEM file with the CA certificate(s) to trust instead of the WebPKI roots.
    pub ca_cert: Option<PathBuf>,
}

/// What went wrong with a call, as the UI shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientError {
    /// No HTTP answer: refused, DNS, TLS handshake, timeout.
    Unreachable(String),
    /// 401: missing or wrong token.
    Unauthorized(String),
    /// 403: the token lacks the scope (a read-only token trying a POST).
    Forbidden(String),
    /// 404: unknown backend, or no `/manage/v1` at this URL.
    NotFound(String),
    /// Any other non-2xx status, with the server's message.
    Server(u16, String),
    /// A 2xx body that is not the JSON the contract promises.
    BadJson(String),
    /// A local problem before any request: unreadable CA certificate.
    Config(String),
    /// The token source is set but gives no token (variable unset or empty,
    /// file missing or empty): a local problem, so no request was sent.
    NoToken(String),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Unreachable(m) => write!(f, "unreachable: {m}"),
            ClientError::Unauthorized(m) => write!(f, "401 unauthorized: {m}"),
            ClientError::Forbidden(m) => write!(f, "403 forbidden: {m}"),
            ClientError::NotFound(m) => write!(f, "404 not found: {m}"),
            ClientError::Server(status, m) => write!(f, "HTTP {status}: {m}"),
            ClientError::BadJson(m) => write!(f, "unexpected response: {m}"),
            ClientError::Config(m) => write!(f, "{m}"),
            ClientError::NoToken(m) => write!(f, "no token: {m}"),
        }
    }
}

impl std::error::Error for ClientError {}

// ---- the client

/// A blocking client for one [`Target`].
pub struct Client {
    target: Target,
    /// Base URL without a trailing slash or `/manage/v1`.
    base: String,
    agent: ureq::Agent,
}

impl Client {
    /// Builds the HTTP agent; fails only on a CA certificate that cannot be
    /// read or holds no certificate.
    pub fn new(target: &Target) -> Result<Client, ClientError> {
        let mut cfg = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_global(Some(CALL_TIMEOUT))
            // A management API has no business redirecting, and following a
            // redirect could carry the token elsewhere.
            .max_redirects(0)
            .user_agent(concat!("mcp-sentinel-tui/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &target.ca_cert {
            let certs = load_ca(path)?;
            let tls = ureq::tls::TlsConfig::builder().root_certs(ureq::tls::RootCerts::from(certs)).build();
            cfg = cfg.tls_config(tls);
        }
        Ok(Client { target: target.clone(), base: base_url(&target.url), agent: cfg.build().into() })
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    pub fn health(&self) -> Result<Health, ClientError> {
        self.get("/health")
    }

    pub fn status(&self) -> Result<Status, ClientError> {
        self.get("/status")
    }

    pub fn backends(&self) -> Result<Vec<BackendView>, ClientError> {
        self.get::<BackendList>("/backends").map(|l| l.backends)
    }

    pub fn capabilities(&self) -> Result<Capabilities, ClientError> {
        self.get("/capabilities")
    }

    /// Events with an id above `after` (all kept ones if `None`), at most `limit`.
    pub fn events(&self, after: Option<u64>, limit: Option<u32>) -> Result<EventList, ClientError> {
        let mut query = Vec::new();
        if let Some(a) = after {
            query.push(format!("after={a}"));
        }
        if let Some(l) = limit {
            query.push(format!("limit={l}"));
        }
        let path = if query.is_empty() { "/events".to_string() } else { format!("/events?{}", query.join("&")) };
        self.get(&path)
    }

    pub fn reload(&self) -> Result<ReloadResult, ClientError> {
        self.post("/reload")
    }

    pub fn reconnect(&self, backend: &str) -> Result<ReconnectResult, ClientError> {
        self.post(&format!("/backends/{}/reconnect", encode_segment(backend)))
    }

    fn url(&self, path: &str) -> String {
        format!("{}/manage/v1{path}", self.base)
    }

    fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let (token, problem) = self.token(path)?;
        let mut req = self.agent.get(self.url(path)).header("Accept", "application/json");
        if let Some(t) = &token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        finish(req.call(), problem)
    }

    fn post<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let (token, problem) = self.token(path)?;
        let mut req = self.agent.post(self.url(path)).header("Accept", "application/json");
        if let Some(t) = &token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        finish(req.send_empty(), problem)
    }

    /// The token for a request to `path`, or why there is none. A token
    /// source that gives no token stops the request here: every endpoint
    /// but `/health` needs one, and a request without it would only earn a
    /// 401 (and an audit event on the server) that hides the local cause.
    /// `/health` may be public (`manage.public_health`), so it goes out
    /// without a token, the reason kept to explain a 401.
    fn token(&self, path: &str) -> Result<(Option<String>, Option<String>), ClientError> {
        match read_token(&self.target.token) {
            Ok(t) => Ok((t, None)),
            Err(problem) if path == "/health" => Ok((None, Some(problem))),
            Err(problem) => Err(ClientError::NoToken(problem)),
        }
    }
}

/// Reads the token from its source; `Ok(None)` when no source is set.
pub fn read_token(source: &TokenSource) -> Result<Option<String>, String> {
    match source {
        TokenSource::None => Ok(None),
        TokenSource::InMemory(s) => Ok(Some(s.0.clone())),
        TokenSource::Env(var) => match std::env::var(var) {
            Ok(v) if !v.trim().is_empty() => Ok(Some(v.trim().to_string())),
            Ok(_) => Err(format!("environment variable {var} is empty")),
            Err(_) => Err(format!("environment variable {var} is not set")),
        },
        // By the gateway's rules for token files (crate::secfile): a file
        // others can change, or one reached through their directory or
        // link, is not sent; nor is anything over 64 KiB. A token readable
        // by others is sent (the TUI has no log to warn in).
        TokenSource::File(path) => match crate::secfile::read_operator_secret(path, crate::secfile::TOKEN_LIMIT) {
            Ok(r) if !r.text.trim().is_empty() => Ok(Some(r.text.trim().to_string())),
            Ok(_) => Err(format!("token file {} is empty", path.display())),
            Err(e) if matches!(e.kind, crate::secfile::ErrorKind::NotFound | crate::secfile::ErrorKind::Io) => {
                Err(format!("cannot read token file {}: {}", path.display(), e.reason))
            }
            Err(e) => Err(format!("token file {e}")),
        },
    }
}

/// An I/O error's message without the OS error number, for one-line errors.
fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => e.to_string(),
    }
}

/// The certificates of a CA PEM file.
fn load_ca(path: &Path) -> Result<Vec<ureq::tls::Certificate<'static>>, ClientError> {
    let bytes = std::fs::read(path).map_err(|e| {
        ClientError::Config(format!("cannot read CA certificate {}: {}", path.display(), io_reason(&e)))
    })?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&bytes) {
        match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => certs.push(c),
            Ok(_) => {}
            Err(e) => return Err(ClientError::Config(format!("CA certificate {}: {e}", path.display()))),
        }
    }
    if certs.is_empty() {
        return Err(ClientError::Config(format!("CA certificate {}: no PEM certificate found", path.display())));
    }
    Ok(certs)
}

/// `http://h:9001/`, `http://h:9001/manage/v1` and `http://h:9001` all
/// name the same API.
pub fn base_url(url: &str) -> String {
    let trimmed = url.trim().trim_end_matches('/');
    trimmed.strip_suffix("/manage/v1").unwrap_or(trimmed).to_string()
}

/// Percent-encodes a path segment (backend names are user-chosen).
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Turns a ureq outcome into a value or a [`ClientError`].
fn finish<T: DeserializeOwned>(
    outcome: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    token_problem: Option<String>,
) -> Result<T, ClientError> {
    let mut resp = outcome.map_err(transport_error)?;
    let status = resp.status().as_u16();
    let body = resp.body_mut().with_config().limit(MAX_BODY).read_to_string().map_err(transport_error)?;
    if (200..300).contains(&status) {
        return serde_json::from_str(&body).map_err(|e| ClientError::BadJson(format!("{e}")));
    }
    let message = error_message(&body);
    Err(match status {
        // The local reason is the useful one: the server only knows the
        // token was missing.
        401 => match token_problem {
            Some(p) => ClientError::NoToken(p),
            None => ClientError::Unauthorized(message),
        },
        403 => ClientError::Forbidden(message),
        404 => ClientError::NotFound(message),
        s => ClientError::Server(s, message),
    })
}

/// The message of an error envelope, else the start of the body.
fn error_message(body: &str) -> String {
    if let Ok(b) = serde_json::from_str::<ErrorBody>(body) {
        if !b.error.message.is_empty() {
            return b.error.message;
        }
        if !b.error.code.is_empty() {
            return b.error.code;
        }
    }
    let first = body.lines().next().unwrap_or("").trim();
    if first.is_empty() {
        "(no message)".to_string()
    } else {
        first.chars().take(200).collect()
    }
}

fn transport_error(e: ureq::Error) -> ClientError {
    match e {
        ureq::Error::Timeout(_) => ClientError::Unreachable(format!("timed out after {}s", CALL_TIMEOUT.as_secs())),
        ureq::Error::Io(io) => ClientError::Unreachable(match io.kind() {
            std::io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
            _ => io.to_string(),
        }),
        ureq::Error::HostNotFound => ClientError::Unreachable("host not found".to_string()),
        other => ClientError::Unreachable(other.to_string()),
    }
}

/// A fake management server for tests of the client and the poller.
#[cfg(test)]
pub(crate) mod fake {
    use std::sync::mpsc;

    /// What the fake server saw of one request.
    #[derive(Debug)]
    pub struct Seen {
        pub method: String,
        pub url: String,
        pub auth: Option<String>,
    }

    struct Fake<F> {
        reply: F,
        left: parking_lot::Mutex<usize>,
        tx: parking_lot::Mutex<mpsc::Sender<Seen>>,
    }

    impl<F: Fn(&str) -> (u16, String) + Send + Sync + 'static> crate::http::Handler for Fake<F> {
        fn body_limit(&self, _: &crate::http::Head) -> usize {
            1 << 20
        }

        fn handle(&self, req: crate::http::Request, res: crate::http::Responder) {
            {
                let mut left = self.left.lock();
                if *left == 0 {
                    return res.send(crate::http::Response::empty(503));
                }
                *left -= 1;
            }
            let url = req.head.target().to_owned();
            let auth = req.header("Authorization").map(str::to_owned);
            let _ = self.tx.lock().send(Seen { method: req.method().to_owned(), url: url.clone(), auth });
            let (status, body) = (self.reply)(&url);
            res.send(crate::http::Response::new(status, "application/json", body.into_bytes()));
        }
    }

    /// A fake server: answers `n` requests with `reply(url)` and reports
    /// each request (later ones get 503). It lives until the test process ends.
    pub fn fake_server(
        n: usize,
        reply: impl Fn(&str) -> (u16, String) + Send + Sync + 'static,
    ) -> (String, mpsc::Receiver<Seen>) {
        let bound = crate::http::bind("127.0.0.1:0").unwrap();
        let addr = bound.addr;
        let (tx, rx) = mpsc::channel();
        let h = Fake { reply, left: parking_lot::Mutex::new(n), tx: parking_lot::Mutex::new(tx) };
        let server = bound.serve("fake", crate::http::Limits::default(), None, std::sync::Arc::new(h)).unwrap();
        std::mem::forget(server);
        (format!("http://{addr}"), rx)
    }
}

#[cfg(test)]
mod tests {
    use super::fake::fake_server;
    use super::*;

    fn fixture(name: &str) -> String {
        let path = format!("{}/tests/fixtures/manage/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn error_envelope_message() {
        assert_eq!(error_message(&fixture("error-403.json")), "token \"viewer\" lacks the admin scope");
        assert_eq!(error_message("<html>Bad gateway</html>\nmore"), "<html>Bad gateway</html>");
        assert_eq!(error_message(""), "(no message)");
        assert_eq!(error_message(r#"{"error":{"code":"internal"}}"#), "internal");
    }

    #[test]
    fn base_url_normalizes() {
        assert_eq!(base_url("http://h:9001"), "http://h:9001");
        assert_eq!(base_url("http://h:9001/"), "http://h:9001");
        assert_eq!(base_url("http://h:9001/manage/v1/"), "http://h:9001");
        assert_eq!(encode_segment("a b/c"), "a%20b%2Fc");
        assert_eq!(encode_segment("gh_1-x"), "gh_1-x");
    }

    #[test]
    fn token_sources() {
        let dir = std::env::temp_dir().join(format!("mcp-sentinel-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("t");
        std::fs::write(&f, "  s3cret\n").unwrap();
        assert_eq!(read_token(&TokenSource::File(f.clone())), Ok(Some("s3cret".into())));
        std::fs::write(&f, "\n").unwrap();
        assert!(read_token(&TokenSource::File(f.clone())).unwrap_err().contains("is empty"));
        let missing = read_token(&TokenSource::File(dir.join("nope"))).unwrap_err();
        assert!(missing.contains("no such file"), "{missing}");
        assert_eq!(read_token(&TokenSource::None), Ok(None));
        let unset = read_token(&TokenSource::Env("MCP_SENTINEL_TEST_SURELY_UNSET_VAR".into())).unwrap_err();
        assert!(unset.contains("is not set"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_ca_cert_is_a_config_error() {
        let dir = std::env::temp_dir().join(format!("mcp-sentinel-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pem = dir.join("ca.pem");
        std::fs::write(&pem, "not a certificate").unwrap();
        let mut t = target("http://127.0.0.1:1");
        t.ca_cert = Some(pem.clone());
        match Client::new(&t) {
            Err(ClientError::Config(m)) => assert!(m.contains("no PEM certificate"), "{m}"),
            other => panic!("{:?}", other.err()),
        }
        t.ca_cert = Some(dir.join("missing.pem"));
        match Client::new(&t) {
            Err(ClientError::Config(m)) => assert!(m.contains("cannot read CA certificate"), "{m}"),
            other => panic!("{:?}", other.err()),
        }
        let good = format!("{}/tests/fixtures/tls/ca.pem", env!("CARGO_MANIFEST_DIR"));
        t.ca_cert = Some(good.into());
        assert!(Client::new(&t).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn target(url: &str) -> Target {
        Target { name: "t".into(), url: url.into(), token: TokenSource::None, ca_cert: None }
    }

    #[test]
    fn get_sends_bearer_token_and_maps_json() {
        let body = fixture("status.json");
        let (url, seen) = fake_server(1, move |_| (200, body.clone()));
        let var = "MCP_SENTINEL_TEST_TOKEN_GET";
        std::env::set_var(var, "tok-123");
        let mut t = target(&url);
        t.token = TokenSource::Env(var.into());
        let s = Client::new(&t).unwrap().status().unwrap();
        assert_eq!(s.server.state, "degraded");
        let r = seen.recv().unwrap();
        assert_eq!((r.method.as_str(), r.url.as_str()), ("GET", "/manage/v1/status"));
        assert_eq!(r.auth.as_deref(), Some("Bearer tok-123"));
    }

    #[test]
    fn events_query_and_reconnect_path() {
        let (url, seen) = fake_server(3, |u| {
            if u.contains("reconnect") {
                (200, r#"{"result":"ok","backend":{"name":"a b","state":"connecting"}}"#.into())
            } else {
                (200, r#"{"events":[],"last_id":9}"#.into())
            }
        });
        let c = Client::new(&target(&format!("{url}/manage/v1/"))).unwrap();
        assert_eq!(c.events(Some(5), Some(100)).unwrap().last_id, Some(9));
        assert_eq!(seen.recv().unwrap().url, "/manage/v1/events?after=5&limit=100");
        c.events(None, None).unwrap();
        assert_eq!(seen.recv().unwrap().url, "/manage/v1/events");
        assert_eq!(c.reconnect("a b").unwrap().backend.state, "connecting");
        let r = seen.recv().unwrap();
        assert_eq!((r.method.as_str(), r.url.as_str()), ("POST", "/manage/v1/backends/a%20b/reconnect"));
        assert_eq!(r.auth, None);
    }

    #[test]
    fn http_errors_map_to_variants() {
        let e401 = fixture("error-401.json");
        let e403 = fixture("error-403.json");
        let e404 = fixture("error-404.json");
        let (url, _seen) = fake_server(6, move |u| match u {
            "/manage/v1/status" => (401, e401.clone()),
            "/manage/v1/reload" => (403, e403.clone()),
            "/manage/v1/backends/nope/reconnect" => (404, e404.clone()),
            "/manage/v1/capabilities" => (500, r#"{"error":{"code":"internal","message":"boom"}}"#.into()),
            "/manage/v1/backends" => (200, "not json".into()),
            _ => (502, "Bad gateway".into()),
        });
        let c = Client::new(&target(&url)).unwrap();
        assert_eq!(c.status().unwrap_err(), ClientError::Unauthorized("missing or invalid bearer token".into()));
        assert_eq!(c.reload().unwrap_err(), ClientError::Forbidden("token \"viewer\" lacks the admin scope".into()));
        assert_eq!(c.reconnect("nope").unwrap_err(), ClientError::NotFound("no backend named \"nope\"".into()));
        assert_eq!(c.capabilities().unwrap_err(), ClientError::Server(500, "boom".into()));
        assert!(matches!(c.backends().unwrap_err(), ClientError::BadJson(_)));
        assert_eq!(c.health().unwrap_err(), ClientError::Server(502, "Bad gateway".into()));
    }

    #[test]
    fn unreadable_token_is_a_local_problem() {
        let (url, seen) = fake_server(1, |_| (401, fixture("error-401.json")));
        let mut t = target(&url);
        t.token = TokenSource::File("/nonexistent/mcp-sentinel/manage-9001.token".into());
        let c = Client::new(&t).unwrap();
        // No request is sent for an endpoint that needs the token.
        let e = c.status().unwrap_err();
        assert!(matches!(&e, ClientError::NoToken(m) if m.contains("cannot read token file")), "{e:?}");
        assert!(e.to_string().starts_with("no token: cannot read token file"), "{e}");
        t.token = TokenSource::Env("MCP_SENTINEL_TEST_SURELY_UNSET_VAR".into());
        let e = Client::new(&t).unwrap().reload().unwrap_err();
        assert_eq!(e.to_string(), "no token: environment variable MCP_SENTINEL_TEST_SURELY_UNSET_VAR is not set");
        assert!(seen.try_recv().is_err(), "nothing reached the server");
        // /health may be public: it goes out, and a 401 names the local cause.
        match c.health() {
            Err(ClientError::NoToken(m)) => assert!(m.contains("cannot read token file"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(seen.recv().unwrap().url, "/manage/v1/health");
    }

    #[test]
    fn token_file_is_read_again_for_every_request() {
        // A server without configured tokens writes a new one at each
        // start: the same client must follow without being rebuilt.
        let (url, seen) = fake_server(2, |_| (200, r#"{"server": {"state": "ready"}}"#.into()));
        let dir = std::env::temp_dir().join(format!("mcp-sentinel-token-reread-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("manage.token");
        crate::secfile::write_atomic(&f, b"first\n").unwrap();
        let mut t = target(&url);
        t.token = TokenSource::File(f.clone());
        let c = Client::new(&t).unwrap();
        c.status().unwrap();
        assert_eq!(seen.recv().unwrap().auth.as_deref(), Some("Bearer first"));
        crate::secfile::write_atomic(&f, b"second\n").unwrap();
        c.status().unwrap();
        assert_eq!(seen.recv().unwrap().auth.as_deref(), Some("Bearer second"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn token_file_others_can_change_is_not_sent() {
        use std::os::unix::fs::PermissionsExt;
        let (url, seen) = fake_server(1, |_| (200, "{}".into()));
        let dir = std::env::temp_dir().join(format!("mcp-sentinel-token-unsafe-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("manage.token");
        std::fs::write(&f, "planted\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o666)).unwrap();
        let mut t = target(&url);
        t.token = TokenSource::File(f.clone());
        let e = Client::new(&t).unwrap().status().unwrap_err();
        match &e {
            ClientError::NoToken(m) => assert!(m.contains("can be written by other users (mode 0666)"), "{m}"),
            other => panic!("{other:?}"),
        }
        std::fs::write(&f, "a".repeat(64 * 1024 + 1)).unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        let e = Client::new(&t).unwrap().status().unwrap_err();
        assert!(e.to_string().contains("larger than 64 KiB"), "{e}");
        assert!(seen.try_recv().is_err(), "nothing reached the server");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unreachable_server() {
        // Bind then drop: the port is very likely closed right after.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let c = Client::new(&target(&format!("http://127.0.0.1:{port}"))).unwrap();
        match c.health() {
            Err(ClientError::Unreachable(m)) => assert!(!m.is_empty()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn slow_server_times_out() {
        // Accepts but never answers: the call must give up by itself.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let hold = std::thread::spawn(move || {
            let conn = listener.accept();
            std::thread::sleep(CALL_TIMEOUT + Duration::from_secs(1));
            drop(conn);
        });
        let c = Client::new(&target(&format!("http://{addr}"))).unwrap();
        let start = std::time::Instant::now();
        assert!(matches!(c.status(), Err(ClientError::Unreachable(m)) if m.contains("timed out")));
        assert!(start.elapsed() < CALL_TIMEOUT + Duration::from_secs(1));
        hold.join().unwrap();
    }
}
