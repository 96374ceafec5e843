//! Generated malformed traffic against the real gateway, on both
//! listeners: every connection gets an answer or a close within a bound,
//! the gateway keeps serving correct requests, and its memory, threads and
//! descriptors come back to where they were.

mod common;

use common::*;
use serde_json::json;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// xorshift64*, seeded: a failure names its seed and round.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn seeds(host: &str) -> Vec<Vec<u8>> {
    let init = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    vec![
        format!("POST /mcp HTTP/1.1\r\nHost: {host}\r\nAccept: application/json, text/event-stream\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{init}", init.len()).into_bytes(),
        format!("GET /sse HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n").into_bytes(),
        format!("POST /messages/?session_id=00 HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{{}}\r\n0\r\n\r\n").into_bytes(),
        format!("GET /manage/v1/status HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer x\r\n\r\n").into_bytes(),
        format!("DELETE /mcp HTTP/1.1\r\nHost: {host}\r\nMcp-Session-Id: ab\r\n\r\n").into_bytes(),
    ]
}

const NASTY: &[u8] = b"\r\n :\0\x7f\t%/?#\xff-0123456789abcdef{}[]\",HTTP/chunked";

fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    match rng.below(10) {
        // Pure noise.
        0 => return (0..rng.below(300)).map(|_| (rng.next() & 0xff) as u8).collect(),
        // Two requests back to back, the second mangled.
        1 => {
            let mut w = v.clone();
            w.extend_from_slice(&v[..rng.below(v.len())]);
            return w;
        }
        _ => {}
    }
    for _ in 0..1 + rng.below(5) {
        let at = rng.below(v.len() + 1);
        match rng.below(5) {
            0 if at < v.len() => v[at] = NASTY[rng.below(NASTY.len())],
            1 => v.insert(at, NASTY[rng.below(NASTY.len())]),
            2 if at < v.len() => {
                v.remove(at);
            }
            3 => v.truncate(at.max(1)),
            _ => {
                let end = (at + rng.below(60)).min(v.len());
                let dup = v[at..end].to_vec();
                v.splice(at..at, dup);
            }
        }
    }
    v
}

/// Sends `bytes` (in random pieces), half-closes, and reads until the
/// server closes. Returns false if the server neither answered nor closed
/// within 15 s (the head timeout is 10 s).
fn poke(addr: SocketAddr, rng: &mut Rng, bytes: &[u8]) -> bool {
    let Ok(mut c) = TcpStream::connect(addr) else { return false };
    let _ = c.set_read_timeout(Some(Duration::from_millis(200)));
    let mut at = 0;
    while at < bytes.len() {
        let end = (at + 1 + rng.below(bytes.len())).min(bytes.len());
        if c.write_all(&bytes[at..end]).is_err() {
            break;
        }
        at = end;
    }
    let _ = c.shutdown(std::net::Shutdown::Write);
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut buf = [0u8; 4096];
    loop {
        match c.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => return true,
        }
        if Instant::now() > deadline {
            return false;
        }
    }
}

#[test]
fn malformed_requests_leave_the_gateway_serving_and_bounded() {
    let gw = Gateway::start(&json!({"mcpServers": {"alpha": demo_backend("alpha", &[])}}));
    let manage = gw.manage_addr().expect("manage address");
    let warm = mcp_initialize(&gw.url("/mcp"));
    assert_eq!(warm.status, 200);
    let (rss0, threads0, fds0) = proc_figures(gw.pid());
    let targets = [gw.mcp_addr, manage];
    let workers: Vec<_> = (0..4u64)
        .map(|w| {
            std::thread::spawn(move || {
                let mut rng = Rng(0xf00d + w);
                let mut hung = Vec::new();
                for round in 0..500 {
                    let addr = targets[round % 2];
                    let all = seeds(&addr.to_string());
                    let seed = &all[rng.below(all.len())];
                    let bytes = mutate(&mut rng, seed);
                    if !poke(addr, &mut rng, &bytes) {
                        hung.push((w, round, String::from_utf8_lossy(&bytes).into_owned()));
                    }
                }
                hung
            })
        })
        .collect();
    let hung: Vec<_> = workers.into_iter().flat_map(|w| w.join().expect("worker")).collect();
    assert!(hung.is_empty(), "connections neither answered nor closed: {hung:?}");
    // Still serving, correctly.
    let r = mcp_initialize(&gw.url("/mcp"));
    assert_eq!(r.status, 200, "{}", r.text());
    let sid = r.header("Mcp-Session-Id").expect("sid").to_owned();
    let call = json!({"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"echo","arguments":{"message":"after the storm"}}});
    let h = [("Accept", "application/json, text/event-stream"), ("Mcp-Session-Id", sid.as_str())];
    let r = post_json(&gw.url("/mcp"), &h, &call);
    assert_eq!(r.json()["result"]["content"][0]["text"], "after the storm", "{}", r.text());
    assert_eq!(gw.manage_get("/health").status, 200);
    // Bounded: descriptors back, threads unchanged, memory flat.
    assert!(wait_until(Duration::from_secs(5), || proc_figures(gw.pid()).2 <= fds0 + 2), "descriptors leaked");
    let (rss1, threads1, fds1) = proc_figures(gw.pid());
    eprintln!("after 2,000 malformed requests: RSS {rss0} -> {rss1} KiB, threads {threads0} -> {threads1}, fds {fds0} -> {fds1}");
    assert!(threads1 <= threads0 + 1, "threads {threads0} -> {threads1}");
    assert!(rss1 < rss0 + 16 * 1024, "RSS {rss0} -> {rss1} KiB");
}
