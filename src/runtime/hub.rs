//! What backends send that belongs to no call in flight, routed to client
//! sessions ([`crate::route::Hub`]): log messages to every session whose
//! level admits them, resource updates to the sessions subscribed to the
//! URI, and requests (`roots/list` between calls, say) to the one session
//! that can answer them. Also the subscription table: one subscription per
//! URI at the owning backend, however many sessions hold it.

use super::Runtime;
use crate::codec::jsonrpc::{self, Raw};
use crate::codec::mcp::method;
use crate::codec::{code, ErrorObj, Message};
use crate::route::{Answer, ClientCap, ClientLink, Hub};
use crate::session::Session;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

/// Most URIs subscribed at once across the gateway (each costs a map entry
/// and a subscription at a backend).
pub const MAX_SUBSCRIPTIONS: usize = 10_000;

struct Sub {
    backend: Arc<str>,
    sessions: Vec<Arc<str>>,
}

/// URI → the backend that owns it and the sessions subscribed.
#[derive(Default)]
pub struct Subscriptions {
    map: Mutex<HashMap<String, Sub>>,
}

impl Subscriptions {
    /// Records `session`'s subscription; true if it is the URI's first
    /// (the backend must be asked).
    pub fn add(&self, uri: &str, backend: &Arc<str>, session: &Arc<str>) -> bool {
        let mut m = self.map.lock();
        let full = m.len() >= MAX_SUBSCRIPTIONS;
        match m.get_mut(uri) {
            Some(s) => {
                if !s.sessions.contains(session) {
                    s.sessions.push(session.clone());
                }
                false
            }
            // At the bound a new URI is not held (no updates will come).
            None if full => false,
            None => {
                m.insert(uri.to_owned(), Sub { backend: backend.clone(), sessions: vec![session.clone()] });
                true
            }
        }
    }

    /// Drops `session`'s subscription: `Some(true)` if it was the URI's
    /// last (the backend must be told), `None` if it held none.
    pub fn remove(&self, uri: &str, session: &str) -> Option<bool> {
        let mut m = self.map.lock();
        let s = m.get_mut(uri)?;
        let before = s.sessions.len();
        s.sessions.retain(|x| &**x != session);
        if s.sessions.len() == before {
            return None;
        }
        if s.sessions.is_empty() {
            m.remove(uri);
            return Some(true);
        }
        Some(false)
    }

    /// The sessions subscribed to `uri`.
    pub fn subscribers(&self, uri: &str) -> Vec<Arc<str>> {
        self.map.lock().get(uri).map(|s| s.sessions.clone()).unwrap_or_default()
    }

    /// The URIs held at `backend` (to subscribe again after a reconnect).
    pub fn uris_of(&self, backend: &str) -> Vec<String> {
        self.map.lock().iter().filter(|(_, s)| &*s.backend == backend).map(|(u, _)| u.clone()).collect()
    }

    /// Forgets sessions that ended; returns the (URI, backend) pairs that
    /// no session holds any more.
    pub fn prune(&self, live: impl Fn(&str) -> bool) -> Vec<(String, Arc<str>)> {
        let mut m = self.map.lock();
        let mut gone = Vec::new();
        m.retain(|uri, s| {
            s.sessions.retain(|x| live(x));
            if s.sessions.is_empty() {
                gone.push((uri.clone(), s.backend.clone()));
                false
            } else {
                true
            }
        });
        gone
    }

