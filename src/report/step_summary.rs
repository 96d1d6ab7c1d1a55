//! The GitHub Actions step summary (Markdown appended to
//! `$GITHUB_STEP_SUMMARY`): what a reviewer needs on the run's page and
//! no more — the verdict, one headline table (requests, errors, latency
//! p50/p95/p99, TTFT p95, throughput against its target), the thresholds
//! that failed and the metrics that regressed against the baseline.
//!
//! Numbers read as in every other report (through `view`); this module
//! owns the layout and the Markdown escaping only. It must not compute
//! statistics, open files or read clocks: the runner appends its output.

use std::io::{self, Write};

use super::markdown::text;
use super::model::{Outcome, Report, ThresholdStatus};
use super::regression_model::{Regression, RegressionRow};
use super::regression_view::{self, change};
use super::view;
use crate::stats::Distribution;

/// Writes the summary of `report`.
pub fn render(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    verdict(report, out)?;
    headline(report, out)?;
    failed_thresholds(report, out)?;
    if let Some(regression) = &report.regression {
        regressed(regression, out)?;
    }
    Ok(())
}

/// "### ❌ FAIL — infercheck: weekly-regression", the gloss with the exit
/// code and the run, and the verdict's reasons when no table below gives
/// them (a run that could not be judged by its thresholds).
fn verdict(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let v = &report.verdict;
    writeln!(
        out,
        "### {} — infercheck: {}",
        view::outcome_mark(v.outcome),
        text(&report.plan_name)
    )?;
    writeln!(out)?;
    let (run_id, started, target) = view::run_line(report);
    writeln!(
        out,
        "{} (exit {}) · run `{}` · started {} · target {}",
        text(&view::outcome_gloss(report)),
        v.exit_code,
        code(&run_id),
        text(&started),
        text(&target)
    )?;
    writeln!(out)?;
    let tables_say_why = matches!(v.outcome, Outcome::Pass | Outcome::Fail);
    if !tables_say_why && !v.reasons.is_empty() {
        for reason in &v.reasons {
            writeln!(out, "- {}", text(reason))?;
        }
        writeln!(out)?;
    }
    Ok(())
}

fn headline(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let s = &report.summary;
    let latency = report.overall.quantiles(Distribution::Latency);
    let ttft = report.overall.quantiles(Distribution::Ttft);
    let errors = format!(
        "{} ({})",
        view::count(s.errors),
        view::pct(report.overall.error_rate)
    );
    let mut throughput = format!("{} req/s", view::rate(s.achieved_rps));
    if let Some(target) = s.peak_target_rps {
        throughput = format!("{throughput} (target {})", view::target_rate(target));
    }
    let row = [
        view::count(s.requests),
        errors,
        view::opt_ms(latency.map(|q| q.p50)),
        view::opt_ms(latency.map(|q| q.p95)),
        view::opt_ms(latency.map(|q| q.p99)),
        view::opt_ms(ttft.map(|q| q.p95)),
        throughput,
    ];
    let headers = [
        "Requests",
        "Errors",
        "p50 Latency",
        "p95 Latency",
        "p99 Latency",
        "p95 TTFT",
        "Throughput",
    ];
    table(&headers, &[row.to_vec()], out)?;
    writeln!(out, "{}", text(view::LATENCY_NOTE))?;
    writeln!(out)
}

fn failed_thresholds(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let rows: Vec<Vec<String>> = report
        .thresholds
        .iter()
        .filter(|t| t.status != ThresholdStatus::Pass)
        .map(|t| {
            vec![
                t.scope.label(),
                t.expression.clone(),
                t.target.clone(),
                view::achieved_text(t),
                view::status_mark(t.status).to_owned(),
            ]
        })
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    writeln!(out, "#### Failed thresholds")?;
    writeln!(out)?;
    let headers = ["Scope", "Threshold", "Target", "Achieved", "Status"];
    table(&headers, &rows, out)
}

fn regressed(regression: &Regression, out: &mut dyn Write) -> io::Result<()> {
    let rows: Vec<Vec<String>> = regression
        .regressed()
        .map(|row| {
            let words = regression_words(row, regression.confidence);
            vec![
                row.label.clone(),
                words.baseline,
                words.now,
                words.change,
                words.tolerance,
            ]
        })
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "#### Regressed against baseline `{}`",
        code(&regression.baseline.run_id)
    )?;
    writeln!(out)?;
    let headers = ["Metric", "Baseline", "Now", "Change", "Tolerance"];
    table(&headers, &rows, out)
}

/// A regression row's figures in words, as the step summary and the
/// JUnit failure message give them.
pub(super) struct RegressionWords {
    /// "850ms", "0.23%", "47.4 req/s"; "—" without data.
    pub baseline: String,
    pub now: String,
    /// "+20.0% (95% CI +15.2% to +24.9%)", "+0.50pp (…)".
    pub change: String,
    /// As the plan wrote it ("+10%"), or "none" for an informational row.
    pub tolerance: String,
}

pub(super) fn regression_words(row: &RegressionRow, confidence: f64) -> RegressionWords {
    let with_interval = match (row.change, row.interval) {
        (Some(c), Some((low, high))) => format!(
            "{} ({:.0}% CI {} to {})",
            change(c, row.change_kind),
            confidence * 100.0,
            change(low, row.change_kind),
            change(high, row.change_kind)
        ),
        (Some(c), None) => change(c, row.change_kind),
        (None, _) => view::NONE.to_owned(),
    };
    RegressionWords {
        baseline: regression_view::value(&row.unit, row.baseline),
        now: regression_view::value(&row.unit, row.now),
        change: with_interval,
        tolerance: row.tolerance.clone().unwrap_or_else(|| "none".to_owned()),
    }
}

