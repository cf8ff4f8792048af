//! The emulator against the API contract, driven over HTTP with reqwest: one test per rule and
//! per fault.

use integration_tests::{Emulator, Options};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

struct Api {
    http: reqwest::Client,
    emulator: Emulator,
    key: String,
}

impl Api {
    async fn start(options: Options) -> Self {
        let emulator = Emulator::start(options).await.unwrap();
        let key = emulator.api_key().to_owned();
        let http = emukit::http_client()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        Self {
            http,
            emulator,
            key,
        }
    }

    async fn call(&self, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
        let url = format!("{}{path}", self.emulator.base_url());
        let mut request = self
            .http
            .request(method.parse().unwrap(), url)
            .header("authorization", &self.key);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_owned());
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call("POST", path, Some(&body.to_string())).await
    }

    async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.call("PUT", path, Some(&body.to_string())).await
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.call("GET", path, None).await
    }

    async fn client(&self, body: Value) -> String {
        let (status, created) = self.post("/client/bulk", json!([body])).await;
        assert_eq!(status, 201, "{created}");
        created[0]["uuid"].as_str().unwrap().to_owned()
    }

    /// Asserts the API created what was posted.
    async fn accepted(&self, path: &str, body: Value) {
        let (status, answer) = self.post(path, body).await;
        assert_eq!(status, 201, "{answer}");
    }

    /// Asserts a 400 whose message contains `needle`, and that nothing was stored.
    async fn refused(&self, path: &str, body: Value, needle: &str) {
        let before = ["client", "contact", "contract"].map(|o| self.emulator.count(o));
        let (status, answer) = self.post(path, body).await;
        assert_eq!(status, 400, "{answer}");
        let message = answer["message"].as_str().unwrap();
        assert!(message.contains(needle), "{message:?} lacks {needle:?}");
        assert_eq!(
            before,
            ["client", "contact", "contract"].map(|o| self.emulator.count(o))
        );
    }
}

