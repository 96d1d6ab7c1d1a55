//! Judging thresholds: each plan threshold, in its scope (the run, a
//! phase, a model), against the figure its metric names — request
//! statistics, trace look-ups, or what the samplers saw. A metric without
//! data is NO DATA, which fails: a check that could not be made is not a
//! pass. Pure: every figure comes in as an argument.

use crate::metric::{Family, Metric, Stat};
use crate::plan::{Plan, Threshold};
use crate::report::{
    CoverageGroup, IntervalSummary, ModelReport, ObservedReport, PhaseReport, Recovery, Scope,
    ServerChecks, StatsBlock, TaskReport, ThresholdResult, ThresholdStatus, TraceReport,
    WindowStats,
};

use crate::stats::SeriesStats;
/// What thresholds are judged on.
pub(super) struct Judged<'a> {
    pub overall: &'a StatsBlock,
    pub phases: &'a [PhaseReport],
    pub models: &'a [ModelReport],
    pub tasks: &'a [TaskReport],
    pub intervals: &'a [IntervalSummary],
    pub traces: Option<&'a TraceReport>,
    pub observed: Option<&'a ObservedReport>,
    pub recovery: &'a [Recovery],
    pub server: &'a ServerChecks,
    /// The observability validator's result (fault drills included).
    pub validation: Option<&'a crate::report::Validation>,
}

/// One scope's request statistics, trace group and sampled values.
struct Within<'a> {
    scope: Scope,
    stats: &'a StatsBlock,
    peak_rps: Option<f64>,
    /// `None` at run scope; a phase's or model's coverage group otherwise.
    group: Option<Option<&'a CoverageGroup>>,
    /// A phase's sampled values within its window; `None`: the whole run's
    /// (the run and a model, which the server's totals do not split).
    window: Option<&'a [WindowStats]>,
}

/// Every threshold of the plan, run scope first, then each phase's, each
/// model's and each task's, in plan order.
pub(super) fn judge_all(plan: &Plan, judged: &Judged<'_>) -> Vec<ThresholdResult> {
    let (intervals, traces) = (judged.intervals, judged.traces);
    let run = Within {
        scope: Scope::Run,
        stats: judged.overall,
        peak_rps: peak_rps(intervals, None),
        group: None,
        window: None,
    };
    let mut results: Vec<ThresholdResult> = plan
        .thresholds
        .iter()
        .map(|t| judge(t, &run, judged))
        .collect();
    for (i, (phase, report)) in plan.phases.iter().zip(judged.phases).enumerate() {
        let within = Within {
            scope: Scope::Phase(phase.name.clone()),
            stats: &report.stats,
            peak_rps: peak_rps(intervals, Some(&phase.name)),
            group: Some(traces.and_then(|t| t.by_phase.get(i))),
            window: Some(&report.sampled),
        };
        results.extend(phase.thresholds.iter().map(|t| judge(t, &within, judged)));
    }
    for (i, (model, report)) in plan.models.iter().zip(judged.models).enumerate() {
        let within = Within {
            scope: Scope::Model(model.name.clone()),
            stats: &report.stats,
            peak_rps: None,
            group: Some(traces.and_then(|t| t.by_model.get(i))),
            window: None,
        };
        results.extend(model.thresholds.iter().map(|t| judge(t, &within, judged)));
    }
    for task in &plan.tasks {
        let Some(report) = judged.tasks.iter().find(|r| r.task == task.name) else {
            continue;
        };
        let within = Within {
            scope: Scope::Task(task.name.clone()),
            stats: &report.stats,
            peak_rps: None,
            // Traces are not kept per task: no data, never the run's.
            group: Some(None),
            window: None,
        };
        results.extend(task.thresholds.iter().map(|t| judge(t, &within, judged)));
    }
    results
}

/// Highest 1-second rate, over the whole run or one phase's intervals.
/// A run's last, partial interval is left out: a few requests over a
/// fraction of a second would read as a spike that never happened.
pub(super) fn peak_rps(intervals: &[IntervalSummary], phase: Option<&str>) -> Option<f64> {
    intervals
        .iter()
        .filter(|i| i.duration_s >= 0.99 && phase.is_none_or(|p| i.phase == p))
        .map(|i| i.rps)
        .reduce(f64::max)
}

