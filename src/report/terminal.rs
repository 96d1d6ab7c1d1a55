//! The end-of-run summary for a terminal: plain text within 100 columns,
//! no colour codes and no emoji (their widths vary between terminals), so
//! it reads the same in a CI log as in a shell.
//!
//! Owns the layout only; numbers come from [`super::view`]. It must not say
//! where the report files are (the runner prints that) nor read a clock.

use std::io::{self, Write};

use super::model::{Report, StatsBlock};
use super::view;
use crate::stats::Distribution;

/// Lines never exceed this many characters.
pub(crate) const WIDTH: usize = 100;
/// Width of the label column of the "Label  value" lines.
const LABEL_WIDTH: usize = 12;

pub(crate) fn render(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    verdict(report, out)?;
    writeln!(out)?;
    overview(report, out)?;
    distributions(report, out)?;
    phases(report, out)?;
    thresholds(report, out)
}

/// Replaces control characters (an escape sequence in a plan name could
/// recolour or clear the user's terminal) with U+FFFD.
fn clean(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
        .collect()
}

/// Breaks `text` at spaces so that no line is longer than `width`; a word
/// longer than a whole line is cut, so the limit always holds.
pub(crate) fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let mut word: Vec<char> = clean(word).chars().collect();
        while word.len() > width {
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            lines.push(word.drain(..width).collect());
        }
        let word: String = word.into_iter().collect();
        let len = line.chars().count();
        if len > 0 && len + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&word);
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

