//! The popups drawn over a view: the key help, the command palette, the
//! theme picker, the y/n question before an operation, and the profile
//! selector. The help and the palette are both read from the one table of
//! actions ([`ACTIONS`]). Runs on the TUI's main thread, like all
//! rendering.

use super::table::{Col, FitTable};
use super::text::{ellipsize, text_width};
use crate::tui::app::{App, Cmd, ACTIONS};
use crate::tui::poll::Op;
use crate::tui::theme::{Theme, THEME_NAMES};
use ratatui::layout::{Alignment, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, TableState, Wrap};
use ratatui::Frame;

/// The help's rows: (keys, what), from the table of actions.
pub(super) fn help_rows(app: &App) -> Vec<(String, String)> {
    let mut rows = vec![("1-6, Tab, Shift-Tab".to_string(), "switch view".to_string())];
    // Letters that open a view (`t`; `r` `p` in the classic map).
    for a in ACTIONS {
        if let Cmd::View(v) = a.cmd {
            let letters: Vec<String> =
                a.keys(app.keys).iter().map(|k| k.label()).filter(|l| !l.chars().all(|c| c.is_ascii_digit())).collect();
            if !letters.is_empty() {
                rows.push((letters.join(", "), format!("{} view", v.title().to_lowercase())));
            }
        }
    }
    rows.push(("↑ ↓, j k".into(), "move (lists, profile and theme pickers)".into()));
    rows.push(("PgUp PgDn, g G".into(), "page, first, last".into()));
    rows.push(("J K".into(), "scroll the detail pane".into()));
    for a in ACTIONS {
        match a.cmd {
            Cmd::View(_) | Cmd::NextView | Cmd::PrevView | Cmd::DetailDown | Cmd::DetailUp => continue,
            _ => {}
        }
        let keys = a.key_labels(app.keys);
        let keys = if keys.is_empty() { "Ctrl-P, then".to_string() } else { keys };
        let what = if a.cmd == Cmd::Quit { app.quit_label().to_string() } else { a.name.to_string() };
        rows.push((keys, what));
    }
    rows
}

pub(super) fn render_help(app: &App, f: &mut Frame<'_>) {
    let t = &app.theme;
    let mut lines: Vec<Line<'_>> = help_rows(app)
        .into_iter()
        .map(|(k, what)| Line::from(vec![Span::styled(format!("{k:>20}  "), t.accent), Span::raw(what)]))
        .collect();
    // What the views show, when there is room for it.
    let info = [
        ("Backend states", "connected, connecting, pending,"),
        ("", "failed, disconnected, disabled"),
        ("Counts T/R/P", "tools / resources+templates / prompts"),
    ];
    if usize::from(f.area().height) >= lines.len() + info.len() + 3 {
        lines.push(Line::raw(""));
        lines.extend(
            info.iter()
                .map(|(k, what)| Line::from(vec![Span::styled(format!("{k:>20}  "), t.accent), Span::raw(*what)])),
        );
    }
    let area = centered(f.area(), 78, lines.len() as u16 + 2);
    clear(t, f, area);
    let title = format!(" Keys, {} map (any key closes; Ctrl-P lists them all) ", app.keys.name());
    let block = Block::bordered().border_style(t.border).title(title);
    f.render_widget(Paragraph::new(lines).block(block), area);
}

