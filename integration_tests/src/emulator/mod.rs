//! A ClientSuccess emulator: a real HTTP/1.1 server on loopback that implements the API
//! contract (`shared/clientsuccess-api.md`), strictly, and misbehaves on demand, reproducibly
//! from a seed. Tests start it in-process with [`Emulator::start`]; the
//! `clientsuccess-emulator` binary runs it standalone.
//!
//! Inspection lives outside `/v2`, needs no credentials and suffers no faults:
//! `GET /_emulator/records/{object}`, `GET /_emulator/stats`, `POST /_emulator/reset`.

pub mod rules;
pub mod store;
pub mod v1;

use bytes::Bytes;
use emukit::server::{Dropped, InFlight};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use rand::{RngExt, SeedableRng};
use rules::Object;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use store::Store;
use tokio::net::TcpListener;

/// Everything the emulator can be told; each fault is off unless set.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "clientsuccess-emulator",
    about = "A ClientSuccess API emulator for tests and demos"
)]
pub struct Options {
    /// Port on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// The API key accepted in the Authorization header.
    #[arg(long, default_value = "cs-emulator-key-5f2b9e")]
    pub api_key: String,
    /// Username accepted by POST /v1/auth.
    #[arg(long, default_value = "api-user")]
    pub username: String,
    /// Password accepted by POST /v1/auth.
    #[arg(long, default_value = "cs-emulator-pass-8d1c4a")]
    pub password: String,
    /// Seconds a token from /v1/auth stays valid.
    #[arg(long, default_value_t = 43_200.0)]
    pub token_ttl_secs: f64,
    /// Seed of every random choice (fault draws, jitter, uuids).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Response time of every /v2 and /v1 request, from its arrival, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Random extra latency, 0 to this many milliseconds.
    #[arg(long, default_value_t = 0)]
    pub jitter_ms: u64,
    /// Requests accepted per second; past it, 429 with Retry-After.
    #[arg(long)]
    pub rate_limit: Option<u64>,
    /// Requests allowed in flight at once; past it, 429 with Retry-After.
    #[arg(long)]
    pub max_in_flight: Option<usize>,
    /// The Retry-After value sent with a 429, in seconds.
    #[arg(long, default_value_t = 1)]
    pub retry_after_secs: u64,
    /// Share of requests answered 500, 502 or 503 without being applied.
    #[arg(long, default_value_t = 0.0)]
    pub error_rate: f64,
    /// Share of requests whose connection is dropped without an answer, not applied.
    #[arg(long, default_value_t = 0.0)]
    pub drop_rate: f64,
    /// Share of requests that stall for --stall-secs, then drop, not applied.
    #[arg(long, default_value_t = 0.0)]
    pub stall_rate: f64,
    /// How long a stalled request hangs.
    #[arg(long, default_value_t = 60.0)]
    pub stall_secs: f64,
    /// Share of writes that are applied, then answered with a 5xx or a dropped connection.
    #[arg(long, default_value_t = 0.0)]
    pub applied_then_failed_rate: f64,
    /// After this many requests, every request is answered 503 (an outage).
    #[arg(long)]
    pub outage_after: Option<u64>,
    /// After this many authorized requests, the API key and every token issued so far stop
    /// working (a key rotated mid-sync); tokens issued later work.
    #[arg(long)]
    pub revoke_after: Option<u64>,
    /// Answer 404 on `POST /v2/{object}/bulk`, as an account without bulk routes does.
    #[arg(long)]
    pub no_v2_bulk: bool,
    /// Answer 404 on `POST /v2/{object}/upsert`.
    #[arg(long)]
    pub no_v2_upsert: bool,
    /// Answer 404 on `POST /v2/{object}` (single create). With all three v2 write families
    /// off, `PUT /v2/{object}/{uuid}` answers 404 too.
    #[arg(long)]
    pub no_v2_single: bool,
    /// Answer 404 on every v1 route but `/v1/auth`.
    #[arg(long)]
    pub no_v1: bool,
    /// Room for this many records per object from the start. Growing a table rehashes its
    /// indexes under the store's lock, a stall no real API has: benchmarks that store
    /// hundreds of thousands of records set it so the stall does not count as the connector's.
    #[arg(long, default_value_t = 0)]
    pub presize: usize,
    /// A JSON file of custom field definitions, `{"CLIENT": [...], "CONTACT": [...],
    /// "CONTRACT": [...]}`; without it, a few sample fields per object.
    #[arg(long)]
    pub custom_fields: Option<std::path::PathBuf>,
}

