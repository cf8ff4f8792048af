//! A Trackops Developer API emulator: one tenant at `http://127.0.0.1:PORT/api/v1`, a real
//! HTTP/1.1 server on loopback implementing `shared/trackops-api.md` (§7, "The emulator
//! must"): Basic auth against a fixture of employees and tokens, clients with their primary
//! location created in one step, locations and contacts, filters (case-insensitive
//! substrings), paging and `mode=count`, 422 with field-keyed errors, a rolling request budget,
//! and faults and route switches on demand.
//!
//! Inspection lives outside `/api/v1`, needs no credentials and suffers no faults:
//! `GET /_emulator/records/{clients|locations|contacts}`, `GET /_emulator/stats`.

// A refusal here is the HTTP answer itself, built once per request: boxing it buys nothing.
#![allow(clippy::result_large_err)]

use base64::Engine as _;
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
    name = "trackops-emulator",
    about = "A Trackops Developer API emulator for tests and demos"
)]
pub struct Options {
    /// Port on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// A JSON fixture: `employees` (login, full_access, active), `tokens` (value, enabled),
    /// `roles` (id, name, kind: client_contact or employee) and optionally `clients`,
    /// `locations`, `contacts`. Without it, a small default tenant.
    #[arg(long)]
    pub fixture: Option<std::path::PathBuf>,
    /// Seed of every random choice (fault draws, jitter).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Response time of every /api/v1 request, from its arrival, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    #[arg(long, default_value_t = 0)]
    pub jitter_ms: u64,
    /// Requests per rolling 60 s; past it, 429 with Retry-After.
    #[arg(long, default_value_t = 120)]
    pub budget_per_minute: usize,
    /// Requests in flight at once; past it, 429 with Retry-After: 1.
    #[arg(long, default_value_t = 4)]
    pub max_in_flight: usize,
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
    /// Routes (`POST /client/locations`) answered 404, as an account without write access.
    #[arg(long = "route-404")]
    pub routes_404: Vec<String>,
    /// Routes answered 405.
    #[arg(long = "route-405")]
    pub routes_405: Vec<String>,
    /// Routes answered 503.
    #[arg(long = "route-503")]
    pub routes_503: Vec<String>,
    /// Routes answered 200 with an HTML login page.
    #[arg(long = "route-html")]
    pub routes_html: Vec<String>,
    /// Routes whose answer comes after --slow-ms (applied first: a timeout that landed).
    #[arg(long = "route-slow")]
    pub routes_slow: Vec<String>,
    #[arg(long, default_value_t = 60_000)]
    pub slow_ms: u64,
}

impl Default for Options {
    fn default() -> Self {
        <Self as clap::Parser>::parse_from(["trackops-emulator"])
    }
}

/// The default tenant's credentials.
pub const LOGIN: &str = "api-integration";
pub const TOKEN: &str = "tk-emulator-7c41e2b9";
pub const LIMITED_LOGIN: &str = "limited-user";
pub const DISABLED_TOKEN: &str = "tk-disabled-0d15ab1e";

/// The accounts, tokens and roles an emulator holds unless given a fixture.
pub fn default_fixture() -> Value {
    json!({
        "employees": [
            {"login": LOGIN, "full_access": true, "active": true},
            {"login": LIMITED_LOGIN, "full_access": false, "active": true},
            {"login": "former-employee", "full_access": true, "active": false}
        ],
        "tokens": [{"value": TOKEN, "enabled": true}, {"value": DISABLED_TOKEN, "enabled": false}],
        "roles": [
            {"id": 3, "name": "Client Contact", "kind": "client_contact"},
            {"id": 4, "name": "Client Administrator", "kind": "client_contact"},
            {"id": 1, "name": "Investigator", "kind": "employee"}
        ]
    })
}

