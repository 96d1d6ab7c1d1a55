//! The "Per-Task Breakdown" section: each task's share, latency, errors
//! and check pass rate (run-wide and per phase), the checks with their
//! first failure, and the thresholds scoped to a task.

use super::format::{count, opt_ms, pct, rate};
use super::model::{PhaseReport, Report, Scope, StatsBlock, TaskReport};
use super::view::{Table, threshold_row};
use crate::stats::Distribution;

/// Each task over the run; None for a plan without `[[tasks]]`.
pub(crate) fn tasks(report: &Report) -> Option<Table> {
    breakdown(&report.tasks, report.overall.requests)
}

/// Each task within one phase; None without tasks, or with just one.
pub(crate) fn phase_tasks(phase: &PhaseReport) -> Option<Table> {
    (phase.tasks.len() > 1)
        .then(|| breakdown(&phase.tasks, phase.stats.requests))
        .flatten()
}

fn breakdown(tasks: &[TaskReport], total: u64) -> Option<Table> {
    if tasks.is_empty() {
        return None;
    }
    let mut table = Table::new(&[
        "Task",
        "Endpoint",
        "Weight",
        "Share",
        "Requests",
        "RPS",
        "p50 Latency",
        "p95 Latency",
        "p99 Latency",
        "p95 TTFT",
        "Error Rate",
        "Checks",
    ]);
    for t in tasks {
        let s = &t.stats;
        let latency = |pick: fn(&crate::stats::Quantiles) -> f64| {
            opt_ms(s.quantiles(Distribution::Latency).map(|q| pick(&q)))
        };
        table.rows.push(vec![
            t.task.clone(),
            t.endpoint.clone(),
            pct(t.weight),
            pct(share(s.requests, total)),
            count(s.requests),
            rate(s.rps),
            latency(|q| q.p50),
            latency(|q| q.p95),
            latency(|q| q.p99),
            opt_ms(s.quantiles(Distribution::Ttft).map(|q| q.p95)),
            pct(s.error_rate),
            checks_text(s),
        ]);
    }
    Some(table)
}

fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// "99.5% of 400", or "—" without checks.
fn checks_text(s: &StatsBlock) -> String {
    match s.checks_rate() {
        Some(r) => format!("{} of {}", pct(r), count(s.checks_passed + s.checks_failed)),
        None => "—".to_owned(),
    }
}

/// Every check of every task; None when the plan has none.
pub(crate) fn checks(report: &Report) -> Option<Table> {
    let mut table = Table::new(&[
        "Task",
        "Check",
        "Passed",
        "Failed",
        "Pass Rate",
        "First Failure",
    ]);
    for t in &report.tasks {
        for c in &t.checks {
            let first = c.samples.first().map_or_else(
                || "—".to_owned(),
                |s| format!("at {:.1}s, status {}: {}", s.at_s, s.status, s.detail),
            );
            table.rows.push(vec![
                t.task.clone(),
                c.name.clone(),
                count(c.passed),
                count(c.failed),
                c.pass_rate.map_or_else(|| "no data".to_owned(), pct),
                first,
            ]);
        }
    }
    (!table.rows.is_empty()).then_some(table)
}

/// Thresholds scoped to one task; None when the plan set none.
pub(crate) fn task_thresholds(report: &Report) -> Option<Table> {
    let mut table = Table::new(&["Task", "Metric", "Target", "Achieved", "Status"]);
    for t in &report.thresholds {
        if let Scope::Task(task) = &t.scope {
            let mut row = vec![task.clone()];
            row.extend(threshold_row(t));
            table.rows.push(row);
        }
    }
    (!table.rows.is_empty()).then_some(table)
}

/// "98.5% of 1,200 passed; failing: health /status == \"ok\" 0% (/status
/// is \"degraded\")", or None without checks.
pub(crate) fn terminal_line(report: &Report) -> Option<String> {
    let rate = report.overall.checks_rate()?;
    let all = report.overall.checks_passed + report.overall.checks_failed;
    let failing: Vec<String> = report
        .tasks
        .iter()
        .flat_map(|t| t.checks.iter().map(move |c| (t, c)))
        .filter(|(_, c)| c.failed > 0)
        .map(|(t, c)| {
            let sample = c
                .samples
                .first()
                .map_or_else(String::new, |s| format!(" ({})", s.detail));
            let rate = c.pass_rate.map_or_else(|| "no data".to_owned(), pct);
            format!("{} {} {rate}{sample}", t.task, c.name)
        })
        .collect();
    let mut text = format!("{} of {} passed", pct(rate), count(all));
    if !failing.is_empty() {
        text.push_str("; failing: ");
        text.push_str(&failing.join(", "));
    }
    Some(text)
}
