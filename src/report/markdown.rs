//! `report.md`: the report as the Markdown tables users write by hand
//! today (examples/000 and 001), for a PR or a wiki page.
//!
//! Owns only Markdown syntax and escaping; every number and every row comes
//! from [`super::view`], so the Markdown, HTML and terminal renderers agree.
//! It must not compute statistics, open files or read clocks.

use std::io::{self, Write};

use super::model::Report;
use super::observed_view;
use super::trace_view;
use super::view::{self, Fact, Table};

/// Writes the whole report.
pub(crate) fn render(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    header(report, out)?;
    executive_summary(report, out)?;
    performance(report, out)?;
    phases(report, out)?;
    streaming(report, out)?;
    models(report, out)?;
    observability(report, out)?;
    generator(report, out)?;
    notes(report, out)?;
    footer(report, out)
}

/// Neutralises text from the model for Markdown: a `<` that could open an
/// HTML tag becomes `&lt;` (so a plan named `<script>` stays text), `|`
/// is escaped so it cannot split a table cell, and line breaks become
/// spaces so they cannot end a list item or a row. Everything else is left
/// as written, so targets such as "< 950ms" read naturally in the source.
fn text(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(ch) = chars.next() {
        match ch {
            '<' if chars
                .peek()
                .is_some_and(|n| n.is_ascii_alphabetic() || "/!?".contains(*n)) =>
            {
                out.push_str("&lt;");
            }
            '|' => out.push_str("\\|"),
            '\r' | '\n' => out.push(' '),
            _ => out.push(ch),
        }
    }
    out
}

fn table(t: &Table, out: &mut dyn Write) -> io::Result<()> {
    let row = |cells: &[String]| {
        let cells: Vec<String> = cells.iter().map(|c| text(c)).collect();
        format!("| {} |", cells.join(" | "))
    };
    writeln!(out, "{}", row(&t.headers))?;
    // The separator of examples/001: left-aligned columns.
    writeln!(out, "|{}", " :--- |".repeat(t.headers.len()))?;
    for cells in &t.rows {
        writeln!(out, "{}", row(cells))?;
    }
    writeln!(out)
}

fn facts(list: &[Fact], out: &mut dyn Write) -> io::Result<()> {
    for f in list {
        writeln!(out, "- **{}**: {}", text(&f.label), text(&f.value))?;
    }
    Ok(())
}

fn sub_list(items: &[String], out: &mut dyn Write) -> io::Result<()> {
    for item in items {
        writeln!(out, "  - {}", text(item))?;
    }
    Ok(())
}

fn header(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let (run_id, started, target) = view::run_line(report);
    writeln!(out, "# infercheck report — {}", text(&report.plan_name))?;
    writeln!(out)?;
    writeln!(
        out,
        "**Run** {} · **Started** {} · **Target** {}",
        text(&run_id),
        text(&started),
        text(&target)
    )?;
    writeln!(out)
}

fn executive_summary(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "## Executive Summary")?;
    writeln!(out)?;
    facts(&view::executive_facts(report), out)?;
    let verdict = report.verdict.outcome;
    writeln!(
        out,
        "- **Overall Result**: {} — {}",
        view::outcome_mark(verdict),
        text(&view::outcome_gloss(report))
    )?;
    sub_list(&report.verdict.reasons, out)?;
    writeln!(out)
}

fn performance(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "## Performance Results")?;
    writeln!(out)?;
    writeln!(out, "### HTTP Metrics")?;
    writeln!(out)?;
    writeln!(out, "> {}", view::LATENCY_NOTE)?;
    writeln!(out)?;
    table(&view::http_metrics(report), out)?;
    if let Some(errors) = view::errors(&report.overall) {
        writeln!(out, "### Errors")?;
        writeln!(out)?;
        table(&errors, out)?;
    }
    if let Some(resources) = observed_view::resources(report) {
        writeln!(out, "### System Resource Utilization")?;
        writeln!(out)?;
        table(&resources, out)?;
    }
    if let Some(queue) = queue_and_tasks(report) {
        writeln!(out, "### Queue and Task Metrics")?;
        writeln!(out)?;
        table(&queue, out)?;
    }
    let engine = observed_view::engine_facts(report);
    if !engine.is_empty() {
        writeln!(out, "## Inference Engine Analysis")?;
        writeln!(out)?;
        facts(&engine, out)?;
        writeln!(out)?;
    }
    Ok(())
}

