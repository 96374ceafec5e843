//! `server.auth` end to end with the real binary: static bearer tokens and
//! JWT access tokens on `/mcp`, `/sse` and `/messages/`, the 401 challenge
//! (`WWW-Authenticate` with `resource_metadata`, `error="invalid_token"`
//! when a credential was sent), the RFC 9728 metadata, legacy sessions
//! bound to their identity, and a key set rotated at a local JWKS server
//! (a thread of this test on 127.0.0.1). The served cases run the official
//! Python SDK client (`tests/py/auth_client.py`); without the peers those
//! parts are skipped with a message (failed under CI=true).

mod common;

use common::{demo_backend, http, post_json, py_command, run_bounded, sdk_python, Gateway, SseStream};
use mcp_sentinel::util::base64url_encode as b64;
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const ALICE: &str = "alice-secret-token-0123456789";
const BOB: &str = "bob-secret-token-9876543210";
const ISSUER: &str = "https://idp.test";
const AUDIENCE: &str = "mcp-sentinel";
const PY_TIMEOUT: Duration = Duration::from_secs(60);

fn init_body() -> Value {
    json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})
}

fn post_mcp(gw: &Gateway, auth: Option<&str>) -> common::Response {
    let bearer = auth.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Accept", "application/json, text/event-stream")];
    if let Some(b) = &bearer {
        headers.push(("Authorization", b));
    }
    post_json(&gw.url("/mcp"), &headers, &init_body())
}

/// The SDK client with `token`; `Some(output)` when it ran (peers present).
fn sdk(gw: &Gateway, transport: &str, token: Option<&str>) -> Option<Value> {
    let python = sdk_python()?;
    let path = if transport == "sse" { "/sse" } else { "/mcp" };
    let mut cmd = py_command(&python, "auth_client.py");
    cmd.args(["--url", &gw.url(path), "--transport", transport]).env_remove("AUTH_TOKEN");
    if let Some(t) = token {
        cmd.env("AUTH_TOKEN", t);
    }
    let out = run_bounded(&format!("auth_client:{transport}"), &mut cmd, PY_TIMEOUT);
    assert!(!out.timed_out, "auth_client.py over {transport} ran past {PY_TIMEOUT:?}\n{}", out.stderr);
    let line = out.stdout.lines().rev().find(|l| l.starts_with('{')).unwrap_or("{}");
    let v: Value = serde_json::from_str(line).unwrap_or(json!({}));
    Some(json!({"ok": v["ok"] == json!(true) && out.success(), "out": v, "stderr": out.stderr}))
}

fn assert_served(gw: &Gateway, transport: &str, token: &str) {
    if let Some(v) = sdk(gw, transport, Some(token)) {
        assert_eq!(v["ok"], json!(true), "SDK over {transport}: {v}\ngateway log:\n{}", gw.log());
        assert_eq!(v["out"]["echo"], json!("hi"), "{v}");
        assert!(v["out"]["tools"].as_array().is_some_and(|t| t.contains(&json!("echo"))), "{v}");
    }
}

fn assert_challenge(r: &common::Response, gw: &Gateway, invalid_token: bool) {
    assert_eq!(r.status, 401, "{}", r.text());
    let h = r.header("WWW-Authenticate").unwrap_or_else(|| panic!("no WWW-Authenticate on {r:?}"));
    let meta = format!("resource_metadata=\"http://{}/.well-known/oauth-protected-resource\"", gw.mcp_addr);
    assert!(h.starts_with("Bearer ") && h.contains(&meta), "{h}");
    assert_eq!(h.contains("error=\"invalid_token\""), invalid_token, "{h}");
}

