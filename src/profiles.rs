//! TUI profiles (CONTRACT §6): the servers `mcp-sentinel tui` can watch,
//! kept in `$XDG_CONFIG_HOME/mcp-sentinel/profiles.json` (mode 0600).
//! Runs on the main thread (`profile` subcommand, TUI start-up).
//!
//! Shape: `{"active": NAME, "profiles": [{"name", "url", "token_env" |
//! "token_file", "ca_cert"}]}`. A token is never stored here, only where to
//! find it. With no file (or an empty list), one implicit profile `local`
//! points at `http://127.0.0.1:9001` with the token file the server writes
//! when it generates its admin token.
//!
//! Paths come in through [`Paths`], so tests never touch the process
//! environment.
//!
//! The file decides where the TUI sends tokens, so it is read and written
//! through [`crate::secfile`]: a link, another user's file, or a file or
//! directory others can write is refused (exit 78); one others can read is
//! a warning on stderr (printed before the TUI takes the terminal). Saving
//! writes a randomly named temporary file (`O_EXCL`, `O_NOFOLLOW`, 0600)
//! and renames it over the old one.

use crate::client::{Target, TokenSource};
use crate::exit::{Fatal, Kind};
use crate::secfile;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};

/// Name of the implicit profile.
pub const LOCAL_NAME: &str = "local";
/// Default management address (CONTRACT §3 `manage.listen`).
pub const LOCAL_URL: &str = "http://127.0.0.1:9001";

/// One saved server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    pub name: String,
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert: Option<PathBuf>,
}

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileFile {
    #[serde(default)]
    pub active: Option<String>,
    #[serde(default)]
    pub profiles: Vec<Profile>,
}

/// Where profiles and the server's default token files live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// `…/mcp-sentinel/profiles.json`.
    pub profiles_file: PathBuf,
    /// `…/mcp-sentinel` under the XDG state directory.
    pub state_dir: PathBuf,
}

/// Why a profile operation failed; its kind ([`Fatal`]) decides `main`'s
/// exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileError {
    /// Neither `XDG_CONFIG_HOME` nor `HOME` is usable.
    NoHome(String),
    /// The profiles file exists but is not valid (exit 78, a configuration error).
    Corrupt { file: PathBuf, reason: String },
    /// The profiles file, or its directory, breaks the rules for files that
    /// steer secrets: a link, another user's, writable by others (exit 78).
    Unsafe { file: PathBuf, reason: String },
    /// Reading or writing the file failed (exit 1).
    Io { file: PathBuf, reason: String },
    /// A user mistake on the command line: unknown or duplicate name (exit 2).
    Usage(String),
}

impl ProfileError {
    /// The exit code `main` returns for this error.
    pub fn exit_code(&self) -> u8 {
        self.kind().code()
    }
}

impl Fatal for ProfileError {
    fn kind(&self) -> Kind {
        match self {
            ProfileError::NoHome(_) | ProfileError::Io { .. } => Kind::Failure,
            ProfileError::Corrupt { .. } | ProfileError::Unsafe { .. } => Kind::Config,
            ProfileError::Usage(_) => Kind::Usage,
        }
    }
}

impl fmt::Display for ProfileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProfileError::NoHome(m) | ProfileError::Usage(m) => write!(f, "{m}"),
            ProfileError::Corrupt { file, reason } => {
                write!(f, "{}: {reason} (fix or delete the file)", file.display())
            }
            ProfileError::Io { file, reason } | ProfileError::Unsafe { file, reason } => {
                write!(f, "{}: {reason}", file.display())
            }
        }
    }
}

impl std::error::Error for ProfileError {}

impl Paths {
    /// From `XDG_CONFIG_HOME` / `XDG_STATE_HOME`, else `HOME`.
    pub fn from_env() -> Result<Paths, ProfileError> {
        Paths::resolve(|k| std::env::var_os(k).map(PathBuf::from))
    }