/// Cuts `text` to `width` characters, marking the cut with "…".
fn truncate(text: &str, width: usize) -> String {
    let text = clean(text);
    if text.chars().count() <= width {
        return text;
    }
    let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// "Label       value", the value wrapped under itself.
fn line(label: &str, value: &str, out: &mut dyn Write) -> io::Result<()> {
    let pad = " ".repeat(LABEL_WIDTH);
    for (i, part) in wrap(value, WIDTH - LABEL_WIDTH).iter().enumerate() {
        if i == 0 {
            writeln!(
                out,
                "{:<LABEL_WIDTH$}{part}",
                truncate(label, LABEL_WIDTH - 1)
            )?;
        } else {
            writeln!(out, "{pad}{part}")?;
        }
    }
    Ok(())
}

fn bullets(items: &[String], out: &mut dyn Write) -> io::Result<()> {
    for item in items {
        for (i, part) in wrap(item, WIDTH - 4).iter().enumerate() {
            writeln!(out, "{}{part}", if i == 0 { "  - " } else { "    " })?;
        }
    }
    Ok(())
}

fn verdict(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let v = &report.verdict;
    let head = format!(
        "infercheck — {}: {} (exit {}), {}",
        report.plan_name,
        view::outcome_word(v.outcome),
        v.exit_code,
        view::outcome_gloss(report)
    );
    for part in wrap(&head, WIDTH) {
        writeln!(out, "{part}")?;
    }
    bullets(&v.reasons, out)
}

fn requests_text(report: &Report) -> String {
    let s = &report.summary;
    let mut text = format!(
        "{} sent, {} ok, {} errors",
        view::count(s.requests),
        view::count(s.ok),
        view::count(s.errors)
    );
    if let Some(kinds) = view::errors(&report.overall) {
        let kinds: Vec<String> = kinds
            .rows
            .iter()
            .map(|r| format!("{} {}", r[0], r[1]))
            .collect();
        text = format!("{text} ({})", kinds.join(", "));
    }
    text
}

fn throughput_text(report: &Report) -> String {
    let s = &report.summary;
    let mut text = format!(
        "{} req/s achieved, peak {} req/s",
        view::rate(s.achieved_rps),
        view::rate(s.peak_rps)
    );
    if let Some(target) = s.peak_target_rps {
        text = format!("{text}, target {} req/s", view::target_rate(target));
    }
    text
}

fn latency_text(o: &StatsBlock) -> String {
    let Some(q) = o.quantiles(Distribution::Latency) else {
        return format!("{} (no successful request)", view::NONE);
    };
    let service = o.quantiles(Distribution::ServiceTime).map(|s| s.p95);
    format!(
        "p50 {}, p95 {}, p99 {} (from intended send); service time p95 {}",
        view::ms(q.p50),
        view::ms(q.p95),
        view::ms(q.p99),
        view::opt_ms(service)
    )
}

fn generator_text(report: &Report) -> String {
    let g = &report.generator;
    let validity = if g.valid {
        "valid"
    } else {
        "INVALID, the generator was the bottleneck"
    };
    format!(
        "{validity}; CPU {}; lag p99 {}; late sends {}; unsent {}",
        view::cpu_text(g),
        view::opt_ms(g.schedule_lag_p99_ms),
        view::count(g.late_sends),
        view::count(g.unsent_arrivals)
    )
}

fn overview(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    line("Requests", &requests_text(report), out)?;
    line("Throughput", &throughput_text(report), out)?;
    line("Latency", &latency_text(&report.overall), out)?;
    if let Some(checks) = super::task_view::terminal_line(report) {
        line("Checks", &checks, out)?;
    }
    if let Some(traces) = &report.traces {
        line("Traces", &super::trace_view::sampling_line(traces), out)?;
    }
    if let Some(server) = super::observed_view::server_line(report) {
        line("Server", &server, out)?;
    }
    if let Some(v) = &report.validation {
        line("Validation", &super::validation_view::terminal_line(v), out)?;
    }
    if let Some(r) = &report.regression {
        line("Regression", &super::regression_view::summary(r), out)?;
    }
    for (label, text) in super::explain_view::terminal_lines(report) {
        line(label, &text, out)?;
    }
    line("Generator", &generator_text(report), out)?;
    // The verdict already listed reasons it shares with the generator.
    let shared = &report.verdict.reasons;
    let own: Vec<String> = report
        .generator
        .reasons
        .iter()
        .filter(|r| !shared.contains(r))
        .cloned()
        .collect();
    bullets(&own, out)
}

/// Writes rows as left-aligned columns, each cut to its maximum width.
fn columns(rows: &[Vec<String>], max: &[usize], out: &mut dyn Write) -> io::Result<()> {
    let cut: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().zip(max).map(|(c, m)| truncate(c, *m)).collect())
        .collect();
    let widths: Vec<usize> = (0..max.len())
        .map(|i| cut.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    for row in &cut {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        writeln!(out, "  {}", cells.join("  ").trim_end())?;
    }
    Ok(())
}

/// Every client distribution with data, one row each (the table of
/// `stats::Distribution`, as the Markdown report's "Client Distributions").
fn distributions(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let Some(table) = view::distributions(&report.overall) else {
        return Ok(());
    };
    writeln!(out)?;
    writeln!(out, "Client distributions (see report.md for definitions)")?;
    let mut rows = vec![
        ["DISTRIBUTION", "COUNT", "AVG", "P50", "P95", "P99", "MAX"]
            .map(String::from)
            .to_vec(),
    ];
    // Avg, p50, p95, p99 and max of the table's columns (not p90 or the
    // definition, to stay within the width).
    rows.extend(table.rows.iter().map(|r| {
        [0, 1, 2, 3, 5, 6, 7]
            .iter()
            .map(|i| r[*i].clone())
            .collect::<Vec<_>>()
    }));
    // 20 + 9 + 5 * 13 + 2 * 7 separators = 100 columns at most.
    columns(&rows, &[20, 9, 11, 11, 11, 11, 11], out)
}

fn phases(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    if report.phases.is_empty() {
        return Ok(());
    }
    writeln!(out)?;
    writeln!(out, "Phases (latency from intended send)")?;
    let mut rows = vec![
        ["PHASE", "LOAD", "REQUESTS", "REQ/S", "P95", "ERRORS"]
            .map(String::from)
            .to_vec(),
    ];
    for p in &report.phases {
        let s = &p.stats;
        let rps = match s.target_rps {
            Some(t) => format!("{} of {}", view::rate(s.rps), view::target_rate(t)),
            None => view::rate(s.rps),
        };
        let p95 = view::opt_ms(s.quantiles(Distribution::Latency).map(|q| q.p95));
        rows.push(vec![
            p.name.clone(),
            p.load.clone(),
            view::count(s.requests),
            rps,
            p95,
            view::pct(s.error_rate),
        ]);
    }
    // 18 + 28 + 9 + 14 + 9 + 8 + 2 * 6 separators = 98 columns at most.
    columns(&rows, &[18, 28, 9, 14, 9, 8], out)
}

fn thresholds(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    if report.thresholds.is_empty() {
        return Ok(());
    }
    writeln!(out)?;
    writeln!(out, "Thresholds")?;
    let mut rows = vec![
        ["STATUS", "SCOPE", "METRIC", "TARGET", "ACHIEVED"]
            .map(String::from)
            .to_vec(),
    ];
    for t in &report.thresholds {
        rows.push(vec![
            view::status_word(t.status).to_owned(),
            t.scope.label(),
            t.label.clone(),
            t.target.clone(),
            view::achieved_text(t),
        ]);
    }
    // 7 + 24 + 24 + 16 + 16 + 2 * 5 separators = 97 columns at most.
    columns(&rows, &[7, 24, 24, 16, 16], out)
}

/// `--repeat N`'s table: one aligned line per metric.
pub(crate) fn render_repeats(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let Some(repeats) = &report.repeats else {
        return Ok(());
    };
    let table = super::repeat_view::table(repeats);
    writeln!(out, "Repeated runs ({}):", repeats.runs.len())?;
    let widths: Vec<usize> = (0..table.headers.len())
        .map(|c| {
            std::iter::once(&table.headers[c])
                .chain(table.rows.iter().map(|r| &r[c]))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for cells in std::iter::once(&table.headers).chain(&table.rows) {
        let line: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        writeln!(out, "  {}", line.join("  ").trim_end())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_keeps_every_line_within_the_width() {
        let cases: [(&str, usize, &[&str]); 5] = [
            ("", 10, &[""]),
            ("short", 10, &["short"]),
            ("one two three four", 9, &["one two", "three", "four"]),
            ("exactly10! next", 10, &["exactly10!", "next"]),
            ("abcdefghijklmnop x", 5, &["abcde", "fghij", "klmno", "p x"]),
        ];
        for (text, width, want) in cases {
            assert_eq!(wrap(text, width), want, "{text:?} at {width}");
        }
    }

    #[test]
    fn truncate_marks_the_cut() {
        assert_eq!(truncate("P95 Latency", 20), "P95 Latency");
        assert_eq!(truncate("Tokens/s per Request", 10), "Tokens/s …");
        assert_eq!(truncate("red\u{1b}[31m", 20), "red\u{FFFD}[31m");
        assert_eq!(wrap("a\u{1b}[2J b", 20), ["a\u{FFFD}[2J b"]);
    }
}
