//! HTTP for every destination: one exchange ([`transport`]), what each answer means
//! (success, refusal of this request's content, a passing failure to retry, credentials or
//! permissions refused, or a URL that is wrong), backoff and `Retry-After`, and [`Sender`],
//! which sends one request with retries under the adaptive concurrency limit.

pub mod spending;
pub mod transport;

use crate::concurrency::{Adaptive, Signal, Throttle};
use crate::error::{ConfigError, Fatal, TransientError};
use crate::secret::Secret;
use crate::write::Verdict;
use bytes::Bytes;
use rand::RngExt;
use reqwest::{Method, StatusCode};
use std::fmt::Display;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;
pub use transport::{Answer, NoAnswer, Transport};

/// Who is on the other end, for messages: its name and its default URL.
#[derive(Debug, Clone, Copy)]
pub struct Platform {
    pub name: &'static str,
    pub default_url: &'static str,
}

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
pub const DEFAULT_THROTTLE_WAIT: Duration = Duration::from_secs(1);
/// The longest wait between two attempts when the server names none.
const BACKOFF_CAP: Duration = Duration::from_secs(30);
/// How long one request may be held back by 429s, in all, before the sync gives up.
pub const THROTTLE_BUDGET: Duration = Duration::from_secs(15 * 60);

/// Delay before retry number `attempt` (0-based): exponential with jitter, unless the server
/// said how long to wait.
pub fn backoff(attempt: u32, retry_after: Option<Duration>, base: Duration) -> Duration {
    if let Some(wait) = retry_after {
        return wait.min(RETRY_AFTER_CAP);
    }
    let exp = backoff_ceiling(attempt, base);
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
pub fn describe_transport_failure(
    kind: TransportFailure,
    url: &str,
    timeout: Duration,
    platform: &Platform,
) -> String {
    let name = platform.name;
    let default_url = platform.default_url;
    let default_host = url::Url::parse(default_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default();
    let host = url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| url.to_owned());
    match kind {
        TransportFailure::UnknownHost => format!(
            "the host {host:?} could not be resolved: check the URL for typos ({url}); the default is {default_host}"
        ),
        TransportFailure::Refused => format!(
            "the connection to {host} was refused: nothing listens at {url}; check the host and port in the URL"
        ),
        TransportFailure::Tls => format!(
            "the TLS handshake with {host} failed: the server at {url} does not speak valid https or its certificate is not trusted; check the URL ({default_url}) and any proxy that intercepts TLS"
        ),
        TransportFailure::Timeout => format!(
            "{host} did not answer within {} s: {name} may be slow or a firewall may drop the traffic; raise request_timeout_secs or check network access to {host}",
            timeout.as_secs()
        ),
        TransportFailure::Dropped => format!(
            "the connection to {host} was closed before an answer came: a network problem or an outage at {name}; try again later"
        ),
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
    /// has been waited, and the attempt counted in the chain [`sharing_retries`] began.
    Unknown {
        reason: String,
    },
}

tokio::task_local! {
    /// The failed attempts of the chain of requests this task makes for the same records.
    static SHARED_ATTEMPTS: Arc<AtomicU32>;
}

/// Runs `chain` (a create; after a failure that may have applied, the look-ups that learn
/// whether it landed; the create again) with one count of failed attempts for all its
/// requests: together they get `max_retries` retries and one growing backoff, so an API that
/// stays down ends the chain as it ends one request. A create is sent within one.
pub async fn sharing_retries<F: Future>(chain: F) -> F::Output {
    sharing_retries_from(0, chain).await.0
}

/// [`sharing_retries`] for a chain that has already spent `spent` attempts (the bulk request
/// that carried a record, before that record's own look-up); returns what it has spent after.
pub async fn sharing_retries_from<F: Future>(spent: u32, chain: F) -> (F::Output, u32) {
    let count = Arc::new(AtomicU32::new(spent));
    let output = SHARED_ATTEMPTS.scope(count.clone(), chain).await;
    (output, count.load(Ordering::Relaxed))
}

/// What a create sent by [`create_until_known`] came to.
#[derive(Debug)]
pub enum Creation<T> {
    /// The API answered it, with this body.
    Answered(Bytes),
    /// Its answer was lost, and the look that followed found the record: it landed.
    Found(T),
    /// The API refused it.
    Refused { status: u16, message: String },
}

/// Sends a create until its outcome is known, in one [`sharing_retries`] chain: after a
/// reply that may have applied, `look` (told why) searches for the record before the create
/// is sent again; a `None` sends it again.
pub async fn create_until_known<T, Create, Created, Look, Looked>(
    send: Create,
    look: Look,
) -> Result<Creation<T>, Fatal>
where
    Create: Fn() -> Created,
    Created: Future<Output = Result<Reply, Fatal>>,
    Look: Fn(String) -> Looked,
    Looked: Future<Output = Result<Option<T>, Fatal>>,
{
    sharing_retries(async {
        loop {
            match send().await? {
                Reply::Success { body, .. } => return Ok(Creation::Answered(body)),
                Reply::Refused { status, message } => {
                    return Ok(Creation::Refused { status, message })
                }
                Reply::Unknown { reason } => {
                    if let Some(found) = look(reason).await? {
                        return Ok(Creation::Found(found));
                    }
                }
            }
        }
    })
    .await
}

/// A 404 to a write of one record: the record's when it does not `exist` (the row is
/// refused), the route's when it does (the sync fails: every record would meet it).
pub async fn missing_record_or_route(
    exists: impl Future<Output = Result<bool, Fatal>>,
    record: &str,
    message: &str,
    base_url: &str,
) -> Result<Verdict, Fatal> {
    if exists.await? {
        return Err(Fatal::config(format!(
            "updating {record} answered 404 ({message}) although it exists: the update route is missing there, or this account cannot write; check base_url ({base_url})"
        )));
    }
    Ok(Verdict::refused_with(
        404,
        format!("{record} does not exist ({message})"),
    ))
}

impl Reply {
    /// This answer to an update of one `record`: done; refused (a 404 is the record's when it
    /// does not `exist`, else the route's, which fails the sync); or, where no clear answer
    /// came, the end of the sync (an update is retried by the sender, never left unknown).
    pub async fn into_update(
        self,
        exists: impl Future<Output = Result<bool, Fatal>>,
        record: &str,
        base_url: &str,
    ) -> Result<Result<(), Verdict>, Fatal> {
        match self {
            Reply::Success { .. } => Ok(Ok(())),
            Reply::Refused {
                status: 404,
                message,
            } => (missing_record_or_route(exists, record, &message, base_url).await).map(Err),
            Reply::Refused { status, message } => Ok(Err(Verdict::refused_with(status, message))),
            Reply::Unknown { reason } => Err(Fatal::config(reason)),
        }
    }
}

/// How a destination proves who it is on each request.
pub trait Credentials: Send + Sync + 'static {
    /// The credentials header's value, and a generation that changes when they are renewed.
    fn authorization(&self) -> impl Future<Output = Result<(Secret, u64), Fatal>> + Send;

    /// A 401 came back on credentials of `generation`: renew them and say whether to try
    /// again (a token may have lapsed), or `false` when nothing can be renewed (a key).
    fn renew(&self, _generation: u64) -> impl Future<Output = Result<bool, Fatal>> + Send {
        async { Ok(false) }
    }

    /// What to tell the user when the API refuses the credentials for good.
    fn unauthorized(&self) -> String;
}

/// A fixed key, sent as it is, and what to tell the user when the API refuses it.
pub struct Key {
    pub key: Secret,
    pub refused: &'static str,
}

impl Credentials for Key {
    async fn authorization(&self) -> Result<(Secret, u64), Fatal> {
        Ok((self.key.clone(), 0))
    }

    fn unauthorized(&self) -> String {
        self.refused.to_owned()
    }
}

/// A request as messages name it: `POST /things`, the query left out (it may be long, and
/// carries values, not the route).
pub struct MethodPath<'a>(pub &'a Method, pub &'a str);

impl Display for MethodPath<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}",
            self.0,
            self.1.split('?').next().unwrap_or(self.1)
        )
    }
}

