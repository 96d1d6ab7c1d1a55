//! Analysis: pure functions from what the run measured to the report —
//! per-phase, per-step and per-model statistics (with the sampled values
//! cut at their bounds), threshold judgement (`thresholds`), the
//! generator's self-check, the verdict, and the judgement users write by
//! hand: latency drivers (`drivers`), saturation knee and degradation
//! (`saturation`), recovery (`recovery`), steadiness and memory growth
//! (`steadiness`), the optimal batch size (`batch`), and the findings that
//! follow (`findings`). No I/O, no clock: every time and sample comes in
//! as an argument.

mod agreement;
mod batch;
mod cold_start;
mod drivers;
mod findings;
mod orphans;
mod recovery;
pub mod regression;
pub mod repeats;
mod routing;
mod saturation;
mod sessions;
mod steadiness;
mod tasks;
mod thresholds;

pub use thresholds::evaluate;

use crate::aggregate::{Aggregator, StepState};
use crate::exit;
use crate::load::Step;
use crate::outcome::ErrorKind;
use crate::plan::Plan;
use crate::report::{
    Explanation, GeneratorHealth, ModelReport, Outcome, PhaseReport, Report, SCHEMA_VERSION,
    ServerChecks, StatsBlock, StepReport, Summary, Target, ThresholdResult, ThresholdStatus, Tool,
    TraceReport, Verdict, WindowStats,
};
use crate::stats::{MetricSet, Series};

/// The generator's lag p99 above which its own timing cannot be trusted.
const MAX_GENERATOR_LAG_P99_MS: f64 = 50.0;
/// Share of the available cores above which the generator was saturated.
const MAX_CPU_SHARE: f64 = 0.9;

/// Everything a finished run hands to analysis.
pub struct RunRecord<'a> {
    pub plan: &'a Plan,
    pub steps: &'a [Vec<Step>],
    pub aggregator: &'a Aggregator,
    pub run_id: String,
    pub started_at: String,
    pub ended_at: String,
    /// Wall time from the run's start to its last response, seconds.
    pub elapsed_s: f64,
    pub target: Target,
    pub interrupted: bool,
    /// Set when abort-on-fail stopped the run.
    pub aborted_by: Option<String>,
    /// Generator CPU in cores busy, one sample a second.
    pub generator_cpu: Series,
    pub cores_available: u64,
    /// Trace coverage, when the plan asked for it (`traces::finish`).
    pub traces: Option<TraceReport>,
    /// Server-side values sampled during the run.
    pub observed: Option<crate::report::ObservedReport>,
    /// Their series on the run clock.
    pub sampled_series: Vec<Series>,
    /// The observability validator's checks, when a Prometheus was given.
    pub validation: Option<crate::report::Validation>,
}

