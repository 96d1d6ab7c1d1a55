//! `--prometheus-remote-write`: a short real run against the embedded
//! simulator sends its per-second client series and its headline results
//! to a real Prometheus (its remote-write receiver on), where they read
//! back as the run's own intervals.jsonl, one point a second, labelled
//! with the run id; and an endpoint that is down changes nothing of the
//! run but a note.

use std::process::Child;
use std::time::Duration;

use infercheck::cli::RunArgs;
use infercheck::report::{IntervalSummary, Outcome, Report};
use infercheck::runner::{RunResult, run_plan};
use infercheck::stats::Distribution;
use serde_json::Value;
use tokio::time::Instant;

use crate::util::prometheus::{free_port, spawn};
use crate::util::{dead_address, exclusive, write_plan};

/// Five seconds of constant load: five per-second points of each series.
const PLAN: &str = r#"
name = "remote-write"
thresholds = ["error_rate < 50%"]

[workload]
max_tokens = 8

[[phases]]
name = "steady"
duration = "5s"
load = { type = "constant", rate = 10 }
"#;

/// The sender leaves out a last interval shorter than this
/// (runner::remote_write's MIN_INTERVAL_S).
const SHORTEST_SENT_INTERVAL_S: f64 = 0.5;

const READY_DEADLINE: Duration = Duration::from_secs(30);
const DATA_DEADLINE: Duration = Duration::from_secs(15);
const POLL_PERIOD: Duration = Duration::from_millis(100);
/// Tries at a free port (another process may take it between our probe
/// and Prometheus's bind).
const BIND_TRIES: usize = 4;

/// A Prometheus that only receives remote writes (no scrape jobs), on a
/// free loopback port, killed on drop (its log printed when a test fails).
struct Receiver {
    child: Child,
    dir: tempfile::TempDir,
    base_url: String,
    client: reqwest::Client,
}

impl Receiver {
    async fn start() -> Receiver {
        let client = infercheck::tls::client_builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        for _ in 0..BIND_TRIES {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("prometheus.yml"), "global: {}\n").unwrap();
            let port = free_port();
            let mut receiver = Receiver {
                child: spawn(dir.path(), port, &["--web.enable-remote-write-receiver"]),
                dir,
                base_url: format!("http://127.0.0.1:{port}"),
                client: client.clone(),
            };
            match receiver.wait_ready().await {
                Ok(()) => return receiver,
                Err(_) if receiver.log().contains("address already in use") => continue,
                Err(why) => panic!("prometheus did not start ({why}):\n{}", receiver.log()),
            }
        }
        panic!("prometheus found no free port in {BIND_TRIES} tries");
    }

    fn write_url(&self) -> String {
        format!("{}/api/v1/write", self.base_url)
    }

    /// Polls `/-/ready` (bounded); `Err` when the process exits first.
    async fn wait_ready(&mut self) -> Result<(), String> {
        let url = format!("{}/-/ready", self.base_url);
        let deadline = Instant::now() + READY_DEADLINE;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("exited with {status}"));
            }
            let ready = self.client.get(&url).send().await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("not ready after {READY_DEADLINE:?}"));
            }
            tokio::time::sleep(POLL_PERIOD).await;
        }
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// An instant query's result (`data.result`), at `time` if given.
    async fn query(&self, promql: &str, time: Option<f64>) -> Vec<Value> {
        let mut params = vec![("query", promql.to_owned())];
        params.extend(time.map(|t| ("time", format!("{t:.3}"))));
        let url = format!("{}/api/v1/query", self.base_url);
        let response = self.client.get(&url).query(&params).send().await;
        let body: Value = response.unwrap().json().await.unwrap();
        assert_eq!(body["status"], "success", "{promql}: {body}");
        body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Polls `promql` until it gives a series (bounded).
    async fn wait_for(&self, promql: &str) -> Vec<Value> {
        let deadline = Instant::now() + DATA_DEADLINE;
        loop {
            let result = self.query(promql, None).await;
            if !result.is_empty() {
                return result;
            }
            assert!(
                Instant::now() < deadline,
                "{promql}: no data\n{}",
                self.log()
            );
            tokio::time::sleep(POLL_PERIOD).await;
        }
    }

    /// The raw samples of the one series `selector` names over the last
    /// `window_s` before `at`: (unix seconds, value) in time order.
    async fn raw_samples(&self, selector: &str, window_s: u64, at: f64) -> Vec<(f64, f64)> {
        let promql = format!("{selector}[{window_s}s]");
        let result = self.query(&promql, Some(at)).await;
        assert_eq!(result.len(), 1, "{promql}: one series, got {result:?}");
        result[0]["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|pair| (pair[0].as_f64().unwrap(), value_of(&pair[1])))
            .collect()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!("--- prometheus log ---\n{}", self.log());
        }
    }
}

/// A sample's value: Prometheus sends it as a string (NaN and ±Inf
/// survive JSON that way).
fn value_of(value: &Value) -> f64 {
    value.as_str().unwrap().parse().unwrap()
}

/// Runs [`PLAN`] on the embedded simulator, writing to `remote_write`.
async fn run_writing_to(remote_write: String) -> (RunResult, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let plan = write_plan(dir.path(), PLAN);
    let mut args = RunArgs::new(plan.to_str().unwrap(), dir.path().join("results"));
    args.prometheus_remote_write = Some(remote_write);
    args.no_history = true;
    let result = run_plan(args)
        .await
        .unwrap_or_else(|f| panic!("run failed: {}", f.message));
    (result, dir)
}

