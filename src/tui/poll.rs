//! The poller: one thread per watched profile (`tui:poll:<profile>`) that
//! asks the server for status, backends, capabilities and new events every
//! interval and sends whole [`Snapshot`]s to the UI, so a slow or dead
//! server never freezes the screen. It also runs the admin operations the
//! user confirmed (reload, reconnect), one at a time, then polls at once so
//! their effect shows.
//!
//! A profile switch drops the [`Poller`] handle: the thread notices at its
//! next wait and exits, and any snapshot it sends meanwhile carries the old
//! generation, which the UI ignores.

use super::Event;
use crate::api::{self, BackendView, Capabilities, EventList, ReconnectResult, ReloadResult, Status};
use crate::client::{Client, ClientError, Target};
use crossbeam_channel::{bounded, select, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// An admin operation the user asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Reload,
    Reconnect(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum OpOk {
    Reload(ReloadResult),
    Reconnect(ReconnectResult),
}

/// An operation's outcome, for the UI.
#[derive(Debug, Clone, PartialEq)]
pub struct Done {
    pub generation: u64,
    /// The profile it ran against (the user may have switched since).
    pub profile: String,
    pub op: Op,
    pub result: Result<OpOk, ClientError>,
}

/// What one poll read from the server.
#[derive(Debug, Clone, PartialEq)]
pub struct Data {
    pub status: Status,
    pub backends: Vec<BackendView>,
    /// Shared with the poller, which refetches only when it may have changed.
    pub capabilities: Arc<Capabilities>,
}

/// One poll's result. It replaces the UI's previous one; the event log is
/// the poller's whole accumulated log, shared, not a delta.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub generation: u64,
    pub at: SystemTime,
    pub result: Result<Data, ClientError>,
    pub events: Arc<Vec<api::Event>>,
}

/// The UI's handle on a poller thread; dropping it stops the thread.
pub struct Poller {
    ops: Sender<Op>,
}

impl Poller {
    /// Queues an operation; false if the thread is gone.
    pub fn run(&self, op: Op) -> bool {
        self.ops.try_send(op).is_ok()
    }
}

/// Starts polling `target`, tagging everything with `generation`.
pub fn spawn(target: Target, generation: u64, interval: Duration, tx: Sender<Event>) -> std::io::Result<Poller> {
    // One slot: the UI allows a single operation in flight.
    let (ops_tx, ops_rx) = bounded(1);
    let name = format!("tui:poll:{}", target.name);
    crate::thread::spawn(name, move || {
        poll_loop(target, generation, interval, &tx, &ops_rx);
        Ok(())
    })?;
    Ok(Poller { ops: ops_tx })
}

fn poll_loop(target: Target, generation: u64, interval: Duration, tx: &Sender<Event>, ops: &Receiver<Op>) {
    let client = Client::new(&target);
    let mut state = PollState::default();
    loop {
        let result = match &client {
            Ok(c) => state.poll(c),
            Err(e) => Err(e.clone()),
        };
        let snap = Snapshot { generation, at: SystemTime::now(), result, events: state.log.events.clone() };
        if tx.send(Event::Snapshot(Box::new(snap))).is_err() {
            return;
        }
        // Wait for the next tick, waking early for an operation; a dropped
        // handle (profile switch, quit) ends the thread.
        select! {
            recv(ops) -> op => match op {
                Ok(op) => {
                    let result = match &client {
                        Ok(c) => run_op(c, &op),
                        Err(e) => Err(e.clone()),
                    };
                    let done = Done { generation, profile: target.name.clone(), op, result };
                    if tx.send(Event::Done(Box::new(done))).is_err() {
                        return;
                    }
                }
                Err(_) => return,
            },
            default(interval) => {}
        }
    }
}

fn run_op(client: &Client, op: &Op) -> Result<OpOk, ClientError> {
    match op {
        Op::Reload => client.reload().map(OpOk::Reload),
        Op::Reconnect(name) => client.reconnect(name).map(OpOk::Reconnect),
    }
}

/// Polls after which capabilities are refetched even if nothing hints at a
/// change (a backend's list_changed may keep every count the same).
const CAPS_MAX_AGE: u32 = 10;

/// What the poller remembers between polls.
#[derive(Default)]
struct PollState {
    log: EventLog,
    caps: Option<(CapsKey, Arc<Capabilities>)>,
    caps_age: u32,
    /// Identifies the server process, to notice a restart.
    server_id: Option<(u32, String)>,
}

/// What, when unchanged, lets the poller reuse the last capabilities.
#[derive(PartialEq)]
struct CapsKey {
    revision: u64,
    counts: api::CapabilityTotals,
    backends: Vec<(String, String, Option<String>)>,
}

impl PollState {
    fn poll(&mut self, client: &Client) -> Result<Data, ClientError> {
        let status = client.status()?;
        let id = (status.server.pid, status.server.started_at.clone());
        if self.server_id.as_ref().is_some_and(|old| *old != id) {
            // A new server process: its event ids start over.
            self.log.reset();
            self.caps = None;
        }
        self.server_id = Some(id);
        let backends = client.backends()?;
        let key = CapsKey {
            revision: status.server.revision,
            counts: status.capabilities.clone(),
            backends: backends.iter().map(|b| (b.name.clone(), b.state.clone(), b.connected_since.clone())).collect(),
        };
        self.caps_age += 1;
        let capabilities = match &self.caps {
            Some((k, c)) if *k == key && self.caps_age < CAPS_MAX_AGE => c.clone(),
            _ => {
                let c = Arc::new(client.capabilities()?);
                self.caps = Some((key, c.clone()));
                self.caps_age = 0;
                c
            }
        };
        self.log.update(status.events.last_id, |after, limit| client.events(after, Some(limit)))?;
        Ok(Data { status, backends, capabilities })
    }
}

/// Events asked for per request.
pub const EVENT_PAGE: u32 = 200;
/// Requests per poll at most; the rest waits for the next poll.
const MAX_PAGES: usize = 10;
/// Events kept, like the server's default ring.
pub const EVENT_CAP: usize = 1000;

/// The events read so far, following the `after` cursor: each request asks
/// for the events after the id of the last one received, so none is read
/// twice and none is skipped; a full page means there may be more.
#[derive(Debug, Default)]
pub struct EventLog {
    pub events: Arc<Vec<api::Event>>,
    /// Id of the newest event received.
    pub cursor: Option<u64>,
}

impl EventLog {
    pub fn reset(&mut self) {
        self.events = Arc::new(Vec::new());
        self.cursor = None;
    }

    /// Fetches what is new. `server_last` is `/status`'s `events.last_id`,
    /// which saves the request when nothing happened.
    pub fn update(
        &mut self,
        server_last: Option<u64>,
        mut fetch: impl FnMut(Option<u64>, u32) -> Result<EventList, ClientError>,
    ) -> Result<(), ClientError> {
        match (server_last, self.cursor) {
            (Some(last), Some(cur)) if last == cur => return Ok(()),
            // Ids went backwards: a restarted server.
            (Some(last), Some(cur)) if last < cur => self.reset(),
            _ => {}
        }
        for _ in 0..MAX_PAGES {
            let page = fetch(self.cursor, EVENT_PAGE)?;
            if let (Some(last), Some(cur)) = (page.last_id, self.cursor) {
                if last < cur {
                    self.reset();
                    continue;
                }
            }
            let returned = page.events.len();
            let mut fresh: Vec<api::Event> =
                page.events.into_iter().filter(|e| self.cursor.is_none_or(|c| e.id > c)).collect();
            fresh.sort_by_key(|e| e.id);
            fresh.dedup_by_key(|e| e.id);
            let (Some(first), Some(newest)) = (fresh.first().map(|e| e.id), fresh.last().map(|e| e.id)) else {
                break;
            };
            let log = Arc::make_mut(&mut self.events);
            if let Some(cur) = self.cursor {
                if first > cur + 1 {
                    log.push(gap_marker(first - cur - 1, cur + 1, &fresh[0].time));
                }
            }
            log.extend(fresh);
            if log.len() > EVENT_CAP {
                let excess = log.len() - EVENT_CAP;
                log.drain(..excess);
            }
            self.cursor = Some(newest);
            let more = returned >= EVENT_PAGE as usize || page.last_id.is_some_and(|l| l > newest);
            if !more {
                break;
            }
        }
        Ok(())
    }
}

/// Stands in the log for events the server's ring dropped before we read
/// them, so the gap is visible rather than silent.
fn gap_marker(missed: u64, first_missed: u64, time: &str) -> api::Event {
    api::Event {
        id: first_missed,
        time: time.to_string(),
        level: "warn".into(),
        kind: "tui.gap".into(),
        backend: None,
        message: format!("{missed} events were dropped by the server's event buffer before they could be read"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::fake::fake_server;
    use crate::client::TokenSource;
    use crossbeam_channel::RecvTimeoutError;
    use std::cell::RefCell;

    fn fixture(name: &str) -> String {
        let path = format!("{}/tests/fixtures/manage/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// Serves the fixtures as a read-only token would see them.
    fn fixture_server() -> String {
        let (url, _seen) = fake_server(1000, |u| {
            let path = u.split('?').next().unwrap_or(u);
            match path {
                "/manage/v1/status" => (200, fixture("status.json")),
                "/manage/v1/backends" => (200, fixture("backends.json")),
                "/manage/v1/capabilities" => (200, fixture("capabilities.json")),
                "/manage/v1/events" => (200, fixture("events.json")),
                "/manage/v1/reload" => (403, fixture("error-403.json")),
                _ => (404, fixture("error-404.json")),
            }
        });
        url
    }

    const WAIT: Duration = Duration::from_secs(10);

    #[test]
    fn poller_thread_snapshots_runs_ops_and_stops() {
        let (tx, rx) = bounded(16);
        let target = Target { name: "fake".into(), url: fixture_server(), token: TokenSource::None, ca_cert: None };
        // A long interval: every snapshot after the first is caused by an op.
        let poller = spawn(target, 7, Duration::from_secs(60), tx).unwrap();
        let Ok(Event::Snapshot(s)) = rx.recv_timeout(WAIT) else { panic!("no snapshot") };
        assert_eq!(s.generation, 7);
        let data = s.result.as_ref().unwrap();
        assert_eq!(data.backends.len(), 4);
        assert_eq!(data.capabilities.tools.len(), 4);
        assert_eq!(s.events.len(), 7);
        assert!(poller.run(Op::Reload));
        let Ok(Event::Done(d)) = rx.recv_timeout(WAIT) else { panic!("no result") };
        assert_eq!((d.generation, d.profile.as_str(), &d.op), (7, "fake", &Op::Reload));
        assert!(matches!(d.result, Err(ClientError::Forbidden(_))));
        // The op is followed by a poll at once, not after the interval.
        let Ok(Event::Snapshot(s)) = rx.recv_timeout(WAIT) else { panic!("no snapshot after the op") };
        assert_eq!(s.events.len(), 7, "no event read twice");
        // Dropping the handle ends the thread, which drops its sender.
        drop(poller);
        assert!(matches!(rx.recv_timeout(WAIT), Err(RecvTimeoutError::Disconnected)));
    }

    #[test]
    fn unreachable_server_gives_error_snapshots() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let (tx, rx) = bounded(16);
        let url = format!("http://127.0.0.1:{port}");
        let target = Target { name: "gone".into(), url, token: TokenSource::None, ca_cert: None };
        let _poller = spawn(target, 0, Duration::from_millis(100), tx).unwrap();
        for _ in 0..2 {
            let Ok(Event::Snapshot(s)) = rx.recv_timeout(WAIT) else { panic!("no snapshot") };
            assert!(matches!(s.result, Err(ClientError::Unreachable(_))));
        }
    }

    fn ev(id: u64) -> api::Event {
        api::Event {
            id,
            time: format!("t{id}"),
            level: "info".into(),
            kind: "k".into(),
            backend: None,
            message: id.to_string(),
        }
    }

    /// A fake server ring holding events `lo..=hi`, honouring after/limit.
    fn ring(lo: u64, hi: u64) -> impl Fn(Option<u64>, u32) -> EventList {
        move |after, limit| {
            let start = after.map_or(lo, |a| (a + 1).max(lo));
            let events: Vec<_> = (start..=hi).take(limit as usize).map(ev).collect();
            EventList { events, last_id: Some(hi) }
        }
    }

    fn ids(log: &EventLog) -> Vec<u64> {
        log.events.iter().filter(|e| e.kind != "tui.gap").map(|e| e.id).collect()
    }

    #[test]
    fn pages_until_caught_up_without_duplicates_or_gaps() {
        let mut log = EventLog::default();
        let calls = RefCell::new(Vec::new());
        let server = ring(1, 450);
        log.update(Some(450), |a, l| {
            calls.borrow_mut().push(a);
            Ok(server(a, l))
        })
        .unwrap();
        assert_eq!(ids(&log), (1..=450).collect::<Vec<_>>());
        assert_eq!(*calls.borrow(), [None, Some(200), Some(400)]);
        assert_eq!(log.cursor, Some(450));
        // Nothing new: no request at all.
        log.update(Some(450), |_, _| panic!("no fetch expected")).unwrap();
        // Three more events.
        let server = ring(1, 453);
        log.update(Some(453), |a, l| Ok(server(a, l))).unwrap();
        assert_eq!(ids(&log).len(), 453);
        assert_eq!(&ids(&log)[450..], [451, 452, 453]);
    }

    #[test]
    fn overlapping_pages_are_deduplicated() {
        let mut log = EventLog::default();
        log.update(None, |_, _| Ok(EventList { events: vec![ev(1), ev(2)], last_id: Some(2) })).unwrap();
        // A server that ignores `after` and repeats itself.
        log.update(None, |_, _| Ok(EventList { events: vec![ev(1), ev(2), ev(3), ev(3)], last_id: Some(3) })).unwrap();
        assert_eq!(ids(&log), [1, 2, 3]);
    }

    #[test]
    fn last_id_of_returned_page_also_works() {
        // A server whose `last_id` is that of the page: a full page still
        // means "ask again".
        let mut log = EventLog::default();
        let hi = 250;
        log.update(None, |a, l| {
            let start = a.map_or(1, |x| x + 1);
            let events: Vec<_> = (start..=hi).take(l as usize).map(ev).collect();
            let last_id = events.last().map(|e| e.id);
            Ok(EventList { events, last_id })
        })
        .unwrap();
        assert_eq!(ids(&log), (1..=250).collect::<Vec<_>>());
    }

    #[test]
    fn dropped_events_leave_a_marker() {
        let mut log = EventLog::default();
        log.update(Some(5), |a, l| Ok(ring(1, 5)(a, l))).unwrap();
        // The ring moved on past what we had: 6..=9 are gone.
        log.update(Some(12), |a, l| Ok(ring(10, 12)(a, l))).unwrap();
        assert_eq!(ids(&log), [1, 2, 3, 4, 5, 10, 11, 12]);
        let gap = log.events.iter().find(|e| e.kind == "tui.gap").unwrap();
        assert!(gap.message.starts_with("4 events were dropped"));
    }

    #[test]
    fn restarted_server_starts_over() {
        let mut log = EventLog::default();
        log.update(Some(100), |a, l| Ok(ring(1, 100)(a, l))).unwrap();
        log.update(Some(3), |a, l| Ok(ring(1, 3)(a, l))).unwrap();
        assert_eq!(ids(&log), [1, 2, 3]);
    }

    #[test]
    fn log_is_capped() {
        let mut log = EventLog::default();
        let server = ring(1, 1500);
        log.update(Some(1500), |a, l| Ok(server(a, l))).unwrap();
        assert_eq!(log.events.len(), EVENT_CAP);
        assert_eq!(log.events.first().map(|e| e.id), Some(501));
        assert_eq!(log.cursor, Some(1500));
    }

    #[test]
    fn at_most_max_pages_per_poll() {
        let mut log = EventLog::default();
        let server = ring(1, 5000);
        let n = RefCell::new(0);
        log.update(Some(5000), |a, l| {
            *n.borrow_mut() += 1;
            Ok(server(a, l))
        })
        .unwrap();
        assert_eq!(*n.borrow(), MAX_PAGES);
        assert_eq!(log.cursor, Some(2000));
    }

    #[test]
    fn fetch_error_keeps_what_was_read() {
        let mut log = EventLog::default();
        log.update(Some(3), |a, l| Ok(ring(1, 3)(a, l))).unwrap();
        let e = log.update(Some(9), |_, _| Err(ClientError::Unreachable("x".into()))).unwrap_err();
        assert_eq!(e, ClientError::Unreachable("x".into()));
        assert_eq!(ids(&log), [1, 2, 3]);
        assert_eq!(log.cursor, Some(3));
    }
}
