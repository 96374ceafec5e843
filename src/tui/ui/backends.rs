//! The backends view: the server status pane (`/status`), the backends
//! table and the selected backend's details (BACKEND_VIEW). Runs on the
//! TUI's main thread, like all rendering.

use super::table::{list_title, Col, FitTable};
use super::text::{ellipsize_start, fit_line, short_time, text_width, uptime, value_text};
use crate::tui::app::{App, View};
use crate::tui::poll::Data;
use crate::tui::theme::Theme;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, Paragraph, TableState, Wrap};
use ratatui::Frame;

pub(super) fn render_backends(app: &App, data: &Data, state: &mut TableState, f: &mut Frame<'_>, area: Rect) {
    let t = &app.theme;
    let backends = app.backends();
    // The table as tall as its rows need; the detail pane gets 6 to 8 lines
    // (a long last error wraps there), any more goes to the table.
    let rest = area.height.saturating_sub(STATUS_HEIGHT);
    let table_want = u16::try_from(backends.len()).unwrap_or(u16::MAX).saturating_add(3);
    let detail_height = rest.saturating_sub(table_want).clamp(6, 8);
    let [status_area, table_area, detail_area] =
        Layout::vertical([Constraint::Length(STATUS_HEIGHT), Constraint::Fill(1), Constraint::Length(detail_height)])
            .areas(area);
    render_status(t, data, f, status_area);

    let cols = [
        Col::new("NAME", 8),
        Col::fixed("STATE"),
        Col::fixed("TYPE"),
        Col::fixed("T/R/P"),
        Col::fixed("RST"),
        Col::new("ENDPOINT", 12),
        Col::new("LAST ERROR", 10),
    ];
    let rows: Vec<Vec<Span<'static>>> = backends
        .iter()
        .map(|b| {
            let c = &b.capabilities;
            vec![
                Span::raw(b.name.clone()),
                Span::styled(b.state.clone(), t.backend_state(&b.state)),
                Span::raw(short_type(&b.kind)),
                Span::raw(format!("{}/{}/{}", c.tools, c.resources + c.resource_templates, c.prompts)),
                Span::raw(b.restarts.to_string()),
                Span::raw(short_endpoint(&b.endpoint)),
                Span::styled(b.last_error.clone().unwrap_or_default(), t.error),
            ]
        })
        .collect();
    let title = list_title("Backends", rows.len(), data.backends.len(), app.filter());
    FitTable { cols: &cols, rows }.render(t, title, state, f, table_area);

    let width = detail_area.width.saturating_sub(2);
    let detail = match app.selection(View::Backends).and_then(|i| backends.get(i).copied()) {
        None => Text::raw(""),
        Some(b) => {
            let mut state = vec![Span::styled(b.state.clone(), t.backend_state(&b.state))];
            if let Some(since) = &b.connected_since {
                state.push(Span::raw(format!(" since {}", short_time(since))));
            }
            let mut first = vec![Span::styled(b.name.clone(), t.label), Span::raw(format!(" · {} · ", b.kind))];
            first.extend(state);
            first.push(Span::raw(format!(" · restarts {}", b.restarts)));
            if let Some(pid) = b.pid {
                first.push(Span::raw(format!(" · pid {pid}")));
            }
            let mut second = Vec::new();
            if !b.server_info.is_null() {
                second.push(format!("server {}", value_text(&b.server_info)));
            }
            if let Some(pv) = &b.protocol_version {
                second.push(format!("protocol {pv}"));
            }
            if second.is_empty() {
                second.push("not connected".to_string());
            }
            // The last line, the error, wraps; the others are cut with `…`.
            let error = match &b.last_error {
                Some(e) => Line::from(vec![Span::raw("last error "), Span::styled(e.clone(), t.error)]),
                None => Line::raw("last error -"),
            };
            Text::from(vec![
                fit_line(Line::from(first), width),
                fit_line(Line::raw(second.join(" · ")), width),
                fit_line(Line::raw(format!("endpoint {}", b.endpoint)), width),
                error,
            ])
        }
    };
    let block = Block::bordered().border_style(t.border).title(" Selected backend ");
    f.render_widget(Paragraph::new(detail).block(block).wrap(Wrap { trim: false }), detail_area);
}

