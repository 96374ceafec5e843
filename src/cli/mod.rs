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
//!
//! The pieces: `subcommands.rs` parses `server`, `tui`, `stdio` and `profile`,
//! `legacy.rs` the deprecated flat flags, `flags.rs` holds the lexopt
//! plumbing and the checks of flag values they share, `help.rs` the help
//! texts.

mod flags;
mod help;
mod legacy;
mod subcommands;
#[cfg(test)]
mod testing;

pub use crate::bridge::StdioArgs;
pub use crate::tui::TuiArgs;
pub use help::{help_text, version_text};
pub use legacy::DEPRECATION_WARNING;

use std::ffi::OsString;
use std::path::PathBuf;

use crate::config::Overrides;
use crate::exit::{Fatal, Kind};
use flags::err;
use legacy::parse_legacy;
use subcommands::{parse_check, parse_profile, parse_server, parse_stdio, parse_tui};

/// What the user asked for.
#[derive(Debug, PartialEq)]
pub enum Command {
    Server(ServerArgs),
    Tui(TuiArgs),
    Profile(ProfileCmd),
    /// `stdio`: the bridge from a stdio MCP client to a gateway's `/mcp`.
    Stdio(StdioArgs),
    /// Deprecated flat flags: `--no-tui` runs the server only; without it,
    /// the legacy combined mode (server + attached TUI).
    Legacy {
        no_tui: bool,
        args: ServerArgs,
    },
    /// No arguments at all: the legacy combined mode, explained (not a
    /// deprecation warning for flags nobody gave).
    Bare,
    /// `mcp-sentinel check [--config PATH]`.
    Check(CheckArgs),
    Help(String),
    Version,
}

/// `mcp-sentinel check`: the config file to validate (else the usual lookup).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CheckArgs {
    pub config: Option<PathBuf>,
}

/// How log lines are written (`--log-format`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// env_logger's human format.
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServerArgs {
    pub config: Option<PathBuf>,
    pub listen: Option<String>,
    pub manage_listen: Option<String>,
    pub manage_token_file: Option<PathBuf>,
    pub log_level: Option<String>,
    pub log_format: LogFormat,
}

impl ServerArgs {
    /// The part of the flags that overrides the configuration file, kept
    /// by the runtime to apply again on each reload.
    pub fn overrides(&self) -> Overrides {
        Overrides { listen: self.listen.clone(), manage_listen: self.manage_listen.clone() }
    }
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

impl Fatal for UsageError {
    fn kind(&self) -> Kind {
        Kind::Usage
    }
}

const SUBCOMMANDS: [&str; 5] = ["server", "tui", "profile", "check", "stdio"];

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
        None => Ok(Command::Bare),
        Some(Some(a)) if a.starts_with('-') => parse_legacy(&args),
        Some(Some("server")) => parse_server(&args[1..]).map(Command::Server),
        Some(Some("tui")) => parse_tui(&args[1..]).map(Command::Tui),
        Some(Some("profile")) => parse_profile(&args[1..]).map(Command::Profile),
        Some(Some("check")) => parse_check(&args[1..]).map(Command::Check),
        Some(Some("stdio")) => parse_stdio(&args[1..]).map(Command::Stdio),
        // The original's later `stop` and `status` managed its detached mode.
        Some(Some(other @ ("stop" | "status"))) => Err(err(format!(
            "unknown subcommand {other:?}: there is no detached mode to {}; run the server under a service \
             manager, see docs/deploy.md",
            if other == "stop" { "stop" } else { "list" }
        ))),
        Some(Some(other)) => Err(err(format!(
            "unknown subcommand {other:?} (expected one of: {}); see 'mcp-sentinel --help'",
            SUBCOMMANDS.join(", ")
        ))),
        Some(None) => Err(err("the subcommand is not valid UTF-8")),
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{error, p};
    use super::*;

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
        assert_eq!(p(&["stdio", "--url", "http://h/mcp", "-h"]), Ok(Command::Help(help_text(Some("stdio")))));
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
    #[test]
    fn unknown_subcommand() {
        assert_eq!(
            error(&["serve"]),
            r#"unknown subcommand "serve" (expected one of: server, tui, profile, check, stdio); see 'mcp-sentinel --help'"#
        );
        assert_eq!(
            error(&["stop"]),
            r#"unknown subcommand "stop": there is no detached mode to stop; run the server under a service manager, see docs/deploy.md"#
        );
        assert!(error(&["status"]).contains("no detached mode to list"));
    }
}
