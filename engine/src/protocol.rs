//! The Airbyte protocol (v0.18) as this destination reads and writes it: one JSON message a line.
//!
//! Every message type has a type here, with the protocol's exact key casing. Input is decoded
//! through a flat envelope (one optional field per payload key) rather than an internally tagged
//! enum, so a RECORD's `data` and a STATE's fields are borrowed from the line as raw JSON and
//! never re-encoded: an echoed STATE is byte-for-byte what came in, plus `destinationStats`.

use crate::json::{Doc, Fail, Parsed, Parser};
use indexmap::IndexMap;
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::Value;
use std::borrow::Cow;
use std::io::{self, BufRead, BufReader, Read};

/// One line of the protocol.
#[derive(Debug, Clone)]
pub enum AirbyteMessage {
    Record(RecordMessage),
    State(StateMessage),
    Log(LogMessage),
    Spec(ConnectorSpecification),
    ConnectionStatus(ConnectionStatus),
    Catalog(Value),
    Trace(TraceMessage),
    Control(Value),
    DestinationCatalog(DestinationCatalog),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MessageType {
    Record,
    State,
    Log,
    Spec,
    ConnectionStatus,
    Catalog,
    Trace,
    Control,
    DestinationCatalog,
}

impl AirbyteMessage {
    pub fn message_type(&self) -> MessageType {
        match self {
            Self::Record(_) => MessageType::Record,
            Self::State(_) => MessageType::State,
            Self::Log(_) => MessageType::Log,
            Self::Spec(_) => MessageType::Spec,
            Self::ConnectionStatus(_) => MessageType::ConnectionStatus,
            Self::Catalog(_) => MessageType::Catalog,
            Self::Trace(_) => MessageType::Trace,
            Self::Control(_) => MessageType::Control,
            Self::DestinationCatalog(_) => MessageType::DestinationCatalog,
        }
    }

    /// Decodes one line. The error says what is wrong in words a user can act on.
    pub fn from_line(line: &str) -> Result<Self, String> {
        let envelope: Envelope =
            serde_json::from_str(line).map_err(|e| format!("not a valid Airbyte message: {e}"))?;
        let missing =
            |key: &str| format!("a {:?} message without its `{key}` payload", envelope.kind);
        let kind = envelope.kind;
        Ok(match kind {
            MessageType::Record => Self::Record(envelope.record.ok_or_else(|| missing("record"))?),
            MessageType::State => Self::State(envelope.state.ok_or_else(|| missing("state"))?),
            MessageType::Log => Self::Log(envelope.log.ok_or_else(|| missing("log"))?),
            MessageType::Spec => Self::Spec(envelope.spec.ok_or_else(|| missing("spec"))?),
            MessageType::ConnectionStatus => Self::ConnectionStatus(
                envelope
                    .connection_status
                    .ok_or_else(|| missing("connectionStatus"))?,
            ),
            MessageType::Catalog => {
                Self::Catalog(envelope.catalog.ok_or_else(|| missing("catalog"))?)
            }
            MessageType::Trace => Self::Trace(envelope.trace.ok_or_else(|| missing("trace"))?),
            MessageType::Control => {
                Self::Control(envelope.control.ok_or_else(|| missing("control"))?)
            }
            MessageType::DestinationCatalog => Self::DestinationCatalog(
                envelope
                    .destination_catalog
                    .ok_or_else(|| missing("destination_catalog"))?,
            ),
        })
    }

    pub fn to_line(&self) -> String {
        serde_json::to_string(self).expect("protocol messages always serialize")
    }

    pub fn log(level: LogLevel, message: impl Into<String>) -> Self {
        Self::Log(LogMessage {
            level,
            message: message.into(),
            stack_trace: None,
        })
    }

    pub fn error_trace(
        failure_type: FailureType,
        message: impl Into<String>,
        internal: Option<String>,
    ) -> Self {
        Self::Trace(TraceMessage {
            kind: TraceType::Error,
            emitted_at: now_millis(),
            error: Some(ErrorTrace {
                message: message.into(),
                internal_message: internal,
                stack_trace: None,
                failure_type: Some(failure_type),
                stream_descriptor: None,
            }),
            estimate: None,
            stream_status: None,
            analytics: None,
        })
    }
}

/// Milliseconds since the Unix epoch, as the protocol's `emitted_at` wants them.
pub fn now_millis() -> f64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    now.as_millis() as f64
}

