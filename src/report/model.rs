//! The report model: everything a finished (or interrupted) run measured,
//! as plain serde data. `report.json` is this model; every renderer reads
//! only this model, so `infercheck report RESULT.json` re-renders any run.
//!
//! Changing a field's meaning or removing it bumps [`SCHEMA_VERSION`];
//! adding an optional field does not. `docs/report-schema.json` is the
//! contract and a test checks real reports against it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::metric::Metric;
use crate::stats::{
    Distribution, ErrorCounts, Histogram, HistogramError, MetricSet, Quantiles, Series,
    SeriesStats, distribution,
};

/// 2: request distributions keyed by `stats::Distribution` under
/// `distributions`; thresholds carry their typed metric and scope.
pub const SCHEMA_VERSION: u32 = 2;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema_version: u32,
    pub tool: Tool,
    pub run_id: String,
    /// RFC 3339 wall-clock times of the run's start and end.
    pub started_at: String,
    pub ended_at: String,
    pub duration_s: f64,
    pub plan_name: String,
    /// The resolved plan as run (durations already scaled).
    pub plan: serde_json::Value,
    pub target: Target,
    pub verdict: Verdict,
    pub summary: Summary,
    /// Every request of the run.
    pub overall: StatsBlock,
    pub phases: Vec<PhaseReport>,
    pub models: Vec<ModelReport>,
    /// Per task, with its checks, when the plan declared `[[tasks]]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tasks: Vec<TaskReport>,
    /// Multi-turn sessions, when the workload had them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sessions: Option<super::SessionReport>,
    pub thresholds: Vec<ThresholdResult>,
    pub generator: GeneratorHealth,
    /// One entry per second of the run (also streamed to intervals.jsonl).
    pub intervals: Vec<IntervalSummary>,
    /// Sampled series on the run clock (generator CPU today; server-side
    /// samplers add theirs).
    pub series: Vec<Series>,
    /// Caveats a reader must know (e.g. tokens counted without `usage`).
    pub notes: Vec<String>,
    /// Trace coverage, when the plan checked it (`[traces]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traces: Option<super::TraceReport>,
    /// Server-side values sampled during the run (`[observe]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed: Option<super::ObservedReport>,
    /// What the analysis concluded: drivers, saturation, recovery,
    /// steadiness, findings.
    #[serde(default)]
    pub explanation: super::Explanation,
    /// The server's metrics beside the client's: orphaned tasks.
    #[serde(default)]
    pub server: super::ServerChecks,
    /// The engines behind a router, and whether it routed right.
    #[serde(default)]
    pub routing: super::Routing,
    /// The observability validator: queries and dashboards with data,
    /// rule health, dashboard response, fault drills.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<super::Validation>,
    /// This run against a baseline run (`--baseline`, `infercheck compare`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regression: Option<super::Regression>,
    /// The headline metrics of the last runs of the same plan, from the
    /// run history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<super::HistoryTrend>,
    /// What the run folder keeps for a later re-analysis (the run log, raw
    /// server samples, looked-up spans).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub raw_data: Vec<super::RawFile>,
    /// `--repeat N`: each metric across the repeated runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeats: Option<super::Repeats>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Target {
    pub base_url: String,
    /// "openai-chat", "openai-completions" or "template".
    pub api: String,
    pub stream: bool,
    /// True when infercheck started its own simulator as the target.
    pub embedded_simulator: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Every threshold met.
    Pass,
    /// At least one threshold failed (or had no data).
    Fail,
    /// The generator was the bottleneck; numbers cannot be trusted.
    Invalid,
    /// Stopped early (Ctrl-C or abort-on-fail); the report is partial.
    Interrupted,
    /// The target never answered: every request failed to connect, so
    /// nothing of the target was measured (exit 3, could not run).
    Unreachable,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub outcome: Outcome,
    pub exit_code: i32,
    /// Why, in a sentence each (failed thresholds, invalidity reasons).
    pub reasons: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub requests: u64,
    pub ok: u64,
    pub errors: u64,
    /// Most requests in flight at once, as the client saw it.
    pub peak_concurrency: u64,
    /// Highest completed-requests-per-second over one 1 s interval.
    pub peak_rps: f64,
    /// Completed requests / run duration.
    pub achieved_rps: f64,
    /// Highest target rate of any phase (open-loop phases only).
    pub peak_target_rps: Option<f64>,
}

