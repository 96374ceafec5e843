//! Checks the structs of `mcp_sentinel::api`, the one definition of the
//! management API's bodies, against `docs/manage-api.openapi.json`, with the
//! validator of `tests/common/schema.rs`: a representative value of every
//! struct is serialized and must validate against its schema (so a field
//! the schema does not list, a required one missing, or a wrong type fails),
//! must have exactly the properties the schema lists (so the spec cannot
//! list a field the server never sends), and must read back equal (so the
//! client reads what the server writes). Every schema of the spec must be
//! covered, and the fields that serialize as `null` must be the ones the
//! spec allows to be null, but for a short, explained list.

mod common;

use common::schema::{load_spec, resolve, validate_component};
use mcp_sentinel::api::*;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::fmt::Debug;

/// A struct's value, serialized, with the component schema it must match.
struct Shape {
    schema: &'static str,
    what: &'static str,
    value: Value,
}

/// Serializes `v`, checks that it reads back equal, and names its schema.
fn shape<T: Serialize + DeserializeOwned + PartialEq + Debug>(schema: &'static str, what: &'static str, v: T) -> Shape {
    let value = serde_json::to_value(&v).unwrap_or_else(|e| panic!("{what}: {e}"));
    let back: T = serde_json::from_value(value.clone()).unwrap_or_else(|e| panic!("{what}: reads back: {e}"));
    assert_eq!(back, v, "{what}: reads back different");
    Shape { schema, what, value }
}

fn backend(full: bool) -> BackendView {
    let counts = CapabilityCounts { tools: 2, resources: 1, resource_templates: 1, prompts: 1 };
    if full {
        BackendView {
            name: "alpha".into(),
            kind: "stdio".into(),
            state: "connected".into(),
            endpoint: "mcp-sentinel-demo --name alpha".into(),
            pid: Some(4242),
            server_info: json!({"name": "demo", "version": "0.1.0"}),
            protocol_version: Some("2025-06-18".into()),
            connected_since: Some("2026-01-02T03:04:05.678Z".into()),
            last_error: Some("earlier: connection refused".into()),
            restarts: 1,
            capabilities: counts,
        }
    } else {
        BackendView {
            name: "beta".into(),
            kind: "sse".into(),
            state: "failed".into(),
            endpoint: "http://127.0.0.1:9101/sse".into(),
            server_info: Value::Null,
            capabilities: CapabilityCounts::default(),
            ..BackendView::default()
        }
    }
}

fn status(full: bool) -> Status {
    Status {
        api_version: API_VERSION.into(),
        server: ServerStatus {
            name: "mcp-sentinel".into(),
            version: "0.1.0".into(),
            pid: 4200,
            started_at: "2026-01-02T03:04:05.678Z".into(),
            uptime_s: 3600,
            state: "degraded".into(),
            config_path: full.then(|| "/etc/mcp-sentinel.json".into()),
            revision: 2,
        },
        listen: Listen { mcp: Some("127.0.0.1:9000".into()), manage: Some("127.0.0.1:9001".into()) },
        backends: BackendCounts { total: 4, connected: 1, connecting: 0, failed: 2, disabled: 1 },
        capabilities: CapabilityTotals {
            counts: CapabilityCounts { tools: 4, resources: 2, resource_templates: 1, prompts: 1 },
            conflicts: 1,
        },
        sessions: SessionCounts { active: 3, sse: 1, streamable_http: 2 },
        events: EventsInfo { last_id: Some(57) },
        views: if full { vec!["dev".into(), "ops".into()] } else { Vec::new() },
    }
}

fn capabilities(full: bool) -> Capabilities {
    let text = |s: &str| full.then(|| s.to_owned());
    Capabilities {
        tools: vec![Tool {
            name: "beta__add".into(),
            backend: "beta".into(),
            original_name: "add".into(),
            description: text("Add two numbers."),
            input_schema: json!({"type": "object", "properties": {"a": {"type": "number"}}}),
        }],
        resources: vec![Resource {
            uri: "demo://alpha/readme".into(),
            name: text("readme"),
            backend: "alpha".into(),
            description: text("A short text."),
            mime_type: text("text/plain"),
        }],
        resource_templates: vec![ResourceTemplate {
            uri_template: "demo://alpha/items/{id}".into(),
            name: text("item"),
            backend: "alpha".into(),
            description: text("One item."),
        }],
        prompts: vec![Prompt {
            name: "greet".into(),
            backend: "alpha".into(),
            original_name: "greet".into(),
            description: text("Say hello."),
            arguments: vec![PromptArgument { name: text("who"), description: text("Whom to greet."), required: full }],
        }],
        conflicts: vec![Conflict {
            kind: "tool".into(),
            name: "echo".into(),
            kept: "alpha".into(),
            dropped: "gamma".into(),
        }],
    }
}

