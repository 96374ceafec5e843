//! JSON-RPC 2.0 messages: classification by keys (not `serde(untagged)`),
//! ids, error codes, and hand-written serialization into reused buffers.
//!
//! Params, results and error data stay raw JSON ([`RawValue`]): what the
//! gateway does not need to look inside passes through byte for byte
//! (numbers beyond 64 bits, key order, escapes), and what it must change
//! (a tool's name, a progress token) is changed in place with
//! [`set_fields`], the rest of the text untouched.
//!
//! Sans-IO: bytes in, [`Message`]s out, and back. No sockets, no threads.

// The error side carries the id so the reply can echo it; parse errors are
// rare, so the larger `Err` is not worth boxing.
#![allow(clippy::result_large_err)]

use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::fmt;
use std::io::Write;
use std::sync::Arc;

/// Raw JSON text owned by a message.
pub type Raw = Box<RawValue>;

/// Standard and MCP error codes the gateway emits.
pub mod code {
    pub const PARSE_ERROR: i64 = -32700;
    pub const INVALID_REQUEST: i64 = -32600;
    pub const METHOD_NOT_FOUND: i64 = -32601;
    pub const INVALID_PARAMS: i64 = -32602;
    pub const INTERNAL_ERROR: i64 = -32603;
    /// MCP: the request was cancelled (used when a cancelled call must still be closed).
    pub const REQUEST_CANCELLED: i64 = -32800;
    /// 2026-07-28: UnsupportedProtocolVersion.
    pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;
    /// 2026-07-28: a routing header disagrees with the body (HeaderMismatch).
    pub const HEADER_MISMATCH: i64 = -32020;
    /// 2026-07-28: MissingRequiredClientCapability.
    pub const MISSING_CLIENT_CAPABILITY: i64 = -32021;
    /// Gateway-specific (implementation-defined server error range): backend down or timed out.
    pub const BACKEND_UNAVAILABLE: i64 = -32001;
    pub const REQUEST_TIMEOUT: i64 = -32002;
}

/// A JSON-RPC id. Null is only legal on error responses, where it is `None`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Id {
    Num(i64),
    Str(Arc<str>),
}

impl Id {
    pub fn from_value(v: &Value) -> Option<Id> {
        match v {
            Value::Number(n) => n.as_i64().map(Id::Num),
            Value::String(s) => Some(Id::Str(Arc::from(s.as_str()))),
            _ => None,
        }
    }

    /// An id from raw JSON: an integer or a string (null and others: None).
    pub fn from_raw(r: &RawValue) -> Option<Id> {
        let t = r.get().trim();
        if t.starts_with('"') {
            return serde_json::from_str::<String>(t).ok().map(|s| Id::Str(s.into()));
        }
        t.parse::<i64>().ok().map(Id::Num)
    }

    /// The id as raw JSON.
    pub fn to_raw(&self) -> Raw {
        let mut out = Vec::with_capacity(16);
        self.write_json(&mut out);
        raw_from_bytes(out)
    }

    pub fn to_value(&self) -> Value {
        match self {
            Id::Num(n) => Value::from(*n),
            Id::Str(s) => Value::from(&**s),
        }
    }

    /// Writes the id as JSON.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        match self {
            Id::Num(n) => {
                let _ = write!(out, "{n}");
            }
            Id::Str(s) => write_json_str(out, s),
        }
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Id::Num(n) => write!(f, "{n}"),
            Id::Str(s) => write!(f, "{s:?}"),
        }
    }
}

/// The `error` member of an error response. `data` stays raw, so a
/// backend's error passes through as it sent it.
#[derive(Clone, Debug)]
pub struct ErrorObj {
    pub code: i64,
    pub message: String,
    pub data: Option<Raw>,
}

impl PartialEq for ErrorObj {
    fn eq(&self, o: &ErrorObj) -> bool {
        self.code == o.code
            && self.message == o.message
            && self.data.as_ref().map(|d| d.get()) == o.data.as_ref().map(|d| d.get())
    }
}

impl ErrorObj {
    pub fn new(code: i64, message: impl Into<String>) -> ErrorObj {
        ErrorObj { code, message: message.into(), data: None }
    }

    pub fn with_data(mut self, data: Value) -> ErrorObj {
        self.data = serde_json::value::to_raw_value(&data).ok();
        self
    }

