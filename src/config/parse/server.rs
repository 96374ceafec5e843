//! The `server` section: data-plane address and limits, backoff, start-up
//! grace.

use std::time::Duration;

use super::{check_listen, FieldError, Obj};
use crate::config::ServerConfig;

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
    Ok(s)
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
            (4096, 256, 8 << 20, 64)
        );
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
