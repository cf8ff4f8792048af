//! `write`: stdin's records into batched ClientSuccess writes, states echoed once committed.
//!
//! ```text
//! reader thread ──items──▶ coordinator ──work──▶ workers (≤ max_concurrency requests) ──▶ API
//!  (decode, validate,       (ledger, batches,      │
//!   encode)                  rejections, logs) ◀──outcomes
//! ```
//! Every channel but the outcome one is bounded, so stdin is read only as fast as the API
//! takes records, and memory stays flat whatever the input size.

pub mod ledger;
pub mod plan;
pub mod prepare;
pub mod rejects;
pub mod worker;

use crate::api::{ApiClient, Fatal};
use crate::catalog::{ObjectKind, WriteMode};
use crate::config::Settings;
use crate::error::ConfigError;
use crate::output::Emitter;
use crate::protocol::{Lines, LogLevel};
use ledger::Ledger;
use plan::Plan;
use prepare::{Item, Original, Prepared, Rejection};
use rejects::{RejectStore, RejectedEntry};
use std::io::{self, BufRead};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use worker::{Outcome, Work, Worker};

/// A partial batch waits at most this long for more records before it is sent.
const MAX_BATCH_WAIT: Duration = Duration::from_millis(500);
const PROGRESS_EVERY: Duration = Duration::from_secs(10);
/// Decoded items buffered between the reader thread and the coordinator.
const INPUT_BUFFER: usize = 1024;
/// Rejections logged one by one when a file keeps them all; past this only the count is logged.
const REJECTION_LOG_LIMIT: u64 = 1000;
const NOTICE_LOG_LIMIT: u64 = 100;

/// How a sync ended.
#[derive(Debug, Default)]
pub struct Summary {
    pub records: u64,
    pub written: u64,
    pub rejected: u64,
    pub requests_failed: Option<String>,
    fatal: Option<Fatal>,
    rejected_nowhere: bool,
    first_reasons: Vec<String>,
}

impl Summary {
    /// The sync's verdict: a fatal error, or rejected records that were kept nowhere.
    pub fn into_result(self) -> anyhow::Result<()> {
        if let Some(fatal) = self.fatal {
            return Err(fatal.into());
        }
        if self.rejected_nowhere {
            return Err(ConfigError::new(format!(
                "{} record(s) were rejected and rejected_records is set to None, so they are kept nowhere; \
                 every other record was written. First reasons: {}. Fix these records, or set rejected_records \
                 to Local to keep rejected records in a file and let the sync succeed",
                self.rejected,
                self.first_reasons.join(" | ")
            ))
            .into());
        }
        Ok(())
    }
}

enum Input {
    Item(Item),
    Failed(io::Error),
}

