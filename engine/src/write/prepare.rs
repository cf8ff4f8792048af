//! One input line → one work item: decoded, matched to its stream, validated against the
//! operation's schema, and encoded as the request body. Runs on the reader thread, so the
//! async side only batches bytes.

use super::plan::Plan;
use crate::catalog::{Object, WriteMode};
use crate::config::dotted_path;
use crate::json::{self, Doc, DocJson, Members};
use crate::protocol::{AirbyteMessage, Line, MessageType, RecordRef, StateMessage};
use jsonschema::error::ValidationErrorKind;
use serde_json::Value;
use std::hash::{Hash, Hasher};

/// A record ready to send.
#[derive(Debug)]
pub struct Prepared {
    pub line: u64,
    pub stream: usize,
    /// Records with the same key are written one at a time, in input order; `None` may go
    /// anywhere.
    pub key: Option<u64>,
    /// The record's id: for update (required; taken out of the body when it travels in the
    /// path), and in every mode for an object whose id stays in the body.
    pub id: Option<String>,
    /// It names a parent this sync may still be writing: the parent object's writes in
    /// flight must land before it goes.
    pub after_parent: bool,
    /// The request body when it differs from `original` (nulls dropped, id taken out);
    /// otherwise the record is sent as it arrived and held only once.
    body: Option<Vec<u8>>,
    /// The record's `data` as it arrived (valid JSON), kept for the rejected-records file.
    pub original: Box<str>,
    /// Set by the coordinator: the state segment this record belongs to.
    pub segment: u64,
    /// Set by the reader: what this record took from the byte budget.
    pub cost: usize,
}

/// What the allocator keeps beside a record's two or three heap blocks, roughly.
pub const ALLOCATION_OVERHEAD: usize = 48;

/// A line that will never be sent, and why.
#[derive(Debug)]
pub struct Rejection {
    pub line: u64,
    pub stream: Option<String>,
    /// The namespace the line named with its stream, which the state counts go by.
    pub namespace: Option<String>,
    pub original: Original,
    pub reason: String,
    pub http_status: Option<u16>,
}

#[derive(Debug)]
pub enum Original {
    /// A record's `data` as it arrived: valid JSON.
    Record(Box<str>),
    /// A line that was not a usable record, as text.
    Line(String),
}

impl Prepared {
    /// The JSON the API receives for this record.
    pub fn body(&self) -> &[u8] {
        self.body.as_deref().unwrap_or(self.original.as_bytes())
    }

    /// [`Prepared::body`] as a map of fields, for a writer that compares or reshapes it (a
    /// prepared body is always a JSON object).
    pub fn fields(&self) -> serde_json::Map<String, Value> {
        serde_json::from_slice(self.body()).expect("a prepared body is a JSON object")
    }

    /// Bytes this record holds, for the pipeline's memory budget: its text, and the record
    /// itself with its allocations' bookkeeping, which for narrow records is a third as much
    /// again (uncounted, a million 330-byte records peaked at 51 MB against a 12 MiB budget).
    pub fn size(&self) -> usize {
        self.original.len()
            + self.body.as_ref().map_or(0, Vec::len)
            + std::mem::size_of::<Self>()
            + ALLOCATION_OVERHEAD
    }
}

impl Rejection {
    pub fn size(&self) -> usize {
        match &self.original {
            Original::Record(raw) => raw.len(),
            Original::Line(text) => text.len(),
        }
    }
}

#[derive(Debug)]
pub enum Item {
    Record(Prepared),
    Rejected(Rejection),
    State(StateMessage),
    /// A STATE the platform would refuse: it is not echoed, only named in a WARN.
    BadState {
        line: u64,
        reason: String,
    },
    /// LOG, TRACE, CONTROL... from the source: nothing to write.
    Ignored,
}

pub fn prepare<O: Object>(plan: &Plan<O>, line: u64, text: Line) -> Item {
    let reject = |stream: Option<String>, original: Original, reason: String| {
        Item::Rejected(Rejection {
            line,
            stream,
            namespace: None,
            original,
            reason,
            http_status: None,
        })
    };
    let text = match text {
        Ok(text) => text,
        Err(bad) => {
            let reason = format!(
                "the line is not valid UTF-8 (first bad byte at offset {}); it is kept with each bad byte written as \\xNN",
                bad.valid_up_to
            );
            return reject(None, Original::Line(bad.escaped), reason);
        }
    };
    if let Some(record) = RecordRef::parse(text) {
        return prepare_record(
            plan,
            line,
            &record.stream,
            record.namespace.as_deref(),
            record.data_text,
            Some(record.data),
        );
    }
    match AirbyteMessage::from_line(text) {
        Ok(AirbyteMessage::Record(record)) => prepare_record(
            plan,
            line,
            &record.stream,
            record.namespace.as_deref(),
            record.data.get(),
            None,
        ),
        Ok(AirbyteMessage::State(state)) => match state.problem() {
            None => Item::State(state),
            Some(problem) => Item::BadState {
                line,
                reason: problem,
            },
        },
        Ok(_) => Item::Ignored,
        Err(reason) if declared_type(text) == Some(MessageType::State) => {
            Item::BadState { line, reason }
        }
        Err(reason) => reject(None, Original::Line(text.to_owned()), reason),
    }
}

