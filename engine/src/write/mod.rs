//! `write`: stdin's records into batched writes, states echoed once committed.
//!
//! ```text
//! reader thread ──items──▶ coordinator ──work──▶ workers ──▶ Writer (the destination's:
//!  (decode, validate,       (ledger, batches,      │          its adaptive limit decides
//!   encode)                  keys in flight,       │          how many requests are out)
//!                            rejections, logs) ◀──outcomes
//! ```
//! Every channel but the outcome one is bounded, and record bytes between stdin and the API
//! are budgeted, so stdin is read only as fast as the API takes records and memory stays flat
//! whatever the input size or record width.

pub mod backlog;
pub mod budget;
pub mod ledger;
pub mod plan;
pub mod prepare;
pub mod rejects;
pub mod start;
pub mod tally;
pub mod worker;
pub mod writer;

use crate::catalog::{Object, WriteMode};
use crate::config::PipelineSettings;
use crate::error::{ConfigError, Fatal, TransientError};
use crate::output::Emitter;
use crate::protocol::{Lines, LogLevel};
use backlog::Backlog;
use budget::ByteBudget;
use ledger::Ledger;
use plan::Plan;
use prepare::{Item, Original, Prepared, Rejection};
use rejects::RejectStore;
use rustc_hash::FxHashMap;
use std::collections::VecDeque;
use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tally::Tally;
use tokio::sync::mpsc;
use worker::{Outcome, Settled, Work, Worker};
pub use writer::{Verdict, Writer};

/// A partial batch waits at most this long for more records before it is sent.
const MAX_BATCH_WAIT: Duration = Duration::from_millis(500);
const PROGRESS_EVERY: Duration = Duration::from_secs(10);
/// Decoded items buffered between the reader thread and the coordinator.
const INPUT_BUFFER: usize = 1024;
/// Items handed from the reader to the coordinator at once: one channel operation and one
/// turn of the coordinator's loop for many records.
const CHUNK: usize = 64;
/// Rejections logged one by one when a file keeps them all; past this only the count is logged.
const REJECTION_LOG_LIMIT: u64 = 1000;
const NOTICE_LOG_LIMIT: u64 = 100;
/// Work units (a batch or one record) that may wait for a worker before input pauses.
const MAX_WAITING: usize = 64;
/// Record bytes read but not yet written or rejected. With the request bodies built from
/// them, this keeps peak memory well under 64 MB whatever the records' width.
const RECORD_BYTES_BUDGET: usize = 12 << 20;
/// Workers per request slot of `max_concurrency`.
const WORKERS_PER_SLOT: usize = 8;
/// A bulk request's body stays under this (unless one record is wider): wide records make
/// smaller batches, so the bodies in flight stay small beside the record budget.
const MAX_BATCH_BYTES: usize = 1 << 20;
/// After SIGTERM or SIGINT, how long requests in flight may take to finish.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// How a sync ended.
#[derive(Debug, Default)]
pub struct Summary {
    pub records: u64,
    pub written: u64,
    pub rejected: u64,
    /// States not echoed because the sync was a dry run.
    pub states_held: u64,
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
                "{} record(s) were rejected and object_storage_config is None, so they are kept nowhere; \
                 every other record was written. First reasons: {}. Fix these records, or set object_storage_config \
                 to S3 (or Local) to keep rejected records and let the sync succeed",
                self.rejected,
                self.first_reasons.join(" | ")
            ))
            .into());
        }
        Ok(())
    }
}

enum Input {
    /// An item and what it took from the byte budget.
    Item(Item, usize),
    Failed(io::Error),
}

/// The reader thread: each line decoded, validated and handed on in chunks, as far as the
/// byte budget lets it read ahead.
fn read_input<O: Object>(
    input: impl Read,
    plan: &Plan<O>,
    budget: &ByteBudget,
    backlog: &Backlog,
    items: &mpsc::Sender<Vec<Input>>,
) {
    read_lines(input, plan, budget, backlog, items);
    backlog.end();
}

