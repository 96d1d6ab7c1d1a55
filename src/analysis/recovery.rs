//! Recovery (DESIGN.md, "Recovery time"): after a spike or overload phase
//! ends, the time until per-second p95 is back within a band of the
//! pre-spike baseline — and the server's queue empty, when it is sampled —
//! for three seconds in a row. A phase is a spike when the plan marks it
//! (`stress = true`) or when its load is heavier than the next phase's; the
//! baseline is the median per-second p95 of the phase before it. When the
//! next phase ramps the rate down, the stress ends once the ramp is back
//! at the baseline's rate.

use std::collections::BTreeMap;

use crate::plan::{Load, Phase, Plan};
use crate::report::{IntervalSummary, PhaseReport, Recovery};
use crate::stats::Series;

/// Back means at most this much above the baseline's p95 …
pub const BAND: f64 = 0.2;
/// … and never less than this many milliseconds of room.
pub const MIN_BAND_MS: f64 = 10.0;
/// Seconds in a row that must be back.
const STEADY_SECONDS: usize = 3;

/// One recovery per spike phase that has a phase before it.
pub fn recovery(
    plan: &Plan,
    phases: &[PhaseReport],
    intervals: &[IntervalSummary],
    sampled: &[Series],
) -> Vec<Recovery> {
    let queue = sampled.iter().find(|s| s.name == "queue_depth").map(|s| {
        s.samples
            .iter()
            .map(|x| (x.t.round() as i64, x.value))
            .collect::<BTreeMap<i64, f64>>()
    });
    (1..plan.phases.len())
        .filter(|&i| is_spike(&plan.phases[i], plan.phases.get(i + 1)))
        .filter_map(|i| {
            let stress_end = stress_end(plan, phases, i);
            measure(
                &phases[i - 1],
                &phases[i],
                stress_end,
                intervals,
                queue.as_ref(),
            )
        })
        .collect()
}

/// When the stress of spike phase `i` ends: at the phase's end, or — when
/// the next phase ramps the rate down through the baseline's — when the
/// ramp's target is back at the baseline's rate (the load was above the
/// baseline until then).
fn stress_end(plan: &Plan, phases: &[PhaseReport], i: usize) -> f64 {
    let end = phases[i].end_s;
    let (Some(next), Some(next_report)) = (plan.phases.get(i + 1), phases.get(i + 1)) else {
        return end;
    };
    let base = level(&plan.phases[i - 1].load);
    match (&next.load, base) {
        (Load::Ramp { from, to }, Some((true, rate))) if *from > rate && *to < rate => {
            let length = next_report.end_s - next_report.start_s;
            next_report.start_s + length * (from - rate) / (from - to)
        }
        _ => end,
    }
}

/// Whether `phase` is a spike: marked, or heavier than the next phase
/// (open loads by rate, closed loads by concurrency).
fn is_spike(phase: &Phase, next: Option<&Phase>) -> bool {
    if phase.stress {
        return true;
    }
    let Some(next) = next else {
        return false;
    };
    match (level(&phase.load), level(&next.load)) {
        (Some((open_a, a)), Some((open_b, b))) => open_a == open_b && a > b * 1.5,
        _ => false,
    }
}

/// (open?, level): a rate for open loads, a concurrency for closed ones.
fn level(load: &Load) -> Option<(bool, f64)> {
    match load {
        Load::Constant { rate } | Load::Poisson { rate } => Some((true, *rate)),
        Load::Ramp { from, to } => Some((true, (from + to) / 2.0)),
        Load::Concurrency { concurrency } => Some((false, *concurrency as f64)),
        Load::Users { users, .. } => Some((false, *users as f64)),
        Load::Sweep { levels, .. } => levels.iter().max().map(|c| (false, *c as f64)),
        Load::Burst { .. } | Load::Replay { .. } => load.mean_rate().map(|rate| (true, rate)),
        Load::Pause => None,
    }
}

fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    (!values.is_empty()).then(|| values[values.len() / 2])
}

