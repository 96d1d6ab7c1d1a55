//! Coverage analysis: pure functions from (traced request, look-up result)
//! pairs to the report's [`TraceReport`] figures — coverage overall, per
//! phase, per model and per outcome; required spans missing by name;
//! spans whose parent is absent; the join of each trace with its request
//! (server spans against client time) and where the slowest requests'
//! time went. No I/O, no clock.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use super::jaeger::{Lookup, LookupError};
use super::sample::{Z_95, wilson};
use crate::otlp::ReceivedSpan;
use crate::outcome::ErrorKind;
use crate::report::{
    CoverageGroup, Interval, SpanTiming, TimeBreakdown, TimePart, TraceJoin, TraceReport,
};
use crate::stats::Histogram;
use crate::trace_id::client_span_id;

/// Share of the traced requests, by latency, that count as the slowest.
const SLOWEST_SHARE: f64 = 0.05;
pub const OUTSIDE_SERVER: &str = "outside the server";
pub const WAITING_TO_SEND: &str = "waiting to be sent";

/// What infercheck knows of a request that carried a `traceparent`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TracedRequest {
    pub trace_id: u128,
    pub phase: u16,
    pub model: u16,
    pub error: Option<ErrorKind>,
    /// From the intended send time.
    pub latency: Duration,
    /// From the actual send.
    pub service_time: Duration,
}

impl TracedRequest {
    fn outcome_name(&self) -> &'static str {
        self.error.map_or("ok", ErrorKind::name)
    }
}

/// What a found trace showed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TraceFacts {
    /// Required span names the trace lacks.
    pub missing: Vec<String>,
    /// Spans whose parent is not in the trace.
    pub broken_links: u64,
    /// The longest top-level server span (parent absent or infercheck's
    /// client span).
    pub server: Option<Duration>,
    /// Each span's duration, by name, in trace order.
    pub durations: Vec<(String, Duration)>,
    /// Time each span name spent outside its children, summed per name.
    pub self_times: BTreeMap<String, Duration>,
}

/// Examines the spans a backend returned for `trace_id`. `None` when none
/// of them is a server span of this trace (only infercheck's own client
/// span, or spans of other traces): the trace did not arrive.
pub fn examine(trace_id: u128, spans: &[ReceivedSpan], required: &[String]) -> Option<TraceFacts> {
    let own = client_span_id(trace_id);
    let spans: Vec<&ReceivedSpan> = spans
        .iter()
        .filter(|s| s.trace_id == trace_id && s.span_id != own)
        .collect();
    if spans.is_empty() {
        return None;
    }
    let ids: HashSet<u64> = spans.iter().map(|s| s.span_id).collect();
    let names: HashSet<&str> = spans.iter().map(|s| s.name.as_str()).collect();
    let mut children: HashMap<u64, Duration> = HashMap::new();
    for span in &spans {
        if let Some(parent) = span.parent_span_id {
            *children.entry(parent).or_default() += duration(span);
        }
    }
    let mut facts = TraceFacts {
        missing: required
            .iter()
            .filter(|r| !names.contains(r.as_str()))
            .cloned()
            .collect(),
        ..TraceFacts::default()
    };
    for span in &spans {
        let parent_present = span.parent_span_id.map(|p| ids.contains(&p));
        if parent_present == Some(false) && span.parent_span_id != Some(own) {
            facts.broken_links += 1;
        }
        if parent_present != Some(true) {
            facts.server = facts.server.max(Some(duration(span)));
        }
        let own_time =
            duration(span).saturating_sub(children.get(&span.span_id).copied().unwrap_or_default());
        *facts.self_times.entry(span.name.clone()).or_default() += own_time;
        facts.durations.push((span.name.clone(), duration(span)));
    }
    Some(facts)
}

fn duration(span: &ReceivedSpan) -> Duration {
    Duration::from_nanos(span.end_unix_nanos.saturating_sub(span.start_unix_nanos))
}

/// Counts of one group.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Counts {
    checked: u64,
    found: u64,
    complete: u64,
    unknown: u64,
}

impl Counts {
    fn add(&mut self, result: &Classified) {
        match result {
            Classified::Unknown(_) => self.unknown += 1,
            Classified::Missing => self.checked += 1,
            Classified::Found(facts) => {
                self.checked += 1;
                self.found += 1;
                self.complete += u64::from(facts.missing.is_empty());
            }
        }
    }

