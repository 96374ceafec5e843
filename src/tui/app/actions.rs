//! Every action of the TUI, with its keys in each key map: one table that
//! the key handling, the help overlay and the command palette all read, so
//! they cannot drift apart. Pure data; runs on the TUI's main thread.
//!
//! Two key maps: `default` (this TUI's keys: `r` reload, `p` profiles) and
//! `classic` (the original Python MCP Sentinel's: `t` `r` `p` are the
//! tools, resources and prompts views; reload and profiles move to `R` and
//! `P`, which also work in the default map). List movement (↑ ↓ j k …)
//! is the same everywhere and not in this table.

use super::View;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// Which keys do what (`--keys`, or `"keys"` in `tui.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyMap {
    #[default]
    Default,
    /// The original's: `t` `r` `p` = tools, resources, prompts.
    Classic,
}

impl KeyMap {
    pub fn name(self) -> &'static str {
        match self {
            KeyMap::Default => "default",
            KeyMap::Classic => "classic",
        }
    }

    pub fn from_name(s: &str) -> Option<KeyMap> {
        match s {
            "default" => Some(KeyMap::Default),
            "classic" => Some(KeyMap::Classic),
            _ => None,
        }
    }
}

/// What an action does; [`crate::tui::app::App::run_cmd`] carries it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmd {
    View(View),
    NextView,
    PrevView,
    Filter,
    ClearMessage,
    DetailDown,
    DetailUp,
    Reload,
    Reconnect,
    Profiles,
    NextTheme,
    ThemePicker,
    ToggleKeys,
    Palette,
    Help,
    Quit,
}

/// One key: a code, with Ctrl or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    pub code: KeyCode,
    pub ctrl: bool,
}

const fn ch(c: char) -> Key {
    Key { code: KeyCode::Char(c), ctrl: false }
}

const fn ctrl(c: char) -> Key {
    Key { code: KeyCode::Char(c), ctrl: true }
}

const fn code(code: KeyCode) -> Key {
    Key { code, ctrl: false }
}

impl Key {
    /// As the help and the palette show it: `t`, `Ctrl-P`, `Shift-Tab`.
    pub fn label(self) -> String {
        let base = match self.code {
            KeyCode::Char(c) if self.ctrl => c.to_ascii_uppercase().to_string(),
            KeyCode::Char(c) => c.to_string(),
            KeyCode::Tab => "Tab".into(),
            KeyCode::BackTab => "Shift-Tab".into(),
            KeyCode::Esc => "Esc".into(),
            KeyCode::Enter => "Enter".into(),
            other => format!("{other:?}"),
        };
        if self.ctrl {
            format!("Ctrl-{base}")
        } else {
            base
        }
    }

    fn matches(self, key: &KeyEvent) -> bool {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        // Terminals report an upper-case letter with or without SHIFT.
        let code = match (key.code, ctrl) {
            (KeyCode::Char(c), true) => KeyCode::Char(c.to_ascii_lowercase()),
            (c, _) => c,
        };
        self.ctrl == ctrl && self.code == code
    }
}

/// A row of the table: what, its name in the palette and help, its keys.
pub struct ActionDef {
    pub cmd: Cmd,
    pub name: &'static str,
    pub default: &'static [Key],
    pub classic: &'static [Key],
}

impl ActionDef {
    pub fn keys(&self, map: KeyMap) -> &'static [Key] {
        match map {
            KeyMap::Default => self.default,
            KeyMap::Classic => self.classic,
        }
    }

    /// Its keys in `map`, as shown: `r, R`; empty when it has none.
    pub fn key_labels(&self, map: KeyMap) -> String {
        self.keys(map).iter().map(|k| k.label()).collect::<Vec<_>>().join(", ")
    }
}

macro_rules! same {
    ($($k:expr),*) => { &[$($k),*] };
}