const ISO_COUNTRIES: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW";
const US_STATES: &str = "AL AK AZ AR CA CO CT DE FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY DC AS GU MP PR VI UM";
const CA_PROVINCES: &str = "AB BC MB NB NL NS NT NU ON PE QC SK YT";

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Kind {
    Client,
    Location,
    Contact,
}

impl Kind {
    fn from_path(segments: &[&str]) -> Option<(Self, Option<u64>)> {
        let (kind, rest) = match segments {
            ["clients", rest @ ..] => (Self::Client, rest),
            ["client", "locations", rest @ ..] => (Self::Location, rest),
            ["client", "contacts", rest @ ..] => (Self::Contact, rest),
            _ => return None,
        };
        match rest {
            [] => Some((kind, None)),
            [id] => id.parse().ok().map(|id| (kind, Some(id))),
            _ => None,
        }
    }

    fn wrapper(self) -> &'static str {
        match self {
            Self::Client => "client",
            Self::Location => "client_location",
            Self::Contact => "client_contact",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Self::Client => "Client",
            Self::Location => "Client location",
            Self::Contact => "Client contact",
        }
    }

    fn collection(self) -> &'static str {
        match self {
            Self::Client => "clients",
            Self::Location => "locations",
            Self::Contact => "contacts",
        }
    }
}

#[derive(Default)]
struct Store {
    clients: BTreeMap<u64, Map<String, Value>>,
    locations: BTreeMap<u64, Map<String, Value>>,
    contacts: BTreeMap<u64, Map<String, Value>>,
    /// Clients and locations share one sequence; contacts have their own.
    next_client_id: u64,
    next_contact_id: u64,
}

impl Store {
    fn table(&self, kind: Kind) -> &BTreeMap<u64, Map<String, Value>> {
        match kind {
            Kind::Client => &self.clients,
            Kind::Location => &self.locations,
            Kind::Contact => &self.contacts,
        }
    }

    fn table_mut(&mut self, kind: Kind) -> &mut BTreeMap<u64, Map<String, Value>> {
        match kind {
            Kind::Client => &mut self.clients,
            Kind::Location => &mut self.locations,
            Kind::Contact => &mut self.contacts,
        }
    }

    fn next_id(&mut self, kind: Kind) -> u64 {
        let next = if kind == Kind::Contact {
            &mut self.next_contact_id
        } else {
            &mut self.next_client_id
        };
        *next += 1;
        *next
    }
}

struct Shared {
    options: Options,
    fixture: Value,
    store: Mutex<Store>,
    sequence: AtomicU64,
    /// API requests that came without `Accept: application/json`.
    without_accept: AtomicU64,
    /// Requests from this sequence number on are answered 503 ([`Emulator::fail_after`]).
    outage_from: AtomicU64,
    in_flight: AtomicUsize,
    /// When each request of the last 60 s arrived.
    window: Mutex<VecDeque<Instant>>,
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

type Answer = Response<Full<Bytes>>;

impl Emulator {
    /// Binds 127.0.0.1 (on `options.port`, 0 for any) and serves until dropped.
    pub async fn start(options: Options) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", options.port)).await?;
        let addr = listener.local_addr()?;
        let fixture = match &options.fixture {
            Some(path) => serde_json::from_str(&std::fs::read_to_string(path)?)
                .map_err(std::io::Error::other)?,
            None => default_fixture(),
        };
        let mut store = Store::default();
        for (kind, name) in [
            (Kind::Client, "clients"),
            (Kind::Location, "locations"),
            (Kind::Contact, "contacts"),
        ] {
            for record in fixture[name].as_array().into_iter().flatten() {
                let Some(record) = record.as_object() else {
                    continue;
                };
                let id = record["id"].as_u64().unwrap_or_default();
                if kind == Kind::Contact {
                    store.next_contact_id = store.next_contact_id.max(id);
                } else {
                    store.next_client_id = store.next_client_id.max(id);
                }
                store.table_mut(kind).insert(id, record.clone());
            }
        }
        let shared = Arc::new(Shared {
            options,
            fixture,
            store: Mutex::new(store),
            sequence: AtomicU64::new(0),
            without_accept: AtomicU64::new(0),
            outage_from: AtomicU64::new(u64::MAX),
            in_flight: AtomicUsize::new(0),
            window: Mutex::new(VecDeque::new()),
            stats: Mutex::new(BTreeMap::new()),
        });
        let server = emukit::server::serve(listener, shared.clone(), handle);
        Ok(Self {
            addr,
            shared,
            server,
        })
    }

