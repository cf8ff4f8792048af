//! The write plan and record preparation (engine), as ClientSuccess's objects drive them:
//! streams to objects and modes, validation messages, bodies, keys.

use destination_clientsuccess::catalog::{ObjectKind, WriteMode};
use destination_clientsuccess::protocol::{ConfiguredCatalog, NotUtf8};
use destination_clientsuccess::write::plan;
use destination_clientsuccess::write::prepare::{Item, Original, Prepared, ALLOCATION_OVERHEAD};

type Plan = plan::Plan<ObjectKind>;

mod plans {
    use super::*;

    fn catalog(streams: &str) -> ConfiguredCatalog {
        serde_json::from_str(&format!(r#"{{"streams":[{streams}]}}"#)).unwrap()
    }

    fn stream(name: &str, object: Option<&str>, mode: &str) -> String {
        let object = object
            .map(|o| format!(r#","destination_object_name":"{o}""#))
            .unwrap_or_default();
        format!(
            r#"{{"stream":{{"name":"{name}","json_schema":{{}}}},"destination_sync_mode":"{mode}"{object}}}"#
        )
    }

    #[test]
    fn objects_from_name_or_stream_and_modes() {
        let plan = Plan::new(&catalog(
            &[
                stream("accounts", Some("Client"), "append"),
                stream("Contacts", None, "update"),
                stream("contract", None, "append_dedup"),
            ]
            .join(","),
        ))
        .unwrap();
        let got: Vec<_> = plan.streams.iter().map(|s| (s.object, s.mode)).collect();
        assert_eq!(
            got,
            vec![
                (ObjectKind::Client, WriteMode::Insert),
                (ObjectKind::Contact, WriteMode::Update),
                (ObjectKind::Contract, WriteMode::Upsert)
            ]
        );
        assert_eq!(plan.find("Contacts", None), Some(1));
        assert_eq!(plan.find("Contacts", Some("any")), Some(1));
        assert_eq!(plan.find("nope", None), None);
    }

    #[test]
    fn unsupported_objects_and_modes_name_the_stream() {
        let err = Plan::new(&catalog(&stream("deals", None, "append")))
            .err()
            .unwrap()
            .0;
        assert!(
            err.contains("`deals`") && err.contains("client, contact, contract"),
            "{err}"
        );
        for mode in ["overwrite", "soft_delete"] {
            let err = Plan::new(&catalog(&stream("clients", None, mode)))
                .err()
                .unwrap()
                .0;
            assert!(err.contains("`clients`") && err.contains(mode), "{err}");
        }
    }

    #[test]
    fn upsert_matching_key_must_be_the_natural_key() {
        let ok = r#"{"stream":{"name":"c","json_schema":{}},"destination_sync_mode":"append_dedup","destination_object_name":"contact","primary_key":[["email"]]}"#;
        assert!(Plan::new(&catalog(ok)).is_ok());
        let bad = ok.replace(r#"[["email"]]"#, r#"[["externalId"]]"#);
        let err = Plan::new(&catalog(&bad)).err().unwrap().0;
        assert!(err.contains("email") && err.contains("externalId"), "{err}");
        let shapeless = ok.replace(r#"[["email"]]"#, r#""email""#);
        let err = Plan::new(&catalog(&shapeless)).err().unwrap().0;
        assert!(
            err.contains("stream `c`") && err.contains("`primary_key`") && err.contains("a string"),
            "{err}"
        );
    }

    #[test]
    fn a_stream_configured_twice_is_named() {
        let twice = [
            stream("clients", Some("client"), "append"),
            stream("clients", Some("client"), "update"),
        ]
        .join(",");
        let err = Plan::new(&catalog(&twice)).err().unwrap().0;
        assert!(err.contains("`clients`") && err.contains("twice"), "{err}");
    }
}

mod prepare {
    use super::*;

    fn plan(object: &str, mode: &str) -> Plan {
        let catalog: ConfiguredCatalog = serde_json::from_str(&format!(
        r#"{{"streams":[{{"stream":{{"name":"s","json_schema":{{}}}},"destination_sync_mode":"{mode}","destination_object_name":"{object}"}}]}}"#
    ))
    .unwrap();
        Plan::new(&catalog).unwrap()
    }

    /// `prepare` on an owned line, as the tests build them.
    fn prepare(plan: &Plan, line: u64, text: Result<String, NotUtf8>) -> Item {
        destination_clientsuccess::write::prepare::prepare(
            plan,
            line,
            text.as_deref().map_err(Clone::clone),
        )
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
    fn a_lone_surrogate_is_named_as_such() {
        let plan = plan("client", "append");
        for data in [
            r#"{"name":"A\ud800"}"#,
            r#"{"name":"A\udc00B"}"#,
            r#"{"name":"\ud800\u0041"}"#,
        ] {
            let reason = rejection(prepare(&plan, 1, record(data)));
            assert!(
                reason.contains("lone surrogate escape `\\u"),
                "{data}: {reason}"
            );
        }
    }

    #[test]
    fn valid_record_becomes_a_body_without_nulls() {
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
    fn bad_lines_and_unknown_streams_are_rejections() {
        let plan = plan("client", "append");
        let reason = rejection(prepare(&plan, 1, Ok("{not json".into())));
        assert!(reason.contains("not a valid Airbyte message"), "{reason}");
        let other = r#"{"type":"RECORD","record":{"stream":"other","data":{},"emitted_at":1}}"#;
        let reason = rejection(prepare(&plan, 1, Ok(other.into())));
        assert!(
            reason.contains("`other`") && reason.contains("catalog"),
            "{reason}"
        );
        assert!(matches!(
            prepare(
                &plan,
                1,
                Ok(r#"{"type":"LOG","log":{"level":"INFO","message":"x"}}"#.into())
            ),
            Item::Ignored
        ));
    }

    #[test]
    fn duplicate_keys_bad_utf8_and_broken_states() {
        let plan = plan("client", "append");
        let reason = rejection(prepare(&plan, 1, record(r#"{"name":"a","name":"b"}"#)));
        assert!(reason.contains("`name` twice"), "{reason}");
        let reason = rejection(prepare(
            &plan,
            1,
            record(r#"{"name":"a","custom":{"x":1,"x":2}}"#),
        ));
        assert!(reason.contains("`x` twice"), "{reason}");
        let Item::Rejected(r) = prepare(
            &plan,
            4,
            Err(NotUtf8 {
                escaped: "ab\\xFF".into(),
                valid_up_to: 2,
            }),
        ) else {
            panic!()
        };
        assert!(r.reason.contains("UTF-8") && r.reason.contains("offset 2"));
        assert!(matches!(r.original, Original::Line(ref t) if t == "ab\\xFF"));
        let bogus = r#"{"type":"STATE","state":{"type":"BOGUS"}}"#;
        assert!(matches!(
            prepare(&plan, 9, Ok(bogus.into())),
            Item::BadState { line: 9, .. }
        ));
        let not_an_object = r#"{"type":"STATE","state":7}"#;
        assert!(matches!(
            prepare(&plan, 9, Ok(not_an_object.into())),
            Item::BadState { .. }
        ));
    }

    #[test]
    fn a_record_without_nulls_is_sent_as_it_arrived() {
        let plan = plan("client", "append");
        let data = r#"{"name": "Acme", "status": "TRIAL", "active": true}"#;
        let Item::Record(p) = prepare(&plan, 1, record(data)) else {
            panic!()
        };
        assert_eq!(p.body(), data.as_bytes());
        // Held once: the body is the original.
        assert_eq!(
            p.size(),
            data.len() + std::mem::size_of::<Prepared>() + ALLOCATION_OVERHEAD
        );
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
}
