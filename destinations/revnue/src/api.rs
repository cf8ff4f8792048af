//! Everything that knows the Revnue API v2's wire: the Bearer token, the three shapes of an
//! error body, lists paged to their end (or a bare array), the lookups a write needs, and
//! sending over the engine's Sender at the account's budget.

use crate::config::Settings;
use bytes::Bytes;
use engine::concurrency::Adaptive;
use engine::error::Fatal;
use engine::http::{
    Answers, Credentials, MethodPath, Outgoing, Platform, Reply, Sender, Transport,
};
use engine::secret::Secret;
use reqwest::header::AUTHORIZATION;
use reqwest::Method;
use serde_json::{Map, Value};
use tokio::sync::mpsc::UnboundedSender;

pub const PLATFORM: Platform = Platform {
    name: "Revnue",
    default_url: crate::config::DEFAULT_BASE_URL,
};
const AGENT: &str = concat!("destination-revnue/", env!("CARGO_PKG_VERSION"));
/// The share of `requests_per_minute` the pace keeps to.
pub const BUDGET_SHARE: f64 = 0.98;
/// The most a list page may hold; fewer pages spend less of the budget.
pub const PAGE_SIZE: usize = 500;

/// `Authorization: Bearer <token>`; a token has no expiry and nothing renews it.
pub struct BearerToken(Secret);

impl BearerToken {
    pub fn new(token: &Secret) -> Self {
        Self(Secret::new(format!("Bearer {}", token.expose())))
    }
}

impl Credentials for BearerToken {
    async fn authorization(&self) -> Result<(Secret, u64), Fatal> {
        Ok((self.0.clone(), 0))
    }

    fn unauthorized(&self) -> String {
        "Revnue refused the API token (401): it was mistyped, regenerated or disabled; an Administrator can generate a new one on the Revnue settings page".to_owned()
    }
}

