//! Checks `docs/manage-api.openapi.json` against CONTRACT §5 and checks the
//! validator in `tests/common/schema.rs` (which the live management API tests
//! use) on the fixtures in `tests/fixtures/manage/openapi-*.json`: every
//! valid fixture passes, every broken one fails with exactly the errors it
//! lists, and systematic mutations of the valid ones are all rejected.

mod common;

use common::schema::{
    load_json, load_spec, match_path, required_scopes, response, unresolved_refs, unsupported_keywords, validate,
    validate_component, validate_response,
};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// CONTRACT §5 table plus `/metrics`: method, path (below `/manage/v1`
/// unless it starts with `/metrics`), scope, success status.
const CONTRACT: &[(&str, &str, &str, u16)] = &[
    ("GET", "/health", "read", 200),
    ("GET", "/status", "read", 200),
    ("GET", "/backends", "read", 200),
    ("GET", "/backends/{name}", "read", 200),
    ("GET", "/capabilities", "read", 200),
    ("GET", "/events", "read", 200),
    ("GET", "/events/stream", "read", 200),
    ("POST", "/reload", "admin", 200),
    ("POST", "/backends/{name}/reconnect", "admin", 200),
    ("POST", "/shutdown", "admin", 202),
    ("GET", "/metrics", "read", 200),
];

/// Valid fixtures: file, path, method, status.
const FIXTURES: &[(&str, &str, &str, u16)] = &[
    ("openapi-health.json", "/health", "GET", 200),
    ("openapi-status.json", "/status", "GET", 200),
    ("openapi-backends.json", "/backends", "GET", 200),
    ("openapi-backend.json", "/backends/{name}", "GET", 200),
    ("openapi-capabilities.json", "/capabilities", "GET", 200),
    ("openapi-events.json", "/events", "GET", 200),
    ("openapi-events-empty.json", "/events", "GET", 200),
    ("openapi-reload.json", "/reload", "POST", 200),
    ("openapi-reload-minimal.json", "/reload", "POST", 200),
    ("openapi-reconnect.json", "/backends/{name}/reconnect", "POST", 200),
    ("openapi-shutdown.json", "/shutdown", "POST", 202),
    ("openapi-error-unauthorized.json", "/status", "GET", 401),
    ("openapi-error-not-found.json", "/backends/{name}", "GET", 404),
    ("openapi-error-conflict.json", "/backends/{name}/reconnect", "POST", 409),
    ("openapi-error-bad-request.json", "/reload", "POST", 400),
];

/// The component schemas the API documentation promises.
const SCHEMAS: &[&str] = &[
    "Health",
    "Status",
    "BackendView",
    "BackendList",
    "Capabilities",
    "Tool",
    "Resource",
    "ResourceTemplate",
    "Prompt",
    "Conflict",
    "EventList",
    "Event",
    "ReloadResult",
    "ReconnectResult",
    "ShutdownResult",
    "Error",
];

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/manage")
}

fn fixture(name: &str) -> Value {
    load_json(&fixture_dir().join(name))
}

fn full_path(path: &str) -> String {
    if path == "/metrics" {
        path.to_owned()
    } else {
        format!("/manage/v1{path}")
    }
}

/// The path part of an error line (`$.a.b: …` → `$.a.b`).
fn error_path(e: &str) -> &str {
    e.split(": ").next().unwrap_or(e)
}

#[test]
fn spec_is_openapi_31_with_bearer_auth() {
    let spec = load_spec();
    assert!(spec["openapi"].as_str().is_some_and(|v| v.starts_with("3.1.")), "openapi: {}", spec["openapi"]);
    assert_eq!(spec.pointer("/components/securitySchemes/bearer/type"), Some(&json!("http")));
    assert_eq!(spec.pointer("/components/securitySchemes/bearer/scheme"), Some(&json!("bearer")));
    assert!(unresolved_refs(&spec).is_empty(), "unresolved: {:?}", unresolved_refs(&spec));
    let unsupported = unsupported_keywords(&spec);
    assert!(unsupported.is_empty(), "keywords the validator does not check: {unsupported:#?}");
    for name in SCHEMAS {
        assert!(spec.pointer(&format!("/components/schemas/{name}")).is_some(), "missing schema {name}");
    }
}

