//! A fast path in front of jsonschema for the plain schemas records are checked against: it
//! says "valid" only when it is sure (types, `maxLength`, `minimum`/`maximum`, string enums,
//! `properties`, `required`, `additionalProperties: false`), and "not sure" otherwise, when
//! jsonschema decides and explains. Most records are valid and plain; they skip jsonschema's
//! per-keyword dispatch.

use super::Doc;
use rustc_hash::FxHashMap;
use serde_json::{Number, Value};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A schema compiled for the fast path.
#[derive(Debug)]
pub enum FastSchema {
    /// A keyword the fast path does not judge: always "not sure".
    Unsure,
    Checks(Box<Checks>),
}

#[derive(Debug, Default)]
pub struct Checks {
    /// Bits of [`Kind`]; `None` without a `type` keyword.
    types: Option<u8>,
    max_length: Option<u64>,
    min_length: Option<u64>,
    minimum: Option<f64>,
    maximum: Option<f64>,
    /// Allowed strings, and whether null is allowed, for an `enum` of strings and null.
    one_of: Option<(Vec<String>, bool)>,
    properties: Properties,
    no_other_properties: bool,
    required: Vec<String>,
}

#[derive(Clone, Copy)]
enum Kind {
    Null = 1,
    Bool = 2,
    Integer = 4,
    Number = 8,
    String = 16,
    Object = 32,
    Array = 64,
}

fn kind_bit(name: &str) -> Option<u8> {
    Some(match name {
        "null" => Kind::Null,
        "boolean" => Kind::Bool,
        // A number is an integer when it has no fraction; the fast path only knows integers
        // written without one (`1.0` goes to jsonschema).
        "integer" => Kind::Integer,
        "number" => Kind::Number,
        "string" => Kind::String,
        "object" => Kind::Object,
        "array" => Kind::Array,
        _ => return None,
    } as u8)
}

impl FastSchema {
    pub fn compile(schema: &Value) -> Self {
        Self::try_compile(schema).unwrap_or(FastSchema::Unsure)
    }

    fn try_compile(schema: &Value) -> Option<Self> {
        let mut checks = Checks::default();
        for (keyword, value) in schema.as_object()? {
            match keyword.as_str() {
                // Annotations: they constrain nothing.
                "description" | "title" | "examples" | "default" | "$comment" | "$schema"
                | "$id" => {}
                "type" => {
                    let names: Vec<&str> = match value {
                        Value::String(one) => vec![one.as_str()],
                        Value::Array(many) => {
                            many.iter().map(Value::as_str).collect::<Option<_>>()?
                        }
                        _ => return None,
                    };
                    // Or-ed, not summed: a type named twice is still one bit.
                    let bits = names
                        .into_iter()
                        .try_fold(0u8, |bits, name| Some(bits | kind_bit(name)?))?;
                    checks.types = Some(bits);
                }
                "maxLength" => checks.max_length = Some(value.as_u64()?),
                "minLength" => checks.min_length = Some(value.as_u64()?),
                "minimum" => checks.minimum = Some(value.as_f64()?),
                "maximum" => checks.maximum = Some(value.as_f64()?),
                "enum" => {
                    let mut strings = Vec::new();
                    let mut null = false;
                    for item in value.as_array()? {
                        match item {
                            Value::String(s) => strings.push(s.clone()),
                            Value::Null => null = true,
                            _ => return None,
                        }
                    }
                    checks.one_of = Some((strings, null));
                }
                "properties" => {
                    for (name, sub) in value.as_object()? {
                        checks.properties.add(name, FastSchema::compile(sub));
                    }
                }
                "additionalProperties" => match value {
                    Value::Bool(false) => checks.no_other_properties = true,
                    Value::Bool(true) => {}
                    _ => return None,
                },
                "required" => {
                    checks.required = value
                        .as_array()?
                        .iter()
                        .map(|r| r.as_str().map(str::to_owned))
                        .collect::<Option<_>>()?;
                }
                _ => return None,
            }
        }
        Some(FastSchema::Checks(Box::new(checks)))
    }

