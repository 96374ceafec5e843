//! The TUI's state and its pure transitions: a key, a snapshot or an
//! action's result goes in, the state changes, and an [`Action`] for the
//! event loop may come out. No I/O, no terminal, no threads: everything here
//! is unit-tested directly. Runs on the TUI's main thread.

use super::poll::{Data, Done, Op, OpOk, Snapshot};
use crate::api::{self, BackendView, Names, Prompt, Resource, ResourceTemplate, Tool};
use crate::client::ClientError;
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// The views, in tab order; number keys 1-6 pick them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Backends,
    Tools,
    Resources,
    Templates,
    Prompts,
    Events,
}

pub const VIEWS: [View; 6] =
    [View::Backends, View::Tools, View::Resources, View::Templates, View::Prompts, View::Events];

impl View {
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn title(self) -> &'static str {
        match self {
            View::Backends => "Backends",
            View::Tools => "Tools",
            View::Resources => "Resources",
            View::Templates => "Templates",
            View::Prompts => "Prompts",
            View::Events => "Events",
        }
    }
}

/// What the keyboard is talking to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Normal,
    /// Typing the current view's filter after `/`.
    Filter,
    Help,
    /// Waiting for y/n before running an operation.
    Confirm(Op),
    /// The profile selector, with its cursor.
    Profiles(usize),
}

/// What the event loop must do after a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    None,
    Quit,
    /// Send this operation to the poller of the active profile.
    Run(Op),
    /// Stop polling the current profile and start on this one.
    SwitchProfile(usize),
}

/// The connection to the active profile's server, as the header shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnState {
    /// No answer yet from this profile.
    Connecting,
    Connected,
    Failed(ClientError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeKind {
    Info,
    Success,
    Error,
}

/// A one-line message in the footer (an operation's outcome).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub kind: NoticeKind,
    pub text: String,
}

/// A profile as the selector and header show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileEntry {
    pub name: String,
    pub url: String,
}

/// Rows a PageUp/PageDown moves; the view's real height is not known here.
const PAGE: usize = 10;

/// Shown for a 403 on an admin operation (CONTRACT §5: POST needs `admin`).
pub const READ_ONLY_NOTICE: &str = "read-only token: admin scope needed";

pub struct App {
    pub profiles: Vec<ProfileEntry>,
    pub active: usize,
    /// Bumped on every profile switch; snapshots of older ones are dropped.
    pub generation: u64,
    pub interval: Duration,
    pub conn: ConnState,
    /// When the last successful snapshot was taken.
    pub last_ok: Option<SystemTime>,
    /// The last successful snapshot's data; kept while the server is
    /// unreachable (shown as stale), cleared on a profile switch.
    pub data: Option<Data>,
    pub events: Arc<Vec<api::Event>>,
    pub view: View,
    pub mode: Mode,
    /// Per-view filter text (index: [`View::index`]).
    pub filters: [String; 6],
    /// After `/` on a view with a filter: the old text is shown selected and
    /// the first key typed replaces it (→ or End keeps it to extend it).
    pub filter_selected: bool,
    /// Per-view selected row, an index into the filtered list.
    pub selected: [usize; 6],
    /// The event view sticks to the newest event until the user moves up.
    pub follow_events: bool,
    /// First line shown in the detail pane.
    pub detail_scroll: u16,
    pub notice: Option<Notice>,
    /// The operation in flight, if any.
    pub busy: Option<Op>,
}

impl App {
    pub fn new(profiles: Vec<ProfileEntry>, active: usize, interval: Duration) -> App {
        App {
            active: active.min(profiles.len().saturating_sub(1)),
            profiles,
            generation: 0,
            interval,
            conn: ConnState::Connecting,
            last_ok: None,
            data: None,
            events: Arc::new(Vec::new()),
            view: View::Backends,
            mode: Mode::Normal,
            filters: Default::default(),
            filter_selected: false,
            selected: [0; 6],
            follow_events: true,
            detail_scroll: 0,
            notice: None,
            busy: None,
        }
    }

    pub fn profile(&self) -> Option<&ProfileEntry> {
        self.profiles.get(self.active)
    }

    pub fn filter(&self) -> &str {
        &self.filters[self.view.index()]
    }

    // ---- filtered lists, shared by key handling and rendering

    pub fn backends(&self) -> Vec<&BackendView> {
        let f = &self.filters[View::Backends.index()];
        let all = self.data.as_ref().map(|d| d.backends.as_slice()).unwrap_or_default();
        all.iter().filter(|b| matches(f, &[&b.name, &b.state, &b.kind, &b.endpoint])).collect()
    }

