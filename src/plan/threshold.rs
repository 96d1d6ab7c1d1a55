//! Threshold expressions, k6-like: `p95(latency) < 950ms`, `error_rate < 1%`,
//! `rps >= 150`. Parsed once when the plan is resolved into a typed
//! [`Metric`] (see `crate::metric`), an operator and a bound in the
//! metric's unit; evaluation lives in `analysis`.

use std::fmt;

use serde::Serialize;

use crate::metric::{Metric, Op, Stat, Unit, format_value, trim};
use crate::stats::Distribution;

/// A parsed threshold. `bound` is in the metric's canonical unit:
/// milliseconds, a fraction (0.01 for 1%), per second, or a count.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Threshold {
    pub expression: String,
    pub metric: Metric,
    pub op: Op,
    pub bound: f64,
}

impl Threshold {
    /// The bound as a report shows it: "< 950ms", "< 1%", ">= 150".
    pub fn target_display(&self) -> String {
        if self.metric.unit() == Unit::Raw {
            // A sampled value's bound is shown as written ("20GiB").
            return format!("{} {}", self.op.symbol(), self.written_bound());
        }
        format!(
            "{} {}",
            self.op.symbol(),
            format_value(self.metric.unit(), self.bound)
        )
    }
}

impl Threshold {
    /// The bound as the plan wrote it (after the operator).
    fn written_bound(&self) -> &str {
        self.expression
            .rsplit(self.op.symbol())
            .next()
            .unwrap_or("")
            .trim()
    }

    /// An achieved value as the report shows it: in the metric's unit, or
    /// for a sampled value in the unit its bound was written in ("90%",
    /// "18.4GiB").
    pub fn display_value(&self, value: f64) -> String {
        if self.metric.unit() != Unit::Raw {
            return format_value(self.metric.unit(), value);
        }
        let suffix = self
            .written_bound()
            .trim_start_matches(|c: char| c.is_ascii_digit() || c == '.' || c == '-' || c == '+');
        match parse_raw_bound(&format!("1{suffix}")) {
            Ok(factor) if !suffix.is_empty() && factor > 0.0 => {
                format!("{}{suffix}", trim(value / factor, 2))
            }
            _ => trim(value, 3),
        }
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.expression)
    }
}

/// Parses one threshold expression.
pub fn parse(expression: &str) -> Result<Threshold, String> {
    let text = expression.trim();
    let (lhs, op, rhs) = split_operator(text).ok_or_else(|| {
        format!("invalid threshold \"{expression}\": expected `<metric> <op> <value>` with op one of < <= > >= ==, like `p95(latency) < 950ms`")
    })?;
    let metric =
        parse_metric(lhs.trim()).map_err(|e| format!("invalid threshold \"{expression}\": {e}"))?;
    let bound = parse_bound(metric.unit(), rhs.trim())
        .map_err(|e| format!("invalid threshold \"{expression}\": {e}"))?;
    Ok(Threshold {
        expression: text.to_owned(),
        metric,
        op,
        bound,
    })
}

fn split_operator(text: &str) -> Option<(&str, Op, &str)> {
    Op::ALL
        .iter()
        .find_map(|op| text.split_once(op.symbol()).map(|(l, r)| (l, *op, r)))
}

pub(crate) fn parse_metric(text: &str) -> Result<Metric, String> {
    if let Some((stat, rest)) = text.split_once('(') {
        let inner = rest.strip_suffix(')').ok_or("missing `)`")?.trim();
        let stat = Stat::parse(stat.trim()).ok_or_else(|| {
            format!(
                "unknown statistic `{}`; expected p50, p90, p95, p99, avg, min or max",
                stat.trim()
            )
        })?;
        if let Some(of) = Distribution::from_name(inner) {
            return Ok(Metric::Distribution { stat, of });
        }
        if inner == "prom_query_latency" {
            return Ok(Metric::QueryLatency { stat });
        }
        return sampled(stat, inner);
    }
    Ok(match text {
        "error_rate" => Metric::ErrorRate,
        "timeout_rate" => Metric::TimeoutRate,
        "rps" | "qps" => Metric::Rps,
        "peak_rps" | "peak_qps" => Metric::PeakRps,
        "output_tokens_per_s" => Metric::OutputTokensPerS,
        "requests" => Metric::Requests,
        "goodput" => Metric::Goodput,
        "slo_attainment" => Metric::SloAttainment,
        "checks" => Metric::Checks,
        "trace_coverage" => Metric::TraceCoverage,
        "missing_spans" => Metric::MissingSpans,
        "alerts_fired" => Metric::AlertsFired,
        "alerts_expected_fired" => Metric::AlertsExpectedFired,
        "alerts_fired_unexpected" => Metric::AlertsFiredUnexpected,
        "recovery_time" => Metric::RecoveryTime,
        "orphaned_tasks" => Metric::OrphanedTasks,
        "drain_time" => Metric::DrainTime,
        "observability_agreement" => Metric::ObservabilityAgreement,
        other => {
            return Err(format!(
                "unknown metric `{other}`; expected error_rate, timeout_rate, rps, peak_rps, output_tokens_per_s, requests, goodput, slo_attainment, checks, trace_coverage, missing_spans, alerts_fired, alerts_expected_fired, alerts_fired_unexpected, recovery_time, orphaned_tasks, drain_time, observability_agreement, or a statistic like p95(latency)"
            ));
        }
    })
}

