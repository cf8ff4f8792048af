//! A strict JSON parser that builds [`Doc`] in one pass over the bytes: strings without escapes
//! borrow from the input, a key given twice is an error, nesting is bounded as serde_json bounds
//! it. What it accepts and the values it builds are serde_json's (a test holds it to that).

use super::{Doc, Members, Seen};
use serde_json::Number;
use std::borrow::Cow;

/// serde_json's depth: a deeper input is refused rather than overflowing the stack.
const MAX_DEPTH: usize = 128;

/// Why a parse stopped. The words are found later, and only for a text that is rejected.
#[derive(Debug)]
pub enum Fail {
    Syntax,
    DuplicateKey(String),
}

pub type Parsed<T> = Result<T, Fail>;

pub struct Parser<'a> {
    text: &'a str,
    pos: usize,
    depth_left: usize,
}

impl<'a> Parser<'a> {
    pub fn new(text: &'a str) -> Self {
        Self {
            text,
            pos: 0,
            depth_left: MAX_DEPTH,
        }
    }

    /// Where the next token starts (after whitespace).
    pub fn next_token(&mut self) -> usize {
        self.skip_whitespace();
        self.pos
    }

    /// Where the last token read ended.
    pub fn offset(&self) -> usize {
        self.pos
    }

    /// Whether only whitespace is left.
    pub fn at_end(&mut self) -> bool {
        self.peek().is_none()
    }

