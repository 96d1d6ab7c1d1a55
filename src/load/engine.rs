//! Drives a plan's phases and steps on the run clock: the conductor starts
//! each step at its planned instant, a dispatcher turns an open schedule
//! into tickets, and one worker loop serves every load model.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use super::checks::TaskChecks;
use super::client::Connection;
use super::request::SessionCursor;
use super::schedule::{self, Arrivals, Step, StepLoad};
use super::{Client, RequestSet, WorkerThreads, sse};
use crate::clock::Clock;
use crate::outcome::{CheckSample, Outcome, Slot};
use crate::plan::Plan;
use crate::stats::Histogram;
use crate::trace_id::RequestTracer;

/// Messages from the engine to the aggregator (the single owner of run
/// state), over one bounded channel, in the order they happened. Times are
/// offsets on the run clock. Indices (`phase`, `step`, `Slot`) point into
/// the resolved plan and `plan_steps`.
#[derive(Debug)]
pub enum Event {
    /// A step began at `at`: the aggregator's current phase from now on.
    StepStarted { phase: u16, step: u16, at: Duration },
    /// One request finished (or failed, or was cancelled); every
    /// per-request distribution of `stats::Distribution` is measured from it.
    Outcome(Outcome),
    /// A worker's inter-token gaps (µs) for one step and model, handed
    /// over when it stops: ITL has one value per gap, so workers record it
    /// themselves rather than sending every gap.
    Itl { slot: Slot, histogram: Histogram },
    /// The step's schedule ended at `at` with `unsent` arrivals never sent.
    StepFinished {
        phase: u16,
        step: u16,
        at: Duration,
        unsent: u64,
    },
    /// A step stopped by its request count had all its requests done at
    /// `at`, before its longest duration: the next step starts now.
    StepCompleted { phase: u16, step: u16, at: Duration },
    /// Check `check` of task `task` failed; a few per worker and check are
    /// sent, as the report's samples.
    CheckFailed {
        task: u16,
        check: u8,
        sample: CheckSample,
    },
}

/// Requests in flight right now, shared by all workers.
#[derive(Debug, Default)]
pub struct InFlight(AtomicU64);

