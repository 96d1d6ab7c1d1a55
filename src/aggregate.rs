//! The aggregator: the single owner of run state (STYLE 8). It receives
//! typed [`Event`]s from the engine and folds them into per-step,
//! per-model and per-interval statistics. It is a plain state machine:
//! no I/O, no clock — the runner tells it the time when it closes an
//! interval.

mod sessions;

use std::time::Duration;

pub use sessions::{SessionTally, TurnTally};

use crate::load::{Event, Step};
use crate::outcome::{Outcome, Slot};
use crate::plan::Plan;
use crate::report::IntervalSummary;
use crate::stats::{Distribution, Histogram, MetricSet, Slo};

/// A send later than this after its intended time counts as late.
pub const LATE_TOLERANCE: Duration = Duration::from_millis(10);

/// Statistics of one step.
#[derive(Debug, Default)]
pub struct StepState {
    pub overall: MetricSet,
    /// Per-model sets; empty for a single-model plan, whose one model's
    /// statistics are `overall` (read through [`StepState::model`]).
    pub models: Vec<MetricSet>,
    /// Per-task sets; empty for a plan without `[[tasks]]` (read through
    /// [`StepState::task`]).
    pub tasks: Vec<MetricSet>,
    pub started_at: Option<Duration>,
    /// When a step stopped by its request count had them all done.
    pub completed_at: Option<Duration>,
    pub unsent: u64,
    pub peak_in_flight: u64,
}

impl StepState {
    /// The statistics of model `index` in this step.
    pub fn model(&self, index: usize) -> &MetricSet {
        self.models.get(index).unwrap_or(&self.overall)
    }

    /// The statistics of task `index` in this step.
    pub fn task(&self, index: usize) -> &MetricSet {
        self.tasks.get(index).unwrap_or(&self.overall)
    }

    /// Every set `slot`'s request counts in: its model's and its task's.
    fn breakdowns_mut(&mut self, slot: Slot) -> impl Iterator<Item = &mut MetricSet> {
        let model = self.models.get_mut(usize::from(slot.model));
        let task = self.tasks.get_mut(usize::from(slot.task));
        model.into_iter().chain(task)
    }
}

/// How one check of one task fared over the run, with the first failures.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CheckTally {
    pub passed: u64,
    pub failed: u64,
    pub samples: Vec<crate::outcome::CheckSample>,
}

/// Failure samples kept per check.
pub const CHECK_SAMPLES_KEPT: usize = 5;

/// What one second needs for its summary line: four of the
/// distributions of a full [`MetricSet`], measured the same way, since it
/// is recorded for every request.
#[derive(Debug)]
struct IntervalStats {
    requests: u64,
    ok: u64,
    output_tokens: u64,
    latency: Histogram,
    ttft: Histogram,
    tpot: Histogram,
    schedule_lag: Histogram,
}

impl Default for IntervalStats {
    fn default() -> Self {
        let sized = || Histogram::with_max(crate::stats::PRESIZED_MAX);
        IntervalStats {
            requests: 0,
            ok: 0,
            output_tokens: 0,
            latency: sized(),
            ttft: sized(),
            tpot: sized(),
            schedule_lag: sized(),
        }
    }
}

impl IntervalStats {
    fn record(&mut self, outcome: &Outcome) {
        self.requests += 1;
        if outcome.is_ok() {
            self.ok += 1;
            self.output_tokens += u64::from(outcome.output_tokens);
        }
        let kept = [
            (Distribution::Latency, &mut self.latency),
            (Distribution::Ttft, &mut self.ttft),
            (Distribution::Tpot, &mut self.tpot),
            (Distribution::ScheduleLag, &mut self.schedule_lag),
        ];
        for (distribution, histogram) in kept {
            if let Some(value) = distribution.measure(outcome) {
                histogram.record(value);
            }
        }
    }

    /// Empties the interval, keeping the histograms' memory.
    fn reset(&mut self) {
        (self.requests, self.ok, self.output_tokens) = (0, 0, 0);
        self.latency.reset();
        self.ttft.reset();
        self.tpot.reset();
        self.schedule_lag.reset();
    }
}