    /// `get` reads an environment variable; relative XDG paths are ignored,
    /// as the XDG spec says.
    pub fn resolve(get: impl Fn(&str) -> Option<PathBuf>) -> Result<Paths, ProfileError> {
        let abs = |k: &str| get(k).filter(|p| p.is_absolute());
        let home = || {
            abs("HOME").ok_or_else(|| {
                ProfileError::NoHome("cannot locate profiles: set HOME or XDG_CONFIG_HOME to an absolute path".into())
            })
        };
        let config = match abs("XDG_CONFIG_HOME") {
            Some(p) => p,
            None => home()?.join(".config"),
        };
        let state = match crate::util::state_home_from(&get) {
            Some(p) => p,
            None => home()?.join(".local/state"),
        };
        Ok(Paths::under(&config, &state))
    }

    /// Paths below explicit config and state directories (tests).
    pub fn under(config_home: &Path, state_home: &Path) -> Paths {
        Paths {
            profiles_file: config_home.join("mcp-sentinel").join("profiles.json"),
            state_dir: state_home.join("mcp-sentinel"),
        }
    }

    /// The token file a server on `port` writes when it generates its token
    /// (CONTRACT §3: `$XDG_STATE_HOME/mcp-sentinel/manage-<port>.token`).
    pub fn default_token_file(&self, port: u16) -> PathBuf {
        self.state_dir.join(format!("manage-{port}.token"))
    }

    /// The profile used when there is no file. It names no token file:
    /// [`target`] derives the default one for its loopback URL when used,
    /// so a saved copy follows a later change of `XDG_STATE_HOME`.
    pub fn implicit_local(&self) -> Profile {
        Profile { name: LOCAL_NAME.into(), url: LOCAL_URL.into(), token_env: None, token_file: None, ca_cert: None }
    }
}

/// The profiles in effect: the file's, or the implicit `local` one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    pub file: ProfileFile,
    /// True when `file` is the implicit default, not read from disk.
    pub implicit: bool,
}

impl Loaded {
    /// The active profile: the file's `active`, else the first.
    pub fn active(&self) -> Option<&Profile> {
        let named = self.file.active.as_deref().and_then(|n| self.file.profiles.iter().find(|p| p.name == n));
        named.or(self.file.profiles.first())
    }

    pub fn get(&self, name: &str) -> Option<&Profile> {
        self.file.profiles.iter().find(|p| p.name == name)
    }
}

/// Reads the file; `Ok(None)` if it does not exist. Warnings (the file is
/// readable by others) go to stderr.
pub fn read(path: &Path) -> Result<Option<ProfileFile>, ProfileError> {
    let read = match secfile::read_own(path, secfile::PROFILES_LIMIT) {
        Ok(r) => r,
        Err(e) if e.kind == secfile::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(file_error(e)),
    };
    let file = parse(&read.text).map_err(|reason| ProfileError::Corrupt { file: path.into(), reason })?;
    // After the parse, so a file that is refused gets its one error line only.
    if let Some(mode) = read.readable_by_others {
        eprintln!(
            "mcp-sentinel: warning: {} can be read by other users (mode {mode:04o}); run chmod 600 on it",
            path.display()
        );
    }
    Ok(Some(file))
}

/// A [`secfile::Error`] as a profile error: a broken rule is a
/// configuration error, any other failure an I/O one.
fn file_error(e: secfile::Error) -> ProfileError {
    match e.kind {
        secfile::ErrorKind::Unsafe | secfile::ErrorKind::TooLarge => {
            ProfileError::Unsafe { file: e.path, reason: e.reason }
        }
        secfile::ErrorKind::NotFound | secfile::ErrorKind::Io => ProfileError::Io { file: e.path, reason: e.reason },
    }
}