impl Options {
    /// Whether any v2 write family is on, which `PUT /v2/{object}/{uuid}` belongs to.
    fn v2_writes(&self) -> bool {
        !(self.no_v2_bulk && self.no_v2_upsert && self.no_v2_single)
    }

    fn definitions(&self) -> std::io::Result<rules::Definitions> {
        let Some(path) = &self.custom_fields else {
            return Ok(rules::Definitions::sample());
        };
        let text = std::fs::read_to_string(path)?;
        let value = serde_json::from_str(&text).map_err(std::io::Error::other)?;
        rules::Definitions::from_json(&value).map_err(std::io::Error::other)
    }
}

impl Options {
    /// An account with only the route families marked true (the rest answer 404/405).
    pub fn account(bulk: bool, upsert: bool, single: bool, v1: bool) -> Self {
        Options {
            no_v2_bulk: !bulk,
            no_v2_upsert: !upsert,
            no_v2_single: !single,
            no_v1: !v1,
            ..Options::default()
        }
    }
}

impl Default for Options {
    fn default() -> Self {
        <Self as clap::Parser>::parse_from(["clientsuccess-emulator"])
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    None,
    Error(u16),
    Drop,
    Stall,
    AppliedThenError(u16),
    AppliedThenDrop,
}

struct Shared {
    options: Options,
    definitions: Arc<rules::Definitions>,
    store: Mutex<Store>,
    /// Token → (expiry, revocation epoch it was issued in).
    tokens: Mutex<HashMap<String, (Instant, u64)>>,
    authorized_requests: AtomicU64,
    sequence: AtomicU64,
    /// Requests from this sequence number on are answered 503 ([`Emulator::fail_after`]).
    outage_from: AtomicU64,
    in_flight: AtomicUsize,
    /// (current second since start, requests in it) for the rate budget.
    window: Mutex<(u64, u64)>,
    started: Instant,
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
        let definitions = options.definitions()?;
        let shared = Arc::new(Shared::new(options, definitions));
        let server = emukit::server::serve(listener, shared.clone(), handle);
        Ok(Self {
            addr,
            shared,
            server,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT/v2`, the connector's `base_url`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v2", self.addr)
    }

    /// `http://127.0.0.1:PORT/v1/auth`, the connector's `auth_url`.
    pub fn auth_url(&self) -> String {
        format!("http://{}/v1/auth", self.addr)
    }

    pub fn root_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn api_key(&self) -> &str {
        &self.shared.options.api_key
    }

    pub fn options(&self) -> &Options {
        &self.shared.options
    }

    /// Every stored record of an object, in creation order.
    pub fn records(&self, object: &str) -> Vec<Value> {
        let object = Object::parse(object).expect("client, contact or contract");
        self.shared.store.lock().unwrap().dump(object)
    }

    pub fn count(&self, object: &str) -> usize {
        let object = Object::parse(object).expect("client, contact or contract");
        self.shared.store.lock().unwrap().count(object)
    }

    /// Requests per endpoint and per status ("dropped" for connections closed on purpose).
    pub fn stats(&self) -> BTreeMap<String, BTreeMap<String, u64>> {
        self.shared.stats.lock().unwrap().clone()
    }

    /// Total requests to /v2 and /v1 endpoints.
    /// From now on, the next `requests` requests are answered as usual and every one after
    /// them 503: an outage that begins mid-test and does not end.
    pub fn fail_after(&self, requests: u64) {
        let next = self.shared.sequence.load(Ordering::SeqCst);
        self.shared
            .outage_from
            .store(next + requests, Ordering::SeqCst);
    }

    pub fn request_count(&self) -> u64 {
        self.stats()
            .values()
            .flat_map(|by_status| by_status.values())
            .sum()
    }

    pub fn reset(&self) {
        self.shared.reset();
    }
}

impl Shared {
    fn new(options: Options, definitions: rules::Definitions) -> Self {
        let definitions = Arc::new(definitions);
        Self {
            store: Mutex::new(Store::new(
                options.seed,
                definitions.clone(),
                options.presize,
            )),
            definitions,
            options,
            tokens: Mutex::new(HashMap::new()),
            authorized_requests: AtomicU64::new(0),
            sequence: AtomicU64::new(0),
            outage_from: AtomicU64::new(u64::MAX),
            in_flight: AtomicUsize::new(0),
            window: Mutex::new((0, 0)),
            started: Instant::now(),
            stats: Mutex::new(BTreeMap::new()),
        }
    }

    fn reset(&self) {
        self.store.lock().unwrap().reset();
        self.tokens.lock().unwrap().clear();
        self.stats.lock().unwrap().clear();
        self.sequence.store(0, Ordering::SeqCst);
        self.authorized_requests.store(0, Ordering::SeqCst);
    }

    fn count(&self, endpoint: &str, status: &str) {
        *self
            .stats
            .lock()
            .unwrap()
            .entry(endpoint.to_owned())
            .or_default()
            .entry(status.to_owned())
            .or_default() += 1;
    }

    /// The fault for the request numbered `sequence`: the same numbers draw the same faults.
    fn draw(&self, sequence: u64, is_write: bool) -> (Fault, Duration) {
        let o = &self.options;
        let emukit::server::Draw {
            mut rng,
            latency,
            roll,
        } = emukit::server::Draw::new(o.seed, sequence, o.latency_ms, o.jitter_ms);
        let five_xx = [500, 502, 503][rng.random_range(0..3)];
        let either: bool = rng.random();
        let mut edge = 0.0;
        let mut hit = |rate: f64| {
            edge += rate;
            roll < edge
        };
        let fault = if hit(o.error_rate) {
            Fault::Error(five_xx)
        } else if hit(o.drop_rate) {
            Fault::Drop
        } else if hit(o.stall_rate) {
            Fault::Stall
        } else if is_write && hit(o.applied_then_failed_rate) {
            if either {
                Fault::AppliedThenError(five_xx)
            } else {
                Fault::AppliedThenDrop
            }
        } else {
            Fault::None
        };
        (fault, latency)
    }

    /// Seconds to wait when over the rate budget, or `None` when within it.
    fn over_budget(&self) -> Option<u64> {
        let limit = self.options.rate_limit?;
        let second = self.started.elapsed().as_secs();
        let mut window = self.window.lock().unwrap();
        if window.0 != second {
            *window = (second, 0);
        }
        window.1 += 1;
        (window.1 > limit).then_some(self.options.retry_after_secs)
    }
}

/// A JSON answer; a bare JSON string is sent as `text/plain` (v1's "Update successful").
fn json_response(status: u16, body: &Value) -> Response<Full<Bytes>> {
    let (content_type, bytes) = match body {
        Value::String(text) => ("text/plain", text.clone().into_bytes()),
        other => (
            "application/json",
            serde_json::to_vec(other).expect("JSON serializes"),
        ),
    };
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(bytes)))
        .expect("valid response")
}

fn message(status: u16, text: impl Into<String>) -> (u16, Value) {
    (status, json!({ "message": text.into() }))
}

/// The endpoint's name for stats: ids replaced by `{uuid}`.
fn endpoint_label(method: &Method, segments: &[&str]) -> String {
    let path: Vec<&str> = match segments {
        ["v2", object, id] if !matches!(*id, "bulk" | "upsert" | "search") => {
            vec!["v2", object, "{uuid}"]
        }
        ["v1", ..] => segments
            .iter()
            .map(|s| {
                if s.bytes().all(|b| b.is_ascii_digit()) {
                    "{id}"
                } else {
                    s
                }
            })
            .collect(),
        other => other.to_vec(),
    };
    format!("{method} /{}", path.join("/"))
}

async fn handle(state: Arc<Shared>, req: Request<Incoming>) -> Reply {
    let arrived = tokio::time::Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let segments: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let owned_segments: Vec<String> = segments
        .iter()
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();

    if segments.first() == Some(&"_emulator") {
        return Ok(inspect(&state, &method, &segments));
    }
    let label = endpoint_label(&method, &segments);
    let authorization = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = match req.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return Err(Dropped),
    };

