//! The observability validator's findings (examples/000: "Prometheus
//! Metrics: all queries responding < 100ms", "Alert Rules: no false
//! positives during test", "Dashboard Response: sub-second refresh
//! rates"): whether every query and dashboard panel returns data, the
//! rules' health, how fast Grafana's panel queries answer, and the fault
//! drills' alerts. Plain serde data; built by `validate`.

use serde::{Deserialize, Serialize};

/// `infercheck validate`'s result, also `report.validation` of a run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Validation {
    pub prometheus: String,
    /// The window the data checks covered (Unix seconds).
    pub window: (f64, f64),
    /// The query sets' queries.
    pub queries: Vec<QueryCheck>,
    /// Their response times ("Prometheus Metrics: all queries responding
    /// < 100ms").
    #[serde(default)]
    pub query_response: ResponseTimes,
    pub dashboards: Vec<DashboardCheck>,
    pub rules: Option<RulesCheck>,
    /// Fault drills of the run, with the alerts each raised.
    #[serde(default)]
    pub drills: Option<DrillsCheck>,
    /// What could not be checked at all (Prometheus down, a file unreadable).
    pub errors: Vec<String>,
    pub pass: bool,
}

/// One query, run over the window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QueryCheck {
    /// The query set, or `dashboard / panel`.
    pub origin: String,
    pub name: String,
    pub expr: String,
    pub outcome: QueryOutcome,
    /// Round trip of the range query, milliseconds.
    pub latency_ms: f64,
}

/// What a query returned.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum QueryOutcome {
    /// Series with samples in the window.
    Data { series: usize },
    /// No data: the metric names Prometheus does not have at all, and the
    /// selectors whose metric exists but whose labels match none of it.
    NoData {
        absent_metrics: Vec<String>,
        other_labels: Vec<LabelMismatch>,
    },
    /// Prometheus refused or failed the query.
    Error { message: String },
}

impl QueryOutcome {
    pub fn has_data(&self) -> bool {
        matches!(self, QueryOutcome::Data { .. })
    }
}

/// A selector whose metric exists with other labels.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LabelMismatch {
    pub selector: String,
    /// (label, values the metric carries for it in the window).
    pub labels: Vec<(String, Vec<String>)>,
}

/// One dashboard: its panels' data and response times.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DashboardCheck {
    pub file: String,
    pub title: String,
    pub uid: String,
    pub panels: usize,
    /// One per panel query, `origin` = panel title.
    pub queries: Vec<QueryCheck>,
    /// The default range Grafana opens it at, seconds.
    pub range_s: f64,
    /// Every panel query as Grafana issues it (range query over the
    /// default range at the panel's step), timed.
    pub response: ResponseTimes,
}

/// Response times of a set of queries, milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ResponseTimes {
    pub queries: usize,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub max_ms: Option<f64>,
    /// All the queries of one refresh, issued concurrently as Grafana
    /// does: wall time until the last answered.
    pub refresh_ms: Option<f64>,
}

/// The rules Prometheus evaluates.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RulesCheck {
    pub groups: usize,
    pub rules: usize,
    /// Rules whose health is not ok or whose last evaluation failed.
    pub unhealthy: Vec<RuleProblem>,
    /// `prometheus_rule_evaluation_failures_total` increase over the
    /// window; `None` when Prometheus does not scrape itself.
    pub evaluation_failures: Option<f64>,
    /// Rules that read metrics no target exports (nor any rule records):
    /// they can never return data, so an alert among them never fires.
    pub blind: Vec<RuleProblem>,
}

/// One rule and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RuleProblem {
    pub group: String,
    pub name: String,
    pub detail: String,
}

/// The fault drills of a run and the alerts they raised.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DrillsCheck {
    pub drills: Vec<DrillResult>,
    /// Alerts that fired outside every drill expecting them.
    pub unexpected: Vec<UnexpectedAlert>,
    /// Expected alerts that fired within their bound / expected alerts.
    pub expected_fired: usize,
    pub expected: usize,
}

/// One drill (a phase with a fault).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DrillResult {
    pub phase: String,
    pub fault: String,
    /// Fault window on the run clock, seconds.
    pub start_s: f64,
    pub end_s: f64,
    /// Why the fault was not injected, when it was not.
    pub injection_error: Option<String>,
    pub alerts: Vec<ExpectedAlert>,
}

/// An alert a drill expects.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExpectedAlert {
    pub name: String,
    /// Seconds from the fault's start until it was first seen firing.
    pub delay_s: Option<f64>,
    /// `for` + 2 evaluation + 2 scrape intervals + the read step: the
    /// latest it may fire.
    pub bound_s: Option<f64>,
    /// Seconds from the fault's end until it stopped firing; `None` while
    /// it still fired at the end of the observation.
    pub resolved_after_s: Option<f64>,
    pub pass: bool,
    pub detail: String,
}

/// An alert that fired where no drill expected it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UnexpectedAlert {
    pub name: String,
    /// The phase it began firing in.
    pub phase: String,
    /// When, on the run clock.
    pub at_s: f64,
    pub labels: Vec<(String, String)>,
}