/// Judges one threshold within a scope: trace metrics on the look-ups,
/// sampled values on what the samplers saw (within a phase's window at
/// phase scope, over the whole run otherwise), the rest on the scope's
/// request statistics.
fn judge(t: &Threshold, within: &Within<'_>, judged: &Judged<'_>) -> ThresholdResult {
    let achieved = match t.metric.family() {
        Family::Requests => request_figure(&t.metric, within.stats, within.peak_rps),
        Family::Traces => trace_figure(&t.metric, judged.traces, within.group),
        Family::Observed => match (&t.metric, within.window) {
            (Metric::Sampled { stat, name }, Some(window)) => window_figure(*stat, name, window),
            _ => observed_figure(&t.metric, judged.observed),
        },
        Family::Analysis => analysis_figure(&t.metric, &within.scope, judged),
    };
    result(t, within.scope.clone(), achieved)
}

/// Judges a request-statistics threshold on `stats` alone (abort-on-fail
/// judges the run so far this way).
pub fn evaluate(
    threshold: &Threshold,
    scope: Scope,
    stats: &StatsBlock,
    peak_rps: Option<f64>,
) -> ThresholdResult {
    result(
        threshold,
        scope,
        request_figure(&threshold.metric, stats, peak_rps),
    )
}

fn result(threshold: &Threshold, scope: Scope, achieved: Option<f64>) -> ThresholdResult {
    let status = match achieved {
        None => ThresholdStatus::NoData,
        Some(v) if threshold.op.holds(v, threshold.bound) => ThresholdStatus::Pass,
        Some(_) => ThresholdStatus::Fail,
    };
    ThresholdResult {
        expression: threshold.expression.clone(),
        scope,
        metric: threshold.metric.clone(),
        label: threshold.metric.label(),
        target: threshold.target_display(),
        achieved,
        achieved_display: achieved.map_or_else(|| "no data".into(), |v| threshold.display_value(v)),
        status,
    }
}

/// A request metric's figure in its unit; `None` without data.
fn request_figure(metric: &Metric, stats: &StatsBlock, peak_rps: Option<f64>) -> Option<f64> {
    let sent = stats.requests > 0;
    let timed = stats.duration_s > 0.0;
    match metric {
        Metric::Distribution { stat, of } => stats.quantiles(*of).map(|q| stat.of(&q)),
        Metric::ErrorRate => sent.then_some(stats.error_rate),
        Metric::TimeoutRate => sent.then_some(stats.timeout_rate),
        Metric::Rps => timed.then_some(stats.rps),
        Metric::PeakRps => peak_rps,
        Metric::OutputTokensPerS => timed.then_some(stats.output_tokens_per_s),
        Metric::Requests => Some(stats.requests as f64),
        Metric::Goodput => stats.goodput_per_s,
        Metric::SloAttainment => stats.slo_attainment,
        Metric::Checks => stats.checks_rate(),
        _ => None,
    }
}

/// A trace figure: the run's, or with `group` a phase's or model's (which
/// know coverage, not missing spans). `None` when no trace was checked.
fn trace_figure(
    metric: &Metric,
    traces: Option<&TraceReport>,
    group: Option<Option<&CoverageGroup>>,
) -> Option<f64> {
    match (metric, group) {
        (Metric::TraceCoverage, None) => traces.and_then(|t| t.coverage),
        (Metric::TraceCoverage, Some(group)) => group.and_then(|g| g.coverage),
        (Metric::MissingSpans, None) => traces
            .filter(|t| t.checked > 0)
            .map(|t| t.missing_spans as f64),
        _ => None,
    }
}

/// A conclusion's figure: the slowest recovery; orphaned tasks and drain
/// time are the run's (the server's totals do not split by phase).
fn analysis_figure(metric: &Metric, scope: &Scope, judged: &Judged<'_>) -> Option<f64> {
    match metric {
        Metric::OrphanedTasks => judged.server.orphans.as_ref().map(|o| o.count),
        Metric::ObservabilityAgreement => {
            let checks = &judged.server.agreement;
            let agree = checks.iter().filter(|c| c.pass).count();
            (!checks.is_empty()).then(|| agree as f64 / checks.len() as f64)
        }
        Metric::AlertsExpectedFired => {
            let d = judged
                .validation?
                .drills
                .as_ref()
                .filter(|d| d.expected > 0)?;
            Some(d.expected_fired as f64 / d.expected as f64)
        }
        Metric::AlertsFiredUnexpected => {
            let d = judged.validation?.drills.as_ref()?;
            Some(d.unexpected.len() as f64)
        }
        Metric::DrainTime => {
            let drain = judged.observed?.drain.as_ref()?;
            drain.drain_time_s.map(|s| s * 1000.0)
        }
        _ => recovery_figure(scope, judged.recovery),
    }
}