    pub fn tools(&self) -> Vec<&Tool> {
        let f = &self.filters[View::Tools.index()];
        let all = self.data.as_ref().map(|d| d.capabilities.tools.as_slice()).unwrap_or_default();
        all.iter().filter(|t| matches(f, &[&t.name, &t.backend, t.description.as_deref().unwrap_or("")])).collect()
    }

    pub fn resources(&self) -> Vec<&Resource> {
        let f = &self.filters[View::Resources.index()];
        let all = self.data.as_ref().map(|d| d.capabilities.resources.as_slice()).unwrap_or_default();
        all.iter().filter(|r| matches(f, &[&r.uri, r.name.as_deref().unwrap_or(""), &r.backend])).collect()
    }

    pub fn templates(&self) -> Vec<&ResourceTemplate> {
        let f = &self.filters[View::Templates.index()];
        let all = self.data.as_ref().map(|d| d.capabilities.resource_templates.as_slice()).unwrap_or_default();
        all.iter().filter(|r| matches(f, &[&r.uri_template, r.name.as_deref().unwrap_or(""), &r.backend])).collect()
    }

    pub fn prompts(&self) -> Vec<&Prompt> {
        let f = &self.filters[View::Prompts.index()];
        let all = self.data.as_ref().map(|d| d.capabilities.prompts.as_slice()).unwrap_or_default();
        all.iter().filter(|p| matches(f, &[&p.name, &p.backend, p.description.as_deref().unwrap_or("")])).collect()
    }

    pub fn event_rows(&self) -> Vec<&api::Event> {
        let f = &self.filters[View::Events.index()];
        self.events
            .iter()
            .filter(|e| matches(f, &[&e.kind, &e.level, e.backend.as_deref().unwrap_or(""), &e.message]))
            .collect()
    }

    pub fn list_len(&self, view: View) -> usize {
        match view {
            View::Backends => self.backends().len(),
            View::Tools => self.tools().len(),
            View::Resources => self.resources().len(),
            View::Templates => self.templates().len(),
            View::Prompts => self.prompts().len(),
            View::Events => self.event_rows().len(),
        }
    }

    /// The selected row of `view`, clamped to its (filtered) length.
    pub fn selection(&self, view: View) -> Option<usize> {
        let len = self.list_len(view);
        (len > 0).then(|| self.selected[view.index()].min(len - 1))
    }

    /// The backend that `c` would reconnect: the selected backend, or the
    /// one that owns the selected capability or event.
    pub fn selected_backend(&self) -> Option<String> {
        let i = self.selection(self.view)?;
        let name = match self.view {
            View::Backends => self.backends().get(i).map(|b| b.name.clone()),
            View::Tools => self.tools().get(i).map(|t| t.backend.clone()),
            View::Resources => self.resources().get(i).map(|r| r.backend.clone()),
            View::Templates => self.templates().get(i).map(|r| r.backend.clone()),
            View::Prompts => self.prompts().get(i).map(|p| p.backend.clone()),
            View::Events => self.event_rows().get(i).and_then(|e| e.backend.clone()),
        };
        name.filter(|n| !n.is_empty())
    }

    // ---- input

