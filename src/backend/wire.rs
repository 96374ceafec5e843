//! What a backend sends, routed the same way by the three transports (on
//! their reader, stream and POST threads): a JSON-RPC payload (one message
//! or a batch) goes to [`Conn::handle_incoming`]; a malformed answer to a
//! call in flight fails that call at once, with an error naming the backend,
//! instead of leaving it to wait for its timeout; anything else malformed is
//! logged (a bounded, escaped excerpt) and skipped.

use super::conn::Conn;
use crate::codec::jsonrpc::{self, code, ErrorObj, Id, Message};
use serde_json::value::RawValue;

/// How much of a malformed payload a log line or an error quotes.
const SNIPPET: usize = 200;

/// Routes one payload. `Ok(true)` if it held the answer (result or error)
/// to gateway request `request`; `Err` (a reason) if it is not JSON-RPC at
/// all: not JSON, or neither an object nor a non-empty array.
pub fn route(conn: &Conn, payload: &[u8], request: Option<i64>) -> Result<bool, String> {
    let text = std::str::from_utf8(payload).map_err(|e| format!("not JSON: {e}"))?;
    let raw: &RawValue = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let items: Vec<&RawValue> = match raw.get().as_bytes().first() {
        Some(b'{') => vec![raw],
        Some(b'[') => serde_json::from_str(raw.get()).map_err(|e| format!("not JSON: {e}"))?,
        _ => return Err("JSON, but neither an object nor an array".to_owned()),
    };
    if items.is_empty() {
        return Err("an empty batch".to_owned());
    }
    let mut answered = false;
    for item in items {
        match jsonrpc::classify_raw(item) {
            Ok(m) => {
                answered |= request.is_some() && answer_id(&m).and_then(gateway_id) == request;
                // What comes on a call's own response stream belongs to
                // that call's client.
                conn.handle_incoming_for(m, request);
            }
            Err((Some(id), e)) => {
                answered |= request.is_some() && gateway_id(&id) == request;
                invalid_answer(conn, id, &e.message);
            }
            Err((None, e)) => log::warn!(
                "backend '{}' sent a message that is not JSON-RPC ({}); skipped: {}",
                conn.backend,
                e.message,
                snippet(payload)
            ),
        }
    }
    Ok(answered)
}

/// A message carrying an id we may be waiting on, but not a valid response:
/// that call fails now with -32603 naming the backend. (`Conn` drops an
/// answer to an id that is not in flight, so a stray id harms nothing.)
fn invalid_answer(conn: &Conn, id: Id, why: &str) {
    log::warn!("backend '{}' sent an invalid message with id {id}: {why}", conn.backend);
    let msg = format!("backend '{}' sent an invalid response: {why}", conn.backend);
    conn.handle_incoming(Message::error(Some(id), ErrorObj::new(code::INTERNAL_ERROR, msg)));
}

/// Fails gateway request `id` at once with -32603 and `message`, which
/// must name the backend.
pub fn fail_call(conn: &Conn, id: i64, message: String) {
    log::warn!("{message}");
    conn.handle_incoming(Message::error(Some(Id::Num(id)), ErrorObj::new(code::INTERNAL_ERROR, message)));
}

fn answer_id(m: &Message) -> Option<&Id> {
    match m {
        Message::Response { id, .. } | Message::Error { id: Some(id), .. } => Some(id),
        _ => None,
    }
}

/// Gateway ids are integers; a backend may echo one as a string.
fn gateway_id(id: &Id) -> Option<i64> {
    match id {
        Id::Num(n) => Some(*n),
        Id::Str(s) => s.parse().ok(),
    }
}