#[test]
fn every_contract_path_has_exactly_its_methods_and_scope() {
    let spec = load_spec();
    let paths = spec["paths"].as_object().expect("paths");
    let mut seen = BTreeSet::new();
    for &(method, path, scope, ok) in CONTRACT {
        let full = full_path(path);
        let item = paths.get(&full).unwrap_or_else(|| panic!("{full} missing from the spec"));
        let methods: Vec<&str> = item.as_object().expect("path item").keys().map(String::as_str).collect();
        assert_eq!(methods, [method.to_ascii_lowercase()], "{full}: methods");
        assert_eq!(required_scopes(&spec, &full, method), Ok(vec![scope.to_owned()]), "{method} {full}: x-scopes");
        let op = &item[method.to_ascii_lowercase()];
        let security = op["security"].as_array().expect("security");
        assert_eq!(security[0], json!({"bearer": [scope]}), "{method} {full}: security");
        // Only /health may be called without a token (manage.public_health).
        assert_eq!(security.len() == 2 && security[1] == json!({}), path == "/health", "{method} {full}");
        let responses = op["responses"].as_object().expect("responses");
        assert!(responses.contains_key(&ok.to_string()), "{method} {full}: no {ok} response");
        for code in ["401", "403", "405", "500", "503", "default"] {
            assert!(responses.contains_key(code), "{method} {full}: no {code} response");
        }
        seen.insert(full);
    }
    let extra: Vec<&String> = paths.keys().filter(|k| !seen.contains(*k)).collect();
    assert!(extra.is_empty(), "paths in the spec but not in the contract: {extra:?}");
}

#[test]
fn error_responses_use_the_error_envelope() {
    let spec = load_spec();
    for &(method, path, _, ok) in CONTRACT {
        let full = full_path(path);
        let op = &spec["paths"][&full][method.to_ascii_lowercase()];
        for (code, _) in op["responses"].as_object().expect("responses") {
            let status: u16 = if code == "default" { 599 } else { code.parse().expect("status") };
            if status == ok {
                continue;
            }
            let resp = response(&spec, &full, method, status).expect("response");
            assert_eq!(
                resp.pointer("/content/application~1json/schema/$ref"),
                Some(&json!("#/components/schemas/Error")),
                "{method} {full} {code}"
            );
        }
    }
    let h401 = response(&spec, "/status", "GET", 401).expect("401");
    assert!(h401.pointer("/headers/WWW-Authenticate").is_some(), "401 documents WWW-Authenticate");
    let h405 = response(&spec, "/status", "GET", 405).expect("405");
    assert!(h405.pointer("/headers/Allow").is_some(), "405 documents Allow");
}

#[test]
fn valid_fixtures_pass() {
    let spec = load_spec();
    for &(file, path, method, status) in FIXTURES {
        let errors = validate_response(&spec, path, method, status, &fixture(file));
        assert!(errors.is_empty(), "{file} ({method} {path} {status}): {errors:#?}");
    }
}

#[test]
fn every_fixture_file_is_checked() {
    let mut listed: BTreeSet<String> = FIXTURES.iter().map(|f| f.0.to_owned()).collect();
    for entry in std::fs::read_dir(fixture_dir()).expect("fixture dir") {
        let name = entry.expect("entry").file_name().to_string_lossy().into_owned();
        if name.starts_with("openapi-") && !name.starts_with("openapi-broken-") {
            assert!(listed.remove(&name), "{name} is not in FIXTURES");
        }
    }
    assert!(listed.is_empty(), "listed but missing: {listed:?}");
}

