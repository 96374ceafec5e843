//! What operators are shown of a backend's endpoint, a URL or an error
//! text that quotes one: env and header values never, URL credentials and
//! secret-looking query values, flags and header arguments as `***`, and
//! values of `${VAR}` references as the reference. Pure functions, any
//! thread.

use super::expand::hide_expanded;
use super::{BackendConfig, Command};

impl BackendConfig {
    /// The command line or URL shown to operators (`BACKEND_VIEW.endpoint`),
    /// with secrets redacted: env and header values are never shown, URL
    /// credentials and secret-looking query values become `***`, and so do
    /// values of secret-looking command-line flags (`--token X`,
    /// `--api-key=X`) and header arguments (`--header "Authorization: X"`).
    /// Empty for an invalid backend.
    pub fn endpoint(&self) -> String {
        if self.transport.is_err() {
            return String::new();
        }
        self.shown.clone()
    }
}

impl Command {
    /// `command args...` joined with spaces, secrets redacted (see
    /// [`BackendConfig::endpoint`]).
    pub fn redacted_line(&self) -> String {
        let mut parts = vec![self.command.clone()];
        // What the previous argument says about this one.
        let mut next_is_secret = false;
        let mut next_is_header = false;
        for arg in &self.args {
            let shown = if next_is_secret {
                "***".to_string()
            } else if next_is_header {
                redact_header_arg(arg)
            } else if let Some(v) = arg.strip_prefix("--header=") {
                format!("--header={}", redact_header_arg(v))
            } else if let Some(v) = arg.strip_prefix("-H").filter(|v| !v.is_empty()) {
                // `-HName: value`, the short flag with its value attached.
                format!("-H{}", redact_header_arg(v))
            } else if arg.starts_with("http://") || arg.starts_with("https://") {
                redact_url(arg)
            } else if let Some((name, _)) = arg.split_once('=') {
                // `--token=X`, `-e API_KEY=X`, `API_KEY=X` (as given to `env`).
                if is_secret_key(name.trim_start_matches('-')) {
                    format!("{name}=***")
                } else {
                    arg.clone()
                }
            } else if looks_like_secret_header(arg) {
                redact_header_arg(arg)
            } else {
                arg.clone()
            };
            // A bare flag (`--token`, `-H`), not one with its value attached.
            let is_flag = arg.starts_with('-') && !arg.contains(['=', ':', ' ']);
            next_is_header = is_flag && (arg == "--header" || arg == "-H");
            next_is_secret = is_flag && !next_is_header && is_secret_key(arg);
            parts.push(shown);
        }
        parts.join(" ")
    }
}

/// `Name: value` → `Name: ***`; anything else is hidden whole.
fn redact_header_arg(arg: &str) -> String {
    match arg.split_once(':') {
        Some((name, _)) => format!("{name}: ***"),
        None => "***".to_string(),
    }
}

/// `Authorization: …`, `X-Api-Key: …`, `Cookie: …` given as a bare
/// argument (a header a tool takes positionally).
fn looks_like_secret_header(arg: &str) -> bool {
    match arg.split_once(':') {
        Some((name, value)) => {
            let header_name = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
            header_name
                && value.starts_with(' ')
                && (is_secret_key(name)
                    || name.eq_ignore_ascii_case("cookie")
                    || name.to_ascii_lowercase().contains("api"))
        }
        None => false,
    }
}

/// Whether a query key or flag name probably carries a secret.
fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k == "sig" || ["token", "key", "secret", "password", "passwd", "auth", "signature"].iter().any(|s| k.contains(s))
}

