//! A record's `data` parsed once into a tree that borrows its strings from the input line:
//! jsonschema validates it in place (as its own JSON representation), and it is written back
//! out only when the record had to change.

use jsonschema::json::{cmp, Array, Json, Node, NodeIdentity, Object};
use jsonschema::JsonType;
use serde::de;
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::{Number, Value};
use std::borrow::Cow;
use std::collections::HashSet;

mod fast;
mod parser;
pub use fast::FastSchema;
pub use parser::{Fail, Parsed, Parser};

/// One JSON value. Strings without escapes borrow from the text they were parsed from.
#[derive(Debug, Clone, PartialEq)]
pub enum Doc<'a> {
    Null,
    Bool(bool),
    Number(Number),
    String(Cow<'a, str>),
    Array(Vec<Doc<'a>>),
    Object(Members<'a>),
}

/// An object's members in input order. A record has a few dozen keys at most, where a scan
/// costs less than hashing every key.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Members<'a>(Vec<(Cow<'a, str>, Doc<'a>)>);

impl<'a> Doc<'a> {
    /// Parses `json`, refusing an object that has a key twice: a plain decode keeps the last
    /// value and silently drops the other.
    pub fn parse(json: &'a str) -> Result<Doc<'a>, Error> {
        let mut parser = Parser::new(json);
        let doc = parser.value().map_err(|fail| Error::explain(fail, json))?;
        if !parser.at_end() {
            return Err(Error::explain(Fail::Syntax, json));
        }
        Ok(doc)
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Doc::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Doc::Null)
    }

    /// The same value as a `serde_json::Value`, for the cold paths that need one.
    pub fn to_value(&self) -> Value {
        match self {
            Doc::Null => Value::Null,
            Doc::Bool(b) => Value::Bool(*b),
            Doc::Number(n) => Value::Number(n.clone()),
            Doc::String(s) => Value::String(s.to_string()),
            Doc::Array(items) => Value::Array(items.iter().map(Doc::to_value).collect()),
            Doc::Object(members) => Value::Object(
                members
                    .iter()
                    .map(|(k, v)| (k.to_owned(), v.to_value()))
                    .collect(),
            ),
        }
    }
}

impl<'a> Members<'a> {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn get(&self, key: &str) -> Option<&Doc<'a>> {
        self.0
            .iter()
            .find(|(k, _)| same_text(k, key))
            .map(|(_, v)| v)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Doc<'a>> {
        self.0
            .iter_mut()
            .find(|(k, _)| same_text(k, key))
            .map(|(_, v)| v)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Sets `key`, in place when present, else at the end.
    pub fn insert(&mut self, key: impl Into<Cow<'a, str>>, value: Doc<'a>) {
        let key = key.into();
        match self.0.iter_mut().find(|(k, _)| same_text(k, &key)) {
            Some((_, slot)) => *slot = value,
            None => self.0.push((key, value)),
        }
    }

    /// Takes `key` out, keeping the order of the others.
    pub fn remove(&mut self, key: &str) -> Option<Doc<'a>> {
        let at = self.0.iter().position(|(k, _)| same_text(k, key))?;
        Some(self.0.remove(at).1)
    }

    pub fn retain(&mut self, mut keep: impl FnMut(&str, &Doc<'a>) -> bool) {
        self.0.retain(|(k, v)| keep(k, v));
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Doc<'a>)> {
        self.0.iter().map(|(k, v)| (k.as_ref(), v))
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&mut Cow<'a, str>, &mut Doc<'a>)> {
        self.0.iter_mut().map(|(k, v)| (k, v))
    }
}

/// The first `\uXXXX` escape of a UTF-16 surrogate without its pair in `text`, JSON whose
/// backslashes are all inside strings. serde_json's words for it ("unexpected end of hex
/// escape") do not say what is wrong.
pub fn lone_surrogate(text: &str) -> Option<String> {
    let hex = |bytes: &[u8]| {
        std::str::from_utf8(bytes)
            .ok()
            .and_then(|h| u16::from_str_radix(h, 16).ok())
    };
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            i += 1;
            continue;
        }
        if bytes.get(i + 1) != Some(&b'u') {
            i += 2;
            continue;
        }
        let unit = bytes.get(i + 2..i + 6).and_then(hex).unwrap_or(0);
        let escape = || text.get(i..i + 6).unwrap_or_default().to_owned();
        match unit {
            0xD800..=0xDBFF => {
                let low = (bytes.get(i + 6..i + 8) == Some(b"\\u"))
                    .then(|| bytes.get(i + 8..i + 12).and_then(hex))
                    .flatten();
                if !matches!(low, Some(0xDC00..=0xDFFF)) {
                    return Some(escape());
                }
                i += 12;
            }
            0xDC00..=0xDFFF => return Some(escape()),
            _ => i += 6,
        }
    }
    None
}

