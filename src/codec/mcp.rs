//! MCP constants: protocol revisions served, and the method names the
//! gateway routes on.

/// Revisions the gateway serves to clients, newest first.
pub const SUPPORTED_VERSIONS: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

/// The revision the gateway asks backends for (they may answer an older one).
pub const CLIENT_VERSION: &str = "2025-11-25";

/// Assumed on Streamable HTTP when `MCP-Protocol-Version` is absent.
pub const DEFAULT_HTTP_VERSION: &str = "2025-03-26";

/// The first stateless revision.
pub const FIRST_STATELESS: &str = "2026-07-28";

/// The stateless revision served (per request, no session).
pub const MODERN_VERSION: &str = "2026-07-28";

/// Every revision served, newest first (`server/discover`, -32022 data).
pub const ALL_VERSIONS: &[&str] = &["2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

/// `_meta` keys of 2026-07-28 (SEP-2567 and friends).
pub mod meta {
    pub const PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
    pub const CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
    pub const CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
    pub const LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";
    pub const SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
    pub const SUBSCRIPTION_ID: &str = "io.modelcontextprotocol/subscriptionId";
}

/// Whether `v` is the stateless revision the gateway serves.
pub fn is_modern(v: &str) -> bool {
    v == MODERN_VERSION
}

/// Whether `v` is a revision we serve.
pub fn is_supported(v: &str) -> bool {
    SUPPORTED_VERSIONS.contains(&v)
}

/// Whether `v` looks like a date revision at or after the stateless era.
/// Revisions are ISO dates, so string order is date order.
pub fn is_stateless(v: &str) -> bool {
    looks_like_revision(v) && v >= FIRST_STATELESS
}

fn looks_like_revision(v: &str) -> bool {
    let b = v.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter().enumerate().all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

/// Picks the revision to answer an `initialize` with: the client's if we
/// serve it, otherwise our newest.
pub fn negotiate(requested: Option<&str>) -> &'static str {
    match requested {
        Some(v) => SUPPORTED_VERSIONS.iter().copied().find(|s| *s == v).unwrap_or(SUPPORTED_VERSIONS[0]),
        None => SUPPORTED_VERSIONS[0],
    }
}

/// Batches exist only in 2025-03-26.
pub fn allows_batch(v: &str) -> bool {
    v == "2025-03-26"
}

pub mod method {
    pub const INITIALIZE: &str = "initialize";
    pub const INITIALIZED: &str = "notifications/initialized";
    pub const PING: &str = "ping";
    pub const TOOLS_LIST: &str = "tools/list";
    pub const TOOLS_CALL: &str = "tools/call";
    pub const RESOURCES_LIST: &str = "resources/list";
    pub const RESOURCES_TEMPLATES_LIST: &str = "resources/templates/list";
    pub const RESOURCES_READ: &str = "resources/read";
    pub const PROMPTS_LIST: &str = "prompts/list";
    pub const PROMPTS_GET: &str = "prompts/get";
    pub const COMPLETE: &str = "completion/complete";
    pub const SET_LEVEL: &str = "logging/setLevel";
    pub const CANCELLED: &str = "notifications/cancelled";
    pub const PROGRESS: &str = "notifications/progress";
    pub const TOOLS_CHANGED: &str = "notifications/tools/list_changed";
    pub const RESOURCES_CHANGED: &str = "notifications/resources/list_changed";
    pub const PROMPTS_CHANGED: &str = "notifications/prompts/list_changed";
    pub const MESSAGE: &str = "notifications/message";
    pub const SUBSCRIBE: &str = "resources/subscribe";
    pub const UNSUBSCRIBE: &str = "resources/unsubscribe";
    pub const RESOURCE_UPDATED: &str = "notifications/resources/updated";
    pub const ROOTS_CHANGED: &str = "notifications/roots/list_changed";
    pub const DISCOVER: &str = "server/discover";
    pub const LISTEN: &str = "subscriptions/listen";
    pub const SUBSCRIPTIONS_ACKNOWLEDGED: &str = "notifications/subscriptions/acknowledged";
    pub const SAMPLING: &str = "sampling/createMessage";
    pub const ELICIT: &str = "elicitation/create";
    pub const ROOTS_LIST: &str = "roots/list";

    /// The `'static` name of a method the gateway forwards to backends.
    pub fn forwarded(m: &str) -> Option<&'static str> {
        [TOOLS_CALL, PROMPTS_GET, RESOURCES_READ, COMPLETE, SET_LEVEL, SUBSCRIBE, UNSUBSCRIBE]
            .into_iter()
            .find(|k| *k == m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation() {
        assert_eq!(negotiate(Some("2024-11-05")), "2024-11-05");
        assert_eq!(negotiate(Some("2025-06-18")), "2025-06-18");
        assert_eq!(negotiate(Some("1999-01-01")), "2025-11-25");
        assert_eq!(negotiate(None), "2025-11-25");
    }

    #[test]
    fn stateless_detection() {
        assert!(is_stateless("2026-07-28"));
        assert!(is_stateless("2027-01-01"));
        assert!(!is_stateless("2025-11-25"));
        assert!(!is_stateless("garbage-xx"));
        assert!(!is_stateless("DRAFT-2026-v1"));
    }

    #[test]
    fn batches_only_in_2025_03_26() {
        assert!(allows_batch("2025-03-26"));
        assert!(!allows_batch("2025-06-18"));
        assert!(!allows_batch("2024-11-05"));
    }
}
