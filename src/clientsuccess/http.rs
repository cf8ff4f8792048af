//! The ClientSuccess HTTP client: authentication, one request with retries, and what each
//! answer means, for the v2 API and the v1 API beside it.

use super::transport::Transport;
use crate::concurrency::{Adaptive, Signal, Throttle};
use crate::config::{Auth, Settings};
use crate::error::{ConfigError, Fatal, TransientError};
use crate::secret::Secret;
use bytes::Bytes;
use rand::Rng;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedSender;

/// What one HTTP status means for the request that got it. A pure function of the answer;
/// only the backoff arithmetic lives elsewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    Success,
    /// The API refused this request's content: reject its records, do not retry.
    Reject,
    /// A passing failure: retry with backoff.
    Retry,
    /// Credentials refused: re-authenticate once (tokens), else fail the sync.
    Unauthorized,
    /// The credentials lack a permission: retrying or rejecting record by record won't help.
    Forbidden,
    /// Anything else (a redirect, 501): the URL or the connector is wrong.
    Unexpected,
}

pub fn classify(status: StatusCode) -> Disposition {
    match status.as_u16() {
        200..=299 => Disposition::Success,
        401 => Disposition::Unauthorized,
        403 => Disposition::Forbidden,
        408 | 429 => Disposition::Retry,
        501 => Disposition::Unexpected,
        500..=599 => Disposition::Retry,
        400..=499 => Disposition::Reject,
        _ => Disposition::Unexpected,
    }
}

/// The longest wait a server may ask for; a longer `Retry-After` is taken as this.
pub const RETRY_AFTER_CAP: Duration = Duration::from_secs(600);
/// A 429 without `Retry-After` pauses requests this long.
const DEFAULT_THROTTLE_WAIT: Duration = Duration::from_secs(1);
/// How long one request may be held back by 429s, in all, before the sync gives up.
pub const THROTTLE_BUDGET: Duration = Duration::from_secs(15 * 60);
/// The longest token lifetime believed; a token is renewed at least this often.
const TOKEN_LIFETIME_CAP: Duration = Duration::from_secs(7 * 24 * 3600);

/// Delay before retry number `attempt` (0-based): exponential with jitter, unless the server
/// said how long to wait.
pub fn backoff(attempt: u32, retry_after: Option<Duration>, base: Duration) -> Duration {
    const CAP: Duration = Duration::from_secs(30);
    if let Some(wait) = retry_after {
        return wait.min(RETRY_AFTER_CAP);
    }
    let exp = base.saturating_mul(1u32 << attempt.min(16)).min(CAP);
    // "Equal jitter": at least half the delay, so retries still back off under bad luck.
    let half = exp / 2;
    half + rand::rng().random_range(Duration::ZERO..=half)
}

/// `Retry-After` as seconds or an HTTP date, capped at [`RETRY_AFTER_CAP`] before any
/// arithmetic, so no value a server sends can overflow a `Duration`.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs).min(RETRY_AFTER_CAP));
    }
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0)
            .then(|| Duration::from_secs_f64(secs.min(RETRY_AFTER_CAP.as_secs_f64())));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or_default()
            .min(RETRY_AFTER_CAP),
    )
}

/// What a transport failure (no HTTP answer) was, for messages a user can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportFailure {
    UnknownHost,
    Refused,
    Tls,
    Timeout,
    Dropped,
}

/// What kind of failure `error` (from reqwest or hyper) was, from its chain of causes.
pub fn transport_failure(
    error: &(dyn std::error::Error + 'static),
    timed_out: bool,
) -> TransportFailure {
    if timed_out {
        return TransportFailure::Timeout;
    }
    let mut chain = String::new();
    let mut source: Option<&dyn std::error::Error> = Some(error);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => return TransportFailure::Refused,
                std::io::ErrorKind::TimedOut => return TransportFailure::Timeout,
                _ => {}
            }
        }
        chain.push_str(&e.to_string().to_ascii_lowercase());
        chain.push(' ');
        source = e.source();
    }
    if chain.contains("dns error")
        || chain.contains("failed to lookup address")
        || chain.contains("invalid dns name")
    {
        TransportFailure::UnknownHost
    } else if chain.contains("tls")
        || chain.contains("certificate")
        || chain.contains("handshake")
        || chain.contains("invalidcontenttype")
        || chain.contains("corrupt message")
    {
        TransportFailure::Tls
    } else if chain.contains("connection refused") {
        TransportFailure::Refused
    } else {
        TransportFailure::Dropped
    }
}

