//! One HTTP connection: its socket (plain or TLS), input and output
//! buffers, and where it is in the request cycle. Shared as `Arc<Conn>`
//! between the reactor (reads, timers, draining) and whoever answers a
//! request ([`Responder`], [`Stream`]), which writes the response itself.
//! Everything mutable sits behind one mutex, held only for non-blocking
//! socket calls and buffer copies, never while calling out.

use super::parse::{self, Chunked, Framing, Head, HttpError};
use super::shared::{Notice, Shared};
use super::Response;
use crate::codec::idscan::IdScanner;
use mio::net::TcpStream;
use mio::Token;
use parking_lot::Mutex;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Buffers larger than this are freed once empty, so idle connections
/// and quiet streams hold little memory.
const KEEP_CAPACITY: usize = 4096;
/// Input read ahead of the request being served (pipelining) at most.
const READ_AHEAD: usize = 64 * 1024;

/// What the connection is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Waiting for (the rest of) a request head.
    Head,
    /// Reading a request body.
    Body,
    /// A request is being handled; its response is not sent yet.
    Busy,
    /// The response is an open stream.
    Streaming,
}

struct BodyRead {
    head: Head,
    framing: Framing,
    limit: usize,
    body: Vec<u8>,
    chunked: Chunked,
    /// Over its limit: read and thrown away, looking only for its
    /// JSON-RPC id ([`IdScanner`]), so the refusal can name it.
    discard: Option<Discard>,
}

struct Discard {
    scan: IdScanner,
    read: usize,
}

/// The largest too-large body read through (and thrown away) to find its
/// id; a larger one is refused at once and the connection closed.
const DISCARD_MAX: usize = 64 * 1024 * 1024;

struct StreamState {
    chunked: bool,
    /// Head and events are held, unsent, until an event that must go at
    /// once, the end of the response, or the reactor's cork deadline.
    corked: bool,
    keepalive: Option<&'static [u8]>,
    every: Duration,
    last_write: Instant,
    max_backlog: usize,
}

pub(crate) struct Io {
    /// Taken out (and dropped, closing the descriptor) when the
    /// connection closes, even while a responder still holds the `Conn`.
    sock: Option<TcpStream>,
    tls: Option<Box<rustls::ServerConnection>>,
    inbuf: Vec<u8>,
    out: Vec<u8>,
    out_pos: usize,
    pub(crate) phase: Phase,
    /// Number of the request being served; a late answer to an earlier
    /// one (it timed out, the connection moved on) is ignored.
    seq: u64,
    keep_alive: bool,
    head_only: bool,
    /// Close once `out` is flushed.
    closing: bool,
    pub(crate) closed: bool,
    /// Reading stopped with input left in the socket (read-ahead full).
    read_paused: bool,
    /// Start of the current phase (for its timeout).
    pub(crate) since: Instant,
    /// A request head has started arriving (slowloris clock).
    head_started: Option<Instant>,
    /// The last time `out` shrank, or was empty.
    last_drain: Instant,
    body: Option<BodyRead>,
    stream: Option<StreamState>,
    on_close: Vec<CloseHook>,
}

/// Run once when a connection closes.
pub(crate) type CloseHook = Box<dyn FnOnce() + Send>;

pub(crate) struct Conn {
    pub(crate) token: Token,
    /// Unique per listener: tells a notice for this connection from one
    /// for a later connection that reuses its token.
    pub(crate) id: u64,
    pub(crate) remote: SocketAddr,
    pub(crate) local: SocketAddr,
    shared: Arc<Shared>,
    pub(crate) io: Mutex<Io>,
    notice_queued: AtomicBool,
}

/// A request taken off a connection, ready for the handler.
pub(crate) struct Ready {
    pub head: Head,
    pub body: Vec<u8>,
    pub seq: u64,
}

/// What the reactor does after the socket drained.
pub(crate) enum Writable {
    Wait,
    Resume,
    Close,
}

/// What the reactor does after reading.
pub(crate) enum ReadOutcome {
    /// Nothing to do until the socket has more.
    Wait,
    /// Serve this request.
    Request(Ready),
    /// Answer with this error status and close.
    Refuse(HttpError),
    /// The body was over its limit (read and thrown away): answer with the
    /// handler's `too_large` and close. Carries the JSON-RPC id found in it.
    TooLarge(Head, Option<Vec<u8>>),
    /// The peer is gone (EOF, error) or a timeout or limit ended it.
    Close,
}