    let sequence = state.sequence.fetch_add(1, Ordering::SeqCst);
    let is_write = method != Method::GET;
    let (fault, latency) = state.draw(sequence, is_write);
    let answer_at = arrived + latency;
    let (_in_flight, _) = InFlight::enter(&state.in_flight);
    let segments: Vec<&str> = owned_segments.iter().map(String::as_str).collect();
    let request = ApiCall {
        method: &method,
        segments: &segments,
        query: &query,
        authorization: authorization.as_deref(),
        body: &body,
        label: &label,
        sequence,
        fault,
    };
    let reply = respond(&state, request).await;
    // Latency is the API's response time: the answer leaves `latency` after the request
    // arrived, the emulator's own work included (later only if that work took longer). The
    // work comes first so that requests waiting together do not contend in lockstep.
    tokio::time::sleep_until(answer_at).await;
    reply
}

/// One API request, decoded.
struct ApiCall<'a> {
    method: &'a Method,
    segments: &'a [&'a str],
    query: &'a str,
    authorization: Option<&'a str>,
    body: &'a [u8],
    label: &'a str,
    sequence: u64,
    fault: Fault,
}

async fn respond(state: &Shared, request: ApiCall<'_>) -> Reply {
    let ApiCall {
        method,
        segments,
        query,
        authorization,
        body,
        label,
        sequence,
        fault,
    } = request;
    let label = label.to_owned();
    let crowded = state
        .options
        .max_in_flight
        .is_some_and(|cap| state.in_flight.load(Ordering::SeqCst) > cap);
    let throttled = if crowded {
        Some(state.options.retry_after_secs)
    } else {
        state.over_budget()
    };
    if let Some(wait) = throttled {
        state.count(&label, "429");
        let mut response = json_response(429, &json!({"message": "too many requests"}));
        response
            .headers_mut()
            .insert("retry-after", wait.to_string().parse().expect("digits"));
        return Ok(response);
    }
    if state
        .options
        .outage_after
        .is_some_and(|after| sequence >= after)
        || sequence >= state.outage_from.load(Ordering::SeqCst)
    {
        state.count(&label, "503");
        return Ok(json_response(
            503,
            &json!({"message": "service unavailable (emulated outage)"}),
        ));
    }
    match fault {
        Fault::Error(status) => {
            state.count(&label, &status.to_string());
            return Ok(json_response(
                status,
                &json!({"message": "emulated server error"}),
            ));
        }
        Fault::Drop => {
            state.count(&label, "dropped");
            return Err(Dropped);
        }
        Fault::Stall => {
            tokio::time::sleep(Duration::from_secs_f64(state.options.stall_secs)).await;
            state.count(&label, "dropped");
            return Err(Dropped);
        }
        _ => {}
    }
    let (status, answer) = route(state, method, segments, query, authorization, body);
    match fault {
        Fault::AppliedThenError(error) if status < 300 => {
            state.count(&label, &error.to_string());
            Ok(json_response(
                error,
                &json!({"message": "emulated server error after the write was applied"}),
            ))
        }
        Fault::AppliedThenDrop if status < 300 => {
            state.count(&label, "dropped");
            Err(Dropped)
        }
        _ => {
            state.count(&label, &status.to_string());
            Ok(json_response(status, &answer))
        }
    }
}

