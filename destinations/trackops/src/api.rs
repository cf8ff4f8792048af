//! Everything that knows the Trackops Developer API's wire: Basic auth as `login/token`, the
//! error bodies, lists paged to their end, and sending over the engine's Sender.

use crate::config::Settings;
use crate::objects::{key_of, TrackopsObject};
use base64::Engine as _;
use bytes::Bytes;
use engine::concurrency::Adaptive;
use engine::error::Fatal;
use engine::http::{create_until_known, Creation};
use engine::http::{
    Answers, Credentials, MethodPath, Outgoing, Platform, Reply, Sender, Transport,
};
use engine::secret::Secret;
use engine::write::Verdict;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use reqwest::header::AUTHORIZATION;
use reqwest::Method;
use serde_json::{json, Map, Value};
use tokio::sync::mpsc::UnboundedSender;

pub const PLATFORM: Platform = Platform {
    name: "Trackops",
    default_url: "https://{subdomain}.viewcases.com/api/v1",
};
const AGENT: &str = concat!("destination-trackops/", env!("CARGO_PKG_VERSION"));
/// Trackops pages hold at most 100 records; a shorter page is the last.
pub const PAGE: usize = 100;
/// Trackops publishes no budget: one request a second to begin with.
const GENTLE_START_PER_SECOND: f64 = 1.0;

/// `Basic base64(login/token:token)`.
pub struct BasicToken {
    header: Secret,
    username: String,
}

impl BasicToken {
    pub fn new(username: &str, token: &Secret) -> Self {
        let pair = format!("{username}/token:{}", token.expose());
        let header = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        );
        Self {
            header: Secret::new(header),
            username: username.to_owned(),
        }
    }
}

impl Credentials for BasicToken {
    async fn authorization(&self) -> Result<(Secret, u64), Fatal> {
        Ok((self.header.clone(), 0))
    }

    fn unauthorized(&self) -> String {
        format!(
            "Trackops refused the credentials (401): check that {:?} is the login name of an active employee (the connector adds /token itself) and that api_token is an enabled company token (Settings > API Tokens)",
            self.username
        )
    }
}

/// A Trackops error body's `message`, with its field errors; or the body's text.
pub fn error_message(body: &[u8]) -> String {
    match serde_json::from_slice::<Value>(body) {
        Ok(value) if value["message"].is_string() => {
            let mut message = value["message"].as_str().unwrap_or_default().to_owned();
            if let Some(errors) = value["errors"].as_object() {
                let fields: Vec<String> = errors
                    .iter()
                    .map(|(field, why)| {
                        let reasons: Vec<&str> = why
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(Value::as_str)
                            .collect();
                        format!("`{field}` {}", reasons.join(", "))
                    })
                    .collect();
                if !fields.is_empty() {
                    message = format!("{message}: {}", fields.join("; "));
                }
            }
            message
        }
        _ => {
            let text = String::from_utf8_lossy(body);
            match text.trim() {
                "" => "(no message)".to_owned(),
                text => text.chars().take(300).collect(),
            }
        }
    }
}

pub struct ApiClient {
    sender: Sender<BasicToken>,
    base_url: String,
}

impl ApiClient {
    pub fn new(settings: &Settings) -> anyhow::Result<Self> {
        let transport = Transport::new(
            settings.sync.request_timeout,
            settings.sync.max_concurrency.max(1),
            AUTHORIZATION,
            AGENT,
        )?;
        let answers = Answers {
            platform: PLATFORM,
            base_url: settings.base_url.clone(),
            forbidden_hint: "API access needs an active Full Access employee: give username such an employee's login (a dedicated one is advised)",
            error_message,
            // A 404 or 405 is judged by the writer: a record's, or a route's (see `writer`).
            missing_route: |status, _| status == 405,
        };
        Ok(Self {
            sender: Sender::new(
                transport,
                BasicToken::new(&settings.username, &settings.api_token),
                answers,
                Adaptive::gentle(settings.sync.max_concurrency, GENTLE_START_PER_SECOND),
                settings.sync.max_retries,
                settings.sync.request_timeout,
            )
            .read_only(settings.sync.dry_run),
            base_url: settings.base_url.clone(),
        })
    }

    pub fn with_max_retries(mut self, max_retries: u32) -> Self {
        self.sender = self.sender.with_max_retries(max_retries);
        self
    }

    pub fn with_notices(mut self, notices: UnboundedSender<String>) -> Self {
        self.sender = self.sender.with_notices(notices);
        self
    }

    pub fn stop(&self) {
        self.sender.stop();
    }

    pub fn concurrency_limit(&self) -> usize {
        self.sender.concurrency_limit()
    }

