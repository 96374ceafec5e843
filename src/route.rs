//! The seam between client sessions and backend connections, both ways,
//! as a handful of traits so that neither side knows the other's types
//! (`backend` and `session` do not depend on each other).
//!
//! - A call forwarded to a backend carries a [`CallSink`]: where its
//!   progress and answer go, and ([`CallSink::client`]) the client it came
//!   from, for the requests and notifications the backend makes while
//!   serving it.
//! - A client session is a [`ClientLink`] to backends: what it declared it
//!   can do, and a way to send it requests and notifications.
//! - A session keeps a [`CallHandle`] per call in flight, to cancel it.
//! - What a backend sends that belongs to no call goes to the [`Hub`]
//!   (the runtime, which knows every session).
//!
//! Every method here is called on whichever thread has the message (a
//! backend's reader, the HTTP reactor, the admin tick) with no lock of the
//! caller's held, and none may block.

use crate::codec::jsonrpc::{ErrorObj, Message, Raw};
use std::sync::Arc;
use std::time::Duration;

/// The answer to a request sent to a client, or why there is none
/// (timeout, session closed, the client's own error).
pub type Answer = Box<dyn FnOnce(Result<Raw, ErrorObj>) + Send>;

/// A client capability a backend's request needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientCap {
    Sampling,
    /// Form-mode elicitation (every client that declares `elicitation`).
    Elicitation,
    /// URL-mode elicitation (2025-11-25: `elicitation.url`).
    ElicitationUrl,
    Roots,
}

impl ClientCap {
    /// The capability a backend-to-client request needs, if it is one the
    /// gateway routes.
    pub fn of_request(method: &str, params: Option<&serde_json::value::RawValue>) -> Option<ClientCap> {
        match method {
            "sampling/createMessage" => Some(ClientCap::Sampling),
            "roots/list" => Some(ClientCap::Roots),
            "elicitation/create" => {
                let url = params.and_then(|p| crate::codec::jsonrpc::get_str(p, "mode")).is_some_and(|m| m == "url");
                Some(if url { ClientCap::ElicitationUrl } else { ClientCap::Elicitation })
            }
            _ => None,
        }
    }

    /// How the capability is named in `initialize`.
    pub fn name(self) -> &'static str {
        match self {
            ClientCap::Sampling => "sampling",
            ClientCap::Elicitation => "elicitation",
            ClientCap::ElicitationUrl => "elicitation.url",
            ClientCap::Roots => "roots",
        }
    }
}

/// One client session, as backends see it.
pub trait ClientLink: Send + Sync {
    /// The session's id: calls of one session share it.
    fn session_id(&self) -> &str;
    /// Whether the client declared this capability at `initialize`.
    fn supports(&self, cap: ClientCap) -> bool;
    /// Sends a request to the client; `answer` gets the client's answer, or
    /// an error after `timeout` or when the session ends. Returns the id
    /// the client sees, for [`ClientLink::cancel_request`].
    fn request(&self, method: &str, params: Option<Raw>, timeout: Duration, answer: Answer) -> Option<u64>;
    /// The backend gave up on a request it made: tell the client, forget it.
    fn cancel_request(&self, id: u64, reason: &str);
    /// Sends a notification to the client (dropped if it cannot take it).
    fn notify(&self, msg: &Message);
    /// Whether a log message of this level (`notifications/message`) is
    /// wanted: the session's `logging/setLevel`, or every level if it set none.
    fn admits_log(&self, level: &str) -> bool;
}

/// Where what a backend sends about one forwarded call goes.
pub trait CallSink: Send + Sync {
    /// `notifications/progress` params, the client's own token restored.
    fn progress(&self, params: Raw);
    /// The call's outcome, exactly once.
    fn done(&self, result: Result<Raw, ErrorObj>);
    /// The client that made the call, for the requests and notifications
    /// the backend sends while serving it.
    fn client(&self) -> Option<Arc<dyn ClientLink>> {
        None
    }
}

/// A call in flight at a backend, as the session that made it sees it.
pub trait CallHandle: Send + Sync {
    fn cancel(&self, reason: &str);
}

/// Receives what backends send that belongs to no call in flight.
pub trait Hub: Send + Sync {
    /// A notification from `backend` (a log message, a resource update).
    fn notification(&self, backend: &str, msg: &Message);
    /// A request from `backend` that no call explains (`roots/list` when no
    /// client has a call in flight, say). `answer` gets the outcome.
    fn request(&self, backend: &str, method: &str, params: Option<Raw>, timeout: Duration, answer: Answer);
    /// The log level backends should send at (`logging/setLevel`): the
    /// most verbose any session asked for; `None` if none asked.
    fn log_level(&self) -> Option<&'static str> {
        None
    }
    /// The resource URIs clients hold subscriptions to at `backend`, to
    /// subscribe again on a new connection.
    fn subscriptions(&self, _backend: &str) -> Vec<String> {
        Vec::new()
    }
}

/// A hub that drops notifications and refuses requests (tests, and the
/// gateway's own connections before a runtime exists).
pub struct NoHub;

impl Hub for NoHub {
    fn notification(&self, _: &str, _: &Message) {}

    fn request(&self, backend: &str, method: &str, _: Option<Raw>, _: Duration, answer: Answer) {
        answer(Err(ErrorObj::new(
            crate::codec::code::METHOD_NOT_FOUND,
            format!("no client session can answer {method} for backend '{backend}'"),
        )));
    }
}

/// RFC 5424 severities as MCP names them, least severe first.
pub const LOG_LEVELS: [&str; 8] = ["debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"];

/// The rank of a log level name (`None` for an unknown one).
pub fn log_rank(level: &str) -> Option<usize> {
    LOG_LEVELS.iter().position(|l| *l == level)
}
