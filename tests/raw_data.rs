//! The run folder's raw data (issue 13, "Raw Data"): runs end to end, and
//! what they leave beside the report read back.
//!
//! - scraping `/metrics` directly: `raw/metrics.txt.gz` holds every body
//!   scraped, each one the exposition parser reads, in time order per URL;
//!   `run.log` holds the announcements and the summary, every line after a
//!   wall-clock time; the Raw Data section lists each file at its size on
//!   disk, and report.json's `raw_data` is what the schema documents;
//! - with trace checking: `raw/spans.otlp.json.gz` holds the spans of every
//!   trace the look-ups found, readable as OTLP JSON;
//! - with a real Prometheus: `raw/prometheus.jsonl.gz` holds one line per
//!   sampled query's series, the values Prometheus gives for that query.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::Path;

use infercheck::report::{RawFile, RawKind, Report};
use infercheck::sample::exposition;
use serde_json::Value;

use crate::util;
use crate::util::prometheus::Prometheus;

/// How a scrape's header line starts in raw/metrics.txt.gz.
const SCRAPE_HEADER: &str = "# infercheck-scrape ";

fn gunzip(path: &Path) -> Vec<u8> {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(file)
        .read_to_end(&mut out)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    out
}

/// The scrapes of raw/metrics.txt.gz: each header, and its body (`None`
/// for a scrape that failed).
fn scrapes(bytes: &[u8]) -> Vec<(Value, Option<String>)> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let end = rest
            .iter()
            .position(|b| *b == b'\n')
            .expect("a header line");
        let line = std::str::from_utf8(&rest[..end]).unwrap();
        let json = line
            .strip_prefix(SCRAPE_HEADER)
            .unwrap_or_else(|| panic!("not a scrape header: {line}"));
        let header: Value = serde_json::from_str(json).unwrap();
        rest = &rest[end + 1..];
        let body = header["bytes"].as_u64().map(|n| {
            let n = n as usize;
            let body = String::from_utf8(rest[..n].to_vec()).unwrap();
            assert_eq!(rest[n], b'\n', "a newline ends each body");
            rest = &rest[n + 1..];
            body
        });
        out.push((header, body));
    }
    out
}

fn raw_file(report: &Report, kind: RawKind) -> &RawFile {
    report
        .raw_data
        .iter()
        .find(|f| f.kind == kind)
        .unwrap_or_else(|| panic!("no {kind:?} in {:#?}", report.raw_data))
}

/// The Raw Data table of report.md: (path, bytes) per row.
fn raw_rows(md: &str) -> Vec<(String, u64)> {
    let section = md
        .split("## Raw Data")
        .nth(1)
        .unwrap_or_else(|| panic!("no Raw Data section in\n{md}"));
    section
        .lines()
        .take_while(|l| !l.starts_with("## "))
        .filter(|l| l.starts_with("| ") && !l.starts_with("| File") && !l.starts_with("| :--"))
        .map(|l| {
            let cells: Vec<&str> = l.split(" | ").map(|c| c.trim_matches(['|', ' '])).collect();
            let bytes = cells[2].trim_end_matches(" bytes").replace(',', "");
            (cells[0].to_owned(), bytes.parse().unwrap())
        })
        .collect()
}

/// Every file the Raw Data section lists is on disk at the size it says,
/// and report.json's `raw_data` is what docs/report-schema.json documents.
fn check_listing(report: &Report, dir: &Path) {
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    let rows = raw_rows(&md);
    assert_eq!(rows.len(), report.raw_data.len(), "{md}");
    for (path, bytes) in rows {
        let on_disk = std::fs::metadata(dir.join(&path))
            .unwrap_or_else(|e| panic!("{path}: {e}"))
            .len();
        assert_eq!(bytes, on_disk, "{path}");
    }
    let schema = crate::report::strict(crate::report::schema());
    let validator = jsonschema::draft202012::new(&schema).unwrap();
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&json)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert_eq!(errors, Vec::<String>::new());
}

/// Scraping the embedded simulator's /metrics (and its DCGM exporter)
/// directly: every body is kept and parses, run.log has every line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrapes_and_the_run_log_are_kept_beside_the_report() {
    let plan = "name = 'raw'\n[target]\nstream = false\n[workload]\nmax_tokens = 4\n\
                [observe]\ninterval = '250ms'\n\
                [[phases]]\nname = 'load'\nduration = '2s'\nload = { type = 'constant', rate = 20 }\n";
    let (result, _tmp) = util::run(plan, None).await;
    let (report, dir) = (&result.report, &result.dir);

    let scraped = raw_file(report, RawKind::MetricsScrapes);
    assert_eq!(scraped.path, "raw/metrics.txt.gz");
    let all = scrapes(&gunzip(&dir.join(&scraped.path)));
    assert_eq!(all.len() as u64, scraped.records);
    let mut by_url: BTreeMap<String, Vec<chrono::DateTime<chrono::FixedOffset>>> = BTreeMap::new();
    for (header, body) in &all {
        let body = body
            .as_deref()
            .unwrap_or_else(|| panic!("a failed scrape: {header}"));
        let parsed = exposition::parse(body).unwrap_or_else(|e| panic!("{header}: {e}"));
        assert!(!parsed.samples.is_empty(), "{header}");
        let at = chrono::DateTime::parse_from_rfc3339(header["at"].as_str().unwrap()).unwrap();
        let url = header["url"].as_str().unwrap().to_owned();
        by_url.entry(url).or_default().push(at);
    }
    assert_eq!(
        by_url.len(),
        2,
        "the target and its DCGM exporter: {by_url:?}"
    );
    for (url, times) in &by_url {
        // The baseline, then one every 250 ms over 2 s and the drain.
        assert!(times.len() >= 6, "{url}: {} scrapes", times.len());
        assert!(times.windows(2).all(|w| w[0] < w[1]), "{url}: {times:?}");
    }

    let log = std::fs::read_to_string(dir.join("run.log")).unwrap();
    let entry = raw_file(report, RawKind::RunLog);
    assert_eq!(entry.records, log.lines().count() as u64);
    for line in log.lines() {
        let (at, _) = line.split_once(' ').unwrap_or((line, ""));
        assert!(
            chrono::DateTime::parse_from_rfc3339(at).is_ok(),
            "no time on: {line}"
        );
    }
    for want in [
        "infercheck: plan raw against http://",
        "Client distributions (see report.md for definitions)",
    ] {
        assert!(log.contains(want), "{want} missing from run.log:\n{log}");
    }

    let intervals = raw_file(report, RawKind::Intervals);
    let lines = std::fs::read_to_string(dir.join("intervals.jsonl")).unwrap();
    assert_eq!(intervals.records, lines.lines().count() as u64);
    check_listing(report, dir);
}

