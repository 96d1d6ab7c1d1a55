//! This run against a baseline run: each metric of the plan's
//! `[regression]` list (or its defaults) as baseline, now, change, the
//! change's confidence interval, the tolerance and a verdict
//! (`report::Regression`). Pure: two reports in, one table out.
//!
//! A change is *regressed* only when it is worse than its tolerance and
//! its interval excludes no change at all — so a move the noise explains
//! never fails a build, however large its point estimate. The intervals
//! come from `stats::bootstrap`: quantiles from the lossless histograms
//! (their effective sample shrunk by the per-second autocorrelation),
//! rates from moving blocks of the per-second intervals, proportions from
//! a Jeffreys posterior.

use crate::metric::{Metric, Stat};
use crate::plan::regression::{Allowed, Tolerance};
use crate::report::{
    BaselineIdentity, ChangeKind, Direction, IntervalSummary, Regression, RegressionRow,
    RegressionStatus, Report, StatsBlock, Verdict,
};
use crate::stats::bootstrap::{self, Cdf, REPLICATES};
use crate::stats::correlation::lag1_autocorrelation;
use crate::stats::distribution::Unit as DistUnit;
use crate::stats::{Distribution, Series};

/// The confidence of every interval.
pub const CONFIDENCE: f64 = 0.95;

/// How the baseline was found, for the table's heading.
#[derive(Clone, Debug)]
pub struct BaselineSource {
    /// `latest-pass`, `latest` or the path given.
    pub selected_by: String,
    /// Where its report.json was read.
    pub path: String,
}

/// Why two runs cannot be compared: one sentence per difference.
pub fn mismatches(base: &Report, now: &Report) -> Vec<String> {
    let mut out = Vec::new();
    if base.schema_version != now.schema_version {
        out.push(format!(
            "the baseline's report schema is {} and this run's {}",
            base.schema_version, now.schema_version
        ));
    }
    if base.plan_name != now.plan_name {
        out.push(format!(
            "the baseline ran plan `{}`, this run `{}`",
            base.plan_name, now.plan_name
        ));
    }
    let (b, n) = (target_identity(base), target_identity(now));
    if b != n {
        out.push(format!("the baseline's target was {b}, this run's {n}"));
    }
    let (b, n) = (model_names(base), model_names(now));
    if b != n {
        out.push(format!(
            "the baseline requested {}, this run {}",
            b.join(", "),
            n.join(", ")
        ));
    }
    out
}

/// The target as an identity: the embedded simulator listens on a new
/// port every run, so it is named, not addressed.
pub fn target_identity(report: &Report) -> String {
    if report.target.embedded_simulator {
        "the embedded simulator".to_owned()
    } else {
        report.target.base_url.trim_end_matches('/').to_owned()
    }
}

fn model_names(report: &Report) -> Vec<String> {
    let mut names: Vec<String> = report.models.iter().map(|m| m.model.clone()).collect();
    names.sort();
    names
}

/// The comparison of `now` with `base` over `tolerances`; `forced` lists
/// the [`mismatches`] the caller chose to compare past.
pub fn compare(
    base: &Report,
    now: &Report,
    tolerances: &[Tolerance],
    source: BaselineSource,
    forced: Vec<String>,
) -> Regression {
    let rows = tolerances
        .iter()
        .filter_map(|t| row(base, now, t))
        .collect();
    Regression {
        baseline: BaselineIdentity {
            run_id: base.run_id.clone(),
            plan_name: base.plan_name.clone(),
            started_at: base.started_at.clone(),
            outcome: outcome_name(base),
            path: source.path,
        },
        selected_by: source.selected_by,
        forced,
        confidence: CONFIDENCE,
        replicates: REPLICATES,
        rows,
        notes: notes(base, now),
    }
}

