//! Presentation logic shared by the text renderers (Markdown, HTML,
//! terminal): unit formatting ("847ms", "1.20s", "0.23%", "2,847"),
//! PASS/FAIL marks, and the rows of every table, built from the model.
//!
//! Everything here is a pure function of the [`Report`]: no I/O, no clock,
//! no statistics (percentiles are already in the model), and no markup —
//! a renderer decides how a [`Table`] or a [`Fact`] is written, and escapes
//! the text it is given.

use super::model::{
    GeneratorHealth, Outcome, PhaseReport, Report, StatsBlock, ThresholdResult, ThresholdStatus,
};
use crate::stats::Quantiles;

/// What a cell shows when the model has no value (e.g. no GPU sampler).
pub(crate) const NONE: &str = "—";

/// Said under every latency table: which clock latency starts from.
pub(crate) const LATENCY_NOTE: &str = "Latency is measured from the intended send time \
     (coordinated-omission corrected); service time from the actual send.";

/// A table as text cells; renderers add the markup and the escaping.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub(crate) fn new(headers: &[&str]) -> Self {
        Table {
            headers: headers.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }
}

/// One "label: value" line of a list (executive summary, phase facts).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Fact {
    pub label: String,
    pub value: String,
}

pub(crate) fn fact(label: &str, value: String) -> Fact {
    Fact {
        label: label.to_owned(),
        value,
    }
}

// ---------------------------------------------------------------------------
// Units

/// "2,847": thousands separators, as the hand-written reports use.
pub(crate) fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// A number with `decimals` decimals and separators in its integer part.
fn fixed(v: f64, decimals: usize) -> String {
    if !v.is_finite() {
        return NONE.to_owned();
    }
    let text = format!("{:.*}", decimals, v.abs());
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let grouped = count(int.parse().unwrap_or(0));
    // No "-0.0": a negative value that rounds to zero prints as zero.
    let rounds_to_zero = text.chars().all(|c| c == '0' || c == '.');
    let sign = if v < 0.0 && !rounds_to_zero { "-" } else { "" };
    if frac.is_empty() {
        format!("{sign}{grouped}")
    } else {
        format!("{sign}{grouped}.{frac}")
    }
}

/// Milliseconds for reading: 1 decimal below 100ms ("56.6ms"), whole
/// milliseconds below 10s ("1,203ms", like examples/000), then seconds
/// ("12.35s") because five-digit millisecond counts are hard to compare.
pub(crate) fn ms(v: f64) -> String {
    if !v.is_finite() {
        NONE.to_owned()
    } else if v.abs() < 99.95 {
        format!("{}ms", fixed(v, 1))
    } else if v.abs() < 9_999.5 {
        format!("{}ms", fixed(v, 0))
    } else {
        format!("{}s", fixed(v / 1000.0, 2))
    }
}

pub(crate) fn opt_ms(v: Option<f64>) -> String {
    v.map_or_else(|| NONE.to_owned(), ms)
}

/// Milliseconds as seconds with 2 decimals and no unit ("1.13"): the
/// sweep table's "p95 Latency (s)" column, as in examples/001.
pub(crate) fn secs2(ms: f64) -> String {
    fixed(ms / 1000.0, 2)
}

/// A wall-clock span: "2.5s", "45s", "2m 30s", "27m", "1h 05m".
pub(crate) fn duration(s: f64) -> String {
    if !s.is_finite() || s < 0.0 {
        return NONE.to_owned();
    }
    if s < 9.95 {
        return format!("{s:.1}s");
    }
    let total = s.round() as u64;
    let (h, m, sec) = (total / 3600, total / 60 % 60, total % 60);
    match (h, m, sec) {
        (0, 0, sec) => format!("{sec}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, sec) => format!("{m}m {sec:02}s"),
        (h, m, _) => format!("{h}h {m:02}m"),
    }
}

/// A fraction as a percentage with 2 decimals: 0.0023 → "0.23%".
pub(crate) fn pct(fraction: f64) -> String {
    if fraction.is_finite() {
        format!("{:.2}%", fraction * 100.0)
    } else {
        NONE.to_owned()
    }
}

/// A rate with 1 decimal: "152.3", "2,847.0".
pub(crate) fn rate(v: f64) -> String {
    fixed(v, 1)
}

/// A planned rate as written in a plan: "150", "12.5".
pub(crate) fn target_rate(v: f64) -> String {
    if v.fract() == 0.0 {
        fixed(v, 0)
    } else {
        fixed(v, 1)
    }
}

fn tokens_per_s(v: f64) -> String {
    format!("{} tok/s", rate(v))
}

// ---------------------------------------------------------------------------
// Marks

pub(crate) fn status_mark(status: ThresholdStatus) -> &'static str {
    match status {
        ThresholdStatus::Pass => "✅ PASS",
        ThresholdStatus::Fail => "❌ FAIL",
        ThresholdStatus::NoData => "⚠️ NO DATA",
    }
}

