//! Process exit codes: part of infercheck's API, wired into CI pipelines.
//!
//! "Could not run" (3) is kept apart from "ran and failed" (4) so that a
//! scheduled job can tell a broken staging stack from a regression.

/// All thresholds were met.
pub const OK: i32 = 0;
/// The command line was malformed (clap reports it).
pub const USAGE: i32 = 1;
/// The plan is invalid; nothing was sent.
pub const PLAN_INVALID: i32 = 2;
/// The run could not happen: target, I/O, or an interruption.
pub const COULD_NOT_RUN: i32 = 3;
/// The run completed and at least one threshold failed.
pub const THRESHOLDS_FAILED: i32 = 4;
/// The generator itself was the bottleneck; the numbers cannot be trusted.
pub const RUN_INVALID: i32 = 5;
