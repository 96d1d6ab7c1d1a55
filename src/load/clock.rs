//! The run clock: every timestamp of a run is an offset from one start
//! instant, so client intervals, outcomes and sampled series line up.

use std::time::Duration;

use tokio::time::Instant;

#[derive(Clone, Copy, Debug)]
pub struct Clock {
    start: Instant,
}

impl Clock {
    pub fn start() -> Self {
        Self {
            start: Instant::now(),
        }
    }

    /// Time since the run started.
    pub fn now(&self) -> Duration {
        self.start.elapsed()
    }

    /// The instant `offset` after the start, for `sleep_until`.
    pub fn at(&self, offset: Duration) -> Instant {
        self.start + offset
    }
}
