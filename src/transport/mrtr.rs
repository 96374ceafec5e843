//! The bridge from a 2026-07-28 backend's multi-round-trip requests (MRTR)
//! to a session client (2025-11-25 or older): a call result with
//! `resultType: "input_required"` becomes the `elicitation/create`,
//! `sampling/createMessage` or `roots/list` requests it lists, pushed on the
//! client's session (only for capabilities the client declared); once every
//! answer is in, the call is sent again with `inputResponses` and the
//! backend's `requestState`, under a new backend id. The client sees its
//! call complete, as if the backend had asked it directly.
//!
//! Bounded: at most [`MAX_ROUNDS`] rounds and [`MAX_INPUTS`] requests per
//! round; each pushed request has the backend's `timeout_s` (the session's
//! request table enforces it), so a client that never answers fails the
//! call with a clear error. Cancelling the call (the client's
//! `notifications/cancelled`, or its session ending) cancels whichever
//! round is at the backend and drops the rest.

use crate::backend::{Conn, Sink};
use crate::codec::jsonrpc::{self, Raw};
use crate::codec::mcp::meta;
use crate::codec::{code, ErrorObj};
use crate::route::{CallHandle, CallSink, ClientCap, ClientLink, LOG_LEVELS};
use crate::session::{ClientCaps, Session};
use parking_lot::Mutex;
use serde_json::{json, Map, Value};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// Most input rounds for one call (the Python SDK client's own default).
pub const MAX_ROUNDS: u32 = 10;
/// Most input requests in one round.
pub const MAX_INPUTS: usize = 16;

/// The `_meta` envelope a session client's request carries to a 2026-07-28
/// backend: its declared capabilities (MRTR and -32021 depend on them) and
/// its log level, per request as the revision wants.
pub fn envelope_for(session: &Session, params: Option<Raw>) -> Option<Raw> {
    let c: ClientCaps = session.caps();
    let mut caps = Map::new();
    if c.sampling {
        caps.insert("sampling".into(), json!({}));
    }
    if c.elicitation {
        let mut e = json!({"form": {}});
        if c.elicitation_url {
            e["url"] = json!({});
        }
        caps.insert("elicitation".into(), e);
    }
    if c.roots {
        caps.insert("roots".into(), json!({}));
    }
    let caps = jsonrpc::to_raw(&Value::Object(caps));
    let params = crate::backend::envelope(params, Some(&caps))?;
    let Some(level) = session.log_level().and_then(|r| LOG_LEVELS.get(r)) else { return Some(params) };
    let m = jsonrpc::get_field(&params, "_meta")?;
    let m = jsonrpc::set_fields(m, &[(meta::LOG_LEVEL, &jsonrpc::to_raw(&json!(level)))])?;
    jsonrpc::set_fields(&params, &[("_meta", &m)]).or(Some(params))
}

/// One call of a session client to a 2026-07-28 backend, across its rounds.
pub struct Bridge {
    conn: Weak<Conn>,
    client: Arc<Session>,
    method: &'static str,
    /// The first round's params; later rounds add `inputResponses` and
    /// `requestState` to them.
    params: Option<Raw>,
    timeout: Duration,
    /// Where the client's answer goes.
    sink: Sink,
    state: Mutex<Round>,
    me: Weak<Bridge>,
}

#[derive(Default)]
struct Round {
    /// The backend id of the round in flight.
    bid: i64,
    rounds: u32,
    /// Ended (answered, failed or cancelled): late answers are dropped.
    over: bool,
    /// The client requests of the round being collected.
    asked: Vec<(u64, bool)>,
    responses: Map<String, Value>,
    waiting: usize,
}

impl Bridge {
    pub fn new(
        conn: &Arc<Conn>,
        client: &Arc<Session>,
        method: &'static str,
        params: Option<Raw>,
        timeout: Duration,
        sink: Sink,
    ) -> Arc<Bridge> {
        Arc::new_cyclic(|me| Bridge {
            conn: Arc::downgrade(conn),
            client: client.clone(),
            method,
            params,
            timeout,
            sink,
            state: Mutex::new(Round::default()),
            me: me.clone(),
        })
    }

    /// Sends the first round under backend id `bid`.
    pub fn start(&self, bid: i64) -> Result<(), ErrorObj> {
        let conn = self.conn.upgrade().ok_or_else(|| ErrorObj::new(code::BACKEND_UNAVAILABLE, "backend is gone"))?;
        self.state.lock().bid = bid;
        conn.call_with_id(bid, self.method, self.params.clone(), self.as_sink(), self.timeout)
    }

    fn as_sink(&self) -> Sink {
        match self.me.upgrade() {
            Some(me) => Sink::Route(me),
            None => self.sink.clone(),
        }
    }

    /// Ends the call with `r` (once).
    fn finish(&self, r: Result<Raw, ErrorObj>) {
        let asked = {
            let mut g = self.state.lock();
            if std::mem::replace(&mut g.over, true) {
                return;
            }
            std::mem::take(&mut g.asked)
        };
        for (id, answered) in asked {
            if !answered {
                self.client.cancel_request(id, "the call ended");
            }
        }
        match r {
            Ok(v) => self.sink.clone().succeed(v),
            Err(e) => self.sink.clone().fail(e),
        }
    }

