//! Workers: each makes one `Writer::write` call at a time, so `max_concurrency` workers keep at
//! most that many in flight. A worker takes keyed work from its own lane first (same key, same lane, so
//! input order holds per key) and unkeyed work from a shared queue.

use super::prepare::Prepared;
use super::writer::{Verdict, Writer};
use crate::catalog::{ObjectKind, WriteMode};
use crate::error::Fatal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Records of one object and mode for one `Writer::write` call.
#[derive(Debug)]
pub struct Work {
    pub object: ObjectKind,
    pub mode: WriteMode,
    pub records: Vec<Prepared>,
}

impl Work {
    /// What its records took from the byte budget.
    pub fn cost(&self) -> usize {
        self.records.iter().map(|r| r.cost).sum()
    }
}

/// What became of one record.
#[derive(Debug)]
pub struct Committed {
    pub record: Prepared,
    pub verdict: Verdict,
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

pub struct Worker<W> {
    /// This worker's place among `workers`: worker 0 starts at once and measures the first
    /// round trip; worker i then starts i/workers of that round trip later. Spreading requests
    /// over the round trip, instead of sending all at once, keeps a busy API (and the machine)
    /// from seeing every request of a round arrive together, and spares it a burst at start.
    pub index: usize,
    pub workers: usize,
    pub first_round_trip: tokio::sync::watch::Sender<Option<std::time::Duration>>,
    pub writer: Arc<W>,
    pub lane: mpsc::Receiver<Work>,
    pub shared: async_channel::Receiver<Work>,
    pub outcomes: mpsc::UnboundedSender<Settled>,
    pub stop: Arc<AtomicBool>,
}

impl<W: Writer> Worker<W> {
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
            let object = work.object;
            let cost = work.cost();
            let outcome = if self.stop.load(Ordering::Relaxed) {
                Outcome::Skipped
            } else {
                let started = std::time::Instant::now();
                let result = execute(&*self.writer, work).await;
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

async fn execute<W: Writer>(writer: &W, work: Work) -> Result<Vec<Committed>, Fatal> {
    let verdicts = writer.write(work.object, work.mode, &work.records).await?;
    if verdicts.len() != work.records.len() {
        return Err(Fatal::Transient(crate::error::TransientError(format!(
            "the writer answered {} verdicts for {} {} records; this is a bug",
            verdicts.len(),
            work.records.len(),
            work.object
        ))));
    }
    Ok(work
        .records
        .into_iter()
        .zip(verdicts)
        .map(|(record, verdict)| Committed { record, verdict })
        .collect())
}
