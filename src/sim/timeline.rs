//! What happened to one request inside the simulated engine, on the wall
//! clock: when it arrived, left the queue, produced its first token and
//! finished, with its token counts and how it ended. The engine fills it in;
//! the trace exporter (`trace.rs`) turns it into spans after the fact, and
//! the metrics observe their histograms from it. Plain data.

use std::time::SystemTime;

/// How a request ended, as vLLM's `finished_reason` label spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum FinishReason {
    /// Produced `max_tokens` tokens.
    Length,
    /// The client went away, or the server stopped, before the end.
    Abort,
    /// A fault broke its answer (cut stream) and the client went away.
    Error,
}

impl FinishReason {
    /// The label value vLLM uses.
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Length => "length",
            FinishReason::Abort => "abort",
            FinishReason::Error => "error",
        }
    }
}

/// One request's life in the engine. Instants are wall-clock so that spans
/// carry real timestamps; they are taken from the engine's modelled step
/// deadlines, not from when a task happened to wake up.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Timeline {
    /// The served model (the engine's name, not what the client asked for).
    pub model: String,
    /// Request sequence number of this simulator (0, 1, 2, ... by arrival).
    pub seq: u64,
    /// Accepted by the HTTP handler and queued.
    pub arrived: SystemTime,
    /// First scheduled into a batch (end of queueing); `None` if it never was.
    pub scheduled: Option<SystemTime>,
    /// End of the prefill step that produced the first token.
    pub first_token: Option<SystemTime>,
    /// Last token, abort or error.
    pub finished: SystemTime,
    pub prompt_tokens: u64,
    /// Prompt tokens served from the prefix cache (not prefilled).
    pub cached_tokens: u64,
    pub output_tokens: u64,
    /// Times the request lost its KV blocks and went back to the queue.
    pub preemptions: u32,
    pub finish_reason: FinishReason,
}

impl Timeline {
    /// Queue time: arrival to first scheduling (or to the end when never
    /// scheduled).
    pub fn queue_end(&self) -> SystemTime {
        self.scheduled.unwrap_or(self.finished)
    }

    /// End of prefill: the first token, or the end when none came.
    pub fn prefill_end(&self) -> SystemTime {
        self.first_token.unwrap_or(self.finished)
    }
}
