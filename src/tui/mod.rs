//! `mcp-sentinel tui`: a terminal client of `/manage/v1` (CONTRACT §6). It
//! never owns a server's lifetime: quitting only stops the TUI.
//!
//! Threads (bottom's split): the main thread owns the terminal and the
//! [`app::App`] state and runs the event loop; `tui:input` reads keys and
//! resizes; `tui:poll:<profile>` polls the active profile ([`poll`]);
//! `tui:signals` turns SIGTERM, SIGHUP and SIGINT into a clean quit. All of
//! them feed one bounded channel of [`Event`]s; the main thread redraws
//! after each batch.
//!
//! The terminal is restored on every exit path: normal quit, an error
//! (the guard's `Drop`), a panic on the UI thread (a panic hook), and a
//! termination signal.

pub mod app;
pub mod poll;
pub mod settings;
pub mod theme;
pub mod ui;

use crate::client::{Target, TokenSource};
use crate::exit::{Fatal, Kind};
use crate::profiles::{self, Paths, ProfileError};
use app::{Action, App, KeyMap, ProfileEntry};
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender};
use crossterm::event::{self as ct, KeyEvent, KeyEventKind};
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;
use std::fmt;
use std::io::{IsTerminal, Stdout};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Default poll interval (CONTRACT §6: every second).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
/// Bounds for `--interval`: faster than this only loads the server; slower
/// than this looks dead.
const MIN_INTERVAL: Duration = Duration::from_millis(100);
const MAX_INTERVAL: Duration = Duration::from_secs(3600);
/// How often the input thread checks whether it should stop.
const INPUT_POLL: Duration = Duration::from_millis(100);

/// Everything the main thread reacts to. Receiver: [`run`]'s loop.
pub enum Event {
    Key(KeyEvent),
    Resize,
    Snapshot(Box<poll::Snapshot>),
    Done(Box<poll::Done>),
    /// The terminal cannot be read any more.
    InputFailed(String),
    /// SIGTERM, SIGHUP or SIGINT.
    Quit,
}

/// Why the TUI could not run.
#[derive(Debug)]
pub enum TuiError {
    Profile(ProfileError),
    /// A bad `--profile`: exit 2.
    Usage(String),
    /// The terminal could not be set up or drawn to: exit 1.
    Terminal(String),
}

impl TuiError {
    /// The exit code `main` returns for this error.
    pub fn exit_code(&self) -> u8 {
        self.kind().code()
    }
}

impl Fatal for TuiError {
    fn kind(&self) -> Kind {
        match self {
            TuiError::Profile(e) => e.kind(),
            TuiError::Usage(_) => Kind::Usage,
            TuiError::Terminal(_) => Kind::Failure,
        }
    }
}

impl fmt::Display for TuiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TuiError::Profile(e) => write!(f, "{e}"),
            TuiError::Usage(m) => write!(f, "{m}"),
            TuiError::Terminal(m) => write!(f, "terminal: {m}"),
        }
    }
}

impl std::error::Error for TuiError {}

impl From<ProfileError> for TuiError {
    fn from(e: ProfileError) -> Self {
        TuiError::Profile(e)
    }
}

fn term_err(e: std::io::Error) -> TuiError {
    TuiError::Terminal(e.to_string())
}

/// What `mcp-sentinel tui` was asked for on the command line (`cli`
/// produces it, checked but not yet resolved against the profiles).
#[derive(Debug, Default, PartialEq)]
pub struct TuiArgs {
    pub profile: Option<String>,
    pub url: Option<String>,
    pub token_env: Option<String>,
    pub token_file: Option<std::path::PathBuf>,
    pub interval_s: Option<f64>,
    /// `--keys default|classic`: this run's key map, over `tui.json`'s.
    pub keys: Option<KeyMap>,
}

