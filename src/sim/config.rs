//! Configuration of the embedded simulator: the latency model, the admission
//! limit and the faults it injects. Plain data with defaults; no behaviour.

use std::time::Duration;

/// How the simulated server behaves. Every field has a vLLM-like default
/// (see [`SimConfig::default`]).
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Seeds token text and fault draws: the same seed and the same request
    /// sequence give the same output.
    pub seed: u64,
    /// The served model name listed by `GET /v1/models` and used as the
    /// `model_name` label on `/metrics`. Requests naming any model are
    /// accepted and their model is echoed back.
    pub model: String,
    /// Base time to first token, counted from the moment a request starts
    /// decoding (after admission).
    pub ttft: Duration,
    /// Extra time to first token per prompt token (prefill cost).
    pub prefill_per_token: Duration,
    /// Base gap between consecutive output tokens.
    pub per_token: Duration,
    /// Delays scale by `1 + slowdown_per_running * (running - 1)`, so latency
    /// grows with the number of requests decoding at once.
    pub slowdown_per_running: f64,
    /// How many requests decode at once; the rest wait in FIFO order.
    pub max_num_seqs: usize,
    /// Output tokens for a request that gives no `max_tokens`.
    pub default_max_tokens: u32,
    /// Faults injected on purpose.
    pub faults: Faults,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 42,
            model: "sim-llama-8b".to_string(),
            ttft: Duration::from_millis(40),
            prefill_per_token: Duration::ZERO,
            per_token: Duration::from_millis(10),
            slowdown_per_running: 0.01,
            max_num_seqs: 256,
            default_max_tokens: 64,
            faults: Faults::default(),
        }
    }
}

/// Faults, each drawn per request from the seeded RNG. Rates are fractions
/// in `[0, 1]`; the default injects nothing.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Fraction of requests answered with `error_status` (and an OpenAI-style
    /// JSON error body) before any token.
    pub error_rate: f64,
    /// Status of injected errors; 0 (the default) means 500.
    pub error_status: u16,
    /// A window in which the whole server freezes.
    pub stall: Option<Stall>,
    /// Fraction of streams that stop after half their tokens and close the
    /// body without `data: [DONE]`.
    pub truncate_rate: f64,
    /// Fraction of streams that send an SSE error event after half their
    /// tokens and end.
    pub error_event_rate: f64,
}

/// A freeze of the whole server: while it lasts no response starts and no
/// token is emitted; pending work resumes when it ends.
#[derive(Clone, Copy, Debug)]
pub struct Stall {
    /// Start of the window, measured from server start.
    pub after: Duration,
    /// Length of the window.
    pub length: Duration,
}
