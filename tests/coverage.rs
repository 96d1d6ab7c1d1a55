//! Trace coverage (issue 5): contract tests against the real Jaeger
//! fixture files in ../shared/fixtures/jaeger/ (read in place), the HTTP
//! client against a Jaeger-shaped server built from them (404, 5xx, slow
//! answers, the v1 fallback, Tempo), bounded look-ups, the `[traces]` plan
//! table, and runs end to end: simulator → embedded OTLP receiver →
//! report, and simulator → Jaeger-shaped backend → report.

mod jaeger;

use std::time::Duration;

use infercheck::cli::RunArgs;
use infercheck::otlp::ReceivedSpan;
use infercheck::plan::{Overrides, resolve_source};
use infercheck::report::{Report, ThresholdStatus, TraceReport};
use infercheck::runner::{RunResult, run_plan};
use infercheck::sim::{Faults, SimConfig};
use infercheck::trace_id::parse_trace_id;
use infercheck::traces::parse::{jaeger_v1, otlp_json};
use infercheck::traces::{
    Api, Backend, HttpBackend, Lookup, LookupError, Pace, examine, look_up_all,
};
use jaeger::{Behaviour, Flavor, JaegerServer, fixture};
use serde_json::Value;

use crate::util;

// ---------------------------------------------------------------------------
// Contract: every fixture file reads, ids compare as numbers

/// (file, spans, trace id) for every file under fixtures/jaeger/.
const FIXTURES: &[(&str, usize, Option<u128>)] = &[
    ("otlp-example_trace.json", 5, Some(jaeger::LEADING_ZEROS)),
    ("otlp-multi-in-combined.json", 4, Some(jaeger::MULTI)),
    ("otlp2jaeger-in.json", 2, Some(jaeger::OTLP2JAEGER)),
    ("v1-multi-out.json", 4, Some(jaeger::MULTI)),
    ("v1-otlp2jaeger-out.json", 2, Some(jaeger::OTLP2JAEGER)),
    ("v1-ui_01.json", 5, Some(jaeger::TRACE_ONE)),
    ("v3-FindTraceSummaries.json", 0, None),
    ("v3-FindTraces.json", 1, Some(jaeger::TRACE_ONE)),
    ("v3-GetOperations.json", 0, None),
    ("v3-GetServices.json", 0, None),
    ("v3-GetTrace.json", 1, Some(jaeger::TRACE_ONE)),
];

fn parse_fixture(name: &str) -> Vec<ReceivedSpan> {
    let body = fixture(name);
    let parsed = if name.starts_with("v1-") {
        jaeger_v1(body.as_bytes())
    } else {
        otlp_json(body.as_bytes())
    };
    parsed.unwrap_or_else(|e| panic!("{name}: {e}")).spans
}

#[test]
fn every_jaeger_fixture_is_read() {
    let dir = jaeger::fixture_path("");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let listed: Vec<&str> = FIXTURES.iter().map(|f| f.0).collect();
    assert_eq!(
        on_disk, listed,
        "every fixture file is covered by this table"
    );
    for (name, spans, trace_id) in FIXTURES {
        let parsed = parse_fixture(name);
        assert_eq!(parsed.len(), *spans, "{name}");
        if let Some(id) = trace_id {
            assert!(
                parsed.iter().all(|s| s.trace_id == *id),
                "{name}: trace ids"
            );
        }
    }
}

#[test]
fn ids_are_numbers_whatever_their_width() {
    // Jaeger v1 prints 16 hex chars when the top half of the id is zero.
    let v1 = parse_fixture("v1-ui_01.json");
    let v3 = parse_fixture("v3-GetTrace.json");
    assert_eq!(v1[0].trace_id, v3[0].trace_id);
    assert_eq!(
        parse_trace_id("0000000000000001"),
        parse_trace_id("00000000000000000000000000000001")
    );
    // Leading zeros in a 32-char OTLP id.
    let example = parse_fixture("otlp-example_trace.json");
    assert_eq!(example[0].trace_id, 0x11);
    assert_eq!(example[0].span_id, 4);
}

