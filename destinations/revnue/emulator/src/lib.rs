//! A Revnue API v2 emulator: an account at `http://127.0.0.1:PORT`, every route under
//! `/api/v2`, a real HTTP/1.1 server on loopback implementing `shared/revnue-api.md` (§7,
//! "The emulator must"): Bearer tokens, companies, categories, ISO countries and custom field
//! templates from a fixture, customers (and suppliers) with the contract's validation,
//! account-wide case-insensitive names, PUT that replaces and PATCH that merges (or answers
//! 405), DRF-style pages or bare arrays, a sliding per-account budget with `Retry-After`, and
//! faults on demand.
//!
//! Inspection lives outside `/api/v2`, needs no token and suffers no faults:
//! `GET /_emulator/records/{customers|suppliers}`, `GET /_emulator/stats`,
//! `GET /_emulator/requests`.

// A refusal here is the HTTP answer itself, built once per request: boxing it buys nothing.
#![allow(clippy::result_large_err)]

use bytes::Bytes;
use emukit::server::{json_answer, Draw, Dropped, InFlight};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use percent_encoding::percent_decode_str;
use rand::RngExt;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// Everything the emulator can be told; each fault is off unless set.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "revnue-emulator",
    about = "A Revnue API v2 emulator for tests and demos"
)]
pub struct Options {
    /// Port on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// A JSON fixture: `tokens`, `companies` (id, name), `categories` (id, company, category,
    /// subcategories), `countries` (numeric_code, name, alpha_2; default: ISO 3166-1),
    /// `templates` (id, company, name, type, is_active, fields), `customers`, `suppliers`.
    #[arg(long)]
    pub fixture: Option<std::path::PathBuf>,
    /// Seed of every random choice (fault draws, jitter).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Response time of every /api/v2 request, from its arrival, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    #[arg(long, default_value_t = 0)]
    pub jitter_ms: u64,
    /// Requests the account may make per sliding window; past it, 429 with Retry-After.
    #[arg(long, default_value_t = 20)]
    pub budget_per_minute: usize,
    /// The window's length in milliseconds (60,000: a minute; shorter makes tests fast).
    #[arg(long, default_value_t = 60_000)]
    pub window_ms: u64,
    /// PATCH answers 405, as on an account whose API has no partial update.
    #[arg(long)]
    pub no_patch: bool,
    /// Lists answer a bare JSON array instead of `count/next/previous/results` pages.
    #[arg(long)]
    pub bare_lists: bool,
    /// The page size when a list request gives none.
    #[arg(long, default_value_t = 100)]
    pub page_size: usize,
    /// The largest page size a list request may ask for.
    #[arg(long, default_value_t = 500)]
    pub max_page_size: usize,
    /// Supplier routes answer 404 (suppliers not enabled on this account).
    #[arg(long)]
    pub no_suppliers: bool,
    /// `N:STATUS`: the Nth /api/v2 request is answered STATUS (500, 503 with an HTML body, or
    /// 429 with Retry-After: 1) without being applied.
    #[arg(long = "fail-nth")]
    pub fail_nth: Vec<String>,
    /// The Nth /api/v2 request is applied, then answered only after --slow-ms (a timeout that
    /// landed).
    #[arg(long = "slow-nth")]
    pub slow_nth: Vec<u64>,
    #[arg(long, default_value_t = 60_000)]
    pub slow_ms: u64,
    /// After this many requests, every request is answered 503 (an outage that does not end).
    #[arg(long)]
    pub outage_after: Option<u64>,
    /// Share of requests answered 500, 502 or 503 without being applied.
    #[arg(long, default_value_t = 0.0)]
    pub error_rate: f64,
    /// Share of requests whose connection is dropped without an answer, not applied.
    #[arg(long, default_value_t = 0.0)]
    pub drop_rate: f64,
    /// Share of writes applied, then answered 500.
    #[arg(long, default_value_t = 0.0)]
    pub applied_then_failed_rate: f64,
    /// Routes (`POST /customer`) answered 404, as a wrong base URL would be.
    #[arg(long = "route-404")]
    pub routes_404: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        <Self as clap::Parser>::parse_from(["revnue-emulator"])
    }
}

/// The default account's token.
pub const TOKEN: &str = "rv-emulator-5d2c9a71e4";
/// The largest body the emulator reads.
const MAX_BODY: usize = 1 << 20;
const CONTACT_TYPES: [&str; 6] = [
    "account_management",
    "billing",
    "executive",
    "sales",
    "support",
    "technical",
];

