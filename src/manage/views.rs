//! The bodies of `/manage/v1`'s read endpoints, built as the structs of
//! [`crate::api`] from the runtime's accessors and the registry: plain
//! values, no protocol objects. BACKEND_VIEW comes from
//! [`Runtime::backend_snapshot`], which the admin thread uses too.

use crate::api::{
    BackendCounts, Capabilities, CapabilityCounts, CapabilityTotals, Conflict, EventsInfo, Health, Listen, Prompt,
    PromptArgument, Resource, ResourceTemplate, ServerStatus, SessionCounts, Status, Tool, API_VERSION,
};
use crate::backend::State as BackendState;
use crate::registry::Registry;
use crate::runtime::{Runtime, ServerState};
use serde_json::{json, Value};

/// `/health`'s `status`: "ok" when ready, else the state's name.
pub fn health(rt: &Runtime) -> Health {
    let status = match rt.state() {
        ServerState::Ready => "ok",
        s => s.as_str(),
    };
    Health { status: status.to_owned(), version: env!("CARGO_PKG_VERSION").to_owned(), uptime_s: rt.uptime_s() }
}

pub fn status(rt: &Runtime) -> Status {
    let cfg = rt.config();
    let reg = rt.registry();
    let states: Vec<BackendState> = rt.backends().iter().map(|b| b.status().state).collect();
    let count = |f: &dyn Fn(BackendState) -> bool| states.iter().filter(|s| f(**s)).count();
    let (active, sse, streamable_http) = rt.sessions.counts();
    Status {
        api_version: API_VERSION.to_owned(),
        server: ServerStatus {
            name: cfg.server.name.clone(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            pid: std::process::id(),
            started_at: crate::util::rfc3339(rt.started_at),
            uptime_s: rt.uptime_s(),
            state: rt.state().as_str().to_owned(),
            config_path: cfg.path.as_ref().map(|p| p.display().to_string()),
            revision: rt.revision(),
        },
        listen: Listen { mcp: rt.mcp_addr().map(|a| a.to_string()), manage: rt.manage_addr() },
        // Every backend is counted once: a disconnected one (waiting to
        // retry) counts as failed, a pending one as connecting.
        backends: BackendCounts {
            total: states.len(),
            connected: count(&|s| s == BackendState::Connected),
            connecting: count(&|s| matches!(s, BackendState::Pending | BackendState::Connecting)),
            failed: count(&|s| matches!(s, BackendState::Failed | BackendState::Disconnected)),
            disabled: count(&|s| s == BackendState::Disabled),
        },
        capabilities: CapabilityTotals {
            counts: CapabilityCounts {
                tools: reg.tools.len(),
                resources: reg.resources.len(),
                resource_templates: reg.templates.len(),
                prompts: reg.prompts.len(),
            },
            conflicts: reg.conflicts.len(),
        },
        sessions: SessionCounts { active, sse, streamable_http },
        events: EventsInfo { last_id: Some(rt.events.last_id()) },
        views: reg.views().map(|(name, _, _)| name.to_owned()).collect(),
    }
}

/// A string field of a backend's definition; anything else is null.
fn text(def: &Value, key: &str) -> Option<String> {
    def.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// `/capabilities`, optionally only one backend's entries.
pub fn capabilities(reg: &Registry, backend: Option<&str>) -> Capabilities {
    let mine = |b: &str| backend.is_none_or(|want| want == b);
    let tools = reg
        .tools
        .iter()
        .filter(|t| mine(&t.backend))
        .map(|t| Tool {
            name: t.name.clone(),
            backend: t.backend.to_string(),
            original_name: t.original.clone(),
            description: text(&t.def, "description"),
            input_schema: t
                .def
                .get("inputSchema")
                .filter(|v| v.is_object())
                .cloned()
                .unwrap_or_else(|| json!({"type": "object"})),
        })
        .collect();
    let resources = reg
        .resources
        .iter()
        .filter(|r| mine(&r.backend))
        .map(|r| Resource {
            uri: r.uri.clone(),
            name: text(&r.def, "name"),
            backend: r.backend.to_string(),
            description: text(&r.def, "description"),
            mime_type: text(&r.def, "mimeType"),
        })
        .collect();
    let resource_templates = reg
        .templates
        .iter()
        .filter(|r| mine(&r.backend))
        .map(|r| ResourceTemplate {
            uri_template: r.uri_template.clone(),
            name: text(&r.def, "name"),
            backend: r.backend.to_string(),
            description: text(&r.def, "description"),
        })
        .collect();
    let prompts = reg
        .prompts
        .iter()
        .filter(|p| mine(&p.backend))
        .map(|p| Prompt {
            name: p.name.clone(),
            backend: p.backend.to_string(),
            original_name: p.original.clone(),
            description: text(&p.def, "description"),
            arguments: p
                .def
                .get("arguments")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .map(|arg| PromptArgument {
                            name: text(arg, "name"),
                            description: text(arg, "description"),
                            required: arg.get("required").and_then(Value::as_bool).unwrap_or(false),
                        })
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect();
    let conflicts = reg
        .conflicts
        .iter()
        .filter(|c| backend.is_none_or(|b| c.kept == b || c.dropped == b))
        .map(|c| Conflict {
            kind: c.kind.to_owned(),
            name: c.name.clone(),
            kept: c.kept.clone(),
            dropped: c.dropped.clone(),
        })
        .collect();
    Capabilities { tools, resources, resource_templates, prompts, conflicts }
}
