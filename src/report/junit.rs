//! JUnit XML for CI: each threshold and each regression row a test case.
//!
//! One `<testsuites>` with up to three suites, each stamped with the run's
//! start (`timestamp`) and length (`time`, seconds):
//!
//! - `thresholds`: one case per judged threshold, named by its expression
//!   and scope ("p95(latency) < 950ms [run]"); a `<failure>` when it failed
//!   or had no data, its message the numbers ("achieved 1,203ms, target
//!   < 950ms").
//! - `regression` (with a baseline): one case per compared metric; only a
//!   regressed one fails, its message the baseline, the figure now, the
//!   change with its confidence interval and the tolerance. A metric one
//!   side had no data for is `<skipped>`.
//! - `run`: whether the run could be judged at all — an `<error>` when the
//!   target never answered or the run was interrupted (exit 3), a
//!   `<failure>` when the generator itself was the bottleneck (exit 5).
//!
//! The output validates against the Jenkins xunit plugin's `junit-10.xsd`
//! (tests/data/junit/). XML is written by hand: the format needs five
//! escapes and a handful of elements, not a dependency. Like every
//! renderer it words the model only: no statistics, no files, no clock.

use std::io::{self, Write};

use super::model::{Outcome, Report, Scope, ThresholdResult, ThresholdStatus};
use super::regression_model::{Regression, RegressionRow, RegressionStatus};
use super::step_summary::regression_words;
use super::view;

/// Writes the JUnit XML of `report`.
pub fn render(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let suites = suites(report);
    let total = |count: fn(&Suite) -> usize| suites.iter().map(count).sum::<usize>();
    writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
    writeln!(
        out,
        r#"<testsuites name="{}" tests="{}" failures="{}" errors="{}" time="{}">"#,
        attr(&format!("infercheck {}", report.plan_name)),
        total(|s| s.cases.len()),
        total(|s| s.count(Kind::Failure)),
        total(|s| s.count(Kind::Error)),
        seconds(report.duration_s)
    )?;
    for suite in &suites {
        write_suite(report, suite, out)?;
    }
    writeln!(out, "</testsuites>")
}

/// One `<testsuite>`, before it is written.
struct Suite {
    name: &'static str,
    time_s: f64,
    /// `<properties>`: who the run was.
    properties: Vec<(&'static str, String)>,
    cases: Vec<Case>,
}

impl Suite {
    fn count(&self, kind: Kind) -> usize {
        self.cases
            .iter()
            .filter(|c| c.verdict.as_ref().is_some_and(|v| v.kind == kind))
            .count()
    }
}

struct Case {
    name: String,
    time_s: f64,
    /// `None`: passed.
    verdict: Option<CaseVerdict>,
}

/// Why a case did not pass.
struct CaseVerdict {
    kind: Kind,
    /// The `type` attribute: "threshold", "regression", "unreachable", ...
    of: &'static str,
    /// The `message` attribute: the numbers, in one line.
    message: String,
    /// The element's text: the same with its context.
    detail: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Judged and not met (a threshold, a regression, the generator).
    Failure,
    /// Could not be judged (the target never answered, an interruption).
    Error,
    Skipped,
}

impl Kind {
    fn element(self) -> &'static str {
        match self {
            Kind::Failure => "failure",
            Kind::Error => "error",
            Kind::Skipped => "skipped",
        }
    }
}

fn suites(report: &Report) -> Vec<Suite> {
    let mut suites = vec![run_suite(report), threshold_suite(report)];
    if let Some(regression) = &report.regression {
        suites.push(regression_suite(regression));
    }
    suites
}

fn threshold_suite(report: &Report) -> Suite {
    Suite {
        name: "thresholds",
        time_s: report.duration_s,
        properties: Vec::new(),
        cases: report
            .thresholds
            .iter()
            .map(|t| threshold_case(report, t))
            .collect(),
    }
}

