//! Command-line overrides: the values `mcp-sentinel server` flags set,
//! applied to the file's configuration at start and again after each
//! reload, so a flag keeps winning over the file. `cli` produces them; this
//! module knows nothing of the command line, only what it overrides. Runs
//! on the main thread (start) and the admin thread (reload).

use super::parse::{check_exposure, check_listen, check_server_exposure};
use super::{Config, ConfigError};

/// What the command line overrides in a loaded configuration; `None`
/// leaves the file's value.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Overrides {
    /// `--listen` (or the deprecated `--host`/`--port`): `server.listen`.
    pub listen: Option<String>,
    /// `--manage-listen`: `manage.listen`.
    pub manage_listen: Option<String>,
}

impl Config {
    /// Applies the command-line overrides (CLI flags win over the file).
    /// Values are validated like the file's; the error's field names the
    /// flag, e.g. `--listen`.
    pub fn apply_overrides(&mut self, overrides: &Overrides) -> Result<(), ConfigError> {
        let flag_err = |flag: &str, message: String| ConfigError { path: None, field: flag.to_string(), message };
        if let Some(listen) = &overrides.listen {
            self.server.listen = check_listen(listen).map_err(|m| flag_err("--listen", m))?;
            check_server_exposure(&self.server).map_err(|m| flag_err("--listen", m))?;
        }
        if let Some(listen) = &overrides.manage_listen {
            self.manage.listen = check_listen(listen).map_err(|m| flag_err("--manage-listen", m))?;
            check_exposure(&self.manage).map_err(|m| flag_err("--manage-listen", m))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides() {
        let mut c = Config::default_with_backends(vec![]);
        let args = Overrides { listen: Some("0.0.0.0:8000".into()), manage_listen: Some("127.0.0.1:0".into()) };
        // A remote data plane needs auth or the explicit opt-in.
        let e = c.clone().apply_overrides(&args).expect_err("remote without auth");
        assert!(e.message.contains("server.allow_unauthenticated_remote"), "{}", e.message);
        c.server.allow_unauthenticated_remote = true;
        c.apply_overrides(&args).unwrap();
        assert_eq!(c.server.listen, "0.0.0.0:8000");
        assert_eq!(c.manage.listen, "127.0.0.1:0");
        // Nothing given: nothing changes.
        let before = c.clone();
        c.apply_overrides(&Overrides::default()).unwrap();
        assert_eq!(c, before);
    }

    #[test]
    fn override_errors_name_the_flag() {
        let mut c = Config::default_with_backends(vec![]);
        let args = Overrides { listen: Some("nope".into()), ..Overrides::default() };
        assert_eq!(
            c.apply_overrides(&args).unwrap_err().to_string(),
            r#"field "--listen": expected an IP address and port such as "127.0.0.1:9000", found "nope""#
        );
        let args = Overrides { manage_listen: Some("10.0.0.1:9001".into()), ..Overrides::default() };
        let e = c.apply_overrides(&args).unwrap_err();
        assert_eq!(e.field, "--manage-listen");
        assert!(e.message.contains("not a loopback address"), "{e}");
    }
}
