//! The three write surfaces an account may have (v2 bulk + upsert, v2 single, v1), detected
//! by the connector and pinned by `api_surface`: the same records land whichever it uses, a
//! v1 replace never nulls what a record did not carry, and a missing route is a config error,
//! never a rejection.

use integration_tests::harness::{
    config_for, record_line, run_connector, scratch_dir, state_line, stream_summary, sync,
    write_json,
};
use integration_tests::{Emulator, Options};
use serde_json::{json, Map, Value};

fn uuid_of(emulator: &Emulator, object: &str, field: &str, value: &str) -> String {
    emulator
        .records(object)
        .into_iter()
        .find(|r| r[field] == value)
        .unwrap_or_else(|| panic!("no {object} with {field} {value}"))["uuid"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Every object and mode the account supports, in four syncs, through auto-detection. Returns
/// the records that landed, ids replaced by natural keys, so surfaces can be compared.
/// `contracts`: whether the account takes contracts at all; `contract_upsert`: whether it has
/// their upsert route (contracts have no v1 to look them up by).
async fn scenario(emulator: &Emulator, contracts: bool, contract_upsert: bool) -> Value {
    let clients = [
        json!({"name": "One", "externalId": "E1", "city": "Denver",
            "custom": {"industry__cs": "Retail", "seats__cs": 10}}),
        json!({"name": "Two", "externalId": "E2", "status": "TRIAL", "zip": "80202"}),
        json!({"name": "Three", "externalId": "E3", "status": "TERMINATED"}),
    ];
    let lines: Vec<String> = clients.iter().map(|c| record_line("c", c)).collect();
    let s = sync(emulator, json!({}), &[("c", "client", "append")], &lines).await;
    s.run.assert_ok();
    let (e1, e2) = (
        uuid_of(emulator, "client", "externalId", "E1"),
        uuid_of(emulator, "client", "externalId", "E2"),
    );

    let mut lines = vec![
        record_line(
            "p",
            &json!({"clientId": e1, "email": "a@x.test", "firstName": "Ann"}),
        ),
        record_line(
            "p",
            &json!({"clientId": e2, "email": "b@x.test", "title": "CFO"}),
        ),
    ];
    let mut streams = vec![("p", "contact", "append")];
    if contracts {
        lines.push(record_line(
            "k",
            &json!({"clientId": e1, "externalId": "K1", "name": "Deal", "amount": 100}),
        ));
        streams.push(("k", "contract", "append"));
    }
    let s = sync(emulator, json!({}), &streams, &lines).await;
    s.run.assert_ok();

    let a = uuid_of(emulator, "contact", "email", "a@x.test");
    let mut lines = vec![
        record_line(
            "c",
            &json!({"uuid": e1, "npsScore": 50, "custom": {"seats__cs": 12}}),
        ),
        record_line("p", &json!({"uuid": a, "title": "CTO"})),
    ];
    let mut streams = vec![("c", "client", "update"), ("p", "contact", "update")];
    if contracts {
        let k1 = uuid_of(emulator, "contract", "externalId", "K1");
        lines.push(record_line("k", &json!({"uuid": k1, "amount": 150})));
        streams.push(("k", "contract", "update"));
    }
    let s = sync(emulator, json!({}), &streams, &lines).await;
    s.run.assert_ok();

    let mut lines = vec![
        record_line(
            "c",
            &json!({"externalId": "E2", "name": "Two renamed", "city": "Lyon"}),
        ),
        record_line(
            "c",
            &json!({"externalId": "E4", "name": "Four", "status": "ACTIVE", "active": true}),
        ),
        record_line(
            "p",
            &json!({"clientId": e2, "email": "B@X.test", "lastName": "Lee"}),
        ),
        record_line("p", &json!({"clientId": e2, "email": "c@x.test"})),
        state_line("p", 1),
    ];
    let mut streams = vec![
        ("c", "client", "append_dedup"),
        ("p", "contact", "append_dedup"),
    ];
    if contract_upsert {
        lines.insert(
            4,
            record_line(
                "k",
                &json!({"clientId": e2, "externalId": "K1", "amount": 175}),
            ),
        );
        streams.push(("k", "contract", "append_dedup"));
    }
    let s = sync(emulator, json!({}), &streams, &lines).await;
    s.run.assert_ok();
    assert_eq!(s.run.states().len(), 1);
    assert!(s.rejected.is_empty(), "{:?}", s.rejected);
    landed(emulator)
}

/// The records of every object, without ids, parents named by externalId, in key order.
fn landed(emulator: &Emulator) -> Value {
    let externals: Map<String, Value> = emulator
        .records("client")
        .into_iter()
        .map(|c| {
            (
                c["uuid"].as_str().unwrap().to_owned(),
                c["externalId"].clone(),
            )
        })
        .collect();
    let mut all = Map::new();
    for (object, key) in [
        ("client", "externalId"),
        ("contact", "email"),
        ("contract", "externalId"),
    ] {
        let mut records: Vec<Value> = emulator
            .records(object)
            .into_iter()
            .map(|mut r| {
                let fields = r.as_object_mut().unwrap();
                fields.remove("id");
                fields.remove("uuid");
                if let Some(Value::String(parent)) = fields.get("clientId") {
                    let parent = externals[parent].clone();
                    fields.insert("clientId".into(), parent);
                }
                r
            })
            .collect();
        records.sort_by_key(|r| r[key].as_str().unwrap_or_default().to_lowercase());
        all.insert(object.into(), Value::Array(records));
    }
    Value::Object(all)
}

#[tokio::test]
async fn the_same_records_land_on_every_surface() {
    let full = Emulator::start(Options::default()).await.unwrap();
    let expected = scenario(&full, true, true).await;
    // Spot checks of the expected result itself.
    let clients = expected["client"].as_array().unwrap();
    assert_eq!(clients.len(), 4);
    assert_eq!(clients[0]["npsScore"], 50);
    assert_eq!(
        clients[0]["city"], "Denver",
        "an update keeps what it did not carry"
    );
    assert_eq!(
        clients[0]["custom"],
        json!({"industry__cs": "Retail", "seats__cs": 12})
    );
    assert_eq!(
        (
            clients[0]["status"].as_str(),
            clients[0]["active"].as_bool()
        ),
        (Some("ACTIVE"), Some(true))
    );
    assert_eq!(clients[1]["name"], "Two renamed");
    assert_eq!(
        (clients[1]["zip"].as_str(), clients[1]["city"].as_str()),
        (Some("80202"), Some("Lyon"))
    );
    assert_eq!(
        clients[2]["active"], false,
        "a TERMINATED client is inserted inactive"
    );
    let contacts = expected["contact"].as_array().unwrap();
    assert_eq!(contacts.len(), 3);
    assert_eq!(contacts[1]["email"], "B@X.test");
    assert_eq!(
        (
            contacts[1]["title"].as_str(),
            contacts[1]["lastName"].as_str()
        ),
        (Some("CFO"), Some("Lee"))
    );
    assert_eq!(expected["contract"][0]["amount"], 175);

    // Without an upsert route, contracts stop after their update.
    let full = Emulator::start(Options::default()).await.unwrap();
    let contracts_without_upsert = scenario(&full, true, false).await["contract"].clone();
    assert_eq!(contracts_without_upsert[0]["amount"], 150);
    for (name, options, contracts, contract_upsert) in [
        (
            "v2 single, upsert by v1 lookup",
            Options::account(false, false, true, true),
            true,
            false,
        ),
        (
            "bulk off, upsert on",
            Options::account(false, true, true, false),
            true,
            true,
        ),
        (
            "v1 only",
            Options::account(false, false, false, true),
            false,
            false,
        ),
        (
            "v2 single, no v1: upsert by a v2 read",
            Options::account(false, false, true, false),
            true,
            false,
        ),
    ] {
        let emulator = Emulator::start(options).await.unwrap();
        let got = scenario(&emulator, contracts, contract_upsert).await;
        for object in ["client", "contact"] {
            assert_eq!(got[object], expected[object], "{name}: {object}s differ");
        }
        let contracts_expected = match (contracts, contract_upsert) {
            (true, true) => expected["contract"].clone(),
            (true, false) => contracts_without_upsert.clone(),
            (false, _) => json!([]),
        };
        assert_eq!(
            got["contract"], contracts_expected,
            "{name}: contracts differ"
        );
        let stats = emulator.stats();
        let used = |route: &str| stats.keys().any(|k| k.starts_with(route));
        match name {
            "v1 only" => {
                assert!(
                    used("POST /v1/clients") && used("PUT /v1/clients/{id}"),
                    "{stats:?}"
                );
                assert!(used("PATCH /v1/customfield/value/client/{id}"), "{stats:?}");
                assert!(!stats.keys().any(|k| k.starts_with("PUT /v2")), "{stats:?}");
            }
            "v2 single, no v1: upsert by a v2 read" => {
                assert!(
                    used("GET /v2/client/search") && used("GET /v2/contact/search"),
                    "{stats:?}"
                );
                assert_eq!(stats["POST /v2/client"]["201"], 4, "{stats:?}");
                assert_eq!(stats["POST /v2/contact"]["201"], 3, "{stats:?}");
            }
            "v2 single, upsert by v1 lookup" => {
                assert!(
                    used("GET /v1/clients") && used("GET /v1/contacts/search"),
                    "{stats:?}"
                );
                assert_eq!(stats["POST /v2/client"]["201"], 4, "{stats:?}");
            }
            _ => assert!(
                stats["POST /v2/client/upsert"].contains_key("200"),
                "{stats:?}"
            ),
        }
    }
}

#[tokio::test]
async fn a_v1_replace_never_nulls_what_the_record_did_not_carry() {
    let emulator = Emulator::start(Options::account(false, false, false, true))
        .await
        .unwrap();
    let client = json!({"name": "Keep", "externalId": "K", "city": "Oslo", "zip": "0150",
        "timezone": "Europe/Oslo", "npsScore": 10, "custom": {"segment__cs": "SMB"}});
    let s = sync(
        &emulator,
        json!({}),
        &[("c", "client", "append")],
        &[record_line("c", &client)],
    )
    .await;
    s.run.assert_ok();
    let uuid = uuid_of(&emulator, "client", "externalId", "K");
    let s = sync(
        &emulator,
        json!({}),
        &[("c", "client", "update")],
        &[record_line("c", &json!({"uuid": uuid, "npsScore": 90}))],
    )
    .await;
    s.run.assert_ok();
    let stored = &emulator.records("client")[0];
    for (field, value) in [
        ("city", json!("Oslo")),
        ("zip", json!("0150")),
        ("timezone", json!("Europe/Oslo")),
        ("status", json!("ACTIVE")),
        ("active", json!(true)),
        ("npsScore", json!(90)),
        ("custom", json!({"segment__cs": "SMB"})),
    ] {
        assert_eq!(stored[field], value, "{field} after a v1 update: {stored}");
    }
    assert_eq!(emulator.stats()["PUT /v1/clients/{id}"]["200"], 1);
}

#[tokio::test]
async fn no_route_left_is_a_config_error_before_any_state_and_no_rejection() {
    let emulator = Emulator::start(Options::account(false, false, false, false))
        .await
        .unwrap();
    let lines = vec![
        record_line("c", &json!({"name": "A"})),
        state_line("c", 1),
        record_line("c", &json!({"name": "B"})),
        state_line("c", 2),
    ];
    let s = sync(&emulator, json!({}), &[("c", "client", "append")], &lines).await;
    assert_eq!(s.run.status.code(), Some(1));
    let error = s.run.error_trace().unwrap();
    assert_eq!(error["failure_type"], "config_error");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("stream `c`") && message.contains("insert a client"),
        "{message}"
    );
    assert!(
        message.contains("Routes tried: POST /v2/client/bulk → 404, POST /v2/client/upsert → 404, POST /v2/client → 404, POST /v1/clients → 404."),
        "{message}"
    );
    assert!(s.run.states().is_empty());
    assert!(s.rejected.is_empty());
    assert_eq!(emulator.count("client"), 0);

    // Pinned to a surface the account lacks, the first write meets the 404 itself.
    let emulator = Emulator::start(Options::account(false, true, true, true))
        .await
        .unwrap();
    let s = sync(
        &emulator,
        json!({"api_surface": "v2_bulk"}),
        &[("c", "client", "append")],
        &lines,
    )
    .await;
    assert_eq!(s.run.status.code(), Some(1));
    let error = s.run.error_trace().unwrap();
    assert_eq!(error["failure_type"], "config_error");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("POST /v2/client/bulk answered 404"),
        "{message}"
    );
    assert!(
        s.run.states().is_empty(),
        "no state for records that never landed"
    );
    assert!(s.rejected.is_empty(), "a missing route is not a rejection");

    // Contracts have no v1 path: a v1-only account cannot take them, and says so at once.
    let emulator = Emulator::start(Options::account(false, false, false, true))
        .await
        .unwrap();
    let s = sync(
        &emulator,
        json!({}),
        &[("k", "contract", "append")],
        &[record_line("k", &json!({"clientId": "x"}))],
    )
    .await;
    let message = s.run.error_trace().unwrap()["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.contains("contract") && message.contains("v1"),
        "{message}"
    );
}

