//! Saturation (DESIGN.md, "Knee"): from a concurrency sweep (one point per
//! level) or a rising ramp (per-second results binned by target rate),
//! where throughput stops growing in proportion (Kneedle, `stats::knee`),
//! the highest load at which every per-request threshold held, and how
//! latency degrades past the knee: graceful when p95 grows at most
//! linearly with load (a power fit, p95 ∝ loadᵇ with b ≤ 1.25), no errors
//! begin and throughput holds; catastrophic otherwise. The evidence says
//! which fact decided.

use crate::metric::{Metric, Stat};
use crate::plan::{Load, Plan, Threshold};
use crate::report::{
    Degradation, IntervalSummary, LoadPoint, PhaseReport, Saturation, Scope, StatsBlock,
    ThresholdStatus,
};
use crate::stats::knee::knee;
use crate::stats::trend::power_fit;
use crate::stats::{Distribution, Quantiles};

/// A point must stand this far (of the scaled range) above the chord from
/// the first level to the last to be a knee.
const MIN_PROMINENCE: f64 = 0.1;
/// Past the knee, p95 growing faster than load^this is super-linear.
const MAX_LINEAR_EXPONENT: f64 = 1.25;
/// Errors past the knee above this share (and twice the rate before it)
/// are an error onset.
const ERROR_ONSET: f64 = 0.01;
/// Throughput at the highest load below this share of its peak is a
/// collapse.
const COLLAPSE: f64 = 0.9;
/// A ramp's seconds are binned into this many target-rate bins.
const RAMP_BINS: usize = 8;

/// Every sweep phase (three levels or more) and rising ramp.
pub fn saturation(
    plan: &Plan,
    phases: &[PhaseReport],
    intervals: &[IntervalSummary],
) -> Vec<Saturation> {
    let slos: Vec<&Threshold> = plan.thresholds.iter().filter(|t| per_request(t)).collect();
    plan.phases
        .iter()
        .zip(phases)
        .filter_map(|(phase, report)| {
            let (load, points) = match &phase.load {
                Load::Sweep { .. } if report.steps.len() >= 3 => {
                    ("concurrency", sweep_points(report, &slos))
                }
                Load::Ramp { from, to } if to > from => {
                    ("rate", ramp_points(report, intervals, (*from, *to), &slos))
                }
                _ => return None,
            };
            (points.len() >= 3).then(|| judge(&report.name, load, points))
        })
        .collect()
}

/// Thresholds a single load level can be held to: statistics of
/// per-request distributions and the error and timeout rates.
fn per_request(t: &Threshold) -> bool {
    matches!(
        t.metric,
        Metric::Distribution { .. } | Metric::ErrorRate | Metric::TimeoutRate
    )
}

fn sweep_points(phase: &PhaseReport, slos: &[&Threshold]) -> Vec<LoadPoint> {
    phase
        .steps
        .iter()
        .filter_map(|step| {
            Some(LoadPoint {
                load: step.concurrency? as f64,
                // Successful requests: errors answered fast are not served.
                throughput: step.stats.rps * (1.0 - step.stats.error_rate),
                p95_ms: step.stats.quantiles(Distribution::Latency).map(|q| q.p95),
                error_rate: step.stats.error_rate,
                met_slo: met(&step.stats, slos),
            })
        })
        .collect()
}

fn met(stats: &StatsBlock, slos: &[&Threshold]) -> bool {
    slos.iter().all(|t| {
        super::thresholds::evaluate(t, Scope::Run, stats, None).status == ThresholdStatus::Pass
    })
}

/// A ramp's complete seconds binned by their target rate: per bin the
/// mean target and achieved rate, the median per-second p95 and the share
/// of errors. Only the p95 and error-rate thresholds can be checked here.
fn ramp_points(
    phase: &PhaseReport,
    intervals: &[IntervalSummary],
    (from, to): (f64, f64),
    slos: &[&Threshold],
) -> Vec<LoadPoint> {
    let length = phase.end_s - phase.start_s;
    if length <= 0.0 {
        return Vec::new();
    }
    let target = |t: f64| from + (to - from) * ((t - 0.5 - phase.start_s) / length).clamp(0.0, 1.0);
    let seconds: Vec<&IntervalSummary> = intervals
        .iter()
        .filter(|i| i.duration_s >= 0.99 && i.t > phase.start_s && i.t <= phase.end_s + 0.5)
        .collect();
    let width = (to - from) / RAMP_BINS as f64;
    (0..RAMP_BINS)
        .filter_map(|bin| {
            let (low, high) = (from + width * bin as f64, from + width * (bin + 1) as f64);
            let inside: Vec<&&IntervalSummary> = seconds
                .iter()
                .filter(|i| {
                    let r = target(i.t);
                    r >= low && (r < high || (bin + 1 == RAMP_BINS && r <= high))
                })
                .collect();
            bin_point(&inside, &target, slos)
        })
        .collect()
}

