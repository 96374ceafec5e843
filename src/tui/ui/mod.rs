//! Rendering: functions of the [`App`] state onto a ratatui frame. Nothing
//! here changes the state; the only `&mut` beside the frame is ratatui's
//! per-table scroll state, kept in [`TableStates`] so a list scrolls
//! smoothly instead of jumping. Runs on the TUI's main thread.
//!
//! Layout, top to bottom: a two-line header (profile, URL, connection
//! state), the view tabs, the current view, and a one-line footer (key
//! hints, the filter being typed, or the last operation's outcome): those
//! are drawn here, each view by its own module, the popups by
//! `overlays.rs`. Everything fits 80×24; wider or taller terminals get more
//! columns and rows. Table columns are sized by their content
//! (`table.rs`), and text cut to fit ends with `…` (`text.rs`), so a cut is
//! never mistaken for the whole.

mod backends;
mod catalog;
mod connection;
mod events;
mod overlays;
mod style;
mod table;
#[cfg(test)]
mod testing;
mod text;

use super::app::{op_label, App, ConnState, Mode, NoticeKind, View, VIEWS};
use backends::render_backends;
use catalog::{render_prompts, render_resources, render_templates, render_tools};
use connection::{conn_label, render_no_data};
use events::render_events;
use overlays::{render_confirm, render_help, render_profiles};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, TableState, Tabs};
use ratatui::Frame;
use text::{clock, fit_line, seconds};

/// Scroll state of each view's table (index: [`View::index`]), plus the
/// profile selector's, for one profile: a switch starts them over.
#[derive(Default)]
pub struct TableStates {
    /// The [`App::generation`] these states belong to.
    generation: u64,
    views: [TableState; 6],
    profiles: TableState,
}

pub fn render(app: &App, tables: &mut TableStates, f: &mut Frame<'_>) {
    if tables.generation != app.generation {
        // Another server's lists: the old scroll offsets mean nothing here.
        *tables = TableStates { generation: app.generation, ..TableStates::default() };
    }
    let [header, tabs, body, footer] =
        Layout::vertical([Constraint::Length(2), Constraint::Length(1), Constraint::Fill(1), Constraint::Length(1)])
            .areas(f.area());
    render_header(app, f, header);
    render_tabs(app, f, tabs);
    match &app.data {
        None => render_no_data(app, f, body),
        Some(data) => {
            let state = &mut tables.views[app.view.index()];
            state.select(app.selection(app.view));
            match app.view {
                View::Backends => render_backends(app, data, state, f, body),
                View::Tools => render_tools(app, data, state, f, body),
                View::Resources => render_resources(app, data, state, f, body),
                View::Templates => render_templates(app, data, state, f, body),
                View::Prompts => render_prompts(app, data, state, f, body),
                View::Events => render_events(app, state, f, body),
            }
        }
    }
    render_footer(app, f, footer);
    match &app.mode {
        Mode::Help => render_help(f),
        Mode::Confirm(op) => render_confirm(app, op, f),
        Mode::Profiles(cursor) => render_profiles(app, *cursor, &mut tables.profiles, f),
        Mode::Normal | Mode::Filter => {}
    }
}

// ---- header, tabs, footer

fn render_header(app: &App, f: &mut Frame<'_>, area: Rect) {
    let (name, url) = app.profile().map(|p| (p.name.as_str(), p.url.as_str())).unwrap_or(("-", "-"));
    let line1 = Line::from(vec![
        Span::styled(" mcp-sentinel ", Style::new().bold().reversed()),
        Span::raw("  profile "),
        Span::styled(name, Style::new().bold().fg(Color::Cyan)),
        Span::raw("  "),
        Span::raw(url),
    ]);
    let line1 = fit_line(line1, area.width);
    let updated = app.last_ok.map(clock).unwrap_or_default();
    let interval = format!("every {}", seconds(app.interval.as_secs_f64()));
    let line2 = match &app.conn {
        ConnState::Connecting => Line::from(vec![
            Span::styled(" … connecting", Style::new().fg(Color::Yellow)),
            Span::raw(format!("  ({interval})")),
        ]),
        ConnState::Connected => Line::from(vec![
            Span::styled(" ● connected", Style::new().fg(Color::Green).bold()),
            Span::raw(format!("  updated {updated}  ({interval})")),
        ]),
        ConnState::Failed(e) => {
            let mut spans = vec![Span::styled(format!(" ✖ {}", conn_label(e)), Style::new().fg(Color::Red).bold())];
            if app.last_ok.is_some() {
                spans.push(Span::raw(format!("  showing data from {updated}")));
            }
            Line::from(spans)
        }
    };
    f.render_widget(Paragraph::new(vec![line1, fit_line(line2, area.width)]), area);
}