/// The slowest recovery (ms): after every spike at run scope, after the
/// phase itself at phase scope. `None` when there was no spike, or one
/// the stack never recovered from (the report says which).
fn recovery_figure(scope: &Scope, recovery: &[Recovery]) -> Option<f64> {
    let relevant: Vec<&Recovery> = recovery
        .iter()
        .filter(|r| match scope {
            Scope::Phase(name) => &r.after_phase == name,
            _ => true,
        })
        .collect();
    if relevant.is_empty() {
        return None;
    }
    relevant
        .iter()
        .map(|r| r.recovery_s.map(|s| s * 1000.0))
        .collect::<Option<Vec<f64>>>()?
        .into_iter()
        .reduce(f64::max)
}

/// A sampled value's statistic within a window.
fn window_figure(stat: Stat, name: &str, window: &[WindowStats]) -> Option<f64> {
    let w = window
        .iter()
        .find(|w| w.name == name && w.stats.samples > 0)?;
    series_figure(stat, &w.stats)
}

/// The statistic `stat` of a sampled series (those a series supports).
fn series_figure(stat: Stat, stats: &SeriesStats) -> Option<f64> {
    match stat {
        Stat::Max => stats.max,
        Stat::Min => stats.min,
        Stat::Avg => stats.avg,
        Stat::P95 => stats.p95,
        _ => None,
    }
}

/// What the samplers saw: a sampled value's statistic, the Prometheus
/// queries' latency, or the alerts that began during the run.
fn observed_figure(metric: &Metric, observed: Option<&ObservedReport>) -> Option<f64> {
    let o = observed?;
    match metric {
        Metric::Sampled { stat, name } => series_figure(*stat, &o.value(name)?.stats),
        Metric::QueryLatency { stat } => o.query_latency_ms.map(|q| stat.of(&q)),
        Metric::AlertsFired => o
            .alerts
            .as_ref()
            .filter(|a| a.error.is_none())
            .map(|a| a.began_during_run as f64),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::plan::threshold::parse;
    use crate::stats::Quantiles;

    fn stats() -> StatsBlock {
        let q = Quantiles {
            count: 10,
            min: 5.0,
            mean: 50.0,
            p50: 40.0,
            p90: 80.0,
            p95: 90.0,
            p99: 120.0,
            max: 130.0,
        };
        StatsBlock {
            requests: 200,
            ok: 199,
            error_rate: 0.005,
            duration_s: 10.0,
            rps: 20.0,
            distributions: BTreeMap::from([("latency_ms".to_owned(), q)]),
            ..StatsBlock::default()
        }
    }

    #[test]
    fn thresholds_pass_fail_and_no_data() {
        let cases = [
            ("p95(latency) < 100ms", ThresholdStatus::Pass, "90ms"),
            ("p99(latency) < 100ms", ThresholdStatus::Fail, "120ms"),
            ("avg(latency) <= 50ms", ThresholdStatus::Pass, "50ms"),
            ("error_rate < 1%", ThresholdStatus::Pass, "0.5%"),
            ("rps >= 20", ThresholdStatus::Pass, "20"),
            ("p95(ttft) < 1s", ThresholdStatus::NoData, "no data"),
            ("peak_rps >= 150", ThresholdStatus::Fail, "25"),
        ];
        for (expr, status, shown) in cases {
            let r = evaluate(&parse(expr).unwrap(), Scope::Run, &stats(), Some(25.0));
            assert_eq!(
                (r.status, r.achieved_display.as_str()),
                (status, shown),
                "{expr}"
            );
        }
    }

    #[test]
    fn rates_without_requests_are_no_data() {
        let empty = StatsBlock::default();
        let r = evaluate(&parse("error_rate < 1%").unwrap(), Scope::Run, &empty, None);
        assert_eq!(r.status, ThresholdStatus::NoData);
    }

    #[test]
    fn results_carry_the_typed_metric_and_scope() {
        let t = parse("max(kv_usage) < 50%").unwrap();
        let r = result(&t, Scope::Phase("peak".into()), Some(0.62));
        assert_eq!(r.metric, t.metric);
        assert_eq!(r.scope.label(), "peak");
        assert_eq!(
            (r.target.as_str(), r.achieved_display.as_str(), r.status),
            ("< 50%", "62%", ThresholdStatus::Fail)
        );
    }
}
