//! What ClientSuccess promises, held for Gainsight PX: a SIGTERM drains what is in flight and
//! checkpoints only what was committed, the breaker stops a mapping mistake, and rejects go to
//! a real S3-compatible store (moto on loopback).

use emukit::harness::{
    bin_named, merged, record_line, run_command, run_write, scratch_dir, state_line, write_files,
    Live,
};
use emukit::moto::Moto;
use gainsight_px_emulator::{Emulator, Options};
use serde_json::{json, Value};
use std::time::Duration;

const STREAMS: [(&str, &str, &str); 1] = [("accounts", "account", "append")];

fn config(emulator: &Emulator, extra: Value) -> Value {
    merged(emulator.connector_config(), extra)
}

/// The config and catalog files of a write of accounts.
fn files(emulator: &Emulator, extra: Value) -> (String, String) {
    let (config, catalog, _) = write_files(&config(emulator, extra), &STREAMS);
    (config, catalog)
}

fn account(i: usize) -> String {
    record_line(
        "accounts",
        &json!({"id": format!("a-{i}"), "name": format!("Account {i}")}),
    )
}

#[tokio::test]
async fn sigterm_lets_requests_in_flight_finish_and_checkpoints_only_what_was_committed() {
    let emulator = Emulator::start(Options {
        latency_ms: 1_500,
        ..Options::default()
    })
    .await
    .unwrap();
    let (config, catalog) = files(&emulator, json!({}));
    let mut live = Live::start(&bin_named("destination-gainsight-px"), &config, &catalog).await;
    let mut lines: Vec<String> = (0..2).map(account).collect();
    lines.push(state_line("accounts", 1));
    lines.extend((2..40).map(account));
    lines.push(state_line("accounts", 2));
    live.send(&lines).await;
    // Past the attribute read (as slow as any request), into the first writes.
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    live.signal(libc::SIGTERM);
    let (run, _) = live.finish().await;
    assert_eq!(run.status.code(), Some(1), "{}", run.stdout);
    let error = run.error_trace().unwrap();
    assert_eq!(error["failure_type"], "transient_error");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("SIGTERM"), "{message}");
    let landed = emulator.records("accounts").len();
    assert!(landed > 0, "the requests in flight finished");
    assert!(
        message.contains(&format!("{landed} records were written")),
        "{message}"
    );
    let ids: Vec<_> = run.states().iter().map(|s| s["id"].as_u64()).collect();
    assert!(
        ids.len() <= 1 && !ids.contains(&Some(2)),
        "{ids:?}: state 2 before its records were sent\n{}\n{message}",
        run.stdout
    );
    if ids == [Some(1)] {
        assert!(emulator
            .records("accounts")
            .iter()
            .any(|a| a["id"] == "a-1"));
    }
}

#[tokio::test]
async fn the_breaker_stops_a_sync_whose_first_records_all_fail_alike() {
    let emulator = Emulator::start(Options::default()).await.unwrap();
    let dir = scratch_dir("px-breaker");
    let rejects = dir.join("rejects.jsonl");
    let config = config(
        &emulator,
        json!({"rejection_breaker_records": 5,
               "object_storage_config": {"storage_type": "Local", "path": rejects.to_string_lossy()}}),
    );
    // Every row lacks the name an insert needs: a mapping mistake, not bad data.
    let mut lines: Vec<String> = (0..10)
        .map(|i| record_line("accounts", &json!({"id": format!("a-{i}")})))
        .collect();
    lines.push(state_line("accounts", 1));
    let (run, _) = run_write(
        &bin_named("destination-gainsight-px"),
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
            .contains("field `name` is required to insert a account"),
        "{error}"
    );
    assert_eq!(
        emulator.request_count(),
        1,
        "the attribute read alone: nothing was written"
    );
}

#[tokio::test]
async fn rejects_go_to_s3_and_check_proves_the_bucket() {
    let moto = Moto::start();
    moto.create_bucket("px-rejects").await;
    let emulator = Emulator::start(Options::default()).await.unwrap();
    let config = config(
        &emulator,
        json!({"object_storage_config": moto.config("px-rejects")}),
    );
    let check = run_command(&bin_named("destination-gainsight-px"), "check", &config).await;
    let status = &check.of_type("CONNECTION_STATUS")[0]["connectionStatus"];
    assert_eq!(status["status"], "SUCCEEDED", "{status}");
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .contains("s3://px-rejects/rejects"),
        "{status}"
    );

    let lines = [
        account(1),
        record_line(
            "accounts",
            &json!({"id": "a-2", "name": "Two", "numberOfEmployees": "many"}),
        ),
        state_line("accounts", 1),
    ];
    let (run, _) = run_write(
        &bin_named("destination-gainsight-px"),
        &config,
        &STREAMS,
        &lines,
    )
    .await;
    run.assert_ok();
    run.assert_no_secret("testing-secret");
    assert_eq!(
        run.states()[0]["destinationStats"],
        json!({"recordCount": 1.0, "rejectedRecordCount": 1.0})
    );
    let keys = moto.keys("px-rejects", "rejects/").await;
    assert_eq!(keys.len(), 1, "{keys:?}");
    let object = moto.object("px-rejects", &keys[0]).await;
    assert!(
        object.contains("numberOfEmployees") && object.contains("\"line\":2"),
        "{object}"
    );
}
