//! CI outputs: JUnit XML (validated by xmllint against the Jenkins xunit
//! plugin's junit-10.xsd in tests/data/junit/), the GitHub step summary,
//! `report --format csv` (parsed back and compared with report.json),
//! `report --format llm-d` (validated against llm-d-benchmark's v0.2.1
//! schema, read in place from ../shared/fixtures/benchmark-report/), the
//! pre-flight check and the exit code of a run whose target never
//! answered.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use infercheck::report::{
    self, BaselineIdentity, ChangeKind, Direction, Format, Outcome, Regression, RegressionRow,
    RegressionStatus, Report, Scope, ThresholdStatus,
};
use serde_json::Value;

use crate::util::{binary, dead_address, write_plan};

const JUNIT_XSD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/junit/junit-10.xsd");
const LLMD_SCHEMA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/fixtures/benchmark-report/br_v0_2_1_json_schema.json"
);

/// Two streaming models on the embedded simulator, with a threshold that
/// passes and one that fails.
const PLAN: &str = "thresholds = ['p95(latency) < 60s', 'p99(ttft) < 1us']\n\
    [target]\nstream = true\n\
    [workload]\nmax_tokens = 8\n\
    [[models]]\nname = 'alpha'\nweight = 70\n\
    [[models]]\nname = 'beta'\nweight = 30\n\
    [[phases]]\nname = 'warm'\nduration = '1s'\nload = { type = 'constant', rate = 10 }\n\
    [[phases]]\nname = 'steady'\nduration = '2s'\nload = { type = 'constant', rate = 20 }\n";

