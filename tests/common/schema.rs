//! A small JSON Schema validator for the subset that
//! `docs/manage-api.openapi.json` uses, and helpers to check a management API
//! response against that document. Test code only; no threads, no I/O except
//! [`load_spec`].
//!
//! Supported keywords (anything else in a schema is reported by
//! [`unsupported_keywords`], so the spec cannot silently outgrow the
//! validator):
//!
//! - `type`: one name or an array of names (`["string", "null"]`);
//!   `integer` accepts a JSON number with no fractional part.
//! - `required`, `properties`, `additionalProperties` (`false`, `true` or a
//!   schema), `items`, `enum`, `minimum`.
//! - `$ref` to a local JSON pointer (`#/components/schemas/Name`).
//! - `format: "date-time"`: stricter than JSON Schema, which only annotates:
//!   an RFC 3339 timestamp in UTC (`Z`), as CONTRACT §5 requires.
//! - Annotations that are ignored: `description`, `title`, `example`,
//!   `examples`, `default`.
//!
//! Errors are strings `"<path>: <what>"`, where path is `$` for the root,
//! `$.a.b[2]` below it.

use serde_json::{Map, Value};
use std::path::Path;

/// Where the OpenAPI document lives.
pub const SPEC_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/manage-api.openapi.json");
/// The management API's base path; `/metrics` is outside it.
pub const API_BASE: &str = "/manage/v1";

const ASSERTIONS: &[&str] =
    &["type", "required", "properties", "additionalProperties", "items", "enum", "minimum", "$ref", "format"];
const ANNOTATIONS: &[&str] = &["description", "title", "example", "examples", "default"];
const MAX_DEPTH: usize = 64;

/// Reads and parses the OpenAPI document. Panics with the reason (test code).
pub fn load_spec() -> Value {
    load_json(Path::new(SPEC_PATH))
}

/// Reads and parses a JSON file. Panics with the file name and reason.
pub fn load_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: not valid JSON: {e}", path.display()))
}

/// Resolves a local reference such as `#/components/schemas/Event`.
pub fn resolve<'a>(spec: &'a Value, reference: &str) -> Option<&'a Value> {
    let pointer = reference.strip_prefix('#')?;
    spec.pointer(pointer)
}

/// Validates `value` against `schema` (which may hold `$ref`s into `spec`).
pub fn validate(spec: &Value, schema: &Value, value: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    check(spec, schema, value, "$", 0, &mut errors);
    errors
}

/// Validates `value` against `#/components/schemas/<name>`.
pub fn validate_component(spec: &Value, name: &str, value: &Value) -> Vec<String> {
    match spec.pointer(&format!("/components/schemas/{name}")) {
        Some(schema) => validate(spec, schema, value),
        None => vec![format!("no schema {name:?} in components/schemas")],
    }
}

/// The spec's key for `path`: the path itself if the spec has it, else
/// `API_BASE` + path (so `/status` works as well as `/manage/v1/status`).
pub fn spec_path<'a>(spec: &'a Value, path: &str) -> Option<(String, &'a Value)> {
    let paths = spec.get("paths")?;
    if let Some(item) = paths.get(path) {
        return Some((path.to_owned(), item));
    }
    let full = format!("{API_BASE}{path}");
    paths.get(&full).map(|item| (full, item))
}

/// The path template that a concrete request path matches, e.g.
/// `/manage/v1/backends/alpha/reconnect` → `/manage/v1/backends/{name}/reconnect`.
/// A query string is ignored. Literal segments win over `{param}` ones.
pub fn match_path(spec: &Value, concrete: &str) -> Option<String> {
    let concrete = concrete.split('?').next().unwrap_or(concrete);
    let want: Vec<&str> = concrete.split('/').collect();
    let paths = spec.get("paths")?.as_object()?;
    let mut best: Option<(usize, &String)> = None;
    for template in paths.keys() {
        let have: Vec<&str> = template.split('/').collect();
        if have.len() != want.len() {
            continue;
        }
        let mut params = 0;
        let fits = have.iter().zip(&want).all(|(h, w)| {
            if h.starts_with('{') && h.ends_with('}') {
                params += 1;
                !w.is_empty()
            } else {
                h == w
            }
        });
        if fits && best.is_none_or(|(p, _)| params < p) {
            best = Some((params, template));
        }
    }
    best.map(|(_, t)| t.clone())
}

/// The operation object for `method` on `path_template` (see [`spec_path`]).
pub fn operation<'a>(spec: &'a Value, path_template: &str, method: &str) -> Result<&'a Value, String> {
    let (key, item) = spec_path(spec, path_template).ok_or_else(|| format!("no path {path_template:?} in the spec"))?;
    item.get(method.to_ascii_lowercase()).ok_or_else(|| format!("{method} {key}: no such operation in the spec"))
}

