//! The report's judgement: what the analysis concluded from the
//! measurements — which server series drive latency, where throughput
//! stops scaling and how latency degrades past it, how fast the stack
//! recovers after a spike, whether steady phases stay steady and memory
//! stays flat, the batch size that serves best, and the findings that
//! follow — every statement with the numbers behind it. Plain serde data;
//! built by `analysis`, never by a renderer.

use serde::{Deserialize, Serialize};

use super::trace_model::Interval;

/// Everything the analysis concluded.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    pub drivers: LatencyDrivers,
    /// One per sweep or rising ramp phase.
    pub saturation: Vec<Saturation>,
    /// One per phase after which load dropped (or a phase marked `stress`).
    pub recovery: Vec<Recovery>,
    /// One per steady phase and client series.
    pub steadiness: Vec<Steadiness>,
    /// Server memory over the run (VRAM, the target's RSS).
    pub memory: Vec<MemoryTrend>,
    pub optimal_batch: Option<OptimalBatch>,
    /// "Identified Optimizations" (examples/000), each citing its numbers.
    pub optimizations: Vec<Finding>,
    /// "Risk Assessment" (examples/000), each citing its numbers.
    pub risks: Vec<Finding>,
    /// The rules the findings were judged by, fired or not, so "no risk
    /// found" says what was looked for.
    #[serde(default)]
    pub rules_checked: RulesChecked,
}

/// The names of the finding rules evaluated against the run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RulesChecked {
    pub optimizations: Vec<String>,
    pub risks: Vec<String>,
}

/// Client series against server series: rank correlation at the best lag.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencyDrivers {
    /// Lags searched: −max…+max seconds.
    pub max_lag_s: i64,
    /// Correlations tested (pairs × lags with enough points).
    pub tests: u64,
    /// The family-wise error rate, and what each test had to beat
    /// (Bonferroni: alpha / tests).
    pub alpha: f64,
    pub alpha_per_test: f64,
    /// Every pair tested at its strongest lag, strongest first.
    pub pairs: Vec<DriverPair>,
}

impl LatencyDrivers {
    /// The pairs found significant.
    pub fn drivers(&self) -> impl Iterator<Item = &DriverPair> {
        self.pairs.iter().filter(|p| p.driver)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DriverPair {
    /// The client series, e.g. "latency p95".
    pub client: String,
    /// The sampled server series, e.g. "queue_depth".
    pub server: String,
    /// Spearman's ρ at `lag_s`.
    pub rho: f64,
    /// Seconds the server series leads the client's (negative: it lags).
    pub lag_s: i64,
    /// Aligned seconds, and the independent points they are worth.
    pub n: u64,
    pub n_effective: f64,
    pub ci95: Interval,
    pub p_value: f64,
    /// Significant after the correction for the number of tests.
    pub driver: bool,
}

/// How a load level fared.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoadPoint {
    /// Concurrency of a sweep level, or target rate (req/s) of a ramp bin.
    pub load: f64,
    /// Completed requests per second.
    pub throughput: f64,
    pub p95_ms: Option<f64>,
    pub error_rate: f64,
    /// Every per-request threshold of the plan held at this level.
    pub met_slo: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Degradation {
    /// Past the knee latency grew at most linearly with load, no errors
    /// began and throughput held.
    Graceful,
    /// Super-linear latency growth, errors, or a throughput collapse.
    Catastrophic,
    /// Throughput scaled through the tested range: no knee.
    NotReached,
}

/// Where throughput stops scaling, and what happens past it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Saturation {
    pub phase: String,
    /// "concurrency" (a sweep) or "rate" (a ramp).
    pub load: String,
    pub points: Vec<LoadPoint>,
    /// The load level of the knee, when there is one.
    pub knee: Option<f64>,
    /// The highest level at which every per-request threshold held.
    pub max_within_slo: Option<f64>,
    pub degradation: Degradation,
    /// The growth of p95 with load past the knee: p95 ∝ loadᵇ.
    pub latency_exponent: Option<f64>,
    pub fit_r_squared: Option<f64>,
    /// The facts that decided, one sentence each.
    pub evidence: Vec<String>,
}

/// The time to get back to normal after a spike or an overload.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Recovery {
    /// The phase whose end is the end of the stress.
    pub after_phase: String,
    /// The phase whose per-second p95 is the baseline.
    pub baseline_phase: String,
    /// Median per-second p95 of the baseline phase, and the most a second
    /// may read to count as back.
    pub baseline_p95_ms: f64,
    pub limit_ms: f64,
    /// Run-clock second the stress ended.
    pub stress_end_s: f64,
    /// When p95 was back within the limit (and the server queue empty,
    /// when it was sampled) for 3 seconds in a row; `None`: not by the end
    /// of the run.
    pub recovered_at_s: Option<f64>,
    pub recovery_s: Option<f64>,
    /// Whether the server's queue was part of the test.
    pub queue_checked: bool,
    /// The worst second after the stress: its p95.
    pub peak_p95_ms: Option<f64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Drift {
    Stable,
    Degrading,
    Improving,
}

/// The trend of a client series within a steady phase.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Steadiness {
    pub phase: String,
    /// "latency p95", "TPOT p95".
    pub series: String,
    /// Theil–Sen slope, ms per minute.
    pub slope_ms_per_min: f64,
    /// Median of the series over the phase, ms.
    pub median_ms: f64,
    pub p_value: f64,
    pub n: u64,
    pub drift: Drift,
}

/// The trend of a server memory series over the run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MemoryTrend {
    pub series: String,
    /// Theil–Sen slope, bytes per minute.
    pub slope_bytes_per_min: f64,
    pub p_value: f64,
    pub n: u64,
    pub first_bytes: f64,
    pub last_bytes: f64,
    pub growing: bool,
}

/// The range of batch sizes (requests running) where token throughput was
/// within 95 % of its peak while latency met the plan's p95 bound.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OptimalBatch {
    pub low: u64,
    pub high: u64,
    /// Peak of the per-batch-size median token throughput (tokens/s).
    pub peak_tokens_per_s: f64,
    /// The p95 bound the range had to meet, when the plan sets one (ms).
    pub p95_bound_ms: Option<f64>,
    /// Seconds the estimate rests on.
    pub seconds: u64,
}

/// One finding: a rule over the measurements that fired, and its numbers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// The rule's name, stable across runs (e.g. "kv_cache_saturated").
    pub rule: String,
    /// What it says, with the numbers in it.
    pub statement: String,
    /// The measurements it rests on, one per line.
    pub evidence: Vec<String>,
}
