//! Presentation logic shared by the text renderers (Markdown, HTML,
//! terminal): PASS/FAIL marks and the rows of every table, built from the
//! model (numbers read through `format`).
//!
//! Everything here is a pure function of the [`Report`]: no I/O, no clock,
//! no statistics (percentiles are already in the model), and no markup —
//! a renderer decides how a [`Table`] or a [`Fact`] is written, and escapes
//! the text it is given.

use super::model::{
    GeneratorHealth, Outcome, PhaseReport, Report, Scope, StatsBlock, ThresholdResult,
    ThresholdStatus, WindowStats,
};
use super::placement::Placement;
use crate::metric::{Metric, Stat};
use crate::stats::{Distribution, Quantiles, distribution};

pub(crate) use super::format::{
    NONE, count, duration, fixed, ms, opt_ms, pct, rate, secs2, target_rate,
};

/// Said under every latency table: which clock latency starts from.
pub(crate) const LATENCY_NOTE: &str = "Latency is measured from the intended send time \
     (coordinated-omission corrected); service time from the actual send.";

/// A table as text cells; renderers add the markup and the escaping.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub(crate) fn new(headers: &[&str]) -> Self {
        Table {
            headers: headers.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }
}

/// One "label: value" line of a list (executive summary, phase facts).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Fact {
    pub label: String,
    pub value: String,
    /// Items under the line (the reasons behind a verdict).
    pub details: Vec<String>,
}

pub(crate) fn fact(label: &str, value: String) -> Fact {
    Fact {
        label: label.to_owned(),
        value,
        details: Vec::new(),
    }
}

impl Fact {
    pub(crate) fn with_details(mut self, details: Vec<String>) -> Fact {
        self.details = details;
        self
    }
}

// ---------------------------------------------------------------------------
// Marks

pub(crate) fn status_mark(status: ThresholdStatus) -> &'static str {
    match status {
        ThresholdStatus::Pass => "✅ PASS",
        ThresholdStatus::Fail => "❌ FAIL",
        ThresholdStatus::NoData => "⚠️ NO DATA",
    }
}

/// The terminal's mark: plain words, because emoji widths vary by terminal.
pub(crate) fn status_word(status: ThresholdStatus) -> &'static str {
    match status {
        ThresholdStatus::Pass => "PASS",
        ThresholdStatus::Fail => "FAIL",
        ThresholdStatus::NoData => "NO DATA",
    }
}

pub(crate) fn outcome_mark(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Pass => "✅ PASS",
        Outcome::Fail => "❌ FAIL",
        Outcome::Invalid => "⚠️ INVALID",
        Outcome::Interrupted => "⏹ INTERRUPTED",
        Outcome::Unreachable => "⛔ UNREACHABLE",
    }
}

pub(crate) fn outcome_word(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Pass => "PASS",
        Outcome::Fail => "FAIL",
        Outcome::Invalid => "INVALID",
        Outcome::Interrupted => "INTERRUPTED",
        Outcome::Unreachable => "UNREACHABLE",
    }
}

/// What the outcome means, in a few words after its mark.
pub(crate) fn outcome_gloss(report: &Report) -> String {
    let total = report.thresholds.len();
    let missed = report
        .thresholds
        .iter()
        .filter(|t| t.status != ThresholdStatus::Pass)
        .count();
    let noun = if total == 1 {
        "threshold"
    } else {
        "thresholds"
    };
    match report.verdict.outcome {
        Outcome::Pass if total == 0 => "no thresholds set".to_owned(),
        Outcome::Pass if total == 1 => "the one threshold met".to_owned(),
        Outcome::Pass => format!("all {total} thresholds met"),
        Outcome::Fail => format!("{missed} of {total} {noun} not met"),
        Outcome::Invalid => {
            "the generator was the bottleneck; numbers cannot be trusted".to_owned()
        }
        Outcome::Interrupted => "stopped early; the report is partial".to_owned(),
        Outcome::Unreachable => "the target never answered; nothing was measured".to_owned(),
    }
}