    /// `http://127.0.0.1:PORT/api/v1`, the connector's `base_url`.
    pub fn base_url(&self) -> String {
        format!("http://{}/api/v1", self.addr)
    }

    /// The destination's config for this emulator's default tenant: its employee, token and
    /// client contact role, and defaults for a location's state and country.
    pub fn connector_config(&self) -> Value {
        json!({
            "base_url": self.base_url(),
            "username": LOGIN,
            "api_token": TOKEN,
            "default_role_id": 3,
            "default_state": "CO",
            "default_country": "US",
        })
    }

    pub fn options(&self) -> &Options {
        &self.shared.options
    }

    /// Every stored record of `clients`, `locations` or `contacts`, by id.
    pub fn records(&self, collection: &str) -> Vec<Value> {
        let kind = match collection {
            "clients" => Kind::Client,
            "locations" => Kind::Location,
            "contacts" => Kind::Contact,
            other => panic!("unknown collection {other}"),
        };
        let store = self.shared.store.lock().unwrap();
        store
            .table(kind)
            .values()
            .map(|r| Value::Object(r.clone()))
            .collect()
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

    /// API requests that did not carry `Accept: application/json`, as the contract asks.
    pub fn requests_without_json_accept(&self) -> u64 {
        self.shared.without_accept.load(Ordering::SeqCst)
    }

    pub fn request_count(&self) -> u64 {
        self.stats().values().flat_map(|s| s.values()).sum()
    }

    /// Requests answered `status`, over every endpoint.
    pub fn count_status(&self, status: &str) -> u64 {
        self.stats().values().filter_map(|s| s.get(status)).sum()
    }

    /// Writes that applied: POST and PUT answered 200 or 201.
    pub fn count_writes(&self) -> u64 {
        self.stats()
            .iter()
            .filter(|(label, _)| label.starts_with("POST ") || label.starts_with("PUT "))
            .flat_map(|(_, by_status)| by_status.iter())
            .filter(|(status, _)| *status == "200" || *status == "201")
            .map(|(_, n)| n)
            .sum()
    }

    /// Requests whose method is `method` (writes: POST and PUT).
    pub fn count_method(&self, method: &str) -> u64 {
        self.stats()
            .iter()
            .filter(|(label, _)| label.starts_with(&format!("{method} ")))
            .flat_map(|(_, s)| s.values())
            .sum()
    }
}

fn now_text() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

fn message(status: u16, text: &str) -> Answer {
    json_answer(status, &json!({"message": text}))
}

fn invalid(errors: BTreeMap<String, Vec<String>>) -> Answer {
    json_answer(
        422,
        &json!({"message": "Validation failed", "errors": errors}),
    )
}

async fn handle(shared: Arc<Shared>, request: Request<Incoming>) -> Result<Answer, Dropped> {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or_default().to_owned();
    let authorization = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    // The contract: every call says it takes JSON.
    let accepts_json = request
        .headers()
        .get("accept")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"application/json"));
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let segments: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect();
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    if segs.first() == Some(&"_emulator") {
        return Ok(inspect(&shared, &segs));
    }
    let Some(rest) = segs.strip_prefix(&["api", "v1"]) else {
        return Ok(message(404, "Not found"));
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
    if !accepts_json {
        shared.without_accept.fetch_add(1, Ordering::SeqCst);
    }
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
    let listed = |routes: &[String]| {
        routes
            .iter()
            .any(|r| r == &format!("{method} {route_path}") || r == &label)
    };

    if let Some(retry_after) = shared.over_budget(in_flight) {
        wait().await;
        finish("429");
        let mut answer = message(429, "Too many requests");
        answer.headers_mut().insert(
            "retry-after",
            retry_after.to_string().parse().expect("digits"),
        );
        return Ok(answer);
    }
    let outage = o.outage_after.is_some_and(|after| sequence > after)
        || sequence > shared.outage_from.load(Ordering::SeqCst);
    if roll < o.error_rate || listed(&o.routes_503) || outage {
        wait().await;
        let status = if listed(&o.routes_503) || outage {
            503
        } else {
            [500, 502, 503][rng.random_range(0..3)]
        };
        finish(&status.to_string());
        return Ok(Response::builder()
            .status(status)
            .header("content-type", "text/html")
            .body(Full::new(Bytes::from_static(
                b"<html><body>Service unavailable</body></html>",
            )))
            .expect("valid"));
    }
    if roll < o.error_rate + o.drop_rate {
        wait().await;
        finish("dropped");
        return Err(Dropped);
    }
    if let Err(answer) = authenticate(&shared, authorization.as_deref()) {
        wait().await;
        finish(answer.status().as_str());
        return Ok(answer);
    }
    for (routes, status) in [(&o.routes_404, 404), (&o.routes_405, 405)] {
        if listed(routes) {
            wait().await;
            finish(&status.to_string());
            return Ok(message(
                status,
                if status == 404 {
                    "Not found"
                } else {
                    "Method not allowed"
                },
            ));
        }
    }
    if listed(&o.routes_html) {
        wait().await;
        finish("200 (html)");
        return Ok(Response::builder()
            .status(200)
            .header("content-type", "text/html")
            .body(Full::new(Bytes::from_static(
                b"<html><body><form>Log in to Trackops</form></body></html>",
            )))
            .expect("valid"));
    }
    let answer = route(&shared, &method, rest, &query, &body);
    if listed(&o.routes_slow) {
        tokio::time::sleep(Duration::from_millis(o.slow_ms)).await;
    }
    wait().await;
    if method != Method::GET
        && answer.status().is_success()
        && roll < o.error_rate + o.drop_rate + o.applied_then_failed_rate
    {
        finish("500 (applied)");
        return Ok(message(500, "Internal server error"));
    }
    finish(answer.status().as_str());
    Ok(answer)
}

