//! `mcp-sentinel-demo`: a small MCP server bundled with MCP Sentinel, for the
//! README's first command and for the gateway's integration tests.
//!
//! It speaks stdio (default), legacy HTTP+SSE (`--sse`) or Streamable HTTP
//! (`--http`), and offers tools that exercise the gateway's hard paths:
//! progress, cancellation, crashes, hangs (`freeze`), pagination,
//! `list_changed`, server→client requests and garbage on stdout.

mod http;
mod server;

use mcp_sentinel::codec::jsonrpc::{parse_one, Message};
use parking_lot::Mutex;
use server::{handle, run_effects, Chaos, Server, Session, Sink};
use std::io::{BufRead, Write};
use std::sync::Arc;

const USAGE: &str =
    "usage: mcp-sentinel-demo [--name NAME] [--sse ADDR | --http ADDR] [--mute] [--garbage] [--page-size N]
                         [--pad-tools N] [--template URI_TEMPLATE]... [--chaos-crash P] [--chaos-hang P]
                         [--startup-delay-ms N]";

/// Which transport to serve.
#[derive(Debug, PartialEq)]
pub enum Transport {
    Stdio,
    Sse(String),
    Http(String),
}

#[derive(Debug)]
pub struct Opts {
    pub name: String,
    pub transport: Transport,
    pub mute: bool,
    pub garbage: bool,
    pub page_size: usize,
    pub pad_tools: usize,
    pub templates: Vec<String>,
    /// Failure injection on `tools/call` (soak tests).
    pub chaos: Chaos,
    /// Wait this long before serving (a slow-starting server).
    pub startup_delay_ms: u64,
}

/// A probability flag's value: a number from 0 to 1.
fn probability(p: &mut lexopt::Parser) -> Result<f64, lexopt::Error> {
    use lexopt::ValueExt;
    let v: f64 = p.value()?.parse()?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("expected a probability from 0 to 1, found {v}").into())
    }
}

fn parse_args() -> Result<Opts, lexopt::Error> {
    parse_from(std::env::args_os().skip(1))
}

fn parse_from(args: impl IntoIterator<Item = std::ffi::OsString>) -> Result<Opts, lexopt::Error> {
    use lexopt::prelude::*;
    let mut o = Opts {
        name: "demo".into(),
        transport: Transport::Stdio,
        mute: false,
        garbage: false,
        page_size: 2,
        pad_tools: 0,
        templates: Vec::new(),
        chaos: Chaos::default(),
        startup_delay_ms: 0,
    };
    let mut p = lexopt::Parser::from_args(args);
    while let Some(arg) = p.next()? {
        match arg {
            Long("name") => o.name = p.value()?.string()?,
            Long("sse") => o.transport = Transport::Sse(p.value()?.string()?),
            Long("http") => o.transport = Transport::Http(p.value()?.string()?),
            Long("mute") => o.mute = true,
            Long("garbage") => o.garbage = true,
            Long("page-size") => o.page_size = p.value()?.parse()?,
            Long("pad-tools") => o.pad_tools = p.value()?.parse()?,
            Long("template") => o.templates.push(p.value()?.string()?),
            Long("startup-delay-ms") => o.startup_delay_ms = p.value()?.parse()?,
            Long("chaos-crash") => o.chaos.crash = probability(&mut p).map_err(|e| flag_error("--chaos-crash", e))?,
            Long("chaos-hang") => o.chaos.hang = probability(&mut p).map_err(|e| flag_error("--chaos-hang", e))?,
            Short('h') | Long("help") => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            Short('V') | Long("version") => {
                println!("mcp-sentinel-demo {}", env!("CARGO_PKG_VERSION"));
                std::process::exit(0);
            }
            _ => return Err(arg.unexpected()),
        }
    }
    if o.chaos.crash + o.chaos.hang > 1.0 {
        return Err("--chaos-crash plus --chaos-hang must not exceed 1".into());
    }
    Ok(o)
}

/// Names the flag in a value error (lexopt's own message does not).
fn flag_error(flag: &str, e: lexopt::Error) -> lexopt::Error {
    format!("{flag}: {e}").into()
}

fn main() {
    let opts = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("mcp-sentinel-demo: {e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    let mut srv = Server::new(&opts.name, opts.page_size).with_chaos(opts.chaos);
    srv.pad_tools = opts.pad_tools;
    srv.templates = opts.templates.clone();
    let srv = Arc::new(srv);
    // A server that takes its time to start (the gateway's start-up grace).
    std::thread::sleep(std::time::Duration::from_millis(opts.startup_delay_ms));
    let r = match &opts.transport {
        Transport::Stdio => serve_stdio(&srv, &opts),
        Transport::Sse(addr) => http::serve_sse(srv.clone(), addr, opts.mute),
        Transport::Http(addr) => http::serve_http(srv.clone(), addr, opts.mute),
    };
    if let Err(e) = r {
        eprintln!("mcp-sentinel-demo: {e}");
        std::process::exit(1);
    }
}

/// Newline-delimited JSON-RPC on stdin/stdout. Every write is one whole line
/// under a mutex, because `slow` and `ask_client` threads write too.
fn serve_stdio(srv: &Arc<Server>, opts: &Opts) -> std::io::Result<()> {
    let out = Arc::new(Mutex::new(std::io::stdout()));
    let garbage = opts.garbage;
    let sink: Sink = Arc::new(move |m: Message| {
        let mut line = Vec::with_capacity(256);
        if garbage && matches!(m, Message::Response { .. } | Message::Error { .. }) {
            line.extend_from_slice(b"this is not json\n");
        }
        m.write_json(&mut line);
        line.push(b'\n');
        let mut o = out.lock();
        // A closed stdout means the client is gone; stdin EOF ends us soon.
        let _ = o.write_all(&line).and_then(|()| o.flush());
    });
    let sess = Arc::new(Session::default());
    eprintln!("mcp-sentinel-demo-{}: serving MCP on stdio", srv.name);
    for line in std::io::stdin().lock().split(b'\n') {
        let line = line?;
        if line.iter().all(u8::is_ascii_whitespace) || opts.mute || srv.frozen() {
            continue;
        }
        match parse_one(&line) {
            Ok(msg) => run_effects(&sess, handle(srv, &sess, msg), &sink),
            Err((id, e)) => sink(Message::error(id, e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Opts, String> {
        parse_from(args.iter().map(std::ffi::OsString::from)).map_err(|e| e.to_string())
    }

    #[test]
    fn chaos_flags() {
        assert_eq!(parse(&[]).unwrap().chaos, Chaos::default());
        let o = parse(&["--chaos-crash", "0.1", "--chaos-hang", "0.25"]).unwrap();
        assert_eq!(o.chaos, Chaos { crash: 0.1, hang: 0.25 });
        let e = parse(&["--chaos-crash", "1.5"]).unwrap_err();
        assert!(e.contains("--chaos-crash") && e.contains("probability"), "{e}");
        assert!(parse(&["--chaos-hang", "x"]).unwrap_err().contains("--chaos-hang"));
        assert!(parse(&["--chaos-crash", "0.6", "--chaos-hang", "0.6"]).unwrap_err().contains("exceed 1"));
    }

    #[test]
    fn other_flags_still_parse() {
        let o = parse(&["--name", "n", "--sse", "127.0.0.1:0", "--page-size", "0", "--mute"]).unwrap();
        assert_eq!(
            (o.name.as_str(), o.transport, o.page_size, o.mute),
            ("n", Transport::Sse("127.0.0.1:0".into()), 0, true)
        );
    }
}
