//! RFC 6570 URI templates as the registry uses them: parsed once when the
//! registry is built (admin thread), then matched against the URI of every
//! `resources/read` and `completion/complete` to find the backend that serves
//! it (the data-plane thread that dispatches the request: the `mcp-io`
//! reactor, or an `mcp-work` worker for a large body). We route, we never
//! expand, so a template is only a sequence of literals and expressions.
//!
//! The URI comes from any client and the template from any backend, so a
//! match must cost little whatever they hold. It is one pass per template
//! part over the URI, keeping the set of positions the parts so far can end
//! at (a dynamic program over (part, position), like an NFA run): at most
//! [`MAX_PARTS`] × ([`MAX_URI_BYTES`] + 1) states, each visited once, with a
//! loop and two buffers, never a recursion whose depth an input chooses.
//! (The backtracking matcher this replaced took 3.9 s for a 40 KB URI
//! against `x://{+a}/{+b}.md`, and a 5,000-part template overflowed a
//! worker's 256 KiB stack.) A longer URI matches no template; a template with
//! more parts is not used to match URIs (the registry says so in the log).

/// The longest URI matched against templates; a longer one matches none
/// (a listed resource is still found by its exact URI).
pub const MAX_URI_BYTES: usize = 8 * 1024;

/// The most parts (literals and expressions) a template may have and still
/// be used to match URIs.
pub const MAX_PARTS: usize = 64;

/// A parsed template, enough to decide whether a URI could have come from it.
#[derive(Debug)]
pub struct Template {
    parts: Vec<Part>,
    /// Bytes of all literals: a matching URI is at least this long.
    literal_bytes: usize,
}

#[derive(Debug)]
enum Part {
    /// Text that must appear as is, with its KMP failure table
    /// (`fail[i]`: the longest proper prefix of `text[..=i]` that is also
    /// its suffix), so finding it in the URI is one pass.
    Lit { text: Box<[u8]>, fail: Box<[usize]> },
    /// `{var}`: one or more characters, none of them `/`, `?` or `#`.
    Simple,
    /// `{+var}`, `{#var}`, `{/var}`, `{.var}`, `{;var}`: anything, possibly empty.
    Reserved,
    /// `{?a,b}` / `{&a}`: an optional query part; anything, possibly empty.
    Query,
}

/// Why a template is not used to match URIs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyParts {
    pub parts: usize,
}

/// One lexical piece of a template, in order.
enum Token<'a> {
    Lit(&'a str),
    Expr(&'a str),
}

/// Splits `t` into literals and `{…}` expressions: an expression runs from a
/// `{` to the first `}` after it (so `{a{b}` is one expression and a
/// following `}` is text); a `{` with no `}` after it starts the final
/// literal. Linear in `t`, and it allocates nothing.
fn tokens(t: &str) -> impl Iterator<Item = Token<'_>> {
    let mut rest = t;
    let mut pending_expr: Option<&str> = None;
    std::iter::from_fn(move || {
        if let Some(e) = pending_expr.take() {
            return Some(Token::Expr(e));
        }
        if rest.is_empty() {
            return None;
        }
        let expr = rest.find('{').and_then(|open| rest[open..].find('}').map(|c| (open, open + c)));
        let Some((open, close)) = expr else {
            return Some(Token::Lit(std::mem::take(&mut rest)));
        };
        let lit = &rest[..open];
        let e = &rest[open + 1..close];
        rest = &rest[close + 1..];
        if lit.is_empty() {
            Some(Token::Expr(e))
        } else {
            pending_expr = Some(e);
            Some(Token::Lit(lit))
        }
    })
}

impl Template {
    /// Parses `t`; a template of more than [`MAX_PARTS`] parts is refused
    /// without storing them.
    pub fn parse(t: &str) -> Result<Template, TooManyParts> {
        Template::parse_capped(t, MAX_PARTS)
    }

