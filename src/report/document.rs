//! The report as a document: the ordered sections of `report.md` and
//! `report.html` (examples/000 and 001), built once as [`Block`]s from
//! the rows and facts of `view`, `observed_view` and `trace_view`. The
//! Markdown and HTML renderers only write blocks in their syntax, so a
//! new section is one function here and appears in both formats.
//!
//! Pure: no I/O, no clock, no statistics, no markup.

use super::model::{Report, Scope};
use super::regression_model::Regression;
use super::repeat_model::Repeats;
use super::validation_model::Validation;
use super::view::{self, Fact, Table, fact};
use super::{
    explain_view, observed_view, regression_view, repeat_view, routing_view, server_view,
    session_view, task_view, trace_view, validation_view,
};

/// A chart the HTML page draws.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChartKind {
    /// Per-second latency percentiles over the run.
    LatencyOverTime,
    /// Per-second achieved (and target) rate over the run.
    RpsOverTime,
    /// p95 latency against concurrency, for the phase at this index.
    Sweep(usize),
    /// Sampled ratios (GPU, KV, memory) in percent, phase bounds marked.
    ServerOverTime,
    /// Sampled queue depth and running requests, phase bounds marked.
    QueueOverTime,
    /// The strongest driver: its server series against the client's.
    Driver,
}

