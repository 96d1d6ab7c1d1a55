//! One simulated inference engine per served model: a [`Scheduler`] (pure
//! continuous-batching logic) driven on the real clock by one task, which
//! sleeps through each modelled step against absolute deadlines and then
//! publishes the step's tokens to the waiting requests' [`SeqSlot`]s, the
//! vLLM metrics, the simulated GPU and the trace exporter.
//!
//! Invariants: the driver is the only writer of a slot's progress and of
//! the engine's metrics; a request's modelled times come from step
//! deadlines, never from when a task woke up; the scheduler never sees a
//! clock (see `scheduler.rs`).

mod gpu_model;
pub(crate) mod prefix;
mod scheduler;
pub(crate) mod slot;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub(crate) use gpu_model::{A10G, A10G_NAME, SimGpu};
pub(crate) use scheduler::{Limits, NewSeq, StepCosts};
use scheduler::{PrefixStats, Scheduler, SeqEvent, StepPlan};
use slot::{SeqSlot, Status};

use super::faults::FaultState;
use super::metrics::EngineMetrics;
use super::state::{Counters, bump};
use super::timeline::{FinishReason, Timeline};
use super::trace::{SpanDrops, Tracing};

/// A driver that wakes this much after a step's deadline starts the next
/// step from now rather than from the deadline (the schedule slipped; do
/// not make up for it with a burst of short steps).
const RESYNC: Duration = Duration::from_millis(20);

/// What every engine of a simulator shares.
#[derive(Clone, Debug)]
pub(crate) struct EngineContext {
    pub faults: Arc<ArcSwap<FaultState>>,
    /// Changes when the faults do (an idle engine wakes to show them).
    pub faults_changed: watch::Receiver<()>,
    pub tracing: Arc<Tracing>,
    pub counters: Arc<Counters>,
    pub shutdown: CancellationToken,
}

/// The handle the HTTP side holds.
#[derive(Debug)]
pub(crate) struct Engine {
    pub model: String,
    pub gpu: Arc<SimGpu>,
    tx: mpsc::UnboundedSender<NewSeq<Arc<SeqSlot>>>,
    status: Arc<EngineStatus>,
}

/// Load state, shared between the handle and the driver.
#[derive(Debug)]
struct EngineStatus {
    loaded: AtomicBool,
    /// The next step waits for the cold-start delay first.
    cold: AtomicBool,
    weights_mib: u64,
}

/// Configuration of one engine.
#[derive(Clone, Debug)]
pub(crate) struct EngineSpec {
    pub model: String,
    pub costs: StepCosts,
    pub limits: Limits,
    pub weights_mib: u64,
    pub kv_block_kib: u64,
}

impl Engine {
    /// Starts the driver on the current runtime.
    pub fn start(
        spec: EngineSpec,
        gpu: SimGpu,
        metrics: EngineMetrics,
        ctx: EngineContext,
    ) -> Engine {
        let (tx, rx) = mpsc::unbounded_channel();
        let gpu = Arc::new(gpu);
        let status = Arc::new(EngineStatus {
            loaded: AtomicBool::new(true),
            cold: AtomicBool::new(true),
            weights_mib: spec.weights_mib,
        });
        let driver = Driver {
            scheduler: Scheduler::new(spec.costs, spec.limits),
            rx,
            faults_changed: ctx.faults_changed.clone(),
            status: status.clone(),
            publisher: Publisher {
                ctx,
                metrics,
                gpu: gpu.clone(),
                clock: Clock::new(),
            },
            prefix_seen: PrefixStats::default(),
            preemptions_seen: 0,
            generated: 0,
            generated_exported: 0,
        };
        tokio::spawn(driver.run());
        Engine {
            model: spec.model,
            gpu,
            tx,
            status,
        }
    }

    /// Queues a request; `false` when the engine is gone (server stopping).
    pub fn submit(&self, slot: Arc<SeqSlot>, block_hashes: Vec<u64>) -> bool {
        let new = NewSeq {
            prompt_tokens: slot.prompt_tokens,
            max_tokens: slot.max_tokens,
            payload: slot,
            block_hashes,
        };
        self.tx.send(new).is_ok()
    }

    pub fn is_loaded(&self) -> bool {
        self.status.loaded.load(Ordering::Acquire)
    }

