//! Inputs, answers and signals that once crashed, hung or silently stopped a sync: each one
//! pinned here against the real binary.

use integration_tests::harness::{
    catalog, config_for, http_answer, record_line, run_connector, scratch_dir, scripted_server,
    state_line, write_json, Live, Run,
};
use integration_tests::{Emulator, Options};
use serde_json::{json, Value};
use std::time::Duration;

/// Config and catalog files for a sync of clients into `base_url`, rejects kept in a file.
fn files(base_url: &str, api_key: &str, extra: Value, mode: &str) -> (String, String, String) {
    let dir = scratch_dir("hardening");
    let rejects = dir.join("rejected.jsonl").to_string_lossy().into_owned();
    let mut extra = extra;
    if extra.get("rejected_records").is_none() {
        extra["rejected_records"] = json!({"storage_type": "Local", "path": rejects});
    }
    let config = write_json(&dir, "config.json", &config_for(base_url, api_key, extra));
    let catalog = write_json(
        &dir,
        "catalog.json",
        &catalog(&[("clients", "client", mode)]),
    );
    (config, catalog, rejects)
}

/// `files` for a client insert into `emulator`.
fn emulator_files(emulator: &Emulator, extra: Value) -> (String, String, String) {
    files(&emulator.base_url(), emulator.api_key(), extra, "append")
}

async fn write(config: &str, catalog: &str, input: &[u8]) -> Run {
    run_connector(&["write", "--config", config, "--catalog", catalog], input).await
}

fn rejected(path: &str) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn failure(run: &Run) -> (String, String) {
    let trace = run.error_trace().expect("an error trace");
    (
        trace["failure_type"].as_str().unwrap().to_owned(),
        trace["message"].as_str().unwrap().to_owned(),
    )
}

fn client(name: &str) -> String {
    record_line("clients", &json!({"name": name}))
}

#[tokio::test]
async fn a_retry_after_beyond_any_duration_is_capped_not_a_panic() {
    let (addr, _server) = scripted_server(|_, path| {
        if path.starts_with("/v2/customfield/") {
            return http_answer("200 OK", "", "[]");
        }
        http_answer(
            "429 Too Many Requests",
            "retry-after: 1e300\r\n",
            r#"{"message":"slow down"}"#,
        )
    })
    .await;
    let (config, catalog, _) = files(
        &format!("http://{addr}/v2"),
        "k",
        json!({"api_surface": "v2_bulk"}),
        "append",
    );
    let mut live = Live::start(
        &integration_tests::harness::connector_bin(),
        &config,
        &catalog,
    )
    .await;
    live.send(&[client("A")]).await;
    // The batch goes out after 500 ms; its 429 makes it wait the capped Retry-After.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    live.signal(libc::SIGTERM);
    tokio::time::sleep(Duration::from_millis(200)).await;
    live.signal(libc::SIGTERM);
    let (run, _) = live.finish().await;
    assert_eq!(
        run.status.code(),
        Some(1),
        "not a panic (70): {}\n{}",
        run.stdout,
        run.stderr
    );
    let (kind, message) = failure(&run);
    assert_eq!(kind, "transient_error", "{message}");
    let waits: Vec<f64> = run
        .logs("WARN")
        .iter()
        .filter_map(|w| w.split(" waits ").nth(1))
        .filter_map(|rest| rest.split(' ').next()?.parse().ok())
        .collect();
    assert!(!waits.is_empty(), "{:?}", run.logs("WARN"));
    assert!(
        waits.iter().all(|&w| (600.0..=630.0).contains(&w)),
        "{waits:?}"
    );
}

