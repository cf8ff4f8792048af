//! One HTTP exchange with the API: request out, status and body back, or why not. hyper's
//! pooled client does it directly; reqwest does it when the environment names a proxy, since
//! reqwest honours `HTTPS_PROXY` and its kin.

use super::{transport_failure, TransportFailure};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use reqwest::header::{HeaderName, HeaderValue, CONTENT_TYPE, RETRY_AFTER, USER_AGENT};
use reqwest::{Method, StatusCode};
use std::sync::Arc;
use std::time::Duration;

/// The variables through which an environment names a proxy.
const PROXY_VARIABLES: [&str; 6] = [
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
];

pub struct Transport {
    via: Via,
    timeout: Duration,
    /// The header the credentials travel in (`Authorization`, or the API's own).
    auth_header: HeaderName,
    /// `destination-x/1.2.3`.
    agent: HeaderValue,
    /// The last credentials header built, by its text: most syncs send one value throughout,
    /// and building it checks every byte.
    authorization: std::sync::Mutex<Option<(Box<str>, HeaderValue)>>,
}

enum Via {
    Direct(Box<Client<HttpsConnector<HttpConnector>, Full<Bytes>>>),
    Proxied(reqwest::Client),
}

/// An answer: status, `Retry-After` if any, and the whole body.
pub struct Answer {
    pub status: StatusCode,
    pub retry_after: Option<HeaderValue>,
    pub body: Bytes,
}

/// No answer came.
#[derive(Debug)]
pub struct NoAnswer {
    pub failure: TransportFailure,
    /// The connection was never made: the request did not reach the API.
    pub before_connecting: bool,
}

impl Transport {
    /// `timeout` bounds each exchange, answer body included; connecting gets at most 10 s
    /// of it. Up to `idle_per_host` connections are kept open between requests. Credentials
    /// go in `auth_header`; `agent` names the connector and its version.
    pub fn new(
        timeout: Duration,
        idle_per_host: usize,
        auth_header: HeaderName,
        agent: &str,
    ) -> anyhow::Result<Self> {
        let connect_timeout = timeout.min(Duration::from_secs(10));
        let proxied = PROXY_VARIABLES
            .iter()
            .any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()));
        let via = if proxied {
            Via::Proxied(
                reqwest::Client::builder()
                    .connect_timeout(connect_timeout)
                    .pool_max_idle_per_host(idle_per_host)
                    .tcp_nodelay(true)
                    // A redirect could carry the Authorization header somewhere else.
                    .redirect(reqwest::redirect::Policy::none())
                    .build()?,
            )
        } else {
            let mut http = HttpConnector::new();
            http.set_nodelay(true);
            http.set_connect_timeout(Some(connect_timeout));
            http.enforce_http(false);
            let https = hyper_rustls::HttpsConnectorBuilder::new()
                .with_provider_and_webpki_roots(Arc::new(rustls::crypto::ring::default_provider()))?
                .https_or_http()
                .enable_http1()
                .enable_http2()
                .wrap_connector(http);
            // Redirects are not followed: hyper's client never does.
            Via::Direct(Box::new(
                Client::builder(TokioExecutor::new())
                    .pool_max_idle_per_host(idle_per_host)
                    .build(https),
            ))
        };
        Ok(Self {
            via,
            timeout,
            auth_header,
            agent: HeaderValue::from_str(agent)?,
            authorization: std::sync::Mutex::new(None),
        })
    }

    /// The credentials header for `text`, marked sensitive (never printed by http's Debug).
    fn header_for(&self, text: &str) -> Option<HeaderValue> {
        let mut cached = self.authorization.lock().unwrap();
        if let Some((known, value)) = cached.as_ref() {
            if known.as_ref() == text {
                return Some(value.clone());
            }
        }
        let mut value = HeaderValue::from_str(text).ok()?;
        value.set_sensitive(true);
        *cached = Some((text.into(), value.clone()));
        Some(value)
    }

    pub async fn exchange(
        &self,
        method: Method,
        uri: http::Uri,
        authorization: &str,
        body: Option<Bytes>,
    ) -> Result<Answer, NoAnswer> {
        let timed_out = NoAnswer {
            failure: TransportFailure::Timeout,
            before_connecting: false,
        };
        tokio::time::timeout(
            self.timeout,
            self.exchange_untimed(method, uri, authorization, body),
        )
        .await
        .unwrap_or(Err(timed_out))
    }

    async fn exchange_untimed(
        &self,
        method: Method,
        uri: http::Uri,
        authorization: &str,
        body: Option<Bytes>,
    ) -> Result<Answer, NoAnswer> {
        let authorization = self.header_for(authorization).ok_or(NoAnswer {
            failure: TransportFailure::Dropped,
            before_connecting: true,
        })?;
        match &self.via {
            Via::Direct(client) => {
                let mut request = http::Request::builder()
                    .method(method)
                    .uri(uri)
                    .header(&self.auth_header, authorization)
                    .header(USER_AGENT, self.agent.clone());
                if body.is_some() {
                    request =
                        request.header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                }
                let request = request
                    .body(Full::new(body.unwrap_or_default()))
                    .expect("method, URI and headers are valid");
                let response = client.request(request).await.map_err(|e| NoAnswer {
                    failure: transport_failure(&e, false),
                    before_connecting: e.is_connect(),
                })?;
                let (parts, body) = response.into_parts();
                let body = body.collect().await.map_err(|e| NoAnswer {
                    failure: transport_failure(&e, false),
                    before_connecting: false,
                })?;
                Ok(Answer {
                    status: parts.status,
                    retry_after: parts.headers.get(RETRY_AFTER).cloned(),
                    body: body.to_bytes(),
                })
            }
            Via::Proxied(client) => {
                let url = reqwest::Url::parse(&uri.to_string()).expect("a URI is a URL");
                let mut request = client
                    .request(method, url)
                    .header(&self.auth_header, authorization)
                    .header(USER_AGENT, self.agent.clone());
                if let Some(body) = body {
                    request = request.header(CONTENT_TYPE, "application/json").body(body);
                }
                let no_answer = |e: reqwest::Error| NoAnswer {
                    failure: transport_failure(&e, e.is_timeout()),
                    before_connecting: e.is_connect(),
                };
                let response = request.send().await.map_err(no_answer)?;
                let status = response.status();
                let retry_after = response.headers().get(RETRY_AFTER).cloned();
                let body = response.bytes().await.map_err(no_answer)?;
                Ok(Answer {
                    status,
                    retry_after,
                    body,
                })
            }
        }
    }
}
