//! Statistics: fixed-memory HDR histograms, the table of client-side
//! distributions (`distribution`), the per-group metric sets built from
//! them, and the arithmetic analysis uses on series: rank correlation with
//! a lag search (`correlation`), robust trends and power fits (`trend`),
//! the knee of a curve (`knee`), goodness of fit of a split (`goodness`).
//!
//! Owns the arithmetic of distributions (record, merge, quantiles, lossless
//! serialisation). It must not do I/O or read a clock: callers hand it
//! durations already measured. Distributions are never kept as a `Vec` of
//! samples (oha #475, k6 #763): memory stays flat however long a run is.

pub mod bootstrap;
pub mod correlation;
pub mod distribution;
pub mod goodness;
mod histogram;
pub mod knee;
mod metric_set;
pub mod series;
pub mod slo;
pub mod trend;

pub use distribution::Distribution;
pub use histogram::{Histogram, HistogramError, PRESIZED_MAX, Quantiles};
pub use metric_set::{ErrorCounts, MetricSet};
pub use series::{Aggregate, Sample, Series, SeriesStats};
pub use slo::{Slo, SloBound};
