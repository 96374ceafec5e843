//! The events view: the event log the poller keeps, as a table, and the
//! selected event whole. Runs on the TUI's main thread, like all rendering.

use super::table::{list_title, Col, FitTable};
use super::text::short_time;
use crate::tui::app::{App, View};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, Paragraph, TableState, Wrap};
use ratatui::Frame;

pub(super) fn render_events(app: &App, state: &mut TableState, f: &mut Frame<'_>, area: Rect) {
    let t = &app.theme;
    let [table_area, detail_area] = Layout::vertical([Constraint::Fill(1), Constraint::Length(4)]).areas(area);
    let items = app.event_rows();
    let rows = items
        .iter()
        .map(|e| {
            vec![
                Span::raw(e.id.to_string()),
                Span::raw(short_time(&e.time)),
                Span::styled(e.level.clone(), t.level(&e.level)),
                Span::raw(e.kind.clone()),
                Span::raw(e.backend.clone().unwrap_or_default()),
                Span::raw(e.message.clone()),
            ]
        })
        .collect();
    let cols = [
        Col::fixed("ID"),
        Col::fixed("TIME"),
        Col::fixed("LEVEL"),
        Col::new("KIND", 12),
        Col::new("BACKEND", 8),
        Col::new("MESSAGE", 12),
    ];
    let mut title = list_title("Events", items.len(), app.events.len(), app.filter());
    if app.follow_events {
        title.push_str("· following ");
    }
    FitTable { cols: &cols, rows }.render(t, title, state, f, table_area);
    let text = match app.selection(View::Events).and_then(|i| items.get(i)) {
        Some(e) => Text::from(vec![
            Line::from(vec![
                Span::raw(format!("#{} {} ", e.id, e.time)),
                Span::styled(e.level.clone(), t.level(&e.level)),
                Span::raw(format!(" {} {}", e.kind, e.backend.as_deref().unwrap_or(""))),
            ]),
            Line::raw(e.message.clone()),
        ]),
        None => Text::raw(""),
    };
    f.render_widget(
        Paragraph::new(text).block(Block::bordered().border_style(t.border)).wrap(Wrap { trim: false }),
        detail_area,
    );
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;

    #[test]
    fn events_view() {
        for (w, h) in SIZES {
            let s = screen(&view('6'), w, h);
            assert_has(&s, &["Events (7)", "following", "backend.failed", "server.ready", "10:00:02Z", "error"]);
            // The selected (newest) event's full message.
            assert_has(&s, &["degraded: 2 of 3 enabled backends connected"]);
        }
        let s = screen(&view('6'), 120, 40);
        assert_has(&s, &["mcp-sentinel 0.1.0 starting with 4 backends", "connect to weather.example.com:443"]);
    }
}
