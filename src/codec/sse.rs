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

/// Why an event or a line was dropped. Decoding goes on after either: the
/// next call to [`SseDecoder::next_event`] continues with what follows.
#[derive(Debug, PartialEq, Eq)]
pub enum SseError {
    /// A single line grew past the decoder's line bound; it was discarded.
    LineTooLong(usize),
    /// An event's data grew past the decoder's event bound; what it had
    /// was freed, and its remaining lines up to the blank line that ends
    /// it are skipped without being kept.
    EventTooLarge(usize),
}

impl std::fmt::Display for SseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SseError::LineTooLong(n) => write!(f, "SSE line longer than {n} bytes; dropped"),
            SseError::EventTooLarge(n) => write!(f, "SSE event with more than {n} bytes of data; dropped"),
        }
    }
}

/// Above this, the line buffer gives memory back once it is nearly empty
/// again: one long line must not pin its size for the stream's lifetime.
const KEEP_BUFFER: usize = 1024 * 1024;

/// Incremental decoder. Feed bytes with [`SseDecoder::push`], then drain
/// complete events with [`SseDecoder::next_event`] until it returns
/// `Ok(None)`. Memory is bounded by the two limits given to
/// [`SseDecoder::with_limits`] plus the bytes of one `push`, whatever the peer sends.
#[derive(Debug)]
pub struct SseDecoder {
    buf: Vec<u8>,
    /// Where the line being read starts in `buf` (what is before it has
    /// been read; it is dropped when more bytes are needed).
    start: usize,
    /// Bytes of `buf` already scanned for line ends.
    pos: usize,
    /// The previous chunk ended in CR: a leading LF in the next is its pair.
    skip_lf: bool,
    /// The rest of a line that was too long is being thrown away, up to
    /// its line end (so its tail is not read as a line of its own).
    discard_line: bool,
    max_line: usize,
    max_event: usize,
    event: String,
    data: String,
    has_data: bool,
    /// The event being read outgrew `max_event`: skip to its end.
    skip_event: bool,
    last_id: Option<String>,
    retry: Option<u64>,
    first_line: bool,
}

/// The event bound of [`SseDecoder::new`].
pub const DEFAULT_MAX_EVENT: usize = 64 * 1024 * 1024;

impl SseDecoder {
    /// A decoder whose lines are bounded by `max_line` and events by
    /// [`DEFAULT_MAX_EVENT`] (see [`SseDecoder::with_limits`]).
    pub fn new(max_line: usize) -> SseDecoder {
        SseDecoder::with_limits(max_line, DEFAULT_MAX_EVENT)
    }

    /// `max_line` bounds one line and `max_event` the data of one event
    /// (all its `data:` lines together), and so the memory a hostile peer
    /// can pin: a stream of `data:` lines that never ends its event costs
    /// at most `max_event`, then an [`SseError::EventTooLarge`].
    pub fn with_limits(max_line: usize, max_event: usize) -> SseDecoder {
        SseDecoder {
            buf: Vec::new(),
            start: 0,
            pos: 0,
            skip_lf: false,
            discard_line: false,
            max_line,
            max_event,
            event: String::new(),
            data: String::new(),
            has_data: false,
            skip_event: false,
            last_id: None,
            retry: None,
            first_line: true,
        }
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.compact();
        self.buf.extend_from_slice(bytes);
    }

    /// The last `retry:` value the stream sent, in milliseconds.
    pub fn retry(&self) -> Option<u64> {
        self.retry
    }

    pub fn last_event_id(&self) -> Option<&str> {
        self.last_id.as_deref()
    }

    /// Returns the next complete event, `Ok(None)` when more bytes are
    /// needed, or an error for a line or an event that was dropped (call
    /// again to go on).
    pub fn next_event(&mut self) -> Result<Option<SseEvent>, SseError> {
        loop {
            if self.skip_lf && self.pos < self.buf.len() {
                if self.buf[self.pos] == b'\n' {
                    self.pos += 1;
                    self.start = self.pos;
                }
                self.skip_lf = false;
            }
            let Some(off) = self.buf[self.pos..].iter().position(|&b| b == b'\n' || b == b'\r') else {
                self.pos = self.buf.len();
                let mut result = Ok(None);
                if self.discard_line {
                    self.start = self.buf.len();
                } else if self.buf.len() - self.start > self.max_line {
                    self.start = self.buf.len();
                    self.discard_line = true;
                    result = Err(SseError::LineTooLong(self.max_line));
                }
                self.compact();
                return result;
            };
            let end = self.pos + off;
            let mut next = end + 1;
            if self.buf[end] == b'\r' {
                if next < self.buf.len() {
                    if self.buf[next] == b'\n' {
                        next += 1;
                    }
                } else {
                    self.skip_lf = true;
                }
            }
            let begin = std::mem::replace(&mut self.start, next);
            self.pos = next;
            if std::mem::take(&mut self.discard_line) {
                // The end of a line already reported as too long.
                continue;
            }
            if end - begin > self.max_line {
                return Err(SseError::LineTooLong(self.max_line));
            }
            // The line is read where it lies, without a copy.
            let buf = std::mem::take(&mut self.buf);
            let got = self.line(&buf[begin..end]);
            self.buf = buf;
            match got {
                Ok(None) => {}
                other => return other,
            }
        }
    }