fn default_fixture() -> Value {
    json!({
        "tokens": [TOKEN],
        "companies": [{"id": 1, "name": "Default"}, {"id": 2, "name": "Subsidiary"}],
        "categories": [
            {"id": 1, "company": 1, "category": "Retail", "subcategories": ["Food", "Fashion"]},
            {"id": 2, "company": 1, "category": "Manufacturing", "subcategories": []},
            {"id": 3, "company": 1, "category": "Services", "subcategories": ["Consulting"]},
            {"id": 4, "company": 2, "category": "Retail", "subcategories": []}
        ],
        "templates": [
            {"id": 7, "company": 1, "name": "Customer fields", "type": "customer", "is_active": true, "fields": [
                {"id": 21, "name": "Contract value", "data_type": "money", "is_active": true, "order": 1},
                {"id": 22, "name": "Tier", "data_type": "text", "is_active": true, "order": 2},
                {"id": 23, "name": "Seats", "data_type": "number", "is_active": true, "order": 3},
                {"id": 24, "name": "Renewal date", "data_type": "date", "is_active": true, "order": 4},
                {"id": 25, "name": "Legacy code", "data_type": "text", "is_active": false, "order": 5}
            ]},
            {"id": 8, "company": 1, "name": "Supplier fields", "type": "supplier", "is_active": true, "fields": [
                {"id": 31, "name": "Rating", "data_type": "number", "is_active": true, "order": 1}
            ]},
            {"id": 9, "company": 1, "name": "Contract terms", "type": "contract", "is_active": true, "fields": [
                {"id": 41, "name": "Term months", "data_type": "number", "is_active": true, "order": 1}
            ]}
        ],
        "customers": [{"id": 1, "company": 2, "name": "Initech"}],
        "suppliers": []
    })
}

/// ISO 3166-1 as the `/country/` list serves it.
fn iso_countries() -> Vec<Value> {
    isocountry::CountryCode::as_array()
        .iter()
        .map(|c| json!({"numeric_code": c.numeric_id(), "name": c.name(), "alpha_2": c.alpha2()}))
        .collect()
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Kind {
    Customer,
    Supplier,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::Supplier => "supplier",
        }
    }
}

/// Field rules: (name, max characters) for strings.
const STRINGS: [(&str, usize); 14] = [
    ("address_line_1", 50),
    ("address_line_2", 50),
    ("city", 50),
    ("state_province", 50),
    ("zip_postal_code", 20),
    ("phone", 20),
    ("mobile", 20),
    ("fax", 20),
    ("website", 50),
    ("general_description", 1000),
    ("supplementary_description", 1000),
    ("additional_description", 1000),
    ("nda_signed_date", 10),
    ("msa_signed_date", 10),
];
const SUPPLIER_STRINGS: [(&str, usize); 8] = [
    ("business_name", 50),
    ("business_address_line_1", 50),
    ("business_address_line_2", 50),
    ("business_city", 50),
    ("business_state_province", 50),
    ("business_zip_postal_code", 20),
    ("ein", 20),
    ("financial_description", 1000),
];
const BOOLEANS: [&str; 2] = ["nda_signed", "msa_signed"];

#[derive(Default)]
struct Store {
    customers: BTreeMap<u64, Map<String, Value>>,
    suppliers: BTreeMap<u64, Map<String, Value>>,
    next_id: u64,
}

impl Store {
    fn table(&self, kind: Kind) -> &BTreeMap<u64, Map<String, Value>> {
        match kind {
            Kind::Customer => &self.customers,
            Kind::Supplier => &self.suppliers,
        }
    }

    fn table_mut(&mut self, kind: Kind) -> &mut BTreeMap<u64, Map<String, Value>> {
        match kind {
            Kind::Customer => &mut self.customers,
            Kind::Supplier => &mut self.suppliers,
        }
    }
}

struct Shared {
    options: Options,
    fixture: Value,
    countries: Vec<Value>,
    store: Mutex<Store>,
    sequence: AtomicU64,
    /// Requests from this sequence number on are answered 503 ([`Emulator::fail_after`]).
    outage_from: AtomicU64,
    in_flight: AtomicUsize,
    /// When each counted request of the window arrived.
    window: Mutex<VecDeque<Instant>>,
    stats: Mutex<BTreeMap<String, BTreeMap<String, u64>>>,
    /// Every /api/v2 request: method, path with query, status.
    log: Mutex<Vec<(String, String, u16)>>,
    /// The most requests seen in flight at once.
    peak_in_flight: AtomicUsize,
}

/// A running emulator. Dropping it stops the server.
pub struct Emulator {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.server.abort();
    }
}

type Answer = Response<Full<Bytes>>;

