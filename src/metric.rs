//! What a threshold can name and how its figures read: a statistic of a
//! client distribution (`p95(ttft)`, through the `stats::Distribution`
//! table), request rates and counts, trace figures, a statistic of a
//! sampled server-side value (`max(gpu_util)`), Prometheus query latency,
//! alerts. Plans parse expressions into a [`Metric`] (`plan::threshold`),
//! analysis judges it, and the report carries it typed, so renderers place
//! each threshold by matching on it — never by parsing text.
//!
//! Imports only `stats` (the distribution table and quantiles).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::stats::{Distribution, Quantiles, distribution};

/// A statistic of a distribution or a sampled series.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stat {
    P50,
    P90,
    P95,
    P99,
    Avg,
    Min,
    Max,
}

impl Stat {
    /// `p95`, `avg`, `median`, ... as written in a threshold.
    pub fn parse(name: &str) -> Option<Stat> {
        Some(match name {
            "p50" | "med" | "median" => Stat::P50,
            "p90" => Stat::P90,
            "p95" => Stat::P95,
            "p99" => Stat::P99,
            "avg" | "mean" => Stat::Avg,
            "min" => Stat::Min,
            "max" => Stat::Max,
            _ => return None,
        })
    }

    pub fn key(self) -> &'static str {
        match self {
            Stat::P50 => "p50",
            Stat::P90 => "p90",
            Stat::P95 => "p95",
            Stat::P99 => "p99",
            Stat::Avg => "avg",
            Stat::Min => "min",
            Stat::Max => "max",
        }
    }

    /// "P95", "Avg", "Max": how a row label starts.
    pub fn label(self) -> String {
        match self {
            Stat::Avg => "Avg".to_owned(),
            Stat::Min => "Min".to_owned(),
            Stat::Max => "Max".to_owned(),
            other => other.key().to_uppercase(),
        }
    }

    /// This statistic of a summary.
    pub fn of(self, q: &Quantiles) -> f64 {
        match self {
            Stat::P50 => q.p50,
            Stat::P90 => q.p90,
            Stat::P95 => q.p95,
            Stat::P99 => q.p99,
            Stat::Avg => q.mean,
            Stat::Min => q.min,
            Stat::Max => q.max,
        }
    }

    /// The statistics a sampled series supports (`SampledSummary` keeps
    /// these).
    pub fn sampled(self) -> bool {
        matches!(self, Stat::Max | Stat::Min | Stat::Avg | Stat::P95)
    }
}

/// What a threshold measures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Metric {
    /// A statistic of a client distribution; times in milliseconds.
    Distribution {
        stat: Stat,
        of: Distribution,
    },
    /// Errors / requests, as a fraction.
    ErrorRate,
    TimeoutRate,
    /// Completed requests per second over the scope's duration.
    Rps,
    /// Highest 1-second completed-request rate in the scope.
    PeakRps,
    /// Output tokens per second over the scope's duration.
    OutputTokensPerS,
    Requests,
    /// Requests per second that met every bound of the plan's `[slo]`.
    Goodput,
    /// Share of the requests judged that met every bound of the `[slo]`.
    SloAttainment,
    /// Share of check evaluations that passed (k6's `checks`; see
    /// `plan::check`).
    Checks,
    /// Checked traced requests whose trace arrived with every required
    /// span, as a fraction (see `traces`).
    TraceCoverage,
    /// Required spans absent from the traces that arrived.
    MissingSpans,
    /// A statistic of a sampled server-side value (`max(gpu_util)`,
    /// `avg(cpu_load)`), in the value's stored unit.
    Sampled {
        stat: Stat,
        name: String,
    },
    /// A statistic of the Prometheus queries' latency, in milliseconds.
    QueryLatency {
        stat: Stat,
    },
    /// Alerts that began firing during the run.
    AlertsFired,
    /// Share of the fault drills' expected alerts that fired within their
    /// bound (see `validate::drills`).
    AlertsExpectedFired,
    /// Alerts that fired where no drill expected them.
    AlertsFiredUnexpected,
    /// Seconds from the end of a spike until latency and the queue are
    /// back (see `analysis::recovery`), in milliseconds.
    RecoveryTime,
    /// Requests the server worked on after no client waited for them (see
    /// `analysis::orphans`).
    OrphanedTasks,
    /// Seconds from the load's end until the server held no request, in
    /// milliseconds (the drain window).
    DrainTime,
    /// Share of the client ↔ server cross-checks that agree (see
    /// `analysis::agreement`).
    ObservabilityAgreement,
}