    /// Drops the lines already read from the buffer (what is left is at
    /// most one incomplete line), and gives back the memory of a long line
    /// once it is gone.
    fn compact(&mut self) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.pos -= self.start;
            self.start = 0;
        }
        if self.buf.capacity() > KEEP_BUFFER && self.buf.len() < KEEP_BUFFER / 4 {
            self.buf.shrink_to(KEEP_BUFFER / 4);
        }
    }

    fn line(&mut self, raw: &[u8]) -> Result<Option<SseEvent>, SseError> {
        let mut line = String::from_utf8_lossy(raw);
        if self.first_line {
            self.first_line = false;
            if let Some(rest) = line.strip_prefix('\u{feff}') {
                line = rest.to_owned().into();
            }
        }
        if line.is_empty() {
            return Ok(self.dispatch());
        }
        if line.starts_with(':') {
            return Ok(None);
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
            "data" if self.skip_event => {}
            "data" => {
                let sep = usize::from(self.has_data);
                if self.data.len() + sep + value.len() > self.max_event {
                    // Free what the event had (not just clear it), and
                    // keep nothing of it until its end.
                    self.data = String::new();
                    self.has_data = false;
                    self.skip_event = true;
                    return Err(SseError::EventTooLarge(self.max_event));
                }
                // Grow by doubling as usual, but never past the bound.
                let needed = self.data.len() + sep + value.len();
                if needed > self.data.capacity() {
                    let want = (2 * self.data.capacity()).clamp(needed, self.max_event.max(needed));
                    self.data.reserve_exact(want - self.data.len());
                }
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
        Ok(None)
    }

    fn dispatch(&mut self) -> Option<SseEvent> {
        let event = std::mem::take(&mut self.event);
        if std::mem::take(&mut self.skip_event) {
            // The end of an event that was dropped as too large.
            return None;
        }
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
        let mut d = SseDecoder::with_limits(1 << 20, 1 << 20);
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
        let mut d = SseDecoder::with_limits(1024, 1024);
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
        let mut d = SseDecoder::with_limits(16, 1024);
        d.push(&[b'a'; 40]);
        assert_eq!(d.next_event(), Err(SseError::LineTooLong(16)));
        d.push(b"\ndata: ok\n\n");
        // The tail of the long line is discarded up to its line end.
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

    /// Decodes `chunks`, collecting events and errors in order.
    fn decode_with_errors(d: &mut SseDecoder, chunks: &[&[u8]]) -> (Vec<SseEvent>, Vec<SseError>) {
        let (mut events, mut errors) = (Vec::new(), Vec::new());
        for c in chunks {
            d.push(c);
            loop {
                match d.next_event() {
                    Ok(Some(e)) => events.push(e),
                    Ok(None) => break,
                    Err(e) => errors.push(e),
                }
            }
        }
        (events, errors)
    }

    #[test]
    fn an_event_over_the_bound_is_dropped_and_its_memory_freed() {
        let mut d = SseDecoder::with_limits(64, 100);
        let line = format!("data: {}\n", "x".repeat(40));
        d.push(line.repeat(2).as_bytes());
        assert_eq!(d.next_event(), Ok(None));
        assert_eq!(d.data.len(), 81);
        d.push(line.as_bytes());
        assert_eq!(d.next_event(), Err(SseError::EventTooLarge(100)));
        assert_eq!(d.data.capacity(), 0, "the event's data is freed, not kept");
        // The rest of the event is skipped, not kept, however long it goes on.
        for _ in 0..1000 {
            d.push(line.as_bytes());
            assert_eq!(d.next_event(), Ok(None));
            assert_eq!((d.data.len(), d.buf.len()), (0, 0));
        }
        d.push(b"event: late\n\nevent: next\ndata: ok\n\n");
        let ev = d.next_event().unwrap().unwrap();
        assert_eq!((ev.event.as_str(), ev.data.as_str()), ("next", "ok"));
        assert_eq!(d.next_event(), Ok(None));
    }

    #[test]
    fn an_event_of_exactly_the_bound_is_delivered() {
        // Two lines of 4 and 5 bytes joined by '\n': 10 bytes of data.
        let (events, errors) =
            decode_with_errors(&mut SseDecoder::with_limits(64, 10), &[b"data: abcd\ndata: efghi\n\n"]);
        assert_eq!((events.len(), errors.len()), (1, 0));
        assert_eq!(events[0].data, "abcd\nefghi");
        let (events, errors) =
            decode_with_errors(&mut SseDecoder::with_limits(64, 10), &[b"data: abcd\ndata: efghij\n\n"]);
        assert_eq!((events.len(), errors), (0, vec![SseError::EventTooLarge(10)]));
    }

    #[test]
    fn an_oversized_event_split_at_every_offset() {
        let mut stream = b"id: 1\ndata: first\n\nevent: big\n".to_vec();
        for _ in 0..6 {
            stream.extend_from_slice(b"data: 0123456789012345678901234567890123456789\r\n");
        }
        stream.extend_from_slice(b"\r\ndata: last\n\n");
        for i in 0..=stream.len() {
            let (a, b) = stream.split_at(i);
            let (events, errors) = decode_with_errors(&mut SseDecoder::with_limits(64, 200), &[a, b]);
            let data: Vec<&str> = events.iter().map(|e| e.data.as_str()).collect();
            assert_eq!(data, ["first", "last"], "split at {i}");
            assert_eq!(events[1].event, "message", "split at {i}: the dropped event's name does not leak");
            assert_eq!(errors, [SseError::EventTooLarge(200)], "split at {i}");
        }
    }

    /// The report's case, scaled down: megabytes of `data:` lines without a
    /// blank line. Memory stays within the bounds all along; one error.
    #[test]
    fn an_endless_event_never_grows_memory_past_the_bounds() {
        let (max_line, max_event, chunk) = (1024, 64 * 1024, 4096);
        let mut d = SseDecoder::with_limits(max_line, max_event);
        let line = format!("data: {}\n", "y".repeat(250));
        let flood = line.repeat(40_000); // 10 MiB
        let mut errors = 0;
        for c in flood.as_bytes().chunks(chunk) {
            d.push(c);
            loop {
                match d.next_event() {
                    Ok(Some(e)) => panic!("no event may come out: {} bytes", e.data.len()),
                    Ok(None) => break,
                    Err(e) => {
                        assert_eq!(e, SseError::EventTooLarge(max_event));
                        errors += 1;
                    }
                }
            }
            assert!(d.buf.capacity() <= KEEP_BUFFER && d.buf.len() <= max_line, "{}", d.buf.len());
            assert!(d.data.capacity() <= max_event, "{}", d.data.capacity());
        }
        assert_eq!(errors, 1);
        d.push(b"\ndata: after\n\n");
        assert_eq!(d.next_event().unwrap().unwrap().data, "after");
    }

    /// One line far over the line bound: its memory goes back once it is
    /// dropped.
    #[test]
    fn a_long_line_does_not_pin_its_buffer() {
        let mut d = SseDecoder::with_limits(8 * KEEP_BUFFER, 8 * KEEP_BUFFER);
        let body = "z".repeat(4 * KEEP_BUFFER);
        d.push(format!("data: {body}").as_bytes());
        assert_eq!(d.next_event(), Ok(None));
        assert!(d.buf.capacity() >= 4 * KEEP_BUFFER);
        d.push(b"\n\n");
        assert_eq!(d.next_event().unwrap().unwrap().data.len(), body.len());
        assert_eq!(d.next_event(), Ok(None));
        assert!(d.buf.capacity() <= KEEP_BUFFER, "{}", d.buf.capacity());
    }

    /// Random streams of data lines, few blank lines, split at random
    /// places: whatever arrives, the decoder holds at most one line bound of
    /// undecoded bytes and one event bound of data, and every event it hands
    /// out is within the event bound.
    #[test]
    fn random_streams_stay_within_both_bounds() {
        let pieces: [&[u8]; 9] =
            [b"data: ", b"data:", b"0123456789abcdef", b"\n", b"\r\n", b"\r", b"event: e\n", b": c\n", b"\xff"];
        let mut state: u64 = 7;
        let mut next = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n.max(1) as u64) as usize
        };
        let (max_line, max_event) = (48, 200);
        for _ in 0..3_000 {
            let mut input = Vec::new();
            for _ in 0..next(120) {
                input.extend_from_slice(pieces[next(pieces.len())]);
            }
            let mut d = SseDecoder::with_limits(max_line, max_event);
            let mut at = 0;
            while at < input.len() {
                let end = (at + 1 + next(40)).min(input.len());
                d.push(&input[at..end]);
                at = end;
                loop {
                    match d.next_event() {
                        Ok(Some(ev)) => assert!(ev.data.len() <= max_event, "{}", ev.data.len()),
                        Ok(None) => break,
                        Err(_) => {}
                    }
                    assert!(d.data.len() <= max_event);
                }
                assert!(d.buf.len() <= max_line, "{} undecoded bytes", d.buf.len());
            }
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
            let mut d = SseDecoder::with_limits(64, 256);
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