/// Why a text is not one JSON value.
#[derive(Debug)]
pub enum Error {
    /// An object with this key twice.
    DuplicateKey(String),
    Syntax(serde_json::Error),
}

impl Error {
    /// What went wrong with `json`, in serde_json's words (line and column included).
    fn explain(fail: Fail, json: &str) -> Self {
        match fail {
            Fail::DuplicateKey(key) => Error::DuplicateKey(key),
            Fail::Syntax => Error::Syntax(match serde_json::from_str::<Value>(json) {
                Err(e) => e,
                Ok(_) => de::Error::custom("not JSON this parser reads"),
            }),
        }
    }
}

/// Whether two short texts (column names) are equal, without a call to `memcmp`: two
/// overlapping loads compare 4 to 16 bytes; longer or shorter ones compare as slices.
#[inline]
pub(crate) fn same_text(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let n = a.len();
    match n {
        8..=16 => {
            let word =
                |s: &[u8], at: usize| u64::from_le_bytes(s[at..at + 8].try_into().expect("8"));
            word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8)
        }
        4..=7 => {
            let word =
                |s: &[u8], at: usize| u32::from_le_bytes(s[at..at + 4].try_into().expect("4"));
            word(a, 0) == word(b, 0) && word(a, n - 4) == word(b, n - 4)
        }
        _ => a == b,
    }
}

/// Which keys an object has had so far: a 64-bit signature of short keys' shapes, so most
/// keys are known new without comparing strings, and past 64 keys a hashed set (an input
/// could otherwise make the check quadratic).
#[derive(Default)]
struct Seen {
    signature: u64,
    hashed: Option<HashSet<String>>,
}

impl Seen {
    #[inline]
    fn repeats(&mut self, key: &str, members: &[(Cow<'_, str>, Doc<'_>)]) -> bool {
        if self.hashed.is_some() || members.len() >= 64 {
            return self.repeats_hashed(key, members);
        }
        let bytes = key.as_bytes();
        let shape = bytes.len()
            ^ bytes.first().map_or(0, |&b| usize::from(b))
            ^ bytes.last().map_or(0, |&b| usize::from(b) << 2);
        let bit = 1u64 << (shape % 64);
        let maybe = self.signature & bit != 0;
        self.signature |= bit;
        maybe && members.iter().any(|(k, _)| same_text(k, key))
    }

    /// Past 64 keys: a hashed set, so a wide object is not checked in quadratic time.
    #[cold]
    #[inline(never)]
    fn repeats_hashed(&mut self, key: &str, members: &[(Cow<'_, str>, Doc<'_>)]) -> bool {
        let hashed = self
            .hashed
            .get_or_insert_with(|| members.iter().map(|(k, _)| k.to_string()).collect());
        !hashed.insert(key.to_owned())
    }
}

impl Doc<'_> {
    /// Appends this value as compact JSON, byte for byte what serde_json writes, without
    /// serde's machinery: a string that needs no escape is copied as it is.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        match self {
            Doc::Null => out.extend_from_slice(b"null"),
            Doc::Bool(true) => out.extend_from_slice(b"true"),
            Doc::Bool(false) => out.extend_from_slice(b"false"),
            Doc::Number(n) => serde_json::to_writer(&mut *out, n).expect("a number writes"),
            Doc::String(s) => write_json_str(s, out),
            Doc::Array(items) => {
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    item.write_json(out);
                }
                out.push(b']');
            }
            Doc::Object(members) => members.write_json(out),
        }
    }
}

impl Members<'_> {
    /// Appends the members as a compact JSON object (see [`Doc::write_json`]).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.push(b'{');
        for (i, (key, value)) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_json_str(key, out);
            out.push(b':');
            value.write_json(out);
        }
        out.push(b'}');
    }
}