#[test]
fn static_tokens_on_both_transports() {
    let config = json!({
        "mcpServers": {"alpha": demo_backend("alpha", &[])},
        "server": {"auth": {"tokens": [
            {"name": "alice", "token_env": "GW_AUTH_ALICE"},
            {"name": "bob", "token_env": "GW_AUTH_BOB"}
        ]}}
    });
    let gw = Gateway::start_env(&config, &[], &[("GW_AUTH_ALICE", ALICE), ("GW_AUTH_BOB", BOB)]);

    // No token, a wrong one, another scheme: 401 with the challenge.
    assert_challenge(&post_mcp(&gw, None), &gw, false);
    assert_challenge(&post_mcp(&gw, Some("wrong-token")), &gw, true);
    let basic = post_json(&gw.url("/mcp"), &[("Authorization", "Basic YTpi")], &init_body());
    assert_challenge(&basic, &gw, true);
    match SseStream::open(&gw.url("/sse"), &[]) {
        Ok(_) => panic!("GET /sse without a token was served"),
        Err(r) => assert_challenge(&r, &gw, false),
    }
    let r = post_json(&gw.url("/messages/?session_id=x"), &[], &json!({"jsonrpc": "2.0", "method": "ping", "id": 1}));
    assert_challenge(&r, &gw, false);

    // The metadata is public.
    let m = http("GET", &gw.url("/.well-known/oauth-protected-resource"), &[], None);
    assert_eq!(m.status, 200, "{}", m.text());
    let doc = m.json();
    assert_eq!(doc["resource"], json!(format!("http://{}/mcp", gw.mcp_addr)));
    assert_eq!(doc["bearer_methods_supported"], json!(["header"]));
    let m = http("GET", &gw.url("/.well-known/oauth-protected-resource/mcp"), &[], None);
    assert_eq!(m.status, 200);

    // The right token: served (raw, then the SDK on both transports).
    let r = post_mcp(&gw, Some(ALICE));
    assert_eq!(r.status, 200, "{}", r.text());
    let sid = r.header("Mcp-Session-Id").expect("session id").to_owned();
    // Another identity cannot use alice's session.
    let bob = format!("Bearer {BOB}");
    let ping = json!({"jsonrpc": "2.0", "id": 2, "method": "ping"});
    let accept = ("Accept", "application/json, text/event-stream");
    let r = post_json(&gw.url("/mcp"), &[accept, ("Authorization", &bob), ("Mcp-Session-Id", &sid)], &ping);
    assert_eq!(r.status, 404, "{}", r.text());
    let alice = format!("Bearer {ALICE}");
    let r = post_json(&gw.url("/mcp"), &[accept, ("Authorization", &alice), ("Mcp-Session-Id", &sid)], &ping);
    assert_eq!(r.status, 200, "{}", r.text());

    // A legacy session is bound to the identity that opened its stream.
    let mut stream = SseStream::open(&gw.url("/sse"), &[("Authorization", &alice)]).expect("sse with token");
    let endpoint = stream.next_named("endpoint", Duration::from_secs(10)).expect("endpoint event");
    let post_url = gw.url(endpoint.trim());
    let r = post_json(&post_url, &[("Authorization", &bob)], &ping);
    assert_eq!(r.status, 404, "bob posting to alice's session: {}", r.text());
    let r = post_json(&post_url, &[], &ping);
    assert_eq!(r.status, 401);
    let r = post_json(&post_url, &[("Authorization", &alice)], &ping);
    assert_eq!(r.status, 202, "{}", r.text());
    drop(stream);

    assert_served(&gw, "streamable-http", ALICE);
    assert_served(&gw, "sse", BOB);
    if let Some(v) = sdk(&gw, "streamable-http", None) {
        assert_eq!(v["ok"], json!(false), "the SDK was served without a token: {v}");
    }
    if let Some(v) = sdk(&gw, "sse", Some("wrong")) {
        assert_eq!(v["ok"], json!(false), "the SDK was served with a wrong token: {v}");
    }

    // Refusals are events; no token ever reaches the log.
    let log = gw.log();
    assert!(log.contains("data.auth_failed"), "{log}");
    assert!(!log.contains(ALICE) && !log.contains(BOB) && !log.contains("wrong-token"), "a token in the log:\n{log}");
}

/// A JWKS document served on 127.0.0.1 by a thread; `set` replaces it.
struct JwksServer {
    addr: SocketAddr,
    body: Arc<Mutex<String>>,
    stop: Arc<AtomicBool>,
    hits: Arc<Mutex<u32>>,
}

impl JwksServer {
    fn start(body: &Value) -> JwksServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let body = Arc::new(Mutex::new(body.to_string()));
        let stop = Arc::new(AtomicBool::new(false));
        let hits = Arc::new(Mutex::new(0));
        let (b, s, h) = (body.clone(), stop.clone(), hits.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut conn, _)) => {
                        let _ = conn.set_nonblocking(false);
                        let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
                        let mut buf = [0u8; 4096];
                        let mut seen = Vec::new();
                        while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                            match conn.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => seen.extend_from_slice(&buf[..n]),
                            }
                        }
                        *h.lock().expect("hits") += 1;
                        let text = b.lock().expect("body").clone();
                        let _ = write!(
                            conn,
                            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                            text.len()
                        );
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        JwksServer { addr, body, stop, hits }
    }

    fn set(&self, body: &Value) {
        *self.body.lock().expect("body") = body.to_string();
    }

    fn hits(&self) -> u32 {
        *self.hits.lock().expect("hits")
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

struct Signer {
    kp: Ed25519KeyPair,
    kid: String,
}

impl Signer {
    fn new(kid: &str) -> Signer {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).expect("keygen");
        Signer { kp: Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("key"), kid: kid.into() }
    }

    fn jwk(&self) -> Value {
        json!({"kty": "OKP", "crv": "Ed25519", "use": "sig", "kid": self.kid, "x": b64(self.kp.public_key().as_ref())})
    }

    fn sign(&self, claims: &Value) -> String {
        let h = b64(json!({"alg": "EdDSA", "typ": "at+jwt", "kid": self.kid}).to_string().as_bytes());
        let input = format!("{h}.{}", b64(claims.to_string().as_bytes()));
        format!("{input}.{}", b64(self.kp.sign(input.as_bytes()).as_ref()))
    }
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs()
}

