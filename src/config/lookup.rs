//! Which configuration file is read: `--config`, then
//! `$MCP_SENTINEL_CONFIG`, then `./mcp-sentinel.json`, then `./config.json`.
//! Runs on the main thread at start; touches the file system only to see
//! whether the candidates exist.

use std::path::{Path, PathBuf};

use super::ConfigError;

/// Environment variable naming the config file (second in the lookup chain).
pub const CONFIG_ENV: &str = "MCP_SENTINEL_CONFIG";
/// File names tried in the working directory, in order; `config.json` is
/// the original project's name.
pub const CONFIG_FILE_NAMES: [&str; 2] = ["mcp-sentinel.json", "config.json"];

/// Finds the config file: `--config` (`cli`), else `$MCP_SENTINEL_CONFIG`,
/// else `./mcp-sentinel.json`, else `./config.json`. A path given explicitly
/// (flag or variable) must exist; when nothing is found the error lists what
/// was tried.
pub fn locate(cli: Option<&Path>) -> Result<PathBuf, ConfigError> {
    let env = std::env::var_os(CONFIG_ENV);
    locate_in(cli, env.as_deref().map(Path::new), Path::new("."))
}

/// [`locate`] with the variable's value and the working directory passed
/// in, so tests need not touch the process environment.
fn locate_in(cli: Option<&Path>, env: Option<&Path>, base: &Path) -> Result<PathBuf, ConfigError> {
    let explicit = |p: &Path, by: &str| {
        if p.exists() {
            Ok(p.to_path_buf())
        } else {
            Err(ConfigError {
                path: Some(p.to_path_buf()),
                field: String::new(),
                message: format!("no such file (given by {by})"),
            })
        }
    };
    if let Some(p) = cli {
        return explicit(p, "--config");
    }
    // An empty variable counts as unset, as shells make that easy by mistake.
    if let Some(p) = env.filter(|p| !p.as_os_str().is_empty()) {
        return explicit(p, &format!("${CONFIG_ENV}"));
    }
    let candidates: Vec<PathBuf> = CONFIG_FILE_NAMES.iter().map(|n| base.join(n)).collect();
    if let Some(found) = candidates.iter().find(|p| p.is_file()) {
        return Ok(found.clone());
    }
    let tried: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
    Err(ConfigError {
        path: None,
        field: String::new(),
        message: format!(
            "no configuration file found (tried {}); pass --config PATH or set ${CONFIG_ENV}",
            tried.join(", ")
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_order() {
        let dir = std::env::temp_dir().join(format!("mcp-sentinel-locate-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let new = dir.join("mcp-sentinel.json");
        let old = dir.join("config.json");
        let other = dir.join("other.json");
        for p in [&new, &old, &other] {
            std::fs::write(p, "{}").unwrap();
        }
        // --config wins over everything.
        assert_eq!(locate_in(Some(&other), Some(&new), &dir), Ok(other.clone()));
        // Then the variable.
        assert_eq!(locate_in(None, Some(&other), &dir), Ok(other.clone()));
        // An empty variable counts as unset.
        assert_eq!(locate_in(None, Some(Path::new("")), &dir), Ok(new.clone()));
        // Then ./mcp-sentinel.json, then ./config.json.
        assert_eq!(locate_in(None, None, &dir), Ok(new.clone()));
        std::fs::remove_file(&new).unwrap();
        assert_eq!(locate_in(None, None, &dir), Ok(old.clone()));
        std::fs::remove_file(&old).unwrap();
        let e = locate_in(None, None, &dir).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "no configuration file found (tried {}, {}); pass --config PATH or set $MCP_SENTINEL_CONFIG",
                new.display(),
                old.display()
            )
        );
        // An explicit path must exist.
        let missing = dir.join("missing.json");
        assert_eq!(
            locate_in(Some(&missing), None, &dir).unwrap_err().to_string(),
            format!("{}: no such file (given by --config)", missing.display())
        );
        assert_eq!(
            locate_in(None, Some(&missing), &dir).unwrap_err().to_string(),
            format!("{}: no such file (given by $MCP_SENTINEL_CONFIG)", missing.display())
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
