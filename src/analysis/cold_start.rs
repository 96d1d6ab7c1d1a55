//! Cold starts (DESIGN.md), engine-agnostic: a model's first request
//! against its steady median. A model whose earliest successful request
//! took several times its median service time (and noticeably longer) was
//! still loading; 503s answered before it are counted apart (a server that
//! refuses while it loads). "No cold starts" is this check passing for
//! every model, with the figures that show it.

use crate::aggregate::ModelStart;
use crate::report::{ColdStart, ModelReport, StatsBlock};
use crate::stats::Distribution;

/// A first request this many times the median is a cold start …
pub const RATIO: f64 = 3.0;
/// … when it is also at least this much slower (ms): a 5 ms median's
/// 20 ms first request is connection set-up, not a model load.
pub const MIN_EXTRA_MS: f64 = 250.0;

/// One entry per model that had a successful request.
pub fn cold_starts(
    starts: &[ModelStart],
    models: &[ModelReport],
    overall: &StatsBlock,
    model_names: &[String],
) -> Vec<ColdStart> {
    starts
        .iter()
        .enumerate()
        .filter_map(|(i, start)| {
            let (_, first) = start.first_ok?;
            let stats = models.get(i).map_or(overall, |m| &m.stats);
            let median = stats.quantiles(Distribution::ServiceTime)?.p50;
            let first_ms = first.as_secs_f64() * 1000.0;
            Some(ColdStart {
                model: model_names.get(i).cloned().unwrap_or_default(),
                first_request_ms: first_ms,
                median_ms: median,
                cold: first_ms > RATIO * median && first_ms - median > MIN_EXTRA_MS,
                unavailable_before_ready: start.unavailable_before_ready(),
            })
        })
        .collect()
}
