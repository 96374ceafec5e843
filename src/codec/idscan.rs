//! The JSON-RPC id of a request body too large to keep: scanned as it is
//! read and thrown away, in constant memory, so that the refusal can carry
//! the id the client waits on.

/// Finds the top-level `"id"` of a JSON-RPC object in a body read piece by
/// piece and thrown away (a request too large to keep), so that its
/// refusal can carry the id the client waits on. Constant memory: it keeps
/// only the id's text (at most [`IdScanner::MAX_ID`] bytes). Only an
/// object's own `id` counts, the last one if repeated (as [`crate::codec::jsonrpc::parse`] reads
/// it); a batch has none.
#[derive(Default)]
pub struct IdScanner {
    depth: u32,
    top_object: bool,
    in_str: bool,
    esc: bool,
    /// At depth 1 of the top object, the next string is a key.
    want_key: bool,
    reading_key: bool,
    key: Vec<u8>,
    /// The key just read was `id`: its value comes next.
    id_value: bool,
    capturing: bool,
    val: Vec<u8>,
    found: Option<Vec<u8>>,
}

impl IdScanner {
    /// The longest id text kept.
    pub const MAX_ID: usize = 256;

    pub fn push(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.byte(b);
        }
    }

    /// The id's JSON text (a string with its quotes, or a number), if one
    /// was seen.
    pub fn id(&self) -> Option<&[u8]> {
        self.found.as_deref()
    }

    fn keep(&mut self, b: u8) {
        if self.reading_key {
            if self.key.len() < 4 {
                self.key.push(b);
            } else {
                self.key.push(b'x');
                self.key.truncate(4);
            }
        } else if self.capturing {
            if self.val.len() < Self::MAX_ID {
                self.val.push(b);
            } else {
                // Too long to be an id worth echoing.
                self.capturing = false;
                self.val.clear();
            }
        }
    }

    fn end_value(&mut self) {
        if self.capturing {
            self.capturing = false;
            self.found = Some(std::mem::take(&mut self.val));
        }
        self.id_value = false;
    }

    fn byte(&mut self, b: u8) {
        if self.in_str {
            if self.esc {
                self.esc = false;
                self.keep(b);
            } else if b == b'\\' {
                self.esc = true;
                self.keep(b);
            } else if b == b'"' {
                self.in_str = false;
                if self.reading_key {
                    self.reading_key = false;
                } else if self.capturing {
                    self.val.push(b);
                    self.end_value();
                }
            } else {
                self.keep(b);
            }
            return;
        }
        let top = self.depth == 1 && self.top_object;
        match b {
            b'"' => {
                self.in_str = true;
                if top && self.want_key {
                    self.want_key = false;
                    self.reading_key = true;
                    self.key.clear();
                } else if top && self.id_value {
                    self.capturing = true;
                    self.val.clear();
                    self.val.push(b);
                }
            }
            b'{' | b'[' => {
                if self.depth == 0 {
                    self.top_object = b == b'{';
                    self.want_key = self.top_object;
                }
                if top {
                    // An object or array as the id: not a valid one.
                    self.capturing = false;
                    self.id_value = false;
                }
                self.depth = self.depth.saturating_add(1);
            }
            b'}' | b']' => {
                if top {
                    self.end_value();
                }
                self.depth = self.depth.saturating_sub(1);
            }
            b':' if top => self.id_value = self.key == b"id",
            b',' if top => {
                self.end_value();
                self.want_key = true;
            }
            b' ' | b'\t' | b'\n' | b'\r' if top && self.capturing => self.end_value(),
            b' ' | b'\t' | b'\n' | b'\r' => {}
            _ if top && self.id_value => {
                if !self.capturing {
                    self.capturing = true;
                    self.val.clear();
                }
                self.keep(b);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_of_a_discarded_body_is_found_in_any_order_and_any_split() {
        let cases: [(&str, Option<&str>); 8] = [
            (r#"{"jsonrpc":"2.0","id":7,"method":"x"}"#, Some("7")),
            (
                r#"{"method":"tools/call","params":{"id":1,"a":[{"id":2}]},"jsonrpc":"2.0","id":"abc"}"#,
                Some(r#""abc""#),
            ),
            (r#"{"params":{"s":"\"id\": 5"},"id" : -12 }"#, Some("-12")),
            (r#"{"id":"a\"b","id":3}"#, Some("3")),
            (r#"[{"id":1}]"#, None),
            (r#"{"method":"x","params":{"id":9}}"#, None),
            (r#"{"idx":4,"id":null}"#, Some("null")),
            (r#"{"id":{"nested":1}}"#, None),
        ];
        for (body, want) in cases {
            for split in 0..body.len() {
                let mut s = IdScanner::default();
                s.push(&body.as_bytes()[..split]);
                s.push(&body.as_bytes()[split..]);
                assert_eq!(s.id().map(|b| std::str::from_utf8(b).unwrap()), want, "{body} split at {split}");
            }
        }
        let mut s = IdScanner::default();
        s.push(br#"{"id":""#);
        s.push(&vec![b'x'; 10_000]);
        s.push(br#"","params":{}}"#);
        assert_eq!(s.id(), None, "an over-long id is not kept");
    }
}
