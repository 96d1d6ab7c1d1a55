//! State shared by every connection of one simulator: configuration, atomic
//! counters, the admission semaphore, the stall window and the stop flag.
//! The request path reads and bumps atomics only; the one lock it may wait
//! on is the admission semaphore.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::config::SimConfig;
use super::faults::{StallWindow, release_at};

/// A snapshot of the simulator's counters and gauges.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SimStats {
    /// Completion requests received (chat and text, malformed included).
    pub requests: u64,
    /// Requests that produced every output token and finished normally.
    pub completed: u64,
    /// Faults injected: error statuses, truncated streams and error events.
    pub errors_injected: u64,
    /// Output tokens generated.
    pub output_tokens: u64,
    /// Prompt tokens of requests that started decoding.
    pub prompt_tokens: u64,
    /// Requests decoding now.
    pub running: u64,
    /// Requests waiting for admission now.
    pub waiting: u64,
}

/// The live counters behind [`SimStats`] and `/metrics`.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub requests: AtomicU64,
    pub completed: AtomicU64,
    pub errors_injected: AtomicU64,
    pub output_tokens: AtomicU64,
    pub prompt_tokens: AtomicU64,
    pub running: AtomicU64,
    pub waiting: AtomicU64,
}

/// Adds one to a counter. Relaxed ordering: the counters are independent
/// statistics, nothing is synchronised through them.
pub(crate) fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

impl Counters {
    pub fn snapshot(&self) -> SimStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        SimStats {
            requests: get(&self.requests),
            completed: get(&self.completed),
            errors_injected: get(&self.errors_injected),
            output_tokens: get(&self.output_tokens),
            prompt_tokens: get(&self.prompt_tokens),
            running: get(&self.running),
            waiting: get(&self.waiting),
        }
    }
}

/// Waits up to this long are not woken by a stop; longer ones (a slow first
/// token, a stall) are, so that stopping never hangs on them.
const SHORT_WAIT: Duration = Duration::from_millis(100);

/// Everything one simulator's handlers share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub config: SimConfig,
    pub counters: Counters,
    /// Decoding slots (max_num_seqs); tokio's semaphore is FIFO-fair, which
    /// gives the waiting queue its order. Closed on stop.
    admission: Arc<Semaphore>,
    stall: Option<StallWindow>,
    next_seq: AtomicU64,
    /// Checked after every token wait: cheaper than polling the token.
    stopping: AtomicBool,
    /// Wakes long waits (stalls) and ends the HTTP server on stop.
    pub shutdown: CancellationToken,
}

impl Shared {
    pub fn new(config: SimConfig, started: Instant) -> Shared {
        // Zero slots would queue every request forever.
        let slots = config.max_num_seqs.clamp(1, Semaphore::MAX_PERMITS);
        let stall = StallWindow::new(started, config.faults.stall);
        Shared {
            config,
            counters: Counters::default(),
            admission: Arc::new(Semaphore::new(slots)),
            stall,
            next_seq: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
            shutdown: CancellationToken::new(),
        }
    }

    /// The next request sequence number (0, 1, 2, ... in arrival order).
    pub fn next_seq(&self) -> u64 {
        self.next_seq.fetch_add(1, Ordering::Relaxed)
    }

    /// Starts shutting down: queued and new requests are refused, decoding
    /// ones end at their next token, the HTTP server stops accepting.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Relaxed);
        self.admission.close();
        self.shutdown.cancel();
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }

    /// The delay multiplier for the current batch size:
    /// `1 + slowdown_per_running * (running - 1)`.
    pub fn scale(&self) -> f64 {
        let running = self.counters.running.load(Ordering::Relaxed);
        1.0 + self.config.slowdown_per_running * running.saturating_sub(1) as f64
    }

    /// Waits for a decoding slot, counted as waiting meanwhile (including
    /// while a stall holds admission back). `None` once the server stops.
    pub async fn admit(self: &Arc<Self>) -> Option<Running> {
        let _waiting = GaugeGuard::enter(&self.counters.waiting);
        let permit = self.admission.clone().acquire_owned().await.ok()?;
        if !self.wait_out_stall().await {
            return None;
        }
        Some(Running::enter(self.clone(), permit))
    }

    /// Sleeps until `due`, moved to the end of the stall window when it falls
    /// inside. Returns the instant actually waited for, `None` on stop.
    pub async fn emit_at(&self, due: Instant) -> Option<Instant> {
        let at = release_at(self.stall.as_ref(), due);
        if at.saturating_duration_since(Instant::now()) <= SHORT_WAIT {
            // The hot path: one timer, no cancellation waiter to register
            // (that takes a lock); the stop flag is checked on waking.
            tokio::time::sleep_until(at).await;
        } else if !self.sleep_or_stop(at).await {
            return None;
        }
        (!self.is_stopping()).then_some(at)
    }

    /// Holds back a response that would start inside the stall window.
    /// Returns `false` when the server stopped meanwhile.
    pub async fn wait_out_stall(&self) -> bool {
        let now = Instant::now();
        let at = release_at(self.stall.as_ref(), now);
        at == now || self.sleep_or_stop(at).await
    }

    async fn sleep_or_stop(&self, at: Instant) -> bool {
        tokio::select! {
            _ = tokio::time::sleep_until(at) => true,
            _ = self.shutdown.cancelled() => false,
        }
    }
}

/// `base * scale`, exact when the scale is 1 (so that the unscaled schedule
/// stays on whole milliseconds and never drifts by float rounding).
pub(crate) fn scaled(base: Duration, scale: f64) -> Duration {
    if scale == 1.0 {
        base
    } else {
        base.mul_f64(scale.max(0.0))
    }
}

/// Counts one request in a gauge for as long as it lives.
struct GaugeGuard<'a>(&'a AtomicU64);

impl<'a> GaugeGuard<'a> {
    fn enter(gauge: &'a AtomicU64) -> Self {
        bump(gauge, 1);
        GaugeGuard(gauge)
    }
}

impl Drop for GaugeGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A request holding a decoding slot. Dropping it (request finished, or the
/// client went away and the body was dropped) frees the slot and the gauge.
#[derive(Debug)]
pub(crate) struct Running {
    shared: Arc<Shared>,
    _permit: OwnedSemaphorePermit,
}

impl Running {
    fn enter(shared: Arc<Shared>, permit: OwnedSemaphorePermit) -> Running {
        bump(&shared.counters.running, 1);
        Running {
            shared,
            _permit: permit,
        }
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shared.counters.running.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_of_one_is_exact() {
        let d = Duration::from_millis(5);
        assert_eq!(scaled(d, 1.0), d);
        assert_eq!(scaled(d, 2.0), Duration::from_millis(10));
        assert_eq!(scaled(d, -1.0), Duration::ZERO);
    }

    #[test]
    fn scale_grows_with_running_requests() {
        let config = SimConfig {
            slowdown_per_running: 0.5,
            ..SimConfig::default()
        };
        let shared = Shared::new(config, Instant::now());
        assert_eq!(shared.scale(), 1.0);
        shared.counters.running.store(3, Ordering::Relaxed);
        assert_eq!(shared.scale(), 2.0);
    }
}
