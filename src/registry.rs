//! The merged view of every connected backend's capabilities: tools,
//! resources, resource templates and prompts, each in its own namespace.
//! Built in config order, so the first configured backend keeps a clashing
//! name and the others are reported as conflicts. Immutable once built: the
//! runtime swaps in a new `Arc<Registry>` atomically and data-plane threads
//! read whichever snapshot they hold. The list results are serialized once
//! here, so `tools/list` costs a copy, not a serialization.
//!
//! Resource templates route `resources/read` and `completion/complete` by
//! URI; the matcher, its bounds and why it never backtracks are in
//! `registry/template.rs`.
//!
//! Beside the lists, a lookup that is never listed: the tool and prompt
//! names that backends which are not connected now exposed last. Lists show
//! only what can be called now; a call to one of those names is answered
//! "backend 'x' is not available (…)" instead of "Unknown tool".
//!
//! Views (`views` in the config) are registries too: each is built with the
//! same code from the backends it names, its tool globs applied to the
//! exposed names, so its lookups and pre-serialized lists cost what the
//! whole catalog's do, and a name outside it is simply unknown there.
//! Clashes are settled inside each view (a view without the backend that
//! keeps a name sees the other backend's).

mod template;

use crate::backend::Discovered;
use crate::config::{ToolFilter, ViewConfig};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use template::{Matcher, Template, TooManyParts};

pub struct ToolEntry {
    pub name: String,
    pub original: String,
    pub backend: Arc<str>,
    pub def: Value,
}

pub struct ResourceEntry {
    pub uri: String,
    pub backend: Arc<str>,
    pub def: Value,
}

pub struct TemplateEntry {
    pub uri_template: String,
    pub backend: Arc<str>,
    pub def: Value,
    /// `None` for a template of more than [`template::MAX_PARTS`] parts:
    /// listed, but matched against no URI.
    template: Option<Template>,
}

pub struct PromptEntry {
    pub name: String,
    pub original: String,
    pub backend: Arc<str>,
    pub def: Value,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Conflict {
    pub kind: &'static str,
    pub name: String,
    pub kept: String,
    pub dropped: String,
}

/// One backend's contribution, in config order.
#[derive(Clone)]
pub struct Source<'a> {
    pub backend: Arc<str>,
    pub prefix: Option<&'a str>,
    pub filter: &'a ToolFilter,
    pub caps: &'a Discovered,
}

#[derive(Default)]
pub struct Registry {
    pub tools: Vec<ToolEntry>,
    pub resources: Vec<ResourceEntry>,
    pub templates: Vec<TemplateEntry>,
    pub prompts: Vec<PromptEntry>,
    pub conflicts: Vec<Conflict>,
    tool_idx: HashMap<String, usize>,
    resource_idx: HashMap<String, usize>,
    template_idx: HashMap<String, usize>,
    prompt_idx: HashMap<String, usize>,
    /// Exposed name → backend, for backends that are not connected: the
    /// names they exposed last (prefix and filter applied), none that a
    /// connected backend serves. Not listed to clients.
    offline_tools: HashMap<String, Arc<str>>,
    offline_prompts: HashMap<String, Arc<str>>,
    /// Serialized list results: `{"tools":[…]}` etc.
    pub tools_json: Option<Box<RawValue>>,
    pub resources_json: Option<Box<RawValue>>,
    pub templates_json: Option<Box<RawValue>>,
    pub prompts_json: Option<Box<RawValue>>,
    /// The backends this registry draws from (`None`: every one; a view's
    /// `backends`).
    backends: Option<Vec<String>>,
    /// The configured views, in file order, each a registry of its own.
    views: Vec<(Arc<str>, Option<String>, Registry)>,
}

fn exposed(prefix: Option<&str>, name: &str) -> String {
    match prefix {
        Some(p) => format!("{p}__{name}"),
        None => name.to_owned(),
    }
}

fn str_field<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str)
}

