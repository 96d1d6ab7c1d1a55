//! Findings (examples/000's "Identified Optimizations" and "Risk
//! Assessment"): rules over the finished report's measurements. A rule
//! fires only on numbers it can cite, and its finding carries them; a rule
//! whose data was not measured stays silent. Each rule is a function of
//! the report, so adding one is one function and one entry in a list.

use crate::report::{Degradation, Drift, Finding, Report, RulesChecked};

/// A rule: its stable name and the finding it makes of a report, if it
/// fires (the finding carries the same name).
type Rule = (&'static str, fn(&Report) -> Option<Finding>);

/// Recovery slower than this is a risk (examples/000: "< 30 seconds").
const SLOW_RECOVERY_S: f64 = 30.0;
/// KV usage at or above this share is saturated.
const KV_SATURATED: f64 = 0.9;
/// A phase failing more than this share of its requests is a risk.
const PHASE_ERRORS: f64 = 0.01;
/// The batch still had room below this share of its peak.
const BATCH_ROOM: f64 = 0.9;
/// The slowest requests' queue share above which queueing dominates.
const QUEUE_DOMINATES: f64 = 0.5;
/// SLO attainment below this is an optimisation target.
const SLO_TARGET: f64 = 0.99;

const RISKS: &[Rule] = &[
    ("kv_cache_saturated", kv_cache_saturated),
    ("throughput_knee", throughput_knee),
    ("catastrophic_degradation", catastrophic_degradation),
    ("slow_recovery", slow_recovery),
    ("latency_driver", latency_driver),
    ("errors_under_load", errors_under_load),
    ("memory_growth", memory_growth),
    ("latency_degrading", latency_degrading),
    ("alert_false_positives", alert_false_positives),
    ("backend_skew", backend_skew),
    ("model_split_off_weights", model_split_off_weights),
];

const OPTIMIZATIONS: &[Rule] = &[
    ("raise_batch_limit", raise_batch_limit),
    ("queue_with_batch_room", queue_with_batch_room),
    ("queue_dominates_latency", queue_dominates_latency),
    ("batch_beyond_optimal", batch_beyond_optimal),
    ("client_timeouts", client_timeouts),
    ("slo_misses", slo_misses),
];

/// (optimizations, risks) the report's measurements support.
pub fn findings(report: &Report) -> (Vec<Finding>, Vec<Finding>) {
    let run = |rules: &[Rule]| {
        rules
            .iter()
            .filter_map(|(name, rule)| {
                let mut finding = rule(report)?;
                finding.rule = (*name).to_owned();
                Some(finding)
            })
            .collect()
    };
    (run(OPTIMIZATIONS), run(RISKS))
}

/// The names of every rule [`findings`] evaluates.
pub fn rules_checked() -> RulesChecked {
    let names = |rules: &[Rule]| rules.iter().map(|(name, _)| (*name).to_owned()).collect();
    RulesChecked {
        optimizations: names(OPTIMIZATIONS),
        risks: names(RISKS),
    }
}

/// A finding; [`findings`] names it after the rule that made it.
fn finding(statement: String, evidence: Vec<String>) -> Option<Finding> {
    Some(Finding {
        rule: String::new(),
        statement,
        evidence,
    })
}

fn pct(v: f64) -> String {
    format!("{:.1} %", v * 100.0)
}

/// A sampled value's summary over the run, when it has samples.
fn sampled<'a>(r: &'a Report, name: &str) -> Option<&'a crate::report::SampledSummary> {
    r.observed
        .as_ref()?
        .value(name)
        .filter(|v| v.stats.samples > 0)
}

fn kv_cache_saturated(r: &Report) -> Option<Finding> {
    let kv = sampled(r, "kv_usage")?.stats.max?;
    if kv < KV_SATURATED {
        return None;
    }
    let mut evidence = vec![format!("KV cache usage peaked at {}", pct(kv))];
    if let Some(p) = sampled(r, "preemptions")
        .and_then(|p| p.value)
        .filter(|p| *p > 0.0)
    {
        evidence.push(format!("{p:.0} requests were preempted during the run"));
    }
    finding(
        format!(
            "The KV cache saturated (peak {}): requests wait or are preempted for cache, not for compute",
            pct(kv)
        ),
        evidence,
    )
}

