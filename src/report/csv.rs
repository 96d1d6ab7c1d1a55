//! CSV tables for spreadsheets: per phase, per model, per task and per
//! interval.
//!
//! `infercheck report RESULT --format csv --out DIR` writes each [`Table`]
//! to its own file (`phases.csv`, `models.csv`, `tasks.csv`,
//! `intervals.csv`); without `--out`, [`render`] writes them one after
//! another, each preceded by a comment line `# phases`, `# models`,
//! `# tasks` or `# intervals` (most CSV readers skip `#` lines when told
//! to, e.g. pandas `comment="#"`).
//!
//! Numbers are raw: the model's value in the unit its column names (`_s`,
//! `_ms`, `_per_s`; rates of requests as fractions), no separators, no
//! unit, as many digits as it takes to read the same `f64` back. A value
//! the model does not have is an empty cell. Like every renderer it only
//! writes what the report holds: no statistic is computed here.

use std::io;

use ::csv::{Writer, WriterBuilder};

use super::model::{IntervalSummary, ModelReport, PhaseReport, Report, StatsBlock, TaskReport};
use crate::stats::{Distribution, Quantiles};

/// The distributions whose p50, p95 and p99 the phase and model tables
/// show, each as `<name>_<stat>_ms`.
const QUANTILE_COLUMNS: [Distribution; 4] = [
    Distribution::Latency,
    Distribution::Ttft,
    Distribution::Itl,
    Distribution::Tpot,
];
const QUANTILE_STATS: [QuantileStat; 3] =
    [("p50", |q| q.p50), ("p95", |q| q.p95), ("p99", |q| q.p99)];

/// A statistic's name in the header and how it reads the quantiles.
type QuantileStat = (&'static str, fn(&Quantiles) -> f64);

/// One of the tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Table {
    /// One row per phase.
    Phases,
    /// One row per model, over the whole run.
    Models,
    /// One row per task (`[[tasks]]`), over the whole run; only the
    /// header without tasks.
    Tasks,
    /// One row per second of the run: every field of the interval.
    Intervals,
}

impl Table {
    /// Every table, in the order [`render`] writes them.
    pub const ALL: [Table; 4] = [Table::Phases, Table::Models, Table::Tasks, Table::Intervals];

    /// "phases", "models", "intervals": the comment line's word and the
    /// file's stem.
    pub fn name(self) -> &'static str {
        match self {
            Table::Phases => "phases",
            Table::Models => "models",
            Table::Tasks => "tasks",
            Table::Intervals => "intervals",
        }
    }

    /// "phases.csv".
    pub fn file_name(self) -> String {
        format!("{}.csv", self.name())
    }
}

/// Every table one after another, each after its `# <name>` line.
pub fn render(report: &Report, out: &mut dyn io::Write) -> io::Result<()> {
    for (i, table) in Table::ALL.into_iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        writeln!(out, "# {}", table.name())?;
        render_table(report, table, out)?;
    }
    Ok(())
}

/// One table: its header row, then one row per phase, model or second.
pub fn render_table(report: &Report, table: Table, out: &mut dyn io::Write) -> io::Result<()> {
    let mut writer = WriterBuilder::new().from_writer(out);
    match table {
        Table::Phases => write_rows(&mut writer, &phase_columns(), &report.phases),
        Table::Models => write_rows(&mut writer, &model_columns(), &report.models),
        Table::Tasks => write_rows(&mut writer, &task_columns(), &report.tasks),
        Table::Intervals => write_rows(&mut writer, &interval_columns(), &report.intervals),
    }?;
    writer.flush()
}

/// One cell as the model holds it.
enum Cell {
    Text(String),
    Count(u64),
    Number(f64),
    Empty,
}

impl Cell {
    fn number(v: Option<f64>) -> Cell {
        v.map_or(Cell::Empty, Cell::Number)
    }

    fn text(self) -> String {
        match self {
            Cell::Text(text) => text,
            Cell::Count(n) => n.to_string(),
            // `Display` of an f64 is the shortest text that reads back as
            // the same value, without an exponent.
            Cell::Number(v) if v.is_finite() => v.to_string(),
            Cell::Number(_) | Cell::Empty => String::new(),
        }
    }
}

