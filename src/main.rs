//! `mcp-sentinel`: parses the command line and dispatches; a failure
//! becomes its exit code in one place, `exit::fail` (0 clean, 2 usage, 78
//! configuration, 1 anything else).

use mcp_sentinel::cli::{self, Command, ProfileCmd};
use mcp_sentinel::exit;
use mcp_sentinel::profiles::{self, Paths, Profile, ProfileError};
use mcp_sentinel::{bridge, check, server, tui};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cmd = match cli::parse(std::env::args_os().skip(1)) {
        Ok(c) => c,
        Err(e) => {
            let code = exit::fail(&e);
            eprintln!("Run 'mcp-sentinel --help' for usage.");
            return code;
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
        Command::Server(args) => exit::finish(server::run(args)),
        Command::Legacy { no_tui: true, args } => {
            eprintln!("mcp-sentinel: warning: {}", cli::DEPRECATION_WARNING);
            exit::finish(server::run(args))
        }
        Command::Legacy { no_tui: false, args } => {
            eprintln!("mcp-sentinel: warning: {}", cli::DEPRECATION_WARNING);
            exit::finish(server::run_combined(args))
        }
        Command::Bare => {
            eprintln!(
                "mcp-sentinel: no command given: running the server with a TUI attached, as the original did \
                 (quitting the TUI stops it). 'mcp-sentinel server' runs the server alone, 'mcp-sentinel tui' \
                 watches one; 'mcp-sentinel --help' lists every command."
            );
            exit::finish(server::run_combined(cli::ServerArgs::default()))
        }
        Command::Check(args) => {
            server::init_logging(Some("warn"));
            exit::finish(check::run(&args))
        }
        Command::Tui(args) => exit::finish(tui::run_cli(&args)),
        Command::Profile(cmd) => exit::finish(profile(cmd)),
        Command::Stdio(args) => exit::finish(bridge::run(&args)),
    }
}

/// `mcp-sentinel profile list|add|remove|use`.
fn profile(cmd: ProfileCmd) -> Result<(), ProfileError> {
    let paths = Paths::from_env()?;
    match cmd {
        ProfileCmd::List => {
            print!("{}", profiles::list_text(&profiles::load(&paths)?, &paths));
        }
        ProfileCmd::Add { name, url, token_env, token_file, ca_cert } => {
            let p = Profile { name: name.clone(), url, token_env, token_file, ca_cert };
            let file = profiles::add(&paths, p)?;
            let active = file.active.as_deref().unwrap_or(&name);
            println!("added profile {name:?} to {} (active: {active})", paths.profiles_file.display());
        }
        ProfileCmd::Remove(name) => {
            let file = profiles::remove(&paths, &name)?;
            match file.active {
                Some(a) => println!("removed profile {name:?} (active: {a})"),
                None => println!("removed profile {name:?} (no profiles left; 'local' is the default)"),
            }
        }
        ProfileCmd::Use(name) => {
            profiles::use_profile(&paths, &name)?;
            println!("active profile: {name}");
        }
    }
    Ok(())
}