/// What judges a metric: the run's request statistics, the trace
/// look-ups, or what the samplers saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Requests,
    Traces,
    Observed,
    /// A conclusion of the analysis (recovery, orphans, drain).
    Analysis,
}

/// What kind of number a metric is, for parsing bounds and display.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Milliseconds,
    Fraction,
    PerSecond,
    Count,
    /// A sampled value in its own unit (bytes, seconds, ratio, ...).
    Raw,
}

impl Metric {
    pub fn unit(&self) -> Unit {
        match self {
            Metric::Distribution { of, .. } => match of.spec().unit {
                distribution::Unit::Time => Unit::Milliseconds,
                distribution::Unit::PerSecond(_) => Unit::PerSecond,
            },
            Metric::Rps | Metric::PeakRps | Metric::OutputTokensPerS | Metric::Goodput => {
                Unit::PerSecond
            }
            Metric::ErrorRate
            | Metric::TimeoutRate
            | Metric::TraceCoverage
            | Metric::SloAttainment
            | Metric::Checks
            | Metric::AlertsExpectedFired
            | Metric::ObservabilityAgreement => Unit::Fraction,
            Metric::Requests
            | Metric::MissingSpans
            | Metric::AlertsFired
            | Metric::AlertsFiredUnexpected
            | Metric::OrphanedTasks => Unit::Count,
            Metric::QueryLatency { .. } | Metric::RecoveryTime | Metric::DrainTime => {
                Unit::Milliseconds
            }
            Metric::Sampled { .. } => Unit::Raw,
        }
    }

    /// The report's row label, e.g. "P95 Latency".
    pub fn label(&self) -> String {
        match self {
            Metric::Distribution { stat, of } => format!("{} {}", stat.label(), of.spec().label),
            Metric::ErrorRate => "Error Rate".into(),
            Metric::TimeoutRate => "Timeout Rate".into(),
            Metric::Rps => "Achieved QPS".into(),
            Metric::PeakRps => "Peak QPS".into(),
            Metric::OutputTokensPerS => "Output Tokens/s".into(),
            Metric::Requests => "Requests".into(),
            Metric::Goodput => "Goodput".into(),
            Metric::SloAttainment => "SLO Attainment".into(),
            Metric::Checks => "Checks".into(),
            Metric::TraceCoverage => "Trace Coverage".into(),
            Metric::MissingSpans => "Missing Spans".into(),
            Metric::Sampled { stat, name } => format!("{} {name}", stat.label()),
            Metric::QueryLatency { stat } => format!("{} Query Latency", stat.label()),
            Metric::AlertsFired => "Alerts Fired".into(),
            Metric::AlertsExpectedFired => "Expected Alerts Fired".into(),
            Metric::AlertsFiredUnexpected => "Unexpected Alerts".into(),
            Metric::RecoveryTime => "Recovery Time".into(),
            Metric::OrphanedTasks => "Orphaned Tasks".into(),
            Metric::DrainTime => "Drain Time".into(),
            Metric::ObservabilityAgreement => "Observability Agreement".into(),
        }
    }

