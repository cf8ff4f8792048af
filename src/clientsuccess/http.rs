//! The ClientSuccess HTTP client: authentication, one request with retries, and what each
//! answer means, for the v2 API and the v1 API beside it.

use crate::config::{Auth, Settings};
use bytes::Bytes;
use engine::concurrency::Adaptive;
use engine::error::{ConfigError, Fatal, TransientError};
pub use engine::http::{
    backoff, classify, describe_transport_failure, parse_retry_after, transport_failure,
    Disposition, Reply, TransportFailure, RETRY_AFTER_CAP, THROTTLE_BUDGET,
};
use engine::http::{Answers, Outgoing, Platform, Sender, Transport};
use engine::secret::Secret;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedSender;

/// ClientSuccess, as messages name it.
pub const PLATFORM: Platform = Platform {
    name: "ClientSuccess",
    default_url: crate::config::DEFAULT_BASE_URL,
};
/// The longest token lifetime believed; a token is renewed at least this often.
const TOKEN_LIFETIME_CAP: Duration = Duration::from_secs(7 * 24 * 3600);
/// Routes whose URI is kept once parsed.
const URI_CACHE: usize = 16;
const AGENT: &str = concat!("destination-clientsuccess/", env!("CARGO_PKG_VERSION"));

/// The `message` of an API error body, or the body itself, cut short.
pub fn error_message(body: &[u8]) -> String {
    // v2 answers `message`; v1 answers `userMessage` (a 417) or `error_description` (a 401).
    #[derive(Deserialize)]
    struct ErrorBody {
        message: Option<String>,
        #[serde(rename = "userMessage")]
        user_message: Option<String>,
        error_description: Option<String>,
    }
    let found = serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .and_then(|b| {
            [b.user_message, b.message, b.error_description]
                .into_iter()
                .flatten()
                .find(|m| !m.is_empty())
        });
    match found {
        Some(m) => m,
        _ => {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            if text.is_empty() {
                "(no message)".to_owned()
            } else {
                text.chars().take(300).collect()
            }
        }
    }
}

/// Which API a path is relative to: v2 at `base_url`, or v1 beside it on the same host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    V2,
    V1,
}

/// A request, its path relative to its API's root.
#[derive(Debug, Clone)]
pub struct ApiRequest {
    pub method: Method,
    pub api: Api,
    pub path: String,
    pub body: Option<Bytes>,
    /// It creates records, so sending it twice could create them twice: a failure that may
    /// have applied is answered [`Reply::Unknown`] instead of being retried blindly.
    pub creates: bool,
}

impl ApiRequest {
    pub fn v2(method: Method, path: String, body: Option<Bytes>) -> Self {
        Self {
            method,
            api: Api::V2,
            path,
            body,
            creates: false,
        }
    }

    pub fn v1(method: Method, path: String, body: Option<Bytes>) -> Self {
        Self {
            api: Api::V1,
            ..Self::v2(method, path, body)
        }
    }

    /// Marks a create: see [`ApiRequest::creates`].
    pub fn creating(mut self) -> Self {
        self.creates = true;
        self
    }
}

impl std::fmt::Display for ApiRequest {
    /// `POST /v2/client/bulk`, as messages name a request.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let api = match self.api {
            Api::V2 => "/v2",
            Api::V1 => "/v1",
        };
        write!(f, "{} {api}{}", self.method, self.path)
    }
}

/// The v1 root beside a v2 base URL: `…/v2` becomes `…/v1`; any other path, `/v1` at its host.
pub fn v1_base(base_url: &str) -> String {
    match base_url.strip_suffix("/v2") {
        Some(root) => format!("{root}/v1"),
        None => match url::Url::parse(base_url) {
            Ok(url) => format!("{}/v1", url.origin().ascii_serialization()),
            Err(_) => format!("{base_url}/v1"),
        },
    }
}

#[derive(Debug)]
struct Token {
    value: Secret,
    expires_at: Instant,
    generation: u64,
}

struct Login {
    username: String,
    password: Secret,
    auth_url: url::Url,
    current: RwLock<Option<Arc<Token>>>,
    refresh: tokio::sync::Mutex<()>,
}

enum Credentials {
    ApiKey(Secret),
    Login(Login),
}

/// The API key, or a sign-in whose token is obtained and renewed as it lapses.
pub struct SignIn {
    credentials: Credentials,
    /// Sign-in and `check`'s probe.
    http: reqwest::Client,
    max_retries: u32,
    timeout: Duration,
    backoff_base: Duration,
}