impl Registry {
    pub fn build(sources: &[Source<'_>]) -> Registry {
        Registry::build_with_offline(sources, &[])
    }

    /// [`Registry::build`] from the connected backends' `sources`, plus the
    /// unlisted lookup of the names that the backends of `offline` (not
    /// connected now; their last discovered lists) would expose. Config
    /// order decides between two offline backends, as in the lists.
    pub fn build_with_offline(sources: &[Source<'_>], offline: &[Source<'_>]) -> Registry {
        Registry::build_filtered(sources, offline, None)
    }

    /// [`Registry::build_with_offline`] plus one registry per view of
    /// `views`: the sources of its backends, its tool globs over exposed
    /// names. Done once per build, so a view's lookups are a map lookup.
    pub fn build_with_views(sources: &[Source<'_>], offline: &[Source<'_>], views: &[ViewConfig]) -> Registry {
        let mut r = Registry::build_filtered(sources, offline, None);
        for v in views {
            let up: Vec<Source<'_>> = sources.iter().filter(|s| v.has_backend(&s.backend)).cloned().collect();
            let down: Vec<Source<'_>> = offline.iter().filter(|s| v.has_backend(&s.backend)).cloned().collect();
            let mut vr = Registry::build_filtered(&up, &down, Some(&v.tools));
            vr.backends = v.backends.clone();
            r.views.push((v.name.as_str().into(), v.description.clone(), vr));
        }
        r
    }

    /// The registry a client of `view` sees: the whole catalog for `None`,
    /// the view's own for a configured view, `None` for an unknown one.
    pub fn view(&self, view: Option<&str>) -> Option<&Registry> {
        match view {
            None => Some(self),
            Some(name) => self.views.iter().find(|(n, _, _)| &**n == name).map(|(_, _, r)| r),
        }
    }

    /// The configured views: name, description and registry, in file order.
    pub fn views(&self) -> impl Iterator<Item = (&str, Option<&str>, &Registry)> {
        self.views.iter().map(|(n, d, r)| (&**n, d.as_deref(), r))
    }

    /// Whether this registry draws from backend `name` (every backend for
    /// the whole catalog; a view's `backends` otherwise).
    pub fn includes_backend(&self, name: &str) -> bool {
        self.backends.as_ref().is_none_or(|l| l.iter().any(|b| b == name))
    }

    /// `view_tools`: a view's globs over exposed tool names.
    fn build_filtered(sources: &[Source<'_>], offline: &[Source<'_>], view_tools: Option<&ToolFilter>) -> Registry {
        let mut r = Registry::build_lists(sources, view_tools);
        for s in offline {
            for t in &s.caps.tools {
                let Some(orig) = str_field(t, "name").filter(|n| s.filter.allows(n)) else { continue };
                let name = exposed(s.prefix, orig);
                if view_tools.is_some_and(|f| !f.allows(&name)) {
                    continue;
                }
                if !r.tool_idx.contains_key(&name) {
                    r.offline_tools.entry(name).or_insert_with(|| s.backend.clone());
                }
            }
            for p in &s.caps.prompts {
                let Some(orig) = str_field(p, "name") else { continue };
                let name = exposed(s.prefix, orig);
                if !r.prompt_idx.contains_key(&name) {
                    r.offline_prompts.entry(name).or_insert_with(|| s.backend.clone());
                }
            }
        }
        r
    }

    fn build_lists(sources: &[Source<'_>], view_tools: Option<&ToolFilter>) -> Registry {
        let mut r = Registry::default();
        for s in sources {
            for t in &s.caps.tools {
                let Some(orig) = str_field(t, "name") else { continue };
                if !s.filter.allows(orig) {
                    continue;
                }
                let name = exposed(s.prefix, orig);
                if view_tools.is_some_and(|f| !f.allows(&name)) {
                    continue;
                }
                if let Some(&i) = r.tool_idx.get(&name) {
                    r.conflicts.push(conflict("tool", &name, &r.tools[i].backend, &s.backend));
                    continue;
                }
                let mut def = t.clone();
                def["name"] = Value::from(name.clone());
                r.tool_idx.insert(name.clone(), r.tools.len());
                r.tools.push(ToolEntry { name, original: orig.to_owned(), backend: s.backend.clone(), def });
            }
            for res in &s.caps.resources {
                let Some(uri) = str_field(res, "uri") else { continue };
                if let Some(&i) = r.resource_idx.get(uri) {
                    r.conflicts.push(conflict("resource", uri, &r.resources[i].backend, &s.backend));
                    continue;
                }
                r.resource_idx.insert(uri.to_owned(), r.resources.len());
                r.resources.push(ResourceEntry { uri: uri.to_owned(), backend: s.backend.clone(), def: res.clone() });
            }
            for t in &s.caps.resource_templates {
                let Some(ut) = str_field(t, "uriTemplate") else { continue };
                if let Some(&i) = r.template_idx.get(ut) {
                    r.conflicts.push(conflict("resource_template", ut, &r.templates[i].backend, &s.backend));
                    continue;
                }
                r.template_idx.insert(ut.to_owned(), r.templates.len());
                let template = match Template::parse(ut) {
                    Ok(t) => Some(t),
                    Err(TooManyParts { parts }) => {
                        log::warn!(
                            "backend '{}': resource template \"{}\" has {parts} parts, more than the {} a template \
                             may have to route by; it is listed, but resources/read and completion/complete route \
                             no URI by it",
                            s.backend,
                            crate::util::printable(ut, 200),
                            template::MAX_PARTS,
                        );
                        None
                    }
                };
                r.templates.push(TemplateEntry {
                    uri_template: ut.to_owned(),
                    backend: s.backend.clone(),
                    def: t.clone(),
                    template,
                });
            }
            for p in &s.caps.prompts {
                let Some(orig) = str_field(p, "name") else { continue };
                let name = exposed(s.prefix, orig);
                if let Some(&i) = r.prompt_idx.get(&name) {
                    r.conflicts.push(conflict("prompt", &name, &r.prompts[i].backend, &s.backend));
                    continue;
                }
                let mut def = p.clone();
                def["name"] = Value::from(name.clone());
                r.prompt_idx.insert(name.clone(), r.prompts.len());
                r.prompts.push(PromptEntry { name, original: orig.to_owned(), backend: s.backend.clone(), def });
            }
        }
        r.tools_json = raw(&json!({ "tools": r.tools.iter().map(|e| &e.def).collect::<Vec<_>>() }));
        r.resources_json = raw(&json!({ "resources": r.resources.iter().map(|e| &e.def).collect::<Vec<_>>() }));
        r.templates_json = raw(&json!({ "resourceTemplates": r.templates.iter().map(|e| &e.def).collect::<Vec<_>>() }));
        r.prompts_json = raw(&json!({ "prompts": r.prompts.iter().map(|e| &e.def).collect::<Vec<_>>() }));
        r
    }

    pub fn tool(&self, name: &str) -> Option<&ToolEntry> {
        self.tool_idx.get(name).map(|&i| &self.tools[i])
    }

    pub fn prompt(&self, name: &str) -> Option<&PromptEntry> {
        self.prompt_idx.get(name).map(|&i| &self.prompts[i])
    }

    /// The backend, not connected now, that last exposed tool `name`.
    pub fn offline_tool(&self, name: &str) -> Option<&Arc<str>> {
        self.offline_tools.get(name)
    }

    /// The backend, not connected now, that last exposed prompt `name`.
    pub fn offline_prompt(&self, name: &str) -> Option<&Arc<str>> {
        self.offline_prompts.get(name)
    }

    /// The backend that serves `uri`: a listed resource first, then the
    /// first (config order) template that matches it. A URI over
    /// `template::MAX_URI_BYTES` (8 KiB) matches no template; each template
    /// costs at most one pass per part over the URI (`registry/template.rs`).
    pub fn resource_owner(&self, uri: &str) -> Option<&Arc<str>> {
        if let Some(&i) = self.resource_idx.get(uri) {
            return Some(&self.resources[i].backend);
        }
        let mut m = Matcher::default();
        self.templates
            .iter()
            .find(|t| t.template.as_ref().is_some_and(|tpl| tpl.matches(uri, &mut m)))
            .map(|t| &t.backend)
    }

    /// The backend for a completion reference to a resource (template).
    pub fn resource_ref_owner(&self, uri: &str) -> Option<&Arc<str>> {
        match self.template_idx.get(uri) {
            Some(&i) => Some(&self.templates[i].backend),
            None => self.resource_owner(uri),
        }
    }

    /// Which list kinds differ from `old` (tools, resources incl. templates,
    /// prompts), to send one list_changed per changed kind.
    pub fn changed_kinds(&self, old: &Registry) -> (bool, bool, bool) {
        let same = |a: &Option<Box<RawValue>>, b: &Option<Box<RawValue>>| {
            a.as_ref().map(|r| r.get()) == b.as_ref().map(|r| r.get())
        };
        (
            !same(&self.tools_json, &old.tools_json),
            !same(&self.resources_json, &old.resources_json) || !same(&self.templates_json, &old.templates_json),
            !same(&self.prompts_json, &old.prompts_json),
        )
    }
}

impl Registry {
    /// [`Registry::changed_kinds`] as a client of `view` sees it; a view
    /// that appeared or went away counts as every list changed.
    pub fn view_changed_kinds(&self, old: &Registry, view: Option<&str>) -> (bool, bool, bool) {
        match (self.view(view), old.view(view)) {
            (Some(new), Some(old)) => new.changed_kinds(old),
            _ => (true, true, true),
        }
    }
}

fn conflict(kind: &'static str, name: &str, kept: &str, dropped: &str) -> Conflict {
    Conflict { kind, name: name.to_owned(), kept: kept.to_owned(), dropped: dropped.to_owned() }
}

fn raw(v: &Value) -> Option<Box<RawValue>> {
    serde_json::value::to_raw_value(v).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(tools: &[&str], res: &[&str], tpl: &[&str], prompts: &[&str]) -> Discovered {
        Discovered {
            tools: tools.iter().map(|n| json!({"name": n, "inputSchema": {"type":"object"}})).collect(),
            resources: res.iter().map(|u| json!({"uri": u, "name": u})).collect(),
            resource_templates: tpl.iter().map(|u| json!({"uriTemplate": u, "name": "t"})).collect(),
            prompts: prompts.iter().map(|n| json!({"name": n})).collect(),
            logging: false,
            completions: true,
            subscribe: false,
            hints: Vec::new(),
        }
    }

    #[test]
    fn first_configured_wins_and_conflicts_are_reported() {
        let none = ToolFilter::default();
        let a = caps(&["echo", "add"], &["file:///a"], &["x://{id}"], &["greet"]);
        let b = caps(&["echo", "sub"], &["file:///a", "file:///b"], &["x://{id}"], &["greet"]);
        let r = Registry::build(&[
            Source { backend: "a".into(), prefix: None, filter: &none, caps: &a },
            Source { backend: "b".into(), prefix: None, filter: &none, caps: &b },
        ]);
        assert_eq!(r.tools.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), vec!["echo", "add", "sub"]);
        assert_eq!(&*r.tool("echo").unwrap().backend, "a");
        assert_eq!(&*r.tool("sub").unwrap().backend, "b");
        let kinds: Vec<_> =
            r.conflicts.iter().map(|c| (c.kind, c.name.as_str(), c.kept.as_str(), c.dropped.as_str())).collect();
        assert_eq!(
            kinds,
            vec![
                ("tool", "echo", "a", "b"),
                ("resource", "file:///a", "a", "b"),
                ("resource_template", "x://{id}", "a", "b"),
                ("prompt", "greet", "a", "b"),
            ]
        );
        let tools: Value = serde_json::from_str(r.tools_json.as_ref().unwrap().get()).unwrap();
        assert_eq!(tools["tools"].as_array().unwrap().len(), 3);
    }

    #[test]
    fn namespaces_are_separate() {
        let none = ToolFilter::default();
        let a = caps(&["x"], &[], &[], &[]);
        let b = caps(&[], &[], &[], &["x"]);
        let r = Registry::build(&[
            Source { backend: "a".into(), prefix: None, filter: &none, caps: &a },
            Source { backend: "b".into(), prefix: None, filter: &none, caps: &b },
        ]);
        assert!(r.conflicts.is_empty());
        assert_eq!(&*r.prompt("x").unwrap().backend, "b");
    }

    #[test]
    fn prefixes_and_filters() {
        let filter = ToolFilter { allow: vec!["e*".into(), "add".into()], deny: vec!["evil".into()] };
        let a = caps(&["echo", "evil", "add", "rm"], &[], &[], &["greet"]);
        let r = Registry::build(&[Source { backend: "a".into(), prefix: Some("gh"), filter: &filter, caps: &a }]);
        let names: Vec<_> = r.tools.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, vec!["gh__echo", "gh__add"]);
        assert_eq!(r.tool("gh__echo").unwrap().original, "echo");
        assert_eq!(r.tool("gh__echo").unwrap().def["name"], "gh__echo");
        assert_eq!(r.prompt("gh__greet").unwrap().original, "greet");
    }

