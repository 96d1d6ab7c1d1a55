//! The report's multi-turn sessions (`[workload] turns = N`).

use serde::{Deserialize, Serialize};

use crate::stats::Quantiles;

/// How the run's conversations went.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionReport {
    /// Turns a session has at most, and the conversations drawn from.
    pub max_turns: u32,
    pub conversations: u64,
    pub started: u64,
    /// Sessions whose last turn finished (the others were cut by a
    /// phase's end).
    pub completed: u64,
    pub turns: u64,
    /// Turns that failed (the session went on with its next turn).
    pub failed_turns: u64,
    /// turns / started.
    pub turns_per_session: Option<f64>,
    /// A completed session's length, first turn due to last turn done (ms).
    pub duration_ms: Option<Quantiles>,
    /// A completed session's length over its turns (ms).
    pub time_per_turn_ms: Option<Quantiles>,
    /// Each turn over all sessions: the prompt grows with the history.
    pub by_turn: Vec<TurnReport>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TurnReport {
    /// 1-based.
    pub turn: u32,
    pub requests: u64,
    pub ok: u64,
    /// The server's prompt tokens per successful turn, on average.
    pub prompt_tokens_avg: Option<f64>,
    pub latency_ms: Option<Quantiles>,
    pub ttft_ms: Option<Quantiles>,
}