fn event(full: bool) -> Event {
    Event {
        id: 7,
        time: "2026-01-02T03:04:05.678Z".into(),
        level: if full { "warn" } else { "info" }.into(),
        kind: "backend.failed".into(),
        backend: full.then(|| "beta".into()),
        message: "connection refused".into(),
    }
}

/// A value of every struct that is a body or a named schema, twice: every
/// `Option` set, then every `Option` the spec allows to be null left `None`.
fn shapes() -> Vec<Shape> {
    let mut out = Vec::new();
    for full in [true, false] {
        out.push(shape("Health", "Health", Health { status: "ok".into(), version: "0.1.0".into(), uptime_s: 3600 }));
        out.push(shape("Status", "Status", status(full)));
        out.push(shape("BackendView", "BackendView", backend(full)));
        out.push(shape("BackendList", "BackendList", BackendList { backends: vec![backend(true), backend(false)] }));
        let caps = capabilities(full);
        out.push(shape("Tool", "Tool", caps.tools[0].clone()));
        out.push(shape("Resource", "Resource", caps.resources[0].clone()));
        out.push(shape("ResourceTemplate", "ResourceTemplate", caps.resource_templates[0].clone()));
        out.push(shape("PromptArgument", "PromptArgument", caps.prompts[0].arguments[0].clone()));
        out.push(shape("Prompt", "Prompt", caps.prompts[0].clone()));
        out.push(shape("Conflict", "Conflict", caps.conflicts[0].clone()));
        out.push(shape("Capabilities", "Capabilities", caps));
        out.push(shape("Event", "Event", event(full)));
        out.push(shape("EventList", "EventList", EventList { events: vec![event(full)], last_id: Some(9) }));
        let names = |v: &[&str]| Names::List(v.iter().map(|s| s.to_string()).collect());
        let report = ReloadReport {
            revision: 3,
            added: names(&["zeta"]),
            removed: names(&[]),
            restarted: names(&["beta"]),
            unchanged: names(&["alpha", "gamma"]),
            notes: if full { vec!["server.listen changed to 127.0.0.1:9100; restart to apply".into()] } else { vec![] },
        };
        out.push(shape("ReloadResult", "ReloadResult", ReloadResult::ok(report)));
        out.push(shape("ReconnectResult", "ReconnectResult", ReconnectResult::ok(backend(full))));
        out.push(shape("ShutdownResult", "ShutdownResult", ShutdownResult::shutting_down()));
        out.push(shape("Error", "ErrorBody", ErrorBody::new("not_found", "no backend named 'zeta'")));
    }
    out
}

/// `schema` with its `$ref`s followed.
fn deref<'a>(spec: &'a Value, mut schema: &'a Value) -> &'a Value {
    while let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        schema = resolve(spec, r).unwrap_or_else(|| panic!("unresolved {r}"));
    }
    schema
}

/// Where an object of `value` and its schema list different properties,
/// either way: `$.path: sent but not in the spec: [..]; in the spec but
/// never sent: [..]`.
fn key_differences(spec: &Value, schema: &Value, value: &Value, path: &str, out: &mut Vec<String>) {
    let schema = deref(spec, schema);
    match value {
        Value::Object(m) => {
            let Some(props) = schema.get("properties").and_then(Value::as_object) else {
                // A free-form object (server_info, input_schema): the backend's own.
                return;
            };
            let sent: BTreeSet<&str> = m.keys().map(String::as_str).collect();
            let listed: BTreeSet<&str> = props.keys().map(String::as_str).collect();
            if sent != listed {
                let extra: Vec<_> = sent.difference(&listed).collect();
                let never: Vec<_> = listed.difference(&sent).collect();
                out.push(format!("{path}: sent but not in the spec: {extra:?}; in the spec but never sent: {never:?}"));
            }
            for (k, v) in m {
                if let Some(sub) = props.get(k) {
                    key_differences(spec, sub, v, &format!("{path}.{k}"), out);
                }
            }
        }
        Value::Array(a) => {
            if let Some(items) = schema.get("items") {
                for (i, v) in a.iter().enumerate() {
                    key_differences(spec, items, v, &format!("{path}[{i}]"), out);
                }
            }
        }
        _ => {}
    }
}

