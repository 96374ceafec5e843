//! Files that hold secrets, or that decide where a secret goes: the rules
//! for opening, creating and reading them, written once. Runs on whichever
//! thread calls it (the main thread at start-up, the TUI's poller for its
//! token file); every call is a few blocking syscalls.
//!
//! Two families of files (see `docs/security.md`, "Files that hold secrets"):
//!
//! - **The gateway's own files** (the generated admin token, `profiles.json`,
//!   the audit log, the combined-mode log): never a symbolic link at the
//!   last component (`O_NOFOLLOW`), created with `O_EXCL` (or `O_APPEND`
//!   for logs) and mode 0600 in directories created 0700, owned by this
//!   user, never writable by others.
//! - **Files the operator provides and the gateway only reads**
//!   (`manage.tokens[].token_file`, the TLS key, the TUI's token file):
//!   symbolic links are followed, because certbot and Kubernetes secret
//!   volumes are built from them, but every link must belong to this user
//!   or root and sit in a checked directory, and the file reached must be a
//!   regular file owned by this user or root and not writable by others.
//!   Readable by others is a loud warning, not a refusal: a container's
//!   mounted secret is often 0644, with no other user to read it.
//!
//! For both, every directory from `/` down to the file is checked: owned by
//! this user or root, and not writable by others unless its sticky bit is
//! set (as on `/tmp`, where others can add entries but not rename or
//! remove ours). The file's own directory is held to more: a sticky
//! world-writable directory passes only when it is ours, so a file placed
//! directly in `/tmp` is refused (others could plant its name first).
//! Checks on the file itself are made on the open descriptor (`fstat`), so
//! the file checked is the file read.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fmt;
use std::fs::{File, Metadata};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

/// Largest token file read (a token is 64 characters; anything near this
/// size is not a token).
pub const TOKEN_LIMIT: u64 = 64 * 1024;
/// Largest `profiles.json` read.
pub const PROFILES_LIMIT: u64 = 1024 * 1024;

/// Symbolic links followed in one path at most (Linux's own limit).
const MAX_LINKS: usize = 40;
/// Group or other may write.
const WRITABLE_BY_OTHERS: u32 = 0o022;
/// Group or other may read.
const READABLE_BY_OTHERS: u32 = 0o044;
const STICKY: u32 = 0o1000;

/// What kind of failure: callers branch on this, never on the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The file (or a directory on its way) does not exist.
    NotFound,
    /// Exists, but breaks a rule: symbolic link, owner, mode, directory, type.
    Unsafe,
    /// Larger than the limit for its kind.
    TooLarge,
    /// Any other I/O failure.
    Io,
}

/// One refusal: the file as the caller named it, and a reason that says
/// what to fix. Displays as one line, `PATH: REASON`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    pub path: PathBuf,
    pub reason: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.reason)
    }
}

impl std::error::Error for Error {}

fn error(kind: ErrorKind, path: &Path, reason: impl Into<String>) -> Error {
    Error { kind, path: path.to_path_buf(), reason: reason.into() }
}

fn io_error(path: &Path, what: &str, e: &std::io::Error) -> Error {
    let kind = match e.kind() {
        std::io::ErrorKind::NotFound => ErrorKind::NotFound,
        _ => ErrorKind::Io,
    };
    let reason = match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_owned(),
        std::io::ErrorKind::PermissionDenied => format!("cannot {what}: permission denied"),
        _ => format!("cannot {what}: {e}"),
    };
    error(kind, path, reason)
}

/// The effective user id of this process.
#[allow(unsafe_code)]
pub fn euid() -> u32 {
    // SAFETY: geteuid takes no arguments, cannot fail and touches no memory of ours.
    unsafe { libc::geteuid() }
}

/// Text read from a checked file. `Debug` never shows the text: it may be
/// a token.
pub struct Contents {
    pub text: String,
    /// The file's mode when others may read it: the caller warns, in its
    /// own words (what a reader could do with it).
    pub readable_by_others: Option<u32>,
}

impl fmt::Debug for Contents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Contents")
            .field("text", &format_args!("({} bytes)", self.text.len()))
            .field("readable_by_others", &self.readable_by_others)
            .finish()
    }
}