/// An error body as one message: a `detail` string, an object of field → messages, or a list.
pub fn error_message(body: &[u8]) -> String {
    fn join(value: &Value) -> String {
        match value {
            Value::String(s) => s.clone(),
            Value::Array(items) => items.iter().map(join).collect::<Vec<_>>().join("; "),
            Value::Object(map) => map
                .iter()
                .map(|(field, why)| match field.as_str() {
                    "detail" | "non_field_errors" => join(why),
                    _ => format!("{field}: {}", join(why)),
                })
                .collect::<Vec<_>>()
                .join("; "),
            other => other.to_string(),
        }
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(value @ (Value::Object(_) | Value::Array(_))) => join(&value),
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
    sender: Sender<BearerToken>,
    /// `{base_url}/api/v2`.
    api_url: String,
    base_url: String,
    pub company: u64,
    pub requests_per_minute: u32,
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
            forbidden_hint: "the token may act for the whole account only when an Administrator generated it; generate a new one",
            error_message,
            // A 404 or 405 is judged by the writer: a record's, a PATCH the account lacks, or
            // a route that is missing.
            missing_route: |_, _| false,
        };
        // 2% under the budget: a request sent on time can still arrive early (timers, the
        // network), and the account's window counts arrivals.
        let per_second = f64::from(settings.requests_per_minute) / 60.0 * BUDGET_SHARE;
        Ok(Self {
            sender: Sender::new(
                transport,
                BearerToken::new(&settings.api_token),
                answers,
                Adaptive::with_ceiling(settings.sync.max_concurrency, per_second),
                settings.sync.max_retries,
                settings.sync.request_timeout,
            )
            .read_only(settings.sync.dry_run),
            api_url: settings.api_url.clone(),
            base_url: settings.base_url.clone(),
            company: settings.company,
            requests_per_minute: settings.requests_per_minute,
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

    pub fn requests_sent(&self) -> u64 {
        self.sender.requests_sent()
    }

    /// The pace kept now, in requests a minute.
    pub fn pace_per_minute(&self) -> f64 {
        self.sender
            .pace()
            .map_or(f64::from(self.requests_per_minute) * BUDGET_SHARE, |p| {
                p * 60.0
            })
    }

    pub fn notice(&self, message: String) {
        self.sender.notice(message);
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Sends `method path` (relative to `/api/v2`, already encoded; or an absolute URL of the
    /// same origin, a list's `next`).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
        creates: bool,
    ) -> Result<Reply, Fatal> {
        let url = if path.starts_with('/') {
            format!("{}{path}", self.api_url)
        } else {
            path.to_owned()
        };
        let uri = http::Uri::try_from(url.as_str())
            .map_err(|e| Fatal::config(format!("base_url {} with {path}: {e}", self.base_url)))?;
        let shown = path.strip_prefix(&self.api_url).unwrap_or(path);
        self.sender
            .send(Outgoing {
                label: &MethodPath(&method, shown),
                method: method.clone(),
                uri,
                body,
                creates,
            })
            .await
    }

    /// Every item of a list route, following `next` to its end (or a bare array, the whole
    /// list). Returns the items and the pages read.
    pub async fn list(&self, route: &str) -> Result<(Vec<Map<String, Value>>, u64), Fatal> {
        let mut next = None;
        let mut items = Vec::new();
        let mut pages = 0;
        loop {
            let page = self.page(route, next).await?;
            pages += 1;
            items.extend(page.items);
            next = page.next;
            if next.is_none() {
                return Ok((items, pages));
            }
        }
    }

    /// `GET {route}/{id}/?company=C`: the record, or `None` when there is none.
    pub async fn record(&self, route: &str, id: u64) -> Result<Option<Map<String, Value>>, Fatal> {
        let path = format!("{route}/{id}/?company={}", self.company);
        match self.send(Method::GET, &path, None, false).await? {
            Reply::Success { body, .. } => record_of(&body).map(Some).ok_or_else(|| {
                Fatal::config(format!(
                    "GET {route}/{{id}}/ did not answer with a JSON record: check base_url ({})",
                    self.base_url()
                ))
            }),
            Reply::Refused { status: 404, .. } => Ok(None),
            Reply::Refused { status, message } => Err(Fatal::config(format!(
                "GET {route}/{{id}}/ answered {status} ({message}): check company ({})",
                self.company
            ))),
            Reply::Unknown { reason, .. } => Err(Fatal::config(reason)),
        }
    }

    /// One page of a list route: the first (`next` None, at the largest page size), or the
    /// page a `next` link names. A `next` on another origin is refused: the token goes only
    /// to base_url.
    pub async fn page(&self, route: &str, next: Option<String>) -> Result<ListPage, Fatal> {
        let path = match next {
            Some(link) => link,
            None => {
                let separator = if route.contains('?') { '&' } else { '?' };
                format!("{route}{separator}page_size={PAGE_SIZE}")
            }
        };
        let shown = route.split('?').next().unwrap_or(route);
        let body = match self.send(Method::GET, &path, None, false).await? {
            Reply::Success { body, .. } => body,
            Reply::Refused { status, message } => {
                return Err(Fatal::config(format!(
                "GET {shown} answered {status} ({message}): check base_url ({}) and company ({})",
                self.base_url, self.company
            )))
            }
            Reply::Unknown { reason, .. } => return Err(Fatal::config(reason)),
        };
        let not_a_list = || {
            Fatal::config(format!(
                "GET {shown} did not answer with a JSON list: check that base_url ({}) is the Revnue API host",
                self.base_url
            ))
        };
        match serde_json::from_slice::<Value>(&body).map_err(|_| not_a_list())? {
            Value::Array(all) => Ok(ListPage {
                items: all.into_iter().filter_map(into_object).collect(),
                next: None,
                count: None,
            }),
            Value::Object(mut page) => {
                let Some(Value::Array(results)) = page.remove("results") else {
                    return Err(not_a_list());
                };
                let next = match page.remove("next") {
                    Some(Value::String(link)) => Some(self.same_origin(&link)?),
                    _ => None,
                };
                Ok(ListPage {
                    items: results.into_iter().filter_map(into_object).collect(),
                    next,
                    count: page.get("count").and_then(Value::as_u64),
                })
            }
            _ => Err(not_a_list()),
        }
    }

    /// A `next` link as a path or URL this client may follow.
    fn same_origin(&self, link: &str) -> Result<String, Fatal> {
        if link.starts_with('/') {
            // Relative to the host: it already carries /api/v2.
            return Ok(format!("{}{link}", self.base_url));
        }
        let origin = |url: &str| -> Option<String> {
            let (scheme, rest) = url.split_once("://")?;
            Some(format!("{scheme}://{}", rest.split('/').next()?).to_ascii_lowercase())
        };
        if origin(link).is_some() && origin(link) == origin(&self.base_url) {
            Ok(link.to_owned())
        } else {
            Err(Fatal::config(format!(
                "a list page's `next` ({link}) is not on base_url ({}): not followed, so the token stays with base_url",
                self.base_url
            )))
        }
    }

    /// `check`'s proof: one read of the company's customers, no retries. Errors say what to fix.
    pub async fn probe(&self) -> Result<Option<u64>, String> {
        let path = format!("/customer/?company={}&page_size=1", self.company);
        let reply = self
            .send(Method::GET, &path, None, false)
            .await
            .map_err(|f| f.message().to_owned())?;
        let body = match reply {
            Reply::Success { body, .. } => body,
            Reply::Refused { status: 400, message } => {
                return Err(format!(
                    "Revnue refused company {} ({message}): set `company` to a company id of this account (1 in a single-company account)",
                    self.company
                ))
            }
            Reply::Refused { status, message } => {
                return Err(format!(
                    "GET /customer/ answered {status} ({message}): check base_url ({})",
                    self.base_url
                ))
            }
            Reply::Unknown { reason, .. } => return Err(reason),
        };
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Array(all)) => Ok(Some(all.len() as u64)),
            Ok(Value::Object(page)) if page.contains_key("results") => {
                Ok(page.get("count").and_then(Value::as_u64))
            }
            _ => Err(format!(
                "GET /customer/ at {} did not answer with a list: check that base_url is the Revnue API host",
                self.base_url
            )),
        }
    }
}

/// One page of a list route.
pub struct ListPage {
    pub items: Vec<Map<String, Value>>,
    /// The next page's path or URL; `None` on the last.
    pub next: Option<String>,
    /// Records in the whole list, where the page says.
    pub count: Option<u64>,
}

fn into_object(value: Value) -> Option<Map<String, Value>> {
    match value {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

/// A record from a write's answer.
pub fn record_of(body: &[u8]) -> Option<Map<String, Value>> {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(into_object)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_shape_becomes_one_message() {
        assert_eq!(
            error_message(br#"{"detail":"company is required"}"#),
            "company is required"
        );
        assert_eq!(
            error_message(
                br#"{"name":["at most 50 characters"],"country":["country 999 not found"]}"#
            ),
            "name: at most 50 characters; country: country 999 not found"
        );
        assert_eq!(error_message(br#"["a","b"]"#), "a; b");
        assert_eq!(error_message(b"<html>502</html>"), "<html>502</html>");
    }
}