/// Replaces URL credentials and secret-looking query (and fragment) values
/// with `***`. A user name alone is hidden too: `https://TOKEN@host` is a
/// common way to pass a token.
pub fn redact_url(url: &str) -> String {
    let url = &hide_expanded(url);
    let Some(i) = url.find("://") else {
        return url.to_string();
    };
    let (scheme, rest) = url.split_at(i + 3);
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let authority = match authority.rfind('@') {
        Some(at) => {
            let (user, host) = (&authority[..at], &authority[at + 1..]);
            match user.split_once(':') {
                Some((name, _)) => format!("{name}:***@{host}"),
                None => format!("***@{host}"),
            }
        }
        None => authority.to_string(),
    };
    let (before_frag, frag) = match tail.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (tail, None),
    };
    let (path, query) = match before_frag.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (before_frag, None),
    };
    let mut out = format!("{scheme}{authority}{path}");
    if let Some(q) = query {
        out.push('?');
        out.push_str(&redact_pairs(q));
    }
    if let Some(f) = frag {
        out.push('#');
        out.push_str(&redact_pairs(f));
    }
    out
}

/// `text` (say, an error message of the HTTP client) with every copy of
/// `url` replaced by its redacted form, and every secret the URL carries
/// (password or lone user name, values of secret-looking query or fragment
/// keys) replaced by `***` wherever it appears: the client may print the URL
/// normalized, or only its path and query.
pub fn scrub_url(text: &str, url: &str) -> String {
    let mut out = hide_expanded(&text.replace(url, &redact_url(url)));
    for secret in url_secrets(url) {
        // A secret of one to three characters would garble the message more
        // than it hides; such a value is no secret anyway.
        if secret.len() >= 4 {
            out = out.replace(secret, "***");
        }
    }
    out
}

/// The parts of `url` that [`redact_url`] hides.
fn url_secrets(url: &str) -> Vec<&str> {
    let Some(i) = url.find("://") else {
        return Vec::new();
    };
    let rest = &url[i + 3..];
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let mut out = Vec::new();
    if let Some(at) = authority.rfind('@') {
        let user = &authority[..at];
        out.push(user.split_once(':').map_or(user, |(_, password)| password));
    }
    let (before_frag, frag) = tail.split_once('#').map_or((tail, None), |(b, f)| (b, Some(f)));
    let query = before_frag.split_once('?').map(|(_, q)| q);
    for part in [query, frag].into_iter().flatten() {
        for pair in part.split('&') {
            if let Some((k, v)) = pair.split_once('=') {
                if is_secret_key(k) && !v.is_empty() {
                    out.push(v);
                }
            }
        }
    }
    out
}