/// A RECORD's `data`, parsed once (`parsed`, when the envelope's reader did it): validated in
/// place, and sent as it arrived unless it had to change (nulls dropped, the id taken out,
/// custom columns folded, the object's shaping).
fn prepare_record<O: Object>(
    plan: &Plan<O>,
    line: u64,
    stream: &str,
    namespace: Option<&str>,
    data: &str,
    parsed: Option<Doc>,
) -> Item {
    let reject = |stream: Option<String>, reason: String| {
        Item::Rejected(Rejection {
            line,
            stream,
            namespace: namespace.map(str::to_owned),
            original: Original::Record(data.into()),
            reason,
            http_status: None,
        })
    };
    let Some(index) = plan.find(stream, namespace) else {
        let reason = format!(
            "stream `{stream}`{} is not in the configured catalog",
            namespace
                .map(|n| format!(" (namespace `{n}`)"))
                .unwrap_or_default()
        );
        return reject(Some(stream.to_owned()), reason);
    };
    let stream_name = || Some(plan.streams[index].name.clone());
    let mut fields = match parsed.map_or_else(|| decode_strict(data), Ok) {
        Ok(Doc::Object(fields)) => fields,
        Ok(_) => return reject(stream_name(), "`data` is not a JSON object".into()),
        Err(reason) => return reject(stream_name(), reason),
    };
    // A null column means "no value": it is not sent, so it can neither fail a type check nor
    // clear a field on update.
    let had_nulls = !plan.keep_nulls && fields.iter().any(|(_, v)| v.is_null());
    if had_nulls {
        fields.retain(|_, v| !v.is_null());
    }
    let mut fields = Doc::Object(fields);
    let operation = plan.operation(index);
    let mut valid = operation.fast.surely_valid(&fields) || operation.validator.is_valid(&fields);
    let mut adapted = false;
    if !valid {
        if let Doc::Object(members) = &mut fields {
            adapted = operation.adapt_columns(members);
        }
        valid = adapted && operation.validator.is_valid(&fields);
    }
    if !valid {
        let reason = schema_errors(
            &operation.validator,
            &fields,
            operation.object,
            operation.mode,
        );
        return reject(stream_name(), reason);
    }
    let Doc::Object(mut fields) = fields else {
        unreachable!("checked above")
    };
    let object = operation.object;
    let id_field = object.id_field();
    let (id, id_taken) = match operation.mode {
        WriteMode::Update if object.id_in_path() => match fields.remove(id_field) {
            Some(id @ (Doc::String(_) | Doc::Number(_))) => (Some(id_text(&id)), true),
            _ => unreachable!("the update schema requires a string or integer id"),
        },
        // Where the id stays in the body (the API's natural key), the writer reads it from
        // here in every mode; elsewhere only an update needs it.
        _ if !object.id_in_path() => (fields.get(id_field).map(id_text), false),
        _ => (None, false),
    };
    let folded = operation.fold_custom(&mut fields);
    let key = conflict_key(object, operation.mode, id.as_deref(), &fields);
    let after_parent = object
        .waits_for_parent()
        .is_some_and(|field| fields.contains_key(field));
    let mut shaped = match object.shape(operation.mode, &mut fields, &operation.custom) {
        Ok(shaped) => shaped,
        Err(reason) => return reject(stream_name(), reason),
    };
    for (field, value) in plan.defaults_of(object) {
        if !fields.contains_key(field) {
            fields.insert(*field, value.clone());
            shaped = true;
        }
    }
    let body = (had_nulls || adapted || folded || id_taken || shaped).then(|| {
        // Sized for the record as it came, plus what shaping adds: no regrowth.
        let mut body = Vec::with_capacity(data.len() + 128);
        fields.write_json(&mut body);
        body
    });
    Item::Record(Prepared {
        line,
        stream: index,
        key,
        id,
        after_parent,
        body,
        original: data.into(),
        segment: 0,
        cost: 0,
    })
}

/// An id as text, whether the API's ids are strings or integers.
fn id_text(id: &Doc) -> String {
    match id {
        Doc::String(text) => text.to_string(),
        Doc::Number(n) => n.to_string(),
        other => other.to_value().to_string(),
    }
}

