//! Command line of `mcp-sentinel-loadgen`: one lexopt `match` loop per
//! subcommand into typed, validated options. No I/O (the main thread runs it).

use crate::client::Transport;
use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

pub const USAGE: &str = "\
usage: mcp-sentinel-loadgen burst --url URL [--kind sse|initialize] [--connections N] [--rounds R]
                                  [--timeout-ms MS] [--pause-ms MS]
       mcp-sentinel-loadgen calls --url URL [--transport streamable|sse] [--sessions K] [--calls N]
                                  [--tool NAME] [--size BYTES] [--timeout-ms MS]
       mcp-sentinel-loadgen soak  --url URL [--duration-s S] [--seed N] [--clients N]
                                  [--deadline-s S] [--chaos-match TEXT] [--skip-garbage NAME,...]
                                  [--stop-file PATH]
       mcp-sentinel-loadgen streams --url URL [--transport sse|streamable] [--count N] [--threads T]
                                  [--hold-s S] [--stop-file PATH] [--ready-file PATH] [--timeout-ms MS]

URL is http://127.0.0.1:PORT (loopback only). Each command prints one JSON
line on stdout and exits 1 on failure (unanswered, errors, hangs), 2 on a
usage error.";

#[derive(Debug, PartialEq)]
pub enum Command {
    Help,
    Version,
    Burst(BurstOpts),
    Calls(CallsOpts),
    Soak(SoakOpts),
    Streams(StreamsOpts),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BurstKind {
    /// `GET /sse` until the `endpoint` event.
    Sse,
    /// `POST /mcp` initialize until its response.
    Initialize,
}

impl BurstKind {
    pub fn name(self) -> &'static str {
        match self {
            BurstKind::Sse => "sse",
            BurstKind::Initialize => "initialize",
        }
    }
}

#[derive(Debug, PartialEq)]
pub struct BurstOpts {
    pub addr: SocketAddr,
    pub kind: BurstKind,
    pub connections: usize,
    pub rounds: usize,
    pub timeout: Duration,
    pub pause: Duration,
}

#[derive(Debug, PartialEq)]
pub struct CallsOpts {
    pub addr: SocketAddr,
    pub transport: Transport,
    pub sessions: usize,
    pub calls: usize,
    pub tool: String,
    pub size: usize,
    pub timeout: Duration,
}

#[derive(Debug, PartialEq)]
pub struct SoakOpts {
    pub addr: SocketAddr,
    pub duration: Duration,
    /// `None`: from the clock and the pid, printed in the summary.
    pub seed: Option<u64>,
    /// Threads per misbehaving kind; the well-behaved kinds get twice this.
    pub clients: usize,
    /// A call not answered within this counts as hung.
    pub deadline: Duration,
    /// Tools whose name contains this belong to the chaos backends.
    pub chaos_match: String,
    /// Malformed-request cases not to send (one known to crash the gateway
    /// would end the soak before anything else is found).
    pub skip_garbage: Vec<String>,
    /// Ends the run early (with its summary) once this file exists.
    pub stop_file: Option<std::path::PathBuf>,
}

#[derive(Debug, PartialEq)]
pub struct StreamsOpts {
    pub addr: SocketAddr,
    pub transport: Transport,
    /// Streams to open and hold.
    pub count: usize,
    /// Threads opening them (one stream at a time each).
    pub threads: usize,
    /// Longest hold; the stop file ends it earlier.
    pub hold: Duration,
    pub stop_file: Option<std::path::PathBuf>,
    /// Written (a JSON line with the counts) once every stream is open or failed.
    pub ready_file: Option<std::path::PathBuf>,
    /// For opening one stream.
    pub timeout: Duration,
}

