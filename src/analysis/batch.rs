//! The optimal batch size (examples/000): from the seconds of the run, the
//! range of batch sizes (requests running on the server) at which token
//! throughput was within 95 % of its peak while per-second p95 met the
//! plan's `p95(latency)` bound.

use std::collections::BTreeMap;

use crate::metric::{Metric, Op, Stat};
use crate::plan::Plan;
use crate::report::{IntervalSummary, OptimalBatch};
use crate::stats::Series;
use crate::stats::correlation::by_second;

/// Within this share of the peak throughput a batch size is "as good".
const NEAR_PEAK: f64 = 0.95;
/// A batch size needs this many seconds to count.
const MIN_SECONDS: usize = 3;
/// And the estimate needs this many batch sizes.
const MIN_SIZES: usize = 3;

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The plan's run-scope bound on p95 latency, in ms.
fn p95_bound(plan: &Plan) -> Option<f64> {
    plan.thresholds.iter().find_map(|t| match t.metric {
        Metric::Distribution {
            stat: Stat::P95,
            of: crate::stats::Distribution::Latency,
        } if matches!(t.op, Op::Lt | Op::Le) => Some(t.bound),
        _ => None,
    })
}

/// The range, or `None` when the run did not sample the batch and the
/// token rate, or saw too few batch sizes.
pub fn optimal_batch(
    plan: &Plan,
    intervals: &[IntervalSummary],
    sampled: &[Series],
) -> Option<OptimalBatch> {
    let named = |name: &str| {
        sampled
            .iter()
            .find(|s| s.name == name)
            .map(|s| by_second(&s.points()))
    };
    let (running, tokens) = (named("running")?, named("gen_tokens_rate")?);
    let p95: BTreeMap<i64, f64> = intervals
        .iter()
        .filter(|i| i.duration_s >= 0.99)
        .filter_map(|i| Some((i.t.round() as i64, i.latency_p95_ms?)))
        .collect();
    let mut by_size: BTreeMap<u64, (Vec<f64>, Vec<f64>)> = BTreeMap::new();
    let mut seconds = 0;
    for (s, r) in &running {
        let (Some(tok), Some(lat)) = (tokens.get(s), p95.get(s)) else {
            continue;
        };
        if *r < 0.5 {
            continue;
        }
        let entry = by_size.entry(r.round() as u64).or_default();
        entry.0.push(*tok);
        entry.1.push(*lat);
        seconds += 1;
    }
    let sizes: Vec<(u64, f64, f64)> = by_size
        .into_iter()
        .filter(|(_, (t, _))| t.len() >= MIN_SECONDS)
        .map(|(size, (t, l))| (size, median(t), median(l)))
        .collect();
    if sizes.len() < MIN_SIZES {
        return None;
    }
    let peak = sizes.iter().map(|s| s.1).fold(0.0, f64::max);
    let bound = p95_bound(plan);
    let good: Vec<u64> = sizes
        .iter()
        .filter(|(_, tok, lat)| *tok >= NEAR_PEAK * peak && bound.is_none_or(|b| *lat <= b))
        .map(|s| s.0)
        .collect();
    Some(OptimalBatch {
        low: *good.first()?,
        high: *good.last()?,
        peak_tokens_per_s: peak,
        p95_bound_ms: bound,
        seconds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Overrides, resolve_source};
    use crate::report::test_report::second;

    fn plan(thresholds: &str) -> Plan {
        let source = format!(
            "thresholds = [{thresholds}]\n[[phases]]\nname='p'\nduration='10s'\nload={{type='constant',rate=5}}\n"
        );
        resolve_source("t.toml", &source, None, &Overrides::default()).unwrap()
    }

    /// Batch sizes 4..=16, four seconds each: tokens/s saturate at 12,
    /// latency grows with the batch.
    fn run() -> (Vec<IntervalSummary>, Vec<Series>) {
        let (mut running, mut tokens, mut seconds) = (
            Series::new("running", "count"),
            Series::new("gen_tokens_rate", "per_second"),
            Vec::new(),
        );
        let mut t = 1.0;
        for size in 4..=16u32 {
            for _ in 0..4 {
                let b = f64::from(size);
                running.push(t, b);
                tokens.push(t, 250.0 * b.min(12.0) - 10.0 * (b - 12.0).max(0.0));
                seconds.push(second(t, "p", 60.0 * b));
                t += 1.0;
            }
        }
        (seconds, vec![running, tokens])
    }

    #[test]
    fn the_range_near_peak_throughput_within_the_latency_bound() {
        let (seconds, series) = run();
        // Tokens/s is within 95 % of 3,000 from 12 (3,000) to 16 (2,960).
        let unbounded = optimal_batch(&plan(""), &seconds, &series).unwrap();
        assert_eq!((unbounded.low, unbounded.high), (12, 16));
        assert_eq!(unbounded.peak_tokens_per_s, 3000.0);
        // p95 ≤ 800 ms holds up to 13 (780 ms).
        let bounded = optimal_batch(&plan("'p95(latency) < 800ms'"), &seconds, &series).unwrap();
        assert_eq!(
            (bounded.low, bounded.high, bounded.p95_bound_ms),
            (12, 13, Some(800.0))
        );
        assert_eq!(bounded.seconds, 13 * 4);
    }

    #[test]
    fn without_the_batch_series_there_is_no_estimate() {
        let (seconds, mut series) = run();
        series.retain(|s| s.name != "running");
        assert_eq!(optimal_batch(&plan(""), &seconds, &series), None);
    }
}