fn threshold_case(report: &Report, t: &ThresholdResult) -> Case {
    let name = format!("{} [{}]", t.expression, t.scope.label());
    let message = match t.status {
        ThresholdStatus::Pass => None,
        ThresholdStatus::Fail => Some(format!(
            "achieved {}, target {}",
            t.achieved_display, t.target
        )),
        ThresholdStatus::NoData => Some(format!("no data, target {}", t.target)),
    };
    let verdict = message.map(|message| CaseVerdict {
        kind: Kind::Failure,
        of: "threshold",
        detail: format!("{} ({}): {message}", t.label, name),
        message,
    });
    Case {
        name,
        time_s: scope_seconds(report, &t.scope),
        verdict,
    }
}

/// How long the judged window ran: its phase's wall time, or the run's.
fn scope_seconds(report: &Report, scope: &Scope) -> f64 {
    match scope {
        Scope::Phase(name) => report
            .phases
            .iter()
            .find(|p| &p.name == name)
            .map_or(report.duration_s, |p| p.stats.duration_s),
        Scope::Run | Scope::Model(_) | Scope::Task(_) => report.duration_s,
    }
}

fn regression_suite(regression: &Regression) -> Suite {
    Suite {
        name: "regression",
        time_s: 0.0,
        properties: vec![
            ("baseline_run_id", regression.baseline.run_id.clone()),
            ("baseline_path", regression.baseline.path.clone()),
            ("selected_by", regression.selected_by.clone()),
        ],
        cases: regression
            .rows
            .iter()
            .map(|row| regression_case(regression, row))
            .collect(),
    }
}

fn regression_case(regression: &Regression, row: &RegressionRow) -> Case {
    let words = regression_words(row, regression.confidence);
    let message = format!(
        "baseline {}, now {}, change {}, tolerance {}",
        words.baseline, words.now, words.change, words.tolerance
    );
    let verdict = match row.status {
        RegressionStatus::Regressed => Some(CaseVerdict {
            kind: Kind::Failure,
            of: "regression",
            detail: format!(
                "{} ({}) regressed: {message}; {}",
                row.label, row.key, row.method
            ),
            message,
        }),
        RegressionStatus::NoData => Some(CaseVerdict {
            kind: Kind::Skipped,
            of: "no_data",
            detail: format!("{} ({}): {message}", row.label, row.key),
            message: "one side had no data".to_owned(),
        }),
        _ => None,
    };
    Case {
        // The key alone: a case keeps its name from run to run, so CI can
        // follow its history.
        name: row.key.clone(),
        time_s: 0.0,
        verdict,
    }
}

fn run_suite(report: &Report) -> Suite {
    let v = &report.verdict;
    let reasons = v.reasons.join("; ");
    let could_not_run = |of| CaseVerdict {
        kind: Kind::Error,
        of,
        message: reasons.clone(),
        detail: reasons.clone(),
    };
    let completed = match v.outcome {
        Outcome::Unreachable => Some(could_not_run("unreachable")),
        Outcome::Interrupted => Some(could_not_run("interrupted")),
        Outcome::Pass | Outcome::Fail | Outcome::Invalid => None,
    };
    let g = &report.generator;
    let generator = (!g.valid).then(|| CaseVerdict {
        kind: Kind::Failure,
        of: "generator",
        message: g.reasons.join("; "),
        detail: g.reasons.join("\n"),
    });
    Suite {
        name: "run",
        time_s: report.duration_s,
        properties: vec![
            ("run_id", report.run_id.clone()),
            ("plan", report.plan_name.clone()),
            ("target", report.target.base_url.clone()),
            ("outcome", view::outcome_word(v.outcome).to_lowercase()),
            ("exit_code", v.exit_code.to_string()),
        ],
        cases: vec![
            Case {
                name: "the target answered and the run completed".to_owned(),
                time_s: report.duration_s,
                verdict: completed,
            },
            Case {
                name: "the load generator kept its schedule".to_owned(),
                time_s: report.duration_s,
                verdict: generator,
            },
        ],
    }
}