/// Which family a file belongs to (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    /// The gateway's own file: no link at the end, owned by this user.
    Own,
    /// Provided by the operator, only read: links followed, root may own it.
    Operator,
}

// ---- directories

/// Checks one directory met on the way to a file. `parent`: it is the
/// file's own directory.
fn check_dir(file: &Path, dir: &Path, md: &Metadata, me: u32, parent: bool) -> Result<(), Error> {
    match dir_problem(dir, md.uid(), md.mode(), me, parent) {
        None => Ok(()),
        Some(reason) => Err(error(ErrorKind::Unsafe, file, reason)),
    }
}

/// The rule for directories, apart from the filesystem: what is wrong with
/// a directory of owner `uid` and `mode`, if anything.
fn dir_problem(dir: &Path, uid: u32, mode: u32, me: u32, parent: bool) -> Option<String> {
    if mode & WRITABLE_BY_OTHERS != 0 {
        let sticky = mode & STICKY != 0;
        // Sticky: others may add entries but not rename or remove ours, so
        // it is a safe way through; as the file's own directory only when
        // it is ours (others could plant the file's name first).
        if !(sticky && (!parent || uid == me)) {
            let fix = if sticky {
                "keep the file in a directory of its own (mode 0700) instead".to_owned()
            } else {
                format!("run chmod go-w {} or use another directory", dir.display())
            };
            return Some(format!(
                "directory {} can be written by other users (mode {:04o}), who could plant or replace the file; {fix}",
                dir.display(),
                mode & 0o7777
            ));
        }
    }
    if uid != me && uid != 0 {
        return Some(format!(
            "directory {} belongs to uid {uid}, neither this user (uid {me}) nor root, who could replace the file; \
             move the file to a directory of this user",
            dir.display()
        ));
    }
    None
}

/// Walks `file` from `/`: checks every directory on the way and follows
/// symbolic links (each must belong to this user or root; it sits in a
/// directory already checked). With `follow_last`, a link at the last
/// component is followed too. Returns the real directory (no links left)
/// and the last component's name; that directory passed the stricter
/// check for a file's own directory.
fn resolve(file: &Path, me: u32, follow_last: bool) -> Result<(PathBuf, OsString), Error> {
    let abs = if file.is_absolute() {
        file.to_path_buf()
    } else {
        std::env::current_dir().map_err(|e| io_error(file, "read the current directory", &e))?.join(file)
    };
    let mut pending: VecDeque<OsString> = VecDeque::new();
    push_components(&mut pending, &abs, false);
    let mut real = PathBuf::from("/");
    let md = std::fs::metadata(&real).map_err(|e| io_error(file, "inspect /", &e))?;
    check_dir(file, &real, &md, me, false)?;
    let mut links = 0;
    while let Some(name) = pending.pop_front() {
        let last = pending.is_empty();
        if name == ".." {
            real.pop();
            if last {
                break;
            }
            continue;
        }
        let next = real.join(&name);
        let md = match std::fs::symlink_metadata(&next) {
            Ok(md) => Some(md),
            // A missing last component is for the caller to judge (create it or not).
            Err(e) if last && e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_error(file, &format!("inspect {}", next.display()), &e)),
        };
        if let Some(md) = md.as_ref().filter(|m| m.file_type().is_symlink() && (!last || follow_last)) {
            links += 1;
            if links > MAX_LINKS {
                return Err(error(ErrorKind::Unsafe, file, "too many levels of symbolic links"));
            }
            if md.uid() != me && md.uid() != 0 {
                return Err(error(
                    ErrorKind::Unsafe,
                    file,
                    format!(
                        "symbolic link {} belongs to uid {}, neither this user (uid {me}) nor root; remove it",
                        next.display(),
                        md.uid()
                    ),
                ));
            }
            let target = std::fs::read_link(&next).map_err(|e| io_error(file, "read a symbolic link", &e))?;
            if target.is_absolute() {
                real = PathBuf::from("/");
            }
            push_components(&mut pending, &target, true);
            continue;
        }
        match md {
            Some(md) if !last => {
                if !md.is_dir() {
                    return Err(error(ErrorKind::Unsafe, file, format!("{} is not a directory", next.display())));
                }
                check_dir(file, &next, &md, me, false)?;
                real = next;
            }
            Some(md) if md.is_dir() => break,
            _ => {
                let parent = std::fs::metadata(&real).map_err(|e| io_error(file, "inspect its directory", &e))?;
                check_dir(file, &real, &parent, me, true)?;
                return Ok((real, name));
            }
        }
    }
    Err(error(ErrorKind::Unsafe, file, "names a directory, not a file"))
}