#[tokio::test]
async fn bulk_create_returns_records_in_order_with_uuids() {
    let api = Api::start(Options::default()).await;
    let (status, created) = api
        .post(
            "/client/bulk",
            json!([{"status": "ACTIVE", "active": true, "name": "A"}, {"status": "ACTIVE", "active": true, "name": "B", "uuid": "ignored"}]),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(created[0]["name"], "A");
    assert_eq!(created[1]["name"], "B");
    assert_ne!(created[1]["uuid"], "ignored", "uuid is ignored on create");
    let uuid = created[0]["uuid"].as_str().unwrap();
    let (status, read) = api.get(&format!("/client/{uuid}")).await;
    assert_eq!((status, &read["name"]), (200, &json!("A")));
}

#[tokio::test]
async fn bulk_create_takes_1_to_100_records() {
    let api = Api::start(Options::default()).await;
    api.refused("/client/bulk", json!([]), "1 to 100").await;
    let many: Vec<Value> = (0..101)
        .map(|i| json!({"status": "ACTIVE", "active": true, "name": format!("c{i}")}))
        .collect();
    api.refused("/client/bulk", json!(many), "1 to 100").await;
    let hundred: Vec<Value> = (0..100)
        .map(|i| json!({"status": "ACTIVE", "active": true, "name": format!("c{i}")}))
        .collect();
    api.accepted("/client/bulk", json!(hundred)).await;
    api.refused(
        "/client/bulk",
        json!({"status": "ACTIVE", "active": true, "name": "not an array"}),
        "array",
    )
    .await;
}

#[tokio::test]
async fn bulk_create_is_all_or_nothing_and_does_not_name_the_record() {
    let api = Api::start(Options::default()).await;
    let mut batch: Vec<Value> = (0..10)
        .map(|i| json!({"status": "ACTIVE", "active": true, "name": format!("c{i}")}))
        .collect();
    batch[7] = json!({"status": "ACTIVE", "active": true, "name": "bad", "npsScore": 500});
    api.refused("/client/bulk", json!(batch), "npsScore").await;
    let (_, answer) = api.post("/client/bulk", json!(batch)).await;
    let message = answer["message"].as_str().unwrap();
    assert!(
        !message.contains('7') && !message.contains("bad"),
        "names the record: {message}"
    );
}

#[tokio::test]
async fn contracts_are_created_one_at_a_time() {
    let api = Api::start(Options::default()).await;
    let client = api
        .client(json!({"status": "ACTIVE", "active": true, "name": "A"}))
        .await;
    let (status, created) = api
        .post(
            "/contract",
            json!({"clientId": client, "name": "K", "amount": 10}),
        )
        .await;
    assert_eq!((status, &created["name"]), (201, &json!("K")));
    assert_eq!(
        api.post("/contract/bulk", json!([{"clientId": client}]))
            .await
            .0,
        405,
        "no contract bulk endpoint"
    );
}

#[tokio::test]
async fn update_changes_given_fields_only_and_404s_unknown_uuids() {
    let api = Api::start(Options::default()).await;
    let uuid = api
        .client(json!({"status": "ACTIVE", "active": true, "name": "A", "city": "Paris", "zip": "75001"}))
        .await;
    let (status, updated) = api
        .put(&format!("/client/{uuid}"), json!({"city": "Lyon"}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        (&updated["city"], &updated["zip"], &updated["name"]),
        (&json!("Lyon"), &json!("75001"), &json!("A"))
    );
    let (status, answer) = api.put("/client/no-such-uuid", json!({"city": "X"})).await;
    assert_eq!(status, 404, "{answer}");
    assert_eq!(
        api.put(&format!("/client/{uuid}"), json!({"zip": "x".repeat(21)}))
            .await
            .0,
        400
    );
}

#[tokio::test]
async fn client_upsert_matches_external_id_then_name() {
    let api = Api::start(Options::default()).await;
    let (status, created) = api
        .post(
            "/client/upsert",
            json!({"status": "ACTIVE", "active": true, "name": "Acme", "externalId": "E1"}),
        )
        .await;
    assert_eq!(status, 201);
    let (status, updated) = api
        .post(
            "/client/upsert",
            json!({"status": "ACTIVE", "active": true, "name": "Acme Inc", "externalId": "E1"}),
        )
        .await;
    assert_eq!((status, &updated["uuid"]), (200, &created["uuid"]));
    let (status, by_name) = api
        .post(
            "/client/upsert",
            json!({"status": "ACTIVE", "active": true, "name": "Acme Inc", "city": "Denver"}),
        )
        .await;
    assert_eq!(
        (status, &by_name["uuid"]),
        (200, &created["uuid"]),
        "falls back to name"
    );
    api.accepted(
        "/client/upsert",
        json!({"status": "ACTIVE", "active": true, "name": "Other"}),
    )
    .await;
    assert_eq!(api.emulator.count("client"), 2);
    api.refused(
        "/client/upsert",
        json!({"externalId": "E9"}),
        "name is required",
    )
    .await;
}

#[tokio::test]
async fn contact_and_contract_upserts_match_their_natural_keys() {
    let api = Api::start(Options::default()).await;
    let client = api
        .client(json!({"status": "ACTIVE", "active": true, "name": "A"}))
        .await;
    api.accepted(
        "/contact/upsert",
        json!({"clientId": client, "email": "a@b.co"}),
    )
    .await;
    let (status, contact) = api
        .post(
            "/contact/upsert",
            json!({"clientId": client, "email": "A@B.co", "title": "CTO"}),
        )
        .await;
    assert_eq!((status, &contact["title"]), (200, &json!("CTO")));
    assert_eq!(
        api.post("/contact/upsert", json!({"clientId": client}))
            .await
            .0,
        201,
        "no key: created"
    );
    assert_eq!(api.emulator.count("contact"), 2);
    api.accepted(
        "/contract/upsert",
        json!({"clientId": client, "externalId": "K1"}),
    )
    .await;
    assert_eq!(
        api.post(
            "/contract/upsert",
            json!({"clientId": client, "externalId": "K1", "amount": 3})
        )
        .await
        .0,
        200
    );
    assert_eq!(api.emulator.count("contract"), 1);
}

#[tokio::test]
async fn search_pages_are_zero_based() {
    let api = Api::start(Options::default()).await;
    let batch: Vec<Value> = (0..5)
        .map(|i| json!({"status": "ACTIVE", "active": true, "name": format!("c{i}")}))
        .collect();
    api.post("/client/bulk", json!(batch)).await;
    let (status, page) = api.get("/client/search?page=1&size=2").await;
    assert_eq!(status, 200);
    assert_eq!(
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].clone())
            .collect::<Vec<_>>(),
        vec![json!("c2"), json!("c3")]
    );
    assert_eq!(
        (&page["totalPages"], &page["totalElements"], &page["page"]),
        (&json!(3), &json!(5), &json!(1))
    );
    assert_eq!(api.get("/client/search?page=0&size=1001").await.0, 400);
    assert_eq!(api.get("/client/search?page=x").await.0, 400);
}

