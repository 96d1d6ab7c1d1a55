//! The runner's side of sampling: starts the samplers the plan asks for
//! (Prometheus or direct scrape, host, NVML) and infercheck's own
//! `/metrics`, folds what they deliver into a [`SampledStore`] on the run
//! clock, and after the load fills gaps and reads alerts back into the
//! report's [`ObservedReport`]. Nothing here fails a run: a source that is
//! down is a gap and a line in the report.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::own_metrics::OwnMetrics;
use crate::load::Outcome;
use crate::plan::Plan;
use crate::report::{AlertsReport, IntervalSummary, ObservedReport};
use crate::sample::nvml::{GpuSnapshot, NvmlOptions, NvmlSampler};
use crate::sample::{Aggregate, Reading, SampledStore, Samplers, SamplingPlan};

/// The values NVML gives (replacing the DCGM queries of the same names).
const NVML_VALUES: &[&str] = &[
    "gpu_util",
    "vram_used",
    "vram_free",
    "gpu_power",
    "gpu_temp",
];

/// Sampling during one run.
pub struct Observation {
    plan: SamplingPlan,
    samplers: Option<Samplers>,
    rx: mpsc::UnboundedReceiver<Reading>,
    store: SampledStore,
    nvml: Option<NvmlSampler>,
    gpu_line: Option<String>,
    /// NVML started (its values are in the store).
    nvml_read: bool,
    own: Option<Arc<OwnMetrics>>,
    errors: Vec<String>,
}

/// Where the run's server-side values come from.
pub struct Sources<'a> {
    pub base_url: &'a str,
    /// The embedded simulator's DCGM exporter, when it runs one.
    pub dcgm_url: Option<&'a str>,
}