    /// `POST /model/load`: weights back on the GPU, the next request pays
    /// the cold start. Returns whether it was unloaded before.
    pub fn load(&self) -> bool {
        let was_unloaded = !self.status.loaded.swap(true, Ordering::AcqRel);
        if was_unloaded {
            self.status.cold.store(true, Ordering::Release);
            self.gpu.set_weights_mib(self.status.weights_mib);
        }
        was_unloaded
    }

    /// `POST /model/unload`: new requests are refused and the weights leave
    /// the GPU; requests in flight finish. Returns whether it was loaded.
    pub fn unload(&self) -> bool {
        let was_loaded = self.status.loaded.swap(false, Ordering::AcqRel);
        if was_loaded {
            self.gpu.set_weights_mib(0);
        }
        was_loaded
    }
}

/// The engine's clock: instants, their offsets from the engine's start (the
/// scheduler's virtual time) and their wall-clock equivalents (for spans).
#[derive(Clone, Copy, Debug)]
struct Clock {
    epoch: Instant,
    wall_epoch: SystemTime,
}

impl Clock {
    fn new() -> Clock {
        Clock {
            epoch: Instant::now(),
            wall_epoch: SystemTime::now(),
        }
    }

    fn offset(&self, at: Instant) -> Duration {
        at.saturating_duration_since(self.epoch)
    }

    fn wall(&self, at: Instant) -> SystemTime {
        self.wall_epoch + self.offset(at)
    }
}

struct Driver {
    scheduler: Scheduler<Arc<SeqSlot>>,
    rx: mpsc::UnboundedReceiver<NewSeq<Arc<SeqSlot>>>,
    faults_changed: watch::Receiver<()>,
    status: Arc<EngineStatus>,
    publisher: Publisher,
    prefix_seen: PrefixStats,
    preemptions_seen: u64,
    /// Tokens generated, and those the generation counter was given (less
    /// under the `token_underreport` fault).
    generated: u64,
    generated_exported: u64,
}

/// Where the scheduler's events go: the requests' slots, the metrics and
/// the spans. Apart from the scheduler, so that the scheduler's callbacks
/// publish each event as it happens (no buffer, no clone per token).
struct Publisher {
    ctx: EngineContext,
    metrics: EngineMetrics,
    gpu: Arc<SimGpu>,
    clock: Clock,
}

impl Driver {
    async fn run(mut self) {
        let mut step_start = Instant::now();
        loop {
            if !self.scheduler.has_work() {
                let Some(new) = self.idle().await else {
                    break;
                };
                self.scheduler.add(new);
                step_start = Instant::now();
            }
            while let Ok(new) = self.rx.try_recv() {
                self.scheduler.add(new);
            }
            let Some(start) = self.hold_back(step_start).await else {
                break;
            };
            let Some(end) = self.step(start).await else {
                break;
            };
            let now = Instant::now();
            step_start = if now > end + RESYNC { now } else { end };
        }
        self.abort_all();
    }

    /// Waits for the next request with nothing to run, showing the idle
    /// state again after every fault change (a KV squeeze moves the KV
    /// gauge with no request in sight); `None` once the server stops.
    async fn idle(&mut self) -> Option<NewSeq<Arc<SeqSlot>>> {
        loop {
            self.apply_kv_squeeze(&self.publisher.ctx.faults.load());
            self.publish_gauges();
            self.publisher
                .gpu
                .record_idle(self.scheduler.kv_blocks_used());
            // A closed channel disables its branch: the others still wake.
            tokio::select! {
                new = self.rx.recv() => return new,
                Ok(()) = self.faults_changed.changed() => {}
                _ = self.publisher.ctx.shutdown.cancelled() => return None,
            }
        }
    }

    /// Hands the `kv_squeeze` fault in force to the scheduler.
    fn apply_kv_squeeze(&mut self, faults: &FaultState) {
        self.scheduler.set_kv_squeeze(faults.resources.kv_squeeze);
    }

    /// Waits out a cold start and a stall before the step due at `due`;
    /// returns when it may start, `None` on stop.
    async fn hold_back(&mut self, due: Instant) -> Option<Instant> {
        let mut start = due;
        if self.status.cold.swap(false, Ordering::AcqRel) {
            let delay = self.publisher.ctx.faults.load().faults.cold_start;
            if !delay.is_zero() {
                self.publisher.metrics.cold_starts.inc();
                start = Instant::now().max(due) + delay;
            }
        }
        start = self.publisher.ctx.faults.load().release_at(start);
        if start > Instant::now() {
            self.sleep_until(start).await?;
        }
        Some(start)
    }

