//! Rendering: functions of the [`App`] state onto a ratatui frame. Nothing
//! here changes the state; the only `&mut` beside the frame is ratatui's
//! per-table scroll state, kept in [`TableStates`] so a list scrolls
//! smoothly instead of jumping. Runs on the TUI's main thread.
//!
//! Layout, top to bottom: a two-line header (profile, URL, connection
//! state), the view tabs, the current view, and a one-line footer (key
//! hints, the filter being typed, or the last operation's outcome).
//! Everything fits 80×24; wider or taller terminals get more columns and rows.

use super::app::{op_label, App, ConnState, Mode, NoticeKind, View, VIEWS};
use super::poll::{Data, Op};
use crate::client::{value_text, ClientError, Conflict};
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, Cell, Clear, Paragraph, Row, Table, TableState, Tabs, Wrap};
use ratatui::Frame;

/// Scroll state of each view's table (index: [`View::index`]), plus the
/// profile selector's.
#[derive(Default)]
pub struct TableStates {
    views: [TableState; 6],
    profiles: TableState,
}

/// Width from which capability views put the detail pane beside the list.
const SIDE_BY_SIDE: u16 = 100;

pub fn render(app: &App, tables: &mut TableStates, f: &mut Frame<'_>) {
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
    f.render_widget(Paragraph::new(vec![line1, line2]), area);
}

/// The connection state in a few words, as the header shows it.
pub fn conn_label(e: &ClientError) -> String {
    match e {
        ClientError::Unreachable(m) => format!("unreachable: {m}"),
        ClientError::Unauthorized(m) => format!("401 unauthorized: {m}"),
        ClientError::Forbidden(m) => format!("403 forbidden: {m}"),
        ClientError::NotFound(_) => "404: no management API at this URL".to_string(),
        ClientError::Server(s, m) => format!("server error {s}: {m}"),
        ClientError::BadJson(m) => format!("unexpected response: {m}"),
        ClientError::Config(m) => m.clone(),
        ClientError::NoToken(m) => format!("no token: {m}"),
    }
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
    f.render_widget(Paragraph::new(line), area);
}

/// The body before the first answer, or while the server has never answered.
fn render_no_data(app: &App, f: &mut Frame<'_>, area: Rect) {
    let url = app.profile().map(|p| p.url.as_str()).unwrap_or("-");
    let mut lines = vec![Line::raw("")];
    match &app.conn {
        ConnState::Connecting | ConnState::Connected => {
            lines.push(Line::raw(format!("Connecting to {url} …")));
        }
        ConnState::Failed(e) => {
            lines.push(Line::styled(conn_label(e), Style::new().fg(Color::Red).bold()));
            lines.push(Line::raw(""));
            for hint in hints(e, url) {
                lines.push(Line::raw(hint));
            }
            lines.push(Line::raw(""));
            lines.push(Line::styled(
                format!("Retrying every {}; p switches profile, q quits.", seconds(app.interval.as_secs_f64())),
                Style::new().dim(),
            ));
        }
    }
    let block = Block::bordered().title(format!(" {} ", app.view.title()));
    f.render_widget(Paragraph::new(lines).block(block).wrap(Wrap { trim: false }), area);
}

/// What the user can do about an error.
fn hints(e: &ClientError, url: &str) -> Vec<String> {
    match e {
        ClientError::Unreachable(_) => vec![
            format!("Is 'mcp-sentinel server' running with its management API at {url}?"),
            "Check the URL (manage.listen, --manage-listen) and any firewall in between.".into(),
        ],
        ClientError::Unauthorized(_) => {
            let mut lines = vec!["The server refused the token sent.".to_string()];
            lines.extend(token_source_hint().map(String::from));
            lines
        }
        ClientError::NoToken(_) => {
            let mut lines = vec!["No request was sent: the token to send could not be read.".to_string()];
            lines.extend(token_source_hint().map(String::from));
            lines
        }
        ClientError::Forbidden(_) => vec!["The server refused this token for reading.".into()],
        ClientError::NotFound(_) => vec![format!("{url} answers, but not as a management API (/manage/v1).")],
        ClientError::Config(_) => vec!["Fix the profile (mcp-sentinel profile add/remove) or the --url flags.".into()],
        ClientError::Server(..) | ClientError::BadJson(_) => {
            vec!["The server answered with an error; its event log or stderr may say more.".into()]
        }
    }
}

