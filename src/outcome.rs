//! What one request produced: its timestamps on the run clock, its token
//! count and, when it failed, the closed [`ErrorKind`].
//!
//! An [`Outcome`] is `Copy` and heap-free so that the hot path hands it to
//! the aggregator without allocating.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The closed set of ways a request can fail (DESIGN.md, "Error kinds").
/// Counted per kind; never an open map keyed by error strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// TCP connect refused, reset before a response, DNS failure.
    Connect,
    /// The request timeout passed before the response ended.
    Timeout,
    /// A 3xx redirect the plan did not follow (`target.follow_redirects`).
    Http3xx,
    /// Any 4xx except 429.
    Http4xx,
    /// HTTP 429: counted on its own, never retried.
    RateLimited,
    /// A 5xx, or any other status outside 2xx.
    Http5xx,
    /// The body, or one SSE line or event, passed `target.max_response_bytes`.
    TooLarge,
    /// An SSE `error` payload, or a stream that ended without `[DONE]`.
    StreamError,
    /// The body could not be decoded (bad JSON, bad SSE framing).
    Decode,
    /// The run stopped (Ctrl-C, abort-on-fail) while the request was open.
    Cancelled,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 10] = [
        ErrorKind::Connect,
        ErrorKind::Timeout,
        ErrorKind::Http3xx,
        ErrorKind::Http4xx,
        ErrorKind::RateLimited,
        ErrorKind::Http5xx,
        ErrorKind::TooLarge,
        ErrorKind::StreamError,
        ErrorKind::Decode,
        ErrorKind::Cancelled,
    ];

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Http3xx => "http_3xx",
            ErrorKind::Http4xx => "http_4xx",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::Http5xx => "http_5xx",
            ErrorKind::TooLarge => "too_large",
            ErrorKind::StreamError => "stream_error",
            ErrorKind::Decode => "decode",
            ErrorKind::Cancelled => "cancelled",
        }
    }

    /// The kind for a non-success HTTP status.
    pub fn from_status(status: u16) -> ErrorKind {
        match status {
            300..=399 => ErrorKind::Http3xx,
            429 => ErrorKind::RateLimited,
            400..=499 => ErrorKind::Http4xx,
            _ => ErrorKind::Http5xx,
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a request belongs: indices into the resolved plan.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Slot {
    pub phase: u16,
    pub step: u16,
    pub model: u16,
    /// The plan's task (0 for a plan without `[[tasks]]`).
    pub task: u16,
}

/// A failed check's evidence: when, with what status, and what it found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckSample {
    /// When the request ended, in seconds on the run clock.
    pub at_s: f64,
    pub status: u16,
    pub detail: String,
}

/// One finished request. Every instant is an offset from the run's start
/// (the run clock), so client intervals and sampled series line up.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Outcome {
    pub slot: Slot,
    /// When the schedule wanted the request sent.
    pub intended: Duration,
    /// When it was actually sent (>= intended).
    pub sent: Duration,
    /// First chunk carrying non-empty content or reasoning text.
    pub first_token: Option<Duration>,
    /// Last content-carrying chunk.
    pub last_token: Option<Duration>,
    pub end: Duration,
    pub output_tokens: u32,
    /// False when the server sent no `usage` and tokens were counted from
    /// content chunks instead.
    pub tokens_from_usage: bool,
    /// The server's `usage.prompt_tokens`; `None` without usage.
    pub prompt_tokens: Option<u32>,
    /// Inter-token gaps were split by the server's per-chunk usage
    /// (`continuous_usage_stats`), not by content chunks.
    pub itl_from_usage: bool,
    pub status: u16,
    pub error: Option<ErrorKind>,
    /// Requests in flight when this one was sent, itself included.
    pub in_flight: u32,
    /// A worker was free before the intended time (open model), so any
    /// schedule lag is the generator's own, not the target's backpressure.
    pub worker_was_ready: bool,
    /// The trace id of the `traceparent` the request carried; 0 when it
    /// carried none (see `traces`).
    pub trace_id: u128,
    /// The response named another model than the request asked for
    /// (checked on OpenAI bodies that name a model).
    pub other_model: bool,
    /// The task's checks judged on this request (0: none, or cancelled),
    /// and which of them failed (bit i: check i).
    pub checks_run: u8,
    pub checks_failed: u32,
    /// The request's turn in its multi-turn session (1-based; 0: not a
    /// session), whether it was the last, and when the session's first
    /// turn was due.
    pub turn: u16,
    pub last_turn: bool,
    pub session_start: Duration,
}

