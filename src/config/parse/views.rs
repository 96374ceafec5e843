//! The `views` section: named subsets of the catalog (backends, and globs
//! over exposed tool names), each served at `/mcp/<name>` and
//! `/sse/<name>`. Every backend a view names must be configured.

use serde_json::Value;

use super::obj::{describe, Obj};
use super::FieldError;
use crate::config::{valid_view_name, BackendConfig, ToolFilter, ViewConfig};

pub(super) fn parse_views(
    top: &Obj<'_>,
    backends: &[BackendConfig],
    file: &str,
) -> Result<Vec<ViewConfig>, FieldError> {
    let map = match top.get("views") {
        None => return Ok(Vec::new()),
        Some(Value::Object(m)) => m,
        Some(other) => {
            return Err(FieldError::new("views", format!("expected an object of views, found {}", describe(other))))
        }
    };
    let mut out = Vec::with_capacity(map.len());
    for (name, v) in map {
        let at = format!("views.{name}");
        if !valid_view_name(name) {
            return Err(FieldError::new(
                at,
                "a view name is 1 to 64 characters of letters, digits, '_' and '-' (it is the path /mcp/<name>)",
            ));
        }
        let Value::Object(m) = v else {
            return Err(FieldError::new(at, format!("expected an object, found {}", describe(v))));
        };
        let o = Obj::new(m, &at);
        o.warn_unknown(&["backends", "tools", "description"], file);
        let listed = match o.str_list("backends")? {
            None => None,
            Some(list) => {
                for (i, b) in list.iter().enumerate() {
                    if !backends.iter().any(|c| c.name == *b) {
                        let known: Vec<&str> = backends.iter().map(|c| c.name.as_str()).collect();
                        return Err(o.bad(
                            &format!("backends[{i}]"),
                            format!(
                                "no backend named {:?} is configured (backends: {})",
                                crate::util::printable(b, 100),
                                if known.is_empty() { "none".to_owned() } else { known.join(", ") }
                            ),
                        ));
                    }
                }
                Some(list.into_iter().map(str::to_owned).collect())
            }
        };
        let tools = match o.obj("tools")? {
            None => ToolFilter::default(),
            Some(t) => {
                if let Some(Value::Object(tm)) = o.get("tools") {
                    Obj::new(tm, &format!("{at}.tools")).warn_unknown(&["allow", "deny"], file);
                }
                let list = |key: &str| -> Result<Vec<String>, FieldError> {
                    Ok(t.str_list(key)?.unwrap_or_default().into_iter().map(str::to_owned).collect())
                };
                ToolFilter { allow: list("allow")?, deny: list("deny")? }
            }
        };
        let description = o.str("description")?.map(str::to_owned);
        out.push(ViewConfig { name: name.clone(), backends: listed, tools, description });
    }
    Ok(out)
}