fn throughput_knee(r: &Report) -> Option<Finding> {
    let s = r.explanation.saturation.iter().find(|s| s.knee.is_some())?;
    finding(
        format!(
            "Throughput stops scaling at {} {} in phase {}: more load past it buys latency, not requests",
            s.load, s.knee?, s.phase
        ),
        s.evidence.clone(),
    )
}

fn catastrophic_degradation(r: &Report) -> Option<Finding> {
    let s = r
        .explanation
        .saturation
        .iter()
        .find(|s| s.degradation == Degradation::Catastrophic)?;
    finding(
        format!(
            "Past its knee phase {} degrades catastrophically, not gracefully",
            s.phase
        ),
        s.evidence.clone(),
    )
}

fn slow_recovery(r: &Report) -> Option<Finding> {
    let rec = r
        .explanation
        .recovery
        .iter()
        .find(|x| x.recovery_s.is_none_or(|s| s > SLOW_RECOVERY_S))?;
    let evidence = vec![
        format!(
            "baseline p95 {:.0} ms in {}; back means ≤ {:.0} ms{}",
            rec.baseline_p95_ms,
            rec.baseline_phase,
            rec.limit_ms,
            if rec.queue_checked {
                " with the server queue empty"
            } else {
                ""
            }
        ),
        match rec.peak_p95_ms {
            Some(p) => format!("worst second after the spike: p95 {p:.0} ms"),
            None => "no completed request after the spike".to_owned(),
        },
    ];
    let statement = match rec.recovery_s {
        Some(s) => format!(
            "Recovery after {} took {s:.0} s, over {SLOW_RECOVERY_S:.0} s",
            rec.after_phase
        ),
        None => format!(
            "The stack did not recover after {} before the run ended",
            rec.after_phase
        ),
    };
    finding(statement, evidence)
}

fn latency_driver(r: &Report) -> Option<Finding> {
    let d = r.explanation.drivers.drivers().next()?;
    finding(
        format!(
            "Client {} follows the server's {} (ρ {:.2}, the server leading by {} s)",
            d.client, d.server, d.rho, d.lag_s
        ),
        vec![format!(
            "n {} seconds ({:.0} independent), 95 % CI {:.2}–{:.2}, p {:.1e} (each of {} tests had to beat {:.1e})",
            d.n,
            d.n_effective,
            d.ci95.low,
            d.ci95.high,
            d.p_value,
            r.explanation.drivers.tests,
            r.explanation.drivers.alpha_per_test
        )],
    )
}

fn errors_under_load(r: &Report) -> Option<Finding> {
    let p = r
        .phases
        .iter()
        .find(|p| p.stats.error_rate > PHASE_ERRORS)?;
    let kinds: Vec<String> = p
        .stats
        .errors
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    finding(
        format!(
            "{} of the requests of phase {} failed",
            pct(p.stats.error_rate),
            p.name
        ),
        vec![format!(
            "{} of {} requests: {}",
            p.stats.requests - p.stats.ok,
            p.stats.requests,
            kinds.join(", ")
        )],
    )
}

fn memory_growth(r: &Report) -> Option<Finding> {
    let m = r.explanation.memory.iter().find(|m| m.growing)?;
    let mib = 1024.0 * 1024.0;
    finding(
        format!(
            "{} grew through the run: a leak or an unbounded cache",
            m.series
        ),
        vec![format!(
            "{:.0} MiB → {:.0} MiB, +{:.1} MiB/min (p {:.1e}, {} samples)",
            m.first_bytes / mib,
            m.last_bytes / mib,
            m.slope_bytes_per_min / mib,
            m.p_value,
            m.n
        )],
    )
}