impl Conn {
    pub(crate) fn new(
        token: Token,
        id: u64,
        sock: TcpStream,
        tls: Option<Box<rustls::ServerConnection>>,
        remote: SocketAddr,
        local: SocketAddr,
        shared: Arc<Shared>,
    ) -> Conn {
        let now = Instant::now();
        Conn {
            token,
            id,
            remote,
            local,
            shared,
            io: Mutex::new(Io {
                sock: Some(sock),
                tls,
                inbuf: Vec::new(),
                out: Vec::new(),
                out_pos: 0,
                phase: Phase::Head,
                seq: 0,
                keep_alive: true,
                head_only: false,
                closing: false,
                closed: false,
                read_paused: false,
                since: now,
                head_started: None,
                last_drain: now,
                body: None,
                stream: None,
                on_close: Vec::new(),
            }),
            notice_queued: AtomicBool::new(false),
        }
    }

    fn notify(&self, n: Notice) {
        if n == Notice::Resume && self.notice_queued.swap(true, Ordering::AcqRel) {
            return;
        }
        self.shared.notify(self.token, self.id, n);
    }

    pub(crate) fn clear_notice(&self) {
        self.notice_queued.store(false, Ordering::Release);
    }

    /// Reads what the socket has and, if the connection is waiting for a
    /// request, tries to complete one. Reactor thread only. `to_eagain`:
    /// read until the socket says it is empty, even after a short read
    /// (needed when the event also reported the peer closing, which a
    /// short read would leave unseen).
    pub(crate) fn read(&self, scratch: &mut [u8], body_limit: &dyn Fn(&Head) -> usize, to_eagain: bool) -> ReadOutcome {
        let mut io = self.io.lock();
        loop {
            if io.closed {
                return ReadOutcome::Close;
            }
            match io.fill(scratch, to_eagain) {
                Ok(true) => {}
                // EOF or a socket error: a client that closes while its request
                // is being served has given up on it (as Go's net/http reads it).
                Ok(false) | Err(_) => return ReadOutcome::Close,
            }
            // TLS handshake records and alerts may need sending.
            if io.tls.is_some() && io.flush().is_err() {
                return ReadOutcome::Close;
            }
            match io.next_request(body_limit, &self.shared.limits) {
                // Reading stopped at the read-ahead bound and what was read is
                // now parsed: read on (edge-triggered, no new event would come).
                ReadOutcome::Wait if io.read_paused && io.can_take_request() => continue,
                other => return other,
            }
        }
    }

    /// Parses buffered input into the next request, if the connection is
    /// free for one. Reactor thread only.
    pub(crate) fn resume(&self, scratch: &mut [u8], body_limit: &dyn Fn(&Head) -> usize) -> ReadOutcome {
        self.clear_notice();
        let paused = {
            let io = self.io.lock();
            if io.closed {
                return ReadOutcome::Close;
            }
            io.read_paused
        };
        if paused {
            return self.read(scratch, body_limit, true);
        }
        self.io.lock().next_request(body_limit, &self.shared.limits)
    }

    /// The socket can take more: send what is waiting. Reactor thread.
    pub(crate) fn on_writable(&self) -> Writable {
        let mut io = self.io.lock();
        if io.closed {
            return Writable::Close;
        }
        match io.flush() {
            Ok(true) if io.closing => Writable::Close,
            // Drained: input held back behind this answer can be served.
            Ok(true) if io.can_take_request() && (!io.inbuf.is_empty() || io.read_paused) => Writable::Resume,
            Ok(_) => Writable::Wait,
            Err(_) => Writable::Close,
        }
    }

    /// Marks the connection closed and returns its close hooks, to be run
    /// by the caller without the lock. Reactor thread.
    pub(crate) fn take_for_close(&self) -> (Vec<CloseHook>, Option<TcpStream>) {
        let mut io = self.io.lock();
        io.closed = true;
        io.stream = None;
        io.out = Vec::new();
        io.out_pos = 0;
        io.inbuf = Vec::new();
        let hooks = std::mem::take(&mut io.on_close);
        (hooks, io.sock.take())
    }