impl Emulator {
    /// Binds 127.0.0.1 (on `options.port`, 0 for any) and serves until dropped.
    pub async fn start(options: Options) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", options.port)).await?;
        let addr = listener.local_addr()?;
        let mut fixture = default_fixture();
        if let Some(path) = &options.fixture {
            let given: Value = serde_json::from_str(&std::fs::read_to_string(path)?)
                .map_err(std::io::Error::other)?;
            for (key, value) in given.as_object().cloned().unwrap_or_default() {
                fixture[key] = value;
            }
        }
        let countries = match fixture["countries"].as_array() {
            Some(list) => list.clone(),
            None => iso_countries(),
        };
        let mut store = Store::default();
        for (kind, name) in [(Kind::Customer, "customers"), (Kind::Supplier, "suppliers")] {
            for record in fixture[name].as_array().into_iter().flatten() {
                let Some(record) = record.as_object() else {
                    continue;
                };
                let id = record["id"].as_u64().unwrap_or_default();
                store.next_id = store.next_id.max(id);
                store.table_mut(kind).insert(id, record.clone());
            }
        }
        let shared = Arc::new(Shared {
            options,
            fixture,
            countries,
            store: Mutex::new(store),
            sequence: AtomicU64::new(0),
            outage_from: AtomicU64::new(u64::MAX),
            in_flight: AtomicUsize::new(0),
            window: Mutex::new(VecDeque::new()),
            stats: Mutex::new(BTreeMap::new()),
            log: Mutex::new(Vec::new()),
            peak_in_flight: AtomicUsize::new(0),
        });
        let server = emukit::server::serve(listener, shared.clone(), handle);
        Ok(Self {
            addr,
            shared,
            server,
        })
    }

    /// `http://127.0.0.1:PORT`, the connector's `base_url`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The destination's config for this emulator: its base URL and token.
    pub fn connector_config(&self) -> Value {
        json!({"base_url": self.base_url(), "api_token": TOKEN})
    }

    pub fn options(&self) -> &Options {
        &self.shared.options
    }

    /// Every stored record of `customers` or `suppliers` in the response shape, with its
    /// `company`, by id.
    pub fn records(&self, collection: &str) -> Vec<Value> {
        let kind = match collection {
            "customers" => Kind::Customer,
            "suppliers" => Kind::Supplier,
            other => panic!("unknown collection {other}"),
        };
        let store = self.shared.store.lock().unwrap();
        store
            .table(kind)
            .values()
            .map(|r| {
                let mut shown = self.shared.response(kind, r);
                shown["company"] = r["company"].clone();
                shown
            })
            .collect()
    }

    /// Requests per route and status.
    pub fn stats(&self) -> BTreeMap<String, BTreeMap<String, u64>> {
        self.shared.stats.lock().unwrap().clone()
    }

    /// Every /api/v2 request in arrival order: method, path with query, status.
    pub fn requests(&self) -> Vec<(String, String, u16)> {
        self.shared.log.lock().unwrap().clone()
    }

    /// From now on, the next `requests` requests are answered as usual and every one after
    /// them 503: an outage that begins mid-test and does not end.
    pub fn fail_after(&self, requests: u64) {
        let next = self.shared.sequence.load(Ordering::SeqCst);
        self.shared
            .outage_from
            .store(next + requests, Ordering::SeqCst);
    }

    pub fn request_count(&self) -> u64 {
        self.stats().values().flat_map(|s| s.values()).sum()
    }

    /// Requests answered `status`, over every route.
    pub fn count_status(&self, status: &str) -> u64 {
        self.stats().values().filter_map(|s| s.get(status)).sum()
    }

    /// Requests whose method is `method`.
    pub fn count_method(&self, method: &str) -> u64 {
        self.stats()
            .iter()
            .filter(|(label, _)| label.starts_with(&format!("{method} ")))
            .flat_map(|(_, s)| s.values())
            .sum()
    }

    pub fn peak_in_flight(&self) -> usize {
        self.shared.peak_in_flight.load(Ordering::SeqCst)
    }
}

fn detail(status: u16, text: &str) -> Answer {
    json_answer(status, &json!({"detail": text}))
}

fn html(status: u16) -> Answer {
    Response::builder()
        .status(status)
        .header("content-type", "text/html")
        .body(Full::new(Bytes::from_static(
            b"<html><body><h1>Server Error</h1></body></html>",
        )))
        .expect("valid")
}

/// A query string's value of `key`.
fn query_value(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == key).then(|| percent_decode_str(v).decode_utf8_lossy().into_owned())
    })
}