/// Where a token comes from, true of a profile and of `tui --url` alike.
fn token_source_hint() -> [&'static str; 4] {
    [
        "Tokens come from token_env or token_file (profiles), --token-env or",
        "--token-file (tui --url), or else, for a loopback URL, the file that a",
        "server without manage.tokens writes its admin token to:",
        "$XDG_STATE_HOME/mcp-sentinel/manage-<port>.token.",
    ]
}

// ---- backends

fn render_backends(app: &App, data: &Data, state: &mut TableState, f: &mut Frame<'_>, area: Rect) {
    let [status_area, table_area, detail_area] =
        Layout::vertical([Constraint::Length(6), Constraint::Fill(1), Constraint::Length(6)]).areas(area);
    render_status(data, f, status_area);

    let rows: Vec<Row<'_>> = app
        .backends()
        .into_iter()
        .map(|b| {
            let c = &b.capabilities;
            Row::new(vec![
                Cell::from(b.name.clone()),
                Cell::from(Span::styled(b.state.clone(), backend_state_style(&b.state))),
                Cell::from(short_type(&b.kind)),
                Cell::from(format!("{}/{}/{}", c.tools, c.resources + c.resource_templates, c.prompts)),
                Cell::from(b.restarts.to_string()),
                Cell::from(b.endpoint.clone()),
                Cell::from(Span::styled(b.last_error.clone().unwrap_or_default(), Style::new().fg(Color::Red))),
            ])
        })
        .collect();
    let header = header_row(&["NAME", "STATE", "TYPE", "T/R/P", "RST", "ENDPOINT", "LAST ERROR"]);
    let widths = [
        Constraint::Length(12),
        Constraint::Length(12),
        Constraint::Length(5),
        Constraint::Length(7),
        Constraint::Length(3),
        Constraint::Fill(2),
        Constraint::Fill(3),
    ];
    let title = list_title("Backends", rows.len(), data.backends.len(), app.filter());
    render_table(rows, header, &widths, title, state, f, table_area);

    let detail = match app.selection(View::Backends).and_then(|i| app.backends().get(i).copied()) {
        None => Text::raw(""),
        Some(b) => {
            let mut first = vec![
                Span::styled(b.name.clone(), Style::new().bold()),
                Span::raw(format!(" · {} · ", b.kind)),
                Span::styled(b.state.clone(), backend_state_style(&b.state)),
                Span::raw(format!(" · restarts {}", b.restarts)),
            ];
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
            if let Some(since) = &b.connected_since {
                second.push(format!("connected since {}", short_time(since)));
            }
            if second.is_empty() {
                second.push("not connected".to_string());
            }
            let error = match &b.last_error {
                Some(e) => {
                    Line::from(vec![Span::raw("last error "), Span::styled(e.clone(), Style::new().fg(Color::Red))])
                }
                None => Line::raw("last error -"),
            };
            Text::from(vec![
                Line::from(first),
                Line::raw(second.join(" · ")),
                Line::raw(format!("endpoint {}", b.endpoint)),
                error,
            ])
        }
    };
    let block = Block::bordered().title(" Selected backend ");
    f.render_widget(Paragraph::new(detail).block(block), detail_area);
}

