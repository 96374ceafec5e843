//! The parsers of `mcp-sentinel server`, `tui`, `stdio` and `profile`: one lexopt
//! loop per subcommand, each flag checked as it is read, conflicts checked
//! at the end.

use std::ffi::OsString;

use lexopt::prelude::*;

use super::flags::{
    check_addr, check_log_level, check_profile_name, check_url, check_var_name, check_view_name, conflict, err,
    next_arg, unexpected_arg, unknown_flag, value_path, value_str,
};
use super::{CheckArgs, LogFormat, ProfileCmd, ServerArgs, StdioArgs, TuiArgs, UsageError};
use crate::client::TokenSource;

pub(super) const SERVER_FLAGS: [&str; 6] =
    ["--config", "--listen", "--manage-listen", "--manage-token-file", "--log-level", "--log-format"];
const CHECK_FLAGS: [&str; 1] = ["--config"];
const TUI_FLAGS: [&str; 6] = ["--profile", "--url", "--token-env", "--token-file", "--interval", "--keys"];
const STDIO_FLAGS: [&str; 5] = ["--url", "--token-env", "--token-file", "--view", "--log-level"];
const PROFILE_ADD_FLAGS: [&str; 4] = ["--url", "--token-env", "--token-file", "--ca-cert"];
const PROFILE_ACTIONS: &str = "list, add, remove or use";

pub(super) fn parse_server(args: &[OsString]) -> Result<ServerArgs, UsageError> {
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
            Long("log-format") => {
                a.log_format = match value_str(&mut p, "--log-format", CTX)?.as_str() {
                    "text" => LogFormat::Text,
                    "json" => LogFormat::Json,
                    other => return Err(err(format!("flag --log-format: expected text or json, found {other:?}"))),
                }
            }
            Value(v) => return Err(unexpected_arg(&v, CTX)),
            other => return Err(unknown_flag(&other, CTX, &SERVER_FLAGS)),
        }
    }
    Ok(a)
}