/// Statistics of a group of requests. Latency is measured from the
/// intended send time, service time from the actual send.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StatsBlock {
    pub requests: u64,
    pub ok: u64,
    pub errors: BTreeMap<String, u64>,
    pub error_rate: f64,
    pub timeout_rate: f64,
    /// Completed requests per second over the group's wall time.
    pub rps: f64,
    /// Target rate for open-loop groups.
    pub target_rps: Option<f64>,
    pub duration_s: f64,
    pub output_tokens: u64,
    /// `usage.prompt_tokens` summed over successful requests that had it.
    #[serde(default)]
    pub prompt_tokens: u64,
    /// Output tokens per second over the group's wall time.
    pub output_tokens_per_s: f64,
    pub tokens_counted_from_chunks: u64,
    /// Successful requests whose inter-token gaps were split by the
    /// server's per-chunk usage (`continuous_usage_stats`); the others' by
    /// content chunks. Either way one socket read is one gap.
    #[serde(default)]
    pub itl_from_usage: u64,
    /// Successful requests whose response named another model than the
    /// request asked for (a router sending it elsewhere, or a server that
    /// answers under its own name).
    #[serde(default)]
    pub other_model: u64,
    pub late_sends: u64,
    /// Requests judged against the plan's `[slo]` (all but those the run
    /// cancelled) and those that met every bound; 0 without an SLO.
    pub slo_checked: u64,
    pub slo_met: u64,
    /// Requests per second that met every bound (errors are misses); `None`
    /// without an SLO.
    pub goodput_per_s: Option<f64>,
    /// slo_met / slo_checked; `None` without an SLO or a request.
    pub slo_attainment: Option<f64>,
    /// Check evaluations passed and failed (one per check per request the
    /// run did not cancel); 0 without checks.
    #[serde(default)]
    pub checks_passed: u64,
    #[serde(default)]
    pub checks_failed: u64,
    /// Quantiles of every client distribution that has data, keyed by its
    /// entry in `stats::Distribution` (`latency_ms`, `ttft_ms`,
    /// `tokens_per_s`): times in milliseconds, rates per second.
    pub distributions: BTreeMap<String, Quantiles>,
    /// Lossless HDR histograms (V2 deflate, base64), keyed by
    /// distribution in its recorded unit (`latency_us`, `tokens_per_s_milli`).
    pub histograms: BTreeMap<String, String>,
}

impl StatsBlock {
    /// Summarises `set` over `duration_s` of wall time.
    pub fn from_set(set: &MetricSet, duration_s: f64, target_rps: Option<f64>) -> Self {
        let per_s = |n: u64| {
            if duration_s > 0.0 {
                n as f64 / duration_s
            } else {
                0.0
            }
        };
        let mut distributions = BTreeMap::new();
        let mut histograms = BTreeMap::new();
        for (d, h) in set.histograms() {
            if let Some(q) = h.quantiles(distribution::Unit::RECORDED_PER_REPORTED) {
                distributions.insert(d.spec().key.to_owned(), q);
                histograms.insert(d.spec().histogram_key.to_owned(), h.to_base64());
            }
        }
        StatsBlock {
            requests: set.requests,
            ok: set.ok,
            errors: error_map(&set.errors),
            error_rate: set.error_rate(),
            timeout_rate: set.timeout_rate(),
            rps: per_s(set.requests),
            target_rps,
            duration_s,
            output_tokens: set.output_tokens,
            prompt_tokens: set.prompt_tokens,
            output_tokens_per_s: per_s(set.output_tokens),
            tokens_counted_from_chunks: set.tokens_counted_from_chunks,
            itl_from_usage: set.itl_from_usage,
            other_model: set.other_model,
            late_sends: set.late_sends,
            slo_checked: set.slo_checked,
            slo_met: set.slo_met,
            goodput_per_s: (set.slo_checked > 0).then(|| per_s(set.slo_met)),
            slo_attainment: (set.slo_checked > 0)
                .then(|| set.slo_met as f64 / set.slo_checked as f64),
            checks_passed: set.checks_passed,
            checks_failed: set.checks_failed,
            distributions,
            histograms,
        }
    }

