//! `report.html`: one self-contained page — the Markdown report's sections
//! as HTML tables, plus inline SVG charts drawn here from the 1-second
//! `intervals` (latency and throughput over time) and from sweep steps
//! (p95 against concurrency).
//!
//! The page loads nothing: inline CSS, no scripts, no fonts, no external
//! references, so it can be attached to a ticket or opened offline. Every
//! string from the model goes through [`esc`]. Like every renderer it must
//! not compute statistics, open files or read clocks; rows and numbers
//! come from [`super::view`].

use std::fmt::Write as _;
use std::io::{self, Write};

use super::model::{PhaseReport, Report};
use super::view::{self, Fact, Table};

const STYLE: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem auto;max-width:64rem;\
padding:0 1rem;color:#212529;line-height:1.45}\
h1{font-size:1.6rem}h2{border-bottom:1px solid #dee2e6;padding-bottom:.2rem;margin-top:2rem}\
table{border-collapse:collapse;margin:.6rem 0 1rem}\
th,td{border:1px solid #dee2e6;padding:.25rem .6rem;text-align:left;font-variant-numeric:tabular-nums}\
th{background:#f1f3f5}.pass{color:#2b8a3e}.fail{color:#c92a2a}.warn{color:#e67700}\
.meta,.note,footer{color:#495057;font-size:.9rem}.verdict{font-size:1.15rem;font-weight:600}\
svg{display:block;margin:.5rem 0 1rem;max-width:100%;height:auto}\
svg text{font-size:11px;fill:#495057}svg .title{font-size:13px;font-weight:600;fill:#212529}\
svg .grid{stroke:#e9ecef}svg .axis{stroke:#868e96}";

/// Writes the whole page.
pub(crate) fn render(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let mut page = String::with_capacity(64 * 1024);
    head(report, &mut page);
    executive_summary(report, &mut page);
    performance(report, &mut page);
    phases(report, &mut page);
    streaming(report, &mut page);
    models(report, &mut page);
    observability(report, &mut page);
    generator(report, &mut page);
    notes(report, &mut page);
    footer(report, &mut page);
    out.write_all(page.as_bytes())
}

/// Escapes text for HTML element content and quoted attribute values.
pub(crate) fn esc(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for ch in raw.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(ch),
        }
    }
    out
}

/// The colour class of a cell that holds a PASS/FAIL mark.
fn mark_class(cell: &str) -> Option<&'static str> {
    if cell.starts_with('✅') {
        Some("pass")
    } else if cell.starts_with('❌') {
        Some("fail")
    } else if cell.starts_with('⚠') || cell.starts_with('⏹') {
        Some("warn")
    } else {
        None
    }
}

fn table(t: &Table, page: &mut String) {
    page.push_str("<table>\n<thead><tr>");
    for h in &t.headers {
        let _ = write!(page, "<th>{}</th>", esc(h));
    }
    page.push_str("</tr></thead>\n<tbody>\n");
    for row in &t.rows {
        page.push_str("<tr>");
        for cell in row {
            match mark_class(cell) {
                Some(class) => _ = write!(page, "<td class=\"{class}\">{}</td>", esc(cell)),
                None => _ = write!(page, "<td>{}</td>", esc(cell)),
            }
        }
        page.push_str("</tr>\n");
    }
    page.push_str("</tbody>\n</table>\n");
}

fn facts(list: &[Fact], page: &mut String) {
    page.push_str("<ul>\n");
    for f in list {
        let _ = writeln!(
            page,
            "<li><strong>{}</strong>: {}</li>",
            esc(&f.label),
            esc(&f.value)
        );
    }
    page.push_str("</ul>\n");
}

fn list(items: &[String], page: &mut String) {
    if items.is_empty() {
        return;
    }
    page.push_str("<ul>\n");
    for item in items {
        let _ = writeln!(page, "<li>{}</li>", esc(item));
    }
    page.push_str("</ul>\n");
}

fn head(report: &Report, page: &mut String) {
    let title = esc(&format!("infercheck report — {}", report.plan_name));
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{title}</h1>\n"
    );
    let (run_id, started, target) = view::run_line(report);
    let _ = writeln!(
        page,
        "<p class=\"meta\">Run <code>{}</code> · Started {} · Target {}</p>",
        esc(&run_id),
        esc(&started),
        esc(&target)
    );
}

fn executive_summary(report: &Report, page: &mut String) {
    page.push_str("<h2>Executive Summary</h2>\n");
    let outcome = report.verdict.outcome;
    let class = mark_class(view::outcome_mark(outcome)).unwrap_or("warn");
    let _ = writeln!(
        page,
        "<p class=\"verdict {class}\">{} — {}</p>",
        view::outcome_mark(outcome),
        esc(&view::outcome_gloss(report))
    );
    list(&report.verdict.reasons, page);
    facts(&view::executive_facts(report), page);
}

fn performance(report: &Report, page: &mut String) {
    page.push_str("<h2>Performance Results</h2>\n<h3>HTTP Metrics</h3>\n");
    let _ = writeln!(page, "<p class=\"note\">{}</p>", esc(view::LATENCY_NOTE));
    table(&view::http_metrics(report), page);
    if let Some(errors) = view::errors(&report.overall) {
        page.push_str("<h3>Errors</h3>\n");
        table(&errors, page);
    }
    if let Some(resources) = super::observed_view::resources(report) {
        page.push_str("<h3>System Resource Utilization</h3>\n");
        table(&resources, page);
    }
    if let Some(queue) = super::markdown::queue_and_tasks(report) {
        page.push_str("<h3>Queue and Task Metrics</h3>\n");
        table(&queue, page);
    }
    let engine = super::observed_view::engine_facts(report);
    if !engine.is_empty() {
        page.push_str("<h2>Inference Engine Analysis</h2>\n");
        facts(&engine, page);
    }
    let charts = [latency_chart(report), rps_chart(report)];
    if charts.iter().any(|c| c.has_points()) {
        page.push_str("<h3>Over Time</h3>\n");
        for chart in &charts {
            chart.draw(page);
        }
    }
}

fn phases(report: &Report, page: &mut String) {
    if report.phases.is_empty() {
        return;
    }
    page.push_str("<h2>Test Phases</h2>\n");
    for (i, phase) in report.phases.iter().enumerate() {
        let _ = writeln!(page, "<h3>{}</h3>", esc(&view::phase_heading(i, phase)));
        facts(&view::phase_facts(phase), page);
        if let Some(thresholds) = view::scope_thresholds(report, &phase.name) {
            table(&thresholds, page);
        }
        if let Some(sweep) = view::sweep(phase) {
            page.push_str("<h4>Stress Sweep</h4>\n");
            table(&sweep, page);
            sweep_chart(phase).draw(page);
        }
    }
}

fn streaming(report: &Report, page: &mut String) {
    if let Some(ux) = view::streaming(&report.overall) {
        page.push_str("<h2>Streaming UX</h2>\n");
        table(&ux, page);
    }
}

fn models(report: &Report, page: &mut String) {
    let (models, thresholds) = (view::models(report), view::model_thresholds(report));
    if models.is_none() && thresholds.is_none() {
        return;
    }
    page.push_str("<h2>Per-Model Breakdown</h2>\n");
    if let Some(models) = models {
        table(&models, page);
    }
    if let Some(thresholds) = thresholds {
        page.push_str("<h3>Model Thresholds</h3>\n");
        table(&thresholds, page);
    }
}

/// "Observability Validation": trace sampling and its detail tables.
fn observability(report: &Report, page: &mut String) {
    use super::trace_view;
    let mut trace_facts = trace_view::observability_facts(report);
    trace_facts.extend(super::observed_view::observability_facts(report));
    if trace_facts.is_empty() {
        return;
    }
    page.push_str("<h2>Observability Validation</h2>\n");
    facts(&trace_facts, page);
    list(trace_view::notes(report), page);
    if let Some(groups) = trace_view::coverage_groups(report) {
        page.push_str("<h3>Trace Coverage by Group</h3>\n");
        table(&groups, page);
    }
    if let Some(spans) = trace_view::span_durations(report) {
        page.push_str("<h3>Server Spans</h3>\n");
        table(&spans, page);
    }
    if let Some((heading, parts)) = trace_view::slowest(report) {
        let _ = writeln!(page, "<h3>{}</h3>", esc(&heading));
        table(&parts, page);
    }
}

fn generator(report: &Report, page: &mut String) {
    page.push_str("<h2>Generator Health</h2>\n");
    let status = if report.generator.valid {
        "<p class=\"pass\">✅ valid — the generator kept up with its schedule</p>"
    } else {
        "<p class=\"warn\">⚠️ INVALID — the generator was the bottleneck</p>"
    };
    page.push_str(status);
    page.push('\n');
    list(&report.generator.reasons, page);
    facts(&view::generator_facts(report), page);
}

fn notes(report: &Report, page: &mut String) {
    if !report.notes.is_empty() {
        page.push_str("<h2>Notes</h2>\n");
        list(&report.notes, page);
    }
}

fn footer(report: &Report, page: &mut String) {
    let streaming = if report.target.stream {
        "streaming"
    } else {
        "not streaming"
    };
    let _ = writeln!(
        page,
        "<footer>{} {} · report schema v{} · API {}, {}</footer>\n</body>\n</html>",
        esc(&report.tool.name),
        esc(&report.tool.version),
        report.schema_version,
        esc(&report.target.api),
        streaming
    );
}

// ---------------------------------------------------------------------------
// Charts: plain SVG line charts, drawn here so the page needs no library.

const CHART_W: f64 = 760.0;
const CHART_H: f64 = 280.0;
/// Plot area margins: left holds the y tick labels, bottom the x labels.
const M_LEFT: f64 = 64.0;
const M_RIGHT: f64 = 16.0;
const M_TOP: f64 = 32.0;
const M_BOTTOM: f64 = 48.0;

/// One line of a chart; a `None` point is a gap (no data that second),
/// never a zero.
struct Line {
    name: String,
    color: &'static str,
    dashed: bool,
    points: Vec<Option<(f64, f64)>>,
}

/// What the x axis holds, which decides its ticks and its origin.
#[derive(Clone, Copy, PartialEq)]
enum Axis {
    /// Seconds of the run: starts at 0, round ticks.
    RunTime,
    /// Sweep levels: a dot and a tick at each level, since the levels
    /// (e.g. 20, 24, 32, 48, 64) are what the reader compares.
    Levels,
}

struct Chart {
    title: String,
    x_label: &'static str,
    y_label: &'static str,
    axis: Axis,
    lines: Vec<Line>,
}

fn latency_chart(report: &Report) -> Chart {
    let series =
        |name: &str, color, pick: fn(&super::model::IntervalSummary) -> Option<f64>| Line {
            name: name.to_owned(),
            color,
            dashed: false,
            points: report
                .intervals
                .iter()
                .map(|i| pick(i).map(|v| (i.t, v)))
                .collect(),
        };
    Chart {
        title: "Latency over time (from intended send)".to_owned(),
        x_label: "run time (s)",
        y_label: "latency (ms)",
        axis: Axis::RunTime,
        lines: vec![
            series("p50", "#2b8a3e", |i| i.latency_p50_ms),
            series("p95", "#e67700", |i| i.latency_p95_ms),
            series("p99", "#c92a2a", |i| i.latency_p99_ms),
        ],
    }
}

fn rps_chart(report: &Report) -> Chart {
    let achieved = report
        .intervals
        .iter()
        .map(|i| Some((i.t, i.rps)))
        .collect();
    let target: Vec<Option<(f64, f64)>> = report
        .intervals
        .iter()
        .map(|i| i.target_rps.map(|r| (i.t, r)))
        .collect();
    let mut lines = vec![Line {
        name: "achieved".to_owned(),
        color: "#1c7ed6",
        dashed: false,
        points: achieved,
    }];
    if target.iter().any(Option::is_some) {
        lines.push(Line {
            name: "target".to_owned(),
            color: "#868e96",
            dashed: true,
            points: target,
        });
    }
    Chart {
        title: "Throughput over time: achieved vs target".to_owned(),
        x_label: "run time (s)",
        y_label: "requests/s",
        axis: Axis::RunTime,
        lines,
    }
}

fn sweep_chart(phase: &PhaseReport) -> Chart {
    // Steps without a concurrency level are placed by their position.
    let points = phase
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let x = s.concurrency.map_or((i + 1) as f64, |c| c as f64);
            s.stats.latency_ms.map(|q| (x, q.p95 / 1000.0))
        })
        .collect();
    Chart {
        title: format!("{}: p95 latency vs concurrency", phase.name),
        x_label: "concurrency",
        y_label: "p95 latency (s)",
        axis: Axis::Levels,
        lines: vec![Line {
            name: "p95".to_owned(),
            color: "#e67700",
            dashed: false,
            points,
        }],
    }
}