pub fn build_report(record: &RunRecord<'_>) -> Report {
    let phases = phase_reports(record);
    let models = model_reports(record.plan, record.aggregator, record.elapsed_s);
    let tasks = tasks::run_tasks(record.plan, record.aggregator, record.elapsed_s);
    let overall = StatsBlock::from_set(&record.aggregator.overall(), record.elapsed_s, None);
    let explanation = explain(record, &phases);
    let orphans = orphans::orphans(record.observed.as_ref(), &overall);
    let (agreement, not_checked) = agreement::agreement(
        record.plan,
        record.observed.as_ref(),
        &overall,
        &models,
        orphans.as_ref(),
    );
    let model_names: Vec<String> = record.plan.models.iter().map(|m| m.name.clone()).collect();
    let server = ServerChecks {
        orphans,
        agreement,
        not_checked,
        cold_starts: cold_start::cold_starts(
            &record.aggregator.model_starts,
            &models,
            &overall,
            &model_names,
        ),
    };
    let judged = thresholds::Judged {
        overall: &overall,
        phases: &phases,
        models: &models,
        tasks: &tasks,
        intervals: &record.aggregator.intervals,
        traces: record.traces.as_ref(),
        observed: record.observed.as_ref(),
        recovery: &explanation.recovery,
        server: &server,
        validation: record.validation.as_ref(),
    };
    let thresholds = thresholds::judge_all(record.plan, &judged);
    let generator = generator_health(record);
    let verdict = verdict(record, &thresholds, &generator);
    let routing = routing::routing(record.plan, record.observed.as_ref(), &models);
    let mut report = Report {
        schema_version: SCHEMA_VERSION,
        tool: Tool {
            name: "infercheck".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        },
        run_id: record.run_id.clone(),
        started_at: record.started_at.clone(),
        ended_at: record.ended_at.clone(),
        duration_s: record.elapsed_s,
        plan_name: record.plan.name.clone(),
        plan: serde_json::to_value(record.plan).unwrap_or_default(),
        target: record.target.clone(),
        verdict,
        summary: summary(record, &overall),
        notes: notes(record, &overall),
        overall,
        phases,
        models,
        tasks,
        sessions: sessions::sessions(record.plan, record.aggregator.sessions.as_ref()),
        thresholds,
        generator,
        intervals: record.aggregator.intervals.clone(),
        series: std::iter::once(record.generator_cpu.clone())
            .chain(record.sampled_series.iter().cloned())
            .collect(),
        traces: record.traces.clone(),
        observed: record.observed.clone(),
        explanation,
        server,
        routing,
        validation: record.validation.clone(),
        regression: None,
        history: None,
        raw_data: Vec::new(),
        repeats: None,
    };
    let (optimizations, risks) = findings::findings(&report);
    report.explanation.optimizations = optimizations;
    report.explanation.risks = risks;
    report
}

/// What the measurements say beyond their figures: drivers, saturation,
/// recovery, steadiness, memory, the optimal batch (findings come last,
/// from the report they explain).
fn explain(record: &RunRecord<'_>, phases: &[PhaseReport]) -> Explanation {
    let intervals = &record.aggregator.intervals;
    let sampled = &record.sampled_series;
    Explanation {
        drivers: drivers::drivers(intervals, sampled),
        saturation: saturation::saturation(record.plan, phases, intervals),
        recovery: recovery::recovery(record.plan, phases, intervals, sampled),
        steadiness: steadiness::steadiness(record.plan, phases, intervals),
        memory: steadiness::memory(sampled),
        optimal_batch: batch::optimal_batch(record.plan, intervals, sampled),
        optimizations: Vec::new(),
        risks: Vec::new(),
        rules_checked: findings::rules_checked(),
    }
}

fn summary(record: &RunRecord<'_>, overall: &StatsBlock) -> Summary {
    Summary {
        requests: overall.requests,
        ok: overall.ok,
        errors: overall.requests - overall.ok,
        peak_concurrency: record.aggregator.peak_in_flight,
        peak_rps: thresholds::peak_rps(&record.aggregator.intervals, None).unwrap_or(0.0),
        achieved_rps: overall.rps,
        peak_target_rps: record
            .plan
            .phases
            .iter()
            .filter_map(|p| p.load.peak_rate())
            .reduce(f64::max),
    }
}

/// How far past a window's end a sample still counts for it: samples
/// fall on the sampler's ticks, which need not meet a step's end exactly.
const WINDOW_SLACK_S: f64 = 0.5;

/// Every sampled series summed up within `(start, end]` of the run clock.
fn sampled_within(record: &RunRecord<'_>, start: f64, end: f64) -> Vec<WindowStats> {
    record
        .sampled_series
        .iter()
        .filter_map(|series| WindowStats::of(series, start, end + WINDOW_SLACK_S))
        .collect()
}

/// Seconds a step actually covered: its planned length, or less when the
/// run stopped early or its request count was done first.
fn step_seconds(step: &Step, state: &StepState, elapsed_s: f64) -> f64 {
    let end_s = state
        .completed_at
        .map_or(elapsed_s, |at| at.as_secs_f64().min(elapsed_s));
    match state.started_at {
        Some(start) => (end_s - start.as_secs_f64()).clamp(0.0, step.duration.as_secs_f64()),
        None => 0.0,
    }
}

