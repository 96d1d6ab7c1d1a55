//! The trend of the headline metrics over the last runs of the plan
//! (`report.history`, from the run history): the "Run History" section's
//! facts and table (run | started | verdict | p95 latency | error rate |
//! rps | tok/s, oldest first) and, on the HTML page, p95 latency per run
//! as an SVG line chart. Shown only when the history holds two runs or
//! more; a run without a figure is "—" in the table and a gap in the line.

use std::fmt::Write as _;

use super::chart::{nice_step, tick_label};
use super::format::{NONE, opt_ms, pct, rate};
use super::history_model::{HistoryPoint, HistoryTrend};
use super::html::esc;
use super::model::{Outcome, Report};
use super::view::{Fact, Table, fact, outcome_mark};

/// The trend worth showing: `report.history` with at least two runs.
pub(crate) fn trend(report: &Report) -> Option<&HistoryTrend> {
    report.history.as_ref().filter(|t| t.points.len() >= 2)
}

/// How many runs, and how p95 latency moved from the first to the last.
pub(crate) fn facts(trend: &HistoryTrend) -> Vec<Fact> {
    let p95 = |p: Option<&HistoryPoint>| opt_ms(p.and_then(|p| p.headline.latency_p95_ms));
    vec![
        fact(
            "Runs",
            format!(
                "the last {} of plan {}, oldest first",
                trend.points.len(),
                trend.plan_name
            ),
        ),
        fact(
            "P95 Latency",
            format!(
                "{} → {}",
                p95(trend.points.first()),
                p95(trend.points.last())
            ),
        ),
    ]
}

/// One row per run, oldest first; this run is marked.
pub(crate) fn table(report: &Report, trend: &HistoryTrend) -> Table {
    let mut table = Table::new(&[
        "Run",
        "Started",
        "Verdict",
        "P95 Latency",
        "Error Rate",
        "RPS",
        "Tok/s",
    ]);
    table.rows = trend
        .points
        .iter()
        .map(|p| {
            let h = &p.headline;
            let run = if p.run_id == report.run_id {
                format!("{} (this run)", p.run_id)
            } else {
                p.run_id.clone()
            };
            vec![
                run,
                p.started_at.clone(),
                verdict(&p.outcome),
                opt_ms(h.latency_p95_ms),
                pct(h.error_rate),
                rate(h.rps),
                rate(h.output_tokens_per_s),
            ]
        })
        .collect();
    table
}

/// A recorded verdict with its mark; one this build does not know (a
/// newer build's) as written.
fn verdict(outcome: &str) -> String {
    match serde_json::from_value::<Outcome>(serde_json::Value::String(outcome.to_owned())) {
        Ok(known) => outcome_mark(known).to_owned(),
        Err(_) if outcome.is_empty() => NONE.to_owned(),
        Err(_) => outcome.to_uppercase(),
    }
}

const CHART_W: f64 = 760.0;
const CHART_H: f64 = 240.0;
/// Plot area margins: left holds the y tick labels, bottom the run numbers.
const M_LEFT: f64 = 64.0;
const M_RIGHT: f64 = 16.0;
const M_TOP: f64 = 32.0;
const M_BOTTOM: f64 = 48.0;
const TITLE: &str = "P95 latency per run of the plan (oldest first)";

/// The data-to-pixel mapping: run `i` of `runs` across, 0..`y_max` up.
struct Frame {
    runs: usize,
    y_max: f64,
    y_step: f64,
}

impl Frame {
    fn x(&self, i: usize) -> f64 {
        let width = CHART_W - M_LEFT - M_RIGHT;
        M_LEFT + width * i as f64 / (self.runs.max(2) - 1) as f64
    }

    fn y(&self, v: f64) -> f64 {
        let height = CHART_H - M_TOP - M_BOTTOM;
        CHART_H - M_BOTTOM - height * (v / self.y_max).clamp(0.0, 1.0)
    }
}