async fn handle(shared: Arc<Shared>, request: Request<Incoming>) -> Result<Answer, Dropped> {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or_default().to_owned();
    let host = request
        .headers()
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_owned();
    let authorization = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = match http_body_util::Limited::new(request.into_body(), MAX_BODY)
        .collect()
        .await
    {
        Ok(body) => Some(body.to_bytes()),
        Err(_) => None,
    };
    let segments: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect();
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    if segs.first() == Some(&"_emulator") {
        return Ok(inspect(&shared, &segs));
    }
    let Some(rest) = segs.strip_prefix(&["api", "v2"]) else {
        return Ok(detail(404, "Not found."));
    };
    let route_path = format!(
        "/{}",
        rest.iter()
            .map(|s| if s.bytes().all(|b| b.is_ascii_digit()) {
                "{id}"
            } else {
                s
            })
            .collect::<Vec<_>>()
            .join("/")
    );
    let label = format!("{method} {route_path}");
    let started = Instant::now();
    let sequence = shared.sequence.fetch_add(1, Ordering::SeqCst) + 1;
    let o = &shared.options;
    let Draw {
        mut rng,
        latency,
        roll,
    } = Draw::new(o.seed, sequence, o.latency_ms, o.jitter_ms);
    let (_guard, in_flight) = InFlight::enter(&shared.in_flight);
    shared.peak_in_flight.fetch_max(in_flight, Ordering::SeqCst);
    let full_path = if query.is_empty() {
        path.clone()
    } else {
        format!("{path}?{query}")
    };
    let finish = |status: u16, shown: &str| {
        *shared
            .stats
            .lock()
            .unwrap()
            .entry(label.clone())
            .or_default()
            .entry(shown.to_owned())
            .or_default() += 1;
        shared
            .log
            .lock()
            .unwrap()
            .push((method.to_string(), full_path.clone(), status));
    };
    let wait = || tokio::time::sleep_until((started + latency).into());

    let nth = o.fail_nth.iter().find_map(|spec| {
        let (n, status) = spec.split_once(':')?;
        (n.parse::<u64>().ok()? == sequence).then(|| status.parse::<u16>().ok())?
    });
    if let Some(status) = nth {
        wait().await;
        finish(status, &status.to_string());
        return Ok(match status {
            429 => {
                let mut answer = detail(
                    429,
                    "Request was throttled. Expected available in 1 second.",
                );
                answer
                    .headers_mut()
                    .insert("retry-after", "1".parse().expect("digits"));
                answer
            }
            503 => html(503),
            other => detail(other, "Internal server error."),
        });
    }
    if o.outage_after.is_some_and(|after| sequence > after)
        || sequence > shared.outage_from.load(Ordering::SeqCst)
    {
        wait().await;
        finish(503, "503");
        return Ok(html(503));
    }
    if roll < o.error_rate {
        wait().await;
        let status = [500, 502, 503][rng.random_range(0..3)];
        finish(status, &status.to_string());
        return Ok(html(status));
    }
    if roll < o.error_rate + o.drop_rate {
        wait().await;
        finish(0, "dropped");
        return Err(Dropped);
    }
    let token = authorization
        .as_deref()
        .and_then(|h| h.strip_prefix("Bearer "));
    let known = token.is_some_and(|t| {
        shared.fixture["tokens"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|k| k.as_str() == Some(t))
    });
    if !known {
        wait().await;
        finish(401, "401");
        let text = if authorization.is_none() {
            "Authentication credentials were not provided."
        } else {
            "Invalid token."
        };
        let mut answer = detail(401, text);
        answer.headers_mut().insert(
            "www-authenticate",
            "Bearer realm=\"api\"".parse().expect("valid"),
        );
        return Ok(answer);
    }
    if let Some(retry_after) = shared.over_budget() {
        wait().await;
        finish(429, "429");
        let mut answer = detail(
            429,
            &format!("Request was throttled. Expected available in {retry_after} seconds."),
        );
        answer.headers_mut().insert(
            "retry-after",
            retry_after.to_string().parse().expect("digits"),
        );
        return Ok(answer);
    }
    if o.routes_404.iter().any(|r| r == &label) {
        wait().await;
        finish(404, "404");
        return Ok(detail(404, "Not found."));
    }
    let Some(body) = body else {
        wait().await;
        finish(413, "413");
        return Ok(detail(413, "Request body too large."));
    };
    let answer = route(&shared, &method, rest, &query, &body, &host);
    if o.slow_nth.contains(&sequence) {
        tokio::time::sleep(Duration::from_millis(o.slow_ms)).await;
    }
    wait().await;
    let status = answer.status().as_u16();
    if method != Method::GET
        && answer.status().is_success()
        && roll < o.error_rate + o.drop_rate + o.applied_then_failed_rate
    {
        finish(500, "500 (applied)");
        return Ok(detail(500, "Internal server error."));
    }
    finish(status, answer.status().as_str());
    Ok(answer)
}

impl Shared {
    /// Seconds until the window has room, when it has none; else the request counts.
    fn over_budget(&self) -> Option<u64> {
        let span = Duration::from_millis(self.options.window_ms);
        let mut window = self.window.lock().unwrap();
        let now = Instant::now();
        while window
            .front()
            .is_some_and(|t| now.duration_since(*t) >= span)
        {
            window.pop_front();
        }
        if window.len() >= self.options.budget_per_minute {
            let oldest = *window.front().expect("a full window has a first");
            let left = span.saturating_sub(now.duration_since(oldest));
            return Some(left.as_secs_f64().ceil().max(1.0) as u64);
        }
        window.push_back(now);
        None
    }

    fn company_exists(&self, company: u64) -> bool {
        self.fixture["companies"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["id"].as_u64() == Some(company))
    }

    fn categories(&self, company: u64) -> Vec<&Value> {
        self.fixture["categories"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| c["company"].as_u64() == Some(company))
            .collect()
    }

    fn templates(&self, company: u64) -> Vec<&Value> {
        self.fixture["templates"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|t| t["company"].as_u64() == Some(company))
            .collect()
    }

    fn country_name(&self, code: u64) -> Option<&str> {
        self.countries
            .iter()
            .find(|c| c["numeric_code"].as_u64() == Some(code))
            .and_then(|c| c["name"].as_str())
    }

