//! The server-side checks as rows and lines: the orphaned-task and
//! drain-time rows of "Queue and Task Metrics", the drain window's and the
//! orphans' lines, and the "Client ↔ Server Agreement" table of
//! "Observability Validation" (a row whose reference figure is the
//! server's own marks it "(server)").

use super::format::{count, fixed, pct};
use super::model::Report;
use super::placement::Placement;
use super::server_model::{CheckUnit, CrossCheck, Reference};
use super::view::{Fact, NONE, Table, fact, ms, target_and_status};
use crate::metric::Metric;

/// The metrics of the fixed rows here (see `placement`).
pub(crate) fn row_metrics() -> Vec<Metric> {
    vec![Metric::OrphanedTasks, Metric::DrainTime]
}

/// "Queue and Task Metrics" rows: orphaned tasks and drain time, when
/// measured or named by a threshold.
pub(crate) fn queue_rows(report: &Report) -> Vec<Vec<String>> {
    let placed = Placement::of(report);
    let drain = report.observed.as_ref().and_then(|o| o.drain.as_ref());
    let orphans = report
        .server
        .orphans
        .as_ref()
        .map(|o| count(o.count.round() as u64));
    let drain_time = drain.and_then(|d| d.drain_time_s).map(|s| ms(s * 1000.0));
    let mut rows = Vec::new();
    for (metric, value, measured) in [
        (
            Metric::OrphanedTasks,
            orphans,
            report.server.orphans.is_some(),
        ),
        (
            Metric::DrainTime,
            drain_time,
            drain.is_some_and(|d| d.skipped.is_none()),
        ),
    ] {
        let threshold = placed.on_row(&metric);
        if !measured && threshold.is_none() {
            continue;
        }
        let (target, status) = target_and_status(threshold);
        let value = value.unwrap_or_else(|| NONE.to_owned());
        rows.push(vec![metric.label(), value, target, status]);
    }
    rows
}

/// The drain window's and the orphan count's lines; empty when neither
/// was measured.
pub(crate) fn drain_facts(report: &Report) -> Vec<Fact> {
    let mut facts = Vec::new();
    if let Some(drain) = report.observed.as_ref().and_then(|o| o.drain.as_ref()) {
        facts.push(fact("Drain window", drain_line(drain)));
    }
    if let Some(o) = &report.server.orphans {
        facts.push(fact("Orphaned tasks", orphans_line(o)));
    }
    facts
}

fn drain_line(d: &super::DrainReport) -> String {
    if let Some(why) = &d.skipped {
        return format!("not measured ({why})");
    }
    let held = |v: Option<f64>| v.map_or("—".to_owned(), |v| count(v.round() as u64));
    match d.drain_time_s {
        Some(s) => format!(
            "drained between {:.1}s and {:.1}s after the load stopped (samples every interval; {} held at the first; timeout {}s)",
            d.held_until_s,
            s,
            held(d.held_at_load_end),
            d.timeout_s
        ),
        None => format!(
            "not drained within {}s: {} held when the load stopped, {} at the end",
            d.timeout_s,
            held(d.held_at_load_end),
            held(d.held_at_end)
        ),
    }
}

fn orphans_line(o: &super::Orphans) -> String {
    let mut parts = Vec::new();
    if let (Some(n), Some(finished)) = (o.finished_for_nobody, o.server_finished) {
        parts.push(format!(
            "{} finished by the server for no client (server finished {}, aborted {}; client received {}, gave up on {})",
            count(n.round() as u64),
            count(finished.round() as u64),
            o.server_aborted.map_or("—".to_owned(), |a| count(a.round() as u64)),
            count(o.client_ok),
            count(o.client_abandoned)
        ));
    }
    if let Some(held) = o.held_at_drain_end {
        parts.push(format!(
            "{} still held at the end of the drain",
            count(held.round() as u64)
        ));
    }
    format!("{} ({})", count(o.count.round() as u64), parts.join("; "))
}

/// "Client ↔ Server Agreement": every cross-check with both figures, its
/// bound and what the difference says; None without any.
pub(crate) fn agreement(report: &Report) -> Option<Table> {
    let checks = &report.server.agreement;
    if checks.is_empty() {
        return None;
    }
    let mut table = Table::new(&["Check", "Client", "Server", "Bound", "Status", "Detail"]);
    for c in checks {
        let (client, server) = figures(c);
        let client = match c.reference {
            Reference::Client => client,
            Reference::Server => format!("{client} (server)"),
        };
        let status = if c.pass { "✅ PASS" } else { "❌ FAIL" };
        table.rows.push(vec![
            c.check.clone(),
            client,
            server,
            c.tolerance.clone(),
            status.to_owned(),
            c.detail.clone(),
        ]);
    }
    Some(table)
}

/// A cross-check's reference figure and the server's, as they read.
fn figures(c: &CrossCheck) -> (String, String) {
    match c.unit {
        CheckUnit::Count => (
            count(c.client.round() as u64),
            count(c.server_low.round() as u64),
        ),
        CheckUnit::Milliseconds => (
            ms(c.client),
            format!(
                "({} … {}]",
                ms(c.server_low),
                c.server_high.map_or("+Inf".to_owned(), ms)
            ),
        ),
        CheckUnit::Requests => (fixed(c.client, 2), fixed(c.server_low, 2)),
        CheckUnit::Ratio => (pct(c.client), pct(c.server_low)),
    }
}

/// The cross-checks that were not made, and why.
pub(crate) fn not_checked(report: &Report) -> Vec<String> {
    report
        .server
        .not_checked
        .iter()
        .map(|why| format!("Not cross-checked — {why}."))
        .collect()
}

/// "Cold Starts": none (each model's first request within its bound, with
/// the figures), or the models whose first request was a load.
pub(crate) fn cold_start_fact(report: &Report) -> Option<Fact> {
    let starts = &report.server.cold_starts;
    if starts.is_empty() {
        return None;
    }
    let figures = |c: &super::ColdStart| {
        let mut text = format!(
            "{}: first request {} vs median {}",
            c.model,
            ms(c.first_request_ms),
            ms(c.median_ms)
        );
        if c.unavailable_before_ready > 0 {
            text.push_str(&format!(
                ", {} answered 503 while it loaded",
                count(c.unavailable_before_ready)
            ));
        }
        text
    };
    let cold: Vec<String> = starts.iter().filter(|c| c.cold).map(figures).collect();
    let mut value = if cold.is_empty() {
        let all: Vec<String> = starts.iter().map(figures).collect();
        format!("none during the test ({})", all.join("; "))
    } else {
        cold.join("; ")
    };
    let loads = report
        .observed
        .as_ref()
        .and_then(|o| o.value("cold_starts"))
        .filter(|v| v.stats.samples > 0)
        .and_then(|v| v.value);
    if let Some(loads) = loads {
        value.push_str(&format!(
            "; the engine counted {} model loads",
            count(loads.max(0.0) as u64)
        ));
    }
    Some(fact("Cold Starts", value))
}