/// Draws p95 latency per run as an SVG line; nothing without a trend or
/// without a single p95 figure.
pub(crate) fn draw_chart(report: &Report, page: &mut String) {
    let Some(trend) = trend(report) else {
        return;
    };
    let values: Vec<Option<f64>> = trend
        .points
        .iter()
        .map(|p| {
            p.headline
                .latency_p95_ms
                .filter(|v| v.is_finite() && *v >= 0.0)
        })
        .collect();
    let Some(top) = values.iter().flatten().copied().reduce(f64::max) else {
        return;
    };
    let y_step = nice_step(top);
    let frame = Frame {
        runs: values.len(),
        y_max: ((top / y_step).ceil() * y_step).max(y_step),
        y_step,
    };
    let _ = writeln!(
        page,
        "<svg viewBox=\"0 0 {CHART_W} {CHART_H}\" width=\"{CHART_W}\" height=\"{CHART_H}\" \
         role=\"img\" aria-label=\"{TITLE}\">\n<title>{TITLE}</title>\n\
         <text class=\"title\" x=\"{M_LEFT}\" y=\"18\">{TITLE}</text>"
    );
    axes(&frame, page);
    line(&frame, &values, page);
    page.push_str("</svg>\n");
}

/// The grid and y ticks, one x label per run (thinned past 20 runs) and
/// the axis titles.
fn axes(f: &Frame, page: &mut String) {
    let (left, right, bottom, top) = (M_LEFT, CHART_W - M_RIGHT, CHART_H - M_BOTTOM, M_TOP);
    for i in 0..=(f.y_max / f.y_step).round() as i64 {
        let v = i as f64 * f.y_step;
        let y = f.y(v);
        let _ = writeln!(
            page,
            "<line class=\"grid\" x1=\"{left}\" y1=\"{y:.1}\" x2=\"{right}\" y2=\"{y:.1}\"/>\n\
             <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            left - 6.0,
            y + 4.0,
            tick_label(v, f.y_step)
        );
    }
    let every = f.runs.div_ceil(20).max(1);
    for i in (0..f.runs).filter(|i| i % every == 0 || i + 1 == f.runs) {
        let _ = writeln!(
            page,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            f.x(i),
            bottom + 16.0,
            i + 1
        );
    }
    let _ = writeln!(
        page,
        "<line class=\"axis\" x1=\"{left}\" y1=\"{bottom}\" x2=\"{right}\" y2=\"{bottom}\"/>\n\
         <line class=\"axis\" x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{bottom}\"/>\n\
         <text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n\
         <text transform=\"rotate(-90)\" x=\"{:.1}\" y=\"14\" text-anchor=\"middle\">{}</text>",
        (left + right) / 2.0,
        CHART_H - 8.0,
        esc("run (oldest → newest)"),
        -(top + bottom) / 2.0,
        esc("p95 latency (ms)")
    );
}