/// A column: its header and how a row's cell reads the model.
struct Column<T> {
    name: String,
    cell: Box<dyn Fn(&T) -> Cell>,
}

fn column<T>(name: impl Into<String>, cell: impl Fn(&T) -> Cell + 'static) -> Column<T> {
    Column {
        name: name.into(),
        cell: Box::new(cell),
    }
}

fn write_rows<T, W: io::Write>(
    writer: &mut Writer<W>,
    columns: &[Column<T>],
    rows: &[T],
) -> io::Result<()> {
    writer.write_record(columns.iter().map(|c| c.name.as_str()))?;
    for row in rows {
        writer.write_record(columns.iter().map(|c| (c.cell)(row).text()))?;
    }
    Ok(())
}

fn phase_columns() -> Vec<Column<PhaseReport>> {
    let mut columns = vec![
        column("name", |p: &PhaseReport| Cell::Text(p.name.clone())),
        column("load", |p: &PhaseReport| Cell::Text(p.load.clone())),
        column("start_s", |p: &PhaseReport| Cell::Number(p.start_s)),
        column("end_s", |p: &PhaseReport| Cell::Number(p.end_s)),
    ];
    columns.extend(stats_columns(|p: &PhaseReport| &p.stats));
    columns
}

fn model_columns() -> Vec<Column<ModelReport>> {
    let mut columns = vec![
        column("model", |m: &ModelReport| Cell::Text(m.model.clone())),
        column("weight", |m: &ModelReport| Cell::Number(m.weight)),
    ];
    columns.extend(stats_columns(|m: &ModelReport| &m.stats));
    columns
}

fn task_columns() -> Vec<Column<TaskReport>> {
    let mut columns = vec![
        column("task", |t: &TaskReport| Cell::Text(t.task.clone())),
        column("endpoint", |t: &TaskReport| Cell::Text(t.endpoint.clone())),
        column("weight", |t: &TaskReport| Cell::Number(t.weight)),
    ];
    columns.extend(stats_columns(|t: &TaskReport| &t.stats));
    columns
}

/// The columns of a group's statistics, read through `stats`.
fn stats_columns<T: 'static>(stats: fn(&T) -> &StatsBlock) -> Vec<Column<T>> {
    let mut columns = vec![
        column("requests", move |r: &T| Cell::Count(stats(r).requests)),
        column("ok", move |r: &T| Cell::Count(stats(r).ok)),
        column("errors", move |r: &T| {
            Cell::Count(stats(r).errors.values().sum())
        }),
        column("error_rate", move |r: &T| Cell::Number(stats(r).error_rate)),
        column("timeout_rate", move |r: &T| {
            Cell::Number(stats(r).timeout_rate)
        }),
        column("rps", move |r: &T| Cell::Number(stats(r).rps)),
        column("target_rps", move |r: &T| Cell::number(stats(r).target_rps)),
        column("output_tokens_per_s", move |r: &T| {
            Cell::Number(stats(r).output_tokens_per_s)
        }),
        column("goodput_per_s", move |r: &T| {
            Cell::number(stats(r).goodput_per_s)
        }),
        column("checks_passed", move |r: &T| {
            Cell::Count(stats(r).checks_passed)
        }),
        column("checks_failed", move |r: &T| {
            Cell::Count(stats(r).checks_failed)
        }),
    ];
    for d in QUANTILE_COLUMNS {
        for (stat, of) in QUANTILE_STATS {
            let spec = d.spec();
            let name = format!("{}_{stat}{}", spec.name, spec.unit.key_suffix());
            columns.push(column(name, move |r: &T| {
                Cell::number(stats(r).quantiles(d).map(|q| of(&q)))
            }));
        }
    }
    columns
}

