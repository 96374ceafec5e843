//! One live connection to a backend, whatever its transport: the in-flight
//! table (gateway id → who is waiting, original progress token, deadline),
//! id and progress-token remapping, and routing of what the backend sends.
//!
//! Transports own the I/O threads: they drain [`Outgoing`] from the channel
//! made by [`Conn::new`] and feed every parsed message to
//! [`Conn::handle_incoming`] on their reader thread. No lock here is held
//! across I/O: sends go through a bounded channel.

use super::stats::Stats;
use super::SupervisorMsg;
use crate::codec::mcp::method;
use crate::codec::{code, ErrorObj, Id, Message};
use crate::session::Session;
use crossbeam_channel::{bounded, Receiver, Sender};
use parking_lot::Mutex;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Messages queued for a backend's writer before senders wait.
const OUT_CAP: usize = 1024;

/// One serialized message for the backend, with the request id it carries
/// (so an HTTP transport can fail exactly that call on an HTTP error).
pub struct Outgoing {
    pub bytes: Vec<u8>,
    pub request_id: Option<i64>,
}

/// What a waiting caller receives for one call.
#[derive(Debug)]
pub enum Reply {
    /// `notifications/progress` params, token already mapped back.
    Progress(Value),
    Done(Result<Box<RawValue>, ErrorObj>),
}

/// Whoever answers a client's HTTP request for a call: told of progress
/// and of the outcome, on whichever thread learns them (the backend's
/// reader, the admin tick, a canceller). Implementations must not block.
pub trait ReplyTo: Send + Sync {
    fn progress(&self, params: Value);
    fn done(&self, result: Result<Box<RawValue>, ErrorObj>);
}

/// Where a call's progress and result go.
#[derive(Clone)]
pub enum Sink {
    /// A thread waits on the channel (the gateway's own calls).
    Chan(Sender<Reply>),
    /// Straight into an SSE session's stream, re-addressed to the client id.
    Session(Arc<Session>, Id),
    /// The client's HTTP request waits for it (Streamable HTTP POST).
    Reply(Arc<dyn ReplyTo>),
}

struct Pending {
    sink: Sink,
    progress_token: Option<Value>,
    deadline: Instant,
    started: Instant,
    /// Counted in the backend's call metrics. The supervisor's liveness
    /// `ping` is not: a backend that answers it with -32601 would otherwise
    /// show an error every interval. (Clients' pings never reach a backend:
    /// the gateway answers them itself.)
    counted: bool,
}

/// Tears the transport down (kills the child, ends the HTTP session) and
/// describes how it ended, e.g. "exit status: 3".
pub type Closer = Box<dyn FnOnce() -> Option<String> + Send>;

pub struct Conn {
    pub backend: Arc<str>,
    pub generation: u64,
    pub pid: Option<u32>,
    out: Mutex<Option<Sender<Outgoing>>>,
    pending: Mutex<HashMap<i64, Pending>>,
    next_id: AtomicI64,
    alive: AtomicBool,
    supervisor: Sender<SupervisorMsg>,
    closer: Mutex<Option<Closer>>,
    stats: Arc<Stats>,
    /// Negotiated revision with this backend (HTTP transports send it).
    pub protocol_version: Mutex<Option<String>>,
}

impl Conn {
    /// A connection plus the receiving end its writer drains.
    pub fn new(
        backend: Arc<str>,
        generation: u64,
        pid: Option<u32>,
        supervisor: Sender<SupervisorMsg>,
        stats: Arc<Stats>,
    ) -> (Arc<Conn>, Receiver<Outgoing>) {
        let (tx, rx) = bounded(OUT_CAP);
        let conn = Arc::new(Conn {
            backend,
            generation,
            pid,
            out: Mutex::new(Some(tx)),
            pending: Mutex::new(HashMap::new()),
            next_id: AtomicI64::new(1),
            alive: AtomicBool::new(true),
            supervisor,
            closer: Mutex::new(None),
            stats,
            protocol_version: Mutex::new(None),
        });
        (conn, rx)
    }

