//! The report's trace coverage section (`report.json` → `traces`): which
//! of the traced requests' traces reached the trace backend, complete, and
//! where the slowest requests spent their time. Plain serde data like the
//! rest of [`super::model`]; computed by `traces::coverage`.
//!
//! Vocabulary (DESIGN.md): *coverage* is the share of checked requests
//! whose trace was found with every required span. A look-up the backend
//! could not answer is *unknown*: it is left out of the coverage figure
//! and counted on its own, never counted as missing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::stats::Quantiles;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TraceReport {
    /// "embedded OTLP receiver", "Jaeger API v3", "Jaeger API v1" or "Tempo".
    pub backend: String,
    /// The receiver's OTLP endpoint or the backend's base URL.
    pub endpoint: String,
    /// Share of requests that carried a `traceparent` (the plan's
    /// `sample_fraction`).
    pub sample_fraction: f64,
    /// Requests that carried a `traceparent`.
    pub traced_requests: u64,
    /// Trace ids asked about (a random sample when fewer than traced).
    pub looked_up: u64,
    /// True when `looked_up` is a random sample of the traced requests;
    /// `coverage_ci95` then bounds the run's coverage.
    pub sampled: bool,
    /// Look-ups the backend answered (found + missing traces).
    pub checked: u64,
    /// Traces found with at least one span from the server.
    pub found: u64,
    /// Traces found with every required span.
    pub complete: u64,
    /// Traces the backend does not have.
    pub missing_traces: u64,
    /// Look-ups the backend could not answer (errors, timeouts).
    pub unknown: u64,
    /// Unknown look-ups by cause, e.g. "http_503", "timeout".
    pub unknown_by_error: BTreeMap<String, u64>,
    /// complete / checked; `None` when nothing was checked.
    pub coverage: Option<f64>,
    /// Wilson 95 % interval of the coverage (sampled runs only).
    pub coverage_ci95: Option<Interval>,
    /// found / checked.
    pub found_rate: Option<f64>,
    /// Span names every trace must hold (the plan's `required_spans`).
    pub required_spans: Vec<String>,
    /// Required spans absent from found traces, summed over names.
    pub missing_spans: u64,
    /// Found traces lacking each required span name.
    pub missing_by_span: BTreeMap<String, u64>,
    pub traces_with_missing_spans: u64,
    /// Spans whose parent is absent from their trace (infercheck's own
    /// client span, named in the `traceparent`, is not absent).
    pub broken_links: u64,
    pub traces_with_broken_links: u64,
    pub by_phase: Vec<CoverageGroup>,
    pub by_model: Vec<CoverageGroup>,
    /// By request outcome: "ok" or an error kind.
    pub by_outcome: Vec<CoverageGroup>,
    /// Durations of the found spans, by name.
    pub spans: Vec<SpanTiming>,
    /// Client-measured time against the server's own spans.
    pub join: Option<TraceJoin>,
    /// Where the time of the slowest traced requests went.
    pub slowest: Option<TimeBreakdown>,
    /// Seconds waited after the load for late spans.
    pub grace_s: f64,
    /// Seconds the look-ups took.
    pub lookup_s: f64,
    /// Spans the embedded receiver refused because it was full.
    pub receiver_dropped_spans: Option<u64>,
    /// Caveats, e.g. the backend's API was not detected.
    pub notes: Vec<String>,
}

/// A closed interval of fractions.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
}

/// Coverage of one group of traced requests (a phase, a model, an outcome).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CoverageGroup {
    pub name: String,
    pub checked: u64,
    pub found: u64,
    pub complete: u64,
    pub unknown: u64,
    pub coverage: Option<f64>,
}

/// The durations of one span name over the found traces, in milliseconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpanTiming {
    pub name: String,
    pub duration_ms: Quantiles,
}

/// Traced requests joined with their traces: the client's service time
/// (from the actual send) against the server's top span, and what lies
/// outside the server (network, proxies, the client itself).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TraceJoin {
    pub traces: u64,
    pub client_service_ms: Quantiles,
    pub server_ms: Quantiles,
    pub outside_server_ms: Quantiles,
}

/// The slowest traced requests (by latency from the intended send), their
/// time split by span name (each span's own time, without its children's),
/// time outside the server, and time waiting to be sent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimeBreakdown {
    pub requests: u64,
    /// The latency from which a request counts among the slowest.
    pub latency_from_ms: f64,
    pub mean_latency_ms: f64,
    pub parts: Vec<TimePart>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimePart {
    /// A span name, "outside the server" or "waiting to be sent".
    pub name: String,
    pub mean_ms: f64,
    /// mean_ms / mean latency.
    pub share: f64,
}
