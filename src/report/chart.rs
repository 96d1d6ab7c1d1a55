//! The HTML page's charts: plain SVG line charts drawn here, so the page
//! needs no library and loads nothing — latency and throughput over the
//! run's 1-second intervals, and p95 latency against a sweep's concurrency
//! levels. A missing point is a gap in the line, never a zero.

use std::fmt::Write as _;

use super::document::ChartKind;
use super::html::esc;
use super::model::{IntervalSummary, PhaseReport, Report};
use crate::stats::Distribution;

/// Draws `kind` from `report`; nothing when it has no data.
pub(crate) fn draw(kind: ChartKind, report: &Report, page: &mut String) {
    if let Some(chart) = chart(kind, report) {
        chart.draw(page);
    }
}

/// Whether `kind` has anything to draw.
pub(crate) fn has_data(kind: ChartKind, report: &Report) -> bool {
    chart(kind, report).is_some_and(|c| c.has_points())
}

fn chart(kind: ChartKind, report: &Report) -> Option<Chart> {
    Some(match kind {
        ChartKind::LatencyOverTime => latency_chart(report),
        ChartKind::RpsOverTime => rps_chart(report),
        ChartKind::Sweep(phase) => sweep_chart(report, report.phases.get(phase)?),
        ChartKind::ServerOverTime => server_chart(report, ServerPanel::Ratios),
        ChartKind::QueueOverTime => server_chart(report, ServerPanel::Queue),
        ChartKind::Driver => driver_chart(report)?,
    })
}

/// A vertical marker at `x`: a phase's start, a sweep's knee.
struct Mark {
    x: f64,
    label: String,
}

/// The phases' starts on the run clock (the first, at 0, left out).
fn phase_marks(report: &Report) -> Vec<Mark> {
    report
        .phases
        .iter()
        .filter(|p| p.start_s > 0.5)
        .map(|p| Mark {
            x: p.start_s,
            label: p.name.clone(),
        })
        .collect()
}

/// Which sampled series a server chart draws.
#[derive(Clone, Copy, PartialEq)]
enum ServerPanel {
    /// GPU, KV cache and memory, as percentages.
    Ratios,
    /// Requests waiting and running.
    Queue,
}

const SERVER_COLORS: [&str; 6] = [
    "#1c7ed6", "#e67700", "#2b8a3e", "#ae3ec9", "#c92a2a", "#495057",
];

/// Server series on the run clock, under the latency chart, with the
/// phase bounds marked.
fn server_chart(report: &Report, panel: ServerPanel) -> Chart {
    let names: &[&str] = match panel {
        ServerPanel::Ratios => &["gpu_util", "kv_usage", "memory_used", "prefix_hit_rate"],
        ServerPanel::Queue => &["queue_depth", "running"],
    };
    let scale = if panel == ServerPanel::Ratios {
        100.0
    } else {
        1.0
    };
    let lines = names
        .iter()
        .filter_map(|name| report.series.iter().find(|s| s.name == *name))
        .zip(SERVER_COLORS)
        .map(|(series, color)| Line {
            name: series.name.clone(),
            color,
            dashed: false,
            points: series
                .samples
                .iter()
                .map(|s| Some((s.t, s.value * scale)))
                .collect(),
        })
        .collect();
    let (title, y_label) = match panel {
        ServerPanel::Ratios => ("Server over time: GPU, KV cache, memory", "percent"),
        ServerPanel::Queue => ("Server over time: requests waiting and running", "requests"),
    };
    Chart {
        title: title.to_owned(),
        x_label: "run time (s)",
        y_label,
        axis: Axis::RunTime,
        lines,
        marks: phase_marks(report),
    }
}

/// The strongest driver as a scatter: the server series at s − lag
/// against the client series at s; `None` without a driver.
fn driver_chart(report: &Report) -> Option<Chart> {
    let d = report.explanation.drivers.drivers().next()?;
    let server = report.series.iter().find(|s| s.name == d.server)?;
    let at: std::collections::BTreeMap<i64, f64> = server
        .samples
        .iter()
        .map(|s| (s.t.round() as i64, s.value))
        .collect();
    let points = report
        .intervals
        .iter()
        .filter(|i| i.duration_s >= 0.99)
        .filter_map(|i| {
            let effect = i.client_series(&d.client)?;
            let cause = at.get(&(i.t.round() as i64 - d.lag_s))?;
            Some(Some((*cause, effect)))
        })
        .collect();
    Some(Chart {
        title: format!(
            "{} against {} ({}s earlier): ρ {:+.2}",
            d.client, d.server, d.lag_s, d.rho
        ),
        x_label: "server value",
        y_label: "client value",
        axis: Axis::Scatter,
        lines: vec![Line {
            name: d.server.clone(),
            color: "#1c7ed6",
            dashed: false,
            points,
        }],
        marks: Vec::new(),
    })
}

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
    /// Any values: dots only, round ticks from the smallest.
    Scatter,
}

struct Chart {
    title: String,
    x_label: &'static str,
    y_label: &'static str,
    axis: Axis,
    lines: Vec<Line>,
    marks: Vec<Mark>,
}

fn latency_chart(report: &Report) -> Chart {
    let series = |name: &str, color, pick: fn(&IntervalSummary) -> Option<f64>| Line {
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
        marks: phase_marks(report),
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
        marks: phase_marks(report),
    }
}

fn sweep_chart(report: &Report, phase: &PhaseReport) -> Chart {
    // Steps without a concurrency level are placed by their position.
    let points = phase
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let x = s.concurrency.map_or((i + 1) as f64, |c| c as f64);
            s.stats
                .quantiles(Distribution::Latency)
                .map(|q| (x, q.p95 / 1000.0))
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
        // The knee the saturation analysis found, where it found one.
        marks: report
            .explanation
            .saturation
            .iter()
            .filter(|s| s.phase == phase.name)
            .filter_map(|s| {
                Some(Mark {
                    x: s.knee?,
                    label: "knee".to_owned(),
                })
            })
            .collect(),
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
        self.draw_marks(&frame, page);
        for line in &self.lines {
            self.plot(line, &frame, page);
        }
        self.legend(page);
        page.push_str("</svg>\n");
    }

    /// Dashed vertical lines with their labels (phase starts, a knee).
    fn draw_marks(&self, f: &Frame, page: &mut String) {
        let (top, bottom) = (M_TOP, CHART_H - M_BOTTOM);
        for mark in self
            .marks
            .iter()
            .filter(|m| m.x >= f.x_min && m.x <= f.x_max)
        {
            let x = f.x(mark.x);
            let _ = writeln!(
                page,
                "<line class=\"axis\" x1=\"{x:.1}\" y1=\"{top}\" x2=\"{x:.1}\" y2=\"{bottom}\" stroke-dasharray=\"3 3\"/>\n\
                 <text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                x + 3.0,
                top + 10.0,
                esc(&mark.label)
            );
        }
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
            if pixels.len() > 1 && self.axis != Axis::Scatter {
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
            if self.axis != Axis::RunTime || pixels.len() == 1 {
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
            marks: Vec::new(),
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
