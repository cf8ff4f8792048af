//! A Gainsight PX REST API emulator: a real HTTP/1.1 server on loopback implementing
//! `shared/gainsight-px-api.md` (§8, "The emulator must"), strictly, with faults on demand,
//! reproducible from a seed. Tests start it in-process with [`Emulator::start`]; the
//! `gainsight-px-emulator` binary runs it standalone for the demo.
//!
//! Inspection lives outside `/v1`, needs no key and suffers no faults:
//! `GET /_emulator/records/{accounts|users}`, `GET /_emulator/stats`, `POST /_emulator/reset`.

// A refusal here is the HTTP answer itself, built once per request: boxing it buys nothing.
#![allow(clippy::result_large_err)]

use bytes::Bytes;
use emukit::server::{Draw, Dropped, InFlight};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use percent_encoding::percent_decode_str;
use rand::RngExt;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::net::TcpListener;

/// Everything the emulator can be told; each fault is off unless set.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "gainsight-px-emulator",
    about = "A Gainsight PX API emulator for tests and demos"
)]
pub struct Options {
    /// Port on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// The API key with Read and Write.
    #[arg(long, default_value = "8f14e45f-ceea-467f-a0e6-7a2f1c5d3b9e")]
    pub api_key: String,
    /// A key with Read only: 403 on POST, PUT and DELETE.
    #[arg(long, default_value = "0c1d2e3f-4a5b-4c6d-8e7f-90a1b2c3d4e5")]
    pub read_only_key: String,
    /// Product tag keys the account knows; others are refused with 400.
    #[arg(long = "property-key", default_values_t = ["AP-EMULATOR-2".to_owned()])]
    pub property_keys: Vec<String>,
    /// A JSON file: `{"account": [definitions], "user": [definitions]}` of CUSTOM attributes
    /// (`apiName`, `name`, `type`, `state`); without it, a few samples.
    #[arg(long)]
    pub attributes: Option<std::path::PathBuf>,
    /// Seed of every random choice (fault draws, jitter).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Response time of every /v1 request, from its arrival, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Random extra latency, 0 to this many milliseconds.
    #[arg(long, default_value_t = 0)]
    pub jitter_ms: u64,
    /// Requests per second (a token bucket of one second's burst); past it, 429.
    #[arg(long, default_value_t = 200)]
    pub rate_limit: u64,
    /// Requests per day; past it, 429.
    #[arg(long, default_value_t = 1_000_000)]
    pub daily_limit: u64,
    /// Requests allowed in flight at once; past it, 429.
    #[arg(long)]
    pub max_in_flight: Option<usize>,
    /// After this many requests, every request is answered 503 (an outage that does not end).
    #[arg(long)]
    pub outage_after: Option<u64>,
    /// Share of requests answered 500, 502 or 503 without being applied.
    #[arg(long, default_value_t = 0.0)]
    pub error_rate: f64,
    /// Share of requests whose connection is dropped without an answer, not applied.
    #[arg(long, default_value_t = 0.0)]
    pub drop_rate: f64,
    /// Share of writes that are applied, then answered 500 (drives the duplicate path).
    #[arg(long, default_value_t = 0.0)]
    pub applied_then_failed_rate: f64,
    /// Request number N (from 1) is answered 503.
    #[arg(long)]
    pub fail_nth: Option<u64>,
    /// Requests numbered from N answer 429 until M (a burst).
    #[arg(long, num_args = 2, value_names = ["FROM", "TO"])]
    pub throttle_burst: Option<Vec<u64>>,
    /// Request number N stalls past any client timeout, then drops.
    #[arg(long)]
    pub stall_nth: Option<u64>,
    /// Every 403 comes as an HTML page, as some proxies send.
    #[arg(long)]
    pub html_403: bool,
    /// Answer 404 (no envelope) on every /v1 route but the attribute metadata.
    #[arg(long)]
    pub no_write_routes: bool,
}

impl Default for Options {
    fn default() -> Self {
        <Self as clap::Parser>::parse_from(["gainsight-px-emulator"])
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Account,
    User,
}

impl Kind {
    fn parse(collection: &str) -> Option<Self> {
        match collection {
            "accounts" => Some(Self::Account),
            "users" => Some(Self::User),
            _ => None,
        }
    }

    fn key(self) -> &'static str {
        match self {
            Self::Account => "id",
            Self::User => "identifyId",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Self::Account => "Account",
            Self::User => "User",
        }
    }

    fn collection(self) -> &'static str {
        match self {
            Self::Account => "accounts",
            Self::User => "users",
        }
    }
}

/// A field's type, as the contract's tables give it.
#[derive(Clone, Copy, PartialEq)]
enum Type {
    Text,
    Int32,
    Int64,
    Float,
    Bool,
    Date,
    Keys,
    Location,
    Custom,
    Enum(&'static [&'static str]),
    ReadOnly,
}