fn render_status(data: &Data, f: &mut Frame<'_>, area: Rect) {
    let s = &data.status;
    let sv = &s.server;
    let mut first = vec![
        Span::raw("state "),
        Span::styled(sv.state.clone(), server_state_style(&sv.state)),
        Span::raw(format!(" · {} {} · up {}", sv.name, sv.version, uptime(sv.uptime_s))),
    ];
    if let Some(pid) = sv.pid {
        first.push(Span::raw(format!(" · pid {pid}")));
    }
    first.push(Span::raw(format!(" · revision {}", value_text(&sv.revision))));
    let b = &s.backends;
    let backends = Line::from(vec![
        Span::raw(format!("backends {}: ", b.total)),
        Span::styled(format!("{} connected", b.connected), Style::new().fg(Color::Green)),
        Span::raw(", "),
        Span::styled(format!("{} connecting", b.connecting), Style::new().fg(Color::Yellow)),
        Span::raw(", "),
        Span::styled(
            format!("{} failed", b.failed),
            if b.failed > 0 { Style::new().fg(Color::Red) } else { Style::new() },
        ),
        Span::raw(format!(", {} disabled", b.disabled)),
    ]);
    let c = &s.capabilities;
    let ss = &s.sessions;
    let caps = Line::raw(format!(
        "tools {} · resources {} · templates {} · prompts {} · sessions {} ({} sse, {} http)",
        c.tools, c.resources, c.resource_templates, c.prompts, ss.active, ss.sse, ss.streamable_http
    ));
    let mut listen = format!(
        "listen mcp {} · manage {}",
        s.listen.mcp.as_deref().unwrap_or("-"),
        s.listen.manage.as_deref().unwrap_or("-")
    );
    if let Some(p) = &sv.config_path {
        listen.push_str(&format!(" · config {p}"));
    }
    let text = vec![Line::from(first), backends, caps, Line::raw(listen)];
    f.render_widget(Paragraph::new(text).block(Block::bordered().title(" Server ")), area);
}

// ---- capabilities

/// Splits a capability view into the list and the detail pane: side by
/// side when wide, else stacked with the list no taller than its rows need
/// (the detail pane is the one that runs long).
fn list_and_detail(area: Rect, rows: usize) -> (Rect, Rect) {
    let [a, b] = if area.width >= SIDE_BY_SIDE {
        Layout::horizontal([Constraint::Percentage(45), Constraint::Fill(1)]).areas(area)
    } else {
        // Borders and the header row take 3 lines.
        let want = u16::try_from(rows).unwrap_or(u16::MAX).saturating_add(3);
        let list = want.min(area.height / 2).max(5);
        Layout::vertical([Constraint::Length(list), Constraint::Fill(1)]).areas(area)
    };
    (a, b)
}

fn render_tools(app: &App, data: &Data, state: &mut TableState, f: &mut Frame<'_>, area: Rect) {
    let items = app.tools();
    let (list, detail) = list_and_detail(area, items.len());
    let rows: Vec<Row<'_>> =
        items.iter().map(|t| Row::new(vec![Cell::from(t.name.clone()), Cell::from(t.backend.clone())])).collect();
    let title = list_title("Tools", rows.len(), data.capabilities.tools.len(), app.filter());
    let widths = [Constraint::Fill(1), Constraint::Length(14)];
    render_table(rows, header_row(&["NAME", "BACKEND"]), &widths, title, state, f, list);
    let text = app.selection(View::Tools).and_then(|i| items.get(i)).map(|t| {
        let mut lines = owner_lines(&t.name, &t.backend, &t.original_name);
        lines.extend(description(t.description.as_deref()));
        lines.extend(parameter_lines(&t.input_schema));
        lines.push(Line::raw(""));
        lines.push(Line::styled("input schema", Style::new().bold()));
        let schema = serde_json::to_string_pretty(&t.input_schema).unwrap_or_default();
        lines.extend(schema.lines().map(|l| Line::raw(l.to_string())));
        lines.extend(conflict_lines(&data.capabilities.conflicts, "tool", &t.name));
        lines
    });
    render_detail(app, text, f, detail);
}