/// Height of the server status pane: four lines and the borders.
const STATUS_HEIGHT: u16 = 6;

/// The informative part of an endpoint for a table column: a URL without
/// its scheme, credentials, query and fragment (`host:port/path`); a
/// command line with its program's file name instead of its path. The
/// selected-backend pane shows it whole.
fn short_endpoint(endpoint: &str) -> String {
    let lower = endpoint.to_ascii_lowercase();
    if let Some(scheme) = ["http://", "https://"].into_iter().find(|s| lower.starts_with(s)) {
        let rest = &endpoint[scheme.len()..];
        let rest = rest.split(['?', '#']).next().unwrap_or(rest);
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        let host = authority.rsplit('@').next().unwrap_or(authority);
        return format!("{host}{path}");
    }
    let (program, args) = endpoint.split_once(' ').unwrap_or((endpoint, ""));
    let name = program.rsplit('/').next().filter(|n| !n.is_empty()).unwrap_or(program);
    if args.is_empty() {
        name.to_string()
    } else {
        format!("{name} {args}")
    }
}

fn render_status(t: &Theme, data: &Data, f: &mut Frame<'_>, area: Rect) {
    let width = area.width.saturating_sub(2);
    let s = &data.status;
    let sv = &s.server;
    let mut first = vec![
        Span::raw("state "),
        Span::styled(sv.state.clone(), t.server_state(&sv.state)),
        Span::raw(format!(" · {} {} · up {}", sv.name, sv.version, uptime(sv.uptime_s as f64))),
    ];
    // 0: an older server that did not send it.
    if sv.pid != 0 {
        first.push(Span::raw(format!(" · pid {}", sv.pid)));
    }
    first.push(Span::raw(format!(" · revision {}", sv.revision)));
    let b = &s.backends;
    let mut backends = Line::from(vec![
        Span::raw(format!("backends {}: ", b.total)),
        Span::styled(format!("{} connected", b.connected), t.ok),
        Span::raw(", "),
        Span::styled(format!("{} connecting", b.connecting), t.warn),
        Span::raw(", "),
        Span::styled(format!("{} failed", b.failed), if b.failed > 0 { t.error } else { Style::new() }),
        Span::raw(format!(", {} disabled", b.disabled)),
    ]);
    if !s.views.is_empty() {
        // The views (`/mcp/<name>`), by name.
        backends.push_span(Span::raw(format!(" · views {}", s.views.join(", "))));
    }
    let c = &s.capabilities.counts;
    let ss = &s.sessions;
    let mut caps = vec![Span::raw(format!(
        "tools {} · resources {} · templates {} · prompts {}",
        c.tools, c.resources, c.resource_templates, c.prompts
    ))];
    let conflicts = s.capabilities.conflicts;
    if conflicts > 0 {
        // Dropped by a name clash: worth the operator's eye.
        caps.push(Span::raw(" · "));
        caps.push(Span::styled(format!("conflicts {conflicts}"), t.warn));
    }
    caps.push(Span::raw(format!(" · sessions {} ({} sse, {} http)", ss.active, ss.sse, ss.streamable_http)));
    let caps = Line::from(caps);
    let mut listen = format!(
        "listen mcp {} · manage {}",
        s.listen.mcp.as_deref().unwrap_or("-"),
        s.listen.manage.as_deref().unwrap_or("-")
    );
    if let Some(p) = &sv.config_path {
        // A path's end (the file name) says the most: cut its start.
        let room = usize::from(width).saturating_sub(text_width(&listen) + text_width(" · config "));
        listen.push_str(&format!(" · config {}", ellipsize_start(p, room.max(8))));
    }
    let text: Vec<Line<'_>> =
        [Line::from(first), backends, caps, Line::raw(listen)].into_iter().map(|l| fit_line(l, width)).collect();
    f.render_widget(Paragraph::new(text).block(Block::bordered().border_style(t.border).title(" Server ")), area);
}

