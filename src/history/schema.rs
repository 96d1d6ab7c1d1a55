//! The history's schema and its migrations.
//!
//! A history file carries `PRAGMA application_id` = [`APPLICATION_ID`]
//! (which tells it from another program's database) and its schema version
//! in `PRAGMA user_version`: [`MIGRATIONS`]`[i]` takes a file from version
//! `i` to `i + 1`, so a new version is one more entry and [`CURRENT`] is
//! their count. Opening a file brings it up to [`CURRENT`] in one
//! `BEGIN IMMEDIATE` transaction (re-reading the version under the lock,
//! since another process may have migrated it meanwhile); a file of a
//! higher version is refused, never downgraded or reset.

use std::path::Path;

use rusqlite::{Connection, Transaction, TransactionBehavior};

use super::HistoryError;

/// "ICKH", in the file's header: this is an infercheck history.
pub(super) const APPLICATION_ID: i64 = 0x4943_4B48;

/// Version 1: one row per run, identity and headline figures.
const V1: &str = "
CREATE TABLE runs (
    seq INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL UNIQUE,
    plan_name TEXT NOT NULL,
    plan_hash TEXT NOT NULL,
    target TEXT NOT NULL,
    models TEXT NOT NULL,
    engine TEXT NOT NULL,
    stack_version TEXT,
    started_at TEXT NOT NULL,
    started_ms INTEGER,
    ended_at TEXT NOT NULL,
    outcome TEXT NOT NULL,
    exit_code INTEGER NOT NULL,
    report_path TEXT NOT NULL,
    requests INTEGER NOT NULL,
    error_rate REAL NOT NULL,
    timeout_rate REAL NOT NULL,
    rps REAL NOT NULL,
    output_tokens_per_s REAL NOT NULL,
    goodput_per_s REAL,
    latency_p50_ms REAL,
    latency_p95_ms REAL,
    latency_p99_ms REAL,
    ttft_p95_ms REAL,
    tpot_p95_ms REAL,
    itl_p95_ms REAL
) STRICT;
CREATE INDEX runs_by_plan ON runs (plan_name, started_ms, seq);
";

/// Each entry takes a file from its index's version to the next.
const MIGRATIONS: &[&str] = &[V1];

/// The schema version this build writes and reads up to.
pub(super) const CURRENT: i64 = MIGRATIONS.len() as i64;

/// What a file's header and catalogue say of it.
#[derive(Clone, Copy, Debug)]
struct FileState {
    application_id: i64,
    version: i64,
    /// Tables other than SQLite's own.
    tables: i64,
}

/// Checks that the file at `path` is a history this build reads and
/// brings its schema up to [`CURRENT`].
pub(super) fn migrate(conn: &Connection, path: &Path) -> Result<(), HistoryError> {
    let fail = |e| HistoryError::sqlite(path, e);
    if !needs_migration(path, read_state(conn).map_err(fail)?)? {
        return Ok(());
    }
    let tx = Transaction::new_unchecked(conn, TransactionBehavior::Immediate).map_err(fail)?;
    let state = read_state(&tx).map_err(fail)?;
    if needs_migration(path, state)? {
        apply(&tx, state.version).map_err(fail)?;
    }
    tx.commit().map_err(fail)
}

fn read_state(conn: &Connection) -> rusqlite::Result<FileState> {
    let pragma = |name: &str| conn.pragma_query_value(None, name, |row| row.get::<_, i64>(0));
    Ok(FileState {
        application_id: pragma("application_id")?,
        version: pragma("user_version")?,
        tables: conn.query_row(
            "SELECT count(*) FROM sqlite_schema \
             WHERE type = 'table' AND name NOT LIKE 'sqlite!_%' ESCAPE '!'",
            [],
            |row| row.get(0),
        )?,
    })
}

/// Whether the file needs migrating; an error when it is not a history
/// this build may touch.
fn needs_migration(path: &Path, state: FileState) -> Result<bool, HistoryError> {
    let refuse = |reason: String| HistoryError::NotAHistory {
        path: path.to_owned(),
        reason,
    };
    if state.application_id != 0 && state.application_id != APPLICATION_ID {
        return Err(refuse(format!(
            "it is another program's database (application id {:#x})",
            state.application_id
        )));
    }
    if state.version > CURRENT {
        return Err(HistoryError::Newer {
            path: path.to_owned(),
            found: state.version,
            supported: CURRENT,
        });
    }
    if state.version == 0 && state.tables > 0 {
        return Err(refuse(format!(
            "it is another program's database ({} tables, no schema version)",
            state.tables
        )));
    }
    if state.version < 0 {
        return Err(refuse(format!("schema version {}", state.version)));
    }
    Ok(state.version < CURRENT)
}

/// Runs the migrations from `from` up and stamps the file.
fn apply(tx: &Transaction, from: i64) -> rusqlite::Result<()> {
    let from = usize::try_from(from).unwrap_or(0);
    for step in &MIGRATIONS[from..] {
        tx.execute_batch(step)?;
    }
    tx.execute_batch(&format!(
        "PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {CURRENT};"
    ))
}