/// What to watch.
#[derive(Debug, Clone)]
pub struct Options {
    /// The profiles the selector offers; never empty.
    pub targets: Vec<Target>,
    /// Index of the one to start with.
    pub active: usize,
    pub interval: Duration,
    /// `--keys`, over the remembered key map.
    pub keys: Option<KeyMap>,
    /// Where the theme and key map are remembered (`tui.json`); `None`
    /// when there is no configuration directory (nothing is remembered).
    pub settings_file: Option<std::path::PathBuf>,
    /// The legacy combined mode: quitting stops the in-process server.
    pub combined: bool,
}

/// `mcp-sentinel tui [--profile NAME | --url URL ...] [--interval SECS]`.
pub fn run_cli(args: &TuiArgs) -> Result<(), TuiError> {
    let opts = options(args, Paths::from_env())?;
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        return Err(TuiError::Terminal("the TUI needs an interactive terminal on stdin and stdout".into()));
    }
    run(opts)
}

/// Resolves the command line against the saved profiles.
pub fn options(args: &TuiArgs, paths: Result<Paths, ProfileError>) -> Result<Options, TuiError> {
    let interval = interval(args.interval_s);
    let (keys, combined) = (args.keys, false);
    let settings_file = paths.as_ref().ok().map(settings::path);
    if let Some(url) = &args.url {
        let token = match (&args.token_env, &args.token_file) {
            (Some(v), _) => TokenSource::Env(v.clone()),
            (None, Some(f)) => TokenSource::File(f.clone()),
            (None, None) => match &paths {
                Ok(p) => profiles::default_token_for(url, p),
                Err(_) => TokenSource::None,
            },
        };
        let mut targets = vec![Target { name: "url".into(), url: url.clone(), token, ca_cert: None }];
        // The saved profiles stay reachable with `p`; a missing or broken
        // profiles file must not stop an explicit --url.
        if let Ok(p) = &paths {
            if let Ok(loaded) = profiles::load(p) {
                targets.extend(loaded.file.profiles.iter().map(|pr| profiles::target(pr, p)));
            }
        }
        return Ok(Options { targets, active: 0, interval, keys, settings_file, combined });
    }
    let paths = paths?;
    let loaded = profiles::load(&paths)?;
    let targets: Vec<Target> = loaded.file.profiles.iter().map(|p| profiles::target(p, &paths)).collect();
    let wanted = match &args.profile {
        Some(n) => n.clone(),
        None => loaded.active().map(|p| p.name.clone()).unwrap_or_default(),
    };
    let Some(active) = targets.iter().position(|t| t.name == wanted) else {
        let names: Vec<&str> = targets.iter().map(|t| t.name.as_str()).collect();
        return Err(TuiError::Usage(format!("no profile named {wanted:?} (profiles: {})", names.join(", "))));
    };
    Ok(Options { targets, active, interval, keys, settings_file, combined })
}

/// `--interval` in range; the default when absent.
fn interval(secs: Option<f64>) -> Duration {
    match secs {
        // Too large for a Duration is also too large for an interval.
        Some(s) if s >= MAX_INTERVAL.as_secs_f64() => MAX_INTERVAL,
        Some(s) => Duration::try_from_secs_f64(s).map_or(DEFAULT_INTERVAL, |d| d.max(MIN_INTERVAL)),
        None => DEFAULT_INTERVAL,
    }
}

/// Runs the TUI against one URL and returns when the user quits: for the
/// legacy combined mode, whose caller then stops its in-process server.
/// The caller must keep its own logs off the terminal meanwhile (log to a
/// file, or not at all), or they scribble over the screen.
pub fn run_attached(url: &str, token: TokenSource) -> Result<(), TuiError> {
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        return Err(TuiError::Terminal("the TUI needs an interactive terminal on stdin and stdout".into()));
    }
    let target = Target { name: "attached".into(), url: url.to_string(), token, ca_cert: None };
    let settings_file = Paths::from_env().ok().map(|p| settings::path(&p));
    run(Options {
        targets: vec![target],
        active: 0,
        interval: DEFAULT_INTERVAL,
        keys: None,
        settings_file,
        combined: true,
    })
}

