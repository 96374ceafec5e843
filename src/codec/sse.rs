//! Server-Sent Events: an encoder that appends to a reused buffer and an
//! incremental decoder that accepts arbitrary chunk splits, LF / CRLF / CR
//! line ends, multi-line `data:`, comments, `id:`, `event:` and `retry:`.
//!
//! Sans-IO: the transports feed bytes in and write bytes out.

/// One decoded event. `event` is "message" when the stream named none.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SseEvent {
    pub event: String,
    pub data: String,
    /// The last `id:` seen on this stream so far (the spec's "last event id").
    pub id: Option<String>,
}

/// Appends one event. Every line of `data` becomes its own `data:` line, so
/// embedded newlines survive the round trip.
pub fn encode_event(out: &mut Vec<u8>, event: Option<&str>, id: Option<&str>, data: &str) {
    if let Some(id) = id {
        out.extend_from_slice(b"id: ");
        out.extend_from_slice(strip_newlines(id).as_bytes());
        out.push(b'\n');
    }
    if let Some(ev) = event {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(strip_newlines(ev).as_bytes());
        out.push(b'\n');
    }
    // A CRLF or CR inside data would be read back as a line break too.
    for line in data.split(['\n']).map(|l| l.strip_suffix('\r').unwrap_or(l)) {
        for part in line.split('\r') {
            out.extend_from_slice(b"data: ");
            out.extend_from_slice(part.as_bytes());
            out.push(b'\n');
        }
    }
    out.push(b'\n');
}

/// Like [`encode_event`] for data that is already bytes (a serialized
/// JSON-RPC message): one `data:` line per line of `data`, so the common
/// single-line case is copied as it is.
pub fn encode_event_bytes(out: &mut Vec<u8>, event: Option<&str>, id: Option<&str>, data: &[u8]) {
    if data.contains(&b'\n') || data.contains(&b'\r') {
        return encode_event(out, event, id, &String::from_utf8_lossy(data));
    }
    if let Some(id) = id {
        out.extend_from_slice(b"id: ");
        out.extend_from_slice(strip_newlines(id).as_bytes());
        out.push(b'\n');
    }
    if let Some(ev) = event {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(strip_newlines(ev).as_bytes());
        out.push(b'\n');
    }
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\n\n");
}

/// Appends a comment line (used as a keep-alive).
pub fn encode_comment(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(b": ");
    out.extend_from_slice(strip_newlines(text).as_bytes());
    out.extend_from_slice(b"\n\n");
}

/// Appends a `retry:` field on its own.
pub fn encode_retry(out: &mut Vec<u8>, millis: u64) {
    out.extend_from_slice(format!("retry: {millis}\n\n").as_bytes());
}

fn strip_newlines(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains(['\n', '\r']) {
        s.replace(['\n', '\r'], " ").into()
    } else {
        s.into()
    }
}

/// Why decoding stopped.
#[derive(Debug, PartialEq, Eq)]
pub enum SseError {
    /// A single line grew past the decoder's limit.
    LineTooLong(usize),
}

impl std::fmt::Display for SseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SseError::LineTooLong(n) => write!(f, "SSE line longer than {n} bytes"),
        }
    }
}

/// Incremental decoder. Feed bytes with [`SseDecoder::push`], then drain
/// complete events with [`SseDecoder::next_event`].
#[derive(Debug)]
pub struct SseDecoder {
    buf: Vec<u8>,
    /// Bytes of `buf` already scanned for line ends.
    pos: usize,
    /// The previous chunk ended in CR: a leading LF in the next is its pair.
    skip_lf: bool,
    max_line: usize,
    event: String,
    data: String,
    has_data: bool,
    last_id: Option<String>,
    retry: Option<u64>,
    first_line: bool,
}