fn step_report(
    record: &RunRecord<'_>,
    step: &Step,
    state: &StepState,
    target: Option<f64>,
) -> StepReport {
    let secs = step_seconds(step, state, record.elapsed_s);
    let start_s = state
        .started_at
        .map_or(record.elapsed_s, |s| s.as_secs_f64());
    StepReport {
        label: step.label.clone(),
        concurrency: step.concurrency().map(|c| c as u64),
        start_s,
        end_s: start_s + secs,
        stats: StatsBlock::from_set(&state.overall, secs, target),
        sampled: sampled_within(record, start_s, start_s + secs),
    }
}

fn phase_reports(record: &RunRecord<'_>) -> Vec<PhaseReport> {
    let (plan, agg) = (record.plan, record.aggregator);
    plan.phases
        .iter()
        .zip(record.steps)
        .zip(&agg.phases)
        .map(|((phase, steps), state)| {
            let target = phase.load.mean_rate();
            let mut overall = MetricSet::default();
            let mut models = vec![MetricSet::default(); plan.models.len()];
            let mut step_reports = Vec::new();
            for (step, step_state) in steps.iter().zip(&state.steps) {
                overall += &step_state.overall;
                for (i, sum) in models.iter_mut().enumerate() {
                    *sum += step_state.model(i);
                }
                step_reports.push(step_report(record, step, step_state, target));
            }
            let seconds: f64 = step_reports.iter().map(|s| s.end_s - s.start_s).sum();
            let start_s = step_reports.first().map_or(record.elapsed_s, |s| s.start_s);
            let end_s = step_reports.last().map_or(start_s, |s| s.end_s);
            PhaseReport {
                name: phase.name.clone(),
                load: phase.load.describe(),
                planned_duration_s: phase.duration.as_secs_f64(),
                planned_requests: phase.requests,
                start_s,
                end_s,
                max_tokens: phase.max_tokens,
                stats: StatsBlock::from_set(&overall, seconds, target),
                models: plan
                    .models
                    .iter()
                    .zip(&models)
                    .map(|(m, set)| ModelReport {
                        model: m.name.clone(),
                        weight: m.weight,
                        stats: StatsBlock::from_set(set, seconds, None),
                    })
                    .collect(),
                tasks: tasks::phase_tasks(plan, phase, &state.steps, seconds),
                peak_concurrency: state
                    .steps
                    .iter()
                    .map(|s| s.peak_in_flight)
                    .max()
                    .unwrap_or(0),
                sampled: sampled_within(record, start_s, end_s),
                steps: step_reports,
            }
        })
        .collect()
}

fn model_reports(plan: &Plan, agg: &Aggregator, elapsed_s: f64) -> Vec<ModelReport> {
    plan.models
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let mut set = MetricSet::default();
            for step in agg.phases.iter().flat_map(|p| &p.steps) {
                set += step.model(i);
            }
            ModelReport {
                model: m.name.clone(),
                weight: m.weight,
                stats: StatsBlock::from_set(&set, elapsed_s, None),
            }
        })
        .collect()
}

fn generator_health(record: &RunRecord<'_>) -> GeneratorHealth {
    let agg = record.aggregator;
    let lag_p99_ms = agg.generator_lag.quantile(0.99).map(|v| v as f64 / 1000.0);
    let cpu_avg = record.generator_cpu.mean().unwrap_or(0.0);
    let cpu_max = record.generator_cpu.max().unwrap_or(0.0);
    let mut reasons = Vec::new();
    if let Some(lag) =
        lag_p99_ms.filter(|l| *l > MAX_GENERATOR_LAG_P99_MS && agg.generator_lag.len() >= 20)
    {
        reasons.push(format!(
            "schedule lag p99 was {lag:.1}ms while workers were free (limit {MAX_GENERATOR_LAG_P99_MS}ms): the generator could not keep time"
        ));
    }
    let cores = record.cores_available.max(1) as f64;
    if cpu_avg >= MAX_CPU_SHARE * cores && record.generator_cpu.samples.len() >= 3 {
        reasons.push(format!(
            "the generator used {cpu_avg:.2} of {cores} cores on average: it was CPU-bound, so the target's limits were not measured"
        ));
    }
    let overall = agg.overall();
    GeneratorHealth {
        valid: reasons.is_empty(),
        reasons,
        cpu_cores_avg: cpu_avg,
        cpu_cores_max: cpu_max,
        cores_available: record.cores_available,
        schedule_lag_p99_ms: lag_p99_ms,
        late_sends: overall.late_sends,
        unsent_arrivals: agg
            .phases
            .iter()
            .flat_map(|p| &p.steps)
            .map(|s| s.unsent)
            .sum(),
    }
}