    /// `data` as a value (parsed; for tests and the odd reader).
    pub fn data_value(&self) -> Option<Value> {
        self.data.as_ref().and_then(|d| serde_json::from_str(d.get()).ok())
    }

    pub fn to_value(&self) -> Value {
        let mut m = Map::new();
        m.insert("code".into(), self.code.into());
        m.insert("message".into(), self.message.clone().into());
        if let Some(d) = self.data_value() {
            m.insert("data".into(), d);
        }
        Value::Object(m)
    }

    fn write_json(&self, out: &mut Vec<u8>) {
        let _ = write!(out, "{{\"code\":{},\"message\":", self.code);
        write_json_str(out, &self.message);
        if let Some(d) = &self.data {
            out.extend_from_slice(b",\"data\":");
            out.extend_from_slice(d.get().as_bytes());
        }
        out.push(b'}');
    }
}

impl fmt::Display for ErrorObj {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (code {})", self.message, self.code)
    }
}

/// One JSON-RPC message, its params and result as raw JSON.
#[derive(Debug)]
pub enum Message {
    Request { id: Id, method: String, params: Option<Raw> },
    Notification { method: String, params: Option<Raw> },
    Response { id: Id, result: Raw },
    Error { id: Option<Id>, error: ErrorObj },
}

impl Message {
    pub fn request(id: Id, method: &str, params: Option<Value>) -> Message {
        Message::Request { id, method: method.to_owned(), params: params.map(|p| to_raw(&p)) }
    }

    pub fn notification(method: &str, params: Option<Value>) -> Message {
        Message::Notification { method: method.to_owned(), params: params.map(|p| to_raw(&p)) }
    }

    /// The params parsed into a value (for the few places that read them).
    pub fn params_value(&self) -> Option<Value> {
        match self {
            Message::Request { params, .. } | Message::Notification { params, .. } => params.as_deref().map(value_of),
            _ => None,
        }
    }

    pub fn error(id: Option<Id>, error: ErrorObj) -> Message {
        Message::Error { id, error }
    }

    /// A success response from a value (serialized once here).
    pub fn result(id: Id, result: &Value) -> Message {
        Message::Response { id, result: to_raw(result) }
    }

    pub fn method(&self) -> Option<&str> {
        match self {
            Message::Request { method, .. } | Message::Notification { method, .. } => Some(method),
            _ => None,
        }
    }

    /// Serializes into `out` (appends; callers clear and reuse the buffer).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"jsonrpc\":\"2.0\"");
        match self {
            Message::Request { id, method, params } => {
                out.extend_from_slice(b",\"id\":");
                id.write_json(out);
                out.extend_from_slice(b",\"method\":");
                write_json_str(out, method);
                write_params(out, params);
            }
            Message::Notification { method, params } => {
                out.extend_from_slice(b",\"method\":");
                write_json_str(out, method);
                write_params(out, params);
            }
            Message::Response { id, result } => {
                out.extend_from_slice(b",\"id\":");
                id.write_json(out);
                out.extend_from_slice(b",\"result\":");
                out.extend_from_slice(result.get().as_bytes());
            }
            Message::Error { id, error } => {
                out.extend_from_slice(b",\"id\":");
                match id {
                    Some(id) => id.write_json(out),
                    None => out.extend_from_slice(b"null"),
                }
                out.extend_from_slice(b",\"error\":");
                error.write_json(out);
            }
        }
        out.push(b'}');
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(128);
        self.write_json(&mut v);
        v
    }
}

fn write_params(out: &mut Vec<u8>, params: &Option<Raw>) {
    if let Some(p) = params {
        out.extend_from_slice(b",\"params\":");
        out.extend_from_slice(p.get().as_bytes());
    }
}

/// A value as raw JSON (serializing a `Value` cannot fail: its keys are strings).
pub fn to_raw(v: &Value) -> Raw {
    serde_json::value::to_raw_value(v).unwrap_or_else(|_| RawValue::NULL.to_owned())
}

/// Raw JSON parsed into a value (`Null` if it is not JSON, which raw
/// values from the parser always are).
pub fn value_of(r: &RawValue) -> Value {
    serde_json::from_str(r.get()).unwrap_or(Value::Null)
}

/// Bytes known to be one JSON value, as raw JSON (`null` if they are not).
pub fn raw_from_bytes(bytes: Vec<u8>) -> Raw {
    String::from_utf8(bytes)
        .ok()
        .and_then(|s| RawValue::from_string(s).ok())
        .unwrap_or_else(|| RawValue::NULL.to_owned())
}

