//! The Trackops emulator holds to its contract (`shared/trackops-api.md` §7), asked over HTTP.

use serde_json::{json, Value};
use trackops_emulator::{Emulator, Options, DISABLED_TOKEN, LIMITED_LOGIN, LOGIN, TOKEN};

struct Api {
    http: reqwest::Client,
    base: String,
    user: String,
    token: String,
}

impl Api {
    fn new(emulator: &Emulator) -> Self {
        Self {
            http: emukit::http_client().build().unwrap(),
            base: emulator.base_url(),
            user: format!("{LOGIN}/token"),
            token: TOKEN.into(),
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .basic_auth(&self.user, Some(&self.token));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer = request.send().await.unwrap();
        let status = answer.status().as_u16();
        (status, answer.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::PUT, path, Some(body)).await
    }
}

fn client(name: &str, code: &str) -> Value {
    json!({"client": {"name": name, "account_code": code, "primary_location": {"name": "Main", "state": "co", "country": "us", "zip": 80202}}})
}

#[tokio::test]
async fn credentials_are_checked_as_the_contract_says() {
    let emulator = Emulator::start(Options::default()).await.unwrap();
    let mut api = Api::new(&emulator);
    assert_eq!(api.get("/clients?mode=count").await.0, 200);
    api.user = LOGIN.into();
    assert_eq!(api.get("/clients").await.0, 401, "no /token suffix");
    api.user = format!("{LOGIN}/token");
    api.token = DISABLED_TOKEN.into();
    assert_eq!(api.get("/clients").await.0, 401, "a disabled token");
    api.token = TOKEN.into();
    api.user = format!("{LIMITED_LOGIN}/token");
    let (status, body) = api.get("/clients").await;
    assert_eq!(
        (status, body["message"].as_str()),
        (403, Some("API access requires a Full Access employee"))
    );
}

#[tokio::test]
async fn a_client_comes_with_its_primary_location_and_ids_are_shared() {
    let emulator = Emulator::start(Options::default()).await.unwrap();
    let api = Api::new(&emulator);
    let (status, acme) = api.post("/clients", client("Acme", "A-1")).await;
    assert_eq!(status, 201, "{acme}");
    let (_, locations) = api
        .get(&format!("/client/locations?parent={}", acme["id"]))
        .await;
    let main = &locations[0];
    assert_eq!(
        (
            main["is_primary"].clone(),
            main["state"].clone(),
            main["zip"].clone()
        ),
        (json!(true), json!("CO"), json!("80202"))
    );
    assert_eq!(
        main["id"].as_u64(),
        acme["id"].as_u64().map(|id| id + 1),
        "one id sequence"
    );
    let (status, errors) = api.post("/clients", json!({"client": {"name": "X", "primary_location": {"name": "M", "state": "ZZ", "country": "US"}}})).await;
    assert_eq!(status, 422);
    assert_eq!(
        errors["errors"]["primary_location.state"][0],
        "is not a state or province code of the country"
    );
    assert_eq!(
        api.post("/clients", json!({"name": "unwrapped"})).await.0,
        400
    );
    // A second primary demotes the first; un-marking the primary is refused.
    let (_, second) = api.post("/client/locations", json!({"client_location": {"root_id": acme["id"], "name": "Two", "state": "CO", "country": "US", "is_primary": true}})).await;
    let (_, first) = api.get(&format!("/client/locations/{}", main["id"])).await;
    assert_eq!(first["is_primary"], false);
    let (status, _) = api
        .put(
            &format!("/client/locations/{}", second["id"]),
            json!({"client_location": {"is_primary": false}}),
        )
        .await;
    assert_eq!(status, 422);
}

#[tokio::test]
async fn contacts_hang_from_locations_with_a_contact_role_and_a_unique_email() {
    let emulator = Emulator::start(Options::default()).await.unwrap();
    let api = Api::new(&emulator);
    let (_, acme) = api.post("/clients", client("Acme", "A-1")).await;
    let root = acme["id"].as_u64().unwrap();
    let contact = |client_id: u64, role: u64, email: &str| json!({"client_contact": {"client_id": client_id, "role_id": role, "first_name": "A", "last_name": "B", "email": email}});
    let (status, errors) = api
        .post("/client/contacts", contact(root, 3, "a@x.test"))
        .await;
    assert_eq!(
        (status, errors["errors"]["client_id"][0].as_str()),
        (422, Some("must be a client location, not a root client"))
    );
    assert_eq!(
        api.post("/client/contacts", contact(root + 1, 1, "a@x.test"))
            .await
            .0,
        422,
        "an employee role"
    );
    assert_eq!(
        api.post("/client/contacts", contact(root + 1, 3, "a@x.test"))
            .await
            .0,
        201
    );
    assert_eq!(
        api.post("/client/contacts", contact(root + 1, 3, "A@X.test"))
            .await
            .0,
        422,
        "email taken, any case"
    );
}

#[tokio::test]
async fn filters_match_substrings_without_case_and_pages_end_short() {
    let emulator = Emulator::start(Options::default()).await.unwrap();
    let api = Api::new(&emulator);
    for i in 0..7 {
        api.post(
            "/clients",
            client(&format!("Client {i}"), &format!("CODE-{i}")),
        )
        .await;
    }
    api.post("/clients", client("Other", "XCODE-1")).await;
    let (_, found) = api.get("/clients?account_code=code-1").await;
    assert_eq!(
        found.as_array().unwrap().len(),
        2,
        "substring, any case: CODE-1 and XCODE-1"
    );
    let (_, page) = api.get("/clients?per_page=3&page=3").await;
    assert_eq!(
        page.as_array().unwrap().len(),
        2,
        "8 clients, pages of 3: the third is short"
    );
    let (_, count) = api.get("/clients?per_page=3&mode=count").await;
    assert_eq!(count, json!({"record_count": 8, "page_count": 3}));
    let (_, clamped) = api.get("/clients?per_page=500").await;
    assert_eq!(clamped.as_array().unwrap().len(), 8);
}

#[tokio::test]
async fn the_budget_answers_429_with_retry_after_and_bodies_are_capped() {
    let emulator = Emulator::start(Options {
        budget_per_minute: 3,
        ..Options::default()
    })
    .await
    .unwrap();
    let api = Api::new(&emulator);
    for _ in 0..3 {
        assert_eq!(api.get("/clients").await.0, 200);
    }
    let answer = api
        .http
        .get(format!("{}/clients", api.base))
        .basic_auth(&api.user, Some(&api.token))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 429);
    let wait: u64 = answer.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    let roomy = Emulator::start(Options::default()).await.unwrap();
    let api = Api::new(&roomy);
    let huge = json!({"client": {"name": "x".repeat(1 << 20)}});
    assert_eq!(api.post("/clients", huge).await.0, 413);
    assert_eq!(
        api.call(reqwest::Method::DELETE, "/clients/1", None)
            .await
            .0,
        405
    );
    assert_eq!(api.get("/roles").await.0, 404);
}