    fn group(&self, name: &str) -> CoverageGroup {
        CoverageGroup {
            name: name.to_owned(),
            checked: self.checked,
            found: self.found,
            complete: self.complete,
            unknown: self.unknown,
            coverage: ratio(self.complete, self.checked),
        }
    }
}

fn ratio(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

enum Classified {
    Found(TraceFacts),
    Missing,
    Unknown(LookupError),
}

/// A found trace joined with its request, kept for the slowest-requests
/// breakdown (bounded by the number of look-ups).
struct Joined {
    latency: Duration,
    service_time: Duration,
    server: Option<Duration>,
    self_times: BTreeMap<String, Duration>,
}

/// Names for the groups.
#[derive(Clone, Copy, Debug)]
pub struct Names<'a> {
    pub required_spans: &'a [String],
    pub phases: &'a [String],
    pub models: &'a [String],
}

/// Folds look-up results into the report's figures.
pub struct Coverage<'a> {
    names: Names<'a>,
    total: Counts,
    phases: Vec<Counts>,
    models: Vec<Counts>,
    outcomes: BTreeMap<&'static str, Counts>,
    unknown_by_error: BTreeMap<String, u64>,
    missing_by_span: BTreeMap<String, u64>,
    traces_with_missing_spans: u64,
    broken_links: u64,
    traces_with_broken_links: u64,
    span_durations: BTreeMap<String, Histogram>,
    join: [Histogram; 3],
    joined: Vec<Joined>,
}

