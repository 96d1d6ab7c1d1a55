//! The runner's side of sampling: decides where the run's server-side
//! values come from (the plan's `[observe]`, else the target's `/metrics`
//! and the embedded simulator's DCGM exporter), starts `sample::Samplers`
//! with the load, and serves infercheck's own `/metrics`. The sources, the
//! store and the report's section live in `sample`; nothing here fails a
//! run: a source that is down is a gap and a line in the report.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::time::Instant;

use super::own_metrics::OwnMetrics;
use crate::outcome::Outcome;
use crate::plan::Plan;
use crate::report::{IntervalSummary, ObservedReport};
use crate::sample::nvml::NvmlOptions;
use crate::sample::{Prepared, Samplers, SamplingPlan};
use crate::stats::Series;

/// Sampling before the run clock starts: sources built, NVML up,
/// infercheck's own `/metrics` listening.
pub struct Ready {
    prepared: Prepared,
    own: Option<Arc<OwnMetrics>>,
    errors: Vec<String>,
}

/// Sampling during one run.
pub struct Observation {
    samplers: Samplers,
    own: Option<Arc<OwnMetrics>>,
}

/// Where the run's server-side values come from.
pub struct Sources<'a> {
    pub base_url: &'a str,
    /// The embedded simulator's DCGM exporter, when it runs one.
    pub dcgm_url: Option<&'a str>,
}

/// The plan's `[observe]` as the samplers take it. Without a Prometheus
/// or scrape URLs, the target's own `/metrics` is read (and the embedded
/// simulator's DCGM exporter beside it).
fn sampling_plan(plan: &Plan, sources: &Sources<'_>) -> SamplingPlan {
    let observe = &plan.observe;
    let mut scrape = observe.scrape.clone();
    if scrape.is_empty() && observe.prometheus.is_none() {
        scrape.push(format!(
            "{}/metrics",
            sources.base_url.trim_end_matches('/')
        ));
        scrape.extend(sources.dcgm_url.map(str::to_string));
    }
    SamplingPlan {
        interval: observe.interval,
        prometheus: observe.prometheus.clone(),
        scrape,
        queries: observe.queries.clone(),
        host: observe.host,
        target_pid: observe.target_pid,
        nvml: observe.nvml.then(|| NvmlOptions {
            lib_path: observe.nvml_lib.clone(),
            interval: observe.interval,
        }),
    }
}

impl Ready {
    /// Builds the sources and starts what needs starting, before the run
    /// clock does: their start-up cost must not delay the first requests.
    pub async fn prepare(plan: &Plan, sources: Sources<'_>) -> Ready {
        let prepared = Samplers::prepare(&sampling_plan(plan, &sources));
        let mut errors = prepared.errors().to_vec();
        let own = match plan.observe.metrics_listen {
            Some(addr) => match OwnMetrics::start(addr).await {
                Ok(m) => Some(m),
                Err(e) => {
                    errors.push(format!("cannot serve /metrics on {addr}: {e}"));
                    None
                }
            },
            None => None,
        };
        Ready {
            prepared,
            own,
            errors,
        }
    }

    /// Where infercheck's own /metrics is served, if it is.
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.own.as_ref().map(|m| m.addr())
    }

    /// Problems starting the samplers, for the caller to print.
    pub fn startup_errors(&self) -> &[String] {
        &self.errors
    }

    /// Starts sampling at `run_start` (the run clock's zero).
    pub fn start(self, run_start: Instant) -> Observation {
        Observation {
            samplers: self.prepared.start(run_start),
            own: self.own,
        }
    }
}

impl Observation {
    /// One finished request, for infercheck's own /metrics.
    pub fn record(&self, outcome: &Outcome) {
        if let Some(own) = &self.own {
            own.record(outcome);
        }
    }

    /// The latest sampled values for the interval line ending at `t`.
    pub fn interval(&mut self, interval: &IntervalSummary) -> BTreeMap<String, Option<f64>> {
        if let Some(own) = &self.own {
            own.interval(interval);
        }
        self.samplers.latest(interval.t)
    }

    /// Stops sampling; fills gaps and reads alerts for the run's window
    /// (Unix seconds).
    pub async fn finish(self, window: (i64, i64)) -> (ObservedReport, Vec<Series>) {
        let observed = self.samplers.finish(window).await;
        if let Some(own) = &self.own {
            own.stop();
        }
        observed
    }
}