#[tokio::test]
async fn an_absurd_token_lifetime_is_capped_not_a_panic() {
    let (addr, _server) = scripted_server(|method, path| match (method, path) {
        ("POST", "/v1/auth") => http_answer(
            "200 OK",
            "",
            r#"{"access_token":"t-1","token_type":"Bearer","expires_in":18446744073709551615}"#,
        ),
        _ => http_answer(
            "200 OK",
            "",
            r#"{"data":[],"page":0,"size":1,"totalPages":0,"totalElements":0}"#,
        ),
    })
    .await;
    let dir = scratch_dir("token");
    let config = write_json(
        &dir,
        "config.json",
        &json!({"credentials": {"auth_type": "username_password", "username": "u",
            "password": "wrong-pass-4242", "auth_url": format!("http://{addr}/v1/auth")},
            "base_url": format!("http://{addr}/v2")}),
    );
    let run = run_connector(&["check", "--config", &config], b"").await;
    assert!(run.status.success(), "{}\n{}", run.stdout, run.stderr);
    let status = &run.of_type("CONNECTION_STATUS")[0]["connectionStatus"];
    assert_eq!(status["status"], "SUCCEEDED", "{status}");
    run.assert_no_secret("wrong-pass-4242");
}

#[tokio::test]
async fn bad_utf8_a_bom_and_duplicate_keys_cost_only_their_own_line() {
    let emulator = Emulator::start(Options::default()).await.unwrap();
    let (config, catalog, rejects) = emulator_files(&emulator, json!({}));
    let mut input = Vec::new();
    input.extend_from_slice("\u{feff}".as_bytes());
    input.extend_from_slice(client("First").as_bytes());
    input.extend_from_slice(b"\n{\"type\":\"RECORD\",\"record\":{\"stream\":\"clients\",\"data\":{\"name\":\"\xff\xfe\"},\"emitted_at\":1}}\n");
    input.extend_from_slice(
        record_line("clients", &json!({"name": "x"}))
            .replace(r#"{"name":"x"}"#, r#"{"name":"a","name":"b"}"#)
            .as_bytes(),
    );
    input.push(b'\n');
    input.extend_from_slice(client("Last").as_bytes());
    input.push(b'\n');
    input.extend_from_slice(state_line("clients", 1).as_bytes());
    input.push(b'\n');
    let run = write(&config, &catalog, &input).await;
    assert!(run.status.success(), "{}\n{}", run.stdout, run.stderr);
    let names: Vec<_> = emulator
        .records("client")
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["First", "Last"]);
    let states = run.states();
    assert_eq!(states.len(), 1);
    assert_eq!(
        states[0]["destinationStats"],
        // The line that is not UTF-8 names no stream, so the clients state does not count it.
        json!({"recordCount": 2.0, "rejectedRecordCount": 1.0})
    );
    let rejected = rejected(&rejects);
    assert_eq!(rejected.len(), 2);
    assert_eq!(rejected[0]["line"], 2);
    assert!(rejected[0]["reason"].as_str().unwrap().contains("UTF-8"));
    assert!(
        rejected[0]["record"]
            .as_str()
            .unwrap()
            .contains(r"\xFF\xFE"),
        "{}",
        rejected[0]
    );
    assert_eq!(rejected[1]["line"], 3);
    assert!(
        rejected[1]["reason"]
            .as_str()
            .unwrap()
            .contains("`name` twice"),
        "{}",
        rejected[1]
    );
}

#[tokio::test]
async fn malformed_states_are_named_not_echoed_and_echoes_carry_no_raw_line_break() {
    let emulator = Emulator::start(Options::default()).await.unwrap();
    let (config, catalog, _) = emulator_files(&emulator, json!({}));
    let input = [
        client("A"),
        r#"{"type":"STATE","state":{"type":"BOGUS","data":{}}}"#.to_owned(),
        state_line("clients", 1),
        r#"{"type":"STATE","state":{"type":"LEGACY","data":[1]}}"#.to_owned(),
        r#"{"type":"STATE","state":{"type":"STREAM","stream":{"stream_descriptor":{}}}}"#.to_owned(),
        r#"{"type":"STATE","state":{"type":"LEGACY","data":{},"sourceStats":{"recordCount":"abc"}}}"#.to_owned(),
        r#"{"type":"STATE","state":{"type":"LEGACY","data":{"s":"\ud800"}}}"#.to_owned(),
        client("B"),
        "{\"type\":\"STATE\",\"state\":{\"type\":\"LEGACY\",\r\"data\":{\"a\":\r1},\"id\":2}}".to_owned(),
    ]
    .join("\n");
    let run = write(&config, &catalog, input.as_bytes()).await;
    assert!(run.status.success(), "{}\n{}", run.stdout, run.stderr);
    assert!(!run.stdout.contains('\r'), "a raw CR was echoed");
    let ids: Vec<_> = run.states().iter().map(|s| s["id"].as_u64()).collect();
    assert_eq!(ids, [Some(1), Some(2)]);
    let warnings = run.logs("WARN");
    for line in [2, 4, 5, 6, 7] {
        assert!(
            warnings
                .iter()
                .any(|w| w.starts_with(&format!("line {line}: a STATE"))),
            "line {line} not named: {warnings:?}"
        );
    }
    assert_eq!(emulator.count("client"), 2);
}