impl Shared {
    /// Seconds to wait when past the rolling budget or the in-flight cap; else it counts.
    fn over_budget(&self, in_flight: usize) -> Option<u64> {
        if in_flight > self.options.max_in_flight {
            return Some(1);
        }
        let mut window = self.window.lock().unwrap();
        let now = Instant::now();
        while window
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60))
        {
            window.pop_front();
        }
        if window.len() >= self.options.budget_per_minute {
            let oldest = *window.front().expect("a full window has a first");
            let left = Duration::from_secs(60).saturating_sub(now.duration_since(oldest));
            return Some(left.as_secs_f64().ceil().max(1.0) as u64);
        }
        window.push_back(now);
        None
    }
}

fn authenticate(shared: &Shared, header: Option<&str>) -> Result<(), Answer> {
    let unauthorized = || {
        let mut answer = message(401, "Authentication failed");
        answer.headers_mut().insert(
            "www-authenticate",
            "Basic realm=\"Trackops API\"".parse().expect("valid"),
        );
        answer
    };
    let decoded = header
        .and_then(|h| h.strip_prefix("Basic "))
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(unauthorized)?;
    let (user, token) = decoded.split_once(':').ok_or_else(unauthorized)?;
    let login = user.strip_suffix("/token").ok_or_else(unauthorized)?;
    let token_ok = shared.fixture["tokens"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|t| t["value"] == token && t["enabled"] == true);
    let employee = shared.fixture["employees"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["login"] == login && e["active"] == true);
    match (token_ok, employee) {
        (true, Some(e)) if e["full_access"] == true => Ok(()),
        (true, Some(_)) => Err(message(403, "API access requires a Full Access employee")),
        _ => Err(unauthorized()),
    }
}

