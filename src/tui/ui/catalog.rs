//! The capability views, one list with a detail pane each: tools,
//! resources, resource templates and prompts (`/capabilities`), with the
//! name clashes that concern the selected entry. Runs on the TUI's main
//! thread, like all rendering.

use super::table::{list_title, Col, FitTable};
use crate::api::Conflict;
use crate::tui::app::{App, View};
use crate::tui::poll::Data;
use crate::tui::theme::Theme;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, TableState, Wrap};
use ratatui::Frame;

/// Width from which capability views may put the detail pane beside the
/// list (when the list's content fits in [`SIDE_LIST_MAX`] of it).
const SIDE_BY_SIDE: u16 = 100;

/// Share of the width (percent) the list may take beside the detail pane.
const SIDE_LIST_MAX: u16 = 60;

/// Share of the width (percent) the list takes at least beside the pane.
const SIDE_LIST_MIN: u16 = 35;

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

pub(super) fn render_tools(app: &App, data: &Data, state: &mut TableState, f: &mut Frame<'_>, area: Rect) {
    let t = &app.theme;
    let items = app.tools();
    let cols = [Col::new("NAME", 12), Col::new("BACKEND", 8)];
    let rows = items.iter().map(|t| vec![Span::raw(t.name.clone()), Span::raw(t.backend.clone())]).collect();
    let table = FitTable { cols: &cols, rows };
    let (list, detail) = list_and_detail(area, &table);
    let title = list_title("Tools", items.len(), data.capabilities.tools.len(), app.filter());
    table.render(t, title, state, f, list);
    let text = app.selection(View::Tools).and_then(|i| items.get(i)).map(|tool| {
        let mut lines = owner_lines(t, &tool.name, &tool.backend, &tool.original_name);
        lines.extend(description(t, tool.description.as_deref()));
        lines.extend(parameter_lines(t, &tool.input_schema));
        lines.push(Line::raw(""));
        lines.push(Line::styled("input schema", t.label));
        let schema = serde_json::to_string_pretty(&tool.input_schema).unwrap_or_default();
        lines.extend(schema.lines().map(|l| Line::raw(l.to_string())));
        lines.extend(conflict_lines(t, &data.capabilities.conflicts, "tool", &tool.name));
        lines
    });
    render_detail(app, text, f, detail);
}

pub(super) fn render_resources(app: &App, data: &Data, state: &mut TableState, f: &mut Frame<'_>, area: Rect) {
    let t = &app.theme;
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
    table.render(t, title, state, f, list);
    let text = app.selection(View::Resources).and_then(|i| items.get(i)).map(|r| {
        let mut lines = vec![
            field_line(t, "uri", &r.uri),
            field_line(t, "name", r.name.as_deref().unwrap_or("-")),
            field_line(t, "backend", &r.backend),
            field_line(t, "mime type", r.mime_type.as_deref().unwrap_or("-")),
        ];
        lines.extend(description(t, r.description.as_deref()));
        lines.extend(conflict_lines(t, &data.capabilities.conflicts, "resource", &r.uri));
        lines
    });
    render_detail(app, text, f, detail);
}

pub(super) fn render_templates(app: &App, data: &Data, state: &mut TableState, f: &mut Frame<'_>, area: Rect) {
    let t = &app.theme;
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
    table.render(t, title, state, f, list);
    let text = app.selection(View::Templates).and_then(|i| items.get(i)).map(|r| {
        let mut lines = vec![
            field_line(t, "uri template", &r.uri_template),
            field_line(t, "name", r.name.as_deref().unwrap_or("-")),
            field_line(t, "backend", &r.backend),
        ];
        lines.extend(description(t, r.description.as_deref()));
        lines.extend(conflict_lines(t, &data.capabilities.conflicts, "resource_template", &r.uri_template));
        lines
    });
    render_detail(app, text, f, detail);
}

pub(super) fn render_prompts(app: &App, data: &Data, state: &mut TableState, f: &mut Frame<'_>, area: Rect) {
    let t = &app.theme;
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
    table.render(t, title, state, f, list);
    let text = app.selection(View::Prompts).and_then(|i| items.get(i)).map(|p| {
        let mut lines = owner_lines(t, &p.name, &p.backend, &p.original_name);
        lines.extend(description(t, p.description.as_deref()));
        lines.push(Line::raw(""));
        lines.push(Line::styled("arguments", t.label));
        if p.arguments.is_empty() {
            lines.push(Line::raw("  (none)"));
        }
        for a in &p.arguments {
            let req = if a.required { " (required)" } else { "" };
            let desc = a.description.as_deref().map(|d| format!(": {d}")).unwrap_or_default();
            lines.push(Line::raw(format!("  {}{req}{desc}", a.name.as_deref().unwrap_or("-"))));
        }
        lines.extend(conflict_lines(t, &data.capabilities.conflicts, "prompt", &p.name));
        lines
    });
    render_detail(app, text, f, detail);
}

fn owner_lines(t: &Theme, name: &str, backend: &str, original: &str) -> Vec<Line<'static>> {
    let mut lines = vec![field_line(t, "name", name), field_line(t, "backend", backend)];
    if !original.is_empty() && original != name {
        lines.push(field_line(t, "original name", original));
    }
    lines
}

/// The schema's top-level properties, one line each: a reading of the
/// schema that fits a small terminal, before the full JSON.
fn parameter_lines(t: &Theme, schema: &serde_json::Value) -> Vec<Line<'static>> {
    let Some(props) = schema.get("properties").and_then(|p| p.as_object()) else { return Vec::new() };
    let required: Vec<&str> = schema
        .get("required")
        .and_then(|r| r.as_array())
        .map(|r| r.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    let mut lines = vec![Line::raw(""), Line::styled("parameters", t.label)];
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

fn description(t: &Theme, d: Option<&str>) -> Vec<Line<'static>> {
    let mut lines = vec![Line::raw("")];
    match d {
        Some(d) if !d.is_empty() => lines.extend(d.lines().map(|l| Line::raw(l.to_string()))),
        _ => lines.push(Line::styled("(no description)", t.dim)),
    }
    lines
}

fn conflict_lines(t: &Theme, conflicts: &[Conflict], kind: &str, name: &str) -> Vec<Line<'static>> {
    conflicts
        .iter()
        .filter(|c| c.kind == kind && c.name == name)
        .map(|c| Line::styled(format!("name clash: kept from {}, dropped from {}", c.kept, c.dropped), t.warn))
        .collect()
}

fn field_line(t: &Theme, label: &str, value: &str) -> Line<'static> {
    Line::from(vec![Span::styled(format!("{label}: "), t.label), Span::raw(value.to_string())])
}

fn render_detail(app: &App, text: Option<Vec<Line<'static>>>, f: &mut Frame<'_>, area: Rect) {
    let t = &app.theme;
    let block = Block::bordered().border_style(t.border).title(" Detail (J/K scroll) ");
    let text = text.unwrap_or_else(|| vec![Line::styled("nothing selected", t.dim)]);
    let p = Paragraph::new(text).block(block).wrap(Wrap { trim: false }).scroll((app.detail_scroll, 0));
    f.render_widget(p, area);
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use crate::tui::app::testing::ch;
    use std::sync::Arc;

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
}
