//! `Obj`, the JSON walker the section parsers read through: a JSON object
//! plus the dotted path it sits at, so that every accessor can name the
//! field it complains about, and unknown keys are warned about in one place.

use serde_json::{Map, Value};

use super::FieldError;

/// "a string", "an array", ... for messages.
pub(super) fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A JSON object plus the dotted path it sits at, so every accessor can
/// name the field it complains about.
pub(super) struct Obj<'a> {
    map: &'a Map<String, Value>,
    pub(super) prefix: String,
}

impl<'a> Obj<'a> {
    pub(super) fn new(map: &'a Map<String, Value>, prefix: &str) -> Obj<'a> {
        Obj { map, prefix: prefix.to_string() }
    }

    pub(super) fn field(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.prefix)
        }
    }

    pub(super) fn bad(&self, key: &str, message: impl Into<String>) -> FieldError {
        FieldError::new(self.field(key), message)
    }

    pub(super) fn wrong(&self, key: &str, expected: &str, found: &Value) -> FieldError {
        self.bad(key, format!("expected {expected}, found {}", describe(found)))
    }

    /// The value, with `null` treated as absent.
    pub(super) fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    pub(super) fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    pub(super) fn str(&self, key: &str) -> Result<Option<&'a str>, FieldError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(self.wrong(key, "a string", v)),
        }
    }

    pub(super) fn bool(&self, key: &str) -> Result<Option<bool>, FieldError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(self.wrong(key, "true or false", v)),
        }
    }

    pub(super) fn pos_int(&self, key: &str) -> Result<Option<u64>, FieldError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => match v.as_u64() {
                Some(n) if n > 0 => Ok(Some(n)),
                _ => Err(self.bad(key, format!("expected a positive integer, found {v}"))),
            },
        }
    }

    pub(super) fn obj(&self, key: &str) -> Result<Option<Obj<'a>>, FieldError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Object(m)) => Ok(Some(Obj::new(m, &self.field(key)))),
            Some(v) => Err(self.wrong(key, "an object", v)),
        }
    }

    /// An array of strings; an element of another type is named by index.
    pub(super) fn str_list(&self, key: &str) -> Result<Option<Vec<&'a str>>, FieldError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::String(s) => Ok(s.as_str()),
                    other => Err(self.wrong(&format!("{key}[{i}]"), "a string", other)),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(v) => Err(self.wrong(key, "an array of strings", v)),
        }
    }

    /// An object of strings, in file order.
    pub(super) fn str_map(&self, key: &str) -> Result<Option<Vec<(&'a str, &'a str)>>, FieldError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Object(m)) => m
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k.as_str(), s.as_str())),
                    other => Err(self.wrong(&format!("{key}.{k}"), "a string", other)),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(v) => Err(self.wrong(key, "an object of strings", v)),
        }
    }

    /// Warns once per key not in `known` (see the module doc for why this
    /// is a warning, not an error).
    pub(super) fn warn_unknown(&self, known: &[&str], file: &str) {
        for key in self.map.keys().filter(|k| !known.contains(&k.as_str())) {
            log::warn!("{file}: unknown field \"{}\" ignored", self.field(key));
        }
    }
}
