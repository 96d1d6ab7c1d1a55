//! The report's server-side section: what the samplers saw during the run
//! (one summary per named value, e.g. queue depth, KV usage, GPU
//! utilisation, VRAM), where it came from, how Prometheus itself behaved
//! (query latency, failures), the alerts that fired, and whether GPUs
//! could be read. Plain serde data; built by `sample`.

use serde::{Deserialize, Serialize};

use std::collections::BTreeMap;

use crate::stats::{Aggregate, Quantiles, SeriesStats};

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
    /// The engine profile the server's values were read with.
    #[serde(default)]
    pub engine: Option<EngineReport>,
    /// The drain window after the load.
    #[serde(default)]
    pub drain: Option<DrainReport>,
    /// The engines behind the target (a router), sampled beside it, and
    /// where the list came from.
    #[serde(default)]
    pub backends: Vec<String>,
    #[serde(default)]
    pub backends_from: Option<String>,
    /// The server's latency histograms over the whole run and drain (the
    /// increase of each bucket from the first scrape to the last), for the
    /// client↔server cross-checks.
    #[serde(default)]
    pub histograms: Vec<RunHistogram>,
    /// Counters' increases by model, for the per-model routing check.
    #[serde(default)]
    pub by_model: Vec<ModelCounter>,
    /// The machines the system memory and CPU values were read from: the
    /// server's node exporter, or this host when the target runs on it.
    #[serde(default)]
    pub machines: Vec<Machine>,
    /// The GPUs the GPU values were read from, as NVML or the DCGM
    /// exporter named them.
    #[serde(default)]
    pub gpu_models: Vec<GpuModel>,
    /// Each engine of `backends`, read on its own (the run's `values` sum
    /// them all).
    #[serde(default)]
    pub per_backend: Vec<BackendValues>,
}

/// One engine behind a router, as its own `/metrics` told it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BackendValues {
    /// Its `/metrics` URL.
    pub url: String,
    /// The pod its GPUs are attributed to (the router's word, or its
    /// host's name), and the GPUs a DCGM exporter attributed to it.
    #[serde(default)]
    pub pod: Option<String>,
    #[serde(default)]
    pub gpus: Vec<String>,
    pub scrapes_answered: u64,
    pub scrapes_missed: u64,
    /// Its values over the run, as `ObservedReport::values`.
    pub values: Vec<SampledSummary>,
    /// Its counters' increases by model.
    pub by_model: Vec<ModelCounter>,
}

impl BackendValues {
    /// The summary of a named value, when it has samples.
    pub fn value(&self, name: &str) -> Option<&SampledSummary> {
        self.values
            .iter()
            .find(|v| v.name == name && v.stats.samples > 0)
    }
}

/// A machine whose memory and CPU values the report shows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// Which values it backs: the node exporter's (`node_memory_used`,
    /// `node_cpu_load`) or this host's /proc (`memory_used`, `cpu_load`).
    pub source: MachineSource,
    /// What it is called: each node's `nodename` (node_uname_info), or
    /// its scrape `instance` where the exporter has no uname; this host's
    /// hostname.
    pub names: Vec<String>,
    /// Why this host's /proc speaks for the target ("loopback target",
    /// "target pid 4242"); `None` for a node exporter.
    pub because: Option<String>,
}

/// Where a machine's values come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MachineSource {
    NodeExporter,
    Host,
}

/// One GPU model the GPU values were read from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GpuModel {
    pub source: GpuModelSource,
    /// The product name: NVML's device name, the DCGM exporter's
    /// `modelName` label.
    pub model: String,
    /// How many of the GPUs read are this model.
    pub count: u32,
    /// The machines they are in, as the DCGM exporter labels them
    /// (`Hostname`); empty for NVML (this host).
    pub hosts: Vec<String>,
    /// NVML: how many of them give GPM metrics; `None` for DCGM.
    pub gpm: Option<u32>,
}

/// Who named a GPU model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GpuModelSource {
    Nvml,
    Dcgm,
}

/// A server counter's increase over the run and drain, by the model its
/// series are labelled with (`model_name`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelCounter {
    /// The query it belongs to (`requests_completed`).
    pub query: String,
    pub by_model: BTreeMap<String, f64>,
}

/// One server histogram's increase over the run, by bucket.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunHistogram {
    /// The query it belongs to (`server_ttft_p95`).
    pub query: String,
    /// The metric read (`vllm:time_to_first_token_seconds`).
    pub metric: String,
    /// (upper bound `le` in the query's stored unit, cumulative count),
    /// ascending, `+Inf` last (`null` in JSON).
    #[serde(with = "infinite_bounds")]
    pub buckets: Vec<(f64, f64)>,
}

/// Bucket bounds with `+Inf` written as JSON `null` (JSON has no infinity).
mod infinite_bounds {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(buckets: &[(f64, f64)], s: S) -> Result<S::Ok, S::Error> {
        let written: Vec<(Option<f64>, f64)> = buckets
            .iter()
            .map(|&(le, n)| (le.is_finite().then_some(le), n))
            .collect();
        written.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(f64, f64)>, D::Error> {
        let read: Vec<(Option<f64>, f64)> = Vec::deserialize(d)?;
        Ok(read
            .into_iter()
            .map(|(le, n)| (le.unwrap_or(f64::INFINITY), n))
            .collect())
    }
}

/// The drain window: after the load stopped, sampling went on until the
/// server held no request (running + waiting = 0) or the plan's timeout.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DrainReport {
    pub timeout_s: f64,
    /// Run-clock second the load stopped.
    pub load_end_s: f64,
    /// Requests the server held (running + waiting) at the first sample
    /// after the load stopped; `None`: the server exports neither.
    pub held_at_load_end: Option<f64>,
    /// Seconds from the load's end to the first sample with nothing held
    /// (an upper bound: samples come every interval); `None`: not drained
    /// within the timeout (or not measured).
    pub drain_time_s: Option<f64>,
    /// Seconds from the load's end to the last sample that still found a
    /// request held (0 when none did): the drain's lower bound.
    #[serde(default)]
    pub held_until_s: f64,
    /// Requests still held when the drain ended.
    pub held_at_end: Option<f64>,
    /// Why there was no drain window (run interrupted, nothing sampled).
    pub skipped: Option<String>,
}

/// Which engine profile read the server, and why that one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EngineReport {
    /// Its name in `queries/` ("vllm", "sglang", ...).
    pub name: String,
    /// As people write it ("vLLM", "SGLang").
    pub label: String,
    pub version: Option<String>,
    /// "detected at URL: evidence", "named by the plan", or why it was
    /// assumed.
    pub chosen: String,
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

/// A named value's summary over the run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SampledSummary {
    pub name: String,
    pub unit: String,
    pub source: String,
    pub aggregate: Aggregate,
    /// The value under `aggregate` (None: no sample at all).
    pub value: Option<f64>,
    #[serde(flatten)]
    pub stats: SeriesStats,
    pub gaps: u64,
}

/// An alert seen firing during a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FiredAlert {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub first_seen_unix: f64,
    /// False when it was already firing before the run started.
    pub began_during_run: bool,
}

/// The health of the server's rules.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RulesHealth {
    pub rules: usize,
    pub unhealthy: Vec<String>,
}
