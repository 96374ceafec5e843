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
mod table;
#[cfg(test)]
mod testing;
mod text;

use super::app::{def_of, op_label, App, Cmd, ConnState, Mode, NoticeKind, View, VIEWS};
use backends::render_backends;
use catalog::{render_prompts, render_resources, render_templates, render_tools};
use connection::{conn_label, render_no_data};
use events::render_events;
use overlays::{render_confirm, render_help, render_palette, render_profiles, render_themes};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, TableState, Tabs};
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
    // The theme's background under everything.
    f.render_widget(Block::new().style(app.theme.base), f.area());
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
        Mode::Help => render_help(app, f),
        Mode::Palette { query, cursor } => render_palette(app, query, *cursor, f),
        Mode::Themes(cursor) => render_themes(app, *cursor, f),
        Mode::Confirm(op) => render_confirm(app, op, f),
        Mode::Profiles(cursor) => render_profiles(app, *cursor, &mut tables.profiles, f),
        Mode::Normal | Mode::Filter => {}
    }
}

// ---- header, tabs, footer

fn render_header(app: &App, f: &mut Frame<'_>, area: Rect) {
    let t = &app.theme;
    let (name, url) = app.profile().map(|p| (p.name.as_str(), p.url.as_str())).unwrap_or(("-", "-"));
    let line1 = Line::from(vec![
        Span::styled(" mcp-sentinel ", t.badge),
        Span::raw("  profile "),
        Span::styled(name, t.accent),
        Span::raw("  "),
        Span::raw(url),
    ]);
    let line1 = fit_line(line1, area.width);
    let updated = app.last_ok.map(clock).unwrap_or_default();
    let interval = format!("every {}", seconds(app.interval.as_secs_f64()));
    let line2 = match &app.conn {
        ConnState::Connecting => {
            Line::from(vec![Span::styled(" … connecting", t.warn), Span::raw(format!("  ({interval})"))])
        }
        ConnState::Connected => Line::from(vec![
            Span::styled(" ● connected", t.ok.bold()),
            Span::raw(format!("  updated {updated}  ({interval})")),
        ]),
        ConnState::Failed(e) => {
            let mut spans = vec![Span::styled(format!(" ✖ {}", conn_label(e)), t.error.bold())];
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
    let tabs = Tabs::new(titles).select(app.view.index()).highlight_style(app.theme.tab_selected).divider("│");
    f.render_widget(tabs, area);
}

fn render_footer(app: &App, f: &mut Frame<'_>, area: Rect) {
    let t = &app.theme;
    let line = if app.mode == Mode::Filter {
        let (text_style, hint) = if app.filter_selected {
            (t.selected_text, "   typing replaces · → extends · Enter keep · Esc clear")
        } else {
            (Style::new(), "   Enter keep · Esc clear")
        };
        Line::from(vec![
            Span::styled(" filter /", t.label),
            Span::styled(app.filter().to_string(), text_style),
            Span::styled("▏", t.cursor),
            Span::styled(hint, t.dim),
        ])
    } else if let Some(op) = &app.busy {
        Line::from(Span::styled(format!(" running {} …", op_label(op)), t.warn))
    } else if let Some(n) = &app.notice {
        let style = match n.kind {
            NoticeKind::Info => t.info,
            NoticeKind::Success => t.ok,
            NoticeKind::Error => t.error,
        };
        Line::from(Span::styled(format!(" {}", n.text), style.bold()))
    } else {
        let key = |c: Cmd| def_of(c).keys(app.keys).first().map(|k| k.label()).unwrap_or_default();
        let quit = if app.combined { "quit+stop server" } else { "quit" };
        let keys = [
            (key(Cmd::Quit), quit),
            (key(Cmd::Help), "help"),
            ("^P".to_string(), "actions"),
            (key(Cmd::Reload), "reload"),
            (key(Cmd::Reconnect), "reconnect"),
            (key(Cmd::Profiles), "profiles"),
            (key(Cmd::Filter), "filter"),
        ];
        // As many hints as fit, whole: the palette (^P) lists the rest.
        let mut spans = vec![Span::raw(" ")];
        let mut used = 1;
        for (k, what) in keys {
            let hint = format!(" {what}  ");
            let w = text::text_width(&k) + text::text_width(hint.trim_end());
            if used + w > usize::from(area.width) {
                break;
            }
            used += w + 2;
            spans.push(Span::styled(k, t.accent));
            spans.push(Span::raw(hint));
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

    /// The cells of the screen, with their styles.
    fn cells(app: &App, w: u16, h: u16) -> ratatui::buffer::Buffer {
        let mut term = ratatui::Terminal::new(ratatui::backend::TestBackend::new(w, h)).unwrap();
        term.draw(|f| render(app, &mut TableStates::default(), f)).unwrap();
        term.backend().buffer().clone()
    }

    #[test]
    fn every_theme_draws_every_screen() {
        for name in crate::tui::theme::THEME_NAMES {
            for k in ['1', '2', '3', '4', '5', '6', '?', 'p', 'T', 'r'] {
                let mut app = connected();
                app.theme = crate::tui::theme::Theme::named(name).unwrap();
                app.on_key(ch(k));
                let b = cells(&app, 80, 24);
                // The base colours are under every cell the screen has not
                // styled otherwise.
                if let Some(bg) = app.theme.base.bg {
                    let corner = &b[(79, 23)];
                    assert_eq!(corner.bg, bg, "{name} {k}");
                }
                assert!(screen(&app, 80, 24).contains("mcp-sentinel"), "{name} {k}");
            }
        }
    }

    #[test]
    fn high_contrast_uses_its_styles() {
        use ratatui::style::{Color, Modifier};
        let mut app = connected();
        app.theme = crate::tui::theme::Theme::high_contrast();
        let b = cells(&app, 80, 24);
        // The header's badge: black on yellow, bold.
        let badge = &b[(1, 0)];
        assert_eq!((badge.symbol(), badge.fg, badge.bg), ("m", Color::Black, Color::Yellow));
        assert!(badge.modifier.contains(Modifier::BOLD));
        // Plain text: white on black.
        let row = screen(&app, 80, 24);
        let y = row.lines().position(|l| l.contains("▶ github")).unwrap() as u16;
        // The selected row: black on white, bold, with its ▶ marker.
        let sel = &b[(3, y)];
        assert_eq!((sel.fg, sel.bg), (Color::Black, Color::White));
        assert!(sel.modifier.contains(Modifier::BOLD));
        // A failed backend: underlined as well as coloured.
        let fy = row.lines().position(|l| l.contains("weather")).unwrap() as u16;
        let fx = row.lines().nth(fy as usize).unwrap().find("failed").unwrap();
        let x = row.lines().nth(fy as usize).unwrap()[..fx].chars().count() as u16;
        let failed = &b[(x, fy)];
        assert_eq!((failed.symbol(), failed.fg, failed.bg), ("f", Color::Yellow, Color::Black));
        assert!(failed.modifier.contains(Modifier::UNDERLINED | Modifier::BOLD));
        // The default theme leaves the terminal's own colours alone.
        let b = cells(&connected(), 80, 24);
        assert_eq!(b[(79, 23)].bg, Color::Reset);
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
        let mut app = connected();
        app.combined = true;
        app.keys = crate::tui::app::KeyMap::Classic;
        app.on_key(ch('?'));
        shots.push(("help-classic-combined".into(), app));
        let mut app = connected();
        app.on_key(crossterm::event::KeyEvent::new(
            crossterm::event::KeyCode::Char('p'),
            crossterm::event::KeyModifiers::CONTROL,
        ));
        for c in "re".chars() {
            app.on_key(ch(c));
        }
        shots.push(("palette".into(), app));
        let mut app = connected();
        app.on_key(ch('T'));
        shots.push(("themes".into(), app));
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
