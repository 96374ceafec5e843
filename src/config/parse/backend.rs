//! One backend entry of `mcpServers` (or of the legacy flat object): its
//! transport, process or URL with `${VAR}` expanded, headers, `ca_cert`,
//! and the common fields. A bad entry never fails the file: it keeps its
//! name and carries a one-line reason in `transport: Err(..)`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use super::{describe, FieldError, Obj};
use crate::config::expand::expand;
use crate::config::redact::redact_url;
use crate::config::{
    BackendConfig, CaCert, Command, Protocol, ToolFilter, Transport, DEFAULT_MAX_INSTANCES, DEFAULT_PING_INTERVAL,
    DEFAULT_TIMEOUT,
};

/// Largest accepted `timeout_s`: a day. Longer is almost surely a unit
/// mistake (milliseconds), and it keeps `Duration` arithmetic far from
/// overflow.
const MAX_TIMEOUT_S: f64 = 86_400.0;

const BACKEND_KEYS: [&str; 17] = [
    "type",
    "disabled",
    "command",
    "args",
    "env",
    "cwd",
    "url",
    "headers",
    "ca_cert",
    "enabled",
    "timeout_s",
    "ping_interval_s",
    "prefix",
    "tools",
    "per_session",
    "max_instances",
    "protocol",
];
const COMMAND_KEYS: [&str; 4] = ["command", "args", "env", "cwd"];

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Stdio,
    Sse,
    Http,
}

impl Kind {
    /// "a stdio backend", for messages.
    fn article(self) -> &'static str {
        match self {
            Kind::Stdio => "a stdio backend",
            Kind::Sse => "an sse backend",
            Kind::Http => "a streamable-http backend",
        }
    }
}

/// Never fails: problems end up in `transport: Err(..)` (the first one
/// found), and the other fields keep what could be read.
pub(super) fn parse_backend(
    name: &str,
    value: &Value,
    env: &dyn Fn(&str) -> Option<String>,
    file: &str,
    at: &str,
) -> BackendConfig {
    let mut b = BackendConfig {
        name: name.to_string(),
        enabled: true,
        timeout: DEFAULT_TIMEOUT,
        ping_interval: Some(DEFAULT_PING_INTERVAL),
        prefix: None,
        tools: ToolFilter::default(),
        transport: Err(String::new()),
        shown: String::new(),
        per_session: None,
        protocol: Protocol::Auto,
    };
    let fail = |bad: FieldError| format!("backend {name:?}: field {:?}: {}", bad.field, bad.message);
    let name_err = (!matches_charset(name, 64, |c| c.is_ascii_alphanumeric() || "_.-".contains(c)))
        .then(|| format!("backend {name:?}: the name must be 1 to 64 characters from A-Z, a-z, 0-9, '_', '.', '-'"));
    let map = match value {
        Value::Object(map) => map,
        other => {
            let msg = format!("backend {name:?}: expected an object, found {}", describe(other));
            b.transport = Err(name_err.unwrap_or(msg));
            return b;
        }
    };
    let o = Obj::new(map, "");
    // Warnings name the backend's place in the file, not the bare key.
    Obj::new(map, at).warn_unknown(&BACKEND_KEYS, file);

    let transport = parse_transport(&o, env).map_err(fail);
    // First problem among the common fields; reported after name and transport.
    let mut first: Option<String> = None;
    // `disabled` is how Claude Desktop, Cursor and VS Code say it.
    match (o.bool("enabled"), o.bool("disabled")) {
        (Ok(Some(on)), Ok(Some(off))) if on == off => keep_first(
            &mut first,
            fail(o.bad("disabled", format!("contradicts \"enabled\": {on}; give only one of the two"))),
        ),
        (Ok(on), Ok(off)) => b.enabled = on.or(off.map(|d| !d)).unwrap_or(true),
        (Err(e), _) | (_, Err(e)) => keep_first(&mut first, fail(e)),
    }
    match parse_timeout(&o) {
        Ok(Some(t)) => b.timeout = t,
        Ok(None) => {}
        Err(e) => keep_first(&mut first, fail(e)),
    }
    match parse_ping_interval(&o) {
        Ok(Some(p)) => b.ping_interval = p,
        Ok(None) => {}
        Err(e) => keep_first(&mut first, fail(e)),
    }
    match o.str("prefix") {
        Ok(None) => {}
        Ok(Some(p)) if matches_charset(p, 64, |c| c.is_ascii_alphanumeric() || "_-".contains(c)) => {
            b.prefix = Some(p.to_string())
        }
        Ok(Some(_)) => {
            keep_first(&mut first, fail(o.bad("prefix", "must be 1 to 64 characters from A-Z, a-z, 0-9, '_', '-'")))
        }
        Err(e) => keep_first(&mut first, fail(e)),
    }
    match parse_tools(&o, file, at) {
        Ok(t) => b.tools = t,
        Err(e) => keep_first(&mut first, fail(e)),
    }
    match o.str("protocol") {
        Ok(None) | Ok(Some("auto")) => {}
        Ok(Some("legacy")) => b.protocol = Protocol::Legacy,
        Ok(Some("2026-07-28")) => b.protocol = Protocol::Modern,
        Ok(Some(other)) => keep_first(
            &mut first,
            fail(o.bad("protocol", format!("expected \"auto\", \"legacy\" or \"2026-07-28\", found {other:?}"))),
        ),
        Err(e) => keep_first(&mut first, fail(e)),
    }
    match (o.bool("per_session"), o.pos_int("max_instances")) {
        (Ok(Some(true)), Ok(max)) => {
            b.per_session = Some(max.map_or(DEFAULT_MAX_INSTANCES, |m| usize::try_from(m).unwrap_or(usize::MAX)))
        }
        (Ok(_), Ok(Some(_))) => {
            keep_first(&mut first, fail(o.bad("max_instances", "applies only with \"per_session\": true")))
        }
        (Err(e), _) | (_, Err(e)) => keep_first(&mut first, fail(e)),
        _ => {}
    }
    b.transport = match (name_err, transport, first) {
        (Some(e), _, _) | (None, Err(e), _) | (None, Ok(_), Some(e)) => Err(e),
        (None, Ok(t), None) => Ok(t),
    };
    b.shown = shown_endpoint(&o, &b.transport);
    b
}

