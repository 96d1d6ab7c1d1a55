//! The rows and lines of the trace coverage section, shared by the
//! Markdown, HTML and terminal renderers like the rest of `view`: the
//! Trace Coverage row of "Queue and Task Metrics", the "Trace Sampling"
//! line of "Observability Validation", and the detail tables (coverage by
//! phase, model and outcome; span durations; where the slowest requests'
//! time went). Pure functions of the [`Report`]; no markup.

use super::model::Report;
use super::placement::Placement;
use super::trace_model::{CoverageGroup, TraceReport};
use super::view::{Fact, NONE, Table, count, duration, fact, ms, pct, target_and_status};
use crate::metric::Metric;

/// The metrics of the fixed trace rows of "Queue and Task Metrics".
pub(crate) fn row_metrics() -> Vec<Metric> {
    vec![Metric::TraceCoverage, Metric::MissingSpans]
}

/// "Queue and Task Metrics" rows for traces: coverage, and missing spans
/// when the plan names required spans, each with the run-scope threshold
/// on it. A row without a threshold shows no status: only thresholds enter
/// the verdict. A threshold shows its row even when nothing was checked.
pub(crate) fn queue_rows(report: &Report) -> Vec<Vec<String>> {
    let placed = Placement::of(report);
    let coverage = placed.on_row(&Metric::TraceCoverage);
    let missing = placed.on_row(&Metric::MissingSpans);
    let traces = report.traces.as_ref();
    let mut rows = Vec::new();
    if traces.is_some() || coverage.is_some() {
        let value = traces
            .and_then(|t| t.coverage)
            .map_or_else(|| NONE.to_owned(), pct);
        let (target, status) = target_and_status(coverage);
        rows.push(vec![Metric::TraceCoverage.label(), value, target, status]);
    }
    let names_spans = traces.is_some_and(|t| !t.required_spans.is_empty());
    if names_spans || missing.is_some() {
        let value = traces
            .filter(|t| t.checked > 0)
            .map_or_else(|| NONE.to_owned(), |t| count(t.missing_spans));
        let (target, status) = target_and_status(missing);
        rows.push(vec![Metric::MissingSpans.label(), value, target, status]);
    }
    rows
}

/// "95%", "97.5%": a share as a plan writes it.
fn pct_short(fraction: f64) -> String {
    let text = format!("{:.2}", fraction * 100.0);
    format!("{}%", text.trim_end_matches('0').trim_end_matches('.'))
}

/// "Trace Sampling: 97.30% coverage, no missing spans" and what backs it.
pub(crate) fn observability_facts(report: &Report) -> Vec<Fact> {
    let Some(t) = &report.traces else {
        return Vec::new();
    };
    let mut facts = vec![fact("Trace Sampling", sampling_line(t))];
    facts.push(fact("Trace Look-ups", lookups_line(t)));
    if !t.missing_by_span.is_empty() {
        let names: Vec<String> = t
            .missing_by_span
            .iter()
            .map(|(name, n)| format!("{name} {}", count(*n)))
            .collect();
        let line = format!(
            "{} (traces lacking each; {} of {} found traces incomplete)",
            names.join(", "),
            count(t.traces_with_missing_spans),
            count(t.found)
        );
        facts.push(fact("Missing Spans", line));
    }
    if t.broken_links > 0 {
        let line = format!(
            "{} spans in {} traces name a parent the trace does not hold",
            count(t.broken_links),
            count(t.traces_with_broken_links)
        );
        facts.push(fact("Broken Parent Links", line));
    }
    if let Some(join) = &t.join {
        let line = format!(
            "server p50 {} / p95 {} against client service time p50 {} / p95 {}; outside the server p50 {} / p95 {} ({} traces)",
            ms(join.server_ms.p50),
            ms(join.server_ms.p95),
            ms(join.client_service_ms.p50),
            ms(join.client_service_ms.p95),
            ms(join.outside_server_ms.p50),
            ms(join.outside_server_ms.p95),
            count(join.traces)
        );
        facts.push(fact("Server vs Client Time", line));
    }
    facts
}

/// "90.12% coverage (95% CI 88.1–91.9%), 12 missing spans".
pub(crate) fn sampling_line(t: &TraceReport) -> String {
    let coverage = match t.coverage {
        Some(c) => format!("{} coverage", pct(c)),
        None => "no coverage figure (no trace could be checked)".to_owned(),
    };
    let interval = t
        .coverage_ci95
        .map(|ci| format!(" (95% CI {}–{})", pct(ci.low), pct(ci.high)))
        .unwrap_or_default();
    let missing = match t.missing_spans {
        0 => "no missing spans".to_owned(),
        1 => "1 missing span".to_owned(),
        n => format!("{} missing spans", count(n)),
    };
    let mut line = format!("{coverage}{interval}, {missing}");
    if t.missing_traces > 0 {
        line.push_str(&format!(", {} traces missing", count(t.missing_traces)));
    }
    if t.unknown > 0 {
        line.push_str(&format!(
            "; {} look-ups unknown (backend errors, not counted as missing: {})",
            count(t.unknown),
            unknown_causes(t)
        ));
    }
    line
}

fn unknown_causes(t: &TraceReport) -> String {
    let causes: Vec<String> = t
        .unknown_by_error
        .iter()
        .map(|(cause, n)| format!("{cause} {}", count(*n)))
        .collect();
    causes.join(", ")
}

