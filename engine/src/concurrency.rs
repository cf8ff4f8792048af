//! Adaptive request concurrency: how many requests may be in flight, learned from the answers
//! (the idea of Vector's ARC). Each attempt is timed; once per mean round trip the limit grows
//! while answers come back fast and clean (doubling until the first sign of pressure, then one
//! at a time) and shrinks on pressure: halved on a 429, cut by a tenth when many answers of a
//! window are 5xx, timeouts or dropped connections, or its round trips are far above the mean.
//! After a 429 the limit stays at or under the level that caused it until the API has been
//! quiet for a while, so it does not keep knocking.
//!
//! A 429 says one of two things: too many requests in flight (a cap), or too many in a period
//! (a budget). The first 429 of a burst halves the limit, lets the requests already out
//! finish, then sends one probe alone. A clean probe means a cap: the halved limit stays, and
//! only the throttled requests wait their `Retry-After`. A throttled probe means a budget:
//! every new request pauses for the `Retry-After`, shared by all workers, so the API sees one client
//! backing off, and what the API took since the sync started (or since the last pause), over
//! at least the `Retry-After`, becomes a pace (slightly under it) that requests then keep,
//! raised a little after each quiet spell. So a short sync pays for one burst, not for a
//! limit halved down to one a pause at a time.

use rand::RngExt;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// What one attempt's answer says about the API's load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// A timely answer, success or a refusal of the content.
    Clean,
    /// 429: the API said how much it takes.
    Throttled,
    /// A 5xx, a timeout, a dropped connection.
    Strained,
}

/// Multiplicative decrease on a 5xx, a timeout or a slow answer.
const STRAIN_DECREASE: f64 = 0.9;
/// A window is strained when at least this share of its answers were 5xx, timeouts or dropped
/// connections: a stray error among many clean answers is bad luck, not load.
const STRAIN_SHARE: f64 = 0.25;
/// Nor is one error in a small window.
const MIN_STRAINED: u32 = 2;
/// The limit a sync starts at, before the answers say more: two, so the start-up requests
/// (sent at once) stay under an API that takes two in flight; slow start doubles it per round
/// trip (4 gave a 1 s pause at the start of every sync against such an API).
const INITIAL_LIMIT: usize = 2;
/// Slow start doubles up to this limit, then grows by half per round trip: the requests a
/// round trip carries past an unknown budget all come back 429 together, so the last steps
/// before a budget is found are kept smaller (at 50 ms, doubling on to 16 met a budget of
/// 20 a second with ~28 requests out; 12 with ~16).
const SLOW_START_GENTLER: usize = 8;
/// A round trip this many times the mean counts as strain.
const SLOW_RTT: f64 = 2.0;
/// The limit stays at or under the level pressure was seen at for this long.
const QUIET_BEFORE_PROBING: Duration = Duration::from_secs(30);
/// Weight of the newest window in the moving average of round trips.
const RTT_WEIGHT: f64 = 0.4;
/// Shortest window, so a very fast API does not adjust per request.
const MIN_WINDOW: Duration = Duration::from_millis(5);
/// The pace kept is this share of the rate the API answered cleanly before its 429.
const RATE_MARGIN: f64 = 0.995;
/// After each quiet spell of `RATE_QUIET` the pace is raised by this share, to find a budget
/// that grew. Budgets change seldom, and each probe that finds none costs a 429 and a pause.
const RATE_PROBE: f64 = 1.025;
const RATE_QUIET: Duration = Duration::from_secs(120);
/// Clean answers a known budget's pace is relearned from, at the least.
const KNOWN_BUDGET_SAMPLE: u64 = 50;
/// The period a budget that no one published is assumed to count over.
const BUDGET_PERIOD: Duration = Duration::from_secs(60);
/// Clean answers of the last period a gentle limiter needs to read a budget from its 429.
const GENTLE_SAMPLE: usize = 20;
/// A gentle pace grows by this factor...
const GENTLE_GROWTH: f64 = 1.25;
/// ...after each this long of clean answers.
const GENTLE_STEP: Duration = Duration::from_secs(1);
/// How far a pace may catch up on slots it missed (its timer woke late, or it was idle): a
/// few requests at a high rate, none at a low one.
const PACE_CATCH_UP: Duration = Duration::from_millis(20);
/// A shared 429 pause lasts its Retry-After plus up to this share of it, so that workers
/// (and other clients) do not all come back at the same instant.
const PAUSE_JITTER: f64 = 0.05;

/// The 429s of requests sent before a cut, and the probe that says what they meant.
#[derive(Debug, Clone, Copy)]
struct Burst {
    /// Requests numbered from here went out after the cut: the first is the probe.
    probe_from: u64,
    /// When its first 429 came: a budget's shared pause runs from here.
    first_throttled: Instant,
    /// The limit to go on with: half the old one. (The number in flight when the throttled
    /// request went out says less: the API may still count requests whose answers are read.)
    resume_limit: usize,
}