    /// Periodic check (reactor, about once a second): timeouts and
    /// keep-alive comments. Returns false when the connection must close.
    pub(crate) fn sweep(&self, now: Instant) -> bool {
        let Some(mut io) = self.io.try_lock() else { return true };
        if io.closed {
            return false;
        }
        let limits = &self.shared.limits;
        let backlog = io.out.len() - io.out_pos;
        if backlog > 0 && now.duration_since(io.last_drain) > limits.write_timeout {
            return false;
        }
        match io.phase {
            Phase::Head => match io.head_started {
                Some(t) => now.duration_since(t) <= limits.head_timeout,
                None => now.duration_since(io.since) <= limits.idle_timeout,
            },
            Phase::Body => now.duration_since(io.since) <= limits.body_timeout,
            Phase::Busy => true,
            Phase::Streaming => {
                let due = io.stream.as_ref().and_then(|s| {
                    let k = s.keepalive?;
                    (backlog == 0 && now.duration_since(s.last_write) >= s.every).then_some(k)
                });
                match due {
                    Some(bytes) => io.send_stream_bytes(bytes, false).is_ok(),
                    None => true,
                }
            }
        }
    }

    /// Whether this connection may be closed to make room for a new one:
    /// it has no request in progress and nothing waiting to be sent.
    /// Returns the time it became so (older goes first).
    pub(crate) fn evictable(&self) -> Option<Instant> {
        let io = self.io.try_lock()?;
        let idle = matches!(io.phase, Phase::Head | Phase::Body) && io.out.len() == io.out_pos && !io.closed;
        idle.then_some(io.head_started.unwrap_or(io.since))
    }

    /// The cork deadline passed: send what the stream held. Reactor thread.
    pub(crate) fn uncork(&self) {
        let failed = {
            let mut io = self.io.lock();
            !io.closed && io.uncork().is_err()
        };
        if failed {
            self.close();
        }
    }

    /// Closes from any thread: flushes what it can, shuts the socket, and
    /// has the reactor finish the job (hooks, deregistration).
    pub(crate) fn close(&self) {
        {
            let mut io = self.io.lock();
            if io.closed {
                return;
            }
            let _ = io.flush();
            io.shutdown();
            io.closed = true;
            io.stream = None;
        }
        self.notify(Notice::Close);
    }
}

impl Io {
    /// Reads everything the socket has (up to the read-ahead bound).
    /// Ok(false): the peer closed.
    fn fill(&mut self, scratch: &mut [u8], to_eagain: bool) -> io::Result<bool> {
        self.read_paused = false;
        loop {
            if self.inbuf.len() >= READ_AHEAD {
                // Buffer a bounded amount: the caller parses it and reads on
                // (or, while a request is served, resumes when it is free).
                self.read_paused = true;
                return Ok(true);
            }
            let Some(sock) = self.sock.as_ref() else { return Ok(false) };
            let n = match &mut self.tls {
                None => match (&*sock).read(scratch) {
                    Ok(0) => return Ok(false),
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                },
                Some(tls) => {
                    match tls.read_tls(&mut &*sock) {
                        Ok(0) => return Ok(false),
                        Ok(_) => {}
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(e),
                    }
                    let state = tls.process_new_packets().map_err(io::Error::other)?;
                    let mut got = 0;
                    let avail = state.plaintext_bytes_to_read();
                    if avail > 0 {
                        let want = avail.min(scratch.len());
                        got = tls.reader().read(&mut scratch[..want])?;
                    }
                    if state.peer_has_closed() && got == 0 {
                        return Ok(false);
                    }
                    got
                }
            };
            if n == 0 {
                continue;
            }
            if matches!(self.phase, Phase::Head) && self.head_started.is_none() {
                self.head_started = Some(Instant::now());
            }
            self.inbuf.extend_from_slice(&scratch[..n]);
            // A short read of a TCP socket took all it had: what arrives
            // later raises a new edge, so the read that would only say
            // EAGAIN is skipped (one syscall per request fewer).
            if !to_eagain && self.tls.is_none() && n < scratch.len() {
                return Ok(true);
            }
        }
    }

    /// Whether a new request may be read now: one at a time, and not while
    /// the previous answer is still queued (that keeps responses in order
    /// and makes a client that does not read stop getting new answers).
    fn can_take_request(&self) -> bool {
        matches!(self.phase, Phase::Head | Phase::Body) && self.out_pos == self.out.len() && !self.closing
    }