fn read_lines<O: Object>(
    input: impl Read,
    plan: &Plan<O>,
    budget: &ByteBudget,
    backlog: &Backlog,
    items: &mpsc::Sender<Vec<Input>>,
) {
    let mut lines = Lines::new(input);
    let mut chunk = Vec::with_capacity(CHUNK);
    // False once the coordinator has stopped listening.
    let hand_on = |chunk: &mut Vec<Input>| {
        chunk.is_empty()
            || items
                .blocking_send(std::mem::replace(chunk, Vec::with_capacity(CHUNK)))
                .is_ok()
    };
    while let Some(read) = lines.next_line() {
        let (number, text) = match read {
            Ok(line) => line,
            Err(e) => {
                chunk.push(Input::Failed(e));
                hand_on(&mut chunk);
                return;
            }
        };
        let mut item = prepare::prepare(plan, number, text);
        // Before waiting for bytes to come back, hand on the chunk: they may be in it.
        let Some(cost) = budget.acquire_or_else(item_size(&item), || hand_on(&mut chunk)) else {
            return;
        };
        if let Item::Record(record) = &mut item {
            record.cost = cost;
            backlog.read(plan.streams[record.stream].object.index(), 1);
        }
        chunk.push(Input::Item(item, cost));
        // With no more input read, the next line may keep the source waiting: what is held
        // goes now, so a slow source's records are not held back.
        if (chunk.len() >= CHUNK || !lines.has_buffered()) && !hand_on(&mut chunk) {
            return;
        }
    }
    hand_on(&mut chunk);
}

/// The bytes an item holds while it waits in the pipeline.
fn item_size(item: &Item) -> usize {
    match item {
        Item::Record(record) => record.size(),
        Item::Rejected(rejection) => rejection.size(),
        Item::State(_) | Item::BadState { .. } | Item::Ignored => 0,
    }
}

/// Where a sync's records go and what it hears while it runs.
pub struct Sink<W> {
    pub writer: Arc<W>,
    /// Retries, re-authentications and other events worth a WARN line, from the writer.
    pub notices: mpsc::UnboundedReceiver<String>,
    /// Names of signals that ask the sync to stop (SIGTERM, SIGINT): the first stops reading
    /// and lets requests in flight finish; a second stops at once.
    pub shutdown: mpsc::UnboundedReceiver<&'static str>,
}