    async fn sleep_until(&self, at: Instant) -> Option<()> {
        tokio::select! {
            _ = tokio::time::sleep_until(at) => Some(()),
            _ = self.publisher.ctx.shutdown.cancelled() => None,
        }
    }

    /// One iteration from `start`; returns its end, `None` on stop.
    async fn step(&mut self, start: Instant) -> Option<Instant> {
        let faults = self.publisher.ctx.faults.load_full();
        self.apply_kv_squeeze(&faults);
        self.drop_or_orphan_cancelled(faults.faults.orphan_on_disconnect);
        let virtual_start = self.publisher.clock.offset(start);
        let slow = faults.slow_factor(start);
        let publisher = &self.publisher;
        let plan = self.scheduler.plan_step(virtual_start, slow, |slot, e| {
            publisher.apply(slot, e, start)
        });
        self.count_scheduler_totals();
        self.publish_gauges();
        let end = start + plan.duration;
        self.sleep_until(end).await?;
        let publisher = &self.publisher;
        let produced = self
            .scheduler
            .finish_step(publisher.clock.offset(end), |slot, e| {
                publisher.apply(slot, e, end)
            });
        self.account_step(&plan, end, produced);
        Some(end)
    }

    /// Removes requests whose client left, or with the orphan fault keeps
    /// them decoding and counts them.
    fn drop_or_orphan_cancelled(&mut self, orphan: bool) {
        if orphan {
            for slot in self.scheduler.payloads() {
                if slot.is_cancelled() && slot.mark_orphaned() {
                    self.publisher.metrics.orphaned_total.inc();
                    self.publisher.metrics.orphaned_running.inc();
                }
            }
            return;
        }
        let (publisher, now) = (&self.publisher, Instant::now());
        self.scheduler.abort_where(
            |slot| slot.is_cancelled(),
            |slot, e| publisher.apply(slot, e, now),
        );
    }

    /// Moves the scheduler's cumulative totals into the counters.
    fn count_scheduler_totals(&mut self) {
        let prefix = self.scheduler.prefix_stats();
        self.publisher
            .metrics
            .prefix_queries
            .inc_by(prefix.queries - self.prefix_seen.queries);
        self.publisher
            .metrics
            .prefix_hits
            .inc_by(prefix.hits - self.prefix_seen.hits);
        self.prefix_seen = prefix;
        let preemptions = self.scheduler.preemptions();
        self.publisher
            .metrics
            .preemptions
            .inc_by(preemptions - self.preemptions_seen);
        self.preemptions_seen = preemptions;
    }

    fn publish_gauges(&self) {
        self.publisher.metrics.set_running(self.scheduler.running());
        self.publisher
            .metrics
            .waiting
            .set(self.scheduler.waiting() as f64);
        self.publisher
            .metrics
            .kv_usage
            .set(self.scheduler.kv_usage());
    }

    fn account_step(&mut self, plan: &StepPlan, end: Instant, produced: u32) {
        self.generated += u64::from(produced);
        let underreport = self.publisher.ctx.faults.load().faults.token_underreport;
        let exported = (self.generated as f64 * (1.0 - underreport)).round() as u64;
        self.publisher
            .metrics
            .generation_tokens
            .inc_by(exported.saturating_sub(self.generated_exported));
        self.generated_exported = exported.max(self.generated_exported);
        bump(
            &self.publisher.ctx.counters.output_tokens,
            u64::from(produced),
        );
        self.publisher
            .metrics
            .iteration_tokens
            .observe(f64::from(plan.tokens()));
        let host_gap = self
            .scheduler
            .costs()
            .per_token
            .mul_f64(self.publisher.gpu.spec().host_fraction);
        let busy = plan.duration.saturating_sub(host_gap);
        self.publisher
            .gpu
            .record_step(end, busy, plan.tokens(), self.scheduler.kv_blocks_used());
    }

