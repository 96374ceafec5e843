//! The management API's JSON shapes (`/manage/v1`, CONTRACT §5): one serde
//! struct per body, the only definition of each. No thread, no I/O.
//!
//! The server (`manage/`, with `runtime` for BACKEND_VIEW and reload
//! reports and the event ring, `events`, for EVENT) builds these structs and
//! serializes them; the client (`client.rs`) and the TUI (`tui/`)
//! deserialize the same structs. So this module is a leaf: it uses nothing
//! of the crate, and neither side has to know the other's modules.
//!
//! `docs/manage-api.openapi.json` describes the same shapes;
//! `tests/api_shapes.rs` serializes a value of every struct here and
//! validates it against its schema there, so a field added, renamed or
//! dropped on one side only fails a test.
//!
//! Rules that keep old and new peers working together:
//!
//! - Fields are declared in the order the server sends them (the JSON keeps
//!   struct order), and none is skipped when empty: a field the spec allows
//!   to be null is an `Option`, sent as `null`.
//! - Every struct is `#[serde(default)]`, and unknown fields are ignored:
//!   the TUI reads an older server's answer that lacks a field as empty or
//!   0, and a newer server's extra field does not fail the whole poll.
//! - Values from a closed list (states, levels, kinds, codes) are strings,
//!   not enums: a value a newer server adds is shown as it comes instead of
//!   failing to parse. The server fills them from its own enums' `as_str`.
//! - An `Option` beside a field the spec says is never null
//!   ([`Listen`]'s addresses, both `last_id`s) is there because a reader must
//!   tell "not sent" from 0, or because the server has no value yet; each
//!   says which.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `Status::api_version`.
pub const API_VERSION: &str = "v1";
/// `result` of a reload or a reconnect that was carried out.
pub const RESULT_OK: &str = "ok";
/// `result` of an accepted shutdown.
pub const RESULT_SHUTTING_DOWN: &str = "shutting_down";

// ---- GET /health

/// `GET /health`: liveness.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Health {
    /// `ok` when the server state is `ready`, else the state itself.
    pub status: String,
    pub version: String,
    pub uptime_s: u64,
}

// ---- GET /status

/// `GET /status`: the whole server in one object.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Status {
    /// [`API_VERSION`].
    pub api_version: String,
    pub server: ServerStatus,
    pub listen: Listen,
    pub backends: BackendCounts,
    pub capabilities: CapabilityTotals,
    pub sessions: SessionCounts,
    pub events: EventsInfo,
    /// The configured views' names, in file order (each served at
    /// `/mcp/<name>` and `/sse/<name>`).
    pub views: Vec<String>,
}

/// `Status::server`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerStatus {
    /// `server.name` of the configuration.
    pub name: String,
    pub version: String,
    pub pid: u32,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub uptime_s: u64,
    /// `starting`, `ready`, `degraded`, `failed`, `stopping`, `stopped`.
    pub state: String,
    pub config_path: Option<String>,
    /// 1 at start, +1 per successful reload.
    pub revision: u64,
}

/// `Status::listen`. `None` only in the moment between a listener's start
/// and the recording of its address.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Listen {
    pub mcp: Option<String>,
    pub manage: Option<String>,
}

/// `Status::backends`: every backend counted once.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BackendCounts {
    pub total: usize,
    pub connected: usize,
    /// `pending` and `connecting`.
    pub connecting: usize,
    /// `failed` and `disconnected`.
    pub failed: usize,
    pub disabled: usize,
}

/// What is exposed of each kind of capability (after filters and name
/// conflicts): BACKEND_VIEW's `capabilities`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CapabilityCounts {
    pub tools: usize,
    pub resources: usize,
    pub resource_templates: usize,
    pub prompts: usize,
}

/// `Status::capabilities`: the merged counts and the name clashes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CapabilityTotals {
    #[serde(flatten)]
    pub counts: CapabilityCounts,
    /// Capabilities dropped because a backend listed earlier offers the
    /// name (absent from older servers: 0).
    pub conflicts: usize,
}

/// `Status::sessions`: open MCP client sessions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SessionCounts {
    pub active: usize,
    pub sse: usize,
    pub streamable_http: usize,
}