/// Writes `s` as a JSON string literal.
pub fn write_json_str(out: &mut Vec<u8>, s: &str) {
    let _ = serde_json::to_writer(&mut *out, s);
}

/// What a body held: one message or a batch (array).
#[derive(Debug)]
pub enum Parsed {
    Single(Result<Message, ErrorObj>),
    /// Each element classified on its own; an empty array is an invalid request.
    Batch(Vec<Result<Message, (Option<Id>, ErrorObj)>>),
}

fn parse_error(e: impl fmt::Display) -> ErrorObj {
    ErrorObj::new(code::PARSE_ERROR, format!("Parse error: {e}"))
}

/// Parses a body. `Err` is a parse error (not JSON at all), or a non-object,
/// non-array top-level value; per-element errors of a batch stay inside.
pub fn parse(bytes: &[u8]) -> Result<Parsed, ErrorObj> {
    let text = std::str::from_utf8(bytes).map_err(parse_error)?;
    if text.trim_start().starts_with('{') {
        // One pass: the members are read (and the JSON checked) at once.
        return Ok(Parsed::Single(classify_items(&entries_of_text(text).map_err(parse_error)?).map_err(|(_, e)| e)));
    }
    let raw: &RawValue = serde_json::from_str(text).map_err(parse_error)?;
    match raw.get().as_bytes().first() {
        Some(b'{') => Ok(Parsed::Single(classify_raw(raw).map_err(|(_, e)| e))),
        Some(b'[') => {
            let items: Vec<&RawValue> = serde_json::from_str(raw.get()).map_err(parse_error)?;
            if items.is_empty() {
                return Err(ErrorObj::new(code::INVALID_REQUEST, "Invalid Request: empty batch"));
            }
            Ok(Parsed::Batch(items.into_iter().map(classify_raw).collect()))
        }
        _ => Err(ErrorObj::new(code::INVALID_REQUEST, "Invalid Request: expected a JSON object")),
    }
}

/// Parses exactly one message (a line from a stdio backend, an SSE `data:`).
pub fn parse_one(bytes: &[u8]) -> Result<Message, (Option<Id>, ErrorObj)> {
    let text = std::str::from_utf8(bytes).map_err(|e| (None, parse_error(e)))?;
    if text.trim_start().starts_with('{') {
        return classify_items(&entries_of_text(text).map_err(|e| (None, parse_error(e)))?);
    }
    let raw: &RawValue = serde_json::from_str(text).map_err(|e| (None, parse_error(e)))?;
    classify_raw(raw)
}

/// The members of the object that is all of `text` (nothing after it but
/// whitespace), checking the JSON as it goes.
fn entries_of_text(text: &str) -> Result<Entries<'_>, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    let items = de.deserialize_map(EntriesVisitor)?;
    de.end()?;
    Ok(items)
}

/// An object's members in order, keys unescaped, values raw.
type Entries<'a> = Vec<(Cow<'a, str>, &'a RawValue)>;

/// Classifies one JSON value (already parsed to a `Value`).
pub fn classify(v: Value) -> Result<Message, (Option<Id>, ErrorObj)> {
    let raw = to_raw(&v);
    classify_raw(&raw)
}

/// The members of a JSON object, in order, values raw. `None` if `raw` is
/// not an object.
pub fn entries(raw: &RawValue) -> Option<Vec<(Cow<'_, str>, &RawValue)>> {
    let t = raw.get().trim_start();
    if !t.starts_with('{') {
        return None;
    }
    let mut de = serde_json::Deserializer::from_str(raw.get());
    de.deserialize_map(EntriesVisitor).ok()
}

struct EntriesVisitor;

impl<'de> Visitor<'de> for EntriesVisitor {
    type Value = Vec<(Cow<'de, str>, &'de RawValue)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(map.size_hint().unwrap_or(6));
        while let Some(k) = map.next_key::<Key<'de>>()? {
            let v: &'de RawValue = map.next_value()?;
            out.push((k.0, v));
        }
        Ok(out)
    }
}

/// An object key, borrowed when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E>(self, s: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s)))
            }
        }
        d.deserialize_str(V)
    }
}

