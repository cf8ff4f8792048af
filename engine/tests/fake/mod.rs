//! A destination with no platform behind it, for testing the engine alone: two objects (a
//! `thing`, and a `part` that belongs to one), their schemas from Rust structs as a real
//! destination's are, and a writer that refuses records whose name starts with "bad" and takes
//! a pseudo-random few milliseconds per call, so outcomes settle out of order.

#![allow(dead_code)] // each test file uses its own part of the fake

use engine::catalog::{schema_of, CustomColumn, Object, WriteMode};
use engine::config::{PipelineSettings, RejectsTarget};
use engine::error::Fatal;
use engine::json::{Doc, Members};
use engine::output::Emitter;
use engine::write::plan::Plan;
use engine::write::prepare::Prepared;
use engine::write::{self, Sink, Verdict, Writer};
use schemars::JsonSchema;
use serde_json::{json, Value};
use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A thing: its schema carries the rules a contract's would (a length, an enum, a date).
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct ThingFields {
    id: Option<String>,
    #[schemars(length(max = 20))]
    name: Option<String>,
    tag: Option<Tag>,
    #[schemars(extend("format" = "date"))]
    since: Option<String>,
    /// Matched on before `name` when a record carries it.
    code: Option<String>,
    size: Option<u32>,
    custom: Option<std::collections::BTreeMap<String, Value>>,
}

#[derive(JsonSchema)]
#[allow(dead_code)]
enum Tag {
    #[serde(rename = "new")]
    New,
    #[serde(rename = "old")]
    Old,
}

/// A part of a thing, matched by email without regard to case; it cannot be updated by id.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct PartFields {
    id: Option<String>,
    email: Option<String>,
    name: Option<String>,
    thing: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fake {
    Thing,
    Part,
}

impl std::fmt::Display for Fake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Object for Fake {
    const PLATFORM: &'static str = "Fake";
    const ALL: &'static [Self] = &[Fake::Thing, Fake::Part];
    const CUSTOM_CONTAINER: &'static str = "custom";

    fn name(self) -> &'static str {
        match self {
            Fake::Thing => "thing",
            Fake::Part => "part",
        }
    }

    fn base_schema(self) -> Value {
        match self {
            Fake::Thing => schema_of::<ThingFields>(),
            Fake::Part => schema_of::<PartFields>(),
        }
    }

    fn required_fields(self, mode: WriteMode) -> &'static [&'static str] {
        match (self, mode) {
            (_, WriteMode::Update) => &["id"],
            (Fake::Thing, _) => &["name"],
            (Fake::Part, _) => &["email"],
        }
    }

    fn id_field(self) -> &'static str {
        "id"
    }

    fn natural_keys(self) -> &'static [&'static str] {
        match self {
            Fake::Thing => &["code", "name"],
            Fake::Part => &["email"],
        }
    }

    fn normalize_key(self, field: &str, value: &str) -> String {
        if field == "email" {
            value.to_ascii_lowercase()
        } else {
            value.to_owned()
        }
    }

    fn modes(self) -> &'static [WriteMode] {
        match self {
            Fake::Thing => &WriteMode::ALL,
            Fake::Part => &[WriteMode::Insert, WriteMode::Upsert],
        }
    }

    /// A thing inserted without a tag gets "new", as a platform's create default would.
    fn shape(
        self,
        mode: WriteMode,
        fields: &mut Members,
        _custom: &[CustomColumn],
    ) -> Result<bool, String> {
        if self == Fake::Thing && mode == WriteMode::Insert && !fields.contains_key("tag") {
            fields.insert("tag", Doc::String("new".into()));
            return Ok(true);
        }
        Ok(false)
    }
}

/// Refuses "bad…" names; each call sleeps 0–3 ms (drawn from a counter, so runs repeat), and
/// notes every record's body, in the order it wrote them.
#[derive(Default)]
pub struct FakeWriter {
    calls: AtomicU64,
    pub seen: Mutex<Vec<Value>>,
}

impl Writer for FakeWriter {
    type Object = Fake;

    fn batch_limit(&self, _: Fake, mode: WriteMode) -> usize {
        if mode == WriteMode::Insert {
            7
        } else {
            1
        }
    }