/// Parses and validates the file's text; the error names the field.
pub fn parse(text: &str) -> Result<ProfileFile, String> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
    // Refuse a clear-text token before anything else: it must not sit here.
    if let Some(list) = value.get("profiles").and_then(|p| p.as_array()) {
        for (i, p) in list.iter().enumerate() {
            if p.get("token").is_some() {
                return Err(format!(
                    "field \"profiles[{i}].token\": tokens are not stored in this file; use token_env or token_file"
                ));
            }
        }
    }
    let file: ProfileFile = serde_json::from_value(value).map_err(|e| format!("wrong shape: {e}"))?;
    for (i, p) in file.profiles.iter().enumerate() {
        let field = |f: &str| format!("field \"profiles[{i}].{f}\"");
        check_name(&p.name).map_err(|m| format!("{}: {m}", field("name")))?;
        check_url(&p.url).map_err(|m| format!("{}: {m}", field("url")))?;
        if p.token_env.is_some() && p.token_file.is_some() {
            return Err(format!("profile {:?}: has token_env and token_file; keep one", p.name));
        }
        if let Some(v) = &p.token_env {
            check_var(v).map_err(|m| format!("{}: {m}", field("token_env")))?;
        }
        if file.profiles[..i].iter().any(|q| q.name == p.name) {
            return Err(format!("{}: duplicate profile name {:?}", field("name"), p.name));
        }
    }
    if let Some(a) = &file.active {
        if !file.profiles.iter().any(|p| &p.name == a) {
            return Err(format!("field \"active\": no profile named {a:?}"));
        }
    }
    Ok(file)
}

/// The profiles in effect under `paths`.
pub fn load(paths: &Paths) -> Result<Loaded, ProfileError> {
    match read(&paths.profiles_file)? {
        Some(file) if !file.profiles.is_empty() => Ok(Loaded { file, implicit: false }),
        _ => Ok(Loaded {
            file: ProfileFile { active: Some(LOCAL_NAME.into()), profiles: vec![paths.implicit_local()] },
            implicit: true,
        }),
    }
}

/// Writes the file atomically with mode 0600 ([`secfile::write_atomic`]):
/// a new, randomly named file in the same directory (`O_EXCL`,
/// `O_NOFOLLOW`), flushed, then renamed over the old one, so a reader never
/// sees half a file and the mode is never wider. A missing directory is
/// created 0700.
pub fn save(path: &Path, file: &ProfileFile) -> Result<(), ProfileError> {
    let mut text = serde_json::to_string_pretty(file)
        .map_err(|e| ProfileError::Io { file: path.into(), reason: format!("cannot encode: {e}") })?;
    text.push('\n');
    secfile::write_atomic(path, text.as_bytes()).map_err(file_error)
}

// ---- operations behind `mcp-sentinel profile ...`

/// Adds a profile. Starting from the implicit default keeps `local` in the
/// new file, so adding a profile never makes `local` disappear.
pub fn add(paths: &Paths, profile: Profile) -> Result<ProfileFile, ProfileError> {
    check_name(&profile.name).map_err(|m| ProfileError::Usage(format!("profile name {:?}: {m}", profile.name)))?;
    check_url(&profile.url).map_err(|m| ProfileError::Usage(format!("--url: {m}")))?;
    if profile.token_env.is_some() && profile.token_file.is_some() {
        return Err(ProfileError::Usage("--token-env cannot be used with --token-file; give one of them".into()));
    }
    let mut loaded = load(paths)?;
    if loaded.get(&profile.name).is_some() {
        return Err(ProfileError::Usage(format!(
            "a profile named {:?} already exists; remove it first or pick another name",
            profile.name
        )));
    }
    loaded.file.profiles.push(profile);
    if loaded.file.active.is_none() {
        loaded.file.active = loaded.file.profiles.first().map(|p| p.name.clone());
    }
    save(&paths.profiles_file, &loaded.file)?;
    Ok(loaded.file)
}

/// Removes a profile; removing the active one makes the first left active.
pub fn remove(paths: &Paths, name: &str) -> Result<ProfileFile, ProfileError> {
    edit_existing(paths, name, |file| {
        file.profiles.retain(|p| p.name != name);
        if file.active.as_deref() == Some(name) {
            file.active = file.profiles.first().map(|p| p.name.clone());
        }
    })
}

/// Makes a profile the active one.
pub fn use_profile(paths: &Paths, name: &str) -> Result<ProfileFile, ProfileError> {
    edit_existing(paths, name, |file| file.active = Some(name.to_string()))
}