/// Adds `p`'s components to `pending` (in front of the rest when `front`).
fn push_components(pending: &mut VecDeque<OsString>, p: &Path, front: bool) {
    let names: Vec<OsString> = p
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect();
    if front {
        for n in names.into_iter().rev() {
            pending.push_front(n);
        }
    } else {
        pending.extend(names);
    }
}

/// Creates `dir` and its missing parents with mode 0700.
fn create_private_dir(file: &Path, dir: &Path) -> Result<(), Error> {
    if dir.as_os_str().is_empty() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| io_error(file, &format!("create directory {}", dir.display()), &e))
}

// ---- the file itself

/// Checks an open file's metadata (from `fstat`). Returns the mode when
/// others may read the file.
fn check_file(path: &Path, md: &Metadata, me: u32, family: Family) -> Result<Option<u32>, Error> {
    if !md.file_type().is_file() {
        return Err(error(ErrorKind::Unsafe, path, "is not a regular file; point the setting at a plain file"));
    }
    let (uid, mode) = (md.uid(), md.mode() & 0o7777);
    if uid != me && !(family == Family::Operator && uid == 0) {
        let reason = match family {
            Family::Own => format!("belongs to uid {uid}, not to this user (uid {me}); remove it"),
            Family::Operator => format!(
                "belongs to uid {uid}, neither this user (uid {me}) nor root, so that user controls it; \
                 chown it to uid {me} or to root"
            ),
        };
        return Err(error(ErrorKind::Unsafe, path, reason));
    }
    if mode & WRITABLE_BY_OTHERS != 0 {
        return Err(error(
            ErrorKind::Unsafe,
            path,
            format!("can be written by other users (mode {mode:04o}); run chmod go-w on it"),
        ));
    }
    Ok((mode & READABLE_BY_OTHERS != 0).then_some(mode))
}

fn open_flags_read() -> std::fs::OpenOptions {
    let mut o = std::fs::OpenOptions::new();
    // O_NONBLOCK: a FIFO planted in the file's place must not hang the
    // open; the type check refuses it right after. No effect on files.
    o.read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    o
}

/// Maps an `open` failure; `ELOOP` under `O_NOFOLLOW` is a symbolic link.
fn open_error(path: &Path, e: &std::io::Error) -> Error {
    if e.raw_os_error() == Some(libc::ELOOP) {
        return error(
            ErrorKind::Unsafe,
            path,
            "is a symbolic link, which the gateway does not follow for this file; remove it, or put the real file in its place",
        );
    }
    io_error(path, "open", e)
}