/// `http://127.0.0.1:PORT[/...]` → the socket address; loopback only,
/// because the load generator must never send traffic elsewhere.
pub fn parse_url(url: &str) -> Result<SocketAddr, String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| format!("{url:?} must start with http://"))?;
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() => (h, p),
        _ => return Err(format!("{url:?} needs a host and a port, as in http://127.0.0.1:9000")),
    };
    let port: u16 = port.parse().map_err(|_| format!("{url:?}: bad port {port:?}"))?;
    let ip = if host.eq_ignore_ascii_case("localhost") {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        IpAddr::from_str(bare).map_err(|_| format!("{url:?}: host {host:?} is not an IP address or localhost"))?
    };
    if !ip.is_loopback() {
        return Err(format!("{url:?}: only loopback addresses are allowed"));
    }
    if port == 0 {
        return Err(format!("{url:?}: port 0"));
    }
    Ok(SocketAddr::new(ip, port))
}

/// The next value of `flag`, parsed; the error names the flag.
fn value<T: FromStr>(p: &mut lexopt::Parser, flag: &str) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    let raw = p.value().map_err(|e| format!("{flag}: {e}"))?;
    let s = raw.into_string().map_err(|_| format!("{flag}: not valid UTF-8"))?;
    s.parse().map_err(|e| format!("{flag}: {e} ({s:?})"))
}

/// `--transport streamable|http|sse`.
fn transport(p: &mut lexopt::Parser) -> Result<Transport, String> {
    match value::<String>(p, "--transport")?.as_str() {
        "streamable" | "http" => Ok(Transport::Streamable),
        "sse" => Ok(Transport::Sse),
        other => Err(format!("--transport: {other:?} is not streamable or sse")),
    }
}

fn positive(n: u64, flag: &str) -> Result<u64, String> {
    if n == 0 {
        return Err(format!("{flag} must be at least 1"));
    }
    Ok(n)
}

fn unexpected(arg: lexopt::Arg<'_>) -> String {
    arg.unexpected().to_string()
}

pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Command, String> {
    use lexopt::prelude::*;
    let mut p = lexopt::Parser::from_args(args);
    let sub = match p.next().map_err(|e| e.to_string())? {
        Some(Value(v)) => v.into_string().map_err(|_| "the subcommand is not valid UTF-8".to_owned())?,
        Some(Short('h') | Long("help")) => return Ok(Command::Help),
        Some(Short('V') | Long("version")) => return Ok(Command::Version),
        Some(arg) => return Err(unexpected(arg)),
        None => return Err("expected a subcommand: burst, calls, soak or streams".into()),
    };
    let mut url: Option<SocketAddr> = None;
    macro_rules! next_arg {
        () => {
            match p.next().map_err(|e| e.to_string())? {
                Some(Long("url")) => {
                    url = Some(parse_url(&value::<String>(&mut p, "--url")?).map_err(|e| format!("--url: {e}"))?);
                    continue;
                }
                Some(Short('h') | Long("help")) => return Ok(Command::Help),
                other => other,
            }
        };
    }
    let need_url = |url: Option<SocketAddr>| url.ok_or_else(|| format!("{sub} needs --url http://127.0.0.1:PORT"));
    match sub.as_str() {
        "burst" => {
            let (mut kind, mut connections, mut rounds, mut timeout_ms, mut pause_ms) =
                (BurstKind::Sse, 64, 20, 5000, 0);
            loop {
                match next_arg!() {
                    None => break,
                    Some(Long("kind")) => {
                        kind = match value::<String>(&mut p, "--kind")?.as_str() {
                            "sse" => BurstKind::Sse,
                            "initialize" | "init" => BurstKind::Initialize,
                            other => return Err(format!("--kind: {other:?} is not sse or initialize")),
                        }
                    }
                    Some(Long("connections")) => {
                        connections = positive(value(&mut p, "--connections")?, "--connections")?
                    }
                    Some(Long("rounds")) => rounds = positive(value(&mut p, "--rounds")?, "--rounds")?,
                    Some(Long("timeout-ms")) => timeout_ms = positive(value(&mut p, "--timeout-ms")?, "--timeout-ms")?,
                    Some(Long("pause-ms")) => pause_ms = value(&mut p, "--pause-ms")?,
                    Some(arg) => return Err(unexpected(arg)),
                }
            }
            if connections > 4096 {
                return Err("--connections: at most 4096".into());
            }
            Ok(Command::Burst(BurstOpts {
                addr: need_url(url)?,
                kind,
                connections: connections as usize,
                rounds: rounds as usize,
                timeout: Duration::from_millis(timeout_ms),
                pause: Duration::from_millis(pause_ms),
            }))
        }
        "calls" => {
            let mut o = CallsOpts {
                addr: SocketAddr::from(([127, 0, 0, 1], 1)),
                transport: Transport::Streamable,
                sessions: 4,
                calls: 1000,
                tool: "echo".into(),
                size: 16,
                timeout: Duration::from_secs(30),
            };
            loop {
                match next_arg!() {
                    None => break,
                    Some(Long("transport")) => o.transport = transport(&mut p)?,
                    Some(Long("sessions")) => {
                        o.sessions = positive(value(&mut p, "--sessions")?, "--sessions")? as usize
                    }
                    Some(Long("calls")) => o.calls = positive(value(&mut p, "--calls")?, "--calls")? as usize,
                    Some(Long("tool")) => o.tool = value(&mut p, "--tool")?,
                    Some(Long("size")) => o.size = value(&mut p, "--size")?,
                    Some(Long("timeout-ms")) => {
                        o.timeout = Duration::from_millis(positive(value(&mut p, "--timeout-ms")?, "--timeout-ms")?)
                    }
                    Some(arg) => return Err(unexpected(arg)),
                }
            }
            if o.size > 16 << 20 {
                return Err("--size: at most 16 MiB".into());
            }
            if o.sessions > 1024 {
                return Err("--sessions: at most 1024".into());
            }
            o.addr = need_url(url)?;
            Ok(Command::Calls(o))
        }
        "soak" => {
            let mut o = SoakOpts {
                addr: SocketAddr::from(([127, 0, 0, 1], 1)),
                duration: Duration::from_secs(60),
                seed: None,
                clients: 2,
                deadline: Duration::from_secs(70),
                chaos_match: "chaos".into(),
                skip_garbage: Vec::new(),
                stop_file: None,
            };
            loop {
                match next_arg!() {
                    None => break,
                    Some(Long("duration-s")) => {
                        o.duration = Duration::from_secs(positive(value(&mut p, "--duration-s")?, "--duration-s")?)
                    }
                    Some(Long("seed")) => o.seed = Some(value(&mut p, "--seed")?),
                    Some(Long("clients")) => o.clients = positive(value(&mut p, "--clients")?, "--clients")? as usize,
                    Some(Long("deadline-s")) => {
                        o.deadline = Duration::from_secs(positive(value(&mut p, "--deadline-s")?, "--deadline-s")?)
                    }
                    Some(Long("chaos-match")) => o.chaos_match = value(&mut p, "--chaos-match")?,
                    Some(Long("stop-file")) => o.stop_file = Some(value::<String>(&mut p, "--stop-file")?.into()),
                    Some(Long("skip-garbage")) => {
                        for name in value::<String>(&mut p, "--skip-garbage")?.split(',').filter(|n| !n.is_empty()) {
                            if !crate::garbage::GARBAGE_CASES.contains(&name) {
                                let known = crate::garbage::GARBAGE_CASES.join(", ");
                                return Err(format!("--skip-garbage: unknown case {name:?} (known: {known})"));
                            }
                            o.skip_garbage.push(name.to_owned());
                        }
                    }
                    Some(arg) => return Err(unexpected(arg)),
                }
            }
            if o.clients > 64 {
                return Err("--clients: at most 64".into());
            }
            if o.chaos_match.is_empty() {
                return Err("--chaos-match: must not be empty".into());
            }
            o.addr = need_url(url)?;
            Ok(Command::Soak(o))
        }
        "streams" => {
            let mut o = StreamsOpts {
                addr: SocketAddr::from(([127, 0, 0, 1], 1)),
                transport: Transport::Sse,
                count: 100,
                threads: 8,
                hold: Duration::from_secs(60),
                stop_file: None,
                ready_file: None,
                timeout: Duration::from_secs(10),
            };
            loop {
                match next_arg!() {
                    None => break,
                    Some(Long("transport")) => o.transport = transport(&mut p)?,
                    Some(Long("count")) => o.count = positive(value(&mut p, "--count")?, "--count")? as usize,
                    Some(Long("threads")) => o.threads = positive(value(&mut p, "--threads")?, "--threads")? as usize,
                    Some(Long("hold-s")) => {
                        o.hold = Duration::from_secs(positive(value(&mut p, "--hold-s")?, "--hold-s")?)
                    }
                    Some(Long("stop-file")) => o.stop_file = Some(value::<String>(&mut p, "--stop-file")?.into()),
                    Some(Long("ready-file")) => o.ready_file = Some(value::<String>(&mut p, "--ready-file")?.into()),
                    Some(Long("timeout-ms")) => {
                        o.timeout = Duration::from_millis(positive(value(&mut p, "--timeout-ms")?, "--timeout-ms")?)
                    }
                    Some(arg) => return Err(unexpected(arg)),
                }
            }
            if o.count > 100_000 {
                return Err("--count: at most 100000".into());
            }
            if o.threads > 64 {
                return Err("--threads: at most 64".into());
            }
            if o.hold > Duration::from_secs(3600) {
                return Err("--hold-s: at most 3600".into());
            }
            o.addr = need_url(url)?;
            Ok(Command::Streams(o))
        }
        other => Err(format!("unknown subcommand {other:?}: expected burst, calls, soak or streams")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_strs(args: &[&str]) -> Result<Command, String> {
        parse(args.iter().map(OsString::from))
    }

    const URL: &str = "http://127.0.0.1:9000";

    #[test]
    fn urls() {
        assert_eq!(parse_url("http://127.0.0.1:9000").unwrap(), SocketAddr::from(([127, 0, 0, 1], 9000)));
        assert_eq!(parse_url("http://127.0.0.1:9000/mcp").unwrap().port(), 9000);
        assert_eq!(parse_url("http://localhost:80").unwrap(), SocketAddr::from(([127, 0, 0, 1], 80)));
        assert_eq!(parse_url("http://[::1]:9000").unwrap().port(), 9000);
        assert!(parse_url("https://127.0.0.1:9000").unwrap_err().contains("http://"));
        assert!(parse_url("http://10.0.0.1:9000").unwrap_err().contains("loopback"));
        assert!(parse_url("http://example.com:9000").unwrap_err().contains("not an IP"));
        assert!(parse_url("http://127.0.0.1").is_err());
        assert!(parse_url("http://127.0.0.1:x").unwrap_err().contains("bad port"));
        assert!(parse_url("http://127.0.0.1:0").is_err());
    }

    #[test]
    fn burst_defaults_and_flags() {
        let Command::Burst(o) = parse_strs(&["burst", "--url", URL]).unwrap() else { panic!() };
        assert_eq!((o.kind, o.connections, o.rounds, o.timeout), (BurstKind::Sse, 64, 20, Duration::from_secs(5)));
        let args = [
            "burst",
            "--kind",
            "initialize",
            "--connections",
            "8",
            "--rounds",
            "2",
            "--timeout-ms",
            "100",
            "--url",
            URL,
        ];
        let Command::Burst(o) = parse_strs(&args).unwrap() else { panic!() };
        assert_eq!(
            (o.kind, o.connections, o.rounds, o.timeout),
            (BurstKind::Initialize, 8, 2, Duration::from_millis(100))
        );
        assert!(parse_strs(&["burst", "--url", URL, "--kind", "x"]).unwrap_err().contains("--kind"));
        assert!(parse_strs(&["burst", "--url", URL, "--connections", "0"]).unwrap_err().contains("at least 1"));
        assert!(parse_strs(&["burst", "--url", URL, "--rounds", "-1"]).unwrap_err().contains("--rounds"));
        assert!(parse_strs(&["burst"]).unwrap_err().contains("--url"));
    }

    #[test]
    fn calls_flags() {
        let args = [
            "calls",
            "--url",
            URL,
            "--transport",
            "sse",
            "--sessions",
            "3",
            "--calls",
            "7",
            "--tool",
            "t",
            "--size",
            "100",
        ];
        let Command::Calls(o) = parse_strs(&args).unwrap() else { panic!() };
        assert_eq!((o.transport, o.sessions, o.calls, o.tool.as_str(), o.size), (Transport::Sse, 3, 7, "t", 100));
        assert!(parse_strs(&["calls", "--url", URL, "--transport", "ws"]).unwrap_err().contains("--transport"));
    }

    #[test]
    fn soak_flags() {
        let args = ["soak", "--url", URL, "--duration-s", "30", "--seed", "9", "--deadline-s", "15"];
        let Command::Soak(o) = parse_strs(&args).unwrap() else { panic!() };
        assert_eq!((o.duration, o.seed, o.deadline), (Duration::from_secs(30), Some(9), Duration::from_secs(15)));
        assert_eq!((o.clients, o.chaos_match.as_str()), (2, "chaos"));
        assert!(parse_strs(&["soak", "--url", URL, "--duration-s", "0"]).unwrap_err().contains("--duration-s"));
        let args = ["soak", "--url", URL, "--skip-garbage", "huge_content_length,http2_preface"];
        let Command::Soak(o) = parse_strs(&args).unwrap() else { panic!() };
        assert_eq!(o.skip_garbage, ["huge_content_length", "http2_preface"]);
        let Command::Soak(o) = parse_strs(&["soak", "--url", URL, "--stop-file", "/tmp/x"]).unwrap() else { panic!() };
        assert_eq!(o.stop_file.as_deref(), Some(std::path::Path::new("/tmp/x")));
        let e = parse_strs(&["soak", "--url", URL, "--skip-garbage", "nope"]).unwrap_err();
        assert!(e.contains("unknown case \"nope\"") && e.contains("not_http"), "{e}");
    }

    #[test]
    fn streams_flags() {
        let Command::Streams(o) = parse_strs(&["streams", "--url", URL]).unwrap() else { panic!() };
        assert_eq!((o.transport, o.count, o.threads, o.hold), (Transport::Sse, 100, 8, Duration::from_secs(60)));
        let args = [
            "streams",
            "--url",
            URL,
            "--transport",
            "streamable",
            "--count",
            "10000",
            "--threads",
            "4",
            "--hold-s",
            "30",
            "--stop-file",
            "/tmp/stop",
            "--ready-file",
            "/tmp/ready",
        ];
        let Command::Streams(o) = parse_strs(&args).unwrap() else { panic!() };
        assert_eq!((o.transport, o.count, o.threads), (Transport::Streamable, 10_000, 4));
        assert_eq!(o.stop_file.as_deref(), Some(std::path::Path::new("/tmp/stop")));
        assert_eq!(o.ready_file.as_deref(), Some(std::path::Path::new("/tmp/ready")));
        assert!(parse_strs(&["streams", "--url", URL, "--count", "0"]).unwrap_err().contains("at least 1"));
        assert!(parse_strs(&["streams", "--url", URL, "--hold-s", "9999"]).unwrap_err().contains("--hold-s"));
    }

    #[test]
    fn subcommands_help_and_unknown_flags() {
        assert_eq!(parse_strs(&["--help"]).unwrap(), Command::Help);
        assert_eq!(parse_strs(&["-V"]).unwrap(), Command::Version);
        assert_eq!(parse_strs(&["soak", "-h"]).unwrap(), Command::Help);
        assert!(parse_strs(&[]).unwrap_err().contains("subcommand"));
        assert!(parse_strs(&["bench"]).unwrap_err().contains("unknown subcommand"));
        assert!(parse_strs(&["soak", "--url", URL, "--nope"]).unwrap_err().contains("--nope"));
    }
}