/// "Queue and Task Metrics": sampled rows, then trace coverage.
pub(crate) fn queue_and_tasks(report: &Report) -> Option<Table> {
    let mut queue = Table::new(&["Metric", "Max Value", "Target", "Status"]);
    queue.rows = observed_view::queue_rows(report);
    queue.rows.extend(trace_view::queue_rows(report));
    (!queue.rows.is_empty()).then_some(queue)
}

fn phases(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    if report.phases.is_empty() {
        return Ok(());
    }
    writeln!(out, "## Test Phases")?;
    writeln!(out)?;
    for (i, phase) in report.phases.iter().enumerate() {
        writeln!(out, "### {}", text(&view::phase_heading(i, phase)))?;
        writeln!(out)?;
        facts(&view::phase_facts(phase), out)?;
        writeln!(out)?;
        if let Some(thresholds) = view::scope_thresholds(report, &phase.name) {
            table(&thresholds, out)?;
        }
        if let Some(sweep) = view::sweep(phase) {
            writeln!(out, "#### Stress Sweep")?;
            writeln!(out)?;
            table(&sweep, out)?;
        }
    }
    Ok(())
}

fn streaming(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let Some(ux) = view::streaming(&report.overall) else {
        return Ok(());
    };
    writeln!(out, "## Streaming UX")?;
    writeln!(out)?;
    table(&ux, out)
}

fn models(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let (models, thresholds) = (view::models(report), view::model_thresholds(report));
    if models.is_none() && thresholds.is_none() {
        return Ok(());
    }
    writeln!(out, "## Per-Model Breakdown")?;
    writeln!(out)?;
    if let Some(models) = models {
        table(&models, out)?;
    }
    if let Some(thresholds) = thresholds {
        writeln!(out, "### Model Thresholds")?;
        writeln!(out)?;
        table(&thresholds, out)?;
    }
    Ok(())
}

/// "Observability Validation": the trace sampling line, the samplers'
/// lines, then the detail.
fn observability(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let mut facts_list = trace_view::observability_facts(report);
    facts_list.extend(observed_view::observability_facts(report));
    if facts_list.is_empty() {
        return Ok(());
    }
    writeln!(out, "## Observability Validation")?;
    writeln!(out)?;
    facts(&facts_list, out)?;
    sub_list(trace_view::notes(report), out)?;
    writeln!(out)?;
    if let Some(groups) = trace_view::coverage_groups(report) {
        writeln!(out, "### Trace Coverage by Group")?;
        writeln!(out)?;
        table(&groups, out)?;
    }
    if let Some(spans) = trace_view::span_durations(report) {
        writeln!(out, "### Server Spans")?;
        writeln!(out)?;
        table(&spans, out)?;
    }
    if let Some((heading, parts)) = trace_view::slowest(report) {
        writeln!(out, "### {}", text(&heading))?;
        writeln!(out)?;
        table(&parts, out)?;
    }
    Ok(())
}

fn generator(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "## Generator Health")?;
    writeln!(out)?;
    let status = if report.generator.valid {
        "✅ valid — the generator kept up with its schedule"
    } else {
        "⚠️ INVALID — the generator was the bottleneck"
    };
    writeln!(out, "- **Status**: {status}")?;
    sub_list(&report.generator.reasons, out)?;
    facts(&view::generator_facts(report), out)?;
    writeln!(out)
}

fn notes(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    if report.notes.is_empty() {
        return Ok(());
    }
    writeln!(out, "## Notes")?;
    writeln!(out)?;
    for note in &report.notes {
        writeln!(out, "- {}", text(note))?;
    }
    writeln!(out)
}

fn footer(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let streaming = if report.target.stream {
        "streaming"
    } else {
        "not streaming"
    };
    writeln!(out, "---")?;
    writeln!(
        out,
        "*{} {} · report schema v{} · API {}, {}*",
        text(&report.tool.name),
        text(&report.tool.version),
        report.schema_version,
        text(&report.target.api),
        streaming
    )
}

#[cfg(test)]
mod tests {
    use super::text;

    #[test]
    fn text_escapes_only_what_markdown_would_misread() {
        let cases = [
            ("stress-sweep", "stress-sweep"),
            ("< 950ms", "< 950ms"),
            (
                "<script>alert(1)</script>",
                "&lt;script>alert(1)&lt;/script>",
            ),
            ("<!-- hidden -->", "&lt;!-- hidden -->"),
            ("a | b", "a \\| b"),
            ("two\nlines", "two lines"),
        ];
        for (raw, want) in cases {
            assert_eq!(text(raw), want, "{raw}");
        }
    }
}