/// Reads at most `limit` bytes of UTF-8 text from an open file.
fn read_limited(path: &Path, mut f: File, md: &Metadata, limit: u64) -> Result<String, Error> {
    let too_large = || {
        error(
            ErrorKind::TooLarge,
            path,
            format!("is larger than {} KiB, too large for this kind of file", limit / 1024),
        )
    };
    if md.len() > limit {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    (&mut f).take(limit + 1).read_to_end(&mut bytes).map_err(|e| io_error(path, "read", &e))?;
    if bytes.len() as u64 > limit {
        return Err(too_large());
    }
    String::from_utf8(bytes).map_err(|_| error(ErrorKind::Unsafe, path, "is not UTF-8 text"))
}

fn open_checked(path: &Path, family: Family) -> Result<(File, Metadata, Option<u32>), Error> {
    let me = euid();
    let (dir, name) = resolve(path, me, family == Family::Operator)?;
    let f = open_flags_read().open(dir.join(&name)).map_err(|e| open_error(path, &e))?;
    let md = f.metadata().map_err(|e| io_error(path, "inspect", &e))?;
    let readable = check_file(path, &md, me, family)?;
    Ok((f, md, readable))
}

/// Reads one of the gateway's own files (`profiles.json`): no symbolic
/// link, owned by this user, not writable by others, in safe directories,
/// at most `limit` bytes. Readable by others is for the caller to warn about.
pub fn read_own(path: &Path, limit: u64) -> Result<Contents, Error> {
    let (f, md, readable_by_others) = open_checked(path, Family::Own)?;
    Ok(Contents { text: read_limited(path, f, &md, limit)?, readable_by_others })
}

/// Reads a secret the operator provides (a token file): links followed
/// through safe directories, a regular file owned by this user or root,
/// not writable by others, at most `limit` bytes. Readable by others is
/// for the caller to warn about.
pub fn read_operator_secret(path: &Path, limit: u64) -> Result<Contents, Error> {
    let (f, md, readable_by_others) = open_checked(path, Family::Operator)?;
    Ok(Contents { text: read_limited(path, f, &md, limit)?, readable_by_others })
}

/// Checks a secret the operator provides that another part reads (the TLS
/// key), by the rules of [`read_operator_secret`]. Returns the file's mode
/// when others may read it.
pub fn check_operator_secret(path: &Path) -> Result<Option<u32>, Error> {
    open_checked(path, Family::Operator).map(|(_, _, readable)| readable)
}

/// Warnings about the configuration file: the gateway runs the commands it
/// names, so whoever can change it runs code as the gateway. It is never
/// refused for this (the operator decides); each problem is one line.
pub fn config_warnings(path: &Path) -> Vec<String> {
    let me = euid();
    let checked = resolve(path, me, true).and_then(|(dir, name)| {
        let f = open_flags_read().open(dir.join(name)).map_err(|e| open_error(path, &e))?;
        f.metadata().map_err(|e| io_error(path, "inspect", &e))
    });
    let md = match checked {
        Ok(md) => md,
        Err(e) if e.kind == ErrorKind::Unsafe => {
            return vec![format!("{e} (whoever can change the configuration runs commands as this user)")]
        }
        // Reading it is config::load's business, which reports its own errors.
        Err(_) => return Vec::new(),
    };
    let (uid, mode) = (md.uid(), md.mode() & 0o7777);
    let mut out = Vec::new();
    if uid != me && uid != 0 {
        out.push(format!(
            "{}: belongs to uid {uid}, neither this user (uid {me}) nor root: that user can change the commands the gateway runs",
            path.display()
        ));
    }
    if mode & WRITABLE_BY_OTHERS != 0 {
        out.push(format!(
            "{}: can be written by other users (mode {mode:04o}), who can change the commands the gateway runs; run chmod go-w on it",
            path.display()
        ));
    }
    out
}

// ---- writing

/// Refuses an existing entry at `target` the gateway is about to replace
/// or append to: a link, a non-file, or a file of another user.
fn check_existing(path: &Path, target: &Path, me: u32) -> Result<(), Error> {
    match std::fs::symlink_metadata(target) {
        Ok(md) if md.file_type().is_symlink() => Err(open_error(path, &std::io::Error::from_raw_os_error(libc::ELOOP))),
        Ok(md) => check_file(path, &md, me, Family::Own).map(drop),
        // Missing (to be created) or not inspectable: the open decides.
        Err(_) => Ok(()),
    }
}

/// Writes `bytes` to `path` atomically, mode 0600 from the first byte: a
/// new file with a random name in the same directory (`O_EXCL`,
/// `O_NOFOLLOW`), flushed, then renamed over `path`. Missing directories
/// are created 0700. An existing `path` that is a link, not a file, or
/// another user's, is refused rather than replaced.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    write_replacing(path, bytes, Durable::Yes)
}

/// [`write_atomic`] without the two `fsync`s, for a file that is worth
/// nothing after a crash: the management token, drawn anew at every start
/// (after a crash the next start writes another). The rename still makes
/// the replacement atomic for readers; what is skipped is the wait for the
/// disk, which on a busy machine took 100 to 400 ms of the gateway's start,
/// and its readiness waited for it.
pub fn write_atomic_volatile(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    write_replacing(path, bytes, Durable::No)
}

/// Whether a replacement must reach the disk before the write returns.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Durable {
    Yes,
    No,
}

