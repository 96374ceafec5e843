//! Command-line parsing with lexopt (CONTRACT §2). Pure: no I/O besides
//! reading the argument list; config lookup happens in `config::locate`.
//! Runs on the main thread before anything else.
//!
//! This is the first of ripgrep's two stages: [`parse`] turns the argument
//! list into a typed, validated [`Command`] (no file access, no
//! environment); `server` then locates and loads the config and applies
//! [`ServerArgs::overrides`] to it (`config::Config::apply_overrides`).
//!
//! Every error is one line naming the flag, exit code 2. `--help`/`-h` and
//! `--version`/`-V` win wherever they appear before `--`, so
//! `mcp-sentinel server --lisen x --help` still shows help; the price is
//! that a flag value spelled `-h` cannot be passed, which no flag needs.
//! Repeated flags: the last one wins (ripgrep's rule).

use std::ffi::OsString;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use lexopt::prelude::*;

use crate::config::Overrides;

/// What the user asked for.
#[derive(Debug, PartialEq)]
pub enum Command {
    Server(ServerArgs),
    Tui(TuiArgs),
    Profile(ProfileCmd),
    /// Deprecated flat flags: `--no-tui` runs the server only; without it,
    /// the legacy combined mode (server + attached TUI).
    Legacy {
        no_tui: bool,
        args: ServerArgs,
    },
    Help(String),
    Version,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServerArgs {
    pub config: Option<PathBuf>,
    pub listen: Option<String>,
    pub manage_listen: Option<String>,
    pub manage_token_file: Option<PathBuf>,
    pub log_level: Option<String>,
}

impl ServerArgs {
    /// The part of the flags that overrides the configuration file, kept
    /// by the runtime to apply again on each reload.
    pub fn overrides(&self) -> Overrides {
        Overrides { listen: self.listen.clone(), manage_listen: self.manage_listen.clone() }
    }
}

#[derive(Debug, Default, PartialEq)]
pub struct TuiArgs {
    pub profile: Option<String>,
    pub url: Option<String>,
    pub token_env: Option<String>,
    pub token_file: Option<PathBuf>,
    pub interval_s: Option<f64>,
}

#[derive(Debug, PartialEq)]
pub enum ProfileCmd {
    List,
    Add { name: String, url: String, token_env: Option<String>, token_file: Option<PathBuf>, ca_cert: Option<PathBuf> },
    Remove(String),
    Use(String),
}

/// A usage error: one line, exit code 2.
#[derive(Debug, PartialEq)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl std::error::Error for UsageError {}

/// Printed (after a `mcp-sentinel: warning: ` prefix, by `main`) when the
/// deprecated flat flags are used.
pub const DEPRECATION_WARNING: &str = "the flat flags --no-tui, --host and --port are deprecated; \
use 'mcp-sentinel server --listen HOST:PORT' (and 'mcp-sentinel tui' to watch it)";

const SUBCOMMANDS: [&str; 3] = ["server", "tui", "profile"];
const SERVER_FLAGS: [&str; 5] = ["--config", "--listen", "--manage-listen", "--manage-token-file", "--log-level"];
const TUI_FLAGS: [&str; 5] = ["--profile", "--url", "--token-env", "--token-file", "--interval"];
const PROFILE_ADD_FLAGS: [&str; 4] = ["--url", "--token-env", "--token-file", "--ca-cert"];
const LEGACY_FLAGS: [&str; 5] = ["--no-tui", "--host", "--port", "--log-level", "--config"];
const LOG_LEVELS: [&str; 5] = ["error", "warn", "info", "debug", "trace"];
const PROFILE_ACTIONS: &str = "list, add, remove or use";
const DEFAULT_LEGACY_HOST: &str = "127.0.0.1";
const DEFAULT_LEGACY_PORT: u16 = 9000;

/// Parses the arguments after argv\[0\].
pub fn parse<I: IntoIterator<Item = OsString>>(args: I) -> Result<Command, UsageError> {
    let args: Vec<OsString> = args.into_iter().collect();
    let first = args.first().map(|a| a.to_str());
    let topic = first.flatten().filter(|a| SUBCOMMANDS.contains(a));
    let before_dashdash = || args.iter().take_while(|a| *a != "--");
    if before_dashdash().any(|a| a == "--help" || a == "-h") {
        return Ok(Command::Help(help_text(topic)));
    }
    if before_dashdash().any(|a| a == "--version" || a == "-V") {
        return Ok(Command::Version);
    }
    match first {
        // No arguments at all: the legacy combined mode (server + TUI).
        None => Ok(Command::Legacy { no_tui: false, args: ServerArgs::default() }),
        Some(Some(a)) if a.starts_with('-') => parse_legacy(&args),
        Some(Some("server")) => parse_server(&args[1..]).map(Command::Server),
        Some(Some("tui")) => parse_tui(&args[1..]).map(Command::Tui),
        Some(Some("profile")) => parse_profile(&args[1..]).map(Command::Profile),
        Some(Some(other)) => Err(err(format!(
            "unknown subcommand {other:?} (expected one of: {}); see 'mcp-sentinel --help'",
            SUBCOMMANDS.join(", ")
        ))),
        Some(None) => Err(err("the subcommand is not valid UTF-8")),
    }
}

/// `mcp-sentinel VERSION`, for `--version`.
pub fn version_text() -> String {
    format!("mcp-sentinel {}", env!("CARGO_PKG_VERSION"))
}

/// Help for `topic` ("server", "tui", "profile"), or the top-level help.
pub fn help_text(topic: Option<&str>) -> String {
    let body = match topic {
        Some("server") => SERVER_HELP,
        Some("tui") => TUI_HELP,
        Some("profile") => PROFILE_HELP,
        _ => TOP_HELP,
    };
    format!("{}\n{body}", version_text())
}

const TOP_HELP: &str = "\
An MCP gateway: many backend MCP servers behind one, with a management API.

USAGE:
    mcp-sentinel server  [--config PATH] [--listen ADDR] [--manage-listen ADDR]
                         [--manage-token-file PATH] [--log-level LEVEL]
    mcp-sentinel tui     [--profile NAME | --url URL [--token-env VAR | --token-file PATH]]
                         [--interval SECS]
    mcp-sentinel profile list | add NAME --url URL [--token-env VAR | --token-file PATH]
                         [--ca-cert PEM] | remove NAME | use NAME
    mcp-sentinel --help | --version

COMMANDS:
    server     Run the gateway: the MCP listener and the /manage/v1 API.
    tui        Watch and operate a running server (never stops it).
    profile    List, add, remove or select the servers the TUI talks to.

Run 'mcp-sentinel COMMAND --help' for the options of a command.

DEPRECATED (still works, prints a warning):
    mcp-sentinel --no-tui [--host H] [--port P] [--log-level L] [--config PATH]
        Same as 'mcp-sentinel server --listen H:P'.
    mcp-sentinel [--host H] [--port P]
        Runs the server and attaches the TUI; quitting the TUI stops the server.

EXIT CODES: 0 clean shutdown, 2 usage error, 78 configuration error.
";

const SERVER_HELP: &str = "\
Run the gateway: the MCP listener (data plane) and the /manage/v1 API.

USAGE:
    mcp-sentinel server [--config PATH] [--listen ADDR] [--manage-listen ADDR]
                        [--manage-token-file PATH] [--log-level LEVEL]

OPTIONS:
    --config PATH              Config file. Default: $MCP_SENTINEL_CONFIG, else
                               ./mcp-sentinel.json, else ./config.json.
    --listen ADDR              MCP listener, IP:PORT (overrides server.listen;
                               default 127.0.0.1:9000).
    --manage-listen ADDR       Management API, IP:PORT (overrides manage.listen;
                               default 127.0.0.1:9001).
    --manage-token-file PATH   Where the generated admin token is written when
                               the config has no manage.tokens. Default:
                               $XDG_STATE_HOME/mcp-sentinel/manage-<port>.token
    --log-level LEVEL          error, warn, info, debug or trace (else RUST_LOG).
    -h, --help                 Show this help.
";

const TUI_HELP: &str = "\
Watch and operate a running server through its /manage/v1 API. Quitting the
TUI never stops a server it did not start.

USAGE:
    mcp-sentinel tui [--profile NAME | --url URL [--token-env VAR | --token-file PATH]]
                     [--interval SECS]

OPTIONS:
    --profile NAME       Use this saved profile instead of the active one.
    --url URL            Connect to this management URL (no profile).
    --token-env VAR      With --url: read the bearer token from $VAR.
    --token-file PATH    With --url: read the bearer token from PATH.
    --interval SECS      Poll interval in seconds (default 1; fractions allowed).
    -h, --help           Show this help.
";

const PROFILE_HELP: &str = "\
Manage the TUI's profiles ($XDG_CONFIG_HOME/mcp-sentinel/profiles.json).

USAGE:
    mcp-sentinel profile list
    mcp-sentinel profile add NAME --url URL [--token-env VAR | --token-file PATH]
                             [--ca-cert PEM]
    mcp-sentinel profile remove NAME
    mcp-sentinel profile use NAME

OPTIONS (add):
    --url URL            Management URL, e.g. http://127.0.0.1:9001
    --token-env VAR      Read the bearer token from $VAR.
    --token-file PATH    Read the bearer token from PATH.
    --ca-cert PEM        Trust this CA certificate (for a TLS management API).
    -h, --help           Show this help.
";

fn err(msg: impl Into<String>) -> UsageError {
    UsageError(msg.into())
}

/// `parser.next()` with lexopt's errors turned into our one-liners.
fn next_arg(p: &mut lexopt::Parser) -> Result<Option<lexopt::Arg<'_>>, UsageError> {
    p.next().map_err(|e| match e {
        lexopt::Error::UnexpectedValue { option, .. } => err(format!("flag {option} takes no value")),
        other => err(other.to_string()),
    })
}

