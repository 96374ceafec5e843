//! Unit tests of one backend connection, channel-backed: what the gateway
//! sends is read from the outgoing queue, what the backend sends is fed to
//! `handle_incoming`. No process, no socket.

use super::*;
use crate::codec::jsonrpc::parse_one;
use crate::route::NoHub;
use serde_json::Value;

fn spec() -> (ConnSpec, Receiver<SupervisorMsg>) {
    let (stx, srx) = bounded(8);
    let spec = ConnSpec {
        backend: "b1".into(),
        generation: 1,
        supervisor: stx,
        stats: Arc::new(Stats::default()),
        hub: Arc::new(NoHub),
        timeout: Duration::from_secs(5),
        owner: None,
    };
    (spec, srx)
}

fn conn() -> (Arc<Conn>, Receiver<Outgoing>, Receiver<SupervisorMsg>) {
    let (spec, srx) = spec();
    let (c, rx) = Conn::new(&spec, None);
    (c, rx, srx)
}

fn sent(rx: &Receiver<Outgoing>) -> Value {
    serde_json::from_slice(&rx.try_recv().expect("a message was sent").bytes).expect("json")
}

fn raw(v: Value) -> Option<Raw> {
    Some(jsonrpc::to_raw(&v))
}

fn value(r: &Raw) -> Value {
    serde_json::from_str(r.get()).expect("json")
}