/// `stat(name)` over a sampled value: any query name (checked against the
/// plan's queries when the plan is resolved).
fn sampled(stat: Stat, name: &str) -> Result<Metric, String> {
    let valid = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(format!(
            "unknown metric `{name}`; expected one of {}, prom_query_latency, or a sampled value's name like gpu_util",
            Distribution::names()
        ));
    }
    if !stat.sampled() {
        return Err(format!(
            "unknown metric `{name}`; expected one of {}, prom_query_latency, or with max, min, avg or p95 a sampled value's name (sampled values support max, min, avg and p95, not {})",
            Distribution::names(),
            stat.key()
        ));
    }
    Ok(Metric::Sampled {
        stat,
        name: name.to_owned(),
    })
}

/// A sampled value's bound: a number with an optional unit — `%` (ratio),
/// `ms`/`s` (seconds), `KiB`..`TiB`/`KB`..`TB` (bytes), `W`, `C`.
fn parse_raw_bound(text: &str) -> Result<f64, String> {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+' || c == 'e'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let n = parse_number(number.trim())?;
    let factor = match suffix.trim() {
        "" | "W" | "C" => 1.0,
        "%" => 0.01,
        "ms" => 0.001,
        "s" => 1.0,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        "TiB" => 1024.0_f64.powi(4),
        "KB" | "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "TB" => 1e12,
        other => {
            return Err(format!(
                "unknown unit `{other}` in `{text}`; expected %, ms, s, KiB..TiB, KB..TB, W or C"
            ));
        }
    };
    Ok(n * factor)
}

fn parse_bound(unit: Unit, text: &str) -> Result<f64, String> {
    let value = match unit {
        Unit::Raw => parse_raw_bound(text)?,
        Unit::Milliseconds => parse_time_ms(text)?,
        Unit::Fraction => match text.strip_suffix('%') {
            Some(pct) => parse_number(pct)? / 100.0,
            None => parse_number(text)?,
        },
        Unit::PerSecond => parse_number(text.strip_suffix("/s").unwrap_or(text))?,
        Unit::Count => parse_number(text)?,
    };
    if value < 0.0 {
        return Err(format!("the bound `{text}` is negative"));
    }
    Ok(value)
}

/// A time bound: `950ms`, `1.5s`, `250us`; a bare number is milliseconds (k6's convention).
fn parse_time_ms(text: &str) -> Result<f64, String> {
    let units = [
        ("ms", 1.0),
        ("us", 0.001),
        ("µs", 0.001),
        ("s", 1000.0),
        ("m", 60_000.0),
    ];
    for (suffix, scale) in units {
        if let Some(number) = text.strip_suffix(suffix) {
            return Ok(parse_number(number)? * scale);
        }
    }
    parse_number(text).map_err(|_| format!("expected a time like 950ms or 1.5s, found `{text}`"))
}