/// The first 200 bytes of what a backend sent, for a log line or an error:
/// lossy UTF-8 with control characters escaped, so a payload can neither
/// forge log lines nor drive a terminal; `…` marks a cut.
pub fn snippet(bytes: &[u8]) -> String {
    let cut = bytes.len() > SNIPPET;
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(SNIPPET)]);
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    if cut {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{Reply, Sink, Stats, SupervisorMsg};
    use crossbeam_channel::{bounded, Receiver};
    use std::sync::Arc;
    use std::time::Duration;

    fn conn() -> (Arc<Conn>, Receiver<crate::backend::Outgoing>, Receiver<SupervisorMsg>) {
        let (stx, srx) = bounded(8);
        let spec = crate::backend::ConnSpec {
            backend: "b1".into(),
            generation: 1,
            supervisor: stx,
            stats: Arc::new(Stats::default()),
            hub: Arc::new(crate::route::NoHub),
            timeout: Duration::from_secs(30),
            owner: None,
        };
        let (c, rx) = Conn::new(&spec, None);
        (c, rx, srx)
    }

    fn call(c: &Conn) -> (i64, Receiver<Reply>) {
        let (tx, rx) = bounded(4);
        let id = c.call("tools/call", None, Sink::Chan(tx), Duration::from_secs(30)).unwrap();
        (id, rx)
    }

    fn error_of(rx: &Receiver<Reply>) -> ErrorObj {
        match rx.try_recv() {
            Ok(Reply::Done(Err(e))) => e,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn answers_are_routed_and_recognized() {
        let (c, _out, _) = conn();
        let (a, rx) = call(&c);
        let body = format!(r#"{{"jsonrpc":"2.0","id":{a},"result":{{}}}}"#);
        assert_eq!(route(&c, body.as_bytes(), Some(a)), Ok(true));
        assert!(matches!(rx.try_recv(), Ok(Reply::Done(Ok(_)))));
        // A notification alone is not the answer; a batch may hold it, as a string id too.
        let note = br#"{"jsonrpc":"2.0","method":"notifications/message","params":{"data":"x"}}"#;
        assert_eq!(route(&c, note, Some(a)), Ok(false));
        let (b, rx) = call(&c);
        let batch = format!(
            r#"[{{"jsonrpc":"2.0","method":"x"}},{{"jsonrpc":"2.0","id":"{b}","error":{{"code":1,"message":"m"}}}}]"#
        );
        assert_eq!(route(&c, batch.as_bytes(), Some(b)), Ok(true));
        assert_eq!(error_of(&rx).code, 1);
    }

    #[test]
    fn an_invalid_message_with_a_pending_id_fails_that_call_at_once() {
        let (c, _out, _) = conn();
        let (a, rx) = call(&c);
        let bad = format!(r#"{{"jsonrpc":"1.0","id":{a},"result":{{}}}}"#);
        assert_eq!(route(&c, bad.as_bytes(), Some(a)), Ok(true));
        let e = error_of(&rx);
        assert_eq!(e.code, code::INTERNAL_ERROR);
        assert!(e.message.starts_with("backend 'b1' sent an invalid response: "), "{}", e.message);
        assert_eq!(c.in_flight(), 0);
        // An id nobody waits for, and no id at all: nothing to fail.
        assert_eq!(route(&c, br#"{"jsonrpc":"1.0","id":999,"result":{}}"#, None), Ok(false));
        assert_eq!(route(&c, br#"{"jsonrpc":"2.0"}"#, None), Ok(false));
    }

    #[test]
    fn non_json_is_an_error_for_the_caller() {
        let (c, _out, _) = conn();
        assert!(route(&c, b"<html>oops</html>", Some(1)).unwrap_err().starts_with("not JSON: "));
        assert_eq!(route(&c, b"[]", None), Err("an empty batch".to_owned()));
        assert_eq!(route(&c, b"42", None), Err("JSON, but neither an object nor an array".to_owned()));
        let (a, rx) = call(&c);
        fail_call(&c, a, "backend 'b1' answered POST with something that is not JSON-RPC".to_owned());
        assert_eq!(error_of(&rx).code, code::INTERNAL_ERROR);
    }

    #[test]
    fn snippets_are_bounded_and_escaped() {
        assert_eq!(snippet(b"plain"), "plain");
        assert_eq!(snippet(b"a\x1b[2Jb\r\nc\x00"), "a\\u{1b}[2Jb\\r\\nc\\u{0}");
        let long = vec![b'x'; 500];
        let s = snippet(&long);
        assert_eq!(s.chars().count(), 201);
        assert!(s.ends_with('…'));
        assert_eq!(snippet(&[0xff, b'a']), "\u{fffd}a");
    }
}
