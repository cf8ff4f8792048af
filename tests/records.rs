//! ClientSuccess's records as the engine prepares them: the create defaults, the contract's
//! rules and their messages, the update's uuid and the client's upsert key.

use destination_clientsuccess::catalog::ObjectKind;
use engine::protocol::{ConfiguredCatalog, NotUtf8};
use engine::write::plan;
use engine::write::prepare::Item;

type Plan = plan::Plan<ObjectKind>;

fn plan(object: &str, mode: &str) -> Plan {
    let catalog: ConfiguredCatalog = serde_json::from_str(&format!(
    r#"{{"streams":[{{"stream":{{"name":"s","json_schema":{{}}}},"destination_sync_mode":"{mode}","destination_object_name":"{object}"}}]}}"#
))
.unwrap();
    Plan::new(&catalog).unwrap()
}

/// `prepare` on an owned line, as the tests build them.
fn prepare(plan: &Plan, line: u64, text: Result<String, NotUtf8>) -> Item {
    engine::write::prepare::prepare(plan, line, text.as_deref().map_err(Clone::clone))
}

fn record(data: &str) -> Result<String, NotUtf8> {
    Ok(format!(
        r#"{{"type":"RECORD","record":{{"stream":"s","data":{data},"emitted_at":1}}}}"#
    ))
}

fn rejection(item: Item) -> String {
    match item {
        Item::Rejected(r) => r.reason,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[test]
fn an_inserted_client_gets_its_create_defaults_and_no_nulls() {
    let plan = plan("client", "append");
    let Item::Record(p) = prepare(&plan, 7, record(r#"{"name":"Acme","city":null}"#)) else {
        panic!()
    };
    assert_eq!(p.line, 7);
    // Nulls dropped; the create defaults filled in.
    assert_eq!(
        p.body(),
        br#"{"name":"Acme","status":"ACTIVE","active":true}"#
    );
    assert_eq!(&*p.original, r#"{"name":"Acme","city":null}"#);
    assert_eq!(p.key, None);
}

#[test]
fn update_takes_the_uuid_out_and_keys_on_it() {
    let plan = plan("contact", "update");
    let Item::Record(a) = prepare(&plan, 1, record(r#"{"uuid":"u-1","title":"CTO"}"#)) else {
        panic!()
    };
    let Item::Record(b) = prepare(&plan, 2, record(r#"{"uuid":"u-1","title":"CEO"}"#)) else {
        panic!()
    };
    assert_eq!(a.id.as_deref(), Some("u-1"));
    assert_eq!(a.body(), br#"{"title":"CTO"}"#);
    assert_eq!(a.key, b.key);
    assert!(a.key.is_some());
    let reason = rejection(prepare(&plan, 3, record(r#"{"title":"CTO"}"#)));
    assert_eq!(reason, "uuid is required for update");
}

#[test]
fn schema_breaks_name_the_field_and_rule_without_the_value() {
    let plan = plan("client", "append");
    let reason = rejection(prepare(
        &plan,
        1,
        record(r#"{"name":"A","zip":"123456789012345678901"}"#),
    ));
    assert!(
        reason.contains("`zip`") && reason.contains("20"),
        "{reason}"
    );
    assert!(!reason.contains("12345678901"), "value leaked: {reason}");
    let reason = rejection(prepare(&plan, 1, record(r#"{"name":"A","status":"GONE"}"#)));
    assert_eq!(
        reason,
        r#"field `status` must be one of "ACTIVE", "INACTIVE", "TRIAL", "TERMINATED""#
    );
    let reason = rejection(prepare(
        &plan,
        1,
        record(r#"{"name":"A","inceptionDate":"2023-02-30"}"#),
    ));
    assert_eq!(
        reason,
        "field `inceptionDate` is not a valid date (a real calendar date as YYYY-MM-DD)"
    );
    let reason = rejection(prepare(&plan, 1, record(r#"{"city":"X"}"#)));
    assert_eq!(reason, "field `name` is required to insert a client");
    let reason = rejection(prepare(&plan, 1, record(r#"{"name":"A","colour":"red"}"#)));
    assert_eq!(reason, "`colour` is not a field of a ClientSuccess client");
}

#[test]
fn airbyte_columns_are_dropped_and_case_only_matches_taken() {
    let plan = plan("client", "append_dedup");
    let data = r#"{"name":"Acme","externalid":"E1","NPSSCORE":5,"_airbyte_raw_id":"r","_airbyte_extracted_at":"t","_airbyte_meta":{}}"#;
    let Item::Record(p) = prepare(&plan, 1, record(data)) else {
        panic!()
    };
    assert_eq!(
        p.body(),
        br#"{"name":"Acme","externalId":"E1","npsScore":5}"#
    );
    assert_eq!(&*p.original, data);
    // A column that two fields claim, or one whose field is also present, is left to fail.
    let reason = rejection(prepare(
        &plan,
        1,
        record(r#"{"name":"A","externalId":"E","EXTERNALID":"F"}"#),
    ));
    assert_eq!(
        reason,
        "`EXTERNALID` is not a field of a ClientSuccess client"
    );
}

#[test]
fn client_upsert_keys_on_external_id_then_name() {
    let plan = plan("client", "append_dedup");
    let key = |data: &str| match prepare(&plan, 1, record(data)) {
        Item::Record(p) => p.key,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        key(r#"{"name":"A","externalId":"X"}"#),
        key(r#"{"name":"B","externalId":"X"}"#)
    );
    assert_eq!(key(r#"{"name":"A"}"#), key(r#"{"name":"A","city":"Z"}"#));
    assert_ne!(
        key(r#"{"name":"X"}"#),
        key(r#"{"name":"A","externalId":"X"}"#)
    );
}