    /// True only when `doc` is surely valid; false means "ask jsonschema".
    pub fn surely_valid(&self, doc: &Doc) -> bool {
        let FastSchema::Checks(checks) = self else {
            return false;
        };
        if let Some(types) = checks.types {
            let fits = match doc {
                Doc::Null => types & Kind::Null as u8 != 0,
                Doc::Bool(_) => types & Kind::Bool as u8 != 0,
                Doc::Number(n) => {
                    types & Kind::Number as u8 != 0
                        || (types & Kind::Integer as u8 != 0 && (n.is_i64() || n.is_u64()))
                }
                Doc::String(_) => types & Kind::String as u8 != 0,
                Doc::Object(_) => types & Kind::Object as u8 != 0,
                Doc::Array(_) => types & Kind::Array as u8 != 0,
            };
            if !fits {
                return false;
            }
        }
        if let Some((strings, null)) = &checks.one_of {
            let listed = match doc {
                Doc::String(s) => strings.iter().any(|allowed| allowed == s),
                Doc::Null => *null,
                _ => false,
            };
            if !listed {
                return false;
            }
        }
        match doc {
            Doc::String(s) => {
                if let Some(max) = checks.max_length {
                    // Bytes are never fewer than characters: most strings are settled by length.
                    if s.len() as u64 > max && s.chars().count() as u64 > max {
                        return false;
                    }
                }
                if let Some(min) = checks.min_length {
                    // Nor more than four times as many.
                    if (s.len() as u64) < min.saturating_mul(4) && (s.chars().count() as u64) < min
                    {
                        return false;
                    }
                }
            }
            Doc::Number(n) => {
                if checks.minimum.is_some() || checks.maximum.is_some() {
                    let Some(value) = exact_f64(n) else {
                        return false;
                    };
                    if checks.minimum.is_some_and(|min| value < min)
                        || checks.maximum.is_some_and(|max| value > max)
                    {
                        return false;
                    }
                }
            }
            Doc::Object(members) => {
                if !checks.required.iter().all(|r| members.contains_key(r)) {
                    return false;
                }
                let mut after = None;
                for (name, value) in members.iter() {
                    let found = checks.properties.find(name, after);
                    after = found.map(|(index, _)| index);
                    match found.map(|(_, sub)| sub) {
                        Some(sub) if !sub.surely_valid(value) => return false,
                        Some(_) => {}
                        None if checks.no_other_properties => return false,
                        None => {}
                    }
                }
            }
            Doc::Null | Doc::Bool(_) | Doc::Array(_) => {}
        }
        true
    }
}

/// An object schema's properties, found by name. Records of a stream carry their columns in
/// one order, so each property remembers which one came after it last time: a guess checked
/// with one string comparison, before the hashed lookup (relaxed atomics: a wrong guess only
/// costs the lookup).
#[derive(Debug, Default)]
struct Properties {
    schemas: Vec<(String, FastSchema)>,
    by_name: FxHashMap<String, usize>,
    /// `next[0]`: the first column last time; `next[i + 1]`: the one after property `i`.
    next: Vec<AtomicUsize>,
}

impl Properties {
    fn add(&mut self, name: &str, schema: FastSchema) {
        self.by_name.insert(name.to_owned(), self.schemas.len());
        self.schemas.push((name.to_owned(), schema));
        if self.next.is_empty() {
            self.next.push(AtomicUsize::new(usize::MAX));
        }
        self.next.push(AtomicUsize::new(usize::MAX));
    }

    /// The property `name` (its index and schema), when it is one; `after` is the property
    /// of the member before it.
    fn find(&self, name: &str, after: Option<usize>) -> Option<(usize, &FastSchema)> {
        let slot = self.next.get(after.map_or(0, |i| i + 1))?;
        let guess = slot.load(Ordering::Relaxed);
        if let Some((known, schema)) = self.schemas.get(guess) {
            if super::same_text(known, name) {
                return Some((guess, schema));
            }
        }
        let index = *self.by_name.get(name)?;
        slot.store(index, Ordering::Relaxed);
        Some((index, &self.schemas[index].1))
    }
}

