//! A forward HTTP proxy on loopback for tests: it takes each absolute-form request
//! (`GET http://host/path`), sends it on to its origin, answers with what came back, and counts
//! what it carried, so a test can see that a connector behind a proxy sent everything through it.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::net::TcpListener;

pub struct ForwardProxy {
    port: u16,
    carried: Arc<AtomicU64>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for ForwardProxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl ForwardProxy {
    pub async fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let carried = Arc::new(AtomicU64::new(0));
        // The proxy itself goes straight to the origin, whatever the environment says.
        let client = crate::http_client().no_proxy().build()?;
        let counter = carried.clone();
        let server = crate::server::serve(listener, Arc::new((client, counter)), forward);
        Ok(Self {
            port,
            carried,
            server,
        })
    }

    /// `http://127.0.0.1:{port}`, for `HTTP_PROXY`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Requests carried to their origin and answered.
    pub fn carried(&self) -> u64 {
        self.carried.load(Ordering::SeqCst)
    }
}

async fn forward(
    state: Arc<(reqwest::Client, Arc<AtomicU64>)>,
    request: Request<Incoming>,
) -> Result<crate::server::Answer, crate::server::Dropped> {
    let (client, carried) = &*state;
    let (parts, body) = request.into_parts();
    // An origin-form request did not come through a proxy's client: refuse it plainly.
    if parts.uri.scheme().is_none() {
        return Ok(crate::server::json_answer(
            400,
            &serde_json::json!({"message": "a proxy takes absolute-form requests"}),
        ));
    }
    let body = body
        .collect()
        .await
        .map_err(|_| crate::server::Dropped)?
        .to_bytes();
    let mut outgoing = client
        .request(parts.method, parts.uri.to_string())
        .body(body);
    for (name, value) in &parts.headers {
        if name != hyper::header::HOST && name != "proxy-connection" {
            outgoing = outgoing.header(name, value);
        }
    }
    let answer = outgoing.send().await.map_err(|_| crate::server::Dropped)?;
    let mut response = Response::builder().status(answer.status());
    for (name, value) in answer.headers() {
        if name != hyper::header::CONTENT_LENGTH && name != hyper::header::TRANSFER_ENCODING {
            response = response.header(name, value);
        }
    }
    let body: Bytes = answer.bytes().await.map_err(|_| crate::server::Dropped)?;
    carried.fetch_add(1, Ordering::SeqCst);
    Ok(response.body(Full::new(body)).expect("a valid answer"))
}
