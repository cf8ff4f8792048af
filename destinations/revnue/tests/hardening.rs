//! What every destination promises, held for Revnue: a SIGTERM drains only the request out
//! (the pace holds the others back, and they are not sent), the breaker stops a mapping
//! mistake before the budget is spent on it, and a long sync says at start what it will take.

use emukit::harness::{
    bin_named, merged, record_line, run_write, scratch_dir, state_line, write_files, Live,
};
use revnue_emulator::{Emulator, Options, TOKEN};
use serde_json::{json, Value};
use std::time::Duration;

const STREAMS: [(&str, &str, &str); 1] = [("customers", "customer", "append")];

fn config(emulator: &Emulator, extra: Value) -> Value {
    merged(emulator.connector_config(), extra)
}

/// The config and catalog files of a write of customers.
fn files(emulator: &Emulator, extra: Value) -> (String, String) {
    let (config, catalog, _) = write_files(&config(emulator, extra), &STREAMS);
    (config, catalog)
}

fn fast() -> Options {
    Options {
        budget_per_minute: 100_000,
        ..Options::default()
    }
}

#[tokio::test]
async fn sigterm_sends_nothing_new_and_checkpoints_only_what_was_committed() {
    let emulator = Emulator::start(fast()).await.unwrap();
    // One request a second: the drain must not hurry the ones still waiting for their turn.
    let (config, catalog) = files(&emulator, json!({"requests_per_minute": 60}));
    let mut live = Live::start(&bin_named("destination-revnue"), &config, &catalog).await;
    let mut lines: Vec<String> = (0..8)
        .map(|i| record_line("customers", &json!({"name": format!("Term {i}")})))
        .collect();
    lines.push(state_line("customers", 1));
    live.send(&lines).await;
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    live.signal(libc::SIGTERM);
    let (run, waited) = live.finish().await;
    assert_eq!(run.status.code(), Some(1), "{}", run.stdout);
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    let error = run.error_trace().unwrap();
    assert_eq!(error["failure_type"], "transient_error");
    let landed = emulator.records("customers").len() - 1;
    assert!(
        (1..8).contains(&landed),
        "the requests out finished, the rest were not sent: {landed}"
    );
    let message = error["message"].as_str().unwrap();
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
async fn the_breaker_stops_a_mapping_mistake_before_spending_the_budget() {
    let emulator = Emulator::start(fast()).await.unwrap();
    let dir = scratch_dir("revnue-breaker");
    let config = config(
        &emulator,
        json!({"rejection_breaker_records": 4,
        "object_storage_config": {"storage_type": "Local", "path": dir.join("rejects.jsonl").to_string_lossy()}}),
    );
    let mut lines: Vec<String> = (0..8)
        .map(|i| record_line("customers", &json!({"customer_name": format!("X{i}")})))
        .collect();
    lines.push(state_line("customers", 1));
    let (run, _) = run_write(&bin_named("destination-revnue"), &config, &STREAMS, &lines).await;
    assert!(!run.status.success());
    assert!(run.states().is_empty());
    let error = run.error_trace().unwrap();
    assert_eq!(error["failure_type"], "config_error");
    assert!(
        error["message"].as_str().unwrap().contains("customer_name"),
        "{error}"
    );
    assert_eq!(
        emulator.count_method("POST"),
        0,
        "no write was sent: {:?}",
        emulator.requests()
    );
}

#[tokio::test]
async fn a_sync_says_at_start_how_long_ten_thousand_records_take_and_progress_counts_requests() {
    let emulator = Emulator::start(fast()).await.unwrap();
    let config = config(&emulator, json!({}));
    let lines = [
        record_line("customers", &json!({"name": "Planned"})),
        state_line("customers", 1),
    ];
    let (run, _) = run_write(&bin_named("destination-revnue"), &config, &STREAMS, &lines).await;
    run.assert_ok();
    let info = run.logs("INFO");
    assert!(
        info[0].contains("20 requests a minute")
            && info[0].contains("10,000 records take about 8 h 20 min"),
        "{info:?}"
    );
    let finished = info
        .iter()
        .find(|l| l.starts_with("sync finished"))
        .unwrap();
    assert!(finished.contains("requests spent"), "{finished}");
}

#[tokio::test]
async fn a_name_created_elsewhere_after_the_listing_is_updated_not_duplicated() {
    let emulator = Emulator::start(fast()).await.unwrap();
    let (config, catalog, _) = write_files(
        &config(&emulator, json!({"requests_per_minute": 6000})),
        &[("customers", "customer", "append_dedup")],
    );
    let mut live = Live::start(&bin_named("destination-revnue"), &config, &catalog).await;
    live.send(&[record_line("customers", &json!({"name": "Early"}))])
        .await;
    // The first record made the sync list the company; wait until it has landed.
    for _ in 0..100 {
        if emulator.records("customers").len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Another integration creates "Late" now, after the listing.
    let created = emukit::http_client()
        .build()
        .unwrap()
        .post(format!("{}/api/v2/customer", emulator.base_url()))
        .bearer_auth(TOKEN)
        .json(&json!({"company": 1, "name": "Late", "city": "Oslo"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status().as_u16(), 201);
    live.send(&[
        record_line(
            "customers",
            &json!({"name": "late", "website": "late.example"}),
        ),
        state_line("customers", 1),
    ])
    .await;
    live.close_input();
    let (run, _) = live.finish().await;
    run.assert_ok();
    let late: Vec<Value> = emulator
        .records("customers")
        .into_iter()
        .filter(|c| c["name"].as_str().unwrap().eq_ignore_ascii_case("late"))
        .collect();
    assert_eq!(late.len(), 1, "{late:?}");
    assert_eq!(late[0]["website"], "late.example");
    assert_eq!(late[0]["city"], "Oslo", "an update, not a replacement");
    let lists = emulator
        .requests()
        .iter()
        .filter(|(m, p, _)| m == "GET" && p.starts_with("/api/v2/customer/"))
        .count();
    assert_eq!(
        lists, 2,
        "the first listing, and one more after \"already exists\""
    );
}