fn write_replacing(path: &Path, bytes: &[u8], durable: Durable) -> Result<(), Error> {
    let me = euid();
    create_private_dir(path, path.parent().unwrap_or(Path::new("")))?;
    let (dir, name) = resolve(path, me, false)?;
    let target = dir.join(&name);
    // Mode bits aside (the file is replaced whole), refuse what is not ours.
    match std::fs::symlink_metadata(&target) {
        Ok(md) if md.file_type().is_symlink() => {
            return Err(open_error(path, &std::io::Error::from_raw_os_error(libc::ELOOP)))
        }
        Ok(md) if !md.file_type().is_file() => {
            return Err(error(ErrorKind::Unsafe, path, "is not a regular file; remove it"))
        }
        Ok(md) if md.uid() != me => {
            return Err(error(
                ErrorKind::Unsafe,
                path,
                format!("belongs to uid {}, not to this user (uid {me}); remove it", md.uid()),
            ))
        }
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_error(path, "inspect", &e)),
    }
    let suffix = crate::util::random_hex(8).map_err(|e| io_error(path, "draw a random name", &e))?;
    let mut tmp_name = OsString::from(".");
    tmp_name.push(&name);
    tmp_name.push(format!(".{suffix}.tmp"));
    let tmp = dir.join(tmp_name);
    let written = write_new(&tmp, bytes, durable).and_then(|()| std::fs::rename(&tmp, &target));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io_error(path, "write", &e));
    }
    // Make the rename durable; failing here loses nothing already written.
    if durable == Durable::Yes {
        if let Ok(d) = File::open(&dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// Creates `tmp` (which must not exist), writes and (if `durable`) flushes it.
fn write_new(tmp: &Path, bytes: &[u8], durable: Durable) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(tmp)?;
    // The umask may have taken bits away, never added: state them.
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    f.write_all(bytes)?;
    match durable {
        Durable::Yes => f.sync_all(),
        Durable::No => Ok(()),
    }
}

/// How [`open_append`] treats an existing file readable by others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readers {
    /// Leave the mode (the audit log: an operator may share it with a
    /// log shipper's group).
    Keep,
    /// Set it to 0600 (the combined-mode log, 0644 in earlier versions).
    Tighten,
}