/// Every field of [`IntervalSummary`], under its `intervals.jsonl` name.
fn interval_columns() -> Vec<Column<IntervalSummary>> {
    type I = IntervalSummary;
    vec![
        column("t", |i: &I| Cell::Number(i.t)),
        column("duration_s", |i: &I| Cell::Number(i.duration_s)),
        column("phase", |i: &I| Cell::Text(i.phase.clone())),
        column("requests", |i: &I| Cell::Count(i.requests)),
        column("ok", |i: &I| Cell::Count(i.ok)),
        column("errors", |i: &I| Cell::Count(i.errors)),
        column("rps", |i: &I| Cell::Number(i.rps)),
        column("target_rps", |i: &I| Cell::number(i.target_rps)),
        column("in_flight", |i: &I| Cell::Count(i.in_flight)),
        column("output_tokens", |i: &I| Cell::Count(i.output_tokens)),
        column("latency_p50_ms", |i: &I| Cell::number(i.latency_p50_ms)),
        column("latency_p95_ms", |i: &I| Cell::number(i.latency_p95_ms)),
        column("latency_p99_ms", |i: &I| Cell::number(i.latency_p99_ms)),
        column("ttft_p95_ms", |i: &I| Cell::number(i.ttft_p95_ms)),
        column("tpot_p95_ms", |i: &I| Cell::number(i.tpot_p95_ms)),
        column("schedule_lag_p99_ms", |i: &I| {
            Cell::number(i.schedule_lag_p99_ms)
        }),
    ]
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::report::test_report::report_with;

    fn interval(t: f64) -> IntervalSummary {
        IntervalSummary {
            t,
            duration_s: 1.0,
            phase: "warm, up".into(),
            requests: 10,
            ok: 9,
            errors: 1,
            rps: 9.0,
            target_rps: Some(10.0),
            in_flight: 3,
            output_tokens: 90,
            latency_p50_ms: Some(12.5),
            latency_p95_ms: Some(0.1 + 0.2),
            latency_p99_ms: None,
            ttft_p95_ms: None,
            tpot_p95_ms: None,
            schedule_lag_p99_ms: Some(0.05),
        }
    }

    fn rendered(report: &Report, table: Table) -> String {
        let mut out = Vec::new();
        render_table(report, table, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// A field added to the interval without a column fails here.
    #[test]
    fn the_interval_table_has_a_column_for_every_field() {
        let json = serde_json::to_value(interval(1.0)).unwrap();
        let fields: BTreeSet<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        let columns: Vec<String> = interval_columns().into_iter().map(|c| c.name).collect();
        let unique: BTreeSet<&str> = columns.iter().map(String::as_str).collect();
        assert_eq!(unique.len(), columns.len(), "{columns:?}");
        assert_eq!(unique, fields);
    }

    #[test]
    fn numbers_are_raw_text_is_quoted_and_none_is_an_empty_cell() {
        let mut report = report_with(Vec::new());
        report.intervals = vec![interval(1.0)];
        let text = rendered(&report, Table::Intervals);
        let row = text.lines().nth(1).unwrap();
        assert_eq!(
            row,
            "1,1,\"warm, up\",10,9,1,9,10,3,90,12.5,0.30000000000000004,,,,0.05"
        );
    }

    #[test]
    fn a_report_without_rows_still_has_every_header() {
        let report = report_with(Vec::new());
        for table in Table::ALL {
            let text = rendered(&report, table);
            assert_eq!(text.lines().count(), 1, "{table:?}: {text}");
        }
        let phases = rendered(&report, Table::Phases);
        assert!(
            phases.starts_with("name,load,start_s,end_s,requests,ok,errors,error_rate,"),
            "{phases}"
        );
        assert!(
            phases
                .trim_end()
                .ends_with("tpot_p50_ms,tpot_p95_ms,tpot_p99_ms"),
            "{phases}"
        );
    }

    #[test]
    fn render_writes_each_table_after_its_comment_line() {
        let text = {
            let mut out = Vec::new();
            render(&report_with(Vec::new()), &mut out).unwrap();
            String::from_utf8(out).unwrap()
        };
        let comments: Vec<&str> = text.lines().filter(|l| l.starts_with('#')).collect();
        assert_eq!(comments, ["# phases", "# models", "# tasks", "# intervals"]);
    }
}