// ---------------------------------------------------------------------------
// Sections

/// "Run `id` · started … · target …": who, when, against what.
pub(crate) fn run_line(report: &Report) -> (String, String, String) {
    let mut target = report.target.base_url.clone();
    if report.target.embedded_simulator {
        target.push_str(" (embedded simulator)");
    }
    (report.run_id.clone(), report.started_at.clone(), target)
}

fn requests_text(stats: &StatsBlock) -> String {
    let errors: u64 = stats.errors.values().sum();
    format!(
        "{} ({} ok, {} errors)",
        count(stats.requests),
        count(stats.ok),
        count(errors)
    )
}

fn rate_vs_target(achieved: f64, target: Option<f64>) -> String {
    match target {
        Some(t) => format!("{} req/s (target {})", rate(achieved), target_rate(t)),
        None => format!("{} req/s", rate(achieved)),
    }
}

/// Executive summary, without the verdict (renderers add its mark).
pub(crate) fn executive_facts(report: &Report) -> Vec<Fact> {
    let s = &report.summary;
    let phases: Vec<String> = report
        .phases
        .iter()
        .map(|p| format!("{}: {}", p.name, duration(p.stats.duration_s)))
        .collect();
    let mut test_duration = duration(report.duration_s);
    if !phases.is_empty() {
        test_duration = format!("{test_duration} ({})", phases.join(", "));
    }
    let requests = format!(
        "{} ({} ok, {} errors)",
        count(s.requests),
        count(s.ok),
        count(s.errors)
    );
    vec![
        fact("Test Duration", test_duration),
        fact("Peak Concurrency", count(s.peak_concurrency)),
        fact("Peak QPS", rate_vs_target(s.peak_rps, s.peak_target_rps)),
        fact("Requests", requests),
    ]
}

/// Above this share of failed requests the HTTP table shows latency over
/// every request beside the successes' (a run with 356 of 360 timeouts
/// must not show a clean p95).
const ALL_REQUESTS_ABOVE: f64 = 0.01;

/// The metrics of the fixed rows of "HTTP Metrics", in order.
pub(crate) fn http_row_metrics() -> Vec<Metric> {
    let d = |stat, of| Metric::Distribution { stat, of };
    vec![
        d(Stat::P50, Distribution::Latency),
        d(Stat::P95, Distribution::Latency),
        d(Stat::P99, Distribution::Latency),
        d(Stat::P50, Distribution::LatencyAll),
        d(Stat::P95, Distribution::LatencyAll),
        d(Stat::P99, Distribution::LatencyAll),
        d(Stat::P95, Distribution::ServiceTime),
        Metric::ErrorRate,
        Metric::TimeoutRate,
        Metric::PeakRps,
        Metric::Rps,
        Metric::Goodput,
        Metric::SloAttainment,
    ]
}

/// Whether a fixed row is shown without a threshold on it: the
/// all-requests latency only when failures passed 1 %, goodput rows only
/// with an `[slo]`.
fn http_row_shown(report: &Report, metric: &Metric) -> bool {
    let o = &report.overall;
    match metric {
        Metric::Distribution {
            of: Distribution::LatencyAll,
            ..
        } => o.error_rate > ALL_REQUESTS_ABOVE,
        Metric::Goodput | Metric::SloAttainment => o.slo_attainment.is_some(),
        _ => true,
    }
}

