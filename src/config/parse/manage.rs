//! The `manage` section: the management listener and its exposure rule,
//! bearer tokens, TLS, the audit log and the event ring size.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde_json::Value;

use super::{check_listen, FieldError, Obj};
use crate::config::expand::is_var_name;
use crate::config::{ManageConfig, TlsConfig, TokenConfig, TokenSource};

const EVENT_BUFFER_RANGE: std::ops::RangeInclusive<u64> = 10..=100_000;

/// CONTRACT §3: a non-loopback management address is refused unless TLS is
/// set or `allow_insecure_remote` is true. Assumes `listen` was checked.
pub(in crate::config) fn check_exposure(manage: &ManageConfig) -> Result<(), String> {
    let loopback = manage.listen.parse::<SocketAddr>().map(|a| a.ip().is_loopback()).unwrap_or(false);
    if loopback || manage.tls.is_some() || manage.allow_insecure_remote {
        Ok(())
    } else {
        Err(format!(
            "{:?} is not a loopback address; set manage.tls, or manage.allow_insecure_remote \
             to true, to serve the management API remotely",
            manage.listen
        ))
    }
}

pub(super) fn parse_manage(obj: Option<Obj<'_>>, file: &str) -> Result<ManageConfig, FieldError> {
    let mut m = ManageConfig::default();
    let Some(o) = obj else { return Ok(m) };
    o.warn_unknown(
        &[
            "listen",
            "tokens",
            "tls",
            "public_health",
            "allow_shutdown",
            "allow_insecure_remote",
            "audit_log",
            "event_buffer",
        ],
        file,
    );
    if let Some(listen) = o.str("listen")? {
        m.listen = check_listen(listen).map_err(|e| o.bad("listen", e))?;
    }
    match o.get("tokens") {
        None => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let field = format!("tokens[{i}]");
                let token = match item {
                    Value::Object(t) => parse_token(&Obj::new(t, &o.field(&field)), file)?,
                    other => return Err(o.wrong(&field, "an object", other)),
                };
                if m.tokens.iter().any(|t| t.name == token.name) {
                    return Err(o.bad(&format!("{field}.name"), format!("duplicate token name {:?}", token.name)));
                }
                m.tokens.push(token);
            }
        }
        Some(v) => return Err(o.wrong("tokens", "an array of token objects", v)),
    }
    if let Some(tls) = o.obj("tls")? {
        tls.warn_unknown(&["cert", "key"], file);
        let path = |key: &str| -> Result<PathBuf, FieldError> {
            match tls.str(key)? {
                Some(p) if !p.is_empty() => Ok(PathBuf::from(p)),
                Some(_) => Err(tls.bad(key, "must not be empty")),
                None => Err(tls.bad(key, "required when manage.tls is set (path of a PEM file)")),
            }
        };
        m.tls = Some(TlsConfig { cert: path("cert")?, key: path("key")? });
    }
    m.public_health = o.bool("public_health")?.unwrap_or(false);
    m.allow_shutdown = o.bool("allow_shutdown")?.unwrap_or(false);
    m.allow_insecure_remote = o.bool("allow_insecure_remote")?.unwrap_or(false);
    if let Some(p) = o.str("audit_log")? {
        if p.is_empty() {
            return Err(o.bad("audit_log", "must not be empty (omit it to disable the audit log)"));
        }
        m.audit_log = Some(PathBuf::from(p));
    }
    if let Some(v) = o.get("event_buffer") {
        m.event_buffer = match v.as_u64() {
            Some(n) if EVENT_BUFFER_RANGE.contains(&n) => n as usize,
            _ => {
                return Err(o.bad(
                    "event_buffer",
                    format!(
                        "expected an integer from {} to {}, found {v}",
                        EVENT_BUFFER_RANGE.start(),
                        EVENT_BUFFER_RANGE.end()
                    ),
                ))
            }
        };
    }
    check_exposure(&m).map_err(|e| o.bad("listen", e))?;
    Ok(m)
}

fn parse_token(o: &Obj<'_>, file: &str) -> Result<TokenConfig, FieldError> {
    o.warn_unknown(&["name", "scopes", "token_env", "token_file", "sha256"], file);
    let name = match o.str("name")? {
        Some(n) if !n.trim().is_empty() => n.to_string(),
        Some(_) => return Err(o.bad("name", "must not be empty")),
        None => return Err(o.bad("name", "required (it names the token in the audit log)")),
    };
    let scopes =
        o.str_list("scopes")?.ok_or_else(|| o.bad("scopes", "required: [\"read\"] or [\"read\", \"admin\"]"))?;
    let mut set: Vec<&str> = scopes.clone();
    set.sort_unstable();
    set.dedup();
    // ["admin"] alone is accepted: admin implies read.
    let admin = match set.as_slice() {
        ["read"] => false,
        ["admin"] | ["admin", "read"] => true,
        _ => return Err(o.bad("scopes", format!("expected [\"read\"] or [\"read\", \"admin\"], found {scopes:?}"))),
    };
    let source = parse_token_source(o)?;
    Ok(TokenConfig { name, admin, source })
}

/// A token entry's one source: `token_env`, `token_file` or `sha256`
/// (shared by `manage.tokens` and `server.auth.tokens`).
pub(super) fn parse_token_source(o: &Obj<'_>) -> Result<TokenSource, FieldError> {
    const SOURCES: [&str; 3] = ["token_env", "token_file", "sha256"];
    let given: Vec<&str> = SOURCES.iter().copied().filter(|k| o.has(k)).collect();
    Ok(match given.as_slice() {
        ["token_env"] => match o.str("token_env")? {
            Some(v) if is_var_name(v) => TokenSource::Env(v.to_string()),
            _ => return Err(o.bad("token_env", "expected an environment variable name")),
        },
        ["token_file"] => match o.str("token_file")? {
            Some(p) if !p.is_empty() => TokenSource::File(PathBuf::from(p)),
            _ => return Err(o.bad("token_file", "expected a file path")),
        },
        ["sha256"] => match o.str("sha256")? {
            Some(h) if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
                TokenSource::Sha256(h.to_ascii_lowercase())
            }
            _ => return Err(o.bad("sha256", "expected 64 hexadecimal characters (the token's SHA-256)")),
        },
        [] => return Err(FieldError::new(o.prefix.clone(), "needs one of token_env, token_file or sha256")),
        many => {
            return Err(FieldError::new(
                o.prefix.clone(),
                format!("has {}; give exactly one token source", many.join(" and ")),
            ))
        }
    })
}