#[test]
fn broken_fixtures_fail_with_exactly_their_errors() {
    let spec = load_spec();
    let mut count = 0;
    for entry in std::fs::read_dir(fixture_dir()).expect("fixture dir") {
        let name = entry.expect("entry").file_name().to_string_lossy().into_owned();
        if !name.starts_with("openapi-broken-") {
            continue;
        }
        let f = fixture(&name);
        let req = &f["request"];
        let (path, method) = (req["path"].as_str().expect("path"), req["method"].as_str().expect("method"));
        let status = req["status"].as_u64().and_then(|s| u16::try_from(s).ok()).expect("status");
        let errors = validate_response(&spec, path, method, status, &f["body"]);
        let got: BTreeSet<&str> = errors.iter().map(|e| error_path(e)).collect();
        let want: BTreeSet<&str> = f["expect"].as_array().expect("expect").iter().filter_map(Value::as_str).collect();
        assert_eq!(got, want, "{name}: errors {errors:#?}");
        count += 1;
    }
    assert!(count >= 5, "only {count} broken fixtures found");
}

/// One node of a fixture with the (dereferenced) schema that applies to it.
struct Node {
    pointer: String,
    path: String,
    schema: Value,
}

fn deref<'a>(spec: &'a Value, mut schema: &'a Value) -> Value {
    while let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        schema = common::schema::resolve(spec, r).expect("ref");
    }
    schema.clone()
}

fn walk(spec: &Value, schema: &Value, value: &Value, pointer: &str, path: &str, out: &mut Vec<Node>) {
    let schema = deref(spec, schema);
    match value {
        Value::Object(m) => {
            for (k, v) in m {
                if let Some(sub) = schema.pointer(&format!("/properties/{k}")) {
                    walk(spec, sub, v, &format!("{pointer}/{k}"), &format!("{path}.{k}"), out);
                }
            }
        }
        Value::Array(a) => {
            if let Some(items) = schema.get("items") {
                for (i, v) in a.iter().enumerate() {
                    walk(spec, items, v, &format!("{pointer}/{i}"), &format!("{path}[{i}]"), out);
                }
            }
        }
        _ => {}
    }
    out.push(Node { pointer: pointer.to_owned(), path: path.to_owned(), schema });
}

