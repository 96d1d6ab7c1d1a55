//! `infercheck history`: the runs of the history and their trends.
//!
//! Lists the newest `--limit` runs (of `--plan` only, when given), newest
//! first, then for each plan with at least [`MIN_TREND_RUNS`] listed runs
//! one line per headline metric over those runs, oldest to newest: its
//! first and last figure and — from [`MIN_SLOPE_RUNS`] runs, the least
//! `stats::trend` fits — the Theil–Sen slope per run with the
//! Mann–Kendall p-value. `--json` prints the listed entries instead. A
//! history that does not exist or cannot be read exits 3.

use std::collections::BTreeMap;
use std::io::Write;

use super::Failure;
use crate::exit;
use crate::history::{History, RunEntry};
use crate::report::{Headline, HeadlineMetric};
use crate::stats::trend::{Trend, trend};

/// A plan needs this many listed runs for its trend lines.
const MIN_TREND_RUNS: usize = 3;
/// The fewest points `stats::trend` fits a slope to.
const MIN_SLOPE_RUNS: usize = 8;
/// A Mann–Kendall p-value below this calls a trend rising or falling.
const SIGNIFICANCE: f64 = 0.05;

pub fn history(args: &crate::cli::HistoryArgs) -> Result<i32, Failure> {
    let history = History::open_existing(&args.db).map_err(could_not_run)?;
    let runs = history
        .runs(args.plan.as_deref(), args.limit)
        .map_err(could_not_run)?;
    let text = if args.json {
        let mut json = serde_json::to_string_pretty(&runs).map_err(could_not_run)?;
        json.push('\n');
        json
    } else if runs.is_empty() {
        format!("no runs in {}\n", args.db.display())
    } else {
        format!("{}\n{}", run_table(&runs), trends(&runs))
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(could_not_run)?;
    Ok(exit::OK)
}

fn could_not_run(error: impl std::fmt::Display) -> Failure {
    Failure::new(exit::COULD_NOT_RUN, error)
}

/// The runs, one line each, under a header.
fn run_table(runs: &[RunEntry]) -> String {
    let header = [
        "RUN", "STARTED", "PLAN", "VERDICT", "P95", "ERRORS", "RPS", "TOK/S", "STACK",
    ];
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
            let h = &r.headline;
            vec![
                r.run_id.clone(),
                r.started_at.clone(),
                r.plan_name.clone(),
                r.outcome.clone(),
                h.latency_p95_ms
                    .map_or_else(|| "—".to_owned(), |v| value("ms", v)),
                value("ratio", h.error_rate),
                format!("{:.1}", h.rps),
                format!("{:.1}", h.output_tokens_per_s),
                r.stack_version.clone().unwrap_or_else(|| "—".to_owned()),
            ]
        })
        .collect();
    columns(&header, &rows)
}