fn render_resources(app: &App, data: &Data, state: &mut TableState, f: &mut Frame<'_>, area: Rect) {
    let items = app.resources();
    let (list, detail) = list_and_detail(area, items.len());
    let rows: Vec<Row<'_>> = items
        .iter()
        .map(|r| Row::new(vec![Cell::from(r.uri.clone()), Cell::from(r.name.clone()), Cell::from(r.backend.clone())]))
        .collect();
    let title = list_title("Resources", rows.len(), data.capabilities.resources.len(), app.filter());
    let widths = [Constraint::Fill(2), Constraint::Fill(1), Constraint::Length(12)];
    render_table(rows, header_row(&["URI", "NAME", "BACKEND"]), &widths, title, state, f, list);
    let text = app.selection(View::Resources).and_then(|i| items.get(i)).map(|r| {
        let mut lines = vec![
            field_line("uri", &r.uri),
            field_line("name", &r.name),
            field_line("backend", &r.backend),
            field_line("mime type", r.mime_type.as_deref().unwrap_or("-")),
        ];
        lines.extend(description(r.description.as_deref()));
        lines.extend(conflict_lines(&data.capabilities.conflicts, "resource", &r.uri));
        lines
    });
    render_detail(app, text, f, detail);
}

fn render_templates(app: &App, data: &Data, state: &mut TableState, f: &mut Frame<'_>, area: Rect) {
    let items = app.templates();
    let (list, detail) = list_and_detail(area, items.len());
    let rows: Vec<Row<'_>> = items
        .iter()
        .map(|r| {
            Row::new(vec![
                Cell::from(r.uri_template.clone()),
                Cell::from(r.name.clone()),
                Cell::from(r.backend.clone()),
            ])
        })
        .collect();
    let title = list_title("Resource templates", rows.len(), data.capabilities.resource_templates.len(), app.filter());
    let widths = [Constraint::Fill(2), Constraint::Fill(1), Constraint::Length(12)];
    render_table(rows, header_row(&["URI TEMPLATE", "NAME", "BACKEND"]), &widths, title, state, f, list);
    let text = app.selection(View::Templates).and_then(|i| items.get(i)).map(|r| {
        let mut lines = vec![
            field_line("uri template", &r.uri_template),
            field_line("name", &r.name),
            field_line("backend", &r.backend),
        ];
        lines.extend(description(r.description.as_deref()));
        lines.extend(conflict_lines(&data.capabilities.conflicts, "resource_template", &r.uri_template));
        lines
    });
    render_detail(app, text, f, detail);
}

fn render_prompts(app: &App, data: &Data, state: &mut TableState, f: &mut Frame<'_>, area: Rect) {
    let items = app.prompts();
    let (list, detail) = list_and_detail(area, items.len());
    let rows: Vec<Row<'_>> = items
        .iter()
        .map(|p| {
            Row::new(vec![
                Cell::from(p.name.clone()),
                Cell::from(p.backend.clone()),
                Cell::from(p.arguments.len().to_string()),
            ])
        })
        .collect();
    let title = list_title("Prompts", rows.len(), data.capabilities.prompts.len(), app.filter());
    let widths = [Constraint::Fill(1), Constraint::Length(12), Constraint::Length(4)];
    render_table(rows, header_row(&["NAME", "BACKEND", "ARGS"]), &widths, title, state, f, list);
    let text = app.selection(View::Prompts).and_then(|i| items.get(i)).map(|p| {
        let mut lines = owner_lines(&p.name, &p.backend, &p.original_name);
        lines.extend(description(p.description.as_deref()));
        lines.push(Line::raw(""));
        lines.push(Line::styled("arguments", Style::new().bold()));
        if p.arguments.is_empty() {
            lines.push(Line::raw("  (none)"));
        }
        for a in &p.arguments {
            let req = if a.required { " (required)" } else { "" };
            let desc = a.description.as_deref().map(|d| format!(": {d}")).unwrap_or_default();
            lines.push(Line::raw(format!("  {}{req}{desc}", a.name)));
        }
        lines.extend(conflict_lines(&data.capabilities.conflicts, "prompt", &p.name));
        lines
    });
    render_detail(app, text, f, detail);
}

fn owner_lines(name: &str, backend: &str, original: &str) -> Vec<Line<'static>> {
    let mut lines = vec![field_line("name", name), field_line("backend", backend)];
    if !original.is_empty() && original != name {
        lines.push(field_line("original name", original));
    }
    lines
}

