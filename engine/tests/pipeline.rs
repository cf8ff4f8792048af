//! The write pipeline in process over the fake destination (`write::run` with in-memory input
//! and output), and a bounded fuzz of the line decoder and the state echo.

mod fake;

use engine::error;
use engine::output::Emitter;
use engine::protocol::{AirbyteMessage, FailureType, Lines, LogLevel};
use engine::write::plan::Plan;
use engine::write::prepare::{prepare, Item};
use fake::{Captured, Fake, FakeWriter};
use proptest::prelude::*;
use serde_json::{json, Value};
use std::io::{self, Read, Write};
use std::sync::Arc;

/// Input that fails with an I/O error once its bytes are read.
struct FailingAfter(io::Cursor<Vec<u8>>);

impl Read for FailingAfter {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.0.read(buf)? {
            0 => Err(io::Error::other("the pipe broke")),
            n => Ok(n),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_stdin_read_error_still_writes_and_checkpoints_what_was_read() {
    let mut lines: Vec<String> = (0..30)
        .map(|i| fake::record("things", None, &format!("T{i}")))
        .collect();
    lines.push(fake::state("things", 7));
    let input = io::BufReader::new(FailingAfter(io::Cursor::new(
        (lines.join("\n") + "\n").into_bytes(),
    )));
    let writer = Arc::new(FakeWriter::default());
    let (summary, captured) = fake::sync_from(
        fake::settings(),
        fake::plan(&[("things", "append")]),
        writer.clone(),
        input,
    )
    .await;
    let error = summary.into_result().unwrap_err();
    assert_eq!(error::failure_type(&error), FailureType::TransientError);
    assert!(format!("{error:#}").contains("the pipe broke"), "{error:#}");
    assert_eq!(
        writer.seen.lock().unwrap().len(),
        30,
        "what was read was written"
    );
    let states: Vec<Value> = captured
        .messages()
        .into_iter()
        .filter(|m| m["type"] == "STATE")
        .collect();
    assert_eq!(states.len(), 1);
    assert_eq!(states[0]["state"]["id"], 7);
    fake::keep_protocol_lines("pipeline", &captured.text());
}

/// Upserts of one key are written in the order they came, however the calls' times fall;
/// a refused record is rejected alone.
#[tokio::test(start_paused = true)]
async fn the_pipeline_keeps_per_key_order_and_rejects_per_record() {
    let mut settings = fake::settings();
    settings.max_concurrency = 8;
    let mut lines = Vec::new();
    for i in 0..40 {
        let code = ["w", "x", "y", "z"][i % 4];
        let name = if i == 13 {
            format!("bad {i}")
        } else {
            format!("n{i}")
        };
        lines.push(fake::record_with(
            "things",
            json!({"name": name, "code": code}),
        ));
    }
    lines.push(fake::state("things", 1));
    let (writer, summary, captured) =
        fake::sync(settings, fake::plan(&[("things", "append_dedup")]), &lines).await;
    assert_eq!((summary.written, summary.rejected), (39, 1));
    let seen = writer.seen.lock().unwrap().clone();
    for code in ["w", "x", "y", "z"] {
        let order: Vec<usize> = seen
            .iter()
            .filter(|body| body["code"] == code)
            .map(|body| {
                let name = body["name"].as_str().unwrap();
                name.trim_start_matches("bad ")
                    .trim_start_matches('n')
                    .parse()
                    .unwrap()
            })
            .collect();
        assert_eq!(order.len(), 10);
        assert!(order.is_sorted(), "code {code} out of order: {order:?}");
    }
    let states: Vec<Value> = captured
        .messages()
        .into_iter()
        .filter(|m| m["type"] == "STATE")
        .collect();
    assert_eq!(
        states[0]["state"]["destinationStats"],
        json!({"recordCount": 39.0, "rejectedRecordCount": 1.0})
    );
    assert!(
        summary.into_result().is_err(),
        "a rejection kept nowhere fails the sync"
    );
    fake::keep_protocol_lines("pipeline", &captured.text());
}

/// Lines a source (or a broken pipe) might send: valid messages, near misses, and noise.
fn hostile_line() -> impl Strategy<Value = Vec<u8>> {
    let templates = prop::sample::select(vec![
        r#"{"type":"RECORD","record":{"stream":"things","data":{"name":"A"},"emitted_at":1}}"#,
        r#"{"type":"STATE","state":{"type":"STREAM","stream":{"stream_descriptor":{"name":"things"},"stream_state":{"c":1}},"sourceStats":{"recordCount":1.0},"id":9}}"#,
        r#"{"type":"STATE","state":{"type":"GLOBAL","global":{"shared_state":{},"stream_states":[{"stream_descriptor":{"name":"a"}}]}}}"#,
        r#"{"type":"STATE","state":{"type":"LEGACY","data":{"x":"\u2028"}}}"#,
        r#"{"type":"STATE","state":{"data":{"k":[1,2,{"z":null}]},"id":123456789012345678901234567890}}"#,
        r#"{"type":"LOG","log":{"level":"INFO","message":"m"}}"#,
        r#"{"type":"TRACE","trace":{"type":"STREAM_STATUS","emitted_at":1.0}}"#,
        r#"{"type":"STATE","state":{"type":"GLOBAL","global":{"shared_state":{"a":[{}]},"stream_states":[{"stream_descriptor":{"name":"a","namespace":"n"},"stream_state":{"b":1}}]},"sourceStats":{"recordCount":2.0},"destinationStats":{"recordCount":1.0},"id":7}}"#,
        r#"{"type":"STATE","state":{"type":"STREAM","stream":{"stream_descriptor":{"name":"things","namespace":null},"stream_state":{}},"sourceStats":{"recordCount":0.0,"rejectedRecordCount":0.0}}}"#,
        r#"{"type":"STATE","state":{"type":"LEGACY","data":{"d":[[[[[[{"e":"\ud83d\ude00"}]]]]]]}}}"#,
    ]);
    let mutated =
        (templates, any::<u16>(), any::<u8>(), 0..4usize).prop_map(|(template, at, byte, how)| {
            let mut bytes = template.as_bytes().to_vec();
            let at = at as usize % (bytes.len() + 1);
            match how {
                0 => bytes.insert(at, byte),
                1 if at < bytes.len() => bytes[at] = byte,
                2 => bytes.truncate(at),
                _ => {
                    let extra: &[u8] = match byte % 6 {
                        0 => b"\r",
                        1 => " \t ".as_bytes(),
                        2 => "\u{85}".as_bytes(),
                        3 => b"\\ud800",
                        4 => b"\xef\xbb\xbf",
                        _ => b"\xc3\x28",
                    };
                    bytes.splice(at..at, extra.iter().copied());
                }
            }
            bytes
        });
    prop_oneof![
        4 => mutated,
        1 => prop::collection::vec(any::<u8>(), 0..80),
    ]
}

/// Decodes `lines` as the reader does and prints what the connector would print about each
/// (an echoed state, a WARN naming a broken state or a rejection): one JSON object a line, with
/// no raw control character, whatever came in.
fn decode_and_echo(lines: &[Vec<u8>], plan: &Plan<Fake>) -> Result<String, TestCaseError> {
    let mut input = Vec::new();
    for line in lines {
        input.extend_from_slice(line);
        input.push(b'\n');
    }
    let captured = Captured::default();
    let mut out = Emitter::new(captured.clone());
    let mut lines = Lines::new(&input[..]);
    while let Some(read) = lines.next_line() {
        let (number, line) = read.unwrap();
        match prepare(plan, number, line) {
            Item::State(state) => out
                .emit(&AirbyteMessage::State(state.with_destination_stats(1, 0)))
                .unwrap(),
            Item::BadState { line, reason } => out
                .log(LogLevel::Warn, format!("line {line}: {reason}"))
                .unwrap(),
            Item::Rejected(rejection) => out.log(LogLevel::Warn, rejection.reason).unwrap(),
            Item::Record(_) | Item::Ignored => {}
        }
    }
    let text = captured.text();
    for line in text.lines() {
        prop_assert!(
            !line.chars().any(|c| c.is_control()),
            "control character in {line:?}"
        );
        prop_assert!(
            !line.contains(['\u{2028}', '\u{2029}']),
            "line separator in {line:?}"
        );
        // Raw members: a state may carry numbers no double holds (the model reads 1e400 too).
        let message: std::collections::HashMap<String, Box<serde_json::value::RawValue>> =
            serde_json::from_str(line).unwrap();
        prop_assert!(message["type"].get().starts_with('"'));
    }
    Ok(text)
}

fn things_plan() -> Plan<Fake> {
    fake::plan(&[("things", "append")])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    /// Whatever comes in, decoding never panics, and every line the connector would print
    /// about it is one JSON object on one line. The lines are kept so the test script also
    /// checks them against Airbyte's own model.
    #[test]
    fn no_input_line_breaks_the_decoder_or_the_output(lines in prop::collection::vec(hostile_line(), 1..6)) {
        let text = decode_and_echo(&lines, &things_plan())?;
        fake::keep_protocol_lines("fuzz", &text);
    }
}

/// The same fuzz at length: `FUZZ_LINES` mutated lines (500,000 unless set), every printed
/// line then checked against Airbyte's model by `scripts/validate_messages.py`. Minutes, so
/// not in CI: `cargo test -p engine --release --test pipeline -- --ignored long_fuzz --nocapture`.
#[test]
#[ignore]
fn long_fuzz_prints_nothing_the_official_model_refuses() {
    use proptest::test_runner::{Config, TestRunner};
    let target: usize = std::env::var("FUZZ_LINES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(500_000);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap();
    let folder = root.join("target/long-fuzz");
    let _ = std::fs::remove_dir_all(&folder);
    std::fs::create_dir_all(&folder).unwrap();
    let file = std::sync::Mutex::new(io::BufWriter::new(
        std::fs::File::create(folder.join("fuzz.jsonl")).unwrap(),
    ));
    let plan = things_plan();
    let fed = std::sync::atomic::AtomicUsize::new(0);
    let printed = std::sync::atomic::AtomicUsize::new(0);
    let cases = (target / 5 * 2 + 1) as u32; // 1 to 5 lines a case: 3 on average, so a margin
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&prop::collection::vec(hostile_line(), 1..6), |lines| {
            let text = decode_and_echo(&lines, &plan)?;
            fed.fetch_add(lines.len(), std::sync::atomic::Ordering::Relaxed);
            printed.fetch_add(text.lines().count(), std::sync::atomic::Ordering::Relaxed);
            file.lock().unwrap().write_all(text.as_bytes()).unwrap();
            Ok(())
        })
        .unwrap();
    file.into_inner().unwrap().flush().unwrap();
    let fed = fed.into_inner();
    eprintln!(
        "{fed} mutated lines fed, {} lines printed",
        printed.into_inner()
    );
    assert!(fed >= target, "only {fed} lines were fed");
    let python = root.join(".venv/bin/python");
    let status = std::process::Command::new(python)
        .arg(root.join("scripts/validate_messages.py"))
        .arg(&folder)
        .arg("--any")
        .status()
        .expect("the model's validator runs (scripts/test.sh makes .venv)");
    assert!(
        status.success(),
        "a printed line was refused by the official model"
    );
}

/// Input a test feeds line by line; a read waits for the next piece, as a pipe from a slow
/// source does, and the input ends when the sender is dropped.
struct Fed {
    pieces: std::sync::mpsc::Receiver<Vec<u8>>,
    current: io::Cursor<Vec<u8>>,
}

impl Read for Fed {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let n = self.current.read(buf)?;
            if n > 0 {
                return Ok(n);
            }
            match self.pieces.recv() {
                Ok(piece) => self.current = io::Cursor::new(piece),
                Err(_) => return Ok(0),
            }
        }
    }
}