/// The same traces in Jaeger's v1 JSON and in OTLP JSON read the same.
#[test]
fn v1_and_otlp_fixtures_of_one_trace_agree() {
    let pairs = [
        ("v1-multi-out.json", "otlp-multi-in-combined.json"),
        ("v1-otlp2jaeger-out.json", "otlp2jaeger-in.json"),
    ];
    // v1 keeps microseconds: durations agree to within one.
    let shape = |spans: Vec<ReceivedSpan>| {
        let mut shape: Vec<(u64, Option<u64>, String, u64)> = spans
            .into_iter()
            .map(|s| {
                let micros = (s.end_unix_nanos - s.start_unix_nanos) / 1000;
                (s.span_id, s.parent_span_id, s.name, micros)
            })
            .collect();
        shape.sort();
        shape
    };
    for (v1, otlp) in pairs {
        let (a, b) = (shape(parse_fixture(v1)), shape(parse_fixture(otlp)));
        assert_eq!(a.len(), b.len(), "{v1} vs {otlp}");
        for (x, y) in a.iter().zip(&b) {
            assert_eq!((x.0, x.1, &x.2), (y.0, y.1, &y.2), "{v1} vs {otlp}");
            assert!(x.3.abs_diff(y.3) <= 1, "{v1} vs {otlp}: {x:?} {y:?}");
        }
    }
}

#[test]
fn a_reference_into_another_trace_is_a_link_not_a_broken_parent() {
    let spans = parse_fixture("v1-ui_01.json");
    let reference_test = spans.iter().find(|s| s.name == "reference-test").unwrap();
    // Its first CHILD_OF points into trace 0xff; the parent is the in-trace one.
    assert_eq!(reference_test.parent_span_id, Some(2));
    let facts = examine(1, &spans, &[]).unwrap();
    assert_eq!(facts.broken_links, 0);
    // otlp2jaeger's spans name a parent the trace does not hold.
    let facts = examine(
        jaeger::OTLP2JAEGER,
        &parse_fixture("v1-otlp2jaeger-out.json"),
        &[],
    )
    .unwrap();
    assert_eq!(facts.broken_links, 2);
}

#[test]
fn a_span_removed_from_v1_multi_out_is_detected() {
    let required: Vec<String> = ["main", "info", "ohboy.do"].map(String::from).to_vec();
    let whole = parse_fixture("v1-multi-out.json");
    let facts = examine(jaeger::MULTI, &whole, &required).unwrap();
    assert_eq!(
        (facts.missing.len(), facts.broken_links),
        (0, 0),
        "the fixture is whole"
    );

    let mut body: Value = serde_json::from_str(&fixture("v1-multi-out.json")).unwrap();
    let spans = body["data"][0]["spans"].as_array_mut().unwrap();
    spans.retain(|s| s["spanID"] != "49b8e9efa1e8a3b1"); // "info", parent of both ohboy.do
    let cut = jaeger_v1(body.to_string().as_bytes()).unwrap().spans;
    let facts = examine(jaeger::MULTI, &cut, &required).unwrap();
    assert_eq!(facts.missing, vec!["info".to_owned()]);
    assert_eq!(
        facts.broken_links, 2,
        "both children of the removed span lost their parent"
    );
}

// ---------------------------------------------------------------------------
// The HTTP client against Jaeger-shaped answers

fn behaviour(flavor: Flavor) -> Behaviour {
    Behaviour {
        flavor,
        latency: Duration::ZERO,
        synthesise: false,
    }
}

async fn client(server: &JaegerServer, api: Api, timeout: Duration) -> HttpBackend {
    let mut http = HttpBackend::new(&server.url, api, timeout).unwrap();
    assert!(http.probe().await, "the server answers the probe");
    http
}

fn span_count(lookup: &Lookup) -> Option<usize> {
    match lookup {
        Lookup::Found(spans) => Some(spans.len()),
        _ => None,
    }
}

