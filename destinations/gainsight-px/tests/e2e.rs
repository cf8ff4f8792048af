//! destination-gainsight-px end to end: the real binary against the emulator over HTTP on
//! loopback. Every run's output is kept for the AirbyteMessage check and the secret search.

use emukit::harness::{
    self, bin_named, merged, record_line, rejected_in, run_bin, run_command, run_write,
    scratch_dir, state_counts, state_line, Run,
};
use gainsight_px_emulator::{Emulator, Options};
use serde_json::{json, Value};
use std::path::PathBuf;

fn bin() -> PathBuf {
    bin_named("destination-gainsight-px")
}

fn config(emulator: &Emulator, extra: Value) -> Value {
    merged(emulator.connector_config(), extra)
}

async fn command(name: &str, config: &Value) -> Run {
    run_command(&bin(), name, config).await
}

/// A write of `lines` for `streams` (name, object, mode); the rejects file is in the dir.
async fn write(config: &Value, streams: &[(&str, &str, &str)], lines: &[String]) -> (Run, PathBuf) {
    run_write(&bin(), config, streams, lines).await
}

/// A config fragment keeping rejected records in `dir`.
fn local_rejects(dir: &std::path::Path) -> Value {
    json!({ "object_storage_config": harness::local_rejects(dir) })
}

#[tokio::test]
async fn spec_and_catalog_files_match_the_code() {
    let spec = run_bin(&bin(), &["spec"], b"", &[]).await;
    spec.assert_ok();
    let emulator = Emulator::start(Options::default()).await.unwrap();
    let discover = command("discover", &config(&emulator, json!({}))).await;
    discover.assert_ok();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("spec");
    let files = [
        ("spec.json", spec.of_type("SPEC")[0]["spec"].clone()),
        (
            "catalog.json",
            discover.of_type("DESTINATION_CATALOG")[0]["destination_catalog"].clone(),
        ),
    ];
    for (name, value) in files {
        let text = serde_json::to_string_pretty(&value).unwrap() + "\n";
        let path = dir.join(name);
        if std::env::var_os("UPDATE_SPEC").is_some() {
            std::fs::write(&path, &text).unwrap();
        }
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert_eq!(on_disk, text, "spec/{name} drifted: run `UPDATE_SPEC=1 cargo test -p destination-gainsight-px --test e2e spec_and_catalog`");
    }
}

#[tokio::test]
async fn check_reads_attributes_and_names_what_to_fix() {
    let emulator = Emulator::start(Options::default()).await.unwrap();
    let ok = command("check", &config(&emulator, json!({}))).await;
    ok.assert_ok();
    let status = &ok.of_type("CONNECTION_STATUS")[0]["connectionStatus"];
    assert_eq!(status["status"], "SUCCEEDED", "{status}");
    let message = status["message"].as_str().unwrap();
    assert!(
        message.contains("account: ")
            && message.contains("custom enabled")
            && message.contains("Write permission is proven only by the first write"),
        "{message}"
    );

    let bad = command(
        "check",
        &config(&emulator, json!({"api_key": "not-the-key-123"})),
    )
    .await;
    let status = &bad.of_type("CONNECTION_STATUS")[0]["connectionStatus"];
    assert_eq!(status["status"], "FAILED");
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .contains("rejected the API key"),
        "{status}"
    );
    bad.assert_no_secret("not-the-key-123");

    let nowhere = command(
        "check",
        &json!({"api_key": "k", "property_keys": ["AP-1"], "base_url": "http://127.0.0.1:1"}),
    )
    .await;
    let status = &nowhere.of_type("CONNECTION_STATUS")[0]["connectionStatus"];
    assert_eq!(status["status"], "FAILED");
    assert!(
        status["message"].as_str().unwrap().contains("refused"),
        "{status}"
    );
}

