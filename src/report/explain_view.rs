//! Rows and lines for the report's judgement (`Explanation`): Latency
//! Drivers, Saturation, Recovery, Steadiness, server memory, the optimal
//! batch size, Identified Optimizations and Risk Assessment. Shared by the
//! Markdown, HTML and terminal renderers like `view`: pure functions of
//! the report, no markup, every statement quoting the numbers the
//! analysis computed.

use super::model::Report;
use super::view::{Fact, NONE, Table, count, fact, pct};
use super::{Degradation, Drift, DriverPair, Finding, Recovery, Saturation};

/// Pairs shown beyond the drivers themselves: the strongest of the rest,
/// so a reader sees what was ruled out.
const RULED_OUT_SHOWN: usize = 5;
/// Drivers named in the conclusion line (the table lists them all).
const NAMED_DRIVERS: usize = 3;

/// "server leads by 2 s", "same second", "server lags by 1 s".
pub(crate) fn lag_text(lag_s: i64) -> String {
    match lag_s {
        0 => "same second".to_owned(),
        l if l > 0 => format!("server leads by {l} s"),
        l => format!("server lags by {} s", -l),
    }
}

fn driver_row(p: &DriverPair, alpha_per_test: f64) -> Vec<String> {
    let verdict = if p.driver {
        let direction = if p.rho > 0.0 { "rises" } else { "falls" };
        format!("driver: {} {direction} with it", p.client)
    } else {
        format!(
            "not significant (p {:.1e}, needed < {alpha_per_test:.1e})",
            p.p_value
        )
    };
    vec![
        p.server.clone(),
        p.client.clone(),
        format!("{:+.2}", p.rho),
        lag_text(p.lag_s),
        format!("{} ({:.0} independent)", count(p.n), p.n_effective),
        format!("{:+.2} … {:+.2}", p.ci95.low, p.ci95.high),
        verdict,
    ]
}

/// "Latency Drivers": every driver, then the strongest pairs ruled out;
/// None when no pair could be tested.
pub(crate) fn drivers(report: &Report) -> Option<Table> {
    let d = &report.explanation.drivers;
    if d.pairs.is_empty() {
        return None;
    }
    let mut table = Table::new(&[
        "Driver",
        "Client Series",
        "ρ",
        "Lag",
        "n",
        "95% CI",
        "Verdict",
    ]);
    let row = |p: &DriverPair| driver_row(p, d.alpha_per_test);
    table.rows.extend(d.drivers().map(row));
    table.rows.extend(
        d.pairs
            .iter()
            .filter(|p| !p.driver)
            .take(RULED_OUT_SHOWN)
            .map(row),
    );
    Some(table)
}

/// The method and the conclusion, above the drivers table.
pub(crate) fn drivers_facts(report: &Report) -> Vec<Fact> {
    let d = &report.explanation.drivers;
    if d.pairs.is_empty() {
        return Vec::new();
    }
    let found: Vec<String> = d
        .drivers()
        .map(|p| {
            format!(
                "{} → {} (ρ {:+.2}, {})",
                p.server,
                p.client,
                p.rho,
                lag_text(p.lag_s)
            )
        })
        .collect();
    let conclusion = match found.len() {
        0 => "no driver found".to_owned(),
        n if n <= NAMED_DRIVERS => found.join("; "),
        n => format!(
            "{}; and {} more (table)",
            found[..NAMED_DRIVERS].join("; "),
            n - NAMED_DRIVERS
        ),
    };
    vec![
        fact("Drivers", conclusion),
        fact(
            "Method",
            format!(
                "Spearman's ρ of each client series against each sampled server series at the lag in −{0}…+{0} s where it is strongest; points discounted for autocorrelation; {1} tests, each held to p < {2:.1e} (family-wise α {3})",
                d.max_lag_s,
                count(d.tests),
                d.alpha_per_test,
                d.alpha
            ),
        ),
    ]
}

fn degradation_text(s: &Saturation) -> &'static str {
    match s.degradation {
        Degradation::Graceful => "graceful",
        Degradation::Catastrophic => "catastrophic",
        Degradation::NotReached => "not reached",
    }
}

fn load_value(s: &Saturation, load: f64) -> String {
    if s.load == "rate" {
        format!("{load:.1} req/s")
    } else {
        format!("{load:.0}")
    }
}

/// One saturation analysis: its conclusion, then its evidence.
pub(crate) fn saturation_facts(s: &Saturation) -> Vec<Fact> {
    let knee = s.knee.map_or_else(
        || "none in the tested range".to_owned(),
        |k| format!("{} {}", s.load, load_value(s, k)),
    );
    let within = s.max_within_slo.map_or_else(
        || "no level met every per-request threshold".to_owned(),
        |m| format!("{} {}", s.load, load_value(s, m)),
    );
    let mut facts = vec![
        fact("Knee", knee),
        fact("Highest load within every per-request threshold", within),
        fact("Degradation past the knee", degradation_text(s).to_owned()),
    ];
    facts.extend(s.evidence.iter().map(|e| fact("Evidence", e.clone())));
    facts
}

/// The points a saturation analysis rests on.
pub(crate) fn saturation_table(s: &Saturation) -> Table {
    let load = if s.load == "rate" {
        "Target Rate (req/s)"
    } else {
        "Concurrency"
    };
    let mut table = Table::new(&[
        load,
        "Throughput (req/s)",
        "p95 Latency",
        "Errors",
        "Within SLOs",
    ]);
    for p in &s.points {
        let knee = if s.knee == Some(p.load) {
            " (knee)"
        } else {
            ""
        };
        table.rows.push(vec![
            format!("{}{knee}", load_value(s, p.load)),
            format!("{:.2}", p.throughput),
            p.p95_ms.map_or_else(|| NONE.to_owned(), super::view::ms),
            pct(p.error_rate),
            if p.met_slo { "yes" } else { "no" }.to_owned(),
        ]);
    }
    table
}