    fn next_request(&mut self, body_limit: &dyn Fn(&Head) -> usize, limits: &super::Limits) -> ReadOutcome {
        if !self.can_take_request() {
            return ReadOutcome::Wait;
        }
        // Head bytes still at the front of `inbuf`: drained together with
        // the body that follows them, so a large body is not moved first.
        let mut skip = 0;
        if self.phase == Phase::Head {
            if self.inbuf.is_empty() {
                self.release_inbuf();
                return ReadOutcome::Wait;
            }
            let (head, framing, used) = match parse::parse_head(&self.inbuf, limits.head_bytes) {
                Ok(Some(h)) => h,
                Ok(None) => return ReadOutcome::Wait,
                Err(e) => return ReadOutcome::Refuse(e),
            };
            skip = used;
            let limit = body_limit(&head);
            let mut discard = None;
            if let Framing::Length(n) = framing {
                if n > limit.max(DISCARD_MAX) || (n > limit && head.expects_continue()) {
                    return ReadOutcome::Refuse(HttpError { status: 413, message: "request body too large" });
                }
                if n > limit {
                    discard = Some(Discard { scan: IdScanner::default(), read: 0 });
                } else if n > self.inbuf.len() - skip && head.expects_continue() {
                    self.out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
                    if self.flush().is_err() {
                        return ReadOutcome::Close;
                    }
                }
            }
            self.phase = Phase::Body;
            self.since = Instant::now();
            self.body = Some(BodyRead { head, framing, limit, body: Vec::new(), chunked: Chunked::default(), discard });
        }
        let Some(b) = self.body.as_mut() else {
            self.inbuf.drain(..skip);
            self.phase = Phase::Head;
            return ReadOutcome::Wait;
        };
        if skip > 0 && (b.discard.is_some() || b.framing == Framing::Chunked) {
            self.inbuf.drain(..skip);
            skip = 0;
        }
        if let (Some(d), Framing::Length(n)) = (b.discard.as_mut(), b.framing) {
            let take = (n - d.read).min(self.inbuf.len());
            d.scan.push(&self.inbuf[..take]);
            self.inbuf.drain(..take);
            d.read += take;
            if d.read < n {
                return ReadOutcome::Wait;
            }
            let Some(b) = self.body.take() else { return ReadOutcome::Wait };
            let id = b.discard.and_then(|d| d.scan.id().map(<[u8]>::to_vec));
            return ReadOutcome::TooLarge(b.head, id);
        }
        let complete = match b.framing {
            Framing::Length(n) => {
                let take = (n - b.body.len()).min(self.inbuf.len() - skip);
                if b.body.is_empty() && take == n {
                    // The whole body is here: one copy out, sized exactly.
                    b.body = self.inbuf[skip..skip + take].to_vec();
                } else {
                    b.body.extend_from_slice(&self.inbuf[skip..skip + take]);
                }
                self.inbuf.drain(..skip + take);
                b.body.len() == n
            }
            Framing::Chunked => match b.chunked.push(&self.inbuf, &mut b.body, b.limit) {
                Ok(used) => {
                    self.inbuf.drain(..used);
                    b.chunked.done()
                }
                Err(e) => return ReadOutcome::Refuse(e),
            },
        };
        if !complete {
            return ReadOutcome::Wait;
        }
        let Some(b) = self.body.take() else { return ReadOutcome::Wait };
        self.seq += 1;
        self.phase = Phase::Busy;
        self.keep_alive = b.head.keep_alive();
        self.head_only = b.head.method() == "HEAD";
        self.head_started = None;
        self.since = Instant::now();
        if self.inbuf.is_empty() {
            self.release_inbuf();
        }
        ReadOutcome::Request(Ready { head: b.head, body: b.body, seq: self.seq })
    }

    fn release_inbuf(&mut self) {
        if self.inbuf.capacity() > KEEP_CAPACITY {
            self.inbuf = Vec::new();
        } else {
            self.inbuf.clear();
        }
    }

    /// Writes as much of `out` as the socket takes. Ok(true): all sent.
    fn flush(&mut self) -> io::Result<bool> {
        let before = self.out_pos;
        let r = self.flush_inner();
        if self.out_pos > before || self.out_pos == self.out.len() {
            self.last_drain = Instant::now();
        }
        if let Ok(true) = r {
            self.out_pos = 0;
            if self.out.capacity() > KEEP_CAPACITY {
                self.out = Vec::new();
            } else {
                self.out.clear();
            }
        }
        r
    }