/// The value of member `key` of an object (the last one if repeated).
pub fn get_field<'a>(obj: &'a RawValue, key: &str) -> Option<&'a RawValue> {
    if !may_have_key(obj.get(), key) {
        return None;
    }
    entries(obj)?.into_iter().rev().find(|(k, _)| k == key).map(|(_, v)| v)
}

/// Whether `text` can hold the member name `key` at all: a substring
/// search is many times cheaper than parsing, and most lookups (`_meta`,
/// say) are for members that are absent. Only a key written as it is
/// spelled, or with escapes, can match; with escapes, parse to be sure.
fn may_have_key(text: &str, key: &str) -> bool {
    let (t, k) = (text.as_bytes(), key.as_bytes());
    if k.is_empty() || k.iter().any(|&b| b == b'"' || b == b'\\' || !(0x20..0x80).contains(&b)) {
        return true;
    }
    let slash = k.contains(&b'/');
    let escaped = memchr::memchr_iter(b'\\', t).any(|i| match t.get(i + 1) {
        Some(b'u') => true,
        Some(b'/') => slash,
        _ => false,
    });
    escaped || memchr::memmem::find_iter(t, k).any(|i| i > 0 && t[i - 1] == b'"' && t.get(i + k.len()) == Some(&b'"'))
}

/// A string member of an object, unescaped.
pub fn get_str(obj: &RawValue, key: &str) -> Option<String> {
    get_field(obj, key).and_then(|v| serde_json::from_str::<String>(v.get()).ok())
}

/// `obj` with members set: an existing member keeps its place and gets the
/// new value, a missing one is appended; everything else is copied as it
/// was, byte for byte. `None` if `obj` is not an object.
pub fn set_fields(obj: &RawValue, set: &[(&str, &RawValue)]) -> Option<Raw> {
    let items = entries(obj)?;
    let mut out = Vec::with_capacity(obj.get().len() + 32);
    out.push(b'{');
    let mut done = vec![false; set.len()];
    for (i, (k, v)) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_json_str(&mut out, k);
        out.push(b':');
        match set.iter().position(|(sk, _)| sk == k) {
            Some(j) => {
                out.extend_from_slice(set[j].1.get().as_bytes());
                done[j] = true;
            }
            None => out.extend_from_slice(v.get().as_bytes()),
        }
    }
    for (j, (k, v)) in set.iter().enumerate() {
        if !done[j] {
            if out.len() > 1 {
                out.push(b',');
            }
            write_json_str(&mut out, k);
            out.push(b':');
            out.extend_from_slice(v.get().as_bytes());
        }
    }
    out.push(b'}');
    Some(raw_from_bytes(out))
}

/// Classifies one JSON value by the keys it has. The `Err` side carries any
/// id that could be read, so the error response can echo it.
pub fn classify_raw(raw: &RawValue) -> Result<Message, (Option<Id>, ErrorObj)> {
    let Some(items) = entries(raw) else {
        return Err((None, ErrorObj::new(code::INVALID_REQUEST, "Invalid Request: expected a JSON object")));
    };
    classify_items(&items)
}

