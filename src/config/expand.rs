//! `${VAR}` expansion, and the registry of the values it produced, so
//! that text shown to operators can show `${VAR}` instead of a secret
//! wherever the value ended up. Runs wherever a configuration is parsed
//! (main, admin); [`hide_expanded`] runs on any thread.

use super::error::FieldError;

pub(super) fn is_var_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// Values that `${VAR}` references expanded to (and their names), so that
/// text shown to operators (errors, events, log lines that quote a URL or
/// an argument) can show the reference instead of the value, wherever the
/// value ended up. Bounded by the configuration's size.
static EXPANDED: std::sync::RwLock<Vec<(String, String)>> = std::sync::RwLock::new(Vec::new());

/// Shorter values are left alone: they would garble messages more than they
/// hide (and such a value is no secret anyway).
const MIN_HIDDEN_VALUE: usize = 6;

fn remember_expanded(var: &str, value: &str) {
    if value.len() < MIN_HIDDEN_VALUE {
        return;
    }
    let mut g = EXPANDED.write().unwrap_or_else(std::sync::PoisonError::into_inner);
    if !g.iter().any(|(v, n)| v == value && n == var) {
        g.push((value.to_owned(), var.to_owned()));
        // Longest first, so a value that contains another is replaced whole.
        g.sort_by_key(|e| std::cmp::Reverse(e.0.len()));
    }
}

/// `text` with every value a `${VAR}` of the configuration expanded to
/// replaced by that `${VAR}`.
pub fn hide_expanded(text: &str) -> String {
    let g = EXPANDED.read().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut out = std::borrow::Cow::Borrowed(text);
    for (value, var) in g.iter() {
        if out.contains(value.as_str()) {
            out = std::borrow::Cow::Owned(out.replace(value.as_str(), &format!("${{{var}}}")));
        }
    }
    out.into_owned()
}

/// Expands `${NAME}` from `env`; an unset variable is an error naming the
/// field. Text that is not a well-formed reference stays as written.
pub(super) fn expand(s: &str, field: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, FieldError> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        match after.find('}') {
            Some(j) if is_var_name(&after[..j]) => {
                let var = &after[..j];
                match env(var) {
                    Some(v) => {
                        remember_expanded(var, &v);
                        out.push_str(&v);
                    }
                    None => return Err(FieldError::new(field, format!("environment variable ${{{var}}} is not set"))),
                }
                rest = &after[j + 1..];
            }
            _ => {
                out.push_str("${");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::{backend, env};

    #[test]
    fn expansion_rules() {
        let e = |s: &str| expand(s, "f", &env).map_err(|b| b.message);
        assert_eq!(e("${HOME}/a/${TOKEN}"), Ok("/home/me/a/s3cret".into()));
        assert_eq!(e("${EMPTY}x"), Ok("x".into()));
        assert_eq!(e("$$ $HOME ${ ${1A} ${a-b} ${HOME"), Ok("$$ $HOME ${ ${1A} ${a-b} ${HOME".into()));
        assert_eq!(e("$${HOME}"), Ok("$/home/me".into()));
        // Not recursive: a value containing ${..} stays as it came.
        let env2 = |n: &str| (n == "A").then(|| "${B}".to_string());
        assert_eq!(expand("${A}", "f", &env2).map_err(|b| b.message), Ok("${B}".into()));
        assert_eq!(e("a${NOPE}"), Err("environment variable ${NOPE} is not set".into()));
    }

    #[test]
    fn expansion_does_not_touch_other_fields() {
        let b = backend(r#"{"command": "x", "prefix": "p", "tools": {"allow": ["${NOPE}"]}}"#);
        assert_eq!(b.tools.allow, ["${NOPE}"]);
        assert!(b.transport.is_ok());
    }
}
