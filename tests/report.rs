//! Integration tests: report renderers, on runs taken through the real
//! path (`fixture`: a resolved plan, engine events folded by the real
//! aggregator, sampled values and trace look-ups through their real
//! analyses, `analysis::build_report`). Every renderer is pinned by golden
//! files in tests/golden/<case>/ — report.md, report.html, report.json and
//! summary.txt; regenerate with INFERCHECK_BLESS=1 and review the diff. A
//! change in the aggregator or the analysis (a verdict, a threshold's
//! status, a figure) fails them. HTML is also checked at the parse level,
//! JSON by round trip and against docs/report-schema.json.

mod fixture;

use std::path::PathBuf;

use fixture::{cases, invalid_case, sweep_case};
use infercheck::metric::Family;
use infercheck::report::{self, Format, Report, Scope, ThresholdStatus};

/// The mark a status gets in a table cell.
fn mark(status: ThresholdStatus) -> &'static str {
    match status {
        ThresholdStatus::Pass => "✅ PASS",
        ThresholdStatus::Fail => "❌ FAIL",
        ThresholdStatus::NoData => "⚠️ NO DATA",
    }
}

fn render(report: &Report, format: Format) -> String {
    let mut out = Vec::new();
    report::render(report, format, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

fn summary_text(report: &Report) -> String {
    let mut out = Vec::new();
    report::render_summary(report, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

/// Compares `actual` with tests/golden/<case>/<file>; with
/// INFERCHECK_BLESS=1 rewrites the file instead (review the diff).
fn golden(case: &str, file: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(case)
        .join(file);
    if std::env::var("INFERCHECK_BLESS").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run with INFERCHECK_BLESS=1 to create it",
            path.display()
        )
    });
    if expected != actual {
        let line = expected
            .lines()
            .zip(actual.lines())
            .position(|(e, a)| e != a)
            .unwrap_or(expected.lines().count().min(actual.lines().count()));
        panic!(
            "{} differs at line {}:\n  expected: {:?}\n  actual:   {:?}\nrerun with INFERCHECK_BLESS=1 and review the diff",
            path.display(),
            line + 1,
            expected.lines().nth(line),
            actual.lines().nth(line)
        );
    }
}

/// The Markdown under `heading`, up to the next heading of the same or a
/// higher level.
fn section(markdown: &str, heading: &str) -> String {
    let level = heading.chars().take_while(|c| *c == '#').count();
    let start = markdown
        .find(heading)
        .unwrap_or_else(|| panic!("no {heading:?} in:\n{markdown}"));
    let mut lines = markdown[start..].lines();
    let mut out = format!("{}\n", lines.next().unwrap());
    for line in lines {
        let depth = line.chars().take_while(|c| *c == '#').count();
        if depth > 0 && depth <= level && line.chars().nth(depth) == Some(' ') {
            break;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

// ---------------------------------------------------------------------------
// Markdown and terminal: golden files

#[test]
fn markdown_matches_golden_files() {
    for (case, report) in cases() {
        golden(case, "report.md", &render(&report, Format::Markdown));
    }
}

#[test]
fn html_matches_golden_files() {
    for (case, report) in cases() {
        golden(case, "report.html", &render(&report, Format::Html));
    }
}

/// The whole model, histograms included: a change in what the aggregator
/// records or the analysis judges shows here first.
#[test]
fn json_matches_golden_files() {
    for (case, report) in cases() {
        golden(case, "report.json", &render(&report, Format::Json));
    }
}

#[test]
fn summary_matches_golden_files() {
    for (case, report) in cases() {
        golden(case, "summary.txt", &summary_text(&report));
    }
}

#[test]
fn summary_fits_100_columns_even_with_long_text() {
    let mut long = sweep_case();
    long.plan_name = "a-plan-name-that-goes-on-and-on-".repeat(4);
    long.verdict.reasons.push("word ".repeat(60));
    long.thresholds[0].label = "P95 Tokens/s per Request over a very long scope".to_owned();
    long.phases[0].load = "closed 500 users, think 1s–3s, with a long description".to_owned();
    for report in [sweep_case(), invalid_case(), long] {
        let text = summary_text(&report);
        for line in text.lines() {
            assert!(
                line.chars().count() <= 100,
                "{} chars: {line}",
                line.chars().count()
            );
        }
    }
}

#[test]
fn summary_shows_verdict_rates_latency_streaming_thresholds_and_generator() {
    let text = summary_text(&sweep_case());
    for needle in [
        "FAIL (exit 4)",
        "target 10 req/s",
        "(from intended send)",
        "service time p95",
        "Client distributions",
        "TTFT (service) ",
        "ITL ",
        "TPOT ",
        "NO DATA",
        "PASS ",
        "timeout ",
        "http_5xx ",
        "of 2 cores",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
    }
    let text = summary_text(&invalid_case());
    assert!(
        text.contains("INVALID (exit 5)") && text.contains("CPU-bound"),
        "{text}"
    );
    assert!(
        !text.contains("TTFT"),
        "no TTFT row without streaming:\n{text}"
    );
}

/// Every threshold of the plan shows in every format, once each in the
/// place `placement` gives it, and the rows without a threshold carry no
/// status: only thresholds enter the verdict.
#[test]
fn every_threshold_shows_in_every_format_with_its_status() {
    let report = sweep_case();
    let md = render(&report, Format::Markdown);
    let html = render(&report, Format::Html);
    let terminal = summary_text(&report);
    // Markdown: one mark per threshold in the tables (the verdict line has
    // its own ❌ FAIL, without a trailing cell).
    let cells = |text: &str| {
        ["| ✅ PASS |", "| ❌ FAIL |", "| ⚠️ NO DATA |"]
            .iter()
            .map(|m| text.matches(m).count())
            .sum::<usize>()
    };
    assert_eq!(cells(&md), report.thresholds.len(), "{md}");
    let html_cells = [
        "class=\"pass\">✅ PASS</td>",
        "class=\"fail\">❌ FAIL</td>",
        "class=\"warn\">⚠️ NO DATA</td>",
    ]
    .iter()
    .map(|m| html.matches(m).count())
    .sum::<usize>();
    assert_eq!(html_cells, report.thresholds.len());
    let lines = terminal
        .lines()
        .skip_while(|l| *l != "Thresholds")
        .filter(|l| {
            ["  PASS ", "  FAIL ", "  NO DATA "]
                .iter()
                .any(|w| l.starts_with(w))
        })
        .count();
    assert_eq!(lines, report.thresholds.len(), "{terminal}");
    // The two thresholds of the issue, with target, achieved and status.
    let other = section(&md, "### Other Thresholds");
    for name in ["kv_usage", "router_backlog"] {
        let t = report
            .thresholds
            .iter()
            .find(|t| t.expression.starts_with(&format!("max({name})")))
            .unwrap();
        let row = format!(
            "| {} | {} | {} | {} |",
            t.label,
            t.target,
            t.achieved_display,
            mark(t.status)
        );
        assert!(other.contains(&row), "{row} in {other}");
    }
    // A fixed row takes its threshold; one without shows no status.
    let resources = section(&md, "### System Resource Utilization");
    assert!(
        resources.contains("| < 80% | ✅ PASS |") || resources.contains("| < 80% | ❌ FAIL |"),
        "{resources}"
    );
    assert!(
        resources.contains("| Memory (System) | 52.00% | — | — |"),
        "{resources}"
    );
}

#[test]
fn trace_coverage_shows_a_status_only_with_a_threshold() {
    let coverage = |report: &Report| {
        format!(
            "{:.2}%",
            report.traces.as_ref().unwrap().coverage.unwrap() * 100.0
        )
    };
    let sweep = sweep_case();
    let with = section(
        &render(&sweep, Format::Markdown),
        "### Queue and Task Metrics",
    );
    let t = sweep
        .thresholds
        .iter()
        .find(|t| t.expression.starts_with("trace_coverage"))
        .unwrap();
    let row = format!(
        "| Trace Coverage | {} | >= 95% | {} |",
        coverage(&sweep),
        mark(t.status)
    );
    assert!(with.contains(&row), "{row} in {with}");
    let smoke = invalid_case();
    let without = section(
        &render(&smoke, Format::Markdown),
        "### Queue and Task Metrics",
    );
    let row = format!("| Trace Coverage | {} | — | — |", coverage(&smoke));
    assert!(without.contains(&row), "{row} in {without}");
}

#[test]
fn markdown_http_metrics_take_targets_from_run_scope_thresholds() {
    let md = render(&sweep_case(), Format::Markdown);
    let http = section(&md, "### HTTP Metrics");
    assert!(
        http.contains("intended send time (coordinated-omission corrected)"),
        "{http}"
    );
    assert!(http.contains("| Metric | Target | Achieved | Status |"));
    let rows: Vec<&str> = http
        .lines()
        .filter(|l| l.starts_with("| "))
        .skip(2)
        .collect();
    let labels: Vec<&str> = rows
        .iter()
        .map(|r| r.split(" | ").next().unwrap().trim_start_matches("| "))
        .collect();
    // More than 1 % failed: latency over every request shows beside it.
    let want = [
        "P50 Latency",
        "P95 Latency",
        "P99 Latency",
        "P50 Latency (all requests)",
        "P95 Latency (all requests)",
        "P99 Latency (all requests)",
        "P95 Service Time",
        "Error Rate",
        "Timeout Rate",
        "Peak QPS",
        "Achieved QPS",
        "P95 TTFT",
        "P95 ITL",
        "P99 TPOT",
    ];
    assert_eq!(
        labels, want,
        "fixed rows, then the run-scope thresholds not shown yet"
    );
    let row = |label: &str| {
        rows.iter()
            .find(|r| r.starts_with(&format!("| {label} |")))
            .unwrap()
            .to_string()
    };
    // Each run-scope request threshold fills its row's Target and Status.
    let report = sweep_case();
    let request_thresholds = report
        .thresholds
        .iter()
        .filter(|t| t.scope == Scope::Run && t.metric.family() == Family::Requests);
    for t in request_thresholds {
        let r = row(&t.label);
        assert!(
            r.starts_with(&format!("| {} | {} |", t.label, t.target))
                && r.ends_with(&format!("| {} |", mark(t.status))),
            "{r} for {t:?}"
        );
    }
    assert!(
        row("P50 Latency").starts_with("| P50 Latency | — |")
            && row("P50 Latency").ends_with("| — |"),
        "a row without a threshold has no status"
    );
    // Phase thresholds stay in their phase: the warmup's "< 1s" is not a run row.
    assert!(!http.contains("< 2%") || http.contains("| Timeout Rate | < 2% |"));
    assert!(section(&md, "### Phase 1: warmup").contains("| P95 Latency | < 1s |"));
}

#[test]
fn markdown_sweep_table_has_the_shape_of_examples_001() {
    let md = render(&sweep_case(), Format::Markdown);
    let phase = section(&md, "### Phase 2: sweep (1m, sweep concurrency 4, 8, 16)");
    let table: Vec<&str> = phase
        .lines()
        .skip_while(|l| !l.starts_with("| Concurrency"))
        .take_while(|l| l.starts_with('|'))
        .collect();
    assert_eq!(
        table[0],
        "| Concurrency | RPS | p95 Latency (s) | Avg GPU Util % | Max Mem (MiB) | Max Queue | Max KV % | Errors |"
    );
    assert_eq!(
        table[1],
        "| :--- | :--- | :--- | :--- | :--- | :--- | :--- | :--- |"
    );
    assert_eq!(table.len(), 5, "{table:?}");
    for (row, level) in table[2..].iter().zip(["4", "8", "16"]) {
        let cells: Vec<&str> = row.trim_matches('|').split('|').map(str::trim).collect();
        assert_eq!(cells[0], level);
        assert!(
            cells[1].contains('.') && cells[1].split('.').nth(1).unwrap().len() == 2,
            "RPS with 2 decimals: {row}"
        );
        assert!(
            cells[2].parse::<f64>().is_ok_and(|s| s > 0.1 && s < 5.0),
            "p95 in seconds: {row}"
        );
        // From the sampled series within the step's window.
        assert!(
            cells[3].parse::<f64>().is_ok_and(|u| u > 0.0 && u <= 100.0)
                && cells[4]
                    .replace(',', "")
                    .parse::<f64>()
                    .is_ok_and(|m| m > 1000.0),
            "GPU util % and memory MiB: {row}"
        );
    }
    let warmup = section(&md, "### Phase 1: warmup");
    assert!(
        !warmup.contains("| Concurrency |"),
        "one-step phases have no sweep table"
    );
}

#[test]
fn markdown_has_every_section_of_a_full_run() {
    let md = render(&sweep_case(), Format::Markdown);
    let headings = [
        "# infercheck report — staging-sweep",
        "## Executive Summary",
        "## Performance Results",
        "### HTTP Metrics",
        "### Errors",
        "### System Resource Utilization",
        "### Queue and Task Metrics",
        "### Other Thresholds",
        "### Client Distributions",
        "## Inference Engine Analysis",
        "## Test Phases",
        "### Phase 1: warmup (30s, constant 10 req/s)",
        "#### Stress Sweep (64-token outputs)",
        "## Streaming UX",
        "## Latency Drivers",
        "## Saturation",
        "## Steadiness",
        "## Per-Model Breakdown",
        "### Model Thresholds",
        "## Observability Validation",
        "### Trace Coverage by Group",
        "### Server Spans",
        "## Generator Health",
        "## Notes",
    ];
    let mut at = 0;
    for heading in headings {
        let found = md[at..]
            .find(&format!("{heading}\n"))
            .unwrap_or_else(|| panic!("{heading:?} missing or out of order"));
        at += found;
    }
    assert!(md.contains("(embedded simulator)"));
    assert!(
        section(&md, "### Errors").contains("| timeout |")
            && section(&md, "### Errors").contains("| http_5xx |")
    );
    assert!(section(&md, "## Streaming UX").contains("| Metric | Average | p95 | Best Case |"));
    let report = sweep_case();
    let missed = report
        .thresholds
        .iter()
        .filter(|t| t.status != ThresholdStatus::Pass)
        .count();
    let verdict = format!(
        "- **Overall Result**: ❌ FAIL — {missed} of {} thresholds not met",
        report.thresholds.len()
    );
    assert!(
        section(&md, "## Executive Summary").contains(&verdict),
        "{verdict}"
    );
    // Every distribution of the table with data has a row.
    let distributions = section(&md, "### Client Distributions");
    for d in infercheck::stats::Distribution::ALL {
        assert!(
            distributions.contains(&format!("| {} | ", d.spec().label)),
            "{d:?} in {distributions}"
        );
    }
}

#[test]
fn markdown_leaves_out_sections_without_data() {
    let md = render(&invalid_case(), Format::Markdown);
    for absent in [
        "### Errors",
        "## Streaming UX",
        "## Per-Model Breakdown",
        "### System Resource Utilization",
        "### Other Thresholds",
        "#### Stress Sweep",
    ] {
        assert!(!md.contains(absent), "{absent:?} in:\n{md}");
    }
    assert!(md.contains("- **Overall Result**: ⚠️ INVALID"));
    assert!(section(&md, "## Generator Health").contains("CPU-bound"));
}

#[test]
fn markdown_escapes_html_and_pipes_from_the_model() {
    let mut report = invalid_case();
    report.plan_name = "<script>alert(1)</script>".to_owned();
    report
        .notes
        .push("a | b <img src=x onerror=alert(1)>".to_owned());
    let md = render(&report, Format::Markdown);
    assert!(!md.contains("<script") && !md.contains("<img"), "{md}");
    assert!(md.contains("# infercheck report — &lt;script>alert(1)&lt;/script>"));
    assert!(md.contains("- a \\| b &lt;img"));
}

// ---------------------------------------------------------------------------
// HTML: parse-level checks

/// Checks that every element opened is closed, in order, the way an HTML
/// parser would need it for this page (no optional end tags are used).
fn assert_well_formed(html: &str) {
    const VOID: [&str; 4] = ["meta", "br", "hr", "img"];
    let mut open: Vec<String> = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        let end = rest[start..].find('>').expect("every tag ends") + start;
        let tag = &rest[start + 1..end];
        rest = &rest[end + 1..];
        if tag.starts_with('!') {
            continue;
        }
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        if let Some(closing) = tag.strip_prefix('/') {
            assert_eq!(
                open.pop().as_deref(),
                Some(closing),
                "</{closing}> closes something else"
            );
        } else if !tag.ends_with('/') && !VOID.contains(&name.as_str()) {
            open.push(name);
        }
    }
    assert!(open.is_empty(), "never closed: {open:?}");
}

#[test]
fn html_is_one_well_formed_self_contained_page() {
    for (case, report) in cases() {
        let html = render(&report, Format::Html);
        assert!(
            html.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"),
            "{case}"
        );
        assert!(
            html.contains("<meta charset=\"utf-8\">") && html.contains("<style>"),
            "{case}"
        );
        assert_well_formed(&html);
        // Nothing is fetched: no scripts, stylesheets, fonts, images or links.
        for banned in [
            "<script", "<link", "<img", "<iframe", "src=", "href=", "url(", "@import", "=\"http",
            "='http",
        ] {
            assert!(!html.contains(banned), "{case}: {banned:?} found");
        }
    }
}

#[test]
fn html_has_the_markdown_tables() {
    let html = render(&sweep_case(), Format::Html);
    let tables = [
        "<th>Metric</th><th>Target</th><th>Achieved</th><th>Status</th>",
        "<th>Error Kind</th><th>Requests</th><th>Share of Requests</th>",
        "<th>Concurrency</th><th>RPS</th><th>p95 Latency (s)</th><th>Avg GPU Util %</th><th>Max Mem (MiB)</th>",
        "<th>Metric</th><th>Average</th><th>p95</th><th>Best Case</th>",
        "<th>Model</th><th>Weight</th><th>Requests</th>",
    ];
    for header in tables {
        assert!(html.contains(header), "{header}");
    }
    let report = sweep_case();
    let p95 = report
        .overall
        .quantiles(infercheck::stats::Distribution::Latency)
        .unwrap()
        .p95;
    assert!(html.contains(&format!(
        "<td>P95 Latency</td><td>&lt; 1.5s</td><td>{:.0}ms</td><td class=\"pass\">✅ PASS</td>",
        p95
    )));
    assert!(
        html.contains("<td class=\"fail\">❌ FAIL</td>")
            && html.contains("<td class=\"warn\">⚠️ NO DATA</td>")
    );
    assert!(html.contains("intended send time (coordinated-omission corrected)"));
    for heading in [
        "Executive Summary",
        "Test Phases",
        "Streaming UX",
        "Per-Model Breakdown",
        "Generator Health",
        "Notes",
    ] {
        assert!(html.contains(&format!("<h2>{heading}</h2>")), "{heading}");
    }
}

#[test]
fn html_draws_latency_throughput_and_sweep_charts() {
    let report = sweep_case();
    let html = render(&report, Format::Html);
    let svgs: Vec<&str> = html
        .split("<svg ")
        .skip(1)
        .map(|s| &s[..s.find("</svg>").unwrap()])
        .collect();
    let titled = |title: &str| -> &str {
        svgs.iter()
            .find(|s| s.contains(&format!("<title>{title}")))
            .unwrap_or_else(|| panic!("no chart titled {title:?}"))
    };
    let charts = [
        ("Latency over time", "run time (s)", "latency (ms)"),
        ("Throughput over time", "run time (s)", "requests/s"),
        ("Server over time: GPU", "run time (s)", "percent"),
        ("Server over time: requests", "run time (s)", "requests"),
        (
            "sweep: p95 latency vs concurrency",
            "concurrency",
            "p95 latency (s)",
        ),
        ("latency p95 against", "server value", "client value"),
    ];
    assert_eq!(svgs.len(), charts.len());
    for (title, x, y) in charts {
        let svg = titled(title);
        assert!(
            svg.contains(&format!(">{x}</text>")) && svg.contains(&format!(">{y}</text>")),
            "{title}: {x} / {y}"
        );
    }
    // One polyline per run of seconds with data, for each of p50/p95/p99:
    // a second without a successful request is a gap, never a zero.
    let runs = |pick: fn(&infercheck::report::IntervalSummary) -> Option<f64>| {
        let present: Vec<bool> = report.intervals.iter().map(|i| pick(i).is_some()).collect();
        present.split(|p| !p).filter(|run| run.len() > 1).count()
    };
    let lines =
        runs(|i| i.latency_p50_ms) + runs(|i| i.latency_p95_ms) + runs(|i| i.latency_p99_ms);
    let latency = titled("Latency over time");
    assert_eq!(
        latency.matches("<polyline").count(),
        lines,
        "p50, p95, p99, split at gaps"
    );
    assert!(latency.contains(">sweep</text>"), "phase bounds are marked");
    assert!(
        titled("Throughput over time").contains("stroke-width=\"2\" stroke-dasharray"),
        "the target rate is drawn dashed"
    );
    let sweep = titled("sweep: p95 latency vs concurrency");
    assert_eq!(
        sweep.matches("<circle").count(),
        3,
        "one dot per sweep level"
    );
    let driver = titled("latency p95 against");
    assert!(
        !driver.contains("<polyline") && driver.matches("<circle").count() > 50,
        "a scatter"
    );
    let one_phase = render(&invalid_case(), Format::Html);
    assert_eq!(
        one_phase.matches("<svg ").count(),
        2,
        "no sweep, no samples, no driver: latency and throughput only"
    );
}

#[test]
fn html_escapes_every_text_from_the_model() {
    let mut report = sweep_case();
    report.plan_name = "<script>alert(\"x\")</script>".to_owned();
    report.phases[1].name = "sweep <b>&</b>".to_owned();
    report.notes.push("<img src=x onerror=alert(1)>".to_owned());
    report.verdict.reasons.push("'quoted' <i>".to_owned());
    let html = render(&report, Format::Html);
    for raw in ["<script", "<b>", "<img", "<i>"] {
        assert!(!html.contains(raw), "{raw} not escaped");
    }
    let title = "infercheck report — &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;";
    assert!(
        html.contains(&format!("<title>{title}</title>"))
            && html.contains(&format!("<h1>{title}</h1>"))
    );
    assert!(
        html.contains("sweep &lt;b&gt;&amp;&lt;/b&gt;: p95 latency vs concurrency"),
        "chart titles too"
    );
    assert!(html.contains("<li>&#39;quoted&#39; &lt;i&gt;</li>"));
    assert_well_formed(&html);
}

// ---------------------------------------------------------------------------
// JSON: the lossless contract

#[test]
fn json_round_trips_to_an_equal_report() {
    for (case, report) in cases() {
        let json = render(&report, Format::Json);
        assert!(
            json.ends_with("}\n"),
            "{case}: pretty JSON with a trailing newline"
        );
        let back: Report = serde_json::from_slice(json.as_bytes()).unwrap();
        assert_eq!(back, report, "{case}");
        let latency = back
            .overall
            .histogram(infercheck::stats::Distribution::Latency)
            .unwrap()
            .unwrap();
        assert_eq!(
            latency.len(),
            report.overall.ok,
            "{case}: histograms survive the trip"
        );
    }
}

pub(crate) fn schema() -> serde_json::Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/report-schema.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The published schema lets readers ignore unknown fields (adding an
/// optional field does not bump schema_version); this copy forbids them,
/// so a field added to the model but not documented fails the test.
pub(crate) fn strict(mut schema: serde_json::Value) -> serde_json::Value {
    fn close(node: &mut serde_json::Value) {
        match node {
            serde_json::Value::Object(map) => {
                if map.contains_key("properties") && !map.contains_key("additionalProperties") {
                    map.insert("additionalProperties".to_owned(), false.into());
                }
                map.values_mut().for_each(close);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(close),
            _ => {}
        }
    }
    close(&mut schema);
    schema
}

fn violations(validator: &jsonschema::Validator, instance: &serde_json::Value) -> Vec<String> {
    validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

#[test]
fn json_matches_the_documented_schema() {
    let schema = schema();
    jsonschema::meta::validate(&schema).expect("docs/report-schema.json is valid draft 2020-12");
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    let validator = jsonschema::draft202012::new(&strict(schema)).unwrap();
    for (case, report) in cases() {
        let json: serde_json::Value = serde_json::from_str(&render(&report, Format::Json)).unwrap();
        assert_eq!(
            violations(&validator, &json),
            Vec::<String>::new(),
            "{case}"
        );
    }
}

#[test]
fn json_schema_rejects_what_the_model_cannot_hold() {
    let validator = jsonschema::draft202012::new(&strict(schema())).unwrap();
    let good: serde_json::Value =
        serde_json::from_str(&render(&sweep_case(), Format::Json)).unwrap();
    type Breakage = fn(&mut serde_json::Value);
    let breakages: [(&str, Breakage); 6] = [
        ("no schema_version", |r| {
            _ = r.as_object_mut().unwrap().remove("schema_version")
        }),
        ("another schema_version", |r| r["schema_version"] = 3.into()),
        ("an unknown outcome", |r| {
            r["verdict"]["outcome"] = "great".into()
        }),
        ("an open-ended error kind", |r| {
            r["overall"]["errors"]["connection refused"] = 1.into()
        }),
        ("a NaN written as null", |r| {
            r["summary"]["peak_rps"] = serde_json::Value::Null
        }),
        ("an undocumented field", |r| r["overall"]["p42"] = 1.into()),
    ];
    for (what, breakage) in breakages {
        let mut bad = good.clone();
        breakage(&mut bad);
        assert!(
            !violations(&validator, &bad).is_empty(),
            "the schema accepts {what}"
        );
    }
}

// ---------------------------------------------------------------------------
// The API the runner and the CLI call

#[test]
fn format_names_parse_and_errors_list_the_choices() {
    let cases = [
        ("json", Format::Json),
        ("md", Format::Markdown),
        ("markdown", Format::Markdown),
        ("HTML", Format::Html),
    ];
    for (name, want) in cases {
        assert_eq!(name.parse::<Format>().unwrap(), want, "{name}");
    }
    let err = "pdf".parse::<Format>().unwrap_err().to_string();
    assert!(
        err.contains("`pdf`") && err.contains("json, md, markdown, html"),
        "{err}"
    );
    let ext = [Format::Json, Format::Markdown, Format::Html].map(Format::extension);
    assert_eq!(ext, ["json", "md", "html"]);
}

#[test]
fn render_writes_the_format_it_is_asked_for() {
    let report = invalid_case();
    assert!(render(&report, Format::Json).starts_with("{\n  \"schema_version\": 2,"));
    assert!(render(&report, Format::Markdown).starts_with("# infercheck report — smoke\n"));
    assert!(render(&report, Format::Html).starts_with("<!DOCTYPE html>"));
}