impl Observation {
    /// Starts sampling at `run_start` (the run clock's zero).
    pub async fn start(plan: &Plan, sources: Sources<'_>, run_start: Instant) -> Observation {
        let observe = &plan.observe;
        let mut scrape = observe.scrape.clone();
        if scrape.is_empty() && observe.prometheus.is_none() {
            scrape.push(format!(
                "{}/metrics",
                sources.base_url.trim_end_matches('/')
            ));
            scrape.extend(sources.dcgm_url.map(str::to_string));
        }
        let (nvml, gpu_line) = start_nvml(plan, run_start);
        // GPU values come from NVML when this host has GPUs, else from the
        // DCGM exporter's queries.
        let queries = observe
            .queries
            .iter()
            .filter(|q| nvml.is_none() || !NVML_VALUES.contains(&q.name.as_str()))
            .cloned()
            .collect();
        let sampling = SamplingPlan {
            interval: observe.interval,
            prometheus: observe.prometheus.clone(),
            scrape,
            queries,
            host: observe.host,
            target_pid: observe.target_pid,
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let mut errors = Vec::new();
        let samplers = match Samplers::start(&sampling, run_start, tx) {
            Ok(s) => Some(s),
            Err(e) => {
                errors.push(format!("samplers: {e}"));
                None
            }
        };
        let own = match observe.metrics_listen {
            Some(addr) => match OwnMetrics::start(addr).await {
                Ok(m) => Some(m),
                Err(e) => {
                    errors.push(format!("cannot serve /metrics on {addr}: {e}"));
                    None
                }
            },
            None => None,
        };
        Observation {
            plan: sampling,
            samplers,
            rx,
            store: SampledStore::default(),
            nvml_read: nvml.is_some(),
            nvml,
            gpu_line,
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

    /// Folds everything delivered so far into the store.
    pub fn drain(&mut self) {
        while let Ok(reading) = self.rx.try_recv() {
            self.store.add(reading);
        }
        let snapshots: Vec<GpuSnapshot> = match &self.nvml {
            Some(nvml) => nvml.samples().try_iter().collect(),
            None => Vec::new(),
        };
        for snapshot in snapshots {
            self.add_gpu(&snapshot);
        }
    }

    /// One finished request, for infercheck's own /metrics.
    pub fn record(&self, outcome: &Outcome) {
        if let Some(own) = &self.own {
            own.record(outcome);
        }
    }

    /// The latest sampled values for the interval line ending at `t`.
    pub fn interval(&mut self, interval: &IntervalSummary) -> BTreeMap<String, Option<f64>> {
        self.drain();
        if let Some(own) = &self.own {
            own.interval(interval);
        }
        let within = self.plan.interval.as_secs_f64() * 1.5;
        self.store.latest(interval.t, within)
    }

    /// NVML values, under the names the DCGM queries use.
    fn add_gpu(&mut self, s: &GpuSnapshot) {
        let t = s.at.as_secs_f64();
        let max = |f: &dyn Fn(&crate::sample::nvml::GpuStat) -> Option<f64>| {
            s.gpus.iter().filter_map(f).reduce(f64::max)
        };
        let values = [
            (
                "gpu_util",
                "ratio",
                max(&|g| g.util_percent.map(|u| f64::from(u) / 100.0)),
                Aggregate::Max,
            ),
            (
                "vram_used",
                "bytes",
                max(&|g| g.mem_used_bytes.map(|b| b as f64)),
                Aggregate::Max,
            ),
            (
                "gpu_power",
                "watts",
                Some(s.gpus.iter().filter_map(|g| g.power_watts).sum()),
                Aggregate::Max,
            ),
            (
                "gpu_temp",
                "celsius",
                max(&|g| g.temperature_c.map(f64::from)),
                Aggregate::Max,
            ),
            (
                "vram_free",
                "bytes",
                s.gpus
                    .iter()
                    .filter_map(|g| {
                        Some(g.mem_total_bytes?.saturating_sub(g.mem_used_bytes?) as f64)
                    })
                    .reduce(f64::min),
                Aggregate::Min,
            ),
        ];
        for (name, unit, value, aggregate) in values {
            self.store.add(Reading {
                name: name.to_string(),
                unit,
                t,
                value,
                aggregate,
                query_latency_ms: None,
                source: "nvml",
            });
        }
    }

    /// Stops sampling; fills gaps and reads alerts for the run's window
    /// (Unix seconds).
    pub async fn finish(
        mut self,
        window: (i64, i64),
    ) -> (ObservedReport, Vec<crate::stats::Series>) {
        self.drain();
        let after = match self.samplers.take() {
            Some(samplers) => samplers.finish(&mut self.store, window).await,
            None => Default::default(),
        };
        self.drain();
        if let Some(nvml) = self.nvml.take() {
            for snapshot in tokio::task::spawn_blocking(move || nvml.stop())
                .await
                .unwrap_or_default()
            {
                self.add_gpu(&snapshot);
            }
        }
        if let Some(own) = &self.own {
            own.stop();
        }
        let (queries, failed_queries) = self.store.query_counts();
        let alerts = after.alerts.map(|fired| match fired {
            Ok(fired) => AlertsReport {
                began_during_run: fired.iter().filter(|a| a.began_during_run).count(),
                fired,
                rules: after.rules.clone().and_then(Result::ok),
                error: None,
            },
            Err(e) => AlertsReport {
                error: Some(e),
                ..AlertsReport::default()
            },
        });
        let report = ObservedReport {
            sources: self.sources(),
            interval_s: self.plan.interval.as_secs_f64(),
            values: self.store.summaries(),
            query_latency_ms: self.store.query_latency(),
            queries,
            failed_queries,
            backfilled: after.backfilled,
            alerts,
            gpu: self.gpu_line.clone(),
        };
        (report, self.store.series())
    }

    fn sources(&self) -> Vec<String> {
        let mut sources = Vec::new();
        match &self.plan.prometheus {
            Some(url) => sources.push(format!("prometheus {url}")),
            None if !self.plan.scrape.is_empty() => {
                sources.push(format!("scrape {}", self.plan.scrape.join(", ")))
            }
            None => {}
        }
        if self.plan.host {
            sources.push("host".into());
        }
        if self.nvml_read {
            sources.push("nvml".into());
        }
        sources
    }
}

/// NVML on its own thread, or the one line saying why not.
fn start_nvml(plan: &Plan, run_start: Instant) -> (Option<NvmlSampler>, Option<String>) {
    if !plan.observe.nvml {
        return (None, None);
    }
    let options = NvmlOptions {
        lib_path: plan.observe.nvml_lib.clone(),
        interval: plan.observe.interval,
    };
    match NvmlSampler::start(options, run_start.into_std()) {
        Ok(nvml) => {
            let names: Vec<String> = nvml
                .gpus()
                .iter()
                .map(|g| format!("{} {}", g.index, g.name))
                .collect();
            let line = format!("GPU: {} via NVML ({})", names.len(), names.join(", "));
            (Some(nvml), Some(line))
        }
        Err(unavailable) => (None, Some(unavailable.to_string())),
    }
}