fn field_type(kind: Kind, field: &str) -> Option<Type> {
    use Type::*;
    let common = match field {
        "propertyKeys" => Some(Keys),
        "location" => Some(Location),
        "customAttributes" => Some(Custom),
        "createDate" | "lastModifiedDate" => Some(ReadOnly),
        _ => None,
    };
    common.or(match (kind, field) {
        (
            Kind::Account,
            "id"
            | "name"
            | "trackedSubscriptionId"
            | "sfdcId"
            | "dunsNumber"
            | "industry"
            | "sicCode"
            | "naicsCode"
            | "website"
            | "plan"
            | "parentGroupId"
            | "gsId"
            | "csm",
        ) => Some(Text),
        (Kind::Account, "numberOfEmployees" | "healthScore") => Some(Int32),
        (Kind::Account, "lastSeenDate" | "renewalDate") => Some(Date),
        (Kind::Account, "nps") => Some(Float),
        (Kind::Account, "numberOfUsers") => Some(ReadOnly),
        (
            Kind::User,
            "identifyId" | "email" | "firstName" | "lastName" | "title" | "phone" | "role"
            | "subscriptionId" | "sfdcContactId" | "accountId",
        ) => Some(Text),
        (Kind::User, "type") => Some(Enum(&["LEAD", "USER", "VISITOR", "EMPTY_USER_TYPE"])),
        (Kind::User, "gender") => Some(Enum(&["MALE", "FEMALE", "OTHER", "EMPTY_GENDER"])),
        (Kind::User, "signUpDate" | "firstVisitDate") => Some(Date),
        (Kind::User, "score") => Some(Int64),
        (Kind::User, "globalUnsubscribe") => Some(Bool),
        (
            Kind::User,
            "id"
            | "aptrinsicId"
            | "globalId"
            | "lastSeenDate"
            | "numberOfVisits"
            | "lastInferredLocation"
            | "lastVisitedUserAgentData"
            | "channelMetricList",
        ) => Some(ReadOnly),
        _ => None,
    })
}

const LOCATION_PARTS: [&str; 10] = [
    "countryName",
    "countryCode",
    "stateName",
    "stateCode",
    "city",
    "street",
    "postalCode",
    "continent",
    "regionName",
    "timeZone",
];

/// The DEFAULT attributes the metadata lists (contract §2), by object.
fn default_attributes(kind: Kind) -> Vec<(&'static str, &'static str)> {
    let mut list: Vec<(&str, &str)> = match kind {
        Kind::Account => vec![
            ("id", "STRING"),
            ("name", "STRING"),
            ("trackedSubscriptionId", "STRING"),
            ("sfdcId", "STRING"),
            ("industry", "STRING"),
            ("numberOfEmployees", "NUMBER"),
            ("website", "STRING"),
            ("plan", "STRING"),
            ("lastSeenDate", "DATE_TIME"),
            ("renewalDate", "DATE_TIME"),
            ("healthScore", "NUMBER"),
            ("nps", "NUMBER"),
        ],
        Kind::User => vec![
            ("id", "STRING"),
            ("email", "STRING"),
            ("firstName", "STRING"),
            ("lastName", "STRING"),
            ("title", "STRING"),
            ("phone", "STRING"),
            ("role", "STRING"),
            ("accountId", "STRING"),
            ("signUpDate", "DATE_TIME"),
            ("score", "NUMBER"),
        ],
    };
    list.extend(LOCATION_PARTS.iter().map(|p| (*p, "STRING")));
    list
}

#[derive(Clone)]
struct Attribute {
    api_name: String,
    name: String,
    kind: String,
    state: String,
}

fn sample_attributes() -> HashMap<Kind, Vec<Attribute>> {
    let a = |api: &str, kind: &str, state: &str| Attribute {
        api_name: api.into(),
        name: api.into(),
        kind: kind.into(),
        state: state.into(),
    };
    HashMap::from([
        (
            Kind::Account,
            vec![
                a("tier", "STRING", "ENABLED"),
                a("seats", "NUMBER", "ENABLED"),
                a("trialEnds", "DATE_TIME", "ENABLED"),
                a("legacyScore", "NUMBER", "DELETED"),
            ],
        ),
        (
            Kind::User,
            vec![
                a("beta", "BOOLEAN", "ENABLED"),
                a("oldFlag", "STRING", "DISABLED"),
            ],
        ),
    ])
}

fn load_attributes(path: &std::path::Path) -> std::io::Result<HashMap<Kind, Vec<Attribute>>> {
    let value: Value =
        serde_json::from_str(&std::fs::read_to_string(path)?).map_err(std::io::Error::other)?;
    let mut out = HashMap::new();
    for (name, kind) in [("account", Kind::Account), ("user", Kind::User)] {
        let list = value[name].as_array().cloned().unwrap_or_default();
        let parsed = list
            .iter()
            .map(|d| Attribute {
                api_name: d["apiName"].as_str().unwrap_or_default().into(),
                name: d["name"]
                    .as_str()
                    .or(d["apiName"].as_str())
                    .unwrap_or_default()
                    .into(),
                kind: d["type"].as_str().unwrap_or("STRING").into(),
                state: d["state"].as_str().unwrap_or("ENABLED").into(),
            })
            .collect();
        out.insert(kind, parsed);
    }
    Ok(out)
}