/// The terminal's mark: plain words, because emoji widths vary by terminal.
pub(crate) fn status_word(status: ThresholdStatus) -> &'static str {
    match status {
        ThresholdStatus::Pass => "PASS",
        ThresholdStatus::Fail => "FAIL",
        ThresholdStatus::NoData => "NO DATA",
    }
}

pub(crate) fn outcome_mark(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Pass => "✅ PASS",
        Outcome::Fail => "❌ FAIL",
        Outcome::Invalid => "⚠️ INVALID",
        Outcome::Interrupted => "⏹ INTERRUPTED",
    }
}

pub(crate) fn outcome_word(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Pass => "PASS",
        Outcome::Fail => "FAIL",
        Outcome::Invalid => "INVALID",
        Outcome::Interrupted => "INTERRUPTED",
    }
}

/// What the outcome means, in a few words after its mark.
pub(crate) fn outcome_gloss(report: &Report) -> String {
    let total = report.thresholds.len();
    let missed = report
        .thresholds
        .iter()
        .filter(|t| t.status != ThresholdStatus::Pass)
        .count();
    let noun = if total == 1 {
        "threshold"
    } else {
        "thresholds"
    };
    match report.verdict.outcome {
        Outcome::Pass if total == 0 => "no thresholds set".to_owned(),
        Outcome::Pass if total == 1 => "the one threshold met".to_owned(),
        Outcome::Pass => format!("all {total} thresholds met"),
        Outcome::Fail => format!("{missed} of {total} {noun} not met"),
        Outcome::Invalid => {
            "the generator was the bottleneck; numbers cannot be trusted".to_owned()
        }
        Outcome::Interrupted => "stopped early; the report is partial".to_owned(),
    }
}

// ---------------------------------------------------------------------------
// Sections

/// "Run `id` · started … · target …": who, when, against what.
pub(crate) fn run_line(report: &Report) -> (String, String, String) {
    let mut target = report.target.base_url.clone();
    if report.target.embedded_simulator {
        target.push_str(" (embedded simulator)");
    }
    (report.run_id.clone(), report.started_at.clone(), target)
}

fn requests_text(stats: &StatsBlock) -> String {
    let errors: u64 = stats.errors.values().sum();
    format!(
        "{} ({} ok, {} errors)",
        count(stats.requests),
        count(stats.ok),
        count(errors)
    )
}

fn rate_vs_target(achieved: f64, target: Option<f64>) -> String {
    match target {
        Some(t) => format!("{} req/s (target {})", rate(achieved), target_rate(t)),
        None => format!("{} req/s", rate(achieved)),
    }
}

/// Executive summary, without the verdict (renderers add its mark).
pub(crate) fn executive_facts(report: &Report) -> Vec<Fact> {
    let s = &report.summary;
    let phases: Vec<String> = report
        .phases
        .iter()
        .map(|p| format!("{}: {}", p.name, duration(p.stats.duration_s)))
        .collect();
    let mut test_duration = duration(report.duration_s);
    if !phases.is_empty() {
        test_duration = format!("{test_duration} ({})", phases.join(", "));
    }
    let requests = format!(
        "{} ({} ok, {} errors)",
        count(s.requests),
        count(s.ok),
        count(s.errors)
    );
    vec![
        fact("Test Duration", test_duration),
        fact("Peak Concurrency", count(s.peak_concurrency)),
        fact("Peak QPS", rate_vs_target(s.peak_rps, s.peak_target_rps)),
        fact("Requests", requests),
    ]
}

