//! Coverage analysis as specifications: what counts as found, complete,
//! missing, unknown and broken, and how the slowest requests' time splits.

use super::*;
use crate::otlp::SpanStatus;

const MS: u64 = 1_000_000;

fn span(
    trace_id: u128,
    span_id: u64,
    parent: Option<u64>,
    name: &str,
    ms: (u64, u64),
) -> ReceivedSpan {
    ReceivedSpan {
        trace_id,
        span_id,
        parent_span_id: parent,
        name: name.into(),
        service_name: "sim".into(),
        start_unix_nanos: ms.0 * MS,
        end_unix_nanos: ms.1 * MS,
        status: SpanStatus::Unset,
        attributes: Vec::new(),
    }
}

/// The simulator's shape: `engine` under infercheck's client span, with
/// `queue`, `prefill` and `decode` tiling it.
fn engine_trace(trace_id: u128, drop: &[&str]) -> Vec<ReceivedSpan> {
    let client = client_span_id(trace_id);
    let all = vec![
        span(trace_id, 10, Some(client), "engine", (0, 100)),
        span(trace_id, 11, Some(10), "queue", (0, 60)),
        span(trace_id, 12, Some(10), "prefill", (60, 70)),
        span(trace_id, 13, Some(10), "decode", (70, 100)),
    ];
    all.into_iter()
        .filter(|s| !drop.contains(&s.name.as_str()))
        .collect()
}

fn required() -> Vec<String> {
    ["engine", "queue", "prefill", "decode"]
        .map(String::from)
        .to_vec()
}

fn request(trace_id: u128, phase: u16, error: Option<ErrorKind>, latency_ms: u64) -> TracedRequest {
    TracedRequest {
        trace_id,
        phase,
        model: 0,
        error,
        latency: Duration::from_millis(latency_ms),
        service_time: Duration::from_millis(latency_ms.saturating_sub(5)),
    }
}

#[test]
fn a_complete_trace_under_the_client_span_has_no_gaps() {
    let facts = examine(7, &engine_trace(7, &[]), &required()).unwrap();
    assert_eq!(facts.missing, Vec::<String>::new());
    assert_eq!(
        facts.broken_links, 0,
        "the client span named in traceparent is not absent"
    );
    assert_eq!(facts.server, Some(Duration::from_millis(100)));
    assert_eq!(facts.self_times["engine"], Duration::ZERO);
    assert_eq!(facts.self_times["queue"], Duration::from_millis(60));
}

#[test]
fn gaps_are_named_and_broken_links_counted() {
    let facts = examine(7, &engine_trace(7, &["queue"]), &required()).unwrap();
    assert_eq!(facts.missing, vec!["queue".to_owned()]);
    // The engine lost a child: its own time grows by the child's.
    assert_eq!(facts.self_times["engine"], Duration::from_millis(60));
    // Without `engine`, its children point at a span the trace lacks.
    let facts = examine(7, &engine_trace(7, &["engine"]), &required()).unwrap();
    assert_eq!(
        (facts.missing, facts.broken_links),
        (vec!["engine".to_owned()], 3)
    );
}

#[test]
fn only_server_spans_of_the_asked_trace_count() {
    let own = span(7, client_span_id(7), None, "infercheck.request", (0, 110));
    assert_eq!(
        examine(7, std::slice::from_ref(&own), &required()),
        None,
        "our own span is not an arrival"
    );
    let other = engine_trace(8, &[]);
    assert_eq!(
        examine(7, &other, &required()),
        None,
        "spans of another trace"
    );
    let mut with_own = engine_trace(7, &[]);
    with_own.push(own);
    let facts = examine(7, &with_own, &required()).unwrap();
    assert_eq!(
        (facts.broken_links, facts.server),
        (0, Some(Duration::from_millis(100)))
    );
}

