//! destination-revnue end to end: the real binary against the emulator over HTTP on
//! loopback. Every run's output is kept for the AirbyteMessage check and the secret search.

use emukit::harness::{
    bin_named, local_rejects, merged, record_line, rejected_in, run_bin, run_command, run_write,
    scratch_dir, state_counts, state_line, stream_summary, Run,
};
use revnue_emulator::{Emulator, Options, TOKEN};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn bin() -> PathBuf {
    bin_named("destination-revnue")
}

/// A config for `emulator` whose budget never binds unless a test says so.
fn config(emulator: &Emulator, extra: Value) -> Value {
    let unbound = merged(
        emulator.connector_config(),
        json!({"requests_per_minute": 6000}),
    );
    merged(unbound, extra)
}

fn fast() -> Options {
    Options {
        budget_per_minute: 100_000,
        ..Options::default()
    }
}

async fn command(name: &str, config: &Value) -> Run {
    run_command(&bin(), name, config).await
}

async fn write(config: &Value, streams: &[(&str, &str, &str)], lines: &[String]) -> Run {
    run_write(&bin(), config, streams, lines).await.0
}

const UPSERT: [(&str, &str, &str); 1] = [("customers", "customer", "append_dedup")];

fn customer(emulator: &Emulator, name: &str) -> Value {
    emulator
        .records("customers")
        .into_iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no customer {name}"))
}

fn writes(emulator: &Emulator) -> u64 {
    ["POST", "PATCH", "PUT"]
        .iter()
        .map(|m| emulator.count_method(m))
        .sum()
}

fn master_rows() -> Vec<String> {
    vec![
        record_line(
            "customers",
            &json!({"name": "Acme GmbH", "country": "DE", "category": "retail",
                "contact_person_name": "Ann Lee", "contact_person_email": "ann@acme.example", "contact_person_type": "billing",
                "nda_signed": true, "nda_signed_date": "2024-05-01T09:30:00Z", "city": "Berlin",
                "contract_value": 1500.5, "tier": "gold", "seats": 12, "renewal_date": "2025-01-31"}),
        ),
        record_line(
            "customers",
            &json!({"name": "Globex", "country": "United States", "category": 3,
                "contact_person": {"name": "Hank", "email": "hank@globex.example", "type": "executive"}}),
        ),
        record_line(
            "customers",
            &json!({"name": "Umbrella", "country": 826, "msa_signed": true, "msa_signed_date": "2023-12-01"}),
        ),
        state_line("customers", 1),
    ]
}

#[tokio::test]
async fn spec_and_catalog_files_match_the_code() {
    let spec = run_bin(&bin(), &["spec"], b"", &[]).await;
    spec.assert_ok();
    let emulator = Emulator::start(fast()).await.unwrap();
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
        assert_eq!(std::fs::read_to_string(&path).unwrap_or_default(), text, "spec/{name} drifted: run `UPDATE_SPEC=1 cargo test -p destination-revnue --test e2e spec_and_catalog`");
    }
    assert_eq!(
        emulator.request_count(),
        1,
        "discover reads the templates, once"
    );
}

