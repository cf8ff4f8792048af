//! One HTTP exchange with the API: request out, status and body back, or why not. HTTP/1.1
//! connections are opened, kept and reused here, over hyper's connection API; reqwest carries
//! the exchange instead when the environment names a proxy, since reqwest honours
//! `HTTPS_PROXY` and its kin.

use super::{transport_failure, TransportFailure};
use bytes::Bytes;
use http::uri::{Authority, Scheme};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use reqwest::header::{
    HeaderName, HeaderValue, ACCEPT, CONTENT_TYPE, HOST, RETRY_AFTER, USER_AGENT,
};
use reqwest::{Method, StatusCode};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tower_service::Service;

/// The variables through which an environment names a proxy.
const PROXY_VARIABLES: [&str; 6] = [
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// An idle connection older than this is closed rather than reused: servers and load balancers
/// commonly drop keep-alive connections after 60 s, and a request sent into one that is
/// closing fails.
const IDLE_TIMEOUT: Duration = Duration::from_secs(50);

pub struct Transport {
    via: Via,
    timeout: Duration,
    /// The header the credentials travel in (`Authorization`, or the API's own).
    auth_header: HeaderName,
    /// `destination-x/1.2.3`.
    agent: HeaderValue,
    /// The last credentials header built, by its text: most syncs send one value throughout,
    /// and building it checks every byte.
    authorization: Mutex<Option<(Box<str>, HeaderValue)>>,
}

enum Via {
    Direct(Box<Connections>),
    Proxied(reqwest::Client),
}

type Connection = http1::SendRequest<Full<Bytes>>;

/// The connections this transport opened, by origin. A sync talks to one origin (two at
/// most), so a short list searched in order beats a hashed pool keyed by the URL's parts,
/// which hyper-util's client hashes on every request.
struct Connections {
    connector: HttpsConnector<HttpConnector>,
    idle_per_origin: usize,
    origins: Mutex<Vec<Origin>>,
}

struct Origin {
    https: bool,
    authority: Authority,
    /// The `Host` header for it, built once.
    host: HeaderValue,
    /// Open connections with no request on them, the most recently used last.
    idle: Vec<(Connection, Instant)>,
}

/// A request's origin and the connection it took, if one was idle.
struct Checkout {
    origin: usize,
    host: HeaderValue,
    idle: Option<Connection>,
}

impl Connections {
    fn checkout(&self, https: bool, authority: &Authority) -> Result<Checkout, NoAnswer> {
        let mut origins = self.origins.lock().unwrap();
        let index = match origins
            .iter()
            .position(|o| o.https == https && o.authority == *authority)
        {
            Some(index) => index,
            None => {
                let host = host_header(https, authority).ok_or(NoAnswer {
                    failure: TransportFailure::UnknownHost,
                    never_sent: true,
                })?;
                origins.push(Origin {
                    https,
                    authority: authority.clone(),
                    host,
                    idle: Vec::new(),
                });
                origins.len() - 1
            }
        };
        let origin = &mut origins[index];
        let mut idle = None;
        if !origin.idle.is_empty() {
            let now = Instant::now();
            while let Some((connection, since)) = origin.idle.pop() {
                if !connection.is_closed() && now.duration_since(since) < IDLE_TIMEOUT {
                    idle = Some(connection);
                    break;
                }
            }
        }
        Ok(Checkout {
            origin: index,
            host: origin.host.clone(),
            idle,
        })
    }

    /// A connection whose exchange ended cleanly goes back for the next request.
    fn put_back(&self, origin: usize, connection: Connection) {
        if connection.is_closed() {
            return;
        }
        let mut origins = self.origins.lock().unwrap();
        let idle = &mut origins[origin].idle;
        if idle.len() < self.idle_per_origin {
            idle.push((connection, Instant::now()));
        }
    }

    /// Opens a connection to `uri`'s origin; its I/O runs as a task of its own.
    async fn open(&self, uri: &http::Uri) -> Result<Connection, NoAnswer> {
        let mut connector = self.connector.clone();
        let never_connected = |e: &(dyn std::error::Error + 'static)| NoAnswer {
            failure: transport_failure(e, false),
            never_sent: true,
        };
        std::future::poll_fn(|cx| connector.poll_ready(cx))
            .await
            .map_err(|e| never_connected(e.as_ref()))?;
        let stream = connector
            .call(uri.clone())
            .await
            .map_err(|e| never_connected(e.as_ref()))?;
        let (sender, connection) = http1::handshake(stream)
            .await
            .map_err(|e| never_connected(&e))?;
        tokio::spawn(async move {
            // Its end (the server closed it, or every sender is gone) is seen by the sender.
            let _ = connection.await;
        });
        Ok(sender)
    }
}

/// `Host` for an origin: its authority without user info, and without the scheme's default port.
fn host_header(https: bool, authority: &Authority) -> Option<HeaderValue> {
    let text = authority.as_str();
    let text = text.rsplit_once('@').map_or(text, |(_, host)| host);
    let default_port = if https { 443 } else { 80 };
    let text = match authority.port_u16() {
        Some(port) if port == default_port => authority.host(),
        _ => text,
    };
    HeaderValue::from_str(text).ok()
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
    /// The request did not reach the API: no connection was made, or the one it was given
    /// closed before the request was written.
    pub never_sent: bool,
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
            // HTTP/1.1 only: a sync keeps one connection per request in flight, and the APIs
            // limit requests, not connections.
            let connector = hyper_rustls::HttpsConnectorBuilder::new()
                .with_provider_and_webpki_roots(Arc::new(rustls::crypto::ring::default_provider()))?
                .https_or_http()
                .enable_http1()
                .wrap_connector(http);
            // Redirects are not followed: nothing here follows them.
            Via::Direct(Box::new(Connections {
                connector,
                idle_per_origin: idle_per_host.max(1),
                origins: Mutex::new(Vec::new()),
            }))
        };
        Ok(Self {
            via,
            timeout,
            auth_header,
            agent: HeaderValue::from_str(agent)?,
            authorization: Mutex::new(None),
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
        match &self.via {
            Via::Direct(connections) => {
                let (Some(scheme), Some(authority), Some(path)) =
                    (uri.scheme(), uri.authority(), uri.path_and_query())
                else {
                    return Err(NoAnswer {
                        failure: TransportFailure::UnknownHost,
                        never_sent: true,
                    });
                };
                let https = *scheme == Scheme::HTTPS;
                let checkout = connections.checkout(https, authority)?;
                let has_body = body.is_some();
                let mut request = http::Request::new(Full::new(body.unwrap_or_default()));
                *request.method_mut() = method;
                // Origin form (`/path?query`): the connection already names the host.
                *request.uri_mut() = http::Uri::from(path.clone());
                let headers = request.headers_mut();
                headers.insert(HOST, checkout.host);
                headers.insert(self.auth_header.clone(), authorization);
                headers.insert(USER_AGENT, self.agent.clone());
                headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
                if has_body {
                    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                }
                let mut idle = checkout.idle;
                loop {
                    let reused = idle.is_some();
                    let mut connection = match idle.take() {
                        Some(connection) => connection,
                        None => connections.open(&uri).await?,
                    };
                    // Waits for the connection to have taken the last answer's end.
                    if let Err(error) = connection.ready().await {
                        if reused {
                            idle = connections.checkout(https, authority)?.idle;
                            continue;
                        }
                        return Err(NoAnswer {
                            failure: transport_failure(&error, false),
                            never_sent: true,
                        });
                    }
                    let response = match connection.try_send_request(request).await {
                        Ok(response) => response,
                        Err(mut refused) => match refused.take_message() {
                            // A kept connection the server had closed: the request never
                            // left, so it goes on another one.
                            Some(unsent) if reused => {
                                request = unsent;
                                idle = connections.checkout(https, authority)?.idle;
                                continue;
                            }
                            unsent => {
                                return Err(NoAnswer {
                                    failure: transport_failure(refused.error(), false),
                                    never_sent: unsent.is_some(),
                                })
                            }
                        },
                    };
                    let (parts, body) = response.into_parts();
                    let body = body.collect().await.map_err(|e| NoAnswer {
                        failure: transport_failure(&e, false),
                        never_sent: false,
                    })?;
                    connections.put_back(checkout.origin, connection);
                    return Ok(Answer {
                        status: parts.status,
                        retry_after: parts.headers.get(RETRY_AFTER).cloned(),
                        body: body.to_bytes(),
                    });
                }
            }
            Via::Proxied(client) => {
                let url = reqwest::Url::parse(&uri.to_string()).expect("a URI is a URL");
                let mut request = client
                    .request(method, url)
                    .header(&self.auth_header, authorization)
                    .header(USER_AGENT, self.agent.clone())
                    .header(ACCEPT, "application/json");
                if let Some(body) = body {
                    request = request.header(CONTENT_TYPE, "application/json").body(body);
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
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
        let transport = Transport::new(
            Duration::from_secs(5),
            4,
            HeaderName::from_static("x-api-key"),
            "destination-test/1.0",
        )
        .unwrap();
        assert!(
            matches!(transport.via, Via::Direct(_)),
            "these tests run with no proxy variable set"
        );
        transport
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

    #[test]
    fn host_leaves_out_user_info_and_the_default_port() {
        let host = |https, a: &str| host_header(https, &a.parse().unwrap()).unwrap();
        assert_eq!(host(true, "api.example.com"), "api.example.com");
        assert_eq!(host(true, "api.example.com:443"), "api.example.com");
        assert_eq!(host(false, "api.example.com:443"), "api.example.com:443");
        assert_eq!(host(false, "u:p@127.0.0.1:8080"), "127.0.0.1:8080");
    }
}
