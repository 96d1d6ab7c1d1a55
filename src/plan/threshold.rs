//! Threshold expressions, k6-like: `p95(latency) < 950ms`, `error_rate < 1%`,
//! `rps >= 150`. Parsed once when the plan is resolved; evaluation lives in
//! `analysis` and reads only the report model.

use std::fmt;

use serde::Serialize;

/// A statistic of a per-request distribution.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
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
    fn parse(name: &str) -> Option<Stat> {
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

    /// The key used by `Quantiles::get`.
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
}

/// A per-request distribution thresholds can name.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Distribution {
    Latency,
    ServiceTime,
    Ttft,
    TtftService,
    Itl,
    Tpot,
    ScheduleLag,
    TokensPerS,
}

impl Distribution {
    pub const NAMES: &'static str =
        "latency, service_time, ttft, ttft_service, itl, tpot, schedule_lag, tokens_per_s";

    fn parse(name: &str) -> Option<Distribution> {
        Some(match name {
            "latency" => Distribution::Latency,
            "service_time" => Distribution::ServiceTime,
            "ttft" => Distribution::Ttft,
            "ttft_service" => Distribution::TtftService,
            "itl" => Distribution::Itl,
            "tpot" => Distribution::Tpot,
            "schedule_lag" => Distribution::ScheduleLag,
            "tokens_per_s" => Distribution::TokensPerS,
            _ => return None,
        })
    }

    fn label(self) -> &'static str {
        match self {
            Distribution::Latency => "Latency",
            Distribution::ServiceTime => "Service Time",
            Distribution::Ttft => "TTFT",
            Distribution::TtftService => "TTFT (service)",
            Distribution::Itl => "ITL",
            Distribution::Tpot => "TPOT",
            Distribution::ScheduleLag => "Schedule Lag",
            Distribution::TokensPerS => "Tokens/s per Request",
        }
    }

    pub fn is_time(self) -> bool {
        self != Distribution::TokensPerS
    }
}

/// What a threshold measures.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Metric {
    /// A statistic of a distribution; times in milliseconds.
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
    /// Checked traced requests whose trace arrived with every required
    /// span, as a fraction (see `traces`).
    TraceCoverage,
    /// Required spans absent from the traces that arrived.
    MissingSpans,
    /// A statistic of a sampled server-side value (`max(gpu_util)`,
    /// `avg(cpu_load)`), in the value's stored unit.
    Sampled {
        stat: Stat,
        name: &'static str,
    },
    /// A statistic of the Prometheus queries' latency, in milliseconds.
    QueryLatency {
        stat: Stat,
    },
    /// Alerts that began firing during the run.
    AlertsFired,
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
    pub fn unit(self) -> Unit {
        match self {
            Metric::Distribution { of, .. } if of.is_time() => Unit::Milliseconds,
            Metric::Distribution { .. }
            | Metric::Rps
            | Metric::PeakRps
            | Metric::OutputTokensPerS => Unit::PerSecond,
            Metric::ErrorRate | Metric::TimeoutRate | Metric::TraceCoverage => Unit::Fraction,
            Metric::Requests | Metric::MissingSpans | Metric::AlertsFired => Unit::Count,
            Metric::QueryLatency { .. } => Unit::Milliseconds,
            Metric::Sampled { .. } => Unit::Raw,
        }
    }

    /// The report's row label, e.g. "P95 Latency".
    pub fn label(self) -> String {
        match self {
            Metric::Distribution { stat, of } => format!("{} {}", stat_label(stat), of.label()),
            Metric::ErrorRate => "Error Rate".into(),
            Metric::TimeoutRate => "Timeout Rate".into(),
            Metric::Rps => "Achieved QPS".into(),
            Metric::PeakRps => "Peak QPS".into(),
            Metric::OutputTokensPerS => "Output Tokens/s".into(),
            Metric::Requests => "Requests".into(),
            Metric::TraceCoverage => "Trace Coverage".into(),
            Metric::MissingSpans => "Missing Spans".into(),
            Metric::Sampled { stat, name } => format!("{} {name}", stat_label(stat)),
            Metric::QueryLatency { stat } => format!("{} Query Latency", stat_label(stat)),
            Metric::AlertsFired => "Alerts Fired".into(),
        }
    }

    /// Judged on what the samplers saw, not on request statistics.
    pub fn is_observed(self) -> bool {
        matches!(
            self,
            Metric::Sampled { .. } | Metric::QueryLatency { .. } | Metric::AlertsFired
        )
    }

    /// Judged on the trace look-ups after the load, not on request statistics.
    pub fn is_trace(self) -> bool {
        matches!(self, Metric::TraceCoverage | Metric::MissingSpans)
    }
}