/// Sets up the terminal, runs the event loop, restores the terminal.
pub fn run(opts: Options) -> Result<(), TuiError> {
    if opts.targets.is_empty() {
        return Err(TuiError::Usage("no profile to show".into()));
    }
    let mut term = TermGuard::enter().map_err(term_err)?;
    let (tx, rx) = bounded::<Event>(64);
    let stop = Arc::new(AtomicBool::new(false));
    let (input_done, input_ended) = bounded::<()>(0);
    let input = spawn_input(tx.clone(), stop.clone(), input_done).map_err(term_err)?;
    let signals = forward_signals(tx.clone());
    let result = event_loop(&mut term.terminal, &opts, &tx, &rx);
    stop.store(true, Ordering::Relaxed);
    if let Some(h) = signals {
        h.close();
    }
    // Unblocks an input thread waiting to send.
    drop(rx);
    // Bounded: when the terminal has gone away (its window closed, SIGHUP),
    // crossterm's read can spin without returning, and an unbounded join
    // would keep the process alive forever. The thread sees `stop` within
    // INPUT_POLL otherwise, and its end drops `input_done`, which ends this
    // wait at once; a stuck one ends with the process.
    if let Err(RecvTimeoutError::Disconnected) = input_ended.recv_timeout(INPUT_POLL * 3) {
        let _ = input.join();
    }
    drop(term); // restores before the caller prints anything
    result
}

fn event_loop(
    terminal: &mut Terminal<CrosstermBackend<Stdout>>,
    opts: &Options,
    tx: &Sender<Event>,
    rx: &Receiver<Event>,
) -> Result<(), TuiError> {
    let entries = opts.targets.iter().map(|t| ProfileEntry { name: t.name.clone(), url: t.url.clone() }).collect();
    let mut app = App::new(entries, opts.active, opts.interval);
    app.combined = opts.combined;
    if let Some(path) = &opts.settings_file {
        app.apply_settings(settings::load(path));
    }
    if let Some(k) = opts.keys {
        app.keys = k;
    }
    let mut tables = ui::TableStates::default();
    let start = |app: &mut App| {
        let t = opts.targets[app.active].clone();
        let name = t.name.clone();
        match poll::spawn(t, app.generation, opts.interval, tx.clone()) {
            Ok(p) => Some(p),
            Err(e) => {
                app.poller_failed(&format!("cannot start the poller for {name}: {e}"));
                None
            }
        }
    };
    let mut poller = start(&mut app);
    loop {
        terminal.draw(|f| ui::render(&app, &mut tables, f)).map_err(term_err)?;
        // Take one event, then whatever else is already queued, and draw once.
        let Ok(first) = rx.recv() else { return Ok(()) };
        let mut next = Some(first);
        while let Some(ev) = next.take() {
            let action = match ev {
                Event::Key(k) => app.on_key(k),
                Event::Resize => Action::None,
                Event::Snapshot(s) => {
                    app.apply_snapshot(*s);
                    Action::None
                }
                Event::Done(d) => {
                    app.apply_done(*d);
                    Action::None
                }
                Event::InputFailed(m) => return Err(TuiError::Terminal(format!("cannot read input: {m}"))),
                Event::Quit => Action::Quit,
            };
            match action {
                Action::None => {}
                Action::Quit => return Ok(()),
                Action::Run(op) => {
                    if !poller.as_ref().is_some_and(|p| p.run(op)) {
                        app.poller_failed("the poller is not running");
                    }
                }
                Action::SaveSettings => {
                    if let Some(path) = &opts.settings_file {
                        if let Err(e) = settings::save(path, &app.settings()) {
                            app.notice = Some(app::Notice {
                                kind: app::NoticeKind::Error,
                                text: format!("cannot remember the {} theme: {e}", app.theme.name),
                            });
                        }
                    }
                }
                Action::SwitchProfile(_) => {
                    // Dropping the old handle stops its thread.
                    drop(poller.take());
                    poller = start(&mut app);
                }
            }
            next = rx.try_recv().ok();
        }
    }
}