/// What a released answer asks of its request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throttle {
    /// Not a 429.
    None,
    /// A 429 explained by requests in flight: this request waits its `Retry-After` alone.
    Alone,
    /// A 429 of a budget: every request waits (the pause starts in
    /// [`Adaptive::release_after`], or by [`Adaptive::pause`]).
    Everyone,
}

#[derive(Debug)]
struct State {
    limit: usize,
    in_flight: usize,
    /// Requests sent so far; each permit carries its number.
    sent: u64,
    /// When the first request went out: the start of the first budget measurement.
    first_sent: Option<Instant>,
    burst: Option<Burst>,
    /// Where the next shared pause counts from, when not from its own 429.
    pause_from: Option<Instant>,
    /// Doubling until the first pressure.
    slow_start: bool,
    rtt_mean: Option<f64>,
    window_started: Instant,
    window_rtt_sum: f64,
    window_samples: u32,
    window_strained: u32,
    /// Whether the limit was reached in this window: growing is only worth it when used.
    window_full: bool,
    /// The limit pressure was last seen at, and when; no growth past it until quiet.
    pressure: Option<(usize, Instant)>,
    /// When the limit was last cut: one cut per window, however many answers said so.
    last_cut: Option<Instant>,
    paused_until: Option<Instant>,
    /// The last shared pause (its end and length), and the clean answers since it ended (or
    /// since the first request, before any pause).
    last_pause: Option<(Instant, Duration)>,
    clean_since_pause: u64,
    /// A learned rate budget: requests per second, the next start it allows, when last set.
    pace: Option<(f64, Instant, Instant)>,
    /// The API's rate budget is known (a published one, or the user's): requests keep it
    /// from the first, and a 429 is a budget's, never probed as a cap.
    known_budget: bool,
    /// A pace the limiter never goes above: a budget the user set for a shared account, not
    /// to be probed past.
    ceiling: Option<f64>,
    /// A gentle start: the pace grows by `GENTLE_GROWTH` each `GENTLE_STEP` of clean answers
    /// (from when it last grew), until the first 429 says where the budget is.
    gentle_since: Option<Instant>,
    /// A gentle limiter's clean answers of the last `BUDGET_PERIOD`: at its first 429 they
    /// say the budget (an API that publishes none most likely counts a minute).
    recent_clean: Option<std::collections::VecDeque<Instant>>,
}

impl State {
    /// How often the limit is judged: once per mean round trip, never more often than
    /// `MIN_WINDOW`.
    fn window(&self) -> Duration {
        self.rtt_mean
            .map_or(MIN_WINDOW, Duration::from_secs_f64)
            .max(MIN_WINDOW)
    }
}

pub struct Adaptive {
    max: usize,
    state: Mutex<State>,
    changed: Notify,
    /// Slots go first come, first served: only the task holding this (a fair lock) waits for
    /// one. Without it, a request just ready could take a slot ahead of one that has waited
    /// since long before; one unlucky request could wait minutes, and with it every STATE
    /// after its records.
    turn: tokio::sync::Mutex<()>,
    /// Set when the sync stops: no request waiting for a slot gets one.
    stopped: std::sync::atomic::AtomicBool,
    stopping: Notify,
}

/// A request slot; give it back with [`Adaptive::release`]. One dropped without that (its
/// request cancelled: a probe whose sibling failed) gives its slot back with no verdict, so no
/// slot is lost for the rest of the sync.
pub struct Permit<'a> {
    started: Instant,
    limiter: &'a Adaptive,
    released: bool,
    /// Its number among the requests sent.
    seq: u64,
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.released {
            let mut state = self.limiter.lock();
            state.in_flight = state.in_flight.saturating_sub(1);
            drop(state);
            self.limiter.changed.notify_one();
        }
    }
}

impl Adaptive {
    /// A limit that starts at a few requests and never exceeds `max`.
    pub fn new(max: usize) -> Self {
        let max = max.max(1);
        Self {
            max,
            state: Mutex::new(State {
                limit: INITIAL_LIMIT.min(max),
                in_flight: 0,
                sent: 0,
                first_sent: None,
                burst: None,
                pause_from: None,
                slow_start: true,
                rtt_mean: None,
                window_started: Instant::now(),
                window_rtt_sum: 0.0,
                window_samples: 0,
                window_strained: 0,
                window_full: false,
                pressure: None,
                last_cut: None,
                paused_until: None,
                last_pause: None,
                clean_since_pause: 0,
                pace: None,
                known_budget: false,
                ceiling: None,
                gentle_since: None,
                recent_clean: None,
            }),
            changed: Notify::new(),
            turn: tokio::sync::Mutex::new(()),
            stopped: std::sync::atomic::AtomicBool::new(false),
            stopping: Notify::new(),
        }
    }

    /// A limiter that also keeps a known rate budget, `per_second` requests a second, from the
    /// first request; a 429 still pauses everyone and lowers the pace to what the API took.
    pub fn with_budget(max: usize, per_second: f64) -> Self {
        let limiter = Self::new(max);
        {
            let mut state = limiter.lock();
            let now = Instant::now();
            state.pace = Some((per_second.max(0.01), now, now));
            state.known_budget = true;
        }
        limiter
    }

