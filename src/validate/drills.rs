//! Fault drills judged from Prometheus's own alert state: for each phase
//! that injected a fault, did every alert it names reach `firing` within
//! its bound of the fault's start, and when did it resolve; and which
//! alerts fired where no drill expected them (false positives).
//!
//! The bound of an alert is `for` + 2 × its group's evaluation interval +
//! 2 × the scrape interval: one scrape to see the fault and one more for a
//! rate to move, one evaluation of the recording rule the alert reads and
//! one of the alert itself — plus one step of the `ALERTS` range query the
//! state is read at, since a firing instant is only known to that step.
//! An alert already firing when its drill began proves nothing and fails
//! the drill.

use std::collections::HashMap;

use serde_json::Value;

use super::prom::Prom;
use crate::report::{DrillResult, DrillsCheck, ExpectedAlert, UnexpectedAlert};

/// A drill as the run executed it (times on the run clock, seconds).
#[derive(Clone, Debug, PartialEq)]
pub struct DrillSpec {
    pub phase: String,
    pub fault: String,
    pub start_s: f64,
    pub end_s: f64,
    pub expect: Vec<String>,
    pub injection_error: Option<String>,
}

/// The run the drills were part of.
#[derive(Clone, Debug, PartialEq)]
pub struct RunSpan {
    /// The run clock's zero, Unix seconds.
    pub start_unix: f64,
    /// (phase, start, end) on the run clock.
    pub phases: Vec<(String, f64, f64)>,
    /// Alert state is known until then (run clock).
    pub observed_until_s: f64,
}

/// One alert series: its name, labels and the run-clock instants it was
/// firing at (Prometheus evaluates at a step; gaps split intervals).
#[derive(Clone, Debug, PartialEq)]
pub struct AlertSeries {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub firing: Vec<f64>,
}

/// What bounds an alert's delay.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Timing {
    /// Per alert: its `for` and its group's evaluation interval, seconds.
    pub rules: HashMap<String, (f64, f64)>,
    pub scrape_s: f64,
    /// The step the alert state was read at.
    pub step_s: f64,
}

impl Timing {
    fn bound_s(&self, alert: &str) -> Option<f64> {
        let (for_s, eval_s) = self.rules.get(alert)?;
        Some(for_s + 2.0 * eval_s + 2.0 * self.scrape_s + self.step_s)
    }
}

/// Reads the alert state and the rules from Prometheus and judges.
pub async fn check(
    prom: &Prom,
    drills: &[DrillSpec],
    run: &RunSpan,
) -> Result<DrillsCheck, String> {
    let groups = prom.rule_groups().await?;
    let scrape_s = prom
        .scrape_interval_s()
        .await
        .unwrap_or(super::DEFAULT_SCRAPE_S);
    let rules = alert_timing(&groups);
    let step_s = rules
        .values()
        .map(|(_, eval)| *eval)
        .fold(f64::INFINITY, f64::min)
        .clamp(1.0, 60.0);
    let window = (run.start_unix, run.start_unix + run.observed_until_s);
    let series = prom.firing(window, step_s).await?;
    let alerts = series
        .into_iter()
        .map(|(labels, times)| AlertSeries {
            name: labels.get("alertname").cloned().unwrap_or_default(),
            labels: sorted_labels(&labels),
            firing: times.iter().map(|t| t - run.start_unix).collect(),
        })
        .collect::<Vec<_>>();
    let timing = Timing {
        rules,
        scrape_s,
        step_s,
    };
    Ok(judge(drills, run, &alerts, &timing))
}

fn sorted_labels(labels: &HashMap<String, String>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = labels
        .iter()
        .filter(|(k, _)| *k != "__name__" && *k != "alertstate")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    out.sort();
    out
}

/// Per alerting rule: (`for`, its group's interval), seconds.
fn alert_timing(groups: &[Value]) -> HashMap<String, (f64, f64)> {
    let mut out = HashMap::new();
    for g in groups {
        let eval = g.get("interval").and_then(Value::as_f64).unwrap_or(60.0);
        for r in g
            .get("rules")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if r.get("type").and_then(Value::as_str) != Some("alerting") {
                continue;
            }
            let name = r
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            let for_s = r.get("duration").and_then(Value::as_f64).unwrap_or(0.0);
            out.insert(name, (for_s, eval));
        }
    }
    out
}

