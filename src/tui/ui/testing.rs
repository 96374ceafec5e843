//! Test helpers of the rendering tests: draw an [`App`] on ratatui's
//! `TestBackend` and read the screen back as text, and the data the views
//! are drawn from. Test code only.

use super::{render, TableStates};
use crate::api::{Event, Resource};
use crate::client::ClientError;
use crate::tui::app::testing::{ch, connected, data, profiles, snapshot};
use crate::tui::app::App;
use crate::tui::poll::Data;
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use std::sync::Arc;
use std::time::Duration;

/// Renders `app` at `w`×`h` and returns the screen as text, one line a row.
pub(super) fn screen(app: &App, w: u16, h: u16) -> String {
    screen_with(app, &mut TableStates::default(), w, h)
}

/// [`screen`] with the scroll states kept from earlier frames, as the
/// event loop keeps them.
pub(super) fn screen_with(app: &App, tables: &mut TableStates, w: u16, h: u16) -> String {
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

pub(super) const SIZES: [(u16, u16); 3] = [(80, 24), (100, 30), (120, 40)];

pub(super) fn assert_has(screen: &str, wanted: &[&str]) {
    for w in wanted {
        assert!(screen.contains(w), "missing {w:?} in:\n{screen}");
    }
}

pub(super) fn view(n: char) -> App {
    let mut app = connected();
    app.on_key(ch(n));
    app
}

pub(super) fn failed(e: ClientError) -> App {
    let mut app = App::new(profiles(), 0, Duration::from_secs(1));
    app.apply_snapshot(snapshot(0, Err(e)));
    app
}

/// The fixture with the demo's backends: a program path that says
/// nothing, a long server name, no error.
pub(super) fn demo_data() -> Data {
    let mut d = data();
    for (i, b) in d.backends.iter_mut().enumerate() {
        b.name = format!("demo-{i}");
        b.endpoint = format!("/work/target-review/debug/mcp-sentinel-demo --name demo-{i}");
        b.state = "connected".into();
        b.server_info = serde_json::json!({"name": format!("mcp-sentinel-demo-gateway-demo-{i}"), "version": "0.1.0"});
        b.last_error = None;
        b.connected_since = Some("2026-11-24T10:00:01.250Z".into());
    }
    let caps = Arc::make_mut(&mut d.capabilities);
    caps.resources = ["readme", "config.json", "items/index.json"]
        .iter()
        .map(|r| Resource {
            uri: format!("demo://alpha/{r}"),
            name: Some(r.to_string()),
            backend: "alpha".into(),
            ..Default::default()
        })
        .collect();
    d
}

pub(super) fn with_data(d: Data, key: char) -> App {
    let mut app = App::new(profiles(), 0, Duration::from_secs(1));
    app.apply_snapshot(snapshot(0, Ok(d)));
    app.on_key(ch(key));
    app
}

/// `n` events, `message 01` …, as a poll of a busy server gives them.
pub(super) fn many_events(n: u64) -> Arc<Vec<Event>> {
    Arc::new(
        (1..=n)
            .map(|i| Event {
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
