//! The `server` section: data-plane address and limits, backoff, start-up
//! grace.

use std::time::Duration;

use serde_json::Value;

use super::backend::parse_ca_cert;
use super::manage::parse_token_source;
use super::{check_listen, FieldError, Obj};
use crate::config::{DataAuthConfig, DataTokenConfig, JwtConfig, ServerConfig};

/// Longest `startup_grace_s`: clients would time out long before.
const MAX_STARTUP_GRACE_S: f64 = 600.0;
/// Longest `instance_id`: it starts every session id, in headers and URLs.
const MAX_INSTANCE_ID: usize = 32;
/// Accepted backoff values in milliseconds: below 10 ms a failing backend
/// would be retried in a near-tight loop; above a day is a unit mistake.
const BACKOFF_MS_RANGE: std::ops::RangeInclusive<u64> = 10..=86_400_000;

pub(super) fn parse_server(obj: Option<Obj<'_>>, file: &str) -> Result<ServerConfig, FieldError> {
    let mut s = ServerConfig::default();
    let Some(o) = obj else { return Ok(s) };
    o.warn_unknown(
        &[
            "listen",
            "name",
            "allowed_origins",
            "allowed_hosts",
            "max_body_bytes",
            "max_sessions",
            "max_connections",
            "max_connections_per_ip",
            "max_outbox_bytes",
            "max_inflight_per_session",
            "backoff_initial_ms",
            "backoff_max_ms",
            "startup_grace_s",
            "instance_id",
            "auth",
            "allow_unauthenticated_remote",
        ],
        file,
    );
    if let Some(v) = o.get("startup_grace_s") {
        s.startup_grace = match v.as_f64() {
            Some(g) if (0.0..=MAX_STARTUP_GRACE_S).contains(&g) => Duration::from_secs_f64(g),
            _ => {
                return Err(o.bad(
                    "startup_grace_s",
                    format!("expected a number of seconds from 0 (no wait) to {MAX_STARTUP_GRACE_S}, found {v}"),
                ))
            }
        };
    }
    if let Some(id) = o.str("instance_id")? {
        if id.is_empty() || id.len() > MAX_INSTANCE_ID || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(o.bad(
                "instance_id",
                format!("expected 1 to {MAX_INSTANCE_ID} characters from A-Z, a-z, 0-9, '_', found {id:?}"),
            ));
        }
        s.instance_id = Some(id.to_owned());
    }
    if let Some(listen) = o.str("listen")? {
        s.listen = check_listen(listen).map_err(|m| o.bad("listen", m))?;
    }
    if let Some(name) = o.str("name")? {
        if name.trim().is_empty() {
            return Err(o.bad("name", "must not be empty"));
        }
        s.name = name.to_string();
    }
    if let Some(origins) = o.str_list("allowed_origins")? {
        s.allowed_origins = origins
            .iter()
            .enumerate()
            .map(|(i, origin)| check_origin(origin).map_err(|m| o.bad(&format!("allowed_origins[{i}]"), m)))
            .collect::<Result<_, _>>()?;
    }
    if let Some(n) = o.pos_int("max_body_bytes")? {
        s.max_body_bytes = usize::try_from(n).map_err(|_| o.bad("max_body_bytes", "too large"))?;
    }
    if let Some(n) = o.pos_int("max_sessions")? {
        s.max_sessions = usize::try_from(n).map_err(|_| o.bad("max_sessions", "too large"))?;
    }
    if let Some(hosts) = o.str_list("allowed_hosts")? {
        for (i, h) in hosts.iter().enumerate() {
            if h.is_empty() || h.contains(['/', ' ', '@', '?', '#']) {
                return Err(o.bad(
                    &format!("allowed_hosts[{i}]"),
                    format!("expected a host name such as \"gw.example.com\" (optionally with :port), found {h:?}"),
                ));
            }
        }
        s.allowed_hosts = hosts.iter().map(|h| h.to_ascii_lowercase()).collect();
    }
    for (key, field) in [
        ("max_connections", &mut s.max_connections),
        ("max_connections_per_ip", &mut s.max_connections_per_ip),
        ("max_outbox_bytes", &mut s.max_outbox_bytes),
        ("max_inflight_per_session", &mut s.max_inflight_per_session),
    ] {
        if let Some(n) = o.pos_int(key)? {
            *field = usize::try_from(n).map_err(|_| o.bad(key, "too large"))?;
        }
    }
    if let Some(ms) = backoff_ms(&o, "backoff_initial_ms")? {
        s.backoff_initial = ms;
    }
    if let Some(ms) = backoff_ms(&o, "backoff_max_ms")? {
        s.backoff_max = ms;
    }
    if s.backoff_max < s.backoff_initial {
        let field = if o.has("backoff_max_ms") { "backoff_max_ms" } else { "backoff_initial_ms" };
        return Err(o.bad(
            field,
            format!(
                "backoff_max_ms ({}) is less than backoff_initial_ms ({}); the cap must be at least the first wait",
                s.backoff_max.as_millis(),
                s.backoff_initial.as_millis()
            ),
        ));
    }
    if let Some(a) = o.obj("auth")? {
        s.auth = Some(parse_auth(&a, file)?);
    }
    s.allow_unauthenticated_remote = o.bool("allow_unauthenticated_remote")?.unwrap_or(false);
    check_server_exposure(&s).map_err(|e| o.bad("listen", e))?;
    Ok(s)
}