fn parse_number(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("expected a number, found `{}`", text.trim()))?;
    if value.is_finite() {
        Ok(value)
    } else {
        Err(format!("expected a finite number, found `{text}`"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_examples_of_the_issue() {
        let cases: &[(&str, Metric, Op, f64)] = &[
            (
                "p95(latency) < 950ms",
                Metric::Distribution {
                    stat: Stat::P95,
                    of: Distribution::Latency,
                },
                Op::Lt,
                950.0,
            ),
            (
                "p99(ttft) < 1.5s",
                Metric::Distribution {
                    stat: Stat::P99,
                    of: Distribution::Ttft,
                },
                Op::Lt,
                1500.0,
            ),
            ("error_rate < 1%", Metric::ErrorRate, Op::Lt, 0.01),
            ("timeout_rate < 0.5%", Metric::TimeoutRate, Op::Lt, 0.005),
            ("rps >= 150", Metric::Rps, Op::Ge, 150.0),
            ("peak_rps>=150", Metric::PeakRps, Op::Ge, 150.0),
            (
                "avg(itl) <= 20",
                Metric::Distribution {
                    stat: Stat::Avg,
                    of: Distribution::Itl,
                },
                Op::Le,
                20.0,
            ),
            ("error_rate < 0.01", Metric::ErrorRate, Op::Lt, 0.01),
            ("trace_coverage >= 95%", Metric::TraceCoverage, Op::Ge, 0.95),
            ("missing_spans == 0", Metric::MissingSpans, Op::Eq, 0.0),
            (
                "p50(tokens_per_s) > 30",
                Metric::Distribution {
                    stat: Stat::P50,
                    of: Distribution::TokensPerS,
                },
                Op::Gt,
                30.0,
            ),
        ];
        for (text, metric, op, bound) in cases {
            let t = parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!((&t.metric, t.op), (metric, *op), "{text}");
            assert!((t.bound - bound).abs() < 1e-9, "{text}: {}", t.bound);
        }
    }

    #[test]
    fn rejects_bad_expressions_with_the_input_quoted() {
        let cases = [
            ("p90(latncy) < 950ms", "unknown metric `latncy`"),
            ("p97(latency) < 1s", "unknown statistic `p97`"),
            ("p95(latency) 950ms", "expected `<metric> <op> <value>`"),
            ("p95(latency) < fast", "expected a time"),
            ("error_rate < -1%", "negative"),
            ("goodness > 1", "unknown metric `goodness`"),
        ];
        for (text, needle) in cases {
            let err = parse(text).unwrap_err();
            assert!(err.contains(needle) && err.contains(text), "{text}: {err}");
        }
    }

    #[test]
    fn labels_and_targets_read_like_the_report_tables() {
        let t = parse("p95(latency) < 950ms").unwrap();
        assert_eq!(
            (t.metric.label(), t.target_display()),
            ("P95 Latency".into(), "< 950ms".into())
        );
        let t = parse("timeout_rate < 0.5%").unwrap();
        assert_eq!(t.target_display(), "< 0.5%");
        let t = parse("p99(latency) < 1.5s").unwrap();
        assert_eq!(t.target_display(), "< 1.5s");
        let t = parse("peak_rps >= 150").unwrap();
        assert_eq!(
            (t.metric.label(), t.target_display()),
            ("Peak QPS".into(), ">= 150".into())
        );
    }
}

#[cfg(test)]
mod sampled_tests {
    use super::*;

    #[test]
    fn sampled_values_parse_with_units_and_display_in_them() {
        let t = parse("max(gpu_util) < 80%").unwrap();
        assert_eq!(
            t.metric,
            Metric::Sampled {
                stat: Stat::Max,
                name: "gpu_util".into()
            }
        );
        assert_eq!(t.bound, 0.8);
        assert_eq!(t.display_value(0.9), "90%");
        assert_eq!(t.target_display(), "< 80%");
        let vram = parse("max(vram_used) < 20GiB").unwrap();
        assert_eq!(vram.bound, 20.0 * 1024.0 * 1024.0 * 1024.0);
        assert_eq!(
            vram.display_value(18.4 * 1024.0 * 1024.0 * 1024.0),
            "18.4GiB"
        );
        assert_eq!(parse("avg(cpu_load) < 12").unwrap().bound, 12.0);
        assert_eq!(parse("max(server_ttft_p95) < 200ms").unwrap().bound, 0.2);
        let latency = parse("p95(prom_query_latency) < 100ms").unwrap();
        assert_eq!(latency.metric, Metric::QueryLatency { stat: Stat::P95 });
        assert_eq!(latency.bound, 100.0);
        assert_eq!(
            parse("alerts_fired == 0").unwrap().metric,
            Metric::AlertsFired
        );
        assert!(
            parse("p99(gpu_util) < 1")
                .unwrap_err()
                .contains("max, min, avg and p95")
        );
        assert!(
            parse("max(gpu_util) < 80parsecs")
                .unwrap_err()
                .contains("unknown unit")
        );
    }
}