/// The `type` of a line that is JSON but not a valid message, to tell a broken STATE from a
/// broken record.
pub(crate) fn declared_type(text: &str) -> Option<MessageType> {
    #[derive(serde::Deserialize)]
    struct Declared {
        #[serde(rename = "type")]
        kind: MessageType,
    }
    serde_json::from_str::<Declared>(text).ok().map(|d| d.kind)
}

/// `data` parsed, a key given twice refused: a plain decode keeps the last value and silently
/// drops the other.
pub fn decode_strict(json: &str) -> Result<Doc<'_>, String> {
    Doc::parse(json).map_err(|e| match e {
        json::Error::DuplicateKey(key) => {
            format!("`data` has the key `{key}` twice; which value is meant is unknown")
        }
        json::Error::Syntax(e) => match json::lone_surrogate(json) {
            Some(escape) => format!(
                "`data` is not valid JSON: a string holds the lone surrogate escape `{escape}` \
                 (half of a UTF-16 pair, which is no character; its other half is missing)"
            ),
            None => format!("`data` is not valid JSON: {e}"),
        },
    })
}

/// Every schema violation as "field `x`: rule", values masked (they may be personal data).
fn schema_errors<O: Object>(
    validator: &jsonschema::Validator<DocJson>,
    fields: &Doc,
    object: O,
    mode: WriteMode,
) -> String {
    let id_field = object.id_field();
    let parent = object.names_parent();
    let parent_name = parent.map_or("parent", |p| p.name());
    let (parent_id, parent_key) = parent.map_or(("id", "key"), |p| {
        (
            p.id_field(),
            p.natural_keys().first().copied().unwrap_or("key"),
        )
    });
    let reasons: Vec<String> = validator
        .iter_errors(fields)
        .map(|error| match error.kind() {
            ValidationErrorKind::Required { property } => {
                let property = property.as_str().unwrap_or_default();
                if property == id_field && mode == WriteMode::Update {
                    format!("{id_field} is required for update")
                } else {
                    format!("field `{property}` is required to {mode} a {object}")
                }
            }
            ValidationErrorKind::OneOfNotValid { .. } if mode != WriteMode::Update => {
                let (by_id, by_key) = object.parent_fields().unwrap_or_default();
                format!("a {object} needs its {parent_name}: give `{by_id}` (the {parent_name}'s {parent_id}) or `{by_key}` (the {parent_name}'s {parent_key})")
            }
            ValidationErrorKind::OneOfMultipleValid { .. } | ValidationErrorKind::Not { .. } => {
                let (by_id, by_key) = object.parent_fields().unwrap_or_default();
                format!("give `{by_id}` or `{by_key}` to name the {object}'s {parent_name}, not both")
            }
            ValidationErrorKind::AdditionalProperties { unexpected } => format!(
                "{} {} of a {} {object}",
                unexpected
                    .iter()
                    .map(|f| format!("`{f}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                if unexpected.len() == 1 {
                    "is not a field"
                } else {
                    "are not fields"
                },
                O::PLATFORM,
            ),
            ValidationErrorKind::Enum { options } => format!(
                "field `{}` must be one of {}",
                dotted_path(error.instance_path().as_str()),
                options.as_array().map_or_else(
                    || options.to_string(),
                    // Nulls are dropped before validation, so null is no option to offer.
                    |values| values
                        .iter()
                        .filter(|v| !v.is_null())
                        .map(Value::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            ),
            ValidationErrorKind::Format { format } => format!(
                "field `{}` is not a valid {}",
                dotted_path(error.instance_path().as_str()),
                match format.as_str() {
                    "date" => "date (a real calendar date as YYYY-MM-DD)",
                    "email" => "email address",
                    other => other,
                }
            ),
            _ => format!(
                "field `{}`: {}",
                dotted_path(error.instance_path().as_str()),
                error.masked()
            ),
        })
        .collect();
    reasons.join("; ")
}

/// The key under which the API matches this record, hashed: update by id, upsert by the
/// object's natural key. Inserts have none.
fn conflict_key<O: Object>(
    object: O,
    mode: WriteMode,
    id: Option<&str>,
    fields: &Members,
) -> Option<u64> {
    let key: (&str, String) = match mode {
        WriteMode::Insert => return None,
        WriteMode::Update => (object.id_field(), id?.to_owned()),
        // The first natural key the record carries, as the API matches it.
        WriteMode::Upsert => object.natural_keys().iter().find_map(|&field| {
            let value = fields.get(field).and_then(Doc::as_str)?;
            Some((field, object.normalize_key(field, value)))
        })?,
    };
    // Fx, not SipHash: a collision only makes two records wait for each other.
    let mut hasher = rustc_hash::FxHasher::default();
    (object.name(), key).hash(&mut hasher);
    Some(hasher.finish())
}