fn redact_pairs(s: &str) -> String {
    s.split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if is_secret_key(k) => format!("{k}=***"),
            _ => pair.to_string(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::backend;
    use crate::config::{parse_with_env, Transport};
    use std::path::Path;

    #[test]
    fn endpoint_redaction() {
        let ep = |json: &str| backend(json).endpoint();
        assert_eq!(
            ep(r#"{"command": "uvx", "args": ["mcp-server-git", "--repository", "."], "env": {"K": "secret"}}"#),
            "uvx mcp-server-git --repository ."
        );
        assert_eq!(ep(r#"{"url": "https://user:pw@host/x"}"#), "https://user:***@host/x");
        assert_eq!(ep(r#"{"url": "https://ghp_abc@host"}"#), "https://***@host");
        assert_eq!(
            ep(r#"{"url": "https://host/mcp?api_key=k&x=1&Token=t&AUTH=a#frag"}"#),
            "https://host/mcp?api_key=***&x=1&Token=***&AUTH=***#frag"
        );
        assert_eq!(
            ep(r#"{"type": "sse", "url": "http://h/sse", "headers": {"Authorization": "Bearer zzz"}}"#),
            "http://h/sse"
        );
        assert_eq!(
            ep(r#"{"url": "http://h:8080/p?password=x&passwordless=1"}"#),
            "http://h:8080/p?password=***&passwordless=***"
        );
        assert_eq!(
            ep(r#"{"command": "npx", "args": ["mcp-remote", "https://u:p@h/mcp?token=t", "--header", "Authorization: Bearer x", "--api-key", "k", "--token=t", "--verbose"]}"#),
            "npx mcp-remote https://u:***@h/mcp?token=*** --header Authorization: *** --api-key *** --token=*** --verbose"
        );
        assert_eq!(ep(r#"{"type": "stdio"}"#), "");
        assert_eq!(redact_url("not a url"), "not a url");
        // Every argument form of a header, and secrets given as NAME=VALUE.
        assert_eq!(
            ep(r#"{"command": "npx", "args": ["--header=Authorization: Bearer x", "-HX-Api-Key: k", "-H", "Cookie: c", "X-Api-Key: k2", "-e", "GITHUB_TOKEN=t", "PLAIN=1"]}"#),
            "npx --header=Authorization: *** -HX-Api-Key: *** -H Cookie: *** X-Api-Key: *** -e GITHUB_TOKEN=*** PLAIN=1"
        );
    }

    #[test]
    fn the_shown_endpoint_keeps_var_references_instead_of_their_values() {
        let env = |k: &str| (k == "SECRET_PATH").then(|| "s3cr3t-v4lue".to_owned());
        let c = parse_with_env(
            r#"{"mcpServers": {
                "u": {"url": "https://api.example.com/${SECRET_PATH}/mcp"},
                "c": {"command": "tool", "args": ["--endpoint", "https://h/${SECRET_PATH}", "${SECRET_PATH}"]}}}"#,
            Some(Path::new("c.json")),
            &env,
        )
        .expect("parses");
        let shown: Vec<String> = c.backends.iter().map(BackendConfig::endpoint).collect();
        assert_eq!(
            shown,
            ["https://api.example.com/${SECRET_PATH}/mcp", "tool --endpoint https://h/${SECRET_PATH} ${SECRET_PATH}"]
        );
        assert!(format!("{:?}", c.backends).find("s3cr3t").is_none(), "Debug shows no secret: {:?}", c.backends);
        // The expanded values are what the backends get.
        match &c.backends[0].transport {
            Ok(Transport::StreamableHttp { url, .. }) => assert_eq!(url, "https://api.example.com/s3cr3t-v4lue/mcp"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn expanded_values_are_shown_as_their_references_in_errors() {
        let env = |k: &str| (k == "PATH_KEY").then(|| "pk-0123456789".to_owned());
        let c =
            parse_with_env(r#"{"mcpServers": {"u": {"url": "https://h/${PATH_KEY}/mcp"}}}"#, None, &env).expect("ok");
        let Ok(Transport::StreamableHttp { url, .. }) = &c.backends[0].transport else { panic!("transport") };
        assert_eq!(redact_url(url), "https://h/${PATH_KEY}/mcp");
        let err = format!("GET {url} failed: connection refused (host h, path /pk-0123456789/mcp)");
        assert_eq!(
            scrub_url(&err, url),
            "GET https://h/${PATH_KEY}/mcp failed: connection refused (host h, path /${PATH_KEY}/mcp)"
        );
    }

    #[test]
    fn error_texts_are_scrubbed_of_url_secrets() {
        let url = "https://bob:hunter22@h.example:8443/mcp?api_key=SECRET123&x=1#token=FRAG9";
        let raw = format!("bad uri: {url}");
        assert_eq!(scrub_url(&raw, url), "bad uri: https://bob:***@h.example:8443/mcp?api_key=***&x=1#token=***");
        // Normalized or partial copies lose their secrets too.
        let partial = "GET /mcp?api_key=SECRET123&x=1 failed for bob:hunter22 (fragment token=FRAG9)";
        assert_eq!(scrub_url(partial, url), "GET /mcp?api_key=***&x=1 failed for bob:*** (fragment token=***)");
        let lone = "https://ghp_abcdef@h/x";
        assert_eq!(scrub_url("io: refused by ghp_abcdef@h", lone), "io: refused by ***@h");
        // Nothing secret: the text stays as it is; short values are left alone.
        assert_eq!(scrub_url("io: Connection refused", "http://127.0.0.1:1/mcp?x=1"), "io: Connection refused");
        assert_eq!(scrub_url("key=ab in text", "http://h/?key=ab"), "key=ab in text");
        assert_eq!(scrub_url("not a url here", "not a url"), "not a url here");
    }
}
