//! The emulator keeps the contract (`shared/revnue-api.md` §7) over real HTTP: tokens,
//! company rules, PUT replaces and PATCH merges, the 405 switch, pages, the budget, sizes.

use revnue_emulator::{Emulator, Options, TOKEN};
use serde_json::{json, Value};

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    fn new(emulator: &Emulator) -> Self {
        Self {
            http: emukit::http_client().build().unwrap(),
            base: format!("{}/api/v2", emulator.base_url()),
        }
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer = request.send().await.unwrap();
        let status = answer.status().as_u16();
        let text = answer.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

fn fast() -> Options {
    Options {
        budget_per_minute: 100_000,
        ..Options::default()
    }
}

#[tokio::test]
async fn put_replaces_patch_merges_and_names_are_unique_account_wide() {
    let emulator = Emulator::start(fast()).await.unwrap();
    let api = Client::new(&emulator);
    use reqwest::Method;
    let (status, created) = api
        .send(
            Method::POST,
            "/customer",
            Some(json!({"company": 1, "name": " Acme ", "country": 276, "category": 1, "nda_signed": true,
                "contact_person": {"name": "Ann", "email": "ann@a.example", "type": "billing"},
                "template": {"id": 7, "fields": [{"id": 21, "value": "10.50"}, {"id": 22, "value": "gold"}]}})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["name"], "Acme");
    assert_eq!(created["country"], "Germany");
    assert_eq!(created["category"], json!({"id": 1, "name": "Retail"}));
    assert_eq!(
        created["template"],
        json!({"id": 7, "fields": {"Contract value": 10.5, "Tier": "gold"}})
    );
    assert!(created.get("company").is_none());
    let id = created["id"].as_u64().unwrap();

    let (status, twin) = api
        .send(
            Method::POST,
            "/customer",
            Some(json!({"company": 1, "name": "ACME"})),
        )
        .await;
    assert_eq!(
        (status, twin["detail"].as_str()),
        (400, Some("customer with this name already exists"))
    );
    let (status, other) = api
        .send(
            Method::POST,
            "/customer/",
            Some(json!({"company": 1, "name": "initech"})),
        )
        .await;
    assert_eq!(status, 400, "Initech belongs to company 2: {other}");

    let (status, patched) = api
        .send(
            Method::PATCH,
            &format!("/customer/{id}"),
            Some(json!({"city": "Berlin", "template": {"id": 7, "fields": [{"id": 22, "value": "silver"}]}})),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(
        patched["template"]["fields"],
        json!({"Contract value": 10.5, "Tier": "silver"})
    );
    assert_eq!(
        patched["contact_person"]["name"], "Ann",
        "PATCH keeps what it is not given"
    );

    let (status, replaced) = api
        .send(
            Method::PUT,
            &format!("/customer/{id}?company=1"),
            Some(json!({"company": 1, "name": "Acme"})),
        )
        .await;
    assert_eq!(status, 200, "{replaced}");
    for field in ["city", "contact_person", "template", "country", "category"] {
        assert_eq!(replaced[field], Value::Null, "PUT nulls {field}");
    }
    assert_eq!(replaced["nda_signed"], false);

    let (status, _) = api
        .send(Method::GET, &format!("/customer/{id}/?company=2"), None)
        .await;
    assert_eq!(status, 404, "an id of another company");
    let (status, missing) = api.send(Method::GET, "/customer/", None).await;
    assert_eq!(
        (status, missing["detail"].as_str()),
        (400, Some("company is required"))
    );
    let (status, _) = api
        .send(Method::DELETE, &format!("/customer/{id}"), None)
        .await;
    assert_eq!(status, 204);
}

#[tokio::test]
async fn validation_follows_the_contract_word_for_word() {
    let emulator = Emulator::start(fast()).await.unwrap();
    let api = Client::new(&emulator);
    for (body, expected) in [
        (json!({"name": "A"}), "company is required"),
        (json!({"company": 1}), "name is required"),
        (
            json!({"company": 1, "name": "x".repeat(51)}),
            "name: at most 50 characters",
        ),
        (
            json!({"company": 1, "name": "A", "contact_person": {"name": "Ann"}}),
            "contact_person.email is required when name is given",
        ),
        (
            json!({"company": 1, "name": "A", "template": {"id": 7, "fields": [{"id": 21, "value": -1}]}}),
            "template.fields[0].value: out of range",
        ),
        (
            json!({"company": 1, "name": "A", "category": 99}),
            "category 99 not found",
        ),
        (
            json!({"company": 1, "name": "A", "country": 999}),
            "country 999 not found",
        ),
    ] {
        let (status, answer) = api
            .send(reqwest::Method::POST, "/customer", Some(body))
            .await;
        assert_eq!((status, answer["detail"].as_str()), (400, Some(expected)));
    }
    let big = json!({"company": 1, "name": "A", "general_description": "x".repeat(2 << 20)});
    let (status, _) = api
        .send(reqwest::Method::POST, "/customer", Some(big))
        .await;
    assert_eq!(status, 413);
}

#[tokio::test]
async fn switches_pages_and_the_budget() {
    let customers: Vec<Value> = (1..=7)
        .map(|i| json!({"id": i, "company": 1, "name": format!("C{i}")}))
        .collect();
    let dir = std::env::temp_dir().join(format!("revnue-emulator-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fixture = dir.join("fixture.json");
    std::fs::write(&fixture, json!({"customers": customers}).to_string()).unwrap();
    let emulator = Emulator::start(Options {
        fixture: Some(fixture.clone()),
        no_patch: true,
        budget_per_minute: 3,
        ..Options::default()
    })
    .await
    .unwrap();
    let api = Client::new(&emulator);
    let (status, page) = api
        .send(
            reqwest::Method::GET,
            "/customer/?company=1&page_size=3&page=2",
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(page["count"], 7);
    assert_eq!(page["results"][0]["name"], "C4");
    assert!(
        page["next"]
            .as_str()
            .unwrap()
            .ends_with("company=1&page=3&page_size=3"),
        "{page}"
    );
    let (status, past) = api
        .send(
            reqwest::Method::GET,
            "/customer/?company=1&page_size=3&page=4",
            None,
        )
        .await;
    assert_eq!(
        (status, past["detail"].as_str()),
        (404, Some("Invalid page."))
    );
    let (status, _) = api
        .send(
            reqwest::Method::PATCH,
            "/customer/1",
            Some(json!({"city": "X"})),
        )
        .await;
    assert_eq!(status, 405);
    let (status, throttled) = api.send(reqwest::Method::GET, "/company/", None).await;
    assert_eq!(status, 429);
    assert!(throttled["detail"]
        .as_str()
        .unwrap()
        .starts_with("Request was throttled. Expected available in"));

    let bare = Emulator::start(Options {
        fixture: Some(fixture),
        bare_lists: true,
        ..fast()
    })
    .await
    .unwrap();
    let (status, all) = Client::new(&bare)
        .send(reqwest::Method::GET, "/customer/?company=1", None)
        .await;
    assert_eq!((status, all.as_array().map(Vec::len)), (200, Some(7)));
    let (status, _) = emukit::http_client()
        .build()
        .unwrap()
        .get(format!("{}/api/v2/company/", bare.base_url()))
        .send()
        .await
        .map(|a| (a.status().as_u16(), ()))
        .unwrap();
    assert_eq!(status, 401);
}
