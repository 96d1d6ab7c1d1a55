//! Fault drills during a run: when a drill phase's first step starts, its
//! fault goes to the target's `POST /admin/faults` (the embedded simulator
//! or any `infercheck serve-sim`); when its last step ends, the patch that
//! clears it. An `external` drill injects nothing: the user causes the
//! fault in that window. Each injection is its own task, so the run's
//! event loop never waits on the target; what it answered is kept for the
//! report (a fault that could not be injected fails its drill).

use std::time::Duration;

use serde_json::{Value, json};
use tokio::task::JoinHandle;

use super::raw_data::RunLog;
use crate::load::Event;
use crate::plan::Plan;
use crate::plan::drill::{Drill, Fault};
use crate::validate::drills::DrillSpec;

/// Longest a patch may take; a slower target fails the drill.
const PATCH_TIMEOUT: Duration = Duration::from_secs(5);
/// A fault window that outlasts any phase; the clearing patch ends it.
const OPEN_WINDOW: &str = "24h";

/// The patch that starts a fault and the one that clears it; `None` for
/// an external fault.
pub fn patches(fault: &Fault) -> Option<(Value, Value)> {
    let window = |v: Value| {
        json!({"after": "0s", "length": OPEN_WINDOW})
            .as_object()
            .cloned()
            .map(|mut o| {
                if let Value::Object(extra) = v {
                    o.extend(extra);
                }
                Value::Object(o)
            })
    };
    let closed = json!({"after": "0s", "length": "0s"});
    Some(match fault {
        Fault::QueueFlood { factor } => (
            json!({"latency_spike": window(json!({"factor": factor}))}),
            json!({"latency_spike": closed}),
        ),
        Fault::ErrorBurst { rate } => (
            json!({"error_event_rate": rate}),
            json!({"error_event_rate": 0.0}),
        ),
        Fault::KvSaturation { share } => (json!({"kv_squeeze": share}), json!({"kv_squeeze": 0.0})),
        Fault::EngineStall => (
            json!({"stall": window(json!({}))}),
            json!({"stall": closed}),
        ),
        Fault::MetricsDown => (
            json!({"metrics_error_rate": 1.0}),
            json!({"metrics_error_rate": 0.0}),
        ),
        Fault::GpuMemoryClimb { mib_per_s } => (
            json!({"gpu_memory_climb_mib_per_s": mib_per_s}),
            json!({"gpu_memory_climb_mib_per_s": 0.0}),
        ),
        Fault::External { .. } => return None,
    })
}

/// One drill as it runs.
struct Running {
    phase: usize,
    drill: Drill,
    start_s: Option<f64>,
    end_s: Option<f64>,
    inject: Option<JoinHandle<Result<(), String>>>,
    clear: Option<JoinHandle<Result<(), String>>>,
}

/// The run's drills.
pub struct Drills {
    url: String,
    http: reqwest::Client,
    names: Vec<String>,
    last_step: Vec<u16>,
    /// Every phase's (start, end) on the run clock, as it ran: false
    /// positives are placed in the phase they began in.
    bounds: Vec<(Option<f64>, Option<f64>)>,
    drills: Vec<Running>,
    /// Where what goes wrong is announced (stderr until
    /// [`Drills::logging_to`] names the run log).
    log: RunLog,
}

impl Drills {
    /// `None` when the plan has no drill.
    pub fn new(plan: &Plan, steps: &[Vec<crate::load::Step>], base_url: &str) -> Option<Drills> {
        let drills: Vec<Running> = plan
            .phases
            .iter()
            .enumerate()
            .filter_map(|(i, p)| {
                Some(Running {
                    phase: i,
                    drill: p.drill.clone()?,
                    start_s: None,
                    end_s: None,
                    inject: None,
                    clear: None,
                })
            })
            .collect();
        if drills.is_empty() {
            return None;
        }
        let http = crate::tls::client_builder()
            .timeout(PATCH_TIMEOUT)
            .build()
            .ok()?;
        Some(Drills {
            url: format!("{}/admin/faults", base_url.trim_end_matches('/')),
            http,
            names: plan.phases.iter().map(|p| p.name.clone()).collect(),
            last_step: steps
                .iter()
                .map(|s| s.len().saturating_sub(1) as u16)
                .collect(),
            bounds: vec![(None, None); plan.phases.len()],
            drills,
            log: RunLog::from(false),
        })
    }