/// Every payload key the protocol knows, each optional; `type` says which one must be there.
#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: MessageType,
    record: Option<RecordMessage>,
    state: Option<StateMessage>,
    log: Option<LogMessage>,
    spec: Option<ConnectorSpecification>,
    #[serde(rename = "connectionStatus")]
    connection_status: Option<ConnectionStatus>,
    catalog: Option<Value>,
    trace: Option<TraceMessage>,
    control: Option<Value>,
    destination_catalog: Option<DestinationCatalog>,
}

impl Serialize for AirbyteMessage {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("type", &self.message_type())?;
        match self {
            Self::Record(m) => map.serialize_entry("record", m)?,
            Self::State(m) => map.serialize_entry("state", m)?,
            Self::Log(m) => map.serialize_entry("log", m)?,
            Self::Spec(m) => map.serialize_entry("spec", m)?,
            Self::ConnectionStatus(m) => map.serialize_entry("connectionStatus", m)?,
            Self::Catalog(m) => map.serialize_entry("catalog", m)?,
            Self::Trace(m) => map.serialize_entry("trace", m)?,
            Self::Control(m) => map.serialize_entry("control", m)?,
            Self::DestinationCatalog(m) => map.serialize_entry("destination_catalog", m)?,
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for AirbyteMessage {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        Self::from_line(raw.get()).map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecordMessage {
    pub stream: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Kept as the source wrote it, so a rejected record is stored exactly as it arrived.
    pub data: Box<RawValue>,
    pub emitted_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Value>,
}

/// A RECORD line read in one pass, without copying: the stream names and `data`'s strings
/// borrow from the line, and `data` comes out parsed. Only the fast path: any line this does
/// not read (another type, a broken envelope, `data` with a key twice) goes through
/// [`AirbyteMessage::from_line`], which names what is wrong with it.
#[derive(Debug)]
pub struct RecordRef<'a> {
    pub stream: Cow<'a, str>,
    pub namespace: Option<Cow<'a, str>>,
    /// `data` as it arrived.
    pub data_text: &'a str,
    pub data: Doc<'a>,
}

impl<'a> RecordRef<'a> {
    /// Accepts what the full decoder accepts as a RECORD, or less: unknown fields are
    /// skipped, a field given twice sends the line to the full decoder.
    pub fn parse(line: &'a str) -> Option<RecordRef<'a>> {
        let mut parser = Parser::new(line);
        let mut is_record = None;
        let mut record = None;
        parser
            .members(|parser, key| {
                match key.as_ref() {
                    "type" if is_record.is_none() => {
                        is_record = Some(parser.string_value()? == "RECORD");
                    }
                    "record" if record.is_none() => record = Some(Self::fields(line, parser)?),
                    "type" | "record" => return Err(Fail::Syntax),
                    _ => drop(parser.value()?),
                }
                Ok(())
            })
            .ok()?;
        (parser.at_end() && is_record == Some(true))
            .then_some(record)
            .flatten()
    }

    fn fields(line: &'a str, parser: &mut Parser<'a>) -> Parsed<RecordRef<'a>> {
        let (mut stream, mut namespace, mut data, mut emitted_at) = (None, None, None, false);
        parser.members(|parser, key| {
            match key.as_ref() {
                "stream" if stream.is_none() => stream = Some(parser.string_value()?),
                "namespace" if namespace.is_none() => {
                    namespace = Some(match parser.value()? {
                        Doc::Null => None,
                        Doc::String(name) => Some(name),
                        _ => return Err(Fail::Syntax),
                    });
                }
                "data" if data.is_none() => {
                    let start = parser.next_token();
                    let doc = parser.value()?;
                    data = Some((&line[start..parser.offset()], doc));
                }
                // Required by the protocol, as an integer; read only to refuse a record
                // without it.
                "emitted_at" if !emitted_at => match parser.value()? {
                    Doc::Number(n) if n.as_i64().is_some() => emitted_at = true,
                    _ => return Err(Fail::Syntax),
                },
                "stream" | "namespace" | "data" | "emitted_at" => return Err(Fail::Syntax),
                _ => drop(parser.value()?),
            }
            Ok(())
        })?;
        match (stream, data, emitted_at) {
            (Some(stream), Some((data_text, data)), true) => Ok(RecordRef {
                stream,
                namespace: namespace.flatten(),
                data_text,
                data,
            }),
            _ => Err(Fail::Syntax),
        }
    }
}

/// A STATE, kept field by field as raw JSON so that echoing it changes nothing the destination
/// does not own (`id`, `sourceStats`, big numbers, key order), only `destinationStats`.
/// Whitespace between tokens is dropped on the way in, so an echo never carries a raw line
/// break (JSON allows CR and LF there; a line-based reader would split the message).
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct StateMessage {
    fields: IndexMap<String, Box<RawValue>>,
}

impl<'de> Deserialize<'de> for StateMessage {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let fields = IndexMap::<String, Box<RawValue>>::deserialize(deserializer)?
            .into_iter()
            .map(|(key, raw)| {
                let compact = minify(raw.get());
                let raw = RawValue::from_string(compact).map_err(serde::de::Error::custom)?;
                Ok((key, raw))
            })
            .collect::<Result<_, D::Error>>()?;
        Ok(Self { fields })
    }
}

/// `json` without whitespace between tokens; strings are left exactly as they are.
pub fn minify(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in json.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if !matches!(c, ' ' | '\t' | '\n' | '\r') {
            in_string = c == '"';
            out.push(c);
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StateType {
    Stream,
    Global,
    Legacy,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamDescriptor {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamState {
    pub stream_descriptor: StreamDescriptor,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_state: Option<serde_json::Map<String, Value>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GlobalState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_state: Option<serde_json::Map<String, Value>>,
    pub stream_states: Vec<StreamState>,
}

/// `sourceStats` / `destinationStats`. Doubles on the wire, so they print as `12.0`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateStats {
    #[serde(
        rename = "recordCount",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub record_count: Option<f64>,
    #[serde(
        rename = "rejectedRecordCount",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub rejected_record_count: Option<f64>,
}

impl StateMessage {
    fn field<T: for<'a> Deserialize<'a>>(&self, key: &str) -> Option<T> {
        self.fields
            .get(key)
            .and_then(|raw| serde_json::from_str(raw.get()).ok())
    }

    pub fn state_type(&self) -> Option<StateType> {
        self.field("type")
    }

    pub fn stream(&self) -> Option<StreamState> {
        self.field("stream")
    }

    pub fn global(&self) -> Option<GlobalState> {
        self.field("global")
    }

    pub fn destination_stats(&self) -> Option<StateStats> {
        self.field("destinationStats")
    }

    /// Why the platform would refuse an echo of this state, or `None` when it is sound.
    /// Every field of Airbyte's model is checked whatever the state's type; the blobs
    /// (`stream_state`, `shared_state`, `data`) only as objects of valid JSON, read without
    /// building a tree, so a deep one is echoed as it came. `destinationStats` is not checked:
    /// the echo replaces it.
    pub fn problem(&self) -> Option<String> {
        state_problem(&self.fields).err()
    }

    /// The platform's state id, when it set one.
    pub fn id(&self) -> Option<i64> {
        self.field("id")
    }

    /// The same state with `destinationStats` set; every other field is untouched.
    pub fn with_destination_stats(&self, records: u64, rejected: u64) -> Self {
        let stats = StateStats {
            record_count: Some(records as f64),
            rejected_record_count: Some(rejected as f64),
        };
        let raw = serde_json::value::to_raw_value(&stats).expect("stats serialize");
        let mut fields = self.fields.clone();
        fields.insert("destinationStats".to_owned(), raw);
        Self { fields }
    }
}

/// Members of a JSON object, each kept raw; `what` names it in the error.
fn members<'a>(raw: &'a RawValue, what: &str) -> Result<IndexMap<String, &'a RawValue>, String> {
    serde_json::from_str(raw.get()).map_err(|_| format!("`{what}` is not an object"))
}

/// `None` for an absent or null member, as the model's `Optional` fields read it.
fn present<'a>(fields: &IndexMap<String, &'a RawValue>, key: &str) -> Option<&'a RawValue> {
    fields.get(key).copied().filter(|raw| raw.get() != "null")
}