/// A sentence telling the user what happened and what to do about it.
pub fn describe_transport_failure(kind: TransportFailure, url: &str, timeout: Duration) -> String {
    let host = url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| url.to_owned());
    match kind {
        TransportFailure::UnknownHost => format!(
            "the host {host:?} could not be resolved: check the URL for typos ({url}); the default is api.clientsuccess.com"
        ),
        TransportFailure::Refused => format!(
            "the connection to {host} was refused: nothing listens at {url}; check the host and port in the URL"
        ),
        TransportFailure::Tls => format!(
            "the TLS handshake with {host} failed: the server at {url} does not speak valid https or its certificate is not trusted; check the URL (https://api.clientsuccess.com/v2) and any proxy that intercepts TLS"
        ),
        TransportFailure::Timeout => format!(
            "{host} did not answer within {} s: ClientSuccess may be slow or a firewall may drop the traffic; raise request_timeout_secs or check network access to {host}",
            timeout.as_secs()
        ),
        TransportFailure::Dropped => format!(
            "the connection to {host} was closed before an answer came: a network problem or an outage at ClientSuccess; try again later"
        ),
    }
}

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
    /// Attempts already spent on these records by earlier requests (after an unknown outcome).
    pub prior_attempts: u32,
}

impl ApiRequest {
    pub fn v2(method: Method, path: String, body: Option<Bytes>) -> Self {
        Self {
            method,
            api: Api::V2,
            path,
            body,
            creates: false,
            prior_attempts: 0,
        }
    }

    pub fn v1(method: Method, path: String, body: Option<Bytes>) -> Self {
        Self {
            api: Api::V1,
            ..Self::v2(method, path, body)
        }
    }