fn authorized(state: &Shared, authorization: Option<&str>) -> bool {
    let Some(value) = authorization else {
        return false;
    };
    let epoch = state.revocation_epoch();
    let valid = if value == state.options.api_key {
        epoch == 0
    } else {
        let tokens = state.tokens.lock().unwrap();
        tokens
            .get(value)
            .is_some_and(|(expiry, issued)| *expiry > Instant::now() && *issued == epoch)
    };
    if valid {
        state.authorized_requests.fetch_add(1, Ordering::SeqCst);
    }
    valid
}

impl Shared {
    /// 0 until `revoke_after` authorized requests were served, 1 after.
    fn revocation_epoch(&self) -> u64 {
        match self.options.revoke_after {
            Some(after) if self.authorized_requests.load(Ordering::SeqCst) >= after => 1,
            _ => 0,
        }
    }
}

fn route(
    state: &Shared,
    method: &Method,
    segments: &[&str],
    query: &str,
    authorization: Option<&str>,
    body: &[u8],
) -> (u16, Value) {
    if segments == ["v1", "auth"] {
        return if method == Method::POST {
            sign_in(state, body)
        } else {
            message(405, "use POST")
        };
    }
    if let ["v1", rest @ ..] = segments {
        if state.options.no_v1 {
            return message(404, "no such endpoint");
        }
        if !authorized(state, authorization) {
            return (
                401,
                json!({"error": "invalid_token", "error_description": "Invalid access token"}),
            );
        }
        let mut store = state.store.lock().unwrap();
        return v1::route(&mut store, method.as_str(), rest, query, body);
    }
    if let ["v2", "customfield", "all", resource] = segments {
        if !authorized(state, authorization) {
            return (401, json!({"code": "Unauthorized", "message": ""}));
        }
        let object = [Object::Client, Object::Contact, Object::Contract]
            .into_iter()
            .find(|o| o.resource() == *resource);
        return match (method, object) {
            (&Method::GET, Some(object)) => (200, Value::Array(state.definitions.list(object))),
            (&Method::GET, None) => message(404, format!("no such resource {resource:?}")),
            _ => message(405, format!("{method} is not supported on this path")),
        };
    }
    let ["v2", object, rest @ ..] = segments else {
        return message(404, "no such endpoint");
    };
    let Some(object) = Object::parse(object) else {
        return message(404, format!("no such object {object:?}"));
    };
    // Route families an account may lack answer 404 before any check, as a missing route does.
    let o = &state.options;
    let missing = match (method, rest) {
        (&Method::POST, ["bulk"]) => o.no_v2_bulk,
        (&Method::POST, ["upsert"]) => o.no_v2_upsert,
        (&Method::POST, []) => o.no_v2_single,
        (&Method::PUT, [_]) => !o.v2_writes(),
        _ => false,
    };
    if missing {
        return message(404, "no such endpoint");
    }
    if !authorized(state, authorization) {
        return (401, json!({"code": "Unauthorized", "message": ""}));
    }
    let parse_body = || -> Result<Value, (u16, Value)> {
        serde_json::from_slice(body)
            .map_err(|e| message(400, format!("the body is not valid JSON: {e}")))
    };
    if let (&Method::POST, ["bulk"]) = (method, rest) {
        if object != Object::Contract {
            // The hot path: validate without holding the store, lock only to look up parent
            // clients and to insert.
            let body = match parse_body() {
                Ok(body) => body,
                Err(error) => return error,
            };
            let exists = |uuid: &str| state.store.lock().unwrap().client_exists(uuid);
            return match store::check_bulk(object, body, &exists, &state.definitions) {
                Ok(checked) => state.store.lock().unwrap().insert_many(object, checked),
                Err(error) => error,
            };
        }
    }
    let mut store = state.store.lock().unwrap();
    let result = match (method, rest) {
        (&Method::POST, ["upsert"]) => parse_body().map(|b| store.upsert(object, &b)),
        (&Method::POST, []) => parse_body().map(|b| store.create(object, &b)),
        (&Method::GET, ["search"]) => {
            let param = |name: &str, default: usize| {
                query
                    .split('&')
                    .filter_map(|pair| pair.split_once('='))
                    .find(|(k, _)| *k == name)
                    .map_or(Ok(default), |(_, v)| {
                        v.parse::<usize>().map_err(|_| {
                            message(400, format!("{name} must be a non-negative integer"))
                        })
                    })
            };
            param("page", 0)
                .and_then(|page| param("size", 50).map(|size| store.search(object, page, size)))
        }
        (&Method::PUT, [uuid]) => parse_body().map(|b| store.update(object, uuid, &b)),
        (&Method::GET, [uuid]) => Ok(store.read(object, uuid)),
        _ => Err(message(
            405,
            format!("{method} is not supported on this path"),
        )),
    };
    result.unwrap_or_else(|error| error)
}

