//! `--prometheus-remote-write URL`: the run's per-second client series
//! sent live, and its headline results at the end, through Prometheus
//! remote write 1.0 (labelled by plan, target, model and run id), as k6's
//! Prometheus output does.
//!
//! The wire format is the spec's: a protobuf `WriteRequest` (the four
//! messages are derived by hand in [`wire`]), snappy block compression,
//! `Content-Encoding: snappy`, `Content-Type: application/x-protobuf`,
//! `X-Prometheus-Remote-Write-Version: 0.1.0`, every series' labels sorted
//! by name and its samples by time.
//!
//! Sending is off the run's path. [`RemoteWrite::interval`] turns a closed
//! second into points and hands them to a bounded queue with `try_send`;
//! one task ([`Outbox`]) takes everything queued, sends it as one request,
//! and keeps what failed with a retryable answer (connection error, 5xx,
//! 429) to go with the next request, so each series' samples stay in time
//! order. A full queue, a refused request or samples given up are counted
//! in [`Sent::errors`]; none blocks or fails the run. [`RemoteWrite::finish`]
//! closes the queue, waits a bounded time for the task, and sends what is
//! left together with the headline results, one sample each at the run's
//! end.
//!
//! Series (all gauges; times in seconds, as Prometheus names them):
//! per second `infercheck_run_latency_p50_seconds` (`_p95`, `_p99`),
//! `infercheck_run_ttft_p95_seconds`, `infercheck_run_tpot_p95_seconds`,
//! `infercheck_run_requests_per_second`,
//! `infercheck_run_target_requests_per_second`,
//! `infercheck_run_errors_per_second`, `infercheck_run_in_flight`,
//! `infercheck_run_output_tokens_per_second`; at the end
//! `infercheck_run_summary_*` (latency quantiles, TTFT p95, error rate,
//! rps, output tokens per second, requests, duration) and
//! `infercheck_run_verdict{outcome=...}` (1 when the run passed, else 0).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prost::Message;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::report::{IntervalSummary, Outcome, Report, StatsBlock};
use crate::stats::Distribution;

/// Seconds that may wait for the sending task before `interval` drops one.
const QUEUE_SECONDS: usize = 64;
/// Samples kept for a retry while the endpoint fails (about half an hour
/// of every per-second series); older ones are given up first.
const MAX_PENDING_SAMPLES: usize = 20_000;
/// Failed sends described one by one; past that they are only counted.
const MAX_ERROR_LINES: usize = 5;
/// An interval shorter than this (the run's last, partial one) is not
/// sent: its rates would be measured over a sliver of time.
const MIN_INTERVAL_S: f64 = 0.5;
/// A refusal's body is quoted up to this many characters.
const MAX_QUOTED_BODY: usize = 200;

const REMOTE_WRITE_VERSION: &str = "0.1.0";

/// How long sending may take.
#[derive(Clone, Copy, Debug)]
struct Limits {
    /// One write request's whole exchange.
    send_timeout: Duration,
    connect_timeout: Duration,
    /// All of `finish`: the queue's last sends and the headline results.
    /// What is not sent by then is given up: an endpoint that hangs
    /// delays the end of a run by this much at most.
    finish_deadline: Duration,
}

impl Limits {
    const DEFAULT: Limits = Limits {
        send_timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(2),
        finish_deadline: Duration::from_secs(8),
    };
}

/// Who the series belong to: the labels every series carries.
#[derive(Clone, Debug)]
pub struct RunLabels {
    pub run_id: String,
    pub plan: String,
    pub target: String,
    pub model: String,
}

impl RunLabels {
    /// The labels as name/value pairs, those with an empty value left out
    /// (Prometheus reads an empty label as an absent one).
    fn pairs(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            ("model", self.model.as_str()),
            ("plan", self.plan.as_str()),
            ("run_id", self.run_id.as_str()),
            ("target", self.target.as_str()),
        ]
        .into_iter()
        .filter(|(_, value)| !value.is_empty())
    }
}

/// What was sent, for the report's notes.
#[derive(Clone, Debug, Default)]
pub struct Sent {
    /// Samples in write requests the endpoint accepted.
    pub samples: u64,
    /// Write requests the endpoint accepted.
    pub requests: u64,
    /// Failed sends, in words (the run goes on without them).
    pub errors: Vec<String>,
}

