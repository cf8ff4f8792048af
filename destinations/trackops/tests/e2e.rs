//! destination-trackops end to end: the real binary against the emulator over HTTP on
//! loopback. Every run's output is kept for the AirbyteMessage check and the secret search.

use emukit::harness::{
    bin_named, local_rejects, merged, record_line, rejected_in, run_bin, run_command, run_write,
    scratch_dir, state_counts, state_line, stream_summary, Run,
};
use serde_json::{json, Value};
use std::path::PathBuf;
use trackops_emulator::{Emulator, Options, LIMITED_LOGIN, LOGIN, TOKEN};

fn bin() -> PathBuf {
    bin_named("destination-trackops")
}

fn config(emulator: &Emulator, extra: Value) -> Value {
    merged(emulator.connector_config(), extra)
}

async fn command(name: &str, config: &Value) -> Run {
    run_command(&bin(), name, config).await
}

async fn write(config: &Value, streams: &[(&str, &str, &str)], lines: &[String]) -> Run {
    run_write(&bin(), config, streams, lines).await.0
}

const STREAMS: [(&str, &str, &str); 3] = [
    ("clients", "client", "append_dedup"),
    ("locations", "location", "append_dedup"),
    ("contacts", "contact", "append_dedup"),
];

fn crm_rows() -> Vec<String> {
    vec![
        record_line(
            "clients",
            &json!({"account_code": "ACME", "name": "Acme Insurance", "website": "https://acme.example", "city": "Denver", "zip": "80202"}),
        ),
        // Right behind its client, still in flight: it waits for it.
        record_line(
            "contacts",
            &json!({"client_account_code": "ACME", "email": "Ana@Acme.test", "first_name": "Ana", "last_name": "Lopez"}),
        ),
        record_line(
            "clients",
            &json!({"account_code": "GLOBEX", "name": "Globex", "location_name": "HQ", "state": "on", "country": "ca"}),
        ),
        record_line(
            "locations",
            &json!({"client_account_code": "ACME", "name": "Boulder Office", "city": "Boulder"}),
        ),
        record_line(
            "contacts",
            &json!({"client_account_code": "ACME", "location_name": "boulder office", "email": "bo@acme.test", "first_name": "Bo", "last_name": "Ng", "role_id": 4}),
        ),
        record_line(
            "contacts",
            &json!({"client_account_code": "GLOBEX", "email": "hank@globex.test", "first_name": "Hank", "last_name": "Scorpio"}),
        ),
        state_line("contacts", 1),
    ]
}

#[tokio::test]
async fn spec_and_catalog_files_match_the_code() {
    let spec = run_bin(&bin(), &["spec"], b"", &[]).await;
    spec.assert_ok();
    let emulator = Emulator::start(Options::default()).await.unwrap();
    let discover = command("discover", &config(&emulator, json!({}))).await;
    discover.assert_ok();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("spec");
    for (name, value) in [
        ("spec.json", spec.of_type("SPEC")[0]["spec"].clone()),
        (
            "catalog.json",
            discover.of_type("DESTINATION_CATALOG")[0]["destination_catalog"].clone(),
        ),
    ] {
        let text = serde_json::to_string_pretty(&value).unwrap() + "\n";
        let path = dir.join(name);
        if std::env::var_os("UPDATE_SPEC").is_some() {
            std::fs::write(&path, &text).unwrap();
        }
        assert_eq!(std::fs::read_to_string(&path).unwrap_or_default(), text, "spec/{name} drifted: run `UPDATE_SPEC=1 cargo test -p destination-trackops --test e2e spec_and_catalog`");
    }
    assert_eq!(emulator.request_count(), 0, "discover needs no network");
}

