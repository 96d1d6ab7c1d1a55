//! Per-task results (`[[tasks]]`): each task's statistics over the run
//! and within each phase, the share of requests the plan gave it, and its
//! checks with their pass rates and first failures.

use crate::aggregate::{Aggregator, CheckTally, StepState};
use crate::plan::{Phase, Plan};
use crate::report::{CheckFailure, CheckReport, StatsBlock, TaskReport};
use crate::stats::MetricSet;

/// Every task over the whole run, with its checks; empty for a plan
/// without `[[tasks]]`.
pub(super) fn run_tasks(plan: &Plan, agg: &Aggregator, elapsed_s: f64) -> Vec<TaskReport> {
    if !plan.has_tasks() {
        return Vec::new();
    }
    let steps: Vec<&StepState> = agg.phases.iter().flat_map(|p| &p.steps).collect();
    let all: Vec<usize> = (0..plan.tasks.len()).collect();
    let mut reports = task_reports(plan, &all, &steps, elapsed_s);
    for ((report, task), tallies) in reports.iter_mut().zip(&plan.tasks).zip(&agg.checks) {
        report.checks = task
            .checks
            .iter()
            .zip(tallies)
            .map(|(check, tally)| check_report(&check.name, tally))
            .collect();
    }
    reports
}

/// The tasks `phase` drew from, summed over its steps.
pub(super) fn phase_tasks(
    plan: &Plan,
    phase: &Phase,
    steps: &[StepState],
    seconds: f64,
) -> Vec<TaskReport> {
    if !plan.has_tasks() {
        return Vec::new();
    }
    let steps: Vec<&StepState> = steps.iter().collect();
    task_reports(plan, &plan.phase_tasks(phase), &steps, seconds)
}

/// Tasks `drawn` summed over `steps`, each weighed among `drawn`.
fn task_reports(
    plan: &Plan,
    drawn: &[usize],
    steps: &[&StepState],
    seconds: f64,
) -> Vec<TaskReport> {
    let total_weight: f64 = drawn.iter().map(|&t| plan.tasks[t].weight).sum();
    drawn
        .iter()
        .map(|&i| {
            let mut set = MetricSet::default();
            for step in steps {
                set += step.task(i);
            }
            TaskReport {
                task: plan.tasks[i].name.clone(),
                endpoint: endpoint(plan, i),
                weight: share(plan.tasks[i].weight, total_weight),
                stats: StatsBlock::from_set(&set, seconds, None),
                checks: Vec::new(),
            }
        })
        .collect()
}

fn endpoint(plan: &Plan, task: usize) -> String {
    let (method, path) = plan.tasks[task].endpoint();
    format!("{method} {path}")
}

fn share(weight: f64, total: f64) -> f64 {
    if total > 0.0 { weight / total } else { 0.0 }
}

fn check_report(name: &str, tally: &CheckTally) -> CheckReport {
    let judged = tally.passed + tally.failed;
    CheckReport {
        name: name.to_owned(),
        passed: tally.passed,
        failed: tally.failed,
        pass_rate: (judged > 0).then(|| tally.passed as f64 / judged as f64),
        samples: tally
            .samples
            .iter()
            .map(|s| CheckFailure {
                at_s: s.at_s,
                status: s.status,
                detail: s.detail.clone(),
            })
            .collect(),
    }
}
