//! Checks the test harness itself (`tests/common`) against a scripted HTTP
//! server on 127.0.0.1, so a failing end-to-end test can be trusted to be
//! about the gateway and not about the harness's HTTP, chunked or SSE code.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::{http, parse_listen_addr, run_bounded, ChunkedDecoder, Gateway, SseStream};
use serde_json::json;

/// Serves one connection: reads the request head, then runs `script` on the
/// socket. Returns the address and a receiver for the request head.
fn serve_once(script: impl FnOnce(&mut TcpStream) + Send + 'static) -> (SocketAddr, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let (mut sock, _) = listener.accept().expect("accept");
        sock.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if sock.read(&mut byte).expect("read head") == 0 {
                return;
            }
            head.push(byte[0]);
        }
        let _ = tx.send(String::from_utf8_lossy(&head).into_owned());
        script(&mut sock);
    });
    (addr, rx)
}

fn write(sock: &mut TcpStream, bytes: &[u8]) {
    sock.write_all(bytes).expect("write");
    sock.flush().expect("flush");
}

fn chunk(data: &str) -> Vec<u8> {
    format!("{:x}\r\n{data}\r\n", data.len()).into_bytes()
}

#[test]
fn http_reads_a_content_length_body_and_sends_headers() {
    let (addr, head) = serve_once(|s| {
        write(
            s,
            b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nX-Thing: a\r\nContent-Length: 11\r\n\r\n{\"a\": true}",
        );
        // Keep the connection open: the client must stop at Content-Length.
        thread::sleep(Duration::from_millis(500));
    });
    let started = Instant::now();
    let resp = http("POST", &format!("http://{addr}/mcp?x=1"), &[("Accept", "application/json")], Some(b"{}"));
    assert!(started.elapsed() < Duration::from_millis(450), "waited past Content-Length");
    assert_eq!(resp.status, 201);
    assert_eq!(resp.header("x-thing"), Some("a"));
    assert_eq!(resp.json(), json!({"a": true}));
    let head = head.recv_timeout(Duration::from_secs(5)).expect("request head");
    assert!(head.starts_with("POST /mcp?x=1 HTTP/1.1\r\n"), "{head}");
    assert!(head.contains("Accept: application/json\r\n"), "{head}");
    assert!(head.contains("Content-Length: 2\r\n"), "{head}");
    assert!(head.contains("Connection: close\r\n"), "{head}");
}

#[test]
fn http_decodes_a_chunked_body_split_across_writes() {
    let (addr, _head) = serve_once(|s| {
        write(s, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        let mut body = chunk("hello ");
        body.extend(chunk("world"));
        body.extend_from_slice(b"0\r\n\r\n");
        for piece in body.chunks(3) {
            write(s, piece);
        }
        thread::sleep(Duration::from_millis(500));
    });
    let resp = http("GET", &format!("http://{addr}/"), &[], None);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.text(), "hello world");
}

#[test]
fn http_reads_a_close_delimited_body() {
    let (addr, _head) = serve_once(|s| {
        write(s, b"HTTP/1.1 404 Not Found\r\n\r\nno such session");
    });
    let resp = http("GET", &format!("http://{addr}/x"), &[], None);
    assert_eq!(resp.status, 404);
    assert_eq!(resp.text(), "no such session");
}

#[test]
fn chunked_decoder_handles_every_split() {
    let mut wire = chunk("data: one\n\n");
    wire.extend(chunk("x"));
    wire.extend_from_slice(b"3;ext=1\r\nabc\r\n0\r\nTrailer: t\r\n\r\n");
    for split in 0..=wire.len() {
        let mut dec = ChunkedDecoder::default();
        let mut out = Vec::new();
        dec.push(&wire[..split], &mut out);
        dec.push(&wire[split..], &mut out);
        assert_eq!(out, b"data: one\n\nxabc", "split at {split}");
        assert!(dec.done(), "split at {split}");
    }
}

#[test]
fn sse_stream_yields_events_as_they_arrive_and_times_out() {
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (addr, _head) = serve_once(move |s| {
        write(s, b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n");
        write(s, &chunk("event: endpoint\ndata: /messages/?session_id=abc\n\n"));
        // The second event comes in two TCP writes, split inside a line.
        write(s, &chunk("event: message\r\ndata: {\"jsonrpc\""));
        write(s, &chunk(":\"2.0\"}\r\n\r\n: keep-alive\n\n"));
        // Hold the stream open until the test has seen a timeout.
        let _ = go_rx.recv_timeout(Duration::from_secs(10));
        write(s, &chunk("data: last\n\n"));
        write(s, b"0\r\n\r\n");
    });
    let mut sse = SseStream::open(&format!("http://{addr}/sse"), &[]).expect("an event stream");
    assert_eq!(sse.status, 200);
    let t = Duration::from_secs(5);
    assert_eq!(sse.next_event(t), Some(("endpoint".into(), "/messages/?session_id=abc".into())));
    assert_eq!(sse.next_event(t), Some(("message".into(), "{\"jsonrpc\":\"2.0\"}".into())));
    let started = Instant::now();
    assert_eq!(sse.next_event(Duration::from_millis(200)), None);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(150) && waited < Duration::from_secs(2),
        "timeout not honoured: {waited:?}"
    );
    go_tx.send(()).expect("signal server");
    assert_eq!(sse.next_event(t), Some(("message".into(), "last".into())));
    assert_eq!(sse.next_event(t), None, "the stream ended");
}

#[test]
fn sse_open_returns_the_response_when_not_a_stream() {
    let (addr, _head) = serve_once(|s| {
        write(s, b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 4\r\n\r\nnope");
        thread::sleep(Duration::from_millis(300));
    });
    let resp = match SseStream::open(&format!("http://{addr}/mcp"), &[]) {
        Ok(_) => panic!("a 405 is not a stream"),
        Err(resp) => resp,
    };
    assert_eq!(resp.status, 405);
    assert_eq!(resp.text(), "nope");
}

#[test]
fn parse_listen_addr_reads_the_gateway_log_line() {
    let log = "[2026-01-01T00:00:00Z INFO  mcp_sentinel] data plane listening on http://127.0.0.1:43123 (sse: /sse, streamable-http: /mcp)\n";
    assert_eq!(
        parse_listen_addr(log, "data plane listening on http://"),
        Some("127.0.0.1:43123".parse().expect("addr"))
    );
    assert_eq!(
        parse_listen_addr("x data plane listening on http://127.0.0.1:9000/ now", "data plane listening on http://"),
        Some("127.0.0.1:9000".parse().expect("addr"))
    );
    assert_eq!(parse_listen_addr("nothing here", "listening on http://"), None);
}

#[test]
fn run_bounded_kills_a_process_that_runs_too_long() {
    let started = Instant::now();
    let out = run_bounded("sleeper", Command::new("sleep").arg("30"), Duration::from_millis(300));
    assert!(out.timed_out);
    assert!(!out.success());
    assert!(started.elapsed() < Duration::from_secs(10));
    let out =
        run_bounded("echo", Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]), Duration::from_secs(10));
    assert!(!out.timed_out);
    assert_eq!(out.status.and_then(|s| s.code()), Some(3));
    assert_eq!(out.stdout.trim(), "out");
    assert_eq!(out.stderr.trim(), "err");
}

/// A config that is not a JSON object is a configuration error (CONTRACT §2:
/// exit 78); the harness must report the early exit at once, with the log,
/// rather than wait out its 30 s readiness bound.
#[test]
fn gateway_start_fails_fast_when_the_gateway_exits() {
    let started = Instant::now();
    let result = std::panic::catch_unwind(|| Gateway::start(&json!([1, 2, 3])));
    let msg = match result {
        Ok(_) => panic!("a gateway with a non-object config must not become ready"),
        Err(e) => e
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default(),
    };
    assert!(msg.contains("the gateway exited"), "{msg}");
    assert!(started.elapsed() < Duration::from_secs(20), "took {:?}", started.elapsed());
}