    pub fn len(&self) -> usize {
        self.map.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The runtime as backends' [`Hub`] (weak: backends must not keep it alive).
pub struct RuntimeHub(pub Weak<Runtime>);

impl RuntimeHub {
    fn sessions(&self) -> Vec<Arc<Session>> {
        self.0.upgrade().map(|rt| rt.sessions.all()).unwrap_or_default()
    }
}

impl Hub for RuntimeHub {
    fn notification(&self, backend: &str, msg: &Message) {
        let Some(rt) = self.0.upgrade() else { return };
        let Message::Notification { method: m, params } = msg else { return };
        match m.as_str() {
            method::MESSAGE => {
                let level = params.as_deref().and_then(|p| jsonrpc::get_str(p, "level"));
                let level = level.as_deref().unwrap_or("info");
                let reg = rt.registry();
                for s in rt.sessions.all() {
                    // A client hears only of the backends of its view.
                    let sees = reg.view(s.view.as_deref()).is_some_and(|v| v.includes_backend(backend));
                    if sees && s.is_ready() && s.admits_log(level) {
                        s.notify(msg);
                    }
                }
            }
            method::RESOURCE_UPDATED => {
                let Some(uri) = params.as_deref().and_then(|p| jsonrpc::get_str(p, "uri")) else {
                    return;
                };
                for id in rt.subscriptions.subscribers(&uri) {
                    if let Some(s) = rt.sessions.get(&id) {
                        s.notify(msg);
                    }
                }
            }
            other => {
                log::debug!("backend '{backend}' sent {} outside any call; dropped", crate::util::printable(other, 100))
            }
        }
    }

    fn request(&self, backend: &str, m: &str, params: Option<Raw>, timeout: Duration, answer: Answer) {
        let Some(cap) = ClientCap::of_request(m, params.as_deref()) else {
            return answer(Err(ErrorObj::new(code::METHOD_NOT_FOUND, format!("Method not found: {m}"))));
        };
        let reg = self.0.upgrade().map(|rt| rt.registry()).unwrap_or_default();
        // Only a client whose view holds the backend is asked.
        let sees = |s: &Session| reg.view(s.view.as_deref()).is_some_and(|v| v.includes_backend(backend));
        let mut able: Vec<Arc<Session>> = self
            .sessions()
            .into_iter()
            .filter(|s| sees(s) && s.is_ready() && s.supports(cap) && s.has_stream())
            .collect();
        if cap == ClientCap::Roots && able.len() > 1 {
            // Roots describe where the user works: the most recently
            // active session's are the best answer (the backend cannot say
            // which client it means).
            able.sort_by_key(|s| s.idle_for());
            able.truncate(1);
        }
        match able.as_slice() {
            [one] => {
                one.request(m, params, timeout, answer);
            }
            [] => answer(Err(ErrorObj::new(
                code::METHOD_NOT_FOUND,
                format!(
                    "backend '{backend}' sent {m} outside any call, and no client session that declared '{}' has a \
                     stream open to take it",
                    cap.name()
                ),
            ))),
            several => answer(Err(ErrorObj::new(
                code::INTERNAL_ERROR,
                format!(
                    "backend '{backend}' sent {m} outside any call and {} client sessions could take it; give the \
                     backend \"per_session\": true to give each session its own connection",
                    several.len()
                ),
            ))),
        }
    }

    fn log_level(&self) -> Option<&'static str> {
        self.0.upgrade().and_then(|rt| rt.log_level())
    }

    fn subscriptions(&self, backend: &str) -> Vec<String> {
        self.0.upgrade().map(|rt| rt.subscriptions.uris_of(backend)).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_backend_subscription_per_uri_however_many_sessions() {
        let subs = Subscriptions::default();
        let (b, s1, s2): (Arc<str>, Arc<str>, Arc<str>) = ("b".into(), "s1".into(), "s2".into());
        assert!(subs.add("file:///a", &b, &s1), "first: ask the backend");
        assert!(!subs.add("file:///a", &b, &s2), "second: answered by the gateway");
        assert!(!subs.add("file:///a", &b, &s2), "again: no duplicate");
        assert_eq!(subs.subscribers("file:///a"), vec![s1.clone(), s2.clone()]);
        assert_eq!(subs.remove("file:///a", "s1"), Some(false));
        assert_eq!(subs.remove("file:///a", "s1"), None, "held none");
        assert_eq!(subs.remove("file:///a", "s2"), Some(true), "last: tell the backend");
        assert!(subs.is_empty());
        subs.add("file:///b", &b, &s1);
        subs.add("file:///c", &b, &s2);
        assert_eq!(subs.uris_of("b").len(), 2);
        let gone = subs.prune(|s| s == "s2");
        assert_eq!(gone, vec![("file:///b".to_owned(), b.clone())]);
        assert_eq!(subs.uris_of("b"), vec!["file:///c".to_owned()]);
    }
}
