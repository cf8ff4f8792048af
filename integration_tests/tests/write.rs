//! `write` end to end: the real binary, real HTTP, the emulator's records compared.

use integration_tests::harness::{
    assert_outage_ends, catalog, config_for, record_line, records_with_states, run_connector,
    run_connector_with_env, scratch_dir, state_line, write_json, Sync,
};
use integration_tests::{Emulator, Options};
use serde_json::{json, Value};

/// Runs one sync over the v2 bulk surface unless `extra` sets `api_surface`: these tests pin
/// the pipeline's behaviour there, request counts included; detecting the surface has its own
/// tests (surfaces.rs).
async fn sync(
    emulator: &Emulator,
    extra: Value,
    streams: &[(&str, &str, &str)],
    lines: &[String],
) -> Sync {
    let mut extra = extra;
    if extra.get("api_surface").is_none() {
        extra["api_surface"] = json!("v2_bulk");
    }
    integration_tests::harness::sync(emulator, extra, streams, lines).await
}

fn clients(n: usize, prefix: &str) -> Vec<Value> {
    (0..n).map(|i| json!({"name": format!("{prefix} {i}"), "externalId": format!("{prefix}-{i}"), "status": "ACTIVE", "active": true})).collect()
}

fn lines(stream: &str, records: &[Value]) -> Vec<String> {
    records.iter().map(|r| record_line(stream, r)).collect()
}