/// A search's result, paged through by `scrollId`.
struct Scroll {
    kind: Kind,
    all: Vec<Map<String, Value>>,
    next: usize,
}

#[derive(Default)]
struct Store {
    records: BTreeMap<Kind, Vec<Map<String, Value>>>,
    index: HashMap<(Kind, String), usize>,
    /// Soft-deleted users by identifyId, with when (revived by a write within 7 days).
    deleted_users: HashMap<String, (Instant, Map<String, Value>)>,
    scrolls: HashMap<String, Scroll>,
    next_scroll: u64,
}

impl Store {
    fn get(&self, kind: Kind, key: &str) -> Option<&Map<String, Value>> {
        let at = *self.index.get(&(kind, key.to_owned()))?;
        self.records.get(&kind)?.get(at)
    }

    fn insert(&mut self, kind: Kind, record: Map<String, Value>) {
        let key = record[kind.key()].as_str().unwrap_or_default().to_owned();
        let list = self.records.entry(kind).or_default();
        self.index.insert((kind, key), list.len());
        list.push(record);
    }

    fn remove(&mut self, kind: Kind, key: &str) -> Option<Map<String, Value>> {
        let at = self.index.remove(&(kind, key.to_owned()))?;
        let list = self.records.get_mut(&kind)?;
        let removed = list.remove(at);
        for (i, record) in list.iter().enumerate().skip(at) {
            let k = record[kind.key()].as_str().unwrap_or_default().to_owned();
            self.index.insert((kind, k), i);
        }
        Some(removed)
    }

    fn users_of(&self, account: &str) -> usize {
        self.records.get(&Kind::User).map_or(0, |users| {
            users.iter().filter(|u| u["accountId"] == account).count()
        })
    }
}