/// `Status::events`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EventsInfo {
    /// The newest event id (0 when none yet). Always sent; `None` is a
    /// server that left it out, which the TUI's event cursor must tell
    /// from 0 (0 below its cursor means a restarted server).
    pub last_id: Option<u64>,
}

// ---- GET /backends, GET /backends/{name}

/// `GET /backends`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BackendList {
    /// In config order.
    pub backends: Vec<BackendView>,
}

/// BACKEND_VIEW: one configured backend.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BackendView {
    pub name: String,
    /// `stdio`, `sse`, `streamable-http`, or `invalid` for an entry that
    /// failed validation.
    #[serde(rename = "type")]
    pub kind: String,
    /// `pending`, `connecting`, `connected`, `failed`, `disconnected`, `disabled`.
    pub state: String,
    /// Command line or URL, secrets redacted.
    pub endpoint: String,
    pub pid: Option<u32>,
    /// The backend's `serverInfo` as it sent it, or null.
    pub server_info: Value,
    pub protocol_version: Option<String>,
    pub connected_since: Option<String>,
    pub last_error: Option<String>,
    pub restarts: u64,
    pub capabilities: CapabilityCounts,
}

// ---- GET /capabilities

/// `GET /capabilities`: the merged view MCP clients get.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Capabilities {
    pub tools: Vec<Tool>,
    pub resources: Vec<Resource>,
    pub resource_templates: Vec<ResourceTemplate>,
    pub prompts: Vec<Prompt>,
    pub conflicts: Vec<Conflict>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Tool {
    /// Exposed name (`<prefix>__<original_name>` with a prefix).
    pub name: String,
    pub backend: String,
    pub original_name: String,
    pub description: Option<String>,
    /// The tool's `inputSchema` as the backend sent it (an object).
    pub input_schema: Value,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Resource {
    pub uri: String,
    /// Null only if the backend sent none (MCP requires one).
    pub name: Option<String>,
    pub backend: String,
    pub description: Option<String>,
    pub mime_type: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ResourceTemplate {
    pub uri_template: String,
    /// Null only if the backend sent none (MCP requires one).
    pub name: Option<String>,
    pub backend: String,
    pub description: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Prompt {
    pub name: String,
    pub backend: String,
    pub original_name: String,
    pub description: Option<String>,
    pub arguments: Vec<PromptArgument>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PromptArgument {
    /// Null only if the backend sent none (MCP requires one).
    pub name: Option<String>,
    pub description: Option<String>,
    pub required: bool,
}

/// A capability dropped because an earlier backend exposes the same name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Conflict {
    /// `tool`, `resource`, `resource_template`, `prompt`.
    pub kind: String,
    /// The exposed name, URI or URI template.
    pub name: String,
    pub kept: String,
    pub dropped: String,
}

// ---- GET /events, GET /events/stream

/// `GET /events`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EventList {
    /// Oldest first.
    pub events: Vec<Event>,
    /// The newest id in the ring, not of the last event returned. Always
    /// sent; `None` as in [`EventsInfo::last_id`].
    pub last_id: Option<u64>,
}

/// EVENT: one entry of the event ring, also the `data:` of each
/// `/events/stream` event.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Event {
    /// Increases by one per event.
    pub id: u64,
    /// RFC 3339, UTC.
    pub time: String,
    /// `debug`, `info`, `warn`, `error`.
    pub level: String,
    /// Dotted kind such as `backend.connected`.
    pub kind: String,
    pub backend: Option<String>,
    pub message: String,
}

// ---- POST /reload, /backends/{name}/reconnect, /shutdown

/// `POST /reload`: [`RESULT_OK`] and what the reload did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReloadResult {
    pub result: String,
    #[serde(flatten)]
    pub report: ReloadReport,
}

impl ReloadResult {
    pub fn ok(report: ReloadReport) -> ReloadResult {
        ReloadResult { result: RESULT_OK.to_owned(), report }
    }
}

/// What a reload did, by backend name: built by the admin thread, sent
/// inside [`ReloadResult`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReloadReport {
    /// The new revision.
    pub revision: u64,
    pub added: Names,
    pub removed: Names,
    pub restarted: Names,
    pub unchanged: Names,
    /// Settings that changed in the file but need a restart to apply.
    pub notes: Vec<String>,
}

