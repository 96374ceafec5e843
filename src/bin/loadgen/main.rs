//! `mcp-sentinel-loadgen`: load generator for MCP Sentinel's data plane.
//!
//! - `burst`: N connections at the same instant, round after round, counting
//!   the ones the gateway accepts but never answers ([`burst`]).
//! - `calls`: K sessions × N `tools/call`, calls/s and latency ([`calls`]).
//! - `soak`: a mix of well-behaved and hostile clients for S seconds,
//!   counting hung calls ([`soak`]).
//! - `streams`: N idle event streams (legacy SSE or Streamable HTTP GET)
//!   held open until told to stop, for measuring what they cost ([`streams`]).
//!
//! Synchronous and threaded like the gateway: std threads, raw HTTP/1.1 on
//! `TcpStream` ([`http`]), the crate's own JSON-RPC and SSE codec, no async
//! runtime. Every wait has a deadline. Traffic goes to loopback only
//! (`--url` is checked). Each command prints one JSON line on stdout; the
//! exit code is 0 on success, 1 on failure, 2 on a usage error.

mod burst;
mod calls;
mod cli;
mod client;
mod garbage;
mod http;
mod latch;
mod soak;
mod stats;
mod streams;

use cli::{Command, USAGE};
use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cmd = match cli::parse(std::env::args_os().skip(1)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("mcp-sentinel-loadgen: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let result = match cmd {
        Command::Help => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Command::Version => {
            println!("mcp-sentinel-loadgen {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Command::Burst(o) => burst::run(&o),
        Command::Calls(o) => calls::run(&o),
        Command::Soak(o) => soak::run(&o),
        Command::Streams(o) => streams::run(&o),
    };
    match result {
        Ok((summary, ok)) => {
            let mut out = std::io::stdout().lock();
            // A closed stdout (piped into `head`) is not a failure of the run.
            let _ = writeln!(out, "{summary}").and_then(|()| out.flush());
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("mcp-sentinel-loadgen: {e}");
            ExitCode::from(1)
        }
    }
}