#[tokio::test]
async fn required_fields() {
    let api = Api::start(Options::default()).await;
    api.refused("/client/bulk", json!([{"city": "X"}]), "name is required")
        .await;
    api.refused(
        "/contact/bulk",
        json!([{"email": "a@b.co"}]),
        "clientId is required",
    )
    .await;
    api.refused("/contract", json!({"name": "K"}), "clientId is required")
        .await;
}

#[tokio::test]
async fn types() {
    let api = Api::start(Options::default()).await;
    api.refused(
        "/client/bulk",
        json!([{"status": "ACTIVE", "active": true, "name": 42}]),
        "name must be a string",
    )
    .await;
    api.refused(
        "/client/bulk",
        json!([{"status": "ACTIVE", "active": true, "name": "A", "active": "yes"}]),
        "active must be true or false",
    )
    .await;
    api.refused(
        "/client/bulk",
        json!([{"status": "ACTIVE", "active": true, "name": "A", "npsScore": 1.5}]),
        "npsScore must be an integer",
    )
    .await;
    api.refused(
        "/client/bulk",
        json!([{"status": "ACTIVE", "active": true, "name": "A", "region": {"id": -1}}]),
        "region.id",
    )
    .await;
    api.refused(
        "/client/bulk",
        json!([{"status": "ACTIVE", "active": true, "name": "A", "accTeamingRoles": [{"employeeId": 1}]}]),
        "accTeamingRoles",
    )
    .await;
    api.refused(
        "/client/bulk",
        json!([{"status": "ACTIVE", "active": true, "name": "A", "custom": {"x": [1]}}]),
        "custom.x",
    )
    .await;
}

#[tokio::test]
async fn maximum_lengths() {
    let api = Api::start(Options::default()).await;
    for (field, max) in [
        ("name", 255),
        ("externalId", 100),
        ("zip", 20),
        ("salesforceAccountId", 18),
        ("assignedSalesRep", 45),
        ("siteUrl", 1024),
    ] {
        let mut record = json!({"status": "ACTIVE", "active": true, "name": "A"});
        record[field] = json!("é".repeat(max));
        assert_eq!(
            api.post("/client/bulk", json!([record.clone()])).await.0,
            201,
            "{field} at {max} characters"
        );
        record[field] = json!("é".repeat(max + 1));
        api.refused("/client/bulk", json!([record]), &format!("at most {max}"))
            .await;
    }
}

#[tokio::test]
async fn ranges() {
    let api = Api::start(Options::default()).await;
    api.refused(
        "/client/bulk",
        json!([{"status": "ACTIVE", "active": true, "name": "A", "npsScore": 101}]),
        "between -100 and 100",
    )
    .await;
    api.refused(
        "/client/bulk",
        json!([{"status": "ACTIVE", "active": true, "name": "A", "npsScore": -101}]),
        "between -100 and 100",
    )
    .await;
    api.refused(
        "/client/bulk",
        json!([{"status": "ACTIVE", "active": true, "name": "A", "clientTypeId": -1}]),
        "clientTypeId",
    )
    .await;
    let client = api
        .client(json!({"status": "ACTIVE", "active": true, "name": "A"}))
        .await;
    api.refused(
        "/contract",
        json!({"clientId": client, "amount": -0.01}),
        "amount must not be negative",
    )
    .await;
}

