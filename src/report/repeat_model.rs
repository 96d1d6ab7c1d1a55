//! `--repeat N` (examples/001's "Results (5 runs)"): each headline metric
//! across repeated runs of one plan — every run's figure, their mean and
//! spread, beside the figure of all runs merged (percentiles from the
//! added lossless histograms, never averaged). Computed in
//! `analysis::repeats`.

use serde::{Deserialize, Serialize};

/// The repeated runs and each metric across them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Repeats {
    pub runs: Vec<RepeatRun>,
    pub rows: Vec<RepeatRow>,
}

/// One of the runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RepeatRun {
    pub run_id: String,
    /// Its own verdict ("pass", "fail", ...).
    pub outcome: String,
}

/// One metric across the runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RepeatRow {
    /// As `[regression]` names it: `p95(latency)`, `rps`.
    pub key: String,
    pub label: String,
    /// "ms", "ratio", "req/s", "tok/s".
    pub unit: String,
    /// Each run's figure, in run order (`None`: no data in that run).
    pub values: Vec<Option<f64>>,
    pub mean: Option<f64>,
    /// Sample standard deviation (n − 1) across the runs with data.
    pub stdev: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// stdev / mean.
    pub cv: Option<f64>,
    /// The figure over every run's requests together.
    pub merged: Option<f64>,
}