/// One real run for every test that reads a report: the run's report as
/// infercheck wrote it to report.json.
fn real_report() -> &'static Report {
    static REPORT: OnceLock<Report> = OnceLock::new();
    REPORT.get_or_init(|| {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let (result, _dir) = runtime.block_on(crate::util::run(PLAN, None));
        let text = std::fs::read_to_string(result.dir.join("report.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    })
}

fn rendered(report: &Report, format: Format) -> String {
    let mut out = Vec::new();
    report::render(report, format, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

fn junit(report: &Report) -> String {
    let mut out = Vec::new();
    report::junit::render(report, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

// ---------------------------------------------------------------------------
// JUnit XML

/// xmllint's verdict on `xml` against the JUnit schema: Ok, or its errors.
fn xmllint_schema(xml: &str) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junit.xml");
    std::fs::write(&path, xml).unwrap();
    let out = Command::new("xmllint")
        .args(["--noout", "--schema", JUNIT_XSD])
        .arg(&path)
        .output()
        .expect("xmllint runs (Debian's libxml2-utils; scripts/test.sh installs it)");
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The value of `xpath` in `xml`, as xmllint (a real XML parser) reads it.
fn xpath(xml: &str, xpath: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junit.xml");
    std::fs::write(&path, xml).unwrap();
    let out = Command::new("xmllint")
        .args(["--xpath", xpath])
        .arg(&path)
        .output()
        .expect("xmllint runs");
    let mut value = String::from_utf8(out.stdout).unwrap();
    // xmllint ends a string result with a line break.
    if value.ends_with('\n') {
        value.pop();
    }
    value
}

fn regression_row(key: &str, status: RegressionStatus) -> RegressionRow {
    RegressionRow {
        key: key.into(),
        label: "P95 Latency".into(),
        unit: "ms".into(),
        worse: Direction::Higher,
        baseline: Some(850.0),
        now: Some(1_020.0),
        change: Some(0.2),
        change_kind: ChangeKind::Relative,
        interval: Some((0.152, 0.249)),
        tolerance: Some("+10%".into()),
        tolerance_value: Some(0.1),
        method: "bootstrap of 2,400 latencies".into(),
        status,
    }
}

/// The real run with a failing threshold whose expression needs escaping
/// and a regression against a baseline.
fn judged_report() -> Report {
    let mut r = real_report().clone();
    let mut failing = r.thresholds[0].clone();
    failing.expression = "p95(latency) < 950ms & \"steady\"".into();
    failing.scope = Scope::Phase("steady".into());
    failing.target = "< 950ms".into();
    failing.achieved_display = "1,203ms".into();
    failing.status = ThresholdStatus::Fail;
    r.thresholds.push(failing);
    r.regression = Some(Regression {
        baseline: BaselineIdentity {
            run_id: "base <1>".into(),
            path: "results/base/report.json".into(),
            ..Default::default()
        },
        selected_by: "latest-pass".into(),
        confidence: 0.95,
        replicates: 2_000,
        rows: vec![
            regression_row("p95(latency)", RegressionStatus::Regressed),
            regression_row("error_rate", RegressionStatus::WithinNoise),
            regression_row("avg(gpu_util)", RegressionStatus::NoData),
        ],
        ..Default::default()
    });
    r
}

#[test]
fn junit_of_a_real_run_validates_against_the_jenkins_schema() {
    let report = real_report();
    let xml = junit(report);
    xmllint_schema(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    // The plan's two thresholds, one met and one not (p99 TTFT < 1µs).
    assert_eq!(
        xpath(&xml, "string(//testsuite[@name='thresholds']/@tests)"),
        "2"
    );
    assert_eq!(
        xpath(&xml, "string(//testsuite[@name='thresholds']/@failures)"),
        "1"
    );
    assert_eq!(
        xpath(&xml, "string(//testsuite[@name='thresholds']/@timestamp)"),
        report.started_at
    );
    let failed = report
        .thresholds
        .iter()
        .find(|t| t.status == ThresholdStatus::Fail)
        .unwrap();
    let message = xpath(&xml, "string(//failure[@type='threshold']/@message)");
    assert_eq!(
        message,
        format!(
            "achieved {}, target {}",
            failed.achieved_display, failed.target
        )
    );
}

#[test]
fn junit_failures_carry_the_numbers_and_markup_in_expressions_survives() {
    let xml = junit(&judged_report());
    xmllint_schema(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    let case = "//testcase[@name='p95(latency) < 950ms & \"steady\" [steady]']";
    assert_eq!(
        xpath(&xml, &format!("string({case}/failure/@message)")),
        "achieved 1,203ms, target < 950ms"
    );
    assert_eq!(
        xpath(&xml, "string(//testsuite[@name='regression']/@failures)"),
        "1"
    );
    assert_eq!(
        xpath(&xml, "string(//testsuite[@name='regression']/@skipped)"),
        "1"
    );
    assert_eq!(
        xpath(&xml, "string(//failure[@type='regression']/@message)"),
        "baseline 850ms, now 1,020ms, change +20.0% (95% CI +15.2% to +24.9%), tolerance +10%"
    );
    assert_eq!(
        xpath(&xml, "string(//property[@name='baseline_run_id']/@value)"),
        "base <1>"
    );
}

#[test]
fn junit_of_a_run_that_could_not_run_validates_and_holds_an_error() {
    let mut r = real_report().clone();
    r.verdict.outcome = Outcome::Unreachable;
    r.verdict.exit_code = infercheck::exit::COULD_NOT_RUN;
    r.verdict.reasons =
        vec!["the target never answered: 20 of 20 requests failed to connect".into()];
    let xml = junit(&r);
    xmllint_schema(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    assert_eq!(
        xpath(&xml, "string(//error[@type='unreachable']/@message)"),
        "the target never answered: 20 of 20 requests failed to connect"
    );
}

/// The schema check can fail: a suite without its counts is rejected.
#[test]
fn the_junit_schema_rejects_a_suite_without_its_counts() {
    let xml = junit(real_report());
    let broken = xml.replacen(
        r#"<testsuite name="run" tests="2""#,
        r#"<testsuite name="run""#,
        1,
    );
    assert_ne!(broken, xml);
    let errors = xmllint_schema(&broken).expect_err("the broken document must fail");
    assert!(errors.contains("tests"), "{errors}");
}

// ---------------------------------------------------------------------------
// Step summary and runner::ci_outputs

#[test]
fn ci_outputs_write_junit_and_append_the_step_summary() {
    let report = judged_report();
    let dir = tempfile::tempdir().unwrap();
    let junit_path = dir.path().join("ci/reports/infercheck.xml");
    let summary = dir.path().join("step_summary.md");
    std::fs::write(&summary, "## an earlier step").unwrap();
    let run_dir = Path::new("results/run-1");
    for _ in 0..2 {
        let problems = infercheck::runner::ci_outputs::write_to(
            &report,
            run_dir,
            Some(&junit_path),
            Some(&summary),
        );
        assert_eq!(problems, Vec::<String>::new());
    }
    let xml = std::fs::read_to_string(&junit_path).unwrap();
    assert_eq!(xml, junit(&report));
    let text = std::fs::read_to_string(&summary).unwrap();
    assert!(
        text.starts_with("## an earlier step\n### ❌ FAIL"),
        "{text}"
    );
    assert_eq!(
        text.matches("### ❌ FAIL — infercheck:").count(),
        2,
        "{text}"
    );
    assert!(text.contains("Full report: `results/run-1`"), "{text}");
    assert!(
        text.contains("| p95(latency) < 950ms & \"steady\" | < 950ms | 1,203ms |"),
        "{text}"
    );
    assert!(
        text.contains("#### Regressed against baseline `base <1>`"),
        "{text}"
    );
}

#[test]
fn ci_outputs_report_what_they_could_not_write_in_words() {
    let report = real_report();
    let dir = tempfile::tempdir().unwrap();
    // A folder where the files should be: neither can be written.
    let problems = infercheck::runner::ci_outputs::write_to(
        report,
        dir.path(),
        Some(dir.path()),
        Some(dir.path()),
    );
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems[0].starts_with("cannot write the JUnit report to "),
        "{problems:?}"
    );
    assert!(
        problems[1].contains("cannot append the step summary to")
            && problems[1].contains("$GITHUB_STEP_SUMMARY"),
        "{problems:?}"
    );
}

// ---------------------------------------------------------------------------
// report --format csv

/// The value report.json holds for a CSV column of a phase or model row.
fn expected_stats_cell(row: &Value, column: &str) -> Value {
    let stats = &row["stats"];
    let quantile = |key: &str, stat: &str| stats["distributions"][key][stat].clone();
    match column {
        "name" | "load" | "start_s" | "end_s" | "model" | "weight" | "task" | "endpoint" => {
            row[column].clone()
        }
        "errors" => {
            let sum: u64 = stats["errors"]
                .as_object()
                .unwrap()
                .values()
                .map(|n| n.as_u64().unwrap())
                .sum();
            sum.into()
        }
        _ => match column.strip_suffix("_ms").and_then(|c| c.rsplit_once('_')) {
            Some((name, stat)) => quantile(&format!("{name}_ms"), stat),
            None => stats[column].clone(),
        },
    }
}

/// A CSV cell against the JSON value: equal numbers (exactly: the CSV
/// holds the shortest text of the same f64), equal text, empty for null.
fn assert_cell(cell: &str, want: &Value, what: &str) {
    match want {
        Value::Null => assert_eq!(cell, "", "{what}"),
        Value::Number(n) => {
            let got: f64 = cell
                .parse()
                .unwrap_or_else(|e| panic!("{what}: {cell:?}: {e}"));
            assert_eq!(got, n.as_f64().unwrap(), "{what}");
        }
        Value::String(s) => assert_eq!(cell, s, "{what}"),
        other => panic!("{what}: unexpected {other}"),
    }
}

fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let headers = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    let rows = reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect();
    (headers, rows)
}

fn report_json_in(dir: &Path) -> (PathBuf, Value) {
    let path = dir.join("report.json");
    std::fs::write(&path, serde_json::to_string(real_report()).unwrap()).unwrap();
    (path, serde_json::to_value(real_report()).unwrap())
}

#[test]
fn csv_tables_written_to_a_folder_hold_report_jsons_values() {
    let dir = tempfile::tempdir().unwrap();
    let (report_path, json) = report_json_in(dir.path());
    let out_dir = dir.path().join("tables");
    let out = binary()
        .args([
            "report",
            report_path.to_str().unwrap(),
            "--format",
            "csv",
            "--out",
        ])
        .arg(&out_dir)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Vec<PathBuf> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(PathBuf::from)
        .collect();
    let want: Vec<PathBuf> = ["phases.csv", "models.csv", "tasks.csv", "intervals.csv"]
        .iter()
        .map(|f| out_dir.join(f))
        .collect();
    assert_eq!(printed, want);

    for (file, key, min_rows) in [("phases.csv", "phases", 2), ("models.csv", "models", 2)] {
        let (headers, rows) = read_csv(&out_dir.join(file));
        let expected = json[key].as_array().unwrap();
        assert_eq!(rows.len(), expected.len(), "{file}");
        assert!(rows.len() >= min_rows, "{file}: {rows:?}");
        for (row, want) in rows.iter().zip(expected) {
            for (header, cell) in headers.iter().zip(row) {
                let what = format!("{file} {header}");
                assert_cell(cell, &expected_stats_cell(want, header), &what);
            }
        }
        for column in [
            "latency_p95_ms",
            "ttft_p99_ms",
            "itl_p50_ms",
            "tpot_p95_ms",
            "errors",
        ] {
            assert!(headers.iter().any(|h| h == column), "{file}: {headers:?}");
        }
    }

    let (headers, rows) = read_csv(&out_dir.join("intervals.csv"));
    let intervals = json["intervals"].as_array().unwrap();
    assert!(!intervals.is_empty());
    assert_eq!(rows.len(), intervals.len());
    let fields: Vec<&String> = intervals[0].as_object().unwrap().keys().collect();
    assert_eq!(headers.len(), fields.len(), "every field: {headers:?}");
    for (row, want) in rows.iter().zip(intervals) {
        for (header, cell) in headers.iter().zip(row) {
            assert_cell(cell, &want[header], &format!("intervals.csv {header}"));
        }
    }
}

#[test]
fn csv_on_stdout_is_three_tables_after_comment_lines() {
    let dir = tempfile::tempdir().unwrap();
    let (report_path, json) = report_json_in(dir.path());
    let out = binary()
        .args(["report", report_path.to_str().unwrap(), "--format", "csv"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    let comments: Vec<&str> = text.lines().filter(|l| l.starts_with('#')).collect();
    assert_eq!(comments, ["# phases", "# models", "# tasks", "# intervals"]);
    let phases = text.split("# models").next().unwrap();
    let mut reader = csv::ReaderBuilder::new()
        .comment(Some(b'#'))
        .from_reader(phases.as_bytes());
    let names: Vec<String> = reader.records().map(|r| r.unwrap()[0].to_owned()).collect();
    assert_eq!(names, ["warm", "steady"], "{:?}", json["phases"]);
}

#[test]
fn report_out_is_only_for_csv() {
    let dir = tempfile::tempdir().unwrap();
    let (report_path, _) = report_json_in(dir.path());
    let out = binary()
        .args([
            "report",
            report_path.to_str().unwrap(),
            "--format",
            "md",
            "--out",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(infercheck::exit::USAGE));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--out is for --format csv"));
}

// ---------------------------------------------------------------------------
// report --format llm-d

fn llmd_validator() -> jsonschema::Validator {
    let text =
        std::fs::read_to_string(LLMD_SCHEMA).unwrap_or_else(|e| panic!("{LLMD_SCHEMA}: {e}"));
    let schema: Value = serde_json::from_str(&text).unwrap();
    // The schema has no $schema keyword; llm-d's tools read it as 2020-12.
    jsonschema::draft202012::new(&schema).expect("the fixture schema compiles")
}

fn violations(validator: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    validator
        .iter_errors(instance)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect()
}

#[test]
fn llmd_report_of_a_real_run_validates_against_the_v0_2_1_schema() {
    let report = real_report();
    let doc: Value = serde_json::from_str(&rendered(report, Format::LlmD)).unwrap();
    let validator = llmd_validator();
    assert_eq!(
        violations(&validator, &doc),
        Vec::<String>::new(),
        "{doc:#}"
    );

    // The numbers are report.json's, in the units they are labelled with.
    let aggregate = &doc["results"]["request_performance"]["aggregate"];
    assert_eq!(aggregate["requests"]["total"], report.overall.requests);
    let latency = report
        .overall
        .quantiles(infercheck::stats::Distribution::Latency)
        .unwrap();
    assert_eq!(aggregate["latency"]["request_latency"]["units"], "ms");
    assert_eq!(aggregate["latency"]["request_latency"]["p95"], latency.p95);
    let itl = report
        .overall
        .quantiles(infercheck::stats::Distribution::Itl)
        .unwrap();
    assert_eq!(
        aggregate["latency"]["inter_token_latency"]["units"],
        "ms/token"
    );
    assert_eq!(aggregate["latency"]["inter_token_latency"]["p99"], itl.p99);
    assert_eq!(
        aggregate["throughput"]["request_rate"]["mean"],
        report.overall.rps
    );
    assert_eq!(doc["run"]["uid"], report.run_id);
    assert_eq!(doc["scenario"]["load"]["native"]["config"], report.plan);
    assert_eq!(
        doc["scenario"]["load"]["standardized"]["input_seq_len"]["distribution"],
        "fixed"
    );
    let series = &doc["results"]["request_performance"]["time_series"]["throughput"]["request_rate"]
        ["series"];
    assert_eq!(series.as_array().unwrap().len(), report.intervals.len());
    assert_eq!(series[0]["value"], report.intervals[0].rps);
}

/// The schema check can fail: the run's required id removed is caught.
#[test]
fn the_llmd_schema_rejects_a_report_without_a_run_id() {
    let mut doc: Value = serde_json::from_str(&rendered(real_report(), Format::LlmD)).unwrap();
    doc["run"].as_object_mut().unwrap().remove("uid");
    doc["results"]["request_performance"]["aggregate"]["latency"]["request_latency"]["units"] =
        "furlongs".into();
    let errors = violations(&llmd_validator(), &doc);
    assert_eq!(errors.len(), 2, "{errors:?}");
}

// ---------------------------------------------------------------------------
// Pre-flight and the exit code of a target that never answered

#[tokio::test]
async fn preflight_names_the_url_and_the_reason_of_a_closed_port() {
    let dead = dead_address();
    let error =
        infercheck::runner::preflight::check(&dead, Duration::from_secs(5), &Default::default())
            .await
            .expect_err("nothing listens there");
    assert_eq!(
        error,
        format!(
            "the target {dead} did not answer: GET /health: connection refused; GET /v1/models: connection refused"
        )
    );
}

#[tokio::test]
async fn preflight_takes_any_http_status_as_an_answer() {
    // No routes at all: every path is a 404.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, axum::Router::new()).await });
    let answered =
        infercheck::runner::preflight::check(&url, Duration::from_secs(5), &Default::default())
            .await;
    server.abort();
    assert_eq!(answered, Ok(()));
}

#[tokio::test]
async fn preflight_counts_a_connection_closed_without_an_answer_as_not_answering() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            drop(socket);
        }
    });
    let error =
        infercheck::runner::preflight::check(&url, Duration::from_secs(5), &Default::default())
            .await
            .expect_err("a closed connection is no answer");
    server.abort();
    assert!(
        error.starts_with(&format!("the target {url} did not answer: GET /health: ")),
        "{error}"
    );
    assert!(!error.contains("connection refused"), "{error}");
}

/// Wired in `runner::execute` before the load: a dead target is exit 3
/// (could not run) with the reason, not exit 4 (thresholds failed).
#[test]
fn run_against_a_dead_target_exits_3_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let plan = write_plan(
        dir.path(),
        "thresholds = ['error_rate < 1%']\n\
         [[phases]]\nname = 'a'\nduration = '1s'\nload = { type = 'constant', rate = 5 }\n",
    );
    let dead = dead_address();
    let out = binary()
        .args([
            "run",
            plan.to_str().unwrap(),
            "--target",
            &dead,
            "--quiet",
            "--out",
        ])
        .arg(dir.path().join("results"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(infercheck::exit::COULD_NOT_RUN),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("the target {dead} did not answer"))
            && stderr.contains("connection refused"),
        "{stderr}"
    );
}
