//! Custom fields as the account defines them: `discover` publishes each as a typed top-level
//! property, `write` takes such columns, checks them against the definitions and folds them
//! into `custom`; without the definitions, discover still prints the static catalog.

use integration_tests::harness::{
    config_for, record_line, run_connector, scratch_dir, sync, write_json,
};
use integration_tests::{Emulator, Options};
use serde_json::{json, Value};

fn operation<'a>(run: &'a [Value], object: &str, mode: &str) -> &'a Value {
    run.iter()
        .find(|o| o["object_name"] == object && o["sync_mode"] == mode)
        .unwrap()
}

#[tokio::test]
async fn discover_publishes_each_custom_field_typed_at_the_top_level() {
    let emulator = Emulator::start(Options::default()).await.unwrap();
    let dir = scratch_dir("discover-custom");
    let config = write_json(
        &dir,
        "c.json",
        &config_for(&emulator.base_url(), emulator.api_key(), json!({})),
    );
    let run = run_connector(&["discover", "--config", &config], b"").await;
    run.assert_ok();
    let catalog = run.of_type("DESTINATION_CATALOG")[0]["destination_catalog"]["operations"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(catalog.len(), 9);
    let client = &operation(&catalog, "client", "append")["json_schema"]["properties"];
    assert_eq!(client["industry__cs"]["title"], "Industry");
    assert_eq!(
        client["industry__cs"]["enum"],
        json!([
            "Retail",
            "Manufacturing",
            "Software",
            "Healthcare",
            "Finance",
            "Other",
            null
        ])
    );
    assert_eq!(client["seats__cs"]["type"], json!(["integer", "null"]));
    assert_eq!(client["renewal__cs"]["format"], "date");
    assert_eq!(client["custom"]["additionalProperties"], false);
    let contact = &operation(&catalog, "contact", "append_dedup")["json_schema"]["properties"];
    assert_eq!(contact["role__cs"]["type"], json!(["string", "null"]));
    assert!(run.logs("WARN").is_empty(), "{:?}", run.logs("WARN"));
}

#[tokio::test]
async fn without_the_definitions_discover_prints_the_static_catalog_and_warns() {
    let dir = scratch_dir("discover-static");
    // Nothing listens on port 9.
    let config = write_json(
        &dir,
        "c.json",
        &config_for("http://127.0.0.1:9/v2", "k", json!({})),
    );
    let run = run_connector(&["discover", "--config", &config], b"").await;
    run.assert_ok();
    let operations = &run.of_type("DESTINATION_CATALOG")[0]["destination_catalog"]["operations"];
    assert_eq!(operations.as_array().unwrap().len(), 9);
    assert!(operations[0]["json_schema"]["properties"]
        .get("industry__cs")
        .is_none());
    let warnings = run.logs("WARN");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("custom field definitions could not be read"),
        "{}",
        warnings[0]
    );
}

#[tokio::test]
async fn write_folds_custom_columns_into_custom_and_checks_them() {
    let emulator = Emulator::start(Options::default()).await.unwrap();
    let lines = [
        record_line(
            "c",
            &json!({"name": "A", "externalId": "A1", "industry__cs": "Retail", "seats__cs": 12,
            "custom": {"segment__cs": "SMB"}}),
        ),
        record_line(
            "c",
            &json!({"name": "B", "externalId": "B1", "industry__cs": "Mining"}),
        ),
        record_line(
            "c",
            &json!({"name": "C", "externalId": "C1", "custom": {"seats__cs": "many"}}),
        ),
        record_line(
            "c",
            &json!({"name": "D", "externalId": "D1", "vip__cs": true, "renewal__cs": "2027-01-31"}),
        ),
    ];
    let s = sync(&emulator, json!({}), &[("c", "client", "append")], &lines).await;
    s.run.assert_ok();
    let clients = emulator.records("client");
    assert_eq!(clients.len(), 2, "{clients:?}");
    assert_eq!(
        clients[0]["custom"],
        json!({"segment__cs": "SMB", "industry__cs": "Retail", "seats__cs": 12})
    );
    assert!(clients[0].get("industry__cs").is_none());
    assert_eq!(
        clients[1]["custom"],
        json!({"vip__cs": true, "renewal__cs": "2027-01-31"})
    );
    let reasons: Vec<&str> = s
        .rejected
        .iter()
        .map(|r| r["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    // Refused by the connector from the definitions, before any request.
    assert!(
        reasons[0].starts_with("field `industry__cs` must be one of \"Retail\""),
        "{}",
        reasons[0]
    );
    assert!(reasons[1].contains("custom.seats__cs"), "{}", reasons[1]);
    assert!(s.rejected.iter().all(|r| r["http_status"].is_null()));
}
