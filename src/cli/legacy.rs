//! The deprecated flat flags of the original project: `mcp-sentinel
//! [--no-tui] [--host H] [--port P] [--log-level L]`, plus two it never
//! had, `--manage-port P` and `--config PATH`. `--no-tui` runs the server;
//! without it, the legacy combined mode (the server with a TUI attached).
//! `main` prints [`DEPRECATION_WARNING`].

use std::ffi::OsString;
use std::net::IpAddr;

use lexopt::prelude::*;

use super::flags::{check_log_level, err, flag_name, next_arg, suggest, value_path, value_str};
use super::subcommands::SERVER_FLAGS;
use super::{Command, ServerArgs, UsageError, SUBCOMMANDS};

/// Printed (after a `mcp-sentinel: warning: ` prefix, by `main`) when the
/// deprecated flat flags are used.
pub const DEPRECATION_WARNING: &str = "the flat flags --no-tui, --host and --port are deprecated; \
use 'mcp-sentinel server --listen HOST:PORT' (and 'mcp-sentinel tui' to watch it)";

const LEGACY_FLAGS: [&str; 6] = ["--no-tui", "--host", "--port", "--manage-port", "--log-level", "--config"];
const DEFAULT_LEGACY_HOST: &str = "127.0.0.1";
const DEFAULT_LEGACY_PORT: u16 = 9000;

/// The deprecated flat flags. `--host`/`--port` become `listen`; the
/// caller prints [`DEPRECATION_WARNING`].
pub(super) fn parse_legacy(args: &[OsString]) -> Result<Command, UsageError> {
    const CTX: &str = "mcp-sentinel";
    let mut p = lexopt::Parser::from_args(args);
    let mut no_tui = false;
    let (mut host, mut port): (Option<String>, Option<u16>) = (None, None);
    let mut a = ServerArgs::default();
    while let Some(arg) = next_arg(&mut p)? {
        let arg = match arg {
            Long(l) => Long(unabbreviate(l)),
            other => other,
        };
        match arg {
            Long("no-tui") => no_tui = true,
            Long("host") => host = Some(legacy_host(value_str(&mut p, "--host", CTX)?)?),
            Long("port") => port = Some(legacy_port("--port", value_str(&mut p, "--port", CTX)?)?),
            // Not a flag of the original: the one legacy way to move the
            // management API, so that two legacy instances can run.
            Long("manage-port") => {
                let mp = legacy_port("--manage-port", value_str(&mut p, "--manage-port", CTX)?)?;
                a.manage_listen = Some(format!("{DEFAULT_LEGACY_HOST}:{mp}"));
            }
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

/// The original parsed its flags with argparse, which takes any
/// unambiguous prefix of a long flag (`--no`, `--po 8080`, `--log debug`):
/// such a prefix of one of its four flags is that flag. A prefix shared
/// with another flag (`--h`: `--host` or `--help`) stays as it is.
fn unabbreviate(flag: &str) -> &str {
    const ORIGINAL: [&str; 4] = ["no-tui", "host", "port", "log-level"];
    const ALL: [&str; 7] = ["no-tui", "host", "port", "log-level", "manage-port", "config", "help"];
    if flag.is_empty() || ALL.contains(&flag) {
        return flag;
    }
    let mut matches = ALL.iter().filter(|f| f.starts_with(flag));
    match (matches.next(), matches.next()) {
        (Some(f), None) if ORIGINAL.contains(f) => f,
        _ => flag,
    }
}

/// An IP address; `localhost` is accepted as 127.0.0.1: the original
/// handed `--host` to uvicorn, which also took host names, and this is the
/// one whose meaning does not depend on a resolver.
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

fn legacy_port(flag: &str, value: String) -> Result<u16, UsageError> {
    match value.parse::<u16>() {
        Ok(p) if p >= 1 => Ok(p),
        _ => Err(err(format!("flag {flag}: expected a port number from 1 to 65535, found {value:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::cli::testing::{error, p};

    fn legacy(args: &[&str]) -> (bool, ServerArgs) {
        match p(args).unwrap() {
            Command::Legacy { no_tui, args } => (no_tui, args),
            other => panic!("{other:?}"),
        }
    }

    /// No arguments: the combined mode, told apart so that it is explained
    /// rather than warned about; `--manage-port` moves the management API.
    #[test]
    fn legacy_bare_is_combined_mode() {
        assert_eq!(p(&[]), Ok(Command::Bare));
        let (_, a) = legacy(&["--no-tui", "--port", "9100", "--manage-port", "9101"]);
        assert_eq!(a.listen.as_deref(), Some("127.0.0.1:9100"));
        assert_eq!(a.manage_listen.as_deref(), Some("127.0.0.1:9101"));
        assert_eq!(
            error(&["--manage-port", "0"]),
            "flag --manage-port: expected a port number from 1 to 65535, found \"0\""
        );
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

    /// argparse's abbreviations of the original's flags.
    #[test]
    fn legacy_abbreviations() {
        let (no_tui, a) = legacy(&["--no", "--ho", "0.0.0.0", "--po", "8080", "--log=warning"]);
        assert!(no_tui);
        assert_eq!(a.listen.as_deref(), Some("0.0.0.0:8080"));
        assert_eq!(a.log_level.as_deref(), Some("warn"));
        assert_eq!(legacy(&["--n", "--p", "1"]).1.listen.as_deref(), Some("127.0.0.1:1"));
        // Ambiguous (--host or --help), and not the original's: left alone.
        assert!(p(&["--h", "x"]).is_err());
        assert!(p(&["--conf", "c.json"]).is_err());
        assert_eq!(error(&["--port-x", "1"]), "unknown flag --port-x (did you mean --port?)");
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
            "unknown flag --zzzzzz; expected a subcommand (server, tui, profile, check, stdio), see 'mcp-sentinel --help'"
        );
        assert_eq!(error(&["--port"]), "flag --port for 'mcp-sentinel' needs a value");
        assert_eq!(
            error(&["--no-tui", "server"]),
            r#"unexpected argument "server"; a subcommand (server, tui, profile, check, stdio) must come first"#
        );
    }

    #[test]
    fn deprecation_warning_is_one_line() {
        assert!(!DEPRECATION_WARNING.contains('\n'));
        assert!(DEPRECATION_WARNING.contains("mcp-sentinel server --listen"));
    }
}