fn claims(sub: &str) -> Value {
    json!({"iss": ISSUER, "aud": [AUDIENCE], "sub": sub, "exp": now() + 600, "iat": now()})
}

#[test]
fn jwt_access_tokens_and_key_rotation() {
    let k1 = Signer::new("k1");
    let jwks = JwksServer::start(&json!({"keys": [k1.jwk()]}));
    let config = json!({
        "mcpServers": {"alpha": demo_backend("alpha", &[])},
        "server": {"auth": {
            "jwt": {"issuer": ISSUER, "audience": AUDIENCE, "jwks_url": format!("http://{}/jwks.json", jwks.addr)},
            "resource": "https://gw.example.com/mcp"
        }}
    });
    let gw = Gateway::start(&config);
    let deadline = Instant::now() + Duration::from_secs(10);
    while jwks.hits() == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(jwks.hits() >= 1, "the gateway never fetched the key set");

    // The metadata names the issuer; the challenge points at it.
    let doc = http("GET", &gw.url("/.well-known/oauth-protected-resource"), &[], None).json();
    assert_eq!(doc["authorization_servers"], json!([ISSUER]));
    assert_eq!(doc["resource"], json!("https://gw.example.com/mcp"));
    let r = post_mcp(&gw, None);
    assert_eq!(r.status, 401);
    let h = r.header("WWW-Authenticate").expect("challenge");
    assert!(h.contains("resource_metadata=\"https://gw.example.com/.well-known/oauth-protected-resource\""), "{h}");

    // A good token, then each way a token can be wrong.
    let good = k1.sign(&claims("user-42"));
    let r = post_mcp(&gw, Some(&good));
    assert_eq!(r.status, 200, "{}\n{}", r.text(), gw.log());
    let mut expired = claims("user-42");
    expired["exp"] = json!(now() - 3600);
    let mut wrong_aud = claims("user-42");
    wrong_aud["aud"] = json!("someone-else");
    let mut wrong_iss = claims("user-42");
    wrong_iss["iss"] = json!("https://evil.test");
    let forged = Signer::new("k1").sign(&claims("user-42"));
    let none = format!(
        "{}.{}.",
        b64(json!({"alg": "none", "kid": "k1"}).to_string().as_bytes()),
        b64(claims("user-42").to_string().as_bytes())
    );
    for (what, token) in [
        ("expired", k1.sign(&expired)),
        ("wrong audience", k1.sign(&wrong_aud)),
        ("wrong issuer", k1.sign(&wrong_iss)),
        ("another key", forged),
        ("alg none", none),
    ] {
        let r = post_mcp(&gw, Some(&token));
        assert_eq!(r.status, 401, "{what}: {}", r.text());
        let h = r.header("WWW-Authenticate").unwrap_or_default();
        assert!(h.contains("error=\"invalid_token\""), "{what}: {h}");
    }
    assert_served(&gw, "streamable-http", &good);
    assert_served(&gw, "sse", &good);

    // Rotation: the issuer's set now holds k2 only. A k2 token is accepted
    // once the gateway refetched (at most once per 10 s: retried until then).
    let k2 = Signer::new("k2");
    jwks.set(&json!({"keys": [k2.jwk()]}));
    let rotated = k2.sign(&claims("user-43"));
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut status = 0;
    while Instant::now() < deadline {
        status = post_mcp(&gw, Some(&rotated)).status;
        if status == 200 {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(status, 200, "a token of the rotated key was never accepted\n{}", gw.log());
    assert_served(&gw, "streamable-http", &rotated);
    // The withdrawn key's tokens are not accepted any more.
    let r = post_mcp(&gw, Some(&k1.sign(&claims("user-42"))));
    assert_eq!(r.status, 401, "{}", r.text());
    let log = gw.log();
    assert!(!log.contains(&good) && !log.contains(&rotated), "a token in the log");
}

#[test]
fn remote_listen_without_auth_is_refused() {
    let dir = std::env::temp_dir().join(format!("mcp-sentinel-auth-remote-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("c.json");
    std::fs::write(&path, json!({"mcpServers": {}, "server": {"listen": "0.0.0.0:0"}}).to_string()).expect("write");
    let out = run_bounded(
        "gw:remote",
        std::process::Command::new(common::gateway_bin()).args(["check", "--config"]).arg(&path),
        Duration::from_secs(20),
    );
    assert_eq!(out.status.and_then(|s| s.code()), Some(78), "{}\n{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("server.allow_unauthenticated_remote"), "{}", out.stderr);
    let _ = std::fs::remove_dir_all(&dir);
}