/// Firing intervals `(first, last)` of one series.
fn intervals(firing: &[f64], step_s: f64) -> Vec<(f64, f64)> {
    let mut out: Vec<(f64, f64)> = Vec::new();
    for &t in firing {
        match out.last_mut() {
            Some((_, last)) if t - *last <= 1.5 * step_s => *last = t,
            _ => out.push((t, t)),
        }
    }
    out
}

/// The judgement, pure.
pub fn judge(
    drills: &[DrillSpec],
    run: &RunSpan,
    alerts: &[AlertSeries],
    timing: &Timing,
) -> DrillsCheck {
    let results: Vec<DrillResult> = drills
        .iter()
        .map(|d| drill_result(d, run, alerts, timing))
        .collect();
    let expected = results.iter().map(|d| d.alerts.len()).sum();
    let expected_fired = results
        .iter()
        .flat_map(|d| &d.alerts)
        .filter(|a| a.pass)
        .count();
    DrillsCheck {
        unexpected: unexpected(drills, run, alerts, timing),
        drills: results,
        expected_fired,
        expected,
    }
}

fn drill_result(
    d: &DrillSpec,
    run: &RunSpan,
    alerts: &[AlertSeries],
    timing: &Timing,
) -> DrillResult {
    let expected = d
        .expect
        .iter()
        .map(|name| expected_alert(d, name, run, alerts, timing))
        .collect();
    DrillResult {
        phase: d.phase.clone(),
        fault: d.fault.clone(),
        start_s: d.start_s,
        end_s: d.end_s,
        injection_error: d.injection_error.clone(),
        alerts: expected,
    }
}

fn expected_alert(
    d: &DrillSpec,
    name: &str,
    run: &RunSpan,
    alerts: &[AlertSeries],
    timing: &Timing,
) -> ExpectedAlert {
    let bound = timing.bound_s(name);
    let spans: Vec<(f64, f64)> = alerts
        .iter()
        .filter(|a| a.name == name)
        .flat_map(|a| intervals(&a.firing, timing.step_s))
        .collect();
    let already = spans
        .iter()
        .any(|(first, last)| *first < d.start_s && *last >= d.start_s);
    let first = spans
        .iter()
        .filter(|(first, _)| *first >= d.start_s)
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .copied();
    let delay = first.map(|(t, _)| t - d.start_s);
    let still_firing = |last: f64| last >= run.observed_until_s - 1.5 * timing.step_s;
    let resolved_after = first
        .filter(|(_, last)| !still_firing(*last))
        .map(|(_, last)| (last + timing.step_s - d.end_s).max(0.0));
    let (pass, detail) = match (&d.injection_error, bound, delay) {
        (Some(e), _, _) => (false, format!("the fault was not injected: {e}")),
        (None, None, _) => (
            false,
            format!("Prometheus has no alerting rule named {name}"),
        ),
        _ if already => (
            false,
            "already firing before the fault began: the drill proves nothing".to_owned(),
        ),
        (None, Some(b), None) => (
            false,
            format!("never fired (bound {b:.0} s after the fault began)"),
        ),
        (None, Some(b), Some(t)) if t > b => (
            false,
            format!("fired {t:.1} s after the fault began, past its bound of {b:.0} s"),
        ),
        (None, Some(b), Some(t)) => (
            true,
            format!("fired {t:.1} s after the fault began, within {b:.0} s"),
        ),
    };
    ExpectedAlert {
        name: name.to_owned(),
        delay_s: delay,
        bound_s: bound,
        resolved_after_s: resolved_after,
        pass,
        detail,
    }
}