    /// A stored record in the response shape (§2.5): category object, country name,
    /// template fields keyed by name, no company, every field present (null when unset).
    fn response(&self, kind: Kind, stored: &Map<String, Value>) -> Value {
        let company = stored["company"].as_u64().unwrap_or_default();
        let mut out = Map::new();
        out.insert("id".into(), stored["id"].clone());
        out.insert("name".into(), stored["name"].clone());
        let category = stored
            .get("category")
            .and_then(Value::as_u64)
            .and_then(|id| {
                self.categories(company)
                    .into_iter()
                    .find(|c| c["id"].as_u64() == Some(id))
                    .map(|c| json!({"id": id, "name": c["category"]}))
            });
        out.insert("category".into(), category.unwrap_or(Value::Null));
        out.insert(
            "contact_person".into(),
            stored.get("contact_person").cloned().unwrap_or(Value::Null),
        );
        let strings = STRINGS.iter().chain(if kind == Kind::Supplier {
            SUPPLIER_STRINGS.iter()
        } else {
            [].iter()
        });
        for (field, _) in strings {
            let value = match stored.get(*field) {
                Some(Value::String(s)) if !s.is_empty() => json!(s),
                _ => Value::Null,
            };
            out.insert((*field).into(), value);
        }
        for field in ["country", "business_country"] {
            if field == "business_country" && kind != Kind::Supplier {
                continue;
            }
            let name = stored
                .get(field)
                .and_then(Value::as_u64)
                .and_then(|code| self.country_name(code));
            out.insert(field.into(), name.map_or(Value::Null, |n| json!(n)));
        }
        if kind == Kind::Supplier {
            out.insert(
                "type".into(),
                stored.get("type").cloned().unwrap_or(Value::Null),
            );
        }
        for field in BOOLEANS {
            out.insert(
                field.into(),
                json!(stored.get(field).and_then(Value::as_bool).unwrap_or(false)),
            );
        }
        let template = stored.get("template").and_then(|t| {
            let id = t["id"].as_u64()?;
            let definition = self
                .templates(company)
                .into_iter()
                .find(|d| d["id"].as_u64() == Some(id))?;
            let mut fields = Map::new();
            for item in t["fields"].as_array().into_iter().flatten() {
                let name = definition["fields"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|f| f["id"] == item["id"])
                    .and_then(|f| f["name"].as_str())?;
                fields.insert(name.to_owned(), item["value"].clone());
            }
            Some(json!({"id": id, "fields": fields}))
        });
        out.insert("template".into(), template.unwrap_or(Value::Null));
        Value::Object(out)
    }
}

fn inspect(shared: &Shared, segs: &[&str]) -> Answer {
    match segs {
        ["_emulator", "records", collection] => {
            let kind = match *collection {
                "customers" => Kind::Customer,
                "suppliers" => Kind::Supplier,
                _ => return detail(404, "Not found."),
            };
            let store = shared.store.lock().unwrap();
            let all: Vec<Value> = store
                .table(kind)
                .values()
                .map(|r| {
                    let mut shown = shared.response(kind, r);
                    shown["company"] = r["company"].clone();
                    shown
                })
                .collect();
            json_answer(200, &json!(all))
        }
        ["_emulator", "stats"] => json_answer(200, &json!(*shared.stats.lock().unwrap())),
        ["_emulator", "requests"] => {
            let log: Vec<Value> = shared
                .log
                .lock()
                .unwrap()
                .iter()
                .map(|(m, p, s)| json!({"method": m, "path": p, "status": s}))
                .collect();
            json_answer(200, &json!(log))
        }
        _ => detail(404, "Not found."),
    }
}

/// A list answer: DRF's page of `results` with absolute `next`/`previous`, or a bare array.
fn page(shared: &Shared, items: Vec<Value>, query: &str, host: &str, path: &str) -> Answer {
    let count = items.len();
    let window = |skip, take| items.into_iter().skip(skip).take(take).collect();
    page_of(shared, count, window, query, host, path)
}

/// [`page`] of `count` items, of which only the page's are made (`window(skip, take)`): a
/// listing of 100,000 records renders 500 a request, not every one.
fn page_of(
    shared: &Shared,
    count: usize,
    window: impl FnOnce(usize, usize) -> Vec<Value>,
    query: &str,
    host: &str,
    path: &str,
) -> Answer {
    if shared.options.bare_lists {
        return json_answer(200, &Value::Array(window(0, count)));
    }
    let size = query_value(query, "page_size")
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(shared.options.page_size)
        .clamp(1, shared.options.max_page_size.max(1));
    let number = query_value(query, "page")
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let start = (number - 1) * size;
    if start >= count && number > 1 {
        return detail(404, "Invalid page.");
    }
    let link = |n: usize| {
        let kept: Vec<&str> = query
            .split('&')
            .filter(|p| !p.is_empty() && !p.starts_with("page=") && !p.starts_with("page_size="))
            .collect();
        let mut q = kept.join("&");
        if !q.is_empty() {
            q.push('&');
        }
        json!(format!("http://{host}{path}?{q}page={n}&page_size={size}"))
    };
    let results = window(start, size);
    json_answer(
        200,
        &json!({
            "count": count,
            "next": if start + size < count { link(number + 1) } else { Value::Null },
            "previous": if number > 1 { link(number - 1) } else { Value::Null },
            "results": results,
        }),
    )
}