impl<'a> Coverage<'a> {
    pub fn new(names: Names<'a>) -> Coverage<'a> {
        Coverage {
            names,
            total: Counts::default(),
            phases: vec![Counts::default(); names.phases.len()],
            models: vec![Counts::default(); names.models.len()],
            outcomes: BTreeMap::new(),
            unknown_by_error: BTreeMap::new(),
            missing_by_span: BTreeMap::new(),
            traces_with_missing_spans: 0,
            broken_links: 0,
            traces_with_broken_links: 0,
            span_durations: BTreeMap::new(),
            join: Default::default(),
            joined: Vec::new(),
        }
    }

    /// Adds one traced request and what its look-up answered.
    pub fn add(&mut self, request: &TracedRequest, lookup: &Lookup) {
        let classified = match lookup {
            Lookup::Unknown(error) => Classified::Unknown(*error),
            Lookup::Missing => Classified::Missing,
            Lookup::Found(spans) => {
                match examine(request.trace_id, spans, self.names.required_spans) {
                    Some(facts) => Classified::Found(facts),
                    None => Classified::Missing,
                }
            }
        };
        self.count(request, &classified);
        match classified {
            Classified::Unknown(error) => {
                *self.unknown_by_error.entry(error.name()).or_default() += 1
            }
            Classified::Found(facts) => self.add_found(request, facts),
            Classified::Missing => {}
        }
    }

    fn count(&mut self, request: &TracedRequest, classified: &Classified) {
        self.total.add(classified);
        if let Some(c) = self.phases.get_mut(usize::from(request.phase)) {
            c.add(classified);
        }
        if let Some(c) = self.models.get_mut(usize::from(request.model)) {
            c.add(classified);
        }
        self.outcomes
            .entry(request.outcome_name())
            .or_default()
            .add(classified);
    }

    fn add_found(&mut self, request: &TracedRequest, facts: TraceFacts) {
        if !facts.missing.is_empty() {
            self.traces_with_missing_spans += 1;
        }
        for name in &facts.missing {
            *self.missing_by_span.entry(name.clone()).or_default() += 1;
        }
        self.broken_links += facts.broken_links;
        self.traces_with_broken_links += u64::from(facts.broken_links > 0);
        for (name, span) in &facts.durations {
            self.span_durations
                .entry(name.clone())
                .or_default()
                .record_duration(*span);
        }
        if let Some(server) = facts.server {
            let [client, server_h, outside] = &mut self.join;
            client.record_duration(request.service_time);
            server_h.record_duration(server);
            outside.record_duration(request.service_time.saturating_sub(server));
        }
        self.joined.push(Joined {
            latency: request.latency,
            service_time: request.service_time,
            server: facts.server,
            self_times: facts.self_times,
        });
    }

    /// The report's figures; the caller fills in where and how the
    /// look-ups were made (backend, endpoint, grace, timings, sampling).
    pub fn finish(mut self, sampled: bool) -> TraceReport {
        let t = self.total;
        let coverage = ratio(t.complete, t.checked);
        let coverage_ci95 = sampled
            .then(|| wilson(t.complete, t.checked, Z_95))
            .flatten()
            .map(|(low, high)| Interval { low, high });
        let slowest = slowest(&mut self.joined);
        TraceReport {
            looked_up: t.checked + t.unknown,
            sampled,
            checked: t.checked,
            found: t.found,
            complete: t.complete,
            missing_traces: t.checked - t.found,
            unknown: t.unknown,
            coverage,
            coverage_ci95,
            found_rate: ratio(t.found, t.checked),
            required_spans: self.names.required_spans.to_vec(),
            missing_spans: self.missing_by_span.values().sum(),
            traces_with_missing_spans: self.traces_with_missing_spans,
            broken_links: self.broken_links,
            traces_with_broken_links: self.traces_with_broken_links,
            by_phase: groups(self.names.phases, &self.phases),
            by_model: groups(self.names.models, &self.models),
            by_outcome: self
                .outcomes
                .iter()
                .map(|(name, c)| c.group(name))
                .collect(),
            spans: self
                .span_durations
                .iter()
                .filter_map(|(name, h)| {
                    Some(SpanTiming {
                        name: name.clone(),
                        duration_ms: h.quantiles(1000.0)?,
                    })
                })
                .collect(),
            join: join(&self.join),
            slowest,
            unknown_by_error: self.unknown_by_error,
            missing_by_span: self.missing_by_span,
            ..TraceReport::default()
        }
    }
}

fn groups(names: &[String], counts: &[Counts]) -> Vec<CoverageGroup> {
    names
        .iter()
        .zip(counts)
        .map(|(name, c)| c.group(name))
        .collect()
}

fn join(histograms: &[Histogram; 3]) -> Option<TraceJoin> {
    let [client, server, outside] = histograms;
    Some(TraceJoin {
        traces: client.len(),
        client_service_ms: client.quantiles(1000.0)?,
        server_ms: server.quantiles(1000.0)?,
        outside_server_ms: outside.quantiles(1000.0)?,
    })
}

/// The slowest [`SLOWEST_SHARE`] of the found traces (at least one): mean
/// time per span name (own time), outside the server, and waiting to be
/// sent, as shares of their mean latency.
fn slowest(joined: &mut [Joined]) -> Option<TimeBreakdown> {
    if joined.is_empty() {
        return None;
    }
    joined.sort_by_key(|j| std::cmp::Reverse(j.latency));
    let n = ((joined.len() as f64 * SLOWEST_SHARE).ceil() as usize).clamp(1, joined.len());
    let top = &joined[..n];
    let mut totals: BTreeMap<&str, Duration> = BTreeMap::new();
    for request in top {
        for (name, own) in &request.self_times {
            *totals.entry(name.as_str()).or_default() += *own;
        }
        if let Some(server) = request.server {
            *totals.entry(OUTSIDE_SERVER).or_default() +=
                request.service_time.saturating_sub(server);
        }
        *totals.entry(WAITING_TO_SEND).or_default() +=
            request.latency.saturating_sub(request.service_time);
    }
    let mean_latency_ms = ms(top.iter().map(|r| r.latency).sum::<Duration>()) / n as f64;
    let mut parts: Vec<TimePart> = totals
        .into_iter()
        .map(|(name, total)| {
            let mean_ms = ms(total) / n as f64;
            TimePart {
                name: name.to_owned(),
                mean_ms,
                share: if mean_latency_ms > 0.0 {
                    mean_ms / mean_latency_ms
                } else {
                    0.0
                },
            }
        })
        .collect();
    parts.sort_by(|a, b| {
        b.mean_ms
            .total_cmp(&a.mean_ms)
            .then_with(|| a.name.cmp(&b.name))
    });
    Some(TimeBreakdown {
        requests: n as u64,
        latency_from_ms: ms(top[n - 1].latency),
        mean_latency_ms,
        parts,
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests;