fn flag_name(arg: &lexopt::Arg<'_>) -> String {
    match arg {
        Short(c) => format!("-{c}"),
        Long(l) => format!("--{l}"),
        Value(v) => v.to_string_lossy().into_owned(),
    }
}

/// The flag's value as UTF-8 text; the flag name is the error's context.
fn value_str(p: &mut lexopt::Parser, flag: &str, ctx: &str) -> Result<String, UsageError> {
    let v = p.value().map_err(|_| err(format!("flag {flag} for '{ctx}' needs a value")))?;
    v.into_string().map_err(|_| err(format!("the value of {flag} is not valid UTF-8")))
}

/// Paths stay `OsString`: a non-UTF-8 path is still a path.
fn value_path(p: &mut lexopt::Parser, flag: &str, ctx: &str) -> Result<PathBuf, UsageError> {
    let v = p.value().map_err(|_| err(format!("flag {flag} for '{ctx}' needs a value")))?;
    if v.is_empty() {
        return Err(err(format!("flag {flag} needs a non-empty path")));
    }
    Ok(PathBuf::from(v))
}

fn unknown_flag(arg: &lexopt::Arg<'_>, ctx: &str, known: &[&str]) -> UsageError {
    let flag = flag_name(arg);
    match suggest(&flag, known) {
        Some(s) => err(format!("unknown flag {flag} for '{ctx}' (did you mean {s}?)")),
        None => err(format!(
            "unknown flag {flag} for '{ctx}'; see 'mcp-sentinel {} --help'",
            ctx.split(' ').next().unwrap_or(ctx)
        )),
    }
}