/// How one model's traffic began: its earliest-sent successful request,
/// and the 503s (a model still loading) answered before it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ModelStart {
    /// (sent, service time) of the successful request sent first.
    pub first_ok: Option<(Duration, Duration)>,
    /// When each 503 was sent, kept only while no success came before it:
    /// counted against `first_ok` once the run is over.
    unavailable_sent: Vec<Duration>,
}

/// 503s remembered per model before its first success (a loading model
/// answers a burst; more is an outage, not a cold start).
const UNAVAILABLE_KEPT: usize = 4096;

impl ModelStart {
    fn record(&mut self, outcome: &Outcome) {
        if outcome.is_ok() {
            if self.first_ok.is_none_or(|(sent, _)| outcome.sent < sent) {
                self.first_ok = Some((outcome.sent, outcome.service_time()));
            }
        } else if outcome.status == 503 && self.unavailable_sent.len() < UNAVAILABLE_KEPT {
            self.unavailable_sent.push(outcome.sent);
        }
    }

    /// 503s sent before the first successful request was.
    pub fn unavailable_before_ready(&self) -> u64 {
        let ready = self.first_ok.map_or(Duration::MAX, |(sent, _)| sent);
        self.unavailable_sent.iter().filter(|s| **s < ready).count() as u64
    }
}

#[derive(Debug)]
pub struct PhaseState {
    pub steps: Vec<StepState>,
}

/// Everything the run measured, ready for the report.
#[derive(Debug)]
pub struct Aggregator {
    pub phases: Vec<PhaseState>,
    pub intervals: Vec<IntervalSummary>,
    /// Lag of sends where a worker was already waiting: the generator's
    /// own timer and scheduling delay, free of target backpressure.
    pub generator_lag: Histogram,
    pub peak_in_flight: u64,
    /// How each model's traffic began (by model index), for the
    /// cold-start check.
    pub model_starts: Vec<ModelStart>,
    /// Each task's checks (by task, then check index).
    pub checks: Vec<Vec<CheckTally>>,
    /// Multi-turn sessions, when the workload has them.
    pub sessions: Option<SessionTally>,
    phase_names: Vec<String>,
    phase_target_rates: Vec<Option<f64>>,
    /// The plan's per-request SLO (empty: no goodput counted).
    slo: Slo,
    current_phase: Option<u16>,
    interval: IntervalStats,
    interval_start: Duration,
}

impl Aggregator {
    pub fn new(plan: &Plan, steps: &[Vec<Step>]) -> Self {
        let models = plan.models.len();
        let tasks = if plan.has_tasks() {
            plan.tasks.len()
        } else {
            0
        };
        let phases = steps
            .iter()
            .map(|s| PhaseState {
                steps: s
                    .iter()
                    .map(|_| StepState {
                        models: if models > 1 {
                            vec![MetricSet::default(); models]
                        } else {
                            Vec::new()
                        },
                        tasks: vec![MetricSet::default(); tasks],
                        ..StepState::default()
                    })
                    .collect(),
            })
            .collect();
        Aggregator {
            phases,
            intervals: Vec::new(),
            generator_lag: Histogram::new(),
            peak_in_flight: 0,
            model_starts: vec![ModelStart::default(); plan.models.len().max(1)],
            checks: plan
                .tasks
                .iter()
                .map(|t| vec![CheckTally::default(); t.checks.len()])
                .collect(),
            sessions: plan
                .workload
                .sessions
                .as_ref()
                .map(|s| SessionTally::new(s.turns as usize)),
            phase_names: plan.phases.iter().map(|p| p.name.clone()).collect(),
            phase_target_rates: plan.phases.iter().map(|p| p.load.mean_rate()).collect(),
            slo: plan.slo.clone(),
            current_phase: None,
            interval: IntervalStats::default(),
            interval_start: Duration::ZERO,
        }
    }