/// Whether a URL's path ends in `/sse` (query and fragment aside).
fn url_path_ends_in_sse(url: &str) -> bool {
    let path = url.trim().split(['?', '#']).next().unwrap_or("");
    path.trim_end_matches('/').to_ascii_lowercase().ends_with("/sse")
}

fn keep_first(slot: &mut Option<String>, msg: String) {
    slot.get_or_insert(msg);
}

fn matches_charset(s: &str, max: usize, ok: impl Fn(char) -> bool) -> bool {
    !s.is_empty() && s.len() <= max && s.chars().all(ok)
}

fn parse_timeout(o: &Obj<'_>) -> Result<Option<Duration>, FieldError> {
    let Some(v) = o.get("timeout_s") else {
        return Ok(None);
    };
    match v.as_f64() {
        Some(s) if s > 0.0 && s <= MAX_TIMEOUT_S => {
            Duration::try_from_secs_f64(s).map(Some).map_err(|e| o.bad("timeout_s", e.to_string()))
        }
        _ => Err(o.bad("timeout_s", format!("expected a positive number of seconds up to {MAX_TIMEOUT_S}, found {v}"))),
    }
}

/// `ping_interval_s`: seconds like `timeout_s`, except that 0 is allowed and
/// turns the liveness check off. `Some(None)` means off.
fn parse_ping_interval(o: &Obj<'_>) -> Result<Option<Option<Duration>>, FieldError> {
    let Some(v) = o.get("ping_interval_s") else {
        return Ok(None);
    };
    match v.as_f64() {
        Some(0.0) => Ok(Some(None)),
        Some(s) if s > 0.0 && s <= MAX_TIMEOUT_S => {
            Duration::try_from_secs_f64(s).map(|d| Some(Some(d))).map_err(|e| o.bad("ping_interval_s", e.to_string()))
        }
        _ => Err(o.bad(
            "ping_interval_s",
            format!("expected a number of seconds from 0 (off) to {MAX_TIMEOUT_S}, found {v}"),
        )),
    }
}

fn parse_tools(o: &Obj<'_>, file: &str, at: &str) -> Result<ToolFilter, FieldError> {
    let Some(tools) = o.obj("tools")? else {
        return Ok(ToolFilter::default());
    };
    if let Some(Value::Object(m)) = o.get("tools") {
        Obj::new(m, &format!("{at}.tools")).warn_unknown(&["allow", "deny"], file);
    }
    let list = |key: &str| -> Result<Vec<String>, FieldError> {
        Ok(tools.str_list(key)?.unwrap_or_default().into_iter().map(str::to_string).collect())
    };
    Ok(ToolFilter { allow: list("allow")?, deny: list("deny")? })
}