pub struct ApiClient {
    /// Every API request (`send`), with retries and the adaptive limit.
    sender: Sender<SignIn>,
    base_url: String,
    /// `base_url` and the v1 base parsed once: each request only sets a path on a copy.
    v2_base: url::Url,
    v1_base: url::Url,
    timeout: Duration,
    /// URIs of the routes asked so far (a few), parsed once each.
    uris: std::sync::Mutex<Vec<(Api, String, http::Uri)>>,
}

impl SignIn {
    /// The value for the Authorization header, signing in first when there is no live token.
    async fn authorization(&self) -> Result<(Secret, u64), Fatal> {
        match &self.credentials {
            Credentials::ApiKey(key) => Ok((key.clone(), 0)),
            Credentials::Login(login) => {
                if let Some(token) = login.current.read().unwrap().as_ref() {
                    if token.expires_at > Instant::now() {
                        return Ok((token.value.clone(), token.generation));
                    }
                }
                self.sign_in(None).await
            }
        }
    }

    /// Obtains a new token unless another task already replaced `stale_generation`.
    async fn sign_in(&self, stale_generation: Option<u64>) -> Result<(Secret, u64), Fatal> {
        let Credentials::Login(login) = &self.credentials else {
            unreachable!("sign_in is only called for username/password credentials")
        };
        let _guard = login.refresh.lock().await;
        if let Some(token) = login.current.read().unwrap().as_ref() {
            let fresh = token.expires_at > Instant::now();
            if fresh && stale_generation.is_none_or(|stale| token.generation != stale) {
                return Ok((token.value.clone(), token.generation));
            }
        }
        #[derive(Deserialize)]
        struct TokenReply {
            access_token: Secret,
            /// Any number: it is clamped before it becomes a `Duration`.
            expires_in: Option<f64>,
        }
        let url = login.auth_url.as_str();
        let mut attempt = 0;
        let response = loop {
            let sent = self
                .http
                .post(url)
                .timeout(self.timeout)
                .header(reqwest::header::USER_AGENT, AGENT)
                .json(&serde_json::json!({"username": login.username, "password": login.password.expose()}))
                .send()
                .await;
            let retry_reason = match sent {
                Ok(r) if classify(r.status()) == Disposition::Retry => {
                    format!("HTTP {}", r.status())
                }
                Ok(r) => break r,
                Err(e) => describe_transport_failure(
                    transport_failure(&e, e.is_timeout()),
                    url,
                    self.timeout,
                    &PLATFORM,
                ),
            };
            if attempt >= self.max_retries {
                return Err(Fatal::Transient(TransientError(format!(
                    "could not obtain a ClientSuccess token from {url}: {retry_reason}"
                ))));
            }
            tokio::time::sleep(backoff(attempt, None, self.backoff_base)).await;
            attempt += 1;
        };
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(Fatal::Config(ConfigError::new(format!(
                "ClientSuccess refused the username and password at {url} ({status}): check credentials.username and credentials.password, and that the user may use the API"
            ))));
        }
        if !status.is_success() {
            let body = response.bytes().await.unwrap_or_default();
            return Err(Fatal::Config(ConfigError::new(format!(
                "the authentication URL {url} answered {status}: {}; check credentials.auth_url",
                error_message(&body)
            ))));
        }
        let reply: TokenReply = response.json().await.map_err(|_| {
            Fatal::Config(ConfigError::new(format!(
                "the authentication URL {url} did not answer with an access_token; check credentials.auth_url"
            )))
        })?;
        // Renew a minute early so no request goes out on a token about to lapse.
        let seconds = reply
            .expires_in
            .filter(|s| s.is_finite())
            .unwrap_or(43_200.0)
            .clamp(0.0, TOKEN_LIFETIME_CAP.as_secs_f64());
        let lifetime = Duration::from_secs_f64(seconds).saturating_sub(Duration::from_secs(60));
        let previous = login
            .current
            .read()
            .unwrap()
            .as_ref()
            .map_or(0, |t| t.generation);
        let token = Arc::new(Token {
            value: reply.access_token,
            expires_at: Instant::now() + lifetime.max(Duration::from_secs(1)),
            generation: previous + 1,
        });
        *login.current.write().unwrap() = Some(token.clone());
        Ok((token.value.clone(), token.generation))
    }

    fn unauthorized_message(&self) -> String {
        match &self.credentials {
            Credentials::ApiKey(_) => "ClientSuccess rejected the API key (401 Unauthorized): generate a new key in ClientSuccess under Global Settings > API Credentials and paste it into credentials.api_key".to_owned(),
            Credentials::Login(login) => format!(
                "ClientSuccess rejected the token obtained for user {:?} (401 Unauthorized) even after signing in again: check that the user may use the API",
                login.username
            ),
        }
    }
}