/// The command palette: every action, filtered by what was typed, with its
/// keys in the current key map.
pub(super) fn render_palette(app: &App, query: &str, cursor: usize, f: &mut Frame<'_>) {
    let t = &app.theme;
    let matches = app.palette_matches(query);
    let height = (matches.len() as u16 + 3).clamp(6, f.area().height.saturating_sub(2).max(6));
    let area = centered(f.area(), 76, height);
    clear(t, f, area);
    let block = Block::bordered()
        .border_style(t.accent)
        .title(" Command palette (type to filter, ↑↓ move, Enter run, Esc close) ");
    let inner = block.inner(area);
    f.render_widget(block, area);
    let width = inner.width;
    let mut lines =
        vec![Line::from(vec![Span::styled("> ", t.accent), Span::raw(query.to_string()), Span::styled("▏", t.cursor)])];
    let rows = usize::from(inner.height.saturating_sub(1));
    if matches.is_empty() {
        lines.push(Line::styled("  no action matches", t.dim));
    }
    let cursor = cursor.min(matches.len().saturating_sub(1));
    let first = (cursor + 1).saturating_sub(rows);
    for (i, a) in matches.iter().enumerate().skip(first).take(rows) {
        let keys = a.key_labels(app.keys);
        let keys = if keys.is_empty() { "-".to_string() } else { keys };
        let name = if a.cmd == Cmd::Quit { app.quit_label() } else { a.name };
        let key_w = text_width(&keys) as u16;
        let name_w = width.saturating_sub(key_w + 4);
        let name = ellipsize(name, name_w);
        let pad = usize::from(name_w).saturating_sub(text_width(&name));
        let mark = if i == cursor { "▶ " } else { "  " };
        let text = format!("{mark}{name}{} {keys}", " ".repeat(pad + 1));
        let style = if i == cursor { t.selection } else { t.base };
        lines.push(Line::styled(text, style));
    }
    f.render_widget(Paragraph::new(lines), inner);
}

/// The theme picker; `*` marks the theme in use.
pub(super) fn render_themes(app: &App, cursor: usize, f: &mut Frame<'_>) {
    let t = &app.theme;
    let area = centered(f.area(), 50, THEME_NAMES.len() as u16 + 2);
    clear(t, f, area);
    let lines: Vec<Line<'_>> = THEME_NAMES
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let mark = if i == cursor { "▶" } else { " " };
            let used = if *name == t.name { "*" } else { " " };
            let style = if i == cursor { t.selection } else { t.base };
            Line::styled(format!("{mark} {used} {name}"), style)
        })
        .collect();
    let block = Block::bordered().border_style(t.accent).title(" Theme (Enter pick, Esc close) ");
    f.render_widget(Paragraph::new(lines).block(block), area);
}

/// Clears `area` to the theme's background (ratatui's `Clear` resets it
/// to the terminal's).
fn clear(t: &Theme, f: &mut Frame<'_>, area: Rect) {
    f.render_widget(Clear, area);
    f.render_widget(Block::new().style(t.base), area);
}

pub(super) fn render_confirm(app: &App, op: &Op, f: &mut Frame<'_>) {
    let t = &app.theme;
    let (name, url) = app.profile().map(|p| (p.name.as_str(), p.url.as_str())).unwrap_or(("-", "-"));
    let question = match op {
        Op::Reload => "Reload the configuration file of".to_string(),
        Op::Reconnect(b) => format!("Reconnect backend {b} of"),
    };
    let lines = vec![
        Line::raw(question),
        Line::from(vec![Span::styled(name.to_string(), t.accent), Span::raw(format!(" ({url})?"))]),
        Line::raw(""),
        Line::from(vec![
            Span::styled("y", t.ok.bold()),
            Span::raw(" yes   "),
            Span::styled("n", t.error.bold()),
            Span::raw(" no"),
        ]),
    ];
    let area = centered(f.area(), 60, 6);
    clear(t, f, area);
    let block = Block::bordered().border_style(t.confirm_border).title(" Confirm ");
    f.render_widget(Paragraph::new(lines).block(block).alignment(Alignment::Center).wrap(Wrap { trim: true }), area);
}

/// The profile selector; `*` marks the profile being viewed.
pub(super) fn render_profiles(app: &App, cursor: usize, state: &mut TableState, f: &mut Frame<'_>) {
    let t = &app.theme;
    let rows: Vec<Vec<Span<'static>>> = app
        .profiles
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mark = if i == app.active { "*" } else { " " };
            vec![Span::raw(format!("{mark} {}", p.name)), Span::raw(p.url.clone())]
        })
        .collect();
    let height = (rows.len() as u16 + 3).min(f.area().height.saturating_sub(4)).max(5);
    let area = centered(f.area(), 70, height);
    clear(t, f, area);
    state.select(Some(cursor));
    let cols = [Col::new("  PROFILE", 12), Col::new("URL", 20)];
    FitTable { cols: &cols, rows }.render(t, " Profiles (↑↓ jk move, Enter switch, Esc close) ".into(), state, f, area);
}

fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(area.width);
    let h = height.min(area.height);
    Rect { x: area.x + (area.width - w) / 2, y: area.y + (area.height - h) / 2, width: w, height: h }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use crate::tui::app::testing::{ch, connected};

    #[test]
    fn popups() {
        let mut app = connected();
        app.on_key(ch('?'));
        for (w, h) in SIZES {
            assert_has(
                &screen(&app, w, h),
                &["Keys, default map (any key closes", "reconnect the selected backend", "quit"],
            );
        }
        let mut app = connected();
        app.on_key(ch('r'));
        for (w, h) in SIZES {
            assert_has(&screen(&app, w, h), &["Confirm", "Reload the configuration file of", "y yes", "n no"]);
        }
        let mut app = connected();
        app.on_key(ch('j'));
        app.on_key(ch('j'));
        app.on_key(ch('c'));
        assert_has(&screen(&app, 80, 24), &["Reconnect backend weather of", "local (http://127.0.0.1:9001)?"]);
        app.on_key(ch('y'));
        assert_has(&screen(&app, 80, 24), &["running reconnect weather …"]);
        let mut app = connected();
        app.on_key(ch('p'));
        for (w, h) in SIZES {
            assert_has(&screen(&app, w, h), &["Profiles (↑↓ jk move, Enter switch, Esc close)", "* local", "staging"]);
        }
    }

    fn ctrl_p() -> crossterm::event::KeyEvent {
        crossterm::event::KeyEvent::new(crossterm::event::KeyCode::Char('p'), crossterm::event::KeyModifiers::CONTROL)
    }

    #[test]
    fn help_says_what_quitting_does() {
        let mut app = connected();
        app.on_key(ch('?'));
        let s = screen(&app, 80, 24);
        assert_has(
            &s,
            &["quit (the server keeps running)", "Ctrl-P", "command palette", "next theme", "t  tools view"],
        );
        assert!(!s.contains("STOPS"), "{s}");
        // The legacy combined mode: quitting stops the in-process server.
        let mut app = connected();
        app.combined = true;
        app.on_key(ch('?'));
        for (w, h) in SIZES {
            let s = screen(&app, w, h);
            assert_has(&s, &["quit: STOPS the server"]);
            assert!(!s.contains("keeps running"), "{s}");
        }
        app.on_key(ch('x'));
        assert_has(&screen(&app, 80, 24), &["q quit+stop server"]);
    }

    #[test]
    fn help_follows_the_key_map() {
        let mut app = connected();
        app.keys = crate::tui::app::KeyMap::Classic;
        app.on_key(ch('?'));
        let s = screen(&app, 100, 30);
        assert_has(
            &s,
            &["Keys, classic map", "r  resources view", "p  prompts view", "R  reload", "P  choose a profile"],
        );
    }

    #[test]
    fn palette_lists_filters_and_shows_keys() {
        let mut app = connected();
        app.on_key(ctrl_p());
        let s = screen(&app, 100, 40);
        assert_has(
            &s,
            &[
                "Command palette",
                "▶ view: backends",
                "view: tools",
                "2, t",
                "reload the server's configuration",
                "r, R",
                "Ctrl-P",
            ],
        );
        for c in "res".chars() {
            app.on_key(ch(c));
        }
        let s = screen(&app, 80, 24);
        assert_has(&s, &["> res", "▶ view: resources", "view: resource templates"]);
        assert!(!s.contains("view: tools"), "{s}");
        for c in "zzz".chars() {
            app.on_key(ch(c));
        }
        assert_has(&screen(&app, 80, 24), &["no action matches"]);
    }

    #[test]
    fn theme_picker_marks_the_theme_in_use() {
        let mut app = connected();
        app.theme = crate::tui::theme::Theme::nord();
        app.on_key(ch('T'));
        assert_has(&screen(&app, 80, 24), &["Theme (Enter pick, Esc close)", "▶ * nord", "  high-contrast"]);
    }
}
