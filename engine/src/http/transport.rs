//! One HTTP exchange with the API: request out, status and body back, or why not. reqwest
//! carries every request, proxy or not: HTTP/1.1, a kept-alive connection per request in
//! flight, idle ones closed before servers commonly close them, TLS through rustls trusting
//! the system's CA roots (`SSL_CERT_FILE` honoured) and the webpki roots.

use super::{transport_failure, TransportFailure};
use bytes::Bytes;
use reqwest::header::{HeaderName, HeaderValue, ACCEPT, CONTENT_TYPE, RETRY_AFTER, USER_AGENT};
use reqwest::{Method, StatusCode};
use std::sync::Mutex;
use std::time::Duration;

/// URLs kept parsed: the few routes a sync writes through. A URL parse with its host's IDNA
/// pass costs more than the rest of reqwest's work on a request.
const URL_CACHE: usize = 32;

/// An idle connection older than this is closed rather than reused: servers and load balancers
/// commonly drop keep-alive connections after 60 s, and a request sent into one that is
/// closing fails.
const IDLE_TIMEOUT: Duration = Duration::from_secs(50);

pub struct Transport {
    client: reqwest::Client,
    timeout: Duration,
    /// The header the credentials travel in (`Authorization`, or the API's own).
    auth_header: HeaderName,
    /// `destination-x/1.2.3`.
    agent: HeaderValue,
    /// The last credentials header built, by its text: most syncs send one value throughout,
    /// and building it checks every byte.
    authorization: Mutex<Option<(Box<str>, HeaderValue)>>,
    /// The first [`URL_CACHE`] request URIs seen, parsed as reqwest takes them.
    urls: Mutex<Vec<(http::Uri, reqwest::Url)>>,
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
    /// The request did not reach the API: no connection could be made.
    pub never_sent: bool,
}

impl Transport {
    /// `timeout` bounds each exchange, answer body included; connecting gets at most 10 s
    /// of it. Up to `idle_per_host` connections are kept open between requests. Credentials
    /// go in `auth_header`; `agent` names the connector and its version. A proxy named in the
    /// environment (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, either case, with `NO_PROXY`)
    /// carries the requests.
    pub fn new(
        timeout: Duration,
        idle_per_host: usize,
        auth_header: HeaderName,
        agent: &str,
    ) -> anyhow::Result<Self> {
        crate::install_tls_provider();
        let webpki_roots = webpki_root_certs::TLS_SERVER_ROOT_CERTS
            .iter()
            .filter_map(|der| reqwest::Certificate::from_der(der).ok());
        let client = reqwest::Client::builder()
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            // One connection per request in flight: the APIs limit requests, not connections.
            .http1_only()
            .pool_max_idle_per_host(idle_per_host.max(1))
            .pool_idle_timeout(IDLE_TIMEOUT)
            .tcp_nodelay(true)
            // A redirect could carry the credentials somewhere else: none is followed.
            .redirect(reqwest::redirect::Policy::none())
            // Retries are the Sender's, counted against max_retries: reqwest adds none of its own.
            .retry(reqwest::retry::never())
            .tls_certs_merge(webpki_roots)
            .build()?;
        Ok(Self {
            client,
            timeout,
            auth_header,
            agent: HeaderValue::from_str(agent)?,
            authorization: Mutex::new(None),
            urls: Mutex::new(Vec::new()),
        })
    }

    /// `uri` as a URL, parsed once for the routes a sync uses again and again.
    fn url_of(&self, uri: &http::Uri) -> Option<reqwest::Url> {
        let mut urls = self.urls.lock().unwrap();
        if let Some((_, url)) = urls.iter().find(|(known, _)| known == uri) {
            return Some(url.clone());
        }
        let url = reqwest::Url::parse(&uri.to_string()).ok()?;
        if urls.len() < URL_CACHE {
            urls.push((uri.clone(), url.clone()));
        }
        Some(url)
    }

