//! Parsing a configuration file: the top level of both shapes here, the
//! sections in [`server`], [`manage`] and [`backend`], all of them reading
//! JSON through [`obj::Obj`], which names the dotted field of every
//! complaint. Runs on the main thread (start) and the admin thread
//! (reload); no I/O besides reading the file and the PEM files that
//! backends name in `ca_cert`.

mod backend;
mod manage;
mod obj;
mod server;
mod views;

use std::net::SocketAddr;
use std::path::Path;

use serde_json::Value;

use super::error::FieldError;
use super::{Config, ConfigError};
use backend::parse_backend;
use manage::parse_manage;
use obj::{describe, Obj};
use server::parse_server;

pub(super) use manage::check_exposure;
pub(super) use server::check_server_exposure;

/// Reads and parses a config file.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        path: Some(path.to_path_buf()),
        field: String::new(),
        message: format!("cannot read the file: {e}"),
    })?;
    parse_str(&text, Some(path))
}

/// Parses config text; `path` is only used in messages and `Config::path`.
/// `${VAR}` references are expanded from the process environment.
pub fn parse_str(text: &str, path: Option<&Path>) -> Result<Config, ConfigError> {
    parse_with_env(text, path, &|name| std::env::var(name).ok())
}

/// [`parse_str`] with the environment lookup passed in (for tests and for
/// callers that resolve variables elsewhere).
pub fn parse_with_env(
    text: &str,
    path: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let err =
        |bad: FieldError| ConfigError { path: path.map(Path::to_path_buf), field: bad.field, message: bad.message };
    let root: Value = serde_json::from_str(text).map_err(|e| {
        let hint = if looks_like_yaml(text) {
            " (this looks like YAML, as argus-mcp reads; mcp-sentinel reads JSON: \
             convert it, with the servers under \"mcpServers\")"
        } else {
            ""
        };
        err(FieldError::new("", format!("not valid JSON: {e}{hint}")))
    })?;
    let root = match root {
        Value::Object(map) => map,
        other => {
            return Err(err(FieldError::new(
                "",
                format!("expected a JSON object at the top level, found {}", describe(&other)),
            )))
        }
    };
    let file = path.map_or_else(|| "<config>".to_string(), |p| p.display().to_string());
    let mut config = Config::default_with_backends(Vec::new());
    config.path = path.map(Path::to_path_buf);

    // Other clients' files, where their meaning is clear: VS Code's
    // `servers` (with `inputs`) is `mcpServers`; argus-mcp's top-level
    // `backends` is a different format, named in a one-line error.
    let is_entry = |v: &Value| v.get("command").is_some() || v.get("url").is_some();
    if root.get("backends").is_some_and(|b| b.is_object() && !is_entry(b)) && !root.contains_key("mcpServers") {
        return Err(err(FieldError::new(
            "backends",
            "a top-level \"backends\" is argus-mcp's format; mcp-sentinel reads the servers from \"mcpServers\" \
             (each entry with \"command\"/\"args\" or \"url\"; see docs/migration.md)",
        )));
    }
    let vscode = root.contains_key("servers") && !root.contains_key("mcpServers");
    if vscode && root.contains_key("inputs") {
        log::warn!(
            "{file}: \"inputs\" (VS Code's prompted variables) is not supported; use ${{VAR}} from the environment"
        );
    }
    // The current shape is recognised by any of its keys; anything else is
    // the legacy flat `{NAME: BACKEND}` object.
    const TOP_KEYS: [&str; 4] = ["mcpServers", "server", "manage", "views"];
    const VSCODE_KEYS: [&str; 2] = ["servers", "inputs"];
    let current = vscode || TOP_KEYS.iter().any(|k| root.contains_key(*k));
    let (backends, backend_prefix) = if current {
        let top = Obj::new(&root, "");
        let known: Vec<&str> = TOP_KEYS.iter().chain(if vscode { &VSCODE_KEYS[..] } else { &[] }).copied().collect();
        top.warn_unknown(&known, &file);
        let servers_key = if vscode { "servers" } else { "mcpServers" };
        config.server = parse_server(top.obj("server").map_err(err)?, &file).map_err(err)?;
        config.manage = parse_manage(top.obj("manage").map_err(err)?, &file).map_err(err)?;
        let backends = match top.get(servers_key) {
            None => None,
            Some(Value::Object(m)) => Some(m),
            Some(other) => {
                return Err(err(FieldError::new(
                    servers_key,
                    format!("expected an object of backends, found {}", describe(other)),
                )))
            }
        };
        (backends, if vscode { "servers." } else { "mcpServers." })
    } else {
        (Some(&root), "")
    };
    if let Some(map) = backends {
        config.backends = map
            .iter()
            .map(|(name, v)| parse_backend(name, v, env, &file, &format!("{backend_prefix}{name}")))
            .collect();
    }
    if current {
        let top = Obj::new(&root, "");
        config.views = views::parse_views(&top, &config.backends, &file).map_err(err)?;
    }
    config.withhold_secret_env();
    Ok(config)
}

/// Whether text that is not JSON looks like YAML: a first meaningful line
/// such as `key:` or `- item`.
fn looks_like_yaml(text: &str) -> bool {
    let line = text.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with('#')).unwrap_or("");
    if line.starts_with('{') || line.starts_with('[') {
        return false;
    }
    line == "---"
        || line.starts_with("- ")
        || line.split_once(':').is_some_and(|(k, _)| !k.is_empty() && !k.contains(' '))
}

/// `ip:port` as std parses it (`[::1]:9000` for IPv6). Host names are not
/// accepted: what a name resolves to is not something to guess at bind time.
pub(super) fn check_listen(value: &str) -> Result<String, String> {
    match value.parse::<SocketAddr>() {
        Ok(_) => Ok(value.to_string()),
        Err(_) => Err(format!("expected an IP address and port such as \"127.0.0.1:9000\", found {value:?}")),
    }
}

#[cfg(test)]
mod tests;
