//! The load engine: schedules, the one worker loop, HTTP and SSE timing.
//!
//! Workers await nothing but the target, their ticket source and their
//! channel to the aggregator; they take no lock and allocate nothing per
//! request beyond what reqwest needs (STYLE 12). Every outcome is measured
//! from its intended send time. The engine never drops an arrival
//! silently: late sends are measured from their intended time, and
//! arrivals the step ended before sending are counted.

pub mod checks;
mod client;
mod engine;
mod request;
pub mod schedule;
pub mod sse;
mod threads;

pub use client::{Client, ClientError, Timing};
pub use engine::{Event, InFlight, drive, plan_steps};
pub use request::{Prepared, RequestSet};
pub use schedule::{Arrivals, Step, StepLoad};
pub use threads::WorkerThreads;