    #[test]
    fn resources_route_by_uri_then_template() {
        let none = ToolFilter::default();
        let a = caps(&[], &["demo://a/readme"], &["demo://a/items/{id}"], &[]);
        let b = caps(&[], &["demo://b/readme"], &["file:///{+path}", "search://x{?q,lang}"], &[]);
        let r = Registry::build(&[
            Source { backend: "a".into(), prefix: None, filter: &none, caps: &a },
            Source { backend: "b".into(), prefix: None, filter: &none, caps: &b },
        ]);
        let owner = |u: &str| r.resource_owner(u).map(|b| b.to_string());
        assert_eq!(owner("demo://b/readme").as_deref(), Some("b"));
        assert_eq!(owner("demo://a/items/42").as_deref(), Some("a"));
        assert_eq!(owner("demo://a/items/").as_deref(), None);
        assert_eq!(owner("demo://a/items/4/2").as_deref(), None);
        assert_eq!(owner("file:///etc/hosts").as_deref(), Some("b"));
        assert_eq!(owner("search://x?q=1&lang=en").as_deref(), Some("b"));
        assert_eq!(owner("search://x").as_deref(), Some("b"));
        assert_eq!(owner("nope://x").as_deref(), None);
        assert_eq!(r.resource_ref_owner("demo://a/items/{id}").map(|b| b.to_string()).as_deref(), Some("a"));
    }