    /// [`Self::with_budget`] where the budget is a ceiling: the pace is never raised past
    /// `per_second` to find a budget that grew (others share the account's, and the user said
    /// how much of it is this sync's); a 429 may still lower it.
    pub fn with_ceiling(max: usize, per_second: f64) -> Self {
        let limiter = Self::with_budget(max, per_second);
        limiter.lock().ceiling = Some(per_second.max(0.01));
        limiter
    }

    /// A limiter for an API that publishes no budget and asks to be treated gently: one
    /// request in flight and `per_second` a second at first, both growing while answers stay
    /// fast and clean (the pace by a quarter each second), until a 429 or a slow answer says
    /// where the limit is.
    pub fn gentle(max: usize, per_second: f64) -> Self {
        let limiter = Self::new(max);
        {
            let mut state = limiter.lock();
            let now = Instant::now();
            state.limit = 1;
            state.pace = Some((per_second.max(0.01), now, now));
            state.gentle_since = Some(now);
            state.recent_clean = Some(std::collections::VecDeque::new());
        }
        limiter
    }

    /// The sync is stopping: requests waiting for a slot are not sent (they get `None` from
    /// [`Adaptive::acquire_unless_stopped`]); those already out finish.
    pub fn stop(&self) {
        self.stopped
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.stopping.notify_waiters();
    }

    /// Waits `wait`, or less once the sync is stopping; `false` when it stopped.
    pub async fn sleep_unless_stopped(&self, wait: Duration) -> bool {
        let stopping = self.stopping.notified();
        tokio::pin!(stopping);
        if self.stopped.load(std::sync::atomic::Ordering::SeqCst) {
            return false;
        }
        tokio::select! {
            () = tokio::time::sleep(wait) => true,
            () = &mut stopping => false,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The limit in use now.
    pub fn limit(&self) -> usize {
        self.lock().limit
    }

    /// The learned rate budget, in requests per second, if any.
    pub fn pace(&self) -> Option<f64> {
        self.lock().pace.map(|(rate, _, _)| rate)
    }

    /// Waits for a free slot and for any shared pause to end, behind the requests that
    /// asked before.
    pub async fn acquire(&self) -> Permit<'_> {
        self.acquire_inner(false)
            .await
            .expect("only a stoppable wait ends without a slot")
    }

    /// A slot, or `None` once the sync is stopping (see [`Adaptive::stop`]).
    pub async fn acquire_unless_stopped(&self) -> Option<Permit<'_>> {
        self.acquire_inner(true).await
    }