/// What a fixed HTTP row shows as achieved, over the whole run.
fn http_achieved(report: &Report, metric: &Metric) -> String {
    let o = &report.overall;
    match metric {
        Metric::Distribution { stat, of } => opt_ms(o.quantiles(*of).map(|q| stat.of(&q))),
        Metric::ErrorRate => pct(o.error_rate),
        Metric::TimeoutRate => pct(o.timeout_rate),
        Metric::PeakRps => rate(report.summary.peak_rps),
        Metric::Rps => rate(report.summary.achieved_rps),
        Metric::Goodput => o.goodput_per_s.map_or_else(|| NONE.to_owned(), rate),
        Metric::SloAttainment => o.slo_attainment.map_or_else(|| NONE.to_owned(), pct),
        _ => NONE.to_owned(),
    }
}

/// A fixed row's Target and Status: its threshold's, or "—" for both
/// (a row without a threshold has no status: nothing entered the verdict).
pub(crate) fn target_and_status(t: Option<&ThresholdResult>) -> (String, String) {
    match t {
        Some(t) => (t.target.clone(), status_mark(t.status).to_owned()),
        None => (NONE.to_owned(), NONE.to_owned()),
    }
}

pub(crate) fn threshold_row(t: &ThresholdResult) -> Vec<String> {
    vec![
        t.label.clone(),
        t.target.clone(),
        achieved_text(t),
        status_mark(t.status).to_owned(),
    ]
}

/// The achieved value, or "—" when the model holds no text for it.
pub(crate) fn achieved_text(t: &ThresholdResult) -> String {
    if t.achieved_display.is_empty() {
        NONE.to_owned()
    } else {
        t.achieved_display.clone()
    }
}

/// "HTTP Metrics": the fixed rows, each with the run-scope threshold on
/// its metric (see `placement`), then every other run-scope threshold on
/// request statistics.
pub(crate) fn http_metrics(report: &Report) -> Table {
    let placed = Placement::of(report);
    let mut table = Table::new(&["Metric", "Target", "Achieved", "Status"]);
    for metric in http_row_metrics() {
        let threshold = placed.on_row(&metric);
        if threshold.is_none() && !http_row_shown(report, &metric) {
            continue;
        }
        let (target, status) = target_and_status(threshold);
        let achieved = http_achieved(report, &metric);
        table
            .rows
            .push(vec![metric.label(), target, achieved, status]);
    }
    table
        .rows
        .extend(placed.http_extra.into_iter().map(threshold_row));
    table
}

/// "Other Thresholds": run-scope thresholds on server-side figures that no
/// fixed row shows (a custom query, another statistic of a sampled value,
/// alerts, query latency); None when there are none.
pub(crate) fn other_thresholds(report: &Report) -> Option<Table> {
    let placed = Placement::of(report);
    let mut table = Table::new(&["Metric", "Target", "Achieved", "Status"]);
    table.rows = placed.other.into_iter().map(threshold_row).collect();
    (!table.rows.is_empty()).then_some(table)
}

/// Requests by error kind, largest first; None when nothing failed.
pub(crate) fn errors(stats: &StatsBlock) -> Option<Table> {
    if stats.errors.values().all(|n| *n == 0) {
        return None;
    }
    let mut kinds: Vec<(&String, &u64)> = stats.errors.iter().filter(|(_, n)| **n > 0).collect();
    kinds.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let mut table = Table::new(&["Error Kind", "Requests", "Share of Requests"]);
    for (kind, n) in kinds {
        let share = if stats.requests == 0 {
            0.0
        } else {
            *n as f64 / stats.requests as f64
        };
        table.rows.push(vec![kind.clone(), count(*n), pct(share)]);
    }
    Some(table)
}

/// "Phase 2: sweep (1m, sweep concurrency 4,8,16)".
pub(crate) fn phase_heading(index: usize, phase: &PhaseReport) -> String {
    format!(
        "Phase {}: {} ({}, {})",
        index + 1,
        phase.name,
        duration(phase.planned_duration_s),
        phase.load
    )
}