    #[test]
    fn oversized_templates_and_long_uris_route_nothing() {
        let none = ToolFilter::default();
        let big = format!("x://{}", "{a}-".repeat(2_500));
        let long_resource = format!("file:///{}", "a".repeat(10_000));
        let a = caps(&[], &[&long_resource], &[&big, "x://{+a}/{+b}.md"], &[]);
        let r = Registry::build(&[Source { backend: "a".into(), prefix: None, filter: &none, caps: &a }]);
        let owner = |u: &str| r.resource_owner(u).map(|b| b.to_string());
        // Listed, but not matched: this URI is one `big` would match.
        assert_eq!(r.templates.len(), 2);
        assert_eq!(owner(&format!("x://{}", "a-".repeat(2_500))), None);
        // Its exact text still names its backend for completion.
        assert_eq!(r.resource_ref_owner(&big).map(|b| b.to_string()).as_deref(), Some("a"));
        // The other template routes up to the URI cap, not past it.
        let at_cap = format!("x://{}.md", "/".repeat(template::MAX_URI_BYTES - 7));
        assert_eq!(owner(&at_cap).as_deref(), Some("a"));
        assert_eq!(owner(&format!("x:///{}", &at_cap[4..])), None, "one byte over the cap");
        // A listed resource is found by its exact URI at any length.
        assert_eq!(owner(&long_resource).as_deref(), Some("a"));
    }

