//! Where each threshold is shown, decided once from its typed metric and
//! scope (never from its text). A run-scope threshold whose metric is a
//! fixed row of a table — "P95 Latency" in HTTP Metrics, `max(gpu_util)`
//! in System Resource Utilization, `max(queue_depth)` or trace coverage in
//! Queue and Task Metrics — fills that row's Target and Status (the first
//! such threshold; later ones are rows of their own). Other run-scope
//! request thresholds are extra HTTP Metrics rows; every other run-scope
//! threshold (a custom query, `avg(gpu_util)`, `alerts_fired`, query
//! latency) goes to "Other Thresholds". Phase- and model-scope thresholds
//! belong to their phase's and the models' tables. Every threshold lands
//! in exactly one place, and a row without a threshold shows no status.

use super::model::{Report, Scope, ThresholdResult};
use super::{observed_view, server_view, trace_view, view};
use crate::metric::{Family, Metric};

/// The thresholds of one report, by the place that shows them.
#[derive(Debug, Default)]
pub(crate) struct Placement<'a> {
    /// Run-scope thresholds that fill a fixed row, by the row's metric.
    on_rows: Vec<(Metric, &'a ThresholdResult)>,
    /// Run-scope request thresholds without a fixed row: extra rows of
    /// "HTTP Metrics".
    pub http_extra: Vec<&'a ThresholdResult>,
    /// Run-scope thresholds on server-side figures without a fixed row.
    pub other: Vec<&'a ThresholdResult>,
}

impl<'a> Placement<'a> {
    pub(crate) fn of(report: &'a Report) -> Placement<'a> {
        let rows = fixed_rows();
        let mut placement = Placement::default();
        for t in report.thresholds.iter().filter(|t| t.scope == Scope::Run) {
            let has_row = rows.contains(&t.metric);
            let row_taken = placement.on_rows.iter().any(|(m, _)| *m == t.metric);
            if has_row && !row_taken {
                placement.on_rows.push((t.metric.clone(), t));
            } else if t.metric.family() == Family::Requests {
                placement.http_extra.push(t);
            } else {
                placement.other.push(t);
            }
        }
        placement
    }

    /// The threshold that fills the fixed row of `metric`, if any.
    pub(crate) fn on_row(&self, metric: &Metric) -> Option<&'a ThresholdResult> {
        self.on_rows
            .iter()
            .find(|(m, _)| m == metric)
            .map(|(_, t)| *t)
    }
}

/// The metric of every fixed row of every table.
fn fixed_rows() -> Vec<Metric> {
    let mut rows = view::http_row_metrics();
    rows.extend(observed_view::row_metrics());
    rows.extend(server_view::row_metrics());
    rows.extend(trace_view::row_metrics());
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric::Stat;
    use crate::report::ThresholdStatus;
    use crate::report::test_report::report_with;
    use crate::stats::Distribution;

    fn threshold(scope: Scope, metric: Metric) -> ThresholdResult {
        ThresholdResult {
            expression: String::new(),
            scope,
            label: metric.label(),
            metric,
            target: "< 1".into(),
            achieved: Some(1.0),
            achieved_display: "1".into(),
            status: ThresholdStatus::Pass,
        }
    }

    fn sampled(stat: Stat, name: &str) -> Metric {
        Metric::Sampled {
            stat,
            name: name.into(),
        }
    }

    #[test]
    fn every_threshold_lands_in_exactly_one_place() {
        let p95 = Metric::Distribution {
            stat: Stat::P95,
            of: Distribution::Latency,
        };
        let p95_itl = Metric::Distribution {
            stat: Stat::P95,
            of: Distribution::Itl,
        };
        let thresholds = vec![
            threshold(Scope::Run, p95.clone()),
            // A second threshold on a fixed row is a row of its own.
            threshold(Scope::Run, p95.clone()),
            threshold(Scope::Run, p95_itl.clone()),
            threshold(Scope::Run, sampled(Stat::Max, "gpu_util")),
            // Another statistic of a fixed row's value is not that row.
            threshold(Scope::Run, sampled(Stat::Avg, "gpu_util")),
            threshold(Scope::Run, sampled(Stat::Max, "kv_usage")),
            threshold(Scope::Run, sampled(Stat::Max, "queue_depth")),
            threshold(Scope::Run, Metric::TraceCoverage),
            threshold(Scope::Run, Metric::AlertsFired),
            threshold(Scope::Phase("peak".into()), p95.clone()),
            threshold(Scope::Model("m".into()), sampled(Stat::Max, "kv_usage")),
        ];
        let report = report_with(thresholds);
        let placed = Placement::of(&report);
        let rows = [
            p95.clone(),
            sampled(Stat::Max, "gpu_util"),
            sampled(Stat::Max, "queue_depth"),
            Metric::TraceCoverage,
        ];
        for metric in &rows {
            assert!(placed.on_row(metric).is_some(), "{metric:?}");
        }
        assert_eq!(placed.on_rows.len(), rows.len());
        let extra: Vec<&Metric> = placed.http_extra.iter().map(|t| &t.metric).collect();
        assert_eq!(extra, [&p95, &p95_itl]);
        let other: Vec<&Metric> = placed.other.iter().map(|t| &t.metric).collect();
        assert_eq!(
            other,
            [
                &sampled(Stat::Avg, "gpu_util"),
                &sampled(Stat::Max, "kv_usage"),
                &Metric::AlertsFired
            ]
        );
        let run_scoped = report
            .thresholds
            .iter()
            .filter(|t| t.scope == Scope::Run)
            .count();
        assert_eq!(
            placed.on_rows.len() + placed.http_extra.len() + placed.other.len(),
            run_scoped
        );
    }
}