    pub fn set_closer(&self, closer: Closer) {
        *self.closer.lock() = Some(closer);
    }

    pub fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Relaxed)
    }

    fn unavailable(&self, why: &str) -> ErrorObj {
        ErrorObj::new(code::BACKEND_UNAVAILABLE, format!("backend '{}' {why}", self.backend))
    }

    /// Queues a message for the backend's writer. Never waits: callers
    /// include the HTTP reactor, which must not block, so a full queue (a
    /// backend that stopped reading) fails the message at once.
    fn send(&self, bytes: Vec<u8>, request_id: Option<i64>) -> Result<(), ErrorObj> {
        let Some(tx) = self.out.lock().clone() else {
            return Err(self.unavailable("is disconnected"));
        };
        tx.try_send(Outgoing { bytes, request_id }).map_err(|e| match e {
            crossbeam_channel::TrySendError::Full(_) => {
                self.unavailable(&format!("is not reading its input ({OUT_CAP} messages queued)"))
            }
            crossbeam_channel::TrySendError::Disconnected(_) => self.unavailable("is disconnected"),
        })
    }

    /// Reserves a gateway request id, so a caller can record it (e.g. in
    /// its session's in-flight table) before the request can be answered.
    pub fn alloc_id(&self) -> i64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Sends a request whose progress and result go to `sink`. Returns the
    /// gateway id.
    pub fn call(&self, method: &str, params: Option<Value>, sink: Sink, timeout: Duration) -> Result<i64, ErrorObj> {
        let id = self.alloc_id();
        self.call_with_id(id, method, params, sink, timeout)?;
        Ok(id)
    }

    /// Sends request `id` (from [`Conn::alloc_id`]). Rewrites
    /// `_meta.progressToken` to the gateway id so that two clients' equal
    /// tokens never collide on this shared connection.
    pub fn call_with_id(
        &self,
        id: i64,
        method: &str,
        mut params: Option<Value>,
        sink: Sink,
        timeout: Duration,
    ) -> Result<(), ErrorObj> {
        if !self.is_alive() {
            return Err(self.unavailable("is disconnected"));
        }
        let progress_token = params
            .as_mut()
            .and_then(|p| p.get_mut("_meta"))
            .and_then(|m| m.get_mut("progressToken"))
            .map(|t| std::mem::replace(t, Value::from(id)));
        let now = Instant::now();
        let counted = method != method::PING;
        self.pending
            .lock()
            .insert(id, Pending { sink, progress_token, deadline: now + timeout, started: now, counted });
        if counted {
            self.stats.call_started();
        }
        let bytes = Message::Request { id: Id::Num(id), method: method.to_owned(), params }.to_bytes();
        if let Err(e) = self.send(bytes, Some(id)) {
            if let Some(p) = self.pending.lock().remove(&id) {
                self.finished(&p, false);
            }
            return Err(e);
        }
        // The connection may have died between the check and the insert;
        // then fail_all ran before our insert and nobody would answer.
        if !self.is_alive() {
            if let Some(p) = self.pending.lock().remove(&id) {
                deliver(p.sink, Reply::Done(Err(self.unavailable("is disconnected"))));
            }
        }
        Ok(())
    }

    /// A blocking call for the gateway's own use (handshake, discovery,
    /// fan-out): waits for the result or the deadline.
    pub fn request(&self, method: &str, params: Option<Value>, timeout: Duration) -> Result<Box<RawValue>, ErrorObj> {
        let (tx, rx) = bounded(16);
        let id = self.call(method, params, Sink::Chan(tx), timeout)?;
        let deadline = Instant::now() + timeout;
        loop {
            match rx.recv_deadline(deadline) {
                Ok(Reply::Progress(_)) => continue,
                Ok(Reply::Done(r)) => return r,
                Err(_) => {
                    self.expire_one(id);
                    return Err(self.timeout_error(method, timeout));
                }
            }
        }
    }

    fn timeout_error(&self, method: &str, timeout: Duration) -> ErrorObj {
        ErrorObj::new(
            code::REQUEST_TIMEOUT,
            format!("backend '{}' did not answer {method} within {:.1}s", self.backend, timeout.as_secs_f64()),
        )
    }

    pub fn notify(&self, method: &str, params: Option<Value>) -> Result<(), ErrorObj> {
        let bytes = Message::Notification { method: method.to_owned(), params }.to_bytes();
        self.send(bytes, None)
    }

    /// The client gave up on call `id`: forget it (a late answer is dropped)
    /// and tell the backend. A waiting thread is released with an error.
    pub fn cancel(&self, id: i64, reason: &str) {
        let Some(p) = self.pending.lock().remove(&id) else {
            return;
        };
        self.finished(&p, false);
        let cancelled = || ErrorObj::new(code::REQUEST_CANCELLED, format!("request cancelled: {reason}"));
        match p.sink {
            Sink::Chan(tx) => {
                let _ = tx.try_send(Reply::Done(Err(cancelled())));
            }
            // The HTTP request still gets an answer (a POST never hangs).
            Sink::Reply(r) => r.done(Err(cancelled())),
            // Legacy SSE: the client cancelled it, so it expects nothing.
            Sink::Session(..) => {}
        }
        let _ = self.notify(method::CANCELLED, Some(json!({"requestId": id, "reason": reason})));
    }

    /// Fails calls past their deadline with a timeout error and cancels them
    /// at the backend. Called from the admin tick.
    pub fn expire(&self, now: Instant) {
        let expired: Vec<i64> =
            self.pending.lock().iter().filter(|(_, p)| p.deadline <= now).map(|(id, _)| *id).collect();
        for id in expired {
            self.expire_one(id);
        }
    }

    fn expire_one(&self, id: i64) {
        let Some(p) = self.pending.lock().remove(&id) else {
            return;
        };
        let waited = p.started.elapsed();
        self.finished(&p, false);
        let err = ErrorObj::new(
            code::REQUEST_TIMEOUT,
            format!("backend '{}' timed out after {:.1}s", self.backend, waited.as_secs_f64()),
        );
        deliver(p.sink, Reply::Done(Err(err)));
        let _ = self.notify(method::CANCELLED, Some(json!({"requestId": id, "reason": "timed out at the gateway"})));
    }

    /// Routes one message read from the backend. Runs on the transport's
    /// reader thread, so it never blocks on a client.
    pub fn handle_incoming(&self, msg: Message) {
        match msg {
            Message::Response { id, result } => self.finish(&id, Ok(result)),
            Message::Error { id: Some(id), error } => self.finish(&id, Err(error)),
            Message::Error { id: None, error } => {
                log::warn!("backend '{}' sent an error without an id: {error}", self.backend)
            }
            Message::Request { id, method, .. } => self.answer_backend_request(id, &method),
            Message::Notification { method, params } => self.backend_notification(&method, params),
        }
    }

    fn finish(&self, id: &Id, result: Result<Box<RawValue>, ErrorObj>) {
        let Some(n) = as_gateway_id(id) else {
            log::debug!("backend '{}' answered unknown id {id}", self.backend);
            return;
        };
        let Some(p) = self.pending.lock().remove(&n) else {
            // Cancelled or timed out already: the late answer is dropped.
            log::debug!("backend '{}' answered finished request {n}", self.backend);
            return;
        };
        self.finished(&p, result.is_ok());
        deliver(p.sink, Reply::Done(result));
    }

    /// Backend-to-client requests: `ping` is answered here; sampling,
    /// elicitation and roots get a fast error until they can be routed to
    /// the originating client (the gateway does not advertise them).
    fn answer_backend_request(&self, id: Id, method: &str) {
        let reply = if method == method::PING {
            Message::result(id, &json!({}))
        } else {
            Message::error(
                Some(id),
                ErrorObj::new(
                    code::METHOD_NOT_FOUND,
                    format!("mcp-sentinel does not forward '{method}' from backends to clients"),
                ),
            )
        };
        let _ = self.send(reply.to_bytes(), None);
    }

    fn backend_notification(&self, m: &str, params: Option<Value>) {
        match m {
            method::PROGRESS => self.progress(params),
            method::TOOLS_CHANGED | method::RESOURCES_CHANGED | method::PROMPTS_CHANGED => {
                // Coalesced by the supervisor; a full queue already holds one.
                let _ = self.supervisor.try_send(SupervisorMsg::ListChanged { generation: self.generation });
            }
            method::MESSAGE => {
                let p = params.unwrap_or(Value::Null);
                log::info!("backend '{}' log: {}", self.backend, p.get("data").unwrap_or(&p));
            }
            method::CANCELLED => {}
            other => log::debug!("backend '{}' sent notification {other}", self.backend),
        }
    }

    fn progress(&self, params: Option<Value>) {
        let Some(mut params) = params else { return };
        let Some(n) = params.get("progressToken").and_then(token_as_id) else {
            return;
        };
        // Copy what is needed and let go of the table before delivering:
        // delivery may close a session, which cancels calls on this table.
        let (sink, orig) = {
            let g = self.pending.lock();
            let Some(p) = g.get(&n) else { return };
            let Some(orig) = p.progress_token.clone() else {
                return;
            };
            (p.sink.clone(), orig)
        };
        params["progressToken"] = orig;
        match sink {
            Sink::Chan(tx) => {
                // A full channel means the waiter is behind: progress is
                // advisory, so dropping one is harmless.
                let _ = tx.try_send(Reply::Progress(params));
            }
            Sink::Session(s, _) => {
                s.push(Message::notification(method::PROGRESS, Some(params)).to_bytes());
            }
            Sink::Reply(r) => r.progress(params),
        }
    }

    /// The transport ended (EOF, write error, HTTP session gone). Fails all
    /// in-flight calls with an error naming the backend and tells the
    /// supervisor. Idempotent.
    pub fn died(&self, why: &str) {
        if !self.is_alive() {
            return;
        }
        let ended = self.shutdown();
        let reason = match ended {
            Some(status) => format!("{why} ({status})"),
            None => why.to_owned(),
        };
        self.fail_all(&format!("disconnected: {reason}"));
        let _ = self
            .supervisor
            .send_timeout(SupervisorMsg::Died { generation: self.generation, reason }, Duration::from_secs(5));
    }

    /// Closes on purpose (stop, reconnect, failed handshake). Idempotent.
    pub fn close(&self, why: &str) {
        if !self.is_alive() {
            return;
        }
        self.shutdown();
        self.fail_all(why);
    }

    fn shutdown(&self) -> Option<String> {
        self.alive.store(false, Ordering::Relaxed);
        // Dropping the sender ends the writer thread.
        self.out.lock().take();
        let closer = self.closer.lock().take();
        closer.and_then(|c| c())
    }

    fn fail_all(&self, why: &str) {
        let all: Vec<Pending> = self.pending.lock().drain().map(|(_, p)| p).collect();
        for p in all {
            self.finished(&p, false);
            let err = self.unavailable(why);
            deliver(p.sink, Reply::Done(Err(err)));
        }
    }

    fn finished(&self, p: &Pending, ok: bool) {
        if p.counted {
            self.stats.call_finished(p.started.elapsed(), ok);
        }
    }

    pub fn in_flight(&self) -> usize {
        self.pending.lock().len()
    }
}

