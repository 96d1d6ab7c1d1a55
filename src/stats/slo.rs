//! Per-request service-level objectives (a plan's `[slo]`): bounds on the
//! client distributions of one request — TTFT, TPOT, latency, ... — that a
//! request must meet, all of them, to count toward goodput (DESIGN.md,
//! "Goodput"). A failed request misses; so does a request without a value
//! a bound needs (no TTFT from a non-streaming answer): what could not be
//! checked is not a success.

use serde::Serialize;

use super::distribution::{Distribution, Measure};
use crate::outcome::Outcome;

/// One bound: `of` at most `limit` (at least, for a rate), in the
/// distribution's recorded unit (µs, thousandths per second).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct SloBound {
    pub of: Distribution,
    pub limit: u64,
}

/// Every bound a request must meet; empty: the plan sets no SLO.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Slo {
    pub bounds: Vec<SloBound>,
}

impl Slo {
    pub fn is_empty(&self) -> bool {
        self.bounds.is_empty()
    }

    /// Whether `outcome` met every bound.
    pub fn met(&self, outcome: &Outcome) -> bool {
        outcome.is_ok()
            && self.bounds.iter().all(|b| match b.of.measure(outcome) {
                Some(v) if b.of.spec().higher_is_better => v >= b.limit,
                Some(v) => v <= b.limit,
                None => false,
            })
    }

    /// Whether `of` can bound a request: only per-request distributions
    /// (ITL has one value per gap, not per request).
    pub fn can_bound(of: Distribution) -> bool {
        matches!(of.spec().measure, Measure::PerRequest { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{ErrorKind, example};
    use crate::stats::distribution::{micros, thousandths};
    use std::time::Duration;

    fn slo(bounds: &[(Distribution, u64)]) -> Slo {
        Slo {
            bounds: bounds
                .iter()
                .map(|(of, limit)| SloBound {
                    of: *of,
                    limit: *limit,
                })
                .collect(),
        }
    }

    #[test]
    fn a_request_meets_every_bound_or_misses() {
        // The example: TTFT 80 ms from intended, TPOT 10 ms, 68.75 tok/s.
        let ok = example(None);
        let ms = |v| micros(Duration::from_millis(v));
        let cases = [
            (slo(&[(Distribution::Ttft, ms(100))]), true),
            (slo(&[(Distribution::Ttft, ms(50))]), false),
            (
                slo(&[(Distribution::Ttft, ms(100)), (Distribution::Tpot, ms(9))]),
                false,
            ),
            (slo(&[(Distribution::TokensPerS, thousandths(60.0))]), true),
            (slo(&[(Distribution::TokensPerS, thousandths(70.0))]), false),
            (Slo::default(), true),
        ];
        for (slo, want) in cases {
            assert_eq!(slo.met(&ok), want, "{slo:?}");
        }
        let loose = slo(&[(Distribution::Latency, ms(10_000))]);
        assert!(
            !loose.met(&example(Some(ErrorKind::Http5xx))),
            "errors miss"
        );
        let unstreamed = Outcome {
            first_token: None,
            ..example(None)
        };
        assert!(
            !slo(&[(Distribution::Ttft, ms(10_000))]).met(&unstreamed),
            "no TTFT, a miss"
        );
        assert!(!Slo::can_bound(Distribution::Itl) && Slo::can_bound(Distribution::Tpot));
    }
}