fn state_problem(fields: &IndexMap<String, Box<RawValue>>) -> Result<(), String> {
    if let Some(at) = fields
        .values()
        .find_map(|raw| crate::json::lone_surrogate(raw.get()))
    {
        return Err(format!("a string holds a lone surrogate escape ({at})"));
    }
    let fields: IndexMap<String, &RawValue> =
        fields.iter().map(|(k, v)| (k.clone(), &**v)).collect();
    let kind = match present(&fields, "type") {
        None => None,
        Some(raw) => Some(
            serde_json::from_str::<StateType>(raw.get())
                .map_err(|_| format!("`type` {} is not STREAM, GLOBAL or LEGACY", raw.get()))?,
        ),
    };
    if let Some(stream) = present(&fields, "stream") {
        check_stream_state(stream, "stream")?;
    }
    if let Some(global) = present(&fields, "global") {
        let global = members(global, "global")?;
        if let Some(shared) = present(&global, "shared_state") {
            check_blob(shared, "global.shared_state")?;
        }
        let states = global
            .get("stream_states")
            .ok_or("`global` without `stream_states`")?;
        let states: Vec<&RawValue> = serde_json::from_str(states.get())
            .map_err(|_| "`global.stream_states` is not an array".to_owned())?;
        for (i, state) in states.into_iter().enumerate() {
            check_stream_state(state, &format!("global.stream_states[{i}]"))?;
        }
    }
    if let Some(data) = present(&fields, "data") {
        check_blob(data, "data")?;
    }
    if let Some(stats) = present(&fields, "sourceStats") {
        let stats = members(stats, "sourceStats")?;
        for key in ["recordCount", "rejectedRecordCount"] {
            if let Some(count) = present(&stats, key) {
                serde_json::from_str::<f64>(count.get())
                    .map_err(|_| format!("`sourceStats.{key}` {} is not a number", count.get()))?;
            }
        }
    }
    let needs = |key: &str| match present(&fields, key) {
        Some(_) => Ok(()),
        None => Err(format!("a {} state without `{key}`", kind_name(kind))),
    };
    match kind {
        Some(StateType::Stream) => needs("stream"),
        Some(StateType::Global) => needs("global"),
        Some(StateType::Legacy) => needs("data"),
        None => Ok(()),
    }
}