/// One request to send: what messages call it (`POST /v1/things`), and its parts.
pub struct Outgoing<'a> {
    pub label: &'a (dyn Display + Sync),
    pub method: Method,
    pub uri: http::Uri,
    pub body: Option<Bytes>,
    /// It creates records, so sending it twice could create them twice: a failure that may
    /// have applied is answered [`Reply::Unknown`] instead of being retried blindly. Sent
    /// within [`sharing_retries`].
    pub creates: bool,
}

/// What a destination says about its API's answers.
pub struct Answers {
    pub platform: Platform,
    /// The configured base URL, named when an answer says it is wrong.
    pub base_url: String,
    /// What to do about a 403 (which permission the credentials need).
    pub forbidden_hint: &'static str,
    /// The message in an error body.
    pub error_message: fn(&[u8]) -> String,
    /// Whether a 4xx (status, body) says the route itself is missing (a 404 that is not
    /// the API's "record not found", a 405): that is the URL's fault, not the record's, and
    /// ends the sync instead of rejecting records one by one.
    pub missing_route: fn(u16, &[u8]) -> bool,
}

/// Sends requests with retries, backoff, `Retry-After` and the adaptive concurrency limit,
/// and classifies their answers.
pub struct Sender<C> {
    transport: Transport,
    pub credentials: C,
    answers: Answers,
    max_retries: u32,
    timeout: Duration,
    backoff_base: Duration,
    notices: Option<UnboundedSender<String>>,
    /// How many requests may be in flight, learned from the answers; shared by all workers.
    limiter: Arc<Adaptive>,
    /// Requests sent (each attempt), for a destination that reports what a sync spent.
    sent: std::sync::atomic::AtomicU64,
    /// Whether the last answers were all passing failures, and since when and how many
    /// (`failing` is read first, so an answer that clears nothing takes no lock).
    failing: AtomicBool,
    failures: std::sync::Mutex<Option<(tokio::time::Instant, u32)>>,
    /// A dry run: only reads go out; a write reaching here is refused before it is sent.
    read_only: bool,
}