/// A round step (1, 2 or 5 × 10^k) near `span / 5`, for about 5 ticks.
pub(crate) fn nice_step(span: f64) -> f64 {
    if !span.is_finite() || span <= 0.0 {
        return 1.0;
    }
    let raw = span / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .find(|m| m * magnitude >= raw)
        .unwrap_or(10.0);
    step * magnitude
}

/// A tick label with as many decimals as the step needs.
pub(crate) fn tick_label(v: f64, step: f64) -> String {
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10()).ceil() as usize
    };
    format!("{v:.decimals$}")
}

/// The data-to-pixel mapping of one chart.
struct Frame {
    x_min: f64,
    x_max: f64,
    x_step: f64,
    y_max: f64,
    y_step: f64,
}

impl Frame {
    fn fit(points: &[(f64, f64)], axis: Axis) -> Option<Frame> {
        if points.is_empty() {
            return None;
        }
        let start = if axis == Axis::RunTime { 0.0 } else { f64::MAX };
        let (mut x_min, mut x_max) = points
            .iter()
            .fold((start, f64::MIN), |(lo, hi), p| (lo.min(p.0), hi.max(p.0)));
        let y_top = points.iter().fold(0.0f64, |hi, p| hi.max(p.1));
        if x_max <= x_min {
            (x_min, x_max) = (x_min - 1.0, x_max + 1.0);
        }
        let y_step = nice_step(if y_top > 0.0 { y_top } else { 1.0 });
        let y_max = (y_top / y_step).ceil().max(1.0) * y_step;
        Some(Frame {
            x_min,
            x_max,
            x_step: nice_step(x_max - x_min),
            y_max,
            y_step,
        })
    }

