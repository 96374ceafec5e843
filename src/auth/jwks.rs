//! The issuer's key set, fetched and cached on one `auth:jwks` thread so
//! that no listener thread ever waits on the network.
//!
//! - At start the thread fetches the set once, then again every
//!   [`PERIODIC`] (a key the issuer withdrew stops being accepted).
//! - A token naming a key the cache does not hold is handed here with a
//!   continuation ([`Jwks::refresh_then`]): the thread refetches, at most
//!   once per [`MIN_INTERVAL`] (a flood of made-up `kid`s costs the issuer
//!   one request per interval), then runs the continuation, which checks
//!   the token again against the new set. The request waits at most one
//!   fetch ([`FETCH_TIMEOUT`]); within the interval it is answered at once,
//!   with 401 if its key is still unknown, and the client may retry.
//! - Fetches: `jwks_url` over https (http only on a loopback host), no
//!   redirects, [`FETCH_TIMEOUT`] for the whole exchange, at most
//!   [`MAX_BODY`] bytes. A failed fetch keeps the previous keys and logs a
//!   warning.

use super::jwt::KeySet;
use crate::config::JwtConfig;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};
use parking_lot::RwLock;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Shortest time between two fetches.
pub const MIN_INTERVAL: Duration = Duration::from_secs(10);
/// The set is refetched this often anyway.
pub const PERIODIC: Duration = Duration::from_secs(15 * 60);
/// Bound of one fetch (connect, TLS, headers and body).
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest key set read.
pub const MAX_BODY: u64 = 1 << 20;
/// Requests waiting for a refetch at most; more are answered at once.
const MAX_WAITING: usize = 256;

/// What runs after a refetch (on the `auth:jwks` thread).
pub type Waiter = Box<dyn FnOnce() + Send>;

pub struct Jwks {
    keys: Arc<RwLock<Arc<KeySet>>>,
    tx: Sender<Waiter>,
}

impl Jwks {
    /// Starts the `auth:jwks` thread. It ends when this is dropped.
    pub fn start(cfg: &JwtConfig) -> Result<Jwks, String> {
        let keys: Arc<RwLock<Arc<KeySet>>> = Arc::default();
        let (tx, rx) = crossbeam_channel::bounded::<Waiter>(MAX_WAITING);
        let fetcher = Fetcher { url: cfg.jwks_url.clone(), agent: agent(cfg), keys: keys.clone() };
        crate::thread::spawn("auth:jwks".into(), move || {
            fetcher.run(rx);
            Ok(())
        })
        .map_err(|e| format!("cannot start the auth:jwks thread: {e}"))?;
        Ok(Jwks { keys, tx })
    }

    /// A set made in code (tests), with no thread.
    pub fn fixed(set: KeySet) -> Jwks {
        let (tx, _) = crossbeam_channel::bounded(1);
        Jwks { keys: Arc::new(RwLock::new(Arc::new(set))), tx }
    }

    /// The keys as of the last successful fetch.
    pub fn keys(&self) -> Arc<KeySet> {
        self.keys.read().clone()
    }

    /// Runs `then` after a refetch (see the module notes); when too many
    /// wait already, or the thread is gone, runs it at once on this thread.
    pub fn refresh_then(&self, then: Waiter) {
        match self.tx.try_send(then) {
            Ok(()) => {}
            Err(TrySendError::Full(w) | TrySendError::Disconnected(w)) => w(),
        }
    }
}

struct Fetcher {
    url: String,
    agent: ureq::Agent,
    keys: Arc<RwLock<Arc<KeySet>>>,
}

impl Fetcher {
    fn run(self, rx: Receiver<Waiter>) {
        self.fetch();
        let mut last = Instant::now();
        loop {
            match rx.recv_timeout(PERIODIC) {
                Ok(first) => {
                    let mut batch = vec![first];
                    batch.extend(rx.try_iter());
                    if last.elapsed() >= MIN_INTERVAL {
                        self.fetch();
                        last = Instant::now();
                    }
                    for w in batch {
                        w();
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    self.fetch();
                    last = Instant::now();
                }
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    fn fetch(&self) {
        let shown = crate::config::redact_url(&self.url);
        match fetch(&self.agent, &self.url) {
            Ok(set) => {
                log::debug!("server.auth.jwt: {} usable keys from {shown}", set.keys.len());
                *self.keys.write() = Arc::new(set);
            }
            Err(e) => {
                log::warn!("server.auth.jwt: cannot fetch the key set from {shown}: {e}; keeping the previous keys")
            }
        }
    }
}

fn agent(cfg: &JwtConfig) -> ureq::Agent {
    let mut b = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(FETCH_TIMEOUT))
        // A redirect could lead the fetch anywhere (and to plain http).
        .max_redirects(0)
        .user_agent(concat!("mcp-sentinel/", env!("CARGO_PKG_VERSION")));
    if let Some(ca) = &cfg.ca_cert {
        let roots = ca.certs.iter().map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned()).collect();
        b = b.tls_config(
            ureq::tls::TlsConfig::builder().root_certs(ureq::tls::RootCerts::Specific(Arc::new(roots))).build(),
        );
    }
    b.build().into()
}

fn fetch(agent: &ureq::Agent, url: &str) -> Result<KeySet, String> {
    let mut resp = agent.get(url).header("Accept", "application/json").call().map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    if status != 200 {
        return Err(format!("HTTP {status}"));
    }
    let body = resp.body_mut().with_config().limit(MAX_BODY).read_to_vec().map_err(|e| e.to_string())?;
    KeySet::parse(&body)
}