pub(super) fn parse_check(args: &[OsString]) -> Result<CheckArgs, UsageError> {
    const CTX: &str = "check";
    let mut p = lexopt::Parser::from_args(args);
    let mut a = CheckArgs::default();
    while let Some(arg) = next_arg(&mut p)? {
        match arg {
            Long("config") => a.config = Some(value_path(&mut p, "--config", CTX)?),
            Value(v) => return Err(unexpected_arg(&v, CTX)),
            other => return Err(unknown_flag(&other, CTX, &CHECK_FLAGS)),
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

pub(super) fn parse_tui(args: &[OsString]) -> Result<TuiArgs, UsageError> {
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
            Long("keys") => {
                let v = value_str(&mut p, "--keys", CTX)?;
                let map = crate::tui::app::KeyMap::from_name(&v);
                a.keys =
                    Some(map.ok_or_else(|| err(format!("flag --keys: expected default or classic, found {v:?}")))?);
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

pub(super) fn parse_stdio(args: &[OsString]) -> Result<StdioArgs, UsageError> {
    const CTX: &str = "stdio";
    let mut p = lexopt::Parser::from_args(args);
    let (mut url, mut token_env, mut token_file, mut view, mut log_level) = (None, None, None, None, None);
    while let Some(arg) = next_arg(&mut p)? {
        match arg {
            Long("url") => url = Some(check_url("--url", value_str(&mut p, "--url", CTX)?)?),
            Long("token-env") => {
                let v = value_str(&mut p, "--token-env", CTX)?;
                token_env = Some(check_var_name("--token-env", v)?);
            }
            Long("token-file") => token_file = Some(value_path(&mut p, "--token-file", CTX)?),
            Long("view") => view = Some(check_view_name(value_str(&mut p, "--view", CTX)?)?),
            Long("log-level") => {
                log_level = Some(check_log_level(value_str(&mut p, "--log-level", CTX)?)?);
            }
            Value(v) => return Err(unexpected_arg(&v, CTX)),
            other => return Err(unknown_flag(&other, CTX, &STDIO_FLAGS)),
        }
    }
    let token = match (token_env, token_file) {
        (Some(_), Some(_)) => return Err(conflict("--token-env", "--token-file")),
        (Some(v), None) => TokenSource::Env(v),
        (None, Some(f)) => TokenSource::File(f),
        (None, None) => TokenSource::None,
    };
    let url =
        url.ok_or_else(|| err("'stdio' needs --url URL, the gateway's MCP endpoint (e.g. http://127.0.0.1:9000/mcp)"))?;
    Ok(StdioArgs { url, token, view, log_level })
}

pub(super) fn parse_profile(args: &[OsString]) -> Result<ProfileCmd, UsageError> {
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

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::cli::flags::LOG_LEVELS;
    use crate::cli::testing::{error, p};
    use crate::cli::Command;

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
            r#"flag --log-level: expected one of error, warn, info, debug, trace (or warning, critical), found "loud""#
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
            "warning",
            "--log-format",
            "json",
        ]);
        assert_eq!(
            a,
            ServerArgs {
                config: Some("c.json".into()),
                listen: Some("127.0.0.1:2".into()),
                manage_listen: Some("127.0.0.1:3".into()),
                manage_token_file: Some("t".into()),
                log_level: Some("warn".into()),
                log_format: LogFormat::Json,
            }
        );
    }

    /// The original's level names are accepted; other unknown ones are not.
    #[test]
    fn log_levels_and_formats() {
        let level = |l: &str| match p(&["server", "--log-level", l]) {
            Ok(Command::Server(a)) => a.log_level,
            other => panic!("{other:?}"),
        };
        assert_eq!(level("critical").as_deref(), Some("error"));
        assert_eq!(level("WARNING").as_deref(), Some("warn"));
        assert_eq!(
            error(&["server", "--log-level", "loud"]),
            "flag --log-level: expected one of error, warn, info, debug, trace (or warning, critical), found \"loud\""
        );
        assert_eq!(
            error(&["server", "--log-format", "xml"]),
            "flag --log-format: expected text or json, found \"xml\""
        );
    }

    #[test]
    fn check_and_bare() {
        assert_eq!(p(&[]), Ok(Command::Bare));
        assert_eq!(p(&["check"]), Ok(Command::Check(CheckArgs { config: None })));
        assert_eq!(
            p(&["check", "--config", "c.json"]),
            Ok(Command::Check(CheckArgs { config: Some("c.json".into()) }))
        );
        assert_eq!(error(&["check", "--confg", "x"]), "unknown flag --confg for 'check' (did you mean --config?)");
        assert_eq!(p(&["check", "--help"]), Ok(Command::Help(crate::cli::help_text(Some("check")))));
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
        // The original's later `mcp-sentinel server` flags point to their equivalents.
        assert_eq!(
            error(&["server", "--port", "9000"]),
            "unknown flag --port for 'server' (the original's --host and --port are one flag here: --listen HOST:PORT)"
        );
        assert!(error(&["server", "--host", "0.0.0.0"]).contains("--listen HOST:PORT"));
        assert!(error(&["server", "-d"]).contains("no detached mode"));
        assert!(error(&["server", "--name", "x"]).contains("docs/deploy.md"));
        assert!(error(&["server", "-v"]).ends_with("(use --log-level debug)"));
        assert!(error(&["server", "--verbose"]).ends_with("(use --log-level debug)"));
        assert!(error(&["server", "--quiet"]).ends_with("(use --log-level error)"));
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
        assert_eq!(tui(&["--keys", "classic"]).keys, Some(crate::tui::app::KeyMap::Classic));
        assert_eq!(tui(&["--keys=default"]).keys, Some(crate::tui::app::KeyMap::Default));
        assert_eq!(error(&["tui", "--keys", "emacs"]), r#"flag --keys: expected default or classic, found "emacs""#);
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
        assert_eq!(
            error(&["tui", "--server", "http://127.0.0.1:9000"]),
            "unknown flag --server for 'tui' (use --url with the management API's address, \
             http://127.0.0.1:9001 by default, not the MCP port)"
        );
        assert!(error(&["tui", "--token", "t"]).contains("--token-env VAR or --token-file PATH"));
        assert!(error(&["tui", "--servers-config", "s.json"]).contains("'mcp-sentinel profile --help'"));
        assert_eq!(error(&["tui", "x"]), r#"unexpected argument "x" for 'tui'"#);
    }

    // ---- stdio

    fn stdio(args: &[&str]) -> StdioArgs {
        let mut v = vec!["stdio"];
        v.extend_from_slice(args);
        match p(&v).unwrap() {
            Command::Stdio(a) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn stdio_flags() {
        let a = stdio(&["--url", "http://127.0.0.1:9000/mcp"]);
        assert_eq!(
            a,
            StdioArgs {
                url: "http://127.0.0.1:9000/mcp".into(),
                token: TokenSource::None,
                view: None,
                log_level: None
            }
        );
        let a = stdio(&[
            "--url",
            "https://h/mcp",
            "--token-env",
            "SENTINEL_TOKEN",
            "--view",
            "ops",
            "--log-level",
            "debug",
        ]);
        assert_eq!(a.token, TokenSource::Env("SENTINEL_TOKEN".into()));
        assert_eq!(a.view.as_deref(), Some("ops"));
        assert_eq!(a.log_level.as_deref(), Some("debug"));
        assert_eq!(stdio(&["--url", "http://h/mcp", "--token-file", "/t"]).token, TokenSource::File("/t".into()));
    }

    #[test]
    fn stdio_errors() {
        assert_eq!(
            error(&["stdio"]),
            "'stdio' needs --url URL, the gateway's MCP endpoint (e.g. http://127.0.0.1:9000/mcp)"
        );
        assert_eq!(
            error(&["stdio", "--url", "http://h", "--token-env", "T", "--token-file", "f"]),
            "--token-env cannot be used with --token-file; give one of them"
        );
        assert_eq!(
            error(&["stdio", "--url", "http://h", "--view", "a/b"]),
            r#"flag --view: expected a view name of 1 to 64 characters from A-Z, a-z, 0-9, '_', '.', '-', found "a/b""#
        );
        assert_eq!(
            error(&["stdio", "--url", "h:9000"]),
            r#"flag --url: expected an http:// or https:// URL such as http://127.0.0.1:9001, found "h:9000""#
        );
        assert_eq!(error(&["stdio", "--vew", "x"]), "unknown flag --vew for 'stdio' (did you mean --view?)");
        assert_eq!(error(&["stdio", "x"]), r#"unexpected argument "x" for 'stdio'"#);
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
}