/// The scopes an operation needs (its `x-scopes`), e.g. `["admin"]`.
pub fn required_scopes(spec: &Value, path_template: &str, method: &str) -> Result<Vec<String>, String> {
    let op = operation(spec, path_template, method)?;
    let scopes = op.get("x-scopes").and_then(Value::as_array).ok_or("operation has no x-scopes")?;
    Ok(scopes.iter().filter_map(Value::as_str).map(str::to_owned).collect())
}

/// The response object for `status` (or `default`), with `$ref` resolved.
pub fn response<'a>(spec: &'a Value, path_template: &str, method: &str, status: u16) -> Result<&'a Value, String> {
    let op = operation(spec, path_template, method)?;
    let responses = op.get("responses").ok_or_else(|| format!("{method} {path_template}: no responses"))?;
    let mut resp = responses
        .get(status.to_string())
        .or_else(|| responses.get("default"))
        .ok_or_else(|| format!("{method} {path_template}: status {status} is not documented"))?;
    for _ in 0..MAX_DEPTH {
        match resp.get("$ref").and_then(Value::as_str) {
            Some(r) => resp = resolve(spec, r).ok_or_else(|| format!("unresolved $ref {r:?}"))?,
            None => return Ok(resp),
        }
    }
    Err(format!("{method} {path_template}: $ref chain too deep"))
}

/// Validates a JSON response body against the spec's schema for that
/// operation and status (falling back to the `default` response). Returns
/// the list of errors, empty when the body conforms. `path_template` may be
/// given with or without the `/manage/v1` prefix; use [`match_path`] to get
/// it from a concrete path.
pub fn validate_response(spec: &Value, path_template: &str, method: &str, status: u16, body: &Value) -> Vec<String> {
    let resp = match response(spec, path_template, method, status) {
        Ok(r) => r,
        Err(e) => return vec![e],
    };
    match resp.pointer("/content/application~1json/schema") {
        Some(schema) => validate(spec, schema, body),
        None => vec![format!("{method} {path_template} {status}: the spec gives no application/json body")],
    }
}

/// Every keyword in the spec's schemas that this validator does not
/// understand, as `"<location>: <keyword>"`. Covers `components/schemas` and
/// every schema under `paths` (parameters, media types, headers).
pub fn unsupported_keywords(spec: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(schemas) = spec.pointer("/components/schemas").and_then(Value::as_object) {
        for (name, schema) in schemas {
            scan(schema, &format!("#/components/schemas/{name}"), &mut out);
        }
    }
    for (where_, schema) in schemas_under(spec.get("paths"), "#/paths")
        .into_iter()
        .chain(schemas_under(spec.pointer("/components/responses"), "#/components/responses"))
    {
        scan(schema, &where_, &mut out);
    }
    out
}

/// Every `$ref` anywhere in the spec that does not resolve.
pub fn unresolved_refs(spec: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![spec];
    while let Some(v) = stack.pop() {
        match v {
            Value::Object(m) => {
                if let Some(r) = m.get("$ref").and_then(Value::as_str) {
                    if resolve(spec, r).is_none() {
                        out.push(r.to_owned());
                    }
                }
                stack.extend(m.values());
            }
            Value::Array(a) => stack.extend(a),
            _ => {}
        }
    }
    out
}

/// `schema` members (values whose key is `schema`) found anywhere below `v`.
fn schemas_under<'a>(v: Option<&'a Value>, at: &str) -> Vec<(String, &'a Value)> {
    let mut out = Vec::new();
    let mut stack: Vec<(String, &Value)> = v.map(|v| (at.to_owned(), v)).into_iter().collect();
    while let Some((loc, v)) = stack.pop() {
        match v {
            Value::Object(m) => {
                for (k, child) in m {
                    let child_loc = format!("{loc}/{}", k.replace('~', "~0").replace('/', "~1"));
                    if k == "schema" || k == "x-item-schema" {
                        out.push((child_loc, child));
                    } else {
                        stack.push((child_loc, child));
                    }
                }
            }
            Value::Array(a) => stack.extend(a.iter().enumerate().map(|(i, c)| (format!("{loc}/{i}"), c))),
            _ => {}
        }
    }
    out
}

fn scan(schema: &Value, loc: &str, out: &mut Vec<String>) {
    let Some(m) = schema.as_object() else {
        if !schema.is_boolean() {
            out.push(format!("{loc}: a schema must be an object or a boolean"));
        }
        return;
    };
    for (k, v) in m {
        if !ASSERTIONS.contains(&k.as_str()) && !ANNOTATIONS.contains(&k.as_str()) {
            out.push(format!("{loc}: {k}"));
        }
        match k.as_str() {
            "properties" => {
                for (name, sub) in v.as_object().into_iter().flatten() {
                    scan(sub, &format!("{loc}/properties/{name}"), out);
                }
            }
            "items" | "additionalProperties" if v.is_object() => scan(v, &format!("{loc}/{k}"), out),
            "format" if v != "date-time" => out.push(format!("{loc}: format {v}")),
            _ => {}
        }
    }
}