struct Shared {
    options: Options,
    attributes: HashMap<Kind, Vec<Attribute>>,
    store: Mutex<Store>,
    sequence: AtomicU64,
    /// Requests from this sequence number on are answered 503 ([`Emulator::fail_after`]).
    outage_from: AtomicU64,
    in_flight: AtomicUsize,
    /// Token bucket: (tokens, last refill).
    bucket: Mutex<(f64, Instant)>,
    today: AtomicU64,
    stats: Mutex<BTreeMap<String, BTreeMap<String, u64>>>,
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

type Reply = Result<Response<Full<Bytes>>, Dropped>;

impl Emulator {
    /// Binds 127.0.0.1 (on `options.port`, 0 for any) and serves until dropped.
    pub async fn start(options: Options) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", options.port)).await?;
        let addr = listener.local_addr()?;
        let attributes = match &options.attributes {
            Some(path) => load_attributes(path)?,
            None => sample_attributes(),
        };
        let shared = Arc::new(Shared {
            bucket: Mutex::new((options.rate_limit as f64, Instant::now())),
            options,
            attributes,
            store: Mutex::new(Store::default()),
            sequence: AtomicU64::new(0),
            outage_from: AtomicU64::new(u64::MAX),
            in_flight: AtomicUsize::new(0),
            today: AtomicU64::new(0),
            stats: Mutex::new(BTreeMap::new()),
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

    pub fn api_key(&self) -> &str {
        &self.shared.options.api_key
    }

    /// The destination's config for this emulator: its base URL, the read-write key and the
    /// product this emulator's accounts belong to.
    pub fn connector_config(&self) -> Value {
        json!({
            "api_key": self.api_key(),
            "base_url": self.base_url(),
            "property_keys": ["AP-EMULATOR-2"],
        })
    }

    pub fn read_only_key(&self) -> &str {
        &self.shared.options.read_only_key
    }

    pub fn options(&self) -> &Options {
        &self.shared.options
    }

    /// Every stored record (`accounts` or `users`), in creation order, as GET shows them.
    pub fn records(&self, collection: &str) -> Vec<Value> {
        let kind = Kind::parse(collection).expect("accounts or users");
        let store = self.shared.store.lock().unwrap();
        store
            .records
            .get(&kind)
            .map(|list| list.iter().map(|r| full_record(kind, r, &store)).collect())
            .unwrap_or_default()
    }

    /// Requests per endpoint and status.
    pub fn stats(&self) -> BTreeMap<String, BTreeMap<String, u64>> {
        self.shared.stats.lock().unwrap().clone()
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

    /// Requests answered with `status`, over every endpoint.
    pub fn count_status(&self, status: &str) -> u64 {
        self.stats().values().filter_map(|s| s.get(status)).sum()
    }

    /// Stores a record as if it had been created.
    pub fn seed_record(&self, collection: &str, record: Value) {
        let kind = Kind::parse(collection).expect("accounts or users");
        let Value::Object(mut record) = record else {
            panic!("an object")
        };
        stamp(&mut record, true);
        self.shared.store.lock().unwrap().insert(kind, record);
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn stamp(record: &mut Map<String, Value>, created: bool) {
    let now = json!(now_ms());
    if created {
        record.insert("createDate".into(), now.clone());
    }
    record.insert("lastModifiedDate".into(), now);
}

/// A record as GET returns it: every field, unset ones as "", 0 or null.
fn full_record(kind: Kind, stored: &Map<String, Value>, store: &Store) -> Value {
    let mut out = Map::new();
    let names: &[&str] = match kind {
        Kind::Account => &[
            "id",
            "name",
            "trackedSubscriptionId",
            "sfdcId",
            "dunsNumber",
            "industry",
            "sicCode",
            "naicsCode",
            "website",
            "plan",
            "numberOfEmployees",
            "lastSeenDate",
            "renewalDate",
            "parentGroupId",
            "healthScore",
            "nps",
            "gsId",
            "csm",
        ],
        Kind::User => &[
            "identifyId",
            "type",
            "gender",
            "email",
            "firstName",
            "lastName",
            "title",
            "phone",
            "role",
            "subscriptionId",
            "sfdcContactId",
            "accountId",
            "signUpDate",
            "firstVisitDate",
            "score",
            "globalUnsubscribe",
        ],
    };
    for name in names {
        let default = match field_type(kind, name) {
            Some(Type::Int32 | Type::Int64 | Type::Date) => json!(0),
            Some(Type::Float) => json!(0.0),
            Some(Type::Bool) => json!(false),
            _ => json!(""),
        };
        out.insert(
            (*name).into(),
            stored.get(*name).cloned().unwrap_or(default),
        );
    }
    let mut location: Map<String, Value> = LOCATION_PARTS
        .iter()
        .map(|p| ((*p).to_owned(), json!("")))
        .collect();
    if let Some(Value::Object(given)) = stored.get("location") {
        location.extend(given.clone());
    }
    out.insert("location".into(), Value::Object(location));
    out.insert(
        "propertyKeys".into(),
        stored.get("propertyKeys").cloned().unwrap_or(json!([])),
    );
    out.insert(
        "customAttributes".into(),
        stored
            .get("customAttributes")
            .cloned()
            .unwrap_or(Value::Null),
    );
    for ro in ["createDate", "lastModifiedDate"] {
        out.insert(ro.into(), stored.get(ro).cloned().unwrap_or(json!(0)));
    }
    match kind {
        Kind::Account => {
            let id = stored["id"].as_str().unwrap_or_default();
            out.insert("numberOfUsers".into(), json!(store.users_of(id)));
        }
        Kind::User => {
            out.insert("id".into(), stored["identifyId"].clone());
        }
    }
    Value::Object(out)
}

fn respond(status: u16, body: Option<&Value>) -> Response<Full<Bytes>> {
    let mut builder = Response::builder().status(status);
    let bytes = match body {
        Some(value) => {
            builder = builder.header("content-type", "application/json");
            serde_json::to_vec(value).expect("JSON")
        }
        None => Vec::new(),
    };
    builder
        .body(Full::new(Bytes::from(bytes)))
        .expect("valid response")
}

/// The PX error envelope.
fn envelope(status: u16, message: &str, field: Option<&str>) -> Response<Full<Bytes>> {
    let name = match status {
        400 => "BAD_REQUEST",
        401 => "UNAUTHORIZED",
        403 => "FORBIDDEN",
        404 => "NOT_FOUND",
        413 => "PAYLOAD_TOO_LARGE",
        415 => "UNSUPPORTED_MEDIA_TYPE",
        429 => "TOO_MANY_REQUESTS",
        _ => "INTERNAL_SERVER_ERROR",
    };
    let sub = field.map(|f| json!([{"field": f, "rejectedValue": null, "message": message}]));
    respond(
        status,
        Some(
            &json!({"externalapierror": {"status": name, "message": message, "debugMessage": null, "subErrors": sub}}),
        ),
    )
}

async fn handle(shared: Arc<Shared>, request: Request<Incoming>) -> Reply {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or_default().to_owned();
    let segments: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect();
    let key = request
        .headers()
        .get("x-aptrinsic-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let content_type = request
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    if segments.first().map(String::as_str) == Some("_emulator") {
        return Ok(inspect(&shared, &method, &segments));
    }
    let label = endpoint_label(&method, &segments);
    let started = Instant::now();
    let sequence = shared.sequence.fetch_add(1, Ordering::SeqCst) + 1;
    let o = &shared.options;
    let Draw {
        mut rng,
        latency,
        roll,
    } = Draw::new(o.seed, sequence, o.latency_ms, o.jitter_ms);
    let (_guard, in_flight) = InFlight::enter(&shared.in_flight);
    let finish = |status: &str| {
        *shared
            .stats
            .lock()
            .unwrap()
            .entry(label.clone())
            .or_default()
            .entry(status.to_owned())
            .or_default() += 1;
    };
    let wait = || tokio::time::sleep_until((started + latency).into());

    let throttled = o
        .throttle_burst
        .as_ref()
        .is_some_and(|r| r.len() == 2 && (r[0]..=r[1]).contains(&sequence))
        || o.max_in_flight.is_some_and(|max| in_flight > max)
        || !shared.take_token();
    if throttled {
        wait().await;
        finish("429");
        let mut response = envelope(429, "Rate limit exceeded", None);
        response
            .headers_mut()
            .insert("retry-after", hyper::header::HeaderValue::from_static("1"));
        return Ok(response);
    }
    if o.stall_nth == Some(sequence) {
        tokio::time::sleep(Duration::from_secs(600)).await;
        finish("dropped");
        return Err(Dropped);
    }
    if o.outage_after.is_some_and(|after| sequence > after)
        || sequence > shared.outage_from.load(Ordering::SeqCst)
    {
        wait().await;
        finish("503");
        return Ok(envelope(503, "Service unavailable", None));
    }
    if o.fail_nth == Some(sequence) || roll < o.error_rate {
        wait().await;
        let status = [500, 502, 503][rng.random_range(0..3)];
        let status = if o.fail_nth == Some(sequence) {
            503
        } else {
            status
        };
        finish(&status.to_string());
        return Ok(envelope(status, "Service unavailable", None));
    }
    if roll < o.error_rate + o.drop_rate {
        wait().await;
        finish("dropped");
        return Err(Dropped);
    }
    let applied_then_failed =
        method != Method::GET && roll < o.error_rate + o.drop_rate + o.applied_then_failed_rate;
    let response = route(
        &shared,
        &method,
        &segments,
        &query,
        key.as_deref(),
        &content_type,
        &body,
    );
    wait().await;
    if applied_then_failed && response.status().is_success() {
        finish("500 (applied)");
        return Ok(envelope(500, "Internal server error", None));
    }
    finish(response.status().as_str());
    Ok(response)
}

impl Shared {
    /// One token from the per-second bucket and one from the day's count.
    fn take_token(&self) -> bool {
        if self.today.fetch_add(1, Ordering::SeqCst) >= self.options.daily_limit {
            return false;
        }
        let rate = self.options.rate_limit as f64;
        let mut bucket = self.bucket.lock().unwrap();
        let now = Instant::now();
        bucket.0 = (bucket.0 + now.duration_since(bucket.1).as_secs_f64() * rate).min(rate);
        bucket.1 = now;
        if bucket.0 >= 1.0 {
            bucket.0 -= 1.0;
            true
        } else {
            false
        }
    }
}

fn endpoint_label(method: &Method, segments: &[String]) -> String {
    let parts: Vec<&str> = segments
        .iter()
        .enumerate()
        .map(|(i, s)| {
            if i == 2
                && segments
                    .get(1)
                    .is_some_and(|c| c == "accounts" || c == "users")
                && s != "update"
                && s != "delete"
            {
                "{id}"
            } else {
                s.as_str()
            }
        })
        .collect();
    format!("{method} /{}", parts.join("/"))
}

fn inspect(shared: &Shared, method: &Method, segments: &[String]) -> Response<Full<Bytes>> {
    match (
        method.as_str(),
        segments.get(1).map(String::as_str),
        segments.get(2),
    ) {
        ("GET", Some("records"), Some(collection)) => match Kind::parse(collection) {
            Some(kind) => {
                let store = shared.store.lock().unwrap();
                let all: Vec<Value> = store
                    .records
                    .get(&kind)
                    .map(|l| l.iter().map(|r| full_record(kind, r, &store)).collect())
                    .unwrap_or_default();
                respond(200, Some(&Value::Array(all)))
            }
            None => envelope(404, "unknown collection", None),
        },
        ("GET", Some("stats"), None) => respond(200, Some(&json!(*shared.stats.lock().unwrap()))),
        ("POST", Some("reset"), None) => {
            *shared.store.lock().unwrap() = Store::default();
            shared.stats.lock().unwrap().clear();
            respond(204, None)
        }
        _ => envelope(404, "unknown emulator route", None),
    }
}

fn route(
    shared: &Shared,
    method: &Method,
    segments: &[String],
    query: &str,
    key: Option<&str>,
    content_type: &str,
    body: &Bytes,
) -> Response<Full<Bytes>> {
    let o = &shared.options;
    let writes = o.api_key.as_str();
    let may_write = match key {
        Some(k) if k == writes => true,
        Some(k) if k == o.read_only_key => false,
        _ => {
            return envelope(
                401,
                "Authentication failed in loginAwareAuthentication",
                None,
            )
        }
    };
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    if let ["v1", "admin", "model", model, "attributes"] = segs.as_slice() {
        if method != Method::GET {
            return envelope(405, "Method not allowed", None);
        }
        let kind = match *model {
            "account" => Kind::Account,
            "user" => Kind::User,
            _ => return envelope(404, "Type not found", None),
        };
        return respond(200, Some(&attributes_json(shared, kind)));
    }
    if o.no_write_routes {
        return respond(404, None);
    }
    let (kind, rest) = match segs.as_slice() {
        ["v1", collection, rest @ ..] => match Kind::parse(collection) {
            Some(kind) => (kind, rest),
            None => return respond(404, None),
        },
        _ => return respond(404, None),
    };
    if *method != Method::GET && !may_write {
        if o.html_403 {
            return Response::builder()
                .status(403)
                .header("content-type", "text/html")
                .body(Full::new(Bytes::from_static(
                    b"<html><body><h1>403 Forbidden</h1></body></html>",
                )))
                .expect("valid");
        }
        return envelope(403, "The API key lacks the Write permission", None);
    }
    if body.len() > 1 << 20 {
        return envelope(413, "Payload too large", None);
    }
    let parsed = || -> Result<Map<String, Value>, Response<Full<Bytes>>> {
        if !content_type.starts_with("application/json") {
            return Err(envelope(415, "Content-Type must be application/json", None));
        }
        match serde_json::from_slice(body) {
            Ok(Value::Object(map)) => Ok(map),
            _ => Err(envelope(
                400,
                "Bad request: the body is not a JSON object",
                None,
            )),
        }
    };
    let mut store = shared.store.lock().unwrap();
    match (method.as_str(), rest) {
        ("POST", []) => {
            let record = match parsed() {
                Ok(r) => r,
                Err(e) => return e,
            };
            create(shared, &mut store, kind, record)
        }
        ("PUT", ["update"]) => {
            let record = match parsed() {
                Ok(r) => r,
                Err(e) => return e,
            };
            let id = record
                .get(kind.key())
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            update(shared, &mut store, kind, &id, record)
        }
        ("PUT", [id]) => {
            let record = match parsed() {
                Ok(r) => r,
                Err(e) => return e,
            };
            update(shared, &mut store, kind, id, record)
        }
        ("GET", [id]) => match store.get(kind, id) {
            Some(record) => respond(200, Some(&full_record(kind, record, &store))),
            None => not_found(kind, id),
        },
        ("GET", []) => search(&mut store, kind, query),
        ("DELETE", ["delete"]) if kind == Kind::User => {
            let record = match parsed() {
                Ok(r) => r,
                Err(e) => return e,
            };
            let id = record
                .get("identifyId")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            delete(&mut store, kind, &id, false)
        }
        ("DELETE", [id]) => delete(&mut store, kind, id, query.contains("hardDelete=true")),
        _ => envelope(405, "Method not allowed", None),
    }
}

fn not_found(kind: Kind, id: &str) -> Response<Full<Bytes>> {
    envelope(
        404,
        &format!("{} was not found for parameters {{id={id}}}", kind.title()),
        None,
    )
}

fn attributes_json(shared: &Shared, kind: Kind) -> Value {
    let mut list: Vec<Value> = default_attributes(kind)
        .into_iter()
        .map(|(api, t)| json!({"id": api, "name": api, "apiName": api, "internalName": api, "description": "", "type": t, "state": "ENABLED", "origin": "DEFAULT", "createdDate": 0, "modifiedDate": 0, "defaultValue": null}))
        .collect();
    for a in shared.attributes.get(&kind).into_iter().flatten() {
        list.push(json!({"id": a.api_name, "name": a.name, "apiName": a.api_name, "internalName": a.api_name, "description": "", "type": a.kind, "state": a.state, "origin": "CUSTOM", "createdDate": 0, "modifiedDate": 0, "defaultValue": null}));
    }
    Value::Array(list)
}

/// Checks a body's fields; drops read-only ones and DISABLED attributes.
fn validate(
    shared: &Shared,
    kind: Kind,
    record: &mut Map<String, Value>,
) -> Result<(), Response<Full<Bytes>>> {
    let bad = |field: &str, why: &str| envelope(400, &format!("{field}: {why}"), Some(field));
    let mut read_only = Vec::new();
    for (field, value) in record.iter_mut() {
        let Some(t) = field_type(kind, field) else {
            return Err(bad(field, "unknown field"));
        };
        if value.is_null() {
            if t == Type::Date {
                return Err(bad(field, "a date cannot be null or empty"));
            }
            continue;
        }
        let ok = match t {
            Type::Text => value.is_string(),
            Type::Int32 => value.as_i64().is_some_and(|n| i32::try_from(n).is_ok()),
            Type::Int64 | Type::Date => value.is_i64() || value.is_u64(),
            Type::Float => value.is_number(),
            Type::Bool => value.is_boolean() || value == "true" || value == "false",
            Type::Enum(options) => value.as_str().is_some_and(|v| options.contains(&v)),
            Type::Keys => value.as_array().is_some_and(|keys| {
                keys.iter().all(|k| {
                    k.as_str().is_some_and(|k| {
                        shared.options.property_keys.iter().any(|known| known == k)
                    })
                })
            }),
            Type::Location => value.as_object().is_some_and(|l| {
                l.iter().all(|(part, v)| {
                    (LOCATION_PARTS.contains(&part.as_str()) && (v.is_string() || v.is_null()))
                        || (part == "coordinates" && v.is_object())
                })
            }),
            Type::Custom => {
                let Some(attributes) = value.as_object_mut() else {
                    return Err(bad(field, "must be an object"));
                };
                let known = shared.attributes.get(&kind).cloned().unwrap_or_default();
                let mut disabled = Vec::new();
                for (name, v) in attributes.iter() {
                    let Some(a) = known.iter().find(|a| &a.api_name == name) else {
                        return Err(bad(
                            &format!("customAttributes.{name}"),
                            "unknown attribute",
                        ));
                    };
                    match a.state.as_str() {
                        "DELETED" => {
                            return Err(bad(
                                &format!("customAttributes.{name}"),
                                "the attribute is deleted",
                            ))
                        }
                        "DISABLED" => disabled.push(name.clone()),
                        _ => {}
                    }
                    let fits = match a.kind.as_str() {
                        "NUMBER" => v.is_number(),
                        "BOOLEAN" => v.is_boolean() || v == "true" || v == "false",
                        "DATE_TIME" => v.is_i64(),
                        _ => v.is_string(),
                    };
                    if !fits && !v.is_null() {
                        return Err(bad(
                            &format!("customAttributes.{name}"),
                            &format!("not a {}", a.kind),
                        ));
                    }
                }
                for name in disabled {
                    attributes.remove(&name);
                }
                true
            }
            Type::ReadOnly => {
                read_only.push(field.clone());
                true
            }
        };
        if !ok {
            let why = if t == Type::Keys {
                "unknown or malformed product key"
            } else {
                "wrong type"
            };
            return Err(bad(field, why));
        }
    }
    for field in read_only {
        record.remove(&field);
    }
    record.retain(|_, v| !v.is_null());
    Ok(())
}

fn create(
    shared: &Shared,
    store: &mut Store,
    kind: Kind,
    mut record: Map<String, Value>,
) -> Response<Full<Bytes>> {
    if let Err(e) = validate(shared, kind, &mut record) {
        return e;
    }
    let key = kind.key();
    let Some(id) = record
        .get(key)
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
    else {
        return envelope(
            400,
            &format!("Bad request, possible duplicate: {key} is required"),
            Some(key),
        );
    };
    if kind == Kind::Account && !record.get("name").is_some_and(Value::is_string) {
        return envelope(
            400,
            "Bad request, possible duplicate: name is required",
            Some("name"),
        );
    }
    if record
        .get("propertyKeys")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty)
    {
        return envelope(
            400,
            "Bad request, possible duplicate: propertyKeys needs at least one product key",
            Some("propertyKeys"),
        );
    }
    if store.get(kind, &id).is_some() {
        return envelope(
            400,
            &format!("{} with id {id} already exists", kind.title()),
            Some(key),
        );
    }
    if kind == Kind::User {
        store.deleted_users.remove(&id);
    }
    stamp(&mut record, true);
    store.insert(kind, record.clone());
    let full = full_record(kind, &record, store);
    respond(201, Some(&full))
}

fn update(
    shared: &Shared,
    store: &mut Store,
    kind: Kind,
    id: &str,
    mut patch: Map<String, Value>,
) -> Response<Full<Bytes>> {
    if let Err(e) = validate(shared, kind, &mut patch) {
        return e;
    }
    if let Some(given) = patch.get(kind.key()).and_then(Value::as_str) {
        if given != id {
            return envelope(
                400,
                &format!(
                    "{} in the body ({given}) differs from the path ({id})",
                    kind.key()
                ),
                Some(kind.key()),
            );
        }
    }
    if store.get(kind, id).is_none() {
        // A soft-deleted user comes back on a write within 7 days.
        let revived = (kind == Kind::User)
            .then(|| store.deleted_users.remove(id))
            .flatten()
            .filter(|(when, _)| when.elapsed() < Duration::from_secs(7 * 24 * 3600));
        match revived {
            Some((_, record)) => store.insert(kind, record),
            None => return not_found(kind, id),
        }
    }
    let at = store.index[&(kind, id.to_owned())];
    let record = &mut store.records.get_mut(&kind).expect("indexed")[at];
    for (field, value) in patch {
        match (field.as_str(), record.get_mut(&field), value) {
            ("propertyKeys", Some(Value::Array(keys)), Value::Array(more)) => {
                for k in more {
                    if !keys.contains(&k) {
                        keys.push(k);
                    }
                }
            }
            ("customAttributes" | "location", Some(Value::Object(old)), Value::Object(new)) => {
                old.extend(new)
            }
            (_, _, value) => {
                record.insert(field, value);
            }
        }
    }
    stamp(record, false);
    respond(204, None)
}

fn delete(store: &mut Store, kind: Kind, id: &str, hard: bool) -> Response<Full<Bytes>> {
    let Some(record) = store.remove(kind, id) else {
        return not_found(kind, id);
    };
    match kind {
        Kind::Account => {
            let users: Vec<String> = store
                .records
                .get(&Kind::User)
                .map(|u| {
                    u.iter()
                        .filter(|u| u["accountId"] == id)
                        .filter_map(|u| u["identifyId"].as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            for user in users {
                store.remove(Kind::User, &user);
            }
        }
        Kind::User if !hard => {
            store
                .deleted_users
                .insert(id.to_owned(), (Instant::now(), record));
        }
        Kind::User => {}
    }
    respond(204, None)
}

/// One filter term: `field op value`.
fn term_matches(record: &Value, term: &str) -> Option<bool> {
    let ops = ["==", "!=", "<=", ">=", "!~", "<", ">", "~"];
    let (at, op) = ops
        .iter()
        .filter_map(|op| term.find(op).map(|at| (at, *op)))
        .min_by_key(|(at, op)| (*at, usize::MAX - op.len()))?;
    let (field, value) = (&term[..at], &term[at + op.len()..]);
    let field = if field == "id" { "identifyId" } else { field };
    let mut actual = record;
    for part in field.split('.') {
        actual = actual
            .get(part)
            .or_else(|| (part == "identifyId").then(|| record.get("id")).flatten())?;
    }
    let text = match actual {
        Value::String(s) => s.to_lowercase(),
        other => other.to_string().to_lowercase(),
    };
    let value = value.to_lowercase();
    let like = |pattern: &str, text: &str| wildcard(pattern.as_bytes(), text.as_bytes());
    let number = |s: &str| s.parse::<f64>().ok();
    Some(match op {
        "==" => text == value,
        "!=" => text != value,
        "~" => like(&value, &text),
        "!~" => !like(&value, &text),
        _ => {
            let (a, b) = (number(&text)?, number(&value)?);
            match op {
                "<" => a < b,
                "<=" => a <= b,
                ">" => a > b,
                _ => a >= b,
            }
        }
    })
}

fn wildcard(pattern: &[u8], text: &[u8]) -> bool {
    match (pattern.first(), text.first()) {
        (None, None) => true,
        (Some(b'*'), _) => {
            wildcard(&pattern[1..], text) || (!text.is_empty() && wildcard(pattern, &text[1..]))
        }
        (Some(b'?'), Some(_)) => wildcard(&pattern[1..], &text[1..]),
        (Some(p), Some(t)) if p == t => wildcard(&pattern[1..], &text[1..]),
        _ => false,
    }
}

fn search(store: &mut Store, kind: Kind, query: &str) -> Response<Full<Bytes>> {
    let params: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                k.to_owned(),
                percent_decode_str(&v.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned(),
            )
        })
        .collect();
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let page_size = match get("pageSize").map(|s| s.parse::<usize>()) {
        None => 25,
        Some(Ok(n)) if (1..=1000).contains(&n) => n,
        _ => return envelope(400, "pageSize must be between 1 and 1000", Some("pageSize")),
    };
    let (all, start) = match get("scrollId") {
        Some(scroll) => match store.scrolls.get(&scroll) {
            Some(found) if found.kind == kind => (found.all.clone(), found.next),
            _ => return envelope(400, "unknown or expired scrollId", Some("scrollId")),
        },
        None => {
            let filters: Vec<&String> = params
                .iter()
                .filter(|(k, _)| k == "filter")
                .map(|(_, v)| v)
                .collect();
            let mut all: Vec<Map<String, Value>> =
                store.records.get(&kind).cloned().unwrap_or_default();
            all.retain(|record| {
                let full = full_record(kind, record, store);
                filters.is_empty()
                    || filters.iter().any(|f| {
                        f.split(';')
                            .all(|t| term_matches(&full, t).unwrap_or(false))
                    })
            });
            if let Some(sort) = get("sort") {
                for key in sort.split(';').rev() {
                    let (desc, key) = key.strip_prefix('-').map_or((false, key), |k| (true, k));
                    all.sort_by(|a, b| {
                        let order = a
                            .get(key)
                            .map(Value::to_string)
                            .cmp(&b.get(key).map(Value::to_string));
                        if desc {
                            order.reverse()
                        } else {
                            order
                        }
                    });
                }
            }
            (all, 0)
        }
    };
    let page: Vec<Value> = all
        .iter()
        .skip(start)
        .take(page_size)
        .map(|r| full_record(kind, r, store))
        .collect();
    store.next_scroll += 1;
    let scroll = format!("scroll-{}", store.next_scroll);
    let total = all.len();
    let next = start + page.len();
    store
        .scrolls
        .insert(scroll.clone(), Scroll { kind, all, next });
    respond(
        200,
        Some(&json!({kind.collection(): page, "totalHits": total, "scrollId": scroll})),
    )
}
