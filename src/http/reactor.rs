//! The reactor: one thread per listener that accepts connections, reads
//! and parses requests, calls the handler, sends what responders could not
//! write at once, and enforces the listener's bounds and timeouts. See the
//! module documentation of [`crate::http`].

use super::conn::{closing_response, Conn, ReadOutcome, Ready, Responder, Writable};
use super::shared::{Notice, Shared};
use super::{Handler, Limits, Request};
use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
const FIRST_CONN: usize = 2;
/// How often timeouts and keep-alives are checked.
const SWEEP: Duration = Duration::from_secs(1);
/// Worker threads for requests with large bodies, and their queue.
const WORKERS: usize = 2;
const WORK_QUEUE: usize = 32;
/// Scratch space for one socket read.
const SCRATCH: usize = 64 * 1024;

/// A bound listener, not yet serving (its port is known before the
/// handler is built: the management token file is named after it).
pub struct Bound {
    listener: TcpListener,
    pub addr: SocketAddr,
}

/// Binds `listen` (`host:port`; port 0 picks a free one).
pub fn bind(listen: &str) -> Result<Bound, String> {
    let addrs: Vec<SocketAddr> =
        listen.to_socket_addrs().map_err(|e| format!("cannot listen on {listen}: {e}"))?.collect();
    let mut last = None;
    for a in addrs {
        match TcpListener::bind(a) {
            Ok(l) => {
                let addr = l.local_addr().map_err(|e| format!("cannot listen on {listen}: {e}"))?;
                return Ok(Bound { listener: l, addr });
            }
            Err(e) => last = Some(e),
        }
    }
    Err(match last {
        Some(e) => format!("cannot listen on {listen}: {e}"),
        None => format!("cannot listen on {listen}: no address"),
    })
}

/// A running listener.
pub struct Server {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    alive: Arc<AtomicBool>,
}

impl Server {
    /// Stops accepting; connections with a request in progress finish.
    pub fn stop(&self) {
        self.shared.stopping.store(true, Ordering::Release);
        let _ = self.shared.waker.wake();
    }

    /// False once the reactor thread has ended (a listener that is down).
    pub fn alive(&self) -> Arc<AtomicBool> {
        self.alive.clone()
    }

    /// Open connections now.
    pub fn connections(&self) -> usize {
        self.shared.open.load(Ordering::Relaxed)
    }
}

impl Bound {
    /// Starts the reactor thread `<name>-io` (and its two workers).
    pub fn serve(
        self,
        name: &str,
        limits: Limits,
        tls: Option<Arc<rustls::ServerConfig>>,
        handler: Arc<dyn Handler>,
    ) -> Result<Server, String> {
        let Bound { mut listener, addr } = self;
        let poll = Poll::new().map_err(|e| format!("{name}: cannot create a poller: {e}"))?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)
            .map_err(|e| format!("{name}: cannot watch the listener: {e}"))?;
        let waker = Waker::new(poll.registry(), WAKER).map_err(|e| format!("{name}: cannot create a waker: {e}"))?;
        let shared = Arc::new(Shared {
            limits,
            waker,
            notices: Mutex::new(Vec::new()),
            stopping: AtomicBool::new(false),
            open: AtomicUsize::new(0),
            fd_refusals: AtomicU64::new(0),
            reactor: std::sync::OnceLock::new(),
            corked: Mutex::new(std::collections::VecDeque::new()),
        });
        let (work_tx, work_rx) = bounded::<(Request, Responder)>(WORK_QUEUE);
        for i in 0..WORKERS {
            let (rx, h) = (work_rx.clone(), handler.clone());
            crate::thread::spawn(format!("{name}-work:{i}"), move || {
                work_loop(&rx, h.as_ref());
                Ok(())
            })
            .map_err(|e| format!("{name}: cannot start a worker thread: {e}"))?;
        }
        let alive = Arc::new(AtomicBool::new(true));
        let mut reactor = Reactor {
            poll,
            listener: Some(listener),
            slots: Vec::new(),
            free: Vec::new(),
            per_ip: HashMap::new(),
            next_id: 0,
            shared: shared.clone(),
            handler,
            tls,
            work_tx,
            reserve_fd: std::fs::File::open("/dev/null").ok(),
            accept_paused_until: None,
            last_fd_warning: None,
            name: name.to_owned(),
        };
        let alive2 = alive.clone();
        log::debug!("{name}: serving {addr} with {:?}", shared.limits);
        crate::thread::spawn(format!("{name}-io"), move || {
            let r = reactor.run();
            alive2.store(false, Ordering::Release);
            r
        })
        .map_err(|e| format!("{name}: cannot start the reactor thread: {e}"))?;
        Ok(Server { addr, shared, alive })
    }
}

