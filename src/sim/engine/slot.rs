//! The meeting point of one request's HTTP handler and the engine driver:
//! the driver writes progress (tokens produced, status, modelled times) and
//! wakes the handler; the handler reads it and marks the slot cancelled
//! when its client goes away. Lock-free on the token path; the times take a
//! small lock at the three or four events of a request's life.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::time::SystemTime;

use tokio::sync::Notify;

use crate::trace_id::TraceParent;

/// Where a request stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    Queued = 0,
    Running = 1,
    Finished = 2,
    /// Removed early: client gone, server stopping or crashing.
    Aborted = 3,
}

impl Status {
    fn from_u8(v: u8) -> Status {
        match v {
            0 => Status::Queued,
            1 => Status::Running,
            2 => Status::Finished,
            _ => Status::Aborted,
        }
    }

    pub fn is_done(self) -> bool {
        matches!(self, Status::Finished | Status::Aborted)
    }
}

/// Modelled wall-clock times and counts, written by the driver.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SlotTimes {
    pub arrived: Option<SystemTime>,
    pub scheduled: Option<SystemTime>,
    pub first_token: Option<SystemTime>,
    pub finished: Option<SystemTime>,
    pub cached_tokens: u32,
    pub preemptions: u32,
}

/// One request's shared state.
#[derive(Debug)]
pub(crate) struct SeqSlot {
    pub seq: u64,
    pub prompt_tokens: u32,
    pub max_tokens: u32,
    /// The caller's trace context, if it sent one.
    pub traceparent: Option<TraceParent>,
    generated: AtomicU32,
    status: AtomicU8,
    cancelled: AtomicBool,
    /// Set when the engine kept decoding after the client left (the
    /// orphaned-work fault).
    orphaned: AtomicBool,
    faulted: AtomicBool,
    /// When the last token was produced, in nanoseconds of the engine's
    /// clock (driver only; for inter-token latency).
    last_token_nanos: AtomicU64,
    notify: Notify,
    times: Mutex<SlotTimes>,
}

impl SeqSlot {
    pub fn new(
        seq: u64,
        prompt_tokens: u32,
        max_tokens: u32,
        traceparent: Option<TraceParent>,
    ) -> SeqSlot {
        SeqSlot {
            seq,
            prompt_tokens,
            max_tokens,
            traceparent,
            generated: AtomicU32::new(0),
            status: AtomicU8::new(Status::Queued as u8),
            cancelled: AtomicBool::new(false),
            orphaned: AtomicBool::new(false),
            faulted: AtomicBool::new(false),
            last_token_nanos: AtomicU64::new(0),
            notify: Notify::new(),
            times: Mutex::new(SlotTimes {
                arrived: Some(SystemTime::now()),
                ..SlotTimes::default()
            }),
        }
    }

    pub fn generated(&self) -> u32 {
        self.generated.load(Ordering::Acquire)
    }

    pub fn status(&self) -> Status {
        Status::from_u8(self.status.load(Ordering::Acquire))
    }

    /// Waits for the driver's next update (returns at once when one came
    /// since the last wait).
    pub async fn changed(&self) {
        self.notify.notified().await;
    }

    /// The client went away.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }

    pub fn mark_orphaned(&self) -> bool {
        !self.orphaned.swap(true, Ordering::AcqRel)
    }

    /// A fault broke this request's answer (its end is an error, not an
    /// abort by the client).
    pub fn mark_faulted(&self) {
        self.faulted.store(true, Ordering::Release);
    }

    pub fn is_faulted(&self) -> bool {
        self.faulted.load(Ordering::Acquire)
    }

    pub fn is_orphaned(&self) -> bool {
        self.orphaned.load(Ordering::Acquire)
    }

    pub fn times(&self) -> SlotTimes {
        *self.times.lock().unwrap_or_else(|e| e.into_inner())
    }

    // Driver side.

    pub(super) fn update_times(&self, f: impl FnOnce(&mut SlotTimes)) {
        f(&mut self.times.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// Swaps in the time of this token; returns the previous one.
    pub(super) fn swap_last_token(&self, nanos: u64) -> u64 {
        self.last_token_nanos.swap(nanos, Ordering::Relaxed)
    }

    pub(super) fn set_status(&self, status: Status) {
        self.status.store(status as u8, Ordering::Release);
        self.notify.notify_one();
    }

    pub(super) fn set_generated(&self, generated: u32) {
        self.generated.store(generated, Ordering::Release);
        self.notify.notify_one();
    }
}

/// The handler's hold on its slot: dropped with the handler or the body
/// (the client went away, hyper dropped them), it cancels a request that has
/// not ended, so the engine stops decoding it (or orphans it).
#[derive(Debug)]
pub(crate) struct SlotGuard(pub std::sync::Arc<SeqSlot>);

impl std::ops::Deref for SlotGuard {
    type Target = SeqSlot;

    fn deref(&self) -> &SeqSlot {
        &self.0
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        if !self.0.status().is_done() {
            self.0.cancel();
        }
    }
}
