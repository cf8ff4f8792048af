//! Each echoed STATE's counts against the window it closes, computed here independently: a
//! STREAM state its own stream's records since that stream's previous state, a GLOBAL or LEGACY
//! state every stream's since the previous one that closed them. Property-tested over
//! interleaved streams, rejections (by the API, by the schema, lines naming no stream, streams
//! outside the catalog), every state type, and streams that never send a state.

mod fake;

use proptest::prelude::*;
use serde_json::{json, Value};

const STREAMS: [&str; 4] = ["a", "b", "c", "elsewhere"];

#[derive(Debug, Clone)]
enum Line {
    /// A record of `STREAMS[stream]`; `bad` ones are refused by the API, `invalid` by the schema.
    Record {
        stream: usize,
        bad: bool,
        invalid: bool,
    },
    /// A line that names no stream.
    Garbage,
    /// A STREAM state of `STREAMS[stream]`.
    StreamState(usize),
    Global,
    Legacy,
}

fn line() -> impl Strategy<Value = Line> {
    prop_oneof![
        8 => (0..STREAMS.len(), prop::bool::weighted(0.2), prop::bool::weighted(0.1))
            .prop_map(|(stream, bad, invalid)| Line::Record { stream, bad, invalid }),
        1 => Just(Line::Garbage),
        // Stream `c` never sends a state of its own.
        3 => prop_oneof![Just(0usize), Just(1), Just(3)].prop_map(Line::StreamState),
        1 => Just(Line::Global),
        1 => Just(Line::Legacy),
    ]
}

/// The input lines, and each state's id with the (written, rejected) it must carry.
fn model(lines: &[Line]) -> (Vec<String>, Vec<(u64, f64, f64)>) {
    let mut text = Vec::new();
    let mut expected = Vec::new();
    // Per stream (the last slot: lines naming none): received, rejected since the window opened.
    let mut open = [(0u64, 0u64); STREAMS.len() + 1];
    for (i, line) in lines.iter().enumerate() {
        let id = i as u64;
        let mut close = |window: (u64, u64)| {
            expected.push((id, (window.0 - window.1) as f64, window.1 as f64));
        };
        match *line {
            Line::Record {
                stream,
                bad,
                invalid,
            } => {
                let name = if bad {
                    format!("bad{i}")
                } else {
                    format!("n{i}")
                };
                let data = if invalid {
                    json!({"name": name, "tag": 5})
                } else {
                    json!({"name": name})
                };
                text.push(
                    json!({"type": "RECORD", "record": {"stream": STREAMS[stream], "data": data,
                        "emitted_at": 1}})
                    .to_string(),
                );
                let refused = bad || invalid || stream == 3;
                open[stream].0 += 1;
                open[stream].1 += u64::from(refused);
            }
            Line::Garbage => {
                text.push("{not json".to_owned());
                open[STREAMS.len()].0 += 1;
                open[STREAMS.len()].1 += 1;
            }
            Line::StreamState(stream) => {
                text.push(
                    json!({"type": "STATE", "state": {"type": "STREAM", "id": id,
                        "stream": {"stream_descriptor": {"name": STREAMS[stream]}, "stream_state": {"at": id}}}})
                    .to_string(),
                );
                close(std::mem::take(&mut open[stream]));
            }
            Line::Global | Line::Legacy => {
                text.push(if matches!(line, Line::Global) {
                    json!({"type": "STATE", "state": {"type": "GLOBAL", "id": id,
                        "global": {"shared_state": {"at": id}, "stream_states": []}}})
                } else {
                    json!({"type": "STATE", "state": {"type": "LEGACY", "id": id, "data": {"at": id}}})
                }
                .to_string());
                let all = open
                    .iter()
                    .fold((0, 0), |sum, w| (sum.0 + w.0, sum.1 + w.1));
                open = Default::default();
                close(all);
            }
        }
    }
    (text, expected)
}

fn echoed(messages: &[Value]) -> Vec<(u64, f64, f64)> {
    messages
        .iter()
        .filter(|m| m["type"] == "STATE")
        .map(|m| {
            let state = &m["state"];
            let stats = &state["destinationStats"];
            (
                state["id"].as_u64().unwrap(),
                stats["recordCount"].as_f64().unwrap(),
                stats["rejectedRecordCount"].as_f64().unwrap(),
            )
        })
        .collect()
}

fn run(lines: &[String], streams: &[(&str, &str)]) -> (Vec<Value>, engine::write::Summary) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    let (_, summary, captured) =
        runtime.block_on(fake::sync(fake::settings(), fake::plan(streams), lines));
    (captured.messages(), summary)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn every_state_carries_the_counts_of_the_window_it_closes(
        lines in prop::collection::vec(line(), 0..120)
    ) {
        let (text, expected) = model(&lines);
        let (messages, summary) =
            run(&text, &[("a", "append"), ("b", "append_dedup"), ("c", "append")]);
        prop_assert_eq!(echoed(&messages), expected);
        let records = lines.iter().filter(|l| matches!(l, Line::Record { .. } | Line::Garbage)).count();
        prop_assert_eq!(summary.records, records as u64);
    }
}

/// The case the platform saw fail: records a, a, b, then state(a), state(b).
#[test]
fn two_streams_then_their_states() {
    let lines = vec![
        fake::record("a", None, "1"),
        fake::record("a", None, "2"),
        fake::record("b", None, "3"),
        json!({"type": "STATE", "state": {"type": "STREAM", "id": 1,
            "stream": {"stream_descriptor": {"name": "a"}, "stream_state": {}}}})
        .to_string(),
        json!({"type": "STATE", "state": {"type": "STREAM", "id": 2,
            "stream": {"stream_descriptor": {"name": "b"}, "stream_state": {}}}})
        .to_string(),
    ];
    let (messages, _) = run(&lines, &[("a", "append"), ("b", "append")]);
    assert_eq!(echoed(&messages), vec![(1, 2.0, 0.0), (2, 1.0, 0.0)]);
}
