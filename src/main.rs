//! `mcp-sentinel`: parses the command line and dispatches; errors become
//! exit codes (0 clean, 2 usage, 78 configuration, 1 anything else).

use mcp_sentinel::cli::{self, Command, ProfileCmd};
use mcp_sentinel::profiles::{self, Paths, Profile, ProfileError};
use mcp_sentinel::{server, tui};
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
        Command::Legacy { no_tui: false, args } => {
            eprintln!("mcp-sentinel: warning: {}", cli::DEPRECATION_WARNING);
            server::run_combined(args)
        }
        Command::Tui(args) => match tui::run_cli(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("mcp-sentinel: {e}");
                ExitCode::from(e.exit_code())
            }
        },
        Command::Profile(cmd) => match profile(cmd) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("mcp-sentinel: {e}");
                ExitCode::from(e.exit_code())
            }
        },
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