/// The fixed rows of "HTTP Metrics": (threshold label, achieved value).
/// Labels are the ones `plan::threshold` gives its metrics, so a plan's
/// run-scope threshold lands on its row.
fn http_rows(report: &Report) -> Vec<(&'static str, String)> {
    let o = &report.overall;
    let lat = |f: fn(&Quantiles) -> f64| opt_ms(o.latency_ms.as_ref().map(f));
    vec![
        ("P50 Latency", lat(|q| q.p50)),
        ("P95 Latency", lat(|q| q.p95)),
        ("P99 Latency", lat(|q| q.p99)),
        ("P95 Service Time", opt_ms(o.service_time_ms.map(|q| q.p95))),
        ("Error Rate", pct(o.error_rate)),
        ("Timeout Rate", pct(o.timeout_rate)),
        ("Peak QPS", rate(report.summary.peak_rps)),
        ("Achieved QPS", rate(report.summary.achieved_rps)),
    ]
}

fn threshold_row(t: &ThresholdResult) -> Vec<String> {
    let achieved = if t.achieved_display.is_empty() {
        NONE.to_owned()
    } else {
        t.achieved_display.clone()
    };
    vec![
        t.label.clone(),
        t.target.clone(),
        achieved,
        status_mark(t.status).to_owned(),
    ]
}

/// "HTTP Metrics": the fixed rows, each with the first run-scope
/// threshold of the same label, then every run-scope threshold left over.
pub(crate) fn http_metrics(report: &Report) -> Table {
    let mut table = Table::new(&["Metric", "Target", "Achieved", "Status"]);
    let mut unused: Vec<&ThresholdResult> = report
        .thresholds
        .iter()
        .filter(|t| {
            t.scope == "run"
                && !super::trace_view::is_trace_label(&t.label)
                && !super::observed_view::is_observed(t)
        })
        .collect();
    for (label, achieved) in http_rows(report) {
        let found = unused
            .iter()
            .position(|t| t.label.eq_ignore_ascii_case(label));
        let (target, status) = match found.map(|i| unused.remove(i)) {
            Some(t) => (t.target.clone(), status_mark(t.status).to_owned()),
            None => (NONE.to_owned(), NONE.to_owned()),
        };
        table
            .rows
            .push(vec![label.to_owned(), target, achieved, status]);
    }
    table.rows.extend(unused.into_iter().map(threshold_row));
    table
}

/// Requests by error kind, largest first; None when nothing failed.
pub(crate) fn errors(stats: &StatsBlock) -> Option<Table> {
    if stats.errors.values().all(|n| *n == 0) {
        return None;
    }
    let mut kinds: Vec<(&String, &u64)> = stats.errors.iter().filter(|(_, n)| **n > 0).collect();
    kinds.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let mut table = Table::new(&["Error Kind", "Requests", "Share of Requests"]);
    for (kind, n) in kinds {
        let share = if stats.requests == 0 {
            0.0
        } else {
            *n as f64 / stats.requests as f64
        };
        table.rows.push(vec![kind.clone(), count(*n), pct(share)]);
    }
    Some(table)
}

/// "Phase 2: sweep (1m, sweep concurrency 4,8,16)".
pub(crate) fn phase_heading(index: usize, phase: &PhaseReport) -> String {
    format!(
        "Phase {}: {} ({}, {})",
        index + 1,
        phase.name,
        duration(phase.planned_duration_s),
        phase.load
    )
}

