//! Rejected records in S3, against a real S3-compatible server (moto, from PyPI, installed by
//! scripts/test.sh into .venv) on loopback: the objects a sync puts, and `check` proving the
//! store (and failing, saying what to fix, when it cannot).

use emukit::moto::Moto;
use integration_tests::harness::{
    config_for, record_line, run_connector, scratch_dir, state_line, sync, write_json,
};
use integration_tests::{Emulator, Options};
use serde_json::{json, Value};

#[tokio::test]
async fn rejected_records_land_in_s3_before_their_states() {
    let moto = Moto::start();
    moto.create_bucket("dlq").await;
    let emulator = Emulator::start(Options::default()).await.unwrap();
    let lines = [
        record_line("c", &json!({"name": "Good"})),
        record_line("c", &json!({"name": "Bad", "status": "GONE"})),
        state_line("c", 1),
        record_line("c", &json!({"colour": "red"})),
        record_line("c", &json!({"name": "Also good"})),
        state_line("c", 2),
    ];
    let s = sync(
        &emulator,
        json!({"object_storage_config": moto.config("dlq")}),
        &[("c", "client", "append")],
        &lines,
    )
    .await;
    s.run.assert_ok();
    assert_eq!(s.run.states().len(), 2);
    assert_eq!(emulator.count("client"), 2);
    let keys = moto.keys("dlq", "rejects/").await;
    // One object per flush before states go out (both states may go out together).
    assert!(!keys.is_empty() && keys.len() <= 2, "{keys:?}");
    let mut stored: Vec<Value> = Vec::new();
    for key in &keys {
        // rejects/{sync id}/{stream}/{yyyy}_{mm}_{dd}_{epoch ms}_{part}.jsonl
        let parts: Vec<&str> = key.split('/').collect();
        assert_eq!(parts.len(), 4, "{key}");
        assert_eq!(parts[2], "c", "{key}");
        assert!(parts[3].ends_with(".jsonl"), "{key}");
        let text = moto.object("dlq", key).await;
        assert!(!text.is_empty(), "{key}: empty object");
        for line in text.lines() {
            stored.push(serde_json::from_str(line).unwrap());
        }
    }
    stored.sort_by_key(|r| r["line"].as_u64());
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[0]["line"], 2);
    assert_eq!(
        stored[0]["record"],
        json!({"name": "Bad", "status": "GONE"})
    );
    assert_eq!(stored[1]["reason"], "`colour` is not a field of a ClientSuccess client; field `name` is required to insert a client");
    assert_eq!(stored[1]["stream"], "c");
}

async fn check(config: Value) -> (String, String) {
    let dir = scratch_dir("check-rejects");
    let path = write_json(&dir, "c.json", &config);
    let run = run_connector(&["check", "--config", &path], b"").await;
    let status = &run.of_type("CONNECTION_STATUS")[0]["connectionStatus"];
    (
        status["status"].as_str().unwrap().to_owned(),
        status["message"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test]
async fn check_proves_the_rejects_store_or_says_what_to_fix() {
    let moto = Moto::start();
    moto.create_bucket("proved").await;
    let emulator = Emulator::start(Options::default()).await.unwrap();
    let with = |storage: Value| {
        config_for(
            &emulator.base_url(),
            emulator.api_key(),
            json!({"object_storage_config": storage}),
        )
    };
    let (status, message) = check(with(moto.config("proved"))).await;
    assert_eq!(status, "SUCCEEDED", "{message}");
    assert!(message.contains("s3://proved/rejects"), "{message}");
    assert!(
        moto.keys("proved", "").await.is_empty(),
        "the probe object is deleted"
    );

    let (status, message) = check(with(moto.config("no-such-bucket"))).await;
    assert_eq!(status, "FAILED");
    assert!(
        message.contains("object_storage_config") && message.contains("no-such-bucket"),
        "{message}"
    );
    assert!(!message.contains("testing-secret"), "{message}");

    // A file where a folder should be: the Local store cannot be created.
    let blocker = scratch_dir("check-local").join("a-file");
    std::fs::write(&blocker, "x").unwrap();
    let local = json!({"storage_type": "Local", "path": blocker.join("rejected.jsonl")});
    let (status, message) = check(with(local)).await;
    assert_eq!(status, "FAILED");
    assert!(message.contains("object_storage_config.path"), "{message}");
}

/// `rows_kept: all` keeps every row's outcome in the same S3 layout as the rejects: upserts
/// created, one updated with the field it sent, one unchanged, one rejected, each with the
/// line it came from; the summary line's counts are the objects'.
#[tokio::test]
async fn every_rows_outcome_lands_in_s3_when_all_rows_are_kept() {
    let moto = Moto::start();
    moto.create_bucket("log").await;
    let emulator = Emulator::start(Options::default()).await.unwrap();
    let client = |x: &str, city: &str| {
        record_line(
            "c",
            &json!({"externalId": x, "name": format!("Client {x}"), "status": "ACTIVE", "active": true, "city": city}),
        )
    };
    let mut storage = moto.config("log");
    storage["rows_kept"] = json!("all");
    let streams = [("c", "client", "append_dedup")];
    // A first sync stores A and B; in the second, read ahead, A is unchanged and B moved.
    let first = [
        client("A", "Denver"),
        client("B", "Denver"),
        state_line("c", 1),
    ];
    sync(
        &emulator,
        json!({"object_storage_config": storage.clone()}),
        &streams,
        &first,
    )
    .await
    .run
    .assert_ok();
    let before = moto.keys("log", "rejects/").await.len();
    let second = [
        client("A", "Denver"),
        client("B", "Boulder"),
        client("C", "Denver"),
        record_line(
            "c",
            &json!({"externalId": "D", "name": "Client D", "timezone": "Mars/Olympus"}),
        ),
        state_line("c", 2),
    ];
    let s = sync(
        &emulator,
        json!({"object_storage_config": storage}),
        &streams,
        &second,
    )
    .await;
    s.run.assert_ok();
    let mut stored: Vec<Value> = Vec::new();
    for key in moto.keys("log", "rejects/").await.iter().skip(before) {
        for line in moto.object("log", key).await.lines() {
            stored.push(serde_json::from_str(line).unwrap());
        }
    }
    stored.sort_by_key(|r| r["line"].as_u64());
    let outcomes: Vec<(u64, &str)> = stored
        .iter()
        .map(|r| (r["line"].as_u64().unwrap(), r["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(
        outcomes,
        vec![
            (1, "unchanged"),
            (2, "updated"),
            (3, "created"),
            (4, "rejected")
        ],
        "{stored:#?}"
    );
    assert_eq!(stored[1]["fields"], json!(["city"]));
    assert!(stored[0]["id"].as_str().is_some_and(|id| !id.is_empty()));
    assert!(stored[3]["reason"].as_str().unwrap().contains("timezone"));
    let summary = emukit::harness::stream_summary(&s.run, "c").unwrap();
    assert!(
        summary.starts_with("1 created, 1 updated (city ×1), 1 unchanged (no request), 1 rejected (ClientSuccess refused it: timezone"),
        "{summary}"
    );
}