#[tokio::test]
async fn jaeger_v3_answers_found_missing_and_unknown() {
    let server = JaegerServer::start(behaviour(Flavor::JaegerV3)).await;
    let http = client(&server, Api::JaegerV3, Duration::from_millis(500)).await;
    assert_eq!(http.api(), Api::JaegerV3);
    let found = [
        (jaeger::TRACE_ONE, 1),
        (jaeger::MULTI, 4),
        (jaeger::OTLP2JAEGER, 2),
        (jaeger::LEADING_ZEROS, 5),
    ];
    for (id, spans) in found {
        assert_eq!(span_count(&http.lookup(id).await), Some(spans), "{id:x}");
    }
    assert_eq!(
        http.lookup(0xabc).await,
        Lookup::Missing,
        "404: unknown ids are missing"
    );
    assert_eq!(
        http.lookup(jaeger::FAILING).await,
        Lookup::Unknown(LookupError::Status(503)),
        "5xx: unknown, not missing"
    );
    assert_eq!(
        http.lookup(jaeger::SLOW).await,
        Lookup::Unknown(LookupError::Timeout)
    );
    assert!(
        span_count(&http.lookup(jaeger::FLAKY).await).is_some(),
        "one retry after a 503"
    );
}

#[tokio::test]
async fn an_older_jaeger_is_asked_through_api_v1() {
    let server = JaegerServer::start(behaviour(Flavor::JaegerV1Only)).await;
    let http = client(&server, Api::JaegerV3, Duration::from_secs(2)).await;
    assert_eq!(http.api(), Api::JaegerV1, "the probe found only v1");
    assert_eq!(span_count(&http.lookup(jaeger::TRACE_ONE).await), Some(5));
    assert_eq!(span_count(&http.lookup(jaeger::MULTI).await), Some(4));
    assert_eq!(http.lookup(jaeger::LEADING_ZEROS).await, Lookup::Missing);
    // Without the probe a v3 look-up falls back per request on a bare 404.
    let unprobed = HttpBackend::new(&server.url, Api::JaegerV3, Duration::from_secs(2)).unwrap();
    assert_eq!(span_count(&unprobed.lookup(jaeger::MULTI).await), Some(4));
}

#[tokio::test]
async fn tempo_answers_batches() {
    let server = JaegerServer::start(behaviour(Flavor::Tempo)).await;
    let http = client(&server, Api::Tempo, Duration::from_secs(2)).await;
    assert_eq!(span_count(&http.lookup(jaeger::MULTI).await), Some(4));
    assert_eq!(http.lookup(0xabc).await, Lookup::Missing);
    assert_eq!(
        http.lookup(jaeger::FAILING).await,
        Lookup::Unknown(LookupError::Status(503))
    );
}

#[tokio::test]
async fn lookups_stay_within_their_concurrency() {
    let server = JaegerServer::start(Behaviour {
        latency: Duration::from_millis(5),
        synthesise: true,
        ..behaviour(Flavor::JaegerV3)
    })
    .await;
    let backend = Backend::Http(client(&server, Api::JaegerV3, Duration::from_secs(2)).await);
    let ids: Vec<u128> = (1000..1400).collect();
    let pace = Pace {
        concurrency: 8,
        rate_per_s: None,
    };
    let results = look_up_all(&backend, ids, |id| *id, pace).await;
    assert_eq!(results.len(), 400);
    let max = server
        .stats
        .max_in_flight
        .load(std::sync::atomic::Ordering::SeqCst);
    assert!((2..=8).contains(&max), "at most 8 in flight, saw {max}");
    for (id, lookup) in &results {
        let want = match id % 10 {
            0 => "missing",
            1 => "unknown",
            _ => "found",
        };
        let got = match lookup {
            Lookup::Found(_) => "found",
            Lookup::Missing => "missing",
            Lookup::Unknown(_) => "unknown",
        };
        assert_eq!(got, want, "{id}");
    }
}