/// A list of backend names. A reader also takes a bare count, which is
/// all some reload results gave before the lists were specified; this
/// server always sends the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Names {
    List(Vec<String>),
    Count(u64),
}

impl Default for Names {
    fn default() -> Self {
        Names::List(Vec::new())
    }
}

impl Names {
    pub fn len(&self) -> u64 {
        match self {
            Names::List(v) => v.len() as u64,
            Names::Count(n) => *n,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds a name (to a count: one more).
    pub fn push(&mut self, name: String) {
        match self {
            Names::List(v) => v.push(name),
            Names::Count(n) => *n += 1,
        }
    }
}

impl Serialize for Names {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Names::List(v) => v.serialize(s),
            Names::Count(n) => n.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Names {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match Value::deserialize(d)? {
            Value::Array(items) => Names::List(
                items
                    .into_iter()
                    .map(|v| match v {
                        Value::String(s) => s,
                        other => other.to_string(),
                    })
                    .collect(),
            ),
            Value::Number(n) => Names::Count(n.as_u64().unwrap_or(0)),
            _ => Names::default(),
        })
    }
}

/// `POST /backends/{name}/reconnect`: sent whenever the reconnect was
/// carried out, also when the new attempt failed (see `backend.state`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReconnectResult {
    pub result: String,
    pub backend: BackendView,
}

impl ReconnectResult {
    pub fn ok(backend: BackendView) -> ReconnectResult {
        ReconnectResult { result: RESULT_OK.to_owned(), backend }
    }
}

/// `POST /shutdown` (202).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ShutdownResult {
    /// [`RESULT_SHUTTING_DOWN`].
    pub result: String,
}

impl ShutdownResult {
    pub fn shutting_down() -> ShutdownResult {
        ShutdownResult { result: RESULT_SHUTTING_DOWN.to_owned() }
    }
}

// ---- errors

/// The body of every error answer: `{"error": {"code", "message"}}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ErrorDetail {
    /// `unauthorized`, `forbidden`, `not_found`, `method_not_allowed`,
    /// `bad_request`, `payload_too_large`, `conflict`, `unavailable`,
    /// `internal`: what to branch on.
    pub code: String,
    /// For people; may change.
    pub message: String,
}