fn write_suite(report: &Report, suite: &Suite, out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        r#"  <testsuite name="{}" tests="{}" failures="{}" errors="{}" skipped="{}" time="{}" timestamp="{}">"#,
        suite.name,
        suite.cases.len(),
        suite.count(Kind::Failure),
        suite.count(Kind::Error),
        suite.count(Kind::Skipped),
        seconds(suite.time_s),
        attr(&report.started_at)
    )?;
    if !suite.properties.is_empty() {
        writeln!(out, "    <properties>")?;
        for (name, value) in &suite.properties {
            writeln!(
                out,
                r#"      <property name="{name}" value="{}"/>"#,
                attr(value)
            )?;
        }
        writeln!(out, "    </properties>")?;
    }
    let classname = attr(&format!("infercheck.{}", suite.name));
    for case in &suite.cases {
        let open = format!(
            r#"    <testcase name="{}" classname="{classname}" time="{}""#,
            attr(&case.name),
            seconds(case.time_s)
        );
        match &case.verdict {
            None => writeln!(out, "{open}/>")?,
            Some(v) => {
                writeln!(out, "{open}>")?;
                writeln!(
                    out,
                    r#"      <{0} type="{1}" message="{2}">{3}</{0}>"#,
                    v.kind.element(),
                    v.of,
                    attr(&v.message),
                    text(&v.detail)
                )?;
                writeln!(out, "    </testcase>")?;
            }
        }
    }
    writeln!(out, "  </testsuite>")
}

/// Seconds as JUnit readers parse them (surefire's pattern: at most three
/// decimals, no sign, no exponent).
fn seconds(s: f64) -> String {
    format!("{:.3}", if s.is_finite() { s.max(0.0) } else { 0.0 })
}

/// Escaped for an attribute value: markup characters and quotes, and line
/// breaks and tabs as character references (a parser turns literal ones
/// into spaces).
fn attr(raw: &str) -> String {
    escape(raw, true)
}

/// Escaped for element content.
fn text(raw: &str) -> String {
    escape(raw, false)
}

fn escape(raw: &str, in_attribute: bool) -> String {
    let mut out = String::with_capacity(raw.len());
    for ch in raw.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if in_attribute => out.push_str("&quot;"),
            '\t' | '\n' | '\r' if in_attribute => out.push_str(&format!("&#{};", u32::from(ch))),
            ch if allowed_in_xml(ch) => out.push(ch),
            // A character XML 1.0 cannot carry, even escaped.
            _ => out.push('\u{FFFD}'),
        }
    }
    out
}

