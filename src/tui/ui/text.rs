//! Text for narrow places: display widths, cutting with `…`, one-line
//! cells, and the short forms of times, durations and JSON values the views
//! show. Pure functions.

use ratatui::text::{Line, Span};

/// Display width of a text (wide characters count two).
pub(super) fn text_width(s: &str) -> usize {
    Span::raw(s).width()
}

fn char_width(c: char) -> usize {
    let mut buf = [0u8; 4];
    text_width(c.encode_utf8(&mut buf))
}

/// Line breaks and tabs as spaces: a cell or line holds one line.
fn one_line(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// `s` cut to `width` columns, ending with `…` when cut.
pub(super) fn ellipsize(s: &str, width: u16) -> String {
    let s = one_line(s);
    if text_width(&s) <= usize::from(width) {
        return s;
    }
    let mut out = cut(&s, usize::from(width).saturating_sub(1));
    if width > 0 {
        out.push('…');
    }
    out
}

/// `s` cut to `width` columns from the left, starting with `…` when cut:
/// for paths, whose end says the most.
pub(super) fn ellipsize_start(s: &str, width: usize) -> String {
    if text_width(s) <= width || width == 0 {
        return if width == 0 { String::new() } else { s.to_string() };
    }
    let mut kept: Vec<char> = Vec::new();
    let mut used = 0;
    for c in s.chars().rev() {
        let w = char_width(c);
        if used + w > width - 1 {
            break;
        }
        used += w;
        kept.push(c);
    }
    std::iter::once('…').chain(kept.into_iter().rev()).collect()
}

/// The longest start of `s` at most `width` columns wide.
fn cut(s: &str, width: usize) -> String {
    let mut used = 0;
    s.chars()
        .take_while(|&c| {
            used += char_width(c);
            used <= width
        })
        .collect()
}

/// A one-line text cut to `width` columns, ending with `…` when cut.
pub(super) fn fit_line<'a>(line: Line<'a>, width: u16) -> Line<'a> {
    let width = usize::from(width);
    if line.width() <= width {
        return line;
    }
    let mut left = width.saturating_sub(1);
    let mut spans = Vec::new();
    for span in line.spans {
        let w = span.width();
        if w <= left {
            left -= w;
            spans.push(span);
            continue;
        }
        let kept = cut(&span.content, left);
        spans.push(Span::styled(format!("{kept}…"), span.style));
        break;
    }
    Line { spans, ..line }
}

/// `HH:MM:SSZ` of an RFC 3339 time: the time of day with its zone, `Z`
/// for UTC (the server's times are UTC), else the offset as given.
pub(super) fn short_time(rfc3339: &str) -> String {
    let Some((_, t)) = rfc3339.split_once(['T', 't', ' ']) else { return rfc3339.to_string() };
    let hms: String = t.chars().take(8).collect();
    let rest = t.get(8..).unwrap_or("").trim_start_matches(|c: char| c == '.' || c.is_ascii_digit());
    match rest {
        "Z" | "z" | "+00:00" | "-00:00" => format!("{hms}Z"),
        other => format!("{hms}{other}"),
    }
}

/// `HH:MM:SSZ` of a local instant, in UTC like the server's times.
pub(super) fn clock(t: std::time::SystemTime) -> String {
    short_time(&crate::util::rfc3339(t))
}

/// `45s`, `12m 05s`, `3h 02m`, `2d 04h`.
pub(super) fn uptime(secs: f64) -> String {
    let s = if secs.is_finite() && secs > 0.0 { secs as u64 } else { 0 };
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {:02}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h {:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {:02}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// `1s`, `0.5s`.
pub(super) fn seconds(s: f64) -> String {
    if s.fract() == 0.0 {
        format!("{s:.0}s")
    } else {
        format!("{s}s")
    }
}

/// A JSON value meant for display (a backend's `serverInfo`): a string as
/// is, null as `-`, anything else as compact JSON.
pub(super) fn value_text(v: &serde_json::Value) -> String {
    use serde_json::Value;
    match v {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        Value::Object(o) => {
            // serverInfo: "name version" reads better than JSON.
            let name = o.get("name").and_then(Value::as_str);
            let version = o.get("version").and_then(Value::as_str);
            match (name, version) {
                (Some(n), Some(v)) => format!("{n} {v}"),
                (Some(n), None) => n.to_string(),
                _ => v.to_string(),
            }
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use std::time::Duration;

    #[test]
    fn times_are_utc_with_z() {
        let s = screen(&view('1'), 80, 24);
        assert_has(&s, &["updated 11:22:53Z", "connected since 10:00:01Z"]);
        let s = screen(&view('6'), 80, 24);
        assert_has(&s, &["TIME", "10:00:00Z info", "10:00:02Z error"]);
    }

    #[test]
    fn formatting_helpers() {
        assert_eq!(uptime(45.0), "45s");
        assert_eq!(uptime(725.0), "12m 05s");
        assert_eq!(uptime(3725.0), "1h 02m");
        assert_eq!(uptime(190_000.0), "2d 04h");
        assert_eq!(uptime(f64::NAN), "0s");
        assert_eq!(short_time("2026-11-24T10:00:02.110Z"), "10:00:02Z");
        assert_eq!(short_time("2026-11-24T10:00:02Z"), "10:00:02Z");
        assert_eq!(short_time("2026-11-24T10:00:02+00:00"), "10:00:02Z");
        assert_eq!(short_time("2026-11-24T11:00:02.5+01:00"), "11:00:02+01:00");
        assert_eq!(clock(std::time::UNIX_EPOCH + Duration::from_secs(3661)), "01:01:01Z");
        assert_eq!(seconds(1.0), "1s");
        assert_eq!(seconds(0.5), "0.5s");
    }

    #[test]
    fn cutting_to_a_width() {
        assert_eq!(ellipsize("abcdef", 6), "abcdef");
        assert_eq!(ellipsize("abcdef", 4), "abc…");
        assert_eq!(ellipsize("abcdef", 1), "…");
        assert_eq!(ellipsize("abcdef", 0), "");
        assert_eq!(ellipsize("a\nb", 3), "a b");
        assert_eq!(ellipsize("日本語", 4), "日…");
        assert_eq!(ellipsize_start("/etc/mcp/x.json", 8), "…/x.json");
        assert_eq!(ellipsize_start("/etc/x", 8), "/etc/x");
        let line = Line::from(vec![Span::raw("abc"), Span::raw("def")]);
        assert_eq!(fit_line(line.clone(), 6).to_string(), "abcdef");
        assert_eq!(fit_line(line.clone(), 5).to_string(), "abcd…");
        assert_eq!(fit_line(line, 3).to_string(), "ab…");
    }

    #[test]
    fn json_values_as_text() {
        use serde_json::json;
        assert_eq!(value_text(&json!({"name": "github-mcp", "version": "1.2.0"})), "github-mcp 1.2.0");
        assert_eq!(value_text(&json!({"name": "demo"})), "demo");
        assert_eq!(value_text(&json!({"title": "x"})), r#"{"title":"x"}"#);
        assert_eq!(value_text(&serde_json::Value::Null), "-");
        assert_eq!(value_text(&json!("3")), "3");
        assert_eq!(value_text(&json!(3)), "3");
    }
}