fn render_tabs(app: &App, f: &mut Frame<'_>, area: Rect) {
    let titles: Vec<Line<'_>> = VIEWS.iter().map(|v| Line::from(format!("{} {}", v.index() + 1, v.title()))).collect();
    let tabs = Tabs::new(titles)
        .select(app.view.index())
        .highlight_style(Style::new().bold().fg(Color::Black).bg(Color::Cyan))
        .divider("│");
    f.render_widget(tabs, area);
}

fn render_footer(app: &App, f: &mut Frame<'_>, area: Rect) {
    let line = if app.mode == Mode::Filter {
        let (text_style, hint) = if app.filter_selected {
            (Style::new().reversed(), "   typing replaces · → extends · Enter keep · Esc clear")
        } else {
            (Style::new(), "   Enter keep · Esc clear")
        };
        Line::from(vec![
            Span::styled(" filter /", Style::new().bold()),
            Span::styled(app.filter().to_string(), text_style),
            Span::styled("▏", Style::new().fg(Color::Cyan)),
            Span::styled(hint, Style::new().dim()),
        ])
    } else if let Some(op) = &app.busy {
        Line::from(Span::styled(format!(" running {} …", op_label(op)), Style::new().fg(Color::Yellow)))
    } else if let Some(n) = &app.notice {
        let color = match n.kind {
            NoticeKind::Info => Color::Cyan,
            NoticeKind::Success => Color::Green,
            NoticeKind::Error => Color::Red,
        };
        Line::from(Span::styled(format!(" {}", n.text), Style::new().fg(color).bold()))
    } else {
        let keys = [("q", "quit"), ("?", "help"), ("1-6", "views"), ("r", "reload"), ("c", "reconnect")];
        let more = [("p", "profiles"), ("/", "filter")];
        let mut spans = vec![Span::raw(" ")];
        for (k, what) in keys.iter().chain(more.iter()) {
            spans.push(Span::styled(*k, Style::new().bold().fg(Color::Cyan)));
            spans.push(Span::raw(format!(" {what}  ")));
        }
        Line::from(spans)
    };
    f.render_widget(Paragraph::new(fit_line(line, area.width)), area);
}

#[cfg(test)]
mod tests {
    use super::super::app::testing::{ch, connected, data, snapshot};
    use super::super::app::Notice;
    use super::testing::*;
    use super::*;
    use crate::client::ClientError;

    #[test]
    fn lists_scroll_from_the_top_after_a_profile_switch() {
        // Following 30 events on the first server scrolls the table down.
        let mut app = connected();
        let mut s = snapshot(0, Ok(data()));
        s.events = many_events(30);
        app.apply_snapshot(s);
        app.on_key(ch('6'));
        let mut tables = TableStates::default();
        assert_has(&screen_with(&app, &mut tables, 80, 24), &["▶ 30", "message 30"]);
        // The second server has 6: all of them show, not just the last.
        app.on_key(ch('p'));
        app.on_key(ch('j'));
        app.on_key(crossterm::event::KeyEvent::from(crossterm::event::KeyCode::Enter));
        let mut s = snapshot(1, Ok(data()));
        s.events = many_events(6);
        app.apply_snapshot(s);
        let screen = screen_with(&app, &mut tables, 80, 24);
        assert_has(&screen, &["message 01", "message 05", "▶ 6", "message 06", "Events (6) · following"]);
        // A list that shrinks under a filter shows its rows from the top too.
        let mut s = snapshot(1, Ok(data()));
        s.events = many_events(30);
        app.apply_snapshot(s);
        screen_with(&app, &mut tables, 80, 24);
        app.on_key(ch('/'));
        app.on_key(ch('0'));
        let screen = screen_with(&app, &mut tables, 80, 24);
        assert_has(&screen, &["message 01", "message 09", "message 10", "message 20", "message 30"]);
    }

