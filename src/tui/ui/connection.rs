//! The connection's state in words: the header's label for it, and the
//! body shown while there is no data (connecting, or why not and what to
//! do about it). Runs on the TUI's main thread, like all rendering.

use super::text::seconds;
use crate::client::ClientError;
use crate::tui::app::{App, ConnState};
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Block, Paragraph, Wrap};
use ratatui::Frame;

/// The connection state in a few words, as the header shows it.
pub(super) fn conn_label(e: &ClientError) -> String {
    match e {
        ClientError::Unreachable(m) => format!("unreachable: {m}"),
        ClientError::Unauthorized(m) => format!("401 unauthorized: {m}"),
        ClientError::Forbidden(m) => format!("403 forbidden: {m}"),
        ClientError::NotFound(_) => "404: no management API at this URL".to_string(),
        ClientError::Server(s, m) => format!("server error {s}: {m}"),
        ClientError::BadJson(m) => format!("unexpected response: {m}"),
        ClientError::Config(m) => m.clone(),
        ClientError::NoToken(m) => format!("no token: {m}"),
    }
}

/// The body before the first answer, or while the server has never answered.
pub(super) fn render_no_data(app: &App, f: &mut Frame<'_>, area: Rect) {
    let t = &app.theme;
    let url = app.profile().map(|p| p.url.as_str()).unwrap_or("-");
    let mut lines = vec![Line::raw("")];
    match &app.conn {
        ConnState::Connecting | ConnState::Connected => {
            lines.push(Line::raw(format!("Connecting to {url} …")));
        }
        ConnState::Failed(e) => {
            lines.push(Line::styled(conn_label(e), t.error.bold()));
            lines.push(Line::raw(""));
            for hint in hints(e, url) {
                lines.push(Line::raw(hint));
            }
            lines.push(Line::raw(""));
            lines.push(Line::styled(
                format!("Retrying every {}; p switches profile, q quits.", seconds(app.interval.as_secs_f64())),
                t.dim,
            ));
        }
    }
    let block = Block::bordered().border_style(t.border).title(format!(" {} ", app.view.title()));
    f.render_widget(Paragraph::new(lines).block(block).wrap(Wrap { trim: false }), area);
}

/// What the user can do about an error.
fn hints(e: &ClientError, url: &str) -> Vec<String> {
    match e {
        ClientError::Unreachable(_) => vec![
            format!("Is 'mcp-sentinel server' running with its management API at {url}?"),
            "Check the URL (manage.listen, --manage-listen) and any firewall in between.".into(),
        ],
        ClientError::Unauthorized(_) => {
            let mut lines = vec!["The server refused the token sent.".to_string()];
            lines.extend(token_source_hint().map(String::from));
            lines
        }
        ClientError::NoToken(_) => {
            let mut lines = vec!["No request was sent: the token to send could not be read.".to_string()];
            lines.extend(token_source_hint().map(String::from));
            lines
        }
        ClientError::Forbidden(_) => vec!["The server refused this token for reading.".into()],
        ClientError::NotFound(_) => vec![format!("{url} answers, but not as a management API (/manage/v1).")],
        ClientError::Config(_) => vec!["Fix the profile (mcp-sentinel profile add/remove) or the --url flags.".into()],
        ClientError::Server(..) | ClientError::BadJson(_) => {
            vec!["The server answered with an error; its event log or stderr may say more.".into()]
        }
    }
}

/// Where a token comes from, true of a profile and of `tui --url` alike.
fn token_source_hint() -> [&'static str; 4] {
    [
        "Tokens come from token_env or token_file (profiles), --token-env or",
        "--token-file (tui --url), or else, for a loopback URL, the file that a",
        "server without manage.tokens writes its admin token to:",
        "$XDG_STATE_HOME/mcp-sentinel/manage-<port>.token.",
    ]
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use crate::tui::app::testing::profiles;
    use std::time::Duration;

    #[test]
    fn connecting_state() {
        let app = App::new(profiles(), 1, Duration::from_secs(1));
        for (w, h) in SIZES {
            let s = screen(&app, w, h);
            assert_has(&s, &["profile staging", "https://staging.example.com:9001", "… connecting", "Connecting to"]);
        }
    }

    #[test]
    fn unreachable_state() {
        let app = failed(ClientError::Unreachable("connection refused".into()));
        for (w, h) in SIZES {
            let s = screen(&app, w, h);
            assert_has(
                &s,
                &["✖ unreachable: connection refused", "Is 'mcp-sentinel server' running", "Retrying every 1s"],
            );
            assert_has(&s, &["profile local  http://127.0.0.1:9001"]);
        }
    }

    #[test]
    fn unauthorized_and_forbidden_states() {
        let app = failed(ClientError::Unauthorized("missing or invalid bearer token".into()));
        for (w, h) in SIZES {
            let s = screen(&app, w, h);
            assert_has(&s, &["401 unauthorized", "refused the token", "--token-env"]);
            assert!(!s.contains("profile's"), "a --url target has no profile:\n{s}");
        }
        let app = failed(ClientError::Forbidden("token lacks the read scope".into()));
        for (w, h) in SIZES {
            assert_has(&screen(&app, w, h), &["403 forbidden", "lacks the read scope"]);
        }
    }

    #[test]
    fn a_token_that_cannot_be_read_is_a_local_problem() {
        let app = failed(ClientError::NoToken("environment variable UNSET_VAR is not set".into()));
        for (w, h) in SIZES {
            let s = screen(&app, w, h);
            assert_has(
                &s,
                &["✖ no token: environment variable UNSET_VAR is not set", "No request was sent", "--token-env"],
            );
            for wrong in ["401", "refused", "profile's"] {
                assert!(!s.contains(wrong), "{wrong:?} in:\n{s}");
            }
        }
    }
}
