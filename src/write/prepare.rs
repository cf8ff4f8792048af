//! One input line → one work item: decoded, matched to its stream, validated against the
//! operation's schema, and encoded as the request body. Runs on the reader thread, so the
//! async side only batches bytes.

use super::plan::Plan;
use crate::catalog::{ObjectKind, WriteMode};
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
    /// For update: the path's uuid, taken out of the body.
    pub uuid: Option<String>,
    /// It names its parent by natural key (`clientExternalId`): the parent object's writes
    /// in flight must land before it goes.
    pub after_parent: bool,
    /// The request body when it differs from `original` (nulls dropped, uuid taken out);
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
const ALLOCATION_OVERHEAD: usize = 48;

/// A line that will never be sent, and why.
#[derive(Debug)]
pub struct Rejection {
    pub line: u64,
    pub stream: Option<String>,
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

pub fn prepare(plan: &Plan, line: u64, text: Line) -> Item {
    let reject = |stream: Option<String>, original: Original, reason: String| {
        Item::Rejected(Rejection {
            line,
            stream,
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
/// place, and sent as it arrived unless it had to change (nulls dropped, the uuid taken out,
/// create defaults filled in).
fn prepare_record(
    plan: &Plan,
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
    let had_nulls = fields.iter().any(|(_, v)| v.is_null());
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
    let uuid = match operation.mode {
        WriteMode::Update => match fields.remove("uuid") {
            Some(Doc::String(uuid)) => Some(uuid.into_owned()),
            _ => unreachable!("the update schema requires a string uuid"),
        },
        _ => None,
    };
    let folded = operation.fold_custom(&mut fields);
    let key = conflict_key(operation.object, operation.mode, uuid.as_deref(), &fields);
    let after_parent = operation
        .object
        .parent_fields()
        .is_some_and(|(_, by_key)| fields.contains_key(by_key));
    let defaulted =
        crate::clientsuccess::fill_create_defaults(operation.object, operation.mode, &mut fields);
    let body = (had_nulls || adapted || folded || uuid.is_some() || defaulted)
        .then(|| serde_json::to_vec(&fields).expect("JSON values serialize"));
    Item::Record(Prepared {
        line,
        stream: index,
        key,
        uuid,
        after_parent,
        body,
        original: data.into(),
        segment: 0,
        cost: 0,
    })
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
fn schema_errors(
    validator: &jsonschema::Validator<DocJson>,
    fields: &Doc,
    object: ObjectKind,
    mode: WriteMode,
) -> String {
    let reasons: Vec<String> = validator
        .iter_errors(fields)
        .map(|error| match error.kind() {
            ValidationErrorKind::Required { property } => {
                let property = property.as_str().unwrap_or_default();
                if property == "uuid" && mode == WriteMode::Update {
                    "uuid is required for update".to_owned()
                } else {
                    format!("field `{property}` is required to {mode} a {object}")
                }
            }
            ValidationErrorKind::OneOfNotValid { .. } if mode != WriteMode::Update => {
                let (by_id, by_key) = object.parent_fields().unwrap_or_default();
                format!("a {object} needs its client: give `{by_id}` (the client's uuid) or `{by_key}` (the client's externalId)")
            }
            ValidationErrorKind::OneOfMultipleValid { .. } | ValidationErrorKind::Not { .. } => {
                let (by_id, by_key) = object.parent_fields().unwrap_or_default();
                format!("give `{by_id}` or `{by_key}` to name the {object}'s client, not both")
            }
            ValidationErrorKind::AdditionalProperties { unexpected } => format!(
                "{} {} of a ClientSuccess {object}",
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

/// The key under which the API matches this record, hashed: update by uuid, upsert by the
/// object's natural key. Inserts have none.
fn conflict_key(
    object: ObjectKind,
    mode: WriteMode,
    uuid: Option<&str>,
    fields: &Members,
) -> Option<u64> {
    let key: (&str, String) = match mode {
        WriteMode::Insert => return None,
        WriteMode::Update => ("uuid", uuid?.to_owned()),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{ConfiguredCatalog, NotUtf8};

    fn plan(object: &str, mode: &str) -> Plan {
        let catalog: ConfiguredCatalog = serde_json::from_str(&format!(
            r#"{{"streams":[{{"stream":{{"name":"s","json_schema":{{}}}},"destination_sync_mode":"{mode}","destination_object_name":"{object}"}}]}}"#
        ))
        .unwrap();
        Plan::new(&catalog).unwrap()
    }

    /// `prepare` on an owned line, as the tests build them.
    fn prepare(plan: &Plan, line: u64, text: Result<String, NotUtf8>) -> Item {
        super::prepare(plan, line, text.as_deref().map_err(Clone::clone))
    }

    fn record(data: &str) -> Result<String, NotUtf8> {
        Ok(format!(
            r#"{{"type":"RECORD","record":{{"stream":"s","data":{data},"emitted_at":1}}}}"#
        ))
    }

    fn rejection(item: Item) -> String {
        match item {
            Item::Rejected(r) => r.reason,
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    #[test]
    fn a_lone_surrogate_is_named_as_such() {
        let plan = plan("client", "append");
        for data in [
            r#"{"name":"A\ud800"}"#,
            r#"{"name":"A\udc00B"}"#,
            r#"{"name":"\ud800\u0041"}"#,
        ] {
            let reason = rejection(prepare(&plan, 1, record(data)));
            assert!(
                reason.contains("lone surrogate escape `\\u"),
                "{data}: {reason}"
            );
        }
    }

    #[test]
    fn valid_record_becomes_a_body_without_nulls() {
        let plan = plan("client", "append");
        let Item::Record(p) = prepare(&plan, 7, record(r#"{"name":"Acme","city":null}"#)) else {
            panic!()
        };
        assert_eq!(p.line, 7);
        // Nulls dropped; the create defaults filled in.
        assert_eq!(
            p.body(),
            br#"{"name":"Acme","status":"ACTIVE","active":true}"#
        );
        assert_eq!(&*p.original, r#"{"name":"Acme","city":null}"#);
        assert_eq!(p.key, None);
    }

    #[test]
    fn update_takes_the_uuid_out_and_keys_on_it() {
        let plan = plan("contact", "update");
        let Item::Record(a) = prepare(&plan, 1, record(r#"{"uuid":"u-1","title":"CTO"}"#)) else {
            panic!()
        };
        let Item::Record(b) = prepare(&plan, 2, record(r#"{"uuid":"u-1","title":"CEO"}"#)) else {
            panic!()
        };
        assert_eq!(a.uuid.as_deref(), Some("u-1"));
        assert_eq!(a.body(), br#"{"title":"CTO"}"#);
        assert_eq!(a.key, b.key);
        assert!(a.key.is_some());
        let reason = rejection(prepare(&plan, 3, record(r#"{"title":"CTO"}"#)));
        assert_eq!(reason, "uuid is required for update");
    }

    #[test]
    fn schema_breaks_name_the_field_and_rule_without_the_value() {
        let plan = plan("client", "append");
        let reason = rejection(prepare(
            &plan,
            1,
            record(r#"{"name":"A","zip":"123456789012345678901"}"#),
        ));
        assert!(
            reason.contains("`zip`") && reason.contains("20"),
            "{reason}"
        );
        assert!(!reason.contains("12345678901"), "value leaked: {reason}");
        let reason = rejection(prepare(&plan, 1, record(r#"{"name":"A","status":"GONE"}"#)));
        assert_eq!(
            reason,
            r#"field `status` must be one of "ACTIVE", "INACTIVE", "TRIAL", "TERMINATED""#
        );
        let reason = rejection(prepare(
            &plan,
            1,
            record(r#"{"name":"A","inceptionDate":"2023-02-30"}"#),
        ));
        assert_eq!(
            reason,
            "field `inceptionDate` is not a valid date (a real calendar date as YYYY-MM-DD)"
        );
        let reason = rejection(prepare(&plan, 1, record(r#"{"city":"X"}"#)));
        assert_eq!(reason, "field `name` is required to insert a client");
        let reason = rejection(prepare(&plan, 1, record(r#"{"name":"A","colour":"red"}"#)));
        assert_eq!(reason, "`colour` is not a field of a ClientSuccess client");
    }

    #[test]
    fn bad_lines_and_unknown_streams_are_rejections() {
        let plan = plan("client", "append");
        let reason = rejection(prepare(&plan, 1, Ok("{not json".into())));
        assert!(reason.contains("not a valid Airbyte message"), "{reason}");
        let other = r#"{"type":"RECORD","record":{"stream":"other","data":{},"emitted_at":1}}"#;
        let reason = rejection(prepare(&plan, 1, Ok(other.into())));
        assert!(
            reason.contains("`other`") && reason.contains("catalog"),
            "{reason}"
        );
        assert!(matches!(
            prepare(
                &plan,
                1,
                Ok(r#"{"type":"LOG","log":{"level":"INFO","message":"x"}}"#.into())
            ),
            Item::Ignored
        ));
    }

    #[test]
    fn duplicate_keys_bad_utf8_and_broken_states() {
        let plan = plan("client", "append");
        let reason = rejection(prepare(&plan, 1, record(r#"{"name":"a","name":"b"}"#)));
        assert!(reason.contains("`name` twice"), "{reason}");
        let reason = rejection(prepare(
            &plan,
            1,
            record(r#"{"name":"a","custom":{"x":1,"x":2}}"#),
        ));
        assert!(reason.contains("`x` twice"), "{reason}");
        let Item::Rejected(r) = prepare(
            &plan,
            4,
            Err(NotUtf8 {
                escaped: "ab\\xFF".into(),
                valid_up_to: 2,
            }),
        ) else {
            panic!()
        };
        assert!(r.reason.contains("UTF-8") && r.reason.contains("offset 2"));
        assert!(matches!(r.original, Original::Line(ref t) if t == "ab\\xFF"));
        let bogus = r#"{"type":"STATE","state":{"type":"BOGUS"}}"#;
        assert!(matches!(
            prepare(&plan, 9, Ok(bogus.into())),
            Item::BadState { line: 9, .. }
        ));
        let not_an_object = r#"{"type":"STATE","state":7}"#;
        assert!(matches!(
            prepare(&plan, 9, Ok(not_an_object.into())),
            Item::BadState { .. }
        ));
    }

    #[test]
    fn a_record_without_nulls_is_sent_as_it_arrived() {
        let plan = plan("client", "append");
        let data = r#"{"name": "Acme", "status": "TRIAL", "active": true}"#;
        let Item::Record(p) = prepare(&plan, 1, record(data)) else {
            panic!()
        };
        assert_eq!(p.body(), data.as_bytes());
        // Held once: the body is the original.
        assert_eq!(
            p.size(),
            data.len() + std::mem::size_of::<Prepared>() + ALLOCATION_OVERHEAD
        );
    }

    #[test]
    fn airbyte_columns_are_dropped_and_case_only_matches_taken() {
        let plan = plan("client", "append_dedup");
        let data = r#"{"name":"Acme","externalid":"E1","NPSSCORE":5,"_airbyte_raw_id":"r","_airbyte_extracted_at":"t","_airbyte_meta":{}}"#;
        let Item::Record(p) = prepare(&plan, 1, record(data)) else {
            panic!()
        };
        assert_eq!(
            p.body(),
            br#"{"name":"Acme","externalId":"E1","npsScore":5}"#
        );
        assert_eq!(&*p.original, data);
        // A column that two fields claim, or one whose field is also present, is left to fail.
        let reason = rejection(prepare(
            &plan,
            1,
            record(r#"{"name":"A","externalId":"E","EXTERNALID":"F"}"#),
        ));
        assert_eq!(
            reason,
            "`EXTERNALID` is not a field of a ClientSuccess client"
        );
    }

    #[test]
    fn client_upsert_keys_on_external_id_then_name() {
        let plan = plan("client", "append_dedup");
        let key = |data: &str| match prepare(&plan, 1, record(data)) {
            Item::Record(p) => p.key,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            key(r#"{"name":"A","externalId":"X"}"#),
            key(r#"{"name":"B","externalId":"X"}"#)
        );
        assert_eq!(key(r#"{"name":"A"}"#), key(r#"{"name":"A","city":"Z"}"#));
        assert_ne!(
            key(r#"{"name":"X"}"#),
            key(r#"{"name":"A","externalId":"X"}"#)
        );
    }
}