#[tokio::test]
async fn status_enum() {
    let api = Api::start(Options::default()).await;
    for status in ["ACTIVE", "INACTIVE", "TRIAL", "TERMINATED"] {
        api.accepted(
            "/client/bulk",
            json!([{"status": "ACTIVE", "active": true, "name": "A", "status": status}]),
        )
        .await;
    }
    api.refused(
        "/client/bulk",
        json!([{"status": "ACTIVE", "active": true, "name": "A", "status": "active"}]),
        "status must be one of",
    )
    .await;
}

#[tokio::test]
async fn dates_are_real_calendar_dates() {
    let api = Api::start(Options::default()).await;
    api.accepted(
        "/client/bulk",
        json!([{"status": "ACTIVE", "active": true, "name": "A", "inceptionDate": "2024-02-29"}]),
    )
    .await;
    for bad in [
        "2023-02-29",
        "2024-13-01",
        "2024-1-01",
        "01/02/2024",
        "2024-01-01T00:00:00Z",
    ] {
        api.refused(
            "/client/bulk",
            json!([{"status": "ACTIVE", "active": true, "name": "A", "terminatedDate": bad}]),
            "YYYY-MM-DD",
        )
        .await;
    }
}

#[tokio::test]
async fn end_date_not_before_start_date() {
    let api = Api::start(Options::default()).await;
    let client = api
        .client(json!({"status": "ACTIVE", "active": true, "name": "A"}))
        .await;
    api.refused(
        "/contract",
        json!({"clientId": client, "startDate": "2025-02-01", "endDate": "2025-01-31"}),
        "endDate",
    )
    .await;
    let (status, contract) = api
        .post(
            "/contract",
            json!({"clientId": client, "startDate": "2025-02-01", "endDate": "2025-02-01"}),
        )
        .await;
    assert_eq!(status, 201);
    let uuid = contract["uuid"].as_str().unwrap();
    assert_eq!(
        api.put(
            &format!("/contract/{uuid}"),
            json!({"endDate": "2024-12-31"})
        )
        .await
        .0,
        400,
        "checked on update too"
    );
}

#[tokio::test]
async fn email_shape() {
    let api = Api::start(Options::default()).await;
    let client = api
        .client(json!({"status": "ACTIVE", "active": true, "name": "A"}))
        .await;
    api.accepted(
        "/contact/bulk",
        json!([{"clientId": client, "email": "first.last+tag@sub.example.com"}]),
    )
    .await;
    for bad in ["plain", "a@b", "a b@c.co", "@c.co"] {
        api.refused(
            "/contact/bulk",
            json!([{"clientId": client, "email": bad}]),
            "not a valid email",
        )
        .await;
    }
}

#[tokio::test]
async fn timezones_are_tz_database_names() {
    let api = Api::start(Options::default()).await;
    api.accepted(
        "/client/bulk",
        json!([{"status": "ACTIVE", "active": true, "name": "A", "timezone": "America/Denver"}]),
    )
    .await;
    api.refused(
        "/client/bulk",
        json!([{"status": "ACTIVE", "active": true, "name": "A", "timezone": "Mountain Time"}]),
        "tz database",
    )
    .await;
}

#[tokio::test]
async fn unknown_fields_are_refused_by_name() {
    let api = Api::start(Options::default()).await;
    api.refused(
        "/client/bulk",
        json!([{"status": "ACTIVE", "active": true, "name": "A", "colour": "red"}]),
        "unknown field `colour`",
    )
    .await;
}

#[tokio::test]
async fn client_id_must_name_a_client() {
    let api = Api::start(Options::default()).await;
    api.refused(
        "/contact/bulk",
        json!([{"clientId": "nope"}]),
        "names no client",
    )
    .await;
    api.refused("/contract", json!({"clientId": "nope"}), "names no client")
        .await;
}

#[tokio::test]
async fn a_body_that_is_not_json() {
    let api = Api::start(Options::default()).await;
    let (status, answer) = api.call("POST", "/client/bulk", Some("{not json")).await;
    assert_eq!(status, 400);
    assert!(answer["message"]
        .as_str()
        .unwrap()
        .contains("not valid JSON"));
}