/// The reader hands records on in chunks, but never holds one back waiting for input that
/// has not come: a source that pauses still has what it sent written.
#[tokio::test]
async fn a_paused_source_still_has_what_it_sent_written() {
    let writer = Arc::new(FakeWriter::default());
    let (feed, pieces) = std::sync::mpsc::channel();
    let input = Fed {
        pieces,
        current: io::Cursor::new(Vec::new()),
    };
    let watched = writer.clone();
    let source = std::thread::spawn(move || {
        for i in 0..3 {
            let line = fake::record("things", None, &format!("n{i}"));
            feed.send(format!("{line}\n").into_bytes()).unwrap();
        }
        // The source waits here; the three must be written meanwhile.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while watched.seen.lock().unwrap().len() < 3 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let written_while_waiting = watched.seen.lock().unwrap().len();
        feed.send(format!("{}\n", fake::state("things", 1)).into_bytes())
            .unwrap();
        written_while_waiting
    });
    let (summary, captured) = fake::sync_from(fake::settings(), things_plan(), writer, input).await;
    assert_eq!(source.join().unwrap(), 3, "records were held back");
    assert_eq!(summary.written, 3);
    let states = captured
        .messages()
        .into_iter()
        .filter(|m| m["type"] == "STATE")
        .count();
    assert_eq!(states, 1);
}