    fn x(&self, v: f64) -> f64 {
        M_LEFT + (v - self.x_min) / (self.x_max - self.x_min) * (CHART_W - M_LEFT - M_RIGHT)
    }

    fn y(&self, v: f64) -> f64 {
        CHART_H - M_BOTTOM - v / self.y_max * (CHART_H - M_TOP - M_BOTTOM)
    }
}

impl Chart {
    fn has_points(&self) -> bool {
        self.lines
            .iter()
            .any(|l| l.points.iter().any(Option::is_some))
    }

    fn points(&self) -> Vec<(f64, f64)> {
        let all = self.lines.iter().flat_map(|l| l.points.iter().flatten());
        all.copied().collect()
    }

    /// Where the x axis gets a labelled tick.
    fn x_ticks(&self, f: &Frame) -> Vec<f64> {
        if self.axis == Axis::Levels {
            let mut levels: Vec<f64> = self.points().iter().map(|p| p.0).collect();
            levels.sort_by(f64::total_cmp);
            levels.dedup();
            return levels;
        }
        let first = (f.x_min / f.x_step).ceil() as i64;
        let last = (f.x_max / f.x_step + 1e-9).floor() as i64;
        (first..=last).map(|i| i as f64 * f.x_step).collect()
    }

    fn draw(&self, page: &mut String) {
        let Some(frame) = Frame::fit(&self.points(), self.axis) else {
            return;
        };
        let title = esc(&self.title);
        let _ = writeln!(
            page,
            "<svg viewBox=\"0 0 {CHART_W} {CHART_H}\" width=\"{CHART_W}\" height=\"{CHART_H}\" \
             role=\"img\" aria-label=\"{title}\">\n<title>{title}</title>\n\
             <text class=\"title\" x=\"{M_LEFT}\" y=\"18\">{title}</text>"
        );
        self.axes(&frame, page);
        for line in &self.lines {
            self.plot(line, &frame, page);
        }
        self.legend(page);
        page.push_str("</svg>\n");
    }