#[tokio::test]
async fn authentication_by_key_and_by_expiring_token() {
    let options = Options {
        token_ttl_secs: 1.0,
        ..Options::default()
    };
    let mut api = Api::start(options.clone()).await;
    let http = api.http.clone();
    let no_key = http
        .get(format!("{}/client/search", api.emulator.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(no_key.status(), 401);
    let body: Value = no_key.json().await.unwrap();
    assert_eq!(body, json!({"code": "Unauthorized", "message": ""}));
    api.key = "wrong".into();
    assert_eq!(api.get("/client/search").await.0, 401);

    let bad = http
        .post(api.emulator.auth_url())
        .json(&json!({"username": options.username, "password": "nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);
    let token: Value = http
        .post(api.emulator.auth_url())
        .json(&json!({"username": options.username, "password": options.password}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (&token["token_type"], &token["expires_in"]),
        (&json!("Bearer"), &json!(1))
    );
    api.key = token["access_token"].as_str().unwrap().to_owned();
    assert_eq!(api.get("/client/search").await.0, 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(api.get("/client/search").await.0, 401, "the token expired");
}

#[tokio::test]
async fn fault_latency() {
    let api = Api::start(Options {
        latency_ms: 120,
        jitter_ms: 30,
        ..Options::default()
    })
    .await;
    let started = Instant::now();
    api.get("/client/search").await;
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(120) && elapsed < Duration::from_millis(1000),
        "{elapsed:?}"
    );
}

#[tokio::test]
async fn fault_rate_budget_answers_429_with_retry_after() {
    let api = Api::start(Options {
        rate_limit: Some(3),
        retry_after_secs: 2,
        ..Options::default()
    })
    .await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let response = api
            .http
            .get(format!("{}/client/search", api.emulator.base_url()))
            .header("authorization", &api.key)
            .send()
            .await
            .unwrap();
        if response.status() == 429 {
            assert_eq!(response.headers()["retry-after"], "2");
        }
        statuses.push(response.status().as_u16());
    }
    assert_eq!(&statuses[..3], &[200, 200, 200]);
    assert!(statuses[3..].contains(&429), "{statuses:?}");
}

#[tokio::test]
async fn fault_in_flight_cap_answers_429() {
    let api = Api::start(Options {
        max_in_flight: Some(2),
        latency_ms: 200,
        ..Options::default()
    })
    .await;
    let path = "/client/search";
    let (a, b, c, d, e) = tokio::join!(
        api.get(path),
        api.get(path),
        api.get(path),
        api.get(path),
        api.get(path)
    );
    let statuses = [a.0, b.0, c.0, d.0, e.0];
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        3,
        "{statuses:?}"
    );
}

#[tokio::test]
async fn fault_server_errors_are_not_applied() {
    let api = Api::start(Options {
        error_rate: 1.0,
        ..Options::default()
    })
    .await;
    let (status, _) = api
        .post(
            "/client/bulk",
            json!([{"status": "ACTIVE", "active": true, "name": "A"}]),
        )
        .await;
    assert!([500, 502, 503].contains(&status), "{status}");
    assert_eq!(api.emulator.count("client"), 0);
}

#[tokio::test]
async fn fault_dropped_connections_are_not_applied() {
    let api = Api::start(Options {
        drop_rate: 1.0,
        ..Options::default()
    })
    .await;
    let sent = api
        .http
        .post(format!("{}/client/bulk", api.emulator.base_url()))
        .header("authorization", &api.key)
        .body("[{\"name\":\"A\"}]")
        .send()
        .await;
    assert!(
        sent.is_err(),
        "the connection should drop without an answer"
    );
    assert_eq!(api.emulator.count("client"), 0);
    assert_eq!(api.emulator.stats()["POST /v2/client/bulk"]["dropped"], 1);
}

#[tokio::test]
async fn fault_stalls_outlast_the_client() {
    let api = Api::start(Options {
        stall_rate: 1.0,
        stall_secs: 3.0,
        ..Options::default()
    })
    .await;
    let http = emukit::http_client()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let sent = http
        .get(format!("{}/client/search", api.emulator.base_url()))
        .header("authorization", &api.key)
        .send()
        .await;
    assert!(sent.unwrap_err().is_timeout());
}

#[tokio::test]
async fn fault_applied_then_failed_stores_the_write() {
    let api = Api::start(Options {
        applied_then_failed_rate: 1.0,
        ..Options::default()
    })
    .await;
    for i in 0..6 {
        let sent = api
            .http
            .post(format!("{}/client/bulk", api.emulator.base_url()))
            .header("authorization", &api.key)
            .body(format!(
                "[{{\"name\":\"A{i}\",\"status\":\"ACTIVE\",\"active\":true}}]"
            ))
            .send()
            .await;
        if let Ok(response) = sent {
            assert!(response.status().is_server_error());
        }
    }
    assert_eq!(
        api.emulator.count("client"),
        6,
        "every write was applied despite the failures"
    );
    let stats = &api.emulator.stats()["POST /v2/client/bulk"];
    assert!(stats.keys().all(|s| s != "201"), "{stats:?}");
}

#[tokio::test]
async fn fault_outage_after_n_requests() {
    let api = Api::start(Options {
        outage_after: Some(2),
        ..Options::default()
    })
    .await;
    let statuses = [
        api.get("/client/search").await.0,
        api.get("/client/search").await.0,
        api.get("/client/search").await.0,
    ];
    assert_eq!(statuses, [200, 200, 503]);
}

#[tokio::test]
async fn fault_credentials_revoked_after_n_requests() {
    let api = Api::start(Options {
        revoke_after: Some(1),
        ..Options::default()
    })
    .await;
    assert_eq!(api.get("/client/search").await.0, 200);
    assert_eq!(api.get("/client/search").await.0, 401);
}

#[tokio::test]
async fn faults_are_reproducible_from_the_seed() {
    let statuses = |seed: u64| async move {
        let api = Api::start(Options {
            error_rate: 0.5,
            seed,
            ..Options::default()
        })
        .await;
        let mut out = Vec::new();
        for _ in 0..30 {
            out.push(api.get("/client/search").await.0);
        }
        out
    };
    let a = statuses(5).await;
    assert_eq!(a, statuses(5).await);
    assert_ne!(a, statuses(6).await);
    assert!(a.contains(&200) && a.iter().any(|s| *s >= 500));
}

#[tokio::test]
async fn inspection_dumps_counts_and_resets() {
    let api = Api::start(Options::default()).await;
    api.client(json!({"status": "ACTIVE", "active": true, "name": "A"}))
        .await;
    api.post(
        "/client/bulk",
        json!([{"status": "ACTIVE", "active": true, "name": 1}]),
    )
    .await;
    let http = &api.http;
    let root = api.emulator.root_url();
    let records: Value = http
        .get(format!("{root}/_emulator/records/client"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(records.as_array().unwrap().len(), 1);
    let stats: Value = http
        .get(format!("{root}/_emulator/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        stats["requests"]["POST /v2/client/bulk"],
        json!({"201": 1, "400": 1})
    );
    assert_eq!(stats["total"], 2);
    http.post(format!("{root}/_emulator/reset"))
        .send()
        .await
        .unwrap();
    assert_eq!(api.emulator.count("client"), 0);
    assert_eq!(api.emulator.request_count(), 0);
}

/// A v1 call: same key, paths under `/v1`.
async fn v1(api: &Api, method: &str, path: &str, body: Option<Value>) -> (u16, Value, String) {
    let url = format!("{}/v1{path}", api.emulator.root_url());
    let mut request = api
        .http
        .request(method.parse().unwrap(), url)
        .header("authorization", &api.key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
        content_type,
    )
}

#[tokio::test]
async fn creating_a_client_needs_status_and_active() {
    let api = Api::start(Options::default()).await;
    api.refused(
        "/client/bulk",
        json!([{"name": "A", "active": true}]),
        "status is required",
    )
    .await;
    api.refused(
        "/client",
        json!({"name": "A", "status": "ACTIVE"}),
        "active is required",
    )
    .await;
    api.refused(
        "/client/upsert",
        json!({"name": "A", "externalId": "X"}),
        "is required",
    )
    .await;
    api.accepted(
        "/client",
        json!({"name": "A", "status": "ACTIVE", "active": true}),
    )
    .await;
}

#[tokio::test]
async fn uuids_are_opaque_and_every_record_has_an_integer_id() {
    let api = Api::start(Options::default()).await;
    let uuid = api
        .client(json!({"status": "ACTIVE", "active": true, "name": "A"}))
        .await;
    assert!(uuid.starts_with("cln_") && uuid.len() == 12, "{uuid}");
    let (_, read) = api.get(&format!("/client/{uuid}")).await;
    assert!(read["id"].is_u64(), "{read}");
    let (_, contact) = api
        .post("/contact", json!({"clientId": uuid, "email": "a@b.co"}))
        .await;
    assert!(
        contact["uuid"].as_str().unwrap().starts_with("cnt_"),
        "{contact}"
    );
}

#[tokio::test]
async fn custom_values_are_checked_against_the_definitions() {
    let api = Api::start(Options::default()).await;
    let (status, definitions) = api.get("/customfield/all/CLIENT").await;
    assert_eq!(status, 200);
    let industry = definitions
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["fieldKey"] == "industry__cs")
        .unwrap();
    assert_eq!(industry["fieldTypeName"], "PICKLIST");
    let client = |custom: Value| json!([{"name": "A", "status": "ACTIVE", "active": true, "custom": custom}]);
    api.refused(
        "/client/bulk",
        client(json!({"nope__cs": 1})),
        "`nope__cs` is not defined",
    )
    .await;
    api.refused(
        "/client/bulk",
        client(json!({"seats__cs": "ten"})),
        "`seats__cs` must be a INTEGER",
    )
    .await;
    api.refused(
        "/client/bulk",
        client(json!({"industry__cs": "Mining"})),
        "among",
    )
    .await;
    api.accepted(
        "/client/bulk",
        client(json!({"industry__cs": "Retail", "seats__cs": 3, "vip__cs": true})),
    )
    .await;

    let dir = std::env::temp_dir().join(format!("cs-defs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("defs.json");
    std::fs::write(
        &file,
        json!({"CONTACT": [{"fieldKey": "tier__cs", "fieldLabel": "Tier",
        "fieldTypeName": "STRING", "required": false, "picklistValues": []}]})
        .to_string(),
    )
    .unwrap();
    let api = Api::start(Options {
        custom_fields: Some(file),
        ..Options::default()
    })
    .await;
    let (_, contact_fields) = api.get("/customfield/all/CONTACT").await;
    assert_eq!(contact_fields[0]["fieldKey"], "tier__cs");
    let (_, client_fields) = api.get("/customfield/all/CLIENT").await;
    assert_eq!(client_fields, json!([]));
}

#[tokio::test]
async fn route_families_can_be_missing() {
    let api = Api::start(Options {
        no_v2_bulk: true,
        no_v2_upsert: true,
        no_v2_single: true,
        no_v1: true,
        ..Options::default()
    })
    .await;
    for (method, path) in [
        ("POST", "/client/bulk"),
        ("POST", "/client/upsert"),
        ("POST", "/contract"),
        ("PUT", "/client/x"),
    ] {
        let (status, _) = api.call(method, path, Some("{}")).await;
        assert_eq!(status, 404, "{method} {path}");
    }
    let (status, _, _) = v1(&api, "POST", "/clients", Some(json!({}))).await;
    assert_eq!(status, 404);
    let (status, _) = api.get("/client/search?page=0&size=1").await;
    assert_eq!(status, 200, "reads stay");
}

#[tokio::test]
async fn v1_speaks_as_recorded() {
    let api = Api::start(Options::default()).await;
    let (status, statuses, _) = v1(&api, "GET", "/client-statuses", None).await;
    assert_eq!(
        (status, statuses[0].clone()),
        (200, json!({"id": 1, "code": "A", "description": "Active"}))
    );
    let (status, refusal, _) = v1(
        &api,
        "POST",
        "/clients",
        Some(json!({"name": "A", "status": "ACTIVE"})),
    )
    .await;
    assert_eq!(status, 417, "v1 takes statusId, not status");
    assert!(
        refusal["userMessage"].as_str().unwrap().contains("status"),
        "{refusal}"
    );
    let (status, created, _) = v1(
        &api,
        "POST",
        "/clients",
        Some(
            json!({"name": "A", "statusId": 3, "active": true, "externalId": "X", "city": "Lyon"}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_u64().unwrap();
    assert!(created["uuid"].as_str().unwrap().starts_with("cln_"));
    assert_eq!(
        (
            created["statusId"].clone(),
            created["customFieldValues"].clone()
        ),
        (json!(3), json!([]))
    );
    assert_eq!(api.emulator.records("client")[0]["status"], "TRIAL");

    let (status, found, _) = v1(&api, "GET", "/clients?externalId=X", None).await;
    assert_eq!((status, found["id"].as_u64()), (200, Some(id)));
    let (status, _, _) = v1(&api, "GET", "/clients?externalId=nobody", None).await;
    assert_eq!(status, 404);
    let (status, _, _) = v1(&api, "GET", "/clients/abc", None).await;
    assert_eq!(status, 400, "a malformed id");

    // A PUT replaces: what it leaves out is gone, and a required field left out is refused.
    let (status, _, _) = v1(
        &api,
        "PUT",
        &format!("/clients/{id}"),
        Some(json!({"name": "A2", "statusId": 1, "active": true})),
    )
    .await;
    assert_eq!(status, 200);
    let stored = &api.emulator.records("client")[0];
    assert_eq!(
        (
            stored["name"].as_str(),
            stored.get("city"),
            stored.get("externalId")
        ),
        (Some("A2"), None, None)
    );
    let (status, _, _) = v1(
        &api,
        "PUT",
        &format!("/clients/{id}"),
        Some(json!({"name": "A3"})),
    )
    .await;
    assert_eq!(status, 417);

    let (status, contact, _) = v1(
        &api,
        "POST",
        &format!("/clients/{id}/contacts"),
        Some(json!({"email": "p@x.test", "firstName": "P"})),
    )
    .await;
    assert_eq!(
        status, 200,
        "v1 answers a created contact with 200: {contact}"
    );
    assert_eq!(contact["clientId"], json!(id));
    let contact_id = contact["id"].as_u64().unwrap();
    let (status, none, _) = v1(
        &api,
        "GET",
        "/contacts?clientExternalId=X&email=p@x.test",
        None,
    )
    .await;
    assert_eq!(
        (status, none),
        (200, Value::Null),
        "the client lost its externalId above"
    );
    let (status, found, _) = v1(&api, "GET", "/contacts/search?term=P%40X.test", None).await;
    assert_eq!((status, found[0]["id"].as_u64()), (200, Some(contact_id)));
    let (status, _, _) = v1(
        &api,
        "PUT",
        &format!("/clients/{id}/contacts/{contact_id}/details"),
        Some(json!({"email": "p@x.test", "title": "CEO"})),
    )
    .await;
    assert_eq!(status, 200);
    let stored = &api.emulator.records("contact")[0];
    assert_eq!(
        (stored["title"].as_str(), stored.get("firstName")),
        (Some("CEO"), None)
    );

    let (status, answer, content_type) = v1(
        &api,
        "PATCH",
        &format!("/customfield/value/client/{id}"),
        Some(json!({"seats__cs": 4})),
    )
    .await;
    assert_eq!(
        (status, answer, content_type.as_str()),
        (200, json!("Update successful"), "text/plain")
    );
    assert_eq!(
        api.emulator.records("client")[0]["custom"],
        json!({"seats__cs": 4})
    );
    let (status, _, _) = v1(
        &api,
        "PATCH",
        &format!("/customfield/value/client/{id}"),
        Some(json!({"seats__cs": "many"})),
    )
    .await;
    assert_eq!(status, 417);
}