fn verdict(
    record: &RunRecord<'_>,
    thresholds: &[ThresholdResult],
    generator: &GeneratorHealth,
) -> Verdict {
    let stop = Stop {
        interrupted: record.interrupted,
        aborted_by: record.aborted_by.as_deref(),
    };
    judge(&stop, &record.aggregator.overall(), thresholds, generator)
}

/// How the run ended early, if it did.
struct Stop<'a> {
    interrupted: bool,
    /// The failing threshold that abort-on-fail stopped the run on.
    aborted_by: Option<&'a str>,
}

/// The verdict from what decides it, in order: a target that never
/// answered (could not run), an interruption, an invalid generator, then
/// the thresholds.
fn judge(
    stop: &Stop<'_>,
    overall: &MetricSet,
    thresholds: &[ThresholdResult],
    generator: &GeneratorHealth,
) -> Verdict {
    let failed: Vec<String> = thresholds
        .iter()
        .filter(|t| t.status != ThresholdStatus::Pass)
        .map(|t| {
            format!(
                "{} [{}]: achieved {}, target {}",
                t.expression,
                t.scope.label(),
                t.achieved_display,
                t.target
            )
        })
        .collect();
    let mut reasons = Vec::new();
    let (outcome, exit_code) = if let Some(why) = never_answered(overall) {
        reasons.push(why);
        (Outcome::Unreachable, exit::COULD_NOT_RUN)
    } else if stop.interrupted {
        reasons.push(match stop.aborted_by {
            Some(why) => format!("aborted on a failing threshold: {why}"),
            None => "interrupted before the plan finished; this report is partial".to_owned(),
        });
        if stop.aborted_by.is_some() {
            (Outcome::Fail, exit::THRESHOLDS_FAILED)
        } else {
            (Outcome::Interrupted, exit::COULD_NOT_RUN)
        }
    } else if !generator.valid {
        reasons.extend(generator.reasons.iter().cloned());
        (Outcome::Invalid, exit::RUN_INVALID)
    } else if !failed.is_empty() {
        (Outcome::Fail, exit::THRESHOLDS_FAILED)
    } else {
        (Outcome::Pass, exit::OK)
    };
    reasons.extend(failed);
    Verdict {
        outcome,
        exit_code,
        reasons,
    }
}

/// Why the run measured nothing of the target: it sent requests and every
/// one failed to connect (those the run itself cancelled aside). A target
/// that answered even once, with any status, was reached.
fn never_answered(overall: &MetricSet) -> Option<String> {
    let connect = overall.errors.get(ErrorKind::Connect);
    let cancelled = overall.errors.get(ErrorKind::Cancelled);
    let answered = overall.requests.saturating_sub(connect + cancelled);
    (connect > 0 && answered == 0).then(|| {
        format!(
            "the target never answered: {connect} of {} requests failed to connect",
            overall.requests
        )
    })
}