fn latency_degrading(r: &Report) -> Option<Finding> {
    let s = r
        .explanation
        .steadiness
        .iter()
        .find(|s| s.drift == Drift::Degrading)?;
    finding(
        format!(
            "{} degraded within phase {} instead of holding a plateau",
            s.series, s.phase
        ),
        vec![format!(
            "{:+.1} ms/min around a median of {:.0} ms (p {:.1e}, {} seconds)",
            s.slope_ms_per_min, s.median_ms, s.p_value, s.n
        )],
    )
}

fn alert_false_positives(r: &Report) -> Option<Finding> {
    let alerts = r.observed.as_ref()?.alerts.as_ref()?;
    let all_passed = !r.thresholds.is_empty()
        && r.thresholds
            .iter()
            .all(|t| t.status == crate::report::ThresholdStatus::Pass);
    let fired: Vec<&str> = alerts
        .fired
        .iter()
        .filter(|a| a.began_during_run)
        .map(|a| a.name.as_str())
        .collect();
    if !all_passed || fired.is_empty() {
        return None;
    }
    finding(
        format!(
            "{} alerts fired while every threshold passed: they page on a healthy stack",
            fired.len()
        ),
        vec![format!("fired during the run: {}", fired.join(", "))],
    )
}

/// A router that loads one engine of a group more than chance allows
/// (examples/004: "one backend took 80 % of traffic").
fn backend_skew(r: &Report) -> Option<Finding> {
    let check = r.routing.balance.iter().find(|b| !b.pass)?;
    let mut evidence: Vec<String> = r
        .routing
        .backends
        .iter()
        .filter(|b| b.status != crate::report::BackendStatus::Ok)
        .filter_map(|b| {
            Some(format!(
                "{} finished {:.0} requests, {} of its group (even share {})",
                b.url,
                b.requests?,
                pct(b.share?),
                pct(1.0 / check.backends as f64)
            ))
        })
        .collect();
    evidence.push(format!(
        "{:.0} requests over {} backends: χ² {:.1}, p {:.1e}, largest departure {} of the even share",
        check.requests,
        check.backends,
        check.chi2,
        check.p_value,
        pct(check.max_departure)
    ));
    finding(
        format!(
            "The router does not balance {} backends: one engine saturates while another idles",
            check.backends
        ),
        evidence,
    )
}

/// Requests reaching each model in proportions the plan did not ask for.
fn model_split_off_weights(r: &Report) -> Option<Finding> {
    let split = r.routing.model_split.as_ref().filter(|s| !s.pass)?;
    let total: f64 = split.models.iter().map(|(_, _, n)| n).sum();
    let mut evidence: Vec<String> = split
        .models
        .iter()
        .map(|(model, weight, n)| {
            format!(
                "{model}: {:.0} requests, {} of the total (plan weight {})",
                n,
                pct(n / total.max(1.0)),
                pct(*weight)
            )
        })
        .collect();
    evidence.push(format!(
        "χ² {:.1}, p {:.1e}, largest departure {}",
        split.chi2,
        split.p_value,
        pct(split.max_departure)
    ));
    finding(
        "The server saw a model split other than the plan's weights: requests are routed to the wrong model, or fail before they are counted".to_owned(),
        evidence,
    )
}

/// (queue depth, running) at the seconds both were sampled.
fn queue_and_running(r: &Report) -> Option<(Vec<(f64, f64)>, f64)> {
    let series = |name: &str| r.series.iter().find(|s| s.name == name);
    let (queue, running) = (series("queue_depth")?, series("running")?);
    let peak = running.max()?;
    let running_at: std::collections::BTreeMap<i64, f64> = running
        .samples
        .iter()
        .map(|s| (s.t.round() as i64, s.value))
        .collect();
    let pairs = queue
        .samples
        .iter()
        .filter_map(|q| Some((q.value, *running_at.get(&(q.t.round() as i64))?)))
        .collect();
    Some((pairs, peak))
}

/// KV usage below this leaves room for a larger batch.
const KV_ROOM: f64 = 0.8;