impl engine::http::Credentials for SignIn {
    async fn authorization(&self) -> Result<(Secret, u64), Fatal> {
        SignIn::authorization(self).await
    }

    /// A token may have lapsed early: sign in again, once. A key cannot be renewed.
    async fn renew(&self, generation: u64) -> Result<bool, Fatal> {
        match self.credentials {
            Credentials::ApiKey(_) => Ok(false),
            Credentials::Login(_) => self.sign_in(Some(generation)).await.map(|_| true),
        }
    }

    fn unauthorized(&self) -> String {
        self.unauthorized_message()
    }
}

impl ApiClient {
    pub fn new(settings: &Settings) -> anyhow::Result<Self> {
        let transport = Transport::new(
            settings.sync.request_timeout,
            settings.sync.max_concurrency.max(1),
            reqwest::header::AUTHORIZATION,
            AGENT,
        )?;
        // Sign-in and the probe go through the same client as every request.
        let http = transport.client();
        let credentials = match &settings.auth {
            Auth::ApiKey(key) => Credentials::ApiKey(key.clone()),
            Auth::UsernamePassword {
                username,
                password,
                auth_url,
            } => Credentials::Login(Login {
                username: username.clone(),
                password: password.clone(),
                auth_url: auth_url.clone(),
                current: RwLock::new(None),
                refresh: tokio::sync::Mutex::new(()),
            }),
        };
        let sign_in = SignIn {
            credentials,
            http,
            max_retries: settings.sync.max_retries,
            timeout: settings.sync.request_timeout,
            // Short first retries: most failures are blips; repeated ones still back off fast.
            backoff_base: Duration::from_millis(100),
        };
        let answers = Answers {
            platform: PLATFORM,
            base_url: settings.base_url.clone(),
            forbidden_hint: "give the API user permission to create, update and search this object",
            error_message,
            // Routes an account lacks are told apart per surface (see `surface`).
            missing_route: |_, _| false,
        };
        Ok(Self {
            sender: Sender::new(
                transport,
                sign_in,
                answers,
                Adaptive::new(settings.sync.max_concurrency),
                settings.sync.max_retries,
                settings.sync.request_timeout,
            )
            .read_only(settings.sync.dry_run),
            base_url: settings.base_url.clone(),
            v2_base: url::Url::parse(&settings.base_url)?,
            v1_base: url::Url::parse(&v1_base(&settings.base_url))?,
            timeout: settings.sync.request_timeout,
            uris: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// No retries: for reads whose failure has a fallback (discover's custom fields).
    pub fn with_max_retries(mut self, max_retries: u32) -> Self {
        self.sender = self.sender.with_max_retries(max_retries);
        self
    }

    /// Retries, re-authentications and other events worth a LOG line are sent here.
    pub fn with_notices(mut self, notices: UnboundedSender<String>) -> Self {
        self.sender = self.sender.with_notices(notices);
        self
    }

    /// The sync is stopping: requests not yet sent will not be.
    pub fn stop(&self) {
        self.sender.stop();
    }

    /// The concurrency limit in use now (up to `max_concurrency`).
    pub fn concurrency_limit(&self) -> usize {
        self.sender.concurrency_limit()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    fn request_url(&self, request: &ApiRequest) -> url::Url {
        let base = match request.api {
            Api::V2 => &self.v2_base,
            Api::V1 => &self.v1_base,
        };
        let (path, query) = match request.path.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (request.path.as_ref(), None),
        };
        let mut url = base.clone();
        url.set_path(&format!("{}{path}", base.path().trim_end_matches('/')));
        url.set_query(query);
        url
    }

    /// The request's URI. Paths of plain characters (every write route) are appended to the
    /// base as they are; others go through `request_url`, which percent-encodes them.
    fn request_uri(&self, request: &ApiRequest) -> http::Uri {
        let known = self
            .uris
            .lock()
            .unwrap()
            .iter()
            .find(|(api, path, _)| *api == request.api && *path == request.path)
            .map(|(_, _, uri)| uri.clone());
        if let Some(uri) = known {
            return uri;
        }
        let uri = self.build_uri(request);
        let mut cache = self.uris.lock().unwrap();
        // The first routes asked are the write routes, asked again for every batch; record
        // paths (with a uuid) would only fill it.
        if cache.len() < URI_CACHE {
            cache.push((request.api, request.path.clone(), uri.clone()));
        }
        uri
    }

    fn build_uri(&self, request: &ApiRequest) -> http::Uri {
        let plain = request.path.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(b, b'/' | b'-' | b'_' | b'.' | b'~' | b'?' | b'=' | b'&')
        });
        let text = if plain {
            let base = match request.api {
                Api::V2 => &self.v2_base,
                Api::V1 => &self.v1_base,
            };
            format!("{}{}", base.as_str().trim_end_matches('/'), request.path)
        } else {
            self.request_url(request).into()
        };
        http::Uri::try_from(text).expect("a URL is a URI")
    }

    /// Sends one request, retrying passing failures. `Ok` is a success or a refusal of the
    /// request's content; `Err` ends the sync.
    pub async fn send(&self, request: &ApiRequest) -> Result<Reply, Fatal> {
        self.sender.send(self.outgoing(request)).await
    }

    /// As `send`, also in a dry run: for a probe whose empty body creates nothing.
    pub async fn send_probe(&self, request: &ApiRequest) -> Result<Reply, Fatal> {
        self.sender.send_probe(self.outgoing(request)).await
    }

    fn outgoing<'a>(&self, request: &'a ApiRequest) -> Outgoing<'a> {
        Outgoing {
            label: request,
            method: request.method.clone(),
            uri: self.request_uri(request),
            body: request.body.clone(),
            creates: request.creates,
        }
    }

    /// `check`'s proof: sign in, then one cheap authenticated read. No retries, so a broken
    /// setup is reported at once; the error says what to fix.
    pub async fn probe(&self) -> Result<(), String> {
        let (authorization, _) = self
            .sender
            .credentials
            .authorization()
            .await
            .map_err(|fatal| fatal.message().to_owned())?;
        let url = self.url("/client/search?page=0&size=1");
        let response = self
            .sender
            .credentials
            .http
            .get(&url)
            .timeout(self.timeout)
            .header(reqwest::header::USER_AGENT, AGENT)
            .header(reqwest::header::AUTHORIZATION, authorization.expose())
            .send()
            .await
            .map_err(|e| {
                describe_transport_failure(
                    transport_failure(&e, e.is_timeout()),
                    &url,
                    self.timeout,
                    &PLATFORM,
                )
            })?;
        let status = response.status();
        let body = response.bytes().await.unwrap_or_default();
        match classify(status) {
            Disposition::Success => {
                let looks_right = serde_json::from_slice::<serde_json::Value>(&body)
                    .map(|v| v.get("data").is_some_and(|d| d.is_array()))
                    .unwrap_or(false);
                if looks_right {
                    Ok(())
                } else {
                    Err(format!(
                        "{url} answered {status} but not with a ClientSuccess search result: check that base_url points at the ClientSuccess v2 API (default {})",
                        crate::config::DEFAULT_BASE_URL
                    ))
                }
            }
            Disposition::Unauthorized => Err(match &self.sender.credentials.credentials {
                Credentials::ApiKey(_) => self.sender.credentials.unauthorized_message(),
                Credentials::Login(_) => format!(
                    "ClientSuccess refused the token it issued (401 Unauthorized) for {url}: check that credentials.auth_url belongs to the same ClientSuccess as base_url"
                ),
            }),
            Disposition::Forbidden => Err(
                "ClientSuccess answered 403 Forbidden to a client search: give the API user permission to read, create and update clients, contacts and contracts"
            .to_owned()),
            Disposition::Retry if status.is_server_error() => Err(format!(
                "ClientSuccess answered {status} ({}): the service is having trouble; this is not your configuration, try again later",
                error_message(&body)
            )),
            Disposition::Retry => Err(format!(
                "ClientSuccess answered {status} ({}): too many requests right now; try again in a minute",
                error_message(&body)
            )),
            Disposition::Reject | Disposition::Unexpected => Err(format!(
                "{url} answered {status} ({}): check that base_url points at the ClientSuccess v2 API (default {})",
                error_message(&body),
                crate::config::DEFAULT_BASE_URL
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_sits_beside_v2() {
        assert_eq!(
            v1_base("https://api.clientsuccess.com/v2"),
            "https://api.clientsuccess.com/v1"
        );
        assert_eq!(v1_base("http://127.0.0.1:9/v2"), "http://127.0.0.1:9/v1");
        assert_eq!(v1_base("https://x.example/api"), "https://x.example/v1");
    }

    #[test]
    fn error_message_prefers_the_message_field() {
        assert_eq!(
            error_message(br#"{"message":"name is required"}"#),
            "name is required"
        );
        assert_eq!(error_message(b"upstream down"), "upstream down");
        assert_eq!(
            error_message(br#"{"userMessage":"statusId is invalid","developerMessage":"x"}"#),
            "statusId is invalid"
        );
        assert_eq!(error_message(b""), "(no message)");
    }
}