    fn flush_inner(&mut self) -> io::Result<bool> {
        let Some(sock) = self.sock.as_ref() else { return Err(io::ErrorKind::NotConnected.into()) };
        match &mut self.tls {
            None => {
                while self.out_pos < self.out.len() {
                    match (&*sock).write(&self.out[self.out_pos..]) {
                        Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                        Ok(n) => self.out_pos += n,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(true)
            }
            Some(tls) => loop {
                let mut took = 0;
                if self.out_pos < self.out.len() {
                    took = tls.writer().write(&self.out[self.out_pos..])?;
                    self.out_pos += took;
                }
                if !tls.wants_write() {
                    if self.out_pos == self.out.len() {
                        return Ok(true);
                    }
                    if took == 0 {
                        // rustls holds its fill (e.g. before the handshake
                        // ends): try again when the socket has news.
                        return Ok(false);
                    }
                    continue;
                }
                match tls.write_tls(&mut &*sock) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            },
        }
    }

    fn shutdown(&mut self) {
        if let Some(s) = &self.sock {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }

    fn backlog(&self) -> usize {
        self.out.len() - self.out_pos
    }

    /// Appends stream bytes (chunk-framed when chunked) and sends what the
    /// socket takes; a corked stream keeps them if `hold`, else uncorks.
    fn send_stream_bytes(&mut self, data: &[u8], hold: bool) -> Result<(), StreamClosed> {
        let Some(st) = self.stream.as_mut() else { return Err(StreamClosed) };
        let held = hold && st.corked;
        st.corked = held;
        if st.chunked {
            let _ = write!(self.out, "{:x}\r\n", data.len());
            self.out.extend_from_slice(data);
            self.out.extend_from_slice(b"\r\n");
        } else {
            self.out.extend_from_slice(data);
        }
        st.last_write = Instant::now();
        if held {
            return Ok(());
        }
        self.flush().map(|_| ()).map_err(|_| StreamClosed)
    }

    /// Sends what a corked stream held.
    fn uncork(&mut self) -> io::Result<bool> {
        match self.stream.as_mut() {
            Some(st) if st.corked => {
                st.corked = false;
                self.flush()
            }
            _ => Ok(true),
        }
    }

    /// Writes a complete response to the request `seq`.
    fn respond(&mut self, seq: u64, resp: &Response) -> bool {
        if self.closed || self.seq != seq || self.phase != Phase::Busy {
            return false;
        }
        let close = !self.keep_alive;
        write_head(&mut self.out, resp.status, &resp.headers, Some(resp.body.len()), close);
        if !self.head_only {
            self.out.extend_from_slice(&resp.body);
        }
        self.phase = Phase::Head;
        self.since = Instant::now();
        if close {
            self.closing = true;
        }
        match self.flush() {
            Ok(done) => {
                if done && close {
                    self.shutdown();
                }
                true
            }
            Err(_) => {
                self.closing = true;
                self.shutdown();
                true
            }
        }
    }
}

/// Writes a response head. `length`: a Content-Length, else chunked.
fn write_head(out: &mut Vec<u8>, status: u16, headers: &[(&'static str, String)], length: Option<usize>, close: bool) {
    let _ = write!(out, "HTTP/1.1 {status} {}\r\n", parse::reason(status));
    for (k, v) in headers {
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    match length {
        Some(n) => {
            let _ = write!(out, "Content-Length: {n}\r\n");
        }
        None => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
    }
    if close {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// A complete response as bytes, closing the connection after it.
pub(crate) fn closing_response(resp: &Response) -> Vec<u8> {
    let mut out = Vec::with_capacity(160 + resp.body.len());
    write_head(&mut out, resp.status, &resp.headers, Some(resp.body.len()), true);
    out.extend_from_slice(&resp.body);
    out
}

impl Conn {
    /// Writes a refusal and marks the connection to close once it is sent.
    /// Returns false if it can be closed at once.
    pub(crate) fn refuse(&self, resp: &Response) -> bool {
        let mut io = self.io.lock();
        io.out.extend_from_slice(&closing_response(resp));
        io.closing = true;
        match io.flush() {
            Ok(true) | Err(_) => false,
            Ok(false) => true,
        }
    }
}

/// The right to answer one request. Move it to whoever will answer; it
/// writes the response straight to the socket. Dropped unused, it answers
/// 500, so a request is never left without an answer.
pub struct Responder {
    conn: Option<Arc<Conn>>,
    seq: u64,
}

/// The stream's client is gone (or it was closed, or it fell too far behind).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamClosed;

impl std::fmt::Display for StreamClosed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the stream is closed")
    }
}

/// How a [`Stream`] behaves.
#[derive(Clone)]
pub struct StreamOpts {
    /// Sent whenever the stream has been quiet for `keepalive_every`
    /// (an SSE comment, say), so proxies and clients keep it open.
    pub keepalive: Option<&'static [u8]>,
    pub keepalive_every: Duration,
    /// Bytes waiting for a slow client at most; past this the stream is
    /// closed rather than buffering more.
    pub max_backlog: usize,
    /// Hold the head and the events sent with [`Stream::hold`] for at most
    /// this long, so that a stream that ends soon (a quick tool call's
    /// answer) goes out in one write. Only on the reactor's own thread
    /// (the handler that opens it); elsewhere the stream is not corked.
    pub cork: Option<Duration>,
}

impl Default for StreamOpts {
    fn default() -> StreamOpts {
        StreamOpts {
            keepalive: None,
            keepalive_every: Duration::from_secs(15),
            max_backlog: 8 * 1024 * 1024,
            cork: None,
        }
    }
}

impl Responder {
    pub(crate) fn new(conn: Arc<Conn>, seq: u64) -> Responder {
        Responder { conn: Some(conn), seq }
    }

    pub fn remote(&self) -> Option<SocketAddr> {
        self.conn.as_ref().map(|c| c.remote)
    }

    /// Runs `f` once if the client's connection closes before this
    /// request is answered (and the stream, if it becomes one, ends).
    pub fn on_close(&self, f: Box<dyn FnOnce() + Send>) {
        if let Some(c) = &self.conn {
            let mut io = c.io.lock();
            if io.closed {
                drop(io);
                f();
            } else {
                io.on_close.push(f);
            }
        }
    }

    /// Whether the client is still connected (as far as the reactor knows).
    pub fn is_open(&self) -> bool {
        self.conn.as_ref().is_some_and(|c| !c.io.lock().closed)
    }

    /// Sends a complete response (head and body in one write where the
    /// socket takes it).
    pub fn send(mut self, resp: Response) {
        if let Some(c) = self.conn.take() {
            send_on(&c, self.seq, &resp);
        }
    }

    /// Starts a streamed response (chunked, for Server-Sent Events and
    /// the like) with these headers; `Content-Type` is up to the caller.
    pub fn stream(mut self, status: u16, headers: &[(&'static str, String)], opts: StreamOpts) -> Stream {
        let Some(c) = self.conn.take() else {
            return Stream { conn: None };
        };
        let ok = {
            let mut io = c.io.lock();
            if io.closed || io.seq != self.seq || io.phase != Phase::Busy {
                false
            } else {
                write_head(&mut io.out, status, headers, None, false);
                io.phase = Phase::Streaming;
                let corked = opts.cork.is_some_and(|d| c.shared.cork(c.token, c.id, d));
                // Streams opened in the same second would otherwise get their
                // keep-alives in the same sweep, every time: 10 000 of them
                // are 10 000 writes in one turn of the reactor, a stall for
                // every request behind it. A phase per connection spreads
                // them over the period (the first one comes early, never late).
                let secs = opts.keepalive_every.as_secs().max(1);
                let phase = Duration::from_secs(c.id % secs);
                let now = Instant::now();
                io.stream = Some(StreamState {
                    chunked: true,
                    corked,
                    keepalive: opts.keepalive,
                    every: opts.keepalive_every,
                    last_write: now.checked_sub(phase).unwrap_or(now),
                    max_backlog: opts.max_backlog,
                });
                corked || io.flush().is_ok()
            }
        };
        if !ok {
            c.close();
            return Stream { conn: None };
        }
        Stream { conn: Some(c) }
    }
}

fn send_on(c: &Arc<Conn>, seq: u64, resp: &Response) {
    let (written, resume, _answered) = {
        let mut io = c.io.lock();
        let written = io.respond(seq, resp);
        let resume = written && !io.closing && (!io.inbuf.is_empty() || io.read_paused);
        let closed_now = written && io.closing && io.backlog() == 0;
        // The request is answered: its close hooks no longer apply (on a
        // keep-alive connection they would pile up, one per request).
        // Dropped after the lock: a hook may own the last reference to
        // something that locks this connection as it goes.
        let answered = if written { std::mem::take(&mut io.on_close) } else { Vec::new() };
        (if closed_now { None } else { Some(written) }, resume, answered)
    };
    match written {
        None => c.notify(Notice::Close),
        Some(_) if resume => c.notify(Notice::Resume),
        Some(_) => {}
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take() {
            let body =
                b"{\"error\":{\"code\":500,\"message\":\"the request was dropped without an answer\"}}\n".to_vec();
            send_on(&c, self.seq, &Response::json(500, body));
        }
    }
}

/// An open streamed response. Any thread may send on it; sends never
/// block: what the socket does not take is buffered up to the stream's
/// bound. Dropping it closes the connection; [`Stream::finish`] ends the
/// response cleanly so the connection can serve another request.
pub struct Stream {
    conn: Option<Arc<Conn>>,
}

impl Stream {
    /// Sends bytes (one chunk). `Err` if the client is gone or too far
    /// behind; the stream is then closed.
    pub fn send(&self, data: &[u8]) -> Result<(), StreamClosed> {
        self.send_or_hold(data, false)
    }

    /// Like [`Stream::send`], but a corked stream keeps the bytes until it
    /// is uncorked or finished (see [`StreamOpts::cork`]).
    pub fn hold(&self, data: &[u8]) -> Result<(), StreamClosed> {
        self.send_or_hold(data, true)
    }

    fn send_or_hold(&self, data: &[u8], hold: bool) -> Result<(), StreamClosed> {
        let Some(c) = &self.conn else { return Err(StreamClosed) };
        let r = {
            let mut io = c.io.lock();
            let behind = io.stream.as_ref().is_some_and(|s| io.backlog() > s.max_backlog);
            if io.closed || io.phase != Phase::Streaming || behind {
                Err(StreamClosed)
            } else {
                io.send_stream_bytes(data, hold)
            }
        };
        if r.is_err() {
            c.close();
        }
        r
    }

    pub fn is_open(&self) -> bool {
        self.conn.as_ref().is_some_and(|c| {
            let io = c.io.lock();
            !io.closed && io.phase == Phase::Streaming
        })
    }

    /// Bytes sent but not yet taken by the client's socket.
    pub fn backlog(&self) -> usize {
        self.conn.as_ref().map_or(0, |c| c.io.lock().backlog())
    }

    /// Runs `f` once when the stream's connection closes.
    pub fn on_close(&self, f: Box<dyn FnOnce() + Send>) {
        match &self.conn {
            Some(c) => {
                let mut io = c.io.lock();
                if io.closed {
                    drop(io);
                    f();
                } else {
                    io.on_close.push(f);
                }
            }
            None => f(),
        }
    }

    /// Ends the response (the last chunk); the connection stays open for
    /// the client's next request unless it asked to close.
    pub fn finish(mut self) {
        let Some(c) = self.conn.take() else { return };
        let mut answered = Vec::new();
        let (ok, resume, close) = {
            let mut io = c.io.lock();
            if io.closed || io.phase != Phase::Streaming {
                (false, false, false)
            } else {
                // The response is complete: its close hooks no longer apply.
                answered = std::mem::take(&mut io.on_close);
                io.out.extend_from_slice(b"0\r\n\r\n");
                io.stream = None;
                io.phase = Phase::Head;
                io.since = Instant::now();
                let close = !io.keep_alive;
                io.closing = close;
                let ok = io.flush().is_ok();
                let resume = !close && (!io.inbuf.is_empty() || io.read_paused);
                (ok, resume, close && io.backlog() == 0)
            }
        };
        drop(answered);
        if !ok || close {
            c.close();
        } else if resume {
            c.notify(Notice::Resume);
        }
    }

    /// Closes the stream and its connection now.
    pub fn close(mut self) {
        if let Some(c) = self.conn.take() {
            c.close();
        }
    }

    /// An identity for comparing streams (same connection).
    pub fn same(&self, other: &Stream) -> bool {
        match (&self.conn, &other.conn) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take() {
            c.close();
        }
    }
}