    pub fn record(&mut self, event: Event) {
        match event {
            Event::StepStarted { phase, step, at } => {
                self.current_phase = Some(phase);
                self.step_mut(Slot {
                    phase,
                    step,
                    ..Slot::default()
                })
                .started_at = Some(at);
            }
            Event::Outcome(outcome) => self.record_outcome(&outcome),
            Event::Itl { slot, histogram } => {
                let step = self.step_mut(slot);
                *step.overall.histogram_mut(Distribution::Itl) += &histogram;
                for set in step.breakdowns_mut(slot) {
                    *set.histogram_mut(Distribution::Itl) += &histogram;
                }
            }
            Event::CheckFailed {
                task,
                check,
                sample,
            } => {
                let tally = self
                    .checks
                    .get_mut(usize::from(task))
                    .and_then(|t| t.get_mut(usize::from(check)));
                if let Some(tally) = tally.filter(|t| t.samples.len() < CHECK_SAMPLES_KEPT) {
                    tally.samples.push(sample);
                }
            }
            Event::StepFinished {
                phase,
                step,
                unsent,
                ..
            } => {
                self.step_mut(Slot {
                    phase,
                    step,
                    ..Slot::default()
                })
                .unsent += unsent;
            }
            Event::StepCompleted { phase, step, at } => {
                self.step_mut(Slot {
                    phase,
                    step,
                    ..Slot::default()
                })
                .completed_at = Some(at);
            }
        }
    }

    fn record_outcome(&mut self, outcome: &Outcome) {
        let late = outcome.schedule_lag() > LATE_TOLERANCE;
        if outcome.worker_was_ready {
            self.generator_lag.record_duration(outcome.schedule_lag());
        }
        let in_flight = u64::from(outcome.in_flight);
        self.peak_in_flight = self.peak_in_flight.max(in_flight);
        let slo = std::mem::take(&mut self.slo);
        let step = self.step_mut(outcome.slot);
        step.peak_in_flight = step.peak_in_flight.max(in_flight);
        step.overall.record(outcome, late);
        if !slo.is_empty() {
            step.overall.count_slo(outcome, &slo);
        }
        for set in step.breakdowns_mut(outcome.slot) {
            set.record(outcome, late);
            if !slo.is_empty() {
                set.count_slo(outcome, &slo);
            }
        }
        self.slo = slo;
        self.count_checks(outcome);
        if let Some(sessions) = &mut self.sessions {
            sessions.record(outcome);
        }
        self.interval.record(outcome);
        if let Some(start) = self.model_starts.get_mut(usize::from(outcome.slot.model)) {
            start.record(outcome);
        }
    }

    fn count_checks(&mut self, outcome: &Outcome) {
        let Some(tallies) = self.checks.get_mut(usize::from(outcome.slot.task)) else {
            return;
        };
        for (i, tally) in tallies
            .iter_mut()
            .enumerate()
            .take(usize::from(outcome.checks_run))
        {
            if outcome.checks_failed & (1 << i) == 0 {
                tally.passed += 1;
            } else {
                tally.failed += 1;
            }
        }
    }

    fn step_mut(&mut self, slot: Slot) -> &mut StepState {
        &mut self.phases[usize::from(slot.phase)].steps[usize::from(slot.step)]
    }

    /// Closes the interval ending at `now` (seconds are the run clock's)
    /// and returns its summary, which the runner appends to intervals.jsonl.
    pub fn close_interval(&mut self, now: Duration, in_flight: u64) -> IntervalSummary {
        let set = &self.interval;
        let seconds = now
            .saturating_sub(self.interval_start)
            .as_secs_f64()
            .max(1e-3);
        self.interval_start = now;
        let ms = |h: &Histogram, q: f64| h.quantile(q).map(|v| v as f64 / 1000.0);
        let phase = self.current_phase.map(usize::from);
        let summary = IntervalSummary {
            t: now.as_secs_f64(),
            duration_s: seconds,
            phase: phase.map_or_else(String::new, |p| self.phase_names[p].clone()),
            requests: set.requests,
            ok: set.ok,
            errors: set.requests - set.ok,
            rps: set.requests as f64 / seconds,
            target_rps: phase.and_then(|p| self.phase_target_rates[p]),
            in_flight,
            output_tokens: set.output_tokens,
            latency_p50_ms: ms(&set.latency, 0.50),
            latency_p95_ms: ms(&set.latency, 0.95),
            latency_p99_ms: ms(&set.latency, 0.99),
            ttft_p95_ms: ms(&set.ttft, 0.95),
            tpot_p95_ms: ms(&set.tpot, 0.95),
            schedule_lag_p99_ms: ms(&set.schedule_lag, 0.99),
        };
        // Reset in place: the histograms keep their memory for the next second.
        self.interval.reset();
        self.intervals.push(summary.clone());
        summary
    }