/// Reads keys and resizes until `stop`; polls with a timeout so it can stop
/// (a blocking read would outlive the TUI in the legacy combined mode).
/// `done` is never sent on: it is dropped when the thread's body ends,
/// however it ends (even by a panic), which is what [`run`] waits for.
fn spawn_input(
    tx: Sender<Event>,
    stop: Arc<AtomicBool>,
    done: Sender<()>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    crate::thread::spawn("tui:input".into(), move || {
        let _done = done;
        while !stop.load(Ordering::Relaxed) {
            let ready = ct::poll(INPUT_POLL).map_err(|e| e.to_string());
            let ev = match ready {
                Ok(false) => continue,
                Ok(true) => ct::read().map_err(|e| e.to_string()),
                Err(e) => Err(e),
            };
            let out = match ev {
                Ok(ct::Event::Key(k)) if k.kind != KeyEventKind::Release => Event::Key(k),
                Ok(ct::Event::Resize(..)) => Event::Resize,
                Ok(_) => continue,
                Err(e) => {
                    let _ = tx.send(Event::InputFailed(e.clone()));
                    return Err(e);
                }
            };
            if tx.send(out).is_err() {
                break;
            }
        }
        Ok(())
    })
}

/// SIGTERM, SIGHUP and SIGINT quit cleanly, so the terminal is restored
/// (Ctrl-C itself arrives as a key in raw mode; SIGINT is `kill -INT`).
/// Best effort: without handlers the TUI still runs.
fn forward_signals(tx: Sender<Event>) -> Option<signal_hook::iterator::Handle> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGHUP, SIGINT]).ok()?;
    let handle = signals.handle();
    let spawned = crate::thread::spawn("tui:signals".into(), move || {
        if signals.forever().next().is_some() {
            let _ = tx.send(Event::Quit);
        }
        Ok(())
    });
    spawned.ok().map(|_| handle)
}

type PanicHook = Box<dyn Fn(&std::panic::PanicHookInfo<'_>) + Sync + Send + 'static>;

/// Raw mode and the alternate screen, undone on drop; a panic hook undoes
/// them too when the UI thread panics, so the message is readable.
struct TermGuard {
    terminal: Terminal<CrosstermBackend<Stdout>>,
    previous_hook: Arc<PanicHook>,
}

impl TermGuard {
    fn enter() -> std::io::Result<TermGuard> {
        let undo = |e| {
            restore_terminal();
            e
        };
        crossterm::terminal::enable_raw_mode()?;
        TERMINAL_TAKEN.store(true, Ordering::SeqCst);
        crossterm::execute!(std::io::stdout(), crossterm::terminal::EnterAlternateScreen).map_err(undo)?;
        let mut terminal = Terminal::new(CrosstermBackend::new(std::io::stdout())).map_err(undo)?;
        terminal.hide_cursor().map_err(undo)?;
        terminal.clear().map_err(undo)?;
        // Installed last, so a failed setup leaves the caller's hook alone.
        let previous_hook: Arc<PanicHook> = Arc::new(std::panic::take_hook());
        let chained = previous_hook.clone();
        let ui_thread = std::thread::current().id();
        std::panic::set_hook(Box::new(move |info| {
            // A poller's panic must not tear the screen from under the UI.
            if std::thread::current().id() == ui_thread {
                restore_terminal();
            }
            chained(info);
        }));
        Ok(TermGuard { terminal, previous_hook })
    }
}

impl Drop for TermGuard {
    fn drop(&mut self) {
        restore_terminal();
        // set_hook panics on a panicking thread, and a panic in a destructor
        // during unwinding aborts: leave the hook alone then.
        if std::thread::panicking() {
            return;
        }
        // Put the caller's panic hook back (the legacy combined mode goes on
        // running a server after the TUI).
        let previous = self.previous_hook.clone();
        let _ = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| previous(info)));
    }
}