    #[test]
    fn names_of_backends_that_are_down_are_known_but_not_listed() {
        let none = ToolFilter::default();
        let filter = ToolFilter { allow: vec![], deny: vec!["secret".into()] };
        let up = caps(&["echo"], &[], &[], &["greet"]);
        let down = caps(&["echo", "only_down", "secret"], &[], &[], &["greet", "ask"]);
        let other = caps(&["only_down", "late"], &[], &[], &[]);
        let r = Registry::build_with_offline(
            &[Source { backend: "up".into(), prefix: None, filter: &none, caps: &up }],
            &[
                Source { backend: "down".into(), prefix: None, filter: &filter, caps: &down },
                Source { backend: "other".into(), prefix: Some("o"), filter: &none, caps: &other },
                Source { backend: "third".into(), prefix: None, filter: &none, caps: &other },
            ],
        );
        let owner = |n: &str| r.offline_tool(n).map(|b| b.to_string());
        // A connected backend's name is served, never shadowed.
        assert_eq!(owner("echo"), None);
        assert_eq!(r.tool("echo").map(|t| &*t.backend), Some("up"));
        assert_eq!(owner("only_down").as_deref(), Some("down"), "first in config order");
        assert_eq!(owner("secret"), None, "filtered out");
        assert_eq!(owner("o__late").as_deref(), Some("other"), "prefix applied");
        assert_eq!(owner("late").as_deref(), Some("third"));
        assert_eq!(r.offline_prompt("ask").map(|b| b.to_string()).as_deref(), Some("down"));
        assert_eq!(r.offline_prompt("greet"), None);
        // Not listed.
        let tools: Value = serde_json::from_str(r.tools_json.as_ref().unwrap().get()).unwrap();
        assert_eq!(tools["tools"].as_array().unwrap().len(), 1);
        assert!(r.conflicts.is_empty());
    }