/// XML 1.0's `Char` production.
fn allowed_in_xml(ch: char) -> bool {
    matches!(ch, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric::Metric;
    use crate::report::regression_model::{ChangeKind, Direction};
    use crate::report::test_report::report;

    fn xml(report: &Report) -> String {
        let mut out = Vec::new();
        render(report, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn error_rate(status: ThresholdStatus) -> ThresholdResult {
        ThresholdResult {
            expression: "error_rate < 1% & p95(latency) < 950ms".into(),
            scope: Scope::Run,
            metric: Metric::ErrorRate,
            label: "Error Rate".into(),
            target: "< 1%".into(),
            achieved: Some(0.05),
            achieved_display: "5.00%".into(),
            status,
        }
    }

    fn row(status: RegressionStatus) -> RegressionRow {
        RegressionRow {
            key: "rps".into(),
            label: "Throughput".into(),
            unit: "req/s".into(),
            worse: Direction::Lower,
            baseline: Some(50.0),
            now: Some(40.0),
            change: Some(-0.2),
            change_kind: ChangeKind::Relative,
            interval: Some((-0.25, -0.15)),
            tolerance: Some("-5%".into()),
            tolerance_value: Some(-0.05),
            method: "bootstrap of 20 seconds".into(),
            status,
        }
    }

    #[test]
    fn escapes_markup_quotes_line_breaks_and_characters_xml_cannot_hold() {
        assert_eq!(
            attr(r#"p95 < 950ms & "x""#),
            "p95 &lt; 950ms &amp; &quot;x&quot;"
        );
        assert_eq!(attr("a\nb\tc"), "a&#10;b&#9;c");
        assert_eq!(text("a\nb \"c\""), "a\nb \"c\"");
        assert_eq!(text("bell\u{7} end\u{FFFF}"), "bell\u{FFFD} end\u{FFFD}");
    }

    #[test]
    fn seconds_have_at_most_three_decimals_and_no_sign() {
        for (s, want) in [
            (12.34567, "12.346"),
            (0.0, "0.000"),
            (-1.0, "0.000"),
            (f64::NAN, "0.000"),
        ] {
            assert_eq!(seconds(s), want, "{s}");
        }
    }

    #[test]
    fn a_failed_threshold_fails_its_case_with_the_numbers() {
        let r = report(
            vec![
                error_rate(ThresholdStatus::Fail),
                error_rate(ThresholdStatus::Pass),
            ],
            Outcome::Fail,
        );
        let xml = xml(&r);
        assert!(
            xml.contains(r#"<testsuite name="thresholds" tests="2" failures="1" errors="0""#),
            "{xml}"
        );
        assert!(
            xml.contains(
                r#"<testcase name="error_rate &lt; 1% &amp; p95(latency) &lt; 950ms [run]" classname="infercheck.thresholds" time="1.000">"#
            ),
            "{xml}"
        );
        assert!(
            xml.contains(r#"<failure type="threshold" message="achieved 5.00%, target &lt; 1%">"#),
            "{xml}"
        );
    }

    #[test]
    fn a_threshold_without_data_fails_too() {
        let xml = xml(&report(
            vec![error_rate(ThresholdStatus::NoData)],
            Outcome::Fail,
        ));
        assert!(
            xml.contains(r#"<failure type="threshold" message="no data, target &lt; 1%">"#),
            "{xml}"
        );
    }

    #[test]
    fn only_a_regressed_row_fails_and_a_row_without_data_is_skipped() {
        let mut r = report(Vec::new(), Outcome::Fail);
        r.regression = Some(Regression {
            confidence: 0.95,
            rows: vec![
                row(RegressionStatus::Regressed),
                row(RegressionStatus::WithinNoise),
                row(RegressionStatus::NoData),
            ],
            ..Default::default()
        });
        let xml = xml(&r);
        assert!(
            xml.contains(
                r#"<testsuite name="regression" tests="3" failures="1" errors="0" skipped="1""#
            ),
            "{xml}"
        );
        assert!(
            xml.contains(
                r#"message="baseline 50.0 req/s, now 40.0 req/s, change -20.0% (95% CI -25.0% to -15.0%), tolerance -5%""#
            ),
            "{xml}"
        );
        assert_eq!(xml.matches("<failure").count(), 1, "{xml}");
    }

    #[test]
    fn a_target_that_never_answered_is_an_error_not_a_failure() {
        let mut r = report(Vec::new(), Outcome::Unreachable);
        r.verdict.reasons =
            vec!["the target never answered: 4 of 4 requests failed to connect".into()];
        let xml = xml(&r);
        assert!(
            xml.contains(
                r#"<error type="unreachable" message="the target never answered: 4 of 4 requests failed to connect">"#
            ),
            "{xml}"
        );
        assert!(
            xml.contains(r#"<testsuites name="infercheck p" tests="2" failures="0" errors="1""#),
            "{xml}"
        );
    }

    #[test]
    fn an_invalid_generator_fails_the_run_suite() {
        let mut r = report(Vec::new(), Outcome::Invalid);
        r.generator.valid = false;
        r.generator.reasons = vec!["the generator used 1.95 of 2 cores".into()];
        let xml = xml(&r);
        assert!(
            xml.contains(
                r#"<failure type="generator" message="the generator used 1.95 of 2 cores">"#
            ),
            "{xml}"
        );
    }
}
