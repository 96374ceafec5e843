//! The keyboard: what each key does in each [`Mode`], as changes to the
//! [`App`] and an [`Action`] for the event loop. Pure, like the rest of the
//! state; runs on the TUI's main thread.

use super::{cmd_for, op_label, Action, App, Cmd, ConnState, KeyMap, Mode, Notice, NoticeKind, View, VIEWS};
use crate::client::ClientError;
use crate::tui::poll::Op;
use crate::tui::theme::{Theme, THEME_NAMES};
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

/// Rows a PageUp/PageDown moves; the view's real height is not known here.
const PAGE: usize = 10;

impl App {
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
            Mode::Palette { query, cursor } => self.key_palette(key, query, cursor),
            Mode::Themes(cursor) => self.key_themes(key, cursor),
        }
    }

    fn key_normal(&mut self, key: KeyEvent) -> Action {
        if let Some(m) = list_move(key.code) {
            if !key.modifiers.contains(KeyModifiers::CONTROL) {
                let cur = self.selection(self.view).unwrap_or(0);
                self.move_to(m.apply(cur, self.list_len(self.view)));
                return Action::None;
            }
        }
        match cmd_for(self.keys, &key) {
            Some(cmd) => self.run_cmd(cmd),
            None => Action::None,
        }
    }

    /// Carries out one action of the table ([`super::ACTIONS`]), from its key or
    /// from the palette.
    pub fn run_cmd(&mut self, cmd: Cmd) -> Action {
        self.mode = Mode::Normal;
        match cmd {
            Cmd::Quit => return Action::Quit,
            Cmd::View(v) => self.set_view(v),
            Cmd::NextView => self.set_view(VIEWS[(self.view.index() + 1) % VIEWS.len()]),
            Cmd::PrevView => self.set_view(VIEWS[(self.view.index() + VIEWS.len() - 1) % VIEWS.len()]),
            Cmd::DetailDown => self.detail_scroll = self.detail_scroll.saturating_add(1),
            Cmd::DetailUp => self.detail_scroll = self.detail_scroll.saturating_sub(1),
            Cmd::Filter => {
                self.mode = Mode::Filter;
                self.filter_selected = !self.filter().is_empty();
            }
            Cmd::Help => self.mode = Mode::Help,
            Cmd::Palette => self.mode = Mode::Palette { query: String::new(), cursor: 0 },
            Cmd::Profiles => self.mode = Mode::Profiles(self.active),
            Cmd::Reload => self.ask(Op::Reload),
            Cmd::Reconnect => match self.selected_backend() {
                Some(name) => self.ask(Op::Reconnect(name)),
                None => self.notify(NoticeKind::Info, "select a backend (or one of its capabilities) to reconnect"),
            },
            Cmd::ClearMessage => {
                if self.notice.is_some() {
                    self.notice = None;
                } else {
                    self.set_filter(String::new());
                }
            }
            Cmd::NextTheme => return self.set_theme(self.theme.next()),
            Cmd::ThemePicker => {
                let i = THEME_NAMES.iter().position(|n| *n == self.theme.name).unwrap_or(0);
                self.mode = Mode::Themes(i);
            }
            Cmd::ToggleKeys => {
                self.keys = match self.keys {
                    KeyMap::Default => KeyMap::Classic,
                    KeyMap::Classic => KeyMap::Default,
                };
                let text = match self.keys {
                    KeyMap::Classic => "key map classic: t r p = tools, resources, prompts; R reload, P profiles",
                    KeyMap::Default => "key map default: r reload, p profiles (R, P too); t tools",
                };
                self.notify(NoticeKind::Info, text);
                return Action::SaveSettings;
            }
        }
        Action::None
    }

    fn set_theme(&mut self, theme: Theme) -> Action {
        let text = format!("theme {}", theme.name);
        self.theme = theme;
        self.notify(NoticeKind::Info, &text);
        Action::SaveSettings
    }

    /// The palette: typing filters the actions, ↑ ↓ move, Enter runs the
    /// one under the cursor, Esc closes. Letters are text here, so `j` `k`
    /// do not move.
    fn key_palette(&mut self, key: KeyEvent, mut query: String, cursor: usize) -> Action {
        let len = self.palette_matches(&query).len();
        let cursor = match key.code {
            KeyCode::Esc => {
                self.mode = Mode::Normal;
                return Action::None;
            }
            KeyCode::Enter => {
                self.mode = Mode::Normal;
                return match self.palette_matches(&query).get(cursor.min(len.saturating_sub(1))) {
                    Some(a) => self.run_cmd(a.cmd),
                    None => Action::None,
                };
            }
            KeyCode::Up => cursor.saturating_sub(1),
            KeyCode::Down => (cursor + 1).min(len.saturating_sub(1)),
            KeyCode::PageUp | KeyCode::Home => 0,
            KeyCode::PageDown | KeyCode::End => len.saturating_sub(1),
            KeyCode::Backspace => {
                query.pop();
                0
            }
            KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => {
                query.push(c);
                0
            }
            _ => cursor,
        };
        self.mode = Mode::Palette { query, cursor };
        Action::None
    }

    /// The theme picker: ↑ ↓ j k move, Enter picks (and remembers), Esc,
    /// `T` or `q` close.
    fn key_themes(&mut self, key: KeyEvent, cursor: usize) -> Action {
        if let Some(m) = list_move(key.code) {
            self.mode = Mode::Themes(m.apply(cursor, THEME_NAMES.len()));
            return Action::None;
        }
        match key.code {
            KeyCode::Enter => {
                self.mode = Mode::Normal;
                if let Some(t) = THEME_NAMES.get(cursor).and_then(|n| Theme::named(n)) {
                    return self.set_theme(t);
                }
            }
            KeyCode::Esc | KeyCode::Char('T') | KeyCode::Char('q') => self.mode = Mode::Normal,
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
            KeyCode::Esc | KeyCode::Char('p' | 'P' | 'q') => self.mode = Mode::Normal,
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

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::ProfileEntry;
    use super::*;
    use std::time::Duration;

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

    fn ctrl(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
    }

    fn typed(app: &mut App, text: &str) {
        for c in text.chars() {
            app.on_key(ch(c));
        }
    }

    #[test]
    fn default_map_t_is_tools_and_capitals_reach_reload_and_profiles() {
        let mut app = connected();
        assert_eq!(app.keys, KeyMap::Default);
        app.on_key(ch('t'));
        assert_eq!(app.view, View::Tools);
        app.on_key(ch('R'));
        assert_eq!(app.mode, Mode::Confirm(Op::Reload));
        app.on_key(key(KeyCode::Esc));
        app.on_key(ch('P'));
        assert_eq!(app.mode, Mode::Profiles(0));
        app.on_key(ch('P'));
        assert_eq!(app.mode, Mode::Normal, "P closes the selector too");
        app.on_key(ch('r'));
        assert_eq!(app.mode, Mode::Confirm(Op::Reload), "r still reloads");
    }

    #[test]
    fn classic_map_t_r_p_are_the_views() {
        let mut app = connected();
        app.keys = KeyMap::Classic;
        for (c, v) in [('t', View::Tools), ('r', View::Resources), ('p', View::Prompts), ('1', View::Backends)] {
            assert_eq!(app.on_key(ch(c)), Action::None);
            assert_eq!((app.view, &app.mode), (v, &Mode::Normal), "{c}");
        }
        app.on_key(ch('R'));
        assert_eq!(app.mode, Mode::Confirm(Op::Reload));
        assert_eq!(app.on_key(ch('y')), Action::Run(Op::Reload));
        app.on_key(ch('P'));
        assert_eq!(app.mode, Mode::Profiles(0));
        app.on_key(key(KeyCode::Esc));
        // The rest is as in the default map.
        app.on_key(ch('6'));
        assert_eq!(app.view, View::Events);
        assert_eq!(app.on_key(ch('q')), Action::Quit);
    }

    #[test]
    fn palette_filters_and_runs() {
        let mut app = connected();
        assert_eq!(app.on_key(ctrl('p')), Action::None);
        assert_eq!(app.mode, Mode::Palette { query: String::new(), cursor: 0 });
        assert_eq!(app.palette_matches("").len(), super::super::ACTIONS.len(), "every action is listed");
        typed(&mut app, "tools");
        assert_eq!(app.palette_matches("tools")[0].cmd, Cmd::View(View::Tools));
        assert_eq!(app.on_key(key(KeyCode::Enter)), Action::None);
        assert_eq!((app.view, &app.mode), (View::Tools, &Mode::Normal));
        // Letters are text in the palette: q does not quit, j does not move.
        app.on_key(ctrl('p'));
        typed(&mut app, "qj");
        assert!(matches!(&app.mode, Mode::Palette { query, .. } if query == "qj"));
        app.on_key(key(KeyCode::Esc));
        assert_eq!(app.mode, Mode::Normal);
        // ↓ picks the second match; Backspace edits.
        app.on_key(ctrl('p'));
        typed(&mut app, "view:x");
        app.on_key(key(KeyCode::Backspace));
        app.on_key(key(KeyCode::Down));
        app.on_key(key(KeyCode::Enter));
        assert_eq!(app.view, View::Tools, "view: backends, then view: tools");
        // Operations go through their usual checks.
        app.on_key(ctrl('p'));
        typed(&mut app, "reload");
        app.on_key(key(KeyCode::Enter));
        assert_eq!(app.mode, Mode::Confirm(Op::Reload));
        app.on_key(ch('n'));
        // Quit, by name; no match runs nothing.
        app.on_key(ctrl('p'));
        typed(&mut app, "zzz");
        assert_eq!(app.on_key(key(KeyCode::Enter)), Action::None);
        app.on_key(ctrl('p'));
        typed(&mut app, "quit");
        assert_eq!(app.on_key(key(KeyCode::Enter)), Action::Quit);
    }

    #[test]
    fn palette_reaches_the_classic_meanings_and_switches_the_map() {
        let mut app = connected();
        app.on_key(ctrl('p'));
        typed(&mut app, "key map");
        assert_eq!(app.on_key(key(KeyCode::Enter)), Action::SaveSettings);
        assert_eq!(app.keys, KeyMap::Classic);
        app.on_key(ch('p'));
        assert_eq!(app.view, View::Prompts);
        // In the palette, a key finds its action first.
        assert_eq!(app.palette_matches("p")[0].cmd, Cmd::View(View::Prompts));
        assert_eq!(app.palette_matches("P")[0].cmd, Cmd::Profiles);
        assert_eq!(app.palette_matches("ctrl-p")[0].cmd, Cmd::Palette);
    }

    #[test]
    fn themes_cycle_and_are_picked() {
        let mut app = connected();
        assert_eq!(app.theme.name, "default");
        assert_eq!(app.on_key(ch('n')), Action::SaveSettings);
        assert_eq!(app.theme.name, "light");
        assert_eq!(app.notice.as_ref().map(|n| n.text.as_str()), Some("theme light"));
        app.on_key(ch('T'));
        assert_eq!(app.mode, Mode::Themes(1), "the picker starts on the theme in use");
        app.on_key(ch('j'));
        assert_eq!(app.on_key(key(KeyCode::Enter)), Action::SaveSettings);
        assert_eq!((app.theme.name, &app.mode), ("high-contrast", &Mode::Normal));
        app.on_key(ch('T'));
        app.on_key(ch('G'));
        assert_eq!(app.on_key(key(KeyCode::Esc)), Action::None, "Esc picks nothing");
        assert_eq!(app.theme.name, "high-contrast");
        for _ in 0..THEME_NAMES.len() {
            app.on_key(ch('n'));
        }
        assert_eq!(app.theme.name, "high-contrast", "n goes round");
        // From the palette.
        app.on_key(ctrl('p'));
        typed(&mut app, "next theme");
        assert_eq!(app.on_key(key(KeyCode::Enter)), Action::SaveSettings);
        assert_eq!(app.theme.name, "solarized");
    }
}