    fn parse_capped(t: &str, max_parts: usize) -> Result<Template, TooManyParts> {
        let count = tokens(t).count();
        if count > max_parts {
            return Err(TooManyParts { parts: count });
        }
        let mut parts = Vec::with_capacity(count);
        let mut literal_bytes = 0;
        for tok in tokens(t) {
            parts.push(match tok {
                Token::Lit(l) => {
                    literal_bytes += l.len();
                    Part::Lit { text: l.as_bytes().into(), fail: failure_table(l.as_bytes()) }
                }
                Token::Expr(e) => match e.chars().next() {
                    Some('?' | '&') => Part::Query,
                    Some('+' | '#' | '/' | '.' | ';') => Part::Reserved,
                    _ => Part::Simple,
                },
            });
        }
        Ok(Template { parts, literal_bytes })
    }

    /// Whether `uri` could have come from this template. `m` holds the
    /// buffers, so that one request trying several templates allocates once.
    pub fn matches(&self, uri: &str, m: &mut Matcher) -> bool {
        let s = uri.as_bytes();
        if s.len() > MAX_URI_BYTES {
            m.steps = 0;
            return false;
        }
        self.run(s, m)
    }

    /// The match itself, for a URI of any length (the tests run it past the cap).
    fn run(&self, s: &[u8], m: &mut Matcher) -> bool {
        m.steps = 0;
        // Quick refusals, each implied by the pass below: too short, or a
        // first or last literal that is not where it must be.
        if s.len() < self.literal_bytes {
            return false;
        }
        if let Some(Part::Lit { text, .. }) = self.parts.first() {
            if !s.starts_with(text) {
                return false;
            }
        }
        if let Some(Part::Lit { text, .. }) = self.parts.last() {
            if !s.ends_with(text) {
                return false;
            }
        }
        let n = s.len();
        let Matcher { cur, next, steps } = m;
        // `cur[p]`: the parts so far can match `s[..p]` exactly. Only
        // positions from `lo` (the lowest such p) on are read or written;
        // `lo` never decreases, as every part consumes zero or more bytes.
        cur.clear();
        cur.resize(n + 1, false);
        next.clear();
        next.resize(n + 1, false);
        cur[0] = true;
        let mut lo = 0;
        for part in &self.parts {
            next[lo..].fill(false);
            *steps += (n + 1 - lo) as u64;
            match part {
                // Never empty (the parser makes no empty literal), but the
                // scan below needs one byte.
                Part::Lit { text, .. } if text.is_empty() => next[lo..].copy_from_slice(&cur[lo..]),
                Part::Lit { text, fail } => {
                    // Every occurrence of `text` in `s[lo..]` that starts
                    // at a reachable position: Knuth–Morris–Pratt, one pass.
                    let l = text.len();
                    let mut k = 0;
                    for (i, &b) in s.iter().enumerate().skip(lo) {
                        *steps += 1;
                        while k > 0 && text[k] != b {
                            *steps += 1;
                            k = fail[k - 1];
                        }
                        if text[k] == b {
                            k += 1;
                        }
                        if k == l {
                            next[i + 1] = cur[i + 1 - l];
                            k = fail[k - 1];
                        }
                    }
                }
                Part::Simple => {
                    // `open`: some reachable p ≤ i has no delimiter in s[p..=i].
                    let mut open = false;
                    for (i, &b) in s.iter().enumerate().skip(lo) {
                        *steps += 1;
                        open = (open || cur[i]) && !matches!(b, b'/' | b'?' | b'#');
                        next[i + 1] = open;
                    }
                }
                // From the lowest reachable position on, every end is reachable.
                Part::Reserved | Part::Query => next[lo..].fill(true),
            }
            std::mem::swap(cur, next);
            match cur[lo..].iter().position(|&r| r) {
                Some(i) => {
                    *steps += i as u64 + 1;
                    lo += i;
                }
                None => return false,
            }
        }
        cur[n]
    }

    /// How many parts this template has.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.parts.len()
    }
}

/// Scratch space for [`Template::matches`], and the work the last match did.
#[derive(Default)]
pub struct Matcher {
    cur: Vec<bool>,
    next: Vec<bool>,
    /// Positions visited by the last match (a bound the tests check instead
    /// of a time).
    steps: u64,
}