fn deliver(sink: Sink, reply: Reply) {
    match sink {
        Sink::Chan(tx) => {
            let _ = tx.try_send(reply);
        }
        Sink::Reply(r) => match reply {
            Reply::Progress(p) => r.progress(p),
            Reply::Done(d) => r.done(d),
        },
        Sink::Session(session, client_id) => {
            // A call the client cancelled, or whose session closed, was
            // untracked already: its answer goes nowhere.
            if session.untrack(&client_id).is_none() {
                return;
            }
            let msg = match reply {
                Reply::Done(Ok(result)) => Message::Response { id: client_id, result },
                Reply::Done(Err(error)) => Message::Error { id: Some(client_id), error },
                Reply::Progress(p) => Message::notification(method::PROGRESS, Some(p)),
            };
            session.push(msg.to_bytes());
        }
    }
}

fn as_gateway_id(id: &Id) -> Option<i64> {
    match id {
        Id::Num(n) => Some(*n),
        Id::Str(s) => s.parse().ok(),
    }
}

fn token_as_id(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::jsonrpc::parse_one;

    fn conn() -> (Arc<Conn>, Receiver<Outgoing>, Receiver<SupervisorMsg>) {
        let (stx, srx) = bounded(8);
        let (c, rx) = Conn::new("b1".into(), 1, None, stx, Arc::new(Stats::default()));
        (c, rx, srx)
    }

    fn sent(rx: &Receiver<Outgoing>) -> Value {
        serde_json::from_slice(&rx.try_recv().unwrap().bytes).unwrap()
    }

    #[test]
    fn ids_are_remapped_and_answers_routed_back() {
        let (c, out, _) = conn();
        let (tx1, rx1) = bounded(4);
        let (tx2, rx2) = bounded(4);
        let a = c.call("tools/call", Some(json!({"name":"x"})), Sink::Chan(tx1), Duration::from_secs(5)).unwrap();
        let b = c.call("tools/call", Some(json!({"name":"y"})), Sink::Chan(tx2), Duration::from_secs(5)).unwrap();
        assert_ne!(a, b);
        assert_eq!(sent(&out)["id"], a);
        assert_eq!(sent(&out)["id"], b);
        // Answer out of order.
        c.handle_incoming(parse_one(format!(r#"{{"jsonrpc":"2.0","id":{b},"result":{{"v":2}}}}"#).as_bytes()).unwrap());
        c.handle_incoming(parse_one(format!(r#"{{"jsonrpc":"2.0","id":{a},"result":{{"v":1}}}}"#).as_bytes()).unwrap());
        match rx1.try_recv().unwrap() {
            Reply::Done(Ok(r)) => assert_eq!(r.get(), r#"{"v":1}"#),
            r => panic!("{r:?}"),
        }
        match rx2.try_recv().unwrap() {
            Reply::Done(Ok(r)) => assert_eq!(r.get(), r#"{"v":2}"#),
            r => panic!("{r:?}"),
        }
        assert_eq!(c.in_flight(), 0);
    }

    #[test]
    fn equal_client_progress_tokens_do_not_collide() {
        let (c, out, _) = conn();
        let (tx1, rx1) = bounded(4);
        let (tx2, rx2) = bounded(4);
        let p = json!({"name":"slow","_meta":{"progressToken":1}});
        let a = c.call("tools/call", Some(p.clone()), Sink::Chan(tx1), Duration::from_secs(5)).unwrap();
        let b = c.call("tools/call", Some(p), Sink::Chan(tx2), Duration::from_secs(5)).unwrap();
        let ta = sent(&out)["params"]["_meta"]["progressToken"].clone();
        let tb = sent(&out)["params"]["_meta"]["progressToken"].clone();
        assert_eq!((ta.clone(), tb.clone()), (json!(a), json!(b)));
        c.handle_incoming(Message::notification(
            "notifications/progress",
            Some(json!({"progressToken": tb, "progress": 1})),
        ));
        assert!(rx1.try_recv().is_err());
        match rx2.try_recv().unwrap() {
            Reply::Progress(p) => assert_eq!(p, json!({"progressToken": 1, "progress": 1})),
            r => panic!("{r:?}"),
        }
    }

    #[test]
    fn cancel_forwards_mapped_id_and_drops_late_answer() {
        let (c, out, _) = conn();
        let (tx, rx) = bounded(4);
        let id = c.call("tools/call", None, Sink::Chan(tx), Duration::from_secs(5)).unwrap();
        let _ = sent(&out);
        c.cancel(id, "user");
        let n = sent(&out);
        assert_eq!(n["method"], "notifications/cancelled");
        assert_eq!(n["params"]["requestId"], id);
        assert!(matches!(rx.try_recv().unwrap(), Reply::Done(Err(e)) if e.code == code::REQUEST_CANCELLED));
        c.handle_incoming(parse_one(format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{{}}}}"#).as_bytes()).unwrap());
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn expiry_times_out_and_cancels() {
        let (c, out, _) = conn();
        let (tx, rx) = bounded(4);
        let id = c.call("tools/call", None, Sink::Chan(tx), Duration::from_millis(0)).unwrap();
        let _ = sent(&out);
        c.expire(Instant::now());
        match rx.try_recv().unwrap() {
            Reply::Done(Err(e)) => {
                assert_eq!(e.code, code::REQUEST_TIMEOUT);
                assert!(e.message.contains("b1"), "{}", e.message);
            }
            r => panic!("{r:?}"),
        }
        assert_eq!(sent(&out)["params"]["requestId"], id);
    }

    #[test]
    fn death_fails_in_flight_calls_naming_the_backend() {
        let (c, _out, sup) = conn();
        let (tx, rx) = bounded(4);
        c.call("tools/call", None, Sink::Chan(tx), Duration::from_secs(5)).unwrap();
        c.died("stdout closed");
        match rx.try_recv().unwrap() {
            Reply::Done(Err(e)) => assert!(e.message.contains("backend 'b1'"), "{}", e.message),
            r => panic!("{r:?}"),
        }
        assert!(matches!(sup.try_recv().unwrap(), SupervisorMsg::Died { generation: 1, .. }));
        assert!(c.call("ping", None, Sink::Chan(bounded(1).0), Duration::from_secs(1)).is_err());
    }

    #[test]
    fn backend_ping_is_answered_and_other_requests_refused() {
        let (c, out, _) = conn();
        c.handle_incoming(Message::request(Id::Str("p1".into()), "ping", None));
        let r = sent(&out);
        assert_eq!(r["id"], "p1");
        assert_eq!(r["result"], json!({}));
        c.handle_incoming(Message::request(Id::Num(5), "sampling/createMessage", Some(json!({}))));
        let r = sent(&out);
        assert_eq!(r["error"]["code"], code::METHOD_NOT_FOUND);
    }

    #[test]
    fn liveness_pings_stay_out_of_the_call_metrics() {
        let stats = Arc::new(Stats::default());
        let (stx, _srx) = bounded(8);
        let (c, out) = Conn::new("b1".into(), 1, None, stx, stats.clone());
        let (tx, rx) = bounded(4);
        let id = c.call("ping", None, Sink::Chan(tx), Duration::from_secs(5)).unwrap();
        let _ = sent(&out);
        c.handle_incoming(Message::error(Some(Id::Num(id)), ErrorObj::new(code::METHOD_NOT_FOUND, "no ping")));
        assert!(matches!(rx.try_recv().unwrap(), Reply::Done(Err(e)) if e.code == code::METHOD_NOT_FOUND));
        let (tx, _rx) = bounded(4);
        c.call("tools/call", None, Sink::Chan(tx), Duration::from_secs(5)).unwrap();
        c.close("bye");
        let n = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        assert_eq!((n(&stats.calls), n(&stats.errors), n(&stats.finished)), (1, 1, 1));
    }

    #[test]
    fn list_changed_reaches_the_supervisor() {
        let (c, _out, sup) = conn();
        c.handle_incoming(Message::notification("notifications/tools/list_changed", None));
        assert!(matches!(sup.try_recv().unwrap(), SupervisorMsg::ListChanged { generation: 1 }));
    }
}