    async fn write(
        &self,
        _: Fake,
        mode: WriteMode,
        records: &[Prepared],
    ) -> Result<Vec<Verdict>, Fatal> {
        let call = self.calls.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(call.wrapping_mul(2_654_435_761) % 4)).await;
        let mut verdicts = Vec::with_capacity(records.len());
        for record in records {
            let body: Value = serde_json::from_slice(record.body()).unwrap();
            let name = body["name"].as_str().unwrap_or_default();
            verdicts.push(if name.starts_with("bad") {
                Verdict::refused_with(400, format!("fake refusal of {name}"))
            } else if mode == WriteMode::Insert {
                Verdict::Created {
                    id: Some(format!("id-{name}")),
                }
            } else {
                Verdict::Written
            });
            self.seen.lock().unwrap().push(body);
        }
        Ok(verdicts)
    }
}

/// An `io::Write` whose bytes a test reads afterwards.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Captured {
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }

    pub fn messages(&self) -> Vec<Value> {
        self.text()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

/// A configured catalog of `(stream, mode)` pairs, each writing `thing`.
pub fn plan(streams: &[(&str, &str)]) -> Plan<Fake> {
    plan_for("thing", streams)
}

pub fn settings() -> PipelineSettings {
    PipelineSettings {
        max_concurrency: 4,
        rejects: RejectsTarget::Nowhere,
        rejection_breaker_records: 0,
        dry_run: false,
        every_outcome: false,
    }
}

/// A whole sync of `lines` through a fresh [`FakeWriter`]: the writer, the summary and the
/// output.
pub async fn sync(
    settings: PipelineSettings,
    plan: Plan<Fake>,
    lines: &[String],
) -> (Arc<FakeWriter>, write::Summary, Captured) {
    let input = io::Cursor::new((lines.join("\n") + "\n").into_bytes());
    let writer = Arc::new(FakeWriter::default());
    let (summary, captured) = sync_from(settings, plan, writer.clone(), input).await;
    (writer, summary, captured)
}

/// A whole sync of whatever `input` gives through `writer`: the summary and the output.
pub async fn sync_from(
    settings: PipelineSettings,
    plan: Plan<Fake>,
    writer: Arc<FakeWriter>,
    input: impl io::Read + Send + 'static,
) -> (write::Summary, Captured) {
    let (_notice_tx, notices) = tokio::sync::mpsc::unbounded_channel();
    let (_signals, shutdown) = tokio::sync::mpsc::unbounded_channel::<&'static str>();
    let sink = Sink {
        writer,
        notices,
        shutdown,
    };
    let captured = Captured::default();
    let mut out = Emitter::new(captured.clone());
    let summary = write::run(settings, plan, sink, input, &mut out)
        .await
        .unwrap();
    (summary, captured)
}

pub fn record(stream: &str, namespace: Option<&str>, name: &str) -> String {
    json!({"type": "RECORD", "record": {"stream": stream, "namespace": namespace,
        "data": {"name": name}, "emitted_at": 1_700_000_000_000u64}})
    .to_string()
}

/// A configured catalog's streams written to `object`: `(stream, mode)` pairs.
pub fn plan_for(object: &str, streams: &[(&str, &str)]) -> Plan<Fake> {
    let streams: Vec<Value> = streams
        .iter()
        .map(|(name, mode)| {
            json!({
                "stream": {"name": name, "json_schema": {"type": "object"}, "supported_sync_modes": ["full_refresh"]},
                "sync_mode": "full_refresh", "destination_sync_mode": mode, "destination_object_name": object
            })
        })
        .collect();
    Plan::new(&serde_json::from_value(json!({ "streams": streams })).unwrap()).unwrap()
}

/// A RECORD line of `stream` carrying `data`.
pub fn record_with(stream: &str, data: Value) -> String {
    json!({"type": "RECORD", "record": {"stream": stream, "data": data,
        "emitted_at": 1_700_000_000_000u64}})
    .to_string()
}

/// A STREAM state of `stream` with this id.
pub fn state(stream: &str, id: u64) -> String {
    json!({"type": "STATE", "state": {"type": "STREAM", "id": id,
        "stream": {"stream_descriptor": {"name": stream}, "stream_state": {"id": id}}}})
    .to_string()
}

/// Appends printed lines to `target/<profile>/protocol-lines/<stem>-<pid>.jsonl`, where
/// `scripts/test.sh` checks every one against Airbyte's `AirbyteMessage` model.
pub fn keep_protocol_lines(stem: &str, text: &str) {
    use std::io::Write as _;
    if text.is_empty() {
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let profile = exe.parent().and_then(std::path::Path::parent).unwrap();
    let dir = profile.join("protocol-lines");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{stem}-{}.jsonl", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    file.write_all(text.as_bytes()).unwrap();
}