fn parse_transport(o: &Obj<'_>, env: &dyn Fn(&str) -> Option<String>) -> Result<Transport, FieldError> {
    let kind = match o.str("type")? {
        Some("stdio") => Kind::Stdio,
        Some("sse") => Kind::Sse,
        // `http` is VS Code's, `streamableHttp` Cline's and others'.
        Some("streamable-http") | Some("http") | Some("streamableHttp") | Some("streamable_http") => Kind::Http,
        Some(other) => {
            return Err(
                o.bad("type", format!("unknown type {other:?} (expected \"stdio\", \"sse\" or \"streamable-http\")"))
            )
        }
        // A URL ending in /sse is the usual endpoint of a legacy SSE
        // server: take it as one. (The original project required "type"
        // and inferred nothing.)
        None if o.str("url").ok().flatten().is_some_and(url_path_ends_in_sse) => Kind::Sse,
        None if o.has("url") => Kind::Http,
        None if o.has("command") => Kind::Stdio,
        None => return Err(o.bad("command", "a backend needs \"command\" (stdio) or \"url\" (sse, streamable-http)")),
    };
    match kind {
        Kind::Stdio => {
            reject(o, &["url", "headers", "ca_cert"], kind, "")?;
            match parse_command(o, env, Some(kind))? {
                Some(cmd) => Ok(Transport::Stdio(cmd)),
                None => Err(o.bad("command", format!("required for {}", kind.article()))),
            }
        }
        Kind::Sse => {
            let url = parse_url(o, env, kind)?;
            Ok(Transport::Sse {
                headers: parse_headers(o, env)?,
                local: parse_command(o, env, None)?,
                ca_cert: parse_ca_cert(o, env, &url)?,
                url,
            })
        }
        Kind::Http => {
            reject(o, &COMMAND_KEYS, kind, " (set \"type\": \"sse\" to start a local server first)")?;
            let url = parse_url(o, env, kind)?;
            Ok(Transport::StreamableHttp {
                headers: parse_headers(o, env)?,
                ca_cert: parse_ca_cert(o, env, &url)?,
                url,
            })
        }
    }
}

/// The endpoint shown to operators, from the file's own text before
/// `${VAR}` expansion: a secret expanded into a URL path or an argument
/// shows as its `${VAR}` reference, never as its value; the usual
/// redaction applies on top.
fn shown_endpoint(o: &Obj<'_>, t: &Result<Transport, String>) -> String {
    match t {
        Ok(Transport::Stdio(_)) => {
            let command = o.str("command").ok().flatten().unwrap_or_default().trim().to_owned();
            let args = o.str_list("args").ok().flatten().unwrap_or_default().iter().map(|a| a.to_string()).collect();
            Command { command, args, env: BTreeMap::new(), cwd: None, withheld_env: Vec::new() }.redacted_line()
        }
        Ok(Transport::Sse { .. } | Transport::StreamableHttp { .. }) => {
            redact_url(o.str("url").ok().flatten().unwrap_or_default().trim())
        }
        Err(_) => String::new(),
    }
}

/// A known key the chosen type would ignore is an error (no inert knobs).
fn reject(o: &Obj<'_>, keys: &[&str], kind: Kind, hint: &str) -> Result<(), FieldError> {
    match keys.iter().find(|k| o.has(k)) {
        Some(k) => Err(o.bad(k, format!("not used by {}{hint}", kind.article()))),
        None => Ok(()),
    }
}