#[tokio::test]
async fn discover_types_enabled_custom_attributes_and_survives_an_api_down() {
    let emulator = Emulator::start(Options::default()).await.unwrap();
    let run = command("discover", &config(&emulator, json!({}))).await;
    let catalog = &run.of_type("DESTINATION_CATALOG")[0]["destination_catalog"];
    let operations = catalog["operations"].as_array().unwrap();
    assert_eq!(operations.len(), 6, "two objects, three modes");
    let account_upsert = operations
        .iter()
        .find(|op| op["object_name"] == "account" && op["sync_mode"] == "append_dedup")
        .unwrap();
    assert_eq!(account_upsert["matching_keys"], json!([["id"]]));
    let properties = &account_upsert["json_schema"]["properties"];
    assert_eq!(properties["seats"]["type"], json!(["number", "null"]));
    assert_eq!(
        properties["trialEnds"]["type"],
        json!(["string", "integer", "null"])
    );
    assert!(
        properties.get("legacyScore").is_none(),
        "a DELETED attribute is not published"
    );
    let user_insert = operations
        .iter()
        .find(|op| op["object_name"] == "user" && op["sync_mode"] == "append")
        .unwrap();
    assert!(
        user_insert["json_schema"]["properties"]
            .get("oldFlag")
            .is_none(),
        "DISABLED is not published"
    );
    assert_eq!(
        user_insert["json_schema"]["required"],
        json!(["identifyId"])
    );

    let down = command(
        "discover",
        &json!({"api_key": "k", "property_keys": ["AP-1"], "base_url": "http://127.0.0.1:1"}),
    )
    .await;
    down.assert_ok();
    assert!(
        down.logs("WARN")
            .iter()
            .any(|l| l.contains("customAttributes")),
        "{:?}",
        down.logs("WARN")
    );
    assert_eq!(
        down.of_type("DESTINATION_CATALOG")[0]["destination_catalog"]["operations"]
            .as_array()
            .unwrap()
            .len(),
        6
    );
}

#[tokio::test]
async fn accounts_then_users_land_with_dates_keys_and_custom_attributes() {
    let emulator = Emulator::start(Options::default()).await.unwrap();
    let lines = vec![
        record_line(
            "users",
            &json!({"identifyId": "u-1", "accountId": "acme", "email": "ana@acme.test", "signUpDate": "2024-05-01", "beta": "true"}),
        ),
        record_line(
            "accounts",
            &json!({"id": "acme", "name": "Acme", "renewalDate": "2025-01-01T00:00:00Z", "seats": 40, "trialEnds": 1714521600000i64, "location": {"city": "Portland", "postalCode": "97201"}}),
        ),
        state_line("accounts", 1),
        record_line(
            "accounts",
            &json!({"id": "globex", "name": "Globex", "plan": null}),
        ),
        record_line(
            "users",
            &json!({"identifyId": "u-2", "accountId": "globex", "type": "USER"}),
        ),
        state_line("users", 2),
    ];
    let (run, _) = write(
        &config(&emulator, json!({})),
        &[
            ("accounts", "account", "append"),
            ("users", "user", "append"),
        ],
        &lines,
    )
    .await;
    run.assert_ok();
    run.assert_no_secret(emulator.api_key());
    let accounts = emulator.records("accounts");
    assert_eq!(accounts.len(), 2);
    assert_eq!(accounts[0]["renewalDate"], json!(1_735_689_600_000i64));
    assert_eq!(
        accounts[0]["customAttributes"],
        json!({"seats": 40, "trialEnds": 1_714_521_600_000i64})
    );
    assert_eq!(accounts[0]["propertyKeys"], json!(["AP-EMULATOR-2"]));
    assert_eq!(accounts[0]["location"]["city"], "Portland");
    assert_eq!(accounts[0]["numberOfUsers"], 1);
    let users = emulator.records("users");
    assert_eq!(users.len(), 2);
    assert_eq!(users[0]["signUpDate"], json!(1_714_521_600_000i64));
    assert_eq!(users[0]["customAttributes"], json!({"beta": true}));
    let states = run.states();
    assert_eq!(states.len(), 2);
    // Each state counts its own stream: acme; then u-1 and u-2.
    assert_eq!(state_counts(states[0]), (1.0, 0.0));
    assert_eq!(state_counts(states[1]), (2.0, 0.0));
}

