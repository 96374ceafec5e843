//! The texts of `--help` (one per subcommand and the top level) and
//! `--version`.

/// `mcp-sentinel VERSION`, for `--version`.
pub fn version_text() -> String {
    format!("mcp-sentinel {}", env!("CARGO_PKG_VERSION"))
}

/// Help for `topic` ("server", "tui", "profile", "check", "stdio"), or the top-level help.
pub fn help_text(topic: Option<&str>) -> String {
    let body = match topic {
        Some("server") => SERVER_HELP,
        Some("tui") => TUI_HELP,
        Some("profile") => PROFILE_HELP,
        Some("check") => CHECK_HELP,
        Some("stdio") => STDIO_HELP,
        _ => TOP_HELP,
    };
    format!("{}\n{body}", version_text())
}

const TOP_HELP: &str = "\
An MCP gateway: many backend MCP servers behind one, with a management API.

USAGE:
    mcp-sentinel server  [--config PATH] [--listen ADDR] [--manage-listen ADDR]
                         [--manage-token-file PATH] [--log-level LEVEL]
                         [--log-format text|json]
    mcp-sentinel check   [--config PATH]
    mcp-sentinel tui     [--profile NAME | --url URL [--token-env VAR | --token-file PATH]]
                         [--interval SECS] [--keys default|classic]
    mcp-sentinel profile list | add NAME --url URL [--token-env VAR | --token-file PATH]
                         [--ca-cert PEM] | remove NAME | use NAME
    mcp-sentinel stdio   --url URL [--token-env VAR | --token-file PATH] [--view NAME]
    mcp-sentinel --help | --version

COMMANDS:
    server     Run the gateway: the MCP listener and the /manage/v1 API.
    tui        Watch and operate a running server (never stops it).
    profile    List, add, remove or select the servers the TUI talks to.
    check      Validate a config file and show what it resolves to.
    stdio      Bridge a stdio MCP client (Claude Desktop) to a gateway's /mcp.

Run 'mcp-sentinel COMMAND --help' for the options of a command.

With no arguments, mcp-sentinel runs the server with a TUI attached, as the
original project did; quitting that TUI stops the server.

DEPRECATED (still works, prints a warning):
    mcp-sentinel --no-tui [--host H] [--port P] [--manage-port P]
                 [--log-level L] [--config PATH]
        Same as 'mcp-sentinel server --listen H:P [--manage-listen 127.0.0.1:P]'.
    mcp-sentinel [--host H] [--port P] [--manage-port P]
        Runs the server and attaches the TUI; quitting the TUI stops the server.

EXIT CODES: 0 clean shutdown, 2 usage error, 78 configuration error.
";

const SERVER_HELP: &str = "\
Run the gateway: the MCP listener (data plane) and the /manage/v1 API.

USAGE:
    mcp-sentinel server [--config PATH] [--listen ADDR] [--manage-listen ADDR]
                        [--manage-token-file PATH] [--log-level LEVEL]
                        [--log-format text|json]

OPTIONS:
    --config PATH              Config file. Default: $MCP_SENTINEL_CONFIG, else
                               ./mcp-sentinel.json, else ./config.json.
    --listen ADDR              MCP listener, IP:PORT (overrides server.listen;
                               default 127.0.0.1:9000).
    --manage-listen ADDR       Management API, IP:PORT (overrides manage.listen;
                               default 127.0.0.1:9001).
    --manage-token-file PATH   Where the generated admin token is written when
                               the config has no manage.tokens. Default:
                               $XDG_STATE_HOME/mcp-sentinel/manage-<port>.token
    --log-level LEVEL          error, warn, info, debug or trace (else RUST_LOG);
                               warning and critical are accepted too.
    --log-format FORMAT        text (default) or json: one JSON object per line
                               with time, level, target and message.
    -h, --help                 Show this help.
";

const CHECK_HELP: &str = "\
Validate a config file and print what it resolves to: the listeners, the
management tokens (by name only) and every backend with its transport and
endpoint (secrets redacted). Exit 0 when everything is valid, 78 otherwise.

USAGE:
    mcp-sentinel check [--config PATH]

OPTIONS:
    --config PATH    Config file. Default: $MCP_SENTINEL_CONFIG, else
                     ./mcp-sentinel.json, else ./config.json.
    -h, --help       Show this help.
";

const TUI_HELP: &str = "\
Watch and operate a running server through its /manage/v1 API. Quitting the
TUI never stops a server it did not start.

USAGE:
    mcp-sentinel tui [--profile NAME | --url URL [--token-env VAR | --token-file PATH]]
                     [--interval SECS] [--keys default|classic]

OPTIONS:
    --profile NAME       Use this saved profile instead of the active one.
    --url URL            Connect to this management URL (no profile).
    --token-env VAR      With --url: read the bearer token from $VAR.
    --token-file PATH    With --url: read the bearer token from PATH.
    --interval SECS      Poll interval in seconds (default 1; fractions allowed).
    --keys MAP           default, or classic: the original MCP Sentinel's keys
                         (t r p = tools, resources, prompts; R reload, P profiles).
                         Without it, the key map last chosen in the TUI
                         ($XDG_CONFIG_HOME/mcp-sentinel/tui.json).
    -h, --help           Show this help.
";

const PROFILE_HELP: &str = "\
Manage the TUI's profiles ($XDG_CONFIG_HOME/mcp-sentinel/profiles.json).

USAGE:
    mcp-sentinel profile list
    mcp-sentinel profile add NAME --url URL [--token-env VAR | --token-file PATH]
                             [--ca-cert PEM]
    mcp-sentinel profile remove NAME
    mcp-sentinel profile use NAME

OPTIONS (add):
    --url URL            Management URL, e.g. http://127.0.0.1:9001
    --token-env VAR      Read the bearer token from $VAR.
    --token-file PATH    Read the bearer token from PATH.
    --ca-cert PEM        Trust this CA certificate (for a TLS management API).
    -h, --help           Show this help.
";

const STDIO_HELP: &str = "\
Bridge an MCP client that can only launch stdio servers (Claude Desktop) to a
gateway: MCP on stdin/stdout, forwarded to the gateway's Streamable HTTP
endpoint. A gateway restart is invisible to the client (the session is
initialized again). Errors go to stderr; stdout carries the protocol only.

USAGE:
    mcp-sentinel stdio --url URL [--token-env VAR | --token-file PATH] [--view NAME]
                       [--log-level LEVEL]

OPTIONS:
    --url URL            The gateway's MCP endpoint, e.g. http://127.0.0.1:9000/mcp
    --token-env VAR      Send 'Authorization: Bearer' with the token in $VAR.
    --token-file PATH    Send 'Authorization: Bearer' with the token in PATH.
    --view NAME          Use the view NAME: /NAME is appended to the URL's path.
    --log-level LEVEL    error, warn, info, debug or trace (default warn; else
                         RUST_LOG). The log goes to stderr.
    -h, --help           Show this help.

EXIT CODES: 0 when stdin closes, 2 usage error, 78 unreadable token.
";