/// The compact list under a phase heading.
pub(crate) fn phase_facts(phase: &PhaseReport) -> Vec<Fact> {
    let s = &phase.stats;
    let percentiles = match s.quantiles(Distribution::Latency) {
        Some(q) => format!("{} / {} / {}", ms(q.p50), ms(q.p95), ms(q.p99)),
        None => NONE.to_owned(),
    };
    let mut facts = vec![
        fact("Requests", requests_text(s)),
        fact("Throughput", rate_vs_target(s.rps, s.target_rps)),
        fact("Latency p50 / p95 / p99", percentiles),
        fact("Error Rate", pct(s.error_rate)),
        fact(
            "Service Time p95",
            opt_ms(s.quantiles(Distribution::ServiceTime).map(|q| q.p95)),
        ),
        fact(
            "Schedule Lag p99",
            opt_ms(s.quantiles(Distribution::ScheduleLag).map(|q| q.p99)),
        ),
        fact("Peak Concurrency", count(phase.peak_concurrency)),
    ];
    if let Some(server) = phase_server_line(phase) {
        facts.push(fact("Server", server));
    }
    // A phase stopped by its request count says when it got there; an
    // interrupted phase ran shorter than planned: say so next to its numbers.
    if let Some(planned) = phase.planned_requests {
        let done = s.requests >= planned;
        let ran = format!(
            "{} of {planned} requests in {} ({})",
            count(s.requests),
            duration(s.duration_s),
            if done {
                format!("longest {}", duration(phase.planned_duration_s))
            } else {
                format!(
                    "stopped before its count, longest {}",
                    duration(phase.planned_duration_s)
                )
            }
        );
        facts.push(fact("Ran", ran));
    } else if s.duration_s + 0.5 < phase.planned_duration_s {
        let ran = format!(
            "{} of {} planned",
            duration(s.duration_s),
            duration(phase.planned_duration_s)
        );
        facts.push(fact("Ran", ran));
    }
    facts
}

/// The thresholds of one scope (a phase's); None when it has none.
pub(crate) fn scope_thresholds(report: &Report, scope: &Scope) -> Option<Table> {
    let mut table = Table::new(&["Metric", "Target", "Achieved", "Status"]);
    table.rows = report
        .thresholds
        .iter()
        .filter(|t| t.scope == *scope)
        .map(threshold_row)
        .collect();
    (!table.rows.is_empty()).then_some(table)
}

/// The stress-sweep table of examples/001, one row per step, with the
/// server's queue and KV cache beside its GPU and memory (sampled within
/// each step's window) and the step's errors; None unless the phase has
/// more than one step.
pub(crate) fn sweep(phase: &PhaseReport) -> Option<Table> {
    if phase.steps.len() < 2 {
        return None;
    }
    let headers = [
        "Concurrency",
        "RPS",
        "p95 Latency (s)",
        "Avg GPU Util %",
        "Max Mem (MiB)",
        "Max Queue",
        "Max KV %",
        "Errors",
    ];
    let mut table = Table::new(&headers);
    for step in &phase.steps {
        let level = step.concurrency.map_or_else(|| step.label.clone(), count);
        let p95 = step
            .stats
            .quantiles(Distribution::Latency)
            .map_or_else(|| NONE.to_owned(), |q| secs2(q.p95));
        let sampled =
            |name: &str, stat: fn(&WindowStats) -> Option<f64>, show: fn(f64) -> String| {
                step.sampled(name)
                    .and_then(stat)
                    .map_or_else(|| NONE.to_owned(), show)
            };
        let errors: u64 = step.stats.errors.values().sum();
        table.rows.push(vec![
            level,
            fixed(step.stats.rps, 2),
            p95,
            sampled("gpu_util", |w| w.stats.avg, |u| fixed(u * 100.0, 1)),
            sampled("vram_used", |w| w.stats.max, |b| fixed(b / 1_048_576.0, 0)),
            sampled("queue_depth", |w| w.stats.max, |q| count(q as u64)),
            sampled("kv_usage", |w| w.stats.max, |k| fixed(k * 100.0, 1)),
            count(errors),
        ]);
    }
    Some(table)
}