    fn axes(&self, f: &Frame, page: &mut String) {
        let (left, right, bottom, top) = (M_LEFT, CHART_W - M_RIGHT, CHART_H - M_BOTTOM, M_TOP);
        // Integer tick indices: adding 0.1 five times does not reach 0.5.
        for i in 0..=(f.y_max / f.y_step).round() as i64 {
            let v = i as f64 * f.y_step;
            let y = f.y(v);
            let _ = writeln!(
                page,
                "<line class=\"grid\" x1=\"{left}\" y1=\"{y:.1}\" x2=\"{right}\" y2=\"{y:.1}\"/>"
            );
            let label = tick_label(v, f.y_step);
            let _ = writeln!(
                page,
                "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{label}</text>",
                left - 6.0,
                y + 4.0
            );
        }
        let x_step = if self.axis == Axis::Levels {
            1.0
        } else {
            f.x_step
        };
        for v in self.x_ticks(f) {
            let (x, label) = (f.x(v), tick_label(v, x_step));
            let _ = writeln!(
                page,
                "<text x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\">{label}</text>",
                bottom + 16.0
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
            esc(self.x_label),
            -(top + bottom) / 2.0,
            esc(self.y_label)
        );
    }

    /// Draws one line as polylines split at gaps; a lone point becomes a dot
    /// so that a single second of data is still visible.
    fn plot(&self, line: &Line, f: &Frame, page: &mut String) {
        let dash = if line.dashed {
            " stroke-dasharray=\"6 4\""
        } else {
            ""
        };
        for run in line.points.split(Option::is_none) {
            let pixels: Vec<(f64, f64)> = run
                .iter()
                .flatten()
                .map(|&(x, y)| (f.x(x), f.y(y)))
                .collect();
            if pixels.len() > 1 {
                let coords: Vec<String> = pixels
                    .iter()
                    .map(|(x, y)| format!("{x:.1},{y:.1}"))
                    .collect();
                let _ = writeln!(
                    page,
                    "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\"{dash} points=\"{}\"/>",
                    line.color,
                    coords.join(" ")
                );
            }
            if self.axis == Axis::Levels || pixels.len() == 1 {
                for (x, y) in &pixels {
                    let _ = writeln!(
                        page,
                        "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"3\" fill=\"{}\"/>",
                        line.color
                    );
                }
            }
        }
    }

    fn legend(&self, page: &mut String) {
        let mut x = CHART_W - M_RIGHT - 90.0 * self.lines.len() as f64;
        for line in &self.lines {
            let dash = if line.dashed {
                " stroke-dasharray=\"6 4\""
            } else {
                ""
            };
            let _ = writeln!(
                page,
                "<line x1=\"{x:.1}\" y1=\"14\" x2=\"{:.1}\" y2=\"14\" stroke=\"{}\" stroke-width=\"2\"{dash}/>\
                 <text x=\"{:.1}\" y=\"18\">{}</text>",
                x + 18.0,
                line.color,
                x + 22.0,
                esc(&line.name)
            );
            x += 90.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn esc_neutralises_markup_and_quotes() {
        let cases = [
            ("plain", "plain"),
            (
                "<script>alert('x')</script>",
                "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;",
            ),
            ("a & \"b\"", "a &amp; &quot;b&quot;"),
        ];
        for (raw, want) in cases {
            assert_eq!(esc(raw), want);
        }
    }

    #[test]
    fn ticks_are_round_numbers() {
        let cases = [
            (1000.0, 200.0),
            (37.0, 10.0),
            (12.0, 5.0),
            (0.9, 0.2),
            (0.0, 1.0),
            (f64::NAN, 1.0),
        ];
        for (span, want) in cases {
            assert!(
                (nice_step(span) - want).abs() < 1e-9,
                "{span}: {}",
                nice_step(span)
            );
        }
        assert_eq!(tick_label(400.0, 200.0), "400");
        assert_eq!(tick_label(0.4, 0.2), "0.4");
        assert_eq!(tick_label(0.05, 0.05), "0.05");
    }

    #[test]
    fn gaps_split_lines_and_empty_charts_draw_nothing() {
        let points = vec![Some((1.0, 10.0)), Some((2.0, 20.0)), None, Some((4.0, 5.0))];
        let line = Line {
            name: "p95".to_owned(),
            color: "#000",
            dashed: false,
            points,
        };
        let mut chart = Chart {
            title: "t".to_owned(),
            x_label: "x",
            y_label: "y",
            axis: Axis::RunTime,
            lines: vec![line],
        };
        let mut page = String::new();
        chart.draw(&mut page);
        assert_eq!(page.matches("<polyline").count(), 1, "{page}");
        assert_eq!(
            page.matches("<circle").count(),
            1,
            "the lone point after the gap is a dot"
        );
        chart.lines[0].points = vec![None, None];
        let mut empty = String::new();
        chart.draw(&mut empty);
        assert!(empty.is_empty());
    }
}