#[tokio::test]
async fn discover_types_the_template_fields_and_says_why_when_it_cannot() {
    let emulator = Emulator::start(fast()).await.unwrap();
    let discover = command("discover", &config(&emulator, json!({}))).await;
    let catalog = discover.of_type("DESTINATION_CATALOG")[0]["destination_catalog"].clone();
    let upsert = catalog["operations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["object_name"] == "customer" && o["sync_mode"] == "append_dedup")
        .unwrap();
    let properties = &upsert["json_schema"]["properties"];
    assert_eq!(
        properties["contract_value"]["maximum"],
        json!(999_999_999_999_999.0)
    );
    assert_eq!(
        properties["seats"]["type"],
        json!(["integer", "string", "null"])
    );
    assert_eq!(properties["tier"]["maxLength"], 50);
    assert!(
        properties.get("legacy_code").is_none(),
        "inactive fields are not published"
    );
    assert_eq!(upsert["matching_keys"], json!([["name"]]));
    let supplier = catalog["operations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["object_name"] == "supplier" && o["sync_mode"] == "append")
        .unwrap();
    assert!(supplier["json_schema"]["properties"]["rating"].is_object());
    assert!(supplier["json_schema"]["properties"]["business_country"].is_object());

    let wrong = command(
        "discover",
        &config(&emulator, json!({"customer_template_id": 99})),
    )
    .await;
    wrong.assert_ok();
    assert!(
        wrong
            .logs("WARN")
            .iter()
            .any(|l| l.contains("customer_template_id 99")),
        "{}",
        wrong.stdout
    );
}

#[tokio::test]
async fn check_proves_token_and_company_with_one_request_and_says_the_budget() {
    let emulator = Emulator::start(fast()).await.unwrap();
    let status = |run: &Run| run.of_type("CONNECTION_STATUS")[0]["connectionStatus"].clone();
    let ok = status(
        &command(
            "check",
            &config(&emulator, json!({"requests_per_minute": 20})),
        )
        .await,
    );
    assert_eq!(ok["status"], "SUCCEEDED", "{ok}");
    let message = ok["message"].as_str().unwrap();
    assert!(
        message.contains("company 1") && message.contains("8 h 20 min"),
        "{message}"
    );
    assert_eq!(emulator.request_count(), 1);

    let bad_token = command(
        "check",
        &config(&emulator, json!({"api_token": "rv-wrong-31337"})),
    )
    .await;
    let failed = status(&bad_token);
    assert_eq!(failed["status"], "FAILED");
    assert!(
        failed["message"]
            .as_str()
            .unwrap()
            .contains("refused the API token"),
        "{failed}"
    );
    bad_token.assert_no_secret("rv-wrong-31337");

    let company = status(&command("check", &config(&emulator, json!({"company": 42}))).await);
    assert!(
        company["message"]
            .as_str()
            .unwrap()
            .contains("set `company`"),
        "{company}"
    );
    let nowhere = json!({"api_token": TOKEN, "base_url": "http://127.0.0.1:9"});
    let down = status(&command("check", &nowhere).await);
    assert_eq!(down["status"], "FAILED", "{down}");
}

#[tokio::test]
async fn customers_land_with_every_value_form_and_a_rerun_sends_nothing() {
    let emulator = Emulator::start(fast()).await.unwrap();
    let config = config(&emulator, json!({}));
    let run = write(&config, &UPSERT, &master_rows()).await;
    run.assert_ok();
    run.assert_no_secret(TOKEN);
    assert_eq!(state_counts(run.states()[0]), (3.0, 0.0));
    let acme = customer(&emulator, "Acme GmbH");
    assert_eq!(acme["company"], 1);
    assert_eq!(acme["country"], "Germany");
    assert_eq!(acme["category"], json!({"id": 1, "name": "Retail"}));
    assert_eq!(
        acme["contact_person"],
        json!({"name": "Ann Lee", "email": "ann@acme.example", "type": "billing"})
    );
    assert_eq!(acme["nda_signed_date"], "2024-05-01");
    assert_eq!(
        acme["template"],
        json!({"id": 7, "fields": {"Contract value": 1500.5, "Tier": "gold", "Seats": 12, "Renewal date": "2025-01-31"}})
    );
    assert_eq!(
        customer(&emulator, "Globex")["country"],
        "United States of America"
    );
    assert_eq!(
        customer(&emulator, "Globex")["category"]["name"],
        "Services"
    );
    assert_eq!(customer(&emulator, "Umbrella")["msa_signed"], true);
    assert_eq!(writes(&emulator), 3, "one request a record");

    let before = writes(&emulator);
    let again = write(&config, &UPSERT, &master_rows()).await;
    again.assert_ok();
    assert_eq!(writes(&emulator), before, "nothing differs: no write");
    assert!(
        again
            .logs("INFO")
            .iter()
            .any(|l| l == "stream `customers`: 3 unchanged (no request)"),
        "{}",
        again.stdout
    );

    // A changed value is PATCHed alone, any case of the name finds the customer.
    let changed = vec![
        record_line(
            "customers",
            &json!({"name": " ACME gmbh", "city": "Hamburg", "tier": "platinum"}),
        ),
        state_line("customers", 2),
    ];
    write(&config, &UPSERT, &changed).await.assert_ok();
    let patches: Vec<(String, String, u16)> = emulator
        .requests()
        .into_iter()
        .filter(|(m, _, _)| m == "PATCH")
        .collect();
    assert_eq!(patches.len(), 1, "{patches:?}");
    let acme = customer(&emulator, "ACME gmbh");
    assert_eq!(acme["city"], "Hamburg");
    assert_eq!(acme["template"]["fields"]["Tier"], "platinum");
    assert_eq!(acme["template"]["fields"]["Contract value"], 1500.5, "kept");
    assert_eq!(acme["contact_person"]["name"], "Ann Lee", "kept");
    assert_eq!(
        emulator.records("customers").len(),
        4,
        "Initech of company 2 and our three"
    );
}

#[tokio::test]
async fn without_patch_an_update_reads_merges_and_puts_so_no_field_is_lost() {
    let emulator = Emulator::start(Options {
        no_patch: true,
        ..fast()
    })
    .await
    .unwrap();
    let config = config(&emulator, json!({}));
    write(&config, &UPSERT, &master_rows()).await.assert_ok();
    let id = customer(&emulator, "Acme GmbH")["id"].as_u64().unwrap();
    let lines = vec![
        record_line(
            "customers",
            &json!({"name": "Acme GmbH", "zip_postal_code": "20095", "seats": 14}),
        ),
        record_line("customers", &json!({"name": "Umbrella", "country": "GB"})),
        state_line("customers", 2),
    ];
    let run = write(&config, &UPSERT, &lines).await;
    run.assert_ok();
    assert!(
        run.logs("WARN").iter().any(|l| l.contains("answered 405")),
        "{}",
        run.stdout
    );
    let acme = customer(&emulator, "Acme GmbH");
    assert_eq!(acme["id"].as_u64(), Some(id));
    assert_eq!(acme["zip_postal_code"], "20095");
    assert_eq!(
        acme["city"], "Berlin",
        "the PUT carried what the row did not give"
    );
    assert_eq!(acme["contact_person"]["email"], "ann@acme.example");
    assert_eq!(acme["nda_signed"], true);
    assert_eq!(
        acme["template"]["fields"],
        json!({"Contract value": 1500.5, "Tier": "gold", "Seats": 14, "Renewal date": "2025-01-31"})
    );
    assert_eq!(emulator.count_method("PATCH"), 1, "one 405, then PUT only");
    assert_eq!(
        emulator.count_method("PUT"),
        1,
        "Umbrella's country did not change"
    );
}

#[tokio::test]
async fn lists_are_followed_to_their_end_in_pages_or_as_a_bare_array() {
    let customers: Vec<Value> = (1..=23)
        .map(|i| json!({"id": i, "company": 1, "name": format!("Existing {i}"), "city": "Old"}))
        .collect();
    let fixture = scratch_dir("revnue-fixture").join("fixture.json");
    std::fs::write(&fixture, json!({"customers": customers}).to_string()).unwrap();
    for bare in [false, true] {
        let emulator = Emulator::start(Options {
            fixture: Some(fixture.clone()),
            bare_lists: bare,
            max_page_size: 5,
            ..fast()
        })
        .await
        .unwrap();
        let lines = vec![
            record_line("customers", &json!({"name": "existing 23", "city": "New"})),
            record_line("customers", &json!({"name": "Existing 1", "city": "Old"})),
            record_line("customers", &json!({"name": "Brand new"})),
            state_line("customers", 1),
        ];
        let run = write(&config(&emulator, json!({})), &UPSERT, &lines).await;
        run.assert_ok();
        let lists = emulator
            .requests()
            .iter()
            .filter(|(m, p, _)| m == "GET" && p.starts_with("/api/v2/customer/"))
            .count();
        assert_eq!(lists, if bare { 1 } else { 5 }, "23 customers, 5 a page");
        // Three rows, four pages left: the first row's POST was the look, refused as taken.
        assert_eq!(emulator.count_method("POST"), if bare { 1 } else { 2 });
        assert_eq!(emulator.count_method("PATCH"), 1, "Existing 1 is unchanged");
        assert_eq!(emulator.records("customers").len(), 24);
        assert_eq!(customer(&emulator, "existing 23")["city"], "New");
    }
}

#[tokio::test]
async fn a_few_rows_into_a_long_listing_are_looked_for_by_their_create() {
    let customers: Vec<Value> = (1..=50)
        .map(|i| json!({"id": i, "company": 1, "name": format!("Existing {i}"), "city": "Old"}))
        .collect();
    let fixture = scratch_dir("revnue-fixture").join("fixture.json");
    std::fs::write(&fixture, json!({"customers": customers}).to_string()).unwrap();
    let emulator = Emulator::start(Options {
        fixture: Some(fixture),
        max_page_size: 5,
        ..fast()
    })
    .await
    .unwrap();
    let lists = || {
        let requests = emulator.requests();
        let lists = requests
            .iter()
            .filter(|(m, p, _)| m == "GET" && p.starts_with("/api/v2/customer/"));
        lists.count()
    };
    let new = vec![
        record_line("customers", &json!({"name": "Brand new", "city": "Oslo"})),
        record_line("customers", &json!({"name": "Also new"})),
        state_line("customers", 1),
    ];
    let run = write(&config(&emulator, json!({})), &UPSERT, &new).await;
    run.assert_ok();
    assert_eq!(lists(), 1, "the first page says 10 pages; 2 rows are fewer");
    assert_eq!(emulator.count_method("POST"), 2);
    let summary = stream_summary(&run, "customers").unwrap_or_default();
    assert!(summary.starts_with("2 created"), "{summary}");

    let lines = vec![
        record_line("customers", &json!({"name": "Third new"})),
        record_line("customers", &json!({"name": "Existing 50", "city": "New"})),
        record_line("customers", &json!({"name": "Existing 49", "city": "Old"})),
        record_line("customers", &json!({"name": "Brand new", "city": "Oslo"})),
        state_line("customers", 2),
    ];
    let run = write(&config(&emulator, json!({})), &UPSERT, &lines).await;
    run.assert_ok();
    // The refused create of "Existing 50" read the rest of the listing (with the rows created
    // since). Rows in flight with it chose their POST before its refusal came back: each is
    // found by its own refusal, and nothing is created twice.
    assert_eq!(lists(), 1 + 11, "52 customers, 5 a page");
    let posts = emulator.count_method("POST") - 2;
    assert!(
        (2..=4).contains(&posts),
        "Third new, Existing 50 refused, maybe the two after it: {posts}"
    );
    assert_eq!(emulator.count_method("PATCH"), 1);
    assert_eq!(customer(&emulator, "Existing 50")["city"], "New");
    assert_eq!(emulator.records("customers").len(), 53);
    let summary = stream_summary(&run, "customers").unwrap_or_default();
    for count in ["1 created", "1 updated", "2 unchanged"] {
        assert!(summary.contains(count), "{count}: {summary}");
    }
}

#[tokio::test]
async fn bad_rows_are_rejected_with_their_reason_before_any_request() {
    let emulator = Emulator::start(fast()).await.unwrap();
    let dir = scratch_dir("revnue-rejects");
    let config = config(
        &emulator,
        json!({"object_storage_config": local_rejects(&dir)}),
    );
    let lines = vec![
        record_line("customers", &json!({"name": "Fine"})),
        record_line(
            "customers",
            &json!({"name": "Nowhere", "country": "Atlantis"}),
        ),
        record_line(
            "customers",
            &json!({"name": "Unsorted", "category": "Aerospace"}),
        ),
        record_line(
            "customers",
            &json!({"name": "Half", "contact_person_name": "Ann"}),
        ),
        record_line(
            "customers",
            &json!({"name": "Rich", "contract_value": 10.005}),
        ),
        record_line(
            "customers",
            &json!({"name": "Late", "nda_signed_date": "2024-02-30"}),
        ),
        record_line("customers", &json!({"name": "x".repeat(51)})),
        record_line("customers", &json!({"name": "Initech"})),
        record_line("customers", &json!({"name": "Typed", "seats": "many"})),
        state_line("customers", 1),
    ];
    let run = write(&config, &UPSERT, &lines).await;
    run.assert_ok();
    let rejects = rejected_in(&dir);
    let reasons: Vec<&str> = rejects
        .iter()
        .map(|r| r["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons.len(), 8, "{reasons:#?}");
    for (needle, line) in [
        ("\"Atlantis\" is not a country", 2),
        ("category \"Aerospace\" is not a category of this company (there are: Retail, Manufacturing, Services)", 3),
        ("email is required when name is given", 4),
        ("more than 2 decimals", 5),
        ("nda_signed_date", 6),
        ("at most 50", 7),
        ("another company of this account", 8),
        ("seats", 9),
    ] {
        let found = rejects
            .iter()
            .find(|r| r["reason"].as_str().unwrap().contains(needle))
            .unwrap_or_else(|| panic!("{needle}: {reasons:#?}"));
        assert_eq!(found["line"], line, "{found}");
    }
    assert_eq!(
        emulator.count_method("POST"),
        2,
        "Fine, and Initech's refused create"
    );
    assert_eq!(state_counts(run.states()[0]), (1.0, 8.0));
}

#[tokio::test]
async fn append_creates_only_and_update_needs_an_id_that_exists() {
    let emulator = Emulator::start(fast()).await.unwrap();
    let dir = scratch_dir("revnue-modes");
    let config = config(
        &emulator,
        json!({"object_storage_config": local_rejects(&dir)}),
    );
    write(&config, &UPSERT, &master_rows()).await.assert_ok();
    let globex = customer(&emulator, "Globex")["id"].as_u64().unwrap();
    let run = write(
        &config,
        &[
            ("new_customers", "customer", "append"),
            ("fixes", "customer", "update"),
        ],
        &[
            record_line("new_customers", &json!({"name": "Hooli"})),
            record_line("new_customers", &json!({"name": "globex"})),
            record_line(
                "fixes",
                &json!({"id": globex, "name": "Globex Corporation", "website": "globex.example"}),
            ),
            record_line("fixes", &json!({"id": 999, "city": "Nowhere"})),
            // Initech is company 2's: never written from company 1.
            record_line("fixes", &json!({"id": 1, "city": "Elsewhere"})),
            state_line("fixes", 1),
        ],
    )
    .await;
    run.assert_ok();
    let reasons: Vec<String> = rejected_in(&dir)
        .iter()
        .map(|r| r["reason"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(
        reasons
            .iter()
            // The listing (read for "globex") holds company 1's customers: no request for it.
            .any(|r| r.contains("customer \"1\" was not found: the customers listed")),
        "{reasons:?}"
    );
    assert_eq!(customer(&emulator, "Initech")["city"], Value::Null);
    assert!(
        reasons.iter().any(|r| r.contains("append only creates")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("customer \"999\" was not found")),
        "{reasons:?}"
    );
    let renamed = customer(&emulator, "Globex Corporation");
    assert_eq!(renamed["id"].as_u64(), Some(globex), "an id renames");
    assert_eq!(renamed["country"], "United States of America", "kept");
    assert!(emulator
        .records("customers")
        .iter()
        .any(|c| c["name"] == "Hooli"));
}

#[tokio::test]
async fn suppliers_take_the_same_path_with_their_business_fields() {
    let emulator = Emulator::start(fast()).await.unwrap();
    let config = config(&emulator, json!({}));
    let lines = vec![
        record_line(
            "suppliers",
            &json!({"name": "Parts Co", "type": "foreign", "business_name": "Parts Company Ltd",
                "business_country": "CAN", "ein": "12-3456789", "rating": 4, "country": "ca"}),
        ),
        state_line("suppliers", 1),
    ];
    let run = write(
        &config,
        &[("suppliers", "supplier", "append_dedup")],
        &lines,
    )
    .await;
    run.assert_ok();
    let parts = &emulator.records("suppliers")[0];
    assert_eq!(parts["business_country"], "Canada");
    assert_eq!(parts["type"], "foreign");
    assert_eq!(parts["template"], json!({"id": 8, "fields": {"Rating": 4}}));

    let off = Emulator::start(Options {
        no_suppliers: true,
        ..fast()
    })
    .await
    .unwrap();
    let run = write(
        &config_for_supplier_off(&off),
        &[("suppliers", "supplier", "append_dedup")],
        &lines,
    )
    .await;
    assert_eq!(run.status.code(), Some(1));
    assert_eq!(run.error_trace().unwrap()["failure_type"], "config_error");
    assert!(
        run.states().is_empty(),
        "no state covers records that could not land"
    );
}

fn config_for_supplier_off(emulator: &Emulator) -> Value {
    config(emulator, json!({}))
}

#[tokio::test]
async fn a_missing_route_fails_the_sync_before_any_state() {
    let emulator = Emulator::start(Options {
        routes_404: vec!["POST /customer".into()],
        ..fast()
    })
    .await
    .unwrap();
    let run = write(
        &config(&emulator, json!({})),
        &[("customers", "customer", "append")],
        &master_rows(),
    )
    .await;
    assert_eq!(run.status.code(), Some(1), "{}", run.stdout);
    let error = run.error_trace().unwrap();
    assert_eq!(error["failure_type"], "config_error");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("POST /customer answered 404"),
        "{error}"
    );
    assert!(run.states().is_empty());
}

#[tokio::test]
async fn the_budget_is_kept_from_the_first_request() {
    // 40 requests a 2 s window is 1,200 a minute: the connector keeps to it and meets no 429.
    let emulator = Emulator::start(Options {
        budget_per_minute: 40,
        window_ms: 2_000,
        ..Options::default()
    })
    .await
    .unwrap();
    let mut lines: Vec<String> = (0..60)
        .map(|i| record_line("customers", &json!({"name": format!("Paced {i}")})))
        .collect();
    lines.push(state_line("customers", 1));
    let started = Instant::now();
    let run = write(
        &config(&emulator, json!({"requests_per_minute": 1200})),
        &UPSERT,
        &lines,
    )
    .await;
    let took = started.elapsed();
    run.assert_ok();
    assert_eq!(emulator.records("customers").len(), 61);
    assert_eq!(emulator.count_status("429"), 0, "{:?}", emulator.stats());
    // 62 requests at 20 a second cannot take less than ~3 s.
    assert!(took >= Duration::from_millis(2_500), "{took:?}");
    assert!(
        run.logs("INFO")
            .iter()
            .any(|l| l.contains("requests spent")),
        "{}",
        run.stdout
    );
}

#[tokio::test]
async fn a_429_from_a_shared_budget_pauses_everything_and_loses_nothing() {
    // Another caller spends most of the account's budget: the connector thinks it has 600 a
    // minute, the account gives it 8 per 2 s.
    let emulator = Emulator::start(Options {
        budget_per_minute: 8,
        window_ms: 2_000,
        ..Options::default()
    })
    .await
    .unwrap();
    let mut lines: Vec<String> = (0..20)
        .map(|i| record_line("customers", &json!({"name": format!("Shared {i}")})))
        .collect();
    lines.push(state_line("customers", 1));
    let run = write(
        &config(&emulator, json!({"requests_per_minute": 600})),
        &UPSERT,
        &lines,
    )
    .await;
    run.assert_ok();
    assert_eq!(emulator.records("customers").len(), 21);
    assert!(emulator.count_status("429") > 0);
    assert_eq!(state_counts(run.states()[0]), (20.0, 0.0));
    assert!(
        run.logs("WARN")
            .iter()
            .any(|l| l.contains("every request waits")),
        "{}",
        run.stdout
    );
}

#[tokio::test]
async fn a_create_that_timed_out_after_landing_is_not_made_twice() {
    // Request 3 is the first POST (templates, listing, POST): applied, answered too late.
    let emulator = Emulator::start(Options {
        slow_nth: vec![3],
        slow_ms: 2_500,
        fail_nth: vec!["4:503".into()],
        ..fast()
    })
    .await
    .unwrap();
    let lines = vec![
        record_line("customers", &json!({"name": "Once Only", "city": "Oslo"})),
        state_line("customers", 1),
    ];
    let run = write(
        &config(&emulator, json!({"request_timeout_secs": 1})),
        &UPSERT,
        &lines,
    )
    .await;
    run.assert_ok();
    let named: Vec<Value> = emulator
        .records("customers")
        .into_iter()
        .filter(|c| c["name"] == "Once Only")
        .collect();
    assert_eq!(named.len(), 1, "{:?}", emulator.requests());
    assert_eq!(state_counts(run.states()[0]), (1.0, 0.0));
}

#[tokio::test]
async fn an_empty_sync_makes_no_request_and_a_bad_token_mid_sync_ends_it() {
    let emulator = Emulator::start(fast()).await.unwrap();
    let run = write(
        &config(&emulator, json!({})),
        &UPSERT,
        &[state_line("customers", 1)],
    )
    .await;
    run.assert_ok();
    assert_eq!(run.states().len(), 1);
    assert_eq!(emulator.request_count(), 0);

    let run = write(
        &config(&emulator, json!({"api_token": "rv-revoked-2718"})),
        &UPSERT,
        &master_rows(),
    )
    .await;
    assert_eq!(run.status.code(), Some(1));
    assert_eq!(run.error_trace().unwrap()["failure_type"], "config_error");
    assert!(run.states().is_empty());
    run.assert_no_secret("rv-revoked-2718");
}

/// Three streams, their records interleaved, each state closing its own stream's window:
/// the counts the platform checks per stream, over HTTP.
#[tokio::test]
async fn each_stream_state_counts_its_own_stream() {
    let emulator = Emulator::start(fast()).await.unwrap();
    let dir = scratch_dir("revnue-three-streams");
    let lines = vec![
        record_line("customers", &json!({"name": "C1"})),
        record_line("vendors", &json!({"name": "V1"})),
        record_line("customers", &json!({"name": "C2"})),
        record_line("partners", &json!({"name": "P1", "country": "Atlantis"})),
        record_line("vendors", &json!({"name": "V2"})),
        state_line("customers", 1),
        record_line("partners", &json!({"name": "P2"})),
        state_line("vendors", 2),
        state_line("partners", 3),
    ];
    let run = write(
        &config(
            &emulator,
            json!({"object_storage_config": local_rejects(&dir)}),
        ),
        &[
            ("customers", "customer", "append"),
            ("vendors", "supplier", "append"),
            ("partners", "customer", "append"),
        ],
        &lines,
    )
    .await;
    run.assert_ok();
    let counts: Vec<(f64, f64)> = run.states().into_iter().map(state_counts).collect();
    assert_eq!(counts, vec![(2.0, 0.0), (2.0, 0.0), (1.0, 1.0)]);
}

/// Insert (sent again after an unknown outcome), update and upsert: an API that goes down
/// for good ends the sync with one `transient_error` within the retries.
#[tokio::test]
async fn an_api_that_stays_down_ends_the_sync_in_every_mode() {
    for mode in ["append", "update", "append_dedup"] {
        let emulator = Emulator::start(fast()).await.unwrap();
        let seed: Vec<String> = (0..10)
            .map(|i| record_line("customers", &json!({"name": format!("Seed {i}")})))
            .collect();
        write(
            &config(&emulator, json!({})),
            &[("customers", "customer", "append")],
            &seed,
        )
        .await
        .assert_ok();
        let ids: Vec<Value> = emulator
            .records("customers")
            .iter()
            .map(|c| c["id"].clone())
            .collect();
        emulator.fail_after(5);
        let (lines, states) =
            emukit::harness::records_with_states("customers", 200, 10, |i| match mode {
                "update" => json!({"id": ids[i % ids.len()], "city": format!("City {i}")}),
                _ => json!({"name": format!("Down {i}"), "city": "Oslo"}),
            });
        emukit::harness::assert_outage_ends(mode, states, async {
            write(
                &config(&emulator, json!({})),
                &[("customers", "customer", mode)],
                &lines,
            )
            .await
        })
        .await;
    }
}

/// PATCH answering 405 is learnt once a sync: the updates waiting behind the first do not
/// each spend a 405 (at 20 requests a minute, 3 s apiece) before reading and PUTting.
#[tokio::test]
async fn a_405_to_patch_is_learnt_from_one_request() {
    let emulator = Emulator::start(Options {
        no_patch: true,
        ..fast()
    })
    .await
    .unwrap();
    let config = config(&emulator, json!({"max_concurrency": 4}));
    let rows = |city: &str| -> Vec<String> {
        (0..9)
            .map(|i| {
                record_line(
                    "customers",
                    &json!({"name": format!("Shop {i}"), "city": city}),
                )
            })
            .collect()
    };
    write(&config, &UPSERT, &rows("Oslo")).await.assert_ok();
    let run = write(&config, &UPSERT, &rows("Bergen")).await;
    run.assert_ok();
    assert_eq!(emulator.count_status("405"), 1, "{}", run.stdout);
    assert_eq!(emulator.count_method("PUT"), 9);
    let shops: Vec<Value> = emulator
        .records("customers")
        .into_iter()
        .filter(|c| c["name"].as_str().is_some_and(|n| n.starts_with("Shop")))
        .collect();
    assert_eq!(shops.len(), 9);
    assert!(shops.iter().all(|c| c["city"] == "Bergen"), "{shops:?}");
}

/// Every field the connector defaults has that default in its SPEC, so the Airbyte form shows
/// what an empty field becomes.
#[test]
fn the_spec_names_every_default() {
    emukit::harness::assert_spec_defaults::<destination_revnue::Revnue>(
        &serde_json::json!({"api_token": "t"}),
    );
}

/// A resumed insert sends again what its killed run stored: a row whose customer exists and
/// holds its values counts as written; one that differs is rejected naming the fields.
#[tokio::test]
async fn a_resumed_insert_counts_what_it_stored_as_written() {
    let emulator = Emulator::start(fast()).await.unwrap();
    let dir = scratch_dir("revnue-resumed-insert");
    let config = config(
        &emulator,
        json!({"object_storage_config": local_rejects(&dir)}),
    );
    let rows = |n: usize, changed: &[usize]| -> Vec<String> {
        (0..n)
            .map(|i| {
                let city = if changed.contains(&i) {
                    "Changed"
                } else {
                    "Oslo"
                };
                record_line(
                    "customers",
                    &json!({"name": format!("Resumed {i}"), "city": city}),
                )
            })
            .chain([state_line("customers", 1)])
            .collect()
    };
    let insert = [("customers", "customer", "append")];
    write(&config, &insert, &rows(8, &[])).await.assert_ok();
    // A dry run first: it counts what the sync then does, writing nothing.
    let dry_dir = scratch_dir("revnue-resumed-insert-dry");
    let dry_config = merged(
        config.clone(),
        json!({"dry_run": true, "object_storage_config": local_rejects(&dry_dir)}),
    );
    let dry = write(&dry_config, &insert, &rows(12, &[3, 5])).await;
    dry.assert_ok();
    assert_eq!(
        emulator.records("customers").len(),
        8 + 1,
        "the fixture's one and 8"
    );
    let run = write(&config, &insert, &rows(12, &[3, 5])).await;
    run.assert_ok();
    // The same counts (a dry run words a refusal its own way: no request was refused).
    let counts = |run: &Run| {
        let summary = stream_summary(run, "customers").unwrap_or_default();
        summary.split(" (").next().map(str::to_owned)
    };
    assert_eq!(counts(&dry), counts(&run), "{}", dry.stdout);
    assert_eq!(state_counts(run.states()[0]), (10.0, 2.0));
    let rejected = rejected_in(&dir);
    assert_eq!(rejected.len(), 2, "{rejected:?}");
    for reject in &rejected {
        let reason = reject["reason"].as_str().unwrap();
        assert!(reason.contains("differs from the row in city"), "{reason}");
    }
    assert_eq!(
        emulator
            .records("customers")
            .iter()
            .filter(|c| c["name"].as_str().unwrap().starts_with("Resumed"))
            .count(),
        12
    );
}

/// Upsert keeps more than one request in flight when the budget allows it, as insert does:
/// at 50 ms an answer, a budget of 50 a second needs about three.
#[tokio::test]
async fn upsert_grows_its_requests_in_flight_within_the_budget() {
    for mode in ["append", "append_dedup"] {
        let emulator = Emulator::start(Options {
            latency_ms: 50,
            budget_per_minute: 3000,
            ..Options::default()
        })
        .await
        .unwrap();
        let rows: Vec<String> = (0..150)
            .map(|i| {
                record_line(
                    "customers",
                    &json!({"name": format!("Grow {i}"), "city": "Oslo"}),
                )
            })
            .collect();
        let started = Instant::now();
        let config = config(
            &emulator,
            json!({"requests_per_minute": 3000, "max_concurrency": 4}),
        );
        write(&config, &[("customers", "customer", mode)], &rows)
            .await
            .assert_ok();
        let rate = 150.0 / started.elapsed().as_secs_f64();
        assert!(
            emulator.peak_in_flight() >= 2,
            "{mode}: {} in flight at most",
            emulator.peak_in_flight()
        );
        eprintln!(
            "{mode}: {rate:.1} records/s, {} in flight at most",
            emulator.peak_in_flight()
        );
    }
}

/// The reconcile toolkit's promise (issue 27): a dry run counts what the sync then does and
/// writes nothing; the sync sends one PATCH a changed row, with only what changed; a re-run
/// writes nothing and spends the listing's one page.
#[tokio::test]
async fn a_rerun_writes_nothing_and_a_dry_run_counts_what_the_sync_then_does() {
    let emulator = Emulator::start(fast()).await.unwrap();
    let row = |i: usize, city: &str| {
        record_line(
            "customers",
            &json!({"name": format!("Customer {i}"), "city": city}),
        )
    };
    let rows: Vec<String> = (0..300).map(|i| row(i, "Berlin")).collect();
    let changed: Vec<String> = (0..300)
        .map(|i| row(i, if i % 30 == 0 { "Hamburg" } else { "Berlin" }))
        .collect();
    let requests = emukit::harness::assert_reconciles(
        || emulator.stats(),
        |dry_run, lines| {
            let config = config(&emulator, json!({"dry_run": dry_run}));
            async move { write(&config, &UPSERT, &lines).await }
        },
        "customers",
        &rows,
        &changed,
        10,
        1,
    )
    .await;
    eprintln!("re-run of 300 unchanged rows: {requests} requests beyond a sync of none");
    assert_eq!(customer(&emulator, "Customer 30")["city"], "Hamburg");
}