/// The verdict's outcome as report.json spells it (`pass`, `fail`).
pub fn outcome_name(report: &Report) -> String {
    serde_json::to_value(report.verdict.outcome)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn notes(base: &Report, now: &Report) -> Vec<String> {
    let mut notes = Vec::new();
    if base.plan != now.plan {
        notes.push(format!(
            "The resolved plans differ (same name `{}`): settings, durations or the simulator's configuration changed between the runs.",
            now.plan_name
        ));
    }
    if base.tool.version != now.tool.version {
        notes.push(format!(
            "The baseline was measured by infercheck {}, this run by {}.",
            base.tool.version, now.tool.version
        ));
    }
    notes
}

/// A failed comparison fails the run: a passing verdict becomes a
/// failure (exit 4) and each regressed row is a reason.
pub fn judge(verdict: &mut Verdict, regression: &Regression) {
    let reasons: Vec<String> = regression.regressed().map(reason).collect();
    if reasons.is_empty() {
        return;
    }
    if verdict.outcome == crate::report::Outcome::Pass {
        verdict.outcome = crate::report::Outcome::Fail;
        verdict.exit_code = crate::exit::THRESHOLDS_FAILED;
    }
    verdict.reasons.extend(reasons);
}

fn reason(row: &RegressionRow) -> String {
    let change = row.change.map(|c| format_change(c, row.change_kind));
    let interval = row.interval.map(|(lo, hi)| {
        format!(
            "{} … {}",
            format_change(lo, row.change_kind),
            format_change(hi, row.change_kind)
        )
    });
    format!(
        "regressed against the baseline: {} {} ({}% interval {}), tolerance {}",
        row.label,
        change.unwrap_or_default(),
        (CONFIDENCE * 100.0).round(),
        interval.unwrap_or_else(|| "none".into()),
        row.tolerance.as_deref().unwrap_or("none")
    )
}

/// `+12.3%` or `+0.42pp`.
pub fn format_change(value: f64, kind: ChangeKind) -> String {
    match kind {
        ChangeKind::Relative => format!("{:+.1}%", value * 100.0),
        ChangeKind::Points => format!("{:+.2}pp", value * 100.0),
    }
}

/// The replicates of one side and its point value.
struct Side {
    value: Option<f64>,
    replicates: Option<Vec<f64>>,
    /// A second noise model of the same figure (a percentile's drift over
    /// the run's seconds): the row's interval is the union of the two.
    drift: Option<Vec<f64>>,
    method: String,
}

impl Side {
    fn none() -> Side {
        Side {
            value: None,
            replicates: None,
            drift: None,
            method: String::new(),
        }
    }
}

fn row(base: &Report, now: &Report, tolerance: &Tolerance) -> Option<RegressionRow> {
    let seed = bootstrap::seed_for(&tolerance.key);
    let (b, n) = (
        side(base, &tolerance.metric, seed),
        side(now, &tolerance.metric, seed ^ 1),
    );
    // Measured by neither run (goodput without an SLO, a GPU nobody
    // sampled): nothing to compare.
    if b.value.is_none() && n.value.is_none() {
        return None;
    }
    let kind = match tolerance.allowed {
        Some(Allowed::Points(_)) => ChangeKind::Points,
        _ if is_rate(&tolerance.metric) => ChangeKind::Points,
        _ => ChangeKind::Relative,
    };
    let relative = kind == ChangeKind::Relative;
    let change = match (b.value, n.value) {
        (Some(b), Some(n)) if relative && b == 0.0 && n == 0.0 => Some(0.0),
        (Some(b), Some(n)) if relative && b != 0.0 => Some(n / b - 1.0),
        (Some(b), Some(n)) if !relative => Some(n - b),
        _ => None,
    };
    let interval = |base: Option<Vec<f64>>, now: Option<Vec<f64>>| match (base, now) {
        (Some(b), Some(n)) if change.is_some() => {
            bootstrap::interval(&mut bootstrap::changes(&b, &n, relative), CONFIDENCE)
        }
        _ => None,
    };
    let sampling = interval(b.replicates, n.replicates);
    let drift = interval(b.drift, n.drift);
    let spread = change.and(spread_interval(base, now, tolerance, relative));
    let interval = [sampling, drift, spread.as_ref().map(|s| s.0)]
        .into_iter()
        .flatten()
        .reduce(|(lo, hi), (l, h)| (lo.min(l), hi.max(h)));
    let mut method = if n.method.is_empty() {
        b.method
    } else {
        n.method
    };
    if let Some((_, runs)) = spread {
        method.push_str(&format!("; joined with Student's t over {runs}"));
    }
    let worse = if tolerance.higher_is_worse {
        Direction::Higher
    } else {
        Direction::Lower
    };
    let tolerance_value = tolerance.allowed.map(|a| match a {
        Allowed::Relative(v) | Allowed::Points(v) => {
            if tolerance.higher_is_worse {
                v
            } else {
                -v
            }
        }
    });
    let status = status(change, interval, worse, tolerance_value);
    Some(RegressionRow {
        key: tolerance.key.clone(),
        label: tolerance.metric.label(),
        unit: unit(&tolerance.metric, base, now),
        worse,
        baseline: b.value,
        now: n.value,
        change,
        change_kind: kind,
        interval,
        tolerance: tolerance.allowed.map(|_| tolerance.written.clone()),
        tolerance_value,
        method,
        status,
    })
}

/// The figures of `metric` in each run behind `report`: its `--repeat`
/// runs, else the report's own figure alone.
fn run_values(report: &Report, tolerance: &Tolerance) -> Vec<f64> {
    let repeated = report
        .repeats
        .as_ref()
        .and_then(|r| r.rows.iter().find(|row| row.key == tolerance.key))
        .map(|row| row.values.iter().flatten().copied().collect::<Vec<f64>>());
    match repeated {
        Some(values) if !values.is_empty() => values,
        _ => value_of(report, &tolerance.metric).into_iter().collect(),
    }
}

/// The interval of the change in the runs' mean from the spread between
/// repeated runs (pooled two-sample Student's t; a single run on one side
/// is one draw of the same spread), when a side has two runs or more —
/// the noise a single run's own intervals cannot see. Also says over how
/// many runs.
fn spread_interval(
    base: &Report,
    now: &Report,
    tolerance: &Tolerance,
    relative: bool,
) -> Option<((f64, f64), String)> {
    use statrs::distribution::{ContinuousCDF, StudentsT};
    let (b, n) = (run_values(base, tolerance), run_values(now, tolerance));
    let df = b.len().saturating_sub(1) + n.len().saturating_sub(1);
    if b.is_empty() || n.is_empty() || df == 0 {
        return None;
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let squares = |v: &[f64]| {
        let m = mean(v);
        v.iter().map(|x| (x - m).powi(2)).sum::<f64>()
    };
    let pooled = (squares(&b) + squares(&n)) / df as f64;
    let se = (pooled * (1.0 / b.len() as f64 + 1.0 / n.len() as f64)).sqrt();
    let t = StudentsT::new(0.0, 1.0, df as f64)
        .ok()?
        .inverse_cdf(1.0 - (1.0 - CONFIDENCE) / 2.0);
    let (mb, diff) = (mean(&b), mean(&n) - mean(&b));
    let (lo, hi) = (diff - t * se, diff + t * se);
    let interval = match relative {
        true if mb != 0.0 => (lo / mb, hi / mb),
        true => return None,
        false => (lo, hi),
    };
    Some((interval, format!("{} and {} runs", b.len(), n.len())))
}

/// The verdict of a change: noise unless the interval excludes zero;
/// then regressed or improved beyond the tolerance, else within it.
fn status(
    change: Option<f64>,
    interval: Option<(f64, f64)>,
    worse: Direction,
    tolerance: Option<f64>,
) -> RegressionStatus {
    let Some(change) = change else {
        return RegressionStatus::NoData;
    };
    let significant = match interval {
        Some((lo, hi)) => lo > 0.0 || hi < 0.0,
        // A figure without a noise model (a maximum): any change counts.
        None => change != 0.0,
    };
    if !significant {
        return RegressionStatus::WithinNoise;
    }
    let Some(tolerance) = tolerance else {
        return RegressionStatus::Changed;
    };
    let worse_by = match worse {
        Direction::Higher => change,
        Direction::Lower => -change,
    };
    let allowed = tolerance.abs();
    if worse_by > allowed {
        RegressionStatus::Regressed
    } else if -worse_by > allowed {
        RegressionStatus::Improved
    } else {
        RegressionStatus::WithinTolerance
    }
}

fn is_rate(metric: &Metric) -> bool {
    matches!(
        metric,
        Metric::ErrorRate | Metric::TimeoutRate | Metric::SloAttainment
    )
}

/// The point value of `metric` in `report` (what its row shows).
pub fn value_of(report: &Report, metric: &Metric) -> Option<f64> {
    side(report, metric, 0).value
}

fn unit(metric: &Metric, base: &Report, now: &Report) -> String {
    match metric {
        Metric::Sampled { name, .. } => series(now, name)
            .or_else(|| series(base, name))
            .map(|s| s.unit.clone())
            .unwrap_or_default(),
        other => unit_of(other),
    }
}

/// The unit a client metric's row shows: "ms", "ratio", "req/s", "tok/s".
pub fn unit_of(metric: &Metric) -> String {
    match metric {
        Metric::Distribution { of, .. } => match of.spec().unit {
            DistUnit::Time => "ms".into(),
            DistUnit::PerSecond(what) => format!("{what}/s"),
        },
        Metric::ErrorRate | Metric::TimeoutRate | Metric::SloAttainment => "ratio".into(),
        Metric::Rps | Metric::Goodput => "req/s".into(),
        Metric::OutputTokensPerS => "tok/s".into(),
        _ => String::new(),
    }
}

/// One report's value of `metric` and its bootstrap replicates.
fn side(report: &Report, metric: &Metric, seed: u64) -> Side {
    let mut rng = bootstrap::rng(seed);
    let overall = &report.overall;
    let seconds = full_seconds(&report.intervals);
    match metric {
        Metric::Distribution { stat, of } => quantile(overall, &seconds, *stat, *of, &mut rng),
        Metric::ErrorRate => Side {
            value: (overall.requests > 0).then_some(overall.error_rate),
            replicates: bootstrap::ratio_replicates(
                &seconds.iter().map(|i| i.errors as f64).collect::<Vec<_>>(),
                &seconds
                    .iter()
                    .map(|i| i.requests as f64)
                    .collect::<Vec<_>>(),
                &mut rng,
            ),
            method: format!("moving blocks of {} seconds", seconds.len()),
            drift: None,
        },
        Metric::TimeoutRate => {
            let timeouts = overall.errors.get("timeout").copied().unwrap_or(0);
            proportion(overall.requests, timeouts, overall.timeout_rate, &mut rng)
        }
        Metric::SloAttainment => proportion(
            overall.slo_checked,
            overall.slo_met,
            overall.slo_attainment.unwrap_or(0.0),
            &mut rng,
        ),
        Metric::Rps => per_second(overall.rps, &seconds, |i| i.rps, &mut rng),
        Metric::OutputTokensPerS => per_second(
            overall.output_tokens_per_s,
            &seconds,
            |i| i.output_tokens as f64 / i.duration_s,
            &mut rng,
        ),
        Metric::Goodput => goodput(overall, &seconds, &mut rng),
        Metric::Sampled { stat, name } => sampled(report, *stat, name, &mut rng),
        _ => Side::none(),
    }
}

/// Whole seconds of the run (the last, partial one left out).
fn full_seconds(intervals: &[IntervalSummary]) -> Vec<&IntervalSummary> {
    intervals.iter().filter(|i| i.duration_s >= 0.99).collect()
}

fn quantile(
    overall: &StatsBlock,
    seconds: &[&IntervalSummary],
    stat: Stat,
    of: Distribution,
    rng: &mut rand::rngs::StdRng,
) -> Side {
    let value = overall.quantiles(of).map(|q| stat.of(&q));
    let q = match stat {
        Stat::P50 => 0.50,
        Stat::P90 => 0.90,
        Stat::P95 => 0.95,
        Stat::P99 => 0.99,
        _ => return Side::none(),
    };
    let Some(Ok(histogram)) = overall.histogram(of) else {
        return Side {
            value,
            ..Side::none()
        };
    };
    let divisor = crate::stats::distribution::Unit::RECORDED_PER_REPORTED;
    let Some(cdf) = Cdf::of(&histogram, divisor) else {
        return Side::none();
    };
    let per_second: Vec<f64> = seconds
        .iter()
        .filter_map(|i| second_quantile(i, of, stat))
        .collect();
    let rho = lag1_autocorrelation(&per_second);
    // The gaps of one stream share its batch: a request's many ITLs are
    // worth one independent draw, not one each.
    let draws = match of {
        Distribution::Itl => cdf.len().min(overall.ok.max(1)),
        _ => cdf.len(),
    };
    let n_eff = bootstrap::effective_n(draws, rho);
    let drift = value.and_then(|v| drift_replicates(v, &per_second, rng));
    Side {
        value,
        replicates: Some(cdf.quantile_replicates(q, n_eff, rng)),
        method: format!(
            "bootstrap of {} {} values, worth {:.0} independent (per-second lag-1 autocorrelation {:.2}), joined with moving blocks of {} per-second values",
            cdf.len(),
            of.spec().name,
            n_eff,
            rho.max(0.0),
            per_second.len()
        ),
        drift,
    }
}

/// The run's figure moved as the mean of its per-second values moves
/// when whole seconds are resampled in blocks: how much of it is drift
/// (a machine busier in some seconds than others), which the histogram's
/// sampling noise leaves out.
fn drift_replicates(
    value: f64,
    per_second: &[f64],
    rng: &mut rand::rngs::StdRng,
) -> Option<Vec<f64>> {
    if per_second.len() < 3 {
        return None;
    }
    let mean = per_second.iter().sum::<f64>() / per_second.len() as f64;
    if mean <= 0.0 {
        return None;
    }
    let means = bootstrap::mean_replicates(per_second, rng)?;
    Some(means.into_iter().map(|m| value * m / mean).collect())
}

/// The per-second series whose autocorrelation stands for the
/// distribution's: its own where intervals keep one, else latency's.
fn second_quantile(i: &IntervalSummary, of: Distribution, stat: Stat) -> Option<f64> {
    match (of, stat) {
        (Distribution::Latency, Stat::P50) => i.latency_p50_ms,
        (Distribution::Latency, Stat::P99) => i.latency_p99_ms,
        (Distribution::Ttft | Distribution::TtftService, _) => i.ttft_p95_ms,
        (Distribution::Tpot | Distribution::Itl, _) => i.tpot_p95_ms,
        _ => i.latency_p95_ms,
    }
}

fn proportion(n: u64, hits: u64, value: f64, rng: &mut rand::rngs::StdRng) -> Side {
    Side {
        value: (n > 0).then_some(value),
        replicates: bootstrap::proportion_replicates(hits, n, rng),
        method: format!("Jeffreys interval of {hits} in {n} requests"),
        drift: None,
    }
}

fn per_second(
    value: f64,
    seconds: &[&IntervalSummary],
    read: fn(&IntervalSummary) -> f64,
    rng: &mut rand::rngs::StdRng,
) -> Side {
    let values: Vec<f64> = seconds.iter().map(|i| read(i)).collect();
    Side {
        value: (!seconds.is_empty() || value > 0.0).then_some(value),
        replicates: bootstrap::mean_replicates(&values, rng),
        method: format!("moving blocks of {} seconds", values.len()),
        drift: None,
    }
}

/// Goodput = rate × SLO attainment: seconds resampled for the rate, a
/// Jeffreys draw for the attainment.
fn goodput(
    overall: &StatsBlock,
    seconds: &[&IntervalSummary],
    rng: &mut rand::rngs::StdRng,
) -> Side {
    let Some(value) = overall.goodput_per_s else {
        return Side::none();
    };
    let rates: Vec<f64> = seconds.iter().map(|i| i.rps).collect();
    let replicates = bootstrap::mean_replicates(&rates, rng).and_then(|r| {
        let a = bootstrap::proportion_replicates(overall.slo_met, overall.slo_checked, rng)?;
        Some(r.iter().zip(a).map(|(r, a)| r * a).collect())
    });
    Side {
        value: Some(value),
        replicates,
        method: format!(
            "moving blocks of {} seconds × Jeffreys interval of {} in {} within the SLO",
            rates.len(),
            overall.slo_met,
            overall.slo_checked
        ),
        drift: None,
    }
}

fn series<'a>(report: &'a Report, name: &str) -> Option<&'a Series> {
    report.series.iter().find(|s| s.name == name)
}