impl ErrorBody {
    pub fn new(code: &str, message: &str) -> ErrorBody {
        ErrorBody { error: ErrorDetail { code: code.to_owned(), message: message.to_owned() } }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fixture<T: serde::de::DeserializeOwned>(name: &str) -> T {
        let path = format!("{}/tests/fixtures/manage/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn status_fixture_maps() {
        let s: Status = fixture("status.json");
        assert_eq!(s.api_version, "v1");
        assert_eq!(s.server.name, "mcp-sentinel");
        assert_eq!(s.server.state, "degraded");
        assert_eq!(s.server.pid, 4242);
        assert_eq!(s.server.revision, 3);
        assert_eq!(s.listen.mcp.as_deref(), Some("127.0.0.1:9000"));
        assert_eq!(s.backends.total, 4);
        assert_eq!(s.backends.failed, 1);
        assert_eq!(s.capabilities.counts.tools, 4);
        assert_eq!(s.capabilities.conflicts, 1);
        assert_eq!(s.sessions.streamable_http, 1);
        assert_eq!(s.events.last_id, Some(7));
    }

    #[test]
    fn health_fixture_maps() {
        let h: Health = fixture("health.json");
        assert_eq!(h.status, "ok");
        assert!(h.uptime_s > 3000);
    }

    #[test]
    fn backends_fixture_maps() {
        let l: BackendList = fixture("backends.json");
        let names: Vec<_> = l.backends.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["github", "files", "weather", "legacy"]);
        let gh = &l.backends[0];
        assert_eq!((gh.kind.as_str(), gh.state.as_str()), ("stdio", "connected"));
        assert_eq!(gh.server_info, json!({"name": "github-mcp", "version": "1.2.0"}));
        assert_eq!(gh.capabilities.tools, 2);
        let weather = &l.backends[2];
        assert_eq!(weather.state, "failed");
        assert_eq!(weather.pid, None);
        assert!(weather.last_error.as_deref().unwrap_or("").contains("connection refused"));
        assert_eq!(weather.restarts, 5);
        assert!(weather.server_info.is_null());
    }

    #[test]
    fn single_backend_fixture_maps() {
        let b: BackendView = fixture("backend.json");
        assert_eq!(b.name, "github");
        assert_eq!(b.protocol_version.as_deref(), Some("2025-06-18"));
    }

    #[test]
    fn capabilities_fixture_maps() {
        let c: Capabilities = fixture("capabilities.json");
        assert_eq!(c.tools.len(), 4);
        assert_eq!(c.tools[0].name, "create_issue");
        assert_eq!(c.tools[0].input_schema["required"][0], "repo");
        assert_eq!(c.resources[0].mime_type.as_deref(), Some("text/markdown"));
        assert_eq!(c.resource_templates[0].uri_template, "file:///{path}");
        assert_eq!(c.prompts[0].arguments.len(), 2);
        assert!(c.prompts[0].arguments[0].required);
        assert_eq!(c.conflicts[0].dropped, "legacy");
    }

    #[test]
    fn events_fixture_maps() {
        let p: EventList = fixture("events.json");
        assert_eq!(p.events.len(), 7);
        assert_eq!(p.last_id, Some(7));
        assert_eq!(p.events[0].backend, None);
        assert_eq!(p.events[4].level, "error");
        assert_eq!(p.events[4].backend.as_deref(), Some("weather"));
    }

    #[test]
    fn reload_and_reconnect_fixtures_map() {
        let r: ReloadResult = fixture("reload.json");
        assert_eq!(r.result, "ok");
        assert_eq!(r.report.added, Names::List(vec!["search".into()]));
        assert_eq!(r.report.unchanged.len(), 2);
        // A count instead of a list is read too.
        let r: ReloadResult = serde_json::from_str(r#"{"result":"ok","unchanged":3}"#).unwrap();
        assert_eq!(r.report.unchanged, Names::Count(3));
        let c: ReconnectResult = fixture("reconnect.json");
        assert_eq!(c.backend.name, "weather");
        assert_eq!(c.backend.state, "connecting");
    }

    #[test]
    fn tolerant_of_missing_and_extra_fields() {
        let s: Status = serde_json::from_str(r#"{"server": {"state": "ready", "new_field": [1]}, "x": 1}"#).unwrap();
        assert_eq!(s.server.state, "ready");
        assert_eq!(s.backends.total, 0);
        assert_eq!(s.capabilities.conflicts, 0);
        assert_eq!(s.events.last_id, None);
        let b: BackendView = serde_json::from_str(r#"{"name": "a", "pid": null, "last_error": null}"#).unwrap();
        assert_eq!(b.name, "a");
        assert_eq!(b.last_error, None);
        // A resource or argument without a name (MCP requires one, but a
        // backend may leave it out) is null, not a failed poll.
        let c: Capabilities = serde_json::from_str(
            r#"{"resources": [{"uri": "u", "name": null}], "prompts": [{"arguments": [{"name": null}]}]}"#,
        )
        .unwrap();
        assert_eq!(c.resources[0].name, None);
        assert_eq!(c.prompts[0].arguments[0].name, None);
    }

    #[test]
    fn bodies_serialize_in_the_order_sent() {
        let r =
            ReloadResult::ok(ReloadReport { revision: 2, added: Names::List(vec!["a".into()]), ..Default::default() });
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"result":"ok","revision":2,"added":["a"],"removed":[],"restarted":[],"unchanged":[],"notes":[]}"#
        );
        let t = CapabilityTotals { counts: CapabilityCounts { tools: 1, ..Default::default() }, conflicts: 2 };
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            r#"{"tools":1,"resources":0,"resource_templates":0,"prompts":0,"conflicts":2}"#
        );
        assert_eq!(
            serde_json::to_string(&ErrorBody::new("not_found", "no")).unwrap(),
            r#"{"error":{"code":"not_found","message":"no"}}"#
        );
        assert_eq!(serde_json::to_string(&Names::Count(3)).unwrap(), "3");
        let mut n = Names::Count(1);
        n.push("x".into());
        assert_eq!(n.len(), 2);
    }
}
