//! The run history's view of this run: the headline metrics of the last
//! runs of the same plan (from `history`), for the report's trend.
//!
//! [`Headline`] is the one set of figures the history keeps per run; it is
//! read from a report's `overall` block by [`Headline::of`] and listed,
//! with labels and units, in [`Headline::METRICS`], so the history's
//! columns, the report's table and `infercheck history`'s trend lines name
//! the same figures.

use serde::{Deserialize, Serialize};

use super::model::Report;
use crate::stats::Distribution;

/// The headline metrics of the last runs of this plan, oldest first.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HistoryTrend {
    /// The plan the runs share (runs are matched by plan name).
    pub plan_name: String,
    /// One per run, oldest first; the newest is this run when the runner
    /// recorded it before asking.
    pub points: Vec<HistoryPoint>,
}

/// One run of the trend.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistoryPoint {
    pub run_id: String,
    /// RFC 3339 wall-clock start of the run, as its report wrote it.
    pub started_at: String,
    /// The run's verdict as its report wrote it: "pass", "fail", ...
    /// (text, so a history written by a newer build still reads).
    pub outcome: String,
    pub headline: Headline,
}

/// A run's headline figures, from its report's `overall` block: rates per
/// second, ratios in 0..1, times in milliseconds. A figure the run had no
/// data for (no streaming, no SLO) is `None`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Headline {
    pub requests: u64,
    pub error_rate: f64,
    pub timeout_rate: f64,
    /// Completed requests per second.
    pub rps: f64,
    pub output_tokens_per_s: f64,
    /// Requests per second that met every `[slo]` bound.
    pub goodput_per_s: Option<f64>,
    /// Latency from the intended send (coordinated-omission corrected).
    pub latency_p50_ms: Option<f64>,
    pub latency_p95_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    pub ttft_p95_ms: Option<f64>,
    pub tpot_p95_ms: Option<f64>,
    pub itl_p95_ms: Option<f64>,
}

/// One headline figure: how it is named and read, and which way is better.
#[derive(Clone, Copy, Debug)]
pub struct HeadlineMetric {
    /// The figure's field name in [`Headline`] (and the history's column).
    pub key: &'static str,
    /// Human label, e.g. "P95 Latency".
    pub label: &'static str,
    /// "ms", "ratio", "req/s" or "tok/s".
    pub unit: &'static str,
    pub higher_is_better: bool,
    /// The figure of a run; `None` without data.
    pub value: fn(&Headline) -> Option<f64>,
}

impl Headline {
    /// Every figure but the request count (a plan's load, not an outcome),
    /// in the order tables list them.
    pub const METRICS: &'static [HeadlineMetric] = &[
        headline_metric("latency_p50_ms", "P50 Latency", "ms", false, |h| {
            h.latency_p50_ms
        }),
        headline_metric("latency_p95_ms", "P95 Latency", "ms", false, |h| {
            h.latency_p95_ms
        }),
        headline_metric("latency_p99_ms", "P99 Latency", "ms", false, |h| {
            h.latency_p99_ms
        }),
        headline_metric("ttft_p95_ms", "P95 TTFT", "ms", false, |h| h.ttft_p95_ms),
        headline_metric("tpot_p95_ms", "P95 TPOT", "ms", false, |h| h.tpot_p95_ms),
        headline_metric("itl_p95_ms", "P95 ITL", "ms", false, |h| h.itl_p95_ms),
        headline_metric("error_rate", "Error Rate", "ratio", false, |h| {
            Some(h.error_rate)
        }),
        headline_metric("timeout_rate", "Timeout Rate", "ratio", false, |h| {
            Some(h.timeout_rate)
        }),
        headline_metric("rps", "Throughput", "req/s", true, |h| Some(h.rps)),
        headline_metric("output_tokens_per_s", "Output Tokens", "tok/s", true, |h| {
            Some(h.output_tokens_per_s)
        }),
        headline_metric("goodput_per_s", "Goodput", "req/s", true, |h| {
            h.goodput_per_s
        }),
    ];

    /// The headline figures of `report`'s whole run.
    pub fn of(report: &Report) -> Headline {
        let o = &report.overall;
        let p95 = |d: Distribution| o.quantiles(d).map(|q| q.p95);
        let latency = o.quantiles(Distribution::Latency);
        Headline {
            requests: o.requests,
            error_rate: o.error_rate,
            timeout_rate: o.timeout_rate,
            rps: o.rps,
            output_tokens_per_s: o.output_tokens_per_s,
            goodput_per_s: o.goodput_per_s,
            latency_p50_ms: latency.map(|q| q.p50),
            latency_p95_ms: latency.map(|q| q.p95),
            latency_p99_ms: latency.map(|q| q.p99),
            ttft_p95_ms: p95(Distribution::Ttft),
            tpot_p95_ms: p95(Distribution::Tpot),
            itl_p95_ms: p95(Distribution::Itl),
        }
    }
}

const fn headline_metric(
    key: &'static str,
    label: &'static str,
    unit: &'static str,
    higher_is_better: bool,
    value: fn(&Headline) -> Option<f64>,
) -> HeadlineMetric {
    HeadlineMetric {
        key,
        label,
        unit,
        higher_is_better,
        value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::test_report::report_with;
    use crate::stats::Quantiles;

    fn quantiles(p50: f64, p95: f64, p99: f64) -> Quantiles {
        Quantiles {
            count: 10,
            min: p50 / 2.0,
            mean: p50,
            p50,
            p90: p95,
            p95,
            p99,
            max: p99 * 2.0,
        }
    }

    #[test]
    fn the_headline_reads_the_overall_block() {
        let mut report = report_with(Vec::new());
        let o = &mut report.overall;
        (o.requests, o.error_rate, o.rps) = (120, 0.025, 12.0);
        o.output_tokens_per_s = 480.0;
        let key = |d: Distribution| d.spec().key.to_owned();
        o.distributions
            .insert(key(Distribution::Latency), quantiles(100.0, 180.0, 250.0));
        o.distributions
            .insert(key(Distribution::Ttft), quantiles(20.0, 35.0, 50.0));
        let h = Headline::of(&report);
        assert_eq!(
            (h.requests, h.error_rate, h.rps, h.output_tokens_per_s),
            (120, 0.025, 12.0, 480.0)
        );
        assert_eq!(
            (h.latency_p50_ms, h.latency_p95_ms, h.latency_p99_ms),
            (Some(100.0), Some(180.0), Some(250.0))
        );
        assert_eq!((h.ttft_p95_ms, h.tpot_p95_ms), (Some(35.0), None));
        assert_eq!(h.goodput_per_s, None);
    }

    #[test]
    fn every_metric_names_a_field_of_the_headline() {
        let h = Headline {
            latency_p95_ms: Some(7.0),
            ..Headline::default()
        };
        let fields = serde_json::to_value(&h).unwrap();
        for m in Headline::METRICS {
            assert!(fields.get(m.key).is_some(), "{} is no field", m.key);
            let field = fields[m.key].as_f64();
            assert_eq!((m.value)(&h), field, "{}", m.key);
        }
    }
}
