//! Repeated runs of one plan summed up (`report::Repeats`): per metric,
//! each run's figure, mean, sample standard deviation, extremes and
//! coefficient of variation, and the merged figure — percentiles of the
//! runs' histograms added together, rates as totals over total time.
//! Pure.

use crate::metric::Metric;
use crate::plan::regression::{Tolerance, defaults};
use crate::report::{RepeatRow, RepeatRun, Repeats, Report};
use crate::stats::Histogram;

/// The summary of `reports`, in run order.
pub fn summarize(reports: &[Report]) -> Repeats {
    let rows = client_metrics()
        .iter()
        .filter_map(|t| row(reports, t))
        .collect();
    Repeats {
        runs: reports
            .iter()
            .map(|r| RepeatRun {
                run_id: r.run_id.clone(),
                outcome: super::regression::outcome_name(r),
            })
            .collect(),
        rows,
    }
}

/// The client-side metrics of the default regression list.
fn client_metrics() -> Vec<Tolerance> {
    defaults()
        .into_iter()
        .filter(|t| !matches!(t.metric, Metric::Sampled { .. }))
        .collect()
}

fn row(reports: &[Report], t: &Tolerance) -> Option<RepeatRow> {
    let values: Vec<Option<f64>> = reports
        .iter()
        .map(|r| super::regression::value_of(r, &t.metric))
        .collect();
    let present: Vec<f64> = values.iter().flatten().copied().collect();
    if present.is_empty() {
        return None;
    }
    let n = present.len() as f64;
    let mean = present.iter().sum::<f64>() / n;
    let stdev = (present.len() > 1)
        .then(|| (present.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt());
    Some(RepeatRow {
        key: t.key.clone(),
        label: t.metric.label(),
        unit: super::regression::unit_of(&t.metric),
        min: present.iter().copied().reduce(f64::min),
        max: present.iter().copied().reduce(f64::max),
        cv: stdev.filter(|_| mean != 0.0).map(|s| s / mean.abs()),
        mean: Some(mean),
        stdev,
        merged: merged(reports, &t.metric),
        values,
    })
}

/// The figure over all runs' requests together.
fn merged(reports: &[Report], metric: &Metric) -> Option<f64> {
    let total = |read: fn(&Report) -> f64| reports.iter().map(read).sum::<f64>();
    let duration = total(|r| r.overall.duration_s);
    let requests = total(|r| r.overall.requests as f64);
    match metric {
        Metric::Distribution { stat, of } => {
            let mut all = Histogram::new();
            for report in reports {
                if let Some(Ok(h)) = report.overall.histogram(*of) {
                    all.merge(&h);
                }
            }
            let divisor = crate::stats::distribution::Unit::RECORDED_PER_REPORTED;
            all.quantiles(divisor).map(|q| stat.of(&q))
        }
        Metric::ErrorRate => (requests > 0.0)
            .then(|| total(|r| r.overall.error_rate * r.overall.requests as f64) / requests),
        Metric::TimeoutRate => (requests > 0.0)
            .then(|| total(|r| r.overall.timeout_rate * r.overall.requests as f64) / requests),
        Metric::Rps => (duration > 0.0).then(|| requests / duration),
        Metric::OutputTokensPerS => {
            (duration > 0.0).then(|| total(|r| r.overall.output_tokens as f64) / duration)
        }
        Metric::Goodput => {
            let any = reports.iter().any(|r| r.overall.goodput_per_s.is_some());
            (any && duration > 0.0).then(|| total(|r| r.overall.slo_met as f64) / duration)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::test_report::report_with;

    fn report() -> Report {
        report_with(Vec::new())
    }

    fn with_rps(rps: f64, requests: u64, duration: f64) -> Report {
        let mut r = report();
        r.overall.rps = rps;
        r.overall.requests = requests;
        r.overall.duration_s = duration;
        r
    }

    #[test]
    fn the_spread_and_the_merged_figure_come_from_every_run() {
        let runs = [
            with_rps(100.0, 1000, 10.0),
            with_rps(110.0, 1100, 10.0),
            with_rps(120.0, 1200, 10.0),
        ];
        let summary = summarize(&runs);
        let rps = summary.rows.iter().find(|r| r.key == "rps").unwrap();
        assert_eq!(rps.values, vec![Some(100.0), Some(110.0), Some(120.0)]);
        assert_eq!(rps.mean, Some(110.0));
        assert_eq!(rps.stdev, Some(10.0));
        assert_eq!((rps.min, rps.max), (Some(100.0), Some(120.0)));
        assert!((rps.cv.unwrap() - 10.0 / 110.0).abs() < 1e-12);
        assert_eq!(rps.merged, Some(110.0));
        assert_eq!(summary.runs.len(), 3);
    }

    #[test]
    fn merged_percentiles_add_the_histograms_and_never_average() {
        let mut fast = report();
        let mut slow = report();
        let mut h1 = Histogram::new();
        let mut h2 = Histogram::new();
        for _ in 0..90 {
            h1.record(100_000);
        }
        for _ in 0..10 {
            h2.record(1_000_000);
        }
        for (r, h) in [(&mut fast, &h1), (&mut slow, &h2)] {
            r.overall
                .histograms
                .insert("latency_us".into(), h.to_base64());
        }
        let m = merged(
            &[fast, slow],
            &Metric::Distribution {
                stat: crate::metric::Stat::P95,
                of: crate::stats::Distribution::Latency,
            },
        );
        // 95th of 100 values where the top 10 are 1 s: 1 s, not the mean of p95s.
        assert!((m.unwrap() - 1000.0).abs() < 1.0, "{m:?}");
    }
}
