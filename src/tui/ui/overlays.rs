//! The popups drawn over a view: the key help, the y/n question before an
//! operation, and the profile selector. Runs on the TUI's main thread,
//! like all rendering.

use super::table::{Col, FitTable};
use crate::tui::app::App;
use crate::tui::poll::Op;
use ratatui::layout::{Alignment, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, TableState, Wrap};
use ratatui::Frame;

pub(super) fn render_help(f: &mut Frame<'_>) {
    let keys: [(&str, &str); 15] = [
        ("1-6, Tab, Shift-Tab", "switch view"),
        ("↑ ↓, j k", "move (lists and the profile list)"),
        ("PgUp PgDn, g G", "page, first, last"),
        ("J K", "scroll the detail pane"),
        ("/", "new filter (Enter keep, Esc clear)"),
        ("r", "reload the server's configuration"),
        ("c", "reconnect the selected backend"),
        ("p", "choose a profile (server)"),
        ("Esc", "clear the message, then the filter"),
        ("?", "this help"),
        ("q, Ctrl-C", "quit (the server keeps running)"),
        ("", ""),
        ("Backend states", "connected, connecting, pending,"),
        ("", "failed, disconnected, disabled"),
        ("Counts T/R/P", "tools / resources+templates / prompts"),
    ];
    let lines: Vec<Line<'_>> = keys
        .iter()
        .map(|(k, what)| {
            Line::from(vec![Span::styled(format!("{k:>20}  "), Style::new().bold().fg(Color::Cyan)), Span::raw(*what)])
        })
        .collect();
    let area = centered(f.area(), 66, lines.len() as u16 + 2);
    f.render_widget(Clear, area);
    let block = Block::bordered().title(" Keys (any key closes) ");
    f.render_widget(Paragraph::new(lines).block(block), area);
}

pub(super) fn render_confirm(app: &App, op: &Op, f: &mut Frame<'_>) {
    let (name, url) = app.profile().map(|p| (p.name.as_str(), p.url.as_str())).unwrap_or(("-", "-"));
    let question = match op {
        Op::Reload => "Reload the configuration file of".to_string(),
        Op::Reconnect(b) => format!("Reconnect backend {b} of"),
    };
    let lines = vec![
        Line::raw(question),
        Line::from(vec![
            Span::styled(name.to_string(), Style::new().bold().fg(Color::Cyan)),
            Span::raw(format!(" ({url})?")),
        ]),
        Line::raw(""),
        Line::from(vec![
            Span::styled("y", Style::new().bold().fg(Color::Green)),
            Span::raw(" yes   "),
            Span::styled("n", Style::new().bold().fg(Color::Red)),
            Span::raw(" no"),
        ]),
    ];
    let area = centered(f.area(), 60, 6);
    f.render_widget(Clear, area);
    let block = Block::bordered().title(" Confirm ").border_style(Style::new().fg(Color::Yellow));
    f.render_widget(Paragraph::new(lines).block(block).alignment(Alignment::Center).wrap(Wrap { trim: true }), area);
}

/// The profile selector; `*` marks the profile being viewed.
pub(super) fn render_profiles(app: &App, cursor: usize, state: &mut TableState, f: &mut Frame<'_>) {
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
    f.render_widget(Clear, area);
    state.select(Some(cursor));
    let cols = [Col::new("  PROFILE", 12), Col::new("URL", 20)];
    FitTable { cols: &cols, rows }.render(" Profiles (↑↓ jk move, Enter switch, Esc close) ".into(), state, f, area);
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
            assert_has(&screen(&app, w, h), &["Keys (any key closes)", "reconnect the selected backend", "quit"]);
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
}