/// With trace checking against the embedded OTLP receiver, the spans the
/// look-ups found are kept as OTLP JSON, one trace a line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spans_the_lookups_found_are_kept_as_otlp_json() {
    let plan = "name = 'raw-traces'\n[target]\nstream = false\n[workload]\nmax_tokens = 4\n\
                [traces]\nrequired_spans = ['engine']\n\
                [[phases]]\nname = 'load'\nduration = '1500ms'\nload = { type = 'constant', rate = 40 }\n";
    let (result, _tmp) = util::run(plan, None).await;
    let (report, dir) = (&result.report, &result.dir);
    let traces = report.traces.as_ref().expect("a trace section");
    assert!(traces.found > 20, "{traces:?}");

    let kept = raw_file(report, RawKind::Spans);
    assert_eq!(kept.path, "raw/spans.otlp.json.gz");
    let text = String::from_utf8(gunzip(&dir.join(&kept.path))).unwrap();
    assert_eq!(
        text.lines().count() as u64,
        traces.found,
        "one line per trace"
    );
    let spans = infercheck::traces::parse::otlp_json(text.as_bytes())
        .unwrap()
        .spans;
    assert_eq!(spans.len() as u64, kept.records);
    let ids: std::collections::BTreeSet<u128> = spans.iter().map(|s| s.trace_id).collect();
    assert_eq!(ids.len() as u64, traces.found);
    for line in text.lines() {
        let data: Value = serde_json::from_str(line).unwrap();
        let span = &data["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
        for field in [
            "traceId",
            "spanId",
            "name",
            "startTimeUnixNano",
            "endTimeUnixNano",
        ] {
            assert!(span[field].is_string(), "{field} in {line}");
        }
    }
    assert!(spans.iter().any(|s| s.name == "engine"));
    check_listing(report, dir);
}

/// Sampling from a real Prometheus: every sampled query's series over the
/// run's window is exported, one line each, with the values Prometheus
/// gives for that query.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prometheus_run_exports_every_sampled_series() {
    let held = util::exclusive().await;
    let server = util::sim(util::exact_sim(10, 5)).await;
    let prometheus = Prometheus::start(&[("sim", server.addr())]).await;
    prometheus.wait_for_scrapes("sim", 2).await;
    let plan = format!(
        "name = 'raw-prom'\n[target]\nstream = false\n[workload]\nmax_tokens = 8\n\
         [observe]\nprometheus = '{}'\ndrain_timeout = '0s'\n\
         [[phases]]\nname = 'load'\nduration = '3s'\nload = {{ type = 'constant', rate = 20 }}\n",
        prometheus.url()
    );
    let (result, _tmp) = util::run_holding(&held, &plan, Some(&server.base_url())).await;
    let (report, dir) = (&result.report, &result.dir);
    assert!(
        !dir.join("raw/metrics.txt.gz").exists(),
        "nothing was scraped"
    );

    let export = raw_file(report, RawKind::PrometheusExport);
    assert_eq!(export.path, "raw/prometheus.jsonl.gz");
    let text = String::from_utf8(gunzip(&dir.join(&export.path))).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|l: &Value| l.get("error").is_none())
        .collect();
    assert_eq!(lines.len() as u64, export.records);
    let exported: std::collections::BTreeSet<&str> =
        lines.iter().map(|l| l["name"].as_str().unwrap()).collect();
    let observed = report.observed.as_ref().expect("an observed section");
    let sampled = observed.values.iter().filter(|v| v.source == "prometheus");
    for value in sampled.filter(|v| v.value.is_some()) {
        assert!(
            exported.contains(value.name.as_str()),
            "{} was sampled but not exported: {exported:?}",
            value.name
        );
    }
    // The longest series reads as Prometheus answers its query.
    let longest = lines
        .iter()
        .max_by_key(|l| l["values"].as_array().unwrap().len())
        .unwrap();
    let values = longest["values"].as_array().unwrap();
    assert!(values.len() >= 3, "{longest}");
    let (t, v) = (
        values[values.len() - 1][0].as_f64().unwrap(),
        &values[values.len() - 1][1],
    );
    let labels: BTreeMap<String, String> =
        serde_json::from_value(longest["metric"].clone()).unwrap();
    let answer = prometheus
        .query_at(longest["query"].as_str().unwrap(), t)
        .await;
    let same = answer.iter().find(|(l, _)| *l == labels).map(|(_, x)| *x);
    assert_eq!(
        same,
        Some(v.as_str().unwrap().parse::<f64>().unwrap()),
        "{longest} vs {answer:?}"
    );
    check_listing(report, dir);
    server.stop().await;
}