/// The platform adds `recordCount` and `rejectedRecordCount` of each echoed state and checks
/// the sum against the source's count for that state: for every state type, with rejections
/// in some windows and none in others, the sum is the window's records, and every other field
/// comes back as it was sent (a stale `destinationStats` of its own is replaced).
#[tokio::test(start_paused = true)]
async fn every_state_type_carries_counts_that_add_up_to_its_window() {
    let record = |name: &str| fake::record("things", None, name);
    let stream = |id: u64, n: f64| {
        json!({"type": "STATE", "state": {"type": "STREAM", "id": id,
            "stream": {"stream_descriptor": {"name": "things", "namespace": null}, "stream_state": {"c": id}},
            "sourceStats": {"recordCount": n}}})
        .to_string()
    };
    let windows: Vec<(Vec<&str>, String, f64, f64)> = vec![
        (vec!["a", "bad 1", "b"], stream(1, 3.0), 2.0, 1.0),
        (vec!["c", "d"],
            json!({"type": "STATE", "state": {"type": "GLOBAL", "id": 2,
                "global": {"shared_state": {"lsn": 9}, "stream_states": [{"stream_descriptor": {"name": "things"}, "stream_state": {}}]},
                "sourceStats": {"recordCount": 2.0}}}).to_string(), 2.0, 0.0),
        (vec!["bad 2", "bad 3"],
            json!({"type": "STATE", "state": {"type": "LEGACY", "id": 3, "data": {"x": 1},
                "sourceStats": {"recordCount": 2.0}}}).to_string(), 0.0, 2.0),
        // The platform's empty state at the end of a full-refresh stream that sent nothing.
        (vec![],
            json!({"type": "STATE", "state": {"type": "STREAM", "id": 4,
                "stream": {"stream_descriptor": {"name": "things"}, "stream_state": {}},
                "sourceStats": {"recordCount": 0.0}}}).to_string(), 0.0, 0.0),
        (vec!["e", "bad 4"],
            json!({"type": "STATE", "state": {"type": "STREAM", "id": 5,
                "stream": {"stream_descriptor": {"name": "things"}, "stream_state": {"c": 5}},
                "sourceStats": {"recordCount": 2.0}, "destinationStats": {"recordCount": "x"}}}).to_string(), 1.0, 1.0),
    ];
    let mut lines = Vec::new();
    for (names, state, _, _) in &windows {
        lines.extend(names.iter().map(|n| record(n)));
        lines.push(state.clone());
    }
    let (_writer, summary, captured) = fake::sync(fake::settings(), things_plan(), &lines).await;
    assert_eq!((summary.written, summary.rejected), (5, 4));
    let states: Vec<Value> = captured
        .messages()
        .into_iter()
        .filter(|m| m["type"] == "STATE")
        .collect();
    assert_eq!(states.len(), windows.len());
    for (echo, (_, sent, written, rejected)) in states.iter().zip(&windows) {
        let stats = &echo["state"]["destinationStats"];
        assert_eq!(
            stats,
            &json!({"recordCount": written, "rejectedRecordCount": rejected})
        );
        let source = echo["state"]["sourceStats"]["recordCount"]
            .as_f64()
            .unwrap();
        assert_eq!(written + rejected, source, "{echo}");
        let mut sent: Value = serde_json::from_str(sent).unwrap();
        sent["state"]["destinationStats"] = stats.clone();
        assert_eq!(echo, &sent, "only destinationStats changes");
    }
    fake::keep_protocol_lines("pipeline", &captured.text());
}

