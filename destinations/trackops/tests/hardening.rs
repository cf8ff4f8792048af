//! What every destination promises, held for Trackops: a SIGTERM lets only the request out
//! finish (the gentle pace holds the others back, and they are not sent), the breaker stops a
//! mapping mistake, and states count what was committed.

use emukit::harness::{
    bin_named, merged, record_line, run_write, scratch_dir, state_line, write_files, Live,
};
use serde_json::{json, Value};
use std::time::Duration;
use trackops_emulator::{Emulator, Options};

const STREAMS: [(&str, &str, &str); 1] = [("clients", "client", "append")];

fn config(emulator: &Emulator, extra: Value) -> Value {
    merged(emulator.connector_config(), extra)
}

/// The config and catalog files of a write of clients.
fn files(emulator: &Emulator, extra: Value) -> (String, String) {
    let (config, catalog, _) = write_files(&config(emulator, extra), &STREAMS);
    (config, catalog)
}

#[tokio::test]
async fn sigterm_sends_nothing_new_and_checkpoints_only_what_was_committed() {
    let emulator = Emulator::start(Options {
        latency_ms: 1_000,
        ..Options::default()
    })
    .await
    .unwrap();
    let (config, catalog) = files(&emulator, json!({}));
    let mut live = Live::start(&bin_named("destination-trackops"), &config, &catalog).await;
    let mut lines: Vec<String> = (0..6)
        .map(|i| record_line("clients", &json!({"name": format!("C{i}")})))
        .collect();
    lines.push(state_line("clients", 1));
    live.send(&lines).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    live.signal(libc::SIGTERM);
    let (run, _) = live.finish().await;
    assert_eq!(run.status.code(), Some(1), "{}", run.stdout);
    let error = run.error_trace().unwrap();
    assert_eq!(error["failure_type"], "transient_error");
    let message = error["message"].as_str().unwrap();
    let landed = emulator.records("clients").len();
    assert!(
        (1..6).contains(&landed),
        "the request out finished, the rest were not sent: {landed}"
    );
    assert!(
        message.contains(&format!("{landed} records were written")),
        "{message}"
    );
    assert!(
        run.states().is_empty(),
        "the state's records were not all committed"
    );
}

#[tokio::test]
async fn the_breaker_stops_a_sync_whose_first_records_all_fail_alike() {
    let emulator = Emulator::start(Options::default()).await.unwrap();
    let dir = scratch_dir("trackops-breaker");
    let config = config(
        &emulator,
        json!({"rejection_breaker_records": 4,
        "object_storage_config": {"storage_type": "Local", "path": dir.join("rejects.jsonl").to_string_lossy()}}),
    );
    let mut lines: Vec<String> = (0..8)
        .map(|i| record_line("clients", &json!({"account_code": format!("X{i}")})))
        .collect();
    lines.push(state_line("clients", 1));
    let (run, _) = run_write(
        &bin_named("destination-trackops"),
        &config,
        &STREAMS,
        &lines,
    )
    .await;
    assert!(!run.status.success());
    assert!(run.states().is_empty());
    let error = run.error_trace().unwrap();
    assert_eq!(error["failure_type"], "config_error");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("field `name` is required to insert a client"),
        "{error}"
    );
    assert_eq!(emulator.request_count(), 0, "nothing was sent");
}