fn unexpected_arg(v: &OsString, ctx: &str) -> UsageError {
    err(format!("unexpected argument {:?} for '{ctx}'", v.to_string_lossy()))
}

/// The closest known flag, if it is close enough to be a typo.
fn suggest<'a>(flag: &str, known: &[&'a str]) -> Option<&'a str> {
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

fn check_addr(flag: &str, value: String) -> Result<String, UsageError> {
    match value.parse::<SocketAddr>() {
        Ok(_) => Ok(value),
        Err(_) => Err(err(format!("flag {flag}: expected IP:PORT such as 127.0.0.1:9000, found {value:?}"))),
    }
}

fn check_log_level(value: String) -> Result<String, UsageError> {
    let lower = value.to_ascii_lowercase();
    if LOG_LEVELS.contains(&lower.as_str()) {
        Ok(lower)
    } else {
        Err(err(format!("flag --log-level: expected one of {}, found {value:?}", LOG_LEVELS.join(", "))))
    }
}

fn check_url(flag: &str, value: String) -> Result<String, UsageError> {
    let lower = value.to_ascii_lowercase();
    let rest = lower.strip_prefix("http://").or_else(|| lower.strip_prefix("https://"));
    match rest {
        Some(r) if !r.is_empty() && !r.starts_with('/') => Ok(value),
        _ => Err(err(format!(
            "flag {flag}: expected an http:// or https:// URL such as http://127.0.0.1:9001, found {value:?}"
        ))),
    }
}

fn check_var_name(flag: &str, value: String) -> Result<String, UsageError> {
    let mut chars = value.chars();
    let ok = matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric());
    if ok {
        Ok(value)
    } else {
        Err(err(format!("flag {flag}: expected an environment variable name, found {value:?}")))
    }
}

fn check_profile_name(value: String) -> Result<String, UsageError> {
    let ok =
        !value.is_empty() && value.len() <= 64 && value.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok {
        Ok(value)
    } else {
        Err(err(format!("profile name {value:?}: use 1 to 64 characters from A-Z, a-z, 0-9, '_', '.', '-'")))
    }
}

fn conflict(a: &str, b: &str) -> UsageError {
    err(format!("{a} cannot be used with {b}; give one of them"))
}

fn parse_server(args: &[OsString]) -> Result<ServerArgs, UsageError> {
    const CTX: &str = "server";
    let mut p = lexopt::Parser::from_args(args);
    let mut a = ServerArgs::default();
    while let Some(arg) = next_arg(&mut p)? {
        match arg {
            Long("config") => a.config = Some(value_path(&mut p, "--config", CTX)?),
            Long("listen") => a.listen = Some(check_addr("--listen", value_str(&mut p, "--listen", CTX)?)?),
            Long("manage-listen") => {
                let v = value_str(&mut p, "--manage-listen", CTX)?;
                a.manage_listen = Some(check_addr("--manage-listen", v)?);
            }
            Long("manage-token-file") => {
                a.manage_token_file = Some(value_path(&mut p, "--manage-token-file", CTX)?);
            }
            Long("log-level") => {
                a.log_level = Some(check_log_level(value_str(&mut p, "--log-level", CTX)?)?);
            }
            Value(v) => return Err(unexpected_arg(&v, CTX)),
            other => return Err(unknown_flag(&other, CTX, &SERVER_FLAGS)),
        }
    }
    Ok(a)
}