fn recovery_row(r: &Recovery) -> Vec<String> {
    let took = match r.recovery_s {
        Some(s) => format!("{s:.0} s"),
        None => "not recovered by the end of the run".to_owned(),
    };
    vec![
        r.after_phase.clone(),
        format!("{:.0} ms ({})", r.baseline_p95_ms, r.baseline_phase),
        format!(
            "≤ {:.0} ms{}",
            r.limit_ms,
            if r.queue_checked { ", queue empty" } else { "" }
        ),
        r.peak_p95_ms
            .map_or_else(|| NONE.to_owned(), |p| format!("{p:.0} ms")),
        took,
    ]
}

/// "Recovery": one row per spike; None without a spike.
pub(crate) fn recovery(report: &Report) -> Option<Table> {
    let rs = &report.explanation.recovery;
    if rs.is_empty() {
        return None;
    }
    let mut table = Table::new(&[
        "After Phase",
        "Baseline p95",
        "Back Means",
        "Worst p95 After",
        "Recovery Time",
    ]);
    table.rows = rs.iter().map(recovery_row).collect();
    Some(table)
}

/// "Steadiness": one row per steady phase and series, and the server's
/// memory; None when nothing was long enough to judge.
pub(crate) fn steadiness(report: &Report) -> Option<Table> {
    let e = &report.explanation;
    if e.steadiness.is_empty() && e.memory.is_empty() {
        return None;
    }
    let mut table = Table::new(&["Phase", "Series", "Trend", "p", "n", "Verdict"]);
    for s in &e.steadiness {
        let verdict = match s.drift {
            Drift::Stable => "stable plateau".to_owned(),
            Drift::Degrading => format!("degrading: {:+.1} ms/min", s.slope_ms_per_min),
            Drift::Improving => format!("improving: {:+.1} ms/min", s.slope_ms_per_min),
        };
        table.rows.push(vec![
            s.phase.clone(),
            s.series.clone(),
            format!(
                "{:+.2} ms/min around {:.0} ms",
                s.slope_ms_per_min, s.median_ms
            ),
            format!("{:.1e}", s.p_value),
            count(s.n),
            verdict,
        ]);
    }
    let mib = 1024.0 * 1024.0;
    for m in &e.memory {
        table.rows.push(vec![
            "whole run".to_owned(),
            m.series.clone(),
            format!(
                "{:+.1} MiB/min ({:.0} → {:.0} MiB)",
                m.slope_bytes_per_min / mib,
                m.first_bytes / mib,
                m.last_bytes / mib
            ),
            format!("{:.1e}", m.p_value),
            count(m.n),
            if m.growing { "growing" } else { "flat" }.to_owned(),
        ]);
    }
    Some(table)
}

/// "Optimal Batch Size" for the engine analysis; None without an estimate.
pub(crate) fn optimal_batch(report: &Report) -> Option<Fact> {
    let b = report.explanation.optimal_batch.as_ref()?;
    let bound = b
        .p95_bound_ms
        .map(|ms| format!(" with p95 ≤ {ms:.0} ms"))
        .unwrap_or_default();
    Some(fact(
        "Optimal Batch Size",
        format!(
            "{}–{} requests: token throughput within 95 % of its {:.0} tok/s peak{bound} ({} seconds)",
            b.low,
            b.high,
            b.peak_tokens_per_s,
            count(b.seconds)
        ),
    ))
}

/// Findings as facts: the statement, its evidence under it.
pub(crate) fn findings(list: &[Finding], rules: &[String]) -> Vec<Fact> {
    if list.is_empty() {
        let none = format!(
            "None: no rule of {} fired on this run's measurements",
            rules.len()
        );
        return vec![
            fact(&none, String::new())
                .with_details(vec![format!("rules checked: {}", rules.join(", "))]),
        ];
    }
    list.iter()
        .map(|f| fact(&f.statement, String::new()).with_details(f.evidence.clone()))
        .collect()
}

/// One line each for the terminal summary; empty lines left out.
pub(crate) fn terminal_lines(report: &Report) -> Vec<(&'static str, String)> {
    let e = &report.explanation;
    let mut lines = Vec::new();
    if !e.drivers.pairs.is_empty() {
        let drivers: Vec<String> = e
            .drivers
            .drivers()
            .take(NAMED_DRIVERS)
            .map(|p| {
                format!(
                    "{} → {} ρ {:+.2} ({})",
                    p.server,
                    p.client,
                    p.rho,
                    lag_text(p.lag_s)
                )
            })
            .collect();
        let text = if drivers.is_empty() {
            format!("no driver found ({} tests)", count(e.drivers.tests))
        } else {
            drivers.join("; ")
        };
        lines.push(("Drivers", text));
    }
    for s in &e.saturation {
        let knee = s.knee.map_or_else(
            || "no knee".to_owned(),
            |k| format!("knee at {} {}", s.load, load_value(s, k)),
        );
        lines.push((
            "Saturation",
            format!("{}: {knee}, {}", s.phase, degradation_text(s)),
        ));
    }
    for r in &e.recovery {
        let took = r.recovery_s.map_or_else(
            || "not recovered".to_owned(),
            |s| format!("recovered in {s:.0} s"),
        );
        lines.push(("Recovery", format!("after {}: {took}", r.after_phase)));
    }
    if !e.optimizations.is_empty() || !e.risks.is_empty() {
        lines.push((
            "Findings",
            format!(
                "{} risks, {} optimizations (see report.md)",
                e.risks.len(),
                e.optimizations.len()
            ),
        ));
    }
    lines
}