fn inspect(shared: &Shared, segs: &[&str]) -> Answer {
    match segs {
        ["_emulator", "records", collection] => {
            let kind = match *collection {
                "clients" => Kind::Client,
                "locations" => Kind::Location,
                "contacts" => Kind::Contact,
                _ => return message(404, "Not found"),
            };
            let store = shared.store.lock().unwrap();
            json_answer(
                200,
                &Value::Array(
                    store
                        .table(kind)
                        .values()
                        .map(|r| Value::Object(r.clone()))
                        .collect(),
                ),
            )
        }
        ["_emulator", "stats"] => json_answer(200, &json!(*shared.stats.lock().unwrap())),
        _ => message(404, "Not found"),
    }
}

fn route(shared: &Shared, method: &Method, rest: &[&str], query: &str, body: &Bytes) -> Answer {
    let Some((kind, id)) = Kind::from_path(rest) else {
        return message(404, "Not found");
    };
    if body.len() > 1 << 20 {
        return message(413, "Request body too large");
    }
    let unwrap = || -> Result<Map<String, Value>, Answer> {
        let wrapped: Value = serde_json::from_slice(body).map_err(|_| bad_body(kind))?;
        match wrapped.get(kind.wrapper()) {
            Some(Value::Object(record)) => Ok(record.clone()),
            _ => Err(bad_body(kind)),
        }
    };
    let mut store = shared.store.lock().unwrap();
    match (method.as_str(), id) {
        ("GET", None) => list(&store, kind, query),
        ("GET", Some(id)) => match store.table(kind).get(&id) {
            Some(record) => json_answer(200, &Value::Object(record.clone())),
            None => message(404, &format!("{} not found", kind.title())),
        },
        ("POST", None) => match unwrap() {
            Ok(record) => create(shared, &mut store, kind, record),
            Err(answer) => answer,
        },
        ("PUT", Some(id)) => match unwrap() {
            Ok(record) => update(shared, &mut store, kind, id, record),
            Err(answer) => answer,
        },
        _ => message(405, "Method not allowed"),
    }
}

fn bad_body(kind: Kind) -> Answer {
    message(
        400,
        &format!(
            "Request body must be a JSON object under \"{}\"",
            kind.wrapper()
        ),
    )
}

/// The writable fields of each kind, with whether each is required on create.
fn fields(kind: Kind) -> &'static [(&'static str, bool)] {
    match kind {
        Kind::Client => &[
            ("name", true),
            ("account_code", false),
            ("website", false),
            ("email_invoice", false),
            ("notes", false),
            ("has_invoice_reminders", false),
            ("show_location_on_invoice", false),
        ],
        Kind::Location => &[
            ("root_id", true),
            ("is_primary", false),
            ("name", true),
            ("email_invoice", false),
            ("address_1", false),
            ("address_2", false),
            ("address_3", false),
            ("city", false),
            ("state", true),
            ("zip", false),
            ("country", true),
            ("phone_primary", false),
            ("phone_secondary", false),
            ("phone_fax", false),
            ("notes", false),
        ],
        Kind::Contact => &[
            ("client_id", true),
            ("role_id", true),
            ("first_name", true),
            ("last_name", true),
            ("email", true),
        ],
    }
}

fn valid_email(text: &str) -> bool {
    let Some((local, domain)) = text.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !text.contains(char::is_whitespace)
}