/// What a sweep's requests asked for: "64-token outputs".
pub(crate) fn sweep_payload(phase: &PhaseReport) -> String {
    format!("{}-token outputs", phase.max_tokens)
}

/// The phase's server side in one line: "queue max 47 · GPU peak 73.0%
/// (avg 61.0%) · KV peak 53.0% · batch avg 9.4"; None when nothing was
/// sampled within the phase.
pub(crate) fn phase_server_line(phase: &PhaseReport) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(q) = phase.sampled("queue_depth").and_then(|w| w.stats.max) {
        parts.push(format!("queue max {}", count(q as u64)));
    }
    if let Some(g) = phase.sampled("gpu_util") {
        let avg = g
            .stats
            .avg
            .map(|a| format!(" (avg {})", pct(a)))
            .unwrap_or_default();
        parts.extend(g.stats.max.map(|m| format!("GPU peak {}{avg}", pct(m))));
    }
    if let Some(k) = phase.sampled("kv_usage").and_then(|w| w.stats.max) {
        parts.push(format!("KV peak {}", pct(k)));
    }
    if let Some(b) = phase.sampled("running").and_then(|w| w.stats.avg) {
        parts.push(format!("running avg {b:.1}"));
    }
    if let Some(v) = phase.sampled("vram_used").and_then(|w| w.stats.max) {
        parts.push(format!("VRAM peak {:.1}GiB", v / 1024.0 / 1024.0 / 1024.0));
    }
    (!parts.is_empty()).then(|| parts.join(" · "))
}

/// A value of a distribution in its unit: "56.6ms", "105.4 tok/s".
pub(crate) fn distribution_value(d: Distribution, v: f64) -> String {
    match d.spec().unit {
        distribution::Unit::Time => ms(v),
        distribution::Unit::PerSecond(of) => format!("{} {of}/s", rate(v)),
    }
}

/// The best case of a distribution: its minimum, or for a rate (higher is
/// better) its maximum.
fn best_case(d: Distribution, q: &Quantiles) -> f64 {
    if d.spec().higher_is_better {
        q.max
    } else {
        q.min
    }
}

/// "Streaming UX" as in examples/001: every streaming distribution of the
/// table; None when no request streamed a token.
pub(crate) fn streaming(stats: &StatsBlock) -> Option<Table> {
    stats.quantiles(Distribution::Ttft)?;
    let mut table = Table::new(&["Metric", "Average", "p95", "Best Case"]);
    for d in Distribution::ALL.iter().copied() {
        if !d.spec().streaming {
            continue;
        }
        let cells = match stats.quantiles(d) {
            Some(q) => [q.mean, q.p95, best_case(d, &q)].map(|v| distribution_value(d, v)),
            None => [NONE, NONE, NONE].map(str::to_owned),
        };
        let mut row = vec![d.spec().label.to_owned()];
        row.extend(cells);
        table.rows.push(row);
    }
    Some(table)
}

/// How ITL was measured, under the streaming table; None without ITL.
pub(crate) fn itl_method(stats: &StatsBlock) -> Option<String> {
    stats.quantiles(Distribution::Itl)?;
    let by_usage = match stats.itl_from_usage {
        0 => "by content chunks (the server sent no per-chunk usage)".to_owned(),
        n if n == stats.ok => {
            "by the server's per-chunk usage (`continuous_usage_stats`)".to_owned()
        }
        n => format!(
            "by the server's per-chunk usage for {} of {} successful requests, by content chunks for the rest",
            count(n),
            count(stats.ok)
        ),
    };
    Some(format!(
        "ITL is per token: each socket read's gap since the previous one is split over the tokens it carried, counted {by_usage}; chunks that arrived in one read are one gap, never a 0 ms one."
    ))
}