#[tokio::test]
async fn lookups_keep_to_their_rate() {
    let server = JaegerServer::start(Behaviour {
        synthesise: true,
        ..behaviour(Flavor::JaegerV3)
    })
    .await;
    let backend = Backend::Http(client(&server, Api::JaegerV3, Duration::from_secs(2)).await);
    let pace = Pace {
        concurrency: 16,
        rate_per_s: Some(200.0),
    };
    let started = std::time::Instant::now();
    let ids: Vec<u128> = (2002..2102).map(|i| i * 10 + 2).collect(); // all found
    let results = look_up_all(&backend, ids, |id| *id, pace).await;
    let elapsed = started.elapsed();
    assert_eq!(results.len(), 100);
    // 100 starts at 200/s: the first at once, the last ~0.5 s later.
    assert!(elapsed >= Duration::from_millis(480), "{elapsed:?}");
}

// ---------------------------------------------------------------------------
// The plan's [traces] table

fn resolve(toml: &str) -> Result<infercheck::plan::Plan, String> {
    let plan = format!(
        "{toml}\n[[phases]]\nname = 'p'\nduration = '1s'\nload = {{ type = 'constant', rate = 1 }}\n"
    );
    resolve_source("t.toml", &plan, None, &Overrides::default()).map_err(|e| e.to_string())
}

#[test]
fn the_traces_table_is_validated_with_locations() {
    let plan = resolve(
        "[traces]\nrequired_spans = ['engine', 'queue']\nsample_fraction = 0.5\ngrace = '2s'",
    )
    .unwrap();
    let traces = plan.traces.unwrap();
    assert_eq!(traces.required_spans, ["engine", "queue"]);
    assert_eq!(
        (traces.sample_fraction, traces.grace),
        (0.5, Duration::from_secs(2))
    );
    assert_eq!(
        traces.otlp_listen.port(),
        0,
        "the embedded simulator is told any free port"
    );
    assert!(
        resolve("").unwrap().traces.is_none(),
        "no table: no traceparent"
    );
    let cases = [
        ("[traces]\nbackend = 'jaeger'", "needs `url`", "t.toml:1:1"),
        (
            "[traces]\nsample_fraction = 0",
            "sample_fraction must be in (0, 1]",
            "t.toml:2:19",
        ),
        (
            "[traces]\nbackend = 'zipkin'",
            "unknown variant `zipkin`",
            "t.toml:2:11",
        ),
        (
            "[traces]\nbackend = 'tempo'\nurl = 'ftp://x'",
            "expected http://",
            "t.toml:3:7",
        ),
        (
            "[traces]\nurl = 'http://jaeger:16686'",
            "embedded receiver takes `otlp_listen`",
            "t.toml:2:7",
        ),
        (
            "[traces]\nconcurrency = 0",
            "concurrency must be at least 1",
            "t.toml:2:15",
        ),
        (
            "[traces]\notlp_listen = 'nowhere'",
            "not an address",
            "t.toml:2:15",
        ),
        (
            "[traces]\nrequired = ['x']",
            "unknown field `required`",
            "t.toml:2:1",
        ),
        (
            "thresholds = ['trace_coverage >= 101x']",
            "expected a number",
            "t.toml:1:",
        ),
    ];
    for (toml, message, at) in cases {
        let err = resolve(toml).unwrap_err();
        assert!(err.contains(message) && err.contains(at), "{toml}:\n{err}");
    }
}

#[test]
fn otlp_listen_turns_tracing_on_with_the_embedded_receiver() {
    let plan = "[traces]\nbackend = 'jaeger'\nurl = 'http://jaeger:16686'\n\
        [[phases]]\nname = 'p'\nduration = '1s'\nload = { type = 'constant', rate = 1 }\n";
    let overrides = Overrides {
        otlp_listen: Some("127.0.0.1:4318".parse().unwrap()),
        ..Overrides::default()
    };
    let err = resolve_source("t.toml", plan, None, &overrides)
        .unwrap_err()
        .to_string();
    assert!(err.contains("embedded receiver takes"), "{err}");
    let plan = "[[phases]]\nname = 'p'\nduration = '1s'\nload = { type = 'constant', rate = 1 }\n";
    let traces = resolve_source("t.toml", plan, None, &overrides)
        .unwrap()
        .traces
        .unwrap();
    assert_eq!(traces.backend, infercheck::plan::TraceBackend::Embedded);
    assert_eq!(traces.otlp_listen.to_string(), "127.0.0.1:4318");
}