/// "1,000 of 1,000 traced requests looked up, 998 answered; 100% of
/// requests carried a traceparent; Jaeger API v3 at http://…; waited 5.0s
/// for late spans; look-ups took 1.2s".
fn lookups_line(t: &TraceReport) -> String {
    let sample = if t.sampled { " (a random sample)" } else { "" };
    let mut line = format!(
        "{} of {} traced requests looked up{sample}, {} answered; {} of requests carried a traceparent; {} at {}; waited {} for late spans; look-ups took {}",
        count(t.looked_up),
        count(t.traced_requests),
        count(t.checked),
        pct_short(t.sample_fraction),
        t.backend,
        t.endpoint,
        duration(t.grace_s),
        duration(t.lookup_s)
    );
    if let Some(dropped) = t.receiver_dropped_spans.filter(|d| *d > 0) {
        line.push_str(&format!(
            "; the receiver was full and refused {} spans",
            count(dropped)
        ));
    }
    line
}

fn group_row(kind: &str, g: &CoverageGroup) -> Vec<String> {
    vec![
        format!("{kind} {}", g.name),
        count(g.checked),
        count(g.found),
        count(g.complete),
        count(g.unknown),
        g.coverage.map_or_else(|| NONE.to_owned(), pct),
    ]
}

/// Coverage by phase, model (when several) and outcome.
pub(crate) fn coverage_groups(report: &Report) -> Option<Table> {
    let t = report.traces.as_ref()?;
    let headers = [
        "Group", "Checked", "Found", "Complete", "Unknown", "Coverage",
    ];
    let mut table = Table::new(&headers);
    table
        .rows
        .extend(t.by_phase.iter().map(|g| group_row("phase", g)));
    if t.by_model.len() > 1 {
        table
            .rows
            .extend(t.by_model.iter().map(|g| group_row("model", g)));
    }
    table
        .rows
        .extend(t.by_outcome.iter().map(|g| group_row("outcome", g)));
    (!table.rows.is_empty()).then_some(table)
}

/// Server span durations by name.
pub(crate) fn span_durations(report: &Report) -> Option<Table> {
    let t = report.traces.as_ref()?;
    let mut table = Table::new(&["Span", "Count", "Mean", "p50", "p95", "Max"]);
    for s in &t.spans {
        let q = &s.duration_ms;
        table.rows.push(vec![
            s.name.clone(),
            count(q.count),
            ms(q.mean),
            ms(q.p50),
            ms(q.p95),
            ms(q.max),
        ]);
    }
    (!table.rows.is_empty()).then_some(table)
}

/// Where the slowest requests' time went, and the heading that says which.
pub(crate) fn slowest(report: &Report) -> Option<(String, Table)> {
    let b = report.traces.as_ref()?.slowest.as_ref()?;
    let heading = format!(
        "Where the time went: the {} slowest traced requests (latency ≥ {}, mean {})",
        count(b.requests),
        ms(b.latency_from_ms),
        ms(b.mean_latency_ms)
    );
    let mut table = Table::new(&["Part", "Mean", "Share of Latency"]);
    for p in &b.parts {
        table
            .rows
            .push(vec![p.name.clone(), ms(p.mean_ms), pct(p.share)]);
    }
    Some((heading, table))
}

/// The trace notes (caveats about the check itself).
pub(crate) fn notes(report: &Report) -> &[String] {
    report.traces.as_ref().map_or(&[], |t| t.notes.as_slice())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Interval;
    use std::collections::BTreeMap;

    fn traces() -> TraceReport {
        TraceReport {
            backend: "Jaeger API v3".into(),
            endpoint: "http://jaeger:16686".into(),
            sample_fraction: 1.0,
            traced_requests: 1000,
            looked_up: 1000,
            checked: 998,
            found: 900,
            complete: 890,
            missing_traces: 98,
            unknown: 2,
            unknown_by_error: BTreeMap::from([("http_503".into(), 2)]),
            coverage: Some(0.8918),
            required_spans: vec!["engine".into(), "queue".into()],
            missing_spans: 10,
            missing_by_span: BTreeMap::from([("queue".into(), 10)]),
            traces_with_missing_spans: 10,
            ..TraceReport::default()
        }
    }

    #[test]
    fn sampling_line_reads_like_the_hand_written_reports() {
        let mut t = traces();
        assert_eq!(
            sampling_line(&t),
            "89.18% coverage, 10 missing spans, 98 traces missing; 2 look-ups unknown (backend errors, not counted as missing: http_503 2)"
        );
        t = TraceReport {
            coverage: Some(0.973),
            missing_spans: 0,
            missing_traces: 0,
            unknown: 0,
            coverage_ci95: Some(Interval {
                low: 0.96,
                high: 0.98,
            }),
            ..t
        };
        assert_eq!(
            sampling_line(&t),
            "97.30% coverage (95% CI 96.00%–98.00%), no missing spans"
        );
    }

    #[test]
    fn percentages_as_a_plan_writes_them() {
        assert_eq!(pct_short(0.95), "95%");
        assert_eq!(pct_short(0.975), "97.5%");
        assert_eq!(pct_short(1.0), "100%");
    }
}