/// Alerts that began firing during the run outside every drill that
/// expects them (a drill's window runs until its bound past its end, so a
/// slow alert of its own is not counted twice).
fn unexpected(
    drills: &[DrillSpec],
    run: &RunSpan,
    alerts: &[AlertSeries],
    timing: &Timing,
) -> Vec<UnexpectedAlert> {
    let mut out = Vec::new();
    for a in alerts {
        for (first, _) in intervals(&a.firing, timing.step_s) {
            if first < timing.step_s {
                // Firing when the run began: not the run's doing.
                continue;
            }
            let grace = timing.bound_s(&a.name).unwrap_or(0.0);
            let expected = drills.iter().any(|d| {
                d.expect.contains(&a.name) && first >= d.start_s && first <= d.end_s + grace
            });
            if expected {
                continue;
            }
            let phase = run
                .phases
                .iter()
                .find(|(_, start, end)| first >= *start && first < *end)
                .map_or_else(|| "after the load".to_owned(), |(name, _, _)| name.clone());
            out.push(UnexpectedAlert {
                name: a.name.clone(),
                phase,
                at_s: first,
                labels: a.labels.clone(),
            });
        }
    }
    out.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run() -> RunSpan {
        RunSpan {
            start_unix: 1000.0,
            phases: vec![
                ("clean".into(), 0.0, 20.0),
                ("flood".into(), 20.0, 40.0),
                ("after".into(), 40.0, 60.0),
            ],
            observed_until_s: 70.0,
        }
    }

    fn drill() -> DrillSpec {
        DrillSpec {
            phase: "flood".into(),
            fault: "queue_flood".into(),
            start_s: 20.0,
            end_s: 40.0,
            expect: vec!["QueueBacklog".into()],
            injection_error: None,
        }
    }

    fn timing() -> Timing {
        Timing {
            rules: HashMap::from([
                ("QueueBacklog".into(), (2.0, 1.0)),
                ("Other".into(), (0.0, 1.0)),
            ]),
            scrape_s: 1.0,
            step_s: 1.0,
        }
    }

    fn series(name: &str, from: u32, to: u32) -> AlertSeries {
        AlertSeries {
            name: name.into(),
            labels: vec![("alertname".into(), name.into())],
            firing: (from..=to).map(f64::from).collect(),
        }
    }

    #[test]
    fn an_alert_within_its_bound_passes_with_its_delay_and_resolution() {
        let check = judge(
            &[drill()],
            &run(),
            &[series("QueueBacklog", 25, 44)],
            &timing(),
        );
        let a = &check.drills[0].alerts[0];
        assert!(a.pass, "{a:?}");
        assert_eq!(a.delay_s, Some(5.0));
        // for 2 s + 2 × 1 s evaluation + 2 × 1 s scrape + the 1 s step.
        assert_eq!(a.bound_s, Some(7.0));
        assert_eq!(a.resolved_after_s, Some(5.0));
        assert_eq!((check.expected_fired, check.expected), (1, 1));
        assert!(check.unexpected.is_empty());
    }

    #[test]
    fn late_never_and_already_firing_alerts_fail() {
        let late = judge(
            &[drill()],
            &run(),
            &[series("QueueBacklog", 28, 50)],
            &timing(),
        );
        assert!(!late.drills[0].alerts[0].pass);
        assert!(late.drills[0].alerts[0].detail.contains("past its bound"));
        let never = judge(&[drill()], &run(), &[], &timing());
        assert_eq!(never.drills[0].alerts[0].delay_s, None);
        assert_eq!(never.expected_fired, 0);
        let before = judge(
            &[drill()],
            &run(),
            &[series("QueueBacklog", 15, 50)],
            &timing(),
        );
        assert!(before.drills[0].alerts[0].detail.contains("already firing"));
        let still = judge(
            &[drill()],
            &run(),
            &[series("QueueBacklog", 22, 70)],
            &timing(),
        );
        assert_eq!(still.drills[0].alerts[0].resolved_after_s, None);
    }

    #[test]
    fn an_alert_no_drill_expects_is_a_false_positive_in_its_phase() {
        let alerts = [
            series("QueueBacklog", 23, 30),
            series("Other", 5, 8),
            series("Other", 0, 3),
        ];
        let check = judge(&[drill()], &run(), &alerts, &timing());
        assert_eq!(check.unexpected.len(), 1, "{:?}", check.unexpected);
        assert_eq!(check.unexpected[0].phase, "clean");
        assert_eq!(check.unexpected[0].at_s, 5.0);
        // The expected alert firing again in a later clean phase is one.
        let again = judge(
            &[drill()],
            &run(),
            &[series("QueueBacklog", 50, 52)],
            &timing(),
        );
        assert_eq!(again.unexpected[0].phase, "after");
    }

    #[test]
    fn a_fault_that_was_not_injected_fails_its_alerts() {
        let mut d = drill();
        d.injection_error = Some("404".into());
        let check = judge(&[d], &run(), &[series("QueueBacklog", 25, 30)], &timing());
        assert!(!check.drills[0].alerts[0].pass);
    }

    #[test]
    fn rule_timing_comes_from_the_rules_api() {
        let groups = vec![serde_json::json!({"name": "g", "interval": 15.0, "rules": [
            {"type": "alerting", "name": "A", "duration": 120.0},
            {"type": "recording", "name": "r"}
        ]})];
        assert_eq!(
            alert_timing(&groups),
            HashMap::from([("A".into(), (120.0, 15.0))])
        );
    }
}
