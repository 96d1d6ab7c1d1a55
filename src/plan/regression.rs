//! The plan's `[regression]` table: how much each headline metric may
//! move against a baseline run before the run fails —
//! `"p95(latency)" = "+20%"`, `error_rate = "+0.5pp"`, `rps = "-5%"`,
//! `"avg(gpu_util)" = "off"`. Keys name metrics as thresholds do; the sign
//! says which way is worse (`+`: growing, `-`: shrinking; a bare `20%`
//! takes the metric's own worse direction). Entries override the
//! [`defaults`] (every time percentile `+20%` — examples/003's rule on
//! p95 —, errors and timeouts `+0.5pp`, rates `-5%`); the sampled server
//! values are compared without a tolerance (reported, never failing)
//! unless the table gives one.

use std::collections::BTreeMap;
use std::ops::Range;

use serde::{Deserialize, Serialize};
use serde_spanned::Spanned;

use super::PlanError;
use crate::metric::{Metric, Stat};
use crate::stats::Distribution;
use crate::stats::distribution::Unit;

/// The table as written: metric → allowed change.
pub type RawRegression = BTreeMap<String, Spanned<String>>;

/// One metric compared against the baseline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tolerance {
    /// The metric as written, canonical (`p95(latency)`, `rps`).
    pub key: String,
    pub metric: Metric,
    /// `true`: a higher value is worse (latency, errors).
    pub higher_is_worse: bool,
    /// The allowed change in the worse direction; `None`: compared and
    /// reported, never failing.
    pub allowed: Option<Allowed>,
    /// The allowance as written (`+20%`), or "none".
    pub written: String,
}

/// An allowed change, as a non-negative magnitude in the worse direction.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Allowed {
    /// A share of the baseline (0.20 for `+20%`).
    Relative(f64),
    /// Percentage points of a rate, as a fraction (0.005 for `+0.5pp`).
    Points(f64),
}

/// The sampled server values compared by default (informational).
const DEFAULT_SAMPLED: [(&str, Stat); 5] = [
    ("gpu_util", Stat::Avg),
    ("vram_used", Stat::Avg),
    ("queue_depth", Stat::Avg),
    ("kv_usage", Stat::Avg),
    ("running", Stat::Avg),
];

/// The comparison a plan without `[regression]` gets.
pub fn defaults() -> Vec<Tolerance> {
    let mut list = Vec::new();
    for of in [
        Distribution::Latency,
        Distribution::Ttft,
        Distribution::Itl,
        Distribution::Tpot,
    ] {
        for stat in [Stat::P50, Stat::P95, Stat::P99] {
            let key = format!("{}({})", stat.key(), of.spec().name);
            list.push(tolerance(&key, "+20%").expect("a valid default"));
        }
    }
    for (key, allowed) in [
        ("error_rate", "+0.5pp"),
        ("timeout_rate", "+0.5pp"),
        ("rps", "-5%"),
        ("output_tokens_per_s", "-5%"),
        ("goodput", "-5%"),
    ] {
        list.push(tolerance(key, allowed).expect("a valid default"));
    }
    for (name, stat) in DEFAULT_SAMPLED {
        let key = format!("{}({name})", stat.key());
        list.push(tolerance(&key, "none").expect("a valid default"));
    }
    list
}

/// The defaults with the plan's entries applied (`off` removes one).
pub fn resolve(
    raw: Option<RawRegression>,
    error: &dyn Fn(Range<usize>, String) -> PlanError,
) -> Result<Vec<Tolerance>, PlanError> {
    let mut list = defaults();
    for (key, value) in raw.unwrap_or_default() {
        let text = value.get_ref().trim();
        let parsed = if text == "off" {
            canonical_key(&key).map(|k| (k, None))
        } else {
            tolerance(&key, text).map(|t| (t.key.clone(), Some(t)))
        };
        let (canonical, entry) =
            parsed.map_err(|m| error(value.span(), format!("regression.\"{key}\": {m}")))?;
        list.retain(|t| t.key != canonical);
        list.extend(entry);
    }
    Ok(list)
}

/// One entry: `key` (a metric) allowed to move `text`.
pub fn tolerance(key: &str, text: &str) -> Result<Tolerance, String> {
    let metric = super::threshold::parse_metric(key.trim())?;
    let natural_higher = higher_is_worse(&metric)?;
    let key = canonical_key(key)?;
    if text == "none" {
        return Ok(Tolerance {
            key,
            metric,
            higher_is_worse: natural_higher,
            allowed: None,
            written: "none".into(),
        });
    }
    let (sign, magnitude) = parse_change(text)?;
    let higher = match (sign, &metric) {
        (Some(s), Metric::Sampled { .. }) => s > 0.0,
        (Some(s), _) if (s > 0.0) != natural_higher => {
            return Err(format!(
                "`{text}` allows a change in the better direction; {} regresses when it {}, so write {}{}",
                metric.label(),
                if natural_higher { "grows" } else { "shrinks" },
                if natural_higher { "+" } else { "-" },
                text.trim_start_matches(['+', '-'])
            ));
        }
        _ => natural_higher,
    };
    let allowed = match magnitude {
        Magnitude::Percent(p) => Allowed::Relative(p),
        Magnitude::Points(p) if is_rate(&metric) => Allowed::Points(p),
        Magnitude::Points(_) => {
            return Err(format!(
                "`{text}`: percentage points (pp) apply to rates (error_rate, timeout_rate, slo_attainment); write a percentage like +20%"
            ));
        }
    };
    Ok(Tolerance {
        key,
        metric,
        higher_is_worse: higher,
        allowed: Some(allowed),
        written: text.to_owned(),
    })
}

