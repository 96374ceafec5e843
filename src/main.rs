//! `mcp-sentinel`: parses the command line and dispatches; errors become
//! exit codes (0 clean, 2 usage, 78 configuration).

use mcp_sentinel::cli::{self, Command};
use mcp_sentinel::server;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cmd = match cli::parse(std::env::args_os().skip(1)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("mcp-sentinel: {e}");
            eprintln!("Run 'mcp-sentinel --help' for usage.");
            return ExitCode::from(server::EXIT_USAGE);
        }
    };
    match cmd {
        Command::Help(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Command::Version => {
            println!("mcp-sentinel {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Command::Server(args) => server::run(args),
        Command::Legacy { no_tui: true, args } => {
            eprintln!("mcp-sentinel: warning: {}", cli::DEPRECATION_WARNING);
            server::run(args)
        }
        Command::Legacy { no_tui: false, .. } => {
            eprintln!("mcp-sentinel: warning: {}", cli::DEPRECATION_WARNING);
            eprintln!("mcp-sentinel: the legacy combined mode (server with attached TUI) is not yet implemented; use 'mcp-sentinel server' or '--no-tui'");
            ExitCode::from(server::EXIT_USAGE)
        }
        Command::Tui(_) | Command::Profile(_) => {
            eprintln!("mcp-sentinel: this subcommand is not yet implemented");
            ExitCode::from(server::EXIT_USAGE)
        }
    }
}