/// Whether the data plane listens on a loopback address only.
pub(in crate::config) fn listen_is_loopback(listen: &str) -> bool {
    listen.parse::<std::net::SocketAddr>().map(|a| a.ip().is_loopback()).unwrap_or(false)
}

/// A non-loopback data plane needs `server.auth` (that does not let
/// anonymous requests through) or `allow_unauthenticated_remote`.
/// Assumes `listen` was checked.
pub(in crate::config) fn check_server_exposure(s: &ServerConfig) -> Result<(), String> {
    let authenticated = s.auth.as_ref().is_some_and(|a| !a.allow_unauthenticated);
    if authenticated || s.allow_unauthenticated_remote || listen_is_loopback(&s.listen) {
        return Ok(());
    }
    Err(format!(
        "{:?} is not a loopback address and the data plane has no authentication; set server.auth (tokens or \
         jwt), or server.allow_unauthenticated_remote to true, to serve MCP clients remotely",
        s.listen
    ))
}

/// `server.auth`.
fn parse_auth(o: &Obj<'_>, file: &str) -> Result<DataAuthConfig, FieldError> {
    o.warn_unknown(&["tokens", "jwt", "resource", "allow_unauthenticated"], file);
    let mut a = DataAuthConfig::default();
    match o.get("tokens") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let field = format!("tokens[{i}]");
                let Value::Object(m) = item else { return Err(o.wrong(&field, "an object", item)) };
                let t = Obj::new(m, &o.field(&field));
                t.warn_unknown(&["name", "token_env", "token_file", "sha256", "views"], file);
                let name = match t.str("name")? {
                    Some(n) if !n.trim().is_empty() => n.to_string(),
                    Some(_) => return Err(t.bad("name", "must not be empty")),
                    None => return Err(t.bad("name", "required (it names the client in events and metrics)")),
                };
                if name.len() > 64 || name.chars().any(char::is_control) {
                    return Err(t.bad("name", "expected at most 64 characters, no control characters"));
                }
                if a.tokens.iter().any(|x: &DataTokenConfig| x.name == name) {
                    return Err(t.bad("name", format!("duplicate token name {name:?}")));
                }
                let source = parse_token_source(&t)?;
                let views = t.str_list("views")?.map(|v| v.iter().map(|s| s.to_string()).collect());
                a.tokens.push(DataTokenConfig { name, source, views });
            }
        }
        Some(v) => return Err(o.wrong("tokens", "an array of token objects", v)),
    }
    if let Some(j) = o.obj("jwt")? {
        j.warn_unknown(&["issuer", "audience", "jwks_url", "ca_cert", "views_claim"], file);
        let req = |key: &str| -> Result<String, FieldError> {
            match j.str(key)? {
                Some(v) if !v.trim().is_empty() => Ok(v.to_string()),
                _ => Err(j.bad(key, "required when server.auth.jwt is set")),
            }
        };
        let (issuer, audience, jwks_url) = (req("issuer")?, req("audience")?, req("jwks_url")?);
        if !jwks_url_allowed(&jwks_url) {
            return Err(j.bad(
                "jwks_url",
                format!("expected an https:// URL (http:// only on a loopback host), found {jwks_url:?}"),
            ));
        }
        let env = |k: &str| std::env::var(k).ok();
        let ca_cert = parse_ca_cert(&j, &env, &jwks_url)?;
        let views_claim = j.str("views_claim")?.map(str::to_string);
        a.jwt = Some(JwtConfig { issuer, audience, jwks_url, ca_cert, views_claim });
    }
    if let Some(r) = o.str("resource")? {
        let lower = r.to_ascii_lowercase();
        if !(lower.starts_with("https://") || lower.starts_with("http://")) || r.contains(['#', ' ']) {
            return Err(o.bad("resource", format!("expected an http(s) URL without a fragment, found {r:?}")));
        }
        a.resource = Some(r.to_string());
    }
    a.allow_unauthenticated = o.bool("allow_unauthenticated")?.unwrap_or(false);
    if a.tokens.is_empty() && a.jwt.is_none() && !a.allow_unauthenticated {
        return Err(FieldError::new(
            o.prefix.clone(),
            "needs tokens or jwt (or allow_unauthenticated: true); as written no client could connect",
        ));
    }
    Ok(a)
}

