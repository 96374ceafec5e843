//! What can go wrong while reading a configuration: [`ConfigError`] for the
//! caller (the file, the dotted field, the message) and [`FieldError`], the
//! failure of one field before the parsers know which file (or backend) it
//! belongs to. Plain values: no I/O, any thread.

use std::fmt;
use std::path::PathBuf;

/// A configuration error: the file could not be read, is not JSON, or has
/// the wrong shape. Exit code 78 at start; HTTP 400 on reload.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigError {
    pub path: Option<PathBuf>,
    /// Dotted field path, e.g. `server.listen`, empty for the whole file.
    pub field: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = &self.path {
            write!(f, "{}: ", p.display())?;
        }
        if !self.field.is_empty() {
            write!(f, "field \"{}\": ", self.field)?;
        }
        write!(f, "{}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// A validation failure before it gets its file (or backend) attached.
#[derive(Debug)]
pub(super) struct FieldError {
    pub(super) field: String,
    pub(super) message: String,
}

impl FieldError {
    pub(super) fn new(field: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError { field: field.into(), message: message.into() }
    }
}