/// Runs a sync: reads `input` to its end (or to a fatal error), hands records to the writer,
/// emits LOG and STATE messages.
pub async fn run<W: Writer>(
    settings: impl Into<PipelineSettings>,
    plan: Plan<W::Object>,
    sink: Sink<W>,
    input: impl Read + Send + 'static,
    out: &mut Emitter,
) -> anyhow::Result<Summary> {
    let Sink {
        writer,
        notices,
        shutdown,
    } = sink;
    let settings: PipelineSettings = settings.into();
    let rejects = RejectStore::open(&settings.rejects)?.keep_every_outcome(settings.every_outcome);
    let batch_limits = plan
        .streams
        .iter()
        .map(|s| writer.batch_limit(s.object, s.mode).max(1))
        .collect();
    let plan = Arc::new(plan);
    if settings.dry_run {
        out.log(
            LogLevel::Info,
            "dry run: existing records are read and compared with each row; nothing is written and no state is echoed",
        )?;
    }

    let (item_tx, items) = mpsc::channel(INPUT_BUFFER / CHUNK);
    let reader_plan = plan.clone();
    let budget = ByteBudget::new(RECORD_BYTES_BUDGET);
    let reader_budget = budget.clone();
    let backlog = Backlog::new(W::Object::ALL.len());
    writer.attach(backlog.clone());
    let reader_backlog = backlog.clone();
    std::thread::Builder::new()
        .name("reader".into())
        .spawn(move || {
            read_input(
                input,
                &reader_plan,
                &reader_budget,
                &reader_backlog,
                &item_tx,
            )
        })?;

    // The limit (adaptive, in the writer) decides how many requests are out at once. A worker
    // waiting out a retry's backoff holds no request slot, so there are more workers than
    // slots: a few in backoff must not starve the others.
    let workers = settings.max_concurrency.max(1) * WORKERS_PER_SLOT;
    let (outcome_tx, outcomes) = mpsc::unbounded_channel();
    let (shared_tx, shared_rx) = async_channel::bounded(workers * 2);
    let stop = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::with_capacity(workers);
    for _ in 0..workers {
        let worker = Worker {
            writer: writer.clone(),
            work: shared_rx.clone(),
            outcomes: outcome_tx.clone(),
            stop: stop.clone(),
        };
        handles.push(tokio::spawn(worker.run()));
    }
    drop(outcome_tx);

    let mut coordinator = Coordinator {
        plan: plan.clone(),
        batch_limits,
        out,
        ledger: Ledger::new(plan.streams.len()),
        rejects,
        batches: (0..plan.streams.len()).map(|_| Vec::new()).collect(),
        batch_started: vec![None; plan.streams.len()],
        batch_bytes: vec![0; plan.streams.len()],
        waiting: VecDeque::new(),
        busy_keys: FxHashMap::default(),
        held_by_key: 0,
        shared: shared_tx,
        writer: writer.clone(),
        in_flight: 0,
        object_in_flight: vec![0; W::Object::ALL.len()],
        last_mode: vec![None; W::Object::ALL.len()],
        summary: Summary::default(),
        notices_logged: 0,
        notices_suppressed: 0,
        started: Instant::now(),
        budget,
        breaker: Breaker::new(settings.rejection_breaker_records),
        tallies: vec![Tally::default(); plan.streams.len()],
        backlog,
        dry_run: settings.dry_run,
        stop,
        interrupted: None,
        input_failed: None,
    };
    let ended = coordinator.run(items, outcomes, notices, shutdown).await?;
    let Coordinator {
        shared,
        mut summary,
        rejects,
        ..
    } = coordinator;
    drop(shared);
    for handle in handles {
        if ended == Ended::AtOnce {
            handle.abort();
        } else {
            handle.await?;
        }
    }
    // A dry run reports rejections; it keeps nothing it must fail for.
    summary.rejected_nowhere = summary.rejected > 0
        && !rejects.keeps_records()
        && summary.fatal.is_none()
        && !settings.dry_run;
    Ok(summary)
}

type Outcomes<O> = mpsc::UnboundedReceiver<Settled<O>>;

/// How the coordinator's loop ended: with nothing left in flight, or at once (a second signal,
/// or the grace period over) with requests still out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    Drained,
    AtOnce,
}

/// Trips when every one of the first records of a sync is rejected for one and the same
/// reason: that is a mapping or configuration mistake, not bad data, and no state may
/// checkpoint past those records.
#[derive(Debug)]
struct Breaker {
    limit: u64,
    rejected: u64,
    reason: Option<String>,
    /// Still possible to trip: nothing was written and every rejection had the same reason.
    armed: bool,
}

impl Breaker {
    fn new(limit: u64) -> Self {
        Self {
            limit,
            rejected: 0,
            reason: None,
            armed: limit > 0,
        }
    }

    fn written(&mut self) {
        self.armed = false;
    }

    /// Returns true when this rejection trips it.
    fn rejected(&mut self, reason: &str) -> bool {
        if !self.armed {
            return false;
        }
        match &self.reason {
            Some(first) if first != reason => {
                self.armed = false;
                return false;
            }
            Some(_) => {}
            None => self.reason = Some(reason.to_owned()),
        }
        self.rejected += 1;
        self.rejected >= self.limit
    }

