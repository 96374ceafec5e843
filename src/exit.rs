//! How `mcp-sentinel` ends when something fails: the kinds of failure, the
//! one mapping from a kind to the process exit code (the table in
//! `docs/configuration.md`), and the one line printed for it. The errors
//! that end the process say which kind they are ([`Fatal`]) and never
//! choose a number; `main` hands them to [`fail`]. Runs on the main thread,
//! at the end. A leaf: it knows no other module, so any may use it.

use std::fmt;
use std::process::ExitCode;

/// What kind of failure ended the process. 0, a clean shutdown, is not a
/// failure and has no kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Anything else: a listener that cannot bind, no terminal for the TUI,
    /// a file that cannot be written.
    Failure,
    /// The command line is wrong: a bad flag or flag value, including an
    /// override the configuration refuses (`--manage-listen`).
    Usage,
    /// The configuration is wrong: the file (lookup, syntax, sections), a
    /// file it names (TLS, tokens, audit log), or a file that holds secrets
    /// and that others control (sysexits `EX_CONFIG`).
    Config,
}

impl Kind {
    /// The exit code of this kind of failure.
    pub const fn code(self) -> u8 {
        match self {
            Kind::Failure => 1,
            Kind::Usage => 2,
            Kind::Config => 78,
        }
    }
}

/// An error that ends the process: one line to print, and its kind.
pub trait Fatal: fmt::Display {
    fn kind(&self) -> Kind;
}

/// Prints `mcp-sentinel: {err}` on stderr and returns the exit code of its
/// kind: the one place a failure becomes an exit code.
pub fn fail(err: &dyn Fatal) -> ExitCode {
    eprintln!("mcp-sentinel: {err}");
    ExitCode::from(err.kind().code())
}

/// The exit code of a command's outcome: 0, or [`fail`]'s.
pub fn finish<E: Fatal>(result: Result<(), E>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The codes are an interface: scripts and service managers read them.
    #[test]
    fn codes_are_the_documented_ones() {
        assert_eq!([Kind::Failure, Kind::Usage, Kind::Config].map(Kind::code), [1, 2, 78]);
    }
}