/// The schema's top-level properties, one line each: a reading of the
/// schema that fits a small terminal, before the full JSON.
fn parameter_lines(schema: &serde_json::Value) -> Vec<Line<'static>> {
    let Some(props) = schema.get("properties").and_then(|p| p.as_object()) else { return Vec::new() };
    let required: Vec<&str> = schema
        .get("required")
        .and_then(|r| r.as_array())
        .map(|r| r.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    let mut lines = vec![Line::raw(""), Line::styled("parameters", Style::new().bold())];
    for (name, p) in props {
        let ty = match p.get("type") {
            Some(serde_json::Value::String(t)) => t.clone(),
            Some(other) => other.to_string(),
            None => "any".to_string(),
        };
        let req = if required.contains(&name.as_str()) { ", required" } else { "" };
        let desc = p.get("description").and_then(|d| d.as_str()).map(|d| format!(": {d}")).unwrap_or_default();
        lines.push(Line::raw(format!("  {name} ({ty}{req}){desc}")));
    }
    lines
}

fn description(d: Option<&str>) -> Vec<Line<'static>> {
    let mut lines = vec![Line::raw("")];
    match d {
        Some(d) if !d.is_empty() => lines.extend(d.lines().map(|l| Line::raw(l.to_string()))),
        _ => lines.push(Line::styled("(no description)", Style::new().dim())),
    }
    lines
}

fn conflict_lines(conflicts: &[Conflict], kind: &str, name: &str) -> Vec<Line<'static>> {
    conflicts
        .iter()
        .filter(|c| c.kind == kind && c.name == name)
        .map(|c| {
            Line::styled(
                format!("name clash: kept from {}, dropped from {}", c.kept, c.dropped),
                Style::new().fg(Color::Yellow),
            )
        })
        .collect()
}

fn field_line(label: &str, value: &str) -> Line<'static> {
    Line::from(vec![Span::styled(format!("{label}: "), Style::new().bold()), Span::raw(value.to_string())])
}

fn render_detail(app: &App, text: Option<Vec<Line<'static>>>, f: &mut Frame<'_>, area: Rect) {
    let block = Block::bordered().title(" Detail (J/K scroll) ");
    let text = text.unwrap_or_else(|| vec![Line::styled("nothing selected", Style::new().dim())]);
    let p = Paragraph::new(text).block(block).wrap(Wrap { trim: false }).scroll((app.detail_scroll, 0));
    f.render_widget(p, area);
}

// ---- events

fn render_events(app: &App, state: &mut TableState, f: &mut Frame<'_>, area: Rect) {
    let [table_area, detail_area] = Layout::vertical([Constraint::Fill(1), Constraint::Length(4)]).areas(area);
    let items = app.event_rows();
    let rows: Vec<Row<'_>> = items
        .iter()
        .map(|e| {
            Row::new(vec![
                Cell::from(e.id.to_string()),
                Cell::from(short_time(&e.time)),
                Cell::from(Span::styled(e.level.clone(), level_style(&e.level))),
                Cell::from(e.kind.clone()),
                Cell::from(e.backend.clone().unwrap_or_default()),
                Cell::from(e.message.clone()),
            ])
        })
        .collect();
    let widths = [
        Constraint::Length(5),
        Constraint::Length(9),
        Constraint::Length(5),
        Constraint::Length(20),
        Constraint::Length(10),
        Constraint::Fill(1),
    ];
    let mut title = list_title("Events", rows.len(), app.events.len(), app.filter());
    if app.follow_events {
        title.push_str("· following ");
    }
    let header = header_row(&["ID", "TIME", "LEVEL", "KIND", "BACKEND", "MESSAGE"]);
    render_table(rows, header, &widths, title, state, f, table_area);
    let text = match app.selection(View::Events).and_then(|i| items.get(i)) {
        Some(e) => Text::from(vec![
            Line::from(vec![
                Span::raw(format!("#{} {} ", e.id, e.time)),
                Span::styled(e.level.clone(), level_style(&e.level)),
                Span::raw(format!(" {} {}", e.kind, e.backend.as_deref().unwrap_or(""))),
            ]),
            Line::raw(e.message.clone()),
        ]),
        None => Text::raw(""),
    };
    f.render_widget(Paragraph::new(text).block(Block::bordered()).wrap(Wrap { trim: false }), detail_area);
}

