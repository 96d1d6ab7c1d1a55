//! What the server's own metrics say about the run, checked against the
//! client: work the server still held or finished for nobody (orphaned
//! tasks, after the drain window; `analysis::orphans`), and whether its
//! counters and latency histograms agree with what the client measured
//! (`analysis::agreement`).

use serde::{Deserialize, Serialize};

/// Server-side facts of the run that need the client's numbers beside
/// them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerChecks {
    /// `None`: the server was not sampled, or exports neither what it
    /// holds nor how many requests it finished.
    pub orphans: Option<Orphans>,
    /// Client ↔ server cross-checks, one per figure both sides measured.
    #[serde(default)]
    pub agreement: Vec<CrossCheck>,
    /// Cross-checks that could not be made, and why.
    #[serde(default)]
    pub not_checked: Vec<String>,
    /// Each model's first request against its median (cold starts).
    #[serde(default)]
    pub cold_starts: Vec<ColdStart>,
}

/// How a model's traffic began: its earliest-sent successful request's
/// service time against the model's median, and the 503s before it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ColdStart {
    pub model: String,
    pub first_request_ms: f64,
    pub median_ms: f64,
    /// Several times the median and noticeably longer (see
    /// `analysis::cold_start`).
    pub cold: bool,
    /// 503 answers sent before that first success (still loading).
    pub unavailable_before_ready: u64,
}

/// One figure as the client measured it and as the server's metrics
/// claim it, with the bound the two must keep.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CrossCheck {
    /// "Requests completed", "Output tokens", "TTFT p95", ...
    pub check: String,
    pub unit: CheckUnit,
    pub client: f64,
    /// The server's figure: a counter's increase (low = high), or the
    /// bucket a histogram quantile falls in (low, high].
    pub server_low: f64,
    /// `None`: the quantile fell in the `+Inf` bucket.
    pub server_high: Option<f64>,
    /// The bound, in words ("server within −1 %…+1 % of the client, plus
    /// 12 for abandoned requests").
    pub tolerance: String,
    pub pass: bool,
    /// The difference, and on a mismatch its likely causes.
    pub detail: String,
    /// Whose figure `client` is: the client's (the default, left out of
    /// JSON), or one the server's other metrics imply.
    #[serde(default, skip_serializing_if = "Reference::is_client")]
    pub reference: Reference,
}

/// What a cross-check holds the server's figure against.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reference {
    /// `client` is what the client measured.
    #[default]
    Client,
    /// `client` is what the server's own other metrics imply: a law the
    /// server's telemetry must keep with itself (Little's law's λ·W̄, the
    /// bound its time to first token sets on queue time, the other form of
    /// its prefix-cache hit rate).
    Server,
}

impl Reference {
    pub fn is_client(&self) -> bool {
        *self == Reference::Client
    }
}

/// How a cross-check's figures read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckUnit {
    Count,
    Milliseconds,
    /// A mean number of requests in a place (running + waiting, waiting).
    Requests,
    /// A share (0..1): a hit rate, queue time's share of latency.
    Ratio,
}

/// Orphaned tasks: work the server did for requests no client waited for
/// any more. Two parts, each from the server's own metrics:
/// requests it finished (not aborted) beyond those the client received
/// (it kept working after the client timed out, cancelled or
/// disconnected), and requests it still held when the drain window ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Orphans {
    /// `finished_for_nobody + held_at_drain_end` (the parts measured).
    pub count: f64,
    /// Server-finished requests (not aborted) minus the client's
    /// successes; `None`: the server exports no finished-request counter.
    pub finished_for_nobody: Option<f64>,
    /// Running + waiting at the end of the drain window; `None`: not
    /// exported.
    pub held_at_drain_end: Option<f64>,
    /// The server's finished-request counter's increase over the run and
    /// drain, and its aborted part.
    pub server_finished: Option<f64>,
    pub server_aborted: Option<f64>,
    /// The client's successes, and the requests it gave up on (timeouts,
    /// cancellations, broken streams).
    pub client_ok: u64,
    pub client_abandoned: u64,
}