    /// Passed check evaluations / all; `None` when none was made.
    pub fn checks_rate(&self) -> Option<f64> {
        let all = self.checks_passed + self.checks_failed;
        (all > 0).then(|| self.checks_passed as f64 / all as f64)
    }

    /// The quantiles of `distribution`; `None` without data.
    pub fn quantiles(&self, distribution: Distribution) -> Option<Quantiles> {
        self.distributions.get(distribution.spec().key).copied()
    }

    /// Decodes the lossless histogram of `distribution` for re-analysis.
    pub fn histogram(
        &self,
        distribution: Distribution,
    ) -> Option<Result<Histogram, HistogramError>> {
        self.histograms
            .get(distribution.spec().histogram_key)
            .map(|text| Histogram::from_base64(text))
    }
}

fn error_map(errors: &ErrorCounts) -> BTreeMap<String, u64> {
    errors
        .nonzero()
        .map(|(kind, n)| (kind.name().to_owned(), n))
        .collect()
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PhaseReport {
    pub name: String,
    /// The load in words, e.g. "constant 100 req/s", "ramp 10→50 req/s",
    /// "closed 5 users, think 1s–3s", "sweep concurrency 20,24,32".
    pub load: String,
    /// The phase's planned length; with `planned_requests`, its longest.
    pub planned_duration_s: f64,
    /// The request count the phase stops at, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned_requests: Option<u64>,
    /// Where the phase ran on the run clock (seconds).
    pub start_s: f64,
    pub end_s: f64,
    /// Output tokens asked of each request (the phase's payload).
    pub max_tokens: u32,
    pub stats: StatsBlock,
    /// One per step: a sweep has one per level, other loads exactly one.
    pub steps: Vec<StepReport>,
    pub models: Vec<ModelReport>,
    /// Per task of the phase, when the plan declared `[[tasks]]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tasks: Vec<TaskReport>,
    /// Peak requests in flight during this phase.
    pub peak_concurrency: u64,
    /// The sampled server-side values within the phase's window.
    pub sampled: Vec<WindowStats>,
}

impl PhaseReport {
    /// The sampled value `name` within this phase, if it has samples.
    pub fn sampled(&self, name: &str) -> Option<&WindowStats> {
        window_value(&self.sampled, name)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepReport {
    /// e.g. "c=20" for a sweep level.
    pub label: String,
    /// Concurrency of a closed-loop step, if any.
    pub concurrency: Option<u64>,
    /// Where the step ran on the run clock (seconds).
    pub start_s: f64,
    pub end_s: f64,
    pub stats: StatsBlock,
    /// The sampled server-side values within the step's window (the GPU,
    /// memory, queue and KV columns of a stress sweep).
    pub sampled: Vec<WindowStats>,
}

impl StepReport {
    /// The sampled value `name` within this step, if it has samples.
    pub fn sampled(&self, name: &str) -> Option<&WindowStats> {
        window_value(&self.sampled, name)
    }
}

/// A sampled value summed up within a phase's or a step's window, in its
/// stored unit (ratio, bytes, count, ...).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WindowStats {
    pub name: String,
    pub unit: String,
    #[serde(flatten)]
    pub stats: SeriesStats,
}

impl WindowStats {
    /// `series` summed up within `(start, end]`; `None` without samples.
    pub fn of(series: &Series, start: f64, end: f64) -> Option<WindowStats> {
        let stats = series.within(start, end).stats();
        (stats.samples > 0).then(|| WindowStats {
            name: series.name.clone(),
            unit: series.unit.clone(),
            stats,
        })
    }
}

fn window_value<'a>(values: &'a [WindowStats], name: &str) -> Option<&'a WindowStats> {
    values
        .iter()
        .find(|v| v.name == name && v.stats.samples > 0)
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelReport {
    pub model: String,
    /// Share of requests the plan gave this model (0..1).
    pub weight: f64,
    pub stats: StatsBlock,
}

/// One task of the plan (`[[tasks]]`): where it sent, the share it was
/// given and got, its statistics and its checks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskReport {
    pub task: String,
    /// "POST /v1/chat/completions", "GET /health".
    pub endpoint: String,
    /// Share of requests the plan gave this task among the phases' tasks
    /// (0..1); the share it got is `stats.requests` over the scope's.
    pub weight: f64,
    pub stats: StatsBlock,
    /// The task's checks over the run (empty in a phase's breakdown).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CheckReport>,
}