fn measure(
    baseline: &PhaseReport,
    spike: &PhaseReport,
    stress_end_s: f64,
    intervals: &[IntervalSummary],
    queue: Option<&BTreeMap<i64, f64>>,
) -> Option<Recovery> {
    let complete = || intervals.iter().filter(|i| i.duration_s >= 0.99);
    let base = median(
        complete()
            .filter(|i| i.phase == baseline.name)
            .filter_map(|i| i.latency_p95_ms)
            .collect(),
    )?;
    let limit_ms = (base * (1.0 + BAND)).max(base + MIN_BAND_MS);
    let after: Vec<&IntervalSummary> = complete().filter(|i| i.t > stress_end_s).collect();
    let back = |i: &IntervalSummary| {
        let latency = i.latency_p95_ms.is_none_or(|p| p <= limit_ms) && i.ok > 0;
        let queue_empty =
            queue.is_none_or(|q| q.get(&(i.t.round() as i64)).is_none_or(|v| *v < 0.5));
        latency && queue_empty
    };
    let recovered_at_s = after
        .windows(STEADY_SECONDS)
        .find(|w| w.iter().all(|i| back(i)))
        .map(|w| w[0].t);
    Some(Recovery {
        after_phase: spike.name.clone(),
        baseline_phase: baseline.name.clone(),
        baseline_p95_ms: base,
        limit_ms,
        stress_end_s,
        recovered_at_s,
        recovery_s: recovered_at_s.map(|t| (t - stress_end_s).max(0.0)),
        queue_checked: queue.is_some(),
        peak_p95_ms: after
            .iter()
            .filter_map(|i| i.latency_p95_ms)
            .reduce(f64::max),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::StatsBlock;
    use crate::report::test_report::second;

    fn phase(name: &str, start_s: f64, end_s: f64) -> PhaseReport {
        PhaseReport {
            name: name.into(),
            load: String::new(),
            planned_duration_s: end_s - start_s,
            planned_requests: None,
            tasks: Vec::new(),
            start_s,
            end_s,
            max_tokens: 32,
            stats: StatsBlock::default(),
            steps: Vec::new(),
            models: Vec::new(),
            peak_concurrency: 0,
            sampled: Vec::new(),
        }
    }

    /// 10 s at 100 ms, a spike to 900 ms for 10 s, then back after `tail`
    /// slow seconds.
    fn run(tail: usize) -> Vec<IntervalSummary> {
        let mut seconds = Vec::new();
        for t in 1..=10 {
            seconds.push(second(f64::from(t), "baseline", 100.0 + f64::from(t % 3)));
        }
        for t in 11..=20 {
            seconds.push(second(f64::from(t), "spike", 900.0));
        }
        for (i, t) in (21..=40).enumerate() {
            let p95 = if i < tail { 600.0 } else { 105.0 };
            seconds.push(second(f64::from(t), "recovery", p95));
        }
        seconds
    }

    #[test]
    fn recovery_is_the_time_from_the_spikes_end_to_three_good_seconds() {
        let phases = [phase("baseline", 0.0, 10.0), phase("spike", 10.0, 20.0)];
        let r = measure(&phases[0], &phases[1], 20.0, &run(4), None).unwrap();
        assert_eq!(r.baseline_p95_ms, 101.0);
        assert!((r.limit_ms - 121.2).abs() < 1e-9, "{}", r.limit_ms);
        assert_eq!((r.recovered_at_s, r.recovery_s), (Some(25.0), Some(5.0)));
        assert_eq!(r.peak_p95_ms, Some(600.0));
    }

    #[test]
    fn a_queue_that_has_not_drained_is_not_recovered() {
        let phases = [phase("baseline", 0.0, 10.0), phase("spike", 10.0, 20.0)];
        let queue: BTreeMap<i64, f64> = (21..=40)
            .map(|t| (t, if t < 30 { 12.0 } else { 0.0 }))
            .collect();
        let r = measure(&phases[0], &phases[1], 20.0, &run(0), Some(&queue)).unwrap();
        assert_eq!(
            r.recovery_s,
            Some(10.0),
            "back at 30 s, when the queue emptied"
        );
        assert!(r.queue_checked);
    }

    #[test]
    fn a_run_that_never_recovers_says_so() {
        let phases = [phase("baseline", 0.0, 10.0), phase("spike", 10.0, 20.0)];
        let r = measure(&phases[0], &phases[1], 20.0, &run(30), None).unwrap();
        assert_eq!((r.recovered_at_s, r.recovery_s), (None, None));
    }

    #[test]
    fn a_ramp_down_ends_the_stress_when_it_is_back_at_the_baselines_rate() {
        use crate::plan::{Overrides, resolve_source};
        let plan = resolve_source(
            "t.toml",
            "[[phases]]\nname='sustained'\nduration='60s'\nload={type='constant',rate=100}\n\
             [[phases]]\nname='peak'\nduration='60s'\nload={type='constant',rate=150}\n\
             [[phases]]\nname='down'\nduration='140s'\nload={type='ramp',from=150,to=10}\n",
            None,
            &Overrides::default(),
        )
        .unwrap();
        let phases = [
            phase("sustained", 0.0, 60.0),
            phase("peak", 60.0, 120.0),
            phase("down", 120.0, 260.0),
        ];
        // 150 → 10 over 140 s is back at 100 req/s 50 s in.
        assert_eq!(stress_end(&plan, &phases, 1), 170.0);
        assert_eq!(stress_end(&plan, &phases, 2), 260.0, "no phase after");
    }

    #[test]
    fn spikes_are_marked_or_heavier_than_what_follows() {
        let p = |load: Load, stress: bool| Phase {
            name: "p".into(),
            duration: std::time::Duration::from_secs(10),
            tasks: Vec::new(),
            requests: None,
            load,
            max_tokens: 32,
            thresholds: Vec::new(),
            stress,
            drill: None,
        };
        let c = |n| Load::Concurrency { concurrency: n };
        let r = |rate| Load::Constant { rate };
        assert!(is_spike(&p(c(20), false), Some(&p(c(2), false))));
        assert!(!is_spike(&p(c(2), false), Some(&p(c(20), false))));
        assert!(is_spike(
            &p(r(150.0), false),
            Some(&p(
                Load::Ramp {
                    from: 150.0,
                    to: 10.0
                },
                false
            ))
        ));
        assert!(
            !is_spike(&p(r(150.0), false), Some(&p(c(2), false))),
            "open against closed"
        );
        assert!(
            is_spike(&p(r(10.0), true), Some(&p(r(10.0), false))),
            "marked"
        );
        assert!(!is_spike(&p(c(20), false), None));
    }
}
