//! The malformed requests of the soak's `garbage` kind: what a broken or
//! hostile client sends. Each must be answered or the connection closed;
//! none may hurt the gateway. A leaf, so that the command line can check
//! `--skip-garbage` names without knowing the soak.

/// The names of [`garbage_cases`], in order (for `--skip-garbage`).
pub const GARBAGE_CASES: &[&str] = &[
    "not_http",
    "binary",
    "no_version",
    "header_without_colon",
    "bad_content_length",
    "short_body",
    "bad_chunked",
    "not_json",
    "not_jsonrpc",
    "huge_content_length",
    "unknown_session",
    "wrong_content_type",
    "unknown_method",
    "http2_preface",
    "big_header",
    "nul_in_path",
    "blank_lines",
];

/// Malformed requests, each followed by the end of the client's output, so
/// the gateway has all it will ever get and must answer or close.
pub fn garbage_cases(binary: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    let post = |path: &str, headers: &str, body: &str| {
        format!("POST {path} HTTP/1.1\r\nHost: h\r\n{headers}Content-Length: {}\r\n\r\n{body}", body.len()).into_bytes()
    };
    let json = "Content-Type: application/json\r\n";
    let ping = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
    vec![
        ("not_http", b"GARBAGE GARBAGE GARBAGE\r\n\r\n".to_vec()),
        ("binary", binary.to_vec()),
        ("no_version", b"GET /mcp\r\n\r\n".to_vec()),
        ("header_without_colon", b"POST /mcp HTTP/1.1\r\nHost: h\r\nthis header has no colon\r\n\r\n".to_vec()),
        (
            "bad_content_length",
            format!("POST /mcp HTTP/1.1\r\nHost: h\r\n{json}Content-Length: abc\r\n\r\n{{}}").into_bytes(),
        ),
        (
            "short_body",
            format!("POST /mcp HTTP/1.1\r\nHost: h\r\n{json}Content-Length: 1000\r\n\r\n{{\"jsonrpc\":").into_bytes(),
        ),
        (
            "bad_chunked",
            format!(
                "POST /mcp HTTP/1.1\r\nHost: h\r\n{json}Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"
            )
            .into_bytes(),
        ),
        ("not_json", post("/mcp", json, "{not json")),
        ("not_jsonrpc", post("/mcp", json, "[1,2,3]")),
        // tiny_http 0.12 allocates the whole declared length when it drains
        // an unread body (`EqualReader::drop`): the gateway aborts.
        (
            "huge_content_length",
            format!("POST /mcp HTTP/1.1\r\nHost: h\r\n{json}Content-Length: 99999999999\r\n\r\n{{}}").into_bytes(),
        ),
        ("unknown_session", post("/messages/?session_id=00000000000000000000000000000000", json, ping)),
        ("wrong_content_type", post("/mcp", "Content-Type: text/plain\r\n", ping)),
        ("unknown_method", b"BREW /mcp HTTP/1.1\r\nHost: h\r\n\r\n".to_vec()),
        // tiny_http 0.12 writes its 505 through a second sequential writer
        // while the request holds the first: the connection thread waits
        // forever, with its socket.
        ("http2_preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec()),
        ("big_header", format!("GET /nope HTTP/1.1\r\nHost: h\r\nX-Big: {}\r\n\r\n", "b".repeat(60_000)).into_bytes()),
        ("nul_in_path", b"GET /mcp\0x HTTP/1.1\r\nHost: h\r\n\r\n".to_vec()),
        ("blank_lines", b"\r\n\r\n\r\n\r\n".to_vec()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_cases_are_distinct_and_nonempty() {
        let cases = garbage_cases(&[0xff, 0x00]);
        let mut names: Vec<_> = cases.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, GARBAGE_CASES);
        assert!(cases.iter().all(|(_, b)| !b.is_empty()));
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), cases.len());
        let (_, not_json) = cases.iter().find(|(n, _)| *n == "not_json").unwrap();
        assert!(String::from_utf8_lossy(not_json).ends_with("Content-Length: 9\r\n\r\n{not json"));
    }
}