fn check(spec: &Value, schema: &Value, value: &Value, path: &str, depth: usize, errors: &mut Vec<String>) {
    if depth > MAX_DEPTH {
        errors.push(format!("{path}: schema nesting deeper than {MAX_DEPTH} (a $ref cycle?)"));
        return;
    }
    let s = match schema {
        Value::Bool(true) => return,
        Value::Bool(false) => {
            errors.push(format!("{path}: no value is allowed here"));
            return;
        }
        Value::Object(s) => s,
        _ => {
            errors.push(format!("{path}: invalid schema {schema}"));
            return;
        }
    };
    if let Some(r) = s.get("$ref") {
        match r.as_str().and_then(|r| resolve(spec, r)) {
            Some(target) => check(spec, target, value, path, depth + 1, errors),
            None => errors.push(format!("{path}: unresolved $ref {r}")),
        }
    }
    if let Some(t) = s.get("type") {
        let names: Vec<&str> = match t {
            Value::String(n) => vec![n.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !names.iter().any(|n| has_type(value, n)) {
            errors.push(format!("{path}: expected {}, found {}", names.join(" or "), type_of(value)));
            // Further checks would only repeat the mismatch.
            return;
        }
    }
    if let Some(allowed) = s.get("enum").and_then(Value::as_array) {
        if !allowed.contains(value) {
            let list: Vec<String> = allowed.iter().map(Value::to_string).collect();
            errors.push(format!("{path}: {value} is not one of [{}]", list.join(", ")));
        }
    }
    if let (Some(min), Some(n)) = (s.get("minimum").and_then(Value::as_f64), value.as_f64()) {
        if n < min {
            errors.push(format!("{path}: {value} is less than the minimum {min}"));
        }
    }
    if let (Some("date-time"), Some(text)) = (s.get("format").and_then(Value::as_str), value.as_str()) {
        if !is_utc_date_time(text) {
            errors.push(format!("{path}: {value} is not an RFC 3339 UTC timestamp (YYYY-MM-DDTHH:MM:SS[.fff]Z)"));
        }
    }
    if let Value::Object(obj) = value {
        check_object(spec, s, obj, path, depth, errors);
    }
    if let (Some(items), Value::Array(arr)) = (s.get("items"), value) {
        for (i, item) in arr.iter().enumerate() {
            check(spec, items, item, &format!("{path}[{i}]"), depth + 1, errors);
        }
    }
}

fn check_object(
    spec: &Value,
    s: &Map<String, Value>,
    obj: &Map<String, Value>,
    path: &str,
    depth: usize,
    errors: &mut Vec<String>,
) {
    let props = s.get("properties").and_then(Value::as_object);
    for name in s.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
        if !obj.contains_key(name) {
            errors.push(format!("{path}.{name}: required property missing"));
        }
    }
    for (k, v) in obj {
        let child = format!("{path}.{k}");
        match props.and_then(|p| p.get(k)) {
            Some(sub) => check(spec, sub, v, &child, depth + 1, errors),
            None => match s.get("additionalProperties") {
                Some(Value::Bool(false)) => errors.push(format!("{child}: property not allowed by the schema")),
                Some(extra @ Value::Object(_)) => check(spec, extra, v, &child, depth + 1, errors),
                _ => {}
            },
        }
    }
}

fn has_type(v: &Value, name: &str) -> bool {
    match name {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "string" => v.is_string(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        "number" => v.is_number(),
        "integer" => v.is_i64() || v.is_u64() || v.as_f64().is_some_and(|f| f.is_finite() && f.fract() == 0.0),
        _ => false,
    }
}

fn type_of(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(_) => "boolean".into(),
        Value::Number(n) if n.is_i64() || n.is_u64() => format!("integer {n}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) => format!("string {s:?}"),
        Value::Array(_) => "array".into(),
        Value::Object(_) => "object".into(),
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.f+]Z` with plausible field ranges.
fn is_utc_date_time(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b.get(r.clone()).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let num = |r: std::ops::Range<usize>| s.get(r).and_then(|t| t.parse::<u32>().ok()).unwrap_or(u32::MAX);
    if b.len() < 20 || !digits(0..4) || !digits(5..7) || !digits(8..10) || !digits(11..13) || !digits(14..16) {
        return false;
    }
    if !digits(17..19) || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return false;
    }
    let in_range = (1..=12).contains(&num(5..7))
        && (1..=31).contains(&num(8..10))
        && num(11..13) < 24
        && num(14..16) < 60
        && num(17..19) < 61;
    let rest = &s[19..];
    let tail_ok = match rest.strip_prefix('.') {
        Some(frac) => {
            frac.len() >= 2 && frac.ends_with('Z') && frac[..frac.len() - 1].bytes().all(|c| c.is_ascii_digit())
        }
        None => rest == "Z",
    };
    in_range && tail_ok
}