    fn error(&self) -> ConfigError {
        ConfigError::new(format!(
            "the first {} record(s) of this sync were all rejected for the same reason, which points at the \
             field mapping or the configuration rather than at the data: {}. No state was emitted for them. \
             Fix the mapping, or raise rejection_breaker_records (0 turns this check off)",
            self.rejected,
            self.reason.as_deref().unwrap_or_default()
        ))
    }
}

struct Coordinator<'a, W: Writer> {
    plan: Arc<Plan<W::Object>>,
    /// Per stream: records one write may take (1: no batching).
    batch_limits: Vec<usize>,
    out: &'a mut Emitter,
    ledger: Ledger,
    rejects: RejectStore,
    batches: Vec<Vec<Prepared>>,
    batch_started: Vec<Option<Instant>>,
    /// Body bytes of each open batch: a bulk request stays under `MAX_BATCH_BYTES`.
    batch_bytes: Vec<usize>,
    /// Work ready for a worker but not yet taken (the queue to the workers is full). Handing
    /// work over never blocks the coordinator; input pauses while too much work waits.
    waiting: VecDeque<Work<W::Object>>,
    /// Keys with work in flight, each with the later work of the same key held back until
    /// it settles: records of one key are written in input order, and a key in backoff holds
    /// back only itself.
    busy_keys: FxHashMap<u64, VecDeque<Work<W::Object>>>,
    /// Work units held in `busy_keys`, counted so the reader's check costs nothing per record.
    held_by_key: usize,
    shared: async_channel::Sender<Work<W::Object>>,
    writer: Arc<W>,
    /// Work units handed over or waiting, not yet settled.
    in_flight: usize,
    /// The same per object, and the mode last dispatched for it: when an object's mode
    /// changes (an upsert after inserts, say), its earlier work drains first, so records of
    /// the same object and key keep their input order across streams.
    object_in_flight: Vec<usize>,
    last_mode: Vec<Option<WriteMode>>,
    summary: Summary,
    notices_logged: u64,
    notices_suppressed: u64,
    started: Instant,
    budget: ByteBudget,
    breaker: Breaker,
    /// Per configured stream: what became of its rows.
    tallies: Vec<Tally>,
    /// Rows read and not yet settled, per object, as the writer sees them.
    backlog: Backlog,
    /// Reads only, no write, no STATE echoed.
    dry_run: bool,
    /// Tells workers to skip work they have not started.
    stop: Arc<AtomicBool>,
    /// The signal that stopped the sync, and when its grace period ends.
    interrupted: Option<(&'static str, Instant)>,
    /// Standard input failed: what was read is still written, then the sync fails.
    input_failed: Option<io::Error>,
}