/// The intervals the run wrote, as the sender sends them (a short last
/// one left out).
fn sent_intervals(result: &RunResult) -> Vec<IntervalSummary> {
    let text = std::fs::read_to_string(result.dir.join("intervals.jsonl")).unwrap();
    text.lines()
        .map(|line| serde_json::from_str::<IntervalSummary>(line).unwrap())
        .filter(|i| i.duration_s >= SHORTEST_SENT_INTERVAL_S)
        .collect()
}

fn unix_seconds(rfc3339: &str) -> f64 {
    let time = chrono::DateTime::parse_from_rfc3339(rfc3339).unwrap();
    time.timestamp_millis() as f64 / 1000.0
}

fn assert_same_values(series: &str, got: &[(f64, f64)], expected: &[f64]) {
    let values: Vec<f64> = got.iter().map(|(_, v)| *v).collect();
    assert_eq!(
        values.len(),
        expected.len(),
        "{series}: {values:?} vs {expected:?}"
    );
    for (value, want) in values.iter().zip(expected) {
        let close = (value - want).abs() <= 1e-12 * want.abs().max(1.0);
        assert!(
            close,
            "{series}: {values:?} vs intervals.jsonl {expected:?}"
        );
    }
}

/// One point a second, inside the run's window.
fn assert_one_point_a_second(series: &str, got: &[(f64, f64)], report: &Report) {
    let seconds = report.duration_s.round() as i64;
    let points = got.len() as i64;
    assert!(
        (points - seconds).abs() <= 1,
        "{series}: {points} points in {seconds}s"
    );
    for pair in got.windows(2) {
        let gap = pair[1].0 - pair[0].0;
        assert!(
            (0.5..=1.5).contains(&gap),
            "{series}: a {gap}s gap in {got:?}"
        );
    }
    let (start, end) = (
        unix_seconds(&report.started_at),
        unix_seconds(&report.ended_at),
    );
    // The run clock starts once sampling is ready, a moment after the
    // report's start: its seconds end a moment after the report's end.
    let inside = got.iter().all(|(t, _)| (start..=end + 5.0).contains(t));
    assert!(inside, "{series}: {got:?} outside {start}..{end}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runs_series_and_headline_results_arrive_in_prometheus() {
    let _held = exclusive().await;
    let prometheus = Receiver::start().await;
    let (result, _dir) = run_writing_to(prometheus.write_url()).await;
    let report = &result.report;
    let run = format!("run_id=\"{}\"", report.run_id);

    let verdict = prometheus
        .wait_for(&format!("infercheck_run_verdict{{{run}}}"))
        .await;
    assert_eq!(verdict.len(), 1, "{verdict:?}");
    let labels = &verdict[0]["metric"];
    assert_eq!(labels["plan"], "remote-write");
    assert_eq!(labels["outcome"], "pass");
    assert_eq!(value_of(&verdict[0]["value"][1]), 1.0);
    assert_eq!(report.verdict.outcome, Outcome::Pass);

    let summary = prometheus
        .query(
            &format!("infercheck_run_summary_latency_p95_seconds{{{run}}}"),
            None,
        )
        .await;
    let p95 = report.overall.quantiles(Distribution::Latency).unwrap().p95 / 1000.0;
    assert_same_values(
        "summary p95",
        &[(0.0, value_of(&summary[0]["value"][1]))],
        &[p95],
    );

    let intervals = sent_intervals(&result);
    let at = unix_seconds(&report.ended_at) + 2.0;
    let window = report.duration_s.ceil() as u64 + 30;
    let latency = format!("infercheck_run_latency_p95_seconds{{{run}}}");
    let got = prometheus.raw_samples(&latency, window, at).await;
    let expected: Vec<f64> = intervals
        .iter()
        .filter_map(|i| i.latency_p95_ms.map(|ms| ms / 1000.0))
        .collect();
    assert_same_values(&latency, &got, &expected);
    assert_one_point_a_second(&latency, &got, report);

    let rate = format!("infercheck_run_requests_per_second{{{run}}}");
    let got = prometheus.raw_samples(&rate, window, at).await;
    let expected: Vec<f64> = intervals.iter().map(|i| i.rps).collect();
    assert_same_values(&rate, &got, &expected);
    assert_one_point_a_second(&rate, &got, report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_endpoint_leaves_the_run_intact_and_is_noted() {
    let _held = exclusive().await;
    let dead = format!("{}/api/v1/write", dead_address());
    let started = std::time::Instant::now();
    let (result, _dir) = run_writing_to(dead).await;
    let took = started.elapsed();
    let report = &result.report;
    assert_eq!(result.exit_code, infercheck::exit::OK);
    assert_eq!(report.verdict.outcome, Outcome::Pass);
    assert!(report.summary.requests >= 40, "{:?}", report.summary);
    assert!(result.dir.join("report.json").is_file());
    // The load is not slowed, and the end waits for no sender: 5 s of
    // load take about 6 s in all (a sender held to its 8 s finish deadline
    // would show here).
    assert!(
        report.duration_s < 5.5,
        "the load took {}s",
        report.duration_s
    );
    assert!(took < Duration::from_secs(12), "the run took {took:?}");
    let said = |text: &str| report.notes.iter().any(|n| n.contains(text));
    assert!(said("remote write: 0 samples"), "{:?}", report.notes);
    assert!(
        said("remote write failed: cannot send"),
        "{:?}",
        report.notes
    );
}