/// One check of a task: how often it held, and its first failures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckReport {
    pub name: String,
    pub passed: u64,
    pub failed: u64,
    /// passed / (passed + failed); `None` when it was never judged.
    pub pass_rate: Option<f64>,
    /// The first failures (at most five), with what the check found.
    pub samples: Vec<CheckFailure>,
}

/// A failed check's evidence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckFailure {
    /// When the request ended, in seconds on the run clock.
    pub at_s: f64,
    pub status: u16,
    pub detail: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThresholdStatus {
    Pass,
    Fail,
    /// The metric had no data (e.g. TTFT without streaming): a failure.
    NoData,
}

/// Where a threshold applies: the whole run, one phase, one model or one
/// task.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum Scope {
    Run,
    Phase(String),
    Model(String),
    Task(String),
}

impl Scope {
    /// "run", the phase's name, "model <name>" or "task <name>".
    pub fn label(&self) -> String {
        match self {
            Scope::Run => "run".to_owned(),
            Scope::Phase(name) => name.clone(),
            Scope::Model(name) => format!("model {name}"),
            Scope::Task(name) => format!("task {name}"),
        }
    }
}

/// One threshold as judged: what it measures (typed, so renderers place
/// it without reading the expression), where, the bound, the figure
/// achieved and the status that entered the verdict.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ThresholdResult {
    /// As written in the plan, e.g. "p95(latency) < 950ms".
    pub expression: String,
    pub scope: Scope,
    pub metric: Metric,
    /// Human label, e.g. "P95 Latency".
    pub label: String,
    /// The bound, e.g. "< 950ms".
    pub target: String,
    pub achieved: Option<f64>,
    /// The achieved value in the threshold's unit, e.g. "847ms", "0.23%";
    /// "no data" when there was none.
    pub achieved_display: String,
    pub status: ThresholdStatus,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GeneratorHealth {
    /// False when infercheck itself was the bottleneck.
    pub valid: bool,
    pub reasons: Vec<String>,
    /// Process CPU in cores busy (1.0 = one core saturated).
    pub cpu_cores_avg: f64,
    pub cpu_cores_max: f64,
    pub cores_available: u64,
    pub schedule_lag_p99_ms: Option<f64>,
    /// Sends later than the lag tolerance, out of all sends.
    pub late_sends: u64,
    /// Arrivals never sent because the run ended first (still counted).
    pub unsent_arrivals: u64,
}

fn one_second() -> f64 {
    1.0
}

/// A per-second client series: its name and how a second reads it.
pub type ClientSeries = (&'static str, fn(&IntervalSummary) -> Option<f64>);

impl IntervalSummary {
    /// The per-second client series the analysis correlates with the
    /// server's (latency drivers), by name.
    pub const CLIENT_SERIES: [ClientSeries; 4] = [
        ("latency p95", |i| i.latency_p95_ms),
        ("TTFT p95", |i| i.ttft_p95_ms),
        ("TPOT p95", |i| i.tpot_p95_ms),
        ("error rate", |i| {
            (i.requests > 0).then(|| i.errors as f64 / i.requests as f64)
        }),
    ];

    /// The client series `name` of this second.
    pub fn client_series(&self, name: &str) -> Option<f64> {
        let (_, read) = Self::CLIENT_SERIES.iter().find(|(n, _)| *n == name)?;
        read(self)
    }
}

/// One second of the run, as appended to intervals.jsonl.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IntervalSummary {
    /// Seconds since the run started, at the interval's end.
    pub t: f64,
    /// Length of the interval: 1 s, except a run's last, partial one.
    #[serde(default = "one_second")]
    pub duration_s: f64,
    pub phase: String,
    pub requests: u64,
    pub ok: u64,
    pub errors: u64,
    /// Requests completed in this second.
    pub rps: f64,
    pub target_rps: Option<f64>,
    pub in_flight: u64,
    pub output_tokens: u64,
    pub latency_p50_ms: Option<f64>,
    pub latency_p95_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    pub ttft_p95_ms: Option<f64>,
    #[serde(default)]
    pub tpot_p95_ms: Option<f64>,
    pub schedule_lag_p99_ms: Option<f64>,
}