    pub fn on_key(&mut self, key: KeyEvent) -> Action {
        // Terminals that report releases would otherwise act twice.
        if key.kind == KeyEventKind::Release {
            return Action::None;
        }
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            return Action::Quit;
        }
        match self.mode.clone() {
            Mode::Normal => self.key_normal(key),
            Mode::Filter => {
                self.key_filter(key);
                Action::None
            }
            Mode::Help => {
                self.mode = Mode::Normal;
                Action::None
            }
            Mode::Confirm(op) => self.key_confirm(key, op),
            Mode::Profiles(cursor) => self.key_profiles(key, cursor),
        }
    }

    fn key_normal(&mut self, key: KeyEvent) -> Action {
        if let Some(m) = list_move(key.code) {
            let cur = self.selection(self.view).unwrap_or(0);
            self.move_to(m.apply(cur, self.list_len(self.view)));
            return Action::None;
        }
        match key.code {
            KeyCode::Char('q') => return Action::Quit,
            KeyCode::Tab => self.set_view(VIEWS[(self.view.index() + 1) % VIEWS.len()]),
            KeyCode::BackTab => self.set_view(VIEWS[(self.view.index() + VIEWS.len() - 1) % VIEWS.len()]),
            KeyCode::Char(c @ '1'..='6') => self.set_view(VIEWS[(c as usize) - ('1' as usize)]),
            KeyCode::Char('J') => self.detail_scroll = self.detail_scroll.saturating_add(1),
            KeyCode::Char('K') => self.detail_scroll = self.detail_scroll.saturating_sub(1),
            KeyCode::Char('/') => {
                self.mode = Mode::Filter;
                self.filter_selected = !self.filter().is_empty();
            }
            KeyCode::Char('?') => self.mode = Mode::Help,
            KeyCode::Char('p') => self.mode = Mode::Profiles(self.active),
            KeyCode::Char('r') => self.ask(Op::Reload),
            KeyCode::Char('c') => match self.selected_backend() {
                Some(name) => self.ask(Op::Reconnect(name)),
                None => self.notify(NoticeKind::Info, "select a backend (or one of its capabilities) to reconnect"),
            },
            KeyCode::Esc => {
                if self.notice.is_some() {
                    self.notice = None;
                } else {
                    self.set_filter(String::new());
                }
            }
            _ => {}
        }
        Action::None
    }

    /// Typing after `/`. A kept filter starts out selected: the first
    /// character replaces it and Backspace deletes it whole, as in a text
    /// field whose content is selected; → or End deselects it to extend it.
    fn key_filter(&mut self, key: KeyEvent) {
        let replace = std::mem::take(&mut self.filter_selected);
        let mut text = self.filter().to_string();
        match key.code {
            KeyCode::Enter => self.mode = Mode::Normal,
            KeyCode::Esc => {
                self.mode = Mode::Normal;
                text.clear();
            }
            KeyCode::Backspace if replace => text.clear(),
            KeyCode::Backspace => {
                text.pop();
            }
            KeyCode::Char(c) if replace => text = c.to_string(),
            KeyCode::Char(c) => text.push(c),
            KeyCode::Right | KeyCode::End => {}
            // Anything else leaves the selection as it was.
            _ => self.filter_selected = replace,
        }
        self.set_filter(text);
    }

    fn key_confirm(&mut self, key: KeyEvent, op: Op) -> Action {
        match key.code {
            KeyCode::Char('y') | KeyCode::Char('Y') => {
                self.mode = Mode::Normal;
                self.busy = Some(op.clone());
                self.notice = None;
                Action::Run(op)
            }
            KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc | KeyCode::Char('q') => {
                self.mode = Mode::Normal;
                self.notify(NoticeKind::Info, "cancelled");
                Action::None
            }
            _ => Action::None,
        }
    }

    fn key_profiles(&mut self, key: KeyEvent, cursor: usize) -> Action {
        if let Some(m) = list_move(key.code) {
            self.mode = Mode::Profiles(m.apply(cursor, self.profiles.len()));
            return Action::None;
        }
        match key.code {
            KeyCode::Enter => {
                self.mode = Mode::Normal;
                if cursor != self.active && cursor < self.profiles.len() {
                    self.switch_to(cursor);
                    return Action::SwitchProfile(cursor);
                }
            }
            KeyCode::Esc | KeyCode::Char('p') | KeyCode::Char('q') => self.mode = Mode::Normal,
            _ => {}
        }
        Action::None
    }

    /// Asks y/n before `op`, unless it cannot work now: another operation
    /// runs, or the server is known not to answer this client, in which case
    /// the reason is shown at once. A read-only token still gets the
    /// question: the server decides, and says so.
    fn ask(&mut self, op: Op) {
        if let Some(b) = &self.busy {
            let text = format!("{} still running", op_label(b));
            self.notify(NoticeKind::Info, &text);
        } else if let Some(why) = self.op_blocker() {
            let text = format!("cannot {}: {why}", op_label(&op));
            self.notify(NoticeKind::Error, &text);
        } else {
            self.mode = Mode::Confirm(op);
        }
    }

    /// Why an operation sent now would surely fail, from the last poll.
    fn op_blocker(&self) -> Option<String> {
        match &self.conn {
            ConnState::Connected => None,
            ConnState::Connecting => {
                let name = self.profile().map(|p| p.name.as_str()).unwrap_or("-");
                Some(format!("no answer yet from {name}"))
            }
            ConnState::Failed(e) => match e {
                ClientError::Unreachable(m) => Some(format!("server unreachable ({m})")),
                ClientError::Unauthorized(_)
                | ClientError::NotFound(_)
                | ClientError::NoToken(_)
                | ClientError::Config(_) => Some(e.to_string()),
                // The server answers, if badly: an operation may still work
                // (a reload may even be the fix).
                ClientError::Forbidden(_) | ClientError::Server(..) | ClientError::BadJson(_) => None,
            },
        }
    }

    fn notify(&mut self, kind: NoticeKind, text: &str) {
        self.notice = Some(Notice { kind, text: text.to_string() });
    }

    fn set_view(&mut self, v: View) {
        if v != self.view {
            self.view = v;
            self.detail_scroll = 0;
        }
    }

    fn set_filter(&mut self, text: String) {
        let i = self.view.index();
        if self.filters[i] != text {
            self.filters[i] = text;
            self.selected[i] = 0;
            self.detail_scroll = 0;
            if self.view == View::Events {
                self.follow_events = false;
            }
        }
    }

    fn move_to(&mut self, index: usize) {
        let len = self.list_len(self.view);
        let i = self.view.index();
        let target = index.min(len.saturating_sub(1));
        if self.selected[i] != target {
            self.detail_scroll = 0;
        }
        self.selected[i] = target;
        if self.view == View::Events {
            self.follow_events = len == 0 || target + 1 >= len;
        }
    }

    // ---- what the poller reports

    /// Applies a snapshot of the active profile; older profiles' are ignored.
    pub fn apply_snapshot(&mut self, snap: Snapshot) {
        if snap.generation != self.generation {
            return;
        }
        match snap.result {
            Ok(data) => {
                self.conn = ConnState::Connected;
                self.last_ok = Some(snap.at);
                self.data = Some(data);
            }
            Err(e) => self.conn = ConnState::Failed(e),
        }
        self.events = snap.events;
        if self.follow_events {
            self.selected[View::Events.index()] = self.list_len(View::Events).saturating_sub(1);
        }
        for v in VIEWS {
            let len = self.list_len(v);
            self.selected[v.index()] = self.selected[v.index()].min(len.saturating_sub(1));
        }
    }

    /// Shows the outcome of an operation. A result for a profile that is no
    /// longer active is still shown, named, since it did happen.
    pub fn apply_done(&mut self, done: Done) {
        if self.busy.as_ref() == Some(&done.op) {
            self.busy = None;
        }
        let prefix = if done.generation == self.generation { String::new() } else { format!("[{}] ", done.profile) };
        let (kind, text) = match done.result {
            Ok(OpOk::Reload(r)) => {
                let r = r.report;
                let mut parts = vec![format!("reload ok (revision {})", r.revision)];
                for (label, names) in [("added", &r.added), ("removed", &r.removed), ("restarted", &r.restarted)] {
                    parts.push(format!("{label} {}", names_text(names)));
                }
                // Names of what did not change say little; the count is enough.
                parts.push(format!("unchanged {}", r.unchanged.len()));
                (NoticeKind::Success, parts.join(" · "))
            }
            // The server answers ok whenever it made the attempt, even one
            // that failed: the backend's state says how it went.
            Ok(OpOk::Reconnect(r)) => match (r.backend.state.as_str(), &r.backend.last_error) {
                ("failed" | "disconnected", Some(e)) => {
                    (NoticeKind::Error, format!("reconnect {}: tried, now {}: {e}", r.backend.name, r.backend.state))
                }
                _ => (NoticeKind::Success, format!("reconnect {}: ok, now {}", r.backend.name, r.backend.state)),
            },
            Err(ClientError::Forbidden(_)) => {
                (NoticeKind::Error, format!("{}: {READ_ONLY_NOTICE}", op_label(&done.op)))
            }
            Err(e) => (NoticeKind::Error, format!("{} failed: {e}", op_label(&done.op))),
        };
        self.notice = Some(Notice { kind, text: format!("{prefix}{text}") });
    }

    /// Makes profile `i` active: every panel is cleared until its server answers.
    pub fn switch_to(&mut self, i: usize) {
        self.active = i;
        self.generation += 1;
        self.conn = ConnState::Connecting;
        self.last_ok = None;
        self.data = None;
        self.events = Arc::new(Vec::new());
        self.selected = [0; 6];
        self.follow_events = true;
        self.detail_scroll = 0;
        self.busy = None;
        self.notice = None;
    }

    /// The poller of the active profile is gone (it cannot start a thread).
    pub fn poller_failed(&mut self, why: &str) {
        self.conn = ConnState::Failed(ClientError::Config(why.to_string()));
        self.busy = None;
    }
}

