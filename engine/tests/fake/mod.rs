//! A destination with no platform behind it, for testing the engine alone: one object
//! (`thing`, with `name` and `tag`), a writer that refuses records whose name starts with "bad"
//! and takes a pseudo-random few milliseconds per call, so outcomes settle out of order.

use engine::catalog::{Object, WriteMode};
use engine::config::{PipelineSettings, RejectsTarget};
use engine::error::Fatal;
use engine::output::Emitter;
use engine::write::plan::Plan;
use engine::write::prepare::Prepared;
use engine::write::{self, Sink, Verdict, Writer};
use serde_json::{json, Value};
use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Thing;

impl std::fmt::Display for Thing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("thing")
    }
}

impl Object for Thing {
    const PLATFORM: &'static str = "Fake";
    const ALL: &'static [Self] = &[Thing];
    const CUSTOM_CONTAINER: &'static str = "custom";

    fn name(self) -> &'static str {
        "thing"
    }

    fn base_schema(self) -> Value {
        json!({"type": "object", "properties": {
            "id": {"type": "string"}, "name": {"type": "string"}, "tag": {"type": "string"}}})
    }

    fn required_fields(self, _: WriteMode) -> &'static [&'static str] {
        &["name"]
    }

    fn id_field(self) -> &'static str {
        "id"
    }

    fn natural_keys(self) -> &'static [&'static str] {
        &["name"]
    }
}

/// Refuses "bad…" names; each call sleeps 0–3 ms (drawn from a counter, so runs repeat).
#[derive(Default)]
pub struct FakeWriter {
    calls: AtomicU64,
    pub seen: Mutex<Vec<String>>,
}

impl Writer for FakeWriter {
    type Object = Thing;

    fn batch_limit(&self, _: Thing, mode: WriteMode) -> usize {
        if mode == WriteMode::Insert {
            7
        } else {
            1
        }
    }

    async fn write(
        &self,
        _: Thing,
        _: WriteMode,
        records: &[Prepared],
    ) -> Result<Vec<Verdict>, Fatal> {
        let call = self.calls.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(call.wrapping_mul(2_654_435_761) % 4)).await;
        let mut verdicts = Vec::with_capacity(records.len());
        for record in records {
            let body: Value = serde_json::from_slice(record.body()).unwrap();
            let name = body["name"].as_str().unwrap_or_default().to_owned();
            verdicts.push(if name.starts_with("bad") {
                Verdict::refused_with(400, format!("fake refusal of {name}"))
            } else {
                Verdict::Written
            });
            self.seen.lock().unwrap().push(name);
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
    pub fn messages(&self) -> Vec<Value> {
        String::from_utf8(self.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

/// A configured catalog of `(stream, mode)` pairs, each writing `thing`.
pub fn plan(streams: &[(&str, &str)]) -> Plan<Thing> {
    let streams: Vec<Value> = streams
        .iter()
        .map(|(name, mode)| {
            json!({
                "stream": {"name": name, "json_schema": {"type": "object"}, "supported_sync_modes": ["full_refresh"]},
                "sync_mode": "full_refresh", "destination_sync_mode": mode, "destination_object_name": "thing"
            })
        })
        .collect();
    Plan::new(&serde_json::from_value(json!({ "streams": streams })).unwrap()).unwrap()
}

pub fn settings() -> PipelineSettings {
    PipelineSettings {
        max_concurrency: 4,
        rejects: RejectsTarget::Nowhere,
        rejection_breaker_records: 0,
    }
}

/// A whole sync of `lines` through a fresh [`FakeWriter`]: the summary and the output.
pub async fn sync(
    settings: PipelineSettings,
    plan: Plan<Thing>,
    lines: &[String],
) -> (Arc<FakeWriter>, write::Summary, Captured) {
    let writer = Arc::new(FakeWriter::default());
    let (_notice_tx, notices) = tokio::sync::mpsc::unbounded_channel();
    let (_signals, shutdown) = tokio::sync::mpsc::unbounded_channel::<&'static str>();
    let sink = Sink {
        writer: writer.clone(),
        notices,
        shutdown,
    };
    let captured = Captured::default();
    let mut out = Emitter::new(captured.clone());
    let input = io::Cursor::new((lines.join("\n") + "\n").into_bytes());
    let summary = write::run(settings, plan, sink, input, &mut out)
        .await
        .unwrap();
    (writer, summary, captured)
}

pub fn record(stream: &str, namespace: Option<&str>, name: &str) -> String {
    json!({"type": "RECORD", "record": {"stream": stream, "namespace": namespace,
        "data": {"name": name}, "emitted_at": 1_700_000_000_000u64}})
    .to_string()
}