    fn view(name: &str, backends: Option<&[&str]>, allow: &[&str], deny: &[&str]) -> ViewConfig {
        ViewConfig {
            name: name.into(),
            backends: backends.map(|l| l.iter().map(|b| b.to_string()).collect()),
            tools: ToolFilter {
                allow: allow.iter().map(|g| g.to_string()).collect(),
                deny: deny.iter().map(|g| g.to_string()).collect(),
            },
            description: None,
        }
    }

    #[test]
    fn views_filter_by_backend_and_exposed_name() {
        let none = ToolFilter::default();
        let a = caps(&["echo", "delete_all", "add"], &["a://r"], &["a://{id}"], &["greet"]);
        let b = caps(&["echo", "sub"], &["b://r"], &["b://{id}"], &["greet", "ask"]);
        let sources = [
            Source { backend: "a".into(), prefix: Some("a"), filter: &none, caps: &a },
            Source { backend: "b".into(), prefix: None, filter: &none, caps: &b },
        ];
        let views = [
            view("dev", Some(&["a"]), &["a__*"], &["*delete*"]),
            view("all", None, &[], &["sub"]),
            view("bonly", Some(&["b"]), &[], &[]),
        ];
        let r = Registry::build_with_views(&sources, &[], &views);
        assert_eq!(r.views().map(|(n, _, _)| n).collect::<Vec<_>>(), vec!["dev", "all", "bonly"]);
        assert!(r.view(Some("nope")).is_none());
        assert!(std::ptr::eq(r.view(None).unwrap(), &r));
        fn names(v: &Registry) -> Vec<&str> {
            v.tools.iter().map(|t| t.name.as_str()).collect()
        }
        let dev = r.view(Some("dev")).unwrap();
        assert_eq!(names(dev), vec!["a__echo", "a__add"]);
        assert!(dev.tool("a__delete_all").is_none() && dev.tool("sub").is_none());
        assert!(r.tool("a__delete_all").is_some(), "the whole catalog is unchanged");
        // Resources, templates and prompts by backend only.
        assert_eq!(dev.resource_owner("a://r").map(|b| &**b), Some("a"));
        assert_eq!(dev.resource_owner("b://r"), None);
        assert_eq!(dev.resource_owner("b://42"), None);
        assert_eq!(dev.resource_ref_owner("b://{id}"), None);
        assert!(dev.prompt("a__greet").is_some() && dev.prompt("ask").is_none());
        assert!(dev.includes_backend("a") && !dev.includes_backend("b") && r.includes_backend("b"));
        // The pre-serialized lists are the view's.
        let listed: Value = serde_json::from_str(dev.tools_json.as_ref().unwrap().get()).unwrap();
        assert_eq!(listed["tools"].as_array().unwrap().len(), 2);
        let prompts: Value = serde_json::from_str(dev.prompts_json.as_ref().unwrap().get()).unwrap();
        assert_eq!(prompts["prompts"], json!([{"name": "a__greet"}]));
        assert_eq!(names(r.view(Some("all")).unwrap()), vec!["a__echo", "a__delete_all", "a__add", "echo"]);
        assert_eq!(names(r.view(Some("bonly")).unwrap()), vec!["echo", "sub"]);
        // Per-view changes: a new tool of b changes nothing for dev.
        let b2 = caps(&["echo", "sub", "mul"], &["b://r"], &["b://{id}"], &["greet", "ask"]);
        let sources2 = [sources[0].clone(), Source { backend: "b".into(), prefix: None, filter: &none, caps: &b2 }];
        let r2 = Registry::build_with_views(&sources2, &[], &views);
        assert_eq!(r2.view_changed_kinds(&r, Some("dev")), (false, false, false));
        assert_eq!(r2.view_changed_kinds(&r, Some("bonly")), (true, false, false));
        assert_eq!(r2.view_changed_kinds(&r, None), (true, false, false));
        assert_eq!(r2.view_changed_kinds(&r, Some("gone")), (true, true, true));
    }

