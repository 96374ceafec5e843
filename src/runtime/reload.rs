//! What a reload does, decided without doing it: which backends are added,
//! removed, restarted or kept, and which changed settings cannot apply
//! without a restart (they keep their running values and get a note). A
//! pure function of the running configuration and the new file; the admin
//! thread (`admin.rs`) carries the plan out.

use crate::config::{BackendConfig, Config};

/// What happens to one backend of the new file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// A new name: started.
    Add,
    /// The same name with a different entry: the running one is stopped,
    /// a new one started in its place.
    Restart,
    /// The identical entry (every field): left alone, same connection.
    Keep,
}

/// A reload, planned.
#[derive(Debug)]
pub struct Plan {
    /// The configuration to run: the new file's, with the settings that
    /// need a restart kept at their running values.
    pub config: Config,
    /// One line per setting that changed but needs a restart.
    pub notes: Vec<String>,
    /// What happens to each backend of `config`, in file order.
    pub actions: Vec<Action>,
    /// Names running now that the new file no longer has, in running order.
    pub removed: Vec<String>,
}

impl Plan {
    /// The names of `config.backends` that get `action`, in file order.
    pub fn names(&self, action: Action) -> Vec<String> {
        let entries = self.config.backends.iter().zip(&self.actions);
        entries.filter(|(_, a)| **a == action).map(|(b, _)| b.name.clone()).collect()
    }
}