/// Checks `record`'s known fields (unknown ones are ignored, as the real API does), in place:
/// codes upper-cased, `zip` made text. `creating`: required fields must be there.
fn check(
    kind: Kind,
    record: &mut Map<String, Value>,
    creating: bool,
    prefix: &str,
    errors: &mut BTreeMap<String, Vec<String>>,
) {
    let mut fail = |field: &str, why: &str| {
        errors
            .entry(format!("{prefix}{field}"))
            .or_default()
            .push(why.to_owned())
    };
    for &(field, required) in fields(kind) {
        let value = record.get(field).cloned();
        let empty = value.as_ref().is_none_or(|v| v.is_null() || v == "");
        if empty {
            if required && (creating || value.is_some()) {
                fail(field, "is required");
            }
            continue;
        }
        let value = value.expect("not empty");
        match field {
            "root_id" | "client_id" | "role_id" => {
                if !value.is_u64() {
                    fail(field, "must be an integer");
                }
            }
            "is_primary" | "has_invoice_reminders" | "show_location_on_invoice" => {
                if !value.is_boolean() {
                    fail(field, "must be true or false");
                }
            }
            "zip" if value.is_number() => {
                record.insert(field.into(), Value::String(value.to_string()));
            }
            _ => {
                let Some(text) = value.as_str() else {
                    fail(field, "must be a string");
                    continue;
                };
                let limit = if field == "notes" { 65_535 } else { 255 };
                if text.chars().count() > limit {
                    fail(field, &format!("is longer than {limit} characters"));
                }
                match field {
                    "website" if !(text.starts_with("http://") || text.starts_with("https://")) => {
                        fail(field, "must be a URL starting http:// or https://")
                    }
                    "email_invoice" | "email" if !valid_email(text) => {
                        fail(field, "is not a valid email address")
                    }
                    "country" | "state" => {
                        record.insert(field.into(), Value::String(text.to_uppercase()));
                    }
                    _ => {}
                }
            }
        }
    }
    let country = record
        .get("country")
        .and_then(Value::as_str)
        .map(str::to_owned);
    if let Some(country) = &country {
        if !ISO_COUNTRIES.split(' ').any(|c| c == country) {
            fail("country", "is not an ISO 3166-1 alpha-2 code");
        }
    }
    if let Some(state) = record.get("state").and_then(Value::as_str) {
        let known = match country.as_deref() {
            Some("US") => US_STATES.split(' ').any(|s| s == state),
            Some("CA") => CA_PROVINCES.split(' ').any(|s| s == state),
            _ => state.len() == 2 && state.bytes().all(|b| b.is_ascii_alphanumeric()),
        };
        if !known {
            fail("state", "is not a state or province code of the country");
        }
    }
}

fn create(
    shared: &Shared,
    store: &mut Store,
    kind: Kind,
    mut record: Map<String, Value>,
) -> Answer {
    let mut errors = BTreeMap::new();
    check(kind, &mut record, true, "", &mut errors);
    let mut primary = None;
    match kind {
        Kind::Client => match record.remove("primary_location") {
            Some(Value::Object(mut location)) => {
                location.insert("root_id".into(), json!(0));
                check(
                    Kind::Location,
                    &mut location,
                    true,
                    "primary_location.",
                    &mut errors,
                );
                primary = Some(location);
            }
            _ => {
                errors.insert("primary_location".into(), vec!["is required".into()]);
            }
        },
        Kind::Location => {
            if let Some(root) = record.get("root_id").and_then(Value::as_u64) {
                if !store.clients.contains_key(&root) {
                    errors
                        .entry("root_id".into())
                        .or_default()
                        .push("is not a client".into());
                }
            }
        }
        Kind::Contact => contact_rules(shared, store, &record, None, &mut errors),
    }
    if !errors.is_empty() {
        return invalid(errors);
    }
    let known: Vec<&str> = fields(kind).iter().map(|(f, _)| *f).collect();
    record.retain(|k, _| known.contains(&k.as_str()));
    let id = store.next_id(kind);
    let now = now_text();
    record.insert("id".into(), json!(id));
    record.insert("created_at".into(), json!(now));
    record.insert("updated_at".into(), json!(now));
    match kind {
        Kind::Client => {
            record
                .entry("has_invoice_reminders")
                .or_insert(json!(false));
            record
                .entry("show_location_on_invoice")
                .or_insert(json!(false));
            let mut location = primary.expect("checked above");
            let location_fields: Vec<&str> =
                fields(Kind::Location).iter().map(|(f, _)| *f).collect();
            location.retain(|k, _| location_fields.contains(&k.as_str()));
            let location_id = store.next_id(Kind::Location);
            location.insert("id".into(), json!(location_id));
            location.insert("root_id".into(), json!(id));
            location.insert("is_primary".into(), json!(true));
            location.insert("created_at".into(), json!(now));
            location.insert("updated_at".into(), json!(now));
            store.locations.insert(location_id, location);
        }
        Kind::Location => {
            let root = record["root_id"].as_u64().expect("checked");
            if record.get("is_primary") == Some(&json!(true)) {
                demote(store, root);
            } else {
                record.insert("is_primary".into(), json!(false));
            }
        }
        Kind::Contact => {}
    }
    store.table_mut(kind).insert(id, record.clone());
    json_answer(201, &Value::Object(record))
}

