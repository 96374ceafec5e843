//! The TUI's themes: every colour the screens use, as ratatui styles, in
//! one [`Theme`] per look. The chosen theme is part of the state that
//! rendering reads ([`crate::tui::app::App::theme`]), so drawing stays a
//! pure function of the state; `n` (next) and `T` (picker) change it, and
//! `tui.json` remembers it ([`crate::tui::settings`]).
//!
//! No theme carries a meaning by colour alone: states are words
//! (`connected`, `failed`), the selected row has a `▶` marker, and
//! `high-contrast` adds bold and underlines for what others only colour.

use ratatui::style::{Color, Modifier, Style};

/// The themes, in the order `n` cycles through them.
pub const THEME_NAMES: [&str; 5] = ["default", "light", "high-contrast", "solarized", "nord"];

/// The styles of one look. `base` is painted under everything (its
/// background is the screen's); the others only add to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Theme {
    pub name: &'static str,
    /// The whole screen and the popups' background.
    pub base: Style,
    /// The ` mcp-sentinel ` badge of the header.
    pub badge: Style,
    /// Names that stand out: the profile, keys in the help and footer.
    pub accent: Style,
    /// Good: connected, ready, a successful operation.
    pub ok: Style,
    /// Waiting or attention: connecting, degraded, warnings, conflicts.
    pub warn: Style,
    /// Bad: failed, errors.
    pub error: Style,
    /// Less bad than `error`: a disconnected backend.
    pub error_soft: Style,
    /// Unimportant: disabled, debug, hints, "(none)".
    pub dim: Style,
    /// Labels inside a pane ("input schema", a field's name).
    pub label: Style,
    /// The selected tab.
    pub tab_selected: Style,
    /// The selected row of a list.
    pub selection: Style,
    /// A table's column headers.
    pub table_header: Style,
    /// Panes' borders and titles.
    pub border: Style,
    /// The y/n question's border.
    pub confirm_border: Style,
    /// The cursor of the filter being typed.
    pub cursor: Style,
    /// A selected text (a kept filter after `/`).
    pub selected_text: Style,
    /// A footer message that is neither good nor bad news.
    pub info: Style,
}

impl Theme {
    /// The theme called `name`, if there is one.
    pub fn named(name: &str) -> Option<Theme> {
        Some(match name {
            "default" => Theme::default_theme(),
            "light" => Theme::light(),
            "high-contrast" => Theme::high_contrast(),
            "solarized" => Theme::solarized(),
            "nord" => Theme::nord(),
            _ => return None,
        })
    }

    /// The theme after this one in [`THEME_NAMES`], wrapping round.
    pub fn next(&self) -> Theme {
        let i = THEME_NAMES.iter().position(|n| *n == self.name).unwrap_or(0);
        Theme::named(THEME_NAMES[(i + 1) % THEME_NAMES.len()]).unwrap_or_default()
    }