/// One piece of the document, in reading order.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Block {
    /// A section heading; level 2 is a section, 3 a subsection.
    Heading(u8, String),
    /// "Label: value" lines.
    Facts(Vec<Fact>),
    /// Plain items (reasons, notes, caveats).
    List(Vec<String>),
    /// A remark on how to read what follows.
    Note(&'static str),
    Table(Table),
    /// Charts the HTML page draws under `title` when any has data
    /// (Markdown leaves charts out, title and all).
    Charts(Option<&'static str>, Vec<ChartKind>),
    /// p95 latency per run of the plan's history (`report.history`), which
    /// the HTML page draws; Markdown leaves it out.
    HistoryChart,
}

/// Every section, in order; sections without data are left out.
pub(crate) fn document(report: &Report) -> Vec<Block> {
    let mut doc = Vec::new();
    executive_summary(report, &mut doc);
    if let Some(r) = &report.regression {
        regression(r, 2, &mut doc);
    }
    if let Some(r) = &report.repeats {
        repeats(r, 2, &mut doc);
    }
    run_history(report, &mut doc);
    performance(report, &mut doc);
    engine(report, &mut doc);
    phases(report, &mut doc);
    streaming(report, &mut doc);
    latency_drivers(report, &mut doc);
    saturation(report, &mut doc);
    table_section(&mut doc, 2, "Recovery", explain_view::recovery(report));
    table_section(&mut doc, 2, "Steadiness", explain_view::steadiness(report));
    models(report, &mut doc);
    tasks(report, &mut doc);
    sessions(report, &mut doc);
    routing(report, &mut doc);
    observability(report, &mut doc);
    if let Some(v) = &report.validation {
        validation(v, 2, &mut doc);
    }
    let (e, checked) = (&report.explanation, &report.explanation.rules_checked);
    findings(
        &mut doc,
        "Identified Optimizations",
        &e.optimizations,
        &checked.optimizations,
    );
    findings(&mut doc, "Risk Assessment", &e.risks, &checked.risks);
    generator(report, &mut doc);
    notes(report, &mut doc);
    raw_data(report, &mut doc);
    doc
}

/// "Repeated Runs": each metric per run, its spread and the merged figure.
pub(crate) fn repeats(r: &Repeats, level: u8, doc: &mut Vec<Block>) {
    heading(doc, level, "Repeated Runs");
    doc.push(Block::Table(repeat_view::table(r)));
}

/// "Regression vs Baseline": who the baseline was, then the table.
pub(crate) fn regression(r: &Regression, level: u8, doc: &mut Vec<Block>) {
    heading(doc, level, "Regression vs Baseline");
    doc.push(Block::Facts(regression_view::facts(r)));
    doc.push(Block::Table(regression_view::table(r)));
    if !r.notes.is_empty() {
        doc.push(Block::List(r.notes.clone()));
    }
}

/// "Run History": the plan's last runs from the history, oldest first,
/// when it holds two or more.
fn run_history(report: &Report, doc: &mut Vec<Block>) {
    let Some(trend) = super::history_view::trend(report) else {
        return;
    };
    heading(doc, 2, "Run History");
    doc.push(Block::Facts(super::history_view::facts(trend)));
    doc.push(Block::Table(super::history_view::table(report, trend)));
    doc.push(Block::HistoryChart);
}

/// "Latency Drivers": the conclusion, how it was reached, the pairs.
fn latency_drivers(report: &Report, doc: &mut Vec<Block>) {
    let Some(table) = explain_view::drivers(report) else {
        return;
    };
    heading(doc, 2, "Latency Drivers");
    doc.push(Block::Facts(explain_view::drivers_facts(report)));
    doc.push(Block::Table(table));
    doc.push(Block::Charts(None, vec![ChartKind::Driver]));
}

/// "Saturation": per sweep or ramp, the knee and the verdict, the points.
fn saturation(report: &Report, doc: &mut Vec<Block>) {
    if report.explanation.saturation.is_empty() {
        return;
    }
    heading(doc, 2, "Saturation");
    for s in &report.explanation.saturation {
        heading(doc, 3, &format!("Phase {} ({})", s.phase, s.load));
        doc.push(Block::Facts(explain_view::saturation_facts(s)));
        doc.push(Block::Table(explain_view::saturation_table(s)));
    }
}

/// A findings section: what fired, or — when the rules ran and none
/// fired — which rules were checked.
fn findings(doc: &mut Vec<Block>, title: &str, list: &[crate::report::Finding], rules: &[String]) {
    if list.is_empty() && rules.is_empty() {
        return;
    }
    heading(doc, 2, title);
    doc.push(Block::Facts(explain_view::findings(list, rules)));
}

fn heading(doc: &mut Vec<Block>, level: u8, text: &str) {
    doc.push(Block::Heading(level, text.to_owned()));
}

/// A subsection with a table, when there is one.
fn table_section(doc: &mut Vec<Block>, level: u8, title: &str, table: Option<Table>) {
    if let Some(table) = table {
        heading(doc, level, title);
        doc.push(Block::Table(table));
    }
}

fn executive_summary(report: &Report, doc: &mut Vec<Block>) {
    heading(doc, 2, "Executive Summary");
    let mut facts = view::executive_facts(report);
    let result = format!(
        "{} — {}",
        view::outcome_mark(report.verdict.outcome),
        view::outcome_gloss(report)
    );
    facts.push(fact("Overall Result", result).with_details(report.verdict.reasons.clone()));
    doc.push(Block::Facts(facts));
}

fn performance(report: &Report, doc: &mut Vec<Block>) {
    heading(doc, 2, "Performance Results");
    heading(doc, 3, "HTTP Metrics");
    doc.push(Block::Note(view::LATENCY_NOTE));
    doc.push(Block::Table(view::http_metrics(report)));
    table_section(doc, 3, "Errors", view::errors(&report.overall));
    table_section(
        doc,
        3,
        "System Resource Utilization",
        observed_view::resources(report),
    );
    table_section(doc, 3, "Queue and Task Metrics", queue_and_tasks(report));
    table_section(doc, 3, "Other Thresholds", view::other_thresholds(report));
    table_section(
        doc,
        3,
        "Client Distributions",
        view::distributions(&report.overall),
    );
    doc.push(Block::Charts(
        Some("Over Time"),
        vec![
            ChartKind::LatencyOverTime,
            ChartKind::RpsOverTime,
            ChartKind::ServerOverTime,
            ChartKind::QueueOverTime,
        ],
    ));
}

/// "Queue and Task Metrics": sampled rows, then trace coverage.
fn queue_and_tasks(report: &Report) -> Option<Table> {
    let mut queue = Table::new(&["Metric", "Max Value", "Target", "Status"]);
    queue.rows = observed_view::queue_rows(report);
    queue.rows.extend(server_view::queue_rows(report));
    queue.rows.extend(trace_view::queue_rows(report));
    (!queue.rows.is_empty()).then_some(queue)
}

fn engine(report: &Report, doc: &mut Vec<Block>) {
    let mut facts = observed_view::engine_facts(report);
    facts.extend(explain_view::optimal_batch(report));
    if !facts.is_empty() {
        heading(doc, 2, "Inference Engine Analysis");
        doc.push(Block::Facts(facts));
    }
}

fn phases(report: &Report, doc: &mut Vec<Block>) {
    if report.phases.is_empty() {
        return;
    }
    heading(doc, 2, "Test Phases");
    for (i, phase) in report.phases.iter().enumerate() {
        heading(doc, 3, &view::phase_heading(i, phase));
        doc.push(Block::Facts(view::phase_facts(phase)));
        let scope = Scope::Phase(phase.name.clone());
        if let Some(thresholds) = view::scope_thresholds(report, &scope) {
            doc.push(Block::Table(thresholds));
        }
        if let Some(tasks) = task_view::phase_tasks(phase) {
            doc.push(Block::Table(tasks));
        }
        if let Some(sweep) = view::sweep(phase) {
            heading(
                doc,
                4,
                &format!("Stress Sweep ({})", view::sweep_payload(phase)),
            );
            doc.push(Block::Table(sweep));
            doc.push(Block::Charts(None, vec![ChartKind::Sweep(i)]));
        }
    }
}

fn streaming(report: &Report, doc: &mut Vec<Block>) {
    table_section(doc, 2, "Streaming UX", view::streaming(&report.overall));
    if let Some(method) = view::itl_method(&report.overall) {
        doc.push(Block::List(vec![method]));
    }
}

fn models(report: &Report, doc: &mut Vec<Block>) {
    let (models, thresholds) = (view::models(report), view::model_thresholds(report));
    if models.is_none() && thresholds.is_none() {
        return;
    }
    heading(doc, 2, "Per-Model Breakdown");
    if let Some(models) = models {
        doc.push(Block::Table(models));
    }
    table_section(doc, 3, "Model Thresholds", thresholds);
}

/// "Per-Task Breakdown": the tasks, their checks and thresholds.
fn tasks(report: &Report, doc: &mut Vec<Block>) {
    let Some(tasks) = task_view::tasks(report) else {
        return;
    };
    heading(doc, 2, "Per-Task Breakdown");
    doc.push(Block::Table(tasks));
    table_section(doc, 3, "Checks", task_view::checks(report));
    table_section(
        doc,
        3,
        "Task Thresholds",
        task_view::task_thresholds(report),
    );
}

/// "Multi-Turn Sessions": how the conversations went, turn by turn.
fn sessions(report: &Report, doc: &mut Vec<Block>) {
    let Some(facts) = session_view::facts(report) else {
        return;
    };
    heading(doc, 2, "Multi-Turn Sessions");
    doc.push(Block::Facts(facts));
    if let Some(turns) = session_view::turns(report) {
        doc.push(Block::Table(turns));
    }
}

/// "Routing": the engines behind a router, balance and model split.
fn routing(report: &Report, doc: &mut Vec<Block>) {
    let facts = routing_view::facts(report);
    let table = routing_view::backends(report);
    if facts.is_empty() && table.is_none() {
        return;
    }
    heading(doc, 2, "Routing");
    if !facts.is_empty() {
        doc.push(Block::Facts(facts));
    }
    table_section(doc, 3, "Backends", table);
}

/// The validator's section at `level`: its lines, then the dashboards, the
/// fault drills, unexpected alerts, queries without data and rule
/// problems (also the whole of `infercheck validate`'s output).
pub(crate) fn validation(v: &Validation, level: u8, doc: &mut Vec<Block>) {
    heading(doc, level, "Prometheus, Rules and Dashboards");
    doc.push(Block::Facts(validation_view::facts(v)));
    let sub = level + 1;
    table_section(doc, sub, "Dashboards", validation_view::dashboards(v));
    table_section(doc, sub, "Fault Drills", validation_view::drills(v));
    table_section(
        doc,
        sub,
        "Unexpected Alerts",
        validation_view::unexpected(v),
    );
    table_section(
        doc,
        sub,
        "Queries Without Data",
        validation_view::no_data(v),
    );
    table_section(doc, sub, "Rule Problems", validation_view::rule_problems(v));
}

/// "Observability Validation": the trace sampling line, the samplers'
/// lines, then the detail.
fn observability(report: &Report, doc: &mut Vec<Block>) {
    let mut facts = trace_view::observability_facts(report);
    facts.extend(observed_view::observability_facts(report));
    facts.extend(server_view::drain_facts(report));
    if facts.is_empty() {
        return;
    }
    heading(doc, 2, "Observability Validation");
    doc.push(Block::Facts(facts));
    let notes = trace_view::notes(report);
    if !notes.is_empty() {
        doc.push(Block::List(notes.to_vec()));
    }
    table_section(
        doc,
        3,
        "Client ↔ Server Agreement",
        server_view::agreement(report),
    );
    let skipped = server_view::not_checked(report);
    if !skipped.is_empty() {
        doc.push(Block::List(skipped));
    }
    table_section(
        doc,
        3,
        "Trace Coverage by Group",
        trace_view::coverage_groups(report),
    );
    table_section(doc, 3, "Server Spans", trace_view::span_durations(report));
    if let Some((title, parts)) = trace_view::slowest(report) {
        table_section(doc, 3, &title, Some(parts));
    }
}

fn generator(report: &Report, doc: &mut Vec<Block>) {
    heading(doc, 2, "Generator Health");
    let g = &report.generator;
    let status = if g.valid {
        "✅ valid — the generator kept up with its schedule"
    } else {
        "⚠️ INVALID — the generator was the bottleneck"
    };
    let mut facts = vec![fact("Status", status.to_owned()).with_details(g.reasons.clone())];
    facts.extend(view::generator_facts(report));
    doc.push(Block::Facts(facts));
}

/// "Raw Data": the files the run folder keeps, last (examples/000).
fn raw_data(report: &Report, doc: &mut Vec<Block>) {
    let Some(table) = super::raw_view::table(report) else {
        return;
    };
    heading(doc, 2, "Raw Data");
    doc.push(Block::Note(super::raw_view::RAW_NOTE));
    doc.push(Block::Table(table));
    let problems = super::raw_view::problems(report);
    if !problems.is_empty() {
        doc.push(Block::Facts(problems));
    }
}

fn notes(report: &Report, doc: &mut Vec<Block>) {
    if !report.notes.is_empty() {
        heading(doc, 2, "Notes");
        doc.push(Block::List(report.notes.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::test_report::report_with;

    fn headings(doc: &[Block]) -> Vec<&str> {
        doc.iter()
            .filter_map(|b| match b {
                Block::Heading(_, text) => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn sections_without_data_are_left_out() {
        let doc = document(&report_with(Vec::new()));
        assert_eq!(
            headings(&doc),
            [
                "Executive Summary",
                "Performance Results",
                "HTTP Metrics",
                "Generator Health"
            ]
        );
    }

    #[test]
    fn findings_sections_say_which_rules_found_nothing() {
        let mut report = report_with(Vec::new());
        report.explanation.rules_checked = crate::report::RulesChecked {
            optimizations: vec!["raise_batch_limit".into()],
            risks: vec!["slow_recovery".into(), "memory_growth".into()],
        };
        let doc = document(&report);
        let risks = doc
            .iter()
            .skip_while(|b| !matches!(b, Block::Heading(2, t) if t == "Risk Assessment"))
            .find_map(|b| match b {
                Block::Facts(facts) => Some(facts),
                _ => None,
            })
            .expect("a Risk Assessment section");
        assert_eq!(
            risks[0].label,
            "None: no rule of 2 fired on this run's measurements"
        );
        assert_eq!(
            risks[0].details,
            ["rules checked: slow_recovery, memory_growth"]
        );
    }
}
