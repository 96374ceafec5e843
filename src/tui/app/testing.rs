//! Test helpers of the TUI's state and rendering tests: the fixtures of
//! `tests/fixtures/manage/` as poll data, an app connected to them, keys.
//! Test code only.

use super::{App, ProfileEntry};
use crate::api::{self, BackendList, Capabilities, EventList, Status};
use crate::client::ClientError;
use crate::tui::poll::{Data, Snapshot};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use std::sync::Arc;
use std::time::Duration;

pub fn fixture<T: serde::de::DeserializeOwned>(name: &str) -> T {
    let path = format!("{}/tests/fixtures/manage/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

pub fn data() -> Data {
    Data {
        status: fixture::<Status>("status.json"),
        backends: fixture::<BackendList>("backends.json").backends,
        capabilities: Arc::new(fixture::<Capabilities>("capabilities.json")),
    }
}

pub fn events() -> Arc<Vec<api::Event>> {
    Arc::new(fixture::<EventList>("events.json").events)
}

pub fn profiles() -> Vec<ProfileEntry> {
    vec![
        ProfileEntry { name: "local".into(), url: "http://127.0.0.1:9001".into() },
        ProfileEntry { name: "staging".into(), url: "https://staging.example.com:9001".into() },
    ]
}

pub fn snapshot(generation: u64, result: Result<Data, ClientError>) -> Snapshot {
    Snapshot { generation, at: std::time::UNIX_EPOCH + Duration::from_secs(1_795_519_373), result, events: events() }
}

/// An app connected to the fixture server.
pub fn connected() -> App {
    let mut app = App::new(profiles(), 0, Duration::from_secs(1));
    app.apply_snapshot(snapshot(0, Ok(data())));
    app
}

pub fn key(c: KeyCode) -> KeyEvent {
    KeyEvent::new(c, KeyModifiers::NONE)
}

pub fn ch(c: char) -> KeyEvent {
    key(KeyCode::Char(c))
}