fn kind_name(kind: Option<StateType>) -> &'static str {
    match kind {
        Some(StateType::Stream) => "STREAM",
        Some(StateType::Global) => "GLOBAL",
        Some(StateType::Legacy) => "LEGACY",
        None => "untyped",
    }
}

fn check_stream_state(raw: &RawValue, what: &str) -> Result<(), String> {
    let state = members(raw, what)?;
    let descriptor = present(&state, "stream_descriptor")
        .ok_or_else(|| format!("`{what}` without `stream_descriptor`"))?;
    let descriptor = members(descriptor, &format!("{what}.stream_descriptor"))?;
    let name = descriptor
        .get("name")
        .ok_or_else(|| format!("`{what}.stream_descriptor` without `name`"))?;
    serde_json::from_str::<String>(name.get())
        .map_err(|_| format!("`{what}.stream_descriptor.name` is not a string"))?;
    if let Some(namespace) = present(&descriptor, "namespace") {
        serde_json::from_str::<String>(namespace.get())
            .map_err(|_| format!("`{what}.stream_descriptor.namespace` is not a string"))?;
    }
    if let Some(blob) = present(&state, "stream_state") {
        check_blob(blob, &format!("{what}.stream_state"))?;
    }
    Ok(())
}

/// A state blob: any object. Its text is already valid JSON (it was read raw), so only its
/// first byte is looked at: no tree is built, however deep it nests.
fn check_blob(raw: &RawValue, what: &str) -> Result<(), String> {
    if raw.get().starts_with('{') {
        Ok(())
    } else {
        Err(format!("`{what}` is not an object"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LogLevel {
    Fatal,
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogMessage {
    pub level: LogLevel,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack_trace: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TraceType {
    Error,
    Estimate,
    StreamStatus,
    Analytics,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureType {
    SystemError,
    ConfigError,
    TransientError,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorTrace {
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internal_message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack_trace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_type: Option<FailureType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_descriptor: Option<StreamDescriptor>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TraceMessage {
    #[serde(rename = "type")]
    pub kind: TraceType,
    pub emitted_at: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorTrace>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimate: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_status: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analytics: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DestinationSyncMode {
    Append,
    Overwrite,
    AppendDedup,
    Update,
    SoftDelete,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConnectorSpecification {
    #[serde(
        rename = "documentationUrl",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub documentation_url: Option<String>,
    #[serde(
        rename = "changelogUrl",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub changelog_url: Option<String>,
    #[serde(rename = "connectionSpecification")]
    pub connection_specification: Value,
    #[serde(
        rename = "supportsIncremental",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub supports_incremental: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supported_destination_sync_modes: Option<Vec<DestinationSyncMode>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol_version: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Succeeded,
    Failed,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConnectionStatus {
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DestinationCatalog {
    pub operations: Vec<DestinationOperation>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DestinationOperation {
    pub object_name: String,
    pub sync_mode: DestinationSyncMode,
    pub json_schema: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matching_keys: Option<Vec<Vec<String>>>,
}

/// The configured catalog handed to `write`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConfiguredCatalog {
    pub streams: Vec<ConfiguredStream>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConfiguredStream {
    pub stream: StreamDefinition,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_mode: Option<String>,
    /// Kept as text so that an unsupported mode is reported by name, not as a decoding error.
    pub destination_sync_mode: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_object_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor_field: Option<Vec<String>>,
    /// Kept as JSON so that a wrong shape is reported with the stream's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_key: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_generation_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_id: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StreamDefinition {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default)]
    pub json_schema: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supported_sync_modes: Option<Vec<String>>,
}

/// Reads input one line at a time, never the whole stream, numbering lines from 1.
/// Blank lines are skipped but still counted, so numbers match what an editor shows. A byte
/// order mark at the start of a line is dropped. A line that is not UTF-8 is handed on as
/// [`NotUtf8`], so one bad line costs only itself.
pub struct Lines<R> {
    input: BufReader<R>,
    number: u64,
    buffer: Vec<u8>,
}

/// A line whose bytes are not UTF-8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotUtf8 {
    /// The line with each invalid byte written as `\xNN`: printable, and still telling.
    pub escaped: String,
    /// Byte offset of the first invalid byte.
    pub valid_up_to: usize,
}

/// One line's text, borrowed from the reader until the next line is read.
pub type Line<'a> = Result<&'a str, NotUtf8>;

const BOM: &[u8] = "\u{feff}".as_bytes();

impl<R: Read> Lines<R> {
    pub fn new(input: R) -> Self {
        Self {
            input: BufReader::with_capacity(1 << 16, input),
            number: 0,
            buffer: Vec::new(),
        }
    }

    /// Whether more input is already read: if not, the next line may keep the caller waiting
    /// on the source, so what it holds should be handed on first.
    pub fn has_buffered(&self) -> bool {
        !self.input.buffer().is_empty()
    }

    /// The next line that is not blank, numbered from 1 counting blank ones; `None` at the end.
    pub fn next_line(&mut self) -> Option<io::Result<(u64, Line<'_>)>> {
        let (start, end) = loop {
            self.buffer.clear();
            match read_line(&mut self.input, &mut self.buffer) {
                Ok(0) => return None,
                Ok(_) => {
                    self.number += 1;
                    let mut end = self.buffer.len();
                    while end > 0 && matches!(self.buffer[end - 1], b'\n' | b'\r') {
                        end -= 1;
                    }
                    let start = if self.buffer[..end].starts_with(BOM) {
                        BOM.len()
                    } else {
                        0
                    };
                    if !self.buffer[start..end].iter().all(u8::is_ascii_whitespace) {
                        break (start, end);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Some(Err(e)),
            }
        };
        let bytes = &self.buffer[start..end];
        let line = std::str::from_utf8(bytes).map_err(|e| NotUtf8 {
            escaped: escape_invalid_utf8(bytes),
            valid_up_to: e.valid_up_to(),
        });
        Some(Ok((self.number, line)))
    }
}

/// `BufRead::read_until(b'\n')`, with memchr's vectorized search for the newline: std's
/// searches a word at a time, and reading lines is a fair share of what a record costs.
fn read_line(input: &mut impl BufRead, line: &mut Vec<u8>) -> io::Result<usize> {
    let mut read = 0;
    loop {
        let available = match input.fill_buf() {
            Ok(available) => available,
            // As read_until does: a signal mid-line loses none of it.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let (used, done) = match memchr::memchr(b'\n', available) {
            Some(at) => (at + 1, true),
            None => (available.len(), available.is_empty()),
        };
        line.extend_from_slice(&available[..used]);
        input.consume(used);
        read += used;
        if done {
            return Ok(read);
        }
    }
}

fn escape_invalid_utf8(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut text = String::with_capacity(bytes.len() + 16);
    for chunk in bytes.utf8_chunks() {
        text.push_str(chunk.valid());
        for byte in chunk.invalid() {
            let _ = write!(text, "\\x{byte:02X}");
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_lines(input: impl Read) -> Vec<(u64, Result<String, NotUtf8>)> {
        let mut lines = Lines::new(input);
        let mut all = Vec::new();
        while let Some(read) = lines.next_line() {
            let (number, line) = read.unwrap();
            all.push((number, line.map(str::to_owned)));
        }
        all
    }

    /// Input that arrives a few bytes at a time, interrupted by a signal between reads.
    struct Trickle {
        data: Vec<u8>,
        at: usize,
        interrupt: bool,
    }

    impl Read for Trickle {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            self.interrupt = !self.interrupt;
            if self.interrupt {
                return Err(io::ErrorKind::Interrupted.into());
            }
            let n = out.len().min(3).min(self.data.len() - self.at);
            out[..n].copy_from_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    #[test]
    fn lines_that_arrive_in_pieces_past_the_buffer_and_signals_come_whole() {
        let long = "x".repeat((1 << 16) + 10);
        let text = format!("first\r\n\n{long}\nlast");
        let input = Trickle {
            data: text.into_bytes(),
            at: 0,
            interrupt: false,
        };
        let got = all_lines(input);
        let want = vec![
            (1, Ok("first".to_owned())),
            (3, Ok(long)),
            (4, Ok("last".to_owned())),
        ];
        assert_eq!(got, want);
    }

    fn round_trip(line: &str) -> String {
        AirbyteMessage::from_line(line).unwrap().to_line()
    }

    /// The one-pass reader takes the usual shapes of a RECORD line.
    #[test]
    fn record_lines_are_read_in_one_pass() {
        for line in [
            r#"{"type":"RECORD","record":{"stream":"s","data":{"a":1},"emitted_at":1}}"#,
            r#" { "record" : { "emitted_at" : -5, "data" : [ ] , "namespace" : null, "stream" : "s" } , "type" : "RECORD" } "#,
            r#"{"type":"RECORD","record":{"namespace":"n","stream":"s\u0031","data":{"b":"\n"},"emitted_at":1,"meta":{"changes":[]}},"extra":[1]}"#,
        ] {
            let fast = RecordRef::parse(line).unwrap_or_else(|| panic!("{line}"));
            let Ok(AirbyteMessage::Record(full)) = AirbyteMessage::from_line(line) else {
                panic!("{line}")
            };
            assert_eq!(fast.stream, full.stream);
            assert_eq!(fast.namespace.as_deref(), full.namespace.as_deref());
            assert_eq!(fast.data_text, full.data.get());
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 3000, ..Default::default() })]

        /// Whatever line the one-pass reader takes, the full decoder takes too and reads the
        /// same stream, namespace and data; the lines it leaves go to the full decoder.
        #[test]
        fn the_one_pass_reader_agrees_with_the_full_decoder(
            template in proptest::sample::select(vec![
                r#"{"type":"RECORD","record":{"stream":"s","data":{"a":1,"b":[true,null]},"emitted_at":1}}"#,
                r#"{"type":"RECORD","record":{"stream":"s","namespace":"n","data":{"a":"x"},"emitted_at":1,"meta":{}}}"#,
                r#"{"record":{"data":{},"stream":"s","emitted_at":9223372036854775807},"type":"RECORD"}"#,
                r#"{"type":"STATE","state":{"type":"LEGACY","data":{}}}"#,
            ]),
            at in proptest::prelude::any::<proptest::sample::Index>(),
            edit in proptest::sample::select(vec![
                "", " ", "\n", "{", "}", "[", "]", ",", ":", "\"", "\\", "1", "1.5", "-",
                "null", r#""type":"LOG","#, r#""stream":"t","#, r#""data":{},"#,
                r#""namespace":7,"#, r#""emitted_at":1,"#, r#""record":null,"#, "\u{1}",
            ]),
            replace in proptest::prelude::any::<bool>(),
        ) {
            let at = at.index(template.len() + 1);
            let rest = if replace { (at + 1).min(template.len()) } else { at };
            let line = format!("{}{edit}{}", &template[..at], &template[rest..]);
            if let Some(fast) = RecordRef::parse(&line) {
                let Ok(AirbyteMessage::Record(full)) = AirbyteMessage::from_line(&line) else {
                    panic!("only the one-pass reader takes {line}")
                };
                proptest::prop_assert_eq!(&fast.stream, &full.stream);
                proptest::prop_assert_eq!(fast.namespace.as_deref(), full.namespace.as_deref());
                proptest::prop_assert_eq!(fast.data_text, full.data.get());
                proptest::prop_assert_eq!(Ok(fast.data), Doc::parse(full.data.get()).map_err(|_| ()));
            }
        }
    }

    #[test]
    fn record_round_trips_and_keeps_data_bytes() {
        let line = r#"{"type":"RECORD","record":{"stream":"people","namespace":"crm","data":{"name":"Ada","score":12.50,"big":123456789012345678901234567890},"emitted_at":1700000000000}}"#;
        assert_eq!(round_trip(line), line);
    }

    #[test]
    fn state_echo_changes_only_destination_stats() {
        let line = r#"{"type":"STATE","state":{"type":"STREAM","stream":{"stream_descriptor":{"name":"people","namespace":null},"stream_state":{"cursor":"2024-01-01","n":1.000}},"sourceStats":{"recordCount":3.0},"id":987654321,"extra":{"x":[1,2]}}}"#;
        let AirbyteMessage::State(state) = AirbyteMessage::from_line(line).unwrap() else {
            panic!("not a state")
        };
        assert_eq!(state.id(), Some(987654321));
        assert_eq!(state.state_type(), Some(StateType::Stream));
        assert_eq!(state.stream().unwrap().stream_descriptor.name, "people");
        let echoed = AirbyteMessage::State(state.with_destination_stats(3, 1)).to_line();
        let expected = line.replace(
            r#""extra":{"x":[1,2]}}}"#,
            r#""extra":{"x":[1,2]},"destinationStats":{"recordCount":3.0,"rejectedRecordCount":1.0}}}"#,
        );
        assert_eq!(echoed, expected);
    }

    #[test]
    fn global_state_and_replaced_destination_stats() {
        let line = r#"{"type":"STATE","state":{"type":"GLOBAL","global":{"shared_state":{"lsn":42},"stream_states":[{"stream_descriptor":{"name":"a"},"stream_state":{}}]},"destinationStats":{"recordCount":99.0}}}"#;
        let AirbyteMessage::State(state) = AirbyteMessage::from_line(line).unwrap() else {
            panic!("not a state")
        };
        assert_eq!(state.global().unwrap().stream_states.len(), 1);
        let echoed = state.with_destination_stats(0, 0);
        assert_eq!(
            echoed.destination_stats().unwrap(),
            StateStats {
                record_count: Some(0.0),
                rejected_record_count: Some(0.0)
            }
        );
    }

    #[test]
    fn every_output_type_round_trips() {
        let lines = [
            r#"{"type":"LOG","log":{"level":"INFO","message":"hello"}}"#,
            r#"{"type":"CONNECTION_STATUS","connectionStatus":{"status":"FAILED","message":"no"}}"#,
            r#"{"type":"SPEC","spec":{"documentationUrl":"https://x","connectionSpecification":{"type":"object"},"supported_destination_sync_modes":["append","update","append_dedup"]}}"#,
            r#"{"type":"TRACE","trace":{"type":"ERROR","emitted_at":1.0,"error":{"message":"m","failure_type":"config_error"}}}"#,
            r#"{"type":"TRACE","trace":{"type":"STREAM_STATUS","emitted_at":1.0,"stream_status":{"status":"RUNNING"}}}"#,
            r#"{"type":"CONTROL","control":{"type":"CONNECTOR_CONFIG","emitted_at":1.0}}"#,
            r#"{"type":"CATALOG","catalog":{"streams":[]}}"#,
            r#"{"type":"DESTINATION_CATALOG","destination_catalog":{"operations":[{"object_name":"account","sync_mode":"update","json_schema":{},"matching_keys":[["uuid"]]}]}}"#,
        ];
        for line in lines {
            assert_eq!(round_trip(line), line);
        }
    }

    #[test]
    fn unknown_fields_are_tolerated_and_missing_payload_is_named() {
        let msg = AirbyteMessage::from_line(
            r#"{"type":"RECORD","future":1,"record":{"stream":"s","data":{},"emitted_at":1,"x":2}}"#,
        )
        .unwrap();
        assert_eq!(msg.message_type(), MessageType::Record);
        let err = AirbyteMessage::from_line(r#"{"type":"STATE"}"#).unwrap_err();
        assert!(err.contains("`state`"), "{err}");
        let err = AirbyteMessage::from_line(r#"{"type":"NOPE"}"#).unwrap_err();
        assert!(err.contains("NOPE"), "{err}");
    }

    #[test]
    fn configured_catalog_parses_with_nulls() {
        let catalog: ConfiguredCatalog = serde_json::from_str(
            r#"{"streams":[{"stream":{"name":"people","json_schema":{}},"sync_mode":"full_refresh","destination_sync_mode":"append_dedup","destination_object_name":"person","primary_key":[["email"]],"generation_id":null,"minimum_generation_id":null,"sync_id":null}]}"#,
        )
        .unwrap();
        assert_eq!(
            catalog.streams[0].destination_object_name.as_deref(),
            Some("person")
        );
    }

    #[test]
    fn lines_are_numbered_and_blank_lines_counted() {
        let input = "\u{feff}a\n\nb\r\nc";
        let lines = all_lines(input.as_bytes());
        assert_eq!(
            lines,
            vec![
                (1, Ok("a".into())),
                (3, Ok("b".into())),
                (4, Ok("c".into()))
            ]
        );
    }

    #[test]
    fn a_line_that_is_not_utf8_is_handed_on_escaped() {
        let input = b"ok\n{\"a\":\"\xff\xfe\"}\nnext\n";
        let lines = all_lines(&input[..]);
        assert_eq!(lines[0], (1, Ok("ok".into())));
        assert_eq!(
            lines[1],
            (
                2,
                Err(NotUtf8 {
                    escaped: r#"{"a":"\xFF\xFE"}"#.into(),
                    valid_up_to: 6
                })
            )
        );
        assert_eq!(lines[2], (3, Ok("next".into())));
    }

    #[test]
    fn malformed_states_are_named_and_echoes_have_no_raw_line_breaks() {
        let problem = |state: &str| {
            let line = format!(r#"{{"type":"STATE","state":{state}}}"#);
            match AirbyteMessage::from_line(&line) {
                Ok(AirbyteMessage::State(s)) => s.problem(),
                other => panic!("{other:?}"),
            }
        };
        for bad in [
            r#"{"type":"BOGUS","data":{}}"#,
            r#"{"type":"LEGACY","data":[1]}"#,
            r#"{"type":"LEGACY","data":{},"sourceStats":{"recordCount":"abc"}}"#,
            r#"{"type":"STREAM","stream":{"stream_descriptor":{}}}"#,
            r#"{"type":"STREAM"}"#,
            r#"{"type":"LEGACY","data":{"s":"\ud800"}}"#,
            r#"{"type":"LEGACY","data":{"s":"\udc00\ud800x"}}"#,
            // Shapes that serde's derive would take as structs, and the model refuses.
            r#"{"type":"LEGACY","data":{},"sourceStats":[]}"#,
            r#"{"type":"GLOBAL","global":{"stream_states":[]},"stream":[]}"#,
            r#"{"type":"GLOBAL","global":{"stream_states":[1]}}"#,
            r#"{"type":"GLOBAL","global":{"stream_states":{}}}"#,
            r#"{"type":"GLOBAL","global":{"shared_state":[],"stream_states":[]}}"#,
            r#"{"type":"GLOBAL","global":{"stream_states":[{"stream_descriptor":{"name":1}}]}}"#,
            r#"{"type":"STREAM","stream":{"stream_descriptor":{"name":"a","namespace":2}}}"#,
            r#"{"type":"STREAM","stream":{"stream_descriptor":{"name":"a"},"stream_state":3}}"#,
            r#"{"type":"STREAM","stream":{"stream_descriptor":{"name":"a"}},"data":"x"}"#,
            r#"{"type":null,"global":{}}"#,
            r#"{"type":"LEGACY","data":{},"sourceStats":{"rejectedRecordCount":true}}"#,
        ] {
            assert!(problem(bad).is_some(), "{bad} passed");
        }
        for good in [
            r#"{"type":"LEGACY","data":{"s":"\ud83d\ude00 \\ud800"}}"#,
            r#"{"type":"LEGACY","data":{},"destinationStats":{"recordCount":"x"}}"#,
            r#"{"type":"STREAM","stream":{"stream_descriptor":{"name":"a","namespace":null},"stream_state":null},"sourceStats":null}"#,
            r#"{"type":null,"global":{"stream_states":[{"stream_descriptor":{"name":"a","x":[]}}]},"extra":[]}"#,
        ] {
            assert_eq!(problem(good), None, "{good}");
        }
        assert_eq!(problem(r#"{"type":"LEGACY","data":{"a":1},"id":3}"#), None);
        let line =
            "{\"type\":\"STATE\",\"state\":{\"type\":\"LEGACY\",\r\"data\":{ \"a b\" :\t[1, 2]}}}";
        let AirbyteMessage::State(state) = AirbyteMessage::from_line(line).unwrap() else {
            panic!()
        };
        assert_eq!(state.problem(), None);
        let echoed = AirbyteMessage::State(state).to_line();
        assert_eq!(
            echoed,
            r#"{"type":"STATE","state":{"type":"LEGACY","data":{"a b":[1,2]}}}"#
        );
    }

    /// The platform reads states up to 1,000 levels deep; a deep `stream_state` is echoed as
    /// it came, never built as a tree.
    #[test]
    fn deep_states_are_echoed() {
        for depth in [190, 990] {
            let blob = format!(
                "{}1{}",
                r#"{"a":["#.repeat(depth / 2),
                "]}".repeat(depth / 2)
            );
            let line = format!(
                r#"{{"type":"STATE","state":{{"type":"STREAM","stream":{{"stream_descriptor":{{"name":"s"}},"stream_state":{blob}}}}}}}"#
            );
            let Ok(AirbyteMessage::State(state)) = AirbyteMessage::from_line(&line) else {
                panic!("depth {depth} not decoded")
            };
            assert_eq!(state.problem(), None, "depth {depth}");
            let echo = AirbyteMessage::State(state.with_destination_stats(0, 0)).to_line();
            assert!(echo.contains(&blob));
        }
    }
}