    /// Requests sent so far, every attempt counted.
    pub fn requests_sent(&self) -> u64 {
        self.sender.requests_sent()
    }

    /// The pace kept now, in requests a minute, once one is known.
    pub fn pace_per_minute(&self) -> Option<f64> {
        self.sender.pace().map(|per_second| per_second * 60.0)
    }

    pub fn notice(&self, message: String) {
        self.sender.notice(message);
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Sends `method path` (relative to `/api/v1`, already encoded).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
        creates: bool,
    ) -> Result<Reply, Fatal> {
        let uri = http::Uri::try_from(format!("{}{path}", self.base_url))
            .map_err(|e| Fatal::config(format!("base_url {} with {path}: {e}", self.base_url)))?;
        self.sender
            .send(Outgoing {
                label: &MethodPath(&method.clone(), path),
                method,
                uri,
                body,
                creates,
            })
            .await
    }

    /// Every record of `route` matching `filters`, page by page to a short page. A 2xx that
    /// is not a JSON list (a login page) means the URL is wrong.
    pub async fn list(
        &self,
        route: &str,
        filters: &[(&str, String)],
    ) -> Result<Vec<Map<String, Value>>, Fatal> {
        let mut all = Vec::new();
        for page in 1.. {
            let records = self.page(route, filters, page).await?;
            let short = records.len() < PAGE;
            all.extend(records);
            if short {
                break;
            }
        }
        Ok(all)
    }

    /// Page `page` (from 1) of `route` matching `filters`, `PAGE` records a page.
    pub async fn page(
        &self,
        route: &str,
        filters: &[(&str, String)],
        page: u64,
    ) -> Result<Vec<Map<String, Value>>, Fatal> {
        let query: String = filters
            .iter()
            .map(|(k, v)| format!("{k}={}&", utf8_percent_encode(v, NON_ALPHANUMERIC)))
            .collect();
        let path = format!("{route}?{query}per_page={PAGE}&page={page}");
        let body = self.read(route, &path).await?;
        serde_json::from_slice(&body).map_err(|_| {
            Fatal::config(format!(
                "GET {route} did not answer with a JSON list (a login page?): check that base_url ({}) is the Trackops API, https://{{subdomain}}.viewcases.com/api/v1",
                self.base_url
            ))
        })
    }