/// Every action, in the palette's order.
pub const ACTIONS: &[ActionDef] = &[
    ActionDef {
        cmd: Cmd::View(View::Backends),
        name: "view: backends",
        default: same![ch('1')],
        classic: same![ch('1')],
    },
    ActionDef {
        cmd: Cmd::View(View::Tools),
        name: "view: tools",
        default: same![ch('2'), ch('t')],
        classic: same![ch('2'), ch('t')],
    },
    ActionDef {
        cmd: Cmd::View(View::Resources),
        name: "view: resources",
        default: same![ch('3')],
        classic: same![ch('3'), ch('r')],
    },
    ActionDef {
        cmd: Cmd::View(View::Templates),
        name: "view: resource templates",
        default: same![ch('4')],
        classic: same![ch('4')],
    },
    ActionDef {
        cmd: Cmd::View(View::Prompts),
        name: "view: prompts",
        default: same![ch('5')],
        classic: same![ch('5'), ch('p')],
    },
    ActionDef { cmd: Cmd::View(View::Events), name: "view: events", default: same![ch('6')], classic: same![ch('6')] },
    ActionDef {
        cmd: Cmd::NextView,
        name: "next view",
        default: same![code(KeyCode::Tab)],
        classic: same![code(KeyCode::Tab)],
    },
    ActionDef {
        cmd: Cmd::PrevView,
        name: "previous view",
        default: same![code(KeyCode::BackTab)],
        classic: same![code(KeyCode::BackTab)],
    },
    ActionDef {
        cmd: Cmd::Filter,
        name: "filter the list (Enter keep, Esc clear)",
        default: same![ch('/')],
        classic: same![ch('/')],
    },
    ActionDef {
        cmd: Cmd::ClearMessage,
        name: "clear the message, then the filter",
        default: same![code(KeyCode::Esc)],
        classic: same![code(KeyCode::Esc)],
    },
    ActionDef {
        cmd: Cmd::DetailDown,
        name: "scroll the detail pane down",
        default: same![ch('J')],
        classic: same![ch('J')],
    },
    ActionDef {
        cmd: Cmd::DetailUp,
        name: "scroll the detail pane up",
        default: same![ch('K')],
        classic: same![ch('K')],
    },
    ActionDef {
        cmd: Cmd::Reload,
        name: "reload the server's configuration",
        default: same![ch('r'), ch('R')],
        classic: same![ch('R')],
    },
    ActionDef {
        cmd: Cmd::Reconnect,
        name: "reconnect the selected backend",
        default: same![ch('c')],
        classic: same![ch('c')],
    },
    ActionDef {
        cmd: Cmd::Profiles,
        name: "choose a profile (server)",
        default: same![ch('p'), ch('P')],
        classic: same![ch('P')],
    },
    ActionDef { cmd: Cmd::NextTheme, name: "next theme", default: same![ch('n')], classic: same![ch('n')] },
    ActionDef { cmd: Cmd::ThemePicker, name: "choose a theme", default: same![ch('T')], classic: same![ch('T')] },
    ActionDef {
        cmd: Cmd::ToggleKeys,
        name: "switch key map (classic: t r p open views)",
        default: same![],
        classic: same![],
    },
    ActionDef { cmd: Cmd::Palette, name: "command palette", default: same![ctrl('p')], classic: same![ctrl('p')] },
    ActionDef { cmd: Cmd::Help, name: "help", default: same![ch('?')], classic: same![ch('?')] },
    ActionDef { cmd: Cmd::Quit, name: "quit", default: same![ch('q'), ctrl('c')], classic: same![ch('q'), ctrl('c')] },
];

/// The action `key` runs in `map`, if any.
pub fn cmd_for(map: KeyMap, key: &KeyEvent) -> Option<Cmd> {
    ACTIONS.iter().find(|a| a.keys(map).iter().any(|k| k.matches(key))).map(|a| a.cmd)
}

/// The table's row of `cmd`.
pub fn def_of(cmd: Cmd) -> &'static ActionDef {
    ACTIONS.iter().find(|a| a.cmd == cmd).unwrap_or(&ACTIONS[0])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_key_runs_two_actions() {
        for map in [KeyMap::Default, KeyMap::Classic] {
            let mut seen: Vec<Key> = Vec::new();
            for a in ACTIONS {
                for k in a.keys(map) {
                    assert!(!seen.contains(k), "{map:?}: {} bound twice", k.label());
                    seen.push(*k);
                }
            }
        }
    }

    #[test]
    fn every_action_but_the_key_map_switch_has_a_key() {
        for a in ACTIONS {
            for map in [KeyMap::Default, KeyMap::Classic] {
                assert_eq!(a.keys(map).is_empty(), a.cmd == Cmd::ToggleKeys, "{}", a.name);
            }
        }
    }

    #[test]
    fn labels() {
        assert_eq!(def_of(Cmd::Palette).key_labels(KeyMap::Default), "Ctrl-P");
        assert_eq!(def_of(Cmd::Reload).key_labels(KeyMap::Default), "r, R");
        assert_eq!(def_of(Cmd::Reload).key_labels(KeyMap::Classic), "R");
        assert_eq!(def_of(Cmd::PrevView).key_labels(KeyMap::Classic), "Shift-Tab");
    }
}