    /// An `input_required` result: ask the client, or fail saying why not.
    fn ask(&self, result: Value) {
        let backend = self.conn.upgrade().map(|c| c.backend.to_string()).unwrap_or_default();
        let fail = |msg: String| self.finish(Err(ErrorObj::new(code::INTERNAL_ERROR, msg)));
        let requests = match result.get("inputRequests").and_then(Value::as_object) {
            Some(r) if !r.is_empty() && r.len() <= MAX_INPUTS => r.clone(),
            Some(r) if r.len() > MAX_INPUTS => {
                return fail(format!("backend '{backend}' asked for {} inputs at once (at most {MAX_INPUTS})", r.len()))
            }
            _ => return fail(format!("backend '{backend}' answered input_required without inputRequests")),
        };
        let state = result.get("requestState").cloned();
        {
            let mut g = self.state.lock();
            if g.over {
                return;
            }
            g.rounds += 1;
            if g.rounds > MAX_ROUNDS {
                drop(g);
                return fail(format!("backend '{backend}' asked for input more than {MAX_ROUNDS} times in one call"));
            }
            g.responses = Map::new();
            g.waiting = requests.len();
            g.asked.clear();
        }
        // Refuse the whole round before pushing anything the client could
        // not answer anyway.
        for (key, req) in &requests {
            let m = req.get("method").and_then(Value::as_str).unwrap_or("");
            let p = req.get("params").map(jsonrpc::to_raw);
            let Some(cap) = ClientCap::of_request(m, p.as_deref()) else {
                return fail(format!(
                    "backend '{backend}' asked for input {key:?} with {m:?}, which the gateway cannot bridge"
                ));
            };
            if !self.client.supports(cap) {
                return fail(format!(
                    "backend '{backend}' needs {m} from the client, which declared no '{}' capability",
                    cap.name()
                ));
            }
        }
        for (key, req) in requests {
            let m = req.get("method").and_then(Value::as_str).unwrap_or("").to_owned();
            let p = req.get("params").map(jsonrpc::to_raw);
            let me = self.me.clone();
            let k = key.clone();
            let state = state.clone();
            let answer = Box::new(move |r: Result<Raw, ErrorObj>| {
                if let Some(b) = me.upgrade() {
                    b.answered(k, r, state);
                }
            });
            match self.client.request(&m, p, self.timeout, answer) {
                Some(id) => self.state.lock().asked.push((id, false)),
                None => return fail("the client's session cannot take requests now".to_owned()),
            }
        }
    }

    /// One client answer of the round; the last one sends the next round.
    fn answered(&self, key: String, r: Result<Raw, ErrorObj>, request_state: Option<Value>) {
        let v = match r {
            Ok(v) => jsonrpc::value_of(&v),
            Err(e) => {
                let msg = format!("the client did not answer the backend's request for input: {}", e.message);
                return self.finish(Err(ErrorObj::new(e.code, msg)));
            }
        };
        let responses = {
            let mut g = self.state.lock();
            if g.over {
                return;
            }
            g.responses.insert(key, v);
            g.waiting = g.waiting.saturating_sub(1);
            if g.waiting > 0 {
                return;
            }
            for a in g.asked.iter_mut() {
                a.1 = true;
            }
            std::mem::take(&mut g.responses)
        };
        let Some(conn) = self.conn.upgrade().filter(|c| c.is_alive()) else {
            return self.finish(Err(ErrorObj::new(code::BACKEND_UNAVAILABLE, "backend disconnected")));
        };
        let mut extra: Vec<(&str, Raw)> = vec![("inputResponses", jsonrpc::to_raw(&Value::Object(responses)))];
        if let Some(s) = request_state {
            extra.push(("requestState", jsonrpc::to_raw(&s)));
        }
        let fields: Vec<(&str, &serde_json::value::RawValue)> = extra.iter().map(|(k, v)| (*k, &**v)).collect();
        let base = self.params.clone().unwrap_or_else(|| jsonrpc::to_raw(&json!({})));
        let Some(params) = jsonrpc::set_fields(&base, &fields) else {
            return self.finish(Err(ErrorObj::new(code::INTERNAL_ERROR, "cannot build the retry")));
        };
        let bid = conn.alloc_id();
        {
            let mut g = self.state.lock();
            if g.over {
                return;
            }
            g.bid = bid;
        }
        if let Err(e) = conn.call_with_id(bid, self.method, Some(params), self.as_sink(), self.timeout) {
            self.finish(Err(e));
        }
    }
}

impl CallSink for Bridge {
    fn progress(&self, params: Raw) {
        self.sink.clone().progress(params);
    }

    fn done(&self, result: Result<Raw, ErrorObj>) {
        match result {
            Ok(raw) if jsonrpc::get_str(&raw, "resultType").as_deref() == Some("input_required") => {
                self.ask(jsonrpc::value_of(&raw))
            }
            r => self.finish(r),
        }
    }

    fn client(&self) -> Option<Arc<dyn ClientLink>> {
        Some(self.client.clone())
    }
}

impl CallHandle for Bridge {
    fn cancel(&self, reason: &str) {
        let bid = {
            let g = self.state.lock();
            if g.over {
                return;
            }
            g.bid
        };
        // The client's answer first (also when no round is at the backend,
        // while the client is being asked), then the backend's round.
        self.finish(Err(ErrorObj::new(code::REQUEST_CANCELLED, format!("request cancelled: {reason}"))));
        if let Some(c) = self.conn.upgrade() {
            c.cancel(bid, reason);
        }
    }
}