/// The process part (`command`, `args`, `env`, `cwd`); None when there is no
/// `command` and none of the others either. `required` names the kind that
/// cannot do without one.
fn parse_command(
    o: &Obj<'_>,
    env: &dyn Fn(&str) -> Option<String>,
    required: Option<Kind>,
) -> Result<Option<Command>, FieldError> {
    let Some(raw) = o.str("command")? else {
        if let Some(kind) = required {
            return Err(o.bad("command", format!("required for {}", kind.article())));
        }
        return match COMMAND_KEYS[1..].iter().find(|k| o.has(k)) {
            Some(k) => Err(o.bad("command", format!("required when \"{k}\" is set"))),
            None => Ok(None),
        };
    };
    // Surrounding whitespace is trimmed, as the original project did.
    let command = expand(raw, "command", env)?.trim().to_string();
    if command.is_empty() {
        return Err(o.bad("command", "must not be empty"));
    }
    let mut args = Vec::new();
    for (i, a) in o.str_list("args")?.unwrap_or_default().iter().enumerate() {
        args.push(expand(a, &format!("args[{i}]"), env)?);
    }
    let mut vars = BTreeMap::new();
    for (k, v) in o.str_map("env")?.unwrap_or_default() {
        if k.is_empty() || k.contains(['=', '\0']) {
            return Err(o.bad(&format!("env.{k}"), "not a valid environment variable name"));
        }
        vars.insert(k.to_string(), expand(v, &format!("env.{k}"), env)?);
    }
    let cwd = match o.str("cwd")? {
        None => None,
        Some(c) => {
            let c = expand(c, "cwd", env)?;
            if c.is_empty() {
                return Err(o.bad("cwd", "must not be empty"));
            }
            Some(PathBuf::from(c))
        }
    };
    Ok(Some(Command { command, args, env: vars, cwd, withheld_env: Vec::new() }))
}

fn parse_url(o: &Obj<'_>, env: &dyn Fn(&str) -> Option<String>, kind: Kind) -> Result<String, FieldError> {
    let raw = o.str("url")?.ok_or_else(|| o.bad("url", format!("required for {}", kind.article())))?;
    // Surrounding whitespace (a pasted newline) is trimmed, as the
    // original project did; whitespace inside stays an error.
    let url = expand(raw, "url", env)?.trim().to_string();
    let lower = url.to_ascii_lowercase();
    let rest = lower.strip_prefix("http://").or_else(|| lower.strip_prefix("https://"));
    match rest {
        Some(r) if !r.is_empty() && !r.starts_with(['/', '?', '#']) && !url.contains(char::is_whitespace) => Ok(url),
        // The value is not echoed: it may hold a credential.
        _ => Err(o.bad("url", "expected an http:// or https:// URL with a host")),
    }
}

fn parse_headers(o: &Obj<'_>, env: &dyn Fn(&str) -> Option<String>) -> Result<Vec<(String, String)>, FieldError> {
    let mut headers = Vec::new();
    for (k, v) in o.str_map("headers")?.unwrap_or_default() {
        let field = format!("headers.{k}");
        let token_char = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
        if k.is_empty() || !k.chars().all(token_char) {
            return Err(o.bad(&field, "not a valid HTTP header name"));
        }
        let value = expand(v, &field, env)?;
        // CR/LF would let a value inject headers of its own.
        if value.contains(['\r', '\n', '\0']) {
            return Err(o.bad(&field, "the value must not contain CR, LF or NUL"));
        }
        headers.push((k.to_string(), value));
    }
    Ok(headers)
}
/// `ca_cert`: a PEM file whose certificates become the only TLS roots of an
/// https backend. Read and checked here, so that every problem is one line
/// naming the field and the file. Relative paths are relative to the
/// gateway's working directory, like `manage.tls`.
pub(super) fn parse_ca_cert(
    o: &Obj<'_>,
    env: &dyn Fn(&str) -> Option<String>,
    url: &str,
) -> Result<Option<CaCert>, FieldError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;
    let Some(raw) = o.str("ca_cert")? else {
        return Ok(None);
    };
    let path = PathBuf::from(expand(raw, "ca_cert", env)?);
    if path.as_os_str().is_empty() {
        return Err(o.bad("ca_cert", "must not be empty (omit it to use the built-in roots)"));
    }
    // An inert knob is an error: plain HTTP has no certificates to check.
    if !url.get(..8).is_some_and(|s| s.eq_ignore_ascii_case("https://")) {
        return Err(o.bad("ca_cert", "only used with an https:// url"));
    }
    let shown = path.display();
    let bytes = std::fs::read(&path).map_err(|e| o.bad("ca_cert", format!("cannot read {shown}: {e}")))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| o.bad("ca_cert", format!("{shown}: not a valid PEM file: {e}")))?;
    if certs.is_empty() {
        return Err(o.bad("ca_cert", format!("{shown}: no PEM certificate found (expected BEGIN CERTIFICATE)")));
    }
    let mut roots = rustls::RootCertStore::empty();
    for (i, cert) in certs.iter().enumerate() {
        roots
            .add(cert.clone())
            .map_err(|e| o.bad("ca_cert", format!("{shown}: certificate {} cannot be a root: {e}", i + 1)))?;
    }
    Ok(Some(CaCert { path, certs }))
}

#[cfg(test)]
mod tests;