fn sign_in(state: &Shared, body: &[u8]) -> (u16, Value) {
    let credentials: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let matches = credentials["username"] == state.options.username
        && credentials["password"] == state.options.password;
    if !matches {
        return (401, json!({"code": "Unauthorized", "message": ""}));
    }
    let sequence = state.sequence.load(Ordering::SeqCst);
    let mut rng = rand::rngs::StdRng::seed_from_u64(
        state.options.seed.wrapping_add(sequence).wrapping_mul(31),
    );
    let token = format!("{:016x}-{:016x}", rng.random::<u64>(), rng.random::<u64>());
    let ttl = Duration::from_secs_f64(state.options.token_ttl_secs);
    let epoch = state.revocation_epoch();
    state
        .tokens
        .lock()
        .unwrap()
        .insert(token.clone(), (Instant::now() + ttl, epoch));
    (
        200,
        json!({"access_token": token, "token_type": "Bearer", "expires_in": ttl.as_secs()}),
    )
}

fn inspect(state: &Shared, method: &Method, segments: &[&str]) -> Response<Full<Bytes>> {
    match (method, segments) {
        (&Method::GET, ["_emulator", "records", object]) => match Object::parse(object) {
            Some(object) => {
                json_response(200, &Value::Array(state.store.lock().unwrap().dump(object)))
            }
            None => json_response(404, &json!({"message": "no such object"})),
        },
        (&Method::GET, ["_emulator", "stats"]) => {
            let stats = state.stats.lock().unwrap().clone();
            let total: u64 = stats.values().flat_map(|s| s.values()).sum();
            json_response(200, &json!({"requests": stats, "total": total}))
        }
        (&Method::POST, ["_emulator", "reset"]) => {
            state.reset();
            json_response(200, &json!({"reset": true}))
        }
        _ => json_response(404, &json!({"message": "no such inspection endpoint"})),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_hide_ids() {
        assert_eq!(
            endpoint_label(&Method::PUT, &["v2", "client", "abc"]),
            "PUT /v2/client/{uuid}"
        );
        assert_eq!(
            endpoint_label(&Method::POST, &["v2", "client", "bulk"]),
            "POST /v2/client/bulk"
        );
        assert_eq!(
            endpoint_label(
                &Method::PUT,
                &["v1", "clients", "12", "contacts", "7", "details"]
            ),
            "PUT /v1/clients/{id}/contacts/{id}/details"
        );
    }

    #[test]
    fn draws_are_reproducible() {
        let options = Options {
            error_rate: 0.5,
            seed: 7,
            ..Options::default()
        };
        let a = Shared::new(options.clone(), rules::Definitions::sample());
        let b = Shared::new(options, rules::Definitions::sample());
        let draws_a: Vec<_> = (0..50).map(|i| a.draw(i, true).0).collect();
        let draws_b: Vec<_> = (0..50).map(|i| b.draw(i, true).0).collect();
        assert_eq!(draws_a, draws_b);
        assert!(
            draws_a.contains(&Fault::None) && draws_a.iter().any(|f| matches!(f, Fault::Error(_)))
        );
    }
}