// ---------------------------------------------------------------------------
// End to end

const REQUIRED: &str = "required_spans = ['engine', 'queue', 'prefill', 'decode']";

fn traced_plan(traces: &str) -> String {
    format!(
        "name = 'traced'\nthresholds = ['trace_coverage >= 95%', 'missing_spans == 0']\n\
         [target]\nstream = false\ntimeout = '10s'\n[workload]\nmax_tokens = 4\n\
         [traces]\n{traces}\n\
         [[phases]]\nname = 'one'\nduration = '1500ms'\nload = {{ type = 'constant', rate = 300 }}\n\
         [[phases]]\nname = 'two'\nduration = '1500ms'\nload = {{ type = 'constant', rate = 300 }}\n"
    )
}

/// Runs `toml` against the embedded simulator configured as `sim`.
async fn run_with_simulator(toml: &str, sim: SimConfig) -> (RunResult, tempfile::TempDir) {
    let _held = util::exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let plan = util::write_plan(dir.path(), toml);
    let mut args = RunArgs::new(plan.to_str().unwrap(), dir.path().join("results"));
    args.simulator = Some(Box::new(sim));
    let result = run_plan(args)
        .await
        .unwrap_or_else(|f| panic!("run failed: {}", f.message));
    (result, dir)
}

fn dropping(faults: Faults) -> SimConfig {
    SimConfig {
        faults,
        ..util::exact_sim(2, 1)
    }
}

fn traces(report: &Report) -> &TraceReport {
    report
        .traces
        .as_ref()
        .expect("the report has a trace section")
}

fn threshold(report: &Report, expression: &str) -> ThresholdStatus {
    report
        .thresholds
        .iter()
        .find(|t| t.expression == expression)
        .unwrap_or_else(|| panic!("{expression} was judged"))
        .status
}

fn read(dir: &std::path::Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file)).unwrap()
}

/// The simulator drops 10% of its traces; the embedded receiver sees 90%.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coverage_matches_the_simulators_trace_drop_rate() {
    let sim = dropping(Faults {
        trace_drop_rate: 0.1,
        ..Faults::default()
    });
    let (result, _dir) = run_with_simulator(&traced_plan(REQUIRED), sim).await;
    let report = &result.report;
    let t = traces(report);
    assert_eq!(report.overall.requests, 900);
    assert_eq!((t.traced_requests, t.looked_up, t.unknown), (900, 900, 0));
    assert_eq!(t.backend, "embedded OTLP receiver");
    let coverage = t.coverage.unwrap();
    assert!((coverage - 0.90).abs() <= 0.03, "coverage {coverage}");
    assert_eq!(t.found, t.complete, "whole traces dropped, none cut");
    assert_eq!((t.missing_spans, t.broken_links), (0, 0));
    assert_eq!(t.by_phase.len(), 2);
    assert!(
        t.by_phase
            .iter()
            .all(|g| g.checked == 450 && g.coverage.unwrap() > 0.85)
    );
    assert_eq!(
        t.by_outcome
            .iter()
            .map(|g| g.name.as_str())
            .collect::<Vec<_>>(),
        ["ok"]
    );
    assert_eq!(t.spans.len(), 4, "engine, queue, prefill, decode");
    let join = t.join.as_ref().unwrap();
    assert!(
        join.server_ms.p50 <= join.client_service_ms.p50 + 1.0,
        "{join:?}"
    );
    assert!(t.slowest.as_ref().is_some_and(|s| !s.parts.is_empty()));
    assert_eq!(
        threshold(report, "trace_coverage >= 95%"),
        ThresholdStatus::Fail
    );
    assert_eq!(
        threshold(report, "missing_spans == 0"),
        ThresholdStatus::Pass
    );
    assert_eq!(result.exit_code, infercheck::exit::THRESHOLDS_FAILED);

    let md = read(&result.dir, "report.md");
    let pct = format!("{:.2}%", coverage * 100.0);
    assert!(
        md.contains(&format!("| Trace Coverage | {pct} | >= 95% | ❌ FAIL |")),
        "{md}"
    );
    assert!(
        md.contains(&format!(
            "- **Trace Sampling**: {pct} coverage, no missing spans"
        )),
        "{md}"
    );
    assert!(md.contains("## Observability Validation"));
    let html = read(&result.dir, "report.html");
    assert!(html.contains("Trace Sampling") && html.contains("Queue and Task Metrics"));
    check_schema(&read(&result.dir, "report.json"));
}