#[tokio::test]
async fn check_says_which_surface_each_object_uses_and_creates_nothing() {
    for (options, expected) in [
        (Options::default(), "client: insert by v2 bulk, update by v2 PUT, upsert by v2 upsert"),
        (Options::account(false, false, true, true), "contact: insert by v2 single, update by v2 PUT, upsert by v1 lookup then create or update"),
        (Options::account(false, false, false, true), "contract: insert by no create route"),
    ] {
        let emulator = Emulator::start(options).await.unwrap();
        let dir = scratch_dir("check-surface");
        let config = write_json(&dir, "config.json", &config_for(&emulator.base_url(), emulator.api_key(), json!({})));
        let run = run_connector(&["check", "--config", &config], b"").await;
        let status = &run.of_type("CONNECTION_STATUS")[0]["connectionStatus"];
        assert_eq!(status["status"], "SUCCEEDED", "{status}");
        let message = status["message"].as_str().unwrap();
        assert!(message.contains(expected), "{message}");
        assert!(message.contains("(detected)"), "{message}");
        for object in ["client", "contact", "contract"] {
            assert_eq!(emulator.count(object), 0, "check created a {object}");
        }
    }
}

#[tokio::test]
async fn v1_takes_a_signed_in_token_like_a_key() {
    let emulator = Emulator::start(Options::account(false, false, false, true))
        .await
        .unwrap();
    let options = emulator.options().clone();
    let credentials = json!({"auth_type": "username_password", "username": options.username,
        "password": options.password, "auth_url": emulator.auth_url()});
    let s = sync(
        &emulator,
        json!({"credentials": credentials}),
        &[("c", "client", "append_dedup")],
        &[
            record_line(
                "c",
                &json!({"name": "T", "externalId": "T1", "status": "ACTIVE", "active": true}),
            ),
            record_line("c", &json!({"name": "T renamed", "externalId": "T1"})),
        ],
    )
    .await;
    s.run.assert_ok();
    let clients = emulator.records("client");
    assert_eq!(clients.len(), 1);
    assert_eq!(clients[0]["name"], "T renamed");
    assert_eq!(emulator.stats()["PUT /v1/clients/{id}"]["200"], 1);
}

