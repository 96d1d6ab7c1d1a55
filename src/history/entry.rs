//! One run as the history keeps it: [`RunEntry`], read from a report, and
//! its row of the `runs` table — the one column list that both the upsert
//! and the queries are written from.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, Row, ToSql, Transaction};
use sha2::{Digest, Sha256};

use crate::report::{Headline, HistoryPoint, Report};

/// The target a run against infercheck's own simulator records: its URL
/// has a port drawn anew each run, so it would tell runs apart that are
/// the same.
pub const EMBEDDED_SIMULATOR: &str = "embedded simulator";

/// A recorded run: who it was and its headline figures.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct RunEntry {
    pub run_id: String,
    pub plan_name: String,
    /// sha256 (hex) of the resolved plan as report.json holds it.
    pub plan_hash: String,
    /// The target's base URL, or [`EMBEDDED_SIMULATOR`].
    pub target: String,
    /// The models requested, comma-joined in the report's order.
    pub models: String,
    /// The engine profile that read the server ("vllm"); empty when the
    /// run sampled no server.
    pub engine: String,
    /// The stack under test, as `--stack-version` named it.
    pub stack_version: Option<String>,
    pub started_at: String,
    /// The verdict as report.json writes it: "pass", "fail", ...
    pub outcome: String,
    pub exit_code: i32,
    /// Where the run's report.json was written.
    pub report_path: PathBuf,
    pub headline: Headline,
}

impl RunEntry {
    /// The entry of the finished run `report`, written to `report_path`.
    pub fn of(report: &Report, report_path: &Path, stack_version: Option<&str>) -> RunEntry {
        RunEntry {
            run_id: report.run_id.clone(),
            plan_name: report.plan_name.clone(),
            plan_hash: plan_hash(&report.plan),
            target: target(report),
            models: models(report),
            engine: engine(report),
            stack_version: stack_version.map(str::to_owned),
            started_at: report.started_at.clone(),
            outcome: outcome(report),
            exit_code: report.verdict.exit_code,
            report_path: report_path.to_owned(),
            headline: Headline::of(report),
        }
    }

    /// The entry as a point of the report's trend.
    pub(super) fn into_point(self) -> HistoryPoint {
        HistoryPoint {
            run_id: self.run_id,
            started_at: self.started_at,
            outcome: self.outcome,
            headline: self.headline,
        }
    }
}

/// sha256 (lower-case hex) of `plan` serialised by serde_json with its
/// object keys in sorted order, so the same plan always hashes the same.
pub fn plan_hash(plan: &serde_json::Value) -> String {
    let bytes = serde_json::to_vec(&sorted(plan)).unwrap_or_default();
    Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `value` with every object's keys in sorted order (whatever map order
/// serde_json was built with).
fn sorted(value: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), sorted(&map[k])))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

fn target(report: &Report) -> String {
    if report.target.embedded_simulator {
        EMBEDDED_SIMULATOR.to_owned()
    } else {
        report.target.base_url.clone()
    }
}

fn models(report: &Report) -> String {
    let names: Vec<&str> = report.models.iter().map(|m| m.model.as_str()).collect();
    names.join(",")
}

fn engine(report: &Report) -> String {
    report
        .observed
        .as_ref()
        .and_then(|o| o.engine.as_ref())
        .map(|e| e.name.clone())
        .unwrap_or_default()
}

/// The verdict's serde name ("pass", "fail", ...).
fn outcome(report: &Report) -> String {
    match serde_json::to_value(report.verdict.outcome) {
        Ok(serde_json::Value::String(name)) => name,
        _ => format!("{:?}", report.verdict.outcome).to_lowercase(),
    }
}

/// The columns of `runs` an entry fills, in table order (`seq`, the
/// insertion order, is SQLite's own).
const COLUMNS: &[&str] = &[
    "run_id",
    "plan_name",
    "plan_hash",
    "target",
    "models",
    "engine",
    "stack_version",
    "started_at",
    "started_ms",
    "ended_at",
    "outcome",
    "exit_code",
    "report_path",
    "requests",
    "error_rate",
    "timeout_rate",
    "rps",
    "output_tokens_per_s",
    "goodput_per_s",
    "latency_p50_ms",
    "latency_p95_ms",
    "latency_p99_ms",
    "ttft_p95_ms",
    "tpot_p95_ms",
    "itl_p95_ms",
];