fn demote(store: &mut Store, root: u64) {
    for location in store
        .locations
        .values_mut()
        .filter(|l| l["root_id"] == root)
    {
        location.insert("is_primary".into(), json!(false));
    }
}

/// A contact hangs from a location (never a root client), has a contact role, and an email
/// no other contact has.
fn contact_rules(
    shared: &Shared,
    store: &Store,
    record: &Map<String, Value>,
    own_id: Option<u64>,
    errors: &mut BTreeMap<String, Vec<String>>,
) {
    if let Some(client_id) = record.get("client_id").and_then(Value::as_u64) {
        if !store.locations.contains_key(&client_id) {
            let why = if store.clients.contains_key(&client_id) {
                "must be a client location, not a root client"
            } else {
                "is not a client location"
            };
            errors
                .entry("client_id".into())
                .or_default()
                .push(why.into());
        }
    }
    if let Some(role) = record.get("role_id").and_then(Value::as_u64) {
        let ok = shared.fixture["roles"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|r| r["id"] == role && r["kind"] == "client_contact");
        if !ok {
            errors
                .entry("role_id".into())
                .or_default()
                .push("is not a role available to client contacts".into());
        }
    }
    if let Some(email) = record.get("email").and_then(Value::as_str) {
        let taken = store.contacts.iter().any(|(id, c)| {
            Some(*id) != own_id
                && c["email"]
                    .as_str()
                    .is_some_and(|e| e.eq_ignore_ascii_case(email))
        });
        if taken {
            errors
                .entry("email".into())
                .or_default()
                .push("has already been taken".into());
        }
    }
}

fn update(
    shared: &Shared,
    store: &mut Store,
    kind: Kind,
    id: u64,
    mut patch: Map<String, Value>,
) -> Answer {
    let Some(current) = store.table(kind).get(&id).cloned() else {
        return message(404, &format!("{} not found", kind.title()));
    };
    patch.remove("primary_location");
    let mut errors = BTreeMap::new();
    check(kind, &mut patch, false, "", &mut errors);
    match kind {
        Kind::Location => {
            if patch
                .get("root_id")
                .is_some_and(|r| *r != current["root_id"])
            {
                errors
                    .entry("root_id".into())
                    .or_default()
                    .push("cannot change".into());
            }
            if patch.get("is_primary") == Some(&json!(false)) && current["is_primary"] == true {
                errors
                    .entry("is_primary".into())
                    .or_default()
                    .push("a client needs a primary location: make another one primary".into());
            }
        }
        Kind::Contact => contact_rules(shared, store, &patch, Some(id), &mut errors),
        Kind::Client => {}
    }
    if !errors.is_empty() {
        return invalid(errors);
    }
    if kind == Kind::Location && patch.get("is_primary") == Some(&json!(true)) {
        demote(store, current["root_id"].as_u64().unwrap_or_default());
    }
    let known: Vec<&str> = fields(kind).iter().map(|(f, _)| *f).collect();
    let record = store.table_mut(kind).get_mut(&id).expect("read above");
    for (field, value) in patch {
        if !known.contains(&field.as_str()) {
            continue;
        }
        if value.is_null() || value == "" {
            record.remove(&field);
        } else {
            record.insert(field, value);
        }
    }
    record.insert("updated_at".into(), json!(now_text()));
    json_answer(200, &Value::Object(record.clone()))
}

