//! `GET /metrics`: Prometheus text exposition (format 0.0.4) of per-backend
//! call counters and latency histograms, sessions by transport, restarts.
//! Rendered from lock-free counters and the runtime's state on each scrape.

use crate::backend::stats::BUCKETS;
use crate::runtime::Runtime;
use std::fmt::Write;
use std::sync::atomic::Ordering;

/// Label values escape `\`, `"` and newlines.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

pub fn render(rt: &Runtime) -> String {
    let backends = rt.backends();
    // Each backend's status read once, so its two series agree.
    let statuses: Vec<_> = backends.iter().map(|b| b.status()).collect();
    let (_, sse, streamable_http) = rt.sessions.counts();
    let mut out = String::with_capacity(4096);
    let family = |out: &mut String, name: &str, kind: &str, help: &str| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
    };
    family(&mut out, "mcp_sentinel_backend_up", "gauge", "1 if the backend is connected.");
    for (b, st) in backends.iter().zip(&statuses) {
        let up = u8::from(st.state == crate::backend::State::Connected);
        let _ = writeln!(out, "mcp_sentinel_backend_up{{backend=\"{}\"}} {up}", label(&b.name));
    }
    family(
        &mut out,
        "mcp_sentinel_backend_calls_total",
        "counter",
        "Requests sent to the backend (client calls and the gateway's own discovery).",
    );
    for b in &backends {
        let n = b.stats.calls.load(Ordering::Relaxed);
        let _ = writeln!(out, "mcp_sentinel_backend_calls_total{{backend=\"{}\"}} {n}", label(&b.name));
    }
    family(
        &mut out,
        "mcp_sentinel_backend_errors_total",
        "counter",
        "Forwarded requests that ended in an error (JSON-RPC error, timeout or lost connection).",
    );
    for b in &backends {
        let n = b.stats.errors.load(Ordering::Relaxed);
        let _ = writeln!(out, "mcp_sentinel_backend_errors_total{{backend=\"{}\"}} {n}", label(&b.name));
    }
    family(
        &mut out,
        "mcp_sentinel_backend_call_duration_seconds",
        "histogram",
        "Time from forwarding a request to the backend's answer.",
    );
    for b in &backends {
        let name = label(&b.name);
        let mut cumulative = 0u64;
        for (i, le) in BUCKETS.iter().enumerate() {
            cumulative += b.stats.buckets[i].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "mcp_sentinel_backend_call_duration_seconds_bucket{{backend=\"{name}\",le=\"{le}\"}} {cumulative}"
            );
        }
        cumulative += b.stats.buckets[BUCKETS.len()].load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "mcp_sentinel_backend_call_duration_seconds_bucket{{backend=\"{name}\",le=\"+Inf\"}} {cumulative}"
        );
        let sum = b.stats.latency_micros_sum.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "mcp_sentinel_backend_call_duration_seconds_sum{{backend=\"{name}\"}} {sum}");
        let _ = writeln!(out, "mcp_sentinel_backend_call_duration_seconds_count{{backend=\"{name}\"}} {cumulative}");
    }
    family(&mut out, "mcp_sentinel_backend_restarts_total", "counter", "Reconnects and restarts of the backend.");
    for (b, st) in backends.iter().zip(&statuses) {
        let _ = writeln!(out, "mcp_sentinel_backend_restarts_total{{backend=\"{}\"}} {}", label(&b.name), st.restarts);
    }
    family(&mut out, "mcp_sentinel_sessions_active", "gauge", "Open MCP client sessions by transport.");
    let _ = writeln!(out, "mcp_sentinel_sessions_active{{transport=\"sse\"}} {sse}");
    let _ = writeln!(out, "mcp_sentinel_sessions_active{{transport=\"streamable_http\"}} {streamable_http}");
    if let Some(auth) = rt.data_auth() {
        // By token name (bounded by the configuration); JWT subjects are
        // not labels (unbounded), they count under credential="jwt".
        family(
            &mut out,
            "mcp_sentinel_data_auth_requests_total",
            "counter",
            "Data-plane requests authenticated, by static token name (or jwt).",
        );
        for (name, n) in auth.token_counts() {
            let _ = writeln!(
                out,
                "mcp_sentinel_data_auth_requests_total{{credential=\"token\",token=\"{}\"}} {n}",
                label(name)
            );
        }
        let jwt = auth.jwt_used.load(Ordering::Relaxed);
        let _ = writeln!(out, "mcp_sentinel_data_auth_requests_total{{credential=\"jwt\",token=\"\"}} {jwt}");
        family(&mut out, "mcp_sentinel_data_auth_refused_total", "counter", "Data-plane requests refused with 401.");
        let _ = writeln!(out, "mcp_sentinel_data_auth_refused_total {}", auth.refused.load(Ordering::Relaxed));
    }
    family(&mut out, "mcp_sentinel_config_revision", "gauge", "Configuration revision (1 at start, +1 per reload).");
    let _ = writeln!(out, "mcp_sentinel_config_revision {}", rt.revision());
    family(&mut out, "mcp_sentinel_events_last_id", "gauge", "Id of the newest event in the ring.");
    let _ = writeln!(out, "mcp_sentinel_events_last_id {}", rt.events.last_id());
    family(&mut out, "mcp_sentinel_uptime_seconds", "gauge", "Seconds since the gateway started.");
    let _ = writeln!(out, "mcp_sentinel_uptime_seconds {}", rt.uptime_s());
    out
}