fn parse_interval(value: String) -> Result<f64, UsageError> {
    match value.parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 => Ok(s),
        _ => Err(err(format!("flag --interval: expected a positive number of seconds, found {value:?}"))),
    }
}

fn parse_tui(args: &[OsString]) -> Result<TuiArgs, UsageError> {
    const CTX: &str = "tui";
    let mut p = lexopt::Parser::from_args(args);
    let mut a = TuiArgs::default();
    while let Some(arg) = next_arg(&mut p)? {
        match arg {
            Long("profile") => {
                a.profile = Some(check_profile_name(value_str(&mut p, "--profile", CTX)?)?);
            }
            Long("url") => a.url = Some(check_url("--url", value_str(&mut p, "--url", CTX)?)?),
            Long("token-env") => {
                let v = value_str(&mut p, "--token-env", CTX)?;
                a.token_env = Some(check_var_name("--token-env", v)?);
            }
            Long("token-file") => a.token_file = Some(value_path(&mut p, "--token-file", CTX)?),
            Long("interval") => {
                a.interval_s = Some(parse_interval(value_str(&mut p, "--interval", CTX)?)?);
            }
            Value(v) => return Err(unexpected_arg(&v, CTX)),
            other => return Err(unknown_flag(&other, CTX, &TUI_FLAGS)),
        }
    }
    if a.profile.is_some() && a.url.is_some() {
        return Err(conflict("--profile", "--url"));
    }
    if a.token_env.is_some() && a.token_file.is_some() {
        return Err(conflict("--token-env", "--token-file"));
    }
    // A profile carries its own token; a token flag alone would be inert.
    if a.url.is_none() {
        if a.token_env.is_some() {
            return Err(err("flag --token-env needs --url (a profile carries its own token)"));
        }
        if a.token_file.is_some() {
            return Err(err("flag --token-file needs --url (a profile carries its own token)"));
        }
    }
    Ok(a)
}

fn parse_profile(args: &[OsString]) -> Result<ProfileCmd, UsageError> {
    let Some(action) = args.first() else {
        return Err(err(format!("'profile' needs an action: {PROFILE_ACTIONS}")));
    };
    let rest = &args[1..];
    match action.to_str() {
        Some("list") => {
            let mut p = lexopt::Parser::from_args(rest);
            match next_arg(&mut p)? {
                None => Ok(ProfileCmd::List),
                Some(Value(v)) => Err(unexpected_arg(&v, "profile list")),
                Some(other) => Err(unknown_flag(&other, "profile list", &[])),
            }
        }
        Some("add") => parse_profile_add(rest),
        Some("remove") => one_name(rest, "profile remove").map(ProfileCmd::Remove),
        Some("use") => one_name(rest, "profile use").map(ProfileCmd::Use),
        _ => Err(err(format!(
            "unknown action {:?} for 'profile' (expected {PROFILE_ACTIONS})",
            action.to_string_lossy()
        ))),
    }
}

/// `profile remove NAME` / `profile use NAME`: exactly one name, no flags.
fn one_name(args: &[OsString], ctx: &str) -> Result<String, UsageError> {
    let mut p = lexopt::Parser::from_args(args);
    let mut name = None;
    while let Some(arg) = next_arg(&mut p)? {
        match arg {
            Value(v) if name.is_none() => {
                let v = v.into_string().map_err(|_| err("the profile name is not valid UTF-8"))?;
                name = Some(check_profile_name(v)?);
            }
            Value(v) => return Err(unexpected_arg(&v, ctx)),
            other => return Err(unknown_flag(&other, ctx, &[])),
        }
    }
    name.ok_or_else(|| err(format!("'{ctx}' needs a profile NAME")))
}