    /// The server is stopping: every request still here ends.
    fn abort_all(&mut self) {
        let (publisher, now) = (&self.publisher, Instant::now());
        self.scheduler
            .abort_where(|_| true, |slot, e| publisher.apply(slot, e, now));
        self.rx.close();
        while let Ok(new) = self.rx.try_recv() {
            new.payload.set_status(Status::Aborted);
        }
        self.publish_gauges();
    }
}
impl Publisher {
    fn apply(&self, slot: &SeqSlot, event: SeqEvent, at: Instant) {
        match event {
            SeqEvent::Scheduled { cached, first } => {
                if first {
                    let wall = self.clock.wall(at);
                    slot.update_times(|t| {
                        t.scheduled = Some(wall);
                        t.cached_tokens = cached;
                    });
                    self.metrics
                        .prompt_tokens
                        .inc_by(u64::from(slot.prompt_tokens));
                    self.metrics.prompt_tokens_cached.inc_by(u64::from(cached));
                    bump(
                        &self.ctx.counters.prompt_tokens,
                        u64::from(slot.prompt_tokens),
                    );
                }
                slot.set_status(Status::Running);
            }
            SeqEvent::Preempted => {
                slot.update_times(|t| t.preemptions += 1);
                slot.set_status(Status::Queued);
            }
            SeqEvent::Token { generated } => self.token(slot, generated, at),
            SeqEvent::Finished { generated, .. } => {
                self.token(slot, generated, at);
                self.finish(slot, at, FinishReason::Length);
            }
            SeqEvent::Aborted { .. } => {
                let reason = if slot.is_faulted() {
                    FinishReason::Error
                } else {
                    FinishReason::Abort
                };
                self.finish(slot, at, reason);
            }
        }
    }

    fn token(&self, slot: &SeqSlot, generated: u32, at: Instant) {
        let nanos = self.clock.offset(at).as_nanos() as u64;
        let previous = slot.swap_last_token(nanos);
        if generated == 1 {
            let wall = self.clock.wall(at);
            slot.update_times(|t| t.first_token = Some(wall));
            let arrived = slot.times().arrived;
            if let Some(ttft) = arrived.and_then(|a| wall.duration_since(a).ok()) {
                self.metrics.ttft.observe(ttft.as_secs_f64());
            }
        } else {
            let gap = Duration::from_nanos(nanos.saturating_sub(previous)).as_secs_f64();
            self.metrics.itl.observe(gap);
            if let Some(tpot) = &self.metrics.tpot {
                tpot.observe(gap);
            }
        }
        slot.set_generated(generated);
    }

    /// Records the end of a request: times, histograms, counters, spans.
    fn finish(&self, slot: &SeqSlot, at: Instant, reason: FinishReason) {
        let wall = self.clock.wall(at);
        slot.update_times(|t| t.finished = Some(wall));
        if slot.is_orphaned() {
            self.metrics.orphaned_running.dec();
        }
        let timeline = self.timeline(slot, wall, reason);
        match reason {
            FinishReason::Length => {
                self.metrics.success_length.inc();
                bump(&self.ctx.counters.completed, 1);
                self.observe_request(&timeline);
            }
            FinishReason::Error => self.metrics.success_error.inc(),
            _ => self.metrics.success_abort.inc(),
        }
        slot.set_status(if reason == FinishReason::Length {
            Status::Finished
        } else {
            Status::Aborted
        });
        let faults = &self.ctx.faults.load().faults;
        let drops = SpanDrops {
            span_rate: faults.span_drop_rate,
            trace_rate: faults.trace_drop_rate,
        };
        self.ctx.tracing.export(slot.traceparent, &timeline, drops);
    }

    fn timeline(&self, slot: &SeqSlot, finished: SystemTime, reason: FinishReason) -> Timeline {
        let t = slot.times();
        Timeline {
            model: self.gpu.identity.served_model.clone(),
            seq: slot.seq,
            arrived: t.arrived.unwrap_or(finished),
            scheduled: t.scheduled,
            first_token: t.first_token,
            finished,
            prompt_tokens: u64::from(slot.prompt_tokens),
            cached_tokens: u64::from(t.cached_tokens),
            output_tokens: u64::from(slot.generated()),
            preemptions: t.preemptions,
            finish_reason: reason,
        }
    }

    fn observe_request(&self, t: &Timeline) {
        let secs = |from: SystemTime, to: SystemTime| {
            to.duration_since(from).unwrap_or_default().as_secs_f64()
        };
        let m = &self.metrics;
        m.e2e.observe(secs(t.arrived, t.finished));
        m.observe_queue(secs(t.arrived, t.queue_end()));
        m.prefill.observe(secs(t.queue_end(), t.prefill_end()));
        m.decode.observe(secs(t.prefill_end(), t.finished));
        m.inference.observe(secs(t.queue_end(), t.finished));
        m.request_prompt_tokens.observe(t.prompt_tokens as f64);
        m.request_generation_tokens.observe(t.output_tokens as f64);
    }
}

#[cfg(test)]
mod calibration;
