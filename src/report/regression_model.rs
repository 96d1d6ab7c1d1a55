//! The run judged against a baseline run (`infercheck compare`, `run
//! --baseline`): one row per headline metric with the baseline's figure,
//! this run's, the change with its confidence interval, the tolerance the
//! plan allows and the verdict. Computed in `analysis::regression`; the
//! renderers only word it.

use serde::{Deserialize, Serialize};

/// The comparison of this run with a baseline.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Regression {
    /// The baseline: its run id, plan, start, verdict and where it was read.
    pub baseline: BaselineIdentity,
    /// How the baseline was chosen: a path, `latest` or `latest-pass`.
    pub selected_by: String,
    /// Identity mismatches the comparison was forced past (`--force`).
    #[serde(default)]
    pub forced: Vec<String>,
    /// The interval's confidence (0.95) and the bootstrap replicates drawn.
    pub confidence: f64,
    pub replicates: u32,
    pub rows: Vec<RegressionRow>,
    /// Caveats: differing plan hashes, a baseline from another version.
    #[serde(default)]
    pub notes: Vec<String>,
}

impl Regression {
    /// The rows that regressed (they fail the run).
    pub fn regressed(&self) -> impl Iterator<Item = &RegressionRow> {
        self.rows
            .iter()
            .filter(|r| r.status == RegressionStatus::Regressed)
    }
}

/// Who the baseline run was.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BaselineIdentity {
    pub run_id: String,
    pub plan_name: String,
    pub started_at: String,
    /// The baseline's own verdict ("pass", "fail", ...).
    pub outcome: String,
    /// Where its report.json was read.
    pub path: String,
}

/// One metric, baseline against now.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RegressionRow {
    /// The metric's key as the plan's `[regression]` names it:
    /// `p95(latency)`, `error_rate`, `rps`, `avg(gpu_util)`.
    pub key: String,
    /// Human label, e.g. "P95 Latency".
    pub label: String,
    /// The figure's unit: "ms", "ratio", "req/s", "tok/s", or a sampled
    /// value's unit.
    pub unit: String,
    /// Which way is worse: `higher` (latency, errors) or `lower` (rates).
    pub worse: Direction,
    pub baseline: Option<f64>,
    pub now: Option<f64>,
    /// The change: relative (now/baseline − 1) or, for rates of requests
    /// (`pp` tolerances), the difference in fractions.
    pub change: Option<f64>,
    pub change_kind: ChangeKind,
    /// The confidence interval of the change, same kind as `change`.
    pub interval: Option<(f64, f64)>,
    /// The allowed change in the worse direction, as written (`+20%`,
    /// `+0.5pp`, `-5%`); `None`: informational, never fails.
    pub tolerance: Option<String>,
    /// The allowed change as a number of `change_kind` (0.20, 0.005, −0.05).
    pub tolerance_value: Option<f64>,
    /// How the interval was drawn, e.g. "bootstrap of 2,400 latencies
    /// (effective 1,130 of 2,400)", "bootstrap of 20 seconds".
    pub method: String,
    pub status: RegressionStatus,
}

/// Which direction of change is a regression.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Higher,
    Lower,
}

/// How a change is expressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// now / baseline − 1.
    Relative,
    /// now − baseline, in fractions (percentage points ×100).
    Points,
}

/// A row's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegressionStatus {
    /// Worse beyond the tolerance, and the interval excludes no change.
    Regressed,
    /// Better beyond the tolerance (mirrored), and the interval excludes
    /// no change.
    Improved,
    /// The interval holds no change: the move is within the noise.
    WithinNoise,
    /// A real change (the interval excludes none) inside the tolerance.
    WithinTolerance,
    /// A real change of a metric without a tolerance (informational).
    Changed,
    /// One side had no data.
    NoData,
}

impl RegressionStatus {
    /// "regressed", "within noise", ...: how the tables word it.
    pub fn label(self) -> &'static str {
        match self {
            RegressionStatus::Regressed => "regressed",
            RegressionStatus::Improved => "improved",
            RegressionStatus::WithinNoise => "within noise",
            RegressionStatus::WithinTolerance => "within tolerance",
            RegressionStatus::Changed => "changed",
            RegressionStatus::NoData => "no data",
        }
    }
}