    /// Announces to `log` (the run log) rather than to stderr only.
    pub fn logging_to(mut self, log: RunLog) -> Drills {
        self.log = log;
        self
    }

    /// Starts a drill's fault at its phase's first step and clears it
    /// after its last.
    pub fn on_event(&mut self, event: &Event) {
        match *event {
            Event::StepStarted { phase, step: 0, at } => {
                if let Some(b) = self.bounds.get_mut(phase as usize) {
                    b.0 = Some(at.as_secs_f64());
                }
                if let Some(d) = self.drills.iter_mut().find(|d| d.phase == phase as usize) {
                    d.start_s = Some(at.as_secs_f64());
                    if let Some((start, _)) = patches(&d.drill.fault) {
                        d.inject = Some(spawn_patch(&self.http, &self.url, start));
                    }
                }
            }
            Event::StepFinished {
                phase, step, at, ..
            } if self.last_step.get(phase as usize) == Some(&step) => {
                if let Some(b) = self.bounds.get_mut(phase as usize) {
                    b.1 = Some(at.as_secs_f64());
                }
                if let Some(d) = self.drills.iter_mut().find(|d| d.phase == phase as usize) {
                    d.end_s = Some(at.as_secs_f64());
                    if let Some((_, clear)) = patches(&d.drill.fault) {
                        d.clear = Some(spawn_patch(&self.http, &self.url, clear));
                    }
                }
            }
            _ => {}
        }
    }

    /// Clears what is still injected (an interrupted run) and returns each
    /// drill that ran, with its window and how its injection went, and
    /// every phase that started with its bounds (an unfinished one ends at
    /// the load's end).
    pub async fn finish(mut self, load_end_s: f64) -> (Vec<DrillSpec>, Vec<(String, f64, f64)>) {
        let mut out = Vec::new();
        for d in &mut self.drills {
            let Some(start_s) = d.start_s else { continue };
            if d.end_s.is_none() {
                d.end_s = Some(load_end_s);
                if let Some((_, clear)) = patches(&d.drill.fault) {
                    d.clear = Some(spawn_patch(&self.http, &self.url, clear));
                }
            }
            let inject = joined(d.inject.take()).await;
            if let Err(e) = joined(d.clear.take()).await {
                self.log.announce(&format!(
                    "drill {}: clearing the fault failed: {e}",
                    self.names[d.phase]
                ));
            }
            out.push(DrillSpec {
                phase: self.names[d.phase].clone(),
                fault: d.drill.fault.name().to_owned(),
                start_s,
                end_s: d.end_s.unwrap_or(load_end_s),
                expect: d.drill.expect.clone(),
                injection_error: inject.err(),
            });
        }
        let phases = self
            .names
            .iter()
            .zip(&self.bounds)
            .filter_map(|(name, (start, end))| {
                Some((name.clone(), (*start)?, end.unwrap_or(load_end_s)))
            })
            .collect();
        (out, phases)
    }
}

fn spawn_patch(http: &reqwest::Client, url: &str, body: Value) -> JoinHandle<Result<(), String>> {
    let (http, url) = (http.clone(), url.to_owned());
    tokio::spawn(async move {
        let response = http
            .post(&url)
            .json(&body)
            .send()
            .await
            .map_err(|e| format!("POST {url}: {e}"))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            let text = response.text().await.unwrap_or_default();
            Err(format!("POST {url}: {status}: {}", text.trim()))
        }
    })
}

async fn joined(handle: Option<JoinHandle<Result<(), String>>>) -> Result<(), String> {
    match handle {
        None => Ok(()),
        Some(h) => h
            .await
            .unwrap_or_else(|e| Err(format!("the patch task failed: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_injected_fault_has_a_patch_that_clears_it() {
        let faults = [
            Fault::QueueFlood { factor: 20.0 },
            Fault::ErrorBurst { rate: 0.9 },
            Fault::KvSaturation { share: 0.97 },
            Fault::EngineStall,
            Fault::MetricsDown,
            Fault::GpuMemoryClimb { mib_per_s: 100.0 },
        ];
        for f in &faults {
            let (start, clear) = patches(f).unwrap();
            let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
            assert_eq!(keys(&start), keys(&clear), "{f:?}");
        }
        let (flood, _) = patches(&faults[0]).unwrap();
        assert_eq!(flood["latency_spike"]["factor"], 20.0);
        assert_eq!(flood["latency_spike"]["length"], OPEN_WINDOW);
        assert!(
            patches(&Fault::External {
                description: String::new()
            })
            .is_none()
        );
    }
}