fn route(
    shared: &Shared,
    method: &Method,
    rest: &[&str],
    query: &str,
    body: &Bytes,
    host: &str,
) -> Answer {
    let path = format!("/api/v2/{}/", rest.join("/"));
    let company_query = query_value(query, "company").and_then(|c| c.parse::<u64>().ok());
    let needs_company = || match company_query {
        None => Err(detail(400, "company is required")),
        Some(c) if !shared.company_exists(c) => Err(detail(400, &format!("company {c} not found"))),
        Some(c) => Ok(c),
    };
    match (method, rest) {
        (&Method::GET, ["company"]) => {
            let all = shared.fixture["companies"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            page(shared, all, query, host, &path)
        }
        (&Method::GET, ["country"]) => page(shared, shared.countries.clone(), query, host, &path),
        (&Method::GET, ["category"]) => match needs_company() {
            Ok(c) => {
                let all = shared
                    .categories(c)
                    .into_iter()
                    .map(|c| json!({"id": c["id"], "category": c["category"], "subcategories": c["subcategories"]}))
                    .collect();
                page(shared, all, query, host, &path)
            }
            Err(answer) => answer,
        },
        (&Method::GET, ["custom-field-template"]) => match needs_company() {
            Ok(c) => {
                let all = shared
                    .templates(c)
                    .into_iter()
                    .map(|t| {
                        let mut t = t.clone();
                        t.as_object_mut().expect("object").remove("company");
                        t
                    })
                    .collect();
                page(shared, all, query, host, &path)
            }
            Err(answer) => answer,
        },
        (&Method::GET, ["custom-field-template", id]) => match needs_company() {
            Ok(c) => match shared
                .templates(c)
                .into_iter()
                .find(|t| t["id"].as_u64().map(|i| i.to_string()).as_deref() == Some(*id))
            {
                Some(t) => json_answer(200, t),
                None => detail(404, "Not found."),
            },
            Err(answer) => answer,
        },
        (_, [collection, rest @ ..]) if *collection == "customer" || *collection == "supplier" => {
            let kind = if *collection == "customer" {
                Kind::Customer
            } else {
                Kind::Supplier
            };
            if kind == Kind::Supplier && shared.options.no_suppliers {
                return detail(404, "Not found.");
            }
            let id = match rest {
                [] => None,
                [id] => match id.parse::<u64>() {
                    Ok(id) => Some(id),
                    Err(_) => return detail(404, "Not found."),
                },
                _ => return detail(404, "Not found."),
            };
            records(shared, kind, method, id, query, body, host, &path)
        }
        _ => detail(404, "Not found."),
    }
}

#[allow(clippy::too_many_arguments)]
fn records(
    shared: &Shared,
    kind: Kind,
    method: &Method,
    id: Option<u64>,
    query: &str,
    body: &Bytes,
    host: &str,
    path: &str,
) -> Answer {
    let company_query = query_value(query, "company").and_then(|c| c.parse::<u64>().ok());
    let parse_body = || -> Result<Map<String, Value>, Answer> {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => Ok(map),
            _ => Err(detail(
                400,
                "JSON parse error - the body must be a JSON object",
            )),
        }
    };
    // The body's company first, then the query's.
    let company_of = |fields: &Map<String, Value>, required: bool| -> Result<Option<u64>, Answer> {
        let given = match fields.get("company") {
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::Null) | None => company_query,
            Some(_) => return Err(detail(400, "company: a valid integer is required")),
        };
        match given {
            None if required => Err(detail(400, "company is required")),
            Some(c) if !shared.company_exists(c) => {
                Err(detail(400, &format!("company {c} not found")))
            }
            other => Ok(other),
        }
    };
    let mut store = shared.store.lock().unwrap();
    match (method, id) {
        (&Method::GET, None) => {
            let Some(company) = company_query else {
                return detail(400, "company is required");
            };
            if !shared.company_exists(company) {
                return detail(400, &format!("company {company} not found"));
            }
            let mine: Vec<_> = store
                .table(kind)
                .values()
                .filter(|r| r["company"].as_u64() == Some(company))
                .collect();
            let window = |skip, take| {
                let shown = mine.iter().skip(skip).take(take);
                shown.map(|r| shared.response(kind, r)).collect()
            };
            page_of(shared, mine.len(), window, query, host, path)
        }
        (&Method::GET, Some(id)) => {
            let Some(company) = company_query else {
                return detail(400, "company is required");
            };
            match store.table(kind).get(&id) {
                Some(r) if r["company"].as_u64() == Some(company) => {
                    json_answer(200, &shared.response(kind, r))
                }
                _ => detail(404, "Not found."),
            }
        }
        (&Method::POST, None) => {
            let fields = match parse_body() {
                Ok(f) => f,
                Err(a) => return a,
            };
            let company = match company_of(&fields, true) {
                Ok(c) => c.expect("required"),
                Err(a) => return a,
            };
            let mut record = match validate(shared, kind, company, &fields, true) {
                Ok(r) => r,
                Err(a) => return a,
            };
            if let Some(answer) = duplicate(&store, kind, &record, None) {
                return answer;
            }
            store.next_id += 1;
            let id = store.next_id;
            record.insert("id".into(), json!(id));
            record.insert("company".into(), json!(company));
            let shown = shared.response(kind, &record);
            store.table_mut(kind).insert(id, record);
            json_answer(201, &shown)
        }
        (&Method::PUT, Some(id)) | (&Method::PATCH, Some(id)) => {
            let partial = method == Method::PATCH;
            if partial && shared.options.no_patch {
                return detail(405, "Method \"PATCH\" not allowed.");
            }
            let fields = match parse_body() {
                Ok(f) => f,
                Err(a) => return a,
            };
            let given = match company_of(&fields, !partial) {
                Ok(c) => c,
                Err(a) => return a,
            };
            let Some(existing) = store.table(kind).get(&id).cloned() else {
                return detail(404, "Not found.");
            };
            let company = existing["company"].as_u64().unwrap_or_default();
            if given.is_some_and(|g| g != company) {
                return detail(404, "Not found.");
            }
            let changes = match validate(shared, kind, company, &fields, !partial) {
                Ok(r) => r,
                Err(a) => return a,
            };
            let mut record = if partial {
                let mut merged = existing.clone();
                for (field, value) in changes {
                    if field == "template" {
                        let same_template =
                            merged.get("template").and_then(|t| t.get("id")) == value.get("id");
                        let mut items: Vec<Value> = if same_template {
                            merged["template"]["fields"]
                                .as_array()
                                .cloned()
                                .unwrap_or_default()
                        } else {
                            Vec::new()
                        };
                        for item in value["fields"].as_array().into_iter().flatten() {
                            items.retain(|i| i["id"] != item["id"]);
                            items.push(item.clone());
                        }
                        merged.insert(field, json!({"id": value["id"], "fields": items}));
                    } else {
                        merged.insert(field, value);
                    }
                }
                merged
            } else {
                changes
            };
            record.insert("id".into(), json!(id));
            record.insert("company".into(), json!(company));
            if let Some(answer) = duplicate(&store, kind, &record, Some(id)) {
                return answer;
            }
            let shown = shared.response(kind, &record);
            store.table_mut(kind).insert(id, record);
            json_answer(200, &shown)
        }
        (&Method::DELETE, Some(id)) => match store.table_mut(kind).remove(&id) {
            Some(_) => Response::builder()
                .status(204)
                .body(Full::new(Bytes::new()))
                .expect("valid"),
            None => detail(404, "Not found."),
        },
        _ => detail(405, &format!("Method \"{method}\" not allowed.")),
    }
}