/// A sampled value over the load (first phase start to last phase end).
fn sampled(report: &Report, stat: Stat, name: &str, rng: &mut rand::rngs::StdRng) -> Side {
    let Some(series) = series(report, name) else {
        return Side::none();
    };
    let start = report.phases.first().map_or(0.0, |p| p.start_s);
    let end = report.phases.last().map_or(report.duration_s, |p| p.end_s);
    let window = series.within(start, end);
    let values: Vec<f64> = window.samples.iter().map(|s| s.value).collect();
    let stats = window.stats();
    let n = values.len();
    match stat {
        Stat::Avg => Side {
            value: stats.avg,
            replicates: bootstrap::mean_replicates(&values, rng),
            method: format!("moving blocks of {n} samples"),
            drift: None,
        },
        Stat::P95 => Side {
            value: stats.p95,
            replicates: bootstrap::block_statistic_replicates(&values, rng, |sorted| {
                crate::stats::series::nearest_rank(sorted, 0.95)
            }),
            method: format!("moving blocks of {n} samples"),
            drift: None,
        },
        Stat::Max => Side {
            value: stats.max,
            replicates: None,
            method: format!("a maximum of {n} samples: no interval, any change counts"),
            drift: None,
        },
        Stat::Min => Side {
            value: stats.min,
            replicates: None,
            method: format!("a minimum of {n} samples: no interval, any change counts"),
            drift: None,
        },
        _ => Side::none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::regression::{defaults, tolerance};
    use crate::report::test_report::{report_with, second};
    use crate::report::{RepeatRow, Repeats};
    use crate::stats::Histogram;

    /// A run of `n` requests whose latencies follow a fixed spread around
    /// `scale` ms, 30 seconds of 1-second intervals.
    fn run(scale: f64, n: u64) -> Report {
        let mut r = report_with(Vec::new());
        let mut h = Histogram::new();
        for i in 0..n {
            // Deterministic, long-tailed: an exponential's quantiles.
            let u = (i as f64 + 0.5) / n as f64;
            h.record((-(1.0 - u).ln() * scale * 1000.0 + scale * 500.0) as u64);
        }
        let key = Distribution::Latency;
        r.overall
            .histograms
            .insert(key.spec().histogram_key.into(), h.to_base64());
        r.overall.distributions.insert(
            key.spec().key.into(),
            h.quantiles(crate::stats::distribution::Unit::RECORDED_PER_REPORTED)
                .unwrap(),
        );
        r.overall.requests = n;
        r.overall.ok = n;
        r.intervals = (1..=30)
            .map(|t| second(t as f64, "steady", scale * 2.0))
            .collect();
        r
    }

    fn p95_row(regression: &Regression) -> &RegressionRow {
        regression
            .rows
            .iter()
            .find(|r| r.key == "p95(latency)")
            .unwrap()
    }

    fn source() -> BaselineSource {
        BaselineSource {
            selected_by: "test".into(),
            path: "base/report.json".into(),
        }
    }

    #[test]
    fn the_same_distribution_is_within_noise_and_a_slower_one_regresses() {
        let base = run(100.0, 3000);
        let same = compare(&base, &run(100.0, 3000), &defaults(), source(), Vec::new());
        let row = p95_row(&same);
        assert_eq!(row.status, RegressionStatus::WithinNoise, "{row:?}");
        assert_eq!(row.change, Some(0.0));
        let (lo, hi) = row.interval.unwrap();
        assert!(lo < 0.0 && hi > 0.0 && hi - lo < 0.2, "{lo}..{hi}");

        let slower = compare(&base, &run(130.0, 3000), &defaults(), source(), Vec::new());
        let row = p95_row(&slower);
        assert_eq!(row.status, RegressionStatus::Regressed, "{row:?}");
        let (lo, hi) = row.interval.unwrap();
        assert!(lo > 0.2 && lo < 0.3 && hi > 0.3, "{lo}..{hi}");
        let mut verdict = base.verdict.clone();
        judge(&mut verdict, &slower);
        assert_eq!(verdict.exit_code, crate::exit::THRESHOLDS_FAILED);
        assert!(
            verdict
                .reasons
                .iter()
                .any(|r| r.contains("P95 Latency +30.0%")),
            "{:?}",
            verdict.reasons
        );
    }

    /// 200 samples moving 3 % are noise, not a regression, whatever the
    /// tolerance.
    #[test]
    fn a_small_sample_moving_a_little_is_noise() {
        let tight = [tolerance("p95(latency)", "+1%").unwrap()];
        let r = compare(
            &run(100.0, 200),
            &run(103.0, 200),
            &tight,
            source(),
            Vec::new(),
        );
        assert_eq!(
            p95_row(&r).status,
            RegressionStatus::WithinNoise,
            "{:?}",
            p95_row(&r)
        );
    }

    #[test]
    fn status_needs_both_the_tolerance_and_the_interval() {
        use Direction::*;
        use RegressionStatus::*;
        let cases = [
            (
                Some(0.30),
                Some((0.25, 0.35)),
                Higher,
                Some(0.20),
                Regressed,
            ),
            (
                Some(0.30),
                Some((-0.05, 0.65)),
                Higher,
                Some(0.20),
                WithinNoise,
            ),
            (
                Some(0.10),
                Some((0.05, 0.15)),
                Higher,
                Some(0.20),
                WithinTolerance,
            ),
            (
                Some(-0.30),
                Some((-0.35, -0.25)),
                Higher,
                Some(0.20),
                Improved,
            ),
            (
                Some(-0.10),
                Some((-0.12, -0.08)),
                Lower,
                Some(-0.05),
                Regressed,
            ),
            (Some(0.10), Some((0.05, 0.15)), Higher, None, Changed),
            (Some(0.0), None, Higher, None, WithinNoise),
            (None, None, Higher, Some(0.2), NoData),
        ];
        for (change, interval, worse, tol, want) in cases {
            assert_eq!(
                status(change, interval, worse, tol),
                want,
                "{change:?} {interval:?}"
            );
        }
    }

    fn with_repeats(mut r: Report, values: &[f64]) -> Report {
        r.repeats = Some(Repeats {
            runs: Vec::new(),
            rows: vec![RepeatRow {
                key: "p95(latency)".into(),
                label: "P95 Latency".into(),
                unit: "ms".into(),
                values: values.iter().map(|v| Some(*v)).collect(),
                mean: None,
                stdev: None,
                min: None,
                max: None,
                cv: None,
                merged: None,
            }],
        });
        r
    }

    /// Runs that disagree among themselves widen the interval beyond a
    /// single run's sampling noise: a 10 % move is then within noise.
    #[test]
    fn the_spread_across_repeated_runs_joins_the_interval() {
        let tol = [tolerance("p95(latency)", "+5%").unwrap()];
        let single = compare(
            &run(100.0, 3000),
            &run(110.0, 3000),
            &tol,
            source(),
            Vec::new(),
        );
        assert_eq!(p95_row(&single).status, RegressionStatus::Regressed);
        let p95 = |s: f64| run(s, 3000).overall.distributions["latency_ms"].p95;
        let base = with_repeats(run(100.0, 3000), &[p95(80.0), p95(100.0), p95(120.0)]);
        let now = with_repeats(run(110.0, 3000), &[p95(90.0), p95(110.0), p95(130.0)]);
        let spread = compare(&base, &now, &tol, source(), Vec::new());
        let row = p95_row(&spread);
        assert_eq!(row.status, RegressionStatus::WithinNoise, "{row:?}");
        assert!(
            row.method.contains("Student's t over 3 and 3 runs"),
            "{}",
            row.method
        );
        let (lo, hi) = row.interval.unwrap();
        assert!(lo < -0.2 && hi > 0.4, "{lo}..{hi}");
    }

    #[test]
    fn runs_of_other_plans_targets_or_models_are_named() {
        let base = run(100.0, 10);
        let mut other = run(100.0, 10);
        other.plan_name = "other".into();
        other.target.base_url = "http://10.0.0.1:8000".into();
        let found = mismatches(&base, &other);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].contains("this run `other`"), "{found:?}");
        let mut embedded = run(100.0, 10);
        embedded.target.embedded_simulator = true;
        let mut embedded_again = embedded.clone();
        embedded_again.target.base_url = "http://127.0.0.1:40000".into();
        assert!(mismatches(&embedded, &embedded_again).is_empty());
    }
}
