//! The one table of every list: columns sized by their content, cut with
//! `…` when short of room, the widest giving up width first
//! ([`FitTable`], [`fit_widths`]), and the lists' titles. Runs on the TUI's
//! main thread, like all rendering.

use super::text::{ellipsize, text_width};
use crate::tui::theme::Theme;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, HighlightSpacing, Paragraph, Row, Table, TableState};
use ratatui::Frame;

/// A table column: its header, and how narrow it may get when the table is
/// short of room (never narrower than its content needs when there is room).
pub(super) struct Col {
    header: &'static str,
    min: u16,
}

impl Col {
    /// May shrink down to `min` columns, its text cut with `…`.
    pub(super) const fn new(header: &'static str, min: u16) -> Col {
        Col { header, min }
    }

    /// Always as wide as its widest cell (short values: states, counts).
    pub(super) const fn fixed(header: &'static str) -> Col {
        Col { header, min: u16::MAX }
    }
}

/// A list drawn as a table whose columns are sized by their content: when
/// everything fits, each column is as wide as its widest cell and the last
/// takes the rest; when not, the widest columns give up width first and
/// their cells end with `…`. The highlight column is always there, so the
/// header does not move when nothing is selected.
pub(super) struct FitTable<'c> {
    pub(super) cols: &'c [Col],
    /// One span per cell.
    pub(super) rows: Vec<Vec<Span<'static>>>,
}

/// `▶ `, the selected row's mark.
const HIGHLIGHT: &str = "▶ ";

impl FitTable<'_> {
    /// Each column's widest cell (or header).
    fn wants(&self) -> Vec<u16> {
        self.cols
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let cells = self.rows.iter().filter_map(|r| r.get(i)).map(|s| text_width(&s.content));
                let w = cells.fold(text_width(c.header), usize::max);
                u16::try_from(w).unwrap_or(u16::MAX)
            })
            .collect()
    }

    /// The width that shows every cell whole: columns, the spaces between
    /// them, the highlight column and the borders.
    pub(super) fn natural_width(&self) -> u16 {
        let cols: u32 = self.wants().iter().map(|&w| u32::from(w)).sum();
        let extra = self.cols.len().saturating_sub(1) + text_width(HIGHLIGHT) + 2;
        u16::try_from(cols + extra as u32).unwrap_or(u16::MAX)
    }

    pub(super) fn render(self, t: &Theme, title: String, state: &mut TableState, f: &mut Frame<'_>, area: Rect) {
        let n = self.cols.len();
        let spare = n.saturating_sub(1) + text_width(HIGHLIGHT) + 2;
        let avail = usize::from(area.width).saturating_sub(spare);
        let mins: Vec<u16> = self.cols.iter().map(|c| c.min).collect();
        let widths = fit_widths(&self.wants(), &mins, u16::try_from(avail).unwrap_or(u16::MAX));
        let header = Row::new(self.cols.iter().zip(&widths).map(|(c, &w)| Cell::from(ellipsize(c.header, w))))
            .style(t.table_header);
        let len = self.rows.len();
        let rows: Vec<Row<'_>> = self
            .rows
            .into_iter()
            .map(|cells| {
                Row::new(
                    cells
                        .into_iter()
                        .zip(&widths)
                        .map(|(s, &w)| Cell::from(Span::styled(ellipsize(&s.content, w), s.style))),
                )
            })
            .collect();
        // Never leave rows hidden above while there is room below (a list
        // that shrank, by a filter or a server switch, keeps no stale
        // offset): borders and the header take 3 lines.
        let visible = usize::from(area.height.saturating_sub(3));
        let offset = state.offset().min(len.saturating_sub(visible));
        *state.offset_mut() = offset;
        let table = Table::new(rows, widths.iter().map(|&w| Constraint::Length(w)))
            .header(header)
            .block(Block::bordered().border_style(t.border).title(title))
            .row_highlight_style(t.selection)
            .highlight_symbol(HIGHLIGHT)
            .highlight_spacing(HighlightSpacing::Always);
        f.render_stateful_widget(table, area, state);
        if len == 0 {
            let inner = Block::bordered().inner(area);
            let msg = Rect { y: inner.y.saturating_add(1), height: inner.height.saturating_sub(1), ..inner };
            f.render_widget(Paragraph::new(Line::styled("  (none)", t.dim)), msg);
        }
    }
}

