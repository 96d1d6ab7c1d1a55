//! The latency model of one request: admission, time to first token, and the
//! gap between tokens, each token scheduled against an absolute deadline so
//! that timer granularity never accumulates. Streaming and non-streaming
//! answers both pull tokens from a [`Decode`].

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::openai::Job;
use super::state::{Running, Shared, bump, scaled};
use super::tokens::{Purpose, SimRng, next_token};

/// A request that holds a decoding slot and produces its tokens on schedule.
/// Dropping it stops decoding and frees the slot.
#[derive(Debug)]
pub(crate) struct Decode {
    running: Running,
    rng: SimRng,
    /// When the next token is due, before any stall shift.
    next_due: Instant,
    emitted: u32,
}

impl Decode {
    /// Waits for a slot (FIFO) and for any stall to pass, then schedules the
    /// first token at `ttft * scale + prefill_per_token * prompt_tokens`.
    /// `None` when the server stops first.
    pub async fn admit(shared: Arc<Shared>, job: &Job) -> Option<Decode> {
        let running = shared.admit().await?;
        let start = Instant::now();
        let config = &shared.config;
        let prefill = prefill_time(config.prefill_per_token, job.prompt_tokens);
        let first = scaled(config.ttft, shared.scale()) + prefill;
        bump(&shared.counters.prompt_tokens, job.prompt_tokens);
        Some(Decode {
            running,
            rng: SimRng::for_request(config.seed, job.seq, Purpose::Text),
            next_due: start + first,
            emitted: 0,
        })
    }

    /// Output tokens produced so far.
    pub fn emitted(&self) -> u32 {
        self.emitted
    }

    /// Waits until the next token is due and returns its text. `None` when
    /// the server stops meanwhile.
    pub async fn next_token(&mut self) -> Option<&'static str> {
        let shared = self.running.shared();
        // A token held back by a stall comes out when it ends, and the next
        // one keeps its gap from there (the schedule shifts with the stall).
        let at = shared.emit_at(self.next_due).await?;
        // The gap is re-scaled per token so latency follows the batch size.
        self.next_due = at + scaled(shared.config.per_token, shared.scale());
        self.emitted += 1;
        bump(&shared.counters.output_tokens, 1);
        Some(next_token(&mut self.rng))
    }
}

/// The longest prefill modelled: a day. The prompt size comes from the
/// client, and an unbounded delay would overflow `Instant` arithmetic.
const MAX_PREFILL: Duration = Duration::from_secs(24 * 3600);

/// `per_token * prompt_tokens`, capped at [`MAX_PREFILL`].
fn prefill_time(per_token: Duration, prompt_tokens: u64) -> Duration {
    let n = u32::try_from(prompt_tokens).unwrap_or(u32::MAX);
    per_token
        .checked_mul(n)
        .unwrap_or(MAX_PREFILL)
        .min(MAX_PREFILL)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefill_is_linear_and_saturates() {
        let ms = Duration::from_millis(1);
        assert_eq!(prefill_time(ms, 0), Duration::ZERO);
        assert_eq!(prefill_time(ms, 250), Duration::from_millis(250));
        assert_eq!(prefill_time(Duration::MAX, 3), MAX_PREFILL);
        assert_eq!(prefill_time(ms, u64::MAX), MAX_PREFILL);
    }
}
