//! What the router did with the load (examples/004, "routing
//! correctness"): each engine behind it as its own `/metrics` told it —
//! the requests it finished, its share, its queue, KV and GPUs — whether
//! backends serving the same models shared the work evenly, and whether
//! the split of requests across models followed the plan's weights.
//! Plain serde data; built by `analysis::routing`.

use serde::{Deserialize, Serialize};

/// The router's side of the run; empty when the target was one engine.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Routing {
    /// One row per engine behind the router.
    pub backends: Vec<BackendRow>,
    /// Per group of backends serving the same models: was the work even?
    pub balance: Vec<BalanceCheck>,
    /// The server's per-model split against the plan's weights.
    pub model_split: Option<SplitCheck>,
    /// Whether each response named the model its request asked for.
    #[serde(default)]
    pub response_model: Option<ResponseModelCheck>,
}

/// The `model` field of the answers against the requests' (client side).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResponseModelCheck {
    /// Successful requests that named a model.
    pub checked: u64,
    /// Of those, answered under another model's name.
    pub other: u64,
    /// (model asked for, successes, answered under another name).
    pub by_model: Vec<(String, u64, u64)>,
    /// No answer named another model; with two or more models asked for
    /// a mismatch is a routing error, with one it may be a server that
    /// answers under its own name.
    pub pass: bool,
    /// With two or more models a mismatch is a routing error.
    pub routing_error: bool,
    pub detail: String,
}

/// One engine behind the router.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BackendRow {
    pub url: String,
    /// The models its counters are labelled with.
    pub models: Vec<String>,
    /// Its finished-request counter's increase (aborted ones included).
    pub requests: Option<f64>,
    /// Of the requests its group of backends finished.
    pub share: Option<f64>,
    pub running_max: Option<f64>,
    pub waiting_max: Option<f64>,
    pub kv_usage_max: Option<f64>,
    /// Generation tokens per second, averaged over the run.
    pub tokens_per_s_avg: Option<f64>,
    /// Its GPUs, by the exporter's attribution labels.
    #[serde(default)]
    pub gpus: Vec<String>,
    pub gpu_util_max: Option<f64>,
    pub vram_used_max_bytes: Option<f64>,
    /// Scrapes of its `/metrics` that answered, and that did not.
    pub scrapes_answered: u64,
    pub scrapes_missed: u64,
    pub status: BackendStatus,
}

/// How a backend fared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendStatus {
    /// Served its share.
    Ok,
    /// Finished nothing while its group served requests.
    NoTraffic,
    /// Its share is off its group's even share beyond chance and the
    /// bound (see `analysis::routing`).
    Skewed,
    /// Its `/metrics` never answered.
    Unreachable,
    /// It exports no finished-request counter: its share is unknown.
    NotCounted,
}

/// Backends serving the same models: their requests against an even
/// split (Pearson's χ²).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BalanceCheck {
    /// The models the group serves ("" when the counters carry none).
    pub models: Vec<String>,
    pub backends: usize,
    pub requests: f64,
    pub chi2: f64,
    pub p_value: f64,
    /// The largest relative departure from the even share (0.3: one
    /// backend had 30 % more or less than 1/n of the group's requests).
    pub max_departure: f64,
    pub pass: bool,
    pub detail: String,
}

/// Requests per model at the server against the plan's weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SplitCheck {
    /// (model, weight share in the plan, requests the server finished).
    pub models: Vec<(String, f64, f64)>,
    pub chi2: f64,
    pub p_value: f64,
    pub max_departure: f64,
    pub pass: bool,
    pub detail: String,
}
