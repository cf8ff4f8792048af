//! Contacts and contracts that name their client by `clientExternalId`: resolved on every
//! surface (v1 lookups, or a v2 read of all clients without v1), once per client and sync,
//! clients created earlier in the same sync found without asking; a name that matches no
//! client, or several, rejects that record alone.

use integration_tests::harness::{record_line, sync};
use integration_tests::{Emulator, Options};
use serde_json::{json, Value};

fn uuid_of(emulator: &Emulator, external: &str) -> Value {
    emulator
        .records("client")
        .into_iter()
        .find(|c| c["externalId"] == external)
        .unwrap_or_else(|| panic!("no client {external}"))["uuid"]
        .clone()
}

fn requests(emulator: &Emulator, endpoint: &str) -> u64 {
    emulator
        .stats()
        .get(endpoint)
        .map_or(0, |by_status| by_status.values().sum())
}

/// One sync: clients, then contacts (and contracts) naming them by externalId, one of them
/// naming a client that does not exist.
async fn one_sync_of_parents_and_children(options: Options, contracts: bool) -> Emulator {
    let emulator = Emulator::start(options).await.unwrap();
    let mut lines = vec![
        record_line("c", &json!({"name": "One", "externalId": "E1"})),
        record_line("c", &json!({"name": "Two", "externalId": "E2"})),
        record_line(
            "p",
            &json!({"clientExternalId": "E1", "email": "a@x.test", "firstName": "Ann"}),
        ),
        record_line("p", &json!({"clientExternalId": "E2", "email": "b@x.test"})),
        record_line("p", &json!({"clientExternalId": "E9", "email": "c@x.test"})),
    ];
    let mut streams = vec![("c", "client", "append"), ("p", "contact", "append")];
    if contracts {
        lines.push(record_line(
            "k",
            &json!({"clientExternalId": "E2", "externalId": "K1", "name": "Deal", "amount": 5}),
        ));
        streams.push(("k", "contract", "append"));
    }
    let s = sync(&emulator, json!({"api_surface": "auto"}), &streams, &lines).await;
    s.run.assert_ok();
    assert_eq!(s.rejected.len(), 1, "{:?}", s.rejected);
    let reason = s.rejected[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("clientExternalId \"E9\"") && reason.contains("matches no client"),
        "{reason}"
    );
    assert_eq!(s.rejected[0]["line"], 5);
    let contacts = emulator.records("contact");
    assert_eq!(contacts.len(), 2);
    assert_eq!(contacts[0]["clientId"], uuid_of(&emulator, "E1"));
    assert_eq!(contacts[1]["clientId"], uuid_of(&emulator, "E2"));
    assert!(contacts.iter().all(|c| c.get("clientExternalId").is_none()));
    if contracts {
        let contracts = emulator.records("contract");
        assert_eq!(contracts.len(), 1);
        assert_eq!(contracts[0]["clientId"], uuid_of(&emulator, "E2"));
    }
    emulator
}

#[tokio::test]
async fn v2_bulk_learns_the_clients_it_created_and_asks_only_for_the_others() {
    let emulator = one_sync_of_parents_and_children(Options::default(), true).await;
    // E1 and E2 were created in the sync: only E9 was looked up, once.
    assert_eq!(requests(&emulator, "GET /v1/clients"), 1);
}

#[tokio::test]
async fn v2_single_resolves_parents() {
    one_sync_of_parents_and_children(Options::account(false, false, true, true), true).await;
}

#[tokio::test]
async fn v1_resolves_parents_to_integer_ids() {
    let emulator =
        one_sync_of_parents_and_children(Options::account(false, false, false, true), false).await;
    // The v1 ids came with the created clients: no v2 read to translate a uuid.
    assert_eq!(requests(&emulator, "GET /v2/client/{uuid}"), 0);
}

#[tokio::test]
async fn without_v1_clients_are_read_through_v2_once() {
    let emulator =
        one_sync_of_parents_and_children(Options::account(true, true, true, false), true).await;
    assert_eq!(requests(&emulator, "GET /v1/clients"), 0);
    assert_eq!(requests(&emulator, "GET /v2/client/search"), 1);
}

#[tokio::test]
async fn many_contacts_over_few_clients_make_one_lookup_per_client() {
    let emulator = Emulator::start(Options::default()).await.unwrap();
    let clients: Vec<String> = (0..10)
        .map(|i| {
            record_line(
                "c",
                &json!({"name": format!("C{i}"), "externalId": format!("X{i}")}),
            )
        })
        .collect();
    sync(&emulator, json!({}), &[("c", "client", "append")], &clients)
        .await
        .run
        .assert_ok();
    // A later sync: the clients exist, none was created by it.
    let contacts: Vec<String> = (0..500)
        .map(|i| {
            record_line(
                "p",
                &json!({"clientExternalId": format!("X{}", i % 10), "email": format!("p{i}@x.test")}),
            )
        })
        .collect();
    let s = sync(
        &emulator,
        json!({}),
        &[("p", "contact", "append")],
        &contacts,
    )
    .await;
    s.run.assert_ok();
    assert!(s.rejected.is_empty(), "{:?}", s.rejected);
    assert_eq!(emulator.count("contact"), 500);
    assert_eq!(requests(&emulator, "GET /v1/clients"), 10);
    let x3 = uuid_of(&emulator, "X3");
    let to_x3 = emulator
        .records("contact")
        .into_iter()
        .filter(|c| c["clientId"] == x3)
        .count();
    assert_eq!(to_x3, 50);
}