/// The simulator drops 10% of its child spans: every trace arrives, and
/// the missing spans are named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_spans_are_counted_by_name() {
    let sim = dropping(Faults {
        span_drop_rate: 0.1,
        ..Faults::default()
    });
    let (result, _dir) = run_with_simulator(&traced_plan(REQUIRED), sim).await;
    let t = traces(&result.report);
    assert_eq!((t.checked, t.found), (900, 900));
    for name in ["queue", "prefill", "decode"] {
        let n = t.missing_by_span.get(name).copied().unwrap_or(0) as f64 / 900.0;
        assert!((n - 0.10).abs() <= 0.03, "{name}: {n}");
    }
    assert!(
        !t.missing_by_span.contains_key("engine"),
        "the engine span is never dropped"
    );
    assert_eq!(t.missing_spans, t.missing_by_span.values().sum::<u64>());
    // A trace is complete when none of its three children was dropped.
    let coverage = t.coverage.unwrap();
    assert!((coverage - 0.729).abs() <= 0.03, "coverage {coverage}");
    assert_eq!(
        t.broken_links, 0,
        "children point at the engine span, which is kept"
    );
    assert_eq!(
        threshold(&result.report, "missing_spans == 0"),
        ThresholdStatus::Fail
    );
    let md = read(&result.dir, "report.md");
    assert!(
        md.contains(&format!("{} missing spans", t.missing_spans)),
        "{md}"
    );
    assert!(md.contains("- **Missing Spans**: decode "), "{md}");
}

/// A sample of the traced requests, looked up in a Jaeger-shaped backend
/// that answers 404 for a tenth of them and 503 for another tenth.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jaeger_backend_is_sampled_and_its_errors_are_unknown() {
    let server = JaegerServer::start(Behaviour {
        synthesise: true,
        ..behaviour(Flavor::JaegerV3)
    })
    .await;
    let toml = traced_plan(&format!(
        "backend = 'jaeger'\nurl = '{}'\ngrace = '0s'\nmax_lookups = 400\nconcurrency = 4\nsample_fraction = 0.8",
        server.url
    ));
    let (result, _dir) = run_with_simulator(&toml, util::exact_sim(2, 1)).await;
    let t = traces(&result.report);
    assert_eq!(t.backend, "Jaeger API v3");
    assert!(
        (t.traced_requests as f64 / 900.0 - 0.8).abs() < 0.06,
        "{}",
        t.traced_requests
    );
    assert_eq!((t.looked_up, t.sampled), (400, true));
    let unknown = t.unknown as f64 / 400.0;
    assert!((0.03..=0.18).contains(&unknown), "unknown {unknown}");
    assert_eq!(t.unknown_by_error.get("http_503"), Some(&t.unknown));
    assert_eq!(t.checked + t.unknown, 400);
    let coverage = t.coverage.unwrap();
    assert!(
        (coverage - 8.0 / 9.0).abs() < 0.07,
        "missing ids count, unknown ones do not: {coverage}"
    );
    let ci = t.coverage_ci95.unwrap();
    assert!(ci.low < coverage && coverage < ci.high);
    let max = server
        .stats
        .max_in_flight
        .load(std::sync::atomic::Ordering::SeqCst);
    assert!(max <= 4, "at most 4 look-ups in flight, saw {max}");
    let md = read(&result.dir, "report.md");
    assert!(
        md.contains("look-ups unknown (backend errors, not counted as missing: http_503"),
        "{md}"
    );
}

fn check_schema(json: &str) {
    let schema = crate::report::strict(crate::report::schema());
    let validator = jsonschema::draft202012::new(&schema).unwrap();
    let instance: Value = serde_json::from_str(json).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&instance)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert_eq!(errors, Vec::<String>::new());
}
