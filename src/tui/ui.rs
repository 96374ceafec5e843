//! Rendering: functions of the [`App`] state onto a ratatui frame. Nothing
//! here changes the state; the only `&mut` beside the frame is ratatui's
//! per-table scroll state, kept in [`TableStates`] so a list scrolls
//! smoothly instead of jumping. Runs on the TUI's main thread.
//!
//! Layout, top to bottom: a two-line header (profile, URL, connection
//! state), the view tabs, the current view, and a one-line footer (key
//! hints, the filter being typed, or the last operation's outcome).
//! Everything fits 80×24; wider or taller terminals get more columns and rows.
//! Table columns are sized by their content, and text cut to fit ends with
//! `…`, so a cut is never mistaken for the whole.

use super::app::{op_label, App, ConnState, Mode, NoticeKind, View, VIEWS};
use super::poll::{Data, Op};
use crate::api::Conflict;
use crate::client::ClientError;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, Cell, Clear, HighlightSpacing, Paragraph, Row, Table, TableState, Tabs, Wrap};
use ratatui::Frame;

/// Scroll state of each view's table (index: [`View::index`]), plus the
/// profile selector's, for one profile: a switch starts them over.
#[derive(Default)]
pub struct TableStates {
    /// The [`App::generation`] these states belong to.
    generation: u64,
    views: [TableState; 6],
    profiles: TableState,
}