/// Runs a sync: reads `input` to its end (or to a fatal error), emitting LOG and STATE messages.
pub async fn run(
    settings: Settings,
    plan: Plan,
    input: impl BufRead + Send + 'static,
    out: &mut Emitter,
) -> anyhow::Result<Summary> {
    let rejects = RejectStore::open(settings.rejected_records.as_deref())?;
    let (notice_tx, notices) = mpsc::unbounded_channel();
    let client = Arc::new(ApiClient::new(&settings)?.with_notices(notice_tx));
    let plan = Arc::new(plan);

    let (item_tx, items) = mpsc::channel(INPUT_BUFFER);
    let reader_plan = plan.clone();
    std::thread::Builder::new()
        .name("reader".into())
        .spawn(move || {
            for line in Lines::new(input) {
                let input = match line {
                    Ok((number, text)) => Input::Item(prepare::prepare(&reader_plan, number, text)),
                    Err(e) => Input::Failed(e),
                };
                let failed = matches!(input, Input::Failed(_));
                if item_tx.blocking_send(input).is_err() || failed {
                    return;
                }
            }
        })?;

    let workers = settings.max_concurrency.max(1);
    let (outcome_tx, outcomes) = mpsc::unbounded_channel();
    let (shared_tx, shared_rx) = async_channel::bounded(workers * 2);
    let stop = Arc::new(AtomicBool::new(false));
    let mut lanes = Vec::with_capacity(workers);
    let mut handles = Vec::with_capacity(workers);
    for _ in 0..workers {
        let (lane_tx, lane_rx) = mpsc::channel(2);
        lanes.push(lane_tx);
        let worker = Worker {
            client: client.clone(),
            lane: lane_rx,
            shared: shared_rx.clone(),
            outcomes: outcome_tx.clone(),
            stop: stop.clone(),
        };
        handles.push(tokio::spawn(worker.run()));
    }
    drop(outcome_tx);

    let mut coordinator = Coordinator {
        plan: plan.clone(),
        batch_size: settings.batch_size,
        out,
        ledger: Ledger::default(),
        rejects,
        batches: (0..plan.streams.len()).map(|_| Vec::new()).collect(),
        batch_started: vec![None; plan.streams.len()],
        lanes,
        shared: shared_tx,
        in_flight: 0,
        object_in_flight: [0; 3],
        last_mode: [None; 3],
        stopping: false,
        summary: Summary::default(),
        notices_logged: 0,
        notices_suppressed: 0,
        started: Instant::now(),
    };
    coordinator.run(items, outcomes, notices).await?;
    let Coordinator {
        lanes,
        shared,
        mut summary,
        rejects,
        ..
    } = coordinator;
    drop(lanes);
    drop(shared);
    for handle in handles {
        handle.await?;
    }
    summary.rejected_nowhere =
        summary.rejected > 0 && !rejects.keeps_records() && summary.fatal.is_none();
    Ok(summary)
}

struct Coordinator<'a> {
    plan: Arc<Plan>,
    batch_size: usize,
    out: &'a mut Emitter,
    ledger: Ledger,
    rejects: RejectStore,
    batches: Vec<Vec<Prepared>>,
    batch_started: Vec<Option<Instant>>,
    lanes: Vec<mpsc::Sender<Work>>,
    shared: async_channel::Sender<Work>,
    in_flight: usize,
    /// Work in flight per object, and the mode last dispatched for it: when an object's mode
    /// changes (an upsert after inserts of clients, say), its earlier work drains first, so
    /// records of the same object and key keep their input order across streams.
    object_in_flight: [usize; 3],
    last_mode: [Option<WriteMode>; 3],
    stopping: bool,
    summary: Summary,
    notices_logged: u64,
    notices_suppressed: u64,
    started: Instant,
}