fn list(store: &Store, kind: Kind, query: &str) -> Answer {
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
            .map(|(_, v)| v.as_str())
    };
    let filter_field = |name: &str| -> Option<&'static str> {
        Some(match (kind, name) {
            (_, "id") => "id",
            (Kind::Client | Kind::Location, "name") => "name",
            (Kind::Client, "account_code") => "account_code",
            (Kind::Location, "parent") => "root_id",
            (Kind::Contact, "first_name") => "first_name",
            (Kind::Contact, "last_name") => "last_name",
            (Kind::Contact, "email") => "email",
            (Kind::Contact, "client_location") => "client_id",
            (Kind::Contact, "role") => "role_id",
            _ => return None,
        })
    };
    let matches = |record: &Map<String, Value>| -> bool {
        params.iter().all(|(name, wanted)| {
            if let Some(field) = filter_field(name) {
                let actual = match &record.get(field) {
                    Some(Value::String(s)) => s.to_lowercase(),
                    Some(other) => other.to_string(),
                    None => return false,
                };
                return if matches!(field, "id" | "root_id" | "client_id" | "role_id") {
                    actual == *wanted
                } else {
                    actual.contains(&wanted.to_lowercase())
                };
            }
            match (kind, name.as_str()) {
                // A contact's root client: its location's parent.
                (Kind::Contact, "client") => record
                    .get("client_id")
                    .and_then(Value::as_u64)
                    .and_then(|l| store.locations.get(&l))
                    .is_some_and(|l| wanted.parse::<u64>().is_ok_and(|w| l["root_id"] == w)),
                (_, "created_from") => date_at_least(record, "created_at", wanted),
                (_, "created_to") => date_at_most(record, "created_at", wanted),
                (_, "updated_from") => date_at_least(record, "updated_at", wanted),
                (_, "updated_to") => date_at_most(record, "updated_at", wanted),
                // Paging, ordering, unknown parameters: not filters.
                _ => true,
            }
        })
    };
    let mut found: Vec<&Map<String, Value>> =
        store.table(kind).values().filter(|r| matches(r)).collect();
    if get("dir") == Some("desc") {
        found.reverse();
    }
    let per_page = get("per_page")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(25)
        .clamp(1, 100);
    if get("mode") == Some("count") {
        return json_answer(
            200,
            &json!({"record_count": found.len(), "page_count": found.len().div_ceil(per_page)}),
        );
    }
    let page = get("page")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let items: Vec<Value> = found
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .map(|r| Value::Object(r.clone()))
        .collect();
    json_answer(200, &Value::Array(items))
}

/// `YYYY-MM-DD` or `YYYY-MM-DD HH:MM:SS`, inclusive: a date alone means its whole day.
fn date_at_least(record: &Map<String, Value>, field: &str, bound: &str) -> bool {
    record
        .get(field)
        .and_then(Value::as_str)
        .is_some_and(|at| at >= bound)
}

fn date_at_most(record: &Map<String, Value>, field: &str, bound: &str) -> bool {
    let bound = if bound.len() == 10 {
        format!("{bound} 23:59:59")
    } else {
        bound.to_owned()
    };
    record
        .get(field)
        .and_then(Value::as_str)
        .is_some_and(|at| at <= bound.as_str())
}

/// The collection names the inspection routes take.
pub fn collections() -> [&'static str; 3] {
    [
        Kind::Client.collection(),
        Kind::Location.collection(),
        Kind::Contact.collection(),
    ]
}