    /// The client itself, for a request outside the API's retry loop (a sign-in, `check`'s
    /// probe): the same connections, proxy and trusted roots. Give it the agent and a timeout.
    pub fn client(&self) -> reqwest::Client {
        self.client.clone()
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
            never_sent: false,
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
            never_sent: true,
        })?;
        let url = self.url_of(&uri).ok_or(NoAnswer {
            failure: TransportFailure::UnknownHost,
            never_sent: true,
        })?;
        let mut request = self
            .client
            .request(method, url)
            .header(&self.auth_header, authorization)
            .header(USER_AGENT, self.agent.clone())
            .header(ACCEPT, HeaderValue::from_static("application/json"));
        if let Some(body) = body {
            request = request
                .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
                .body(body);
        }
        let no_answer = |e: reqwest::Error| NoAnswer {
            failure: transport_failure(&e, e.is_timeout()),
            never_sent: e.is_connect(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A loopback HTTP/1.1 server that answers `{}` to everything and keeps what it was sent.
    struct Server {
        port: u16,
        connections: Arc<AtomicUsize>,
        heads: Arc<Mutex<Vec<String>>>,
    }

    /// `close`: the server closes each connection after its first answer, without saying so
    /// (as one does when a keep-alive connection has been idle too long); `say_close`: it
    /// answers `Connection: close` and closes.
    async fn serve(close: bool, say_close: bool) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let heads = Arc::new(Mutex::new(Vec::new()));
        let (count, kept) = (connections.clone(), heads.clone());
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let kept = kept.clone();
                tokio::spawn(async move {
                    let mut buffer = Vec::new();
                    loop {
                        let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
                            let mut chunk = [0u8; 4096];
                            match socket.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                            }
                            continue;
                        };
                        let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
                        let length = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length: "))
                            .map_or(0, |n| n.parse::<usize>().unwrap());
                        while buffer.len() < end + 4 + length {
                            let mut chunk = [0u8; 4096];
                            let n = socket.read(&mut chunk).await.unwrap();
                            buffer.extend_from_slice(&chunk[..n]);
                        }
                        buffer.drain(..end + 4 + length);
                        kept.lock().unwrap().push(head);
                        let connection = if say_close {
                            "connection: close\r\n"
                        } else {
                            ""
                        };
                        let answer =
                            format!("HTTP/1.1 200 OK\r\n{connection}content-length: 2\r\n\r\n{{}}");
                        socket.write_all(answer.as_bytes()).await.unwrap();
                        if close || say_close {
                            return;
                        }
                    }
                });
            }
        });
        Server {
            port,
            connections,
            heads,
        }
    }

    fn transport() -> Transport {
        Transport::new(
            Duration::from_secs(5),
            4,
            HeaderName::from_static("x-api-key"),
            "destination-test/1.0",
        )
        .unwrap()
    }

    async fn get(transport: &Transport, port: u16, path: &str) -> Result<Answer, NoAnswer> {
        let uri: http::Uri = format!("http://127.0.0.1:{port}{path}").parse().unwrap();
        transport.exchange(Method::GET, uri, "k-1", None).await
    }

    #[tokio::test]
    async fn one_connection_carries_a_sequence_of_requests_in_origin_form() {
        let server = serve(false, false).await;
        let transport = transport();
        for i in 0..20 {
            let answer = get(&transport, server.port, &format!("/v2/clients?page={i}"))
                .await
                .unwrap();
            assert_eq!(answer.status, StatusCode::OK);
            assert_eq!(&answer.body[..], b"{}");
        }
        let body = Some(Bytes::from_static(br#"{"name":"x"}"#));
        let uri: http::Uri = format!("http://127.0.0.1:{}/v2/client", server.port)
            .parse()
            .unwrap();
        transport
            .exchange(Method::POST, uri, "k-1", body)
            .await
            .unwrap();
        assert_eq!(server.connections.load(Ordering::SeqCst), 1);
        let heads = server.heads.lock().unwrap();
        assert_eq!(heads.len(), 21);
        let first: Vec<&str> = heads[0].lines().collect();
        assert_eq!(first[0], "GET /v2/clients?page=0 HTTP/1.1");
        assert!(first.contains(&format!("host: 127.0.0.1:{}", server.port).as_str()));
        assert!(first.contains(&"x-api-key: k-1"));
        assert!(first.contains(&"user-agent: destination-test/1.0"));
        assert!(!first.iter().any(|l| l.starts_with("content-type")));
        assert!(heads[20].starts_with("POST /v2/client HTTP/1.1"));
        assert!(heads[20].contains("content-type: application/json"));
    }

    #[tokio::test]
    async fn requests_in_flight_together_take_a_connection_each_and_keep_them() {
        let server = serve(false, false).await;
        let transport = transport();
        for _ in 0..5 {
            let (port, t) = (server.port, &transport);
            // Polled together: the four are in flight at once.
            let answers = tokio::join!(
                get(t, port, "/a"),
                get(t, port, "/b"),
                get(t, port, "/c"),
                get(t, port, "/d")
            );
            for answer in [answers.0, answers.1, answers.2, answers.3] {
                assert_eq!(answer.unwrap().status, StatusCode::OK);
            }
        }
        let opened = server.connections.load(Ordering::SeqCst);
        assert_eq!(opened, 4, "{opened} connections");
    }

    #[tokio::test]
    async fn a_connection_the_server_closed_is_replaced_not_failed() {
        for say_close in [false, true] {
            let server = serve(true, say_close).await;
            let transport = transport();
            for i in 0..10 {
                // The server's close has arrived by the next request, as after an idle spell.
                tokio::time::sleep(Duration::from_millis(20)).await;
                let answer = get(&transport, server.port, &format!("/x/{i}")).await;
                assert_eq!(answer.unwrap().status, StatusCode::OK, "request {i}");
            }
            assert_eq!(server.connections.load(Ordering::SeqCst), 10);
            assert_eq!(server.heads.lock().unwrap().len(), 10);
        }
    }

    #[tokio::test]
    async fn nothing_listening_is_refused_before_the_request_left() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let failed = get(&transport(), port, "/").await.err().unwrap();
        assert_eq!(failed.failure, TransportFailure::Refused);
        assert!(failed.never_sent);
    }
}