/// The line, split where a run has no figure, with a dot at every run.
fn line(f: &Frame, values: &[Option<f64>], page: &mut String) {
    const COLOR: &str = "#1c7ed6";
    let pixels: Vec<Option<(f64, f64)>> = values
        .iter()
        .enumerate()
        .map(|(i, v)| v.map(|v| (f.x(i), f.y(v))))
        .collect();
    for run in pixels.split(Option::is_none).filter(|r| r.len() > 1) {
        let coords: Vec<String> = run
            .iter()
            .flatten()
            .map(|(x, y)| format!("{x:.1},{y:.1}"))
            .collect();
        let _ = writeln!(
            page,
            "<polyline fill=\"none\" stroke=\"{COLOR}\" stroke-width=\"2\" points=\"{}\"/>",
            coords.join(" ")
        );
    }
    for (x, y) in pixels.iter().flatten() {
        let _ = writeln!(
            page,
            "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"3\" fill=\"{COLOR}\"/>"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Headline;
    use crate::report::test_report::report_with;

    fn point(run_id: &str, outcome: &str, p95: Option<f64>) -> HistoryPoint {
        HistoryPoint {
            run_id: run_id.into(),
            started_at: "2026-03-01T00:00:00.000Z".into(),
            outcome: outcome.into(),
            headline: Headline {
                latency_p95_ms: p95,
                error_rate: 0.01,
                rps: 12.5,
                output_tokens_per_s: 250.0,
                ..Headline::default()
            },
        }
    }

    fn with_history(points: Vec<HistoryPoint>) -> Report {
        let mut report = report_with(Vec::new());
        report.run_id = "r3".into();
        report.history = Some(HistoryTrend {
            plan_name: "smoke".into(),
            points,
        });
        report
    }

    #[test]
    fn one_run_is_no_trend() {
        let report = with_history(vec![point("r3", "pass", Some(100.0))]);
        assert!(trend(&report).is_none());
        let mut page = String::new();
        draw_chart(&report, &mut page);
        assert!(page.is_empty());
        assert!(trend(&report_with(Vec::new())).is_none());
    }

    #[test]
    fn the_table_lists_each_run_oldest_first_and_marks_this_one() {
        let report = with_history(vec![
            point("r1", "fail", Some(120.0)),
            point("r2", "regressed", None),
            point("r3", "pass", Some(180.0)),
        ]);
        let trend = trend(&report).unwrap();
        let rows = table(&report, trend).rows;
        assert_eq!(
            rows[0],
            [
                "r1",
                &trend.points[0].started_at,
                "❌ FAIL",
                "120ms",
                "1.00%",
                "12.5",
                "250.0"
            ]
        );
        assert_eq!(
            (rows[1][2].as_str(), rows[1][3].as_str()),
            ("REGRESSED", "—")
        );
        assert_eq!(
            (rows[2][0].as_str(), rows[2][2].as_str()),
            ("r3 (this run)", "✅ PASS")
        );
        let facts = facts(trend);
        assert_eq!(facts[0].value, "the last 3 of plan smoke, oldest first");
        assert_eq!(facts[1].value, "120ms → 180ms");
    }

    #[test]
    fn the_section_follows_the_executive_summary_in_both_formats() {
        let report = with_history(vec![
            point("r1", "pass", Some(100.0)),
            point("r3", "pass", Some(150.0)),
        ]);
        let headings: Vec<String> = crate::report::document::document(&report)
            .into_iter()
            .filter_map(|b| match b {
                crate::report::document::Block::Heading(2, text) => Some(text),
                _ => None,
            })
            .collect();
        assert_eq!(
            headings[..3],
            ["Executive Summary", "Run History", "Performance Results"]
        );
        let render = |format| {
            let mut out = Vec::new();
            crate::report::render(&report, format, &mut out).unwrap();
            String::from_utf8(out).unwrap()
        };
        let md = render(crate::report::Format::Markdown);
        assert!(md.contains("## Run History\n"), "{md}");
        assert!(md.contains("| r3 (this run) | 2026-03-01T00:00:00.000Z | ✅ PASS | 150ms |"));
        assert!(!md.contains("<svg"));
        let html = render(crate::report::Format::Html);
        assert!(html.contains(&format!("<title>{TITLE}</title>")), "{html}");
    }

    #[test]
    fn the_chart_draws_a_rising_line_with_a_gap_where_a_run_has_no_figure() {
        let report = with_history(vec![
            point("r1", "pass", Some(100.0)),
            point("r2", "pass", Some(150.0)),
            point("r3", "pass", None),
            point("r4", "pass", Some(190.0)),
            point("r5", "pass", Some(240.0)),
        ]);
        let mut page = String::new();
        draw_chart(&report, &mut page);
        assert!(
            page.starts_with("<svg") && page.ends_with("</svg>\n"),
            "{page}"
        );
        assert!(page.contains(&format!("<title>{TITLE}</title>")));
        assert_eq!(page.matches("<polyline").count(), 2, "split at the gap");
        assert_eq!(page.matches("<circle").count(), 4);
        let ys: Vec<f64> = page
            .match_indices("cy=\"")
            .map(|(at, _)| {
                let rest = &page[at + 4..];
                rest[..rest.find('"').unwrap()].parse().unwrap()
            })
            .collect();
        assert!(ys.windows(2).all(|w| w[1] < w[0]), "rising: {ys:?}");
        // The axis reaches a round number above the top figure.
        assert!(page.contains(">250</text>"), "{page}");
    }
}
