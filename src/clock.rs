//! The run clock: every timestamp of a run is an offset from one start
//! instant, so client intervals, outcomes and sampled series line up.

use std::time::{Duration, SystemTime};

use tokio::time::Instant;

#[derive(Clone, Copy, Debug)]
pub struct Clock {
    start: Instant,
    /// The wall time at `start`, for timestamps others read (client spans).
    wall_start: SystemTime,
}

impl Clock {
    pub fn start() -> Self {
        Self {
            start: Instant::now(),
            wall_start: SystemTime::now(),
        }
    }

    /// The wall time `offset` after the start.
    pub fn wall(&self, offset: Duration) -> SystemTime {
        self.wall_start + offset
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