/// Width from which capability views may put the detail pane beside the
/// list (when the list's content fits in [`SIDE_LIST_MAX`] of it).
const SIDE_BY_SIDE: u16 = 100;
/// Share of the width (percent) the list may take beside the detail pane.
const SIDE_LIST_MAX: u16 = 60;
/// Share of the width (percent) the list takes at least beside the pane.
const SIDE_LIST_MIN: u16 = 35;

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
    f.render_widget(Paragraph::new(fit_line(line, area.width)), area);
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
    let backends = app.backends();
    // The table as tall as its rows need; the detail pane gets 6 to 8 lines
    // (a long last error wraps there), any more goes to the table.
    let rest = area.height.saturating_sub(STATUS_HEIGHT);
    let table_want = u16::try_from(backends.len()).unwrap_or(u16::MAX).saturating_add(3);
    let detail_height = rest.saturating_sub(table_want).clamp(6, 8);
    let [status_area, table_area, detail_area] =
        Layout::vertical([Constraint::Length(STATUS_HEIGHT), Constraint::Fill(1), Constraint::Length(detail_height)])
            .areas(area);
    render_status(data, f, status_area);

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
                Span::styled(b.state.clone(), backend_state_style(&b.state)),
                Span::raw(short_type(&b.kind)),
                Span::raw(format!("{}/{}/{}", c.tools, c.resources + c.resource_templates, c.prompts)),
                Span::raw(b.restarts.to_string()),
                Span::raw(short_endpoint(&b.endpoint)),
                Span::styled(b.last_error.clone().unwrap_or_default(), Style::new().fg(Color::Red)),
            ]
        })
        .collect();
    let title = list_title("Backends", rows.len(), data.backends.len(), app.filter());
    FitTable { cols: &cols, rows }.render(title, state, f, table_area);

    let width = detail_area.width.saturating_sub(2);
    let detail = match app.selection(View::Backends).and_then(|i| backends.get(i).copied()) {
        None => Text::raw(""),
        Some(b) => {
            let mut state = vec![Span::styled(b.state.clone(), backend_state_style(&b.state))];
            if let Some(since) = &b.connected_since {
                state.push(Span::raw(format!(" since {}", short_time(since))));
            }
            let mut first =
                vec![Span::styled(b.name.clone(), Style::new().bold()), Span::raw(format!(" · {} · ", b.kind))];
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
                Some(e) => {
                    Line::from(vec![Span::raw("last error "), Span::styled(e.clone(), Style::new().fg(Color::Red))])
                }
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
    let block = Block::bordered().title(" Selected backend ");
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

fn render_status(data: &Data, f: &mut Frame<'_>, area: Rect) {
    let width = area.width.saturating_sub(2);
    let s = &data.status;
    let sv = &s.server;
    let mut first = vec![
        Span::raw("state "),
        Span::styled(sv.state.clone(), server_state_style(&sv.state)),
        Span::raw(format!(" · {} {} · up {}", sv.name, sv.version, uptime(sv.uptime_s as f64))),
    ];
    // 0: an older server that did not send it.
    if sv.pid != 0 {
        first.push(Span::raw(format!(" · pid {}", sv.pid)));
    }
    first.push(Span::raw(format!(" · revision {}", sv.revision)));
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
        caps.push(Span::styled(format!("conflicts {conflicts}"), Style::new().fg(Color::Yellow)));
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
    f.render_widget(Paragraph::new(text).block(Block::bordered().title(" Server ")), area);
}

// ---- capabilities

/// Splits a capability view into the list and the detail pane: side by
/// side when the terminal is wide and the list's content fits in
/// [`SIDE_LIST_MAX`] of it, else stacked, the list getting the whole width
/// and no more height than its rows need (the detail pane is the one that
/// runs long).
fn list_and_detail(area: Rect, table: &FitTable<'_>) -> (Rect, Rect) {
    let natural = table.natural_width();
    let side =
        area.width >= SIDE_BY_SIDE && u32::from(natural) * 100 <= u32::from(area.width) * u32::from(SIDE_LIST_MAX);
    let rows = table.rows.len();
    let [a, b] = if side {
        let min = u16::try_from(u32::from(area.width) * u32::from(SIDE_LIST_MIN) / 100).unwrap_or(0);
        Layout::horizontal([Constraint::Length(natural.max(min)), Constraint::Fill(1)]).areas(area)
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
    let cols = [Col::new("NAME", 12), Col::new("BACKEND", 8)];
    let rows = items.iter().map(|t| vec![Span::raw(t.name.clone()), Span::raw(t.backend.clone())]).collect();
    let table = FitTable { cols: &cols, rows };
    let (list, detail) = list_and_detail(area, &table);
    let title = list_title("Tools", items.len(), data.capabilities.tools.len(), app.filter());
    table.render(title, state, f, list);
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
    let cols = [Col::new("URI", 16), Col::new("NAME", 8), Col::new("BACKEND", 8)];
    let rows = items
        .iter()
        .map(|r| {
            vec![Span::raw(r.uri.clone()), Span::raw(r.name.clone().unwrap_or_default()), Span::raw(r.backend.clone())]
        })
        .collect();
    let table = FitTable { cols: &cols, rows };
    let (list, detail) = list_and_detail(area, &table);
    let title = list_title("Resources", items.len(), data.capabilities.resources.len(), app.filter());
    table.render(title, state, f, list);
    let text = app.selection(View::Resources).and_then(|i| items.get(i)).map(|r| {
        let mut lines = vec![
            field_line("uri", &r.uri),
            field_line("name", r.name.as_deref().unwrap_or("-")),
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
    let cols = [Col::new("URI TEMPLATE", 16), Col::new("NAME", 8), Col::new("BACKEND", 8)];
    let rows = items
        .iter()
        .map(|r| {
            vec![
                Span::raw(r.uri_template.clone()),
                Span::raw(r.name.clone().unwrap_or_default()),
                Span::raw(r.backend.clone()),
            ]
        })
        .collect();
    let table = FitTable { cols: &cols, rows };
    let (list, detail) = list_and_detail(area, &table);
    let title = list_title("Resource templates", items.len(), data.capabilities.resource_templates.len(), app.filter());
    table.render(title, state, f, list);
    let text = app.selection(View::Templates).and_then(|i| items.get(i)).map(|r| {
        let mut lines = vec![
            field_line("uri template", &r.uri_template),
            field_line("name", r.name.as_deref().unwrap_or("-")),
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
    let cols = [Col::new("NAME", 12), Col::new("BACKEND", 8), Col::fixed("ARGS")];
    let rows = items
        .iter()
        .map(|p| {
            vec![Span::raw(p.name.clone()), Span::raw(p.backend.clone()), Span::raw(p.arguments.len().to_string())]
        })
        .collect();
    let table = FitTable { cols: &cols, rows };
    let (list, detail) = list_and_detail(area, &table);
    let title = list_title("Prompts", items.len(), data.capabilities.prompts.len(), app.filter());
    table.render(title, state, f, list);
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
            lines.push(Line::raw(format!("  {}{req}{desc}", a.name.as_deref().unwrap_or("-"))));
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
    let rows = items
        .iter()
        .map(|e| {
            vec![
                Span::raw(e.id.to_string()),
                Span::raw(short_time(&e.time)),
                Span::styled(e.level.clone(), level_style(&e.level)),
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
    FitTable { cols: &cols, rows }.render(title, state, f, table_area);
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

/// The profile selector; `*` marks the profile being viewed.
fn render_profiles(app: &App, cursor: usize, state: &mut TableState, f: &mut Frame<'_>) {
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

// ---- helpers

/// A table column: its header, and how narrow it may get when the table is
/// short of room (never narrower than its content needs when there is room).
struct Col {
    header: &'static str,
    min: u16,
}

impl Col {
    /// May shrink down to `min` columns, its text cut with `…`.
    const fn new(header: &'static str, min: u16) -> Col {
        Col { header, min }
    }

    /// Always as wide as its widest cell (short values: states, counts).
    const fn fixed(header: &'static str) -> Col {
        Col { header, min: u16::MAX }
    }
}

/// A list drawn as a table whose columns are sized by their content: when
/// everything fits, each column is as wide as its widest cell and the last
/// takes the rest; when not, the widest columns give up width first and
/// their cells end with `…`. The highlight column is always there, so the
/// header does not move when nothing is selected.
struct FitTable<'c> {
    cols: &'c [Col],
    /// One span per cell.
    rows: Vec<Vec<Span<'static>>>,
}

/// `▶ `, the selected row's mark.
const HIGHLIGHT: &str = "▶ ";

impl FitTable<'_> {
    /// Each column's widest cell (or header).
    fn wants(&self) -> Vec<u16> {
        self.cols
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let cells = self.rows.iter().filter_map(|r| r.get(i)).map(|s| text_width(&s.content));
                let w = cells.fold(text_width(c.header), usize::max);
                u16::try_from(w).unwrap_or(u16::MAX)
            })
            .collect()
    }

    /// The width that shows every cell whole: columns, the spaces between
    /// them, the highlight column and the borders.
    fn natural_width(&self) -> u16 {
        let cols: u32 = self.wants().iter().map(|&w| u32::from(w)).sum();
        let extra = self.cols.len().saturating_sub(1) + text_width(HIGHLIGHT) + 2;
        u16::try_from(cols + extra as u32).unwrap_or(u16::MAX)
    }

    fn render(self, title: String, state: &mut TableState, f: &mut Frame<'_>, area: Rect) {
        let n = self.cols.len();
        let spare = n.saturating_sub(1) + text_width(HIGHLIGHT) + 2;
        let avail = usize::from(area.width).saturating_sub(spare);
        let mins: Vec<u16> = self.cols.iter().map(|c| c.min).collect();
        let widths = fit_widths(&self.wants(), &mins, u16::try_from(avail).unwrap_or(u16::MAX));
        let header = Row::new(self.cols.iter().zip(&widths).map(|(c, &w)| Cell::from(ellipsize(c.header, w))))
            .style(Style::new().bold().add_modifier(Modifier::UNDERLINED));
        let len = self.rows.len();
        let rows: Vec<Row<'_>> = self
            .rows
            .into_iter()
            .map(|cells| {
                Row::new(
                    cells
                        .into_iter()
                        .zip(&widths)
                        .map(|(s, &w)| Cell::from(Span::styled(ellipsize(&s.content, w), s.style))),
                )
            })
            .collect();
        // Never leave rows hidden above while there is room below (a list
        // that shrank, by a filter or a server switch, keeps no stale
        // offset): borders and the header take 3 lines.
        let visible = usize::from(area.height.saturating_sub(3));
        let offset = state.offset().min(len.saturating_sub(visible));
        *state.offset_mut() = offset;
        let table = Table::new(rows, widths.iter().map(|&w| Constraint::Length(w)))
            .header(header)
            .block(Block::bordered().title(title))
            .row_highlight_style(Style::new().reversed())
            .highlight_symbol(HIGHLIGHT)
            .highlight_spacing(HighlightSpacing::Always);
        f.render_stateful_widget(table, area, state);
        if len == 0 {
            let inner = Block::bordered().inner(area);
            let msg = Rect { y: inner.y.saturating_add(1), height: inner.height.saturating_sub(1), ..inner };
            f.render_widget(Paragraph::new(Line::styled("  (none)", Style::new().dim())), msg);
        }
    }
}

/// Column widths for `avail` cells of width: the wanted widths if they fit,
/// the last column taking what is left; else every column is capped at the
/// widest cap that fits (but not below its minimum), so the widest give up
/// width first.
fn fit_widths(wants: &[u16], mins: &[u16], avail: u16) -> Vec<u16> {
    let mins: Vec<u16> = mins.iter().zip(wants).map(|(&m, &w)| m.min(w)).collect();
    let sum = |v: &[u16]| v.iter().map(|&x| u32::from(x)).sum::<u32>();
    let total = sum(wants);
    if total <= u32::from(avail) {
        let mut out = wants.to_vec();
        if let Some(last) = out.last_mut() {
            *last += avail - total as u16;
        }
        return out;
    }
    let capped = |cap: u16| -> Vec<u16> { wants.iter().zip(&mins).map(|(&w, &m)| w.min(cap).max(m)).collect() };
    // The widest cap that fits, by bisection: capped(0) is the minimums.
    let (mut lo, mut hi) = (0u16, wants.iter().copied().max().unwrap_or(0));
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if sum(&capped(mid)) <= u32::from(avail) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    let mut out = capped(lo);
    // What the cap leaves, one cell each to the cut columns, left first.
    let mut left = u32::from(avail).saturating_sub(sum(&out));
    for (o, &w) in out.iter_mut().zip(wants) {
        if left > 0 && *o < w {
            *o += 1;
            left -= 1;
        }
    }
    out
}

/// Display width of a text (wide characters count two).
fn text_width(s: &str) -> usize {
    Span::raw(s).width()
}

fn char_width(c: char) -> usize {
    let mut buf = [0u8; 4];
    text_width(c.encode_utf8(&mut buf))
}

/// Line breaks and tabs as spaces: a cell or line holds one line.
fn one_line(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// `s` cut to `width` columns, ending with `…` when cut.
fn ellipsize(s: &str, width: u16) -> String {
    let s = one_line(s);
    if text_width(&s) <= usize::from(width) {
        return s;
    }
    let mut out = cut(&s, usize::from(width).saturating_sub(1));
    if width > 0 {
        out.push('…');
    }
    out
}

/// `s` cut to `width` columns from the left, starting with `…` when cut:
/// for paths, whose end says the most.
fn ellipsize_start(s: &str, width: usize) -> String {
    if text_width(s) <= width || width == 0 {
        return if width == 0 { String::new() } else { s.to_string() };
    }
    let mut kept: Vec<char> = Vec::new();
    let mut used = 0;
    for c in s.chars().rev() {
        let w = char_width(c);
        if used + w > width - 1 {
            break;
        }
        used += w;
        kept.push(c);
    }
    std::iter::once('…').chain(kept.into_iter().rev()).collect()
}

/// The longest start of `s` at most `width` columns wide.
fn cut(s: &str, width: usize) -> String {
    let mut used = 0;
    s.chars()
        .take_while(|&c| {
            used += char_width(c);
            used <= width
        })
        .collect()
}

/// A one-line text cut to `width` columns, ending with `…` when cut.
fn fit_line<'a>(line: Line<'a>, width: u16) -> Line<'a> {
    let width = usize::from(width);
    if line.width() <= width {
        return line;
    }
    let mut left = width.saturating_sub(1);
    let mut spans = Vec::new();
    for span in line.spans {
        let w = span.width();
        if w <= left {
            left -= w;
            spans.push(span);
            continue;
        }
        let kept = cut(&span.content, left);
        spans.push(Span::styled(format!("{kept}…"), span.style));
        break;
    }
    Line { spans, ..line }
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

/// A JSON value meant for display (a backend's `serverInfo`): a string as
/// is, null as `-`, anything else as compact JSON.
fn value_text(v: &serde_json::Value) -> String {
    use serde_json::Value;
    match v {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        Value::Object(o) => {
            // serverInfo: "name version" reads better than JSON.
            let name = o.get("name").and_then(Value::as_str);
            let version = o.get("version").and_then(Value::as_str);
            match (name, version) {
                (Some(n), Some(v)) => format!("{n} {v}"),
                (Some(n), None) => n.to_string(),
                _ => v.to_string(),
            }
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::app::tests::{ch, connected, data, profiles, snapshot};
    use super::super::app::Notice;
    use super::*;
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;
    use std::sync::Arc;
    use std::time::Duration;

    /// Renders `app` at `w`×`h` and returns the screen as text, one line a row.
    pub fn screen(app: &App, w: u16, h: u16) -> String {
        screen_with(app, &mut TableStates::default(), w, h)
    }

    /// [`screen`] with the scroll states kept from earlier frames, as the
    /// event loop keeps them.
    fn screen_with(app: &App, tables: &mut TableStates, w: u16, h: u16) -> String {
        let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
        term.draw(|f| render(app, tables, f)).unwrap();
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

    const SIZES: [(u16, u16); 3] = [(80, 24), (100, 30), (120, 40)];

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

    /// `n` events, `message 01` …, as a poll of a busy server gives them.
    fn many_events(n: u64) -> Arc<Vec<crate::api::Event>> {
        Arc::new(
            (1..=n)
                .map(|i| crate::api::Event {
                    id: i,
                    time: "2026-11-24T10:00:00.000Z".into(),
                    level: "info".into(),
                    kind: "backend.connected".into(),
                    backend: Some("alpha".into()),
                    message: format!("message {i:02}"),
                })
                .collect(),
        )
    }

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
    fn header_keeps_its_place_with_no_match() {
        let mut app = view('3');
        let before = screen(&app, 80, 24);
        assert_has(&before, &["│  URI "]);
        app.on_key(ch('/'));
        app.on_key(ch('z'));
        let after = screen(&app, 80, 24);
        assert_has(&after, &["│  URI ", "(none)", "Resources (0 of 2, filter \"z\")"]);
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
            assert_has(&screen(&app, w, h), &["Profiles (↑↓ jk move, Enter switch, Esc close)", "* local", "staging"]);
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

    /// The fixture with the demo's backends: a program path that says
    /// nothing, a long server name, no error.
    fn demo_data() -> Data {
        let mut d = data();
        for (i, b) in d.backends.iter_mut().enumerate() {
            b.name = format!("demo-{i}");
            b.endpoint = format!("/work/target-review/debug/mcp-sentinel-demo --name demo-{i}");
            b.state = "connected".into();
            b.server_info =
                serde_json::json!({"name": format!("mcp-sentinel-demo-gateway-demo-{i}"), "version": "0.1.0"});
            b.last_error = None;
            b.connected_since = Some("2026-11-24T10:00:01.250Z".into());
        }
        let caps = Arc::make_mut(&mut d.capabilities);
        caps.resources = ["readme", "config.json", "items/index.json"]
            .iter()
            .map(|r| crate::api::Resource {
                uri: format!("demo://alpha/{r}"),
                name: Some(r.to_string()),
                backend: "alpha".into(),
                ..Default::default()
            })
            .collect();
        d
    }

    fn with_data(d: Data, key: char) -> App {
        let mut app = App::new(profiles(), 0, Duration::from_secs(1));
        app.apply_snapshot(snapshot(0, Ok(d)));
        app.on_key(ch(key));
        app
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
    fn cut_text_ends_with_an_ellipsis() {
        // At 80 columns neither the endpoint nor the error fits: both end in `…`.
        let s = screen(&view('1'), 80, 24);
        assert_has(&s, &["npx -y @modelcontext…", "connect to weather.…"]);
        assert_has(&s, &["config …/mcp-sentinel.json"]);
        let s = screen(&view('6'), 80, 24);
        assert_has(&s, &["mcp-sentinel 0.1.0 starting…"]);
        // A long URI in a narrow list.
        let mut d = demo_data();
        let long = format!("demo://alpha/{}", "segment/".repeat(12));
        Arc::make_mut(&mut d.capabilities).resources[0].uri = long.clone();
        let s = screen(&with_data(d, '3'), 80, 24);
        assert!(s.lines().any(|l| l.contains("│▶ demo://alpha/segment/") && l.contains("… readme ")), "{s}");
    }

    #[test]
    fn resources_get_room_for_their_uris() {
        let app = with_data(demo_data(), '3');
        for (w, h) in SIZES {
            let s = screen(&app, w, h);
            assert_has(&s, &["│▶ demo://alpha/readme ", "│  demo://alpha/items/index.json "]);
            assert!(!s.contains('…'), "nothing is cut at {w}x{h}:\n{s}");
        }
        // Side by side at 100 columns when the list's content fits.
        let s = screen(&app, 100, 30);
        assert!(s.lines().any(|l| l.contains("demo://alpha/readme") && l.contains("uri: demo://alpha/readme")), "{s}");
        // A list too wide to sit beside the pane is stacked over it.
        let mut d = demo_data();
        let long = format!("demo://alpha/{}", "segment/".repeat(7));
        Arc::make_mut(&mut d.capabilities).resources[0].uri = long.clone();
        let s = screen(&with_data(d, '3'), 100, 30);
        assert_has(&s, &[&format!("│▶ {long} ")]);
        assert!(!s.lines().any(|l| l.contains("demo://alpha/readme") && l.contains("Detail")), "{s}");
    }

    #[test]
    fn times_are_utc_with_z() {
        let s = screen(&view('1'), 80, 24);
        assert_has(&s, &["updated 11:22:53Z", "connected since 10:00:01Z"]);
        let s = screen(&view('6'), 80, 24);
        assert_has(&s, &["TIME", "10:00:00Z info", "10:00:02Z error"]);
    }

    #[test]
    fn column_fitting() {
        // Room for everything: the last column takes the rest.
        assert_eq!(fit_widths(&[4, 10, 6], &[4, 4, 4], 30), [4, 10, 16]);
        // Short of room: the widest give up width first, not below their minimum.
        assert_eq!(fit_widths(&[4, 40, 30], &[u16::MAX, 8, 8], 44), [4, 20, 20]);
        assert_eq!(fit_widths(&[4, 40, 10], &[u16::MAX, 8, 8], 44), [4, 30, 10]);
        assert_eq!(fit_widths(&[4, 40, 30], &[u16::MAX, 8, 8], 45), [4, 21, 20]);
        assert_eq!(fit_widths(&[4, 40, 30], &[u16::MAX, 8, 8], 10), [4, 8, 8]);
        assert_eq!(fit_widths(&[], &[], 10), Vec::<u16>::new());
        assert_eq!(ellipsize("abcdef", 6), "abcdef");
        assert_eq!(ellipsize("abcdef", 4), "abc…");
        assert_eq!(ellipsize("abcdef", 1), "…");
        assert_eq!(ellipsize("abcdef", 0), "");
        assert_eq!(ellipsize("a\nb", 3), "a b");
        assert_eq!(ellipsize("日本語", 4), "日…");
        assert_eq!(ellipsize_start("/etc/mcp/x.json", 8), "…/x.json");
        assert_eq!(ellipsize_start("/etc/x", 8), "/etc/x");
        let line = Line::from(vec![Span::raw("abc"), Span::raw("def")]);
        assert_eq!(fit_line(line.clone(), 6).to_string(), "abcdef");
        assert_eq!(fit_line(line.clone(), 5).to_string(), "abcd…");
        assert_eq!(fit_line(line, 3).to_string(), "ab…");
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