impl Coordinator<'_> {
    async fn run(
        &mut self,
        mut items: mpsc::Receiver<Input>,
        mut outcomes: mpsc::UnboundedReceiver<(ObjectKind, Outcome)>,
        mut notices: mpsc::UnboundedReceiver<String>,
    ) -> anyhow::Result<()> {
        let mut reading = true;
        let mut progress =
            tokio::time::interval_at(tokio::time::Instant::now() + PROGRESS_EVERY, PROGRESS_EVERY);
        let mut last_progress = (Instant::now(), 0u64);
        loop {
            if self.stopping && reading {
                reading = false;
                items.close();
            }
            if !reading && self.in_flight == 0 {
                break;
            }
            let deadline = self.next_batch_deadline();
            tokio::select! {
                biased;
                Some((object, outcome)) = outcomes.recv() => self.settle(object, outcome)?,
                Some(notice) = notices.recv() => self.notice(notice)?,
                input = items.recv(), if reading => match input {
                    Some(Input::Item(item)) => self.accept(item, &mut outcomes).await?,
                    Some(Input::Failed(e)) => {
                        return Err(anyhow::anyhow!("could not read standard input: {e}"));
                    }
                    None => {
                        reading = false;
                        if !self.stopping {
                            for stream in 0..self.batches.len() {
                                self.flush_batch(stream).await?;
                            }
                        }
                    }
                },
                _ = sleep_until(deadline), if deadline.is_some() && !self.stopping => {
                    let now = Instant::now();
                    for stream in 0..self.batches.len() {
                        if self.batch_started[stream].is_some_and(|t| now >= t + MAX_BATCH_WAIT) {
                            self.flush_batch(stream).await?;
                        }
                    }
                }
                _ = progress.tick() => {
                    let done = self.summary.written + self.summary.rejected;
                    let rate = (done - last_progress.1) as f64 / last_progress.0.elapsed().as_secs_f64();
                    last_progress = (Instant::now(), done);
                    self.log_progress("progress", rate)?;
                }
            }
            self.release_states()?;
        }
        while let Ok(notice) = notices.try_recv() {
            self.notice(notice)?;
        }
        self.release_states()?;
        let elapsed = self.started.elapsed().as_secs_f64().max(1e-9);
        let rate = (self.summary.written + self.summary.rejected) as f64 / elapsed;
        self.log_progress("sync finished", rate)?;
        Ok(())
    }

    /// One work unit came back.
    fn settle(&mut self, object: ObjectKind, outcome: Outcome) -> anyhow::Result<()> {
        self.in_flight -= 1;
        self.object_in_flight[object_index(object)] -= 1;
        match outcome {
            Outcome::Done(done) => self.commit(done)?,
            Outcome::Failed(fatal) => {
                if self.summary.fatal.is_none() {
                    self.summary.fatal = Some(fatal);
                }
                self.stopping = true;
            }
            Outcome::Skipped => {}
        }
        Ok(())
    }

    fn next_batch_deadline(&self) -> Option<Instant> {
        self.batch_started
            .iter()
            .flatten()
            .min()
            .map(|t| *t + MAX_BATCH_WAIT)
    }

    async fn accept(
        &mut self,
        item: Item,
        outcomes: &mut mpsc::UnboundedReceiver<(ObjectKind, Outcome)>,
    ) -> anyhow::Result<()> {
        match item {
            Item::Record(mut record) => {
                self.summary.records += 1;
                record.segment = self.ledger.receive();
                self.route(record, outcomes).await?;
            }
            Item::Rejected(rejection) => {
                self.summary.records += 1;
                let segment = self.ledger.receive();
                self.reject(&rejection)?;
                self.ledger.commit(segment, true);
            }
            Item::State(state) => self.ledger.receive_state(state),
            Item::Ignored => {}
        }
        Ok(())
    }

    async fn route(
        &mut self,
        record: Prepared,
        outcomes: &mut mpsc::UnboundedReceiver<(ObjectKind, Outcome)>,
    ) -> anyhow::Result<()> {
        let stream = &self.plan.streams[record.stream];
        let (object, mode) = (stream.object, stream.mode);
        let index = object_index(object);
        if self.last_mode[index].is_some_and(|last| last != mode) {
            self.drain_object(object, outcomes).await?;
            if self.stopping {
                return Ok(());
            }
        }
        self.last_mode[index] = Some(mode);
        if mode == WriteMode::Insert && object.has_bulk_insert() {
            let index = record.stream;
            self.batch_started[index].get_or_insert_with(Instant::now);
            self.batches[index].push(record);
            if self.batches[index].len() >= self.batch_size {
                self.flush_batch(index).await?;
            }
            return Ok(());
        }
        let key = record.key;
        let work = Work::Single {
            object,
            mode,
            record,
        };
        self.in_flight += 1;
        self.object_in_flight[index] += 1;
        let sent = match key {
            Some(key) => {
                let lane = (key % self.lanes.len() as u64) as usize;
                self.lanes[lane].send(work).await.is_ok()
            }
            None => self.shared.send(work).await.is_ok(),
        };
        anyhow::ensure!(sent, "a worker stopped unexpectedly");
        Ok(())
    }

    /// Sends `object`'s partial batches and waits until none of its work is in flight.
    async fn drain_object(
        &mut self,
        object: ObjectKind,
        outcomes: &mut mpsc::UnboundedReceiver<(ObjectKind, Outcome)>,
    ) -> anyhow::Result<()> {
        for stream in 0..self.batches.len() {
            if self.plan.streams[stream].object == object {
                self.flush_batch(stream).await?;
            }
        }
        while self.object_in_flight[object_index(object)] > 0 {
            let Some((done_object, outcome)) = outcomes.recv().await else {
                break;
            };
            self.settle(done_object, outcome)?;
            self.release_states()?;
        }
        Ok(())
    }

    async fn flush_batch(&mut self, stream: usize) -> anyhow::Result<()> {
        self.batch_started[stream] = None;
        if self.batches[stream].is_empty() {
            return Ok(());
        }
        let records = std::mem::take(&mut self.batches[stream]);
        let object = self.plan.streams[stream].object;
        self.in_flight += 1;
        self.object_in_flight[object_index(object)] += 1;
        let sent = self
            .shared
            .send(Work::Bulk { object, records })
            .await
            .is_ok();
        anyhow::ensure!(sent, "a worker stopped unexpectedly");
        Ok(())
    }

    fn commit(&mut self, done: Vec<worker::Committed>) -> anyhow::Result<()> {
        for committed in done {
            let segment = committed.record.segment;
            match committed.refusal {
                None => {
                    self.summary.written += 1;
                    self.ledger.commit(segment, false);
                }
                Some((status, message)) => {
                    let record = committed.record;
                    let rejection = Rejection {
                        line: record.line,
                        stream: Some(self.plan.streams[record.stream].name.clone()),
                        original: Original::Record(record.original),
                        reason: format!("ClientSuccess refused it: {message}"),
                        http_status: Some(status),
                    };
                    self.reject(&rejection)?;
                    self.ledger.commit(segment, true);
                }
            }
        }
        Ok(())
    }

    fn reject(&mut self, rejection: &Rejection) -> anyhow::Result<()> {
        self.summary.rejected += 1;
        self.rejects.store(RejectedEntry {
            stream: rejection.stream.as_deref(),
            line: rejection.line,
            original: &rejection.original,
            reason: &rejection.reason,
            http_status: rejection.http_status,
        })?;
        let stream = rejection
            .stream
            .as_deref()
            .map(|s| format!("stream `{s}`, "))
            .unwrap_or_default();
        let status = rejection
            .http_status
            .map(|s| format!(" (HTTP {s})"))
            .unwrap_or_default();
        let described = format!(
            "{stream}line {}: {}{status}",
            rejection.line, rejection.reason
        );
        if self.summary.first_reasons.len() < 5 {
            self.summary.first_reasons.push(described.clone());
        }
        let logged = self.summary.rejected;
        if !self.rejects.keeps_records() || logged <= REJECTION_LOG_LIMIT {
            self.out
                .log(LogLevel::Warn, format!("rejected record: {described}"))?;
        } else if logged == REJECTION_LOG_LIMIT + 1 {
            let path = self
                .rejects
                .path()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            self.out.log(
                LogLevel::Warn,
                format!("more than {REJECTION_LOG_LIMIT} records rejected; the rest are only in {path} and counted in the states"),
            )?;
        }
        Ok(())
    }

    fn release_states(&mut self) -> anyhow::Result<()> {
        let ready = self.ledger.release();
        if ready.is_empty() {
            return Ok(());
        }
        self.rejects.flush()?;
        for state in ready {
            self.out
                .emit(&crate::protocol::AirbyteMessage::State(state))?;
        }
        Ok(())
    }

    fn notice(&mut self, notice: String) -> io::Result<()> {
        if self.notices_logged < NOTICE_LOG_LIMIT {
            self.notices_logged += 1;
            self.out.log(LogLevel::Warn, notice)
        } else {
            self.notices_suppressed += 1;
            Ok(())
        }
    }

    fn log_progress(&mut self, what: &str, rate: f64) -> io::Result<()> {
        let suppressed = match self.notices_suppressed {
            0 => String::new(),
            n => format!(", {n} more retry notices not logged"),
        };
        let message = format!(
            "{what}: {} records read, {} written, {} rejected, {:.0} records/s, {} requests in flight, {} states held, {:.1} s elapsed{suppressed}",
            self.summary.records,
            self.summary.written,
            self.summary.rejected,
            rate,
            self.in_flight,
            self.ledger.held_states(),
            self.started.elapsed().as_secs_f64()
        );
        self.out.log(LogLevel::Info, message)
    }
}

fn object_index(object: ObjectKind) -> usize {
    match object {
        ObjectKind::Client => 0,
        ObjectKind::Contact => 1,
        ObjectKind::Contract => 2,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}