/// Where there is no upsert route, an upsert looks the record up (v1) or finds it in a v2
/// read; a dry run does the same reads and writes nothing, and its counts are the sync's.
#[tokio::test]
async fn a_dry_run_without_the_upsert_route_looks_up_and_counts_what_the_sync_then_does() {
    for (name, options) in [
        (
            "upsert by v1 lookup",
            Options::account(false, false, true, true),
        ),
        ("v1 only", Options::account(false, false, false, true)),
        (
            "upsert by a v2 read",
            Options::account(false, false, true, false),
        ),
    ] {
        let emulator = Emulator::start(options).await.unwrap();
        let first = [
            json!({"name": "One", "externalId": "E1"}),
            json!({"name": "Two", "externalId": "E2"}),
        ];
        let lines: Vec<String> = first.iter().map(|c| record_line("c", c)).collect();
        sync(&emulator, json!({}), &[("c", "client", "append")], &lines)
            .await
            .run
            .assert_ok();
        let lines = vec![
            record_line(
                "c",
                &json!({"externalId": "E2", "name": "Two", "city": "Lyon"}),
            ),
            record_line("c", &json!({"externalId": "E4", "name": "Four"})),
            state_line("c", 1),
        ];
        let streams = [("c", "client", "append_dedup")];
        let before = emulator.records("client");
        let dry = sync(&emulator, json!({"dry_run": true}), &streams, &lines).await;
        dry.run.assert_ok();
        // (The connection's route probes, empty bodies that create nothing, still go.)
        assert_eq!(
            emulator.records("client"),
            before,
            "{name}: a dry run wrote"
        );
        assert!(
            dry.run.states().is_empty(),
            "{name}: a dry run echoed a state"
        );
        let planned = stream_summary(&dry.run, "c").unwrap();
        assert!(
            planned.starts_with("1 created, 1 updated (city"),
            "{name}: {planned}"
        );
        let real = sync(&emulator, json!({}), &streams, &lines).await;
        real.run.assert_ok();
        assert_eq!(stream_summary(&real.run, "c").unwrap(), planned, "{name}");
        let after = emulator.records("client");
        assert_eq!(after.len(), 3, "{name}");
        assert!(
            after
                .iter()
                .any(|c| c["externalId"] == "E2" && c["city"] == "Lyon"),
            "{name}"
        );
    }
}