/// Opens one of the gateway's own log files for appending (`O_APPEND`,
/// `O_NOFOLLOW`), creating it 0600 and its missing directories 0700.
/// Refuses a link, a non-file, another user's file, a file or directory
/// others can write. Returns the file and notes for the log (a mode
/// tightened).
pub fn open_append(path: &Path, readers: Readers) -> Result<(File, Vec<String>), Error> {
    let me = euid();
    create_private_dir(path, path.parent().unwrap_or(Path::new("")))?;
    let (dir, name) = resolve(path, me, false)?;
    let target = dir.join(&name);
    // Before the open, so a FIFO or a link gets a clear reason, not ENXIO
    // or ELOOP; the checks on the open descriptor below are the ones that count.
    check_existing(path, &target, me)?;
    let f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&target)
        .map_err(|e| open_error(path, &e))?;
    let md = f.metadata().map_err(|e| io_error(path, "inspect", &e))?;
    let readable = check_file(path, &md, me, Family::Own)?;
    let mut notes = Vec::new();
    if let (Some(mode), Readers::Tighten) = (readable, readers) {
        f.set_permissions(std::fs::Permissions::from_mode(0o600)).map_err(|e| io_error(path, "chmod", &e))?;
        notes.push(format!("{}: was readable by other users (mode {mode:04o}); now 0600", path.display()));
    }
    Ok((f, notes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{chown, lchown, symlink};

    /// A fresh directory under the system temp dir (mode 0700), removed on drop.
    struct Tmp(PathBuf);

    impl Tmp {
        fn new(tag: &str) -> Tmp {
            let n = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
            let dir = std::env::temp_dir().join(format!("mcp-sentinel-secfile-{tag}-{}-{n}", std::process::id()));
            std::fs::DirBuilder::new().mode(0o700).create(&dir).unwrap();
            Tmp(dir)
        }

        fn dir(&self, name: &str, mode: u32) -> PathBuf {
            let d = self.0.join(name);
            std::fs::create_dir(&d).unwrap();
            chmod(&d, mode);
            d
        }
    }

    impl Drop for Tmp {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn chmod(p: &Path, mode: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().mode() & 0o7777
    }

    fn write(p: &Path, text: &str, m: u32) {
        std::fs::write(p, text).unwrap();
        chmod(p, m);
    }

    /// Another user for ownership tests: only root can hand files to one.
    fn other_user(test: &str) -> Option<u32> {
        if euid() == 0 {
            Some(65534)
        } else {
            eprintln!("SKIPPED: {test}: needs root to give a file to another user (uid 65534)");
            None
        }
    }

    fn unsafe_reason(r: Result<impl std::fmt::Debug, Error>) -> String {
        match r {
            Err(e) if e.kind == ErrorKind::Unsafe => {
                let line = e.to_string();
                assert!(!line.contains('\n'), "one line: {line}");
                line
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn write_atomic_is_private_and_leaves_no_temporary() {
        let t = Tmp::new("write");
        let path = t.0.join("a/b/secret.token");
        write_atomic(&path, b"one\n").unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&t.0.join("a")), 0o700);
        assert_eq!(mode(&t.0.join("a/b")), 0o700);
        write_atomic(&path, b"two\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two\n");
        let names: Vec<_> = std::fs::read_dir(t.0.join("a/b")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, [OsString::from("secret.token")]);
        // An existing wide file of ours is replaced by a 0600 one.
        chmod(&path, 0o644);
        write_atomic(&path, b"three\n").unwrap();
        assert_eq!(mode(&path), 0o600);
    }

    #[test]
    fn write_atomic_refuses_links_and_shared_directories() {
        let t = Tmp::new("write-refuse");
        let victim = t.0.join("victim");
        write(&victim, "keep", 0o600);
        let link = t.0.join("token");
        symlink(&victim, &link).unwrap();
        let r = unsafe_reason(write_atomic(&link, b"x"));
        assert!(r.contains("is a symbolic link"), "{r}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep", "the link's target is untouched");
        // Directly in a directory others can write, without the sticky bit.
        let open = t.dir("open", 0o777);
        let r = unsafe_reason(write_atomic(&open.join("token"), b"x"));
        assert!(r.contains("can be written by other users (mode 0777)") && r.contains("chmod go-w"), "{r}");
        assert!(!open.join("token").exists());
        // Below such a directory, even in a private one of ours.
        let below = open.join("private");
        std::fs::DirBuilder::new().mode(0o700).create(&below).unwrap();
        let r = unsafe_reason(write_atomic(&below.join("token"), b"x"));
        assert!(r.contains(&format!("directory {} can be written", open.display())), "{r}");
        // A sticky shared directory of ours is fine as the file's own.
        let sticky = t.dir("sticky", 0o1777);
        write_atomic(&sticky.join("token"), b"x").unwrap();
    }

    #[test]
    fn a_file_directly_in_a_shared_sticky_directory_is_refused() {
        // /tmp for an ordinary user (uid 1000): root's, sticky, world-writable.
        let tmp = Path::new("/tmp");
        let r = dir_problem(tmp, 0, 0o41777, 1000, true).expect("refused as the file's own directory");
        assert!(r.contains("directory /tmp can be written by other users (mode 1777)"), "{r}");
        assert!(r.contains("a directory of its own"), "{r}");
        assert_eq!(dir_problem(tmp, 0, 0o41777, 1000, false), None, "a safe way through");
        // Our own sticky shared directory, as the file's own: fine.
        assert_eq!(dir_problem(tmp, 1000, 0o41777, 1000, true), None);
        // Without the sticky bit, never, even ours or root's.
        assert!(dir_problem(tmp, 1000, 0o40777, 1000, false).is_some());
        assert!(dir_problem(tmp, 0, 0o40775, 1000, false).is_some(), "group-writable too");
        // Another user's directory, even private.
        assert!(dir_problem(tmp, 1001, 0o40700, 1000, false).is_some_and(|r| r.contains("uid 1001")));
        assert_eq!(dir_problem(tmp, 0, 0o40755, 1000, true), None);
        // On disk, with a shared sticky directory of another user (root
        // cannot be "another user" for itself, so not root's as /tmp is).
        let Some(other) = other_user("a_file_directly_in_a_shared_sticky_directory_is_refused") else { return };
        let t = Tmp::new("tmp-like");
        let shared = t.dir("shared", 0o1777);
        chown(&shared, Some(other), None).unwrap();
        let r = unsafe_reason(write_atomic(&shared.join("token"), b"x"));
        assert!(r.contains(&format!("directory {}", shared.display())), "{r}");
        assert!(!shared.join("token").exists());
    }

    #[test]
    fn files_and_directories_of_other_users_are_refused() {
        let Some(other) = other_user("files_and_directories_of_other_users_are_refused") else { return };
        let t = Tmp::new("owners");
        let planted = t.0.join("planted.token");
        write(&planted, "attacker", 0o600);
        chown(&planted, Some(other), None).unwrap();
        let r = unsafe_reason(write_atomic(&planted, b"x"));
        assert!(r.contains("belongs to uid 65534"), "{r}");
        let r = unsafe_reason(read_own(&planted, TOKEN_LIMIT));
        assert!(r.contains("belongs to uid 65534") && r.contains("remove it"), "{r}");
        let r = unsafe_reason(read_operator_secret(&planted, TOKEN_LIMIT));
        assert!(r.contains("neither this user (uid 0) nor root") && r.contains("chown it"), "{r}");
        let r = unsafe_reason(open_append(&planted, Readers::Keep));
        assert!(r.contains("belongs to uid 65534"), "{r}");
        // A directory of theirs on the way.
        let theirs = t.dir("theirs", 0o755);
        write(&theirs.join("t"), "x", 0o600);
        chown(&theirs, Some(other), None).unwrap();
        let r = unsafe_reason(read_operator_secret(&theirs.join("t"), TOKEN_LIMIT));
        assert!(r.contains(&format!("directory {} belongs to uid 65534", theirs.display())), "{r}");
        // A link of theirs, even to our own file.
        let ours = t.0.join("ours");
        write(&ours, "x", 0o600);
        let link = t.0.join("link");
        symlink(&ours, &link).unwrap();
        lchown(&link, Some(other), None).unwrap();
        let r = unsafe_reason(read_operator_secret(&link, TOKEN_LIMIT));
        assert!(r.contains("symbolic link") && r.contains("belongs to uid 65534"), "{r}");
    }

    #[test]
    fn own_files_refuse_links_and_writable_modes_and_warn_when_readable() {
        let t = Tmp::new("own");
        let f = t.0.join("profiles.json");
        write(&f, "{}", 0o600);
        let r = read_own(&f, PROFILES_LIMIT).unwrap();
        assert_eq!((r.text.as_str(), r.readable_by_others), ("{}", None));
        chmod(&f, 0o644);
        assert_eq!(read_own(&f, PROFILES_LIMIT).unwrap().readable_by_others, Some(0o644));
        chmod(&f, 0o620);
        let r = unsafe_reason(read_own(&f, PROFILES_LIMIT));
        assert!(r.contains("can be written by other users (mode 0620)") && r.contains("chmod go-w"), "{r}");
        chmod(&f, 0o600);
        let link = t.0.join("link.json");
        symlink(&f, &link).unwrap();
        assert!(unsafe_reason(read_own(&link, PROFILES_LIMIT)).contains("is a symbolic link"));
        assert_eq!(read_own(&t.0.join("missing"), PROFILES_LIMIT).unwrap_err().kind, ErrorKind::NotFound);
        assert_eq!(read_own(&t.0.join("no/dir/file"), PROFILES_LIMIT).unwrap_err().kind, ErrorKind::NotFound);
        assert!(unsafe_reason(read_own(&t.0, PROFILES_LIMIT)).contains("directory, not a file"));
    }

    #[test]
    fn operator_secrets_follow_safe_links_and_are_bounded() {
        let t = Tmp::new("operator");
        // Like a Kubernetes secret volume: token -> ..data/token -> ..2026/token.
        let real = t.dir("..2026", 0o755);
        write(&real.join("token"), "s3cret\n", 0o600);
        symlink("..2026", t.0.join("..data")).unwrap();
        symlink("..data/token", t.0.join("token")).unwrap();
        let r = read_operator_secret(&t.0.join("token"), TOKEN_LIMIT).unwrap();
        assert_eq!((r.text.as_str(), r.readable_by_others), ("s3cret\n", None));
        // Readable by others: read, and the caller warns.
        chmod(&real.join("token"), 0o644);
        let r = read_operator_secret(&t.0.join("token"), TOKEN_LIMIT).unwrap();
        assert_eq!(r.readable_by_others, Some(0o644));
        // A link into a directory others can write is refused.
        let open = t.dir("open", 0o777);
        write(&open.join("token"), "x", 0o600);
        symlink(open.join("token"), t.0.join("to-open")).unwrap();
        let r = unsafe_reason(read_operator_secret(&t.0.join("to-open"), TOKEN_LIMIT));
        assert!(r.contains(&format!("directory {} can be written", open.display())), "{r}");
        // Size limit and type.
        let big = t.0.join("big");
        write(&big, &"a".repeat(TOKEN_LIMIT as usize + 1), 0o600);
        assert_eq!(read_operator_secret(&big, TOKEN_LIMIT).unwrap_err().kind, ErrorKind::TooLarge);
        write(&big, &"a".repeat(TOKEN_LIMIT as usize), 0o600);
        assert!(read_operator_secret(&big, TOKEN_LIMIT).is_ok());
        let fifo = t.0.join("fifo");
        let made = std::process::Command::new("mkfifo").arg("-m").arg("600").arg(&fifo).status();
        if made.is_ok_and(|s| s.success()) {
            let r = unsafe_reason(read_operator_secret(&fifo, TOKEN_LIMIT));
            assert!(r.contains("not a regular file"), "{r}");
            let r = unsafe_reason(open_append(&fifo, Readers::Keep));
            assert!(r.contains("not a regular file"), "{r}");
        }
        assert!(check_operator_secret(&t.0.join("token")).is_ok());
    }

    #[test]
    fn open_append_creates_private_files_and_tightens_on_request() {
        let t = Tmp::new("append");
        let log = t.0.join("logs/audit.jsonl");
        let (mut f, notes) = open_append(&log, Readers::Keep).unwrap();
        f.write_all(b"a\n").unwrap();
        assert!(notes.is_empty());
        assert_eq!(mode(&log), 0o600);
        assert_eq!(mode(&t.0.join("logs")), 0o700);
        let (mut f, _) = open_append(&log, Readers::Keep).unwrap();
        f.write_all(b"b\n").unwrap();
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "a\nb\n");
        chmod(&log, 0o640);
        open_append(&log, Readers::Keep).unwrap();
        assert_eq!(mode(&log), 0o640, "kept");
        let (_, notes) = open_append(&log, Readers::Tighten).unwrap();
        assert_eq!(mode(&log), 0o600, "tightened");
        assert!(notes[0].contains("was readable by other users (mode 0640); now 0600"), "{notes:?}");
        chmod(&log, 0o666);
        assert!(unsafe_reason(open_append(&log, Readers::Keep)).contains("can be written by other users"));
        let link = t.0.join("logs/link.jsonl");
        symlink(&log, &link).unwrap();
        assert!(unsafe_reason(open_append(&link, Readers::Keep)).contains("is a symbolic link"));
    }

    #[test]
    fn config_warnings_name_writable_configs() {
        let t = Tmp::new("config");
        let c = t.0.join("config.json");
        write(&c, "{}", 0o644);
        assert!(config_warnings(&c).is_empty());
        chmod(&c, 0o666);
        let w = config_warnings(&c);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("can be written by other users (mode 0666)") && w[0].contains("commands"), "{w:?}");
        assert!(config_warnings(&t.0.join("missing.json")).is_empty());
    }

    #[test]
    fn relative_paths_and_dot_dot_resolve() {
        let t = Tmp::new("rel");
        let sub = t.dir("sub", 0o700);
        write(&sub.join("f"), "x", 0o600);
        let dotted = sub.join("../sub/./f");
        assert_eq!(read_own(&dotted, TOKEN_LIMIT).unwrap().text, "x");
    }
}