/// Left-aligned columns two spaces apart.
fn columns(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut text = line(header.to_vec());
    for row in rows {
        text.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    text
}

/// Each plan's trend lines over its listed runs, plans in name order.
fn trends(runs: &[RunEntry]) -> String {
    let mut by_plan: BTreeMap<&str, Vec<&Headline>> = BTreeMap::new();
    // Listed newest first; a trend reads oldest first.
    for run in runs.iter().rev() {
        by_plan
            .entry(&run.plan_name)
            .or_default()
            .push(&run.headline);
    }
    let mut text = String::from("Trends over the listed runs, oldest → newest:\n");
    for (plan, headlines) in by_plan {
        text.push_str(&plan_trend(plan, &headlines));
    }
    text
}

fn plan_trend(plan: &str, headlines: &[&Headline]) -> String {
    let n = headlines.len();
    if n < MIN_TREND_RUNS {
        return format!("{plan}: {n} runs (a trend needs {MIN_TREND_RUNS})\n");
    }
    let mut text = if n < MIN_SLOPE_RUNS {
        format!("{plan}: {n} runs (first → last; a slope needs {MIN_SLOPE_RUNS})\n")
    } else {
        format!("{plan}: {n} runs\n")
    };
    let lines: Vec<(&str, MetricTrend)> = Headline::METRICS
        .iter()
        .filter_map(|m| Some((m.label, metric_trend(m, headlines)?)))
        .collect();
    let label_width = lines.iter().map(|(l, _)| l.chars().count()).max();
    let change_width = lines.iter().map(|(_, t)| t.change.chars().count()).max();
    for (label, t) in &lines {
        let (lw, cw) = (label_width.unwrap_or(0), change_width.unwrap_or(0));
        let line = match &t.slope {
            Some(slope) => format!("  {label:<lw$}  {:<cw$}  {slope}", t.change),
            None => format!("  {label:<lw$}  {}", t.change),
        };
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

/// One metric over a plan's runs, in words.
#[derive(Debug)]
struct MetricTrend {
    /// "first → last".
    change: String,
    /// The slope per run and its significance; `None` below
    /// [`MIN_SLOPE_RUNS`] runs, or when fewer runs had the figure.
    slope: Option<String>,
}

/// `metric` over `headlines` (oldest first); `None` when no run had it.
fn metric_trend(metric: &HeadlineMetric, headlines: &[&Headline]) -> Option<MetricTrend> {
    let points: Vec<(f64, f64)> = headlines
        .iter()
        .enumerate()
        .filter_map(|(i, h)| Some((i as f64, (metric.value)(h).filter(|v| v.is_finite())?)))
        .collect();
    let (first, last) = (points.first()?.1, points.last()?.1);
    let change = format!(
        "{} → {}",
        value(metric.unit, first),
        value(metric.unit, last)
    );
    let slope = match trend(&points) {
        Some(t) => Some(slope_text(metric, &t)),
        None if headlines.len() >= MIN_SLOPE_RUNS => {
            Some(format!("slope needs {MIN_SLOPE_RUNS} runs with the figure"))
        }
        None => None,
    };
    Some(MetricTrend { change, slope })
}

/// "+10.0ms/run, rising (worse), Mann–Kendall p = 0.0001".
fn slope_text(metric: &HeadlineMetric, t: &Trend) -> String {
    // A p-value that is not a number is no evidence either.
    let significant = t.p_value < SIGNIFICANCE && t.slope != 0.0;
    let direction = if !significant {
        "no significant trend"
    } else if (t.slope > 0.0) == metric.higher_is_better {
        if t.slope > 0.0 {
            "rising (better)"
        } else {
            "falling (better)"
        }
    } else if t.slope > 0.0 {
        "rising (worse)"
    } else {
        "falling (worse)"
    };
    let sign = if t.slope > 0.0 { "+" } else { "" };
    format!(
        "{sign}{}/run, {direction}, Mann–Kendall p = {:.4}",
        slope_value(metric.unit, t.slope),
        t.p_value
    )
}

/// A slope in its unit with three significant digits, since a change per
/// run is often a small fraction of the figure: "+0.0125 req/s".
fn slope_value(unit: &str, v: f64) -> String {
    let (v, unit) = match unit {
        "ratio" => (v * 100.0, "%"),
        "ms" => (v, "ms"),
        unit => (v, unit),
    };
    let decimals = if v == 0.0 || !v.is_finite() {
        1
    } else {
        (2.0 - v.abs().log10().floor()).clamp(0.0, 6.0) as usize
    };
    let gap = if matches!(unit, "ms" | "%") { "" } else { " " };
    format!("{v:.decimals$}{gap}{unit}")
}

/// A figure in its unit: "123.4ms", "1.25%", "10.0 req/s".
fn value(unit: &str, v: f64) -> String {
    match unit {
        "ms" => format!("{v:.1}ms"),
        "ratio" => format!("{:.2}%", v * 100.0),
        unit => format!("{v:.1} {unit}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headline(p95: f64, rps: f64) -> Headline {
        Headline {
            latency_p95_ms: Some(p95),
            rps,
            ..Headline::default()
        }
    }

    fn p95_metric() -> &'static HeadlineMetric {
        Headline::METRICS
            .iter()
            .find(|m| m.key == "latency_p95_ms")
            .unwrap()
    }

    #[test]
    fn a_steadily_rising_p95_has_a_rising_slope() {
        let owned: Vec<Headline> = (0..10)
            .map(|i| headline(100.0 + 10.0 * f64::from(i), 10.0))
            .collect();
        let headlines: Vec<&Headline> = owned.iter().collect();
        let t = metric_trend(p95_metric(), &headlines).unwrap();
        assert_eq!(t.change, "100.0ms → 190.0ms");
        let slope = t.slope.unwrap();
        assert!(slope.starts_with("+10.0ms/run, rising (worse)"), "{slope}");
    }

    #[test]
    fn a_flat_figure_has_no_significant_trend_and_few_runs_no_slope() {
        let owned: Vec<Headline> = (0..10).map(|_| headline(100.0, 10.0)).collect();
        let headlines: Vec<&Headline> = owned.iter().collect();
        let rps = Headline::METRICS.iter().find(|m| m.key == "rps").unwrap();
        let slope = metric_trend(rps, &headlines).unwrap().slope.unwrap();
        assert!(slope.contains("no significant trend"), "{slope}");
        let few = metric_trend(p95_metric(), &headlines[..5]).unwrap();
        assert_eq!(
            (few.change.as_str(), few.slope),
            ("100.0ms → 100.0ms", None)
        );
        let ttft = Headline::METRICS
            .iter()
            .find(|m| m.key == "ttft_p95_ms")
            .unwrap();
        assert!(metric_trend(ttft, &headlines).is_none(), "no run had it");
        // Ten runs, five with the figure: the slope says what it lacks.
        let mut sparse = owned.clone();
        sparse
            .iter_mut()
            .step_by(2)
            .for_each(|h| h.latency_p95_ms = None);
        let headlines: Vec<&Headline> = sparse.iter().collect();
        let slope = metric_trend(p95_metric(), &headlines).unwrap().slope;
        assert_eq!(slope.as_deref(), Some("slope needs 8 runs with the figure"));
    }

    #[test]
    fn a_falling_rate_is_worse_and_a_falling_latency_better() {
        let t = Trend {
            slope: -2.0,
            p_value: 0.001,
            n: 10,
        };
        let rps = Headline::METRICS.iter().find(|m| m.key == "rps").unwrap();
        assert!(slope_text(rps, &t).contains("falling (worse)"));
        assert!(slope_text(p95_metric(), &t).contains("-2.00ms/run, falling (better)"));
    }

    #[test]
    fn a_plan_with_few_runs_says_what_it_lacks() {
        let owned: Vec<Headline> = (0..4).map(|i| headline(f64::from(i), 1.0)).collect();
        let headlines: Vec<&Headline> = owned.iter().collect();
        let two = plan_trend("smoke", &headlines[..2]);
        assert_eq!(two, "smoke: 2 runs (a trend needs 3)\n");
        let text = plan_trend("smoke", &headlines);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "smoke: 4 runs (first → last; a slope needs 8)");
        assert!(lines.contains(&"  P95 Latency    0.0ms → 3.0ms"), "{text}");
    }

    #[test]
    fn slopes_keep_three_significant_digits() {
        assert_eq!(slope_value("ms", 25.0), "25.0ms");
        assert_eq!(slope_value("req/s", 0.0125), "0.0125 req/s");
        assert_eq!(slope_value("ratio", 0.001), "0.100%");
        assert_eq!(slope_value("tok/s", -3.0), "-3.00 tok/s");
        assert_eq!(slope_value("ms", 0.0), "0.0ms");
    }

    #[test]
    fn columns_line_up() {
        let rows = vec![vec!["a-long-id".to_owned(), "x".to_owned()]];
        assert_eq!(
            columns(&["RUN", "V"], &rows),
            "RUN        V\na-long-id  x\n"
        );
    }
}
