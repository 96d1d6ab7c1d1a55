//! The report's server-side section: what the samplers saw during the run
//! (one summary per named value, e.g. queue depth, KV usage, GPU
//! utilisation, VRAM), where it came from, how Prometheus itself behaved
//! (query latency, failures), the alerts that fired, and whether GPUs
//! could be read. Plain serde data; built by the runner.

use serde::{Deserialize, Serialize};

use crate::sample::{FiredAlert, RulesHealth, SampledSummary};
use crate::stats::Quantiles;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ObservedReport {
    /// "prometheus URL", "scrape URL, URL", "host", "nvml".
    pub sources: Vec<String>,
    pub interval_s: f64,
    pub values: Vec<SampledSummary>,
    /// Latency of every Prometheus instant query (ms).
    pub query_latency_ms: Option<Quantiles>,
    pub queries: u64,
    pub failed_queries: u64,
    /// Gaps filled after the run by range queries.
    pub backfilled: u64,
    pub alerts: Option<AlertsReport>,
    /// One line on the GPUs: what was read, or why nothing was.
    pub gpu: Option<String>,
}

impl ObservedReport {
    /// The summary of a named value.
    pub fn value(&self, name: &str) -> Option<&SampledSummary> {
        self.values.iter().find(|v| v.name == name)
    }
}

/// Alerts read back from Prometheus for the run's window.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AlertsReport {
    pub fired: Vec<FiredAlert>,
    /// Of `fired`, those that began during the run (not already firing).
    pub began_during_run: usize,
    pub rules: Option<RulesHealth>,
    /// Why alerts could not be read, if they could not.
    pub error: Option<String>,
}