#[tokio::test]
async fn check_says_which_credential_is_wrong() {
    let emulator = Emulator::start(Options::default()).await.unwrap();
    let status = |run: &Run| run.of_type("CONNECTION_STATUS")[0]["connectionStatus"].clone();
    let ok = status(&command("check", &config(&emulator, json!({}))).await);
    assert_eq!(ok["status"], "SUCCEEDED", "{ok}");
    let bad_token = command(
        "check",
        &config(&emulator, json!({"api_token": "tk-wrong-31337"})),
    )
    .await;
    let failed = status(&bad_token);
    assert_eq!(failed["status"], "FAILED");
    assert!(
        failed["message"]
            .as_str()
            .unwrap()
            .contains("refused the credentials"),
        "{failed}"
    );
    bad_token.assert_no_secret("tk-wrong-31337");
    let limited = status(
        &command(
            "check",
            &config(&emulator, json!({"username": LIMITED_LOGIN})),
        )
        .await,
    );
    assert!(
        limited["message"].as_str().unwrap().contains("Full Access"),
        "{limited}"
    );
    let html = Emulator::start(Options {
        routes_html: vec!["GET /clients".into()],
        ..Options::default()
    })
    .await
    .unwrap();
    let page = status(&command("check", &config(&html, json!({}))).await);
    assert!(
        page["message"].as_str().unwrap().contains("login page"),
        "{page}"
    );
}

#[tokio::test]
async fn clients_locations_and_contacts_land_in_order_and_a_rerun_writes_nothing() {
    let emulator = Emulator::start(Options::default()).await.unwrap();
    let config = config(&emulator, json!({}));
    let run = write(&config, &STREAMS, &crm_rows()).await;
    run.assert_ok();
    run.assert_no_secret(TOKEN);
    command("check", &config).await.assert_ok();
    assert_eq!(
        emulator.requests_without_json_accept(),
        0,
        "the contract: `Accept: application/json` on every call ({} requests)",
        emulator.request_count()
    );
    let clients = emulator.records("clients");
    assert_eq!(clients.len(), 2);
    let locations = emulator.records("locations");
    let acme = clients
        .iter()
        .find(|c| c["account_code"] == "ACME")
        .unwrap()["id"]
        .as_u64()
        .unwrap();
    let acme_locations: Vec<&Value> = locations.iter().filter(|l| l["root_id"] == acme).collect();
    assert_eq!(acme_locations.len(), 2);
    let main = acme_locations
        .iter()
        .find(|l| l["is_primary"] == true)
        .unwrap();
    assert_eq!(
        (
            main["name"].as_str(),
            main["state"].as_str(),
            main["zip"].as_str()
        ),
        (Some("Main Location"), Some("CO"), Some("80202"))
    );
    let globex_hq = locations.iter().find(|l| l["name"] == "HQ").unwrap();
    assert_eq!(
        (globex_hq["state"].as_str(), globex_hq["country"].as_str()),
        (Some("ON"), Some("CA"))
    );
    let contacts = emulator.records("contacts");
    assert_eq!(contacts.len(), 3);
    let ana = contacts
        .iter()
        .find(|c| c["email"] == "Ana@Acme.test")
        .unwrap();
    assert_eq!(
        ana["client_id"], main["id"],
        "a blank location name is the primary location"
    );
    let bo = contacts
        .iter()
        .find(|c| c["email"] == "bo@acme.test")
        .unwrap();
    let boulder = acme_locations
        .iter()
        .find(|l| l["name"] == "Boulder Office")
        .unwrap();
    assert_eq!(
        (bo["client_id"].clone(), bo["role_id"].clone()),
        (boulder["id"].clone(), json!(4))
    );
    // The state is the contacts stream's: its three contacts.
    assert_eq!(state_counts(run.states()[0]), (3.0, 0.0));

    let writes = emulator.count_method("POST") + emulator.count_method("PUT");
    let requests = emulator.request_count();
    let again = write(&config, &STREAMS, &crm_rows()).await;
    again.assert_ok();
    // The budget is what a sync waits on: its last line says what it spent, and on what.
    let info = again.logs("INFO");
    let finished = info
        .iter()
        .find(|l| l.starts_with("sync finished"))
        .unwrap();
    let spent = format!("{} requests spent (", emulator.request_count() - requests);
    assert!(finished.contains(&spent), "{spent}: {finished}");
    assert_eq!(
        emulator.count_method("POST") + emulator.count_method("PUT"),
        writes,
        "nothing differs: no write"
    );
    assert_eq!(emulator.records("contacts").len(), 3);

    let changed = vec![
        record_line(
            "clients",
            &json!({"account_code": "ACME", "name": "Acme Insurance", "website": "https://acme.example/new"}),
        ),
        state_line("clients", 2),
    ];
    write(&config, &STREAMS, &changed).await.assert_ok();
    let put = emulator
        .stats()
        .get("PUT /clients/{id}")
        .cloned()
        .unwrap_or_default();
    assert_eq!(put.get("200"), Some(&1), "{put:?}");
    assert_eq!(
        emulator
            .records("clients")
            .iter()
            .find(|c| c["account_code"] == "ACME")
            .unwrap()["website"],
        "https://acme.example/new"
    );
}