impl<W: Writer> Coordinator<'_, W> {
    async fn run(
        &mut self,
        mut items: mpsc::Receiver<Vec<Input>>,
        mut outcomes: Outcomes<W::Object>,
        mut notices: mpsc::UnboundedReceiver<String>,
        mut shutdown: mpsc::UnboundedReceiver<&'static str>,
    ) -> anyhow::Result<Ended> {
        let mut reading = true;
        let mut listening = true;
        let mut progress =
            tokio::time::interval_at(tokio::time::Instant::now() + PROGRESS_EVERY, PROGRESS_EVERY);
        let mut last_progress = (Instant::now(), 0u64);
        let mut ended = Ended::Drained;
        loop {
            if self.stopping() {
                if reading {
                    reading = false;
                    items.close();
                    self.budget.close();
                }
                self.abandon_waiting();
            }
            if !reading && self.in_flight == 0 {
                break;
            }
            let deadline = self.next_batch_deadline();
            let grace_end = self.interrupted.map(|(_, end)| end);
            let room = self.waiting_work() < MAX_WAITING;
            tokio::select! {
                biased;
                signal = shutdown.recv(), if listening => match signal {
                    Some(name) if self.interrupted.is_none() => self.interrupt(name)?,
                    Some(name) => {
                        self.out.log(LogLevel::Warn, format!("{name} again: stopping at once"))?;
                        ended = Ended::AtOnce;
                        break;
                    }
                    None => listening = false,
                },
                _ = sleep_until(grace_end), if grace_end.is_some() => {
                    self.out.log(LogLevel::Warn, format!(
                        "the {} s grace period is over: stopping with {} requests in flight",
                        SHUTDOWN_GRACE.as_secs(), self.in_flight
                    ))?;
                    ended = Ended::AtOnce;
                    break;
                }
                Some(settled) = outcomes.recv() => self.settle(settled)?,
                Some(notice) = notices.recv() => self.notice(notice)?,
                input = items.recv(), if reading && room => match input {
                    Some(chunk) => for input in chunk {
                        if self.stopping() {
                            break;
                        }
                        match input {
                            Input::Item(item, cost) => self.accept(item, cost, &mut outcomes).await?,
                            Input::Failed(e) => {
                                // What was read is still written and checkpointed; the sync
                                // then fails.
                                self.out.log(LogLevel::Error, format!("could not read standard input: {e}; writing what was read, then stopping"))?;
                                self.input_failed = Some(e);
                                reading = false;
                                self.flush_all_batches();
                            }
                        }
                    },
                    None => {
                        reading = false;
                        if !self.stopping() {
                            self.flush_all_batches();
                        }
                    }
                },
                _ = sleep_until(deadline), if deadline.is_some() && !self.stopping() => {
                    let now = Instant::now();
                    for stream in 0..self.batches.len() {
                        if self.batch_started[stream].is_some_and(|t| now >= t + MAX_BATCH_WAIT) {
                            self.flush_batch(stream);
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
        if ended == Ended::Drained
            && self.summary.fatal.is_none()
            && self.interrupted.is_none()
            && self.input_failed.is_none()
            && self.breaker.armed
            && self.breaker.rejected > 0
            && self.breaker.rejected == self.summary.records
        {
            self.summary.fatal = Some(Fatal::Config(self.breaker.error()));
        }
        self.release_states()?;
        for (stream, tally) in self.plan.streams.iter().zip(&self.tallies) {
            self.out
                .log(LogLevel::Info, tally.line(&stream.name, self.dry_run))?;
        }
        if self.dry_run {
            self.out.log(
                LogLevel::Info,
                format!(
                    "dry run: nothing was written, and the {} state(s) the source sent were not echoed, so its cursor does not move",
                    self.summary.states_held
                ),
            )?;
        }
        let elapsed = self.started.elapsed().as_secs_f64().max(1e-9);
        let rate = (self.summary.written + self.summary.rejected) as f64 / elapsed;
        self.log_progress("sync finished", rate)?;
        self.conclude()?;
        Ok(ended)
    }

    /// The first SIGTERM or SIGINT: read no more, send nothing new, let requests in flight
    /// finish within the grace period.
    fn interrupt(&mut self, name: &'static str) -> io::Result<()> {
        self.interrupted = Some((name, Instant::now() + SHUTDOWN_GRACE));
        self.stop.store(true, Ordering::Relaxed);
        self.writer.stop();
        self.out.log(
            LogLevel::Warn,
            format!(
                "{name} received: reading no more input and waiting up to {} s for {} requests in flight; a second signal stops at once",
                SHUTDOWN_GRACE.as_secs(),
                self.in_flight
            ),
        )
    }

    /// Turns a stop by signal or by a failed stdin into the sync's fatal error, after saying
    /// what was left unsent.
    fn conclude(&mut self) -> io::Result<()> {
        if self.summary.fatal.is_some() {
            return Ok(());
        }
        let unsent = self.summary.records - self.summary.written - self.summary.rejected;
        let cause = match (&self.interrupted, &self.input_failed) {
            (Some((name, _)), _) => format!("the sync was stopped by {name}"),
            (None, Some(e)) => format!("standard input could not be read ({e})"),
            (None, None) => return Ok(()),
        };
        let message = format!(
            "{cause}: {} records were written and {} rejected; {unsent} records read were not sent, and records not yet read were not read. \
             Every state whose records were committed was emitted, so the next attempt resumes from the last one",
            self.summary.written, self.summary.rejected
        );
        self.out.log(LogLevel::Warn, message.clone())?;
        self.summary.fatal = Some(Fatal::Transient(TransientError(message)));
        Ok(())
    }

    /// The ledger's id of a stream a line or a state names: its plan index when the catalog
    /// has it.
    fn stream_id(&mut self, name: &str, namespace: Option<&str>) -> usize {
        self.plan
            .find(name, namespace)
            .unwrap_or_else(|| self.ledger.stream_id(name, namespace))
    }

    fn flush_all_batches(&mut self) {
        for stream in 0..self.batches.len() {
            self.flush_batch(stream);
        }
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
        cost: usize,
        outcomes: &mut Outcomes<W::Object>,
    ) -> anyhow::Result<()> {
        match item {
            Item::Record(mut record) => {
                self.summary.records += 1;
                record.segment = self.ledger.receive(record.stream);
                return self.route(record, outcomes).await;
            }
            Item::Rejected(rejection) => {
                self.summary.records += 1;
                let stream = match &rejection.stream {
                    Some(name) => self.stream_id(name, rejection.namespace.as_deref()),
                    None => self.ledger.unattributed(),
                };
                let segment = self.ledger.receive(stream);
                self.reject(&rejection)?;
                self.ledger.commit(segment, stream, true);
            }
            Item::State(state) => {
                let covers = ledger::covers(&state, |name, namespace| self.stream_id(name, namespace));
                self.ledger.receive_state(state, covers);
            }
            Item::BadState { line, reason } => self.out.log(
                LogLevel::Warn,
                format!("line {line}: a STATE that is not a valid Airbyte state ({reason}) was not echoed; later states are echoed as usual"),
            )?,
            Item::Ignored => {}
        }
        self.budget.release(cost);
        Ok(())
    }

    async fn route(
        &mut self,
        record: Prepared,
        outcomes: &mut Outcomes<W::Object>,
    ) -> anyhow::Result<()> {
        let stream = &self.plan.streams[record.stream];
        let (object, mode) = (stream.object, stream.mode);
        let index = object.index();
        if self.last_mode[index].is_some_and(|last| last != mode) {
            self.drain_object(object, outcomes).await?;
            if self.stopping() {
                return Ok(());
            }
        }
        self.last_mode[index] = Some(mode);
        if record.after_parent {
            // It names a parent of this sync still on its way, which must land first, or a
            // lookup would not find it; and the parent's own parents before it.
            let mut ancestor = object.parent();
            while let Some(parent) = ancestor {
                let batched = (0..self.batches.len())
                    .any(|s| self.plan.streams[s].object == parent && !self.batches[s].is_empty());
                if batched || self.object_in_flight[parent.index()] > 0 {
                    self.drain_object(parent, outcomes).await?;
                    if self.stopping() {
                        return Ok(());
                    }
                }
                ancestor = parent.parent();
            }
        }
        let stream = record.stream;
        if self.batch_limits[stream] > 1 && record.key.is_none() {
            self.batch_started[stream].get_or_insert_with(Instant::now);
            let bytes = record.body().len();
            if self.batch_bytes[stream] + bytes > MAX_BATCH_BYTES {
                self.flush_batch(stream);
                self.batch_started[stream] = Some(Instant::now());
            }
            self.batch_bytes[stream] += bytes;
            self.batches[stream].push(record);
            if self.batches[stream].len() >= self.batch_limits[stream] {
                self.flush_batch(stream);
            }
            return Ok(());
        }
        let key = record.key;
        let records = vec![record];
        self.dispatch(Work {
            object,
            mode,
            key,
            records,
        });
        Ok(())
    }

    /// Sends `object`'s partial batches and waits until none of its work is in flight.
    async fn drain_object(
        &mut self,
        object: W::Object,
        outcomes: &mut Outcomes<W::Object>,
    ) -> anyhow::Result<()> {
        for stream in 0..self.batches.len() {
            if self.plan.streams[stream].object == object {
                self.flush_batch(stream);
            }
        }
        while self.object_in_flight[object.index()] > 0 && !self.stopping() {
            let Some(settled) = outcomes.recv().await else {
                break;
            };
            self.settle(settled)?;
            self.release_states()?;
        }
        Ok(())
    }

    fn flush_batch(&mut self, stream: usize) {
        self.batch_started[stream] = None;
        self.batch_bytes[stream] = 0;
        if self.batches[stream].is_empty() {
            return;
        }
        let records = std::mem::take(&mut self.batches[stream]);
        let (object, mode) = (
            self.plan.streams[stream].object,
            self.plan.streams[stream].mode,
        );
        self.dispatch(Work {
            object,
            mode,
            key: None,
            records,
        });
    }

    /// Queues work for the workers, unless work of the same key is in flight: then it waits
    /// for that work to settle.
    fn dispatch(&mut self, work: Work<W::Object>) {
        self.in_flight += 1;
        self.object_in_flight[work.object.index()] += 1;
        if let Some(key) = work.key {
            match self.busy_keys.get_mut(&key) {
                Some(held) => {
                    held.push_back(work);
                    self.held_by_key += 1;
                    return;
                }
                None => {
                    self.busy_keys.insert(key, VecDeque::new());
                }
            }
        }
        self.waiting.push_back(work);
        self.pump();
    }

    /// Work of `key` settled: the next work of that key, if any, may go.
    fn key_settled(&mut self, key: Option<u64>) {
        let Some(key) = key else { return };
        match self.busy_keys.get_mut(&key).and_then(VecDeque::pop_front) {
            Some(next) => {
                self.held_by_key -= 1;
                self.waiting.push_back(next);
                self.pump();
            }
            None => {
                self.busy_keys.remove(&key);
            }
        }
    }

    /// Work not yet taken by a worker, held back by its key or queued.
    fn waiting_work(&self) -> usize {
        self.waiting.len() + self.held_by_key
    }

    /// Moves waiting work into the workers' queue while it has room.
    fn pump(&mut self) {
        while let Some(work) = self.waiting.pop_front() {
            if let Err(refused) = self.shared.try_send(work) {
                self.waiting.push_front(refused.into_inner());
                break;
            }
        }
    }

    /// A fatal error or a signal stops the sync: no new input, no new work.
    fn stopping(&self) -> bool {
        self.summary.fatal.is_some() || self.interrupted.is_some()
    }

    /// The sync is stopping: work not yet handed to a worker will not be attempted.
    fn abandon_waiting(&mut self) {
        self.held_by_key = 0;
        let held = self.busy_keys.values_mut().flat_map(|held| held.drain(..));
        let abandoned: Vec<Work<W::Object>> = self.waiting.drain(..).chain(held).collect();
        for work in abandoned {
            self.in_flight -= 1;
            self.object_in_flight[work.object.index()] -= 1;
            self.budget.release(work.cost());
        }
    }

    /// One work unit came back.
    fn settle(&mut self, settled: Settled<W::Object>) -> anyhow::Result<()> {
        let Settled {
            object,
            key,
            cost,
            outcome,
        } = settled;
        self.budget.release(cost);
        self.in_flight -= 1;
        self.object_in_flight[object.index()] -= 1;
        match outcome {
            Outcome::Done(done) => self.commit(done)?,
            Outcome::Failed(fatal) => {
                if self.summary.fatal.is_none() {
                    self.summary.fatal = Some(fatal);
                    // Requests of other work still in flight (their retries, look-ups) are
                    // not sent: the sync ends now, not when each has used its retries.
                    self.writer.stop();
                }
            }
            Outcome::Skipped => {}
        }
        self.key_settled(key);
        self.pump();
        Ok(())
    }

    fn commit(&mut self, done: Vec<worker::Committed>) -> anyhow::Result<()> {
        for committed in done {
            let segment = committed.record.segment;
            self.backlog
                .settled(self.plan.streams[committed.record.stream].object.index());
            match committed.verdict {
                Verdict::Refused { status, message } => {
                    let record = committed.record;
                    let stream = &self.plan.streams[record.stream];
                    let rejection = Rejection {
                        line: record.line,
                        stream: Some(stream.name.clone()),
                        namespace: stream.namespace.clone(),
                        original: Original::Record(record.original),
                        reason: message,
                        http_status: status,
                    };
                    self.reject(&rejection)?;
                    self.ledger.commit(segment, record.stream, true);
                }
                written => {
                    self.summary.written += 1;
                    self.breaker.written();
                    let record = &committed.record;
                    self.ledger.commit(segment, record.stream, false);
                    self.tallies[record.stream].count(&written);
                    self.rejects.store_outcome(
                        &self.plan.streams[record.stream].name,
                        record.line,
                        &record.original,
                        &written,
                        self.dry_run,
                    )?;
                }
            }
        }
        Ok(())
    }

    fn reject(&mut self, rejection: &Rejection) -> anyhow::Result<()> {
        self.summary.rejected += 1;
        if let Some(stream) = rejection
            .stream
            .as_deref()
            .and_then(|name| self.plan.find(name, rejection.namespace.as_deref()))
        {
            self.tallies[stream].rejected(&rejection.reason);
        }
        if self.breaker.rejected(&rejection.reason) && self.summary.fatal.is_none() {
            self.summary.fatal = Some(Fatal::Config(self.breaker.error()));
            self.stop.store(true, Ordering::Relaxed);
        }
        self.rejects.store(rejection)?;
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
            let path = self.rejects.location().unwrap_or_default();
            self.out.log(
                LogLevel::Warn,
                format!("more than {REJECTION_LOG_LIMIT} records rejected; the rest are only in {path} and counted in the states"),
            )?;
        }
        Ok(())
    }

    fn release_states(&mut self) -> anyhow::Result<()> {
        // While every record so far was rejected for one reason, a state could checkpoint
        // past a mapping mistake: hold them until the breaker has decided.
        if self.breaker.armed && self.breaker.rejected > 0 {
            return Ok(());
        }
        let ready = self.ledger.release();
        if ready.is_empty() {
            return Ok(());
        }
        self.rejects.flush()?;
        if self.dry_run {
            self.summary.states_held += ready.len() as u64;
            return Ok(());
        }
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
        let limit = self
            .writer
            .concurrency_limit()
            .map(|l| format!(" (concurrency limit {l})"))
            .unwrap_or_default();
        // The sync's length is unknown (stdin is a stream): what is left is what was read and
        // not yet settled, at the rate of the last interval.
        let waiting = self.summary.records - self.summary.written - self.summary.rejected;
        let left = match (waiting, rate > 0.0) {
            (0, _) => String::new(),
            (n, true) => format!(
                ", {n} read and waiting: ~{:.0} s at this rate",
                n as f64 / rate
            ),
            (n, false) => format!(", {n} read and waiting"),
        };
        let spent = self
            .writer
            .progress(self.summary.written + self.summary.rejected, waiting)
            .map(|s| format!("; {s}"))
            .unwrap_or_default();
        let message = format!(
            "{what}: {} records read, {} written, {} rejected, {:.0} records/s{left}, {} work units in flight{limit}, {} states held, {:.1} s elapsed{suppressed}{spent}",
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

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}