/// The number as an f64 when that is exact (integers within 2^53, or a float as written).
fn exact_f64(n: &Number) -> Option<f64> {
    const EXACT: i64 = 1 << 53;
    if let Some(i) = n.as_i64() {
        return (-EXACT..=EXACT).contains(&i).then_some(i as f64);
    }
    if n.is_u64() {
        return None;
    }
    n.as_f64()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({"type": "object", "additionalProperties": false, "required": ["name"],
        "properties": {
            "name": {"type": "string", "maxLength": 5, "minLength": 2, "description": "d"},
            "status": {"type": ["string", "null"], "enum": ["A", "B", null]},
            "score": {"type": ["integer", "null"], "minimum": -100, "maximum": 100},
            "ratio": {"type": "number", "maximum": 1.5},
            "on": {"type": ["boolean", "null"]},
            "when": {"type": ["string", "null"], "format": "date"},
            "custom": {"type": ["object", "null"], "additionalProperties": false,
                "properties": {"seats": {"type": "integer", "minimum": 0}, "tag": {"type": "string"}}}
        }})
    }

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (-300i64..300).prop_map(|n| json!(n)),
            prop::sample::select(vec![
                json!(1.0),
                json!(1.5),
                json!(-0.5),
                json!(1e300),
                json!(u64::MAX),
                json!(9007199254740993i64)
            ]),
            prop::sample::select(vec![
                "",
                "A",
                "B",
                "abcde",
                "abcdef",
                "é",
                "ééééé",
                "éééééé",
                "2024-01-01",
                "x"
            ])
            .prop_map(|s| json!(s)),
        ];
        leaf.prop_recursive(2, 12, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                prop::collection::btree_map(
                    prop::sample::select(vec![
                        "name", "status", "score", "ratio", "on", "when", "custom", "seats", "tag",
                        "other"
                    ])
                    .prop_map(str::to_owned),
                    inner,
                    0..6
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

        /// Whatever the fast path calls valid, jsonschema calls valid.
        #[test]
        fn surely_valid_is_valid(doc in value()) {
            let schema = schema();
            // One compiled schema for every case, as a sync has: the column-order hints that
            // one record leaves must not mislead the next.
            static FAST: std::sync::OnceLock<FastSchema> = std::sync::OnceLock::new();
            let fast = FAST.get_or_init(|| FastSchema::compile(&schema));
            let validator = jsonschema::options().should_validate_formats(true).build(&schema).unwrap();
            let text = doc.to_string();
            let parsed = Doc::parse(&text).unwrap();
            if fast.surely_valid(&parsed) {
                prop_assert!(validator.is_valid(&doc), "{}", text);
            }
        }
    }

    #[test]
    fn column_order_hints_never_change_a_verdict() {
        let fast = FastSchema::compile(&schema());
        let cases = [
            (r#"{"name":"abc","score":1,"on":true}"#, true),
            (r#"{"on":true,"score":1,"name":"abc"}"#, true),
            (r#"{"name":"abc","score":1000,"on":true}"#, false),
            (r#"{"name":"abc","scor":1,"on":true}"#, false),
            (r#"{"name":"abc","score":1,"on":"yes"}"#, false),
            (r#"{"name":"abc","score":1,"on":true}"#, true),
        ];
        for _ in 0..3 {
            for (text, valid) in cases {
                assert_eq!(
                    fast.surely_valid(&Doc::parse(text).unwrap()),
                    valid,
                    "{text}"
                );
            }
        }
    }

    #[test]
    fn plain_records_take_the_fast_path() {
        let fast = FastSchema::compile(&schema());
        for text in [
            r#"{"name":"abc","status":"A","score":-100,"ratio":1,"on":true,"custom":{"seats":3,"tag":"t"}}"#,
            r#"{"name":"ééééé"}"#,
        ] {
            assert!(fast.surely_valid(&Doc::parse(text).unwrap()), "{text}");
        }
        for text in [
            r#"{"name":"abcdef"}"#,
            r#"{"status":"A"}"#,
            r#"{"name":"a","status":"C"}"#,
            r#"{"name":"a","score":101}"#,
            r#"{"name":"a","other":1}"#,
            r#"{"name":"a","when":"2024-01-01"}"#,
            r#"{"name":"a","custom":{"seats":-1}}"#,
        ] {
            assert!(!fast.surely_valid(&Doc::parse(text).unwrap()), "{text}");
        }
    }
}