fn table(headers: &[&str], rows: &[Vec<String>], out: &mut dyn Write) -> io::Result<()> {
    let line = |cells: Vec<String>| format!("| {} |", cells.join(" | "));
    writeln!(out, "{}", line(headers.iter().map(|h| text(h)).collect()))?;
    writeln!(out, "|{}", " :--- |".repeat(headers.len()))?;
    for row in rows {
        writeln!(out, "{}", line(row.iter().map(|c| text(c)).collect()))?;
    }
    writeln!(out)
}

/// Text inside a code span: a backtick would end it, a line break the row.
fn code(raw: &str) -> String {
    raw.chars()
        .map(|c| {
            if matches!(c, '`' | '\r' | '\n') {
                ' '
            } else {
                c
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric::{Metric, Stat};
    use crate::report::model::{Scope, ThresholdResult};
    use crate::report::regression_model::{ChangeKind, Direction, RegressionStatus};
    use crate::report::test_report::{report, report_with};

    fn summary(report: &Report) -> String {
        let mut out = Vec::new();
        render(report, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn p95_latency(status: ThresholdStatus, achieved: &str) -> ThresholdResult {
        ThresholdResult {
            expression: "p95(latency) < 950ms".into(),
            scope: Scope::Phase("steady | hot".into()),
            metric: Metric::Distribution {
                stat: Stat::P95,
                of: Distribution::Latency,
            },
            label: "P95 Latency".into(),
            target: "< 950ms".into(),
            achieved: None,
            achieved_display: achieved.into(),
            status,
        }
    }

    fn regressed_row() -> RegressionRow {
        RegressionRow {
            key: "p95(latency)".into(),
            label: "P95 Latency".into(),
            unit: "ms".into(),
            worse: Direction::Higher,
            baseline: Some(850.0),
            now: Some(1_020.0),
            change: Some(0.2),
            change_kind: ChangeKind::Relative,
            interval: Some((0.152, 0.249)),
            tolerance: Some("+10%".into()),
            tolerance_value: Some(0.1),
            method: "bootstrap".into(),
            status: RegressionStatus::Regressed,
        }
    }

    #[test]
    fn a_passing_run_has_the_verdict_and_the_headline_table_only() {
        let text = summary(&report_with(vec![p95_latency(
            ThresholdStatus::Pass,
            "800ms",
        )]));
        assert!(text.starts_with("### ✅ PASS — infercheck: p\n"), "{text}");
        assert!(text.contains("the one threshold met (exit 0)"), "{text}");
        assert!(
            text.contains("| Requests | Errors | p50 Latency |"),
            "{text}"
        );
        assert!(
            text.contains("| 0 | 0 (0.00%) | — | — | — | — | 0.0 req/s |"),
            "{text}"
        );
        assert!(!text.contains("Failed thresholds"), "{text}");
        assert!(!text.contains("Regressed"), "{text}");
    }

    #[test]
    fn failed_thresholds_carry_their_numbers_with_the_pipe_escaped() {
        let r = report(
            vec![
                p95_latency(ThresholdStatus::Fail, "1,203ms"),
                p95_latency(ThresholdStatus::Pass, "800ms"),
            ],
            Outcome::Fail,
        );
        let text = summary(&r);
        let rows: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("p95(latency)"))
            .collect();
        assert_eq!(
            rows,
            ["| steady \\| hot | p95(latency) < 950ms | < 950ms | 1,203ms | ❌ FAIL |"]
        );
    }

    #[test]
    fn regressed_rows_show_baseline_now_change_interval_and_tolerance() {
        let mut r = report(Vec::new(), Outcome::Fail);
        let mut within = regressed_row();
        within.status = RegressionStatus::WithinNoise;
        within.label = "Error Rate".into();
        r.regression = Some(Regression {
            confidence: 0.95,
            rows: vec![regressed_row(), within],
            baseline: crate::report::regression_model::BaselineIdentity {
                run_id: "base-1".into(),
                ..Default::default()
            },
            ..Default::default()
        });
        let text = summary(&r);
        assert!(
            text.contains("#### Regressed against baseline `base-1`"),
            "{text}"
        );
        assert!(
            text.contains(
                "| P95 Latency | 850ms | 1,020ms | +20.0% (95% CI +15.2% to +24.9%) | +10% |"
            ),
            "{text}"
        );
        assert!(!text.contains("Error Rate"), "only regressed rows: {text}");
    }

    #[test]
    fn a_run_its_thresholds_cannot_explain_lists_the_verdicts_reasons() {
        let mut r = report(Vec::new(), Outcome::Unreachable);
        r.verdict.exit_code = 3;
        r.verdict.reasons =
            vec!["the target never answered: 5 of 5 requests failed to connect".into()];
        let text = summary(&r);
        assert!(text.starts_with("### ⛔ UNREACHABLE"), "{text}");
        assert!(text.contains("(exit 3)"), "{text}");
        assert!(
            text.contains("- the target never answered: 5 of 5 requests failed to connect"),
            "{text}"
        );
    }

    #[test]
    fn figures_read_in_their_unit() {
        let cases = [
            (Some(847.4), "ms", "847ms"),
            (Some(0.0023), "ratio", "0.23%"),
            (Some(47.44), "req/s", "47.4 req/s"),
            (Some(0.5), "GiB", "0.50 GiB"),
            (None, "ms", "—"),
        ];
        for (value, unit, want) in cases {
            assert_eq!(
                regression_view::value(unit, value),
                want,
                "{value:?} {unit}"
            );
        }
        assert_eq!(change(-0.051, ChangeKind::Relative), "-5.1%");
        assert_eq!(change(0.005, ChangeKind::Points), "+0.50pp");
    }
}