fn classify_items(items: &Entries<'_>) -> Result<Message, (Option<Id>, ErrorObj)> {
    let field = |k: &str| items.iter().rev().find(|(key, _)| key == k).map(|(_, v)| *v);
    let is_null = |r: &RawValue| r.get().trim() == "null";
    let raw_id = field("id");
    let id = match raw_id {
        None => None,
        Some(v) if is_null(v) => None,
        Some(v) => match Id::from_raw(v) {
            Some(id) => Some(id),
            None => {
                return Err((
                    None,
                    ErrorObj::new(code::INVALID_REQUEST, "Invalid Request: id must be a string or an integer"),
                ))
            }
        },
    };
    let invalid =
        |id: Option<Id>, why: &str| Err((id, ErrorObj::new(code::INVALID_REQUEST, format!("Invalid Request: {why}"))));
    match field("jsonrpc").map(|v| serde_json::from_str::<String>(v.get())) {
        Some(Ok(s)) if s == "2.0" => {}
        _ => return invalid(id, "jsonrpc must be \"2.0\""),
    }
    if let Some(method) = field("method") {
        let Ok(method) = serde_json::from_str::<String>(method.get()) else {
            return invalid(id, "method must be a string");
        };
        let params = match field("params") {
            None => None,
            Some(p) if is_null(p) => None,
            Some(p) if matches!(p.get().trim_start().as_bytes().first(), Some(b'{' | b'[')) => Some(p.to_owned()),
            Some(_) => return invalid(id, "params must be an object or an array"),
        };
        return Ok(match id {
            Some(id) => Message::Request { id, method, params },
            None if raw_id.is_some() => return invalid(None, "id must not be null"),
            None => Message::Notification { method, params },
        });
    }
    if let Some(result) = field("result") {
        let Some(id) = id else {
            return invalid(None, "a response needs an id");
        };
        return Ok(Message::Response { id, result: result.to_owned() });
    }
    if let Some(err) = field("error") {
        let code = get_field(err, "code").and_then(|c| c.get().trim().parse::<i64>().ok());
        let message = get_str(err, "message");
        let (Some(code), Some(message)) = (code, message) else {
            return invalid(id, "error needs an integer code and a string message");
        };
        let data = get_field(err, "data").map(|d| d.to_owned());
        return Ok(Message::Error { id, error: ErrorObj { code, message, data } });
    }
    invalid(id, "not a request, notification or response")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The substring shortcut never hides a member, however it is written.
    #[test]
    fn absent_members_are_found_absent_and_escaped_ones_found() {
        let raw = |s: &str| serde_json::from_str::<Raw>(s).unwrap();
        let plain = raw(r#"{"name":"echo","arguments":{"text":"_meta"}}"#);
        assert!(get_field(&plain, "_meta").is_none());
        assert_eq!(get_field(&plain, "name").map(|v| v.get()), Some(r#""echo""#));
        let escaped = raw(r#"{"\u005fmeta":{"progressToken":1}}"#);
        assert_eq!(get_field(&escaped, "_meta").map(|v| v.get()), Some(r#"{"progressToken":1}"#));
        let slash = raw(r#"{"a\/b":1}"#);
        assert_eq!(get_field(&slash, "a/b").map(|v| v.get()), Some("1"));
        let nested = raw(r#"{"x":{"_meta":1}}"#);
        assert!(get_field(&nested, "_meta").is_none());
    }
    use serde_json::json;

    fn one(s: &str) -> Message {
        match parse(s.as_bytes()).unwrap() {
            Parsed::Single(m) => m.unwrap(),
            Parsed::Batch(_) => panic!("batch"),
        }
    }

    #[test]
    fn classifies_request_notification_response_error() {
        assert!(matches!(
            one(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#),
            Message::Request { id: Id::Num(1), ref method, params: None } if method == "ping"
        ));
        assert!(matches!(
            one(r#"{"jsonrpc":"2.0","id":"a","method":"x","params":{"k":1}}"#),
            Message::Request { id: Id::Str(ref s), params: Some(_), .. } if &**s == "a"
        ));
        assert!(matches!(
            one(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#),
            Message::Notification { .. }
        ));
        match one(r#"{"jsonrpc":"2.0","id":7,"result":{"a":[1,2]}}"#) {
            Message::Response { id, result } => {
                assert_eq!(id, Id::Num(7));
                assert_eq!(result.get(), r#"{"a":[1,2]}"#);
            }
            m => panic!("{m:?}"),
        }
        match one(r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"bad","data":3}}"#) {
            Message::Error { id: None, error } => {
                assert_eq!(error.code, -32700);
                assert_eq!(error.message, "bad");
                assert_eq!(error.data_value(), Some(json!(3)));
            }
            m => panic!("{m:?}"),
        }
    }

    #[test]
    fn rejects_invalid_shapes_with_the_id_it_could_read() {
        let err = |s: &str| match parse(s.as_bytes()) {
            Ok(Parsed::Single(Err(e))) => e,
            Err(e) => e,
            other => panic!("{other:?}"),
        };
        assert_eq!(err("{").code, code::PARSE_ERROR);
        assert_eq!(err("42").code, code::INVALID_REQUEST);
        assert_eq!(err("\"s\"").code, code::INVALID_REQUEST);
        assert_eq!(err("[]").code, code::INVALID_REQUEST);
        assert_eq!(err(r#"{"id":1,"method":"x"}"#).code, code::INVALID_REQUEST);
        assert_eq!(err(r#"{"jsonrpc":"1.0","id":1,"method":"x"}"#).code, code::INVALID_REQUEST);
        assert_eq!(err(r#"{"jsonrpc":"2.0","id":1,"method":5}"#).code, code::INVALID_REQUEST);
        assert_eq!(err(r#"{"jsonrpc":"2.0","id":{},"method":"x"}"#).code, code::INVALID_REQUEST);
        assert_eq!(err(r#"{"jsonrpc":"2.0","id":1.5,"method":"x"}"#).code, code::INVALID_REQUEST);
        assert_eq!(err(r#"{"jsonrpc":"2.0","id":null,"method":"x"}"#).code, code::INVALID_REQUEST);
        assert_eq!(err(r#"{"jsonrpc":"2.0","id":1,"method":"x","params":3}"#).code, code::INVALID_REQUEST);
        assert_eq!(err(r#"{"jsonrpc":"2.0","result":1}"#).code, code::INVALID_REQUEST);
        assert_eq!(err(r#"{"jsonrpc":"2.0","id":1}"#).code, code::INVALID_REQUEST);
        assert_eq!(err(r#"{"jsonrpc":"2.0","id":1,"error":{"code":"x"}}"#).code, code::INVALID_REQUEST);
        match parse_one(br#"{"jsonrpc":"2.0","id":9,"method":7}"#) {
            Err((Some(Id::Num(9)), e)) => assert_eq!(e.code, code::INVALID_REQUEST),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn batch_classifies_each_element() {
        match parse(br#"[{"jsonrpc":"2.0","id":1,"method":"a"},{"bad":1},{"jsonrpc":"2.0","method":"n"}]"#).unwrap() {
            Parsed::Batch(items) => {
                assert_eq!(items.len(), 3);
                assert!(matches!(items[0], Ok(Message::Request { .. })));
                assert!(items[1].is_err());
                assert!(matches!(items[2], Ok(Message::Notification { .. })));
            }
            Parsed::Single(_) => panic!("single"),
        }
    }

    #[test]
    fn serializes_round_trip() {
        let cases = [
            Message::request(Id::Num(3), "tools/call", Some(json!({"name":"echo","arguments":{"m":"é\n\"q\""}}))),
            Message::request(Id::Str("s-1".into()), "ping", None),
            Message::notification("notifications/progress", Some(json!({"progressToken":"t","progress":1}))),
            Message::result(Id::Num(-4), &json!({"ok":true})),
            Message::error(None, ErrorObj::new(-32700, "Parse error")),
            Message::error(Some(Id::Num(1)), ErrorObj::new(-32602, "bad").with_data(json!({"x":1}))),
        ];
        for m in cases {
            let bytes = m.to_bytes();
            let v: Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(v["jsonrpc"], "2.0");
            let back = parse_one(&bytes).unwrap();
            assert_eq!(back.to_bytes(), bytes, "{}", String::from_utf8_lossy(&bytes));
        }
    }

    #[test]
    fn error_with_null_id_serializes_null() {
        let b = Message::error(None, ErrorObj::new(-32700, "x")).to_bytes();
        assert_eq!(
            std::str::from_utf8(&b).unwrap(),
            r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"x"}}"#
        );
    }

    /// Generated malformed messages: classification never panics and an
    /// error keeps any id it could read.
    #[test]
    fn mutated_messages_never_panic() {
        let seeds: [&[u8]; 4] = [
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"m":"x"}}}"#,
            br#"{"jsonrpc":"2.0","id":"a","result":{"content":[{"type":"text","text":"hi"}]}}"#,
            br#"[{"jsonrpc":"2.0","method":"notifications/initialized"},{"jsonrpc":"2.0","id":2,"method":"ping"}]"#,
            br#"{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"bad","data":[1,2]}}"#,
        ];
        let nasty = b"{}[]\",:0-9e.null truefalse\\\"\x00\xff";
        let mut state: u64 = 0x1234_5678;
        let mut next = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n.max(1) as u64) as usize
        };
        for round in 0..20_000 {
            let mut v = seeds[round % seeds.len()].to_vec();
            for _ in 0..1 + next(4) {
                let at = next(v.len() + 1);
                match next(3) {
                    0 if at < v.len() => v[at] = nasty[next(nasty.len())],
                    1 => v.insert(at, nasty[next(nasty.len())]),
                    _ => v.truncate(at),
                }
            }
            if let Ok(Parsed::Single(Ok(m))) = parse(&v) {
                let back = m.to_bytes();
                assert!(parse_one(&back).is_ok(), "round {round}: {}", String::from_utf8_lossy(&back));
            }
            let _ = parse_one(&v);
        }
    }
}
