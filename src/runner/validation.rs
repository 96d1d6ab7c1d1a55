//! The validator at the end of a run that has a Prometheus: the engine
//! profile's and the plan's own queries over the run's window, the
//! plan's dashboards, the rules' health, and the fault drills' alerts —
//! `report.validation`.

use super::raw_data::RunLog;
use crate::plan::Plan;
use crate::report::{ObservedReport, Validation};
use crate::sample::engine::Engine;
use crate::validate::drills::{self, DrillSpec, RunSpan};
use crate::validate::{self, Prom, Request};

/// `None` without a Prometheus. Its verdict is announced to `log` (the
/// run log, or a bare `quiet` flag for stderr only).
pub async fn after_run(
    plan: &Plan,
    started: chrono::DateTime<chrono::Utc>,
    observed: Option<&ObservedReport>,
    (drill_specs, phases): (Vec<DrillSpec>, Vec<(String, f64, f64)>),
    log: impl Into<RunLog>,
) -> Option<Validation> {
    let url = plan.observe.prometheus.clone()?;
    let start_unix = started.timestamp_millis() as f64 / 1000.0;
    let now = chrono::Utc::now().timestamp_millis() as f64 / 1000.0;
    let engine = observed
        .and_then(|o| o.engine.as_ref())
        .and_then(|e| Engine::parse(&e.name));
    let request = Request {
        prometheus: url.clone(),
        access: plan.observe.access.clone(),
        window: (start_unix, now),
        query_sets: vec![("run".to_owned(), plan.observe.queries_for(engine))],
        dashboards: plan.observe.dashboards.clone(),
        rules: true,
    };
    let mut v = validate::validate(&request).await;
    if !drill_specs.is_empty() {
        let span = RunSpan {
            start_unix,
            phases,
            observed_until_s: now - start_unix,
        };
        match Prom::new(&url, &plan.observe.access) {
            Ok(prom) => match drills::check(&prom, &drill_specs, &span).await {
                Ok(d) => v.drills = Some(d),
                Err(e) => v.errors.push(e),
            },
            Err(e) => v.errors.push(e),
        }
        v.pass = validate::passes(&v);
    }
    log.into().announce(&format!(
        "observability validation against {url}: {}",
        if v.pass { "PASS" } else { "FAIL" }
    ));
    Some(v)
}