impl InFlight {
    // Relaxed: the count is a statistic read by one sampler; no other
    // memory is published through it.
    fn enter(&self) -> u64 {
        self.0.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn leave(&self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// The steps of every phase, in order.
pub fn plan_steps(plan: &Plan) -> Vec<Vec<Step>> {
    plan.phases
        .iter()
        .enumerate()
        .map(|(i, p)| {
            schedule::steps(
                &p.load,
                p.duration,
                p.requests,
                plan.workload.seed.wrapping_add(i as u64),
            )
        })
        .collect()
}

/// What every worker of a step shares.
struct StepCtx {
    phase: u16,
    step: u16,
    end: Duration,
    requests: Arc<RequestSet>,
    client: Client,
    clock: Clock,
    cancel: CancellationToken,
    in_flight: Arc<InFlight>,
    tx: mpsc::Sender<Event>,
    models: usize,
    /// Tasks of the plan (the client holds each one's checks).
    tasks: usize,
    seed: u64,
    /// Share of requests that carry a `traceparent`; `None`: no tracing.
    trace_fraction: Option<f64>,
    /// Requests the step may still send, when it stops after a count.
    budget: Option<AtomicU64>,
}

impl StepCtx {
    /// Takes one request from the step's budget; false when none is left.
    fn take_request(&self) -> bool {
        // Relaxed: the count is the only state; each decrement is one
        // request, whatever the order.
        self.budget.as_ref().is_none_or(|left| {
            left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok()
        })
    }
}

/// Runs every phase of `plan` back to back, then waits for the last
/// request. Returns when all workers are done; dropping the last sender
/// tells the aggregator the run is over.
pub async fn drive(
    plan: Arc<Plan>,
    client: Client,
    clock: Clock,
    cancel: CancellationToken,
    in_flight: Arc<InFlight>,
    threads: Arc<WorkerThreads>,
    tx: mpsc::Sender<Event>,
) {
    let mut running: Vec<JoinSet<()>> = Vec::new();
    let mut cursor = Duration::ZERO;
    'phases: for (p, (phase, steps)) in plan.phases.iter().zip(plan_steps(&plan)).enumerate() {
        let requests = Arc::new(RequestSet::build(&plan, phase));
        for (s, step) in steps.into_iter().enumerate() {
            if let Some(drained_at) = drain_closed_step(&mut running, &step, &clock).await {
                cursor = cursor.max(drained_at);
            }
            tokio::select! {
                () = tokio::time::sleep_until(clock.at(cursor)) => {}
                () = cancel.cancelled() => break 'phases,
            }
            let ctx = Arc::new(StepCtx {
                phase: p as u16,
                step: s as u16,
                end: cursor + step.duration,
                requests: requests.clone(),
                client: client.clone(),
                clock,
                cancel: cancel.clone(),
                in_flight: in_flight.clone(),
                tx: tx.clone(),
                models: plan.models.len(),
                tasks: plan.tasks.len(),
                seed: plan.workload.seed,
                trace_fraction: plan.traces.as_ref().map(|t| t.sample_fraction),
                budget: step.requests.map(AtomicU64::new),
            });
            let _ = tx
                .send(Event::StepStarted {
                    phase: ctx.phase,
                    step: ctx.step,
                    at: clock.now(),
                })
                .await;
            let mut tasks = JoinSet::new();
            start_step(
                &mut tasks,
                &threads,
                ctx.clone(),
                &step,
                cursor,
                pool_size(&plan, &step),
            );
            cursor += step.duration;
            if step.requests.is_some()
                && let Some(done_at) = until_requests_done(&mut tasks, &ctx, &cancel).await
            {
                cursor = done_at;
            }
            running.push(tasks);
        }
    }
    for mut tasks in running {
        while tasks.join_next().await.is_some() {}
    }
}

/// For a step stopped by its request count: waits until its requests are
/// all done, its longest duration ends or the run is cancelled. Returns
/// when they were done, if they were first (the step then ends there).
async fn until_requests_done(
    tasks: &mut JoinSet<()>,
    ctx: &StepCtx,
    cancel: &CancellationToken,
) -> Option<Duration> {
    let all_done = async { while tasks.join_next().await.is_some() {} };
    tokio::select! {
        () = all_done => {}
        () = tokio::time::sleep_until(ctx.clock.at(ctx.end)) => return None,
        () = cancel.cancelled() => return None,
    }
    let at = ctx.clock.now().min(ctx.end);
    let _ = ctx
        .tx
        .send(Event::StepCompleted {
            phase: ctx.phase,
            step: ctx.step,
            at,
        })
        .await;
    Some(at)
}

/// Before a closed step (e.g. the next sweep level), waits for the
/// previous step's workers when that step was closed too, so that each
/// level runs at exactly its concurrency. Open steps never wait: their
/// arrivals keep the schedule. Returns when the wait ended, if it waited.
async fn drain_closed_step(
    running: &mut [JoinSet<()>],
    next: &Step,
    clock: &Clock,
) -> Option<Duration> {
    let (StepLoad::Closed { .. }, Some(previous)) = (&next.load, running.last_mut()) else {
        return None;
    };
    while previous.join_next().await.is_some() {}
    Some(clock.now())
}

/// Workers for an open step: enough to hold the peak rate for a whole
/// request timeout, never more than the plan's explicit in-flight cap.
fn pool_size(plan: &Plan, step: &Step) -> usize {
    match &step.load {
        StepLoad::Closed { users, .. } => *users,
        StepLoad::Pause => 0,
        StepLoad::Open(arrivals) => {
            let peak = arrivals.peak_rate();
            let needed = (peak * plan.target.timeout.as_secs_f64()).ceil() as usize + 1;
            let needed = match step.requests {
                Some(n) => needed.min(usize::try_from(n).unwrap_or(usize::MAX)),
                None => needed,
            };
            needed.clamp(1, plan.target.max_in_flight)
        }
    }
}

fn start_step(
    tasks: &mut JoinSet<()>,
    threads: &Arc<WorkerThreads>,
    ctx: Arc<StepCtx>,
    step: &Step,
    start: Duration,
    workers: usize,
) {
    match &step.load {
        StepLoad::Open(arrivals) => {
            let open = OpenStep {
                arrivals: arrivals.clone(),
                start,
                duration: step.duration,
                max_workers: workers,
            };
            tasks.spawn(dispatch(ctx, open, threads.clone()));
        }
        StepLoad::Closed {
            users,
            think_min,
            think_max,
            ..
        } => {
            for w in 0..*users {
                let (from, until) = step
                    .load
                    .user_window(w, step.duration)
                    .unwrap_or((Duration::ZERO, step.duration));
                let source = Source::Closed {
                    think_min: *think_min,
                    think_max: *think_max,
                    thinking: false,
                    starts: start + from,
                    stops: start + until,
                };
                tasks.spawn_on(work(ctx.clone(), source, w as u64), threads.handle(w));
            }
        }
        StepLoad::Pause => {}
    }
}

/// How long before its intended instant a ticket is handed to a worker,
/// which then sleeps until the instant itself (so the dispatcher's own
/// timer jitter never reaches the send).
const TICKET_LEAD: Duration = Duration::from_millis(5);
/// Workers an open step starts with (or a burst's size, if larger); more
/// are added while none is idle.
const INITIAL_OPEN_WORKERS: usize = 4;

struct OpenStep {
    arrivals: Arrivals,
    start: Duration,
    duration: Duration,
    /// The in-flight cap: the pool never grows beyond it.
    max_workers: usize,
}

/// The open step's workers, grown on demand: a worker is added only when
/// a ticket is due and none is idle, so the pool (and its connections) is
/// as large as the load needs, never the whole in-flight cap.
struct OpenPool {
    ctx: Arc<StepCtx>,
    threads: Arc<WorkerThreads>,
    tickets: async_channel::Receiver<Arrival>,
    idle: Arc<AtomicUsize>,
    workers: JoinSet<()>,
    spawned: usize,
    max: usize,
}

impl OpenPool {
    fn grow(&mut self) {
        let source = Source::Open {
            tickets: self.tickets.clone(),
            idle: self.idle.clone(),
        };
        let worker = work(self.ctx.clone(), source, self.spawned as u64);
        self.workers
            .spawn_on(worker, self.threads.handle(self.spawned));
        self.spawned += 1;
    }

    fn grow_if_all_busy(&mut self) {
        // Relaxed: a heuristic; a stale read only adds or skips one worker.
        if self.spawned < self.max && self.idle.load(Ordering::Relaxed) == 0 {
            self.grow();
        }
    }
}

/// Turns an open schedule into tickets (intended send instants), each
/// handed out just before its instant. When every worker is busy and the
/// pool is at its cap, tickets queue and leave late, measured from their
/// intended time; arrivals still unsent when the step ends are counted.
async fn dispatch(ctx: Arc<StepCtx>, open: OpenStep, threads: Arc<WorkerThreads>) {
    let max = open.max_workers.max(1);
    let (ticket_tx, ticket_rx) = async_channel::bounded(max);
    let mut pool = OpenPool {
        ctx: ctx.clone(),
        threads,
        tickets: ticket_rx,
        idle: Arc::new(AtomicUsize::new(0)),
        workers: JoinSet::new(),
        spawned: 0,
        max,
    };
    let initial = INITIAL_OPEN_WORKERS.max(open.arrivals.simultaneous());
    for _ in 0..initial.min(max) {
        pool.grow();
    }
    let mut unsent = 0;
    let budget = ctx.budget.as_ref().map_or(usize::MAX, |n| {
        usize::try_from(n.load(Ordering::Relaxed)).unwrap_or(usize::MAX)
    });
    let mut schedule = open.arrivals.iter(open.duration).take(budget).enumerate();
    while let Some((index, at)) = schedule.next() {
        let arrival = Arrival {
            intended: open.start + at,
            index: index as u64,
        };
        let handed_over = tokio::select! {
            sent = hand_over(&ctx, &mut pool, &ticket_tx, arrival) => sent,
            () = tokio::time::sleep_until(ctx.clock.at(ctx.end)) => {
                unsent = 1 + schedule.by_ref().count() as u64;
                false
            }
            () = ctx.cancel.cancelled() => false,
        };
        if !handed_over {
            break;
        }
    }
    drop(ticket_tx);
    let finished = Event::StepFinished {
        phase: ctx.phase,
        step: ctx.step,
        at: ctx.end,
        unsent,
    };
    let _ = ctx.tx.send(finished).await;
    while pool.workers.join_next().await.is_some() {}
}

/// Waits until just before `intended`, makes sure a worker will be free
/// for it, and queues the ticket. False when the workers are all gone.
async fn hand_over(
    ctx: &StepCtx,
    pool: &mut OpenPool,
    tickets: &async_channel::Sender<Arrival>,
    arrival: Arrival,
) -> bool {
    let lead = arrival.intended.saturating_sub(TICKET_LEAD);
    tokio::time::sleep_until(ctx.clock.at(lead)).await;
    pool.grow_if_all_busy();
    tickets.send(arrival).await.is_ok()
}

/// An open schedule's ticket: when to send, and which arrival of the
/// step it is (a replay sends its i-th record for the i-th).
#[derive(Clone, Copy, Debug)]
struct Arrival {
    intended: Duration,
    index: u64,
}

/// Where a worker's next intended send time comes from.
enum Source {
    Open {
        tickets: async_channel::Receiver<Arrival>,
        idle: Arc<AtomicUsize>,
    },
    /// A user sends, waits for the answer, then thinks (Locust/k6 order):
    /// `thinking` is false before the first request. The user is active
    /// from `starts` until `stops` (run-clock offsets; its spawn window).
    Closed {
        think_min: Duration,
        think_max: Duration,
        thinking: bool,
        starts: Duration,
        stops: Duration,
    },
}

struct Ticket {
    intended: Duration,
    worker_was_ready: bool,
    /// The arrival's place in an open schedule.
    arrival: Option<u64>,
}

type Cancelled<'a> = Pin<&'a mut WaitForCancellationFutureOwned>;

impl Source {
    async fn next(
        &mut self,
        ctx: &StepCtx,
        rng: &mut SmallRng,
        mut cancelled: Cancelled<'_>,
    ) -> Option<Ticket> {
        if ctx.cancel.is_cancelled() {
            return None;
        }
        match self {
            Source::Open { tickets, idle } => {
                idle.fetch_add(1, Ordering::Relaxed);
                let ticket = tokio::select! {
                    ticket = tickets.recv() => ticket.ok(),
                    () = cancelled.as_mut() => None,
                };
                idle.fetch_sub(1, Ordering::Relaxed);
                let Arrival { intended, index } = ticket?;
                let worker_was_ready = ctx.clock.now() < intended;
                if worker_was_ready {
                    sleep_until(ctx, intended, cancelled).await?;
                }
                Some(Ticket {
                    intended,
                    worker_was_ready,
                    arrival: Some(index),
                })
            }
            Source::Closed {
                think_min,
                think_max,
                thinking,
                starts,
                stops,
            } => {
                let think = match (*thinking, think_max > think_min) {
                    (false, _) => Duration::ZERO,
                    (true, true) => rng.random_range(*think_min..*think_max),
                    (true, false) => *think_min,
                };
                *thinking = true;
                let stops = (*stops).min(ctx.end);
                let wake = (ctx.clock.now() + think).max(*starts).min(stops);
                if wake > ctx.clock.now() {
                    sleep_until(ctx, wake, cancelled).await?;
                }
                let now = ctx.clock.now();
                (now < stops && !ctx.cancel.is_cancelled()).then_some(Ticket {
                    intended: now,
                    worker_was_ready: false,
                    arrival: None,
                })
            }
        }
    }
}

async fn sleep_until(ctx: &StepCtx, at: Duration, cancelled: Cancelled<'_>) -> Option<()> {
    tokio::select! {
        () = tokio::time::sleep_until(ctx.clock.at(at)) => Some(()),
        () = cancelled => None,
    }
}

/// Samples one worker sends per task and check, at most.
const SAMPLES_PER_WORKER: u8 = 3;

/// A worker's inter-token gap histograms, one per (model, task) it sent
/// to, handed to the aggregator when it stops.
struct WorkerItl {
    tasks: usize,
    histograms: Vec<Option<Histogram>>,
}

impl WorkerItl {
    fn new(models: usize, tasks: usize) -> WorkerItl {
        WorkerItl {
            tasks,
            histograms: vec![None; models * tasks],
        }
    }

    fn of(&mut self, model: u16, task: u16) -> &mut Histogram {
        let i = usize::from(model) * self.tasks + usize::from(task);
        self.histograms[i].get_or_insert_with(Histogram::new)
    }

    async fn hand_over(self, ctx: &StepCtx) {
        for (i, histogram) in self.histograms.into_iter().enumerate() {
            if let Some(histogram) = histogram.filter(|h| !h.is_empty()) {
                let slot = Slot {
                    phase: ctx.phase,
                    step: ctx.step,
                    model: (i / self.tasks) as u16,
                    task: (i % self.tasks) as u16,
                };
                let _ = ctx.tx.send(Event::Itl { slot, histogram }).await;
            }
        }
    }
}

/// The one worker loop (STYLE 9): take a ticket, send, hand the outcome over.
async fn work(ctx: Arc<StepCtx>, mut source: Source, worker: u64) {
    let seed = ctx.seed ^ (u64::from(ctx.phase) << 48) ^ (u64::from(ctx.step) << 32) ^ worker;
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut parser = sse::Parser::default();
    let mut connection = Connection::default();
    // One cancellation waiter for the worker's life, not one per request.
    let mut cancelled = Box::pin(ctx.cancel.clone().cancelled_owned());
    let mut itl = WorkerItl::new(ctx.models, ctx.tasks);
    let mut samples_sent = vec![[0u8; crate::plan::check::MAX_CHECKS]; ctx.tasks];
    let mut tracer = ctx.trace_fraction.map(RequestTracer::new);
    // The user's conversation, when the workload is multi-turn sessions.
    let mut session: Option<SessionCursor> = None;
    while let Some(ticket) = source.next(&ctx, &mut rng, cancelled.as_mut()).await {
        if !ctx.take_request() {
            break;
        }
        let (prepared, turn) = match ctx.requests.sessions() {
            Some(set) => {
                let cursor = session.get_or_insert_with(|| set.start(&mut rng, ticket.intended));
                let (prepared, turns) = set.turn(cursor);
                (prepared, Some((*cursor, turns)))
            }
            None => (ctx.requests.for_arrival(ticket.arrival, &mut rng), None),
        };
        let (model, task) = (prepared.model, prepared.task);
        let trace = tracer.as_mut().and_then(RequestTracer::draw);
        let in_flight = ctx.in_flight.enter();
        let timing = ctx
            .client
            .send(
                prepared,
                trace.as_ref().map(|(_, header)| header),
                &ctx.clock,
                cancelled.as_mut(),
                &mut connection,
                &mut parser,
                itl.of(model, task),
            )
            .await;
        ctx.in_flight.leave();
        let mut outcome = Outcome {
            slot: Slot {
                phase: ctx.phase,
                step: ctx.step,
                model,
                task,
            },
            intended: ticket.intended,
            sent: timing.sent,
            first_token: timing.first_token,
            last_token: timing.last_token,
            end: timing.end,
            output_tokens: timing.output_tokens,
            tokens_from_usage: timing.tokens_from_usage,
            itl_from_usage: timing.itl_from_usage,
            prompt_tokens: timing.prompt_tokens,
            status: timing.status,
            error: timing.error,
            in_flight: u32::try_from(in_flight).unwrap_or(u32::MAX),
            worker_was_ready: ticket.worker_was_ready,
            trace_id: trace.map_or(0, |(id, _)| id),
            other_model: timing.other_model,
            checks_run: 0,
            checks_failed: 0,
            turn: 0,
            last_turn: false,
            session_start: Duration::ZERO,
        };
        if let Some((cursor, turns)) = turn {
            outcome.turn = u16::try_from(cursor.turn + 1).unwrap_or(u16::MAX);
            outcome.last_turn = cursor.turn + 1 == turns;
            outcome.session_start = cursor.started;
            session = session.map(SessionCursor::next).filter(|c| c.turn < turns);
        }
        let checks = ctx.client.checks(task);
        (outcome.checks_run, outcome.checks_failed) =
            checks.judge(&outcome, timing.body_checks_failed);
        if outcome.checks_failed != 0 {
            let sent = &mut samples_sent[usize::from(task)];
            send_check_samples(&ctx, checks, &outcome, timing, sent).await;
        }
        if ctx.tx.send(Event::Outcome(outcome)).await.is_err() {
            break;
        }
    }
    itl.hand_over(&ctx).await;
}

/// Sends a sample of each check `outcome` failed, while this worker has
/// sent fewer than [`SAMPLES_PER_WORKER`] of it.
async fn send_check_samples(
    ctx: &StepCtx,
    checks: &TaskChecks,
    outcome: &Outcome,
    timing: super::Timing,
    sent: &mut [u8],
) {
    let mut from_body = timing.check_sample;
    for (i, count) in sent.iter_mut().enumerate().take(checks.checks.len()) {
        if outcome.checks_failed & (1 << i) == 0 || *count >= SAMPLES_PER_WORKER {
            continue;
        }
        *count += 1;
        let detail = match from_body.take_if(|(check, _)| usize::from(*check) == i) {
            Some((_, found)) => found.into_string(),
            None => checks.describe(i, outcome, timing.body_checks_failed.is_some()),
        };
        let sample = CheckSample {
            at_s: outcome.end.as_secs_f64(),
            status: outcome.status,
            detail,
        };
        let failed = Event::CheckFailed {
            task: outcome.slot.task,
            check: i as u8,
            sample,
        };
        let _ = ctx.tx.send(failed).await;
    }
}