    /// The terminal's own colours, with the usual green/yellow/red.
    pub fn default_theme() -> Theme {
        Theme {
            name: "default",
            base: Style::new(),
            badge: Style::new().add_modifier(Modifier::BOLD | Modifier::REVERSED),
            accent: Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD),
            ok: Style::new().fg(Color::Green),
            warn: Style::new().fg(Color::Yellow),
            error: Style::new().fg(Color::Red),
            error_soft: Style::new().fg(Color::LightRed),
            dim: Style::new().fg(Color::DarkGray),
            label: Style::new().add_modifier(Modifier::BOLD),
            tab_selected: Style::new().fg(Color::Black).bg(Color::Cyan).add_modifier(Modifier::BOLD),
            selection: Style::new().add_modifier(Modifier::REVERSED),
            table_header: Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
            border: Style::new(),
            confirm_border: Style::new().fg(Color::Yellow),
            cursor: Style::new().fg(Color::Cyan),
            selected_text: Style::new().add_modifier(Modifier::REVERSED),
            info: Style::new().fg(Color::Cyan),
        }
    }

    /// Dark text on a white background.
    pub fn light() -> Theme {
        let blue = Color::Rgb(0, 70, 160);
        Theme {
            name: "light",
            base: Style::new().fg(Color::Black).bg(Color::White),
            badge: Style::new().fg(Color::White).bg(blue).add_modifier(Modifier::BOLD),
            accent: Style::new().fg(blue).add_modifier(Modifier::BOLD),
            ok: Style::new().fg(Color::Rgb(0, 110, 0)),
            warn: Style::new().fg(Color::Rgb(150, 80, 0)),
            error: Style::new().fg(Color::Rgb(180, 0, 0)),
            error_soft: Style::new().fg(Color::Rgb(170, 60, 60)),
            dim: Style::new().fg(Color::Rgb(100, 100, 100)),
            label: Style::new().add_modifier(Modifier::BOLD),
            tab_selected: Style::new().fg(Color::White).bg(blue).add_modifier(Modifier::BOLD),
            selection: Style::new().fg(Color::Black).bg(Color::Rgb(190, 215, 255)).add_modifier(Modifier::BOLD),
            table_header: Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
            border: Style::new().fg(Color::Rgb(90, 90, 90)),
            confirm_border: Style::new().fg(Color::Rgb(150, 80, 0)),
            cursor: Style::new().fg(blue),
            selected_text: Style::new().fg(Color::White).bg(blue),
            info: Style::new().fg(blue),
        }
    }

    /// For low vision and monochrome-ish terminals: white and yellow on
    /// black, everything that matters bold, the bad underlined too, the
    /// selection reversed and bold; nothing dimmed to grey.
    pub fn high_contrast() -> Theme {
        let bold = Modifier::BOLD;
        Theme {
            name: "high-contrast",
            base: Style::new().fg(Color::White).bg(Color::Black),
            badge: Style::new().fg(Color::Black).bg(Color::Yellow).add_modifier(bold),
            accent: Style::new().fg(Color::Yellow).add_modifier(bold),
            ok: Style::new().fg(Color::White).add_modifier(bold),
            warn: Style::new().fg(Color::Yellow).add_modifier(bold),
            error: Style::new().fg(Color::Yellow).add_modifier(bold | Modifier::UNDERLINED | Modifier::REVERSED),
            error_soft: Style::new().fg(Color::Yellow).add_modifier(bold | Modifier::UNDERLINED),
            dim: Style::new().fg(Color::White),
            label: Style::new().fg(Color::Yellow).add_modifier(bold),
            tab_selected: Style::new().fg(Color::Black).bg(Color::Yellow).add_modifier(bold | Modifier::UNDERLINED),
            selection: Style::new().fg(Color::Black).bg(Color::White).add_modifier(bold),
            table_header: Style::new().fg(Color::Yellow).add_modifier(bold | Modifier::UNDERLINED),
            border: Style::new().fg(Color::White).add_modifier(bold),
            confirm_border: Style::new().fg(Color::Yellow).add_modifier(bold),
            cursor: Style::new().fg(Color::Yellow).add_modifier(bold),
            selected_text: Style::new().fg(Color::Black).bg(Color::Yellow).add_modifier(bold),
            info: Style::new().fg(Color::Yellow).add_modifier(bold),
        }
    }

    /// Solarized dark (Ethan Schoonover's palette).
    pub fn solarized() -> Theme {
        let (base03, base01, base1) = (Color::Rgb(0, 43, 54), Color::Rgb(88, 110, 117), Color::Rgb(147, 161, 161));
        let (yellow, red, orange) = (Color::Rgb(181, 137, 0), Color::Rgb(220, 50, 47), Color::Rgb(203, 75, 22));
        let (blue, cyan, green) = (Color::Rgb(38, 139, 210), Color::Rgb(42, 161, 152), Color::Rgb(133, 153, 0));
        Theme {
            name: "solarized",
            base: Style::new().fg(base1).bg(base03),
            badge: Style::new().fg(base03).bg(blue).add_modifier(Modifier::BOLD),
            accent: Style::new().fg(cyan).add_modifier(Modifier::BOLD),
            ok: Style::new().fg(green),
            warn: Style::new().fg(yellow),
            error: Style::new().fg(red),
            error_soft: Style::new().fg(orange),
            dim: Style::new().fg(base01),
            label: Style::new().fg(blue).add_modifier(Modifier::BOLD),
            tab_selected: Style::new().fg(base03).bg(cyan).add_modifier(Modifier::BOLD),
            selection: Style::new().fg(base03).bg(base1),
            table_header: Style::new().fg(blue).add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
            border: Style::new().fg(base01),
            confirm_border: Style::new().fg(yellow),
            cursor: Style::new().fg(cyan),
            selected_text: Style::new().fg(base03).bg(cyan),
            info: Style::new().fg(cyan),
        }
    }

    /// Nord (arcticicestudio's palette).
    pub fn nord() -> Theme {
        let (n0, n3, n4) = (Color::Rgb(46, 52, 64), Color::Rgb(76, 86, 106), Color::Rgb(216, 222, 233));
        let (frost, frost2) = (Color::Rgb(136, 192, 208), Color::Rgb(129, 161, 193));
        let (red, orange, yellow, green) =
            (Color::Rgb(191, 97, 106), Color::Rgb(208, 135, 112), Color::Rgb(235, 203, 139), Color::Rgb(163, 190, 140));
        Theme {
            name: "nord",
            base: Style::new().fg(n4).bg(n0),
            badge: Style::new().fg(n0).bg(frost).add_modifier(Modifier::BOLD),
            accent: Style::new().fg(frost).add_modifier(Modifier::BOLD),
            ok: Style::new().fg(green),
            warn: Style::new().fg(yellow),
            error: Style::new().fg(red),
            error_soft: Style::new().fg(orange),
            dim: Style::new().fg(n3),
            label: Style::new().fg(frost2).add_modifier(Modifier::BOLD),
            tab_selected: Style::new().fg(n0).bg(frost).add_modifier(Modifier::BOLD),
            selection: Style::new().fg(n0).bg(frost2),
            table_header: Style::new().fg(frost2).add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
            border: Style::new().fg(n3),
            confirm_border: Style::new().fg(yellow),
            cursor: Style::new().fg(frost),
            selected_text: Style::new().fg(n0).bg(frost),
            info: Style::new().fg(frost),
        }
    }

    // ---- the values the views show, by meaning

    /// A backend's state.
    pub fn backend_state(&self, state: &str) -> Style {
        match state {
            "connected" => self.ok,
            "connecting" | "pending" => self.warn,
            "failed" => self.error.add_modifier(Modifier::BOLD),
            "disconnected" => self.error_soft,
            "disabled" => self.dim,
            _ => Style::new(),
        }
    }

    /// The server's state.
    pub fn server_state(&self, state: &str) -> Style {
        match state {
            "ready" => self.ok.add_modifier(Modifier::BOLD),
            "degraded" | "starting" => self.warn.add_modifier(Modifier::BOLD),
            "failed" => self.error.add_modifier(Modifier::BOLD),
            _ => self.dim,
        }
    }

    /// An event's level.
    pub fn level(&self, level: &str) -> Style {
        match level {
            "error" => self.error.add_modifier(Modifier::BOLD),
            "warn" => self.warn,
            "debug" => self.dim,
            _ => Style::new(),
        }
    }
}

