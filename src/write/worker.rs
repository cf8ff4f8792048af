//! Workers: each sends one request at a time, so `max_concurrency` workers keep at most that
//! many in flight. A worker takes keyed work from its own lane first (same key, same lane, so
//! input order holds per key) and unkeyed work from a shared queue.

use super::prepare::Prepared;
use crate::api::{ApiClient, ApiRequest, Fatal, Reply};
use crate::catalog::{ObjectKind, WriteMode};
use bytes::Bytes;
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use reqwest::Method;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Characters that cannot stand as-is in one URL path segment.
const PATH_SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'/')
    .add(b'%')
    .add(b'\\')
    .add(b'^')
    .add(b'|')
    .add(b'[')
    .add(b']');

#[derive(Debug)]
pub enum Work {
    /// Inserts through `POST /{object}/bulk`.
    Bulk {
        object: ObjectKind,
        records: Vec<Prepared>,
    },
    /// One record, one request.
    Single {
        object: ObjectKind,
        mode: WriteMode,
        record: Prepared,
    },
}

impl Work {
    pub fn object(&self) -> ObjectKind {
        match self {
            Self::Bulk { object, .. } | Self::Single { object, .. } => *object,
        }
    }

    /// What its records took from the byte budget.
    pub fn cost(&self) -> usize {
        match self {
            Self::Bulk { records, .. } => records.iter().map(|r| r.cost).sum(),
            Self::Single { record, .. } => record.cost,
        }
    }
}

/// What became of one record.
#[derive(Debug)]
pub struct Committed {
    pub record: Prepared,
    /// `None`: written. `Some`: the API refused it, with its status and message.
    pub refusal: Option<(u16, String)>,
}

/// A work unit back from a worker: its object, its byte cost, and what became of it.
pub type Settled = (ObjectKind, usize, Outcome);

#[derive(Debug)]
pub enum Outcome {
    Done(Vec<Committed>),
    Failed(Fatal),
    /// The sync is stopping: this work was not attempted.
    Skipped,
}

pub struct Worker {
    /// This worker's place among `workers`: worker 0 starts at once and measures the first
    /// round trip; worker i then starts i/workers of that round trip later. Spreading requests
    /// over the round trip, instead of sending all at once, keeps a busy API (and the machine)
    /// from seeing every request of a round arrive together, and spares it a burst at start.
    pub index: usize,
    pub workers: usize,
    pub first_round_trip: tokio::sync::watch::Sender<Option<std::time::Duration>>,
    pub client: Arc<ApiClient>,
    pub lane: mpsc::Receiver<Work>,
    pub shared: async_channel::Receiver<Work>,
    pub outcomes: mpsc::UnboundedSender<Settled>,
    pub stop: Arc<AtomicBool>,
}

impl Worker {
    pub async fn run(mut self) {
        const LONGEST_START_WAIT: std::time::Duration = std::time::Duration::from_secs(1);
        if self.index > 0 {
            let mut measured = self.first_round_trip.subscribe();
            let round_trip =
                tokio::time::timeout(LONGEST_START_WAIT, measured.wait_for(Option::is_some))
                    .await
                    .ok()
                    .and_then(|r| r.ok().and_then(|v| *v))
                    .unwrap_or_default()
                    .min(LONGEST_START_WAIT);
            tokio::time::sleep(round_trip * self.index as u32 / self.workers as u32).await;
        }
        let mut lane_open = true;
        let mut shared_open = true;
        while lane_open || shared_open {
            let work = tokio::select! {
                biased;
                work = self.lane.recv(), if lane_open => match work {
                    Some(work) => work,
                    None => { lane_open = false; continue; }
                },
                work = self.shared.recv(), if shared_open => match work {
                    Ok(work) => work,
                    Err(_) => { shared_open = false; continue; }
                },
            };
            let object = work.object();
            let cost = work.cost();
            let outcome = if self.stop.load(Ordering::Relaxed) {
                Outcome::Skipped
            } else {
                let started = std::time::Instant::now();
                let result = execute(&self.client, work).await;
                if self.index == 0 && self.first_round_trip.borrow().is_none() {
                    self.first_round_trip.send_replace(Some(started.elapsed()));
                }
                match result {
                    Ok(done) => Outcome::Done(done),
                    Err(fatal) => {
                        self.stop.store(true, Ordering::Relaxed);
                        Outcome::Failed(fatal)
                    }
                }
            };
            if self.outcomes.send((object, cost, outcome)).is_err() {
                return;
            }
        }
    }
}

async fn execute(client: &ApiClient, work: Work) -> Result<Vec<Committed>, Fatal> {
    match work {
        Work::Bulk { object, records } => write_bulk(client, object, records).await,
        Work::Single {
            object,
            mode,
            record,
        } => {
            let request = single_request(object, mode, &record);
            let refusal = match client.send(&request).await? {
                Reply::Success { .. } => None,
                Reply::Refused { status, message } => Some((status, message)),
            };
            Ok(vec![Committed { record, refusal }])
        }
    }
}

fn single_request(object: ObjectKind, mode: WriteMode, record: &Prepared) -> ApiRequest {
    let (method, path) = match mode {
        WriteMode::Insert => (Method::POST, format!("/{object}")),
        WriteMode::Update => {
            let uuid = record.uuid.as_deref().expect("update records carry a uuid");
            (
                Method::PUT,
                format!("/{object}/{}", utf8_percent_encode(uuid, PATH_SEGMENT)),
            )
        }
        WriteMode::Upsert => (Method::POST, format!("/{object}/upsert")),
    };
    ApiRequest {
        method,
        path,
        body: Some(Bytes::copy_from_slice(record.body())),
    }
}

fn bulk_body(records: &[Prepared]) -> Bytes {
    let size = records.iter().map(|r| r.body().len() + 1).sum::<usize>() + 2;
    let mut body = Vec::with_capacity(size);
    body.push(b'[');
    for (i, record) in records.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(record.body());
    }
    body.push(b']');
    Bytes::from(body)
}

/// A bulk insert is all or nothing and a refusal need not say which record was bad, so a
/// refused batch is split in halves until each refusal is pinned to a single record; every
/// other record still lands. Halves go in order, so input order is kept.
async fn write_bulk(
    client: &ApiClient,
    object: ObjectKind,
    records: Vec<Prepared>,
) -> Result<Vec<Committed>, Fatal> {
    let mut committed = Vec::with_capacity(records.len());
    let mut pending = vec![records];
    while let Some(mut chunk) = pending.pop() {
        let request = ApiRequest {
            method: Method::POST,
            path: format!("/{object}/bulk"),
            body: Some(bulk_body(&chunk)),
        };
        match client.send(&request).await? {
            Reply::Success { .. } => {
                committed.extend(chunk.into_iter().map(|record| Committed {
                    record,
                    refusal: None,
                }));
            }
            Reply::Refused { .. } if chunk.len() > 1 => {
                let second = chunk.split_off(chunk.len() / 2);
                pending.push(second);
                pending.push(chunk);
            }
            Reply::Refused { status, message } => {
                let record = chunk.pop().expect("a chunk is never empty");
                committed.push(Committed {
                    record,
                    refusal: Some((status, message)),
                });
            }
        }
    }
    Ok(committed)
}
