//! [`BackendError`]: why connecting to a backend failed (opening the
//! transport, the handshake, discovery), by kind, so that a caller decides
//! on the kind (discovery takes "method not found" for templates as "none")
//! and never on the text. Plain data, no thread of its own.
//!
//! `Display` is the one-line text operators see in `last_error`, in the
//! `backend.failed` event and in the log; the texts are the ones these
//! failures always had, pinned by the tests below.

use crate::codec::{code, ErrorObj};
use std::fmt;
use std::sync::Arc;

/// One failed attempt at a backend, with the backend it happened to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendError {
    backend: Arc<str>,
    kind: ErrorKind,
}

/// Which step of the gateway's own conversation with a backend a request
/// failure happened in (it shapes the text: the handshake's texts never
/// carried the code, discovery's always did).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// The `initialize` request.
    Initialize,
    /// Sending `notifications/initialized`.
    Initialized,
    /// The 2026-07-28 era probe, `server/discover`.
    Discover,
    /// One page of a list during discovery (the method).
    List(&'static str),
}

/// What went wrong, by kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The configuration entry is invalid: the backend is never started.
    Invalid(String),
    /// The backend is disabled in the configuration.
    Disabled,
    /// The transport could not be opened (a spawn, an HTTP request, the
    /// SSE endpoint, a local server); the text says why.
    Open(String),
    /// A stop came while connecting: not a failure of the backend.
    Stopped,
    /// The connection ended, or could not take the request (-32001).
    Disconnected { step: Step, message: String },
    /// No answer in time (-32002, the gateway's own deadline).
    Timeout { step: Step, message: String },
    /// The backend does not implement the method (-32601).
    MethodNotFound { step: Step, message: String },
    /// The backend answered with another JSON-RPC error.
    Refused { step: Step, code: i64, message: String },
    /// The backend answered something the gateway cannot use (not the
    /// expected JSON, a protocol version it does not speak, a cursor loop).
    Protocol(String),
}

impl BackendError {
    pub fn new(backend: &Arc<str>, kind: ErrorKind) -> BackendError {
        BackendError { backend: backend.clone(), kind }
    }

    /// A request of the gateway's own that failed with `e`. The kind comes
    /// from the code: -32001 and -32002 are the codes the connection itself
    /// fails a request with (gone, past its deadline); a backend that
    /// answers with one of them is taken at its word.
    pub fn request(backend: &Arc<str>, step: Step, e: ErrorObj) -> BackendError {
        let message = e.message;
        let kind = match e.code {
            code::BACKEND_UNAVAILABLE => ErrorKind::Disconnected { step, message },
            code::REQUEST_TIMEOUT => ErrorKind::Timeout { step, message },
            code::METHOD_NOT_FOUND => ErrorKind::MethodNotFound { step, message },
            code => ErrorKind::Refused { step, code, message },
        };
        BackendError::new(backend, kind)
    }

    /// An answer the gateway cannot use.
    pub fn protocol(backend: &Arc<str>, text: String) -> BackendError {
        BackendError::new(backend, ErrorKind::Protocol(text))
    }

    /// The transport could not be opened.
    pub fn open(backend: &Arc<str>, text: String) -> BackendError {
        BackendError::new(backend, ErrorKind::Open(text))
    }

    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// The backend it happened to.
    pub fn backend(&self) -> &str {
        &self.backend
    }
}

impl ErrorKind {
    /// The JSON-RPC code of a request failure.
    fn code(&self) -> Option<i64> {
        match self {
            ErrorKind::Disconnected { .. } => Some(code::BACKEND_UNAVAILABLE),
            ErrorKind::Timeout { .. } => Some(code::REQUEST_TIMEOUT),
            ErrorKind::MethodNotFound { .. } => Some(code::METHOD_NOT_FOUND),
            ErrorKind::Refused { code, .. } => Some(*code),
            _ => None,
        }
    }
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.kind.fmt(f)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::Invalid(t) | ErrorKind::Open(t) | ErrorKind::Protocol(t) => f.write_str(t),
            ErrorKind::Disabled => f.write_str("disabled"),
            ErrorKind::Stopped => f.write_str("stopped before the handshake"),
            ErrorKind::Disconnected { step, message }
            | ErrorKind::Timeout { step, message }
            | ErrorKind::MethodNotFound { step, message }
            | ErrorKind::Refused { step, message, .. } => match step {
                Step::Initialize => write!(f, "initialize failed: {message}"),
                Step::Initialized => write!(f, "sending initialized: {message}"),
                Step::Discover => write!(f, "server/discover failed: {message}"),
                Step::List(method) => {
                    write!(f, "{method} failed: {message} (code {})", self.code().unwrap_or_default())
                }
            },
        }
    }
}

impl std::error::Error for BackendError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(step: Step, code: i64, msg: &str) -> BackendError {
        BackendError::request(&"b".into(), step, ErrorObj::new(code, msg.to_owned()))
    }

    /// The kinds come from the codes, and the texts are the ones operators
    /// always saw (`last_error`, events, logs).
    #[test]
    fn request_failures_by_kind_and_text() {
        type Is = fn(&ErrorKind) -> bool;
        let cases: [(BackendError, Is, &str); 6] = [
            (
                req(Step::Initialize, -32002, "backend 'b' did not answer initialize within 5.0s"),
                |k| matches!(k, ErrorKind::Timeout { .. }),
                "initialize failed: backend 'b' did not answer initialize within 5.0s",
            ),
            (
                req(Step::Initialize, -32001, "backend 'b' disconnected: process closed its stdout"),
                |k| matches!(k, ErrorKind::Disconnected { .. }),
                "initialize failed: backend 'b' disconnected: process closed its stdout",
            ),
            (
                req(Step::Initialized, -32001, "backend 'b' is disconnected"),
                |k| matches!(k, ErrorKind::Disconnected { step: Step::Initialized, .. }),
                "sending initialized: backend 'b' is disconnected",
            ),
            (
                req(Step::List("resources/templates/list"), -32601, "Method not found"),
                |k| matches!(k, ErrorKind::MethodNotFound { .. }),
                "resources/templates/list failed: Method not found (code -32601)",
            ),
            (
                req(Step::List("tools/list"), -32603, "boom"),
                |k| matches!(k, ErrorKind::Refused { code: -32603, .. }),
                "tools/list failed: boom (code -32603)",
            ),
            (
                req(Step::List("prompts/list"), -32002, "backend 'b' did not answer prompts/list within 1.0s"),
                |k| matches!(k, ErrorKind::Timeout { .. }),
                "prompts/list failed: backend 'b' did not answer prompts/list within 1.0s (code -32002)",
            ),
        ];
        for (e, is, text) in cases {
            assert!(is(e.kind()), "{e:?}");
            assert_eq!(e.to_string(), text);
            assert_eq!(e.backend(), "b");
        }
    }

    #[test]
    fn other_texts_are_as_given() {
        let b: Arc<str> = "b".into();
        assert_eq!(BackendError::new(&b, ErrorKind::Stopped).to_string(), "stopped before the handshake");
        assert_eq!(BackendError::new(&b, ErrorKind::Disabled).to_string(), "disabled");
        assert_eq!(BackendError::open(&b, "cannot start \"x\": No such file".into()).to_string(), {
            "cannot start \"x\": No such file"
        });
        assert_eq!(BackendError::protocol(&b, "initialize result has no protocolVersion".into()).to_string(), {
            "initialize result has no protocolVersion"
        });
    }
}
