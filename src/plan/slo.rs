//! The plan's `[slo]` table: per-request bounds, by client distribution —
//! `slo = { ttft = "500ms", tpot = "50ms", latency = "2s" }` — that a
//! request must meet, every one, to count toward goodput. Times are
//! durations; a rate (`tokens_per_s = "30"`) is a lower bound.

use std::collections::BTreeMap;
use std::ops::Range;

use serde_spanned::Spanned;

use super::PlanError;
use crate::stats::distribution::{Unit, micros, thousandths};
use crate::stats::{Distribution, Slo, SloBound};

/// The table as written: distribution name → bound.
pub type RawSlo = BTreeMap<String, Spanned<String>>;

/// Resolves the table; `error` locates a message at a span of the plan.
pub fn resolve(
    raw: Option<RawSlo>,
    error: &dyn Fn(Range<usize>, String) -> PlanError,
) -> Result<Slo, PlanError> {
    let mut bounds = Vec::new();
    for (name, value) in raw.unwrap_or_default() {
        let of = Distribution::from_name(&name)
            .filter(|d| Slo::can_bound(*d))
            .ok_or_else(|| error(value.span(), unknown(&name)))?;
        let limit = bound(of, value.get_ref())
            .map_err(|m| error(value.span(), format!("slo.{name}: {m}")))?;
        bounds.push(SloBound { of, limit });
    }
    Ok(Slo { bounds })
}

fn unknown(name: &str) -> String {
    let names: Vec<&str> = Distribution::ALL
        .iter()
        .filter(|d| Slo::can_bound(**d))
        .map(|d| d.spec().name)
        .collect();
    format!(
        "slo: `{name}` is not a per-request distribution; expected one of {}",
        names.join(", ")
    )
}

/// A bound in the distribution's recorded unit.
fn bound(of: Distribution, text: &str) -> Result<u64, String> {
    match of.spec().unit {
        Unit::Time => crate::units::parse_duration(text).map(micros),
        Unit::PerSecond(_) => {
            let number = text.trim().trim_end_matches("/s");
            let rate: f64 = number
                .trim()
                .parse()
                .map_err(|_| format!("expected a rate like 30 or 30/s, found \"{text}\""))?;
            if rate.is_finite() && rate > 0.0 {
                Ok(thousandths(rate))
            } else {
                Err(format!("a rate must be positive, found \"{text}\""))
            }
        }
    }
}
