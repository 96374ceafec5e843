//! A stdio backend's outbox: the thread that sends a message writes it to
//! the child's stdin itself, non-blocking, so a call costs no wake of
//! another thread. Inside a reactor's batch ([`crate::thread::batch`]) the
//! messages of one round of requests are gathered and written together at
//! its end (one write, one wake of the child, however many requests came
//! at once). Only what the pipe does not take waits, in a backlog bounded
//! in bytes, for the `backend:<n>:writer` thread, which writes it as the
//! child reads.

use super::conn::{Conn, Outbox, OutboxError, Outgoing};
use crossbeam_channel::{bounded, Receiver, Sender, TryRecvError};
use parking_lot::Mutex;
use std::io::{self, IoSlice, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::process::ChildStdin;
use std::sync::Arc;
use std::time::Duration;

/// Bytes a child that stopped reading may have waiting before messages
/// are refused (one message is always taken whole while below it).
const MAX_BACKLOG: usize = 16 * 1024 * 1024;
/// A drained backlog keeps at most this much capacity.
const KEEP_CAPACITY: usize = 64 * 1024;
/// How often a writer waiting for the pipe looks whether it should stop.
const POLL_SLICE: Duration = Duration::from_millis(200);

struct State {
    /// `None` once the outbox is dropped: the child sees EOF.
    stdin: Option<ChildStdin>,
    backlog: Vec<u8>,
    /// How much of `backlog` is written.
    done: usize,
    /// A write failed on a sending thread; the writer reports it (the
    /// closer it runs may wait for the child, which the sender must not).
    failed: Option<String>,
    /// A write of the backlog is deferred to the end of the sender's batch.
    scheduled: bool,
}

struct Shared {
    state: Mutex<State>,
    fd: RawFd,
}

/// Given to [`Conn::with_outbox`]; dropping it closes the child's stdin.
pub struct PipeOut {
    shared: Arc<Shared>,
    wake: Sender<()>,
}

/// The writer's half: run [`Writer::run`] on its own thread.
pub struct Writer {
    shared: Arc<Shared>,
    wake: Receiver<()>,
}

/// Makes `stdin` non-blocking and splits it into the outbox and its writer.
pub fn open(stdin: ChildStdin) -> io::Result<(PipeOut, Writer)> {
    let fd = stdin.as_raw_fd();
    set_nonblocking(fd)?;
    let shared = Arc::new(Shared {
        state: Mutex::new(State { stdin: Some(stdin), backlog: Vec::new(), done: 0, failed: None, scheduled: false }),
        fd,
    });
    let (tx, rx) = bounded(1);
    Ok((PipeOut { shared: shared.clone(), wake: tx }, Writer { shared, wake: rx }))
}

impl Outbox for PipeOut {
    fn send(&self, msg: Outgoing) -> Result<(), OutboxError> {
        let batched = crate::thread::in_batch();
        let mut st = self.shared.state.lock();
        let State { stdin, backlog, done, failed, scheduled } = &mut *st;
        let Some(stdin) = stdin.as_mut() else { return Err(OutboxError::Closed) };
        if failed.is_some() {
            return Err(OutboxError::Closed);
        }
        let pending = backlog.len() - *done;
        if pending > 0 || batched {
            if pending >= MAX_BACKLOG {
                return Err(OutboxError::Full(format!("{pending} bytes queued")));
            }
            backlog.extend_from_slice(&msg.bytes);
            backlog.push(b'\n');
            if batched && !*scheduled {
                *scheduled = true;
                drop(st);
                let (shared, wake) = (self.shared.clone(), self.wake.clone());
                if let Err(now) = crate::thread::defer(Box::new(move || flush(&shared, &wake))) {
                    now();
                }
            }
            return Ok(());
        }
        match write_now(stdin, &msg.bytes) {
            Ok(n) if n == msg.bytes.len() + 1 => return Ok(()),
            Ok(n) => {
                backlog.clear();
                *done = 0;
                if n < msg.bytes.len() {
                    backlog.extend_from_slice(&msg.bytes[n..]);
                }
                backlog.push(b'\n');
            }
            Err(e) => *failed = Some(e.to_string()),
        }
        drop(st);
        // Full: the writer is told once; it drains until the backlog is empty.
        let _ = self.wake.try_send(());
        Ok(())
    }
}

impl Drop for PipeOut {
    fn drop(&mut self) {
        self.shared.state.lock().stdin.take();
    }
}

/// The end of a batch: writes what it gathered, and leaves what the pipe
/// does not take (or a failure) to the writer thread.
fn flush(shared: &Shared, wake: &Sender<()>) {
    let mut st = shared.state.lock();
    st.scheduled = false;
    let State { stdin, backlog, done, failed, .. } = &mut *st;
    let Some(stdin) = stdin.as_mut() else { return };
    if failed.is_none() {
        match write_backlog(stdin, backlog, done) {
            Ok(true) => return,
            Ok(false) => {}
            Err(e) => *failed = Some(e),
        }
    }
    drop(st);
    let _ = wake.try_send(());
}

/// Writes as much of the backlog as the pipe takes now; `Ok(true)` once it
/// is all written (the backlog is then emptied).
fn write_backlog(stdin: &mut ChildStdin, backlog: &mut Vec<u8>, done: &mut usize) -> Result<bool, String> {
    while *done < backlog.len() {
        match stdin.write(&backlog[*done..]) {
            Ok(0) => return Err("write returned 0".into()),
            Ok(k) => *done += k,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    backlog.clear();
    backlog.shrink_to(KEEP_CAPACITY);
    *done = 0;
    Ok(true)
}

/// Writes `msg` and its newline with as few syscalls as the pipe allows;
/// returns how much was written (short when the pipe is full).
fn write_now(w: &mut ChildStdin, msg: &[u8]) -> io::Result<usize> {
    let total = msg.len() + 1;
    let mut n = 0;
    while n < total {
        let r = if n < msg.len() {
            w.write_vectored(&[IoSlice::new(&msg[n..]), IoSlice::new(b"\n")])
        } else {
            w.write(b"\n")
        };
        match r {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

impl Writer {
    /// Drains the backlog whenever a sender leaves one; ends when the
    /// outbox is dropped or a write fails (then the connection dies).
    pub fn run(self, conn: &Conn) {
        while self.wake.recv().is_ok() {
            if let Err(e) = self.drain() {
                conn.died(&format!("writing to its stdin failed: {e}"));
                return;
            }
        }
    }

    fn drain(&self) -> Result<(), String> {
        loop {
            {
                let mut st = self.shared.state.lock();
                let State { stdin, backlog, done, failed, .. } = &mut *st;
                if let Some(e) = failed.take() {
                    return Err(e);
                }
                let Some(stdin) = stdin.as_mut() else { return Ok(()) };
                if write_backlog(stdin, backlog, done)? {
                    return Ok(());
                }
            }
            // The pipe is full: wait for room without the lock, so senders
            // can queue meanwhile; stop when the outbox is gone.
            if matches!(self.wake.try_recv(), Err(TryRecvError::Disconnected)) {
                return Ok(());
            }
            wait_writable(self.shared.fd, POLL_SLICE);
        }
    }
}

fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor we own (the ChildStdin is alive), with
    // flag arguments only.
    #[allow(unsafe_code)]
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Waits until `fd` can be written (or an error/hang-up, which the next
/// write reports), at most `max`.
fn wait_writable(fd: RawFd, max: Duration) {
    let mut pfd = libc::pollfd { fd, events: libc::POLLOUT, revents: 0 };
    let ms = libc::c_int::try_from(max.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: one valid pollfd and its count. The descriptor stays open
    // while a `Writer` exists only as long as the ChildStdin does; after the
    // outbox dropped it, a poll on a closed (or reused) descriptor returns
    // at once or after `max`, and the next loop sees the outbox gone.
    #[allow(unsafe_code)]
    unsafe {
        libc::poll(&mut pfd, 1, ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::process::{Command, Stdio};

    fn msg(bytes: &[u8]) -> Outgoing {
        Outgoing { bytes: bytes.to_vec(), request_id: None, headers: None }
    }

    /// What the pipe does not take at once waits in order and reaches the
    /// child as it reads.
    #[test]
    fn a_full_pipe_keeps_order() {
        let mut child = Command::new("cat").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
        let (out, writer) = open(child.stdin.take().unwrap()).unwrap();
        let w = std::thread::spawn(move || {
            while writer.wake.recv().is_ok() {
                writer.drain().unwrap();
            }
        });
        // Each message is larger than a pipe holds, so most of it waits.
        let mut want = Vec::new();
        for i in 0..4u8 {
            let big = vec![b'a' + i; 256 * 1024];
            assert!(out.send(msg(&big)).is_ok());
            want.extend_from_slice(&big);
            want.push(b'\n');
        }
        assert!(out.send(msg(b"last")).is_ok());
        want.extend_from_slice(b"last\n");
        let mut got = vec![0; want.len()];
        child.stdout.take().unwrap().read_exact(&mut got).unwrap();
        assert!(got == want, "bytes out of order");
        drop(out);
        w.join().unwrap();
        assert!(child.wait().unwrap().success(), "cat saw EOF");
    }

    /// Inside a batch, messages wait for its end and then leave together.
    #[test]
    fn a_batch_writes_once_at_its_end() {
        let mut child = Command::new("cat").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
        let (out, _writer) = open(child.stdin.take().unwrap()).unwrap();
        crate::thread::batch(|| {
            for m in [&b"one"[..], b"two", b"three"] {
                assert!(out.send(msg(m)).is_ok());
            }
            assert_eq!(out.shared.state.lock().backlog, b"one\ntwo\nthree\n", "held until the batch ends");
        });
        assert!(out.shared.state.lock().backlog.is_empty(), "written at the end of the batch");
        let mut got = vec![0; 14];
        child.stdout.take().unwrap().read_exact(&mut got).unwrap();
        assert_eq!(got, b"one\ntwo\nthree\n");
        drop(out);
        let _ = child.wait();
    }

    /// A child that never reads gets at most the bound queued; then its
    /// messages are refused, saying how much waits.
    #[test]
    fn a_child_that_does_not_read_is_bounded() {
        let mut child = Command::new("sleep").arg("30").stdin(Stdio::piped()).spawn().unwrap();
        let (out, _writer) = open(child.stdin.take().unwrap()).unwrap();
        let chunk = vec![b'x'; 1024 * 1024];
        let mut accepted = 0;
        let refused = loop {
            match out.send(msg(&chunk)) {
                Ok(()) => accepted += 1,
                Err(OutboxError::Full(queued)) => break queued,
                Err(OutboxError::Closed) => panic!("closed"),
            }
            assert!(accepted < 64, "never refused");
        };
        assert!(accepted >= MAX_BACKLOG / chunk.len(), "{accepted}");
        assert!(refused.ends_with("bytes queued"), "{refused}");
        let _ = child.kill();
        let _ = child.wait();
    }
}