/// `streamable-http` takes a third of an 80-column table; its config alias
/// says the same.
fn short_type(kind: &str) -> String {
    match kind {
        "streamable-http" => "http".to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use crate::tui::app::testing::ch;

    #[test]
    fn backends_view() {
        for (w, h) in SIZES {
            let s = screen(&view('1'), w, h);
            assert_has(
                &s,
                &[
                    "profile local  http://127.0.0.1:9001",
                    "● connected",
                    "updated ",
                    "state degraded",
                    "mcp-sentinel 0.1.0",
                    "up 1h 02m",
                    "backends 4: 2 connected, 0 connecting, 1 failed, 1 disabled",
                    "Backends (4)",
                    "github",
                    "files",
                    "weather",
                    "legacy",
                    "connected",
                    "failed",
                    "disabled",
                    "stdio",
                    "2/0/1",
                    "Selected backend",
                    "github · stdio · connected since 10:00:01Z · restarts 0 · pid 5151",
                    "server github-mcp 1.2.0 · protocol 2025-06-18",
                    "q quit",
                ],
            );
        }
        // Wide enough to show the error column's text.
        let s = screen(&view('1'), 120, 40);
        assert_has(
            &s,
            &[
                "connect to weather",
                "listen mcp 127.0.0.1:9000 · manage 127.0.0.1:9001",
                "1 disabled · views dev, ops",
                // The fixture's one name clash is counted where it shows.
                "prompts 2 · conflicts 1 · sessions",
            ],
        );
    }

    #[test]
    fn selected_backend_detail_shows_last_error() {
        let mut app = view('1');
        app.on_key(ch('j'));
        app.on_key(ch('j'));
        for (w, h) in SIZES {
            let s = screen(&app, w, h);
            assert_has(
                &s,
                &[
                    "weather · sse · failed · restarts 5",
                    "not connected",
                    "last error connect to weather.example.com:443",
                ],
            );
        }
    }

    #[test]
    fn backends_table_shows_the_informative_part_of_endpoints() {
        let app = with_data(demo_data(), '1');
        for (w, h) in SIZES {
            let s = screen(&app, w, h);
            assert_has(&s, &["mcp-sentinel-demo --name demo-0", "mcp-sentinel-demo --name demo-3"]);
            // The pane shows it whole, and the connection time fits.
            assert_has(&s, &["demo-0 · stdio · connected since 10:00:01Z · restarts 0 · pid 5151"]);
            assert_has(&s, &["endpoint /work/target-review/debug/mcp-sentinel-demo --name demo-0"]);
        }
        // The fixture's URLs lose their scheme and credentials in the table.
        let s = screen(&view('1'), 120, 40);
        assert_has(&s, &["127.0.0.1:8931/mcp", "weather.example.com/sse ", "connect to weather.example.com:443"]);
    }

    #[test]
    fn short_endpoints() {
        assert_eq!(short_endpoint("/work/target/debug/mcp-sentinel-demo --name a"), "mcp-sentinel-demo --name a");
        assert_eq!(short_endpoint("npx -y @scope/server-x"), "npx -y @scope/server-x");
        assert_eq!(short_endpoint("python3"), "python3");
        assert_eq!(short_endpoint("https://***:***@weather.example.com/sse?token=***"), "weather.example.com/sse");
        assert_eq!(short_endpoint("http://127.0.0.1:9101/sse"), "127.0.0.1:9101/sse");
        assert_eq!(short_endpoint("HTTP://host"), "host");
        assert_eq!(short_endpoint(""), "");
    }
}