    /// Waits for a slot: the turn, then a free slot outside any pause or pace. A stoppable
    /// wait gives up at [`Adaptive::stop`]; a slot free at once costs no more than a flag.
    async fn acquire_inner(&self, stoppable: bool) -> Option<Permit<'_>> {
        // Created before the flag is read: it sees any stop after, polled or not.
        let stopping = self.stopping.notified();
        tokio::pin!(stopping);
        if stoppable && self.stopped.load(std::sync::atomic::Ordering::SeqCst) {
            return None;
        }
        let _turn = if stoppable {
            tokio::select! {
                biased;
                turn = self.turn.lock() => turn,
                () = &mut stopping => return None,
            }
        } else {
            self.turn.lock().await
        };
        loop {
            let notified = self.changed.notified();
            let wait_until = {
                let mut state = self.lock();
                let now = Instant::now();
                let paced = state
                    .pace
                    .map(|(_, next, _)| next)
                    .filter(|&next| next > now);
                match state.paused_until.filter(|&until| until > now).or(paced) {
                    Some(until) => Some(until),
                    None if state.in_flight < state.limit => {
                        state.in_flight += 1;
                        if state.in_flight >= state.limit {
                            state.window_full = true;
                        }
                        if let Some((rate, next, _)) = &mut state.pace {
                            // From the slot's own time, not from now: a timer wakes up to a
                            // millisecond late, which at 5 ms a request would cost a sixth of
                            // the budget. Slots missed while idle are not saved up past
                            // `PACE_CATCH_UP`.
                            *next = (*next).max(now.checked_sub(PACE_CATCH_UP).unwrap_or(now))
                                + Duration::from_secs_f64(1.0 / *rate);
                        }
                        state.first_sent.get_or_insert(now);
                        state.sent += 1;
                        return Some(Permit {
                            started: now,
                            limiter: self,
                            released: false,
                            seq: state.sent,
                        });
                    }
                    None => None,
                }
            };
            match (wait_until, stoppable) {
                (Some(until), false) => tokio::time::sleep_until(until).await,
                (None, false) => notified.await,
                (Some(until), true) => tokio::select! {
                    biased;
                    () = tokio::time::sleep_until(until) => {}
                    () = &mut stopping => return None,
                },
                (None, true) => tokio::select! {
                    biased;
                    () = notified => {}
                    () = &mut stopping => return None,
                },
            }
        }
    }

    /// Gives a slot back with what its answer said; adjusts the limit once per window. For a
    /// 429, says who waits its `Retry-After`.
    pub fn release(&self, permit: Permit, signal: Signal) -> Throttle {
        self.release_after(permit, signal, None).0
    }

    /// [`Self::release`] with the answer's `Retry-After` for a 429: a budget's pause begins in
    /// the same step, so no request slips out between the verdict and the pause. Returns the
    /// wait: everyone's pause, or this request's own.
    pub fn release_after(
        &self,
        mut permit: Permit,
        signal: Signal,
        retry_after: Option<Duration>,
    ) -> (Throttle, Duration) {
        permit.released = true;
        let now = Instant::now();
        let rtt = now.duration_since(permit.started).as_secs_f64();
        let mut state = self.lock();
        state.in_flight = state.in_flight.saturating_sub(1);
        let probe = state.burst.filter(|b| permit.seq >= b.probe_from);
        let mut throttle = Throttle::None;
        match signal {
            Signal::Clean => {
                state.window_rtt_sum += rtt;
                state.window_samples += 1;
                if state.last_pause.is_none_or(|(end, _)| now >= end) {
                    state.clean_since_pause += 1;
                }
                if let Some(recent) = &mut state.recent_clean {
                    while recent
                        .front()
                        .is_some_and(|t| now.duration_since(*t) >= BUDGET_PERIOD)
                    {
                        recent.pop_front();
                    }
                    recent.push_back(now);
                }
                let gentle = state.gentle_since;
                let ceiling = state.ceiling.unwrap_or(f64::MAX);
                if let Some((rate, _, set)) = &mut state.pace {
                    match gentle {
                        Some(since) if now.duration_since(since) >= GENTLE_STEP => {
                            *rate *= GENTLE_GROWTH;
                            *set = now;
                            state.gentle_since = Some(now);
                        }
                        Some(_) => {}
                        None if now.duration_since(*set) >= RATE_QUIET => {
                            *rate = (*rate * RATE_PROBE).min(ceiling);
                            *set = now;
                        }
                        None => {}
                    }
                }
            }
            Signal::Throttled => {
                // The budget is found: the pace is learned from here on, not grown. A gentle
                // limiter's first 429 says it at once: what the API took in the last period,
                // spread over the period, kept from here on like a known budget.
                let sample = state.recent_clean.as_ref().map(|recent| recent.len());
                match sample {
                    Some(count) if count >= GENTLE_SAMPLE => {
                        state.gentle_since = None;
                        state.recent_clean = None;
                        let rate = count as f64 / BUDGET_PERIOD.as_secs_f64() * RATE_MARGIN;
                        state.pace = Some((rate, now, now));
                        state.known_budget = true;
                    }
                    // Too few answers to say a budget (another client, or an earlier sync,
                    // spent it): pause, and grow again gently from the pace as it is.
                    Some(_) => state.gentle_since = Some(now),
                    None => state.gentle_since = None,
                }
                if sample.is_some() {
                    // This pause keeps the pace: the span since the start says less.
                    state.clean_since_pause = 0;
                }
                throttle = Self::throttled(&mut state, &permit, now);
            }
            // Judged over the whole window: see `adjust`. A gentle pace waits a full step of
            // clean answers before it grows again.
            Signal::Strained => {
                state.window_strained += 1;
                if state.gentle_since.is_some() {
                    state.gentle_since = Some(now);
                }
            }
        }
        // The probe came back with anything but a 429: the burst was a cap on requests in
        // flight, and the cut limit is under it.
        if let (Some(burst), false) = (probe, signal == Signal::Throttled) {
            Self::end_burst(&mut state, burst, now);
        }
        let window = state.window();
        if now.duration_since(state.window_started) >= window {
            self.adjust(&mut state, now);
        }
        // This request's own wait: its Retry-After. A budget's pause holds the others too.
        let wait = retry_after.unwrap_or_default();
        if throttle == Throttle::Everyone {
            if let Some(retry_after) = retry_after {
                Self::pause_locked(&mut state, retry_after, now);
            }
        }
        drop(state);
        if throttle == Throttle::Everyone {
            self.changed.notify_waiters();
        }
        // Only the task whose turn it is waits for a slot: one wake is enough.
        self.changed.notify_one();
        (throttle, wait)
    }

    /// A 429: the first of a burst cuts the limit and waits for the probe; the probe's own
    /// 429 is a budget.
    fn throttled(state: &mut State, permit: &Permit, now: Instant) -> Throttle {
        state.slow_start = false;
        match state.burst {
            // Sent before the cut: one of the same burst.
            Some(burst) if permit.seq < burst.probe_from => Throttle::Alone,
            Some(burst) => {
                Self::end_burst(state, burst, now);
                // The burst's first Retry-After is the budget's: the shared pause counts from
                // it, not from the probe (which waits its own).
                state.pause_from = Some(burst.first_throttled);
                Throttle::Everyone
            }
            // A shared pause is on already (another 429 of a budget): this one waits it out.
            None if state.paused_until.is_some_and(|until| until > now) => Throttle::Alone,
            // The budget is known, or a gentle start meets it: nothing to probe, everyone
            // pauses from this 429.
            None if state.known_budget || state.recent_clean.is_some() => {
                state.pause_from = Some(now);
                Throttle::Everyone
            }
            // Even a 429 met with nothing else out is probed: the API may still count requests
            // whose answers were just read (seen: a cap of 2 read as a budget of 2 a second).
            None => {
                state.burst = Some(Burst {
                    first_throttled: now,
                    probe_from: state.sent + 1,
                    resume_limit: (state.limit / 2).max(1),
                });
                // One request at a time until the probe answers: the others out finish first.
                state.limit = 1;
                state.last_cut = Some(now);
                Throttle::Alone
            }
        }
    }

    /// The probe has answered: the halved limit holds, as a ceiling until the API is quiet.
    fn end_burst(state: &mut State, burst: Burst, now: Instant) {
        state.burst = None;
        state.limit = burst.resume_limit;
        state.pressure = Some((burst.resume_limit, now));
    }

    fn adjust(&self, state: &mut State, now: Instant) {
        let answers = state.window_strained + state.window_samples;
        let strained = state.window_strained >= MIN_STRAINED
            && f64::from(state.window_strained) >= STRAIN_SHARE * f64::from(answers);
        let window_rtt = (state.window_samples > 0)
            .then(|| state.window_rtt_sum / f64::from(state.window_samples));
        let slow = match (window_rtt, state.rtt_mean) {
            (Some(rtt), Some(mean)) => rtt > mean * SLOW_RTT,
            _ => false,
        };
        let window = state.window();
        let cut_lately = state
            .last_cut
            .is_some_and(|at| now.duration_since(at) < window);
        match strained {
            // The answers of requests sent together arrive together: cut once for them.
            true if cut_lately => {}
            // Strain cuts, but unlike a 429 sets no ceiling: errors come and go.
            true => {
                state.last_cut = Some(now);
                state.limit = ((state.limit as f64 * STRAIN_DECREASE) as usize).max(1);
                state.slow_start = false;
            }
            false if slow => {
                state.limit = ((state.limit as f64 * STRAIN_DECREASE) as usize).max(1);
                state.slow_start = false;
            }
            // No growth while a burst's probe is out: the limit is one on purpose.
            false if state.window_full && state.burst.is_none() => {
                let capped = match state.pressure {
                    Some((level, at)) if now.duration_since(at) < QUIET_BEFORE_PROBING => level,
                    _ => self.max,
                };
                let grown = if state.slow_start && state.limit < SLOW_START_GENTLER {
                    state.limit * 2
                } else if state.slow_start {
                    state.limit * 3 / 2
                } else {
                    state.limit + 1
                };
                state.limit = grown.min(capped).min(self.max).max(state.limit);
            }
            false => {}
        }
        if let Some(rtt) = window_rtt.filter(|_| !slow) {
            state.rtt_mean = Some(match state.rtt_mean {
                Some(mean) => mean + RTT_WEIGHT * (rtt - mean),
                None => rtt,
            });
        }
        state.window_started = now;
        state.window_rtt_sum = 0.0;
        state.window_samples = 0;
        state.window_strained = 0;
        state.window_full = state.in_flight >= state.limit;
    }

    /// A 429 of a budget: no new request goes out for `wait` (plus a little jitter), and what
    /// the API took since the sync started (or the last pause ended), over at least `wait`
    /// (the budget's period), becomes the pace. Returns the pause.
    pub fn pause(&self, retry_after: Duration) -> Duration {
        let mut state = self.lock();
        let wait = Self::pause_locked(&mut state, retry_after, Instant::now());
        drop(state);
        self.changed.notify_waiters();
        wait
    }

    fn pause_locked(state: &mut State, retry_after: Duration, now: Instant) -> Duration {
        let jitter = rand::rng().random_range(0.0..=PAUSE_JITTER);
        let from = state.pause_from.take().unwrap_or(now);
        let until = (from + retry_after.mul_f64(1.0 + jitter)).max(now);
        let wait = until - now;
        // The other 429s of a burst that already paused everything say nothing new.
        // A known budget is relearned only from a fair sample: a stray 429 (another client
        // of the key, a burst) must not turn 200 a second into the few a short span saw.
        let fair_sample = !state.known_budget
            || (state.clean_since_pause >= KNOWN_BUDGET_SAMPLE
                && state
                    .last_pause
                    .map(|(end, _)| end)
                    .or(state.first_sent)
                    .is_some_and(|since| now.duration_since(since) >= Duration::from_secs(2)));
        if state.paused_until.is_none_or(|u| u <= now) && state.clean_since_pause > 0 && fair_sample
        {
            let since = state
                .last_pause
                .map(|(end, _)| end)
                .or(state.first_sent)
                .unwrap_or(now);
            let span = now.duration_since(since).max(retry_after).max(MIN_WINDOW);
            let rate = state.clean_since_pause as f64 / span.as_secs_f64() * RATE_MARGIN;
            let rate = rate.max(0.5).min(state.ceiling.unwrap_or(f64::MAX));
            state.pace = Some((rate, now, now));
        }
        state.paused_until = Some(state.paused_until.map_or(until, |u| u.max(until)));
        // The budget's window is what the API said, not what the jitter added.
        state.last_pause = Some((until, retry_after));
        state.clean_since_pause = 0;
        // A learned pace starts again after the pause.
        if let Some((_, next, _)) = &mut state.pace {
            *next = (*next).max(until);
        }
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[tokio::test(start_paused = true)]
    async fn a_known_budget_is_kept_from_the_first_request() {
        let limiter = Arc::new(Adaptive::with_budget(64, 50.0));
        let started = Instant::now();
        for _ in 0..100 {
            let permit = limiter.acquire().await;
            limiter.release(permit, Signal::Clean);
        }
        let took = started.elapsed().as_secs_f64();
        assert!(
            (1.9..=2.1).contains(&took),
            "100 requests at 50/s took {took} s"
        );
        // A 429 is the budget's: everyone pauses, no probe.
        let permit = limiter.acquire().await;
        let (throttle, _) =
            limiter.release_after(permit, Signal::Throttled, Some(Duration::from_secs(1)));
        assert_eq!(throttle, Throttle::Everyone);
    }

    /// A budget probed upward finds one that grew; a ceiling (an account's budget the user
    /// set) is never probed past, however long the answers stay clean.
    #[tokio::test(start_paused = true)]
    async fn a_ceiling_is_kept_where_a_budget_is_probed_past() {
        for (limiter, probes) in [
            (Adaptive::with_budget(2, 10.0), true),
            (Adaptive::with_ceiling(2, 10.0), false),
        ] {
            let started = Instant::now();
            for _ in 0..3_000 {
                let permit = limiter.acquire().await;
                limiter.release(permit, Signal::Clean);
            }
            let took = started.elapsed().as_secs_f64();
            let pace = limiter.pace().unwrap();
            if probes {
                assert!(pace > 10.0, "probed upward after a quiet spell: {pace}");
            } else {
                assert_eq!(pace, 10.0);
                assert!(took >= 299.8, "3,000 at 10 a second took {took} s");
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_gentle_start_is_one_at_a_time_once_a_second_then_grows_while_clean() {
        let limiter = Arc::new(Adaptive::gentle(4, 1.0));
        assert_eq!(limiter.limit(), 1);
        let started = Instant::now();
        let mut sent = Vec::new();
        for _ in 0..40 {
            let permit = limiter.acquire().await;
            sent.push(started.elapsed().as_secs_f64());
            tokio::time::sleep(Duration::from_millis(50)).await;
            limiter.release(permit, Signal::Clean);
        }
        assert!(
            sent[1] >= 0.99,
            "the second request waits a second: {sent:?}"
        );
        let pace = limiter.pace().unwrap();
        assert!(pace > 4.0, "the pace grew while answers were clean: {pace}");
        // A 429 ends the growth: the pace is learned from here on.
        let permit = limiter.acquire().await;
        limiter.release_after(permit, Signal::Throttled, Some(Duration::from_secs(1)));
        assert!(limiter.lock().gentle_since.is_none());
    }

    /// Against a budget of 120 a minute that no one published: the first 429 after 120 clean
    /// answers sets the pace to 2 a second, kept like a known budget.
    #[tokio::test(start_paused = true)]
    async fn a_gentle_limiters_first_429_says_the_budget_of_the_last_minute() {
        let limiter = Arc::new(Adaptive::gentle(4, 1.0));
        for _ in 0..120 {
            let permit = limiter.acquire().await;
            tokio::time::sleep(Duration::from_millis(50)).await;
            limiter.release(permit, Signal::Clean);
        }
        let permit = limiter.acquire().await;
        let (throttle, _) =
            limiter.release_after(permit, Signal::Throttled, Some(Duration::from_secs(30)));
        assert_eq!(throttle, Throttle::Everyone);
        let pace = limiter.pace().unwrap();
        assert!((1.98..=2.0).contains(&pace), "{pace}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_releases_every_waiter_without_a_slot_and_keeps_the_slots_out() {
        let limiter = Arc::new(Adaptive::new(1));
        let held = limiter.acquire_unless_stopped().await.expect("a slot");
        let waiting = {
            let limiter = limiter.clone();
            tokio::spawn(async move { limiter.acquire_unless_stopped().await.is_some() })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!waiting.is_finished(), "it waits for the one slot");
        limiter.stop();
        assert!(!waiting.await.unwrap(), "stopped: no slot");
        assert!(limiter.acquire_unless_stopped().await.is_none());
        limiter.release(held, Signal::Clean);
    }

    /// `workers` tasks send `requests` in all to a simulated API: `answer(in flight at the
    /// API)` says what each gets; `latency` per request. Returns the limits seen.
    async fn drive(
        limiter: Arc<Adaptive>,
        workers: usize,
        requests: usize,
        latency: Duration,
        answer: impl Fn(usize) -> Signal + Send + Sync + 'static,
    ) -> Vec<usize> {
        let at_api = Arc::new(AtomicUsize::new(0));
        let left = Arc::new(AtomicUsize::new(requests));
        let answer = Arc::new(answer);
        let limits = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for _ in 0..workers {
            let (limiter, at_api, left, answer, limits) = (
                limiter.clone(),
                at_api.clone(),
                left.clone(),
                answer.clone(),
                limits.clone(),
            );
            tasks.push(tokio::spawn(async move {
                while left
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok()
                {
                    loop {
                        let permit = limiter.acquire().await;
                        let load = at_api.fetch_add(1, Ordering::SeqCst) + 1;
                        let signal = answer(load);
                        // A 429 comes back at once; an answer, or a 5xx, takes the latency.
                        if signal != Signal::Throttled {
                            tokio::time::sleep(latency).await;
                        }
                        at_api.fetch_sub(1, Ordering::SeqCst);
                        let throttle = limiter.release(permit, signal);
                        limits.lock().unwrap().push(limiter.limit());
                        match throttle {
                            Throttle::Everyone => {
                                limiter.pause(Duration::from_secs(1));
                                continue;
                            }
                            Throttle::Alone => {
                                tokio::time::sleep(Duration::from_secs(1)).await;
                                continue;
                            }
                            Throttle::None => {}
                        }
                        break;
                    }
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        Arc::try_unwrap(limits).unwrap().into_inner().unwrap()
    }

    /// Slots go in the order they were asked for: a request that has waited is never passed
    /// by one that asks later, however the wake-ups fall.
    #[tokio::test(start_paused = true)]
    async fn slots_go_first_come_first_served() {
        let limiter = Arc::new(Adaptive::new(1));
        let held = limiter.acquire().await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut waiting = Vec::new();
        for n in 0..5 {
            let (limiter, order) = (limiter.clone(), order.clone());
            waiting.push(tokio::spawn(async move {
                let permit = limiter.acquire().await;
                order.lock().unwrap().push(n);
                tokio::time::sleep(Duration::from_millis(10)).await;
                limiter.release(permit, Signal::Clean);
                // Asks again at once: it must queue behind those still waiting.
                let permit = limiter.acquire().await;
                order.lock().unwrap().push(n + 10);
                limiter.release(permit, Signal::Clean);
            }));
            tokio::task::yield_now().await;
        }
        limiter.release(held, Signal::Clean);
        for task in waiting {
            task.await.unwrap();
        }
        let order = order.lock().unwrap().clone();
        assert_eq!(order[..6], [0, 1, 2, 3, 4, 10], "{order:?}");
    }

    /// A request cancelled while it held a slot (a probe whose sibling failed) gives it back.
    #[tokio::test(start_paused = true)]
    async fn a_dropped_permit_frees_its_slot() {
        let limiter = Adaptive::new(1);
        drop(limiter.acquire().await);
        let again = tokio::time::timeout(Duration::from_secs(1), limiter.acquire()).await;
        assert!(again.is_ok(), "the slot was lost");
    }

    /// A 429 among other requests in flight may be a cap on them: it pauses no one but itself,
    /// the limit drops to one until a probe answers, and a clean probe sets the cut limit (under
    /// the number in flight when the throttled request went out) with no pace.
    #[tokio::test(start_paused = true)]
    async fn a_429_among_others_is_probed_before_anyone_pauses() {
        let limiter = Adaptive::new(32);
        let a = limiter.acquire().await;
        let b = limiter.acquire().await;
        // The limit starts at 2: a third would wait, so the 429 is b's, sent with 2 out.
        assert_eq!(limiter.release(b, Signal::Throttled), Throttle::Alone);
        assert_eq!(limiter.limit(), 1);
        // a is still out: the probe waits for it.
        let waiting = tokio::time::timeout(Duration::from_millis(10), limiter.acquire()).await;
        assert!(
            waiting.is_err(),
            "the probe went out before the others finished"
        );
        assert_eq!(limiter.release(a, Signal::Clean), Throttle::None);
        let probe = limiter.acquire().await;
        assert_eq!(limiter.release(probe, Signal::Clean), Throttle::None);
        assert_eq!(limiter.limit(), 1, "half the 2 that met the cap");
        assert_eq!(limiter.pace(), None);
        assert!(limiter.lock().paused_until.is_none(), "nobody paused");
    }

    /// The probe's own 429 is a budget: everyone pauses, and what the API took since the
    /// start, over the Retry-After, is the pace.
    #[tokio::test(start_paused = true)]
    async fn a_throttled_probe_is_a_budget() {
        let limiter = Adaptive::new(32);
        for _ in 0..10 {
            let clean = limiter.acquire().await;
            limiter.release(clean, Signal::Clean);
        }
        let a = limiter.acquire().await;
        let b = limiter.acquire().await;
        assert_eq!(limiter.release(b, Signal::Throttled), Throttle::Alone);
        assert_eq!(limiter.release(a, Signal::Throttled), Throttle::Alone);
        let probe = limiter.acquire().await;
        assert_eq!(
            limiter.release(probe, Signal::Throttled),
            Throttle::Everyone
        );
        limiter.pause(Duration::from_secs(1));
        let pace = limiter.pace().unwrap();
        assert!((9.0..=10.0).contains(&pace), "{pace}");
        // A lone request's 429 is probed too: the API may still count answered requests.
        let limiter = Adaptive::new(32);
        let alone = limiter.acquire().await;
        assert_eq!(limiter.release(alone, Signal::Throttled), Throttle::Alone);
    }

    #[tokio::test(start_paused = true)]
    async fn grows_to_the_cap_on_a_clean_api() {
        let limiter = Arc::new(Adaptive::new(32));
        let started = Instant::now();
        let limits = drive(
            limiter.clone(),
            32,
            2_000,
            Duration::from_millis(50),
            |_| Signal::Clean,
        )
        .await;
        assert_eq!(limiter.limit(), 32);
        let reached = limits.iter().position(|&l| l == 32).unwrap();
        assert!(reached < 200, "reached 32 after {reached} requests");
        // 2,000 requests at 32 in flight and 50 ms: ~3.1 s; the ramp costs a few round trips.
        assert!(
            started.elapsed() < Duration::from_millis(3_700),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn settles_under_an_in_flight_cap_without_a_pause() {
        let limiter = Arc::new(Adaptive::new(32));
        let throttled = Arc::new(AtomicUsize::new(0));
        let counter = throttled.clone();
        let started = Instant::now();
        drive(
            limiter.clone(),
            32,
            1_000,
            Duration::from_millis(50),
            move |load| {
                if load > 2 {
                    counter.fetch_add(1, Ordering::SeqCst);
                    Signal::Throttled
                } else {
                    Signal::Clean
                }
            },
        )
        .await;
        assert!(limiter.limit() <= 2, "limit {}", limiter.limit());
        // 1,000 requests, 2 at a time, 50 ms each: 25 s, plus a drain and a probe; no shared
        // pause, and no pace.
        let elapsed = started.elapsed();
        assert!(elapsed < Duration::from_millis(25_300), "{elapsed:?}");
        assert!(throttled.load(Ordering::SeqCst) <= 4, "{throttled:?} 429s");
        assert_eq!(limiter.pace(), None);
    }

    /// `requests` sent by 32 workers to an API that takes 20 a second, counted in whole seconds
    /// from the start as the emulator does: the rate reached, the share answered 429 and the
    /// pace learned.
    async fn against_a_budget(requests: usize, latency: Duration) -> (f64, f64, Option<f64>) {
        let limiter = Arc::new(Adaptive::new(32));
        let origin = Instant::now();
        let window = Arc::new(Mutex::new((0u64, 0u32)));
        let throttled = Arc::new(AtomicUsize::new(0));
        let (w, t) = (window.clone(), throttled.clone());
        drive(limiter.clone(), 32, requests, latency, move |_| {
            let second = origin.elapsed().as_secs();
            let mut window = w.lock().unwrap();
            if window.0 != second {
                *window = (second, 0);
            }
            window.1 += 1;
            if window.1 > 20 {
                t.fetch_add(1, Ordering::SeqCst);
                Signal::Throttled
            } else {
                Signal::Clean
            }
        })
        .await;
        let rate = requests as f64 / origin.elapsed().as_secs_f64();
        let share = throttled.load(Ordering::SeqCst) as f64 / requests as f64;
        (rate, share, limiter.pace())
    }

    /// One burst finds the budget, on a short sync as on a long one: at least 95% of it, at
    /// most 5% of requests answered 429.
    #[tokio::test(start_paused = true)]
    async fn learns_a_rate_budget_and_keeps_under_it() {
        for (requests, latency) in [(400, 50), (400, 1), (2_400, 1), (2_400, 50)] {
            let (rate, share, pace) =
                against_a_budget(requests, Duration::from_millis(latency)).await;
            let case = format!(
                "{requests} requests at {latency} ms: {rate:.2}/s, {:.1}% 429, pace {pace:?}",
                share * 100.0
            );
            assert!(rate >= 19.0, "{case}");
            assert!(share <= 0.05, "{case}");
            assert!(pace.is_some_and(|p| (18.0..=20.5).contains(&p)), "{case}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn backs_off_on_strain() {
        let limiter = Arc::new(Adaptive::new(32));
        drive(limiter.clone(), 32, 500, Duration::from_millis(50), |_| {
            Signal::Clean
        })
        .await;
        assert_eq!(limiter.limit(), 32);
        drive(limiter.clone(), 32, 600, Duration::from_millis(50), |_| {
            Signal::Strained
        })
        .await;
        assert!(limiter.limit() < 8, "limit {}", limiter.limit());
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_holds_every_worker() {
        let limiter = Arc::new(Adaptive::new(8));
        let pause = limiter.pause(Duration::from_secs(2));
        assert!(pause >= Duration::from_secs(2) && pause <= Duration::from_millis(2_100));
        let started = Instant::now();
        let mut waiting = Vec::new();
        for _ in 0..4 {
            let limiter = limiter.clone();
            waiting.push(tokio::spawn(async move {
                let permit = limiter.acquire().await;
                let waited = permit.started.duration_since(started);
                limiter.release(permit, Signal::Clean);
                waited
            }));
        }
        for task in waiting {
            let waited = task.await.unwrap();
            assert!(waited >= Duration::from_secs(2), "{waited:?}");
        }
    }
}