impl SseDecoder {
    /// `max_line` bounds one line (and so the memory a hostile peer can pin).
    pub fn new(max_line: usize) -> SseDecoder {
        SseDecoder {
            buf: Vec::new(),
            pos: 0,
            skip_lf: false,
            max_line,
            event: String::new(),
            data: String::new(),
            has_data: false,
            last_id: None,
            retry: None,
            first_line: true,
        }
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The last `retry:` value the stream sent, in milliseconds.
    pub fn retry(&self) -> Option<u64> {
        self.retry
    }

    pub fn last_event_id(&self) -> Option<&str> {
        self.last_id.as_deref()
    }

    /// Returns the next complete event, `Ok(None)` when more bytes are needed.
    pub fn next_event(&mut self) -> Result<Option<SseEvent>, SseError> {
        loop {
            if self.skip_lf && self.pos < self.buf.len() {
                if self.buf[self.pos] == b'\n' {
                    self.buf.drain(..=self.pos);
                    self.pos = 0;
                }
                self.skip_lf = false;
            }
            let Some(off) = self.buf[self.pos..].iter().position(|&b| b == b'\n' || b == b'\r') else {
                self.pos = self.buf.len();
                if self.buf.len() > self.max_line {
                    let n = self.max_line;
                    self.buf.clear();
                    self.pos = 0;
                    return Err(SseError::LineTooLong(n));
                }
                return Ok(None);
            };
            let end = self.pos + off;
            if end > self.max_line {
                self.buf.drain(..=end);
                self.pos = 0;
                return Err(SseError::LineTooLong(self.max_line));
            }
            let is_cr = self.buf[end] == b'\r';
            let mut consumed = end + 1;
            if is_cr {
                if consumed < self.buf.len() {
                    if self.buf[consumed] == b'\n' {
                        consumed += 1;
                    }
                } else {
                    self.skip_lf = true;
                }
            }
            let line: Vec<u8> = self.buf[..end].to_vec();
            self.buf.drain(..consumed);
            self.pos = 0;
            if let Some(ev) = self.line(&line) {
                return Ok(Some(ev));
            }
        }
    }

    fn line(&mut self, raw: &[u8]) -> Option<SseEvent> {
        let mut line = String::from_utf8_lossy(raw);
        if self.first_line {
            self.first_line = false;
            if let Some(rest) = line.strip_prefix('\u{feff}') {
                line = rest.to_owned().into();
            }
        }
        if line.is_empty() {
            return self.dispatch();
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.find(':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(' ').unwrap_or(v))
            }
            None => (&*line, ""),
        };
        match field {
            "event" => self.event = value.to_owned(),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "id" if !value.contains('\0') => self.last_id = Some(value.to_owned()),
            "retry" => {
                if let Ok(n) = value.parse() {
                    self.retry = Some(n);
                }
            }
            _ => {}
        }
        None
    }

    fn dispatch(&mut self) -> Option<SseEvent> {
        let event = std::mem::take(&mut self.event);
        if !self.has_data {
            // An event with an id but no data still moves the last id
            // (already recorded); nothing to deliver.
            return None;
        }
        self.has_data = false;
        Some(SseEvent {
            event: if event.is_empty() { "message".to_owned() } else { event },
            data: std::mem::take(&mut self.data),
            id: self.last_id.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut d = SseDecoder::new(1 << 20);
        let mut out = Vec::new();
        for c in chunks {
            d.push(c);
            while let Some(e) = d.next_event().unwrap() {
                out.push(e);
            }
        }
        out
    }

    const STREAM: &[u8] = b": hello\r\nevent: endpoint\r\ndata: /messages/?session_id=ab\r\n\r\nid: 7\nevent: message\ndata: {\"a\":\ndata: 1}\n\nretry: 3000\rdata: x\r\rdata:no-space\n\n";

    fn expected() -> Vec<SseEvent> {
        vec![
            SseEvent { event: "endpoint".into(), data: "/messages/?session_id=ab".into(), id: None },
            SseEvent { event: "message".into(), data: "{\"a\":\n1}".into(), id: Some("7".into()) },
            SseEvent { event: "message".into(), data: "x".into(), id: Some("7".into()) },
            SseEvent { event: "message".into(), data: "no-space".into(), id: Some("7".into()) },
        ]
    }

    #[test]
    fn decodes_whole_stream() {
        assert_eq!(decode_all(&[STREAM]), expected());
    }

    #[test]
    fn decodes_split_at_every_offset() {
        for i in 0..=STREAM.len() {
            let (a, b) = STREAM.split_at(i);
            assert_eq!(decode_all(&[a, b]), expected(), "split at {i}");
        }
    }

    #[test]
    fn decodes_byte_by_byte() {
        let chunks: Vec<&[u8]> = STREAM.chunks(1).collect();
        assert_eq!(decode_all(&chunks), expected());
    }

    #[test]
    fn retry_and_id_without_data() {
        let mut d = SseDecoder::new(1024);
        d.push(b"id: 5\n\nretry: 1500\n\n: keep-alive\n\n");
        assert_eq!(d.next_event().unwrap(), None);
        assert_eq!(d.last_event_id(), Some("5"));
        assert_eq!(d.retry(), Some(1500));
    }

    #[test]
    fn bom_is_ignored_and_unknown_fields_skipped() {
        let ev = decode_all(&[b"\xEF\xBB\xBFfoo: bar\ndata: 1\n\n"]);
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].data, "1");
    }

    #[test]
    fn long_line_is_an_error_and_decoding_recovers() {
        let mut d = SseDecoder::new(16);
        d.push(&[b'a'; 40]);
        assert_eq!(d.next_event(), Err(SseError::LineTooLong(16)));
        d.push(b"\ndata: ok\n\n");
        // The tail of the long line is discarded as a field-less line.
        let ev = d.next_event().unwrap().unwrap();
        assert_eq!(ev.data, "ok");
    }

    #[test]
    fn encoder_round_trips_multiline_and_crlf() {
        let mut out = Vec::new();
        encode_event(&mut out, Some("message"), Some("s1-4"), "line1\nline2\r\nline3");
        encode_comment(&mut out, "keep-alive");
        encode_event(&mut out, None, None, "");
        let ev = decode_all(&[&out]);
        assert_eq!(ev.len(), 2);
        assert_eq!(ev[0].event, "message");
        assert_eq!(ev[0].data, "line1\nline2\nline3");
        assert_eq!(ev[0].id.as_deref(), Some("s1-4"));
        assert_eq!(ev[1].data, "");
    }

    #[test]
    fn encoder_exact_bytes() {
        let mut out = Vec::new();
        encode_event(&mut out, Some("endpoint"), None, "/messages/?session_id=x");
        assert_eq!(out, b"event: endpoint\ndata: /messages/?session_id=x\n\n");
    }

    #[test]
    fn byte_events_match_text_events() {
        for data in ["{\"a\":1}", "two\nlines", "cr\rhere", ""] {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            encode_event(&mut a, Some("message"), Some("7"), data);
            encode_event_bytes(&mut b, Some("message"), Some("7"), data.as_bytes());
            assert_eq!(a, b, "{data:?}");
        }
    }

    /// Random bytes split at random places: the decoder never panics, and
    /// what it hands out never exceeds its line bound.
    #[test]
    fn random_streams_never_panic() {
        let alphabet = b"data: event: id: retry: 12\r\n:x\xff";
        let mut state: u64 = 99;
        let mut next = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n.max(1) as u64) as usize
        };
        for _ in 0..5_000 {
            let len = next(400);
            let input: Vec<u8> = (0..len).map(|_| alphabet[next(alphabet.len())]).collect();
            let mut d = SseDecoder::new(64);
            let mut at = 0;
            while at < input.len() {
                let end = (at + 1 + next(32)).min(input.len());
                d.push(&input[at..end]);
                at = end;
                while let Ok(Some(ev)) = d.next_event() {
                    assert!(ev.event.len() <= 64);
                }
            }
        }
    }
}