/// A movement key in a list: the views' lists and the popup lists alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Move {
    By(isize),
    First,
    Last,
}

impl Move {
    /// The row `cursor` moves to in a list of `len` rows.
    fn apply(self, cursor: usize, len: usize) -> usize {
        let last = len.saturating_sub(1);
        match self {
            Move::By(d) => cursor.saturating_add_signed(d).min(last),
            Move::First => 0,
            Move::Last => last,
        }
    }
}

/// ↑ ↓ j k, PgUp PgDn, Home End g G.
fn list_move(code: KeyCode) -> Option<Move> {
    Some(match code {
        KeyCode::Down | KeyCode::Char('j') => Move::By(1),
        KeyCode::Up | KeyCode::Char('k') => Move::By(-1),
        KeyCode::PageDown => Move::By(PAGE as isize),
        KeyCode::PageUp => Move::By(-(PAGE as isize)),
        KeyCode::Home | KeyCode::Char('g') => Move::First,
        KeyCode::End | KeyCode::Char('G') => Move::Last,
        _ => return None,
    })
}

/// "reload" / "reconnect NAME", for messages.
pub fn op_label(op: &Op) -> String {
    match op {
        Op::Reload => "reload".to_string(),
        Op::Reconnect(n) => format!("reconnect {n}"),
    }
}