#[test]
fn ids_are_remapped_and_answers_routed_back() {
    let (c, out, _) = conn();
    let (tx1, rx1) = bounded(4);
    let (tx2, rx2) = bounded(4);
    let a = c.call("tools/call", raw(json!({"name":"x"})), Sink::Chan(tx1), Duration::from_secs(5)).unwrap();
    let b = c.call("tools/call", raw(json!({"name":"y"})), Sink::Chan(tx2), Duration::from_secs(5)).unwrap();
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
fn params_and_results_pass_byte_for_byte() {
    let (c, out, _) = conn();
    let (tx, rx) = bounded(4);
    let params = r#"{"name":"x","arguments":{"big":12345678901234567890123,"s":"\u00e9\n\"q\"\/","z":1,"a":2},"_meta":{"progressToken":"t","k":1.50}}"#;
    let p = serde_json::value::RawValue::from_string(params.to_owned()).unwrap();
    let id = c.call("tools/call", Some(p), Sink::Chan(tx), Duration::from_secs(5)).unwrap();
    let bytes = out.try_recv().unwrap().bytes;
    let text = String::from_utf8(bytes).unwrap();
    assert!(
        text.contains(&format!(r#""params":{{"name":"x","arguments":{{"big":12345678901234567890123,"s":"\u00e9\n\"q\"\/","z":1,"a":2}},"_meta":{{"progressToken":{id},"k":1.50}}}}"#)),
        "{text}"
    );
    let answer = format!(
        r#"{{"jsonrpc":"2.0","id":{id},"result":{{"n":1e400000000,"b":99999999999999999999999,"s":"\ud83d\ude00"}}}}"#
    );
    // (1e400000000 is not a valid f64 but valid JSON: it must pass as written.)
    c.handle_incoming(parse_one(answer.as_bytes()).unwrap());
    match rx.try_recv().unwrap() {
        Reply::Done(Ok(r)) => {
            assert_eq!(r.get(), r#"{"n":1e400000000,"b":99999999999999999999999,"s":"\ud83d\ude00"}"#)
        }
        r => panic!("{r:?}"),
    }
}

#[test]
fn equal_client_progress_tokens_do_not_collide() {
    let (c, out, _) = conn();
    let (tx1, rx1) = bounded(4);
    let (tx2, rx2) = bounded(4);
    let p = json!({"name":"slow","_meta":{"progressToken":1}});
    let a = c.call("tools/call", raw(p.clone()), Sink::Chan(tx1), Duration::from_secs(5)).unwrap();
    let b = c.call("tools/call", raw(p), Sink::Chan(tx2), Duration::from_secs(5)).unwrap();
    let ta = sent(&out)["params"]["_meta"]["progressToken"].clone();
    let tb = sent(&out)["params"]["_meta"]["progressToken"].clone();
    assert_eq!((ta.clone(), tb.clone()), (json!(a), json!(b)));
    c.handle_incoming(Message::notification(
        "notifications/progress",
        Some(json!({"progressToken": tb, "progress": 1})),
    ));
    assert!(rx1.try_recv().is_err());
    match rx2.try_recv().unwrap() {
        Reply::Progress(p) => assert_eq!(value(&p), json!({"progressToken": 1, "progress": 1})),
        r => panic!("{r:?}"),
    }
}

#[test]
fn cancel_forwards_mapped_id_and_drops_late_answer() {
    let (c, out, _) = conn();
    let (tx, rx) = bounded(4);
    let id = c.call("tools/call", None, Sink::Chan(tx), Duration::from_secs(5)).unwrap();
    let _ = sent(&out);
    c.handle(id).cancel("user");
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
fn liveness_pings_stay_out_of_the_call_metrics() {
    let (spec, _srx) = spec();
    let stats = spec.stats.clone();
    let (c, out) = Conn::new(&spec, None);
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

// ---- routing to clients, with fake sessions

/// A fake client session: records what it is sent; answers requests
/// through `answers` when the test says so.
#[derive(Default)]
struct FakeClient {
    id: String,
    caps: Vec<ClientCap>,
    level: Option<usize>,
    requests: parking_lot::Mutex<Vec<(String, u64, Option<Answer>)>>,
    notes: parking_lot::Mutex<Vec<Value>>,
    cancelled: parking_lot::Mutex<Vec<u64>>,
}

impl ClientLink for FakeClient {
    fn session_id(&self) -> &str {
        &self.id
    }
    fn supports(&self, cap: ClientCap) -> bool {
        self.caps.contains(&cap)
    }
    fn request(&self, method: &str, _: Option<Raw>, _: Duration, answer: Answer) -> Option<u64> {
        let mut g = self.requests.lock();
        let id = g.len() as u64 + 1;
        g.push((method.to_owned(), id, Some(answer)));
        Some(id)
    }
    fn cancel_request(&self, id: u64, _: &str) {
        self.cancelled.lock().push(id);
    }
    fn notify(&self, msg: &Message) {
        self.notes.lock().push(serde_json::from_slice(&msg.to_bytes()).expect("json"));
    }
    fn admits_log(&self, level: &str) -> bool {
        match (self.level, crate::route::log_rank(level)) {
            (Some(min), Some(r)) => r >= min,
            _ => true,
        }
    }
}

/// A call's sink that belongs to a fake client.
struct FakeCall {
    client: Arc<FakeClient>,
    done: parking_lot::Mutex<Vec<Result<Raw, ErrorObj>>>,
}

impl CallSink for FakeCall {
    fn progress(&self, _: Raw) {}
    fn done(&self, r: Result<Raw, ErrorObj>) {
        self.done.lock().push(r);
    }
    fn client(&self) -> Option<Arc<dyn ClientLink>> {
        Some(self.client.clone())
    }
}

fn client(id: &str, caps: &[ClientCap]) -> Arc<FakeClient> {
    Arc::new(FakeClient { id: id.into(), caps: caps.to_vec(), ..FakeClient::default() })
}

fn call_from(c: &Conn, client: &Arc<FakeClient>) -> (i64, Arc<FakeCall>) {
    let sink = Arc::new(FakeCall { client: client.clone(), done: Default::default() });
    let id = c.call("tools/call", None, Sink::Route(sink.clone()), Duration::from_secs(5)).unwrap();
    (id, sink)
}

#[test]
fn a_backend_request_during_a_call_goes_to_that_calls_client_and_its_answer_back() {
    let (c, out, _) = conn();
    let alice = client("alice", &[ClientCap::Sampling]);
    call_from(&c, &alice);
    let _ = sent(&out);
    c.handle_incoming(Message::request(
        Id::Str("srv-1".into()),
        "sampling/createMessage",
        Some(json!({"messages": []})),
    ));
    let answer = {
        let mut g = alice.requests.lock();
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].0, "sampling/createMessage");
        g[0].2.take().expect("answer")
    };
    assert!(out.try_recv().is_err(), "nothing goes to the backend before the client answers");
    answer(Ok(jsonrpc::to_raw(&json!({"role": "assistant", "content": {"type": "text", "text": "hi"}}))));
    let r = sent(&out);
    assert_eq!(r["id"], "srv-1");
    assert_eq!(r["result"]["content"]["text"], "hi");
}

#[test]
fn a_client_without_the_capability_gets_a_fast_error_naming_it() {
    let (c, out, _) = conn();
    let bob = client("bob", &[]);
    call_from(&c, &bob);
    let _ = sent(&out);
    c.handle_incoming(Message::request(Id::Num(7), "elicitation/create", Some(json!({"message": "?"}))));
    let r = sent(&out);
    assert_eq!(r["id"], 7);
    assert!(r["error"]["message"].as_str().unwrap().contains("'elicitation' capability"), "{r}");
    assert!(bob.requests.lock().is_empty());
}

#[test]
fn with_several_sessions_in_flight_a_request_is_refused_clearly_and_ping_is_answered() {
    let (c, out, _) = conn();
    let (a, b) = (client("a", &[ClientCap::Sampling]), client("b", &[ClientCap::Sampling]));
    call_from(&c, &a);
    call_from(&c, &b);
    let _ = (sent(&out), sent(&out));
    c.handle_incoming(Message::request(Id::Num(1), "sampling/createMessage", Some(json!({}))));
    let r = sent(&out);
    assert!(r["error"]["message"].as_str().unwrap().contains("2 client sessions"), "{r}");
    c.handle_incoming(Message::request(Id::Num(2), "ping", None));
    assert_eq!(sent(&out)["result"], json!({}));
    c.handle_incoming(Message::request(Id::Num(3), "no/such", None));
    assert_eq!(sent(&out)["error"]["code"], code::METHOD_NOT_FOUND);
}

#[test]
fn the_streamable_association_is_exact_even_with_several_sessions() {
    let (c, out, _) = conn();
    let (a, b) = (client("a", &[ClientCap::Roots]), client("b", &[ClientCap::Roots]));
    call_from(&c, &a);
    let (via, _) = call_from(&c, &b);
    let _ = (sent(&out), sent(&out));
    c.handle_incoming_for(Message::request(Id::Num(9), "roots/list", None), Some(via));
    assert!(a.requests.lock().is_empty());
    assert_eq!(b.requests.lock().len(), 1);
}

#[test]
fn log_messages_go_to_the_calls_client_at_its_level_and_cancellations_reach_it() {
    let (c, out, _) = conn();
    let mut quiet = FakeClient { id: "q".into(), caps: vec![ClientCap::Sampling], ..FakeClient::default() };
    quiet.level = crate::route::log_rank("error");
    let quiet = Arc::new(quiet);
    call_from(&c, &quiet);
    let _ = sent(&out);
    let log =
        |level: &str| Message::notification("notifications/message", Some(json!({"level": level, "data": level})));
    c.handle_incoming(log("info"));
    c.handle_incoming(log("critical"));
    let notes = quiet.notes.lock().clone();
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0]["params"]["data"], "critical");
    // A request the backend then cancels: the client is told.
    c.handle_incoming(Message::request(Id::Num(4), "sampling/createMessage", Some(json!({}))));
    c.handle_incoming(Message::notification(
        "notifications/cancelled",
        Some(json!({"requestId": 4, "reason": "late"})),
    ));
    assert_eq!(*quiet.cancelled.lock(), vec![1]);
}

/// A sink whose delivery closes "its session", which cancels every call of
/// that session on the same connection: what a client that stopped reading
/// its stream does during a call with progress. It used to deadlock the
/// reader thread on the in-flight table.
struct ClosingSink {
    conn: Weak<Conn>,
    others: parking_lot::Mutex<Vec<i64>>,
}

impl CallSink for ClosingSink {
    fn progress(&self, _: Raw) {
        if let Some(c) = self.conn.upgrade() {
            for id in self.others.lock().drain(..) {
                c.cancel(id, "client session closed");
            }
        }
    }
    fn done(&self, _: Result<Raw, ErrorObj>) {}
}

#[test]
fn delivering_progress_holds_no_lock_so_a_session_closing_in_it_cannot_deadlock() {
    let (c, out, _) = conn();
    let sink = Arc::new(ClosingSink { conn: Arc::downgrade(&c), others: Default::default() });
    let id = c
        .call(
            "tools/call",
            raw(json!({"_meta": {"progressToken": "p"}})),
            Sink::Route(sink.clone()),
            Duration::from_secs(5),
        )
        .unwrap();
    let other = c.call("tools/call", None, Sink::Chan(bounded(4).0), Duration::from_secs(5)).unwrap();
    sink.others.lock().extend([id, other]);
    let _ = (sent(&out), sent(&out));
    let c2 = c.clone();
    let (done_tx, done) = bounded::<()>(0);
    std::thread::spawn(move || {
        c2.handle_incoming(Message::notification(
            "notifications/progress",
            Some(json!({"progressToken": id, "progress": 1})),
        ));
        drop(done_tx);
    });
    // The sender is dropped when delivery returns: no sleep-poll.
    let r = done.recv_timeout(Duration::from_secs(5));
    assert_eq!(
        r,
        Err(crossbeam_channel::RecvTimeoutError::Disconnected),
        "the reader thread is stuck delivering progress"
    );
    assert_eq!(c.in_flight(), 0);
}

#[test]
fn a_url_elicitation_completes_at_the_client_that_got_it() {
    let (c, out, _) = conn();
    let (a, b) = (client("a", &[ClientCap::ElicitationUrl]), client("b", &[ClientCap::ElicitationUrl]));
    let (via_a, _) = call_from(&c, &a);
    call_from(&c, &b);
    let _ = (sent(&out), sent(&out));
    let p = json!({"mode": "url", "elicitationId": "e-1", "url": "https://example.com/x", "message": "go"});
    c.handle_incoming_for(Message::request(Id::Num(5), "elicitation/create", Some(p)), Some(via_a));
    assert_eq!(a.requests.lock().len(), 1);
    // Later, outside any call: the completion goes to `a` only.
    c.handle_incoming(Message::notification(
        "notifications/elicitation/complete",
        Some(json!({"elicitationId": "e-1"})),
    ));
    assert_eq!(a.notes.lock().len(), 1);
    assert!(b.notes.lock().is_empty());
}

#[test]
fn a_per_session_connection_sends_what_is_outside_any_call_to_its_session() {
    let (mut spec, _sup) = spec();
    let alice = client("alice", &[ClientCap::Roots]);
    let link: Arc<dyn ClientLink> = alice.clone();
    spec.owner = Some(Arc::downgrade(&link));
    let (c, out) = Conn::new(&spec, None);
    c.handle_incoming(Message::request(Id::Num(1), "roots/list", None));
    assert_eq!(alice.requests.lock().len(), 1, "no call in flight, still hers");
    c.handle_incoming(Message::notification("notifications/message", Some(json!({"level": "info", "data": "x"}))));
    c.handle_incoming(Message::notification("notifications/resources/updated", Some(json!({"uri": "a://b"}))));
    assert_eq!(alice.notes.lock().len(), 2);
    assert!(out.try_recv().is_err());
}