#[tokio::test]
async fn config_and_catalog_mistakes_name_the_field_or_stream() {
    let emulator = Emulator::start(Options::default()).await.unwrap();
    let (config, catalog, _) = files(&emulator.base_url(), "sekrit-999\r\n", json!({}), "append");
    let run = write(&config, &catalog, client("A").as_bytes()).await;
    assert_eq!(run.status.code(), Some(1));
    let (kind, message) = failure(&run);
    assert_eq!(kind, "config_error");
    assert!(message.contains("`credentials.api_key`"), "{message}");
    run.assert_no_secret("sekrit-999");
    assert_eq!(emulator.request_count(), 0, "nothing was sent");

    let dir = scratch_dir("catalog");
    let mut twice = integration_tests::harness::catalog(&[
        ("clients", "client", "append"),
        ("clients", "client", "append_dedup"),
    ]);
    let twice_path = write_json(&dir, "twice.json", &twice);
    let (config, _, _) = emulator_files(&emulator, json!({}));
    let run = write(&config, &twice_path, b"").await;
    let (kind, message) = failure(&run);
    assert_eq!(kind, "config_error");
    assert!(
        message.contains("`clients`") && message.contains("twice"),
        "{message}"
    );

    twice["streams"].as_array_mut().unwrap().pop();
    twice["streams"][0]["destination_sync_mode"] = json!("append_dedup");
    twice["streams"][0]["primary_key"] = json!("externalId");
    let shapeless = write_json(&dir, "shapeless.json", &twice);
    let run = write(&config, &shapeless, b"").await;
    let (kind, message) = failure(&run);
    assert_eq!(kind, "config_error");
    assert!(
        message.contains("`clients`") && message.contains("`primary_key`"),
        "{message}"
    );
}

