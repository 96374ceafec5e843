//! The gateway's state machine as a pure function: from the backends'
//! states to `starting`, `ready`, `degraded` or `failed`, and the event
//! that announces each. [`super::Runtime::update_state`] applies it on the
//! admin thread; nothing here locks or does I/O.

use crate::backend::State as BackendState;
use crate::events::Level;
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ServerState {
    Starting,
    Ready,
    Degraded,
    Failed,
    Stopping,
    Stopped,
}

impl ServerState {
    pub fn as_str(self) -> &'static str {
        match self {
            ServerState::Starting => "starting",
            ServerState::Ready => "ready",
            ServerState::Degraded => "degraded",
            ServerState::Failed => "failed",
            ServerState::Stopping => "stopping",
            ServerState::Stopped => "stopped",
        }
    }
}

/// What the backends' states make of the gateway.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub state: ServerState,
    /// The first discovery is done: no enabled backend is pending or
    /// connecting for the first time. Once true it stays true, so
    /// `starting` never comes back.
    pub settled: bool,
    /// The event announcing `state` (its level and message).
    pub level: Level,
    pub message: String,
}

/// The gateway state for `states` (every backend's; disabled ones do not
/// count). `settled` says whether the first discovery was done before.
pub fn verdict(settled: bool, states: &[BackendState]) -> Verdict {
    let enabled: Vec<BackendState> = states.iter().copied().filter(|s| *s != BackendState::Disabled).collect();
    let settling = enabled.iter().any(|s| matches!(s, BackendState::Pending | BackendState::Connecting));
    let settled = settled || !settling;
    let connected = enabled.iter().filter(|s| **s == BackendState::Connected).count();
    let total = enabled.len();
    let (state, level, message) = if !settled {
        (ServerState::Starting, Level::Info, String::new())
    } else if connected == total {
        (ServerState::Ready, Level::Info, format!("all {total} enabled backends connected"))
    } else if connected == 0 {
        (ServerState::Failed, Level::Error, "no backend is connected".to_owned())
    } else {
        (ServerState::Degraded, Level::Warn, format!("{connected} of {total} enabled backends connected"))
    };
    Verdict { state, settled, level, message }
}

#[cfg(test)]
mod tests {
    use super::*;
    use BackendState::{Connected as Up, Connecting, Disabled, Disconnected, Failed as Down, Pending};

    #[test]
    fn state_table() {
        // (settled before, backend states, state, settled after, message)
        let table: &[(bool, &[BackendState], ServerState, bool, &str)] = &[
            (false, &[], ServerState::Ready, true, "all 0 enabled backends connected"),
            (false, &[Disabled, Disabled], ServerState::Ready, true, "all 0 enabled backends connected"),
            (false, &[Pending], ServerState::Starting, false, ""),
            (false, &[Up, Connecting], ServerState::Starting, false, ""),
            (false, &[Up, Pending, Disabled], ServerState::Starting, false, ""),
            (false, &[Up, Up, Disabled], ServerState::Ready, true, "all 2 enabled backends connected"),
            (false, &[Up, Down], ServerState::Degraded, true, "1 of 2 enabled backends connected"),
            (false, &[Down, Disconnected], ServerState::Failed, true, "no backend is connected"),
            // After the first discovery, a backend reconnecting does not
            // bring `starting` back: it counts as not connected.
            (true, &[Up, Connecting], ServerState::Degraded, true, "1 of 2 enabled backends connected"),
            (true, &[Connecting], ServerState::Failed, true, "no backend is connected"),
            (true, &[Pending, Up, Up], ServerState::Degraded, true, "2 of 3 enabled backends connected"),
            (true, &[Up, Up, Up], ServerState::Ready, true, "all 3 enabled backends connected"),
        ];
        for (settled, states, state, after, message) in table {
            let v = verdict(*settled, states);
            assert_eq!((v.state, v.settled, v.message.as_str()), (*state, *after, *message), "{settled} {states:?}");
        }
    }

    #[test]
    fn levels() {
        assert_eq!(verdict(true, &[Up]).level, Level::Info);
        assert_eq!(verdict(true, &[Up, Down]).level, Level::Warn);
        assert_eq!(verdict(true, &[Down]).level, Level::Error);
    }
}