/// A key set is fetched over https; plain http only from the loopback
/// (a local identity provider, tests).
pub fn jwks_url_allowed(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("https://") {
        return true;
    }
    let Some(rest) = lower.strip_prefix("http://") else { return false };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return false;
    }
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// A backoff setting in whole milliseconds, within [`BACKOFF_MS_RANGE`].
fn backoff_ms(o: &Obj<'_>, key: &str) -> Result<Option<Duration>, FieldError> {
    let Some(v) = o.get(key) else { return Ok(None) };
    match v.as_u64() {
        Some(n) if BACKOFF_MS_RANGE.contains(&n) => Ok(Some(Duration::from_millis(n))),
        _ => Err(o.bad(
            key,
            format!(
                "expected an integer number of milliseconds from {} to {}, found {v}",
                BACKOFF_MS_RANGE.start(),
                BACKOFF_MS_RANGE.end()
            ),
        )),
    }
}

/// An `Origin` header value is `scheme://host[:port]` with no path, so an
/// entry with a path or trailing slash could never match: reject it rather
/// than keep an inert entry. Stored lower-case (origins compare
/// case-insensitively).
fn check_origin(origin: &str) -> Result<String, String> {
    let lower = origin.to_ascii_lowercase();
    let rest = lower.strip_prefix("http://").or_else(|| lower.strip_prefix("https://"));
    match rest {
        Some(host) if !host.is_empty() && !host.contains(['/', '?', '#', ' ']) => Ok(lower),
        _ => Err(format!(
            "expected an origin such as \"https://app.example.com\" (scheme, host, optional port, no path), found {origin:?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::testing::{err_line, parse_ok};

    #[test]
    fn server_bounds_and_hosts() {
        let c = parse_ok(
            r#"{"server": {"allowed_hosts": ["GW.example.com:443", "*"], "max_connections": 10,
                "max_connections_per_ip": 2, "max_outbox_bytes": 1024, "max_inflight_per_session": 3}}"#,
        );
        assert_eq!(c.server.allowed_hosts, ["gw.example.com:443", "*"]);
        let s = &c.server;
        assert_eq!(
            (s.max_connections, s.max_connections_per_ip, s.max_outbox_bytes, s.max_inflight_per_session),
            (10, 2, 1024, 3)
        );
        let d = parse_ok("{}").server;
        assert_eq!(
            (d.max_connections, d.max_connections_per_ip, d.max_outbox_bytes, d.max_inflight_per_session),
            (16_384, 256, 8 << 20, 64)
        );
    }

    #[test]
    fn auth_section() {
        let c = parse_ok(
            r#"{"server": {"auth": {"tokens": [{"name": "alice", "sha256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "views": ["dev"]}],
                "jwt": {"issuer": "https://idp.example.com", "audience": "mcp", "jwks_url": "http://127.0.0.1:1/jwks.json"},
                "resource": "https://gw.example.com/mcp"}}}"#,
        );
        let a = c.server.auth.expect("auth");
        assert_eq!(a.tokens[0].name, "alice");
        assert_eq!(a.tokens[0].views.as_deref(), Some(&["dev".to_string()][..]));
        assert_eq!(a.jwt.expect("jwt").issuer, "https://idp.example.com");
        assert_eq!(a.resource.as_deref(), Some("https://gw.example.com/mcp"));
        assert!(err_line(r#"{"server": {"auth": {}}}"#).contains("needs tokens or jwt"));
        assert!(err_line(
            r#"{"server": {"auth": {"jwt": {"issuer": "i", "audience": "a", "jwks_url": "http://idp.example.com/k"}}}}"#
        )
        .contains("jwks_url"));
        // Exposure: a remote listen needs auth or the explicit opt-in.
        let e = err_line(r#"{"server": {"listen": "0.0.0.0:9000"}}"#);
        assert!(e.contains("server.allow_unauthenticated_remote") && e.contains("server.auth"), "{e}");
        assert!(
            parse_ok(r#"{"server": {"listen": "0.0.0.0:9000", "allow_unauthenticated_remote": true}}"#)
                .server
                .allow_unauthenticated_remote
        );
        parse_ok(r#"{"server": {"listen": "0.0.0.0:9000", "auth": {"tokens": [{"name": "a", "token_env": "HOME"}]}}}"#);
        assert!(parse_ok("{}").server.auth.is_none());
        assert!(super::jwks_url_allowed("http://[::1]:8080/k") && super::jwks_url_allowed("http://localhost/k"));
        assert!(!super::jwks_url_allowed("http://127.0.0.1.evil.com/k") && !super::jwks_url_allowed("ftp://x"));
    }

    #[test]
    fn instance_id() {
        assert_eq!(parse_ok("{}").server.instance_id, None);
        let c = parse_ok(r#"{"server": {"instance_id": "gw_2"}}"#);
        assert_eq!(c.server.instance_id.as_deref(), Some("gw_2"));
        let long = "a".repeat(33);
        for bad in ["", "gw-1", "gw 1", "gw.1", "é", long.as_str()] {
            assert_eq!(
                err_line(&format!(r#"{{"server": {{"instance_id": "{bad}"}}}}"#)),
                format!(
                    "c.json: field \"server.instance_id\": expected 1 to 32 characters from A-Z, a-z, 0-9, '_', found {bad:?}"
                )
            );
        }
    }
}