fn parse_profile_add(args: &[OsString]) -> Result<ProfileCmd, UsageError> {
    const CTX: &str = "profile add";
    let mut p = lexopt::Parser::from_args(args);
    let (mut name, mut url, mut token_env, mut token_file, mut ca_cert) = (None, None, None, None, None);
    while let Some(arg) = next_arg(&mut p)? {
        match arg {
            Value(v) if name.is_none() => {
                let v = v.into_string().map_err(|_| err("the profile name is not valid UTF-8"))?;
                name = Some(check_profile_name(v)?);
            }
            Long("url") => url = Some(check_url("--url", value_str(&mut p, "--url", CTX)?)?),
            Long("token-env") => {
                let v = value_str(&mut p, "--token-env", CTX)?;
                token_env = Some(check_var_name("--token-env", v)?);
            }
            Long("token-file") => token_file = Some(value_path(&mut p, "--token-file", CTX)?),
            Long("ca-cert") => ca_cert = Some(value_path(&mut p, "--ca-cert", CTX)?),
            Value(v) => return Err(unexpected_arg(&v, CTX)),
            other => return Err(unknown_flag(&other, CTX, &PROFILE_ADD_FLAGS)),
        }
    }
    if token_env.is_some() && token_file.is_some() {
        return Err(conflict("--token-env", "--token-file"));
    }
    let name = name.ok_or_else(|| err("'profile add' needs a profile NAME"))?;
    let url = url.ok_or_else(|| err("'profile add' needs --url URL"))?;
    Ok(ProfileCmd::Add { name, url, token_env, token_file, ca_cert })
}

/// The deprecated flat flags. `--host`/`--port` become `listen`; the
/// caller prints [`DEPRECATION_WARNING`].
fn parse_legacy(args: &[OsString]) -> Result<Command, UsageError> {
    const CTX: &str = "mcp-sentinel";
    let mut p = lexopt::Parser::from_args(args);
    let mut no_tui = false;
    let (mut host, mut port): (Option<String>, Option<u16>) = (None, None);
    let mut a = ServerArgs::default();
    while let Some(arg) = next_arg(&mut p)? {
        match arg {
            Long("no-tui") => no_tui = true,
            Long("host") => host = Some(legacy_host(value_str(&mut p, "--host", CTX)?)?),
            Long("port") => port = Some(legacy_port(value_str(&mut p, "--port", CTX)?)?),
            Long("log-level") => {
                a.log_level = Some(check_log_level(value_str(&mut p, "--log-level", CTX)?)?);
            }
            Long("config") => a.config = Some(value_path(&mut p, "--config", CTX)?),
            Value(v) => {
                return Err(err(format!(
                    "unexpected argument {:?}; a subcommand ({}) must come first",
                    v.to_string_lossy(),
                    SUBCOMMANDS.join(", ")
                )))
            }
            other => {
                let flag = flag_name(&other);
                // A new-style flag used without its subcommand.
                if SERVER_FLAGS.contains(&flag.as_str()) {
                    return Err(err(format!(
                        "flag {flag} belongs to a subcommand: use 'mcp-sentinel server {flag} ...'"
                    )));
                }
                return Err(match suggest(&flag, &LEGACY_FLAGS) {
                    Some(s) => err(format!("unknown flag {flag} (did you mean {s}?)")),
                    None => err(format!(
                        "unknown flag {flag}; expected a subcommand ({}), see 'mcp-sentinel --help'",
                        SUBCOMMANDS.join(", ")
                    )),
                });
            }
        }
    }
    if host.is_some() || port.is_some() {
        let host = host.unwrap_or_else(|| DEFAULT_LEGACY_HOST.to_string());
        let port = port.unwrap_or(DEFAULT_LEGACY_PORT);
        a.listen = Some(match host.parse::<IpAddr>() {
            Ok(IpAddr::V6(_)) => format!("[{host}]:{port}"),
            _ => format!("{host}:{port}"),
        });
    }
    Ok(Command::Legacy { no_tui, args: a })
}

/// An IP address; `localhost` is accepted as 127.0.0.1 because the
/// original project's docs used it.
fn legacy_host(value: String) -> Result<String, UsageError> {
    if value.eq_ignore_ascii_case("localhost") {
        return Ok(DEFAULT_LEGACY_HOST.to_string());
    }
    let trimmed = value.trim_start_matches('[').trim_end_matches(']');
    match trimmed.parse::<IpAddr>() {
        Ok(ip) => Ok(ip.to_string()),
        Err(_) => Err(err(format!("flag --host: expected an IP address such as 127.0.0.1, found {value:?}"))),
    }
}

