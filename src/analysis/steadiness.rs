//! Steadiness: within each steady phase (a constant or Poisson rate, a
//! fixed concurrency, users), the trend of per-second latency and TPOT p95
//! (Theil–Sen slope, Mann–Kendall significance; `stats::trend`) — a
//! stable plateau, or degrading by so many ms a minute. And over the whole
//! run, the trend of the server's memory (VRAM, the target's RSS): flat,
//! or growing.

use crate::plan::{Load, Plan};
use crate::report::{ClientSeries, Drift, IntervalSummary, MemoryTrend, PhaseReport, Steadiness};
use crate::stats::Series;
use crate::stats::trend::trend;

/// A trend counts when it is this significant …
const P_SIGNIFICANT: f64 = 0.01;
/// … and moves the series by at least this share of its median over the
/// phase (a 2 ms drift of a 900 ms p95 is not a degradation).
const MIN_RELEVANT_CHANGE: f64 = 0.1;
/// Phases shorter than this many complete seconds are not judged.
const MIN_SECONDS: usize = 20;
/// Memory growing by less than this share of its first value over the
/// run is flat.
const MIN_MEMORY_GROWTH: f64 = 0.02;
/// The memory series judged, when sampled.
const MEMORY_SERIES: &[&str] = &["vram_used", "target_rss"];

/// Every steady phase's latency and TPOT trends.
pub fn steadiness(
    plan: &Plan,
    phases: &[PhaseReport],
    intervals: &[IntervalSummary],
) -> Vec<Steadiness> {
    let series: [ClientSeries; 2] = [
        ("latency p95", |i| i.latency_p95_ms),
        ("TPOT p95", |i| i.tpot_p95_ms),
    ];
    let mut out = Vec::new();
    for (phase, report) in plan.phases.iter().zip(phases) {
        let steady = matches!(
            phase.load,
            Load::Constant { .. }
                | Load::Poisson { .. }
                | Load::Concurrency { .. }
                | Load::Users {
                    spawn_rate: None,
                    ..
                }
        );
        if !steady {
            continue;
        }
        for (name, pick) in series {
            let points: Vec<(f64, f64)> = intervals
                .iter()
                .filter(|i| i.duration_s >= 0.99 && i.phase == report.name)
                .filter_map(|i| Some((i.t, pick(i)?)))
                .collect();
            if let Some(s) = judge(&report.name, name, &points) {
                out.push(s);
            }
        }
    }
    out
}

fn judge(phase: &str, series: &str, points: &[(f64, f64)]) -> Option<Steadiness> {
    if points.len() < MIN_SECONDS {
        return None;
    }
    let t = trend(points)?;
    let mut values: Vec<f64> = points.iter().map(|p| p.1).collect();
    values.sort_by(f64::total_cmp);
    let median_ms = values[values.len() / 2];
    let span_s = points[points.len() - 1].0 - points[0].0;
    let change = t.slope * span_s;
    let relevant = median_ms > 0.0 && change.abs() >= MIN_RELEVANT_CHANGE * median_ms;
    let drift = match (t.p_value < P_SIGNIFICANT && relevant, change > 0.0) {
        (false, _) => Drift::Stable,
        (true, true) => Drift::Degrading,
        (true, false) => Drift::Improving,
    };
    Some(Steadiness {
        phase: phase.to_owned(),
        series: series.to_owned(),
        slope_ms_per_min: t.slope * 60.0,
        median_ms,
        p_value: t.p_value,
        n: t.n as u64,
        drift,
    })
}

/// The server's memory over the run.
pub fn memory(sampled: &[Series]) -> Vec<MemoryTrend> {
    sampled
        .iter()
        .filter(|s| MEMORY_SERIES.contains(&s.name.as_str()))
        .filter_map(|s| {
            let points = s.points();
            let t = trend(&points)?;
            let (first, last) = (points[0], points[points.len() - 1]);
            let growth = t.slope * (last.0 - first.0);
            Some(MemoryTrend {
                series: s.name.clone(),
                slope_bytes_per_min: t.slope * 60.0,
                p_value: t.p_value,
                n: t.n as u64,
                first_bytes: first.1,
                last_bytes: last.1,
                growing: t.p_value < P_SIGNIFICANT
                    && growth > MIN_MEMORY_GROWTH * first.1.abs().max(1.0),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wobble(i: usize) -> f64 {
        [3.0, -2.0, 5.0, -4.0, 1.0, -1.0, 4.0, -5.0][i % 8]
    }

    #[test]
    fn a_flat_phase_is_a_plateau_and_a_drift_is_degrading() {
        let flat: Vec<(f64, f64)> = (0..60).map(|i| (i as f64, 500.0 + wobble(i))).collect();
        let s = judge("sustained", "latency p95", &flat).unwrap();
        assert_eq!(s.drift, Drift::Stable, "{s:?}");
        // +2 ms a second: +120 ms/min, +118 ms over the phase (24 % of 500).
        let rising: Vec<(f64, f64)> = (0..60)
            .map(|i| (i as f64, 500.0 + 2.0 * i as f64 + wobble(i)))
            .collect();
        let s = judge("sustained", "latency p95", &rising).unwrap();
        assert_eq!(s.drift, Drift::Degrading);
        assert!(
            (s.slope_ms_per_min - 120.0).abs() < 3.0,
            "{}",
            s.slope_ms_per_min
        );
        assert_eq!(judge("short", "latency p95", &flat[..10]), None);
    }

    #[test]
    fn a_small_significant_drift_is_still_a_plateau() {
        // +0.02 ms a second on 900 ms: significant, but 1 ms over the phase.
        let points: Vec<(f64, f64)> = (0..60)
            .map(|i| (i as f64, 900.0 + 0.02 * i as f64 + 0.001 * wobble(i)))
            .collect();
        assert_eq!(
            judge("p", "latency p95", &points).unwrap().drift,
            Drift::Stable
        );
    }

    #[test]
    fn growing_memory_is_found_and_flat_memory_is_not() {
        let mib = 1024.0 * 1024.0;
        let mut leak = Series::new("target_rss", "bytes");
        let mut flat = Series::new("vram_used", "bytes");
        for i in 0..120 {
            leak.push(i as f64, 500.0 * mib + 2.0 * mib * i as f64);
            flat.push(i as f64, 16_000.0 * mib + mib * wobble(i));
        }
        let trends = memory(&[leak, flat, Series::new("kv_usage", "ratio")]);
        assert_eq!(trends.len(), 2);
        let by = |name: &str| trends.iter().find(|t| t.series == name).unwrap();
        assert!(by("target_rss").growing);
        assert!((by("target_rss").slope_bytes_per_min / mib - 120.0).abs() < 1.0);
        assert!(!by("vram_used").growing);
    }
}