#[test]
fn unknown_lookups_stay_out_of_the_coverage_figure() {
    let (phases, models) = (vec!["a".into(), "b".into()], vec!["m".into()]);
    let required = required();
    let mut coverage = Coverage::new(Names {
        required_spans: &required,
        phases: &phases,
        models: &models,
    });
    let cases: Vec<(TracedRequest, Lookup)> = vec![
        (
            request(1, 0, None, 100),
            Lookup::Found(engine_trace(1, &[])),
        ),
        (
            request(2, 0, None, 100),
            Lookup::Found(engine_trace(2, &["decode"])),
        ),
        (request(3, 1, None, 100), Lookup::Missing),
        (
            request(4, 1, Some(ErrorKind::Http5xx), 100),
            Lookup::Missing,
        ),
        (
            request(5, 1, None, 100),
            Lookup::Unknown(LookupError::Status(503)),
        ),
        (
            request(6, 1, None, 100),
            Lookup::Unknown(LookupError::Timeout),
        ),
    ];
    for (r, l) in &cases {
        coverage.add(r, l);
    }
    let report = coverage.finish(false);
    assert_eq!(
        (
            report.looked_up,
            report.checked,
            report.found,
            report.complete,
            report.missing_traces,
            report.unknown
        ),
        (6, 4, 2, 1, 2, 2)
    );
    assert_eq!(report.coverage, Some(0.25));
    assert_eq!(report.found_rate, Some(0.5));
    assert_eq!(
        report.coverage_ci95, None,
        "every traced request was checked"
    );
    assert_eq!(
        (report.missing_spans, report.traces_with_missing_spans),
        (1, 1)
    );
    assert_eq!(
        report.missing_by_span,
        BTreeMap::from([("decode".to_owned(), 1)])
    );
    assert_eq!(
        report.unknown_by_error,
        BTreeMap::from([("http_503".to_owned(), 1), ("timeout".to_owned(), 1)])
    );
    let phase = |i: usize| {
        (
            report.by_phase[i].checked,
            report.by_phase[i].complete,
            report.by_phase[i].unknown,
        )
    };
    assert_eq!((phase(0), phase(1)), ((2, 1, 0), (2, 0, 2)));
    let outcomes: Vec<(&str, u64, Option<f64>)> = report
        .by_outcome
        .iter()
        .map(|g| (g.name.as_str(), g.checked, g.coverage))
        .collect();
    assert_eq!(
        outcomes,
        vec![("http_5xx", 1, Some(0.0)), ("ok", 3, Some(1.0 / 3.0))]
    );
    let names: Vec<&str> = report.spans.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["decode", "engine", "prefill", "queue"]);
    let join = report.join.unwrap();
    assert_eq!(join.traces, 2);
    assert!(
        (join.outside_server_ms.mean - 0.0).abs() < 0.5,
        "service 95ms vs server 100ms clamps to 0"
    );
}

#[test]
fn a_sample_gets_a_wilson_interval() {
    let required: Vec<String> = Vec::new();
    let names = Names {
        required_spans: &required,
        phases: &[],
        models: &[],
    };
    let mut coverage = Coverage::new(names);
    for id in 1..=100u128 {
        let lookup = if id <= 90 {
            Lookup::Found(engine_trace(id, &[]))
        } else {
            Lookup::Missing
        };
        coverage.add(&request(id, 0, None, 10), &lookup);
    }
    let report = coverage.finish(true);
    assert_eq!(report.coverage, Some(0.9));
    let ci = report.coverage_ci95.unwrap();
    assert!(
        (ci.low - 0.8256).abs() < 1e-3 && (ci.high - 0.9448).abs() < 1e-3,
        "{ci:?}"
    );
}

#[test]
fn the_slowest_requests_time_splits_by_span_outside_and_waiting() {
    let required = required();
    let names = Names {
        required_spans: &required,
        phases: &[],
        models: &[],
    };
    let mut coverage = Coverage::new(names);
    // 19 fast requests and one slow one: the slowest 5% is that one.
    for id in 1..=19u128 {
        coverage.add(
            &request(id, 0, None, 20),
            &Lookup::Found(engine_trace(id, &[])),
        );
    }
    let slow = TracedRequest {
        latency: Duration::from_millis(150),
        service_time: Duration::from_millis(120),
        ..request(20, 0, None, 150)
    };
    coverage.add(&slow, &Lookup::Found(engine_trace(20, &[])));
    let b = coverage.finish(false).slowest.unwrap();
    assert_eq!(
        (b.requests, b.latency_from_ms, b.mean_latency_ms),
        (1, 150.0, 150.0)
    );
    let parts: Vec<(&str, f64)> = b
        .parts
        .iter()
        .map(|p| (p.name.as_str(), p.mean_ms))
        .collect();
    assert_eq!(
        parts,
        vec![
            ("queue", 60.0),
            ("decode", 30.0),
            (WAITING_TO_SEND, 30.0),
            (OUTSIDE_SERVER, 20.0),
            ("prefill", 10.0),
            ("engine", 0.0),
        ]
    );
    let total: f64 = b.parts.iter().map(|p| p.share).sum();
    assert!(
        (total - 1.0).abs() < 1e-9,
        "the parts add up to the latency: {total}"
    );
}