// ---- popups

fn render_help(f: &mut Frame<'_>) {
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

fn render_confirm(app: &App, op: &Op, f: &mut Frame<'_>) {
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

fn render_profiles(app: &App, cursor: usize, state: &mut TableState, f: &mut Frame<'_>) {
    let rows: Vec<Row<'_>> = app
        .profiles
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mark = if i == app.active { "*" } else { " " };
            Row::new(vec![Cell::from(format!("{mark} {}", p.name)), Cell::from(p.url.clone())])
        })
        .collect();
    let height = (rows.len() as u16 + 3).min(f.area().height.saturating_sub(4)).max(5);
    let area = centered(f.area(), 70, height);
    f.render_widget(Clear, area);
    state.select(Some(cursor));
    let table = Table::new(rows, [Constraint::Length(20), Constraint::Fill(1)])
        .header(header_row(&["  PROFILE", "URL"]))
        .block(Block::bordered().title(" Profiles (Enter switch, Esc close) "))
        .row_highlight_style(Style::new().reversed())
        .highlight_symbol("▶ ");
    f.render_stateful_widget(table, area, state);
}

// ---- helpers

fn header_row(names: &[&str]) -> Row<'static> {
    Row::new(names.iter().map(|n| Cell::from(n.to_string())))
        .style(Style::new().bold().add_modifier(Modifier::UNDERLINED))
}

fn render_table(
    rows: Vec<Row<'_>>,
    header: Row<'_>,
    widths: &[Constraint],
    title: String,
    state: &mut TableState,
    f: &mut Frame<'_>,
    area: Rect,
) {
    let empty = rows.is_empty();
    let table = Table::new(rows, widths.to_vec())
        .header(header)
        .block(Block::bordered().title(title))
        .row_highlight_style(Style::new().reversed())
        .highlight_symbol("▶ ");
    f.render_stateful_widget(table, area, state);
    if empty {
        let inner = Block::bordered().inner(area);
        let msg = Rect { y: inner.y.saturating_add(1), height: inner.height.saturating_sub(1), ..inner };
        f.render_widget(Paragraph::new(Line::styled("  (none)", Style::new().dim())), msg);
    }
}

/// ` Tools (4) ` or ` Tools (2 of 4, filter "git") `.
fn list_title(what: &str, shown: usize, total: usize, filter: &str) -> String {
    if filter.is_empty() {
        format!(" {what} ({total}) ")
    } else {
        format!(" {what} ({shown} of {total}, filter \"{filter}\") ")
    }
}

fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(area.width);
    let h = height.min(area.height);
    Rect { x: area.x + (area.width - w) / 2, y: area.y + (area.height - h) / 2, width: w, height: h }
}

/// `streamable-http` takes a third of an 80-column table; its config alias
/// says the same.
fn short_type(kind: &str) -> String {
    match kind {
        "streamable-http" => "http".to_string(),
        other => other.to_string(),
    }
}

pub fn backend_state_style(state: &str) -> Style {
    match state {
        "connected" => Style::new().fg(Color::Green),
        "connecting" | "pending" => Style::new().fg(Color::Yellow),
        "failed" => Style::new().fg(Color::Red).bold(),
        "disconnected" => Style::new().fg(Color::LightRed),
        "disabled" => Style::new().fg(Color::DarkGray),
        _ => Style::new(),
    }
}

fn server_state_style(state: &str) -> Style {
    match state {
        "ready" => Style::new().fg(Color::Green).bold(),
        "degraded" | "starting" => Style::new().fg(Color::Yellow).bold(),
        "failed" => Style::new().fg(Color::Red).bold(),
        _ => Style::new().fg(Color::DarkGray),
    }
}

