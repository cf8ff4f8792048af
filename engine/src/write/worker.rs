//! Workers: each makes one `Writer::write` call at a time, taking work from one shared queue.
//! There are `max_concurrency` of them; the writer's adaptive limit decides how many requests
//! are out at once, and the coordinator hands out one work unit per key at a time.

use super::prepare::Prepared;
use super::writer::{Verdict, Writer};
use crate::catalog::WriteMode;
use crate::error::Fatal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Records of one object and mode for one `Writer::write` call.
#[derive(Debug)]
pub struct Work<O> {
    pub object: O,
    pub mode: WriteMode,
    /// The key its records are matched on (update, upsert); one unit of a key at a time.
    pub key: Option<u64>,
    pub records: Vec<Prepared>,
}

impl<O> Work<O> {
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

/// A work unit back from a worker: its object, key and byte cost, and what became of it.
#[derive(Debug)]
pub struct Settled<O> {
    pub object: O,
    pub key: Option<u64>,
    pub cost: usize,
    pub outcome: Outcome,
}

#[derive(Debug)]
pub enum Outcome {
    Done(Vec<Committed>),
    Failed(Fatal),
    /// The sync is stopping: this work was not attempted.
    Skipped,
}

pub struct Worker<W: Writer> {
    pub writer: Arc<W>,
    pub work: async_channel::Receiver<Work<W::Object>>,
    pub outcomes: mpsc::UnboundedSender<Settled<W::Object>>,
    pub stop: Arc<AtomicBool>,
}

impl<W: Writer> Worker<W> {
    pub async fn run(self) {
        while let Ok(work) = self.work.recv().await {
            let (object, key, cost) = (work.object, work.key, work.cost());
            let outcome = if self.stop.load(Ordering::Relaxed) {
                Outcome::Skipped
            } else {
                match execute(&*self.writer, work).await {
                    Ok(done) => Outcome::Done(done),
                    Err(Fatal::Stopped) => Outcome::Skipped,
                    Err(fatal) => {
                        self.stop.store(true, Ordering::Relaxed);
                        Outcome::Failed(fatal)
                    }
                }
            };
            let settled = Settled {
                object,
                key,
                cost,
                outcome,
            };
            if self.outcomes.send(settled).is_err() {
                return;
            }
        }
    }
}

async fn execute<W: Writer>(writer: &W, work: Work<W::Object>) -> Result<Vec<Committed>, Fatal> {
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