/// The KMP failure table of `p`.
fn failure_table(p: &[u8]) -> Box<[usize]> {
    let mut fail = vec![0; p.len()];
    let mut k = 0;
    for i in 1..p.len() {
        while k > 0 && p[i] != p[k] {
            k = fail[k - 1];
        }
        if p[i] == p[k] {
            k += 1;
        }
        fail[i] = k;
    }
    fail.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// The matcher this module replaced, verbatim but for names: the
    /// reference for what a template matches.
    mod reference {
        pub enum Part {
            Lit(String),
            Simple,
            Reserved,
            Query,
        }

        pub fn parse(t: &str) -> Vec<Part> {
            let mut parts = Vec::new();
            let mut rest = t;
            while let Some(open) = rest.find('{') {
                let Some(close) = rest[open..].find('}').map(|c| open + c) else { break };
                if open > 0 {
                    parts.push(Part::Lit(rest[..open].to_owned()));
                }
                let expr = &rest[open + 1..close];
                parts.push(match expr.chars().next() {
                    Some('?' | '&') => Part::Query,
                    Some('+' | '#' | '/' | '.' | ';') => Part::Reserved,
                    _ => Part::Simple,
                });
                rest = &rest[close + 1..];
            }
            if !rest.is_empty() {
                parts.push(Part::Lit(rest.to_owned()));
            }
            parts
        }

        pub fn match_parts(parts: &[Part], s: &[u8]) -> bool {
            let Some((first, rest)) = parts.split_first() else {
                return s.is_empty();
            };
            match first {
                Part::Lit(l) => s.starts_with(l.as_bytes()) && match_parts(rest, &s[l.len()..]),
                Part::Simple => {
                    let max = s.iter().position(|b| matches!(b, b'/' | b'?' | b'#')).unwrap_or(s.len());
                    (1..=max).any(|n| match_parts(rest, &s[n..]))
                }
                Part::Reserved | Part::Query => (0..=s.len()).any(|n| match_parts(rest, &s[n..])),
            }
        }

        pub fn matches(t: &str, uri: &str) -> bool {
            match_parts(&parse(t), uri.as_bytes())
        }
    }

    fn matches(t: &str, uri: &str) -> bool {
        Template::parse(t).expect("a small template").matches(uri, &mut Matcher::default())
    }

    /// Runs `f` on a thread with a 64 KiB stack: a matcher that recursed
    /// by input size would overflow it and abort the test binary.
    fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        std::thread::Builder::new()
            .name("small-stack".into())
            .stack_size(64 * 1024)
            .spawn(f)
            .expect("spawn a small-stack thread")
            .join()
            .expect("the small-stack thread panicked")
    }

    /// The most steps a match of `parts` parts against `n` bytes may take:
    /// per part, one visit per position to clear, one to find the lowest
    /// reachable, plus the scan (at most two per byte with KMP's fallbacks).
    fn step_bound(parts: usize, n: usize) -> u64 {
        4 * parts as u64 * (n as u64 + 1)
    }

    #[test]
    fn operators_and_literals() {
        let cases: &[(&str, &str, bool)] = &[
            ("demo://a/items/{id}", "demo://a/items/42", true),
            ("demo://a/items/{id}", "demo://a/items/", false),
            ("demo://a/items/{id}", "demo://a/items/4/2", false),
            ("demo://a/items/{id}", "demo://a/items/4?x", false),
            ("demo://a/items/{id}", "demo://a/items/4#x", false),
            ("demo://a/items/{id}", "demo://b/items/4", false),
            ("file:///{+path}", "file:///etc/hosts", true),
            ("file:///{+path}", "file:///", true),
            ("file:///{+path}", "file://", false),
            ("search://x{?q,lang}", "search://x?q=1&lang=en", true),
            ("search://x{?q,lang}", "search://x", true),
            ("search://x{?q}{&lang}", "search://x?q=1&lang=en", true),
            ("x://{#frag}", "x://a/b#c", true),
            ("x://{/seg}", "x:///a/b", true),
            ("x://{.ext}", "x://.json", true),
            ("x://{;p}", "x://;a=1", true),
            ("x://{a}/{b}", "x://1/2", true),
            ("x://{a}/{b}", "x://1/2/3", false),
            ("x://{a}{b}", "x://1", false),
            ("x://{a}{b}", "x://12", true),
            ("x://{+a}/{+b}.md", "x://p/q/r.md", true),
            ("x://{+a}/{+b}.md", "x://p.md", false),
            ("x://{+a}/{+b}.md", "x:///.md", true),
            ("no-expressions", "no-expressions", true),
            ("no-expressions", "no-expression", false),
            ("", "", true),
            ("", "x", false),
            ("{a}", "", false),
            ("{+a}", "", true),
            // An unclosed `{` starts the final literal, text included.
            ("x://{a", "x://{a", true),
            ("x://{a}/{b", "x://1/{b", true),
            // Nested: the expression ends at the first `}`; the rest is text.
            ("x://{a{b}}", "x://1}", true),
            ("x://{a{b}}", "x://1", false),
            // A stray `}` is text.
            ("x://}{a}", "x://}1", true),
            // Bytes, not characters: a multi-byte literal and URI.
            ("x://é/{a}", "x://é/ü", true),
        ];
        for &(t, uri, want) in cases {
            assert_eq!(matches(t, uri), want, "{t:?} against {uri:?}");
            assert_eq!(reference::matches(t, uri), want, "reference: {t:?} against {uri:?}");
        }
    }

    #[test]
    fn failure_table_is_kmps() {
        assert_eq!(&*failure_table(b"abab"), &[0, 0, 1, 2]);
        assert_eq!(&*failure_table(b"aabaaab"), &[0, 1, 0, 1, 2, 2, 3]);
        assert_eq!(&*failure_table(b""), &[] as &[usize]);
        // Overlapping occurrences are all found.
        assert!(matches("x://{a}aa{b}", "x://aaaaab"));
        assert!(matches("{+a}abab{b}", "ababababx"));
    }

    #[test]
    fn uri_length_and_part_caps() {
        let t = Template::parse("x://{+a}").expect("parses");
        let mut m = Matcher::default();
        let at_cap = format!("x://{}", "a".repeat(MAX_URI_BYTES - 4));
        assert!(t.matches(&at_cap, &mut m));
        let over = format!("x://{}", "a".repeat(MAX_URI_BYTES - 3));
        assert!(!t.matches(&over, &mut m), "a URI over the cap matches no template");
        assert_eq!(m.steps, 0, "and costs nothing");

        // `{a}/` is two parts.
        let at_cap = "{a}/".repeat(MAX_PARTS / 2);
        assert_eq!(Template::parse(&at_cap).map(|t| t.len()), Ok(MAX_PARTS));
        let over = format!("{at_cap}{{a}}");
        assert_eq!(Template::parse(&over).map(|t| t.len()), Err(TooManyParts { parts: MAX_PARTS + 1 }));
    }

    /// The finding's template with near-miss URIs of 10 KB, 40 KB and 4 MB:
    /// refused by the URI cap at no cost, and (run past the cap) linear in
    /// the URI.
    #[test]
    fn adversarial_uris_are_linear() {
        let t = Template::parse("x://{+a}/{+b}.md").expect("parses");
        for len in [10_000, 40_000, 4_000_000] {
            let uris = [
                // Slashes everywhere and the wrong suffix: the old matcher
                // tried every (a, b) split, quadratic in the length.
                format!("x://{}.mx", "/".repeat(len)),
                // The right suffix and no slash: the full pass runs, no match.
                format!("x://{}.md", "a".repeat(len)),
                // The full pass with every position reachable: a match.
                format!("x://{}.md", "/".repeat(len)),
            ];
            for uri in &uris {
                let mut m = Matcher::default();
                let started = Instant::now();
                assert!(!t.matches(uri, &mut m));
                assert_eq!(m.steps, 0, "over the URI cap");
                assert_eq!(t.run(uri.as_bytes(), &mut m), by_hand(uri), "{}…", &uri[..10]);
                assert!(m.steps <= step_bound(t.len(), uri.len()), "{} steps for {} bytes", m.steps, uri.len());
                assert!(started.elapsed() < Duration::from_secs(5), "{:?} for {} bytes", started.elapsed(), len);
            }
        }
        // Under the cap: the same shapes, within the bound.
        let mut m = Matcher::default();
        for uri in [
            format!("x://{}.mx", "/".repeat(8_000)),
            format!("x://{}.md", "a".repeat(8_000)),
            format!("x://{}.md", "/".repeat(8_000)),
        ] {
            assert_eq!(t.matches(&uri, &mut m), by_hand(&uri), "{}…", &uri[..10]);
            assert!(m.steps <= step_bound(t.len(), uri.len()), "{} steps", m.steps);
        }
    }

    /// Whether `x://{+a}/{+b}.md` matches `uri`, worked out by hand: `x://`,
    /// then a `/` somewhere, then `.md` at the end.
    fn by_hand(uri: &str) -> bool {
        uri.strip_prefix("x://").and_then(|r| r.strip_suffix(".md")).is_some_and(|mid| mid.contains('/'))
    }

    /// 5,000 parts and a 6,000-byte URI (the finding's stack overflow):
    /// refused by the part cap; and run without it, on a 64 KiB stack, the
    /// pass neither recurses nor takes more than its bound. Each shape gets
    /// the URI that keeps the most positions reachable the longest (debug
    /// builds take ~30 ns a step, so the other pairings are left out).
    #[test]
    fn huge_templates_do_not_recurse() {
        let cases = [
            // Simple expressions separated by literals.
            (format!("x://{}", "{a}-".repeat(2_500)), format!("x://{}", "a-".repeat(3_000)), true),
            (format!("x://{}", "{a}-".repeat(2_500)), format!("x://{}", "a-".repeat(2_499)), false),
            // Adjacent simple, reserved and query expressions.
            (format!("x://{}", "{a}".repeat(5_000)), format!("x://{}", "a".repeat(6_000)), true),
            (format!("x://{}", "{+a}".repeat(5_000)), format!("x://{}", "a-".repeat(3_000)), true),
            (format!("x://{}", "{+a}{b}{?c}/".repeat(1_250)), format!("x://{}", "/".repeat(6_000)), false),
            // Nested braces: `{a{b}` is one expression, the `}` after it text.
            (format!("x://{}", "{a{b}}".repeat(2_500)), format!("x://{}", "a}".repeat(3_000)), true),
        ];
        on_small_stack(move || {
            let mut m = Matcher::default();
            for (t, uri, want) in &cases {
                let parts = tokens(t).count();
                assert!(parts > 5_000, "{parts} parts");
                assert_eq!(Template::parse(t).map(|_| ()), Err(TooManyParts { parts }));
                let big = Template::parse_capped(t, usize::MAX).expect("parses without the cap");
                assert_eq!(big.matches(uri, &mut m), *want, "{}… against {}…", &t[..12], &uri[..8]);
                assert!(m.steps <= step_bound(big.len(), uri.len()), "{} steps", m.steps);
            }
        });
    }

    /// Many adjacent expressions at the part cap against URIs at the URI
    /// cap: the worst a request can make the gateway do, on a 64 KiB stack.
    #[test]
    fn worst_case_at_the_caps_is_bounded() {
        on_small_stack(|| {
            let n = MAX_URI_BYTES;
            let templates = [
                "{a}".repeat(MAX_PARTS),
                "{+a}".repeat(MAX_PARTS - 1) + "b",
                "{a}a".repeat(MAX_PARTS / 2),
                "{+a}aa".repeat(MAX_PARTS / 2),
            ];
            let uris = ["a".repeat(n), "a".repeat(n - 1) + "/", "a/".repeat(n / 2), "a".repeat(n - 1) + "c"];
            let mut m = Matcher::default();
            for t in &templates {
                let tpl = Template::parse(t).expect("at the cap");
                for uri in &uris {
                    let started = Instant::now();
                    let _ = tpl.matches(uri, &mut m);
                    assert!(m.steps <= step_bound(tpl.len(), n), "{} steps", m.steps);
                    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
                }
            }
        });
    }

    /// xorshift64*: a deterministic generator for the fuzz test.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
            from[self.below(from.len())]
        }
    }

    const URI_BYTES: &[&str] = &["a", "b", "/", "?", "#", ".", "=", "&", "{", "}", "é"];
    const TEMPLATE_TOKENS: &[&str] = &[
        "a", "b", "ab", "/", "?", "#", ".", "{a}", "{+a}", "{#a}", "{/a}", "{.a}", "{;a}", "{?a,b}", "{&a}", "{}", "{",
        "}", "{a{b}", "é",
    ];

    /// A URI the template could expand to, so that matches are common.
    fn expand(t: &str, rng: &mut Rng) -> String {
        let mut out = String::new();
        for tok in tokens(t) {
            match tok {
                Token::Lit(l) => out.push_str(l),
                Token::Expr(e) => {
                    let simple = !matches!(e.chars().next(), Some('?' | '&' | '+' | '#' | '/' | '.' | ';'));
                    let len = rng.below(3) + usize::from(simple);
                    for _ in 0..len {
                        let c = if simple { rng.pick(&["a", "b", ".", "="]) } else { rng.pick(URI_BYTES) };
                        out.push_str(c);
                    }
                }
            }
        }
        out
    }

    /// Thousands of generated templates and URIs: no panic, the step bound
    /// holds, and the answer is the old matcher's.
    #[test]
    fn fuzz_agrees_with_the_old_matcher() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut m = Matcher::default();
        let (mut agreed, mut matched) = (0, 0);
        for _ in 0..4_000 {
            let mut t = String::new();
            for _ in 0..rng.below(7) {
                t.push_str(rng.pick(TEMPLATE_TOKENS));
            }
            let Ok(tpl) = Template::parse(&t) else { panic!("{t:?} is under the part cap") };
            for i in 0..8 {
                let mut uri = if i % 2 == 0 { expand(&t, &mut rng) } else { String::new() };
                // Mutate or extend, sometimes.
                for _ in 0..rng.below(4) {
                    if rng.below(2) == 0 || uri.is_empty() {
                        uri.push_str(rng.pick(URI_BYTES));
                    } else {
                        let cut = (0..=uri.len()).filter(|&c| uri.is_char_boundary(c)).nth(rng.below(uri.len()));
                        uri.truncate(cut.unwrap_or(0));
                    }
                }
                let got = tpl.matches(&uri, &mut m);
                assert!(m.steps <= step_bound(tpl.len(), uri.len()), "{t:?} {uri:?}: {} steps", m.steps);
                assert_eq!(got, reference::matches(&t, &uri), "{t:?} against {uri:?}");
                agreed += 1;
                matched += usize::from(got);
            }
        }
        assert_eq!(agreed, 32_000);
        // The generator must exercise both answers.
        assert!(matched > 4_000 && matched < 28_000, "{matched} matches");
    }

    /// Long random inputs against the caps: no panic, the bound holds.
    #[test]
    fn fuzz_long_inputs_stay_bounded() {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let mut m = Matcher::default();
        for _ in 0..200 {
            let mut t = String::new();
            while tokens(&t).count() < MAX_PARTS - 4 {
                t.push_str(rng.pick(TEMPLATE_TOKENS));
            }
            let tpl = Template::parse(&t).expect("under the part cap");
            let mut uri = String::new();
            let len = rng.below(MAX_URI_BYTES);
            while uri.len() < len {
                uri.push_str(rng.pick(URI_BYTES));
            }
            let _ = tpl.matches(&uri, &mut m);
            assert!(m.steps <= step_bound(tpl.len(), uri.len()), "{} steps", m.steps);
        }
    }
}