/// Requests waited because the batch was full, with the KV cache (and the
/// GPU) still having room: the batch limit, not the hardware, held them.
fn raise_batch_limit(r: &Report) -> Option<Finding> {
    let (pairs, peak) = queue_and_running(r)?;
    let waited: Vec<f64> = pairs
        .iter()
        .filter(|(queue, run)| *queue >= 1.0 && *run >= BATCH_ROOM * peak)
        .map(|(queue, _)| *queue)
        .collect();
    let kv = sampled(r, "kv_usage").and_then(|k| k.stats.max);
    if waited.len() < 3 || kv.is_none_or(|k| k >= KV_ROOM) {
        return None;
    }
    let mut evidence = vec![
        format!(
            "{} seconds with up to {:.0} requests waiting while {peak:.0} ran (the batch was full)",
            waited.len(),
            waited.iter().copied().fold(0.0, f64::max)
        ),
        format!("KV cache usage peaked at {}", pct(kv.unwrap_or(0.0))),
    ];
    if let Some(gpu) = sampled(r, "gpu_util").and_then(|g| g.stats.max) {
        evidence.push(format!("GPU utilisation peaked at {}", pct(gpu)));
    }
    finding(
        format!(
            "Requests queued for a batch slot while the KV cache had room: raise max_num_seqs above {peak:.0} (or add a replica)"
        ),
        evidence,
    )
}

/// Seconds where requests waited while the batch ran below its peak.
fn queue_with_batch_room(r: &Report) -> Option<Finding> {
    let series = |name: &str| r.series.iter().find(|s| s.name == name);
    let (queue, running) = (series("queue_depth")?, series("running")?);
    let peak = running.max()?;
    let running_at: std::collections::BTreeMap<i64, f64> = running
        .samples
        .iter()
        .map(|s| (s.t.round() as i64, s.value))
        .collect();
    let waited: Vec<(f64, f64)> = queue
        .samples
        .iter()
        .filter(|q| q.value >= 1.0)
        .filter_map(|q| {
            let run = *running_at.get(&(q.t.round() as i64))?;
            (run < BATCH_ROOM * peak).then_some((q.value, run))
        })
        .collect();
    if waited.len() < 3 {
        return None;
    }
    let queue_max = waited.iter().map(|w| w.0).fold(0.0, f64::max);
    let running_avg = waited.iter().map(|w| w.1).sum::<f64>() / waited.len() as f64;
    finding(
        "Requests waited while the batch had room: the scheduler was held back by KV cache or batched-token limits, not by max_num_seqs".to_owned(),
        vec![format!(
            "{} seconds with up to {queue_max:.0} waiting while {running_avg:.1} ran on average, against a peak of {peak:.0} running",
            waited.len()
        )],
    )
}

fn queue_dominates_latency(r: &Report) -> Option<Finding> {
    let slowest = r.traces.as_ref()?.slowest.as_ref()?;
    let queue = slowest.parts.iter().find(|p| p.name == "queue")?;
    if queue.share < QUEUE_DOMINATES {
        return None;
    }
    finding(
        format!(
            "The slowest requests spent {} of their latency queued: more replicas or a larger batch would serve them sooner",
            pct(queue.share)
        ),
        vec![format!(
            "{} slowest traced requests (latency ≥ {:.0} ms): queue {:.0} ms of {:.0} ms on average",
            slowest.requests, slowest.latency_from_ms, queue.mean_ms, slowest.mean_latency_ms
        )],
    )
}

fn batch_beyond_optimal(r: &Report) -> Option<Finding> {
    let best = r.explanation.optimal_batch.as_ref()?;
    let p95 = sampled(r, "running")?.stats.p95?;
    if p95 <= best.high as f64 + 0.5 {
        return None;
    }
    finding(
        format!(
            "The batch often ran above {} requests, past the range that gave near-peak throughput: cap it near {}–{}",
            best.high, best.low, best.high
        ),
        vec![
            format!(
                "{}–{} running kept token throughput within 95 % of its {:.0} tok/s peak{}",
                best.low,
                best.high,
                best.peak_tokens_per_s,
                best.p95_bound_ms
                    .map(|b| format!(" with p95 ≤ {b:.0} ms"))
                    .unwrap_or_default()
            ),
            format!("95 % of seconds ran at most {p95:.0} requests"),
        ],
    )
}

