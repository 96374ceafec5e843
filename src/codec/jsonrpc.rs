//! JSON-RPC 2.0 messages: classification by keys (not `serde(untagged)`),
//! ids, error codes, and hand-written serialization into reused buffers.
//!
//! Sans-IO: bytes in, [`Message`]s out, and back. No sockets, no threads.

// The error side carries the id so the reply can echo it; parse errors are
// rare, so the larger `Err` is not worth boxing.
#![allow(clippy::result_large_err)]

use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::fmt;
use std::io::Write;
use std::sync::Arc;

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
    fn from_value(v: &Value) -> Option<Id> {
        match v {
            Value::Number(n) => n.as_i64().map(Id::Num),
            Value::String(s) => Some(Id::Str(Arc::from(s.as_str()))),
            _ => None,
        }
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

/// The `error` member of an error response.
#[derive(Clone, Debug, PartialEq)]
pub struct ErrorObj {
    pub code: i64,
    pub message: String,
    pub data: Option<Value>,
}

impl ErrorObj {
    pub fn new(code: i64, message: impl Into<String>) -> ErrorObj {
        ErrorObj { code, message: message.into(), data: None }
    }

    pub fn with_data(mut self, data: Value) -> ErrorObj {
        self.data = Some(data);
        self
    }

    pub fn to_value(&self) -> Value {
        let mut m = Map::new();
        m.insert("code".into(), self.code.into());
        m.insert("message".into(), self.message.clone().into());
        if let Some(d) = &self.data {
            m.insert("data".into(), d.clone());
        }
        Value::Object(m)
    }
}

impl fmt::Display for ErrorObj {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (code {})", self.message, self.code)
    }
}

/// One JSON-RPC message. Params stay as parsed [`Value`]s because the gateway
/// rewrites them (names, progress tokens); results stay raw because the
/// gateway forwards them untouched.
#[derive(Debug)]
pub enum Message {
    Request { id: Id, method: String, params: Option<Value> },
    Notification { method: String, params: Option<Value> },
    Response { id: Id, result: Box<RawValue> },
    Error { id: Option<Id>, error: ErrorObj },
}

impl Message {
    pub fn request(id: Id, method: &str, params: Option<Value>) -> Message {
        Message::Request { id, method: method.to_owned(), params }
    }

    pub fn notification(method: &str, params: Option<Value>) -> Message {
        Message::Notification { method: method.to_owned(), params }
    }

    pub fn error(id: Option<Id>, error: ErrorObj) -> Message {
        Message::Error { id, error }
    }

    /// A success response from a value (serialized once here).
    pub fn result(id: Id, result: &Value) -> Message {
        // Serializing a Value cannot fail (its map keys are strings).
        let raw = serde_json::value::to_raw_value(result).unwrap_or_else(|_| RawValue::NULL.to_owned());
        Message::Response { id, result: raw }
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
                let _ = serde_json::to_writer(&mut *out, &error.to_value());
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

fn write_params(out: &mut Vec<u8>, params: &Option<Value>) {
    if let Some(p) = params {
        out.extend_from_slice(b",\"params\":");
        let _ = serde_json::to_writer(&mut *out, p);
    }
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

/// Parses a body. `Err` is a parse error (not JSON at all), or a non-object,
/// non-array top-level value; per-element errors of a batch stay inside.
pub fn parse(bytes: &[u8]) -> Result<Parsed, ErrorObj> {
    let v: Value =
        serde_json::from_slice(bytes).map_err(|e| ErrorObj::new(code::PARSE_ERROR, format!("Parse error: {e}")))?;
    match v {
        Value::Object(_) => Ok(Parsed::Single(classify(v).map_err(|(_, e)| e))),
        Value::Array(items) => {
            if items.is_empty() {
                return Err(ErrorObj::new(code::INVALID_REQUEST, "Invalid Request: empty batch"));
            }
            Ok(Parsed::Batch(items.into_iter().map(classify).collect()))
        }
        _ => Err(ErrorObj::new(code::INVALID_REQUEST, "Invalid Request: expected a JSON object")),
    }
}

/// Parses exactly one message (a line from a stdio backend, an SSE `data:`).
pub fn parse_one(bytes: &[u8]) -> Result<Message, (Option<Id>, ErrorObj)> {
    let v: Value = serde_json::from_slice(bytes)
        .map_err(|e| (None, ErrorObj::new(code::PARSE_ERROR, format!("Parse error: {e}"))))?;
    classify(v)
}

/// Classifies one JSON value by the keys it has. The `Err` side carries any
/// id that could be read, so the error response can echo it.
pub fn classify(v: Value) -> Result<Message, (Option<Id>, ErrorObj)> {
    let Value::Object(mut m) = v else {
        return Err((None, ErrorObj::new(code::INVALID_REQUEST, "Invalid Request: expected a JSON object")));
    };
    let raw_id = m.remove("id");
    let id = match &raw_id {
        None | Some(Value::Null) => None,
        Some(v) => match Id::from_value(v) {
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
    match m.get("jsonrpc") {
        Some(Value::String(s)) if s == "2.0" => {}
        _ => return invalid(id, "jsonrpc must be \"2.0\""),
    }
    if let Some(method) = m.remove("method") {
        let Value::String(method) = method else {
            return invalid(id, "method must be a string");
        };
        let params = match m.remove("params") {
            None => None,
            Some(p @ (Value::Object(_) | Value::Array(_))) => Some(p),
            Some(Value::Null) => None,
            Some(_) => return invalid(id, "params must be an object or an array"),
        };
        return Ok(match id {
            Some(id) => Message::Request { id, method, params },
            None if raw_id.is_some() => return invalid(None, "id must not be null"),
            None => Message::Notification { method, params },
        });
    }
    if let Some(result) = m.remove("result") {
        let Some(id) = id else {
            return invalid(None, "a response needs an id");
        };
        let raw = serde_json::value::to_raw_value(&result)
            .map_err(|e| (Some(id.clone()), ErrorObj::new(code::INTERNAL_ERROR, e.to_string())))?;
        return Ok(Message::Response { id, result: raw });
    }
    if let Some(err) = m.remove("error") {
        let code = err.get("code").and_then(Value::as_i64);
        let message = err.get("message").and_then(Value::as_str);
        let (Some(code), Some(message)) = (code, message) else {
            return invalid(id, "error needs an integer code and a string message");
        };
        let data = err.get("data").cloned();
        return Ok(Message::Error { id, error: ErrorObj { code, message: message.to_owned(), data } });
    }
    invalid(id, "not a request, notification or response")
}

#[cfg(test)]
mod tests {
    use super::*;
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
                assert_eq!(error.data, Some(json!(3)));
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