/// The key without spaces and with the statistic's own spelling
/// (`median(latency)` → `p50(latency)`).
fn canonical_key(key: &str) -> Result<String, String> {
    let metric = super::threshold::parse_metric(key.trim())?;
    Ok(match &metric {
        Metric::Distribution { stat, of } => format!("{}({})", stat.key(), of.spec().name),
        Metric::Sampled { stat, name } => format!("{}({name})", stat.key()),
        _ => key.trim().to_owned(),
    })
}

/// Which way `metric` regresses; an error for what cannot be compared.
fn higher_is_worse(metric: &Metric) -> Result<bool, String> {
    match metric {
        Metric::Distribution { stat, of } => {
            if matches!(stat, Stat::Min | Stat::Max | Stat::Avg) {
                return Err(format!(
                    "{} cannot be compared with a confidence interval; use a percentile like p95({})",
                    metric.label(),
                    of.spec().name
                ));
            }
            Ok(matches!(of.spec().unit, Unit::Time))
        }
        Metric::ErrorRate | Metric::TimeoutRate => Ok(true),
        Metric::Rps | Metric::OutputTokensPerS | Metric::Goodput | Metric::SloAttainment => {
            Ok(false)
        }
        Metric::Sampled { .. } => Ok(true),
        other => Err(format!(
            "{} is not compared against a baseline; expected a percentile of a client distribution (p95(latency)), error_rate, timeout_rate, rps, output_tokens_per_s, goodput, slo_attainment, or avg/p95/max of a sampled value",
            other.label()
        )),
    }
}

fn is_rate(metric: &Metric) -> bool {
    matches!(
        metric,
        Metric::ErrorRate | Metric::TimeoutRate | Metric::SloAttainment
    )
}

enum Magnitude {
    Percent(f64),
    Points(f64),
}

/// `+20%`, `-5%`, `20%`, `+0.5pp`: the sign (if written) and magnitude.
fn parse_change(text: &str) -> Result<(Option<f64>, Magnitude), String> {
    let (sign, rest) = match text.strip_prefix('+') {
        Some(rest) => (Some(1.0), rest),
        None => match text.strip_prefix('-') {
            Some(rest) => (Some(-1.0), rest),
            None => (None, text),
        },
    };
    let (number, make): (&str, fn(f64) -> Magnitude) = if let Some(n) = rest.strip_suffix("pp") {
        (n, |v| Magnitude::Points(v / 100.0))
    } else if let Some(n) = rest.strip_suffix('%') {
        (n, |v| Magnitude::Percent(v / 100.0))
    } else {
        return Err(format!(
            "expected a change like +20%, -5% or +0.5pp (or \"off\"), found `{text}`"
        ));
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("expected a number in `{text}`"))?;
    if !value.is_finite() || value < 0.0 {
        return Err(format!("`{text}` is not a non-negative change"));
    }
    Ok((sign, make(value)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn located(_: Range<usize>, message: String) -> PlanError {
        PlanError::Option {
            option: "regression",
            message,
        }
    }

    #[test]
    fn the_default_fails_p95_growing_more_than_a_fifth() {
        let list = defaults();
        let p95 = list.iter().find(|t| t.key == "p95(latency)").unwrap();
        assert_eq!(p95.allowed, Some(Allowed::Relative(0.20)));
        assert!(p95.higher_is_worse);
        let rps = list.iter().find(|t| t.key == "rps").unwrap();
        assert_eq!(rps.allowed, Some(Allowed::Relative(0.05)));
        assert!(!rps.higher_is_worse);
        let errors = list.iter().find(|t| t.key == "error_rate").unwrap();
        assert_eq!(errors.allowed, Some(Allowed::Points(0.005)));
        let gpu = list.iter().find(|t| t.key == "avg(gpu_util)").unwrap();
        assert_eq!(gpu.allowed, None);
    }

    #[test]
    fn plan_entries_override_and_remove_defaults() {
        let raw: RawRegression = toml::from_str(
            "\"p95(latency)\" = \"+10%\"\n\"median(ttft)\" = \"off\"\n\"max(vram_used)\" = \"+5%\"\n",
        )
        .unwrap();
        let list = resolve(Some(raw), &located).unwrap();
        let p95 = list.iter().find(|t| t.key == "p95(latency)").unwrap();
        assert_eq!(p95.allowed, Some(Allowed::Relative(0.10)));
        assert!(!list.iter().any(|t| t.key == "p50(ttft)"));
        let vram = list.iter().find(|t| t.key == "max(vram_used)").unwrap();
        assert_eq!(vram.allowed, Some(Allowed::Relative(0.05)));
        assert_eq!(list.iter().filter(|t| t.key == "p95(latency)").count(), 1);
    }

    #[test]
    fn a_tolerance_in_the_better_direction_or_the_wrong_unit_is_refused() {
        let err = tolerance("p95(latency)", "-20%").unwrap_err();
        assert!(err.contains("write +20%"), "{err}");
        let err = tolerance("rps", "+5%").unwrap_err();
        assert!(err.contains("write -5%"), "{err}");
        let err = tolerance("p95(latency)", "+1pp").unwrap_err();
        assert!(err.contains("percentage points"), "{err}");
        let err = tolerance("requests", "+1%").unwrap_err();
        assert!(err.contains("not compared"), "{err}");
        let err = tolerance("avg(latency)", "+1%").unwrap_err();
        assert!(err.contains("percentile"), "{err}");
        assert!(tolerance("rps", "5").is_err());
        assert!(tolerance("error_rate", "20%").is_ok());
    }

    #[test]
    fn a_sampled_value_takes_its_direction_from_the_sign() {
        assert!(tolerance("avg(gpu_util)", "+10%").unwrap().higher_is_worse);
        assert!(!tolerance("avg(gpu_util)", "-10%").unwrap().higher_is_worse);
    }
}