#[tokio::test]
async fn the_parent_is_one_field_or_the_other() {
    let emulator = Emulator::start(Options::default()).await.unwrap();
    sync(
        &emulator,
        json!({}),
        &[("c", "client", "append")],
        &[record_line(
            "c",
            &json!({"name": "One", "externalId": "E1"}),
        )],
    )
    .await
    .run
    .assert_ok();
    let e1 = uuid_of(&emulator, "E1");
    let lines = [
        record_line("p", &json!({"email": "none@x.test"})),
        record_line(
            "p",
            &json!({"clientId": e1, "clientExternalId": "E1", "email": "both@x.test"}),
        ),
        record_line(
            "p",
            &json!({"clientExternalId": "E1", "email": "ok@x.test"}),
        ),
    ];
    let s = sync(
        &emulator,
        json!({}),
        &[("p", "contact", "append_dedup")],
        &lines,
    )
    .await;
    s.run.assert_ok();
    let reasons: Vec<&str> = s
        .rejected
        .iter()
        .map(|r| r["reason"].as_str().unwrap())
        .collect();
    assert_eq!(
        reasons,
        [
            "a contact needs its client: give `clientId` (the client's uuid) or `clientExternalId` (the client's externalId)",
            "give `clientId` or `clientExternalId` to name the contact's client, not both",
        ]
    );
    assert_eq!(emulator.count("contact"), 1);
}

#[tokio::test]
async fn an_external_id_two_clients_share_is_rejected_naming_it() {
    // Without v1 the connector reads every client, so it can see two with one externalId.
    let emulator = Emulator::start(Options::account(true, true, true, false))
        .await
        .unwrap();
    let twins = [
        record_line("c", &json!({"name": "A", "externalId": "TWIN"})),
        record_line("c", &json!({"name": "B", "externalId": "TWIN"})),
        record_line("c", &json!({"name": "C", "externalId": "SOLO"})),
    ];
    sync(&emulator, json!({}), &[("c", "client", "append")], &twins)
        .await
        .run
        .assert_ok();
    let lines = [
        record_line(
            "p",
            &json!({"clientExternalId": "TWIN", "email": "t@x.test"}),
        ),
        record_line(
            "p",
            &json!({"clientExternalId": "SOLO", "email": "s@x.test"}),
        ),
    ];
    let s = sync(&emulator, json!({}), &[("p", "contact", "append")], &lines).await;
    s.run.assert_ok();
    assert_eq!(s.rejected.len(), 1);
    assert_eq!(
        s.rejected[0]["reason"],
        "clientExternalId \"TWIN\" matches 2 clients in ClientSuccess; give clientId to say which"
    );
}

/// Creates whose answer was lost after they applied, on every surface: each record with a
/// natural key lands once.
#[tokio::test]
async fn creates_that_applied_then_failed_land_once_on_every_surface() {
    for (surface, options, contracts) in [
        ("v2 bulk", Options::account(true, true, true, true), true),
        (
            "v2 single with upsert",
            Options::account(false, true, true, true),
            true,
        ),
        ("v1", Options::account(false, false, false, true), false),
    ] {
        let emulator = Emulator::start(Options {
            applied_then_failed_rate: 0.2,
            seed: 21,
            ..options
        })
        .await
        .unwrap();
        let mut lines: Vec<String> = (0..60)
            .map(|i| {
                record_line(
                    "c",
                    &json!({"name": format!("C{i}"), "externalId": format!("X{i}")}),
                )
            })
            .collect();
        lines.extend((0..60).map(|i| {
            record_line(
                "p",
                &json!({"clientExternalId": format!("X{}", i % 60), "email": format!("p{i}@x.test")}),
            )
        }));
        let mut streams = vec![("c", "client", "append"), ("p", "contact", "append")];
        if contracts {
            lines.extend((0..30).map(|i| {
                record_line(
                    "k",
                    &json!({"clientExternalId": "X1", "externalId": format!("K{i}"), "amount": i}),
                )
            }));
            streams.push(("k", "contract", "append"));
        }
        let s = sync(
            &emulator,
            json!({"api_surface": "auto", "max_retries": 10, "batch_size": 10}),
            &streams,
            &lines,
        )
        .await;
        s.run.assert_ok();
        assert!(s.rejected.is_empty(), "{surface}: {:?}", s.rejected);
        assert_eq!(emulator.count("client"), 60, "{surface}: clients");
        assert_eq!(emulator.count("contact"), 60, "{surface}: contacts");
        if contracts {
            assert_eq!(emulator.count("contract"), 30, "{surface}: contracts");
        }
        // Applied, then answered 500, 502 or 503, or the connection dropped.
        let failed: u64 = emulator
            .stats()
            .values()
            .flat_map(|by_status| by_status.iter())
            .filter(|(status, _)| status.starts_with('5') || *status == "dropped")
            .map(|(_, n)| n)
            .sum();
        assert!(failed > 0, "{surface}: the faults happened");
    }
}