/// A JSON string: copied between quotes when nothing in it needs an escape, else serde_json's.
fn write_json_str(s: &str, out: &mut Vec<u8>) {
    if parser::special_byte(s.as_bytes(), 0) == s.len() {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        serde_json::to_writer(&mut *out, s).expect("a string writes");
    }
}

impl Serialize for Doc<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Doc::Null => serializer.serialize_unit(),
            Doc::Bool(b) => serializer.serialize_bool(*b),
            Doc::Number(n) => n.serialize(serializer),
            Doc::String(s) => serializer.serialize_str(s),
            Doc::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Doc::Object(members) => members.serialize(serializer),
        }
    }
}

impl Serialize for Members<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k.as_ref(), v)?;
        }
        map.end()
    }
}

/// [`Doc`] as a JSON representation jsonschema validates in place.
pub struct DocJson;

impl Json for DocJson {
    type Node<'a> = &'a Doc<'a>;
    type PreparedKey = Box<str>;
    type StringBuffer = ();

    // Lookups scan, so a pass over the members is never dearer than a few of them.
    const KEYS_PER_LOOKUP: usize = 8;
    const ACYCLIC: bool = true;

    fn prepare_key(key: &str) -> Box<str> {
        key.into()
    }

    fn with_string_node<T>((): &mut (), string: &str, f: impl FnOnce(Self::Node<'_>) -> T) -> T {
        f(&Doc::String(Cow::Borrowed(string)))
    }
}

impl<'a> Node<'a, DocJson> for &'a Doc<'a> {
    type Object = &'a Members<'a>;
    type Array = &'a [Doc<'a>];
    type Number = &'a Number;

    fn as_object(&self) -> Option<&'a Members<'a>> {
        match self {
            Doc::Object(members) => Some(members),
            _ => None,
        }
    }

    fn as_array(&self) -> Option<&'a [Doc<'a>]> {
        match self {
            Doc::Array(items) => Some(items),
            _ => None,
        }
    }

    fn as_string(&self) -> Option<Cow<'a, str>> {
        match self {
            Doc::String(s) => Some(Cow::Borrowed(s.as_ref())),
            _ => None,
        }
    }

    fn as_number(&self) -> Option<&'a Number> {
        match self {
            Doc::Number(n) => Some(n),
            _ => None,
        }
    }

    fn as_boolean(&self) -> Option<bool> {
        match self {
            Doc::Bool(b) => Some(*b),
            _ => None,
        }
    }

    fn is_null(&self) -> bool {
        matches!(self, Doc::Null)
    }

    fn json_type(&self) -> JsonType {
        match self {
            Doc::Null => JsonType::Null,
            Doc::Bool(_) => JsonType::Boolean,
            Doc::Number(_) => JsonType::Number,
            Doc::String(_) => JsonType::String,
            Doc::Array(_) => JsonType::Array,
            Doc::Object(_) => JsonType::Object,
        }
    }

    fn equals_value(&self, expected: &Value) -> bool {
        // Scalars compare without building a Value: `enum` runs on every status.
        match (*self, expected) {
            (Doc::String(s), Value::String(e)) => s == e,
            (Doc::Bool(a), Value::Bool(b)) => a == b,
            (Doc::Null, Value::Null) => true,
            (Doc::String(_) | Doc::Bool(_) | Doc::Null, _) => false,
            _ => cmp::equal(&Doc::to_value(self), expected),
        }
    }

    fn to_value(&self) -> Cow<'a, Value> {
        Cow::Owned(Doc::to_value(self))
    }

    fn identity(&self) -> Option<NodeIdentity> {
        Some(NodeIdentity::new(std::ptr::from_ref::<Doc>(*self) as usize))
    }
}

impl<'a> Object<'a, DocJson> for &'a Members<'a> {
    type Node = &'a Doc<'a>;
    type MemberName = &'a str;
    type MembersIter = MembersIter<'a>;

    fn len(&self) -> usize {
        self.0.len()
    }

    fn get(&self, key: &Box<str>) -> Option<&'a Doc<'a>> {
        self.0
            .iter()
            .find(|(k, _)| k.as_ref() == key.as_ref())
            .map(|(_, v)| v)
    }

    fn members(&self) -> MembersIter<'a> {
        MembersIter(self.0.iter())
    }
}

pub struct MembersIter<'a>(std::slice::Iter<'a, (Cow<'a, str>, Doc<'a>)>);

