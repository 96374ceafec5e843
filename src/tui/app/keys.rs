//! The keyboard: what each key does in each [`Mode`], as changes to the
//! [`App`] and an [`Action`] for the event loop. Pure, like the rest of the
//! state; runs on the TUI's main thread.

use super::{op_label, Action, App, ConnState, Mode, Notice, NoticeKind, View, VIEWS};
use crate::client::ClientError;
use crate::tui::poll::Op;
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
}
