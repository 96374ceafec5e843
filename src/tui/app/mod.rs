//! The TUI's state and its pure transitions: a key, a snapshot or an
//! action's result goes in, the state changes, and an [`Action`] for the
//! event loop may come out. No I/O, no terminal, no threads: everything here
//! is unit-tested directly. Runs on the TUI's main thread.
//!
//! This file holds the state, the filtered lists that key handling and
//! rendering share, and what the poller reports (snapshots, operations'
//! results, a profile switch); `keys.rs` turns keys into state changes and
//! [`Action`]s.

mod actions;
mod keys;
#[cfg(test)]
pub(crate) mod testing;

pub use actions::{cmd_for, def_of, ActionDef, Cmd, KeyMap, ACTIONS};

use super::poll::{Data, Done, Op, OpOk, Snapshot};
use super::settings::Settings;
use super::theme::Theme;
use crate::api::{self, BackendView, Names, Prompt, Resource, ResourceTemplate, Tool};
use crate::client::ClientError;
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
    /// The command palette (Ctrl-P): the text typed and the cursor in the
    /// actions it matches.
    Palette {
        query: String,
        cursor: usize,
    },
    /// The theme picker (`T`), with its cursor in [`crate::tui::theme::THEME_NAMES`].
    Themes(usize),
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
    /// Write [`App::settings`] to `tui.json` (the theme or key map changed).
    SaveSettings,
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
    /// The colours everything is drawn with.
    pub theme: Theme,
    /// Which keys do what.
    pub keys: KeyMap,
    /// The legacy combined mode (`run_attached`): the server runs in this
    /// process, and quitting the TUI stops it. Otherwise (`mcp-sentinel
    /// tui`) quitting never stops a server.
    pub combined: bool,
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
            theme: Theme::default(),
            keys: KeyMap::Default,
            combined: false,
        }
    }

    /// What `tui.json` keeps of this state.
    pub fn settings(&self) -> Settings {
        Settings { theme: self.theme.clone(), keys: self.keys }
    }

    /// Starts with remembered settings.
    pub fn apply_settings(&mut self, s: Settings) {
        self.theme = s.theme;
        self.keys = s.keys;
    }

    /// What quitting does, in words, for the help and the palette.
    pub fn quit_label(&self) -> &'static str {
        if self.combined {
            "quit: STOPS the server (combined mode)"
        } else {
            "quit (the server keeps running)"
        }
    }

    /// The palette's rows for `query`: the actions whose name contains it
    /// (case-insensitive) or one of whose keys it is; those of that key
    /// first, then in the table's order.
    pub fn palette_matches(&self, query: &str) -> Vec<&'static ActionDef> {
        let raw = query.trim();
        let q = raw.to_lowercase();
        let rank = |a: &ActionDef| {
            let keys: Vec<String> = a.keys(self.keys).iter().map(|k| k.label()).collect();
            if q.is_empty() || keys.iter().any(|k| k == raw) {
                Some(0)
            } else if keys.iter().any(|k| k.to_lowercase() == q) {
                Some(1)
            } else if a.name.to_lowercase().contains(&q) {
                Some(2)
            } else {
                None
            }
        };
        let mut found: Vec<(u8, &'static ActionDef)> = ACTIONS.iter().filter_map(|a| rank(a).map(|r| (r, a))).collect();
        // Stable: the table's order within a rank.
        found.sort_by_key(|(r, _)| *r);
        found.into_iter().map(|(_, a)| a).collect()
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
mod tests {
    use super::testing::*;
    use super::*;
    use crate::api::{ReconnectResult, ReloadResult};
    use crossterm::event::KeyCode;

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
}
