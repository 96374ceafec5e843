//! Colours of the values the views show: backend states, server states,
//! event levels. One place, so the same state looks the same everywhere.

use ratatui::style::{Color, Style};

pub(super) fn backend_state_style(state: &str) -> Style {
    match state {
        "connected" => Style::new().fg(Color::Green),
        "connecting" | "pending" => Style::new().fg(Color::Yellow),
        "failed" => Style::new().fg(Color::Red).bold(),
        "disconnected" => Style::new().fg(Color::LightRed),
        "disabled" => Style::new().fg(Color::DarkGray),
        _ => Style::new(),
    }
}

pub(super) fn server_state_style(state: &str) -> Style {
    match state {
        "ready" => Style::new().fg(Color::Green).bold(),
        "degraded" | "starting" => Style::new().fg(Color::Yellow).bold(),
        "failed" => Style::new().fg(Color::Red).bold(),
        _ => Style::new().fg(Color::DarkGray),
    }
}

pub(super) fn level_style(level: &str) -> Style {
    match level {
        "error" => Style::new().fg(Color::Red).bold(),
        "warn" => Style::new().fg(Color::Yellow),
        "debug" => Style::new().fg(Color::DarkGray),
        _ => Style::new(),
    }
}
