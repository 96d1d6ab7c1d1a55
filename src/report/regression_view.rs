//! The "Regression vs Baseline" section's facts and table: metric |
//! baseline | now | change | interval | tolerance | status, one row per
//! metric `analysis::regression` compared, and the one-line summary the
//! terminal prints.

use super::format::{NONE, fixed, ms, pct, rate};
use super::regression_model::{ChangeKind, Regression, RegressionRow, RegressionStatus};
use super::view::{Fact, Table, fact};

/// The baseline's identity and the outcome, in lines.
pub(crate) fn facts(r: &Regression) -> Vec<Fact> {
    let b = &r.baseline;
    let mut facts = vec![
        fact(
            "Baseline",
            format!(
                "{} ({}, {}; chosen by {})",
                b.run_id, b.started_at, b.outcome, r.selected_by
            ),
        ),
        fact("Read from", b.path.clone()),
        fact(
            "Intervals",
            format!(
                "{:.0}% confidence, {} bootstrap replicates; a change is regressed only when it is worse than its tolerance and its interval excludes no change",
                r.confidence * 100.0,
                r.replicates
            ),
        ),
    ];
    if !r.forced.is_empty() {
        let mut f = fact(
            "Compared although",
            format!("{} differences", r.forced.len()),
        );
        f.details = r.forced.clone();
        facts.push(f);
    }
    facts.push(summary_fact(r));
    facts
}

fn summary_fact(r: &Regression) -> Fact {
    let regressed: Vec<String> = r.regressed().map(|row| row.label.clone()).collect();
    let mut f = fact("Regression", summary(r));
    f.details = regressed;
    f
}

/// "FAIL: 2 of 24 metrics regressed" or "PASS: no metric regressed
/// (3 improved, 19 within noise)".
pub(crate) fn summary(r: &Regression) -> String {
    let count = |s: RegressionStatus| r.rows.iter().filter(|row| row.status == s).count();
    let regressed = count(RegressionStatus::Regressed);
    let others = [
        RegressionStatus::Improved,
        RegressionStatus::WithinTolerance,
        RegressionStatus::WithinNoise,
        RegressionStatus::Changed,
        RegressionStatus::NoData,
    ]
    .into_iter()
    .filter_map(|s| match count(s) {
        0 => None,
        n => Some(format!("{n} {}", s.label())),
    })
    .collect::<Vec<_>>()
    .join(", ");
    let others = if others.is_empty() {
        String::new()
    } else {
        format!(" ({others})")
    };
    if regressed > 0 {
        format!(
            "FAIL: {regressed} of {} metrics regressed{others}",
            r.rows.len()
        )
    } else {
        format!("PASS: no metric regressed{others}")
    }
}

/// The table, one row per metric.
pub(crate) fn table(r: &Regression) -> Table {
    let mut table = Table::new(&[
        "Metric",
        "Baseline",
        "Now",
        "Change",
        "Tolerance",
        "Significance",
        "Status",
    ]);
    table.rows = r.rows.iter().map(row).collect();
    table
}

fn row(r: &RegressionRow) -> Vec<String> {
    vec![
        r.label.clone(),
        value(&r.unit, r.baseline),
        value(&r.unit, r.now),
        r.change
            .map_or_else(|| NONE.to_owned(), |c| change(c, r.change_kind)),
        r.tolerance.clone().unwrap_or_else(|| "none".into()),
        significance(r),
        status(r.status),
    ]
}

/// The interval, and how it was drawn.
fn significance(r: &RegressionRow) -> String {
    match r.interval {
        Some((lo, hi)) => format!(
            "{} … {} ({})",
            change(lo, r.change_kind),
            change(hi, r.change_kind),
            r.method
        ),
        None if r.method.is_empty() => NONE.to_owned(),
        None => r.method.clone(),
    }
}

fn status(s: RegressionStatus) -> String {
    match s {
        RegressionStatus::Regressed => "FAIL regressed".into(),
        RegressionStatus::Improved => "improved".into(),
        other => other.label().into(),
    }
}

/// `+12.3%` or `+0.42pp`.
pub(crate) fn change(v: f64, kind: ChangeKind) -> String {
    let sign = if v > 0.0 { "+" } else { "" };
    match kind {
        ChangeKind::Relative => format!("{sign}{}%", fixed(v * 100.0, 1)),
        ChangeKind::Points => format!("{sign}{}pp", fixed(v * 100.0, 2)),
    }
}

/// A figure in its unit: "850ms", "0.23%", "47.4 req/s".
pub(crate) fn value(unit: &str, v: Option<f64>) -> String {
    let Some(v) = v else {
        return NONE.to_owned();
    };
    match unit {
        "ms" => ms(v),
        "ratio" => pct(v),
        "req/s" | "tok/s" => format!("{} {unit}", rate(v)),
        "bytes" => format!("{} GiB", fixed(v / (1024.0 * 1024.0 * 1024.0), 2)),
        "" | "count" => fixed(v, 2),
        other => format!("{} {other}", fixed(v, 2)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{BaselineIdentity, Direction};

    fn row(status: RegressionStatus) -> RegressionRow {
        RegressionRow {
            key: "p95(latency)".into(),
            label: "P95 Latency".into(),
            unit: "ms".into(),
            worse: Direction::Higher,
            baseline: Some(400.0),
            now: Some(520.0),
            change: Some(0.30),
            change_kind: ChangeKind::Relative,
            interval: Some((0.26, 0.34)),
            tolerance: Some("+20%".into()),
            tolerance_value: Some(0.20),
            method: "bootstrap".into(),
            status,
        }
    }

    #[test]
    fn the_table_reads_like_the_hand_written_one() {
        let r = Regression {
            baseline: BaselineIdentity::default(),
            rows: vec![row(RegressionStatus::Regressed)],
            confidence: 0.95,
            replicates: 2000,
            ..Regression::default()
        };
        let t = table(&r);
        assert_eq!(
            t.rows[0],
            [
                "P95 Latency",
                "400ms",
                "520ms",
                "+30.0%",
                "+20%",
                "+26.0% … +34.0% (bootstrap)",
                "FAIL regressed"
            ]
        );
        assert_eq!(summary(&r), "FAIL: 1 of 1 metrics regressed");
        assert_eq!(change(-0.0012, ChangeKind::Points), "-0.12pp");
    }
}