    /// One value, whatever it is.
    pub fn value(&mut self) -> Parsed<Doc<'a>> {
        match self.peek().ok_or(Fail::Syntax)? {
            b'"' => self.string().map(Doc::String),
            b'{' => self.object().map(Doc::Object),
            b'[' => self.array().map(Doc::Array),
            b't' => self.literal(b"true", Doc::Bool(true)),
            b'f' => self.literal(b"false", Doc::Bool(false)),
            b'n' => self.literal(b"null", Doc::Null),
            b'-' | b'0'..=b'9' => self.number().map(Doc::Number),
            _ => Err(Fail::Syntax),
        }
    }

    /// A value that must be a string.
    pub fn string_value(&mut self) -> Parsed<Cow<'a, str>> {
        match self.peek() {
            Some(b'"') => self.string(),
            _ => Err(Fail::Syntax),
        }
    }

    /// An object, handing each key to `each`, which must read the member's value.
    pub fn members(
        &mut self,
        mut each: impl FnMut(&mut Self, Cow<'a, str>) -> Parsed<()>,
    ) -> Parsed<()> {
        if self.peek() != Some(b'{') {
            return Err(Fail::Syntax);
        }
        self.pos += 1;
        self.enter()?;
        if self.peek() == Some(b'}') {
            self.pos += 1;
            self.depth_left += 1;
            return Ok(());
        }
        loop {
            let key = match self.short_key() {
                Some(key) => Cow::Borrowed(key),
                None => self.string_value()?,
            };
            self.expect(b':')?;
            each(self, key)?;
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => break,
                _ => return Err(Fail::Syntax),
            }
        }
        self.pos += 1;
        self.depth_left += 1;
        Ok(())
    }

    fn object(&mut self) -> Parsed<Members<'a>> {
        // Room for a typical record's columns, so the vector rarely grows.
        let mut members = Vec::with_capacity(16);
        let mut seen = Seen::default();
        self.members(|parser, key| {
            // Checked before the value is read, as serde_json's visitor would.
            if seen.repeats(&key, &members) {
                return Err(Fail::DuplicateKey(key.into_owned()));
            }
            let value = parser.value()?;
            members.push((key, value));
            Ok(())
        })?;
        Ok(Members(members))
    }

    fn array(&mut self) -> Parsed<Vec<Doc<'a>>> {
        self.pos += 1;
        self.enter()?;
        let mut items = Vec::new();
        if self.peek() == Some(b']') {
            self.pos += 1;
            self.depth_left += 1;
            return Ok(items);
        }
        loop {
            items.push(self.value()?);
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => break,
                _ => return Err(Fail::Syntax),
            }
        }
        self.pos += 1;
        self.depth_left += 1;
        Ok(items)
    }

    fn enter(&mut self) -> Parsed<()> {
        self.depth_left -= 1;
        if self.depth_left == 0 {
            return Err(Fail::Syntax);
        }
        Ok(())
    }

    fn literal(&mut self, word: &[u8], value: Doc<'a>) -> Parsed<Doc<'a>> {
        if self.text.as_bytes()[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(value)
        } else {
            Err(Fail::Syntax)
        }
    }

    /// A key of at most seven plain bytes (most keys), read inline without the call a string
    /// scan costs; `None` leaves any other key to [`Self::string_value`].
    #[inline(always)]
    fn short_key(&mut self) -> Option<&'a str> {
        let bytes = self.text.as_bytes();
        if bytes.get(self.pos) != Some(&b'"') {
            return None;
        }
        let start = self.pos + 1;
        let chunk = bytes.get(start..start + 8)?;
        let word = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        let at = start + first_special(word)?;
        if bytes[at] != b'"' {
            return None;
        }
        let key = self.text.get(start..at)?;
        self.pos = at + 1;
        Some(key)
    }

    /// At the opening quote. Most strings have no escape: they are borrowed in a few
    /// instructions, inlined where they are read; the rest go to [`Self::escaped_string`].
    #[inline]
    fn string(&mut self) -> Parsed<Cow<'a, str>> {
        let bytes = self.text.as_bytes();
        let start = self.pos + 1;
        let at = special_byte(bytes, start);
        match bytes.get(at) {
            Some(b'"') => {
                self.pos = at + 1;
                Ok(Cow::Borrowed(&self.text[start..at]))
            }
            Some(b'\\') => self.escaped_string(start, at),
            _ => Err(Fail::Syntax),
        }
    }

    /// A string from `start` whose first escape is at `at`.
    #[cold]
    #[inline(never)]
    fn escaped_string(&mut self, start: usize, mut at: usize) -> Parsed<Cow<'a, str>> {
        let bytes = self.text.as_bytes();
        let mut out = String::with_capacity(at - start + 16);
        out.push_str(&self.text[start..at]);
        loop {
            match bytes.get(at) {
                Some(b'"') => {
                    self.pos = at + 1;
                    return Ok(Cow::Owned(out));
                }
                Some(b'\\') => at = self.escape(at + 1, &mut out)?,
                // A raw control character, or the text ended inside the string.
                _ => return Err(Fail::Syntax),
            }
            let next = special_byte(bytes, at);
            out.push_str(&self.text[at..next]);
            at = next;
        }
    }

    /// The escape after a backslash at `at`, pushed to `out`; returns where the text goes on.
    fn escape(&self, at: usize, out: &mut String) -> Parsed<usize> {
        let c = match self.text.as_bytes().get(at).ok_or(Fail::Syntax)? {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let (c, next) = self.unicode_escape(at + 1)?;
                out.push(c);
                return Ok(next);
            }
            _ => return Err(Fail::Syntax),
        };
        out.push(c);
        Ok(at + 1)
    }

    /// The four hex digits at `at`, and a low surrogate's after them when the first is a high
    /// one: a lone surrogate is no character, and serde_json refuses it too.
    fn unicode_escape(&self, at: usize) -> Parsed<(char, usize)> {
        let bytes = self.text.as_bytes();
        let first = self.hex4(at)?;
        let (code, next) = match first {
            0xD800..=0xDBFF => {
                if bytes.get(at + 4) != Some(&b'\\') || bytes.get(at + 5) != Some(&b'u') {
                    return Err(Fail::Syntax);
                }
                let second = self.hex4(at + 6)?;
                if !(0xDC00..=0xDFFF).contains(&second) {
                    return Err(Fail::Syntax);
                }
                (
                    0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00),
                    at + 10,
                )
            }
            0xDC00..=0xDFFF => return Err(Fail::Syntax),
            code => (code, at + 4),
        };
        Ok((char::from_u32(code).ok_or(Fail::Syntax)?, next))
    }

    fn hex4(&self, at: usize) -> Parsed<u32> {
        let digits = self.text.as_bytes().get(at..at + 4).ok_or(Fail::Syntax)?;
        digits.iter().try_fold(0u32, |code, &digit| {
            let value = char::from(digit).to_digit(16).ok_or(Fail::Syntax)?;
            Ok(code << 4 | value)
        })
    }

    fn number(&mut self) -> Parsed<Number> {
        let bytes = self.text.as_bytes();
        let start = self.pos;
        let negative = bytes[start] == b'-';
        let digits_start = start + usize::from(negative);
        let mut at = digits_start;
        match bytes.get(at) {
            Some(b'0') => at += 1,
            Some(b'1'..=b'9') => at = skip_digits(bytes, at),
            _ => return Err(Fail::Syntax),
        }
        let integer_end = at;
        if bytes.get(at) == Some(&b'.') {
            at = required_digits(bytes, at + 1)?;
        }
        if matches!(bytes.get(at), Some(b'e' | b'E')) {
            at += 1;
            if matches!(bytes.get(at), Some(b'+' | b'-')) {
                at += 1;
            }
            at = required_digits(bytes, at)?;
        }
        self.pos = at;
        let digits = &bytes[digits_start..integer_end];
        // Short integers, by far the most common, are read here; the rest (fractions,
        // exponents, 19 digits or more, -0) go to serde_json, so each number is what it makes.
        if at == integer_end && digits.len() <= 18 {
            let magnitude = digits
                .iter()
                .fold(0u64, |n, &d| n * 10 + u64::from(d - b'0'));
            if !negative {
                return Ok(magnitude.into());
            }
            if magnitude != 0 {
                return Ok((-(magnitude as i64)).into());
            }
        }
        serde_json::from_str(&self.text[start..at]).map_err(|_| Fail::Syntax)
    }

    fn expect(&mut self, byte: u8) -> Parsed<()> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(Fail::Syntax)
        }
    }

    /// The next byte that is not whitespace.
    fn peek(&mut self) -> Option<u8> {
        let next = *self.text.as_bytes().get(self.pos)?;
        // Every token starts above a space: compact JSON (what sources print) skips nothing.
        if next > b' ' {
            return Some(next);
        }
        self.skip_whitespace();
        self.text.as_bytes().get(self.pos).copied()
    }

    fn skip_whitespace(&mut self) {
        let bytes = self.text.as_bytes();
        while matches!(bytes.get(self.pos), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }
}