fn bin_point(
    seconds: &[&&IntervalSummary],
    target: &dyn Fn(f64) -> f64,
    slos: &[&Threshold],
) -> Option<LoadPoint> {
    if seconds.is_empty() {
        return None;
    }
    let n = seconds.len() as f64;
    let mut p95s: Vec<f64> = seconds.iter().filter_map(|i| i.latency_p95_ms).collect();
    p95s.sort_by(f64::total_cmp);
    let p95_ms = (!p95s.is_empty()).then(|| p95s[p95s.len() / 2]);
    let requests: u64 = seconds.iter().map(|i| i.requests).sum();
    let errors: u64 = seconds.iter().map(|i| i.errors).sum();
    let error_rate = if requests > 0 {
        errors as f64 / requests as f64
    } else {
        0.0
    };
    let stats = StatsBlock {
        requests,
        error_rate,
        distributions: p95_ms
            .map(|p| (Distribution::Latency.spec().key.to_owned(), flat(p)))
            .into_iter()
            .collect(),
        ..StatsBlock::default()
    };
    let checkable: Vec<&Threshold> = slos
        .iter()
        .copied()
        .filter(|t| {
            matches!(
                t.metric,
                Metric::ErrorRate
                    | Metric::Distribution {
                        stat: Stat::P95,
                        of: Distribution::Latency
                    }
            )
        })
        .collect();
    Some(LoadPoint {
        load: seconds.iter().map(|i| target(i.t)).sum::<f64>() / n,
        throughput: seconds
            .iter()
            .map(|i| i.rps * i.ok as f64 / i.requests.max(1) as f64)
            .sum::<f64>()
            / n,
        p95_ms,
        error_rate,
        met_slo: met(&stats, &checkable),
    })
}

/// Quantiles that read `p95` whatever is asked of them: a ramp bin knows
/// only its median per-second p95.
fn flat(p95: f64) -> Quantiles {
    Quantiles {
        count: 1,
        min: p95,
        mean: p95,
        p50: p95,
        p90: p95,
        p95,
        p99: p95,
        max: p95,
    }
}

/// The knee, the highest level within the SLOs, and the verdict on what
/// lies past the knee.
fn judge(phase: &str, load: &str, points: Vec<LoadPoint>) -> Saturation {
    let curve: Vec<(f64, f64)> = points.iter().map(|p| (p.load, p.throughput)).collect();
    let knee_at = knee(&curve, MIN_PROMINENCE);
    let max_within_slo = points
        .iter()
        .filter(|p| p.met_slo)
        .map(|p| p.load)
        .reduce(f64::max);
    let mut evidence = Vec::new();
    let Some(k) = knee_at else {
        evidence.push(format!(
            "throughput rose from {:.1} to {:.1} req/s over {} {load} levels {}–{}: no knee in the tested range",
            points[0].throughput,
            points[points.len() - 1].throughput,
            points.len(),
            show(points[0].load),
            show(points[points.len() - 1].load)
        ));
        return Saturation {
            phase: phase.to_owned(),
            load: load.to_owned(),
            knee: None,
            max_within_slo,
            degradation: Degradation::NotReached,
            latency_exponent: None,
            fit_r_squared: None,
            evidence,
            points,
        };
    };
    let (kp, last) = (&points[k], &points[points.len() - 1]);
    evidence.push(format!(
        "knee at {load} {}: {:.1} req/s there, {:.1} req/s at {} ({:+.0} %) for {:.1}× the load",
        show(kp.load),
        kp.throughput,
        last.throughput,
        show(last.load),
        (last.throughput / kp.throughput - 1.0) * 100.0,
        last.load / kp.load
    ));
    let past = &points[k.min(points.len().saturating_sub(3))..];
    let fit = power_fit(
        &past
            .iter()
            .filter_map(|p| Some((p.load, p.p95_ms?)))
            .collect::<Vec<_>>(),
    );
    let mut catastrophic = false;
    if let Some(fit) = fit {
        let linear = fit.exponent <= MAX_LINEAR_EXPONENT;
        catastrophic |= !linear;
        evidence.push(format!(
            "past the knee p95 grew as load^{:.2} (R² {:.2}, {} levels): {}",
            fit.exponent,
            fit.r_squared,
            fit.n,
            if linear {
                "at most linear"
            } else {
                "super-linear"
            }
        ));
    }
    let before = points[..k].iter().map(|p| p.error_rate).fold(0.0, f64::max);
    match points[k + 1..]
        .iter()
        .find(|p| p.error_rate > ERROR_ONSET.max(2.0 * before))
    {
        Some(p) => {
            catastrophic = true;
            evidence.push(format!(
                "errors began past the knee: {:.1} % at {load} {}",
                p.error_rate * 100.0,
                show(p.load)
            ));
        }
        None => evidence.push(format!(
            "no error onset past the knee (at most {:.2} % of requests per level)",
            points[k..].iter().map(|p| p.error_rate).fold(0.0, f64::max) * 100.0
        )),
    }
    let peak = points.iter().map(|p| p.throughput).fold(0.0, f64::max);
    if peak > 0.0 {
        let held = last.throughput / peak;
        catastrophic |= held < COLLAPSE;
        evidence.push(format!(
            "throughput at the highest load {:.0} % of its peak ({:.1} of {peak:.1} req/s){}",
            held * 100.0,
            last.throughput,
            if held < COLLAPSE { ": a collapse" } else { "" }
        ));
    }
    Saturation {
        phase: phase.to_owned(),
        load: load.to_owned(),
        knee: Some(kp.load),
        max_within_slo,
        degradation: if catastrophic {
            Degradation::Catastrophic
        } else {
            Degradation::Graceful
        },
        latency_exponent: fit.map(|f| f.exponent),
        fit_r_squared: fit.map(|f| f.r_squared),
        evidence,
        points,
    }
}

