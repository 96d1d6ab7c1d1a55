//! Statistics: fixed-memory HDR histograms and the per-request metric sets
//! built from them.
//!
//! Owns the arithmetic of distributions (record, merge, quantiles, lossless
//! serialisation). It must not do I/O or read a clock: callers hand it
//! durations already measured. Distributions are never kept as a `Vec` of
//! samples (oha #475, k6 #763): memory stays flat however long a run is.

mod histogram;
mod metric_set;
mod series;

pub use histogram::{Histogram, HistogramError, PRESIZED_MAX, Quantiles};
pub use metric_set::{ErrorCounts, MetricSet};
pub use series::{Sample, Series};