/// Loads, checks that `name` exists, applies `change` and saves.
fn edit_existing(
    paths: &Paths,
    name: &str,
    change: impl FnOnce(&mut ProfileFile),
) -> Result<ProfileFile, ProfileError> {
    let mut loaded = load(paths)?;
    if loaded.get(name).is_none() {
        return Err(unknown(&loaded, name));
    }
    change(&mut loaded.file);
    save(&paths.profiles_file, &loaded.file)?;
    Ok(loaded.file)
}

fn unknown(loaded: &Loaded, name: &str) -> ProfileError {
    let names: Vec<&str> = loaded.file.profiles.iter().map(|p| p.name.as_str()).collect();
    ProfileError::Usage(format!("no profile named {name:?} (profiles: {})", names.join(", ")))
}

/// `profile list`: a table with the active profile marked `*`.
pub fn list_text(loaded: &Loaded, paths: &Paths) -> String {
    let active = loaded.active().map(|p| p.name.clone());
    let rows: Vec<[String; 3]> = loaded
        .file
        .profiles
        .iter()
        .map(|p| {
            let mark = if Some(&p.name) == active.as_ref() { "*" } else { " " };
            let mut token = match (&p.token_env, &p.token_file) {
                (Some(v), _) => format!("env {v}"),
                (None, Some(f)) => format!("file {}", f.display()),
                (None, None) => match target(p, paths).token {
                    TokenSource::File(f) => format!("file {} (default)", f.display()),
                    _ => "none".to_string(),
                },
            };
            if let Some(ca) = &p.ca_cert {
                token.push_str(&format!(", CA {}", ca.display()));
            }
            [format!("{mark} {}", p.name), p.url.clone(), token]
        })
        .collect();
    let w0 = rows.iter().map(|r| r[0].len()).max().unwrap_or(0).max("  NAME".len());
    let w1 = rows.iter().map(|r| r[1].len()).max().unwrap_or(0).max("URL".len());
    let mut out = format!("{:w0$}  {:w1$}  TOKEN\n", "  NAME", "URL");
    for r in &rows {
        out.push_str(&format!("{:w0$}  {:w1$}  {}\n", r[0], r[1], r[2]));
    }
    if loaded.implicit {
        out.push_str(&format!(
            "(no profiles saved in {}; 'local' is the built-in default)\n",
            paths.profiles_file.display()
        ));
    }
    out
}

/// The client target for a profile. With no token source and a loopback
/// URL, the default token file for the URL's port is used: that is where
/// a local server with no configured tokens writes its generated one.
pub fn target(p: &Profile, paths: &Paths) -> Target {
    let token = match (&p.token_env, &p.token_file) {
        (Some(v), _) => TokenSource::Env(v.clone()),
        (None, Some(f)) => TokenSource::File(f.clone()),
        (None, None) => default_token_for(&p.url, paths),
    };
    Target { name: p.name.clone(), url: p.url.clone(), token, ca_cert: p.ca_cert.clone() }
}

/// The default token file for a loopback URL, else no token.
pub fn default_token_for(url: &str, paths: &Paths) -> TokenSource {
    match loopback_port(url) {
        Some(port) => TokenSource::File(paths.default_token_file(port)),
        None => TokenSource::None,
    }
}