/// "Client Distributions": every distribution of the table that has data
/// (k6's end-of-test trends), with what it measures; None without any.
pub(crate) fn distributions(stats: &StatsBlock) -> Option<Table> {
    let headers = [
        "Distribution",
        "Count",
        "Avg",
        "p50",
        "p90",
        "p95",
        "p99",
        "Max",
        "Measured as",
    ];
    let mut table = Table::new(&headers);
    for d in Distribution::ALL.iter().copied() {
        let Some(q) = stats.quantiles(d) else {
            continue;
        };
        let mut row = vec![d.spec().label.to_owned(), count(q.count)];
        row.extend([q.mean, q.p50, q.p90, q.p95, q.p99, q.max].map(|v| distribution_value(d, v)));
        row.push(d.spec().definition.to_owned());
        table.rows.push(row);
    }
    (!table.rows.is_empty()).then_some(table)
}

/// "Per-Model Breakdown"; None unless the run sent to several models.
pub(crate) fn models(report: &Report) -> Option<Table> {
    if report.models.len() < 2 {
        return None;
    }
    let headers = [
        "Model",
        "Weight",
        "Requests",
        "Share",
        "RPS",
        "p95 Latency",
        "p95 TTFT",
        "Error Rate",
    ];
    let mut table = Table::new(&headers);
    let total = report.overall.requests;
    for m in &report.models {
        let s = &m.stats;
        let share = if total == 0 {
            0.0
        } else {
            s.requests as f64 / total as f64
        };
        table.rows.push(vec![
            m.model.clone(),
            pct(m.weight),
            count(s.requests),
            pct(share),
            rate(s.rps),
            opt_ms(s.quantiles(Distribution::Latency).map(|q| q.p95)),
            opt_ms(s.quantiles(Distribution::Ttft).map(|q| q.p95)),
            pct(s.error_rate),
        ]);
    }
    Some(table)
}

/// Thresholds scoped to one model (scope "model <name>"); None when the
/// plan set none.
pub(crate) fn model_thresholds(report: &Report) -> Option<Table> {
    let mut table = Table::new(&["Model", "Metric", "Target", "Achieved", "Status"]);
    for t in &report.thresholds {
        if let Scope::Model(model) = &t.scope {
            let mut row = vec![model.clone()];
            row.extend(threshold_row(t));
            table.rows.push(row);
        }
    }
    (!table.rows.is_empty()).then_some(table)
}

/// "0.42 avg / 0.91 max of 16 cores".
pub(crate) fn cpu_text(g: &GeneratorHealth) -> String {
    format!(
        "{:.2} avg / {:.2} max of {} cores",
        g.cpu_cores_avg, g.cpu_cores_max, g.cores_available
    )
}