fn legacy_port(value: String) -> Result<u16, UsageError> {
    match value.parse::<u16>() {
        Ok(p) if p >= 1 => Ok(p),
        _ => Err(err(format!("flag --port: expected a port number from 1 to 65535, found {value:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Command, UsageError> {
        parse(args.iter().map(OsString::from))
    }

    fn server(args: &[&str]) -> ServerArgs {
        let mut v = vec!["server"];
        v.extend_from_slice(args);
        match p(&v).unwrap() {
            Command::Server(a) => a,
            other => panic!("{other:?}"),
        }
    }

    fn tui(args: &[&str]) -> TuiArgs {
        let mut v = vec!["tui"];
        v.extend_from_slice(args);
        match p(&v).unwrap() {
            Command::Tui(a) => a,
            other => panic!("{other:?}"),
        }
    }

    fn error(args: &[&str]) -> String {
        let e = p(args).unwrap_err().0;
        assert!(!e.contains('\n'), "one line: {e}");
        e
    }

    // ---- server

    #[test]
    fn server_no_flags() {
        assert_eq!(server(&[]), ServerArgs::default());
    }

    #[test]
    fn server_config() {
        assert_eq!(server(&["--config", "/etc/m.json"]).config, Some(PathBuf::from("/etc/m.json")));
        assert_eq!(server(&["--config=/etc/m.json"]).config, Some(PathBuf::from("/etc/m.json")));
    }

    #[test]
    fn server_listen() {
        assert_eq!(server(&["--listen", "0.0.0.0:8000"]).listen.as_deref(), Some("0.0.0.0:8000"));
        assert_eq!(server(&["--listen", "[::1]:0"]).listen.as_deref(), Some("[::1]:0"));
        assert_eq!(
            error(&["server", "--listen", "localhost"]),
            r#"flag --listen: expected IP:PORT such as 127.0.0.1:9000, found "localhost""#
        );
    }

    #[test]
    fn server_manage_listen() {
        assert_eq!(server(&["--manage-listen", "127.0.0.1:9101"]).manage_listen.as_deref(), Some("127.0.0.1:9101"));
        assert_eq!(
            error(&["server", "--manage-listen", "9101"]),
            r#"flag --manage-listen: expected IP:PORT such as 127.0.0.1:9000, found "9101""#
        );
    }

    #[test]
    fn server_manage_token_file() {
        assert_eq!(server(&["--manage-token-file", "/tmp/t"]).manage_token_file, Some(PathBuf::from("/tmp/t")));
        assert_eq!(error(&["server", "--manage-token-file", ""]), "flag --manage-token-file needs a non-empty path");
    }

    #[test]
    fn server_log_level() {
        for l in LOG_LEVELS {
            assert_eq!(server(&["--log-level", l]).log_level.as_deref(), Some(l));
        }
        assert_eq!(server(&["--log-level", "DEBUG"]).log_level.as_deref(), Some("debug"));
        assert_eq!(
            error(&["server", "--log-level", "loud"]),
            r#"flag --log-level: expected one of error, warn, info, debug, trace, found "loud""#
        );
    }

    #[test]
    fn server_all_flags_and_last_wins() {
        let a = server(&[
            "--config",
            "c.json",
            "--listen",
            "127.0.0.1:1",
            "--listen",
            "127.0.0.1:2",
            "--manage-listen",
            "127.0.0.1:3",
            "--manage-token-file",
            "t",
            "--log-level",
            "warn",
        ]);
        assert_eq!(
            a,
            ServerArgs {
                config: Some("c.json".into()),
                listen: Some("127.0.0.1:2".into()),
                manage_listen: Some("127.0.0.1:3".into()),
                manage_token_file: Some("t".into()),
                log_level: Some("warn".into()),
            }
        );
    }

    #[test]
    fn server_errors() {
        assert_eq!(error(&["server", "--lisen", "x"]), "unknown flag --lisen for 'server' (did you mean --listen?)");
        assert_eq!(
            error(&["server", "--manage-listn", "x"]),
            "unknown flag --manage-listn for 'server' (did you mean --manage-listen?)"
        );
        assert_eq!(
            error(&["server", "--bogus"]),
            "unknown flag --bogus for 'server'; see 'mcp-sentinel server --help'"
        );
        assert_eq!(error(&["server", "-x"]), "unknown flag -x for 'server'; see 'mcp-sentinel server --help'");
        assert_eq!(error(&["server", "--listen"]), "flag --listen for 'server' needs a value");
        assert_eq!(error(&["server", "--config"]), "flag --config for 'server' needs a value");
        assert_eq!(error(&["server", "extra"]), r#"unexpected argument "extra" for 'server'"#);
    }

    // ---- tui

    #[test]
    fn tui_flags() {
        assert_eq!(tui(&[]), TuiArgs::default());
        assert_eq!(tui(&["--profile", "prod"]).profile.as_deref(), Some("prod"));
        let a = tui(&["--url", "https://h:9001", "--token-env", "SENTINEL_TOKEN", "--interval", "0.5"]);
        assert_eq!(a.url.as_deref(), Some("https://h:9001"));
        assert_eq!(a.token_env.as_deref(), Some("SENTINEL_TOKEN"));
        assert_eq!(a.interval_s, Some(0.5));
        assert_eq!(tui(&["--url", "http://h", "--token-file", "/t"]).token_file, Some(PathBuf::from("/t")));
        assert_eq!(tui(&["--interval", "2"]).interval_s, Some(2.0));
    }

    #[test]
    fn tui_errors() {
        assert_eq!(
            error(&["tui", "--profile", "a", "--url", "http://h"]),
            "--profile cannot be used with --url; give one of them"
        );
        assert_eq!(
            error(&["tui", "--url", "http://h", "--token-env", "T", "--token-file", "f"]),
            "--token-env cannot be used with --token-file; give one of them"
        );
        assert_eq!(
            error(&["tui", "--token-env", "T"]),
            "flag --token-env needs --url (a profile carries its own token)"
        );
        assert_eq!(
            error(&["tui", "--token-file", "f"]),
            "flag --token-file needs --url (a profile carries its own token)"
        );
        for bad in ["0", "-1", "x", "inf", "NaN"] {
            assert_eq!(
                error(&["tui", "--interval", bad]),
                format!("flag --interval: expected a positive number of seconds, found {bad:?}")
            );
        }
        assert_eq!(
            error(&["tui", "--url", "h:9001"]),
            r#"flag --url: expected an http:// or https:// URL such as http://127.0.0.1:9001, found "h:9001""#
        );
        assert_eq!(
            error(&["tui", "--url", "http://h", "--token-env", "1X"]),
            r#"flag --token-env: expected an environment variable name, found "1X""#
        );
        assert_eq!(
            error(&["tui", "--intervall", "1"]),
            "unknown flag --intervall for 'tui' (did you mean --interval?)"
        );
        assert_eq!(error(&["tui", "--profile"]), "flag --profile for 'tui' needs a value");
        assert_eq!(error(&["tui", "x"]), r#"unexpected argument "x" for 'tui'"#);
    }

    // ---- profile

    #[test]
    fn profile_list() {
        assert_eq!(p(&["profile", "list"]), Ok(Command::Profile(ProfileCmd::List)));
        assert_eq!(error(&["profile", "list", "x"]), r#"unexpected argument "x" for 'profile list'"#);
    }

    #[test]
    fn profile_add() {
        assert_eq!(
            p(&["profile", "add", "prod", "--url", "https://h:9001", "--token-file", "/t", "--ca-cert", "ca.pem"]),
            Ok(Command::Profile(ProfileCmd::Add {
                name: "prod".into(),
                url: "https://h:9001".into(),
                token_env: None,
                token_file: Some("/t".into()),
                ca_cert: Some("ca.pem".into()),
            }))
        );
        // The name may come after the flags.
        assert_eq!(
            p(&["profile", "add", "--url", "http://h", "--token-env", "T", "dev"]),
            Ok(Command::Profile(ProfileCmd::Add {
                name: "dev".into(),
                url: "http://h".into(),
                token_env: Some("T".into()),
                token_file: None,
                ca_cert: None,
            }))
        );
    }

    #[test]
    fn profile_add_errors() {
        assert_eq!(error(&["profile", "add", "--url", "http://h"]), "'profile add' needs a profile NAME");
        assert_eq!(error(&["profile", "add", "x"]), "'profile add' needs --url URL");
        assert_eq!(
            error(&["profile", "add", "x", "--url", "http://h", "--token-env", "T", "--token-file", "f"]),
            "--token-env cannot be used with --token-file; give one of them"
        );
        assert_eq!(
            error(&["profile", "add", "x", "y", "--url", "http://h"]),
            r#"unexpected argument "y" for 'profile add'"#
        );
        assert_eq!(
            error(&["profile", "add", "x", "--ur", "http://h"]),
            "unknown flag --ur for 'profile add' (did you mean --url?)"
        );
        assert_eq!(error(&["profile", "add", "x", "--ca-cert"]), "flag --ca-cert for 'profile add' needs a value");
        assert_eq!(
            error(&["profile", "add", "a b", "--url", "http://h"]),
            r#"profile name "a b": use 1 to 64 characters from A-Z, a-z, 0-9, '_', '.', '-'"#
        );
    }

    #[test]
    fn profile_remove_and_use() {
        assert_eq!(p(&["profile", "remove", "old"]), Ok(Command::Profile(ProfileCmd::Remove("old".into()))));
        assert_eq!(p(&["profile", "use", "prod"]), Ok(Command::Profile(ProfileCmd::Use("prod".into()))));
        assert_eq!(error(&["profile", "use"]), "'profile use' needs a profile NAME");
        assert_eq!(error(&["profile", "remove", "a", "b"]), r#"unexpected argument "b" for 'profile remove'"#);
        assert_eq!(
            error(&["profile", "use", "--force"]),
            "unknown flag --force for 'profile use'; see 'mcp-sentinel profile --help'"
        );
    }

    #[test]
    fn profile_action_errors() {
        assert_eq!(error(&["profile"]), "'profile' needs an action: list, add, remove or use");
        assert_eq!(
            error(&["profile", "delete", "x"]),
            r#"unknown action "delete" for 'profile' (expected list, add, remove or use)"#
        );
    }

    // ---- help and version

    #[test]
    fn help_anywhere() {
        let top = help_text(None);
        assert_eq!(p(&["--help"]), Ok(Command::Help(top.clone())));
        assert_eq!(p(&["-h"]), Ok(Command::Help(top.clone())));
        assert_eq!(p(&["--no-tui", "--help"]), Ok(Command::Help(top)));
        assert_eq!(p(&["server", "--help"]), Ok(Command::Help(help_text(Some("server")))));
        assert_eq!(p(&["server", "--lisen", "x", "-h"]), Ok(Command::Help(help_text(Some("server")))));
        assert_eq!(p(&["tui", "-h"]), Ok(Command::Help(help_text(Some("tui")))));
        assert_eq!(p(&["profile", "add", "--help"]), Ok(Command::Help(help_text(Some("profile")))));
        assert!(help_text(Some("server")).contains("--manage-token-file PATH"));
        assert!(help_text(None).contains("mcp-sentinel profile list | add NAME --url URL"));
    }

    #[test]
    fn version() {
        assert_eq!(p(&["--version"]), Ok(Command::Version));
        assert_eq!(p(&["-V"]), Ok(Command::Version));
        assert_eq!(p(&["server", "--version"]), Ok(Command::Version));
        assert!(version_text().starts_with("mcp-sentinel "));
    }

    // ---- legacy flat flags

    fn legacy(args: &[&str]) -> (bool, ServerArgs) {
        match p(args).unwrap() {
            Command::Legacy { no_tui, args } => (no_tui, args),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn legacy_bare_is_combined_mode() {
        assert_eq!(legacy(&[]), (false, ServerArgs::default()));
    }

    #[test]
    fn legacy_no_tui() {
        assert_eq!(legacy(&["--no-tui"]), (true, ServerArgs::default()));
        assert_eq!(error(&["--no-tui=yes"]), "flag --no-tui takes no value");
    }

    #[test]
    fn legacy_host_and_port() {
        let listen = |args: &[&str]| legacy(args).1.listen;
        assert_eq!(listen(&["--host", "0.0.0.0", "--port", "8080"]).as_deref(), Some("0.0.0.0:8080"));
        assert_eq!(listen(&["--port", "8080"]).as_deref(), Some("127.0.0.1:8080"));
        assert_eq!(listen(&["--host", "0.0.0.0"]).as_deref(), Some("0.0.0.0:9000"));
        assert_eq!(listen(&["--host", "localhost"]).as_deref(), Some("127.0.0.1:9000"));
        assert_eq!(listen(&["--host", "::1", "--port", "1"]).as_deref(), Some("[::1]:1"));
        assert_eq!(listen(&["--no-tui"]), None);
        assert_eq!(
            error(&["--host", "example.com"]),
            r#"flag --host: expected an IP address such as 127.0.0.1, found "example.com""#
        );
        for bad in ["0", "65536", "x", "-1"] {
            assert_eq!(
                error(&["--port", bad]),
                format!("flag --port: expected a port number from 1 to 65535, found {bad:?}")
            );
        }
        assert_eq!(listen(&["--port", "65535"]).as_deref(), Some("127.0.0.1:65535"));
    }

    #[test]
    fn legacy_log_level_and_config() {
        let (no_tui, a) = legacy(&["--no-tui", "--log-level", "debug", "--config", "config.json"]);
        assert!(no_tui);
        assert_eq!(a.log_level.as_deref(), Some("debug"));
        assert_eq!(a.config, Some(PathBuf::from("config.json")));
    }

    #[test]
    fn legacy_errors() {
        assert_eq!(error(&["--prot", "1"]), "unknown flag --prot (did you mean --port?)");
        assert_eq!(
            error(&["--listen", "127.0.0.1:1"]),
            "flag --listen belongs to a subcommand: use 'mcp-sentinel server --listen ...'"
        );
        assert_eq!(
            error(&["--zzzzzz"]),
            "unknown flag --zzzzzz; expected a subcommand (server, tui, profile), see 'mcp-sentinel --help'"
        );
        assert_eq!(error(&["--port"]), "flag --port for 'mcp-sentinel' needs a value");
        assert_eq!(
            error(&["--no-tui", "server"]),
            r#"unexpected argument "server"; a subcommand (server, tui, profile) must come first"#
        );
    }

    #[test]
    fn unknown_subcommand() {
        assert_eq!(
            error(&["serve"]),
            r#"unknown subcommand "serve" (expected one of: server, tui, profile); see 'mcp-sentinel --help'"#
        );
    }

    #[test]
    fn deprecation_warning_is_one_line() {
        assert!(!DEPRECATION_WARNING.contains('\n'));
        assert!(DEPRECATION_WARNING.contains("mcp-sentinel server --listen"));
    }

    #[test]
    fn edit_distance_and_suggestions() {
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("--listen", "--listen"), 0);
        assert_eq!(suggest("--lsten", &SERVER_FLAGS), Some("--listen"));
        assert_eq!(suggest("--qqqqqqqq", &SERVER_FLAGS), None);
    }
}