    /// Marks a create: see [`ApiRequest::creates`].
    pub fn creating(mut self, prior_attempts: u32) -> Self {
        self.creates = true;
        self.prior_attempts = prior_attempts;
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

/// The final answer to a request, after retries.
#[derive(Debug, Clone)]
pub enum Reply {
    Success {
        status: u16,
        body: Bytes,
    },
    /// The API refused the request's content (a 4xx): its records are rejected with this message.
    Refused {
        status: u16,
        message: String,
    },
    /// A create failed in a way that may have applied (no answer, or a 5xx): whether its
    /// records exist is for the caller to find out before sending them again. The backoff
    /// has been waited; `attempts` so far count toward `max_retries`.
    Unknown {
        reason: String,
        attempts: u32,
    },
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

pub struct ApiClient {
    /// Sign-in and `check`'s probe.
    http: reqwest::Client,
    /// Every API request (`send`).
    transport: Transport,
    base_url: String,
    /// `base_url` and the v1 base parsed once: each request only sets a path on a copy.
    v2_base: url::Url,
    v1_base: url::Url,
    credentials: Credentials,
    max_retries: u32,
    timeout: Duration,
    backoff_base: Duration,
    notices: Option<UnboundedSender<String>>,
    /// How many requests may be in flight, learned from the answers; shared by all workers.
    limiter: Arc<Adaptive>,
}

impl ApiClient {
    pub fn new(settings: &Settings) -> anyhow::Result<Self> {
        crate::install_tls_provider();
        let http = reqwest::Client::builder()
            .timeout(settings.request_timeout)
            .connect_timeout(settings.request_timeout.min(Duration::from_secs(10)))
            .pool_max_idle_per_host(settings.max_concurrency.max(1))
            .tcp_nodelay(true)
            // A redirect could carry the Authorization header somewhere else; treat it as an error.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!(
                "destination-clientsuccess/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()?;
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
        Ok(Self {
            http,
            transport: Transport::new(settings.request_timeout, settings.max_concurrency.max(1))?,
            base_url: settings.base_url.clone(),
            v2_base: url::Url::parse(&settings.base_url)?,
            v1_base: url::Url::parse(&v1_base(&settings.base_url))?,
            credentials,
            max_retries: settings.max_retries,
            timeout: settings.request_timeout,
            // Short first retries: most failures are blips; repeated ones still back off fast.
            backoff_base: Duration::from_millis(100),
            notices: None,
            limiter: Arc::new(Adaptive::new(settings.max_concurrency)),
        })
    }

    /// No retries: for reads whose failure has a fallback (discover's custom fields).
    pub fn with_max_retries(mut self, max_retries: u32) -> Self {
        self.max_retries = max_retries;
        self
    }

    /// Retries, re-authentications and other events worth a LOG line are sent here.
    pub fn with_notices(mut self, notices: UnboundedSender<String>) -> Self {
        self.notices = Some(notices);
        self
    }

    /// The concurrency limit in use now (up to `max_concurrency`).
    pub fn concurrency_limit(&self) -> usize {
        self.limiter.limit()
    }

    fn notice(&self, message: String) {
        if let Some(tx) = &self.notices {
            let _ = tx.send(message);
        }
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

    fn uses_login(&self) -> bool {
        matches!(self.credentials, Credentials::Login(_))
    }

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

    /// Sends one request, retrying passing failures. `Ok` is a success or a refusal of the
    /// request's content; `Err` ends the sync.
    pub async fn send(&self, request: &ApiRequest) -> Result<Reply, Fatal> {
        let uri = self.request_uri(request);
        let mut attempt = request.prior_attempts;
        let mut throttled_for = Duration::ZERO;
        let mut reauthenticated = false;
        loop {
            let (authorization, generation) = self.authorization().await?;
            let permit = self.limiter.acquire().await;
            let sent = self
                .transport
                .exchange(
                    request.method.clone(),
                    uri.clone(),
                    authorization.expose(),
                    request.body.clone(),
                )
                .await;
            let signal = match &sent {
                Ok(answer) if answer.status == StatusCode::TOO_MANY_REQUESTS => Signal::Throttled,
                Ok(answer) if classify(answer.status) == Disposition::Retry => Signal::Strained,
                Ok(_) => Signal::Clean,
                Err(_) => Signal::Strained,
            };
            let retry_after = match &sent {
                Ok(answer) => answer
                    .retry_after
                    .as_ref()
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_retry_after),
                Err(_) => None,
            };
            let throttle_wait =
                (signal == Signal::Throttled).then(|| retry_after.unwrap_or(DEFAULT_THROTTLE_WAIT));
            let (throttle, wait) = self.limiter.release_after(permit, signal, throttle_wait);
            // A refused connection never reached the API; a timeout, a dropped connection or a
            // 5xx may have come after the write applied.
            let may_have_applied = match &sent {
                Ok(answer) => answer.status.is_server_error(),
                Err(no_answer) => !no_answer.before_connecting,
            };
            let (reason, retry_after) = match sent {
                Ok(answer) => {
                    let status = answer.status;
                    match classify(status) {
                        Disposition::Success => {
                            return Ok(Reply::Success {
                                status: status.as_u16(),
                                body: answer.body,
                            })
                        }
                        Disposition::Reject => {
                            return Ok(Reply::Refused {
                                status: status.as_u16(),
                                message: error_message(&answer.body),
                            });
                        }
                        Disposition::Unauthorized if self.uses_login() && !reauthenticated => {
                            reauthenticated = true;
                            self.notice(format!(
                                "ClientSuccess answered 401 to {request}; signing in again"
                            ));
                            self.sign_in(Some(generation)).await?;
                            continue;
                        }
                        Disposition::Unauthorized => {
                            return Err(Fatal::Config(ConfigError::new(
                                self.unauthorized_message(),
                            )));
                        }
                        Disposition::Forbidden => {
                            return Err(Fatal::Config(ConfigError::new(format!(
                                "ClientSuccess answered 403 Forbidden to {request} ({}): give the API user permission to create, update and search this object",
                                error_message(&answer.body)
                            ))));
                        }
                        Disposition::Unexpected => {
                            return Err(Fatal::Config(ConfigError::new(format!(
                                "ClientSuccess answered {status} to {request}, which this connector does not expect: check base_url ({})",
                                self.base_url
                            ))));
                        }
                        Disposition::Retry => (
                            format!("HTTP {status}: {}", error_message(&answer.body)),
                            retry_after,
                        ),
                    }
                }
                Err(no_answer) => (
                    describe_transport_failure(
                        no_answer.failure,
                        self.request_url(request).as_str(),
                        self.timeout,
                    ),
                    None,
                ),
            };
            if signal == Signal::Throttled {
                // A 429 spends a time budget, not a retry: the API is saying how much it
                // takes, not failing. A budget's pauses every request; a cap's, this one.
                let everyone = throttle == Throttle::Everyone;
                throttled_for += wait;
                if throttled_for > THROTTLE_BUDGET {
                    return Err(Fatal::Transient(TransientError(format!(
                        "{request} was answered 429 Too Many Requests for {:.0} s in all, more than the {} s this connector waits; last answer: {reason}",
                        throttled_for.as_secs_f64(),
                        THROTTLE_BUDGET.as_secs()
                    ))));
                }
                self.notice(format!(
                    "{request} was throttled ({reason}); {} {:.1} s (concurrency limit now {})",
                    if everyone {
                        "every request waits"
                    } else {
                        "it waits"
                    },
                    wait.as_secs_f64(),
                    self.limiter.limit()
                ));
                // The shared pause (a budget's) holds the others in `acquire`.
                tokio::time::sleep(wait).await;
                continue;
            }
            if attempt >= self.max_retries {
                return Err(Fatal::Transient(TransientError(format!(
                    "{request} failed after {} attempts; last error: {reason}",
                    attempt + 1
                ))));
            }
            let wait = backoff(attempt, retry_after, self.backoff_base);
            if request.creates && may_have_applied {
                self.notice(format!(
                    "{request} failed ({reason}) and may have created its records; checking which exist before sending the others again in {:.1} s",
                    wait.as_secs_f64()
                ));
                tokio::time::sleep(wait).await;
                return Ok(Reply::Unknown {
                    reason,
                    attempts: attempt + 1,
                });
            }
            self.notice(format!(
                "{request} failed ({reason}); retry {} of {} in {:.1} s",
                attempt + 1,
                self.max_retries,
                wait.as_secs_f64()
            ));
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
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

    /// `check`'s proof: sign in, then one cheap authenticated read. No retries, so a broken
    /// setup is reported at once; the error says what to fix.
    pub async fn probe(&self) -> Result<(), String> {
        let (authorization, _) = self.authorization().await.map_err(|fatal| match fatal {
            Fatal::Config(e) => e.0,
            Fatal::Transient(e) => e.0,
        })?;
        let url = self.url("/client/search?page=0&size=1");
        let response = self
            .http
            .get(&url)
            .header(reqwest::header::AUTHORIZATION, authorization.expose())
            .send()
            .await
            .map_err(|e| {
                describe_transport_failure(
                    transport_failure(&e, e.is_timeout()),
                    &url,
                    self.timeout,
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
            Disposition::Unauthorized => Err(match &self.credentials {
                Credentials::ApiKey(_) => self.unauthorized_message(),
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
    fn classification_follows_the_contract() {
        let d = |s: u16| classify(StatusCode::from_u16(s).unwrap());
        assert_eq!(d(200), Disposition::Success);
        assert_eq!(d(201), Disposition::Success);
        for s in [400, 404, 409, 422] {
            assert_eq!(d(s), Disposition::Reject, "{s}");
        }
        for s in [408, 429, 500, 502, 503, 504] {
            assert_eq!(d(s), Disposition::Retry, "{s}");
        }
        assert_eq!(d(401), Disposition::Unauthorized);
        assert_eq!(d(403), Disposition::Forbidden);
        assert_eq!(d(501), Disposition::Unexpected);
        assert_eq!(d(302), Disposition::Unexpected);
    }

    #[test]
    fn retry_after_wins_and_backoff_grows() {
        let base = Duration::from_millis(100);
        assert_eq!(
            backoff(5, Some(Duration::from_secs(2)), base),
            Duration::from_secs(2)
        );
        for attempt in 0..5 {
            let d = backoff(attempt, None, base);
            let full = base * (1 << attempt);
            assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?}");
        }
        assert!(backoff(30, None, base) <= Duration::from_secs(30));
    }

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
    fn retry_after_parses_seconds_and_dates() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(" 0 "), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
        for huge in [
            "1e300",
            "18446744073709551615",
            "99999999999999999999999",
            "inf",
        ] {
            let parsed = parse_retry_after(huge);
            assert!(
                parsed.is_none_or(|d| d <= RETRY_AFTER_CAP),
                "{huge}: {parsed:?}"
            );
        }
        assert_eq!(
            parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT"),
            Some(RETRY_AFTER_CAP)
        );
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