/// The compact list under a phase heading.
pub(crate) fn phase_facts(phase: &PhaseReport) -> Vec<Fact> {
    let s = &phase.stats;
    let lat = s.latency_ms.as_ref();
    let percentiles = match lat {
        Some(q) => format!("{} / {} / {}", ms(q.p50), ms(q.p95), ms(q.p99)),
        None => NONE.to_owned(),
    };
    let mut facts = vec![
        fact("Requests", requests_text(s)),
        fact("Throughput", rate_vs_target(s.rps, s.target_rps)),
        fact("Latency p50 / p95 / p99", percentiles),
        fact("Error Rate", pct(s.error_rate)),
        fact("Service Time p95", opt_ms(s.service_time_ms.map(|q| q.p95))),
        fact("Schedule Lag p99", opt_ms(s.schedule_lag_ms.map(|q| q.p99))),
        fact("Peak Concurrency", count(phase.peak_concurrency)),
    ];
    // An interrupted phase ran shorter than planned; say so next to its numbers.
    if s.duration_s + 0.5 < phase.planned_duration_s {
        let ran = format!(
            "{} of {} planned",
            duration(s.duration_s),
            duration(phase.planned_duration_s)
        );
        facts.push(fact("Ran", ran));
    }
    facts
}

/// The thresholds of one scope ("run" or a phase name); None when it has none.
pub(crate) fn scope_thresholds(report: &Report, scope: &str) -> Option<Table> {
    let mut table = Table::new(&["Metric", "Target", "Achieved", "Status"]);
    table.rows = report
        .thresholds
        .iter()
        .filter(|t| t.scope == scope)
        .map(threshold_row)
        .collect();
    (!table.rows.is_empty()).then_some(table)
}

/// The stress-sweep table of examples/001, one row per step; None unless
/// the phase has more than one step. GPU and memory wait for a sampler.
pub(crate) fn sweep(phase: &PhaseReport) -> Option<Table> {
    if phase.steps.len() < 2 {
        return None;
    }
    let headers = [
        "Concurrency",
        "RPS",
        "p95 Latency (s)",
        "Avg GPU Util %",
        "Max Mem (MiB)",
    ];
    let mut table = Table::new(&headers);
    for step in &phase.steps {
        let level = step.concurrency.map_or_else(|| step.label.clone(), count);
        let p95 = step
            .stats
            .latency_ms
            .map_or_else(|| NONE.to_owned(), |q| secs2(q.p95));
        let rps = fixed(step.stats.rps, 2);
        let gpu = step
            .gpu_util_avg
            .map_or_else(|| NONE.to_owned(), |u| fixed(u * 100.0, 1));
        let mem = step
            .vram_max_bytes
            .map_or_else(|| NONE.to_owned(), |b| fixed(b / 1_048_576.0, 0));
        table.rows.push(vec![level, rps, p95, gpu, mem]);
    }
    Some(table)
}

fn ux_row(
    name: &str,
    q: Option<&Quantiles>,
    unit: fn(f64) -> String,
    best: fn(&Quantiles) -> f64,
) -> Vec<String> {
    match q {
        Some(q) => vec![name.to_owned(), unit(q.mean), unit(q.p95), unit(best(q))],
        None => vec![
            name.to_owned(),
            NONE.to_owned(),
            NONE.to_owned(),
            NONE.to_owned(),
        ],
    }
}

/// "Streaming UX" as in examples/001; None when no request streamed a token.
pub(crate) fn streaming(stats: &StatsBlock) -> Option<Table> {
    stats.ttft_ms?;
    let mut table = Table::new(&["Metric", "Average", "p95", "Best Case"]);
    let fastest = |q: &Quantiles| q.min;
    table.rows = vec![
        ux_row("TTFT (from intended)", stats.ttft_ms.as_ref(), ms, fastest),
        ux_row(
            "TTFT (service)",
            stats.ttft_service_ms.as_ref(),
            ms,
            fastest,
        ),
        ux_row("ITL", stats.itl_ms.as_ref(), ms, fastest),
        ux_row("TPOT", stats.tpot_ms.as_ref(), ms, fastest),
        // For speed, higher is better: the best case is the fastest request.
        ux_row(
            "Speed (tok/s)",
            stats.tokens_per_s.as_ref(),
            tokens_per_s,
            |q| q.max,
        ),
    ];
    Some(table)
}