/// Mutations of `body` that the schema must reject, each with the start of
/// the error it must cause.
fn mutations(spec: &Value, schema: &Value, body: &Value) -> Vec<(Value, String)> {
    let mut nodes = Vec::new();
    walk(spec, schema, body, "", "$", &mut nodes);
    let mut out = Vec::new();
    let mut with = |pointer: &str, f: &dyn Fn(&mut Value), expect: String| {
        let mut b = body.clone();
        f(b.pointer_mut(pointer).expect("pointer"));
        out.push((b, expect));
    };
    for n in &nodes {
        let s = &n.schema;
        let types: Vec<&str> = match &s["type"] {
            Value::String(t) => vec![t.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !types.is_empty() && !types.contains(&"null") {
            with(&n.pointer, &|v| *v = Value::Null, format!("{}: expected", n.path));
        }
        if s.get("enum").is_some() {
            with(&n.pointer, &|v| *v = json!("zz-not-listed"), format!("{}: \"zz-not-listed\" is not one of", n.path));
        }
        if s.get("minimum").is_some() {
            with(&n.pointer, &|v| *v = json!(-1), format!("{}: -1 is less than", n.path));
        }
        if s.get("format").is_some() {
            with(&n.pointer, &|v| *v = json!("yesterday"), format!("{}: \"yesterday\" is not an RFC 3339", n.path));
        }
        let Some(obj) = body.pointer(&n.pointer).and_then(Value::as_object) else { continue };
        for key in s["required"].as_array().into_iter().flatten().filter_map(Value::as_str) {
            if obj.contains_key(key) {
                let expect = format!("{}.{key}: required property missing", n.path);
                with(
                    &n.pointer,
                    &|v| {
                        v.as_object_mut().expect("object").remove(key);
                    },
                    expect,
                );
            }
        }
        if s.get("additionalProperties") == Some(&json!(false)) {
            with(
                &n.pointer,
                &|v| {
                    v.as_object_mut().expect("object").insert("zz_extra".into(), json!(1));
                },
                format!("{}.zz_extra: property not allowed", n.path),
            );
        }
    }
    out
}

#[test]
fn every_mutation_of_a_valid_fixture_is_rejected() {
    let spec = load_spec();
    let mut total = 0;
    for &(file, path, method, status) in FIXTURES {
        let body = fixture(file);
        let schema =
            response(&spec, path, method, status).expect("response")["content"]["application/json"]["schema"].clone();
        for (mutated, expect) in mutations(&spec, &schema, &body) {
            let errors = validate(&spec, &schema, &mutated);
            assert!(errors.iter().any(|e| e.starts_with(&expect)), "{file}: wanted {expect:?}, got {errors:#?}");
            total += 1;
        }
    }
    assert!(total > 300, "only {total} mutations: is the walk broken?");
}

#[test]
fn optional_and_free_form_fields_stay_open() {
    let spec = load_spec();
    // `notes` is optional on a reload result.
    let mut reload = fixture("openapi-reload.json");
    reload.as_object_mut().expect("object").remove("notes");
    assert!(validate_component(&spec, "ReloadResult", &reload).is_empty());
    // server_info and input_schema are the backend's own objects.
    let mut backend = fixture("openapi-backend.json");
    backend["server_info"]["title"] = json!("Demo");
    assert!(validate_component(&spec, "BackendView", &backend).is_empty());
    backend["server_info"] = json!("demo");
    assert_eq!(
        validate_component(&spec, "BackendView", &backend),
        ["$.server_info: expected object or null, found string \"demo\""]
    );
}

#[test]
fn validate_response_reports_what_it_cannot_check() {
    let spec = load_spec();
    let ok = fixture("openapi-health.json");
    assert!(validate_response(&spec, "/manage/v1/health", "get", 200, &ok).is_empty());
    assert_eq!(validate_response(&spec, "/nope", "GET", 200, &ok), ["no path \"/nope\" in the spec"]);
    assert_eq!(
        validate_response(&spec, "/health", "POST", 200, &ok),
        ["POST /manage/v1/health: no such operation in the spec"]
    );
    assert_eq!(
        validate_response(&spec, "/metrics", "GET", 200, &ok),
        ["GET /metrics 200: the spec gives no application/json body"]
    );
    // An undocumented status falls back to `default`, the error envelope.
    let errors = validate_response(&spec, "/status", "GET", 418, &ok);
    assert!(errors.contains(&"$.error: required property missing".to_owned()), "{errors:#?}");
}

#[test]
fn concrete_paths_map_to_templates() {
    let spec = load_spec();
    let cases = [
        ("/manage/v1/backends/alpha", Some("/manage/v1/backends/{name}")),
        ("/manage/v1/backends/alpha/reconnect", Some("/manage/v1/backends/{name}/reconnect")),
        ("/manage/v1/backends", Some("/manage/v1/backends")),
        ("/manage/v1/events/stream?after=3", Some("/manage/v1/events/stream")),
        ("/manage/v1/events?after=3&limit=10", Some("/manage/v1/events")),
        ("/metrics", Some("/metrics")),
        ("/manage/v1/backends/", None),
        ("/manage/v2/status", None),
    ];
    for (concrete, want) in cases {
        assert_eq!(match_path(&spec, concrete).as_deref(), want, "{concrete}");
    }
}

#[test]
fn stream_example_carries_a_valid_event() {
    let spec = load_spec();
    let media = spec
        .pointer("/paths/~1manage~1v1~1events~1stream/get/responses/200/content/text~1event-stream")
        .expect("event-stream media type");
    let example = media["example"].as_str().expect("example");
    let data = example.lines().find_map(|l| l.strip_prefix("data: ")).expect("data line");
    let event: Value = serde_json::from_str(data).expect("data is JSON");
    assert!(validate(&spec, &media["x-item-schema"], &event).is_empty());
    assert!(example.starts_with(&format!("id: {}\nevent: event\n", event["id"])), "id line matches the event id");
}

#[test]
fn the_guide_shows_every_endpoint() {
    let guide = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/management-api.md"))
        .expect("docs/management-api.md");
    for &(method, path, _, _) in CONTRACT {
        let shown = if path == "/metrics" {
            "http://127.0.0.1:9001/metrics".to_owned()
        } else {
            format!("$BASE{}", path.replace("{name}", "alpha"))
        };
        assert!(guide.contains(&shown), "docs/management-api.md has no example for {method} {shown}");
    }
}

// The validator itself, on small inline schemas.

fn tiny_spec() -> Value {
    json!({"components": {"schemas": {
        "N": {"type": "integer", "minimum": 1},
        "O": {"type": "object", "required": ["a"], "properties": {"a": {"$ref": "#/components/schemas/N"}},
              "additionalProperties": false}
    }}})
}

#[test]
fn types_and_nullability() {
    let s = tiny_spec();
    let sch = json!({"type": ["string", "null"]});
    assert!(validate(&s, &sch, &json!("x")).is_empty());
    assert!(validate(&s, &sch, &Value::Null).is_empty());
    assert_eq!(validate(&s, &sch, &json!(3)), ["$: expected string or null, found integer 3"]);
    let int = json!({"type": "integer"});
    assert!(validate(&s, &int, &json!(2.0)).is_empty());
    assert!(!validate(&s, &int, &json!(2.5)).is_empty());
    assert!(!validate(&s, &int, &json!("2")).is_empty());
}

#[test]
fn objects_refs_and_minimum() {
    let s = tiny_spec();
    let o = json!({"$ref": "#/components/schemas/O"});
    assert!(validate(&s, &o, &json!({"a": 1})).is_empty());
    assert_eq!(validate(&s, &o, &json!({})), ["$.a: required property missing"]);
    assert_eq!(validate(&s, &o, &json!({"a": 0})), ["$.a: 0 is less than the minimum 1"]);
    assert_eq!(validate(&s, &o, &json!({"a": 1, "b": 2})), ["$.b: property not allowed by the schema"]);
    assert_eq!(validate(&s, &json!({"$ref": "#/nope"}), &json!(1)), ["$: unresolved $ref \"#/nope\""]);
    let arr = json!({"type": "array", "items": {"$ref": "#/components/schemas/O"}});
    assert_eq!(validate(&s, &arr, &json!([{"a": 1}, {"a": "x"}])), ["$[1].a: expected integer, found string \"x\""]);
}

#[test]
fn enum_and_date_time() {
    let s = tiny_spec();
    let e = json!({"type": "string", "enum": ["a", "b"]});
    assert!(validate(&s, &e, &json!("b")).is_empty());
    assert_eq!(validate(&s, &e, &json!("c")), ["$: \"c\" is not one of [\"a\", \"b\"]"]);
    let t = json!({"type": "string", "format": "date-time"});
    for ok in ["2026-01-02T03:04:05Z", "2026-01-02T03:04:05.678Z", "1970-01-01T00:00:00.000Z"] {
        assert!(validate(&s, &t, &json!(ok)).is_empty(), "{ok}");
    }
    for bad in ["2026-01-02 03:04:05Z", "2026-01-02T03:04:05+01:00", "2026-13-02T03:04:05Z", "2026-01-02T03:04:05.Z"] {
        assert_eq!(validate(&s, &t, &json!(bad)).len(), 1, "{bad}");
    }
}

#[test]
fn keyword_scan_reports_unknown_keywords() {
    let s = json!({"components": {"schemas": {"X": {"type": "object", "properties": {
        "a": {"type": "string", "pattern": "^x"}, "oneOf": {"type": "string"}}}}}});
    assert_eq!(unsupported_keywords(&s), ["#/components/schemas/X/properties/a: pattern"]);
}