/// Plans the move from `running` (the configuration in force and the
/// entries of the backends running now) to `next` (the file as loaded,
/// overrides applied).
///
/// The listeners, the session table and the management section (tokens,
/// TLS) are built once at start, so their settings keep their running
/// values. Everything else in `server` is read where it is used, or handed
/// to every backend (`backoff_*`), and applies with the swap.
pub fn plan(running: &Config, backends: &[&BackendConfig], mut next: Config) -> Plan {
    let cur = &running.server;
    let mut notes = Vec::new();
    if next.server.listen != cur.listen {
        notes.push(format!("server.listen changed to {}; restart to apply", next.server.listen));
    }
    for (changed, key) in [
        (next.server.max_sessions != cur.max_sessions, "max_sessions"),
        (next.server.max_connections != cur.max_connections, "max_connections"),
        (next.server.max_connections_per_ip != cur.max_connections_per_ip, "max_connections_per_ip"),
        (next.server.max_inflight_per_session != cur.max_inflight_per_session, "max_inflight_per_session"),
    ] {
        if changed {
            notes.push(format!("server.{key} changed; restart to apply"));
        }
    }
    if next.server.instance_id != cur.instance_id {
        notes.push("server.instance_id changed; restart to apply".to_owned());
    }
    if next.server.auth != cur.auth || next.server.allow_unauthenticated_remote != cur.allow_unauthenticated_remote {
        notes.push("server.auth changed; restart to apply".to_owned());
    }
    if next.manage != running.manage {
        notes.push("the manage section changed; restart to apply".to_owned());
    }
    next.server.listen = cur.listen.clone();
    next.server.max_sessions = cur.max_sessions;
    next.server.max_connections = cur.max_connections;
    next.server.max_connections_per_ip = cur.max_connections_per_ip;
    next.server.max_inflight_per_session = cur.max_inflight_per_session;
    next.server.instance_id = cur.instance_id.clone();
    next.server.auth = cur.auth.clone();
    next.server.allow_unauthenticated_remote = cur.allow_unauthenticated_remote;
    next.manage = running.manage.clone();

    let actions = next
        .backends
        .iter()
        .map(|bc| match backends.iter().find(|b| b.name == bc.name) {
            Some(b) if *b == bc => Action::Keep,
            Some(_) => Action::Restart,
            None => Action::Add,
        })
        .collect();
    let removed =
        backends.iter().filter(|b| !next.backends.iter().any(|bc| bc.name == b.name)).map(|b| b.name.clone()).collect();
    Plan { config: next, notes, actions, removed }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        crate::config::parse_with_env(text, None, &|_| None).unwrap()
    }

    fn backends(c: &Config) -> Vec<&BackendConfig> {
        c.backends.iter().collect()
    }

    #[test]
    fn backends_are_added_removed_restarted_or_kept_by_name() {
        let running = config(
            r#"{"mcpServers": {
                "keep": {"command": "a"},
                "change": {"command": "b"},
                "gone": {"command": "c"},
                "retime": {"command": "d", "timeout_s": 5},
                "off": {"command": "e", "enabled": false}
            }}"#,
        );
        let next = config(
            r#"{"mcpServers": {
                "new": {"command": "x"},
                "change": {"command": "b", "args": ["--more"]},
                "keep": {"command": "a"},
                "retime": {"command": "d", "timeout_s": 6},
                "off": {"command": "e", "enabled": true}
            }}"#,
        );
        let p = plan(&running, &backends(&running), next);
        // File order, each with its action.
        let got: Vec<(&str, Action)> =
            p.config.backends.iter().map(|b| b.name.as_str()).zip(p.actions.iter().copied()).collect();
        assert_eq!(
            got,
            [
                ("new", Action::Add),
                ("change", Action::Restart),
                ("keep", Action::Keep),
                ("retime", Action::Restart),
                ("off", Action::Restart),
            ]
        );
        assert_eq!(p.removed, ["gone"]);
        assert_eq!(p.names(Action::Keep), ["keep"]);
        assert_eq!(p.names(Action::Restart), ["change", "retime", "off"]);
        assert!(p.notes.is_empty(), "{:?}", p.notes);
    }

    #[test]
    fn an_identical_file_keeps_everything() {
        let text = r#"{"mcpServers": {"a": {"command": "a"}, "b": {"url": "http://127.0.0.1:1/mcp"}}}"#;
        let running = config(text);
        let p = plan(&running, &backends(&running), config(text));
        assert_eq!(p.actions, [Action::Keep, Action::Keep]);
        assert!(p.removed.is_empty() && p.notes.is_empty());
        assert_eq!(p.config, running);
    }

    /// Settings built once at start keep their running values and get a
    /// note; the others apply.
    #[test]
    fn settings_that_need_a_restart() {
        let running = config(r#"{"mcpServers": {}}"#);
        let next = config(
            r#"{"mcpServers": {},
                "server": {"listen": "127.0.0.1:9100", "max_sessions": 7, "max_connections": 100,
                           "max_connections_per_ip": 10, "max_inflight_per_session": 3,
                           "name": "renamed", "max_body_bytes": 1000, "backoff_initial_ms": 50,
                           "backoff_max_ms": 500, "allowed_origins": ["https://app.example"],
                           "instance_id": "gw2"},
                "manage": {"listen": "127.0.0.1:9101"}}"#,
        );
        let p = plan(&running, &[], next.clone());
        assert_eq!(
            p.notes,
            [
                "server.listen changed to 127.0.0.1:9100; restart to apply",
                "server.max_sessions changed; restart to apply",
                "server.max_connections changed; restart to apply",
                "server.max_connections_per_ip changed; restart to apply",
                "server.max_inflight_per_session changed; restart to apply",
                "server.instance_id changed; restart to apply",
                "the manage section changed; restart to apply",
            ]
        );
        let (s, r) = (&p.config.server, &running.server);
        assert_eq!(
            (&s.listen, s.max_sessions, s.max_connections, s.max_connections_per_ip, s.max_inflight_per_session),
            (&r.listen, r.max_sessions, r.max_connections, r.max_connections_per_ip, r.max_inflight_per_session)
        );
        assert_eq!(s.instance_id, None);
        assert_eq!(p.config.manage, running.manage);
        // Read per request or handed to the backends: applied.
        assert_eq!(s.name, "renamed");
        assert_eq!(s.max_body_bytes, 1000);
        assert_eq!((s.backoff_initial, s.backoff_max), (next.server.backoff_initial, next.server.backoff_max));
        assert_eq!(s.allowed_origins, ["https://app.example"]);
    }
}