fn client_timeouts(r: &Report) -> Option<Finding> {
    let timeouts = *r.overall.errors.get("timeout")?;
    if timeouts == 0 {
        return None;
    }
    finding(
        format!(
            "{timeouts} requests timed out at the client: raise capacity or the client's timeout, or shed load earlier"
        ),
        vec![format!("timeout rate {}", pct(r.overall.timeout_rate))],
    )
}

fn slo_misses(r: &Report) -> Option<Finding> {
    let attained = r.overall.slo_attainment?;
    if attained >= SLO_TARGET {
        return None;
    }
    finding(
        format!(
            "Only {} of requests met every per-request SLO",
            pct(attained)
        ),
        vec![format!(
            "{} of {} requests met it; goodput {:.1} req/s",
            r.overall.slo_met,
            r.overall.slo_checked,
            r.overall.goodput_per_s.unwrap_or(0.0)
        )],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::test_report::report_with;
    use crate::report::{
        BackendRow, BackendStatus, BalanceCheck, DriverPair, Interval, MemoryTrend, ObservedReport,
        Recovery, SampledSummary, Saturation, SplitCheck, Steadiness,
    };
    use crate::stats::{Aggregate, Series, SeriesStats};

    fn report() -> Report {
        report_with(Vec::new())
    }

    fn fired(r: &Report, rule: &str) -> bool {
        let (o, k) = findings(r);
        o.iter().chain(&k).any(|f| f.rule == rule)
    }

    fn summary(name: &str, max: f64, value: f64) -> SampledSummary {
        SampledSummary {
            name: name.into(),
            unit: "ratio".into(),
            source: "scrape".into(),
            aggregate: Aggregate::Max,
            value: Some(value),
            stats: SeriesStats {
                max: Some(max),
                min: Some(0.0),
                avg: Some(max / 2.0),
                p95: Some(max),
                first: Some(0.0),
                last: Some(value),
                samples: 10,
            },
            gaps: 0,
        }
    }

    fn with_values(values: Vec<SampledSummary>) -> Report {
        Report {
            observed: Some(ObservedReport {
                values,
                ..ObservedReport::default()
            }),
            ..report()
        }
    }

    #[test]
    fn nothing_measured_nothing_found() {
        assert_eq!(findings(&report()), (Vec::new(), Vec::new()));
    }

    #[test]
    fn a_saturated_kv_cache_is_a_risk() {
        let r = with_values(vec![
            summary("kv_usage", 0.97, 0.5),
            summary("preemptions", 312.0, 312.0),
        ]);
        let (_, risks) = findings(&r);
        assert_eq!(risks[0].rule, "kv_cache_saturated");
        assert!(risks[0].statement.contains("97.0 %") && risks[0].evidence[1].contains("312"));
        assert!(!fired(
            &with_values(vec![summary("kv_usage", 0.6, 0.5)]),
            "kv_cache_saturated"
        ));
    }

    fn saturation(degradation: Degradation, knee: Option<f64>) -> Saturation {
        Saturation {
            phase: "long".into(),
            load: "concurrency".into(),
            points: Vec::new(),
            knee,
            max_within_slo: None,
            degradation,
            latency_exponent: None,
            fit_r_squared: None,
            evidence: vec!["knee at concurrency 16".into()],
        }
    }

    #[test]
    fn a_knee_and_catastrophic_degradation_are_risks() {
        let mut r = report();
        r.explanation.saturation = vec![saturation(Degradation::Graceful, Some(16.0))];
        assert!(fired(&r, "throughput_knee") && !fired(&r, "catastrophic_degradation"));
        r.explanation.saturation = vec![saturation(Degradation::Catastrophic, Some(16.0))];
        assert!(fired(&r, "catastrophic_degradation"));
        r.explanation.saturation = vec![saturation(Degradation::NotReached, None)];
        assert!(!fired(&r, "throughput_knee"));
    }

    fn recovery(seconds: Option<f64>) -> Recovery {
        Recovery {
            after_phase: "spike".into(),
            baseline_phase: "baseline".into(),
            baseline_p95_ms: 100.0,
            limit_ms: 120.0,
            stress_end_s: 60.0,
            recovered_at_s: seconds.map(|s| 60.0 + s),
            recovery_s: seconds,
            queue_checked: true,
            peak_p95_ms: Some(900.0),
        }
    }

    #[test]
    fn slow_or_no_recovery_is_a_risk() {
        let mut r = report();
        r.explanation.recovery = vec![recovery(Some(4.0))];
        assert!(!fired(&r, "slow_recovery"));
        r.explanation.recovery = vec![recovery(Some(45.0))];
        assert!(fired(&r, "slow_recovery"));
        r.explanation.recovery = vec![recovery(None)];
        let (_, risks) = findings(&r);
        assert!(risks[0].statement.contains("did not recover"));
    }

    fn pair(driver: bool) -> DriverPair {
        DriverPair {
            client: "latency p95".into(),
            server: "queue_depth".into(),
            rho: 0.91,
            lag_s: 1,
            n: 120,
            n_effective: 60.0,
            ci95: Interval {
                low: 0.85,
                high: 0.95,
            },
            p_value: 1e-9,
            driver,
        }
    }

    #[test]
    fn a_significant_driver_is_a_risk_and_an_insignificant_one_is_not() {
        let mut r = report();
        r.explanation.drivers.pairs = vec![pair(false)];
        assert!(!fired(&r, "latency_driver"));
        r.explanation.drivers.pairs = vec![pair(true)];
        let (_, risks) = findings(&r);
        assert!(risks[0].statement.contains("queue_depth (ρ 0.91"));
    }

    #[test]
    fn memory_growth_and_degrading_latency_are_risks() {
        let mut r = report();
        let mib = 1024.0 * 1024.0;
        let trend = |growing| MemoryTrend {
            series: "target_rss".into(),
            slope_bytes_per_min: 120.0 * mib,
            p_value: 1e-6,
            n: 120,
            first_bytes: 500.0 * mib,
            last_bytes: 740.0 * mib,
            growing,
        };
        r.explanation.memory = vec![trend(false)];
        assert!(!fired(&r, "memory_growth"));
        r.explanation.memory = vec![trend(true)];
        assert!(fired(&r, "memory_growth"));
        let steady = |drift| Steadiness {
            phase: "sustained".into(),
            series: "latency p95".into(),
            slope_ms_per_min: 120.0,
            median_ms: 500.0,
            p_value: 1e-6,
            n: 60,
            drift,
        };
        r.explanation.steadiness = vec![steady(Drift::Stable)];
        assert!(!fired(&r, "latency_degrading"));
        r.explanation.steadiness = vec![steady(Drift::Degrading)];
        assert!(fired(&r, "latency_degrading"));
    }

    #[test]
    fn requests_waiting_while_the_batch_has_room_is_an_optimization() {
        let mut r = report();
        let (mut queue, mut running) = (
            Series::new("queue_depth", "count"),
            Series::new("running", "count"),
        );
        for t in 1..=10 {
            let t = f64::from(t);
            running.push(t, if t <= 2.0 { 16.0 } else { 6.0 });
            queue.push(t, if t > 5.0 { 8.0 } else { 0.0 });
        }
        r.series = vec![queue.clone(), running.clone()];
        let (opts, _) = findings(&r);
        assert_eq!(opts[0].rule, "queue_with_batch_room");
        assert!(opts[0].evidence[0].starts_with("5 seconds with up to 8 waiting"));
        // Waiting only while the batch is full is as it should be.
        let full: Series = Series {
            samples: running
                .samples
                .iter()
                .map(|s| crate::stats::Sample { value: 16.0, ..*s })
                .collect(),
            ..running
        };
        r.series = vec![queue, full];
        assert!(!fired(&r, "queue_with_batch_room"));
    }

    #[test]
    fn a_full_batch_with_kv_room_means_raise_the_batch_limit() {
        let mut r = with_values(vec![summary("kv_usage", 0.36, 0.2)]);
        let (mut queue, mut running) = (
            Series::new("queue_depth", "count"),
            Series::new("running", "count"),
        );
        for t in 1..=10 {
            let t = f64::from(t);
            running.push(t, 128.0);
            queue.push(t, if t > 6.0 { 30.0 } else { 0.0 });
        }
        r.series = vec![queue, running];
        let (opts, _) = findings(&r);
        assert_eq!(opts[0].rule, "raise_batch_limit", "{opts:?}");
        assert!(opts[0].statement.contains("above 128") && opts[0].evidence[1].contains("36.0 %"));
        // With the KV cache full, a larger batch would not fit.
        r.observed = with_values(vec![summary("kv_usage", 0.95, 0.9)]).observed;
        assert!(!fired(&r, "raise_batch_limit"));
    }

    fn backend(url: &str, requests: f64, share: f64, status: BackendStatus) -> BackendRow {
        BackendRow {
            share: Some(share),
            status,
            ..crate::report::test_report::backend_row(url, &["m"], requests)
        }
    }

    fn balance(pass: bool) -> BalanceCheck {
        BalanceCheck {
            models: vec!["m".into()],
            backends: 2,
            requests: 1000.0,
            chi2: if pass { 0.4 } else { 360.0 },
            p_value: if pass { 0.53 } else { 1e-80 },
            max_departure: if pass { 0.02 } else { 0.6 },
            pass,
            detail: String::new(),
        }
    }

    #[test]
    fn a_skewed_router_is_a_risk_and_an_even_one_is_not() {
        let mut r = report();
        r.routing.backends = vec![
            backend("http://engine-0:8000", 800.0, 0.8, BackendStatus::Skewed),
            backend("http://engine-1:8000", 200.0, 0.2, BackendStatus::Skewed),
        ];
        r.routing.balance = vec![balance(false)];
        let (_, risks) = findings(&r);
        let skew = risks.iter().find(|f| f.rule == "backend_skew").unwrap();
        assert!(
            skew.evidence[0].contains("800 requests, 80.0 %"),
            "{skew:?}"
        );
        assert!(skew.evidence[2].contains("χ² 360.0"), "{skew:?}");
        r.routing.balance = vec![balance(true)];
        assert!(!fired(&r, "backend_skew"));
    }

    #[test]
    fn a_model_split_off_the_weights_is_a_risk() {
        let mut r = report();
        let split = |pass: bool| SplitCheck {
            models: vec![("a".into(), 0.7, 300.0), ("b".into(), 0.3, 700.0)],
            chi2: 760.0,
            p_value: 1e-160,
            max_departure: 1.33,
            pass,
            detail: String::new(),
        };
        r.routing.model_split = Some(split(true));
        assert!(!fired(&r, "model_split_off_weights"));
        r.routing.model_split = Some(split(false));
        let (_, risks) = findings(&r);
        let f = &risks[0];
        assert_eq!(f.rule, "model_split_off_weights");
        assert!(
            f.evidence[0].contains("a: 300 requests, 30.0 % of the total (plan weight 70.0 %)"),
            "{f:?}"
        );
    }

    #[test]
    fn timeouts_and_slo_misses_are_optimizations() {
        let mut r = report();
        r.overall.errors.insert("timeout".into(), 12);
        r.overall.timeout_rate = 0.012;
        assert!(fired(&r, "client_timeouts"));
        r.overall.slo_attainment = Some(0.999);
        assert!(!fired(&r, "slo_misses"));
        r.overall.slo_attainment = Some(0.9);
        assert!(fired(&r, "slo_misses"));
        assert!(!fired(&report(), "client_timeouts"));
    }
}