fn skip_digits(bytes: &[u8], mut at: usize) -> usize {
    while matches!(bytes.get(at), Some(b'0'..=b'9')) {
        at += 1;
    }
    at
}

fn required_digits(bytes: &[u8], at: usize) -> Parsed<usize> {
    let end = skip_digits(bytes, at);
    if end == at {
        return Err(Fail::Syntax);
    }
    Ok(end)
}

/// The offset of the first quote, backslash or control byte in the eight bytes of `word`
/// (little endian), if any.
#[inline(always)]
fn first_special(word: u64) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // A byte of `word` is zero, or below 0x20: the classic bit tricks, exact for the lowest
    // such byte (borrows only run upward), which is the first in memory on little endian.
    let zero_in = |word: u64| word.wrapping_sub(ONES) & !word & HIGH;
    let hits = zero_in(word ^ (ONES * u64::from(b'"')))
        | zero_in(word ^ (ONES * u64::from(b'\\')))
        | (word.wrapping_sub(ONES * 0x20) & !word & HIGH);
    (hits != 0).then(|| (hits.trailing_zeros() / 8) as usize)
}

/// The first quote, backslash or control byte at or after `at` (or the end): the bytes a
/// string scan must stop at. Eight bytes a step; string bytes are most of a record.
#[inline]
pub(crate) fn special_byte(bytes: &[u8], mut at: usize) -> usize {
    while let Some(chunk) = bytes.get(at..at + 8) {
        let word = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        if let Some(offset) = first_special(word) {
            return at + offset;
        }
        at += 8;
    }
    while bytes
        .get(at)
        .is_some_and(|&b| !matches!(b, b'"' | b'\\' | 0..=0x1f))
    {
        at += 1;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::super::{Doc, Error};
    use super::special_byte;
    use proptest::prelude::*;
    use serde_json::Value;

    /// A string literal with plain text, every escape, and `\u` escapes of any code unit
    /// (lone surrogates included, which must be refused).
    fn string_literal() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            4 => prop::sample::select(vec!["a", "key", "é", "€", "😀", " ", "long text past eight bytes"]).prop_map(str::to_owned),
            1 => prop::sample::select(vec!["\\\"", "\\\\", "\\/", "\\b", "\\f", "\\n", "\\r", "\\t", "\\ud83d\\ude00", "\\x"]).prop_map(str::to_owned),
            1 => (0u32..0x10000).prop_map(|unit| format!("\\u{unit:04X}")),
        ];
        prop::collection::vec(piece, 0..6).prop_map(|pieces| format!("\"{}\"", pieces.concat()))
    }

    fn number_literal() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<i64>().prop_map(|n| n.to_string()),
            any::<u64>().prop_map(|n| n.to_string()),
            prop::sample::select(vec![
                "0",
                "-0",
                "-0.0",
                "1e400",
                "-1e400",
                "1E5",
                "2.5e-3",
                "18446744073709551616",
                "-9223372036854775808",
                "-9223372036854775809",
                "999999999999999999",
                "1000000000000000000",
                "0.1",
                "1.7976931348623157e308",
            ])
            .prop_map(str::to_owned),
        ]
    }

    fn json_text() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just("null".to_owned()),
            Just("true".to_owned()),
            Just("false".to_owned()),
            number_literal(),
            string_literal(),
        ];
        leaf.prop_recursive(5, 40, 6, |inner| {
            // Keys from a small set, so some objects repeat one.
            let key = prop_oneof![
                3 => prop::sample::select(vec!["\"a\"", "\"b\"", "\"c\"", "\"d\"", "\"e\"", "\"f\"", "\"g\"", "\"\\u0061\""]).prop_map(str::to_owned),
                1 => string_literal(),
            ];
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5)
                    .prop_map(|items| format!("[{}]", items.join(","))),
                prop::collection::vec((key, inner), 0..5).prop_map(|members| {
                    let members: Vec<String> =
                        members.iter().map(|(k, v)| format!("{k}:{v}")).collect();
                    format!("{{{}}}", members.join(","))
                }),
            ]
        })
    }

    /// A valid text with one edit, as a broken source might send it.
    fn mutated_text() -> impl Strategy<Value = String> {
        let edit = prop::sample::select(vec![
            "", " ", "\n", "\t", "\r", "\u{a0}", "{", "}", "[", "]", ",", ":", "\"", "\\", "0",
            "-", ".", "e", "+", "t", "n", "\u{1}", "\u{7f}", "é",
        ]);
        (
            json_text(),
            any::<prop::sample::Index>(),
            edit,
            any::<bool>(),
        )
            .prop_map(|(text, at, edit, replace)| {
                let chars: Vec<char> = text.chars().collect();
                let at = at.index(chars.len() + 1);
                let mut out: String = chars[..at].iter().collect();
                out.push_str(edit);
                let rest = if replace {
                    (at + 1).min(chars.len())
                } else {
                    at
                };
                out.extend(&chars[rest..]);
                out
            })
    }

    /// serde_json's verdict on `text`: the value, or why not.
    fn serde_json_reads(text: &str) -> Result<Value, String> {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }

    fn agrees_with_serde_json(text: &str) -> Result<(), TestCaseError> {
        match (Doc::parse(text), serde_json_reads(text)) {
            (Ok(doc), Ok(value)) => {
                prop_assert_eq!(doc.to_value(), value.clone(), "{}", text);
                // And it writes back as serde_json writes it.
                let mut written = Vec::new();
                doc.write_json(&mut written);
                prop_assert_eq!(
                    String::from_utf8(written).unwrap(),
                    serde_json::to_string(&value).unwrap(),
                    "{}",
                    text
                );
            }
            (Err(Error::Syntax(ours)), Err(theirs)) => {
                prop_assert_eq!(ours.to_string(), theirs, "{}", text)
            }
            // A key twice may come before a syntax error; serde_json keeps the last value.
            (Err(Error::DuplicateKey(_)), _) => {}
            (ours, theirs) => prop_assert!(false, "{text}: ours {ours:?}, serde_json {theirs:?}"),
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

        /// What it accepts, the value it builds and the error it reports are serde_json's.
        #[test]
        fn reads_as_serde_json_reads(text in json_text()) {
            agrees_with_serde_json(&text)?;
        }

        #[test]
        fn refuses_what_serde_json_refuses(text in mutated_text()) {
            agrees_with_serde_json(&text)?;
        }

        #[test]
        fn the_byte_scan_stops_where_a_plain_scan_does(bytes in prop::collection::vec(prop_oneof![
            8 => 0x20u8..0x7f, 1 => Just(b'"'), 1 => Just(b'\\'), 1 => 0u8..0x20, 1 => 0x80u8..=0xff,
        ], 0..40), from in 0usize..40) {
            let from = from.min(bytes.len());
            let plain = bytes[from..].iter().position(|&b| matches!(b, b'"' | b'\\' | 0..=0x1f))
                .map_or(bytes.len(), |i| from + i);
            prop_assert_eq!(special_byte(&bytes, from), plain);
        }
    }

    /// Keys read by the inline short-key path, and those it leaves to the full scan.
    #[test]
    fn short_keys_read_as_long_ones() {
        for text in [
            r#"{"abcdefg":1}"#,
            r#"{"abcdefgh":1}"#,
            r#"{"é":1,"ab\"c":2}"#,
            "{\"a\u{1}\":1}",
            r#"{"a":1,"a":2}"#,
            r#"{"a""#,
            r#"{"abc"}"#,
        ] {
            agrees_with_serde_json(text).unwrap();
        }
        assert!(matches!(
            Doc::parse(r#"{"ab":1,"ab":2}"#),
            Err(Error::DuplicateKey(_))
        ));
    }

    #[test]
    fn nesting_is_bounded_as_serde_json_bounds_it() {
        for depth in [126, 127, 128, 129, 10_000] {
            let text = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            agrees_with_serde_json(&text).unwrap();
            let text = format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth));
            agrees_with_serde_json(&text).unwrap();
        }
    }
}