/// "Generator Health" without its validity line (renderers mark that).
pub(crate) fn generator_facts(report: &Report) -> Vec<Fact> {
    let g = &report.generator;
    vec![
        fact("CPU", cpu_text(g)),
        fact("Schedule Lag p99", opt_ms(g.schedule_lag_p99_ms)),
        fact(
            "Late Sends",
            format!(
                "{} of {} sent",
                count(g.late_sends),
                count(report.summary.requests)
            ),
        ),
        fact("Unsent Arrivals", count(g.unsent_arrivals)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::test_report::report;

    #[test]
    fn marks_name_every_status_and_outcome() {
        let cases = [
            (ThresholdStatus::Pass, "✅ PASS", "PASS"),
            (ThresholdStatus::Fail, "❌ FAIL", "FAIL"),
            (ThresholdStatus::NoData, "⚠️ NO DATA", "NO DATA"),
        ];
        for (status, mark, word) in cases {
            assert_eq!((status_mark(status), status_word(status)), (mark, word));
        }
        let cases = [
            (Outcome::Pass, "✅ PASS", "PASS"),
            (Outcome::Fail, "❌ FAIL", "FAIL"),
            (Outcome::Invalid, "⚠️ INVALID", "INVALID"),
            (Outcome::Interrupted, "⏹ INTERRUPTED", "INTERRUPTED"),
            (Outcome::Unreachable, "⛔ UNREACHABLE", "UNREACHABLE"),
        ];
        for (outcome, mark, word) in cases {
            assert_eq!((outcome_mark(outcome), outcome_word(outcome)), (mark, word));
        }
    }

    fn stats(requests: u64, errors: &[(&str, u64)]) -> StatsBlock {
        StatsBlock {
            requests,
            errors: errors.iter().map(|(k, n)| ((*k).to_owned(), *n)).collect(),
            ..StatsBlock::default()
        }
    }

    #[test]
    fn errors_table_sorts_by_count_and_is_absent_without_errors() {
        assert_eq!(errors(&stats(10, &[])), None);
        let table = errors(&stats(1_000, &[("http_5xx", 3), ("timeout", 9)])).unwrap();
        let want = [["timeout", "9", "0.90%"], ["http_5xx", "3", "0.30%"]];
        assert_eq!(
            table.rows,
            want.map(|r| r.map(String::from).to_vec()).to_vec()
        );
    }

    fn quantiles(mean: f64, p95: f64, min: f64, max: f64) -> Quantiles {
        Quantiles {
            count: 10,
            min,
            mean,
            p50: mean,
            p90: p95,
            p95,
            p99: max,
            max,
        }
    }

    #[test]
    fn streaming_rows_take_best_case_per_direction() {
        assert_eq!(streaming(&StatsBlock::default()), None);
        let block = StatsBlock {
            distributions: [
                ("ttft_ms", quantiles(56.6, 168.27, 18.5, 300.0)),
                ("tokens_per_s", quantiles(105.4, 98.0, 60.0, 113.4)),
            ]
            .map(|(k, q)| (k.to_owned(), q))
            .into(),
            ..StatsBlock::default()
        };
        let rows = streaming(&block).unwrap().rows;
        assert_eq!(rows[0], ["TTFT", "56.6ms", "168ms", "18.5ms"]);
        assert_eq!(rows[2], ["ITL", "—", "—", "—"]);
        assert_eq!(
            rows[4],
            [
                "Tokens/s per Request",
                "105.4 tok/s",
                "98.0 tok/s",
                "113.4 tok/s"
            ]
        );
    }

    fn threshold(
        scope: Scope,
        metric: Metric,
        target: &str,
        status: ThresholdStatus,
    ) -> ThresholdResult {
        ThresholdResult {
            expression: String::new(),
            scope,
            label: metric.label(),
            metric,
            target: target.into(),
            achieved: Some(1.0),
            achieved_display: "1".into(),
            status,
        }
    }

    fn p95(of: Distribution) -> Metric {
        Metric::Distribution {
            stat: Stat::P95,
            of,
        }
    }

    /// (label, target, status) of every HTTP Metrics row that has a
    /// target, fixed rows first.
    fn http_targets(thresholds: Vec<ThresholdResult>) -> Vec<(String, String, String)> {
        let table = http_metrics(&report(thresholds, Outcome::Pass));
        let fixed = [
            "P50 Latency",
            "P95 Latency",
            "P99 Latency",
            "P95 Service Time",
        ];
        assert!(table.rows.iter().take(4).map(|r| r[0].as_str()).eq(fixed));
        let shown = table.rows.into_iter().filter(|r| r[1] != NONE);
        shown
            .map(|r| (r[0].clone(), r[1].clone(), r[3].clone()))
            .collect()
    }

    #[test]
    fn http_metrics_take_the_first_run_threshold_of_each_row() {
        use ThresholdStatus::{Fail, NoData, Pass};
        let row = |l: &str, t: &str, s: &str| (l.to_owned(), t.to_owned(), s.to_owned());
        let latency = || p95(Distribution::Latency);
        let cases = [
            (vec![], vec![]),
            (
                vec![threshold(Scope::Run, latency(), "< 950ms", Pass)],
                vec![row("P95 Latency", "< 950ms", "✅ PASS")],
            ),
            // Phase and model thresholds belong to their own sections.
            (
                vec![
                    threshold(Scope::Phase("warmup".into()), latency(), "< 1s", Pass),
                    threshold(Scope::Model("m".into()), Metric::ErrorRate, "< 1%", Fail),
                ],
                vec![],
            ),
            // A second threshold on the same row is an extra row.
            (
                vec![
                    threshold(Scope::Run, latency(), "< 2s", Fail),
                    threshold(Scope::Run, latency(), "< 1s", Fail),
                ],
                vec![
                    row("P95 Latency", "< 2s", "❌ FAIL"),
                    row("P95 Latency", "< 1s", "❌ FAIL"),
                ],
            ),
            (
                vec![threshold(
                    Scope::Run,
                    p95(Distribution::Itl),
                    "< 50ms",
                    NoData,
                )],
                vec![row("P95 ITL", "< 50ms", "⚠️ NO DATA")],
            ),
            // Server-side thresholds are not HTTP rows.
            (
                vec![threshold(Scope::Run, Metric::AlertsFired, "== 0", Pass)],
                vec![],
            ),
        ];
        for (thresholds, want) in cases {
            assert_eq!(http_targets(thresholds.clone()), want, "{thresholds:?}");
        }
    }

    #[test]
    fn other_thresholds_hold_what_no_fixed_row_shows() {
        let kv = Metric::Sampled {
            stat: Stat::Max,
            name: "kv_usage".into(),
        };
        let thresholds = vec![
            threshold(Scope::Run, kv, "< 50%", ThresholdStatus::Fail),
            threshold(
                Scope::Run,
                p95(Distribution::Latency),
                "< 1s",
                ThresholdStatus::Pass,
            ),
        ];
        let table = other_thresholds(&report(thresholds, Outcome::Fail)).unwrap();
        assert_eq!(table.rows, [["Max kv_usage", "< 50%", "1", "❌ FAIL"]]);
        assert_eq!(other_thresholds(&report(Vec::new(), Outcome::Pass)), None);
    }

    #[test]
    fn every_distribution_with_data_gets_a_row() {
        let q = quantiles(10.0, 20.0, 1.0, 30.0);
        let block = StatsBlock {
            distributions: Distribution::ALL
                .iter()
                .map(|d| (d.spec().key.to_owned(), q))
                .collect(),
            ..StatsBlock::default()
        };
        let table = distributions(&block).unwrap();
        let labels: Vec<&str> = table.rows.iter().map(|r| r[0].as_str()).collect();
        let want: Vec<&str> = Distribution::ALL.iter().map(|d| d.spec().label).collect();
        assert_eq!(labels, want);
        let speed = table
            .rows
            .iter()
            .find(|r| r[0] == "Tokens/s per Request")
            .unwrap();
        assert_eq!(speed[2], "10.0 tok/s");
        assert_eq!(distributions(&StatsBlock::default()), None);
    }

    #[test]
    fn outcome_gloss_counts_thresholds() {
        use ThresholdStatus::{Fail, NoData, Pass};
        let t = |s| threshold(Scope::Run, Metric::ErrorRate, "< 1%", s);
        let cases = [
            (vec![], Outcome::Pass, "no thresholds set"),
            (
                vec![t(Pass), t(Pass)],
                Outcome::Pass,
                "all 2 thresholds met",
            ),
            (
                vec![t(Pass), t(Fail), t(NoData)],
                Outcome::Fail,
                "2 of 3 thresholds not met",
            ),
            (
                vec![t(Pass)],
                Outcome::Interrupted,
                "stopped early; the report is partial",
            ),
        ];
        for (thresholds, outcome, want) in cases {
            assert_eq!(outcome_gloss(&report(thresholds, outcome)), want);
        }
    }
}