    #[test]
    fn filter_footer_shows_a_kept_filter_selected() {
        let mut app = view('2');
        app.on_key(ch('/'));
        app.on_key(ch('g'));
        app.on_key(crossterm::event::KeyEvent::from(crossterm::event::KeyCode::Enter));
        app.on_key(ch('/'));
        assert_has(&screen(&app, 80, 24), &["filter /g▏", "typing replaces · → extends · Enter keep · Esc clear"]);
    }

    #[test]
    fn filter_is_shown() {
        let mut app = view('2');
        app.on_key(ch('/'));
        app.on_key(ch('g'));
        app.on_key(ch('i'));
        for (w, h) in SIZES {
            let s = screen(&app, w, h);
            assert_has(&s, &["filter /gi", "Tools (2 of 4, filter \"gi\")", "create_issue"]);
            assert!(!s.contains("fs__read_file"), "{s}");
        }
        let mut app = view('3');
        app.on_key(ch('/'));
        app.on_key(ch('z'));
        assert_has(&screen(&app, 80, 24), &["(none)"]);
    }

    #[test]
    fn stale_data_stays_visible_when_the_server_goes_away() {
        let mut app = connected();
        app.apply_snapshot(snapshot(0, Err(ClientError::Unreachable("timed out after 5s".into()))));
        for (w, h) in SIZES {
            assert_has(&screen(&app, w, h), &["✖ unreachable: timed out after 5s", "showing data from", "weather"]);
        }
    }

    #[test]
    fn read_only_token_notice() {
        let mut app = connected();
        app.notice =
            Some(Notice { kind: NoticeKind::Error, text: "reload: read-only token: admin scope needed".into() });
        for (w, h) in SIZES {
            assert_has(&screen(&app, w, h), &["read-only token: admin scope needed"]);
        }
    }

    #[test]
    fn switch_clears_panels() {
        let mut app = connected();
        app.on_key(ch('p'));
        app.on_key(ch('j'));
        app.on_key(crossterm::event::KeyEvent::from(crossterm::event::KeyCode::Enter));
        let s = screen(&app, 80, 24);
        assert_has(&s, &["profile staging", "… connecting"]);
        assert!(!s.contains("weather"), "old data must be gone:\n{s}");
        // New data fills in again.
        app.apply_snapshot(snapshot(1, Ok(data())));
        assert_has(&screen(&app, 80, 24), &["profile staging", "weather"]);
    }

    #[test]
    fn tiny_terminal_does_not_panic() {
        let mut app = connected();
        for v in ['1', '2', '3', '4', '5', '6', '?', 'p'] {
            app.on_key(ch(v));
            for (w, h) in [(1, 1), (10, 5), (40, 10)] {
                screen(&app, w, h);
            }
        }
    }

    /// Writes every screen to `$MCP_SENTINEL_SCREENS/*.txt` (for docs/tui.md).
    #[test]
    fn dump_screens() {
        let Some(dir) = std::env::var_os("MCP_SENTINEL_SCREENS") else { return };
        let dir = std::path::PathBuf::from(dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut shots: Vec<(String, App)> = Vec::new();
        for (n, name) in ['1', '2', '3', '4', '5', '6'].iter().zip([
            "backends",
            "tools",
            "resources",
            "templates",
            "prompts",
            "events",
        ]) {
            shots.push((name.into(), view(*n)));
        }
        let mut app = connected();
        app.on_key(ch('r'));
        shots.push(("confirm-reload".into(), app));
        let mut app = connected();
        app.on_key(ch('p'));
        shots.push(("profiles".into(), app));
        let mut app = connected();
        app.on_key(ch('?'));
        shots.push(("help".into(), app));
        shots.push(("unreachable".into(), failed(ClientError::Unreachable("connection refused".into()))));
        shots.push((
            "no-token".into(),
            failed(ClientError::NoToken("environment variable PROD_TOKEN is not set".into())),
        ));
        let mut app = connected();
        app.notice =
            Some(Notice { kind: NoticeKind::Error, text: "reload: read-only token: admin scope needed".into() });
        shots.push(("forbidden".into(), app));
        for (name, app) in &shots {
            for (w, h) in SIZES {
                std::fs::write(dir.join(format!("{name}-{w}x{h}.txt")), screen(app, w, h)).unwrap();
            }
        }
    }
}