impl Default for Theme {
    fn default() -> Theme {
        Theme::default_theme()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_has_a_theme_and_next_cycles() {
        let mut t = Theme::default();
        for name in THEME_NAMES.iter().skip(1).chain(std::iter::once(&"default")) {
            t = t.next();
            assert_eq!(t.name, *name);
            assert_eq!(Theme::named(name).unwrap(), t);
        }
        assert!(Theme::named("neon").is_none());
    }

    #[test]
    fn high_contrast_is_black_white_yellow_and_bold() {
        let t = Theme::high_contrast();
        assert_eq!((t.base.fg, t.base.bg), (Some(Color::White), Some(Color::Black)));
        for s in [t.ok, t.warn, t.error, t.error_soft, t.accent, t.selection, t.tab_selected] {
            assert!(s.add_modifier.contains(Modifier::BOLD), "{s:?}");
            assert!(matches!(s.fg, Some(Color::White | Color::Yellow | Color::Black)), "{s:?}");
        }
        // Bad news is not colour alone: underlined, unlike good news.
        assert!(t.error.add_modifier.contains(Modifier::UNDERLINED));
        assert!(!t.ok.add_modifier.contains(Modifier::UNDERLINED));
        assert_ne!(t.dim.fg, Some(Color::DarkGray), "nothing dimmed to grey");
    }
}