/// True while the TUI owns the terminal (raw mode, alternate screen).
static TERMINAL_TAKEN: AtomicBool = AtomicBool::new(false);

/// Undoes the setup once: both the panic hook and the guard's `Drop` call
/// this, and a second "leave alternate screen" would move the cursor back to
/// where the TUI started, over the panic message.
fn restore_terminal() {
    if !TERMINAL_TAKEN.swap(false, Ordering::SeqCst) {
        return;
    }
    let _ = crossterm::terminal::disable_raw_mode();
    let _ = crossterm::execute!(std::io::stdout(), crossterm::terminal::LeaveAlternateScreen, crossterm::cursor::Show);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn tmp_paths(tag: &str) -> (PathBuf, Paths) {
        let dir = std::env::temp_dir().join(format!("mcp-sentinel-tuiopts-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let paths = Paths::under(&dir.join("c"), &dir.join("s"));
        (dir, paths)
    }

    #[test]
    fn default_is_the_implicit_local_profile() {
        let (dir, paths) = tmp_paths("default");
        let o = options(&TuiArgs::default(), Ok(paths.clone())).unwrap();
        assert_eq!(o.targets.len(), 1);
        assert_eq!(o.targets[0].name, "local");
        assert_eq!(o.targets[0].url, "http://127.0.0.1:9001");
        assert_eq!(o.targets[0].token, TokenSource::File(paths.default_token_file(9001)));
        assert_eq!(o.interval, DEFAULT_INTERVAL);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn profile_flag_picks_and_unknown_is_a_usage_error() {
        let (dir, paths) = tmp_paths("pick");
        let p = |n: &str, port: u16| profiles::Profile {
            name: n.into(),
            url: format!("http://127.0.0.1:{port}"),
            token_env: None,
            token_file: None,
            ca_cert: None,
        };
        profiles::add(&paths, p("a", 9101)).unwrap();
        profiles::add(&paths, p("b", 9102)).unwrap();
        let args = TuiArgs { profile: Some("b".into()), interval_s: Some(0.5), ..Default::default() };
        let o = options(&args, Ok(paths.clone())).unwrap();
        assert_eq!(o.targets[o.active].name, "b");
        assert_eq!(o.interval, Duration::from_millis(500));
        let args = TuiArgs { profile: Some("zz".into()), ..Default::default() };
        let e = options(&args, Ok(paths.clone())).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert_eq!(e.to_string(), "no profile named \"zz\" (profiles: local, a, b)");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn url_flag_comes_first_and_keeps_profiles() {
        let (dir, paths) = tmp_paths("url");
        let args = TuiArgs {
            url: Some("http://127.0.0.1:9200".into()),
            token_env: Some("T".into()),
            interval_s: Some(1e300),
            ..Default::default()
        };
        let o = options(&args, Ok(paths.clone())).unwrap();
        assert_eq!((o.active, o.targets[0].name.as_str()), (0, "url"));
        assert_eq!(o.targets[0].token, TokenSource::Env("T".into()));
        assert_eq!(o.targets[1].name, "local");
        assert_eq!(o.interval, MAX_INTERVAL);
        // No token flag on a loopback URL: the server's default token file.
        let args = TuiArgs { url: Some("http://127.0.0.1:9200".into()), ..Default::default() };
        let o = options(&args, Ok(paths.clone())).unwrap();
        assert_eq!(o.targets[0].token, TokenSource::File(paths.default_token_file(9200)));
        // A broken profiles file does not stop --url.
        std::fs::create_dir_all(paths.profiles_file.parent().unwrap()).unwrap();
        std::fs::write(&paths.profiles_file, "{").unwrap();
        assert_eq!(options(&args, Ok(paths.clone())).unwrap().targets.len(), 1);
        // ... but does stop the profile path, naming the file.
        let e = options(&TuiArgs::default(), Ok(paths.clone())).unwrap_err();
        assert_eq!(e.exit_code(), 78);
        assert!(e.to_string().contains("profiles.json"));
        let _ = std::fs::remove_dir_all(dir);
    }
}