    /// The pages of `route`'s whole list, `PAGE` records a page (`mode=count`).
    pub async fn pages(&self, route: &str) -> Result<u64, Fatal> {
        let body = self
            .read(route, &format!("{route}?mode=count&per_page={PAGE}"))
            .await?;
        serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v["page_count"].as_u64())
            .ok_or_else(|| {
                Fatal::config(format!(
                    "GET {route}?mode=count did not answer with a count (a login page?): check that base_url ({}) is the Trackops API",
                    self.base_url
                ))
            })
    }

    async fn read(&self, route: &str, path: &str) -> Result<Bytes, Fatal> {
        match self.send(Method::GET, path, None, false).await? {
            Reply::Success { body, .. } => Ok(body),
            Reply::Refused { status, message } => Err(Fatal::config(format!(
                "GET {route} answered {status} ({message}): check base_url ({}) and that the employee may read it",
                self.base_url
            ))),
            Reply::Unknown { reason, .. } => Err(Fatal::config(reason)),
        }
    }

    /// `{"client": {…}}`: a write body, under its object's wrapper.
    pub fn wrapped(object: TrackopsObject, record: &Map<String, Value>) -> Bytes {
        Bytes::from(serde_json::to_vec(&json!({ object.wrapper(): record })).expect("JSON"))
    }

    /// The records of `object` whose natural key is `key`, read now (the API's filter may
    /// match substrings, so the matches are checked).
    pub async fn with_key(
        &self,
        object: TrackopsObject,
        key: &str,
    ) -> Result<Vec<Map<String, Value>>, Fatal> {
        let field = match object {
            TrackopsObject::Client => "account_code",
            _ => "email",
        };
        let all = self
            .list(object.route(), &[(field, key.to_owned())])
            .await?;
        Ok(all
            .into_iter()
            .filter(|r| key_of(object, r).as_deref() == Some(key))
            .collect())
    }

    /// The client a create of `fields` made, if it landed: the one of its account code, else
    /// of its exact name (a client may have no code).
    pub async fn client_like(
        &self,
        fields: &Map<String, Value>,
    ) -> Result<Option<Map<String, Value>>, Fatal> {
        let object = TrackopsObject::Client;
        let found = match fields.get("account_code").and_then(Value::as_str) {
            Some(code) => self.with_key(object, code.trim()).await?,
            None => {
                let name = fields
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let all = self.list("/clients", &[("name", name.to_owned())]).await?;
                let exact =
                    |c: &Map<String, Value>| c.get("name").and_then(Value::as_str) == Some(name);
                all.into_iter().filter(exact).collect()
            }
        };
        // A listed client lacks its primary location's columns: read it whole.
        match found
            .first()
            .and_then(|c| c.get("id"))
            .and_then(Value::as_u64)
        {
            Some(id) => self.record(object, id).await,
            None => Ok(None),
        }
    }

    /// A record by id, or `None` when there is none.
    pub async fn record(
        &self,
        object: TrackopsObject,
        id: u64,
    ) -> Result<Option<Map<String, Value>>, Fatal> {
        let path = format!("{}/{id}", object.route());
        match self.send(Method::GET, &path, None, false).await? {
            Reply::Success { body, .. } => unwrap_record(&body, object.wrapper())
                .map(Some)
                .ok_or_else(|| {
                    Fatal::config(format!(
                        "GET {path} did not answer with JSON: check base_url ({})",
                        self.base_url()
                    ))
                }),
            _ => Ok(None),
        }
    }

    /// POSTs a create; a create of unknown outcome is looked for with `find` first.
    pub async fn create<Look>(
        &self,
        object: TrackopsObject,
        record: &Map<String, Value>,
        find: impl Fn() -> Look,
    ) -> Result<Result<Map<String, Value>, Verdict>, Fatal>
    where
        Look: std::future::Future<Output = Result<Option<Map<String, Value>>, Fatal>>,
    {
        let route = object.route();
        let body = Self::wrapped(object, record);
        let send = || self.send(Method::POST, route, Some(body.clone()), true);
        let look = |reason: String| {
            let found = find();
            async move {
                let found = found.await?;
                if found.is_some() {
                    self.notice(format!(
                        "POST {route} failed ({reason}) but the record exists: it landed"
                    ));
                }
                Ok(found)
            }
        };
        let base_url = self.base_url();
        match create_until_known(send, look).await? {
            Creation::Answered(answer) => unwrap_record(&answer, object.wrapper()).map(Ok).ok_or_else(|| {
                Fatal::config(format!("POST {route} answered without a JSON record (a login page?): check base_url ({base_url})"))
            }),
            Creation::Found(existing) => Ok(Ok(existing)),
            Creation::Refused { status: 404, message } => Err(Fatal::config(format!(
                "POST {route} answered 404 ({message}): the route is missing, or this account has no write access to it; check base_url ({base_url})"
            ))),
            Creation::Refused { status, message } => Ok(Err(Verdict::refused_with(status, message))),
        }
    }

    /// `check`'s proof: one count of clients, no retries. Errors say what to fix.
    pub async fn probe(&self) -> Result<u64, String> {
        let reply = self
            .send(Method::GET, "/clients?mode=count", None, false)
            .await
            .map_err(|f| f.message().to_owned())?;
        let body = match reply {
            Reply::Success { body, .. } => body,
            Reply::Refused { status, message } => {
                return Err(format!("GET /clients?mode=count answered {status} ({message}): check base_url ({}) or subdomain", self.base_url))
            }
            Reply::Unknown { reason, .. } => return Err(reason),
        };
        serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v["record_count"].as_u64())
            .ok_or_else(|| format!(
                "GET /clients?mode=count at {} did not answer with a count (a login page?): check subdomain or base_url",
                self.base_url
            ))
    }
}

/// A record from an answer: bare, or under its wrapper key.
pub fn unwrap_record(body: &[u8], wrapper: &str) -> Option<Map<String, Value>> {
    let Value::Object(mut record) = serde_json::from_slice(body).ok()? else {
        return None;
    };
    if record.len() == 1 {
        if let Some(Value::Object(inner)) = record.remove(wrapper) {
            return Some(inner);
        }
    }
    Some(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth_adds_the_token_suffix() {
        let auth = BasicToken::new("jdoe@example.com", &Secret::new("t0k".to_owned()));
        let encoded = auth.header.expose().strip_prefix("Basic ").unwrap();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap();
        assert_eq!(decoded, b"jdoe@example.com/token:t0k");
    }

    #[test]
    fn errors_name_their_fields_and_html_is_kept_as_text() {
        let body = br#"{"message":"Validation failed","errors":{"primary_location.state":["is required"]}}"#;
        assert_eq!(
            error_message(body),
            "Validation failed: `primary_location.state` is required"
        );
        assert_eq!(error_message(b"<html>down</html>"), "<html>down</html>");
        assert_eq!(
            unwrap_record(br#"{"client":{"id":4}}"#, "client").unwrap()["id"],
            4
        );
        assert_eq!(
            unwrap_record(br#"{"id":4,"name":"A"}"#, "client").unwrap()["id"],
            4
        );
    }
}