/// The port of an `http(s)://127.x.x.x|localhost|[::1][:port]` URL.
fn loopback_port(url: &str) -> Option<u16> {
    let lower = url.to_ascii_lowercase();
    let (rest, default_port) = match lower.strip_prefix("http://") {
        Some(r) => (r, 80),
        None => (lower.strip_prefix("https://")?, 443),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6.split_once(']')?;
        (h, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let loopback = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        return None;
    }
    match port {
        Some(p) => p.parse().ok(),
        None => Some(default_port),
    }
}

fn check_name(name: &str) -> Result<(), String> {
    let ok =
        !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok {
        Ok(())
    } else {
        Err("use 1 to 64 characters from A-Z, a-z, 0-9, '_', '.', '-'".into())
    }
}

fn check_url(url: &str) -> Result<(), String> {
    let lower = url.to_ascii_lowercase();
    match lower.strip_prefix("http://").or_else(|| lower.strip_prefix("https://")) {
        Some(r) if !r.is_empty() && !r.starts_with('/') && !r.contains(char::is_whitespace) => Ok(()),
        _ => Err(format!("expected an http:// or https:// URL such as {LOCAL_URL}, found {url:?}")),
    }
}

fn check_var(v: &str) -> Result<(), String> {
    let mut chars = v.chars();
    let ok = matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(format!("expected an environment variable name, found {v:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A fresh temporary XDG config/state pair, removed on drop.
    struct Tmp(PathBuf);

    impl Tmp {
        fn new(tag: &str) -> Tmp {
            let n = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
            let dir = std::env::temp_dir().join(format!("mcp-sentinel-prof-{tag}-{}-{n}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            Tmp(dir)
        }

        fn paths(&self) -> Paths {
            Paths::under(&self.0.join("config"), &self.0.join("state"))
        }
    }

    impl Drop for Tmp {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn prof(name: &str, url: &str) -> Profile {
        Profile { name: name.into(), url: url.into(), token_env: None, token_file: None, ca_cert: None }
    }

    #[test]
    fn paths_follow_xdg_then_home() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| PathBuf::from(v))
        };
        let p = Paths::resolve(env(&[("XDG_CONFIG_HOME", "/x/cfg"), ("XDG_STATE_HOME", "/x/st")])).unwrap();
        assert_eq!(p.profiles_file, PathBuf::from("/x/cfg/mcp-sentinel/profiles.json"));
        assert_eq!(p.default_token_file(9001), PathBuf::from("/x/st/mcp-sentinel/manage-9001.token"));
        let p = Paths::resolve(env(&[("HOME", "/home/me"), ("XDG_CONFIG_HOME", "relative")])).unwrap();
        assert_eq!(p.profiles_file, PathBuf::from("/home/me/.config/mcp-sentinel/profiles.json"));
        assert_eq!(p.state_dir, PathBuf::from("/home/me/.local/state/mcp-sentinel"));
        assert!(matches!(Paths::resolve(env(&[])), Err(ProfileError::NoHome(_))));
    }

    #[test]
    fn no_file_gives_implicit_local() {
        let t = Tmp::new("implicit");
        let paths = t.paths();
        let l = load(&paths).unwrap();
        assert!(l.implicit);
        let a = l.active().unwrap();
        assert_eq!((a.name.as_str(), a.url.as_str()), ("local", "http://127.0.0.1:9001"));
        let tgt = target(a, &paths);
        assert_eq!(tgt.token, TokenSource::File(t.0.join("state/mcp-sentinel/manage-9001.token")));
        assert!(list_text(&l, &paths).contains("built-in default"));
        assert!(!paths.profiles_file.exists(), "loading never writes");
    }

    #[test]
    fn add_writes_0600_atomically_and_keeps_local() {
        let t = Tmp::new("add");
        let paths = t.paths();
        let mut p = prof("prod", "https://gw.example.com:9001");
        p.token_env = Some("PROD_TOKEN".into());
        add(&paths, p).unwrap();
        let mode = std::fs::metadata(&paths.profiles_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let dir_mode = std::fs::metadata(paths.profiles_file.parent().unwrap()).unwrap().permissions().mode();
        assert_eq!(dir_mode & 0o777, 0o700);
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(paths.profiles_file.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["profiles.json"]);
        let l = load(&paths).unwrap();
        assert!(!l.implicit);
        assert_eq!(l.file.active.as_deref(), Some("local"));
        let names: Vec<_> = l.file.profiles.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["local", "prod"]);
        let text = std::fs::read_to_string(&paths.profiles_file).unwrap();
        assert!(text.contains("\"token_env\": \"PROD_TOKEN\""));
        assert!(!text.contains("ca_cert"), "absent fields are not written: {text}");
    }

    #[test]
    fn save_replaces_a_wide_mode_file() {
        let t = Tmp::new("mode");
        let paths = t.paths();
        std::fs::create_dir_all(paths.profiles_file.parent().unwrap()).unwrap();
        std::fs::write(&paths.profiles_file, r#"{"profiles": []}"#).unwrap();
        std::fs::set_permissions(&paths.profiles_file, std::fs::Permissions::from_mode(0o644)).unwrap();
        add(&paths, prof("dev", "http://127.0.0.1:9101")).unwrap();
        let mode = std::fs::metadata(&paths.profiles_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn save_never_follows_a_planted_temporary_name() {
        // The temporary name was `.profiles.json.<pid>.tmp`, opened without
        // O_EXCL: a link planted there had its target truncated and written.
        let t = Tmp::new("plant");
        let paths = t.paths();
        let dir = paths.profiles_file.parent().unwrap().to_path_buf();
        std::fs::create_dir_all(&dir).unwrap();
        let victim = t.0.join("victim");
        std::fs::write(&victim, "keep").unwrap();
        std::os::unix::fs::symlink(&victim, dir.join(format!(".profiles.json.{}.tmp", std::process::id()))).unwrap();
        add(&paths, prof("dev", "http://127.0.0.1:9101")).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        assert_eq!(load(&paths).unwrap().file.profiles.len(), 2);
    }

    #[test]
    fn unsafe_profiles_file_is_refused() {
        let t = Tmp::new("unsafe");
        let paths = t.paths();
        let dir = paths.profiles_file.parent().unwrap().to_path_buf();
        std::fs::create_dir_all(&dir).unwrap();
        // A link: where the TUI sends tokens would be someone else's choice.
        let elsewhere = t.0.join("elsewhere.json");
        std::fs::write(&elsewhere, r#"{"profiles": [{"name": "x", "url": "http://127.0.0.1:1"}]}"#).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &paths.profiles_file).unwrap();
        let e = load(&paths).unwrap_err();
        assert_eq!(e.exit_code(), 78);
        assert!(e.to_string().contains("is a symbolic link"), "{e}");
        assert!(add(&paths, prof("y", "http://h")).is_err(), "never replaced either");
        assert!(std::fs::symlink_metadata(&paths.profiles_file).unwrap().file_type().is_symlink());
        // Writable by others.
        std::fs::remove_file(&paths.profiles_file).unwrap();
        std::fs::write(&paths.profiles_file, r#"{"profiles": []}"#).unwrap();
        std::fs::set_permissions(&paths.profiles_file, std::fs::Permissions::from_mode(0o666)).unwrap();
        let e = load(&paths).unwrap_err();
        assert_eq!(e.exit_code(), 78);
        let msg = e.to_string();
        assert!(msg.starts_with(&paths.profiles_file.display().to_string()), "{msg}");
        assert!(msg.contains("can be written by other users (mode 0666)"), "{msg}");
        // In a directory others can write.
        std::fs::set_permissions(&paths.profiles_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = load(&paths).unwrap_err();
        assert!(e.to_string().contains("can be written by other users (mode 0777)"), "{e}");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(load(&paths).is_ok());
    }

    #[test]
    fn add_refuses_duplicates_and_bad_input() {
        let t = Tmp::new("dup");
        let paths = t.paths();
        add(&paths, prof("dev", "http://127.0.0.1:9101")).unwrap();
        let e = add(&paths, prof("dev", "http://127.0.0.1:9102")).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("already exists"), "{e}");
        let e = add(&paths, prof("local", "http://127.0.0.1:9102")).unwrap_err();
        assert!(e.to_string().contains("\"local\" already exists"), "{e}");
        assert!(add(&paths, prof("a b", "http://h")).is_err());
        assert!(add(&paths, prof("ok", "ftp://h")).is_err());
    }

    #[test]
    fn use_and_remove() {
        let t = Tmp::new("use");
        let paths = t.paths();
        add(&paths, prof("a", "http://127.0.0.1:9101")).unwrap();
        add(&paths, prof("b", "http://127.0.0.1:9102")).unwrap();
        use_profile(&paths, "b").unwrap();
        assert_eq!(load(&paths).unwrap().active().unwrap().name, "b");
        let listing = list_text(&load(&paths).unwrap(), &paths);
        assert!(listing.lines().any(|l| l.starts_with("* b ")), "{listing}");
        assert!(listing.lines().any(|l| l.starts_with("  a ")), "{listing}");
        remove(&paths, "b").unwrap();
        assert_eq!(load(&paths).unwrap().active().unwrap().name, "local");
        let e = use_profile(&paths, "zzz").unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert_eq!(e.to_string(), "no profile named \"zzz\" (profiles: local, a)");
        assert_eq!(remove(&paths, "zzz").unwrap_err().exit_code(), 2);
        // Removing every profile falls back to the implicit one.
        remove(&paths, "a").unwrap();
        remove(&paths, "local").unwrap();
        assert!(load(&paths).unwrap().implicit);
    }

    #[test]
    fn corrupt_file_names_the_file() {
        let t = Tmp::new("corrupt");
        let paths = t.paths();
        std::fs::create_dir_all(paths.profiles_file.parent().unwrap()).unwrap();
        let cases = [
            ("{not json", "not valid JSON"),
            (r#"{"profiles": {}}"#, "wrong shape"),
            (r#"{"profiles": [{"name": "a"}]}"#, "wrong shape"),
            (r#"{"profiles": [{"name": "a b", "url": "http://h"}]}"#, "field \"profiles[0].name\""),
            (r#"{"profiles": [{"name": "a", "url": "h:1"}]}"#, "field \"profiles[0].url\""),
            (r#"{"profiles": [{"name": "a", "url": "http://h", "token": "x"}]}"#, "tokens are not stored"),
            (r#"{"active": "b", "profiles": [{"name": "a", "url": "http://h"}]}"#, "field \"active\""),
            (
                r#"{"profiles": [{"name": "a", "url": "http://h"}, {"name": "a", "url": "http://i"}]}"#,
                "duplicate profile name",
            ),
            (r#"{"profiles": [{"name": "a", "url": "http://h", "token_env": "T", "token_file": "/f"}]}"#, "keep one"),
        ];
        for (text, want) in cases {
            std::fs::write(&paths.profiles_file, text).unwrap();
            let e = load(&paths).unwrap_err();
            assert_eq!(e.exit_code(), 78);
            let msg = e.to_string();
            assert!(msg.starts_with(&paths.profiles_file.display().to_string()), "{msg}");
            assert!(msg.contains(want), "{text} -> {msg}");
            assert!(!msg.contains('\n'));
        }
        // A corrupt file is never overwritten by an operation.
        assert!(add(&paths, prof("x", "http://h")).is_err());
        assert!(std::fs::read_to_string(&paths.profiles_file).unwrap().contains("token_file"));
    }

    #[test]
    fn targets_and_default_tokens() {
        let paths = Paths::under(Path::new("/c"), Path::new("/s"));
        let dflt = |u: &str| default_token_for(u, &paths);
        assert_eq!(dflt("http://127.0.0.1:9101"), TokenSource::File("/s/mcp-sentinel/manage-9101.token".into()));
        assert_eq!(
            dflt("http://localhost:9102/manage/v1"),
            TokenSource::File("/s/mcp-sentinel/manage-9102.token".into())
        );
        assert_eq!(dflt("http://[::1]:9103"), TokenSource::File("/s/mcp-sentinel/manage-9103.token".into()));
        assert_eq!(dflt("http://127.0.0.1"), TokenSource::File("/s/mcp-sentinel/manage-80.token".into()));
        assert_eq!(dflt("https://gw.example.com:9001"), TokenSource::None);
        assert_eq!(dflt("http://10.0.0.1:9001"), TokenSource::None);
        let mut p = prof("p", "https://gw:9001");
        p.token_env = Some("T".into());
        p.ca_cert = Some("/ca.pem".into());
        let t = target(&p, &paths);
        assert_eq!(t.token, TokenSource::Env("T".into()));
        assert_eq!(t.ca_cert, Some(PathBuf::from("/ca.pem")));
    }
}