async fn seed_clients(emulator: &Emulator, n: usize) -> Vec<String> {
    let s = sync(
        emulator,
        json!({}),
        &[("clients", "client", "append")],
        &lines("clients", &clients(n, "Seed")),
    )
    .await;
    s.run.assert_ok();
    emulator
        .records("client")
        .iter()
        .map(|c| c["uuid"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn every_object_in_every_mode() {
    let emulator = Emulator::start(Options::default()).await.unwrap();
    // insert: clients in bulk, then contacts (bulk) and contracts (one by one) that reference them
    let uuids = seed_clients(&emulator, 3).await;
    assert_eq!(emulator.count("client"), 3);
    let contacts: Vec<Value> = (0..3).map(|i| json!({"clientId": uuids[i], "email": format!("p{i}@acme.test"), "firstName": "Pat"})).collect();
    let contracts: Vec<Value> = (0..3).map(|i| json!({"clientId": uuids[i], "name": format!("Deal {i}"), "amount": 1000.5, "startDate": "2025-01-01", "endDate": "2025-12-31", "externalId": format!("K-{i}")})).collect();
    let mut input = lines("contacts", &contacts);
    input.extend(lines("contracts", &contracts));
    input.push(state_line("contracts", 1));
    let s = sync(
        &emulator,
        json!({}),
        &[
            ("contacts", "contact", "append"),
            ("contracts", "contract", "append"),
        ],
        &input,
    )
    .await;
    s.run.assert_ok();
    assert_eq!(s.run.states().len(), 1);
    assert_eq!(emulator.count("contact"), 3);
    assert_eq!(emulator.count("contract"), 3);
    assert_eq!(emulator.stats()["POST /v2/contact/bulk"]["201"], 1);
    assert_eq!(emulator.stats()["POST /v2/contract"]["201"], 3);

    // update: each object by uuid; fields left out stay
    let contact_uuid = emulator.records("contact")[0]["uuid"]
        .as_str()
        .unwrap()
        .to_owned();
    let contract_uuid = emulator.records("contract")[0]["uuid"]
        .as_str()
        .unwrap()
        .to_owned();
    let input = vec![
        record_line("c", &json!({"uuid": uuids[0], "city": "Denver"})),
        record_line("p", &json!({"uuid": contact_uuid, "title": "CTO"})),
        record_line("k", &json!({"uuid": contract_uuid, "amount": 2000})),
    ];
    let s = sync(
        &emulator,
        json!({}),
        &[
            ("c", "client", "update"),
            ("p", "contact", "update"),
            ("k", "contract", "update"),
        ],
        &input,
    )
    .await;
    s.run.assert_ok();
    let client = &emulator.records("client")[0];
    assert_eq!(
        (client["city"].as_str(), client["name"].as_str()),
        (Some("Denver"), Some("Seed 0"))
    );
    assert_eq!(emulator.records("contact")[0]["title"], "CTO");
    assert_eq!(emulator.records("contract")[0]["amount"], 2000);

    // upsert: natural keys match existing records; unknown keys create
    let input = vec![
        record_line(
            "c",
            &json!({"externalId": "Seed-1", "name": "Seed 1", "city": "Lyon"}),
        ),
        record_line("c", &json!({"name": "Seed 2", "zip": "80202"})),
        // Creating by upsert needs status and active: nothing is filled in on upsert.
        record_line(
            "c",
            &json!({"name": "Brand New", "status": "TRIAL", "active": true}),
        ),
        record_line(
            "p",
            &json!({"clientId": uuids[1], "email": "P1@ACME.test", "lastName": "Lee"}),
        ),
        record_line(
            "p",
            &json!({"clientId": uuids[1], "email": "new@acme.test"}),
        ),
        record_line(
            "k",
            &json!({"clientId": uuids[2], "externalId": "K-2", "amount": 5}),
        ),
        record_line(
            "k",
            &json!({"clientId": uuids[2], "externalId": "K-9", "name": "Extra"}),
        ),
    ];
    let s = sync(
        &emulator,
        json!({}),
        &[
            ("c", "client", "append_dedup"),
            ("p", "contact", "append_dedup"),
            ("k", "contract", "append_dedup"),
        ],
        &input,
    )
    .await;
    s.run.assert_ok();
    let clients = emulator.records("client");
    assert_eq!(clients.len(), 4);
    assert_eq!(clients[1]["city"], "Lyon");
    assert_eq!(clients[2]["zip"], "80202");
    assert_eq!(emulator.count("contact"), 4);
    assert_eq!(emulator.records("contact")[1]["lastName"], "Lee");
    assert_eq!(emulator.count("contract"), 4);
    // Contracts go one request each, concurrently: look them up by key, not by position.
    let k2 = emulator
        .records("contract")
        .into_iter()
        .find(|k| k["externalId"] == "K-2")
        .unwrap();
    assert_eq!(k2["amount"], 5);
    assert!(s.rejected.is_empty(), "{:?}", s.rejected);
}

#[tokio::test]
async fn one_bad_record_at_every_position_of_a_batch() {
    let emulator = Emulator::start(Options::default()).await.unwrap();
    // 100 batches of 100; batch k holds its one bad record (a timezone only the API can judge)
    // at position k.
    let mut records = clients(10_000, "Bisect");
    for k in 0..100 {
        records[k * 100 + k]["timezone"] = json!("Mars/Olympus_Mons");
    }
    let s = sync(
        &emulator,
        json!({"max_concurrency": 4}),
        &[("clients", "client", "append")],
        &lines("clients", &records),
    )
    .await;
    s.run.assert_ok();
    assert_eq!(emulator.count("client"), 9_900);
    assert_eq!(s.rejected.len(), 100);
    let mut lines_rejected: Vec<u64> = s
        .rejected
        .iter()
        .map(|r| r["line"].as_u64().unwrap())
        .collect();
    lines_rejected.sort();
    let expected: Vec<u64> = (0..100).map(|k| (k * 100 + k + 1) as u64).collect();
    assert_eq!(lines_rejected, expected);
    for r in &s.rejected {
        assert_eq!(r["http_status"], 400);
        assert!(r["reason"].as_str().unwrap().contains("timezone"), "{r}");
        assert_eq!(r["record"]["timezone"], "Mars/Olympus_Mons");
        assert_eq!(r["stream"], "clients");
    }
    let stored: std::collections::HashSet<String> = emulator
        .records("client")
        .iter()
        .map(|c| c["externalId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(stored.len(), 9_900, "no duplicates, no losses");
    // Bisection costs about 2·log2(100) requests per bad record, not one per record.
    let bulk = emulator.stats()["POST /v2/client/bulk"]
        .values()
        .sum::<u64>();
    assert!(bulk <= 100 * 16, "{bulk} bulk requests");
}

#[tokio::test]
async fn several_bad_records_in_one_batch() {
    let emulator = Emulator::start(Options::default()).await.unwrap();
    let uuids = seed_clients(&emulator, 1).await;
    let mut contacts: Vec<Value> = (0..100)
        .map(|i| json!({"clientId": uuids[0], "email": format!("c{i}@x.test")}))
        .collect();
    for bad in [0, 1, 50, 98, 99] {
        contacts[bad]["clientId"] = json!("no-such-client");
    }
    let s = sync(
        &emulator,
        json!({}),
        &[("contacts", "contact", "append")],
        &lines("contacts", &contacts),
    )
    .await;
    s.run.assert_ok();
    assert_eq!(emulator.count("contact"), 95);
    let mut rejected: Vec<u64> = s
        .rejected
        .iter()
        .map(|r| r["line"].as_u64().unwrap())
        .collect();
    rejected.sort();
    assert_eq!(rejected, vec![1, 2, 51, 99, 100]);
    assert!(s.rejected[0]["reason"]
        .as_str()
        .unwrap()
        .contains("names no client"));
    let warns = s.run.logs("WARN");
    assert!(
        warns
            .iter()
            .any(|w| w.contains("stream `contacts`, line 51")),
        "{warns:?}"
    );
}

#[tokio::test]
async fn records_the_schema_refuses_are_never_sent() {
    let emulator = Emulator::start(Options::default()).await.unwrap();
    let input = vec![
        record_line("clients", &json!({"name": "Good"})),
        record_line("clients", &json!({"name": "x".repeat(300)})),
        record_line(
            "clients",
            &json!({"name": "Bad status", "status": "DORMANT"}),
        ),
        record_line(
            "clients",
            &json!({"name": "Bad date", "inceptionDate": "2023-02-30"}),
        ),
        record_line("clients", &json!({"city": "No name"})),
        record_line("clients", &json!({"name": "Stray", "colour": "red"})),
        "this is not json".to_owned(),
        record_line("unknown_stream", &json!({"name": "Lost?"})),
        state_line("clients", 7),
    ];
    let s = sync(
        &emulator,
        json!({}),
        &[("clients", "client", "append")],
        &input,
    )
    .await;
    s.run.assert_ok();
    assert_eq!(emulator.count("client"), 1);
    assert_eq!(
        emulator.stats()["POST /v2/client/bulk"]["201"],
        1,
        "only the good record was sent"
    );
    let reasons: Vec<&str> = s
        .rejected
        .iter()
        .map(|r| r["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons.len(), 7, "{reasons:?}");
    assert!(reasons[0].contains("`name`") && reasons[0].contains("255"));
    assert!(reasons[1].contains("`status`"));
    assert!(reasons[2].contains("`inceptionDate`"));
    assert_eq!(reasons[3], "field `name` is required to insert a client");
    assert!(reasons[4].contains("`colour`"));
    assert!(reasons[5].contains("not a valid Airbyte message"));
    assert!(reasons[6].contains("`unknown_stream`"));
    let stats = &s.run.states()[0]["destinationStats"];
    // The state counts its own stream's records: not the line that names none, nor the
    // record of a stream outside the catalog (rejected and kept all the same).
    assert_eq!(
        stats,
        &json!({"recordCount": 1.0, "rejectedRecordCount": 5.0})
    );
    assert!(
        !s.run.stdout.contains(&"x".repeat(300)),
        "record payloads stay out of logs"
    );
}

#[tokio::test]
async fn update_and_upsert_refusals_are_rejections_not_retries() {
    let emulator = Emulator::start(Options::default()).await.unwrap();
    let input = vec![
        record_line(
            "c",
            &json!({"uuid": "00000000-dead-beef-0000-000000000000", "city": "X"}),
        ),
        record_line("c", &json!({"city": "no uuid"})),
    ];
    let mut s = sync(&emulator, json!({}), &[("c", "client", "update")], &input).await;
    s.run.assert_ok();
    assert_eq!(s.rejected.len(), 2);
    s.rejected.sort_by_key(|r| r["line"].as_u64());
    assert_eq!(s.rejected[0]["http_status"], 404);
    assert_eq!(s.rejected[1]["reason"], "uuid is required for update");
    // The account's one page of clients was read to compare rows with: a uuid it lacks is
    // refused with no request (a 404 is not retried either way).
    assert!(
        !emulator.stats().contains_key("PUT /v2/client/{uuid}"),
        "{:?}",
        emulator.stats()
    );
}

#[tokio::test]
async fn states_are_echoed_in_order_unchanged_but_for_destination_stats() {
    let emulator = Emulator::start(Options {
        jitter_ms: 20,
        seed: 3,
        ..Options::default()
    })
    .await
    .unwrap();
    let mut input = Vec::new();
    let mut sent_states = Vec::new();
    input.push(state_line("c", 100)); // a state with no records before it
    sent_states.push(input[0].clone());
    for round in 0..5u64 {
        for i in 0..30 {
            input.push(record_line(
                "c",
                &json!({"name": format!("S{round}-{i}"), "externalId": format!("S{round}-{i}"),
                    "status": "ACTIVE", "active": true}),
            ));
        }
        let state = json!({"type": "STATE", "state": {"type": "GLOBAL", "global": {"shared_state": {"lsn": 1234567890123456789u64, "ratio": 2.50},
            "stream_states": [{"stream_descriptor": {"name": "c", "namespace": null}, "stream_state": {"n": round}}]},
            "sourceStats": {"recordCount": 30.0}, "id": round + 1, "platform_extra": {"keep": [1, "two"]}}}).to_string();
        input.push(state.clone());
        sent_states.push(state);
    }
    input.push(record_line(
        "c",
        &json!({"name": "after the last state", "status": "ACTIVE", "active": true}),
    ));
    let s = sync(
        &emulator,
        json!({"max_concurrency": 8, "batch_size": 7}),
        &[("c", "client", "append_dedup")],
        &input,
    )
    .await;
    s.run.assert_ok();
    let states = s.run.states();
    assert_eq!(states.len(), 6, "every state, none invented");
    for (echoed, sent) in states.iter().zip(&sent_states) {
        let mut sent: Value = serde_json::from_str(sent).unwrap();
        let sent = sent["state"].as_object_mut().unwrap();
        let mut echoed = echoed.as_object().unwrap().clone();
        let stats = echoed.remove("destinationStats").unwrap();
        assert_eq!(&echoed, sent, "only destinationStats may change");
        let expected = if sent["id"] == 100 { 0.0 } else { 30.0 };
        assert_eq!(
            stats,
            json!({"recordCount": expected, "rejectedRecordCount": 0.0})
        );
    }
    // Numbers too big for a double survive the echo byte for byte.
    assert!(s.run.stdout.contains("1234567890123456789"));
    assert_eq!(emulator.count("client"), 151);
}

#[tokio::test]
async fn same_key_writes_keep_input_order_under_concurrency() {
    let emulator = Emulator::start(Options {
        jitter_ms: 15,
        seed: 9,
        ..Options::default()
    })
    .await
    .unwrap();
    let uuids = seed_clients(&emulator, 4).await;
    let mut input = Vec::new();
    for step in 0..40 {
        for uuid in &uuids {
            input.push(record_line("c", &json!({"uuid": uuid, "npsScore": step})));
        }
    }
    let s = sync(
        &emulator,
        json!({"max_concurrency": 8}),
        &[("c", "client", "update")],
        &input,
    )
    .await;
    s.run.assert_ok();
    for client in emulator.records("client") {
        assert_eq!(client["npsScore"], 39, "the last update wins: {client}");
    }
}

#[tokio::test]
async fn an_upsert_after_inserts_of_the_same_client_sees_them() {
    let emulator = Emulator::start(Options {
        jitter_ms: 10,
        ..Options::default()
    })
    .await
    .unwrap();
    let input = vec![
        record_line("new_clients", &json!({"name": "Acme"})),
        record_line("client_updates", &json!({"name": "Acme", "city": "Paris"})),
    ];
    let s = sync(
        &emulator,
        json!({}),
        &[
            ("new_clients", "client", "append"),
            ("client_updates", "client", "append_dedup"),
        ],
        &input,
    )
    .await;
    s.run.assert_ok();
    let clients = emulator.records("client");
    assert_eq!(clients.len(), 1, "{clients:?}");
    assert_eq!(clients[0]["city"], "Paris");
}

#[tokio::test]
async fn a_sync_with_no_records() {
    let emulator = Emulator::start(Options::default()).await.unwrap();
    let s = sync(
        &emulator,
        json!({}),
        &[("c", "client", "append")],
        &[state_line("c", 1)],
    )
    .await;
    s.run.assert_ok();
    assert_eq!(
        s.run.states()[0]["destinationStats"],
        json!({"recordCount": 0.0, "rejectedRecordCount": 0.0})
    );
    let s = sync(&emulator, json!({}), &[("c", "client", "append")], &[]).await;
    s.run.assert_ok();
    assert!(s.run.states().is_empty());
    // No record, no request: not even the custom field definitions were read.
    assert_eq!(emulator.request_count(), 0, "{:?}", emulator.stats());
}

/// An incremental sync with nothing new is the most common sync there is: with the API
/// unreachable (and auto-detection of its routes on), it still echoes its states and exits 0,
/// without a request. The first record then connects, and a failure to is reported as before.
#[tokio::test]
async fn an_empty_sync_needs_no_api() {
    let dir = scratch_dir("empty-sync");
    let config = write_json(
        &dir,
        "config.json",
        &config_for(
            "http://127.0.0.1:1/v2",
            "k",
            json!({"object_storage_config": {"storage_type": "None"}}),
        ),
    );
    let catalog = write_json(
        &dir,
        "catalog.json",
        &catalog(&[("c", "client", "append"), ("d", "contact", "append_dedup")]),
    );
    let log = r#"{"type":"LOG","log":{"level":"INFO","message":"from the source"}}"#;
    let input = [state_line("c", 1), log.to_owned(), state_line("d", 2)].join("\n") + "\n";
    let args = ["write", "--config", &config, "--catalog", &catalog];
    let started = std::time::Instant::now();
    let run = run_connector(&args, input.as_bytes()).await;
    let took = started.elapsed();
    run.assert_ok();
    let ids: Vec<&Value> = run.states().iter().map(|s| &s["id"]).collect();
    assert_eq!(ids, [1, 2]);
    eprintln!("empty sync with the API down: {took:?}");
    let input = state_line("c", 1) + "\n" + &record_line("c", &json!({"name": "A"})) + "\n";
    let run = run_connector(&args, input.as_bytes()).await;
    assert!(!run.status.success());
    let trace = run.error_trace().expect("a TRACE error");
    assert_eq!(trace["failure_type"], "transient_error", "{trace}");
    assert!(
        run.states().is_empty(),
        "no state before the connection failed"
    );
}

#[tokio::test]
async fn rejections_without_storage_fail_the_sync_after_writing_the_rest() {
    let emulator = Emulator::start(Options::default()).await.unwrap();
    let input = vec![
        record_line("c", &json!({"name": "Fine"})),
        record_line("c", &json!({"name": "Bad", "npsScore": 500})),
        state_line("c", 1),
    ];
    let s = sync(
        &emulator,
        json!({"rejected_records": {"storage_type": "None"}}),
        &[("c", "client", "append")],
        &input,
    )
    .await;
    assert!(!s.run.status.success());
    assert_eq!(emulator.count("client"), 1);
    assert_eq!(
        s.run.states().len(),
        1,
        "the state is emitted before the failure"
    );
    let error = s.run.error_trace().unwrap();
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("1 record(s) were rejected") && message.contains("npsScore"),
        "{message}"
    );
    assert_eq!(error["failure_type"], "config_error");
    let last = s.run.messages.last().unwrap();
    assert_eq!(last["type"], "TRACE", "the trace comes last");
}

#[tokio::test]
async fn throttling_with_retry_after_is_survived() {
    let emulator = Emulator::start(Options {
        max_in_flight: Some(1),
        latency_ms: 20,
        retry_after_secs: 1,
        ..Options::default()
    })
    .await
    .unwrap();
    let records = clients(300, "Throttle");
    let s = sync(
        &emulator,
        json!({"max_concurrency": 4, "batch_size": 50, "max_retries": 10}),
        &[("c", "client", "append")],
        &lines("c", &records),
    )
    .await;
    s.run.assert_ok();
    assert_eq!(emulator.count("client"), 300);
    let stats = emulator.stats();
    assert!(
        stats["POST /v2/client/bulk"].contains_key("429"),
        "{stats:?}"
    );
    assert!(
        s.run
            .logs("WARN")
            .iter()
            .any(|w| w.contains("429") && w.contains("it waits 1.0")),
        "Retry-After honoured by the throttled request (a cap in flight pauses no other): {:?}",
        s.run.logs("WARN")
    );
}

#[tokio::test]
async fn rate_budget_429s_are_survived() {
    let emulator = Emulator::start(Options {
        rate_limit: Some(5),
        retry_after_secs: 1,
        ..Options::default()
    })
    .await
    .unwrap();
    let uuids = seed_clients(&emulator, 1).await;
    let input: Vec<String> = (0..20)
        .map(|i| record_line("c", &json!({"uuid": uuids[0], "npsScore": i})))
        .collect();
    let s = sync(
        &emulator,
        json!({"max_retries": 10}),
        &[("c", "client", "update")],
        &input,
    )
    .await;
    s.run.assert_ok();
    assert_eq!(emulator.records("client")[0]["npsScore"], 19);
}

async fn survives(options: Options, extra: Value, mode: &str) -> (Emulator, Sync) {
    let emulator = Emulator::start(options).await.unwrap();
    let records = clients(400, "Fault");
    let s = sync(
        &emulator,
        extra,
        &[("c", "client", mode)],
        &lines("c", &records),
    )
    .await;
    s.run.assert_ok();
    (emulator, s)
}

fn external_ids(emulator: &Emulator) -> (usize, std::collections::HashSet<String>) {
    let clients = emulator.records("client");
    let ids = clients
        .iter()
        .map(|c| c["externalId"].as_str().unwrap().to_owned())
        .collect();
    (clients.len(), ids)
}

#[tokio::test]
async fn server_errors_are_retried() {
    let (emulator, _) = survives(
        Options {
            error_rate: 0.2,
            seed: 11,
            ..Options::default()
        },
        json!({"batch_size": 20, "max_retries": 10}),
        "append",
    )
    .await;
    let (count, ids) = external_ids(&emulator);
    assert_eq!((count, ids.len()), (400, 400));
    let stats = emulator.stats();
    assert!(
        stats["POST /v2/client/bulk"]
            .keys()
            .any(|s| s.starts_with('5')),
        "{stats:?}"
    );
}

#[tokio::test]
async fn dropped_connections_are_retried() {
    let (emulator, _) = survives(
        Options {
            drop_rate: 0.2,
            seed: 12,
            ..Options::default()
        },
        json!({"batch_size": 20, "max_retries": 10}),
        "append",
    )
    .await;
    let (count, ids) = external_ids(&emulator);
    assert_eq!((count, ids.len()), (400, 400));
    assert!(emulator.stats()["POST /v2/client/bulk"].contains_key("dropped"));
}

#[tokio::test]
async fn stalled_requests_time_out_and_are_retried() {
    let options = Options {
        stall_rate: 0.1,
        stall_secs: 5.0,
        seed: 13,
        ..Options::default()
    };
    let (emulator, _) = survives(
        options,
        json!({"batch_size": 50, "request_timeout_secs": 1, "max_retries": 10}),
        "append",
    )
    .await;
    let (count, ids) = external_ids(&emulator);
    assert_eq!((count, ids.len()), (400, 400));
}

#[tokio::test]
async fn applied_then_failed_inserts_are_looked_up_not_sent_twice() {
    let options = Options {
        applied_then_failed_rate: 0.2,
        seed: 14,
        ..Options::default()
    };
    let (emulator, _) = survives(
        options.clone(),
        json!({"batch_size": 20, "max_retries": 10}),
        "append",
    )
    .await;
    let (count, ids) = external_ids(&emulator);
    assert_eq!(
        (count, ids.len()),
        (400, 400),
        "a bulk create that applied is found by externalId, not sent again"
    );
    let lookups: u64 = emulator.stats()["GET /v1/clients"].values().sum();
    assert!(
        lookups >= 20,
        "the records of failed batches were looked up: {lookups}"
    );

    let (emulator, _) = survives(options, json!({"max_retries": 10}), "append_dedup").await;
    let (count, ids) = external_ids(&emulator);
    assert_eq!(
        (count, ids.len()),
        (400, 400),
        "upsert is idempotent: no duplicates"
    );
}

#[tokio::test]
async fn an_outage_past_the_retries_fails_transiently_after_emitting_committed_states() {
    // Contracts go one request each, which makes the cut-off exact: seed a client first.
    // Seeding: custom fields read (1), bulk (2); this sync: custom fields read (3), K0-K2 (4-6).
    let emulator = Emulator::start(Options {
        outage_after: Some(6),
        ..Options::default()
    })
    .await
    .unwrap();
    let uuid = seed_clients(&emulator, 1).await.remove(0);
    let mut input = Vec::new();
    for i in 0..6 {
        input.push(record_line(
            "k",
            &json!({"clientId": uuid, "name": format!("K{i}")}),
        ));
        input.push(state_line("k", i));
    }
    let s = sync(
        &emulator,
        json!({"max_concurrency": 1, "max_retries": 2}),
        &[("k", "contract", "append")],
        &input,
    )
    .await;
    assert!(!s.run.status.success());
    assert_eq!(
        emulator.count("contract"),
        3,
        "requests 4-6 landed, then the outage"
    );
    let ids: Vec<u64> = s
        .run
        .states()
        .iter()
        .map(|st| st["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, vec![0, 1, 2], "exactly the committed states");
    let error = s.run.error_trace().unwrap();
    assert_eq!(error["failure_type"], "transient_error");
    assert!(
        error["message"].as_str().unwrap().contains("503"),
        "{error}"
    );
}

#[tokio::test]
async fn a_revoked_api_key_mid_sync_is_a_config_error() {
    let emulator = Emulator::start(Options {
        revoke_after: Some(4),
        ..Options::default()
    })
    .await
    .unwrap();
    // 2 authorized requests (custom fields, bulk); then custom fields and K0 go through.
    let uuid = seed_clients(&emulator, 1).await.remove(0);
    let mut input = Vec::new();
    for i in 0..4 {
        input.push(record_line(
            "k",
            &json!({"clientId": uuid, "name": format!("K{i}")}),
        ));
        input.push(state_line("k", i));
    }
    let s = sync(
        &emulator,
        json!({"max_concurrency": 1}),
        &[("k", "contract", "append")],
        &input,
    )
    .await;
    assert!(!s.run.status.success());
    assert_eq!(emulator.count("contract"), 1);
    assert_eq!(s.run.states().len(), 1);
    let error = s.run.error_trace().unwrap();
    assert_eq!(error["failure_type"], "config_error");
    assert!(error["message"]
        .as_str()
        .unwrap()
        .contains("Global Settings > API Credentials"));
}

#[tokio::test]
async fn a_401_mid_sync_with_username_and_password_signs_in_again() {
    let emulator = Emulator::start(Options {
        revoke_after: Some(3),
        ..Options::default()
    })
    .await
    .unwrap();
    let options = emulator.options().clone();
    let uuid = seed_clients(&emulator, 1).await.remove(0);
    let input: Vec<String> = (0..6)
        .map(|i| record_line("k", &json!({"clientId": uuid, "name": format!("K{i}")})))
        .collect();
    let credentials = json!({"auth_type": "username_password", "username": options.username, "password": options.password, "auth_url": emulator.auth_url()});
    let s = sync(
        &emulator,
        json!({"credentials": credentials, "max_concurrency": 1}),
        &[("k", "contract", "append")],
        &input,
    )
    .await;
    s.run.assert_ok();
    assert_eq!(emulator.count("contract"), 6);
    assert_eq!(
        emulator.stats()["POST /v1/auth"]["200"],
        2,
        "one sign-in, one after the 401"
    );
    assert!(s
        .run
        .logs("WARN")
        .iter()
        .any(|w| w.contains("401") && w.contains("signing in again")));
}

#[tokio::test]
async fn unsupported_catalog_fails_before_reading_input() {
    let emulator = Emulator::start(Options::default()).await.unwrap();
    for (streams, expected) in [
        (vec![("deals", "deal", "append")], "`deals`"),
        (vec![("clients", "client", "overwrite")], "overwrite"),
        (vec![("clients", "client", "soft_delete")], "soft_delete"),
    ] {
        let s = sync(
            &emulator,
            json!({}),
            &streams,
            &[record_line("clients", &json!({"name": "x"}))],
        )
        .await;
        assert!(!s.run.status.success());
        let error = s.run.error_trace().unwrap();
        assert_eq!(error["failure_type"], "config_error");
        assert!(
            error["message"].as_str().unwrap().contains(expected),
            "{error}"
        );
    }
    assert_eq!(emulator.request_count(), 0);
}

/// With a proxy named in the environment, every request goes through it (by reqwest, which
/// honours the variables). The emulator stands in for the proxy, taking absolute-form requests:
/// nothing listens at the base URL (port 1), so a request that skipped the proxy would fail.
#[tokio::test]
async fn a_proxy_named_in_the_environment_carries_every_request() {
    let emulator = Emulator::start(Options::default()).await.unwrap();
    let dir = scratch_dir("proxy");
    let config = write_json(
        &dir,
        "config.json",
        &config_for(
            "http://localhost:1/v2",
            emulator.api_key(),
            json!({"rejected_records": {"storage_type": "None"}}),
        ),
    );
    let catalog = write_json(
        &dir,
        "catalog.json",
        &catalog(&[("clients", "client", "append")]),
    );
    let mut input = lines("clients", &clients(5, "Proxied"));
    input.push(state_line("clients", 1));
    let proxy = emulator.base_url().trim_end_matches("/v2").to_owned();
    let run = run_connector_with_env(
        &["write", "--config", &config, "--catalog", &catalog],
        (input.join("\n") + "\n").as_bytes(),
        &[("HTTP_PROXY", &proxy), ("NO_PROXY", ""), ("no_proxy", "")],
    )
    .await;
    run.assert_ok();
    run.assert_no_secret(emulator.api_key());
    assert_eq!(emulator.count("client"), 5);
    assert_eq!(run.states().len(), 1);
}

/// A deployment behind a proxy: with `HTTP_PROXY` naming a real forward proxy on loopback,
/// every request of a sync (route detection, custom fields, writes) goes through it.
#[tokio::test]
async fn a_sync_behind_a_forward_proxy_sends_every_request_through_it() {
    let emulator = Emulator::start(Options::default()).await.unwrap();
    let proxy = emukit::proxy::ForwardProxy::start().await.unwrap();
    let dir = scratch_dir("forward-proxy");
    let config = write_json(
        &dir,
        "config.json",
        &config_for(
            &emulator.base_url(),
            emulator.api_key(),
            json!({"rejected_records": {"storage_type": "None"}}),
        ),
    );
    let catalog = write_json(
        &dir,
        "catalog.json",
        &catalog(&[("clients", "client", "append_dedup")]),
    );
    let mut input = lines("clients", &clients(30, "Behind"));
    input.push(state_line("clients", 1));
    let run = run_connector_with_env(
        &["write", "--config", &config, "--catalog", &catalog],
        (input.join("\n") + "\n").as_bytes(),
        &[
            ("HTTP_PROXY", &proxy.url()),
            ("NO_PROXY", ""),
            ("no_proxy", ""),
        ],
    )
    .await;
    run.assert_ok();
    assert_eq!(emulator.count("client"), 30);
    assert!(proxy.carried() >= 30, "{} carried", proxy.carried());
    assert_eq!(
        proxy.carried(),
        emulator.request_count(),
        "every request went through the proxy"
    );
}

/// PyAirbyte's default path upserts rows that have no `active` column. A client the upsert
/// creates gets the insert's defaults (`status` ACTIVE, `active` from the status), whichever
/// route: a lookup knows the record is new, and the native upsert route's refusal naming only
/// the missing fields says so. A client that exists never gets them.
#[tokio::test]
async fn an_upsert_that_creates_gets_the_insert_defaults_and_an_update_never_does() {
    for (name, options, surface) in [
        ("native upsert", Options::default(), "v2_bulk"),
        ("v1 lookup", Options::default(), "v2_single"),
        (
            "v2 read",
            Options::account(false, false, true, false),
            "auto",
        ),
    ] {
        let emulator = Emulator::start(options).await.unwrap();
        let extra = json!({"api_surface": surface});
        let seed = record_line(
            "c",
            &json!({"name": "Old", "externalId": "X1", "status": "TRIAL"}),
        );
        sync(
            &emulator,
            extra.clone(),
            &[("c", "client", "append")],
            &[seed],
        )
        .await
        .run
        .assert_ok();
        let rows = [
            json!({"name": "Old renamed", "externalId": "X1"}),
            json!({"name": "New", "externalId": "X2"}),
            json!({"name": "Gone", "externalId": "X3", "status": "TERMINATED"}),
        ];
        let s = sync(
            &emulator,
            extra,
            &[("c", "client", "append_dedup")],
            &lines("c", &rows),
        )
        .await;
        s.run.assert_ok();
        assert!(s.rejected.is_empty(), "{name}: {:?}", s.rejected);
        let mut got: Vec<(String, String, bool)> = emulator
            .records("client")
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().unwrap().to_owned(),
                    c["status"].as_str().unwrap().to_owned(),
                    c["active"].as_bool().unwrap(),
                )
            })
            .collect();
        got.sort();
        let want = [
            ("Gone", "TERMINATED", false),
            ("New", "ACTIVE", true),
            ("Old renamed", "TRIAL", true),
        ]
        .map(|(n, s, a)| (n.to_owned(), s.to_owned(), a));
        assert_eq!(got, want, "{name}");
    }
}

/// Every mode, with and without the look-ups that learn whether a failed create landed: an
/// API that goes down for good mid-sync ends it with one `transient_error`, within the retries
/// (a look-up spends the create's), never by waiting out each work unit's own retries.
#[tokio::test]
async fn an_api_that_stays_down_ends_the_sync_in_every_mode() {
    let cases = [
        (
            "client",
            "append",
            "clients in bulk, then look-ups by externalId",
        ),
        (
            "contract",
            "append",
            "contracts one by one, which nothing can look up",
        ),
        ("client", "update", "clients updated by uuid"),
        ("client", "append_dedup", "clients upserted"),
    ];
    for (object, mode, what) in cases {
        let emulator = Emulator::start(Options::default()).await.unwrap();
        let uuids = seed_clients(&emulator, 50).await;
        emulator.fail_after(15);
        let (input, states) = records_with_states("rows", 3000, 100, |i| {
            let uuid = &uuids[i % uuids.len()];
            match (object, mode) {
                ("contract", _) => json!({"clientId": uuid, "name": format!("Deal {i}")}),
                (_, "update") => json!({"uuid": uuid, "name": format!("Down {i}")}),
                _ => json!({"name": format!("Down {i}"), "externalId": format!("Down-{i}")}),
            }
        });
        let extra = json!({"batch_size": 50});
        assert_outage_ends(what, states, async {
            let s = sync(&emulator, extra, &[("rows", object, mode)], &input).await;
            assert!(s.rejected.is_empty(), "{what}: an outage rejects no record");
            s.run
        })
        .await;
    }
}

/// The reconcile toolkit's promise (issue 27): a dry run counts what the sync then does and
/// writes nothing; once the rows read ahead outnumber the listing's pages, the sync sends one
/// upsert a changed client, with only what changed; a re-run writes nothing and spends the
/// search's one page.
#[tokio::test]
async fn a_rerun_writes_nothing_and_a_dry_run_counts_what_the_sync_then_does() {
    let emulator = Emulator::start(Options::default()).await.unwrap();
    let row = |i: usize, city: &str| {
        record_line(
            "clients",
            &json!({"externalId": format!("X{i}"), "name": format!("Client {i}"), "status": "ACTIVE", "active": true, "city": city}),
        )
    };
    let rows: Vec<String> = (0..300).map(|i| row(i, "Denver")).collect();
    let changed: Vec<String> = (0..300)
        .map(|i| row(i, if i % 30 == 0 { "Boulder" } else { "Denver" }))
        .collect();
    let requests = integration_tests::harness::assert_reconciles(
        || emulator.stats(),
        |dry_run, lines| {
            let emulator = &emulator;
            async move {
                sync(
                    emulator,
                    json!({"dry_run": dry_run}),
                    &[("clients", "client", "append_dedup")],
                    &lines,
                )
                .await
                .run
            }
        },
        "clients",
        &rows,
        &changed,
        10,
        1,
    )
    .await;
    eprintln!("re-run of 300 unchanged rows: {requests} requests beyond a sync of none");
    let clients = emulator.records("client");
    let boulder = clients.iter().filter(|c| c["city"] == "Boulder").count();
    assert_eq!(boulder, 10);
}