fn names_text(n: &Names) -> String {
    match n {
        Names::List(v) if v.is_empty() => "-".to_string(),
        Names::List(v) if v.len() <= 4 => v.join(", "),
        Names::List(v) => format!("{} ({}, …)", v.len(), v[..3].join(", ")),
        Names::Count(c) => c.to_string(),
    }
}

/// Case-insensitive substring match on any field; an empty filter matches all.
fn matches(filter: &str, fields: &[&str]) -> bool {
    if filter.is_empty() {
        return true;
    }
    let f = filter.to_lowercase();
    fields.iter().any(|s| s.to_lowercase().contains(&f))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::api::{BackendList, Capabilities, EventList, ReconnectResult, ReloadResult, Status};

    pub fn fixture<T: serde::de::DeserializeOwned>(name: &str) -> T {
        let path = format!("{}/tests/fixtures/manage/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        serde_json::from_str(&text).unwrap()
    }

    pub fn data() -> Data {
        Data {
            status: fixture::<Status>("status.json"),
            backends: fixture::<BackendList>("backends.json").backends,
            capabilities: Arc::new(fixture::<Capabilities>("capabilities.json")),
        }
    }

    pub fn events() -> Arc<Vec<api::Event>> {
        Arc::new(fixture::<EventList>("events.json").events)
    }

    pub fn profiles() -> Vec<ProfileEntry> {
        vec![
            ProfileEntry { name: "local".into(), url: "http://127.0.0.1:9001".into() },
            ProfileEntry { name: "staging".into(), url: "https://staging.example.com:9001".into() },
        ]
    }

    pub fn snapshot(generation: u64, result: Result<Data, ClientError>) -> Snapshot {
        Snapshot {
            generation,
            at: std::time::UNIX_EPOCH + Duration::from_secs(1_795_519_373),
            result,
            events: events(),
        }
    }

    /// An app connected to the fixture server.
    pub fn connected() -> App {
        let mut app = App::new(profiles(), 0, Duration::from_secs(1));
        app.apply_snapshot(snapshot(0, Ok(data())));
        app
    }

    pub fn key(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    pub fn ch(c: char) -> KeyEvent {
        key(KeyCode::Char(c))
    }

    #[test]
    fn views_switch_by_number_and_tab() {
        let mut app = connected();
        assert_eq!(app.view, View::Backends);
        app.on_key(ch('3'));
        assert_eq!(app.view, View::Resources);
        app.on_key(key(KeyCode::Tab));
        assert_eq!(app.view, View::Templates);
        app.on_key(key(KeyCode::BackTab));
        app.on_key(key(KeyCode::BackTab));
        assert_eq!(app.view, View::Tools);
        app.on_key(ch('1'));
        app.on_key(key(KeyCode::BackTab));
        assert_eq!(app.view, View::Events);
    }

    #[test]
    fn movement_is_clamped() {
        let mut app = connected();
        app.on_key(ch('k'));
        assert_eq!(app.selection(View::Backends), Some(0));
        for _ in 0..10 {
            app.on_key(ch('j'));
        }
        assert_eq!(app.selection(View::Backends), Some(3));
        app.on_key(ch('g'));
        assert_eq!(app.selection(View::Backends), Some(0));
        app.on_key(key(KeyCode::End));
        assert_eq!(app.selection(View::Backends), Some(3));
        app.on_key(key(KeyCode::PageUp));
        assert_eq!(app.selection(View::Backends), Some(0));
    }

    #[test]
    fn quit_keys() {
        let mut app = connected();
        assert_eq!(app.on_key(ch('q')), Action::Quit);
        assert_eq!(app.on_key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)), Action::Quit);
        // In the filter, q is just a letter.
        app.on_key(ch('/'));
        assert_eq!(app.on_key(ch('q')), Action::None);
        assert_eq!(app.filter(), "q");
    }

    #[test]
    fn filter_narrows_and_escape_clears() {
        let mut app = connected();
        app.on_key(ch('2'));
        app.on_key(ch('/'));
        for c in "GIT".chars() {
            app.on_key(ch(c));
        }
        let names: Vec<_> = app.tools().iter().map(|t| t.name.clone()).collect();
        assert_eq!(names, ["create_issue", "search_code"]);
        app.on_key(key(KeyCode::Backspace));
        assert_eq!(app.filter(), "GI");
        app.on_key(key(KeyCode::Enter));
        assert_eq!(app.mode, Mode::Normal);
        assert_eq!(app.tools().len(), 2, "the filter stays after Enter");
        // Filters are per view.
        app.on_key(ch('1'));
        assert_eq!(app.backends().len(), 4);
        app.on_key(ch('2'));
        app.on_key(key(KeyCode::Esc));
        assert_eq!(app.tools().len(), 4);
    }

    #[test]
    fn slash_replaces_a_kept_filter() {
        let mut app = connected();
        app.on_key(ch('2'));
        app.on_key(ch('/'));
        assert!(!app.filter_selected, "nothing to select yet");
        for c in "alpha".chars() {
            app.on_key(ch(c));
        }
        app.on_key(key(KeyCode::Enter));
        // `/` again: the kept text is selected, and typing replaces it.
        app.on_key(ch('/'));
        assert!(app.filter_selected);
        assert_eq!(app.filter(), "alpha", "the old filter applies until replaced");
        for c in "echo".chars() {
            app.on_key(ch(c));
        }
        assert_eq!(app.filter(), "echo");
        assert!(!app.filter_selected);
        assert_eq!(app.tools().len(), 1);
        app.on_key(key(KeyCode::Enter));
        // Enter at once keeps it; → extends it; Backspace deletes it whole.
        app.on_key(ch('/'));
        app.on_key(key(KeyCode::Enter));
        assert_eq!((app.filter(), &app.mode), ("echo", &Mode::Normal));
        app.on_key(ch('/'));
        app.on_key(key(KeyCode::Right));
        app.on_key(ch('x'));
        assert_eq!(app.filter(), "echox");
        app.on_key(key(KeyCode::Enter));
        app.on_key(ch('/'));
        app.on_key(key(KeyCode::Backspace));
        assert_eq!(app.filter(), "");
        app.on_key(ch('e'));
        assert_eq!(app.filter(), "e");
    }

    #[test]
    fn reload_needs_confirmation() {
        let mut app = connected();
        assert_eq!(app.on_key(ch('r')), Action::None);
        assert_eq!(app.mode, Mode::Confirm(Op::Reload));
        assert_eq!(app.on_key(ch('n')), Action::None);
        assert_eq!(app.mode, Mode::Normal);
        assert_eq!(app.notice.as_ref().map(|n| n.text.as_str()), Some("cancelled"));
        app.on_key(ch('r'));
        assert_eq!(app.on_key(ch('x')), Action::None, "other keys keep the question open");
        assert_eq!(app.on_key(ch('y')), Action::Run(Op::Reload));
        assert_eq!(app.busy, Some(Op::Reload));
        // A second operation waits for the first.
        app.on_key(ch('r'));
        assert_eq!(app.mode, Mode::Normal);
        assert!(app.notice.as_ref().is_some_and(|n| n.text.contains("still running")));
    }

    #[test]
    fn operations_on_a_server_that_does_not_answer_say_why_at_once() {
        // Unreachable, with the last data still shown.
        let mut app = connected();
        app.apply_snapshot(snapshot(0, Err(ClientError::Unreachable("connection refused".into()))));
        assert_eq!(app.on_key(ch('r')), Action::None);
        assert_eq!(app.mode, Mode::Normal, "no y/n question");
        let n = app.notice.clone().unwrap();
        assert_eq!(
            (n.kind, n.text.as_str()),
            (NoticeKind::Error, "cannot reload: server unreachable (connection refused)")
        );
        app.on_key(ch('c'));
        assert_eq!(app.mode, Mode::Normal);
        assert_eq!(
            app.notice.clone().unwrap().text,
            "cannot reconnect github: server unreachable (connection refused)"
        );
        // No token to send.
        let mut app = App::new(profiles(), 0, Duration::from_secs(1));
        let no_token = ClientError::NoToken("environment variable T is not set".into());
        app.apply_snapshot(snapshot(0, Err(no_token)));
        app.on_key(ch('r'));
        assert_eq!(app.mode, Mode::Normal);
        assert_eq!(app.notice.clone().unwrap().text, "cannot reload: no token: environment variable T is not set");
        // No answer yet.
        let mut app = App::new(profiles(), 1, Duration::from_secs(1));
        app.on_key(ch('r'));
        assert_eq!(app.notice.clone().unwrap().text, "cannot reload: no answer yet from staging");
        // A server that answers gets the question, whatever the token's
        // scope: the server decides.
        let mut app = connected();
        app.apply_snapshot(snapshot(0, Err(ClientError::Server(500, "boom".into()))));
        app.on_key(ch('r'));
        assert_eq!(app.mode, Mode::Confirm(Op::Reload));
    }

    #[test]
    fn reconnect_targets_the_selected_backend() {
        let mut app = connected();
        app.on_key(ch('j'));
        app.on_key(ch('j'));
        app.on_key(ch('c'));
        assert_eq!(app.mode, Mode::Confirm(Op::Reconnect("weather".into())));
        assert_eq!(app.on_key(ch('y')), Action::Run(Op::Reconnect("weather".into())));
        // From the tools view, the owner of the selected tool.
        let mut app = connected();
        app.on_key(ch('2'));
        app.on_key(key(KeyCode::End));
        app.on_key(ch('c'));
        assert_eq!(app.mode, Mode::Confirm(Op::Reconnect("files".into())));
        // An event without a backend has nothing to reconnect.
        let mut app = connected();
        app.on_key(ch('6'));
        app.on_key(ch('c'));
        assert_eq!(app.mode, Mode::Normal);
        assert!(app.notice.is_some());
    }

    #[test]
    fn results_are_reported() {
        let mut app = connected();
        app.on_key(ch('r'));
        app.on_key(ch('y'));
        let r: ReloadResult = fixture("reload.json");
        app.apply_done(Done { generation: 0, profile: "local".into(), op: Op::Reload, result: Ok(OpOk::Reload(r)) });
        assert_eq!(app.busy, None);
        let n = app.notice.clone().unwrap();
        assert_eq!(n.kind, NoticeKind::Success);
        assert_eq!(n.text, "reload ok (revision 4) · added search · removed legacy · restarted files · unchanged 2");
        let r: ReconnectResult = fixture("reconnect.json");
        let op = Op::Reconnect("weather".into());
        app.apply_done(Done { generation: 0, profile: "local".into(), op, result: Ok(OpOk::Reconnect(r)) });
        assert_eq!(app.notice.clone().unwrap().text, "reconnect weather: ok, now connecting");
        let mut r: ReconnectResult = fixture("reconnect.json");
        r.backend.state = "failed".into();
        r.backend.last_error = Some("connection refused".into());
        let op = Op::Reconnect("weather".into());
        app.apply_done(Done { generation: 0, profile: "local".into(), op, result: Ok(OpOk::Reconnect(r)) });
        let n = app.notice.clone().unwrap();
        assert_eq!(
            (n.kind, n.text.as_str()),
            (NoticeKind::Error, "reconnect weather: tried, now failed: connection refused")
        );
        let forbidden = Err(ClientError::Forbidden("token lacks admin".into()));
        app.apply_done(Done { generation: 0, profile: "local".into(), op: Op::Reload, result: forbidden });
        let n = app.notice.clone().unwrap();
        assert_eq!((n.kind, n.text.as_str()), (NoticeKind::Error, "reload: read-only token: admin scope needed"));
        // The result of a profile left meanwhile is named.
        app.switch_to(1);
        let err = Err(ClientError::Unreachable("connection refused".into()));
        app.apply_done(Done { generation: 0, profile: "local".into(), op: Op::Reload, result: err });
        assert_eq!(app.notice.clone().unwrap().text, "[local] reload failed: unreachable: connection refused");
    }

    #[test]
    fn switching_profile_clears_and_ignores_stale_snapshots() {
        let mut app = connected();
        app.on_key(ch('p'));
        assert_eq!(app.mode, Mode::Profiles(0));
        app.on_key(ch('j'));
        app.on_key(ch('j'));
        assert_eq!(app.mode, Mode::Profiles(1), "the cursor stops at the last profile");
        assert_eq!(app.on_key(key(KeyCode::Enter)), Action::SwitchProfile(1));
        assert_eq!((app.active, app.generation), (1, 1));
        assert!(app.data.is_none() && app.events.is_empty());
        assert_eq!(app.conn, ConnState::Connecting);
        app.apply_snapshot(snapshot(0, Ok(data())));
        assert!(app.data.is_none(), "a snapshot of the old profile is dropped");
        app.apply_snapshot(snapshot(1, Err(ClientError::Unauthorized("bad token".into()))));
        assert_eq!(app.conn, ConnState::Failed(ClientError::Unauthorized("bad token".into())));
        // Choosing the active profile again changes nothing.
        app.on_key(ch('p'));
        assert_eq!(app.on_key(key(KeyCode::Enter)), Action::None);
        assert_eq!(app.generation, 1);
    }

    #[test]
    fn profile_selector_moves_like_a_list() {
        let mut app = App::new(
            (0..15).map(|i| ProfileEntry { name: format!("p{i}"), url: format!("http://h{i}:9001") }).collect(),
            0,
            Duration::from_secs(1),
        );
        app.on_key(ch('p'));
        for (k, want) in [
            (ch('j'), 1),
            (key(KeyCode::Down), 2),
            (ch('k'), 1),
            (key(KeyCode::Up), 0),
            (ch('k'), 0),
            (key(KeyCode::PageDown), 10),
            (ch('G'), 14),
            (ch('j'), 14),
            (key(KeyCode::PageUp), 4),
            (ch('g'), 0),
            (key(KeyCode::End), 14),
            (key(KeyCode::Home), 0),
        ] {
            app.on_key(k);
            assert_eq!(app.mode, Mode::Profiles(want), "after {k:?}");
        }
        app.on_key(ch('j'));
        assert_eq!(app.on_key(key(KeyCode::Enter)), Action::SwitchProfile(1));
    }

    #[test]
    fn switching_resets_every_list() {
        let mut app = connected();
        for v in ['1', '2', '3', '5'] {
            app.on_key(ch(v));
            app.on_key(key(KeyCode::End));
        }
        app.on_key(ch('6'));
        app.on_key(ch('g'));
        assert!(!app.follow_events);
        app.switch_to(1);
        app.apply_snapshot(snapshot(1, Ok(data())));
        for v in [View::Backends, View::Tools, View::Resources, View::Prompts] {
            assert_eq!(app.selection(v), Some(0), "{v:?}");
        }
        assert!(app.follow_events, "the new log is followed");
        assert_eq!(app.selection(View::Events), Some(6));
    }

    #[test]
    fn failure_keeps_stale_data() {
        let mut app = connected();
        app.apply_snapshot(snapshot(0, Err(ClientError::Unreachable("connection refused".into()))));
        assert!(app.data.is_some());
        assert!(matches!(app.conn, ConnState::Failed(_)));
        assert!(app.last_ok.is_some());
    }

    #[test]
    fn events_follow_the_newest_until_moved() {
        let mut app = connected();
        app.on_key(ch('6'));
        assert_eq!(app.selection(View::Events), Some(6));
        app.on_key(ch('k'));
        assert!(!app.follow_events);
        let mut more = (*events()).clone();
        more.push(api::Event { id: 8, message: "new".into(), ..Default::default() });
        let mut s = snapshot(0, Ok(data()));
        s.events = Arc::new(more.clone());
        app.apply_snapshot(s);
        assert_eq!(app.selection(View::Events), Some(5), "not following: selection stays");
        app.on_key(key(KeyCode::End));
        assert!(app.follow_events);
        more.push(api::Event { id: 9, message: "newer".into(), ..Default::default() });
        let mut s = snapshot(0, Ok(data()));
        s.events = Arc::new(more);
        app.apply_snapshot(s);
        assert_eq!(app.selection(View::Events), Some(8));
    }

    #[test]
    fn help_closes_on_any_key() {
        let mut app = connected();
        app.on_key(ch('?'));
        assert_eq!(app.mode, Mode::Help);
        assert_eq!(app.on_key(ch('q')), Action::None, "q closes help, it does not quit");
        assert_eq!(app.mode, Mode::Normal);
    }

    #[test]
    fn release_events_are_ignored() {
        let mut app = connected();
        let mut k = ch('2');
        k.kind = KeyEventKind::Release;
        app.on_key(k);
        assert_eq!(app.view, View::Backends);
    }
}