    /// What judges it.
    pub fn family(&self) -> Family {
        match self {
            Metric::TraceCoverage | Metric::MissingSpans => Family::Traces,
            Metric::Sampled { .. } | Metric::QueryLatency { .. } | Metric::AlertsFired => {
                Family::Observed
            }
            Metric::RecoveryTime
            | Metric::OrphanedTasks
            | Metric::DrainTime
            | Metric::AlertsExpectedFired
            | Metric::AlertsFiredUnexpected
            | Metric::ObservabilityAgreement => Family::Analysis,
            _ => Family::Requests,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
    #[serde(rename = "==")]
    Eq,
}

impl Op {
    /// Two-character operators first, so "<=" is not read as "<".
    pub const ALL: [Op; 5] = [Op::Le, Op::Ge, Op::Eq, Op::Lt, Op::Gt];

    pub fn holds(self, achieved: f64, bound: f64) -> bool {
        match self {
            Op::Lt => achieved < bound,
            Op::Le => achieved <= bound,
            Op::Gt => achieved > bound,
            Op::Ge => achieved >= bound,
            Op::Eq => (achieved - bound).abs() < 1e-9,
        }
    }

    pub fn symbol(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "==",
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}

/// Formats a value of `unit` for humans: "950ms", "1.5s", "0.23%", "152.3".
pub fn format_value(unit: Unit, value: f64) -> String {
    match unit {
        Unit::Milliseconds if value >= 1000.0 => format!("{}s", trim(value / 1000.0, 2)),
        Unit::Milliseconds => format!("{}ms", trim(value, if value >= 100.0 { 0 } else { 1 })),
        Unit::Fraction => format!("{}%", trim(value * 100.0, 2)),
        Unit::PerSecond => trim(value, 1),
        Unit::Count => format!("{value:.0}"),
        Unit::Raw => trim(value, 3),
    }
}

/// `value` with at most `decimals` decimals and no trailing zeros.
pub fn trim(value: f64, decimals: usize) -> String {
    let text = format!("{value:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_read_like_the_report_tables() {
        let cases = [
            (
                Metric::Distribution {
                    stat: Stat::P95,
                    of: Distribution::Latency,
                },
                "P95 Latency",
            ),
            (
                Metric::Distribution {
                    stat: Stat::Avg,
                    of: Distribution::TokensPerS,
                },
                "Avg Tokens/s per Request",
            ),
            (Metric::PeakRps, "Peak QPS"),
            (
                Metric::Sampled {
                    stat: Stat::Max,
                    name: "kv_usage".into(),
                },
                "Max kv_usage",
            ),
            (
                Metric::QueryLatency { stat: Stat::P95 },
                "P95 Query Latency",
            ),
        ];
        for (metric, label) in cases {
            assert_eq!(metric.label(), label);
        }
    }

    #[test]
    fn units_follow_the_distribution_table() {
        let of = |of| Metric::Distribution {
            stat: Stat::P50,
            of,
        };
        assert_eq!(of(Distribution::Ttft).unit(), Unit::Milliseconds);
        assert_eq!(of(Distribution::TokensPerS).unit(), Unit::PerSecond);
        assert_eq!(Metric::TraceCoverage.unit(), Unit::Fraction);
        assert_eq!(Metric::MissingSpans.family(), Family::Traces);
        assert_eq!(Metric::AlertsFired.family(), Family::Observed);
        assert_eq!(of(Distribution::Itl).family(), Family::Requests);
    }

    #[test]
    fn values_format_in_their_unit() {
        let cases = [
            (Unit::Milliseconds, 847.4, "847ms"),
            (Unit::Milliseconds, 56.61, "56.6ms"),
            (Unit::Milliseconds, 1500.0, "1.5s"),
            (Unit::Fraction, 0.0023, "0.23%"),
            (Unit::PerSecond, 152.34, "152.3"),
            (Unit::Count, 3.0, "3"),
            (Unit::Raw, 0.12345, "0.123"),
        ];
        for (unit, v, want) in cases {
            assert_eq!(format_value(unit, v), want, "{unit:?} {v}");
        }
    }

    #[test]
    fn metrics_round_trip_through_json() {
        let metric = Metric::Distribution {
            stat: Stat::P99,
            of: Distribution::TtftService,
        };
        let json = serde_json::to_string(&metric).unwrap();
        assert_eq!(
            json,
            r#"{"kind":"distribution","stat":"p99","of":"ttft_service"}"#
        );
        assert_eq!(serde_json::from_str::<Metric>(&json).unwrap(), metric);
        let err =
            serde_json::from_str::<Metric>(r#"{"kind":"distribution","stat":"p99","of":"nope"}"#)
                .unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
    }

    #[test]
    fn operators_hold_as_written() {
        assert!(Op::Lt.holds(1.0, 2.0) && !Op::Lt.holds(2.0, 2.0));
        assert!(Op::Le.holds(2.0, 2.0) && Op::Ge.holds(2.0, 2.0));
        assert!(Op::Gt.holds(3.0, 2.0) && Op::Eq.holds(0.0, 0.0));
    }
}