impl<C: Credentials> Sender<C> {
    pub fn new(
        transport: Transport,
        credentials: C,
        answers: Answers,
        limiter: Adaptive,
        max_retries: u32,
        timeout: Duration,
    ) -> Self {
        Self {
            transport,
            credentials,
            answers,
            max_retries,
            timeout,
            // Short first retries: most failures are blips; repeated ones still back off fast.
            backoff_base: Duration::from_millis(100),
            notices: None,
            limiter: Arc::new(limiter),
            sent: std::sync::atomic::AtomicU64::new(0),
            failing: AtomicBool::new(false),
            failures: std::sync::Mutex::new(None),
            read_only: false,
        }
    }

    /// Sends reads only (a dry run): a write that reaches here ends the sync unsent, so a
    /// destination's mistake can never write during a dry run.
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// The waits of one request's retries at their longest: every answer failing for this
    /// long, and more answers than one request's attempts, is an API that is down. 0.7 s at
    /// the default 3 retries, 3.1 s at 5.
    fn retry_waits(&self) -> Duration {
        (0..self.max_retries)
            .map(|attempt| backoff_ceiling(attempt, self.backoff_base))
            .sum()
    }

    /// An answer that was not a passing failure: the API is up.
    fn answered(&self) {
        if self.failing.load(Ordering::Relaxed) {
            self.failing.store(false, Ordering::Relaxed);
            *self.failures.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
    }

    /// A passing failure: how long every answer has failed, and how many have.
    fn failed(&self) -> (Duration, u32) {
        let now = tokio::time::Instant::now();
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        self.failing.store(true, Ordering::Relaxed);
        let (since, count) = failures.get_or_insert((now, 0));
        *count += 1;
        (now - *since, *count)
    }

    pub fn with_max_retries(mut self, max_retries: u32) -> Self {
        self.max_retries = max_retries;
        self
    }

    /// Retries, re-authentications and other events worth a LOG line are sent here.
    pub fn with_notices(mut self, notices: UnboundedSender<String>) -> Self {
        self.notices = Some(notices);
        self
    }

    /// The sync is stopping: requests not yet sent will not be.
    pub fn stop(&self) {
        self.limiter.stop();
    }

    /// The concurrency limit in use now.
    pub fn concurrency_limit(&self) -> usize {
        self.limiter.limit()
    }

    /// Requests sent so far, every attempt counted.
    pub fn requests_sent(&self) -> u64 {
        self.sent.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The pace kept now, in requests a second, when there is one.
    pub fn pace(&self) -> Option<f64> {
        self.limiter.pace()
    }

    pub fn notice(&self, message: String) {
        if let Some(tx) = &self.notices {
            let _ = tx.send(message);
        }
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends one request, retrying passing failures. `Ok` is a success or a refusal of the
    /// request's content; `Err` ends the sync.
    pub async fn send(&self, out: Outgoing<'_>) -> Result<Reply, Fatal> {
        if self.read_only && (out.creates || out.method != Method::GET) {
            return Err(Fatal::config(format!(
                "dry run: {} would write to {}, and a dry run writes nothing; this is a bug of the connector, please report it",
                out.label, self.answers.platform.name
            )));
        }
        self.send_anyway(out).await
    }

    /// As `send`, also in a dry run: for a request that by construction changes nothing (an
    /// empty body that asks whether a route exists).
    pub async fn send_probe(&self, out: Outgoing<'_>) -> Result<Reply, Fatal> {
        self.send_anyway(out).await
    }

    async fn send_anyway(&self, out: Outgoing<'_>) -> Result<Reply, Fatal> {
        let request = out.label;
        let name = self.answers.platform.name;
        let shared = SHARED_ATTEMPTS.try_with(Arc::clone).ok();
        debug_assert!(
            !out.creates || shared.is_some(),
            "a create is sent within sharing_retries"
        );
        let shared_attempts = || shared.as_ref().map_or(0, |a| a.load(Ordering::Relaxed));
        let mut attempt = shared_attempts();
        let mut throttled_for = Duration::ZERO;
        let mut reauthenticated = false;
        loop {
            let (authorization, generation) = self.credentials.authorization().await?;
            let Some(permit) = self.limiter.acquire_unless_stopped().await else {
                return Err(Fatal::Stopped);
            };
            self.sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            // Boxed: hyper's exchange is a large future, and every future that awaits this one
            // (a destination's writer, the worker) would otherwise hold and move it whole.
            let sent = Box::pin(self.transport.exchange(
                out.method.clone(),
                out.uri.clone(),
                authorization.expose(),
                out.body.clone(),
            ))
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
                Err(no_answer) => !no_answer.never_sent,
            };
            let (reason, retry_after) = match sent {
                Ok(answer) => {
                    let status = answer.status;
                    let disposition = classify(status);
                    // A 429 is an API that is up and says how much it takes.
                    if disposition != Disposition::Retry || status == StatusCode::TOO_MANY_REQUESTS
                    {
                        self.answered();
                    }
                    match disposition {
                        Disposition::Success => {
                            return Ok(Reply::Success {
                                status: status.as_u16(),
                                body: answer.body,
                            })
                        }
                        // A create goes to a collection, which names no record: a 404 or 405
                        // to it is the route's, whatever the body says.
                        Disposition::Reject
                            if (self.answers.missing_route)(status.as_u16(), &answer.body)
                                || (out.creates && matches!(status.as_u16(), 404 | 405)) =>
                        {
                            return Err(Fatal::Config(ConfigError::new(format!(
                                "{request} answered {status} ({}): {name} has no such route there, so no record was sent through it; check base_url ({})",
                                (self.answers.error_message)(&answer.body),
                                self.answers.base_url
                            ))));
                        }
                        Disposition::Reject => {
                            return Ok(Reply::Refused {
                                status: status.as_u16(),
                                message: (self.answers.error_message)(&answer.body),
                            });
                        }
                        Disposition::Unauthorized
                            if !reauthenticated && self.credentials.renew(generation).await? =>
                        {
                            reauthenticated = true;
                            self.notice(format!(
                                "{name} answered 401 to {request}; signing in again"
                            ));
                            continue;
                        }
                        Disposition::Unauthorized => {
                            return Err(Fatal::Config(ConfigError::new(
                                self.credentials.unauthorized(),
                            )));
                        }
                        Disposition::Forbidden => {
                            return Err(Fatal::Config(ConfigError::new(format!(
                                "{name} answered 403 Forbidden to {request} ({}): {}",
                                (self.answers.error_message)(&answer.body),
                                self.answers.forbidden_hint
                            ))));
                        }
                        Disposition::Unexpected => {
                            return Err(Fatal::Config(ConfigError::new(format!(
                                "{name} answered {status} to {request}, which this connector does not expect: check base_url ({})",
                                self.answers.base_url
                            ))));
                        }
                        Disposition::Retry => (
                            format!(
                                "HTTP {status}: {}",
                                (self.answers.error_message)(&answer.body)
                            ),
                            retry_after,
                        ),
                    }
                }
                Err(no_answer) => (
                    describe_transport_failure(
                        no_answer.failure,
                        &out.uri.to_string(),
                        self.timeout,
                        &self.answers.platform,
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
                self.pause(wait).await?;
                continue;
            }
            // Requests of the same chain running beside this one may have failed too.
            attempt = attempt.max(shared_attempts());
            if attempt >= self.max_retries {
                return Err(Fatal::Transient(TransientError(format!(
                    "{request} failed after {} attempts; last answer: {reason}",
                    attempt + 1
                ))));
            }
            // Requests waiting their turn behind many others would each take long to use
            // their own retries: every answer failing for longer than one request's waits, and
            // more of them than its attempts, is an API that is down.
            let (failing_for, failures) = self.failed();
            if failures > self.max_retries && failing_for >= self.retry_waits() {
                return Err(Fatal::Transient(TransientError(format!(
                    "{name} failed every request for {:.1} s ({failures} in a row: as many as one request's {} attempts, for longer than their waits): it looks down. Last: {request} failed: {reason}",
                    failing_for.as_secs_f64(),
                    self.max_retries + 1
                ))));
            }
            let wait = backoff(attempt, retry_after, self.backoff_base);
            attempt += 1;
            if let Some(shared) = &shared {
                shared.fetch_max(attempt, Ordering::Relaxed);
            }
            if out.creates && may_have_applied {
                self.notice(format!(
                    "{request} failed ({reason}) and may have created its records; checking which exist before sending the others again in {:.1} s (attempt {attempt} of {})",
                    wait.as_secs_f64(),
                    self.max_retries + 1
                ));
                self.pause(wait).await?;
                return Ok(Reply::Unknown { reason });
            }
            self.notice(format!(
                "{request} failed ({reason}); retry {attempt} of {} in {:.1} s",
                self.max_retries,
                wait.as_secs_f64()
            ));
            self.pause(wait).await?;
        }
    }
}

impl<C> Sender<C> {
    /// Waits before a retry, unless the sync stops meanwhile.
    async fn pause(&self, wait: Duration) -> Result<(), Fatal> {
        if self.limiter.sleep_unless_stopped(wait).await {
            Ok(())
        } else {
            Err(Fatal::Stopped)
        }
    }
}

/// The longest [`backoff`] may wait before retry `attempt` when the server names no time.
fn backoff_ceiling(attempt: u32, base: Duration) -> Duration {
    base.saturating_mul(1u32 << attempt.min(16))
        .min(BACKOFF_CAP)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_follows_http_meanings() {
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
}
