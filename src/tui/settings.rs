//! What the TUI remembers between runs: its theme and key map, in
//! `$XDG_CONFIG_HOME/mcp-sentinel/tui.json` (beside `profiles.json`):
//! `{"theme": "nord", "keys": "classic"}`. A missing, unreadable or
//! corrupt file, or an unknown value, means the default: it never stops
//! the TUI. Written like `profiles.json`: atomically, mode 0600.

use super::app::KeyMap;
use super::theme::Theme;
use crate::profiles::Paths;
use std::path::{Path, PathBuf};

/// Largest `tui.json` read; it holds two short strings.
const LIMIT: u64 = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Settings {
    pub theme: Theme,
    pub keys: KeyMap,
}

#[derive(serde::Serialize, serde::Deserialize, Default)]
struct File {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    theme: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    keys: Option<String>,
}

/// `tui.json` beside the profiles file.
pub fn path(paths: &Paths) -> PathBuf {
    paths.profiles_file.with_file_name("tui.json")
}

/// The settings in `path`; the defaults for whatever is missing or wrong.
pub fn load(path: &Path) -> Settings {
    let file: File =
        crate::secfile::read_own(path, LIMIT).ok().and_then(|c| serde_json::from_str(&c.text).ok()).unwrap_or_default();
    Settings {
        theme: file.theme.as_deref().and_then(Theme::named).unwrap_or_default(),
        keys: file.keys.as_deref().and_then(KeyMap::from_name).unwrap_or_default(),
    }
}

/// Writes `s` to `path` (0600, atomically; the directory 0700).
pub fn save(path: &Path, s: &Settings) -> Result<(), String> {
    let file = File { theme: Some(s.theme.name.to_string()), keys: Some(s.keys.name().to_string()) };
    let mut text = serde_json::to_string_pretty(&file).map_err(|e| e.to_string())?;
    text.push('\n');
    crate::secfile::write_atomic(path, text.as_bytes()).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn tmp(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("mcp-sentinel-tuisettings-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn round_trip_and_mode() {
        let dir = tmp("rt");
        let p = dir.join("mcp-sentinel").join("tui.json");
        assert_eq!(load(&p), Settings::default(), "missing file: defaults");
        let s = Settings { theme: Theme::high_contrast(), keys: KeyMap::Classic };
        save(&p, &s).unwrap();
        assert_eq!(load(&p), s);
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.contains("\"theme\": \"high-contrast\"") && text.contains("\"keys\": \"classic\""), "{text}");
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn corrupt_or_unknown_is_the_default() {
        let dir = tmp("bad");
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("tui.json");
        for text in ["{", "", "[1,2]", "{\"theme\": 7}", "\u{0}\u{1}binary"] {
            std::fs::write(&p, text).unwrap();
            assert_eq!(load(&p), Settings::default(), "{text:?}");
        }
        std::fs::write(&p, r#"{"theme": "neon", "keys": "classic", "extra": true}"#).unwrap();
        assert_eq!(load(&p), Settings { theme: Theme::default(), keys: KeyMap::Classic }, "each value on its own");
        // A corrupt file is replaced by the next save.
        std::fs::write(&p, "{").unwrap();
        save(&p, &Settings { theme: Theme::nord(), keys: KeyMap::Default }).unwrap();
        assert_eq!(load(&p).theme.name, "nord");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn beside_the_profiles() {
        let paths = Paths::under(Path::new("/c"), Path::new("/s"));
        assert_eq!(path(&paths), PathBuf::from("/c/mcp-sentinel/tui.json"));
    }
}