/// "16", "12.5": a load level as read.
fn show(load: f64) -> String {
    if load.fract() == 0.0 {
        format!("{load:.0}")
    } else {
        format!("{load:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(load: f64, throughput: f64, p95: f64, errors: f64) -> LoadPoint {
        LoadPoint {
            load,
            throughput,
            p95_ms: Some(p95),
            error_rate: errors,
            met_slo: p95 < 1000.0,
        }
    }

    /// A server that serves 16 at once: throughput flat past 16, latency
    /// growing by Little's law.
    fn capacity_16(errors_past: f64, collapse: bool) -> Vec<LoadPoint> {
        [4.0, 8.0, 12.0, 16.0, 24.0, 32.0, 48.0]
            .map(|c: f64| {
                let served = c.min(16.0);
                let mut throughput = served * 2.0;
                if collapse && c > 24.0 {
                    throughput *= 0.5;
                }
                let p95 = 500.0 * c / served;
                point(c, throughput, p95, if c > 16.0 { errors_past } else { 0.0 })
            })
            .to_vec()
    }

    #[test]
    fn a_capacity_bound_sweep_degrades_gracefully_past_its_knee() {
        let s = judge("long", "concurrency", capacity_16(0.0, false));
        assert_eq!(s.knee, Some(16.0));
        assert_eq!(s.degradation, Degradation::Graceful, "{:?}", s.evidence);
        assert!(
            (s.latency_exponent.unwrap() - 1.0).abs() < 0.15,
            "{:?}",
            s.latency_exponent
        );
        // p95 = 500 ms × c/16 past the knee: under 1 s up to c=24.
        assert_eq!(s.max_within_slo, Some(24.0));
        assert!(
            s.evidence[0].starts_with("knee at concurrency 16"),
            "{:?}",
            s.evidence
        );
    }

    #[test]
    fn errors_or_a_collapse_past_the_knee_are_catastrophic() {
        let errors = judge("long", "concurrency", capacity_16(0.2, false));
        assert_eq!(errors.degradation, Degradation::Catastrophic);
        assert!(
            errors
                .evidence
                .iter()
                .any(|e| e.contains("errors began past the knee: 20.0 %"))
        );
        let collapse = judge("long", "concurrency", capacity_16(0.0, true));
        assert_eq!(collapse.degradation, Degradation::Catastrophic);
        assert!(
            collapse.evidence.iter().any(|e| e.contains("a collapse")),
            "{:?}",
            collapse.evidence
        );
    }

    #[test]
    fn super_linear_latency_past_the_knee_is_catastrophic() {
        let points = [4.0, 8.0, 12.0, 16.0, 24.0, 32.0, 48.0]
            .map(|c: f64| point(c, c.min(16.0) * 2.0, 100.0 * (c / 8.0).powi(3), 0.0))
            .to_vec();
        let s = judge("long", "concurrency", points);
        assert_eq!(s.degradation, Degradation::Catastrophic);
        assert!(s.latency_exponent.unwrap() > 2.5);
    }

    #[test]
    fn a_sweep_that_scales_all_the_way_has_no_knee() {
        let points = [4.0, 8.0, 16.0, 32.0]
            .map(|c: f64| point(c, c * 2.0, 500.0, 0.0))
            .to_vec();
        let s = judge("short", "concurrency", points);
        assert_eq!((s.knee, s.degradation), (None, Degradation::NotReached));
        assert!(s.evidence[0].contains("no knee in the tested range"));
    }
}