/// "Per-Model Breakdown"; None unless the run sent to several models.
pub(crate) fn models(report: &Report) -> Option<Table> {
    if report.models.len() < 2 {
        return None;
    }
    let headers = [
        "Model",
        "Weight",
        "Requests",
        "Share",
        "RPS",
        "p95 Latency",
        "p95 TTFT",
        "Error Rate",
    ];
    let mut table = Table::new(&headers);
    let total = report.overall.requests;
    for m in &report.models {
        let s = &m.stats;
        let share = if total == 0 {
            0.0
        } else {
            s.requests as f64 / total as f64
        };
        table.rows.push(vec![
            m.model.clone(),
            pct(m.weight),
            count(s.requests),
            pct(share),
            rate(s.rps),
            opt_ms(s.latency_ms.map(|q| q.p95)),
            opt_ms(s.ttft_ms.map(|q| q.p95)),
            pct(s.error_rate),
        ]);
    }
    Some(table)
}

/// Thresholds scoped to one model (scope "model <name>"); None when the
/// plan set none.
pub(crate) fn model_thresholds(report: &Report) -> Option<Table> {
    let mut table = Table::new(&["Model", "Metric", "Target", "Achieved", "Status"]);
    for t in &report.thresholds {
        if let Some(model) = t.scope.strip_prefix("model ") {
            let mut row = vec![model.to_owned()];
            row.extend(threshold_row(t));
            table.rows.push(row);
        }
    }
    (!table.rows.is_empty()).then_some(table)
}

/// "0.42 avg / 0.91 max of 16 cores".
pub(crate) fn cpu_text(g: &GeneratorHealth) -> String {
    format!(
        "{:.2} avg / {:.2} max of {} cores",
        g.cpu_cores_avg, g.cpu_cores_max, g.cores_available
    )
}