fn notes(record: &RunRecord<'_>, overall: &StatsBlock) -> Vec<String> {
    // The renderers state that latency is measured from the intended send
    // time beside every latency table; notes hold only run-specific caveats.
    let mut notes = Vec::new();
    if overall.tokens_counted_from_chunks > 0 {
        notes.push(format!(
            "{} successful requests carried no `usage` from the server: their output tokens were counted from content chunks.",
            overall.tokens_counted_from_chunks
        ));
    }
    let unsent: u64 = record
        .aggregator
        .phases
        .iter()
        .flat_map(|p| &p.steps)
        .map(|s| s.unsent)
        .sum();
    if unsent > 0 {
        notes.push(format!("{unsent} scheduled arrivals were never sent: every worker was busy until their step ended (in-flight cap {}).", record.plan.target.max_in_flight));
    }
    if overall.late_sends > 0 {
        notes.push(format!(
            "{} requests were sent more than {}ms after their intended time; their latency includes the wait.",
            overall.late_sends,
            crate::aggregate::LATE_TOLERANCE.as_millis()
        ));
    }
    let cancelled = overall.errors.get("cancelled").copied().unwrap_or(0);
    if overall.slo_checked > 0 && cancelled > 0 {
        notes.push(format!(
            "{cancelled} requests the run cancelled (still open when it stopped) are left out of goodput and SLO attainment: they were not the target's to meet."
        ));
    }
    if overall.error_rate > 0.01 {
        notes.push(format!(
            "{:.1} % of requests failed: latency percentiles are over successful requests unless labelled \"all requests\" (failures at their time of failure).",
            overall.error_rate * 100.0
        ));
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn requests(kinds: &[(Option<ErrorKind>, u64)]) -> MetricSet {
        let mut set = MetricSet::default();
        for (kind, n) in kinds {
            set.requests += n;
            match kind {
                Some(kind) => (0..*n).for_each(|_| set.errors.add(*kind)),
                None => set.ok += n,
            }
        }
        set
    }

    fn healthy() -> GeneratorHealth {
        GeneratorHealth {
            valid: true,
            reasons: Vec::new(),
            cpu_cores_avg: 0.1,
            cpu_cores_max: 0.2,
            cores_available: 2,
            schedule_lag_p99_ms: None,
            late_sends: 0,
            unsent_arrivals: 0,
        }
    }

    const RAN: Stop<'static> = Stop {
        interrupted: false,
        aborted_by: None,
    };

    #[test]
    fn a_target_that_never_answered_could_not_run() {
        let overall = requests(&[(Some(ErrorKind::Connect), 12)]);
        let verdict = judge(&RAN, &overall, &[], &healthy());
        assert_eq!(verdict.outcome, Outcome::Unreachable);
        assert_eq!(verdict.exit_code, exit::COULD_NOT_RUN);
        assert_eq!(
            verdict.reasons,
            ["the target never answered: 12 of 12 requests failed to connect"]
        );
    }

    #[test]
    fn never_answering_outranks_an_invalid_generator_and_an_abort() {
        let overall = requests(&[(Some(ErrorKind::Connect), 5)]);
        let mut generator = healthy();
        generator.valid = false;
        generator.reasons.push("CPU-bound".to_owned());
        let aborted = Stop {
            interrupted: true,
            aborted_by: Some("error_rate < 1%"),
        };
        for stop in [&RAN, &aborted] {
            let verdict = judge(stop, &overall, &[], &generator);
            assert_eq!(verdict.exit_code, exit::COULD_NOT_RUN);
            assert_eq!(verdict.outcome, Outcome::Unreachable);
        }
    }

    #[test]
    fn a_target_that_answered_once_was_reached() {
        let cases = [
            // One success among connect failures.
            vec![(Some(ErrorKind::Connect), 9), (None, 1)],
            // Any status counts as answering.
            vec![(Some(ErrorKind::Connect), 9), (Some(ErrorKind::Http5xx), 1)],
            // Timeouts are not connection failures.
            vec![(Some(ErrorKind::Timeout), 10)],
            // Nothing sent: nothing to judge the target by.
            vec![],
        ];
        for kinds in cases {
            let verdict = judge(&RAN, &requests(&kinds), &[], &healthy());
            assert_ne!(verdict.outcome, Outcome::Unreachable, "{kinds:?}");
            assert_ne!(verdict.exit_code, exit::COULD_NOT_RUN, "{kinds:?}");
        }
    }

    #[test]
    fn requests_the_run_cancelled_do_not_count_as_answers() {
        let overall = requests(&[
            (Some(ErrorKind::Connect), 8),
            (Some(ErrorKind::Cancelled), 2),
        ]);
        let verdict = judge(&RAN, &overall, &[], &healthy());
        assert_eq!(verdict.exit_code, exit::COULD_NOT_RUN);
        assert_eq!(
            verdict.reasons,
            ["the target never answered: 8 of 10 requests failed to connect"]
        );
    }
}