    #[test]
    fn views_see_offline_names_of_their_backends_only() {
        let none = ToolFilter::default();
        let down = caps(&["echo", "rm"], &[], &[], &["greet"]);
        let offline = [Source { backend: "down".into(), prefix: None, filter: &none, caps: &down }];
        let views = [view("v", Some(&["down"]), &[], &["rm"]), view("w", Some(&[]), &[], &[])];
        let r = Registry::build_with_views(&[], &offline, &views);
        let v = r.view(Some("v")).unwrap();
        assert_eq!(v.offline_tool("echo").map(|b| &**b), Some("down"));
        assert_eq!(v.offline_tool("rm"), None);
        assert_eq!(v.offline_prompt("greet").map(|b| &**b), Some("down"));
        let w = r.view(Some("w")).unwrap();
        assert_eq!(w.offline_tool("echo"), None);
        assert_eq!(w.offline_prompt("greet"), None);
    }

    #[test]
    fn changed_kinds_detects_each_list() {
        let none = ToolFilter::default();
        let a = caps(&["x"], &["u://1"], &[], &["p"]);
        let a2 = caps(&["x", "y"], &["u://1"], &[], &["p"]);
        let r1 = Registry::build(&[Source { backend: "a".into(), prefix: None, filter: &none, caps: &a }]);
        let r2 = Registry::build(&[Source { backend: "a".into(), prefix: None, filter: &none, caps: &a2 }]);
        assert_eq!(r2.changed_kinds(&r1), (true, false, false));
        assert_eq!(r1.changed_kinds(&r1), (false, false, false));
    }
}