/// "Generator Health" without its validity line (renderers mark that).
pub(crate) fn generator_facts(report: &Report) -> Vec<Fact> {
    let g = &report.generator;
    vec![
        fact("CPU", cpu_text(g)),
        fact("Schedule Lag p99", opt_ms(g.schedule_lag_p99_ms)),
        fact(
            "Late Sends",
            format!(
                "{} of {} sent",
                count(g.late_sends),
                count(report.summary.requests)
            ),
        ),
        fact("Unsent Arrivals", count(g.unsent_arrivals)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_get_thousands_separators() {
        let cases = [
            (0, "0"),
            (7, "7"),
            (999, "999"),
            (1_000, "1,000"),
            (2_847, "2,847"),
            (1_234_567, "1,234,567"),
        ];
        for (n, want) in cases {
            assert_eq!(count(n), want, "{n}");
        }
    }

    #[test]
    fn milliseconds_read_like_the_hand_written_reports() {
        let cases = [
            (0.0, "0.0ms"),
            (8.84, "8.8ms"),
            (56.6, "56.6ms"),
            (99.94, "99.9ms"),
            // Rounding to 1 decimal would print "100.0ms": switch to whole ms.
            (99.96, "100ms"),
            (847.4, "847ms"),
            (1_203.0, "1,203ms"),
            (9_999.4, "9,999ms"),
            (12_345.0, "12.35s"),
            (f64::NAN, "—"),
        ];
        for (v, want) in cases {
            assert_eq!(ms(v), want, "{v}");
        }
        assert_eq!(opt_ms(None), "—");
    }

    #[test]
    fn sweep_seconds_have_two_decimals_and_no_unit() {
        for (v, want) in [
            (1_130.0, "1.13"),
            (4_371.0, "4.37"),
            (40.0, "0.04"),
            (12_000.0, "12.00"),
        ] {
            assert_eq!(secs2(v), want, "{v}");
        }
    }

    #[test]
    fn durations_use_the_largest_sensible_unit() {
        let cases = [
            (2.5, "2.5s"),
            (45.0, "45s"),
            (60.0, "1m"),
            (150.0, "2m 30s"),
            (1_620.0, "27m"),
            (3_900.0, "1h 05m"),
            (-1.0, "—"),
        ];
        for (v, want) in cases {
            assert_eq!(duration(v), want, "{v}");
        }
    }

    #[test]
    fn percentages_and_rates() {
        for (v, want) in [
            (0.0023, "0.23%"),
            (0.0, "0.00%"),
            (1.0, "100.00%"),
            (0.7, "70.00%"),
        ] {
            assert_eq!(pct(v), want, "{v}");
        }
        for (v, want) in [
            (152.34, "152.3"),
            (2_847.0, "2,847.0"),
            (0.04, "0.0"),
            (-3.26, "-3.3"),
            (-0.01, "0.0"),
        ] {
            assert_eq!(rate(v), want, "{v}");
        }
        for (v, want) in [(150.0, "150"), (12.5, "12.5"), (1_500.0, "1,500")] {
            assert_eq!(target_rate(v), want, "{v}");
        }
    }

    #[test]
    fn marks_name_every_status_and_outcome() {
        let cases = [
            (ThresholdStatus::Pass, "✅ PASS", "PASS"),
            (ThresholdStatus::Fail, "❌ FAIL", "FAIL"),
            (ThresholdStatus::NoData, "⚠️ NO DATA", "NO DATA"),
        ];
        for (status, mark, word) in cases {
            assert_eq!((status_mark(status), status_word(status)), (mark, word));
        }
        let cases = [
            (Outcome::Pass, "✅ PASS", "PASS"),
            (Outcome::Fail, "❌ FAIL", "FAIL"),
            (Outcome::Invalid, "⚠️ INVALID", "INVALID"),
            (Outcome::Interrupted, "⏹ INTERRUPTED", "INTERRUPTED"),
        ];
        for (outcome, mark, word) in cases {
            assert_eq!((outcome_mark(outcome), outcome_word(outcome)), (mark, word));
        }
    }

    fn stats(requests: u64, errors: &[(&str, u64)]) -> StatsBlock {
        StatsBlock {
            requests,
            errors: errors.iter().map(|(k, n)| ((*k).to_owned(), *n)).collect(),
            ..StatsBlock::default()
        }
    }

    #[test]
    fn errors_table_sorts_by_count_and_is_absent_without_errors() {
        assert_eq!(errors(&stats(10, &[])), None);
        let table = errors(&stats(1_000, &[("http_5xx", 3), ("timeout", 9)])).unwrap();
        let want = [["timeout", "9", "0.90%"], ["http_5xx", "3", "0.30%"]];
        assert_eq!(
            table.rows,
            want.map(|r| r.map(String::from).to_vec()).to_vec()
        );
    }

    fn quantiles(mean: f64, p95: f64, min: f64, max: f64) -> Quantiles {
        Quantiles {
            count: 10,
            min,
            mean,
            p50: mean,
            p90: p95,
            p95,
            p99: max,
            max,
        }
    }

    #[test]
    fn streaming_rows_take_best_case_per_direction() {
        assert_eq!(streaming(&StatsBlock::default()), None);
        let block = StatsBlock {
            ttft_ms: Some(quantiles(56.6, 168.27, 18.5, 300.0)),
            tokens_per_s: Some(quantiles(105.4, 98.0, 60.0, 113.4)),
            ..StatsBlock::default()
        };
        let rows = streaming(&block).unwrap().rows;
        assert_eq!(
            rows[0],
            ["TTFT (from intended)", "56.6ms", "168ms", "18.5ms"]
        );
        assert_eq!(rows[2], ["ITL", "—", "—", "—"]);
        assert_eq!(
            rows[4],
            ["Speed (tok/s)", "105.4 tok/s", "98.0 tok/s", "113.4 tok/s"]
        );
    }

    fn report(thresholds: Vec<ThresholdResult>, outcome: Outcome) -> Report {
        use super::super::model::{Summary, Target, Tool, Verdict};
        Report {
            schema_version: 1,
            tool: Tool {
                name: "infercheck".into(),
                version: "0".into(),
            },
            run_id: "r".into(),
            started_at: String::new(),
            ended_at: String::new(),
            duration_s: 1.0,
            plan_name: "p".into(),
            plan: serde_json::Value::Null,
            target: Target {
                base_url: String::new(),
                api: String::new(),
                stream: false,
                embedded_simulator: false,
            },
            verdict: Verdict {
                outcome,
                exit_code: 0,
                reasons: Vec::new(),
            },
            summary: Summary {
                requests: 0,
                ok: 0,
                errors: 0,
                peak_concurrency: 0,
                peak_rps: 0.0,
                achieved_rps: 0.0,
                peak_target_rps: None,
            },
            overall: StatsBlock::default(),
            phases: Vec::new(),
            models: Vec::new(),
            thresholds,
            generator: GeneratorHealth {
                valid: true,
                reasons: Vec::new(),
                cpu_cores_avg: 0.0,
                cpu_cores_max: 0.0,
                cores_available: 1,
                schedule_lag_p99_ms: None,
                late_sends: 0,
                unsent_arrivals: 0,
            },
            intervals: Vec::new(),
            series: Vec::new(),
            traces: None,
            observed: None,
            notes: Vec::new(),
        }
    }

    fn threshold(
        scope: &str,
        label: &str,
        target: &str,
        status: ThresholdStatus,
    ) -> ThresholdResult {
        ThresholdResult {
            expression: String::new(),
            scope: scope.into(),
            label: label.into(),
            target: target.into(),
            achieved: Some(1.0),
            achieved_display: "1".into(),
            status,
        }
    }

    /// (label, target, status) of every HTTP Metrics row that differs from
    /// the fixed, threshold-less rows, plus the extra rows.
    fn http_targets(thresholds: Vec<ThresholdResult>) -> Vec<(String, String, String)> {
        let table = http_metrics(&report(thresholds, Outcome::Pass));
        let fixed = [
            "P50 Latency",
            "P95 Latency",
            "P99 Latency",
            "P95 Service Time",
        ];
        assert!(table.rows.iter().take(4).map(|r| r[0].as_str()).eq(fixed));
        let shown = table.rows.into_iter().filter(|r| r[1] != NONE);
        shown
            .map(|r| (r[0].clone(), r[1].clone(), r[3].clone()))
            .collect()
    }

    #[test]
    fn http_metrics_take_the_first_run_threshold_of_each_label() {
        use ThresholdStatus::{Fail, NoData, Pass};
        let row = |l: &str, t: &str, s: &str| (l.to_owned(), t.to_owned(), s.to_owned());
        let cases = [
            (vec![], vec![]),
            (
                vec![threshold("run", "P95 Latency", "< 950ms", Pass)],
                vec![row("P95 Latency", "< 950ms", "✅ PASS")],
            ),
            // Phase and model thresholds belong to their own sections.
            (
                vec![
                    threshold("warmup", "P95 Latency", "< 1s", Pass),
                    threshold("model m", "Error Rate", "< 1%", Fail),
                ],
                vec![],
            ),
            // A second threshold of the same label is an extra row.
            (
                vec![
                    threshold("run", "p95 latency", "< 2s", Fail),
                    threshold("run", "P95 Latency", "< 1s", Fail),
                ],
                vec![
                    row("P95 Latency", "< 2s", "❌ FAIL"),
                    row("P95 Latency", "< 1s", "❌ FAIL"),
                ],
            ),
            (
                vec![threshold("run", "P95 ITL", "< 50ms", NoData)],
                vec![row("P95 ITL", "< 50ms", "⚠️ NO DATA")],
            ),
        ];
        for (thresholds, want) in cases {
            assert_eq!(http_targets(thresholds.clone()), want, "{thresholds:?}");
        }
    }

    #[test]
    fn outcome_gloss_counts_thresholds() {
        use ThresholdStatus::{Fail, NoData, Pass};
        let t = |s| threshold("run", "Error Rate", "< 1%", s);
        let cases = [
            (vec![], Outcome::Pass, "no thresholds set"),
            (
                vec![t(Pass), t(Pass)],
                Outcome::Pass,
                "all 2 thresholds met",
            ),
            (
                vec![t(Pass), t(Fail), t(NoData)],
                Outcome::Fail,
                "2 of 3 thresholds not met",
            ),
            (
                vec![t(Pass)],
                Outcome::Interrupted,
                "stopped early; the report is partial",
            ),
        ];
        for (thresholds, outcome, want) in cases {
            assert_eq!(outcome_gloss(&report(thresholds, outcome)), want);
        }
    }
}