/// A dry run echoes no state, ends with one line per stream of what would become of its rows,
/// and a store that keeps every row gets each one's outcome.
#[tokio::test(start_paused = true)]
async fn a_dry_run_holds_every_state_and_says_what_each_stream_would_do() {
    let dir = std::env::temp_dir().join(format!("dry-run-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("outcomes.jsonl");
    let _ = std::fs::remove_file(&path);
    let mut settings = fake::settings();
    settings.dry_run = true;
    settings.every_outcome = true;
    settings.rejects = engine::config::RejectsTarget::Local(path.clone());
    let lines = vec![
        fake::record("things", None, "a"),
        fake::record("things", None, "bad b"),
        fake::state("things", 1),
        fake::record("others", None, "c"),
        fake::state("others", 2),
    ];
    let (_, summary, captured) = fake::sync(
        settings,
        fake::plan(&[("things", "append"), ("others", "append_dedup")]),
        &lines,
    )
    .await;
    let messages = captured.messages();
    assert!(
        messages.iter().all(|m| m["type"] != "STATE"),
        "no state in a dry run"
    );
    assert_eq!(summary.states_held, 2);
    let logs: Vec<&str> = messages
        .iter()
        .filter_map(|m| m["log"]["message"].as_str())
        .collect();
    assert!(
        logs.contains(
            &"dry run, stream `things` would be: 1 created, 1 rejected (fake refusal of bad b ×1)"
        ),
        "{logs:#?}"
    );
    assert!(
        logs.contains(&"dry run, stream `others` would be: 1 written"),
        "{logs:#?}"
    );
    assert!(logs
        .iter()
        .any(|l| l.contains("2 state(s) the source sent were not echoed")));
    // Rejections kept nowhere would fail a real sync; a dry run only reports them.
    assert!(summary.into_result().is_ok());
    let kept: Vec<Value> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let outcomes: Vec<(&str, &str)> = kept
        .iter()
        .map(|k| {
            (
                k["stream"].as_str().unwrap(),
                k["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        vec![
            ("things", "created"),
            ("things", "rejected"),
            ("others", "written")
        ]
    );
    assert_eq!(kept[0]["id"], "id-a");
    assert_eq!(kept[0]["dry_run"], true);
    assert_eq!(kept[0]["record"]["name"], "a");
    fake::keep_protocol_lines("pipeline", &captured.text());
}
