//! One SSE stream of a session, as a logical thing that outlives its
//! connections: its events are numbered (`id: s<stream>-<n>`, on Streamable
//! HTTP) and the last ones kept, so a client whose connection dropped can
//! resume with `Last-Event-ID` on a new one; a stream for a client at
//! 2025-11-25 or later opens with the priming event.

use crate::http::Stream;
use std::collections::VecDeque;

/// Events kept per stream for a client that reconnects with
/// `Last-Event-ID`, at most this many and this many bytes.
pub const REPLAY_EVENTS: usize = 64;
pub const REPLAY_BYTES: usize = 1024 * 1024;

/// One logical SSE stream: its events are numbered (`id: s<stream>-<n>`,
/// on Streamable HTTP) and the last ones kept, so that a client whose
/// connection dropped can resume with `Last-Event-ID` on a new connection.
pub struct Channel {
    number: u64,
    ids: bool,
    next: u64,
    kept: VecDeque<(u64, Vec<u8>)>,
    kept_bytes: usize,
    live: Option<Stream>,
    /// The stream's last event was sent: a resume replays and ends.
    finished: bool,
}

impl Channel {
    pub fn new(number: u64, ids: bool) -> Channel {
        Channel { number, ids, next: 1, kept: VecDeque::new(), kept_bytes: 0, live: None, finished: false }
    }

    pub fn number(&self) -> u64 {
        self.number
    }

    /// The SSE id of event `n` of this stream.
    fn id_of(&self, n: u64) -> String {
        format!("s{}-{n}", self.number)
    }

    /// Parses `s<stream>-<n>`.
    pub fn parse_id(s: &str) -> Option<(u64, u64)> {
        let (a, b) = s.trim().strip_prefix('s')?.split_once('-')?;
        Some((a.parse().ok()?, b.parse().ok()?))
    }

    /// Attaches a connection and sends what it must see first: for a
    /// client that can resume (2025-11-25), a priming event (an id, no
    /// data) and the reconnect delay; for a resume, the events after
    /// `after`. `false` if the connection is already gone.
    pub fn attach(&mut self, stream: Stream, prime: bool, after: Option<u64>) -> bool {
        let mut first = Vec::new();
        if let Some(n) = after {
            for (seq, bytes) in &self.kept {
                if *seq > n {
                    first.extend_from_slice(bytes);
                }
            }
        } else if prime && self.ids {
            let id = self.id_of(0);
            first.extend_from_slice(format!("id: {id}\nretry: {RETRY_MS}\ndata: \n\n").as_bytes());
        }
        // Held on a corked stream: a quick answer goes out with it.
        if !first.is_empty() && stream.hold(&first).is_err() {
            return false;
        }
        if self.finished {
            stream.finish();
            return true;
        }
        self.live = Some(stream);
        true
    }

    /// Sends one event (numbered and kept when this channel has ids).
    /// `Err` if a live connection is too far behind (its client stopped
    /// reading): the caller decides what that costs the session.
    pub fn send(&mut self, event: Option<&str>, data: &[u8]) -> Result<(), crate::http::StreamClosed> {
        self.send_or_hold(event, data, false)
    }

    /// Sends the stream's last event and ends the response: on a corked
    /// stream, head, priming event, answer and end in one write.
    pub fn send_last(&mut self, event: Option<&str>, data: &[u8]) {
        // A client that went away did not cancel: the event is kept for a
        // resume either way.
        let _ = self.send_or_hold(event, data, true);
        self.finish();
    }

    fn send_or_hold(&mut self, event: Option<&str>, data: &[u8], hold: bool) -> Result<(), crate::http::StreamClosed> {
        let mut bytes = Vec::with_capacity(data.len() + 48);
        let id = self.ids.then(|| self.id_of(self.next));
        crate::codec::sse::encode_event_bytes(&mut bytes, event, id.as_deref(), data);
        if self.ids {
            self.kept.push_back((self.next, bytes.clone()));
            self.kept_bytes += bytes.len();
            self.next += 1;
            while self.kept.len() > REPLAY_EVENTS || self.kept_bytes > REPLAY_BYTES {
                match self.kept.pop_front() {
                    Some((_, b)) => self.kept_bytes -= b.len(),
                    None => break,
                }
            }
        }
        match &self.live {
            Some(s) => {
                let r = if hold { s.hold(&bytes) } else { s.send(&bytes) };
                if r.is_err() {
                    self.live = None;
                }
                r
            }
            // No connection now: kept for a resume (ids), or dropped.
            None => Ok(()),
        }
    }

    /// A live connection is attached and open.
    pub fn is_live(&self) -> bool {
        self.live.as_ref().is_some_and(Stream::is_open)
    }

    /// The last event was sent: end the response (the connection may carry
    /// another request).
    pub fn finish(&mut self) {
        self.finished = true;
        if let Some(s) = self.live.take() {
            s.finish();
        }
    }

    /// Forgets the connection if it closed (its client left); kept
    /// events stay. A newer connection attached since is left alone.
    pub fn detach_if_closed(&mut self) {
        if self.live.as_ref().is_some_and(|s| !s.is_open()) {
            self.live = None;
        }
    }

    /// Forgets the connection (its client left); kept events stay.
    pub fn detach(&mut self) {
        self.live = None;
    }

    /// Events kept for a resume.
    pub fn kept_len(&self) -> usize {
        self.kept.len()
    }

    /// Takes the live connection out (to close it outside a lock).
    pub fn take_live(&mut self) -> Option<Stream> {
        self.live.take()
    }
}

/// The reconnect delay a resumable stream suggests (`retry:`).
const RETRY_MS: u64 = 1000;