/// Column widths for `avail` cells of width: the wanted widths if they fit,
/// the last column taking what is left; else every column is capped at the
/// widest cap that fits (but not below its minimum), so the widest give up
/// width first.
fn fit_widths(wants: &[u16], mins: &[u16], avail: u16) -> Vec<u16> {
    let mins: Vec<u16> = mins.iter().zip(wants).map(|(&m, &w)| m.min(w)).collect();
    let sum = |v: &[u16]| v.iter().map(|&x| u32::from(x)).sum::<u32>();
    let total = sum(wants);
    if total <= u32::from(avail) {
        let mut out = wants.to_vec();
        if let Some(last) = out.last_mut() {
            *last += avail - total as u16;
        }
        return out;
    }
    let capped = |cap: u16| -> Vec<u16> { wants.iter().zip(&mins).map(|(&w, &m)| w.min(cap).max(m)).collect() };
    // The widest cap that fits, by bisection: capped(0) is the minimums.
    let (mut lo, mut hi) = (0u16, wants.iter().copied().max().unwrap_or(0));
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if sum(&capped(mid)) <= u32::from(avail) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    let mut out = capped(lo);
    // What the cap leaves, one cell each to the cut columns, left first.
    let mut left = u32::from(avail).saturating_sub(sum(&out));
    for (o, &w) in out.iter_mut().zip(wants) {
        if left > 0 && *o < w {
            *o += 1;
            left -= 1;
        }
    }
    out
}

/// ` Tools (4) ` or ` Tools (2 of 4, filter "git") `.
pub(super) fn list_title(what: &str, shown: usize, total: usize, filter: &str) -> String {
    if filter.is_empty() {
        format!(" {what} ({total}) ")
    } else {
        format!(" {what} ({shown} of {total}, filter \"{filter}\") ")
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use crate::tui::app::testing::ch;
    use std::sync::Arc;

    #[test]
    fn header_keeps_its_place_with_no_match() {
        let mut app = view('3');
        let before = screen(&app, 80, 24);
        assert_has(&before, &["│  URI "]);
        app.on_key(ch('/'));
        app.on_key(ch('z'));
        let after = screen(&app, 80, 24);
        assert_has(&after, &["│  URI ", "(none)", "Resources (0 of 2, filter \"z\")"]);
    }

    #[test]
    fn cut_text_ends_with_an_ellipsis() {
        // At 80 columns neither the endpoint nor the error fits: both end in `…`.
        let s = screen(&view('1'), 80, 24);
        assert_has(&s, &["npx -y @modelcontext…", "connect to weather.…"]);
        assert_has(&s, &["config …/mcp-sentinel.json"]);
        let s = screen(&view('6'), 80, 24);
        assert_has(&s, &["mcp-sentinel 0.1.0 starting…"]);
        // A long URI in a narrow list.
        let mut d = demo_data();
        let long = format!("demo://alpha/{}", "segment/".repeat(12));
        Arc::make_mut(&mut d.capabilities).resources[0].uri = long.clone();
        let s = screen(&with_data(d, '3'), 80, 24);
        assert!(s.lines().any(|l| l.contains("│▶ demo://alpha/segment/") && l.contains("… readme ")), "{s}");
    }

    #[test]
    fn column_fitting() {
        // Room for everything: the last column takes the rest.
        assert_eq!(fit_widths(&[4, 10, 6], &[4, 4, 4], 30), [4, 10, 16]);
        // Short of room: the widest give up width first, not below their minimum.
        assert_eq!(fit_widths(&[4, 40, 30], &[u16::MAX, 8, 8], 44), [4, 20, 20]);
        assert_eq!(fit_widths(&[4, 40, 10], &[u16::MAX, 8, 8], 44), [4, 30, 10]);
        assert_eq!(fit_widths(&[4, 40, 30], &[u16::MAX, 8, 8], 45), [4, 21, 20]);
        assert_eq!(fit_widths(&[4, 40, 30], &[u16::MAX, 8, 8], 10), [4, 8, 8]);
        assert_eq!(fit_widths(&[], &[], 10), Vec::<u16>::new());
    }
}