#[test]
fn every_struct_matches_its_schema() {
    let spec = load_spec();
    let mut failures = Vec::new();
    for s in shapes() {
        for e in validate_component(&spec, s.schema, &s.value) {
            failures.push(format!("{} (schema {}): {e}", s.what, s.schema));
        }
        let schema = json!({"$ref": format!("#/components/schemas/{}", s.schema)});
        let mut diffs = Vec::new();
        key_differences(&spec, &schema, &s.value, "$", &mut diffs);
        failures.extend(diffs.into_iter().map(|d| format!("{} (schema {}): {d}", s.what, s.schema)));
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn every_schema_of_the_spec_has_its_struct() {
    let spec = load_spec();
    let all: BTreeSet<&str> =
        spec["components"]["schemas"].as_object().expect("components/schemas").keys().map(String::as_str).collect();
    let shapes = shapes();
    let covered: BTreeSet<&str> = shapes.iter().map(|s| s.schema).collect();
    let missing: Vec<_> = all.difference(&covered).collect();
    assert!(missing.is_empty(), "schemas without a struct checked here: {missing:?}");
    // The event stream's `data:` is an EVENT too.
    let item = spec
        .pointer("/paths/~1manage~1v1~1events~1stream/get/responses/200/content/text~1event-stream/x-item-schema")
        .expect("the event stream's x-item-schema");
    assert_eq!(deref(&spec, item), &spec["components"]["schemas"]["Event"]);
}

/// Paths (`$.a.b`, `$.list[0].c`) below `value` whose value is null.
fn nulls(value: &Value, path: &str, out: &mut BTreeSet<String>) {
    match value {
        Value::Null => {
            out.insert(path.to_owned());
        }
        Value::Object(m) => m.iter().for_each(|(k, v)| nulls(v, &format!("{path}.{k}"), out)),
        Value::Array(a) => a.iter().enumerate().for_each(|(i, v)| nulls(v, &format!("{path}[{i}]"), out)),
        _ => {}
    }
}

/// Paths below `schema` (as `value` has them) whose type admits null.
fn nullable(spec: &Value, schema: &Value, value: &Value, path: &str, out: &mut BTreeSet<String>) {
    let schema = deref(spec, schema);
    if schema["type"].as_array().is_some_and(|t| t.contains(&json!("null"))) {
        out.insert(path.to_owned());
    }
    match value {
        Value::Object(m) => {
            for (k, v) in m {
                if let Some(sub) = schema.pointer(&format!("/properties/{k}")) {
                    nullable(spec, sub, v, &format!("{path}.{k}"), out);
                }
            }
        }
        Value::Array(a) => {
            if let Some(items) = schema.get("items") {
                a.iter().enumerate().for_each(|(i, v)| nullable(spec, items, v, &format!("{path}[{i}]"), out));
            }
        }
        _ => {}
    }
}

/// The fields that serialize as null when empty (`Option`s, and
/// `serde_json::Value`s) are exactly those the spec allows to be null, but
/// for these, each for a reason:
const NULL_BUT_NOT_IN_SPEC: &[(&str, &str)] = &[
    // Null only between a listener's start and the recording of its
    // address; the spec describes the running server.
    ("Status", "$.listen.mcp"),
    ("Status", "$.listen.manage"),
    // Always sent; `None` is how a reader tells an older server that left
    // it out from 0 (its event cursor depends on it).
    ("Status", "$.events.last_id"),
    ("EventList", "$.last_id"),
    // The backend's schema as it sent it; the server puts `{"type":
    // "object"}` in place of a missing or non-object one.
    ("Capabilities", "$.tools[0].input_schema"),
];

#[test]
fn null_fields_are_the_ones_the_spec_allows() {
    let spec = load_spec();
    // Empty values: every Option None, every Value null; one item per list
    // so that the items' fields are seen too.
    let empty = [
        shape("Status", "Status", Status::default()),
        shape("BackendView", "BackendView", BackendView::default()),
        shape(
            "Capabilities",
            "Capabilities",
            Capabilities {
                tools: vec![Tool::default()],
                resources: vec![Resource::default()],
                resource_templates: vec![ResourceTemplate::default()],
                prompts: vec![Prompt { arguments: vec![PromptArgument::default()], ..Prompt::default() }],
                conflicts: vec![Conflict::default()],
            },
        ),
        shape("EventList", "EventList", EventList { events: vec![Event::default()], last_id: None }),
        shape("ReloadResult", "ReloadResult", ReloadResult::default()),
        shape("ReconnectResult", "ReconnectResult", ReconnectResult::default()),
        shape("Health", "Health", Health::default()),
        shape("ShutdownResult", "ShutdownResult", ShutdownResult::default()),
        shape("Error", "ErrorBody", ErrorBody::default()),
    ];
    let mut failures = Vec::new();
    for s in &empty {
        let mut null = BTreeSet::new();
        nulls(&s.value, "$", &mut null);
        let schema = json!({"$ref": format!("#/components/schemas/{}", s.schema)});
        let mut allowed = BTreeSet::new();
        nullable(&spec, &schema, &s.value, "$", &mut allowed);
        let excused: BTreeSet<String> =
            NULL_BUT_NOT_IN_SPEC.iter().filter(|(w, _)| *w == s.schema).map(|(_, p)| p.to_string()).collect();
        for p in null.difference(&allowed).filter(|p| !excused.contains(*p)) {
            failures.push(format!("{}: {p} can be null, the spec says it cannot", s.what));
        }
        for p in allowed.difference(&null) {
            failures.push(format!("{}: {p} may be null in the spec, the struct cannot send null", s.what));
        }
        for p in excused.difference(&null) {
            failures.push(format!("{}: {p} is excused in NULL_BUT_NOT_IN_SPEC but cannot be null", s.what));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
