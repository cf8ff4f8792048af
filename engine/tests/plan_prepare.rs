//! The write plan and record preparation over the fake destination's objects: streams to
//! objects and modes, validation messages, bodies, keys.

mod fake;

use engine::catalog::WriteMode;
use engine::protocol::{ConfiguredCatalog, NotUtf8};
use engine::write::plan;
use engine::write::prepare::{Item, Original, Prepared, ALLOCATION_OVERHEAD};
use fake::Fake;

type Plan = plan::Plan<Fake>;

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
                stream("accounts", Some("Thing"), "append"),
                stream("Parts", None, "append_dedup"),
                stream("thing", None, "append_dedup"),
            ]
            .join(","),
        ))
        .unwrap();
        let got: Vec<_> = plan.streams.iter().map(|s| (s.object, s.mode)).collect();
        assert_eq!(
            got,
            vec![
                (Fake::Thing, WriteMode::Insert),
                (Fake::Part, WriteMode::Upsert),
                (Fake::Thing, WriteMode::Upsert)
            ]
        );
        assert_eq!(plan.find("Parts", None), Some(1));
        assert_eq!(plan.find("Parts", Some("any")), Some(1));
        assert_eq!(plan.find("nope", None), None);
    }

    #[test]
    fn unsupported_objects_and_modes_name_the_stream() {
        let err = Plan::new(&catalog(&stream("deals", None, "append")))
            .err()
            .unwrap()
            .0;
        assert!(
            err.contains("`deals`") && err.contains("thing, part"),
            "{err}"
        );
        for mode in ["overwrite", "soft_delete"] {
            let err = Plan::new(&catalog(&stream("things", None, mode)))
                .err()
                .unwrap()
                .0;
            assert!(err.contains("`things`") && err.contains(mode), "{err}");
        }
        // A mode the API offers for one object and not another.
        let err = Plan::new(&catalog(&stream("parts", None, "update")))
            .err()
            .unwrap()
            .0;
        assert!(err.contains("`parts`") && err.contains("update"), "{err}");
    }

    #[test]
    fn upsert_matching_key_must_be_the_natural_key() {
        let ok = r#"{"stream":{"name":"c","json_schema":{}},"destination_sync_mode":"append_dedup","destination_object_name":"thing","primary_key":[["code"]]}"#;
        assert!(Plan::new(&catalog(ok)).is_ok());
        let bad = ok.replace(r#"[["code"]]"#, r#"[["tag"]]"#);
        let err = Plan::new(&catalog(&bad)).err().unwrap().0;
        assert!(err.contains("code") && err.contains("tag"), "{err}");
        let shapeless = ok.replace(r#"[["code"]]"#, r#""code""#);
        let err = Plan::new(&catalog(&shapeless)).err().unwrap().0;
        assert!(
            err.contains("stream `c`") && err.contains("`primary_key`") && err.contains("a string"),
            "{err}"
        );
    }

    #[test]
    fn a_stream_configured_twice_is_named() {
        let twice = [
            stream("things", Some("thing"), "append"),
            stream("things", Some("thing"), "update"),
        ]
        .join(",");
        let err = Plan::new(&catalog(&twice)).err().unwrap().0;
        assert!(err.contains("`things`") && err.contains("twice"), "{err}");
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
    fn a_lone_surrogate_is_named_as_such() {
        let plan = plan("thing", "append");
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
        let plan = plan("thing", "append");
        let Item::Record(p) = prepare(&plan, 7, record(r#"{"name":"Acme","since":null}"#)) else {
            panic!()
        };
        assert_eq!(p.line, 7);
        // Nulls dropped; the object's shape (a create default) applied.
        assert_eq!(p.body(), br#"{"name":"Acme","tag":"new"}"#);
        assert_eq!(&*p.original, r#"{"name":"Acme","since":null}"#);
        assert_eq!(p.key, None);
    }

    #[test]
    fn update_takes_the_id_out_and_keys_on_it() {
        let plan = plan("thing", "update");
        let Item::Record(a) = prepare(&plan, 1, record(r#"{"id":"u-1","name":"CTO"}"#)) else {
            panic!()
        };
        let Item::Record(b) = prepare(&plan, 2, record(r#"{"id":"u-1","name":"CEO"}"#)) else {
            panic!()
        };
        assert_eq!(a.id.as_deref(), Some("u-1"));
        assert_eq!(a.body(), br#"{"name":"CTO"}"#);
        assert_eq!(a.key, b.key);
        assert!(a.key.is_some());
        let reason = rejection(prepare(&plan, 3, record(r#"{"name":"CTO"}"#)));
        assert_eq!(reason, "id is required for update");
    }

    #[test]
    fn schema_breaks_name_the_field_and_rule_without_the_value() {
        let plan = plan("thing", "append");
        let reason = rejection(prepare(
            &plan,
            1,
            record(r#"{"name":"A12345678901234567890"}"#),
        ));
        assert!(
            reason.contains("`name`") && reason.contains("20"),
            "{reason}"
        );
        assert!(!reason.contains("12345678901"), "value leaked: {reason}");
        let reason = rejection(prepare(&plan, 1, record(r#"{"name":"A","tag":"gone"}"#)));
        assert_eq!(reason, r#"field `tag` must be one of "new", "old""#);
        let reason = rejection(prepare(
            &plan,
            1,
            record(r#"{"name":"A","since":"2023-02-30"}"#),
        ));
        assert_eq!(
            reason,
            "field `since` is not a valid date (a real calendar date as YYYY-MM-DD)"
        );
        let reason = rejection(prepare(&plan, 1, record(r#"{"tag":"old"}"#)));
        assert_eq!(reason, "field `name` is required to insert a thing");
        let reason = rejection(prepare(&plan, 1, record(r#"{"name":"A","colour":"red"}"#)));
        assert_eq!(reason, "`colour` is not a field of a Fake thing");
    }

    #[test]
    fn bad_lines_and_unknown_streams_are_rejections() {
        let plan = plan("thing", "append");
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
        let plan = plan("thing", "append");
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
        let plan = plan("thing", "append");
        let data = r#"{"name": "Acme", "tag": "old", "size": 3}"#;
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
        let plan = plan("thing", "append_dedup");
        let data = r#"{"name":"Acme","CODE":"E1","Size":5,"_airbyte_raw_id":"r","_airbyte_extracted_at":"t","_airbyte_meta":{}}"#;
        let Item::Record(p) = prepare(&plan, 1, record(data)) else {
            panic!()
        };
        assert_eq!(p.body(), br#"{"name":"Acme","code":"E1","size":5}"#);
        assert_eq!(&*p.original, data);
        // A column that two fields claim, or one whose field is also present, is left to fail.
        let reason = rejection(prepare(
            &plan,
            1,
            record(r#"{"name":"A","code":"E","CODE":"F"}"#),
        ));
        assert_eq!(reason, "`CODE` is not a field of a Fake thing");
    }

    #[test]
    fn upsert_keys_on_the_first_natural_key_a_record_carries() {
        let plan = plan("thing", "append_dedup");
        let key = |data: &str| match prepare(&plan, 1, record(data)) {
            Item::Record(p) => p.key,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            key(r#"{"name":"A","code":"X"}"#),
            key(r#"{"name":"B","code":"X"}"#)
        );
        assert_eq!(key(r#"{"name":"A"}"#), key(r#"{"name":"A","size":2}"#));
        assert_ne!(key(r#"{"name":"X"}"#), key(r#"{"name":"A","code":"X"}"#));
    }

    #[test]
    fn a_key_is_compared_as_the_object_normalizes_it() {
        let parts = plan("part", "append_dedup");
        let things = plan("thing", "append_dedup");
        let key = |plan: &Plan, data: &str| match prepare(plan, 1, record(data)) {
            Item::Record(p) => p.key,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            key(&parts, r#"{"email":"A@x.io"}"#),
            key(&parts, r#"{"email":"a@X.IO","name":"B"}"#)
        );
        // `code` is compared as sent: case matters.
        assert_ne!(
            key(&things, r#"{"name":"A","code":"Ab"}"#),
            key(&things, r#"{"name":"A","code":"ab"}"#)
        );
    }
}