fn work_loop(rx: &Receiver<(Request, Responder)>, handler: &dyn Handler) {
    while let Ok((req, res)) = rx.recv() {
        let path = req.path().to_owned();
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler.handle(req, res))).is_err() {
            log::error!("request handler for {} panicked", crate::util::printable(&path, 200));
        }
    }
}

struct Slot {
    conn: Arc<Conn>,
    id: u64,
}

struct Reactor {
    poll: Poll,
    listener: Option<TcpListener>,
    slots: Vec<Option<Slot>>,
    free: Vec<usize>,
    per_ip: HashMap<IpAddr, usize>,
    next_id: u64,
    shared: Arc<Shared>,
    handler: Arc<dyn Handler>,
    tls: Option<Arc<rustls::ServerConfig>>,
    work_tx: Sender<(Request, Responder)>,
    /// Kept open so that, out of descriptors, one can be freed to accept
    /// and refuse a waiting connection instead of leaving it queued.
    reserve_fd: Option<std::fs::File>,
    accept_paused_until: Option<Instant>,
    last_fd_warning: Option<Instant>,
    name: String,
}

impl Reactor {
    fn run(&mut self) -> Result<(), String> {
        let mut events = Events::with_capacity(1024);
        let mut scratch = vec![0u8; SCRATCH];
        let mut next_sweep = Instant::now() + SWEEP;
        let mut stopped = false;
        let _ = self.shared.reactor.set(std::thread::current().id());
        loop {
            let wake_at = match self.shared.corked.lock().front() {
                Some(&(_, _, at)) => at.min(next_sweep),
                None => next_sweep,
            };
            let timeout = wake_at.saturating_duration_since(Instant::now());
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(format!("{}: poll failed: {e}", self.name));
            }
            // One batch per round: what the handlers send to a stdio
            // backend leaves in one write at its end (thread::batch).
            crate::thread::batch(|| {
                for ev in events.iter() {
                    match ev.token() {
                        LISTENER => self.accept_all(),
                        WAKER => {}
                        Token(t) => {
                            if ev.is_writable() {
                                self.writable(t, &mut scratch);
                            }
                            if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                                self.readable(t, &mut scratch, ev.is_read_closed() || ev.is_error());
                            }
                        }
                    }
                }
                self.notices(&mut scratch);
            });
            self.uncork_due();
            if !stopped && self.shared.stopping.load(Ordering::Acquire) {
                stopped = true;
                self.stop_accepting();
            }
            let now = Instant::now();
            if now >= next_sweep {
                next_sweep = now + SWEEP;
                self.sweep(now);
                if self.accept_paused_until.is_some_and(|t| now >= t) {
                    self.accept_paused_until = None;
                    self.accept_all();
                }
            }
        }
    }

    fn conn(&self, t: usize) -> Option<(Arc<Conn>, u64)> {
        self.slots.get(t.checked_sub(FIRST_CONN)?)?.as_ref().map(|s| (s.conn.clone(), s.id))
    }

    fn readable(&mut self, t: usize, scratch: &mut [u8], closing: bool) {
        let Some((conn, _)) = self.conn(t) else { return };
        let outcome = conn.read(scratch, &|h| self.handler.body_limit(h), closing);
        self.serve(t, conn, outcome, scratch);
    }

    /// Acts on what a read produced, then keeps serving requests already
    /// buffered (pipelined) for as long as each is answered at once.
    fn serve(&mut self, t: usize, conn: Arc<Conn>, mut outcome: ReadOutcome, scratch: &mut [u8]) {
        loop {
            match outcome {
                ReadOutcome::Wait => return,
                ReadOutcome::Close => return self.close(t),
                ReadOutcome::Refuse(e) => {
                    if !conn.refuse(&self.handler.refusal(e.status, e.message)) {
                        self.close(t);
                    }
                    return;
                }
                ReadOutcome::TooLarge(head, id) => {
                    if !conn.refuse(&self.handler.too_large(&head, id.as_deref())) {
                        self.close(t);
                    }
                    return;
                }
                ReadOutcome::Request(ready) => self.dispatch(&conn, ready),
            }
            outcome = conn.resume(scratch, &|h| self.handler.body_limit(h));
        }
    }

    fn dispatch(&mut self, conn: &Arc<Conn>, ready: Ready) {
        let Ready { head, body, seq } = ready;
        let res = Responder::new(conn.clone(), seq);
        if self.shared.stopping.load(Ordering::Acquire) {
            let body = b"{\"error\":{\"code\":503,\"message\":\"the server is shutting down\"}}\n".to_vec();
            res.send(super::Response::json(503, body).with_header("Connection", "close"));
            return;
        }
        let req = Request { head, body, remote: conn.remote, local: conn.local, identity: None };
        if req.body.len() > self.shared.limits.large_body {
            match self.work_tx.try_send((req, res)) {
                Ok(()) => {}
                Err(TrySendError::Full((_, res)) | TrySendError::Disconnected((_, res))) => {
                    let body = b"{\"error\":{\"code\":503,\"message\":\"too many large requests at once\"}}\n".to_vec();
                    res.send(super::Response::json(503, body).with_header("Retry-After", "1"));
                }
            }
            return;
        }
        let path = req.path().to_owned();
        let handler = &self.handler;
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler.handle(req, res))).is_err() {
            log::error!("{}: request handler for {} panicked", self.name, crate::util::printable(&path, 200));
        }
    }

    fn writable(&mut self, t: usize, scratch: &mut [u8]) {
        let Some((conn, _)) = self.conn(t) else { return };
        match conn.on_writable() {
            Writable::Wait => {}
            Writable::Close => self.close(t),
            Writable::Resume => {
                let outcome = conn.resume(scratch, &|h| self.handler.body_limit(h));
                self.serve(t, conn, outcome, scratch);
            }
        }
    }

    /// Sends what corked streams held once their deadline passed (most
    /// have finished long before, and this does nothing for them).
    fn uncork_due(&mut self) {
        let now = Instant::now();
        loop {
            let due = {
                let mut corked = self.shared.corked.lock();
                match corked.front() {
                    Some(&(_, _, at)) if at <= now => corked.pop_front(),
                    _ => None,
                }
            };
            let Some((Token(t), id, _)) = due else { return };
            if let Some((conn, slot_id)) = self.conn(t) {
                if slot_id == id {
                    conn.uncork();
                }
            }
        }
    }

    fn notices(&mut self, scratch: &mut [u8]) {
        let list = std::mem::take(&mut *self.shared.notices.lock());
        for (Token(t), id, n) in list {
            let Some((conn, slot_id)) = self.conn(t) else { continue };
            // A notice for a slot reused by a newer connection is stale.
            if slot_id != id {
                continue;
            }
            match n {
                Notice::Close => self.close(t),
                Notice::Resume => {
                    let outcome = conn.resume(scratch, &|h| self.handler.body_limit(h));
                    self.serve(t, conn, outcome, scratch);
                }
            }
        }
    }

    fn close(&mut self, t: usize) {
        let Some(i) = t.checked_sub(FIRST_CONN) else { return };
        let Some(slot) = self.slots.get_mut(i).and_then(Option::take) else { return };
        self.free.push(i);
        self.shared.open.fetch_sub(1, Ordering::Relaxed);
        let ip = slot.conn.remote.ip();
        if let Some(n) = self.per_ip.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.per_ip.remove(&ip);
            }
        }
        let (hooks, sock) = slot.conn.take_for_close();
        if let Some(mut s) = sock {
            let _ = self.poll.registry().deregister(&mut s);
        }
        for h in hooks {
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(h)).is_err() {
                log::error!("{}: a connection close hook panicked", self.name);
            }
        }
    }

    fn sweep(&mut self, now: Instant) {
        let dead: Vec<usize> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().filter(|s| !s.conn.sweep(now)).map(|_| i + FIRST_CONN))
            .collect();
        for t in dead {
            self.close(t);
        }
    }

    fn stop_accepting(&mut self) {
        if let Some(mut l) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut l);
        }
        // Idle connections go now; those serving a request finish it.
        let idle: Vec<usize> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().filter(|s| s.conn.evictable().is_some()).map(|_| i + FIRST_CONN))
            .collect();
        for t in idle {
            self.close(t);
        }
    }

    fn accept_all(&mut self) {
        if self.accept_paused_until.is_some() {
            return;
        }
        let mut errors = 0;
        loop {
            let Some(l) = self.listener.as_ref() else { return };
            match l.accept() {
                Ok((sock, addr)) => self.admit(sock, addr),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if is_out_of_fds(&e) => {
                    if !self.refuse_without_fds() {
                        // Try again shortly rather than spin.
                        self.accept_paused_until = Some(Instant::now() + Duration::from_millis(100));
                        return;
                    }
                }
                Err(e) => {
                    errors += 1;
                    if errors > 64 {
                        log::warn!("{}: accept keeps failing: {e}", self.name);
                        self.accept_paused_until = Some(Instant::now() + Duration::from_millis(100));
                        return;
                    }
                }
            }
        }
    }

    /// Out of descriptors: frees the reserve one to accept a waiting
    /// connection and refuse it with 503, so the client learns at once and
    /// the queue drains. False if even that failed.
    fn refuse_without_fds(&mut self) -> bool {
        self.shared.fd_refusals.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        if self.last_fd_warning.is_none_or(|t| now.duration_since(t) > Duration::from_secs(10)) {
            self.last_fd_warning = Some(now);
            log::warn!(
                "{}: out of file descriptors ({} connections open); refusing new connections until some close",
                self.name,
                self.shared.open.load(Ordering::Relaxed)
            );
        }
        let Some(reserve) = self.reserve_fd.take() else { return false };
        drop(reserve);
        let refused = match self.listener.as_ref().map(TcpListener::accept) {
            Some(Ok((sock, _))) => {
                let r = self.handler.refusal(503, "out of file descriptors; try again shortly");
                reject(sock, self.tls.is_some(), &r);
                true
            }
            _ => false,
        };
        self.reserve_fd = std::fs::File::open("/dev/null").ok();
        refused && self.reserve_fd.is_some()
    }

    fn admit(&mut self, sock: TcpStream, remote: SocketAddr) {
        let _ = sock.set_nodelay(true);
        let limits = self.shared.clone();
        let limits = &limits.limits;
        let ip = remote.ip();
        let count = self.shared.open.load(Ordering::Relaxed);
        if count >= limits.max_connections && !self.evict(None) {
            let r = self.handler.refusal(503, "too many connections");
            return reject(sock, self.tls.is_some(), &r);
        }
        if !ip.is_loopback() && self.per_ip.get(&ip).copied().unwrap_or(0) >= limits.max_per_ip && !self.evict(Some(ip))
        {
            let r = self.handler.refusal(503, "too many connections from this address");
            return reject(sock, self.tls.is_some(), &r);
        }
        let local = sock.local_addr().unwrap_or(remote);
        let tls = match &self.tls {
            None => None,
            Some(cfg) => match rustls::ServerConnection::new(cfg.clone()) {
                Ok(c) => Some(Box::new(c)),
                Err(e) => {
                    log::warn!("{}: TLS setup failed: {e}", self.name);
                    return;
                }
            },
        };
        let i = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(None);
                self.slots.len() - 1
            }
        };
        let token = Token(i + FIRST_CONN);
        let mut sock = sock;
        if let Err(e) = self.poll.registry().register(&mut sock, token, Interest::READABLE | Interest::WRITABLE) {
            log::warn!("{}: cannot watch a connection: {e}", self.name);
            self.free.push(i);
            return;
        }
        self.next_id += 1;
        let conn = Arc::new(Conn::new(token, self.next_id, sock, tls, remote, local, self.shared.clone()));
        self.slots[i] = Some(Slot { conn, id: self.next_id });
        self.shared.open.fetch_add(1, Ordering::Relaxed);
        *self.per_ip.entry(ip).or_insert(0) += 1;
    }

    /// Closes the oldest connection that has no request in progress (of
    /// `ip` only, if given). False if there is none.
    fn evict(&mut self, ip: Option<IpAddr>) -> bool {
        let victim = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                let s = s.as_ref()?;
                if ip.is_some_and(|ip| s.conn.remote.ip() != ip) {
                    return None;
                }
                Some((s.conn.evictable()?, i))
            })
            .min();
        match victim {
            Some((_, i)) => {
                self.close(i + FIRST_CONN);
                true
            }
            None => false,
        }
    }
}

/// Refuses a connection that cannot be admitted: a 503 on plain HTTP (a
/// TLS client would need a handshake first, so it is just closed).
fn reject(sock: TcpStream, tls: bool, resp: &super::Response) {
    if !tls {
        let bytes = closing_response(&resp.clone().with_header("Retry-After", "1"));
        let _ = (&sock).write(&bytes);
    }
    let _ = sock.shutdown(std::net::Shutdown::Both);
}

fn is_out_of_fds(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE))
}