    /// Statistics of everything recorded so far.
    pub fn overall(&self) -> MetricSet {
        let mut all = MetricSet::default();
        for step in self.phases.iter().flat_map(|p| &p.steps) {
            all += &step.overall;
        }
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::plan_steps;
    use crate::outcome::ErrorKind;
    use crate::plan::{Overrides, resolve_source};

    fn plan() -> Plan {
        let source = "[[models]]\nname='a'\n[[models]]\nname='b'\n\
            [[phases]]\nname='one'\nduration='2s'\nload={type='constant',rate=5}\n\
            [[phases]]\nname='two'\nload={type='sweep',levels=[1,2],step_duration='1s'}\n";
        resolve_source("t.toml", source, None, &Overrides::default()).unwrap()
    }

    fn outcome(
        phase: u16,
        step: u16,
        model: u16,
        lag_ms: u64,
        error: Option<ErrorKind>,
    ) -> Outcome {
        Outcome {
            slot: Slot {
                phase,
                step,
                model,
                task: 0,
            },
            intended: Duration::from_millis(100),
            sent: Duration::from_millis(100 + lag_ms),
            first_token: None,
            last_token: None,
            end: Duration::from_millis(300),
            output_tokens: 3,
            tokens_from_usage: true,
            itl_from_usage: false,
            prompt_tokens: None,
            status: 200,
            error,
            in_flight: 4,
            worker_was_ready: true,
            trace_id: 0,
            other_model: false,
            checks_run: 0,
            checks_failed: 0,
            turn: 0,
            last_turn: false,
            session_start: Duration::ZERO,
        }
    }

    #[test]
    fn outcomes_land_in_their_step_model_and_interval() {
        let plan = plan();
        let mut agg = Aggregator::new(&plan, &plan_steps(&plan));
        agg.record(Event::StepStarted {
            phase: 1,
            step: 1,
            at: Duration::from_secs(3),
        });
        agg.record(Event::Outcome(outcome(1, 1, 1, 0, None)));
        agg.record(Event::Outcome(outcome(
            0,
            0,
            0,
            50,
            Some(ErrorKind::Http5xx),
        )));
        let step = &agg.phases[1].steps[1];
        assert_eq!(
            (
                step.overall.requests,
                step.models[1].requests,
                step.models[0].requests
            ),
            (1, 1, 0)
        );
        assert_eq!(agg.phases[0].steps[0].overall.late_sends, 1);
        assert_eq!(agg.peak_in_flight, 4);
        let interval = agg.close_interval(Duration::from_secs(1), 2);
        assert_eq!(
            (interval.requests, interval.errors, interval.phase.as_str()),
            (2, 1, "two")
        );
        assert_eq!(interval.rps, 2.0);
        let next = agg.close_interval(Duration::from_secs(2), 0);
        assert_eq!(next.requests, 0);
        assert_eq!(agg.overall().requests, 2);
        assert_eq!(agg.generator_lag.len(), 2);
    }

    #[test]
    fn itl_and_unsent_are_kept_per_step() {
        let plan = plan();
        let mut agg = Aggregator::new(&plan, &plan_steps(&plan));
        let mut h = Histogram::new();
        h.record(10_000);
        agg.record(Event::Itl {
            slot: Slot {
                phase: 0,
                step: 0,
                model: 1,
                task: 0,
            },
            histogram: h,
        });
        agg.record(Event::StepFinished {
            phase: 0,
            step: 0,
            at: Duration::from_secs(2),
            unsent: 7,
        });
        let step = &agg.phases[0].steps[0];
        assert_eq!(
            (
                step.overall.histogram(Distribution::Itl).len(),
                step.models[1].histogram(Distribution::Itl).len(),
                step.unsent
            ),
            (1, 1, 7)
        );
    }
}