fn level_style(level: &str) -> Style {
    match level {
        "error" => Style::new().fg(Color::Red).bold(),
        "warn" => Style::new().fg(Color::Yellow),
        "debug" => Style::new().fg(Color::DarkGray),
        _ => Style::new(),
    }
}

/// `HH:MM:SSZ` of an RFC 3339 time: the time of day with its zone, `Z`
/// for UTC (the server's times are UTC), else the offset as given.
fn short_time(rfc3339: &str) -> String {
    let Some((_, t)) = rfc3339.split_once(['T', 't', ' ']) else { return rfc3339.to_string() };
    let hms: String = t.chars().take(8).collect();
    let rest = t.get(8..).unwrap_or("").trim_start_matches(|c: char| c == '.' || c.is_ascii_digit());
    match rest {
        "Z" | "z" | "+00:00" | "-00:00" => format!("{hms}Z"),
        other => format!("{hms}{other}"),
    }
}

/// `HH:MM:SSZ` of a local instant, in UTC like the server's times.
fn clock(t: std::time::SystemTime) -> String {
    short_time(&crate::util::rfc3339(t))
}

/// `45s`, `12m 05s`, `3h 02m`, `2d 04h`.
pub fn uptime(secs: f64) -> String {
    let s = if secs.is_finite() && secs > 0.0 { secs as u64 } else { 0 };
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {:02}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h {:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {:02}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// `1s`, `0.5s`.
fn seconds(s: f64) -> String {
    if s.fract() == 0.0 {
        format!("{s:.0}s")
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::super::app::tests::{ch, connected, data, profiles, snapshot};
    use super::super::app::Notice;
    use super::*;
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;
    use std::time::Duration;

    /// Renders `app` at `w`×`h` and returns the screen as text, one line a row.
    pub fn screen(app: &App, w: u16, h: u16) -> String {
        let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
        let mut tables = TableStates::default();
        term.draw(|f| render(app, &mut tables, f)).unwrap();
        let buf = term.backend().buffer();
        let mut out = String::new();
        for y in 0..buf.area.height {
            let mut line = String::new();
            for x in 0..buf.area.width {
                line.push_str(buf[(x, y)].symbol());
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    const SIZES: [(u16, u16); 2] = [(80, 24), (120, 40)];

    fn assert_has(screen: &str, wanted: &[&str]) {
        for w in wanted {
            assert!(screen.contains(w), "missing {w:?} in:\n{screen}");
        }
    }

    fn view(n: char) -> App {
        let mut app = connected();
        app.on_key(ch(n));
        app
    }

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
                    "server github-mcp 1.2.0 · protocol 2025-06-18 · connected since 10:00:01",
                    "q quit",
                ],
            );
        }
        // Wide enough to show the error column's text.
        let s = screen(&view('1'), 120, 40);
        assert_has(&s, &["connect to weather", "listen mcp 127.0.0.1:9000 · manage 127.0.0.1:9001"]);
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
    fn tools_view() {
        for (w, h) in SIZES {
            let s = screen(&view('2'), w, h);
            assert_has(
                &s,
                &["Tools (4)", "create_issue", "search_code", "fs__read_file", "echo", "github", "name: create_issue"],
            );
            assert_has(&s, &["Create a new issue", "parameters", "repo (string, required): owner/name"]);
        }
        // Original name and a name clash show in the detail pane.
        let mut app = view('2');
        app.on_key(ch('j'));
        app.on_key(ch('j'));
        assert_has(&screen(&app, 120, 40), &["original name: read_file", "input schema", "\"path\""]);
        app.on_key(ch('j'));
        assert_has(&screen(&app, 120, 40), &["(no description)", "name clash: kept from files, dropped from legacy"]);
    }

    #[test]
    fn resources_view() {
        for (w, h) in SIZES {
            let s = screen(&view('3'), w, h);
            assert_has(&s, &["Resources (2)", "file:///README.md", "todo.txt", "mime type: text/markdown"]);
        }
    }

    #[test]
    fn templates_view() {
        for (w, h) in SIZES {
            let s = screen(&view('4'), w, h);
            assert_has(&s, &["Resource templates (1)", "file:///{path}", "Any file under the allowed roots."]);
        }
    }

    #[test]
    fn prompts_view() {
        for (w, h) in SIZES {
            let s = screen(&view('5'), w, h);
            assert_has(&s, &["Prompts (2)", "review_pr", "fs__summarize", "arguments", "repo (required): owner/name"]);
        }
    }

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
    fn connecting_state() {
        let app = App::new(profiles(), 1, Duration::from_secs(1));
        for (w, h) in SIZES {
            let s = screen(&app, w, h);
            assert_has(&s, &["profile staging", "https://staging.example.com:9001", "… connecting", "Connecting to"]);
        }
    }

    fn failed(e: ClientError) -> App {
        let mut app = App::new(profiles(), 0, Duration::from_secs(1));
        app.apply_snapshot(snapshot(0, Err(e)));
        app
    }

    #[test]
    fn unreachable_state() {
        let app = failed(ClientError::Unreachable("connection refused".into()));
        for (w, h) in SIZES {
            let s = screen(&app, w, h);
            assert_has(
                &s,
                &["✖ unreachable: connection refused", "Is 'mcp-sentinel server' running", "Retrying every 1s"],
            );
            assert_has(&s, &["profile local  http://127.0.0.1:9001"]);
        }
    }

    #[test]
    fn unauthorized_and_forbidden_states() {
        let app = failed(ClientError::Unauthorized("missing or invalid bearer token".into()));
        for (w, h) in SIZES {
            let s = screen(&app, w, h);
            assert_has(&s, &["401 unauthorized", "refused the token", "--token-env"]);
            assert!(!s.contains("profile's"), "a --url target has no profile:\n{s}");
        }
        let app = failed(ClientError::Forbidden("token lacks the read scope".into()));
        for (w, h) in SIZES {
            assert_has(&screen(&app, w, h), &["403 forbidden", "lacks the read scope"]);
        }
    }

    #[test]
    fn a_token_that_cannot_be_read_is_a_local_problem() {
        let app = failed(ClientError::NoToken("environment variable UNSET_VAR is not set".into()));
        for (w, h) in SIZES {
            let s = screen(&app, w, h);
            assert_has(
                &s,
                &["✖ no token: environment variable UNSET_VAR is not set", "No request was sent", "--token-env"],
            );
            for wrong in ["401", "refused", "profile's"] {
                assert!(!s.contains(wrong), "{wrong:?} in:\n{s}");
            }
        }
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
            assert_has(&screen(&app, w, h), &["Profiles (Enter switch, Esc close)", "* local", "staging"]);
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
    fn times_are_utc_with_z() {
        let s = screen(&view('1'), 80, 24);
        assert_has(&s, &["updated 11:22:53Z", "connected since 10:00:01Z"]);
        let s = screen(&view('6'), 80, 24);
        assert_has(&s, &["TIME", "10:00:00Z info", "10:00:02Z error"]);
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

    #[test]
    fn formatting_helpers() {
        assert_eq!(uptime(45.0), "45s");
        assert_eq!(uptime(725.0), "12m 05s");
        assert_eq!(uptime(3725.0), "1h 02m");
        assert_eq!(uptime(190_000.0), "2d 04h");
        assert_eq!(uptime(f64::NAN), "0s");
        assert_eq!(short_time("2026-11-24T10:00:02.110Z"), "10:00:02Z");
        assert_eq!(short_time("2026-11-24T10:00:02Z"), "10:00:02Z");
        assert_eq!(short_time("2026-11-24T10:00:02+00:00"), "10:00:02Z");
        assert_eq!(short_time("2026-11-24T11:00:02.5+01:00"), "11:00:02+01:00");
        assert_eq!(clock(std::time::UNIX_EPOCH + Duration::from_secs(3661)), "01:01:01Z");
        assert_eq!(seconds(1.0), "1s");
        assert_eq!(seconds(0.5), "0.5s");
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