/// A live remote-write output.
pub struct RemoteWrite {
    queue: mpsc::Sender<Vec<Point>>,
    /// Seconds `interval` could not queue.
    dropped: AtomicU64,
    sender: JoinHandle<Outbox>,
    endpoint: Endpoint,
    labels: RunLabels,
    limits: Limits,
}

impl RemoteWrite {
    /// Checks the URL and starts the sending task on the current Tokio
    /// runtime; sends nothing yet.
    pub fn start(url: &str, labels: RunLabels) -> Result<RemoteWrite, String> {
        RemoteWrite::start_with(url, labels, Limits::DEFAULT)
    }

    fn start_with(url: &str, labels: RunLabels, limits: Limits) -> Result<RemoteWrite, String> {
        let endpoint = Endpoint::new(url, &limits)?;
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| "sending needs a Tokio runtime".to_owned())?;
        let (queue, received) = mpsc::channel(QUEUE_SECONDS);
        let outbox = Outbox::new(endpoint.clone(), labels.clone());
        let sender = runtime.spawn(outbox.run(received));
        Ok(RemoteWrite {
            queue,
            dropped: AtomicU64::new(0),
            sender,
            endpoint,
            labels,
            limits,
        })
    }

    /// One closed second of the run, `wall_ms` its end on the wall clock
    /// (milliseconds since the Unix epoch); never blocks the caller.
    pub fn interval(&self, interval: &IntervalSummary, wall_ms: i64) {
        if interval.duration_s < MIN_INTERVAL_S {
            return;
        }
        let points = interval_points(interval, wall_ms);
        if self.queue.try_send(points).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Flushes what is queued and sends the headline results, within
    /// the finish deadline.
    pub async fn finish(self, report: &Report) -> Sent {
        let RemoteWrite {
            queue,
            dropped,
            mut sender,
            endpoint,
            labels,
            limits,
        } = self;
        drop(queue);
        let deadline = tokio::time::Instant::now() + limits.finish_deadline;
        let late = || format!("not all sent within {:?}", limits.finish_deadline);
        let mut outbox = match tokio::time::timeout_at(deadline, &mut sender).await {
            Ok(Ok(outbox)) => outbox,
            Ok(Err(failed)) => {
                Outbox::lost(endpoint, labels, format!("the sender failed: {failed}"))
            }
            Err(_) => {
                sender.abort();
                Outbox::lost(endpoint, labels, late())
            }
        };
        outbox.take(headline_points(report));
        if tokio::time::timeout_at(deadline, outbox.send())
            .await
            .is_err()
        {
            outbox.tally.failed(late());
        }
        outbox.into_sent(dropped.into_inner())
    }
}