#[tokio::test]
async fn upsert_updates_or_creates_and_rejections_are_kept_with_their_reason() {
    let emulator = Emulator::start(Options::default()).await.unwrap();
    emulator.seed_record(
        "accounts",
        json!({"id": "acme", "name": "Acme", "plan": "basic", "propertyKeys": ["AP-EMULATOR-2"]}),
    );
    let dir = scratch_dir("px-rejects");
    let lines = vec![
        record_line("accounts", &json!({"id": "acme", "plan": "pro"})),
        record_line("accounts", &json!({"id": "new/one", "name": "Slash & Co"})),
        record_line(
            "accounts",
            &json!({"id": "bad", "name": "Bad", "legacyScore": 3}),
        ),
        record_line(
            "accounts",
            &json!({"id": "bad2", "name": "Bad", "renewalDate": "someday"}),
        ),
        state_line("accounts", 1),
        record_line("fixes", &json!({"id": "ghost", "plan": "pro"})),
        state_line("fixes", 2),
    ];
    let (run, _) = write(
        &config(&emulator, local_rejects(&dir)),
        &[
            ("accounts", "account", "append_dedup"),
            ("fixes", "account", "update"),
        ],
        &lines,
    )
    .await;
    run.assert_ok();
    let accounts = emulator.records("accounts");
    let acme = accounts.iter().find(|a| a["id"] == "acme").unwrap();
    assert_eq!(
        (acme["plan"].as_str(), acme["name"].as_str()),
        (Some("pro"), Some("Acme")),
        "a PUT merges"
    );
    assert!(
        accounts.iter().any(|a| a["id"] == "new/one"),
        "an id unfit for a path went by the body route"
    );
    let rejects = rejected_in(&dir);
    let reasons: Vec<&str> = rejects
        .iter()
        .map(|r| r["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(reasons[0].contains("`legacyScore`"), "{reasons:?}");
    assert!(
        reasons[1].contains("`renewalDate` is not a date"),
        "{reasons:?}"
    );
    assert!(reasons[2].contains("was not found"), "{reasons:?}");
    assert_eq!(rejects[2]["http_status"], 404);
    let states = run.states();
    assert_eq!(state_counts(states[0]), (2.0, 2.0));
    assert_eq!(state_counts(states[1]), (0.0, 1.0));
}

#[tokio::test]
async fn creates_that_applied_then_failed_make_no_duplicates_and_throttling_is_waited_out() {
    let emulator = Emulator::start(Options {
        applied_then_failed_rate: 0.3,
        throttle_burst: Some(vec![3, 6]),
        fail_nth: Some(9),
        ..Options::default()
    })
    .await
    .unwrap();
    let mut lines: Vec<String> = (0..30)
        .map(|i| {
            record_line(
                "accounts",
                &json!({"id": format!("a-{i}"), "name": format!("A {i}")}),
            )
        })
        .collect();
    lines.push(state_line("accounts", 1));
    let (run, _) = write(
        &config(&emulator, json!({})),
        &[("accounts", "account", "append")],
        &lines,
    )
    .await;
    run.assert_ok();
    let accounts = emulator.records("accounts");
    assert_eq!(accounts.len(), 30, "each account once");
    assert_eq!(state_counts(run.states()[0]), (30.0, 0.0));
    assert!(
        emulator.count_status("429") >= 4 && emulator.count_status("500 (applied)") > 0,
        "{:?}",
        emulator.stats()
    );
}

#[tokio::test]
async fn systemic_failures_end_the_sync_before_any_state() {
    // A URL whose write routes do not exist: not 1,000 rejections of a "successful" sync.
    let emulator = Emulator::start(Options {
        no_write_routes: true,
        ..Options::default()
    })
    .await
    .unwrap();
    let lines = vec![
        record_line("accounts", &json!({"id": "a", "name": "A"})),
        state_line("accounts", 1),
    ];
    let (run, _) = write(
        &config(&emulator, json!({})),
        &[("accounts", "account", "append")],
        &lines,
    )
    .await;
    assert!(!run.status.success());
    assert!(run.states().is_empty());
    let trace = run.error_trace().unwrap();
    assert_eq!(trace["failure_type"], "config_error");
    assert!(
        trace["message"]
            .as_str()
            .unwrap()
            .contains("has no such route"),
        "{trace}"
    );

    // A key with Read only: the first write says so and ends the sync.
    let emulator = Emulator::start(Options {
        html_403: true,
        ..Options::default()
    })
    .await
    .unwrap();
    let read_only = config(&emulator, json!({"api_key": emulator.read_only_key()}));
    let (run, _) = write(&read_only, &[("accounts", "account", "append")], &lines).await;
    assert!(!run.status.success());
    assert!(run.states().is_empty());
    let message = run.error_trace().unwrap()["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.contains("403") && message.contains("Write permission"),
        "{message}"
    );
    run.assert_no_secret(emulator.read_only_key());
}

#[tokio::test]
async fn an_empty_sync_makes_no_request() {
    let emulator = Emulator::start(Options::default()).await.unwrap();
    let (run, _) = write(
        &config(&emulator, json!({})),
        &[("accounts", "account", "append")],
        &[state_line("accounts", 7)],
    )
    .await;
    run.assert_ok();
    assert_eq!(run.states().len(), 1);
    assert_eq!(emulator.request_count(), 0);
}

/// Three streams, their records interleaved, each state closing its own stream's window:
/// the counts the platform checks per stream, over HTTP.
#[tokio::test]
async fn each_stream_state_counts_its_own_stream() {
    let emulator = Emulator::start(Options::default()).await.unwrap();
    let dir = scratch_dir("px-three-streams");
    let lines = vec![
        record_line("accounts", &json!({"id": "a1", "name": "A1"})),
        record_line("partners", &json!({"id": "p1", "name": "P1"})),
        record_line("accounts", &json!({"id": "a2", "name": "A2"})),
        record_line("users", &json!({"identifyId": "u1", "accountId": "a1"})),
        record_line(
            "partners",
            &json!({"id": "p2", "name": "P2", "renewalDate": "someday"}),
        ),
        state_line("accounts", 1),
        record_line("users", &json!({"identifyId": "u2", "accountId": "a2"})),
        state_line("partners", 2),
        state_line("users", 3),
    ];
    let (run, _) = write(
        &config(&emulator, local_rejects(&dir)),
        &[
            ("accounts", "account", "append"),
            ("partners", "account", "append"),
            ("users", "user", "append"),
        ],
        &lines,
    )
    .await;
    run.assert_ok();
    let counts: Vec<(f64, f64)> = run.states().into_iter().map(state_counts).collect();
    assert_eq!(counts, vec![(2.0, 0.0), (1.0, 1.0), (2.0, 0.0)]);
}

/// Insert (with the look-up after an unknown outcome), update and upsert: an API that goes
/// down for good ends the sync with one `transient_error` within the retries.
#[tokio::test]
async fn an_api_that_stays_down_ends_the_sync_in_every_mode() {
    for mode in ["append", "update", "append_dedup"] {
        let emulator = Emulator::start(Options::default()).await.unwrap();
        for i in 0..20 {
            emulator.seed_record(
                "accounts",
                json!({"id": format!("acct-{i}"), "name": "Seeded", "propertyKeys": ["AP-EMULATOR-2"]}),
            );
        }
        emulator.fail_after(10);
        let (lines, states) = emukit::harness::records_with_states("accounts", 600, 20, |i| {
            let id = if mode == "update" {
                format!("acct-{}", i % 20)
            } else {
                format!("new-{i}")
            };
            json!({"id": id, "name": format!("Down {i}")})
        });
        emukit::harness::assert_outage_ends(mode, states, async {
            write(
                &config(&emulator, json!({})),
                &[("accounts", "account", mode)],
                &lines,
            )
            .await
            .0
        })
        .await;
    }
}

/// Every field the connector defaults has that default in its SPEC, so the Airbyte form shows
/// what an empty field becomes.
#[test]
fn the_spec_names_every_default() {
    emukit::harness::assert_spec_defaults::<destination_gainsight_px::GainsightPx>(
        &serde_json::json!({"api_key": "k", "property_keys": ["AP-1-2"]}),
    );
}

/// A base_url whose path is wrong (every route 404, in PX's own error envelope): no record is
/// blamed for it. Insert and upsert meet the 404 on the collection they POST to; update on
/// the record's route, and the collection read that follows says it is the route's.
#[tokio::test]
async fn a_wrong_base_url_path_is_a_config_error_not_rejected_records() {
    let emulator = Emulator::start(Options::default()).await.unwrap();
    for mode in ["append", "append_dedup", "update"] {
        let dir = scratch_dir("px-wrong-path");
        let mut extra = local_rejects(&dir);
        extra["base_url"] = json!(format!("{}/api", emulator.base_url()));
        let lines: Vec<String> = (0..30)
            .map(|i| record_line("accounts", &json!({"id": format!("a{i}"), "name": "A"})))
            .chain([state_line("accounts", 1)])
            .collect();
        let (run, _) = write(
            &config(&emulator, extra),
            &[("accounts", "account", mode)],
            &lines,
        )
        .await;
        assert!(!run.status.success(), "{mode}");
        assert!(run.states().is_empty(), "{mode}");
        let error = run.error_trace().unwrap();
        assert_eq!(error["failure_type"], "config_error", "{mode}: {error}");
        assert!(
            error["message"].as_str().unwrap().contains("404"),
            "{mode}: {error}"
        );
        assert!(
            rejected_in(&dir).is_empty(),
            "{mode}: no record is rejected for a wrong URL"
        );
    }
}

/// The reconcile toolkit's promise (issue 27): a dry run counts what the sync then does and
/// writes nothing; the sync sends one PUT a changed account, with only what changed; a
/// re-run writes nothing and spends the search's one page.
#[tokio::test]
async fn a_rerun_writes_nothing_and_a_dry_run_counts_what_the_sync_then_does() {
    let emulator = Emulator::start(Options::default()).await.unwrap();
    let row = |i: usize, plan: &str| {
        record_line(
            "accounts",
            &json!({"id": format!("acct-{i}"), "name": format!("Account {i}"), "plan": plan}),
        )
    };
    let rows: Vec<String> = (0..300).map(|i| row(i, "basic")).collect();
    let changed: Vec<String> = (0..300)
        .map(|i| row(i, if i % 30 == 0 { "pro" } else { "basic" }))
        .collect();
    let requests = harness::assert_reconciles(
        || emulator.stats(),
        |dry_run, lines| {
            let config = config(&emulator, json!({"dry_run": dry_run}));
            async move {
                write(&config, &[("accounts", "account", "append_dedup")], &lines)
                    .await
                    .0
            }
        },
        "accounts",
        &rows,
        &changed,
        10,
        1,
    )
    .await;
    eprintln!("re-run of 300 unchanged rows: {requests} requests beyond a sync of none");
    let accounts = emulator.records("accounts");
    let changed = accounts.iter().find(|a| a["id"] == "acct-30").unwrap();
    assert_eq!(
        (changed["plan"].as_str(), changed["name"].as_str()),
        (Some("pro"), Some("Account 30"))
    );
}