/// The name is taken account-wide (trimmed, any case) by another record of this kind.
fn duplicate(
    store: &Store,
    kind: Kind,
    record: &Map<String, Value>,
    except: Option<u64>,
) -> Option<Answer> {
    let name = record
        .get("name")
        .and_then(Value::as_str)?
        .trim()
        .to_lowercase();
    let taken = store.table(kind).iter().any(|(id, r)| {
        Some(*id) != except
            && r.get("name")
                .and_then(Value::as_str)
                .is_some_and(|n| n.trim().to_lowercase() == name)
    });
    taken.then(|| {
        detail(
            400,
            &format!("{} with this name already exists", kind.name()),
        )
    })
}

fn valid_email(text: &str) -> bool {
    match text.split_once('@') {
        Some((local, domain)) => !local.is_empty() && !domain.is_empty() && !domain.contains('@'),
        None => false,
    }
}

fn is_date(text: &str) -> bool {
    let b = text.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let n = |r: std::ops::Range<usize>| text[r].parse::<u32>().ok();
    let (Some(y), Some(m), Some(d)) = (n(0..4), n(5..7), n(8..10)) else {
        return false;
    };
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&d)
}

/// The body's fields checked by §2.1–2.3 and kept in the stored (request) shape; unknown
/// keys ignored. `whole`: a create or replace (name required).
fn validate(
    shared: &Shared,
    kind: Kind,
    company: u64,
    fields: &Map<String, Value>,
    whole: bool,
) -> Result<Map<String, Value>, Answer> {
    let bad = |text: String| Err(detail(400, &text));
    let mut out = Map::new();
    match fields.get("name") {
        Some(Value::String(name)) if !name.trim().is_empty() => {
            if name.trim().chars().count() > 50 {
                return bad("name: at most 50 characters".into());
            }
            out.insert("name".into(), json!(name.trim()));
        }
        None | Some(Value::Null) if !whole => {}
        _ => return bad("name is required".into()),
    }
    let strings = STRINGS.iter().chain(if kind == Kind::Supplier {
        SUPPLIER_STRINGS.iter()
    } else {
        [].iter()
    });
    for (field, max) in strings {
        match fields.get(*field) {
            None => {}
            Some(Value::Null) => {
                out.insert((*field).into(), Value::Null);
            }
            Some(Value::String(s)) => {
                let s = s.trim();
                if s.chars().count() > *max {
                    return bad(format!("{field}: at most {max} characters"));
                }
                if field.ends_with("_date") && !s.is_empty() && !is_date(s) {
                    return bad(format!("{field}: date has wrong format, use yyyy-MM-dd"));
                }
                out.insert(
                    (*field).into(),
                    if s.is_empty() { Value::Null } else { json!(s) },
                );
            }
            Some(_) => return bad(format!("{field}: not a valid string")),
        }
    }
    for field in BOOLEANS {
        match fields.get(field) {
            None => {}
            Some(Value::Bool(b)) => {
                out.insert(field.into(), json!(b));
            }
            Some(Value::Null) => {
                out.insert(field.into(), json!(false));
            }
            Some(_) => return bad(format!("{field}: must be a valid boolean")),
        }
    }
    let countries: &[&str] = if kind == Kind::Supplier {
        &["country", "business_country"]
    } else {
        &["country"]
    };
    for field in countries {
        match fields.get(*field) {
            None => {}
            Some(Value::Null) => {
                out.insert((*field).into(), Value::Null);
            }
            Some(Value::Number(n)) => {
                let code = n.as_u64().unwrap_or(u64::MAX);
                if shared.country_name(code).is_none() {
                    return bad(format!("country {n} not found"));
                }
                out.insert((*field).into(), json!(code));
            }
            Some(_) => return bad(format!("{field}: a valid integer is required")),
        }
    }
    match fields.get("category") {
        None => {}
        Some(Value::Null) => {
            out.insert("category".into(), Value::Null);
        }
        Some(Value::Number(n)) => {
            let id = n.as_u64().unwrap_or(u64::MAX);
            if !shared
                .categories(company)
                .iter()
                .any(|c| c["id"].as_u64() == Some(id))
            {
                return bad(format!("category {n} not found"));
            }
            out.insert("category".into(), json!(id));
        }
        Some(_) => return bad("category: a valid integer is required".into()),
    }
    if kind == Kind::Supplier {
        match fields.get("type") {
            None => {}
            Some(Value::Null) => {
                out.insert("type".into(), Value::Null);
            }
            Some(Value::String(t)) if t == "us" || t == "foreign" => {
                out.insert("type".into(), json!(t));
            }
            Some(other) => return bad(format!("type: {other} is not a valid choice")),
        }
    }
    match fields.get("contact_person") {
        None => {}
        Some(Value::Null) => {
            out.insert("contact_person".into(), Value::Null);
        }
        Some(Value::Object(person)) => {
            let text = |f: &str| {
                person
                    .get(f)
                    .and_then(Value::as_str)
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
            };
            let (name, email) = (text("name"), text("email"));
            if name.is_some() && email.is_none() {
                return bad("contact_person.email is required when name is given".into());
            }
            if email.is_some() && name.is_none() {
                return bad("contact_person.name is required when email is given".into());
            }
            if name.is_some_and(|n| n.chars().count() > 50) {
                return bad("contact_person.name: at most 50 characters".into());
            }
            if let Some(email) = email {
                if email.chars().count() > 254 || !valid_email(email) {
                    return bad("contact_person.email: enter a valid email address".into());
                }
            }
            let kind_of = text("type");
            if let Some(t) = kind_of {
                if !CONTACT_TYPES.contains(&t) {
                    return bad(format!(
                        "contact_person.type: \"{t}\" is not a valid choice"
                    ));
                }
            }
            out.insert(
                "contact_person".into(),
                json!({"name": name, "email": email, "type": kind_of}),
            );
        }
        Some(_) => return bad("contact_person: must be an object".into()),
    }
    match fields.get("template") {
        None => {}
        Some(Value::Null) => {
            out.insert("template".into(), Value::Null);
        }
        Some(Value::Object(template)) => {
            let id = template.get("id").and_then(Value::as_u64);
            let definition = shared
                .templates(company)
                .into_iter()
                .find(|t| t["id"].as_u64() == id && t["is_active"].as_bool() != Some(false));
            let Some(definition) = definition else {
                return bad(format!(
                    "template {} not found",
                    template.get("id").unwrap_or(&Value::Null)
                ));
            };
            let mut items = Vec::new();
            for (i, item) in template
                .get("fields")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                let field_id = item.get("id").and_then(Value::as_u64);
                let field = definition["fields"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|f| {
                        f["id"].as_u64() == field_id && f["is_active"].as_bool() != Some(false)
                    });
                let Some(field) = field else {
                    return bad(format!(
                        "template.fields[{i}].id: field {} not in template {}",
                        item.get("id").unwrap_or(&Value::Null),
                        definition["id"]
                    ));
                };
                let value = item.get("value").cloned().unwrap_or(Value::Null);
                let out_of_range =
                    || detail(400, &format!("template.fields[{i}].value: out of range"));
                let number = |v: &Value| match v {
                    Value::Number(n) => n.as_f64(),
                    Value::String(s) => s.trim().parse::<f64>().ok(),
                    _ => None,
                };
                let stored = match (field["data_type"].as_str().unwrap_or(""), &value) {
                    (_, Value::Null) => Value::Null,
                    ("money", v) => match number(v) {
                        Some(n)
                            if (0.0..=999_999_999_999_999.0).contains(&n)
                                && ((n * 100.0).round() - n * 100.0).abs() < 1e-6 =>
                        {
                            json!(n)
                        }
                        _ => return Err(out_of_range()),
                    },
                    ("number", v) => match number(v) {
                        Some(n) if n.fract() == 0.0 && n.abs() <= 999_999_999_999_999.0 => {
                            json!(n as i64)
                        }
                        _ => return Err(out_of_range()),
                    },
                    ("date", Value::String(s)) if is_date(s) => value.clone(),
                    ("text", Value::String(s)) if s.chars().count() <= 50 => value.clone(),
                    _ => return Err(out_of_range()),
                };
                items.push(json!({"id": field["id"], "value": stored}));
            }
            out.insert(
                "template".into(),
                json!({"id": definition["id"], "fields": items}),
            );
        }
        Some(_) => return bad("template: must be an object".into()),
    }
    Ok(out)
}