impl<'a> Iterator for MembersIter<'a> {
    type Item = (&'a str, &'a Doc<'a>);
    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(k, v)| (k.as_ref(), v))
    }
}

impl<'a> Array<'a, DocJson> for &'a [Doc<'a>] {
    type Node = &'a Doc<'a>;
    type ElementsIter = std::slice::Iter<'a, Doc<'a>>;

    fn len(&self) -> usize {
        <[Doc]>::len(self)
    }

    fn elements(&self) -> std::slice::Iter<'a, Doc<'a>> {
        self.iter()
    }
}

#[cfg(test)]
mod same_text_tests {
    use super::same_text;

    #[test]
    fn short_texts_compare_by_words_exactly() {
        let words = [
            "",
            "a",
            "ab",
            "abc",
            "abcd",
            "abce",
            "abcdefg",
            "abcdefh",
            "abcdefgh",
            "abcdefgi",
            "bbcdefgh",
            "abcdefghijklmnop",
            "abcdefghijklmnoq",
            "abcdefghijklmnopq",
            "abcdefghijklmnopr",
        ];
        for a in words {
            for b in words {
                assert_eq!(same_text(a, b), a == b, "{a:?} {b:?}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_borrowing_and_round_trips() {
        let text = r#"{"a":"plain","b":"esc\"aped","c":[1,-2,2.5,true,null],"d":{"e":{}}}"#;
        let doc = Doc::parse(text).unwrap();
        let Doc::Object(members) = &doc else { panic!() };
        assert!(matches!(
            members.get("a"),
            Some(Doc::String(Cow::Borrowed("plain")))
        ));
        assert!(matches!(members.get("b"), Some(Doc::String(Cow::Owned(_)))));
        assert_eq!(serde_json::to_string(&doc).unwrap(), text);
        assert_eq!(doc.to_value(), serde_json::from_str::<Value>(text).unwrap());
    }

    #[test]
    fn a_key_twice_is_refused_at_any_depth_and_size() {
        for text in [
            r#"{"a":1,"a":2}"#,
            r#"{"x":{"a":1,"b":2,"a":3}}"#,
            r#"{"k\u0061":1,"ka":2}"#,
        ] {
            assert!(
                matches!(Doc::parse(text), Err(Error::DuplicateKey(_))),
                "{text}"
            );
        }
        let wide: Vec<String> = (0..200).map(|i| format!(r#""k{i}":{i}"#)).collect();
        let ok = format!("{{{}}}", wide.join(","));
        assert!(Doc::parse(&ok).is_ok());
        let repeated = format!("{{{},\"k150\":0}}", wide.join(","));
        match Doc::parse(&repeated) {
            Err(Error::DuplicateKey(key)) => assert_eq!(key, "k150"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(Doc::parse("{\"a\":1"), Err(Error::Syntax(_))));
    }

    #[test]
    fn jsonschema_validates_it_as_it_validates_a_value() {
        let schema = json!({"type": "object", "additionalProperties": false, "required": ["s"],
            "properties": {"s": {"enum": ["A", "B"]}, "n": {"type": "integer", "maximum": 5},
            "t": {"type": "string", "maxLength": 3}, "l": {"type": "array", "items": {"type": "boolean"}}}});
        let ours = jsonschema::options_for::<DocJson>().build(&schema).unwrap();
        let theirs = jsonschema::validator_for(&schema).unwrap();
        for text in [
            r#"{"s":"A"}"#,
            r#"{"s":"C"}"#,
            r#"{"s":"B","n":5,"t":"abc","l":[true]}"#,
            r#"{"s":"B","n":6}"#,
            r#"{"s":"B","n":1.5}"#,
            r#"{"s":"B","t":"abcd"}"#,
            r#"{"s":"B","l":[1]}"#,
            r#"{"n":1}"#,
            r#"{"s":"A","x":1}"#,
        ] {
            let doc = Doc::parse(text).unwrap();
            let value: Value = serde_json::from_str(text).unwrap();
            assert_eq!(ours.is_valid(&doc), theirs.is_valid(&value), "{text}");
            let ours: Vec<String> = ours.iter_errors(&doc).map(|e| e.to_string()).collect();
            let theirs: Vec<String> = theirs.iter_errors(&value).map(|e| e.to_string()).collect();
            assert_eq!(ours, theirs, "{text}");
        }
    }
}