/// One sample of one series, before it is labelled.
#[derive(Clone, Debug, PartialEq)]
struct Point {
    name: &'static str,
    /// A label of this series only (the verdict's `outcome`).
    extra: Option<(&'static str, String)>,
    value: f64,
    timestamp_ms: i64,
}

impl Point {
    fn new(name: &'static str, value: f64, timestamp_ms: i64) -> Self {
        Point {
            name,
            extra: None,
            value,
            timestamp_ms,
        }
    }
}

/// The per-second series of one interval, at `wall_ms`.
fn interval_points(interval: &IntervalSummary, wall_ms: i64) -> Vec<Point> {
    let per_second = |n: u64| n as f64 / interval.duration_s;
    let seconds = |ms: Option<f64>| ms.map(|ms| ms / 1000.0);
    let values = [
        (
            "infercheck_run_latency_p50_seconds",
            seconds(interval.latency_p50_ms),
        ),
        (
            "infercheck_run_latency_p95_seconds",
            seconds(interval.latency_p95_ms),
        ),
        (
            "infercheck_run_latency_p99_seconds",
            seconds(interval.latency_p99_ms),
        ),
        (
            "infercheck_run_ttft_p95_seconds",
            seconds(interval.ttft_p95_ms),
        ),
        (
            "infercheck_run_tpot_p95_seconds",
            seconds(interval.tpot_p95_ms),
        ),
        ("infercheck_run_requests_per_second", Some(interval.rps)),
        (
            "infercheck_run_target_requests_per_second",
            interval.target_rps,
        ),
        (
            "infercheck_run_errors_per_second",
            Some(per_second(interval.errors)),
        ),
        ("infercheck_run_in_flight", Some(interval.in_flight as f64)),
        (
            "infercheck_run_output_tokens_per_second",
            Some(per_second(interval.output_tokens)),
        ),
    ];
    present(&values, wall_ms)
}

/// The headline results, one sample each at the run's end.
fn headline_points(report: &Report) -> Vec<Point> {
    let at = ended_ms(report);
    let overall = &report.overall;
    let values = [
        (
            "infercheck_run_summary_latency_p50_seconds",
            quantile_s(overall, Distribution::Latency, |q| q.p50),
        ),
        (
            "infercheck_run_summary_latency_p95_seconds",
            quantile_s(overall, Distribution::Latency, |q| q.p95),
        ),
        (
            "infercheck_run_summary_latency_p99_seconds",
            quantile_s(overall, Distribution::Latency, |q| q.p99),
        ),
        (
            "infercheck_run_summary_ttft_p95_seconds",
            quantile_s(overall, Distribution::Ttft, |q| q.p95),
        ),
        (
            "infercheck_run_summary_error_rate",
            Some(overall.error_rate),
        ),
        ("infercheck_run_summary_rps", Some(overall.rps)),
        (
            "infercheck_run_summary_output_tokens_per_second",
            Some(overall.output_tokens_per_s),
        ),
        (
            "infercheck_run_summary_requests",
            Some(overall.requests as f64),
        ),
        (
            "infercheck_run_summary_duration_seconds",
            Some(report.duration_s),
        ),
    ];
    let mut points = present(&values, at);
    let passed = report.verdict.outcome == Outcome::Pass;
    points.push(Point {
        extra: Some(("outcome", outcome_name(report.verdict.outcome))),
        ..Point::new("infercheck_run_verdict", f64::from(u8::from(passed)), at)
    });
    points
}

/// The values that exist and are numbers, as points at `timestamp_ms`.
fn present(values: &[(&'static str, Option<f64>)], timestamp_ms: i64) -> Vec<Point> {
    values
        .iter()
        .filter_map(|&(name, value)| Some(Point::new(name, value?, timestamp_ms)))
        .filter(|point| point.value.is_finite())
        .collect()
}

/// A quantile of one of the run's distributions, milliseconds → seconds.
fn quantile_s(
    stats: &StatsBlock,
    distribution: Distribution,
    pick: impl Fn(&crate::stats::Quantiles) -> f64,
) -> Option<f64> {
    stats.quantiles(distribution).map(|q| pick(&q) / 1000.0)
}

/// The run's end on the wall clock; now when the report's time is unreadable.
fn ended_ms(report: &Report) -> i64 {
    chrono::DateTime::parse_from_rfc3339(&report.ended_at)
        .map(|t| t.timestamp_millis())
        .unwrap_or_else(|_| chrono::Utc::now().timestamp_millis())
}

/// The outcome as report.json names it (`pass`, `fail`, ...).
fn outcome_name(outcome: Outcome) -> String {
    match serde_json::to_value(outcome) {
        Ok(serde_json::Value::String(name)) => name,
        _ => format!("{outcome:?}").to_lowercase(),
    }
}

/// Points as a write request: one time series per name (and extra label),
/// its labels sorted by name, its samples in the order given (time order,
/// as they were taken).
fn write_request(labels: &RunLabels, points: &[Point]) -> wire::WriteRequest {
    type Key<'a> = (&'a str, Option<(&'static str, &'a str)>);
    let mut series: BTreeMap<Key, Vec<wire::Sample>> = BTreeMap::new();
    for point in points {
        let extra = point
            .extra
            .as_ref()
            .map(|(name, value)| (*name, value.as_str()));
        series
            .entry((point.name, extra))
            .or_default()
            .push(wire::Sample {
                value: point.value,
                timestamp: point.timestamp_ms,
            });
    }
    let timeseries = series
        .into_iter()
        .map(|((name, extra), samples)| wire::TimeSeries {
            labels: series_labels(labels, name, extra),
            samples,
        })
        .collect();
    wire::WriteRequest { timeseries }
}

fn series_labels(
    labels: &RunLabels,
    name: &str,
    extra: Option<(&'static str, &str)>,
) -> Vec<wire::Label> {
    let mut all: Vec<wire::Label> = std::iter::once(("__name__", name))
        .chain(labels.pairs())
        .chain(extra)
        .map(|(name, value)| wire::Label {
            name: name.to_owned(),
            value: value.to_owned(),
        })
        .collect();
    all.sort_by(|a, b| a.name.cmp(&b.name));
    all
}

/// The request body: protobuf, then snappy's block format.
fn encode(request: &wire::WriteRequest) -> Result<Vec<u8>, String> {
    snap::raw::Encoder::new()
        .compress_vec(&request.encode_to_vec())
        .map_err(|e| format!("cannot compress a write request: {e}"))
}

/// Where write requests go, and the client that sends them.
#[derive(Clone)]
struct Endpoint {
    client: reqwest::Client,
    url: reqwest::Url,
}

/// Why a write request failed, and whether its samples may go again.
#[derive(Debug, PartialEq)]
enum Refusal {
    /// The endpoint could not be reached, or answered 5xx or 429.
    Retryable(String),
    /// It answered another 4xx: the same samples would fail again.
    Final(String),
}

impl Endpoint {
    fn new(url: &str, limits: &Limits) -> Result<Endpoint, String> {
        let url = parse_url(url)?;
        let client = crate::tls::client_builder()
            .timeout(limits.send_timeout)
            .connect_timeout(limits.connect_timeout)
            .user_agent(concat!("infercheck/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
        Ok(Endpoint { client, url })
    }

    /// POSTs one compressed write request.
    async fn post(&self, body: Vec<u8>) -> Result<(), Refusal> {
        let response = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_ENCODING, "snappy")
            .header(reqwest::header::CONTENT_TYPE, "application/x-protobuf")
            .header("X-Prometheus-Remote-Write-Version", REMOTE_WRITE_VERSION)
            .body(body)
            .send()
            .await
            .map_err(|e| Refusal::Retryable(format!("cannot send: {}", error_chain(&e))))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = response.text().await.unwrap_or_default();
        let why = format!("answered {status}: {}", quote(&body));
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            Err(Refusal::Retryable(why))
        } else {
            Err(Refusal::Final(why))
        }
    }
}

fn parse_url(text: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(text).map_err(|e| format!("{text:?} is not a URL ({e})"))?;
    match url.scheme() {
        "http" | "https" if url.host().is_some() => Ok(url),
        _ => Err(format!(
            "{text:?}: expected an http:// or https:// URL \
             such as http://prometheus:9090/api/v1/write"
        )),
    }
}

/// An error with its causes, which reqwest keeps apart ("error sending
/// request: connection refused").
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn quote(body: &str) -> String {
    let trimmed = body.trim();
    match trimmed.char_indices().nth(MAX_QUOTED_BODY) {
        Some((cut, _)) => format!("{}…", &trimmed[..cut]),
        None => trimmed.to_owned(),
    }
}

/// The sending side: points waiting to go, and what became of those sent.
struct Outbox {
    endpoint: Endpoint,
    labels: RunLabels,
    pending: Vec<Point>,
    tally: Tally,
}

impl Outbox {
    fn new(endpoint: Endpoint, labels: RunLabels) -> Self {
        Outbox {
            endpoint,
            labels,
            pending: Vec::new(),
            tally: Tally::default(),
        }
    }

    /// An outbox whose earlier state is gone (its task failed or hung).
    fn lost(endpoint: Endpoint, labels: RunLabels, why: String) -> Self {
        let mut outbox = Outbox::new(endpoint, labels);
        outbox.tally.failed(why);
        outbox
    }

    /// The task: each wake-up sends everything queued as one request,
    /// until the queue is closed and empty.
    async fn run(mut self, mut queue: mpsc::Receiver<Vec<Point>>) -> Outbox {
        while let Some(points) = queue.recv().await {
            self.take(points);
            while let Ok(more) = queue.try_recv() {
                self.take(more);
            }
            self.send().await;
        }
        self
    }

    fn take(&mut self, points: Vec<Point>) {
        self.pending.extend(points);
        let excess = self.pending.len().saturating_sub(MAX_PENDING_SAMPLES);
        if excess > 0 {
            self.pending.drain(..excess);
            self.tally.given_up += excess as u64;
        }
    }

    /// Sends what is pending; keeps it when the failure may pass.
    async fn send(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let request = write_request(&self.labels, &self.pending);
        let outcome = match encode(&request) {
            Ok(body) => self.endpoint.post(body).await,
            Err(why) => Err(Refusal::Final(why)),
        };
        let count = self.pending.len() as u64;
        match outcome {
            Ok(()) => {
                self.tally.requests += 1;
                self.tally.samples += count;
                self.pending.clear();
            }
            Err(Refusal::Retryable(why)) => self.tally.failed(why),
            Err(Refusal::Final(why)) => {
                self.tally.failed(why);
                self.tally.given_up += count;
                self.pending.clear();
            }
        }
    }

    /// The account, counting what never went as given up.
    fn into_sent(mut self, dropped_seconds: u64) -> Sent {
        self.tally.given_up += self.pending.len() as u64;
        self.tally.into_sent(dropped_seconds)
    }
}

/// What became of the samples handed to the outbox.
#[derive(Debug, Default)]
struct Tally {
    samples: u64,
    requests: u64,
    failures: u64,
    /// The first distinct failures, in words, with how often each came.
    errors: Vec<(String, u64)>,
    /// Samples that will never be sent.
    given_up: u64,
}

impl Tally {
    fn failed(&mut self, why: String) {
        self.failures += 1;
        if let Some((_, times)) = self.errors.iter_mut().find(|(seen, _)| *seen == why) {
            *times += 1;
        } else if self.errors.len() < MAX_ERROR_LINES {
            self.errors.push((why, 1));
        }
    }

    fn into_sent(self, dropped_seconds: u64) -> Sent {
        let described: u64 = self.errors.iter().map(|(_, times)| times).sum();
        let mut errors: Vec<String> = self
            .errors
            .into_iter()
            .map(|(why, times)| match times {
                1 => why,
                n => format!("{why} ({n} times)"),
            })
            .collect();
        if self.failures > described {
            errors.push(format!("{} failed sends in all", self.failures));
        }
        if dropped_seconds > 0 {
            errors.push(format!(
                "{dropped_seconds} seconds not sent: the send queue was full"
            ));
        }
        if self.given_up > 0 {
            errors.push(format!("{} samples given up", self.given_up));
        }
        Sent {
            samples: self.samples,
            requests: self.requests,
            errors,
        }
    }
}

/// Prometheus remote write 1.0's messages (prompb's `types.proto` and
/// `remote.proto`), the fields the spec requires.
mod wire {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct WriteRequest {
        #[prost(message, repeated, tag = "1")]
        pub timeseries: Vec<TimeSeries>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TimeSeries {
        /// Sorted by name; `__name__` is the metric's.
        #[prost(message, repeated, tag = "1")]
        pub labels: Vec<Label>,
        /// In time order.
        #[prost(message, repeated, tag = "2")]
        pub samples: Vec<Sample>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Label {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(string, tag = "2")]
        pub value: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Sample {
        #[prost(double, tag = "1")]
        pub value: f64,
        /// Milliseconds since the Unix epoch.
        #[prost(int64, tag = "2")]
        pub timestamp: i64,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn labels() -> RunLabels {
        RunLabels {
            run_id: "20260101-000000-abcd".into(),
            plan: "smoke".into(),
            target: "http://127.0.0.1:8000".into(),
            model: String::new(),
        }
    }

    fn interval(t: f64) -> IntervalSummary {
        IntervalSummary {
            t,
            duration_s: 1.0,
            phase: "steady".into(),
            requests: 10,
            ok: 8,
            errors: 2,
            rps: 10.0,
            target_rps: Some(12.0),
            in_flight: 3,
            output_tokens: 320,
            latency_p50_ms: Some(250.0),
            latency_p95_ms: Some(900.0),
            latency_p99_ms: Some(1200.0),
            ttft_p95_ms: Some(40.0),
            tpot_p95_ms: None,
            schedule_lag_p99_ms: Some(1.0),
        }
    }

    fn decode(body: &[u8]) -> wire::WriteRequest {
        let raw = snap::raw::Decoder::new().decompress_vec(body).unwrap();
        wire::WriteRequest::decode(raw.as_slice()).unwrap()
    }

    fn label<'a>(series: &'a wire::TimeSeries, name: &str) -> Option<&'a str> {
        series
            .labels
            .iter()
            .find(|l| l.name == name)
            .map(|l| l.value.as_str())
    }

    fn named<'a>(request: &'a wire::WriteRequest, name: &str) -> &'a wire::TimeSeries {
        request
            .timeseries
            .iter()
            .find(|s| label(s, "__name__") == Some(name))
            .unwrap_or_else(|| panic!("no series {name}"))
    }

    #[test]
    fn a_write_request_round_trips_with_sorted_labels_and_ordered_samples() {
        let mut points = interval_points(&interval(1.0), 1_700_000_001_000);
        points.extend(interval_points(&interval(2.0), 1_700_000_002_000));
        let body = encode(&write_request(&labels(), &points)).unwrap();
        let request = decode(&body);
        // One series per name, missing values (TPOT) left out.
        assert_eq!(request.timeseries.len(), 9);
        for series in &request.timeseries {
            let names: Vec<&str> = series.labels.iter().map(|l| l.name.as_str()).collect();
            let mut sorted = names.clone();
            sorted.sort_unstable();
            assert_eq!(names, sorted, "labels sorted by name");
            assert_eq!(
                names,
                ["__name__", "plan", "run_id", "target"],
                "empty model left out"
            );
            assert_eq!(label(series, "run_id"), Some("20260101-000000-abcd"));
            let times: Vec<i64> = series.samples.iter().map(|s| s.timestamp).collect();
            assert_eq!(times, [1_700_000_001_000, 1_700_000_002_000]);
        }
        let p95 = named(&request, "infercheck_run_latency_p95_seconds");
        assert_eq!(p95.samples[0].value, 0.9);
        let errors = named(&request, "infercheck_run_errors_per_second");
        assert_eq!(errors.samples[0].value, 2.0);
        let target = named(&request, "infercheck_run_target_requests_per_second");
        assert_eq!(target.samples[0].value, 12.0);
    }

    #[test]
    fn rates_are_per_second_of_the_interval() {
        let half = IntervalSummary {
            duration_s: 0.5,
            ..interval(3.5)
        };
        let points = interval_points(&half, 0);
        let value = |name: &str| points.iter().find(|p| p.name == name).unwrap().value;
        assert_eq!(value("infercheck_run_output_tokens_per_second"), 640.0);
        assert_eq!(value("infercheck_run_errors_per_second"), 4.0);
        assert_eq!(value("infercheck_run_in_flight"), 3.0);
    }

    /// A finished report with latency quantiles and an error rate.
    fn report(outcome: Outcome) -> Report {
        let mut report = crate::report::test_report::report(Vec::new(), outcome);
        report.ended_at = "2026-01-01T00:00:30Z".into();
        report.overall.error_rate = 0.02;
        let quantiles = crate::stats::Quantiles {
            count: 10,
            min: 100.0,
            mean: 300.0,
            p50: 250.0,
            p90: 800.0,
            p95: 900.0,
            p99: 1200.0,
            max: 1300.0,
        };
        let key = Distribution::Latency.spec().key.to_owned();
        report.overall.distributions.insert(key, quantiles);
        report
    }

    fn value_of(points: &[Point], name: &str) -> Option<f64> {
        points.iter().find(|p| p.name == name).map(|p| p.value)
    }

    #[test]
    fn headline_results_are_in_seconds_at_the_runs_end() {
        let points = headline_points(&report(Outcome::Pass));
        assert!(points.iter().all(|p| p.timestamp_ms == 1_767_225_630_000));
        let value = |name| value_of(&points, name);
        assert_eq!(
            value("infercheck_run_summary_latency_p95_seconds"),
            Some(0.9)
        );
        assert_eq!(
            value("infercheck_run_summary_latency_p99_seconds"),
            Some(1.2)
        );
        assert_eq!(value("infercheck_run_summary_error_rate"), Some(0.02));
        // No TTFT distribution in this run: no series rather than a zero.
        assert_eq!(value("infercheck_run_summary_ttft_p95_seconds"), None);
    }

    #[test]
    fn a_verdict_carries_its_outcome_and_is_one_only_for_a_pass() {
        let points = headline_points(&report(Outcome::Fail));
        let verdict = points
            .iter()
            .find(|p| p.name == "infercheck_run_verdict")
            .unwrap();
        assert_eq!(verdict.extra, Some(("outcome", "fail".to_owned())));
        assert_eq!(verdict.value, 0.0);
        let points = headline_points(&report(Outcome::Pass));
        let verdict = points.iter().find(|p| p.extra.is_some()).unwrap();
        assert_eq!(verdict.value, 1.0);
        assert_eq!(verdict.extra, Some(("outcome", "pass".to_owned())));
    }

    #[test]
    fn the_verdict_series_is_apart_from_the_others_and_labelled() {
        let request = write_request(&labels(), &headline_points(&report(Outcome::Invalid)));
        let verdict = named(&request, "infercheck_run_verdict");
        let names: Vec<&str> = verdict.labels.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["__name__", "outcome", "plan", "run_id", "target"]);
    }

    #[test]
    fn only_http_urls_are_accepted() {
        assert!(parse_url("http://127.0.0.1:9090/api/v1/write").is_ok());
        assert!(parse_url("https://prom.example/api/v1/write").is_ok());
        for bad in ["127.0.0.1:9090", "ftp://host/x", "not a url", "http://"] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    /// A remote-write endpoint for the tests: answers each request with
    /// the next status of `answers` (the last one from then on) and keeps
    /// every request it got.
    struct FakeEndpoint {
        url: String,
        got: Arc<std::sync::Mutex<Vec<(http::HeaderMap, wire::WriteRequest)>>>,
    }

    impl FakeEndpoint {
        async fn start(answers: &'static [u16]) -> FakeEndpoint {
            let got: Arc<std::sync::Mutex<Vec<_>>> = Arc::default();
            let kept = got.clone();
            let handler = move |headers: http::HeaderMap, body: bytes::Bytes| {
                let kept = kept.clone();
                async move {
                    let mut kept = kept.lock().unwrap();
                    kept.push((headers, decode(&body)));
                    let answer = answers[(kept.len() - 1).min(answers.len() - 1)];
                    http::StatusCode::from_u16(answer).unwrap()
                }
            };
            let app = axum::Router::new().route("/api/v1/write", axum::routing::post(handler));
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}/api/v1/write", listener.local_addr().unwrap());
            tokio::spawn(async move { axum::serve(listener, app).await });
            FakeEndpoint { url, got }
        }

        fn requests(&self) -> Vec<wire::WriteRequest> {
            let got = self.got.lock().unwrap();
            got.iter().map(|(_, request)| request.clone()).collect()
        }

        /// Waits (bounded) until `n` requests have come.
        async fn wait_for(&self, n: usize) {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            while self.got.lock().unwrap().len() < n {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "{n} requests never came"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }

    fn series_count(request: &wire::WriteRequest) -> usize {
        request.timeseries.iter().map(|s| s.samples.len()).sum()
    }

    #[tokio::test]
    async fn requests_carry_the_specs_headers() {
        let endpoint = FakeEndpoint::start(&[204]).await;
        let remote = RemoteWrite::start(&endpoint.url, labels()).unwrap();
        remote.interval(&interval(1.0), 1_000);
        let sent = remote.finish(&report(Outcome::Pass)).await;
        assert!(sent.errors.is_empty(), "{:?}", sent.errors);
        let got = endpoint.got.lock().unwrap();
        let (headers, _) = &got[0];
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        assert_eq!(header("content-encoding"), Some("snappy"));
        assert_eq!(header("content-type"), Some("application/x-protobuf"));
        assert_eq!(header("x-prometheus-remote-write-version"), Some("0.1.0"));
    }

    #[tokio::test]
    async fn samples_refused_with_a_5xx_go_again_with_the_next_request_in_time_order() {
        let endpoint = FakeEndpoint::start(&[503, 204]).await;
        let remote = RemoteWrite::start(&endpoint.url, labels()).unwrap();
        remote.interval(&interval(1.0), 1_000);
        endpoint.wait_for(1).await;
        remote.interval(&interval(2.0), 2_000);
        endpoint.wait_for(2).await;
        let sent = remote.finish(&report(Outcome::Pass)).await;
        let requests = endpoint.requests();
        assert_eq!(
            requests.len(),
            3,
            "the refused, the retry with the next second, the headline"
        );
        let retried = named(&requests[1], "infercheck_run_in_flight");
        let times: Vec<i64> = retried.samples.iter().map(|s| s.timestamp).collect();
        assert_eq!(times, [1_000, 2_000]);
        let headline = series_count(&requests[2]) as u64;
        assert_eq!(sent.requests, 2);
        assert_eq!(sent.samples, series_count(&requests[1]) as u64 + headline);
        assert_eq!(sent.errors.len(), 1, "{:?}", sent.errors);
        assert!(sent.errors[0].contains("503"), "{:?}", sent.errors);
    }

    #[tokio::test]
    async fn samples_refused_with_a_4xx_are_given_up_not_retried() {
        let endpoint = FakeEndpoint::start(&[400]).await;
        let remote = RemoteWrite::start(&endpoint.url, labels()).unwrap();
        remote.interval(&interval(1.0), 1_000);
        endpoint.wait_for(1).await;
        let sent = remote.finish(&report(Outcome::Pass)).await;
        let requests = endpoint.requests();
        assert_eq!(requests.len(), 2);
        let first = series_count(&requests[0]);
        let headline = series_count(&requests[1]);
        assert!(
            requests[1].timeseries.iter().all(|s| {
                label(s, "__name__").is_some_and(|n| !n.starts_with("infercheck_run_latency"))
            }),
            "the refused seconds are not sent again"
        );
        assert_eq!((sent.requests, sent.samples), (0, 0));
        let given_up = format!("{} samples given up", first + headline);
        assert!(sent.errors.contains(&given_up), "{:?}", sent.errors);
    }

    #[tokio::test]
    async fn an_endpoint_that_never_answers_blocks_nothing_and_delays_the_end_by_the_deadline() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/api/v1/write", listener.local_addr().unwrap());
        // Accepts every connection and never answers.
        let held = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                open.push(socket);
            }
        });
        let limits = Limits {
            send_timeout: Duration::from_millis(300),
            connect_timeout: Duration::from_millis(300),
            finish_deadline: Duration::from_millis(600),
        };
        let remote = RemoteWrite::start_with(&url, labels(), limits).unwrap();
        let started = std::time::Instant::now();
        for second in 0..(QUEUE_SECONDS as i64 * 2) {
            remote.interval(&interval(second as f64), second * 1000);
        }
        assert!(
            started.elapsed() < Duration::from_millis(100),
            "interval never waits"
        );
        let finishing = std::time::Instant::now();
        let sent = remote.finish(&report(Outcome::Pass)).await;
        assert!(
            finishing.elapsed() < Duration::from_millis(1200),
            "{:?}",
            finishing.elapsed()
        );
        assert_eq!(sent.requests, 0);
        assert!(
            sent.errors
                .iter()
                .any(|e| e.ends_with("seconds not sent: the send queue was full")),
            "{:?}",
            sent.errors
        );
        assert!(
            sent.errors.iter().any(|e| e.contains("samples given up")),
            "{:?}",
            sent.errors
        );
        held.abort();
    }

    #[test]
    fn a_short_last_interval_is_not_queued() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let remote = RemoteWrite::start("http://127.0.0.1:9/api/v1/write", labels()).unwrap();
            let sliver = IntervalSummary {
                duration_s: 0.01,
                ..interval(10.01)
            };
            remote.interval(&sliver, 0);
            assert_eq!(remote.queue.capacity(), QUEUE_SECONDS);
        });
    }

    #[test]
    fn failures_are_described_once_each_and_counted_past_the_described_ones() {
        let mut tally = Tally::default();
        for _ in 0..3 {
            tally.failed("connection refused".into());
        }
        for n in 0..MAX_ERROR_LINES {
            tally.failed(format!("answered 50{n}"));
        }
        tally.given_up = 30;
        let sent = tally.into_sent(2);
        assert_eq!(sent.errors[0], "connection refused (3 times)");
        assert_eq!(sent.errors[1], "answered 500");
        assert_eq!(sent.errors.len(), MAX_ERROR_LINES + 3, "{:?}", sent.errors);
        assert!(sent.errors.contains(&"8 failed sends in all".to_owned()));
        assert!(
            sent.errors
                .contains(&"2 seconds not sent: the send queue was full".to_owned())
        );
        assert!(sent.errors.contains(&"30 samples given up".to_owned()));
    }

    #[test]
    fn the_oldest_pending_samples_are_given_up_first() {
        let endpoint = Endpoint::new("http://127.0.0.1:9/api/v1/write", &Limits::DEFAULT).unwrap();
        let mut outbox = Outbox::new(endpoint, labels());
        let points: Vec<Point> = (0..MAX_PENDING_SAMPLES as i64 + 5)
            .map(|t| Point::new("infercheck_run_in_flight", 1.0, t))
            .collect();
        outbox.take(points);
        assert_eq!(outbox.pending.len(), MAX_PENDING_SAMPLES);
        assert_eq!(outbox.pending[0].timestamp_ms, 5);
        assert_eq!(outbox.tally.given_up, 5);
    }
}