impl Outcome {
    /// Latency from the intended send time (coordinated-omission corrected).
    pub fn latency(&self) -> Duration {
        self.end.saturating_sub(self.intended)
    }

    /// Service time: from the actual send.
    pub fn service_time(&self) -> Duration {
        self.end.saturating_sub(self.sent)
    }

    /// Schedule lag: actual send minus intended.
    pub fn schedule_lag(&self) -> Duration {
        self.sent.saturating_sub(self.intended)
    }

    pub fn ttft(&self) -> Option<Duration> {
        self.first_token.map(|t| t.saturating_sub(self.intended))
    }

    pub fn ttft_service(&self) -> Option<Duration> {
        self.first_token.map(|t| t.saturating_sub(self.sent))
    }

    /// Time per output token after the first; undefined for one token.
    pub fn tpot(&self) -> Option<Duration> {
        let (first, last) = (self.first_token?, self.last_token?);
        let gaps = self.output_tokens.checked_sub(1).filter(|g| *g > 0)?;
        Some(last.saturating_sub(first) / gaps)
    }

    /// Output tokens per second of this request, from send to end.
    pub fn tokens_per_second(&self) -> Option<f64> {
        let secs = self.service_time().as_secs_f64();
        (self.error.is_none() && self.output_tokens > 0 && secs > 0.0)
            .then(|| f64::from(self.output_tokens) / secs)
    }

    pub fn is_ok(&self) -> bool {
        self.error.is_none()
    }
}

/// A request for unit tests: intended at 100 ms, sent at 130, first
/// token at 180, last at 280, ended at 290, 11 output tokens.
#[cfg(test)]
pub(crate) fn example(error: Option<ErrorKind>) -> Outcome {
    let ms = Duration::from_millis;
    Outcome {
        slot: Slot::default(),
        intended: ms(100),
        sent: ms(130),
        first_token: Some(ms(180)),
        last_token: Some(ms(280)),
        end: ms(290),
        output_tokens: 11,
        tokens_from_usage: true,
        itl_from_usage: false,
        prompt_tokens: Some(8),
        status: 200,
        error,
        in_flight: 1,
        worker_was_ready: true,
        other_model: false,
        checks_run: 0,
        checks_failed: 0,
        turn: 0,
        last_turn: false,
        session_start: Duration::ZERO,
        trace_id: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn outcome() -> Outcome {
        example(None)
    }

    #[test]
    fn derived_times_follow_design_definitions() {
        let o = outcome();
        assert_eq!(o.latency(), ms(190));
        assert_eq!(o.service_time(), ms(160));
        assert_eq!(o.schedule_lag(), ms(30));
        assert_eq!(o.ttft(), Some(ms(80)));
        assert_eq!(o.ttft_service(), Some(ms(50)));
        assert_eq!(o.tpot(), Some(ms(10)));
        assert!((o.tokens_per_second().unwrap() - 68.75).abs() < 1e-9);
    }

    #[test]
    fn tpot_is_undefined_for_a_single_token() {
        let o = Outcome {
            output_tokens: 1,
            ..outcome()
        };
        assert_eq!(o.tpot(), None);
        let o = Outcome {
            output_tokens: 0,
            ..outcome()
        };
        assert_eq!(o.tpot(), None);
    }

    #[test]
    fn status_maps_to_http_kinds() {
        assert_eq!(ErrorKind::from_status(404), ErrorKind::Http4xx);
        assert_eq!(ErrorKind::from_status(429), ErrorKind::RateLimited);
        assert_eq!(ErrorKind::from_status(302), ErrorKind::Http3xx);
        assert_eq!(ErrorKind::from_status(301), ErrorKind::Http3xx);
        assert_eq!(ErrorKind::from_status(503), ErrorKind::Http5xx);
        assert_eq!(ErrorKind::from_status(100), ErrorKind::Http5xx);
        for (i, k) in ErrorKind::ALL.iter().enumerate() {
            assert_eq!(k.index(), i);
        }
    }
}