/// Inserts `entry`, or replaces the row of its run id in place.
pub(super) fn upsert(tx: &Transaction, entry: &RunEntry, ended_at: &str) -> rusqlite::Result<()> {
    let names: Vec<String> = COLUMNS.iter().map(|c| format!(":{c}")).collect();
    let updates: Vec<String> = COLUMNS[1..]
        .iter()
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    let sql = format!(
        "INSERT INTO runs ({}) VALUES ({}) ON CONFLICT (run_id) DO UPDATE SET {}",
        COLUMNS.join(", "),
        names.join(", "),
        updates.join(", ")
    );
    let started_ms = started_ms(&entry.started_at);
    let path = entry.report_path.to_string_lossy();
    let h = &entry.headline;
    // SQLite's integers are signed; no run counts past i64::MAX requests.
    let requests = i64::try_from(h.requests).unwrap_or(i64::MAX);
    let values: [&dyn ToSql; COLUMNS.len()] = [
        &entry.run_id,
        &entry.plan_name,
        &entry.plan_hash,
        &entry.target,
        &entry.models,
        &entry.engine,
        &entry.stack_version,
        &entry.started_at,
        &started_ms,
        &ended_at,
        &entry.outcome,
        &entry.exit_code,
        &path,
        &requests,
        &h.error_rate,
        &h.timeout_rate,
        &h.rps,
        &h.output_tokens_per_s,
        &h.goodput_per_s,
        &h.latency_p50_ms,
        &h.latency_p95_ms,
        &h.latency_p99_ms,
        &h.ttft_p95_ms,
        &h.tpot_p95_ms,
        &h.itl_p95_ms,
    ];
    let params: Vec<(&str, &dyn ToSql)> = names
        .iter()
        .map(String::as_str)
        .zip(values.iter().copied())
        .collect();
    tx.execute(&sql, params.as_slice())?;
    Ok(())
}

/// An RFC 3339 instant in Unix milliseconds, the history's sort key;
/// `None` when it does not parse.
fn started_ms(started_at: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(started_at)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// Which runs a query returns; `None` matches any.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Filter<'a> {
    pub plan: Option<&'a str>,
    pub outcome: Option<&'a str>,
    pub excluding_run_id: Option<&'a str>,
}

/// At most `limit` runs that `filter` matches, newest first.
pub(super) fn newest(
    conn: &Connection,
    filter: &Filter,
    limit: usize,
) -> rusqlite::Result<Vec<RunEntry>> {
    let sql = format!(
        "SELECT {} FROM runs \
         WHERE (:plan IS NULL OR plan_name = :plan) \
           AND (:outcome IS NULL OR outcome = :outcome) \
           AND (:excluding IS NULL OR run_id <> :excluding) \
         ORDER BY started_ms DESC, seq DESC LIMIT :limit",
        COLUMNS.join(", ")
    );
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut statement = conn.prepare_cached(&sql)?;
    let rows = statement.query_map(
        rusqlite::named_params! {
            ":plan": filter.plan,
            ":outcome": filter.outcome,
            ":excluding": filter.excluding_run_id,
            ":limit": limit,
        },
        entry_of_row,
    )?;
    rows.collect()
}

/// A non-negative integer column; a negative one does not read.
fn count(row: &Row, column: &str) -> rusqlite::Result<u64> {
    let value: i64 = row.get(column)?;
    u64::try_from(value).map_err(|_| {
        rusqlite::Error::IntegralValueOutOfRange(
            row.as_ref().column_index(column).unwrap_or(0),
            value,
        )
    })
}

fn entry_of_row(row: &Row) -> rusqlite::Result<RunEntry> {
    Ok(RunEntry {
        run_id: row.get("run_id")?,
        plan_name: row.get("plan_name")?,
        plan_hash: row.get("plan_hash")?,
        target: row.get("target")?,
        models: row.get("models")?,
        engine: row.get("engine")?,
        stack_version: row.get("stack_version")?,
        started_at: row.get("started_at")?,
        outcome: row.get("outcome")?,
        exit_code: row.get("exit_code")?,
        report_path: PathBuf::from(row.get::<_, String>("report_path")?),
        headline: Headline {
            requests: count(row, "requests")?,
            error_rate: row.get("error_rate")?,
            timeout_rate: row.get("timeout_rate")?,
            rps: row.get("rps")?,
            output_tokens_per_s: row.get("output_tokens_per_s")?,
            goodput_per_s: row.get("goodput_per_s")?,
            latency_p50_ms: row.get("latency_p50_ms")?,
            latency_p95_ms: row.get("latency_p95_ms")?,
            latency_p99_ms: row.get("latency_p99_ms")?,
            ttft_p95_ms: row.get("ttft_p95_ms")?,
            tpot_p95_ms: row.get("tpot_p95_ms")?,
            itl_p95_ms: row.get("itl_p95_ms")?,
        },
    })
}
