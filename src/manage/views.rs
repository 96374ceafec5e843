//! The JSON bodies of `/manage/v1` (CONTRACT §5), built from runtime
//! snapshots and the registry: plain values, no protocol objects.

use crate::backend::State as BackendState;
use crate::registry::Registry;
use crate::runtime::{ServerState, Snapshot};
use serde_json::{json, Value};

/// `/health`'s `status`: "ok" when ready, else the state's name.
pub fn health(snap: &Snapshot) -> Value {
    let status = match snap.state {
        ServerState::Ready => "ok",
        s => s.as_str(),
    };
    json!({"status": status, "version": snap.version, "uptime_s": snap.uptime_s})
}

pub fn status(snap: &Snapshot) -> Value {
    let count = |f: &dyn Fn(BackendState) -> bool| snap.backends.iter().filter(|b| f(b.state)).count();
    json!({
        "api_version": "v1",
        "server": {
            "name": snap.name,
            "version": snap.version,
            "pid": snap.pid,
            "started_at": snap.started_at,
            "uptime_s": snap.uptime_s,
            "state": snap.state,
            "config_path": snap.config_path,
            "revision": snap.revision,
        },
        "listen": {"mcp": snap.listen_mcp, "manage": snap.listen_manage},
        // Every backend is counted once: a disconnected one (waiting to
        // retry) counts as failed, a pending one as connecting.
        "backends": {
            "total": snap.backends.len(),
            "connected": count(&|s| s == BackendState::Connected),
            "connecting": count(&|s| matches!(s, BackendState::Pending | BackendState::Connecting)),
            "failed": count(&|s| matches!(s, BackendState::Failed | BackendState::Disconnected)),
            "disabled": count(&|s| s == BackendState::Disabled),
        },
        "capabilities": {
            "tools": snap.capabilities.tools,
            "resources": snap.capabilities.resources,
            "resource_templates": snap.capabilities.resource_templates,
            "prompts": snap.capabilities.prompts,
            "conflicts": snap.conflicts,
        },
        "sessions": snap.sessions,
        "events": {"last_id": snap.last_event_id},
    })
}

fn text(def: &Value, key: &str) -> Value {
    def.get(key).filter(|v| v.is_string()).cloned().unwrap_or(Value::Null)
}

/// `/capabilities`, optionally only one backend's entries.
pub fn capabilities(reg: &Registry, backend: Option<&str>) -> Value {
    let mine = |b: &str| backend.is_none_or(|want| want == b);
    let tools: Vec<Value> = reg
        .tools
        .iter()
        .filter(|t| mine(&t.backend))
        .map(|t| {
            json!({
                "name": t.name,
                "backend": &*t.backend,
                "original_name": t.original,
                "description": text(&t.def, "description"),
                "input_schema": t.def.get("inputSchema").filter(|v| v.is_object()).cloned().unwrap_or_else(|| json!({"type": "object"})),
            })
        })
        .collect();
    let resources: Vec<Value> = reg
        .resources
        .iter()
        .filter(|r| mine(&r.backend))
        .map(|r| {
            json!({
                "uri": r.uri,
                "name": text(&r.def, "name"),
                "backend": &*r.backend,
                "description": text(&r.def, "description"),
                "mime_type": text(&r.def, "mimeType"),
            })
        })
        .collect();
    let templates: Vec<Value> = reg
        .templates
        .iter()
        .filter(|r| mine(&r.backend))
        .map(|r| {
            json!({
                "uri_template": r.uri_template,
                "name": text(&r.def, "name"),
                "backend": &*r.backend,
                "description": text(&r.def, "description"),
            })
        })
        .collect();
    let prompts: Vec<Value> = reg
        .prompts
        .iter()
        .filter(|p| mine(&p.backend))
        .map(|p| {
            let args: Vec<Value> = p
                .def
                .get("arguments")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .map(|arg| {
                            json!({
                                "name": text(arg, "name"),
                                "description": text(arg, "description"),
                                "required": arg.get("required").and_then(Value::as_bool).unwrap_or(false),
                            })
                        })
                        .collect()
                })
                .unwrap_or_default();
            json!({
                "name": p.name,
                "backend": &*p.backend,
                "original_name": p.original,
                "description": text(&p.def, "description"),
                "arguments": args,
            })
        })
        .collect();
    let conflicts: Vec<Value> = reg
        .conflicts
        .iter()
        .filter(|c| backend.is_none_or(|b| c.kept == b || c.dropped == b))
        .map(|c| json!({"kind": c.kind, "name": c.name, "kept": c.kept, "dropped": c.dropped}))
        .collect();
    json!({
        "tools": tools,
        "resources": resources,
        "resource_templates": templates,
        "prompts": prompts,
        "conflicts": conflicts,
    })
}
