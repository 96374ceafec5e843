//! Command-line parsing with lexopt (CONTRACT §2). Pure: no I/O besides
//! reading the argument list; config lookup happens in `config::locate`.

use std::ffi::OsString;
use std::path::PathBuf;

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

#[derive(Debug, Default, PartialEq)]
pub struct ServerArgs {
    pub config: Option<PathBuf>,
    pub listen: Option<String>,
    pub manage_listen: Option<String>,
    pub manage_token_file: Option<PathBuf>,
    pub log_level: Option<String>,
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
    Add {
        name: String,
        url: String,
        token_env: Option<String>,
        token_file: Option<PathBuf>,
        ca_cert: Option<PathBuf>,
    },
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
