//! Helpers shared by the unit tests of `config`: a fixed environment for
//! `${VAR}`, and parsing a file or a single backend from JSON text.

use std::collections::BTreeMap;
use std::path::Path;

use super::{parse_with_env, BackendConfig, Command, Config, ConfigError};

pub(super) fn env(name: &str) -> Option<String> {
    match name {
        "HOME" => Some("/home/me".into()),
        "TOKEN" => Some("s3cret".into()),
        "EMPTY" => Some(String::new()),
        _ => None,
    }
}

pub(super) fn parse(text: &str) -> Result<Config, ConfigError> {
    parse_with_env(text, Some(Path::new("c.json")), &env)
}

pub(super) fn parse_ok(text: &str) -> Config {
    parse(text).unwrap()
}

pub(super) fn err_line(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

/// The transport error of the only backend in `{"mcpServers":{"b": BACKEND}}`.
pub(super) fn backend_err(backend: &str) -> String {
    let c = parse_ok(&format!(r#"{{"mcpServers": {{"b": {backend}}}}}"#));
    c.backends[0].transport.clone().unwrap_err()
}

pub(super) fn backend(backend: &str) -> BackendConfig {
    let c = parse_ok(&format!(r#"{{"mcpServers": {{"b": {backend}}}}}"#));
    c.backends.into_iter().next().unwrap()
}

pub(super) fn stdio(cmd: &str, args: &[&str]) -> Command {
    Command {
        command: cmd.into(),
        args: args.iter().map(|s| s.to_string()).collect(),
        env: BTreeMap::new(),
        cwd: None,
        withheld_env: Vec::new(),
    }
}
