//! OTLP trace export for the simulator (owned by the tracing work; stub).
#![allow(dead_code)]

use super::timeline::Timeline;

/// A parsed W3C `traceparent` header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TraceParent {
    pub trace_id: u128,
    pub parent_span_id: u64,
    pub sampled: bool,
}

impl TraceParent {
    /// Parses `00-<32 hex>-<16 hex>-<2 hex>`; `None` when malformed.
    pub fn parse(_header: &str) -> Option<TraceParent> {
        None
    }
}

/// Fractions of spans and of whole traces the exporter drops on purpose.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct SpanDrops {
    pub span_rate: f64,
    pub trace_rate: f64,
}

/// The simulator's span exporter; disabled when no endpoint is configured.
#[derive(Debug, Default)]
pub(crate) struct Tracing {}

impl Tracing {
    /// Exports the engine's spans for one finished request: `engine` (server
    /// span, child of `parent` when given) with children `queue`, `prefill`
    /// and `decode`. `seq` seeds the drop draws.
    pub fn export(&self, _parent: Option<TraceParent>, _timeline: &Timeline, _drops: SpanDrops) {}
}