fn stat_label(stat: Stat) -> String {
    match stat {
        Stat::Avg => "Avg".to_owned(),
        Stat::Min => "Min".to_owned(),
        Stat::Max => "Max".to_owned(),
        other => other.key().to_uppercase(),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
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
    pub fn holds(self, achieved: f64, bound: f64) -> bool {
        match self {
            Op::Lt => achieved < bound,
            Op::Le => achieved <= bound,
            Op::Gt => achieved > bound,
            Op::Ge => achieved >= bound,
            Op::Eq => (achieved - bound).abs() < 1e-9,
        }
    }

    fn symbol(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "==",
        }
    }
}

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

fn trim(value: f64, decimals: usize) -> String {
    let text = format!("{value:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
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
    // Two-character operators first so "<=" is not read as "<".
    let ops = [
        ("<=", Op::Le),
        (">=", Op::Ge),
        ("==", Op::Eq),
        ("<", Op::Lt),
        (">", Op::Gt),
    ];
    ops.iter()
        .find_map(|(symbol, op)| text.split_once(symbol).map(|(l, r)| (l, *op, r)))
}

fn parse_metric(text: &str) -> Result<Metric, String> {
    if let Some((stat, rest)) = text.split_once('(') {
        let inner = rest.strip_suffix(')').ok_or("missing `)`")?.trim();
        let stat = Stat::parse(stat.trim()).ok_or_else(|| {
            format!(
                "unknown statistic `{}`; expected p50, p90, p95, p99, avg, min or max",
                stat.trim()
            )
        })?;
        if let Some(of) = Distribution::parse(inner) {
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
        "trace_coverage" => Metric::TraceCoverage,
        "missing_spans" => Metric::MissingSpans,
        "alerts_fired" => Metric::AlertsFired,
        other => {
            return Err(format!(
                "unknown metric `{other}`; expected error_rate, timeout_rate, rps, peak_rps, output_tokens_per_s, requests, trace_coverage, missing_spans, or a statistic like p95(latency)"
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
            Distribution::NAMES
        ));
    }
    if !matches!(stat, Stat::Max | Stat::Min | Stat::Avg | Stat::P95) {
        return Err(format!(
            "unknown metric `{name}`; expected one of {}, prom_query_latency, or with max, min, avg or p95 a sampled value's name (sampled values support max, min, avg and p95, not {})",
            Distribution::NAMES,
            stat.key()
        ));
    }
    Ok(Metric::Sampled {
        stat,
        name: intern(name),
    })
}

/// Sampled-value names live as long as the program: a plan names a handful,
/// each stored once.
fn intern(name: &str) -> &'static str {
    static NAMES: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());
    let mut names = NAMES.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(known) = names.iter().find(|n| **n == name) {
        return known;
    }
    let leaked: &'static str = Box::leak(name.to_owned().into_boxed_str());
    names.push(leaked);
    leaked
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
            assert_eq!((t.metric, t.op), (*metric, *op), "{text}");
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

    #[test]
    fn operators_hold_as_written() {
        assert!(Op::Lt.holds(1.0, 2.0) && !Op::Lt.holds(2.0, 2.0));
        assert!(Op::Le.holds(2.0, 2.0) && Op::Ge.holds(2.0, 2.0));
        assert!(Op::Gt.holds(3.0, 2.0) && Op::Eq.holds(0.0, 0.0));
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
                name: "gpu_util"
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
