//! What every emulator here shares: the HTTP/1.1 server on loopback, a connection dropped on
//! purpose, the count of requests in flight, each request's reproducible random draws, and
//! JSON answers.

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use rand::{RngExt, SeedableRng};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::net::TcpListener;

/// An emulator's answer.
pub type Answer = Response<Full<Bytes>>;

/// One request's random draws: the same seed and request number draw the same latency and
/// faults, so a run can be reproduced.
pub struct Draw {
    /// For any further draw (which 5xx, which fault).
    pub rng: rand::rngs::StdRng,
    /// The configured latency plus this request's jitter.
    pub latency: std::time::Duration,
    /// A number in [0, 1) that fault rates are compared against.
    pub roll: f64,
}

impl Draw {
    pub fn new(seed: u64, sequence: u64, latency_ms: u64, jitter_ms: u64) -> Self {
        let mut rng =
            rand::rngs::StdRng::seed_from_u64(seed ^ sequence.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let jitter = if jitter_ms > 0 {
            rng.random_range(0..=jitter_ms)
        } else {
            0
        };
        let roll = rng.random();
        Self {
            rng,
            latency: std::time::Duration::from_millis(latency_ms + jitter),
            roll,
        }
    }
}

/// A JSON answer with its status.
pub fn json_answer(status: u16, body: &serde_json::Value) -> Answer {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(
            serde_json::to_vec(body).expect("JSON"),
        )))
        .expect("valid response")
}

/// The connection is closed without an answer.
#[derive(Debug)]
pub struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped on purpose")
    }
}

impl std::error::Error for Dropped {}

/// One request in flight, counted until dropped.
pub struct InFlight<'a>(&'a AtomicUsize);

impl<'a> InFlight<'a> {
    /// Counts a request in; returns the guard and how many are in flight with it.
    pub fn enter(counter: &'a AtomicUsize) -> (Self, usize) {
        let now = counter.fetch_add(1, Ordering::SeqCst) + 1;
        (Self(counter), now)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Serves `listener` until the returned task is aborted: each connection kept alive, each
/// request answered by `handle` with the shared `state`.
pub fn serve<S, F, Fut>(
    listener: TcpListener,
    state: Arc<S>,
    handle: F,
) -> tokio::task::JoinHandle<()>
where
    S: Send + Sync + 'static,
    F: Fn(Arc<S>, Request<Incoming>) -> Fut + Copy + Send + Sync + 'static,
    Fut: Future<Output = Result<Answer, Dropped>> + Send + 'static,
{
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let state = state.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| handle(state.clone(), req));
                let _ = hyper::server::conn::http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}
