//! The bridge's stdout: one `stdio:out` thread writes every message the
//! client gets, one JSON text per line, so lines from the POST threads and
//! the GET stream never interleave. stdout carries the protocol only;
//! everything else goes to stderr (the log).

use std::io::Write;
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver, SendTimeoutError, Sender};

use crate::codec::{ErrorObj, Id, Message};

/// Lines queued for stdout; a client that stops reading stops the bridge's
/// senders here (each waits at most [`SEND_WAIT`]).
const QUEUE: usize = 256;
/// Longest a sender waits for room in the queue before the line is dropped
/// (with a warning): the client has stopped reading its stdin.
const SEND_WAIT: Duration = Duration::from_secs(30);

/// What the `stdio:out` thread receives.
enum Line {
    /// One message as JSON text (line ends are removed before writing).
    Msg(Vec<u8>),
    /// Answered once everything queued before it is written and flushed.
    Flush(Sender<()>),
}

/// The sending side of stdout, cloned by every thread that writes to the client.
#[derive(Clone)]
pub struct Out {
    tx: Sender<Line>,
}

impl Out {
    /// Starts the writer thread on `w` (stdout, or a buffer in tests).
    pub fn start(w: impl Write + Send + 'static) -> std::io::Result<Out> {
        let (tx, rx) = bounded(QUEUE);
        crate::thread::spawn("stdio:out".to_owned(), move || write_loop(w, &rx))?;
        Ok(Out { tx })
    }

    /// Queues one message given as JSON text. Line ends in it can only be
    /// whitespace between tokens (JSON strings escape them), so they become
    /// spaces: one message, one line, as the stdio transport requires.
    pub fn send_json(&self, json: &[u8]) {
        let line: Vec<u8> = json.iter().map(|&b| if b == b'\n' || b == b'\r' { b' ' } else { b }).collect();
        match self.tx.send_timeout(Line::Msg(line), SEND_WAIT) {
            Ok(()) => {}
            Err(SendTimeoutError::Timeout(_)) => {
                log::warn!(
                    "the client has not read its stdin for {}s; a message to it was dropped",
                    SEND_WAIT.as_secs()
                );
            }
            // stdout is closed (the writer ended): the client is gone.
            Err(SendTimeoutError::Disconnected(_)) => log::debug!("stdout is closed; a message was dropped"),
        }
    }

    pub fn send(&self, msg: &Message) {
        self.send_json(&msg.to_bytes());
    }

    /// An error answer to the client's request `id` (or an id-less one).
    pub fn error(&self, id: Option<Id>, code: i64, message: impl Into<String>) {
        self.send(&Message::error(id, ErrorObj::new(code, message)));
    }

    /// Waits (at most `wait`) until everything queued so far is written.
    pub fn flush(&self, wait: Duration) {
        let (ack, done) = bounded(1);
        if self.tx.send_timeout(Line::Flush(ack), wait).is_ok() {
            let _ = done.recv_timeout(wait);
        }
    }
}

fn write_loop(mut w: impl Write, rx: &Receiver<Line>) -> Result<(), String> {
    while let Ok(line) = rx.recv() {
        match line {
            Line::Msg(bytes) => {
                let wrote = w.write_all(&bytes).and_then(|()| w.write_all(b"\n"));
                // Flush when nothing else waits: one syscall per burst.
                let wrote = wrote.and_then(|()| if rx.is_empty() { w.flush() } else { Ok(()) });
                if let Err(e) = wrote {
                    // The client closed its end: nothing more can reach it.
                    // stdin's EOF follows and ends the bridge.
                    log::debug!("stdout closed: {e}");
                    return Ok(());
                }
            }
            Line::Flush(ack) => {
                let _ = w.flush();
                let _ = ack.try_send(());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use parking_lot::Mutex;
    use std::sync::Arc;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn one_message_per_line() {
        let buf = Buf::default();
        let out = Out::start(buf.clone()).unwrap();
        out.send_json(b"{\n  \"jsonrpc\": \"2.0\",\r\n  \"method\": \"a\\nb\"\n}");
        out.error(Some(Id::Num(7)), -32001, "gone");
        out.flush(Duration::from_secs(5));
        let text = String::from_utf8(buf.0.lock().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(serde_json::from_str::<serde_json::Value>(lines[0]).unwrap()["method"], "a\nb");
        assert_eq!(lines[1], r#"{"jsonrpc":"2.0","id":7,"error":{"code":-32001,"message":"gone"}}"#);
    }
}
