//! What every subcommand's parser shares: lexopt's errors and values
//! turned into one-line [`UsageError`]s that name the flag, unknown flags
//! with a suggestion, and the checks of flag values (addresses, URLs, log
//! levels, variable and profile names). No I/O.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;

use lexopt::prelude::*;

use super::UsageError;

pub(super) const LOG_LEVELS: [&str; 5] = ["error", "warn", "info", "debug", "trace"];

pub(super) fn err(msg: impl Into<String>) -> UsageError {
    UsageError(msg.into())
}

/// `parser.next()` with lexopt's errors turned into our one-liners.
pub(super) fn next_arg(p: &mut lexopt::Parser) -> Result<Option<lexopt::Arg<'_>>, UsageError> {
    p.next().map_err(|e| match e {
        lexopt::Error::UnexpectedValue { option, .. } => err(format!("flag {option} takes no value")),
        other => err(other.to_string()),
    })
}

pub(super) fn flag_name(arg: &lexopt::Arg<'_>) -> String {
    match arg {
        Short(c) => format!("-{c}"),
        Long(l) => format!("--{l}"),
        Value(v) => v.to_string_lossy().into_owned(),
    }
}

/// The flag's value as UTF-8 text; the flag name is the error's context.
pub(super) fn value_str(p: &mut lexopt::Parser, flag: &str, ctx: &str) -> Result<String, UsageError> {
    let v = p.value().map_err(|_| err(format!("flag {flag} for '{ctx}' needs a value")))?;
    v.into_string().map_err(|_| err(format!("the value of {flag} is not valid UTF-8")))
}

/// Paths stay `OsString`: a non-UTF-8 path is still a path.
pub(super) fn value_path(p: &mut lexopt::Parser, flag: &str, ctx: &str) -> Result<PathBuf, UsageError> {
    let v = p.value().map_err(|_| err(format!("flag {flag} for '{ctx}' needs a value")))?;
    if v.is_empty() {
        return Err(err(format!("flag {flag} needs a non-empty path")));
    }
    Ok(PathBuf::from(v))
}

pub(super) fn unknown_flag(arg: &lexopt::Arg<'_>, ctx: &str, known: &[&str]) -> UsageError {
    let flag = flag_name(arg);
    if let Some(hint) = earlier_flag_hint(ctx, &flag) {
        return err(format!("unknown flag {flag} for '{ctx}' ({hint})"));
    }
    match suggest(&flag, known) {
        Some(s) => err(format!("unknown flag {flag} for '{ctx}' (did you mean {s}?)")),
        None => err(format!(
            "unknown flag {flag} for '{ctx}'; see 'mcp-sentinel {} --help'",
            ctx.split(' ').next().unwrap_or(ctx)
        )),
    }
}

/// A flag of the same subcommand in the original project's later versions
/// (`mcp-sentinel server`/`tui` with a YAML file, then argus-mcp) whose
/// equivalent here has another name or shape: one line pointing to it.
fn earlier_flag_hint(ctx: &str, flag: &str) -> Option<&'static str> {
    Some(match (ctx, flag) {
        ("server", "--host" | "--port") => "the original's --host and --port are one flag here: --listen HOST:PORT",
        ("server", "-d" | "--detach" | "--name") => {
            "there is no detached mode: run it under a service manager, see docs/deploy.md"
        }
        ("server", "-v" | "--verbose") => "use --log-level debug",
        ("server", "--quiet" | "--silent") => "use --log-level error",
        ("tui", "--server") => {
            "use --url with the management API's address, http://127.0.0.1:9001 by default, not the MCP port"
        }
        ("tui", "--token") => {
            "a token is not taken on the command line: use --url URL with --token-env VAR or --token-file PATH"
        }
        ("tui", "--servers-config") => "servers are profiles here: see 'mcp-sentinel profile --help'",
        _ => return None,
    })
}

pub(super) fn unexpected_arg(v: &OsString, ctx: &str) -> UsageError {
    err(format!("unexpected argument {:?} for '{ctx}'", v.to_string_lossy()))
}

/// The closest known flag, if it is close enough to be a typo.
pub(super) fn suggest<'a>(flag: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (edit_distance(flag, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance over chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

pub(super) fn check_addr(flag: &str, value: String) -> Result<String, UsageError> {
    match value.parse::<SocketAddr>() {
        Ok(_) => Ok(value),
        Err(_) => Err(err(format!("flag {flag}: expected IP:PORT such as 127.0.0.1:9000, found {value:?}"))),
    }
}

pub(super) fn check_log_level(value: String) -> Result<String, UsageError> {
    let lower = value.to_ascii_lowercase();
    // The original project's (Python's) names, where the meaning is clear.
    let lower = match lower.as_str() {
        "warning" => "warn".to_owned(),
        "critical" | "fatal" => "error".to_owned(),
        _ => lower,
    };
    if LOG_LEVELS.contains(&lower.as_str()) {
        Ok(lower)
    } else {
        Err(err(format!(
            "flag --log-level: expected one of {} (or warning, critical), found {value:?}",
            LOG_LEVELS.join(", ")
        )))
    }
}

pub(super) fn check_url(flag: &str, value: String) -> Result<String, UsageError> {
    let lower = value.to_ascii_lowercase();
    let rest = lower.strip_prefix("http://").or_else(|| lower.strip_prefix("https://"));
    match rest {
        Some(r) if !r.is_empty() && !r.starts_with('/') => Ok(value),
        _ => Err(err(format!(
            "flag {flag}: expected an http:// or https:// URL such as http://127.0.0.1:9001, found {value:?}"
        ))),
    }
}

pub(super) fn check_var_name(flag: &str, value: String) -> Result<String, UsageError> {
    let mut chars = value.chars();
    let ok = matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric());
    if ok {
        Ok(value)
    } else {
        Err(err(format!("flag {flag}: expected an environment variable name, found {value:?}")))
    }
}

/// A view's name, appended to the URL's path: a plain path segment.
pub(super) fn check_view_name(value: String) -> Result<String, UsageError> {
    let ok = (1..=64).contains(&value.len())
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
        && value != "."
        && value != "..";
    if ok {
        Ok(value)
    } else {
        Err(err(format!(
            "flag --view: expected a view name of 1 to 64 characters from A-Z, a-z, 0-9, '_', '.', '-', found {value:?}"
        )))
    }
}

pub(super) fn check_profile_name(value: String) -> Result<String, UsageError> {
    let ok =
        !value.is_empty() && value.len() <= 64 && value.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok {
        Ok(value)
    } else {
        Err(err(format!("profile name {value:?}: use 1 to 64 characters from A-Z, a-z, 0-9, '_', '.', '-'")))
    }
}

pub(super) fn conflict(a: &str, b: &str) -> UsageError {
    err(format!("{a} cannot be used with {b}; give one of them"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::subcommands::SERVER_FLAGS;

    #[test]
    fn edit_distance_and_suggestions() {
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("--listen", "--listen"), 0);
        assert_eq!(suggest("--lsten", &SERVER_FLAGS), Some("--listen"));
        assert_eq!(suggest("--qqqqqqqq", &SERVER_FLAGS), None);
    }
}