#[tokio::test]
async fn bad_rows_are_rejected_with_their_reason_and_cost_nothing_else() {
    let emulator = Emulator::start(Options::default()).await.unwrap();
    let dir = scratch_dir("trackops-rejects");
    let config = config(
        &emulator,
        json!({"default_state": null, "default_country": null, "object_storage_config": local_rejects(&dir)}),
    );
    let lines = vec![
        record_line(
            "clients",
            &json!({"account_code": "A1", "name": "Placed", "state": "NY", "country": "US"}),
        ),
        record_line("clients", &json!({"account_code": "B2", "name": "Nowhere"})),
        record_line(
            "clients",
            &json!({"account_code": "C3", "name": "Bad state", "state": "ZZ", "country": "US"}),
        ),
        record_line(
            "contacts",
            &json!({"client_account_code": "NOPE", "email": "x@y.test", "first_name": "X", "last_name": "Y"}),
        ),
        record_line(
            "contacts",
            &json!({"client_account_code": "A1", "location_name": "Attic", "email": "z@y.test", "first_name": "Z", "last_name": "Y"}),
        ),
        record_line(
            "contacts",
            &json!({"client_account_code": "A1", "email": "ok@y.test", "first_name": "O", "last_name": "K"}),
        ),
        state_line("contacts", 1),
    ];
    let run = write(&config, &STREAMS, &lines).await;
    run.assert_ok();
    let reasons: Vec<String> = rejected_in(&dir)
        .iter()
        .map(|r| r["reason"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(reasons.len(), 4, "{reasons:?}");
    assert!(
        reasons[0].contains("needs `state`") && reasons[0].contains("default_state"),
        "{reasons:?}"
    );
    assert!(
        reasons[1].contains("state` is not a state or province code"),
        "{reasons:?}"
    );
    assert!(
        reasons[2].contains("no client has account_code \"NOPE\""),
        "{reasons:?}"
    );
    assert!(
        reasons[3].contains("no location named \"Attic\""),
        "{reasons:?}"
    );
    assert_eq!(emulator.records("clients").len(), 1);
    assert_eq!(emulator.records("contacts").len(), 1);
    // The contacts state counts the three contacts: one written, two rejected.
    assert_eq!(state_counts(run.states()[0]), (1.0, 2.0));
}

#[tokio::test]
async fn a_contact_of_another_client_is_not_moved_and_an_ambiguous_code_is_not_guessed() {
    let fixture = scratch_dir("trackops-fixture").join("fixture.json");
    std::fs::write(&fixture, json!({
        "employees": [{"login": LOGIN, "full_access": true, "active": true}],
        "tokens": [{"value": TOKEN, "enabled": true}],
        "roles": [{"id": 3, "name": "Client Contact", "kind": "client_contact"}],
        "clients": [
            {"id": 1, "name": "One", "account_code": "ONE"}, {"id": 3, "name": "Twin A", "account_code": "TWIN"},
            {"id": 5, "name": "Twin B", "account_code": "TWIN"}, {"id": 7, "name": "Other", "account_code": "ONE-B"}
        ],
        "locations": [
            {"id": 2, "root_id": 1, "name": "Main", "is_primary": true, "state": "CO", "country": "US"},
            {"id": 4, "root_id": 3, "name": "Main", "is_primary": true, "state": "CO", "country": "US"},
            {"id": 6, "root_id": 5, "name": "Main", "is_primary": true, "state": "CO", "country": "US"},
            {"id": 8, "root_id": 7, "name": "Main", "is_primary": true, "state": "CO", "country": "US"}
        ],
        "contacts": [{"id": 1, "client_id": 8, "role_id": 3, "first_name": "Sam", "last_name": "Old", "email": "sam@one.test"}]
    }).to_string()).unwrap();
    let emulator = Emulator::start(Options {
        fixture: Some(fixture),
        ..Options::default()
    })
    .await
    .unwrap();
    let dir = scratch_dir("trackops-conflicts");
    let config = config(
        &emulator,
        json!({"object_storage_config": local_rejects(&dir)}),
    );
    let lines = vec![
        record_line(
            "contacts",
            &json!({"client_account_code": "ONE", "email": "SAM@one.test", "first_name": "Sam", "last_name": "New"}),
        ),
        record_line(
            "contacts",
            &json!({"client_account_code": "TWIN", "email": "t@twin.test", "first_name": "T", "last_name": "W"}),
        ),
        record_line(
            "clients",
            &json!({"account_code": "TWIN", "name": "Twin C"}),
        ),
        state_line("contacts", 1),
    ];
    let run = write(&config, &STREAMS, &lines).await;
    run.assert_ok();
    let reasons: Vec<String> = rejected_in(&dir)
        .iter()
        .map(|r| r["reason"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("belongs to contact 1 at another client")),
        "{reasons:?}"
    );
    assert_eq!(
        reasons.iter().filter(|r| r.contains("ambiguous")).count(),
        2,
        "{reasons:?}"
    );
    assert_eq!(
        emulator.records("contacts")[0]["last_name"],
        "Old",
        "not moved, not changed"
    );
    assert_eq!(
        emulator.count_method("POST") + emulator.count_method("PUT"),
        0
    );
}

#[tokio::test]
async fn a_create_that_timed_out_is_looked_up_not_sent_twice() {
    let emulator = Emulator::start(Options {
        routes_slow: vec!["POST /clients".into()],
        slow_ms: 2_500,
        ..Options::default()
    })
    .await
    .unwrap();
    let config = config(&emulator, json!({"request_timeout_secs": 1}));
    let lines = vec![
        record_line(
            "clients",
            &json!({"account_code": "SLOW", "name": "Slow Co"}),
        ),
        state_line("clients", 1),
    ];
    let run = write(&config, &[("clients", "client", "append")], &lines).await;
    run.assert_ok();
    assert_eq!(
        emulator.records("clients").len(),
        1,
        "one client, though its create timed out"
    );
    assert!(
        run.logs("WARN").iter().any(|l| l.contains("it landed")),
        "{:?}",
        run.logs("WARN")
    );
}

#[tokio::test]
async fn a_missing_write_route_fails_the_sync_before_any_state() {
    for (routes_404, routes_405, status) in [
        (vec!["POST /client/locations".to_owned()], vec![], "404"),
        (vec![], vec!["POST /client/locations".to_owned()], "405"),
    ] {
        let emulator = Emulator::start(Options {
            routes_404,
            routes_405,
            ..Options::default()
        })
        .await
        .unwrap();
        let dir = scratch_dir("trackops-missing-route");
        let lines = vec![
            record_line("clients", &json!({"account_code": "A", "name": "A"})),
            record_line(
                "locations",
                &json!({"client_account_code": "A", "name": "Second"}),
            ),
            state_line("locations", 1),
        ];
        let run = write(
            &config(
                &emulator,
                json!({"object_storage_config": local_rejects(&dir)}),
            ),
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
                .contains(&format!("POST /client/locations answered {status}")),
            "{error}"
        );
        assert!(
            rejected_in(&dir).is_empty(),
            "a missing route is no record's fault"
        );
    }
}

#[tokio::test]
async fn nulls_are_left_out_unless_they_clear() {
    let emulator = Emulator::start(Options::default()).await.unwrap();
    let first = vec![
        record_line(
            "clients",
            &json!({"account_code": "N", "name": "N", "website": "https://n.example"}),
        ),
        state_line("clients", 1),
    ];
    write(&config(&emulator, json!({})), &STREAMS, &first)
        .await
        .assert_ok();
    let sparse = vec![
        record_line(
            "clients",
            &json!({"account_code": "N", "name": "N", "website": null}),
        ),
        state_line("clients", 2),
    ];
    write(&config(&emulator, json!({})), &STREAMS, &sparse)
        .await
        .assert_ok();
    assert_eq!(
        emulator.records("clients")[0]["website"],
        "https://n.example"
    );
    write(
        &config(&emulator, json!({"null_clears": true})),
        &STREAMS,
        &sparse,
    )
    .await
    .assert_ok();
    assert!(emulator.records("clients")[0].get("website").is_none());
}

/// Three streams, their records interleaved, each state closing its own stream's window:
/// the counts the platform checks per stream, over HTTP.
#[tokio::test]
async fn each_stream_state_counts_its_own_stream() {
    let emulator = Emulator::start(Options::default()).await.unwrap();
    let dir = scratch_dir("trackops-three-streams");
    let lines = vec![
        record_line("clients", &json!({"account_code": "A", "name": "A"})),
        record_line("clients", &json!({"account_code": "B", "name": "B"})),
        state_line("clients", 1),
        record_line(
            "locations",
            &json!({"client_account_code": "A", "name": "North"}),
        ),
        record_line(
            "contacts",
            &json!({"client_account_code": "A", "email": "a@a.test", "first_name": "A", "last_name": "A"}),
        ),
        record_line(
            "contacts",
            &json!({"client_account_code": "NOPE", "email": "n@a.test", "first_name": "N", "last_name": "N"}),
        ),
        record_line("clients", &json!({"account_code": "C", "name": "C"})),
        state_line("contacts", 2),
        state_line("locations", 3),
        state_line("clients", 4),
    ];
    let run = write(
        &config(
            &emulator,
            json!({"object_storage_config": local_rejects(&dir)}),
        ),
        &STREAMS,
        &lines,
    )
    .await;
    run.assert_ok();
    let counts: Vec<(f64, f64)> = run.states().into_iter().map(state_counts).collect();
    assert_eq!(counts, vec![(2.0, 0.0), (1.0, 1.0), (1.0, 0.0), (1.0, 0.0)]);
}

/// Insert (with the look-up after an unknown outcome), update and upsert: an API that goes
/// down for good ends the sync with one `transient_error` within the retries.
#[tokio::test]
async fn an_api_that_stays_down_ends_the_sync_in_every_mode() {
    for mode in ["append", "update", "append_dedup"] {
        let emulator = Emulator::start(Options {
            budget_per_minute: 100_000,
            ..Options::default()
        })
        .await
        .unwrap();
        let seed: Vec<String> = (0..10)
            .map(|i| {
                record_line(
                    "clients",
                    &json!({"account_code": format!("S{i}"), "name": format!("Seed {i}")}),
                )
            })
            .collect();
        write(
            &config(&emulator, json!({})),
            &[("clients", "client", "append")],
            &seed,
        )
        .await
        .assert_ok();
        let ids: Vec<Value> = emulator
            .records("clients")
            .iter()
            .map(|c| c["id"].clone())
            .collect();
        emulator.fail_after(5);
        let (lines, states) =
            emukit::harness::records_with_states("clients", 200, 10, |i| match mode {
                "update" => {
                    json!({"id": ids[i % ids.len()], "website": format!("https://{i}.example")})
                }
                _ => json!({"account_code": format!("D{i}"), "name": format!("Down {i}")}),
            });
        emukit::harness::assert_outage_ends(mode, states, async {
            write(
                &config(&emulator, json!({})),
                &[("clients", "client", mode)],
                &lines,
            )
            .await
        })
        .await;
    }
}

/// Every field the connector defaults has that default in its SPEC, so the Airbyte form shows
/// what an empty field becomes.
#[test]
fn the_spec_names_every_default() {
    emukit::harness::assert_spec_defaults::<destination_trackops::Trackops>(
        &serde_json::json!({"username": "u", "api_token": "t", "default_role_id": 3, "subdomain": "acme"}),
    );
}

/// A resumed insert sends again what its killed run stored: a contact whose email exists and
/// holds the row's values counts as written; one that differs is rejected naming the fields.
#[tokio::test]
async fn a_resumed_insert_counts_what_it_stored_as_written() {
    let emulator = Emulator::start(Options {
        budget_per_minute: 100_000,
        ..Options::default()
    })
    .await
    .unwrap();
    let dir = scratch_dir("trackops-resumed-insert");
    let config = config(
        &emulator,
        json!({"object_storage_config": local_rejects(&dir)}),
    );
    let client = record_line("clients", &json!({"account_code": "R", "name": "Resumed"}));
    write(&config, &[("clients", "client", "append")], &[client])
        .await
        .assert_ok();
    let contacts = |n: usize, changed: &[usize]| -> Vec<String> {
        (0..n)
            .map(|i| {
                let last = if changed.contains(&i) { "Changed" } else { "Same" };
                record_line("contacts", &json!({"client_account_code": "R", "email": format!("c{i}@r.test"), "first_name": "C", "last_name": last}))
            })
            .chain([state_line("contacts", 1)])
            .collect()
    };
    let insert = [("contacts", "contact", "append")];
    write(&config, &insert, &contacts(4, &[])).await.assert_ok();
    // A dry run first: it counts what the sync then does, writing nothing.
    let dry_dir = scratch_dir("trackops-resumed-insert-dry");
    let dry_config = merged(
        config.clone(),
        json!({"dry_run": true, "object_storage_config": local_rejects(&dry_dir)}),
    );
    let dry = write(&dry_config, &insert, &contacts(6, &[1])).await;
    dry.assert_ok();
    assert_eq!(emulator.records("contacts").len(), 4);
    let run = write(&config, &insert, &contacts(6, &[1])).await;
    run.assert_ok();
    // The same counts (a dry run words a refusal its own way: no request was refused).
    let counts = |run: &Run| {
        let summary = stream_summary(run, "contacts").unwrap_or_default();
        summary.split(" (").next().map(str::to_owned)
    };
    assert_eq!(counts(&dry), counts(&run), "{}", dry.stdout);
    assert_eq!(state_counts(run.states()[0]), (5.0, 1.0));
    let rejected = rejected_in(&dir);
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    let reason = rejected[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("differs from the row in last_name"),
        "{reason}"
    );
    assert_eq!(emulator.records("contacts").len(), 6);
}

/// The reconcile toolkit's promise (issue 27): a dry run counts what the sync then does and
/// writes nothing; the sync sends one PUT a changed client; a re-run writes nothing and
/// spends the count and the listing's one page. (Trackops's gentle start paces the creates:
/// few rows keep this short.)
#[tokio::test]
async fn a_rerun_writes_nothing_and_a_dry_run_counts_what_the_sync_then_does() {
    let emulator = Emulator::start(Options::default()).await.unwrap();
    let row = |i: usize, website: &str| {
        record_line(
            "clients",
            &json!({"account_code": format!("C{i:03}"), "name": format!("Client {i}"), "website": website}),
        )
    };
    let rows: Vec<String> = (0..60).map(|i| row(i, "https://a.example")).collect();
    let changed: Vec<String> = (0..60)
        .map(|i| {
            row(
                i,
                if i % 30 == 0 {
                    "https://b.example"
                } else {
                    "https://a.example"
                },
            )
        })
        .collect();
    let requests = emukit::harness::assert_reconciles(
        || emulator.stats(),
        |dry_run, lines| {
            let config = config(
                &emulator,
                json!({"dry_run": dry_run, "default_state": "CO", "default_country": "US"}),
            );
            async move { write(&config, &STREAMS[..1], &lines).await }
        },
        "clients",
        &rows,
        &changed,
        2,
        2,
    )
    .await;
    eprintln!("re-run of 60 unchanged rows: {requests} requests beyond a sync of none");
}