#[tokio::test]
async fn the_breaker_fails_a_sync_whose_first_records_all_fail_alike() {
    let emulator = Emulator::start(Options::default()).await.unwrap();
    let (config, catalog, rejects) = emulator_files(&emulator, json!({}));
    // A mapping mistake: every record carries a column the object does not have.
    let mut input: Vec<String> = (0..1_200)
        .map(|i| {
            record_line(
                "clients",
                &json!({"name": format!("C{i}"), "colour": "red"}),
            )
        })
        .collect();
    input.insert(500, state_line("clients", 1));
    input.push(state_line("clients", 2));
    let run = write(&config, &catalog, (input.join("\n") + "\n").as_bytes()).await;
    assert_eq!(run.status.code(), Some(1));
    let (kind, message) = failure(&run);
    assert_eq!(kind, "config_error");
    assert!(
        message.contains("first 1000 record(s)") && message.contains("`colour` is not a field"),
        "{message}"
    );
    assert!(run.states().is_empty(), "no state may cover those records");
    assert!(rejected(&rejects).len() >= 1000);

    // Fewer records than the limit, refused by the API for one reason: the same verdict.
    let emulator = Emulator::start(Options::default()).await.unwrap();
    let (config, _, _) = emulator_files(&emulator, json!({}));
    let dir = scratch_dir("breaker");
    let contacts = write_json(
        &dir,
        "catalog.json",
        &integration_tests::harness::catalog(&[("contacts", "contact", "append")]),
    );
    let mut input: Vec<String> = (0..5)
        .map(|i| {
            record_line(
                "contacts",
                &json!({"clientId": "no-such-client", "email": format!("p{i}@x.test")}),
            )
        })
        .collect();
    input.push(state_line("contacts", 1));
    let run = write(&config, &contacts, (input.join("\n") + "\n").as_bytes()).await;
    let (kind, message) = failure(&run);
    assert_eq!(kind, "config_error", "{message}");
    assert!(message.contains("names no client"), "{message}");
    assert!(run.states().is_empty());

    // Turned off, the same input is five rejections of a sync that succeeds.
    let (config, _, _) = emulator_files(&emulator, json!({"rejection_breaker_records": 0}));
    let run = write(&config, &contacts, (input.join("\n") + "\n").as_bytes()).await;
    assert!(run.status.success(), "{}", run.stdout);
    assert_eq!(run.states().len(), 1);

    // One good record among them: bad data, not a mapping mistake.
    let (config, _, _) = emulator_files(&emulator, json!({}));
    let uuid = {
        let (c, k, _) = emulator_files(&emulator, json!({}));
        assert!(write(&c, &k, client("Parent").as_bytes())
            .await
            .status
            .success());
        emulator.records("client")[0]["uuid"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    input.insert(
        2,
        record_line("contacts", &json!({"clientId": uuid, "email": "ok@x.test"})),
    );
    let run = write(&config, &contacts, (input.join("\n") + "\n").as_bytes()).await;
    assert!(run.status.success(), "{}", run.stdout);
    assert_eq!(
        run.states()[0]["destinationStats"],
        json!({"recordCount": 1.0, "rejectedRecordCount": 5.0})
    );
}

/// A client sync against an emulator that answers after `latency_ms`, its stdin left open.
/// The surface is pinned, so only the custom field read (as slow as a write) comes before the
/// records.
async fn live_sync(latency_ms: u64) -> (Emulator, Live) {
    let emulator = Emulator::start(Options {
        latency_ms,
        ..Options::default()
    })
    .await
    .unwrap();
    let (config, catalog, _) = emulator_files(&emulator, json!({"api_surface": "v2_bulk"}));
    let live = Live::start(
        &integration_tests::harness::connector_bin(),
        &config,
        &catalog,
    )
    .await;
    (emulator, live)
}

#[tokio::test]
async fn sigterm_lets_requests_in_flight_finish_then_fails_transiently() {
    let (emulator, mut live) = live_sync(1_500).await;
    let mut first: Vec<String> = (0..100).map(|i| client(&format!("C{i}"))).collect();
    first.push(state_line("clients", 1));
    // A full batch goes out at once; these 30 wait for more records (or 500 ms).
    first.extend((100..130).map(|i| client(&format!("C{i}"))));
    first.push(state_line("clients", 2));
    live.send(&first).await;
    // Past the custom field read (one request, as slow as any), into the first bulk request.
    tokio::time::sleep(Duration::from_millis(1_800)).await;
    live.signal(libc::SIGTERM);
    let (run, _) = live.finish().await;
    assert_eq!(run.status.code(), Some(1), "{}\n{}", run.stdout, run.stderr);
    let (kind, message) = failure(&run);
    assert_eq!(kind, "transient_error");
    assert!(message.contains("SIGTERM"), "{message}");
    assert!(
        message.contains("30 records read were not sent"),
        "{message}"
    );
    let ids: Vec<_> = run.states().iter().map(|s| s["id"].as_u64()).collect();
    assert_eq!(ids, [Some(1)], "the committed batch's state, and only it");
    assert_eq!(
        emulator.count("client"),
        100,
        "the request in flight finished"
    );
}

#[tokio::test]
async fn a_second_signal_stops_at_once() {
    let (_emulator, mut live) = live_sync(20_000).await;
    let lines: Vec<String> = (0..100).map(|i| client(&format!("C{i}"))).collect();
    live.send(&lines).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    live.signal(libc::SIGINT);
    tokio::time::sleep(Duration::from_millis(200)).await;
    live.signal(libc::SIGTERM);
    let (run, waited) = live.finish().await;
    assert!(waited < Duration::from_secs(10), "took {waited:?}");
    assert_eq!(run.status.code(), Some(1));
    let (kind, message) = failure(&run);
    assert_eq!(kind, "transient_error");
    assert!(message.contains("SIGINT"), "{message}");
    assert!(run.states().is_empty());
}
